//! The GPU executor against the CPU one on the real all-MiniLM-L6-v2 (on Mesa's lavapipe where
//! there is no GPU): the notebook experiment with the same seed — dropout on, the same masks —
//! gives the same per-step losses (within 1e-4 relative) and the same accuracies, for every
//! strategy the GPU runs.
use crate::common;

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
    let options = TrainOptions { epochs: 2, ..TrainOptions::default() };
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

#[test]
fn lora_on_the_gpu_gives_the_cpu_run() {
    assert_same_run(Strategy::Lora(4));
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
    let options = TrainOptions { epochs: 2, batch_size: 4, ..TrainOptions::default() };
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

/// The GPU's eval pass against PyTorch + transformers (../shared/golden): every token's last
/// hidden state and the pooler output, one sentence at a time (each its own length) and all in
/// one padded batch with the [CLS]-only top layer.
#[test]
fn gpu_hidden_states_and_pooler_match_transformers() {
    use webtune::gpu::{GpuEvalPass, GpuExecutor, GpuModel, Progress};
    let golden = golden("golden_minilm.json");
    let session = minilm();
    let pretrained = session.pretrained();
    let head = webtune::model::init_classifier(&pretrained.config, 2, 0).unwrap();
    let frozen = webtune::run_model::RunModel::build(pretrained, Strategy::Frozen, head, &Default::default(), 0).unwrap();
    let gpu = gpu();
    let model = GpuModel::upload(&gpu, &frozen, Default::default()).unwrap();
    let executor = GpuExecutor::new(gpu, model);
    let encode = |texts: &[&str], keep_hidden: bool| {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| pretrained.predict_encoder.encode_ids(t).unwrap()).collect();
        let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let batch = pretrained.predict_encoder.batch(&refs, false);
        let mut pass = GpuEvalPass::new(&pretrained.config, pretrained.config.num_hidden_layers, batch, keep_hidden).unwrap();
        loop {
            if let Progress::Done(out) = pass.advance(&executor, &pretrained.weights).unwrap() {
                return out;
            }
        }
    };
    let sentences = golden["sentences"].as_array().unwrap();
    let hidden = pretrained.config.hidden_size;
    for sentence in sentences {
        let text = sentence["text"].as_str().unwrap();
        let out = encode(&[text], true);
        let rows: Vec<&[f32]> = out.last_hidden.as_ref().unwrap().chunks(hidden).collect();
        let expected = sentence["last_hidden_state_full"].as_array().unwrap();
        assert_eq!(rows.len(), expected.len(), "sequence length of {text:?}");
        let worst = rows.iter().zip(expected).map(|(r, e)| max_abs_diff(r, &f32s(e))).fold(0.0, f32::max);
        assert!(worst <= 1e-4, "{text:?}: the GPU's last hidden state differs from transformers' by {worst}");
        let pooled = max_abs_diff(&out.pooled, &f32s(&sentence["pooler_output"]));
        assert!(pooled <= 1e-4, "{text:?}: the GPU's pooler output differs by {pooled}");
    }
    let texts: Vec<&str> = sentences.iter().map(|s| s["text"].as_str().unwrap()).collect();
    let out = encode(&texts, false);
    for (sentence, pooled) in sentences.iter().zip(out.pooled.chunks(hidden)) {
        let diff = max_abs_diff(pooled, &f32s(&sentence["pooler_output"]));
        assert!(diff <= 1e-4, "{:?}: the GPU's pooler output in a padded batch differs by {diff}", sentence["text"]);
    }
}
