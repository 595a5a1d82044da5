//! The model's structure as a training step runs it, apart from the arithmetic: the shape each
//! layer runs with (the top layer for its [CLS] row alone), how far the backward pass reaches,
//! the order dropout masks are drawn in, and what differs by architecture (position ids, which
//! dropouts exist, the activation on the first token: see [`crate::architecture`]). Another executor of the same model has to make
//! the same decisions to give the same results, so they live here and not in the CPU passes.
//!
//! Dropout masks are drawn from the run's seeded RNG in the order of the forward pass: the
//! embeddings' mask; per layer, the input masks of its LoRA adapters (query, key, value,
//! attention output, intermediate, output, those adapted), then the attention probabilities',
//! the attention block's output's (not in DistilBERT) and the feed-forward block's output's;
//! RoBERTa's on the first tokens before the head's dense layer; last the classifier's.
//! Each mask covers every token, whatever rows the layer computes, so the stream does not depend
//! on it, and is then cut to the rows the layer computes: the same seed gives the same masks on
//! every target and thread count.
use crate::architecture::PoolerActivation;
use crate::config::BertConfig;
use crate::kernels;
use crate::params::{Adapters, BertGrads, Dropout, EncoderLayer, GradSlot};
use crate::rng::SeededRng;
use crate::tokenize::Batch;
use crate::types::Projection;

/// The shape of one batch, and of the query positions a layer computes.
#[derive(Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) batch: usize,
    pub(crate) len: usize,
    /// Query positions computed per sentence: all `len`, or only the first ([CLS]) in the top
    /// layer, whose other outputs nothing reads (see [`Shape::cls_only`]).
    pub(crate) queries: usize,
    pub(crate) hidden: usize,
    pub(crate) heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) eps: f32,
    /// Whether the attention block's output goes through hidden dropout (not in DistilBERT).
    pub(crate) attention_output_dropout: bool,
}

impl Shape {
    pub(crate) fn of(config: &BertConfig, batch: &Batch) -> Self {
        Shape {
            batch: batch.size,
            len: batch.seq_len,
            queries: batch.seq_len,
            hidden: config.hidden_size,
            heads: config.num_attention_heads,
            head_dim: config.head_dim(),
            eps: config.layer_norm_eps as f32,
            attention_output_dropout: config.architecture().attention_output_dropout(),
        }
    }

    pub(crate) fn tokens(&self) -> usize {
        self.batch * self.len
    }

    /// Rows the layer computes after the key and value projections (batch × queries).
    pub(crate) fn query_tokens(&self) -> usize {
        self.batch * self.queries
    }

    pub(crate) fn all_queries(&self) -> bool {
        self.queries == self.len
    }

    /// Attention probabilities the layer computes: per sentence and head, queries × len.
    pub(crate) fn scores(&self) -> usize {
        self.batch * self.heads * self.queries * self.len
    }

    /// Attention probabilities of a layer computing every query (the attention dropout mask's
    /// size whatever the layer computes, so that the RNG stream does not depend on it).
    pub(crate) fn all_scores(&self) -> usize {
        self.batch * self.heads * self.len * self.len
    }

    /// The same layer computed for the [CLS] query alone. The classifier reads only the top
    /// layer's [CLS] row (through the pooler), and that row needs every token's key and value
    /// but no other token's query, attention, feed-forward or LayerNorm: the same maths with
    /// 10 of the top layer's 12 h² products per token left out, forward and backward
    /// (transformers computes them all).
    pub(crate) fn cls_only(self) -> Shape {
        Shape { queries: 1, ..self }
    }
}

/// The shape each layer runs with: the top one for [CLS] alone unless every token's last hidden
/// state is wanted.
pub(crate) fn layer_shapes(s: Shape, layers: usize, last_hidden: bool) -> Vec<Shape> {
    (0..layers).map(|l| if l + 1 == layers && !last_hidden { s.cls_only() } else { s }).collect()
}

// ------------------------------------------------------------- the rows a [CLS]-only layer keeps

/// The first `keep` rows of every `block` rows of `width` values: the rows of a tensor over all
/// tokens that a [CLS]-only layer computes with. Borrowed when every row is kept.
pub(crate) fn first_rows(data: &[f32], block: usize, keep: usize, width: usize) -> std::borrow::Cow<'_, [f32]> {
    if keep == block {
        return std::borrow::Cow::Borrowed(data);
    }
    std::borrow::Cow::Owned(data.chunks_exact(block * width).flat_map(|rows| rows[..keep * width].iter().copied()).collect())
}

/// [`first_rows`] of a dropout mask.
pub(crate) fn first_rows_of_mask(mask: Option<Vec<f32>>, block: usize, keep: usize, width: usize) -> Option<Vec<f32>> {
    mask.map(|m| if keep == block { m } else { first_rows(&m, block, keep, width).into_owned() })
}

/// The inverse of [`first_rows`] for a gradient: a tensor over all `block` rows of every block,
/// zero except the first `keep` rows, which are `part`'s.
pub(crate) fn spread_first_rows(part: &[f32], block: usize, keep: usize, width: usize) -> Vec<f32> {
    let mut full = vec![0f32; part.len() / keep * block];
    for (rows, kept) in full.chunks_exact_mut(block * width).zip(part.chunks_exact(keep * width)) {
        rows[..keep * width].copy_from_slice(kept);
    }
    full
}

/// The [CLS] rows (batch × hidden) of a layer's output (query tokens × hidden).
pub(crate) fn cls_rows(hidden_state: &[f32], s: Shape) -> Vec<f32> {
    first_rows(hidden_state, s.queries, 1, s.hidden).into_owned()
}

// ------------------------------------------------------------------------------ dropout masks

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
pub(crate) fn layer_masks(dropout: &mut Option<DropoutSource<'_>>, s: Shape) -> [Option<Vec<f32>>; 3] {
    let hidden = s.tokens() * s.hidden;
    let attention = first_rows_of_mask(draw_mask(dropout, s.all_scores(), |p| p.attention), s.len, s.queries, s.len);
    let attention_output_p = |p: &Dropout| if s.attention_output_dropout { p.hidden } else { 0.0 };
    let attention_output = first_rows_of_mask(draw_mask(dropout, hidden, attention_output_p), s.len, s.queries, s.hidden);
    let output = first_rows_of_mask(draw_mask(dropout, hidden, |p| p.hidden), s.len, s.queries, s.hidden);
    [attention, attention_output, output]
}

/// The embeddings' dropout mask (tokens × hidden), the first of a step.
pub(crate) fn embedding_mask(dropout: &mut Option<DropoutSource<'_>>, s: Shape) -> Option<Vec<f32>> {
    draw_mask(dropout, s.tokens() * s.hidden, |p| p.hidden)
}

/// Input-dropout masks of a layer's LoRA adapters, drawn in [`Projection::ALL`] order for the
/// projections `inputs` gives an input width for (the adapted ones). Drawn for every token,
/// kept for the rows the projection reads: every token for the key and value, the layer's query
/// rows for the rest.
pub(crate) fn adapter_masks(dropout: &mut Option<DropoutSource<'_>>, s: Shape, inputs: impl Fn(Projection) -> Option<usize>) -> [Option<Vec<f32>>; 6] {
    let mut masks: [Option<Vec<f32>>; 6] = Default::default();
    for p in Projection::ALL {
        if let Some(width) = inputs(p) {
            let mask = draw_mask(dropout, s.tokens() * width, |d| d.adapter);
            let rows_kept = if matches!(p, Projection::Key | Projection::Value) { s.len } else { s.queries };
            masks[p as usize] = first_rows_of_mask(mask, s.len, rows_kept, width);
        }
    }
    masks
}

/// RoBERTa's dropout on the first tokens' rows before the head's dense layer (`values` of them,
/// with the classifier's probability), drawn after the layers' masks; None for the others.
pub(crate) fn pooler_input_mask(dropout: &mut Option<DropoutSource<'_>>, config: &BertConfig, values: usize) -> Option<Vec<f32>> {
    if !config.architecture().dropout_before_pooler() {
        return None;
    }
    draw_mask(dropout, values, |p| p.classifier)
}

/// The classifier's dropout mask over the pooled vectors (`values` of them), the last of a step.
pub(crate) fn classifier_mask(dropout: &mut Option<DropoutSource<'_>>, values: usize) -> Option<Vec<f32>> {
    draw_mask(dropout, values, |p| p.classifier)
}

// ------------------------------------------------------------------ positions and the pooler

/// Each token's position id (batch × len): its index in the sentence (BERT, DistilBERT); for
/// RoBERTa transformers' `create_position_ids_from_input_ids` — padding_idx + 1 + the count of
/// non-padding tokens before it, and padding_idx for a padding token.
pub(crate) fn position_ids(config: &BertConfig, ids: &[u32], len: usize) -> Vec<usize> {
    let pad = config.pad_token_id;
    match config.architecture().first_position(pad) {
        None => (0..ids.len()).map(|r| r % len).collect(),
        Some(first) => ids
            .chunks(len.max(1))
            .flat_map(|sentence| {
                let mut seen = 0;
                sentence.iter().map(move |&id| {
                    if id == pad {
                        return pad as usize;
                    }
                    seen += 1;
                    first + seen - 1
                })
            })
            .collect(),
    }
}

/// The activation after the dense layer on the first token (tanh for BERT's pooler and
/// RoBERTa's head, ReLU for DistilBERT's pre_classifier).
pub(crate) fn pooler_activation(config: &BertConfig) -> PoolerActivation {
    config.architecture().pooler_activation()
}

// ---------------------------------------------------------------- how far the backward reaches

/// How far a training step's backward pass reaches, from which parameters have gradient slots:
/// down to the lowest layer with a trained parameter or adapter, and through every layer to the
/// embeddings when they train.
#[derive(Clone, Copy)]
pub(crate) struct BackwardExtent {
    /// Whether the embeddings train (the word embeddings' rows, positions, token types or
    /// their LayerNorm).
    pub(crate) embeddings: bool,
    /// The lowest encoder layer the backward pass runs through (the layer count when none).
    pub(crate) lowest_layer: usize,
    layers: usize,
}

impl BackwardExtent {
    pub(crate) fn of(grads: &BertGrads, adapter_grads: Option<&Adapters<GradSlot>>, word_embeddings_train: bool) -> Self {
        let layers = grads.layers.len();
        let embeddings = word_embeddings_train || embeddings_train(grads);
        let lowest_layer = if embeddings { 0 } else { lowest_layer_with_gradients(grads, adapter_grads).unwrap_or(layers) };
        BackwardExtent { embeddings, lowest_layer, layers }
    }

    /// Whether layer `l`'s forward pass keeps what its backward needs.
    pub(crate) fn reaches_layer(&self, l: usize) -> bool {
        l >= self.lowest_layer
    }

    /// Whether the backward pass goes below the pooler into the encoder.
    pub(crate) fn reaches_encoder(&self) -> bool {
        self.lowest_layer < self.layers
    }

    /// Whether layer `l`'s backward pass must give its input's gradient (for the layer below or
    /// the embeddings).
    pub(crate) fn wants_input_grad(&self, l: usize) -> bool {
        l > self.lowest_layer || self.embeddings
    }
}

/// The lowest encoder layer with a trained parameter or a trained adapter.
fn lowest_layer_with_gradients(grads: &BertGrads, adapter_grads: Option<&Adapters<GradSlot>>) -> Option<usize> {
    let any = |l: &EncoderLayer<Option<GradSlot>>| {
        [&l.query, &l.key, &l.value, &l.attention_output, &l.intermediate, &l.output].iter().any(|x| x.weight_t.is_some() || x.bias.is_some())
            || [&l.attention_norm, &l.output_norm].iter().any(|n| n.weight.is_some() || n.bias.is_some())
    };
    let adapted = |l: usize| adapter_grads.is_some_and(|g| g.layers[l].iter().any(Option::is_some));
    (0..grads.layers.len()).find(|&l| any(&grads.layers[l]) || adapted(l))
}

/// Whether a parameter of the embeddings other than the word embeddings trains.
fn embeddings_train(grads: &BertGrads) -> bool {
    grads.position_embeddings.is_some() || grads.token_type_embeddings.is_some() || grads.embeddings_norm.weight.is_some() || grads.embeddings_norm.bias.is_some()
}
