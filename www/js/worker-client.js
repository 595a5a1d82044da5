// The page's end of the worker: starting and terminating it, sending messages, and
// request/answer pairing (an id per request; the worker's answer with that id resolves it, an
// `error` with that id rejects it). What to do with the other messages, and when to restart,
// is app.js's business.
import { FromWorker } from './protocol.js';

let worker = null;
let requestSeq = 0;
const pending = new Map(); // id → {resolve, reject}

/**
 * Start a worker (worker.js, a module worker). `onMessage(msg, answered)` gets every message;
 * `answered` is true when it settled a `request()` (its caller deals with it). `onError(event)`
 * gets a failure to start or an uncaught error in the worker.
 */
export function startWorker({ onMessage, onError }) {
  worker = new Worker(new URL('../worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = (e) => onMessage(e.data, settle(e.data));
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

/** The current Worker object (window.__webtune.worker in the tests). */
export const currentWorker = () => worker;

/** Post a message that expects no answer through request() (e.g. train, stop). */
export function send(msg) {
  worker.postMessage(msg);
}

/** A fresh id for a message whose answer is matched by the caller itself (parse). */
export const nextId = () => ++requestSeq;

/** Post `{type, id, ...payload}`; resolves with the answer, rejects with an `error`'s message. */
export function request(type, payload) {
  const id = nextId();
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ type, id, ...payload });
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
