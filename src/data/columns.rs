//! Which field is which: header detection (a first line naming a `text` or `sentence` and a
//! `label` column, tab- or comma-separated) or the header-less `label<TAB>text` layout, and
//! records turned into raw (text, label) examples with a diagnostic for every malformed one.
use super::diagnostics::{
    blank_line_in_broken_record, empty_value_diagnostics, headerless_field_count_message, plural, quoted_list, space_before_quote_hint, Diagnostic, ParseError,
};
use super::records::{Delimiter, Item};

/// An example before its label is mapped to an id.
pub(super) struct RawExample {
    pub(super) text: String,
    pub(super) label: String,
    pub(super) line: usize,
}

/// Where the text and label are in a record, and what a record should look like.
pub(super) struct Columns {
    text: usize,
    label: usize,
    count: usize,
    pub(super) header: Option<Header>,
}

pub(super) struct Header {
    pub(super) line: usize,
    names: Vec<String>,
    delimiter: Delimiter,
}

/// What is wrong with one record: its diagnostics, and whether it looked cut short (which
/// makes blank lines right after it suspicious: a text with embedded line breaks).
struct RecordProblem {
    diagnostics: Vec<Diagnostic>,
    too_few_fields: bool,
}

/// `Some(delimiter)` if the first non-blank line is a header, i.e. names a known column.
pub(super) fn detect_header(first_line: &str) -> Option<Delimiter> {
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
pub(super) fn columns_from_header(items: &mut Vec<Item>, delimiter: Delimiter) -> Result<Columns, ParseError> {
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

/// Turns records into raw examples, collecting every problem.
///
/// Blank lines are skipped, except inside a broken record: blank lines that follow a record cut
/// short and precede more data are most likely line breaks inside a text, so they are reported.
pub(super) fn collect_raw_examples(
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

impl Columns {
    pub(super) fn headerless() -> Self {
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
