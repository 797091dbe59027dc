//! [`Endpoint`]: the part of one end that answers datagrams nobody has a session for.
//!
//! The endpoint holds the role's long-term state: the identity, the attempt guard, the rate
//! buckets, the resumption state and the handshake in flight. It takes every handshake
//! datagram together with the address it came from, and answers with one of:
//!
//! - a reply (a `Response` or a refusal) queued for **the datagram's source**, never for
//!   the connection's peer;
//! - a completed handshake ([`HsEvent::Established`]): the caller starts a session with the
//!   source, which becomes the peer;
//! - a request to re-confirm the current session (a retransmitted `Finish`): one
//!   authenticated frame goes to the peer — never to the source, which proved nothing;
//! - a drop, with its reason.
//!
//! The endpoint sends no encrypted frame and never changes the peer address: that belongs to
//! the [`crate::connection::Connection`].

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use crate::config::Config;
use crate::handshake::aircraft::{
    AircraftHandshake, BoxedAttemptStore, GuardedLogin, Purpose, Reply,
};
use crate::handshake::keys::{LinkId, Resumption};
use crate::handshake::remote::RemoteHandshake;
use crate::handshake::stretch::{KeyStretch, KeyStretched};
use crate::handshake::{AircraftIdentity, HandshakeError, HsEvent, RemoteIdentity};
use crate::time::Timestamp;

/// What a handshake datagram asks of the connection, besides any reply the endpoint queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Nothing more (a reply may be queued for the source).
    Handled,
    /// A retransmitted `Finish` of the current session: send an authenticated frame to the
    /// peer, so a remote that missed the confirmation learns the session is up.
    Reconfirm,
}

/// The handshake state of each role.
enum Role {
    Remote {
        hs: Box<RemoteHandshake>,
        /// The aircraft this remote dials: handshake messages go there, and only handshake
        /// datagrams from there are taken.
        aircraft: Option<SocketAddr>,
    },
    Aircraft(Box<AircraftHandshake>),
    /// A link made from a shared secret: no handshakes.
    None,
}

/// The handshake side of one end: identity, attempt guard, rate limits, handshakes in flight.
pub(crate) struct Endpoint {
    role: Role,
    /// Randomness for ephemeral keys and session indices.
    rng: ChaCha20Rng,
    /// Replies to send, each to the source of the datagram it answers.
    replies: VecDeque<(SocketAddr, Vec<u8>)>,
}

impl Endpoint {
    /// An endpoint for a link made from a shared secret: it refuses every handshake.
    pub(crate) fn without_handshakes(rng: ChaCha20Rng) -> Self {
        Endpoint {
            role: Role::None,
            rng,
            replies: VecDeque::new(),
        }
    }

    pub(crate) fn remote(
        config: &Config,
        identity: RemoteIdentity,
        link_id: LinkId,
        rng: ChaCha20Rng,
    ) -> Self {
        let hs = RemoteHandshake::new(identity, link_id, config.ksf, config.handshake.clone());
        Endpoint {
            role: Role::Remote {
                hs: Box::new(hs),
                aircraft: None,
            },
            rng,
            replies: VecDeque::new(),
        }
    }

    pub(crate) fn aircraft(
        config: &Config,
        identity: AircraftIdentity,
        attempts: BoxedAttemptStore,
        rng: ChaCha20Rng,
        now: Timestamp,
    ) -> Self {
        let hs = AircraftHandshake::new(
            identity,
            attempts,
            config.limits.clone(),
            config.handshake.clone(),
            now,
        );
        Endpoint {
            role: Role::Aircraft(Box::new(hs)),
            rng,
            replies: VecDeque::new(),
        }
    }

    /// A fresh nonzero session index, other than `current`. Drawn before any key material,
    /// from the same generator: an index is public.
    fn fresh_index(&mut self, current: u32) -> u32 {
        loop {
            let i = self.rng.next_u32();
            if i != 0 && i != current {
                return i;
            }
        }
    }

    /// Remote: the index its handshake under way receives on.
    pub(crate) fn handshake_index(&self) -> Option<u32> {
        match &self.role {
            Role::Remote { hs, .. } => hs.attempt_index(),
            _ => None,
        }
    }

    /// Remote: start pairing with the aircraft at `aircraft`.
    pub(crate) fn pair(
        &mut self,
        code: &[u8],
        aircraft: SocketAddr,
        current_index: u32,
        now: Timestamp,
    ) -> Result<(), HandshakeError> {
        let index = self.fresh_index(current_index);
        let Role::Remote { hs, aircraft: to } = &mut self.role else {
            return Err(HandshakeError::WrongRole);
        };
        hs.start_pair(code, index, now, &mut self.rng)?;
        *to = Some(aircraft);
        Ok(())
    }

    /// Remote: open a session (resume or full) with the bonded aircraft at `aircraft`.
    pub(crate) fn connect(
        &mut self,
        aircraft: SocketAddr,
        current_index: u32,
        now: Timestamp,
    ) -> Result<(), HandshakeError> {
        let index = self.fresh_index(current_index);
        let Role::Remote { hs, aircraft: to } = &mut self.role else {
            return Err(HandshakeError::WrongRole);
        };
        hs.start_connect(index, now, &mut self.rng)?;
        *to = Some(aircraft);
        Ok(())
    }

    /// Remote: the wall clock reads `unix` at `now` (handshake timestamps).
    pub(crate) fn set_wall_clock(&mut self, unix: core::time::Duration, now: Timestamp) {
        if let Role::Remote { hs, .. } = &mut self.role {
            hs.set_wall_clock(unix, now);
        }
    }

    /// Remote: is there a bond and no handshake under way (so a reconnect can start)?
    pub(crate) fn can_reconnect(&self) -> bool {
        matches!(&self.role, Role::Remote { hs, .. }
            if hs.identity().bond().is_some() && !hs.in_progress())
    }

    pub(crate) fn remote_identity(&self) -> Option<&RemoteIdentity> {
        match &self.role {
            Role::Remote { hs, .. } => Some(hs.identity()),
            _ => None,
        }
    }

    pub(crate) fn aircraft_identity(&self) -> Option<&AircraftIdentity> {
        match &self.role {
            Role::Aircraft(hs) => Some(hs.identity()),
            _ => None,
        }
    }

    /// Aircraft: replace the code (revokes every bond).
    pub(crate) fn change_code(&mut self, new_code: &[u8]) -> Result<(), HandshakeError> {
        match &mut self.role {
            Role::Aircraft(hs) => hs.change_code(new_code, &mut self.rng),
            _ => Err(HandshakeError::WrongRole),
        }
    }

    pub(crate) fn remaining_attempts(&self) -> Option<u32> {
        match &self.role {
            Role::Aircraft(hs) => Some(hs.remaining_attempts()),
            _ => None,
        }
    }

    pub(crate) fn expensive_ops(&self) -> u64 {
        match &self.role {
            Role::Aircraft(hs) => hs.expensive_ops(),
            Role::Remote { hs, .. } => hs.ksf_runs(),
            Role::None => 0,
        }
    }

    /// The next handshake datagram to send now, and where to.
    pub(crate) fn poll_transmit(&mut self, now: Timestamp) -> Option<(SocketAddr, Vec<u8>)> {
        if let Some(reply) = self.replies.pop_front() {
            return Some(reply);
        }
        match &mut self.role {
            Role::Remote {
                hs,
                aircraft: Some(to),
            } => hs.poll_transmit(now).map(|frame| (*to, frame)),
            _ => None,
        }
    }

    pub(crate) fn has_pending_send(&self) -> bool {
        !self.replies.is_empty()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        match &self.role {
            Role::Remote { hs, .. } => hs.poll_timeout(),
            Role::Aircraft(hs) => hs.poll_timeout(),
            Role::None => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Timestamp, events: &mut Vec<HsEvent>) {
        match &mut self.role {
            Role::Remote { hs, .. } => hs.handle_timeout(now, &mut |e| events.push(e)),
            Role::Aircraft(hs) => hs.handle_timeout(now, &mut |e| events.push(e)),
            Role::None => {}
        }
    }

    /// An authenticated frame of the current session arrived.
    pub(crate) fn on_authenticated(&mut self, now: Timestamp, events: &mut Vec<HsEvent>) {
        match &mut self.role {
            Role::Remote { hs, .. } if !hs.confirmed() => {
                hs.on_confirmed(&mut |e| events.push(e));
                events.push(HsEvent::Confirmed);
            }
            Role::Aircraft(hs) => hs.touch(now),
            _ => {}
        }
    }

    /// A session was established: remember how to resume it.
    pub(crate) fn set_resumption(&mut self, next: Resumption, now: Timestamp) {
        match &mut self.role {
            Role::Remote { hs, .. } => hs.set_resumption(next),
            Role::Aircraft(hs) => hs.set_resumption(Some(next), now),
            Role::None => {}
        }
    }

    /// Take a handshake datagram from `from`. A reply, if any, is queued for `from`.
    ///
    /// # Errors
    /// Why the datagram was dropped; nothing changed then.
    pub(crate) fn handle(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        datagram: &[u8],
        current_index: u32,
        events: &mut Vec<HsEvent>,
    ) -> Result<Answer, HandshakeError> {
        let new_index = self.fresh_index(current_index);
        let rng = &mut self.rng;
        let reply = match &mut self.role {
            Role::Remote { hs, aircraft } => {
                if *aircraft != Some(from) {
                    // Only the aircraft this remote dialled answers its handshakes.
                    return Err(HandshakeError::Unexpected);
                }
                hs.handle(now, datagram, rng, &mut |e| events.push(e))?;
                Reply::None
            }
            Role::Aircraft(hs) => {
                hs.handle(now, datagram, new_index, rng, &mut |e| events.push(e))?
            }
            Role::None => return Err(HandshakeError::Unexpected),
        };
        Ok(match reply {
            Reply::None => Answer::Handled,
            Reply::Send(frame) => {
                self.replies.push_back((from, frame));
                Answer::Handled
            }
            Reply::Reconfirm => Answer::Reconfirm,
        })
    }

    /// Remote: leave (or not) a pairing's key stretching to the caller.
    pub(crate) fn set_defer_key_stretching(&mut self, defer: bool) {
        if let Role::Remote { hs, .. } = &mut self.role {
            hs.set_defer_key_stretching(defer);
        }
    }

    /// Remote: whether a pairing's key stretching waits to be run.
    pub(crate) fn has_key_stretch(&self) -> bool {
        matches!(&self.role, Role::Remote { hs, .. } if hs.has_stretch())
    }

    /// Remote: a pairing's key stretching, once, if one waits to be run.
    pub(crate) fn poll_key_stretch(&mut self) -> Option<KeyStretch> {
        match &mut self.role {
            Role::Remote { hs, .. } => hs.take_stretch(),
            _ => None,
        }
    }

    /// Remote: the result of a pairing's key stretching.
    ///
    /// # Errors
    /// As [`RemoteHandshake::on_stretched`]: [`HandshakeError::Unexpected`] for a stale
    /// result (nothing changed), else the verdict on the response it evaluated (its events
    /// are reported all the same).
    pub(crate) fn handle_key_stretched(
        &mut self,
        now: Timestamp,
        done: KeyStretched,
        events: &mut Vec<HsEvent>,
    ) -> Result<(), HandshakeError> {
        match &mut self.role {
            Role::Remote { hs, .. } => hs.on_stretched(now, done, &mut |e| events.push(e)),
            _ => Err(HandshakeError::WrongRole),
        }
    }

    /// Remote: the aircraft it dials, the only source of the handshake datagrams it takes.
    pub(crate) fn dialled(&self) -> Option<SocketAddr> {
        match &self.role {
            Role::Remote { aircraft, .. } => *aircraft,
            _ => None,
        }
    }

    /// Aircraft: the guarded OPAQUE evaluation of a storage unlock (the same routine as a
    /// pairing's: KE1 checked, an attempt spent, then OPAQUE).
    pub(crate) fn unlock_login(
        &mut self,
        now: Timestamp,
        ke1: &[u8],
        context: &[u8; 32],
    ) -> Result<GuardedLogin, crate::handshake::aircraft::Guarded> {
        match &mut self.role {
            Role::Aircraft(hs) => {
                hs.guarded_login(now, ke1, Purpose::Unlock, |_| *context, &mut self.rng)
            }
            _ => Err(crate::handshake::aircraft::Guarded::NotAircraft),
        }
    }

    /// Aircraft: the code was proven in a storage unlock: that bond's failures are cleared.
    /// Returns the unlocks it has left.
    pub(crate) fn unlock_proven(&mut self) -> Option<u32> {
        match &mut self.role {
            Role::Aircraft(hs) => Some(hs.unlock_proven()),
            _ => None,
        }
    }

    /// Aircraft: failed unlocks the running session's bond may still make.
    pub(crate) fn remaining_unlocks(&self) -> Option<u32> {
        match &self.role {
            Role::Aircraft(hs) => Some(hs.remaining_unlocks()),
            _ => None,
        }
    }

    /// Aircraft: accept pairings until `until`.
    pub(crate) fn open_pairing_window(&mut self, until: Timestamp) -> Result<(), HandshakeError> {
        match &mut self.role {
            Role::Aircraft(hs) => {
                hs.open_pairing_window(until);
                Ok(())
            }
            _ => Err(HandshakeError::WrongRole),
        }
    }

    /// Aircraft: refuse pairings from now on.
    pub(crate) fn close_pairing_window(&mut self) {
        if let Role::Aircraft(hs) = &mut self.role {
            hs.close_pairing_window();
        }
    }

    /// Aircraft: whether a pairing would be accepted at `now`.
    pub(crate) fn pairing_window_open(&self, now: Timestamp) -> bool {
        matches!(&self.role, Role::Aircraft(hs) if hs.pairing_window_open(now))
    }

    /// Aircraft: forget every failed attempt (the owner's call).
    pub(crate) fn reset_attempts(&mut self) -> Result<(), HandshakeError> {
        match &mut self.role {
            Role::Aircraft(hs) => hs.reset_attempts(),
            _ => Err(HandshakeError::WrongRole),
        }
    }
}
