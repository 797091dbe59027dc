//! Fuzz target `reassembly`: see `rotorlink_fuzz_targets::reassembly` for what it feeds and asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotorlink_fuzz_targets::reassembly(data));
