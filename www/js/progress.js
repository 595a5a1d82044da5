// The training progress bar and the line above it: which strategy, what it does now (encoding
// sentences for the frozen encoder, an epoch's steps, evaluating), done/total, steps/s, and
// the time left for this strategy and the whole Train (the core's estimate, src/progress.rs,
// which the worker sends with the events). The download progress of the model uses the same
// bar (model-panel.js) before training starts.
import { $ } from './dom.js';
import { count, duration, strategyName } from './format.js';
import { state } from './state.js';

/** The strategy running now, or null. */
export function runningStrategy() {
  return state.order.find((s) => state.runs[s].status === 'running') || null;
}

/** Steps per second of a run over its steps so far (between its first and latest step), or null. */
export function stepsPerSecond(run) {
  const first = run.firstStep;
  const last = run.lastStep;
  if (first && last && last.step > first.step && last.elapsed_ms > first.elapsed_ms) {
    return (1000 * (last.step - first.step)) / (last.elapsed_ms - first.elapsed_ms);
  }
  if (last && last.elapsed_ms > 0) return last.step / (last.elapsed_ms / 1000);
  return null;
}

/** The core's estimate for the running strategy: `{strategy, run, runMs, trainMs, fraction, queued}`. */
export function estimateNow() {
  const s = runningStrategy();
  if (!s) return null;
  const run = state.runs[s];
  const e = state.estimate && state.estimate.strategy === s ? state.estimate : null;
  if (!e) return { strategy: s, run, runMs: null, trainMs: null, fraction: 0, queued: 0 };
  return { strategy: s, run, runMs: e.run_ms, trainMs: e.train_ms, fraction: e.fraction, queued: e.queued };
}

/** What the running strategy is doing, in words. */
export function phaseText(run) {
  const p = run.progress;
  // Inside a step (whatever phase the latest event ended): how far it is (its share of the
  // matrix products).
  const unit = run.unit && run.unit.step ? run.unit : null;
  const inStep = unit ? `step ${count(unit.step)}: ${Math.round(unit.fraction * 100)} % done` : '';
  if (!unit && run.phase === 'cache' && p) return `Encoding sentences for the frozen encoder: ${count(p.done)} / ${count(p.total)}`;
  if (!unit && run.phase === 'evaluate' && p) return `Evaluating epoch ${p.epoch}: ${count(p.done)} / ${count(p.total)} sentences`;
  if (run.lastStep) {
    const st = run.lastStep;
    const rate = stepsPerSecond(run);
    const perSecond = rate === null ? '' : ` · ${rate >= 100 ? count(rate) : rate.toFixed(2)} steps/s`;
    return `epoch ${st.epoch}/${state.epochs}, step ${count(st.step)} / ${count(run.totalSteps)}${perSecond} · loss ${st.loss.toFixed(4)}${inStep ? ` · ${inStep}` : ''}`;
  }
  if (unit) return `${inStep} (of ${count(run.totalSteps)})`;
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
