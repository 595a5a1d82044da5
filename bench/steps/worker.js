// The step benchmark's worker: one job = one model, one thread count, several (strategy, batch,
// seq) cases, each timed by the wasm `WebBench` (the CLI's `webtune bench` StepBench: warm-up
// steps, then the median of `rounds` steps split into forward, backward and optimizer); the
// cases alternate step by step.

import { hasRelaxedSimd, WASM_MODULE_FILES } from '../../www/js/wasm-features.js';

const log = (text) => self.postMessage({ type: 'log', text });

// A yield to the event loop, where a GPU read-back resolves (a MessageChannel message: not
// clamped to 4 ms as nested setTimeout(0) calls are).
const channel = new MessageChannel();
const waiters = [];
channel.port1.onmessage = () => waiters.shift()();
const yieldToEventLoop = () => new Promise((resolve) => { waiters.push(resolve); channel.port2.postMessage(null); });

/** Every step of `bench` on a GPU device of its own (WebGPU), yielding between units. */
async function runOnGpu(wasmModule, session, bench) {
  const gpu = await wasmModule.request_gpu(session.largest_tensor_bytes());
  try {
    bench.use_gpu(gpu);
  } finally {
    gpu.free();
  }
  while (bench.advance()) await yieldToEventLoop();
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

// `simd`: which module of the package ('relaxed' | 'simd128'); by default the one the app's
// worker would load here.
// `device`: 'gpu' times the steps on WebGPU, one case after the other (each on its own device).
async function runJob({ model, threads, cases, rounds, gemm, simd, device = 'cpu' }) {
  const pkg = threads > 1 ? 'pkg-threads' : 'pkg';
  if (threads > 1 && !self.crossOriginIsolated) throw new Error('the worker is not cross-origin isolated (COOP/COEP missing): no threaded build');
  simd = simd || (hasRelaxedSimd() ? 'relaxed' : 'simd128');
  const wasmModule = await import(`../../www/${pkg}/webtune.js`);
  await wasmModule.default({ module_or_path: new URL(`../../www/${pkg}/${WASM_MODULE_FILES[simd]}`, import.meta.url) });
  if (threads > 1) await wasmModule.initThreadPool(threads);
  const hub = `/hub/${model}/resolve/main`;
  const [config, tokenizer, weights] = await Promise.all(['config.json', 'tokenizer.json', 'model.safetensors'].map((f) => fetchBytes(`${hub}/${f}`)));
  const session = new wasmModule.WebSession(config, tokenizer, weights);
  log(`${model}: loaded on ${pkg}, ${WASM_MODULE_FILES[simd]} (${threads} thread${threads > 1 ? 's' : ''})`);
  if (gemm) {
    const rows = [...new Set(cases.map(({ batch, seq }) => `${batch}×${seq}`))].map((key) => key.split('×').map(Number));
    const results = rows.flatMap(([batch, seq]) => wasmModule.WebBench.gemm(session, batch * seq, rounds).map((t) => ({ ...t, batch, seq_len: seq, model, threads })));
    session.free();
    return results;
  }
  // Every case's benchmark at once, stepped in turn, so that all see the same machine load (the
  // machine is noisy: a strategy's step varies by ±20 % from one minute to the next).
  const benches = cases.map(({ strategy, batch, seq }) => ({ bench: new wasmModule.WebBench(session, strategy, seq, batch, rounds), stepMs: [] }));
  if (device === 'gpu') {
    for (const b of benches) await runOnGpu(wasmModule, session, b.bench);
  }
  for (let running = device !== 'gpu'; running;) {
    running = false;
    for (const b of benches) {
      const t = performance.now();
      if (b.bench.next_step()) {
        b.stepMs.push(Math.round(performance.now() - t));
        running = true;
      }
    }
  }
  const results = benches.map(({ bench, stepMs }) => {
    const timings = { ...bench.timings(), step_ms_each: stepMs };
    bench.free();
    log(`${model} ${timings.strategy} ${timings.batch}×${timings.seq_len} on ${timings.device}, ${threads} thread(s): step ${timings.step_ms.toFixed(1)} ms${stepMs.length ? ` (each: ${stepMs.join(', ')})` : ''}`);
    return { ...timings, model, threads };
  });
  session.free();
  return results;
}

self.onmessage = async ({ data }) => {
  try {
    self.postMessage({ type: 'result', results: await runJob(data) });
  } catch (e) {
    self.postMessage({ type: 'error', message: String(e?.stack || e) });
  }
};
