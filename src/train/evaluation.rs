//! Evaluation of a run: the sentences it covers (a fixed training sample, then every
//! validation sentence), their eval-mode logits in chunks, and the loss, accuracy and
//! predictions of each set.
use super::{Advance, Run, RunState};
use crate::encoder;
use crate::events::{Event, Phase};
use crate::metrics;
use crate::types::Strategy;
use crate::Result;

/// One sentence an evaluation covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum EvalItem {
    Train(usize),
    Val(usize),
}

/// The outcome of one evaluation pass, in `eval_items` order.
#[derive(Default)]
pub(super) struct Evaluation {
    /// Eval-mode logits, one row per item.
    pub(super) logits: Vec<Vec<f32>>,
    /// Pooled vectors of the items on the embedding map, in `map_items` order.
    pub(super) pooled: Vec<Vec<f32>>,
}

impl Run {
    pub(super) fn eval_ids(&self, item: EvalItem) -> &[u32] {
        match item {
            EvalItem::Train(i) => &self.train.ids[i],
            EvalItem::Val(i) => &self.val.as_ref().expect("validation items exist only with validation data").ids[i],
        }
    }

    pub(super) fn eval_label(&self, item: EvalItem) -> usize {
        match item {
            EvalItem::Train(i) => self.train.labels[i],
            EvalItem::Val(i) => self.val.as_ref().expect("validation items exist only with validation data").labels[i],
        }
    }

    /// Cached pooled outputs of every eval item (rows × hidden), for a frozen run.
    fn cached_eval_pooled(&self) -> Vec<f32> {
        let n = self.train.ids.len();
        self.eval_items
            .iter()
            .flat_map(|item| match *item {
                EvalItem::Train(i) => self.cache[i].iter().copied(),
                EvalItem::Val(i) => self.cache[n + i].iter().copied(),
            })
            .collect()
    }

    /// The next unit of evaluating the next chunk; after the last chunk, the snapshot (and the
    /// epoch's events).
    pub(super) fn evaluate_chunk(&mut self, next: usize) -> Result<Advance> {
        // The epoch's weights come back from the GPU first (its insight views read them).
        if !self.sync_weights()? {
            return Ok(Advance::Unit(self.unit_progress()));
        }
        let total = self.eval_items.len();
        let (pooled, end, work) = if self.strategy == Strategy::Frozen {
            // Cached outputs: only the head runs, one product for the whole set.
            (self.cached_eval_pooled(), total, 0.0)
        } else {
            match self.chunk_unit(next, total, |run, i| run.eval_ids(run.eval_items[i]))? {
                Some(chunk) => chunk,
                None => return Ok(Advance::Unit(self.unit_progress())),
            }
        };
        let h = self.config.hidden_size;
        self.evaluation.logits.extend(encoder::head_logits(&self.model.head, &pooled, h)?);
        let on_map = self.map_items.partition_point(|&i| i < next)..self.map_items.partition_point(|&i| i < end);
        self.evaluation.pooled.extend(self.map_items[on_map].iter().map(|&i| pooled[(i - next) * h..(i - next + 1) * h].to_vec()));
        self.work_done += work;
        if end < total {
            self.state = RunState::Evaluating { next: end };
            return Ok(Advance::Event(Event::Progress { strategy: self.name(), phase: Phase::Evaluate, epoch: self.epoch, done: end, total, work_done: self.work_done, elapsed_ms: self.elapsed_ms() }));
        }
        if self.epoch == 0 {
            let evaluation = std::mem::take(&mut self.evaluation);
            self.state = RunState::Training;
            return self.snapshot(&evaluation).map(Advance::Event);
        }
        self.end_epoch().map(Advance::Event)
    }

    /// (loss, accuracy, predictions) of the items of one set in the finished evaluation.
    pub(super) fn set_metrics(&self, evaluation: &Evaluation, is_val: bool) -> Option<(f64, f64, Vec<usize>, Vec<usize>)> {
        let rows: Vec<(usize, &Vec<f32>)> = self
            .eval_items
            .iter()
            .zip(&evaluation.logits)
            .filter(|(item, _)| matches!(item, EvalItem::Val(_)) == is_val)
            .map(|(&item, logits)| (self.eval_label(item), logits))
            .collect();
        if rows.is_empty() {
            return None;
        }
        let truth: Vec<usize> = rows.iter().map(|(label, _)| *label).collect();
        let losses: f64 = rows.iter().map(|(label, logits)| metrics::cross_entropy(logits, *label)).sum();
        let predicted: Vec<usize> = rows.iter().map(|(_, logits)| metrics::argmax(logits)).collect();
        Some((losses / rows.len() as f64, metrics::accuracy(&truth, &predicted), truth, predicted))
    }
}
