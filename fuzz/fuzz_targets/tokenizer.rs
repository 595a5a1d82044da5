#![no_main]
//! Fuzz target `tokenizer`: see `webtune_fuzz::targets::tokenizer`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| webtune_fuzz::targets::tokenizer(bytes));
