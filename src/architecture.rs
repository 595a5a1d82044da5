//! The encoder families webtune trains, chosen by config.json's `model_type`, and everything
//! that differs between them, as data: the checkpoint's parameter names, which parameters exist,
//! RoBERTa's position-id offset, the classification head's shape and its dropouts, LoRA's module
//! names. One engine runs them all: BERT's structure (embeddings, post-LayerNorm encoder layers, a
//! dense layer on the first token, a classifier) with these differences filled in.
//!
//! - `bert` (`BertForSequenceClassification`): `bert.`-prefixed (or un-prefixed, as
//!   sentence-transformers saves it); the pooler, tanh(dense(first token)), is pre-trained.
//! - `distilbert` (`DistilBertForSequenceClassification`): no token type embeddings, no
//!   dropout after the attention output; the "pooler" is the head's `pre_classifier` with a
//!   ReLU, new in a base checkpoint.
//! - `roberta`, `xlm-roberta` (`RobertaForSequenceClassification`): positions start after the
//!   padding id; the "pooler" is the head's `classifier.dense` (tanh) with a dropout before it,
//!   new in a base checkpoint, and the classifier is `classifier.out_proj`.
//!
//! Canonical names are BERT's, un-prefixed (`encoder.layer.0.attention.self.query.weight`);
//! [`Architecture::stored_name`] gives the name a checkpoint of this family uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Architecture {
    #[default]
    Bert,
    DistilBert,
    Roberta,
}

/// The `model_type`s webtune trains, as a message lists them.
pub const SUPPORTED_MODEL_TYPES: &str = "\"bert\", \"distilbert\", \"roberta\" and \"xlm-roberta\"";

/// The activation after the dense layer on the first token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolerActivation {
    Tanh,
    Relu,
}

/// DistilBERT's module paths inside `transformer.layer.N`, by BERT's inside `encoder.layer.N`.
const DISTILBERT_MODULES: [(&str, &str); 8] = [
    ("attention.self.query.", "attention.q_lin."),
    ("attention.self.key.", "attention.k_lin."),
    ("attention.self.value.", "attention.v_lin."),
    ("attention.output.dense.", "attention.out_lin."),
    ("attention.output.LayerNorm.", "sa_layer_norm."),
    ("intermediate.dense.", "ffn.lin1."),
    ("output.dense.", "ffn.lin2."),
    ("output.LayerNorm.", "output_layer_norm."),
];

impl Architecture {
    /// The architecture of a config.json `model_type`; None for one webtune does not train.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "bert" => Some(Architecture::Bert),
            "distilbert" => Some(Architecture::DistilBert),
            "roberta" | "xlm-roberta" => Some(Architecture::Roberta),
            _ => None,
        }
    }

    /// The base model's prefix in a `…ForSequenceClassification` checkpoint.
    pub fn base_prefix(self) -> &'static str {
        match self {
            Architecture::Bert => "bert.",
            Architecture::DistilBert => "distilbert.",
            Architecture::Roberta => "roberta.",
        }
    }

    /// transformers' sequence-classification class for a `model_type` of this architecture.
    pub fn classification_class(model_type: &str) -> &'static str {
        match model_type {
            "distilbert" => "DistilBertForSequenceClassification",
            "roberta" => "RobertaForSequenceClassification",
            "xlm-roberta" => "XLMRobertaForSequenceClassification",
            _ => "BertForSequenceClassification",
        }
    }

    /// Where the encoder layers are, inside the base model (`encoder.layer.`).
    pub fn layer_prefix(self) -> &'static str {
        match self {
            Architecture::DistilBert => "transformer.layer.",
            _ => "encoder.layer.",
        }
    }

    /// A module's path inside a layer, as this architecture names it, from BERT's
    /// (`attention.self.query` → DistilBERT's `attention.q_lin`).
    pub fn module_path(self, bert_path: &str) -> String {
        if self != Architecture::DistilBert {
            return bert_path.to_string();
        }
        let dotted = format!("{bert_path}.");
        match DISTILBERT_MODULES.iter().find(|(bert, _)| dotted == *bert) {
            Some((_, distil)) => distil.trim_end_matches('.').to_string(),
            None => bert_path.to_string(),
        }
    }

    /// Whether the embeddings add a token type row (DistilBERT has none: webtune holds a zero
    /// row, never trained or exported).
    pub fn has_token_types(self) -> bool {
        self != Architecture::DistilBert
    }

    pub fn pooler_activation(self) -> PoolerActivation {
        match self {
            Architecture::DistilBert => PoolerActivation::Relu,
            _ => PoolerActivation::Tanh,
        }
    }

    /// Whether the dense layer on the first token is part of the classification head (new in a
    /// base checkpoint, saved by PEFT with the classifier) rather than the base model's pooler.
    pub fn pooler_in_head(self) -> bool {
        self != Architecture::Bert
    }

    /// Whether the first token goes through the classifier dropout before the dense layer
    /// (RoBERTa's head: dropout, dense, tanh, dropout, out_proj).
    pub fn dropout_before_pooler(self) -> bool {
        self == Architecture::Roberta
    }

    /// Whether the attention block's output goes through hidden dropout (not in DistilBERT).
    pub fn attention_output_dropout(self) -> bool {
        self != Architecture::DistilBert
    }

    /// The position id of the first token: RoBERTa counts positions from padding_idx + 1 (and
    /// gives padding tokens padding_idx), BERT and DistilBERT from 0.
    pub fn first_position(self, pad_token_id: u32) -> Option<usize> {
        (self == Architecture::Roberta).then_some(pad_token_id as usize + 1)
    }

    /// A canonical tensor's name in this architecture's checkpoint: (name, inside the base
    /// model, i.e. after [`Architecture::base_prefix`]), or None when the architecture has no
    /// such tensor.
    pub fn stored_name(self, canonical: &str) -> Option<(String, bool)> {
        if let Some(rest) = canonical.strip_prefix("pooler.dense.") {
            return Some(match self {
                Architecture::Bert => (canonical.to_string(), true),
                Architecture::DistilBert => (format!("pre_classifier.{rest}"), false),
                Architecture::Roberta => (format!("classifier.dense.{rest}"), false),
            });
        }
        if self != Architecture::DistilBert {
            return Some((canonical.to_string(), true));
        }
        if canonical.starts_with("embeddings.token_type_embeddings") {
            return None;
        }
        let Some(rest) = canonical.strip_prefix("encoder.layer.") else { return Some((canonical.to_string(), true)) };
        let (layer, path) = rest.split_once('.')?;
        let (bert, distil) = DISTILBERT_MODULES.iter().find(|(bert, _)| path.starts_with(bert))?;
        Some((format!("transformer.layer.{layer}.{distil}{}", &path[bert.len()..]), true))
    }

    /// A canonical tensor's full name in a `…ForSequenceClassification` checkpoint.
    pub fn export_name(self, canonical: &str) -> Option<String> {
        self.stored_name(canonical).map(|(name, in_base)| if in_base { format!("{}{name}", self.base_prefix()) } else { name })
    }

    /// The classifier's module name (`classifier.weight` …).
    pub fn classifier_module(self) -> &'static str {
        match self {
            Architecture::Roberta => "classifier.out_proj",
            _ => "classifier",
        }
    }

    /// PEFT's `modules_to_save`: the trained modules above the encoder.
    pub fn peft_modules_to_save(self) -> &'static [&'static str] {
        match self {
            Architecture::Bert => &["pooler", "classifier"],
            Architecture::DistilBert => &["pre_classifier", "classifier"],
            Architecture::Roberta => &["classifier"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distilbert_names() {
        let d = Architecture::DistilBert;
        assert_eq!(d.export_name("encoder.layer.3.attention.self.query.weight").unwrap(), "distilbert.transformer.layer.3.attention.q_lin.weight");
        assert_eq!(d.export_name("encoder.layer.0.attention.output.LayerNorm.bias").unwrap(), "distilbert.transformer.layer.0.sa_layer_norm.bias");
        assert_eq!(d.export_name("encoder.layer.1.output.dense.weight").unwrap(), "distilbert.transformer.layer.1.ffn.lin2.weight");
        assert_eq!(d.export_name("encoder.layer.1.output.LayerNorm.weight").unwrap(), "distilbert.transformer.layer.1.output_layer_norm.weight");
        assert_eq!(d.export_name("pooler.dense.weight").unwrap(), "pre_classifier.weight");
        assert_eq!(d.export_name("embeddings.token_type_embeddings.weight"), None);
        assert_eq!(Architecture::Roberta.export_name("pooler.dense.bias").unwrap(), "classifier.dense.bias");
        assert_eq!(Architecture::Roberta.export_name("embeddings.LayerNorm.weight").unwrap(), "roberta.embeddings.LayerNorm.weight");
        assert_eq!(d.module_path("attention.self.value"), "attention.v_lin");
        assert_eq!(d.module_path("output.dense"), "ffn.lin2");
    }
}
