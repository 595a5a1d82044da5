// Where each run of a Train trains (the page's "Device" choice: auto, gpu or cpu; the choice's
// values and every sentence come from the core, src/device.rs). Worker side: it asks for a
// WebGPU device (`request_gpu`), puts the run on it (`WebRun.use_gpu`), and for Auto first
// times the same first units of the Train on both (a second or so each) and keeps the faster.
// No GPU to be had (no WebGPU, no adapter, a refused limit) → the CPU, said once per worker.
import { FromWorker } from './protocol.js';
import { errorMessage, isCrash } from './worker-errors.js';

/** How long each device's calibration measures, after its first unit of work (the warm-up). */
const CALIBRATION_MS = 1000;
/** The most a calibration may take in all (a slow GPU's first step, say). */
const CALIBRATION_CAP_MS = 8000;
/** `type` of `WebRun.advance()`'s progress within a step or chunk. */
const UNIT = 'unit';

/**
 * Whether a GPU run's `advance()` made no progress: it gave the same unit as the call before
 * (`before`), because a read-back is pending — which resolves only in the event loop.
 */
export function gpuIdle(unit, before) {
  return Boolean(before && unit.type === UNIT && before.type === UNIT && unit.step === before.step
    && unit.units_done === before.units_done && unit.work_done === before.work_done);
}

// A fresh task at once (setTimeout nests to ≥ 4 ms), for the first polls of a read-back.
const channel = new MessageChannel();
const waiters = [];
channel.port1.onmessage = () => waiters.shift()();

/**
 * Let the browser map a pending read-back: the `idlePolls`-th wait in a row. The first ones
 * return at once (a fast GPU answers within a millisecond); later ones sleep a timer's tick, so
 * that a slow GPU (SwiftShader shares the CPU) is not starved by a spinning worker.
 */
export function waitForGpu(idlePolls) {
  if (idlePolls > 20) return new Promise((resolve) => { setTimeout(resolve, 1); });
  return new Promise((resolve) => {
    waiters.push(resolve);
    channel.port2.postMessage(null);
  });
}

/**
 * `post`: to the page. Returns `{beginTrain(), place(run, strategy, startRun, api, session, device)}`.
 */
export function createDevicePlacer({ post }) {
  let unavailable = null; // why no GPU can be had (said once)
  let verdict = null;     // Auto's choice for the current Train: {device, message}

  function note(message) {
    post({ type: FromWorker.DEVICE_NOTE, message });
  }

  /** A WebGpu for one run, or null (the CPU; the reason said once). */
  async function requestGpu(api, session) {
    if (unavailable) return null;
    try {
      return await api.request_gpu(session.largest_tensor_bytes());
    } catch (e) {
      if (isCrash(e)) throw e;
      unavailable = errorMessage(e);
      note(api.gpu_unavailable_message(unavailable));
      return null;
    }
  }

  /**
   * Work per millisecond of `run` over about CALIBRATION_MS after its first piece of work (the
   * warm-up: a GPU compiles its pipelines there); 0 when it did not finish two in the cap. On
   * the CPU a unit's work is done when `advance()` returns; on the GPU only when an event (a
   * step or chunk, whose results were read back) comes: a GPU is timed by its events.
   */
  async function measure(run, onGpu) {
    const deadline = performance.now() + CALIBRATION_CAP_MS;
    let first = null;
    let last = null;
    let before = null;
    let idlePolls = 0;
    while (!run.finished() && performance.now() < deadline) {
      const ev = run.advance();
      const finished = !onGpu || ev.type !== UNIT;
      if (finished && typeof ev.work_done === 'number' && ev.work_done > 0) {
        const now = { t: performance.now(), work: ev.work_done };
        if (!first) first = now;
        else if (now.work > first.work) last = now;
        if (last && last.t - first.t >= CALIBRATION_MS) break;
      }
      idlePolls = onGpu && gpuIdle(ev, before) ? idlePolls + 1 : 0;
      if (idlePolls) await waitForGpu(idlePolls);
      before = ev;
    }
    return last ? (last.work - first.work) / (last.t - first.t) : 0;
  }

  /** Auto: time the first units of `strategy`'s run on both; null when the GPU cannot be had. */
  async function calibrate(strategy, startRun, api, session) {
    const gpu = await requestGpu(api, session);
    if (!gpu) return null;
    post({ type: FromWorker.STATUS, message: 'Auto: timing the first steps on the CPU and on the GPU…' });
    const onGpu = startRun();
    let gpuRate = 0;
    try {
      onGpu.use_gpu(gpu);
      gpuRate = await measure(onGpu, true);
    } catch (e) {
      if (isCrash(e)) throw e;
      note(api.strategy_on_cpu_message(strategy, errorMessage(e)));
      return { device: 'cpu', message: '', retry: true }; // the next strategy may run there

    } finally {
      gpu.free();
      onGpu.free();
    }
    const onCpu = startRun();
    let cpuRate = 0;
    try {
      cpuRate = await measure(onCpu, false);
    } finally {
      onCpu.free();
    }
    return api.calibration_verdict(cpuRate, gpuRate, 'the first steps of this Train');
  }

  return {
    /** A new Train: Auto calibrates again (another model, batch or strategy). */
    beginTrain() {
      verdict = null;
    },
    /**
     * Put `run` (not yet advanced) on the device `choice` ('auto' | 'gpu' | 'cpu') asks for.
     * `startRun()`: a fresh run of the same strategy and data (for Auto's calibration).
     */
    async place(run, strategy, startRun, api, session, choice) {
      if (choice === 'cpu' || unavailable) return;
      if (choice === 'auto') {
        if (!verdict) {
          verdict = await calibrate(strategy, startRun, api, session);
          if (verdict && verdict.message) note(verdict.message);
        }
        const device = verdict ? verdict.device : 'cpu';
        if (verdict && verdict.retry) verdict = null;
        if (device !== 'gpu') return;
      }
      const gpu = await requestGpu(api, session);
      if (!gpu) return;
      try {
        run.use_gpu(gpu);
      } catch (e) {
        if (isCrash(e)) throw e;
        note(api.strategy_on_cpu_message(strategy, errorMessage(e)));
      } finally {
        gpu.free();
      }
    },
  };
}
