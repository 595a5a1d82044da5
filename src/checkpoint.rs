//! Reading and writing Hugging Face safetensors checkpoints.
//!
//! Loading accepts both naming schemes: prefixed with the base model (`bert.`, `distilbert.`,
//! `roberta.`: bert-base-uncased, whose `cls.*` pre-training heads are ignored and whose
//! LayerNorms may be `gamma`/`beta`) and un-prefixed (sentence-transformers, e.g.
//! all-MiniLM-L6-v2). Names are the architecture's own (see [`Architecture::stored_name`]).
//! Export writes transformers' `…ForSequenceClassification` names (`bert.…`, `classifier.…`).
use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use crate::architecture::Architecture;
use crate::config::BertConfig;
use crate::rng;
use crate::tokenize;
use crate::types::ExportedModel;
use crate::{Error, Result};

/// The tensors of a checkpoint, looked up by their canonical (un-prefixed) BertModel name.
pub struct CheckpointTensors {
    tensors: HashMap<String, Tensor>,
    prefix: &'static str,
    /// Where the encoder layers are, inside the base model (`encoder.layer.`).
    layer_prefix: &'static str,
}

fn to_f32_tensor(name: &str, view: &TensorView<'_>, device: &Device) -> Result<Tensor> {
    let shape = view.shape().to_vec();
    let data = view.data();
    let tensor = match view.dtype() {
        Dtype::F32 => {
            let values: Vec<f32> = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Tensor::from_vec(values, shape, device)?
        }
        Dtype::F16 | Dtype::BF16 => {
            let dtype = if view.dtype() == Dtype::F16 { DType::F16 } else { DType::BF16 };
            Tensor::from_raw_buffer(data, dtype, &shape, device)?.to_dtype(DType::F32)?
        }
        other => {
            return Err(Error::Model(format!(
                "tensor '{name}' has dtype {other:?}; webtune reads F32, F16 or BF16 weights"
            )))
        }
    };
    Ok(tensor)
}

impl CheckpointTensors {
    /// A BERT checkpoint's tensors.
    pub fn parse(bytes: &[u8], device: &Device) -> Result<Self> {
        Self::parse_for(bytes, device, Architecture::Bert)
    }

    /// A checkpoint of `architecture`: its base model's tensors may be prefixed or not.
    pub fn parse_for(bytes: &[u8], device: &Device, architecture: Architecture) -> Result<Self> {
        let base_prefix = architecture.base_prefix();
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::Model(format!("model.safetensors could not be read: {e}")))?;
        let mut tensors = HashMap::new();
        let mut prefixed = false;
        for (name, view) in st.tensors() {
            // Integer buffers (position_ids) and pre-training heads are not weights we use.
            if name.ends_with("position_ids") || name.starts_with("cls.") {
                continue;
            }
            prefixed |= name.starts_with(base_prefix);
            tensors.insert(name.clone(), to_f32_tensor(&name, &view, device)?);
        }
        Ok(CheckpointTensors { tensors, prefix: if prefixed { base_prefix } else { "" }, layer_prefix: architecture.layer_prefix() })
    }

    /// The candidates a canonical name may be stored under (prefix; gamma/beta LayerNorms).
    fn candidates(&self, name: &str, in_bert: bool) -> Vec<String> {
        let prefix = if in_bert { self.prefix } else { "" };
        let mut names = vec![format!("{prefix}{name}")];
        if name.contains("LayerNorm.") {
            let legacy = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta");
            names.push(format!("{prefix}{legacy}"));
        }
        names
    }

    pub fn contains(&self, name: &str, in_bert: bool) -> bool {
        self.candidates(name, in_bert).iter().any(|n| self.tensors.contains_key(n))
    }

    /// Take a BertModel tensor (`in_bert`) or a top-level one (`classifier.*`) out, with its
    /// shape checked. Taking (not cloning) lets the loader free each original as soon as the
    /// model holds its own layout of it — in wasm, whose memory never shrinks, that is ~1/3 less
    /// peak memory for loading bert-base.
    pub fn take(&mut self, name: &str, expected: &[usize], in_bert: bool) -> Result<Tensor> {
        let candidates = self.candidates(name, in_bert);
        let found = candidates.iter().find(|n| self.tensors.contains_key(*n)).cloned();
        let Some((stored, tensor)) = found.and_then(|n| self.tensors.remove(&n).map(|t| (n, t))) else {
            return Err(Error::Model(format!(
                "model.safetensors has no tensor '{}' (looked for {}); does the checkpoint match config.json (model_type, num_hidden_layers)?",
                candidates[0],
                candidates.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", ")
            )));
        };
        if tensor.dims() != expected {
            return Err(shape_mismatch(&stored, tensor.dims(), expected));
        }
        Ok(tensor)
    }

    /// Refuses a checkpoint with more encoder layers than config.json's `num_hidden_layers`:
    /// loading only the first ones would silently give a different (truncated) model.
    pub fn check_layer_count(&self, num_hidden_layers: usize) -> Result<()> {
        let layer_of = |name: &str| -> Option<usize> {
            let rest = name.strip_prefix(self.prefix)?.strip_prefix(self.layer_prefix)?;
            rest.split('.').next()?.parse().ok()
        };
        let mut unused: Vec<(usize, &String)> =
            self.tensors.keys().filter_map(|n| layer_of(n).filter(|&l| l >= num_hidden_layers).map(|l| (l, n))).collect();
        if unused.is_empty() {
            return Ok(());
        }
        unused.sort();
        let layers = unused.last().map_or(0, |(l, _)| l + 1);
        const LISTED: usize = 5;
        let mut names: Vec<String> = unused.iter().take(LISTED).map(|(_, n)| format!("'{n}'")).collect();
        if unused.len() > LISTED {
            names.push(format!("and {} more", unused.len() - LISTED));
        }
        Err(Error::Model(format!(
            "config.json: num_hidden_layers is {num_hidden_layers}, but model.safetensors holds {layers} layers; these tensors would go unused: {}. \
             Set num_hidden_layers to {layers} (or use the config.json that came with these weights)",
            names.join(", ")
        )))
    }
}

/// The config.json fields that set each dimension of a BertModel tensor.
fn config_fields(name: &str) -> [&'static str; 2] {
    const H: &str = "hidden_size";
    if name.contains("word_embeddings") {
        ["vocab_size", H]
    } else if name.contains("position_embeddings") {
        ["max_position_embeddings", H]
    } else if name.contains("token_type_embeddings") {
        ["type_vocab_size", H]
    } else if name.contains("intermediate.dense") || name.contains("ffn.lin1") {
        ["intermediate_size", H]
    } else if name.contains("layer.") && (name.contains(".output.dense.weight") || name.contains("ffn.lin2.weight")) && !name.contains("attention.") {
        [H, "intermediate_size"]
    } else if name.starts_with("classifier.") && !name.starts_with("classifier.dense") {
        ["id2label (the number of labels)", H]
    } else {
        [H, H]
    }
}

/// A tensor whose shape is not the one config.json implies: names the field to change.
fn shape_mismatch(stored: &str, found: &[usize], expected: &[usize]) -> Error {
    let fields = config_fields(stored);
    let hint = match found.iter().zip(expected).position(|(f, e)| f != e) {
        Some(dim) if found.len() == expected.len() => format!(
            "config.json says {} is {}, the weights say {}: use the config.json that came with these weights",
            fields[dim.min(1)],
            expected[dim],
            found[dim]
        ),
        _ => "use the config.json that came with these weights".to_string(),
    };
    Error::Model(format!("model.safetensors: tensor '{stored}' has shape {found:?} but config.json implies {expected:?}; {hint}"))
}

/// Serialize named f32 tensors to safetensors bytes (with the `format: pt` metadata
/// transformers expects).
pub fn serialize(named: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let mut buffers = Vec::with_capacity(named.len());
    for (name, tensor) in named {
        let values = tensor.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((name.clone(), tensor.dims().to_vec(), bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| Error::Model(format!("export of '{name}': {e}")))
        })
        .collect::<Result<_>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Model(format!("export: {e}")))
}

/// Every BertModel tensor name and shape implied by a config, in checkpoint order.
pub fn bert_tensor_shapes(config: &BertConfig) -> Vec<(String, Vec<usize>)> {
    let (h, i) = (config.hidden_size, config.intermediate_size);
    let mut shapes = vec![
        ("embeddings.word_embeddings.weight".to_string(), vec![config.vocab_size, h]),
        ("embeddings.position_embeddings.weight".to_string(), vec![config.max_position_embeddings, h]),
        ("embeddings.token_type_embeddings.weight".to_string(), vec![config.type_vocab_size, h]),
        ("embeddings.LayerNorm.weight".to_string(), vec![h]),
        ("embeddings.LayerNorm.bias".to_string(), vec![h]),
    ];
    for l in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        for (name, shape) in [
            ("attention.self.query.weight", vec![h, h]),
            ("attention.self.query.bias", vec![h]),
            ("attention.self.key.weight", vec![h, h]),
            ("attention.self.key.bias", vec![h]),
            ("attention.self.value.weight", vec![h, h]),
            ("attention.self.value.bias", vec![h]),
            ("attention.output.dense.weight", vec![h, h]),
            ("attention.output.dense.bias", vec![h]),
            ("attention.output.LayerNorm.weight", vec![h]),
            ("attention.output.LayerNorm.bias", vec![h]),
            ("intermediate.dense.weight", vec![i, h]),
            ("intermediate.dense.bias", vec![i]),
            ("output.dense.weight", vec![h, i]),
            ("output.dense.bias", vec![h]),
            ("output.LayerNorm.weight", vec![h]),
            ("output.LayerNorm.bias", vec![h]),
        ] {
            shapes.push((format!("{p}.{name}"), shape));
        }
    }
    shapes.push(("pooler.dense.weight".to_string(), vec![h, h]));
    shapes.push(("pooler.dense.bias".to_string(), vec![h]));
    shapes
}

/// A randomly initialised BERT checkpoint (bert-base-uncased naming: `bert.` prefix, weights
/// normal(0, initializer_range), LayerNorm 1/0, biases 0), as safetensors bytes. For tests and
/// benchmarks at full size without downloading weights.
pub fn random_bert(config: &BertConfig, seed: u64) -> Vec<u8> {
    random_checkpoint(config, seed)
}

/// A randomly initialised base checkpoint of config.json's architecture, named as its
/// pre-trained checkpoints are (bert-base-uncased, distilbert-base-uncased, roberta-base: the
/// base model's tensors with its prefix; RoBERTa's unused pooler too; no classification head),
/// initialised as [`random_bert`] is.
pub fn random_checkpoint(config: &BertConfig, seed: u64) -> Vec<u8> {
    let architecture = config.architecture();
    let mut rng = rng::seeded(seed, 7);
    let std = config.initializer_range as f32;
    let named: Vec<(String, Tensor)> = bert_tensor_shapes(config)
        .into_iter()
        .filter_map(|(name, shape)| {
            let (stored, in_base) = architecture.stored_name(&name)?;
            let full = match (in_base, architecture) {
                (true, _) => format!("{}{stored}", architecture.base_prefix()),
                (false, Architecture::Roberta) => format!("roberta.{name}"),
                (false, _) => return None,
            };
            Some((full, name, shape))
        })
        .map(|(full, name, shape)| {
            let n: usize = shape.iter().product();
            let values = if name.ends_with("LayerNorm.weight") {
                vec![1f32; n]
            } else if name.ends_with(".bias") {
                vec![0f32; n]
            } else {
                rng::normal_vec(&mut rng, n, 0.0, std)
            };
            let tensor = Tensor::from_vec(values, shape, &Device::Cpu).expect("shape matches length");
            (full, tensor)
        })
        .collect();
    serialize(&named).expect("f32 tensors always serialize")
}

/// A fine-tuned classifier as transformers' `…ForSequenceClassification` files: config.json
/// with the labels (`id2label`, `label2id`, `num_labels`), tokenizer.json truncating at the
/// `max_len` the model was trained with, and the tensors (`named`, transformers names/layout).
pub fn export_classifier(config_json: &serde_json::Value, tokenizer_json: &[u8], labels: &[String], max_len: usize, named: &[(String, Tensor)]) -> Result<ExportedModel> {
    let mut config = config_json.clone();
    let obj = config.as_object_mut().ok_or_else(|| Error::Model("config.json is not a JSON object".into()))?;
    let id2label: serde_json::Map<String, serde_json::Value> = labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone().into())).collect();
    let label2id: serde_json::Map<String, serde_json::Value> = labels.iter().enumerate().map(|(i, l)| (l.clone(), i.into())).collect();
    let model_type = obj.get("model_type").and_then(|t| t.as_str()).unwrap_or("bert");
    obj.insert("architectures".into(), serde_json::json!([Architecture::classification_class(model_type)]));
    obj.insert("id2label".into(), id2label.into());
    obj.insert("label2id".into(), label2id.into());
    obj.insert("num_labels".into(), labels.len().into());
    obj.insert("problem_type".into(), "single_label_classification".into());
    Ok(ExportedModel {
        config_json: serde_json::to_vec_pretty(&config).map_err(|e| Error::Model(e.to_string()))?,
        tokenizer_json: tokenize::with_declared_max_len(tokenizer_json, max_len)?,
        model_safetensors: serialize(named)?,
    })
}
