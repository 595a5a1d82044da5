// webtune worker: loads the WebAssembly core, fetches and caches the model files, drives
// training step by step and answers the page. No model math here: everything numeric is in
// Rust (src/web.rs → webtune core).
//
// The messages it receives and sends are described in js/protocol.js.
//
// Two builds of the same core (README "How it is built"): www/pkg, single-threaded, runs on any
// page; www/pkg-threads, with rayon's pool on Web Workers (initThreadPool), needs a cross-origin
// isolated page (COOP/COEP → SharedArrayBuffer). Each has a relaxed-SIMD module next to its plain
// one, loaded where the engine validates relaxed SIMD (see instantiate). The page starts this worker as
// `worker.js?threads=N` (default: every logical core): N > 1 on an isolated page loads
// pkg-threads and starts a pool of N threads; otherwise — or when the threaded module fails to
// load or its pool to start, which is reported as a `warning` — pkg, on one thread. A pool
// starts once per wasm instance, so another thread count means another worker (the page
// restarts it; the model comes back from the Cache API). `ready` says what was loaded.
import { CoreEvent, ErrorCode, FromWorker, ToWorker, WarningCode } from './js/protocol.js';
import { hasRelaxedSimd, WASM_MODULE_FILES } from './js/wasm-features.js';
import { answerRecipe } from './js/recipe-worker.js';

const CACHE_NAME = 'webtune-models-v1';
const MODEL_FILES = ['config.json', 'tokenizer.json', 'model.safetensors'];

let wasm = null;            // {api, memory, threads, build: 'threads' | 'single', simd: 'relaxed' | 'simd128'}
let session = null;         // WebSession
let sessionKey = null;      // sourceKey() of the loaded model
let sessionFiles = null;    // {config, tokenizer} bytes of the loaded model (for plan_train)
const runs = new Map();     // strategy → {run, status: 'running'|'done'|'stopped'|'failed'}
let saved = null;           // {savedId, session}: a saved model loaded for Try it (one at a time)
let busy = false;
let stopRequested = false;
let activeDownload = null;  // AbortController of the model download in progress (Stop aborts it)
let lastTrain = null;       // the last `train` message (its recipe: js/recipe-worker.js)

const post = (msg, transfer) => self.postMessage(msg, transfer || []);

class UserError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// WebAssembly lifecycle. A Rust panic (or an out-of-memory trap) leaves the instance unusable:
// after a WebAssembly.RuntimeError the worker reports {type:'error', code:'crash'} and refuses
// further work; the page then terminates it and starts a fresh worker (which frees all of its
// memory). The model is re-read from the cache on the next Train.
// ---------------------------------------------------------------------------------------------
let wasmPromise = null;
let crashed = false;

/** The thread count this worker was started for (`?threads=N`; default every logical core). */
function requestedThreads() {
  const raw = new URL(self.location.href).searchParams.get('threads');
  const n = raw !== null && /^\d+$/.test(raw) ? Number(raw) : Math.floor(navigator.hardwareConcurrency || 1);
  return Math.max(1, n);
}

/** Threads need shared memory: a cross-origin isolated worker with SharedArrayBuffer. */
const canUseThreads = () => Boolean(self.crossOriginIsolated) && typeof SharedArrayBuffer === 'function';

/**
 * How long initThreadPool may take: it waits for every pool worker to load the module, and a
 * worker that cannot (a missing file, a refused module) would otherwise leave it waiting forever.
 */
const POOL_START_TIMEOUT_MS = 30_000;

/** Relaxed SIMD (one fused multiply-add instead of a multiply and an add in the products). */
const relaxedSimd = hasRelaxedSimd();

/**
 * Instantiate a package folder's glue with its relaxed-SIMD module where the engine has relaxed
 * SIMD, else — or when that module does not load — with its plain simd128 module. Both compute
 * the same model; the relaxed one's products are faster and may round differently in the last
 * bit (a fused multiply-add).
 */
async function instantiate(api, folder) {
  if (relaxedSimd) {
    try {
      const exports = await api.default({ module_or_path: new URL(`./${folder}/${WASM_MODULE_FILES.relaxed}`, import.meta.url) });
      return { exports, simd: 'relaxed' };
    } catch (e) {
      console.warn(`webtune: ${folder}/${WASM_MODULE_FILES.relaxed} did not load (${errorMessage(e)}); using ${WASM_MODULE_FILES.simd128}`);
    }
  }
  const exports = await api.default({ module_or_path: new URL(`./${folder}/${WASM_MODULE_FILES.simd128}`, import.meta.url) });
  return { exports, simd: 'simd128' };
}

async function loadSingle() {
  const api = await import('./pkg/webtune.js');
  const { exports, simd } = await instantiate(api, 'pkg');
  return { api, memory: exports.memory, threads: 1, build: 'single', simd };
}

async function loadThreaded(n) {
  const api = await import('./pkg-threads/webtune.js');
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

function ensureWasm() {
  if (crashed) return Promise.reject(new UserError('The worker crashed and is being restarted; try again in a moment.', ErrorCode.CRASH));
  if (!wasmPromise) {
    wasmPromise = (async () => {
      const n = requestedThreads();
      if (n > 1 && canUseThreads()) {
        try {
          wasm = await loadThreaded(n);
          return wasm;
        } catch (e) {
          // Not a failure: the single-threaded build trains the same, only slower.
          post({
            type: FromWorker.WARNING,
            code: WarningCode.THREADS_FALLBACK,
            message: `The multi-threaded WebAssembly build could not start (${errorMessage(e)}), so training runs on ` +
              'one thread (slower, same results). Reload the page to try again.',
          });
        }
      }
      wasm = await loadSingle();
      return wasm;
    })();
    wasmPromise.catch(() => { wasmPromise = null; });
  }
  return wasmPromise;
}

function memoryBytes() {
  try {
    return wasm ? wasm.memory.buffer.byteLength : null;
  } catch {
    return null;
  }
}

function isCrash(e) {
  return e instanceof WebAssembly.RuntimeError || (e && e.name === 'RuntimeError');
}

function markCrashed() {
  // Objects of a crashed instance must not be touched again (not even free()).
  crashed = true;
  saved = null;
  session = null;
  sessionKey = null;
  sessionFiles = null;
  runs.clear();
}

function errorMessage(e) {
  if (e instanceof Error) return e.message || String(e);
  return String(e);
}

function reportError(e, extra = {}) {
  if (isCrash(e)) {
    markCrashed();
    post({
      type: FromWorker.ERROR,
      code: ErrorCode.CRASH,
      message: `The WebAssembly code crashed (${errorMessage(e)}). The worker has been restarted: trained ` +
        'models were lost, and the next Train reloads the model (from the cache when possible). ' +
        'If this happened while training, the model may not fit in memory — try fewer layers, ' +
        'a smaller batch or a shorter max length.',
      ...extra,
    });
  } else {
    post({ type: FromWorker.ERROR, code: e && e.code, message: errorMessage(e), ...extra });
  }
}

// ---------------------------------------------------------------------------------------------
// Model files: hub download with progress, Cache API reuse, local File objects.
// ---------------------------------------------------------------------------------------------
function hubFileUrl(source, file) {
  const base = source.hub.replace(/\/+$/, '');
  const repo = source.repo.split('/').map(encodeURIComponent).join('/');
  return `${base}/${repo}/resolve/${encodeURIComponent(source.revision || 'main')}/${file}`;
}

function sourceKey(source) {
  if (source.kind === 'hub') return `hub|${source.hub}|${source.repo}|${source.revision || 'main'}`;
  return 'files|' + source.files.map((f) => `${f.name}:${f.size}:${f.lastModified}`).join('|');
}

function sourceLabel(source) {
  if (source.kind === 'hub') return `${source.repo} (${source.revision || 'main'})`;
  return 'local files';
}

const size = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${n} bytes`);

async function openCache() {
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null; // Cache API unavailable (e.g. not a secure context): work from memory
  }
}

async function readCached(cache, url) {
  if (!cache) return null;
  try {
    const hit = await cache.match(url);
    if (!hit) return null;
    const bytes = new Uint8Array(await hit.arrayBuffer());
    const expected = Number(hit.headers.get('x-webtune-length'));
    if (expected === bytes.byteLength) return bytes;
    await cache.delete(url); // inconsistent entry: never trust it
  } catch {
    // fall through to a download
  }
  return null;
}

async function downloadFile(f, signal, onProgress) {
  const origin = new URL(f.url).origin;
  let resp;
  try {
    resp = await fetch(f.url, { signal, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new UserError(
      `Could not reach the model hub at ${origin} (${errorMessage(e)}). You may be offline, or the ` +
      'hub is blocked from here. Choose "all-MiniLM-L6-v2 — local offline copy" under Model to ' +
      'train without the network.', ErrorCode.HUB_UNREACHABLE);
  }
  if (!resp.ok) {
    const hint = resp.status === 404
      ? ' Check the repository id and revision (the repository must have config.json, tokenizer.json and model.safetensors).'
      : resp.status === 401 || resp.status === 403
        ? ' The repository may be private or gated; download the files yourself and pick them with "Model files on this computer".'
        : '';
    throw new UserError(`Downloading ${f.name} failed: the hub answered ${resp.status} ${resp.statusText} for ${f.url}.${hint}`, ErrorCode.HUB_HTTP);
  }
  const header = resp.headers.get('content-length');
  const expected = header !== null && /^\d+$/.test(header) ? Number(header) : null;
  f.total = expected;
  onProgress();
  // Write straight into one buffer when the size is known (the safetensors file can be
  // hundreds of MB; collecting chunks and concatenating would need twice that).
  let buffer = expected !== null ? new Uint8Array(expected) : null;
  let chunks = buffer ? null : [];
  let received = 0;
  const reader = resp.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (buffer && received + value.byteLength > buffer.byteLength) {
        // More bytes than announced (a compressed transfer): switch to chunks.
        chunks = [buffer.subarray(0, received)];
        buffer = null;
      }
      if (buffer) buffer.set(value, received);
      else chunks.push(value);
      received += value.byteLength;
      f.loaded = received;
      onProgress();
    }
  } catch (e) {
    if (signal.aborted) throw e;
    throw new UserError(
      `The download of ${f.name} was cut off after ${size(received)}${expected !== null ? ` of ${size(expected)}` : ''} ` +
      `(${errorMessage(e)}). Nothing was saved; press Train to try again.`, ErrorCode.DOWNLOAD_CUT);
  }
  if (expected !== null && received < expected) {
    throw new UserError(
      `The download of ${f.name} ended early: ${received} of ${expected} bytes. Nothing was saved; ` +
      'press Train to try again.', ErrorCode.DOWNLOAD_CUT);
  }
  if (buffer) return received === buffer.byteLength ? buffer : buffer.slice(0, received);
  const out = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

let quotaWarned = false;

async function storeInCache(cache, url, bytes) {
  if (!cache) return;
  try {
    await cache.put(url, new Response(bytes, {
      headers: {
        'content-type': 'application/octet-stream',
        'x-webtune-length': String(bytes.byteLength),
      },
    }));
  } catch (e) {
    try { await cache.delete(url); } catch { /* ignore */ }
    if (!quotaWarned) {
      quotaWarned = true;
      const why = e && e.name === 'QuotaExceededError'
        ? 'the browser\'s storage quota is used up'
        : `the browser refused to store it (${errorMessage(e)})`;
      post({ type: FromWorker.WARNING, message: `The model could not be saved for next time: ${why}. It stays in memory for this visit, and will be downloaded again after a reload.` });
    }
  }
}

// A model source read in two parts: `small()` → config.json and tokenizer.json (a few MB at
// most), so that the Train can be checked and planned before `weights()` reads
// model.safetensors (hundreds of MB). Progress is reported over all three files.
function hubReader(source, cache) {
  const files = MODEL_FILES.map((name) => ({ name, url: hubFileUrl(source, name), loaded: 0, total: null, fromCache: false }));
  const t0 = performance.now();
  let lastPost = 0;
  const report = (force = false) => {
    const now = performance.now();
    if (!force && now - lastPost < 150) return;
    lastPost = now;
    const downloaded = files.filter((f) => !f.fromCache).reduce((s, f) => s + f.loaded, 0);
    const seconds = (now - t0) / 1000;
    post({
      type: FromWorker.PROGRESS,
      phase: 'download',
      files: files.map(({ name, loaded, total, fromCache }) => ({ name, loaded, total, fromCache })),
      loaded: files.reduce((s, f) => s + f.loaded, 0),
      total: files.every((f) => f.total !== null) ? files.reduce((s, f) => s + f.total, 0) : null,
      mbps: seconds > 0.05 ? downloaded / 1e6 / seconds : 0,
    });
  };
  const getAll = async (wanted) => {
    const controller = new AbortController();
    activeDownload = controller;
    const getOne = async (f) => {
      const cached = await readCached(cache, f.url);
      if (cached) {
        f.fromCache = true;
        f.loaded = f.total = cached.byteLength;
        report();
        return cached;
      }
      const bytes = await downloadFile(f, controller.signal, report);
      await storeInCache(cache, f.url, bytes);
      return bytes;
    };
    try {
      return await Promise.all(wanted.map(getOne));
    } catch (e) {
      controller.abort(); // stop the other downloads; their partial bytes are dropped
      throw e;
    } finally {
      activeDownload = null;
    }
  };
  return {
    async small() {
      const [config, tokenizer] = await getAll(files.slice(0, 2));
      return { config, tokenizer };
    },
    async weights() {
      const [model] = await getAll(files.slice(2));
      report(true);
      return model;
    },
    fromCache: () => files.every((f) => f.fromCache),
    /** Unusable files (e.g. not a BERT): do not keep them in the cache. */
    async forget() {
      if (!cache) return;
      for (const f of files) {
        try { await cache.delete(f.url); } catch { /* ignore */ }
      }
    },
  };
}

function localReader(source) {
  const byName = new Map();
  for (const f of source.files) {
    const name = f.name.toLowerCase();
    if (name === 'config.json') byName.set('config.json', f);
    else if (name === 'tokenizer.json') byName.set('tokenizer.json', f);
    else if (name.endsWith('.safetensors')) byName.set('model.safetensors', f);
  }
  const read = async (name) => new Uint8Array(await byName.get(name).arrayBuffer());
  return {
    async small() {
      const missing = MODEL_FILES.filter((n) => !byName.has(n));
      if (missing.length) {
        throw new UserError(`Pick all three model files: config.json, tokenizer.json and model.safetensors (missing: ${missing.join(', ')}).`);
      }
      return { config: await read('config.json'), tokenizer: await read('tokenizer.json') };
    },
    weights: () => read('model.safetensors'),
    fromCache: () => false,
    async forget() {},
  };
}

/** Drop the loaded model and every run trained from it (frees their wasm memory). */
function freeModel() {
  freeRuns();
  if (session) session.free();
  session = null;
  sessionKey = null;
  sessionFiles = null;
}

function freeRuns() {
  for (const { run } of runs.values()) run.free();
  runs.clear();
}

/** Drop the saved model loaded for Try it (a Train needs the memory; the page reloads it when asked). */
function freeSaved() {
  if (saved) saved.session.free();
  saved = null;
}

/** Saved models (js/saved-models.js): load one export (replacing the previous), classify with it. */
async function handleSaved(msg) {
  try {
    const { api } = await ensureWasm();
    if (msg.type === ToWorker.LOAD_SAVED) {
      freeSaved();
      const f = msg.files;
      let loaded;
      try {
        loaded = new api.WebSession(f['config.json'], f['tokenizer.json'], f['model.safetensors']);
      } catch (e) {
        if (isCrash(e)) throw e;
        throw new UserError(`The saved model could not be loaded: ${errorMessage(e)}`);
      }
      saved = { savedId: msg.savedId, session: loaded };
      post({ type: FromWorker.SAVED_LOADED, id: msg.id, savedId: msg.savedId, info: loaded.info() });
    } else {
      if (!saved || saved.savedId !== msg.savedId) throw new UserError('That saved model is not loaded (a Train frees it): press its Try it again.');
      const [prediction] = saved.session.predict([msg.text]);
      post({ type: FromWorker.SAVED_PREDICTION, id: msg.id, savedId: msg.savedId, prediction });
    }
  } catch (e) {
    reportError(e, { id: msg.id, context: msg.type });
  }
}

// ---------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------
// A yield to the event loop that is not clamped: setTimeout(0) waits ≥ 4 ms once timers nest,
// which thousands of tiny frozen head steps would pay each; a MessageChannel message is a
// fresh task at once. Queued page messages (Stop, parse, predict) run before it resolves.
const yieldChannel = new MessageChannel();
const yieldWaiters = [];
yieldChannel.port1.onmessage = () => yieldWaiters.shift()();
const yieldToEventLoop = () => new Promise((resolve) => {
  yieldWaiters.push(resolve);
  yieldChannel.port2.postMessage(null);
});
/** Steps run back to back for at most this long before the worker yields (a core step is bounded). */
const SLICE_MS = 15;

function planError(e) {
  // The core prefixes its kind of error ('options: ', 'model: '); the sentence after it says it all.
  const message = errorMessage(e).replace(/^(options|model): /, '');
  return new UserError(`This Train cannot start: ${message}`);
}

async function train(msg) {
  if (busy) {
    post({ type: FromWorker.ERROR, code: ErrorCode.BUSY, message: 'Training is already running: press Stop first.' });
    return;
  }
  busy = true;
  lastTrain = msg;
  stopRequested = false;
  let failed = false;
  let active = null;
  try {
    const { api } = await ensureWasm();
    // Free the previous runs first: each keeps its own copy of the trained weights. Another
    // model is dropped too, so that the plan below counts only what stays in memory.
    freeRuns();
    freeSaved();
    const key = sourceKey(msg.source);
    const loaded = Boolean(session && sessionKey === key);
    if (!loaded) freeModel();
    let reader = null;
    let small = sessionFiles;
    if (!loaded) {
      post({ type: FromWorker.STATUS, message: msg.source.kind === 'hub' ? `Fetching ${sourceLabel(msg.source)}: config.json and tokenizer.json…` : 'Reading config.json and tokenizer.json…' });
      reader = msg.source.kind === 'hub' ? hubReader(msg.source, await openCache()) : localReader(msg.source);
      small = await reader.small();
    }
    // Fail fast: a config.json that is not a BERT webtune trains, data that does not parse or a
    // Train that cannot fit the 4 GiB heap is refused before model.safetensors is read.
    let plans;
    try {
      plans = api.plan_train(small.config, small.tokenizer, msg.strategies, msg.train, msg.val ?? undefined,
        msg.valFraction ?? undefined, msg.options, loaded);
    } catch (e) {
      if (isCrash(e)) throw e;
      if (reader && /config\.json|tokenizer/i.test(errorMessage(e))) await reader.forget();
      throw planError(e);
    }
    post({ type: FromWorker.PLAN, plans });
    if (stopRequested) return;
    if (!loaded) {
      post({ type: FromWorker.STATUS, message: msg.source.kind === 'hub' ? `Fetching ${sourceLabel(msg.source)}: model.safetensors…` : 'Reading model.safetensors…' });
      const weights = await reader.weights();
      post({ type: FromWorker.STATUS, message: 'Loading the model into WebAssembly…' });
      await yieldToEventLoop();
      try {
        session = new api.WebSession(small.config, small.tokenizer, weights);
      } catch (e) {
        if (isCrash(e)) throw e;
        await reader.forget();
        throw new UserError(`The model could not be loaded: ${errorMessage(e)}`);
      }
      sessionKey = key;
      sessionFiles = small;
      post({ type: FromWorker.MODEL, info: session.info(), label: sourceLabel(msg.source), fromCache: reader.fromCache(), memory: memoryBytes() });
    }
    for (const strategy of msg.strategies) {
      if (stopRequested) break;
      let run;
      try {
        run = session.start_run(strategy, msg.train, msg.val ?? undefined, msg.valFraction ?? undefined, msg.options);
      } catch (e) {
        if (isCrash(e)) throw e;
        throw new UserError(`Could not start ${strategy}: ${errorMessage(e)}`);
      }
      active = { run, status: 'running' };
      runs.set(strategy, active);
      // The events of one slice go to the page together: thousands of tiny frozen head steps a
      // second would otherwise be as many messages for the page to take in.
      let batch = [];
      const flush = () => {
        if (batch.length) post({ type: FromWorker.EVENTS, events: batch, ...memoryFields(api) });
        batch = [];
      };
      let sliceStart = performance.now();
      while (!run.finished()) {
        if (performance.now() - sliceStart >= SLICE_MS) {
          flush();
          await yieldToEventLoop(); // lets a Stop (or a parse/predict request) through
          sliceStart = performance.now();
        }
        if (stopRequested) {
          // Frees the gradients and optimizer state; the model so far stays for Try it.
          batch.push(run.stop());
          active.status = 'stopped';
          break;
        }
        const event = run.step();
        batch.push(event);
        if (event.type === CoreEvent.ERROR) {
          active.status = 'failed';
          failed = true;
          break;
        }
      }
      flush();
      if (active.status === 'running') active.status = 'done';
      active = null;
      if (failed) break;
    }
  } catch (e) {
    if (stopRequested && e && e.name === 'AbortError') {
      post({ type: FromWorker.STATUS, message: 'Download stopped: nothing was saved.' });
    } else {
      failed = true;
      if (active) active.status = 'failed';
      reportError(e);
    }
  } finally {
    busy = false;
    post({ type: FromWorker.TRAIN_DONE, stopped: stopRequested && !failed, failed });
  }
}

function memoryFields(api) {
  let allocated = null;
  try {
    allocated = api.allocated_bytes();
  } catch {
    // a trapped instance: the caller's error path reports it
  }
  return { memory: memoryBytes(), allocated };
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------
async function handle(msg) {
  switch (msg.type) {
    case ToWorker.PARSE: {
      try {
        const { api } = await ensureWasm();
        const result = api.parse_data(msg.train, msg.val ?? undefined, msg.valFraction ?? undefined, BigInt(Math.max(0, Math.trunc(Number(msg.seed) || 0))));
        post({ type: FromWorker.PARSED, id: msg.id, result });
      } catch (e) {
        reportError(e, { id: msg.id, context: ToWorker.PARSE });
      }
      break;
    }
    case ToWorker.TRAIN:
      await train(msg);
      break;
    case ToWorker.STOP:
      stopRequested = true;
      if (activeDownload) activeDownload.abort();
      break;
    case ToWorker.PREDICT: {
      const results = [];
      try {
        for (const [strategy, entry] of runs) {
          if (entry.status === 'running' || entry.status === 'failed') continue;
          try {
            const [prediction] = entry.run.predict([msg.text]);
            results.push({ strategy, status: entry.status, prediction });
          } catch (e) {
            if (isCrash(e)) throw e;
            results.push({ strategy, status: entry.status, error: errorMessage(e) });
          }
        }
        post({ type: FromWorker.PREDICTIONS, id: msg.id, results });
      } catch (e) {
        reportError(e, { id: msg.id, context: ToWorker.PREDICT });
      }
      break;
    }
    case ToWorker.EXPORT: {
      try {
        const entry = runs.get(msg.strategy);
        if (!entry || entry.status === 'running' || entry.status === 'failed') {
          throw new UserError(`No trained model for ${msg.strategy}: train it first.`);
        }
        const exported = msg.adapter ? entry.run.export_adapter() : entry.run.export();
        if (!exported) throw new UserError(`${msg.strategy} is not a LoRA run: it has no adapter to download.`);
        const files = {};
        const transfer = [];
        for (const name of Object.keys(exported)) {
          files[name] = exported[name];
          transfer.push(exported[name].buffer);
        }
        post({ type: FromWorker.EXPORTED, id: msg.id, strategy: msg.strategy, files }, transfer);
      } catch (e) {
        reportError(e, { id: msg.id, context: ToWorker.EXPORT });
      }
      break;
    }
    case ToWorker.EXPORT_RECIPE:
      try {
        answerRecipe(msg, session, lastTrain, post);
      } catch (e) {
        reportError(e, { id: msg.id, context: msg.type });
      }
      break;
    case ToWorker.LOAD_SAVED:
    case ToWorker.PREDICT_SAVED:
      await handleSaved(msg);
      break;
    case ToWorker.FREE_SAVED:
      if (saved && saved.savedId === msg.savedId) freeSaved();
      break;
    case ToWorker.CRASH_FOR_TESTS: {
      // Test only: a real trap of the instance (a Rust panic), handled like any other crash.
      try {
        const { api } = await ensureWasm();
        api.crash_for_tests();
      } catch (e) {
        reportError(e);
      }
      break;
    }
    default:
      post({ type: FromWorker.ERROR, message: `unknown request ${msg.type}` });
  }
}

self.onmessage = (e) => {
  // Not awaited: a Stop must be handled while a training loop is awaiting between steps.
  handle(e.data).catch((err) => reportError(err));
};

self.addEventListener('unhandledrejection', (e) => {
  reportError(e.reason);
  e.preventDefault();
});

ensureWasm()
  .then(() => post({ type: FromWorker.READY, memory: memoryBytes(), threads: wasm.threads, build: wasm.build, simd: wasm.simd }))
  .catch((e) => post({ type: FromWorker.ERROR, code: ErrorCode.INIT, message: `The WebAssembly module could not be loaded: ${errorMessage(e)}. Build it with ./build.sh wasm.` }));
