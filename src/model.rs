//! The `…ForSequenceClassification` model (BERT, DistilBERT, RoBERTa: see
//! [`crate::architecture`]) as loaded from a Hugging Face checkpoint ([`Pretrained`]), and
//! predictions with it. The parameter structure is in [`crate::params`],
//! the arithmetic — forward and backward — in [`crate::encoder`].
//!
//! Parameters are candle tensors (their storage is shared, reference-counted); a training run
//! turns the ones its strategy trains into deep copies, so frozen tensors are shared with the
//! pre-trained weights.
use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::checkpoint::{self, CheckpointTensors};
use crate::config::BertConfig;
use crate::encoder;
pub use crate::params::{BertParams, BertWeights, Dropout, EncoderLayer, LayerNorm, Linear, Stored};
use crate::params::Adapters;
use crate::metrics;
use crate::rng::{self, SeededRng};
use crate::tokenize::{self, TextEncoder};
use crate::types::{ModelInfo, Prediction};
use crate::{Error, Result};

/// Softmax probabilities of rows of logits, as f64.
pub fn probabilities(logits: &[Vec<f32>]) -> Vec<Vec<f64>> {
    logits
        .iter()
        .map(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let exps: Vec<f64> = row.iter().map(|v| (*v as f64 - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.into_iter().map(|e| e / sum).collect()
        })
        .collect()
}

/// A classification head: `classifier.weight` (labels, hidden) and bias, initialised like
/// transformers (normal(0, initializer_range), zero bias) from a seeded RNG.
pub fn init_classifier(config: &BertConfig, num_labels: usize, seed: u64) -> Result<Linear> {
    let mut rng = rng::seeded(seed, 11);
    let h = config.hidden_size;
    let weight = rng::normal_vec(&mut rng, num_labels * h, 0.0, config.initializer_range as f32);
    Linear::from_hf(&Tensor::from_vec(weight, (num_labels, h), &Device::Cpu)?, Tensor::zeros(num_labels, DType::F32, &Device::Cpu)?)
}

/// A pre-trained checkpoint as loaded from the Hugging Face trio.
pub struct Pretrained {
    pub config: BertConfig,
    pub config_json: Value,
    pub tokenizer_json: Vec<u8>,
    pub weights: BertWeights,
    /// A fine-tuned head stored in the checkpoint (our own export), with its labels.
    pub head: Option<(Linear, Vec<String>)>,
    pub has_pooler: bool,
    pub notes: Vec<String>,
    /// The tokenizer, parsed once, truncating at the length predictions use: the max length the
    /// model was trained with when it is a webtune export (its tokenizer.json records it).
    pub predict_encoder: TextEncoder,
}

impl Pretrained {
    pub fn load(config_json: &[u8], tokenizer_json: &[u8], model_safetensors: &[u8]) -> Result<Self> {
        let config = BertConfig::from_json(config_json)?;
        let config_value: Value = serde_json::from_slice(config_json)
            .map_err(|e| Error::Model(format!("config.json is not valid JSON: {e}")))?;
        let predict_max_len = tokenize::declared_max_len(tokenizer_json)
            .unwrap_or(config.max_tokens())
            .clamp(2, config.max_tokens());
        let predict_encoder = TextEncoder::from_bytes(tokenizer_json, predict_max_len, config.pad_token_id)?;
        let architecture = config.architecture();
        let mut tensors = CheckpointTensors::parse_for(model_safetensors, &Device::Cpu, architecture)?;
        tensors.check_layer_count(config.num_hidden_layers)?;
        let shapes: HashMap<String, Vec<usize>> = checkpoint::bert_tensor_shapes(&config).into_iter().collect();
        let mut notes = Vec::new();
        let stored = |name: &str| architecture.stored_name(name);
        let (pooler_name, pooler_in_base) = stored("pooler.dense.weight").expect("every architecture has a dense layer on the first token");
        let has_pooler = tensors.contains(&pooler_name, pooler_in_base);
        let mut pooler_init_rng = rng::seeded(0, 13);
        let weights = BertWeights::build(config.num_hidden_layers, |name| {
            if name.starts_with("pooler.") && !has_pooler {
                return random_pooler_tensor(name, &shapes[name], &config, &mut pooler_init_rng);
            }
            match stored(name) {
                Some((stored_name, in_base)) => tensors.take(&stored_name, &shapes[name], in_base),
                // A tensor the architecture does not have (DistilBERT's token types): zeros.
                None => Ok(Tensor::zeros(shapes[name].as_slice(), DType::F32, &Device::Cpu)?),
            }
        })?;
        if !has_pooler {
            notes.push(if architecture.pooler_in_head() {
                format!(
                    "The checkpoint has no weights for the classification head's dense layer ({}): it was initialised randomly (normal(0, initializer_range)), as transformers does; train it with top:K, full or lora:R.",
                    pooler_name.trim_end_matches(".weight")
                )
            } else {
                "The checkpoint has no pooler weights: the pooler was initialised randomly (normal(0, initializer_range)), as transformers does; train it with top:K or full.".into()
            });
        }
        let head = load_head(&mut tensors, &config, &config_value)?;
        Ok(Pretrained { config, config_json: config_value, tokenizer_json: tokenizer_json.to_vec(), weights, head, has_pooler, notes, predict_encoder })
    }

    /// A tokenizer truncating at `max_len` tokens (for a training run).
    pub fn encoder(&self, max_len: usize) -> Result<TextEncoder> {
        TextEncoder::from_bytes(&self.tokenizer_json, max_len, self.config.pad_token_id)
    }

    pub fn info(&self) -> ModelInfo {
        // Tensors the architecture has (not DistilBERT's zero token type row).
        let architecture = self.config.architecture();
        let num_parameters = self.weights.named().iter().filter(|(name, _)| architecture.stored_name(name).is_some()).map(|(_, t)| t.elem_count()).sum();
        ModelInfo {
            num_layers: self.config.num_hidden_layers,
            hidden_size: self.config.hidden_size,
            num_heads: self.config.num_attention_heads,
            vocab_size: self.config.vocab_size,
            num_parameters,
            has_pooler: self.has_pooler,
            max_len: self.predict_encoder.max_len(),
            labels: self.head.as_ref().map(|(_, labels)| labels.clone()),
            notes: self.notes.clone(),
        }
    }

    /// Predict with the checkpoint's own classification head (an exported fine-tuned model).
    pub fn predict(&self, texts: &[String]) -> Result<Vec<Prediction>> {
        let Some((head, labels)) = &self.head else {
            return Err(Error::Model(
                "this checkpoint has no classification head (classifier.weight); train it first, or load a model exported by webtune".into(),
            ));
        };
        predict_with(&self.config, &self.weights, None, head, labels, &self.predict_encoder, texts)
    }
}

fn random_pooler_tensor(name: &str, shape: &[usize], config: &BertConfig, rng: &mut SeededRng) -> Result<Tensor> {
    let n = shape.iter().product();
    let values = if name.ends_with(".bias") { vec![0f32; n] } else { rng::normal_vec(rng, n, 0.0, config.initializer_range as f32) };
    Ok(Tensor::from_vec(values, shape, &Device::Cpu)?)
}

/// `classifier.*` (RoBERTa: `classifier.out_proj.*`) from a checkpoint we exported, with labels
/// from config.json's id2label.
fn load_head(tensors: &mut CheckpointTensors, config: &BertConfig, config_value: &Value) -> Result<Option<(Linear, Vec<String>)>> {
    let module = config.architecture().classifier_module();
    let (weight, bias) = (format!("{module}.weight"), format!("{module}.bias"));
    if !tensors.contains(&weight, false) {
        return Ok(None);
    }
    let labels = labels_from_config(config_value).ok_or_else(|| {
        Error::Model(format!("the checkpoint has {weight} but config.json has no id2label to name its classes"))
    })?;
    let h = config.hidden_size;
    let head = Linear::from_hf(&tensors.take(&weight, &[labels.len(), h], false)?, tensors.take(&bias, &[labels.len()], false)?)?;
    Ok(Some((head, labels)))
}

fn labels_from_config(config_value: &Value) -> Option<Vec<String>> {
    let id2label = config_value.get("id2label")?.as_object()?;
    let mut labels = vec![None; id2label.len()];
    for (id, label) in id2label {
        let id: usize = id.parse().ok()?;
        *labels.get_mut(id)? = Some(label.as_str()?.to_string());
    }
    labels.into_iter().collect()
}

/// Classify texts in eval mode with the given encoder weights and head.
pub fn predict_with(config: &BertConfig, weights: &BertWeights, adapters: Option<&Adapters>, head: &Linear, labels: &[String], encoder: &TextEncoder, texts: &[String]) -> Result<Vec<Prediction>> {
    let mut predictions = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(16) {
        let ids = encoder.encode_all(chunk)?;
        let refs: Vec<&[u32]> = ids.iter().map(|v| v.as_slice()).collect();
        let batch = encoder.batch(&refs, false);
        let pooled = encoder::encode_eval(config, weights, adapters, &batch, false)?.pooled;
        let logits = encoder::head_logits(head, &pooled, config.hidden_size)?;
        for (text, p) in chunk.iter().zip(probabilities(&logits)) {
            let best = metrics::argmax(&p);
            predictions.push(Prediction { text: text.clone(), label: labels[best].clone(), labels: labels.to_vec(), probabilities: p });
        }
    }
    Ok(predictions)
}
