//! [`Connection`]: one session's carrying side — keys, replay window, channels, send
//! scheduler, timers and the peer's address.
//!
//! The peer address moves only when a frame authenticates under the current session and is
//! the newest the connection has seen (so a delayed copy of an old frame cannot pull the
//! peer back), or when a handshake completes (the caller installs the new session with the
//! source of the completing datagram). Handshake datagrams never reach it.
//!
//! What frame goes next and when (send priority, pacing, probes, padding): `send.rs`.

mod key_update;
mod path;
mod send;
mod timers;
mod unlock;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_chacha::ChaCha20Rng;

use self::key_update::KeyUpdate;
pub use self::path::PathEstimate;
use self::path::{Elicits, PathModel, Receipts};
pub(crate) use self::timers::Timer;
use self::unlock::{Outcome, Unlock};
use crate::channel::fec;
use crate::channel::reliable::{ReliableReceiver, ReliableSender, SegmentOutcome};
use crate::channel::video::{Reassembled, Reassembler, VideoSender};
use crate::channel::{Channel, Role};
use crate::config::Config;
use crate::crypto::{traffic_secrets, AeadProvider, Secret};
use crate::endpoint::Endpoint;
use crate::error::{Error, SendError};
use crate::event::{CloseCode, Event, KeyDirection, Message};
use crate::handshake::stretch::{KeyStretch, KeyStretched};
use crate::handshake::{Kind, RefusalReason};
use crate::pool::BufPool;
use crate::session::{RecvKeys, SealError, SendKeys};
use crate::stats::Stats;
use crate::time::{earliest, Timestamp};
use crate::wire::body::{
    AckBody, CloseBody, FeedbackBody, FragmentHeader, RepairHeader, SegmentHeader, KEEPALIVE_PROBE,
};
use crate::wire::session::SessionMessage;
use crate::wire::{DecodeError, FrameType, Header, HEADER_LEN, TAG_LEN};

/// Session messages (key updates, unlocks) are rare and each waits on the other end: acked
/// at once.
const SESSION_ACK_EVERY: u32 = 1;
/// Bulk storage data is acked every second segment, as QUIC and TCP do: half the acks.
const STORAGE_ACK_EVERY: u32 = 2;

/// How often the video rate is measured against its budget.
const VIDEO_RATE_INTERVAL: core::time::Duration = core::time::Duration::from_millis(200);

/// A video budget is reported again at once when it moved by more than a tenth; when it
/// moved by more than a fiftieth, once the last report is this old. An encoder kept a few
/// percent under the radio for seconds wastes those percent of it (the estimate moves by
/// a few percent as it finds the radio's rate again after a slowdown); one told of every
/// wobble of the estimate would change its bitrate with every feedback frame.
const VIDEO_BUDGET_REFRESH: core::time::Duration = core::time::Duration::from_millis(500);

/// Is `budget` worth telling the application, `last` having been told `since_reported`
/// ago (see [`VIDEO_BUDGET_REFRESH`])?
fn video_budget_worth_reporting(
    last: Option<u64>,
    budget: u64,
    since_reported: core::time::Duration,
) -> bool {
    let Some(last) = last else {
        return true;
    };
    let moved = budget.abs_diff(last);
    moved.saturating_mul(10) > last
        || (since_reported >= VIDEO_BUDGET_REFRESH && moved.saturating_mul(50) > last)
}

/// How soon a frame of `frame_type` on `channel` makes the receiver's feedback due
/// (PROTOCOL.md 34.1). Never for a `Feedback` (feedback on feedback would never end), nor
/// an `Ack`: like QUIC's ACK-only packets, an ack tells the sender of a transfer nothing it
/// needs feedback on, and feedback on every few acks took about 1 % of a narrow downlink
/// from the transfer itself. Relaxed for control and telemetry, prompt for the rest.
fn elicits(frame_type: FrameType, channel: Option<Channel>) -> Elicits {
    match (frame_type, channel) {
        (FrameType::Feedback | FrameType::Ack, _) => Elicits::Nothing,
        (FrameType::Data, Some(Channel::Control | Channel::Telemetry)) => Elicits::Relaxed,
        _ => Elicits::Prompt,
    }
}

/// Where complete storage messages go: counted, and queued for the application.
fn storage_sink<'a>(
    events: &'a mut VecDeque<Event>,
    stats: &'a mut Stats,
) -> impl FnMut(Vec<u8>) + 'a {
    |message| {
        let s = stats.channel_mut(Channel::Storage);
        s.messages_delivered += 1;
        s.bytes_delivered += message.len() as u64;
        events.push_back(Event::Message {
            channel: Channel::Storage,
            data: Message::new(message, 0),
        });
    }
}

/// The share of the bottleneck the video budget offers the encoder, in percent.
const VIDEO_SHARE_PERCENT: u64 = 90;

/// Both halves of the session keys.
pub(crate) struct Keys<P: AeadProvider> {
    pub(crate) send: SendKeys<P>,
    pub(crate) recv: RecvKeys<P>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Carrying (or waiting for its first session).
    Open,
    /// `copies` close frames are due; then the link is `Closed` (`for_good`) or only the
    /// session ends (a code change on the aircraft: the endpoint takes new pairings).
    Closing {
        code: CloseCode,
        for_good: bool,
        copies: u8,
    },
    /// Final: nothing is sent, accepted or delivered any more.
    Closed,
}

/// Close frames sent in a row: the close is neither acknowledged nor retransmitted, and a
/// peer that misses it waits out its link-loss timeout. Three copies are all lost once in
/// 8000 closes on a radio losing 5 % at random; the peer drops the copies after the first
/// (its link is closed).
const CLOSE_COPIES: u8 = 3;

/// What [`Connection::poll_transmit`] wrote.
pub(crate) struct Sealed {
    pub(crate) len: usize,
    pub(crate) destination: SocketAddr,
    pub(crate) frame_type: FrameType,
    pub(crate) channel: Option<Channel>,
}

/// One session's carrying side. Persists across sessions of the same link: a resume
/// continues its channels, a new session starts them afresh.
pub(crate) struct Connection<P: AeadProvider> {
    role: Role,
    config: Config,
    state: State,
    local_index: u32,
    peer_index: u32,
    /// Where frames go; moves only on authenticated frames or completed handshakes.
    peer: Option<SocketAddr>,
    /// Send an authenticated frame to the peer soon (a session confirmation).
    reconfirm: bool,
    keys: Option<Keys<P>>,
    /// False while a remote's new session waits for the aircraft's first frame.
    confirmed: bool,
    /// The kind of the handshake that made the current session.
    kind: Option<Kind>,
    /// Hash of the handshake transcript of the current session (binds unlocks to it).
    session_transcript: [u8; 32],
    session_out: ReliableSender,
    session_in: ReliableReceiver,
    key_update: KeyUpdate,
    unlock: Unlock,
    /// Has the code been proven inside this session, opening the storage channel?
    storage_unlocked: bool,
    /// Remote: leave an unlock's key stretching to the caller ([`KeyStretch`]).
    defer_key_stretching: bool,
    /// Randomness for key-update ephemerals and unlocks.
    rng: ChaCha20Rng,
    pool: BufPool,
    control_out: Option<Vec<u8>>,
    telemetry_out: VecDeque<Vec<u8>>,
    video_out: VideoSender,
    storage_out: ReliableSender,
    storage_in: ReliableReceiver,
    reassembler: Reassembler,
    /// Counter of the newest control frame delivered (latest wins).
    newest_control: Option<u64>,
    events: VecDeque<Event>,
    /// The sender's model of the radio, and the pacer.
    path: PathModel,
    /// What arrived of the peer's frames, for feedback.
    receipts: Receipts,
    /// The video budget last reported to the application, bits per second.
    video_budget: Option<u64>,
    /// When `video_budget` was last reported.
    video_budget_at: Timestamp,
    /// Video was sent within the last second before this.
    video_active_until: Timestamp,
    /// When the last new storage segment was sent (or the session began).
    storage_sent_at: Timestamp,
    /// Video bytes sent since `video_measured_at`, and the rate they made over the last
    /// interval (bits per second): how much of its budget the encoder uses.
    video_bytes_measured: u64,
    video_measured_at: Timestamp,
    video_rate_bps: u64,
    /// Channels whose `send` was refused as full: [`Event::Writable`] is owed when they
    /// have room again (indexed by `Channel as usize`).
    blocked: [bool; 5],
    /// Frame being decrypted; its capacity is kept between datagrams.
    scratch: Vec<u8>,
    last_sent: Timestamp,
    /// When a frame that asks for prompt feedback was last sent: the probe counts from
    /// it, since nothing else brings an answer soon.
    last_eliciting_sent: Timestamp,
    /// Probes sent since the last feedback frame (34.6).
    probes_unanswered: u32,
    /// Probes still to go at once, in the burst of the current probe time.
    probe_burst_left: u32,
    /// The latest `now` a frame was asked for: a timer is never due before it.
    last_polled: Timestamp,
    last_received: Timestamp,
    link_lost: bool,
    stats: Stats,
}

impl<P: AeadProvider> Connection<P> {
    /// A connection with no session yet.
    pub(crate) fn new(role: Role, config: Config, rng: ChaCha20Rng, now: Timestamp) -> Self {
        Connection {
            role,
            state: State::Open,
            local_index: 0,
            peer_index: 0,
            peer: None,
            reconfirm: false,
            keys: None,
            confirmed: false,
            kind: None,
            session_transcript: [0; 32],
            session_out: ReliableSender::new(&config),
            session_in: ReliableReceiver::new(&config, SESSION_ACK_EVERY),
            key_update: KeyUpdate::Idle,
            unlock: Unlock::Idle,
            storage_unlocked: false,
            defer_key_stretching: false,
            rng,
            pool: BufPool::default(),
            control_out: None,
            telemetry_out: VecDeque::new(),
            video_out: VideoSender::default(),
            storage_out: ReliableSender::new(&config),
            storage_in: ReliableReceiver::new(&config, STORAGE_ACK_EVERY).with_repair(),
            reassembler: Reassembler::new(
                config.video_reassembly_slots,
                config.max_video_message,
                config.max_video_parity,
                config.video_reassembly_timeout,
            ),
            newest_control: None,
            events: VecDeque::new(),
            path: PathModel::new(now),
            receipts: Receipts::default(),
            video_budget: None,
            video_budget_at: now,
            video_active_until: now,
            storage_sent_at: now,
            video_bytes_measured: 0,
            video_measured_at: now,
            video_rate_bps: 0,
            blocked: [false; 5],
            // Grows to the largest datagram on first use, then keeps its capacity: an idle
            // link (a fleet holds a thousand) does not hold 16 KiB for nothing.
            scratch: Vec::new(),
            last_sent: now,
            last_eliciting_sent: now,
            probes_unanswered: 0,
            probe_burst_left: 0,
            last_polled: now,
            last_received: now,
            link_lost: false,
            stats: Stats::default(),
            config,
        }
    }

    /// Start a session with `peer`: derive and install its keys.
    ///
    /// A resume continues the channels (and the code proven in the session it continues);
    /// any other kind starts them afresh. `confirmed`: application data may flow at once (a
    /// remote waits for the aircraft's first authenticated frame).
    #[allow(clippy::too_many_arguments)] // each is a distinct input of the session
    pub(crate) fn install(
        &mut self,
        kind: Option<Kind>,
        handshake_secret: &Secret,
        transcript_hash: &[u8; 32],
        local_index: u32,
        peer_index: u32,
        peer: SocketAddr,
        confirmed: bool,
        now: Timestamp,
    ) {
        let resumed = kind == Some(Kind::Resume);
        if self.kind.is_some() && !resumed {
            self.reset_channels();
        }
        let secrets = traffic_secrets(handshake_secret, transcript_hash);
        let (send, recv) = match self.role {
            Role::Aircraft => (secrets.aircraft_to_remote, secrets.remote_to_aircraft),
            Role::Remote => (secrets.remote_to_aircraft, secrets.aircraft_to_remote),
        };
        self.keys = Some(Keys {
            send: SendKeys::new(send, now),
            recv: RecvKeys::new(recv, now, &self.config),
        });
        self.local_index = local_index;
        self.peer_index = peer_index;
        self.peer = Some(peer);
        self.confirmed = confirmed;
        self.kind = kind;
        self.last_received = now;
        self.link_lost = false;
        self.session_transcript = *transcript_hash;
        // Packet counters restart with new keys, and latest-wins compares counters.
        self.newest_control = None;
        self.session_out = ReliableSender::new(&self.config);
        self.session_in = ReliableReceiver::new(&self.config, SESSION_ACK_EVERY);
        self.key_update = KeyUpdate::Idle;
        self.unlock = Unlock::Idle;
        // Counters start again with the new keys; the path is the same radio.
        self.path.restart_counters();
        self.receipts = Receipts::default();
        if !resumed {
            self.storage_unlocked = false;
        }
        self.log_send_secret();
        // The encoder's first frame (a key frame, the largest) is sized for the rate the
        // path starts at, not for the camera's: sent at the camera's it would hold the
        // frames after it back for many times its own period.
        self.update_video_budget(now);
    }

    /// The key log (`Config::log_traffic_secrets`): report the secret this end now sends
    /// under.
    fn log_send_secret(&mut self) {
        if !self.config.log_traffic_secrets {
            return;
        }
        if let Some(keys) = &self.keys {
            let event = Event::TrafficSecret {
                receiver_index: self.peer_index,
                generation: keys.send.generation(),
                secret: keys.send.secret().clone(),
            };
            self.push_event(event);
        }
    }

    /// Open the storage channel without a proof of the code (a link made from a secret:
    /// the caller vouches for it).
    pub(crate) fn unlock_without_code(&mut self) {
        self.storage_unlocked = true;
    }

    fn reset_channels(&mut self) {
        let config = &self.config;
        self.control_out = None;
        self.telemetry_out.clear();
        self.video_out = VideoSender::default();
        self.storage_out = ReliableSender::new(config);
        self.storage_in = ReliableReceiver::new(config, STORAGE_ACK_EVERY).with_repair();
        self.reassembler = Reassembler::new(
            config.video_reassembly_slots,
            config.max_video_message,
            config.max_video_parity,
            config.video_reassembly_timeout,
        );
        self.newest_control = None;
    }

    /// The remote's session was confirmed by the aircraft: data may flow.
    pub(crate) fn confirm(&mut self) {
        self.confirmed = true;
    }

    /// The remote's new session was never confirmed: its keys are abandoned.
    pub(crate) fn abandon_keys(&mut self) {
        self.keys = None;
    }

    /// Send an authenticated frame to the peer soon, so a remote that missed the session's
    /// confirmation learns it is up. It goes to the peer whoever asked: a replayed `Finish`
    /// from elsewhere gets nothing encrypted.
    pub(crate) fn reconfirm(&mut self) {
        if self.keys.is_some() {
            self.reconfirm = true;
        }
    }

    pub(crate) fn push_event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Take a delivered message's buffer back into the pool.
    pub(crate) fn recycle(&mut self, message: Message) {
        self.pool.give(message.into_parts().0);
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    pub(crate) fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn local_index(&self) -> u32 {
        self.local_index
    }

    pub(crate) fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    pub(crate) fn session_kind(&self) -> Option<Kind> {
        self.kind
    }

    pub(crate) fn has_keys(&self) -> bool {
        self.keys.is_some()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True once a session is up and confirmed: application data flows.
    pub(crate) fn is_connected(&self) -> bool {
        self.keys.is_some() && self.confirmed && self.state != State::Closed
    }

    pub(crate) fn storage_unlocked(&self) -> bool {
        self.storage_unlocked
    }

    pub(crate) fn has_pending_send(&self) -> bool {
        self.control_out.is_some()
            || !self.telemetry_out.is_empty()
            || self.video_out.queued() > 0
            || self.storage_out.queued() > 0
            || self.storage_in.ack_pending()
            || self.session_out.queued() > 0
            || self.session_in.ack_pending()
            || matches!(self.state, State::Closing { .. })
    }

    pub(crate) fn storage_unacked(&self) -> usize {
        self.storage_out.queued() + self.storage_out.in_flight()
    }

    pub(crate) fn retransmit_due(&self, now: Timestamp) -> bool {
        self.storage_out.retransmit_due(now)
    }

    pub(crate) fn reassembly_bytes(&self) -> usize {
        self.reassembler.buffered_bytes()
            + self.storage_in.buffered_bytes()
            + self.session_in.buffered_bytes()
    }

    /// What the sender knows of the path.
    pub(crate) fn path_estimate(&self) -> PathEstimate {
        self.path.estimate()
    }

    /// Tell the application the video rate the radio carries, when it changed enough
    /// ([`VIDEO_BUDGET_REFRESH`]).
    /// Video gets the bottleneck less a margin for the link's own frames, telemetry and
    /// storage requests (it goes before storage in the send order, section 13); before the
    /// first rate sample, the rate the pacer starts at.
    fn update_video_budget(&mut self, now: Timestamp) {
        if !self.role.may_send(Channel::Video) {
            return;
        }
        let elapsed = now.saturating_since(self.video_measured_at);
        if elapsed >= VIDEO_RATE_INTERVAL {
            self.video_rate_bps = (self.video_bytes_measured * 8).saturating_mul(1_000_000)
                / elapsed.as_micros().max(1) as u64;
            self.video_bytes_measured = 0;
            self.video_measured_at = now;
        }
        let bottleneck = match self.path.estimate() {
            PathEstimate {
                bottleneck_bps: 0,
                pacing_bps,
                ..
            } => pacing_bps,
            estimate => estimate.bottleneck_bps,
        };
        // Parity fragments ride inside the budget: the encoder is offered the share left
        // after the parity its frames will get at the loss reported now, sized by the last
        // frame it produced (before any, a 30 frames/s one filling the budget).
        let gross = bottleneck / 100 * VIDEO_SHARE_PERCENT;
        let count = match self.video_out.last_count() {
            0 => FragmentHeader::count_for(
                usize::try_from(gross / 8 / 30).unwrap_or(usize::MAX).max(1),
                self.config.max_fragment_data(),
            )
            .unwrap_or(u16::MAX),
            count => count,
        };
        let (loss, burst) = self.video_loss();
        let share =
            self.config
                .video_fec
                .data_share(count, loss, burst, self.config.max_video_parity);
        let budget = (gross as f64 * share) as u64;
        let since_reported = now.saturating_since(self.video_budget_at);
        if video_budget_worth_reporting(self.video_budget, budget, since_reported) {
            self.video_budget = Some(budget);
            self.video_budget_at = now;
            self.push_event(Event::VideoBudget {
                bits_per_second: budget,
            });
        }
    }

    /// The loss (fraction, mean burst length) video parity is sized for: the path's, or
    /// [`fec::UNKNOWN_LOSS`] before any feedback measured it.
    fn video_loss(&self) -> (f64, f64) {
        if self.path.loss_known() {
            let path = self.path.estimate();
            (path.loss, path.loss_burst)
        } else {
            (fec::UNKNOWN_LOSS, 1.0)
        }
    }

    /// How many times less often acks and feedback go (`PathModel::return_scale`), on an
    /// end that sends little but them: where video or storage data is going, they are not
    /// what queues (and the aircraft's feedback to the remote's own thinning is what that
    /// thinning waits for).
    fn return_scale(&self, now: Timestamp) -> f64 {
        if self.returns_only(now) {
            self.path.return_scale()
        } else {
            1.0
        }
    }

    /// Does this end send no video or storage data now (so acks, feedback and the pilot's
    /// small messages are what it sends)?
    fn returns_only(&self, now: Timestamp) -> bool {
        now >= self.video_active_until
            && self.storage_out.queued() == 0
            && self.storage_out.in_flight() == 0
    }

    /// Messages waiting in `channel`'s send queue.
    fn queued(&self, channel: Channel) -> usize {
        match channel {
            Channel::Session => self.session_out.queued(),
            Channel::Control => usize::from(self.control_out.is_some()),
            Channel::Telemetry => self.telemetry_out.len(),
            Channel::Video => self.video_out.queued(),
            Channel::Storage => self.storage_out.queued(),
        }
    }

    /// Drop the storage messages not begun yet (see [`crate::Link::discard_unsent_storage`]).
    pub(crate) fn discard_unsent_storage(&mut self) -> usize {
        self.storage_out.discard_unsent(&mut self.pool)
    }

    /// Report [`Event::Writable`] for every blocked channel that has room again.
    fn report_writable(&mut self) {
        if !self.blocked.contains(&true) {
            return; // the usual case, on every poll
        }
        for channel in Channel::ALL {
            if self.blocked[channel as usize] && self.queued(channel) < self.config.send_queue_len {
                self.blocked[channel as usize] = false;
                self.push_event(Event::Writable { channel });
            }
        }
    }

    /// Why `channel` cannot take a message of `len` bytes now, whatever its queue holds.
    fn check_send(&self, channel: Channel, len: usize) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        if channel == Channel::Session || !self.role.may_send(channel) {
            return Err(SendError::NotAllowed(channel));
        }
        if channel == Channel::Storage && !self.storage_unlocked {
            return Err(SendError::StorageLocked);
        }
        let max = match channel {
            Channel::Session => 0,
            Channel::Control => self.config.max_control_message,
            Channel::Telemetry => self.config.max_plaintext(),
            Channel::Video => self.config.max_video_message,
            Channel::Storage => self.config.max_storage_message,
        };
        if len == 0 || len > max {
            return Err(SendError::MessageSize { len, max });
        }
        Ok(())
    }

    /// Queue a message on a channel (see [`crate::Link::send`]).
    pub(crate) fn send(&mut self, channel: Channel, payload: &[u8]) -> Result<(), SendError> {
        self.check_send(channel, payload.len())?;
        // Control keeps only the newest message: it is never full.
        let queued = match channel {
            Channel::Control => 0,
            other => self.queued(other),
        };
        if queued >= self.config.send_queue_len {
            self.blocked[channel as usize] = true;
            return Err(SendError::QueueFull(channel));
        }
        let buf = self.pool.take_copy(payload);
        match channel {
            Channel::Control => {
                if let Some(old) = self.control_out.replace(buf) {
                    self.pool.give(old);
                }
            }
            Channel::Telemetry => self.telemetry_out.push_back(buf),
            Channel::Video => {
                let max_fragment = self.config.max_fragment_data();
                let count = FragmentHeader::count_for(buf.len(), max_fragment).unwrap_or(1);
                let (loss, burst) = self.video_loss();
                let parity = self.config.video_fec.parity_for(
                    count,
                    loss,
                    burst,
                    self.config.max_video_parity,
                );
                self.video_out.push(buf, max_fragment, parity);
            }
            Channel::Storage | Channel::Session => self.storage_out.push(buf),
        }
        self.stats.channel_mut(channel).messages_sent += 1;
        Ok(())
    }

    /// Seal a control or telemetry message that lies in `buf[HEADER_LEN..HEADER_LEN + len]`
    /// where it is, if nothing goes before it (section 13's order); otherwise queue a copy
    /// (`Ok(None)`) as [`Connection::send`] does, and so for the other channels.
    pub(crate) fn send_in_place(
        &mut self,
        now: Timestamp,
        channel: Channel,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Option<Sealed>, SendError> {
        self.check_send(channel, len)?;
        let frame_len = HEADER_LEN + len + TAG_LEN;
        if buf.len() < frame_len {
            return Err(SendError::MessageSize {
                len,
                max: buf.len().saturating_sub(HEADER_LEN + TAG_LEN),
            });
        }
        if !self.first_in_line(now, channel) || !self.sealable(now) {
            self.send(channel, &buf[HEADER_LEN..HEADER_LEN + len])?;
            return Ok(None);
        }
        if channel == Channel::Control {
            // Control keeps only the newest message: this one supersedes an unsent one.
            if let Some(old) = self.control_out.take() {
                self.pool.give(old);
            }
        }
        self.last_polled = self.last_polled.max(now);
        self.stats.channel_mut(channel).messages_sent += 1;
        Ok(self.seal_frame(
            now,
            FrameType::Data,
            Some(channel),
            len,
            &mut buf[..frame_len],
        ))
    }

    /// Close the link for good: a close frame goes out with the next `poll_transmit`.
    pub(crate) fn close(&mut self, code: CloseCode) {
        match self.state {
            State::Open if self.keys.is_some() => {
                self.state = State::Closing {
                    code,
                    for_good: true,
                    copies: CLOSE_COPIES,
                }
            }
            // Nobody to tell: closed at once.
            State::Open => self.finish_close(code, false),
            _ => {}
        }
    }

    /// End the session only (a close frame tells the peer); the link stays open for new
    /// handshakes.
    pub(crate) fn end_session_with_peer(&mut self, code: CloseCode) {
        if self.state == State::Open && self.keys.is_some() {
            self.state = State::Closing {
                code,
                for_good: false,
                copies: CLOSE_COPIES,
            };
        }
    }

    fn finish_close(&mut self, code: CloseCode, by_peer: bool) {
        self.state = State::Closed;
        self.keys = None;
        self.push_event(Event::Closed { code, by_peer });
    }

    /// The session's keys are worn out or were retired: forget them, keep the link.
    fn end_session(&mut self, code: CloseCode) {
        self.keys = None;
        self.push_event(Event::SessionEnded { code });
    }

    /// A buffer holding a copy of `datagram`, to open in place (the link's own, taken back
    /// by [`Connection::put_back_scratch`] or handed to the application by
    /// [`Connection::deliver_frame`]).
    pub(crate) fn scratch_copy(&mut self, datagram: &[u8]) -> Vec<u8> {
        let mut frame = core::mem::take(&mut self.scratch);
        frame.clear();
        frame.extend_from_slice(datagram);
        frame
    }

    pub(crate) fn put_back_scratch(&mut self, frame: Vec<u8>) {
        self.scratch = frame;
    }

    /// Hand the application a whole-frame message, the decrypted `frame` itself (no copy),
    /// and take another scratch buffer for the next datagram.
    pub(crate) fn deliver_frame(&mut self, channel: Channel, mut frame: Vec<u8>) {
        frame.truncate(frame.len().saturating_sub(TAG_LEN));
        self.scratch = self.pool.take();
        self.deliver(channel, frame, HEADER_LEN);
    }

    /// Count a whole-frame message the application takes where it lies (in its own buffer).
    pub(crate) fn delivered_in_place(&mut self, channel: Channel, len: usize) {
        let s = self.stats.channel_mut(channel);
        s.messages_delivered += 1;
        s.bytes_delivered += len as u64;
    }

    /// Authenticate and decrypt, in place, an encrypted `frame` that came from `from`
    /// (`header` is its parsed header). On success its plaintext lies in
    /// `frame[HEADER_LEN..frame.len() - TAG_LEN]` for [`Connection::dispatch`], the peer
    /// has moved to `from` if the frame is the newest, and the frame's counter (recovered
    /// from its packet number) is returned.
    ///
    /// # Errors
    /// Why the frame was dropped; nothing changed then (but the bytes of `frame`).
    pub(crate) fn open(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        header: &Header,
        frame: &mut [u8],
    ) -> Result<u64, Error> {
        if self.state == State::Closed {
            return Err(Error::Closed);
        }
        let Some(keys) = self.keys.as_mut() else {
            return Err(Error::UnexpectedFrame);
        };
        if header.receiver_index != self.local_index {
            return Err(Error::UnknownReceiver);
        }
        let counter = keys.recv.counter_of(header.packet_number);
        let newest = keys.recv.is_newest(counter);
        let rotated = keys.recv.open(now, &self.config, header, counter, frame)?;
        // Authenticated.
        if rotated {
            self.stats.rekeys_received += 1;
            let generation = keys.recv.generation();
            self.push_event(Event::Rekeyed {
                direction: KeyDirection::Receive,
                generation,
            });
            if let Some(keys) = self.keys.as_mut() {
                if let Some(generation) = self.key_update.on_receive_rotated(keys, now) {
                    self.stats.rekeys_sent += 1;
                    self.push_event(Event::Rekeyed {
                        direction: KeyDirection::Send,
                        generation,
                    });
                    self.log_send_secret();
                }
            }
        }
        // While the round trips show a queue on the return path (the peer's frames
        // waiting), the peer learns of it promptly: relaxed feedback on a remote's sticks
        // came 100 ms apart, and a download's startup filled a 150 kbit/s uplink with
        // 70 ms of acks before the remote's second report.
        let asks = match elicits(header.frame_type, header.channel) {
            Elicits::Relaxed if self.path.return_path_queue() => Elicits::Prompt,
            asks => asks,
        };
        self.receipts.on_frame(now, counter, frame.len(), asks);
        if newest && self.peer != Some(from) {
            // Roaming: the peer is wherever its newest authenticated frame came from.
            self.peer = Some(from);
            self.stats.peer_address_changes += 1;
        }
        self.last_received = now;
        if self.link_lost {
            self.link_lost = false;
            self.push_event(Event::LinkRestored);
        }
        Ok(counter)
    }

    /// Handle an authenticated frame's body (`counter` is the frame's, as
    /// [`Connection::open`] returned it). `Ok(Some(channel))`: the plaintext is a whole
    /// message for the application, which the caller hands over.
    ///
    /// # Errors
    /// A protocol violation by the authenticated peer; its counter stays consumed.
    pub(crate) fn dispatch(
        &mut self,
        now: Timestamp,
        header: &Header,
        counter: u64,
        plaintext: &[u8],
        endpoint: &mut Endpoint,
    ) -> Result<Option<Channel>, Error> {
        match (header.frame_type, header.channel) {
            (FrameType::Data, Some(channel)) => {
                self.receive_data(now, channel, counter, plaintext, endpoint)
            }
            (FrameType::Ack, Some(channel)) => {
                let ack = AckBody::parse(plaintext).map_err(Error::violation)?;
                let sender = if channel == Channel::Session {
                    &mut self.session_out
                } else {
                    &mut self.storage_out
                };
                if sender.on_ack(now, &ack, &mut self.pool) {
                    Ok(None)
                } else {
                    Err(Error::UnexpectedFrame)
                }
            }
            (FrameType::Feedback, None) => {
                let body = FeedbackBody::parse(plaintext).map_err(Error::violation)?;
                self.path.set_returns_only(self.returns_only(now));
                self.path.on_feedback(now, &body);
                // Acks and feedback thin out while this end's frames queue on the path.
                let scale = self.return_scale(now);
                self.storage_in.set_ack_scale(path::ack_scale(scale));
                if let Some(srtt) = self.path.estimate().srtt {
                    self.storage_in.set_repair_rtt(srtt);
                }
                self.receipts.set_scale(scale);
                self.probes_unanswered = 0;
                self.probe_burst_left = 0;
                self.update_video_budget(now);
                Ok(None)
            }
            (FrameType::Repair, None) => {
                self.receive_repair(now, plaintext)?;
                Ok(None)
            }
            // A probe (section 34.6) is answered at once; empty, or padding (34.5), its
            // bytes mean nothing.
            (FrameType::Keepalive, None) => {
                if plaintext == KEEPALIVE_PROBE {
                    self.receipts.on_probe();
                }
                Ok(None)
            }
            (FrameType::Close, None) => {
                let body = CloseBody::parse(plaintext).map_err(Error::violation)?;
                match CloseCode(body.code) {
                    // The aircraft's code changed: only the session (and the bond) is over;
                    // the remote may pair again with the new code.
                    CloseCode::CODE_CHANGED => self.end_session(CloseCode::CODE_CHANGED),
                    code => self.finish_close(code, true),
                }
                Ok(None)
            }
            _ => Err(Error::UnexpectedFrame),
        }
    }

    fn receive_data(
        &mut self,
        now: Timestamp,
        channel: Channel,
        counter: u64,
        data: &[u8],
        endpoint: &mut Endpoint,
    ) -> Result<Option<Channel>, Error> {
        if !self.role.peer().may_send(channel) {
            return Err(Error::WrongDirection(channel));
        }
        let stats = self.stats.channel_mut(channel);
        stats.frames_received += 1;
        stats.bytes_received += data.len() as u64;
        match channel {
            Channel::Control => {
                if data.len() > self.config.max_control_message {
                    return Err(Error::violation(DecodeError::Oversize(data.len())));
                }
                if self.newest_control.is_some_and(|newest| counter < newest) {
                    self.stats.dropped_stale_control += 1;
                    self.stats.channel_mut(channel).messages_lost += 1;
                    return Ok(None);
                }
                self.newest_control = Some(counter);
                return Ok(Some(channel));
            }
            Channel::Telemetry => return Ok(Some(channel)),
            Channel::Video => {
                let (fragment, bytes) = FragmentHeader::parse(data).map_err(|e| {
                    self.stats.dropped_bad_video += 1;
                    Error::violation(e)
                })?;
                let events = &mut self.events;
                let stats = &mut self.stats;
                let outcome = self
                    .reassembler
                    .on_fragment(now, &fragment, bytes, &mut self.pool, &mut |message_id| {
                        stats.channel_mut(Channel::Video).messages_lost += 1;
                        events.push_back(Event::VideoLost { message_id });
                    })
                    .map_err(|e| {
                        stats.dropped_bad_video += 1;
                        Error::violation(e)
                    })?;
                match outcome {
                    Reassembled::Pending => {}
                    Reassembled::Stale => self.stats.dropped_stale_video += 1,
                    Reassembled::Complete(_, message, recovered) => {
                        if recovered > 0 {
                            self.stats.video_recovered += 1;
                            self.stats.video_fragments_recovered += u64::from(recovered);
                        }
                        self.deliver(channel, message, 0);
                    }
                }
            }
            Channel::Session => {
                let (segment, bytes) = SegmentHeader::parse(data).map_err(Error::violation)?;
                let mut messages = Vec::new();
                let outcome =
                    self.session_in
                        .on_segment(now, &segment, bytes, &mut self.pool, &mut |m| {
                            messages.push(m);
                        });
                if outcome == SegmentOutcome::OutOfWindow {
                    return Err(Error::UnexpectedFrame);
                }
                let mut result = Ok(());
                for m in messages {
                    if let Err(e) = self.on_session_message(now, &m, endpoint) {
                        result = Err(e);
                    }
                    self.pool.give(m);
                }
                result?;
            }
            Channel::Storage => {
                if !self.storage_unlocked {
                    // Not acknowledged either: the remote is told by `send`, not by the air.
                    return Err(Error::StorageLocked);
                }
                let (segment, bytes) = SegmentHeader::parse(data).map_err(Error::violation)?;
                if self.events.len() >= self.config.max_pending_events {
                    // Not acknowledged: the sender retransmits once the app caught up.
                    self.stats.events_overflowed += 1;
                    return Ok(None);
                }
                let errors_before = self.storage_in.protocol_errors;
                let outcome = self.storage_in.on_segment(
                    now,
                    &segment,
                    bytes,
                    &mut self.pool,
                    &mut storage_sink(&mut self.events, &mut self.stats),
                );
                self.stats.dropped_protocol += self.storage_in.protocol_errors - errors_before;
                match outcome {
                    SegmentOutcome::Accepted => {}
                    SegmentOutcome::Duplicate => self.stats.storage_duplicates += 1,
                    SegmentOutcome::OutOfWindow => return Err(Error::UnexpectedFrame),
                }
            }
        }
        Ok(None)
    }

    /// A repair frame (PROTOCOL.md 12.4): the storage segments it rebuilds are taken as
    /// received.
    fn receive_repair(&mut self, now: Timestamp, plaintext: &[u8]) -> Result<(), Error> {
        if !self.storage_unlocked {
            return Err(Error::StorageLocked);
        }
        let (header, shard) = RepairHeader::parse(plaintext).map_err(Error::violation)?;
        if self.events.len() >= self.config.max_pending_events {
            self.stats.events_overflowed += 1;
            return Ok(());
        }
        let errors_before = self.storage_in.protocol_errors;
        let rebuilt = self.storage_in.on_repair(
            now,
            &header,
            shard,
            &mut self.pool,
            &mut storage_sink(&mut self.events, &mut self.stats),
        );
        self.stats.dropped_protocol += self.storage_in.protocol_errors - errors_before;
        self.stats.storage_repaired += rebuilt.ok_or(Error::UnexpectedFrame)? as u64;
        Ok(())
    }

    /// Queue `buf[start..]` as a message for the application.
    fn deliver(&mut self, channel: Channel, buf: Vec<u8>, start: usize) {
        if self.events.len() >= self.config.max_pending_events {
            self.stats.events_overflowed += 1;
            self.pool.give(buf);
            return;
        }
        let s = self.stats.channel_mut(channel);
        s.messages_delivered += 1;
        s.bytes_delivered += buf.len().saturating_sub(start) as u64;
        self.events.push_back(Event::Message {
            channel,
            data: Message::new(buf, start),
        });
    }

    /// Queue a session-channel message.
    fn send_session(&mut self, message: SessionMessage<'_>) {
        let mut buf = self.pool.take();
        message.emit(&mut buf);
        self.session_out.push(buf);
    }

    /// Handle one message of the session channel.
    fn on_session_message(
        &mut self,
        now: Timestamp,
        msg: &[u8],
        endpoint: &mut Endpoint,
    ) -> Result<(), Error> {
        let message = SessionMessage::parse(msg).map_err(Error::violation)?;
        let Some(keys) = self.keys.as_mut() else {
            return Err(Error::UnexpectedFrame);
        };
        let mut out = self.pool.take();
        let outcome = match (message, self.role) {
            (SessionMessage::KeyUpdateRequest(theirs), _) => {
                if let Some(response) =
                    self.key_update
                        .on_request(self.role, theirs, keys, &mut self.rng)?
                {
                    response.emit(&mut out);
                }
                Outcome::Pending
            }
            (SessionMessage::KeyUpdateResponse(theirs), _) => {
                let generation = self.key_update.on_response(theirs, keys, now)?;
                self.stats.rekeys_sent += 1;
                self.push_event(Event::Rekeyed {
                    direction: KeyDirection::Send,
                    generation,
                });
                self.log_send_secret();
                Outcome::Pending
            }
            (SessionMessage::UnlockInit(ke1), Role::Aircraft) => {
                self.unlock
                    .on_init(now, ke1, &self.session_transcript, endpoint, &mut out)?
            }
            (SessionMessage::UnlockResponse { ke2, .. }, Role::Remote) => self.unlock.on_response(
                ke2,
                &self.session_transcript,
                self.config.ksf,
                self.defer_key_stretching,
                &mut self.rng,
                &mut out,
            )?,
            (SessionMessage::UnlockFinish(ke3), Role::Aircraft) => {
                self.unlock
                    .on_finish(ke3, &self.session_transcript, endpoint, &mut out)?
            }
            (SessionMessage::UnlockResult { ok, remaining }, Role::Remote) => {
                self.unlock.on_result(ok, remaining)?
            }
            (
                SessionMessage::UnlockRefused {
                    reason,
                    remaining,
                    retry_after_ms,
                },
                Role::Remote,
            ) => self
                .unlock
                .on_refused(now, reason, remaining, retry_after_ms)?,
            _ => return Err(Error::UnexpectedFrame),
        };
        if out.is_empty() {
            self.pool.give(out);
        } else {
            self.session_out.push(out);
        }
        self.on_unlock_outcome(outcome);
        Ok(())
    }

    fn on_unlock_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Pending => {}
            Outcome::Stretching => self.push_event(Event::KeyStretchReady),
            Outcome::Unlocked => {
                self.storage_unlocked = true;
                self.push_event(Event::StorageUnlocked);
            }
            Outcome::Rejected { remaining } => {
                if self.role == Role::Aircraft {
                    self.stats.unlock_failures += 1;
                }
                self.push_event(Event::StorageUnlockRejected {
                    remaining_attempts: remaining,
                });
            }
            Outcome::Refused {
                reason,
                remaining,
                retry_at,
            } => {
                if reason == RefusalReason::LockedOut {
                    self.push_event(Event::LockedOut { until: retry_at });
                }
                if self.role == Role::Remote {
                    self.push_event(Event::HandshakeRefused {
                        reason,
                        remaining_attempts: remaining,
                        retry_at,
                    });
                }
            }
        }
    }

    /// Remote: prove the code again to open the aircraft's storage.
    pub(crate) fn unlock_storage(&mut self, code: &[u8], now: Timestamp) -> Result<(), Error> {
        if self.keys.is_none() || self.state != State::Open {
            return Err(Error::Closed);
        }
        let mut out = self.pool.take();
        self.unlock.start(code, now, &mut self.rng, &mut out)?;
        self.session_out.push(out);
        Ok(())
    }

    /// Remote: leave (or not) an unlock's key stretching to the caller.
    pub(crate) fn set_defer_key_stretching(&mut self, defer: bool) {
        self.defer_key_stretching = defer;
    }

    /// Remote: whether the unlock's key stretching waits to be run.
    pub(crate) fn has_key_stretch(&self) -> bool {
        self.unlock.has_stretch()
    }

    /// Remote: the unlock's key stretching, once, if it waits to be run.
    pub(crate) fn poll_key_stretch(&mut self) -> Option<KeyStretch> {
        self.unlock.take_stretch()
    }

    /// Remote: the result of a [`KeyStretch`]; the unlock's finish goes out. Dropped if
    /// the unlock was given up or started again since, or the session ended.
    pub(crate) fn handle_key_stretched(&mut self, done: KeyStretched) {
        if self.keys.is_none() || self.state != State::Open {
            return;
        }
        let mut out = self.pool.take();
        if self.unlock.on_stretched(done, &mut out) {
            self.session_out.push(out);
        } else {
            self.pool.give(out);
        }
    }

    /// Start a key update if the send key is due and none is under way.
    fn maybe_start_rekey(&mut self, now: Timestamp) {
        let due = self
            .keys
            .as_ref()
            .is_some_and(|k| k.send.rekey_due(now, &self.config));
        if due && self.key_update.is_idle() {
            let request = self.key_update.start(&mut self.rng);
            self.send_session(request);
        }
    }

    /// Write the next frame to send into `buf`, highest priority first.
    pub(crate) fn poll_transmit(&mut self, now: Timestamp, buf: &mut [u8]) -> Option<Sealed> {
        let sealed = self.seal_next(now, buf);
        self.report_writable();
        sealed
    }

    fn seal_next(&mut self, now: Timestamp, buf: &mut [u8]) -> Option<Sealed> {
        if !self.sealable(now) {
            return None;
        }
        let max_plain = self.config.max_plaintext();
        let body = &mut buf[HEADER_LEN..HEADER_LEN + max_plain];
        let (frame_type, channel, len) = self.next_frame_body(now, body)?;
        let frame_len = HEADER_LEN + len + TAG_LEN;
        self.seal_frame(now, frame_type, channel, len, &mut buf[..frame_len])
    }

    /// Can a frame be sealed now? Ends the session if its send key is spent, and starts a
    /// key update when one is due.
    fn sealable(&mut self, now: Timestamp) -> bool {
        if self.state == State::Closed || !self.is_connected() || self.peer.is_none() {
            return false;
        }
        let Some(keys) = self.keys.as_ref() else {
            return false;
        };
        if keys.send.next_counter() >= self.config.counter_limit {
            self.end_session(CloseCode::COUNTER_EXHAUSTED);
            return false;
        }
        if keys.send.expired(now, &self.config) {
            // The key update did not complete in time; the peer refuses this key now.
            self.end_session(CloseCode::KEY_EXPIRED);
            return false;
        }
        self.maybe_start_rekey(now);
        true
    }

    /// Seal `frame`, whose body of `len` bytes is in place after the header, and account
    /// for it.
    fn seal_frame(
        &mut self,
        now: Timestamp,
        frame_type: FrameType,
        channel: Option<Channel>,
        len: usize,
        frame: &mut [u8],
    ) -> Option<Sealed> {
        let peer = self.peer?;
        let frame_len = HEADER_LEN + len + TAG_LEN;
        let header = Header {
            frame_type,
            key_phase: false,
            channel,
            receiver_index: self.peer_index,
            packet_number: 0,
        };
        let keys = self.keys.as_mut()?;
        let counter = keys.send.next_counter();
        match keys
            .send
            .seal(&self.config, header, frame.get_mut(..frame_len)?)
        {
            Ok(()) => {}
            Err(SealError::CounterExhausted) => {
                self.end_session(CloseCode::COUNTER_EXHAUSTED);
                return None;
            }
            Err(SealError::Failed) => {
                self.stats.seal_failures += 1;
                return None;
            }
        }
        self.last_sent = now;
        if elicits(frame_type, channel) == Elicits::Prompt {
            self.last_eliciting_sent = now;
        }
        self.path.on_sent(now, counter, frame_len);
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += frame_len as u64;
        if frame_type == FrameType::Feedback {
            self.stats.feedback_sent += 1;
        }
        if frame_type == FrameType::Keepalive {
            self.stats.keepalives_sent += 1;
        }
        if let (FrameType::Data, Some(c)) = (frame_type, channel) {
            self.stats.channel_mut(c).frames_sent += 1;
        }
        if let State::Closing {
            code,
            for_good,
            copies,
        } = self.state
        {
            if frame_type == FrameType::Close && copies > 1 {
                self.state = State::Closing {
                    code,
                    for_good,
                    copies: copies - 1,
                };
            } else if frame_type == FrameType::Close {
                if for_good {
                    self.finish_close(code, false);
                } else {
                    self.state = State::Open;
                    self.end_session(code);
                }
            }
        }
        Some(Sealed {
            len: frame_len,
            destination: peer,
            frame_type,
            channel,
        })
    }

    /// When `timer` is due, if it is armed.
    pub(crate) fn deadline(&self, timer: Timer) -> Option<Timestamp> {
        if self.state == State::Closed {
            return None;
        }
        let keys = self.keys.as_ref();
        let sending = self.is_connected();
        match timer {
            Timer::Keepalive => sending.then(|| {
                let at = self.last_sent + self.config.keepalive_interval;
                self.return_watch_at().map_or(at, |watch| at.min(watch))
            }),
            Timer::LinkLoss => (keys.is_some() && !self.link_lost)
                .then(|| self.last_received + self.config.link_loss_timeout),
            Timer::StorageRetransmit => {
                let due = sending.then(|| self.storage_out.poll_timeout())??;
                // A retransmission is paced like any storage frame: it is not due before the
                // pacer lets it go, and while the path is full the probe timer asks for room.
                if self.path.in_flight_full() {
                    return None;
                }
                Some(self.path.next_send_at().map_or(due, |at| due.max(at)))
            }
            Timer::SessionRetransmit => sending.then(|| self.session_out.poll_timeout())?,
            Timer::Rekey => keys
                .filter(|_| sending && self.key_update.is_idle())
                .map(|k| k.send.rekey_at(&self.config)),
            Timer::KeyReject => keys
                .filter(|_| sending)
                .map(|k| k.send.reject_at(&self.config)),
            Timer::Reassembly => self.reassembler.poll_timeout(),
            Timer::Unlock => self.unlock.deadline(self.config.handshake.timeout),
            Timer::Feedback => sending.then(|| self.receipts.deadline())?,
            Timer::Ack => sending.then(|| {
                earliest(
                    self.session_in.ack_deadline(),
                    self.storage_in.ack_deadline(),
                )
            })?,
            Timer::Pacing => {
                if !sending {
                    return None;
                }
                // The release (`PathModel::release_at`) only while it is ahead: one that
                // passed with the frame still waiting found nothing it could send (storage
                // held by the peer's window), and would wake the caller for ever.
                let release = self
                    .path
                    .release_at(self.last_eliciting_sent)
                    .filter(|at| *at > self.last_polled);
                let paced = self
                    .paced_pending(self.last_sent)
                    .then(|| earliest(self.path.next_send_at(), release))
                    .flatten();
                // Padding always goes when the pacer lets it, so it may be due at once; but
                // only if it is still wanted then (or this would wake the caller for nothing,
                // at the same instant, for ever).
                let padding_at = self
                    .path
                    .next_send_at()
                    .map_or(self.last_polled, |at| at.max(self.last_polled));
                let padding = (!self.path.in_flight_full() && self.padding_wanted(padding_at))
                    .then_some(padding_at);
                earliest(earliest(paced, padding), self.probe_at(self.last_sent))
            }
        }
    }

    /// The earliest armed timer.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        Timer::ALL.iter().filter_map(|&t| self.deadline(t)).min()
    }

    /// Run every timer due at `now`. Returns true if the link was lost now.
    pub(crate) fn handle_timeout(&mut self, now: Timestamp) -> bool {
        let mut lost = false;
        for timer in Timer::ALL {
            if self.deadline(timer).is_some_and(|at| now >= at) {
                lost |= self.on_timer(timer, now);
            }
        }
        lost
    }

    fn on_timer(&mut self, timer: Timer, now: Timestamp) -> bool {
        match timer {
            Timer::KeyReject => {
                // The key update did not complete in time; the peer refuses this key now.
                self.end_session(CloseCode::KEY_EXPIRED);
                return true;
            }
            Timer::Rekey => self.maybe_start_rekey(now),
            Timer::LinkLoss => {
                self.link_lost = true;
                self.push_event(Event::LinkLost);
                return true;
            }
            Timer::Reassembly => {
                let events = &mut self.events;
                let stats = &mut self.stats;
                self.reassembler
                    .expire(now, &mut self.pool, &mut |message_id| {
                        stats.channel_mut(Channel::Video).messages_lost += 1;
                        events.push_back(Event::VideoLost { message_id });
                    });
            }
            Timer::Unlock => {
                self.unlock.expire();
                self.push_event(Event::HandshakeFailed {
                    error: crate::handshake::HandshakeError::Timeout,
                });
            }
            // Retransmissions, keepalives, feedback and paced frames come out of the next
            // `poll_transmit`.
            Timer::SessionRetransmit
            | Timer::StorageRetransmit
            | Timer::Keepalive
            | Timer::Feedback
            | Timer::Ack
            | Timer::Pacing => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn a_video_budget_is_reported_on_a_tenth_at_once_and_on_a_fiftieth_after_a_while() {
        let soon = Duration::from_millis(100);
        assert!(video_budget_worth_reporting(None, 1, soon));
        assert!(video_budget_worth_reporting(Some(10_000), 11_001, soon));
        assert!(video_budget_worth_reporting(Some(10_000), 8_999, soon));
        assert!(!video_budget_worth_reporting(Some(10_000), 10_900, soon));
        assert!(!video_budget_worth_reporting(
            Some(10_000),
            10_900,
            VIDEO_BUDGET_REFRESH - soon
        ));
        assert!(video_budget_worth_reporting(
            Some(10_000),
            10_201,
            VIDEO_BUDGET_REFRESH
        ));
        assert!(video_budget_worth_reporting(
            Some(10_000),
            9_799,
            VIDEO_BUDGET_REFRESH
        ));
        assert!(!video_budget_worth_reporting(
            Some(10_000),
            10_200,
            Duration::from_secs(60)
        ));
    }
}
