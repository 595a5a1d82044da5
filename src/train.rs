//! A step-wise training run: one call to [`Run::step`] does one optimizer step (or an epoch's
//! evaluation, or the final report) and returns the [`Event`] describing it, so a driver (CLI
//! loop, web worker) can report progress and cancel between steps.
//!
//! Strategies: `frozen` trains only the classifier — the encoder and pooler are frozen, so their
//! outputs are computed once (in eval mode, i.e. without dropout) and cached, and a frozen run
//! costs about one forward pass over the data; `top:K` trains the top K encoder layers + pooler +
//! classifier; `full` trains everything. Frozen tensors are shared with the pre-trained weights
//! and get neither gradients nor optimizer state.
use candle_core::{Device, Tensor};
use web_time::Instant;

use crate::data::Dataset;
use crate::events::{ClassMetrics, Event};
use crate::model::{self, argmax, BertWeights, Dropout, Linear, Pretrained, SparseRows};
use crate::ops::GradSlot;
use crate::optim::{Adam, AdamConfig, Param};
use std::collections::HashMap;
use crate::rng::{self, SeededRng};
use crate::session::{ExportedModel, Prediction, Schedule, Session, Strategy, TrainOptions};
use crate::tokenize::TextEncoder;
use crate::{Error, Result};

/// Tokenized sentences with their label ids.
struct EncodedSet {
    ids: Vec<Vec<u32>>,
    labels: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Training,
    EpochEnd,
    Report,
    Finished,
}

/// Does `strategy` train the BertModel tensor `name` (canonical, un-prefixed)?
pub fn is_trainable(strategy: Strategy, name: &str, num_layers: usize) -> bool {
    match strategy {
        Strategy::Full => true,
        Strategy::Frozen => false,
        Strategy::Top(k) => {
            if name.starts_with("pooler.") {
                return true;
            }
            match name.strip_prefix("encoder.layer.").and_then(|rest| rest.split('.').next()).and_then(|l| l.parse::<usize>().ok()) {
                Some(layer) => layer + k >= num_layers,
                None => false,
            }
        }
    }
}

/// The weights of a run: trainable tensors are deep-copied `Var`s, the rest shared.
struct RunModel {
    weights: BertWeights,
    head: Linear,
    params: Vec<Param>,
}

fn build_run_model(pretrained: &Pretrained, strategy: Strategy, head: Linear) -> Result<RunModel> {
    let num_layers = pretrained.config.num_hidden_layers;
    let mut params = Vec::new();
    let mut weights = pretrained.weights.map(|name, t| if is_trainable(strategy, name, num_layers) { model::trainable_copy(t) } else { Ok(t.clone()) })?;
    let mut head = Linear { weight_t: model::trainable_copy(&head.weight_t)?, bias: model::trainable_copy(&head.bias)?, grad_slot: None };
    let mut slots: HashMap<String, GradSlot> = HashMap::new();
    let mut linears = weights.linears_mut();
    linears.push(("classifier".to_string(), &mut head));
    for (prefix, linear) in linears {
        if linear.weight_t.is_variable() {
            let slot = GradSlot::new(linear.weight_t.elem_count());
            linear.grad_slot = Some(slot.clone());
            slots.insert(format!("{prefix}.weight"), slot);
        }
    }
    let mut named: Vec<(String, Tensor)> = weights.stored_named().into_iter().map(|(n, t)| (format!("bert.{n}"), t)).collect();
    named.push(("classifier.weight".into(), head.weight_t.clone()));
    named.push(("classifier.bias".into(), head.bias.clone()));
    for (name, tensor) in named.into_iter().filter(|(_, t)| t.is_variable()) {
        let canonical = name.strip_prefix("bert.").unwrap_or(&name);
        params.push(Param {
            grad_slot: slots.remove(canonical),
            is_head: canonical.starts_with("pooler.") || canonical.starts_with("classifier."),
            row_gradient: canonical == "embeddings.word_embeddings.weight",
            name,
            tensor,
        });
    }
    Ok(RunModel { weights, head, params })
}

fn validate(strategy: Strategy, options: &TrainOptions, num_layers: usize, train: &Dataset) -> Result<()> {
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
    if train.labels.len() < 2 || train.is_empty() {
        return Err(Error::Data("training needs labelled sentences of at least two classes".into()));
    }
    Ok(())
}

pub struct Run {
    strategy: Strategy,
    options: TrainOptions,
    pretrained_config: crate::config::BertConfig,
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
    started: Instant,
    done_event: Option<Event>,
}

fn encode_set(encoder: &TextEncoder, ds: &Dataset) -> Result<EncodedSet> {
    Ok(EncodedSet { ids: encoder.encode_all(&ds.texts())?, labels: ds.label_ids() })
}

impl Run {
    pub(crate) fn start(pretrained: &Pretrained, strategy: Strategy, train: &Dataset, val: Option<&Dataset>, options: &TrainOptions) -> Result<Run> {
        let config = &pretrained.config;
        validate(strategy, options, config.num_hidden_layers, train)?;
        if let Some(val) = val {
            if val.labels != train.labels {
                return Err(Error::Data("validation data must use the training classes (parse it with the training labels)".into()));
            }
        }
        if options.max_len > config.max_position_embeddings {
            return Err(Error::Options(format!("max length {} exceeds the model's limit of {} tokens", options.max_len, config.max_position_embeddings)));
        }
        let encoder = pretrained.encoder(options.max_len)?;
        let head = model::init_classifier(config, train.labels.len(), options.seed)?;
        let model = build_run_model(pretrained, strategy, head)?;
        let adam = AdamConfig { weight_decay: options.weight_decay, ..AdamConfig::default() };
        let mut shuffle_rng = rng::seeded(options.seed, 1);
        let order = rng::permutation(&mut shuffle_rng, train.len());
        Ok(Run {
            strategy,
            options: options.clone(),
            pretrained_config: config.clone(),
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
            dropout: Dropout {
                hidden: config.hidden_dropout_prob as f32,
                attention: config.attention_probs_dropout_prob as f32,
                classifier: config.classifier_dropout() as f32,
            },
            phase: Phase::Training,
            epoch: 0,
            order,
            position: 0,
            global_step: 0,
            epoch_loss_sum: 0.0,
            epoch_batches: 0,
            last_train_accuracy: 0.0,
            last_val_accuracy: None,
            started: Instant::now(),
            done_event: None,
        })
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
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

    /// Names of the parameters this run trains (transformers names).
    pub fn trainable_names(&self) -> Vec<String> {
        self.model.params.iter().map(|p| p.name.clone()).collect()
    }

    /// Every tensor of the current model with its transformers name (`bert.…`, `classifier.…`).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> =
            self.model.weights.named().into_iter().map(|(n, t)| (format!("bert.{n}"), t)).collect();
        named.push(("classifier.weight".into(), self.model.head.hf_weight().expect("2-D weight transposes")));
        named.push(("classifier.bias".into(), self.model.head.bias.clone()));
        named
    }

    fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// Learning rates (body, head) for the step about to run.
    fn learning_rates(&self) -> (f64, f64) {
        let head = self.options.head_learning_rate.unwrap_or(self.options.learning_rate);
        let factor = match self.options.schedule {
            Schedule::Constant => 1.0,
            Schedule::Linear => {
                let total = self.total_steps() as f64;
                let warmup = (self.options.warmup_ratio * total).floor();
                let step = self.global_step as f64; // 0-based index of this step
                if step < warmup {
                    (step + 1.0) / warmup
                } else {
                    ((total - step) / (total - warmup).max(1.0)).max(0.0)
                }
            }
        };
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
        let end = (self.position + self.options.batch_size).min(self.order.len());
        let indices: Vec<usize> = self.order[self.position..end].to_vec();
        let labels: Vec<usize> = indices.iter().map(|&i| self.train.labels[i]).collect();
        let (logits, word_rows) = self.training_logits(&indices)?;
        let loss = model::cross_entropy(&logits, &labels)?;
        let grads = loss.backward()?;
        let (lr, head_lr) = self.learning_rates();
        let optimizer = self.optimizer.as_mut().ok_or_else(|| Error::Options("optimizer state was released".into()))?;
        optimizer.step(&grads, word_rows.as_ref(), lr, head_lr, self.options.max_grad_norm)?;
        let loss = loss.to_scalar::<f32>()? as f64;
        if !loss.is_finite() {
            return Err(Error::Options(format!("the loss became {loss} at step {}: lower the learning rate", self.global_step + 1)));
        }
        self.global_step += 1;
        self.position = end;
        self.epoch_loss_sum += loss;
        self.epoch_batches += 1;
        if self.position >= self.order.len() {
            self.phase = Phase::EpochEnd;
        }
        Ok(Event::Step { strategy: self.strategy.to_string(), epoch: self.epoch + 1, step: self.global_step, loss, lr, elapsed_ms: self.elapsed_ms() })
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
            let out = self.model.weights.encode(&self.pretrained_config, &batch, Some((&mut self.dropout_rng, self.dropout)))?;
            (out.pooled, out.word_rows)
        };
        let p = self.dropout.classifier;
        let mask = Tensor::from_vec(rng::dropout_mask(&mut self.dropout_rng, pooled.elem_count(), p), pooled.shape(), pooled.device())?;
        let dropped = if p > 0.0 { pooled.mul(&mask)? } else { pooled };
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
            chunks.push(self.model.weights.encode(&self.pretrained_config, &batch, None)?.pooled.detach());
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
        let correct = predictions.iter().zip(&labels).filter(|(p, l)| p == l).count();
        Ok((loss, correct as f64 / labels.len() as f64, predictions))
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
        let (per_class, confusion) = class_metrics(&self.labels, &truth, &predictions);
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

    /// Class probabilities of new texts with the current weights (eval mode).
    pub fn predict(&self, texts: &[String]) -> Result<Vec<Prediction>> {
        model::predict_with(&self.pretrained_config, &self.model.weights, &self.model.head, &self.labels, &self.encoder, texts)
    }

    /// The current model as transformers' `BertForSequenceClassification` files.
    pub fn export(&self) -> Result<ExportedModel> {
        let mut config = self.config_json.clone();
        let obj = config.as_object_mut().ok_or_else(|| Error::Model("config.json is not a JSON object".into()))?;
        let id2label: serde_json::Map<String, serde_json::Value> =
            self.labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone().into())).collect();
        let label2id: serde_json::Map<String, serde_json::Value> =
            self.labels.iter().enumerate().map(|(i, l)| (l.clone(), i.into())).collect();
        obj.insert("architectures".into(), serde_json::json!(["BertForSequenceClassification"]));
        obj.insert("id2label".into(), id2label.into());
        obj.insert("label2id".into(), label2id.into());
        obj.insert("num_labels".into(), self.labels.len().into());
        obj.insert("problem_type".into(), "single_label_classification".into());
        let config_json = serde_json::to_vec_pretty(&config).map_err(|e| Error::Model(e.to_string()))?;
        Ok(ExportedModel {
            config_json,
            tokenizer_json: self.tokenizer_json.clone(),
            model_safetensors: crate::checkpoint::serialize(&self.named_tensors())?,
        })
    }
}

/// Per-class precision/recall/F1 and the confusion matrix `[true][predicted]`.
pub fn class_metrics(labels: &[String], truth: &[usize], predicted: &[usize]) -> (Vec<ClassMetrics>, Vec<Vec<usize>>) {
    let n = labels.len();
    let mut confusion = vec![vec![0usize; n]; n];
    for (&t, &p) in truth.iter().zip(predicted) {
        confusion[t][p] += 1;
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_class = (0..n)
        .map(|c| {
            let tp = confusion[c][c];
            let support: usize = confusion[c].iter().sum();
            let predicted_c: usize = (0..n).map(|t| confusion[t][c]).sum();
            let (precision, recall) = (ratio(tp, predicted_c), ratio(tp, support));
            let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
            ClassMetrics { label: labels[c].clone(), precision, recall, f1, support }
        })
        .collect();
    (per_class, confusion)
}

/// Loss and the gradient L2 norm of every trainable parameter for one batch, in eval mode
/// (no dropout), with a given classifier head. For golden tests and diagnostics.
pub fn gradient_norms(pretrained: &Pretrained, strategy: Strategy, head: Linear, texts: &[String], labels: &[usize], pad_to_max_len: Option<usize>) -> Result<(f64, Vec<(String, f64)>)> {
    let max_len = pad_to_max_len.unwrap_or(model::DEFAULT_MAX_LEN);
    let encoder = pretrained.encoder(max_len)?;
    let model = build_run_model(pretrained, strategy, head)?;
    let ids = encoder.encode_all(texts)?;
    let seqs: Vec<&[u32]> = ids.iter().map(|s| s.as_slice()).collect();
    let batch = encoder.batch(&seqs, pad_to_max_len.is_some(), &Device::Cpu)?;
    let out = model.weights.encode(&pretrained.config, &batch, None)?;
    let loss = model::cross_entropy(&model.head.forward(&out.pooled)?, labels)?;
    let grads = loss.backward()?;
    let norms = crate::optim::gradient_norms(&model.params, &grads, out.word_rows.as_ref())?;
    let named = model.params.iter().map(|p| p.name.clone()).zip(norms).collect();
    Ok((loss.to_scalar::<f32>()? as f64, named))
}

/// One `strategy` step's gradient norms on `texts`, with a seed-0 classifier (eval mode).
pub fn one_step_gradient_norms(session: &Session, strategy: Strategy, texts: &[String], labels: &[usize]) -> Result<Vec<(String, f64)>> {
    let num_labels = labels.iter().max().map_or(2, |m| (m + 1).max(2));
    let head = model::init_classifier(&session.inner.config, num_labels, 0)?;
    Ok(gradient_norms(&session.inner, strategy, head, texts, labels, None)?.1)
}

/// Median milliseconds of one training step and its parts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepTimings {
    pub strategy: String,
    pub seq_len: usize,
    pub batch: usize,
    pub step_ms: f64,
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
    pub rounds: usize,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 { 0.0 } else if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// Time `rounds` training steps (after 3 warm-up steps) on a random batch of 2 sentences of
/// exactly `seq_len` tokens, in training mode (dropout on) — the same measurement as
/// ../shared/bench/torch_reference.py. `frozen` runs the encoder forward every step here (what
/// the first epoch of a frozen run costs; later epochs reuse the cached outputs).
pub fn bench_steps(pretrained: &Pretrained, strategy: Strategy, seq_len: usize, rounds: usize) -> Result<StepTimings> {
    let config = &pretrained.config;
    let head = model::init_classifier(config, 2, 0)?;
    let model = build_run_model(pretrained, strategy, head)?;
    let mut optimizer = Adam::new(model.params.clone(), AdamConfig::default());
    let mut rng = rng::seeded(0, 99);
    let ids: Vec<u32> = (0..2 * seq_len)
        .map(|i| match i % seq_len {
            0 => 101,
            p if p == seq_len - 1 => 102,
            _ => 1000 + (rand::Rng::random_range(&mut rng, 0..(config.vocab_size as u32 - 1000))),
        })
        .collect();
    let batch = crate::tokenize::Batch {
        input_ids: Tensor::from_vec(ids, (2, seq_len), &Device::Cpu)?,
        attention_mask: Tensor::ones((2, seq_len), candle_core::DType::F32, &Device::Cpu)?,
        seq_len,
    };
    let dropout = Dropout { hidden: config.hidden_dropout_prob as f32, attention: config.attention_probs_dropout_prob as f32, classifier: config.classifier_dropout() as f32 };
    let mut samples = Vec::new();
    for round in 0..rounds + 3 {
        let t0 = Instant::now();
        let (pooled, word_rows) = if strategy == Strategy::Frozen {
            (model.weights.encode(config, &batch, None)?.pooled.detach(), None)
        } else {
            let out = model.weights.encode(config, &batch, Some((&mut rng, dropout)))?;
            (out.pooled, out.word_rows)
        };
        let mask = Tensor::from_vec(rng::dropout_mask(&mut rng, pooled.elem_count(), dropout.classifier), pooled.shape(), &Device::Cpu)?;
        let loss = model::cross_entropy(&model.head.forward(&pooled.mul(&mask)?)?, &[0, 1])?;
        loss.to_scalar::<f32>()?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        optimizer.step(&grads, word_rows.as_ref(), 2e-5, 2e-5, None)?;
        let t3 = Instant::now();
        if round >= 3 {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
            samples.push((ms(t0, t3), ms(t0, t1), ms(t1, t2), ms(t2, t3)));
        }
    }
    let pick = |f: fn(&(f64, f64, f64, f64)) -> f64| median(samples.iter().map(f).collect());
    Ok(StepTimings {
        strategy: strategy.to_string(),
        seq_len,
        batch: 2,
        step_ms: pick(|s| s.0),
        forward_ms: pick(|s| s.1),
        backward_ms: pick(|s| s.2),
        optimizer_ms: pick(|s| s.3),
        rounds,
    })
}
