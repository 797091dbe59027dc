//! [`Link`]: one end of the encrypted aircraft-remote link, driven sans-IO.

mod connect;
mod control;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::channel::reliable::{ReliableReceiver, ReliableSender, SegmentOutcome};
use crate::channel::video::{Reassembled, Reassembler, VideoSender};
use crate::channel::{Channel, Role};
use crate::config::{Config, ConfigError};
use crate::crypto::{traffic_secrets, AeadProvider, RustCrypto, Secret};
use crate::error::Error;
use crate::handshake::aircraft::AircraftHandshake;
use crate::handshake::remote::RemoteHandshake;
use crate::handshake::{HandshakeError, Kind, RefusalReason};
use crate::pool::BufPool;
use crate::session::{RecvKeys, SendKeys};
use crate::stats::Stats;
use crate::time::{earliest, Timestamp};
use crate::wire::body::{AckBody, CloseBody, FragmentHeader, SegmentHeader};
use crate::wire::{DecodeError, Frame, FrameType, Header, HEADER_LEN, MAX_DATAGRAM_LEN, TAG_LEN};
use rand_chacha::ChaCha20Rng;

/// Why a link was closed. Carried in the close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// The application closed the link normally.
    pub const NORMAL: CloseCode = CloseCode(0);
    /// The send counter is exhausted; a new session is needed. Never sent (no counter is
    /// left to send it with), only reported locally.
    pub const COUNTER_EXHAUSTED: CloseCode = CloseCode(1);
    /// The aircraft's security code was changed: every bond is revoked.
    pub const CODE_CHANGED: CloseCode = CloseCode(2);
    /// The send key reached its hard limit before a key update completed. Never sent, only
    /// reported locally; a remote reconnects.
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

/// Something the application should know about. Returned by [`Link::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A message arrived. `data` borrows the link until the next `poll_event`.
    Message {
        /// The channel it arrived on.
        channel: Channel,
        /// The message.
        data: &'a [u8],
    },
    /// A video message arrived incomplete and was given up: it will never be delivered.
    VideoLost {
        /// Its message id.
        message_id: u32,
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
    /// A pairing attempt with the code failed.
    PairingRejected {
        /// Attempts left before the aircraft locks out.
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
    /// A handshake this end started has failed.
    HandshakeFailed {
        /// Why.
        error: HandshakeError,
    },
    /// The code was proven inside this session: the storage channel is open.
    StorageUnlocked,
    /// A storage unlock failed (wrong code).
    StorageUnlockRejected {
        /// Attempts left before the aircraft locks out.
        remaining_attempts: u32,
    },
    /// Nothing authenticated arrived for `link_loss_timeout`.
    LinkLost,
    /// An authenticated frame arrived after [`Event::LinkLost`].
    LinkRestored,
    /// The link closed; nothing more will be sent or delivered.
    Closed {
        /// Why.
        code: CloseCode,
        /// True if the peer closed it.
        by_peer: bool,
    },
}

impl Event<'_> {
    /// This event without a borrow of the link, for keeping: `None` for a
    /// [`Event::Message`] (copy its data instead).
    pub fn detached(&self) -> Option<Event<'static>> {
        Some(match *self {
            Event::Message { .. } => return None,
            Event::VideoLost { message_id } => Event::VideoLost { message_id },
            Event::Rekeyed {
                direction,
                generation,
            } => Event::Rekeyed {
                direction,
                generation,
            },
            Event::Connected { kind } => Event::Connected { kind },
            Event::Bonded => Event::Bonded,
            Event::PairingRejected { remaining_attempts } => {
                Event::PairingRejected { remaining_attempts }
            }
            Event::LockedOut { until } => Event::LockedOut { until },
            Event::HandshakeRefused {
                reason,
                remaining_attempts,
                retry_at,
            } => Event::HandshakeRefused {
                reason,
                remaining_attempts,
                retry_at,
            },
            Event::HandshakeFailed { error } => Event::HandshakeFailed { error },
            Event::StorageUnlocked => Event::StorageUnlocked,
            Event::StorageUnlockRejected { remaining_attempts } => {
                Event::StorageUnlockRejected { remaining_attempts }
            }
            Event::LinkLost => Event::LinkLost,
            Event::LinkRestored => Event::LinkRestored,
            Event::Closed { code, by_peer } => Event::Closed { code, by_peer },
        })
    }
}

/// An event waiting in the queue; messages own a pooled buffer.
#[derive(Debug)]
enum Pending {
    /// A message: the bytes of the buffer from the index on.
    Message(Channel, Vec<u8>, usize),
    VideoLost(u32),
    Rekeyed(KeyDirection, u64),
    Connected(Kind),
    Bonded,
    PairingRejected(u32),
    LockedOut(Timestamp),
    HandshakeRefused(RefusalReason, u32, Timestamp),
    HandshakeFailed(HandshakeError),
    LinkLost,
    LinkRestored,
    Closed(CloseCode, bool),
    StorageUnlocked,
    StorageUnlockRejected(u32),
}

/// What [`Link::poll_transmit`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Bytes of the datagram, at the start of the buffer.
    pub len: usize,
    /// The frame's type.
    pub frame_type: FrameType,
    /// The frame's channel, for data and ack frames.
    pub channel: Option<Channel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closing(CloseCode),
    Closed,
}

/// One end of an established session.
///
/// # The sans-IO contract
///
/// `Link` does no I/O and reads no clock. The caller owns the socket (or radio) and the
/// clock, and drives the link with these calls, in any order, from one task:
///
/// ```text
///   datagram arrives ----> handle_datagram(now, bytes)
///   app has a message ---> send(channel, payload)
///   after either, and     loop { poll_transmit(now, buf) -> send the datagram }
///   whenever woken:       loop { poll_event() -> hand to the app }
///                         sleep until poll_timeout(); then handle_timeout(now)
/// ```
///
/// `poll_transmit` returns frames in priority order until nothing is left to send now;
/// `poll_timeout` is the earliest moment at which `handle_timeout` has work (a keepalive, a
/// retransmission, a reassembly or link-loss timeout). Every `now` must be from one monotonic
/// clock.
///
/// A datagram that is malformed, forged, replayed or for an expired key is dropped: the
/// error is returned for logging, counted in [`Link::stats`], and the link carries on
/// unchanged. An authenticated frame whose body breaks the protocol is dropped and counted
/// too; its counter stays consumed (it did come from the peer).
///
/// Steady-state sending and receiving allocates nothing: buffers are recycled through an
/// internal pool (a message returned by `poll_event` is recycled on the next call).
pub struct Link<P: AeadProvider = RustCrypto> {
    role: Role,
    config: Config,
    local_index: u32,
    peer_index: u32,
    /// The session keys, once a handshake (or `from_secret`) produced them.
    keys: Option<Keys<P>>,
    /// The role's handshake state; `None` for a link made with `from_secret`.
    handshake: Option<Handshake>,
    /// Handshake frames waiting to be sent (the aircraft's responses and refusals).
    handshake_out: VecDeque<Vec<u8>>,
    /// Send an authenticated frame soon, so the remote learns the session is up.
    reconfirm: bool,
    /// The kind of the handshake that made the current session.
    connected_kind: Option<Kind>,
    /// Hash of the handshake transcript of the current session (binds unlocks to it).
    session_transcript: [u8; 32],
    /// The link's own reliable channel (key updates, storage unlock).
    session_out: ReliableSender,
    session_in: ReliableReceiver,
    rekey: control::Rekey,
    unlock: control::Unlock,
    /// Has the code been proven inside this session, opening the storage channel?
    storage_unlocked: bool,
    /// Randomness for ephemeral keys and indices, seeded from the caller's CSPRNG.
    rng: ChaCha20Rng,
    state: State,
    pool: BufPool,
    control_out: Option<Vec<u8>>,
    telemetry_out: VecDeque<Vec<u8>>,
    video_out: VideoSender,
    storage_out: ReliableSender,
    storage_in: ReliableReceiver,
    reassembler: Reassembler,
    /// Counter of the newest control frame delivered (latest wins).
    newest_control: Option<u64>,
    events: VecDeque<Pending>,
    /// The buffer of the message last returned by `poll_event`.
    delivered: Option<Vec<u8>>,
    /// Frame being decrypted; its capacity is kept between datagrams.
    scratch: Vec<u8>,
    last_sent: Timestamp,
    last_received: Timestamp,
    link_lost: bool,
    stats: Stats,
}

/// Both halves of the session keys.
struct Keys<P: AeadProvider> {
    send: SendKeys<P>,
    recv: RecvKeys<P>,
}

/// The handshake state of each role.
enum Handshake {
    Remote(alloc::boxed::Box<RemoteHandshake>),
    Aircraft(alloc::boxed::Box<AircraftHandshake>),
}

impl<P: AeadProvider> Link<P> {
    /// Build an established link from a shared secret and transcript hash obtained some other
    /// way (tests, benchmarks, a handshake of your own). Both ends call this with the same
    /// secret and hash and opposite roles; `local_index` is the index this end receives on,
    /// `peer_index` the other end's; `rng` seeds the ephemeral keys of later key updates.
    /// No code is proven, so the storage channel starts unlocked.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` fails [`Config::validate`].
    #[allow(clippy::too_many_arguments)] // each is a distinct input of the key schedule
    pub fn from_secret(
        role: Role,
        config: Config,
        handshake_secret: &Secret,
        transcript_hash: &[u8; 32],
        local_index: u32,
        peer_index: u32,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut link = Self::unconnected(role, config, seed, now)?;
        link.install_keys(
            handshake_secret,
            transcript_hash,
            local_index,
            peer_index,
            now,
        );
        // Nothing here proved a code: the caller vouches for the secret.
        link.storage_unlocked = true;
        Ok(link)
    }

    /// A link with no session yet.
    fn unconnected(
        role: Role,
        config: Config,
        rng_seed: [u8; 32],
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Link {
            role,
            keys: None,
            handshake: None,
            handshake_out: VecDeque::new(),
            reconfirm: false,
            connected_kind: None,
            session_transcript: [0; 32],
            session_out: ReliableSender::new(&config),
            session_in: ReliableReceiver::new(&config),
            rekey: control::Rekey::Idle,
            unlock: control::Unlock::Idle,
            storage_unlocked: false,
            rng: rand_core::SeedableRng::from_seed(rng_seed),
            state: State::Open,
            pool: BufPool::default(),
            control_out: None,
            telemetry_out: VecDeque::new(),
            video_out: VideoSender::default(),
            storage_out: ReliableSender::new(&config),
            storage_in: ReliableReceiver::new(&config),
            reassembler: Reassembler::new(
                config.video_reassembly_slots,
                config.max_video_message,
                config.video_reassembly_timeout,
            ),
            newest_control: None,
            events: VecDeque::new(),
            delivered: None,
            scratch: Vec::with_capacity(MAX_DATAGRAM_LEN),
            last_sent: now,
            last_received: now,
            link_lost: false,
            stats: Stats::default(),
            local_index: 0,
            peer_index: 0,
            config,
        })
    }

    /// Derive and install session keys; the session counts as confirmed.
    pub(super) fn install_keys(
        &mut self,
        handshake_secret: &Secret,
        transcript_hash: &[u8; 32],
        local_index: u32,
        peer_index: u32,
        now: Timestamp,
    ) {
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
        self.last_received = now;
        self.link_lost = false;
        self.session_transcript = *transcript_hash;
        // Packet counters restart with new keys, and latest-wins compares counters.
        self.newest_control = None;
        self.session_out = ReliableSender::new(&self.config);
        self.session_in = ReliableReceiver::new(&self.config);
        self.rekey = control::Rekey::Idle;
        self.unlock = control::Unlock::Idle;
        self.storage_unlocked = false;
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters of everything sent, received and dropped.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// True once the link is closed (locally, by the peer, or by counter exhaustion).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The session index this end receives on.
    pub fn local_index(&self) -> u32 {
        self.local_index
    }

    /// True if anything is queued to send (messages, retransmissions, acks).
    pub fn has_pending_send(&self) -> bool {
        self.control_out.is_some()
            || !self.telemetry_out.is_empty()
            || self.video_out.queued() > 0
            || self.storage_out.queued() > 0
            || self.storage_in.ack_pending()
            || self.session_out.queued() > 0
            || self.session_in.ack_pending()
            || matches!(self.state, State::Closing(_))
    }

    /// Reliable messages queued or in flight (not yet acknowledged).
    pub fn storage_unacked(&self) -> usize {
        self.storage_out.queued() + self.storage_out.in_flight()
    }

    /// Bytes held for video reassembly and reliable reordering: bounded by the configuration.
    pub fn reassembly_bytes(&self) -> usize {
        self.reassembler.buffered_bytes()
            + self.storage_in.buffered_bytes()
            + self.session_in.buffered_bytes()
    }

    /// Queue a message on a channel.
    ///
    /// `Control` keeps only the newest unsent message; the others queue up to
    /// `send_queue_len` messages.
    ///
    /// # Errors
    /// - [`Error::Closed`] after the link closed;
    /// - [`Error::SendNotAllowed`] for a channel this role may not send on;
    /// - [`Error::MessageSize`] for an empty message or one over the channel's maximum;
    /// - [`Error::QueueFull`] when the channel's queue is full.
    pub fn send(&mut self, channel: Channel, payload: &[u8]) -> Result<(), Error> {
        if self.state != State::Open {
            return Err(Error::Closed);
        }
        if channel == Channel::Session || !self.role.may_send(channel) {
            return Err(Error::SendNotAllowed(channel));
        }
        if channel == Channel::Storage && !self.storage_unlocked {
            return Err(Error::StorageLocked);
        }
        let (max, queued) = match channel {
            Channel::Session => (0, 0),
            Channel::Control => (self.config.max_control_message, 0),
            Channel::Telemetry => (self.config.max_plaintext(), self.telemetry_out.len()),
            Channel::Video => (self.config.max_video_message, self.video_out.queued()),
            Channel::Storage => (self.config.max_storage_message, self.storage_out.queued()),
        };
        if payload.is_empty() || payload.len() > max {
            return Err(Error::MessageSize {
                len: payload.len(),
                max,
            });
        }
        if queued >= self.config.send_queue_len {
            return Err(Error::QueueFull(channel));
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
                self.video_out.push(buf, self.config.max_fragment_data());
            }
            Channel::Storage | Channel::Session => self.storage_out.push(buf),
        }
        self.stats.channel_mut(channel).messages_sent += 1;
        Ok(())
    }

    /// Close the link: a close frame is sent by the next `poll_transmit`, then nothing else.
    pub fn close(&mut self, code: CloseCode) {
        if self.state == State::Open {
            self.state = State::Closing(code);
        }
    }

    /// Take one datagram from the network.
    ///
    /// # Errors
    /// Why the datagram was dropped (see [`Error`]); a datagram that fails authentication
    /// changes nothing, and every drop is counted in [`Link::stats`].
    pub fn handle_datagram(&mut self, now: Timestamp, datagram: &[u8]) -> Result<(), Error> {
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += datagram.len() as u64;
        let result = self.receive(now, datagram);
        if let Err(e) = &result {
            self.stats.count_drop(e);
        }
        result
    }

    fn receive(&mut self, now: Timestamp, datagram: &[u8]) -> Result<(), Error> {
        let header = Header::parse(&Frame::new_checked(datagram)?)?;
        if !header.frame_type.is_encrypted() {
            return self.receive_handshake(now, datagram);
        }
        if self.state == State::Closed {
            return Err(Error::Closed);
        }
        if self.keys.is_none() {
            return Err(Error::UnexpectedFrame);
        }
        if header.receiver_index != self.local_index {
            return Err(Error::UnknownReceiver);
        }
        let mut frame = core::mem::take(&mut self.scratch);
        frame.clear();
        frame.extend_from_slice(datagram);
        let result = self.open_and_dispatch(now, &header, &mut frame);
        match result {
            Ok(Some(channel)) => {
                // A whole-frame message: hand the decrypted frame itself to the application
                // (no copy) and take another buffer for the next datagram.
                frame.truncate(frame.len() - TAG_LEN);
                self.scratch = self.pool.take();
                self.deliver_frame(channel, frame);
                Ok(())
            }
            other => {
                self.scratch = frame;
                other.map(|_| ())
            }
        }
    }

    /// Authenticate and handle one frame. `Ok(Some(channel))`: the frame's plaintext is a
    /// whole message for the application, to deliver as it is.
    fn open_and_dispatch(
        &mut self,
        now: Timestamp,
        header: &Header,
        frame: &mut [u8],
    ) -> Result<Option<Channel>, Error> {
        let Some(keys) = self.keys.as_mut() else {
            return Err(Error::UnexpectedFrame);
        };
        if keys.recv.open(now, &self.config, header, frame)? {
            self.stats.rekeys_received += 1;
            let generation = keys.recv.generation();
            self.push_event(Pending::Rekeyed(KeyDirection::Receive, generation));
            self.on_receive_rotated(now);
        }
        self.on_authenticated(now);
        self.last_received = now;
        if self.link_lost {
            self.link_lost = false;
            self.push_event(Pending::LinkRestored);
        }
        let plaintext = &frame[HEADER_LEN..frame.len() - TAG_LEN];
        match (header.frame_type, header.channel) {
            (FrameType::Data, Some(channel)) => {
                self.receive_data(now, channel, header.counter, plaintext)
            }
            (FrameType::Ack, Some(channel)) => {
                let ack = AckBody::parse(plaintext)?;
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
            (FrameType::Keepalive, None) if plaintext.is_empty() => Ok(None),
            (FrameType::Keepalive, None) => Err(DecodeError::TrailingBytes.into()),
            (FrameType::Close, None) => {
                let body = CloseBody::parse(plaintext)?;
                self.end_session(CloseCode(body.code), true);
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
    ) -> Result<Option<Channel>, Error> {
        if !self.role.peer().may_send(channel) {
            return Err(Error::WrongDirection(channel));
        }
        self.stats.channel_mut(channel).frames_received += 1;
        match channel {
            Channel::Control => {
                if data.len() > self.config.max_control_message {
                    return Err(DecodeError::Oversize(data.len()).into());
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
                let (fragment, bytes) = FragmentHeader::parse(data)?;
                let events = &mut self.events;
                let stats = &mut self.stats;
                let outcome = self.reassembler.on_fragment(
                    now,
                    &fragment,
                    bytes,
                    &mut self.pool,
                    &mut |id| {
                        stats.channel_mut(Channel::Video).messages_lost += 1;
                        events.push_back(Pending::VideoLost(id));
                    },
                )?;
                match outcome {
                    Reassembled::Pending => {}
                    Reassembled::Stale => self.stats.dropped_stale_video += 1,
                    Reassembled::Complete(_, message) => self.deliver_owned(channel, message),
                }
            }
            Channel::Session => {
                let (segment, bytes) = SegmentHeader::parse(data)?;
                let mut messages = Vec::new();
                let outcome =
                    self.session_in
                        .on_segment(&segment, bytes, &mut self.pool, &mut |m| {
                            messages.push(m);
                        });
                if outcome == SegmentOutcome::OutOfWindow {
                    return Err(Error::UnexpectedFrame);
                }
                let mut result = Ok(());
                for m in messages {
                    if let Err(e) = self.on_control(now, &m) {
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
                let (segment, bytes) = SegmentHeader::parse(data)?;
                if self.events.len() >= self.config.max_pending_events {
                    // Not acknowledged: the sender retransmits once the app caught up.
                    self.stats.events_overflowed += 1;
                    return Ok(None);
                }
                let errors_before = self.storage_in.protocol_errors;
                let events = &mut self.events;
                let stats = &mut self.stats;
                let outcome =
                    self.storage_in
                        .on_segment(&segment, bytes, &mut self.pool, &mut |message| {
                            let s = stats.channel_mut(Channel::Storage);
                            s.messages_delivered += 1;
                            s.bytes_delivered += message.len() as u64;
                            events.push_back(Pending::Message(Channel::Storage, message, 0));
                        });
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

    /// Deliver a decrypted frame (tag already cut off) whose plaintext is one message.
    fn deliver_frame(&mut self, channel: Channel, frame: Vec<u8>) {
        self.deliver_at(channel, frame, HEADER_LEN);
    }

    fn deliver_owned(&mut self, channel: Channel, message: Vec<u8>) {
        self.deliver_at(channel, message, 0);
    }

    /// Queue `buf[start..]` as a message for the application.
    fn deliver_at(&mut self, channel: Channel, buf: Vec<u8>, start: usize) {
        if self.events.len() >= self.config.max_pending_events {
            self.stats.events_overflowed += 1;
            self.pool.give(buf);
            return;
        }
        let s = self.stats.channel_mut(channel);
        s.messages_delivered += 1;
        s.bytes_delivered += buf.len().saturating_sub(start) as u64;
        self.events.push_back(Pending::Message(channel, buf, start));
    }

    /// The session is over: forget its keys. A link with a handshake can start another.
    fn end_session(&mut self, code: CloseCode, by_peer: bool) {
        self.state = State::Closed;
        self.keys = None;
        self.push_event(Pending::Closed(code, by_peer));
        if code == CloseCode::KEY_EXPIRED {
            self.on_link_lost(Timestamp::ZERO.max(self.last_sent));
        }
    }

    fn push_event(&mut self, event: Pending) {
        self.events.push_back(event);
    }

    /// Write the next datagram to send into `buf`, highest priority first.
    ///
    /// `buf` must hold at least `config.mtu` bytes; with a smaller one nothing is written
    /// (and [`Stats::transmit_buffer_too_small`] counts the call). Returns `None` when
    /// nothing is due now.
    pub fn poll_transmit(&mut self, now: Timestamp, buf: &mut [u8]) -> Option<Transmit> {
        if buf.len() < self.config.mtu {
            self.stats.transmit_buffer_too_small += 1;
            return None;
        }
        if let Some(frame) = self.next_handshake_frame(now) {
            let Some(dst) = buf.get_mut(..frame.len()) else {
                self.stats.transmit_buffer_too_small += 1;
                return None;
            };
            dst.copy_from_slice(&frame);
            self.last_sent = now;
            self.stats.datagrams_sent += 1;
            self.stats.bytes_sent += frame.len() as u64;
            return Some(Transmit {
                len: frame.len(),
                frame_type: FrameType::from_u8(frame[1]).ok()?,
                channel: None,
            });
        }
        if self.state == State::Closed || !self.may_send_data() {
            return None;
        }
        let keys = self.keys.as_ref()?;
        if keys.send.next_counter() >= self.config.counter_limit {
            self.end_session(CloseCode::COUNTER_EXHAUSTED, false);
            return None;
        }
        if keys.send.expired(now, &self.config) {
            // The key update did not complete in time; the peer refuses this key now.
            self.end_session(CloseCode::KEY_EXPIRED, false);
            return None;
        }
        self.maybe_start_rekey(now);
        let max_plain = self.config.max_plaintext();
        let body = &mut buf[HEADER_LEN..HEADER_LEN + max_plain];
        let (frame_type, channel, len) = self.next_frame_body(now, body)?;
        let frame_len = HEADER_LEN + len + TAG_LEN;
        let header = Header {
            frame_type,
            key_phase: false,
            channel,
            receiver_index: self.peer_index,
            counter: 0,
            payload_len: 0,
        };
        let keys = self.keys.as_mut()?;
        if keys
            .send
            .seal(&self.config, header, &mut buf[..frame_len])
            .is_err()
        {
            return None; // unreachable: the counter was checked above
        }
        self.last_sent = now;
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += frame_len as u64;
        if let (FrameType::Data, Some(c)) = (frame_type, channel) {
            self.stats.channel_mut(c).frames_sent += 1;
        }
        if let State::Closing(code) = self.state {
            if frame_type == FrameType::Close {
                self.end_session(code, false);
            }
        }
        Some(Transmit {
            len: frame_len,
            frame_type,
            channel,
        })
    }

    /// Pick the highest-priority frame due and write its plaintext into `body`.
    fn next_frame_body(
        &mut self,
        now: Timestamp,
        body: &mut [u8],
    ) -> Option<(FrameType, Option<Channel>, usize)> {
        if let State::Closing(code) = self.state {
            let n = CloseBody { code: code.0 }.emit(body).ok()?;
            return Some((FrameType::Close, None, n));
        }
        if let Some(msg) = self.control_out.take() {
            let n = msg.len().min(body.len());
            body[..n].copy_from_slice(&msg[..n]);
            self.pool.give(msg);
            return Some((FrameType::Data, Some(Channel::Control), n));
        }
        if self.session_in.ack_pending() {
            let n = self.session_in.take_ack().emit(body).ok()?;
            self.stats.acks_sent += 1;
            return Some((FrameType::Ack, Some(Channel::Session), n));
        }
        if self.storage_in.ack_pending() {
            let n = self.storage_in.take_ack().emit(body).ok()?;
            self.stats.acks_sent += 1;
            return Some((FrameType::Ack, Some(Channel::Storage), n));
        }
        let max_plain = body.len();
        if let Some(n) = self.session_out.next_retransmit(now, body) {
            return Some((FrameType::Data, Some(Channel::Session), n));
        }
        if let Some(n) = self
            .session_out
            .next_new(now, max_plain, body, &mut self.pool)
        {
            return Some((FrameType::Data, Some(Channel::Session), n));
        }
        if let Some(n) = self.storage_out.next_retransmit(now, body) {
            self.stats.storage_retransmits += 1;
            return Some((FrameType::Data, Some(Channel::Storage), n));
        }
        if let Some(msg) = self.telemetry_out.pop_front() {
            let n = msg.len().min(body.len());
            body[..n].copy_from_slice(&msg[..n]);
            self.pool.give(msg);
            return Some((FrameType::Data, Some(Channel::Telemetry), n));
        }
        if let Some(n) = self
            .storage_out
            .next_new(now, max_plain, body, &mut self.pool)
        {
            return Some((FrameType::Data, Some(Channel::Storage), n));
        }
        if let Some(n) = self.video_out.next_fragment(body, &mut self.pool) {
            return Some((FrameType::Data, Some(Channel::Video), n));
        }
        if self.reconfirm || now >= self.last_sent + self.config.keepalive_interval {
            self.reconfirm = false;
            self.stats.keepalives_sent += 1;
            return Some((FrameType::Keepalive, None, 0));
        }
        None
    }

    /// The earliest time at which [`Link::handle_timeout`] (or `poll_transmit`) has work.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let handshake = self.handshake_timeout();
        if self.state == State::Closed || !self.may_send_data() {
            return handshake;
        }
        let keepalive = Some(self.last_sent + self.config.keepalive_interval);
        let loss = (!self.link_lost).then(|| self.last_received + self.config.link_loss_timeout);
        let timers = earliest(keepalive, loss);
        let timers = earliest(timers, handshake);
        let timers = earliest(timers, self.storage_out.poll_timeout());
        let timers = earliest(timers, self.session_out.poll_timeout());
        earliest(timers, self.reassembler.poll_timeout())
    }

    /// Run the timers due at `now`: link loss and video reassembly timeouts. (Keepalives and
    /// retransmissions that are due come out of the next `poll_transmit`.)
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.handshake_timers(now);
        if self.state == State::Closed {
            return;
        }
        if self.keys.is_some()
            && !self.link_lost
            && now >= self.last_received + self.config.link_loss_timeout
        {
            self.link_lost = true;
            self.push_event(Pending::LinkLost);
            self.on_link_lost(now);
        }
        let events = &mut self.events;
        let stats = &mut self.stats;
        self.reassembler.expire(now, &mut self.pool, &mut |id| {
            stats.channel_mut(Channel::Video).messages_lost += 1;
            events.push_back(Pending::VideoLost(id));
        });
    }

    /// Is a storage retransmission due at `now`?
    pub fn retransmit_due(&self, now: Timestamp) -> bool {
        self.storage_out.retransmit_due(now)
    }

    /// The next event for the application, if any. A [`Event::Message`] borrows its data
    /// from the link until the next call.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        if let Some(buf) = self.delivered.take() {
            self.pool.give(buf);
        }
        Some(match self.events.pop_front()? {
            Pending::Message(channel, buf, start) => {
                let data = &self.delivered.insert(buf)[start..];
                Event::Message { channel, data }
            }
            Pending::VideoLost(message_id) => Event::VideoLost { message_id },
            Pending::Rekeyed(direction, generation) => Event::Rekeyed {
                direction,
                generation,
            },
            Pending::Connected(kind) => Event::Connected { kind },
            Pending::Bonded => Event::Bonded,
            Pending::PairingRejected(remaining_attempts) => {
                Event::PairingRejected { remaining_attempts }
            }
            Pending::LockedOut(until) => Event::LockedOut { until },
            Pending::HandshakeRefused(reason, remaining_attempts, retry_at) => {
                Event::HandshakeRefused {
                    reason,
                    remaining_attempts,
                    retry_at,
                }
            }
            Pending::HandshakeFailed(error) => Event::HandshakeFailed { error },
            Pending::StorageUnlocked => Event::StorageUnlocked,
            Pending::StorageUnlockRejected(remaining_attempts) => {
                Event::StorageUnlockRejected { remaining_attempts }
            }
            Pending::LinkLost => Event::LinkLost,
            Pending::LinkRestored => Event::LinkRestored,
            Pending::Closed(code, by_peer) => Event::Closed { code, by_peer },
        })
    }
}

impl<P: AeadProvider> core::fmt::Debug for Link<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Link")
            .field("role", &self.role)
            .field("provider", &P::NAME)
            .field("local_index", &self.local_index)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
