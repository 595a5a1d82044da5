// The backward of a row gather without float atomics: out[targets[u]] += Σ dx[order[i]] for i
// in starts[u]..starts[u + 1], rows of `cols` — the tokens sharing an id (or a position) were
// grouped on the CPU, which has the ids anyway. One invocation per (group, column).
struct Params { rows: u32, cols: u32, groups: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> dx: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<u32>;
@group(0) @binding(4) var<storage, read> starts: array<u32>;
@group(0) @binding(5) var<storage, read> order: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, groups, li);
    if (i >= p.groups * p.cols) { return; }
    let u = i / p.cols;
    let c = i % p.cols;
    var s = 0.0;
    for (var k = starts[u]; k < starts[u + 1u]; k++) { s += dx[order[k] * p.cols + c]; }
    out[targets[u] * p.cols + c] += s;
}
