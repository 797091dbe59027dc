//! [`Pair`]: an aircraft and a remote linked over two simulated [`Path`]s, stepped in
//! virtual time (in the spirit of quinn-proto's test `Pair`).

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::handshake::{AircraftIdentity, MemoryAttemptStore, RemoteIdentity};
use rotorlink::{
    AeadProvider, Channel, Config, ConfigError, Event, Link, Role, RustCrypto, Secret, Timestamp,
};

use crate::path::{Path, PathConfig};

/// Which end of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The aircraft.
    Aircraft,
    /// The remote.
    Remote,
}

/// An event taken out of a link, owning its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A message, with the time it was delivered.
    Message(Timestamp, Channel, Vec<u8>),
    /// Any other event, in its `Debug` form.
    Other(Timestamp, String),
}

/// Two links and the radio between them.
pub struct Pair<P: AeadProvider = RustCrypto> {
    /// The aircraft's link.
    pub aircraft: Link<P>,
    /// The remote's link.
    pub remote: Link<P>,
    /// Aircraft to remote.
    pub downlink: Path,
    /// Remote to aircraft.
    pub uplink: Path,
    now: Timestamp,
    buf: Vec<u8>,
    /// Everything the aircraft's link delivered.
    pub aircraft_received: Vec<Received>,
    /// Everything the remote's link delivered.
    pub remote_received: Vec<Received>,
}

impl<P: AeadProvider> Pair<P> {
    /// Two links sharing a fixed session secret (as a completed handshake would leave them),
    /// over paths seeded from `seed`.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` is invalid.
    pub fn new(
        config: Config,
        uplink: PathConfig,
        downlink: PathConfig,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        let secret = Secret::new([0x5a; 32]);
        let hash = [0xa5; 32];
        let t = Timestamp::ZERO;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let aircraft = Link::from_secret(
            Role::Aircraft,
            config.clone(),
            &secret,
            &hash,
            1,
            2,
            &mut rng,
            t,
        )?;
        let remote = Link::from_secret(Role::Remote, config, &secret, &hash, 2, 1, &mut rng, t)?;
        Ok(Self::with_links(aircraft, remote, uplink, downlink, seed))
    }

    /// An aircraft provisioned with `aircraft_code` and a new remote that starts pairing
    /// with `pilot_code` (the handshake runs as the simulation runs). Every key and nonce
    /// comes from `seed`.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` is invalid (or its key-stretching parameters are).
    pub fn pairing(
        config: Config,
        uplink: PathConfig,
        downlink: PathConfig,
        seed: u64,
        aircraft_code: &[u8],
        pilot_code: &[u8],
    ) -> Result<Self, ConfigError> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
        let link_id = *b"rotorlink-sim-01";
        let identity = AircraftIdentity::provision(link_id, aircraft_code, config.ksf, &mut rng)
            .map_err(|_| ConfigError("ksf: invalid key-stretching parameters"))?;
        let t = Timestamp::ZERO;
        let attempts = Box::new(MemoryAttemptStore::new());
        let aircraft = Link::aircraft(config.clone(), identity, attempts, &mut rng, t)?;
        let remote_id = RemoteIdentity::generate(&mut rng);
        let mut remote = Link::remote(config, remote_id, link_id, &mut rng, t)?;
        // Starting a pairing on a fresh remote cannot fail.
        let _ = remote.pair(pilot_code, t);
        Ok(Self::with_links(aircraft, remote, uplink, downlink, seed))
    }

    fn with_links(
        aircraft: Link<P>,
        remote: Link<P>,
        uplink: PathConfig,
        downlink: PathConfig,
        seed: u64,
    ) -> Self {
        let mtu = aircraft.config().mtu;
        Pair {
            aircraft,
            remote,
            downlink: Path::new(downlink, seed.wrapping_mul(2)),
            uplink: Path::new(uplink, seed.wrapping_mul(2).wrapping_add(1)),
            now: Timestamp::ZERO,
            buf: vec![0; mtu],
            aircraft_received: Vec::new(),
            remote_received: Vec::new(),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The link of one side.
    pub fn link(&mut self, side: Side) -> &mut Link<P> {
        match side {
            Side::Aircraft => &mut self.aircraft,
            Side::Remote => &mut self.remote,
        }
    }

    /// Move every datagram both links want to send now onto the paths, deliver every
    /// datagram that has arrived, and collect events. Returns true if anything moved.
    pub fn flush(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        while let Some(t) = self.aircraft.poll_transmit(now, &mut self.buf) {
            self.downlink.send(now, &self.buf[..t.len]);
            moved = true;
        }
        while let Some(t) = self.remote.poll_transmit(now, &mut self.buf) {
            self.uplink.send(now, &self.buf[..t.len]);
            moved = true;
        }
        while let Some(d) = self.downlink.receive(now) {
            // Drops are counted in the link's stats; the simulation carries on.
            let _ = self.remote.handle_datagram(now, &d);
            moved = true;
        }
        while let Some(d) = self.uplink.receive(now) {
            let _ = self.aircraft.handle_datagram(now, &d);
            moved = true;
        }
        collect(&mut self.aircraft, now, &mut self.aircraft_received);
        collect(&mut self.remote, now, &mut self.remote_received);
        moved
    }

    /// The next moment anything happens: an arrival or a link timer.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        [
            self.downlink.next_arrival(),
            self.uplink.next_arrival(),
            self.aircraft.poll_timeout(),
            self.remote.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Advance virtual time to `until`, processing everything that happens on the way.
    pub fn run_until(&mut self, until: Timestamp) {
        loop {
            while self.flush() {}
            let next = match self.next_wakeup() {
                Some(t) if t <= until => t.max(self.now),
                _ => break,
            };
            self.advance_to(next);
        }
        self.advance_to(until);
        while self.flush() {}
    }

    /// Advance virtual time by `d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    fn advance_to(&mut self, t: Timestamp) {
        if t > self.now {
            self.now = t;
        }
        let now = self.now;
        self.aircraft.handle_timeout(now);
        self.remote.handle_timeout(now);
    }

    /// Messages one side received on `channel`, in order.
    pub fn messages(&self, side: Side, channel: Channel) -> Vec<&[u8]> {
        let log = match side {
            Side::Aircraft => &self.aircraft_received,
            Side::Remote => &self.remote_received,
        };
        log.iter()
            .filter_map(|r| match r {
                Received::Message(_, c, m) if *c == channel => Some(m.as_slice()),
                _ => None,
            })
            .collect()
    }
}

fn collect<P: AeadProvider>(link: &mut Link<P>, now: Timestamp, into: &mut Vec<Received>) {
    while let Some(ev) = link.poll_event() {
        into.push(match ev {
            Event::Message { channel, data } => Received::Message(now, channel, data.to_vec()),
            other => Received::Other(now, format!("{other:?}")),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_path_delivers_everything_after_the_delay() {
        let mut pair: Pair = Pair::new(
            Config::default(),
            PathConfig::default(),
            PathConfig::default(),
            1,
        )
        .unwrap();
        pair.remote.send(Channel::Control, b"up").unwrap();
        pair.aircraft.send(Channel::Telemetry, b"down").unwrap();
        pair.run_for(Duration::from_millis(20));
        assert_eq!(pair.messages(Side::Aircraft, Channel::Control), [b"up"]);
        assert_eq!(pair.messages(Side::Remote, Channel::Telemetry), [b"down"]);
        match &pair.remote_received[0] {
            Received::Message(t, _, _) => assert_eq!(*t, Timestamp::from_millis(5)),
            other => panic!("{other:?}"),
        }
    }
}
