//! Building a link for each role and running its handshakes.

use alloc::boxed::Box;
use alloc::vec::Vec;

use rand_core::{CryptoRng, RngCore};

use super::{Handshake, Link, Pending};
use crate::channel::reliable::{ReliableReceiver, ReliableSender};
use crate::channel::video::{Reassembler, VideoSender};
use crate::channel::Role;
use crate::config::{Config, ConfigError};
use crate::crypto::AeadProvider;
use crate::error::Error;
use crate::handshake::aircraft::{AircraftHandshake, BoxedAttemptStore, Reply};
use crate::handshake::keys::{resumption, LinkId};
use crate::handshake::remote::RemoteHandshake;
use crate::handshake::{
    AircraftIdentity, Established, HandshakeError, HsEvent, Kind, RefusalReason, RemoteIdentity,
};
use crate::time::Timestamp;

fn seed(rng: &mut (impl RngCore + CryptoRng)) -> [u8; 32] {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    seed
}

impl<P: AeadProvider> Link<P> {
    /// A remote, not yet connected. Start it with [`Link::pair`] (first time, with the
    /// security code) or [`Link::connect`] (bonded).
    ///
    /// `link_id` is the aircraft's public link id. `rng` seeds the link's own generator for
    /// ephemeral keys; the link keeps no reference to it.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` fails [`Config::validate`].
    pub fn remote(
        config: Config,
        identity: RemoteIdentity,
        link_id: LinkId,
        rng: &mut (impl RngCore + CryptoRng),
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        config.validate_for_handshakes()?;
        let mut link = Self::unconnected(Role::Remote, config, seed(rng), now)?;
        let hs = RemoteHandshake::new(
            identity,
            link_id,
            link.config.ksf,
            link.config.handshake.clone(),
        );
        link.handshake = Some(Handshake::Remote(Box::new(hs)));
        Ok(link)
    }

    /// An aircraft, listening for remotes. `attempts` persists the count of failed attempts
    /// at the code (see [`crate::handshake::limits`]).
    ///
    /// # Errors
    /// [`ConfigError`] if `config` fails [`Config::validate`].
    pub fn aircraft(
        config: Config,
        identity: AircraftIdentity,
        attempts: BoxedAttemptStore,
        rng: &mut (impl RngCore + CryptoRng),
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        config.validate_for_handshakes()?;
        let mut link = Self::unconnected(Role::Aircraft, config, seed(rng), now)?;
        let hs = AircraftHandshake::new(
            identity,
            attempts,
            link.config.limits.clone(),
            link.config.handshake.clone(),
            now,
        );
        link.handshake = Some(Handshake::Aircraft(Box::new(hs)));
        Ok(link)
    }

    fn fresh_index(&mut self) -> u32 {
        loop {
            let i = self.rng.next_u32();
            if i != 0 && i != self.local_index {
                return i;
            }
        }
    }

    /// Remote: link to the aircraft with its security code (OPAQUE). On success the link
    /// reports [`crate::Event::Connected`] and [`crate::Event::Bonded`]; later sessions use
    /// [`Link::connect`] without the code.
    ///
    /// # Errors
    /// [`Error::Handshake`] with [`HandshakeError::WrongRole`] on the aircraft.
    pub fn pair(&mut self, code: &[u8], now: Timestamp) -> Result<(), Error> {
        let index = self.fresh_index();
        let Some(Handshake::Remote(hs)) = &mut self.handshake else {
            return Err(Error::Handshake(HandshakeError::WrongRole));
        };
        hs.start_pair(code, index, now, &mut self.rng)
            .map_err(Error::Handshake)
    }

    /// Remote: open a session with the bonded aircraft (a one-round-trip resume when the
    /// previous session can be resumed, else the full session handshake).
    ///
    /// # Errors
    /// [`Error::Handshake`]: [`HandshakeError::NotBonded`] before pairing,
    /// [`HandshakeError::WrongRole`] on the aircraft.
    pub fn connect(&mut self, now: Timestamp) -> Result<(), Error> {
        let index = self.fresh_index();
        let Some(Handshake::Remote(hs)) = &mut self.handshake else {
            return Err(Error::Handshake(HandshakeError::WrongRole));
        };
        hs.start_connect(index, now, &mut self.rng)
            .map_err(Error::Handshake)
    }

    /// The remote's identity (with its bond once paired), to persist after
    /// [`crate::Event::Bonded`].
    pub fn remote_identity(&self) -> Option<&RemoteIdentity> {
        match &self.handshake {
            Some(Handshake::Remote(hs)) => Some(hs.identity()),
            _ => None,
        }
    }

    /// The aircraft's identity (with its bonds), to persist after [`crate::Event::Bonded`].
    pub fn aircraft_identity(&self) -> Option<&AircraftIdentity> {
        match &self.handshake {
            Some(Handshake::Aircraft(hs)) => Some(hs.identity()),
            _ => None,
        }
    }

    /// Aircraft: replace the security code (over a channel the owner trusts). Every bond is
    /// revoked and the current session is closed: each remote must pair again with the new
    /// code. Persist [`Link::aircraft_identity`] afterwards.
    ///
    /// # Errors
    /// [`Error::Handshake`]: [`HandshakeError::WrongRole`] on a remote,
    /// [`HandshakeError::Store`] if the attempt counter cannot be reset.
    pub fn change_code(&mut self, new_code: &[u8]) -> Result<(), Error> {
        match &mut self.handshake {
            Some(Handshake::Aircraft(hs)) => hs.change_code(new_code, &mut self.rng),
            _ => Err(HandshakeError::WrongRole),
        }
        .map_err(Error::Handshake)?;
        if self.keys.is_some() {
            self.close(super::CloseCode::CODE_CHANGED);
        }
        Ok(())
    }

    /// Failed attempts at the code left before the aircraft locks out (aircraft only).
    pub fn remaining_attempts(&self) -> Option<u32> {
        match &self.handshake {
            Some(Handshake::Aircraft(hs)) => Some(hs.guard().remaining_attempts()),
            _ => None,
        }
    }

    /// OPAQUE evaluations and X25519 operations the aircraft spent on initiations.
    pub fn handshake_crypto_ops(&self) -> u64 {
        match &self.handshake {
            Some(Handshake::Aircraft(hs)) => hs.expensive_ops,
            _ => 0,
        }
    }

    /// True once a session is up and confirmed: application data flows.
    pub fn is_connected(&self) -> bool {
        self.may_send_data()
    }

    pub(super) fn may_send_data(&self) -> bool {
        self.keys.is_some()
            && match &self.handshake {
                Some(Handshake::Remote(hs)) => hs.confirmed(),
                _ => true,
            }
    }

    pub(super) fn next_handshake_frame(&mut self, now: Timestamp) -> Option<Vec<u8>> {
        if let Some(frame) = self.handshake_out.pop_front() {
            return Some(frame);
        }
        match &mut self.handshake {
            Some(Handshake::Remote(hs)) => hs.poll_transmit(now),
            _ => None,
        }
    }

    pub(super) fn handshake_timeout(&self) -> Option<Timestamp> {
        match &self.handshake {
            Some(Handshake::Remote(hs)) => hs.poll_timeout(),
            Some(Handshake::Aircraft(hs)) => hs.poll_timeout(),
            None => None,
        }
    }

    pub(super) fn handshake_timers(&mut self, now: Timestamp) {
        let mut out = Vec::new();
        match &mut self.handshake {
            Some(Handshake::Remote(hs)) => hs.handle_timeout(now, &mut |e| out.push(e)),
            Some(Handshake::Aircraft(hs)) => hs.handle_timeout(now, &mut |e| out.push(e)),
            None => {}
        }
        for e in out {
            self.apply(e, now);
        }
    }

    /// An authenticated frame arrived: the peer holds the session keys.
    pub(super) fn on_authenticated(&mut self, now: Timestamp) {
        let mut out = Vec::new();
        match &mut self.handshake {
            Some(Handshake::Remote(hs)) if !hs.confirmed() => {
                hs.on_confirmed(&mut |e| out.push(e));
                out.push(HsEvent::Confirmed);
            }
            Some(Handshake::Aircraft(hs)) => hs.touch(now),
            _ => {}
        }
        for e in out {
            self.apply(e, now);
        }
    }

    /// The remote reconnects by itself when the link is lost (if configured and bonded).
    pub(super) fn on_link_lost(&mut self, now: Timestamp) {
        if !self.config.reconnect_on_loss {
            return;
        }
        let bonded = matches!(&self.handshake, Some(Handshake::Remote(hs))
            if hs.identity().bond().is_some() && !hs.in_progress());
        if bonded {
            let _ = self.connect(now);
        }
    }

    pub(super) fn receive_handshake(
        &mut self,
        now: Timestamp,
        datagram: &[u8],
    ) -> Result<(), Error> {
        let mut out = Vec::new();
        // Drawn before any key material, from the same generator: an index is public.
        let new_index = self.fresh_index();
        let rng = &mut self.rng;
        let result = match &mut self.handshake {
            Some(Handshake::Remote(hs)) => hs
                .handle(now, datagram, rng, &mut |e| out.push(e))
                .map(|()| Reply::None),
            Some(Handshake::Aircraft(hs)) => {
                hs.handle(now, datagram, new_index, rng, &mut |e| out.push(e))
            }
            None => Err(HandshakeError::Unexpected),
        };
        for e in out {
            self.apply(e, now);
        }
        match result.map_err(Error::Handshake)? {
            Reply::None => {}
            Reply::Send(frame) => self.handshake_out.push_back(frame),
            Reply::Reconfirm => self.reconfirm = true,
        }
        Ok(())
    }

    fn apply(&mut self, event: HsEvent, now: Timestamp) {
        match event {
            HsEvent::Established(e) => self.establish(e, now),
            HsEvent::Confirmed => {
                if let Some(kind) = self.connected_kind {
                    self.push_event(Pending::Connected(kind));
                }
            }
            HsEvent::PairingRejected { remaining_attempts } => {
                self.push_event(Pending::PairingRejected(remaining_attempts));
            }
            HsEvent::LockedOut { until } => self.push_event(Pending::LockedOut(until)),
            HsEvent::Refused {
                reason,
                remaining_attempts,
                retry_at,
            } => {
                if reason == RefusalReason::LockedOut {
                    self.push_event(Pending::LockedOut(retry_at));
                }
                self.push_event(Pending::HandshakeRefused(
                    reason,
                    remaining_attempts,
                    retry_at,
                ));
            }
            HsEvent::Bonded => self.push_event(Pending::Bonded),
            HsEvent::Unconfirmed => {
                self.keys = None;
                self.push_event(Pending::HandshakeFailed(HandshakeError::Timeout));
            }
            HsEvent::Failed(error) => self.push_event(Pending::HandshakeFailed(error)),
        }
    }

    fn establish(&mut self, e: Established, now: Timestamp) {
        // A new pairing or session starts the channels afresh; a resume continues them.
        if self.connected_kind.is_some() && e.kind != Kind::Resume {
            self.reset_channels();
        }
        let unlocked = self.storage_unlocked;
        self.install_keys(
            &e.handshake_secret,
            &e.transcript_hash,
            e.local_index,
            e.peer_index,
            now,
        );
        if e.kind == Kind::Resume {
            // The same session, continued: the code proven in it still holds.
            self.storage_unlocked = unlocked;
        }
        self.stats.handshakes_completed += 1;
        self.state = super::State::Open;
        self.connected_kind = Some(e.kind);
        let next = resumption(&e.handshake_secret, &e.transcript_hash);
        match &mut self.handshake {
            Some(Handshake::Remote(hs)) => hs.set_resumption(next),
            Some(Handshake::Aircraft(hs)) => {
                hs.set_resumption(Some(next), now);
                // Tell the remote at once that the session is up.
                self.reconfirm = true;
                self.push_event(Pending::Connected(e.kind));
            }
            None => {}
        }
    }

    fn reset_channels(&mut self) {
        let config = &self.config;
        self.control_out = None;
        self.telemetry_out.clear();
        self.video_out = VideoSender::default();
        self.storage_out = ReliableSender::new(config);
        self.storage_in = ReliableReceiver::new(config);
        self.reassembler = Reassembler::new(
            config.video_reassembly_slots,
            config.max_video_message,
            config.video_reassembly_timeout,
        );
        self.newest_control = None;
    }
}
