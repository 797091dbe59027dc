//! The logical channels and their delivery semantics.
//!
//! | channel     | direction          | semantics                                              |
//! |-------------|--------------------|--------------------------------------------------------|
//! | `Control`   | remote -> aircraft | one frame per message; latest wins: a queued message   |
//! |             |                    | not yet sent is replaced, and the receiver drops any   |
//! |             |                    | message older than one it already delivered; sent      |
//! |             |                    | before all other data (only a close goes first)        |
//! | `Telemetry` | aircraft -> remote | one frame per message, unreliable, delivered in the    |
//! |             |                    | order frames arrive                                    |
//! | `Video`     | aircraft -> remote | fragmented to the MTU, with Reed-Solomon parity        |
//! |             |                    | fragments after the data ([`fec`]); reassembled with   |
//! |             |                    | bounded memory and a timeout; a message is delivered   |
//! |             |                    | once any `count` of its fragments arrived; one that    |
//! |             |                    | cannot be completed is reported lost, never delivered  |
//! | `Storage`   | both               | reliable: segmented, retransmitted until acknowledged, |
//! |             |                    | delivered in order exactly once                        |
//!
//! Send priority, highest first: close, control, acks, storage retransmissions, telemetry,
//! new storage segments, video, keepalive.

pub mod fec;
pub(crate) mod reliable;
pub(crate) mod video;

pub use crate::wire::Channel;

/// Which end of the link this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The drone.
    Aircraft,
    /// The pilot's remote controller.
    Remote,
}

impl Role {
    /// The other end.
    pub fn peer(self) -> Role {
        match self {
            Role::Aircraft => Role::Remote,
            Role::Remote => Role::Aircraft,
        }
    }

    /// May this side send on `channel`?
    pub fn may_send(self, channel: Channel) -> bool {
        match channel {
            Channel::Control => self == Role::Remote,
            Channel::Telemetry | Channel::Video => self == Role::Aircraft,
            Channel::Storage | Channel::Session => true,
        }
    }
}
