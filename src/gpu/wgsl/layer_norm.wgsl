// LayerNorm over rows of `cols` values, one workgroup per row: out = (x − mean) · rstd · γ + β,
// keeping x̂ and rstd for the backward pass (`forward`) or not (`forward_eval`). The mean and
// then the variance of (x − mean) are reduced in workgroup memory, as the CPU computes them.
struct Params { rows: u32, cols: u32, pad0: u32, pad1: u32, eps: f32, pad2: f32, pad3: f32, pad4: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> xhat: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;

var<workgroup> partial: array<f32, 256>;

fn row_sum(value: f32, li: u32) -> f32 {
    partial[li] = value;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (li < stride) { partial[li] += partial[li + stride]; }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

fn statistics(base: u32, li: u32) -> vec2<f32> {
    var s = 0.0;
    for (var c = li; c < p.cols; c += 256u) { s += x[base + c]; }
    let mean = row_sum(s, li) / f32(p.cols);
    var v = 0.0;
    for (var c = li; c < p.cols; c += 256u) { let d = x[base + c] - mean; v += d * d; }
    let variance = row_sum(v, li) / f32(p.cols);
    return vec2<f32>(mean, 1.0 / sqrt(variance + p.eps));
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = wg.y * groups.x + wg.x;
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    let st = statistics(base, li);
    for (var c = li; c < p.cols; c += 256u) {
        let h = (x[base + c] - st.x) * st.y;
        xhat[base + c] = h;
        out[base + c] = h * gamma[c] + beta[c];
    }
    if (li == 0u) { rstd[row] = st.y; }
}

@compute @workgroup_size(256)
fn forward_eval(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = wg.y * groups.x + wg.x;
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    let st = statistics(base, li);
    for (var c = li; c < p.cols; c += 256u) {
        out[base + c] = (x[base + c] - st.x) * st.y * gamma[c] + beta[c];
    }
}
