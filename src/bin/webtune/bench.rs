//! `webtune bench` (median training-step times, split forward / backward / optimizer, and peak
//! memory) and `webtune random-checkpoint` (a bert-base-uncased-, distilbert-base-uncased- or
//! roberta-base-shaped checkpoint to bench with).
use std::path::PathBuf;

use webtune::bench::gpu::GpuKernelTiming;
use webtune::bench::{StepBench, StepTimings};
use webtune::gpu::Gpu;
use webtune::options::Device;
use webtune::Strategy;

use crate::{load_session, CliResult};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Model folders to benchmark (each with config.json, tokenizer.json, model.safetensors).
    #[arg(long = "model", default_values = ["models/all-MiniLM-L6-v2", "models/bert-base-random"])]
    models: Vec<PathBuf>,
    /// Sequence lengths (tokens per sentence, every batch padded to it).
    #[arg(long = "seq", default_values_t = [12, 128], value_delimiter = ',')]
    seq_lens: Vec<usize>,
    /// Sentences per step (the notebook's 2; real data sets train with 8–32).
    #[arg(long = "batch", default_values_t = [2], value_delimiter = ',')]
    batches: Vec<usize>,
    /// Strategies to time.
    #[arg(long = "strategy", default_values = ["frozen", "full"], value_delimiter = ',')]
    strategies: Vec<String>,
    /// Timed steps per case (after 3 warm-up steps); the median is reported.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// One JSON object per case on stdout.
    #[arg(long)]
    json: bool,
    /// Threads for matmul and element-wise ops (1 = the PyTorch reference's setting). Several
    /// counts (`--threads 1,2`) time one run per count, alternating step by step so that every
    /// count sees the same machine load; the table then shows each count's speed-up over the first.
    #[arg(long, default_values_t = [1], value_delimiter = ',')]
    threads: Vec<usize>,
    /// Time the encoder's forward matrix products (batch × seq rows) instead of training steps:
    /// milliseconds and GFLOPS of `kernels::gemm` per thread count, and what the linear products
    /// of one `full` step take at those rates — a floor for the step (the browser's figures come
    /// from `./build.sh bench-steps --gemm`).
    #[arg(long)]
    gemm: bool,
    /// With gpu (or auto on a hardware GPU): the same steps on the GPU beside the CPU's, each
    /// unit waited for so that the split is the device's time, and the time of each WGSL kernel
    /// of a step on the model's shapes (products with their GFLOPS); cpu: the CPU alone.
    #[arg(long, default_value = crate::cli_train::default_text("device"), value_parser = crate::device::parse)]
    device: Device,
    /// The GPU's f32 peak in GFLOPS (from its data sheet: cores × 2 × clock), to show each
    /// product's share of it.
    #[arg(long)]
    peak_gflops: Option<f64>,
}

#[derive(clap::Args)]
pub struct RandomCheckpointArgs {
    /// Output folder (config.json, tokenizer.json copied from --tokenizer-from, model.safetensors).
    #[arg(long, default_value = "models/bert-base-random")]
    out: PathBuf,
    /// Folder whose tokenizer.json to copy (the bert-base-uncased vocabulary).
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    tokenizer_from: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Whose shape, config.json and parameter names: bert (bert-base-uncased), distilbert
    /// (distilbert-base-uncased) or roberta (roberta-base; --tokenizer-from's vocabulary stands in
    /// for its byte-level BPE unless it names a RoBERTa tokenizer: every id fits its 50,265).
    #[arg(long, default_value = "bert", value_parser = ["bert", "distilbert", "roberta"])]
    arch: String,
    /// Take the shape from this config.json instead of --arch's (e.g.
    /// models/all-MiniLM-L6-v2/config.json: a MiniLM-shaped checkpoint for benchmarks where the
    /// real weights cannot go).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// distilbert-base-uncased's config.json, as the hub serves it.
const DISTILBERT_BASE_UNCASED: &str = r#"{
  "activation": "gelu",
  "architectures": ["DistilBertForMaskedLM"],
  "attention_dropout": 0.1,
  "dim": 768,
  "dropout": 0.1,
  "hidden_dim": 3072,
  "initializer_range": 0.02,
  "max_position_embeddings": 512,
  "model_type": "distilbert",
  "n_heads": 12,
  "n_layers": 6,
  "pad_token_id": 0,
  "qa_dropout": 0.1,
  "seq_classif_dropout": 0.2,
  "sinusoidal_pos_embds": false,
  "tie_weights_": true,
  "transformers_version": "4.10.0.dev0",
  "vocab_size": 30522
}
"#;

/// roberta-base's config.json, as the hub serves it.
const ROBERTA_BASE: &str = r#"{
  "architectures": ["RobertaForMaskedLM"],
  "attention_probs_dropout_prob": 0.1,
  "bos_token_id": 0,
  "eos_token_id": 2,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 768,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "layer_norm_eps": 1e-05,
  "max_position_embeddings": 514,
  "model_type": "roberta",
  "num_attention_heads": 12,
  "num_hidden_layers": 12,
  "pad_token_id": 1,
  "type_vocab_size": 1,
  "vocab_size": 50265
}
"#;

/// Peak resident set size of this process in MiB (Linux), from /proc/self/status VmHWM.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub fn run(args: BenchArgs) -> CliResult {
    if args.gemm {
        return run_gemm(&args);
    }
    let most_threads = args.threads.iter().copied().max().unwrap_or(1);
    crate::threads::use_threads(most_threads)?;
    let pools = args
        .threads
        .iter()
        .map(|&n| rayon::ThreadPoolBuilder::new().num_threads(n).build().map(|pool| (n, pool)).map_err(|e| format!("cannot start {n} threads: {e}")))
        .collect::<CliResult<Vec<_>>>()?;
    let strategies: Vec<Strategy> = args.strategies.iter().map(|s| s.parse().map_err(|e: webtune::Error| e.to_string())).collect::<CliResult<_>>()?;
    for dir in &args.models {
        let session = load_session(dir)?;
        let config = &session.pretrained().config;
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let on_gpu = bench_on_gpu(&args, config)?;
        if on_gpu {
            for &batch in &args.batches {
                for &seq in &args.seq_lens {
                    print_kernels(&args, &name, batch, seq, config)?;
                }
            }
        }
        if !args.json {
            println!("{name}: median of {} steps (ms); peak RSS so far (MiB); speedup over the first row", args.rounds);
            println!("{:<22} {:>8} {:>5} {:>4} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}", "model", "strategy", "batch", "seq", "threads", "step", "forward", "backward", "optim", "peak RSS", "speedup");
        }
        let mut cases = Vec::new();
        for &batch in &args.batches {
            for &seq in &args.seq_lens {
                cases.extend(strategies.iter().map(|&strategy| (batch, seq, strategy)));
            }
        }
        for (batch, seq, strategy) in cases {
            let mut timings: Vec<(String, StepTimings)> = time_alternating(&pools, |pool| pool.install(|| StepBench::start(session.pretrained(), strategy, seq, batch, args.rounds)))?
                .into_iter()
                .map(|(threads, t)| (threads.to_string(), t))
                .collect();
            if on_gpu && !matches!(strategy, Strategy::Lora(_)) {
                timings.push(("gpu".into(), time_on_gpu(&session, strategy, seq, batch, args.rounds)?));
            }
            let rss = peak_rss_mib().unwrap_or(f64::NAN);
            let first_step = timings[0].1.step_ms;
            for (threads, t) in timings {
                if args.json {
                    let mut value = serde_json::to_value(&t).expect("timings serialize");
                    value["model"] = name.clone().into();
                    value["threads"] = threads.parse::<usize>().map_or(serde_json::Value::Null, Into::into);
                    value["peak_rss_mib"] = rss.into();
                    println!("{value}");
                } else {
                    let speedup = first_step / t.step_ms;
                    println!("{:<22} {:>8} {:>5} {:>4} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.0} {:>7.2}", name, t.strategy, batch, seq, threads, t.step_ms, t.forward_ms, t.backward_ms, t.optimizer_ms, rss, speedup);
                }
            }
        }
    }
    Ok(())
}

/// Whether `--device` adds GPU figures: gpu always (or fails), auto on a hardware GPU; says
/// which on stderr.
fn bench_on_gpu(args: &BenchArgs, config: &webtune::config::BertConfig) -> CliResult<bool> {
    let choice = crate::device::choose(args.device, crate::device::largest_tensor(config))?;
    if let Some(gpu) = &choice.gpu {
        eprintln!("bench: the CPU's figures, then the GPU's ({}); {}", gpu.info.describe(), choice.reason);
    } else if args.device != Device::Cpu {
        eprintln!("bench: the CPU's figures only; {}", choice.reason);
    }
    Ok(choice.gpu.is_some())
}

/// A GPU for one benchmark run (each run holds its own device).
fn request_gpu(config: &webtune::config::BertConfig) -> CliResult<Gpu> {
    Gpu::request_blocking(crate::device::largest_tensor(config)).map_err(|e| format!("--device gpu: {e}"))
}

/// The training steps of `strategy` with the encoder on the GPU.
fn time_on_gpu(session: &webtune::Session, strategy: Strategy, seq: usize, batch: usize, rounds: usize) -> CliResult<StepTimings> {
    let gpu = request_gpu(&session.pretrained().config)?;
    let mut bench = StepBench::start_on_gpu(session.pretrained(), strategy, seq, batch, rounds, gpu).map_err(|e| e.to_string())?;
    while bench.next_step().map_err(|e| e.to_string())? {}
    Ok(bench.timings())
}

/// The time of each kernel of a step on `batch` × `seq` tokens on the GPU, and what a `full`
/// step's products take at those rates.
fn print_kernels(args: &BenchArgs, name: &str, batch: usize, seq: usize, config: &webtune::config::BertConfig) -> CliResult {
    let gpu = request_gpu(config)?;
    let timings = webtune::bench::gpu::gpu_kernel_timings(&gpu, config, batch, seq, args.rounds).map_err(|e| e.to_string())?;
    let share = |t: &GpuKernelTiming| t.gflops.zip(args.peak_gflops).map(|(g, peak)| 100.0 * g / peak);
    let overhead = webtune::bench::gpu::launch_overhead(&gpu, args.rounds).map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", serde_json::json!({ "row": "gpu_launch_overhead", "model": name, "device": format!("gpu: {}", gpu.info.describe()), "cpu_us_per_launch": overhead.cpu_us, "us_per_launch": overhead.total_us }));
        for t in &timings {
            let mut value = serde_json::to_value(t).expect("timings serialize");
            value["row"] = "gpu_kernel".into();
            value["model"] = name.into();
            value["device"] = format!("gpu: {}", gpu.info.describe()).into();
            value["batch"] = batch.into();
            value["seq_len"] = seq.into();
            value["percent_of_peak"] = share(t).into();
            println!("{value}");
        }
        return Ok(());
    }
    let peak = args.peak_gflops.map_or_else(|| "no --peak-gflops given".to_string(), |p| format!("f32 peak {p:.0} GFLOPS"));
    println!("{name}: GPU kernels of a step at {batch} × {seq} on {} ({peak}); median of {} submissions", gpu.info.describe(), args.rounds);
    println!("{:<34} {:>20} {:>9} {:>9} {:>7} {:>8} {:>9}", "kernel", "m × n × k (× count)", "ms", "GFLOPS", "% peak", "GB/s", "per step");
    for t in &timings {
        let dims = if t.gflops.is_some() { format!("{}×{}×{}{}", t.m, t.n, t.k, if t.count > 1 { format!(" ×{}", t.count) } else { String::new() }) } else { format!("{}×{}", t.m, t.n) };
        let cell = |v: Option<f64>, digits: usize| v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"));
        println!("{:<34} {:>20} {:>9.3} {:>9} {:>7} {:>8} {:>9}", t.kernel, dims, t.ms, cell(t.gflops, 1), cell(share(t), 1), cell(t.gb_per_s, 0), t.per_full_step);
    }
    let (products, ms) = timings.iter().filter(|t| t.gflops.is_some()).fold((0, 0.0), |(n, ms), t| (n + t.per_full_step, ms + t.per_full_step as f64 * t.ms));
    let others: f64 = timings.iter().filter(|t| t.gflops.is_none()).map(|t| t.per_full_step as f64 * t.ms).sum();
    println!("{name}: a full step's {products} products at these rates: {ms:.1} ms; the element-wise kernels listed: {others:.1} ms");
    println!("{name}: one launch costs {:.1} µs beyond its kernel's work, {:.1} µs of them on the CPU (recording and submitting)\n", overhead.total_us, overhead.cpu_us);
    Ok(())
}

/// `webtune bench --gemm`: the forward products of each model at each batch × seq, per thread
/// count.
fn run_gemm(args: &BenchArgs) -> CliResult {
    for dir in &args.models {
        let session = load_session(dir)?;
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        for &threads in &args.threads {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| e.to_string())?;
            for &batch in &args.batches {
                for &seq in &args.seq_lens {
                    let timings = pool.install(|| webtune::bench::gemm_timings(&session.pretrained().config, batch * seq, args.rounds));
                    for t in &timings {
                        if args.json {
                            let mut value = serde_json::to_value(t).expect("timings serialize");
                            value["model"] = name.clone().into();
                            value["threads"] = threads.into();
                            value["batch"] = batch.into();
                            value["seq_len"] = seq.into();
                            println!("{value}");
                        } else {
                            println!("{name:<22} {batch:>3} × {seq:<4} {threads} thread(s) {:<10} {:>5} × {:>5} × {:>5} {:>9.2} ms {:>7.1} GFLOPS", t.product, t.m, t.n, t.k, t.ms, t.gflops);
                        }
                    }
                    if !args.json {
                        let (products, ms) = timings.iter().fold((0, 0.0), |(n, ms), t| (n + t.per_full_step, ms + t.per_full_step as f64 * t.ms));
                        println!("{name:<22} {batch:>3} × {seq:<4} {threads} thread(s) a full step's {products} linear products at these rates: {ms:.0} ms");
                    }
                }
            }
        }
    }
    Ok(())
}

/// One benchmark run per pool, stepped in turn (each inside its own pool) until all are done.
fn time_alternating(pools: &[(usize, rayon::ThreadPool)], start: impl Fn(&rayon::ThreadPool) -> webtune::Result<StepBench>) -> CliResult<Vec<(usize, StepTimings)>> {
    let mut benches = pools.iter().map(|(_, pool)| start(pool).map_err(|e| e.to_string())).collect::<CliResult<Vec<_>>>()?;
    let mut running = true;
    while running {
        running = false;
        for ((_, pool), bench) in pools.iter().zip(&mut benches) {
            running |= pool.install(|| bench.next_step()).map_err(|e| e.to_string())?;
        }
    }
    Ok(pools.iter().zip(benches).map(|((n, _), bench)| (*n, bench.timings())).collect())
}

pub fn random_checkpoint(args: RandomCheckpointArgs) -> CliResult {
    let (config_json, shape) = match (&args.config, args.arch.as_str()) {
        (Some(path), _) => (crate::read_file(path)?, path.display().to_string()),
        (None, "distilbert") => (DISTILBERT_BASE_UNCASED.as_bytes().to_vec(), "distilbert-base-uncased".into()),
        (None, "roberta") => (ROBERTA_BASE.as_bytes().to_vec(), "roberta-base".into()),
        _ => (serde_json::to_vec_pretty(&webtune::config::BertConfig::bert_base()).expect("config serializes"), "bert-base-uncased".into()),
    };
    let config = webtune::config::BertConfig::from_json(&config_json).map_err(|e| format!("{shape}: {e}"))?;
    let bytes = webtune::checkpoint::random_checkpoint(&config, args.seed);
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    std::fs::write(args.out.join("config.json"), config_json).map_err(|e| e.to_string())?;
    std::fs::copy(args.tokenizer_from.join("tokenizer.json"), args.out.join("tokenizer.json")).map_err(|e| format!("tokenizer.json: {e}"))?;
    std::fs::write(args.out.join("model.safetensors"), bytes).map_err(|e| e.to_string())?;
    eprintln!("wrote a random {shape}-shaped checkpoint to {}", args.out.display());
    Ok(())
}
