// What the browser's WebAssembly engine supports, for the worker's choice of module (each
// package folder holds a plain simd128 module and a relaxed-SIMD one behind the same glue;
// README "How it is built"). Also imported by tests/node/wasm-features.test.mjs.

/** The module file a package folder holds for each kind of SIMD. */
export const WASM_MODULE_FILES = { relaxed: 'webtune_relaxed_bg.wasm', simd128: 'webtune_bg.wasm' };

/**
 * Whether this engine runs WebAssembly relaxed SIMD: validates a one-function module whose
 * only instruction besides its constants is `f32x4.relaxed_madd` (0xfd 0x105), the one our
 * matrix products use. Engines without the proposal reject the opcode.
 */
export function hasRelaxedSimd() {
  const zero = [0xfd, 0x0c, ...new Array(16).fill(0)]; // v128.const 0
  const body = [0x00, ...zero, ...zero, ...zero, 0xfd, 0x85, 0x02, 0x0b]; // no locals; madd; end
  const module = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
    0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
    0x0a, body.length + 2, 0x01, body.length, ...body, // code section
  ]);
  try {
    return WebAssembly.validate(module);
  } catch {
    return false;
  }
}
