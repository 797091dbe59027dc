//! # rotorlink-sim
//!
//! A deterministic, virtual-time harness for the rotorlink core: a simulated radio, one
//! [`RadioChannel`] per direction ([`channel`]), and a stepper that drives an aircraft and a
//! remote [`rotorlink::Link`] across it ([`pair`]), the fake aircraft and remote applications
//! ([`aircraft`], [`remote`]) with the aircraft's onboard storage and the file transfer
//! protocol between them ([`storage`]), the video stream's frames and the remote's model of
//! a decoder ([`video`]), and whole flights with their reports ([`scenario`],
//! [`report`]), and pcap captures of everything on the air for Wireshark ([`pcap`]).
//!
//! For the tokio driver, [`net`] puts the same radio under a pair of
//! [`rotorlink::tokio::Transport`]s in tokio time, and between two real UDP endpoints
//! ([`net::proxy`]).
//!
//! Every random choice comes from one seed, and time only moves when the stepper moves it,
//! so the same seed gives the same run, byte for byte, as fast as the CPU allows.

pub mod aircraft;
pub mod channel;
pub mod fleet;
pub mod flight;
pub mod keylog;
pub mod net;
pub mod pair;
pub mod pcap;
pub mod remote;
pub mod report;
pub mod scenario;
pub mod storage;
pub mod video;

pub use channel::{
    Adversary, Air, Burst, ChannelConfig, ChannelConfigError, Direction, DistanceProfile,
    FnAdversary, RadioChannel, RadioStats, RateStep, Recorder, Sighting,
};
pub use pair::{addr, Pair, PAIRING_WINDOW};
