//! Classification metrics: accuracy, per-class precision / recall / F1 and the confusion matrix.
use crate::events::ClassMetrics;

/// Index of the largest value (the first one on ties).
pub fn argmax<T: PartialOrd>(values: &[T]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, v)| if *v > values[best] { i } else { best })
}

/// Cross-entropy of one row of logits against its label, computed in f64.
pub fn cross_entropy(logits: &[f32], label: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let log_sum = logits.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
    log_sum - logits[label] as f64
}

/// Fraction of predictions equal to the truth (0 for no examples).
pub fn accuracy(truth: &[usize], predicted: &[usize]) -> f64 {
    let correct = truth.iter().zip(predicted).filter(|(t, p)| t == p).count();
    if truth.is_empty() { 0.0 } else { correct as f64 / truth.len() as f64 }
}

/// Per-class precision/recall/F1 and the confusion matrix `[true][predicted]`.
pub fn class_metrics(labels: &[String], truth: &[usize], predicted: &[usize]) -> (Vec<ClassMetrics>, Vec<Vec<usize>>) {
    let n = labels.len();
    let mut confusion = vec![vec![0usize; n]; n];
    for (&t, &p) in truth.iter().zip(predicted) {
        confusion[t][p] += 1;
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_class = (0..n)
        .map(|c| {
            let tp = confusion[c][c];
            let support: usize = confusion[c].iter().sum();
            let predicted_c: usize = (0..n).map(|t| confusion[t][c]).sum();
            let (precision, recall) = (ratio(tp, predicted_c), ratio(tp, support));
            let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
            ClassMetrics { label: labels[c].clone(), precision, recall, f1, support }
        })
        .collect();
    (per_class, confusion)
}
