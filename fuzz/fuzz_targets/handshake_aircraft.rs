//! Fuzz target `handshake_aircraft`: see `rotorlink_fuzz_targets::handshake_aircraft` for what it feeds and asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotorlink_fuzz_targets::handshake_aircraft(data));
