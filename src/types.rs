//! The value types every layer shares: what a run trains and how (re-exported from
//! [`crate::options`], the training options' contract), and what the core hands back
//! ([`ModelInfo`], [`Prediction`], [`ExportedModel`]).
//!
//! This module sits at the bottom of the core: it depends on nothing but [`crate::options`], so
//! the model, the training loop and the facade can all use these types without importing each
//! other.
use serde::{Deserialize, Serialize};

pub use crate::options::{LoraOptions, Projection, Schedule, Strategy, TrainOptions};

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
