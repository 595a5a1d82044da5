//! The weights of one training run: which tensors a strategy trains, and the run's own copy of
//! the model in which exactly those are trainable.
//!
//! Trainable tensors are deep copies (the optimizer updates them in place) with a gradient
//! buffer ([`GradSlot`]) the backward pass writes into; frozen ones are the pre-trained tensors
//! themselves, shared, with no gradient and no optimizer state. A LoRA run adds adapters (see
//! [`crate::lora`]) and trains only them, the pooler and the classifier.
use candle_core::Tensor;

use crate::encoder::{AdapterSet, TrainModel, Values};
use crate::config::BertConfig;
use crate::lora;
use crate::params::{self, Adapters, BertGrads, GradSlot};
use crate::architecture::Architecture;
use crate::events::BlockChange;
use crate::model::{BertWeights, Linear, Pretrained};
use crate::optim::Param;
use crate::types::{LoraOptions, Strategy};
use crate::Result;

/// Does `strategy` train the BertModel tensor `name` (canonical, un-prefixed)?
pub fn is_trainable(strategy: Strategy, name: &str, num_layers: usize) -> bool {
    match strategy {
        Strategy::Full => true,
        Strategy::Frozen => false,
        Strategy::Lora(_) => name.starts_with("pooler."),
        Strategy::Top(k) => {
            if name.starts_with("pooler.") {
                return true;
            }
            match name.strip_prefix("encoder.layer.").and_then(|rest| rest.split('.').next()).and_then(|l| l.parse::<usize>().ok()) {
                Some(layer) => layer + k >= num_layers,
                None => false,
            }
        }
    }
}

/// Does `strategy` train the tensor `name` (canonical) of this model? As [`is_trainable`], less
/// the tensors the architecture does not have (DistilBERT's token types). DistilBERT's
/// sinusoidal position embeddings are the checkpoint's tensor and train like learned ones, as in
/// transformers (whose module keeps `requires_grad`).
pub fn trains(config: &BertConfig, strategy: Strategy, name: &str) -> bool {
    config.architecture().stored_name(name).is_some() && is_trainable(strategy, name, config.num_hidden_layers)
}

/// A run's model: encoder weights (some trainable), their gradient buffers, the classifier
/// head, and the trainable parameters in checkpoint order (for the optimizer).
pub struct RunModel {
    pub weights: BertWeights,
    pub grads: BertGrads,
    pub head: Linear,
    pub head_grads: Linear<Option<GradSlot>>,
    pub params: Vec<Param>,
    /// A LoRA run's adapters and their gradient slots.
    pub adapters: Option<Adapters>,
    pub adapter_grads: Option<Adapters<GradSlot>>,
    /// The checkpoint's architecture: its tensors' names.
    pub architecture: Architecture,
}

impl RunModel {
    /// `lora` and `seed` shape and initialise the adapters of a `lora:R` strategy.
    pub fn build(pretrained: &Pretrained, strategy: Strategy, head: Linear, lora: &LoraOptions, seed: u64) -> Result<RunModel> {
        let config = &pretrained.config;
        let architecture = config.architecture();
        let trains = |name: &str| trains(config, strategy, name);
        let weights = pretrained.weights.map(&mut |name, _, t| if trains(name) { params::trainable_copy(t) } else { Ok(t.clone()) })?;
        // Word embeddings: their gradient comes as rows (see params::RowGradients), no slot.
        let grads = weights.map(&mut |name, _, t| Ok((trains(name) && name != "embeddings.word_embeddings.weight").then(|| GradSlot::new(t.elem_count()))))?;
        let head = Linear { weight_t: params::trainable_copy(&head.weight_t)?, bias: params::trainable_copy(&head.bias)? };
        let head_grads = Linear { weight_t: Some(GradSlot::new(head.weight_t.elem_count())), bias: Some(GradSlot::new(head.bias.elem_count())) };
        let mut params: Vec<Param> = Vec::new();
        let slots = grads.named_values(|_, _, slot| slot.clone());
        for ((name, tensor), (_, slot)) in weights.stored_named().into_iter().zip(slots) {
            if trains(&name) {
                let hf_name = architecture.export_name(&name).expect("trained tensors exist in the architecture");
                params.push(Param::new(hf_name, tensor, name.starts_with("pooler."), slot));
            }
        }
        let adapters = match strategy {
            Strategy::Lora(rank) => Some(lora::init_adapters(config, lora, rank, seed)?),
            _ => None,
        };
        let adapter_grads = adapters.as_ref().map(lora::gradient_slots);
        if let (Some(adapters), Some(slots)) = (&adapters, &adapter_grads) {
            let names = lora::named_adapter_tensors(adapters, architecture)?.into_iter().map(|(n, _)| n);
            let tensors = adapters.iter().zip(slots.iter()).flat_map(|((_, _, a), (_, _, g))| [(a.a_t.clone(), g.a_t.clone()), (a.b_t.clone(), g.b_t.clone())]);
            for (name, (tensor, slot)) in names.zip(tensors) {
                params.push(Param::new(name, tensor, false, Some(slot)));
            }
        }
        let classifier = architecture.classifier_module();
        params.push(Param::new(format!("{classifier}.weight"), head.weight_t.clone(), true, head_grads.weight_t.clone()));
        params.push(Param::new(format!("{classifier}.bias"), head.bias.clone(), true, head_grads.bias.clone()));
        Ok(RunModel { weights, grads, head, head_grads, params, adapters, adapter_grads, architecture })
    }

    /// The model as a training step sees it.
    pub fn train_model(&self) -> TrainModel<'_> {
        TrainModel {
            weights: &self.weights,
            grads: &self.grads,
            head: &self.head,
            head_grads: &self.head_grads,
            word_embeddings_train: self.params.iter().any(|p| p.row_gradient),
            adapters: self.adapters.as_ref().map(|adapters| AdapterSet { adapters, grads: self.adapter_grads.as_ref() }),
        }
    }

    /// Drop the gradient buffers (training is over): the weights stay, the slots are freed.
    pub fn release_gradients(&mut self) {
        self.grads = self.grads.map(&mut |_, _, _| Ok(None)).expect("mapping to None cannot fail");
        self.head_grads = Linear { weight_t: None, bias: None };
        self.adapter_grads = None;
        for param in &mut self.params {
            param.grad_slot = None;
        }
    }

    /// How far each block (embeddings, each layer, pooler) moved from `original`, and the
    /// classifier's norm. Shared (frozen) tensors are the originals themselves: exactly 0.
    pub fn block_changes(&self, original: &BertWeights) -> Result<Vec<BlockChange>> {
        let now = self.weights.stored_named();
        let then = original.stored_named();
        let mut blocks: Vec<(String, f64, f64)> = Vec::new();
        for ((name, current), (_, first)) in now.iter().zip(&then) {
            let block = block_of(name);
            if blocks.last().is_none_or(|(b, _, _)| *b != block) {
                blocks.push((block, 0.0, 0.0));
            }
            let entry = blocks.last_mut().expect("pushed above");
            let first_values = Values::of(first)?;
            let base: f64 = first_values.get().iter().map(|v| (*v as f64).powi(2)).sum();
            let diff: f64 = if current.id() == first.id() {
                0.0
            } else {
                Values::of(current)?.get().iter().zip(first_values.get()).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum()
            };
            entry.1 += diff;
            entry.2 += base;
        }
        // A LoRA run's layers move by their adapters' updates (the base weights are shared).
        if let Some(adapters) = &self.adapters {
            for (layer, _, adapter) in adapters.iter() {
                let delta: f64 = lora::delta_t(adapter, adapters.scale)?.iter().map(|v| (*v as f64).powi(2)).sum();
                let block = format!("layer {layer}");
                if let Some(entry) = blocks.iter_mut().find(|(b, _, _)| *b == block) {
                    entry.1 += delta;
                }
            }
        }
        let mut changes: Vec<BlockChange> =
            blocks.into_iter().map(|(name, diff, base)| BlockChange { name, change: if base > 0.0 { (diff / base).sqrt() } else { diff.sqrt() }, relative: true }).collect();
        let norm = |t: &Tensor| -> Result<f64> { Ok(Values::of(t)?.get().iter().map(|v| (*v as f64).powi(2)).sum()) };
        let head = norm(&self.head.weight_t)? + norm(&self.head.bias)?;
        changes.push(BlockChange { name: "classifier".into(), change: head.sqrt(), relative: false });
        Ok(changes)
    }

    /// Every tensor with its transformers name (`bert.…`, `classifier.…`; the architecture's
    /// own), in transformers' layout; a LoRA run's adapters are merged into their weights.
    pub fn named_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let merged;
        let weights = match &self.adapters {
            Some(adapters) => {
                merged = lora::merged_weights(&self.weights, adapters)?;
                &merged
            }
            None => &self.weights,
        };
        let architecture = self.architecture;
        let mut named: Vec<(String, Tensor)> = weights.named().into_iter().filter_map(|(n, t)| Some((architecture.export_name(&n)?, t))).collect();
        named.extend(self.classifier_tensors()?);
        Ok(named)
    }
}

impl RunModel {
    /// The trained pooler and classifier, named as transformers names them (what PEFT saves as
    /// `modules_to_save` beside a LoRA adapter).
    pub fn head_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let pooler = |name: &str| self.architecture.export_name(name).expect("every architecture has the dense layer");
        let mut named = vec![
            (pooler("pooler.dense.weight"), self.weights.pooler.hf_weight()?),
            (pooler("pooler.dense.bias"), self.weights.pooler.bias.clone()),
        ];
        named.extend(self.classifier_tensors()?);
        Ok(named)
    }

    /// The classifier's two tensors with their transformers names.
    fn classifier_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let classifier = self.architecture.classifier_module();
        Ok(vec![(format!("{classifier}.weight"), self.head.hf_weight()?), (format!("{classifier}.bias"), self.head.bias.clone())])
    }
}

/// The block a canonical tensor name belongs to: "embeddings", "layer N" or "pooler".
fn block_of(name: &str) -> String {
    match name.strip_prefix("encoder.layer.").and_then(|rest| rest.split('.').next()) {
        Some(layer) => format!("layer {layer}"),
        None => name.split('.').next().unwrap_or(name).to_string(),
    }
}

