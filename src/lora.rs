//! LoRA (Hu et al. 2021) as Hugging Face PEFT implements it: a `lora:R` run's adapters, their
//! initialisation, the weights with the adapters folded in (the merged export), and PEFT's
//! adapter folder (`adapter_config.json` + `adapter_model.safetensors`).
//!
//! An adapted projection computes x·Wᵀ + b + (α/r)·(x·Aᵀ)·Bᵀ with A (r × in) and B (out × r);
//! W stays the pre-trained tensor (shared, never copied); the forward and backward passes are
//! in [`crate::encoder`].
use candle_core::{Device, Tensor};
use serde_json::json;

use crate::architecture::Architecture;
use crate::checkpoint;
use crate::config::BertConfig;
use crate::kernels::{self, Mat};
use crate::params::{Adapter, Adapters, BertWeights, GradSlot, LayerAdapters, Linear};
use crate::rng;
use crate::types::{LoraOptions, Projection};
use crate::Result;

/// (inputs, outputs) of a projection.
fn projection_dims(config: &BertConfig, p: Projection) -> (usize, usize) {
    let (h, i) = (config.hidden_size, config.intermediate_size);
    match p {
        Projection::Intermediate => (h, i),
        Projection::Output => (i, h),
        _ => (h, h),
    }
}

/// Parameters of a run's adapters.
pub fn adapter_parameters(config: &BertConfig, options: &LoraOptions, rank: usize) -> usize {
    let per_layer: usize = options.targets.iter().map(|&p| {
        let (input, output) = projection_dims(config, p);
        rank * (input + output)
    }).sum();
    per_layer * config.num_hidden_layers
}

/// New adapters as PEFT creates them: A from Kaiming-uniform with a = √5 (PyTorch's default for
/// a Linear: U(−1/√in, 1/√in)), B zeros — so the model starts exactly at the pre-trained one.
/// Drawn from the run's seed, layer by layer in PEFT's order.
pub fn init_adapters(config: &BertConfig, options: &LoraOptions, rank: usize, seed: u64) -> Result<Adapters> {
    let mut rng = rng::seeded(seed, 17);
    let mut layers = Vec::with_capacity(config.num_hidden_layers);
    for _ in 0..config.num_hidden_layers {
        let mut layer: LayerAdapters = Default::default();
        for p in Projection::ALL.into_iter().filter(|&p| options.adapts(p)) {
            let (input, output) = projection_dims(config, p);
            let bound = 1.0 / (input as f32).sqrt();
            let a: Vec<f32> = rng::uniform_vec(&mut rng, rank * input, -bound, bound);
            // Aᵀ (in × r) from A (r × in).
            let a_t = Tensor::from_vec(a, (rank, input), &Device::Cpu)?.t()?.contiguous()?;
            let b_t = Tensor::zeros((rank, output), candle_core::DType::F32, &Device::Cpu)?;
            layer[p as usize] = Some(Adapter { a_t: crate::params::trainable_copy(&a_t)?, b_t: crate::params::trainable_copy(&b_t)? });
        }
        layers.push(layer);
    }
    Ok(Adapters { layers, scale: (options.alpha / rank as f64) as f32, rank })
}

/// A gradient slot for every adapter tensor.
pub fn gradient_slots(adapters: &Adapters) -> Adapters<GradSlot> {
    let layers = adapters
        .layers
        .iter()
        .map(|layer| layer.clone().map(|a| a.map(|a| Adapter { a_t: GradSlot::new(a.a_t.elem_count()), b_t: GradSlot::new(a.b_t.elem_count()) })))
        .collect();
    Adapters { layers, scale: adapters.scale, rank: adapters.rank }
}

/// scale · Aᵀ·Bᵀ (in × out): the adapter's update to a weight in the stored (transposed) layout.
pub fn delta_t(adapter: &Adapter, scale: f32) -> Result<Vec<f32>> {
    let (input, rank) = adapter.a_t.dims2()?;
    let output = adapter.b_t.dims2()?.1;
    let a = adapter.a_t.flatten_all()?.to_vec1::<f32>()?;
    let b = adapter.b_t.flatten_all()?.to_vec1::<f32>()?;
    let mut delta = vec![0f32; input * output];
    kernels::gemm(&mut delta, output, false, input, output, rank, Mat::rows(&a, rank), Mat::rows(&b, output));
    delta.iter_mut().for_each(|v| *v *= scale);
    Ok(delta)
}

/// The encoder's weights with every adapter folded in (W + scale·B·A): new tensors for the
/// adapted projections only, the rest shared.
pub fn merged_weights(weights: &BertWeights, adapters: &Adapters) -> Result<BertWeights> {
    let mut merged = weights.clone();
    for (l, p, adapter) in adapters.iter() {
        let linear: &mut Linear = projection_mut(&mut merged.layers[l], p);
        let delta = delta_t(adapter, adapters.scale)?;
        let base = linear.weight_t.flatten_all()?.to_vec1::<f32>()?;
        let sum: Vec<f32> = base.iter().zip(&delta).map(|(w, d)| w + d).collect();
        linear.weight_t = Tensor::from_vec(sum, linear.weight_t.dims(), &Device::Cpu)?;
    }
    Ok(merged)
}

fn projection_mut<T>(layer: &mut crate::params::EncoderLayer<T>, p: Projection) -> &mut Linear<T> {
    match p {
        Projection::Query => &mut layer.query,
        Projection::Key => &mut layer.key,
        Projection::Value => &mut layer.value,
        Projection::AttentionOutput => &mut layer.attention_output,
        Projection::Intermediate => &mut layer.intermediate,
        Projection::Output => &mut layer.output,
    }
}

/// Every adapter tensor with its PEFT name (`…query.lora_A.weight`: A as (r × in), B as
/// (out × r), transformers' orientation; the architecture's module names), without PEFT's
/// `base_model.model.` prefix.
pub fn named_adapter_tensors(adapters: &Adapters, architecture: Architecture) -> Result<Vec<(String, Tensor)>> {
    let mut named = Vec::new();
    for (l, p, adapter) in adapters.iter() {
        let module = format!("{}{}{l}.{}", architecture.base_prefix(), architecture.layer_prefix(), architecture.module_path(p.module_path()));
        named.push((format!("{module}.lora_A.weight"), adapter.a_t.t()?));
        named.push((format!("{module}.lora_B.weight"), adapter.b_t.t()?));
    }
    Ok(named)
}

/// PEFT's `target_modules` for these projections: the short names when they are unambiguous
/// suffixes (query, key, value — PEFT's own default; DistilBERT's q_lin, k_lin, v_lin), else a
/// regular expression PEFT matches against the whole module name (`output.dense` alone would
/// also match `attention.output.dense`).
pub fn peft_target_modules(targets: &[Projection], architecture: Architecture) -> serde_json::Value {
    let short = [Projection::Query, Projection::Key, Projection::Value];
    let path = |t: &Projection| architecture.module_path(t.module_path());
    if targets.iter().all(|t| short.contains(t)) {
        let names: Vec<String> = targets.iter().map(|t| path(t).rsplit('.').next().unwrap_or_default().to_string()).collect();
        return json!(names);
    }
    let alternatives: Vec<String> = targets.iter().map(|t| path(t).replace('.', "\\.")).collect();
    json!(format!(r".*{}\d+\.({})", architecture.layer_prefix().replace('.', "\\."), alternatives.join("|")))
}

/// A PEFT adapter folder's two files. `head` is the trained pooler + classifier, saved as PEFT's
/// `modules_to_save` are (`base_model.model.bert.pooler.dense.*`, `base_model.model.classifier.*`;
/// DistilBERT's pre_classifier, RoBERTa's classifier.dense and out_proj);
/// `base_model` names the pre-trained checkpoint for `base_model_name_or_path`.
pub fn peft_adapter_files(adapters: &Adapters, options: &LoraOptions, head: &[(String, Tensor)], base_model: Option<&str>, architecture: Architecture) -> Result<(Vec<u8>, Vec<u8>)> {
    let config = json!({
        "peft_type": "LORA",
        "task_type": "SEQ_CLS",
        "r": adapters.rank,
        "lora_alpha": options.alpha,
        "lora_dropout": options.dropout,
        "target_modules": peft_target_modules(&options.targets, architecture),
        "modules_to_save": architecture.peft_modules_to_save(),
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "use_rslora": false,
        "use_dora": false,
        "base_model_name_or_path": base_model,
    });
    let mut named: Vec<(String, Tensor)> = named_adapter_tensors(adapters, architecture)?;
    named.extend(head.iter().cloned());
    let named: Vec<(String, Tensor)> = named.into_iter().map(|(n, t)| (format!("base_model.model.{n}"), t)).collect();
    let config_json = serde_json::to_vec_pretty(&config).map_err(|e| crate::Error::Model(format!("adapter_config.json: {e}")))?;
    Ok((config_json, checkpoint::serialize(&named)?))
}
