//! Fuzz target `frame_decode`: see `rotorlink_fuzz_targets::frame_decode` for what it feeds and asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotorlink_fuzz_targets::frame_decode(data));
