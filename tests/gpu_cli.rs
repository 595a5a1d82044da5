//! `--device` on the GPU executor (Mesa's lavapipe where there is no GPU): predictions on the
//! GPU give the CPU's probabilities; `train --device gpu` runs there and says so in its events;
//! `auto` says which device and why; what cannot run on the GPU is refused by name; `bench
//! --device gpu` gives the kernels' and the steps' figures beside the CPU's.
use crate::common;

use std::process::Command;

use common::*;
use webtune::data::parse_labelled_text;
use webtune::events::Event;
use webtune::gpu::predict::GpuPredictor;
use webtune::gpu::Gpu;
use webtune::{Session, Strategy, TrainOptions};

/// (success, stdout, stderr) of the CLI.
fn webtune(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_webtune")).args(args).current_dir(repo_path("")).output().expect("webtune runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// MiniLM with a classifier trained for 4 epochs on the notebook's sentences (frozen encoder,
/// head rate 1e-2: probabilities well away from ½), exported and loaded back.
fn classifier() -> Session {
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let options = TrainOptions { epochs: 4, head_learning_rate: Some(1e-2), ..TrainOptions::default() };
    let mut run = minilm().start_run(Strategy::Frozen, &data, None, &options).unwrap();
    while !matches!(run.step(), Event::Done { .. }) {}
    let exported = run.export().unwrap();
    let [config, tokenizer, weights] = exported.files().map(|(_, bytes)| bytes.to_vec());
    Session::load(&config, &tokenizer, &weights).unwrap()
}

#[test]
fn gpu_predictions_are_the_cpus_within_1e_5() {
    let session = classifier();
    let mut texts: Vec<String> = parse_labelled_text(&notebook_text()).unwrap().examples.iter().map(|e| e.text.clone()).collect();
    // More than one batch of 16, of different lengths (padding keys inside a batch).
    texts.extend(["good", "the money was not worth it at all and the service was very bad", "i really liked it", "not very", "great day", "bad", "the", "it was the best movie i have seen in a very long time"].map(String::from));
    let cpu = session.predict(&texts).unwrap();
    let gpu = Gpu::request_blocking(0).unwrap_or_else(|e| panic!("{e} — install a Vulkan driver (./build.sh setup installs Mesa's lavapipe)"));
    let gpu = GpuPredictor::new(gpu, session.pretrained()).unwrap().predict(session.pretrained(), &texts).unwrap();
    assert_eq!(cpu.len(), texts.len());
    assert_eq!(gpu.len(), texts.len());
    let spread = cpu.iter().map(|p| (p.probabilities[0] - 0.5).abs()).fold(0.0, f64::max);
    assert!(spread > 0.05, "the trained head should move the probabilities away from ½ (largest distance {spread})");
    for (c, g) in cpu.iter().zip(&gpu) {
        assert_eq!((&c.text, &c.label, &c.labels), (&g.text, &g.label, &g.labels));
        for (pc, pg) in c.probabilities.iter().zip(&g.probabilities) {
            assert!((pc - pg).abs() <= 1e-5, "'{}': probability {pg} on the GPU, {pc} on the CPU", c.text);
        }
    }
}

/// The `start` event of `webtune train --json` with `device`, and stderr.
fn start_event(device: &str, strategy: &str) -> (serde_json::Value, String) {
    let model = minilm_dir();
    let args = ["train", "--model", model.to_str().unwrap(), "--data", "data/notebook.tsv", "--strategy", strategy, "--epochs", "1", "--threads", "1", "--json", "--device", device];
    let (ok, stdout, stderr) = webtune(&args);
    assert!(ok, "webtune {args:?} failed: {stderr}");
    let start = stdout.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).find(|e| e["type"] == "start").expect("a start event");
    (start, stderr)
}

#[test]
fn train_says_where_it_ran_and_why() {
    let (start, stderr) = start_event("gpu", "frozen");
    let device = start["device"].as_str().unwrap();
    assert!(device.starts_with("gpu: "), "--device gpu: the start event says {device}");
    assert!(stderr.contains("device: gpu, ") && stderr.contains("(--device gpu"), "{stderr}");
    let (start, stderr) = start_event("cpu", "frozen");
    assert_eq!(start["device"], "cpu");
    assert!(stderr.contains("device: cpu (--device cpu)"), "{stderr}");
    // auto: a software adapter (lavapipe here) or none means the CPU; a hardware GPU the GPU.
    let (start, stderr) = start_event("auto", "frozen");
    let device = start["device"].as_str().unwrap();
    match stderr.contains("auto: a hardware GPU") {
        true => assert!(device.starts_with("gpu: "), "{device}: {stderr}"),
        false => {
            assert_eq!(device, "cpu");
            assert!(stderr.contains("device: cpu (auto: ") && (stderr.contains("software renderer") || stderr.contains("no usable GPU")), "{stderr}");
        }
    }
    // LoRA's adapters train on the GPU too.
    let (start, stderr) = start_event("gpu", "lora:2");
    assert!(start["device"].as_str().unwrap().starts_with("gpu: "), "{stderr}");
}

#[test]
fn a_bad_device_is_refused_by_name() {
    let model = minilm_dir();
    let model = model.to_str().unwrap();
    let message = webtune::options::field_spec("device").message;
    for command in [&["train", "--model", model, "--data", "data/notebook.tsv"][..], &["predict", "--model", model, "text"], &["bench", "--model", model]] {
        let (ok, _, stderr) = webtune(&[command, &["--device", "tpu"]].concat());
        assert!(!ok && stderr.contains(message) && stderr.contains("tpu"), "{command:?} --device tpu: {stderr}");
    }
}

#[test]
fn bench_on_the_gpu_times_its_kernels_and_steps_beside_the_cpu() {
    let model = minilm_dir();
    let args = ["bench", "--model", model.to_str().unwrap(), "--seq", "8", "--batch", "2", "--strategy", "full", "--rounds", "1", "--threads", "1", "--device", "gpu", "--peak-gflops", "1000", "--json"];
    let (ok, stdout, stderr) = webtune(&args);
    assert!(ok, "webtune {args:?} failed: {stderr}");
    let rows: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let kernels: Vec<&serde_json::Value> = rows.iter().filter(|r| r["row"] == "gpu_kernel").collect();
    let products: Vec<&&serde_json::Value> = kernels.iter().filter(|k| k["gflops"].is_number()).collect();
    assert_eq!(products.len(), 12, "9 Linear products (3 layouts × 3 shapes) and 3 attention products: {kernels:#?}");
    for k in &products {
        assert!(k["ms"].as_f64().unwrap() > 0.0 && k["gflops"].as_f64().unwrap() > 0.0 && k["percent_of_peak"].as_f64().unwrap() > 0.0, "{k}");
    }
    // MiniLM: 384 → 1536 on 2 × 8 tokens.
    assert!(products.iter().any(|k| k["m"] == 16 && k["n"] == 1536 && k["k"] == 384), "{products:#?}");
    let steps: Vec<&serde_json::Value> = rows.iter().filter(|r| r["row"].is_null()).collect();
    assert_eq!(steps.len(), 2, "one CPU and one GPU step row: {steps:#?}");
    assert_eq!(steps[0]["device"], "cpu");
    assert!(steps[1]["device"].as_str().unwrap().starts_with("gpu: "), "{}", steps[1]);
    for part in ["forward_ms", "backward_ms", "optimizer_ms"] {
        assert!(steps[1][part].as_f64().unwrap() > 0.0, "the GPU step's {part} is measured: {}", steps[1]);
    }
}
