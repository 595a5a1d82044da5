//! `config.json` of a BERT checkpoint: the architecture numbers the model needs, parsed with
//! serde. The original JSON is kept as a `serde_json::Value` too, so an export can write it
//! back with only the classification fields changed.
use serde::{Deserialize, Serialize};

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

    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let config: BertConfig = serde_json::from_slice(bytes)
            .map_err(|e| Error::Model(format!("config.json is not a valid BERT config: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub fn classifier_dropout(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }

    fn validate(&self) -> Result<()> {
        let unsupported = |what: String| Err(Error::Model(format!("config.json: {what}")));
        if self.model_type != "bert" {
            return unsupported(format!(
                "model_type is '{}'; webtune trains BERT-family checkpoints (model_type \"bert\")",
                self.model_type
            ));
        }
        if self.hidden_act != "gelu" {
            return unsupported(format!("hidden_act '{}' is not supported (only \"gelu\")", self.hidden_act));
        }
        if self.position_embedding_type != "absolute" {
            return unsupported(format!(
                "position_embedding_type '{}' is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return unsupported(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.num_hidden_layers == 0 || self.vocab_size == 0 || self.max_position_embeddings == 0 {
            return unsupported("num_hidden_layers, vocab_size and max_position_embeddings must be > 0".into());
        }
        Ok(())
    }
}
