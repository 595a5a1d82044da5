//! The core, compiled to wasm32 and run in headless Chromium (`./build.sh test browser`: `cargo
//! test --target wasm32-unknown-unknown --test wasm` under wasm-bindgen-test-runner): tokenization against the golden ids, a full training step's
//! gradients on a tiny random BERT, the event wire format through the web shell's converter,
//! and the same per-step losses as the native run for the same seed.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

use webtune::checkpoint::{bert_tensor_shapes, random_bert};
use webtune::config::BertConfig;
use webtune::events::{BlockChange, ClassMetrics, Event, MapPoints, Phase};
use webtune::tokenize::TextEncoder;
use webtune::{Session, Strategy};

wasm_bindgen_test_configure!(run_in_browser);

const TOKENIZER_JSON: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/all-MiniLM-L6-v2/tokenizer.json"));
const GOLDEN_MINILM: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/golden/golden_minilm.json"));

#[wasm_bindgen_test]
fn tokenization_matches_golden_ids() {
    let golden: serde_json::Value = serde_json::from_str(GOLDEN_MINILM).unwrap();
    let cases = golden["tokenization"].as_array().expect("golden 'tokenization' array");
    assert!(!cases.is_empty());
    let encoder = TextEncoder::from_bytes(TOKENIZER_JSON, 512, 0).unwrap();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let got = encoder.encode_ids(text).unwrap();
        assert_eq!(got, want, "tokenization of {text:?}");
    }
}

#[wasm_bindgen_test]
fn full_step_gives_every_parameter_a_gradient() {
    let config = BertConfig::tiny();
    let weights = random_bert(&config, 42);
    let config_json = serde_json::to_vec(&config).unwrap();
    let session = Session::load(&config_json, TOKENIZER_JSON, &weights).unwrap();
    let texts: Vec<String> = ["I love this product!", "Terrible, I hated it."].map(String::from).to_vec();
    let norms = webtune::probe::one_step_gradient_norms(session.pretrained(), Strategy::Full, &texts, &[1, 0]).unwrap();

    // `full` trains every BertModel tensor plus the classifier head.
    let mut want: Vec<String> = bert_tensor_shapes(&config).into_iter().map(|(n, _)| format!("bert.{n}")).collect();
    want.extend(["classifier.weight".to_string(), "classifier.bias".to_string()]);
    let mut got: Vec<String> = norms.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(norms.len(), want.len(), "one norm per parameter");
    want.sort();
    got.sort();
    assert_eq!(got, want);

    for (name, norm) in &norms {
        assert!(norm.is_finite(), "{name}: gradient norm {norm}");
        // Attention key biases have a true gradient of zero (softmax is shift-invariant): their
        // norm is float noise, possibly exactly 0, so only finiteness is checked for them.
        if name.ends_with("attention.self.key.bias") {
            continue;
        }
        assert!(*norm > 0.0, "{name}: zero gradient");
    }
}

fn all_events() -> Vec<Event> {
    vec![
        Event::Step { strategy: "full".into(), epoch: 1, step: 3, loss: 0.6931, lr: 2e-5, head_lr: 1e-3, work_done: 1.5, elapsed_ms: 123.5 },
        Event::Epoch {
            strategy: "top:2".into(),
            epoch: 2,
            train_loss: 0.25,
            train_accuracy: 0.875,
            train_eval_size: 8,
            val_loss: Some(0.5),
            val_accuracy: None,
            elapsed_ms: 1e4,
        },
        Event::Done {
            strategy: "frozen".into(),
            train_accuracy: 1.0,
            val_accuracy: Some(0.75),
            per_class: vec![
                ClassMetrics { label: "neg".into(), precision: 0.5, recall: 1.0, f1: 2.0 / 3.0, support: 2 },
                ClassMetrics { label: "pos".into(), precision: 1.0, recall: 0.5, f1: 2.0 / 3.0, support: 2 },
            ],
            confusion: vec![vec![2, 0], vec![1, 1]],
            evaluated_on: "validation".into(),
            steps: 16,
            threads: 1,
            peak_bytes: 1 << 20,
            retained_bytes: 3072,
            elapsed_ms: 4567.25,
        },
        Event::Start {
            strategy: "full".into(),
            epochs: 4,
            total_steps: 20,
            train_size: 10,
            val_size: 0,
            train_eval_size: 10,
            labels: vec!["0".into(), "1".into()],
            threads: 1,
            trainable_parameters: 22_000_000,
            estimated_peak_bytes: 400 << 20,
            work_total: 12.5,
            device: "gpu: unnamed adapter (BrowserWebGpu)".into(),
        },
        Event::Progress { strategy: "frozen".into(), phase: Phase::Cache, epoch: 0, done: 16, total: 80, work_done: 0.5, elapsed_ms: 90.0 },
        Event::Stopped { strategy: "full".into(), steps: 3, retained_bytes: 1024, elapsed_ms: 500.0, reason: None },
        Event::Embedding {
            strategy: "full".into(),
            epoch: 0,
            train: MapPoints { index: vec![0, 1], label: vec![1, 0], predicted: vec![1, 1], x: vec![0.5, -0.5], y: vec![0.25, 0.0], text: vec!["a <b>".into(), "c".into()] },
            validation: None,
            separation: 0.5,
            val_separation: None,
            decision_line: Some([1.0, -2.0, 0.5]),
        },
        Event::Layers { strategy: "top:1".into(), epoch: 1, blocks: vec![BlockChange { name: "layer 5".into(), change: 1e-3, relative: true }] },
        Event::Error { message: "data: line 3 has no label".into() },
    ]
}

fn get(value: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(value, &JsValue::from_str(key)).unwrap()
}

/// The wire format through the production converter (`web::to_js`): plain objects (not `Map`s),
/// `null` (not `undefined`) for absent values, the `type` tag, and back to the same event.
#[wasm_bindgen_test]
fn events_cross_the_wire_as_plain_objects() {
    for event in all_events() {
        let value = webtune::web::to_js(&event).unwrap();
        assert!(value.is_object() && !value.is_instance_of::<js_sys::Map>(), "{event:?} is not a plain object");
        let back: Event = serde_wasm_bindgen::from_value(value.clone()).unwrap();
        assert_eq!(back, event);
        let want = match event {
            Event::Start { .. } => "start",
            Event::Progress { .. } => "progress",
            Event::Step { .. } => "step",
            Event::Epoch { .. } => "epoch",
            Event::Done { .. } => "done",
            Event::Stopped { .. } => "stopped",
            Event::Embedding { .. } => "embedding",
            Event::Layers { .. } => "layers",
            Event::Error { .. } => "error",
        };
        assert_eq!(get(&value, "type").as_string().as_deref(), Some(want));
    }
    let events: Vec<JsValue> = all_events().iter().map(|e| webtune::web::to_js(e).unwrap()).collect();
    assert_eq!(get(&events[0], "loss").as_f64(), Some(0.6931));
    assert_eq!(get(&events[0], "head_lr").as_f64(), Some(1e-3));
    // An absent validation accuracy is null, which the page tests with `=== null`.
    assert!(get(&events[1], "val_accuracy").is_null(), "None must become null");
    assert_eq!(get(&events[1], "val_loss").as_f64(), Some(0.5));
    // Nested values are plain objects and arrays too.
    let per_class = get(&events[2], "per_class");
    assert!(js_sys::Array::is_array(&per_class));
    let first = js_sys::Array::from(&per_class).get(0);
    assert!(!first.is_instance_of::<js_sys::Map>());
    assert_eq!(get(&first, "label").as_string().as_deref(), Some("neg"));
    let confusion = js_sys::Array::from(&get(&events[2], "confusion"));
    assert_eq!(js_sys::Array::from(&confusion.get(1)).get(0).as_f64(), Some(1.0));
    assert_eq!(get(&events[4], "phase").as_string().as_deref(), Some("cache"));
}

const TINY_CURVE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny_curve.json"));
const NOTEBOOK_TSV: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/notebook.tsv"));

/// Same seed, same curve in the browser as natively: the per-step losses of the tiny random BERT
/// run that tests/training.rs records (tests/data/tiny_curve.json), within 1e-5 relative.
#[wasm_bindgen_test]
fn same_seed_gives_the_native_curve() {
    let config = BertConfig::tiny();
    let session = Session::load(&serde_json::to_vec(&config).unwrap(), TOKENIZER_JSON, &random_bert(&config, 42)).unwrap();
    let data = webtune::data::parse_labelled_text(NOTEBOOK_TSV).unwrap();
    let options = webtune::TrainOptions { epochs: 2, learning_rate: 1e-3, ..webtune::TrainOptions::default() };
    let mut run = session.start_run(Strategy::Full, &data, None, &options).unwrap();
    let mut losses = Vec::new();
    let accuracy = loop {
        match run.step() {
            Event::Step { loss, .. } => losses.push(loss),
            Event::Done { train_accuracy, .. } => break train_accuracy,
            Event::Error { message } => panic!("{message}"),
            _ => {}
        }
    };
    let recorded: serde_json::Value = serde_json::from_str(TINY_CURVE).unwrap();
    let want: Vec<f64> = recorded["losses"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(losses.len(), want.len());
    for (i, (got, want)) in losses.iter().zip(&want).enumerate() {
        assert!(((got - want) / want).abs() <= 1e-5, "step {}: browser loss {got} vs native {want}", i + 1);
    }
    assert_eq!(accuracy, recorded["train_accuracy"].as_f64().unwrap());
}

/// The browser step benchmark (`bench/browser_steps.mjs`) through the wasm API it calls:
/// 3 warm-up steps and `rounds` timed ones, medians of positive times, and a clear error for a
/// bad strategy.
#[wasm_bindgen_test]
fn web_bench_runs_warm_up_and_timed_steps() {
    use webtune::web::{WebBench, WebSession};
    let config = BertConfig::tiny();
    let config_json = serde_json::to_vec(&config).unwrap();
    let session = WebSession::new(&config_json, TOKENIZER_JSON, &random_bert(&config, 7)).unwrap();
    let mut bench = WebBench::new(&session, "full", 8, 2, 2).unwrap();
    let mut steps = 0;
    while bench.next_step().unwrap() {
        steps += 1;
    }
    assert_eq!(steps, 5, "3 warm-up + 2 timed steps");
    let timings = bench.timings().unwrap();
    let step_ms = get(&timings, "step_ms").as_f64().unwrap();
    assert!(step_ms > 0.0 && get(&timings, "rounds").as_f64() == Some(2.0) && get(&timings, "seq_len").as_f64() == Some(8.0));
    assert!(WebBench::new(&session, "lora:0", 8, 2, 2).is_err(), "rank 0 accepted");
    let products = WebBench::gemm(&session, 6, 1).unwrap();
    assert_eq!(js_sys::Array::from(&products).length(), 3);
}

/// The options' contract through the web shell: the spec as plain objects (what the page's form
/// reads), a misspelled field and a bound refused by name, a wasm32 step count that cannot
/// overflow, and a record head refused for an unknown field.
#[wasm_bindgen_test]
fn option_contract_crosses_the_wire() {
    let spec = webtune::web::option_spec().unwrap();
    let fields = js_sys::Array::from(&spec);
    let lr = fields.iter().find(|f| get(f, "name").as_string().as_deref() == Some("learning_rate")).expect("learning_rate in the spec");
    assert_eq!(get(&lr, "default_text").as_string().as_deref(), Some("2e-5"));
    assert_eq!(get(&lr, "max").as_f64(), Some(1.0));
    assert_eq!(get(&lr, "min_exclusive").as_bool(), Some(true));
    assert!(webtune::web::validate_options(r#"{"epochs": 2}"#).is_none());
    let err = webtune::web::validate_options(r#"{"epoch": 2}"#).unwrap();
    assert!(err.contains("unknown field `epoch`"), "{err}");
    let err = webtune::web::validate_options(r#"{"lora": {"dropout": 1}}"#).unwrap();
    assert!(err.contains("lora.dropout") && err.contains("Adapter dropout"), "{err}");
    // 4,294,968 sentences × 1000 epochs at batch 1: more steps than a u32 holds, refused.
    let options = webtune::TrainOptions { epochs: 1000, batch_size: 1, ..webtune::TrainOptions::default() };
    assert!(webtune::options::total_steps(4_294_968, &options).is_err());
    let err = webtune::web::check_record(r#"{"format": "webtune-record", "version": 1, "optoins": {}}"#).unwrap();
    assert!(err.contains("optoins"), "{err}");
}

#[wasm_bindgen_test]
fn device_contract_crosses_the_wire() {
    let spec = webtune::web::device_spec().unwrap();
    let values: Vec<String> = js_sys::Array::from(&get(&spec, "values")).iter().filter_map(|v| v.as_string()).collect();
    assert_eq!(values, ["auto", "gpu", "cpu"]);
    assert_eq!(get(&spec, "default").as_string().as_deref(), Some("auto"));
    let verdict = webtune::web::calibration_verdict(1.0, 4.0, "the first steps").unwrap();
    assert_eq!(get(&verdict, "device").as_string().as_deref(), Some("gpu"));
    assert!(get(&verdict, "message").as_string().unwrap().contains("4.0× faster"));
    assert!(webtune::web::gpu_unavailable_message("no GPU adapter").contains("CPU"));
}
