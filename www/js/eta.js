// Time left, from the core's compute estimates: every run reports `work_done` (GFLOP) and
// `elapsed_ms`, its `start` event (and the Train's plan) `work_total`. The speed of the run
// so far (GFLOP/s) turns what is left of it, and the planned work of the strategies still
// queued, into seconds. A frozen run's head steps count no work (they are tiny next to
// encoding), so its remaining steps are timed by their own measured pace. Pure functions.

/** Below this much measured time a rate is too noisy to show. */
const MIN_ELAPSED_MS = 400;

/** GFLOP per second, or null when too little has been measured. */
export function workRate(workDone, elapsedMs) {
  if (!(workDone > 0) || !(elapsedMs >= MIN_ELAPSED_MS)) return null;
  return workDone / (elapsedMs / 1000);
}

/**
 * Milliseconds per optimizer step between two `step` events of one run (`first`, `last`:
 * `{step, elapsed_ms}`), or null when fewer than two steps apart.
 */
export function msPerStep(first, last) {
  if (!first || !last || last.step - first.step < 1) return null;
  const ms = (last.elapsed_ms - first.elapsed_ms) / (last.step - first.step);
  return ms >= 0 ? ms : null;
}

/**
 * Time left for the current run and for the whole Train.
 * - `workTotal`, `workDone` (GFLOP) and `elapsedMs`: the current run so far;
 * - `stepsLeft` and `stepMs`: for a run whose steps are not counted as work (`work_per_step`
 *   0, the frozen head), its remaining steps and their measured time each (null: unknown);
 * - `queuedWork`: planned `work_total` of each strategy still to run;
 * - `fallbackRate`: GFLOP/s measured earlier in this Train, used until this run has its own.
 * Returns `{rate, runMs, trainMs}` (GFLOP/s and milliseconds; null where unknown).
 */
export function timeLeft({ workTotal, workDone, elapsedMs, stepsLeft = 0, stepMs = null, phase = null, queuedWork = [], fallbackRate = null }) {
  const rate = workRate(workDone, elapsedMs) ?? fallbackRate;
  const workLeft = Math.max(0, (workTotal || 0) - (workDone || 0));
  let runMs = null;
  if (rate) runMs = (workLeft / rate) * 1000;
  else if (workLeft === 0) runMs = 0;
  if (runMs !== null && stepsLeft > 0) runMs = stepMs === null ? null : runMs + stepsLeft * stepMs;
  // The run cannot end before its current phase does: never less than that phase's own pace
  // predicts (guards against a work estimate that falls short).
  const phaseMs = phaseLeft(phase, elapsedMs);
  if (runMs !== null && phaseMs !== null) runMs = Math.max(runMs, phaseMs);
  const queued = queuedWork.reduce((s, w) => s + (w || 0), 0);
  let trainMs = null;
  if (runMs !== null && (queued === 0 || rate)) trainMs = runMs + (queued > 0 ? (queued / rate) * 1000 : 0);
  return { rate, runMs, trainMs };
}

/** Milliseconds the current phase needs at its pace so far (null: not measurable yet). */
export function phaseLeft(phase, elapsedMs) {
  if (!phase || !(phase.done > 0) || !(phase.total > phase.done)) return phase && phase.total > 0 && phase.done >= phase.total ? 0 : null;
  const spent = elapsedMs - (phase.startMs || 0);
  if (!(spent >= MIN_ELAPSED_MS)) return null;
  return (spent * (phase.total - phase.done)) / phase.done;
}

/**
 * How far the current run is, 0..1: time spent over time spent plus time left when the time
 * left is known (smooth across phases), else the phase's own fraction `done / total`.
 */
export function runFraction({ elapsedMs, runMs, done, total }) {
  if (runMs !== null && runMs !== undefined && elapsedMs > 0) return Math.min(1, elapsedMs / (elapsedMs + runMs));
  if (total > 0) return Math.min(1, done / total);
  return 0;
}
