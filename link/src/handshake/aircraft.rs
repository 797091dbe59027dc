//! The aircraft's side of the handshakes: cheap checks first, expensive cryptography only
//! for initiations that pass them.
//!
//! Order of checks on an `Init`, cheapest first: parse; look up the bond (session) or the
//! ticket (resume); `mac1`, keyed by the public link id and, for a session, the bond key or,
//! for a resume, the resumption secret, so only a bonded remote or the holder of the
//! previous session gets past it; a byte-identical retransmission of the pending `Init` gets
//! the cached response, at most once per half `retry_initial` (no new work, no new attempt,
//! no more answers than a genuine remote asks for); for a pairing, a KE1 that decodes and
//! the owner's pairing window; the rate limiter (a token bucket); for a pairing the attempt
//! guard. Only then OPAQUE or X25519 runs, and
//! `AircraftHandshake::expensive_ops` counts it. A pairing `Finish` is checked (KE3) before
//! the X25519 that makes the bond.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::time::Duration;

use rand_core::{CryptoRng, RngCore};
use x25519_dalek::PublicKey;

use super::identity::{AircraftIdentity, HandshakeTimestamp};
use super::keys::{
    confirm_eq, contributory, keyed_secrets, mac1_valid, pair_context, prologue, transcript_hash,
    Resumption,
};
use super::limits::{self, AttemptGuard, AttemptStore};
use super::noise::{self, Ephemeral, NoiseHandshake, Pattern};
use super::pake::{self, ServerLogin};
use super::{Established, HandshakeConfig, HandshakeError, HsEvent};
use crate::crypto::{label, Secret};
use crate::wire::handshake::{
    self as messages, Finish, Init, InitBody, Kind, Refusal, RefusalReason, Response, ResponseBody,
    CONFIRM_LEN, MESSAGE2_LEN, SUITE_V2,
};
use crate::wire::{FrameType, HEADER_LEN};
use crate::Timestamp;

/// The attempt store the aircraft uses, boxed so that the app picks the implementation.
pub type BoxedAttemptStore = Box<dyn AttemptStore + Send>;

enum PendingKind {
    Pair {
        server: ServerLogin,
        context: [u8; 32],
        remote_static: PublicKey,
        remaining_attempts: u32,
    },
    Keyed {
        kind: Kind,
        confirm_remote: [u8; CONFIRM_LEN],
        handshake_secret: Secret,
        transcript_hash: [u8; 32],
    },
}

struct Pending {
    kind: PendingKind,
    /// The remote's static public key: the bond the session will belong to.
    remote: [u8; 32],
    init_frame: Vec<u8>,
    response_frame: Vec<u8>,
    /// When `response_frame` was last sent (first for the `Init`, then for its copies).
    answered_at: Timestamp,
    remote_index: u32,
    local_index: u32,
    started: Timestamp,
}

/// A token bucket: `rate` initiations per second, bursts of `rate`.
struct Bucket {
    tokens_micro: u64,
    last: Timestamp,
}

impl Bucket {
    fn full(rate: u32, now: Timestamp) -> Self {
        Bucket {
            tokens_micro: u64::from(rate) * 1_000_000,
            last: now,
        }
    }

    fn take(&mut self, rate: u32, now: Timestamp) -> bool {
        let rate = u64::from(rate);
        let elapsed = now.saturating_since(self.last).as_micros() as u64;
        self.last = now;
        self.tokens_micro =
            (self.tokens_micro + elapsed.saturating_mul(rate)).min(rate * 1_000_000);
        if self.tokens_micro >= 1_000_000 {
            self.tokens_micro -= 1_000_000;
            true
        } else {
            false
        }
    }
}

/// Session and resume initiations remembered, so that a replayed one costs no X25519.
const RECENT_INITS: usize = 256;

/// The aircraft's handshake state.
pub(crate) struct AircraftHandshake {
    identity: AircraftIdentity,
    guard: AttemptGuard<BoxedAttemptStore>,
    config: HandshakeConfig,
    pending: Option<Pending>,
    /// The Init and Finish of the session last established, to recognise retransmissions.
    last_init: Option<Vec<u8>>,
    last_finish: Option<Vec<u8>>,
    resumption: Option<(Resumption, Timestamp)>,
    /// Pairings and keyed handshakes have separate budgets, so that a flood of pairing
    /// attempts (which only need the public link id) cannot crowd out bonded remotes.
    pair_bucket: Bucket,
    keyed_bucket: Bucket,
    /// Ephemeral keys of recent session and resume initiations.
    recent_ephemerals: alloc::collections::VecDeque<[u8; 32]>,
    /// OPAQUE evaluations and X25519 operations performed for initiations and unlocks.
    expensive_ops: u64,
    /// Pairings are accepted until this time; closed when `None` (the default).
    pairing_window: Option<Timestamp>,
    /// The bond (remote static public key) of the session last established: whose unlock
    /// budget a storage unlock spends.
    session_remote: Option<[u8; 32]>,
}

/// Whose budget a guarded OPAQUE evaluation spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A pairing: the pairing budget (only inside the pairing window).
    Pair,
    /// A storage unlock in the running session: that session's bond's unlock budget.
    Unlock,
}

/// Why the guarded OPAQUE evaluation did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guarded {
    /// KE1 is not a valid OPAQUE request: no attempt was spent on it.
    Malformed,
    /// Too soon after a failed attempt.
    BackOff { retry_at: Timestamp },
    /// Too many failed attempts.
    LockedOut { until: Timestamp },
    /// The attempt counter could not be read or saved: no attempt runs without it.
    Store,
    /// Only an aircraft evaluates OPAQUE.
    NotAircraft,
}

/// A guarded OPAQUE evaluation that ran: the server state and its KE2.
pub(crate) struct GuardedLogin {
    pub(crate) server: ServerLogin,
    pub(crate) ke2: Vec<u8>,
    /// Failed attempts left if this one fails too.
    pub(crate) remaining: u32,
}

/// What an aircraft-side handshake datagram asks the link to do.
pub(crate) enum Reply {
    /// Nothing to send.
    None,
    /// Send this handshake frame.
    Send(Vec<u8>),
    /// A retransmitted `Finish` of the current session: send an authenticated frame so the
    /// remote learns the session is up.
    Reconfirm,
}

impl AircraftHandshake {
    pub(crate) fn new(
        identity: AircraftIdentity,
        attempts: BoxedAttemptStore,
        limits: limits::LimitsConfig,
        config: HandshakeConfig,
        now: Timestamp,
    ) -> Self {
        AircraftHandshake {
            identity,
            guard: AttemptGuard::new(limits, attempts),
            pair_bucket: Bucket::full(config.rate_per_second, now),
            keyed_bucket: Bucket::full(config.rate_per_second, now),
            recent_ephemerals: alloc::collections::VecDeque::with_capacity(RECENT_INITS),
            config,
            pending: None,
            last_init: None,
            last_finish: None,
            resumption: None,
            expensive_ops: 0,
            pairing_window: None,
            session_remote: None,
        }
    }

    /// Accept pairings until `until` (a successful pairing closes the window).
    pub(crate) fn open_pairing_window(&mut self, until: Timestamp) {
        self.pairing_window = Some(until);
    }

    /// Refuse pairings from now on.
    pub(crate) fn close_pairing_window(&mut self) {
        self.pairing_window = None;
    }

    pub(crate) fn pairing_window_open(&self, now: Timestamp) -> bool {
        self.pairing_window.is_some_and(|until| now < until)
    }

    pub(crate) fn identity(&self) -> &AircraftIdentity {
        &self.identity
    }

    pub(crate) fn remaining_attempts(&self) -> u32 {
        self.guard.remaining_attempts()
    }

    /// Failed unlocks the running session's bond may still make.
    pub(crate) fn remaining_unlocks(&self) -> u32 {
        self.session_remote
            .map_or(0, |bond| self.guard.remaining_unlocks(&bond))
    }

    pub(crate) fn expensive_ops(&self) -> u64 {
        self.expensive_ops
    }

    /// The one guarded OPAQUE evaluation, for pairing and for storage unlock alike: KE1 is
    /// checked first (garbage must not cost the owner an attempt), then an attempt is
    /// counted against the budget of `purpose` and saved, then OPAQUE runs with the context
    /// `context(remaining)` gives.
    pub(crate) fn guarded_login(
        &mut self,
        now: Timestamp,
        ke1: &[u8],
        purpose: Purpose,
        context: impl FnOnce(u32) -> [u8; 32],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<GuardedLogin, Guarded> {
        pake::check_ke1(ke1).map_err(|_| Guarded::Malformed)?;
        let permit = match purpose {
            Purpose::Pair => self.guard.begin(now),
            Purpose::Unlock => {
                let bond = self.session_remote.ok_or(Guarded::NotAircraft)?;
                self.guard.begin_unlock(&bond, now)
            }
        };
        let remaining = match permit {
            Ok(permit) => permit.remaining_attempts_after_this_one,
            Err(limits::Refusal::BackOff { retry_at }) => {
                return Err(Guarded::BackOff { retry_at })
            }
            Err(limits::Refusal::LockedOut { until }) => return Err(Guarded::LockedOut { until }),
            Err(limits::Refusal::Store(_)) => return Err(Guarded::Store),
        };
        self.expensive_ops += 1;
        let (server, ke2) =
            pake::server_start(self.identity.password(), ke1, &context(remaining), rng)
                .map_err(|_| Guarded::Malformed)?;
        Ok(GuardedLogin {
            server,
            ke2,
            remaining,
        })
    }

    /// The code was proven in a storage unlock: that bond's failures are cleared (and only
    /// they). Returns the unlocks it has left.
    pub(crate) fn unlock_proven(&mut self) -> u32 {
        if let Some(bond) = self.session_remote {
            // A failure to persist only leaves the count high: fail safe.
            let _ = self.guard.unlock_succeeded(&bond);
        }
        self.remaining_unlocks()
    }

    /// Replace the code: revokes every bond and resumable session and clears the failure
    /// count (the owner proved control over a trusted channel).
    pub(crate) fn change_code(
        &mut self,
        new_code: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), HandshakeError> {
        self.identity
            .change_code(new_code, rng)
            .map_err(|_| HandshakeError::Malformed)?;
        self.resumption = None;
        self.pending = None;
        self.last_init = None;
        self.last_finish = None;
        self.session_remote = None;
        self.reset_attempts()
    }

    /// Forget every failed attempt, pairing and unlock (the owner's call).
    pub(crate) fn reset_attempts(&mut self) -> Result<(), HandshakeError> {
        self.guard.reset().map_err(|_| HandshakeError::Store)
    }

    pub(crate) fn set_resumption(&mut self, resumption: Option<Resumption>, now: Timestamp) {
        self.resumption = resumption.map(|r| (r, now));
    }

    /// Keep the resumption state alive while the session is in use.
    pub(crate) fn touch(&mut self, now: Timestamp) {
        if let Some((_, last)) = &mut self.resumption {
            *last = now;
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.pending
            .as_ref()
            .map(|p| p.started + self.config.timeout)
    }

    pub(crate) fn handle_timeout(&mut self, now: Timestamp, events: &mut impl FnMut(HsEvent)) {
        if let Some(p) = &self.pending {
            if now >= p.started + self.config.timeout {
                if let PendingKind::Pair {
                    remaining_attempts, ..
                } = p.kind
                {
                    // No valid final message: the attempt stays counted as a failure.
                    events(HsEvent::PairingRejected { remaining_attempts });
                }
                self.pending = None;
            }
        }
        if let Some((_, last)) = &self.resumption {
            if now >= *last + self.config.resume_lifetime {
                self.resumption = None;
            }
        }
    }

    /// Take a handshake datagram.
    pub(crate) fn handle(
        &mut self,
        now: Timestamp,
        datagram: &[u8],
        local_index: u32,
        rng: &mut (impl RngCore + CryptoRng),
        events: &mut impl FnMut(HsEvent),
    ) -> Result<Reply, HandshakeError> {
        let (header, payload) = messages::parse_frame(datagram)?;
        match header.frame_type {
            FrameType::HandshakeInit => {
                let init = Init::parse(payload)?;
                self.on_init(now, datagram, &init, local_index, rng, events)
            }
            FrameType::HandshakeFinish => {
                let finish = Finish::parse(payload)?;
                self.on_finish(header.receiver_index, datagram, &finish, events)
            }
            _ => Err(HandshakeError::Unexpected),
        }
    }

    fn refuse(&self, remote_index: u32, reason: RefusalReason, retry_after: Duration) -> Reply {
        let refusal = Refusal {
            reason,
            remaining_attempts: self.guard.remaining_attempts(),
            retry_after_ms: u32::try_from(retry_after.as_millis()).unwrap_or(u32::MAX),
        };
        Reply::Send(messages::frame(
            FrameType::CookieReply,
            remote_index,
            &refusal.emit(),
        ))
    }

    fn on_init(
        &mut self,
        now: Timestamp,
        frame: &[u8],
        init: &Init<'_>,
        local_index: u32,
        rng: &mut (impl RngCore + CryptoRng),
        events: &mut impl FnMut(HsEvent),
    ) -> Result<Reply, HandshakeError> {
        if init.suite != SUITE_V2 {
            return Err(HandshakeError::Malformed);
        }
        let link_id = self.identity.link_id();
        let mac_ok = match init.body {
            InitBody::Pair { .. } => mac1_valid(&link_id, &[], frame),
            InitBody::Session { bond_id, .. } => match self.identity.find_bond(&bond_id) {
                Some((_, key)) => mac1_valid(&link_id, key.expose(), frame),
                None => {
                    let reason = RefusalReason::UnknownBond;
                    return Ok(self.refuse(init.sender_index, reason, Duration::ZERO));
                }
            },
            InitBody::Resume { ticket, .. } => match &self.resumption {
                Some((r, last))
                    if confirm_eq(&r.ticket, &ticket)
                        && now < *last + self.config.resume_lifetime =>
                {
                    mac1_valid(&link_id, r.secret.expose(), frame)
                }
                _ => {
                    let reason = RefusalReason::UnknownTicket;
                    return Ok(self.refuse(init.sender_index, reason, Duration::ZERO));
                }
            },
        };
        if !mac_ok {
            return Err(HandshakeError::BadMac);
        }
        // The bond the session will belong to (whose unlock budget it spends): known for
        // every Init that passed mac1, looked up before anything changes.
        let remote = match init.body {
            InitBody::Pair { remote_static, .. } => Some(remote_static),
            InitBody::Session { bond_id, .. } => self
                .identity
                .find_bond(&bond_id)
                .map(|(remote_static, _)| remote_static.to_bytes()),
            InitBody::Resume { .. } => self.session_remote,
        };
        let Some(remote) = remote else {
            return Err(HandshakeError::Unexpected); // a bond or ticket passed mac1
        };
        if let Some(p) = &mut self.pending {
            if p.init_frame == frame {
                // A retransmission: the cached response, at most once per half of
                // `retry_initial` (the shortest interval at which a genuine remote
                // retransmits; half, for jitter between two copies). The response is larger
                // than the `Init` (2.3 times for a pairing), so answering every copy would
                // let a spoofed source amplify without bound; a fixed number of answers
                // instead strands a genuine remote whose responses the radio lost that many
                // times, with its pairing attempt spent.
                let gap = self.config.retry_initial / 2;
                if now < p.answered_at + gap {
                    return Ok(Reply::None);
                }
                p.answered_at = now;
                return Ok(Reply::Send(p.response_frame.clone()));
            }
        }
        if self.last_init.as_deref() == Some(frame) {
            // A late retransmission of the handshake that made the current session.
            return Ok(Reply::None);
        }
        if let InitBody::Pair { ke1, .. } = init.body {
            // Garbage must not cost the owner an attempt, nor a token of the bucket.
            pake::check_ke1(ke1).map_err(|_| HandshakeError::Malformed)?;
            if !self.pairing_window_open(now) {
                // Outside the owner's pairing window nobody spends an attempt.
                let reason = RefusalReason::PairingClosed;
                return Ok(self.refuse(init.sender_index, reason, Duration::ZERO));
            }
        }
        let ephemeral = match init.body {
            InitBody::Session { message, .. } | InitBody::Resume { message, .. } => {
                let mut ephemeral = [0u8; 32];
                ephemeral.copy_from_slice(&message[..32]);
                if self.recent_ephemerals.contains(&ephemeral) {
                    return Err(HandshakeError::Replayed);
                }
                Some(ephemeral)
            }
            InitBody::Pair { .. } => None,
        };
        let rate = self.config.rate_per_second;
        let bucket = match ephemeral {
            Some(_) => &mut self.keyed_bucket,
            None => &mut self.pair_bucket,
        };
        if !bucket.take(rate, now) {
            let wait = Duration::from_secs(1);
            return Ok(self.refuse(init.sender_index, RefusalReason::Busy, wait));
        }
        if let Some(e) = ephemeral {
            // Remembered only once it is processed: a refused one may be retransmitted.
            if self.recent_ephemerals.len() == RECENT_INITS {
                self.recent_ephemerals.pop_front();
            }
            self.recent_ephemerals.push_back(e);
        }
        let remote_index = init.sender_index;
        let (kind, response_frame) = match init.body {
            InitBody::Pair { remote_static, ke1 } => {
                let aircraft_static = self.identity.static_public().to_bytes();
                let mut response_frame = Vec::new();
                let mut context = [0u8; 32];
                let build_context = |remaining| {
                    let response = Response {
                        sender_index: local_index,
                        body: ResponseBody::Pair {
                            remaining_attempts: remaining,
                            aircraft_static,
                            ke2: &[0u8; pake::KE2_LEN],
                        },
                    };
                    response_frame = messages::frame(
                        FrameType::HandshakeResponse,
                        remote_index,
                        &response.emit(),
                    );
                    let prefix_len = response_frame.len() - pake::KE2_LEN;
                    context = pair_context(frame, &response_frame[..prefix_len]);
                    context
                };
                let login = match self.guarded_login(now, ke1, Purpose::Pair, build_context, rng) {
                    Ok(login) => login,
                    Err(Guarded::BackOff { retry_at }) => {
                        let wait = retry_at.saturating_since(now);
                        return Ok(self.refuse(remote_index, RefusalReason::BackOff, wait));
                    }
                    Err(Guarded::LockedOut { until }) => {
                        events(HsEvent::LockedOut { until });
                        let wait = until.saturating_since(now);
                        return Ok(self.refuse(remote_index, RefusalReason::LockedOut, wait));
                    }
                    Err(Guarded::Store) => return Err(HandshakeError::Store),
                    Err(Guarded::Malformed | Guarded::NotAircraft) => {
                        return Err(HandshakeError::Malformed)
                    }
                };
                if let Some(Pending {
                    kind:
                        PendingKind::Pair {
                            remaining_attempts, ..
                        },
                    ..
                }) = self.pending.take()
                {
                    // A newer pairing replaces one that never finished: that one failed.
                    events(HsEvent::PairingRejected { remaining_attempts });
                }
                let prefix_len = response_frame.len() - pake::KE2_LEN;
                response_frame[prefix_len..].copy_from_slice(&login.ke2);
                let kind = PendingKind::Pair {
                    server: login.server,
                    context,
                    remote_static: PublicKey::from(remote_static),
                    remaining_attempts: login.remaining,
                };
                (kind, response_frame)
            }
            InitBody::Session { bond_id, message } => {
                let Some((remote_static, bond_key)) = self.identity.find_bond(&bond_id) else {
                    return Err(HandshakeError::Unexpected); // checked with mac1 above
                };
                let psk: [u8; 32] = *bond_key.expose();
                let psk = zeroize::Zeroizing::new(psk);
                let keys = noise::Keys {
                    psk: &psk,
                    local_static: Some(self.identity.static_secret()),
                    remote_static: Some(&remote_static),
                };
                let prefix = &frame[..HEADER_LEN + init.noise_offset()];
                let responder = NoiseHandshake::responder(
                    Pattern::KKpsk0,
                    &prologue(label::SESSION_PROLOGUE, prefix),
                    &keys,
                    Ephemeral::random(rng),
                )?;
                // Reading message 1 costs es and ss; writing message 2 ee and se.
                self.keyed_response(
                    Kind::Session,
                    responder,
                    &message,
                    (2, 2),
                    frame,
                    remote,
                    remote_index,
                    local_index,
                    events,
                )?
            }
            InitBody::Resume { ticket, message } => {
                let secret = match &self.resumption {
                    Some((r, last))
                        if confirm_eq(&r.ticket, &ticket)
                            && now < *last + self.config.resume_lifetime =>
                    {
                        r.secret.clone()
                    }
                    _ => {
                        return Ok(self.refuse(
                            remote_index,
                            RefusalReason::UnknownTicket,
                            Duration::ZERO,
                        ))
                    }
                };
                let psk = zeroize::Zeroizing::new(*secret.expose());
                let keys = noise::Keys {
                    psk: &psk,
                    local_static: None,
                    remote_static: None,
                };
                let prefix = &frame[..HEADER_LEN + init.noise_offset()];
                let responder = NoiseHandshake::responder(
                    Pattern::NNpsk0,
                    &prologue(label::RESUME_PROLOGUE, prefix),
                    &keys,
                    Ephemeral::random(rng),
                )?;
                // Message 1 is read with the psk alone; message 2 costs ee.
                self.keyed_response(
                    Kind::Resume,
                    responder,
                    &message,
                    (0, 1),
                    frame,
                    remote,
                    remote_index,
                    local_index,
                    events,
                )?
            }
        };
        self.pending = Some(Pending {
            kind,
            remote,
            init_frame: frame.to_vec(),
            response_frame: response_frame.clone(),
            answered_at: now,
            remote_index,
            local_index,
            started: now,
        });
        Ok(Reply::Send(response_frame))
    }

    fn on_finish(
        &mut self,
        receiver_index: u32,
        frame: &[u8],
        finish: &Finish<'_>,
        events: &mut impl FnMut(HsEvent),
    ) -> Result<Reply, HandshakeError> {
        if self.last_finish.as_deref() == Some(frame) {
            return Ok(Reply::Reconfirm);
        }
        let pending = self.pending.as_ref().ok_or(HandshakeError::Unexpected)?;
        if receiver_index != pending.local_index {
            return Err(HandshakeError::Unexpected);
        }
        let (kind, secret) = match (&pending.kind, finish) {
            (
                PendingKind::Pair {
                    server,
                    context,
                    remote_static,
                    ..
                },
                Finish::Pair { ke3 },
            ) => {
                // KE3 first: a forged Finish must cost no X25519.
                let secret = server
                    .finish(ke3, context)
                    .map_err(|_| HandshakeError::AuthenticationFailed)?;
                // A bond needs a real key: a low-order point gives no shared secret.
                self.expensive_ops += 1;
                let shared = self.identity.static_secret().diffie_hellman(remote_static);
                if !contributory(&shared) {
                    return Err(HandshakeError::AuthenticationFailed);
                }
                (Kind::Pair, secret)
            }
            (
                PendingKind::Keyed {
                    kind,
                    confirm_remote,
                    handshake_secret,
                    ..
                },
                Finish::Keyed { kind: k, confirm },
            ) if kind == k => {
                if !confirm_eq(confirm_remote, confirm) {
                    return Err(HandshakeError::AuthenticationFailed);
                }
                (*kind, handshake_secret.clone())
            }
            _ => return Err(HandshakeError::Unexpected),
        };
        // Verified: now, and only now, change state.
        let Some(pending) = self.pending.take() else {
            return Err(HandshakeError::Unexpected);
        };
        if let PendingKind::Pair { remote_static, .. } = pending.kind {
            // A failure to persist the reset only leaves the count high: fail safe.
            let _ = self.guard.succeed();
            // One pairing per window: the owner opens it again for the next remote.
            self.pairing_window = None;
            self.identity.add_bond(remote_static);
            events(HsEvent::Bonded);
        }
        self.session_remote = Some(pending.remote);
        self.last_init = Some(pending.init_frame.clone());
        self.last_finish = Some(frame.to_vec());
        let transcript = match &pending.kind {
            PendingKind::Keyed {
                transcript_hash, ..
            } => *transcript_hash,
            PendingKind::Pair { .. } => {
                transcript_hash(&[&pending.init_frame, &pending.response_frame])
            }
        };
        events(HsEvent::Established(Established {
            kind,
            handshake_secret: secret,
            transcript_hash: transcript,
            local_index: pending.local_index,
            peer_index: pending.remote_index,
        }));
        Ok(Reply::Reconfirm)
    }
}

impl AircraftHandshake {
    /// The Noise half of a session or resume `Init`: read message 1 (its payload is the
    /// timestamp), refuse a timestamp not later than the bond's newest before any further
    /// work, write message 2, and derive what the `Finish` must prove. `cost` is the X25519
    /// count of reading message 1 and of writing message 2. Nothing changes on an error but
    /// the counters.
    #[allow(clippy::too_many_arguments)]
    fn keyed_response(
        &mut self,
        kind: Kind,
        mut responder: NoiseHandshake,
        message: &[u8],
        cost: (u64, u64),
        init_frame: &[u8],
        remote: [u8; 32],
        remote_index: u32,
        local_index: u32,
        events: &mut impl FnMut(HsEvent),
    ) -> Result<(PendingKind, Vec<u8>), HandshakeError> {
        self.expensive_ops += cost.0;
        let payload = responder.read_message(message)?;
        let timestamp: HandshakeTimestamp = payload[..]
            .try_into()
            .map_err(|_| HandshakeError::Malformed)?;
        let newest = self
            .identity
            .newest_timestamp(&remote)
            .ok_or(HandshakeError::Unexpected)?;
        if timestamp <= newest {
            // Recorded, or older than one already accepted: refused before ee and se.
            return Err(HandshakeError::Replayed);
        }
        self.expensive_ops += cost.1;
        // The index inside message 2: authenticated, so a changed copy fails as a whole.
        let message2 = responder.write_message(&local_index.to_be_bytes())?;
        let message2: [u8; MESSAGE2_LEN] = message2[..]
            .try_into()
            .map_err(|_| HandshakeError::Malformed)?;
        let outputs = responder.finish()?;
        let response = Response {
            sender_index: local_index,
            body: ResponseBody::Keyed {
                kind,
                message: message2,
            },
        };
        let frame = messages::frame(FrameType::HandshakeResponse, remote_index, &response.emit());
        let label = match kind {
            Kind::Resume => label::RESUME,
            _ => label::SESSION,
        };
        let s = keyed_secrets(label, &outputs, init_frame, &frame);
        // Only now, with the answer made, is the timestamp taken: the application persists
        // the identity on `IdentityChanged`.
        if self.identity.advance_timestamp(&remote, timestamp) {
            events(HsEvent::IdentityChanged);
        }
        let pending = PendingKind::Keyed {
            kind,
            confirm_remote: s.confirm_remote,
            handshake_secret: s.handshake_secret,
            transcript_hash: s.transcript_hash,
        };
        Ok((pending, frame))
    }
}
