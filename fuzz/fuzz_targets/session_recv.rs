//! Fuzz target `session_recv`: see `rotorlink_fuzz_targets::session_recv` for what it feeds and asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotorlink_fuzz_targets::session_recv(data));
