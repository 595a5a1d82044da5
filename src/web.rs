//! The wasm-bindgen shell the web worker (`www/worker.js`) drives. Thin by design: it turns
//! JS values into core types and back, and every core error into a `JsError` carrying the
//! core's message. No model math and no I/O here (the worker fetches, caches and posts).
//!
//! JS API (all names snake_case, as wasm-bindgen exports them):
//! - `parse_data(train_text, val_text?, val_fraction?, seed)` → `{ ok, labels, train_count,
//!   val_count, class_counts, diagnostics: [{ field: "train" | "validation", line, message }] }`
//!   (`class_counts[i]` = training examples of `labels[i]`, after any split; `line` is 1-based,
//!   0 = the input as a whole). Parsing and splitting are the core's `prepare_data`.
//! - `option_spec()` → `FieldSpec[]` (`{ name, kind: "whole" | "number" | "choice" | "flag" |
//!   "list", min, min_exclusive, max, max_exclusive, values, optional, step, default,
//!   default_text, message }`, src/options.rs): every training option's default, limits and
//!   message; the page's form reads its defaults, limits and messages from it.
//! - `validate_options(json)` → null, or the message naming the first bad or unknown field of
//!   `TrainOptions` given as JSON text (LoRA's options included).
//! - `record_head(producer, created, model_name, info, train_text, val_text?, val_fraction?,
//!   options, strategies)` → the results record's head (src/record.rs `RecordHead`: format,
//!   version, created, producer, model {name, info}, data {train_size, val_size, labels,
//!   class_counts, validation}, options (every `TrainOptions` field), strategies); the page's
//!   Export results adds `events`.
//! - `check_record(json)` → null, or why the record's head cannot be read (a misspelled field,
//!   options outside their spec, another format or version).
//! - `plan_train(config, tokenizer, strategies, train_text, val_text?, val_fraction?, options,
//!   loaded)` → `RunPlan[]` (`{ strategy, total_steps, trainable_parameters, work_total,
//!   work_per_step, peak_bytes, retained_bytes }`), or an error when config.json is not a
//!   trainable BERT or the Train cannot fit the tab's memory — before the weights download.
//! - `allocated_bytes()` → live heap bytes.
//! - `device_spec()` → the "Device" choice's contract (src/device.rs: `{ name, values, labels,
//!   default, message }`); `gpu_unavailable_message(reason)`, `strategy_on_cpu_message(strategy,
//!   reason)`, `calibration_verdict(cpu_rate, gpu_rate, what)` → `{ device: "gpu" | "cpu",
//!   message }`: the sentences that explain the device a run uses.
//! - `request_gpu(largest_tensor_bytes)` → a Promise of a `WebGpu` (`.info()` → `{ name,
//!   backend, device_type, max_buffer_size, max_storage_binding }`), or rejected with why no GPU
//!   can be had (no WebGPU, no adapter, a refused limit). One per run: `WebRun.use_gpu` takes it.
//! - `fault_block()` → where the page reads a panic or a refused allocation of any thread of
//!   the instance (src/web/fault.rs); `fault_on_pool_for_tests(kind)`: a test's fault in the
//!   next training step.
//! - `initThreadPool(n)` (only in the threaded build, `--features threads`) → a Promise; starts
//!   rayon's pool on `n` Web Workers. Needs a cross-origin isolated page.
//! - `new WebProgress(plans)` (`RunPlan[]` of the Train), `.observe(events)` (core events, in
//!   order, and `unit` progress between them), `.estimate()` → `{ strategy, rate, run_ms, train_ms, fraction, queued }` or null:
//!   the time left (src/progress.rs, as the CLI's progress line).
//! - `new WebSession(config, tokenizer, model)` (three `Uint8Array`s), `.info()`,
//!   `.predict(texts)` → `Prediction[]` (only for a fine-tuned export, e.g. a saved model),
//!   `.largest_tensor_bytes()` (what `request_gpu` needs for this model),
//!   `.start_run(strategy, train_text, val_text?, val_fraction?, options)` → `WebRun` (refused
//!   when its estimated peak does not fit the 4 GiB heap beside what is loaded),
//!   `.export_recipe(strategy, train_text, val_text?, val_fraction?, options, hub_repo?,
//!   hub_revision?)` → `{ path: Uint8Array }`: the strategy's recipe as a PyTorch script folder
//!   (`crate::recipe`; `train.py`, `recipe.json`, `data/train.tsv`, …).
//! - `WebRun`: `.step()` → the core `Event` as a plain object; `.advance()` → one unit of work
//!   (at most about one layer of one batch): the core `Event` that ends a piece of work, or
//!   `{ type: "unit", strategy, step, units_done, units, fraction, work_done, elapsed_ms }` within
//!   one (src/events.rs `UnitProgress`; never part of a record); a GPU run's `advance` may give a
//!   `unit` without progress while a read-back is pending: the worker must yield to the event
//!   loop before the next call; `.stop()` → the `stopped`
//!   event (frees gradients and optimizer state; a step under way is dropped; CPU runs only),
//!   `.begin_stop()` then `.advance()` until the `stopped` event (any run: a GPU run's weights
//!   come back asynchronously), `.use_gpu(gpu)` (before the first advance; a `WebGpu`, used up),
//!   `.device()` → "cpu" or "gpu: <adapter> (<backend>)", `.destroy_gpu_for_tests()` (a real
//!   `device.destroy()`, for the fault tests), `.finished()`, `.strategy()`, `.total_steps()`,
//!   `.predict(texts)` → `Prediction[]`, `.export()` → `{ "config.json": Uint8Array,
//!   "tokenizer.json": …, "model.safetensors": … }` (a LoRA run's adapters merged in),
//!   `.export_adapter()` → a LoRA run's PEFT adapter `{ "adapter_config.json": …,
//!   "adapter_model.safetensors": … }`, or null.
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::config::BertConfig;
use crate::data::Dataset;
use crate::session::{self, DataField, FieldDiagnostic};
use crate::bench::StepBench;
use crate::recipe::{self, ModelSource, RecipeRun};
use crate::progress::{EventFields, TrainProgress};
use crate::record::{self, DataSummary, RecordHead, RecordModel, Validation};
use crate::train::Advance;
use crate::types::ModelInfo;
use crate::gpu::Gpu;
use crate::{alloc_stats, device, options, plan, prepare_data, PreparedData, Run, Session, Strategy, TrainOptions};

/// The threaded build only (`--features threads`, www/pkg-threads): JS
/// `await initThreadPool(n)` starts rayon's pool on `n` Web Workers sharing this module's memory.
/// Call it once, after `init()` and before any work; it needs a cross-origin isolated page
/// (COOP/COEP). `Event::Start.threads` then reports `n`.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

mod fault;

#[wasm_bindgen(start)]
pub fn start() {
    fault::install_panic_hook();
}

/// Panics on purpose, which traps the WebAssembly instance (`RuntimeError: unreachable`), so
/// the end-to-end tests can drive the worker's real crash path. Harmless in production: only
/// a test sends the worker the message that calls it.
#[wasm_bindgen]
pub fn crash_for_tests() {
    panic!("crash_for_tests: a deliberate panic requested by a test");
}

/// Plain JS objects (not `Map`s) and `null` for `None`, so the page can read fields directly.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    let serializer = serde_wasm_bindgen::Serializer::new()
        .serialize_maps_as_objects(true)
        .serialize_missing_as_null(true);
    value
        .serialize(&serializer)
        .map_err(|e| JsError::new(&format!("internal: cannot convert to JS: {e}")))
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

#[derive(Serialize)]
struct ParseReport {
    ok: bool,
    labels: Vec<String>,
    train_count: usize,
    val_count: usize,
    class_counts: Vec<usize>,
    diagnostics: Vec<FieldDiagnostic>,
}

fn diagnostics_message(diagnostics: &[FieldDiagnostic]) -> String {
    let lines: Vec<String> = diagnostics
        .iter()
        .map(|d| {
            let field = match d.field {
                DataField::Train => "training data",
                DataField::Validation => "validation data",
            };
            match d.line {
                0 => format!("{field}: {}", d.message),
                line => format!("{field}, line {line}: {}", d.message),
            }
        })
        .collect();
    format!("data: {}", lines.join("\n"))
}

/// Check the data as the user types: every problem with its text box and line.
#[wasm_bindgen]
pub fn parse_data(
    train_text: &str,
    val_text: Option<String>,
    val_fraction: Option<f64>,
    seed: u64,
) -> Result<JsValue, JsError> {
    let report = match prepare_data(train_text, val_text.as_deref(), val_fraction, seed) {
        Ok(prepared) => {
            let (train, val) = (prepared.train, prepared.validation);
            ParseReport {
                ok: true,
                class_counts: train.class_counts(),
                train_count: train.len(),
                val_count: val.as_ref().map_or(0, Dataset::len),
                labels: train.labels,
                diagnostics: Vec::new(),
            }
        }
        Err(diagnostics) => ParseReport {
            ok: false,
            labels: Vec::new(),
            train_count: 0,
            val_count: 0,
            class_counts: Vec::new(),
            diagnostics,
        },
    };
    to_js(&report)
}

/// Every training option's spec (`FieldSpec[]`): defaults, limits, allowed values, messages.
#[wasm_bindgen]
pub fn option_spec() -> Result<JsValue, JsError> {
    to_js(&options::spec())
}

/// `TrainOptions` as JSON text: null when valid, else the message naming the first bad field
/// (an unknown or misspelled one included).
#[wasm_bindgen]
pub fn validate_options(json: &str) -> Option<String> {
    TrainOptions::from_json(json).and_then(|o| o.lora.validate()).err().map(|e| e.to_string())
}

/// The "Device" choice's values, labels, default and message (src/device.rs).
#[wasm_bindgen]
pub fn device_spec() -> Result<JsValue, JsError> {
    to_js(&device::spec())
}

/// What the page says (once) when no GPU can be had: `reason` is `request_gpu`'s error.
#[wasm_bindgen]
pub fn gpu_unavailable_message(reason: &str) -> String {
    device::gpu_unavailable(reason)
}

/// What the page says when `strategy` cannot run on the GPU (`use_gpu`'s error).
#[wasm_bindgen]
pub fn strategy_on_cpu_message(strategy: &str, reason: &str) -> String {
    device::strategy_on_cpu(strategy, reason)
}

/// Auto's choice from the calibration's speeds on both (`{ device, message }`).
#[wasm_bindgen]
pub fn calibration_verdict(cpu_rate: f64, gpu_rate: f64, what: &str) -> Result<JsValue, JsError> {
    to_js(&device::verdict(cpu_rate, gpu_rate, what))
}

/// A GPU device for one run (`WebRun.use_gpu` takes it).
#[wasm_bindgen]
pub struct WebGpu {
    inner: Option<Gpu>,
}

impl WebGpu {
    /// The device, for the one run (or benchmark) that uses it up.
    fn take(&mut self) -> Result<Gpu, JsError> {
        self.inner.take().ok_or_else(|| JsError::new("internal: this GPU device is already used by a run"))
    }
}

/// A GPU error as the page shows it (without the error kind's "gpu: " prefix).
fn gpu_error(e: crate::Error) -> JsError {
    JsError::new(e.to_string().trim_start_matches("gpu: "))
}

#[wasm_bindgen]
impl WebGpu {
    /// The adapter (`GpuInfo`), or null once a run has taken the device.
    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.as_ref().map(|g| &g.info))
    }
}

/// The default adapter's device with buffers for tensors of `largest_tensor_bytes` (a
/// Promise); rejected with the reason when WebGPU, an adapter or the limits are missing.
#[wasm_bindgen]
pub async fn request_gpu(largest_tensor_bytes: f64) -> Result<WebGpu, JsError> {
    let gpu = Gpu::request(largest_tensor_bytes.max(0.0) as u64).await.map_err(gpu_error)?;
    Ok(WebGpu { inner: Some(gpu) })
}

/// The results record's head of a Train (`RecordHead` as a plain object): the data summary
/// from the same parse as the Train's, the options with every default filled in. `info`: the
/// loaded model's `ModelInfo`, or null.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub fn record_head(
    producer: &str,
    created: &str,
    model_name: &str,
    info: JsValue,
    train_text: &str,
    val_text: Option<String>,
    val_fraction: Option<f64>,
    options: JsValue,
    strategies: Vec<String>,
) -> Result<JsValue, JsError> {
    let strategies = parse_strategies(&strategies)?;
    let info: Option<ModelInfo> = serde_wasm_bindgen::from_value(info).map_err(|e| JsError::new(&format!("info: {e}")))?;
    let validation = Validation::of(val_text.is_some(), val_fraction.is_some());
    let (options, data) = train_inputs(train_text, val_text.as_deref(), val_fraction, options)?;
    let model = RecordModel { name: model_name.into(), info };
    let data = DataSummary::of(&data.train, data.validation.as_ref(), validation);
    to_js(&RecordHead::new(producer, created, model, data, &options, &strategies))
}

/// Whether a results record's head reads back (src/record.rs): null, or the reason.
#[wasm_bindgen]
pub fn check_record(json: &str) -> Option<String> {
    record::read_record_head(json).err().map(|e| e.to_string().trim_start_matches("options: ").to_string())
}

/// A Train's time left (the core's [`TrainProgress`]): the worker feeds it the events it posts.
#[wasm_bindgen]
pub struct WebProgress {
    inner: TrainProgress,
}

#[derive(serde::Deserialize)]
struct PlannedRun {
    strategy: String,
    work_total: f64,
}

#[wasm_bindgen]
impl WebProgress {
    /// `plans`: the Train's `RunPlan[]` (from `plan_train`), in run order.
    #[wasm_bindgen(constructor)]
    pub fn new(plans: JsValue) -> Result<WebProgress, JsError> {
        let plans: Vec<PlannedRun> = serde_wasm_bindgen::from_value(plans).map_err(|e| JsError::new(&format!("plans: {e}")))?;
        Ok(WebProgress { inner: TrainProgress::new(plans.into_iter().map(|p| (p.strategy, p.work_total)).collect()) })
    }

    /// Follow core events (an array of them, in order).
    pub fn observe(&mut self, events: JsValue) -> Result<(), JsError> {
        let events: Vec<EventFields> = serde_wasm_bindgen::from_value(events).map_err(|e| JsError::new(&format!("events: {e}")))?;
        for event in &events {
            self.inner.observe(event);
        }
        Ok(())
    }

    /// The estimate for the running strategy, or null between runs.
    pub fn estimate(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.estimate())
    }
}

/// A loaded pre-trained model (the Hugging Face trio), from which runs start.
#[wasm_bindgen]
pub struct WebSession {
    inner: Session,
}

/// The most heap runs may take: wasm32's 4 GiB address space, less a margin for the
/// allocator's fragmentation and the buffers JS hands in and out (model bytes, exports).
const HEAP_LIMIT: u64 = (4 << 30) - (384 << 20);

/// `TrainOptions` from a JS object, through its JSON text so that the core's reader names a
/// bad or unknown field ([`TrainOptions::from_json`]).
fn parse_options(options: JsValue) -> Result<TrainOptions, JsError> {
    if options.is_undefined() || options.is_null() {
        return Ok(TrainOptions::default());
    }
    let json = js_sys::JSON::stringify(&options).map_err(|_| JsError::new("options: not a plain object"))?;
    TrainOptions::from_json(&String::from(json)).map_err(js_err)
}

/// A Train's options and data as the worker sends them (the arguments `plan_train`,
/// `start_run` and `export_recipe` share), checked by the core.
fn train_inputs(train_text: &str, val_text: Option<&str>, val_fraction: Option<f64>, options: JsValue) -> Result<(TrainOptions, PreparedData), JsError> {
    let options = parse_options(options)?;
    let data = prepare_data(train_text, val_text, val_fraction, options.seed).map_err(|d| JsError::new(&diagnostics_message(&d)))?;
    Ok((options, data))
}

fn parse_strategies(strategies: &[String]) -> Result<Vec<Strategy>, JsError> {
    strategies.iter().map(|s| s.parse::<Strategy>().map_err(js_err)).collect()
}

/// Plan a Train before the weights are downloaded (fail fast): checks config.json (a BERT
/// webtune can train), tokenizes the data, estimates each strategy's steps, compute and peak
/// memory, and refuses the Train when the model cannot be loaded or the runs cannot fit beside
/// it in this tab.
/// `loaded`: whether this model is already in memory (its weights then count as in use).
/// Returns `RunPlan[]`.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub fn plan_train(
    config: &[u8],
    tokenizer: &[u8],
    strategies: Vec<String>,
    train_text: &str,
    val_text: Option<String>,
    val_fraction: Option<f64>,
    options: JsValue,
    loaded: bool,
) -> Result<JsValue, JsError> {
    let config = BertConfig::from_json(config).map_err(js_err)?;
    let strategies = parse_strategies(&strategies)?;
    let (options, data) = train_inputs(train_text, val_text.as_deref(), val_fraction, options)?;
    let plans = session::plan_train(&config, tokenizer, &strategies, &data.train, data.validation.as_ref(), &options).map_err(js_err)?;
    let in_use = alloc_stats::allocated_bytes() as u64;
    if !loaded {
        // The weights' file is not here yet: an f32 checkpoint's, the usual and the largest.
        plan::check_load_fits(&config, plan::model_bytes(&config), in_use, HEAP_LIMIT).map_err(js_err)?;
    }
    let weights = if loaded { 0 } else { plan::model_bytes(&config) };
    plan::check_train_fits(&plans, in_use + weights, HEAP_LIMIT).map_err(js_err)?;
    to_js(&plans)
}

/// Bytes the wasm heap holds now (live allocations, not the memory's high-water mark).
#[wasm_bindgen]
pub fn allocated_bytes() -> f64 {
    alloc_stats::allocated_bytes() as f64
}

#[wasm_bindgen]
impl WebSession {
    #[wasm_bindgen(constructor)]
    pub fn new(config: &[u8], tokenizer: &[u8], model: &[u8]) -> Result<WebSession, JsError> {
        let mut inner = Session::load(config, tokenizer, model).map_err(js_err)?;
        inner.set_memory_limit(Some(HEAP_LIMIT));
        Ok(WebSession { inner })
    }

    /// The bytes of this model's largest tensor (what `request_gpu` asks buffers for): the
    /// word embeddings, or a feed-forward or position table where one is larger.
    pub fn largest_tensor_bytes(&self) -> f64 {
        let c = &self.inner.pretrained().config;
        (c.vocab_size.max(c.intermediate_size).max(c.max_position_embeddings) * c.hidden_size * 4) as f64
    }

    /// `ModelInfo` as a plain object.
    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.info())
    }

    /// Class probabilities for each text (`Prediction[]`) from the checkpoint's own head: a
    /// model webtune exported (saved in the browser and loaded back after a reload). Refused
    /// with a reason for a pre-trained checkpoint without `classifier.*`.
    pub fn predict(&self, texts: Vec<String>) -> Result<JsValue, JsError> {
        to_js(&self.inner.predict(&texts).map_err(js_err)?)
    }

    /// Start a run. `strategy`: `"frozen"`, `"top:K"`, `"full"` or `"lora:R"`; `options`: `TrainOptions`
    /// fields in snake_case (missing ones take the notebook defaults), or `undefined`/`null`.
    pub fn start_run(
        &self,
        strategy: &str,
        train_text: &str,
        val_text: Option<String>,
        val_fraction: Option<f64>,
        options: JsValue,
    ) -> Result<WebRun, JsError> {
        let strategy: Strategy = strategy.parse().map_err(js_err)?;
        let (options, data) = train_inputs(train_text, val_text.as_deref(), val_fraction, options)?;
        let run = self
            .inner
            .start_run(strategy, &data.train, data.validation.as_ref(), &options)
            .map_err(js_err)?;
        Ok(WebRun { inner: run })
    }

    /// "Export recipe": the folder of [`crate::recipe::export`] for `strategy` on this Train's
    /// data and options (the arguments of `start_run`), as `{ relative path: Uint8Array }`.
    /// `hub_repo` and `hub_revision` name the hub model; absent for local files.
    #[allow(clippy::too_many_arguments)]
    pub fn export_recipe(
        &self,
        strategy: &str,
        train_text: &str,
        val_text: Option<String>,
        val_fraction: Option<f64>,
        options: JsValue,
        hub_repo: Option<String>,
        hub_revision: Option<String>,
    ) -> Result<js_sys::Object, JsError> {
        let strategy: Strategy = strategy.parse().map_err(js_err)?;
        let val_text = val_text.filter(|t| !t.trim().is_empty());
        let validation_kind = if val_text.is_some() { "separate" } else if val_fraction.is_some() { "split" } else { "none" };
        let (options, data) = train_inputs(train_text, val_text.as_deref(), val_fraction, options)?;
        let model = match hub_repo {
            Some(repo) => ModelSource::Hub { repo, revision: hub_revision.unwrap_or_else(|| "main".into()) },
            None => ModelSource::LocalFiles,
        };
        let run = RecipeRun { strategy, train: &data.train, validation: data.validation.as_ref(), validation_kind, options: &options, model, producer: "webtune page" };
        let files = js_sys::Object::new();
        for (path, bytes) in recipe::export(self.inner.pretrained(), &run).map_err(js_err)? {
            js_sys::Reflect::set(&files, &JsValue::from_str(&path), &js_sys::Uint8Array::from(&bytes[..]))
                .map_err(|_| JsError::new("internal: cannot build the recipe object"))?;
        }
        Ok(files)
    }
}

/// One training run, stepped by the worker.
#[wasm_bindgen]
pub struct WebRun {
    inner: Run,
}

#[wasm_bindgen]
impl WebRun {
    /// One bounded unit of work (start, a chunk of encoding or evaluation, an optimizer step,
    /// the epoch's or the final report) as its event; failures come back as
    /// `{ type: "error", message }`.
    pub fn step(&mut self) -> Result<JsValue, JsError> {
        to_js(&self.inner.step())
    }

    /// One unit of work (at most about one layer's work of one batch): the event that ends a
    /// piece of work (as `step` gives it), or `{ type: "unit", … }` while one is under way, so
    /// that the worker can honour Stop and show progress inside a long step.
    pub fn advance(&mut self) -> Result<JsValue, JsError> {
        match self.inner.advance() {
            Advance::Unit(unit) => to_js(&unit),
            Advance::Event(event) => to_js(&event),
        }
    }

    /// Stop early: frees the gradients and optimizer state, keeps the model for predict and
    /// export; returns the `stopped` event. A CPU run only (a GPU run's weights come back
    /// asynchronously: use `begin_stop`).
    pub fn stop(&mut self) -> Result<JsValue, JsError> {
        if self.inner.device() != "cpu" {
            return Err(JsError::new("internal: a GPU run stops with begin_stop() and advance()"));
        }
        to_js(&self.inner.stop())
    }

    /// Start stopping (the step under way is dropped): `advance()` then brings a GPU run's
    /// weights of the last finished step back and gives the `stopped` event.
    pub fn begin_stop(&mut self) {
        self.inner.begin_stop();
    }

    /// Train on `gpu` (before the first advance); the device is used up either way. Refused,
    /// the run staying on the CPU, for a strategy without GPU kernels or a failed upload.
    pub fn use_gpu(&mut self, gpu: &mut WebGpu) -> Result<(), JsError> {
        self.inner.use_gpu(gpu.take()?).map_err(gpu_error)
    }

    /// Where the encoder runs: "cpu" or "gpu: <adapter> (<backend>)".
    pub fn device(&self) -> String {
        self.inner.device()
    }

    /// Test only (the `--test-faults` end-to-end tests): destroy the run's GPU device for real,
    /// as a driver reset or the browser's device loss does.
    pub fn destroy_gpu_for_tests(&self) {
        self.inner.destroy_gpu_for_tests();
    }

    pub fn finished(&self) -> bool {
        self.inner.finished()
    }

    /// The canonical strategy name (`frozen`, `top:K`, `full`, `lora:R`).
    pub fn strategy(&self) -> String {
        self.inner.strategy().to_string()
    }

    pub fn total_steps(&self) -> usize {
        self.inner.total_steps()
    }

    /// Class probabilities for each text (`Prediction[]`).
    pub fn predict(&self, texts: Vec<String>) -> Result<JsValue, JsError> {
        to_js(&self.inner.predict(&texts).map_err(js_err)?)
    }

    /// The fine-tuned model as `{ file name: Uint8Array }` (config.json, tokenizer.json,
    /// model.safetensors — loadable by transformers' `from_pretrained`).
    pub fn export(&self) -> Result<js_sys::Object, JsError> {
        let exported = self.inner.export().map_err(js_err)?;
        let files = js_sys::Object::new();
        for (name, bytes) in exported.files() {
            js_sys::Reflect::set(
                &files,
                &JsValue::from_str(name),
                &js_sys::Uint8Array::from(bytes),
            )
            .map_err(|_| JsError::new("internal: cannot build the export object"))?;
        }
        Ok(files)
    }

    /// A LoRA run's PEFT adapter as `{ "adapter_config.json": Uint8Array,
    /// "adapter_model.safetensors": Uint8Array }` (loadable by `PeftModel.from_pretrained` on
    /// the base model); `null` for other strategies.
    pub fn export_adapter(&self) -> Result<JsValue, JsError> {
        let Some((config, weights)) = self.inner.export_adapter().map_err(js_err)? else { return Ok(JsValue::NULL) };
        let files = js_sys::Object::new();
        for (name, bytes) in [("adapter_config.json", config), ("adapter_model.safetensors", weights)] {
            js_sys::Reflect::set(&files, &JsValue::from_str(name), &js_sys::Uint8Array::from(&bytes[..]))
                .map_err(|_| JsError::new("internal: cannot build the adapter object"))?;
        }
        Ok(files.into())
    }
}

/// `webtune bench` in the browser: times training steps of synthetic batches (every batch
/// exactly `batch` × `seq_len` tokens, dropout on) through the same [`StepBench`] as the CLI,
/// one step per call, so the worker stays responsive and the medians split into forward,
/// backward and optimizer like the native figures (`bench/browser_steps.mjs`).
#[wasm_bindgen]
pub struct WebBench {
    inner: StepBench,
}

#[wasm_bindgen]
impl WebBench {
    #[wasm_bindgen(constructor)]
    pub fn new(session: &WebSession, strategy: &str, seq_len: usize, batch: usize, rounds: usize) -> Result<WebBench, JsError> {
        let strategy: Strategy = strategy.parse().map_err(js_err)?;
        let inner = StepBench::start(session.inner.pretrained(), strategy, seq_len, batch, rounds).map_err(js_err)?;
        Ok(WebBench { inner })
    }

    /// Run the next warm-up or timed step; false once all are done. The CPU only: a GPU
    /// benchmark steps with `advance`.
    pub fn next_step(&mut self) -> Result<bool, JsError> {
        if self.inner.device() != "cpu" {
            return Err(JsError::new("internal: a GPU benchmark steps with advance(), yielding between calls"));
        }
        self.inner.next_step().map_err(js_err)
    }

    /// Time the steps on `gpu` (from `request_gpu`, used up) instead of the CPU.
    pub fn use_gpu(&mut self, gpu: &mut WebGpu) -> Result<(), JsError> {
        self.inner.use_gpu(gpu.take()?).map_err(gpu_error)
    }

    /// One unit of work (a GPU benchmark: yield to the event loop between calls so that the
    /// device's read-backs resolve); false once every step is done. A step's time runs from
    /// the previous call's return, the waits between calls included.
    pub fn advance(&mut self) -> Result<bool, JsError> {
        self.inner.advance().map_err(js_err)
    }

    /// The encoder's forward products for `rows` tokens on this worker's pool (`GemmTiming[]`,
    /// as `webtune bench --gemm`).
    pub fn gemm(session: &WebSession, rows: usize, rounds: usize) -> Result<JsValue, JsError> {
        to_js(&crate::bench::gemm_timings(&session.inner.pretrained().config, rows, rounds))
    }

    /// The medians so far (`StepTimings`, the JSON of `webtune bench`).
    pub fn timings(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.timings())
    }
}
