//! The key update exchange on the session channel (either side, when its send key is due;
//! on a crossing, the aircraft's request wins):
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

use rand_chacha::ChaCha20Rng;
use x25519_dalek::{PublicKey, StaticSecret};

use super::Keys;
use crate::channel::Role;
use crate::crypto::{updated_traffic_secret, AeadProvider, Secret};
use crate::error::Error;
use crate::handshake::HandshakeError;
use crate::time::Timestamp;
use crate::wire::session::SessionMessage;

/// Where the key update exchange stands.
#[derive(Default)]
pub(super) enum KeyUpdate {
    #[default]
    Idle,
    /// We asked; our ephemeral waits for the answer.
    Requested(StaticSecret),
    /// We answered; our send key moves to this secret once the peer's frames do.
    Answered(Secret),
}

/// The next send and receive secrets, from our ephemeral and the peer's.
fn next_secrets<P: AeadProvider>(
    keys: &Keys<P>,
    mine: &StaticSecret,
    theirs: &PublicKey,
) -> Result<(Secret, Secret), Error> {
    let dh = mine.diffie_hellman(theirs);
    if !dh.was_contributory() {
        return Err(Error::Handshake(HandshakeError::AuthenticationFailed));
    }
    Ok((
        updated_traffic_secret(keys.send.secret(), dh.as_bytes()),
        updated_traffic_secret(keys.recv.secret(), dh.as_bytes()),
    ))
}

impl KeyUpdate {
    pub(super) fn is_idle(&self) -> bool {
        matches!(self, KeyUpdate::Idle)
    }

    /// Start an update: the request to send.
    pub(super) fn start(&mut self, rng: &mut ChaCha20Rng) -> SessionMessage<'static> {
        let ephemeral = StaticSecret::random_from_rng(rng);
        let public = PublicKey::from(&ephemeral).to_bytes();
        *self = KeyUpdate::Requested(ephemeral);
        SessionMessage::KeyUpdateRequest(public)
    }

    /// The peer asks for an update: the response to send, if any.
    pub(super) fn on_request<P: AeadProvider>(
        &mut self,
        role: Role,
        theirs: [u8; 32],
        keys: &mut Keys<P>,
        rng: &mut ChaCha20Rng,
    ) -> Result<Option<SessionMessage<'static>>, Error> {
        if matches!(self, KeyUpdate::Requested(_)) && role == Role::Aircraft {
            return Ok(None); // crossing requests: the remote answers ours
        }
        let mine = StaticSecret::random_from_rng(rng);
        let (send, recv) = next_secrets(keys, &mine, &PublicKey::from(theirs))?;
        keys.recv.set_next(recv);
        *self = KeyUpdate::Answered(send);
        let public = PublicKey::from(&mine).to_bytes();
        Ok(Some(SessionMessage::KeyUpdateResponse(public)))
    }

    /// The peer answered our request: our send key rotates now. Returns its generation.
    pub(super) fn on_response<P: AeadProvider>(
        &mut self,
        theirs: [u8; 32],
        keys: &mut Keys<P>,
        now: Timestamp,
    ) -> Result<u64, Error> {
        let KeyUpdate::Requested(mine) = &*self else {
            return Err(Error::UnexpectedFrame);
        };
        let (send, recv) = next_secrets(keys, mine, &PublicKey::from(theirs))?;
        *self = KeyUpdate::Idle;
        keys.recv.set_next(recv);
        keys.send.rotate_to(send, now);
        Ok(keys.send.generation())
    }

    /// The peer's frames arrived under the next key, proving it has it: move our send key
    /// too, if we answered. Returns the send key's new generation.
    pub(super) fn on_receive_rotated<P: AeadProvider>(
        &mut self,
        keys: &mut Keys<P>,
        now: Timestamp,
    ) -> Option<u64> {
        if !matches!(self, KeyUpdate::Answered(_)) {
            return None;
        }
        let KeyUpdate::Answered(secret) = core::mem::take(self) else {
            return None;
        };
        keys.send.rotate_to(secret, now);
        Some(keys.send.generation())
    }
}
