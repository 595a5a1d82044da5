//! Adam / AdamW on the GPU for the tensors the GPU trains: the CPU optimizer's rule
//! ([`crate::optim`]: the same step constants, torch's bias corrections and clipping), applied
//! by the `adam` kernel to resident weights, gradients and moments. The gradient norm's sum of
//! squares comes back to the CPU in partial sums (added in f64) so that the clipping scale and
//! the non-finite check are decided there, before any weight moves.
use super::kernels::square_partials;
use super::{Gpu, GpuRead, GpuTensor, Recorder};
use crate::optim::{non_finite_update, AdamConfig, StepConsts};
use crate::Result;

/// A tensor the GPU optimizer updates.
pub(super) struct GpuParam {
    pub(super) value: GpuTensor,
    pub(super) grad: GpuTensor,
    m: GpuTensor,
    v: GpuTensor,
    steps: u64,
}

impl GpuParam {
    pub(super) fn new(gpu: &Gpu, value: GpuTensor, grad: GpuTensor) -> GpuParam {
        let (m, v) = (GpuTensor::zeros(gpu, value.len), GpuTensor::zeros(gpu, value.len));
        GpuParam { value, grad, m, v, steps: 0 }
    }
}

pub(super) struct GpuAdam {
    config: AdamConfig,
    pub(super) params: Vec<GpuParam>,
    /// Partial sums of squares of every gradient, parameter after parameter.
    partials: GpuTensor,
    /// Bit 0: an update made a weight or a second moment non-finite.
    status: GpuTensor,
}

impl GpuAdam {
    pub(super) fn new(gpu: &Gpu, params: Vec<GpuParam>, config: AdamConfig) -> GpuAdam {
        let partials = GpuTensor::zeros(gpu, params.iter().map(|p| square_partials(p.grad.len)).sum());
        GpuAdam { config, params, partials, status: GpuTensor::zeros(gpu, 1) }
    }

    /// Start reading back the partial sums of squares of this step's gradients.
    pub(super) fn read_squares(&self, mut rec: Recorder<'_>) -> GpuRead {
        let mut offset = 0;
        for p in &self.params {
            rec.sum_squares(&self.partials, offset, &p.grad);
            offset += square_partials(p.grad.len);
        }
        let gpu = rec.gpu();
        rec.submit();
        gpu.start_read(&self.partials.buffer, 0, self.partials.len)
    }

    /// Σ g² from the partial sums read back.
    pub(super) fn squares(partials: &[f32]) -> f64 {
        partials.iter().map(|&v| v as f64).sum()
    }

    /// Record the update of every parameter (each has a gradient in every step), its gradient
    /// scaled by `grad_scale`, and start reading back whether it stayed finite.
    pub(super) fn update(&mut self, mut rec: Recorder<'_>, lr: f64, grad_scale: f32) -> GpuRead {
        rec.clear(&self.status);
        for p in &mut self.params {
            p.steps += 1;
            let consts = StepConsts::of(&self.config, p.steps, lr, grad_scale);
            rec.adam(&p.value, &p.m, &p.v, &p.grad, consts.as_array(), &self.status);
        }
        let gpu = rec.gpu();
        rec.submit();
        gpu.start_read(&self.status.buffer, 0, 1)
    }

    /// Fails when the update's status read back non-finite (the kernel does not say which
    /// weight).
    pub(super) fn check_status(status: &[f32], step: usize) -> Result<()> {
        if status.first().is_some_and(|s| s.to_bits() & 1 != 0) {
            return Err(non_finite_update(step, "a weight trained on the GPU"));
        }
        Ok(())
    }
}

/// One optimizer step of a GPU run in progress: the gradients' squares come back, the CPU
/// decides the clipping (and updates the head, which lives there), the GPU updates the rest,
/// and whether that stayed finite comes back.
pub struct GpuUpdate {
    /// The squares' read-back (only when clipping), then the status's.
    read: Option<GpuRead>,
    squares_done: bool,
    norm: Option<f64>,
}

impl GpuUpdate {
    /// Start a step: with clipping, the gradients' squares start coming back.
    pub fn start(executor: &super::GpuExecutor, clipping: bool) -> GpuUpdate {
        let read = clipping.then(|| executor.model.optimizer.read_squares(executor.kernels.record(&executor.gpu)));
        GpuUpdate { read, squares_done: false, norm: None }
    }

    /// Advance the step: `cpu` is the optimizer of the head's parameters; `lr` and `head_lr`
    /// the step's rates. Done gives the gradient norm when clipping.
    pub fn advance(&mut self, executor: &mut super::GpuExecutor, cpu: &mut crate::optim::Adam, lr: f64, head_lr: f64, max_grad_norm: Option<f64>) -> Result<super::Progress<Option<f64>>> {
        let gpu = &executor.gpu;
        gpu.check()?;
        if !self.squares_done {
            let device_squares = match &mut self.read {
                Some(read) => match read.try_take(gpu)? {
                    Some(partials) => GpuAdam::squares(&partials),
                    None => return Ok(super::Progress::Waiting),
                },
                None => 0.0,
            };
            let squares = if max_grad_norm.is_some() { cpu.gradient_squares(None) + device_squares } else { 0.0 };
            let (norm, grad_scale) = cpu.clip(squares, max_grad_norm)?;
            cpu.update(None, lr, head_lr, grad_scale)?;
            let rec = executor.kernels.record(gpu);
            self.read = Some(executor.model.optimizer.update(rec, lr, grad_scale));
            self.squares_done = true;
            self.norm = norm;
        }
        let read = self.read.as_mut().expect("the update's status read started");
        let Some(status) = read.try_take(gpu)? else { return Ok(super::Progress::Waiting) };
        GpuAdam::check_status(&status, cpu.updates())?;
        Ok(super::Progress::Done(self.norm))
    }
}
