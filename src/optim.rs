//! Adam / AdamW with torch's semantics, updating parameters in place in one fused pass.
//!
//! Why by hand: candle-nn's AdamW allocates several temporaries per tensor per step (about a
//! dozen passes over weight-sized memory); on a 22M-parameter model that is most of a step.
//! Here the moments live in plain vectors and one loop reads the gradient and updates the
//! parameter and both moments, in the parameter's own storage (candle's in-place ops).
//! The word embeddings get their gradient as rows (see [`crate::params::RowGradients`]); their
//! update is still dense — rows without gradient decay their moments and move, exactly as
//! torch's Adam does with a zero gradient.
//!
//! Every update checks that it left the weights and the second moments finite, in the loop that
//! writes them (see [`Finite`]), and a clipped step checks the gradient norm before any update:
//! a NaN or infinite gradient stops the run instead of reaching the weights unnoticed.
//!
//! Also here: transformers' linear warm-up/decay schedule ([`schedule_factor`]).
use std::cell::{Cell, RefCell};

use candle_core::{CpuStorage, InplaceOp1, Layout, Tensor};
use rayon::prelude::*;

use crate::kernels;
use crate::params::{GradSlot, RowGradients};
use crate::types::Schedule;
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
    /// true for the word embeddings, whose gradient arrives as rows ([`RowGradients`]).
    pub row_gradient: bool,
    /// The buffer the backward pass accumulates this parameter's gradient in (every parameter
    /// but the word embeddings).
    pub grad_slot: Option<GradSlot>,
}

impl Param {
    /// A parameter named as transformers names it (`bert.…`, `classifier.…`).
    pub fn new(name: String, tensor: Tensor, is_head: bool, grad_slot: Option<GradSlot>) -> Self {
        let row_gradient = name.ends_with("word_embeddings.weight");
        Param { name, tensor, is_head, row_gradient, grad_slot }
    }
}

/// A parameter's optimizer state. `steps` counts the updates it received: as in torch, a
/// parameter without a gradient in a step is skipped and its bias corrections do not advance.
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
    steps: u64,
}

pub struct Adam {
    config: AdamConfig,
    params: Vec<Param>,
    moments: Vec<Moments>,
    /// Calls of [`Adam::step`] so far: the run's step number, for messages.
    updates: usize,
}

/// The exponent bits of an f32: all set for the infinities and NaN, and only for them.
const EXPONENT: u32 = 0x7f80_0000;

/// Whether the values an update wrote were all finite. Per value, its exponent field plus one
/// exponent unit carries into the top bit only when every exponent bit is set (inf, NaN); the
/// results are OR-ed. Integer add, AND and OR vectorize with the update on any SIMD (an integer
/// maximum does not on baseline x86-64 and made the update 1.6× slower), so the check costs no
/// extra pass over the weights.
#[derive(Clone, Copy, Default)]
struct Finite(u32);

impl Finite {
    #[inline(always)]
    fn see(self, value: f32) -> Self {
        Finite(self.0 | ((value.to_bits() & EXPONENT) + (1 << 23)))
    }

    fn and(self, other: Finite) -> Self {
        Finite(self.0 | other.0)
    }

    fn holds(self) -> bool {
        self.0 & (1 << 31) == 0
    }
}

/// Floats per task when an update or a sum of squares is split across threads (fixed, so the
/// gradient norm's partial sums, added in order, do not depend on the thread count).
const CHUNK: usize = 1 << 14;

/// Rows per task of the word embeddings' update.
const ROWS_PER_TASK: usize = 32;

/// The constants of one step of one parameter.
#[derive(Clone, Copy)]
pub(crate) struct StepConsts {
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,
    /// 1/sqrt(1 - beta2^t)
    inv_sqrt_bias2: f32,
    decay: f32,
    grad_scale: f32,
}

impl StepConsts {
    /// The constants of a parameter's `steps`-th update (torch's bias corrections).
    pub(crate) fn of(config: &AdamConfig, steps: u64, lr: f64, grad_scale: f32) -> StepConsts {
        let t = steps as i32;
        let bias1 = 1.0 - config.beta1.powi(t);
        let bias2 = 1.0 - config.beta2.powi(t);
        StepConsts {
            beta1: config.beta1 as f32,
            beta2: config.beta2 as f32,
            eps: config.eps as f32,
            step_size: (lr / bias1) as f32,
            inv_sqrt_bias2: (1.0 / bias2.sqrt()) as f32,
            decay: (1.0 - lr * config.weight_decay) as f32,
            grad_scale,
        }
    }

    /// In the order the GPU's Adam kernel takes them.
    pub(crate) fn as_array(&self) -> [f32; 7] {
        [self.beta1, self.beta2, self.eps, self.step_size, self.inv_sqrt_bias2, self.decay, self.grad_scale]
    }

    /// Update a parameter with its gradient, split across threads when large (the update is
    /// element-wise, so the split does not change a single value).
    fn apply(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) -> Finite {
        if kernels::worth_splitting(p.len()) {
            let chunks = p.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).zip(m.par_chunks_mut(CHUNK)).zip(v.par_chunks_mut(CHUNK));
            chunks.map(|(((p, g), m), v)| self.apply_serial(p, g, m, v)).reduce(Finite::default, Finite::and)
        } else {
            self.apply_serial(p, g, m, v)
        }
    }

    /// Update a slice with its gradient (zipped equal-length slices: no bounds checks, vectorizes).
    /// A non-finite or overflowing gradient shows in `v` (a weight that overflows, in `p`).
    fn apply_serial(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) -> Finite {
        let c = *self;
        let mut finite = Finite::default();
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = g * c.grad_scale;
            *m = c.beta1 * *m + (1.0 - c.beta1) * g;
            *v = c.beta2 * *v + (1.0 - c.beta2) * g * g;
            *p = *p * c.decay - c.step_size * *m / (v.sqrt() * c.inv_sqrt_bias2 + c.eps);
            finite = finite.see(*p).see(*v);
        }
        finite
    }

    /// Update a slice whose gradient is zero.
    fn apply_zero_grad(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32]) -> Finite {
        let c = *self;
        let mut finite = Finite::default();
        for ((p, m), v) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()) {
            *m *= c.beta1;
            *v *= c.beta2;
            *p = *p * c.decay - c.step_size * *m / (v.sqrt() * c.inv_sqrt_bias2 + c.eps);
            finite = finite.see(*p);
        }
        finite
    }
}

fn param_slice<'a>(param: &'a mut CpuStorage, layout: &Layout) -> candle_core::Result<&'a mut [f32]> {
    let (start, end) = layout.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("adam: parameter not contiguous".into()))?;
    match param {
        CpuStorage::F32(values) => Ok(&mut values[start..end]),
        _ => candle_core::bail!("adam: parameters must be f32"),
    }
}

/// Update from a parameter's gradient slot (consumed: the next backward overwrites it).
struct SlotUpdate<'a> {
    moments: RefCell<&'a mut Moments>,
    consts: StepConsts,
    slot: &'a GradSlot,
    finite: Cell<Finite>,
}

impl InplaceOp1 for SlotUpdate<'_> {
    fn name(&self) -> &'static str {
        "webtune-adam-slot"
    }

    fn cpu_fwd(&self, param: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let p = param_slice(param, layout)?;
        let mut moments = self.moments.borrow_mut();
        let Moments { m, v, .. } = &mut **moments;
        if m.len() != p.len() {
            candle_core::bail!("adam: moment sizes do not match the parameter");
        }
        let finite = self.slot.take(|g| self.consts.apply(p, g, m, v)).ok_or_else(|| candle_core::Error::Msg("adam: empty gradient slot".into()))?;
        self.finite.set(finite);
        Ok(())
    }
}

/// Row update: gradient rows for some ids (sorted, distinct), zero elsewhere.
struct RowUpdate<'a> {
    moments: RefCell<&'a mut Moments>,
    consts: StepConsts,
    rows: &'a [(u32, Vec<f32>)],
    width: usize,
    finite: Cell<Finite>,
}

impl InplaceOp1 for RowUpdate<'_> {
    fn name(&self) -> &'static str {
        "webtune-adam-rows"
    }

    fn cpu_fwd(&self, param: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let p = param_slice(param, layout)?;
        let mut moments = self.moments.borrow_mut();
        let Moments { m, v, .. } = &mut **moments;
        let w = self.width;
        let (rows, consts) = (self.rows, self.consts);
        let update_row = |r: usize, p: &mut [f32], m: &mut [f32], v: &mut [f32]| match rows.binary_search_by_key(&(r as u32), |(id, _)| *id) {
            Ok(i) => consts.apply_serial(p, &rows[i].1, m, v),
            Err(_) => consts.apply_zero_grad(p, m, v),
        };
        let finite = if kernels::worth_splitting(p.len()) {
            let chunks = p.par_chunks_mut(w).zip(m.par_chunks_mut(w)).zip(v.par_chunks_mut(w)).enumerate();
            chunks.with_min_len(ROWS_PER_TASK).map(|(r, ((p, m), v))| update_row(r, p, m, v)).reduce(Finite::default, Finite::and)
        } else {
            let rows = p.chunks_exact_mut(w).zip(m.chunks_exact_mut(w)).zip(v.chunks_exact_mut(w)).enumerate();
            rows.map(|(r, ((p, m), v))| update_row(r, p, m, v)).fold(Finite::default(), Finite::and)
        };
        self.finite.set(finite);
        Ok(())
    }
}

/// Σ v² in f64, over fixed chunks whose partial sums are added in order (threads when large).
fn sum_of_squares(values: &[f32]) -> f64 {
    let chunk_sum = |chunk: &[f32]| chunk.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
    let partials: Vec<f64> =
        if kernels::worth_splitting(values.len()) { values.par_chunks(CHUNK).map(chunk_sum).collect() } else { values.chunks(CHUNK).map(chunk_sum).collect() };
    partials.into_iter().sum()
}

/// A parameter's gradient for this step: rows, or in the parameter's slot.
enum Gradient<'a> {
    Rows(&'a RowGradients),
    Slot(GradSlot),
}

impl Gradient<'_> {
    fn sum_of_squares(&self) -> f64 {
        match self {
            Gradient::Rows(rows) => rows.iter().map(|(_, r)| sum_of_squares(r)).sum(),
            Gradient::Slot(slot) => slot.peek(sum_of_squares).unwrap_or(0.0),
        }
    }
}

/// The gradient of `param` in this step, if it got one.
fn gradient_of<'a>(param: &Param, rows: Option<&'a RowGradients>) -> Option<Gradient<'a>> {
    if param.row_gradient {
        return rows.map(Gradient::Rows);
    }
    let slot = param.grad_slot.as_ref()?;
    slot.peek(|_| ()).map(|_| Gradient::Slot(slot.clone()))
}

/// L2 norm of each parameter's gradient (0 when it got none), in parameter order.
pub fn gradient_norms(params: &[Param], rows: Option<&RowGradients>) -> Vec<f64> {
    params.iter().map(|p| gradient_of(p, rows).map_or(0.0, |g| g.sum_of_squares()).sqrt()).collect()
}

impl Adam {
    pub fn new(params: Vec<Param>, config: AdamConfig) -> Self {
        let moments = params
            .iter()
            .map(|p| Moments { m: vec![0.0; p.tensor.elem_count()], v: vec![0.0; p.tensor.elem_count()], steps: 0 })
            .collect();
        Adam { config, params, moments, updates: 0 }
    }

    /// One update. Parameters without a gradient are skipped, as torch does. `max_grad_norm`
    /// clips the global gradient norm first; the unclipped norm is returned when clipping.
    ///
    /// Fails, naming the step, when the gradient norm is not finite (before any update) or when
    /// an update leaves a weight or a second moment infinite or NaN (after it: the weights are
    /// then broken, and the caller must stop using them).
    pub fn step(&mut self, rows: Option<&RowGradients>, lr: f64, head_lr: f64, max_grad_norm: Option<f64>) -> Result<Option<f64>> {
        let squares = if max_grad_norm.is_some() { self.gradient_squares(rows) } else { 0.0 };
        let (norm, grad_scale) = self.clip(squares, max_grad_norm)?;
        self.update(rows, lr, head_lr, grad_scale)?;
        Ok(norm)
    }

    /// Σ g² over every gradient of this step (for the clipping norm).
    pub fn gradient_squares(&self, rows: Option<&RowGradients>) -> f64 {
        self.params.iter().filter_map(|p| gradient_of(p, rows)).map(|g| g.sum_of_squares()).sum()
    }

    /// The step's gradient norm (when clipping) and the scale its gradients get, from the sum
    /// of their squares (this optimizer's and, on the GPU, the device's); counts the step.
    /// Fails, naming the step, when the norm is not finite: then nothing may be updated.
    pub fn clip(&mut self, squares: f64, max_grad_norm: Option<f64>) -> Result<(Option<f64>, f32)> {
        self.updates += 1;
        let Some(max) = max_grad_norm else { return Ok((None, 1.0)) };
        let norm = squares.sqrt();
        if !norm.is_finite() {
            let step = self.updates;
            return Err(Error::Options(format!("the gradient norm became {norm} at step {step}, so no weight was updated: a weight or an input gives a non-finite gradient")));
        }
        // torch.nn.utils.clip_grad_norm_: scale by min(1, max / (norm + 1e-6)).
        Ok((Some(norm), (max / (norm + 1e-6)).min(1.0) as f32))
    }

    /// The update of a step after [`Adam::clip`]: every parameter with a gradient, its
    /// gradient scaled by `grad_scale`. Fails when an update leaves a weight or a second moment
    /// infinite or NaN (the weights are then broken, and the caller must stop using them).
    pub fn update(&mut self, rows: Option<&RowGradients>, lr: f64, head_lr: f64, grad_scale: f32) -> Result<()> {
        let step = self.updates;
        let gradients: Vec<Option<Gradient<'_>>> = self.params.iter().map(|p| gradient_of(p, rows)).collect();
        for ((param, moments), gradient) in self.params.iter().zip(self.moments.iter_mut()).zip(gradients) {
            let Some(gradient) = gradient else { continue };
            moments.steps += 1;
            let lr = if param.is_head { head_lr } else { lr };
            let consts = StepConsts::of(&self.config, moments.steps, lr, grad_scale);
            let moments = RefCell::new(moments);
            let finite = match gradient {
                Gradient::Slot(slot) => {
                    let update = SlotUpdate { moments, consts, slot: &slot, finite: Cell::default() };
                    param.tensor.inplace_op1(&update)?;
                    update.finite.get()
                }
                Gradient::Rows(rows) => {
                    let width = param.tensor.dims().last().copied().unwrap_or(1);
                    let update = RowUpdate { moments, consts, rows, width, finite: Cell::default() };
                    param.tensor.inplace_op1(&update)?;
                    update.finite.get()
                }
            };
            if !finite.holds() {
                return Err(non_finite_update(step, &param.name));
            }
        }
        Ok(())
    }

    /// The parameters this optimizer updates.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The step number of the last [`Adam::clip`].
    pub fn updates(&self) -> usize {
        self.updates
    }
}

/// The error of an update that left `name` infinite or NaN at `step`.
pub fn non_finite_update(step: usize, name: &str) -> Error {
    Error::Options(format!(
        "the update of step {step} made {name} infinite or NaN: its gradient was not finite or too large for float32; lower the learning rate, set a maximum gradient norm, or check the model's weights"
    ))
}

/// Number of warm-up steps for a warm-up ratio, as transformers' `TrainingArguments` computes
/// it: ceil(ratio × total steps).
pub fn warmup_steps(warmup_ratio: f64, total_steps: usize) -> usize {
    (warmup_ratio * total_steps as f64).ceil() as usize
}

/// The learning-rate multiplier of the optimizer step with 0-based index `step`, exactly as
/// transformers' `get_linear_schedule_with_warmup` (a `LambdaLR` stepped after each optimizer
/// step, so the first step uses factor(0) — zero when there is a warm-up).
pub fn schedule_factor(schedule: Schedule, step: usize, total_steps: usize, warmup_steps: usize) -> f64 {
    match schedule {
        Schedule::Constant => 1.0,
        Schedule::Linear if step < warmup_steps => step as f64 / warmup_steps.max(1) as f64,
        Schedule::Linear => (total_steps.saturating_sub(step) as f64 / total_steps.saturating_sub(warmup_steps).max(1) as f64).max(0.0),
    }
}
