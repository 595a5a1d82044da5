//! The training options' contract (src/options.rs): options given as JSON refuse unknown
//! fields by name, every limit of the spec is enforced with the spec's message, a run's step
//! count cannot overflow wasm32's usize, and the spec's defaults are `TrainOptions::default()`.
use serde_json::{json, Value};
use webtune::options::{self, Kind, MAX_TOTAL_STEPS};
use webtune::types::LoraOptions;
use webtune::{Strategy, TrainOptions};

fn refused(json: &Value) -> String {
    TrainOptions::from_json(&json.to_string()).and_then(|o| o.lora.validate()).expect_err(&format!("{json} was accepted")).to_string()
}

#[test]
fn a_misspelled_field_is_refused_by_name() {
    let err = refused(&json!({ "epoch": 2 }));
    assert!(err.contains("unknown field `epoch`") && err.contains("`epochs`"), "{err}");
    let err = refused(&json!({ "lora": { "alfa": 16 } }));
    assert!(err.contains("unknown field `alfa`") && err.contains("`alpha`"), "{err}");
    let err = refused(&json!({ "lora": { "targets": ["query", "attention"] } }));
    assert!(err.contains("attention"), "{err}");
    // Known fields, missing ones default.
    let options = TrainOptions::from_json(r#"{ "epochs": 2, "head_learning_rate": null }"#).unwrap();
    assert_eq!(options, TrainOptions { epochs: 2, ..TrainOptions::default() });
}

/// JSON options with `name` (`a.b` for nested) set to `value`.
fn with(name: &str, value: Value) -> Value {
    let mut options = serde_json::to_value(TrainOptions::default()).unwrap();
    let mut slot = &mut options;
    for key in name.split('.') {
        slot = &mut slot[key];
    }
    *slot = value;
    options
}

/// Values just outside each bound of a numeric option.
fn outside(field: &options::FieldSpec) -> Vec<Value> {
    let mut bad = Vec::new();
    if let Some(min) = field.min {
        match (field.kind, field.min_exclusive) {
            (Kind::Whole, _) if min >= 1.0 => bad.push(json!(min as u64 - 1)),
            (Kind::Number, true) => bad.push(json!(min)),
            (Kind::Number, false) => bad.push(json!(min - 1e-9)),
            _ => {}
        }
    }
    if let Some(max) = field.max {
        match (field.kind, field.max_exclusive) {
            (Kind::Whole, _) => bad.push(json!(max as u64 + 1)),
            (Kind::Number, true) => bad.push(json!(max)),
            (Kind::Number, false) => bad.push(json!(max * 1.5)),
            _ => {}
        }
    }
    bad
}

#[test]
fn every_bound_is_refused_with_its_message() {
    let mut checked = 0;
    for field in options::spec() {
        for value in outside(&field) {
            let err = match field.name {
                "top_k" => format!("top:{value}").parse::<Strategy>().unwrap_err().to_string(),
                "lora_rank" => format!("lora:{value}").parse::<Strategy>().unwrap_err().to_string(),
                name => refused(&with(name, value.clone())),
            };
            assert!(err.contains(field.message), "{} = {value}: {err}", field.name);
            if !matches!(field.name, "top_k" | "lora_rank") {
                assert!(err.contains(&format!("{}: ", field.name)), "the message should name {}: {err}", field.name);
            }
            checked += 1;
        }
    }
    assert!(checked >= 28, "only {checked} bounds checked");
    // Non-numeric rules: not a number, no projection, a wrong choice.
    assert!(refused(&with("learning_rate", Value::Null)).contains("learning rate must be a number > 0"));
    assert!(refused(&with("lora.targets", json!([]))).contains("Choose at least one projection"));
    assert!(refused(&with("lora.targets", json!(["query", "query"]))).contains("each once"));
    assert!(refused(&with("schedule", json!("cosine"))).contains("cosine"));
    // A bound's own value is accepted (inclusive ones).
    for (name, value) in [("epochs", json!(options::MAX_EPOCHS)), ("batch_size", json!(options::MAX_BATCH_SIZE)), ("seed", json!(options::MAX_SEED)), ("learning_rate", json!(1.0))] {
        TrainOptions::from_json(&with(name, value.clone()).to_string()).unwrap_or_else(|e| panic!("{name} = {value}: {e}"));
    }
    assert_eq!("lora:4096".parse::<Strategy>().unwrap(), Strategy::Lora(4096));
    assert!(LoraOptions { dropout: 0.99, ..LoraOptions::default() }.validate().is_ok());
}

#[test]
fn a_step_count_that_overflows_u32_is_refused() {
    let options = TrainOptions { epochs: 1000, batch_size: 1, ..TrainOptions::default() };
    // 4,294,967 × 1000 steps fit in a u32; one sentence more does not.
    assert_eq!(options::total_steps(4_294_967, &options).unwrap(), 4_294_967_000);
    let err = options::total_steps(4_294_968, &options).unwrap_err().to_string();
    assert!(err.contains(&MAX_TOTAL_STEPS.to_string()) && err.contains("fewer epochs or a larger batch size"), "{err}");
    // Products beyond u64 are refused too (no wrap-around), whatever the caller validated.
    let huge = TrainOptions { epochs: usize::MAX, batch_size: 1, ..TrainOptions::default() };
    assert!(options::total_steps(usize::MAX, &huge).is_err());
    assert_eq!(options::total_steps(10, &TrainOptions::default()).unwrap(), 20);
}

#[test]
fn the_spec_defaults_are_the_cores_defaults() {
    let spec = options::spec();
    let mut from_spec = serde_json::Map::new();
    let mut lora = serde_json::Map::new();
    for field in &spec {
        match field.name.split_once('.') {
            Some((_, key)) => drop(lora.insert(key.into(), field.default.clone())),
            None if !options::NOT_TRAIN_OPTIONS.contains(&field.name) => drop(from_spec.insert(field.name.into(), field.default.clone())),
            None => {}
        }
        assert!(field.check(&field.default), "{}'s default breaks its own rule", field.name);
    }
    from_spec.insert("lora".into(), Value::Object(lora));
    let options = TrainOptions::from_json(&Value::Object(from_spec).to_string()).unwrap();
    assert_eq!(options, TrainOptions::default());
    let text = |name: &str| spec.iter().find(|f| f.name == name).unwrap().default_text.clone();
    assert_eq!((text("learning_rate"), text("lora.learning_rate"), text("lora.alpha"), text("epochs")), ("2e-5".into(), "5e-4".into(), "8".into(), "4".into()));
}
