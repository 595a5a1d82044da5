//! Splits and samples of a dataset, stratified by class and seeded: the validation split
//! ([`stratified_split`]) and the fixed samples evaluation and the embedding map use
//! ([`stratified_sample`]).
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::diagnostics::{empty_train_class_message, Diagnostic, ParseError};
use super::{Dataset, Example};

/// Stratified split of `ds` into (train, validation): in each class, `fraction` of the examples
/// (rounded to the nearest whole number) go to validation, chosen by a `ChaCha8` shuffle seeded
/// with `seed`; both parts keep the original example order and the full `labels` list.
///
/// # Errors
/// A [`ParseError`] whose diagnostics all have line 0: `fraction` not strictly between
/// 0 and 1; a class that would have no training example (including a class with no examples
/// at all); a validation part that would be empty.
pub fn stratified_split(
    ds: &Dataset,
    fraction: f64,
    seed: u64,
) -> Result<(Dataset, Dataset), ParseError> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(ParseError::whole_input(format!(
            "validation fraction {fraction} is out of range: use a number strictly between 0 and 1, e.g. 0.1"
        )));
    }
    let in_validation = choose_validation(ds, fraction, seed)?;
    if !in_validation.contains(&true) {
        return Err(ParseError::whole_input(format!(
            "a validation fraction of {fraction} leaves no validation example with {} examples: \
             raise the fraction or add examples",
            ds.len()
        )));
    }
    let (validation, train): (Vec<_>, Vec<_>) = ds
        .examples
        .iter()
        .cloned()
        .zip(in_validation)
        .partition(|(_, is_validation)| *is_validation);
    let part = |pairs: Vec<(Example, bool)>| Dataset {
        examples: pairs.into_iter().map(|(example, _)| example).collect(),
        labels: ds.labels.clone(),
    };
    Ok((part(train), part(validation)))
}

/// Marks, per example, whether it goes to validation; errors if a class would vanish from train.
fn choose_validation(ds: &Dataset, fraction: f64, seed: u64) -> Result<Vec<bool>, ParseError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut in_validation = vec![false; ds.len()];
    let mut diagnostics = Vec::new();
    for (class, mut members) in indices_by_class(ds).into_iter().enumerate() {
        let take = validation_count(members.len(), fraction);
        if take >= members.len() {
            let name = ds.labels.get(class).map_or("?", String::as_str);
            diagnostics.push(Diagnostic::new(
                0,
                empty_train_class_message(name, members.len(), fraction),
            ));
            continue;
        }
        members.shuffle(&mut rng);
        for &index in &members[..take] {
            in_validation[index] = true;
        }
    }
    if diagnostics.is_empty() {
        Ok(in_validation)
    } else {
        Err(ParseError { diagnostics })
    }
}

/// A fixed, seeded, stratified sample of at most `limit` example indices (all of them when the
/// set is no larger), in ascending order: each class gets its share of `limit` (largest
/// remainders first), so small classes stay represented. Used to bound the cost of measuring
/// training accuracy on large sets.
#[must_use]
pub fn stratified_sample(ds: &Dataset, limit: usize, seed: u64) -> Vec<usize> {
    if ds.len() <= limit {
        return (0..ds.len()).collect();
    }
    let by_class = indices_by_class(ds);
    let exact: Vec<f64> = by_class.iter().map(|m| share(m.len(), limit, ds.len())).collect();
    let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut by_remainder: Vec<usize> = (0..by_class.len()).collect();
    by_remainder.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    let missing = limit - counts.iter().sum::<usize>();
    for &class in by_remainder.iter().take(missing) {
        counts[class] += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chosen: Vec<usize> = Vec::with_capacity(limit);
    for (mut members, count) in by_class.into_iter().zip(counts) {
        members.shuffle(&mut rng);
        chosen.extend_from_slice(&members[..count.min(members.len())]);
    }
    chosen.sort_unstable();
    chosen
}

/// A class's exact share of a sample: `count / total × limit`.
#[allow(clippy::cast_precision_loss)]
fn share(count: usize, limit: usize, total: usize) -> f64 {
    count as f64 * limit as f64 / total as f64
}

/// How many of a class's `count` examples go to validation: `count * fraction`, rounded.
/// With `0 < fraction < 1` the result lies in `0..=count`, so the casts are exact enough.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]
fn validation_count(count: usize, fraction: f64) -> usize {
    (count as f64 * fraction).round() as usize
}

fn indices_by_class(ds: &Dataset) -> Vec<Vec<usize>> {
    let mut by_class = vec![Vec::new(); ds.labels.len()];
    for (index, example) in ds.examples.iter().enumerate() {
        if let Some(members) = by_class.get_mut(example.label) {
            members.push(index);
        }
    }
    by_class
}
