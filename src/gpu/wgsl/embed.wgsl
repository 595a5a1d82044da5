// The embeddings' gather, one invocation per value: out[t] = word[ids[t]] +
// position[positions[t]] + token_type[0], rows of `cols`.
struct Params { rows: u32, cols: u32, groups: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read> second: array<f32>;
@group(0) @binding(4) var<storage, read> third: array<f32>;
@group(0) @binding(5) var<storage, read> ids: array<u32>;
@group(0) @binding(6) var<storage, read> positions: array<u32>;

@compute @workgroup_size(256)
fn gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, groups, li);
    if (i >= p.rows * p.cols) { return; }
    let t = i / p.cols;
    let c = i % p.cols;
    out[i] = table[ids[t] * p.cols + c] + second[positions[t] * p.cols + c] + third[c];
}
