// webtune page, entry point: wires the page modules (www/js/) to the controls and to the
// worker's messages. Never blocks: all model work happens in ./worker.js. All text that may
// come from the user (sentences, labels, messages quoting them) is shown with textContent.
//
// Modules, from the bottom layer up (each imports only modules listed before it):
//   js/protocol.js      page ↔ worker message types and fields (shared with worker.js)
//   js/dom.js           $, el, number fields          js/format.js   pct, secs, strategy names
//   js/state.js         the page state
//   js/status.js        status line, error and warning boxes
//   js/worker-client.js start/terminate the worker, request/answer ids
//   js/wasm-fault.js    js/worker-watchdog.js
//                       a worker that cannot answer any more: a thread's panic or out-of-memory
//                       read from its shared memory, or its silence while a run trains
//   js/model-panel.js   model choice, model info, download progress
//   js/threads.js       the Threads control (1 … cores; 1 on a page that is not cross-origin isolated)
//   js/train-form.js    strategies and options: defaults, limits and messages from the core's spec
//   js/controls.js      what may be pressed now (Train's blockers, Stop, Classify, Download)
//   js/data-panel.js    data boxes, parse as you type
//   js/data-files.js    data from a file (picker, drop, big paste): name, size, first lines
//   js/charts.js  js/progress.js  js/results.js  js/class-table.js  js/confusion.js
//                       the renderers of a Train's progress and results
//   js/class-colors.js  js/svg.js  js/embedding-map.js  js/separation-chart.js  js/layer-changes.js
//                       the pieces of the Look inside panel
//   js/insight.js       Look inside: embedding maps, separation, layer changes; epoch slider, Play
//   js/training.js      one Train: start, stop, plan/event/train-done
//   js/try-it.js        Try it          js/download.js   the tar download (js/tar.js)
//   js/record.js        the Train's record: Export results (JSON), Export curves (CSV)
//   js/saved-models.js  Save model, the Saved models list (Cache API), Try it / Download / Delete
//                       of a saved model (controls.js calls these two modules' update functions)
//   js/record-view.js   Load results: check a record (js/json-schema.js), show its table and charts
//   js/announce.js      live-region announcements of the training progress
//   js/recipe-export.js Export recipe: a strategy's training as a PyTorch script (tar)
import { ErrorCode, FromWorker, ToWorker, WarningCode } from './js/protocol.js';
import { $, intValue } from './js/dom.js';
import { state } from './js/state.js';
import { clearError, setStatus, showError, showWarning } from './js/status.js';
import { currentWorker, startWorker as startWorkerClient, terminateWorker, workerServesThreads } from './js/worker-client.js';
import { faultAdvice, faultSentence } from './js/wasm-fault.js';
import { heardFromWorker, stopWatching, watchMemory, watchWorker } from './js/worker-watchdog.js';
import { count, secs, strategyName } from './js/format.js';
import { chosenThreads, initThreadsControl, maxThreads, threadsUnavailable } from './js/threads.js';
import { DEFAULT_HUB, onModelLoaded, renderModelChoice, renderProgress } from './js/model-panel.js';
import { updateControls } from './js/controls.js';
import { applyDeviceSpec, applyOptionSpec, LORA_TARGETS } from './js/train-form.js';
import { onParsed, onParseError, scheduleParse, tabTypesTab, valMode } from './js/data-panel.js';
import { charts, makeCharts, resizeCharts, scheduleChartUpdate } from './js/charts.js';
import { initConfusion, renderConfusion } from './js/confusion.js';
import { initDataFiles } from './js/data-files.js';
import { finishTraining, onPlan, onTrainingEvent, onUnitProgress, startTraining, stopTraining } from './js/training.js';
import { classify } from './js/try-it.js';
import { initInsight, insight } from './js/insight.js';
import { download, downloadAdapter } from './js/download.js';
import { currentRecord, initRecord, onRecordHead, recordEvent } from './js/record.js';
import { initSavedModels } from './js/saved-models.js';
import { initRecordView, loaded, redrawLoaded } from './js/record-view.js';
import { initAnnouncements } from './js/announce.js';
import { initRecipeExport } from './js/recipe-export.js';

// Hooks for the end-to-end tests (tests/e2e): the state, the uPlot charts, what the embedding maps drew, the current worker,
// the loaded record's view and the current Train's record.
window.__webtune = { state, charts, insight, loaded, record: currentRecord, get worker() { return currentWorker(); } };

// ---------------------------------------------------------------------------------------------
// Worker: start, restart after a crash, dispatch its messages
// ---------------------------------------------------------------------------------------------
function startWorker() {
  state.ready = false;
  state.workerThreads = null;
  state.workerSimd = null;
  state.workerStarts += 1;
  startWorkerClient({
    onMessage: onWorkerMessage,
    onError: (e) => showError(`The background worker failed to start or crashed: ${e.message || 'unknown error'}. Reload the page to try again.`),
    threads: chosenThreads() ?? maxThreads(),
  });
  watchWorker(onWorkerFault);
  scheduleParse(0);
}

/**
 * Before a Train: a worker whose thread pool has another size than the Threads control is
 * replaced (a pool starts once per wasm instance). Cheap: the Train frees the previous runs
 * anyway, and the model is read again from the Cache API. The Train is posted to the new
 * worker at once; it runs when that worker's wasm has loaded. True when it restarted.
 */
function useThreads(threads) {
  if (workerServesThreads(threads)) return false;
  restartWorker();
  return true;
}

/**
 * Terminate the worker and start a fresh one. The finished runs keep their rows, charts and
 * record (page state), but their trained models lived in the worker: they are marked lost, so
 * Try it and Download no longer offer them.
 */
function restartWorker() {
  stopWatching();
  terminateWorker();
  for (const s of state.order) state.runs[s].modelLost = true;
  if (state.running) finishTraining({ stopped: false, failed: true });
  startWorker();
}

/**
 * The watchdog found the worker unable to answer (worker-watchdog.js): say what happened,
 * what was kept and what to try, then restart it.
 */
function onWorkerFault(fault) {
  const threads = state.workerThreads ?? 1;
  const what = fault.silentMs !== null
    ? `The background worker stopped answering: nothing from it for ${count(fault.silentMs / 1000)} s in a run whose steps take about ${secs(fault.expectedMs)}.`
    : `${faultSentence(fault)} The background worker could not go on.`;
  const finished = state.order.filter((s) => ['done', 'stopped'].includes(state.runs[s].status));
  const kept = finished.length
    ? `The results of the finished run${finished.length === 1 ? '' : 's'} (${finished.map(strategyName).join(', ')}) are kept; ` +
      'the trained models were in the worker and are gone: train again to use them in Try it or Download.'
    : state.order.length ? 'No run of this Train had finished.' : '';
  showError([what, 'It has been restarted.', kept, faultAdvice(threads)].filter(Boolean).join(' '), ErrorCode.CRASH);
  restartWorker();
}

/** `answered`: the message settled a request (predict, export); its caller handles it. */
function onWorkerMessage(msg, answered) {
  heardFromWorker();
  switch (msg.type) {
    case FromWorker.READY:
      watchMemory(msg.faults);
      applyOptionSpec(msg.optionSpec);
      applyDeviceSpec(msg.deviceSpec);
      state.ready = true;
      state.workerThreads = msg.threads;
      state.workerSimd = msg.simd;
      if (!state.running) setStatus('Ready. Press Train to start.');
      updateControls();
      break;
    case FromWorker.PARSED:
      onParsed(msg);
      break;
    case FromWorker.PROGRESS:
      renderProgress(msg);
      break;
    case FromWorker.STATUS:
      setStatus(msg.message);
      break;
    case FromWorker.DEVICE_NOTE:
      $('device-note').textContent = msg.message;
      state.deviceNotes.push(msg.message);
      break;
    case FromWorker.WARNING:
      state.warnings.push(msg.message);
      showWarning(msg.message);
      if (msg.code === WarningCode.THREADS_FALLBACK) {
        threadsUnavailable(msg.message);
        updateControls();
      }
      break;
    case FromWorker.MODEL:
      onModelLoaded(msg);
      updateControls();
      break;
    case FromWorker.PLAN:
      onPlan(msg);
      break;
    case FromWorker.EVENTS:
      state.estimate = msg.estimate ?? null;
      for (const event of msg.events) {
        recordEvent(event);
        onTrainingEvent(event, msg.memory, msg.allocated);
      }
      if (msg.unit) onUnitProgress(msg.unit);
      break;
    case FromWorker.RECORD_HEAD:
      onRecordHead(msg.head);
      break;
    case FromWorker.TRAIN_DONE:
      finishTraining(msg);
      break;
    case FromWorker.ERROR:
      if (!answered) { // (an answer to predict/export is shown by its caller)
        if (msg.id !== undefined && msg.context === ToWorker.PARSE) onParseError(msg);
        else showError(msg.message, msg.code);
      }
      if (msg.code === ErrorCode.CRASH) restartWorker();
      break;
    default:
      break; // PREDICTIONS, EXPORTED, RECORD_CHECKED: answers, settled by worker-client
  }
}

// ---------------------------------------------------------------------------------------------
// Controls
// ---------------------------------------------------------------------------------------------
function init() {
  const params = new URLSearchParams(location.search);
  const hub = params.get('hub');
  $('hub-url').value = hub || DEFAULT_HUB;
  if (hub) $('hub-details').open = true;
  const repo = params.get('repo');
  if (repo) {
    $('model-select').value = 'other';
    $('repo-id').value = repo;
    if (params.get('revision')) $('revision').value = params.get('revision');
  }

  tabTypesTab($('train-text'));
  tabTypesTab($('val-text'));
  $('train-text').addEventListener('input', () => scheduleParse());
  $('val-text').addEventListener('input', () => scheduleParse());
  $('val-fraction').addEventListener('input', () => scheduleParse());
  $('seed').addEventListener('input', () => { scheduleParse(); updateControls(); });
  for (const radio of document.querySelectorAll('input[name="val-mode"]')) {
    radio.addEventListener('change', () => {
      $('val-split-box').hidden = valMode() !== 'split';
      $('val-text-box').hidden = valMode() !== 'text';
      scheduleParse(0);
    });
  }
  const onModelChoice = () => {
    renderModelChoice();
    updateControls();
  };
  for (const id of ['model-select', 'hub-url', 'repo-id', 'revision', 'model-files']) {
    $(id).addEventListener('input', onModelChoice);
    $(id).addEventListener('change', onModelChoice);
  }
  for (const id of ['s-frozen', 's-top', 's-lora', 'lora-r', 'lora-alpha', 'lora-dropout', 'lora-lr', ...LORA_TARGETS.map((x) => `lora-t-${x}`), 's-full', 'top-k', 'epochs', 'lr', 'head-lr', 'batch', 'max-len', 'pad-max', 'eval-sample', 'threads']) {
    $(id).addEventListener('input', updateControls);
    $(id).addEventListener('change', updateControls);
  }
  $('top-k').addEventListener('input', () => { if (!$('s-top').checked && intValue('top-k')) { $('s-top').checked = true; updateControls(); } });
  $('lora-r').addEventListener('input', () => { if (!$('s-lora').checked && intValue('lora-r')) { $('s-lora').checked = true; updateControls(); } });
  $('train-btn').addEventListener('click', () => startTraining(useThreads));
  $('stop-btn').addEventListener('click', stopTraining);
  $('use-local-btn').addEventListener('click', () => {
    $('model-select').value = 'local';
    onModelChoice();
    clearError();
    setStatus('Switched to the local offline model. Press Train.');
    $('train-btn').focus();
  });
  $('try-form').addEventListener('submit', classify);
  $('download-btn').addEventListener('click', download);
  $('download-adapter-btn').addEventListener('click', downloadAdapter);
  $('download-select').addEventListener('change', updateControls);
  $('confusion-select').addEventListener('change', renderConfusion);
  initConfusion();
  initDataFiles();
  initInsight();
  initRecord();
  initRecordView();
  initSavedModels();
  initAnnouncements();
  initRecipeExport();
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeCharts, 100);
  });

  // The charts' axis colours come from style.css: redraw them when the system's dark mode changes.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    makeCharts();
    scheduleChartUpdate();
    redrawLoaded();
  });

  initThreadsControl(params.get('threads'));
  onModelChoice();
  makeCharts();
  renderConfusion();
  startWorker();
}

init();
