//! Training behaviour on the real all-MiniLM-L6-v2: which tensors train under each strategy,
//! the notebook experiment, determinism, export round trip and option errors.
use crate::common;

use std::collections::HashMap;

use candle_core::Tensor;
use common::*;
use webtune::data::parse_labelled_text;
use webtune::events::Event;
use webtune::{Session, Strategy, TrainOptions};

type Values = HashMap<String, Vec<f32>>;

/// Tensor values by transformers name before a run and after its first optimizer step, and the
/// names of the trainable ones.
fn before_and_after_one_step(session: &Session, strategy: Strategy) -> (Values, Values, Vec<String>) {
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let mut run = session.start_run(strategy, &data, None, &TrainOptions::default()).unwrap();
    let before: HashMap<_, _> = run.named_tensors().unwrap().iter().map(|(n, t)| (n.clone(), to_vec(t))).collect();
    next_step(&mut run);
    let after: HashMap<_, _> = run.named_tensors().unwrap().iter().map(|(n, t)| (n.clone(), to_vec(t))).collect();
    (before, after, run.trainable_names())
}

/// Step the run up to and including its next optimizer step (past start and progress events).
fn next_step(run: &mut webtune::Run) -> Event {
    loop {
        match run.step() {
            event @ Event::Step { .. } => return event,
            Event::Start { .. } | Event::Progress { .. } | Event::Embedding { .. } => {}
            other => panic!("expected a training step, got {other:?}"),
        }
    }
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
    let norms = webtune::probe::one_step_gradient_norms(session.pretrained(), Strategy::Full, &texts, &[1, 0]).unwrap();
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
            _ => {}
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
    // Trained on inputs cut at 16 tokens: the export must predict with the same cut.
    let mut run = session.start_run(Strategy::Top(1), &data, None, &TrainOptions { epochs: 2, max_len: 16, ..TrainOptions::default() }).unwrap();
    while !run.step().is_done() {}
    let long = "a great day, ".repeat(20) + "but in the end a terrible, awful, disappointing mess";
    let texts: Vec<String> = vec!["a great day".into(), "an awful mess".into(), "<img src=x onerror=alert(1)>".into(), long];
    let expected = run.predict(&texts).unwrap();
    let exported = run.export().unwrap();
    let config: serde_json::Value = serde_json::from_slice(&exported.config_json).unwrap();
    assert_eq!(config["architectures"], serde_json::json!(["BertForSequenceClassification"]));
    assert_eq!(config["id2label"], serde_json::json!({"0": "negative", "1": "positive"}));
    assert_eq!(config["label2id"], serde_json::json!({"negative": 0, "positive": 1}));
    assert_eq!(config["num_labels"], 2);
    let reloaded = Session::load(&exported.config_json, &exported.tokenizer_json, &exported.model_safetensors).unwrap();
    assert_eq!(reloaded.info().labels, Some(vec!["negative".to_string(), "positive".to_string()]));
    assert_eq!(reloaded.info().max_len, 16, "the export records the max length it was trained with");
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

/// A session on all-MiniLM-L6-v2 whose config.json sets `classifier_dropout` (None: as shipped).
fn minilm_with_classifier_dropout(p: f64) -> Session {
    let dir = minilm_dir();
    let mut config: serde_json::Value = serde_json::from_slice(&read(dir.join("config.json"))).unwrap();
    config["classifier_dropout"] = p.into();
    Session::load(&serde_json::to_vec(&config).unwrap(), &read(dir.join("tokenizer.json")), &read(dir.join("model.safetensors"))).unwrap()
}

fn mean_cross_entropy(logits: &[Vec<f64>], labels: &[usize]) -> f64 {
    let per_example = logits.iter().zip(labels).map(|(row, &label)| {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_sum: f64 = row.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
        log_sum - row[label]
    });
    per_example.sum::<f64>() / labels.len() as f64
}

#[test]
fn frozen_trains_its_head_on_the_encoders_outputs() {
    // One batch of all ten sentences and no classifier dropout: the epoch-1 loss is then exactly
    // the cross-entropy of the initial head on the pre-trained encoder's pooled outputs, which
    // this test computes independently (Session::encode, no cache).
    let session = minilm_with_classifier_dropout(0.0);
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let options = TrainOptions { batch_size: 10, head_learning_rate: Some(1e-2), ..TrainOptions::default() };
    let mut run = session.start_run(Strategy::Frozen, &data, None, &options).unwrap();
    let tensors: HashMap<String, Tensor> = run.named_tensors().unwrap().into_iter().collect();
    let (w, b) = (tensors["classifier.weight"].to_vec2::<f32>().unwrap(), to_vec(&tensors["classifier.bias"]));
    let logits: Vec<Vec<f64>> = data
        .texts()
        .iter()
        .map(|text| {
            let pooled = session.encode(text).unwrap().pooled;
            w.iter().zip(&b).map(|(row, bias)| row.iter().zip(&pooled).map(|(a, x)| (*a as f64) * (*x as f64)).sum::<f64>() + *bias as f64).collect()
        })
        .collect();
    let expected_loss = mean_cross_entropy(&logits, &data.label_ids());
    let before = run.predict(&data.texts()).unwrap();

    let epoch1 = loop {
        match run.step() {
            Event::Epoch { train_loss, train_accuracy, .. } => break (train_loss, train_accuracy),
            Event::Error { message } => panic!("{message}"),
            _ => {}
        }
    };
    assert!(((epoch1.0 - expected_loss) / expected_loss).abs() <= 1e-5, "frozen epoch-1 loss {} vs the uncached computation {expected_loss}", epoch1.0);
    // The head moved: the logits of every sentence changed.
    let after = run.predict(&data.texts()).unwrap();
    for (a, b) in after.iter().zip(&before) {
        assert_ne!(a.probabilities, b.probabilities, "frozen: the head did not change the prediction of {:?}", a.text);
    }
    // The epoch's accuracy (cached outputs) is the accuracy of predictions through the encoder.
    let correct = after.iter().zip(data.label_ids()).filter(|(p, l)| p.label == data.labels[*l]).count();
    assert_eq!(epoch1.1, correct as f64 / data.len() as f64, "frozen: cached evaluation vs fresh predictions");
}

#[test]
fn step_events_report_both_learning_rates() {
    let session = minilm();
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let options = TrainOptions { head_learning_rate: Some(1e-3), schedule: webtune::Schedule::Linear, warmup_ratio: 0.1, epochs: 1, ..TrainOptions::default() };
    let mut run = session.start_run(Strategy::Top(1), &data, None, &options).unwrap();
    let mut rates = Vec::new();
    for _ in 0..run.total_steps() {
        if let Event::Step { lr, head_lr, .. } = next_step(&mut run) {
            rates.push((lr, head_lr));
        }
    }
    // 5 steps, warm-up ceil(0.5) = 1 step: factors 0, 1, 3/4, 2/4, 1/4 (transformers' schedule).
    let factors = [0.0, 1.0, 0.75, 0.5, 0.25];
    assert_eq!(rates.len(), factors.len());
    for ((lr, head_lr), f) in rates.iter().zip(factors) {
        assert!((lr - 2e-5 * f).abs() < 1e-15 && (head_lr - 1e-3 * f).abs() < 1e-15, "rates {lr}, {head_lr} for factor {f}");
    }
}

#[test]
fn a_non_finite_loss_stops_the_run_before_any_update() {
    // A checkpoint whose embedding LayerNorm is NaN: the very first loss is NaN.
    let session = tiny_session_with_first_value("bert.embeddings.LayerNorm.weight", f32::NAN);
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let mut run = session.start_run(Strategy::Full, &data, None, &TrainOptions::default()).unwrap();
    let before: HashMap<String, Vec<f32>> = run.named_tensors().unwrap().iter().map(|(n, t)| (n.clone(), to_vec(t))).collect();
    let first_step = loop {
        match run.step() {
            Event::Start { .. } | Event::Progress { .. } | Event::Embedding { .. } => {}
            other => break other,
        }
    };
    match first_step {
        Event::Error { message } => assert!(message.contains("loss became NaN") && message.contains("step 1"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    for (name, tensor) in run.named_tensors().unwrap() {
        let after = to_vec(&tensor);
        let same = after.iter().zip(&before[&name]).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{name} was updated by the step whose loss was NaN");
    }
}

/// The tiny random BERT of the cross-target determinism test (tests/wasm.rs runs the same).
fn tiny_curve() -> (Vec<f64>, f64) {
    let config = webtune::config::BertConfig::tiny();
    let session = Session::load(&serde_json::to_vec(&config).unwrap(), &read(minilm_dir().join("tokenizer.json")), &webtune::checkpoint::random_bert(&config, 42)).unwrap();
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let options = TrainOptions { epochs: 2, learning_rate: 1e-3, ..TrainOptions::default() };
    let mut run = session.start_run(Strategy::Full, &data, None, &options).unwrap();
    let mut losses = Vec::new();
    loop {
        match run.step() {
            Event::Step { loss, .. } => losses.push(loss),
            Event::Done { train_accuracy, .. } => return (losses, train_accuracy),
            Event::Error { message } => panic!("{message}"),
            _ => {}
        }
    }
}

/// Same seed, same curve, natively and in the browser: tests/data/tiny_curve.json holds the
/// native per-step losses (`WEBTUNE_WRITE_CURVE=1 cargo test --release --test training tiny`
/// rewrites it after a deliberate change of the maths); tests/wasm.rs compares the browser's
/// losses with the same file.
#[test]
fn tiny_curve_matches_the_recorded_native_curve() {
    let path = repo_path("tests/data/tiny_curve.json");
    let (losses, accuracy) = tiny_curve();
    assert_eq!(losses.len(), 10);
    if std::env::var_os("WEBTUNE_WRITE_CURVE").is_some() {
        std::fs::write(&path, serde_json::to_vec_pretty(&serde_json::json!({"losses": losses, "train_accuracy": accuracy})).unwrap()).unwrap();
    }
    let recorded: serde_json::Value = serde_json::from_slice(&read(path)).unwrap();
    let want: Vec<f64> = recorded["losses"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    for (i, (got, want)) in losses.iter().zip(&want).enumerate() {
        assert!(((got - want) / want).abs() <= 1e-5, "step {}: loss {got} vs recorded {want}", i + 1);
    }
    assert_eq!(accuracy, recorded["train_accuracy"].as_f64().unwrap());
}
