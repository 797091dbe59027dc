//! The remote's side of the handshakes.
//!
//! ```text
//!   remote                                   aircraft
//!   Init(kind, index, body, mac1) ------->   cheap checks: mac1, rate, attempts / bond / ticket
//!                                  <-------  Response(index, body)   or   Refusal(reason)
//!   verify (OPAQUE / confirm_a);
//!   install keys; Finish --------------->    verify (KE3 / confirm_r); install keys
//!                                  <-------  first authenticated frame (a keepalive)
//!   confirmed: application data may flow
//! ```
//!
//! The `Init` is retransmitted with exponential back-off until a `Response` or a `Refusal`
//! arrives, the `Finish` until the first authenticated frame arrives. A response that does
//! not verify changes nothing. A pairing `Response` is not authenticated until OPAQUE says
//! so, and anyone who saw the `Init` can forge one, so a failed one proves nothing by
//! itself: the remote keeps waiting for the aircraft's, evaluates at most
//! [`MAX_PAIR_EVALUATIONS`] distinct ones (byte-identical copies are not evaluated again),
//! sends the `Init` once more after the first failure (in case it was corrupted on the
//! air), and only when the attempt times out (or its evaluations are spent) reports
//! `PairingRejected`: the code was wrong, or someone interfered.
//!
//! With [`RemoteHandshake::set_defer_key_stretching`] the OPAQUE finish of a pairing
//! `Response` runs outside the link ([`KeyStretch`]); the responses under evaluation count
//! against the same cap, and the attempt goes on when a result comes back
//! ([`RemoteHandshake::on_stretched`]).

use alloc::vec::Vec;
use core::time::Duration;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use x25519_dalek::PublicKey;
use zeroize::Zeroizing;

use super::identity::{Bond, RemoteIdentity};
use super::keys::{
    keyed_secrets, mac1, pair_context, prologue, transcript_hash, LinkId, Resumption,
};
use super::noise::{self, tai64n, Ephemeral, NoiseHandshake, Pattern};
use super::pake::{self, ClientLogin, KsfParams, PakeError};
use super::stretch::{KeyStretch, KeyStretched, Purpose};
use super::{Established, HandshakeConfig, HandshakeError, HsEvent};
use crate::crypto::{label, Secret};
use crate::wire::handshake::{
    self as messages, Finish, Init, InitBody, Kind, Refusal, Response, ResponseBody, MAC1_LEN,
    MESSAGE1_LEN, SUITE_V2,
};
use crate::wire::{FrameType, HEADER_LEN};
use crate::Timestamp;

/// Distinct pairing `Response`s one attempt runs the key-stretching function on: the
/// aircraft's own, plus room for a corrupted copy and one forgery. Each run is an Argon2id
/// evaluation, so without a cap every injected response would cost one.
pub(crate) const MAX_PAIR_EVALUATIONS: usize = 3;

enum Pending {
    Pair {
        client: alloc::boxed::Box<ClientLogin>,
        code: Zeroizing<Vec<u8>>,
        /// Digests of the responses that failed OPAQUE: never evaluated again.
        failed: Vec<[u8; 32]>,
        /// The attempts left that the first failed response claimed (unauthenticated).
        claimed_remaining: Option<u32>,
        /// Responses whose key stretching runs outside the link.
        evaluating: Vec<Evaluation>,
    },
    /// A session (`Noise_KKpsk0`) or resume (`Noise_NNpsk0`) handshake, message 1 sent.
    Keyed {
        kind: Kind,
        noise: alloc::boxed::Box<NoiseHandshake>,
    },
}

/// A pairing `Response` under evaluation outside the link.
struct Evaluation {
    /// The tag of its [`KeyStretch`].
    tag: u64,
    /// SHA-256 of `response`: copies are not evaluated again.
    digest: [u8; 32],
    /// The whole `Response` datagram, to finish the pairing from.
    response: Vec<u8>,
    /// There until the caller takes it.
    job: Option<alloc::boxed::Box<KeyStretch>>,
}

struct Attempt {
    pending: Pending,
    local_index: u32,
    init_frame: Vec<u8>,
    started: Timestamp,
    next_send: Timestamp,
    backoff: Duration,
}

/// A `Finish` retransmitted until the aircraft proves it has the keys.
struct Unconfirmed {
    frame: Vec<u8>,
    since: Timestamp,
    next_send: Timestamp,
    backoff: Duration,
    /// The bond a pairing made, recorded once confirmed.
    bond: Option<Bond>,
    /// How to resume the new session, taken once confirmed: until then the aircraft may
    /// not hold it, and the resumption of the previous session still works.
    resumption: Option<Resumption>,
}

/// The remote's handshake state.
pub(crate) struct RemoteHandshake {
    identity: RemoteIdentity,
    link_id: LinkId,
    ksf: KsfParams,
    config: HandshakeConfig,
    attempt: Option<Attempt>,
    unconfirmed: Option<Unconfirmed>,
    resumption: Option<Resumption>,
    /// Key-stretching (OPAQUE client finish) evaluations run, for the DoS accounting.
    ksf_runs: u64,
    /// Leave a pairing's key stretching to the caller ([`KeyStretch`]).
    defer_key_stretching: bool,
    /// Unix time (microseconds) at a link time, set by the application: the handshake
    /// timestamps grow across restarts of the remote only with it.
    wall_clock: Option<(u64, Timestamp)>,
    /// The last timestamp sent, in Unix microseconds: the next one is always later.
    last_timestamp: u64,
}

impl RemoteHandshake {
    pub(crate) fn new(
        identity: RemoteIdentity,
        link_id: LinkId,
        ksf: KsfParams,
        config: HandshakeConfig,
    ) -> Self {
        RemoteHandshake {
            identity,
            link_id,
            ksf,
            config,
            attempt: None,
            unconfirmed: None,
            resumption: None,
            ksf_runs: 0,
            defer_key_stretching: false,
            wall_clock: None,
            last_timestamp: 0,
        }
    }

    /// The wall clock reads `unix` (since 1970-01-01 UTC) at link time `now`.
    pub(crate) fn set_wall_clock(&mut self, unix: Duration, now: Timestamp) {
        let micros = u64::try_from(unix.as_micros()).unwrap_or(u64::MAX);
        self.wall_clock = Some((micros, now));
    }

    /// The timestamp of a new `Init`: the wall clock's time (or, without one, the link's
    /// time since its epoch), and always later than the previous one.
    fn next_timestamp(&mut self, now: Timestamp) -> [u8; noise::TIMESTAMP_LEN] {
        let t = match self.wall_clock {
            Some((unix, at)) => {
                let since = u64::try_from(now.saturating_since(at).as_micros()).unwrap_or(0);
                unix.saturating_add(since)
            }
            None => now.as_micros(),
        };
        let t = t.max(self.last_timestamp.saturating_add(1));
        self.last_timestamp = t;
        tai64n(t)
    }

    pub(crate) fn ksf_runs(&self) -> u64 {
        self.ksf_runs
    }

    /// Leave (or not) a pairing's key stretching to the caller.
    pub(crate) fn set_defer_key_stretching(&mut self, defer: bool) {
        self.defer_key_stretching = defer;
    }

    /// Whether a pairing's key stretching waits to be run.
    pub(crate) fn has_stretch(&self) -> bool {
        matches!(
            &self.attempt,
            Some(Attempt {
                pending: Pending::Pair { evaluating, .. },
                ..
            }) if evaluating.iter().any(|e| e.job.is_some())
        )
    }

    /// A pairing's key stretching waiting to be run, once.
    pub(crate) fn take_stretch(&mut self) -> Option<KeyStretch> {
        match &mut self.attempt {
            Some(Attempt {
                pending: Pending::Pair { evaluating, .. },
                ..
            }) => evaluating
                .iter_mut()
                .find_map(|e| e.job.take())
                .map(|job| *job),
            _ => None,
        }
    }

    /// The result of a pairing's key stretching: the attempt goes on as if the response had
    /// just been evaluated.
    ///
    /// # Errors
    /// [`HandshakeError::Unexpected`] for a result whose attempt was given up or replaced
    /// (nothing changes); otherwise as a response evaluated at once.
    pub(crate) fn on_stretched(
        &mut self,
        now: Timestamp,
        done: KeyStretched,
        events: &mut impl FnMut(HsEvent),
    ) -> Result<(), HandshakeError> {
        let Some(Attempt {
            pending: Pending::Pair { evaluating, .. },
            ..
        }) = &mut self.attempt
        else {
            return Err(HandshakeError::Unexpected);
        };
        let i = evaluating
            .iter()
            .position(|e| e.tag == done.tag)
            .ok_or(HandshakeError::Unexpected)?;
        let evaluation = evaluating.swap_remove(i);
        // Parsed when it arrived: it parses again.
        let (_, payload) = messages::parse_frame(&evaluation.response)?;
        let response = Response::parse(payload)?;
        self.pair_evaluated(
            now,
            &evaluation.response,
            &response,
            evaluation.digest,
            done.result,
            events,
        )
    }

    pub(crate) fn identity(&self) -> &RemoteIdentity {
        &self.identity
    }

    /// The index the handshake under way receives its `Response` on.
    pub(crate) fn attempt_index(&self) -> Option<u32> {
        self.attempt.as_ref().map(|a| a.local_index)
    }

    pub(crate) fn in_progress(&self) -> bool {
        self.attempt.is_some()
    }

    pub(crate) fn confirmed(&self) -> bool {
        self.unconfirmed.is_none()
    }

    /// The `Init` datagram of `body`, with `mac1` left as zeros.
    fn init_frame(body: InitBody<'_>, local_index: u32) -> (Vec<u8>, usize) {
        let init = Init {
            suite: SUITE_V2,
            sender_index: local_index,
            body,
            mac1: [0; MAC1_LEN],
        };
        let frame = messages::frame(FrameType::HandshakeInit, 0, &init.emit());
        (frame, HEADER_LEN + init.noise_offset())
    }

    fn begin(
        &mut self,
        pending: Pending,
        mut frame: Vec<u8>,
        proof_key: &[u8],
        local_index: u32,
        now: Timestamp,
    ) {
        let split = frame.len() - MAC1_LEN;
        let tag = mac1(&self.link_id, proof_key, &frame[..split]);
        frame[split..].copy_from_slice(&tag);
        self.attempt = Some(Attempt {
            pending,
            local_index,
            init_frame: frame,
            started: now,
            next_send: now,
            backoff: self.config.retry_initial,
        });
    }

    /// Build a keyed `Init`: the cleartext up to the Noise message is the prologue, then
    /// Noise message 1 with the timestamp as its payload.
    #[allow(clippy::too_many_arguments)]
    fn begin_keyed(
        &mut self,
        kind: Kind,
        body: InitBody<'_>,
        keys: &noise::Keys<'_>,
        ephemeral: Ephemeral,
        local_index: u32,
        now: Timestamp,
    ) -> Result<(), HandshakeError> {
        let (mut frame, offset) = Self::init_frame(body, local_index);
        let (pattern, label) = match kind {
            Kind::Resume => (Pattern::NNpsk0, label::RESUME_PROLOGUE),
            _ => (Pattern::KKpsk0, label::SESSION_PROLOGUE),
        };
        let mut noise = NoiseHandshake::initiator(
            pattern,
            &prologue(label, &frame[..offset]),
            keys,
            ephemeral,
        )?;
        let timestamp = self.next_timestamp(now);
        let message = noise.write_message(&timestamp)?;
        if message.len() != MESSAGE1_LEN {
            return Err(HandshakeError::Malformed);
        }
        frame[offset..offset + MESSAGE1_LEN].copy_from_slice(&message);
        let pending = Pending::Keyed {
            kind,
            noise: alloc::boxed::Box::new(noise),
        };
        let psk = *keys.psk;
        let psk = Zeroizing::new(psk);
        self.begin(pending, frame, &psk[..], local_index, now);
        Ok(())
    }

    /// Start pairing with the security code.
    pub(crate) fn start_pair(
        &mut self,
        code: &[u8],
        local_index: u32,
        now: Timestamp,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), HandshakeError> {
        let (client, ke1) = pake::client_start(code, rng).map_err(|_| HandshakeError::Malformed)?;
        let pending = Pending::Pair {
            client: alloc::boxed::Box::new(client),
            code: Zeroizing::new(code.to_vec()),
            failed: Vec::new(),
            claimed_remaining: None,
            evaluating: Vec::new(),
        };
        let body = InitBody::Pair {
            remote_static: self.identity.static_public().to_bytes(),
            ke1: &ke1,
        };
        let (frame, _) = Self::init_frame(body, local_index);
        self.begin(pending, frame, &[], local_index, now);
        Ok(())
    }

    /// Start a session with the bonded aircraft: a resume if the previous session can be
    /// resumed, else a full session handshake.
    pub(crate) fn start_connect(
        &mut self,
        local_index: u32,
        now: Timestamp,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), HandshakeError> {
        let ephemeral = Ephemeral::random(rng);
        if let Some(resumption) = &self.resumption {
            let body = InitBody::Resume {
                ticket: resumption.ticket,
                message: [0; MESSAGE1_LEN],
            };
            let secret = resumption.secret.clone();
            let keys = noise::Keys {
                psk: secret.expose(),
                local_static: None,
                remote_static: None,
            };
            return self.begin_keyed(Kind::Resume, body, &keys, ephemeral, local_index, now);
        }
        let bond = *self.identity.bond().ok_or(HandshakeError::NotBonded)?;
        let body = InitBody::Session {
            bond_id: super::keys::bond_id(&self.identity.static_public()),
            message: [0; MESSAGE1_LEN],
        };
        let identity = self.identity.clone();
        let shared = identity
            .static_secret()
            .diffie_hellman(&bond.aircraft_static);
        let bond_key = super::keys::bond_key(&shared);
        let keys = noise::Keys {
            psk: bond_key.expose(),
            local_static: Some(identity.static_secret()),
            remote_static: Some(&bond.aircraft_static),
        };
        self.begin_keyed(Kind::Session, body, &keys, ephemeral, local_index, now)
    }

    /// A session was established: its resumption replaces the current one once the
    /// aircraft confirms the session.
    pub(crate) fn set_resumption(&mut self, resumption: Resumption) {
        match &mut self.unconfirmed {
            Some(u) => u.resumption = Some(resumption),
            None => self.resumption = Some(resumption),
        }
    }

    /// The handshake frame due at `now`, if any.
    pub(crate) fn poll_transmit(&mut self, now: Timestamp) -> Option<Vec<u8>> {
        let max = self.config.retry_max;
        if let Some(a) = &mut self.attempt {
            if now >= a.next_send {
                a.next_send = now + a.backoff;
                a.backoff = (a.backoff * 2).min(max);
                return Some(a.init_frame.clone());
            }
        } else if let Some(u) = &mut self.unconfirmed {
            if now >= u.next_send {
                u.next_send = now + u.backoff;
                u.backoff = (u.backoff * 2).min(max);
                return Some(u.frame.clone());
            }
        }
        None
    }

    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        match (&self.attempt, &self.unconfirmed) {
            (Some(a), _) => Some(a.next_send.min(a.started + self.config.timeout)),
            (None, Some(u)) => Some(u.next_send.min(u.since + self.config.timeout)),
            (None, None) => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Timestamp, events: &mut impl FnMut(HsEvent)) {
        if let Some(a) = &self.attempt {
            if now >= a.started + self.config.timeout {
                match a.pending {
                    // Responses came and failed, none succeeded: the code was wrong, or
                    // someone interfered. Only now is that said.
                    Pending::Pair {
                        claimed_remaining: Some(remaining),
                        ..
                    } => events(HsEvent::PairingRejected {
                        remaining_attempts: remaining,
                    }),
                    _ => events(HsEvent::Failed(HandshakeError::Timeout)),
                }
                self.attempt = None;
            }
        }
        if let Some(u) = &self.unconfirmed {
            if now >= u.since + self.config.timeout {
                // The aircraft never showed it holds the keys: give the session up.
                self.unconfirmed = None;
                events(HsEvent::Unconfirmed);
            }
        }
    }

    /// An authenticated frame arrived under the new keys: the aircraft has them.
    pub(crate) fn on_confirmed(&mut self, events: &mut impl FnMut(HsEvent)) {
        if let Some(u) = self.unconfirmed.take() {
            if let Some(resumption) = u.resumption {
                self.resumption = Some(resumption);
            }
            if let Some(bond) = u.bond {
                self.identity.set_bond(bond);
                events(HsEvent::Bonded);
            }
        }
    }

    /// Take a handshake datagram addressed to this remote.
    pub(crate) fn handle(
        &mut self,
        now: Timestamp,
        datagram: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
        events: &mut impl FnMut(HsEvent),
    ) -> Result<(), HandshakeError> {
        let (header, payload) = messages::parse_frame(datagram)?;
        let attempt = self.attempt.as_mut().ok_or(HandshakeError::Unexpected)?;
        if header.receiver_index != attempt.local_index {
            return Err(HandshakeError::Unexpected);
        }
        match header.frame_type {
            FrameType::HandshakeResponse => {
                let response = Response::parse(payload)?;
                self.on_response(now, datagram, &response, rng, events)
            }
            FrameType::CookieReply => {
                let refusal = Refusal::parse(payload)?;
                self.on_refusal(now, &refusal, rng, events);
                Ok(())
            }
            _ => Err(HandshakeError::Unexpected),
        }
    }

    fn on_refusal(
        &mut self,
        now: Timestamp,
        refusal: &Refusal,
        rng: &mut (impl RngCore + CryptoRng),
        events: &mut impl FnMut(HsEvent),
    ) {
        use messages::RefusalReason as R;
        let local_index = self.attempt.as_ref().map_or(0, |a| a.local_index);
        self.attempt = None;
        if refusal.reason == R::UnknownTicket {
            // The aircraft no longer holds the session: fall back to the full handshake.
            self.resumption = None;
            if let Err(e) = self.start_connect(local_index, now, rng) {
                events(HsEvent::Failed(e));
            }
            return;
        }
        events(HsEvent::Refused {
            reason: refusal.reason,
            remaining_attempts: refusal.remaining_attempts,
            retry_at: now + Duration::from_millis(u64::from(refusal.retry_after_ms)),
        });
    }

    fn on_response(
        &mut self,
        now: Timestamp,
        frame: &[u8],
        response: &Response<'_>,
        rng: &mut (impl RngCore + CryptoRng),
        events: &mut impl FnMut(HsEvent),
    ) -> Result<(), HandshakeError> {
        let Some(attempt) = self.attempt.as_mut() else {
            return Err(HandshakeError::Unexpected);
        };
        let init_frame = &attempt.init_frame;
        match (&mut attempt.pending, &response.body) {
            (
                Pending::Pair {
                    client,
                    code,
                    failed,
                    evaluating,
                    ..
                },
                ResponseBody::Pair { ke2, .. },
            ) => {
                let digest: [u8; 32] = Sha256::digest(frame).into();
                if failed.contains(&digest) {
                    // Evaluated already: a flood of copies costs nothing more.
                    return Err(HandshakeError::AuthenticationFailed);
                }
                if evaluating.iter().any(|e| e.digest == digest) {
                    // Under evaluation: a copy waits for that verdict.
                    return Err(HandshakeError::Unexpected);
                }
                if failed.len() + evaluating.len() >= MAX_PAIR_EVALUATIONS {
                    // The evaluations left are all under way.
                    return Err(HandshakeError::Unexpected);
                }
                let prefix = &frame[..frame.len() - ke2.len()];
                let context = pair_context(init_frame, prefix);
                self.ksf_runs += 1;
                if self.defer_key_stretching {
                    let job = KeyStretch::new(
                        Purpose::Pair,
                        client.clone(),
                        code.clone(),
                        ke2,
                        context,
                        self.ksf,
                        rng,
                    );
                    evaluating.push(Evaluation {
                        tag: job.tag(),
                        digest,
                        response: frame.to_vec(),
                        job: Some(alloc::boxed::Box::new(job)),
                    });
                    events(HsEvent::KeyStretchReady);
                    return Ok(());
                }
                let result = client.finish(code, ke2, &context, self.ksf, rng);
                self.pair_evaluated(now, frame, response, digest, result, events)
            }
            (
                Pending::Keyed { kind, noise },
                ResponseBody::Keyed {
                    kind: theirs,
                    message,
                },
            ) if kind == theirs => {
                // Noise message 2's tag is the aircraft's key confirmation: it fails for
                // anyone without the keys, and snow then leaves the state as it was.
                let payload = noise.read_message(message)?;
                // The aircraft's index, authenticated with the rest of message 2.
                let aircraft_index = match <[u8; 4]>::try_from(&payload[..]) {
                    Ok(bytes) if u32::from_be_bytes(bytes) != 0 => u32::from_be_bytes(bytes),
                    // Only the aircraft could have sent it: a broken aircraft.
                    _ => return Err(HandshakeError::Malformed),
                };
                let kind = *kind;
                let Some(Attempt {
                    pending: Pending::Keyed { noise, .. },
                    local_index,
                    init_frame,
                    ..
                }) = self.attempt.take()
                else {
                    return Err(HandshakeError::Unexpected);
                };
                let outputs = noise.finish()?;
                let label = match kind {
                    Kind::Resume => label::RESUME,
                    _ => label::SESSION,
                };
                let s = keyed_secrets(label, &outputs, &init_frame, frame);
                let finish = Finish::Keyed {
                    kind,
                    confirm: s.confirm_remote,
                }
                .emit();
                self.unconfirmed = Some(Unconfirmed {
                    frame: messages::frame(FrameType::HandshakeFinish, aircraft_index, &finish),
                    since: now,
                    next_send: now,
                    backoff: self.config.retry_initial,
                    bond: None,
                    resumption: None,
                });
                events(HsEvent::Established(Established {
                    kind,
                    handshake_secret: s.handshake_secret,
                    transcript_hash: s.transcript_hash,
                    local_index,
                    peer_index: aircraft_index,
                }));
                Ok(())
            }
            _ => Err(HandshakeError::Unexpected),
        }
    }

    /// A pairing `Response` (the whole datagram `frame`, parsed as `response`, `digest` its
    /// SHA-256) was evaluated: `result` is its OPAQUE finish. Success establishes the
    /// session; a failure is remembered, and ends the attempt once its evaluations are
    /// spent.
    fn pair_evaluated(
        &mut self,
        now: Timestamp,
        frame: &[u8],
        response: &Response<'_>,
        digest: [u8; 32],
        result: Result<(Vec<u8>, Secret), PakeError>,
        events: &mut impl FnMut(HsEvent),
    ) -> Result<(), HandshakeError> {
        let ResponseBody::Pair {
            remaining_attempts,
            aircraft_static,
            ..
        } = response.body
        else {
            return Err(HandshakeError::Malformed);
        };
        let Some(Attempt {
            pending:
                Pending::Pair {
                    failed,
                    claimed_remaining,
                    evaluating,
                    ..
                },
            next_send,
            ..
        }) = &mut self.attempt
        else {
            return Err(HandshakeError::Unexpected);
        };
        let (ke3, secret) = match result {
            Ok(done) => done,
            Err(PakeError::WrongCode) => {
                if failed.is_empty() {
                    // Perhaps corrupted on the air: ask for the (cached) response again,
                    // once.
                    *next_send = now;
                }
                failed.push(digest);
                let remaining = *claimed_remaining.get_or_insert(remaining_attempts);
                if failed.len() == MAX_PAIR_EVALUATIONS {
                    // Nothing more will be evaluated: the attempt cannot succeed, so say so
                    // now rather than at the timeout.
                    self.attempt = None;
                    events(HsEvent::PairingRejected {
                        remaining_attempts: remaining,
                    });
                }
                return Err(HandshakeError::AuthenticationFailed);
            }
            Err(_) => return Err(HandshakeError::Malformed),
        };
        // Responses still under evaluation are forgeries or corrupted copies: their
        // results find no attempt and change nothing.
        evaluating.clear();
        let bond = Bond {
            link_id: self.link_id,
            aircraft_static: PublicKey::from(aircraft_static),
        };
        let finish = Finish::Pair { ke3: &ke3 }.emit();
        let Some(attempt) = self.attempt.take() else {
            return Err(HandshakeError::Unexpected);
        };
        let transcript = transcript_hash(&[&attempt.init_frame, frame]);
        self.unconfirmed = Some(Unconfirmed {
            frame: messages::frame(FrameType::HandshakeFinish, response.sender_index, &finish),
            since: now,
            next_send: now,
            backoff: self.config.retry_initial,
            bond: Some(bond),
            resumption: None,
        });
        events(HsEvent::Established(Established {
            kind: Kind::Pair,
            handshake_secret: secret,
            transcript_hash: transcript,
            local_index: attempt.local_index,
            peer_index: response.sender_index,
        }));
        Ok(())
    }
}
