//! The facade both shells use: load a model from bytes, start training runs, predict, export.
//!
//! A [`Session`] holds the pre-trained weights once; every [`Run`] starts from them (trainable
//! tensors are deep-copied, frozen ones shared), so several strategies can be compared from the
//! same initial weights.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::data::Dataset;
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
                _ => Err(Error::Options(format!(
                    "strategy '{s}': K in top:K must be a whole number ≥ 1 (e.g. top:2)"
                ))),
            };
        }
        Err(Error::Options(format!(
            "unknown strategy '{s}': use frozen, full or top:K (e.g. top:2)"
        )))
    }
}

/// Learning-rate schedule over the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The notebook's: the same learning rate for every step.
    #[default]
    Constant,
    /// Linear warm-up over `warmup_ratio` of the steps, then linear decay to zero.
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

pub use crate::train::Run;

pub struct Session {
    pub(crate) inner: crate::model::Pretrained,
}

impl Session {
    /// Load the Hugging Face trio from bytes.
    pub fn load(config_json: &[u8], tokenizer_json: &[u8], model_safetensors: &[u8]) -> Result<Session> {
        Ok(Session { inner: crate::model::Pretrained::load(config_json, tokenizer_json, model_safetensors)? })
    }

    pub fn info(&self) -> ModelInfo {
        self.inner.info()
    }

    /// Start a training run. `val` is optional; labels of both sets must come from the same
    /// parse (see [`crate::data`]).
    pub fn start_run(&self, strategy: Strategy, train: &Dataset, val: Option<&Dataset>, options: &TrainOptions) -> Result<Run> {
        Run::start(&self.inner, strategy, train, val, options)
    }

    /// Predict with the loaded checkpoint itself (only for fine-tuned classifiers, e.g. an export).
    pub fn predict(&self, texts: &[String]) -> Result<Vec<Prediction>> {
        self.inner.predict(texts)
    }
}

/// Which input a data diagnostic refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataField {
    Train,
    Validation,
}

/// A data problem, tagged with the input it was found in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDiagnostic {
    pub field: DataField,
    pub line: usize,
    pub message: String,
}

/// Training data plus optional validation data, ready for [`Session::start_run`].
#[derive(Debug, Clone)]
pub struct PreparedData {
    pub train: Dataset,
    pub validation: Option<Dataset>,
}

/// Parse training text, and validation either from its own text (parsed against the training
/// classes) or as a stratified split of the training data (`val_fraction`, seeded). Every
/// problem of both inputs is returned, tagged with its field.
pub fn prepare_data(train_text: &str, val_text: Option<&str>, val_fraction: Option<f64>, seed: u64) -> std::result::Result<PreparedData, Vec<FieldDiagnostic>> {
    use crate::data::{parse_labelled_text, parse_with_labels, stratified_split, ParseError};
    let tag = |field: DataField| move |e: ParseError| -> Vec<FieldDiagnostic> {
        e.diagnostics.into_iter().map(|d| FieldDiagnostic { field, line: d.line, message: d.message }).collect()
    };
    let train = parse_labelled_text(train_text).map_err(tag(DataField::Train))?;
    let val_text = val_text.filter(|t| !t.trim().is_empty());
    match (val_text, val_fraction) {
        (Some(_), Some(_)) => Err(vec![FieldDiagnostic {
            field: DataField::Validation,
            line: 0,
            message: "give either validation data or a validation fraction, not both".into(),
        }]),
        (Some(text), None) => {
            let validation = parse_with_labels(text, &train.labels).map_err(tag(DataField::Validation))?;
            Ok(PreparedData { train, validation: Some(validation) })
        }
        (None, Some(fraction)) => {
            let (train, validation) = stratified_split(&train, fraction, seed).map_err(tag(DataField::Validation))?;
            Ok(PreparedData { train, validation: Some(validation) })
        }
        (None, None) => Ok(PreparedData { train, validation: None }),
    }
}

/// The encoder's view of one text (`webtune encode`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Encoding {
    pub text: String,
    pub input_ids: Vec<u32>,
    /// Last hidden state of the first ([CLS]) token.
    pub cls: Vec<f32>,
    /// Mean of the last hidden state over the tokens.
    pub mean: Vec<f32>,
    /// tanh(dense([CLS])).
    pub pooled: Vec<f32>,
    /// Every token's last hidden state, (tokens, hidden).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_hidden_state: Option<Vec<Vec<f32>>>,
}

impl Session {
    /// Run the pre-trained encoder (eval mode) on one text.
    pub fn encode(&self, text: &str) -> Result<Encoding> {
        self.encode_full(text, false)
    }

    /// As [`Session::encode`], optionally with every token's hidden state.
    pub fn encode_full(&self, text: &str, with_tokens: bool) -> Result<Encoding> {
        let encoder = self.inner.encoder(crate::model::DEFAULT_MAX_LEN)?;
        let ids = encoder.encode_ids(text)?;
        let batch = encoder.batch(&[&ids], false, &candle_core::Device::Cpu)?;
        let out = self.inner.weights.encode(&self.inner.config, &batch, None)?;
        let hidden = out.last_hidden_state.squeeze(0)?;
        Ok(Encoding {
            text: text.to_string(),
            input_ids: ids,
            cls: hidden.get(0)?.to_vec1()?,
            mean: hidden.mean(0)?.to_vec1()?,
            pooled: out.pooled.squeeze(0)?.to_vec1()?,
            last_hidden_state: if with_tokens { Some(hidden.to_vec2()?) } else { None },
        })
    }
}

impl Session {
    /// The loaded checkpoint, for diagnostics and tests that need the model itself.
    pub fn pretrained(&self) -> &crate::model::Pretrained {
        &self.inner
    }
}
