//! A step-wise training run: one call to [`Run::step`] does one optimizer step (or an epoch's
//! evaluation, or the final report) and returns the [`Event`] describing it, so a driver (CLI
//! loop, web worker) can report progress and cancel between steps.
//!
//! Strategies: `frozen` trains only the classifier — the encoder and pooler are frozen, so their
//! outputs are computed once (in eval mode, i.e. without dropout) and cached, and a frozen run
//! costs about one forward pass over the data; `top:K` trains the top K encoder layers + pooler +
//! classifier; `full` trains everything (see [`crate::run_model`]).
use candle_core::{Device, Tensor};
use web_time::Instant;

use crate::config::BertConfig;
use crate::data::Dataset;
use crate::events::Event;
use crate::metrics::{self, argmax};
use crate::model::{self, Dropout, Pretrained, SparseRows};
use crate::optim::{self, Adam, AdamConfig};
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

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Training,
    EpochEnd,
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
    model: RunModel,
    optimizer: Option<Adam>,
    /// Frozen strategy: pooled outputs of the (frozen) encoder for the train and val sets.
    frozen_cache: Option<(Tensor, Option<Tensor>)>,
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
    started: Instant,
    done_event: Option<Event>,
}

impl Run {
    /// A run of `strategy` from the pre-trained weights. `val` must be parsed with the training
    /// labels (see [`crate::data`]).
    pub fn start(pretrained: &Pretrained, strategy: Strategy, train: &Dataset, val: Option<&Dataset>, options: &TrainOptions) -> Result<Run> {
        let config = &pretrained.config;
        validate(strategy, options, config, train, val)?;
        let encoder = pretrained.encoder(options.max_len)?;
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
            train: encode_set(&encoder, train)?,
            val: val.map(|v| encode_set(&encoder, v)).transpose()?,
            encoder,
            labels: train.labels.clone(),
            optimizer: Some(Adam::new(model.params.clone(), adam)),
            model,
            frozen_cache: None,
            shuffle_rng,
            dropout_rng: rng::seeded(options.seed, 2),
            dropout: Dropout::from_config(config),
            phase: Phase::Training,
            epoch: 0,
            order,
            position: 0,
            global_step: 0,
            epoch_loss_sum: 0.0,
            epoch_batches: 0,
            last_train_accuracy: 0.0,
            last_val_accuracy: None,
            last_timing: StepTiming::default(),
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

    /// Learning rates (body, head) for the step about to run.
    fn learning_rates(&self) -> (f64, f64) {
        let total = self.total_steps();
        let warmup = optim::warmup_steps(self.options.warmup_ratio, total);
        let factor = optim::schedule_factor(self.options.schedule, self.global_step, total, warmup);
        let head = self.options.head_learning_rate.unwrap_or(self.options.learning_rate);
        (self.options.learning_rate * factor, head * factor)
    }

    /// Advance by one unit of work and describe it.
    pub fn step(&mut self) -> Event {
        match self.try_step() {
            Ok(event) => event,
            Err(e) => {
                self.phase = Phase::Finished;
                Event::Error { message: format!("{} run failed: {e}", self.strategy) }
            }
        }
    }

    fn try_step(&mut self) -> Result<Event> {
        match self.phase {
            Phase::Training => self.train_step(),
            Phase::EpochEnd => self.end_epoch(),
            Phase::Report => self.report(),
            Phase::Finished => Ok(self.done_event.clone().unwrap_or(Event::Error { message: "the run has finished".into() })),
        }
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
        if self.position >= self.order.len() {
            self.phase = Phase::EpochEnd;
        }
        Ok(Event::Step { strategy: self.strategy.to_string(), epoch: self.epoch + 1, step: self.global_step, loss, lr, head_lr, elapsed_ms: self.elapsed_ms() })
    }

    /// Logits of a training batch, with dropout, and the word-embedding rows when they train.
    fn training_logits(&mut self, indices: &[usize]) -> Result<(Tensor, Option<SparseRows>)> {
        let (pooled, word_rows) = if self.strategy == Strategy::Frozen {
            let cache = self.frozen_train_cache()?;
            let idx = Tensor::from_vec(indices.iter().map(|&i| i as u32).collect::<Vec<_>>(), indices.len(), &Device::Cpu)?;
            (cache.index_select(&idx, 0)?, None)
        } else {
            let seqs: Vec<&[u32]> = indices.iter().map(|&i| self.train.ids[i].as_slice()).collect();
            let batch = self.encoder.batch(&seqs, self.options.pad_to_max_len, &Device::Cpu)?;
            let out = self.model.weights.encode(&self.config, &batch, Some((&mut self.dropout_rng, self.dropout)))?;
            (out.pooled, out.word_rows)
        };
        let dropped = model::dropout(&pooled, self.dropout.classifier, &mut self.dropout_rng)?;
        Ok((self.model.head.forward(&dropped)?, word_rows))
    }

    fn frozen_train_cache(&mut self) -> Result<Tensor> {
        if self.frozen_cache.is_none() {
            let train = self.pooled_eval(&self.train.ids)?;
            let val = self.val.as_ref().map(|v| self.pooled_eval(&v.ids)).transpose()?;
            self.frozen_cache = Some((train, val));
        }
        Ok(self.frozen_cache.as_ref().map(|(t, _)| t.clone()).expect("just filled"))
    }

    /// Pooled outputs in eval mode, (n, hidden), detached.
    fn pooled_eval(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        let mut chunks = Vec::new();
        for chunk in ids.chunks(16) {
            let seqs: Vec<&[u32]> = chunk.iter().map(|s| s.as_slice()).collect();
            let batch = self.encoder.batch(&seqs, self.options.pad_to_max_len, &Device::Cpu)?;
            chunks.push(self.model.weights.encode(&self.config, &batch, None)?.pooled.detach());
        }
        Ok(Tensor::cat(&chunks, 0)?)
    }

    /// Eval-mode logits of a whole set (`is_val` picks the frozen cache).
    fn eval_logits(&mut self, is_val: bool) -> Result<Tensor> {
        let pooled = if self.strategy == Strategy::Frozen {
            self.frozen_train_cache()?;
            let (train, val) = self.frozen_cache.as_ref().expect("filled above");
            if is_val { val.clone().expect("val cache exists when val does") } else { train.clone() }
        } else {
            let set = if is_val { self.val.as_ref().expect("checked by caller") } else { &self.train };
            self.pooled_eval(&set.ids)?
        };
        Ok(self.model.head.forward(&pooled)?.detach())
    }

    /// (loss, accuracy, predictions) of a set in eval mode.
    fn evaluate(&mut self, is_val: bool) -> Result<(f64, f64, Vec<usize>)> {
        let logits = self.eval_logits(is_val)?;
        let labels = if is_val { self.val.as_ref().expect("checked").labels.clone() } else { self.train.labels.clone() };
        let loss = model::cross_entropy(&logits, &labels)?.to_scalar::<f32>()? as f64;
        let predictions: Vec<usize> = model::probabilities(&logits)?.iter().map(|p| argmax(p)).collect();
        Ok((loss, metrics::accuracy(&labels, &predictions), predictions))
    }

    fn end_epoch(&mut self) -> Result<Event> {
        let (_, train_accuracy, _) = self.evaluate(false)?;
        let (val_loss, val_accuracy) = match self.val.is_some() {
            true => {
                let (loss, acc, _) = self.evaluate(true)?;
                (Some(loss), Some(acc))
            }
            false => (None, None),
        };
        let event = Event::Epoch {
            strategy: self.strategy.to_string(),
            epoch: self.epoch + 1,
            train_loss: self.epoch_loss_sum / self.epoch_batches.max(1) as f64,
            train_accuracy,
            val_loss,
            val_accuracy,
            elapsed_ms: self.elapsed_ms(),
        };
        self.last_train_accuracy = train_accuracy;
        self.last_val_accuracy = val_accuracy;
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
        Ok(event)
    }

    /// The final report: per-class metrics and confusion on validation (or training) data.
    fn report(&mut self) -> Result<Event> {
        let is_val = self.val.is_some();
        let (_, _, predictions) = self.evaluate(is_val)?;
        let truth = if is_val { self.val.as_ref().expect("checked").labels.clone() } else { self.train.labels.clone() };
        let (per_class, confusion) = metrics::class_metrics(&self.labels, &truth, &predictions);
        let event = Event::Done {
            strategy: self.strategy.to_string(),
            train_accuracy: self.last_train_accuracy,
            val_accuracy: self.last_val_accuracy,
            per_class,
            confusion,
            steps: self.global_step,
            elapsed_ms: self.elapsed_ms(),
        };
        // Training is over: release the optimizer's moments (2× the trainable weights).
        self.optimizer = None;
        self.frozen_cache = None;
        self.phase = Phase::Finished;
        self.done_event = Some(event.clone());
        Ok(event)
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
