// The training progress bar and the line above it: which strategy, what it does now (encoding
// sentences for the frozen encoder, an epoch's steps, evaluating), done/total, steps/s, and
// the time left for this strategy and the whole Train (arithmetic in eta.js). The download
// progress of the model uses the same bar (model-panel.js) before training starts.
import { $ } from './dom.js';
import { count, duration, strategyName } from './format.js';
import { state } from './state.js';
import { msPerStep, runFraction, timeLeft, workRate } from './eta.js';

/** The strategy running now, or null. */
export function runningStrategy() {
  return state.order.find((s) => state.runs[s].status === 'running') || null;
}

/** Steps per second of a run over its steps so far, or null. */
export function stepsPerSecond(run) {
  const ms = msPerStep(run.firstStep, run.lastStep);
  if (ms && ms > 0) return 1000 / ms;
  if (run.lastStep && run.lastStep.elapsed_ms > 0) return run.lastStep.step / (run.lastStep.elapsed_ms / 1000);
  return null;
}

/** GFLOP/s of the runs of this Train that already ended (a first guess for the next one). */
function earlierRate() {
  let work = 0;
  let ms = 0;
  for (const s of state.order) {
    const r = state.runs[s];
    if ((r.status === 'done' || r.status === 'stopped') && r.workDone > 0) {
      work += r.workDone;
      ms += r.done ? r.done.elapsed_ms : r.elapsedMs;
    }
  }
  return workRate(work, ms);
}

/** The estimate for the running strategy: `{strategy, run, runMs, trainMs, fraction, rate}`. */
export function estimateNow() {
  const s = runningStrategy();
  if (!s) return null;
  const run = state.runs[s];
  const plan = (state.plans || []).find((p) => p.strategy === s);
  const workTotal = run.start ? run.start.work_total : plan ? plan.work_total : 0;
  // A frozen run's head steps are not counted as work: time them by their own pace once measured.
  const headOnly = (run.start ? run.start.strategy : s) === 'frozen';
  const stepMs = headOnly ? msPerStep(run.firstStep, run.lastStep) : null;
  const totalSteps = run.totalSteps || 0;
  const stepsLeft = headOnly && stepMs !== null ? Math.max(0, totalSteps - (run.lastStep ? run.lastStep.step : 0)) : 0;
  const queuedWork = state.order.filter((q) => state.runs[q].status === 'queued')
    .map((q) => ((state.plans || []).find((p) => p.strategy === q) || {}).work_total || 0);
  const phase = phaseCounts(run);
  const inPhase = (run.phase === 'cache' || run.phase === 'evaluate') && run.progress ? { ...phase, startMs: run.phaseStartMs } : null;
  const est = timeLeft({ workTotal, workDone: run.workDone, elapsedMs: run.elapsedMs, stepsLeft, stepMs, phase: inPhase, queuedWork, fallbackRate: earlierRate() });
  const fraction = runFraction({ elapsedMs: run.elapsedMs, runMs: est.runMs, done: phase.done, total: phase.total });
  return { strategy: s, run, ...est, fraction, queued: queuedWork.length };
}

function phaseCounts(run) {
  if ((run.phase === 'cache' || run.phase === 'evaluate') && run.progress) return { done: run.progress.done, total: run.progress.total };
  return { done: run.lastStep ? run.lastStep.step : 0, total: run.totalSteps || 0 };
}

/** What the running strategy is doing, in words. */
export function phaseText(run) {
  const p = run.progress;
  if (run.phase === 'cache' && p) return `Encoding sentences for the frozen encoder: ${count(p.done)} / ${count(p.total)}`;
  if (run.phase === 'evaluate' && p) return `Evaluating epoch ${p.epoch}: ${count(p.done)} / ${count(p.total)} sentences`;
  if (run.lastStep) {
    const st = run.lastStep;
    const rate = stepsPerSecond(run);
    const perSecond = rate === null ? '' : ` · ${rate >= 100 ? count(rate) : rate.toFixed(2)} steps/s`;
    return `epoch ${st.epoch}/${state.epochs}, step ${count(st.step)} / ${count(run.totalSteps)}${perSecond} · loss ${st.loss.toFixed(4)}`;
  }
  return 'starting…';
}

/** Redraw the bar and the line for the running strategy (hidden when nothing runs). */
export function renderTrainingProgress() {
  const bar = $('progress');
  const line = $('progress-text');
  const est = estimateNow();
  if (!est) {
    if (!state.running) {
      line.hidden = true;
      line.textContent = '';
    }
    return;
  }
  const { strategy, run, runMs, trainMs, queued } = est;
  bar.hidden = false;
  bar.max = 1;
  bar.value = est.fraction;
  bar.setAttribute('aria-valuetext', `${strategyName(strategy)}: ${Math.round(est.fraction * 100)} %`);
  let text = `${strategyName(strategy)} — ${state.stopping ? 'stopping… ' : ''}${phaseText(run)}`;
  const runLeft = duration(runMs);
  if (runLeft !== null) {
    text += ` · about ${runLeft} left`;
    if (queued > 0) {
      const all = duration(trainMs);
      text += all !== null ? ` for this strategy, ${all} for the whole Train` : ' for this strategy';
    }
  }
  line.hidden = false;
  line.textContent = text;
}
