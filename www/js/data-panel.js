// The Data panel: the training and validation text boxes (or the files loaded in their
// place, data-files.js), checked by the worker as the user types (debounced `parse`
// requests; only the answer to the newest one counts), and the line-level problems (at most
// MAX_LISTED per box, then "and N more") and the class summary shown under them.
import { ToWorker } from './protocol.js';
import { $, el, intValue } from './dom.js';
import { count } from './format.js';
import { state } from './state.js';
import { showError } from './status.js';
import { nextId, send } from './worker-client.js';
import { updateControls } from './controls.js';

const MAX_LISTED = 20;
let parseTimer = null;
let parseSeq = 0; // id of the newest parse request

/** 'none', 'split' or 'text': how validation data is chosen. */
export function valMode() {
  return document.querySelector('input[name="val-mode"]:checked').value;
}

/** The training text: the loaded file's, else the box's. */
export const trainText = () => (state.files.train ? state.files.train.text : $('train-text').value);
/** The separate validation text: the loaded file's, else the box's. */
export const valText = () => (state.files.validation ? state.files.validation.text : $('val-text').value);

/** The data fields of `parse` and `train` messages. */
export function dataPayload() {
  const mode = valMode();
  return {
    train: trainText(),
    val: mode === 'text' ? valText() : null,
    valFraction: mode === 'split' ? Number($('val-fraction').value) : null,
    seed: intValue('seed') ?? 0,
  };
}

/** Check the data after `delay` ms without further changes. */
export function scheduleParse(delay = 300) {
  state.parsePending = true;
  updateControls();
  clearTimeout(parseTimer);
  parseTimer = setTimeout(() => {
    const mode = valMode();
    if (mode === 'text' && !valText().trim()) {
      // The core treats an empty validation text as "no validation": say so instead.
      showParse({ ok: false, labels: [], diagnostics: [{ field: 'validation', line: 0, message: 'the validation box is empty: paste validation examples, or choose None' }] });
      return;
    }
    if (mode === 'split') {
      const f = Number($('val-fraction').value);
      if (!(f > 0 && f < 1)) {
        // Checked here too so the message names the field the user can fix.
        showParse({ ok: false, labels: [], diagnostics: [{ field: 'validation', line: 0, message: 'the validation fraction must be a number strictly between 0 and 1, e.g. 0.2' }] });
        return;
      }
    }
    parseSeq = nextId();
    send({ type: ToWorker.PARSE, id: parseSeq, ...dataPayload() });
  }, delay);
}

/** A `parsed` message. */
export function onParsed(msg) {
  if (msg.id !== parseSeq) return; // an older request: a newer one is on its way
  showParse(msg.result);
}

/** An `error` message answering a parse request. */
export function onParseError(msg) {
  state.parsePending = false;
  showError(msg.message);
  updateControls();
}

function showParse(result) {
  state.parse = result;
  state.parsePending = false;
  renderParse();
  updateControls();
}

function renderParse() {
  const r = state.parse;
  const lists = { train: $('train-errors'), validation: $('val-errors') };
  for (const list of Object.values(lists)) list.replaceChildren();
  $('train-text').removeAttribute('aria-invalid');
  $('val-text').removeAttribute('aria-invalid');
  const listed = { train: 0, validation: 0 };
  const more = { train: 0, validation: 0 };
  for (const d of r.diagnostics || []) {
    const field = d.field === 'validation' ? 'validation' : 'train';
    (field === 'validation' ? $('val-text') : $('train-text')).setAttribute('aria-invalid', 'true');
    if (listed[field] >= MAX_LISTED) {
      more[field] += 1;
      continue;
    }
    listed[field] += 1;
    const where = d.line > 0 ? `Line ${d.line}: ` : '';
    lists[field].append(el('li', {}, where + d.message));
  }
  for (const field of ['train', 'validation']) {
    if (more[field]) lists[field].append(el('li', { class: 'more' }, `and ${more[field]} more problem${more[field] === 1 ? '' : 's'}`));
  }
  const summary = $('train-summary');
  if (r.ok) {
    // Many classes: name the first ones only (the per-class table lists them all after a run).
    const shown = r.labels.slice(0, 30).map((label, i) => `${label} (${r.class_counts[i]})`).join(', ');
    const classes = r.labels.length > 30 ? `${shown}, … and ${r.labels.length - 30} more` : shown;
    let text = `${count(r.train_count)} training sentence${r.train_count === 1 ? '' : 's'} · ${r.labels.length} classes: ${classes}`;
    if (r.val_count) text += ` · ${count(r.val_count)} for validation`;
    summary.textContent = text;
    summary.classList.remove('bad');
  } else {
    const n = (r.diagnostics || []).length;
    summary.textContent = `${n} problem${n === 1 ? '' : 's'} to fix before training.`;
    summary.classList.add('bad');
  }
}

/** In `textarea`, Tab types a tab (the format is tab-separated); Esc then Tab leaves. */
export function tabTypesTab(textarea) {
  let escaped = false;
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      escaped = true;
      return;
    }
    if (e.key === 'Tab' && !escaped && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey) {
      e.preventDefault();
      textarea.setRangeText('\t', textarea.selectionStart, textarea.selectionEnd, 'end');
      textarea.dispatchEvent(new Event('input', { bubbles: true }));
    }
    escaped = false;
  });
  textarea.addEventListener('blur', () => { escaped = false; });
}
