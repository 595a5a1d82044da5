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
    ("text after closing quote (CSV)", "text,label\n\"a\"b,1\nok,0\n", 2, "unexpected text after the closing quote of field 1"),
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
    for (name, input, line, expected) in MALFORMED {
        let found = diagnostics(input);
        assert!(
            found
                .iter()
                .any(|d| d.line == *line && d.message.contains(expected)),
            "{name}: expected line {line} containing {expected:?}, got {found:#?}"
        );
    }
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
    let input = "text,label\n\"Hello, world\",1\n\"She said \"\"no\"\"\",0\n\"two\nlines\",1\n  \"spaced\" , 0\nplain \"inner\" quotes,1\n";
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

#[test]
fn tsv_takes_quotes_literally_unless_the_whole_field_is_quoted() {
    let ds = parse_ok(
        "text\tlabel\n\"quoted\" start\t1\nunbalanced \" quote\t0\n\"a \"lone\" one\"\t0\n",
    );
    assert_eq!(
        ds.texts(),
        strings(&[
            "\"quoted\" start",
            "unbalanced \" quote",
            "\"a \"lone\" one\""
        ])
    );
    let ds = parse_ok(
        "text\tlabel\n\"Why does it say \"\"pending\"\"?\"\t1\n\"plain, quoted\"\t\"0\"\n",
    );
    assert_eq!(
        ds.texts(),
        strings(&["Why does it say \"pending\"?", "plain, quoted"])
    );
    assert_eq!(ds.labels, strings(&["0", "1"]));
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

#[test]
fn banking_train_reports_exactly_the_broken_lines() {
    // The lines without exactly one tab, found with:
    //   awk -F'\t' 'NF!=2 {print NR}' ../shared/data/banking/train.tsv
    // Each is part of a text with embedded line breaks: 11 lines with one field and the two
    // blank lines 2150-2151 inside the record that starts at 2148.
    const BROKEN: [usize; 13] = [
        273, 2148, 2149, 2150, 2151, 2546, 4459, 4726, 6061, 6584, 7090, 7296, 7866,
    ];
    let err = parse_labelled_text(&shared_data("banking/train.tsv")).unwrap_err();
    let lines: Vec<usize> = err.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, BROKEN, "{err}");
    assert!(err.diagnostics[0].message.contains("the label is missing"));
    assert!(err.diagnostics[3]
        .message
        .contains("blank line inside a broken record"));
}

#[test]
fn banking_test_has_77_named_classes() {
    let ds = parse_ok(&shared_data("banking/test.tsv"));
    assert_eq!(ds.len(), 3080);
    assert_eq!(ds.labels.len(), 77);
    assert!(
        ds.labels.windows(2).all(|w| w[0] < w[1]),
        "named labels are sorted"
    );
    assert!(ds.labels.contains(&"card_arrival".to_string()));
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
