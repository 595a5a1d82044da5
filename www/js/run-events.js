// How a Train's run records (state.js's newRun) follow the core's events: one fold for the
// live page (training.js) and for a replayed record file (record-view.js), so that a loaded
// record shows what the page showed while it trained.
import { CoreEvent } from './protocol.js';
import { newRun } from './state.js';

/**
 * Fold one core event of a Train into `train` (`{order, runs}`: strategies in run order and
 * strategy → run record). An `error` fails the run that is running; an event of a strategy
 * not in `order` adds its run. Returns the run the event belongs to (null for an `error`
 * while nothing runs). Data only: the callers draw.
 */
export function foldTrainEvent(train, ev) {
  if (ev.type === CoreEvent.ERROR) {
    const running = train.order.find((s) => train.runs[s].status === 'running');
    if (!running) return null;
    failRun(train.runs[running], ev.message);
    return train.runs[running];
  }
  let run = train.runs[ev.strategy];
  if (!run) {
    train.order.push(ev.strategy);
    run = train.runs[ev.strategy] = newRun(ev.strategy);
  }
  applyRunEvent(run, ev);
  return run;
}

/**
 * A Train has ended: runs never started are 'skipped'; a run still running becomes
 * `running` ('stopped' or 'failed'; null leaves it running: a record cut off mid-run).
 */
export function endTrain(train, running) {
  for (const s of train.order) {
    const r = train.runs[s];
    if (r.status === 'running' && running) r.status = running;
    else if (r.status === 'queued') r.status = 'skipped';
  }
}

/** Fold one core event of `run`'s strategy into it. Data only: the callers draw. */
export function applyRunEvent(run, ev) {
  run.unit = null; // an event ends the step or chunk the progress within it was of
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
      if (ev.reason) run.error = ev.reason; // stopped by itself (its GPU was lost): why
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
