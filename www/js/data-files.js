// Data from a file, for the training and the validation box: the "Training data file" and
// "Validation data file" pickers, a file dropped on either box, and a very large paste. A
// file's text is kept in state.files and never goes through the text box's editing path (a
// 10,000-line textarea makes typing and layout slow): the box is replaced by the file's name,
// size, line count and first lines, read-only, with "Edit as text" (copy it into the box) and
// "Remove file" (back to the box as it was). The worker parses it like typed text.
import { $, el } from './dom.js';
import { count, fileSize } from './format.js';
import { state } from './state.js';
import { showError } from './status.js';
import { scheduleParse } from './data-panel.js';

const FIELDS = {
  train: { prefix: 'train', box: 'train-text', what: 'training data' },
  validation: { prefix: 'val', box: 'val-text', what: 'validation data' },
};
/** Lines shown from a loaded file. */
const HEAD_LINES = 8;
/** A paste larger than this (characters) is kept like a file instead of going into the box. */
const BIG_PASTE = 200_000;
/** Larger files are refused (the whole text is held in memory, twice: page and worker). */
const MAX_BYTES = 256 * 1024 * 1024;

const part = (field, name) => $(`${FIELDS[field].prefix}-${name}`);

function countLines(text) {
  if (!text) return 0;
  let n = 0;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) n += 1;
  return text.endsWith('\n') ? n : n + 1;
}

function firstLines(text, n) {
  const lines = [];
  let from = 0;
  while (lines.length < n && from < text.length) {
    let end = text.indexOf('\n', from);
    if (end === -1) end = text.length;
    const line = text.slice(from, end).replace(/\r$/, '');
    lines.push(line.length > 160 ? `${line.slice(0, 159)}…` : line);
    from = end + 1;
  }
  return lines;
}

/** Keep `file` (`{name, size, text}`) as the data of `field` ('train' | 'validation'). */
export function setDataFile(field, file) {
  state.files[field] = { ...file, lines: countLines(file.text) };
  render(field);
  scheduleParse(0);
}

async function loadFile(field, file) {
  if (!file) return;
  if (file.size > MAX_BYTES) {
    showError(`${file.name} is ${fileSize(file.size)}: too large to train on in a browser tab (at most ${fileSize(MAX_BYTES)}).`);
    return;
  }
  let text;
  try {
    text = await file.text();
  } catch (e) {
    showError(`Could not read ${file.name}: ${e.message || e}`);
    return;
  }
  setDataFile(field, { name: file.name, size: file.size, text });
}

function render(field) {
  const f = state.files[field];
  const box = $(FIELDS[field].box);
  box.hidden = Boolean(f);
  part(field, 'file-view').hidden = !f;
  if (!f) {
    part(field, 'file-head').textContent = '';
    return;
  }
  const lines = firstLines(f.text, HEAD_LINES);
  const more = f.lines > lines.length ? ` — the first ${lines.length} shown` : '';
  part(field, 'file-meta').replaceChildren(
    el('strong', { class: 'file-name' }, f.name), ` · ${fileSize(f.size)} · ${count(f.lines)} line${f.lines === 1 ? '' : 's'}${more}`);
  part(field, 'file-head').textContent = lines.join('\n');
}

function editAsText(field) {
  const f = state.files[field];
  if (!f) return;
  const box = $(FIELDS[field].box);
  box.value = f.text;
  state.files[field] = null;
  render(field);
  scheduleParse(0);
  box.focus();
  box.setSelectionRange(0, 0);
  box.scrollTop = 0;
}

function removeFile(field) {
  state.files[field] = null;
  part(field, 'file').value = '';
  render(field);
  scheduleParse(0);
  $(FIELDS[field].box).focus();
}

const hasFiles = (e) => Boolean(e.dataTransfer) && Array.from(e.dataTransfer.types || []).includes('Files');

/** Pickers, drop zones, buttons and the large-paste guard of both boxes (once, at start-up). */
export function initDataFiles() {
  for (const field of Object.keys(FIELDS)) {
    const input = part(field, 'file');
    input.addEventListener('change', () => loadFile(field, input.files && input.files[0]));
    part(field, 'file-edit').addEventListener('click', () => editAsText(field));
    part(field, 'file-remove').addEventListener('click', () => removeFile(field));
    const zone = part(field, 'drop');
    let depth = 0;
    zone.addEventListener('dragenter', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth += 1;
      zone.classList.add('dragging');
    });
    zone.addEventListener('dragover', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
    });
    zone.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) zone.classList.remove('dragging');
    });
    zone.addEventListener('drop', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      zone.classList.remove('dragging');
      loadFile(field, e.dataTransfer.files[0]);
    });
    $(FIELDS[field].box).addEventListener('paste', (e) => {
      const text = e.clipboardData && e.clipboardData.getData('text/plain');
      if (!text || text.length < BIG_PASTE) return;
      e.preventDefault();
      setDataFile(field, { name: `pasted ${FIELDS[field].what}`, size: new Blob([text]).size, text });
    });
  }
}
