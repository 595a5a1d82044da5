// What killed a thread of the WebAssembly instance, read from its memory (src/web/fault.rs):
// the first Rust panic (written by the panic hook of whichever thread panicked, a pool thread
// included) and the size of the last allocation the heap refused (an out-of-memory abort runs
// no panic hook). Reading needs no call into the instance, so it works while every thread of
// it is stuck or dead: the worker reads it after a trap of its own thread, the page
// (worker-watchdog.js) from the shared memory while the worker cannot answer. No DOM.

/** The panic's state word once its message is complete (src/web/fault.rs `WRITTEN`). */
const PANIC_WRITTEN = 2;

/**
 * What the memory `buffer` (an ArrayBuffer or SharedArrayBuffer of the instance) holds at the
 * places `layout` names (wasm `fault_block()`): `{panic: {message, poolThread} | null,
 * failedAllocation: bytes (0: none)}`.
 */
export function readFault(buffer, layout) {
  const word = (address) => Atomics.load(new Uint32Array(buffer, address, 1), 0);
  const at = layout.address;
  let panic = null;
  if (word(at + layout.state_offset) === PANIC_WRITTEN) {
    const length = Math.min(word(at + layout.length_offset), layout.capacity);
    // A copy: TextDecoder refuses views of shared memory.
    const bytes = new Uint8Array(buffer, at + layout.message_offset, length).slice();
    panic = { message: new TextDecoder().decode(bytes), poolThread: word(at + layout.pool_thread_offset) === 1 };
  }
  return { panic, failedAllocation: word(layout.failed_allocation_address) };
}

/** Whether `fault` (from readFault) says something killed a thread. */
export const hasFault = (fault) => Boolean(fault && (fault.panic || fault.failedAllocation));

const mb = (bytes) => `${(bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0)} MB`;

/** What killed the thread, in a few words (`fault` from readFault, with something in it). */
export function faultDetail(fault) {
  if (fault.panic) return fault.panic.message.replace(/\s+/g, ' ').trim();
  return `out of memory: an allocation of ${mb(fault.failedAllocation)} failed`;
}

/** One sentence on what killed the thread (`fault` from readFault, with something in it). */
export function faultSentence(fault) {
  if (fault.panic) {
    const where = fault.panic.poolThread ? 'A thread of the WebAssembly training pool' : 'The WebAssembly code';
    return `${where} panicked (${faultDetail(fault)}).`;
  }
  return `The WebAssembly memory ran out: an allocation of ${mb(fault.failedAllocation)} failed.`;
}

/**
 * What to try so that it does not happen again: less memory per step, fewer threads, or the
 * single-threaded build (`threads`: the thread count of the worker that failed).
 */
export function faultAdvice(threads) {
  const threaded = threads > 1
    ? ', fewer threads (the Threads field), or the single-threaded build (Threads 1)'
    : '';
  return `If it happens again, try a smaller batch size, a shorter max length or fewer layers to train (less memory per step)${threaded}.`;
}
