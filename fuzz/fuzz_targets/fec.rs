//! Fuzz target `fec`: see `rotorlink_fuzz_targets::fec` for what it feeds and asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotorlink_fuzz_targets::fec(data));
