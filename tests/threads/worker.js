// The threaded-build check's worker: loads www/pkg-threads (the `threads` feature build), starts
// rayon's pool with initThreadPool, then trains all-MiniLM-L6-v2 (from the server's local hub
// mirror) for a few steps through the same wasm API the app's worker uses, and posts what it saw.
// With `pkg: 'pkg'` it runs the same steps on the single-threaded build instead (no pool), for
// the comparison of losses; with `simd: 'relaxed'` on the package's relaxed-SIMD module.
import { hasRelaxedSimd, WASM_MODULE_FILES } from '../../www/js/wasm-features.js';

const HUB = '/hub/all-MiniLM-L6-v2/resolve/main';

const log = (text) => self.postMessage({ type: 'log', text });

async function fetchUrl(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

const fetchBytes = (name) => fetchUrl(`${HUB}/${name}`);

async function check({ pkg, steps, threads, simd }) {
  const threaded = pkg === 'pkg-threads';
  const result = {
    pkg,
    simd,
    relaxedProbe: hasRelaxedSimd(),
    workerIsolated: self.crossOriginIsolated,
    hardwareConcurrency: navigator.hardwareConcurrency,
  };
  // Without cross-origin isolation there is no SharedArrayBuffer, and the threaded module cannot
  // even be instantiated (its memory is shared): report that plainly instead of a wasm error.
  if (threaded && !self.crossOriginIsolated) throw new Error('the worker is not cross-origin isolated (COOP/COEP missing)');

  const { default: init, initThreadPool, parse_data, WebSession } = await import(`../../www/${pkg}/webtune.js`);
  let t = performance.now();
  const wasm = await init({ module_or_path: new URL(`../../www/${pkg}/${WASM_MODULE_FILES[simd]}`, import.meta.url) });
  result.initMs = Math.round(performance.now() - t);
  result.sharedMemory = wasm.memory.buffer instanceof SharedArrayBuffer;

  if (threaded) {
    // At least 2 so the pool is exercised even on a 1-core machine (2 on the 2-core CI machine).
    result.requestedThreads = threads ?? Math.max(2, navigator.hardwareConcurrency || 1);
    t = performance.now();
    await initThreadPool(result.requestedThreads);
    result.poolMs = Math.round(performance.now() - t);
    log(`${pkg}: initThreadPool(${result.requestedThreads}) in ${result.poolMs} ms`);
  } else {
    result.requestedThreads = 1;
    result.hasInitThreadPool = typeof initThreadPool === 'function';
  }

  // The notebook's sentences, from the repository (the check serves its root).
  const notebookTsv = new TextDecoder().decode(await fetchUrl('../../data/notebook.tsv'));
  const parsed = parse_data(notebookTsv, undefined, undefined, 0n);
  if (!parsed.ok) throw new Error(`parse_data: ${JSON.stringify(parsed.diagnostics)}`);
  result.trainCount = parsed.train_count;

  t = performance.now();
  const [config, tokenizer, model] = await Promise.all(['config.json', 'tokenizer.json', 'model.safetensors'].map(fetchBytes));
  const session = new WebSession(config, tokenizer, model);
  result.loadMs = Math.round(performance.now() - t);
  log(`${pkg}: model loaded in ${result.loadMs} ms (${model.length} bytes)`);

  const run = session.start_run('full', notebookTsv, undefined, undefined, { seed: 0 });
  result.losses = [];
  result.stepMs = [];
  let last = performance.now();
  while (!run.finished() && result.losses.length < steps) {
    const event = run.step();
    const now = performance.now();
    if (event.type === 'error') throw new Error(`run: ${event.message}`);
    if (event.type === 'start') result.threads = event.threads;
    if (event.type === 'step') {
      result.losses.push(event.loss);
      result.stepMs.push(Math.round(now - last));
    }
    last = now;
  }
  const stopped = run.stop();
  result.stoppedEvent = stopped.type;
  run.free();
  session.free();
  return result;
}

self.onmessage = async ({ data }) => {
  try {
    self.postMessage({ type: 'result', result: await check(data) });
  } catch (e) {
    self.postMessage({ type: 'error', message: String(e?.stack || e) });
  }
};
