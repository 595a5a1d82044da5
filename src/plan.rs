//! What a run will cost before it starts: its number of steps, its compute (for time-left
//! estimates) and its peak memory (to refuse a run that cannot fit the wasm heap instead of
//! crashing the tab).
//!
//! The compute model counts the floating-point operations of the matrix products (the rest is
//! small beside them): a layer's forward costs 8h² + 4hI + 4Lh FLOPs per token (Q, K, V, output
//! and feed-forward products, scores and context at padded length L); a trained layer's backward
//! costs twice its forward. The memory model adds the run's trainable copies, gradient buffers,
//! Adam moments, the activations the backward pass keeps (per token and trained layer,
//! calibrated against measured peaks: tests/memory.rs) and a frozen run's cache.
use crate::checkpoint::bert_tensor_shapes;
use crate::config::BertConfig;
use crate::rng;
use crate::run_model::trains;
use crate::types::{Strategy, TrainOptions};
use crate::{Error, Result};

/// The cost of one planned run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunPlan {
    pub strategy: String,
    pub total_steps: usize,
    pub trainable_parameters: usize,
    /// Estimated compute, GFLOP (training steps, evaluations, a frozen run's encoding).
    pub work_total: f64,
    /// Of which one training step (0 for frozen, whose head steps are negligible).
    pub work_per_step: f64,
    /// Estimated peak heap the run adds to what exists when it starts, bytes.
    pub peak_bytes: u64,
    /// What the run keeps after it finishes (its trained weights), bytes.
    pub retained_bytes: u64,
    /// Estimated GPU memory when the encoder runs there: the encoder's weights, the trained
    /// tensors' gradients and Adam moments, and a step's activations with its uploaded dropout
    /// masks (about as large again), bytes.
    pub gpu_bytes: u64,
}

/// Token counts of the data a run sees.
pub struct DataShape<'a> {
    /// Token length of every training sentence ([CLS] and [SEP] included, truncated).
    pub train_lengths: &'a [usize],
    /// The validation sentences' lengths.
    pub val_lengths: &'a [usize],
    /// How many training sentences each epoch's evaluation covers.
    pub train_eval_size: usize,
}

const F32: u64 = 4;

/// Floating-point work (FLOPs) one chunk of encoding or evaluation aims at: about a quarter of a
/// second single-threaded in the browser, so a Stop is honoured quickly even on bert-base.
pub const CHUNK_FLOPS: f64 = 4e9;

/// FLOPs of the encoder's matrix products per token (all layers, forward).
pub fn encoder_flops_per_token(config: &BertConfig) -> f64 {
    let (h, i) = (config.hidden_size as f64, config.intermediate_size as f64);
    config.num_hidden_layers as f64 * (8.0 * h * h + 4.0 * h * i)
}
/// Activation floats the backward pass keeps per token of a trained layer (src/encoder.rs's
/// LayerTape): ACT_H per hidden unit (input, Q, K, V, context, the two LayerNorms' normalised
/// inputs, the attention block's output, two dropout masks), ACT_I per feed-forward unit
/// (before and after GELU) and ACT_S per attention score (probabilities and their dropout mask).
const ACT_H: u64 = 10;
const ACT_I: u64 = 2;
const ACT_S: u64 = 2;
/// Activation floats the top layer keeps per token: its input, keys and values (the rest is
/// kept for the [CLS] rows alone).
const ACT_TOP_H: u64 = 3;
/// What an eval-mode forward pass holds per token of the layer it is in (its input, Q, K, V,
/// context and four more hidden-sized buffers, the feed-forward activations, the attention
/// probabilities).
const EVAL_H: u64 = 9;
const EVAL_I: u64 = 2;
const EVAL_S: u64 = 2;

/// Which layers a strategy trains: the index of the lowest one (num_layers when none).
fn lowest_layer_trained_by(strategy: Strategy, num_layers: usize) -> usize {
    match strategy {
        Strategy::Full | Strategy::Lora(_) => 0,
        Strategy::Top(k) => num_layers.saturating_sub(k),
        Strategy::Frozen => num_layers,
    }
}

/// Trainable parameters of a strategy, by how their gradient is kept.
struct Trainable {
    all: usize,
    /// Linear weights: the gradient goes to a gradient slot.
    linear: usize,
    /// Word embeddings: the gradient is kept as the batch's rows only.
    word_embeddings: usize,
}

fn trainable(config: &BertConfig, strategy: Strategy, options: &TrainOptions, num_labels: usize) -> Trainable {
    let head = num_labels * config.hidden_size;
    let mut t = Trainable { all: head + num_labels, linear: head, word_embeddings: 0 };
    if let Strategy::Lora(rank) = strategy {
        let adapters = crate::lora::adapter_parameters(config, &options.lora, rank);
        t.all += adapters;
        t.linear += adapters;
    }
    for (name, shape) in bert_tensor_shapes(config) {
        if trains(config, strategy, &name) {
            let n: usize = shape.iter().product();
            t.all += n;
            if name == "embeddings.word_embeddings.weight" {
                t.word_embeddings = n;
            } else if shape.len() == 2 && !name.starts_with("embeddings.") {
                t.linear += n;
            }
        }
    }
    t
}

/// FLOPs of one layer's forward pass over `tokens` tokens padded to `len`.
fn layer_forward_flops(config: &BertConfig, tokens: f64, len: f64) -> f64 {
    let (h, i) = (config.hidden_size as f64, config.intermediate_size as f64);
    tokens * (8.0 * h * h + 4.0 * h * i + 4.0 * len * h)
}

/// FLOPs of the top layer's forward pass over `sentences` padded to `len`: the key and value
/// projections for every token, the rest for [CLS] alone (the encoder's `Shape::cls_only`).
fn top_layer_forward_flops(config: &BertConfig, sentences: f64, len: f64) -> f64 {
    let h = config.hidden_size as f64;
    // The whole layer for the [CLS] tokens, plus the key and value projections (2 · 2h² each)
    // for the other len − 1 tokens of each sentence.
    layer_forward_flops(config, sentences, len) + sentences * (len - 1.0) * 4.0 * h * h
}

/// Mean padded length of a batch of `batch` sentences drawn at random (dynamic padding pads a
/// batch to its longest sentence), from one seeded shuffle of the real lengths.
fn mean_padded_len(lengths: &[usize], batch: usize, options: &TrainOptions) -> f64 {
    if options.pad_to_max_len || lengths.is_empty() {
        return options.max_len as f64;
    }
    let mut rng = rng::seeded(options.seed, 97);
    let order = rng::permutation(&mut rng, lengths.len());
    let batches: Vec<usize> = order.chunks(batch.max(1)).map(|c| c.iter().map(|&i| lengths[i]).max().unwrap_or(0)).collect();
    batches.iter().sum::<usize>() as f64 / batches.len() as f64
}

/// Forward FLOPs of the whole encoder over sentences of these lengths (eval batches).
fn encode_flops(config: &BertConfig, lengths: &[usize]) -> f64 {
    let below_top = config.num_hidden_layers.saturating_sub(1) as f64;
    lengths.iter().map(|&l| below_top * layer_forward_flops(config, l as f64, l as f64) + top_layer_forward_flops(config, 1.0, l as f64)).sum()
}

pub fn plan_run(config: &BertConfig, strategy: Strategy, options: &TrainOptions, num_labels: usize, data: &DataShape<'_>) -> RunPlan {
    let layers = config.num_hidden_layers;
    let steps_per_epoch = data.train_lengths.len().div_ceil(options.batch_size.max(1));
    // Callers validate the count first (options::total_steps); never overflow here either.
    let total_steps = steps_per_epoch.saturating_mul(options.epochs);
    let trainable = trainable(config, strategy, options, num_labels);
    let lowest = lowest_layer_trained_by(strategy, layers);

    let mean_len = mean_padded_len(data.train_lengths, options.batch_size, options);
    let step_tokens = mean_len * options.batch_size as f64;
    let per_layer = layer_forward_flops(config, step_tokens, mean_len);
    let eval_lengths: Vec<usize> = data.train_lengths.iter().take(data.train_eval_size).chain(data.val_lengths).copied().collect();
    let (work, work_per_step) = if strategy == Strategy::Frozen {
        let cached: Vec<usize> = data.train_lengths.iter().chain(data.val_lengths).copied().collect();
        (encode_flops(config, &cached), 0.0)
    } else {
        // A trained layer's backward costs two forwards (input and weight gradients); a LoRA
        // layer's only one (its frozen weights get no gradient; the adapters' products are small).
        let backward = if matches!(strategy, Strategy::Lora(_)) { 1 } else { 2 };
        let below_top = layers.saturating_sub(1);
        let top = top_layer_forward_flops(config, options.batch_size as f64, mean_len);
        let step = per_layer * (below_top + backward * below_top.saturating_sub(lowest)) as f64 + top * (1 + backward) as f64;
        (step * total_steps as f64 + encode_flops(config, &eval_lengths) * options.epochs as f64, step)
    };

    let longest = data.train_lengths.iter().copied().max().unwrap_or(0).min(options.max_len);
    let padded = if options.pad_to_max_len { options.max_len } else { longest } as u64;
    let tokens = options.batch_size as u64 * padded;
    let (h, i, heads) = (config.hidden_size as u64, config.intermediate_size as u64, config.num_attention_heads as u64);
    // The trained layers keep their activations for the backward pass; one more layer's worth
    // is live at the peak (the backward's own gradient tensors, or a frozen layer's forward).
    // The top layer runs for [CLS] alone and keeps only its input, keys and values per token.
    let full_layers = (layers - lowest).max(1) as u64;
    let activations = F32 * tokens * (full_layers * (ACT_H * h + ACT_I * i + ACT_S * heads * padded) + ACT_TOP_H * h);
    let weights = F32 * trainable.all as u64;
    let dense_gradients = F32 * (trainable.all - trainable.linear - trainable.word_embeddings) as u64;
    // An eval-mode forward pass keeps no activations: one layer's buffers for a chunk.
    let chunk_tokens = (CHUNK_FLOPS / encoder_flops_per_token(config)).max(padded as f64) as u64;
    let chunk = F32 * chunk_tokens * (EVAL_H * h + EVAL_I * i + EVAL_S * heads * padded);
    // The embedding map keeps the pooled vectors of up to 2,000 training and 2,000 validation
    // sentences per evaluation, and a snapshot copies them by set (and once more for the PCA).
    let map = 3 * F32 * h * (data.train_eval_size.min(2000) + data.val_lengths.len().min(2000)) as u64;
    let peak = map + match strategy {
        // The cache, as rows and as the tensor the head trains on.
        Strategy::Frozen => 2 * F32 * h * (data.train_lengths.len() + data.val_lengths.len()) as u64 + chunk + weights * 4,
        _ => weights /* copies */ + F32 * trainable.linear as u64 /* gradient slots */ + 2 * weights /* Adam moments */
            + dense_gradients + activations,
    };
    RunPlan {
        strategy: strategy.to_string(),
        total_steps,
        trainable_parameters: trainable.all,
        work_total: work / 1e9,
        work_per_step: work_per_step / 1e9,
        peak_bytes: peak,
        retained_bytes: weights,
        gpu_bytes: gpu_bytes(config, &trainable, num_labels, if strategy == Strategy::Frozen { chunk } else { activations }),
    }
}

/// See [`RunPlan::gpu_bytes`]: the head (pooler, classifier) stays on the CPU.
fn gpu_bytes(config: &BertConfig, trainable: &Trainable, num_labels: usize, activations: u64) -> u64 {
    let h = config.hidden_size as u64;
    let head = h * h + h + (num_labels as u64) * (h + 1);
    let encoder = bert_tensor_shapes(config).iter().map(|(_, shape)| shape.iter().product::<usize>() as u64).sum::<u64>();
    let trained = (trainable.all as u64).saturating_sub(head);
    F32 * (encoder + 3 * trained) + 2 * activations
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Refuse a run whose estimated peak does not fit: `in_use` bytes are allocated now (the model
/// and earlier runs), `limit` is the most the heap may hold.
pub fn check_fits(plan: &RunPlan, in_use: u64, limit: u64) -> Result<()> {
    if in_use + plan.peak_bytes <= limit {
        return Ok(());
    }
    Err(Error::Options(format!(
        "{} needs about {} of memory at its peak, but only {} of the {} this tab can use are free ({} hold the model and earlier runs). \
         Use a smaller batch size or max length, train fewer layers (top:K, or the frozen encoder), or train this strategy on its own so that earlier runs do not hold memory.",
        plan.strategy,
        gib(plan.peak_bytes),
        gib(limit.saturating_sub(in_use)),
        gib(limit),
        gib(in_use),
    )))
}

/// Bytes of a checkpoint's weights once loaded (f32).
pub fn model_bytes(config: &BertConfig) -> u64 {
    bert_tensor_shapes(config).iter().map(|(_, shape)| F32 * shape.iter().product::<usize>() as u64).sum()
}

/// Peak heap while a checkpoint loads: the file's `file_bytes`, already in memory, beside the
/// f32 weights read from it, plus one tensor in the layout the encoder keeps.
pub fn load_peak_bytes(config: &BertConfig, file_bytes: u64) -> u64 {
    let largest = bert_tensor_shapes(config).iter().map(|(_, shape)| F32 * shape.iter().product::<usize>() as u64).max().unwrap_or(0);
    file_bytes + model_bytes(config) + largest
}

/// Refuse a model that cannot be loaded beside the `in_use` bytes: a tab that tried would run
/// out of memory in the middle of the load.
pub fn check_load_fits(config: &BertConfig, file_bytes: u64, in_use: u64, limit: u64) -> Result<()> {
    let peak = load_peak_bytes(config, file_bytes);
    if in_use + peak <= limit {
        return Ok(());
    }
    Err(Error::Model(format!(
        "Loading this model needs about {} of memory at once (its file and the weights read from it), but only {} of the {} this tab can use are free. \
         Pick a smaller model, or reload the page to free what earlier models and runs hold.",
        gib(peak),
        gib(limit.saturating_sub(in_use)),
        gib(limit),
    )))
}

/// Refuse a whole Train that cannot fit: the runs go one after another, each keeping its
/// trained weights, so run i must fit beside `in_use` and what runs 0..i retain.
pub fn check_train_fits(plans: &[RunPlan], in_use: u64, limit: u64) -> Result<()> {
    let mut held = in_use;
    for plan in plans {
        check_fits(plan, held, limit)?;
        held += plan.retained_bytes;
    }
    Ok(())
}
