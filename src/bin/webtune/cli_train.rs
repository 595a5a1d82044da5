//! `webtune train`: run strategies one after another from the same initial weights, print a
//! live progress line (stderr) and a final comparison table — or, with `--json`, the event
//! stream, one JSON object per line on stdout. `--record FILE` saves the whole Train as one
//! record (record.rs), the JSON the page's "Load results" reads.
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use webtune::events::Event;
use webtune::recipe::{self, ModelSource, RecipeRun};
use webtune::options::{Device, FieldSpec, LoraOptions, Projection};
use webtune::{prepare_data, PreparedData, Run, Schedule, Strategy, TrainOptions};

use crate::map_csv::MapCsv;
use crate::progress::ProgressLine;
use crate::record::Recorder;
use webtune::record::{event_json, Validation};
use crate::{load_session, read_text, CliResult};

/// The core's option spec (webtune::options): every flag's default comes from it, written as
/// --help shows it ("2e-5", "query,value"); the core checks the values against it.
static SPEC: LazyLock<Vec<FieldSpec>> = LazyLock::new(webtune::options::spec);

pub fn default_text(name: &str) -> &'static str {
    &SPEC.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} is not in the option spec")).default_text
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Model folder with config.json, tokenizer.json and model.safetensors.
    #[arg(long)]
    model: PathBuf,
    /// Training data: TSV/CSV with a header (text|sentence, label), or label<TAB>text lines.
    #[arg(long)]
    data: PathBuf,
    /// Validation data file (same formats; labels must be training classes).
    #[arg(long, conflicts_with = "val_fraction")]
    val_data: Option<PathBuf>,
    /// Hold out this fraction of each class as validation data (stratified, seeded).
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Comma-separated strategies: frozen (head only), top:K (top K layers + pooler + head), full,
    /// lora:R (rank-R adapters + pooler + head; the encoder's weights stay frozen).
    #[arg(long, default_value = "frozen,full", value_delimiter = ',')]
    strategy: Vec<String>,
    #[arg(long, default_value = default_text("epochs"))]
    epochs: usize,
    /// Adam learning rate.
    #[arg(long, default_value = default_text("learning_rate"))]
    lr: f64,
    /// Learning rate of the classifier head and pooler (default: --lr). Try 1e-2 with frozen.
    #[arg(long)]
    head_lr: Option<f64>,
    #[arg(long, default_value = default_text("batch_size"))]
    batch_size: usize,
    /// Truncate sentences to this many tokens.
    #[arg(long, default_value = default_text("max_len"))]
    max_len: usize,
    /// Pad every batch to --max-len (as the notebook does) instead of to its longest sentence.
    #[arg(long)]
    pad_to_max: bool,
    #[arg(long, default_value = default_text("seed"))]
    seed: u64,
    /// AdamW decoupled weight decay (0 = plain Adam, torch's default).
    #[arg(long, default_value = default_text("weight_decay"))]
    weight_decay: f64,
    /// Learning-rate schedule: constant, or linear (warm-up then decay to 0).
    #[arg(long, default_value = default_text("schedule"))]
    schedule: Schedule,
    /// Fraction of steps used for linear warm-up (with --schedule linear).
    #[arg(long, default_value = default_text("warmup_ratio"))]
    warmup_ratio: f64,
    /// Clip the global gradient norm to this value.
    #[arg(long)]
    max_grad_norm: Option<f64>,
    /// Measure each epoch's training accuracy on a fixed stratified sample of at most this
    /// many training sentences (0 = all); validation data is always evaluated whole.
    #[arg(long, default_value = default_text("train_eval_sample"))]
    train_eval_sample: usize,
    /// LoRA: the update is scaled by alpha / R (PEFT's default alpha: 8).
    #[arg(long, default_value = default_text("lora.alpha"))]
    lora_alpha: f64,
    /// LoRA: dropout on the adapters' input.
    #[arg(long, default_value = default_text("lora.dropout"))]
    lora_dropout: f64,
    /// LoRA: comma-separated projections of every layer that get adapters: query, key, value,
    /// attention_output, intermediate, output.
    #[arg(long, default_value = default_text("lora.targets"), value_delimiter = ',')]
    lora_targets: Vec<Projection>,
    /// LoRA: learning rate of the adapters (and of the pooler and head unless --head-lr).
    #[arg(long, default_value = default_text("lora.learning_rate"))]
    lora_lr: f64,
    /// Export each trained model here (one strategy: DIR itself; several: DIR/<strategy>).
    #[arg(long)]
    export: Option<PathBuf>,
    /// Write each strategy's recipe as a PyTorch script here (several: DIR/<strategy>): train.py,
    /// recipe.json, the data, requirements.txt and README.md — the same training with PyTorch,
    /// transformers and PEFT, under `accelerate launch` or `torchrun`, on one GPU or many.
    #[arg(long)]
    export_script: Option<PathBuf>,
    /// Print the event stream as JSON lines on stdout instead of progress and a table.
    #[arg(long)]
    json: bool,
    /// Write the Train's record to this JSON file: options, model, data summary and every
    /// event (as --json prints them) — what the web page's "Load results" opens.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Write the embedding map (every snapshot of every strategy) to this CSV file: strategy,
    /// epoch, set, index, label, predicted, x, y.
    #[arg(long)]
    map: Option<PathBuf>,
    /// Threads for every step (matmuls, element-wise loops, the optimizer); default: all
    /// logical cores (or RAYON_NUM_THREADS when set). The `start` event reports the count used.
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, default_value = default_text("device"), value_parser = crate::device::parse, help = crate::device::HELP)]
    device: Device,
}

impl TrainArgs {
    /// The options the flags give; the core checks them against its spec (webtune::options).
    fn options(&self) -> CliResult<TrainOptions> {
        let options = TrainOptions {
            epochs: self.epochs,
            learning_rate: self.lr,
            head_learning_rate: self.head_lr,
            batch_size: self.batch_size,
            max_len: self.max_len,
            pad_to_max_len: self.pad_to_max,
            seed: self.seed,
            weight_decay: self.weight_decay,
            schedule: self.schedule,
            warmup_ratio: self.warmup_ratio,
            max_grad_norm: self.max_grad_norm,
            train_eval_sample: self.train_eval_sample,
            lora: LoraOptions { alpha: self.lora_alpha, dropout: self.lora_dropout, targets: self.lora_targets.clone(), learning_rate: self.lora_lr },
        };
        options.validate().map_err(|e| e.to_string())?;
        Ok(options)
    }

    fn data(&self) -> CliResult<PreparedData> {
        let train_text = read_text(&self.data)?;
        let val_text = self.val_data.as_deref().map(read_text).transpose()?;
        if let (Some(path), Some(text)) = (&self.val_data, &val_text) {
            if text.trim().is_empty() {
                return Err(format!("{} (--val-data) is empty: give it labelled sentences, or leave --val-data out to train without validation", path.display()));
            }
        }
        prepare_data(&train_text, val_text.as_deref(), self.val_fraction, self.seed).map_err(|diagnostics| {
            let lines: Vec<String> = diagnostics
                .iter()
                .map(|d| {
                    let file = match d.field {
                        webtune::session::DataField::Train => self.data.display().to_string(),
                        webtune::session::DataField::Validation => self.val_data.as_ref().unwrap_or(&self.data).display().to_string(),
                    };
                    if d.line == 0 { format!("{file}: {}", d.message) } else { format!("{file}:{}: {}", d.line, d.message) }
                })
                .collect();
            format!("the data has problems:\n  {}", lines.join("\n  "))
        })
    }
}

/// One finished strategy, for the comparison table.
struct Summary {
    strategy: String,
    train_accuracy: f64,
    val_accuracy: Option<f64>,
    steps: usize,
    elapsed_ms: f64,
    accuracy_per_epoch: Vec<f64>,
}

fn export_dir(base: &Path, strategy: Strategy, several: bool) -> PathBuf {
    if several { base.join(strategy.to_string().replace(':', "-")) } else { base.to_path_buf() }
}

fn export(run: &Run, dir: &Path) -> CliResult {
    let exported = run.export().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, bytes) in exported.files() {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    // A LoRA run also leaves its PEFT adapter (the folder above is the merged model).
    if let Some((config, weights)) = run.export_adapter().map_err(|e| e.to_string())? {
        let adapter = dir.join("adapter");
        std::fs::create_dir_all(&adapter).map_err(|e| format!("cannot create {}: {e}", adapter.display()))?;
        for (name, bytes) in [("adapter_config.json", config), ("adapter_model.safetensors", weights)] {
            let path = adapter.join(name);
            std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// `--export-script`: the strategy's recipe folder (webtune::recipe), its model as a folder path.
fn export_recipe(args: &TrainArgs, session: &webtune::Session, strategy: Strategy, data: &PreparedData, options: &TrainOptions, dir: &Path) -> CliResult {
    let model = std::fs::canonicalize(&args.model).unwrap_or_else(|_| args.model.clone()).display().to_string();
    let validation_kind = if args.val_data.is_some() { "separate" } else if args.val_fraction.is_some() { "split" } else { "none" };
    let producer = format!("webtune CLI {}", env!("CARGO_PKG_VERSION"));
    let run = RecipeRun { strategy, train: &data.train, validation: data.validation.as_ref(), validation_kind, options, model: ModelSource::Folder(model), producer: &producer };
    let files = recipe::export(session.pretrained(), &run).map_err(|e| e.to_string())?;
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if !args.json {
        eprintln!("[{strategy}] recipe written to {} (python {}/train.py)", dir.display(), dir.display());
    }
    Ok(())
}

fn print_table(summaries: &[Summary]) {
    println!("\n{:<10} {:>9} {:>9} {:>7} {:>9} {:>9}  train acc per epoch", "strategy", "train acc", "val acc", "steps", "time (s)", "steps/s");
    for s in summaries {
        let val = s.val_accuracy.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "-".into());
        let per_epoch: Vec<String> = s.accuracy_per_epoch.iter().map(|a| format!("{:.0}%", a * 100.0)).collect();
        let secs = s.elapsed_ms / 1000.0;
        println!("{:<10} {:>8.1}% {:>9} {:>7} {:>9.2} {:>9.1}  {}", s.strategy, s.train_accuracy * 100.0, val, s.steps, secs, s.steps as f64 / secs.max(1e-9), per_epoch.join(" "));
    }
}

/// Move `run` to the GPU when `--device` says so (see device.rs), and say which device and why
/// on stderr — once, unless a later strategy's answer differs (`said`: the last line).
fn place_run(run: &mut Run, device: Device, strategy: Strategy, session: &webtune::Session, said: &mut String) -> CliResult {
    let choice = crate::device::choose(device, crate::device::largest_tensor(&session.pretrained().config))?;
    let mut reason = choice.reason;
    if let Some(gpu) = choice.gpu {
        if let Err(e) = run.use_gpu(gpu) {
            if device == Device::Gpu {
                return Err(format!("--device gpu: {e}; use --device cpu"));
            }
            reason = format!("device: cpu (auto: the GPU refused the model: {e})");
        }
    }
    if reason != *said {
        eprintln!("[{strategy}] {reason}");
        *said = reason;
    }
    Ok(())
}

pub fn run(args: TrainArgs) -> CliResult {
    crate::threads::use_threads(args.threads.unwrap_or_else(crate::threads::default_threads))?;
    let strategies: Vec<Strategy> = args.strategy.iter().map(|s| s.parse().map_err(|e: webtune::Error| e.to_string())).collect::<CliResult<_>>()?;
    let options = args.options()?;
    let data = args.data()?;
    let session = load_session(&args.model)?;
    if !args.json {
        for note in session.info().notes {
            eprintln!("note: {note}");
        }
    }
    let plans = session.plan(&strategies, &data.train, data.validation.as_ref(), &options).map_err(|e| e.to_string())?;
    let mut progress = ProgressLine::new(plans.iter().map(|p| (p.strategy.clone(), p.work_total)).collect());
    let mut map = args.map.as_deref().map(MapCsv::create).transpose()?;
    let mut summaries = Vec::new();
    let mut recorder = args.record.as_ref().map(|_| {
        let validation = Validation::of(args.val_data.is_some(), args.val_fraction.is_some());
        Recorder::new(&args.model.display().to_string(), &session.info(), &data, validation, &options, &strategies)
    });
    let mut said = String::new();
    for &strategy in &strategies {
        let mut run = session.start_run(strategy, &data.train, data.validation.as_ref(), &options).map_err(|e| e.to_string())?;
        place_run(&mut run, args.device, strategy, &session, &mut said)?;
        if let Some(base) = &args.export_script {
            export_recipe(&args, &session, strategy, &data, &options, &export_dir(base, strategy, strategies.len() > 1))?;
        }
        let mut accuracy_per_epoch = Vec::new();
        loop {
            let event = run.step();
            if args.json || recorder.is_some() {
                let value = event_json(&event);
                if args.json {
                    println!("{value}");
                }
                if let Some(recorder) = recorder.as_mut() {
                    recorder.push(value);
                }
            }
            if !args.json {
                progress.on_event(&event);
            }
            match event {
                Event::Epoch { train_accuracy, .. } => accuracy_per_epoch.push(train_accuracy),
                Event::Done { train_accuracy, val_accuracy, steps, elapsed_ms, .. } => {
                    summaries.push(Summary { strategy: strategy.to_string(), train_accuracy, val_accuracy, steps, elapsed_ms, accuracy_per_epoch });
                    break;
                }
                Event::Error { message } => {
                    if let (Some(recorder), Some(path)) = (&recorder, &args.record) {
                        recorder.write(path)?;
                    }
                    return Err(message);
                }
                Event::Start { ref labels, .. } => {
                    if let Some(map) = map.as_mut() {
                        map.set_labels(labels);
                    }
                }
                Event::Embedding { epoch, train, validation, .. } => {
                    if let Some(map) = map.as_mut() {
                        map.write_snapshot(&strategy.to_string(), epoch, &train, validation.as_ref())?;
                    }
                }
                _ => {}
            }
        }
        if let Some(base) = &args.export {
            let dir = export_dir(base, strategy, strategies.len() > 1);
            export(&run, &dir)?;
            if !args.json {
                eprintln!("[{strategy}] exported to {}", dir.display());
            }
        }
    }
    if let (Some(recorder), Some(path)) = (&recorder, &args.record) {
        recorder.write(path)?;
        if !args.json {
            eprintln!("record written to {}", path.display());
        }
    }
    if !args.json {
        print_table(&summaries);
    }
    Ok(())
}
