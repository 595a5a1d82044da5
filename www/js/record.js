// The current Train's record and its exports. A record is one Train as data: its options, the
// model, a summary of the data and every core event in the order the worker delivered them
// (the one wire format: the same objects `webtune train --json` prints). "Export results"
// saves it as JSON (format "webtune-record", version 1: README "Results records",
// www/record.schema.json — the CLI's `train --record FILE` writes the same document);
// "Export curves (CSV)" saves the loss and accuracy curves. Reading a record back is
// record-view.js's business.
import { CoreEvent } from './protocol.js';
import { $, el } from './dom.js';
import { state } from './state.js';
import { setStatus, showError } from './status.js';

export const RECORD_FORMAT = 'webtune-record';
export const RECORD_VERSION = 1;

let current = null; // {head, modelKey, events}

/**
 * A Train starts (training.js, right before the `train` request): remember what it was asked
 * to do. `validation`: the Validation choice ('none' | 'split' | 'text').
 */
export function beginRecord({ strategies, options, validation, modelKey, modelName }) {
  const parse = state.parse && state.parse.ok ? state.parse : null;
  current = {
    modelKey,
    modelName,
    events: [],
    head: {
      format: RECORD_FORMAT,
      version: RECORD_VERSION,
      created: null, // set when exported
      producer: 'webtune page',
      model: null, // set when exported (the model may load during the Train)
      data: {
        train_size: parse ? parse.train_count : 0,
        val_size: parse ? parse.val_count : 0,
        labels: parse ? parse.labels : [],
        class_counts: parse ? parse.class_counts : [],
        validation: validation === 'text' ? 'separate' : validation,
      },
      options: { ...options },
      strategies: [...strategies],
    },
  };
  updateRecordControls();
}

/** One core event of the current Train (app.js, for every event of an `events` message). */
export function recordEvent(ev) {
  if (current) current.events.push(ev);
}

/** The current Train's record as a plain object (null before any Train). */
export function currentRecord() {
  if (!current) return null;
  const m = state.model;
  const model = m && m.key === current.modelKey ? { name: m.label, info: m.info } : { name: current.modelName, info: null };
  return { ...current.head, created: new Date().toISOString(), model, events: current.events };
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
  const usable = Boolean(current && current.events.length && !state.running);
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
