//! A run's record (`train --record FILE`): the JSON document the page's "Export results" saves
//! and "Load results" reads — format `webtune-record` version 1, documented in README
//! ("Results records") and www/record.schema.json. Its `events` are the core's events exactly
//! as `--json` prints them (one serialisation: [`event_json`]), with the options, the model and
//! a data summary around them.
use std::path::Path;

use serde_json::{json, Value};
use webtune::events::Event;
use webtune::{ModelInfo, PreparedData, TrainOptions};

/// The format name and version every record carries (www/js/record.js checks both).
pub const FORMAT: &str = "webtune-record";
pub const VERSION: u64 = 1;

/// One event in the wire format: `--json` prints this line, `--record` stores the same text.
pub fn event_json(event: &Event) -> String {
    serde_json::to_string(event).expect("events serialize")
}

/// Collects a Train's events; [`Recorder::write`] saves the whole record.
pub struct Recorder {
    head: Value,
    events: Vec<String>,
}

impl Recorder {
    /// `model_name`: how the model was given (its folder); `validation`: "none", "split" or "separate".
    pub fn new(model_name: &str, info: &ModelInfo, data: &PreparedData, validation: &str, options: &TrainOptions, strategies: &[String]) -> Recorder {
        let head = json!({
            "format": FORMAT,
            "version": VERSION,
            "created": now_iso8601(),
            "producer": format!("webtune CLI {}", env!("CARGO_PKG_VERSION")),
            "model": { "name": model_name, "info": info },
            "data": {
                "train_size": data.train.len(),
                "val_size": data.validation.as_ref().map_or(0, |v| v.len()),
                "labels": data.train.labels,
                "class_counts": data.train.class_counts(),
                "validation": validation,
            },
            "options": options,
            "strategies": strategies,
        });
        Recorder { head, events: Vec::new() }
    }

    pub fn push(&mut self, event: String) {
        self.events.push(event);
    }

    /// Write the record (also after an error: the events so far, ending with the `error`).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        // The head's fields, then the events exactly as `--json` prints them.
        let head = serde_json::to_string(&self.head).map_err(|e| format!("record: {e}"))?;
        let text = format!("{},\"events\":[{}]}}\n", head.strip_suffix('}').expect("a JSON object"), self.events.join(","));
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (as JS `toISOString()` without milliseconds).
fn now_iso8601() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
