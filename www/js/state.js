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
  trainingModelKey: null, // modelKey of the source the current/last Train asked for
  lastError: null,
  warnings: [],
  predictions: null,
  workerStarts: 0,
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
    done: null,           // the Done event
    error: null,
    memory: 0,            // largest wasm memory size seen during this run (bytes)
  };
}
