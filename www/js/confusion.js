// The confusion matrix and per-class precision/recall/F1 of the strategy chosen in
// "Confusion matrix for" (on the validation data when there is some, else the training data).
import { $, el } from './dom.js';
import { pct, strategyName } from './format.js';
import { state } from './state.js';

export function renderConfusion() {
  const table = $('confusion-table');
  const s = $('confusion-select').value;
  const run = s && state.runs[s];
  if (!run || !run.done) {
    table.replaceChildren();
    $('confusion-metrics').textContent = 'Available when a strategy has finished.';
    return;
  }
  const labels = run.done.per_class.map((c) => c.label);
  const m = run.done.confusion;
  const set = state.hasValidation ? 'validation data' : 'training data';
  const head = el('tr', {}, el('th', { scope: 'col' }, 'true ↓ / predicted →'), ...labels.map((l) => el('th', { scope: 'col' }, l)));
  const rows = labels.map((l, i) => el('tr', {}, el('th', { scope: 'row' }, l),
    ...labels.map((_, j) => el('td', { class: i === j ? 'num diag' : 'num' }, String(m[i] ? m[i][j] ?? 0 : 0)))));
  table.replaceChildren(
    el('caption', {}, `Confusion matrix — ${strategyName(s)}, ${set}`),
    el('thead', {}, head),
    el('tbody', {}, ...rows));
  $('confusion-metrics').textContent = run.done.per_class
    .map((c) => `${c.label}: precision ${pct(c.precision)}, recall ${pct(c.recall)}, F1 ${pct(c.f1)} (${c.support} examples)`).join(' · ');
}
