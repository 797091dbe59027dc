//! The one error type of the crate, with categories.

use crate::handshake::HandshakeError;
use crate::session::replay::ReplayError;
use crate::wire::{Channel, DecodeError};
use core::fmt;

/// Everything that can go wrong, by category (see [`Error::kind`]).
///
/// Errors from [`crate::Link::handle_datagram`] describe a datagram that was dropped; the link
/// itself is unaffected and carries on. Each is also counted in [`crate::Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The datagram is not a well-formed frame.
    Malformed(DecodeError),
    /// The frame is addressed to another session index.
    UnknownReceiver,
    /// The frame's tag did not verify. Deliberately without detail.
    DecryptFailed,
    /// The frame's counter was already accepted, or is older than the replay window.
    Replayed(ReplayError),
    /// The frame belongs to a key that has expired (past its grace period or hard limit).
    KeyExpired,
    /// A frame type that is not valid in the link's current state.
    UnexpectedFrame,
    /// The authenticated peer sent a body that breaks the format (its counter stays
    /// consumed: the frame did come from the peer).
    Violation(DecodeError),
    /// The peer sent a frame on a channel it may not send on.
    WrongDirection(Channel),
    /// The link is closed.
    Closed,
    /// The storage channel is locked: prove the code with `unlock_storage` first.
    StorageLocked,
    /// A handshake message was refused, or a handshake operation is not possible.
    Handshake(HandshakeError),
}

/// The broad category of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad bytes from the network.
    Malformed,
    /// Failed authentication (forged, corrupted, or for an unknown or expired key).
    Authentication,
    /// A replayed or too old frame.
    Replay,
    /// The peer broke the protocol with an authenticated frame.
    Protocol,
    /// The caller used the API wrongly.
    Misuse,
    /// A fault of this end, not of the datagram (the attempt store failed).
    Local,
    /// The link is closed or exhausted.
    State,
}

impl Error {
    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Malformed(_) => ErrorKind::Malformed,
            Error::UnknownReceiver | Error::DecryptFailed | Error::KeyExpired => {
                ErrorKind::Authentication
            }
            Error::Replayed(_) => ErrorKind::Replay,
            Error::UnexpectedFrame | Error::WrongDirection(_) | Error::Violation(_) => {
                ErrorKind::Protocol
            }
            Error::Closed | Error::StorageLocked => ErrorKind::State,
            Error::Handshake(HandshakeError::Store) => ErrorKind::Local,
            Error::Handshake(HandshakeError::Malformed) => ErrorKind::Malformed,
            Error::Handshake(HandshakeError::WrongRole | HandshakeError::NotBonded) => {
                ErrorKind::Misuse
            }
            Error::Handshake(_) => ErrorKind::Authentication,
        }
    }
}

impl Error {
    /// A malformed body inside an authenticated frame: the peer broke the protocol.
    pub(crate) fn violation(e: DecodeError) -> Self {
        Error::Violation(e)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Malformed(e)
    }
}

impl From<ReplayError> for Error {
    fn from(e: ReplayError) -> Self {
        Error::Replayed(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(e) => write!(f, "malformed frame: {e}"),
            Error::UnknownReceiver => f.write_str("frame for an unknown session index"),
            Error::DecryptFailed => f.write_str("frame failed authentication"),
            Error::Replayed(ReplayError::Duplicate) => f.write_str("replayed frame"),
            Error::Replayed(ReplayError::TooOld) => {
                f.write_str("frame older than the replay window")
            }
            Error::KeyExpired => f.write_str("frame for an expired key"),
            Error::UnexpectedFrame => f.write_str("frame not valid in this state"),
            Error::WrongDirection(c) => write!(f, "peer may not send on channel {}", c.name()),
            Error::Violation(e) => write!(f, "authenticated frame breaks the protocol: {e}"),
            Error::Closed => f.write_str("link closed"),
            Error::Handshake(e) => write!(f, "handshake: {e}"),
            Error::StorageLocked => f.write_str("storage locked: unlock it with the code first"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Why [`crate::Link::send`] refused a message. Nothing was queued; nothing is counted as a
/// dropped datagram (no datagram is involved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The link is closed (or closing).
    Closed,
    /// This side may not send on this channel (e.g. the aircraft on `Control`).
    NotAllowed(Channel),
    /// The storage channel is locked: prove the code with `unlock_storage` first.
    StorageLocked,
    /// The message is empty or larger than the channel allows.
    MessageSize {
        /// The size given.
        len: usize,
        /// The channel's maximum.
        max: usize,
    },
    /// The channel's send queue is full; try again after `poll_transmit`.
    QueueFull(Channel),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("link closed"),
            SendError::NotAllowed(c) => {
                write!(f, "this side may not send on channel {}", c.name())
            }
            SendError::StorageLocked => {
                f.write_str("storage locked: unlock it with the code first")
            }
            SendError::MessageSize { len, max } => {
                write!(f, "message of {len} bytes (allowed 1 to {max})")
            }
            SendError::QueueFull(c) => write!(f, "send queue of channel {} is full", c.name()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SendError {}
