//! A run's encoder resident on the GPU: the weights of the embeddings and layers, a gradient
//! buffer for each tensor the run trains (dense, the word embeddings' too: rows without a
//! gradient get zeros, which is the CPU's zero-gradient update exactly), and their Adam moments.
//! Which tensors train is the run's [`RunModel`]'s decision (its gradient slots); the pooler and
//! the classifier stay on the CPU with the head.
use super::optim::{GpuAdam, GpuParam};
use super::{Gpu, GpuTensor, Kernels};
use crate::encoder::Values;
use crate::optim::AdamConfig;
use crate::params::{self, BertParams};
use crate::run_model::RunModel;
use crate::{Error, Result};

pub struct GpuModel {
    pub(super) weights: BertParams<GpuTensor>,
    pub(super) grads: BertParams<Option<GpuTensor>>,
    pub(super) optimizer: GpuAdam,
}

/// Whether a canonical tensor is part of the head (the pooler runs on the CPU).
fn on_cpu(name: &str) -> bool {
    name.starts_with("pooler.")
}

impl GpuModel {
    /// Upload `run`'s encoder. A LoRA run is refused (its adapters have no GPU kernels yet).
    pub fn upload(gpu: &Gpu, run: &RunModel, adam: AdamConfig) -> Result<GpuModel> {
        if run.adapters.is_some() {
            return Err(Error::Gpu("LoRA runs on the CPU for now: its adapters have no GPU kernels yet".into()));
        }
        let word_trains = run.train_model().word_embeddings_train;
        let trains: Vec<bool> = run.grads.named_values(|name, _, slot| !on_cpu(name) && (slot.is_some() || (word_trains && name == "embeddings.word_embeddings.weight"))).into_iter().map(|(_, t)| t).collect();
        let weights = run.weights.map(&mut |name, _, t| if on_cpu(name) { Ok(GpuTensor::zeros(gpu, 0)) } else { Ok(GpuTensor::from_slice(gpu, Values::of(t)?.get())) })?;
        let mut index = 0;
        let grads = weights.map(&mut |_, _, w: &GpuTensor| {
            index += 1;
            Ok(trains[index - 1].then(|| GpuTensor::zeros(gpu, w.len)))
        })?;
        let mut gpu_params = Vec::new();
        for ((_, value), (_, grad)) in weights.named_values(|_, _, w| w.clone()).into_iter().zip(grads.named_values(|_, _, g| g.clone())) {
            if let Some(grad) = grad {
                gpu_params.push(GpuParam::new(gpu, value, grad));
            }
        }
        Ok(GpuModel { optimizer: GpuAdam::new(gpu, gpu_params, adam), weights, grads })
    }

    /// The device memory the model holds (weights, gradients, moments), bytes.
    pub fn resident_bytes(&self) -> u64 {
        let weights: u64 = self.weights.named_values(|_, _, w| w.bytes()).iter().map(|(_, b)| b).sum();
        weights + self.optimizer.params.iter().map(|p| 3 * p.value.bytes()).sum::<u64>()
    }

    /// Zero every gradient buffer (a step's gradients accumulate into them).
    pub(super) fn clear_gradients(&self, kernels: &Kernels, gpu: &Gpu) {
        let mut rec = kernels.record(gpu);
        for p in &self.optimizer.params {
            rec.clear(&p.grad);
        }
        rec.submit();
    }

    /// Start copying the trained weights back into `run`'s CPU tensors (for evaluation on the
    /// CPU, export, saving and the insight views): see [`GpuDownload`].
    pub fn start_download(&self, gpu: &Gpu, run: &RunModel) -> GpuDownload {
        let cpu = run.weights.named_values(|_, _, t| t.clone());
        let device = self.weights.named_values(|_, _, w| w.clone());
        let trained = self.grads.named_values(|_, _, g| g.is_some());
        let reads = cpu.into_iter().zip(device).zip(trained).filter(|(_, (_, trains))| *trains).map(|(((_, tensor), (_, value)), _)| (tensor, gpu.start_read(&value.buffer, 0, value.len))).collect();
        GpuDownload { reads }
    }
}

/// Trained weights coming back from the GPU, each written into its CPU tensor as it arrives.
pub struct GpuDownload {
    reads: Vec<(candle_core::Tensor, super::GpuRead)>,
}

impl GpuDownload {
    /// Whether every weight is back (natively always, after waiting; on the web once the
    /// browser has mapped them all).
    pub fn try_finish(&mut self, gpu: &Gpu) -> Result<bool> {
        let mut waiting = Vec::new();
        for (tensor, mut read) in std::mem::take(&mut self.reads) {
            match read.try_take(gpu)? {
                Some(values) => params::overwrite(&tensor, &values)?,
                None => waiting.push((tensor, read)),
            }
        }
        self.reads = waiting;
        Ok(self.reads.is_empty())
    }
}
