#![no_main]
//! Fuzz target `data`: see `webtune_fuzz::targets::data`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| webtune_fuzz::targets::data(bytes));
