//! LoRA (`lora:R`): forward and gradients against Hugging Face PEFT, what a run trains (only
//! adapters, pooler and classifier; the base weights stay the pre-trained tensors), exports, and
//! option errors.
use crate::common;

use candle_core::{DType, Device, Tensor};
use common::*;
use webtune::data::parse_labelled_text;
use webtune::encoder;
use webtune::events::Event;
use webtune::model::Linear;
use webtune::run_model::RunModel;
use webtune::tokenize::Batch;
use webtune::types::{LoraOptions, Projection};
use webtune::{Strategy, TrainOptions};

fn golden() -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(repo_path("tests/data/lora_golden.safetensors"), &Device::Cpu).expect("tests/data/lora_golden.safetensors loads")
}

fn values(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Transposed values of a 2-D tensor (webtune stores Linear weights and adapters transposed).
fn transposed(t: &Tensor) -> Vec<f32> {
    values(&t.t().unwrap().contiguous().unwrap())
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tolerance: f32) {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(got, want);
    assert!(diff <= tolerance * scale.max(1e-6), "{what}: max |Δ| {diff:e} against max |ref| {scale:e}");
}

#[test]
fn forward_and_gradients_match_peft() {
    let g = golden();
    let session = minilm();
    let pretrained = session.pretrained();
    let targets = vec![Projection::Query, Projection::Value, Projection::Intermediate, Projection::Output];
    let options = LoraOptions { alpha: 8.0, targets, ..LoraOptions::default() };
    let head = Linear::from_hf(&g["classifier.weight"], g["classifier.bias"].clone()).unwrap();
    let mut run = RunModel::build(pretrained, Strategy::Lora(4), head, &options, 0).unwrap();
    // PEFT's adapter values (its A from torch's RNG, B set to random values by the script).
    let adapters = run.adapters.as_mut().expect("a lora run has adapters");
    let mut replaced = 0;
    for (l, layer) in adapters.layers.iter_mut().enumerate() {
        for p in Projection::ALL {
            let Some(adapter) = &mut layer[p as usize] else { continue };
            let module = format!("bert.encoder.layer.{l}.{}", p.module_path());
            adapter.a_t = g[&format!("{module}.lora_A.weight")].t().unwrap().contiguous().unwrap();
            adapter.b_t = g[&format!("{module}.lora_B.weight")].t().unwrap().contiguous().unwrap();
            replaced += 1;
        }
    }
    assert_eq!(replaced, 6 * 4, "every layer's four targets are adapted");

    let ids: Vec<u32> = g["input_ids"].flatten_all().unwrap().to_vec1::<i64>().unwrap().iter().map(|&v| v as u32).collect();
    let mask: Vec<f32> = g["attention_mask"].flatten_all().unwrap().to_vec1::<i64>().unwrap().iter().map(|&v| v as f32).collect();
    let (size, seq_len) = g["input_ids"].dims2().unwrap();
    let labels: Vec<usize> = g["labels"].to_vec1::<i64>().unwrap().iter().map(|&v| v as usize).collect();
    let batch = Batch { ids, mask, size, seq_len };
    let out = encoder::train_step(&pretrained.config, run.train_model(), &batch, &labels, None, |_| Ok(())).unwrap();

    let loss = values(&g["loss"])[0] as f64;
    assert!(((out.loss - loss) / loss).abs() < 1e-5, "loss {} vs PEFT {loss}", out.loss);
    let logits: Vec<f32> = out.logits.concat();
    assert_close("logits", &logits, &values(&g["logits"]), 1e-5);

    let slots = run.adapter_grads.as_ref().unwrap();
    for (l, p, slot) in slots.iter() {
        let module = format!("bert.encoder.layer.{l}.{}", p.module_path());
        let a = slot.a_t.peek(|v| v.to_vec()).expect("A got a gradient");
        let b = slot.b_t.peek(|v| v.to_vec()).expect("B got a gradient");
        assert_close(&format!("{module}.lora_A grad"), &a, &transposed(&g[&format!("{module}.lora_A.weight.grad")]), 1e-4);
        assert_close(&format!("{module}.lora_B grad"), &b, &transposed(&g[&format!("{module}.lora_B.weight.grad")]), 1e-4);
    }
    let pooler = run.grads.pooler.weight_t.as_ref().unwrap().peek(|v| v.to_vec()).unwrap();
    assert_close("pooler weight grad", &pooler, &transposed(&g["bert.pooler.dense.weight.grad"]), 1e-4);
    let classifier = run.head_grads.weight_t.as_ref().unwrap().peek(|v| v.to_vec()).unwrap();
    assert_close("classifier weight grad", &classifier, &transposed(&g["classifier.weight.grad"]), 1e-5);
    // Frozen projections get no gradient buffer at all.
    assert!(run.grads.layers.iter().all(|l| l.query.weight_t.is_none() && l.intermediate.weight_t.is_none()));
}

fn notebook() -> webtune::data::Dataset {
    parse_labelled_text(&notebook_text()).unwrap()
}

fn run_to_end(run: &mut webtune::Run) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let event = run.step();
        let done = matches!(event, Event::Done { .. } | Event::Error { .. });
        events.push(event);
        if done {
            return events;
        }
    }
}

#[test]
fn a_lora_run_trains_only_adapters_pooler_and_classifier() {
    let session = minilm();
    let data = notebook();
    let options = TrainOptions { epochs: 2, ..TrainOptions::default() };
    let mut run = session.start_run(Strategy::Lora(8), &data, None, &options).unwrap();
    let events = run_to_end(&mut run);
    assert!(matches!(events.last(), Some(Event::Done { .. })), "{:?}", events.last());
    let pretrained = session.pretrained().weights.stored_named();
    let model = run.model();
    for ((name, trained), (_, original)) in model.weights.stored_named().iter().zip(&pretrained) {
        let same = values(trained) == values(original);
        if name.starts_with("pooler.") {
            assert!(!same, "{name} should train");
        } else {
            assert!(same, "{name} changed: a LoRA run must leave the base weights bit-identical");
            assert_eq!(trained.id(), original.id(), "{name} must be the pre-trained tensor itself, not a copy");
        }
    }
    let adapters = model.adapters.as_ref().unwrap();
    for (l, p, a) in adapters.iter() {
        assert!(values(&a.b_t).iter().any(|v| *v != 0.0), "layer {l} {p:?}: B never moved from zero");
    }
    assert!(adapters.iter().all(|(_, p, _)| matches!(p, Projection::Query | Projection::Value)), "PEFT's default targets: query and value");
    // The layer-change events: every layer moved through its adapters, the embeddings not at all.
    let last_layers = events.iter().rev().find_map(|e| match e {
        Event::Layers { blocks, .. } => Some(blocks.clone()),
        _ => None,
    });
    let blocks = last_layers.expect("layers events");
    for b in &blocks {
        match b.name.as_str() {
            "embeddings" => assert_eq!(b.change, 0.0, "embeddings"),
            _ => assert!(b.change > 0.0, "{} did not change", b.name),
        }
    }
}

#[test]
fn lora_exports_merge_the_adapters_and_write_peft_files() {
    let session = minilm();
    let data = notebook();
    let options = TrainOptions { epochs: 1, ..TrainOptions::default() };
    let mut run = session.start_run(Strategy::Lora(4), &data, None, &options).unwrap();
    run_to_end(&mut run);
    let texts: Vec<String> = ["a wonderful film", "dull and far too long"].iter().map(|s| s.to_string()).collect();
    let before = run.predict(&texts).unwrap();
    let exported = run.export().unwrap();
    let merged = webtune::Session::load(&exported.config_json, &exported.tokenizer_json, &exported.model_safetensors).unwrap();
    for (a, b) in merged.predict(&texts).unwrap().iter().zip(&before) {
        for (p, q) in a.probabilities.iter().zip(&b.probabilities) {
            assert!((p - q).abs() < 1e-5, "merged export {p} vs the run's {q}");
        }
    }
    let (config, weights) = run.export_adapter().unwrap().expect("a lora run exports an adapter");
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 4);
    assert_eq!(config["target_modules"], serde_json::json!(["query", "value"]));
    let tensors = candle_core::safetensors::load_buffer(&weights, &Device::Cpu).unwrap();
    let a = &tensors["base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"];
    assert_eq!(a.dims(), &[4, session.pretrained().config.hidden_size]);
    assert!(tensors.contains_key("base_model.model.classifier.weight") && tensors.contains_key("base_model.model.bert.pooler.dense.weight"));
    assert_eq!(tensors.len(), 6 * 2 * 2 + 4);
}

#[test]
fn lora_options_are_checked() {
    let session = minilm();
    let data = notebook();
    for (strategy, expected) in [("lora:0", "whole number ≥ 1"), ("lora:x", "whole number ≥ 1"), ("lora", "unknown strategy")] {
        let err = strategy.parse::<Strategy>().unwrap_err().to_string();
        assert!(err.contains(expected), "{strategy}: {err}");
    }
    let err = session.start_run(Strategy::Lora(1000), &data, None, &TrainOptions::default()).err().unwrap().to_string();
    assert!(err.contains("cannot exceed the model's hidden size 384"), "{err}");
    let bad = |lora: LoraOptions| session.start_run(Strategy::Lora(4), &data, None, &TrainOptions { lora, ..TrainOptions::default() }).err().unwrap().to_string();
    // One message per option, the page's and the CLI's (src/options.rs), naming the option.
    assert!(bad(LoraOptions { alpha: 0.0, ..LoraOptions::default() }).contains("lora.alpha: LoRA alpha must be a number > 0"));
    assert!(bad(LoraOptions { dropout: 1.0, ..LoraOptions::default() }).contains("lora.dropout: Adapter dropout must be a number from 0 up to (not including) 1"));
    assert!(bad(LoraOptions { targets: vec![], ..LoraOptions::default() }).contains("lora.targets: Choose at least one projection"));
    let err = "attention".parse::<Projection>().unwrap_err().to_string();
    assert!(err.contains("unknown LoRA target 'attention'"), "{err}");
}
