//! Fuzz target `session_message`: see `rotorlink_fuzz_targets::session_message` for what it feeds and asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotorlink_fuzz_targets::session_message(data));
