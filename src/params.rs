//! The model's parameter structure: every tensor of BERT's embeddings, encoder layers and
//! pooler ([`BertParams`], generic so the same structure holds weights, gradient buffers or any
//! per-tensor value), the classifier [`Linear`], LoRA adapters ([`Adapter`]), the gradient
//! buffers the backward pass writes ([`GradSlot`]) and the dropout probabilities.
//!
//! Plain structure, no arithmetic: [`crate::encoder`] computes with it, [`crate::model`] loads
//! and predicts with it, [`crate::run_model`] decides what trains.
use candle_core::{Tensor, Var};

use crate::config::BertConfig;
use crate::types::Projection;
use crate::Result;

/// y = x Wᵀ + b. The weight is stored transposed, (in, out) and contiguous, so the forward
/// product and the weight gradient (xᵀ·dy) are both in the stored layout — no strided pass over
/// a transposed weight per step.
#[derive(Clone, Debug)]
pub struct Linear<T = Tensor> {
    pub weight_t: T,
    pub bias: T,
}

impl Linear {
    /// From transformers' orientation: weight (out, in).
    pub fn from_hf(weight: &Tensor, bias: Tensor) -> Result<Self> {
        Ok(Linear { weight_t: weight.t()?.contiguous()?, bias })
    }

    /// The weight in transformers' orientation (out, in), as a view.
    pub fn hf_weight(&self) -> Result<Tensor> {
        Ok(self.weight_t.t()?)
    }
}

#[derive(Clone, Debug)]
pub struct LayerNorm<T = Tensor> {
    pub weight: T,
    pub bias: T,
}

#[derive(Clone, Debug)]
pub struct EncoderLayer<T = Tensor> {
    pub query: Linear<T>,
    pub key: Linear<T>,
    pub value: Linear<T>,
    pub attention_output: Linear<T>,
    pub attention_norm: LayerNorm<T>,
    pub intermediate: Linear<T>,
    pub output: Linear<T>,
    pub output_norm: LayerNorm<T>,
}

/// The BertModel part (embeddings, encoder, pooler), one `T` per tensor.
#[derive(Clone, Debug)]
pub struct BertParams<T = Tensor> {
    pub word_embeddings: T,
    pub position_embeddings: T,
    pub token_type_embeddings: T,
    pub embeddings_norm: LayerNorm<T>,
    pub layers: Vec<EncoderLayer<T>>,
    pub pooler: Linear<T>,
}

pub type BertWeights = BertParams<Tensor>;

/// How a tensor is stored relative to transformers' layout.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stored {
    AsIs,
    /// A Linear weight, stored transposed.
    Transposed,
}

/// The visitor [`BertParams::map`] calls: (canonical name, layout, value) → counterpart.
type Mapper<'a, T, U> = dyn FnMut(&str, Stored, &T) -> Result<U> + 'a;

fn map_linear<T, U>(f: &mut Mapper<'_, T, U>, prefix: &str, l: &Linear<T>) -> Result<Linear<U>> {
    Ok(Linear { weight_t: f(&format!("{prefix}.weight"), Stored::Transposed, &l.weight_t)?, bias: f(&format!("{prefix}.bias"), Stored::AsIs, &l.bias)? })
}

fn map_norm<T, U>(f: &mut Mapper<'_, T, U>, prefix: &str, n: &LayerNorm<T>) -> Result<LayerNorm<U>> {
    Ok(LayerNorm { weight: f(&format!("{prefix}.weight"), Stored::AsIs, &n.weight)?, bias: f(&format!("{prefix}.bias"), Stored::AsIs, &n.bias)? })
}

impl<T> BertParams<T> {
    /// A copy where `f` gives each tensor's counterpart, called with its canonical (un-prefixed
    /// transformers) name in checkpoint order. The one listing of the model's tensors: loading,
    /// export, strategies and gradient buffers all go through it.
    pub fn map<U>(&self, f: &mut impl FnMut(&str, Stored, &T) -> Result<U>) -> Result<BertParams<U>> {
        let f: &mut Mapper<'_, T, U> = f;
        let word_embeddings = f("embeddings.word_embeddings.weight", Stored::AsIs, &self.word_embeddings)?;
        let position_embeddings = f("embeddings.position_embeddings.weight", Stored::AsIs, &self.position_embeddings)?;
        let token_type_embeddings = f("embeddings.token_type_embeddings.weight", Stored::AsIs, &self.token_type_embeddings)?;
        let embeddings_norm = map_norm(f, "embeddings.LayerNorm", &self.embeddings_norm)?;
        let mut layers = Vec::with_capacity(self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            let p = format!("encoder.layer.{l}");
            layers.push(EncoderLayer {
                query: map_linear(f, &format!("{p}.attention.self.query"), &layer.query)?,
                key: map_linear(f, &format!("{p}.attention.self.key"), &layer.key)?,
                value: map_linear(f, &format!("{p}.attention.self.value"), &layer.value)?,
                attention_output: map_linear(f, &format!("{p}.attention.output.dense"), &layer.attention_output)?,
                attention_norm: map_norm(f, &format!("{p}.attention.output.LayerNorm"), &layer.attention_norm)?,
                intermediate: map_linear(f, &format!("{p}.intermediate.dense"), &layer.intermediate)?,
                output: map_linear(f, &format!("{p}.output.dense"), &layer.output)?,
                output_norm: map_norm(f, &format!("{p}.output.LayerNorm"), &layer.output_norm)?,
            });
        }
        let pooler = map_linear(f, "pooler.dense", &self.pooler)?;
        Ok(BertParams { word_embeddings, position_embeddings, token_type_embeddings, embeddings_norm, layers, pooler })
    }

    /// Every tensor's counterpart with its canonical name, in checkpoint order.
    pub fn named_values<U>(&self, mut f: impl FnMut(&str, Stored, &T) -> U) -> Vec<(String, U)> {
        let mut out = Vec::new();
        self.map(&mut |name, stored, t| {
            out.push((name.to_string(), f(name, stored, t)));
            Ok(())
        })
        .expect("listing cannot fail");
        out
    }
}

impl BertParams<()> {
    /// The structure of a model with `num_layers` layers, to fill with [`BertParams::map`].
    pub fn skeleton(num_layers: usize) -> Self {
        let lin = Linear { weight_t: (), bias: () };
        let norm = LayerNorm { weight: (), bias: () };
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
        BertParams { word_embeddings: (), position_embeddings: (), token_type_embeddings: (), embeddings_norm: norm, layers: vec![layer; num_layers], pooler: lin }
    }
}

impl BertWeights {
    /// Build from a getter of canonical tensors in transformers' layout.
    pub fn build(num_layers: usize, mut get: impl FnMut(&str) -> Result<Tensor>) -> Result<Self> {
        BertParams::skeleton(num_layers).map(&mut |name, stored, _| {
            let hf = get(name)?;
            Ok(if stored == Stored::Transposed { hf.t()?.contiguous()? } else { hf })
        })
    }

    /// Every tensor with its canonical name, in the stored layout (Linear weights transposed).
    pub fn stored_named(&self) -> Vec<(String, Tensor)> {
        self.named_values(|_, _, t| t.clone())
    }

    /// Every tensor with its canonical name, in transformers' layout (views, no copies).
    pub fn named(&self) -> Vec<(String, Tensor)> {
        self.named_values(|_, stored, t| if stored == Stored::Transposed { t.t().expect("a 2-D weight transposes") } else { t.clone() })
    }
}

/// Dropout probabilities of the training mode.
#[derive(Clone, Copy, Debug)]
pub struct Dropout {
    pub hidden: f32,
    pub attention: f32,
    pub classifier: f32,
    /// On the input of each LoRA adapter (PEFT's `lora_dropout`); 0 without adapters.
    pub adapter: f32,
}

impl Dropout {
    /// The probabilities config.json declares (the classifier's falls back to the hidden one).
    pub fn from_config(config: &BertConfig) -> Self {
        Dropout {
            hidden: config.hidden_dropout_prob as f32,
            attention: config.attention_probs_dropout_prob as f32,
            classifier: config.classifier_dropout() as f32,
            adapter: 0.0,
        }
    }
}

/// A parameter's gradient buffer: the backward pass accumulates into it, the optimizer reads it
/// in place (stored layout, e.g. (in, out) for a Linear weight).
#[derive(Clone)]
pub struct GradSlot(std::sync::Arc<std::sync::Mutex<SlotState>>);

pub struct SlotState {
    pub values: Vec<f32>,
    /// Whether `values` holds a gradient of the current step (else it is stale, not zeroed).
    pub filled: bool,
}

impl GradSlot {
    pub fn new(len: usize) -> Self {
        GradSlot(std::sync::Arc::new(std::sync::Mutex::new(SlotState { values: vec![0.0; len], filled: false })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add to this step's gradient: `f(values, accumulate)` must overwrite `values` when
    /// `accumulate` is false (the first contribution of a step) and add to them otherwise.
    pub fn write(&self, f: impl FnOnce(&mut [f32], bool)) {
        let mut state = self.lock();
        let accumulate = state.filled;
        f(&mut state.values, accumulate);
        state.filled = true;
    }

    /// The gradient of this step, if the backward pass reached the parameter; marks the slot
    /// consumed.
    pub fn take<R>(&self, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
        let mut state = self.lock();
        if !state.filled {
            return None;
        }
        state.filled = false;
        Some(f(&state.values))
    }

    /// Read the gradient of this step without consuming it.
    pub fn peek<R>(&self, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
        let state = self.lock();
        state.filled.then(|| f(&state.values))
    }
}

/// Gradient buffers of the encoder's parameters; `None` for frozen ones.
pub type BertGrads = BertParams<Option<GradSlot>>;

/// Word-embedding gradient rows by token id: `(id, row)`, ids distinct and sorted. (The
/// optimizer folds them into its dense update; a vocab × hidden gradient would be three passes
/// over the whole embedding table every step.)
pub type RowGradients = Vec<(u32, Vec<f32>)>;


/// A LoRA adapter on one projection: the update ΔW = scale · B·A added to the frozen weight,
/// stored transposed like [`Linear`] weights: `a_t` = Aᵀ (in × r), `b_t` = Bᵀ (r × out).
#[derive(Clone, Debug)]
pub struct Adapter<T = Tensor> {
    pub a_t: T,
    pub b_t: T,
}

/// The adapters of one encoder layer, indexed by [`Projection`] (None: not adapted).
pub type LayerAdapters<T = Tensor> = [Option<Adapter<T>>; 6];

/// Every layer's adapters, their scale (alpha / r) and the dropout on their input.
#[derive(Clone, Debug)]
pub struct Adapters<T = Tensor> {
    pub layers: Vec<LayerAdapters<T>>,
    pub scale: f32,
    pub rank: usize,
}

impl<T> Adapters<T> {
    /// Each adapter with its layer and projection, in PEFT's order (layer, then projection).
    pub fn iter(&self) -> impl Iterator<Item = (usize, Projection, &Adapter<T>)> {
        self.layers.iter().enumerate().flat_map(|(l, layer)| Projection::ALL.into_iter().filter_map(move |p| layer[p as usize].as_ref().map(|a| (l, p, a))))
    }
}

/// Make a tensor a trainable leaf: a deep copy wrapped in a `Var`.
pub fn trainable_copy(t: &Tensor) -> Result<Tensor> {
    Ok(Var::from_tensor(&t.copy()?)?.as_tensor().clone())
}


/// Overwrite a contiguous f32 tensor's values in place (every handle to it sees them): the GPU
/// executor's trained weights coming back.
pub fn overwrite(t: &Tensor, values: &[f32]) -> Result<()> {
    struct Overwrite<'a>(&'a [f32]);
    impl candle_core::InplaceOp1 for Overwrite<'_> {
        fn name(&self) -> &'static str {
            "webtune-overwrite"
        }

        fn cpu_fwd(&self, storage: &mut candle_core::CpuStorage, layout: &candle_core::Layout) -> candle_core::Result<()> {
            let (start, end) = layout.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("overwrite: tensor not contiguous".into()))?;
            match storage {
                candle_core::CpuStorage::F32(v) if end - start == self.0.len() => {
                    v[start..end].copy_from_slice(self.0);
                    Ok(())
                }
                _ => candle_core::bail!("overwrite: an f32 tensor of {} values was expected", self.0.len()),
            }
        }
    }
    Ok(t.inplace_op1(&Overwrite(values))?)
}
