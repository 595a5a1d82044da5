// Loading the WebAssembly core in the worker: www/pkg (single-threaded, any page) or
// www/pkg-threads (rayon's pool on Web Workers, initThreadPool; needs a cross-origin isolated
// page: COOP/COEP → SharedArrayBuffer), each with its relaxed-SIMD module where the engine
// validates relaxed SIMD and its plain simd128 module otherwise (README "How it is built").
import { hasRelaxedSimd, WASM_MODULE_FILES } from './wasm-features.js';
import { errorMessage } from './worker-errors.js';

/**
 * How long initThreadPool may take: it waits for every pool worker to load the module, and a
 * worker that cannot (a missing file, a refused module) would otherwise leave it waiting forever.
 */
const POOL_START_TIMEOUT_MS = 30_000;

/** Relaxed SIMD (one fused multiply-add instead of a multiply and an add in the products). */
const relaxedSimd = hasRelaxedSimd();

/** The thread count this worker was started for (`?threads=N`; default every logical core). */
export function requestedThreads() {
  const raw = new URL(self.location.href).searchParams.get('threads');
  const n = raw !== null && /^\d+$/.test(raw) ? Number(raw) : Math.floor(navigator.hardwareConcurrency || 1);
  return Math.max(1, n);
}

/** Threads need shared memory: a cross-origin isolated worker with SharedArrayBuffer. */
export const canUseThreads = () => Boolean(self.crossOriginIsolated) && typeof SharedArrayBuffer === 'function';

/**
 * Instantiate a package folder's glue with its relaxed-SIMD module where the engine has relaxed
 * SIMD, else — or when that module does not load — with its plain simd128 module. Both compute
 * the same model; the relaxed one's products are faster and may round differently in the last
 * bit (a fused multiply-add).
 */
async function instantiate(api, folder) {
  if (relaxedSimd) {
    try {
      const exports = await api.default({ module_or_path: new URL(`../${folder}/${WASM_MODULE_FILES.relaxed}`, import.meta.url) });
      return { exports, simd: 'relaxed' };
    } catch (e) {
      console.warn(`webtune: ${folder}/${WASM_MODULE_FILES.relaxed} did not load (${errorMessage(e)}); using ${WASM_MODULE_FILES.simd128}`);
    }
  }
  const exports = await api.default({ module_or_path: new URL(`../${folder}/${WASM_MODULE_FILES.simd128}`, import.meta.url) });
  return { exports, simd: 'simd128' };
}

/** www/pkg: `{api, memory, threads: 1, build: 'single', simd}`. */
export async function loadSingle() {
  const api = await import('../pkg/webtune.js');
  const { exports, simd } = await instantiate(api, 'pkg');
  return { api, memory: exports.memory, threads: 1, build: 'single', simd };
}

/** www/pkg-threads with a pool of `n` threads: `{api, memory, threads: n, build: 'threads', simd}`. */
export async function loadThreaded(n) {
  const api = await import('../pkg-threads/webtune.js');
  const { exports, simd } = await instantiate(api, 'pkg-threads');
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`its ${n} threads did not start within ${POOL_START_TIMEOUT_MS / 1000} s`)), POOL_START_TIMEOUT_MS);
  });
  try {
    await Promise.race([api.initThreadPool(n), timeout]);
  } finally {
    clearTimeout(timer);
  }
  return { api, memory: exports.memory, threads: n, build: 'threads', simd };
}
