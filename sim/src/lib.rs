//! # rotorlink-sim
//!
//! A deterministic, virtual-time harness for the rotorlink core: a simulated radio path
//! ([`path`]) and a stepper that drives an aircraft and a remote [`rotorlink::Link`] across it
//! ([`pair`]), plus the demo flight the `rotorlink demo` command runs ([`demo`]).
//!
//! Every random choice comes from one seed, and time only moves when the stepper moves it,
//! so the same seed gives the same run, byte for byte, as fast as the CPU allows.

pub mod demo;
pub mod pair;
pub mod path;

pub use pair::{Pair, Side};
pub use path::{Path, PathConfig, PathStats};
