//! `config.json` of a BERT, DistilBERT or RoBERTa checkpoint: the architecture numbers the
//! model needs, parsed with serde into BERT's field names (DistilBERT's own names — `dim`,
//! `n_layers`, … — are translated first). The original JSON is kept as a `serde_json::Value`
//! too, so an export can write it back with only the classification fields changed.
use serde::{Deserialize, Serialize};

use crate::architecture::{Architecture, SUPPORTED_MODEL_TYPES};
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    /// transformers uses `hidden_dropout_prob` when this is null.
    pub classifier_dropout: Option<f64>,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub initializer_range: f64,
    pub pad_token_id: u32,
    pub position_embedding_type: String,
    pub model_type: String,
}

impl Default for BertConfig {
    /// bert-base-uncased (transformers' `BertConfig()` defaults).
    fn default() -> Self {
        BertConfig {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".into(),
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            classifier_dropout: None,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            initializer_range: 0.02,
            pad_token_id: 0,
            position_embedding_type: "absolute".into(),
            model_type: "bert".into(),
        }
    }
}

impl BertConfig {
    pub fn bert_base() -> Self {
        Self::default()
    }

    /// A 2-layer, hidden-32 BERT with the real vocabulary size, for fast tests.
    pub fn tiny() -> Self {
        BertConfig {
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 64,
            ..Self::default()
        }
    }

    /// Parse and check config.json. Every refusal names the field and says what to do.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::Model(format!("config.json is not valid JSON: {e}")))?;
        let value = in_bert_names(value)?;
        let config: BertConfig = serde_json::from_value(value.clone()).map_err(|e| {
            let field = value.as_object().and_then(first_bad_field);
            let at = field.map(|f| format!(" field {f}:")).unwrap_or_default();
            Error::Model(format!("config.json is not a valid BERT config:{at} {e}; use the config.json that came with the checkpoint"))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The architecture `model_type` names (validated: always a supported one).
    pub fn architecture(&self) -> Architecture {
        Architecture::from_model_type(&self.model_type).unwrap_or_default()
    }

    /// The longest input in tokens: the position table's rows, less RoBERTa's offset.
    pub fn max_tokens(&self) -> usize {
        let offset = self.architecture().first_position(self.pad_token_id).unwrap_or(0);
        self.max_position_embeddings.saturating_sub(offset)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub fn classifier_dropout(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }

    fn validate(&self) -> Result<()> {
        let refuse = |what: String| Err(Error::Model(format!("config.json: {what}")));
        if Architecture::from_model_type(&self.model_type).is_none() {
            return refuse(unsupported_model_type(&self.model_type));
        }
        if self.max_tokens() < 2 {
            return refuse(format!(
                "max_position_embeddings is {}; with pad_token_id {} that leaves no room for a sentence (RoBERTa's positions start after the padding id): use the config.json that came with the checkpoint",
                self.max_position_embeddings, self.pad_token_id
            ));
        }
        if self.hidden_act != "gelu" {
            return refuse(format!("hidden_act '{}' is not supported (only \"gelu\")", self.hidden_act));
        }
        if self.position_embedding_type != "absolute" {
            return refuse(format!(
                "position_embedding_type '{}' is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        for (field, size) in self.sizes() {
            if size == 0 || size > MAX_SIZE {
                return refuse(format!(
                    "{field} is {size}; it must be between 1 and {MAX_SIZE}: use the config.json that came with the checkpoint"
                ));
            }
        }
        if self.num_hidden_layers > MAX_LAYERS {
            return refuse(format!(
                "num_hidden_layers is {}; webtune accepts at most {MAX_LAYERS} (the deepest BERT-family encoders have 48): use the config.json that came with the checkpoint",
                self.num_hidden_layers
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return refuse(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}: each attention head gets hidden_size / num_attention_heads dimensions; use the config.json that came with the checkpoint",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.pad_token_id as usize >= self.vocab_size {
            return refuse(format!(
                "pad_token_id {} is not in the vocabulary (vocab_size {}): set pad_token_id to the id of [PAD] (0 in BERT's vocabulary)",
                self.pad_token_id, self.vocab_size
            ));
        }
        let dropouts = [
            ("hidden_dropout_prob", Some(self.hidden_dropout_prob)),
            ("attention_probs_dropout_prob", Some(self.attention_probs_dropout_prob)),
            ("classifier_dropout", self.classifier_dropout),
        ];
        for (field, p) in dropouts {
            if let Some(p) = p.filter(|p| !(0.0..1.0).contains(p)) {
                return refuse(format!(
                    "{field} is {p}; a dropout probability must be at least 0 and below 1 (BERT's is 0.1)"
                ));
            }
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return refuse(format!("layer_norm_eps is {}; it must be a small positive number (BERT's is 1e-12)", self.layer_norm_eps));
        }
        if !(self.initializer_range.is_finite() && self.initializer_range >= 0.0) {
            return refuse(format!(
                "initializer_range is {}; it must be a non-negative number (BERT's is 0.02: the spread of new weights)",
                self.initializer_range
            ));
        }
        let parameters = self.parameter_count();
        if parameters > MAX_PARAMETERS {
            return refuse(format!(
                "these sizes make a model of {parameters} parameters, more than the {MAX_PARAMETERS} that fit in memory (4 GiB of f32 weights)"
            ));
        }
        Ok(())
    }

    /// The size fields, by name.
    fn sizes(&self) -> [(&'static str, usize); 7] {
        [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ]
    }

    /// Parameters of the encoder these sizes describe (embeddings, layers, pooler), in u128 so
    /// that no sizes can overflow it.
    fn parameter_count(&self) -> u128 {
        let [vocab, h, layers, _, i, positions, types] = self.sizes().map(|(_, n)| n as u128);
        let embeddings = (vocab + positions + types) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * (h * i) + i + h + 4 * h;
        embeddings + layers * layer + h * h + h
    }
}

/// The refusal of a `model_type` webtune does not train.
fn unsupported_model_type(model_type: &str) -> String {
    format!(
        "model_type is '{model_type}'; webtune trains BERT-family encoders: model_type {SUPPORTED_MODEL_TYPES} (e.g. bert-base-uncased, distilbert-base-uncased, roberta-base). Pick a checkpoint of one of these"
    )
}

/// config.json in BERT's field names: a DistilBERT config's own names (`dim`, `n_layers`,
/// `n_heads`, `hidden_dim`, `dropout`, `attention_dropout`, `activation`,
/// `seq_classif_dropout`) translated, its fixed LayerNorm epsilon (1e-12) and one (zero) token
/// type row filled in. Refuses an unsupported `model_type` before reading anything else.
fn in_bert_names(mut value: serde_json::Value) -> Result<serde_json::Value> {
    let Some(object) = value.as_object_mut() else { return Ok(value) };
    let model_type = object.get("model_type").and_then(|t| t.as_str()).unwrap_or("bert").to_string();
    if Architecture::from_model_type(&model_type).is_none() {
        return Err(Error::Model(format!("config.json: {}", unsupported_model_type(&model_type))));
    }
    if model_type == "distilbert" {
        const RENAMED: [(&str, &str); 8] = [
            ("dim", "hidden_size"),
            ("n_layers", "num_hidden_layers"),
            ("n_heads", "num_attention_heads"),
            ("hidden_dim", "intermediate_size"),
            ("dropout", "hidden_dropout_prob"),
            ("attention_dropout", "attention_probs_dropout_prob"),
            ("activation", "hidden_act"),
            ("seq_classif_dropout", "classifier_dropout"),
        ];
        for (theirs, ours) in RENAMED {
            if let Some(v) = object.remove(theirs) {
                object.insert(ours.to_string(), v);
            }
        }
        object.insert("layer_norm_eps".into(), 1e-12.into());
        object.insert("type_vocab_size".into(), 1.into());
    }
    Ok(value)
}

/// Largest size field accepted (vocabularies of multilingual BERTs are about 120,000).
const MAX_SIZE: usize = 1 << 20;
/// Most encoder layers accepted: far beyond any real encoder, and a bound on the work of walking
/// a model's tensor list (a config of millions of tiny layers passed the parameter limit).
const MAX_LAYERS: usize = 256;
/// Most encoder parameters accepted: 4 GiB of f32, wasm32's whole memory.
const MAX_PARAMETERS: u128 = 1 << 30;

/// The first field of config.json whose value does not have the type [`BertConfig`] expects
/// (serde's own message names only its line and column).
fn first_bad_field(object: &serde_json::Map<String, serde_json::Value>) -> Option<&str> {
    object.iter().find_map(|(key, value)| {
        let single = serde_json::Value::Object([(key.clone(), value.clone())].into_iter().collect());
        serde_json::from_value::<BertConfig>(single).is_err().then_some(key.as_str())
    })
}
