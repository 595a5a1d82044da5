//! The trainable `BertForSequenceClassification`: embeddings, encoder, pooler, classifier.
//!
//! Built from differentiable candle ops plus the custom ops in [`crate::ops`] (LayerNorm,
//! softmax, GELU and the fused Linear, each with a hand-written backward). Parameters are plain
//! tensors; a training run turns the ones its strategy trains into `Var`s (deep copies), so
//! frozen tensors are shared with the pre-trained weights and receive no gradient.
use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var, D};
use serde_json::Value;

use crate::checkpoint::{self, CheckpointTensors};
use crate::config::BertConfig;
use crate::ops;
use crate::rng::{self, SeededRng};
use crate::tokenize::{self, Batch, TextEncoder};
use crate::types::{ModelInfo, Prediction};
use crate::{Error, Result};

/// y = x Wᵀ + b, through the fused Linear op ([`ops::linear`]). The weight is stored
/// transposed, (in, out) and contiguous, so the forward product and the weight gradient the
/// op's backward writes (xᵀ·dy, into the [`ops::GradSlot`]) are both in the stored layout — no
/// strided pass over a transposed weight per step.
#[derive(Clone)]
pub struct Linear {
    pub weight_t: Tensor,
    pub bias: Tensor,
    /// Where the weight gradient accumulates when the weight trains (see [`ops::GradSlot`]).
    pub grad_slot: Option<ops::GradSlot>,
}

impl Linear {
    /// From transformers' orientation: weight (out, in).
    pub fn from_hf(weight: &Tensor, bias: Tensor) -> Result<Self> {
        Ok(Linear { weight_t: weight.t()?.contiguous()?, bias, grad_slot: None })
    }

    /// The weight in transformers' orientation (out, in), as a view.
    pub fn hf_weight(&self) -> Result<Tensor> {
        Ok(self.weight_t.t()?)
    }

    /// x: (n, in) → (n, out)
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(ops::linear(x, &self.weight_t, &self.bias, self.grad_slot.as_ref())?)
    }
}

#[derive(Clone)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl LayerNorm {
    pub fn forward(&self, x: &Tensor, eps: f64) -> Result<Tensor> {
        Ok(ops::layer_norm(x, &self.weight, &self.bias, eps)?)
    }
}

#[derive(Clone)]
pub struct EncoderLayer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attention_output: Linear,
    pub attention_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: LayerNorm,
}

/// The BertModel part (embeddings, encoder, pooler).
#[derive(Clone)]
pub struct BertWeights {
    pub word_embeddings: Tensor,
    pub position_embeddings: Tensor,
    pub token_type_embeddings: Tensor,
    pub embeddings_norm: LayerNorm,
    pub layers: Vec<EncoderLayer>,
    pub pooler: Linear,
}

/// How a tensor is stored relative to transformers' layout.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    AsIs,
    /// A Linear weight, stored transposed.
    Transposed,
}

type Visitor<'a> = dyn FnMut(&str, Stored, &mut Tensor) -> Result<()> + 'a;

fn visit_linear(f: &mut Visitor<'_>, prefix: &str, lin: &mut Linear) -> Result<()> {
    f(&format!("{prefix}.weight"), Stored::Transposed, &mut lin.weight_t)?;
    f(&format!("{prefix}.bias"), Stored::AsIs, &mut lin.bias)
}

fn visit_norm(f: &mut Visitor<'_>, prefix: &str, norm: &mut LayerNorm) -> Result<()> {
    f(&format!("{prefix}.weight"), Stored::AsIs, &mut norm.weight)?;
    f(&format!("{prefix}.bias"), Stored::AsIs, &mut norm.bias)
}

impl BertWeights {
    /// Placeholders with the right structure, filled by [`BertWeights::for_each_mut`].
    fn skeleton(num_layers: usize) -> Result<Self> {
        let t = Tensor::zeros((), DType::F32, &Device::Cpu)?;
        let lin = Linear { weight_t: t.clone(), bias: t.clone(), grad_slot: None };
        let norm = LayerNorm { weight: t.clone(), bias: t.clone() };
        let layer = EncoderLayer {
            query: lin.clone(),
            key: lin.clone(),
            value: lin.clone(),
            attention_output: lin.clone(),
            attention_norm: norm.clone(),
            intermediate: lin.clone(),
            output: lin.clone(),
            output_norm: norm.clone(),
        };
        Ok(BertWeights {
            word_embeddings: t.clone(),
            position_embeddings: t.clone(),
            token_type_embeddings: t,
            embeddings_norm: norm,
            layers: vec![layer; num_layers],
            pooler: lin,
        })
    }

    /// Visit every tensor with its canonical (un-prefixed transformers) name, in checkpoint
    /// order. The one list of the model's tensors: loading, export and strategies go through it.
    pub fn for_each_mut(&mut self, f: &mut Visitor<'_>) -> Result<()> {
        f("embeddings.word_embeddings.weight", Stored::AsIs, &mut self.word_embeddings)?;
        f("embeddings.position_embeddings.weight", Stored::AsIs, &mut self.position_embeddings)?;
        f("embeddings.token_type_embeddings.weight", Stored::AsIs, &mut self.token_type_embeddings)?;
        visit_norm(f, "embeddings.LayerNorm", &mut self.embeddings_norm)?;
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let p = format!("encoder.layer.{l}");
            visit_linear(f, &format!("{p}.attention.self.query"), &mut layer.query)?;
            visit_linear(f, &format!("{p}.attention.self.key"), &mut layer.key)?;
            visit_linear(f, &format!("{p}.attention.self.value"), &mut layer.value)?;
            visit_linear(f, &format!("{p}.attention.output.dense"), &mut layer.attention_output)?;
            visit_norm(f, &format!("{p}.attention.output.LayerNorm"), &mut layer.attention_norm)?;
            visit_linear(f, &format!("{p}.intermediate.dense"), &mut layer.intermediate)?;
            visit_linear(f, &format!("{p}.output.dense"), &mut layer.output)?;
            visit_norm(f, &format!("{p}.output.LayerNorm"), &mut layer.output_norm)?;
        }
        visit_linear(f, "pooler.dense", &mut self.pooler)
    }

    /// Every Linear with its canonical name prefix (`encoder.layer.0.attention.self.query`, …).
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let p = format!("encoder.layer.{l}");
            out.push((format!("{p}.attention.self.query"), &mut layer.query));
            out.push((format!("{p}.attention.self.key"), &mut layer.key));
            out.push((format!("{p}.attention.self.value"), &mut layer.value));
            out.push((format!("{p}.attention.output.dense"), &mut layer.attention_output));
            out.push((format!("{p}.intermediate.dense"), &mut layer.intermediate));
            out.push((format!("{p}.output.dense"), &mut layer.output));
        }
        out.push(("pooler.dense".to_string(), &mut self.pooler));
        out
    }

    /// Build from a getter of canonical tensors in transformers' layout.
    pub fn build(num_layers: usize, mut get: impl FnMut(&str) -> Result<Tensor>) -> Result<Self> {
        let mut weights = Self::skeleton(num_layers)?;
        weights.for_each_mut(&mut |name, stored, t| {
            let hf = get(name)?;
            *t = if stored == Stored::Transposed { hf.t()?.contiguous()? } else { hf };
            Ok(())
        })?;
        Ok(weights)
    }

    /// Every tensor with its canonical name, in the stored layout (Linear weights transposed).
    pub fn stored_named(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        let mut copy = self.clone();
        copy.for_each_mut(&mut |name, _, t| {
            out.push((name.to_string(), t.clone()));
            Ok(())
        })
        .expect("listing cannot fail");
        out
    }

    /// Every tensor with its canonical name, in transformers' layout (views, no copies).
    pub fn named(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        let mut copy = self.clone();
        copy.for_each_mut(&mut |name, stored, t| {
            out.push((name.to_string(), if stored == Stored::Transposed { t.t()? } else { t.clone() }));
            Ok(())
        })
        .expect("transposing a 2-D weight cannot fail");
        out
    }

    /// A copy where `f` decides each stored tensor (a trainable deep copy or the shared original).
    pub fn map(&self, mut f: impl FnMut(&str, &Tensor) -> Result<Tensor>) -> Result<Self> {
        let mut copy = self.clone();
        copy.for_each_mut(&mut |name, _, t| {
            *t = f(name, t)?;
            Ok(())
        })?;
        Ok(copy)
    }
}

/// Dropout probabilities of the training mode.
#[derive(Clone, Copy)]
pub struct Dropout {
    pub hidden: f32,
    pub attention: f32,
    pub classifier: f32,
}

impl Dropout {
    /// The probabilities config.json declares (the classifier's falls back to the hidden one).
    pub fn from_config(config: &BertConfig) -> Self {
        Dropout {
            hidden: config.hidden_dropout_prob as f32,
            attention: config.attention_probs_dropout_prob as f32,
            classifier: config.classifier_dropout() as f32,
        }
    }
}

/// Where dropout masks come from during a forward pass (None = eval mode).
pub type DropoutRng<'a> = Option<(&'a mut SeededRng, Dropout)>;

/// Inverted dropout with probability `p` (a mask drawn from `rng`); the identity for p = 0.
pub fn dropout(x: &Tensor, p: f32, rng: &mut SeededRng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let mask = Tensor::from_vec(rng::dropout_mask(rng, x.elem_count(), p), x.shape(), x.device())?;
    Ok(x.mul(&mask)?)
}

fn maybe_dropout(x: &Tensor, which: impl Fn(&Dropout) -> f32, rng: &mut DropoutRng<'_>) -> Result<Tensor> {
    match rng {
        Some((rng, probs)) => dropout(x, which(probs), rng),
        None => Ok(x.clone()),
    }
}

/// Outputs of the BertModel part for one batch.
pub struct EncoderOutput {
    /// (batch, seq, hidden)
    pub last_hidden_state: Tensor,
    /// (batch, hidden): tanh(dense([CLS]))
    pub pooled: Tensor,
    /// When the word embeddings train: the looked-up rows, whose gradient the optimizer applies.
    pub word_rows: Option<SparseRows>,
}

/// Word-embedding rows looked up for a batch, as a leaf of the graph.
///
/// Why: through candle's `index_select` backward, the embedding gradient is a dense
/// vocab×hidden tensor (zeros, then index_add, then an add) — three passes over 47 MB for
/// MiniLM every step. Making the looked-up rows the leaf keeps the gradient at batch×seq rows;
/// the optimizer folds them into its (still dense, torch-identical) Adam update.
pub struct SparseRows {
    pub leaf: Tensor,
    pub ids: Vec<u32>,
}

/// Gradient rows by token id: `(id, row)`, ids distinct and sorted.
pub type RowGradients = Vec<(u32, Vec<f32>)>;

impl SparseRows {
    /// Gradient rows summed per distinct token id, sorted by id (None if no gradient flowed).
    pub fn row_grads(&self, grads: &candle_core::backprop::GradStore) -> Result<Option<RowGradients>> {
        let Some(grad) = grads.get(&self.leaf) else { return Ok(None) };
        let rows = grad.to_vec2::<f32>()?;
        let mut summed: std::collections::BTreeMap<u32, Vec<f32>> = std::collections::BTreeMap::new();
        for (&id, row) in self.ids.iter().zip(rows) {
            match summed.get_mut(&id) {
                Some(acc) => acc.iter_mut().zip(&row).for_each(|(a, r)| *a += r),
                None => {
                    summed.insert(id, row);
                }
            }
        }
        Ok(Some(summed.into_iter().collect()))
    }
}

impl BertWeights {
    fn embed(&self, config: &BertConfig, batch: &Batch, rng: &mut DropoutRng<'_>) -> Result<(Tensor, Option<SparseRows>)> {
        let (b, l) = batch.input_ids.dims2()?;
        let h = config.hidden_size;
        if l > config.max_position_embeddings {
            return Err(Error::Options(format!(
                "sequence length {l} exceeds the model's max_position_embeddings {}",
                config.max_position_embeddings
            )));
        }
        let ids = batch.input_ids.flatten_all()?;
        let (words, word_rows) = if self.word_embeddings.is_variable() {
            let rows = self.word_embeddings.detach().index_select(&ids, 0)?;
            let leaf = Var::from_tensor(&rows)?.as_tensor().clone();
            (leaf.clone(), Some(SparseRows { leaf, ids: ids.to_vec1::<u32>()? }))
        } else {
            (self.word_embeddings.index_select(&ids, 0)?, None)
        };
        let words = words.reshape((b, l, h))?;
        let positions = self.position_embeddings.narrow(0, 0, l)?;
        let token_type = self.token_type_embeddings.narrow(0, 0, 1)?;
        let sum = words.broadcast_add(&positions)?.broadcast_add(&token_type)?.reshape((b * l, h))?;
        let normed = self.embeddings_norm.forward(&sum, config.layer_norm_eps)?;
        Ok((maybe_dropout(&normed, |d| d.hidden, rng)?, word_rows))
    }

    pub fn encode(&self, config: &BertConfig, batch: &Batch, mut rng: DropoutRng<'_>) -> Result<EncoderOutput> {
        let (b, l) = batch.input_ids.dims2()?;
        let h = config.hidden_size;
        // (1 - mask) * min, broadcast over heads and query positions, as transformers does.
        let additive_mask = ((batch.attention_mask.ones_like()? - &batch.attention_mask)? * f32::MIN as f64)?
            .reshape((b, 1, 1, l))?;
        let (mut hidden, word_rows) = self.embed(config, batch, &mut rng)?;
        for layer in &self.layers {
            hidden = layer.forward(config, &hidden, &additive_mask, b, l, &mut rng)?;
        }
        let last_hidden_state = hidden.reshape((b, l, h))?;
        let cls = last_hidden_state.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?;
        let pooled = self.pooler.forward(&cls)?.tanh()?;
        Ok(EncoderOutput { last_hidden_state, pooled, word_rows })
    }
}

impl EncoderLayer {
    /// x: (b*l, hidden) → (b*l, hidden)
    fn forward(&self, config: &BertConfig, x: &Tensor, additive_mask: &Tensor, b: usize, l: usize, rng: &mut DropoutRng<'_>) -> Result<Tensor> {
        let eps = config.layer_norm_eps;
        let context = self.self_attention(config, x, additive_mask, b, l, rng)?;
        let attended = maybe_dropout(&self.attention_output.forward(&context)?, |d| d.hidden, rng)?;
        let attended = self.attention_norm.forward(&(attended + x)?, eps)?;
        let inner = ops::gelu_erf(&self.intermediate.forward(&attended)?)?;
        let out = maybe_dropout(&self.output.forward(&inner)?, |d| d.hidden, rng)?;
        self.output_norm.forward(&(out + attended)?, eps)
    }

    fn self_attention(&self, config: &BertConfig, x: &Tensor, additive_mask: &Tensor, b: usize, l: usize, rng: &mut DropoutRng<'_>) -> Result<Tensor> {
        let (heads, head_dim) = (config.num_attention_heads, config.head_dim());
        let split_heads = |t: Tensor| -> Result<Tensor> {
            Ok(t.reshape((b, l, heads, head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let scale = 1.0 / (head_dim as f64).sqrt();
        let q = split_heads(self.query.forward(x)?)?;
        let k = split_heads(self.key.forward(x)?)?;
        let v = split_heads(self.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(additive_mask)?;
        let probs = maybe_dropout(&ops::softmax_last_dim(&scores)?, |d| d.attention, rng)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b * l, heads * head_dim))?;
        Ok(context)
    }
}

/// Mean cross-entropy of logits (n, classes) against integer labels; differentiable.
pub fn cross_entropy(logits: &Tensor, labels: &[usize]) -> Result<Tensor> {
    let (n, classes) = logits.dims2()?;
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let log_sum_exp = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let log_probs = shifted.broadcast_sub(&log_sum_exp)?;
    let mut one_hot = vec![0f32; n * classes];
    for (i, &label) in labels.iter().enumerate() {
        one_hot[i * classes + label] = 1.0;
    }
    let one_hot = Tensor::from_vec(one_hot, (n, classes), logits.device())?;
    Ok((log_probs.mul(&one_hot)?.sum_all()? * (-1.0 / n as f64))?)
}

/// Softmax probabilities of logits, row by row, as f64.
pub fn probabilities(logits: &Tensor) -> Result<Vec<Vec<f64>>> {
    let rows = ops::softmax_last_dim(&logits.detach())?.to_vec2::<f32>()?;
    Ok(rows.into_iter().map(|r| r.into_iter().map(f64::from).collect()).collect())
}

/// A classification head: `classifier.weight` (labels, hidden) and bias, initialised like
/// transformers (normal(0, initializer_range), zero bias) from a seeded RNG.
pub fn init_classifier(config: &BertConfig, num_labels: usize, seed: u64) -> Result<Linear> {
    let mut rng = rng::seeded(seed, 11);
    let h = config.hidden_size;
    let weight = rng::normal_vec(&mut rng, num_labels * h, 0.0, config.initializer_range as f32);
    Linear::from_hf(&Tensor::from_vec(weight, (num_labels, h), &Device::Cpu)?, Tensor::zeros(num_labels, DType::F32, &Device::Cpu)?)
}

/// Make a tensor a trainable leaf: a deep copy wrapped in a `Var`.
pub fn trainable_copy(t: &Tensor) -> Result<Tensor> {
    Ok(Var::from_tensor(&t.copy()?)?.as_tensor().clone())
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
            .unwrap_or(config.max_position_embeddings)
            .clamp(2, config.max_position_embeddings);
        let predict_encoder = TextEncoder::from_bytes(tokenizer_json, predict_max_len, config.pad_token_id)?;
        let mut tensors = CheckpointTensors::parse(model_safetensors, &Device::Cpu)?;
        let shapes: HashMap<String, Vec<usize>> = checkpoint::bert_tensor_shapes(&config).into_iter().collect();
        let mut notes = Vec::new();
        let has_pooler = tensors.contains("pooler.dense.weight", true);
        let mut pooler_init_rng = rng::seeded(0, 13);
        let weights = BertWeights::build(config.num_hidden_layers, |name| {
            if name.starts_with("pooler.") && !has_pooler {
                return random_pooler_tensor(name, &shapes[name], &config, &mut pooler_init_rng);
            }
            tensors.take(name, &shapes[name], true)
        })?;
        if !has_pooler {
            notes.push("The checkpoint has no pooler weights: the pooler was initialised randomly (normal(0, initializer_range)), as transformers does; train it with top:K or full.".into());
        }
        let head = load_head(&mut tensors, &config, &config_value)?;
        Ok(Pretrained { config, config_json: config_value, tokenizer_json: tokenizer_json.to_vec(), weights, head, has_pooler, notes, predict_encoder })
    }

    /// A tokenizer truncating at `max_len` tokens (for a training run).
    pub fn encoder(&self, max_len: usize) -> Result<TextEncoder> {
        TextEncoder::from_bytes(&self.tokenizer_json, max_len, self.config.pad_token_id)
    }

    pub fn info(&self) -> ModelInfo {
        let num_parameters = self.weights.named().iter().map(|(_, t)| t.elem_count()).sum();
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
        predict_with(&self.config, &self.weights, head, labels, &self.predict_encoder, texts)
    }
}

fn random_pooler_tensor(name: &str, shape: &[usize], config: &BertConfig, rng: &mut SeededRng) -> Result<Tensor> {
    let n = shape.iter().product();
    let values = if name.ends_with(".bias") { vec![0f32; n] } else { rng::normal_vec(rng, n, 0.0, config.initializer_range as f32) };
    Ok(Tensor::from_vec(values, shape, &Device::Cpu)?)
}

/// `classifier.*` from a checkpoint we exported, with labels from config.json's id2label.
fn load_head(tensors: &mut CheckpointTensors, config: &BertConfig, config_value: &Value) -> Result<Option<(Linear, Vec<String>)>> {
    if !tensors.contains("classifier.weight", false) {
        return Ok(None);
    }
    let labels = labels_from_config(config_value).ok_or_else(|| {
        Error::Model("the checkpoint has classifier.weight but config.json has no id2label to name its classes".into())
    })?;
    let h = config.hidden_size;
    let head = Linear::from_hf(&tensors.take("classifier.weight", &[labels.len(), h], false)?, tensors.take("classifier.bias", &[labels.len()], false)?)?;
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
pub fn predict_with(config: &BertConfig, weights: &BertWeights, head: &Linear, labels: &[String], encoder: &TextEncoder, texts: &[String]) -> Result<Vec<Prediction>> {
    let mut predictions = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(16) {
        let ids = encoder.encode_all(chunk)?;
        let refs: Vec<&[u32]> = ids.iter().map(|v| v.as_slice()).collect();
        let batch = encoder.batch(&refs, false, &Device::Cpu)?;
        let pooled = weights.encode(config, &batch, None)?.pooled;
        let probs = probabilities(&head.forward(&pooled)?)?;
        for (text, p) in chunk.iter().zip(probs) {
            let best = crate::metrics::argmax(&p);
            predictions.push(Prediction { text: text.clone(), label: labels[best].clone(), labels: labels.to_vec(), probabilities: p });
        }
    }
    Ok(predictions)
}

