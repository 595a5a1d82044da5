// The current Train's record and its exports. A record is one Train as data: its head — the
// options, the model, a summary of the data, built by the core (src/record.rs; the worker's
// `record-head` message), as the CLI's `train --record FILE` builds it — and every core event
// in the order the worker delivered them (the one wire format: the same objects `webtune train
// --json` prints). "Export results" saves it as JSON (format "webtune-record", version 1:
// README "Results records", www/record.schema.json); "Export curves (CSV)" saves the loss and
// accuracy curves. Reading a record back is record-view.js's business.
import { CoreEvent } from './protocol.js';
import { $, el } from './dom.js';
import { state } from './state.js';
import { setStatus, showError } from './status.js';

let current = null; // {head, events}

/** A Train starts (training.js, right before the `train` request): a new, empty record. */
export function beginRecord() {
  current = { head: null, events: [] };
  updateRecordControls();
}

/** The core's head of the current Train's record (a `record-head` message). */
export function onRecordHead(head) {
  if (current) current.head = head;
}

/** One core event of the current Train (app.js, for every event of an `events` message). */
export function recordEvent(ev) {
  if (current) current.events.push(ev);
}

/** The current Train's record as a plain object (null before any Train, or before its head). */
export function currentRecord() {
  if (!current || !current.head) return null;
  return { ...current.head, events: current.events };
}

/** The curves of a record as CSV: `strategy,curve,x,value` (curve: loss per step; train_accuracy, val_accuracy, train_loss, val_loss per epoch). */
export function recordToCsv(record) {
  const rows = ['strategy,curve,x,value'];
  const num = (v) => (v === null || v === undefined ? '' : String(v));
  const quote = (s) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  for (const ev of record.events) {
    if (ev.type === CoreEvent.STEP) rows.push(`${quote(ev.strategy)},loss,${ev.step},${num(ev.loss)}`);
    if (ev.type === CoreEvent.EPOCH) {
      for (const curve of ['train_accuracy', 'val_accuracy', 'train_loss', 'val_loss']) {
        if (ev[curve] !== null && ev[curve] !== undefined) rows.push(`${quote(ev.strategy)},${curve},${ev.epoch},${num(ev[curve])}`);
      }
    }
  }
  return `${rows.join('\n')}\n`;
}

/** Export buttons: usable when a Train has ended and left events. */
export function updateRecordControls() {
  const usable = Boolean(current && current.head && current.events.length && !state.running);
  $('export-json-btn').disabled = !usable;
  $('export-csv-btn').disabled = !usable;
}

function fileStem() {
  const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-');
  return `webtune-results-${stamp}`;
}

/** Offer `blob` as a download named `name`. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function exportJson() {
  const record = currentRecord();
  if (!record) return;
  try {
    const name = `${fileStem()}.json`;
    const blob = new Blob([JSON.stringify(record)], { type: 'application/json' });
    saveBlob(blob, name);
    setStatus(`Saved the results record ${name} (${record.events.length} events). "Load results" opens it again, here or in anyone's webtune page.`);
  } catch (err) {
    showError(`Export failed: ${err.message}`);
  }
}

function exportCsv() {
  const record = currentRecord();
  if (!record) return;
  const name = `${fileStem()}-curves.csv`;
  saveBlob(new Blob([recordToCsv(record)], { type: 'text/csv' }), name);
  setStatus(`Saved the curves as ${name}.`);
}

export function initRecord() {
  $('export-json-btn').addEventListener('click', exportJson);
  $('export-csv-btn').addEventListener('click', exportCsv);
  updateRecordControls();
}
