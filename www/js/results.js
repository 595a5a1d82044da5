// The Results table: one row per strategy of the current/last Train, with its status,
// accuracies, time, speed and peak WebAssembly memory, updated as events arrive.
import { $, el } from './dom.js';
import { colorOf, megabytes, pct, secs, strategyName } from './format.js';
import { state } from './state.js';

const STATUS_TEXT = { queued: 'waiting', running: 'running', done: 'done', stopped: 'stopped early', failed: 'failed', skipped: 'not run' };

export function renderResults() {
  const body = $('results-body');
  if (state.order.length === 0) {
    body.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: '7' }, 'No runs yet.')));
    return;
  }
  body.replaceChildren(...state.order.map((s) => {
    const r = state.runs[s];
    const lastEpoch = r.epochs[r.epochs.length - 1];
    const trainAcc = r.done ? r.done.train_accuracy : lastEpoch ? lastEpoch.train_accuracy : null;
    const valAcc = r.done ? r.done.val_accuracy : lastEpoch ? lastEpoch.val_accuracy : null;
    const elapsed = r.done ? r.done.elapsed_ms : Math.max(lastEpoch ? lastEpoch.elapsed_ms : 0, r.lastStep ? r.lastStep.elapsed_ms : 0) || null;
    const steps = r.done ? r.done.steps : r.lastStep ? r.lastStep.step : null;
    const rate = steps && elapsed ? (steps / (elapsed / 1000)).toFixed(2) : '—';
    const name = el('th', { scope: 'row' }, el('span', { class: 'swatch', style: { background: colorOf(s) }, 'aria-hidden': 'true' }), strategyName(s));
    const status = el('td', { class: `status-${r.status}` }, STATUS_TEXT[r.status] || r.status);
    if (r.error) status.title = r.error;
    return el('tr', { 'data-strategy': s }, name, status,
      el('td', { class: 'num' }, pct(trainAcc)),
      el('td', { class: 'num' }, state.hasValidation ? pct(valAcc) : 'no validation data'),
      el('td', { class: 'num' }, secs(elapsed)),
      el('td', { class: 'num' }, rate),
      el('td', { class: 'num' }, r.memory ? megabytes(r.memory) : '—'));
  }));
}
