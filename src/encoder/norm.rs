//! LayerNorm for one pass: forward (keeping what the backward needs when training) and
//! backward, with γ's and β's gradients into their slots.
use super::linear::Values;
use crate::kernels;
use crate::params::{GradSlot, LayerNorm};

/// A LayerNorm's γ and β for a pass.
pub(super) struct NormValues<'a> {
    pub(super) gamma: Values<'a>,
    pub(super) beta: Values<'a>,
}

/// What a LayerNorm's backward needs from its forward: the normalised input and 1/σ per row
/// (both empty when the forward kept nothing).
pub(super) struct NormTape {
    xhat: Vec<f32>,
    rstd: Vec<f32>,
}

impl NormValues<'_> {
    /// LayerNorm over the rows of `x`, and, when `keep`, what its backward needs.
    pub(super) fn forward(&self, x: &[f32], eps: f32, keep: bool) -> (Vec<f32>, NormTape) {
        let rows = x.len() / self.gamma.get().len();
        let mut y = vec![0f32; x.len()];
        let mut tape = if keep { NormTape { xhat: vec![0f32; x.len()], rstd: vec![0f32; rows] } } else { NormTape { xhat: Vec::new(), rstd: Vec::new() } };
        kernels::layer_norm(&mut y, x, self.gamma.get(), self.beta.get(), eps, keep.then_some((&mut tape.xhat[..], &mut tape.rstd[..])));
        (y, tape)
    }

    /// dx from dy; dγ and dβ into `grads`' slots when they train.
    pub(super) fn backward(&self, grads: &LayerNorm<Option<GradSlot>>, tape: &NormTape, dy: &[f32]) -> Vec<f32> {
        let mut dx = vec![0f32; dy.len()];
        kernels::layer_norm_backward(&mut dx, dy, &tape.xhat, &tape.rstd, self.gamma.get());
        norm_grads(grads.weight.as_ref(), grads.bias.as_ref(), dy, &tape.xhat);
        dx
    }
}

/// dgamma += Σ dy ⊙ xhat, dbeta += Σ dy over rows, into their slots when they train.
fn norm_grads(gamma: Option<&GradSlot>, beta: Option<&GradSlot>, dy: &[f32], xhat: &[f32]) {
    if let Some(slot) = gamma {
        let products: Vec<f32> = dy.iter().zip(xhat).map(|(a, b)| a * b).collect();
        slot.write(|g, acc| {
            if !acc {
                g.fill(0.0);
            }
            kernels::add_column_sums(g, &products);
        });
    }
    if let Some(slot) = beta {
        slot.write(|g, acc| {
            if !acc {
                g.fill(0.0);
            }
            kernels::add_column_sums(g, dy);
        });
    }
}
