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
    /// Low-rank adapters of rank R on the projections `TrainOptions::lora` names; the
    /// pre-trained weights stay frozen (and shared), the pooler and classifier train fully.
    Lora(usize),
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Frozen => write!(f, "frozen"),
            Strategy::Top(k) => write!(f, "top:{k}"),
            Strategy::Full => write!(f, "full"),
            Strategy::Lora(r) => write!(f, "lora:{r}"),
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
        if let Some(r) = s.strip_prefix("lora:") {
            return match r.trim().parse::<usize>() {
                Ok(r) if r >= 1 => Ok(Strategy::Lora(r)),
                _ => Err(Error::Options(format!("strategy '{s}': R in lora:R must be a whole number ≥ 1, the adapters' rank (e.g. lora:8)"))),
            };
        }
        Err(Error::Options(format!("unknown strategy '{s}': use frozen, full, top:K (e.g. top:2) or lora:R (e.g. lora:8)")))
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
    /// The adapters of `lora:R` runs.
    pub lora: LoraOptions,
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
            lora: LoraOptions::default(),
        }
    }
}

/// A projection of an encoder layer that LoRA can adapt, named as PEFT's `target_modules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    Query,
    Key,
    Value,
    /// `attention.output.dense`
    AttentionOutput,
    /// `intermediate.dense`
    Intermediate,
    /// `output.dense`
    Output,
}

impl Projection {
    pub const ALL: [Projection; 6] = [Projection::Query, Projection::Key, Projection::Value, Projection::AttentionOutput, Projection::Intermediate, Projection::Output];

    /// The module's path inside `encoder.layer.N`, as transformers names it.
    pub fn module_path(self) -> &'static str {
        match self {
            Projection::Query => "attention.self.query",
            Projection::Key => "attention.self.key",
            Projection::Value => "attention.self.value",
            Projection::AttentionOutput => "attention.output.dense",
            Projection::Intermediate => "intermediate.dense",
            Projection::Output => "output.dense",
        }
    }

    /// The name the options and the CLI use.
    pub fn option_name(self) -> &'static str {
        match self {
            Projection::Query => "query",
            Projection::Key => "key",
            Projection::Value => "value",
            Projection::AttentionOutput => "attention_output",
            Projection::Intermediate => "intermediate",
            Projection::Output => "output",
        }
    }
}

impl FromStr for Projection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Projection::ALL.into_iter().find(|p| p.option_name() == s.trim()).ok_or_else(|| {
            Error::Options(format!("unknown LoRA target '{}': use query, key, value, attention_output, intermediate or output", s.trim()))
        })
    }
}

/// LoRA's options, with PEFT `LoraConfig`'s defaults (alpha 8, dropout 0, query and value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoraOptions {
    /// The update is scaled by alpha / rank.
    pub alpha: f64,
    /// Dropout on each adapter's input.
    pub dropout: f64,
    /// The projections of every layer that get an adapter.
    pub targets: Vec<Projection>,
    /// Learning rate of the adapters (and, unless `head_learning_rate` is set, of the pooler and
    /// classifier) in a LoRA run: adapters start at zero and need a larger step than full
    /// fine-tuning's 2e-5.
    pub learning_rate: f64,
}

impl Default for LoraOptions {
    fn default() -> Self {
        LoraOptions { alpha: 8.0, dropout: 0.0, targets: vec![Projection::Query, Projection::Value], learning_rate: 5e-4 }
    }
}

impl LoraOptions {
    /// Errors that name the option and what to do.
    pub fn validate(&self) -> Result<()> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::Options(format!("LoRA alpha must be a positive number (got {}); PEFT's default is 8", self.alpha)));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Options(format!("LoRA dropout must be at least 0 and below 1 (got {})", self.dropout)));
        }
        if self.targets.is_empty() {
            return Err(Error::Options("LoRA needs at least one target projection (e.g. query,value)".into()));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::Options(format!("LoRA learning rate must be a positive number (got {})", self.learning_rate)));
        }
        Ok(())
    }

    /// Whether `projection` gets an adapter.
    pub fn adapts(&self, projection: Projection) -> bool {
        self.targets.contains(&projection)
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
