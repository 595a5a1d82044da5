//! A Train's record (`train --record FILE`): the JSON document the page's "Export results"
//! saves and "Load results" reads — format `webtune-record` version 1, built by the core
//! (webtune::record: the head, and the events exactly as `--json` prints them). Here: the
//! clock, collecting the events, and the file.
use std::path::Path;

use webtune::record::{DataSummary, RecordHead, RecordModel, Validation};
use webtune::{ModelInfo, PreparedData, Strategy, TrainOptions};

/// Collects a Train's events; [`Recorder::write`] saves the whole record.
pub struct Recorder {
    head: RecordHead,
    events: Vec<String>,
}

impl Recorder {
    /// `model_name`: how the model was given (its folder).
    pub fn new(model_name: &str, info: &ModelInfo, data: &PreparedData, validation: Validation, options: &TrainOptions, strategies: &[Strategy]) -> Recorder {
        let model = RecordModel { name: model_name.into(), info: Some(info.clone()) };
        let data = DataSummary::of(&data.train, data.validation.as_ref(), validation);
        let producer = format!("webtune CLI {}", env!("CARGO_PKG_VERSION"));
        Recorder { head: RecordHead::new(&producer, &now_iso8601(), model, data, options, strategies), events: Vec::new() }
    }

    /// One event, as `webtune::record::event_json` wrote it.
    pub fn push(&mut self, event: String) {
        self.events.push(event);
    }

    /// Write the record (also after an error: the events so far, ending with the `error`).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, self.head.record_json(&self.events)).map_err(|e| format!("cannot write {}: {e}", path.display()))
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
