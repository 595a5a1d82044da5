//! The results record (format `webtune-record`, version 1; README "Results records",
//! www/record.schema.json): one Train as one JSON document — its head (what was trained, on
//! what, how: [`RecordHead`]) and every core event in order, exactly as `webtune train --json`
//! prints them. The core builds the head for both shells (the CLI's `train --record FILE`, the
//! page's Export results through wasm `record_head`) and reads it back
//! ([`read_record_head`]: unknown or misspelled fields are refused by name, the options are
//! checked against their spec). The shells supply the clock (`created`).
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::Dataset;
use crate::events::Event;
use crate::options::{Strategy, TrainOptions};
use crate::types::ModelInfo;
use crate::{Error, Result};

/// The format name and version every record carries.
pub const FORMAT: &str = "webtune-record";
pub const VERSION: u64 = 1;

/// How the Train was validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validation {
    /// Measured on the training data.
    None,
    /// A held-out fraction of the training data.
    Split,
    /// Its own validation data.
    Separate,
}

impl Validation {
    /// From what the Train was given: validation text, or a fraction to hold out.
    pub fn of(val_text: bool, val_fraction: bool) -> Validation {
        if val_text {
            Validation::Separate
        } else if val_fraction {
            Validation::Split
        } else {
            Validation::None
        }
    }
}

/// Where the pre-trained model came from, and what it is (null when it never loaded).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordModel {
    pub name: String,
    pub info: Option<ModelInfo>,
}

/// The data a Train saw, in summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSummary {
    pub train_size: usize,
    pub val_size: usize,
    pub labels: Vec<String>,
    /// Training examples per class, in label order.
    pub class_counts: Vec<usize>,
    pub validation: Validation,
}

impl DataSummary {
    pub fn of(train: &Dataset, val: Option<&Dataset>, validation: Validation) -> DataSummary {
        DataSummary {
            train_size: train.len(),
            val_size: val.map_or(0, Dataset::len),
            labels: train.labels.clone(),
            class_counts: train.class_counts(),
            validation,
        }
    }
}

/// Everything in a record but its events, in the order the fields are written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordHead {
    pub format: String,
    pub version: u64,
    /// ISO 8601 UTC time the Train started.
    pub created: String,
    /// What wrote it: "webtune page" or "webtune CLI <version>".
    pub producer: String,
    pub model: RecordModel,
    pub data: DataSummary,
    /// The options the Train ran with (every field: the defaults filled in).
    pub options: TrainOptions,
    pub strategies: Vec<String>,
}

impl RecordHead {
    pub fn new(producer: &str, created: &str, model: RecordModel, data: DataSummary, options: &TrainOptions, strategies: &[Strategy]) -> RecordHead {
        RecordHead {
            format: FORMAT.into(),
            version: VERSION,
            created: created.into(),
            producer: producer.into(),
            model,
            data,
            options: options.clone(),
            strategies: strategies.iter().map(Strategy::to_string).collect(),
        }
    }

    /// The whole record as JSON text: the head's fields, then `events`, each exactly as given
    /// (the text of [`event_json`]).
    pub fn record_json(&self, events: &[String]) -> String {
        let head = serde_json::to_string(self).expect("a record head serializes");
        let fields = head.strip_suffix('}').expect("a JSON object");
        format!("{fields},\"events\":[{}]}}\n", events.join(","))
    }
}

/// One event in the wire format: the line `--json` prints, the text a record stores.
pub fn event_json(event: &Event) -> String {
    serde_json::to_string(event).expect("events serialize")
}

/// Read a record's head back from its JSON text: its format and version, no unknown or
/// misspelled field (named in the message), options within their spec. The events are the
/// reader's to check (the page's JSON Schema).
pub fn read_record_head(json: &str) -> Result<RecordHead> {
    let mut value: Value = serde_json::from_str(json).map_err(|e| Error::Options(format!("record: not JSON ({e})")))?;
    let object = value.as_object_mut().ok_or_else(|| Error::Options("record: not a JSON object".into()))?;
    if object.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(Error::Options(format!("record: no \"format\": \"{FORMAT}\"")));
    }
    if object.get("version").and_then(Value::as_u64) != Some(VERSION) {
        return Err(Error::Options(format!("record: version {} (this reads version {VERSION})", object.get("version").unwrap_or(&Value::Null))));
    }
    object.remove("events");
    let head: RecordHead = serde_json::from_value(value).map_err(|e| Error::Options(format!("record: {e}")))?;
    head.options.validate().map_err(|e| Error::Options(format!("record: {}", e.to_string().trim_start_matches("options: "))))?;
    Ok(head)
}
