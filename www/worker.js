// webtune worker: the message loop between the page and the WebAssembly core. No model math
// here: everything numeric is in Rust (src/web.rs → webtune core). The messages it receives
// and sends are described in js/protocol.js; the work is in its modules:
//   js/wasm-loader.js   which build to load (www/pkg or www/pkg-threads, relaxed SIMD or not)
//   js/hub.js           model files: hub download with progress, Cache API reuse, local files
//   js/train-driver.js  one Train: plan, load the model, run each strategy step by step, Stop
//
// Two builds of the same core (README "How it is built"): the page starts this worker as
// `worker.js?threads=N` (default: every logical core): N > 1 on a cross-origin isolated page
// loads pkg-threads and starts a pool of N threads; otherwise — or when the threaded module
// fails to load or its pool to start, which is reported as a `warning` — pkg, on one thread. A
// pool starts once per wasm instance, so another thread count means another worker (the page
// restarts it; the model comes back from the Cache API). `ready` says what was loaded.
import { ErrorCode, filesMessage, FromWorker, ToWorker, WarningCode } from './js/protocol.js';
import { canUseThreads, loadSingle, loadThreaded, requestedThreads } from './js/wasm-loader.js';
import { createTrainDriver } from './js/train-driver.js';
import { errorMessage, isCrash, UserError } from './js/worker-errors.js';
import { faultAdvice, faultDetail, hasFault, readFault } from './js/wasm-fault.js';
import { answerRecipe } from './js/recipe-worker.js';

let wasm = null;            // {api, memory, threads, build: 'threads' | 'single', simd: 'relaxed' | 'simd128'}
let saved = null;           // {savedId, session}: a saved model loaded for Try it (one at a time)
let faultLayout = null;     // wasm fault_block(), read once at start (never call a crashed instance)

const post = (msg, transfer) => self.postMessage(msg, transfer || []);

// ---------------------------------------------------------------------------------------------
// WebAssembly lifecycle. A Rust panic (or an out-of-memory trap) leaves the instance unusable:
// after a WebAssembly.RuntimeError the worker reports {type:'error', code:'crash'} and refuses
// further work; the page then terminates it and starts a fresh worker (which frees all of its
// memory). The model is re-read from the cache on the next Train. A fault on a thread of the
// threaded build's pool never reaches this worker (it waits for that thread for ever): the
// page finds it in the shared memory handed over in `ready` (js/worker-watchdog.js).
// ---------------------------------------------------------------------------------------------
let wasmPromise = null;
let crashed = false;

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

function markCrashed() {
  // Objects of a crashed instance must not be touched again (not even free()).
  crashed = true;
  saved = null;
  driver.forget();
}

/** What the instance's memory says killed it (js/wasm-fault.js), or null. */
function faultInMemory() {
  return wasm && faultLayout ? readFault(wasm.memory.buffer, faultLayout) : null;
}

/**
 * `ready`'s `faults`: the threaded build's shared memory and where its fault block is, for the
 * page's watchdog; null for the single-threaded build (its faults trap this thread: reportError).
 */
function faultWatch() {
  const buffer = wasm.memory.buffer;
  return typeof SharedArrayBuffer === 'function' && buffer instanceof SharedArrayBuffer ? { memory: buffer, ...faultLayout } : null;
}

function reportError(e, extra = {}) {
  if (isCrash(e)) {
    const fault = faultInMemory();
    markCrashed();
    post({
      type: FromWorker.ERROR,
      code: ErrorCode.CRASH,
      message: `The WebAssembly code crashed (${errorMessage(e)}${hasFault(fault) ? `: ${faultDetail(fault)}` : ''}). ` +
        'The worker has been restarted: trained models were lost, and the next Train reloads the model ' +
        '(from the cache when possible). If this happened while training, the model may not fit in memory. ' +
        faultAdvice(wasm ? wasm.threads : 1),
      ...extra,
    });
  } else {
    post({ type: FromWorker.ERROR, code: e && e.code, message: errorMessage(e), ...extra });
  }
}

/** Drop the saved model loaded for Try it (a Train needs the memory; the page reloads it when asked). */
function freeSaved() {
  if (saved) saved.session.free();
  saved = null;
}

const driver = createTrainDriver({ post, memoryBytes, freeSaved, reportError });

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

/** Every finished run classifies `msg.text` (runs still training or failed are left out). */
function predict(msg) {
  const results = [];
  for (const [strategy, entry] of driver.runs) {
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
}

/** The files of one trained strategy (its model, or a LoRA run's adapter), transferred. */
function exportRun(msg) {
  const entry = driver.runs.get(msg.strategy);
  if (!entry || entry.status === 'running' || entry.status === 'failed') {
    throw new UserError(`No trained model for ${msg.strategy}: train it first.`);
  }
  const exported = msg.adapter ? entry.run.export_adapter() : entry.run.export();
  if (!exported) throw new UserError(`${msg.strategy} is not a LoRA run: it has no adapter to download.`);
  const { files, transfer } = filesMessage(exported);
  post({ type: FromWorker.EXPORTED, id: msg.id, strategy: msg.strategy, files }, transfer);
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
    case ToWorker.TRAIN: {
      let api;
      try {
        ({ api } = await ensureWasm());
      } catch (e) {
        reportError(e);
        post({ type: FromWorker.TRAIN_DONE, stopped: false, failed: true });
        break;
      }
      await driver.train(msg, api);
      break;
    }
    case ToWorker.STOP:
      driver.requestStop();
      break;
    case ToWorker.PREDICT:
      try {
        predict(msg);
      } catch (e) {
        reportError(e, { id: msg.id, context: ToWorker.PREDICT });
      }
      break;
    case ToWorker.EXPORT:
      try {
        exportRun(msg);
      } catch (e) {
        reportError(e, { id: msg.id, context: ToWorker.EXPORT });
      }
      break;
    case ToWorker.EXPORT_RECIPE:
      try {
        const { session, train } = driver.recipeSource();
        answerRecipe(msg, session, train, post);
      } catch (e) {
        reportError(e, { id: msg.id, context: msg.type });
      }
      break;
    case ToWorker.LOAD_SAVED:
    case ToWorker.PREDICT_SAVED:
      await handleSaved(msg);
      break;
    case ToWorker.CHECK_RECORD:
      try {
        const { api } = await ensureWasm();
        post({ type: FromWorker.RECORD_CHECKED, id: msg.id, problem: api.check_record(msg.text) ?? null });
      } catch (e) {
        reportError(e, { id: msg.id, context: ToWorker.CHECK_RECORD });
      }
      break;
    case ToWorker.FREE_SAVED:
      if (saved && saved.savedId === msg.savedId) freeSaved();
      break;
    case ToWorker.CRASH_FOR_TESTS: {
      // Test only: a real trap of the instance (a Rust panic), handled like any other crash;
      // with `inStep`, a real fault in the next training step (on a pool thread when there is one).
      try {
        const { api } = await ensureWasm();
        if (msg.inStep) api.fault_on_pool_for_tests(msg.inStep);
        else api.crash_for_tests();
      } catch (e) {
        reportError(e);
      }
      break;
    }
    case ToWorker.DESTROY_GPU_FOR_TESTS:
      // Test only: a real device loss in the middle of a GPU run.
      driver.destroyGpuForTests();
      break;
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
  .then(() => { faultLayout = wasm.api.fault_block(); })
  .then(() => post({ type: FromWorker.READY, memory: memoryBytes(), threads: wasm.threads, build: wasm.build, simd: wasm.simd, optionSpec: wasm.api.option_spec(), deviceSpec: wasm.api.device_spec(), faults: faultWatch() }))
  .catch((e) => post({ type: FromWorker.ERROR, code: ErrorCode.INIT, message: `The WebAssembly module could not be loaded: ${errorMessage(e)}. Build it with ./build.sh wasm.` }));
