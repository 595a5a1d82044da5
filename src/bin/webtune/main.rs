//! `webtune`, the native shell over the core: train, predict, encode, bench and serve.
//!
//! Everything here is I/O and presentation: reading model folders and data files, printing
//! progress, tables and JSON. The work itself is in the library.
mod bench;
mod cli_train;
mod device;
mod map_csv;
mod progress;
mod record;
mod serve;
mod threads;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use webtune::Session;

#[derive(Parser)]
#[command(name = "webtune", version, about = "Fine-tune a pre-trained BERT classifier (frozen / top-k / full) — natively, or serve the in-browser app")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fine-tune with one or more strategies from the same initial weights and compare them.
    Train(Box<cli_train::TrainArgs>),
    /// Classify texts with a fine-tuned model (e.g. one exported by `webtune train --export`).
    Predict(PredictArgs),
    /// Print the encoder's outputs for texts (token ids, [CLS] and mean last hidden state, pooled).
    Encode(ModelAndTexts),
    /// Benchmark training steps (forward / backward / optimizer) and peak memory.
    Bench(bench::BenchArgs),
    /// One eval-mode forward + backward (`full`, seed-0 classifier) as JSON: token ids, last
    /// hidden state, logits, loss and every parameter's gradient, in transformers' names (for
    /// golden checks against transformers).
    Probe(ProbeArgs),
    /// Write a randomly initialised checkpoint with a given architecture (e.g. bert-base-uncased's).
    RandomCheckpoint(bench::RandomCheckpointArgs),
    /// Serve the web app (www/) with COOP/COEP headers and a local Hugging Face hub mirror.
    Serve(serve::ServeArgs),
}

#[derive(clap::Args)]
struct ProbeArgs {
    /// Model folder with config.json, tokenizer.json and model.safetensors.
    #[arg(long)]
    model: PathBuf,
    /// Comma-separated class index of each text.
    #[arg(long, value_delimiter = ',', required = true)]
    labels: Vec<usize>,
    /// The number of classes (default: the largest label + 1, at least 2).
    #[arg(long)]
    num_labels: Option<usize>,
    /// The texts, one batch padded to the longest.
    #[arg(required = true)]
    texts: Vec<String>,
}

fn probe(args: ProbeArgs) -> CliResult {
    if args.labels.len() != args.texts.len() {
        return Err(format!("{} labels for {} texts: give one --labels entry per text", args.labels.len(), args.texts.len()));
    }
    let num_labels = args.num_labels.unwrap_or_else(|| args.labels.iter().max().map_or(2, |m| (m + 1).max(2)));
    if let Some(bad) = args.labels.iter().find(|&&l| l >= num_labels) {
        return Err(format!("--labels has class {bad}, but --num-labels is {num_labels}"));
    }
    let session = load_session(&args.model)?;
    let out = webtune::probe::full_probe(session.pretrained(), &args.texts, &args.labels, num_labels).map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string(&out).expect("a probe serializes"));
    Ok(())
}

/// The arguments `predict` and `encode` share.
#[derive(clap::Args)]
struct ModelAndTexts {
    /// Model folder with config.json, tokenizer.json and model.safetensors (for predict: with a
    /// trained head, e.g. from `webtune train --export`).
    #[arg(long)]
    model: PathBuf,
    /// One JSON object per text on stdout.
    #[arg(long)]
    json: bool,
    /// The texts.
    #[arg(required = true)]
    texts: Vec<String>,
}

#[derive(clap::Args)]
struct PredictArgs {
    #[command(flatten)]
    input: ModelAndTexts,
    #[arg(long, default_value = cli_train::default_text("device"), value_parser = device::parse, help = device::HELP)]
    device: webtune::options::Device,
}

pub type CliResult<T = ()> = Result<T, String>;

/// Read a file, naming it in the error.
pub fn read_file(path: &Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub fn read_text(path: &Path) -> CliResult<String> {
    String::from_utf8(read_file(path)?).map_err(|e| format!("{} is not UTF-8 text: {e}", path.display()))
}

/// Load the Hugging Face trio from a model folder.
pub fn load_session(dir: &Path) -> CliResult<Session> {
    let file = |name: &str| {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(format!(
                "{} is missing: a model folder needs config.json, tokenizer.json and model.safetensors (./build.sh model provides models/all-MiniLM-L6-v2)",
                path.display()
            ));
        }
        read_file(&path)
    };
    Session::load(&file("config.json")?, &file("tokenizer.json")?, &file("model.safetensors")?).map_err(|e| e.to_string())
}

fn predict(PredictArgs { input: args, device }: PredictArgs) -> CliResult {
    let session = load_session(&args.model)?;
    let pretrained = session.pretrained();
    let choice = device::choose(device, device::largest_tensor(&pretrained.config))?;
    eprintln!("{}", choice.reason);
    let predictions = match choice.gpu {
        Some(gpu) => webtune::gpu::predict::GpuPredictor::new(gpu, pretrained).and_then(|p| p.predict(pretrained, &args.texts)),
        None => session.predict(&args.texts),
    }
    .map_err(|e| e.to_string())?;
    for p in predictions {
        if args.json {
            println!("{}", serde_json::to_string(&p).expect("predictions serialize"));
        } else {
            let probs: Vec<String> = p.labels.iter().zip(&p.probabilities).map(|(l, q)| format!("{l}={q:.3}")).collect();
            println!("{}\t{}\t{}", p.label, probs.join(" "), p.text);
        }
    }
    Ok(())
}

fn encode(args: ModelAndTexts) -> CliResult {
    let session = load_session(&args.model)?;
    for text in &args.texts {
        let out = session.encode(text).map_err(|e| e.to_string())?;
        if args.json {
            println!("{}", serde_json::to_string(&out).expect("encodings serialize"));
        } else {
            println!("{} tokens, pooled[0..4] = {:?}: {text}", out.input_ids.len(), &out.pooled[..4.min(out.pooled.len())]);
        }
    }
    Ok(())
}

/// Keep big tensor buffers in the heap instead of mmap/munmap-ing them every step: glibc's
/// default returns every buffer over 128 KiB to the OS, and re-mapping them every step costs
/// page faults. (wasm's allocator reuses memory anyway.)
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        // 32 MiB is glibc's maximum (a larger value is refused); per-step buffers are smaller.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        // One arena for all threads: a step that runs on a pool thread (`bench` installs its
        // pools) otherwise allocates from that thread's own arena, which gives its freed heap
        // back to the kernel whatever the two settings above say (`perf stat -e page-faults` on
        // `webtune bench` shows it). The threads allocate little besides the step's own
        // buffers, so sharing the arena's lock is cheap.
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Die quietly on a closed pipe (`webtune train --json | head`), like other Unix tools,
/// instead of panicking in println!.
fn restore_sigpipe() {
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    tune_allocator();
    restore_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => cli_train::run(*args),
        Command::Predict(args) => predict(args),
        Command::Encode(args) => encode(args),
        Command::Bench(args) => bench::run(args),
        Command::Probe(args) => probe(args),
        Command::RandomCheckpoint(args) => bench::random_checkpoint(args),
        Command::Serve(args) => serve::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
