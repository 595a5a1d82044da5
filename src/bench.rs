//! Timing of training steps for `webtune bench`, through the same code path as training: a
//! [`Run`] on synthetic sentences, stepped as the CLI and the worker step it.
//!
//! The sentences are long enough to be cut at `seq_len` tokens and every batch is padded to
//! `seq_len`, so each step sees exactly `batch × seq_len` tokens, as
//! `../shared/bench/torch_reference.py` does. A `frozen` run encodes the whole training set
//! once (eval mode) and then trains the head on the cached outputs; its figures split into the
//! encoding cost per batch and the head step, so that their sum compares with PyTorch's frozen
//! step (which runs the encoder every step).
//!
//! On the GPU (native, [`StepBench::start_on_gpu`]) the bench waits for the device after each
//! unit of a step, so that the split forward / backward / optimizer is the device's time and not
//! only the time to record the work; [`gpu`] times the step's kernels one by one.
use web_time::Instant;

use crate::data::{Dataset, Example};
use crate::events::{Event, Phase};
use crate::kernels::{self, Mat};
use crate::model::Pretrained;
use crate::train::{Run, StepTiming};
use crate::types::{Strategy, TrainOptions};
use crate::{Error, Result};

#[cfg(not(target_arch = "wasm32"))]
pub mod gpu;

/// Median milliseconds of one training step and its parts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepTimings {
    pub strategy: String,
    /// Where the encoder ran: "cpu", or "gpu: <adapter> (<backend>)".
    pub device: String,
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
    let mut bench = StepBench::start(pretrained, strategy, seq_len, batch, rounds)?;
    while bench.next_step()? {}
    Ok(bench.timings())
}

/// A benchmark run stepped one training step at a time, so that several runs (e.g. one per
/// thread count, each called inside its own pool) can alternate step by step and see the same
/// machine load.
pub struct StepBench {
    run: Run,
    strategy: Strategy,
    /// The model's encoder layers.
    layers: usize,
    seq_len: usize,
    batch: usize,
    rounds: usize,
    steps_done: usize,
    encode_ms: f64,
    samples: Vec<StepTiming>,
    /// [`StepBench::advance`]: the step under way so far, and when the last call returned.
    partial: StepTiming,
    last_return: Option<Instant>,
    /// On the GPU: its device, waited for after each unit of a step.
    #[cfg(not(target_arch = "wasm32"))]
    device: Option<wgpu::Device>,
}

const WARM_UP: usize = 3;

impl StepBench {
    pub fn start(pretrained: &Pretrained, strategy: Strategy, seq_len: usize, batch: usize, rounds: usize) -> Result<Self> {
        let data = synthetic_dataset((rounds + WARM_UP) * batch, seq_len);
        let options = TrainOptions { epochs: 1, batch_size: batch, max_len: seq_len, pad_to_max_len: true, train_eval_sample: 1, ..TrainOptions::default() };
        let run = Run::start(pretrained, strategy, &data, None, &options, None)?;
        Ok(StepBench {
            run,
            strategy,
            layers: pretrained.config.num_hidden_layers,
            seq_len,
            batch,
            rounds,
            steps_done: 0,
            encode_ms: 0.0,
            samples: Vec::with_capacity(rounds),
            partial: StepTiming::default(),
            last_return: None,
            #[cfg(not(target_arch = "wasm32"))]
            device: None,
        })
    }

    /// [`StepBench::start`] with the encoder on `gpu` (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn start_on_gpu(pretrained: &Pretrained, strategy: Strategy, seq_len: usize, batch: usize, rounds: usize, gpu: crate::gpu::Gpu) -> Result<Self> {
        let mut bench = StepBench::start(pretrained, strategy, seq_len, batch, rounds)?;
        let device = gpu.device.clone();
        bench.run.use_gpu(gpu)?;
        bench.device = Some(device);
        Ok(bench)
    }

    /// Where the encoder runs: "cpu" or "gpu: <adapter> (<backend>)".
    pub fn device(&self) -> String {
        self.run.device()
    }

    /// Train on `gpu` (in the browser; natively [`StepBench::start_on_gpu`] also waits for the
    /// device unit by unit). Step with [`StepBench::advance`] then.
    pub fn use_gpu(&mut self, gpu: crate::gpu::Gpu) -> Result<()> {
        self.run.use_gpu(gpu)
    }

    /// One unit of work, for a GPU run in the browser, whose read-backs resolve only between
    /// calls (so [`StepBench::next_step`] cannot wait for them); true while steps remain. Each
    /// call's time since the previous call returned (the caller's wait included) is counted as
    /// [`StepBench::next_step`] counts a unit natively, so the device's work is counted where
    /// the step waits for it: the forward's with the [CLS] rows' read-back, the backward's and
    /// most of the optimizer's with the read-backs that follow the backward's last unit.
    pub fn advance(&mut self) -> Result<bool> {
        use crate::train::Advance;
        if self.steps_done >= self.rounds + WARM_UP {
            return Ok(false);
        }
        let t0 = self.last_return.unwrap_or_else(Instant::now);
        let advance = self.run.advance();
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        self.last_return = Some(Instant::now());
        match advance {
            Advance::Unit(unit) => add_unit_time(&mut self.partial, &unit, self.layers, ms),
            Advance::Event(Event::Step { .. }) => {
                self.partial.optimizer_ms += ms;
                let timing = std::mem::take(&mut self.partial);
                if self.steps_done >= WARM_UP {
                    self.samples.push(timing);
                }
                self.steps_done += 1;
            }
            Advance::Event(Event::Progress { phase: Phase::Cache, .. }) => self.encode_ms += ms,
            Advance::Event(Event::Start { .. } | Event::Progress { phase: Phase::Evaluate, .. } | Event::Embedding { .. }) => self.partial = StepTiming::default(),
            Advance::Event(Event::Error { message }) => return Err(Error::Options(message)),
            Advance::Event(other) => return Err(Error::Options(format!("bench: unexpected event before the last timed step: {other:?}"))),
        }
        Ok(self.steps_done < self.rounds + WARM_UP)
    }

    /// Run until the next training step is done (the first call also encodes a frozen run's
    /// cache). Returns false once every warm-up and timed step is done.
    pub fn next_step(&mut self) -> Result<bool> {
        while self.steps_done < self.rounds + WARM_UP {
            let t0 = Instant::now();
            let (event, timing) = match self.unit_timed_step()? {
                Some(step) => step,
                None => (self.run.step(), None),
            };
            match event {
                Event::Step { .. } => {
                    if self.steps_done >= WARM_UP {
                        self.samples.push(timing.unwrap_or_else(|| self.run.last_step_timing()));
                    }
                    self.steps_done += 1;
                    return Ok(true);
                }
                Event::Progress { phase: Phase::Cache, .. } => self.encode_ms += t0.elapsed().as_secs_f64() * 1000.0,
                // The evaluation before training (one sentence: see train_eval_sample above).
                Event::Start { .. } | Event::Progress { phase: Phase::Evaluate, .. } | Event::Embedding { .. } => {}
                Event::Error { message } => return Err(Error::Options(message)),
                other => return Err(Error::Options(format!("bench: unexpected event before the last timed step: {other:?}"))),
            }
        }
        Ok(false)
    }

    /// On the GPU, with the encoder in the step (not frozen): the run's next event, each unit
    /// timed up to the device's idle — the embeddings, the layers and the head are the
    /// forward, the rest of the step's pass the backward, the update the optimizer. `None`
    /// elsewhere (the run's own timing is the CPU's time).
    #[cfg(not(target_arch = "wasm32"))]
    fn unit_timed_step(&mut self) -> Result<Option<(Event, Option<StepTiming>)>> {
        use crate::train::Advance;
        let Some(device) = self.device.clone().filter(|_| self.strategy != Strategy::Frozen) else { return Ok(None) };
        let mut timing = StepTiming::default();
        loop {
            let t0 = Instant::now();
            let advance = self.run.advance();
            gpu::wait(&device)?;
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            match advance {
                Advance::Unit(unit) => add_unit_time(&mut timing, &unit, self.layers, ms),
                Advance::Event(event @ Event::Step { .. }) => {
                    timing.optimizer_ms += ms;
                    return Ok(Some((event, Some(timing))));
                }
                Advance::Event(event) => return Ok(Some((event, None))),
            }
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn unit_timed_step(&mut self) -> Result<Option<(Event, Option<StepTiming>)>> {
        Ok(None)
    }

    /// The medians of the timed steps.
    pub fn timings(&self) -> StepTimings {
        let samples = &self.samples;
        let forward = median(samples.iter().map(|t| t.forward_ms).collect());
        let backward = median(samples.iter().map(|t| t.backward_ms).collect());
        let optimizer = median(samples.iter().map(|t| t.optimizer_ms).collect());
        // A frozen run encodes every sentence once; spread that over the batches.
        let encode_ms_per_batch = (self.strategy == Strategy::Frozen).then(|| self.encode_ms / (self.rounds + WARM_UP) as f64);
        let encode = encode_ms_per_batch.unwrap_or(0.0);
        StepTimings {
            strategy: self.strategy.to_string(),
            device: self.run.device(),
            seq_len: self.seq_len,
            batch: self.batch,
            step_ms: encode + median(samples.iter().map(|t| t.forward_ms + t.backward_ms + t.optimizer_ms).collect()),
            forward_ms: encode + forward,
            backward_ms: backward,
            optimizer_ms: optimizer,
            encode_ms_per_batch,
            rounds: self.rounds,
        }
    }
}

/// Count `ms` of a training step's `unit` in its part: the embeddings, every layer (a partial
/// backward still runs them all) and the head are the forward, the step's other units the
/// backward; units outside a step (encoding, evaluation) are not counted.
fn add_unit_time(timing: &mut StepTiming, unit: &crate::events::UnitProgress, layers: usize, ms: f64) {
    if unit.step.is_none() {
        return;
    }
    if unit.units_done <= layers + 2 {
        timing.forward_ms += ms;
    } else {
        timing.backward_ms += ms;
    }
}

/// The speed of one matrix product of the encoder, through [`kernels::gemm`] on the current
/// pool: what the forward pass's projections cost, natively and in wasm.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GemmTiming {
    /// Which product: `projection` (hidden → hidden), `ff_up` (hidden → intermediate),
    /// `ff_down` (intermediate → hidden).
    pub product: &'static str,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// Median milliseconds of `rounds` products (after one warm-up).
    pub ms: f64,
    pub gflops: f64,
    /// How many products of this size one `full` training step runs: per layer, forward, the
    /// weight gradient and the input gradient (every layer's, as the embeddings train too); of
    /// the top layer only the key and value projections (its other products run on the [CLS]
    /// rows alone, batch × smaller, and are left out).
    /// Σ `per_full_step` × `ms` is what a step's linear products take at these rates — a floor
    /// for the step (attention's products, the element-wise passes and the optimizer come on
    /// top; the backward products have transposed operands and may run at other rates).
    pub per_full_step: usize,
}

/// Time the encoder's three forward products for `rows` tokens (batch × sequence length).
pub fn gemm_timings(config: &crate::config::BertConfig, rows: usize, rounds: usize) -> Vec<GemmTiming> {
    let (hidden, inner, layers) = (config.hidden_size, config.intermediate_size, config.num_hidden_layers);
    // Per layer: query, key, value and attention output; one feed-forward product each way. The
    // top layer: key and value.
    let below_top = layers.saturating_sub(1);
    [("projection", hidden, hidden, 4 * below_top + 2.min(layers)), ("ff_up", inner, hidden, below_top), ("ff_down", hidden, inner, below_top)]
        .into_iter()
        .map(|(product, n, k, per_step_forward)| {
            let m = rows;
            let (x, w, mut y) = (vec![0.5f32; m * k], vec![0.25f32; k * n], vec![0f32; m * n]);
            let mut product_ms = || {
                let start = Instant::now();
                kernels::gemm(&mut y, n, false, m, n, k, Mat::rows(&x, k), Mat::rows(&w, n));
                start.elapsed().as_secs_f64() * 1000.0
            };
            product_ms();
            let ms = median((0..rounds.max(1)).map(|_| product_ms()).collect());
            GemmTiming { product, m, n, k, ms, gflops: 2.0 * (m * n * k) as f64 / ms / 1e6, per_full_step: 3 * per_step_forward }
        })
        .collect()
}
