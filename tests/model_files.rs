//! What a checkpoint folder says is checked before it is used (config.json's numbers against
//! each other and against the tensors, tokenizer.json's [CLS] … [SEP]), and a sentence with
//! nothing to classify is refused by line — never a panic, a hang or a silently wrong model.
use crate::common;

use common::*;
use serde_json::{json, Value};
use webtune::config::BertConfig;
use webtune::data::parse_labelled_text;
use webtune::tokenize::TextEncoder;
use webtune::{Session, Strategy, TrainOptions};

/// The fuzz fixtures: a 1-layer, hidden-8 BERT config and its 16-word tokenizer.
fn tiny_config() -> Value {
    serde_json::from_slice(&read(repo_path("tests/data/fuzz/fixtures/config.json"))).unwrap()
}

fn tiny_tokenizer() -> Vec<u8> {
    read(repo_path("tests/data/fuzz/fixtures/tokenizer.json"))
}

fn weights_for(config: &Value) -> Vec<u8> {
    webtune::checkpoint::random_bert(&BertConfig::from_json(config.to_string().as_bytes()).unwrap(), 0)
}

fn load_error(config: &Value, tokenizer: &[u8], weights: &[u8]) -> String {
    match Session::load(config.to_string().as_bytes(), tokenizer, weights) {
        Ok(_) => panic!("loaded although it should not: {config}"),
        Err(e) => e.to_string(),
    }
}

fn with(mut config: Value, field: &str, value: Value) -> Value {
    config[field] = value;
    config
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{message:?} should mention {part:?}");
    }
}

#[test]
fn config_numbers_out_of_range_are_refused_naming_the_field() {
    let cases: &[(&str, Value)] = &[
        ("hidden_dropout_prob", json!(1.0)),
        ("hidden_dropout_prob", json!(-0.1)),
        ("attention_probs_dropout_prob", json!(1.5)),
        ("classifier_dropout", json!(1.0)),
        ("hidden_size", json!(0)),
        ("intermediate_size", json!(0)),
        ("num_attention_heads", json!(0)),
        ("num_hidden_layers", json!(0)),
        // Millions of tiny layers fit the parameter limit but not the tensor walk (fuzzing).
        ("num_hidden_layers", json!(220_220)),
        ("type_vocab_size", json!(0)),
        ("max_position_embeddings", json!(0)),
        ("vocab_size", json!(0)),
        ("vocab_size", json!(1u64 << 40)),
        ("layer_norm_eps", json!(0.0)),
        ("initializer_range", json!(-1.0)),
        ("pad_token_id", json!(16)),
    ];
    for (field, value) in cases {
        let config = with(tiny_config(), field, value.clone());
        let err = BertConfig::from_json(config.to_string().as_bytes()).expect_err(&format!("{field} = {value} must be refused"));
        assert_mentions(&err.to_string(), &["config.json", field]);
    }
    // Heads must divide the hidden size.
    let err = BertConfig::from_json(with(tiny_config(), "num_attention_heads", json!(3)).to_string().as_bytes()).unwrap_err();
    assert_mentions(&err.to_string(), &["config.json", "hidden_size 8", "num_attention_heads 3"]);
    // A value of the wrong type names its field (serde alone names a line and column).
    for (field, value) in [("vocab_size", json!(-5)), ("hidden_size", json!("384")), ("hidden_dropout_prob", json!([0.1]))] {
        let err = BertConfig::from_json(with(tiny_config(), field, value).to_string().as_bytes()).unwrap_err();
        assert_mentions(&err.to_string(), &["config.json", field]);
    }
    // The real configurations pass.
    BertConfig::from_json(&read(minilm_dir().join("config.json"))).unwrap();
    BertConfig::from_json(tiny_config().to_string().as_bytes()).unwrap();
    BertConfig::from_json(serde_json::to_string(&BertConfig::bert_base()).unwrap().as_bytes()).unwrap();
}

#[test]
fn config_sizes_must_match_the_tensors() {
    let weights = weights_for(&tiny_config());
    let tokenizer = tiny_tokenizer();
    Session::load(tiny_config().to_string().as_bytes(), &tokenizer, &weights).expect("the matching config loads");
    for (field, value, tensor) in [
        ("vocab_size", 20, "word_embeddings"),
        ("max_position_embeddings", 32, "position_embeddings"),
        ("type_vocab_size", 3, "token_type_embeddings"),
        ("intermediate_size", 32, "intermediate.dense"),
    ] {
        let err = load_error(&with(tiny_config(), field, json!(value)), &tokenizer, &weights);
        assert_mentions(&err, &["model.safetensors", tensor, "config.json", field, &format!("is {value}")]);
    }
}

#[test]
fn a_config_with_fewer_layers_than_the_checkpoint_is_refused_listing_the_unused_tensors() {
    let two_layers = with(tiny_config(), "num_hidden_layers", json!(2));
    let weights = weights_for(&two_layers);
    let err = load_error(&tiny_config(), &tiny_tokenizer(), &weights);
    assert_mentions(&err, &["config.json", "num_hidden_layers is 1", "2 layers", "bert.encoder.layer.1.", "Set num_hidden_layers to 2"]);
    Session::load(two_layers.to_string().as_bytes(), &tiny_tokenizer(), &weights).expect("the right count loads");
}

/// all-MiniLM-L6-v2's tokenizer.json with its post_processor replaced.
fn minilm_tokenizer_with(post_processor: Value) -> Vec<u8> {
    let mut tokenizer: Value = serde_json::from_slice(&read(minilm_dir().join("tokenizer.json"))).unwrap();
    tokenizer["post_processor"] = post_processor;
    serde_json::to_vec(&tokenizer).unwrap()
}

#[test]
fn a_tokenizer_without_cls_and_sep_is_refused() {
    // all-MiniLM-L6-v2's own tokenizer.json has a TemplateProcessing "[CLS] $A [SEP]"; older
    // BERT files have a BertProcessing: both put [CLS] first.
    let original: Value = serde_json::from_slice(&read(minilm_dir().join("tokenizer.json"))).unwrap();
    assert_eq!(original["post_processor"]["type"], "TemplateProcessing");
    TextEncoder::from_bytes(&read(minilm_dir().join("tokenizer.json")), 128, 0).expect("MiniLM's tokenizer");
    let bert_processing = minilm_tokenizer_with(json!({"type": "BertProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101]}));
    let encoder = TextEncoder::from_bytes(&bert_processing, 128, 0).expect("a BertProcessing tokenizer");
    assert_eq!(encoder.encode_ids("hello").unwrap(), vec![101, 7592, 102]);

    for (what, post_processor) in [
        ("none", Value::Null),
        ("a ByteLevel", json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true})),
        ("a TemplateProcessing", json!({"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}], "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}], "special_tokens": {"[SEP]": {"id": "[SEP]", "ids": [102], "tokens": ["[SEP]"]}}})),
    ] {
        let tokenizer = minilm_tokenizer_with(post_processor);
        let err = TextEncoder::from_bytes(&tokenizer, 128, 0).err().unwrap_or_else(|| panic!("post_processor {what} must be refused")).to_string();
        assert_mentions(&err, &["tokenizer.json", "[CLS]", "[SEP]", &format!("post_processor is {what}"), "came with the checkpoint"]);
        let model = minilm_dir();
        let load = Session::load(&read(model.join("config.json")), &tokenizer, &read(model.join("model.safetensors")));
        assert!(load.is_err(), "Session::load must refuse it too");
    }
}

#[test]
fn a_sentence_with_no_words_is_refused_by_line() {
    let session = minilm();
    // Only a zero-width space: the data parser keeps it (it is not whitespace), the tokenizer
    // drops it, leaving [CLS] [SEP] and nothing to classify.
    let data = parse_labelled_text("text\tlabel\ngood\t1\n\u{200b}\t0\nbad\t0\n").unwrap();
    let options = TrainOptions { batch_size: 1, ..TrainOptions::default() };
    let err = session.plan(&[Strategy::Full], &data, None, &options).err().expect("plan refuses it").to_string();
    assert_mentions(&err, &["training data, line 3", "\\u{200b}", "no words"]);
    let err = session.start_run(Strategy::Full, &data, None, &options).err().expect("a run refuses it too").to_string();
    assert_mentions(&err, &["sentence 2 of 3", "no words"]);
    // In validation data too, and in predict / encode.
    let train = parse_labelled_text("text\tlabel\ngood\t1\nbad\t0\n").unwrap();
    let val = webtune::data::parse_with_labels("text\tlabel\n\u{2060}\u{200b}\t1\n", &train.labels).unwrap();
    let err = session.plan(&[Strategy::Full], &train, Some(&val), &options).err().expect("plan refuses it").to_string();
    assert_mentions(&err, &["validation data, line 2", "no words"]);
    assert!(session.encode("\u{200b}").is_err());
    // A long sentence cut to max_len 2 keeps only [CLS] [SEP] but had words: that is allowed.
    let encoder = TextEncoder::from_bytes(&read(minilm_dir().join("tokenizer.json")), 2, 0).unwrap();
    assert_eq!(encoder.encode_ids("hello world").unwrap(), vec![101, 102]);
}

#[test]
fn kernels_accept_empty_rows() {
    // A batch whose rows have no tokens used to reach `chunks_mut(0)`: "chunk size must be
    // non-zero" on a rayon pool thread, and the page's worker hung.
    let mut empty: Vec<f32> = Vec::new();
    webtune::kernels::for_rows(&mut empty, 0, |_, _| unreachable!("no rows"));
    webtune::kernels::add_column_sums(&mut [], &[]);
}

#[test]
fn the_reported_case_is_refused_at_load_instead_of_panicking_in_training() {
    // Model files whose tokenizer.json lost its post_processor, a sentence that is only a
    // zero-width space, batch size 1: that sentence's batch had no token at all, and training
    // panicked ("chunk size must be non-zero") on a pool thread: in the page, a hung worker.
    let model = minilm_dir();
    let tokenizer = minilm_tokenizer_with(Value::Null);
    let loaded = Session::load(&read(model.join("config.json")), &tokenizer, &read(model.join("model.safetensors")));
    let err = match loaded {
        Err(e) => e.to_string(),
        Ok(session) => {
            // Only with the check gone: train as the report did, to show what happens then.
            let data = parse_labelled_text("text\tlabel\ngood\t1\n\u{200b}\t0\nbad\t0\n").unwrap();
            let options = TrainOptions { batch_size: 1, epochs: 1, ..TrainOptions::default() };
            let mut run = session.start_run(Strategy::Full, &data, None, &options).expect("run starts");
            while !run.finished() {
                run.step();
            }
            panic!("a tokenizer without [CLS] … [SEP] was loaded and trained on");
        }
    };
    assert_mentions(&err, &["tokenizer.json", "post_processor is none"]);
}
