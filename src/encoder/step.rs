//! A pass through the whole model, reading top-down: [`encode_eval`] (eval mode, for
//! predictions, evaluation and the frozen cache) and [`train_step`] (training mode: forward,
//! loss, and backward into the gradient slots of what trains, as far down as
//! [`BackwardExtent`] says).
use super::embeddings::{embed, embed_backward, embedding_values};
use super::head::{head_step, pool, pool_activation_backward};
use super::layer::{layer_backward, layer_forward, LayerValues};
use super::linear::{AdapterSet, LinearValues};
use super::linear::apply;
use super::structure::{cls_rows, layer_shapes, pooler_activation, pooler_input_mask, position_ids, spread_first_rows, BackwardExtent, DropoutSource, Shape};
use crate::config::BertConfig;
use crate::params::{Adapters, BertGrads, BertWeights, GradSlot, Linear, RowGradients};
use crate::tokenize::Batch;
use crate::{Error, Result};

/// Eval-mode outputs for one batch.
pub struct EvalOutput {
    /// (batch × hidden): activation(dense([CLS])), what the classifier reads.
    pub pooled: Vec<f32>,
    /// (tokens × hidden), when asked for.
    pub last_hidden: Option<Vec<f32>>,
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

fn check_length(config: &BertConfig, batch: &Batch) -> Result<()> {
    if batch.seq_len > config.max_tokens() {
        return Err(Error::Options(format!("sequence length {} exceeds the model's limit of {} tokens (max_position_embeddings {})", batch.seq_len, config.max_tokens(), config.max_position_embeddings)));
    }
    Ok(())
}

/// The BertModel part in eval mode (no dropout): pooled outputs, and the last hidden state
/// when `keep_hidden`.
pub fn encode_eval(config: &BertConfig, weights: &BertWeights, adapters: Option<&Adapters>, batch: &Batch, keep_hidden: bool) -> Result<EvalOutput> {
    let set = adapters.map(|adapters| AdapterSet { adapters, grads: None });
    check_length(config, batch)?;
    let s = Shape::of(config, batch);
    let positions = position_ids(config, &batch.ids, batch.seq_len);
    let (mut hidden, _) = embed(&embedding_values(weights)?, &batch.ids, &positions, s, &mut None, false, config.vocab_size)?;
    let shapes = layer_shapes(s, weights.layers.len(), keep_hidden);
    for (l, layer) in weights.layers.iter().enumerate() {
        hidden = layer_forward(&LayerValues::of(layer, set, l)?, hidden, &batch.mask, shapes[l], &mut None, false).0;
    }
    let pooled = pool(&LinearValues::of(&weights.pooler)?, &cls_rows(&hidden, shapes.last().copied().unwrap_or(s)), s.batch, pooler_activation(config));
    Ok(EvalOutput { pooled, last_hidden: keep_hidden.then_some(hidden) })
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
    let backward = BackwardExtent::of(grads, adapters.and_then(|set| set.grads), word_embeddings_train);
    // Forward: embeddings, layers (those the backward reaches keep their tapes), pooler, head.
    let embedding_values = embedding_values(weights)?;
    let positions = position_ids(config, &batch.ids, batch.seq_len);
    let (mut hidden, embedding_tape) = embed(&embedding_values, &batch.ids, &positions, s, &mut dropout, backward.embeddings, config.vocab_size)?;
    let layer_values: Vec<LayerValues<'_>> = weights.layers.iter().enumerate().map(|(l, layer)| LayerValues::of(layer, adapters, l)).collect::<Result<_>>()?;
    let shapes = layer_shapes(s, layer_values.len(), false);
    let top = shapes.last().copied().unwrap_or(s);
    let mut tapes = Vec::with_capacity(layer_values.len());
    for (l, values) in layer_values.iter().enumerate() {
        let (out, tape) = layer_forward(values, hidden, &batch.mask, shapes[l], &mut dropout, backward.reaches_layer(l));
        hidden = out;
        tapes.push(tape);
    }
    let pooler = LinearValues::of(&weights.pooler)?;
    let mut cls = cls_rows(&hidden, top);
    drop(hidden);
    let cls_drop = pooler_input_mask(&mut dropout, config, cls.len());
    apply(&mut cls, &cls_drop);
    let activation = pooler_activation(config);
    let pooled = pool(&pooler, &cls, s.batch, activation);
    let (mut output, mut dpooled) = head_step(head, head_grads, &pooled, labels, &mut dropout, check)?;
    output.forward_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Backward: pooler, the layers it reaches from the top down, embeddings.
    let pooler_in_graph = backward.reaches_encoder() || grads.pooler.weight_t.is_some() || grads.pooler.bias.is_some();
    if !pooler_in_graph {
        return Ok(output);
    }
    pool_activation_backward(&mut dpooled, &pooled, activation);
    let Some(mut dcls) = pooler.backward(&grads.pooler, &cls, &dpooled, s.batch, backward.reaches_encoder()) else {
        return Ok(output);
    };
    apply(&mut dcls, &cls_drop);
    let mut dy = spread_first_rows(&dcls, top.queries, 1, s.hidden);
    for l in (backward.lowest_layer..layer_values.len()).rev() {
        let tape = tapes[l].take().expect("trained layers keep their tape");
        match layer_backward(&layer_values[l], &grads.layers[l], tape, dy, shapes[l], backward.wants_input_grad(l)) {
            Some(dx) => dy = dx,
            None => return Ok(output),
        }
    }
    let tape = embedding_tape.expect("trained embeddings keep their tape");
    output.word_rows = embed_backward(&embedding_values, grads, tape, dy, &batch.ids, &positions, s, word_embeddings_train);
    Ok(output)
}
