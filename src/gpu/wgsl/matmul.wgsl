// C = alpha · A·B (+ C when accumulating) (+ bias per column), on strided views: A's element
// (i, k) is a[a_off + i·a_rs + k·a_cs], so A·B, A·Bᵀ and Aᵀ·B are the same kernel with other
// strides (no transposed copies). A batch of products (attention: per sentence and head) is
// the z dimension, each offset by outer·(z / batch_inner) + inner·(z % batch_inner).
// 64 × 64 tiles of C per workgroup of 16 × 16, 4 × 4 values per invocation, k in steps of 16
// through workgroup memory.
struct Params {
    m: u32, n: u32, k: u32, batch_inner: u32,
    a_off: u32, a_rs: u32, a_cs: u32, a_outer: u32,
    a_inner: u32, b_off: u32, b_rs: u32, b_cs: u32,
    b_outer: u32, b_inner: u32, c_off: u32, c_rs: u32,
    c_outer: u32, c_inner: u32, alpha: f32, accumulate: u32,
    bias_off: u32, has_bias: u32, pad0: u32, pad1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> tile_a: array<f32, 1024>; // [TK][TM]
var<workgroup> tile_b: array<f32, 1024>; // [TK][TN]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let outer = wg.z / p.batch_inner;
    let inner = wg.z % p.batch_inner;
    let a_base = p.a_off + outer * p.a_outer + inner * p.a_inner;
    let b_base = p.b_off + outer * p.b_outer + inner * p.b_inner;
    let c_base = p.c_off + outer * p.c_outer + inner * p.c_inner;
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var r = 0u; r < 4u; r++) {
            let idx = li + r * 256u;
            let ar = idx / TK;
            let ak = idx % TK;
            var av = 0.0;
            if (row0 + ar < p.m && k0 + ak < p.k) {
                av = a[a_base + (row0 + ar) * p.a_rs + (k0 + ak) * p.a_cs];
            }
            tile_a[ak * TM + ar] = av;
            let bk = idx / TN;
            let bc = idx % TN;
            var bv = 0.0;
            if (k0 + bk < p.k && col0 + bc < p.n) {
                bv = b[b_base + (k0 + bk) * p.b_rs + (col0 + bc) * p.b_cs];
            }
            tile_b[bk * TN + bc] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var ra: array<f32, 4>;
            var rb: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                ra[i] = tile_a[kk * TM + lid.y + 16u * i];
                rb[i] = tile_b[kk * TN + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(ra[i], rb[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if (row < p.m && col < p.n) {
                let at = c_base + row * p.c_rs + col;
                var v = p.alpha * acc[i * 4u + j];
                if (p.has_bias != 0u) {
                    v += bias[p.bias_off + col];
                }
                if (p.accumulate != 0u) {
                    v += c[at];
                }
                c[at] = v;
            }
        }
    }
}
