//! A non-finite gradient or weight stops the run at the step that caused it, and the broken
//! model is neither exported nor used for predictions (issue 25: nothing silently wrong).
//!
//! The run-level fault is real: a checkpoint whose top layer's output LayerNorm has one
//! infinite scale. The [CLS] row then holds an infinity, every pooler pre-activation is ±inf,
//! tanh gives ±1 and the loss stays finite — but tanh's derivative is 0 there, and the pooler's
//! weight gradient is 0 · inf = NaN (and so is the LayerNorm's input gradient, whence every
//! gradient below it). Before the check, a one-step run finished "Done" with NaN
//! weights, and every prediction's argmax quietly answered class 0.
use crate::common;

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var};
use common::*;
use webtune::data::parse_labelled_text;
use webtune::events::Event;
use webtune::optim::{Adam, AdamConfig, Param};
use webtune::params::GradSlot;
use webtune::{Session, Strategy, TrainOptions};

/// The tiny random BERT with an infinite scale in its top output LayerNorm.
fn session_with_an_infinite_top_layer_norm() -> Session {
    let top = webtune::config::BertConfig::tiny().num_hidden_layers - 1;
    tiny_session_with_first_value(&format!("bert.encoder.layer.{top}.output.LayerNorm.weight"), f32::INFINITY)
}

/// One run of a single step (the whole data set in one batch: the fault is on the last step);
/// returns the tensors before it, every step's loss and the event that ended it.
fn one_step_run(options: TrainOptions) -> (webtune::Run, HashMap<String, Vec<f32>>, Vec<f64>, Event) {
    let session = session_with_an_infinite_top_layer_norm();
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let options = TrainOptions { epochs: 1, batch_size: data.len(), ..options };
    let mut run = session.start_run(Strategy::Full, &data, None, &options).unwrap();
    assert_eq!(run.total_steps(), 1);
    let before = run.named_tensors().unwrap().iter().map(|(n, t)| (n.clone(), to_vec(t))).collect();
    let mut losses = Vec::new();
    let end = loop {
        match run.step() {
            Event::Step { loss, .. } => losses.push(loss),
            event @ (Event::Done { .. } | Event::Error { .. } | Event::Stopped { .. }) => break event,
            _ => {}
        }
    };
    (run, before, losses, end)
}

fn assert_model_refused(run: &webtune::Run) {
    let texts = vec!["a great day".to_string()];
    let predict = run.predict(&texts).err().map(|e| e.to_string()).unwrap_or_else(|| panic!("a failed run predicted {:?}", run.predict(&texts)));
    assert!(predict.contains("cannot predict") && predict.contains("step 1"), "{predict}");
    let export = run.export().err().expect("a failed run was exported").to_string();
    assert!(export.contains("cannot export") && export.contains("step 1"), "{export}");
}

#[test]
fn a_nan_gradient_on_the_last_step_stops_the_run_and_refuses_its_model() {
    let (run, _, losses, end) = one_step_run(TrainOptions::default());
    match end {
        Event::Error { message } => {
            assert!(message.contains("step 1") && message.contains("made bert.") && message.contains("infinite or NaN"), "{message}")
        }
        other => panic!("a step whose gradient is NaN ended the run with {other:?}"),
    }
    // The fault is in the gradient, not the loss: the loss check did not see it.
    assert!(losses.iter().all(|l| l.is_finite()), "losses {losses:?}");
    assert_model_refused(&run);
}

#[test]
fn a_nan_gradient_norm_stops_a_clipped_run_before_any_update() {
    let (run, before, losses, end) = one_step_run(TrainOptions { max_grad_norm: Some(1.0), ..TrainOptions::default() });
    match end {
        // NaN < max is false, so torch's clip factor min(1, max / NaN) was 1: the NaN went on.
        Event::Error { message } => assert!(message.contains("gradient norm became NaN at step 1"), "{message}"),
        other => panic!("a step whose gradient norm is NaN ended the run with {other:?}"),
    }
    assert!(losses.iter().all(|l| l.is_finite()), "losses {losses:?}");
    for (name, tensor) in run.named_tensors().unwrap() {
        let same = to_vec(&tensor).iter().zip(&before[&name]).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{name} was updated by the step whose gradient norm was NaN");
    }
    assert_model_refused(&run);
}

/// The optimizer alone: one parameter whose gradient of step `bad_step` is `bad`.
fn optimizer_with_a_bad_gradient(bad: f32, bad_step: usize, max_grad_norm: Option<f64>) -> (Vec<f32>, Vec<std::result::Result<Option<f64>, String>>, Vec<f32>) {
    let initial = vec![0.5f32, -0.25, 1.0, 2.0];
    let tensor = Var::from_tensor(&Tensor::new(initial.as_slice(), &Device::Cpu).unwrap()).unwrap().as_tensor().clone();
    let slot = GradSlot::new(initial.len());
    let param = Param::new("body.weight".into(), tensor.clone(), false, Some(slot.clone()));
    let mut adam = Adam::new(vec![param], AdamConfig::default());
    let mut results = Vec::new();
    let mut before_bad = Vec::new();
    for step in 1..=bad_step {
        let g = if step == bad_step { [0.1, bad, -0.2, 0.3] } else { [0.1, -0.1, 0.2, 0.05] };
        slot.write(|buf, _| buf.copy_from_slice(&g));
        if step == bad_step {
            before_bad = to_vec(&tensor);
        }
        results.push(adam.step(None, 1e-3, 1e-3, max_grad_norm).map_err(|e| e.to_string()));
    }
    (before_bad, results, to_vec(&tensor))
}

#[test]
fn the_optimizer_refuses_non_finite_and_overflowing_gradients_naming_the_step() {
    // NaN and ±inf gradients, and a finite one whose square overflows float32 (the second
    // moment becomes inf and the weight would silently never move again, as in torch).
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30] {
        let (_, results, _) = optimizer_with_a_bad_gradient(bad, 3, None);
        assert!(results[..2].iter().all(Result::is_ok), "{bad}: {results:?}");
        let message = results[2].clone().expect_err(&format!("gradient {bad} accepted"));
        assert!(message.contains("step 3") && message.contains("body.weight"), "{bad}: {message}");
    }
    // With clipping, the norm is checked first and nothing is updated.
    for bad in [f32::NAN, f32::INFINITY] {
        let (before, results, after) = optimizer_with_a_bad_gradient(bad, 2, Some(1.0));
        let message = results[1].clone().expect_err(&format!("gradient {bad} accepted under clipping"));
        assert!(message.contains("gradient norm became") && message.contains("step 2"), "{bad}: {message}");
        assert_eq!(before, after, "{bad}: the weights moved although the norm was not finite");
    }
    // A large but representable gradient under clipping is simply clipped.
    let (_, results, after) = optimizer_with_a_bad_gradient(1e30, 2, Some(1.0));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(after.iter().all(|v| v.is_finite()));
}
