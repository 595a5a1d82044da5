// Element-wise kernels over n values: GELU and its derivative, x ⊙ mask (dropout), acc += x,
// x · scale.
struct Params { n: u32, pad0: u32, pad1: u32, pad2: u32, scale: f32, pad3: f32, pad4: f32, pad5: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

// out = gelu(x)
@compute @workgroup_size(256)
fn gelu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, groups, li);
    if (i < p.n) { out[i] = gelu_f32(x[i]); }
}

// out (the output's gradient) ⊙= gelu'(x)
@compute @workgroup_size(256)
fn gelu_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, groups, li);
    if (i < p.n) { out[i] = out[i] * gelu_derivative_f32(x[i]); }
}

// out ⊙= x (a dropout mask: 0 or 1/(1 − p))
@compute @workgroup_size(256)
fn multiply(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, groups, li);
    if (i < p.n) { out[i] = out[i] * x[i]; }
}

// out += scale · x
@compute @workgroup_size(256)
fn add_scaled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, groups, li);
    if (i < p.n) { out[i] = out[i] + p.scale * x[i]; }
}
