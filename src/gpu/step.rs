//! A pass through the model on the GPU, unit by unit like the CPU's [`crate::encoder::EvalPass`]
//! and [`crate::encoder::TrainStep`] — the same units (from the CPU's list), the same shapes,
//! the same dropout masks drawn in the same order (on the CPU, then uploaded). The head runs on
//! the CPU: the top layer's [CLS] rows come back, and d[CLS] goes up.
//!
//! Each unit records its kernels and submits them. A read-back (the [CLS] rows) may not be
//! ready when its unit runs — on the web the browser maps it only after control returns to the
//! event loop — so `advance` can return without progress ([`Progress::Waiting`]); natively it
//! waits.
use web_time::Instant;

use super::layer::{attention_block_backward, embed, embed_backward, feed_forward_backward, layer_forward, BatchIds, EmbeddingTape, LayerAdapters, LayerTape};
use super::model::GpuModel;
use super::{Gpu, GpuRead, GpuTensor, Kernels, Recorder};
use crate::config::BertConfig;
use crate::encoder::structure::{self, layer_shapes, position_ids, BackwardExtent, DropoutSource, Shape};
use crate::encoder::{check_length, head_unit, pooled_of, train_units, work_fraction, EvalOutput, StepOutput, TrainModel, TrainUnit};
use crate::params::BertWeights;
use crate::tokenize::Batch;
use crate::Result;

/// What one call of `advance` did.
pub enum Progress<T> {
    /// A unit ran; more follow.
    Unit,
    /// Nothing ran: a read-back is under way (web only). Call again after yielding.
    Waiting,
    /// The last unit ran.
    Done(T),
}

/// The resident model with the kernels and the device it lives on.
pub struct GpuExecutor {
    pub gpu: Gpu,
    pub(super) kernels: Kernels,
    pub(super) model: GpuModel,
}

impl GpuExecutor {
    pub fn new(gpu: Gpu, model: GpuModel) -> GpuExecutor {
        let kernels = Kernels::new(&gpu);
        GpuExecutor { gpu, kernels, model }
    }

    pub fn model(&self) -> &GpuModel {
        &self.model
    }

    fn record(&self) -> Recorder<'_> {
        self.kernels.record(&self.gpu)
    }

    /// Layer `l`'s adapters (a LoRA run's), or none.
    fn layer_adapters(&self, l: usize) -> LayerAdapters<'_> {
        LayerAdapters { adapters: self.model.adapters.as_ref().map(|layers| &layers[l]) }
    }
}

/// Upload a mask drawn on the CPU.
fn upload(gpu: &Gpu, mask: Option<Vec<f32>>) -> Option<GpuTensor> {
    mask.map(|m| GpuTensor::from_slice(gpu, &m))
}

/// Start reading the [CLS] rows (the first of every `queries` rows) of a layer's output.
fn read_cls(gpu: &GpuExecutor, hidden: &GpuTensor, queries: usize, h: usize) -> GpuRead {
    let mut rec = gpu.record();
    let cls = GpuTensor::zeros(&gpu.gpu, hidden.len / queries);
    for b in 0..hidden.len / (queries * h) {
        rec.copy(hidden, b * queries * h, &cls, b * h, h);
    }
    rec.submit();
    gpu.gpu.start_read(&cls.buffer, 0, cls.len)
}

// ------------------------------------------------------------------------------------ eval

/// An eval-mode pass over one batch on the GPU (no dropout).
pub struct GpuEvalPass {
    s: Shape,
    shapes: Vec<Shape>,
    keep_hidden: bool,
    config: BertConfig,
    ids: Option<BatchIds>,
    batch: Batch,
    positions: Vec<usize>,
    done: usize,
    hidden: Option<GpuTensor>,
    read: Option<GpuRead>,
}

impl GpuEvalPass {
    pub fn new(config: &BertConfig, layers: usize, batch: Batch, keep_hidden: bool) -> Result<GpuEvalPass> {
        check_length(config, &batch)?;
        let s = Shape::of(config, &batch);
        let positions = position_ids(config, &batch.ids, batch.seq_len);
        Ok(GpuEvalPass { s, shapes: layer_shapes(s, layers, keep_hidden), keep_hidden, config: config.clone(), ids: None, batch, positions, done: 0, hidden: None, read: None })
    }

    pub fn units(&self) -> usize {
        self.shapes.len() + 2
    }

    pub fn units_done(&self) -> usize {
        self.done
    }

    /// The next unit; `weights` are the CPU's (for the pooler).
    pub fn advance(&mut self, gpu: &GpuExecutor, weights: &BertWeights) -> Result<Progress<EvalOutput>> {
        gpu.gpu.check()?;
        let layers = self.shapes.len();
        let w = &gpu.model.weights;
        match self.done {
            0 => {
                let mut rec = gpu.record();
                let ids = BatchIds::upload(&rec, &self.batch.ids, &self.positions, &self.batch.mask, false);
                self.hidden = Some(embed(&mut rec, w, &ids, self.s, None, false).0);
                rec.submit();
                self.ids = Some(ids);
            }
            unit if unit <= layers => {
                let l = unit - 1;
                let mut rec = gpu.record();
                let x = self.hidden.take().expect("the embeddings ran");
                let mask = &self.ids.as_ref().expect("uploaded").mask;
                let ad = gpu.layer_adapters(l);
                self.hidden = Some(layer_forward(&mut rec, &w.layers[l], ad, x, mask, self.shapes[l], [None, None, None], Default::default(), false).0);
                rec.submit();
            }
            _ => {
                let hidden = self.hidden.as_ref().expect("the layers ran");
                let read = match &mut self.read {
                    Some(read) => read,
                    None => {
                        let top = self.shapes.last().copied().unwrap_or(self.s);
                        let read = if self.keep_hidden { gpu.gpu.start_read(&hidden.buffer, 0, hidden.len) } else { read_cls(gpu, hidden, top.queries, self.s.hidden) };
                        self.read.insert(read)
                    }
                };
                let Some(values) = read.try_take(&gpu.gpu)? else { return Ok(Progress::Waiting) };
                self.done += 1;
                let (cls, last_hidden) = if self.keep_hidden { (structure::cls_rows(&values, self.s), Some(values)) } else { (values, None) };
                let pooled = pooled_of(&self.config, weights, &cls, self.s.batch)?;
                return Ok(Progress::Done(EvalOutput { pooled, last_hidden }));
            }
        }
        self.done += 1;
        Ok(Progress::Unit)
    }
}

// -------------------------------------------------------------------------------- training

/// A training step over one batch on the GPU (see the module doc).
pub struct GpuTrainStep {
    batch: Batch,
    labels: Vec<usize>,
    s: Shape,
    shapes: Vec<Shape>,
    backward: BackwardExtent,
    pooler_in_graph: bool,
    config: BertConfig,
    positions: Vec<usize>,
    units: Vec<TrainUnit>,
    done: usize,
    ids: Option<BatchIds>,
    hidden: Option<GpuTensor>,
    gradient: Option<GpuTensor>,
    embedding_tape: Option<EmbeddingTape>,
    tapes: Vec<Option<LayerTape>>,
    read: Option<GpuRead>,
    output: Option<StepOutput>,
    forward_ms: f64,
}

impl GpuTrainStep {
    /// A step of `model` (the CPU's view: head, pooler, which tensors train) over `batch`.
    pub fn new(config: &BertConfig, model: TrainModel<'_>, batch: Batch, labels: Vec<usize>) -> Result<GpuTrainStep> {
        check_length(config, &batch)?;
        let s = Shape::of(config, &batch);
        let layers = model.weights.layers.len();
        let backward = BackwardExtent::of(model.grads, model.adapters.and_then(|set| set.grads), model.word_embeddings_train);
        let pooler_in_graph = backward.reaches_encoder() || model.grads.pooler.weight_t.is_some() || model.grads.pooler.bias.is_some();
        let positions = position_ids(config, &batch.ids, batch.seq_len);
        Ok(GpuTrainStep {
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
            ids: None,
            hidden: None,
            gradient: None,
            embedding_tape: None,
            tapes: (0..layers).map(|_| None).collect(),
            read: None,
            output: None,
            forward_ms: 0.0,
        })
    }

    pub fn units(&self) -> usize {
        self.units.len()
    }

    pub fn units_done(&self) -> usize {
        self.done
    }

    /// The share of the step's matrix products done, 0..1 (as the CPU step estimates it).
    pub fn work_fraction(&self) -> f64 {
        work_fraction(&self.units, self.done, &self.shapes)
    }

    /// Run the next unit (see [`Progress`]). `model` is the CPU's view of the run (the head's
    /// weights and gradient slots); `check` judges the loss before any gradient is written.
    pub fn advance(&mut self, gpu: &GpuExecutor, model: TrainModel<'_>, dropout: &mut Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<Progress<StepOutput>> {
        gpu.gpu.check()?;
        let unit = self.units[self.done];
        let started = Instant::now();
        if !self.run_unit(unit, gpu, model, dropout, check)? {
            return Ok(Progress::Waiting);
        }
        if unit.is_forward() {
            self.forward_ms += started.elapsed().as_secs_f64() * 1000.0;
        }
        self.done += 1;
        if self.done < self.units.len() {
            return Ok(Progress::Unit);
        }
        let mut output = self.output.take().expect("the head unit gives the output");
        output.forward_ms = self.forward_ms;
        Ok(Progress::Done(output))
    }

    /// Run `unit`; false when it waits for a read-back.
    fn run_unit(&mut self, unit: TrainUnit, gpu: &GpuExecutor, model: TrainModel<'_>, dropout: &mut Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<bool> {
        let (w, g) = (&gpu.model.weights, &gpu.model.grads);
        if unit == TrainUnit::Head {
            return self.head(gpu, model, dropout, check);
        }
        let mut rec = gpu.record();
        match unit {
            TrainUnit::Embeddings => {
                gpu.model.clear_gradients(&gpu.kernels, &gpu.gpu);
                let ids = BatchIds::upload(&rec, &self.batch.ids, &self.positions, &self.batch.mask, self.backward.embeddings);
                let drop = upload(&gpu.gpu, structure::embedding_mask(dropout, self.s));
                let (hidden, tape) = embed(&mut rec, w, &ids, self.s, drop, self.backward.embeddings);
                self.hidden = Some(hidden);
                self.embedding_tape = tape;
                self.ids = Some(ids);
            }
            TrainUnit::LayerForward(l) => {
                let s = self.shapes[l];
                let ad = gpu.layer_adapters(l);
                let adapter_masks = structure::adapter_masks(dropout, s, |p| ad.inputs(p)).map(|m| upload(&gpu.gpu, m));
                let masks = structure::layer_masks(dropout, s).map(|m| upload(&gpu.gpu, m));
                let x = self.hidden.take().expect("the layer below ran");
                let mask = &self.ids.as_ref().expect("uploaded").mask;
                let (y, tape) = layer_forward(&mut rec, &w.layers[l], ad, x, mask, s, masks, adapter_masks, self.backward.reaches_layer(l));
                self.hidden = Some(y);
                self.tapes[l] = tape;
            }
            TrainUnit::FeedForwardBackward(l) => {
                let tape = self.tapes[l].as_ref().expect("trained layers keep their tape");
                let dy = self.gradient.take().expect("the layer above gave its gradient");
                self.gradient = Some(feed_forward_backward(&mut rec, &w.layers[l], &g.layers[l], gpu.layer_adapters(l), tape, dy, self.shapes[l]));
            }
            TrainUnit::AttentionBackward(l) => {
                let tape = self.tapes[l].take().expect("trained layers keep their tape");
                let dsum = self.gradient.take().expect("the upper half gave its gradient");
                self.gradient = attention_block_backward(&mut rec, &w.layers[l], &g.layers[l], gpu.layer_adapters(l), tape, dsum, self.shapes[l], self.backward.wants_input_grad(l));
            }
            TrainUnit::EmbeddingsBackward => {
                let tape = self.embedding_tape.take().expect("trained embeddings keep their tape");
                let dy = self.gradient.take().expect("the bottom layer gave its input's gradient");
                embed_backward(&mut rec, w, g, tape, dy, self.ids.as_ref().expect("uploaded"), self.s);
            }
            TrainUnit::Head => unreachable!("handled above"),
        }
        rec.submit();
        Ok(true)
    }

    /// The head on the CPU (see [`head_unit`]) on the [CLS] rows read back; d[CLS] goes up to
    /// the top layer's rows. False while the read-back is under way.
    fn head(&mut self, gpu: &GpuExecutor, model: TrainModel<'_>, dropout: &mut Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<bool> {
        let top = self.shapes.last().copied().unwrap_or(self.s);
        let h = self.s.hidden;
        let read = match &mut self.read {
            Some(read) => read,
            None => self.read.insert(read_cls(gpu, self.hidden.as_ref().expect("the layers ran"), top.queries, h)),
        };
        let Some(cls) = read.try_take(&gpu.gpu)? else { return Ok(false) };
        self.read = None;
        self.hidden = None;
        let (output, dcls) = head_unit(&self.config, model, cls, &self.labels, self.pooler_in_graph, self.backward.reaches_encoder(), dropout, check)?;
        self.output = Some(output);
        if let Some(dcls) = dcls {
            let gradient = GpuTensor::zeros(&gpu.gpu, self.s.batch * top.queries * h);
            let part = GpuTensor::from_slice(&gpu.gpu, &dcls);
            let mut rec = gpu.record();
            for b in 0..self.s.batch {
                rec.copy(&part, b * h, &gradient, b * top.queries * h, h);
            }
            rec.submit();
            self.gradient = Some(gradient);
        }
        Ok(true)
    }
}
