//! The compute pipelines (built once per device) and one function per kernel launch. Launches
//! are recorded into a [`Recorder`] and run when it is submitted: a unit of a step (one layer's
//! forward or half its backward) is one submission, well under a second of GPU time.
//!
//! A submission keeps the launches' parameters in shared uniform buffers, each launch's at its
//! own aligned offset, written once at submit, and runs consecutive launches in one compute
//! pass: a buffer, a write and a pass per launch cost more than a small kernel's work.
//!
//! Matrix products take strided views ([`View`]) with the CPU kernels' conventions
//! ([`crate::kernels::Mat`]): a row-major block, or the transpose of one, of a larger buffer.
use std::collections::HashMap;

use super::{Gpu, GpuTensor};

const COMMON: &str = include_str!("wgsl/common.wgsl");

/// Each WGSL file and its entry points.
const SHADERS: [(&str, &str, &[&str]); 10] = [
    ("matmul", include_str!("wgsl/matmul.wgsl"), &["main"]),
    ("elementwise", include_str!("wgsl/elementwise.wgsl"), &["gelu", "gelu_backward", "multiply", "add_scaled"]),
    ("columns", include_str!("wgsl/columns.wgsl"), &["sums", "product_sums"]),
    ("layer_norm", include_str!("wgsl/layer_norm.wgsl"), &["forward", "forward_eval"]),
    ("layer_norm_backward", include_str!("wgsl/layer_norm_backward.wgsl"), &["main"]),
    ("softmax", include_str!("wgsl/softmax.wgsl"), &["masked", "backward"]),
    ("embed", include_str!("wgsl/embed.wgsl"), &["gather"]),
    ("scatter", include_str!("wgsl/scatter.wgsl"), &["main"]),
    ("adam", include_str!("wgsl/adam.wgsl"), &["update"]),
    ("squares", include_str!("wgsl/squares.wgsl"), &["main"]),
];

/// Bytes of one shared uniform buffer of a submission: 256 launches at the usual 256-byte
/// offset alignment.
const UNIFORM_CHUNK: usize = 64 * 1024;

/// Every kernel's pipeline, compiled once, with its bind group layout.
pub struct Kernels {
    pipelines: HashMap<(&'static str, &'static str), (wgpu::ComputePipeline, wgpu::BindGroupLayout)>,
}

impl Kernels {
    pub fn new(gpu: &Gpu) -> Kernels {
        let mut pipelines = HashMap::new();
        for (file, source, entries) in SHADERS {
            let code = format!("{COMMON}\n{source}");
            let module = gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(file), source: wgpu::ShaderSource::Wgsl(code.into()) });
            for &entry in entries {
                let descriptor = wgpu::ComputePipelineDescriptor { label: Some(entry), layout: None, module: &module, entry_point: Some(entry), compilation_options: Default::default(), cache: None };
                let pipeline = gpu.device.create_compute_pipeline(&descriptor);
                let layout = pipeline.get_bind_group_layout(0);
                pipelines.insert((file, entry), (pipeline, layout));
            }
        }
        Kernels { pipelines }
    }

    /// A recorder of launches on `gpu`.
    pub fn record<'a>(&'a self, gpu: &'a Gpu) -> Recorder<'a> {
        Recorder {
            gpu,
            kernels: self,
            encoder: gpu.device.create_command_encoder(&Default::default()),
            pass: None,
            uniforms: Vec::new(),
            uniform_alignment: gpu.device.limits().min_uniform_buffer_offset_alignment as usize,
        }
    }
}

/// A strided matrix view of a tensor: element (i, j) at `offset + i·rs + j·cs`; in a batch of
/// products, batch z adds `outer·(z / inner_count) + inner·(z % inner_count)`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub t: &'a GpuTensor,
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
    pub outer: usize,
    pub inner: usize,
}

impl<'a> View<'a> {
    /// Row-major with `cols` columns.
    pub fn rows(t: &'a GpuTensor, cols: usize) -> Self {
        View { t, offset: 0, rs: cols, cs: 1, outer: 0, inner: 0 }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(t: &'a GpuTensor, cols: usize) -> Self {
        View { t, offset: 0, rs: 1, cs: cols, outer: 0, inner: 0 }
    }

    /// The block from (`row`, `col`) of a row-major matrix with `cols` columns.
    pub fn block(t: &'a GpuTensor, cols: usize, row: usize, col: usize) -> Self {
        View { t, offset: row * cols + col, rs: cols, cs: 1, outer: 0, inner: 0 }
    }

    /// The transpose of [`View::block`].
    pub fn block_transposed(t: &'a GpuTensor, cols: usize, row: usize, col: usize) -> Self {
        View { t, offset: row * cols + col, rs: 1, cs: cols, outer: 0, inner: 0 }
    }

    /// Batch strides: per outer and inner batch index.
    pub fn batched(self, outer: usize, inner: usize) -> Self {
        View { outer, inner, ..self }
    }
}

/// A product's sizes: C (m × n) = alpha · A (m × k) · B (k × n), `count` of them, batch index z
/// split as (z / inner, z % inner).
#[derive(Clone, Copy)]
pub struct Product {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub accumulate: bool,
    pub count: usize,
    pub inner: usize,
}

impl Product {
    /// One product, C = A·B (overwritten).
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Product { m, n, k, alpha: 1.0, accumulate: false, count: 1, inner: 1 }
    }

    /// C += A·B.
    pub fn accumulating(self) -> Self {
        Product { accumulate: true, ..self }
    }

    pub fn scaled(self, alpha: f32) -> Self {
        Product { alpha, ..self }
    }

    /// `count` products, batch z split as (z / inner, z % inner).
    pub fn batch(self, count: usize, inner: usize) -> Self {
        Product { count, inner, ..self }
    }
}

/// Launches recorded for one submission.
pub struct Recorder<'a> {
    gpu: &'a Gpu,
    kernels: &'a Kernels,
    encoder: wgpu::CommandEncoder,
    /// The compute pass the launches go into, until a copy or a clear ends it.
    pass: Option<wgpu::ComputePass<'static>>,
    /// The launches' parameters: each uniform buffer and the bytes it gets at submit.
    uniforms: Vec<(wgpu::Buffer, Vec<u8>)>,
    uniform_alignment: usize,
}

/// Workgroups of 256 for `n` invocations: x up to 65,535, the rest on y.
fn flat_groups(n: usize) -> (u32, u32) {
    let groups = n.div_ceil(256).max(1);
    let x = groups.min(65_535);
    (x as u32, groups.div_ceil(x) as u32)
}

/// One workgroup per row, x then y.
fn row_groups(rows: usize) -> (u32, u32) {
    let x = rows.clamp(1, 65_535);
    (x as u32, rows.max(1).div_ceil(x) as u32)
}

fn u(v: usize) -> u32 {
    u32::try_from(v).expect("GPU sizes and offsets fit in 32 bits (the model's limits are checked before)")
}

fn f(v: f32) -> u32 {
    v.to_bits()
}

impl<'a> Recorder<'a> {
    /// The device the launches run on.
    pub fn gpu(&self) -> &'a Gpu {
        self.gpu
    }

    fn launch(&mut self, file: &'static str, entry: &'static str, params: &[u32], buffers: &[&wgpu::Buffer], groups: (u32, u32, u32)) {
        let (pipeline, layout) = &self.kernels.pipelines[&(file, entry)];
        let mut words = params.to_vec();
        words.resize(params.len().div_ceil(4) * 4, 0);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let (uniform, offset) = self.uniform_slot(&bytes);
        let params = wgpu::BufferBinding { buffer: &uniform, offset, size: wgpu::BufferSize::new(bytes.len() as u64) };
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::Buffer(params) }];
        entries.extend(buffers.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() }));
        let bind_group = self.gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout, entries: &entries });
        let pass = self.pass.get_or_insert_with(|| self.encoder.begin_compute_pass(&Default::default()).forget_lifetime());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, groups.2);
    }

    /// Room for `bytes` of parameters: a uniform buffer and the aligned offset they go to.
    fn uniform_slot(&mut self, bytes: &[u8]) -> (wgpu::Buffer, u64) {
        let align = self.uniform_alignment.max(4);
        let fits = self.uniforms.last().is_some_and(|(_, data)| data.len().next_multiple_of(align) + bytes.len() <= UNIFORM_CHUNK);
        if !fits {
            let usage = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
            let buffer = self.gpu.device.create_buffer(&wgpu::BufferDescriptor { label: Some("launch parameters"), size: UNIFORM_CHUNK as u64, usage, mapped_at_creation: false });
            self.uniforms.push((buffer, Vec::with_capacity(UNIFORM_CHUNK)));
        }
        let (buffer, data) = self.uniforms.last_mut().expect("a uniform buffer was just made");
        let offset = data.len().next_multiple_of(align);
        data.resize(offset, 0);
        data.extend_from_slice(bytes);
        (buffer.clone(), offset as u64)
    }

    /// Run everything recorded. The parameters are written through the queue, not mapped at
    /// creation, so a lost device reports an error instead of failing a map; queue writes land
    /// before the submission that follows them.
    pub fn submit(mut self) {
        self.pass = None;
        for (buffer, data) in &self.uniforms {
            self.gpu.queue.write_buffer(buffer, 0, data);
        }
        self.gpu.queue.submit([self.encoder.finish()]);
    }

    /// c = alpha · a·b (+ c when accumulating) (+ bias per column). `c` may not share a buffer
    /// with `a`, `b` or `bias`.
    pub fn matmul(&mut self, c: View<'_>, a: View<'_>, b: View<'_>, p: Product, bias: Option<&GpuTensor>) {
        if p.m == 0 || p.n == 0 || p.count == 0 {
            return;
        }
        let params = [
            u(p.m), u(p.n), u(p.k), u(p.inner),
            u(a.offset), u(a.rs), u(a.cs), u(a.outer),
            u(a.inner), u(b.offset), u(b.rs), u(b.cs),
            u(b.outer), u(b.inner), u(c.offset), u(c.rs),
            u(c.outer), u(c.inner), f(p.alpha), p.accumulate as u32,
            0, bias.is_some() as u32, 0, 0,
        ];
        let bias = bias.unwrap_or(a.t);
        let groups = (p.n.div_ceil(64) as u32, p.m.div_ceil(64) as u32, p.count as u32);
        self.launch("matmul", "main", &params, &[&c.t.buffer, &a.t.buffer, &b.t.buffer, &bias.buffer], groups);
    }

    fn elementwise(&mut self, entry: &'static str, out: &GpuTensor, x: &GpuTensor, n: usize, scale: f32) {
        if n == 0 {
            return;
        }
        let (gx, gy) = flat_groups(n);
        self.launch("elementwise", entry, &[u(n), 0, 0, 0, f(scale), 0, 0, 0], &[&out.buffer, &x.buffer], (gx, gy, 1));
    }

    /// out = gelu(x) over x's values.
    pub fn gelu(&mut self, out: &GpuTensor, x: &GpuTensor) {
        self.elementwise("gelu", out, x, x.len, 1.0);
    }

    /// dy ⊙= gelu'(x), in place.
    pub fn gelu_backward(&mut self, dy: &GpuTensor, x: &GpuTensor) {
        self.elementwise("gelu_backward", dy, x, x.len, 1.0);
    }

    /// x ⊙= mask, in place.
    pub fn multiply(&mut self, x: &GpuTensor, mask: &GpuTensor) {
        self.elementwise("multiply", x, mask, x.len, 1.0);
    }

    /// acc += scale · x over x's values.
    pub fn add_scaled(&mut self, acc: &GpuTensor, x: &GpuTensor, scale: f32) {
        self.elementwise("add_scaled", acc, x, x.len, scale);
    }

    /// out (cols) += column sums of x (rows × cols).
    pub fn add_column_sums(&mut self, out: &GpuTensor, x: &GpuTensor, cols: usize) {
        let (gx, gy) = flat_groups(cols);
        self.launch("columns", "sums", &[u(x.len / cols.max(1)), u(cols)], &[&out.buffer, &x.buffer], (gx, gy, 1));
    }

    /// out (cols) += column sums of x ⊙ y.
    pub fn add_column_product_sums(&mut self, out: &GpuTensor, x: &GpuTensor, y: &GpuTensor, cols: usize) {
        let (gx, gy) = flat_groups(cols);
        self.launch("columns", "product_sums", &[u(x.len / cols.max(1)), u(cols)], &[&out.buffer, &x.buffer, &y.buffer], (gx, gy, 1));
    }

    /// LayerNorm over rows of γ's width; with `saved`, keeps (x̂, rstd) for the backward.
    pub fn layer_norm(&mut self, out: &GpuTensor, x: &GpuTensor, gamma: &GpuTensor, beta: &GpuTensor, eps: f32, saved: Option<(&GpuTensor, &GpuTensor)>) {
        let cols = gamma.len;
        let rows = x.len / cols;
        let (gx, gy) = row_groups(rows);
        let params = [u(rows), u(cols), 0, 0, f(eps), 0, 0, 0];
        match saved {
            Some((xhat, rstd)) => self.launch("layer_norm", "forward", &params, &[&out.buffer, &x.buffer, &gamma.buffer, &beta.buffer, &xhat.buffer, &rstd.buffer], (gx, gy, 1)),
            None => self.launch("layer_norm", "forward_eval", &params, &[&out.buffer, &x.buffer, &gamma.buffer, &beta.buffer], (gx, gy, 1)),
        }
    }

    /// LayerNorm backward: dx from dy and the saved x̂ and rstd.
    pub fn layer_norm_backward(&mut self, dx: &GpuTensor, dy: &GpuTensor, xhat: &GpuTensor, rstd: &GpuTensor, gamma: &GpuTensor) {
        let cols = gamma.len;
        let rows = dy.len / cols;
        let (gx, gy) = row_groups(rows);
        self.launch("layer_norm_backward", "main", &[u(rows), u(cols)], &[&dx.buffer, &dy.buffer, &xhat.buffer, &rstd.buffer, &gamma.buffer], (gx, gy, 1));
    }

    /// Softmax over rows of `len` in place, keys with mask 0 left out; `rows_per_sentence`
    /// rows share a sentence's mask row.
    pub fn masked_softmax(&mut self, scores: &GpuTensor, mask: &GpuTensor, len: usize, rows_per_sentence: usize) {
        let rows = scores.len / len.max(1);
        let (gx, gy) = flat_groups(rows);
        self.launch("softmax", "masked", &[u(rows), u(len), u(rows_per_sentence), 0], &[&scores.buffer, &mask.buffer], (gx, gy, 1));
    }

    /// Softmax backward in place over `ds`, given the probabilities.
    pub fn softmax_backward(&mut self, ds: &GpuTensor, probs: &GpuTensor, len: usize) {
        let rows = ds.len / len.max(1);
        let (gx, gy) = flat_groups(rows);
        self.launch("softmax", "backward", &[u(rows), u(len), 1, 0], &[&ds.buffer, &probs.buffer], (gx, gy, 1));
    }

    /// out[t] = word[ids[t]] + position[positions[t]] + token_type[0] (rows of `cols`).
    pub fn embed(&mut self, out: &GpuTensor, word: &GpuTensor, position: &GpuTensor, token_type: &GpuTensor, ids: &GpuTensor, positions: &GpuTensor, cols: usize) {
        let rows = ids.len;
        let (gx, gy) = flat_groups(rows * cols);
        self.launch("embed", "gather", &[u(rows), u(cols), 0, 0], &[&out.buffer, &word.buffer, &position.buffer, &token_type.buffer, &ids.buffer, &positions.buffer], (gx, gy, 1));
    }

    /// out[targets[u]] += Σ dx[order[i]] for i in starts[u]..starts[u + 1] (rows of `cols`).
    pub fn scatter_rows(&mut self, out: &GpuTensor, dx: &GpuTensor, groups: &RowGroups, cols: usize) {
        let count = groups.targets.len;
        let (gx, gy) = flat_groups(count * cols);
        self.launch("scatter", "main", &[0, u(cols), u(count), 0], &[&out.buffer, &dx.buffer, &groups.targets.buffer, &groups.starts.buffer, &groups.order.buffer], (gx, gy, 1));
    }

    /// One Adam update of `param` with gradient `g` and the step's constants (see
    /// [`crate::optim`]); `status` bit 0 is set when a weight or moment became non-finite.
    pub fn adam(&mut self, param: &GpuTensor, m: &GpuTensor, v: &GpuTensor, g: &GpuTensor, consts: [f32; 7], status: &GpuTensor) {
        let (gx, gy) = flat_groups(param.len);
        let [beta1, beta2, eps, step_size, inv_sqrt_bias2, decay, grad_scale] = consts;
        let params = [u(param.len), 0, 0, 0, f(beta1), f(beta2), f(eps), f(step_size), f(inv_sqrt_bias2), f(decay), f(grad_scale), 0];
        self.launch("adam", "update", &params, &[&param.buffer, &m.buffer, &v.buffer, &g.buffer, &status.buffer], (gx, gy, 1));
    }

    /// Partial sums of g² into out[offset..offset + square_partials(g.len)].
    pub fn sum_squares(&mut self, out: &GpuTensor, offset: usize, g: &GpuTensor) {
        let (gx, gy) = row_groups(square_partials(g.len));
        self.launch("squares", "main", &[u(g.len), u(offset)], &[&out.buffer, &g.buffer], (gx, gy, 1));
    }

    /// Copy `len` values.
    pub fn copy(&mut self, src: &GpuTensor, src_offset: usize, dst: &GpuTensor, dst_offset: usize, len: usize) {
        if len > 0 {
            self.pass = None;
            self.encoder.copy_buffer_to_buffer(&src.buffer, (src_offset * 4) as u64, &dst.buffer, (dst_offset * 4) as u64, (len * 4) as u64);
        }
    }

    /// Set every value to 0.
    pub fn clear(&mut self, t: &GpuTensor) {
        self.pass = None;
        self.encoder.clear_buffer(&t.buffer, 0, None);
    }
}

/// How many partial sums [`Recorder::sum_squares`] writes for `n` values.
pub fn square_partials(n: usize) -> usize {
    n.div_ceil(4096).max(1)
}

/// Rows of a gather grouped by target row, for its scatter-add backward: the tokens sharing a
/// word id (or a position), as index lists on the device.
pub struct RowGroups {
    pub targets: GpuTensor,
    pub starts: GpuTensor,
    pub order: GpuTensor,
}

impl RowGroups {
    /// Group the rows 0..keys.len() by their key (sorted by key, rows in order within a key).
    pub fn of(gpu: &Gpu, keys: &[u32]) -> RowGroups {
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_by_key(|&r| (keys[r as usize], r));
        let mut targets = Vec::new();
        let mut starts = Vec::new();
        for (i, &r) in order.iter().enumerate() {
            if targets.last() != Some(&keys[r as usize]) {
                targets.push(keys[r as usize]);
                starts.push(i as u32);
            }
        }
        starts.push(order.len() as u32);
        RowGroups { targets: GpuTensor::from_u32(gpu, &targets), starts: GpuTensor::from_u32(gpu, &starts), order: GpuTensor::from_u32(gpu, &order) }
    }
}
