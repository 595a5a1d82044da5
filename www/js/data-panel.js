// The Data panel: the training and validation text boxes, checked by the worker as the user
// types (debounced `parse` requests; only the answer to the newest one counts), and the
// line-level problems and the class summary shown under them.
import { ToWorker } from './protocol.js';
import { $, el, intValue } from './dom.js';
import { state } from './state.js';
import { showError } from './status.js';
import { nextId, send } from './worker-client.js';
import { updateControls } from './controls.js';

let parseTimer = null;
let parseSeq = 0; // id of the newest parse request

/** 'none', 'split' or 'text': how validation data is chosen. */
export function valMode() {
  return document.querySelector('input[name="val-mode"]:checked').value;
}

/** The data fields of `parse` and `train` messages. */
export function dataPayload() {
  const mode = valMode();
  return {
    train: $('train-text').value,
    val: mode === 'text' ? $('val-text').value : null,
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
    if (mode === 'text' && !$('val-text').value.trim()) {
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
  for (const d of r.diagnostics || []) {
    const list = lists[d.field] || lists.train;
    const where = d.line > 0 ? `Line ${d.line}: ` : '';
    list.append(el('li', {}, where + d.message));
    (d.field === 'validation' ? $('val-text') : $('train-text')).setAttribute('aria-invalid', 'true');
  }
  const summary = $('train-summary');
  if (r.ok) {
    const classes = r.labels.map((label, i) => `${label} (${r.class_counts[i]})`).join(', ');
    let text = `${r.train_count} training sentence${r.train_count === 1 ? '' : 's'} · ${r.labels.length} classes: ${classes}`;
    if (r.val_count) text += ` · ${r.val_count} for validation`;
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
