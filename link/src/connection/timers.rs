//! The connection's timers, named in one table: `poll_timeout` is the earliest of them and
//! `handle_timeout` runs each that is due.

/// One deadline of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Nothing sent for `keepalive_interval`: send a keepalive.
    Keepalive,
    /// Nothing authenticated received for `link_loss_timeout`.
    LinkLoss,
    /// A storage segment's retransmission timer (RTO or RACK).
    StorageRetransmit,
    /// A session-channel message's retransmission timer.
    SessionRetransmit,
    /// The send key is `rekey_after_time` old: start a key update.
    Rekey,
    /// The send key is `reject_after_time` old: the peer refuses it, the session ends.
    KeyReject,
    /// The oldest incomplete video message times out.
    Reassembly,
    /// A storage unlock got no answer within the handshake timeout.
    Unlock,
    /// Receipts have waited long enough: send feedback.
    Feedback,
    /// A reliable channel's ack has waited long enough for a second segment.
    Ack,
    /// The pacer lets the next video or storage frame go.
    Pacing,
}

impl Timer {
    /// Every timer, in the order `handle_timeout` runs them.
    pub(crate) const ALL: [Timer; 11] = [
        Timer::KeyReject,
        Timer::Rekey,
        Timer::LinkLoss,
        Timer::Reassembly,
        Timer::Unlock,
        Timer::SessionRetransmit,
        Timer::StorageRetransmit,
        Timer::Feedback,
        Timer::Ack,
        Timer::Pacing,
        Timer::Keepalive,
    ];
}
