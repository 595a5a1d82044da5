//! Custom candle ops with a real backward: LayerNorm, softmax over the last dimension, erf-GELU
//! and a fused Linear (whose weight gradient can go straight into a [`GradSlot`]).
//!
//! Why by hand: in candle 0.11, `candle_nn::LayerNorm` (fused path), `ops::layer_norm` and
//! `softmax_last_dim` have no backward and silently drop gradients; composing them from
//! elementary ops works but costs a dozen tensor passes each. These fused versions do one pass
//! forward and one backward, and `tests/ops_gradcheck.rs` checks every backward against finite
//! differences.
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Storage, Tensor};

/// Contiguous f32 data of a CPU storage, as laid out by `layout`.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// Copy a tensor's values out as a contiguous f32 vector.
fn to_f32_vec(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

fn read_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(contiguous_f32(cpu, layout, "read")?)),
        _ => candle_core::bail!("webtune runs on the CPU device only"),
    }
}

// ---------------------------------------------------------------- LayerNorm

struct LayerNormOp {
    eps: f32,
}

/// Mean and 1/std of one row.
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "webtune-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let gamma = contiguous_f32(s2, l2, self.name())?;
        let beta = contiguous_f32(s3, l3, self.name())?;
        let h = gamma.len();
        let mut out = vec![0f32; x.len()];
        for (row, out_row) in x.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
            let (mean, rstd) = row_stats(row, self.eps);
            for i in 0..h {
                out_row[i] = (row[i] - mean) * rstd * gamma[i] + beta[i];
            }
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = gamma.elem_count();
        let xs = to_f32_vec(x)?;
        let dys = to_f32_vec(grad)?;
        let gs = to_f32_vec(gamma)?;
        let mut dx = vec![0f32; xs.len()];
        let mut dgamma = vec![0f32; h];
        let mut dbeta = vec![0f32; h];
        let mut xhat = vec![0f32; h];
        for ((row, dy), dx_row) in xs.chunks_exact(h).zip(dys.chunks_exact(h)).zip(dx.chunks_exact_mut(h)) {
            let (mean, rstd) = row_stats(row, self.eps);
            let (mut sum_dxhat, mut sum_dxhat_xhat) = (0f32, 0f32);
            for i in 0..h {
                xhat[i] = (row[i] - mean) * rstd;
                let dxhat = dy[i] * gs[i];
                sum_dxhat += dxhat;
                sum_dxhat_xhat += dxhat * xhat[i];
                dgamma[i] += dy[i] * xhat[i];
                dbeta[i] += dy[i];
            }
            let (mean_dxhat, mean_dxhat_xhat) = (sum_dxhat / h as f32, sum_dxhat_xhat / h as f32);
            for i in 0..h {
                dx_row[i] = rstd * (dy[i] * gs[i] - mean_dxhat - xhat[i] * mean_dxhat_xhat);
            }
        }
        let device = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), device)?),
            Some(Tensor::from_vec(dgamma, h, device)?),
            Some(Tensor::from_vec(dbeta, h, device)?),
        ))
    }
}

/// LayerNorm over the last dimension, differentiable in x, gamma and beta.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(gamma, beta, LayerNormOp { eps: eps as f32 })
}

// ---------------------------------------------------------------- softmax

struct SoftmaxLastDim;

impl CustomOp1 for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "webtune-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        let n = layout.dims().last().copied().unwrap_or(1);
        let mut out = vec![0f32; x.len()];
        for (row, out_row) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (o, v) in out_row.iter_mut().zip(row) {
                *o = (v - max).exp();
                sum += *o;
            }
            let inv = 1.0 / sum;
            out_row.iter_mut().for_each(|o| *o *= inv);
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let n = res.dims().last().copied().unwrap_or(1);
        let dy = to_f32_vec(grad)?;
        let dx = read_f32(res, |y| {
            let mut dx = vec![0f32; y.len()];
            for ((y_row, dy_row), dx_row) in y.chunks_exact(n).zip(dy.chunks_exact(n)).zip(dx.chunks_exact_mut(n)) {
                let dot: f32 = y_row.iter().zip(dy_row).map(|(a, b)| a * b).sum();
                for i in 0..n {
                    dx_row[i] = y_row[i] * (dy_row[i] - dot);
                }
            }
            dx
        })?;
        Ok(Some(Tensor::from_vec(dx, res.shape(), res.device())?))
    }
}

/// Softmax over the last dimension, differentiable.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(SoftmaxLastDim)
}

// ---------------------------------------------------------------- GELU (erf)

struct GeluErf;

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/sqrt(2π)
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

// f32 erf (libm's erff, ≈1 ulp): the f64 version cost ~15 % of a long-sequence training step.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * FRAC_1_SQRT_2))
}

fn gelu_derivative(x: f32) -> f32 {
    let cdf = 0.5 * (1.0 + libm::erff(x * FRAC_1_SQRT_2));
    let pdf = FRAC_1_SQRT_2PI * (-0.5 * x * x).exp();
    cdf + x * pdf
}

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "webtune-gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        Ok((CpuStorage::F32(x.iter().map(|&v| gelu(v)).collect()), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dy = to_f32_vec(grad)?;
        let dx = read_f32(arg, |x| x.iter().zip(&dy).map(|(&v, &g)| g * gelu_derivative(v)).collect::<Vec<f32>>())?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// GELU with the exact erf form (BERT's "gelu"), differentiable.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(GeluErf)
}

// ---------------------------------------------------------------- Linear

/// The weight-gradient accumulator of one trainable Linear (stored layout (in, out)).
///
/// Why: through candle's backward every weight gradient is a fresh tensor that is then added to
/// a zero-filled one — three weight-sized passes and two allocations per Linear per step. The
/// fused Linear's backward instead writes xᵀ·dy straight into this buffer with gemm, and the
/// optimizer reads it in place.
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

    /// The gradient of this step, if backward reached the weight; marks the slot consumed.
    pub fn take<R>(&self, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !state.filled {
            return None;
        }
        state.filled = false;
        Some(f(&state.values))
    }

    /// Read the gradient of this step without consuming it.
    pub fn peek<R>(&self, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        state.filled.then(|| f(&state.values))
    }
}

fn gemm_parallelism() -> gemm::Parallelism {
    match candle_core::utils::get_num_threads() {
        n if n > 1 => gemm::Parallelism::Rayon(n),
        _ => gemm::Parallelism::None,
    }
}

/// dst (m×n, row-major) = [dst +] lhs · rhs, with explicit (row, column) strides of lhs and rhs.
#[allow(clippy::too_many_arguments)]
fn gemm_into(dst: &mut [f32], accumulate: bool, m: usize, n: usize, k: usize, lhs: &[f32], lhs_rs: usize, lhs_cs: usize, rhs: &[f32], rhs_rs: usize, rhs_cs: usize) {
    assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n, "gemm operand sizes");
    // SAFETY: the asserts above keep every index gemm forms (row·rs + col·cs) inside the slices.
    unsafe {
        gemm::gemm(
            m, n, k,
            dst.as_mut_ptr(), 1, n as isize, accumulate,
            lhs.as_ptr(), lhs_cs as isize, lhs_rs as isize,
            rhs.as_ptr(), rhs_cs as isize, rhs_rs as isize,
            1.0, 1.0, false, false, false,
            gemm_parallelism(),
        );
    }
}

struct LinearOp {
    slot: Option<GradSlot>,
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "webtune-linear"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let w = contiguous_f32(s2, l2, self.name())?;
        let b = contiguous_f32(s3, l3, self.name())?;
        let (n, input) = l1.shape().dims2()?;
        let (w_in, out) = l2.shape().dims2()?;
        if w_in != input || b.len() != out {
            candle_core::bail!("linear: x {:?}, weight {:?}, bias {}", l1.dims(), l2.dims(), b.len());
        }
        let mut y = Vec::with_capacity(n * out);
        for _ in 0..n {
            y.extend_from_slice(b);
        }
        gemm_into(&mut y, true, n, out, input, x, input, 1, w, out, 1);
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }

    /// Only the gradients that are needed: a frozen weight or bias gets none (computing it would
    /// cost a full product per step for nothing), nor does an input outside the graph.
    fn bwd(&self, x: &Tensor, w_t: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = if x.track_op() { Some(grad.matmul(&w_t.t()?)?) } else { None };
        let db = if b.is_variable() { Some(grad.sum(0)?) } else { None };
        let dw = match &self.slot {
            None if !w_t.is_variable() => None,
            None => Some(x.t()?.matmul(&grad)?),
            Some(slot) => {
                let (n, input) = x.dims2()?;
                let out = grad.dim(1)?;
                read_f32(x, |xs| {
                    read_f32(&grad, |gs| {
                        let mut state = slot.0.lock().unwrap_or_else(|p| p.into_inner());
                        let accumulate = state.filled;
                        // dWᵀ (input×out) [+]= xᵀ (input×n) · dy (n×out)
                        gemm_into(&mut state.values, accumulate, input, out, n, xs, 1, input, gs, out, 1);
                        state.filled = true;
                    })
                })??;
                None
            }
        };
        Ok((dx, dw, db))
    }
}

/// y = x·w_t + b for x (n, in), w_t (in, out), b (out); differentiable. With a slot, the weight
/// gradient is accumulated there instead of being returned to candle's gradient store.
pub fn linear(x: &Tensor, w_t: &Tensor, b: &Tensor, slot: Option<&GradSlot>) -> Result<Tensor> {
    x.contiguous()?.apply_op3(w_t, b, LinearOp { slot: slot.cloned() })
}
