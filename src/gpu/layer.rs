//! The encoder's parts on the GPU, forward and backward — the same operations in the same
//! order as the CPU's `encoder/layer.rs`, `attention.rs` and `embeddings.rs`, on resident
//! tensors: the embeddings, one encoder layer (its two backward halves), and the Linear
//! products they are made of. Shapes and the rows a layer computes come from the CPU's
//! [`Shape`]; the dropout masks arrive drawn and uploaded.
use super::model::GpuAdapter;
use super::{GpuTensor, Product, Recorder, RowGroups, View};
use crate::encoder::structure::Shape;
use crate::params::{EncoderLayer, LayerNorm, Linear};
use crate::types::Projection;

/// A layer's LoRA adapters by projection (a LoRA run), and their input-dropout masks.
#[derive(Clone, Copy)]
pub(super) struct LayerAdapters<'a> {
    pub(super) adapters: Option<&'a [Option<GpuAdapter>; 6]>,
}

impl<'a> LayerAdapters<'a> {
    fn of(&self, p: Projection) -> Option<&'a GpuAdapter> {
        self.adapters.and_then(|a| a[p as usize].as_ref())
    }

    /// The input width of each adapted projection (for the masks' sizes).
    pub(super) fn inputs(&self, p: Projection) -> Option<usize> {
        self.of(p).map(|a| a.a_t.len / a.rank)
    }
}

/// A new zeroed tensor of `len` values.
fn zeros(rec: &Recorder<'_>, len: usize) -> GpuTensor {
    GpuTensor::zeros(rec.gpu(), len)
}

/// (inputs, outputs) of a Linear's stored weight (in × out).
fn dims(l: &Linear<GpuTensor>) -> (usize, usize) {
    let out = l.bias.len;
    (l.weight_t.len / out, out)
}

/// y (rows × out) = x (rows × in) · W + b.
fn linear(rec: &mut Recorder<'_>, l: &Linear<GpuTensor>, x: &GpuTensor, rows: usize) -> GpuTensor {
    let (input, out) = dims(l);
    let y = zeros(rec, rows * out);
    rec.matmul(View::rows(&y, out), View::rows(x, input), View::rows(&l.weight_t, out), Product::new(rows, out, input), Some(&l.bias));
    y
}

/// dWᵀ += xᵀ · dy and db += Σ dy, for those that train.
fn linear_param_grads(rec: &mut Recorder<'_>, l: &Linear<GpuTensor>, g: &Linear<Option<GpuTensor>>, x: &GpuTensor, dy: &GpuTensor, rows: usize) {
    let (input, out) = dims(l);
    if let Some(gw) = &g.weight_t {
        rec.matmul(View::rows(gw, out), View::transposed(x, input), View::rows(dy, out), Product::new(input, out, rows).accumulating(), None);
    }
    if let Some(gb) = &g.bias {
        rec.add_column_sums(gb, dy, out);
    }
}

/// dx (rows × in) [+]= dy · Wᵀ.
fn linear_input_grad(rec: &mut Recorder<'_>, l: &Linear<GpuTensor>, dy: &GpuTensor, rows: usize, dx: &GpuTensor, accumulate: bool) {
    let (input, out) = dims(l);
    let p = Product::new(rows, input, out);
    rec.matmul(View::rows(dx, input), View::rows(dy, out), View::transposed(&l.weight_t, out), if accumulate { p.accumulating() } else { p }, None);
}

/// y = x·W + b, plus the adapter's scale · (x ⊙ mask)·Aᵀ·Bᵀ when there is one.
fn adapted(rec: &mut Recorder<'_>, l: &Linear<GpuTensor>, adapter: Option<&GpuAdapter>, x: &GpuTensor, rows: usize, mask: &Option<GpuTensor>) -> GpuTensor {
    let y = linear(rec, l, x, rows);
    let Some(ad) = adapter else { return y };
    let (input, out) = dims(l);
    let xm = masked(rec, x, mask);
    let u = down(rec, ad, &xm, rows, input);
    rec.matmul(View::rows(&y, out), View::rows(&u, ad.rank), View::rows(&ad.b_t, out), Product::new(rows, out, ad.rank).accumulating(), None);
    y
}

/// scale · x·Aᵀ (rows × r).
fn down(rec: &mut Recorder<'_>, ad: &GpuAdapter, x: &GpuTensor, rows: usize, input: usize) -> GpuTensor {
    let u = zeros(rec, rows * ad.rank);
    rec.matmul(View::rows(&u, ad.rank), View::rows(x, input), View::rows(&ad.a_t, ad.rank), Product::new(rows, ad.rank, input).scaled(ad.scale), None);
    u
}

/// The adapter's part of a Linear's backward: dAᵀ and dBᵀ, and its contribution added to dx
/// (through the input mask) when `dx` is given.
fn adapter_backward(rec: &mut Recorder<'_>, l: &Linear<GpuTensor>, adapter: Option<&GpuAdapter>, x: &GpuTensor, dy: &GpuTensor, rows: usize, mask: &Option<GpuTensor>, dx: Option<&GpuTensor>) {
    let Some(ad) = adapter else { return };
    let (input, out) = dims(l);
    let r = ad.rank;
    let xm = masked(rec, x, mask);
    let u = down(rec, ad, &xm, rows, input);
    // dBᵀ (r × out) += uᵀ · dy
    rec.matmul(View::rows(&ad.grad_b_t, out), View::transposed(&u, r), View::rows(dy, out), Product::new(r, out, rows).accumulating(), None);
    // du = scale · dy · B (rows × r)
    let du = zeros(rec, rows * r);
    rec.matmul(View::rows(&du, r), View::rows(dy, out), View::transposed(&ad.b_t, out), Product::new(rows, r, out).scaled(ad.scale), None);
    // dAᵀ (in × r) += (x ⊙ mask)ᵀ · du
    rec.matmul(View::rows(&ad.grad_a_t, r), View::transposed(&xm, input), View::rows(&du, r), Product::new(input, r, rows).accumulating(), None);
    let Some(dx) = dx else { return };
    let through = zeros(rec, rows * input);
    rec.matmul(View::rows(&through, input), View::rows(&du, r), View::transposed(&ad.a_t, r), Product::new(rows, input, r), None);
    if let Some(m) = mask {
        rec.multiply(&through, m);
    }
    rec.add_scaled(dx, &through, 1.0);
}

/// What a LayerNorm's backward needs: x̂ and rstd.
pub(super) struct NormTape {
    xhat: GpuTensor,
    rstd: GpuTensor,
}

/// LayerNorm of x's rows; with `keep`, what its backward needs.
fn layer_norm(rec: &mut Recorder<'_>, n: &LayerNorm<GpuTensor>, x: &GpuTensor, eps: f32, keep: bool) -> (GpuTensor, Option<NormTape>) {
    let y = zeros(rec, x.len);
    if !keep {
        rec.layer_norm(&y, x, &n.weight, &n.bias, eps, None);
        return (y, None);
    }
    let tape = NormTape { xhat: zeros(rec, x.len), rstd: zeros(rec, x.len / n.weight.len) };
    rec.layer_norm(&y, x, &n.weight, &n.bias, eps, Some((&tape.xhat, &tape.rstd)));
    (y, Some(tape))
}

/// dx from dy; dγ += Σ dy ⊙ x̂ and dβ += Σ dy, for those that train.
fn layer_norm_backward(rec: &mut Recorder<'_>, n: &LayerNorm<GpuTensor>, g: &LayerNorm<Option<GpuTensor>>, tape: &NormTape, dy: &GpuTensor) -> GpuTensor {
    let dx = zeros(rec, dy.len);
    rec.layer_norm_backward(&dx, dy, &tape.xhat, &tape.rstd, &n.weight);
    let h = n.weight.len;
    if let Some(gg) = &g.weight {
        rec.add_column_product_sums(gg, dy, &tape.xhat, h);
    }
    if let Some(gb) = &g.bias {
        rec.add_column_sums(gb, dy, h);
    }
    dx
}

/// `x ⊙ mask` as a new tensor, or x itself without a mask.
fn masked(rec: &mut Recorder<'_>, x: &GpuTensor, mask: &Option<GpuTensor>) -> GpuTensor {
    let Some(mask) = mask else { return x.clone() };
    let out = zeros(rec, x.len);
    rec.copy(x, 0, &out, 0, x.len);
    rec.multiply(&out, mask);
    out
}

// -------------------------------------------------------------------------------- embeddings

/// What the embeddings' backward needs.
pub(super) struct EmbeddingTape {
    norm: NormTape,
    drop: Option<GpuTensor>,
}

/// The token ids and position ids of a batch on the device, and their groups for the
/// scatter-adds of the backward.
pub(super) struct BatchIds {
    pub(super) ids: GpuTensor,
    pub(super) positions: GpuTensor,
    pub(super) mask: GpuTensor,
    id_groups: Option<RowGroups>,
    position_groups: Option<RowGroups>,
}

impl BatchIds {
    pub(super) fn upload(rec: &Recorder<'_>, ids: &[u32], positions: &[usize], mask: &[f32], backward: bool) -> BatchIds {
        let gpu = rec.gpu();
        let positions: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
        BatchIds {
            ids: GpuTensor::from_u32(gpu, ids),
            positions: GpuTensor::from_u32(gpu, &positions),
            mask: GpuTensor::from_slice(gpu, mask),
            id_groups: backward.then(|| RowGroups::of(gpu, ids)),
            position_groups: backward.then(|| RowGroups::of(gpu, &positions)),
        }
    }
}

/// Word + position + token-type (0) embeddings, LayerNorm, dropout (tokens × hidden).
pub(super) fn embed(rec: &mut Recorder<'_>, w: &crate::params::BertParams<GpuTensor>, ids: &BatchIds, s: Shape, drop: Option<GpuTensor>, keep: bool) -> (GpuTensor, Option<EmbeddingTape>) {
    let sum = zeros(rec, s.tokens() * s.hidden);
    rec.embed(&sum, &w.word_embeddings, &w.position_embeddings, &w.token_type_embeddings, &ids.ids, &ids.positions, s.hidden);
    let (out, norm) = layer_norm(rec, &w.embeddings_norm, &sum, s.eps, keep);
    if let Some(mask) = &drop {
        rec.multiply(&out, mask);
    }
    (out, norm.map(|norm| EmbeddingTape { norm, drop }))
}

/// The embeddings' backward: LayerNorm, then the word, position and token-type rows'
/// gradients, for those that train.
pub(super) fn embed_backward(rec: &mut Recorder<'_>, w: &crate::params::BertParams<GpuTensor>, g: &crate::params::BertParams<Option<GpuTensor>>, tape: EmbeddingTape, dy: GpuTensor, ids: &BatchIds, s: Shape) {
    let h = s.hidden;
    if let Some(mask) = &tape.drop {
        rec.multiply(&dy, mask);
    }
    let dsum = layer_norm_backward(rec, &w.embeddings_norm, &g.embeddings_norm, &tape.norm, &dy);
    if let (Some(grad), Some(groups)) = (&g.word_embeddings, &ids.id_groups) {
        rec.scatter_rows(grad, &dsum, groups, h);
    }
    if let (Some(grad), Some(groups)) = (&g.position_embeddings, &ids.position_groups) {
        rec.scatter_rows(grad, &dsum, groups, h);
    }
    if let Some(grad) = &g.token_type_embeddings {
        rec.add_column_sums(grad, &dsum, h);
    }
}

// ------------------------------------------------------------------------------------- layer

/// What a trained layer's forward keeps for its backward (tensors after the key and value
/// projections have the layer's query rows).
pub(super) struct LayerTape {
    input: GpuTensor,
    query_input: GpuTensor,
    q: GpuTensor,
    k: GpuTensor,
    v: GpuTensor,
    probs: GpuTensor,
    /// The probabilities after attention dropout (the same tensor without it).
    dropped: GpuTensor,
    attention_drop: Option<GpuTensor>,
    context: GpuTensor,
    drop1: Option<GpuTensor>,
    norm1: NormTape,
    attended: GpuTensor,
    inner: GpuTensor,
    activated: GpuTensor,
    drop2: Option<GpuTensor>,
    norm2: NormTape,
    /// Input-dropout masks of the layer's adapters, by projection.
    adapter_masks: [Option<GpuTensor>; 6],
}

/// The first `keep` rows of every `block` rows (of `width`): the rows a [CLS]-only layer
/// computes with.
fn first_rows(rec: &mut Recorder<'_>, x: &GpuTensor, block: usize, keep: usize, width: usize) -> GpuTensor {
    if keep == block {
        return x.clone();
    }
    let blocks = x.len / (block * width);
    let out = zeros(rec, blocks * keep * width);
    for b in 0..blocks {
        rec.copy(x, b * block * width, &out, b * keep * width, keep * width);
    }
    out
}

/// The inverse of [`first_rows`] for a gradient: zero but for the first `keep` rows of each block.
fn spread_first_rows(rec: &mut Recorder<'_>, part: &GpuTensor, block: usize, keep: usize, width: usize) -> GpuTensor {
    if keep == block {
        return part.clone();
    }
    let blocks = part.len / (keep * width);
    let out = zeros(rec, blocks * block * width);
    for b in 0..blocks {
        rec.copy(part, b * keep * width, &out, b * block * width, keep * width);
    }
    out
}

/// Views of Q/K/V-like (rows × hidden) tensors per (sentence, head), and of per-head score
/// blocks, for the batched attention products.
fn head_block(t: &GpuTensor, s: Shape, rows: usize) -> View<'_> {
    View::block(t, s.hidden, 0, 0).batched(rows * s.hidden, s.head_dim)
}

fn head_block_t(t: &GpuTensor, s: Shape, rows: usize) -> View<'_> {
    View::block_transposed(t, s.hidden, 0, 0).batched(rows * s.hidden, s.head_dim)
}

fn score_blocks(t: &GpuTensor, s: Shape) -> View<'_> {
    View::rows(t, s.len).batched(s.heads * s.queries * s.len, s.queries * s.len)
}

fn score_blocks_t(t: &GpuTensor, s: Shape) -> View<'_> {
    View::transposed(t, s.len).batched(s.heads * s.queries * s.len, s.queries * s.len)
}

/// One encoder layer forward over x (tokens × hidden), with its masks (attention, attention
/// output, output) and its adapters' input masks; returns its output (query tokens × hidden)
/// and, when `keep`, its tape.
#[allow(clippy::too_many_arguments)] // the layer's inputs, all distinct
pub(super) fn layer_forward(rec: &mut Recorder<'_>, w: &EncoderLayer<GpuTensor>, ad: LayerAdapters<'_>, x: GpuTensor, mask: &GpuTensor, s: Shape, masks: [Option<GpuTensor>; 3], am: [Option<GpuTensor>; 6], keep: bool) -> (GpuTensor, Option<LayerTape>) {
    let (t, tq, h, d) = (s.tokens(), s.query_tokens(), s.hidden, s.head_dim);
    let [attention_drop, drop1, drop2] = masks;
    let p = |p: Projection| (ad.of(p), &am[p as usize]);
    let xq = first_rows(rec, &x, s.len, s.queries, h);
    let q = adapted(rec, &w.query, p(Projection::Query).0, &xq, tq, p(Projection::Query).1);
    let k = adapted(rec, &w.key, p(Projection::Key).0, &x, t, p(Projection::Key).1);
    let v = adapted(rec, &w.value, p(Projection::Value).0, &x, t, p(Projection::Value).1);
    let scale = 1.0 / (d as f32).sqrt();
    let count = s.batch * s.heads;
    let probs = zeros(rec, s.scores());
    rec.matmul(score_blocks(&probs, s), head_block(&q, s, s.queries), head_block_t(&k, s, s.len), Product::new(s.queries, s.len, d).scaled(scale).batch(count, s.heads), None);
    rec.masked_softmax(&probs, mask, s.len, s.heads * s.queries);
    let dropped = masked(rec, &probs, &attention_drop);
    let context = zeros(rec, tq * h);
    rec.matmul(head_block(&context, s, s.queries), score_blocks(&dropped, s), head_block(&v, s, s.len), Product::new(s.queries, d, s.len).batch(count, s.heads), None);
    let attn = adapted(rec, &w.attention_output, p(Projection::AttentionOutput).0, &context, tq, p(Projection::AttentionOutput).1);
    if let Some(m) = &drop1 {
        rec.multiply(&attn, m);
    }
    rec.add_scaled(&attn, &xq, 1.0);
    let (attended, norm1) = layer_norm(rec, &w.attention_norm, &attn, s.eps, keep);
    let inner = adapted(rec, &w.intermediate, p(Projection::Intermediate).0, &attended, tq, p(Projection::Intermediate).1);
    let activated = zeros(rec, inner.len);
    rec.gelu(&activated, &inner);
    let out = adapted(rec, &w.output, p(Projection::Output).0, &activated, tq, p(Projection::Output).1);
    if let Some(m) = &drop2 {
        rec.multiply(&out, m);
    }
    rec.add_scaled(&out, &attended, 1.0);
    let (y, norm2) = layer_norm(rec, &w.output_norm, &out, s.eps, keep);
    let tape = match (norm1, norm2) {
        (Some(norm1), Some(norm2)) => Some(LayerTape { input: x, query_input: xq, q, k, v, probs, dropped, attention_drop, context, drop1, norm1, attended, inner, activated, drop2, norm2, adapter_masks: am }),
        _ => None,
    };
    (y, tape)
}

/// The upper half of a layer's backward, from dy (query tokens × hidden): the output
/// LayerNorm, the feed-forward block and the attention LayerNorm. Returns the gradient of the
/// attention block's residual sum.
pub(super) fn feed_forward_backward(rec: &mut Recorder<'_>, w: &EncoderLayer<GpuTensor>, g: &EncoderLayer<Option<GpuTensor>>, ad: LayerAdapters<'_>, tape: &LayerTape, dy: GpuTensor, s: Shape) -> GpuTensor {
    let tq = s.query_tokens();
    let am = &tape.adapter_masks;
    let dout = layer_norm_backward(rec, &w.output_norm, &g.output_norm, &tape.norm2, &dy);
    let dbranch = masked(rec, &dout, &tape.drop2);
    linear_param_grads(rec, &w.output, &g.output, &tape.activated, &dbranch, tq);
    let dactivated = zeros(rec, tape.inner.len);
    linear_input_grad(rec, &w.output, &dbranch, tq, &dactivated, false);
    let output = Projection::Output as usize;
    adapter_backward(rec, &w.output, ad.of(Projection::Output), &tape.activated, &dbranch, tq, &am[output], Some(&dactivated));
    rec.gelu_backward(&dactivated, &tape.inner);
    linear_param_grads(rec, &w.intermediate, &g.intermediate, &tape.attended, &dactivated, tq);
    let dattended = dout;
    linear_input_grad(rec, &w.intermediate, &dactivated, tq, &dattended, true);
    let intermediate = Projection::Intermediate as usize;
    adapter_backward(rec, &w.intermediate, ad.of(Projection::Intermediate), &tape.attended, &dactivated, tq, &am[intermediate], Some(&dattended));
    layer_norm_backward(rec, &w.attention_norm, &g.attention_norm, &tape.norm1, &dattended)
}

/// The lower half of a layer's backward, from the residual sum's gradient: the attention
/// output, self-attention and the query, key and value projections. Returns dx (tokens ×
/// hidden) when `want_dx`.
#[allow(clippy::too_many_arguments)] // the layer's inputs, all distinct
pub(super) fn attention_block_backward(rec: &mut Recorder<'_>, w: &EncoderLayer<GpuTensor>, g: &EncoderLayer<Option<GpuTensor>>, ad: LayerAdapters<'_>, tape: LayerTape, dsum: GpuTensor, s: Shape, want_dx: bool) -> Option<GpuTensor> {
    let (t, tq, h, d) = (s.tokens(), s.query_tokens(), s.hidden, s.head_dim);
    let am = &tape.adapter_masks;
    let dbranch = masked(rec, &dsum, &tape.drop1);
    linear_param_grads(rec, &w.attention_output, &g.attention_output, &tape.context, &dbranch, tq);
    let dcontext = zeros(rec, tq * h);
    linear_input_grad(rec, &w.attention_output, &dbranch, tq, &dcontext, false);
    let attention_output = Projection::AttentionOutput as usize;
    adapter_backward(rec, &w.attention_output, ad.of(Projection::AttentionOutput), &tape.context, &dbranch, tq, &am[attention_output], Some(&dcontext));
    let scale = 1.0 / (d as f32).sqrt();
    let count = s.batch * s.heads;
    let (dq, dk, dv) = (zeros(rec, tq * h), zeros(rec, t * h), zeros(rec, t * h));
    // dV = dropped_probsᵀ · dcontext
    rec.matmul(head_block(&dv, s, s.len), score_blocks_t(&tape.dropped, s), head_block(&dcontext, s, s.queries), Product::new(s.len, d, s.queries).batch(count, s.heads), None);
    // d(dropped probs) = dcontext · Vᵀ, through the dropout mask and the softmax
    let ds = zeros(rec, s.scores());
    rec.matmul(score_blocks(&ds, s), head_block(&dcontext, s, s.queries), head_block_t(&tape.v, s, s.len), Product::new(s.queries, s.len, d).batch(count, s.heads), None);
    if let Some(m) = &tape.attention_drop {
        rec.multiply(&ds, m);
    }
    rec.softmax_backward(&ds, &tape.probs, s.len);
    // dQ = scale · dscores · K ; dK = scale · dscoresᵀ · Q
    rec.matmul(head_block(&dq, s, s.queries), score_blocks(&ds, s), head_block(&tape.k, s, s.len), Product::new(s.queries, d, s.len).scaled(scale).batch(count, s.heads), None);
    rec.matmul(head_block(&dk, s, s.len), score_blocks_t(&ds, s), head_block(&tape.q, s, s.queries), Product::new(s.len, d, s.queries).scaled(scale).batch(count, s.heads), None);
    linear_param_grads(rec, &w.query, &g.query, &tape.query_input, &dq, tq);
    linear_param_grads(rec, &w.key, &g.key, &tape.input, &dk, t);
    linear_param_grads(rec, &w.value, &g.value, &tape.input, &dv, t);
    // dx = the residual's gradient + the query's, on the query rows; + the key's and value's
    // (each through its adapter too).
    let dxq = want_dx.then_some(dsum);
    if let Some(dxq) = &dxq {
        linear_input_grad(rec, &w.query, &dq, tq, dxq, true);
    }
    adapter_backward(rec, &w.query, ad.of(Projection::Query), &tape.query_input, &dq, tq, &am[Projection::Query as usize], dxq.as_ref());
    let dx = dxq.map(|dxq| spread_first_rows(rec, &dxq, s.len, s.queries, h));
    for (p, linear, grad) in [(Projection::Key, &w.key, &dk), (Projection::Value, &w.value, &dv)] {
        if let Some(dx) = &dx {
            linear_input_grad(rec, linear, grad, t, dx, true);
        }
        adapter_backward(rec, linear, ad.of(p), &tape.input, grad, t, &am[p as usize], dx.as_ref());
    }
    dx
}
