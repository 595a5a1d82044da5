#![no_main]
//! Fuzz target `config`: see `webtune_fuzz::targets::config`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| webtune_fuzz::targets::config(bytes));
