//! `webtune train --map FILE`: the embedding map's snapshots as CSV, one row per sentence per
//! snapshot (strategy, epoch, set, index, label, predicted, x, y), labels by name.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use webtune::events::MapPoints;

use crate::CliResult;

pub struct MapCsv {
    path: PathBuf,
    out: BufWriter<File>,
    labels: Vec<String>,
}

impl MapCsv {
    pub fn create(path: &Path) -> CliResult<MapCsv> {
        let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut map = MapCsv { path: path.to_path_buf(), out: BufWriter::new(file), labels: Vec::new() };
        map.line("strategy,epoch,set,index,label,predicted,x,y")?;
        Ok(map)
    }

    /// The class names labels are written with (the run's `start` event lists them).
    pub fn set_labels(&mut self, labels: &[String]) {
        self.labels = labels.to_vec();
    }

    fn line(&mut self, text: &str) -> CliResult {
        writeln!(self.out, "{text}").map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }

    fn label(&self, id: usize) -> String {
        let name = self.labels.get(id).cloned().unwrap_or_else(|| id.to_string());
        // RFC 4180: quote a field with a comma, quote or line break.
        if name.contains([',', '"', '\n', '\r']) { format!("\"{}\"", name.replace('"', "\"\"")) } else { name }
    }

    pub fn write_snapshot(&mut self, strategy: &str, epoch: usize, train: &MapPoints, validation: Option<&MapPoints>) -> CliResult {
        for (set, points) in [("train", Some(train)), ("validation", validation)] {
            let Some(p) = points else { continue };
            for k in 0..p.index.len() {
                let row = format!("{strategy},{epoch},{set},{},{},{},{},{}", p.index[k], self.label(p.label[k]), self.label(p.predicted[k]), p.x[k], p.y[k]);
                self.line(&row)?;
            }
        }
        self.out.flush().map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}
