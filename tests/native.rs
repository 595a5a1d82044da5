//! The native integration tests, one module per file of `tests/`, linked as one binary: each
//! test binary links the whole crate and its dependencies with thin LTO (a minute or more on a
//! 2-core machine), so one binary instead of twenty saves most of the native group's build.
//! `memory.rs` (its counting allocator sees the whole process) and `serve.rs` (timeouts of a
//! live server) stay binaries of their own; `wasm.rs` runs in the browser.
#![cfg(not(target_arch = "wasm32"))]

mod common;

mod architectures;
mod cli;
mod data_parser;
mod fuzz_regressions;
mod golden;
mod gpu_cli;
mod gpu_kernels;
mod gpu_training;
mod gradcheck;
mod insight;
mod layering;
mod long_inputs;
mod lora;
mod model_files;
mod no_silent_nan;
mod optimizer;
mod options;
mod phases;
mod recipe_golden;
mod stop_in_step;
mod threads_equal;
mod training;
