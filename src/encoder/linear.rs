//! The values of a Linear layer for one pass — its weight and bias, and its LoRA adapter's
//! when it has one — with their forward and backward products; read access to a tensor's
//! values ([`Values`]); dropout masks applied to a buffer.
use std::ops::Deref;

use candle_core::{CpuStorage, Storage, Tensor};

use crate::kernels::{self, Mat};
use crate::params::{Adapter, Adapters, GradSlot, Linear};
use crate::types::Projection;
use crate::{Error, Result};

/// Read access to a tensor's values for the duration of a pass (no copy).
pub struct Values<'a> {
    guard: Box<dyn Deref<Target = Storage> + Sync + 'a>,
    start: usize,
    end: usize,
}

impl<'a> Values<'a> {
    pub fn of(t: &'a Tensor) -> Result<Self> {
        let (guard, layout) = t.storage_and_layout();
        let (start, end) = layout.contiguous_offsets().ok_or_else(|| Error::Model("a parameter is not contiguous".into()))?;
        match &*guard {
            Storage::Cpu(CpuStorage::F32(_)) => Ok(Values { guard: Box::new(guard), start, end }),
            _ => Err(Error::Model("webtune runs f32 parameters on the CPU device".into())),
        }
    }

    pub fn get(&self) -> &[f32] {
        match &**self.guard {
            Storage::Cpu(CpuStorage::F32(v)) => &v[self.start..self.end],
            _ => unreachable!("checked in Values::of"),
        }
    }
}

/// The values of one Linear, and of its LoRA adapter when it has one.
pub(super) struct LinearValues<'a> {
    w: Values<'a>,
    b: Values<'a>,
    pub(super) adapter: Option<AdapterValues<'a>>,
}

/// A LoRA adapter's values (Aᵀ: in × r, Bᵀ: r × out), scale, and gradient slots while training.
pub(super) struct AdapterValues<'a> {
    a: Values<'a>,
    b: Values<'a>,
    rank: usize,
    scale: f32,
    grads: Option<&'a Adapter<GradSlot>>,
}

/// The adapters a pass runs with: values, and gradient slots in a training step.
#[derive(Clone, Copy)]
pub struct AdapterSet<'a> {
    pub adapters: &'a Adapters,
    pub grads: Option<&'a Adapters<GradSlot>>,
}

impl<'a> LinearValues<'a> {
    pub(super) fn of(l: &'a Linear) -> Result<Self> {
        Ok(LinearValues { w: Values::of(&l.weight_t)?, b: Values::of(&l.bias)?, adapter: None })
    }

    /// With the adapter of `projection` in `layer`, if `set` has one there.
    pub(super) fn adapted(l: &'a Linear, set: Option<AdapterSet<'a>>, layer: usize, projection: Projection) -> Result<Self> {
        let mut values = Self::of(l)?;
        if let Some(set) = set {
            if let Some(adapter) = &set.adapters.layers[layer][projection as usize] {
                values.adapter = Some(AdapterValues {
                    a: Values::of(&adapter.a_t)?,
                    b: Values::of(&adapter.b_t)?,
                    rank: set.adapters.rank,
                    scale: set.adapters.scale,
                    grads: set.grads.and_then(|g| g.layers[layer][projection as usize].as_ref()),
                });
            }
        }
        Ok(values)
    }

    pub(super) fn inputs(&self) -> usize {
        self.w.get().len() / self.outputs()
    }

    /// y = x·W + b, plus the adapter's scale · (x ⊙ mask)·Aᵀ·Bᵀ when there is one.
    pub(super) fn forward_adapted(&self, x: &[f32], rows: usize, mask: &Option<Vec<f32>>) -> Vec<f32> {
        let mut y = self.forward(x, rows);
        let Some(ad) = &self.adapter else { return y };
        let (input, out, r) = (self.inputs(), self.outputs(), ad.rank);
        let x = masked(x, mask);
        let u = ad.down(&x, rows, input);
        kernels::gemm(&mut y, out, true, rows, out, r, Mat::rows(&u, r), Mat::rows(ad.b.get(), out));
        y
    }

    /// The backward of [`Self::forward_adapted`]: the weight's, bias's and adapter's gradients into
    /// their slots (those that train), and dx, through the adapter too.
    pub(super) fn backward_adapted(&self, grads: &Linear<Option<GradSlot>>, x: &[f32], dy: &[f32], rows: usize, mask: &Option<Vec<f32>>) -> Vec<f32> {
        let mut dx = self.backward(grads, x, dy, rows, true).expect("dx was asked for");
        self.backward_adapter(x, dy, rows, mask, Some(&mut dx));
        dx
    }

    /// The adapter's part of the backward pass: dAᵀ and dBᵀ into their slots and, when wanted,
    /// its contribution added to dx. The frozen weight's own gradient is never computed.
    pub(super) fn backward_adapter(&self, x: &[f32], dy: &[f32], rows: usize, mask: &Option<Vec<f32>>, dx: Option<&mut [f32]>) {
        let Some(ad) = &self.adapter else { return };
        let (input, out, r) = (self.inputs(), self.outputs(), ad.rank);
        let x = masked(x, mask);
        if let Some(grads) = ad.grads {
            let u = ad.down(&x, rows, input);
            // dBᵀ (r × out) [+]= (scale·u)ᵀ · dy
            grads.b_t.write(|g, acc| kernels::gemm(g, out, acc, r, out, rows, Mat::transposed(&u, r), Mat::rows(dy, out)));
        }
        // du = scale · dy · B (rows × r)
        let mut du = vec![0f32; rows * r];
        kernels::gemm(&mut du, r, false, rows, r, out, Mat::rows(dy, out), Mat::transposed(ad.b.get(), out));
        du.iter_mut().for_each(|v| *v *= ad.scale);
        if let Some(grads) = ad.grads {
            // dAᵀ (in × r) [+]= (x ⊙ mask)ᵀ · du
            grads.a_t.write(|g, acc| kernels::gemm(g, r, acc, input, r, rows, Mat::transposed(&x, input), Mat::rows(&du, r)));
        }
        let Some(dx) = dx else { return };
        match mask {
            None => kernels::gemm(dx, input, true, rows, input, r, Mat::rows(&du, r), Mat::transposed(ad.a.get(), r)),
            Some(mask) => {
                let mut dxd = vec![0f32; rows * input];
                kernels::gemm(&mut dxd, input, false, rows, input, r, Mat::rows(&du, r), Mat::transposed(ad.a.get(), r));
                dx.iter_mut().zip(dxd.iter().zip(mask)).for_each(|(d, (g, m))| *d += g * m);
            }
        }
    }

    pub(super) fn outputs(&self) -> usize {
        self.b.get().len()
    }

    /// y (rows × out) = x (rows × in) · W + b.
    pub(super) fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        kernels::linear(x, self.w.get(), self.b.get(), rows, self.inputs())
    }

    /// Backward of y = x·W + b given dy: the weight and bias gradients into their slots (when
    /// they train) and, when `want_dx`, dx as a new matrix — the two at once when there are
    /// threads for it (they are independent and cost the same).
    pub(super) fn backward(&self, grads: &Linear<Option<GradSlot>>, x: &[f32], dy: &[f32], rows: usize, want_dx: bool) -> Option<Vec<f32>> {
        let (out, input) = (self.outputs(), self.inputs());
        let dx = || kernels::product(rows, input, out, Mat::rows(dy, out), Mat::transposed(self.w.get(), out));
        kernels::join(self.multiply_adds(rows), || self.param_grads(grads, x, dy, rows), || want_dx.then(dx)).1
    }

    /// As [`Self::backward`], with dx added to `dx`.
    pub(super) fn backward_adding_dx(&self, grads: &Linear<Option<GradSlot>>, x: &[f32], dy: &[f32], rows: usize, dx: &mut [f32]) {
        kernels::join(self.multiply_adds(rows), || self.param_grads(grads, x, dy, rows), || self.add_input_grad(dx, dy, rows));
    }

    /// Multiply-adds of one product of `rows` rows with this Linear's weight.
    pub(super) fn multiply_adds(&self, rows: usize) -> usize {
        rows * self.w.get().len()
    }

    /// The weight and bias gradients of y = x·W + b into their slots, when they train.
    pub(super) fn param_grads(&self, grads: &Linear<Option<GradSlot>>, x: &[f32], dy: &[f32], rows: usize) {
        let out = self.outputs();
        let input = self.inputs();
        if let Some(slot) = &grads.weight_t {
            // dWᵀ (in × out) [+]= xᵀ (in × rows) · dy (rows × out)
            slot.write(|g, acc| kernels::gemm(g, out, acc, input, out, rows, Mat::transposed(x, input), Mat::rows(dy, out)));
        }
        if let Some(slot) = &grads.bias {
            slot.write(|g, acc| {
                if !acc {
                    g.fill(0.0);
                }
                kernels::add_column_sums(g, &dy[..rows * out]);
            });
        }
    }

    /// dx (rows × in) += dy (rows × out) · Wᵀ (out × in).
    pub(super) fn add_input_grad(&self, dx: &mut [f32], dy: &[f32], rows: usize) {
        let (out, input) = (self.outputs(), self.inputs());
        kernels::gemm(dx, input, true, rows, input, out, Mat::rows(dy, out), Mat::transposed(self.w.get(), out));
    }
}

impl AdapterValues<'_> {
    /// scale · x·Aᵀ (rows × r): the adapter's low-rank activation, scaled.
    fn down(&self, x: &[f32], rows: usize, input: usize) -> Vec<f32> {
        let mut u = vec![0f32; rows * self.rank];
        kernels::gemm(&mut u, self.rank, false, rows, self.rank, input, Mat::rows(x, input), Mat::rows(self.a.get(), self.rank));
        u.iter_mut().for_each(|v| *v *= self.scale);
        u
    }
}

/// `x ⊙ mask` when there is a mask, else `x` itself.
fn masked<'x>(x: &'x [f32], mask: &Option<Vec<f32>>) -> std::borrow::Cow<'x, [f32]> {
    match mask {
        Some(mask) => std::borrow::Cow::Owned(x.iter().zip(mask).map(|(a, m)| a * m).collect()),
        None => std::borrow::Cow::Borrowed(x),
    }
}

/// x ⊙ mask, in place, when there is a mask.
pub(super) fn apply(x: &mut [f32], mask: &Option<Vec<f32>>) {
    if let Some(mask) = mask {
        kernels::multiply_inplace(x, mask);
    }
}
