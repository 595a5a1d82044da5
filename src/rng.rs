//! Seeded randomness. ChaCha8 is portable (same stream natively and in wasm), so the same seed
//! gives the same shuffles, dropout masks and initialisations on both targets.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub type SeededRng = ChaCha8Rng;

/// An independent stream for one purpose (`stream` keeps shuffling, dropout and init apart).
pub fn seeded(seed: u64, stream: u64) -> SeededRng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Normal(mean, std) samples by Box–Muller (written out to avoid a rand_distr dependency).
pub fn normal_vec(rng: &mut SeededRng, n: usize, mean: f32, std: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push(mean + std * (r * theta.cos()) as f32);
        out.push(mean + std * (r * theta.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// Uniform(low, high) samples.
pub fn uniform_vec(rng: &mut SeededRng, n: usize, low: f32, high: f32) -> Vec<f32> {
    (0..n).map(|_| low + (high - low) * rng.random::<f32>()).collect()
}

/// Fisher–Yates shuffle of 0..n.
pub fn permutation(rng: &mut SeededRng, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        idx.swap(i, j);
    }
    idx
}
