//! Labelled-sentence parsing: turns the text a user pastes or uploads into a [`Dataset`], and
//! splits a dataset into training and validation parts.
//!
//! The stages, in the order the text goes through them: `records` (the text into records),
//! `columns` (which field is the text and which the label; records into raw examples),
//! this file (labels into class ids, whole-input checks), and `split` (stratified splits and
//! samples); `diagnostics` holds what every stage reports.
//!
//! Accepted input (blank lines are skipped, `\r\n` line ends and a UTF-8 BOM are tolerated;
//! a `\r\n` inside a quoted field becomes `\n`):
//! - A TSV or CSV file whose first non-blank line is a header naming a `text` (or `sentence`)
//!   column and a `label` column, in any order; other columns (e.g. `idx`) are ignored. The
//!   delimiter is a tab if the header line contains one, else a comma.
//! - Header-less `label<TAB>text` lines, as a person pastes them.
//!
//! Quoting is the same in TSV and CSV, and the same as Python's `csv` module (default dialect,
//! `doublequote=True`) and `pandas.read_csv` (checked on the edge cases below and on
//! Banking77, whose texts both read identically): a field whose first character is a double
//! quote is a quoted field. It may contain tabs, commas, line breaks and quotes written as two
//! quotes (`""`), and ends at the closing quote, so a record spans lines only inside a quoted
//! field (Banking77's `train.tsv` has such texts). A field that does not start with a quote is
//! literal: a quote inside it, or after leading spaces, is an ordinary character. Where we
//! differ from them, we report instead of guessing (as `csv`'s `strict=True` does), because
//! both cases usually mean a stray quote:
//! - Text after a closing quote (`"abc"def`; both read `abcdef`) is an error, reported on the
//!   line where the quote opened. Spaces between the closing quote and the delimiter are
//!   allowed (both keep them in the field; texts and labels are trimmed anyway).
//! - A quote that is never closed (`csv` reads the rest of the input into the field, pandas
//!   fails with "EOF inside string") is an error on the line where it opened.
//!
//! After either error, reading resumes on the line after the opening quote's line, so the
//! lines the field would have swallowed are still read and every problem in them reported.
//! An example's `line`, and every diagnostic's, is the 1-based physical line of the input
//! where its record (or the faulty quoted field) starts.
//!
//! Labels are trimmed and may be integers or names. Texts are trimmed of surrounding
//! whitespace. Nothing is ever silently dropped or guessed: every problem becomes a
//! [`Diagnostic`] naming its line and what to do, and all of them are collected into one
//! [`ParseError`].
use std::collections::{BTreeSet, HashMap};

mod columns;
mod diagnostics;
mod records;
mod split;

use columns::{collect_raw_examples, columns_from_header, detect_header, Columns, RawExample};
use diagnostics::{single_class_error, unknown_label_message};
pub use diagnostics::{Diagnostic, ParseError};
use records::{read_items, Delimiter};
pub use split::{stratified_sample, stratified_split};

/// One labelled sentence. `label` is an id into [`Dataset::labels`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Example {
    pub text: String,
    pub label: usize,
    /// 1-based line of the source where this example starts.
    pub line: usize,
}

/// Labelled sentences plus the class names their label ids refer to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Dataset {
    pub examples: Vec<Example>,
    /// id2label: `labels[example.label]` is the class name.
    pub labels: Vec<String>,
}

impl Dataset {
    #[must_use]
    pub fn texts(&self) -> Vec<String> {
        self.examples.iter().map(|e| e.text.clone()).collect()
    }

    #[must_use]
    pub fn label_ids(&self) -> Vec<usize> {
        self.examples.iter().map(|e| e.label).collect()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Number of examples per class id (length = `labels.len()`).
    #[must_use]
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.labels.len()];
        for example in &self.examples {
            if let Some(count) = counts.get_mut(example.label) {
                *count += 1;
            }
        }
        counts
    }
}

/// Parse training data. Classes get ids in a stable order: numeric order if every label is an
/// integer, otherwise sorted by string. At least two classes are required.
///
/// # Errors
/// Every problem in the input (see the module doc), each with its line, or a whole-input
/// problem (line 0): empty input, no data rows, swapped columns, fewer than two classes.
pub fn parse_labelled_text(text: &str) -> Result<Dataset, ParseError> {
    let raw = read_raw_examples(text)?;
    let labels = class_order(&raw);
    if labels.len() < 2 {
        return Err(single_class_error(&labels, raw.len()));
    }
    let ids: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(id, l)| (l.as_str(), id))
        .collect();
    let examples = raw
        .iter()
        .map(|r| Example {
            text: r.text.clone(),
            label: ids[r.label.as_str()],
            line: r.line,
        })
        .collect();
    Ok(Dataset { examples, labels })
}

/// Parse validation data against the training classes `labels` (id2label). A label not in
/// `labels` is an error naming the line and the known classes. One class only is fine here.
///
/// # Errors
/// As [`parse_labelled_text`] (minus the two-class rule), plus one diagnostic per line whose
/// label is unknown, and a line-0 diagnostic if `labels` is empty.
pub fn parse_with_labels(text: &str, labels: &[String]) -> Result<Dataset, ParseError> {
    if labels.is_empty() {
        return Err(ParseError::whole_input(
            "no training classes were given to check the validation labels against",
        ));
    }
    let raw = read_raw_examples(text)?;
    let ids: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(id, l)| (l.as_str(), id))
        .collect();
    let mut examples = Vec::with_capacity(raw.len());
    let mut diagnostics = Vec::new();
    for r in raw {
        match ids.get(r.label.as_str()) {
            Some(&label) => examples.push(Example {
                text: r.text,
                label,
                line: r.line,
            }),
            None => diagnostics.push(Diagnostic::new(
                r.line,
                unknown_label_message(&r.label, labels),
            )),
        }
    }
    if !diagnostics.is_empty() {
        return Err(ParseError { diagnostics });
    }
    Ok(Dataset {
        examples,
        labels: labels.to_vec(),
    })
}

/// Reads `input` into raw examples, or every problem found. Checks shared by training and
/// validation data (empty input, no examples, swapped columns) happen here.
fn read_raw_examples(input: &str) -> Result<Vec<RawExample>, ParseError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let input = input.replace("\r\n", "\n");
    let Some(first_line) = input.lines().find(|line| !line.trim().is_empty()) else {
        return Err(ParseError::whole_input(
            "the input is empty: give one example per line as `label<TAB>text`, or a TSV/CSV file \
             whose first row names the `text` and `label` columns",
        ));
    };
    let (columns, items) = match detect_header(first_line) {
        None => (Columns::headerless(), read_items(&input, Delimiter::Tab)),
        Some(delimiter) => {
            let mut items = read_items(&input, delimiter);
            (columns_from_header(&mut items, delimiter)?, items)
        }
    };
    let raw = collect_raw_examples(items, &columns)?;
    check_whole_input(&raw, &columns)?;
    Ok(raw)
}

/// Whole-input checks once every line read cleanly.
fn check_whole_input(raw: &[RawExample], columns: &Columns) -> Result<(), ParseError> {
    if raw.is_empty() {
        let header_line = columns.header.as_ref().map_or(0, |h| h.line);
        return Err(ParseError::whole_input(format!(
            "no examples: the header row (line {header_line}) is not followed by any data; add one example per line below it"
        )));
    }
    if columns.header.is_none() && looks_swapped(raw) {
        return Err(ParseError::whole_input(
            "every text is a number and no label is: the columns look swapped; header-less lines are \
             label<TAB>text (or start with a header row `text<TAB>label`)",
        ));
    }
    Ok(())
}

/// Header-less input where every "text" is an integer and no "label" is: `text<TAB>label` pasted.
fn looks_swapped(raw: &[RawExample]) -> bool {
    raw.iter()
        .all(|r| is_integer(&r.text) && !is_integer(&r.label))
}

fn is_integer(s: &str) -> bool {
    s.parse::<i64>().is_ok()
}

/// Distinct labels in id order: numeric if all are integers, else by string.
fn class_order(raw: &[RawExample]) -> Vec<String> {
    let distinct: BTreeSet<&str> = raw.iter().map(|r| r.label.as_str()).collect();
    let mut labels: Vec<String> = distinct.into_iter().map(str::to_string).collect();
    let numeric: Option<Vec<i64>> = labels.iter().map(|l| l.parse::<i64>().ok()).collect();
    if numeric.is_some() {
        labels.sort_by_key(|l| (l.parse::<i64>().unwrap_or_default(), l.clone()));
    }
    labels
}
