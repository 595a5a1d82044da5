//! The training options' contract, in one place: what a run trains ([`Strategy`]), how
//! ([`TrainOptions`], [`LoraOptions`]), where ([`Device`]), and the [`spec`] of every option — its default, its
//! limits or allowed values and the sentence shown for a bad value. The core validates with
//! the spec ([`TrainOptions::validate`], [`LoraOptions::validate`], [`total_steps`]); the CLI
//! takes its defaults from [`TrainOptions::default`]; the page reads the spec from the wasm
//! module (`option_spec()`) to fill its form's defaults, limits and messages.
//!
//! Options that arrive as JSON (the page's worker messages, results records) refuse unknown or
//! misspelled fields by name (`deny_unknown_fields`).
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Which parameters train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Encoder and pooler frozen: only the classifier head trains (transfer learning).
    Frozen,
    /// The top K encoder layers + pooler + classifier train.
    Top(usize),
    /// Every weight trains.
    Full,
    /// Low-rank adapters of rank R on the projections `TrainOptions::lora` names; the
    /// pre-trained weights stay frozen (and shared), the pooler and classifier train fully.
    Lora(usize),
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Frozen => write!(f, "frozen"),
            Strategy::Top(k) => write!(f, "top:{k}"),
            Strategy::Full => write!(f, "full"),
            Strategy::Lora(r) => write!(f, "lora:{r}"),
        }
    }
}

impl FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        match s {
            "frozen" => return Ok(Strategy::Frozen),
            "full" => return Ok(Strategy::Full),
            _ => {}
        }
        let whole = |text: &str, field: &str| -> Result<usize> {
            let spec = field_spec(field);
            match text.trim().parse::<u64>() {
                Ok(v) if spec.check(&Value::from(v)) => Ok(v as usize),
                _ => Err(Error::Options(format!("strategy '{s}': {}", spec.message))),
            }
        };
        if let Some(k) = s.strip_prefix("top:") {
            return whole(k, "top_k").map(Strategy::Top);
        }
        if let Some(r) = s.strip_prefix("lora:") {
            return whole(r, "lora_rank").map(Strategy::Lora);
        }
        Err(Error::Options(format!("unknown strategy '{s}': use frozen, full, top:K (e.g. top:2) or lora:R (e.g. lora:8)")))
    }
}

/// Where a run's encoder runs (the CLI's `--device`, the page's Device control). The shells
/// ask for the adapter (asynchronously on the web) and say once which device and why: `Auto`
/// takes a hardware GPU when there is one and the strategy has GPU kernels, else the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    #[default]
    Auto,
    Gpu,
    Cpu,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Auto => "auto",
            Device::Gpu => "gpu",
            Device::Cpu => "cpu",
        })
    }
}

impl FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "auto" => Ok(Device::Auto),
            "gpu" => Ok(Device::Gpu),
            "cpu" => Ok(Device::Cpu),
            other => Err(Error::Options(format!("device '{other}': {}", field_spec("device").message))),
        }
    }
}

/// Learning-rate schedule over the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The notebook's: the same learning rate for every step.
    #[default]
    Constant,
    /// transformers' `get_linear_schedule_with_warmup`: linear warm-up from 0 over
    /// ceil(`warmup_ratio` × steps), then linear decay to zero.
    Linear,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Schedule::Constant => "constant",
            Schedule::Linear => "linear",
        })
    }
}

impl FromStr for Schedule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "constant" => Ok(Schedule::Constant),
            "linear" => Ok(Schedule::Linear),
            other => Err(Error::Options(format!("schedule '{other}': {}", field_spec("schedule").message))),
        }
    }
}

/// Hyper-parameters of a run. Defaults are the notebook's (Adam lr 2e-5, batch 2, 4 epochs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f64,
    /// Learning rate of the classifier head (and pooler); `None` = `learning_rate`.
    pub head_learning_rate: Option<f64>,
    pub batch_size: usize,
    pub max_len: usize,
    /// Pad every batch to `max_len` (as the notebook does) instead of to its longest sentence.
    pub pad_to_max_len: bool,
    pub seed: u64,
    /// AdamW decoupled weight decay; 0 = torch's plain Adam.
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub warmup_ratio: f64,
    /// Clip the global gradient L2 norm to this value.
    pub max_grad_norm: Option<f64>,
    /// Measure each epoch's training accuracy on a fixed stratified sample of at most this many
    /// training sentences (0 = all of them). Validation data is always evaluated whole.
    pub train_eval_sample: usize,
    /// The adapters of `lora:R` runs.
    pub lora: LoraOptions,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 4,
            learning_rate: 2e-5,
            head_learning_rate: None,
            batch_size: 2,
            max_len: 128,
            pad_to_max_len: false,
            seed: 0,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            warmup_ratio: 0.0,
            max_grad_norm: None,
            train_eval_sample: 1000,
            lora: LoraOptions::default(),
        }
    }
}

/// A projection of an encoder layer that LoRA can adapt, named as PEFT's `target_modules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    Query,
    Key,
    Value,
    /// `attention.output.dense`
    AttentionOutput,
    /// `intermediate.dense`
    Intermediate,
    /// `output.dense`
    Output,
}

impl Projection {
    pub const ALL: [Projection; 6] = [Projection::Query, Projection::Key, Projection::Value, Projection::AttentionOutput, Projection::Intermediate, Projection::Output];

    /// The module's path inside `encoder.layer.N`, as transformers names it.
    pub fn module_path(self) -> &'static str {
        match self {
            Projection::Query => "attention.self.query",
            Projection::Key => "attention.self.key",
            Projection::Value => "attention.self.value",
            Projection::AttentionOutput => "attention.output.dense",
            Projection::Intermediate => "intermediate.dense",
            Projection::Output => "output.dense",
        }
    }

    /// The name the options and the CLI use.
    pub fn option_name(self) -> &'static str {
        match self {
            Projection::Query => "query",
            Projection::Key => "key",
            Projection::Value => "value",
            Projection::AttentionOutput => "attention_output",
            Projection::Intermediate => "intermediate",
            Projection::Output => "output",
        }
    }
}

impl fmt::Display for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.option_name())
    }
}

impl FromStr for Projection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Projection::ALL.into_iter().find(|p| p.option_name() == s.trim()).ok_or_else(|| {
            Error::Options(format!("unknown LoRA target '{}': use query, key, value, attention_output, intermediate or output", s.trim()))
        })
    }
}

/// LoRA's options, with PEFT `LoraConfig`'s defaults (alpha 8, dropout 0, query and value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraOptions {
    /// The update is scaled by alpha / rank.
    pub alpha: f64,
    /// Dropout on each adapter's input.
    pub dropout: f64,
    /// The projections of every layer that get an adapter.
    pub targets: Vec<Projection>,
    /// Learning rate of the adapters (and, unless `head_learning_rate` is set, of the pooler and
    /// classifier) in a LoRA run: adapters start at zero and need a larger step than full
    /// fine-tuning's 2e-5.
    pub learning_rate: f64,
}

impl Default for LoraOptions {
    fn default() -> Self {
        LoraOptions { alpha: 8.0, dropout: 0.0, targets: vec![Projection::Query, Projection::Value], learning_rate: 5e-4 }
    }
}

impl LoraOptions {
    /// Every `lora.*` option against the [`spec`]: the first bad one, named, with its message.
    pub fn validate(&self) -> Result<()> {
        let value = serde_json::to_value(self).map_err(|e| Error::Options(format!("internal: {e}")))?;
        check_group(&value, "lora.")
    }

    /// Whether `projection` gets an adapter.
    pub fn adapts(&self, projection: Projection) -> bool {
        self.targets.contains(&projection)
    }
}

impl TrainOptions {
    /// Every option except `lora.*` (checked only for LoRA runs: [`LoraOptions::validate`])
    /// against the [`spec`]: the first bad one, named, with its message. Limits that depend on
    /// the model (a max length beyond its positions, top:K beyond its layers) are the run's.
    pub fn validate(&self) -> Result<()> {
        let value = serde_json::to_value(self).map_err(|e| Error::Options(format!("internal: {e}")))?;
        check_group(&value, "")
    }

    /// Parse options from JSON (a worker message, a record's `options`): missing fields take
    /// the defaults, an unknown or misspelled field is refused by name; then [`Self::validate`].
    /// Each field given is checked against its spec first, so a value of the wrong type (null,
    /// text) is refused by name with its message too; `lora.*`, when given, is checked as well.
    pub fn from_json(json: &str) -> Result<TrainOptions> {
        let value: Value = serde_json::from_str(json).map_err(|e| Error::Options(format!("not JSON: {e}")))?;
        for field in spec() {
            if let Some(given) = lookup(&value, field.name) {
                field.refuse_unless_valid(given)?;
            }
        }
        let options: TrainOptions = serde_json::from_value(value).map_err(|e| Error::Options(e.to_string()))?;
        options.validate()?;
        Ok(options)
    }
}

/// Upper bounds: no option may ask for more than a browser tab (or a CLI run) can do, and a
/// Train's step count must fit wasm32's 32-bit `usize`.
pub const MAX_EPOCHS: u64 = 1000;
pub const MAX_BATCH_SIZE: u64 = 4096;
pub const MAX_LEN: u64 = 8192;
/// The largest seed a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SEED: u64 = (1 << 53) - 1;
pub const MAX_TRAIN_EVAL_SAMPLE: u64 = 10_000_000;
pub const MAX_LEARNING_RATE: f64 = 1.0;
pub const MAX_TOP_K: u64 = 1000;
pub const MAX_LORA_RANK: u64 = 4096;
pub const MAX_LORA_ALPHA: f64 = 4096.0;
pub const MAX_GRAD_NORM: f64 = 1e6;
/// The most optimizer steps one run may take (u32::MAX: a step count wasm32 can hold).
pub const MAX_TOTAL_STEPS: u64 = u32::MAX as u64;

/// What kind of value an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A whole number from `min` to `max`.
    Whole,
    /// A finite number between `min` and `max` (each bound inclusive unless `*_exclusive`).
    Number,
    /// One of `values`.
    Choice,
    /// true or false.
    Flag,
    /// A non-empty list of distinct `values`.
    List,
}

/// One option: its JSON path (`lora.alpha`; `top_k` and `lora_rank` are the K and R of the
/// `top:K` and `lora:R` strategies), its rule, its default and the sentence for a bad value.
#[derive(Debug, Clone, Serialize)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub min: Option<f64>,
    pub min_exclusive: bool,
    pub max: Option<f64>,
    pub max_exclusive: bool,
    /// The allowed values of a `choice` or a `list`.
    pub values: Vec<&'static str>,
    /// Whether null (not given) is allowed.
    pub optional: bool,
    /// A step for the page's number fields where 1 (whole) or any (number) does not fit.
    pub step: Option<f64>,
    /// The default, as JSON (null: not given).
    pub default: Value,
    /// The default as a person writes it ("2e-5", not "0.00002").
    pub default_text: String,
    /// What is wrong with a bad value and what to write instead: a sentence without the
    /// value itself (the core adds it), starting with the option's name as the page labels it.
    pub message: &'static str,
}

impl FieldSpec {
    /// An error naming the option, with its message and the value given, unless `value` obeys
    /// its rule.
    pub fn refuse_unless_valid(&self, value: &Value) -> Result<()> {
        if self.check(value) {
            return Ok(());
        }
        let got = if value.is_null() { "nothing".to_string() } else { value_text(value) };
        Err(Error::Options(format!("{}: {} (got {got})", self.name, self.message)))
    }

    /// Whether `value` obeys this option's rule.
    pub fn check(&self, value: &Value) -> bool {
        if value.is_null() {
            return self.optional;
        }
        let in_range = |v: f64| {
            let above = self.min.is_none_or(|m| if self.min_exclusive { v > m } else { v >= m });
            let below = self.max.is_none_or(|m| if self.max_exclusive { v < m } else { v <= m });
            v.is_finite() && above && below
        };
        match self.kind {
            Kind::Whole => value.as_u64().is_some_and(|v| in_range(v as f64)),
            Kind::Number => value.as_f64().is_some_and(in_range),
            Kind::Choice => value.as_str().is_some_and(|v| self.values.contains(&v)),
            Kind::Flag => value.is_boolean(),
            Kind::List => value.as_array().is_some_and(|items| {
                let names: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                !names.is_empty()
                    && names.len() == items.len()
                    && names.iter().all(|n| self.values.contains(n))
                    && names.iter().enumerate().all(|(i, n)| !names[..i].contains(n))
            }),
        }
    }
}

/// A number as a person writes it: small rates in exponent form ("2e-5", "5e-4").
pub fn number_text(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-2 { format!("{v:e}") } else { format!("{v}") }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Number(n) if n.is_f64() => number_text(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

struct Rule {
    kind: Kind,
    min: Option<(f64, bool)>,
    max: Option<(f64, bool)>,
    values: &'static [&'static str],
    optional: bool,
    step: Option<f64>,
}

const fn whole(min: u64, max: u64) -> Rule {
    Rule { kind: Kind::Whole, min: Some((min as f64, false)), max: Some((max as f64, false)), values: &[], optional: false, step: None }
}

/// A finite number in `min..=max`; `above`/`below`: the bound itself is excluded.
const fn number(min: f64, above: bool, max: f64, below: bool) -> Rule {
    Rule { kind: Kind::Number, min: Some((min, above)), max: Some((max, below)), values: &[], optional: false, step: None }
}

const fn optional(rule: Rule) -> Rule {
    Rule { optional: true, ..rule }
}

const fn stepped(rule: Rule, step: f64) -> Rule {
    Rule { step: Some(step), ..rule }
}

const PROJECTIONS: &[&str] = &["query", "key", "value", "attention_output", "intermediate", "output"];

/// The table: (name, rule, message). Defaults come from [`TrainOptions::default`] (and, for
/// `top_k` and `lora_rank`, the page's and the docs' usual choices).
fn table() -> Vec<(&'static str, Rule, &'static str)> {
    vec![
        ("epochs", whole(1, MAX_EPOCHS), "epochs must be a whole number ≥ 1 (at most 1000)"),
        ("learning_rate", number(0.0, true, MAX_LEARNING_RATE, false), "learning rate must be a number > 0 and at most 1 (e.g. 2e-5)"),
        ("head_learning_rate", optional(number(0.0, true, MAX_LEARNING_RATE, false)), "classifier head rate must be empty or a number > 0 and at most 1 (e.g. 1e-2)"),
        ("batch_size", whole(1, MAX_BATCH_SIZE), "batch size must be a whole number ≥ 1 (at most 4096)"),
        ("max_len", whole(2, MAX_LEN), "max length must be a whole number ≥ 2 (at most 8192, and within the model's limit)"),
        ("pad_to_max_len", Rule { kind: Kind::Flag, min: None, max: None, values: &[], optional: false, step: None }, "pad to max length must be true or false"),
        ("seed", whole(0, MAX_SEED), "seed must be a whole number ≥ 0 (at most 9007199254740991)"),
        ("weight_decay", number(0.0, false, 1.0, false), "weight decay must be a number from 0 to 1 (0 = plain Adam)"),
        ("schedule", Rule { kind: Kind::Choice, min: None, max: None, values: &["constant", "linear"], optional: false, step: None }, "schedule must be constant or linear"),
        ("warmup_ratio", number(0.0, false, 1.0, true), "warm-up ratio must be a number from 0 up to (not including) 1"),
        ("max_grad_norm", optional(number(0.0, true, MAX_GRAD_NORM, false)), "max gradient norm must be empty or a number > 0 (at most 1e6)"),
        ("train_eval_sample", whole(0, MAX_TRAIN_EVAL_SAMPLE), "training accuracy sample must be a whole number ≥ 0 (0 = all training sentences; at most 10000000)"),
        ("lora.alpha", number(0.0, true, MAX_LORA_ALPHA, false), "LoRA alpha must be a number > 0 (at most 4096; PEFT's default is 8)"),
        ("lora.dropout", stepped(number(0.0, false, 1.0, true), 0.05), "Adapter dropout must be a number from 0 up to (not including) 1, e.g. 0 or 0.1"),
        ("lora.targets", Rule { kind: Kind::List, min: None, max: None, values: PROJECTIONS, optional: false, step: None }, "Choose at least one projection for the LoRA adapters (e.g. query and value), each once"),
        ("lora.learning_rate", number(0.0, true, MAX_LEARNING_RATE, false), "LoRA learning rate must be a number > 0 and at most 1 (e.g. 5e-4)"),
        ("top_k", whole(1, MAX_TOP_K), "layers to train (K of top:K) must be a whole number ≥ 1 (at most 1000, and the model's layer count)"),
        ("lora_rank", whole(1, MAX_LORA_RANK), "LoRA rank (R of lora:R) must be a whole number ≥ 1 (at most 4096; e.g. 8)"),
        ("device", Rule { kind: Kind::Choice, min: None, max: None, values: &["auto", "gpu", "cpu"], optional: false, step: None }, "device must be auto (the GPU when there is one, else the CPU), gpu or cpu"),
    ]
}

/// The defaults of the two strategy parameters (the form's Layers to train and Rank).
const DEFAULT_TOP_K: u64 = 2;
const DEFAULT_LORA_RANK: u64 = 8;

/// The options of the spec that are not fields of [`TrainOptions`]: the two strategy
/// parameters and the [`Device`].
pub const NOT_TRAIN_OPTIONS: [&str; 3] = ["top_k", "lora_rank", "device"];

/// Every option's spec, in the order above.
pub fn spec() -> Vec<FieldSpec> {
    let defaults = serde_json::to_value(TrainOptions::default()).expect("options serialize");
    table()
        .into_iter()
        .map(|(name, rule, message)| {
            let default = match name {
                "top_k" => Value::from(DEFAULT_TOP_K),
                "lora_rank" => Value::from(DEFAULT_LORA_RANK),
                "device" => Value::from(Device::default().to_string()),
                _ => lookup(&defaults, name).cloned().expect("every option in the table has a default"),
            };
            FieldSpec {
                name,
                kind: rule.kind,
                min: rule.min.map(|(v, _)| v),
                min_exclusive: rule.min.is_some_and(|(_, x)| x),
                max: rule.max.map(|(v, _)| v),
                max_exclusive: rule.max.is_some_and(|(_, x)| x),
                values: rule.values.to_vec(),
                optional: rule.optional,
                step: rule.step,
                default_text: value_text(&default),
                default,
                message,
            }
        })
        .collect()
}

/// The spec of one option by name (a name from the table).
pub fn field_spec(name: &str) -> FieldSpec {
    spec().into_iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no option {name} in the spec"))
}

/// `a.b` in a JSON object.
fn lookup<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
    name.split('.').try_fold(value, |v, key| v.get(key))
}

/// Check the options under `prefix` ("" = the top level, not `lora.*`; "lora." = LoRA's) of
/// `value` (a `TrainOptions` or `LoraOptions` as JSON).
fn check_group(value: &Value, prefix: &str) -> Result<()> {
    for field in spec() {
        let in_group = if prefix.is_empty() { !field.name.contains('.') } else { field.name.starts_with(prefix) };
        if !in_group || NOT_TRAIN_OPTIONS.contains(&field.name) {
            continue;
        }
        field.refuse_unless_valid(lookup(value, field.name.strip_prefix(prefix).unwrap_or(field.name)).unwrap_or(&Value::Null))?;
    }
    Ok(())
}

/// A run's optimizer steps: ceil(`train_size` / batch size) × epochs, refused (with what to
/// change) when it exceeds [`MAX_TOTAL_STEPS`] — computed in u64 with checked arithmetic, so
/// wasm32's 32-bit `usize` never overflows.
pub fn total_steps(train_size: usize, options: &TrainOptions) -> Result<usize> {
    let per_epoch = (train_size as u64).div_ceil(options.batch_size.max(1) as u64);
    per_epoch
        .checked_mul(options.epochs as u64)
        .filter(|&steps| steps <= MAX_TOTAL_STEPS)
        .and_then(|steps| usize::try_from(steps).ok())
        .ok_or_else(|| {
            Error::Options(format!(
                "epochs: {} epochs of {per_epoch} steps each is more than {MAX_TOTAL_STEPS} steps in one run; use fewer epochs or a larger batch size",
                options.epochs
            ))
        })
}
