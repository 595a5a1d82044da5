//! The embedding map's snapshots: which sentences are on it (fixed stratified samples), their
//! pooled vectors projected on the plane of the first evaluation's principal components,
//! class separation and the classifier's decision line.
use super::evaluation::{EvalItem, Evaluation};
use super::Run;
use crate::data::{self, Dataset};
use crate::events::{Event, MapPoints};
use crate::insight::{self, PrincipalPlane};
use crate::metrics;
use crate::Result;

/// At most this many training and this many validation sentences appear on the embedding map.
const MAP_SAMPLE: usize = 2000;

impl Run {
    /// The embedding map's snapshot of a finished evaluation; the first one fixes the plane.
    pub(super) fn snapshot(&mut self, evaluation: &Evaluation) -> Result<Event> {
        let is_val: Vec<bool> = self.map_items.iter().map(|&i| matches!(self.eval_items[i], EvalItem::Val(_))).collect();
        if self.projection.is_none() {
            let train_rows: Vec<Vec<f32>> = evaluation.pooled.iter().zip(&is_val).filter(|(_, v)| !**v).map(|(r, _)| r.clone()).collect();
            self.projection = Some(PrincipalPlane::principal_components(&train_rows));
        }
        let projection = self.projection.as_ref().expect("set above");
        let with_texts = self.epoch == 0;
        let mut sets = [MapPoints::default(), MapPoints::default()];
        let mut rows: [(Vec<Vec<f32>>, Vec<usize>); 2] = Default::default();
        for (k, &position) in self.map_items.iter().enumerate() {
            let item = self.eval_items[position];
            let (set, index) = match item {
                EvalItem::Train(i) => (0, i),
                EvalItem::Val(i) => (1, i),
            };
            let (x, y) = projection.project(&evaluation.pooled[k]);
            let points = &mut sets[set];
            points.index.push(index);
            points.label.push(self.eval_label(item));
            points.predicted.push(metrics::argmax(&evaluation.logits[position]));
            points.x.push(x);
            points.y.push(y);
            if with_texts {
                points.text.push(self.map_texts[k].clone());
            }
            rows[set].0.push(evaluation.pooled[k].clone());
            rows[set].1.push(self.eval_label(item));
        }
        let [train, validation] = sets;
        let [(train_rows, train_labels), (val_rows, val_labels)] = rows;
        let head = self.model.head.hf_weight()?.to_vec2::<f32>()?;
        let bias = self.model.head.bias.to_vec1::<f32>()?;
        Ok(Event::Embedding {
            strategy: self.name(),
            epoch: self.epoch,
            train,
            validation: self.val.is_some().then_some(validation),
            separation: insight::separation(&train_rows, &train_labels),
            val_separation: self.val.is_some().then(|| insight::separation(&val_rows, &val_labels)),
            decision_line: projection.decision_line(&head, &bias, &train_rows),
        })
    }
}

/// The sentences on the embedding map: fixed stratified samples of at most [`MAP_SAMPLE`] of
/// the evaluated training sentences and of the validation sentences. Returns their positions in
/// `eval_items` (ascending) and their texts.
pub(super) fn map_sample(eval_items: &[EvalItem], train: &Dataset, val: Option<&Dataset>, seed: u64) -> (Vec<usize>, Vec<String>) {
    let mut positions = Vec::new();
    for want_val in [false, true] {
        let (set, members): (Option<&Dataset>, Vec<(usize, usize)>) = (
            if want_val { val } else { Some(train) },
            eval_items.iter().enumerate().filter_map(|(p, item)| match (item, want_val) {
                (EvalItem::Train(i), false) | (EvalItem::Val(i), true) => Some((p, *i)),
                _ => None,
            }).collect(),
        );
        let Some(set) = set else { continue };
        let subset = Dataset { examples: members.iter().map(|&(_, i)| set.examples[i].clone()).collect(), labels: set.labels.clone() };
        positions.extend(data::stratified_sample(&subset, MAP_SAMPLE, seed).into_iter().map(|k| members[k].0));
    }
    let texts = positions
        .iter()
        .map(|&p| match eval_items[p] {
            EvalItem::Train(i) => train.examples[i].text.clone(),
            EvalItem::Val(i) => val.expect("validation items come with validation data").examples[i].text.clone(),
        })
        .collect();
    (positions, texts)
}
