//! The record reader: TSV or CSV text into records (fields with the line they start on),
//! reading quoted fields as Python's `csv` module does — they may hold delimiters, line breaks
//! and doubled quotes — and reporting a quote that is never closed or is followed by text.
use super::diagnostics::Diagnostic;

/// One unit of the input as a reader sees it.
pub(super) enum Item {
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
pub(super) enum Delimiter {
    Tab,
    Comma,
}

impl Delimiter {
    pub(super) fn char(self) -> char {
        match self {
            Delimiter::Tab => '\t',
            Delimiter::Comma => ',',
        }
    }

    pub(super) fn symbol(self) -> &'static str {
        match self {
            Delimiter::Tab => "<TAB>",
            Delimiter::Comma => ",",
        }
    }
}

/// Splits TSV or CSV text into items, one per record. Both read quoted fields the same way
/// (see the module doc): a record spans lines only inside a quoted field.
pub(super) fn read_items(input: &str, delimiter: Delimiter) -> Vec<Item> {
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
