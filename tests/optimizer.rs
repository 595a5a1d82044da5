//! webtune's Adam/AdamW, gradient clipping and linear warm-up schedule against torch +
//! transformers: tests/data/optimizer_golden.json (written by
//! tests/python/make_optimizer_golden.py) holds parameters, the gradients of each step and
//! torch's parameters after the last step; webtune replays the same gradients through the
//! gradient slots the backward pass fills.
use candle_core::{Device, Tensor, Var};
use serde_json::Value;
use webtune::params::GradSlot;
use webtune::optim::{self, Adam, AdamConfig, Param};
use webtune::Schedule;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/optimizer_golden.json");
    serde_json::from_slice(&std::fs::read(path).expect("optimizer golden file")).expect("golden JSON")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

/// Parameter values by name.
type NamedValues = Vec<(String, Vec<f32>)>;

/// Replays one scenario; returns (final parameters, (body, head) learning rate of each step).
fn replay(sc: &Value) -> (NamedValues, Vec<(f64, f64)>) {
    let params: Vec<Param> = sc["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let shape: Vec<usize> = p["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            let tensor = Var::from_tensor(&Tensor::from_vec(floats(&p["initial"]), shape, &Device::Cpu).unwrap()).unwrap().as_tensor().clone();
            let slot = GradSlot::new(tensor.elem_count());
            Param::new(p["name"].as_str().unwrap().to_string(), tensor, p["is_head"].as_bool().unwrap(), Some(slot))
        })
        .collect();
    let config = AdamConfig { weight_decay: sc["weight_decay"].as_f64().unwrap(), ..AdamConfig::default() };
    let mut adam = Adam::new(params.clone(), config);
    let steps = sc["steps"].as_u64().unwrap() as usize;
    let schedule = if sc["schedule"] == "linear" { Schedule::Linear } else { Schedule::Constant };
    let warmup = optim::warmup_steps(sc["warmup_ratio"].as_f64().unwrap(), steps);
    let (lr, head_lr) = (sc["lr"].as_f64().unwrap(), sc["head_lr"].as_f64().unwrap());
    let mut rates = Vec::new();
    for (step, grads) in sc["grads"].as_array().unwrap().iter().enumerate() {
        for p in &params {
            let g = &grads[&p.name];
            if !g.is_null() {
                let g = floats(g);
                p.grad_slot.as_ref().unwrap().write(|buf, _| buf.copy_from_slice(&g));
            }
        }
        let factor = optim::schedule_factor(schedule, step, steps, warmup);
        rates.push((lr * factor, head_lr * factor));
        adam.step(None, lr * factor, head_lr * factor, sc["max_grad_norm"].as_f64()).unwrap();
    }
    let finals = params.iter().map(|p| (p.name.clone(), p.tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect();
    (finals, rates)
}

#[test]
fn adam_adamw_clipping_and_schedule_match_torch() {
    let golden = golden();
    let scenarios = golden["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 3);
    for sc in scenarios {
        let name = sc["name"].as_str().unwrap();
        let (finals, rates) = replay(sc);
        for (step, (want, got)) in sc["learning_rates"].as_array().unwrap().iter().zip(&rates).enumerate() {
            let want = (want[0].as_f64().unwrap(), want[1].as_f64().unwrap());
            assert!((want.0 - got.0).abs() <= 1e-12 && (want.1 - got.1).abs() <= 1e-12, "{name}: learning rates of step {step}: {got:?} vs torch {want:?}");
        }
        for (p, (pname, values)) in sc["params"].as_array().unwrap().iter().zip(&finals) {
            let want = floats(&p["final"]);
            let initial = floats(&p["initial"]);
            let diff = values.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(diff <= 1e-6, "{name}: {pname} differs from torch by {diff} after the last step");
            assert!(values.iter().zip(&initial).any(|(a, b)| a != b), "{name}: {pname} never moved");
        }
    }
}
