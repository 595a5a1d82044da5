//! Time left for a Train, from the core's compute estimates — the one implementation the CLI's
//! progress line and the page's (through the worker, wasm `WebProgress`) both show.
//!
//! Every run reports `work_done` (estimated GFLOP, see [`crate::plan`]) and `elapsed_ms`, its
//! `start` event (and the Train's plan) `work_total`. The speed of the run so far (GFLOP/s)
//! turns what is left of it, and the planned work of the strategies still queued, into time.
//! A frozen run's head steps count no work (they are tiny next to encoding), so its remaining
//! steps are timed by their own measured pace. A run cannot end before its current phase
//! (encoding, evaluating) does at that phase's own pace, which guards against a work estimate
//! that falls short. Between events, a driver that advances unit by unit also passes the
//! [`UnitProgress`] of the step (or chunk) under way, whose `work_done` counts the part of it
//! done: the rate, the time left and the bar then move during a long step.
use serde::{Deserialize, Serialize};

use crate::events::{Event, Phase, UnitProgress};

/// Below this much measured time a rate is too noisy to show.
const MIN_ELAPSED_MS: f64 = 400.0;

/// The estimate for the running strategy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub strategy: String,
    /// GFLOP per second (of this run, or of the Train's earlier runs until it has its own).
    pub rate: Option<f64>,
    /// Milliseconds left for this run, and for the whole Train (None: not known yet).
    pub run_ms: Option<f64>,
    pub train_ms: Option<f64>,
    /// How far this run is, 0..1: time spent over time spent plus time left when that is
    /// known (smooth across phases), else its phase's own `done / total`.
    pub fraction: f64,
    /// Strategies still to run after this one.
    pub queued: usize,
}

/// What the estimate needs of an event: the fields of [`Event`] it reads (a subset, so the
/// page's events — plain objects — can be read without their bulky parts).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EventFields {
    #[serde(rename = "type")]
    pub kind: String,
    pub strategy: String,
    pub total_steps: Option<usize>,
    pub work_total: Option<f64>,
    pub work_done: Option<f64>,
    pub elapsed_ms: Option<f64>,
    pub step: Option<usize>,
    pub phase: Option<Phase>,
    pub epoch: Option<usize>,
    pub done: Option<usize>,
    pub total: Option<usize>,
    /// Of a `unit`: the share of the step or chunk under way done, 0..1 (and `step`: the step
    /// under way, None in a chunk).
    pub fraction: Option<f64>,
}

impl EventFields {
    /// The fields of a core event.
    pub fn of(event: &Event) -> EventFields {
        let base = |kind: &str, strategy: &str| EventFields { kind: kind.into(), strategy: strategy.into(), ..EventFields::default() };
        match event {
            Event::Start { strategy, total_steps, work_total, .. } => {
                EventFields { total_steps: Some(*total_steps), work_total: Some(*work_total), ..base("start", strategy) }
            }
            Event::Progress { strategy, phase, epoch, done, total, work_done, elapsed_ms } => EventFields {
                phase: Some(*phase),
                epoch: Some(*epoch),
                done: Some(*done),
                total: Some(*total),
                work_done: Some(*work_done),
                elapsed_ms: Some(*elapsed_ms),
                ..base("progress", strategy)
            },
            Event::Step { strategy, epoch, step, work_done, elapsed_ms, .. } => EventFields {
                epoch: Some(*epoch),
                step: Some(*step),
                work_done: Some(*work_done),
                elapsed_ms: Some(*elapsed_ms),
                ..base("step", strategy)
            },
            Event::Epoch { strategy, epoch, elapsed_ms, .. } => EventFields { epoch: Some(*epoch), elapsed_ms: Some(*elapsed_ms), ..base("epoch", strategy) },
            Event::Embedding { strategy, epoch, .. } => EventFields { epoch: Some(*epoch), ..base("embedding", strategy) },
            Event::Layers { strategy, epoch, .. } => EventFields { epoch: Some(*epoch), ..base("layers", strategy) },
            Event::Done { strategy, elapsed_ms, .. } => EventFields { elapsed_ms: Some(*elapsed_ms), ..base("done", strategy) },
            Event::Stopped { strategy, elapsed_ms, .. } => EventFields { elapsed_ms: Some(*elapsed_ms), ..base("stopped", strategy) },
            Event::Error { .. } => base("error", ""),
        }
    }

    /// The fields of the progress within a step or chunk.
    pub fn of_unit(unit: &UnitProgress) -> EventFields {
        EventFields {
            kind: "unit".into(),
            strategy: unit.strategy.clone(),
            step: unit.step,
            fraction: Some(unit.fraction),
            work_done: Some(unit.work_done),
            elapsed_ms: Some(unit.elapsed_ms),
            ..EventFields::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RunPhase {
    Cache,
    Train,
    Evaluate,
}

/// The running strategy, as far as its events tell.
#[derive(Debug, Clone)]
struct RunProgress {
    strategy: String,
    head_only: bool,
    work_total: f64,
    total_steps: usize,
    work_done: f64,
    elapsed_ms: f64,
    /// (step, elapsed_ms) of its first and latest `step` events.
    first_step: Option<(usize, f64)>,
    last_step: Option<(usize, f64)>,
    phase: RunPhase,
    /// The latest `progress` event: (phase, epoch, done, total).
    progress: Option<(Phase, usize, usize, usize)>,
    /// The run's elapsed time when the current cache/evaluate phase began, at its latest
    /// `progress` event, and at its latest event (`elapsed_ms` may be a unit's since).
    phase_start_ms: f64,
    progress_ms: f64,
    event_ms: f64,
    /// The share done of the step or chunk under way (0 after any event).
    unit_fraction: f64,
}

/// Follows a Train's events and estimates the time left.
#[derive(Debug, Clone)]
pub struct TrainProgress {
    /// (strategy, planned work in GFLOP, started), in run order.
    planned: Vec<(String, f64, bool)>,
    current: Option<RunProgress>,
    /// Work and time of the runs that ended (a first guess for the next one's rate).
    ended_work: f64,
    ended_ms: f64,
}

/// GFLOP per second, or None when too little has been measured.
fn work_rate(work_done: f64, elapsed_ms: f64) -> Option<f64> {
    (work_done > 0.0 && elapsed_ms >= MIN_ELAPSED_MS).then(|| work_done / (elapsed_ms / 1000.0))
}

/// Milliseconds per optimizer step between two `step` events, or None when fewer than two apart.
fn ms_per_step(first: Option<(usize, f64)>, last: Option<(usize, f64)>) -> Option<f64> {
    let ((s0, t0), (s1, t1)) = (first?, last?);
    if s1 <= s0 {
        return None;
    }
    let ms = (t1 - t0) / (s1 - s0) as f64;
    (ms >= 0.0).then_some(ms)
}

impl TrainProgress {
    /// `planned`: (strategy, planned `work_total`) of every strategy of the Train, in order.
    pub fn new(planned: Vec<(String, f64)>) -> TrainProgress {
        TrainProgress { planned: planned.into_iter().map(|(s, w)| (s, w, false)).collect(), current: None, ended_work: 0.0, ended_ms: 0.0 }
    }

    /// Follow one event.
    pub fn observe(&mut self, ev: &EventFields) {
        if ev.kind == "start" {
            if let Some(p) = self.planned.iter_mut().find(|p| p.0 == ev.strategy && !p.2) {
                p.2 = true;
            }
            let planned = self.planned.iter().find(|p| p.0 == ev.strategy).map_or(0.0, |p| p.1);
            let head_only = ev.strategy == "frozen";
            self.current = Some(RunProgress {
                strategy: ev.strategy.clone(),
                head_only,
                work_total: ev.work_total.unwrap_or(planned),
                total_steps: ev.total_steps.unwrap_or(0),
                work_done: 0.0,
                elapsed_ms: 0.0,
                first_step: None,
                last_step: None,
                phase: if head_only { RunPhase::Cache } else { RunPhase::Train },
                progress: None,
                phase_start_ms: 0.0,
                progress_ms: 0.0,
                event_ms: 0.0,
                unit_fraction: 0.0,
            });
        }
        let Some(run) = self.current.as_mut().filter(|r| r.strategy == ev.strategy || ev.kind == "error") else { return };
        if ev.kind == "progress" {
            let (phase, epoch) = (ev.phase.unwrap_or(Phase::Evaluate), ev.epoch.unwrap_or(0));
            let kind = if phase == Phase::Cache { RunPhase::Cache } else { RunPhase::Evaluate };
            if run.phase != kind || run.progress.is_none_or(|(p, e, _, _)| p != phase || e != epoch) {
                run.phase_start_ms = run.event_ms;
            }
            run.phase = kind;
            run.progress = Some((phase, epoch, ev.done.unwrap_or(0), ev.total.unwrap_or(0)));
        }
        if let Some(ms) = ev.elapsed_ms {
            run.elapsed_ms = ms;
        }
        if ev.kind != "unit" {
            run.event_ms = run.elapsed_ms;
        }
        if ev.kind == "progress" {
            run.progress_ms = run.elapsed_ms;
        }
        run.unit_fraction = if ev.kind == "unit" { ev.fraction.unwrap_or(0.0).clamp(0.0, 1.0) } else { 0.0 };
        if let Some(w) = ev.work_done {
            run.work_done = w;
        }
        match ev.kind.as_str() {
            "step" => {
                let at = (ev.step.unwrap_or(0), run.elapsed_ms);
                run.first_step.get_or_insert(at);
                run.last_step = Some(at);
                run.phase = RunPhase::Train;
            }
            "epoch" => run.phase = RunPhase::Train,
            // Within a step (not a chunk of encoding or evaluation).
            "unit" if ev.step.is_some() => run.phase = RunPhase::Train,
            "done" | "stopped" | "error" => {
                if ev.kind != "error" && run.work_done > 0.0 {
                    self.ended_work += run.work_done;
                    self.ended_ms += run.elapsed_ms;
                }
                self.current = None;
            }
            _ => {}
        }
    }

    /// Follow a core event.
    pub fn observe_event(&mut self, event: &Event) {
        self.observe(&EventFields::of(event));
    }

    /// Follow the progress within a step or chunk.
    pub fn observe_unit(&mut self, unit: &UnitProgress) {
        self.observe(&EventFields::of_unit(unit));
    }

    /// The estimate for the running strategy (None between runs).
    pub fn estimate(&self) -> Option<Estimate> {
        let run = self.current.as_ref()?;
        let step_ms = if run.head_only { ms_per_step(run.first_step, run.last_step) } else { None };
        let steps_left = match step_ms {
            Some(_) => run.total_steps.saturating_sub(run.last_step.map_or(0, |s| s.0)),
            None => 0,
        };
        let queued: Vec<f64> = self.planned.iter().filter(|p| !p.2).map(|p| p.1).collect();
        let in_phase = matches!(run.phase, RunPhase::Cache | RunPhase::Evaluate) && run.progress.is_some();
        let (done, total) = match run.progress {
            Some((_, _, done, total)) if in_phase => (done, total),
            _ => (run.last_step.map_or(0, |s| s.0), run.total_steps),
        };
        // A phase's pace is measured at its progress events (units within a chunk say nothing
        // of the sentences done).
        let phase_ms = if in_phase { phase_left(done, total, run.progress_ms - run.phase_start_ms) } else { None };

        let rate = work_rate(run.work_done, run.elapsed_ms).or_else(|| work_rate(self.ended_work, self.ended_ms));
        let work_left = (run.work_total - run.work_done).max(0.0);
        let mut run_ms = match rate {
            Some(rate) => Some(work_left / rate * 1000.0),
            None if work_left == 0.0 => Some(0.0),
            None => None,
        };
        if steps_left > 0 {
            run_ms = run_ms.zip(step_ms).map(|(ms, per)| ms + steps_left as f64 * per);
        }
        if let (Some(ms), Some(phase)) = (run_ms, phase_ms) {
            run_ms = Some(ms.max(phase));
        }
        let queued_work: f64 = queued.iter().sum();
        let train_ms = match (run_ms, rate) {
            (Some(ms), _) if queued_work == 0.0 => Some(ms),
            (Some(ms), Some(rate)) => Some(ms + queued_work / rate * 1000.0),
            _ => None,
        };
        let fraction = match run_ms {
            Some(left) if run.elapsed_ms > 0.0 => (run.elapsed_ms / (run.elapsed_ms + left)).min(1.0),
            _ if total > 0 => ((done as f64 + if in_phase { 0.0 } else { run.unit_fraction }) / total as f64).min(1.0),
            _ => 0.0,
        };
        Some(Estimate { strategy: run.strategy.clone(), rate, run_ms, train_ms, fraction, queued: queued.len() })
    }
}

/// Milliseconds the current phase needs at its pace so far (`spent_ms` in it; None: not
/// measurable yet).
fn phase_left(done: usize, total: usize, spent_ms: f64) -> Option<f64> {
    if done == 0 || total <= done {
        return (total > 0 && done >= total).then_some(0.0);
    }
    (spent_ms >= MIN_ELAPSED_MS).then(|| spent_ms * (total - done) as f64 / done as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, strategy: &str) -> EventFields {
        EventFields { kind: kind.into(), strategy: strategy.into(), ..EventFields::default() }
    }

    #[test]
    fn time_left_follows_the_rate_and_the_queue() {
        let mut p = TrainProgress::new(vec![("full".into(), 100.0), ("top:2".into(), 50.0)]);
        assert_eq!(p.estimate(), None);
        p.observe(&EventFields { work_total: Some(100.0), total_steps: Some(20), ..ev("start", "full") });
        // Too early for a rate: unknown, and the fraction is the step count's.
        p.observe(&EventFields { step: Some(1), work_done: Some(1.0), elapsed_ms: Some(100.0), ..ev("step", "full") });
        let e = p.estimate().unwrap();
        assert_eq!((e.run_ms, e.train_ms, e.queued), (None, None, 1));
        assert!((e.fraction - 0.05).abs() < 1e-12);
        // 25 GFLOP in 1 s: 75 left of this run (3 s), 50 queued (2 s).
        p.observe(&EventFields { step: Some(5), work_done: Some(25.0), elapsed_ms: Some(1000.0), ..ev("step", "full") });
        let e = p.estimate().unwrap();
        assert_eq!((e.rate, e.run_ms, e.train_ms), (Some(25.0), Some(3000.0), Some(5000.0)));
        assert!((e.fraction - 0.25).abs() < 1e-12);
        // The next run starts with the first run's rate until it has its own.
        p.observe(&EventFields { step: Some(20), work_done: Some(100.0), elapsed_ms: Some(3900.0), ..ev("step", "full") });
        p.observe(&EventFields { elapsed_ms: Some(4000.0), ..ev("done", "full") });
        p.observe(&EventFields { work_total: Some(50.0), total_steps: Some(10), ..ev("start", "top:2") });
        let e = p.estimate().unwrap();
        assert_eq!((e.strategy.as_str(), e.queued), ("top:2", 0));
        assert_eq!(e.run_ms, Some(50.0 / (100.0 / 4.0) * 1000.0));
    }

    #[test]
    fn units_inside_a_long_step_move_the_time_left_and_the_bar() {
        let mut p = TrainProgress::new(vec![("full".into(), 100.0)]);
        p.observe(&EventFields { work_total: Some(100.0), total_steps: Some(10), ..ev("start", "full") });
        let unit = |fraction: f64, elapsed_ms: f64| UnitProgress { strategy: "full".into(), step: Some(1), units_done: 1, units: 20, fraction, work_done: 10.0 * fraction, elapsed_ms };
        // Too early for a rate: the bar is the step count's, the step under way included.
        p.observe_unit(&unit(0.5, 200.0));
        let e = p.estimate().unwrap();
        assert_eq!(e.run_ms, None);
        assert!((e.fraction - 0.05).abs() < 1e-12, "{e:?}");
        // The first step (10 GFLOP) 30 % done in 3 s: 1 GFLOP/s, 97 s left; then 60 % in 6 s.
        p.observe_unit(&unit(0.3, 3000.0));
        let before = p.estimate().unwrap();
        assert_eq!(before.run_ms, Some(97_000.0));
        p.observe_unit(&unit(0.6, 6000.0));
        let after = p.estimate().unwrap();
        assert_eq!(after.run_ms, Some(94_000.0));
        assert!(after.fraction > before.fraction, "{before:?} → {after:?}");
        // The step's event counts it in full.
        p.observe(&EventFields { step: Some(1), work_done: Some(10.0), elapsed_ms: Some(10_000.0), ..ev("step", "full") });
        assert_eq!(p.estimate().unwrap().run_ms, Some(90_000.0));
    }

    #[test]
    fn a_frozen_runs_head_steps_are_timed_by_their_pace_and_a_phase_by_its_own() {
        let mut p = TrainProgress::new(vec![("frozen".into(), 10.0)]);
        p.observe(&EventFields { work_total: Some(10.0), total_steps: Some(100), ..ev("start", "frozen") });
        // Encoding: half the sentences in 1 s; the work estimate (2 of 10 GFLOP) says 4 s more,
        // the phase's own pace 1 s: the larger wins.
        p.observe(&EventFields { phase: Some(Phase::Cache), epoch: Some(0), done: Some(50), total: Some(100), work_done: Some(2.0), elapsed_ms: Some(1000.0), ..ev("progress", "frozen") });
        assert_eq!(p.estimate().unwrap().run_ms, Some(4000.0));
        // All work done; 10 head steps took 10 ms each: 90 steps left → 900 ms.
        p.observe(&EventFields { step: Some(1), work_done: Some(10.0), elapsed_ms: Some(5000.0), ..ev("step", "frozen") });
        p.observe(&EventFields { step: Some(10), work_done: Some(10.0), elapsed_ms: Some(5090.0), ..ev("step", "frozen") });
        let e = p.estimate().unwrap();
        assert!((e.run_ms.unwrap() - 900.0).abs() < 1e-9, "{e:?}");
    }
}
