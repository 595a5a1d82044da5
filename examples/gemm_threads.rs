//! Why `kernels::gemm` splits its output itself: one product at the encoder's shapes, timed on
//! one thread, with the gemm crate's own `Parallelism::Rayon(2)`, and with `kernels::gemm`'s
//! split on a 2-thread pool. Then why the encoder runs independent products side by side
//! (`kernels::join`): two products, each split, against the two at once. Median of 41 runs
//! each; run it on a quiet machine: `cargo run --release --example gemm_threads`.
use std::time::Instant;

use webtune::kernels::{self, Mat};

fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..41)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[20]
}

/// dst (m × n) = lhs (m × k) · rhs (k × n); `lhs_t`: lhs stored transposed (a weight gradient's
/// xᵀ), `rhs_t`: rhs stored transposed (an input gradient's Wᵀ).
fn case(name: &str, m: usize, n: usize, k: usize, lhs_t: bool, rhs_t: bool) {
    let (a, b, mut c) = (vec![0.5f32; m * k], vec![0.25f32; k * n], vec![0f32; m * n]);
    let lhs = if lhs_t { Mat::transposed(&a, m) } else { Mat::rows(&a, k) };
    let rhs = if rhs_t { Mat::transposed(&b, k) } else { Mat::rows(&b, n) };
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let (one, two) = (pool(1), pool(2));
    let single = one.install(|| median_ms(|| kernels::gemm(&mut c, n, false, m, n, k, lhs, rhs)));
    let crate_split = two.install(|| {
        median_ms(|| unsafe {
            let (l, r) = (lhs, rhs);
            gemm::gemm(m, n, k, c.as_mut_ptr(), 1, n as isize, false, l.data.as_ptr(), l.col_stride as isize, l.row_stride as isize, r.data.as_ptr(), r.col_stride as isize, r.row_stride as isize, 1.0, 1.0, false, false, false, gemm::Parallelism::Rayon(2))
        })
    });
    let our_split = two.install(|| median_ms(|| kernels::gemm(&mut c, n, false, m, n, k, lhs, rhs)));
    println!("{name:<30} 1 thread {single:6.2} ms | 2 threads: gemm's split {crate_split:6.2} ms ({:.2}×), ours {our_split:6.2} ms ({:.2}×)", single / crate_split, single / our_split);
}

/// Two independent (m × n × k) products on 2 threads: one after the other, each split across
/// the threads, against side by side (`kernels::join`).
fn pair(name: &str, m: usize, n: usize, k: usize) {
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
    let (mut c1, mut c2) = (vec![0f32; m * n], vec![0f32; m * n]);
    let (lhs, rhs) = (Mat::rows(&a, k), Mat::rows(&b, n));
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let (one, two) = (pool(1), pool(2));
    let mut run = |side_by_side: bool| {
        let mut first = || kernels::gemm(&mut c1, n, false, m, n, k, lhs, rhs);
        let mut second = || kernels::gemm(&mut c2, n, false, m, n, k, lhs, rhs);
        if side_by_side {
            kernels::join(usize::MAX, first, second);
        } else {
            first();
            second();
        }
    };
    let single = one.install(|| median_ms(|| run(false)));
    let split = two.install(|| median_ms(|| run(false)));
    let joined = two.install(|| median_ms(|| run(true)));
    println!("{name:<30} 1 thread {single:6.2} ms | 2 threads: each split {split:6.2} ms ({:.2}×), side by side {joined:6.2} ms ({:.2}×)", single / split, single / joined);
}

fn main() {
    println!("bert-base at batch 2 × 128 tokens (256 rows):");
    case("query/key/value/output fwd", 256, 768, 768, false, false);
    case("feed-forward up fwd", 256, 3072, 768, false, false);
    case("feed-forward down fwd", 256, 768, 3072, false, false);
    case("feed-forward down dx", 256, 3072, 768, false, true);
    case("feed-forward up dW", 768, 3072, 256, true, false);
    case("query dW", 768, 768, 256, true, false);
    println!("MiniLM at batch 16 × 32 tokens (512 rows):");
    case("query/key/value/output fwd", 512, 384, 384, false, false);
    case("feed-forward up fwd", 512, 1536, 384, false, false);
    println!("two independent products at once:");
    pair("2 × bert-base projection fwd", 256, 768, 768);
    pair("2 × MiniLM projection fwd", 512, 384, 384);
}
