#![no_main]
//! Fuzz target `checkpoint`: see `webtune_fuzz::targets::checkpoint`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| webtune_fuzz::targets::checkpoint(bytes));
