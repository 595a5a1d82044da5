// LayerNorm backward, one workgroup per row: dx = rstd · (dy·γ − mean(dy·γ) − x̂ · mean(dy·γ·x̂)).
// (γ's and β's gradients are column sums: columns.wgsl.)
struct Params { rows: u32, cols: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> xhat: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;

var<workgroup> partial: array<vec2<f32>, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = wg.y * groups.x + wg.x;
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    var s = vec2<f32>(0.0, 0.0);
    for (var c = li; c < p.cols; c += 256u) {
        let g = dy[base + c] * gamma[c];
        s += vec2<f32>(g, g * xhat[base + c]);
    }
    partial[li] = s;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (li < stride) { partial[li] += partial[li + stride]; }
        workgroupBarrier();
    }
    let means = partial[0] / f32(p.cols);
    let r = rstd[row];
    for (var c = li; c < p.cols; c += 256u) {
        dx[base + c] = r * (dy[base + c] * gamma[c] - means.x - xhat[base + c] * means.y);
    }
}
