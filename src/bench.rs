//! Timing of training steps for `webtune bench`, through the same code path as training: a
//! [`Run`] on synthetic sentences, stepped as the CLI and the worker step it.
//!
//! The sentences are long enough to be cut at `seq_len` tokens and every batch is padded to
//! `seq_len`, so each step sees exactly `batch × seq_len` tokens, as
//! `../shared/bench/torch_reference.py` does. A `frozen` run encodes the whole training set
//! once (eval mode) and then trains the head on the cached outputs; its figures split into the
//! encoding cost per batch and the head step, so that their sum compares with PyTorch's frozen
//! step (which runs the encoder every step).
use web_time::Instant;

use crate::data::{Dataset, Example};
use crate::events::{Event, Phase};
use crate::model::Pretrained;
use crate::train::Run;
use crate::types::{Strategy, TrainOptions};
use crate::{Error, Result};

/// Median milliseconds of one training step and its parts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepTimings {
    pub strategy: String,
    pub seq_len: usize,
    pub batch: usize,
    /// forward + backward + optimizer (+ the encoding share for `frozen`).
    pub step_ms: f64,
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
    /// `frozen` only: encoding the cached outputs, per batch of `batch` sentences (included in
    /// `forward_ms` and `step_ms`).
    pub encode_ms_per_batch: Option<f64>,
    pub rounds: usize,
}

/// Words that are single tokens in BERT's uncased vocabulary.
const WORDS: [&str; 16] = ["the", "movie", "was", "good", "bad", "and", "i", "really", "liked", "it", "not", "very", "service", "money", "great", "day"];

/// `n` sentences of at least `tokens` words each, alternately labelled 0 and 1.
fn synthetic_dataset(n: usize, tokens: usize) -> Dataset {
    let examples = (0..n)
        .map(|i| Example {
            text: (0..tokens).map(|j| WORDS[(i * 7 + j * 3 + j * j) % WORDS.len()]).collect::<Vec<_>>().join(" "),
            label: i % 2,
            line: i + 1,
        })
        .collect();
    Dataset { examples, labels: vec!["0".into(), "1".into()] }
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 { 0.0 } else if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// Time `rounds` training steps (after 3 warm-up steps) of batches of `batch` sentences of
/// exactly `seq_len` tokens, in training mode (dropout on).
pub fn bench_steps(pretrained: &Pretrained, strategy: Strategy, seq_len: usize, batch: usize, rounds: usize) -> Result<StepTimings> {
    const WARM_UP: usize = 3;
    let steps = rounds + WARM_UP;
    let data = synthetic_dataset(steps * batch, seq_len);
    let options = TrainOptions { epochs: 1, batch_size: batch, max_len: seq_len, pad_to_max_len: true, train_eval_sample: 1, ..TrainOptions::default() };
    let mut run = Run::start(pretrained, strategy, &data, None, &options, None)?;
    let mut samples = Vec::with_capacity(rounds);
    let (mut steps_done, mut encode_ms) = (0, 0.0);
    while steps_done < steps {
        let t0 = Instant::now();
        match run.step() {
            Event::Step { .. } => {
                if steps_done >= WARM_UP {
                    samples.push(run.last_step_timing());
                }
                steps_done += 1;
            }
            Event::Progress { phase: Phase::Cache, .. } => encode_ms += t0.elapsed().as_secs_f64() * 1000.0,
            // The evaluation before training (one sentence: see train_eval_sample below).
            Event::Start { .. } | Event::Progress { phase: Phase::Evaluate, .. } | Event::Embedding { .. } => {}
            Event::Error { message } => return Err(Error::Options(message)),
            other => return Err(Error::Options(format!("bench: unexpected event before the last timed step: {other:?}"))),
        }
    }
    let forward = median(samples.iter().map(|t| t.forward_ms).collect());
    let backward = median(samples.iter().map(|t| t.backward_ms).collect());
    let optimizer = median(samples.iter().map(|t| t.optimizer_ms).collect());
    // A frozen run encodes every sentence once; spread that over the batches.
    let encode_ms_per_batch = (strategy == Strategy::Frozen).then(|| encode_ms / steps as f64);
    let encode = encode_ms_per_batch.unwrap_or(0.0);
    Ok(StepTimings {
        strategy: strategy.to_string(),
        seq_len,
        batch,
        step_ms: encode + median(samples.iter().map(|t| t.forward_ms + t.backward_ms + t.optimizer_ms).collect()),
        forward_ms: encode + forward,
        backward_ms: backward,
        optimizer_ms: optimizer,
        encode_ms_per_batch,
        rounds,
    })
}
