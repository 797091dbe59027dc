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

use alloc::vec::Vec;
use core::time::Duration;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::identity::{Bond, RemoteIdentity};
use super::keys::{
    confirm_eq, contributory, keyed_secrets, mac1, pair_context, transcript_hash, KeyedSecrets,
    LinkId, Resumption,
};
use super::pake::{self, ClientLogin, KsfParams, PakeError};
use super::{Established, HandshakeConfig, HandshakeError, HsEvent};
use crate::crypto::{label, Secret};
use crate::wire::handshake::{
    self as messages, Finish, Init, InitBody, Kind, Refusal, Response, ResponseBody, MAC1_LEN,
    SUITE_V1,
};
use crate::wire::FrameType;
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
    },
    Session {
        ephemeral: StaticSecret,
        aircraft_static: PublicKey,
    },
    Resume {
        ephemeral: StaticSecret,
        secret: Secret,
    },
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
        }
    }

    pub(crate) fn ksf_runs(&self) -> u64 {
        self.ksf_runs
    }

    pub(crate) fn identity(&self) -> &RemoteIdentity {
        &self.identity
    }

    pub(crate) fn in_progress(&self) -> bool {
        self.attempt.is_some()
    }

    pub(crate) fn confirmed(&self) -> bool {
        self.unconfirmed.is_none()
    }

    fn begin(
        &mut self,
        pending: Pending,
        body: InitBody<'_>,
        proof_key: &[u8],
        local_index: u32,
        now: Timestamp,
    ) {
        let init = Init {
            suite: SUITE_V1,
            sender_index: local_index,
            body,
            mac1: [0; MAC1_LEN],
        };
        let mut frame = messages::frame(FrameType::HandshakeInit, 0, &init.emit());
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
        };
        let body = InitBody::Pair {
            remote_static: self.identity.static_public().to_bytes(),
            ke1: &ke1,
        };
        self.begin(pending, body, &[], local_index, now);
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
        let ephemeral = StaticSecret::random_from_rng(&mut *rng);
        let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
        if let Some(resumption) = &self.resumption {
            let body = InitBody::Resume {
                ticket: resumption.ticket,
                ephemeral: ephemeral_public,
            };
            let secret = resumption.secret.clone();
            let pending = Pending::Resume {
                ephemeral,
                secret: secret.clone(),
            };
            self.begin(pending, body, secret.expose(), local_index, now);
            return Ok(());
        }
        let bond = *self.identity.bond().ok_or(HandshakeError::NotBonded)?;
        let body = InitBody::Session {
            bond_id: super::keys::bond_id(&self.identity.static_public()),
            ephemeral: ephemeral_public,
        };
        let shared = self
            .identity
            .static_secret()
            .diffie_hellman(&bond.aircraft_static);
        let proof = super::keys::bond_key(&shared);
        let pending = Pending::Session {
            ephemeral,
            aircraft_static: bond.aircraft_static,
        };
        self.begin(pending, body, proof.expose(), local_index, now);
        Ok(())
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
        let (kind, secret, finish, bond) = match (&mut attempt.pending, &response.body) {
            (
                Pending::Pair {
                    client,
                    code,
                    failed,
                    claimed_remaining,
                },
                ResponseBody::Pair {
                    remaining_attempts,
                    aircraft_static,
                    ke2,
                },
            ) => {
                let digest: [u8; 32] = Sha256::digest(frame).into();
                if failed.contains(&digest) {
                    // Evaluated already: a flood of copies costs nothing more.
                    return Err(HandshakeError::AuthenticationFailed);
                }
                let prefix = &frame[..frame.len() - ke2.len()];
                let context = pair_context(init_frame, prefix);
                self.ksf_runs += 1;
                match client.finish(code, ke2, &context, self.ksf, rng) {
                    Ok((ke3, secret)) => {
                        let bond = Bond {
                            link_id: self.link_id,
                            aircraft_static: PublicKey::from(*aircraft_static),
                        };
                        let finish = Finish::Pair { ke3: &ke3 }.emit();
                        (Kind::Pair, secret, finish, Some(bond))
                    }
                    Err(PakeError::WrongCode) => {
                        if failed.is_empty() {
                            // Perhaps corrupted on the air: ask for the (cached) response
                            // again, once.
                            attempt.next_send = now;
                        }
                        failed.push(digest);
                        let remaining = *claimed_remaining.get_or_insert(*remaining_attempts);
                        if failed.len() == MAX_PAIR_EVALUATIONS {
                            // Nothing more will be evaluated: the attempt cannot succeed,
                            // so say so now rather than at the timeout.
                            self.attempt = None;
                            events(HsEvent::PairingRejected {
                                remaining_attempts: remaining,
                            });
                        }
                        return Err(HandshakeError::AuthenticationFailed);
                    }
                    Err(_) => return Err(HandshakeError::Malformed),
                }
            }
            (
                Pending::Session {
                    ephemeral,
                    aircraft_static,
                },
                ResponseBody::Keyed {
                    kind: Kind::Session,
                    ephemeral: theirs,
                    confirm,
                },
            ) => {
                let their_e = PublicKey::from(*theirs);
                let ee = ephemeral.diffie_hellman(&their_e);
                let es = ephemeral.diffie_hellman(aircraft_static);
                let se = self.identity.static_secret().diffie_hellman(&their_e);
                let ss = self
                    .identity
                    .static_secret()
                    .diffie_hellman(aircraft_static);
                if !contributory(&ee) || !contributory(&se) {
                    return Err(HandshakeError::AuthenticationFailed);
                }
                let mut ikm = Zeroizing::new([0u8; 128]);
                for (i, dh) in [&ee, &es, &se, &ss].iter().enumerate() {
                    ikm[i * 32..(i + 1) * 32].copy_from_slice(dh.as_bytes());
                }
                let s = verify_keyed(label::SESSION, init_frame, frame, &ikm[..], confirm)?;
                let finish = Finish::Keyed {
                    kind: Kind::Session,
                    confirm: s.confirm_remote,
                }
                .emit();
                (Kind::Session, s.handshake_secret, finish, None)
            }
            (
                Pending::Resume { ephemeral, secret },
                ResponseBody::Keyed {
                    kind: Kind::Resume,
                    ephemeral: theirs,
                    confirm,
                },
            ) => {
                let ee = ephemeral.diffie_hellman(&PublicKey::from(*theirs));
                if !contributory(&ee) {
                    return Err(HandshakeError::AuthenticationFailed);
                }
                let mut ikm = Zeroizing::new([0u8; 64]);
                ikm[..32].copy_from_slice(secret.expose());
                ikm[32..].copy_from_slice(ee.as_bytes());
                let s = verify_keyed(label::RESUME, init_frame, frame, &ikm[..], confirm)?;
                let finish = Finish::Keyed {
                    kind: Kind::Resume,
                    confirm: s.confirm_remote,
                }
                .emit();
                (Kind::Resume, s.handshake_secret, finish, None)
            }
            _ => return Err(HandshakeError::Unexpected),
        };
        let transcript = transcript_hash(&[init_frame, frame]);
        let local_index = attempt.local_index;
        self.attempt = None;
        self.unconfirmed = Some(Unconfirmed {
            frame: messages::frame(FrameType::HandshakeFinish, response.sender_index, &finish),
            since: now,
            next_send: now,
            backoff: self.config.retry_initial,
            bond,
            resumption: None,
        });
        events(HsEvent::Established(Established {
            kind,
            handshake_secret: secret,
            transcript_hash: transcript,
            local_index,
            peer_index: response.sender_index,
        }));
        Ok(())
    }
}

/// Derive a keyed handshake's secrets and check the aircraft's confirmation.
fn verify_keyed(
    label: &[u8],
    init_frame: &[u8],
    response_frame: &[u8],
    ikm: &[u8],
    confirm: &[u8; messages::CONFIRM_LEN],
) -> Result<KeyedSecrets, HandshakeError> {
    let before_confirm = &response_frame[..response_frame.len() - messages::CONFIRM_LEN];
    let s = keyed_secrets(label, &[init_frame, before_confirm], ikm);
    if confirm_eq(&s.confirm_aircraft, confirm) {
        Ok(s)
    } else {
        Err(HandshakeError::AuthenticationFailed)
    }
}
