//! A step-wise training run: each call to [`Run::step`] does one bounded unit of work — one
//! optimizer step, or one chunk of encoding or evaluation — and returns the [`Event`] that
//! describes it, so a driver (CLI loop, web worker) can report progress and stop between calls.
//!
//! A run goes: `start` → (frozen only: encode every sentence once, in chunks, into a cache) →
//! for each epoch: training steps, then an evaluation of a fixed training sample and the whole
//! validation set, in chunks → `done`, whose per-class metrics reuse the last evaluation.
//!
//! Strategies: `frozen` trains only the classifier — the encoder and pooler are frozen, so their
//! outputs are computed once (in eval mode, i.e. without dropout) and a frozen run costs about
//! one forward pass over the data; `top:K` trains the top K encoder layers + pooler +
//! classifier; `full` trains everything (see [`crate::run_model`]). When a run ends (done or
//! stopped) it frees its gradient buffers, optimizer state and cache and keeps only what
//! predictions and export need.
use candle_core::{Device, Tensor};
use web_time::Instant;

use crate::alloc_stats;
use crate::config::BertConfig;
use crate::data::{self, Dataset};
use crate::events::{Event, Phase as ProgressPhase};
use crate::metrics;
use crate::model::{self, Dropout, Pretrained, SparseRows};
use crate::optim::{self, Adam, AdamConfig};
use crate::plan::{self, DataShape, RunPlan};
use crate::rng::{self, SeededRng};
use crate::run_model::RunModel;
use crate::tokenize::TextEncoder;
use crate::types::{ExportedModel, Prediction, Strategy, TrainOptions};
use crate::{Error, Result};

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
enum Phase {
    Start,
    /// Frozen: encoding sentence `next` of the train-then-validation list into the cache.
    Caching { next: usize },
    Training,
    /// Evaluating item `next` of `eval_items` after the current epoch.
    Evaluating { next: usize },
    Report,
    Finished,
}

/// Where the time of the last optimizer step went (milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StepTiming {
    /// Batching, forward pass and loss.
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
}

/// One sentence an evaluation covers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum EvalItem {
    Train(usize),
    Val(usize),
}

/// The outcome of one evaluation pass, in `eval_items` order.
#[derive(Default)]
struct Evaluation {
    /// Eval-mode logits, one row per item.
    logits: Vec<Vec<f32>>,
}

fn validate(strategy: Strategy, options: &TrainOptions, config: &BertConfig, train: &Dataset, val: Option<&Dataset>) -> Result<()> {
    let num_layers = config.num_hidden_layers;
    if let Strategy::Top(k) = strategy {
        if k > num_layers {
            return Err(Error::Options(format!("top:{k} asks for {k} layers but the model has {num_layers}; use top:1 … top:{num_layers} or full")));
        }
    }
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(options.learning_rate) || options.head_learning_rate.is_some_and(|lr| !positive(lr)) {
        return Err(Error::Options("learning rate must be a positive number (e.g. 2e-5)".into()));
    }
    if options.epochs == 0 || options.batch_size == 0 {
        return Err(Error::Options("epochs and batch size must be at least 1".into()));
    }
    if !(0.0..1.0).contains(&options.warmup_ratio) || options.weight_decay < 0.0 {
        return Err(Error::Options("warmup_ratio must be in [0, 1) and weight_decay ≥ 0".into()));
    }
    if options.max_grad_norm.is_some_and(|n| !positive(n)) {
        return Err(Error::Options("max_grad_norm must be positive".into()));
    }
    if options.max_len > config.max_position_embeddings {
        return Err(Error::Options(format!("max length {} exceeds the model's limit of {} tokens", options.max_len, config.max_position_embeddings)));
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
    plan: RunPlan,
    model: RunModel,
    optimizer: Option<Adam>,
    /// Frozen strategy: pooled outputs of the (frozen) encoder, train rows then validation rows.
    cache: Vec<Vec<f32>>,
    cached_train: Option<Tensor>,
    evaluation: Evaluation,
    last_evaluation: Option<Evaluation>,
    shuffle_rng: SeededRng,
    dropout_rng: SeededRng,
    dropout: Dropout,
    phase: Phase,
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
        let limit = if options.train_eval_sample == 0 { usize::MAX } else { options.train_eval_sample };
        let sample = data::stratified_sample(train, limit, options.seed);
        let train_eval_size = sample.len();
        let mut eval_items: Vec<EvalItem> = sample.into_iter().map(EvalItem::Train).collect();
        eval_items.extend((0..val_set.as_ref().map_or(0, |v| v.ids.len())).map(EvalItem::Val));
        let plan = run_plan(config, strategy, options, train.labels.len(), &train_set, val_set.as_ref(), train_eval_size);
        if let Some(limit) = memory_limit {
            plan::check_fits(&plan, alloc_stats::allocated_bytes() as u64, limit)?;
        }
        let head = model::init_classifier(config, train.labels.len(), options.seed)?;
        let model = RunModel::build(pretrained, strategy, head)?;
        let adam = AdamConfig { weight_decay: options.weight_decay, ..AdamConfig::default() };
        let mut shuffle_rng = rng::seeded(options.seed, 1);
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
            plan,
            encoder,
            labels: train.labels.clone(),
            optimizer: Some(Adam::new(model.params.clone(), adam)),
            model,
            cache: Vec::new(),
            cached_train: None,
            evaluation: Evaluation::default(),
            last_evaluation: None,
            shuffle_rng,
            dropout_rng: rng::seeded(options.seed, 2),
            dropout: Dropout::from_config(config),
            phase: Phase::Start,
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
        self.phase == Phase::Finished
    }

    /// Where the time of the last optimizer step went.
    pub fn last_step_timing(&self) -> StepTiming {
        self.last_timing
    }

    /// Names of the parameters this run trains (transformers names).
    pub fn trainable_names(&self) -> Vec<String> {
        self.model.params.iter().map(|p| p.name.clone()).collect()
    }

    /// Every tensor of the current model with its transformers name (`bert.…`, `classifier.…`).
    pub fn named_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        self.model.named_tensors()
    }

    fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    fn name(&self) -> String {
        self.strategy.to_string()
    }

    /// Learning rates (body, head) for the step about to run.
    fn learning_rates(&self) -> (f64, f64) {
        let total = self.total_steps();
        let warmup = optim::warmup_steps(self.options.warmup_ratio, total);
        let factor = optim::schedule_factor(self.options.schedule, self.global_step, total, warmup);
        let head = self.options.head_learning_rate.unwrap_or(self.options.learning_rate);
        (self.options.learning_rate * factor, head * factor)
    }

    /// Advance by one bounded unit of work and describe it.
    pub fn step(&mut self) -> Event {
        match self.try_step() {
            Ok(event) => event,
            Err(e) => {
                self.release_training_state();
                self.phase = Phase::Finished;
                Event::Error { message: format!("{} run failed: {e}", self.strategy) }
            }
        }
    }

    /// End the run early (the driver's Stop): free what only training needs and keep the model
    /// so far for predictions and export.
    pub fn stop(&mut self) -> Event {
        if let Some(done) = &self.done_event {
            return done.clone();
        }
        self.release_training_state();
        self.phase = Phase::Finished;
        let event = Event::Stopped { strategy: self.name(), steps: self.global_step, retained_bytes: self.retained_bytes(), elapsed_ms: self.elapsed_ms() };
        self.done_event = Some(event.clone());
        event
    }

    fn try_step(&mut self) -> Result<Event> {
        match self.phase {
            Phase::Start => Ok(self.start_event()),
            Phase::Caching { next } => self.cache_chunk(next),
            Phase::Training => self.train_step(),
            Phase::Evaluating { next } => self.evaluate_chunk(next),
            Phase::Report => Ok(self.report()),
            Phase::Finished => Ok(self.done_event.clone().unwrap_or(Event::Error { message: "the run has finished".into() })),
        }
    }

    fn start_event(&mut self) -> Event {
        self.phase = if self.strategy == Strategy::Frozen { Phase::Caching { next: 0 } } else { Phase::Training };
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

    /// Pooled outputs in eval mode, (n, hidden), of already-tokenized sentences.
    fn pooled_eval(&self, seqs: &[&[u32]]) -> Result<Tensor> {
        let batch = self.encoder.batch(seqs, self.options.pad_to_max_len, &Device::Cpu)?;
        Ok(self.model.weights.encode(&self.config, &batch, None)?.pooled.detach())
    }

    fn cached_ids(&self, i: usize) -> &[u32] {
        let n = self.train.ids.len();
        if i < n { &self.train.ids[i] } else { &self.val.as_ref().expect("validation rows follow training rows").ids[i - n] }
    }

    /// Frozen: encode the next chunk of sentences into the cache.
    fn cache_chunk(&mut self, next: usize) -> Result<Event> {
        let total = self.train.ids.len() + self.val.as_ref().map_or(0, |v| v.ids.len());
        let (end, work) = self.chunk_end(next, |i| self.cached_ids(i).len(), total);
        let seqs: Vec<&[u32]> = (next..end).map(|i| self.cached_ids(i)).collect();
        let pooled = self.pooled_eval(&seqs)?;
        self.cache.extend(pooled.to_vec2::<f32>()?);
        self.work_done += work;
        self.phase = if end < total { Phase::Caching { next: end } } else { Phase::Training };
        if end == total {
            let n = self.train.ids.len();
            let rows: Vec<f32> = self.cache[..n].concat();
            self.cached_train = Some(Tensor::from_vec(rows, (n, self.config.hidden_size), &Device::Cpu)?);
        }
        Ok(Event::Progress { strategy: self.name(), phase: ProgressPhase::Cache, epoch: 0, done: end, total, work_done: self.work_done, elapsed_ms: self.elapsed_ms() })
    }

    fn train_step(&mut self) -> Result<Event> {
        let t0 = Instant::now();
        let end = (self.position + self.options.batch_size).min(self.order.len());
        let indices: Vec<usize> = self.order[self.position..end].to_vec();
        let labels: Vec<usize> = indices.iter().map(|&i| self.train.labels[i]).collect();
        let (logits, word_rows) = self.training_logits(&indices)?;
        let loss_tensor = model::cross_entropy(&logits, &labels)?;
        let loss = loss_tensor.to_scalar::<f32>()? as f64;
        if !loss.is_finite() {
            return Err(Error::Options(format!("the loss became {loss} at step {}: lower the learning rate", self.global_step + 1)));
        }
        let t1 = Instant::now();
        let grads = loss_tensor.backward()?;
        let t2 = Instant::now();
        let (lr, head_lr) = self.learning_rates();
        let optimizer = self.optimizer.as_mut().ok_or_else(|| Error::Options("optimizer state was released".into()))?;
        optimizer.step(&grads, word_rows.as_ref(), lr, head_lr, self.options.max_grad_norm)?;
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
        self.last_timing = StepTiming { forward_ms: ms(t0, t1), backward_ms: ms(t1, t2), optimizer_ms: ms(t2, Instant::now()) };
        self.global_step += 1;
        self.position = end;
        self.epoch_loss_sum += loss;
        self.epoch_batches += 1;
        if self.strategy != Strategy::Frozen {
            self.work_done += self.plan.work_per_step;
        }
        if self.position >= self.order.len() {
            self.phase = Phase::Evaluating { next: 0 };
        }
        Ok(Event::Step { strategy: self.name(), epoch: self.epoch + 1, step: self.global_step, loss, lr, head_lr, work_done: self.work_done, elapsed_ms: self.elapsed_ms() })
    }

    /// Logits of a training batch, with dropout, and the word-embedding rows when they train.
    fn training_logits(&mut self, indices: &[usize]) -> Result<(Tensor, Option<SparseRows>)> {
        let (pooled, word_rows) = match &self.cached_train {
            Some(cache) => {
                let idx = Tensor::from_vec(indices.iter().map(|&i| i as u32).collect::<Vec<_>>(), indices.len(), &Device::Cpu)?;
                (cache.index_select(&idx, 0)?, None)
            }
            None => {
                let seqs: Vec<&[u32]> = indices.iter().map(|&i| self.train.ids[i].as_slice()).collect();
                let batch = self.encoder.batch(&seqs, self.options.pad_to_max_len, &Device::Cpu)?;
                let out = self.model.weights.encode(&self.config, &batch, Some((&mut self.dropout_rng, self.dropout)))?;
                (out.pooled, out.word_rows)
            }
        };
        let dropped = model::dropout(&pooled, self.dropout.classifier, &mut self.dropout_rng)?;
        Ok((self.model.head.forward(&dropped)?, word_rows))
    }

    fn eval_ids(&self, item: EvalItem) -> &[u32] {
        match item {
            EvalItem::Train(i) => &self.train.ids[i],
            EvalItem::Val(i) => &self.val.as_ref().expect("validation items exist only with validation data").ids[i],
        }
    }

    fn eval_label(&self, item: EvalItem) -> usize {
        match item {
            EvalItem::Train(i) => self.train.labels[i],
            EvalItem::Val(i) => self.val.as_ref().expect("validation items exist only with validation data").labels[i],
        }
    }

    /// Pooled eval-mode outputs of eval items `start..end`: from the cache (frozen) or encoded.
    fn eval_pooled(&self, start: usize, end: usize) -> Result<Tensor> {
        if self.strategy == Strategy::Frozen {
            let n = self.train.ids.len();
            let rows: Vec<f32> = self.eval_items[start..end]
                .iter()
                .flat_map(|item| match *item {
                    EvalItem::Train(i) => self.cache[i].iter().copied(),
                    EvalItem::Val(i) => self.cache[n + i].iter().copied(),
                })
                .collect();
            return Ok(Tensor::from_vec(rows, (end - start, self.config.hidden_size), &Device::Cpu)?);
        }
        let seqs: Vec<&[u32]> = self.eval_items[start..end].iter().map(|&item| self.eval_ids(item)).collect();
        self.pooled_eval(&seqs)
    }

    /// Evaluate the next chunk; after the last one, the epoch's event.
    fn evaluate_chunk(&mut self, next: usize) -> Result<Event> {
        let total = self.eval_items.len();
        let (end, work) = if self.strategy == Strategy::Frozen {
            (total, 0.0) // cached outputs: only the head runs, one product for the whole set
        } else {
            self.chunk_end(next, |i| self.eval_ids(self.eval_items[i]).len(), total)
        };
        let logits = self.model.head.forward(&self.eval_pooled(next, end)?)?.detach();
        self.evaluation.logits.extend(logits.to_vec2::<f32>()?);
        self.work_done += work;
        if end < total {
            self.phase = Phase::Evaluating { next: end };
            return Ok(Event::Progress { strategy: self.name(), phase: ProgressPhase::Evaluate, epoch: self.epoch + 1, done: end, total, work_done: self.work_done, elapsed_ms: self.elapsed_ms() });
        }
        Ok(self.end_epoch())
    }

    /// (loss, accuracy, predictions) of the items of one set in the finished evaluation.
    fn set_metrics(&self, evaluation: &Evaluation, is_val: bool) -> Option<(f64, f64, Vec<usize>, Vec<usize>)> {
        let rows: Vec<(usize, &Vec<f32>)> = self
            .eval_items
            .iter()
            .zip(&evaluation.logits)
            .filter(|(item, _)| matches!(item, EvalItem::Val(_)) == is_val)
            .map(|(&item, logits)| (self.eval_label(item), logits))
            .collect();
        if rows.is_empty() {
            return None;
        }
        let truth: Vec<usize> = rows.iter().map(|(label, _)| *label).collect();
        let losses: f64 = rows.iter().map(|(label, logits)| metrics::cross_entropy(logits, *label)).sum();
        let predicted: Vec<usize> = rows.iter().map(|(_, logits)| metrics::argmax(logits)).collect();
        Some((losses / rows.len() as f64, metrics::accuracy(&truth, &predicted), truth, predicted))
    }

    fn end_epoch(&mut self) -> Event {
        let evaluation = std::mem::take(&mut self.evaluation);
        let (_, train_accuracy, _, _) = self.set_metrics(&evaluation, false).expect("the training sample is never empty");
        let val = self.set_metrics(&evaluation, true);
        let event = Event::Epoch {
            strategy: self.name(),
            epoch: self.epoch + 1,
            train_loss: self.epoch_loss_sum / self.epoch_batches.max(1) as f64,
            train_accuracy,
            train_eval_size: self.train_eval_size,
            val_loss: val.as_ref().map(|v| v.0),
            val_accuracy: val.as_ref().map(|v| v.1),
            elapsed_ms: self.elapsed_ms(),
        };
        self.last_train_accuracy = train_accuracy;
        self.last_val_accuracy = val.map(|v| v.1);
        self.last_evaluation = Some(evaluation);
        self.epoch += 1;
        self.epoch_loss_sum = 0.0;
        self.epoch_batches = 0;
        self.position = 0;
        if self.epoch >= self.options.epochs {
            self.phase = Phase::Report;
        } else {
            self.order = rng::permutation(&mut self.shuffle_rng, self.order.len());
            self.phase = Phase::Training;
        }
        event
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
        self.phase = Phase::Finished;
        self.done_event = Some(event.clone());
        event
    }

    /// Free what only training needs: the optimizer's moments, the gradient buffers, the
    /// frozen cache and any pending evaluation. The weights stay for predictions and export.
    fn release_training_state(&mut self) {
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

    /// Class probabilities of new texts with the current weights (eval mode), truncated at the
    /// run's max length.
    pub fn predict(&self, texts: &[String]) -> Result<Vec<Prediction>> {
        model::predict_with(&self.config, &self.model.weights, &self.model.head, &self.labels, &self.encoder, texts)
    }

    /// The current model as transformers' `BertForSequenceClassification` files.
    pub fn export(&self) -> Result<ExportedModel> {
        crate::checkpoint::export_classifier(&self.config_json, &self.tokenizer_json, &self.labels, self.options.max_len, &self.named_tensors()?)
    }
}

/// The plan of a run over already-tokenized sets.
fn run_plan(config: &BertConfig, strategy: Strategy, options: &TrainOptions, num_labels: usize, train: &EncodedSet, val: Option<&EncodedSet>, train_eval_size: usize) -> RunPlan {
    let train_lengths = train.lengths();
    let val_lengths = val.map(EncodedSet::lengths).unwrap_or_default();
    plan::plan_run(config, strategy, options, num_labels, &DataShape { train_lengths: &train_lengths, val_lengths: &val_lengths, train_eval_size })
}
