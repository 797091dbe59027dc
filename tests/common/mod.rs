//! Code shared by the integration tests in `tests/` (each test file is its own crate and
//! includes this with `mod common;`).

pub(crate) mod adversary;
