#![no_main]
//! Fuzz target `options`: see `webtune_fuzz::targets::options`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| webtune_fuzz::targets::options(bytes));
