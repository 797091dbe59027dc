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
//! - [`session`]: per-direction keys, the replay window, key rotation.
//! - [`channel`]: the four logical channels and their delivery semantics.
//! - [`Link`]: all of it together, one end of an established session.
//!
//! ```
//! use rotorlink::{Channel, Config, Event, Link, Role, Secret, Timestamp};
//!
//! let now = Timestamp::ZERO;
//! let secret = Secret::new([7; 32]); // from the handshake
//! let hash = [1; 32]; // the handshake transcript hash
//! let mut aircraft: Link =
//!     Link::from_secret(Role::Aircraft, Config::default(), &secret, &hash, 1, 2, now)?;
//! let mut remote: Link =
//!     Link::from_secret(Role::Remote, Config::default(), &secret, &hash, 2, 1, now)?;
//!
//! remote.send(Channel::Control, b"throttle 40%")?;
//! let mut buf = [0u8; 1500];
//! while let Some(t) = remote.poll_transmit(now, &mut buf) {
//!     aircraft.handle_datagram(now, &buf[..t.len])?;
//! }
//! match aircraft.poll_event() {
//!     Some(Event::Message { channel, data }) => {
//!         assert_eq!((channel, data), (Channel::Control, &b"throttle 40%"[..]))
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod channel;
pub mod config;
pub mod crypto;
mod error;
pub mod handshake;
mod link;
mod pool;
pub mod session;
mod stats;
mod time;
pub mod wire;

pub use channel::{Channel, Role};
pub use config::{Config, ConfigError};
#[cfg(feature = "aws-lc")]
pub use crypto::AwsLc;
pub use crypto::{AeadProvider, RustCrypto, Secret};
pub use error::{Error, ErrorKind};
pub use link::{CloseCode, Event, KeyDirection, Link, Transmit};
pub use session::replay::{ReplayError, ReplayWindow};
pub use stats::{ChannelStats, Stats};
pub use time::Timestamp;
pub use wire::DecodeError;
