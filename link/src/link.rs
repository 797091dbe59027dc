//! [`Link`]: one end of the encrypted aircraft-remote link, driven sans-IO — a thin facade
//! over one [`Endpoint`] (handshakes, identity, attempt guard) and its [`Connection`]
//! (keys, channels, timers, the peer's address).

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

use crate::channel::{Channel, Role};
use crate::config::{Config, ConfigError};
use crate::connection::Connection;
use crate::crypto::{AeadProvider, RustCrypto, Secret};
use crate::endpoint::{Answer, Endpoint};
use crate::error::{Error, SendError};
use crate::event::{CloseCode, Event, Message};
use crate::handshake::aircraft::BoxedAttemptStore;
use crate::handshake::keys::{resumption, LinkId};
use crate::handshake::stretch::{KeyStretch, KeyStretched, Purpose};
use crate::handshake::{
    AircraftIdentity, Established, HandshakeError, HsEvent, RefusalReason, RemoteIdentity,
};
use crate::stats::Stats;
use crate::time::{earliest, Timestamp};
use crate::wire::{Frame, FrameType, Header, HEADER_LEN, TAG_LEN};

/// What [`Link::poll_transmit`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send the datagram: the peer, or for a handshake reply the source of the
    /// datagram it answers.
    pub destination: SocketAddr,
    /// Bytes of the datagram, at the start of the buffer.
    pub len: usize,
    /// The frame's type.
    pub frame_type: FrameType,
    /// The frame's channel, for data and ack frames.
    pub channel: Option<Channel>,
}

/// Where a message starts in the buffer of [`Link::send_in_place`]: after the header.
pub const PAYLOAD_OFFSET: usize = HEADER_LEN;

/// A whole-frame message (control or telemetry) that [`Link::handle_datagram_in_place`]
/// decrypted where it arrived: `datagram[range]` is the message, and no [`Event::Message`]
/// is queued for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InPlace {
    /// The message's channel.
    pub channel: Channel,
    /// Where the message lies in the datagram's buffer.
    pub range: core::ops::Range<usize>,
}

/// One end of the link: an aircraft or a remote.
///
/// # The sans-IO contract
///
/// `Link` does no I/O and reads no clock. The caller owns the socket (or radio) and the
/// clock, and drives the link with these calls, in any order, from one task:
///
/// ```text
///   datagram arrives ----> handle_datagram(now, source, bytes)
///   app has a message ---> send(channel, payload)
///   after either, and     loop { poll_transmit(now, buf) -> send to t.destination }
///   whenever woken:       loop { poll_event() -> hand to the app }
///                         sleep until poll_timeout(); then handle_timeout(now)
/// ```
///
/// `poll_transmit` returns frames in priority order until nothing is left to send now;
/// `poll_timeout` is the earliest deadline of every timer (keepalive, link loss,
/// retransmissions, handshake retransmission, rekey by age, key reject, reassembly, unlock).
/// Every `now` must be from one monotonic clock.
///
/// # Addresses
///
/// Every datagram comes with its source address, and every datagram to send says where it
/// goes. The link only compares addresses; a transport that has none (a radio modem) may
/// use any fixed value per end. The peer's address moves only when a frame authenticates
/// under the current session (the newest seen) or a handshake completes; handshake replies
/// and refusals go to the source of what they answer and never move the peer. A forged,
/// replayed or refused datagram therefore cannot redirect the link.
///
/// A datagram that is malformed, forged, replayed or for an expired key is dropped: the
/// error is returned for logging, counted in [`Link::stats`], and the link carries on
/// unchanged. An authenticated frame whose body breaks the protocol is dropped and counted
/// too; its counter stays consumed (it did come from the peer).
///
/// Steady-state sending and receiving allocates nothing: buffers are recycled through an
/// internal pool (hand delivered messages back with [`Link::recycle`]).
pub struct Link<P: AeadProvider = RustCrypto> {
    endpoint: Endpoint,
    connection: Connection<P>,
}

/// The endpoint's and the connection's generators: one key from the caller's CSPRNG, two
/// ChaCha20 streams (the endpoint's is the stream the handshake vectors were made with).
fn generators(rng: &mut (impl RngCore + CryptoRng)) -> (ChaCha20Rng, ChaCha20Rng) {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let endpoint = ChaCha20Rng::from_seed(seed);
    let mut connection = ChaCha20Rng::from_seed(seed);
    connection.set_stream(1);
    zeroize::Zeroize::zeroize(&mut seed);
    (endpoint, connection)
}

impl<P: AeadProvider> Link<P> {
    /// Build an established link from a shared secret and transcript hash obtained some other
    /// way (tests, benchmarks, a handshake of your own). Both ends call this with the same
    /// secret and hash and opposite roles; `local_index` is the index this end receives on,
    /// `peer_index` the other end's, `peer` where the other end is; `rng` seeds the
    /// ephemeral keys of later key updates. No code is proven, so the storage channel starts
    /// unlocked.
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
        peer: SocketAddr,
        rng: &mut (impl RngCore + CryptoRng),
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let (endpoint_rng, connection_rng) = generators(rng);
        let mut connection = Connection::new(role, config, connection_rng, now);
        connection.install(
            None,
            handshake_secret,
            transcript_hash,
            local_index,
            peer_index,
            peer,
            true,
            now,
        );
        // Nothing here proved a code: the caller vouches for the secret.
        connection.unlock_without_code();
        Ok(Link {
            endpoint: Endpoint::without_handshakes(endpoint_rng),
            connection,
        })
    }

    /// A remote, not yet connected. Start it with [`Link::pair`] (first time, with the
    /// security code) or [`Link::connect`] (bonded).
    ///
    /// `link_id` is the aircraft's public link id. `rng` seeds the link's own generators for
    /// ephemeral keys; the link keeps no reference to it.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` fails [`Config::validate_for_handshakes`].
    pub fn remote(
        config: Config,
        identity: RemoteIdentity,
        link_id: LinkId,
        rng: &mut (impl RngCore + CryptoRng),
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        config.validate_for_handshakes()?;
        let (endpoint_rng, connection_rng) = generators(rng);
        Ok(Link {
            endpoint: Endpoint::remote(&config, identity, link_id, endpoint_rng),
            connection: Connection::new(Role::Remote, config, connection_rng, now),
        })
    }

    /// An aircraft, listening for remotes. `attempts` persists the count of failed attempts
    /// at the code (see [`crate::handshake::limits`]).
    ///
    /// # Errors
    /// [`ConfigError`] if `config` fails [`Config::validate_for_handshakes`].
    pub fn aircraft(
        config: Config,
        identity: AircraftIdentity,
        attempts: BoxedAttemptStore,
        rng: &mut (impl RngCore + CryptoRng),
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        config.validate_for_handshakes()?;
        let (endpoint_rng, connection_rng) = generators(rng);
        Ok(Link {
            endpoint: Endpoint::aircraft(&config, identity, attempts, endpoint_rng, now),
            connection: Connection::new(Role::Aircraft, config, connection_rng, now),
        })
    }

    /// Remote: link to the aircraft at `aircraft` with its security code (OPAQUE). On
    /// success the link reports [`Event::Connected`] and [`Event::Bonded`]; later sessions
    /// use [`Link::connect`] without the code.
    ///
    /// # Errors
    /// [`Error::Closed`] once closed; [`Error::Handshake`] with
    /// [`HandshakeError::WrongRole`] on the aircraft.
    pub fn pair(&mut self, code: &[u8], aircraft: SocketAddr, now: Timestamp) -> Result<(), Error> {
        self.refuse_if_closed()?;
        let index = self.connection.local_index();
        self.endpoint
            .pair(code, aircraft, index, now)
            .map_err(Error::Handshake)
    }

    /// Remote: open a session with the bonded aircraft at `aircraft` (a one-round-trip
    /// resume when the previous session can be resumed, else the full session handshake).
    ///
    /// # Errors
    /// [`Error::Closed`] once closed; [`Error::Handshake`]: [`HandshakeError::NotBonded`]
    /// before pairing, [`HandshakeError::WrongRole`] on the aircraft.
    pub fn connect(&mut self, aircraft: SocketAddr, now: Timestamp) -> Result<(), Error> {
        self.refuse_if_closed()?;
        let index = self.connection.local_index();
        self.endpoint
            .connect(aircraft, index, now)
            .map_err(Error::Handshake)
    }

    fn refuse_if_closed(&self) -> Result<(), Error> {
        if self.connection.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// The remote's identity (with its bond once paired), to persist after
    /// [`Event::Bonded`].
    pub fn remote_identity(&self) -> Option<&RemoteIdentity> {
        self.endpoint.remote_identity()
    }

    /// The aircraft's identity (with its bonds), to persist after [`Event::Bonded`] and
    /// [`Event::IdentityChanged`].
    pub fn aircraft_identity(&self) -> Option<&AircraftIdentity> {
        self.endpoint.aircraft_identity()
    }

    /// Remote: the wall clock reads `unix` (time since 1970-01-01 UTC) at `now`. The session
    /// and resume `Init`s carry a timestamp that the aircraft requires to grow for each bond,
    /// across restarts of either end (PROTOCOL.md 20.1); it is this clock plus the link time
    /// elapsed since. Call it once at start (the tokio adapter does) and again whenever the
    /// clock is corrected. Without it the timestamp is the link time since its epoch, which
    /// grows only within one run: after the remote restarts, the aircraft refuses its
    /// `Init`s (`Replayed`) until that time passes the newest it accepted. Timestamps never
    /// go backwards within a run, whatever this is set to. No effect on an aircraft.
    pub fn set_wall_clock(&mut self, unix: core::time::Duration, now: Timestamp) {
        self.endpoint.set_wall_clock(unix, now);
    }

    /// Aircraft: replace the security code (over a channel the owner trusts). Every bond is
    /// revoked and the current session ends (the remote is told with a close frame
    /// [`CloseCode::CODE_CHANGED`]); the aircraft then takes pairings with the new code.
    /// Persist [`Link::aircraft_identity`] afterwards.
    ///
    /// # Errors
    /// [`Error::Handshake`]: [`HandshakeError::WrongRole`] on a remote,
    /// [`HandshakeError::Store`] if the attempt counter cannot be reset.
    pub fn change_code(&mut self, new_code: &[u8]) -> Result<(), Error> {
        self.endpoint
            .change_code(new_code)
            .map_err(Error::Handshake)?;
        self.connection
            .end_session_with_peer(CloseCode::CODE_CHANGED);
        Ok(())
    }

    /// Aircraft: accept pairings from `now` until `now + duration`, the owner's pairing
    /// window (PROTOCOL.md 24.1). It is closed when the link is made and closes again after
    /// one successful pairing; outside it a pairing `Init` is refused
    /// ([`RefusalReason::PairingClosed`])
    /// before any attempt is spent, so nobody in radio range can spend the code's budget.
    /// Call it only on the owner's authority (a button on the aircraft, a trusted channel).
    ///
    /// # Errors
    /// [`Error::Handshake`] with [`HandshakeError::WrongRole`] on a remote.
    pub fn open_pairing_window(&mut self, duration: Duration, now: Timestamp) -> Result<(), Error> {
        self.endpoint
            .open_pairing_window(now + duration)
            .map_err(Error::Handshake)
    }

    /// Aircraft: close the pairing window now (nothing happens on a remote).
    pub fn close_pairing_window(&mut self) {
        self.endpoint.close_pairing_window();
    }

    /// Aircraft: whether a pairing `Init` arriving at `now` would be considered.
    pub fn pairing_window_open(&self, now: Timestamp) -> bool {
        self.endpoint.pairing_window_open(now)
    }

    /// Aircraft: forget every failed attempt, pairing and storage unlock, on the owner's
    /// authority (a trusted channel): the only way, besides a code change, to end the lock
    /// the total of failed unlocks sets (PROTOCOL.md 24.2).
    ///
    /// # Errors
    /// [`Error::Handshake`]: [`HandshakeError::WrongRole`] on a remote,
    /// [`HandshakeError::Store`] if the attempt store cannot be written.
    pub fn reset_attempts(&mut self) -> Result<(), Error> {
        self.endpoint.reset_attempts().map_err(Error::Handshake)
    }

    /// Failed pairing attempts left before the aircraft locks pairing out (aircraft only).
    pub fn remaining_attempts(&self) -> Option<u32> {
        self.endpoint.remaining_attempts()
    }

    /// Failed storage unlocks the running session's bond may still make before its own
    /// lockout or the total's (aircraft only; 0 without a session).
    pub fn remaining_unlocks(&self) -> Option<u32> {
        self.endpoint.remaining_unlocks()
    }

    /// OPAQUE evaluations and X25519 operations the aircraft spent on initiations and
    /// unlocks.
    pub fn handshake_crypto_ops(&self) -> u64 {
        self.endpoint.expensive_ops()
    }

    /// True once a session is up and confirmed: application data flows.
    pub fn is_connected(&self) -> bool {
        self.connection.is_connected()
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.connection.role()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        self.connection.config()
    }

    /// Counters of everything sent, received and dropped.
    pub fn stats(&self) -> &Stats {
        self.connection.stats()
    }

    /// True once the link is closed for good (locally or by the peer): nothing is sent or
    /// accepted any more, handshakes included.
    pub fn is_closed(&self) -> bool {
        self.connection.is_closed()
    }

    /// The session index this end receives on.
    pub fn local_index(&self) -> u32 {
        self.connection.local_index()
    }

    /// Every index this link receives on now: its session's (if it has had one) and, on a
    /// remote, that of the handshake under way (a fresh one per handshake, so a new session
    /// is not linkable to the last by its index). Frames name one of them as receiver; a
    /// [`crate::Fleet`] routes by them.
    pub fn receive_indices(&self) -> [Option<u32>; 2] {
        let session = Some(self.connection.local_index()).filter(|&i| i != 0);
        [session, self.endpoint.handshake_index()]
    }

    /// What this end knows of the path to the peer: the bottleneck rate and round trip it
    /// measured from the peer's feedback, the rate it paces video and storage at, the loss.
    pub fn path_estimate(&self) -> crate::PathEstimate {
        self.connection.path_estimate()
    }

    /// Where the peer is: set by a completed handshake, moved only by authenticated frames.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.connection.peer()
    }

    /// True if anything is queued to send (messages, retransmissions, acks, replies).
    pub fn has_pending_send(&self) -> bool {
        self.connection.has_pending_send() || self.endpoint.has_pending_send()
    }

    /// Reliable messages queued or in flight (not yet acknowledged).
    pub fn storage_unacked(&self) -> usize {
        self.connection.storage_unacked()
    }

    /// Bytes held for video reassembly and reliable reordering: bounded by the configuration.
    pub fn reassembly_bytes(&self) -> usize {
        self.connection.reassembly_bytes()
    }

    /// Queue a message on a channel.
    ///
    /// `Control` keeps only the newest unsent message; the others queue up to
    /// `send_queue_len` messages.
    ///
    /// # Errors
    /// - [`SendError::Closed`] after the link closed;
    /// - [`SendError::NotAllowed`] for a channel this role may not send on;
    /// - [`SendError::StorageLocked`] on `Storage` before the code was proven;
    /// - [`SendError::MessageSize`] for an empty message or one over the channel's maximum;
    /// - [`SendError::QueueFull`] when the channel's queue is full.
    pub fn send(&mut self, channel: Channel, payload: &[u8]) -> Result<(), SendError> {
        self.connection.send(channel, payload)
    }

    /// Withdraw the storage messages queued whose first byte has not been sent yet, and say
    /// how many: the application stopped a transfer (the flight ended, the pilot cancelled)
    /// and what follows must not wait behind it. A message partly sent is finished, so the
    /// peer still receives whole messages, in order; what was sent is still retransmitted
    /// until acknowledged. The storage queue holds up to `send_queue_len` messages of up to
    /// `max_storage_message` bytes (64 MiB by default): seconds of a narrow radio. Room it
    /// frees is reported as [`Event::Writable`] to a sender that was refused.
    ///
    /// ```text
    /// queue: [chunk 7 (half sent) | chunk 8 | chunk 9 | ... ]   discard_unsent_storage() = n
    ///     →  [chunk 7 (half sent)]                              send(Storage, answer)
    ///     →  [chunk 7 (half sent) | answer]
    /// ```
    pub fn discard_unsent_storage(&mut self) -> usize {
        self.connection.discard_unsent_storage()
    }

    /// Send a message without copying it: the application writes it into its datagram
    /// buffer at [`PAYLOAD_OFFSET`], `buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + len]`, and
    /// the link seals it there, around it, when it would be the next frame anyway: a control
    /// or telemetry message with nothing ahead of it in the send order (PROTOCOL.md 13).
    /// Then `Some(transmit)`: send `buf[..transmit.len]` now. Otherwise the message is
    /// queued as by [`Link::send`] (one copy) and `None` comes back: it leaves through
    /// `poll_transmit`, behind what goes first.
    ///
    /// ```text
    /// app: buf[PAYLOAD_OFFSET..][..len] = message   link: header | message | tag
    ///      send_in_place(now, ch, buf, len) ───────────────▶ Some(Transmit) → socket
    /// ```
    ///
    /// `buf` must hold `PAYLOAD_OFFSET + len + 16` bytes (the tag).
    ///
    /// # Errors
    /// As [`Link::send`], and [`SendError::MessageSize`] if `buf` cannot hold the frame.
    pub fn send_in_place(
        &mut self,
        now: Timestamp,
        channel: Channel,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Option<Transmit>, SendError> {
        let sealed = self.connection.send_in_place(now, channel, buf, len)?;
        Ok(sealed.map(|s| Transmit {
            destination: s.destination,
            len: s.len,
            frame_type: s.frame_type,
            channel: s.channel,
        }))
    }

    /// Close the link for good: a close frame is sent by the next `poll_transmit`, then
    /// nothing else, and nothing is accepted any more.
    pub fn close(&mut self, code: CloseCode) {
        self.connection.close(code);
    }

    /// Remote: prove the security code again to open the aircraft's onboard storage. The
    /// result arrives as [`Event::StorageUnlocked`] or [`Event::StorageUnlockRejected`]
    /// ([`Event::HandshakeFailed`] with a timeout if the aircraft never answers).
    ///
    /// # Errors
    /// [`Error::Handshake`] with [`HandshakeError::WrongRole`] on the aircraft, or
    /// [`Error::Closed`] without a session.
    pub fn unlock_storage(&mut self, code: &[u8], now: Timestamp) -> Result<(), Error> {
        if self.role() != Role::Remote {
            return Err(Error::Handshake(HandshakeError::WrongRole));
        }
        self.connection.unlock_storage(code, now)
    }

    /// Remote: leave the key stretching of a pairing and of a storage unlock (Argon2id, tens
    /// to hundreds of milliseconds each) to the caller instead of running it inside
    /// [`Link::handle_datagram`], where it would hold up every other frame of the link, the
    /// pilot's control included (and on a [`crate::Fleet`], every other link). Off by
    /// default; the tokio adapter turns it on and runs the stretching on a blocking thread.
    ///
    /// ```text
    ///  handle_datagram(Response | UnlockResponse) ──▶ Event::KeyStretchReady
    ///  poll_key_stretch() ──▶ KeyStretch ── run() elsewhere ──▶ KeyStretched
    ///  handle_key_stretched(now, KeyStretched) ──▶ poll_transmit sends the Finish
    /// ```
    ///
    /// Until the result comes back the link carries on as usual; the handshake timeout
    /// ([`crate::handshake::HandshakeConfig::timeout`]) still runs. A pairing may have up
    /// to three responses under evaluation at once (the aircraft's, a corrupted copy, a
    /// forgery: SECURITY.md finding 2), so run every job that comes.
    pub fn set_defer_key_stretching(&mut self, defer: bool) {
        self.endpoint.set_defer_key_stretching(defer);
        self.connection.set_defer_key_stretching(defer);
    }

    /// Remote: a key stretching waiting to be run, each once, after
    /// [`Event::KeyStretchReady`]; `None` if there is none (or they were taken).
    pub fn poll_key_stretch(&mut self) -> Option<KeyStretch> {
        self.endpoint
            .poll_key_stretch()
            .or_else(|| self.connection.poll_key_stretch())
    }

    /// Remote: whether a key stretching waits to be taken by [`Link::poll_key_stretch`].
    pub(crate) fn has_key_stretch(&self) -> bool {
        self.endpoint.has_key_stretch() || self.connection.has_key_stretch()
    }

    /// Remote: the result of [`KeyStretch::run`]: the pairing or the unlock goes on (with
    /// [`Event::Connected`] or [`Event::PairingRejected`], [`Event::StorageUnlocked`] or
    /// [`Event::StorageUnlockRejected`], as if it had run inside the link). A result whose
    /// attempt was given up, started again or replaced, or whose session ended, is dropped.
    pub fn handle_key_stretched(&mut self, now: Timestamp, done: KeyStretched) {
        match done.purpose {
            Purpose::Pair => {
                let mut events = Vec::new();
                let result = self.endpoint.handle_key_stretched(now, done, &mut events);
                match result {
                    // A stale result: nothing changed, no datagram to account for.
                    Err(HandshakeError::Unexpected) => {}
                    // The response it evaluated is dropped now, and counted as if it had
                    // been evaluated on arrival.
                    Err(e) => self.connection.stats_mut().count_drop(&Error::Handshake(e)),
                    Ok(()) => {}
                }
                // The response came from the aircraft dialled (no other is heard), which
                // becomes the peer if the pairing completed.
                let aircraft = self.endpoint.dialled();
                self.apply(events, aircraft, now);
            }
            Purpose::Unlock => self.connection.handle_key_stretched(done),
        }
    }

    /// True once the storage channel is open on this session.
    pub fn storage_unlocked(&self) -> bool {
        self.connection.storage_unlocked()
    }

    /// Take one datagram from the network, with the address it came from.
    ///
    /// # Errors
    /// Why the datagram was dropped (see [`Error`]); a datagram that fails authentication
    /// changes nothing, and every drop is counted in [`Link::stats`].
    pub fn handle_datagram(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), Error> {
        let stats = self.connection.stats_mut();
        stats.datagrams_received += 1;
        stats.bytes_received += datagram.len() as u64;
        let result = self.receive(now, from, datagram);
        if let Err(e) = &result {
            self.connection.stats_mut().count_drop(e);
        }
        result
    }

    /// Take one datagram from the network, decrypting it in its own buffer: a control or
    /// telemetry message is not copied into an [`Event::Message`] but comes back where it
    /// lies (`Some(InPlace)`, valid until `datagram` is reused). Everything else is as
    /// [`Link::handle_datagram`]; the bytes of `datagram` are changed either way.
    ///
    /// # Errors
    /// As [`Link::handle_datagram`].
    pub fn handle_datagram_in_place(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<Option<InPlace>, Error> {
        let stats = self.connection.stats_mut();
        stats.datagrams_received += 1;
        stats.bytes_received += datagram.len() as u64;
        let result = self.receive_frame(now, from, datagram);
        match result {
            Ok(Some(channel)) => {
                let range = HEADER_LEN..datagram.len() - TAG_LEN;
                self.connection.delivered_in_place(channel, range.len());
                Ok(Some(InPlace { channel, range }))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.connection.stats_mut().count_drop(&e);
                Err(e)
            }
        }
    }

    fn receive(&mut self, now: Timestamp, from: SocketAddr, datagram: &[u8]) -> Result<(), Error> {
        // Opened in a copy the link owns, which becomes the message if it is a whole one.
        let mut frame = self.connection.scratch_copy(datagram);
        match self.receive_frame(now, from, &mut frame) {
            Ok(Some(channel)) => {
                self.connection.deliver_frame(channel, frame);
                Ok(())
            }
            other => {
                self.connection.put_back_scratch(frame);
                other.map(|_| ())
            }
        }
    }

    /// Handle one datagram, decrypting it in place. `Ok(Some(channel))`: its plaintext,
    /// `frame[HEADER_LEN..len - TAG_LEN]`, is a whole message for the application.
    fn receive_frame(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        frame: &mut [u8],
    ) -> Result<Option<Channel>, Error> {
        self.refuse_if_closed()?;
        let header = Header::parse(&Frame::new_checked(&*frame)?)?;
        if !header.frame_type.is_encrypted() {
            let mut events = Vec::new();
            let index = self.connection.local_index();
            let answer = self.endpoint.handle(now, from, frame, index, &mut events);
            self.apply(events, Some(from), now);
            if answer.map_err(Error::Handshake)? == Answer::Reconfirm {
                self.connection.reconfirm();
            }
            return Ok(None);
        }
        let counter = self.connection.open(now, from, &header, frame)?;
        let mut events = Vec::new();
        self.endpoint.on_authenticated(now, &mut events);
        self.apply(events, Some(from), now);
        let plaintext = &frame[HEADER_LEN..frame.len() - TAG_LEN];
        self.connection
            .dispatch(now, &header, counter, plaintext, &mut self.endpoint)
    }

    /// Turn what the endpoint reported into sessions and application events. `from` is the
    /// source of the datagram that caused them (none for timers, which establish nothing).
    fn apply(&mut self, events: Vec<HsEvent>, from: Option<SocketAddr>, now: Timestamp) {
        for event in events {
            let app_event = match event {
                HsEvent::Established(e) => {
                    if let Some(from) = from {
                        self.establish(e, from, now);
                    }
                    continue;
                }
                HsEvent::Confirmed => {
                    self.connection.confirm();
                    match self.connection.session_kind() {
                        Some(kind) => Event::Connected { kind },
                        None => continue,
                    }
                }
                HsEvent::PairingRejected { remaining_attempts } => {
                    Event::PairingRejected { remaining_attempts }
                }
                HsEvent::LockedOut { until } => Event::LockedOut { until },
                HsEvent::Refused {
                    reason,
                    remaining_attempts,
                    retry_at,
                } => {
                    if reason == RefusalReason::LockedOut {
                        self.connection
                            .push_event(Event::LockedOut { until: retry_at });
                    }
                    Event::HandshakeRefused {
                        reason,
                        remaining_attempts,
                        retry_at,
                    }
                }
                HsEvent::Bonded => Event::Bonded,
                HsEvent::IdentityChanged => Event::IdentityChanged,
                HsEvent::KeyStretchReady => Event::KeyStretchReady,
                HsEvent::Unconfirmed => {
                    self.connection.abandon_keys();
                    Event::HandshakeFailed {
                        error: HandshakeError::Timeout,
                    }
                }
                HsEvent::Failed(error) => Event::HandshakeFailed { error },
            };
            self.connection.push_event(app_event);
        }
    }

    /// A handshake completed with `from`: it is the peer of the new session.
    fn establish(&mut self, e: Established, from: SocketAddr, now: Timestamp) {
        let aircraft = self.role() == Role::Aircraft;
        self.connection.install(
            Some(e.kind),
            &e.handshake_secret,
            &e.transcript_hash,
            e.local_index,
            e.peer_index,
            from,
            aircraft,
            now,
        );
        self.connection.stats_mut().handshakes_completed += 1;
        self.endpoint
            .set_resumption(resumption(&e.handshake_secret, &e.transcript_hash), now);
        if aircraft {
            // Tell the remote at once that the session is up.
            self.connection.reconfirm();
            self.connection
                .push_event(Event::Connected { kind: e.kind });
        }
    }

    /// The remote reconnects by itself when the link is lost (if configured and bonded).
    fn on_link_lost(&mut self, now: Timestamp) {
        if !self.config().reconnect_on_loss || !self.endpoint.can_reconnect() {
            return;
        }
        if let Some(aircraft) = self.connection.peer() {
            let index = self.connection.local_index();
            let _ = self.endpoint.connect(aircraft, index, now);
        }
    }

    /// Write the next datagram to send into `buf`, highest priority first.
    ///
    /// `buf` must hold at least `config.mtu` bytes; with a smaller one nothing is written
    /// (and [`Stats::transmit_buffer_too_small`] counts the call). Returns `None` when
    /// nothing is due now.
    pub fn poll_transmit(&mut self, now: Timestamp, buf: &mut [u8]) -> Option<Transmit> {
        if buf.len() < self.config().mtu {
            self.connection.stats_mut().transmit_buffer_too_small += 1;
            return None;
        }
        if self.connection.is_closed() {
            return None;
        }
        if let Some((destination, frame)) = self.endpoint.poll_transmit(now) {
            let stats = self.connection.stats_mut();
            let Some(dst) = buf.get_mut(..frame.len()) else {
                stats.transmit_buffer_too_small += 1;
                return None;
            };
            dst.copy_from_slice(&frame);
            stats.datagrams_sent += 1;
            stats.bytes_sent += frame.len() as u64;
            return Some(Transmit {
                destination,
                len: frame.len(),
                frame_type: FrameType::from_u8(frame[1]).ok()?,
                channel: None,
            });
        }
        let had_keys = self.connection.has_keys();
        let sealed = self.connection.poll_transmit(now, buf);
        if had_keys && !self.connection.has_keys() && !self.connection.is_closed() {
            // The session's keys wore out: a bonded remote starts another.
            self.on_link_lost(now);
        }
        let sealed = sealed?;
        Some(Transmit {
            destination: sealed.destination,
            len: sealed.len,
            frame_type: sealed.frame_type,
            channel: sealed.channel,
        })
    }

    /// The earliest time at which [`Link::handle_timeout`] (or `poll_transmit`) has work:
    /// the earliest deadline of every timer of the endpoint and the connection.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.connection.is_closed() {
            return None;
        }
        earliest(self.endpoint.poll_timeout(), self.connection.poll_timeout())
    }

    /// Run every timer due at `now`. (Keepalives and retransmissions that are due come out
    /// of the next `poll_transmit`.)
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.connection.is_closed() {
            return;
        }
        let mut events = Vec::new();
        self.endpoint.handle_timeout(now, &mut events);
        self.apply(events, None, now);
        if self.connection.handle_timeout(now) {
            self.on_link_lost(now);
        }
    }

    /// Is a storage retransmission due at `now`?
    pub fn retransmit_due(&self, now: Timestamp) -> bool {
        self.connection.retransmit_due(now)
    }

    /// The next event for the application, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.connection.poll_event()
    }

    /// Hand a delivered message's buffer back, so the link reuses it instead of allocating.
    pub fn recycle(&mut self, message: Message) {
        self.connection.recycle(message);
    }
}

impl<P: AeadProvider> core::fmt::Debug for Link<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Link")
            .field("role", &self.role())
            .field("provider", &P::NAME)
            .field("local_index", &self.local_index())
            .field("peer", &self.peer_addr())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
