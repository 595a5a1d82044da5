// Column sums of a (rows × cols) matrix, added to out (cols): the bias gradients (Σ dy) and,
// with a second matrix, LayerNorm γ's gradient (Σ dy ⊙ x̂). One invocation per column, rows
// in order.
struct Params { rows: u32, cols: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;

@compute @workgroup_size(256)
fn sums(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let c = flat_index(wg, groups, li);
    if (c >= p.cols) { return; }
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) { s += x[r * p.cols + c]; }
    out[c] += s;
}

@compute @workgroup_size(256)
fn product_sums(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let c = flat_index(wg, groups, li);
    if (c >= p.cols) { return; }
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) { s += x[r * p.cols + c] * y[r * p.cols + c]; }
    out[c] += s;
}
