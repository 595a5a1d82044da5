//! The most multiply-adds one thread of this CPU can do: twelve independent chains of fused
//! multiply-adds, as wide as the CPU allows (AVX-512, then AVX2 + FMA), each in registers. The
//! ceiling every matrix product here is measured against (`webtune bench --gemm` prints the
//! products' GFLOPS; `python bench/compare_torch.py --gemm` prints MKL's next to them).
//! Run it on a quiet machine: `cargo run --release --example fma_peak`.
//!
//! Written by hand because it is a measurement of the hardware, not a library task.
// Elsewhere than x86-64 there is nothing to measure, so the helpers go unused.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::time::Instant;

const CHAINS: usize = 12;
const ITERATIONS: usize = 100_000_000;

fn report(name: &str, lanes: usize, run: impl Fn() -> f32) {
    let mut rates: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(run());
            let seconds = start.elapsed().as_secs_f64();
            (ITERATIONS * CHAINS * lanes * 2) as f64 / seconds / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    println!("{name}: {:.1} GFLOPS per thread (median of 5; {:.1}–{:.1})", rates[2], rates[0], rates[4]);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{CHAINS, ITERATIONS};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512() -> f32 {
        let (b, c) = (_mm512_set1_ps(1.000_000_1), _mm512_set1_ps(0.999_999));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..ITERATIONS {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, b, c);
            }
        }
        acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2() -> f32 {
        let (b, c) = (_mm256_set1_ps(1.000_000_1), _mm256_set1_ps(0.999_999));
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..ITERATIONS {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, b, c);
            }
        }
        let mut lanes = [0f32; 8];
        acc.iter().map(|&a| {
            _mm256_storeu_ps(lanes.as_mut_ptr(), a);
            lanes.iter().sum::<f32>()
        }).sum()
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            report("AVX-512 (16 lanes)", 16, || unsafe { x86::avx512() });
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            report("AVX2 + FMA (8 lanes)", 8, || unsafe { x86::avx2() });
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    println!("fma_peak measures x86-64 only");
}
