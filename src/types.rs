//! The value types every layer shares: what a run trains ([`Strategy`]), how ([`TrainOptions`]),
//! and what the core hands back ([`ModelInfo`], [`Prediction`], [`ExportedModel`]).
//!
//! This module sits at the bottom of the core: it depends on nothing but [`crate::error`], so
//! the model, the training loop and the facade can all use these types without importing each
//! other.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Which parameters train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Encoder and pooler frozen: only the classifier head trains (transfer learning).
    Frozen,
    /// The top K encoder layers + pooler + classifier train.
    Top(usize),
    /// Every weight trains.
    Full,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Frozen => write!(f, "frozen"),
            Strategy::Top(k) => write!(f, "top:{k}"),
            Strategy::Full => write!(f, "full"),
        }
    }
}

impl FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        match s {
            "frozen" => return Ok(Strategy::Frozen),
            "full" => return Ok(Strategy::Full),
            _ => {}
        }
        if let Some(k) = s.strip_prefix("top:") {
            return match k.trim().parse::<usize>() {
                Ok(k) if k >= 1 => Ok(Strategy::Top(k)),
                _ => Err(Error::Options(format!("strategy '{s}': K in top:K must be a whole number ≥ 1 (e.g. top:2)"))),
            };
        }
        Err(Error::Options(format!("unknown strategy '{s}': use frozen, full or top:K (e.g. top:2)")))
    }
}

/// Learning-rate schedule over the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The notebook's: the same learning rate for every step.
    #[default]
    Constant,
    /// transformers' `get_linear_schedule_with_warmup`: linear warm-up from 0 over
    /// ceil(`warmup_ratio` × steps), then linear decay to zero.
    Linear,
}

/// Hyper-parameters of a run. Defaults are the notebook's (Adam lr 2e-5, batch 2, 4 epochs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f64,
    /// Learning rate of the classifier head (and pooler); `None` = `learning_rate`.
    pub head_learning_rate: Option<f64>,
    pub batch_size: usize,
    pub max_len: usize,
    /// Pad every batch to `max_len` (as the notebook does) instead of to its longest sentence.
    pub pad_to_max_len: bool,
    pub seed: u64,
    /// AdamW decoupled weight decay; 0 = torch's plain Adam.
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub warmup_ratio: f64,
    /// Clip the global gradient L2 norm to this value.
    pub max_grad_norm: Option<f64>,
    /// Measure each epoch's training accuracy on a fixed stratified sample of at most this many
    /// training sentences (0 = all of them). Validation data is always evaluated whole.
    pub train_eval_sample: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 4,
            learning_rate: 2e-5,
            head_learning_rate: None,
            batch_size: 2,
            max_len: 128,
            pad_to_max_len: false,
            seed: 0,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            warmup_ratio: 0.0,
            max_grad_norm: None,
            train_eval_sample: 1000,
        }
    }
}

/// What the loaded model is, for the UI and the CLI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    pub num_layers: usize,
    pub hidden_size: usize,
    pub num_heads: usize,
    pub vocab_size: usize,
    pub num_parameters: usize,
    pub has_pooler: bool,
    /// The longest input, in tokens, predictions use (the max length the model was trained with
    /// when it is a webtune export).
    pub max_len: usize,
    /// `id2label` when the checkpoint is a fine-tuned classifier (e.g. our own export).
    pub labels: Option<Vec<String>>,
    /// Things the user should know (e.g. "no pooler weights: initialised randomly").
    pub notes: Vec<String>,
}

/// Class probabilities for one text, in label-id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prediction {
    pub text: String,
    pub label: String,
    pub labels: Vec<String>,
    pub probabilities: Vec<f64>,
}

/// The files of an exported model (loadable by transformers' `from_pretrained`).
#[derive(Debug, Clone)]
pub struct ExportedModel {
    pub config_json: Vec<u8>,
    pub tokenizer_json: Vec<u8>,
    pub model_safetensors: Vec<u8>,
}

impl ExportedModel {
    /// `(file name, bytes)` pairs, in the order a Hugging Face model folder lists them.
    pub fn files(&self) -> [(&'static str, &[u8]); 3] {
        [
            ("config.json", &self.config_json),
            ("tokenizer.json", &self.tokenizer_json),
            ("model.safetensors", &self.model_safetensors),
        ]
    }
}
