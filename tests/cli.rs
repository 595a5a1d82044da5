//! The native CLI's own checks on its arguments (the core's are tested in training.rs).
use crate::common;

use std::process::Command;

use common::*;

fn webtune(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_webtune")).args(args).current_dir(repo_path("")).output().expect("webtune runs");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_empty_validation_file_is_an_error_not_no_validation() {
    let dir = std::env::temp_dir().join(format!("webtune-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.tsv");
    std::fs::write(&empty, "\n  \n").unwrap();
    let model = minilm_dir();
    let (ok, stderr) = webtune(&["train", "--model", model.to_str().unwrap(), "--data", "data/notebook.tsv", "--val-data", empty.to_str().unwrap(), "--epochs", "1"]);
    assert!(!ok, "training with an empty --val-data file succeeded");
    assert!(stderr.contains("empty.tsv") && stderr.contains("is empty"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The problems of `v` against `schema` — the subset of JSON Schema www/record.schema.json
/// uses (type, const, enum, required, properties, items, minimum, oneOf, local $ref), as the
/// page's loader (www/js/json-schema.js) checks it.
fn schema_errors(v: &serde_json::Value, s: &serde_json::Value, root: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let target = r.trim_start_matches("#/").split('/').fold(root, |node, key| &node[key]);
        return schema_errors(v, target, root, path, out);
    }
    if let Some(c) = s.get("const") {
        if v != c {
            out.push(format!("{path}: expected {c}, got {v}"));
        }
        return;
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array) {
        if !options.contains(v) {
            out.push(format!("{path}: {v} is not one of {options:?}"));
        }
        return;
    }
    if let Some(t) = s.get("type") {
        let wanted: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !wanted.iter().any(|w| *w == actual || (*w == "number" && actual == "integer")) {
            out.push(format!("{path}: expected {wanted:?}, got {actual}"));
            return;
        }
    }
    if let Some(branches) = s.get("oneOf").and_then(Value::as_array) {
        let failures: Vec<Vec<String>> = branches
            .iter()
            .map(|b| {
                let mut errs = Vec::new();
                schema_errors(v, b, root, path, &mut errs);
                errs
            })
            .collect();
        let matching = failures.iter().filter(|e| e.is_empty()).count();
        if matching != 1 {
            out.push(format!("{path}: matches {matching} of the alternatives, expected one ({:?})", failures.iter().flatten().take(3).collect::<Vec<_>>()));
        }
        return;
    }
    if let (Some(min), Some(x)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if x < min {
            out.push(format!("{path}: {x} is below {min}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for key in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !obj.contains_key(key) {
                out.push(format!("{path}: missing \"{key}\""));
            }
        }
        for (key, sub) in s.get("properties").and_then(Value::as_object).into_iter().flatten() {
            if let Some(value) = obj.get(key) {
                schema_errors(value, sub, root, &format!("{path}.{key}"), out);
            }
        }
    }
    if let (Some(items), Some(array)) = (s.get("items"), v.as_array()) {
        for (i, value) in array.iter().enumerate() {
            schema_errors(value, items, root, &format!("{path}[{i}]"), out);
        }
    }
}

#[test]
fn record_writes_the_json_the_page_loads() {
    let dir = std::env::temp_dir().join(format!("webtune-cli-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let record_path = dir.join("run.json");
    let model = minilm_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_webtune"))
        .args(["train", "--model", model.to_str().unwrap(), "--data", "data/notebook.tsv", "--strategy", "frozen,top:1", "--epochs", "1",
            "--head-lr", "1e-2", "--val-fraction", "0.4", "--threads", "1", "--json", "--record", record_path.to_str().unwrap()])
        .current_dir(repo_path(""))
        .output()
        .expect("webtune runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&record_path).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();

    // Valid against the schema the page's "Load results" checks records with.
    let schema: serde_json::Value = serde_json::from_slice(&read(repo_path("www/record.schema.json"))).unwrap();
    let mut errors = Vec::new();
    schema_errors(&record, &schema, &schema, "$", &mut errors);
    assert!(errors.is_empty(), "the record does not match www/record.schema.json: {errors:#?}");
    // The checks are real: a record without events, or with a step that has no loss, is refused.
    let mut broken = record.clone();
    broken.as_object_mut().unwrap().remove("events");
    let mut e = Vec::new();
    schema_errors(&broken, &schema, &schema, "$", &mut e);
    assert!(e.iter().any(|m| m.contains("missing \"events\"")), "{e:?}");
    let mut broken = record.clone();
    let step = broken["events"].as_array_mut().unwrap().iter_mut().find(|ev| ev["type"] == "step").unwrap();
    step.as_object_mut().unwrap().remove("loss");
    let mut e = Vec::new();
    schema_errors(&broken, &schema, &schema, "$", &mut e);
    assert!(!e.is_empty(), "a step without loss was accepted");

    // The head: what the page shows next to the runs.
    assert_eq!(record["format"], "webtune-record");
    assert_eq!(record["version"], 1);
    assert_eq!(record["strategies"], serde_json::json!(["frozen", "top:1"]));
    assert_eq!(record["options"]["epochs"], 1);
    assert_eq!(record["options"]["head_learning_rate"], 0.01);
    assert_eq!(record["data"]["validation"], "split");
    assert_eq!(record["data"]["train_size"].as_u64().unwrap() + record["data"]["val_size"].as_u64().unwrap(), 10);
    assert_eq!(record["model"]["info"]["num_layers"], 6);

    // The events are exactly the --json lines, in order, and parse as the core's events.
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(record["events"].as_array().unwrap(), &lines, "--record's events differ from the --json stream");
    let events: Vec<webtune::Event> = serde_json::from_value(record["events"].clone()).unwrap();
    let done: Vec<&str> = events.iter().filter_map(|e| match e { webtune::Event::Done { strategy, .. } => Some(strategy.as_str()), _ => None }).collect();
    assert_eq!(done, ["frozen", "top:1"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_gemm_times_the_encoders_three_forward_products() {
    let model = minilm_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_webtune"))
        .args(["bench", "--gemm", "--model", model.to_str().unwrap(), "--seq", "4", "--batch", "3", "--rounds", "1", "--threads", "1", "--json"])
        .current_dir(repo_path(""))
        .output()
        .expect("webtune runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // MiniLM: hidden 384, intermediate 1536; 3 sentences × 4 tokens = 12 rows.
    let shapes: Vec<(String, u64, u64, u64)> = lines.iter().map(|v| (v["product"].as_str().unwrap().to_string(), v["m"].as_u64().unwrap(), v["n"].as_u64().unwrap(), v["k"].as_u64().unwrap())).collect();
    assert_eq!(shapes, [("projection".into(), 12, 384, 384), ("ff_up".into(), 12, 1536, 384), ("ff_down".into(), 12, 384, 1536)]);
    assert!(lines.iter().all(|v| v["gflops"].as_f64().unwrap() > 0.0 && v["threads"] == 1), "{lines:?}");
    // A full step of MiniLM's 6 layers: 4 projections and 2 feed-forward products per layer
    // below the top, and the top layer's key and value (its other products run on [CLS] rows);
    // each forward, as a weight gradient and as an input gradient.
    let per_step: Vec<u64> = lines.iter().map(|v| v["per_full_step"].as_u64().unwrap()).collect();
    assert_eq!(per_step, [66, 15, 15]);
}

/// `webtune train … --json` on `data`; returns the parsed events (panics with stderr on failure).
fn train_events(data: &std::path::Path, args: &[&str]) -> Vec<webtune::Event> {
    let model = minilm_dir();
    let mut all = vec!["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--threads", "1", "--json"];
    all.extend_from_slice(args);
    let out = Command::new(env!("CARGO_BIN_EXE_webtune")).args(&all).current_dir(repo_path("")).output().expect("webtune runs");
    assert!(out.status.success(), "webtune {all:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// Per strategy: the step numbers and losses of its step events, and its done event's step count.
fn steps_and_done(events: &[webtune::Event], strategy: &str) -> (Vec<usize>, Vec<f64>, usize) {
    use webtune::Event;
    let (mut numbers, mut losses, mut done) = (Vec::new(), Vec::new(), None);
    for event in events {
        match event {
            Event::Step { strategy: s, step, loss, .. } if s == strategy => {
                numbers.push(*step);
                losses.push(*loss);
            }
            Event::Done { strategy: s, steps, .. } if s == strategy => done = Some(*steps),
            Event::Error { message } => panic!("{strategy}: {message}"),
            _ => {}
        }
    }
    (numbers, losses, done.unwrap_or_else(|| panic!("{strategy} never reported done")))
}

#[test]
fn batch_size_1_trains_end_to_end() {
    let events = train_events(&repo_path("data/notebook.tsv"), &["--strategy", "frozen,full,lora:2", "--epochs", "2", "--batch-size", "1"]);
    for strategy in ["frozen", "full", "lora:2"] {
        let (numbers, losses, done) = steps_and_done(&events, strategy);
        assert_eq!(numbers, (1..=20).collect::<Vec<_>>(), "{strategy}: 10 sentences at batch 1 for 2 epochs");
        assert_eq!(done, 20, "{strategy}");
        assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0), "{strategy}: losses {losses:?}");
    }
}

#[test]
fn a_final_batch_of_one_sentence_trains_end_to_end() {
    let dir = std::env::temp_dir().join(format!("webtune-cli-batch1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Nine sentences at batch 2: four batches of two and a last batch of one, each epoch.
    let notebook = notebook_text();
    let header_and_nine: Vec<&str> = notebook.lines().take(10).collect();
    let data = dir.join("nine.tsv");
    std::fs::write(&data, header_and_nine.join("\n") + "\n").unwrap();
    let events = train_events(&data, &["--strategy", "frozen,full,lora:2", "--epochs", "2", "--batch-size", "2"]);
    for strategy in ["frozen", "full", "lora:2"] {
        let (numbers, losses, done) = steps_and_done(&events, strategy);
        assert_eq!(numbers, (1..=10).collect::<Vec<_>>(), "{strategy}: ceil(9 / 2) = 5 steps per epoch for 2 epochs");
        assert_eq!(done, 10, "{strategy}");
        assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0), "{strategy}: losses {losses:?}");
    }
    let start = events.iter().find_map(|e| match e { webtune::Event::Start { train_size, total_steps, .. } => Some((*train_size, *total_steps)), _ => None }).unwrap();
    assert_eq!(start, (9, 10));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_flags_take_the_cores_defaults_and_limits() {
    let out = Command::new(env!("CARGO_BIN_EXE_webtune")).args(["train", "--help"]).output().expect("webtune runs");
    let help = String::from_utf8_lossy(&out.stdout);
    let defaults = webtune::TrainOptions::default();
    for (flag, default) in [("--epochs", defaults.epochs.to_string()), ("--batch-size", defaults.batch_size.to_string()), ("--max-len", defaults.max_len.to_string()), ("--lora-targets", "query,value".into()), ("--schedule", "constant".into())] {
        let line = help.lines().skip_while(|l| !l.contains(flag)).take_while(|l| !l.trim().is_empty()).collect::<Vec<_>>().join(" ");
        assert!(line.contains(&format!("[default: {default}]")), "{flag}: {line}");
    }
    // Bad values are refused with the core's message before the model is read.
    let model = minilm_dir();
    for (flag, value, message) in [("--epochs", "0", "epochs must be a whole number ≥ 1"), ("--epochs", "100000", "at most 1000"), ("--lr", "5", "learning rate must be a number > 0 and at most 1"), ("--batch-size", "100000", "batch size must be")] {
        let (ok, stderr) = webtune(&["train", "--model", model.to_str().unwrap(), "--data", "data/notebook.tsv", flag, value]);
        assert!(!ok && stderr.contains(message), "{flag} {value}: {stderr}");
    }
}
