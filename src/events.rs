//! The typed events a training run emits, one per `Run::step()`.
//!
//! This is the single wire format of webtune: the CLI prints it with `--json` (one object per
//! line) and the web shell hands the same objects to the page through serde-wasm-bindgen.
//! A run's stream is: `start`; `progress` events while a frozen run encodes its cache and
//! while the model is evaluated before training; an `embedding` snapshot (epoch 0); then per
//! epoch `step` events, `progress` of the evaluation, and `epoch`, `embedding` and `layers`;
//! finally `done` — or `stopped` when the driver stops it, or `error`. Between two events a
//! driver that advances unit by unit also sees [`UnitProgress`], which is not part of the
//! stream.
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

/// One set's sentences on the embedding map (parallel arrays, one entry per point).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MapPoints {
    /// Position of the sentence in its data set (training or validation, as parsed).
    pub index: Vec<usize>,
    pub label: Vec<usize>,
    pub predicted: Vec<usize>,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// The sentences themselves, in the snapshot before training only (later snapshots of the
    /// same run list the same points in the same order).
    pub text: Vec<String>,
}

/// How much one block of weights moved since the pre-trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockChange {
    /// "embeddings", "layer 0" … "layer N-1", "pooler", "classifier".
    pub name: String,
    /// ‖W − W₀‖ / ‖W₀‖ over the block's tensors; for the new classifier head, which has no
    /// pre-trained W₀, its norm ‖W‖ (`relative` false).
    pub change: f64,
    pub relative: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[allow(clippy::large_enum_variant)] // a few events per epoch; boxing would only add noise
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
        /// Where the encoder runs: "cpu", or "gpu: <adapter> (<backend>)".
        #[serde(default = "cpu_device")]
        device: String,
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
    /// A snapshot of the sentence space, once before training (`epoch` 0) and after each
    /// epoch: each sentence's pooled vector (what the classifier reads) projected on the map's
    /// plane — the top two principal components of the pre-trained model's pooled vectors of
    /// the training sentences, the same plane for every run and epoch. At most 2,000 training
    /// and 2,000 validation sentences (fixed stratified samples). `separation`: between-class
    /// over within-class variance in the full space (training points; `val_separation` for the
    /// validation points). `decision_line` [a, b, c]: for two classes, where the classifier is
    /// undecided on the map's plane (a·x + b·y + c = 0).
    Embedding {
        strategy: String,
        epoch: usize,
        train: MapPoints,
        validation: Option<MapPoints>,
        separation: f64,
        val_separation: Option<f64>,
        decision_line: Option<[f64; 3]>,
    },
    /// After each epoch: how far each block of weights moved from the pre-trained model.
    Layers {
        strategy: String,
        epoch: usize,
        blocks: Vec<BlockChange>,
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
        /// Why, when the run stopped by itself (the GPU was lost); None for the driver's Stop.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Error {
        message: String,
    },
}

/// Where a piece of work that takes several calls stands — an optimizer step, or a chunk of
/// encoding or evaluation, run one unit (at most about one layer of one batch) per call of
/// `Run::advance`. Not an [`Event`]: no run's event stream or results record holds it; a
/// driver shows it (the page's progress bar and time left move during a long step) and can
/// stop between two units. `work_done` counts the piece's estimated share done so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "unit")]
pub struct UnitProgress {
    pub strategy: String,
    /// The optimizer step under way (counting from 1 over the run), or None within a chunk of
    /// encoding or evaluation.
    pub step: Option<usize>,
    /// Units of the piece done, of `units`.
    pub units_done: usize,
    pub units: usize,
    /// The share of the piece's work done, 0..1.
    pub fraction: f64,
    pub work_done: f64,
    pub elapsed_ms: f64,
}

impl Event {
    /// Whether the run is over after this event.
    pub fn is_done(&self) -> bool {
        matches!(self, Event::Done { .. } | Event::Stopped { .. } | Event::Error { .. })
    }
}

fn cpu_device() -> String {
    "cpu".into()
}
