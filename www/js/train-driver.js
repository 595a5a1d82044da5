// The worker's training driver: one Train from a `train` message to its `train-done` — read
// the model's small files (hub.js), plan the Train in the core (fail fast, before the weights
// are read), load the weights, then run each strategy unit by unit (at most about one layer's
// work of one batch, `WebRun.advance`) in short slices, posting its core events in batches
// with the progress within a long step, and honour Stop between two units. It keeps the loaded model and
// the runs trained from it (for predict and export) until the next Train or a crash.
import { CoreEvent, ErrorCode, FromWorker } from './protocol.js';
import { sourceKey, sourceLabel } from './model-source.js';
import { hubReader, localReader, openCache } from './hub.js';
import { errorMessage, isCrash, UserError } from './worker-errors.js';
import { createDevicePlacer, gpuIdle, waitForGpu } from './device-placer.js';

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
/** `type` of `WebRun.advance()`'s progress within a step or chunk (src/events.rs UnitProgress). */
const UNIT = 'unit';
/** `producer` of the page's results records. */
const RECORD_PRODUCER = 'webtune page';

/** Units run back to back for at most this long before the worker yields (a unit is bounded). */
const SLICE_MS = 15;

function planError(e) {
  // The core prefixes its kind of error ('options: ', 'model: '); the sentence after it says it all.
  const message = errorMessage(e).replace(/^(options|model): /, '');
  return new UserError(`This Train cannot start: ${message}`);
}

/**
 * The driver of one worker. `post(msg)`: to the page; `memoryBytes()`: the wasm memory's size;
 * `freeSaved()`: drop the saved model loaded for Try it (a Train needs the memory);
 * `reportError(e)`: post an error (a crash included).
 * Returns `{train(msg, api), requestStop(), runs, forget()}`: `runs` maps strategy →
 * `{run, status: 'running' | 'done' | 'stopped' | 'failed'}`; `forget()` drops every wasm
 * object without touching it (after a crash).
 */
export function createTrainDriver({ post, memoryBytes, freeSaved, reportError }) {
  let session = null;       // WebSession
  let sessionKey = null;    // sourceKey() of the loaded model
  let sessionFiles = null;  // {config, tokenizer} bytes of the loaded model (for plan_train)
  let lastTrain = null;     // the last `train` message (its recipe: js/recipe-worker.js)
  const runs = new Map();
  let busy = false;
  let stopRequested = false;
  let reader = null;        // the model source being read (Stop aborts its download)
  let crashedObjects = false; // after a crash no wasm object may be touched (not even free())
  let progress = null;      // WebProgress: the Train's time left, from the events posted
  let current = null;       // the WebRun advancing now (the GPU fault test destroys its device)
  const placer = createDevicePlacer({ post });

  function freeRuns() {
    for (const { run } of runs.values()) run.free();
    runs.clear();
  }

  /** Drop the loaded model and every run trained from it (frees their wasm memory). */
  function freeModel() {
    freeRuns();
    if (session) session.free();
    session = null;
    sessionKey = null;
    sessionFiles = null;
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

  /** The model of `msg.source`, loaded (reusing the one in memory); null when Stop came first. */
  async function prepare(msg, api) {
    const key = sourceKey(msg.source);
    const loaded = Boolean(session && sessionKey === key);
    if (!loaded) freeModel();
    let small = sessionFiles;
    reader = null;
    if (!loaded) {
      post({ type: FromWorker.STATUS, message: msg.source.kind === 'hub' ? `Fetching ${sourceLabel(msg.source)}: config.json and tokenizer.json…` : 'Reading config.json and tokenizer.json…' });
      reader = msg.source.kind === 'hub' ? hubReader(msg.source, await openCache(), post) : localReader(msg.source);
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
    progress = new api.WebProgress(plans);
    if (stopRequested) return false;
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
    reader = null;
    return true;
  }

  /** Run one strategy to its end (done, stopped or error); the entry's final status. */
  async function runStrategy(msg, api, strategy) {
    const startRun = () => {
      try {
        return session.start_run(strategy, msg.train, msg.val ?? undefined, msg.valFraction ?? undefined, msg.options);
      } catch (e) {
        if (isCrash(e)) throw e;
        throw new UserError(`Could not start ${strategy}: ${errorMessage(e)}`);
      }
    };
    const run = startRun();
    const entry = { run, status: 'running' };
    runs.set(strategy, entry);
    try {
      await placer.place(run, strategy, startRun, api, session, msg.device || 'auto');
    } catch (e) {
      entry.status = 'failed';
      throw e;
    }
    const onGpu = run.device() !== 'cpu';
    current = run;
    // The events of one slice go to the page together: thousands of tiny frozen head steps a
    // second would otherwise be as many messages for the page to take in. `unit`: the progress
    // within the step (or chunk) under way after them, when the slice ended inside one (not an
    // event: no record keeps it).
    let batch = [];
    let unit = null;
    const flush = () => {
      if (!batch.length && !unit) return;
      progress.observe(unit ? [...batch, unit] : batch);
      post({ type: FromWorker.EVENTS, events: batch, unit, estimate: progress.estimate(), ...memoryFields(api) });
      batch = [];
      unit = null;
    };
    let stopping = false;
    let lastUnit = null; // the unit the previous advance gave (a GPU run waiting gives it again)
    let idlePolls = 0;   // advances in a row that made no progress
    try {
      let sliceStart = performance.now();
      while (!run.finished()) {
        if (performance.now() - sliceStart >= SLICE_MS) {
          flush();
          await yieldToEventLoop(); // lets a Stop (or a parse/predict request) through
          sliceStart = performance.now();
        }
        if (stopRequested && !stopping) {
          // The step under way is dropped; the next advances bring a GPU run's weights back
          // and give the `stopped` event (at once on the CPU). Then the gradients and
          // optimizer state are freed; the model so far stays for Try it.
          run.begin_stop();
          stopping = true;
        }
        const event = run.advance();
        if (event.type === UNIT) {
          // A GPU run's read-back resolves only in the event loop: wait there, not in a spin.
          idlePolls = onGpu && gpuIdle(event, lastUnit) ? idlePolls + 1 : 0;
          unit = lastUnit = event;
          if (idlePolls) await waitForGpu(idlePolls);
          continue;
        }
        unit = null;
        lastUnit = null;
        idlePolls = 0;
        batch.push(event);
        if (event.type === CoreEvent.STOPPED) {
          // Stop, or a GPU lost mid-run (its `reason`): the run keeps its last finished model.
          entry.status = 'stopped';
          break;
        }
        if (event.type === CoreEvent.ERROR) {
          entry.status = 'failed';
          break;
        }
      }
      flush();
    } catch (e) {
      entry.status = 'failed';
      throw e;
    } finally {
      current = null;
    }
    if (entry.status === 'running') entry.status = 'done';
    return entry.status;
  }

  async function train(msg, api) {
    if (busy) {
      post({ type: FromWorker.ERROR, code: ErrorCode.BUSY, message: 'Training is already running: press Stop first.' });
      return;
    }
    busy = true;
    lastTrain = msg;
    stopRequested = false;
    placer.beginTrain();
    let failed = false;
    let stoppedByItself = false;
    try {
      // Free the previous runs first: each keeps its own copy of the trained weights. Another
      // model is dropped too, so that the plan counts only what stays in memory.
      freeRuns();
      freeSaved();
      if (await prepare(msg, api)) {
        // The results record's head (src/record.rs): the page's Export results adds the events.
        post({
          type: FromWorker.RECORD_HEAD,
          head: api.record_head(RECORD_PRODUCER, new Date().toISOString(), sourceLabel(msg.source), session.info(), msg.train,
            msg.val ?? undefined, msg.valFraction ?? undefined, msg.options, msg.strategies),
        });
        for (const strategy of msg.strategies) {
          if (stopRequested) break;
          const status = await runStrategy(msg, api, strategy);
          if (status === 'failed') {
            failed = true;
            break;
          }
          if (status === 'stopped' && !stopRequested) {
            // The run stopped by itself (its GPU was lost): the Train ends here, keeping it.
            stoppedByItself = true;
            break;
          }
        }
      }
    } catch (e) {
      if (stopRequested && e && e.name === 'AbortError') {
        post({ type: FromWorker.STATUS, message: 'Download stopped: nothing was saved.' });
      } else {
        failed = true;
        reportError(e);
      }
    } finally {
      reader = null;
      if (progress && !crashedObjects) progress.free();
      progress = null;
      busy = false;
      post({ type: FromWorker.TRAIN_DONE, stopped: (stopRequested || stoppedByItself) && !failed, failed });
    }
  }

  return {
    train,
    runs,
    /** What "Export recipe" needs: the loaded WebSession and the last `train` message. */
    recipeSource: () => ({ session, train: lastTrain }),
    /** Stop the Train: after the current unit of work (a step under way is dropped), or at once for a download in progress. */
    requestStop() {
      stopRequested = true;
      if (reader) reader.abort();
    },
    /** Test only: a real `device.destroy()` of the GPU of the run advancing now (false: none). */
    destroyGpuForTests() {
      if (!current || current.device() === 'cpu') return false;
      current.destroy_gpu_for_tests();
      return true;
    },
    /** After a crash: the instance's objects must not be touched again (not even free()). */
    forget() {
      crashedObjects = true;
      progress = null;
      session = null;
      sessionKey = null;
      sessionFiles = null;
      runs.clear();
      current = null;
    },
  };
}
