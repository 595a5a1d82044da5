//! The typed events a training run emits, one per `Run::step()`.
//!
//! This is the single wire format of webtune: the CLI prints it with `--json` (one object per
//! line) and the web shell hands the same objects to the page through serde-wasm-bindgen.
//! A run's stream is: `start`, then `progress` (encoding the frozen cache, evaluating) and
//! `step` events, an `epoch` event after each epoch's evaluation, and `done` — or `stopped`
//! when the driver stops it, or `error`.
use serde::{Deserialize, Serialize};

/// Per-class precision/recall/F1 and support, measured on the validation set when there is one,
/// otherwise on the (sample of the) training set (eval mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// Which bounded chunk of work a [`Event::Progress`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// A frozen run encoding its sentences once (eval mode) into the cache its head trains on.
    Cache,
    /// Evaluating the training sample and the validation set after an epoch.
    Evaluate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// The run begins. Sizes are in sentences; `train_eval_size` is how many training
    /// sentences each epoch's training accuracy is measured on (a fixed stratified sample when
    /// the set is larger than the evaluation budget). `work_total` is the run's estimated
    /// compute in GFLOP (the unit of `work_done` in later events, for time-left estimates).
    Start {
        strategy: String,
        epochs: usize,
        total_steps: usize,
        train_size: usize,
        val_size: usize,
        train_eval_size: usize,
        labels: Vec<String>,
        threads: usize,
        trainable_parameters: usize,
        estimated_peak_bytes: u64,
        work_total: f64,
    },
    /// A bounded chunk of non-training work: `done` of `total` sentences of `phase` (for
    /// `evaluate`, of the evaluation after epoch `epoch`).
    Progress {
        strategy: String,
        phase: Phase,
        epoch: usize,
        done: usize,
        total: usize,
        work_done: f64,
        elapsed_ms: f64,
    },
    /// One optimizer step. `step` counts from 1 over the whole run; `loss` is the batch loss;
    /// `lr` and `head_lr` are the learning rates of the encoder and of the head (classifier and
    /// pooler) in this step.
    Step {
        strategy: String,
        epoch: usize,
        step: usize,
        loss: f64,
        lr: f64,
        head_lr: f64,
        work_done: f64,
        elapsed_ms: f64,
    },
    /// End of an epoch: accuracies measured in eval mode (as the notebook does), the training
    /// accuracy on `train_eval_size` sentences, the validation accuracy on the whole set.
    /// `train_loss` is the mean loss of the epoch's training batches (training mode).
    Epoch {
        strategy: String,
        epoch: usize,
        train_loss: f64,
        train_accuracy: f64,
        train_eval_size: usize,
        val_loss: Option<f64>,
        val_accuracy: Option<f64>,
        elapsed_ms: f64,
    },
    /// The run finished. `confusion[true][predicted]` counts, on the same set as `per_class`
    /// (`evaluated_on`: "validation", "training" or "training sample"). `peak_bytes` is the
    /// most heap the run had allocated at once beyond what existed when it started;
    /// `retained_bytes` what it still holds for predictions and export.
    Done {
        strategy: String,
        train_accuracy: f64,
        val_accuracy: Option<f64>,
        per_class: Vec<ClassMetrics>,
        confusion: Vec<Vec<usize>>,
        evaluated_on: String,
        steps: usize,
        threads: usize,
        peak_bytes: u64,
        retained_bytes: u64,
        elapsed_ms: f64,
    },
    /// The driver stopped the run before it finished; its model so far can still predict and
    /// be exported.
    Stopped {
        strategy: String,
        steps: usize,
        retained_bytes: u64,
        elapsed_ms: f64,
    },
    Error {
        message: String,
    },
}

impl Event {
    /// Whether the run is over after this event.
    pub fn is_done(&self) -> bool {
        matches!(self, Event::Done { .. } | Event::Stopped { .. } | Event::Error { .. })
    }
}
