//! DistilBERT and RoBERTa checkpoints natively: their config.json's are read into the model's
//! sizes, an unsupported `model_type` is refused naming the supported ones, random checkpoints
//! carry the real base models' parameter names, and a notebook run of every strategy on each
//! finishes with every view's events and an export that loads back. (The numbers against
//! transformers and PEFT: tests/python/check_architectures.py.)
use crate::common;

use common::*;
use webtune::architecture::Architecture;
use webtune::config::BertConfig;
use webtune::data::parse_labelled_text;
use webtune::{Event, Session, Strategy, TrainOptions};

/// distilbert-base-uncased's config.json, as the hub serves it.
const DISTILBERT_BASE_UNCASED: &str = r#"{"activation": "gelu", "architectures": ["DistilBertForMaskedLM"], "attention_dropout": 0.1,
  "dim": 768, "dropout": 0.1, "hidden_dim": 3072, "initializer_range": 0.02, "max_position_embeddings": 512,
  "model_type": "distilbert", "n_heads": 12, "n_layers": 6, "pad_token_id": 0, "qa_dropout": 0.1, "seq_classif_dropout": 0.2,
  "sinusoidal_pos_embds": false, "tie_weights_": true, "transformers_version": "4.10.0.dev0", "vocab_size": 30522}"#;

/// roberta-base's config.json, as the hub serves it.
const ROBERTA_BASE: &str = r#"{"architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
  "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
  "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 514, "model_type": "roberta",
  "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1, "type_vocab_size": 1, "vocab_size": 50265}"#;

#[test]
fn base_configs_are_read_into_the_model_sizes() {
    let d = BertConfig::from_json(DISTILBERT_BASE_UNCASED.as_bytes()).unwrap();
    assert_eq!(d.architecture(), Architecture::DistilBert);
    assert_eq!((d.hidden_size, d.num_hidden_layers, d.num_attention_heads, d.intermediate_size), (768, 6, 12, 3072));
    assert_eq!((d.hidden_dropout_prob, d.attention_probs_dropout_prob, d.classifier_dropout()), (0.1, 0.1, 0.2));
    assert_eq!((d.layer_norm_eps, d.max_tokens()), (1e-12, 512));
    let r = BertConfig::from_json(ROBERTA_BASE.as_bytes()).unwrap();
    assert_eq!(r.architecture(), Architecture::Roberta);
    assert_eq!((r.hidden_size, r.num_hidden_layers, r.vocab_size, r.type_vocab_size, r.layer_norm_eps), (768, 12, 50265, 1, 1e-5));
    // Positions start after the padding id: 514 rows hold 512 tokens.
    assert_eq!(r.max_tokens(), 512);
    let xlmr = ROBERTA_BASE.replace("\"roberta\"", "\"xlm-roberta\"");
    assert_eq!(BertConfig::from_json(xlmr.as_bytes()).unwrap().architecture(), Architecture::Roberta);
}

#[test]
fn an_unsupported_model_type_is_refused_naming_the_supported_ones() {
    for config in [r#"{"model_type": "t5", "d_model": 512}"#, r#"{"model_type": "gpt2", "n_embd": "not even a number"}"#] {
        let message = BertConfig::from_json(config.as_bytes()).unwrap_err().to_string();
        for part in ["config.json", "model_type", "\"bert\"", "\"distilbert\"", "\"roberta\"", "\"xlm-roberta\""] {
            assert!(message.contains(part), "{message:?} should mention {part}");
        }
        assert!(message.contains("t5") || message.contains("gpt2"), "{message}");
    }
}

/// A 2-layer, hidden-32 config of `base` (the real vocabulary, MiniLM's tokenizer fits it).
fn small(base: &str) -> serde_json::Value {
    let mut config: serde_json::Value = serde_json::from_str(base).unwrap();
    let o = config.as_object_mut().unwrap();
    let distil = o["model_type"] == "distilbert";
    for (field, value) in [("dim", 32), ("hidden_size", 32), ("n_layers", 2), ("num_hidden_layers", 2), ("n_heads", 4), ("num_attention_heads", 4), ("hidden_dim", 64), ("intermediate_size", 64)] {
        let theirs = matches!(field, "dim" | "n_layers" | "n_heads" | "hidden_dim");
        if theirs == distil {
            o.insert(field.into(), value.into());
        }
    }
    config
}

fn session_of(config: &serde_json::Value, seed: u64) -> Session {
    let parsed = BertConfig::from_json(config.to_string().as_bytes()).unwrap();
    let weights = webtune::checkpoint::random_checkpoint(&parsed, seed);
    Session::load(config.to_string().as_bytes(), &read(minilm_dir().join("tokenizer.json")), &weights).expect("loads")
}

#[test]
fn random_checkpoints_carry_the_base_models_names() {
    let names = |config: &serde_json::Value| -> Vec<String> {
        let bytes = webtune::checkpoint::random_checkpoint(&BertConfig::from_json(config.to_string().as_bytes()).unwrap(), 0);
        safetensors::SafeTensors::deserialize(&bytes).unwrap().names().into_iter().map(str::to_string).collect()
    };
    let distil = names(&small(DISTILBERT_BASE_UNCASED));
    for name in ["distilbert.embeddings.word_embeddings.weight", "distilbert.transformer.layer.1.attention.q_lin.weight", "distilbert.transformer.layer.0.sa_layer_norm.bias", "distilbert.transformer.layer.1.ffn.lin2.weight", "distilbert.transformer.layer.1.output_layer_norm.weight"] {
        assert!(distil.contains(&name.to_string()), "{name} missing from {distil:?}");
    }
    assert!(!distil.iter().any(|n| n.contains("token_type") || n.contains("pre_classifier") || n.contains("pooler")), "{distil:?}");
    let roberta = names(&small(ROBERTA_BASE));
    for name in ["roberta.embeddings.token_type_embeddings.weight", "roberta.encoder.layer.1.attention.self.value.bias", "roberta.pooler.dense.weight"] {
        assert!(roberta.contains(&name.to_string()), "{name} missing from {roberta:?}");
    }
    assert!(!roberta.iter().any(|n| n.starts_with("classifier")), "{roberta:?}");
    // The loaded model says the classification head's dense layer is new.
    let info = session_of(&small(DISTILBERT_BASE_UNCASED), 0).info();
    assert!(info.notes.iter().any(|n| n.contains("pre_classifier")), "{:?}", info.notes);
    // 2 layers of hidden 32: embeddings (30522 + 512) × 32 + LayerNorm, no token types; the
    // pre_classifier.
    let layer = 4 * (32 * 32 + 32) + 2 * 64 * 32 + 64 + 32 + 4 * 32;
    assert_eq!(info.num_parameters, (30522 + 512) * 32 + 64 + 2 * layer + 32 * 32 + 32);
}

/// Runs `strategy` on the notebook data to the end: (epochs with an embedding snapshot, layer
/// blocks per epoch, trainable parameter names, the run).
fn notebook_run(session: &Session, strategy: Strategy) -> (Vec<usize>, Vec<Vec<String>>, webtune::Run) {
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let options = TrainOptions { epochs: 2, max_len: 32, learning_rate: 1e-3, ..TrainOptions::default() };
    let mut run = session.start_run(strategy, &data, None, &options).unwrap();
    let (mut maps, mut layers) = (Vec::new(), Vec::new());
    loop {
        match run.step() {
            Event::Embedding { epoch, train, .. } => {
                assert_eq!(train.x.len(), 10, "{strategy}: every training sentence on the map");
                maps.push(epoch);
            }
            Event::Layers { blocks, .. } => layers.push(blocks.into_iter().map(|b| b.name).collect()),
            Event::Done { .. } => return (maps, layers, run),
            Event::Error { message } => panic!("{strategy}: {message}"),
            _ => {}
        }
    }
}

#[test]
fn every_strategy_runs_on_each_architecture_with_every_view_and_exports() {
    for (base, arch) in [(DISTILBERT_BASE_UNCASED, "distilbert"), (ROBERTA_BASE, "roberta")] {
        let session = session_of(&small(base), 1);
        for strategy in [Strategy::Frozen, Strategy::Top(1), Strategy::Full, Strategy::Lora(2)] {
            let (maps, layers, run) = notebook_run(&session, strategy);
            assert_eq!(maps, [0, 1, 2], "{arch} {strategy}: embedding snapshots");
            assert_eq!(layers.len(), 2, "{arch} {strategy}: layer changes per epoch");
            assert_eq!(layers[0], ["embeddings", "layer 0", "layer 1", "pooler", "classifier"], "{arch} {strategy}");
            let names = run.trainable_names();
            let head: &[&str] = if arch == "distilbert" { &["pre_classifier.weight", "classifier.weight"] } else { &["classifier.dense.weight", "classifier.out_proj.weight"] };
            if strategy != Strategy::Frozen {
                assert!(head.iter().all(|h| names.iter().any(|n| n == h)), "{arch} {strategy}: {names:?}");
            }
            if strategy == Strategy::Lora(2) {
                let adapter = if arch == "distilbert" { "distilbert.transformer.layer.0.attention.q_lin.lora_A.weight" } else { "roberta.encoder.layer.0.attention.self.query.lora_A.weight" };
                assert!(names.iter().any(|n| n == adapter), "{arch}: {names:?}");
            }
            if strategy == Strategy::Full {
                assert!(!names.iter().any(|n| n.contains("token_type")) || arch == "roberta", "{arch}: {names:?}");
                let export = run.export().unwrap();
                let config: serde_json::Value = serde_json::from_slice(&export.config_json).unwrap();
                let class = if arch == "distilbert" { "DistilBertForSequenceClassification" } else { "RobertaForSequenceClassification" };
                assert_eq!(config["architectures"][0], class);
                let reloaded = Session::load(&export.config_json, &export.tokenizer_json, &export.model_safetensors).unwrap();
                let texts = vec!["I love this product!".to_string(), "meh".to_string()];
                let (ours, theirs) = (run.predict(&texts).unwrap(), reloaded.predict(&texts).unwrap());
                for (a, b) in ours.iter().zip(&theirs) {
                    let diff = a.probabilities.iter().zip(&b.probabilities).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
                    assert!(diff < 1e-6, "{arch}: the export predicts {b:?}, the run {a:?}");
                }
            }
        }
    }
}

