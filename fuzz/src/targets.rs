//! What each fuzz target does with one input. The fuzz targets (`fuzz/fuzz_targets/`) and the
//! regression test that replays every input fuzzing once broke us on (`tests/fuzz_regressions.rs`,
//! which includes this file by path) share it, so a regression input is replayed exactly.
//!
//! Each function must return, whatever the bytes: any `Ok` or `Err` is fine, a panic, a hang or
//! an abort is the bug. Where an `Ok` promises something (a parsed dataset has two classes…),
//! that is asserted too.
use std::sync::OnceLock;

use webtune::config::BertConfig;
use webtune::data::{self, Dataset};
use webtune::tokenize::{self, TextEncoder};
use webtune::{prepare_data, Session, Strategy, TrainOptions};

/// A 1-layer, hidden-8 BERT with a 16-word vocabulary (its tokenizer below), for inputs that
/// need a model: loading must stay fast for fuzzing to get anywhere.
pub const TINY_CONFIG: &[u8] = include_bytes!("../../tests/data/fuzz/fixtures/config.json");
pub const TINY_TOKENIZER: &[u8] = include_bytes!("../../tests/data/fuzz/fixtures/tokenizer.json");

/// Every target by name (the folder names under `fuzz/corpus/` and `tests/data/fuzz/`).
pub const TARGETS: [(&str, fn(&[u8])); 6] = [
    ("data", data),
    ("config", config),
    ("tokenizer", tokenizer),
    ("checkpoint", checkpoint),
    ("options", options),
    ("record", record),
];

/// Training text, then (after the first NUL byte, if any) validation text: both parsers and
/// `prepare_data` with that validation text and with a validation fraction.
pub fn data(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let (train, val) = text.split_once('\0').unwrap_or((text, ""));
    match data::parse_labelled_text(train) {
        Ok(ds) => {
            assert!(ds.labels.len() >= 2 && !ds.is_empty(), "a parsed training set has two classes and examples");
            assert!(ds.examples.iter().all(|e| e.label < ds.labels.len() && e.line >= 1));
            if let Ok(v) = data::parse_with_labels(val, &ds.labels) {
                assert_eq!(v.labels, ds.labels);
            }
        }
        Err(e) => assert!(!e.diagnostics.is_empty(), "an error names at least one problem"),
    }
    let _ = data::parse_with_labels(train, &["0".to_string(), "1".to_string()]);
    let seed = bytes.len() as u64;
    if let Ok(prepared) = prepare_data(train, Some(val), None, seed) {
        assert!(prepared.train.labels.len() >= 2);
    }
    let fraction = (bytes.first().copied().unwrap_or(0) % 12) as f64 / 10.0; // 0 and ≥ 1 included
    if let Ok(prepared) = prepare_data(train, None, Some(fraction), seed) {
        let val = prepared.validation.expect("a split has validation data");
        assert!(!val.is_empty() && !prepared.train.is_empty());
    }
}

/// config.json: parsing and checking, then what the model's size is computed from.
pub fn config(bytes: &[u8]) {
    if let Ok(config) = BertConfig::from_json(bytes) {
        assert!(config.head_dim() * config.num_attention_heads == config.hidden_size);
        let _ = webtune::plan::model_bytes(&config);
    }
}

/// tokenizer.json: the constructor (with its [CLS] … [SEP] check), then encoding and batching.
pub fn tokenizer(bytes: &[u8]) {
    let _ = tokenize::declared_max_len(bytes);
    let _ = tokenize::with_declared_max_len(bytes, 8);
    let Ok(encoder) = TextEncoder::from_bytes(bytes, 16, 0) else { return };
    let texts: Vec<String> = ["good movie", "\u{200b}", "", "a b c d e f g h i j k l m n o p q r s", "ß\u{301}"].map(String::from).into();
    let encoded: Vec<Vec<u32>> = texts.iter().filter_map(|t| encoder.encode_ids(t).ok()).collect();
    for ids in &encoded {
        assert!(ids.len() >= 3 && ids.len() <= 16, "[CLS], a word and [SEP], at most max_len: {ids:?}");
    }
    let refs: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
    let batch = encoder.batch(&refs, false);
    assert_eq!(batch.ids.len(), batch.size * batch.seq_len);
}

/// model.safetensors with the tiny config and tokenizer: the safetensors header and tensor
/// table, every tensor's name, dtype and shape; when it loads, the model runs once.
pub fn checkpoint(bytes: &[u8]) {
    let Ok(session) = Session::load(TINY_CONFIG, TINY_TOKENIZER, bytes) else { return };
    let info = session.info();
    assert_eq!(info.hidden_size, 8);
    let encoding = session.encode("good movie").expect("the tiny model encodes a sentence");
    assert!(encoding.pooled.len() == 8);
    if info.labels.is_some() {
        session.predict(&["a great movie".to_string()]).expect("a loaded head predicts");
    }
}

/// The JSON options a page or CLI sends (`TrainOptions` through serde), then a plan and the
/// first steps of each strategy on the tiny model, so every option's value is used.
pub fn options(bytes: &[u8]) {
    let Ok(options) = serde_json::from_slice::<TrainOptions>(bytes) else { return };
    let (session, train, val) = tiny_model_and_data();
    let strategies = [Strategy::Frozen, Strategy::Top(1), Strategy::Full, Strategy::Lora(2)];
    let _ = session.plan(&strategies, train, Some(val), &options);
    for strategy in strategies {
        let Ok(mut run) = session.start_run(strategy, train, Some(val), &options) else { continue };
        for _ in 0..3 {
            if run.finished() {
                break;
            }
            run.step();
        }
    }
}

/// A results record (the page's Load results checks its head in the core, `check_record`):
/// a head that reads back has options the core accepts.
pub fn record(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    if let Ok(head) = webtune::record::read_record_head(text) {
        head.options.validate().expect("a record head that reads back has valid options");
    }
}

fn tiny_model_and_data() -> &'static (Session, Dataset, Dataset) {
    static TINY: OnceLock<(Session, Dataset, Dataset)> = OnceLock::new();
    TINY.get_or_init(|| {
        let config = BertConfig::from_json(TINY_CONFIG).expect("the tiny config is valid");
        let weights = webtune::checkpoint::random_bert(&config, 0);
        let session = Session::load(TINY_CONFIG, TINY_TOKENIZER, &weights).expect("the tiny model loads");
        let train = data::parse_labelled_text("label\ttext\n1\tgood movie\n0\tbad movie\n1\ta great movie !\n0\tthe movie was awful\n1\tgreat\n0\tawful .\n")
            .expect("tiny training data");
        let val = data::parse_with_labels("label\ttext\n1\tgood\n0\tbad\n", &train.labels).expect("tiny validation data");
        (session, train, val)
    })
}
