//! Fuzz target `stored`: see `rotorlink_fuzz_targets::stored` for what it feeds and asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotorlink_fuzz_targets::stored(data));
