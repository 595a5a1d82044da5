// How one strategy's run record (state.js's newRun) follows the core's events: one reducer
// for the live page (training.js) and for a replayed record file (record-view.js), so that a
// loaded record shows what the page showed while it trained.
import { CoreEvent } from './protocol.js';

/** Fold one core event of `run`'s strategy into it. Data only: the callers draw. */
export function applyRunEvent(run, ev) {
  if (ev.type === CoreEvent.PROGRESS && (run.phase !== ev.phase || !run.progress || run.progress.epoch !== ev.epoch || run.progress.phase !== ev.phase)) {
    run.phaseStartMs = run.elapsedMs; // the run's time when this encoding/evaluation began
  }
  if (ev.elapsed_ms !== undefined) run.elapsedMs = ev.elapsed_ms;
  if (ev.work_done !== undefined) run.workDone = ev.work_done;
  switch (ev.type) {
    case CoreEvent.START:
      run.status = 'running';
      run.start = ev;
      run.totalSteps = ev.total_steps;
      run.phase = ev.strategy === 'frozen' ? 'cache' : 'train';
      break;
    case CoreEvent.PROGRESS:
      run.progress = ev;
      run.phase = ev.phase;
      break;
    case CoreEvent.STEP:
      run.losses[ev.step - 1] = ev.loss;
      if (!run.firstStep) run.firstStep = ev;
      run.lastStep = ev;
      run.phase = 'train';
      break;
    case CoreEvent.EPOCH:
      run.epochs.push(ev);
      run.phase = 'train';
      break;
    case CoreEvent.DONE:
      run.done = ev;
      run.status = 'done';
      run.phase = null;
      break;
    case CoreEvent.STOPPED:
      run.stopped = ev;
      run.status = 'stopped';
      run.phase = null;
      break;
    default:
      break;
  }
}

/** An `error` event: the run it interrupted failed with its message. */
export function failRun(run, message) {
  run.status = 'failed';
  run.error = message;
}
