//! The facade both shells use: load a model from bytes, start training runs, predict, export.
//!
//! A [`Session`] holds the pre-trained weights once; every [`Run`] starts from them (trainable
//! tensors are deep-copied, frozen ones shared), so several strategies can be compared from the
//! same initial weights.
use serde::{Deserialize, Serialize};

use crate::config::BertConfig;
use crate::data::{self, Dataset};
use crate::model::Pretrained;
use crate::plan::{self, DataShape, RunPlan};
use crate::tokenize::TextEncoder;
use crate::train::Run;
use crate::types::{ModelInfo, Prediction, Strategy, TrainOptions};
use crate::{Error, Result};

/// A loaded pre-trained checkpoint, from which training runs start.
pub struct Session {
    inner: Pretrained,
    memory_limit: Option<u64>,
}

impl Session {
    /// Load the Hugging Face trio from bytes.
    pub fn load(config_json: &[u8], tokenizer_json: &[u8], model_safetensors: &[u8]) -> Result<Session> {
        Ok(Session { inner: Pretrained::load(config_json, tokenizer_json, model_safetensors)?, memory_limit: None })
    }

    pub fn info(&self) -> ModelInfo {
        self.inner.info()
    }

    /// Start a training run. `val` is optional; labels of both sets must come from the same
    /// parse (see [`crate::data`]). With a memory limit set, a run whose estimated peak does
    /// not fit what is left is refused before it allocates anything.
    pub fn start_run(&self, strategy: Strategy, train: &Dataset, val: Option<&Dataset>, options: &TrainOptions) -> Result<Run> {
        Run::start(&self.inner, strategy, train, val, options, self.memory_limit)
    }

    /// Refuse runs whose estimated peak would take the heap past `bytes` (the web shell sets
    /// the 4 GiB of wasm32, less a margin); `None`: no limit (native).
    pub fn set_memory_limit(&mut self, bytes: Option<u64>) {
        self.memory_limit = bytes;
    }

    /// The estimated steps, compute and memory of each strategy on this data, in order — for
    /// time-left estimates over a whole Train and to refuse a Train that cannot fit.
    pub fn plan(&self, strategies: &[Strategy], train: &Dataset, val: Option<&Dataset>, options: &TrainOptions) -> Result<Vec<RunPlan>> {
        plan_train(&self.inner.config, &self.inner.tokenizer_json, strategies, train, val, options)
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
        let encoder = &self.inner.predict_encoder;
        let ids = encoder.encode_ids(text)?;
        let batch = encoder.batch(&[&ids], false);
        let out = crate::encoder::encode_eval(&self.inner.config, &self.inner.weights, None, &batch, true)?;
        let h = self.inner.config.hidden_size;
        let rows: Vec<Vec<f32>> = out.last_hidden.unwrap_or_default().chunks(h).map(<[f32]>::to_vec).collect();
        let mean = (0..h).map(|j| rows.iter().map(|r| r[j]).sum::<f32>() / rows.len() as f32).collect();
        Ok(Encoding {
            text: text.to_string(),
            input_ids: ids,
            cls: rows[0].clone(),
            mean,
            pooled: out.pooled,
            last_hidden_state: with_tokens.then_some(rows),
        })
    }
}

impl Session {
    /// The loaded checkpoint, for diagnostics, benchmarks and tests that need the model itself.
    pub fn pretrained(&self) -> &Pretrained {
        &self.inner
    }
}

/// Plan a Train from config.json and tokenizer.json alone (before the weights are downloaded):
/// fails on a checkpoint that is not a BERT webtune can train, and gives each strategy's
/// estimated steps, compute and memory.
pub fn plan_train(config: &BertConfig, tokenizer_json: &[u8], strategies: &[Strategy], train: &Dataset, val: Option<&Dataset>, options: &TrainOptions) -> Result<Vec<RunPlan>> {
    options.validate()?;
    if strategies.iter().any(|s| matches!(s, Strategy::Lora(_))) {
        options.lora.validate()?;
    }
    crate::options::total_steps(train.len(), options)?;
    let encoder = TextEncoder::from_bytes(tokenizer_json, options.max_len.max(2), config.pad_token_id)?;
    // Each sentence is tokenized here first, so a problem names its line in the data.
    let lengths = |ds: &Dataset, which: &str| -> Result<Vec<usize>> {
        ds.examples
            .iter()
            .map(|e| encoder.encode_ids(&e.text).map(|ids| ids.len()).map_err(|err| {
                let why = match err {
                    Error::Tokenizer(why) => why,
                    other => other.to_string(),
                };
                Error::Data(format!("{which}, line {}: {why}", e.line))
            }))
            .collect()
    };
    let train_lengths = lengths(train, "training data")?;
    let val_lengths = val.map(|v| lengths(v, "validation data")).transpose()?.unwrap_or_default();
    let limit = if options.train_eval_sample == 0 { usize::MAX } else { options.train_eval_sample };
    let train_eval_size = data::stratified_sample(train, limit, options.seed).len();
    let shape = DataShape { train_lengths: &train_lengths, val_lengths: &val_lengths, train_eval_size };
    Ok(strategies.iter().map(|&s| plan::plan_run(config, s, options, train.labels.len(), &shape)).collect())
}
