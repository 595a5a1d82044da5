// One Train, from the button to the end: send the `train` request, follow the worker's
// plan / event / train-done messages into state.runs, keep the status line, progress, charts,
// results and confusion matrix up to date (redrawn at most once per animation frame: a
// frozen run can send thousands of tiny steps a second), hand the embedding map and layer
// change snapshots to the Look inside panel (insight.js), and ask the worker to stop.
import { CoreEvent, ToWorker } from './protocol.js';
import { $, intValue } from './dom.js';
import { count, megabytes, pct, strategyName } from './format.js';
import { newRun, state } from './state.js';
import { clearError, setStatus, showError, showWarning } from './status.js';
import { send } from './worker-client.js';
import { modelSource } from './model-panel.js';
import { sourceKey } from './model-source.js';
import { deviceChoice, selectedStrategies, trainOptions } from './train-form.js';
import { chosenThreads } from './threads.js';
import { trainBlockers, updateControls } from './controls.js';
import { dataPayload, valMode } from './data-panel.js';
import { makeCharts, scheduleChartUpdate } from './charts.js';
import { renderResults } from './results.js';
import { renderConfusion } from './confusion.js';
import { renderTrainingProgress } from './progress.js';
import { onInsightEvent, resetInsight } from './insight.js';
import { beginRecord } from './record.js';
import { endTrain, foldTrainEvent } from './run-events.js';

let renderFrame = null;

/** Redraw the results table, the progress line and the charts on the next animation frame. */
function scheduleRender() {
  scheduleChartUpdate();
  if (renderFrame !== null) return;
  renderFrame = requestAnimationFrame(() => {
    renderFrame = null;
    renderResults();
    renderTrainingProgress();
  });
}

/**
 * Click handler of Train. `useThreads(n)`: makes sure the worker that gets this Train trains
 * with `n` threads (the Threads control), restarting it when its pool has another size; true
 * when it restarted.
 */
export function startTraining(useThreads) {
  const reasons = trainBlockers();
  if (reasons.length) {
    $('train-reason').textContent = reasons.join(' ');
    return;
  }
  const threads = chosenThreads();
  const restarted = useThreads(threads);
  clearError();
  const strategies = selectedStrategies();
  state.order = strategies;
  state.runs = Object.fromEntries(strategies.map((s) => [s, newRun(s)]));
  state.hasValidation = valMode() !== 'none';
  state.epochs = intValue('epochs');
  state.plans = null;
  state.estimate = null;
  state.trainSize = null;
  state.trainEvalSize = null;
  state.running = true;
  state.stopping = false;
  state.predictions = null;
  state.trainsStarted += 1;
  $('predictions').replaceChildren();
  makeCharts();
  resetInsight();
  renderResults();
  renderConfusion();
  updateControls();
  setStatus(restarted ? `Starting a worker with ${threads} thread${threads === 1 ? '' : 's'}…` : 'Starting…');
  const source = modelSource();
  state.trainingModelKey = sourceKey(source);
  const options = trainOptions();
  beginRecord();
  send({ type: ToWorker.TRAIN, source, strategies, ...dataPayload(), options, device: deviceChoice() });
}

/** Click handler of Stop: the page answers at once; the worker stops after the current unit of work (within a second). */
export function stopTraining() {
  if (!state.running) return;
  state.stopping = true;
  send({ type: ToWorker.STOP });
  setStatus('Stopping…');
  updateControls();
  renderTrainingProgress();
}

/** A `plan` message: the Train fits; remember each strategy's planned work and memory. */
export function onPlan(msg) {
  state.plans = msg.plans;
  const peak = Math.max(0, ...msg.plans.map((p) => p.peak_bytes));
  const steps = msg.plans.reduce((s, p) => s + p.total_steps, 0);
  setStatus(`Checked: ${count(steps)} training step${steps === 1 ? '' : 's'} in all; the largest run needs about ${megabytes(peak)} beside the model.`);
}

/** One core event (from an `events` message), the wasm memory size and the live heap bytes after its batch. */
export function onTrainingEvent(ev, memory, allocated) {
  if (memory) state.memory = memory;
  if (allocated !== null && allocated !== undefined) state.allocated = allocated;
  const run = foldTrainEvent(state, ev);
  if (ev.type === CoreEvent.ERROR) {
    showError(run ? `${strategyName(run.strategy)} failed: ${ev.message}` : ev.message);
    renderResults();
    return;
  }
  if (memory) run.memory = Math.max(run.memory, memory);
  switch (ev.type) {
    case CoreEvent.START:
      onStart(ev);
      break;
    case CoreEvent.EPOCH: {
      const val = ev.val_accuracy !== null && ev.val_accuracy !== undefined ? `, validation ${pct(ev.val_accuracy)}` : '';
      if (!state.stopping) setStatus(`${strategyName(ev.strategy)}: epoch ${ev.epoch} done — training accuracy ${pct(ev.train_accuracy)}${val}`);
      break;
    }
    case CoreEvent.EMBEDDING:
    case CoreEvent.LAYERS:
      onInsightEvent(run, ev);
      break;
    case CoreEvent.STOPPED:
      setStatus(`${strategyName(ev.strategy)} stopped after ${count(ev.steps)} step${ev.steps === 1 ? '' : 's'}; its model so far is kept for Try it and Download.`);
      if (ev.reason) showWarning(`${strategyName(ev.strategy)} stopped by itself: ${ev.reason}`);
      break;
    default:
      break;
  }
  scheduleRender();
  if (ev.type === CoreEvent.DONE || ev.type === CoreEvent.STOPPED) {
    renderResults();
    renderConfusion();
    updateControls();
  }
}

/**
 * The progress within the step or chunk under way (an `events` message's `unit`, after its
 * events): the bar and the line move during a long step.
 */
export function onUnitProgress(unit) {
  const run = state.runs[unit.strategy];
  if (!run || run.status !== 'running') return;
  run.unit = unit;
  scheduleRender();
}

/** A run started: relabel the accuracy chart when the training sample changed, say so. */
function onStart(ev) {
  const relabel = state.trainSize !== ev.train_size || state.trainEvalSize !== ev.train_eval_size;
  state.trainSize = ev.train_size;
  state.trainEvalSize = ev.train_eval_size;
  if (relabel) makeCharts(); // the accuracy curve's label names the training sample
  if (!state.stopping) {
    setStatus(`${strategyName(ev.strategy)}: started — ${count(ev.total_steps)} steps over ${count(ev.train_size)} training sentences, ` +
      `${count(ev.trainable_parameters)} trainable parameters, ${ev.threads} thread${ev.threads === 1 ? '' : 's'}.`);
  }
}

/**
 * The end of a Train: a `train-done` message `{stopped, failed}`, or a worker restart in the
 * middle of one (`{stopped: false, failed: true}`).
 */
export function finishTraining(msg) {
  state.running = false;
  state.estimate = null;
  state.trainsFinished += 1;
  state.stopping = false;
  $('progress').hidden = true;
  $('progress-text').hidden = true;
  endTrain(state, msg.stopped ? 'stopped' : 'failed');
  if (msg.stopped) setStatus('Stopped. The runs so far are kept; press Train to start again.');
  else if (msg.failed) setStatus('Training did not finish: see the message below.');
  else setStatus(`Done: ${state.order.map((s) => `${strategyName(s)} ${pct(state.runs[s].done ? state.runs[s].done.train_accuracy : null)} training accuracy`).join(', ')}.`);
  renderResults();
  renderConfusion();
  scheduleChartUpdate();
  updateControls();
}
