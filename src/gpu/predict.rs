//! Predictions on the GPU (native): a fine-tuned classifier's encoder uploaded once, frozen,
//! and eval-mode passes ([`GpuEvalPass`]) over the texts in the batches the CPU's
//! [`crate::model::predict_with`] uses; the pooler and the classifier run on the CPU, as in a
//! GPU training run.
#![cfg(not(target_arch = "wasm32"))]
use super::{Gpu, GpuEvalPass, GpuExecutor, GpuModel, Progress};
use crate::encoder;
use crate::metrics;
use crate::model::{self, Pretrained};
use crate::optim::AdamConfig;
use crate::run_model::RunModel;
use crate::types::{LoraOptions, Prediction, Strategy};
use crate::{Error, Result};

/// Texts per eval-mode pass (the CPU's predictions batch the same way).
const BATCH: usize = 16;

/// A checkpoint with a classification head, its encoder resident on a GPU.
pub struct GpuPredictor {
    executor: GpuExecutor,
    model: RunModel,
}

impl GpuPredictor {
    /// Upload `pretrained`'s encoder to `gpu`. Fails for a checkpoint without a trained head.
    pub fn new(gpu: Gpu, pretrained: &Pretrained) -> Result<GpuPredictor> {
        let Some((head, _)) = &pretrained.head else {
            return Err(Error::Model("this checkpoint has no classification head (classifier.weight); train it first, or load a model exported by webtune".into()));
        };
        let model = RunModel::build(pretrained, Strategy::Frozen, head.clone(), &LoraOptions::default(), 0)?;
        let resident = GpuModel::upload(&gpu, &model, AdamConfig::default())?;
        Ok(GpuPredictor { executor: GpuExecutor::new(gpu, resident), model })
    }

    /// The label and class probabilities of each text, as [`Pretrained::predict`] gives them.
    pub fn predict(&self, pretrained: &Pretrained, texts: &[String]) -> Result<Vec<Prediction>> {
        let (config, encoder) = (&pretrained.config, &pretrained.predict_encoder);
        let labels = pretrained.head.as_ref().map(|(_, labels)| labels.clone()).unwrap_or_default();
        let mut predictions = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            let ids = encoder.encode_all(chunk)?;
            let refs: Vec<&[u32]> = ids.iter().map(|v| v.as_slice()).collect();
            let mut pass = GpuEvalPass::new(config, self.model.weights.layers.len(), encoder.batch(&refs, false), false)?;
            let pooled = loop {
                // Natively a read-back waits for the device, so a pass never answers Waiting.
                if let Progress::Done(output) = pass.advance(&self.executor, &self.model.weights)? {
                    break output.pooled;
                }
            };
            let logits = encoder::head_logits(&self.model.head, &pooled, config.hidden_size)?;
            for (text, p) in chunk.iter().zip(model::probabilities(&logits)) {
                let best = metrics::argmax(&p);
                predictions.push(Prediction { text: text.clone(), label: labels[best].clone(), labels: labels.clone(), probabilities: p });
            }
        }
        Ok(predictions)
    }

    /// The adapter the predictions run on.
    pub fn gpu(&self) -> &Gpu {
        &self.executor.gpu
    }
}
