// One Train, from the button to the end: send the `train` request, follow the worker's
// run-start / event / train-done messages into state.runs, keep the status line, charts,
// results and confusion matrix up to date, and ask the worker to stop.
import { CoreEvent, ToWorker } from './protocol.js';
import { $, intValue } from './dom.js';
import { pct, strategyName } from './format.js';
import { newRun, state } from './state.js';
import { clearError, setStatus, showError } from './status.js';
import { send } from './worker-client.js';
import { modelKey, modelSource } from './model-panel.js';
import { selectedStrategies, trainOptions } from './train-form.js';
import { trainBlockers, updateControls } from './controls.js';
import { dataPayload, valMode } from './data-panel.js';
import { makeCharts, scheduleChartUpdate } from './charts.js';
import { renderResults } from './results.js';
import { renderConfusion } from './confusion.js';

/** Click handler of Train. */
export function startTraining() {
  const reasons = trainBlockers();
  if (reasons.length) {
    $('train-reason').textContent = reasons.join(' ');
    return;
  }
  clearError();
  const strategies = selectedStrategies();
  state.order = strategies;
  state.runs = Object.fromEntries(strategies.map((s) => [s, newRun(s)]));
  state.hasValidation = valMode() !== 'none';
  state.epochs = intValue('epochs');
  state.running = true;
  state.stopping = false;
  state.predictions = null;
  state.trainsStarted += 1;
  $('predictions').replaceChildren();
  makeCharts();
  renderResults();
  renderConfusion();
  updateControls();
  setStatus('Starting…');
  const source = modelSource();
  state.trainingModelKey = modelKey(source);
  send({ type: ToWorker.TRAIN, source, strategies, ...dataPayload(), options: trainOptions() });
}

/** Click handler of Stop. */
export function stopTraining() {
  if (!state.running) return;
  state.stopping = true;
  send({ type: ToWorker.STOP });
  setStatus('Stopping after the current step…');
  updateControls();
}

/** A `run-start` message. */
export function onRunStart(msg) {
  const run = state.runs[msg.strategy];
  if (run) {
    run.status = 'running';
    run.totalSteps = msg.totalSteps;
    run.memory = Math.max(run.memory || 0, msg.memory || 0);
  }
  setStatus(`${strategyName(msg.strategy)}: training started (${msg.totalSteps} steps).`);
  renderResults();
  scheduleChartUpdate();
}

/** An `event` message: one core event and the wasm memory size after it. */
export function onTrainingEvent(ev, memory) {
  if (ev.type === CoreEvent.ERROR) {
    const s = state.order.find((x) => state.runs[x].status === 'running');
    if (s) {
      state.runs[s].status = 'failed';
      state.runs[s].error = ev.message;
    }
    showError(s ? `${strategyName(s)} failed: ${ev.message}` : ev.message);
    renderResults();
    return;
  }
  const run = state.runs[ev.strategy];
  if (!run) return;
  if (memory) run.memory = Math.max(run.memory, memory);
  if (ev.type === CoreEvent.STEP) {
    run.losses[ev.step - 1] = ev.loss;
    run.lastStep = ev;
    const total = run.totalSteps ? `/${run.totalSteps}` : '';
    setStatus(`${strategyName(ev.strategy)}: epoch ${ev.epoch}/${state.epochs}, step ${ev.step}${total}, loss ${ev.loss.toFixed(4)}`);
  } else if (ev.type === CoreEvent.EPOCH) {
    run.epochs.push(ev);
    const val = ev.val_accuracy !== null && ev.val_accuracy !== undefined ? `, validation ${pct(ev.val_accuracy)}` : '';
    setStatus(`${strategyName(ev.strategy)}: epoch ${ev.epoch} done — training accuracy ${pct(ev.train_accuracy)}${val}`);
  } else if (ev.type === CoreEvent.DONE) {
    run.done = ev;
    run.status = 'done';
  }
  renderResults();
  scheduleChartUpdate();
  if (ev.type === CoreEvent.DONE) {
    renderConfusion();
    updateControls();
  }
}

/**
 * The end of a Train: a `train-done` message `{stopped, failed}`, or a worker restart in the
 * middle of one (`{stopped: false, failed: true}`).
 */
export function finishTraining(msg) {
  state.running = false;
  state.trainsFinished += 1;
  state.stopping = false;
  $('progress').hidden = true;
  for (const s of state.order) {
    const r = state.runs[s];
    if (r.status === 'running') r.status = msg.stopped ? 'stopped' : 'failed';
    else if (r.status === 'queued') r.status = 'skipped';
  }
  if (msg.stopped) setStatus('Stopped. The runs so far are kept; press Train to start again.');
  else if (msg.failed) setStatus('Training did not finish: see the message below.');
  else setStatus(`Done: ${state.order.map((s) => `${strategyName(s)} ${pct(state.runs[s].done ? state.runs[s].done.train_accuracy : null)} training accuracy`).join(', ')}.`);
  renderResults();
  scheduleChartUpdate();
  updateControls();
}
