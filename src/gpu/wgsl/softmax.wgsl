// Attention's softmax over rows of `len` scores, one invocation per row, in place: padding keys
// (mask 0) get probability 0, as transformers' additive mask gives. A row's sentence is
// row / rows_per_sentence (heads × queries rows each). `backward`: ds = p ⊙ (ds − Σ ds ⊙ p).
struct Params { rows: u32, len: u32, rows_per_sentence: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;
@group(0) @binding(2) var<storage, read> other: array<f32>;

@compute @workgroup_size(256)
fn masked(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = flat_index(wg, groups, li);
    if (row >= p.rows) { return; }
    let base = row * p.len;
    let mask_base = (row / p.rows_per_sentence) * p.len;
    var best = bitcast<f32>(0xff7fffffu); // the lowest finite f32 (Tint refuses a literal rounded past it)
    for (var j = 0u; j < p.len; j++) {
        if (other[mask_base + j] > 0.0) { best = max(best, scores[base + j]); }
    }
    var sum = 0.0;
    for (var j = 0u; j < p.len; j++) {
        var e = 0.0;
        if (other[mask_base + j] > 0.0) { e = exp_f32(scores[base + j] - best); }
        scores[base + j] = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for (var j = 0u; j < p.len; j++) { scores[base + j] = scores[base + j] * inv; }
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = flat_index(wg, groups, li);
    if (row >= p.rows) { return; }
    let base = row * p.len;
    var dot = 0.0;
    for (var j = 0u; j < p.len; j++) { dot += scores[base + j] * other[base + j]; }
    for (var j = 0u; j < p.len; j++) { scores[base + j] = other[base + j] * (scores[base + j] - dot); }
}
