// Adam / AdamW, torch's update as src/optim.rs writes it, one invocation per value, with the
// step's constants from the CPU (the same StepConsts). `status` gets bit 0 set when a weight or
// a second moment came out infinite or NaN.
struct Params {
    n: u32, pad0: u32, pad1: u32, pad2: u32,
    beta1: f32, beta2: f32, eps: f32, step_size: f32,
    inv_sqrt_bias2: f32, decay: f32, grad_scale: f32, pad3: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> status: array<atomic<u32>>;

fn finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(256)
fn update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, groups, li);
    if (i >= p.n) { return; }
    let grad = g[i] * p.grad_scale;
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * grad;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * grad * grad;
    let w = param[i] * p.decay - p.step_size * mi / (sqrt(vi) * p.inv_sqrt_bias2 + p.eps);
    m[i] = mi;
    v[i] = vi;
    param[i] = w;
    if (!finite(w) || !finite(vi)) { atomicOr(&status[0], 1u); }
}
