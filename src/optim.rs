//! Adam / AdamW with torch's semantics, updating parameters in place in one fused pass.
//!
//! Why by hand: candle-nn's AdamW allocates several temporaries per tensor per step (about a
//! dozen passes over weight-sized memory); on a 22M-parameter model that is most of a step.
//! Here the moments live in plain vectors and one loop reads the gradient and updates the
//! parameter and both moments (`InplaceOp2` on the parameter's own storage).
use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor};

use crate::{Error, Result};

/// torch.optim.Adam defaults; `weight_decay` > 0 gives AdamW (decoupled).
#[derive(Debug, Clone, Copy)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

/// A parameter the optimizer updates, with its name and learning-rate group.
#[derive(Clone)]
pub struct Param {
    pub name: String,
    pub tensor: Tensor,
    /// true for the classification head (and pooler), which may have its own learning rate.
    pub is_head: bool,
}

struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
}

pub struct Adam {
    config: AdamConfig,
    params: Vec<Param>,
    moments: Vec<Moments>,
    step: u64,
}

/// The per-step constants of one fused update.
struct AdamUpdate<'a> {
    moments: RefCell<&'a mut Moments>,
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,
    /// 1/sqrt(1 - beta2^t)
    inv_sqrt_bias2: f32,
    decay: f32,
    grad_scale: f32,
}

fn contiguous<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| Error::Options("optimizer needs contiguous tensors".into()))?;
    Ok(&s.as_slice::<T>()?[start..end])
}

impl InplaceOp2 for AdamUpdate<'_> {
    fn name(&self) -> &'static str {
        "webtune-adam"
    }

    fn cpu_fwd(&self, param: &mut CpuStorage, pl: &Layout, grad: &CpuStorage, gl: &Layout) -> candle_core::Result<()> {
        let (start, end) = pl.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("adam: parameter not contiguous".into()))?;
        let p = match param {
            CpuStorage::F32(values) => &mut values[start..end],
            _ => candle_core::bail!("adam: parameters must be f32"),
        };
        let g = contiguous::<f32>(grad, gl).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let mut moments = self.moments.borrow_mut();
        let Moments { m, v } = &mut **moments;
        let (b1, b2) = (self.beta1, self.beta2);
        for i in 0..p.len() {
            let gi = g[i] * self.grad_scale;
            let mi = b1 * m[i] + (1.0 - b1) * gi;
            let vi = b2 * v[i] + (1.0 - b2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            let denom = vi.sqrt() * self.inv_sqrt_bias2 + self.eps;
            p[i] = p[i] * self.decay - self.step_size * mi / denom;
        }
        Ok(())
    }
}

/// Sum of squares of a gradient tensor.
fn sum_of_squares(t: &Tensor) -> Result<f64> {
    Ok(t.sqr()?.sum_all()?.to_scalar::<f32>()? as f64)
}

impl Adam {
    pub fn new(params: Vec<Param>, config: AdamConfig) -> Self {
        let moments = params
            .iter()
            .map(|p| Moments { m: vec![0.0; p.tensor.elem_count()], v: vec![0.0; p.tensor.elem_count()] })
            .collect();
        Adam { config, params, moments, step: 0 }
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Global L2 norm of the gradients of all parameters.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut total = 0.0;
        for p in &self.params {
            if let Some(g) = grads.get(&p.tensor) {
                total += sum_of_squares(g)?;
            }
        }
        Ok(total.sqrt())
    }

    /// One update. Parameters without a gradient are skipped, as torch does.
    /// `max_grad_norm` clips the global gradient norm first. Returns the (unclipped) norm when
    /// clipping was asked for.
    pub fn step(&mut self, grads: &GradStore, lr: f64, head_lr: f64, max_grad_norm: Option<f64>) -> Result<Option<f64>> {
        self.step += 1;
        let t = self.step as i32;
        let (norm, grad_scale) = match max_grad_norm {
            Some(max) => {
                let norm = self.grad_norm(grads)?;
                (Some(norm), if norm > max { (max / (norm + 1e-6)) as f32 } else { 1.0 })
            }
            None => (None, 1.0),
        };
        let bias1 = 1.0 - self.config.beta1.powi(t);
        let bias2 = 1.0 - self.config.beta2.powi(t);
        for (param, moments) in self.params.iter().zip(self.moments.iter_mut()) {
            let Some(grad) = grads.get(&param.tensor) else { continue };
            let grad = grad.contiguous()?;
            let lr = if param.is_head { head_lr } else { lr };
            let update = AdamUpdate {
                moments: RefCell::new(moments),
                beta1: self.config.beta1 as f32,
                beta2: self.config.beta2 as f32,
                eps: self.config.eps as f32,
                step_size: (lr / bias1) as f32,
                inv_sqrt_bias2: (1.0 / bias2.sqrt()) as f32,
                decay: (1.0 - lr * self.config.weight_decay) as f32,
                grad_scale,
            };
            param.tensor.inplace_op2(&grad, &update)?;
        }
        Ok(norm)
    }
}
