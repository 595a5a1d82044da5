//! A step-wise training run: each call to [`Run::step`] does one bounded piece of work — one
//! optimizer step, or one chunk of encoding or evaluation — and returns the [`Event`] that
//! describes it, so a driver (CLI loop, web worker) can report progress and stop between calls.
//! A piece runs as units of at most about one layer's work of one batch ([`encoder::TrainStep`],
//! [`encoder::EvalPass`], then the optimizer): [`Run::advance`] does one unit and returns the
//! piece's [`UnitProgress`] until its last unit gives its event, so that a driver on a single
//! thread (the page) can stop within one unit and show progress inside a long step.
//! `step` is `advance` until the next event: the same arithmetic, in the same order.
//!
//! A run goes: `start` → (frozen only: encode every sentence once, in chunks, into a cache) →
//! an evaluation before training (the map's first snapshot) → for each epoch: training steps,
//! then an evaluation of a fixed training sample and the whole validation set, in chunks →
//! `done`, whose per-class metrics reuse the last evaluation. Each evaluation also gives the
//! embedding map's snapshot and (after an epoch) how far each block of weights moved.
//!
//! Strategies: `frozen` trains only the classifier — the encoder and pooler are frozen, so their
//! outputs are computed once (in eval mode, i.e. without dropout) and a frozen run costs about
//! one forward pass over the data; `top:K` trains the top K encoder layers + pooler +
//! classifier; `full` trains everything (see [`crate::run_model`]). When a run ends (done or
//! stopped) it frees its gradient buffers, optimizer state and cache and keeps only what
//! predictions and export need.
//!
//! This file is the run's state machine ([`Run`], its states and what each step does);
//! `evaluation` evaluates the model in chunks and scores it, `snapshot` draws the embedding
//! map, `export` gives predictions and the trained model's files, and `on_gpu` moves a run's
//! encoder to the GPU, brings its weights back and answers a lost device.
use std::collections::VecDeque;

use send_wrapper::SendWrapper;
use web_time::Instant;

use crate::alloc_stats;
use crate::config::BertConfig;
use crate::data::{self, Dataset};
use crate::encoder::{self, DropoutSource, EvalOutput, EvalPass, StepOutput, TrainStep};
use crate::gpu::{GpuDownload, GpuEvalPass, GpuExecutor, GpuTrainStep, GpuUpdate, Progress};
use crate::events::{Event, Phase, UnitProgress};
use crate::insight::PrincipalPlane;
use crate::kernels;
use crate::metrics;
use crate::model::{self, BertWeights, Dropout, Pretrained};
use crate::optim::{self, Adam, AdamConfig};
use crate::plan::{self, DataShape, RunPlan};
use crate::rng::{self, SeededRng};
use crate::run_model::RunModel;
use crate::tokenize::TextEncoder;
use crate::types::{Strategy, TrainOptions};
use crate::{Error, Result};

mod evaluation;
mod export;
mod on_gpu;
mod passes;
mod snapshot;

use evaluation::{EvalItem, Evaluation};
use passes::{ChunkPass, InProgress, StepPass};
use snapshot::map_sample;

/// Tokenized sentences with their label ids.
struct EncodedSet {
    ids: Vec<Vec<u32>>,
    labels: Vec<usize>,
}

fn encode_set(encoder: &TextEncoder, ds: &Dataset) -> Result<EncodedSet> {
    Ok(EncodedSet { ids: encoder.encode_all(&ds.texts())?, labels: ds.label_ids() })
}

impl EncodedSet {
    fn lengths(&self) -> Vec<usize> {
        self.ids.iter().map(Vec::len).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RunState {
    Start,
    /// Frozen: encoding sentence `next` of the train-then-validation list into the cache.
    Caching { next: usize },
    Training,
    /// Evaluating item `next` of `eval_items` after `epoch` epochs of training (0: before).
    Evaluating { next: usize },
    Report,
    /// Stopping: bringing a GPU run's weights back before the Stopped event.
    Stopping,
    Finished,
}

/// What one call of [`Run::advance`] did.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per call; boxing would only add noise
pub enum Advance {
    /// One unit of a piece of work that is not finished yet.
    Unit(UnitProgress),
    /// The next event of the run (a piece of work finished, or the run's start, report or end).
    Event(Event),
}

/// Where the time of the last optimizer step went (milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StepTiming {
    /// Batching, forward pass and loss.
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
}

fn validate(strategy: Strategy, options: &TrainOptions, config: &BertConfig, train: &Dataset, val: Option<&Dataset>) -> Result<()> {
    let num_layers = config.num_hidden_layers;
    if let Strategy::Top(k) = strategy {
        if k > num_layers {
            return Err(Error::Options(format!("top:{k} asks for {k} layers but the model has {num_layers}; use top:1 … top:{num_layers} or full")));
        }
    }
    if let Strategy::Lora(rank) = strategy {
        let hidden = config.hidden_size;
        if rank > hidden {
            return Err(Error::Options(format!("lora:{rank}: the rank cannot exceed the model's hidden size {hidden}; ranks of 4 to 64 are usual (e.g. lora:8)")));
        }
        options.lora.validate()?;
    }
    options.validate()?;
    crate::options::total_steps(train.len(), options)?;
    if options.max_len > config.max_tokens() {
        return Err(Error::Options(format!("max length {} exceeds the model's limit of {} tokens", options.max_len, config.max_tokens())));
    }
    if train.labels.len() < 2 || train.is_empty() {
        return Err(Error::Data("training needs labelled sentences of at least two classes".into()));
    }
    if val.is_some_and(|val| val.labels != train.labels) {
        return Err(Error::Data("validation data must use the training classes (parse it with the training labels)".into()));
    }
    Ok(())
}

pub struct Run {
    strategy: Strategy,
    options: TrainOptions,
    config: BertConfig,
    config_json: serde_json::Value,
    tokenizer_json: Vec<u8>,
    encoder: TextEncoder,
    labels: Vec<String>,
    train: EncodedSet,
    val: Option<EncodedSet>,
    /// The training sentences each epoch's training accuracy is measured on, then every
    /// validation sentence.
    eval_items: Vec<EvalItem>,
    train_eval_size: usize,
    /// Positions in `eval_items` of the sentences on the embedding map (ascending), and their
    /// texts.
    map_items: Vec<usize>,
    map_texts: Vec<String>,
    projection: Option<PrincipalPlane>,
    /// The pre-trained weights, to measure how far each block moved.
    original: BertWeights,
    /// Events produced by the last unit of work beyond the one it returned.
    pending: VecDeque<Event>,
    /// The optimizer step or chunk under way, between two calls of [`Run::advance`].
    in_progress: Option<InProgress>,
    plan: RunPlan,
    model: RunModel,
    optimizer: Option<Adam>,
    /// The GPU executor when the encoder runs there (see [`Run::use_gpu`]); used only on the
    /// thread that made it (a GPU run's units do not go to the pool).
    gpu: Option<SendWrapper<GpuExecutor>>,
    /// The trained weights coming back from the GPU, and the step they are of once back.
    download: Option<SendWrapper<GpuDownload>>,
    synced_step: usize,
    synced_epoch: usize,
    /// The head's values at the last sync (see [`Run::restore_synced_head`]).
    synced_head: Vec<(candle_core::Tensor, Vec<f32>)>,
    /// Where the encoder runs (see [`Run::device`]).
    device: String,
    /// Frozen strategy: pooled outputs of the (frozen) encoder, train rows then validation rows.
    cache: Vec<Vec<f32>>,
    /// Frozen: the training rows of `cache`, contiguous (n × hidden), once encoding is done.
    cached_train: Option<Vec<f32>>,
    evaluation: Evaluation,
    last_evaluation: Option<Evaluation>,
    shuffle_rng: SeededRng,
    dropout_rng: SeededRng,
    dropout: Dropout,
    state: RunState,
    /// Epochs whose training steps are done.
    epoch: usize,
    order: Vec<usize>,
    position: usize,
    global_step: usize,
    epoch_loss_sum: f64,
    epoch_batches: usize,
    last_train_accuracy: f64,
    last_val_accuracy: Option<f64>,
    last_timing: StepTiming,
    /// Estimated GFLOP done so far (the unit of the plan's `work_total`).
    work_done: f64,
    /// Heap allocated when the run started (its peak is measured beyond it).
    baseline_bytes: usize,
    started: Instant,
    done_event: Option<Event>,
}

impl Run {
    /// A run of `strategy` from the pre-trained weights. `val` must be parsed with the training
    /// labels (see [`crate::data`]).
    /// With a `memory_limit`, a run whose estimated peak would not fit is refused before it
    /// allocates its weights.
    pub fn start(pretrained: &Pretrained, strategy: Strategy, train: &Dataset, val: Option<&Dataset>, options: &TrainOptions, memory_limit: Option<u64>) -> Result<Run> {
        let config = &pretrained.config;
        validate(strategy, options, config, train, val)?;
        let baseline_bytes = alloc_stats::allocated_bytes();
        alloc_stats::reset_peak();
        let encoder = pretrained.encoder(options.max_len)?;
        let train_set = encode_set(&encoder, train)?;
        let val_set = val.map(|v| encode_set(&encoder, v)).transpose()?;
        let sample = train_eval_sample(train, options);
        let train_eval_size = sample.len();
        let mut eval_items: Vec<EvalItem> = sample.iter().map(|&i| EvalItem::Train(i)).collect();
        eval_items.extend((0..val_set.as_ref().map_or(0, |v| v.ids.len())).map(EvalItem::Val));
        let (map_items, map_texts) = map_sample(&eval_items, train, val, options.seed);
        let plan = run_plan(config, strategy, options, train.labels.len(), &train_set, val_set.as_ref(), train_eval_size);
        if let Some(limit) = memory_limit {
            plan::check_fits(&plan, alloc_stats::allocated_bytes() as u64, limit)?;
        }
        let head = model::init_classifier(config, train.labels.len(), options.seed)?;
        let model = RunModel::build(pretrained, strategy, head, &options.lora, options.seed)?;
        let adam = AdamConfig { weight_decay: options.weight_decay, ..AdamConfig::default() };
        let mut shuffle_rng = shuffle_stream(options.seed);
        let order = rng::permutation(&mut shuffle_rng, train.len());
        Ok(Run {
            strategy,
            options: options.clone(),
            config: config.clone(),
            config_json: pretrained.config_json.clone(),
            tokenizer_json: pretrained.tokenizer_json.clone(),
            train: train_set,
            val: val_set,
            eval_items,
            train_eval_size,
            map_items,
            map_texts,
            projection: None,
            original: pretrained.weights.clone(),
            pending: VecDeque::new(),
            in_progress: None,
            plan,
            encoder,
            labels: train.labels.clone(),
            optimizer: Some(Adam::new(model.params.clone(), adam)),
            gpu: None,
            download: None,
            synced_step: 0,
            synced_epoch: 0,
            synced_head: Vec::new(),
            device: "cpu".into(),
            model,
            cache: Vec::new(),
            cached_train: None,
            evaluation: Evaluation::default(),
            last_evaluation: None,
            shuffle_rng,
            dropout_rng: rng::seeded(options.seed, 2),
            dropout: Dropout { adapter: options.lora.dropout as f32, ..Dropout::from_config(config) },
            state: RunState::Start,
            epoch: 0,
            order,
            position: 0,
            global_step: 0,
            epoch_loss_sum: 0.0,
            epoch_batches: 0,
            last_train_accuracy: 0.0,
            last_val_accuracy: None,
            last_timing: StepTiming::default(),
            work_done: 0.0,
            baseline_bytes,
            started: Instant::now(),
            done_event: None,
        })
    }

    /// Where the encoder runs: "cpu", or "gpu: <adapter> (<backend>)".
    pub fn device(&self) -> String {
        self.device.clone()
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.train.ids.len().div_ceil(self.options.batch_size)
    }

    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.options.epochs
    }

    /// The run's estimated steps, compute and memory.
    pub fn plan(&self) -> &RunPlan {
        &self.plan
    }

    pub fn finished(&self) -> bool {
        self.state == RunState::Finished
    }

    /// Where the time of the last optimizer step went.
    pub fn last_step_timing(&self) -> StepTiming {
        self.last_timing
    }

    fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    fn name(&self) -> String {
        self.strategy.to_string()
    }

    /// Learning rates (body, head) for the step about to run.
    fn learning_rates(&self) -> (f64, f64) {
        learning_rates(&self.options, self.strategy, self.global_step, self.total_steps())
    }

    /// Advance by one bounded piece of work (an optimizer step, a chunk of encoding or
    /// evaluation, the start, an epoch's end, the report) and describe it: [`Run::advance`]
    /// until it gives an event.
    pub fn step(&mut self) -> Event {
        loop {
            if let Advance::Event(event) = self.advance() {
                return event;
            }
        }
    }

    /// Advance by one unit — at most about one layer's work of one batch — and describe it:
    /// the piece of work's progress, or its event once it is finished.
    pub fn advance(&mut self) -> Advance {
        if let Some(event) = self.pending.pop_front() {
            return Advance::Event(event);
        }
        // A GPU run's units stay on this thread, where its device lives.
        let result = if self.gpu.is_some() { self.try_advance() } else { kernels::on_pool(|| self.try_advance()) };
        match result {
            Ok(advance) => advance,
            Err(e) if self.gpu.as_deref().is_some_and(|g| g.gpu.is_lost()) => Advance::Event(self.stop_after_device_loss(&e)),
            Err(e) => {
                self.release_training_state();
                self.state = RunState::Finished;
                let event = Event::Error { message: format!("{} run failed: {e}", self.strategy) };
                self.done_event = Some(event.clone());
                Advance::Event(event)
            }
        }
    }

    /// End the run early (the driver's Stop): free what only training needs and keep the model
    /// so far for predictions and export. A step under way is dropped: the weights stay those
    /// of the last finished step (the optimizer is a step's last unit). A GPU run brings them
    /// back first: here natively; on the web call [`Run::begin_stop`] and then
    /// [`Run::advance`] until the Stopped event.
    pub fn stop(&mut self) -> Event {
        self.begin_stop();
        loop {
            if let Advance::Event(event) = self.advance() {
                if event.is_done() {
                    return event;
                }
            }
        }
    }

    /// Start stopping: the step under way is dropped; the next [`Run::advance`] calls bring a
    /// GPU run's weights back and then give the Stopped event.
    pub fn begin_stop(&mut self) {
        if self.done_event.is_none() {
            self.in_progress = None;
            self.pending.clear();
            self.state = RunState::Stopping;
        }
    }

    /// The Stopped event, once a GPU run's weights of the last finished step are back.
    fn stopping(&mut self) -> Result<Advance> {
        if !self.sync_weights()? {
            return Ok(Advance::Unit(self.unit_progress()));
        }
        self.release_training_state();
        self.state = RunState::Finished;
        let event = Event::Stopped { strategy: self.name(), steps: self.global_step, retained_bytes: self.retained_bytes(), elapsed_ms: self.elapsed_ms(), reason: None };
        self.done_event = Some(event.clone());
        Ok(Advance::Event(event))
    }

    fn try_advance(&mut self) -> Result<Advance> {
        match self.state {
            RunState::Start => Ok(Advance::Event(self.start_event())),
            RunState::Caching { next } => self.cache_chunk(next),
            RunState::Training => self.train_unit(),
            RunState::Evaluating { next } => self.evaluate_chunk(next),
            RunState::Report => Ok(Advance::Event(self.report())),
            RunState::Stopping => self.stopping(),
            RunState::Finished => Ok(Advance::Event(self.done_event.clone().unwrap_or(Event::Error { message: "the run has finished".into() }))),
        }
    }

    /// Where the piece of work under way stands (after a unit that did not finish it).
    fn unit_progress(&self) -> UnitProgress {
        let (units_done, units, fraction, work) = match &self.in_progress {
            Some(InProgress::Step { pass, .. }) => {
                // The optimizer is the step's last unit; its work is not counted.
                let work = if self.strategy == Strategy::Frozen { 0.0 } else { self.plan.work_per_step };
                (pass.units_done(), pass.units() + 1, pass.work_fraction(), work)
            }
            Some(InProgress::Chunk { pass, work, .. }) => {
                let fraction = pass.units_done() as f64 / pass.units() as f64;
                (pass.units_done(), pass.units(), fraction, *work)
            }
            None => (0, 1, 0.0, 0.0),
        };
        let step = matches!(self.in_progress, Some(InProgress::Step { .. })).then_some(self.global_step + 1);
        UnitProgress { strategy: self.name(), step, units_done, units, fraction, work_done: self.work_done + work * fraction, elapsed_ms: self.elapsed_ms() }
    }

    /// The next unit of the eval-mode pass over a chunk of sentences, starting it (sentences
    /// `next..`, as [`Run::chunk_end`] cuts them) when none is under way. Once its last unit
    /// is done: its pooled outputs (rows × hidden), its end and its work in GFLOP.
    fn chunk_unit(&mut self, next: usize, count: usize, ids_of: impl Fn(&Run, usize) -> &[u32]) -> Result<Option<(Vec<f32>, usize, f64)>> {
        if self.in_progress.is_none() {
            let (end, work) = self.chunk_end(next, |i| ids_of(self, i).len(), count);
            let seqs: Vec<&[u32]> = (next..end).map(|i| ids_of(self, i)).collect();
            let batch = self.encoder.batch(&seqs, self.options.pad_to_max_len);
            let pass = match &self.gpu {
                Some(_) => ChunkPass::Gpu(SendWrapper::new(GpuEvalPass::new(&self.config, self.model.weights.layers.len(), batch, false)?)),
                None => ChunkPass::Cpu(EvalPass::new(&self.config, &self.model.weights, batch, false)?),
            };
            self.in_progress = Some(InProgress::Chunk { pass, end, work });
        }
        let Some(InProgress::Chunk { pass, end, work }) = &mut self.in_progress else { unreachable!("a chunk is under way") };
        let (end, work) = (*end, *work);
        let output: Option<EvalOutput> = match pass {
            ChunkPass::Cpu(pass) => pass.advance(&self.model.weights, self.model.adapters.as_ref())?,
            ChunkPass::Gpu(pass) => match pass.advance(self.gpu.as_deref().expect("a GPU pass runs on the GPU"), &self.model.weights)? {
                Progress::Done(output) => Some(output),
                Progress::Unit | Progress::Waiting => None,
            },
        };
        let Some(output) = output else { return Ok(None) };
        self.in_progress = None;
        Ok(Some((output.pooled, end, work)))
    }

    fn start_event(&mut self) -> Event {
        self.state = if self.strategy == Strategy::Frozen { RunState::Caching { next: 0 } } else { RunState::Evaluating { next: 0 } };
        Event::Start {
            strategy: self.name(),
            epochs: self.options.epochs,
            total_steps: self.total_steps(),
            train_size: self.train.ids.len(),
            val_size: self.val.as_ref().map_or(0, |v| v.ids.len()),
            train_eval_size: self.train_eval_size,
            labels: self.labels.clone(),
            threads: rayon::current_num_threads(),
            trainable_parameters: self.plan.trainable_parameters,
            estimated_peak_bytes: self.plan.peak_bytes,
            work_total: self.plan.work_total,
            device: self.device(),
        }
    }

    /// The end of the next chunk of sentences from `start`: as many as fit
    /// [`plan::CHUNK_FLOPS`] when padded to the chunk's longest, at least one. Depends only on
    /// the data and the model, so the same data always gives the same chunks (and the same
    /// floating-point sums). Returns the chunk's work in GFLOP too.
    fn chunk_end(&self, start: usize, len_of: impl Fn(usize) -> usize, count: usize) -> (usize, f64) {
        let per_token = plan::encoder_flops_per_token(&self.config);
        let (mut end, mut longest) = (start, 0);
        while end < count {
            let candidate = longest.max(len_of(end));
            if end > start && ((end + 1 - start) * candidate) as f64 * per_token > plan::CHUNK_FLOPS {
                break;
            }
            longest = candidate;
            end += 1;
        }
        (end, ((end - start) * longest) as f64 * per_token / 1e9)
    }

    fn cached_ids(&self, i: usize) -> &[u32] {
        let n = self.train.ids.len();
        if i < n { &self.train.ids[i] } else { &self.val.as_ref().expect("validation rows follow training rows").ids[i - n] }
    }

    /// Frozen: the next unit of encoding the next chunk of sentences into the cache.
    fn cache_chunk(&mut self, next: usize) -> Result<Advance> {
        let total = self.train.ids.len() + self.val.as_ref().map_or(0, |v| v.ids.len());
        let Some((pooled, end, work)) = self.chunk_unit(next, total, |run, i| run.cached_ids(i))? else { return Ok(Advance::Unit(self.unit_progress())) };
        self.cache.extend(pooled.chunks(self.config.hidden_size).map(<[f32]>::to_vec));
        self.work_done += work;
        self.state = if end < total { RunState::Caching { next: end } } else { RunState::Evaluating { next: 0 } };
        if end == total {
            let n = self.train.ids.len();
            self.cached_train = Some(self.cache[..n].concat());
        }
        Ok(Advance::Event(Event::Progress { strategy: self.name(), phase: Phase::Cache, epoch: 0, done: end, total, work_done: self.work_done, elapsed_ms: self.elapsed_ms() }))
    }

    /// The next unit of the optimizer step under way, starting one when none is: the
    /// encoder's units, then the optimizer. A frozen run's step (the head on cached outputs,
    /// and the optimizer) is a single unit.
    fn train_unit(&mut self) -> Result<Advance> {
        let t0 = Instant::now();
        let step = self.global_step + 1;
        // A non-finite loss stops the run before any gradient is written.
        let check = move |loss: f64| if loss.is_finite() { Ok(()) } else { Err(Error::Options(format!("the loss became {loss} at step {step}: lower the learning rate"))) };
        let end = (self.position + self.options.batch_size).min(self.order.len());
        let labels = |run: &Run| -> Vec<usize> { run.order[run.position..end].iter().map(|&i| run.train.labels[i]).collect() };
        if let Some(cache) = &self.cached_train {
            let h = self.config.hidden_size;
            let pooled: Vec<f32> = self.order[self.position..end].iter().flat_map(|&i| cache[i * h..(i + 1) * h].iter().copied()).collect();
            let labels = labels(self);
            let dropout = Some(DropoutSource { rng: &mut self.dropout_rng, p: self.dropout });
            let output = encoder::train_head(&self.model.head, &self.model.head_grads, &pooled, &labels, dropout, check)?;
            let compute_ms = t0.elapsed().as_secs_f64() * 1000.0;
            return self.finish_step(output, end, compute_ms).map(Advance::Event);
        }
        if self.in_progress.is_none() {
            let seqs: Vec<&[u32]> = self.order[self.position..end].iter().map(|&i| self.train.ids[i].as_slice()).collect();
            let batch = self.encoder.batch(&seqs, self.options.pad_to_max_len);
            let pass = match &self.gpu {
                Some(_) => StepPass::Gpu(SendWrapper::new(GpuTrainStep::new(&self.config, self.model.train_model(), batch, labels(self))?)),
                None => StepPass::Cpu(TrainStep::new(&self.config, self.model.train_model(), batch, labels(self))?),
            };
            self.in_progress = Some(InProgress::Step { pass, end, output: None, compute_ms: 0.0, update: None });
        }
        let Some(InProgress::Step { pass, output, compute_ms, update, .. }) = &mut self.in_progress else { unreachable!("a step is under way") };
        if output.is_none() {
            let mut dropout = Some(DropoutSource { rng: &mut self.dropout_rng, p: self.dropout });
            *output = match pass {
                StepPass::Cpu(pass) => pass.advance(self.model.train_model(), &mut dropout, check)?,
                StepPass::Gpu(pass) => match pass.advance(self.gpu.as_deref().expect("a GPU step runs on the GPU"), self.model.train_model(), &mut dropout, check)? {
                    Progress::Done(output) => Some(output),
                    Progress::Unit | Progress::Waiting => None,
                },
            };
            *compute_ms += t0.elapsed().as_secs_f64() * 1000.0;
            return Ok(Advance::Unit(self.unit_progress()));
        }
        if let Some(executor) = self.gpu.as_deref_mut() {
            // The GPU's optimizer step: it may wait for read-backs (web).
            let update = update.get_or_insert_with(|| SendWrapper::new(GpuUpdate::start(executor, self.options.max_grad_norm.is_some())));
            let (lr, head_lr) = learning_rates(&self.options, self.strategy, self.global_step, self.order.len().div_ceil(self.options.batch_size) * self.options.epochs);
            let optimizer = self.optimizer.as_mut().ok_or_else(|| Error::Options("optimizer state was released".into()))?;
            if let Progress::Waiting | Progress::Unit = update.advance(executor, optimizer, lr, head_lr, self.options.max_grad_norm)? {
                return Ok(Advance::Unit(self.unit_progress()));
            }
        }
        let gpu_updated = self.gpu.is_some();
        let Some(InProgress::Step { end, output, compute_ms, .. }) = &mut self.in_progress else { unreachable!("a step is under way") };
        let (end, output, compute_ms) = (*end, output.take().expect("checked above"), *compute_ms);
        self.in_progress = None;
        if gpu_updated {
            let t1 = Instant::now();
            return Ok(Advance::Event(self.after_step(output, end, compute_ms, t1)));
        }
        self.finish_step(output, end, compute_ms).map(Advance::Event)
    }

    /// A step's last unit: the optimizer on the gradients of `output`'s batch (which ends at
    /// `end` in the epoch's order; `compute_ms` is the time of its forward and backward).
    fn finish_step(&mut self, output: StepOutput, end: usize, compute_ms: f64) -> Result<Event> {
        let t1 = Instant::now();
        let (lr, head_lr) = self.learning_rates();
        let optimizer = self.optimizer.as_mut().ok_or_else(|| Error::Options("optimizer state was released".into()))?;
        optimizer.step(output.word_rows.as_ref(), lr, head_lr, self.options.max_grad_norm)?;
        Ok(self.after_step(output, end, compute_ms, t1))
    }

    /// The bookkeeping of a finished step (its optimizer started at `t1`).
    fn after_step(&mut self, output: StepOutput, end: usize, compute_ms: f64, t1: Instant) -> Event {
        let (lr, head_lr) = self.learning_rates();
        let forward_ms = output.forward_ms.min(compute_ms);
        self.last_timing = StepTiming { forward_ms, backward_ms: compute_ms - forward_ms, optimizer_ms: t1.elapsed().as_secs_f64() * 1000.0 };
        self.global_step += 1;
        self.position = end;
        self.epoch_loss_sum += output.loss;
        self.epoch_batches += 1;
        if self.strategy != Strategy::Frozen {
            self.work_done += self.plan.work_per_step;
        }
        if self.position >= self.order.len() {
            self.epoch += 1;
            self.state = RunState::Evaluating { next: 0 };
        }
        let epoch = if self.state == RunState::Training { self.epoch + 1 } else { self.epoch };
        Event::Step { strategy: self.name(), epoch, step: self.global_step, loss: output.loss, lr, head_lr, work_done: self.work_done, elapsed_ms: self.elapsed_ms() }
    }

    fn end_epoch(&mut self) -> Result<Event> {
        let evaluation = std::mem::take(&mut self.evaluation);
        let (_, train_accuracy, _, _) = self.set_metrics(&evaluation, false).expect("the training sample is never empty");
        let val = self.set_metrics(&evaluation, true);
        let event = Event::Epoch {
            strategy: self.name(),
            epoch: self.epoch,
            train_loss: self.epoch_loss_sum / self.epoch_batches.max(1) as f64,
            train_accuracy,
            train_eval_size: self.train_eval_size,
            val_loss: val.as_ref().map(|v| v.0),
            val_accuracy: val.as_ref().map(|v| v.1),
            elapsed_ms: self.elapsed_ms(),
        };
        self.last_train_accuracy = train_accuracy;
        self.last_val_accuracy = val.map(|v| v.1);
        let snapshot = self.snapshot(&evaluation)?;
        self.pending.push_back(snapshot);
        self.pending.push_back(Event::Layers { strategy: self.name(), epoch: self.epoch, blocks: self.model.block_changes(&self.original)? });
        self.last_evaluation = Some(evaluation);
        self.epoch_loss_sum = 0.0;
        self.epoch_batches = 0;
        self.position = 0;
        if self.epoch >= self.options.epochs {
            self.state = RunState::Report;
        } else {
            self.order = rng::permutation(&mut self.shuffle_rng, self.order.len());
            self.state = RunState::Training;
        }
        Ok(event)
    }

    /// The final report from the last evaluation: per-class metrics and confusion on the
    /// validation data, or on the training sample when there is none.
    fn report(&mut self) -> Event {
        let evaluation = self.last_evaluation.take().expect("the report follows an evaluation");
        let is_val = self.val.is_some();
        let (_, _, truth, predicted) = self.set_metrics(&evaluation, is_val).expect("the evaluated set is not empty");
        let (per_class, confusion) = metrics::class_metrics(&self.labels, &truth, &predicted);
        let evaluated_on = if is_val { "validation" } else if self.train_eval_size < self.train.ids.len() { "training sample" } else { "training" };
        let peak_bytes = alloc_stats::peak_bytes().saturating_sub(self.baseline_bytes) as u64;
        self.release_training_state();
        let event = Event::Done {
            strategy: self.name(),
            train_accuracy: self.last_train_accuracy,
            val_accuracy: self.last_val_accuracy,
            per_class,
            confusion,
            evaluated_on: evaluated_on.into(),
            steps: self.global_step,
            threads: rayon::current_num_threads(),
            peak_bytes,
            retained_bytes: self.retained_bytes(),
            elapsed_ms: self.elapsed_ms(),
        };
        self.state = RunState::Finished;
        self.done_event = Some(event.clone());
        event
    }

    /// Free what only training needs: the optimizer's moments, the gradient buffers, the
    /// frozen cache and any pending evaluation. The weights stay for predictions and export.
    fn release_training_state(&mut self) {
        self.in_progress = None;
        self.download = None;
        self.gpu = None;
        self.optimizer = None;
        self.model.release_gradients();
        self.cache = Vec::new();
        self.cached_train = None;
        self.evaluation = Evaluation::default();
        self.last_evaluation = None;
    }

    /// Bytes this run holds beyond the shared pre-trained weights (its trainable copies).
    fn retained_bytes(&self) -> u64 {
        self.model.params.iter().map(|p| p.tensor.elem_count() as u64 * 4).sum()
    }
}

/// Learning rates (body, head) of step `step` (0-based) of `total` under the schedule.
fn learning_rates(options: &TrainOptions, strategy: Strategy, step: usize, total: usize) -> (f64, f64) {
    let warmup = optim::warmup_steps(options.warmup_ratio, total);
    let factor = optim::schedule_factor(options.schedule, step, total, warmup);
    // A LoRA run's body is its adapters, trained at LoRA's own rate.
    let body = match strategy {
        Strategy::Lora(_) => options.lora.learning_rate,
        _ => options.learning_rate,
    };
    let head = options.head_learning_rate.unwrap_or(body);
    (body * factor, head * factor)
}

/// The random stream of a run's data order: each epoch's order is the next permutation drawn
/// from it (the recipe export writes the same orders out).
pub fn shuffle_stream(seed: u64) -> SeededRng {
    rng::seeded(seed, 1)
}

/// The training sentences each epoch's training accuracy is measured on (ascending indices).
pub fn train_eval_sample(train: &Dataset, options: &TrainOptions) -> Vec<usize> {
    let limit = if options.train_eval_sample == 0 { usize::MAX } else { options.train_eval_sample };
    data::stratified_sample(train, limit, options.seed)
}

/// The plan of a run over already-tokenized sets.
fn run_plan(config: &BertConfig, strategy: Strategy, options: &TrainOptions, num_labels: usize, train: &EncodedSet, val: Option<&EncodedSet>, train_eval_size: usize) -> RunPlan {
    let train_lengths = train.lengths();
    let val_lengths = val.map(EncodedSet::lengths).unwrap_or_default();
    plan::plan_run(config, strategy, options, num_labels, &DataShape { train_lengths: &train_lengths, val_lengths: &val_lengths, train_eval_size })
}
