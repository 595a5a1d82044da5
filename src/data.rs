//! Labelled-sentence parsing: turns the text a user pastes or uploads into a [`Dataset`], and
//! splits a dataset into training and validation parts.
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
use std::fmt::{self, Write as _};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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

/// One problem in the input. `line` is 1-based; 0 means the input as a whole.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diagnostic {
    pub line: usize,
    pub message: String,
}

/// Every problem found in the input (never empty when returned by this module).
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub diagnostics: Vec<Diagnostic>,
}

/// How many diagnostics [`ParseError`]'s `Display` lists before summarising the rest.
const MAX_LISTED_DIAGNOSTICS: usize = 20;
/// How many class names an "unknown label" message lists.
const MAX_LISTED_CLASSES: usize = 20;

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

impl Diagnostic {
    fn new(line: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `line N: message`, or just the message for whole-input problems (line 0).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}", self.message),
            line => write!(f, "line {line}: {}", self.message),
        }
    }
}

impl ParseError {
    fn whole_input(message: impl Into<String>) -> Self {
        ParseError {
            diagnostics: vec![Diagnostic::new(0, message)],
        }
    }
}

impl fmt::Display for ParseError {
    /// One diagnostic per line; after the first 20, a count of the rest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self
            .diagnostics
            .iter()
            .take(MAX_LISTED_DIAGNOSTICS)
            .enumerate()
        {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        let hidden = self
            .diagnostics
            .len()
            .saturating_sub(MAX_LISTED_DIAGNOSTICS);
        if hidden > 0 {
            write!(f, "\n... and {hidden} more problems")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

impl From<ParseError> for crate::Error {
    fn from(err: ParseError) -> Self {
        crate::Error::Data(err.to_string())
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

fn empty_train_class_message(name: &str, count: usize, fraction: f64) -> String {
    if count == 0 {
        return format!(
            "class `{name}` has no examples, so it cannot be trained: add examples of it"
        );
    }
    format!(
        "class `{name}` has {count} example{}: a validation fraction of {fraction} would leave none \
         for training; lower the fraction or add examples of `{name}`",
        plural(count)
    )
}

// ---------------------------------------------------------------------------------------------
// Reading: input text -> records -> raw (text, label string) examples.
// ---------------------------------------------------------------------------------------------

/// An example before its label is mapped to an id.
struct RawExample {
    text: String,
    label: String,
    line: usize,
}

/// One unit of the input as a reader sees it.
enum Item {
    Blank {
        line: usize,
    },
    Record {
        line: usize,
        fields: Vec<String>,
    },
    /// A record that could not be read at all (a quoted field's quote is never closed, or
    /// text follows its closing quote).
    Unreadable(Diagnostic),
}

#[derive(Clone, Copy, PartialEq)]
enum Delimiter {
    Tab,
    Comma,
}

impl Delimiter {
    fn char(self) -> char {
        match self {
            Delimiter::Tab => '\t',
            Delimiter::Comma => ',',
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Delimiter::Tab => "<TAB>",
            Delimiter::Comma => ",",
        }
    }
}

/// Where the text and label are in a record, and what a record should look like.
struct Columns {
    text: usize,
    label: usize,
    count: usize,
    header: Option<Header>,
}

struct Header {
    line: usize,
    names: Vec<String>,
    delimiter: Delimiter,
}

/// What is wrong with one record: its diagnostics, and whether it looked cut short (which
/// makes blank lines right after it suspicious: a text with embedded line breaks).
struct RecordProblem {
    diagnostics: Vec<Diagnostic>,
    too_few_fields: bool,
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

/// `Some(delimiter)` if the first non-blank line is a header, i.e. names a known column.
fn detect_header(first_line: &str) -> Option<Delimiter> {
    let delimiter = if first_line.contains('\t') {
        Delimiter::Tab
    } else {
        Delimiter::Comma
    };
    let names_a_column = first_line
        .split(delimiter.char())
        .any(|cell| column_role(cell.trim().trim_matches('"')).is_some());
    names_a_column.then_some(delimiter)
}

#[derive(Clone, Copy, PartialEq)]
enum ColumnRole {
    Text,
    Label,
}

fn column_role(name: &str) -> Option<ColumnRole> {
    match name.trim().to_lowercase().as_str() {
        "text" | "sentence" => Some(ColumnRole::Text),
        "label" => Some(ColumnRole::Label),
        _ => None,
    }
}

/// Takes the header record off the front of `items` and finds the text and label columns.
fn columns_from_header(items: &mut Vec<Item>, delimiter: Delimiter) -> Result<Columns, ParseError> {
    let position = items
        .iter()
        .position(|item| !matches!(item, Item::Blank { .. }));
    let (line, names) = match position.map(|p| items.remove(p)) {
        Some(Item::Record { line, fields }) => (line, fields),
        Some(Item::Unreadable(diagnostic)) => {
            return Err(ParseError {
                diagnostics: vec![diagnostic],
            })
        }
        _ => return Err(ParseError::whole_input("the input has no header row")),
    };
    let names: Vec<String> = names.iter().map(|name| name.trim().to_string()).collect();
    let mut diagnostics = Vec::new();
    let text = find_column(&names, ColumnRole::Text, line, &mut diagnostics);
    let label = find_column(&names, ColumnRole::Label, line, &mut diagnostics);
    match (text, label) {
        (Some(text), Some(label)) if diagnostics.is_empty() => {
            let count = names.len();
            Ok(Columns {
                text,
                label,
                count,
                header: Some(Header {
                    line,
                    names,
                    delimiter,
                }),
            })
        }
        _ => Err(ParseError { diagnostics }),
    }
}

/// The index of the single column playing `role`; reports a missing or duplicated column.
fn find_column(
    names: &[String],
    role: ColumnRole,
    line: usize,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<usize> {
    let matches: Vec<usize> = (0..names.len())
        .filter(|&i| column_role(&names[i]) == Some(role))
        .collect();
    let expected = match role {
        ColumnRole::Text => "a column named `text` or `sentence`",
        ColumnRole::Label => "a column named `label`",
    };
    let role_name = if role == ColumnRole::Text {
        "text"
    } else {
        "label"
    };
    match matches.as_slice() {
        [index] => Some(*index),
        [] => {
            diagnostics.push(Diagnostic::new(
                line,
                format!(
                    "the header has no {role_name} column: found {}; expected {expected}",
                    quoted_list(names)
                ),
            ));
            None
        }
        several => {
            let listed: Vec<String> = several
                .iter()
                .map(|&i| format!("`{}` (column {})", names[i], i + 1))
                .collect();
            diagnostics.push(Diagnostic::new(
                line,
                format!(
                    "duplicate {role_name} column: {}; keep only one of them",
                    listed.join(" and ")
                ),
            ));
            None
        }
    }
}

/// Splits TSV or CSV text into items, one per record. Both read quoted fields the same way
/// (see the module doc): a record spans lines only inside a quoted field.
fn read_items(input: &str, delimiter: Delimiter) -> Vec<Item> {
    let mut reader = RecordReader {
        input,
        delimiter: delimiter.char(),
        pos: 0,
        line: 1,
    };
    let mut items = Vec::new();
    while reader.pos < input.len() {
        items.push(reader.next_item());
    }
    items
}

/// A cursor over delimited text: `pos` is a byte offset, `line` the 1-based line it is on.
/// Quotes, delimiters and newlines are ASCII, so the byte positions found by scanning for them
/// are always valid `str` boundaries. Every byte is scanned a bounded number of times (see
/// [`RecordReader::skip_to_line_after`]), so reading is linear in the input.
struct RecordReader<'a> {
    input: &'a str,
    delimiter: char,
    pos: usize,
    line: usize,
}

/// Why a quoted field could not be read.
enum QuoteProblem {
    /// No closing quote before the end of the input.
    Unterminated,
    /// The closing quote, on line `line`, is followed by something other than a delimiter or
    /// the end of the line.
    TextAfterClosingQuote { line: usize },
}

impl<'a> RecordReader<'a> {
    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn next_item(&mut self) -> Item {
        let (start, line) = (self.pos, self.line);
        let mut fields = Vec::new();
        let mut quoted_any = false;
        loop {
            let field = if self.rest().starts_with('"') {
                quoted_any = true;
                match self.quoted_field(fields.len() + 1) {
                    Ok(value) => value,
                    Err(diagnostic) => return Item::Unreadable(diagnostic),
                }
            } else {
                self.plain_field()
            };
            fields.push(field);
            // A field ends at a delimiter, a line break or the end of the input.
            match self.rest().chars().next() {
                Some(c) if c == self.delimiter => self.pos += 1,
                Some(_) => {
                    self.advance(1);
                    break;
                }
                None => break,
            }
        }
        let whitespace_only = !quoted_any && self.input[start..self.pos].trim().is_empty();
        if whitespace_only {
            Item::Blank { line }
        } else {
            Item::Record { line, fields }
        }
    }

    /// A field that does not start with a quote: everything up to the delimiter or line end.
    fn plain_field(&mut self) -> String {
        let rest = self.rest();
        let end = rest.find([self.delimiter, '\n']).unwrap_or(rest.len());
        self.pos += end;
        rest[..end].to_string()
    }

    /// Reads the quoted field `field_number` (1-based) of a record, starting at its opening
    /// quote; `""` stands for one quote. Spaces between the closing quote and the delimiter
    /// are dropped. On a problem, returns its diagnostic, on the line where the quote opened,
    /// and moves to the line after that one, so that the lines the field would have swallowed
    /// are still read and checked.
    fn quoted_field(&mut self, field_number: usize) -> Result<String, Diagnostic> {
        let (opened_at, opened_on) = (self.pos, self.line);
        self.pos += 1;
        let mut value = String::new();
        let problem = loop {
            let rest = self.rest();
            let Some(quote) = rest.find('"') else {
                break QuoteProblem::Unterminated;
            };
            value.push_str(&rest[..quote]);
            self.advance(quote + 1);
            if self.rest().starts_with('"') {
                value.push('"');
                self.pos += 1;
                continue;
            }
            let delimiter = self.delimiter;
            let rest = self.rest();
            let after_spaces =
                rest.trim_start_matches(|c| c == ' ' || (c == '\t' && delimiter != '\t'));
            match after_spaces.chars().next() {
                None | Some('\n') => {}
                Some(c) if c == delimiter => {}
                Some(_) => break QuoteProblem::TextAfterClosingQuote { line: self.line },
            }
            self.pos += rest.len() - after_spaces.len();
            return Ok(value);
        };
        self.skip_to_line_after(opened_at, opened_on);
        Err(self.quote_diagnostic(&problem, opened_on, field_number))
    }

    /// Moves to the start of the line after the one holding byte `from` (on line `line`).
    ///
    /// Only called after a quoted-field problem, with `from` the opening quote. Re-reading the
    /// lines the field ran over does not make reading quadratic: strictly inside those lines
    /// the field met only paired quotes (`""`), and a run of an even number of quotes at the
    /// start of a field closes within that run, so re-reading them opens no field that spans
    /// lines. A field may span lines again only from the line of the failed field's closing
    /// quote, over text no field has read yet; so every byte is read at most twice by quoted
    /// fields, and reading stays linear.
    fn skip_to_line_after(&mut self, from: usize, line: usize) {
        if let Some(newline) = self.input[from..].find('\n') {
            self.pos = from + newline + 1;
            self.line = line + 1;
        } else {
            self.pos = self.input.len();
            self.line = line;
        }
    }

    fn quote_diagnostic(
        &self,
        problem: &QuoteProblem,
        opened_on: usize,
        field_number: usize,
    ) -> Diagnostic {
        let separator = if self.delimiter == '\t' {
            "tab"
        } else {
            "comma"
        };
        let message = match *problem {
            QuoteProblem::Unterminated => format!(
                "the quote that opens field {field_number} on this line is never closed, so \
                 everything after it would become part of that field: add the closing quote. \
                 {QUOTING_ADVICE}"
            ),
            QuoteProblem::TextAfterClosingQuote { line } if line == opened_on => format!(
                "unexpected text after the closing quote of field {field_number}: a field that \
                 starts with a quote ends at the next quote that is not doubled, which must be \
                 followed by a {separator} or the end of the line. {QUOTING_ADVICE}"
            ),
            QuoteProblem::TextAfterClosingQuote { line } => format!(
                "the quote that opens field {field_number} on this line is closed on line {line}, \
                 where text follows it, so this quote is most likely never closed: add the \
                 closing quote on this line (the following lines are checked on their own). \
                 {QUOTING_ADVICE}"
            ),
        };
        Diagnostic::new(opened_on, message)
    }

    /// Moves forward `bytes` bytes, counting the line breaks passed.
    fn advance(&mut self, bytes: usize) {
        let passed = &self.input[self.pos..self.pos + bytes];
        self.line += passed.bytes().filter(|&b| b == b'\n').count();
        self.pos += bytes;
    }
}

/// How to write quotes, for the quoting diagnostics.
const QUOTING_ADVICE: &str = "Inside a quoted field write a quote as two quotes (\"\"); a text \
     that starts with a quote must be quoted as a whole: write `\"Hi\" she said` as \
     `\"\"\"Hi\"\" she said\"`";

/// Turns records into raw examples, collecting every problem.
///
/// Blank lines are skipped, except inside a broken record: blank lines that follow a record cut
/// short and precede more data are most likely line breaks inside a text, so they are reported.
fn collect_raw_examples(
    items: Vec<Item>,
    columns: &Columns,
) -> Result<Vec<RawExample>, ParseError> {
    let mut examples = Vec::new();
    let mut diagnostics = Vec::new();
    let mut after_short_record = false;
    let mut pending_blank_lines = Vec::new();
    for item in items {
        match item {
            Item::Blank { line } if after_short_record => pending_blank_lines.push(line),
            Item::Blank { .. } => {}
            Item::Unreadable(diagnostic) => {
                after_short_record = false;
                pending_blank_lines.clear();
                diagnostics.push(diagnostic);
            }
            Item::Record { line, fields } => {
                diagnostics.extend(
                    pending_blank_lines
                        .drain(..)
                        .map(blank_line_in_broken_record),
                );
                match columns.example_from(line, &fields) {
                    Ok(example) => {
                        after_short_record = false;
                        examples.push(example);
                    }
                    Err(problem) => {
                        after_short_record = problem.too_few_fields;
                        diagnostics.extend(problem.diagnostics);
                    }
                }
            }
        }
    }
    if diagnostics.is_empty() {
        Ok(examples)
    } else {
        Err(ParseError { diagnostics })
    }
}

fn blank_line_in_broken_record(line: usize) -> Diagnostic {
    Diagnostic::new(
        line,
        "blank line inside a broken record (it follows a line with missing fields): a text seems to \
         contain line breaks; put that text in double quotes, or put each example on a single line",
    )
}

impl Columns {
    fn headerless() -> Self {
        Columns {
            label: 0,
            text: 1,
            count: 2,
            header: None,
        }
    }

    fn example_from(&self, line: usize, fields: &[String]) -> Result<RawExample, RecordProblem> {
        if let Some(problem) = self.shape_problem(line, fields) {
            return Err(problem);
        }
        let label = fields[self.label].trim();
        let text = fields[self.text].trim();
        let diagnostics = empty_value_diagnostics(line, label, text);
        if !diagnostics.is_empty() {
            return Err(RecordProblem {
                diagnostics,
                too_few_fields: false,
            });
        }
        Ok(RawExample {
            text: text.to_string(),
            label: label.to_string(),
            line,
        })
    }

    /// A wrong number of fields, or a header row where data belongs.
    fn shape_problem(&self, line: usize, fields: &[String]) -> Option<RecordProblem> {
        let (message, too_few_fields) = if fields.len() != self.count {
            (self.field_count_message(fields), fields.len() < self.count)
        } else if let Some(message) = self.misplaced_header_message(fields) {
            (message, false)
        } else {
            return None;
        };
        Some(RecordProblem {
            diagnostics: vec![Diagnostic::new(line, message)],
            too_few_fields,
        })
    }

    /// Set when a data line is a header row: a repeat of the header, or, in header-less
    /// input, a row naming the columns (a header must be the first line).
    fn misplaced_header_message(&self, fields: &[String]) -> Option<String> {
        let Some(header) = &self.header else {
            let names_columns = fields.iter().all(|field| column_role(field).is_some());
            return names_columns.then(|| {
                "this line looks like a header row, but a header must be the first line: move it \
                 to the top or remove it"
                    .to_string()
            });
        };
        let repeats = fields
            .iter()
            .zip(&header.names)
            .all(|(field, name)| field.trim().eq_ignore_ascii_case(name));
        repeats.then(|| {
            format!(
                "this line repeats the header row of line {}: remove it (were two files pasted \
                 together?)",
                header.line
            )
        })
    }

    fn field_count_message(&self, fields: &[String]) -> String {
        match &self.header {
            None => headerless_field_count_message(fields),
            Some(header) => self.header_field_count_message(header, fields),
        }
    }

    fn header_field_count_message(&self, header: &Header, fields: &[String]) -> String {
        let found = fields.len();
        let layout = header.names.join(header.delimiter.symbol());
        let intro = format!(
            "{found} field{}, expected {} ({layout}, as in the header on line {})",
            plural(found),
            self.count,
            header.line
        );
        if found > self.count {
            let advice = match header.delimiter {
                Delimiter::Tab => {
                    "is there a tab inside the text? Replace it with a space or put the text in \
                     double quotes"
                }
                Delimiter::Comma => {
                    "is there a comma inside the text? Put the text in double quotes"
                }
            };
            return format!("{intro}: {advice}{}", space_before_quote_hint(fields));
        }
        let missing = match (found <= self.text, found <= self.label) {
            (true, true) => "the text and the label are missing",
            (true, false) => "the text is missing",
            _ => "the label is missing",
        };
        format!(
            "{intro}: {missing}; if a text spans several lines, put it in double quotes or join \
             it onto one line"
        )
    }
}

fn empty_value_diagnostics(line: usize, label: &str, text: &str) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    if label.is_empty() {
        diagnostics.push(Diagnostic::new(
            line,
            "the label is empty: write the class of this sentence",
        ));
    }
    if text.is_empty() {
        diagnostics.push(Diagnostic::new(
            line,
            "the text is empty: write a sentence or remove the line",
        ));
    }
    diagnostics
}

fn headerless_field_count_message(fields: &[String]) -> String {
    if fields.len() < 2 {
        let comma_hint = if fields.first().is_some_and(|field| field.contains(',')) {
            " (for comma-separated data, start with a header row such as `label,text`)"
        } else {
            ""
        };
        return format!(
            "no tab found: expected label<TAB>text, e.g. `1<TAB>I love this product!`{comma_hint}; \
             if a text spans several lines, put it in double quotes or join it onto one line"
        );
    }
    format!(
        "{} tab-separated fields, expected 2 (label<TAB>text): is there a tab inside the text? \
         Replace it with a space or put the text in double quotes{}",
        fields.len(),
        space_before_quote_hint(fields)
    )
}

/// A hint for a record with too many fields when a field has spaces before a quote: such a
/// field is not a quoted field, so the delimiters inside its quotes split it.
fn space_before_quote_hint(fields: &[String]) -> &'static str {
    let spaced_quote = fields
        .iter()
        .any(|field| field.starts_with(' ') && field.trim_start().starts_with('"'));
    if spaced_quote {
        " (a quoted field must start with its quote: remove the space before it)"
    } else {
        ""
    }
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

fn single_class_error(labels: &[String], example_count: usize) -> ParseError {
    let name = labels.first().map_or("", String::as_str);
    ParseError::whole_input(format!(
        "only one class: all {example_count} example{} have the label `{name}`; a classifier needs at \
         least two classes, so add examples of another class",
        plural(example_count)
    ))
}

fn unknown_label_message(label: &str, known: &[String]) -> String {
    let suggestion = known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(label))
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    let mut listed = quoted_list(&known[..known.len().min(MAX_LISTED_CLASSES)]);
    if known.len() > MAX_LISTED_CLASSES {
        let _ = write!(listed, " and {} more", known.len() - MAX_LISTED_CLASSES);
    }
    format!(
        "label `{label}` is not one of the training classes{suggestion}; known classes: {listed}. \
         Fix the label, or add examples of `{label}` to the training data"
    )
}

fn quoted_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}
