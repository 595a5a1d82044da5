//! GPU figures for `webtune bench --device gpu` (native): the time of each WGSL kernel a
//! training step launches, on the model's shapes, with the products' GFLOPS; and a blocking
//! wait for the device, so that a step's units can be timed one by one.
//!
//! A kernel is timed from submit to the device's idle, after a warm-up launch (the first one
//! compiles the pipeline). One submit-and-wait costs tens of microseconds whatever the kernel,
//! so a kernel is launched several times in one submission (enough for about
//! [`TARGET_MS`]) and the time is divided by that count.
use web_time::Instant;

use super::median;
use crate::config::BertConfig;
use crate::gpu::{Gpu, GpuTensor, Kernels, Product, Recorder, View};
use crate::{Error, Result};

/// How long one timed submission should take at least.
const TARGET_MS: f64 = 20.0;
/// The most launches of one kernel per submission.
const MAX_LAUNCHES: usize = 64;

/// Block until everything submitted to `device` has run.
pub fn wait(device: &wgpu::Device) -> Result<()> {
    device.poll(wgpu::PollType::wait_indefinitely()).map(|_| ()).map_err(|e| Error::Gpu(format!("the GPU device stopped: {e}")))
}

/// One kernel of a training step on the GPU.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GpuKernelTiming {
    /// What it computes: `x·W projection`, `dy·Wᵀ ff_up`, `Q·Kᵀ`, `gelu`, …
    pub kernel: String,
    /// Products: C (m × n) = A (m × k) · B (k × n), `count` of them per launch.
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub count: usize,
    /// Median milliseconds of one launch.
    pub ms: f64,
    /// Products only: 2·m·n·k·count / time.
    pub gflops: Option<f64>,
    /// Element-wise kernels: the bytes read and written / time.
    pub gb_per_s: Option<f64>,
    /// How many launches of this shape one `full` step makes (the top layer's [CLS]-only
    /// products left out, as in [`super::GemmTiming`]).
    pub per_full_step: usize,
}

/// What a kernel case launches.
enum Launch {
    Product { a: GpuTensor, b: GpuTensor, c: GpuTensor, layout: Layout, p: Product },
    Gelu { x: GpuTensor, out: GpuTensor },
    LayerNorm { x: GpuTensor, out: GpuTensor, gamma: GpuTensor, beta: GpuTensor, xhat: GpuTensor, rstd: GpuTensor },
    Softmax { scores: GpuTensor, mask: GpuTensor, len: usize, rows_per_sentence: usize },
    Adam { param: GpuTensor, m: GpuTensor, v: GpuTensor, g: GpuTensor, status: GpuTensor },
}

/// How a product's operands lie in their buffers.
#[derive(Clone, Copy)]
enum Layout {
    /// Row-major A (m × k) and B (k × n): a Linear's forward.
    AB,
    /// B stored (n × k): a Linear's input gradient, dy · Wᵀ.
    ABt,
    /// A stored (k × m): a Linear's weight gradient, xᵀ · dy.
    AtB,
    /// Per (sentence, head) blocks of (tokens × hidden) tensors and (len × len) score blocks:
    /// `heads` products per sentence of `len` tokens, `d` the head size.
    Attention { heads: usize, d: usize, hidden: usize, len: usize, kind: AttentionProduct },
}

#[derive(Clone, Copy)]
enum AttentionProduct {
    /// scores = Q · Kᵀ (and dP = dC · Vᵀ)
    QKt,
    /// context = P · V (and dQ = dS · K)
    PV,
    /// dV = Pᵀ · dC (and dK = dSᵀ · Q)
    PtdC,
}

impl Launch {
    fn record(&self, rec: &mut Recorder<'_>) {
        match self {
            Launch::Product { a, b, c, layout, p } => {
                let (m, n, k) = (p.m, p.n, p.k);
                match *layout {
                    Layout::AB => rec.matmul(View::rows(c, n), View::rows(a, k), View::rows(b, n), *p, None),
                    Layout::ABt => rec.matmul(View::rows(c, n), View::rows(a, k), View::transposed(b, k), *p, None),
                    Layout::AtB => rec.matmul(View::rows(c, n), View::transposed(a, m), View::rows(b, n), *p, None),
                    Layout::Attention { heads, d, hidden, len, kind } => {
                        let head = |t| View::block(t, hidden, 0, 0).batched(len * hidden, d);
                        let scores = View::rows(if let AttentionProduct::QKt = kind { c } else { a }, len).batched(heads * len * len, len * len);
                        match kind {
                            AttentionProduct::QKt => rec.matmul(scores, head(a), View::block_transposed(b, hidden, 0, 0).batched(len * hidden, d), *p, None),
                            AttentionProduct::PV => rec.matmul(head(c), scores, head(b), *p, None),
                            AttentionProduct::PtdC => rec.matmul(head(c), View::transposed(a, len).batched(heads * len * len, len * len), head(b), *p, None),
                        }
                    }
                }
            }
            Launch::Gelu { x, out } => rec.gelu(out, x),
            Launch::LayerNorm { x, out, gamma, beta, xhat, rstd } => rec.layer_norm(out, x, gamma, beta, 1e-12, Some((xhat, rstd))),
            Launch::Softmax { scores, mask, len, rows_per_sentence } => rec.masked_softmax(scores, mask, *len, *rows_per_sentence),
            Launch::Adam { param, m, v, g, status } => rec.adam(param, m, v, g, [0.9, 0.999, 1e-8, 2e-5, 1.0, 0.0, 1.0], status),
        }
    }
}

/// A kernel case: its name, what it launches, its sizes and how many one full step makes.
struct Case {
    kernel: String,
    launch: Launch,
    dims: (usize, usize, usize, usize),
    bytes: Option<f64>,
    per_full_step: usize,
}

/// Small values, so that no product overflows.
fn filled(gpu: &Gpu, len: usize) -> GpuTensor {
    GpuTensor::from_slice(gpu, &(0..len).map(|i| ((i % 17) as f32 - 8.0) / 64.0).collect::<Vec<_>>())
}

fn product_case(gpu: &Gpu, kernel: String, layout: Layout, (m, n, k, count): (usize, usize, usize, usize), sizes: (usize, usize, usize), per_full_step: usize) -> Case {
    let (a, b, c) = (filled(gpu, sizes.0), filled(gpu, sizes.1), GpuTensor::zeros(gpu, sizes.2));
    let mut p = Product::new(m, n, k).batch(count, if let Layout::Attention { heads, .. } = layout { heads } else { 1 });
    if let Layout::AtB = layout {
        // Weight gradients accumulate over the step's batches, as in training.
        p = p.accumulating();
    }
    Case { kernel, launch: Launch::Product { a, b, c, layout, p }, dims: (m, n, k, count), bytes: None, per_full_step }
}

/// Every kernel case of a step of `config` on batches of `batch` × `seq` tokens.
fn cases(gpu: &Gpu, config: &BertConfig, batch: usize, seq: usize) -> Vec<Case> {
    let (h, inner, layers, heads) = (config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.num_attention_heads);
    let d = h / heads.max(1);
    let t = batch * seq;
    let below_top = layers.saturating_sub(1);
    let mut cases = Vec::new();
    // The Linear products: per layer query, key, value and attention output, one feed-forward
    // product each way; the top layer's key and value run on every token too.
    for (name, input, out, per_layer) in [("projection", h, h, 4 * below_top + 2.min(layers)), ("ff_up", h, inner, below_top), ("ff_down", inner, h, below_top)] {
        let label = |what: &str| format!("{what} {name} {input}→{out}");
        cases.push(product_case(gpu, label("x·W"), Layout::AB, (t, out, input, 1), (t * input, input * out, t * out), per_layer));
        cases.push(product_case(gpu, label("dy·Wᵀ"), Layout::ABt, (t, input, out, 1), (t * out, input * out, t * input), per_layer));
        cases.push(product_case(gpu, label("xᵀ·dy"), Layout::AtB, (input, out, t, 1), (t * input, t * out, input * out), per_layer));
    }
    let count = batch * heads;
    let attention = |kind| Layout::Attention { heads, d, hidden: h, len: seq, kind };
    let (tokens, scores) = (t * h, count * seq * seq);
    cases.push(product_case(gpu, "Q·Kᵀ, dC·Vᵀ (attention)".into(), attention(AttentionProduct::QKt), (seq, seq, d, count), (tokens, tokens, scores), 2 * below_top));
    cases.push(product_case(gpu, "P·V, dS·K (attention)".into(), attention(AttentionProduct::PV), (seq, d, seq, count), (scores, tokens, tokens), 2 * below_top));
    cases.push(product_case(gpu, "Pᵀ·dC, dSᵀ·Q (attention)".into(), attention(AttentionProduct::PtdC), (seq, d, seq, count), (scores, tokens, tokens), 2 * below_top));
    // Element-wise kernels: their bytes read and written.
    let f = 4.0;
    let x = filled(gpu, t * inner);
    cases.push(Case { kernel: format!("gelu {t}×{inner}"), launch: Launch::Gelu { out: GpuTensor::zeros(gpu, x.len), x }, dims: (t, inner, 0, 1), bytes: Some(2.0 * f * (t * inner) as f64), per_full_step: below_top });
    let norm = Launch::LayerNorm { x: filled(gpu, t * h), out: GpuTensor::zeros(gpu, t * h), gamma: filled(gpu, h), beta: filled(gpu, h), xhat: GpuTensor::zeros(gpu, t * h), rstd: GpuTensor::zeros(gpu, t) };
    cases.push(Case { kernel: format!("layer_norm {t}×{h}"), launch: norm, dims: (t, h, 0, 1), bytes: Some(3.0 * f * (t * h) as f64), per_full_step: 2 * layers + 1 });
    let softmax = Launch::Softmax { scores: filled(gpu, scores), mask: GpuTensor::from_slice(gpu, &vec![1.0; t]), len: seq, rows_per_sentence: heads * seq };
    cases.push(Case { kernel: format!("masked softmax {count}×{seq}×{seq}"), launch: softmax, dims: (count * seq, seq, 0, 1), bytes: Some(2.0 * f * scores as f64), per_full_step: below_top });
    let n = inner * h;
    let adam = Launch::Adam { param: filled(gpu, n), m: GpuTensor::zeros(gpu, n), v: GpuTensor::zeros(gpu, n), g: filled(gpu, n), status: GpuTensor::zeros(gpu, 1) };
    cases.push(Case { kernel: format!("adam {inner}×{h}"), launch: adam, dims: (inner, h, 0, 1), bytes: Some(7.0 * f * n as f64), per_full_step: 2 * layers });
    cases
}

/// Milliseconds of `launches` launches of `case` in one submission.
fn submission_ms(gpu: &Gpu, kernels: &Kernels, case: &Case, launches: usize) -> Result<f64> {
    let mut rec = kernels.record(gpu);
    for _ in 0..launches {
        case.launch.record(&mut rec);
    }
    let start = Instant::now();
    rec.submit();
    wait(&gpu.device)?;
    gpu.check()?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

/// Launches in one submission when timing the cost of a launch itself.
const OVERHEAD_LAUNCHES: usize = 1000;

/// What one launch costs beyond its kernel's work, in microseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LaunchOverhead {
    /// On the CPU: recording it and submitting it.
    pub cpu_us: f64,
    /// Until the device has run it.
    pub total_us: f64,
}

/// The cost of a launch itself: [`OVERHEAD_LAUNCHES`] launches of a kernel on 16 values,
/// recorded, submitted and waited for, divided by their count; the medians of `rounds`
/// submissions. A step launches hundreds of kernels, so this is a floor under a step's time
/// however fast the products are.
pub fn launch_overhead(gpu: &Gpu, rounds: usize) -> Result<LaunchOverhead> {
    let kernels = Kernels::new(gpu);
    let (acc, x) = (GpuTensor::zeros(gpu, 16), filled(gpu, 16));
    let (mut cpu, mut total) = (Vec::new(), Vec::new());
    let per_launch = |start: Instant| start.elapsed().as_secs_f64() * 1e6 / OVERHEAD_LAUNCHES as f64;
    // The first submission warms up; it is not counted.
    for round in 0..=rounds.max(1) {
        let start = Instant::now();
        let mut rec = kernels.record(gpu);
        for _ in 0..OVERHEAD_LAUNCHES {
            rec.add_scaled(&acc, &x, 1e-3);
        }
        rec.submit();
        let submitted = per_launch(start);
        wait(&gpu.device)?;
        gpu.check()?;
        if round > 0 {
            cpu.push(submitted);
            total.push(per_launch(start));
        }
    }
    Ok(LaunchOverhead { cpu_us: median(cpu), total_us: median(total) })
}

/// Time every kernel of a step of `config` on `batch` × `seq` tokens: the median of `rounds`
/// submissions each.
pub fn gpu_kernel_timings(gpu: &Gpu, config: &BertConfig, batch: usize, seq: usize, rounds: usize) -> Result<Vec<GpuKernelTiming>> {
    let kernels = Kernels::new(gpu);
    let mut timings = Vec::new();
    for case in cases(gpu, config, batch, seq) {
        submission_ms(gpu, &kernels, &case, 1)?;
        let single = submission_ms(gpu, &kernels, &case, 1)?;
        let launches = ((TARGET_MS / single.max(1e-3)).ceil() as usize).clamp(1, MAX_LAUNCHES);
        let samples = (0..rounds.max(1)).map(|_| submission_ms(gpu, &kernels, &case, launches).map(|ms| ms / launches as f64)).collect::<Result<Vec<_>>>()?;
        let ms = median(samples);
        let (m, n, k, count) = case.dims;
        let gflops = case.bytes.is_none().then(|| 2.0 * (m * n * k * count) as f64 / ms / 1e6);
        let gb_per_s = case.bytes.map(|bytes| bytes / ms / 1e6);
        timings.push(GpuKernelTiming { kernel: case.kernel, m, n, k, count, ms, gflops, gb_per_s, per_full_step: case.per_full_step });
    }
    Ok(timings)
}
