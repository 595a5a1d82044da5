//! The thread count of `train` and `bench`: one place that sizes every pool the work runs on.
use crate::CliResult;

/// What `train --threads` defaults to: all logical cores, or `RAYON_NUM_THREADS` when it is set
/// (so `RAYON_NUM_THREADS=1 webtune train …`, as tests/e2e/bench.mjs runs it, stays one thread).
pub fn default_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Run all work on `n` threads. Call it first thing in a command, before any tensor op:
/// - rayon's global pool (our own parallel loops, and what `Event::Start.threads` reports) gets
///   `n` threads;
/// - candle reads its thread counts from the environment on first use: `RAYON_NUM_THREADS`
///   sizes its gemm parallelism and its own rayon pool (`candle_core::utils::get_num_threads`),
///   `CANDLE_NUM_THREADS` its element-wise barrier pool (n − 1 workers).
pub fn use_threads(n: usize) -> CliResult {
    if n == 0 {
        return Err("--threads must be at least 1".into());
    }
    // Still single-threaded here (no pool has started), so changing the environment is sound.
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| format!("cannot start {n} threads: {e}"))?;
    Ok(())
}
