//! The encoder's numeric kernels on plain `f32` slices: matrix products (gemm), LayerNorm,
//! softmax, GELU, dropout, column sums — forward and backward — each one pass over memory, and
//! split across the rayon pool's threads when the work is large enough to gain from it.
//!
//! Why by hand: candle's autograd gives every node a freshly allocated gradient that it adds to
//! a zero-filled one, its batched matmul copies transposed operands, and its element-wise ops
//! are separate passes. These kernels write into buffers the caller owns. They are checked
//! against finite differences (`tests/gradcheck.rs`) and, through the model, against
//! transformers (`tests/golden.rs`).
//!
//! Determinism: every reduction splits its rows into fixed blocks ([`ROW_BLOCK`]) whatever the
//! thread count and adds the blocks' partial sums in order, and gemm's threads split the output,
//! not the sum over k — so one seed gives the same numbers on 1 or N threads.
use rand::Rng;
use rayon::prelude::*;

use crate::rng::SeededRng;

// Natively only compiled for its unit tests (native products use the gemm crate).
#[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), test))]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod simd128_gemm;

/// Rows per block of a reduction (fixed, so results do not depend on the thread count).
pub const ROW_BLOCK: usize = 64;

/// Below this many floats an element-wise pass stays on one thread: splitting smaller passes
/// across threads costs more in scheduling than it saves. The page uses the
/// same thresholds as the CLI: its steps run on a pool thread too ([`on_pool`]).
const PARALLEL_MIN_FLOATS: usize = 1 << 15;

/// Below this many multiply-adds (m·n·k) a product stays on one thread.
const GEMM_PARALLEL_MIN_WORK: usize = 1 << 21;

/// Below this many multiply-adds the attention's (sentence, head) tasks stay on one thread.
pub const ATTENTION_PARALLEL_MIN_WORK: usize = 1 << 18;

fn threads() -> usize {
    rayon::current_num_threads()
}

/// Run `work` on a thread of rayon's pool when it has more than one, and wait for it.
///
/// Why: a thread outside the pool (the CLI's main thread, the page's worker) starts every
/// parallel loop through rayon's cold path: the job is injected, a sleeping pool thread is
/// woken, and the caller sleeps on a latch until the loop is done. In the page each of those
/// hand-offs goes through the browser's `Atomics.wait`/`notify`, and a step has dozens of small
/// loops, so a second thread gained nothing (bench/README.md, "… a run's steps on the pool").
/// Started on a pool thread, a loop's halves go to that thread's own deque and are at most
/// stolen.
pub fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if threads() > 1 {
        rayon::scope(|_| {
            fault_if_requested_for_tests();
            work()
        })
    } else {
        fault_if_requested_for_tests();
        work()
    }
}

/// What [`request_fault_on_pool_for_tests`] makes the next [`on_pool`] work do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestFault {
    /// A Rust panic (the panic hook runs, then the thread traps).
    Panic,
    /// An allocation the heap cannot give (no panic hook runs: the thread aborts).
    OutOfMemory,
    /// The thread never returns and says nothing (what the page's silence watch is for).
    Hang,
}

/// 0: none; 1: [`TestFault::Panic`]; 2: [`TestFault::OutOfMemory`]; 3: [`TestFault::Hang`].
static FAULT_REQUESTED_FOR_TESTS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Test only (the page's `--test-faults` end-to-end tests, through `src/web.rs`): the next
/// [`on_pool`] work — a training step — fails with `fault` on the thread it runs on, a pool
/// thread when the pool has more than one; the path a real fault inside a step takes.
pub fn request_fault_on_pool_for_tests(fault: TestFault) {
    let code = match fault {
        TestFault::Panic => 1,
        TestFault::OutOfMemory => 2,
        TestFault::Hang => 3,
    };
    FAULT_REQUESTED_FOR_TESTS.store(code, std::sync::atomic::Ordering::SeqCst);
}

fn fault_if_requested_for_tests() {
    match FAULT_REQUESTED_FOR_TESTS.swap(0, std::sync::atomic::Ordering::SeqCst) {
        0 => {}
        1 => panic!("a deliberate panic in a training step, requested by a test"),
        3 => loop {
            std::hint::spin_loop();
        },
        _ => {
            // Blocks of 64 MiB until the heap cannot grow by another: a real allocation failure
            // (std's handler aborts; no panic hook runs). What was taken is never freed: the
            // instance dies here.
            let layout = std::alloc::Layout::from_size_align(64 << 20, 1).expect("a valid layout");
            loop {
                // SAFETY: a non-zero size; the pointer is only checked, never used. (black_box:
                // an allocation nothing reads may otherwise be optimised away, leaving a loop.)
                if std::hint::black_box(unsafe { std::alloc::alloc(layout) }).is_null() {
                    std::alloc::handle_alloc_error(layout);
                }
            }
        }
    }
}

/// Whether a pass over `floats` values should be split across threads.
pub fn worth_splitting(floats: usize) -> bool {
    floats >= PARALLEL_MIN_FLOATS && threads() > 1
}

/// Run `a` and `b`, two independent pieces of work, at once when the pool has threads to spare
/// and the work — `multiply_adds` in all — is large enough to gain from it ([`gemm`]'s
/// threshold); one after the other otherwise. Two whole products side by side scale better than
/// one product cut in two (`cargo run --release --example gemm_threads` compares them).
pub fn join<A: Send, B: Send>(multiply_adds: usize, a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    if multiply_adds >= GEMM_PARALLEL_MIN_WORK && threads() > 1 {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// Apply `f(row_index, row)` to every `width`-long row of `data`, in parallel when large.
pub fn for_rows(data: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if width == 0 {
        return; // rows of no elements (a batch of empty sentences): nothing to do, no panic
    }
    if worth_splitting(data.len()) {
        data.par_chunks_mut(width).enumerate().for_each(|(i, row)| f(i, row));
    } else {
        data.chunks_mut(width).enumerate().for_each(|(i, row)| f(i, row));
    }
}

// ------------------------------------------------------------------------------------ gemm

/// A matrix operand: data with its row and column strides (in elements).
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Mat { data, row_stride: cols, col_stride: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns (no copy).
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Mat { data, row_stride: 1, col_stride: cols }
    }

    /// A block of a row-major matrix of `cols` columns: from row `row`, column `col`.
    pub fn block(data: &'a [f32], cols: usize, row: usize, col: usize) -> Self {
        Mat { data: &data[row * cols + col..], row_stride: cols, col_stride: 1 }
    }

    /// The transpose of [`Mat::block`].
    pub fn block_transposed(data: &'a [f32], cols: usize, row: usize, col: usize) -> Self {
        Mat { data: &data[row * cols + col..], row_stride: 1, col_stride: cols }
    }

    /// Largest index touched by an (r × c) view.
    fn extent(&self, r: usize, c: usize) -> usize {
        if r == 0 || c == 0 { 0 } else { (r - 1) * self.row_stride + (c - 1) * self.col_stride + 1 }
    }
}

/// dst (m × n, row stride `dst_rs`) = [dst +] lhs (m × k) · rhs (k × n).
///
/// Above [`GEMM_PARALLEL_MIN_WORK`] the output is cut into one block per thread — along its
/// longer side — and each block is a single-threaded gemm. Why not the gemm crate's own
/// `Parallelism::Rayon`: at the encoder's shapes it gains much less from a second thread than
/// these blocks do (`cargo run --release --example gemm_threads`). The sum over k is never
/// split, so the result is the same on any thread count.
#[allow(clippy::too_many_arguments)]
pub fn gemm(dst: &mut [f32], dst_rs: usize, accumulate: bool, m: usize, n: usize, k: usize, lhs: Mat<'_>, rhs: Mat<'_>) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() >= (m - 1) * dst_rs + n, "gemm: destination too small");
    if k == 0 {
        if !accumulate {
            dst.chunks_mut(dst_rs).take(m).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    // SAFETY: the assert above keeps the (m × n) block inside `dst`, which the borrow makes ours.
    unsafe { gemm_unchecked_dst(dst.as_mut_ptr(), dst_rs, accumulate, m, n, k, lhs, rhs) }
}

/// lhs (m × k) · rhs (k × n) as a new row-major (m × n) matrix. Written once: the product
/// overwrites its destination without reading it, so the buffer is not zero-filled first (a
/// pass over memory the step does not need).
pub fn product(m: usize, n: usize, k: usize, lhs: Mat<'_>, rhs: Mat<'_>) -> Vec<f32> {
    if m == 0 || n == 0 || k == 0 {
        return vec![0.0; m * n];
    }
    let mut out = Vec::with_capacity(m * n);
    // SAFETY: the buffer holds m·n elements, and a product that does not accumulate writes every
    // one of them without reading any, so all are initialised when the length is set.
    unsafe {
        gemm_unchecked_dst(out.as_mut_ptr(), n, false, m, n, k, lhs, rhs);
        out.set_len(m * n);
    }
    out
}

/// [`gemm`] for m, n, k > 0 into a destination the caller vouches for.
///
/// # Safety
/// The (m × n) block from `dst` at row stride `dst_rs` must be valid for writes (and for reads
/// when `accumulate`) and accessed by no one else during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_unchecked_dst(dst: *mut f32, dst_rs: usize, accumulate: bool, m: usize, n: usize, k: usize, lhs: Mat<'_>, rhs: Mat<'_>) {
    assert!(lhs.data.len() >= lhs.extent(m, k) && rhs.data.len() >= rhs.extent(k, n), "gemm: operand too small");
    let parts = if m * n * k >= GEMM_PARALLEL_MIN_WORK { threads() } else { 1 };
    let dst = SharedDst(dst);
    let block = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
        // SAFETY: the caller vouches for the (m × n) block of dst, the assert above for the
        // operands, and the blocks of one call do not overlap.
        unsafe { gemm_block(&dst, dst_rs, accumulate, rows, cols, k, lhs, rhs) }
    };
    if parts == 1 {
        return block(0..m, 0..n);
    }
    // Blocks are multiples of the f32 micro-kernel's 16 rows × 6 columns tile.
    let (long, align) = if n >= m { (n, 48) } else { (m, 16) };
    let size = long.div_ceil(parts).div_ceil(align) * align;
    (0..long.div_ceil(size)).into_par_iter().for_each(|p| {
        let part = p * size..((p + 1) * size).min(long);
        if n >= m { block(0..m, part) } else { block(part, 0..n) }
    });
}

/// The destination pointer shared by the blocks of one [`gemm`] (each writes its own block).
struct SharedDst(*mut f32);
// SAFETY: only used by `gemm`, whose blocks write disjoint parts of the destination.
unsafe impl Send for SharedDst {}
unsafe impl Sync for SharedDst {}

/// One block of [`gemm`] on the calling thread.
///
/// # Safety
/// `rows` × `cols` of dst, lhs and rhs must lie inside their buffers (as `gemm` asserts).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_block(dst: &SharedDst, dst_rs: usize, accumulate: bool, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>, k: usize, lhs: Mat<'_>, rhs: Mat<'_>) {
    let lhs = Mat { data: &lhs.data[rows.start * lhs.row_stride..], ..lhs };
    let rhs = Mat { data: &rhs.data[cols.start * rhs.col_stride..], ..rhs };
    gemm_serial(dst.0.add(rows.start * dst_rs + cols.start), dst_rs, accumulate, rows.len(), cols.len(), k, lhs, rhs, 1.0);
}

/// dst (m × n from `dst`, row stride `dst_rs`) = [dst +] scale · lhs (m × k) · rhs (k × n), on
/// the calling thread: the one place that picks the product's code — the gemm crate natively
/// (AVX2 + FMA), our own simd128 kernel in wasm ([`simd128_gemm`], faster there).
///
/// # Safety
/// The (m × n) block from `dst` must be valid and written by no one else during the call; lhs
/// and rhs must hold (m × k) and (k × n) at their strides.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_serial(dst: *mut f32, dst_rs: usize, accumulate: bool, m: usize, n: usize, k: usize, lhs: Mat<'_>, rhs: Mat<'_>, scale: f32) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let operand = |x: Mat<'_>| simd128_gemm::Operand { ptr: x.data.as_ptr(), row: x.row_stride, col: x.col_stride };
        simd128_gemm::gemm(dst, dst_rs, accumulate, m, n, k, operand(lhs), operand(rhs), scale)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    gemm::gemm(
        m, n, k, dst, 1, dst_rs as isize, accumulate,
        lhs.data.as_ptr(), lhs.col_stride as isize, lhs.row_stride as isize,
        rhs.data.as_ptr(), rhs.col_stride as isize, rhs.row_stride as isize,
        1.0, scale, false, false, false, gemm::Parallelism::None,
    );
}

/// y (rows × out) = x (rows × in) · w (in × out) + bias, every row.
pub fn linear(x: &[f32], w: &[f32], bias: &[f32], rows: usize, input: usize) -> Vec<f32> {
    let out = bias.len();
    let mut y = repeat_row(bias, rows);
    gemm(&mut y, out, true, rows, out, input, Mat::rows(x, input), Mat::rows(w, out));
    y
}

/// `rows` copies of `row`, one after another, written once. (`vec![0.0; n]` would first fill
/// the buffer with zeros: a pass over memory for nothing.)
pub fn repeat_row(row: &[f32], rows: usize) -> Vec<f32> {
    // SAFETY: every chunk is one whole row, and the closure writes all of it.
    unsafe {
        written_once(rows * row.len(), row.len(), |_, chunk| chunk.iter_mut().zip(row).for_each(|(d, v)| {
            d.write(*v);
        }))
    }
}

/// A new vector of `n` values written by `fill(chunk_index, chunk)` over `chunk`-long pieces, in
/// parallel when large, without zero-filling the buffer first.
///
/// # Safety
/// `fill` must write every element of every chunk it is given.
unsafe fn written_once(n: usize, chunk: usize, fill: impl Fn(usize, &mut [std::mem::MaybeUninit<f32>]) + Sync + Send) -> Vec<f32> {
    if n == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(n);
    let spare = &mut out.spare_capacity_mut()[..n];
    if worth_splitting(n) {
        spare.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| fill(i, c));
    } else {
        spare.chunks_mut(chunk).enumerate().for_each(|(i, c)| fill(i, c));
    }
    // SAFETY: the chunks cover the first n elements, and the caller vouches that `fill` wrote them.
    unsafe { out.set_len(n) };
    out
}

/// acc (cols) += the sum of the `cols`-wide rows of `x`, in fixed row blocks.
pub fn add_column_sums(acc: &mut [f32], x: &[f32]) {
    let cols = acc.len();
    if cols == 0 {
        return;
    }
    let block_sums = |block: &[f32]| -> Vec<f32> {
        let mut sums = vec![0f32; cols];
        for row in block.chunks_exact(cols) {
            sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
        sums
    };
    let partials: Vec<Vec<f32>> = if worth_splitting(x.len()) {
        x.par_chunks(ROW_BLOCK * cols).map(block_sums).collect()
    } else {
        x.chunks(ROW_BLOCK * cols).map(block_sums).collect()
    };
    for partial in partials {
        acc.iter_mut().zip(&partial).for_each(|(a, p)| *a += p);
    }
}

// ------------------------------------------------------------------------------- LayerNorm

/// LayerNorm over rows of `gamma.len()`: out = (x − mean) · rstd · gamma + beta. Keeps each
/// row's normalised input (`xhat`) and 1/std (`rstd`) for the backward pass when given.
pub fn layer_norm(out: &mut [f32], x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, saved: Option<(&mut [f32], &mut [f32])>) {
    let h = gamma.len();
    let normalize = |x: &[f32], out: &mut [f32], xhat: Option<&mut [f32]>| -> f32 {
        let n = h as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let rstd = 1.0 / (var + eps).sqrt();
        match xhat {
            Some(xhat) => (0..h).for_each(|i| {
                xhat[i] = (x[i] - mean) * rstd;
                out[i] = xhat[i] * gamma[i] + beta[i];
            }),
            None => (0..h).for_each(|i| out[i] = (x[i] - mean) * rstd * gamma[i] + beta[i]),
        }
        rstd
    };
    match saved {
        Some((xhat, rstd)) => {
            if worth_splitting(out.len()) {
                out.par_chunks_mut(h).zip(xhat.par_chunks_mut(h)).zip(rstd.par_iter_mut()).enumerate().for_each(|(i, ((o, xh), s))| *s = normalize(&x[i * h..(i + 1) * h], o, Some(xh)));
            } else {
                out.chunks_mut(h).zip(xhat.chunks_mut(h)).zip(rstd.iter_mut()).enumerate().for_each(|(i, ((o, xh), s))| *s = normalize(&x[i * h..(i + 1) * h], o, Some(xh)));
            }
        }
        None => for_rows(out, h, |i, o| {
            normalize(&x[i * h..(i + 1) * h], o, None);
        }),
    }
}

/// LayerNorm backward: dx from dy and the saved `xhat` and `rstd` (the parameters' gradients
/// are column sums of dy ⊙ xhat and of dy, added by the caller).
pub fn layer_norm_backward(dx: &mut [f32], dy: &[f32], xhat: &[f32], rstd: &[f32], gamma: &[f32]) {
    let h = gamma.len();
    for_rows(dx, h, |r, dx_row| {
        let (dy, xh) = (&dy[r * h..(r + 1) * h], &xhat[r * h..(r + 1) * h]);
        let (mut sum_dxhat, mut sum_dxhat_xhat) = (0f32, 0f32);
        for i in 0..h {
            let dxhat = dy[i] * gamma[i];
            sum_dxhat += dxhat;
            sum_dxhat_xhat += dxhat * xh[i];
        }
        let (mean_dxhat, mean_dxhat_xhat) = (sum_dxhat / h as f32, sum_dxhat_xhat / h as f32);
        for i in 0..h {
            dx_row[i] = rstd[r] * (dy[i] * gamma[i] - mean_dxhat - xh[i] * mean_dxhat_xhat);
        }
    });
}

// --------------------------------------------------------------------------- exp, erf, GELU

/// e^x in f32 to about 1 ulp, branch-free so that loops over it vectorize (libm's expf is a
/// call per element). Cody–Waite reduction by ln 2, degree-6 polynomial, scaling by 2^n.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let clamped = x.clamp(-87.3, 88.7);
    // Round to nearest by adding and removing 1.5 · 2^23 (f32::round is a libm call that stops
    // the loop from vectorizing).
    const ROUNDER: f32 = 12_582_912.0;
    let shifted = clamped * std::f32::consts::LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = clamped - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (0.166_666_67 + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_888_9)))));
    // 2^n: `shifted`'s low mantissa bits hold n (two's complement); the shift drops the rest.
    // (Not `n as i32`: the saturating cast kept the loop from vectorizing on AVX-512.)
    let e = f32::from_bits(shifted.to_bits().wrapping_add(127) << 23) * p;
    // Below e^−87.3 f32 underflows: 0, as expf gives (a select, not a branch).
    if x < -87.3 { 0.0 } else { e }
}

/// erf(x) in f32, branch-free: the rational approximation on [−4, 4] that Eigen and
/// TensorFlow use for GELU (erf(±4) is ±1 in f32).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_600_1e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329_3e-3;
    q = x2 * q + -1.426_473_9e-2;
    p / q
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/sqrt(2π)
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// BERT's exact GELU: x · Φ(x) = 0.5 · x · (1 + erf(x / √2)).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2))
}

#[inline(always)]
pub fn gelu_derivative(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * FRAC_1_SQRT_2)) + x * FRAC_1_SQRT_2PI * exp(-0.5 * x * x)
}

/// out = gelu(x), element-wise.
pub fn gelu_forward(x: &[f32]) -> Vec<f32> {
    // SAFETY: gelu_chunk writes every element of its chunk, which is as long as its x.
    unsafe { written_once(x.len(), 4096, |i, chunk| gelu_chunk(chunk, &x[i * 4096..i * 4096 + chunk.len()])) }
}

/// dx = dy · gelu'(x), element-wise, in place over `dy`.
pub fn gelu_backward_inplace(dy: &mut [f32], x: &[f32]) {
    for_rows(dy, 4096, |r, d| gelu_backward_chunk(d, &x[r * 4096..r * 4096 + d.len()]));
}

// The GELU loops once per instruction set, picked at run time (same operations in the same
// order, so the same results on every CPU: only the vector width changes; FMA is not used,
// as Rust never fuses a multiply and an add by itself).
#[multiversion::multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn gelu_chunk(out: &mut [std::mem::MaybeUninit<f32>], x: &[f32]) {
    out.iter_mut().zip(x).for_each(|(o, v)| {
        o.write(gelu(*v));
    });
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn gelu_backward_chunk(dy: &mut [f32], x: &[f32]) {
    dy.iter_mut().zip(x).for_each(|(d, v)| *d *= gelu_derivative(*v));
}

// ---------------------------------------------------------------------------------- softmax

/// Softmax over the keys that are real tokens (mask 1); padding keys get probability 0, as
/// transformers' additive mask of the dtype's minimum gives.
pub fn masked_softmax(row: &mut [f32], key_mask: &[f32]) {
    let mut max = f32::NEG_INFINITY;
    for (v, m) in row.iter().zip(key_mask) {
        if *m > 0.0 && *v > max {
            max = *v;
        }
    }
    let mut sum = 0f32;
    for (v, m) in row.iter_mut().zip(key_mask) {
        *v = if *m > 0.0 { exp(*v - max) } else { 0.0 };
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// Softmax backward, in place over `dy` (→ dx), given the softmax output `y`.
pub fn softmax_backward_rows(dy: &mut [f32], y: &[f32], n: usize) {
    for (d, y) in dy.chunks_exact_mut(n).zip(y.chunks_exact(n)) {
        let dot: f32 = d.iter().zip(y).map(|(a, b)| a * b).sum();
        d.iter_mut().zip(y).for_each(|(d, y)| *d = y * (*d - dot));
    }
}

// ---------------------------------------------------------------------------------- dropout

/// Values per task when a dropout mask is drawn on several threads.
const MASK_BLOCK: usize = 1 << 14;

/// Inverted dropout mask: 0 with probability `p`, else 1/(1-p).
///
/// Each value uses one 32-bit word of the stream, so a large mask is drawn in blocks on the
/// rayon pool, each from its own copy of the generator moved to the block's word position:
/// the same values as one serial pass, on any thread count, and the stream ends where a serial
/// pass would leave it.
pub fn dropout_mask(rng: &mut SeededRng, n: usize, p: f32) -> Vec<f32> {
    let keep = 1.0 / (1.0 - p);
    let draw = |rng: &mut SeededRng, values: &mut [f32]| values.iter_mut().for_each(|v| *v = if rng.random::<f32>() < p { 0.0 } else { keep });
    let mut mask = vec![0f32; n];
    if !worth_splitting(n) {
        draw(rng, &mut mask);
        return mask;
    }
    let start = rng.get_word_pos();
    mask.par_chunks_mut(MASK_BLOCK).enumerate().for_each(|(block, values)| {
        let mut block_rng = rng.clone();
        block_rng.set_word_pos(start + (block * MASK_BLOCK) as u128);
        draw(&mut block_rng, values);
    });
    rng.set_word_pos(start + n as u128);
    mask
}

/// x ⊙ mask, in place (an inverted-dropout mask: 0 or 1/(1−p)).
pub fn multiply_inplace(x: &mut [f32], mask: &[f32]) {
    for_rows(x, 4096, |r, chunk| {
        let m = &mask[r * 4096..r * 4096 + chunk.len()];
        chunk.iter_mut().zip(m).for_each(|(v, m)| *v *= m);
    });
}

/// acc += x, element-wise.
pub fn add_inplace(acc: &mut [f32], x: &[f32]) {
    for_rows(acc, 4096, |r, a| {
        let x = &x[r * 4096..r * 4096 + a.len()];
        a.iter_mut().zip(x).for_each(|(a, x)| *a += x);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product by the definition, in f64.
    fn naive(m: usize, n: usize, k: usize, lhs: Mat<'_>, rhs: Mat<'_>) -> Vec<f32> {
        let at = |x: &Mat<'_>, r: usize, c: usize| x.data[r * x.row_stride + c * x.col_stride] as f64;
        (0..m).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| (0..k).map(|p| at(&lhs, i, p) * at(&rhs, p, j)).sum::<f64>() as f32).collect()
    }

    #[test]
    fn a_new_product_writes_every_element_on_any_thread_count() {
        // Large enough to be split across threads; rhs transposed, as an input gradient's Wᵀ.
        let (m, n, k) = (70, 130, 300);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 23) as f32 / 23.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 29) as f32 / 29.0 - 0.5).collect();
        let (lhs, rhs) = (Mat::rows(&a, k), Mat::transposed(&b, k));
        let expected = naive(m, n, k, lhs, rhs);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let ours = pool.install(|| product(m, n, k, lhs, rhs));
            assert_eq!(ours.len(), m * n);
            for (i, (o, e)) in ours.iter().zip(&expected).enumerate() {
                assert!((o - e).abs() <= 1e-4, "{threads} thread(s), element {i}: {o} vs {e}");
            }
        }
        assert_eq!(product(3, 4, 0, lhs, rhs), vec![0.0; 12], "an empty sum is zero");
    }

    #[test]
    fn repeat_row_and_linear_add_the_bias_to_every_row() {
        let bias = [1.0, -2.0, 0.5];
        assert_eq!(repeat_row(&bias, 2), vec![1.0, -2.0, 0.5, 1.0, -2.0, 0.5]);
        assert!(repeat_row(&bias, 0).is_empty());
        let rows = 40_000; // above the threshold that splits the fill across threads
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let x = vec![1.0f32; rows * 2];
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 × 3
        let y = pool.install(|| linear(&x, &w, &bias, rows, 2));
        assert!(y.chunks(3).all(|r| r == [6.0, 5.0, 9.5]), "x·W + b with x = [1, 1]");
    }

    /// The blocks drawn on two threads give the serial stream's values and leave the generator
    /// where a serial pass would (a seek off by one block would shift every later mask).
    #[test]
    fn a_mask_drawn_on_threads_is_the_serial_stream() {
        let (n, p) = (100_003, 0.1);
        let mut serial = crate::rng::seeded(7, 3);
        let expected: Vec<f32> = (0..n).map(|_| if serial.random::<f32>() < p { 0.0 } else { 1.0 / (1.0 - p) }).collect();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let mut threaded = crate::rng::seeded(7, 3);
        let mask = pool.install(|| dropout_mask(&mut threaded, n, p));
        assert!(mask == expected, "the threaded mask differs from the serial draw");
        assert_eq!(threaded.random::<u32>(), serial.random::<u32>(), "the stream continues elsewhere after the mask");
    }
}
