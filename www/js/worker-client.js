// The page's end of the worker: starting and terminating it, sending messages, and
// request/answer pairing (an id per request; the worker's answer with that id resolves it, an
// `error` with that id rejects it). What to do with the other messages, and when to restart,
// is app.js's business.
import { FromWorker } from './protocol.js';

let worker = null;
let requestSeq = 0;
const pending = new Map(); // id → {resolve, reject}
// The thread count the current worker was asked for, and what its `ready` message reported
// ({threads, build}; null until then). A rayon pool starts once per wasm instance: another
// count needs another worker.
let requestedThreads = null;
let readyInfo = null;

/**
 * Start a worker (worker.js, a module worker) that trains with `threads` threads (its URL's
 * `?threads=N`: the threaded build when the page is cross-origin isolated and N > 1, else the
 * single-threaded one). `onMessage(msg, answered)` gets every message; `answered` is true when
 * it settled a `request()` (its caller deals with it). `onError(event)` gets a failure to start
 * or an uncaught error in the worker.
 */
export function startWorker({ onMessage, onError, threads }) {
  const url = new URL('../worker.js', import.meta.url);
  url.searchParams.set('threads', String(threads));
  requestedThreads = threads;
  readyInfo = null;
  worker = new Worker(url, { type: 'module' });
  worker.onmessage = (e) => {
    if (e.data && e.data.type === FromWorker.READY) readyInfo = { threads: e.data.threads, build: e.data.build };
    onMessage(e.data, settle(e.data));
  };
  worker.onerror = (e) => {
    e.preventDefault();
    onError(e);
  };
}

/** Terminate the worker (which frees all of its memory) and reject its open requests. */
export function terminateWorker() {
  worker.terminate();
  for (const { reject } of pending.values()) reject(new Error('the worker was restarted'));
  pending.clear();
}

/**
 * Whether the current worker can train with `threads` threads: it was started for that many,
 * or it runs that many already (a worker asked for N that fell back to one thread serves 1).
 */
export function workerServesThreads(threads) {
  return threads === requestedThreads || (readyInfo !== null && threads === readyInfo.threads);
}

/** The current Worker object (window.__webtune.worker in the tests). */
export const currentWorker = () => worker;

/** Post a message that expects no answer through request() (e.g. train, stop). */
export function send(msg) {
  worker.postMessage(msg);
}

/** A fresh id for a message whose answer is matched by the caller itself (parse). */
export const nextId = () => ++requestSeq;

/**
 * Post `{type, id, ...payload}` (`transfer`: buffers to hand over, not copy); resolves with
 * the answer, rejects with an `error`'s message.
 */
export function request(type, payload, transfer = []) {
  const id = nextId();
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ type, id, ...payload }, transfer);
  });
}

function settle(msg) {
  const p = msg.id !== undefined && pending.get(msg.id);
  if (!p) return false;
  pending.delete(msg.id);
  if (msg.type === FromWorker.ERROR) p.reject(new Error(msg.message));
  else p.resolve(msg);
  return true;
}
