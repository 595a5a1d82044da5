//! The typed events a training run emits, one per `Run::step()`.
//!
//! This is the single wire format of webtune: the CLI prints it with `--json` (one object per
//! line) and the web shell hands the same objects to the page through serde-wasm-bindgen.
use serde::{Deserialize, Serialize};

/// Per-class precision/recall/F1 and support, measured on the validation set when there is one,
/// otherwise on the training set (eval mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
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
        elapsed_ms: f64,
    },
    /// End of an epoch: accuracies measured in eval mode over the whole set (as the notebook does).
    Epoch {
        strategy: String,
        epoch: usize,
        train_loss: f64,
        train_accuracy: f64,
        val_loss: Option<f64>,
        val_accuracy: Option<f64>,
        elapsed_ms: f64,
    },
    /// The run finished. `confusion[true][predicted]` counts, on the same set as `per_class`.
    Done {
        strategy: String,
        train_accuracy: f64,
        val_accuracy: Option<f64>,
        per_class: Vec<ClassMetrics>,
        confusion: Vec<Vec<usize>>,
        steps: usize,
        elapsed_ms: f64,
    },
    Error {
        message: String,
    },
}

impl Event {
    pub fn is_done(&self) -> bool {
        matches!(self, Event::Done { .. } | Event::Error { .. })
    }
}
