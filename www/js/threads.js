// The Threads control of the Training form: how many threads the worker trains with. Threads
// need a cross-origin isolated page (served with COOP/COEP: SharedArrayBuffer, the threaded wasm
// build www/pkg-threads); elsewhere the control shows 1, disabled, and says why. The thread
// count a run really used is not read from here: it comes with the run's events (`start` /
// `done`, shown in the Results table).
import { $, intValue } from './dom.js';

/** Can this page run the threaded build at all (cross-origin isolated, SharedArrayBuffer)? */
export function threadsSupported() {
  return Boolean(self.crossOriginIsolated) && typeof SharedArrayBuffer === 'function';
}

/** The most threads offered: the device's logical cores (1 when the page cannot use threads). */
export function maxThreads() {
  return threadsSupported() ? Math.max(1, Math.floor(navigator.hardwareConcurrency || 1)) : 1;
}

const NOT_ISOLATED = 'Training runs on one thread here: this page is not cross-origin isolated ' +
  '(it was served without the COOP/COEP headers that multi-threaded WebAssembly needs).';

let fallbackMessage = null;

/**
 * Set the control up once: 1 … cores, default all of them (or `initial`, the page URL's
 * `?threads=N`, when it is in range); or 1, disabled, with the reason.
 */
export function initThreadsControl(initial) {
  const input = $('threads');
  const max = maxThreads();
  input.min = '1';
  input.max = String(max);
  const asked = initial !== null && /^\d+$/.test(initial) ? Number(initial) : null;
  input.value = String(asked !== null && asked >= 1 && asked <= max ? asked : max);
  if (!threadsSupported()) {
    input.disabled = true;
    $('threads-hint').textContent = NOT_ISOLATED;
  } else {
    $('threads-hint').textContent = `Threads: how many of this device's ${max} logical cores a training step ` +
      'uses. Changing it restarts the background worker at the next Train (the model is read again from the ' +
      'browser\'s cache); the results are the same on any thread count.';
  }
}

/**
 * The threaded build could not start in this tab (the worker fell back to one thread): show 1,
 * disabled, with the worker's reason. `message`: the worker's warning.
 */
export function threadsUnavailable(message) {
  fallbackMessage = message;
  const input = $('threads');
  input.value = '1';
  input.disabled = true;
  $('threads-hint').textContent = `Training runs on one thread: ${message}`;
}

/** The chosen thread count (1 when threads cannot be used here), or null when it is not valid. */
export function chosenThreads() {
  if (!threadsSupported() || fallbackMessage !== null) return 1;
  const n = intValue('threads');
  return n !== null && n >= 1 && n <= maxThreads() ? n : null;
}

/** What is wrong with the Threads field, as a sentence (null when nothing). */
export function threadsProblem() {
  return chosenThreads() === null ? `Threads must be a whole number from 1 to ${maxThreads()}.` : null;
}
