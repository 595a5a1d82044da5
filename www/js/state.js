// The page's state: one plain object that the message handlers and the controls write and
// the renderers read. It imports nothing; every other page module may import it. app.js
// exposes it as window.__webtune.state for the end-to-end tests.

export const state = {
  ready: false,          // worker + wasm loaded
  running: false,        // a Train is in progress
  stopping: false,
  parse: null,           // last parse_data result
  parsePending: true,
  order: [],             // strategies of the current/last Train, in run order
  runs: {},              // strategy → run record (see newRun)
  hasValidation: false,
  epochs: 4,
  model: null,           // {info, label, fromCache, key}
  trainingModelKey: null, // sourceKey (model-source.js) of the source the current/last Train asked for
  lastError: null,
  warnings: [],
  deviceNotes: [], // the worker's device-note messages (where runs train and why), in order
  predictions: null,
  plans: null,           // the Train's RunPlan[] (a `plan` message), in run order
  estimate: null,        // the core's time left for the running strategy (an `events` message)
  trainSize: null,       // training sentences of the current Train (from its first `start`)
  trainEvalSize: null,   // ... of which each epoch's training accuracy is measured on
  memory: null,          // the tab's WebAssembly memory size (bytes; it never shrinks)
  allocated: null,       // bytes the wasm heap holds live
  files: { train: null, validation: null }, // data loaded from a file: {name, size, text, lines}
  workerStarts: 0,
  workerThreads: null,   // threads of the current worker's wasm (its `ready` message; null before)
  workerSimd: null,      // 'relaxed' | 'simd128': which module of its package the worker loaded
  trainsStarted: 0,      // Train presses sent to the worker
  trainsFinished: 0,     // ... and answered with train-done (or ended by a worker restart)
};

/** The record of one strategy's run in `state.runs`, before it starts. */
export function newRun(strategy) {
  return {
    strategy,
    status: 'queued',     // queued | running | done | stopped | failed | skipped
    totalSteps: null,
    losses: [],           // losses[step - 1]
    epochs: [],           // epoch events
    lastStep: null,
    start: null,          // the `start` event
    progress: null,       // the latest `progress` event (encoding, evaluating)
    firstStep: null,      // the first and the latest `step` events (for steps/s)
    done: null,           // the `done` event
    stopped: null,        // the `stopped` event
    error: null,
    phase: null,          // what the run does now: 'cache' | 'train' | 'evaluate'
    phaseStartMs: 0,      // the run's elapsed time when the current cache/evaluate phase began
    workDone: 0,          // GFLOP so far (latest progress/step event)
    elapsedMs: 0,         // run time so far (latest event)
    unit: null,           // progress within the step or chunk under way, since the latest event (an `events` message's `unit`)
    memory: 0,            // largest wasm memory size seen during this run (bytes)
    maps: [],             // maps[epoch]: the `embedding` events (epoch 0: before training)
    mapTexts: null,       // {train, validation}: the map's sentences (from the first snapshot)
    layers: [],           // layers[epoch]: the `layers` events (from epoch 1)
    modelLost: false,     // its worker was restarted: results kept, model gone (no Try it, Download)
  };
}
