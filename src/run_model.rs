//! The weights of one training run: which tensors a strategy trains, and the run's own copy of
//! the model in which exactly those are trainable.
//!
//! Trainable tensors are deep copies wrapped in `Var`s (the optimizer updates them in place);
//! frozen ones are the pre-trained tensors themselves, shared, with no gradient and no optimizer
//! state. Each trainable Linear weight gets a [`GradSlot`] its fused op writes the gradient into.
use std::collections::HashMap;

use candle_core::Tensor;

use crate::model::{self, BertWeights, Linear, Pretrained};
use crate::ops::GradSlot;
use crate::optim::Param;
use crate::types::Strategy;
use crate::Result;

/// Does `strategy` train the BertModel tensor `name` (canonical, un-prefixed)?
pub fn is_trainable(strategy: Strategy, name: &str, num_layers: usize) -> bool {
    match strategy {
        Strategy::Full => true,
        Strategy::Frozen => false,
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

/// A run's model: encoder weights (some trainable), the classifier head, and the trainable
/// parameters in checkpoint order.
pub struct RunModel {
    pub weights: BertWeights,
    pub head: Linear,
    pub params: Vec<Param>,
}

impl RunModel {
    pub fn build(pretrained: &Pretrained, strategy: Strategy, head: Linear) -> Result<RunModel> {
        let num_layers = pretrained.config.num_hidden_layers;
        let mut weights = pretrained.weights.map(|name, t| if is_trainable(strategy, name, num_layers) { model::trainable_copy(t) } else { Ok(t.clone()) })?;
        let mut head = Linear { weight_t: model::trainable_copy(&head.weight_t)?, bias: model::trainable_copy(&head.bias)?, grad_slot: None };
        let mut slots: HashMap<String, GradSlot> = HashMap::new();
        let mut linears = weights.linears_mut();
        linears.push(("classifier".to_string(), &mut head));
        for (prefix, linear) in linears {
            if linear.weight_t.is_variable() {
                let slot = GradSlot::new(linear.weight_t.elem_count());
                linear.grad_slot = Some(slot.clone());
                slots.insert(format!("{prefix}.weight"), slot);
            }
        }
        let mut named: Vec<(String, Tensor)> = weights.stored_named().into_iter().map(|(n, t)| (format!("bert.{n}"), t)).collect();
        named.push(("classifier.weight".into(), head.weight_t.clone()));
        named.push(("classifier.bias".into(), head.bias.clone()));
        let params = named
            .into_iter()
            .filter(|(_, t)| t.is_variable())
            .map(|(name, tensor)| {
                let canonical = name.strip_prefix("bert.").unwrap_or(&name).to_string();
                Param {
                    grad_slot: slots.remove(&canonical),
                    is_head: canonical.starts_with("pooler.") || canonical.starts_with("classifier."),
                    row_gradient: canonical == "embeddings.word_embeddings.weight",
                    name,
                    tensor,
                }
            })
            .collect();
        Ok(RunModel { weights, head, params })
    }

    /// Drop the gradient buffers (training is over): the weights stay, the slots are freed.
    pub fn release_gradients(&mut self) {
        for (_, linear) in self.weights.linears_mut() {
            linear.grad_slot = None;
        }
        self.head.grad_slot = None;
        for param in &mut self.params {
            param.grad_slot = None;
        }
    }

    /// Every tensor with its transformers name (`bert.…`, `classifier.…`), in transformers'
    /// layout.
    pub fn named_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut named: Vec<(String, Tensor)> = self.weights.named().into_iter().map(|(n, t)| (format!("bert.{n}"), t)).collect();
        named.push(("classifier.weight".into(), self.head.hf_weight()?));
        named.push(("classifier.bias".into(), self.head.bias.clone()));
        Ok(named)
    }
}
