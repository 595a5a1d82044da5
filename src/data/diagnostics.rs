//! What the parser reports: [`Diagnostic`]s (a line and what to do about it), the
//! [`ParseError`] that collects them, and the wording of the messages the stages share.
use std::fmt::{self, Write as _};

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

impl Diagnostic {
    pub(super) fn new(line: usize, message: impl Into<String>) -> Self {
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
    pub(super) fn whole_input(message: impl Into<String>) -> Self {
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

pub(super) fn blank_line_in_broken_record(line: usize) -> Diagnostic {
    Diagnostic::new(
        line,
        "blank line inside a broken record (it follows a line with missing fields): a text seems to \
         contain line breaks; put that text in double quotes, or put each example on a single line",
    )
}

pub(super) fn empty_value_diagnostics(line: usize, label: &str, text: &str) -> Vec<Diagnostic> {
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

pub(super) fn headerless_field_count_message(fields: &[String]) -> String {
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
pub(super) fn space_before_quote_hint(fields: &[String]) -> &'static str {
    let spaced_quote = fields
        .iter()
        .any(|field| field.starts_with(' ') && field.trim_start().starts_with('"'));
    if spaced_quote {
        " (a quoted field must start with its quote: remove the space before it)"
    } else {
        ""
    }
}

pub(super) fn single_class_error(labels: &[String], example_count: usize) -> ParseError {
    let name = labels.first().map_or("", String::as_str);
    ParseError::whole_input(format!(
        "only one class: all {example_count} example{} have the label `{name}`; a classifier needs at \
         least two classes, so add examples of another class",
        plural(example_count)
    ))
}

pub(super) fn unknown_label_message(label: &str, known: &[String]) -> String {
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

pub(super) fn empty_train_class_message(name: &str, count: usize, fraction: f64) -> String {
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

pub(super) fn quoted_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

pub(super) fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}
