//! Classification metrics: accuracy, per-class precision / recall / F1 and the confusion matrix.
use crate::events::ClassMetrics;

/// Index of the largest value (the first one on ties).
pub fn argmax(values: &[f64]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, v)| if *v > values[best] { i } else { best })
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
