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
use crate::Result;

pub struct GpuModel {
    pub(super) weights: BertParams<GpuTensor>,
    pub(super) grads: BertParams<Option<GpuTensor>>,
    /// A LoRA run's adapters, by layer and projection.
    pub(super) adapters: Option<Vec<[Option<GpuAdapter>; 6]>>,
    pub(super) optimizer: GpuAdam,
}

/// A LoRA adapter on the device: Aᵀ (in × r), Bᵀ (r × out), their gradients, the scale.
pub(super) struct GpuAdapter {
    pub(super) a_t: GpuTensor,
    pub(super) b_t: GpuTensor,
    pub(super) grad_a_t: GpuTensor,
    pub(super) grad_b_t: GpuTensor,
    pub(super) rank: usize,
    pub(super) scale: f32,
}

/// Whether a canonical tensor is part of the head (the pooler runs on the CPU).
fn on_cpu(name: &str) -> bool {
    name.starts_with("pooler.")
}

impl GpuModel {
    /// Upload `run`'s encoder (and a LoRA run's adapters).
    pub fn upload(gpu: &Gpu, run: &RunModel, adam: AdamConfig) -> Result<GpuModel> {
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
        let adapters = match &run.adapters {
            Some(adapters) => Some(upload_adapters(gpu, adapters, &mut gpu_params)?),
            None => None,
        };
        Ok(GpuModel { optimizer: GpuAdam::new(gpu, gpu_params, adam), weights, grads, adapters })
    }

    /// This step's gradient of every tensor the GPU trains, by canonical name (for the
    /// gradient checks).
    pub fn gradients(&self) -> Vec<(String, GpuTensor)> {
        self.grads.named_values(|_, _, g| g.clone()).into_iter().filter_map(|(name, g)| Some((name, g?))).collect()
    }

    /// The device memory the model holds (weights, gradients, moments), bytes.
    pub fn resident_bytes(&self) -> u64 {
        let weights: u64 = self.weights.named_values(|_, _, w| w.bytes()).iter().map(|(_, b)| b).sum();
        let adapters: u64 = self.adapters.iter().flatten().flatten().flatten().map(|a| a.a_t.bytes() + a.b_t.bytes()).sum();
        weights + adapters + self.optimizer.params.iter().map(|p| 3 * p.value.bytes()).sum::<u64>()
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
        let mut reads: Vec<_> = cpu.into_iter().zip(device).zip(trained).filter(|(_, (_, trains))| *trains).map(|(((_, tensor), (_, value)), _)| (tensor, gpu.start_read(&value.buffer, 0, value.len))).collect();
        if let (Some(cpu), Some(device)) = (&run.adapters, &self.adapters) {
            for ((_, _, adapter), on_device) in cpu.iter().zip(device.iter().flat_map(|layer| layer.iter().flatten())) {
                reads.push((adapter.a_t.clone(), gpu.start_read(&on_device.a_t.buffer, 0, on_device.a_t.len)));
                reads.push((adapter.b_t.clone(), gpu.start_read(&on_device.b_t.buffer, 0, on_device.b_t.len)));
            }
        }
        GpuDownload { reads }
    }
}

/// Upload a LoRA run's adapters (in PEFT's order: layer, then projection) and add them to
/// the optimizer's parameters.
fn upload_adapters(gpu: &Gpu, adapters: &crate::params::Adapters, params: &mut Vec<GpuParam>) -> Result<Vec<[Option<GpuAdapter>; 6]>> {
    let upload = |t: &candle_core::Tensor| -> Result<GpuTensor> { Ok(GpuTensor::from_slice(gpu, Values::of(t)?.get())) };
    let mut layers = Vec::new();
    for layer in &adapters.layers {
        let mut on_device: [Option<GpuAdapter>; 6] = Default::default();
        for (slot, adapter) in on_device.iter_mut().zip(layer) {
            let Some(adapter) = adapter else { continue };
            let (a_t, b_t) = (upload(&adapter.a_t)?, upload(&adapter.b_t)?);
            let (grad_a_t, grad_b_t) = (GpuTensor::zeros(gpu, a_t.len), GpuTensor::zeros(gpu, b_t.len));
            params.push(GpuParam::new(gpu, a_t.clone(), grad_a_t.clone()));
            params.push(GpuParam::new(gpu, b_t.clone(), grad_b_t.clone()));
            *slot = Some(GpuAdapter { a_t, b_t, grad_a_t, grad_b_t, rank: adapters.rank, scale: adapters.scale });
        }
        layers.push(on_device);
    }
    Ok(layers)
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
