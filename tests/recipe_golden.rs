//! AdamW weight decay and gradient clipping inside a real run, against PyTorch + transformers:
//! all-MiniLM-L6-v2 fine-tuned in full, dropout off, on the notebook's ten sentences in one
//! batch per step, every step's loss within 1e-4 relative of tests/data/recipe_golden.json
//! (written by tests/python/make_recipe_golden.py from webtune's initial classifier,
//! tests/data/recipe_classifier_init.json; `WEBTUNE_WRITE_RECIPE_INIT=1 cargo test --release
//! --test recipe_golden` rewrites that file after a deliberate change of the head's init, and
//! the generator must then be rerun).
use crate::common;

use common::*;
use serde_json::{json, Value};
use webtune::data::parse_labelled_text;
use webtune::events::Event;
use webtune::{Session, Strategy, TrainOptions};

const TOLERANCE: f64 = 1e-4;

/// all-MiniLM-L6-v2 with every dropout probability 0.
fn minilm_without_dropout() -> Session {
    let dir = minilm_dir();
    let mut config: Value = serde_json::from_slice(&read(dir.join("config.json"))).unwrap();
    config["hidden_dropout_prob"] = 0.0.into();
    config["attention_probs_dropout_prob"] = 0.0.into();
    config["classifier_dropout"] = 0.0.into();
    Session::load(&serde_json::to_vec(&config).unwrap(), &read(dir.join("tokenizer.json")), &read(dir.join("model.safetensors"))).unwrap()
}

/// The run's initial classifier ({weight: rows, bias}) and the loss of each step.
fn webtune_run(session: &Session, scenario: &Value) -> (Value, Vec<f64>) {
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let steps = scenario["steps"].as_u64().unwrap() as usize;
    let options = TrainOptions {
        epochs: steps,
        batch_size: data.len(),
        learning_rate: scenario["learning_rate"].as_f64().unwrap(),
        weight_decay: scenario["weight_decay"].as_f64().unwrap(),
        max_grad_norm: scenario["max_grad_norm"].as_f64(),
        ..TrainOptions::default()
    };
    let mut run = session.start_run(Strategy::Full, &data, None, &options).unwrap();
    let tensors: std::collections::HashMap<String, candle_core::Tensor> = run.named_tensors().unwrap().into_iter().collect();
    let init = json!({
        "weight": tensors["classifier.weight"].to_vec2::<f32>().unwrap(),
        "bias": tensors["classifier.bias"].to_vec1::<f32>().unwrap(),
    });
    let mut losses = Vec::new();
    loop {
        match run.step() {
            Event::Step { loss, .. } => losses.push(loss),
            Event::Done { .. } => return (init, losses),
            Event::Error { message } => panic!("{}: {message}", scenario["name"]),
            _ => {}
        }
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn largest_relative_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((x - y) / y).abs()).fold(0.0, f64::max)
}

#[test]
fn adamw_weight_decay_and_clipping_match_torch_step_by_step() {
    let session = minilm_without_dropout();
    if std::env::var_os("WEBTUNE_WRITE_RECIPE_INIT").is_some() {
        let (init, _) = webtune_run(&session, &json!({"name": "init", "steps": 1, "learning_rate": 1e-4, "weight_decay": 0.0, "max_grad_norm": null}));
        std::fs::write(repo_path("tests/data/recipe_classifier_init.json"), serde_json::to_vec(&init).unwrap()).unwrap();
    }
    let golden: Value = serde_json::from_slice(&read(repo_path("tests/data/recipe_golden.json"))).unwrap();
    let by_name = |name: &str| golden["scenarios"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no scenario {name}")).clone();
    for scenario in golden["scenarios"].as_array().unwrap() {
        let name = scenario["name"].as_str().unwrap();
        let (init, losses) = webtune_run(&session, scenario);
        // The same starting point, to the bit.
        let same_init = f32s(&init["bias"]) == f32s(&golden["classifier_init"]["bias"])
            && init["weight"].as_array().unwrap().iter().zip(golden["classifier_init"]["weight"].as_array().unwrap()).all(|(a, b)| f32s(a) == f32s(b));
        assert!(same_init, "webtune's initial classifier is not the one the golden file was made from: rerun the generators (see the module doc)");
        let want = floats(&scenario["losses"]);
        assert_eq!(losses.len(), want.len(), "{name}: steps");
        eprintln!("{name}: largest relative difference from torch {:.2e}", largest_relative_difference(&losses, &want));
        for (step, (got, want)) in losses.iter().zip(&want).enumerate() {
            let rel = ((got - want) / want).abs();
            assert!(rel <= TOLERANCE, "{name}, step {}: loss {got} vs torch {want} (relative {rel:.2e})", step + 1);
        }
    }
    // The comparison can see each knob: switching it off moves torch's losses by far more than
    // the tolerance (else a webtune that ignored it would pass).
    let knob = |with: &str, without: &str| largest_relative_difference(&floats(&by_name(with)["losses"]), &floats(&by_name(without)["losses"]));
    assert!(knob("adamw_clipped", "no_clipping") > 10.0 * TOLERANCE, "clipping does not show in the losses: {:.2e}", knob("adamw_clipped", "no_clipping"));
    assert!(knob("adamw_strong_decay_clipped", "strong_lr_no_weight_decay") > 10.0 * TOLERANCE, "weight decay does not show in the losses: {:.2e}", knob("adamw_strong_decay_clipped", "strong_lr_no_weight_decay"));
}
