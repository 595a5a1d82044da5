//! Seeded randomness. ChaCha8 is portable (same stream natively and in wasm), so the same seed
//! gives the same shuffles, dropout masks and initialisations on both targets.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::kernels;

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
    if !kernels::split(n) {
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

/// Fisher–Yates shuffle of 0..n.
pub fn permutation(rng: &mut SeededRng, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        idx.swap(i, j);
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocks drawn on two threads give the serial stream's values and leave the generator
    /// where a serial pass would (a seek off by one block would shift every later mask).
    #[test]
    fn a_mask_drawn_on_threads_is_the_serial_stream() {
        let (n, p) = (100_003, 0.1);
        let mut serial = seeded(7, 3);
        let expected: Vec<f32> = (0..n).map(|_| if serial.random::<f32>() < p { 0.0 } else { 1.0 / (1.0 - p) }).collect();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let mut threaded = seeded(7, 3);
        let mask = pool.install(|| dropout_mask(&mut threaded, n, p));
        assert!(mask == expected, "the threaded mask differs from the serial draw");
        assert_eq!(threaded.random::<u32>(), serial.random::<u32>(), "the stream continues elsewhere after the mask");
    }
}
