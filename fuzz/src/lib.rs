//! The rotorlink fuzz targets. Each target's body is a plain function in [`targets`], run by
//! `fuzz_targets/<target>.rs` under libFuzzer and replayed over the committed corpus by
//! `link/tests/fuzz_corpus.rs` in the ordinary test suite.

pub mod targets;
