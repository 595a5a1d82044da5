//! BERT's forward and backward passes, written out by hand over plain buffers with the
//! kernels of [`crate::kernels`]: embeddings, self-attention, feed-forward, LayerNorms,
//! dropout, pooler, classifier and the cross-entropy loss.
//!
//! Why by hand: candle 0.11's autograd drops gradients through its LayerNorm and softmax, and
//! costs a fresh zero-filled gradient tensor plus an add for every node, transposed copies for
//! batched attention products, and a separate pass per element-wise op — about half of a
//! training step (measured with perf). Here each product writes into its destination, weight
//! gradients go straight into the gradient buffers the optimizer reads ([`GradSlot`]), the
//! attention runs per (sentence, head) on strided views of Q, K and V, and the loops split
//! across threads (see [`crate::kernels`]). The maths is transformers' `BertModel` +
//! `BertForSequenceClassification`; `tests/golden.rs` checks it against PyTorch and
//! `tests/gradcheck.rs` checks the backward against finite differences.
//!
//! Dropout masks are drawn in the order of the forward pass (embeddings; per layer: attention
//! probabilities, attention output, feed-forward output; classifier) from the run's seeded RNG,
//! so the same seed gives the same masks on every target and thread count.
use std::ops::Deref;

use candle_core::{CpuStorage, Storage, Tensor};
use rayon::prelude::*;

use crate::config::BertConfig;
use crate::kernels::{self, Mat};
use crate::params::{Adapter, Adapters, BertGrads, BertWeights, Dropout, EncoderLayer, GradSlot, Linear, RowGradients};
use crate::types::Projection;
use crate::rng::SeededRng;
use crate::tokenize::Batch;
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
struct LinearValues<'a> {
    w: Values<'a>,
    b: Values<'a>,
    adapter: Option<AdapterValues<'a>>,
}

/// A LoRA adapter's values (Aᵀ: in × r, Bᵀ: r × out), scale, and gradient slots while training.
struct AdapterValues<'a> {
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
    fn of(l: &'a Linear) -> Result<Self> {
        Ok(LinearValues { w: Values::of(&l.weight_t)?, b: Values::of(&l.bias)?, adapter: None })
    }

    /// With the adapter of `projection` in `layer`, if `set` has one there.
    fn adapted(l: &'a Linear, set: Option<AdapterSet<'a>>, layer: usize, projection: Projection) -> Result<Self> {
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

    fn inputs(&self) -> usize {
        self.w.get().len() / self.outputs()
    }

    /// y = x·W + b, plus the adapter's scale · (x ⊙ mask)·Aᵀ·Bᵀ when there is one.
    fn forward_adapted(&self, x: &[f32], rows: usize, mask: &Option<Vec<f32>>) -> Vec<f32> {
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
    fn backward_adapted(&self, grads: &Linear<Option<GradSlot>>, x: &[f32], dy: &[f32], rows: usize, mask: &Option<Vec<f32>>) -> Vec<f32> {
        let mut dx = self.backward(grads, x, dy, rows, true).expect("dx was asked for");
        self.backward_adapter(x, dy, rows, mask, Some(&mut dx));
        dx
    }

    /// The adapter's part of the backward pass: dAᵀ and dBᵀ into their slots and, when wanted,
    /// its contribution added to dx. The frozen weight's own gradient is never computed.
    fn backward_adapter(&self, x: &[f32], dy: &[f32], rows: usize, mask: &Option<Vec<f32>>, dx: Option<&mut [f32]>) {
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

    fn outputs(&self) -> usize {
        self.b.get().len()
    }

    /// y (rows × out) = x (rows × in) · W + b.
    fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        kernels::linear(x, self.w.get(), self.b.get(), rows, self.inputs())
    }

    /// Backward of y = x·W + b given dy: the weight and bias gradients into their slots (when
    /// they train) and, when `want_dx`, dx as a new matrix — the two at once when there are
    /// threads for it (they are independent and cost the same).
    fn backward(&self, grads: &Linear<Option<GradSlot>>, x: &[f32], dy: &[f32], rows: usize, want_dx: bool) -> Option<Vec<f32>> {
        let (out, input) = (self.outputs(), self.inputs());
        let dx = || kernels::product(rows, input, out, Mat::rows(dy, out), Mat::transposed(self.w.get(), out));
        kernels::join(self.multiply_adds(rows), || self.param_grads(grads, x, dy, rows), || want_dx.then(dx)).1
    }

    /// As [`Self::backward`], with dx added to `dx`.
    fn backward_adding_dx(&self, grads: &Linear<Option<GradSlot>>, x: &[f32], dy: &[f32], rows: usize, dx: &mut [f32]) {
        kernels::join(self.multiply_adds(rows), || self.param_grads(grads, x, dy, rows), || self.add_input_grad(dx, dy, rows));
    }

    /// Multiply-adds of one product of `rows` rows with this Linear's weight.
    fn multiply_adds(&self, rows: usize) -> usize {
        rows * self.w.get().len()
    }

    /// The weight and bias gradients of y = x·W + b into their slots, when they train.
    fn param_grads(&self, grads: &Linear<Option<GradSlot>>, x: &[f32], dy: &[f32], rows: usize) {
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
    fn add_input_grad(&self, dx: &mut [f32], dy: &[f32], rows: usize) {
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

struct NormValues<'a> {
    gamma: Values<'a>,
    beta: Values<'a>,
}

/// What a LayerNorm's backward needs from its forward: the normalised input and 1/σ per row
/// (both empty when the forward kept nothing).
struct NormTape {
    xhat: Vec<f32>,
    rstd: Vec<f32>,
}

impl NormValues<'_> {
    /// LayerNorm over the rows of `x`, and, when `keep`, what its backward needs.
    fn forward(&self, x: &[f32], eps: f32, keep: bool) -> (Vec<f32>, NormTape) {
        let rows = x.len() / self.gamma.get().len();
        let mut y = vec![0f32; x.len()];
        let mut tape = if keep { NormTape { xhat: vec![0f32; x.len()], rstd: vec![0f32; rows] } } else { NormTape { xhat: Vec::new(), rstd: Vec::new() } };
        kernels::layer_norm(&mut y, x, self.gamma.get(), self.beta.get(), eps, keep.then_some((&mut tape.xhat[..], &mut tape.rstd[..])));
        (y, tape)
    }

    /// dx from dy; dγ and dβ into `grads`' slots when they train.
    fn backward(&self, grads: &crate::params::LayerNorm<Option<GradSlot>>, tape: &NormTape, dy: &[f32]) -> Vec<f32> {
        let mut dx = vec![0f32; dy.len()];
        kernels::layer_norm_backward(&mut dx, dy, &tape.xhat, &tape.rstd, self.gamma.get());
        norm_grads(grads.weight.as_ref(), grads.bias.as_ref(), dy, &tape.xhat);
        dx
    }
}

struct LayerValues<'a> {
    query: LinearValues<'a>,
    key: LinearValues<'a>,
    value: LinearValues<'a>,
    attention_output: LinearValues<'a>,
    attention_norm: NormValues<'a>,
    intermediate: LinearValues<'a>,
    output: LinearValues<'a>,
    output_norm: NormValues<'a>,
}

impl<'a> LayerValues<'a> {
    /// Layer `index` of the model, with its adapters from `set`.
    fn of(l: &'a EncoderLayer, set: Option<AdapterSet<'a>>, index: usize) -> Result<Self> {
        let norm = |n: &'a crate::params::LayerNorm| -> Result<NormValues<'a>> { Ok(NormValues { gamma: Values::of(&n.weight)?, beta: Values::of(&n.bias)? }) };
        let linear = |w: &'a Linear, p: Projection| LinearValues::adapted(w, set, index, p);
        Ok(LayerValues {
            query: linear(&l.query, Projection::Query)?,
            key: linear(&l.key, Projection::Key)?,
            value: linear(&l.value, Projection::Value)?,
            attention_output: linear(&l.attention_output, Projection::AttentionOutput)?,
            attention_norm: norm(&l.attention_norm)?,
            intermediate: linear(&l.intermediate, Projection::Intermediate)?,
            output: linear(&l.output, Projection::Output)?,
            output_norm: norm(&l.output_norm)?,
        })
    }

    /// Input-dropout masks of this layer's adapters, drawn in forward order (training only).
    fn adapter_masks(&self, dropout: &mut Option<DropoutSource<'_>>, s: Shape) -> [Option<Vec<f32>>; 6] {
        let mut masks: [Option<Vec<f32>>; 6] = Default::default();
        for p in Projection::ALL {
            let linear = self.projection(p);
            if linear.adapter.is_some() {
                // Drawn for every token (the same RNG stream whatever the layer computes), kept
                // for the rows the projection runs on.
                let mask = draw_mask(dropout, s.tokens() * linear.inputs(), |d| d.adapter);
                let rows_kept = if matches!(p, Projection::Key | Projection::Value) { s.len } else { s.queries };
                masks[p as usize] = first_rows_of_mask(mask, s.len, rows_kept, linear.inputs());
            }
        }
        masks
    }

    fn projection(&self, p: Projection) -> &LinearValues<'a> {
        match p {
            Projection::Query => &self.query,
            Projection::Key => &self.key,
            Projection::Value => &self.value,
            Projection::AttentionOutput => &self.attention_output,
            Projection::Intermediate => &self.intermediate,
            Projection::Output => &self.output,
        }
    }
}

/// The shape of one batch, and of the query positions a layer computes.
#[derive(Clone, Copy)]
struct Shape {
    batch: usize,
    len: usize,
    /// Query positions computed per sentence: all `len`, or only the first ([CLS]) in the top
    /// layer, whose other outputs nothing reads (see [`Shape::cls_only`]).
    queries: usize,
    hidden: usize,
    heads: usize,
    head_dim: usize,
    eps: f32,
}

impl Shape {
    fn of(config: &BertConfig, batch: &Batch) -> Self {
        Shape {
            batch: batch.size,
            len: batch.seq_len,
            queries: batch.seq_len,
            hidden: config.hidden_size,
            heads: config.num_attention_heads,
            head_dim: config.head_dim(),
            eps: config.layer_norm_eps as f32,
        }
    }

    fn tokens(&self) -> usize {
        self.batch * self.len
    }

    /// Rows the layer computes after the key and value projections (batch × queries).
    fn query_tokens(&self) -> usize {
        self.batch * self.queries
    }

    fn all_queries(&self) -> bool {
        self.queries == self.len
    }

    /// Attention probabilities the layer computes: per sentence and head, queries × len.
    fn scores(&self) -> usize {
        self.batch * self.heads * self.queries * self.len
    }

    /// Attention probabilities of a layer computing every query (the attention dropout mask's
    /// size whatever the layer computes, so that the RNG stream does not depend on it).
    fn all_scores(&self) -> usize {
        self.batch * self.heads * self.len * self.len
    }

    /// The same layer computed for the [CLS] query alone. The classifier reads only the top
    /// layer's [CLS] row (through the pooler), and that row needs every token's key and value
    /// but no other token's query, attention, feed-forward or LayerNorm: the same maths with
    /// 10 of the top layer's 12 h² products per token left out, forward and backward
    /// (transformers computes them all).
    fn cls_only(self) -> Shape {
        Shape { queries: 1, ..self }
    }
}

/// The first `keep` rows of every `block` rows of `width` values: the rows of a tensor over all
/// tokens that a [CLS]-only layer computes with. Borrowed when every row is kept.
fn first_rows(data: &[f32], block: usize, keep: usize, width: usize) -> std::borrow::Cow<'_, [f32]> {
    if keep == block {
        return std::borrow::Cow::Borrowed(data);
    }
    std::borrow::Cow::Owned(data.chunks_exact(block * width).flat_map(|rows| rows[..keep * width].iter().copied()).collect())
}

/// [`first_rows`] of a dropout mask.
fn first_rows_of_mask(mask: Option<Vec<f32>>, block: usize, keep: usize, width: usize) -> Option<Vec<f32>> {
    mask.map(|m| if keep == block { m } else { first_rows(&m, block, keep, width).into_owned() })
}

/// The inverse of [`first_rows`] for a gradient: a tensor over all `block` rows of every block,
/// zero except the first `keep` rows, which are `part`'s.
fn spread_first_rows(part: &[f32], block: usize, keep: usize, width: usize) -> Vec<f32> {
    let mut full = vec![0f32; part.len() / keep * block];
    for (rows, kept) in full.chunks_exact_mut(block * width).zip(part.chunks_exact(keep * width)) {
        rows[..keep * width].copy_from_slice(kept);
    }
    full
}

/// Dropout masks come from here during a training forward pass (None: eval mode).
pub struct DropoutSource<'a> {
    pub rng: &'a mut SeededRng,
    pub p: Dropout,
}

/// An inverted-dropout mask of `n` values for probability `p`, or None when p is 0.
fn draw_mask(source: &mut Option<DropoutSource<'_>>, n: usize, p: impl Fn(&Dropout) -> f32) -> Option<Vec<f32>> {
    let source = source.as_mut()?;
    let p = p(&source.p);
    (p > 0.0).then(|| kernels::dropout_mask(source.rng, n, p))
}

/// A layer's dropout masks, drawn in this order: attention probabilities, the attention
/// block's output, the feed-forward block's output — each cut to the layer's query rows.
fn layer_masks(dropout: &mut Option<DropoutSource<'_>>, s: Shape) -> [Option<Vec<f32>>; 3] {
    let hidden = s.tokens() * s.hidden;
    let attention = first_rows_of_mask(draw_mask(dropout, s.all_scores(), |p| p.attention), s.len, s.queries, s.len);
    let attention_output = first_rows_of_mask(draw_mask(dropout, hidden, |p| p.hidden), s.len, s.queries, s.hidden);
    let output = first_rows_of_mask(draw_mask(dropout, hidden, |p| p.hidden), s.len, s.queries, s.hidden);
    [attention, attention_output, output]
}

fn apply(x: &mut [f32], mask: &Option<Vec<f32>>) {
    if let Some(mask) = mask {
        kernels::multiply_inplace(x, mask);
    }
}

/// A pointer the attention's parallel loop writes through: each (sentence, head) task writes
/// only its own block of rows × head columns.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: the tasks that share it write disjoint elements (see `attention_forward`/`_backward`).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// Run `f(sentence, head, scores_block)` for every (sentence, head), in parallel when large.
fn for_heads(scores: &mut [f32], s: Shape, f: impl Fn(usize, usize, &mut [f32]) + Sync + Send) {
    let block = s.queries * s.len;
    let work = s.scores() * s.head_dim;
    if work >= kernels::ATTENTION_PARALLEL_MIN_WORK && rayon::current_num_threads() > 1 {
        scores.par_chunks_mut(block).enumerate().for_each(|(i, sc)| f(i / s.heads, i % s.heads, sc));
    } else {
        scores.chunks_mut(block).enumerate().for_each(|(i, sc)| f(i / s.heads, i % s.heads, sc));
    }
}

/// Self-attention forward: `probs` (softmax of the masked, scaled scores; per sentence and
/// head, queries × len) and `context` (query tokens × hidden) from q (query tokens × hidden),
/// k and v (tokens × hidden).
#[allow(clippy::too_many_arguments)] // the attention block's inputs and outputs, all distinct
fn attention_forward(q: &[f32], k: &[f32], v: &[f32], mask: &[f32], s: Shape, probs: &mut [f32], drop: &Option<Vec<f32>>, context: &mut [f32]) {
    let (l, lq, h, d) = (s.len, s.queries, s.hidden, s.head_dim);
    let scale = 1.0 / (d as f32).sqrt();
    let out = SharedOut(context.as_mut_ptr());
    for_heads(probs, s, |b, hd, p| {
        // Capture the Send wrapper itself, not its raw-pointer field (edition 2021 closures
        // capture disjoint fields, and a bare pointer is not Send).
        #[allow(clippy::redundant_locals)]
        let out = out;
        // SAFETY: p is this task's own (queries × len) block; the context block written below
        // is rows b·lq.. of columns hd·d.., disjoint from every other task's.
        unsafe {
            kernels::gemm_serial(p.as_mut_ptr(), l, false, lq, l, d, Mat::block(q, h, b * lq, hd * d), Mat::block_transposed(k, h, b * l, hd * d), scale);
        }
        let key_mask = &mask[b * l..(b + 1) * l];
        for row in p.chunks_exact_mut(l) {
            masked_softmax(row, key_mask);
        }
        let base = (b * s.heads + hd) * lq * l;
        with_dropped(p, drop.as_ref().map(|m| &m[base..base + lq * l]), |weights| unsafe {
            kernels::gemm_serial(out.0.add(b * lq * h + hd * d), h, false, lq, d, l, Mat::rows(weights, l), Mat::block(v, h, b * l, hd * d), 1.0);
        });
    });
}

thread_local! {
    /// Each thread's buffer for one head's dropped-out attention probabilities.
    static DROPPED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Run `f` on the probabilities after attention dropout (`probs ⊙ mask`, in a reused
/// per-thread buffer), or on `probs` themselves without dropout.
fn with_dropped(probs: &[f32], mask: Option<&[f32]>, f: impl FnOnce(&[f32])) {
    let Some(mask) = mask else { return f(probs) };
    DROPPED.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        buffer.extend(probs.iter().zip(mask).map(|(p, m)| p * m));
        f(&buffer);
    });
}

/// Softmax over the keys that are real tokens (mask 1); padding keys get probability 0, as
/// transformers' additive mask of the dtype's minimum gives.
fn masked_softmax(row: &mut [f32], key_mask: &[f32]) {
    let mut max = f32::NEG_INFINITY;
    for (v, m) in row.iter().zip(key_mask) {
        if *m > 0.0 && *v > max {
            max = *v;
        }
    }
    let mut sum = 0f32;
    for (v, m) in row.iter_mut().zip(key_mask) {
        *v = if *m > 0.0 { kernels::exp(*v - max) } else { 0.0 };
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// Self-attention backward: dq (query tokens × hidden), dk, dv (tokens × hidden), overwritten,
/// from dcontext (query tokens × hidden).
#[allow(clippy::too_many_arguments)]
fn attention_backward(dcontext: &[f32], q: &[f32], k: &[f32], v: &[f32], probs: &[f32], drop: &Option<Vec<f32>>, s: Shape, dq: &mut [f32], dk: &mut [f32], dv: &mut [f32]) {
    let (l, lq, h, d) = (s.len, s.queries, s.hidden, s.head_dim);
    let scale = 1.0 / (d as f32).sqrt();
    let (oq, ok, ov) = (SharedOut(dq.as_mut_ptr()), SharedOut(dk.as_mut_ptr()), SharedOut(dv.as_mut_ptr()));
    let mut scratch = vec![0f32; s.scores()];
    for_heads(&mut scratch, s, |b, hd, ds| {
        let (oq, ok, ov) = (oq, ok, ov);
        let base = (b * s.heads + hd) * lq * l;
        let p = &probs[base..base + lq * l];
        let (block, query_block) = (b * l * h + hd * d, b * lq * h + hd * d);
        // SAFETY: `ds` is this task's scratch block; the dq blocks (rows b·lq..) and dk, dv
        // blocks (rows b·l..), columns hd·d.., are disjoint from every other task's.
        with_dropped(p, drop.as_ref().map(|m| &m[base..base + lq * l]), |dropped| unsafe {
            // dV = dropped_probsᵀ · dcontext
            kernels::gemm_serial(ov.0.add(block), h, false, l, d, lq, Mat::transposed(dropped, l), Mat::block(dcontext, h, b * lq, hd * d), 1.0);
        });
        unsafe {
            // d(dropped probs) = dcontext · Vᵀ
            kernels::gemm_serial(ds.as_mut_ptr(), l, false, lq, l, d, Mat::block(dcontext, h, b * lq, hd * d), Mat::block_transposed(v, h, b * l, hd * d), 1.0);
        }
        if let Some(m) = drop {
            ds.iter_mut().zip(&m[base..base + lq * l]).for_each(|(g, m)| *g *= m);
        }
        kernels::softmax_backward_rows(ds, p, l);
        unsafe {
            // dQ = scale · dscores · K ; dK = scale · dscoresᵀ · Q
            kernels::gemm_serial(oq.0.add(query_block), h, false, lq, d, l, Mat::rows(ds, l), Mat::block(k, h, b * l, hd * d), scale);
            kernels::gemm_serial(ok.0.add(block), h, false, l, d, lq, Mat::transposed(ds, l), Mat::block(q, h, b * lq, hd * d), scale);
        }
    });
}

/// What a trained layer's forward pass keeps for its backward pass. Tensors after the key and
/// value projections have the layer's query rows (`Shape::query_tokens`).
struct LayerTape {
    input: Vec<f32>,
    /// The input's query rows, when the layer computes only some ([`Shape::cls_only`]).
    query_input: Option<Vec<f32>>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    probs: Vec<f32>,
    attention_drop: Option<Vec<f32>>,
    context: Vec<f32>,
    drop1: Option<Vec<f32>>,
    norm1: NormTape,
    /// The attention block's output (LayerNorm 1), input of the feed-forward block.
    attended: Vec<f32>,
    /// The intermediate product before GELU, and after.
    inner: Vec<f32>,
    activated: Vec<f32>,
    drop2: Option<Vec<f32>>,
    norm2: NormTape,
    /// Input-dropout masks of the layer's LoRA adapters, by projection.
    adapter_masks: [Option<Vec<f32>>; 6],
}

/// One encoder layer forward over `x` (tokens × hidden); returns its output (query tokens ×
/// hidden) and, when `keep`, what the backward needs.
fn layer_forward(w: &LayerValues<'_>, x: Vec<f32>, mask: &[f32], s: Shape, dropout: &mut Option<DropoutSource<'_>>, keep: bool) -> (Vec<f32>, Option<LayerTape>) {
    let (t, tq, h) = (s.tokens(), s.query_tokens(), s.hidden);
    let am = w.adapter_masks(dropout, s);
    let query_input = (!s.all_queries()).then(|| first_rows(&x, s.len, s.queries, h).into_owned());
    let xq: &[f32] = query_input.as_deref().unwrap_or(&x);
    // The three projections and the layer's dropout masks are independent: on several threads
    // they run side by side.
    let projections = || {
        kernels::join(w.query.multiply_adds(tq + 2 * t), || w.query.forward_adapted(xq, tq, &am[Projection::Query as usize]), || {
            kernels::join(w.key.multiply_adds(2 * t), || w.key.forward_adapted(&x, t, &am[Projection::Key as usize]), || {
                w.value.forward_adapted(&x, t, &am[Projection::Value as usize])
            })
        })
    };
    let ((q, (k, v)), [attention_drop, drop1, drop2]) = kernels::join(w.query.multiply_adds(tq + 2 * t), projections, || layer_masks(dropout, s));
    let mut probs = vec![0f32; s.scores()];
    let mut context = vec![0f32; tq * h];
    attention_forward(&q, &k, &v, mask, s, &mut probs, &attention_drop, &mut context);
    let mut attn = w.attention_output.forward_adapted(&context, tq, &am[Projection::AttentionOutput as usize]);
    apply(&mut attn, &drop1);
    kernels::add_inplace(&mut attn, xq);
    let (attended, norm1) = w.attention_norm.forward(&attn, s.eps, keep);
    drop(attn);
    let inner = w.intermediate.forward_adapted(&attended, tq, &am[Projection::Intermediate as usize]);
    let activated = kernels::gelu_forward(&inner);
    let mut out = w.output.forward_adapted(&activated, tq, &am[Projection::Output as usize]);
    apply(&mut out, &drop2);
    kernels::add_inplace(&mut out, &attended);
    let (y, norm2) = w.output_norm.forward(&out, s.eps, keep);
    let tape = keep.then_some(LayerTape { input: x, query_input, q, k, v, probs, attention_drop, context, drop1, norm1, attended, inner, activated, drop2, norm2, adapter_masks: am });
    (y, tape)
}

/// One encoder layer backward from dy (query tokens × hidden): parameter gradients into `g`,
/// and dx (tokens × hidden) when `want_dx`.
fn layer_backward(w: &LayerValues<'_>, g: &EncoderLayer<Option<GradSlot>>, tape: LayerTape, dy: Vec<f32>, s: Shape, want_dx: bool) -> Option<Vec<f32>> {
    let (t, tq, h) = (s.tokens(), s.query_tokens(), s.hidden);
    let am = &tape.adapter_masks;
    let dout = w.output_norm.backward(&g.output_norm, &tape.norm2, &dy);
    drop(dy);
    // dout is also the residual's gradient (d attended); the branch gets dout ⊙ dropout mask.
    let mut dbranch = dout.clone();
    apply(&mut dbranch, &tape.drop2);
    let mut dactivated = w.output.backward_adapted(&g.output, &tape.activated, &dbranch, tq, &am[Projection::Output as usize]);
    drop(dbranch);
    kernels::gelu_backward_inplace(&mut dactivated, &tape.inner);
    let mut dattended = dout;
    w.intermediate.backward_adding_dx(&g.intermediate, &tape.attended, &dactivated, tq, &mut dattended);
    w.intermediate.backward_adapter(&tape.attended, &dactivated, tq, &am[Projection::Intermediate as usize], Some(&mut dattended));
    drop(dactivated);
    let dsum = w.attention_norm.backward(&g.attention_norm, &tape.norm1, &dattended);
    drop(dattended);
    let mut dbranch = dsum.clone();
    apply(&mut dbranch, &tape.drop1);
    let dcontext = w.attention_output.backward_adapted(&g.attention_output, &tape.context, &dbranch, tq, &am[Projection::AttentionOutput as usize]);
    drop(dbranch);
    let mut dq = vec![0f32; tq * h];
    let mut dk = vec![0f32; t * h];
    let mut dv = vec![0f32; t * h];
    attention_backward(&dcontext, &tape.q, &tape.k, &tape.v, &tape.probs, &tape.attention_drop, s, &mut dq, &mut dk, &mut dv);
    drop(dcontext);
    // dx = the residual's gradient + the query's, on the query rows; + the key's and value's.
    let xq = tape.query_input.as_deref().unwrap_or(&tape.input);
    let work = w.query.multiply_adds(tq + 2 * t);
    let (_, dx) = kernels::join(work, || query_key_value_param_grads(w, g, &tape, xq, [&dq, &dk, &dv], s), || {
        // dx: the query's part on the query rows, then the key's and value's, in this order.
        let mut dxq = dsum;
        if want_dx {
            w.query.add_input_grad(&mut dxq, &dq, tq);
        }
        w.query.backward_adapter(xq, &dq, tq, &am[Projection::Query as usize], want_dx.then_some(&mut dxq[..]));
        let mut dx = if s.all_queries() || !want_dx { dxq } else { spread_first_rows(&dxq, s.len, s.queries, h) };
        for (p, linear, d) in [(Projection::Key, &w.key, &dk), (Projection::Value, &w.value, &dv)] {
            if want_dx {
                linear.add_input_grad(&mut dx, d, t);
            }
            linear.backward_adapter(&tape.input, d, t, &am[p as usize], want_dx.then_some(&mut dx[..]));
        }
        dx
    });
    want_dx.then_some(dx)
}

/// The query, key and value weights' and biases' gradients (from their outputs' gradients).
fn query_key_value_param_grads(w: &LayerValues<'_>, g: &EncoderLayer<Option<GradSlot>>, tape: &LayerTape, xq: &[f32], [dq, dk, dv]: [&[f32]; 3], s: Shape) {
    w.query.param_grads(&g.query, xq, dq, s.query_tokens());
    w.key.param_grads(&g.key, &tape.input, dk, s.tokens());
    w.value.param_grads(&g.value, &tape.input, dv, s.tokens());
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

// ------------------------------------------------------------------------------- embeddings

struct EmbeddingValues<'a> {
    word: Values<'a>,
    position: Values<'a>,
    token_type: Values<'a>,
    norm: NormValues<'a>,
}

struct EmbeddingTape {
    norm: NormTape,
    drop: Option<Vec<f32>>,
}

/// Word + position + token-type (0) embeddings, LayerNorm, dropout: (tokens × hidden).
fn embed(w: &EmbeddingValues<'_>, ids: &[u32], s: Shape, dropout: &mut Option<DropoutSource<'_>>, keep: bool, vocab: usize) -> Result<(Vec<f32>, Option<EmbeddingTape>)> {
    let (t, h, l) = (s.tokens(), s.hidden, s.len);
    let (word, position, token_type) = (w.word.get(), w.position.get(), &w.token_type.get()[..h]);
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(Error::Model(format!("token id {bad} is outside the vocabulary of {vocab} words: tokenizer.json does not match the model")));
    }
    let mut sum = vec![0f32; t * h];
    kernels::for_rows(&mut sum, h, |r, row| {
        let (word, pos) = (&word[ids[r] as usize * h..][..h], &position[(r % l) * h..][..h]);
        for j in 0..h {
            row[j] = word[j] + pos[j] + token_type[j];
        }
    });
    let (mut out, norm) = w.norm.forward(&sum, s.eps, keep);
    let drop = draw_mask(dropout, t * h, |p| p.hidden);
    apply(&mut out, &drop);
    Ok((out, keep.then_some(EmbeddingTape { norm, drop })))
}

/// Embeddings backward: LayerNorm, position and token-type gradients into their slots; the word
/// embeddings' gradient as rows by token id.
fn embed_backward(w: &EmbeddingValues<'_>, g: &BertGrads, tape: EmbeddingTape, mut dy: Vec<f32>, ids: &[u32], s: Shape, word_rows: bool) -> Option<RowGradients> {
    let (h, l) = (s.hidden, s.len);
    apply(&mut dy, &tape.drop);
    let dsum = w.norm.backward(&g.embeddings_norm, &tape.norm, &dy);
    if let Some(slot) = &g.position_embeddings {
        slot.write(|buf, acc| {
            if !acc {
                buf.fill(0.0);
            }
            for (r, row) in dsum.chunks_exact(h).enumerate() {
                buf[(r % l) * h..][..h].iter_mut().zip(row).for_each(|(a, v)| *a += v);
            }
        });
    }
    if let Some(slot) = &g.token_type_embeddings {
        slot.write(|buf, acc| {
            if !acc {
                buf.fill(0.0);
            }
            kernels::add_column_sums(&mut buf[..h], &dsum);
        });
    }
    if !word_rows {
        return None;
    }
    let mut rows: std::collections::BTreeMap<u32, Vec<f32>> = std::collections::BTreeMap::new();
    for (&id, row) in ids.iter().zip(dsum.chunks_exact(h)) {
        let acc = rows.entry(id).or_insert_with(|| vec![0f32; h]);
        acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
    }
    Some(rows.into_iter().collect())
}

// ------------------------------------------------------------------------------- the model

/// Eval-mode outputs for one batch.
pub struct EvalOutput {
    /// (batch × hidden): tanh(dense([CLS])).
    pub pooled: Vec<f32>,
    /// (tokens × hidden), when asked for.
    pub last_hidden: Option<Vec<f32>>,
}

fn embedding_values(w: &BertWeights) -> Result<EmbeddingValues<'_>> {
    Ok(EmbeddingValues {
        word: Values::of(&w.word_embeddings)?,
        position: Values::of(&w.position_embeddings)?,
        token_type: Values::of(&w.token_type_embeddings)?,
        norm: NormValues { gamma: Values::of(&w.embeddings_norm.weight)?, beta: Values::of(&w.embeddings_norm.bias)? },
    })
}

fn check_length(config: &BertConfig, batch: &Batch) -> Result<()> {
    if batch.seq_len > config.max_position_embeddings {
        return Err(Error::Options(format!("sequence length {} exceeds the model's max_position_embeddings {}", batch.seq_len, config.max_position_embeddings)));
    }
    Ok(())
}

/// The [CLS] rows (batch × hidden) of a layer's output (query tokens × hidden).
fn cls_rows(hidden_state: &[f32], s: Shape) -> Vec<f32> {
    first_rows(hidden_state, s.queries, 1, s.hidden).into_owned()
}

/// The shape each layer runs with: the top one for [CLS] alone unless every token's last hidden
/// state is wanted.
fn layer_shapes(s: Shape, layers: usize, last_hidden: bool) -> Vec<Shape> {
    (0..layers).map(|l| if l + 1 == layers && !last_hidden { s.cls_only() } else { s }).collect()
}

/// The BertModel part in eval mode (no dropout): pooled outputs, and the last hidden state
/// when `keep_hidden`.
pub fn encode_eval(config: &BertConfig, weights: &BertWeights, adapters: Option<&Adapters>, batch: &Batch, keep_hidden: bool) -> Result<EvalOutput> {
    let set = adapters.map(|adapters| AdapterSet { adapters, grads: None });
    check_length(config, batch)?;
    let s = Shape::of(config, batch);
    let (mut hidden, _) = embed(&embedding_values(weights)?, &batch.ids, s, &mut None, false, config.vocab_size)?;
    let shapes = layer_shapes(s, weights.layers.len(), keep_hidden);
    for (l, layer) in weights.layers.iter().enumerate() {
        hidden = layer_forward(&LayerValues::of(layer, set, l)?, hidden, &batch.mask, shapes[l], &mut None, false).0;
    }
    let pooler = LinearValues::of(&weights.pooler)?;
    let mut pooled = pooler.forward(&cls_rows(&hidden, shapes.last().copied().unwrap_or(s)), s.batch);
    pooled.iter_mut().for_each(|v| *v = v.tanh());
    Ok(EvalOutput { pooled, last_hidden: keep_hidden.then_some(hidden) })
}

/// Logits (rows × labels) of pooled vectors (rows × hidden) through a classifier head.
pub fn head_logits(head: &Linear, pooled: &[f32], hidden: usize) -> Result<Vec<Vec<f32>>> {
    let head = LinearValues::of(head)?;
    let rows = pooled.len() / hidden;
    let logits = head.forward(pooled, rows);
    Ok(logits.chunks(head.outputs()).map(<[f32]>::to_vec).collect())
}

/// Mean cross-entropy of logits (rows × classes) against labels, and its gradient.
fn cross_entropy(logits: &[f32], classes: usize, labels: &[usize]) -> (f64, Vec<f32>) {
    let n = labels.len() as f64;
    let mut grad = vec![0f32; logits.len()];
    let mut loss = 0f64;
    for ((row, g), &label) in logits.chunks(classes).zip(grad.chunks_mut(classes)).zip(labels) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let exps: Vec<f64> = row.iter().map(|v| (*v as f64 - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        loss += sum.ln() + max - row[label] as f64;
        for (c, (gc, e)) in g.iter_mut().zip(&exps).enumerate() {
            *gc = ((e / sum - if c == label { 1.0 } else { 0.0 }) / n) as f32;
        }
    }
    (loss / n, grad)
}

/// What one training step produced.
pub struct StepOutput {
    /// Mean cross-entropy of the batch (training mode).
    pub loss: f64,
    /// (batch × labels)
    pub logits: Vec<Vec<f32>>,
    /// The word embeddings' gradient, when they train.
    pub word_rows: Option<RowGradients>,
    /// Time of the forward pass and the loss, milliseconds (the rest of the call is backward).
    pub forward_ms: f64,
}

/// The classifier head of a training step: logits of `pooled` (rows × hidden) after classifier
/// dropout, the loss, and — when `check` accepts the loss — its gradients (into the head's
/// slots) and d pooled.
fn head_step(head: &Linear, grads: &Linear<Option<GradSlot>>, pooled: &[f32], labels: &[usize], dropout: &mut Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<(StepOutput, Vec<f32>)> {
    let values = LinearValues::of(head)?;
    let rows = labels.len();
    let mut dropped = pooled.to_vec();
    let drop = draw_mask(dropout, dropped.len(), |p| p.classifier);
    apply(&mut dropped, &drop);
    let classes = values.outputs();
    let logits = values.forward(&dropped, rows);
    let (loss, dlogits) = cross_entropy(&logits, classes, labels);
    check(loss)?;
    let mut dpooled = values.backward(grads, &dropped, &dlogits, rows, true).expect("dx was asked for");
    apply(&mut dpooled, &drop);
    let logits = logits.chunks(classes).map(<[f32]>::to_vec).collect();
    Ok((StepOutput { loss, logits, word_rows: None, forward_ms: 0.0 }, dpooled))
}

/// A training step of the classifier head alone, on pooled vectors computed before (the frozen
/// strategy's cache). The loss is checked by `check` before any gradient is written.
pub fn train_head(head: &Linear, grads: &Linear<Option<GradSlot>>, pooled: &[f32], labels: &[usize], dropout: Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<StepOutput> {
    Ok(head_step(head, grads, pooled, labels, &mut { dropout }, check)?.0)
}

/// The lowest encoder layer with a trained parameter or a trained adapter: the backward pass
/// stops there.
fn lowest_layer_with_gradients(grads: &BertGrads, adapters: Option<AdapterSet<'_>>) -> Option<usize> {
    let any = |l: &EncoderLayer<Option<GradSlot>>| {
        [&l.query, &l.key, &l.value, &l.attention_output, &l.intermediate, &l.output].iter().any(|x| x.weight_t.is_some() || x.bias.is_some())
            || [&l.attention_norm, &l.output_norm].iter().any(|n| n.weight.is_some() || n.bias.is_some())
    };
    let adapted = |l: usize| adapters.and_then(|set| set.grads).is_some_and(|g| g.layers[l].iter().any(Option::is_some));
    (0..grads.layers.len()).find(|&l| any(&grads.layers[l]) || adapted(l))
}

fn embeddings_train(grads: &BertGrads) -> bool {
    grads.position_embeddings.is_some() || grads.token_type_embeddings.is_some() || grads.embeddings_norm.weight.is_some() || grads.embeddings_norm.bias.is_some()
}

/// The model of a training step: the weights, the gradient slots of those that train, and
/// whether the word embeddings train (their gradient comes back as rows, not in a slot).
#[derive(Clone, Copy)]
pub struct TrainModel<'a> {
    pub weights: &'a BertWeights,
    pub grads: &'a BertGrads,
    pub head: &'a Linear,
    pub head_grads: &'a Linear<Option<GradSlot>>,
    pub word_embeddings_train: bool,
    /// LoRA adapters and their gradient slots (a `lora:R` run).
    pub adapters: Option<AdapterSet<'a>>,
}

/// One training step through the whole model (training mode, dropout from `dropout`):
/// forward, loss, and backward into the gradient slots of the trainable parameters. The loss is
/// checked by `check` before any gradient is written, so a non-finite loss leaves every slot as
/// it was.
pub fn train_step(config: &BertConfig, model: TrainModel<'_>, batch: &Batch, labels: &[usize], dropout: Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<StepOutput> {
    let TrainModel { weights, grads, head, head_grads, word_embeddings_train, adapters } = model;
    check_length(config, batch)?;
    let started = web_time::Instant::now();
    let s = Shape::of(config, batch);
    let mut dropout = dropout;
    let embeddings_train = word_embeddings_train || embeddings_train(grads);
    let lowest = if embeddings_train { 0 } else { lowest_layer_with_gradients(grads, adapters).unwrap_or(weights.layers.len()) };
    let embedding_values = embedding_values(weights)?;
    let (mut hidden, embedding_tape) = embed(&embedding_values, &batch.ids, s, &mut dropout, embeddings_train, config.vocab_size)?;
    let layer_values: Vec<LayerValues<'_>> = weights.layers.iter().enumerate().map(|(l, layer)| LayerValues::of(layer, adapters, l)).collect::<Result<_>>()?;
    let shapes = layer_shapes(s, layer_values.len(), false);
    let top = shapes.last().copied().unwrap_or(s);
    let mut tapes = Vec::with_capacity(layer_values.len());
    for (l, values) in layer_values.iter().enumerate() {
        let (out, tape) = layer_forward(values, hidden, &batch.mask, shapes[l], &mut dropout, l >= lowest);
        hidden = out;
        tapes.push(tape);
    }
    let pooler = LinearValues::of(&weights.pooler)?;
    let cls = cls_rows(&hidden, top);
    drop(hidden);
    let mut pooled = pooler.forward(&cls, s.batch);
    pooled.iter_mut().for_each(|v| *v = v.tanh());
    let (mut output, mut dpooled) = head_step(head, head_grads, &pooled, labels, &mut dropout, check)?;
    output.forward_ms = started.elapsed().as_secs_f64() * 1000.0;
    let pooler_in_graph = lowest < layer_values.len() || grads.pooler.weight_t.is_some() || grads.pooler.bias.is_some();
    if !pooler_in_graph {
        return Ok(output);
    }
    // tanh' = 1 − tanh²
    dpooled.iter_mut().zip(&pooled).for_each(|(d, p)| *d *= 1.0 - p * p);
    let Some(dcls) = pooler.backward(&grads.pooler, &cls, &dpooled, s.batch, lowest < layer_values.len()) else {
        return Ok(output);
    };
    let mut dy = spread_first_rows(&dcls, top.queries, 1, s.hidden);
    for l in (lowest..layer_values.len()).rev() {
        let tape = tapes[l].take().expect("trained layers keep their tape");
        let want_dx = l > lowest || embeddings_train;
        match layer_backward(&layer_values[l], &grads.layers[l], tape, dy, shapes[l], want_dx) {
            Some(dx) => dy = dx,
            None => return Ok(output),
        }
    }
    let tape = embedding_tape.expect("trained embeddings keep their tape");
    output.word_rows = embed_backward(&embedding_values, grads, tape, dy, &batch.ids, s, word_embeddings_train);
    Ok(output)
}
