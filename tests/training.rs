//! Training behaviour on the real all-MiniLM-L6-v2: which tensors train under each strategy,
//! the notebook experiment, determinism, export round trip and option errors.
mod common;

use std::collections::HashMap;

use candle_core::Tensor;
use common::*;
use webtune::data::parse_labelled_text;
use webtune::events::Event;
use webtune::{Session, Strategy, TrainOptions};

fn to_vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

type Values = HashMap<String, Vec<f32>>;

/// Tensor values by transformers name before a run and after its first optimizer step, and the
/// names of the trainable ones.
fn before_and_after_one_step(session: &Session, strategy: Strategy) -> (Values, Values, Vec<String>) {
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let mut run = session.start_run(strategy, &data, None, &TrainOptions::default()).unwrap();
    let before: HashMap<_, _> = run.named_tensors().iter().map(|(n, t)| (n.clone(), to_vec(t))).collect();
    assert!(matches!(run.step(), Event::Step { .. }));
    let after: HashMap<_, _> = run.named_tensors().iter().map(|(n, t)| (n.clone(), to_vec(t))).collect();
    (before, after, run.trainable_names())
}

fn changed(before: &HashMap<String, Vec<f32>>, after: &HashMap<String, Vec<f32>>) -> Vec<String> {
    let mut names: Vec<String> = before.keys().filter(|n| before[*n] != after[*n]).cloned().collect();
    names.sort();
    names
}

#[test]
fn full_gives_every_parameter_a_gradient_and_changes_it() {
    let session = minilm();
    let texts: Vec<String> = ["I love this product!", "Worst experience ever."].map(String::from).to_vec();
    let norms = webtune::train::one_step_gradient_norms(&session, Strategy::Full, &texts, &[1, 0]).unwrap();
    assert_eq!(norms.len(), 6 * 16 + 5 + 2 + 2, "every BertModel tensor + classifier");
    for (name, norm) in &norms {
        assert!(norm.is_finite(), "{name}: gradient norm {norm}");
        // Key biases: the true gradient is 0 (softmax is shift-invariant); only float noise.
        if !name.ends_with("attention.self.key.bias") {
            assert!(*norm > 1e-9, "{name} got no gradient ({norm})");
        }
    }
    let (before, after, trainable) = before_and_after_one_step(&session, Strategy::Full);
    assert_eq!(trainable.len(), before.len());
    let unchanged: Vec<&String> = before.keys().filter(|n| before[*n] == after[*n] && !n.ends_with("key.bias")).collect();
    assert!(unchanged.is_empty(), "full: these did not change: {unchanged:?}");
}

#[test]
fn frozen_changes_only_the_classifier() {
    let session = minilm();
    let (before, after, trainable) = before_and_after_one_step(&session, Strategy::Frozen);
    assert_eq!(trainable, vec!["classifier.weight", "classifier.bias"]);
    assert_eq!(changed(&before, &after), vec!["classifier.bias", "classifier.weight"]);
    // Bit-identical to the pre-trained weights, not just to the run's own copy.
    let base = session.pretrained().weights.named();
    for (name, tensor) in base {
        assert_eq!(to_vec(&tensor), after[&format!("bert.{name}")], "{name} moved under frozen");
    }
}

#[test]
fn top2_changes_exactly_the_top_two_layers_pooler_and_classifier() {
    let session = minilm();
    let (before, after, trainable) = before_and_after_one_step(&session, Strategy::Top(2));
    let expected: Vec<String> = before
        .keys()
        .filter(|n| n.starts_with("bert.encoder.layer.4.") || n.starts_with("bert.encoder.layer.5.") || n.starts_with("bert.pooler.") || n.starts_with("classifier."))
        .cloned()
        .collect();
    let mut trainable_sorted = trainable.clone();
    trainable_sorted.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(trainable_sorted, expected_sorted);
    let expected_changed: Vec<String> = expected_sorted.into_iter().filter(|n| !n.ends_with("key.bias")).collect();
    let actually_changed: Vec<String> = changed(&before, &after).into_iter().filter(|n| !n.ends_with("key.bias")).collect();
    assert_eq!(actually_changed, expected_changed);
}

/// Runs to the end; returns train accuracy per epoch and every step's loss.
fn run_to_end(session: &Session, strategy: Strategy, options: &TrainOptions) -> (Vec<f64>, Vec<f64>) {
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let mut run = session.start_run(strategy, &data, None, options).unwrap();
    let (mut accuracies, mut losses) = (Vec::new(), Vec::new());
    loop {
        match run.step() {
            Event::Step { loss, .. } => losses.push(loss),
            Event::Epoch { train_accuracy, .. } => accuracies.push(train_accuracy),
            Event::Done { .. } => return (accuracies, losses),
            Event::Error { message } => panic!("{message}"),
        }
    }
}

#[test]
fn notebook_experiment_full_learns_frozen_does_not() {
    let session = minilm();
    for seed in 0..5 {
        let options = TrainOptions { seed, ..TrainOptions::default() };
        let (full, _) = run_to_end(&session, Strategy::Full, &options);
        assert_eq!(full.len(), 4);
        assert_eq!(full[3], 1.0, "seed {seed}: full fine-tuning reached {full:?}");
        let (frozen, _) = run_to_end(&session, Strategy::Frozen, &options);
        assert!(frozen.iter().all(|&a| a <= 0.6), "seed {seed}: frozen reached {frozen:?}");
    }
}

#[test]
fn frozen_with_a_large_head_learning_rate_learns() {
    let session = minilm();
    let options = TrainOptions { head_learning_rate: Some(1e-2), ..TrainOptions::default() };
    let (accuracies, _) = run_to_end(&session, Strategy::Frozen, &options);
    assert!(accuracies[3] >= 0.9, "frozen with head lr 1e-2 reached {accuracies:?}");
}

#[test]
fn same_seed_same_curve_other_seed_other_curve() {
    let session = minilm();
    let options = TrainOptions { epochs: 1, ..TrainOptions::default() };
    let (_, a) = run_to_end(&session, Strategy::Top(1), &options);
    let (_, b) = run_to_end(&session, Strategy::Top(1), &options);
    assert_eq!(a, b);
    let (_, c) = run_to_end(&session, Strategy::Top(1), &TrainOptions { seed: 1, ..options });
    assert_ne!(a, c);
}

#[test]
fn export_round_trip_gives_the_same_predictions() {
    let session = minilm();
    let data = parse_labelled_text("label\ttext\npositive\tI love this product!\nnegative\tTerrible, I hated it.\npositive\tAbsolutely wonderful service.\nnegative\tWorst experience ever.\n").unwrap();
    let mut run = session.start_run(Strategy::Top(1), &data, None, &TrainOptions { epochs: 2, ..TrainOptions::default() }).unwrap();
    while !run.step().is_done() {}
    let texts: Vec<String> = ["a great day", "an awful mess", "<img src=x onerror=alert(1)>"].map(String::from).to_vec();
    let expected = run.predict(&texts).unwrap();
    let exported = run.export().unwrap();
    let config: serde_json::Value = serde_json::from_slice(&exported.config_json).unwrap();
    assert_eq!(config["architectures"], serde_json::json!(["BertForSequenceClassification"]));
    assert_eq!(config["id2label"], serde_json::json!({"0": "negative", "1": "positive"}));
    assert_eq!(config["label2id"], serde_json::json!({"negative": 0, "positive": 1}));
    assert_eq!(config["num_labels"], 2);
    let reloaded = Session::load(&exported.config_json, &exported.tokenizer_json, &exported.model_safetensors).unwrap();
    assert_eq!(reloaded.info().labels, Some(vec!["negative".to_string(), "positive".to_string()]));
    let got = reloaded.predict(&texts).unwrap();
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.label, e.label);
        let diff = g.probabilities.iter().zip(&e.probabilities).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(diff < 1e-6, "{}: probabilities differ by {diff}", g.text);
    }
    // transformers' BertForSequenceClassification names, no pre-training leftovers.
    let st = safetensors::SafeTensors::deserialize(&exported.model_safetensors).unwrap();
    let names: Vec<String> = st.names().into_iter().map(String::from).collect();
    assert_eq!(names.len(), 6 * 16 + 5 + 2 + 2);
    assert!(names.iter().all(|n| n.starts_with("bert.") || n.starts_with("classifier.")), "{names:?}");
    assert!(names.contains(&"bert.pooler.dense.weight".to_string()));
}

#[test]
fn bad_options_are_refused_with_a_reason() {
    let session = minilm();
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let err = |strategy: Strategy, options: TrainOptions| session.start_run(strategy, &data, None, &options).err().expect("refused").to_string();
    assert!(err(Strategy::Top(7), TrainOptions::default()).contains("the model has 6"));
    assert!(err(Strategy::Full, TrainOptions { learning_rate: -1.0, ..TrainOptions::default() }).contains("learning rate"));
    assert!(err(Strategy::Full, TrainOptions { batch_size: 0, ..TrainOptions::default() }).contains("batch size"));
    assert!(err(Strategy::Full, TrainOptions { max_len: 1000, ..TrainOptions::default() }).contains("512"));
    for bad in ["top:0", "top:x", "partial", ""] {
        assert!(bad.parse::<Strategy>().is_err(), "{bad} accepted");
    }
    assert_eq!("top:3".parse::<Strategy>().unwrap(), Strategy::Top(3));
}

#[test]
fn bad_model_files_are_named() {
    let dir = minilm_dir();
    let config = read(dir.join("config.json"));
    let tokenizer = read(dir.join("tokenizer.json"));
    let err = |c: &[u8], t: &[u8], m: &[u8]| Session::load(c, t, m).err().expect("refused").to_string();
    assert!(err(b"{", &tokenizer, b"").contains("config.json"));
    assert!(err(&config, b"not json", b"").contains("tokenizer.json"));
    assert!(err(&config, &tokenizer, b"garbage").contains("model.safetensors"));
    // A checkpoint of another shape: the mismatching tensor is named with both shapes.
    let tiny = webtune::checkpoint::random_bert(&webtune::config::BertConfig::tiny(), 0);
    let message = err(&config, &tokenizer, &tiny);
    assert!(message.contains("bert.embeddings.word_embeddings.weight") && message.contains("[30522, 32]") && message.contains("[30522, 384]"), "{message}");
}

#[test]
fn bert_base_naming_without_pooler_loads_with_a_note() {
    // bert-base naming (bert. prefix, gamma/beta, cls.* head) with the pooler removed.
    let config = webtune::config::BertConfig::tiny();
    let bytes = webtune::checkpoint::random_bert(&config, 3);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut renamed: Vec<(String, Tensor)> = Vec::new();
    for (name, view) in st.tensors() {
        if name.starts_with("bert.pooler") {
            continue;
        }
        let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta");
        renamed.push((name, Tensor::from_vec(values, view.shape(), &candle_core::Device::Cpu).unwrap()));
    }
    renamed.push(("cls.predictions.bias".into(), Tensor::zeros(config.vocab_size, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap()));
    let bytes = webtune::checkpoint::serialize(&renamed).unwrap();
    let config_json = serde_json::to_vec(&config).unwrap();
    let session = Session::load(&config_json, &read(minilm_dir().join("tokenizer.json")), &bytes).unwrap();
    let info = session.info();
    assert!(!info.has_pooler);
    assert!(info.notes.iter().any(|n| n.contains("no pooler")), "{:?}", info.notes);
}
