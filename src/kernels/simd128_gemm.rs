//! The page's matrix product: a packed f32 gemm on WebAssembly's 128-bit SIMD.
//!
//! Why by hand: in Chromium the gemm crate's `simd128` kernels ran the encoder's products well
//! below this kernel (bench/README.md, "The page's products" and "A wider tile for relaxed
//! SIMD"). Natively it is compiled on a scalar lane type, only so that its blocking,
//! edge handling and both tiles are unit-tested against a plain triple loop; native products use
//! the gemm crate.
//!
//! The scheme is the usual one (Goto / BLIS): for each block of `NC` output columns and `KC`
//! steps of the sum, pack the right operand into strips of `NR` columns; for each block of `MC`
//! rows pack the left operand into strips of `MR` rows; then one micro-kernel call per
//! MR × NR tile keeps its accumulators in registers for the whole `KC`-long sum. Packing
//! zero-pads partial strips, so the micro-kernel never branches on edges.
//!
//! Determinism: every output element sums over k in the same order (`KC` blocks, each in
//! sequence) whatever block of rows or columns the caller hands it, so the threads' split of
//! the output in [`super::gemm`] does not change any result.
use std::cell::RefCell;

/// The register tile, rows × four-float vectors per row, chosen by what V8 makes of each
/// module's multiply-add (bench/README.md "A wider tile for relaxed SIMD"). With relaxed SIMD's
/// fused `madd`, 3 × 12 (nine accumulators, three right-hand vectors, one broadcast: 13 of x86's
/// 16 vector registers) is the faster; with plain SIMD's mul + add, which needs a temporary per
/// product, 4 × 8 stays ahead, and 6 × 8 or 5 × 8 spill registers in either module.
#[cfg(target_feature = "relaxed-simd")]
const TILE: (usize, usize) = (3, 3);
#[cfg(not(target_feature = "relaxed-simd"))]
const TILE: (usize, usize) = (4, 2);
/// Steps of the sum per packed block: k = 768 (bert-base's projections and feed-forward up)
/// is one block, so the destination is read and written once per product, not three times. A
/// packed right strip, KC × NR floats, is 24–36 KiB: within L1 with the broadcast left values.
const KC: usize = 768;
/// Rows per packed left block (72 × 768 floats = 216 KiB, in L2; a multiple of 3 and 4).
const MC: usize = 72;
/// Columns per packed right block (768 × 768 floats = 2.25 MiB; a multiple of 8 and 12, and
/// every width of the encoder's products is a multiple of it or below it).
const NC: usize = 768;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lane {
    use core::arch::wasm32::*;
    pub type V = v128;
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> V {
        v128_load(p as *const v128)
    }
    #[inline(always)]
    pub unsafe fn splat(p: *const f32) -> V {
        f32x4_splat(*p)
    }
    /// acc + a·b, rounded twice: the same arithmetic as the scalar code.
    #[cfg(not(target_feature = "relaxed-simd"))]
    #[inline(always)]
    pub fn madd(acc: V, a: V, b: V) -> V {
        f32x4_add(acc, f32x4_mul(a, b))
    }
    /// acc + a·b in one instruction where the CPU has FMA (relaxed SIMD lets the engine round
    /// once or twice; on x86 with FMA it is fused, as the native gemm crate's is). Half the
    /// instructions of the mul + add above (bench/README.md, "Relaxed SIMD in the page").
    #[cfg(target_feature = "relaxed-simd")]
    #[inline(always)]
    pub fn madd(acc: V, a: V, b: V) -> V {
        f32x4_relaxed_madd(a, b, acc)
    }
    #[inline(always)]
    pub fn zero() -> V {
        f32x4_splat(0.0)
    }
    #[inline(always)]
    pub unsafe fn store(p: *mut f32, v: V) {
        v128_store(p as *mut v128, v)
    }
}

/// The scalar stand-in the native unit tests run on.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod lane {
    pub type V = [f32; 4];
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> V {
        (p as *const V).read_unaligned()
    }
    #[inline(always)]
    pub unsafe fn splat(p: *const f32) -> V {
        [*p; 4]
    }
    #[inline(always)]
    pub fn madd(acc: V, a: V, b: V) -> V {
        std::array::from_fn(|i| acc[i] + a[i] * b[i])
    }
    #[inline(always)]
    pub fn zero() -> V {
        [0.0; 4]
    }
    #[inline(always)]
    pub unsafe fn store(p: *mut f32, v: V) {
        (p as *mut V).write_unaligned(v)
    }
}
use lane::*;

/// A strided matrix operand as raw parts: element (r, c) is at `ptr + r·row + c·col`.
#[derive(Clone, Copy)]
pub struct Operand {
    pub ptr: *const f32,
    pub row: usize,
    pub col: usize,
}

thread_local! {
    /// Packing buffers (left, right), kept per thread between calls: packing writes every
    /// element the micro-kernel then reads, so they are never cleared.
    static PACKED: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// dst (m × n, row stride `dst_rs`) = [dst +] scale · lhs (m × k) · rhs (k × n), on this
/// module's register tile.
///
/// # Safety
/// Every element of the three matrices these shapes and strides address must be valid, and the
/// destination's must not be accessed by anyone else during the call.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm(dst: *mut f32, dst_rs: usize, accumulate: bool, m: usize, n: usize, k: usize, lhs: Operand, rhs: Operand, scale: f32) {
    gemm_tiled::<{ TILE.0 }, { TILE.1 }, { 4 * TILE.1 }>(dst, dst_rs, accumulate, m, n, k, lhs, rhs, scale)
}

/// [`gemm`] on an MR × NR tile of MR × NV vectors (NR = 4 · NV).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_tiled<const MR: usize, const NV: usize, const NR: usize>(dst: *mut f32, dst_rs: usize, accumulate: bool, m: usize, n: usize, k: usize, lhs: Operand, rhs: Operand, scale: f32) {
    const { assert!(NR == 4 * NV && MC % MR == 0 && NC % NR == 0) };
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            (0..m).for_each(|i| std::slice::from_raw_parts_mut(dst.add(i * dst_rs), n).fill(0.0));
        }
        return;
    }
    PACKED.with(|packed| {
        let (packed_lhs, packed_rhs) = &mut *packed.borrow_mut();
        grow(packed_lhs, MC * KC);
        grow(packed_rhs, NC.min(n.div_ceil(NR) * NR) * KC);
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                // Rows pc.. (the sum's steps), columns jc.. (the lanes).
                pack::<NR>(packed_rhs, rhs.ptr.add(pc * rhs.row + jc * rhs.col), rhs.col, rhs.row, nc, kc);
                let add = accumulate || pc > 0;
                for ic in (0..m).step_by(MC) {
                    let mc = MC.min(m - ic);
                    // Rows ic.. (the lanes), columns pc.. (the sum's steps).
                    pack::<MR>(packed_lhs, lhs.ptr.add(ic * lhs.row + pc * lhs.col), lhs.row, lhs.col, mc, kc);
                    let block = Block { dst: dst.add(ic * dst_rs + jc), dst_rs, rows: mc, cols: nc, kc, add, scale };
                    multiply_packed::<MR, NV, NR>(&block, packed_lhs, packed_rhs);
                }
            }
        }
    });
}

fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// Pack `extent` lanes × `depth` steps of a strided operand, starting at `first`, into strips of
/// `WIDTH` lanes, each `depth` × `WIDTH` (step after step), the last strip zero-padded. The right
/// operand's lanes are its columns (WIDTH = NR), the left operand's its rows (WIDTH = MR).
unsafe fn pack<const WIDTH: usize>(out: &mut [f32], first: *const f32, lane_stride: usize, step_stride: usize, extent: usize, depth: usize) {
    for (strip, lane0) in (0..extent).step_by(WIDTH).enumerate() {
        let width = WIDTH.min(extent - lane0);
        let strip = &mut out[strip * depth * WIDTH..(strip + 1) * depth * WIDTH];
        for (p, dst) in strip.chunks_exact_mut(WIDTH).enumerate() {
            let src = first.add(lane0 * lane_stride + p * step_stride);
            for (lane, d) in dst[..width].iter_mut().enumerate() {
                *d = *src.add(lane * lane_stride);
            }
            dst[width..].fill(0.0);
        }
    }
}

/// One packed block's destination: `rows` × `cols` from `dst`, and how to write into it.
struct Block {
    dst: *mut f32,
    dst_rs: usize,
    rows: usize,
    cols: usize,
    kc: usize,
    /// Add to the destination (else overwrite it).
    add: bool,
    scale: f32,
}

/// The largest tile's floats: the micro-kernel's spill area for any tile above.
const TILE_FLOATS: usize = 36;

/// Every MR × NR tile of a block from its packed operands.
unsafe fn multiply_packed<const MR: usize, const NV: usize, const NR: usize>(block: &Block, packed_lhs: &[f32], packed_rhs: &[f32]) {
    let kc = block.kc;
    let mut tile = [0f32; TILE_FLOATS];
    for (sj, j0) in (0..block.cols).step_by(NR).enumerate() {
        let width = NR.min(block.cols - j0);
        for (si, i0) in (0..block.rows).step_by(MR).enumerate() {
            let height = MR.min(block.rows - i0);
            micro_kernel::<MR, NV>(kc, packed_lhs.as_ptr().add(si * kc * MR), packed_rhs.as_ptr().add(sj * kc * NR), &mut tile);
            for (i, tile_row) in tile.chunks_exact(NR).take(height).enumerate() {
                let dst = std::slice::from_raw_parts_mut(block.dst.add((i0 + i) * block.dst_rs + j0), width);
                if block.add {
                    dst.iter_mut().zip(tile_row).for_each(|(d, t)| *d += block.scale * t);
                } else {
                    dst.iter_mut().zip(tile_row).for_each(|(d, t)| *d = block.scale * t);
                }
            }
        }
    }
}

/// tile (MR rows of 4 · NV floats, packed row after row) = the kc-long product of one packed
/// left strip and one packed right strip.
#[inline(always)]
unsafe fn micro_kernel<const MR: usize, const NV: usize>(kc: usize, mut lhs: *const f32, mut rhs: *const f32, tile: &mut [f32; TILE_FLOATS]) {
    const { assert!(MR * NV * 4 <= TILE_FLOATS) };
    let mut acc = [[zero(); NV]; MR];
    for _ in 0..kc {
        let b: [V; NV] = std::array::from_fn(|j| load(rhs.add(4 * j)));
        for (i, row) in acc.iter_mut().enumerate() {
            let a = splat(lhs.add(i));
            for (acc, b) in row.iter_mut().zip(&b) {
                *acc = madd(*acc, a, *b);
            }
        }
        lhs = lhs.add(MR);
        rhs = rhs.add(4 * NV);
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            store(tile.as_mut_ptr().add(i * 4 * NV + 4 * j), *v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic operand of `len` values in [-1, 1).
    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919 + seed * 104729) % 2003) as f32 / 1001.5 - 1.0).collect()
    }

    /// dst = [dst +] scale · lhs · rhs by the definition, in f64.
    #[allow(clippy::too_many_arguments)]
    fn reference(dst: &mut [f32], dst_rs: usize, accumulate: bool, m: usize, n: usize, k: usize, lhs: (&[f32], usize, usize), rhs: (&[f32], usize, usize), scale: f32) {
        for i in 0..m {
            for j in 0..n {
                let sum: f64 = (0..k).map(|p| lhs.0[i * lhs.1 + p * lhs.2] as f64 * rhs.0[p * rhs.1 + j * rhs.2] as f64).sum();
                let d = &mut dst[i * dst_rs + j];
                *d = if accumulate { *d + scale * sum as f32 } else { scale * sum as f32 };
            }
        }
    }

    type Gemm = unsafe fn(*mut f32, usize, bool, usize, usize, usize, Operand, Operand, f32);

    /// Every edge case of the blocking (partial tiles, strips and blocks in all three
    /// dimensions, k = 0 and k beyond KC), every layout (plain and transposed operands, a
    /// destination wider than n), overwrite and accumulate, with a scale — on both tiles.
    #[test]
    fn matches_the_definition_on_every_edge_of_the_blocking() {
        let tiles: [(&str, Gemm); 2] = [("4 × 8", gemm_tiled::<4, 2, 8>), ("3 × 12", gemm_tiled::<3, 3, 12>)];
        let shapes = [(1, 1, 1), (3, 5, 7), (4, 8, 256), (5, 13, 769), (73, 17, 3), (150, 1030, 40), (9, 2, 1600), (7, 13, 0)];
        for (tile, gemm) in tiles {
            for (m, n, k) in shapes {
                for (lhs_t, rhs_t) in [(false, false), (true, false), (false, true)] {
                    for accumulate in [false, true] {
                        let (a, b) = (values(m * k, 1), values(k * n, 2));
                        let lhs = if lhs_t { (&a[..], 1, m) } else { (&a[..], k, 1) };
                        let rhs = if rhs_t { (&b[..], 1, k) } else { (&b[..], n, 1) };
                        let dst_rs = n + 3;
                        let mut ours = values(m * dst_rs, 3);
                        let mut expected = ours.clone();
                        let op = |(ptr, row, col): (&[f32], usize, usize)| Operand { ptr: ptr.as_ptr(), row, col };
                        unsafe { gemm(ours.as_mut_ptr(), dst_rs, accumulate, m, n, k, op(lhs), op(rhs), 0.5) };
                        reference(&mut expected, dst_rs, accumulate, m, n, k, lhs, rhs, 0.5);
                        for (i, (o, e)) in ours.iter().zip(&expected).enumerate() {
                            let tolerance = 1e-5 * (k as f32).max(1.0);
                            assert!((o - e).abs() <= tolerance, "{tile}: {m}×{n}×{k} lhs_t={lhs_t} rhs_t={rhs_t} acc={accumulate}: element {i}: {o} vs {e}");
                        }
                    }
                }
            }
        }
    }
}
