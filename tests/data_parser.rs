//! Tests for `webtune::data`: malformed inputs and their diagnostics, the accepted formats,
//! validation against training classes, the stratified split, and the real data files
//! (`data/notebook.tsv` in the repo, SST-2 and Banking77 in `../shared/data`).
use std::path::PathBuf;
use std::time::Instant;

use webtune::data::{
    parse_labelled_text, parse_with_labels, stratified_split, Dataset, Diagnostic, Example,
};

fn diagnostics(input: &str) -> Vec<Diagnostic> {
    match parse_labelled_text(input) {
        Ok(ds) => panic!("expected an error for {input:?}, got {} examples", ds.len()),
        Err(err) => err.diagnostics,
    }
}

fn parse_ok(input: &str) -> Dataset {
    parse_labelled_text(input).unwrap_or_else(|err| panic!("failed to parse {input:?}:\n{err}"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

/// A file under `../shared/data`, located beside the repo (as CI checks it out).
fn shared_data(relative: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "shared", "data", relative]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read {} (shared/ must sit beside the repo): {err}",
            path.display()
        )
    })
}

fn repo_file(relative: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), relative].iter().collect();
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Malformed inputs
// ---------------------------------------------------------------------------------------------

/// (name, input, expected line, expected message substring)
const MALFORMED: &[(&str, &str, usize, &str)] = &[
    ("empty input", "", 0, "the input is empty"),
    ("only blank lines", "\n   \n\t\n\r\n", 0, "the input is empty"),
    ("only a BOM", "\u{feff}", 0, "the input is empty"),
    ("header only (TSV)", "text\tlabel\n", 0, "no examples: the header row (line 1)"),
    ("header only (CSV) after blank lines", "\n\nsentence,label\n\n", 0, "header row (line 3) is not followed"),
    ("missing label (TSV header)", "text\tlabel\nhello there\n", 2, "1 field, expected 2 (text<TAB>label, as in the header on line 1): the label is missing"),
    ("missing text (label-first header)", "label\ttext\n1\n", 2, "the text is missing"),
    ("missing label (CSV)", "text,label\nhello\nfine,1\n", 2, "the label is missing"),
    ("empty label (TSV header)", "text\tlabel\nhello\t   \n", 2, "the label is empty"),
    ("empty label (header-less)", "\tI love it\n1\tok\n", 1, "the label is empty"),
    ("empty text (header-less)", "1\tgood\n0\t   \n", 2, "the text is empty"),
    ("empty quoted text (CSV)", "text,label\n\"\",1\nok,0\n", 2, "the text is empty"),
    ("too many fields (TSV)", "text\tlabel\na\tb\t1\n", 2, "3 fields, expected 2 (text<TAB>label"),
    ("too many fields (CSV)", "text,label\nhello, world,1\n", 2, "3 fields, expected 2 (text,label, as in the header on line 1): is there a comma inside the text? Put the text in double quotes"),
    ("too few fields with extra column", "idx\tsentence\tlabel\n0\thello\n", 2, "2 fields, expected 3 (idx<TAB>sentence<TAB>label"),
    ("too many fields (header-less)", "1\tgood\n1\ta\tb\n", 2, "3 tab-separated fields, expected 2 (label<TAB>text)"),
    ("no tab (header-less)", "1\tgood\nthis line has no tab\n", 2, "no tab found: expected label<TAB>text"),
    ("comma instead of tab (header-less)", "1,I love it\n0,meh\n", 1, "start with a header row such as `label,text`"),
    ("header without a label column", "text\tcategory\nhi\t1\n", 1, "the header has no label column: found `text`, `category`; expected a column named `label`"),
    ("header without a text column", "review,label\nhi,1\n", 1, "the header has no text column: found `review`, `label`; expected a column named `text` or `sentence`"),
    ("duplicate text column", "text\tlabel\ttext\na\t1\tb\n", 1, "duplicate text column: `text` (column 1) and `text` (column 3)"),
    ("text and sentence columns", "text\tsentence\tlabel\n", 1, "duplicate text column: `text` (column 1) and `sentence` (column 2)"),
    ("duplicate label column", "label,text,Label\n", 1, "duplicate label column"),
    ("unterminated quote (CSV)", "text,label\nok,1\n\"never closed,0\nmore,1\n", 3, "never closed"),
    ("unterminated quote (TSV)", "text\tlabel\nok\t1\n\"never closed\t0\nmore\t1\n", 3, "the quote that opens field 1 on this line is never closed"),
    ("unterminated quote (header-less)", "1\tok\n0\t\"never closed\n1\tmore\n", 2, "field 2 on this line is never closed"),
    ("text after closing quote (CSV)", "text,label\n\"a\"b,1\nok,0\n", 2, "unexpected text after the closing quote of field 1"),
    ("text after closing quote (TSV)", "text\tlabel\n\"quoted\" start\t1\nok\t0\n", 2, "unexpected text after the closing quote of field 1"),
    ("too many fields (CSV, space before the quote)", "text,label\n \"a, b\",1\nok,0\n", 2, "a quoted field must start with its quote: remove the space before it"),
    ("only one class", "1\ta\n1\tb\n", 0, "only one class: all 2 examples have the label `1`; a classifier needs at least two classes"),
    ("only one named class", "text,label\ngood,positive\n", 0, "all 1 example have the label `positive`"),
    ("repeated header", "text\tlabel\na\t1\nText\tLabel\nb\t0\n", 3, "repeats the header row of line 1"),
    ("header row after header-less lines", "1\tgood\nlabel\ttext\n0\tbad\n", 2, "looks like a header row, but a header must be the first line"),
    ("swapped columns (header-less)", "I love it\t1\nawful\t0\n", 0, "the columns look swapped"),
    ("blank line inside a broken record", "text\tlabel\nstart of a text\n\nend\t1\nok\t0\n", 3, "blank line inside a broken record"),
    ("line numbers after BOM and CRLF", "\u{feff}text\tlabel\r\na\t1\r\nb\r\n", 3, "the label is missing"),
    ("line numbers after a multi-line quoted field", "text,label\n\"a\nb\",1\n,0\n", 4, "the text is empty"),
];

#[test]
fn malformed_inputs_are_reported_with_line_and_message() {
    assert!(MALFORMED.len() >= 20);
    let mut failures = Vec::new();
    for (name, input, line, expected) in MALFORMED {
        let found = match parse_labelled_text(input) {
            Ok(ds) => {
                failures.push(format!("{name}: no error, {} examples", ds.len()));
                continue;
            }
            Err(err) => err.diagnostics,
        };
        if !found
            .iter()
            .any(|d| d.line == *line && d.message.contains(expected))
        {
            failures.push(format!(
                "{name}: expected line {line} containing {expected:?}, got {found:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_bad_line_is_reported_not_just_the_first() {
    let input = "text\tlabel\nok\t1\n\t1\nno label\nfine\t0\nx\t\na\tb\tc\n";
    let lines: Vec<usize> = diagnostics(input).iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![3, 4, 6, 7]);
}

#[test]
fn an_empty_label_and_text_on_one_line_are_both_reported() {
    let found = diagnostics("text,label\n , \nok,1\n");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found.iter().all(|d| d.line == 2));
}

#[test]
fn blank_lines_at_the_end_after_a_broken_line_are_not_reported() {
    let found = diagnostics("1\tgood\nbroken\n\n\n");
    assert_eq!(found, vec![found[0].clone()]);
    assert_eq!(found[0].line, 2);
}

#[test]
fn unterminated_quote_in_csv_header_is_reported() {
    let found = diagnostics("\"text,label\nhello,1\n");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].line, 1);
    assert!(found[0].message.contains("never closed"));
}

#[test]
fn display_lists_one_problem_per_line_and_caps_the_listing() {
    let input: String = std::iter::once("text\tlabel\n".to_string())
        .chain((0..25).map(|i| format!("no label {i}\n")))
        .collect();
    let err = parse_labelled_text(&input).unwrap_err();
    assert_eq!(err.diagnostics.len(), 25);
    let shown = err.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 21);
    assert!(
        lines[0].starts_with("line 2: 1 field, expected 2"),
        "{}",
        lines[0]
    );
    assert!(lines[19].starts_with("line 21: "));
    assert_eq!(lines[20], "... and 5 more problems");
}

#[test]
fn whole_input_problems_display_without_a_line_number() {
    let err = parse_labelled_text("").unwrap_err();
    assert!(err.to_string().starts_with("the input is empty"));
}

#[test]
fn parse_error_converts_to_the_crate_error() {
    let err: webtune::Error = parse_labelled_text("text\tlabel\noops\n")
        .unwrap_err()
        .into();
    assert!(matches!(err, webtune::Error::Data(_)), "{err:?}");
    assert!(err.to_string().starts_with("data: line 2: "), "{err}");
    let as_std: Box<dyn std::error::Error> = Box::new(parse_labelled_text("").unwrap_err());
    assert!(as_std.to_string().contains("empty"));
}

// ---------------------------------------------------------------------------------------------
// Good inputs
// ---------------------------------------------------------------------------------------------

#[test]
fn tsv_with_text_first_header() {
    let ds = parse_ok("text\tlabel\nI love it\t1\nawful\t0\n");
    assert_eq!(ds.labels, strings(&["0", "1"]));
    assert_eq!(
        ds.examples,
        vec![
            Example {
                text: "I love it".into(),
                label: 1,
                line: 2
            },
            Example {
                text: "awful".into(),
                label: 0,
                line: 3
            },
        ]
    );
}

#[test]
fn label_first_header_and_case_insensitive_names() {
    let tsv = parse_ok(" Label \t SENTENCE\n1\tI love it\n0\tawful\n");
    let csv = parse_ok("label,text\n1,I love it\n0,awful\n");
    assert_eq!(tsv, csv);
    assert_eq!(tsv.texts(), strings(&["I love it", "awful"]));
    assert_eq!(tsv.label_ids(), vec![1, 0]);
}

#[test]
fn extra_columns_are_ignored() {
    let ds = parse_ok("idx\tsentence\tlabel\n0\thello\t1\n1\tbye\t0\n");
    assert_eq!(ds.texts(), strings(&["hello", "bye"]));
    assert_eq!(ds.label_ids(), vec![1, 0]);
}

#[test]
fn csv_quotes_commas_doubled_quotes_and_embedded_newlines() {
    let input = "text,label\n\"Hello, world\",1\n\"She said \"\"no\"\"\",0\n\"two\nlines\",1\n\"spaced\" , 0\nplain \"inner\" quotes,1\n";
    let ds = parse_ok(input);
    assert_eq!(
        ds.texts(),
        strings(&[
            "Hello, world",
            "She said \"no\"",
            "two\nlines",
            "spaced",
            "plain \"inner\" quotes"
        ])
    );
    assert_eq!(ds.label_ids(), vec![1, 0, 1, 0, 1]);
    let lines: Vec<usize> = ds.examples.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 6, 7]);
}

#[test]
fn csv_with_crlf_keeps_embedded_newlines_as_newlines() {
    let ds = parse_ok("text,label\r\n\"a\r\nb\",1\r\nc,0\r\n");
    assert_eq!(ds.texts(), strings(&["a\nb", "c"]));
}

/// The same records written as TSV and as CSV, each with quoted fields spanning lines.
#[test]
fn quoted_fields_span_lines_in_tsv_and_csv() {
    let expected = strings(&["first\nsecond", "alone", "a\n\n\nb", "last"]);
    for (name, input) in [
        (
            "TSV",
            "text\tlabel\n\"first\nsecond\"\t1\nalone\t0\n\"\na\n\n\nb\n\"\t1\nlast\t0\n",
        ),
        (
            "CSV",
            "text,label\n\"first\nsecond\",1\nalone,0\n\"\na\n\n\nb\n\",1\nlast,0\n",
        ),
    ] {
        let ds = parse_labelled_text(input).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(ds.texts(), expected, "{name}");
        assert_eq!(ds.label_ids(), vec![1, 0, 1, 0], "{name}");
        let lines: Vec<usize> = ds.examples.iter().map(|e| e.line).collect();
        assert_eq!(
            lines,
            vec![2, 4, 5, 11],
            "{name}: a record's line is where it starts"
        );
    }
}

#[test]
fn headerless_lines_may_quote_a_text_over_several_lines() {
    let ds = parse_ok("1\t\"one\ntwo\"\n0\tthree\n\"1\"\t\"four\"\n");
    assert_eq!(ds.texts(), strings(&["one\ntwo", "three", "four"]));
    assert_eq!(ds.label_ids(), vec![1, 0, 1]);
    let lines: Vec<usize> = ds.examples.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![1, 3, 4]);
}

#[test]
fn tsv_doubled_quotes_in_quoted_fields() {
    let ds = parse_ok(
        "text\tlabel\n\"Why does it say \"\"pending\"\"?\"\t1\n\"\"\"quoted\"\" at the start\nand \"\"more\"\"\"\t0\n\"\"\"\"\"\"\t1\n",
    );
    assert_eq!(
        ds.texts(),
        strings(&[
            "Why does it say \"pending\"?",
            "\"quoted\" at the start\nand \"more\"",
            "\"\""
        ])
    );
    assert_eq!(ds.label_ids(), vec![1, 0, 1]);
}

#[test]
fn quoted_fields_may_contain_tabs_and_commas() {
    let tsv = parse_ok("text\tlabel\n\"a\tb, c\"\t1\n\"x,\ty\"\t\"0\"\n");
    assert_eq!(tsv.texts(), strings(&["a\tb, c", "x,\ty"]));
    assert_eq!(tsv.labels, strings(&["0", "1"]));
    let csv = parse_ok("label,text\n1,\"a\tb, c\"\n0,\"x,\ty\"\n");
    assert_eq!(csv, tsv);
}

/// As Python's csv module: only a quote that starts a field opens a quoted field; any other
/// quote is an ordinary character (including one after leading spaces).
#[test]
fn quotes_inside_unquoted_fields_are_ordinary_characters() {
    for (name, input) in [
        (
            "TSV",
            "text\tlabel\nunbalanced \" quote\t0\nplain \"inner\" quotes\t1\n \"spaced\"\t0\nends with \"\t1\n",
        ),
        (
            "CSV",
            "text,label\nunbalanced \" quote,0\nplain \"inner\" quotes,1\n \"spaced\",0\nends with \",1\n",
        ),
    ] {
        let ds = parse_labelled_text(input).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(
            ds.texts(),
            strings(&[
                "unbalanced \" quote",
                "plain \"inner\" quotes",
                "\"spaced\"",
                "ends with \""
            ]),
            "{name}"
        );
    }
}

#[test]
fn unterminated_quote_names_its_line_and_the_rest_is_still_checked() {
    for (name, input) in [
        (
            "TSV",
            "text\tlabel\nok\t1\n\"never closed\t0\nmore\t1\nno label\nx\t\n",
        ),
        (
            "CSV",
            "text,label\nok,1\n\"never closed,0\nmore,1\nno label\nx,\n",
        ),
    ] {
        let found = diagnostics(input);
        let lines: Vec<usize> = found.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![3, 5, 6], "{name}: {found:#?}");
        let message = &found[0].message;
        assert!(message.contains("never closed"), "{name}: {message}");
        assert!(
            message.contains("write a quote as two quotes"),
            "{name}: {message}"
        );
        assert!(found[1].message.contains("the label is missing"), "{name}");
        assert!(found[2].message.contains("the label is empty"), "{name}");
    }
}

/// A stray quote pairs up with the next quote in the file; the record it makes spans lines
/// and has text after its "closing" quote. The stray quote's line is reported and the lines
/// it would have swallowed are read again.
#[test]
fn a_stray_opening_quote_is_reported_where_it_opens() {
    let input = "text\tlabel\n\"stray\t1\nfine\t0\n\"quoted\" start\t1\nno label\nok\t0\n";
    let found = diagnostics(input);
    let lines: Vec<usize> = found.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![2, 4, 5], "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("the quote that opens field 1 on this line is closed on line 4"),
        "{}",
        found[0].message
    );
    assert!(found[1]
        .message
        .contains("unexpected text after the closing quote of field 1"));
    assert!(found[2].message.contains("the label is missing"));
}

#[test]
fn line_numbers_after_multi_line_records_stay_physical_lines() {
    for (name, input) in [
        (
            "TSV",
            "text\tlabel\n\"a\nb\n\nc\"\t1\nno label\n\"x\ny\"\t\n\n\"p\nq\"\t1\tz\nfine\t0\n",
        ),
        (
            "CSV",
            "text,label\n\"a\nb\n\nc\",1\nno label\n\"x\ny\",\n\n\"p\nq\",1,z\nfine,0\n",
        ),
    ] {
        let found = diagnostics(input);
        let lines: Vec<usize> = found.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![6, 7, 10], "{name}: {found:#?}");
        assert!(found[0].message.contains("the label is missing"), "{name}");
        assert!(found[1].message.contains("the label is empty"), "{name}");
        assert!(found[2].message.contains("3 fields, expected 2"), "{name}");
    }
}

#[test]
fn many_quoted_records_and_many_problems_parse_quickly() {
    // 20,000 three-line quoted records.
    let mut input = String::from("text\tlabel\n");
    input.extend((0..20_000).map(|i| format!("\"record {i}\nsays \"\"hi\"\"\n\"\t{}\n", i % 3)));
    let start = Instant::now();
    let ds = parse_ok(&input);
    let elapsed = start.elapsed();
    assert_eq!(ds.len(), 20_000);
    assert_eq!(ds.examples[19_999].line, 2 + 3 * 19_999);
    assert_eq!(ds.examples[7].text, "record 7\nsays \"hi\"");
    assert!(elapsed.as_secs_f64() < 2.0, "took {elapsed:?}");

    // An unterminated quote at the top of 20,000 lines that are each broken: every line is
    // still reported, without rescanning the file per line.
    let mut input = String::from("text\tlabel\n\"never closed\t1\n");
    input.extend((0..20_000).map(|i| format!("no label {i}\n")));
    let start = Instant::now();
    let found = diagnostics(&input);
    let elapsed = start.elapsed();
    assert_eq!(found.len(), 20_001);
    assert_eq!(found[0].line, 2);
    assert!(found[0].message.contains("never closed"));
    assert_eq!(found[20_000].line, 20_002);
    assert!(elapsed.as_secs_f64() < 2.0, "took {elapsed:?}");
}

#[test]
fn headerless_lines_with_blank_lines_between() {
    let ds = parse_ok("\n1\tI love this product!\n\n0\tTerrible, I hated it.\n\n");
    assert_eq!(ds.labels, strings(&["0", "1"]));
    assert_eq!(
        ds.texts(),
        strings(&["I love this product!", "Terrible, I hated it."])
    );
    let lines: Vec<usize> = ds.examples.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 4]);
}

#[test]
fn bom_crlf_and_whitespace_around_labels_and_texts() {
    let ds = parse_ok("\u{feff}text\tlabel\r\n  great  \t 1  \r\nbad \t0\r\n");
    assert_eq!(ds.labels, strings(&["0", "1"]));
    assert_eq!(ds.texts(), strings(&["great", "bad"]));
    let headerless = parse_ok("\u{feff}1 \tgood\r\n0\tbad\r\n");
    assert_eq!(headerless.labels, strings(&["0", "1"]));
}

#[test]
fn named_labels_are_sorted_by_string() {
    let ds = parse_ok("text\tlabel\na\tpositive\nb\tnegative\nc\tneutral\nd\tpositive\n");
    assert_eq!(ds.labels, strings(&["negative", "neutral", "positive"]));
    assert_eq!(ds.label_ids(), vec![2, 0, 1, 2]);
    assert_eq!(ds.class_counts(), vec![1, 1, 2]);
}

#[test]
fn integer_labels_are_in_numeric_order() {
    let ds = parse_ok("10\tten\n2\ttwo\n1\tone\n-1\tminus one\n");
    assert_eq!(ds.labels, strings(&["-1", "1", "2", "10"]));
    assert_eq!(ds.label_ids(), vec![3, 2, 1, 0]);
}

#[test]
fn mixed_labels_fall_back_to_string_order() {
    let ds = parse_ok("10\tten\n2\ttwo\nx\tex\n");
    assert_eq!(ds.labels, strings(&["10", "2", "x"]));
}

#[test]
fn dataset_helpers() {
    let ds = parse_ok("1\ta\n0\tb\n1\tc\n");
    assert_eq!(ds.len(), 3);
    assert!(!ds.is_empty());
    assert_eq!(ds.class_counts(), vec![1, 2]);
    let empty = Dataset {
        examples: vec![],
        labels: strings(&["a", "b"]),
    };
    assert!(empty.is_empty());
    assert_eq!(empty.class_counts(), vec![0, 0]);
}

// ---------------------------------------------------------------------------------------------
// Validation data against training classes
// ---------------------------------------------------------------------------------------------

#[test]
fn validation_uses_training_ids_and_allows_one_class() {
    let labels = strings(&["negative", "positive"]);
    let ds = parse_with_labels("text\tlabel\ngreat\tpositive\nsuper\tpositive\n", &labels).unwrap();
    assert_eq!(ds.labels, labels);
    assert_eq!(ds.label_ids(), vec![1, 1]);
    assert_eq!(ds.class_counts(), vec![0, 2]);
}

#[test]
fn validation_unknown_label_names_line_and_known_classes() {
    let labels = strings(&["negative", "positive"]);
    let err =
        parse_with_labels("positive\tok\nneutral\tmeh\nPositive\tyay\n", &labels).unwrap_err();
    assert_eq!(err.diagnostics.len(), 2, "{err}");
    assert_eq!(err.diagnostics[0].line, 2);
    assert!(err.diagnostics[0]
        .message
        .contains("label `neutral` is not one of the training classes"));
    assert!(err.diagnostics[0]
        .message
        .contains("known classes: `negative`, `positive`"));
    assert_eq!(err.diagnostics[1].line, 3);
    assert!(err.diagnostics[1]
        .message
        .contains("did you mean `positive`?"));
}

#[test]
fn validation_lists_at_most_twenty_known_classes() {
    let labels: Vec<String> = (0..30).map(|i| format!("class_{i:02}")).collect();
    let err = parse_with_labels("nope\tsome text\n", &labels).unwrap_err();
    let message = &err.diagnostics[0].message;
    assert!(message.contains("`class_19` and 10 more"), "{message}");
    assert!(!message.contains("class_20"));
}

#[test]
fn validation_reports_format_problems_and_missing_classes() {
    let labels = strings(&["0", "1"]);
    let err = parse_with_labels("", &labels).unwrap_err();
    assert!(err.diagnostics[0].message.contains("empty"));
    let err = parse_with_labels("1\tok\n", &[]).unwrap_err();
    assert!(err.diagnostics[0].message.contains("no training classes"));
    let err = parse_with_labels("1\tok\nbroken\n", &labels).unwrap_err();
    assert_eq!(err.diagnostics[0].line, 2);
}

// ---------------------------------------------------------------------------------------------
// Stratified split
// ---------------------------------------------------------------------------------------------

fn synthetic(counts: &[usize]) -> Dataset {
    let mut examples = Vec::new();
    for (label, &count) in counts.iter().enumerate() {
        for i in 0..count {
            examples.push(Example {
                text: format!("class {label} example {i}"),
                label,
                line: examples.len() + 1,
            });
        }
    }
    let labels = (0..counts.len()).map(|l| format!("c{l}")).collect();
    Dataset { examples, labels }
}

#[test]
fn split_is_deterministic_for_a_seed() {
    let ds = synthetic(&[100, 50]);
    let first = stratified_split(&ds, 0.2, 7).unwrap();
    let again = stratified_split(&ds, 0.2, 7).unwrap();
    let other = stratified_split(&ds, 0.2, 8).unwrap();
    assert_eq!(first, again);
    assert_ne!(first.1, other.1);
}

#[test]
fn split_keeps_proportions_per_class_and_loses_nothing() {
    let ds = synthetic(&[100, 50, 10]);
    let (train, validation) = stratified_split(&ds, 0.2, 1).unwrap();
    assert_eq!(validation.class_counts(), vec![20, 10, 2]);
    assert_eq!(train.class_counts(), vec![80, 40, 8]);
    assert_eq!(train.labels, ds.labels);
    assert_eq!(validation.labels, ds.labels);
    let mut lines: Vec<usize> = train
        .examples
        .iter()
        .chain(&validation.examples)
        .map(|e| e.line)
        .collect();
    let train_lines: Vec<usize> = train.examples.iter().map(|e| e.line).collect();
    assert!(
        train_lines.windows(2).all(|w| w[0] < w[1]),
        "train keeps the original order"
    );
    lines.sort_unstable();
    assert_eq!(lines, (1..=160).collect::<Vec<_>>());
}

#[test]
fn split_leaves_every_class_in_train() {
    let ds = synthetic(&[3, 2, 5]);
    let (train, validation) = stratified_split(&ds, 0.4, 3).unwrap();
    assert!(
        train.class_counts().iter().all(|&c| c >= 1),
        "{:?}",
        train.class_counts()
    );
    assert_eq!(validation.class_counts(), vec![1, 1, 2]);
}

#[test]
fn split_rejects_bad_fractions() {
    let ds = synthetic(&[10, 10]);
    for fraction in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
        let err = stratified_split(&ds, fraction, 0).unwrap_err();
        assert_eq!(err.diagnostics[0].line, 0);
        assert!(
            err.diagnostics[0].message.contains("out of range"),
            "{fraction}: {err}"
        );
    }
}

#[test]
fn split_rejects_a_class_that_would_vanish_from_train() {
    let ds = synthetic(&[10, 1]);
    let err = stratified_split(&ds, 0.5, 0).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    assert!(
        err.diagnostics[0]
            .message
            .contains("class `c1` has 1 example"),
        "{err}"
    );
    let with_empty_class = Dataset {
        labels: strings(&["c0", "c1", "c2"]),
        ..synthetic(&[10, 10])
    };
    let err = stratified_split(&with_empty_class, 0.2, 0).unwrap_err();
    assert!(
        err.diagnostics[0]
            .message
            .contains("class `c2` has no examples"),
        "{err}"
    );
}

#[test]
fn split_rejects_an_empty_validation_part() {
    let ds = synthetic(&[2, 2]);
    let err = stratified_split(&ds, 0.1, 0).unwrap_err();
    assert!(
        err.diagnostics[0].message.contains("no validation example"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Real files
// ---------------------------------------------------------------------------------------------

#[test]
fn notebook_sentences() {
    let ds = parse_ok(&repo_file("data/notebook.tsv"));
    assert_eq!(ds.len(), 10);
    assert_eq!(ds.labels, strings(&["0", "1"]));
    assert_eq!(ds.class_counts(), vec![5, 5]);
    let (train, validation) = stratified_split(&ds, 0.2, 42).unwrap();
    assert_eq!(
        (train.class_counts(), validation.class_counts()),
        (vec![4, 4], vec![1, 1])
    );
}

#[test]
fn sst2_dev() {
    let ds = parse_ok(&shared_data("sst2/dev.tsv"));
    assert_eq!(ds.len(), 872);
    assert_eq!(ds.labels, strings(&["0", "1"]));
    assert_eq!(ds.class_counts(), vec![428, 444]);
}

#[test]
fn sst2_train_parses_quickly() {
    let text = shared_data("sst2/train.tsv");
    let start = Instant::now();
    let train = parse_ok(&text);
    let elapsed = start.elapsed();
    assert_eq!(train.len(), 67_349);
    assert_eq!(train.labels, strings(&["0", "1"]));
    // Generous bound: this runs unoptimised-ish in `cargo test`; release is far faster.
    assert!(
        elapsed.as_secs_f64() < 3.0,
        "parsing SST-2 train took {elapsed:?}"
    );
    let dev = parse_with_labels(&shared_data("sst2/dev.tsv"), &train.labels).unwrap();
    assert_eq!(dev.len(), 872);
}

// Banking77 as Python's csv module reads it (the reference reader). The counts and checksums
// below were computed with Python 3.11's csv module, not with this parser:
//
//   import csv, collections
//   def records(path):
//       with open(path, newline='', encoding='utf-8') as f:
//           rows = list(csv.reader(f, delimiter='\t'))
//       assert rows[0] == ['text', 'label']
//       return [(text.strip(), label.strip()) for text, label in rows[1:]]
//   def fnv1a64(records):        # over text, NUL, label, NUL of every record in order
//       h = 0xcbf29ce484222325
//       for text, label in records:
//           for b in text.encode() + b'\0' + label.encode() + b'\0':
//               h = ((h ^ b) * 0x100000001b3) % 2**64
//       return h
//   train, test = records('train.tsv'), records('test.tsv')
//   counts = [collections.Counter(l for _, l in r) for r in (train, test)]
//   # len(train) == 9003, len(test) == 3080; the table: (label, counts[0][label],
//   # counts[1][label]) for label in sorted(counts[0]); the checksums: fnv1a64(train/test).
//
// Python's `str.strip` and Rust's `str::trim` agree on these files (no text starts or ends
// with whitespace outside ' ', '\t', '\n').

/// (label, examples in train.tsv, examples in test.tsv), labels in sorted order.
const BANKING_CLASS_COUNTS: [(&str, usize, usize); 77] = [
    ("Refund_not_showing_up", 146, 40),
    ("activate_my_card", 143, 40),
    ("age_limit", 99, 40),
    ("apple_pay_or_google_pay", 113, 40),
    ("atm_support", 78, 40),
    ("automatic_top_up", 114, 40),
    ("balance_not_updated_after_bank_transfer", 154, 40),
    ("balance_not_updated_after_cheque_or_cash_deposit", 163, 40),
    ("beneficiary_not_allowed", 140, 40),
    ("cancel_transfer", 141, 40),
    ("card_about_to_expire", 116, 40),
    ("card_acceptance", 53, 40),
    ("card_arrival", 138, 40),
    ("card_delivery_estimate", 101, 40),
    ("card_linking", 125, 40),
    ("card_not_working", 101, 40),
    ("card_payment_fee_charged", 168, 40),
    ("card_payment_not_recognised", 151, 40),
    ("card_payment_wrong_exchange_rate", 150, 40),
    ("card_swallowed", 55, 40),
    ("cash_withdrawal_charge", 159, 40),
    ("cash_withdrawal_not_recognised", 144, 40),
    ("change_pin", 110, 40),
    ("compromised_card", 77, 40),
    ("contactless_not_working", 32, 40),
    ("country_support", 116, 40),
    ("declined_card_payment", 138, 40),
    ("declined_cash_withdrawal", 156, 40),
    ("declined_transfer", 120, 40),
    ("direct_debit_payment_not_recognised", 164, 40),
    ("disposable_card_limits", 109, 40),
    ("edit_personal_details", 109, 40),
    ("exchange_charge", 109, 40),
    ("exchange_rate", 101, 40),
    ("exchange_via_app", 106, 40),
    ("extra_charge_on_statement", 149, 40),
    ("failed_transfer", 123, 40),
    ("fiat_currency_support", 113, 40),
    ("get_disposable_virtual_card", 87, 40),
    ("get_physical_card", 96, 40),
    ("getting_spare_card", 116, 40),
    ("getting_virtual_card", 88, 40),
    ("lost_or_stolen_card", 74, 40),
    ("lost_or_stolen_phone", 109, 40),
    ("order_physical_card", 108, 40),
    ("passcode_forgotten", 95, 40),
    ("pending_card_payment", 143, 40),
    ("pending_cash_withdrawal", 129, 40),
    ("pending_top_up", 134, 40),
    ("pending_transfer", 133, 40),
    ("pin_blocked", 104, 40),
    ("receiving_money", 86, 40),
    ("request_refund", 152, 40),
    ("reverted_card_payment?", 145, 40),
    ("supported_cards_and_currencies", 116, 40),
    ("terminate_account", 97, 40),
    ("top_up_by_bank_transfer_charge", 100, 40),
    ("top_up_by_card_charge", 103, 40),
    ("top_up_by_cash_or_cheque", 103, 40),
    ("top_up_failed", 130, 40),
    ("top_up_limits", 87, 40),
    ("top_up_reverted", 131, 40),
    ("topping_up_by_card", 93, 40),
    ("transaction_charged_twice", 157, 40),
    ("transfer_fee_charged", 155, 40),
    ("transfer_into_account", 102, 40),
    ("transfer_not_received_by_recipient", 154, 40),
    ("transfer_timing", 115, 40),
    ("unable_to_verify_identity", 92, 40),
    ("verify_my_identity", 94, 40),
    ("verify_source_of_funds", 102, 40),
    ("verify_top_up", 113, 40),
    ("virtual_card_not_working", 37, 40),
    ("visa_or_mastercard", 121, 40),
    ("why_verify_identity", 109, 40),
    ("wrong_amount_of_cash_received", 162, 40),
    ("wrong_exchange_rate_for_cash_withdrawal", 147, 40),
];
const BANKING_TRAIN_CHECKSUM: u64 = 0x251d_737f_c7d0_23a3;
const BANKING_TEST_CHECKSUM: u64 = 0x8178_6a15_92b2_552a;

/// FNV-1a (64 bit) over text, NUL, label name, NUL of every example in order.
fn fnv1a64(ds: &Dataset) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for example in &ds.examples {
        let label = &ds.labels[example.label];
        for bytes in [example.text.as_bytes(), b"\0", label.as_bytes(), b"\0"] {
            for &byte in bytes {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }
    hash
}

fn check_banking_classes(ds: &Dataset, column: fn(&(&str, usize, usize)) -> usize) {
    let expected_labels: Vec<String> = BANKING_CLASS_COUNTS
        .iter()
        .map(|(label, _, _)| label.to_string())
        .collect();
    let expected_counts: Vec<usize> = BANKING_CLASS_COUNTS.iter().map(column).collect();
    assert_eq!(ds.labels, expected_labels);
    assert_eq!(ds.class_counts(), expected_counts);
}

#[test]
fn banking_train_loads_every_record_as_python_csv_reads_it() {
    let text = shared_data("banking/train.tsv");
    let mut times = Vec::new();
    let mut ds = None;
    for _ in 0..5 {
        let start = Instant::now();
        let parsed = parse_labelled_text(&text).unwrap_or_else(|err| panic!("{err}"));
        ds = Some(parsed);
        times.push(start.elapsed());
    }
    times.sort();
    eprintln!("banking/train.tsv parse time, median of 5: {:?}", times[2]);
    let ds = ds.unwrap();
    assert_eq!(ds.len(), 9003);
    assert_eq!(ds.labels.len(), 77);
    check_banking_classes(&ds, |row| row.1);
    assert_eq!(
        fnv1a64(&ds),
        BANKING_TRAIN_CHECKSUM,
        "texts or labels differ from Python's csv"
    );

    // The 10 quoted records with line breaks, spot-checked (texts as Python reads them,
    // trimmed), each at the line where it starts; and the record right after the longest.
    let at = |line: usize| {
        ds.examples
            .iter()
            .find(|e| e.line == line)
            .unwrap_or_else(|| panic!("no example starts on line {line}"))
    };
    let multi_line: [(usize, &str, &str); 5] = [
        (273, "How do I unblock my PIN?", "pin_blocked"),
        (2148, "I can't seem to be able to use my card", "card_not_working"),
        (
            7090,
            "I have an account at another bank, but I want to transfer some of the money to my account here.\n.",
            "transfer_into_account",
        ),
        (
            7296,
            "There are a few transaction that I don't recognize, I think someone managed to get my card details and use it.",
            "compromised_card",
        ),
        (7866, "Which cash machines will allow me to change my PIN?", "change_pin"),
    ];
    for (line, text, label) in multi_line {
        let example = at(line);
        assert_eq!(example.text, text, "line {line}");
        assert_eq!(ds.labels[example.label], label, "line {line}");
    }
    assert_eq!(at(2153).text, "I was double-charged for a transaction");
    let starts: Vec<usize> = ds.examples.iter().map(|e| e.line).collect();
    assert_eq!(starts.first(), Some(&2));
    assert_eq!(
        starts.last(),
        Some(&9017),
        "the last record starts on the last line"
    );
    assert!(!starts.contains(&2149) && !starts.contains(&7091));

    let again = parse_with_labels(&text, &ds.labels).unwrap();
    assert_eq!(again, ds);
}

#[test]
fn banking_test_loads_every_record_as_python_csv_reads_it() {
    let ds =
        parse_labelled_text(&shared_data("banking/test.tsv")).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ds.len(), 3080);
    assert_eq!(ds.labels.len(), 77);
    check_banking_classes(&ds, |row| row.2);
    assert_eq!(
        fnv1a64(&ds),
        BANKING_TEST_CHECKSUM,
        "texts or labels differ from Python's csv"
    );
    // 11 texts are written quoted, pandas-style (`"What do I do if an ATM ""stole"" my card?"`).
    let line_815 = ds.examples.iter().find(|e| e.line == 815).unwrap();
    assert_eq!(line_815.text, "What do I do if an ATM \"stole\" my card?");
    let again = parse_with_labels(&shared_data("banking/test.tsv"), &ds.labels).unwrap();
    assert_eq!(again, ds);
}

#[test]
fn diagnostics_and_datasets_serialize_for_the_web_shell() {
    let err = parse_labelled_text("text\tlabel\noops\n").unwrap_err();
    let json = serde_json::to_string(&err.diagnostics[0]).unwrap();
    assert!(json.starts_with("{\"line\":2,\"message\":"), "{json}");
    let ds = parse_ok("1\ta\n0\tb\n");
    let json = serde_json::to_string(&ds).unwrap();
    assert!(json.contains("\"labels\":[\"0\",\"1\"]"), "{json}");
}
