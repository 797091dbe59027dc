//! Counters of everything the link did and every reason it dropped something.

use crate::error::Error;
use crate::session::replay::ReplayError;
use crate::wire::Channel;

/// Per-channel traffic counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelStats {
    /// Messages the application handed to `send`.
    pub messages_sent: u64,
    /// Messages delivered to the application by this side.
    pub messages_delivered: u64,
    /// Payload bytes delivered to the application by this side.
    pub bytes_delivered: u64,
    /// Data frames sent (fragments and retransmissions included).
    pub frames_sent: u64,
    /// Data frames received and authenticated.
    pub frames_received: u64,
    /// Plaintext bytes of those frames, each one's fragment or segment header included: what
    /// arrived, whole messages or not (a video frame missing a fragment counts here and not
    /// in `bytes_delivered`, and so does a frame still arriving).
    pub bytes_received: u64,
    /// Messages known lost on receive (incomplete video, superseded control).
    pub messages_lost: u64,
}

/// What the link has done, and why it dropped what it dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Datagrams produced by `poll_transmit`.
    pub datagrams_sent: u64,
    /// Bytes produced by `poll_transmit`.
    pub bytes_sent: u64,
    /// Datagrams handed to `handle_datagram`.
    pub datagrams_received: u64,
    /// Bytes handed to `handle_datagram`.
    pub bytes_received: u64,
    /// Datagrams dropped as malformed.
    pub dropped_malformed: u64,
    /// Datagrams dropped for a session index that is not ours.
    pub dropped_unknown_receiver: u64,
    /// Datagrams dropped because the tag did not verify.
    pub dropped_auth: u64,
    /// Datagrams dropped as duplicates of an accepted counter.
    pub dropped_duplicate: u64,
    /// Datagrams dropped as older than the replay window.
    pub dropped_too_old: u64,
    /// Datagrams dropped for an expired key.
    pub dropped_key_expired: u64,
    /// Authenticated frames dropped as not valid (wrong direction, bad body, wrong state).
    pub dropped_protocol: u64,
    /// Control messages dropped on receive because a newer one had already been delivered.
    pub dropped_stale_control: u64,
    /// Video fragments dropped because their message was already finished or given up.
    pub dropped_stale_video: u64,
    /// Reliable segments received again (already delivered or buffered).
    pub storage_duplicates: u64,
    /// Reliable segments retransmitted.
    pub storage_retransmits: u64,
    /// Repair frames sent: parity over the storage segments in flight at the end of a
    /// transfer on a lossy path, in time the radio would otherwise have been idle (not
    /// counted as retransmissions).
    pub storage_repairs_sent: u64,
    /// Storage segments rebuilt from repair frames.
    pub storage_repaired: u64,
    /// Acks sent.
    pub acks_sent: u64,
    /// Keepalives sent.
    pub keepalives_sent: u64,
    /// Handshakes completed (sessions established).
    pub handshakes_completed: u64,
    /// Handshake datagrams dropped (malformed, bad MAC, failed verification, unexpected).
    pub dropped_handshake: u64,
    /// Storage frames refused because the storage channel was locked.
    pub dropped_storage_locked: u64,
    /// Feedback frames sent (PROTOCOL.md 34).
    pub feedback_sent: u64,
    /// Padding frames sent to probe the path while video alone left it idle, or as an idle
    /// aircraft's Startup train (PROTOCOL.md 34.3, 34.5).
    pub padding_sent: u64,
    /// Video messages delivered only thanks to forward error correction (some data
    /// fragments were recovered from parity fragments).
    pub video_recovered: u64,
    /// Video data fragments recovered from parity fragments.
    pub video_fragments_recovered: u64,
    /// Video parity fragments sent.
    pub video_parity_sent: u64,
    /// Bytes of parity those fragments carried (their shards, headers not counted): the
    /// share of the video budget forward error correction took.
    pub video_parity_bytes: u64,
    /// Video fragments refused as inconsistent with their message, over the configured
    /// limits, or malformed (they are also counted in `dropped_protocol`); a parity
    /// fragment among them never alters a message.
    pub dropped_bad_video: u64,
    /// Video messages dropped before sending: they would have waited too long.
    pub video_dropped_at_sender: u64,
    /// Datagrams that arrived after the link closed for good.
    pub dropped_closed: u64,
    /// Times the peer's address moved (an authenticated, newest frame from a new source).
    pub peer_address_changes: u64,
    /// Frames that could not be sealed (a local fault; nothing was sent, no counter spent).
    pub seal_failures: u64,
    /// Storage unlock attempts that failed (wrong code), on the aircraft.
    pub unlock_failures: u64,
    /// Send-key rotations.
    pub rekeys_sent: u64,
    /// Receive-key rotations.
    pub rekeys_received: u64,
    /// Messages not delivered because the application did not poll events fast enough.
    pub events_overflowed: u64,
    /// Calls to `poll_transmit` with a buffer smaller than the MTU.
    pub transmit_buffer_too_small: u64,
    /// Per-channel counters, indexed by `Channel as usize` (0 is the internal session
    /// channel).
    pub channels: [ChannelStats; 5],
}

impl Stats {
    /// The counters of one channel.
    pub fn channel(&self, channel: Channel) -> &ChannelStats {
        &self.channels[channel as usize]
    }

    pub(crate) fn channel_mut(&mut self, channel: Channel) -> &mut ChannelStats {
        &mut self.channels[channel as usize]
    }

    /// All datagrams dropped on receive, for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_malformed
            + self.dropped_unknown_receiver
            + self.dropped_auth
            + self.dropped_duplicate
            + self.dropped_too_old
            + self.dropped_key_expired
            + self.dropped_protocol
            + self.dropped_handshake
            + self.dropped_storage_locked
            + self.dropped_closed
    }

    /// Count a dropped datagram under its reason.
    pub(crate) fn count_drop(&mut self, error: &Error) {
        let counter = match error {
            Error::Malformed(_) => &mut self.dropped_malformed,
            Error::UnknownReceiver => &mut self.dropped_unknown_receiver,
            Error::DecryptFailed => &mut self.dropped_auth,
            Error::Replayed(ReplayError::Duplicate) => &mut self.dropped_duplicate,
            Error::Replayed(ReplayError::TooOld) => &mut self.dropped_too_old,
            Error::KeyExpired => &mut self.dropped_key_expired,
            Error::Handshake(_) => &mut self.dropped_handshake,
            Error::StorageLocked => &mut self.dropped_storage_locked,
            Error::Closed => &mut self.dropped_closed,
            Error::UnexpectedFrame | Error::WrongDirection(_) | Error::Violation(_) => {
                &mut self.dropped_protocol
            }
        };
        *counter += 1;
    }
}
