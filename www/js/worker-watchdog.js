// The page's watch on a worker that may stop answering without a word. In the threaded build
// a training step runs on a pool thread while the worker's own thread sleeps until it is done;
// a panic or an out-of-memory abort there ends the pool thread and leaves the worker asleep
// for ever, so no message of the worker can say so. Two watches, several times a second:
//   - the instance's shared memory (the worker's `ready` message hands it over): the panic
//     hook's message, or a refused allocation (wasm-fault.js, src/web/fault.rs);
//   - silence: while a run is training, no message for much longer than its steps take (any
//     other death of a thread: a trap that runs no Rust code).
// Either one calls `onFault`, once per worker; app.js then restarts the worker.
import { readFault, hasFault } from './wasm-fault.js';
import { state } from './state.js';

const POLL_MS = 250;
/** The least silence taken for a dead worker while a run trains. */
const MIN_SILENCE_MS = 60_000;
/** How many times its expected duration a unit of work may stay silent. */
const SILENCE_FACTOR = 10;
/** GFLOP/s assumed before a rate is measured: slow on purpose (a first step must not look dead). */
const ASSUMED_GFLOPS = 1;
/**
 * A fault that may be the worker's own thread's (a panic there, or a refused allocation on any
 * thread) is reported by the worker itself, with its crash message, within milliseconds: the
 * watchdog steps in only when that report does not come.
 */
const OWN_REPORT_GRACE_MS = 3_000;
/**
 * A check this late means the page itself did not run (a computer asleep, a throttled
 * background tab): the worker's silence over that time is no evidence, so it starts over.
 */
const LATE_CHECK_MS = 10_000;
/** GFLOP of one chunk of encoding or evaluation (src/plan.rs `CHUNK_FLOPS`). */
const CHUNK_GFLOP = 4;

let memory = null;    // the watched worker's memory (SharedArrayBuffer) and fault layout
let lastHeard = 0;    // performance.now() of its last message
let faultSeen = null; // performance.now() when a fault the worker may report itself was first read
let lastCheck = 0;    // performance.now() of the previous check
let timer = null;
let onFault = null;

/**
 * How long one unit of the running run's work — a step, or a chunk of encoding or evaluation,
 * between two of the worker's messages — should take (`expectedMs`: its planned work over the
 * measured rate, or over an assumed slow one until there is one), and how long a silence is
 * taken for a dead worker (`allowedMs`); null when no run is training (a download or a model
 * load may stall for reasons of its own).
 */
export function silenceLimits() {
  if (!state.running) return null;
  const running = state.order.find((s) => state.runs[s] && state.runs[s].status === 'running');
  if (!running) return null;
  const plan = (state.plans || []).find((p) => p.strategy === running);
  const unitGflop = Math.max(plan ? plan.work_per_step : 0, CHUNK_GFLOP);
  const rate = state.estimate && state.estimate.rate > 0 ? state.estimate.rate : ASSUMED_GFLOPS;
  const expectedMs = (unitGflop / rate) * 1000;
  return { expectedMs, allowedMs: Math.max(MIN_SILENCE_MS, SILENCE_FACTOR * expectedMs) };
}

function check() {
  const now = performance.now();
  if (now - lastCheck > LATE_CHECK_MS) lastHeard = now;
  lastCheck = now;
  if (memory) {
    const fault = readFault(memory.buffer, memory.layout);
    if (fault.panic && fault.panic.poolThread) return fire({ ...fault, silentMs: null });
    if (hasFault(fault)) {
      faultSeen ??= now;
      if (now - faultSeen >= OWN_REPORT_GRACE_MS) return fire({ ...fault, silentMs: null });
    }
  }
  const limits = silenceLimits();
  const silentMs = now - lastHeard;
  if (limits !== null && silentMs > limits.allowedMs) fire({ panic: null, failedAllocation: 0, silentMs, ...limits });
  return undefined;
}

function fire(fault) {
  const callback = onFault;
  stopWatching();
  callback(fault);
}

/**
 * Watch a newly started worker. `handler(fault)` is called at most once: `fault` is
 * `{panic: {message, poolThread} | null, failedAllocation, silentMs}` (wasm-fault.js's
 * readFault; `silentMs` null, or how long the worker was silent when that gave it away, with
 * silenceLimits()'s `expectedMs` and `allowedMs`).
 */
export function watchWorker(handler) {
  stopWatching();
  onFault = handler;
  lastHeard = performance.now();
  lastCheck = lastHeard;
  faultSeen = null;
  timer = setInterval(check, POLL_MS);
}

/**
 * The worker's `ready` message: `faults` is null (single-threaded build: every fault traps the
 * worker's own thread, which reports it) or `{memory: SharedArrayBuffer, ...layout}`.
 */
export function watchMemory(faults) {
  if (!faults) return;
  const { memory: buffer, ...layout } = faults;
  memory = { buffer, layout };
}

/** Any message from the worker: it is alive. */
export function heardFromWorker() {
  lastHeard = performance.now();
}

/** The worker is being terminated (or has reported its own crash): no more watching. */
export function stopWatching() {
  clearInterval(timer);
  timer = null;
  memory = null;
  onFault = null;
}
