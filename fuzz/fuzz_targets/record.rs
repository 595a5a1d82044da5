#![no_main]
//! Fuzz target `record`: see `webtune_fuzz::targets::record`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| webtune_fuzz::targets::record(bytes));
