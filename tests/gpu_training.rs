//! The GPU executor against the CPU one on the real all-MiniLM-L6-v2 (on Mesa's lavapipe where
//! there is no GPU): the notebook experiment with the same seed — dropout on, the same masks —
//! gives the same per-step losses (within 1e-4 relative) and the same accuracies, for every
//! strategy the GPU runs.
mod common;

use common::*;
use webtune::data::parse_labelled_text;
use webtune::events::Event;
use webtune::gpu::Gpu;
use webtune::{Strategy, TrainOptions};

fn gpu() -> Gpu {
    Gpu::request_blocking(0).unwrap_or_else(|e| panic!("{e} — install a Vulkan driver (./build.sh setup installs Mesa's lavapipe)"))
}

/// (per-step losses, per-epoch (train, val) accuracies, device) of a notebook run.
fn notebook_run(strategy: Strategy, on_gpu: bool) -> (Vec<f64>, Vec<(f64, Option<f64>)>, String) {
    let session = minilm();
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let options = TrainOptions { epochs: 3, ..TrainOptions::default() };
    let mut run = session.start_run(strategy, &data, Some(&data), &options).unwrap();
    if on_gpu {
        run.use_gpu(gpu()).unwrap();
    }
    let (mut losses, mut accuracies, mut device) = (Vec::new(), Vec::new(), String::new());
    loop {
        match run.step() {
            Event::Start { device: d, .. } => device = d,
            Event::Step { loss, .. } => losses.push(loss),
            Event::Epoch { train_accuracy, val_accuracy, .. } => accuracies.push((train_accuracy, val_accuracy)),
            Event::Done { .. } => return (losses, accuracies, device),
            Event::Error { message } => panic!("{strategy} on {}: {message}", if on_gpu { "the GPU" } else { "the CPU" }),
            _ => {}
        }
    }
}

fn assert_same_run(strategy: Strategy) {
    let (cpu_losses, cpu_accuracy, cpu_device) = notebook_run(strategy, false);
    let (gpu_losses, gpu_accuracy, gpu_device) = notebook_run(strategy, true);
    assert_eq!(cpu_device, "cpu");
    assert!(gpu_device.starts_with("gpu: "), "the run says where it ran: {gpu_device}");
    assert_eq!(cpu_losses.len(), gpu_losses.len());
    for (step, (c, g)) in cpu_losses.iter().zip(&gpu_losses).enumerate() {
        assert!((c - g).abs() <= 1e-4 * c.abs(), "{strategy} step {}: loss {g} on the GPU, {c} on the CPU", step + 1);
    }
    assert_eq!(cpu_accuracy, gpu_accuracy, "{strategy}: accuracies");
}

#[test]
fn full_fine_tuning_on_the_gpu_gives_the_cpu_run() {
    assert_same_run(Strategy::Full);
}

#[test]
fn top_layers_on_the_gpu_give_the_cpu_run() {
    assert_same_run(Strategy::Top(2));
}

#[test]
fn frozen_encoder_on_the_gpu_gives_the_cpu_run() {
    assert_same_run(Strategy::Frozen);
}

/// Probabilities of the notebook's sentences under a run's model.
fn probabilities(run: &webtune::Run) -> Vec<Vec<f64>> {
    let texts: Vec<String> = parse_labelled_text(&notebook_text()).unwrap().examples.iter().map(|e| e.text.clone()).collect();
    run.predict(&texts).unwrap().into_iter().map(|p| p.probabilities).collect()
}

/// A real `device.destroy()` in the second epoch: the run stops by itself, says why, and keeps
/// the model of the end of the first epoch — the CPU run's model after one epoch.
#[test]
fn a_gpu_lost_mid_run_stops_it_with_the_model_of_the_last_finished_epoch() {
    let session = minilm();
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let options = TrainOptions { epochs: 3, batch_size: 4, ..TrainOptions::default() };
    let mut gpu_run = session.start_run(Strategy::Full, &data, Some(&data), &options).unwrap();
    gpu_run.use_gpu(gpu()).unwrap();
    let stopped = loop {
        match gpu_run.step() {
            Event::Step { epoch: 2, .. } => gpu_run.destroy_gpu_for_tests(),
            event @ (Event::Done { .. } | Event::Stopped { .. } | Event::Error { .. }) => break event,
            _ => {}
        }
    };
    let steps_per_epoch = gpu_run.steps_per_epoch();
    match &stopped {
        Event::Stopped { steps, reason: Some(reason), .. } => {
            assert_eq!(*steps, steps_per_epoch, "keeps the first epoch's model");
            assert!(reason.contains("GPU was lost") && reason.contains("end of epoch 1"), "{reason}");
        }
        other => panic!("expected Stopped with a reason, got {other:?}"),
    }
    let mut cpu_run = session.start_run(Strategy::Full, &data, Some(&data), &options).unwrap();
    while !matches!(cpu_run.step(), Event::Epoch { epoch: 1, .. }) {}
    cpu_run.stop();
    for (g, c) in probabilities(&gpu_run).iter().zip(probabilities(&cpu_run)) {
        for (a, b) in g.iter().zip(&c) {
            assert!((a - b).abs() < 1e-4, "probabilities after the loss {g:?}, of the CPU's first epoch {c:?}");
        }
    }
}
