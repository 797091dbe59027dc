//! [`Pair`]: an aircraft and a remote linked over two simulated [`RadioChannel`]s, stepped
//! in virtual time (in the spirit of quinn-proto's test `Pair`), with an optional on-path
//! [`Adversary`] between the links and the channels.

use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::handshake::{AircraftIdentity, MemoryAttemptStore, RemoteIdentity};
use rotorlink::{
    AeadProvider, Channel, Config, ConfigError, Event, Link, Role, RustCrypto, Secret, Timestamp,
};

use crate::channel::{Adversary, ChannelConfig, Direction, OnPath, RadioChannel};
use crate::pcap::{AIRCRAFT_ADDR, REMOTE_ADDR};

/// The address of `role`'s end on the simulated radio (the radio has none; the link only
/// compares them, and captures show these).
pub fn addr(role: Role) -> SocketAddr {
    SocketAddr::V4(match role {
        Role::Aircraft => AIRCRAFT_ADDR,
        Role::Remote => REMOTE_ADDR,
    })
}

/// How long the owner opens the aircraft's pairing window in a [`Pair::pairing`] flight.
pub const PAIRING_WINDOW: Duration = Duration::from_secs(120);

/// An event taken out of a link, owning its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A message, with the time it was delivered.
    Message(Timestamp, Channel, Vec<u8>),
    /// Any other event.
    Event(Timestamp, Event),
}

/// Two links and the radio between them.
///
/// Every datagram a link transmits goes to the [`Adversary`], if one is set
/// ([`Pair::set_adversary`]), and then into the channel of its direction.
pub struct Pair<P: AeadProvider = RustCrypto> {
    /// The aircraft's link.
    pub aircraft: Link<P>,
    /// The remote's link.
    pub remote: Link<P>,
    /// Aircraft to remote.
    pub downlink: RadioChannel,
    /// Remote to aircraft.
    pub uplink: RadioChannel,
    on_path: OnPath,
    now: Timestamp,
    buf: Vec<u8>,
    /// Everything the aircraft's link delivered.
    pub aircraft_received: Vec<Received>,
    /// Everything the remote's link delivered.
    pub remote_received: Vec<Received>,
}

impl<P: AeadProvider> Pair<P> {
    /// Two links sharing a fixed session secret (as a completed handshake would leave them),
    /// over channels seeded from `seed`.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` is invalid, or either channel's configuration is (see
    /// [`ChannelConfig::validate`]).
    pub fn new(
        config: Config,
        uplink: ChannelConfig,
        downlink: ChannelConfig,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        uplink.validate()?;
        downlink.validate()?;
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
            addr(Role::Remote),
            &mut rng,
            t,
        )?;
        let remote = Link::from_secret(
            Role::Remote,
            config,
            &secret,
            &hash,
            2,
            1,
            addr(Role::Aircraft),
            &mut rng,
            t,
        )?;
        Ok(Self::with_links(aircraft, remote, uplink, downlink, seed))
    }

    /// An aircraft provisioned with `aircraft_code` and a new remote that starts pairing
    /// with `pilot_code` (the handshake runs as the simulation runs). Every key and nonce
    /// comes from `seed`.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` is invalid (or its key-stretching parameters are), or
    /// either channel's configuration is (see [`ChannelConfig::validate`]).
    pub fn pairing(
        config: Config,
        uplink: ChannelConfig,
        downlink: ChannelConfig,
        seed: u64,
        aircraft_code: &[u8],
        pilot_code: &[u8],
    ) -> Result<Self, ConfigError> {
        uplink.validate()?;
        downlink.validate()?;
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
        let link_id = *b"rotorlink-sim-01";
        let identity = AircraftIdentity::provision(link_id, aircraft_code, config.ksf, &mut rng)
            .map_err(|_| ConfigError("ksf: invalid key-stretching parameters"))?;
        let t = Timestamp::ZERO;
        let attempts = Box::new(MemoryAttemptStore::new());
        let mut aircraft = Link::aircraft(config.clone(), identity, attempts, &mut rng, t)?;
        // The owner opens the pairing window for the pilot's remote; it closes once paired.
        let _ = aircraft.open_pairing_window(PAIRING_WINDOW, t);
        let remote_id = RemoteIdentity::generate(&mut rng);
        let mut remote = Link::remote(config, remote_id, link_id, &mut rng, t)?;
        // Starting a pairing on a fresh remote cannot fail.
        let _ = remote.pair(pilot_code, addr(Role::Aircraft), t);
        Ok(Self::with_links(aircraft, remote, uplink, downlink, seed))
    }

    fn with_links(
        aircraft: Link<P>,
        remote: Link<P>,
        uplink: ChannelConfig,
        downlink: ChannelConfig,
        seed: u64,
    ) -> Self {
        let mtu = aircraft.config().mtu;
        Pair {
            aircraft,
            remote,
            downlink: RadioChannel::new(downlink, seed.wrapping_mul(2)),
            uplink: RadioChannel::new(uplink, seed.wrapping_mul(2).wrapping_add(1)),
            on_path: OnPath::new(),
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

    /// The link of one end.
    pub fn link(&mut self, role: Role) -> &mut Link<P> {
        match role {
            Role::Aircraft => &mut self.aircraft,
            Role::Remote => &mut self.remote,
        }
    }

    /// The channel carrying datagrams travelling `dir`.
    pub fn channel(&mut self, dir: Direction) -> &mut RadioChannel {
        match dir {
            Direction::Uplink => &mut self.uplink,
            Direction::Downlink => &mut self.downlink,
        }
    }

    /// Put `adversary` on the path between the links and the channels, replacing (and
    /// returning) any other. Datagrams the old one scheduled still go out.
    pub fn set_adversary(&mut self, adversary: Box<dyn Adversary>) -> Option<Box<dyn Adversary>> {
        self.on_path.set(adversary)
    }

    /// Take the adversary off the path; datagrams it scheduled still go out.
    pub fn take_adversary(&mut self) -> Option<Box<dyn Adversary>> {
        self.on_path.take()
    }

    /// Put `datagram` on the air travelling `dir` at `at` (now, if `at` has passed), as an
    /// adversary would: it bypasses the adversary and enters the channel, impairments and
    /// all. [`Pair::run_until`] wakes up for it.
    pub fn inject(&mut self, dir: Direction, datagram: Vec<u8>, at: Timestamp) {
        self.on_path.schedule(at.max(self.now), dir, datagram);
    }

    /// Move every datagram both links want to send now onto the channels (through the
    /// adversary, if any), put every injection due onto them, deliver every datagram that
    /// has arrived, and collect events. Returns true if anything moved.
    pub fn flush(&mut self) -> bool {
        let now = self.now;
        let mut moved = self
            .on_path
            .release(now, &mut self.uplink, &mut self.downlink);
        while let Some(t) = self.aircraft.poll_transmit(now, &mut self.buf) {
            self.on_path.transmit(
                now,
                Direction::Downlink,
                &self.buf[..t.len],
                &mut self.uplink,
                &mut self.downlink,
            );
            moved = true;
        }
        while let Some(t) = self.remote.poll_transmit(now, &mut self.buf) {
            self.on_path.transmit(
                now,
                Direction::Uplink,
                &self.buf[..t.len],
                &mut self.uplink,
                &mut self.downlink,
            );
            moved = true;
        }
        while let Some(d) = self.downlink.receive(now) {
            // Drops are counted in the link's stats; the simulation carries on.
            // A radio has no addresses: everything on the downlink comes from the aircraft's
            // side, an adversary's injections included.
            let _ = self.remote.handle_datagram(now, addr(Role::Aircraft), &d);
            moved = true;
        }
        while let Some(d) = self.uplink.receive(now) {
            let _ = self.aircraft.handle_datagram(now, addr(Role::Remote), &d);
            moved = true;
        }
        collect(&mut self.aircraft, now, &mut self.aircraft_received);
        collect(&mut self.remote, now, &mut self.remote_received);
        moved
    }

    /// The next moment anything happens: an arrival, an injection or a link timer.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        [
            self.downlink.next_arrival(),
            self.uplink.next_arrival(),
            self.on_path.next_injection(),
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

    /// Messages one end received on `channel`, in order.
    pub fn messages(&self, role: Role, channel: Channel) -> Vec<&[u8]> {
        let log = match role {
            Role::Aircraft => &self.aircraft_received,
            Role::Remote => &self.remote_received,
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
            Event::Message { channel, data } => {
                let message = data.to_vec();
                link.recycle(data);
                Received::Message(now, channel, message)
            }
            other => Received::Event(now, other),
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
            ChannelConfig::default(),
            ChannelConfig::default(),
            1,
        )
        .unwrap();
        pair.remote.send(Channel::Control, b"up").unwrap();
        pair.aircraft.send(Channel::Telemetry, b"down").unwrap();
        pair.run_for(Duration::from_millis(20));
        assert_eq!(pair.messages(Role::Aircraft, Channel::Control), [b"up"]);
        assert_eq!(pair.messages(Role::Remote, Channel::Telemetry), [b"down"]);
        match &pair.remote_received[0] {
            Received::Message(t, _, _) => assert_eq!(*t, Timestamp::from_millis(5)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_flight_over_a_bad_radio() {
        use crate::channel::{Burst, Recorder};
        let radio = ChannelConfig {
            loss: 0.05,
            burst: Some(Burst::mean_length(3.0, 0.05)),
            jitter: Duration::from_millis(3),
            reorder: 0.05,
            duplicate: 0.05,
            corrupt: 0.05,
            rate_bps: Some(2_000_000),
            queue_bytes: 4_000,
            ..ChannelConfig::default()
        };
        let fly = |seed| {
            let mut pair: Pair =
                Pair::new(Config::default(), radio.clone(), radio.clone(), seed).unwrap();
            let recorder = Recorder::new();
            pair.set_adversary(Box::new(recorder.clone()));
            for i in 0..200u32 {
                pair.aircraft
                    .send(Channel::Video, &vec![i as u8; 3_000])
                    .unwrap();
                pair.remote
                    .send(Channel::Control, &i.to_be_bytes())
                    .unwrap();
                pair.run_for(Duration::from_millis(5));
            }
            pair.run_for(Duration::from_secs(1));
            (
                pair.aircraft_received,
                pair.remote_received,
                recorder.log(),
                pair.uplink.stats(),
                pair.downlink.stats(),
            )
        };
        let one = fly(3);
        assert!(
            one.4.dropped_queue > 0 && one.4.lost_burst > 0,
            "{:?}",
            one.4
        );
        assert_eq!(one, fly(3));
        assert_ne!(one, fly(4));
    }

    #[test]
    fn a_pair_with_an_adversary_can_move_to_another_thread() {
        fn send<T: Send>(_: &T) {}
        let mut pair: Pair = Pair::new(
            Config::default(),
            ChannelConfig::default(),
            ChannelConfig::default(),
            1,
        )
        .unwrap();
        pair.set_adversary(Box::new(crate::channel::Recorder::new()));
        send(&pair);
    }

    #[test]
    fn an_invalid_channel_is_a_config_error() {
        let bad = ChannelConfig {
            duplicate: 1.5,
            ..ChannelConfig::default()
        };
        let err = Pair::<RustCrypto>::new(Config::default(), ChannelConfig::default(), bad, 1)
            .err()
            .unwrap();
        assert!(err.0.starts_with("duplicate:"), "{err}");
    }
}
