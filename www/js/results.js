// The Results table: one row per strategy of the current/last Train, with its status,
// accuracies, time, speed, threads and its own memory (the run's peak heap and what it keeps
// for Try it and Download, as the core measures them), updated as events arrive; under it,
// what the training accuracy was measured on and the tab's WebAssembly memory.
import { $, el } from './dom.js';
import { colorOf, count, megabytes, pct, secs, strategyName } from './format.js';
import { state } from './state.js';
import { stepsPerSecond } from './progress.js';
import { trainSampleLabel } from './charts.js';

const STATUS_TEXT = { queued: 'waiting', running: 'running', done: 'done', stopped: 'stopped early', failed: 'failed', skipped: 'not run' };
const COLUMNS = 10;

function memoryCells(r) {
  let peak = '—';
  let peakTitle = '';
  if (r.done) {
    peak = megabytes(r.done.peak_bytes);
    peakTitle = 'The most heap this run had allocated at once, beyond what existed when it started (measured).';
  } else if (r.start) {
    peak = `≈ ${megabytes(r.start.estimated_peak_bytes)}`;
    peakTitle = 'Estimated before the run started (the measured peak is reported when a run finishes).';
  }
  const retained = r.done ? r.done.retained_bytes : r.stopped ? r.stopped.retained_bytes : null;
  const peakCell = el('td', { class: 'num' }, peak);
  if (peakTitle) peakCell.title = peakTitle;
  return [peakCell, el('td', { class: 'num' }, retained === null ? '—' : megabytes(retained))];
}

export function renderResults() {
  const sample = trainSampleLabel();
  $('results-train-h').textContent = sample ? `Train accuracy (${sample})` : 'Train accuracy';
  renderNotes(sample);
  const body = $('results-body');
  if (state.order.length === 0) {
    body.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: String(COLUMNS) }, 'No runs yet.')));
    return;
  }
  body.replaceChildren(...state.order.map((s) => resultRow(state.runs[s], state.hasValidation)));
}

/** One run's row of the results table (also the loaded records' table: `statusText` names
 * their statuses). */
export function resultRow(r, hasValidation, statusText = STATUS_TEXT) {
  const lastEpoch = r.epochs[r.epochs.length - 1];
  const trainAcc = r.done ? r.done.train_accuracy : lastEpoch ? lastEpoch.train_accuracy : null;
  const valAcc = r.done ? r.done.val_accuracy : lastEpoch ? lastEpoch.val_accuracy : null;
  const elapsed = r.done ? r.done.elapsed_ms : r.stopped ? r.stopped.elapsed_ms : r.elapsedMs || null;
  const rate = stepsPerSecond(r);
  const threads = r.done ? r.done.threads : r.start ? r.start.threads : null;
  const name = el('th', { scope: 'row' }, el('span', { class: 'swatch', style: { background: colorOf(r.strategy) }, 'aria-hidden': 'true' }), strategyName(r.strategy));
  const status = el('td', { class: `status-${r.status}` }, statusText[r.status] || r.status);
  if (r.error) status.title = r.error;
  return el('tr', { 'data-strategy': r.strategy }, name, status,
    el('td', { class: 'num' }, pct(trainAcc)),
    el('td', { class: 'num' }, hasValidation ? pct(valAcc) : 'no validation data'),
    el('td', { class: 'num' }, secs(elapsed)),
    el('td', { class: 'num' }, rate === null ? '—' : rate >= 100 ? count(rate) : rate.toFixed(2)),
    el('td', { class: 'num' }, threads === null ? '—' : String(threads)),
    deviceCell(r.start ? r.start.device : null),
    ...memoryCells(r));
}

/** "CPU" or "GPU" (the adapter in the title), from the start event's `device`. */
function deviceCell(device) {
  const cell = el('td', { class: 'device' }, deviceLabel(device));
  if (device && device !== 'cpu') cell.title = device;
  return cell;
}

/** 'cpu' → "CPU", 'gpu: SwiftShader (BrowserWebGpu)' → "GPU: SwiftShader"; a record without it → "—". */
export function deviceLabel(device) {
  if (!device) return '—';
  if (device === 'cpu') return 'CPU';
  const adapter = device.replace(/^gpu:\s*/, '').replace(/\s*\([^)]*\)$/, '');
  return adapter ? `GPU: ${adapter}` : 'GPU';
}

function renderNotes(sample) {
  const notes = [];
  if (sample) {
    notes.push(`Training accuracy is measured after each epoch on a fixed stratified ${sample} of the ${count(state.trainSize)} training sentences ("Training accuracy sample"); validation data is always measured whole.`);
  }
  if (state.memory) {
    const live = state.allocated !== null && state.allocated !== undefined ? `, ${megabytes(state.allocated)} of it in use now` : '';
    notes.push(`This tab's WebAssembly memory: ${megabytes(state.memory)} reserved (it never shrinks)${live}.`);
  }
  $('results-note').textContent = notes.join(' ');
}
