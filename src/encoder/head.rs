//! The top of the model: the pooler (an activation of a dense layer on the [CLS] row: BERT's
//! pooler, DistilBERT's pre_classifier, RoBERTa's classifier.dense), the classifier with its
//! dropout, and the mean cross-entropy loss with its gradient.
use super::linear::{apply, LinearValues};
use crate::architecture::PoolerActivation;
use super::step::StepOutput;
use super::structure::{classifier_mask, DropoutSource};
use crate::params::{GradSlot, Linear};
use crate::Result;

/// The pooler: activation(dense([CLS])) (batch × hidden) from the [CLS] rows (batch × hidden).
pub(super) fn pool(pooler: &LinearValues<'_>, cls: &[f32], batch: usize, activation: PoolerActivation) -> Vec<f32> {
    let mut pooled = pooler.forward(cls, batch);
    match activation {
        PoolerActivation::Tanh => pooled.iter_mut().for_each(|v| *v = v.tanh()),
        PoolerActivation::Relu => pooled.iter_mut().for_each(|v| *v = v.max(0.0)),
    }
    pooled
}

/// The gradient before the pooler's activation from the gradient after it, from the
/// activation's output: tanh' = 1 − tanh², relu' = 1 where the output is positive, else 0.
pub(super) fn pool_activation_backward(dpooled: &mut [f32], pooled: &[f32], activation: PoolerActivation) {
    match activation {
        PoolerActivation::Tanh => dpooled.iter_mut().zip(pooled).for_each(|(d, p)| *d *= 1.0 - p * p),
        PoolerActivation::Relu => dpooled.iter_mut().zip(pooled).for_each(|(d, p)| if *p <= 0.0 { *d = 0.0 }),
    }
}

/// Logits (rows × labels) of pooled vectors (rows × hidden) through a classifier head.
pub fn head_logits(head: &Linear, pooled: &[f32], hidden: usize) -> Result<Vec<Vec<f32>>> {
    let head = LinearValues::of(head)?;
    let rows = pooled.len() / hidden;
    let logits = head.forward(pooled, rows);
    Ok(logits.chunks(head.outputs()).map(<[f32]>::to_vec).collect())
}

/// Mean cross-entropy of logits (rows × classes) against labels, and its gradient.
fn cross_entropy(logits: &[f32], classes: usize, labels: &[usize]) -> (f64, Vec<f32>) {
    let n = labels.len() as f64;
    let mut grad = vec![0f32; logits.len()];
    let mut loss = 0f64;
    for ((row, g), &label) in logits.chunks(classes).zip(grad.chunks_mut(classes)).zip(labels) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let exps: Vec<f64> = row.iter().map(|v| (*v as f64 - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        loss += sum.ln() + max - row[label] as f64;
        for (c, (gc, e)) in g.iter_mut().zip(&exps).enumerate() {
            *gc = ((e / sum - if c == label { 1.0 } else { 0.0 }) / n) as f32;
        }
    }
    (loss / n, grad)
}

/// The classifier head of a training step: logits of `pooled` (rows × hidden) after classifier
/// dropout, the loss, and — when `check` accepts the loss — its gradients (into the head's
/// slots) and d pooled.
pub(super) fn head_step(head: &Linear, grads: &Linear<Option<GradSlot>>, pooled: &[f32], labels: &[usize], dropout: &mut Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<(StepOutput, Vec<f32>)> {
    let values = LinearValues::of(head)?;
    let rows = labels.len();
    let mut dropped = pooled.to_vec();
    let drop = classifier_mask(dropout, dropped.len());
    apply(&mut dropped, &drop);
    let classes = values.outputs();
    let logits = values.forward(&dropped, rows);
    let (loss, dlogits) = cross_entropy(&logits, classes, labels);
    check(loss)?;
    let mut dpooled = values.backward(grads, &dropped, &dlogits, rows, true).expect("dx was asked for");
    apply(&mut dpooled, &drop);
    let logits = logits.chunks(classes).map(<[f32]>::to_vec).collect();
    Ok((StepOutput { loss, logits, word_rows: None, forward_ms: 0.0 }, dpooled))
}

/// A training step of the classifier head alone, on pooled vectors computed before (the frozen
/// strategy's cache). The loss is checked by `check` before any gradient is written.
pub fn train_head(head: &Linear, grads: &Linear<Option<GradSlot>>, pooled: &[f32], labels: &[usize], dropout: Option<DropoutSource<'_>>, check: impl Fn(f64) -> Result<()>) -> Result<StepOutput> {
    Ok(head_step(head, grads, pooled, labels, &mut { dropout }, check)?.0)
}
