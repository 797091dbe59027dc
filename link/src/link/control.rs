//! The session channel: the link's own reliable messages, carried encrypted like data on
//! channel 0. Two exchanges use it.
//!
//! **Key update** (either side, when its send key is due; on a crossing, the aircraft's
//! request wins):
//!
//! ```text
//!   initiator                                  responder
//!   KeyUpdateRequest(e_i) ------------------>  dh = X25519(e_r, e_i); next secrets of both
//!                                              directions from dh; next receive key ready
//!                        <------------------  KeyUpdateResponse(e_r)   (on the old key)
//!   dh; next secrets; send key rotates now
//!   frames in the new phase --------------->   receive key rotates; its send key rotates
//!                        <------------------  frames in the new phase: receive key rotates
//! ```
//!
//! **Storage unlock** (remote asks; a fresh proof of the code inside the running session,
//! OPAQUE again, counted by the same attempt guard as pairing):
//!
//! ```text
//!   UnlockInit(KE1) ----------------------->   attempt guard; OPAQUE server
//!                   <-----------------------   UnlockResponse(remaining, KE2) | UnlockRefused
//!   OPAQUE client; UnlockFinish(KE3) ------>   verify
//!                   <-----------------------   UnlockResult(ok, remaining)
//! ```

use alloc::vec::Vec;

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::{Handshake, KeyDirection, Link, Pending};
use crate::channel::Role;
use crate::crypto::{updated_traffic_secret, AeadProvider, Secret};
use crate::error::Error;
use crate::handshake::keys::transcript_hash;
use crate::handshake::limits;
use crate::handshake::pake::{self, ClientLogin, ServerLogin};
use crate::handshake::{HandshakeError, RefusalReason};
use crate::time::Timestamp;
use crate::wire::DecodeError;

const KEY_UPDATE_REQUEST: u8 = 1;
const KEY_UPDATE_RESPONSE: u8 = 2;
const UNLOCK_INIT: u8 = 3;
const UNLOCK_RESPONSE: u8 = 4;
const UNLOCK_FINISH: u8 = 5;
const UNLOCK_RESULT: u8 = 6;
const UNLOCK_REFUSED: u8 = 7;

/// Where the key update exchange stands.
pub(super) enum Rekey {
    Idle,
    /// We asked; our ephemeral waits for the answer.
    Requested(StaticSecret),
    /// We answered; our send key moves to this secret once the peer's frames do.
    Answered(Secret),
}

/// Where the storage unlock stands.
pub(super) enum Unlock {
    Idle,
    /// Remote: waiting for the aircraft's OPAQUE response.
    Client {
        client: alloc::boxed::Box<ClientLogin>,
        code: Zeroizing<Vec<u8>>,
    },
    /// Aircraft: waiting for the remote's KE3.
    Server {
        server: alloc::boxed::Box<ServerLogin>,
        remaining: u32,
    },
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, DecodeError> {
    let bytes = b.get(at..at + 4).ok_or(DecodeError::PayloadTooShort)?;
    Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn exact<const N: usize>(b: &[u8]) -> Result<[u8; N], DecodeError> {
    b.try_into().map_err(|_| DecodeError::InvalidField)
}

impl<P: AeadProvider> Link<P> {
    fn send_control(&mut self, kind: u8, body: &[&[u8]]) {
        let mut msg = self.pool.take();
        msg.push(kind);
        for part in body {
            msg.extend_from_slice(part);
        }
        self.session_out.push(msg);
    }

    /// The OPAQUE context of an unlock: binds it to this session and its direction.
    fn unlock_context(&self) -> [u8; 32] {
        transcript_hash(&[b"rotorlink v1 unlock", &self.session_transcript])
    }

    /// Start a key update if the send key is due and none is under way.
    pub(super) fn maybe_start_rekey(&mut self, now: Timestamp) {
        let due = self
            .keys
            .as_ref()
            .is_some_and(|k| k.send.rekey_due(now, &self.config));
        if due && matches!(self.rekey, Rekey::Idle) {
            let ephemeral = StaticSecret::random_from_rng(&mut self.rng);
            let public = PublicKey::from(&ephemeral).to_bytes();
            self.send_control(KEY_UPDATE_REQUEST, &[&public]);
            self.rekey = Rekey::Requested(ephemeral);
        }
    }

    /// The peer's receive-side rotation proved it has the new keys: move our send key too.
    pub(super) fn on_receive_rotated(&mut self, now: Timestamp) {
        if let Rekey::Answered(_) = self.rekey {
            if let (Rekey::Answered(secret), Some(keys)) = (
                core::mem::replace(&mut self.rekey, Rekey::Idle),
                self.keys.as_mut(),
            ) {
                keys.send.rotate_to(secret, now);
                self.stats.rekeys_sent += 1;
                let generation = keys.send.generation();
                self.push_event(Pending::Rekeyed(KeyDirection::Send, generation));
            }
        }
    }

    /// The next send and receive secrets, from our ephemeral and the peer's.
    fn next_secrets(
        &self,
        mine: &StaticSecret,
        theirs: &PublicKey,
    ) -> Result<(Secret, Secret), Error> {
        let keys = self.keys.as_ref().ok_or(Error::UnexpectedFrame)?;
        let dh = mine.diffie_hellman(theirs);
        if !dh.was_contributory() {
            return Err(Error::Handshake(HandshakeError::AuthenticationFailed));
        }
        Ok((
            updated_traffic_secret(keys.send.secret(), dh.as_bytes()),
            updated_traffic_secret(keys.recv.secret(), dh.as_bytes()),
        ))
    }

    /// Handle one message of the session channel.
    pub(super) fn on_control(&mut self, now: Timestamp, msg: &[u8]) -> Result<(), Error> {
        let (&kind, body) = msg.split_first().ok_or(DecodeError::PayloadTooShort)?;
        match kind {
            KEY_UPDATE_REQUEST => {
                let theirs = PublicKey::from(exact::<32>(body)?);
                if let Rekey::Requested(_) = self.rekey {
                    if self.role == Role::Aircraft {
                        return Ok(()); // crossing requests: the remote answers ours
                    }
                }
                let mine = StaticSecret::random_from_rng(&mut self.rng);
                let (send, recv) = self.next_secrets(&mine, &theirs)?;
                if let Some(keys) = self.keys.as_mut() {
                    keys.recv.set_next(recv);
                }
                self.rekey = Rekey::Answered(send);
                let public = PublicKey::from(&mine).to_bytes();
                self.send_control(KEY_UPDATE_RESPONSE, &[&public]);
                Ok(())
            }
            KEY_UPDATE_RESPONSE => {
                let theirs = PublicKey::from(exact::<32>(body)?);
                let Rekey::Requested(mine) = &self.rekey else {
                    return Err(Error::UnexpectedFrame);
                };
                let (send, recv) = self.next_secrets(mine, &theirs)?;
                self.rekey = Rekey::Idle;
                if let Some(keys) = self.keys.as_mut() {
                    keys.recv.set_next(recv);
                    keys.send.rotate_to(send, now);
                    self.stats.rekeys_sent += 1;
                    let generation = keys.send.generation();
                    self.push_event(Pending::Rekeyed(KeyDirection::Send, generation));
                }
                Ok(())
            }
            UNLOCK_INIT if self.role == Role::Aircraft => self.on_unlock_init(now, body),
            UNLOCK_RESPONSE if self.role == Role::Remote => self.on_unlock_response(body),
            UNLOCK_FINISH if self.role == Role::Aircraft => self.on_unlock_finish(body),
            UNLOCK_RESULT if self.role == Role::Remote => {
                let ok = *body.first().ok_or(DecodeError::PayloadTooShort)? == 1;
                let remaining = u32_at(body, 1)?;
                self.unlock = Unlock::Idle;
                if ok {
                    self.storage_unlocked = true;
                    self.push_event(Pending::StorageUnlocked);
                } else {
                    self.push_event(Pending::StorageUnlockRejected(remaining));
                }
                Ok(())
            }
            UNLOCK_REFUSED if self.role == Role::Remote => {
                let reason = *body.first().ok_or(DecodeError::PayloadTooShort)?;
                let remaining = u32_at(body, 1)?;
                let retry_ms = u32_at(body, 5)?;
                self.unlock = Unlock::Idle;
                let retry_at = now + core::time::Duration::from_millis(u64::from(retry_ms));
                let reason = if reason == RefusalReason::LockedOut as u8 {
                    self.push_event(Pending::LockedOut(retry_at));
                    RefusalReason::LockedOut
                } else {
                    RefusalReason::BackOff
                };
                self.push_event(Pending::HandshakeRefused(reason, remaining, retry_at));
                Ok(())
            }
            _ => Err(Error::UnexpectedFrame),
        }
    }

    /// Remote: prove the security code again to open the aircraft's onboard storage. The
    /// result arrives as [`crate::Event::StorageUnlocked`] or
    /// [`crate::Event::StorageUnlockRejected`].
    ///
    /// # Errors
    /// [`Error::Handshake`] with [`HandshakeError::WrongRole`] on the aircraft, or
    /// [`Error::Closed`] without a session.
    pub fn unlock_storage(&mut self, code: &[u8]) -> Result<(), Error> {
        if self.role != Role::Remote {
            return Err(Error::Handshake(HandshakeError::WrongRole));
        }
        if self.keys.is_none() {
            return Err(Error::Closed);
        }
        let (client, ke1) = pake::client_start(code, &mut self.rng)
            .map_err(|_| Error::Handshake(HandshakeError::Malformed))?;
        self.unlock = Unlock::Client {
            client: alloc::boxed::Box::new(client),
            code: Zeroizing::new(code.to_vec()),
        };
        self.send_control(UNLOCK_INIT, &[&ke1]);
        Ok(())
    }

    /// True once the storage channel is open on this session.
    pub fn storage_unlocked(&self) -> bool {
        self.storage_unlocked
    }

    fn on_unlock_init(&mut self, now: Timestamp, ke1: &[u8]) -> Result<(), Error> {
        let context = self.unlock_context();
        let Some(Handshake::Aircraft(hs)) = &mut self.handshake else {
            return Err(Error::UnexpectedFrame);
        };
        let (reason, wait) = match hs.guard_mut().begin(now) {
            Ok(permit) => {
                let remaining = permit.remaining_attempts_after_this_one;
                hs.expensive_ops += 1;
                let (server, ke2) =
                    pake::server_start(hs.identity().password(), ke1, &context, &mut self.rng)
                        .map_err(|_| Error::Handshake(HandshakeError::Malformed))?;
                self.unlock = Unlock::Server {
                    server: alloc::boxed::Box::new(server),
                    remaining,
                };
                self.send_control(UNLOCK_RESPONSE, &[&remaining.to_be_bytes(), &ke2]);
                return Ok(());
            }
            Err(limits::Refusal::BackOff { retry_at }) => {
                (RefusalReason::BackOff, retry_at.saturating_since(now))
            }
            Err(limits::Refusal::LockedOut { until }) => {
                self.events.push_back(Pending::LockedOut(until));
                (RefusalReason::LockedOut, until.saturating_since(now))
            }
            Err(limits::Refusal::Store(_)) => (
                RefusalReason::LockedOut,
                core::time::Duration::from_secs(60),
            ),
        };
        let remaining = hs.guard().remaining_attempts();
        let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
        self.send_control(
            UNLOCK_REFUSED,
            &[
                &[reason as u8],
                &remaining.to_be_bytes(),
                &wait_ms.to_be_bytes(),
            ],
        );
        Ok(())
    }

    fn on_unlock_response(&mut self, body: &[u8]) -> Result<(), Error> {
        let ke2 = body.get(4..).ok_or(DecodeError::PayloadTooShort)?;
        let context = self.unlock_context();
        let Unlock::Client { client, code } = &self.unlock else {
            return Err(Error::UnexpectedFrame);
        };
        match client.finish(code, ke2, &context, self.config.ksf, &mut self.rng) {
            Ok((ke3, _)) => {
                self.unlock = Unlock::Idle;
                self.send_control(UNLOCK_FINISH, &[&ke3]);
            }
            Err(_) => {
                // Wrong code: tell the aircraft at once (the attempt is counted either way);
                // its result message reports the rejection with the attempts left.
                self.unlock = Unlock::Idle;
                self.send_control(UNLOCK_FINISH, &[&[0u8; pake::KE3_LEN]]);
            }
        }
        Ok(())
    }

    fn on_unlock_finish(&mut self, ke3: &[u8]) -> Result<(), Error> {
        let context = self.unlock_context();
        let Unlock::Server { server, remaining } =
            core::mem::replace(&mut self.unlock, Unlock::Idle)
        else {
            return Err(Error::UnexpectedFrame);
        };
        let ok = server.finish(ke3, &context).is_ok();
        let remaining = if ok {
            if let Some(Handshake::Aircraft(hs)) = &mut self.handshake {
                // A failure to persist the reset only leaves the count high: fail safe.
                let _ = hs.guard_mut().succeed();
                hs.guard().remaining_attempts()
            } else {
                remaining
            }
        } else {
            remaining
        };
        if ok {
            self.storage_unlocked = true;
            self.push_event(Pending::StorageUnlocked);
        } else {
            self.stats.unlock_failures += 1;
            self.push_event(Pending::StorageUnlockRejected(remaining));
        }
        self.send_control(UNLOCK_RESULT, &[&[u8::from(ok)], &remaining.to_be_bytes()]);
        Ok(())
    }
}
