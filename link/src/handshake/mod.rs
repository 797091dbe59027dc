//! The handshakes: password pairing (OPAQUE), bonded session handshakes (X25519), fast
//! reconnect, and the brute-force limits that guard the security code.
//!
//! | handshake | when                              | proves                      | cost (aircraft)        |
//! |-----------|-----------------------------------|-----------------------------|------------------------|
//! | Pair      | linking a remote, with the code   | the code (OPAQUE, RFC 9807) | one OPAQUE evaluation  |
//! | Session   | every later connection            | both static keys (bond)     | four X25519            |
//! | Resume    | reconnecting during a flight      | the previous session        | one X25519             |
//!
//! Session and resume are named Noise patterns run by `snow` ([`noise`]):
//! `Noise_KKpsk0_25519_AESGCM_SHA256` keyed with the bond key, and
//! `Noise_NNpsk0_25519_AESGCM_SHA256` keyed with the resumption secret. Their first message
//! carries a timestamp the aircraft requires to grow per bond (persisted with the identity),
//! so a recorded `Init` is refused even after the aircraft restarts.
//!
//! All three are `Init` / `Response` / `Finish` exchanges with fresh ephemeral keys (forward
//! secrecy), and all bind the whole transcript (version, suite, every message) into the
//! session keys. See `PROTOCOL.md` for the message formats and the key schedules.

pub(crate) mod aircraft;
pub mod identity;
pub mod keys;
pub mod limits;
pub mod noise;
pub mod pake;
/// The handshake message formats, defined with every other byte format in
/// [`crate::wire::handshake`].
pub use crate::wire::handshake as messages;
pub(crate) mod remote;
pub(crate) mod stretch;

use core::fmt;
use core::time::Duration;

use crate::crypto::Secret;
use crate::wire::DecodeError;
use crate::Timestamp;

pub use aircraft::BoxedAttemptStore;
pub use identity::{AircraftIdentity, Bond, RemoteIdentity};
pub use keys::LinkId;
pub use limits::{AttemptStore, LimitsConfig, MemoryAttemptStore};
pub use messages::{Kind, RefusalReason};
pub use pake::KsfParams;

/// Timing and rate parameters of the handshakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeConfig {
    /// First retransmission interval of an `Init` or `Finish` (default 100 ms); doubles on
    /// each retransmission.
    pub retry_initial: Duration,
    /// Longest retransmission interval (default 1 s).
    pub retry_max: Duration,
    /// A handshake not finished after this long has failed (default 10 s).
    pub timeout: Duration,
    /// Initiations the aircraft runs expensive cryptography for, per second (default 20,
    /// bursts of as many).
    pub rate_per_second: u32,
    /// How long the aircraft holds an idle session for a resume (default 10 min).
    pub resume_lifetime: Duration,
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        HandshakeConfig {
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            rate_per_second: 20,
            resume_lifetime: Duration::from_secs(600),
        }
    }
}

/// Why a handshake message was refused or a handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The message is malformed.
    Malformed,
    /// The anti-DoS MAC is wrong (the sender does not know the link id).
    BadMac,
    /// A message that does not fit the current state (nothing pending, wrong index or kind).
    Unexpected,
    /// The message failed cryptographic verification (tampered, or not from the peer).
    AuthenticationFailed,
    /// A replayed initiation: its ephemeral key was seen recently, or its timestamp is not
    /// later than the newest the aircraft accepted for its bond.
    Replayed,
    /// This remote has no bond: it must pair first.
    NotBonded,
    /// No response within the handshake timeout.
    Timeout,
    /// The attempt counter could not be read or saved; no attempt runs without it.
    Store,
    /// An operation for the other role (e.g. `pair` on the aircraft).
    WrongRole,
}

impl From<DecodeError> for HandshakeError {
    fn from(_: DecodeError) -> Self {
        HandshakeError::Malformed
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeError::Malformed => "malformed handshake message",
            HandshakeError::BadMac => "handshake initiation with a wrong MAC",
            HandshakeError::Unexpected => "unexpected handshake message",
            HandshakeError::AuthenticationFailed => "handshake message failed verification",
            HandshakeError::Replayed => "replayed handshake initiation",
            HandshakeError::NotBonded => "not linked to an aircraft: pair first",
            HandshakeError::Timeout => "handshake timed out",
            HandshakeError::Store => "attempt counter unavailable",
            HandshakeError::WrongRole => "operation not available for this role",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HandshakeError {}

/// A completed handshake: what the session keys are made from.
pub(crate) struct Established {
    pub(crate) kind: Kind,
    pub(crate) handshake_secret: Secret,
    pub(crate) transcript_hash: [u8; 32],
    pub(crate) local_index: u32,
    pub(crate) peer_index: u32,
}

/// What a handshake state machine reports to the link.
pub(crate) enum HsEvent {
    Established(Established),
    /// The remote got the first authenticated frame of the new session.
    Confirmed,
    /// The remote never got it: the new keys are abandoned.
    Unconfirmed,
    PairingRejected {
        remaining_attempts: u32,
    },
    LockedOut {
        until: Timestamp,
    },
    Refused {
        reason: RefusalReason,
        remaining_attempts: u32,
        retry_at: Timestamp,
    },
    /// A pairing made a bond (the identity now holds it).
    Bonded,
    /// The aircraft identity changed (a bond's newest timestamp): persist it.
    IdentityChanged,
    /// A pairing's key stretching waits for the caller to run it.
    KeyStretchReady,
    Failed(HandshakeError),
}
