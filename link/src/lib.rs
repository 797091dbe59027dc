//! # rotorlink
//!
//! The sans-IO core of an open, verifiable encrypted link between a drone (the *aircraft*)
//! and its pilot's *remote* controller.
//!
//! This crate does no I/O, reads no clock and uses no global random number generator: the
//! caller passes the time ([`Timestamp`]) and the bytes in, and polls for bytes to send and
//! for when to wake up. See [`Link`] for the calling contract. It builds as `no_std` + `alloc`
//! (`--no-default-features`) for flight computers.
//!
//! - [`wire`]: the frame format, zero-copy views and typed decode errors.
//! - [`crypto`]: the AEAD provider trait (RustCrypto by default, AWS-LC with feature
//!   `aws-lc`), secrets, and the HKDF key schedule.
//! - [`handshake`]: password pairing (OPAQUE), bonded session handshakes and fast
//!   reconnect (X25519), brute-force limits, the identities each end persists.
//! - [`session`]: per-direction keys, the replay window, key rotation.
//! - [`channel`]: the four logical channels and their delivery semantics.
//! - [`Link`]: all of it together, one end of the link.
//!
//! ```
//! use rotorlink::handshake::{AircraftIdentity, KsfParams, MemoryAttemptStore, RemoteIdentity};
//! use rotorlink::{Channel, Config, Event, Link, Timestamp};
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! // Fast key stretching keeps this example quick; keep the default in real use.
//! let config = Config { ksf: KsfParams::INSECURE_FAST, ..Config::default() };
//! let mut rng = ChaCha20Rng::from_seed([7; 32]); // use a real CSPRNG (e.g. OsRng)
//! let now = Timestamp::ZERO;
//!
//! // Activation: the owner sets the code; the aircraft keeps only OPAQUE's password file.
//! let link_id = *b"my-aircraft-0001";
//! let identity = AircraftIdentity::provision(link_id, b"246813", config.ksf, &mut rng)?;
//! let attempts = Box::new(MemoryAttemptStore::new()); // persist it in real use
//! let mut aircraft: Link = Link::aircraft(config.clone(), identity, attempts, &mut rng, now)?;
//! // The owner opens the pairing window (a button on the aircraft): closed by default.
//! aircraft.open_pairing_window(core::time::Duration::from_secs(120), now)?;
//!
//! // The pilot links a remote with the code.
//! let mut remote: Link =
//!     Link::remote(config, RemoteIdentity::generate(&mut rng), link_id, &mut rng, now)?;
//! // Addresses are opaque to the link (it only compares them); over UDP they are the
//! // sockets' addresses.
//! let (aircraft_addr, remote_addr) = ("10.0.0.1:47474".parse()?, "10.0.0.2:47474".parse()?);
//! remote.pair(b"246813", aircraft_addr, now)?;
//! remote.send(Channel::Control, b"throttle 40%")?; // queued until the session is up
//!
//! // The caller moves datagrams (here directly; in real life over a radio or UDP).
//! let mut buf = [0u8; 1500];
//! for _ in 0..4 {
//!     while let Some(t) = remote.poll_transmit(now, &mut buf) {
//!         assert_eq!(t.destination, aircraft_addr);
//!         let _ = aircraft.handle_datagram(now, remote_addr, &buf[..t.len]);
//!     }
//!     while let Some(t) = aircraft.poll_transmit(now, &mut buf) {
//!         assert_eq!(t.destination, remote_addr);
//!         let _ = remote.handle_datagram(now, aircraft_addr, &buf[..t.len]);
//!     }
//! }
//! assert!(remote.is_connected() && aircraft.is_connected());
//! let mut got = None;
//! while let Some(event) = aircraft.poll_event() {
//!     if let Event::Message { channel, data } = event {
//!         got = Some((channel, data.into_vec()));
//!     }
//! }
//! assert_eq!(got, Some((Channel::Control, b"throttle 40%".to_vec())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![no_std]
#![forbid(unsafe_code)]
// Bad input must never reach a panic: outside tests, every `unwrap`/`expect` is refused
// unless allowed where it stands, with the local invariant that makes it unreachable.
#![warn(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod channel;
pub mod config;
mod connection;
pub mod crypto;
mod endpoint;
mod error;
mod event;
mod failsafe;
pub mod fleet;
pub mod handshake;
mod link;
mod pool;
pub mod session;
mod stats;
mod time;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod wire;

pub use channel::{Channel, Role};
pub use config::{Config, ConfigError, VideoFec};
pub use connection::PathEstimate;
#[cfg(feature = "aws-lc")]
pub use crypto::AwsLc;
pub use crypto::{AeadProvider, RustCrypto, Secret};
pub use error::{Error, ErrorKind, SendError};
pub use event::{CloseCode, Event, KeyDirection, Message};
pub use failsafe::Failsafe;
pub use fleet::{Fleet, LinkKey};
pub use handshake::stretch::{KeyStretch, KeyStretched};
pub use link::{InPlace, Link, Transmit, PAYLOAD_OFFSET};
pub use session::replay::{ReplayError, ReplayWindow};
pub use stats::{ChannelStats, Stats};
pub use time::Timestamp;
pub use wire::{DecodeError, EncodeError};
