//! Fixtures of the adversary suite, `tests/adversary_*.rs`: the link against an attacker on
//! the radio (PROTOCOL.md Part III; the threat model is in SECURITY.md).
//!
//! Every scenario flies the simulator (`rotorlink_sim::Pair` with the fake aircraft and
//! remote applications: sticks at 100 Hz, telemetry at 50 Hz, video, an unlock with the code
//! and a flight-log download over the storage channel) with an on-path [`Adversary`] that
//! attacks the frames it sees, and checks three things:
//!
//! 1. the attack is refused: no forged, altered, replayed or reflected datagram is ever
//!    delivered, and no handshake under attack yields a session, a bond or an unlock;
//! 2. each refusal is counted in the receiver's `Stats` under the right reason. Where it can,
//!    the adversary predicts the reason of every datagram it puts on the air from what it
//!    sees (a model of the receiver's checks before the tag: header validation, receiver
//!    index, replay window, counter limit; see [`Model`]), and the test compares the
//!    prediction with the counters exactly;
//! 3. legitimate traffic is not lost beyond what the attack itself dropped: over a clean
//!    radio, an attack that only adds datagrams must cost nothing at all.
//!
//! The scenarios, by concern:
//!
//! - `adversary_baseline.rs`: the same flight with nothing on the path (the control);
//! - `adversary_replay.rs`: replayed frames;
//! - `adversary_tamper.rs`: bit flips, truncation, extension, forgery and splicing within a
//!   session;
//! - `adversary_reflection.rs`: reflection and splicing across sessions;
//! - `adversary_limits.rs`: counters, key updates and their limits (nonce reuse);
//! - `adversary_keys.rs`: key confirmation (P3), leaked traffic secrets (P4), the code on the
//!   air (P1);
//! - `adversary_handshake.rs`: downgrade, man in the middle, code change, online guessing;
//! - `adversary_flood.rs`: floods of forged and replayed initiations;
//! - `adversary_storage.rs`: the storage channel and its unlock (P8);
//! - `adversary_kat.rs`: known-answer tests of the primitives and low-order keys.
//!
//! Helpers that serve a single concern (the replayer, the mutations, the attacker's guessing
//! remote, the forged initiations, the rogue session) live in that concern's file.

// Each `adversary_*.rs` test binary uses only part of these fixtures.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::handshake::limits::LimitsConfig;
use rotorlink::handshake::KsfParams;
use rotorlink::wire::{counter_from_packet_number, Frame, Header};
use rotorlink::Role;
use rotorlink::{Channel, Config, Event, KeyStretched, Stats, Timestamp};
use rotorlink_sim::aircraft::{AircraftApp, AircraftConfig};
use rotorlink_sim::pair::Received;
use rotorlink_sim::remote::RemoteApp;
use rotorlink_sim::{Adversary, Air, ChannelConfig, Direction, FnAdversary, Pair};

/// The code the aircraft is provisioned with and the pilot types.
pub(crate) const CODE: &[u8] = b"246813";
/// A code that is not the aircraft's.
pub(crate) const WRONG: &[u8] = b"135792";
/// The link id `Pair::pairing` provisions its aircraft with.
pub(crate) const LINK_ID: [u8; 16] = *b"rotorlink-sim-01";

pub(crate) const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn lock<T>(m: &Arc<Mutex<T>>) -> MutexGuard<'_, T> {
    m.lock().unwrap()
}

pub(crate) fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Fast key stretching (the tests run OPAQUE many times); everything else as deployed.
pub(crate) fn config() -> Config {
    Config {
        ksf: KsfParams::INSECURE_FAST,
        ..Config::default()
    }
}

/// A small aircraft: 1 Mbit/s of video and a 64 KiB flight log keep a debug build fast.
pub(crate) fn aircraft_app() -> AircraftConfig {
    AircraftConfig {
        video_bitrate: 1_000_000,
        initial_log_len: 64 * 1024,
        ..AircraftConfig::default()
    }
}

pub(crate) fn is_encrypted(d: &[u8]) -> bool {
    d.get(1).is_some_and(|&t| t >= 0x10)
}

pub(crate) fn frame_type(d: &[u8]) -> Option<u8> {
    d.get(1).copied()
}

pub(crate) fn receiver_index(d: &[u8]) -> u32 {
    u32::from_be_bytes(d[4..8].try_into().unwrap())
}

pub(crate) fn set_receiver_index(d: &mut [u8], index: u32) {
    d[4..8].copy_from_slice(&index.to_be_bytes());
}

/// A genuine frame's counter: its packet number, the counter's low 32 bits, which is the
/// whole counter in these flights (they send far fewer than 2^32 frames).
pub(crate) fn counter(d: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes(d[8..12].try_into().unwrap()))
}

// ---------------------------------------------------------------------------------------
// A flight: the pair, both applications, and every event.
// ---------------------------------------------------------------------------------------

pub(crate) struct Flight {
    pub(crate) pair: Pair,
    pub(crate) aircraft: AircraftApp,
    pub(crate) remote: RemoteApp,
    /// Every event other than a message, in order, with the side that reported it.
    pub(crate) events: Vec<(Role, Timestamp, Event)>,
    /// How long the remote's key stretching takes outside its link, when [`Flight::fly`]
    /// runs it ([`Flight::stretch_outside`]).
    stretch_time: Option<Duration>,
    /// Results of that stretching, each handed back to the remote at its time.
    stretched: Vec<(Timestamp, KeyStretched)>,
}

impl Flight {
    /// A remote pairing (OPAQUE, the code) with an aircraft over a clean radio (5 ms each
    /// way); its pilot unlocks storage with `unlock_code` once connected.
    pub(crate) fn pairing_with(config: Config, seed: u64, unlock_code: &[u8]) -> Self {
        Self::pairing_app(config, seed, unlock_code, aircraft_app())
    }

    pub(crate) fn pairing_app(
        config: Config,
        seed: u64,
        unlock_code: &[u8],
        app: AircraftConfig,
    ) -> Self {
        let radio = ChannelConfig::default();
        let pair = Pair::pairing(config, radio.clone(), radio, seed, CODE, CODE).unwrap();
        Flight {
            pair,
            aircraft: AircraftApp::new(app, seed),
            remote: RemoteApp::new(unlock_code),
            events: Vec::new(),
            stretch_time: None,
            stretched: Vec::new(),
        }
    }

    /// The remote's key stretching (its pairing's and its unlock's) runs outside its link
    /// (`Link::set_defer_key_stretching`, as the tokio adapter does on blocking threads) and
    /// takes `time`, as on a controller: [`Flight::fly`] takes each job, runs it, and hands
    /// its result back `time` later.
    pub(crate) fn stretch_outside(&mut self, time: Duration) {
        self.pair.remote.set_defer_key_stretching(true);
        self.stretch_time = Some(time);
    }

    /// Take the remote's waiting key stretching and hand back the results that are due.
    fn run_key_stretching(&mut self, now: Timestamp) {
        let Some(time) = self.stretch_time else {
            return;
        };
        while let Some(job) = self.pair.remote.poll_key_stretch() {
            self.stretched.push((now + time, job.run()));
        }
        let (due, later) = std::mem::take(&mut self.stretched)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.stretched = later;
        for (_, done) in due {
            self.pair.remote.handle_key_stretched(now, done);
        }
    }

    /// Fly in steps of a millisecond until `done` holds, for `limit` at most; whether it
    /// held.
    pub(crate) fn fly_until(&mut self, limit: Duration, done: impl Fn(&Flight) -> bool) -> bool {
        let end = self.pair.now() + limit;
        while !done(self) {
            if self.pair.now() >= end {
                return false;
            }
            self.fly(ms(1));
        }
        true
    }

    pub(crate) fn pairing(config: Config, seed: u64) -> Self {
        Self::pairing_with(config, seed, CODE)
    }

    /// Fly for `d`: both applications run.
    pub(crate) fn fly(&mut self, d: Duration) {
        let end = self.pair.now() + d;
        while self.pair.now() < end {
            let now = self.pair.now();
            self.run_key_stretching(now);
            self.aircraft.poll(now, &mut self.pair.aircraft);
            self.remote.poll(now, &mut self.pair.remote);
            let stretched = self.stretched.iter().map(|(at, _)| *at).min();
            let next = self
                .aircraft
                .next_wakeup()
                .min(self.remote.next_wakeup())
                .min(stretched.unwrap_or(end))
                .min(end);
            self.pair.run_until(next.max(now));
            self.deliver();
        }
    }

    /// Run for `d` with both applications silent, so that everything in flight arrives.
    pub(crate) fn settle(&mut self, d: Duration) {
        self.pair.run_for(d);
        self.deliver();
    }

    fn deliver(&mut self) {
        for r in std::mem::take(&mut self.pair.aircraft_received) {
            match r {
                Received::Message(t, c, data) => {
                    self.aircraft
                        .on_message(t, c, &data, &mut self.pair.aircraft);
                }
                Received::Event(t, e) => {
                    self.aircraft.on_event(&e, &mut self.pair.aircraft);
                    self.events.push((Role::Aircraft, t, e));
                }
            }
        }
        for r in std::mem::take(&mut self.pair.remote_received) {
            match r {
                Received::Message(t, c, data) => self.remote.on_message(t, c, &data),
                Received::Event(t, e) => {
                    self.remote.on_event(&e);
                    self.events.push((Role::Remote, t, e));
                }
            }
        }
    }

    pub(crate) fn count(&self, side: Role, f: impl Fn(&Event) -> bool) -> usize {
        self.events
            .iter()
            .filter(|(s, _, e)| *s == side && f(e))
            .count()
    }
}

/// (sent, delivered) per channel: control (up), telemetry and video (down). A stick command
/// counts as sent once it is on the air (one frame each, never retransmitted): one the
/// application replaced before the link could send it (latest wins, e.g. after the test held
/// the applications back) was superseded, not lost.
pub(crate) fn traffic(pair: &Pair) -> [(u64, u64); 3] {
    let (a, r) = (pair.aircraft.stats(), pair.remote.stats());
    [
        (
            r.channel(Channel::Control).frames_sent,
            a.channel(Channel::Control).messages_delivered,
        ),
        (
            a.channel(Channel::Telemetry).messages_sent,
            r.channel(Channel::Telemetry).messages_delivered,
        ),
        (
            a.channel(Channel::Video).messages_sent,
            r.channel(Channel::Video).messages_delivered,
        ),
    ]
}

/// Messages sent and never delivered, per channel (see [`traffic`]).
pub(crate) fn undelivered(pair: &Pair) -> [u64; 3] {
    traffic(pair).map(|(sent, got)| sent.saturating_sub(got))
}

/// Everything the applications sent arrived, intact: no stick command, telemetry message or
/// video frame lost, the flight log complete and matching its SHA-256. Call after `settle`.
pub(crate) fn assert_nothing_lost(f: &Flight) {
    let (a, r) = (f.pair.aircraft.stats(), f.pair.remote.stats());
    assert!(
        r.channel(Channel::Control).messages_sent > 50,
        "the flight flew: {r:?}"
    );
    // Exactly: nothing lost, and nothing delivered twice or out of thin air.
    for (sent, got) in traffic(&f.pair) {
        assert_eq!(sent, got, "aircraft {a:?}\nremote {r:?}");
    }
    let control = r.channel(Channel::Control);
    assert_eq!(
        control.messages_sent, control.frames_sent,
        "no stick command held back"
    );
    assert!(f.remote.stats.download.verified, "the flight log: {r:?}");
    assert_eq!(
        f.remote.stats.corrupted(),
        [0; 4],
        "nothing delivered altered"
    );
    assert_eq!(
        f.aircraft.stats.corrupted_control, 0,
        "no stick command altered"
    );
}

// ---------------------------------------------------------------------------------------
// Drop counters, and the adversary's model of the receiver.
// ---------------------------------------------------------------------------------------

/// The drop counters of [`Stats`], by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Drops {
    pub(crate) malformed: u64,
    pub(crate) unknown_receiver: u64,
    pub(crate) auth: u64,
    pub(crate) duplicate: u64,
    pub(crate) too_old: u64,
    pub(crate) key_expired: u64,
    pub(crate) protocol: u64,
    pub(crate) handshake: u64,
    pub(crate) storage_locked: u64,
}

/// Why a receiver drops a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    Malformed,
    Handshake,
    UnknownReceiver,
    Duplicate,
    TooOld,
    KeyExpired,
    Auth,
}

impl Drops {
    pub(crate) fn of(s: &Stats) -> Self {
        Drops {
            malformed: s.dropped_malformed,
            unknown_receiver: s.dropped_unknown_receiver,
            auth: s.dropped_auth,
            duplicate: s.dropped_duplicate,
            too_old: s.dropped_too_old,
            key_expired: s.dropped_key_expired,
            protocol: s.dropped_protocol,
            handshake: s.dropped_handshake,
            storage_locked: s.dropped_storage_locked,
        }
    }

    pub(crate) fn since(self, before: Drops) -> Drops {
        Drops {
            malformed: self.malformed - before.malformed,
            unknown_receiver: self.unknown_receiver - before.unknown_receiver,
            auth: self.auth - before.auth,
            duplicate: self.duplicate - before.duplicate,
            too_old: self.too_old - before.too_old,
            key_expired: self.key_expired - before.key_expired,
            protocol: self.protocol - before.protocol,
            handshake: self.handshake - before.handshake,
            storage_locked: self.storage_locked - before.storage_locked,
        }
    }

    pub(crate) fn add(&mut self, why: Why) {
        *match why {
            Why::Malformed => &mut self.malformed,
            Why::Handshake => &mut self.handshake,
            Why::UnknownReceiver => &mut self.unknown_receiver,
            Why::Duplicate => &mut self.duplicate,
            Why::TooOld => &mut self.too_old,
            Why::KeyExpired => &mut self.key_expired,
            Why::Auth => &mut self.auth,
        } += 1;
    }

    pub(crate) fn total(&self) -> u64 {
        self.malformed
            + self.unknown_receiver
            + self.auth
            + self.duplicate
            + self.too_old
            + self.key_expired
            + self.protocol
            + self.handshake
            + self.storage_locked
    }
}

/// What an observer of one direction of the air knows about its receiver: the receiver's
/// session index (every genuine frame carries it) and the counters it has accepted (on a
/// clean radio, every genuine frame's). From that it predicts, for any datagram that cannot
/// pass the tag, which check drops it, in the order of PROTOCOL.md section 11: header
/// validation (section 3.1, through the crate's own parser), handshake types to the
/// handshake state machine, receiver index, replay window (section 10), counter limit, and
/// otherwise the tag.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub(crate) index: Option<u32>,
    accepted: BTreeSet<u64>,
    window: u64,
    counter_limit: u64,
}

impl Model {
    pub(crate) fn new(config: &Config) -> Self {
        Model {
            index: None,
            accepted: BTreeSet::new(),
            window: (config.replay_window.max(64) as u64).div_ceil(64) * 64,
            counter_limit: config.counter_limit,
        }
    }

    /// A genuine encrypted frame is about to go by: learn the receiver's index (a new index
    /// is a new session, with a fresh replay window).
    pub(crate) fn learn(&mut self, genuine: &[u8]) {
        let index = receiver_index(genuine);
        if self.index != Some(index) {
            self.index = Some(index);
            self.accepted.clear();
        }
    }

    /// The genuine frame went by: the receiver will accept it.
    pub(crate) fn accept(&mut self, genuine: &[u8]) {
        self.learn(genuine);
        self.accepted.insert(counter(genuine));
    }

    pub(crate) fn top(&self) -> Option<u64> {
        self.accepted.last().copied()
    }

    /// Why the receiver drops `d`, a datagram that is not a genuine frame it has not seen.
    pub(crate) fn verdict(&self, d: &[u8]) -> Why {
        let Ok(header) = Frame::new_checked(d).and_then(|f| Header::parse(&f)) else {
            return Why::Malformed;
        };
        if !header.frame_type.is_encrypted() {
            return Why::Handshake;
        }
        if self.index != Some(header.receiver_index) {
            return Why::UnknownReceiver;
        }
        // The counter the receiver recovers from the packet number (PROTOCOL.md 3).
        let expected = self.top().map_or(0, |top| top + 1);
        let c = counter_from_packet_number(header.packet_number, expected);
        if let Some(top) = self.top() {
            if c <= top {
                if top - c >= self.window {
                    return Why::TooOld;
                }
                if self.accepted.contains(&c) {
                    return Why::Duplicate;
                }
            }
        }
        if c >= self.counter_limit {
            return Why::KeyExpired;
        }
        Why::Auth
    }
}

/// The adversary's books: its model of each receiver, and the drops it expects.
#[derive(Debug)]
pub(crate) struct Ledger {
    /// The aircraft, receiving the uplink.
    up: Model,
    /// The remote, receiving the downlink.
    down: Model,
    pub(crate) aircraft: Drops,
    pub(crate) remote: Drops,
    /// Datagrams the adversary put on the air that no link sent.
    injected: u64,
}

impl Ledger {
    pub(crate) fn new(config: &Config) -> Self {
        Ledger {
            up: Model::new(config),
            down: Model::new(config),
            aircraft: Drops::default(),
            remote: Drops::default(),
            injected: 0,
        }
    }

    pub(crate) fn model(&mut self, dir: Direction) -> &mut Model {
        match dir {
            Direction::Uplink => &mut self.up,
            Direction::Downlink => &mut self.down,
        }
    }

    /// `d` goes on the air travelling `dir` now: book the drop the model predicts.
    pub(crate) fn expect(&mut self, dir: Direction, d: &[u8]) -> Why {
        let why = self.model(dir).verdict(d);
        match dir {
            Direction::Uplink => self.aircraft.add(why),
            Direction::Downlink => self.remote.add(why),
        }
        self.injected += 1;
        why
    }

    /// The drops seen equal the drops booked, reason by reason, on both sides.
    pub(crate) fn check(&self, f: &Flight) {
        assert_eq!(
            Drops::of(f.pair.aircraft.stats()),
            self.aircraft,
            "aircraft"
        );
        assert_eq!(Drops::of(f.pair.remote.stats()), self.remote, "remote");
        assert_eq!(
            self.aircraft.total() + self.remote.total(),
            self.injected,
            "every injected datagram was dropped exactly once"
        );
    }
}

pub(crate) type Copies = Box<dyn FnMut(Direction, &[u8], &Model) -> Vec<Vec<u8>> + Send>;

/// An adversary that, just before each genuine encrypted datagram, puts `copies` of its
/// making on the air in the same direction (altered copies, forgeries, replays), booking
/// each, and then forwards the genuine datagram untouched.
pub(crate) fn copier(
    config: &Config,
    mut copies: Copies,
) -> (Box<dyn Adversary>, Arc<Mutex<Ledger>>) {
    let ledger = Arc::new(Mutex::new(Ledger::new(config)));
    let books = ledger.clone();
    let adversary = FnAdversary::new(
        move |_now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            if is_encrypted(&d) {
                let mut l = lock(&books);
                l.model(dir).learn(&d);
                for c in copies(dir, &d, l.model(dir)) {
                    l.expect(dir, &c);
                    air.forward(c);
                }
                l.model(dir).accept(&d);
            }
            air.forward(d);
        },
    );
    (Box::new(adversary), ledger)
}

/// A pairing flight with an adversary: fly 2.5 s, settle, and check that the books balance
/// and nothing legitimate was lost.
pub(crate) fn fly_attacked(config: Config, seed: u64, adversary: Box<dyn Adversary>) -> Flight {
    fly_attacked_then_watched(config, seed, adversary, None)
}

/// As [`fly_attacked`], with `watcher` on the path once the adversary is off: one that
/// only looks, for an adversary whose injections outlive it and whose books must see
/// every genuine frame sent until they arrive.
pub(crate) fn fly_attacked_then_watched(
    config: Config,
    seed: u64,
    adversary: Box<dyn Adversary>,
    watcher: Option<Box<dyn Adversary>>,
) -> Flight {
    let mut f = Flight::pairing(config, seed);
    f.pair.set_adversary(adversary);
    f.fly(ms(2500));
    f.settle(ms(500));
    // Off the path: what it put on the air last arrives, and it adds nothing more.
    f.pair.take_adversary();
    if let Some(watcher) = watcher {
        f.pair.set_adversary(watcher);
    }
    f.settle(ms(50));
    assert!(
        f.pair.remote.storage_unlocked(),
        "the pilot unlocked storage"
    );
    assert_nothing_lost(&f);
    f
}

// ---------------------------------------------------------------------------------------
// Frames on the air: the tape, and the keys and nonces it shows.
// ---------------------------------------------------------------------------------------

/// One genuine encrypted frame seen on the air.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) at: Timestamp,
    pub(crate) dir: Direction,
    pub(crate) index: u32,
    pub(crate) counter: u64,
    /// Its key generation: how many times the key phase bit changed before it in its
    /// direction and session.
    pub(crate) generation: u64,
}

/// A replay the adversary scheduled: which frame, and when it goes on the air.
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    pub(crate) frame: Seen,
    pub(crate) at: Timestamp,
}

#[derive(Debug, Default)]
pub(crate) struct Tape {
    seen: Vec<Seen>,
    pub(crate) replays: Vec<Replay>,
    /// Per (direction, index): the last phase bit and the generation.
    phases: BTreeMap<(Direction, u32), (bool, u64)>,
}

impl Tape {
    pub(crate) fn record(&mut self, at: Timestamp, dir: Direction, d: &[u8]) -> Seen {
        let index = receiver_index(d);
        let phase = d[2] & 1 == 1;
        let entry = self.phases.entry((dir, index)).or_insert((phase, 0));
        if entry.0 != phase {
            *entry = (phase, entry.1 + 1);
        }
        let seen = Seen {
            at,
            dir,
            index,
            counter: counter(d),
            generation: entry.1,
        };
        self.seen.push(seen.clone());
        seen
    }

    /// Genuine frames of `dir` and session `index` that went on the air strictly before
    /// `at`: on a clean FIFO radio, exactly those the receiver has accepted when a datagram
    /// put on the air at `at` arrives.
    pub(crate) fn before(
        &self,
        dir: Direction,
        index: u32,
        at: Timestamp,
    ) -> impl Iterator<Item = &Seen> {
        self.seen
            .iter()
            .filter(move |s| s.dir == dir && s.index == index && s.at < at)
    }

    /// The replays that reached their receiver by `now` (the radio's delay is 5 ms).
    pub(crate) fn delivered(&self, now: Timestamp) -> impl Iterator<Item = &Replay> {
        self.replays.iter().filter(move |r| r.at + ms(5) <= now)
    }

    /// The receiver's verdict on each replay (all are copies of accepted frames): too old if
    /// the newest accepted counter is a window or more ahead, else a duplicate. Returns the
    /// expected drops of the aircraft and of the remote.
    pub(crate) fn verdicts(&self, window: u64, now: Timestamp) -> (Drops, Drops) {
        let (mut aircraft, mut remote) = (Drops::default(), Drops::default());
        for r in self.delivered(now) {
            let f = &r.frame;
            let top = self
                .before(f.dir, f.index, r.at)
                .map(|s| s.counter)
                .max()
                .unwrap();
            let why = if top - f.counter >= window {
                Why::TooOld
            } else {
                Why::Duplicate
            };
            match f.dir {
                Direction::Uplink => aircraft.add(why),
                Direction::Downlink => remote.add(why),
            }
        }
        (aircraft, remote)
    }

    /// Replays of a frame whose key generation the receiver had left behind (a newer
    /// generation was on the air before the replay), and of those, the ones replayed more than
    /// `grace` after that newer generation started (the old key itself has expired).
    pub(crate) fn across_rekeys(&self, grace: Duration, now: Timestamp) -> (usize, usize) {
        let (mut crossed, mut expired) = (0, 0);
        for r in self.delivered(now) {
            let f = &r.frame;
            let newer = self
                .before(f.dir, f.index, r.at)
                .find(|s| s.generation > f.generation);
            if let Some(newer) = newer {
                crossed += 1;
                if r.at.saturating_since(newer.at) > grace {
                    expired += 1;
                }
            }
        }
        (crossed, expired)
    }
}

/// Every key a sender used, from the air: (direction, session index, generation) and the
/// counters sealed under it, in the order sent.
pub(crate) fn keys_on_air(
    log: &[(Timestamp, Direction, Vec<u8>)],
) -> BTreeMap<(Direction, u32, u64), Vec<u64>> {
    let mut tape = Tape::default();
    let mut keys: BTreeMap<(Direction, u32, u64), Vec<u64>> = BTreeMap::new();
    for (at, dir, d) in log {
        if is_encrypted(d) {
            let s = tape.record(*at, *dir, d);
            keys.entry((s.dir, s.index, s.generation))
                .or_default()
                .push(s.counter);
        }
    }
    keys
}

/// No (key, nonce) pair is used twice: within a session and direction the counters on the
/// air strictly increase across every key phase (so each is used once, under one key), and
/// no key protects more than `reject_after` frames or reaches `counter_limit`.
pub(crate) fn assert_nonces_unique(
    keys: &BTreeMap<(Direction, u32, u64), Vec<u64>>,
    reject_after: u64,
    counter_limit: u64,
) {
    let mut sessions: BTreeMap<(Direction, u32), Vec<u64>> = BTreeMap::new();
    for ((dir, index, _), counters) in keys {
        assert!(
            counters.len() as u64 <= reject_after,
            "{} frames under one key",
            counters.len()
        );
        sessions.entry((*dir, *index)).or_default().extend(counters);
    }
    for (session, counters) in &sessions {
        assert!(
            counters.windows(2).all(|w| w[0] < w[1]),
            "{session:?}: a counter repeated or went back"
        );
        let unique: BTreeSet<_> = counters.iter().collect();
        assert_eq!(unique.len(), counters.len());
        assert!(counters.iter().all(|&c| c < counter_limit));
    }
}

// ---------------------------------------------------------------------------------------
// Brute-force limits.
// ---------------------------------------------------------------------------------------

/// Small brute-force limits so that a lockout comes within a second of flight.
pub(crate) fn guarded_config() -> Config {
    Config {
        limits: LimitsConfig {
            max_failures: 3,
            base_backoff: ms(100),
            max_backoff: ms(400),
            lockout: Duration::from_secs(3600),
            max_unlock_failures: 9,
        },
        ..config()
    }
}
