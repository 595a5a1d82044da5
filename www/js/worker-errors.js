// The worker's errors (worker.js and the modules it drives: wasm-loader.js, hub.js,
// train-driver.js): a UserError carries a sentence for the page (and an ErrorCode); a
// WebAssembly.RuntimeError is a crash of the instance. Worker scope only in spirit: no DOM.

/** An error whose message is written for the user (`code`: an ErrorCode, or undefined). */
export class UserError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

/** The message of anything thrown. */
export function errorMessage(e) {
  if (e instanceof Error) return e.message || String(e);
  return String(e);
}

/** Whether `e` is a trap of the WebAssembly instance (a Rust panic, out of memory). */
export function isCrash(e) {
  return e instanceof WebAssembly.RuntimeError || (e && e.name === 'RuntimeError');
}
