//! Fuzz target `handshake_remote`: see `rotorlink_fuzz_targets::handshake_remote` for what it feeds and asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotorlink_fuzz_targets::handshake_remote(data));
