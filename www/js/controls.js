// What may be pressed now: the reasons Train is blocked (shown next to it), Stop, Classify,
// Download, and the strategy lists of the download and confusion-matrix selects. Called
// after anything that changes one of these.
import { $, el } from './dom.js';
import { isLora, strategyName } from './format.js';
import { state } from './state.js';
import { modelProblem } from './model-panel.js';
import { optionsProblems } from './train-form.js';
import { updateRecordControls } from './record.js';
import { updateSavedControls } from './saved-models.js';

/** Why Train cannot be pressed now, one sentence each (empty: it can). */
export function trainBlockers() {
  if (state.running) return [state.stopping ? 'Stopping…' : 'Training is running.'];
  if (!state.ready) return ['Loading the WebAssembly worker…'];
  const reasons = [];
  if (state.parsePending) reasons.push('Checking the data…');
  else if (!state.parse || !state.parse.ok) {
    const d = state.parse && state.parse.diagnostics && state.parse.diagnostics[0];
    const where = d ? `${d.field === 'validation' ? 'Validation data' : 'Training data'}${d.line > 0 ? `, line ${d.line}` : ''}: ` : '';
    reasons.push(`Fix the data first — ${where}${d ? d.message : 'it could not be read.'}`);
  }
  const m = modelProblem();
  if (m) reasons.push(m);
  reasons.push(...optionsProblems());
  return reasons;
}

export function updateControls() {
  const reasons = trainBlockers();
  const trainBtn = $('train-btn');
  trainBtn.disabled = reasons.length > 0;
  $('train-reason').textContent = reasons.length ? reasons.join(' ') : '';
  $('stop-btn').disabled = !state.running || state.stopping;
  // (A run whose worker was restarted keeps its results but not its model: `modelLost`.)
  const finished = state.order.filter((s) => ['done', 'stopped'].includes(state.runs[s].status) && !state.runs[s].modelLost);
  $('classify-btn').disabled = !state.ready || finished.length === 0;
  fillSelect($('download-select'), finished);
  fillSelect($('confusion-select'), state.order.filter((s) => state.runs[s].done));
  $('download-btn').disabled = finished.length === 0;
  // A LoRA run's PEFT adapter: offered beside the merged model when one is chosen.
  const lora = finished.length > 0 && isLora($('download-select').value);
  $('download-adapter-btn').hidden = !lora;
  $('download-adapter-btn').disabled = !lora;
  $('adapter-hint').hidden = !lora;
  updateSavedControls();
  updateRecordControls();
}

// Replaces the options only when the list changed (keeping the selection if it is still
// there, else the last strategy) and then fires 'change' so dependent views re-render.
function fillSelect(select, strategies) {
  const current = select.value;
  const values = Array.from(select.options).map((o) => o.value);
  if (values.join('|') === strategies.join('|')) return;
  select.replaceChildren(...strategies.map((s) => el('option', { value: s }, strategyName(s) + (state.runs[s].status === 'stopped' ? ' (stopped early)' : ''))));
  if (strategies.includes(current)) select.value = current;
  else if (strategies.length) select.value = strategies[strategies.length - 1];
  select.dispatchEvent(new Event('change'));
}
