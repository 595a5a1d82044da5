//! Finite-difference checks of the hand-written backward pass (src/encoder.rs, on the kernels
//! of src/kernels.rs): on a small random BERT, the analytic gradient of the training loss with
//! respect to elements of every parameter — embeddings, each LayerNorm, every Linear of both
//! layers, pooler, classifier — is compared with central differences, without dropout and with
//! dropout (the same masks for every evaluation). Also the kernels' exp and erf against libm.
use crate::common;

use candle_core::{Device, Tensor};
use common::*;
use webtune::encoder::{self, DropoutSource};
use webtune::kernels;
use webtune::model::{self, Dropout, Linear, Pretrained};
use webtune::run_model::RunModel;
use webtune::{rng, Strategy};

const EPS: f32 = 1e-2;

fn dropout_source(rng: &mut rng::SeededRng, on: bool) -> Option<DropoutSource<'_>> {
    on.then_some(DropoutSource { rng, p: Dropout { hidden: 0.2, attention: 0.2, classifier: 0.2, adapter: 0.2 } })
}

/// The loss of the model with the given weights (no gradients).
fn loss(p: &Pretrained, weights: &webtune::model::BertWeights, head: &Linear, with_dropout: bool) -> f64 {
    let no_grads = weights.map(&mut |_, _, _| Ok(None)).unwrap();
    let head_grads = Linear { weight_t: None, bias: None };
    let mut rng = rng::seeded(5, 2);
    let model = encoder::TrainModel { weights, grads: &no_grads, head, head_grads: &head_grads, word_embeddings_train: false, adapters: None };
    let out = encoder::train_step(&p.config, model, &small_batch(p), &[1, 0], dropout_source(&mut rng, with_dropout), |_| Ok(())).unwrap();
    out.loss
}

/// `t` with element `i` moved by `delta`.
fn nudged(t: &Tensor, i: usize, delta: f32) -> Tensor {
    let mut v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v[i] += delta;
    Tensor::from_vec(v, t.shape(), &Device::Cpu).unwrap()
}

fn check(with_dropout: bool) {
    let p = small_bert();
    let head = model::init_classifier(&p.config, 2, 3).unwrap();
    let head = Linear { weight_t: (head.weight_t * 20.0).unwrap(), bias: head.bias };
    let run = RunModel::build(&p, Strategy::Full, head.clone(), &Default::default(), 0).unwrap();
    let mut rng = rng::seeded(5, 2);
    let b = small_batch(&p);
    let out = encoder::train_step(&p.config, run.train_model(), &b, &[1, 0], dropout_source(&mut rng, with_dropout), |_| Ok(())).unwrap();
    let word_rows = out.word_rows.expect("full trains the word embeddings");
    let slots = run.grads.named_values(|_, _, s| s.clone());
    let mut checked = 0;
    for ((name, tensor), (_, slot)) in p.weights.stored_named().into_iter().zip(slots) {
        let n = tensor.elem_count();
        let h = p.config.hidden_size;
        // Elements to probe: for the word embeddings, in a row the batch uses.
        let probes: Vec<usize> = if name == "embeddings.word_embeddings.weight" { vec![b.ids[1] as usize * h + 3, b.ids[6] as usize * h + 11] } else { vec![n / 3, (2 * n) / 3 + 1] };
        for i in probes {
            let analytic = match &slot {
                Some(slot) => slot.peek(|g| g[i]).expect("every trained tensor got a gradient"),
                None => {
                    let (row, col) = (i / h, i % h);
                    word_rows.iter().find(|(id, _)| *id as usize == row).map_or(0.0, |(_, r)| r[col])
                }
            };
            let with = |delta: f32| {
                let weights = p.weights.map(&mut |n2, _, t| Ok(if n2 == name { nudged(t, i, delta) } else { t.clone() })).unwrap();
                loss(&p, &weights, &head, with_dropout)
            };
            let numeric = (with(EPS) - with(-EPS)) / (2.0 * EPS as f64);
            let a = analytic as f64;
            assert!((a - numeric).abs() <= 2e-3 + 2e-2 * numeric.abs(), "dropout {with_dropout}: d loss / d {name}[{i}]: analytic {a}, numeric {numeric}");
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * (5 + 2 * 16 + 2));
    // The classifier, from its own slots.
    for (k, (t, slot)) in [(&head.weight_t, &run.head_grads.weight_t), (&head.bias, &run.head_grads.bias)].into_iter().enumerate() {
        let i = t.elem_count() / 2;
        let analytic = slot.as_ref().unwrap().peek(|g| g[i]).unwrap() as f64;
        let with = |delta: f32| {
            let h2 = if k == 0 { Linear { weight_t: nudged(&head.weight_t, i, delta), bias: head.bias.clone() } } else { Linear { weight_t: head.weight_t.clone(), bias: nudged(&head.bias, i, delta) } };
            loss(&p, &p.weights, &h2, with_dropout)
        };
        let numeric = (with(EPS) - with(-EPS)) / (2.0 * EPS as f64);
        assert!((analytic - numeric).abs() <= 2e-3 + 2e-2 * numeric.abs(), "classifier {k}: analytic {analytic}, numeric {numeric}");
    }
}

#[test]
fn backward_matches_finite_differences_without_dropout() {
    check(false);
}

#[test]
fn backward_matches_finite_differences_with_dropout() {
    check(true);
}

#[test]
fn exp_and_erf_match_libm() {
    let mut worst = (0f32, 0f32);
    for i in 0..200_000 {
        let x = -87.0 + i as f32 * 0.000875; // the normal range; below, f32 results are denormal
        let (ours, libm_value) = (kernels::exp(x), libm::expf(x));
        if libm_value > 0.0 {
            worst.0 = worst.0.max((ours - libm_value).abs() / libm_value);
        }
        let y = -6.0 + i as f32 * 0.00006;
        worst.1 = worst.1.max((kernels::erf(y) - libm::erff(y)).abs());
    }
    assert!(worst.0 <= 4e-7, "exp: worst relative error {}", worst.0);
    assert!(worst.1 <= 5e-7, "erf: worst absolute error {}", worst.1);
    assert_eq!(kernels::exp(-100.0), 0.0, "underflow gives 0, as expf");
}

/// The loss of a LoRA model with these adapters, dropout on (same masks every evaluation).
fn lora_loss(p: &Pretrained, adapters: &webtune::params::Adapters, head: &Linear) -> f64 {
    let no_grads = p.weights.map(&mut |_, _, _| Ok(None)).unwrap();
    let head_grads = Linear { weight_t: None, bias: None };
    let mut rng = rng::seeded(5, 2);
    let set = encoder::AdapterSet { adapters, grads: None };
    let model = encoder::TrainModel { weights: &p.weights, grads: &no_grads, head, head_grads: &head_grads, word_embeddings_train: false, adapters: Some(set) };
    encoder::train_step(&p.config, model, &small_batch(p), &[1, 0], dropout_source(&mut rng, true), |_| Ok(())).unwrap().loss
}

/// LoRA adapters on all six projections with adapter dropout (PEFT's golden covers dropout 0):
/// dA and dB of every adapter of both layers against central differences.
#[test]
fn lora_backward_matches_finite_differences_with_adapter_dropout() {
    use webtune::types::{LoraOptions, Projection};
    let p = small_bert();
    let head = model::init_classifier(&p.config, 2, 3).unwrap();
    let head = Linear { weight_t: (head.weight_t * 20.0).unwrap(), bias: head.bias };
    let options = LoraOptions { targets: Projection::ALL.to_vec(), alpha: 4.0, dropout: 0.2, ..LoraOptions::default() };
    let mut run = RunModel::build(&p, Strategy::Lora(2), head.clone(), &options, 1).unwrap();
    // B starts at zero (as in PEFT), which would hide A's gradient: give it values.
    let adapters = run.adapters.as_mut().unwrap();
    let mut values = rng::seeded(9, 9);
    for layer in adapters.layers.iter_mut() {
        for adapter in layer.iter_mut().flatten() {
            let shape = adapter.b_t.dims().to_vec();
            let n = shape.iter().product();
            adapter.b_t = Tensor::from_vec(rng::normal_vec(&mut values, n, 0.0, 0.5), shape, &Device::Cpu).unwrap();
        }
    }
    let adapters = run.adapters.clone().unwrap();
    let mut rng = rng::seeded(5, 2);
    let b = small_batch(&p);
    encoder::train_step(&p.config, run.train_model(), &b, &[1, 0], dropout_source(&mut rng, true), |_| Ok(())).unwrap();
    let slots = run.adapter_grads.as_ref().unwrap();
    let mut checked = 0;
    for ((l, proj, slot), _) in slots.iter().zip(adapters.iter()) {
        for which in 0..2 {
            let (slot, tensor) = if which == 0 { (&slot.a_t, &adapters.layers[l][proj as usize].as_ref().unwrap().a_t) } else { (&slot.b_t, &adapters.layers[l][proj as usize].as_ref().unwrap().b_t) };
            let i = tensor.elem_count() / 3;
            let analytic = slot.peek(|g| g[i]).unwrap() as f64;
            let with = |delta: f32| {
                let mut nudged_adapters = adapters.clone();
                let a = nudged_adapters.layers[l][proj as usize].as_mut().unwrap();
                if which == 0 { a.a_t = nudged(&a.a_t, i, delta) } else { a.b_t = nudged(&a.b_t, i, delta) }
                lora_loss(&p, &nudged_adapters, &head)
            };
            let numeric = (with(EPS) - with(-EPS)) / (2.0 * EPS as f64);
            assert!((analytic - numeric).abs() <= 2e-3 + 2e-2 * numeric.abs(), "layer {l} {proj:?} {}: analytic {analytic}, numeric {numeric}", ["A", "B"][which]);
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * 6 * 2);
}

/// The GPU executor's backward (on lavapipe where there is no GPU) against the same central
/// differences, with dropout (the same masks: drawn on the CPU from the same stream): every
/// tensor the GPU trains, two elements each.
#[test]
fn gpu_backward_matches_finite_differences_with_dropout() {
    use webtune::gpu::{Gpu, GpuExecutor, GpuModel, GpuTrainStep, Progress};
    let p = small_bert();
    let head = model::init_classifier(&p.config, 2, 3).unwrap();
    let head = Linear { weight_t: (head.weight_t * 20.0).unwrap(), bias: head.bias };
    let run = RunModel::build(&p, Strategy::Full, head.clone(), &Default::default(), 0).unwrap();
    let gpu = Gpu::request_blocking(0).unwrap_or_else(|e| panic!("{e} — install a Vulkan driver (./build.sh setup installs Mesa's lavapipe)"));
    let model = GpuModel::upload(&gpu, &run, Default::default()).unwrap();
    let executor = GpuExecutor::new(gpu, model);
    let b = small_batch(&p);
    let mut rng = rng::seeded(5, 2);
    let mut dropout = dropout_source(&mut rng, true);
    let mut step = GpuTrainStep::new(&p.config, run.train_model(), b.clone(), vec![1, 0]).unwrap();
    while !matches!(step.advance(&executor, run.train_model(), &mut dropout, |_| Ok(())).unwrap(), Progress::Done(_)) {}
    let gradients = executor.model().gradients();
    assert_eq!(gradients.len(), 5 + 2 * 16, "every encoder tensor trains on the GPU (the pooler with the head on the CPU)");
    let h = p.config.hidden_size;
    for (name, gradient) in gradients {
        let values = gradient.read_blocking(&executor.gpu).unwrap();
        let tensor = p.weights.stored_named().into_iter().find(|(n, _)| *n == name).unwrap().1;
        let n = tensor.elem_count();
        let probes: Vec<usize> = if name == "embeddings.word_embeddings.weight" { vec![b.ids[1] as usize * h + 3, b.ids[6] as usize * h + 11] } else { vec![n / 3, (2 * n) / 3 + 1] };
        for i in probes {
            let with = |delta: f32| {
                let weights = p.weights.map(&mut |n2, _, t| Ok(if n2 == name { nudged(t, i, delta) } else { t.clone() })).unwrap();
                loss(&p, &weights, &head, true)
            };
            let numeric = (with(EPS) - with(-EPS)) / (2.0 * EPS as f64);
            let analytic = values[i] as f64;
            assert!((analytic - numeric).abs() <= 2e-3 + 2e-2 * numeric.abs(), "GPU: d loss / d {name}[{i}]: analytic {analytic}, numeric {numeric}");
        }
    }
}
