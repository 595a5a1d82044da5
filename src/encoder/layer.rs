//! One encoder layer, forward and backward: the query, key and value projections (with the
//! layer's dropout masks, side by side on threads), self-attention ([`super::attention`]), the
//! attention output with its residual and LayerNorm, the feed-forward block with GELU, and the
//! output LayerNorm. A layer runs on the rows its [`Shape`] says (every token, or the top
//! layer's [CLS] rows after the key and value projections).
use super::attention::{attention_backward, attention_forward};
use super::linear::{apply, AdapterSet, LinearValues, Values};
use super::norm::{NormTape, NormValues};
use super::structure::{self, first_rows, layer_masks, spread_first_rows, DropoutSource, Shape};
use crate::kernels;
use crate::params::{EncoderLayer, GradSlot, Linear};
use crate::types::Projection;
use crate::Result;

/// The values of one encoder layer's parameters (and adapters) for a pass.
pub(super) struct LayerValues<'a> {
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
    pub(super) fn of(l: &'a EncoderLayer, set: Option<AdapterSet<'a>>, index: usize) -> Result<Self> {
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

    /// Input-dropout masks of this layer's adapters (training only; see
    /// [`structure::adapter_masks`]).
    fn adapter_masks(&self, dropout: &mut Option<DropoutSource<'_>>, s: Shape) -> [Option<Vec<f32>>; 6] {
        structure::adapter_masks(dropout, s, |p| {
            let linear = self.projection(p);
            linear.adapter.is_some().then(|| linear.inputs())
        })
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

/// What a trained layer's forward pass keeps for its backward pass. Tensors after the key and
/// value projections have the layer's query rows (`Shape::query_tokens`).
pub(super) struct LayerTape {
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
pub(super) fn layer_forward(w: &LayerValues<'_>, x: Vec<f32>, mask: &[f32], s: Shape, dropout: &mut Option<DropoutSource<'_>>, keep: bool) -> (Vec<f32>, Option<LayerTape>) {
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

/// One encoder layer's backward runs in two halves, this one and then
/// [`attention_block_backward`] (two units of a resumable step).
///
/// The upper half, from dy (query tokens × hidden): the output
/// LayerNorm, the feed-forward block and the attention block's LayerNorm. Returns the gradient
/// of the attention block's residual sum (query tokens × hidden).
pub(super) fn feed_forward_backward(w: &LayerValues<'_>, g: &EncoderLayer<Option<GradSlot>>, tape: &LayerTape, dy: Vec<f32>, s: Shape) -> Vec<f32> {
    let tq = s.query_tokens();
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
    w.attention_norm.backward(&g.attention_norm, &tape.norm1, &dattended)
}

/// The lower half of a layer's backward, from the attention block's residual sum's gradient
/// `dsum` (from [`feed_forward_backward`]): the attention output, self-attention and the query,
/// key and value projections. Returns dx (tokens × hidden) when `want_dx`.
pub(super) fn attention_block_backward(w: &LayerValues<'_>, g: &EncoderLayer<Option<GradSlot>>, tape: LayerTape, dsum: Vec<f32>, s: Shape, want_dx: bool) -> Option<Vec<f32>> {
    let (t, tq, h) = (s.tokens(), s.query_tokens(), s.hidden);
    let am = &tape.adapter_masks;
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
