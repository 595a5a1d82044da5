//! The live progress line of `webtune train` (stderr): what the current run is doing, steps per
//! second, and the time left for this strategy and for the whole Train.
//!
//! Time left is the core's estimate (webtune::progress, the same the page shows): from compute,
//! not from steps, so the rate measured so far applies to encoding, training and evaluation
//! alike, and to the strategies still queued (their planned work).
use std::io::Write;
use std::time::{Duration, Instant};

use webtune::events::{Event, Phase};
use webtune::progress::TrainProgress;

pub struct ProgressLine {
    train: TrainProgress,
    total_steps: usize,
    last_draw: Option<Instant>,
}

/// "1m05s", "42s", "…" when unknown.
fn duration_text(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() && s >= 0.0 => {
            let s = s.round() as u64;
            if s >= 60 { format!("{}m{:02}s", s / 60, s % 60) } else { format!("{s}s") }
        }
        _ => "…".into(),
    }
}

impl ProgressLine {
    /// `planned`: (strategy, planned work) of every strategy of the Train, in order.
    pub fn new(planned: Vec<(String, f64)>) -> Self {
        ProgressLine { train: TrainProgress::new(planned), total_steps: 0, last_draw: None }
    }

    /// (left for this run, left for the whole Train), seconds.
    fn time_left(&self) -> (Option<f64>, Option<f64>) {
        self.train.estimate().map_or((None, None), |e| (e.run_ms.map(|ms| ms / 1000.0), e.train_ms.map(|ms| ms / 1000.0)))
    }

    /// Redraw at most ten times a second, except for lines that must stay.
    fn draw(&mut self, line: String, keep: bool) {
        let now = Instant::now();
        if !keep && self.last_draw.is_some_and(|t| now - t < Duration::from_millis(100)) {
            return;
        }
        self.last_draw = Some(now);
        let mut err = std::io::stderr();
        let _ = if keep { writeln!(err, "\r{line:<100}") } else { write!(err, "\r{line:<100}") };
    }

    pub fn on_event(&mut self, event: &Event) {
        self.train.observe_event(event);
        match event {
            Event::Start { strategy, total_steps, train_size, train_eval_size, threads, .. } => {
                self.total_steps = *total_steps;
                let sample = if train_eval_size < train_size { format!(", training accuracy on a sample of {train_eval_size}") } else { String::new() };
                self.draw(format!("[{strategy}] {train_size} sentences, {total_steps} steps, {threads} thread(s){sample}"), true);
            }
            Event::Progress { strategy, phase, done, total, epoch, .. } => {
                let (this, all) = self.time_left();
                let what = match phase {
                    Phase::Cache => "encoding".to_string(),
                    Phase::Evaluate => format!("evaluating epoch {epoch}"),
                };
                self.draw(format!("[{strategy}] {what} {done}/{total} | left {} (all {})", duration_text(this), duration_text(all)), false);
            }
            Event::Step { strategy, epoch, step, loss, elapsed_ms, .. } => {
                let (this, all) = self.time_left();
                let rate = *step as f64 / (elapsed_ms / 1000.0);
                let total = self.total_steps;
                self.draw(format!("[{strategy}] epoch {epoch} step {step}/{total} loss {loss:.4} | {rate:.1} steps/s | left {} (all {})", duration_text(this), duration_text(all)), false);
            }
            Event::Epoch { strategy, epoch, train_loss, train_accuracy, train_eval_size, val_accuracy, elapsed_ms, .. } => {
                let val = val_accuracy.map(|v| format!(" val acc {:.1}%", v * 100.0)).unwrap_or_default();
                self.draw(
                    format!("[{strategy}] epoch {epoch}: train loss {train_loss:.4} train acc {:.1}% (on {train_eval_size}){val} ({:.1}s)", train_accuracy * 100.0, elapsed_ms / 1000.0),
                    true,
                );
            }
            Event::Embedding { strategy, epoch, separation, val_separation, .. } => {
                let val = val_separation.map(|v| format!(", validation {v:.3}")).unwrap_or_default();
                self.draw(format!("[{strategy}] class separation after epoch {epoch}: {separation:.3}{val}"), true);
            }
            Event::Layers { .. } | Event::Done { .. } | Event::Stopped { .. } | Event::Error { .. } => {}
        }
    }
}
