// Partial sums of squares for the gradient norm: workgroup w writes Σ g² over values
// w·4096 .. (w + 1)·4096 to out[offset + w]; the CPU adds the partials in f64.
struct Params { n: u32, offset: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let w = wg.y * groups.x + wg.x;
    var s = 0.0;
    for (var k = 0u; k < 16u; k++) {
        let i = w * 4096u + k * 256u + li;
        if (i < p.n) { s += g[i] * g[i]; }
    }
    partial[li] = s;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (li < stride) { partial[li] += partial[li + stride]; }
        workgroupBarrier();
    }
    if (li == 0u) { out[p.offset + w] = partial[0]; }
}
