//! A pass through the whole model, reading top-down, as a resumable sequence of units of at
//! most one layer's forward (or half a layer's backward) of one batch: [`EvalPass`] (eval mode,
//! for predictions, evaluation and the frozen cache) and [`TrainStep`] (training mode: forward,
//! loss, and backward into the gradient slots of what trains, as far down as
//! [`BackwardExtent`] says). Each owns the pass's intermediate values between its units, so a
//! driver can stop between two units, or (a future asynchronous executor) wait between them;
//! running the units one after the other is the same arithmetic in the same order as the
//! whole-pass functions [`encode_eval`] and [`train_step`], which do just that.
use std::mem::take;

use super::embeddings::{embed, embed_backward, embedding_values, EmbeddingTape};
use super::head::{head_step, pool, pool_activation_backward};
use super::layer::{attention_block_backward, feed_forward_backward, layer_forward, LayerTape, LayerValues};
use super::linear::{apply, AdapterSet, LinearValues};
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
    /// Time of the forward pass and the loss, milliseconds (the rest of the step is backward).
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

pub(crate) fn check_length(config: &BertConfig, batch: &Batch) -> Result<()> {
    if batch.seq_len > config.max_tokens() {
        return Err(Error::Options(format!("sequence length {} exceeds the model's limit of {} tokens (max_position_embeddings {})", batch.seq_len, config.max_tokens(), config.max_position_embeddings)));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------ eval

/// An eval-mode pass over one batch (no dropout) in progress: the embeddings, then one unit
/// per layer, then the pooler.
pub struct EvalPass {
    batch: Batch,
    s: Shape,
    shapes: Vec<Shape>,
    keep_hidden: bool,
    config: BertConfig,
    /// Each token's position id.
    positions: Vec<usize>,
    /// Units done: 0 before the embeddings, 1 + l after layer l.
    done: usize,
    hidden: Vec<f32>,
}

impl EvalPass {
    /// The pass over `batch` through `weights`; `keep_hidden` keeps the last hidden state of
    /// every token (else the top layer computes the [CLS] rows alone).
    pub fn new(config: &BertConfig, weights: &BertWeights, batch: Batch, keep_hidden: bool) -> Result<EvalPass> {
        check_length(config, &batch)?;
        let s = Shape::of(config, &batch);
        let shapes = layer_shapes(s, weights.layers.len(), keep_hidden);
        let positions = position_ids(config, &batch.ids, batch.seq_len);
        Ok(EvalPass { batch, s, shapes, keep_hidden, config: config.clone(), positions, done: 0, hidden: Vec::new() })
    }

    /// Units of the whole pass: the embeddings, each layer, the pooler.
    pub fn units(&self) -> usize {
        self.shapes.len() + 2
    }

    pub fn units_done(&self) -> usize {
        self.done
    }

    /// Run the next unit with the same `weights` and `adapters` as every other unit of the
    /// pass; the outputs once the last one is done.
    pub fn advance(&mut self, weights: &BertWeights, adapters: Option<&Adapters>) -> Result<Option<EvalOutput>> {
        let layers = self.shapes.len();
        match self.done {
            0 => self.hidden = embed(&embedding_values(weights)?, &self.batch.ids, &self.positions, self.s, &mut None, false, self.config.vocab_size)?.0,
            unit if unit <= layers => {
                let l = unit - 1;
                let set = adapters.map(|adapters| AdapterSet { adapters, grads: None });
                let values = LayerValues::of(&weights.layers[l], set, l)?;
                self.hidden = layer_forward(&values, take(&mut self.hidden), &self.batch.mask, self.shapes[l], &mut None, false).0;
            }
            _ => {
                let top = self.shapes.last().copied().unwrap_or(self.s);
                let pooled = pooled_of(&self.config, weights, &cls_rows(&self.hidden, top), self.s.batch)?;
                self.done += 1;
                return Ok(Some(EvalOutput { pooled, last_hidden: self.keep_hidden.then(|| take(&mut self.hidden)) }));
            }
        }
        self.done += 1;
        Ok(None)
    }
}

/// The BertModel part in eval mode (no dropout): pooled outputs, and the last hidden state
/// when `keep_hidden`. An [`EvalPass`] run to its end.
pub fn encode_eval(config: &BertConfig, weights: &BertWeights, adapters: Option<&Adapters>, batch: &Batch, keep_hidden: bool) -> Result<EvalOutput> {
    let mut pass = EvalPass::new(config, weights, batch.clone(), keep_hidden)?;
    loop {
        if let Some(output) = pass.advance(weights, adapters)? {
            return Ok(output);
        }
    }
}

// -------------------------------------------------------------------------------- training

/// One unit of a training step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TrainUnit {
    Embeddings,
    LayerForward(usize),
    /// Pooler, classifier dropout, classifier, loss; the classifier's and the pooler's
    /// backward.
    Head,
    /// The upper half of layer l's backward (its feed-forward block).
    FeedForwardBackward(usize),
    /// The lower half of layer l's backward (its attention block).
    AttentionBackward(usize),
    EmbeddingsBackward,
}

impl TrainUnit {
    pub(crate) fn is_forward(self) -> bool {
        matches!(self, TrainUnit::Embeddings | TrainUnit::LayerForward(_) | TrainUnit::Head)
    }

    /// The unit's share of a step's matrix products, in h² multiply-adds per token: a layer's
    /// forward is 12 (query, key, value and attention output 1 each, the feed-forward block
    /// 8), its backward twice that; the key and value run on every token, the rest on the
    /// layer's query rows. For progress within a step only.
    pub(crate) fn relative_work(self, shapes: &[Shape]) -> f64 {
        let queries = |l: usize| shapes[l].queries as f64 / shapes[l].len.max(1) as f64;
        match self {
            TrainUnit::LayerForward(l) => 2.0 + 10.0 * queries(l),
            TrainUnit::FeedForwardBackward(l) => 16.0 * queries(l),
            TrainUnit::AttentionBackward(l) => 4.0 + 4.0 * queries(l),
            TrainUnit::Embeddings | TrainUnit::Head | TrainUnit::EmbeddingsBackward => 0.0,
        }
    }
}

/// The share of a step's matrix products done after its first `done` units, 0..1 (for progress;
/// either executor's step).
pub(crate) fn work_fraction(units: &[TrainUnit], done: usize, shapes: &[Shape]) -> f64 {
    let work = |units: &[TrainUnit]| units.iter().map(|u| u.relative_work(shapes)).sum::<f64>();
    let total = work(units);
    if total == 0.0 {
        return done as f64 / units.len() as f64;
    }
    work(&units[..done]) / total
}

/// The units of a step, in order: the embeddings, each layer forward, the head; then, when the
/// backward reaches the encoder, each layer it reaches from the top down (two halves each) and
/// the embeddings when they train.
pub(crate) fn train_units(layers: usize, backward: BackwardExtent) -> Vec<TrainUnit> {
    let mut units = vec![TrainUnit::Embeddings];
    units.extend((0..layers).map(TrainUnit::LayerForward));
    units.push(TrainUnit::Head);
    if backward.reaches_encoder() {
        for l in (backward.lowest_layer..layers).rev() {
            units.extend([TrainUnit::FeedForwardBackward(l), TrainUnit::AttentionBackward(l)]);
        }
        if backward.embeddings {
            units.push(TrainUnit::EmbeddingsBackward);
        }
    }
    units
}

/// A training step over one batch in progress (training mode, dropout from the run's stream):
/// forward, loss, and backward into the gradient slots of the trainable parameters, one unit
/// per [`TrainStep::advance`]. The loss is checked before any gradient is written, so a
/// non-finite loss leaves every slot as it was. A step dropped before its last unit leaves
/// partial gradients in the slots, never in the weights (the optimizer runs after it).
pub struct TrainStep {
    batch: Batch,
    labels: Vec<usize>,
    s: Shape,
    shapes: Vec<Shape>,
    backward: BackwardExtent,
    /// Whether the pooler's backward runs (it trains, or the backward goes below it).
    pooler_in_graph: bool,
    config: BertConfig,
    /// Each token's position id.
    positions: Vec<usize>,
    units: Vec<TrainUnit>,
    done: usize,
    /// The hidden state on the way up.
    hidden: Vec<f32>,
    /// The gradient on the way down: of the layer's output, or (between a layer's two halves)
    /// of its attention block's residual sum.
    gradient: Vec<f32>,
    embedding_tape: Option<EmbeddingTape>,
    /// What each layer the backward reaches keeps of its forward, until its backward.
    tapes: Vec<Option<LayerTape>>,
    /// The loss and logits, from the head unit on.
    output: Option<StepOutput>,
    forward_ms: f64,
}

impl TrainStep {
    /// A step of `model` over `batch` with `labels`.
    pub fn new(config: &BertConfig, model: TrainModel<'_>, batch: Batch, labels: Vec<usize>) -> Result<TrainStep> {
        check_length(config, &batch)?;
        let s = Shape::of(config, &batch);
        let layers = model.weights.layers.len();
        let grads = model.grads;
        let backward = BackwardExtent::of(grads, model.adapters.and_then(|set| set.grads), model.word_embeddings_train);
        let pooler_in_graph = backward.reaches_encoder() || grads.pooler.weight_t.is_some() || grads.pooler.bias.is_some();
        let positions = position_ids(config, &batch.ids, batch.seq_len);
        Ok(TrainStep {
            batch,
            labels,
            s,
            shapes: layer_shapes(s, layers, false),
            backward,
            pooler_in_graph,
            config: config.clone(),
            positions,
            units: train_units(layers, backward),
            done: 0,
            hidden: Vec::new(),
            gradient: Vec::new(),
            embedding_tape: None,
            tapes: (0..layers).map(|_| None).collect(),
            output: None,
            forward_ms: 0.0,
        })
    }

    /// Units of the whole step.
    pub fn units(&self) -> usize {
        self.units.len()
    }

    pub fn units_done(&self) -> usize {
        self.done
    }

    /// The share of the step's matrix products done, 0..1 (an estimate, for progress).
    pub fn work_fraction(&self) -> f64 {
        work_fraction(&self.units, self.done, &self.shapes)
    }

    /// Run the next unit, with the same `model` as every other unit of the step and the run's
    /// dropout stream; the step's output once the last one is done. `check` judges the loss
    /// before any gradient is written.
    pub fn advance(&mut self, model: TrainModel<'_>, dropout: &mut Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<Option<StepOutput>> {
        let unit = self.units[self.done];
        let started = web_time::Instant::now();
        self.run_unit(unit, model, dropout, check)?;
        if unit.is_forward() {
            self.forward_ms += started.elapsed().as_secs_f64() * 1000.0;
        }
        self.done += 1;
        if self.done < self.units.len() {
            return Ok(None);
        }
        let mut output = self.output.take().expect("the head unit gives the output");
        output.forward_ms = self.forward_ms;
        Ok(Some(output))
    }

    fn run_unit(&mut self, unit: TrainUnit, model: TrainModel<'_>, dropout: &mut Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<()> {
        let s = self.s;
        let layer_values = |l: usize| LayerValues::of(&model.weights.layers[l], model.adapters, l);
        match unit {
            TrainUnit::Embeddings => {
                let (hidden, tape) = embed(&embedding_values(model.weights)?, &self.batch.ids, &self.positions, s, dropout, self.backward.embeddings, self.config.vocab_size)?;
                self.hidden = hidden;
                self.embedding_tape = tape;
            }
            TrainUnit::LayerForward(l) => {
                let (out, tape) = layer_forward(&layer_values(l)?, take(&mut self.hidden), &self.batch.mask, self.shapes[l], dropout, self.backward.reaches_layer(l));
                self.hidden = out;
                self.tapes[l] = tape;
            }
            TrainUnit::Head => self.head(model, dropout, check)?,
            TrainUnit::FeedForwardBackward(l) => {
                let tape = self.tapes[l].as_ref().expect("trained layers keep their tape");
                self.gradient = feed_forward_backward(&layer_values(l)?, &model.grads.layers[l], tape, take(&mut self.gradient), self.shapes[l]);
            }
            TrainUnit::AttentionBackward(l) => {
                let tape = self.tapes[l].take().expect("trained layers keep their tape");
                let dx = attention_block_backward(&layer_values(l)?, &model.grads.layers[l], tape, take(&mut self.gradient), self.shapes[l], self.backward.wants_input_grad(l));
                self.gradient = dx.unwrap_or_default();
            }
            TrainUnit::EmbeddingsBackward => {
                let tape = self.embedding_tape.take().expect("trained embeddings keep their tape");
                let word_rows = embed_backward(&embedding_values(model.weights)?, model.grads, tape, take(&mut self.gradient), &self.batch.ids, &self.positions, s, model.word_embeddings_train);
                self.output.as_mut().expect("the head unit gives the output").word_rows = word_rows;
            }
        }
        Ok(())
    }

    /// Pooler, classifier and loss; then the classifier's backward and, when it is in the
    /// graph, the pooler's, down to the gradient of the top layer's output.
    fn head(&mut self, model: TrainModel<'_>, dropout: &mut Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<()> {
        let top = self.shapes.last().copied().unwrap_or(self.s);
        let cls = cls_rows(&self.hidden, top);
        self.hidden = Vec::new();
        let (output, dcls) = head_unit(&self.config, model, cls, &self.labels, self.pooler_in_graph, self.backward.reaches_encoder(), dropout, check)?;
        self.output = Some(output);
        if let Some(dcls) = dcls {
            self.gradient = spread_first_rows(&dcls, top.queries, 1, self.s.hidden);
        }
        Ok(())
    }
}

/// The head of a training step on the top layer's [CLS] rows (batch × hidden), on the CPU for
/// either executor (about a thousandth of a step's work; the GPU reads the rows back): the
/// pooler (after RoBERTa's dropout), the classifier and the loss, judged by `check` before any
/// gradient is written; then the classifier's backward and, when `pooler_in_graph`, the
/// pooler's. Returns the output and, when the backward goes on into the encoder, d[CLS].
#[allow(clippy::too_many_arguments)] // the step's state the head reads, all distinct
pub(crate) fn head_unit(config: &BertConfig, model: TrainModel<'_>, mut cls: Vec<f32>, labels: &[usize], pooler_in_graph: bool, reaches_encoder: bool, dropout: &mut Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<(StepOutput, Option<Vec<f32>>)> {
    let batch = labels.len();
    let pooler = LinearValues::of(&model.weights.pooler)?;
    let cls_drop = pooler_input_mask(dropout, config, cls.len());
    apply(&mut cls, &cls_drop);
    let activation = pooler_activation(config);
    let pooled = pool(&pooler, &cls, batch, activation);
    let (output, mut dpooled) = head_step(model.head, model.head_grads, &pooled, labels, dropout, check)?;
    if !pooler_in_graph {
        return Ok((output, None));
    }
    pool_activation_backward(&mut dpooled, &pooled, activation);
    let dcls = pooler.backward(&model.grads.pooler, &cls, &dpooled, batch, reaches_encoder).map(|mut dcls| {
        apply(&mut dcls, &cls_drop);
        dcls
    });
    Ok((output, dcls))
}

/// The pooled outputs of the top layer's [CLS] rows in eval mode (no dropout).
pub(crate) fn pooled_of(config: &BertConfig, weights: &BertWeights, cls: &[f32], batch: usize) -> Result<Vec<f32>> {
    Ok(pool(&LinearValues::of(&weights.pooler)?, cls, batch, pooler_activation(config)))
}

/// One training step through the whole model (training mode, dropout from `dropout`):
/// forward, loss, and backward into the gradient slots of the trainable parameters. A
/// [`TrainStep`] run to its end.
pub fn train_step(config: &BertConfig, model: TrainModel<'_>, batch: &Batch, labels: &[usize], dropout: Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<StepOutput> {
    let mut step = TrainStep::new(config, model, batch.clone(), labels.to_vec())?;
    let mut dropout = dropout;
    loop {
        if let Some(output) = step.advance(model, &mut dropout, &check)? {
            return Ok(output);
        }
    }
}
