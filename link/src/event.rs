//! What the link tells the application: [`Event`], owning its data.

use alloc::vec::Vec;
use core::ops::Deref;

use crate::channel::Channel;
use crate::crypto::Secret;
use crate::handshake::{HandshakeError, Kind, RefusalReason};
use crate::time::Timestamp;

/// Why a link was closed or a session ended. Carried in the close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// The application closed the link normally.
    pub const NORMAL: CloseCode = CloseCode(0);
    /// The send counter is exhausted; a new session is needed. Never sent (no counter is
    /// left to send it with), only reported locally in [`Event::SessionEnded`].
    pub const COUNTER_EXHAUSTED: CloseCode = CloseCode(1);
    /// The aircraft's security code was changed: every bond is revoked.
    pub const CODE_CHANGED: CloseCode = CloseCode(2);
    /// The send key reached its hard limit before a key update completed. Never sent, only
    /// reported locally in [`Event::SessionEnded`]; a remote reconnects.
    pub const KEY_EXPIRED: CloseCode = CloseCode(3);
}

/// Which half of the session a key rotation happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyDirection {
    /// The key this side sends with.
    Send,
    /// The key this side receives with.
    Receive,
}

/// A delivered message: owns its bytes (a buffer from the link's pool).
///
/// Dereferences to the message's bytes. Hand it back with [`crate::Link::recycle`] to keep
/// the data path free of allocations; dropping it is fine too.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    buf: Vec<u8>,
    /// The message is `buf[start..]` (a whole-frame message is delivered in the decrypted
    /// frame itself, behind its header).
    start: usize,
}

impl Message {
    pub(crate) fn new(buf: Vec<u8>, start: usize) -> Self {
        Message { buf, start }
    }

    /// The buffer and the offset of the message in it (for recycling).
    pub(crate) fn into_parts(self) -> (Vec<u8>, usize) {
        (self.buf, self.start)
    }

    /// The message as a vector of its own (copies only when it sits behind a header).
    pub fn into_vec(self) -> Vec<u8> {
        let mut buf = self.buf;
        if self.start > 0 {
            buf.drain(..self.start);
        }
        buf
    }
}

impl Deref for Message {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

impl AsRef<[u8]> for Message {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl core::fmt::Debug for Message {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Message({} bytes)", self.len())
    }
}

impl PartialEq<[u8]> for Message {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialEq<&[u8]> for Message {
    fn eq(&self, other: &&[u8]) -> bool {
        **self == **other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Message {
    fn eq(&self, other: &[u8; N]) -> bool {
        **self == other[..]
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Message {
    fn eq(&self, other: &&[u8; N]) -> bool {
        **self == other[..]
    }
}

/// Something the application should know about. Returned by [`crate::Link::poll_event`];
/// owns everything it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message arrived.
    Message {
        /// The channel it arrived on.
        channel: Channel,
        /// The message.
        data: Message,
    },
    /// A video message arrived incomplete and was given up: it will never be delivered.
    VideoLost {
        /// Its message id.
        message_id: u32,
    },
    /// A traffic secret this end sends under, reported only with
    /// [`Config::log_traffic_secrets`](crate::Config::log_traffic_secrets): one at each new
    /// session and one at each key update (the key log of PROTOCOL.md 30.2). Frames to
    /// `receiver_index` under key `generation` open with
    /// [`session::open_logged`](crate::session::open_logged) and this secret.
    TrafficSecret {
        /// The receiver index of the frames this secret protects (the peer's index).
        receiver_index: u32,
        /// The key generation (0 for the session's first key; its parity is the frames'
        /// key-phase bit).
        generation: u64,
        /// The traffic secret.
        secret: Secret,
    },
    /// A key rotated.
    Rekeyed {
        /// Which direction's key.
        direction: KeyDirection,
        /// How many rotations that direction has had.
        generation: u64,
    },
    /// A handshake completed: the session is up (on the remote: confirmed by the aircraft).
    Connected {
        /// Which handshake.
        kind: Kind,
    },
    /// A remote was linked to this aircraft, or this remote to an aircraft: persist the
    /// identity (`aircraft_identity()` / `remote_identity()`) now.
    Bonded,
    /// Aircraft: its identity changed otherwise (a bonded remote's newest handshake
    /// timestamp, PROTOCOL.md 20.1): persist `aircraft_identity()` now. Until it is
    /// persisted, a restart forgets the newest timestamp, and the `Init` that carried it could
    /// be replayed once (it cannot complete a session).
    IdentityChanged,
    /// A pairing attempt with the code failed. On the aircraft: no valid `Finish` came.
    /// On the remote: the code was wrong, **or someone interfered** (a forged `Response`
    /// cannot be told from the aircraft's with another code); reported when the attempt
    /// times out, or once it has evaluated three `Response`s (PROTOCOL.md 19).
    PairingRejected {
        /// Attempts left before the aircraft locks out (on the remote: as the first failed
        /// `Response` claimed it, which is not authenticated).
        remaining_attempts: u32,
    },
    /// The aircraft refuses attempts at the code until `until`.
    LockedOut {
        /// When the lockout ends (in the aircraft's clock on the aircraft; in this end's
        /// clock, from the advertised delay, on the remote).
        until: Timestamp,
    },
    /// The aircraft refused a handshake (advisory: refusals are not authenticated).
    HandshakeRefused {
        /// Why.
        reason: RefusalReason,
        /// Attempts at the code left before lockout.
        remaining_attempts: u32,
        /// When another attempt will be accepted.
        retry_at: Timestamp,
    },
    /// A handshake (or storage unlock) this end started has failed.
    HandshakeFailed {
        /// Why.
        error: HandshakeError,
    },
    /// Remote, after [`crate::Link::set_defer_key_stretching`]: a pairing or a storage
    /// unlock waits for its key stretching. Take it with [`crate::Link::poll_key_stretch`], run it off the
    /// event loop, and give the result to [`crate::Link::handle_key_stretched`].
    KeyStretchReady,
    /// The code was proven inside this session: the storage channel is open.
    StorageUnlocked,
    /// A storage unlock failed (wrong code).
    StorageUnlockRejected {
        /// Attempts left before the aircraft locks out.
        remaining_attempts: u32,
    },
    /// A channel whose `send` was refused with [`crate::SendError::QueueFull`] has room
    /// again: send more. Reported once per refusal, so an application that sends until the
    /// queue is full and then waits for this event never polls and never drops data.
    Writable {
        /// The channel.
        channel: Channel,
    },
    /// The video rate the radio carries now (the sender's path estimate less a margin for
    /// the link's other traffic): set the encoder's bitrate to it. Reported on the end that
    /// sends video as its session starts (from the rate the pacer starts at), then when it
    /// changes by a tenth, or by a fiftieth half a second after the last report.
    VideoBudget {
        /// Bits per second of video.
        bits_per_second: u64,
    },
    /// A queued video message was dropped before any of it was sent: it would have waited
    /// longer than `video_max_queue_delay` (the encoder outran the radio).
    VideoDropped {
        /// Its message id.
        message_id: u32,
    },
    /// Nothing authenticated arrived for `link_loss_timeout`.
    LinkLost,
    /// An authenticated frame arrived after [`Event::LinkLost`].
    LinkRestored,
    /// The session's keys are worn out ([`CloseCode::COUNTER_EXHAUSTED`] or
    /// [`CloseCode::KEY_EXPIRED`]): they are forgotten, and the link is not closed. A remote
    /// starts a new session (by itself with `reconnect_on_loss`).
    SessionEnded {
        /// Why.
        code: CloseCode,
    },
    /// The link closed for good; nothing more will be sent, accepted or delivered.
    Closed {
        /// Why.
        code: CloseCode,
        /// True if the peer closed it.
        by_peer: bool,
    },
}
