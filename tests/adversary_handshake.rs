//! Handshakes under attack: a downgrade of the version or suite, a man in the middle with a
//! guessed code or its own static key, a code change that cuts off every bonded remote, a
//! forged pairing `Response` (an ignored finding), and online guessing that ends in a
//! lockout surviving a restart.
//!
//! The fixtures (the flight, the adversary's model of the receiver and its books, the tape of
//! frames on the air) and what every scenario checks are in `tests/common/adversary.rs`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rotorlink::handshake::keys::mac1;
use rotorlink::handshake::limits::{
    AttemptRecord, AttemptStore, LimitsConfig, MemoryAttemptStore, StoreError,
};
use rotorlink::handshake::messages::{Kind, MAC1_LEN};
use rotorlink::handshake::{
    AircraftIdentity, HandshakeConfig, HandshakeError, KsfParams, RefusalReason, RemoteIdentity,
};
use rotorlink::wire::{FrameType, HEADER_LEN};
use rotorlink::Role;
use rotorlink::{CloseCode, Config, Event, Link, Timestamp};
use rotorlink_sim::{Adversary, Air, Direction, FnAdversary, Pair, PAIRING_WINDOW};
use x25519_dalek::{PublicKey, StaticSecret};

use common::adversary::*;

/// An attempt store shared across aircraft restarts, as flash would be.
#[derive(Debug, Clone, Default)]
struct SharedStore(Arc<Mutex<MemoryAttemptStore>>);

impl SharedStore {
    fn record(&self) -> AttemptRecord {
        *lock(&self.0).record()
    }
}

impl AttemptStore for SharedStore {
    fn load(&mut self) -> Result<AttemptRecord, StoreError> {
        lock(&self.0).load()
    }

    fn save(&mut self, record: &AttemptRecord) -> Result<(), StoreError> {
        lock(&self.0).save(record)
    }
}

/// `config` with a short handshake timeout: a remote reports a failed pairing ("wrong code
/// or interference") only when its attempt times out.
fn quick_verdict(config: Config) -> Config {
    Config {
        handshake: HandshakeConfig {
            timeout: ms(300),
            ..config.handshake.clone()
        },
        ..config
    }
}

/// An aircraft like `Pair::pairing`'s (same link id, provisioned with `CODE`), over `store`,
/// with its pairing window open as `Pair::pairing`'s is.
fn aircraft_over(
    config: &Config,
    identity: AircraftIdentity,
    store: &SharedStore,
    seed: u64,
    now: Timestamp,
) -> Link {
    let mut air = Link::aircraft(
        config.clone(),
        identity,
        Box::new(store.clone()),
        &mut rng(seed),
        now,
    )
    .unwrap();
    air.open_pairing_window(PAIRING_WINDOW, now).unwrap();
    air
}

fn provision(seed: u64) -> AircraftIdentity {
    AircraftIdentity::provision(LINK_ID, CODE, KsfParams::INSECURE_FAST, &mut rng(seed)).unwrap()
}

/// A remote run by the attacker: a real `Link`, pairing with guessed codes. The test loop
/// puts what it sends on the air (`Pair::inject`, uplink); the adversary hands it every
/// handshake datagram the aircraft sends.
struct Guesser {
    link: Arc<Mutex<Link>>,
    events: Vec<Event>,
    guesses: u32,
    /// An attempt is running (between `pair` and its outcome).
    busy: bool,
}

impl Guesser {
    fn new(config: &Config, seed: u64) -> Self {
        let identity = RemoteIdentity::generate(&mut rng(seed));
        // An attacker does not wait out a pilot's handshake timeout before its next guess
        // (a remote reports a failed pairing only when its attempt times out).
        let impatient = Config {
            handshake: HandshakeConfig {
                timeout: ms(50),
                ..config.handshake.clone()
            },
            ..config.clone()
        };
        let link = Link::remote(
            impatient,
            identity,
            LINK_ID,
            &mut rng(seed + 1),
            Timestamp::ZERO,
        )
        .unwrap();
        Guesser {
            link: Arc::new(Mutex::new(link)),
            events: Vec::new(),
            guesses: 0,
            busy: false,
        }
    }

    /// One step: start a new guess if the last one ended, run the link's timers, and put
    /// what it sends on the air.
    fn step(&mut self, pair: &mut Pair) {
        let now = pair.now();
        let mut link = lock(&self.link);
        if !self.busy {
            self.guesses += 1;
            let guess = format!("{:06}", 900_000 + self.guesses);
            link.pair(
                guess.as_bytes(),
                std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                now,
            )
            .unwrap();
            self.busy = true;
        }
        link.handle_timeout(now);
        let mut buf = vec![0u8; 2048];
        while let Some(t) = link.poll_transmit(now, &mut buf) {
            pair.inject(Direction::Uplink, buf[..t.len].to_vec(), now);
        }
        while let Some(e) = link.poll_event() {
            if matches!(
                e,
                Event::PairingRejected { .. }
                    | Event::HandshakeRefused { .. }
                    | Event::HandshakeFailed { .. }
            ) {
                self.busy = false;
            }
            if !matches!(e, Event::Message { .. }) {
                self.events.push(e);
            }
        }
    }

    fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }

    fn refused(&self, reason: RefusalReason) -> usize {
        self.count(|e| matches!(e, Event::HandshakeRefused { reason: r, .. } if *r == reason))
    }
}

/// An adversary that hands every handshake datagram of the aircraft to `guesser`, and
/// drops the genuine remote's uplink (it keeps the pilot off the air).
fn feeding(guesser: &Guesser, block_remote: bool) -> Box<dyn Adversary> {
    let link = guesser.link.clone();
    Box::new(FnAdversary::new(
        move |now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            if dir == Direction::Downlink && !is_encrypted(&d) {
                let _ = lock(&link).handle_datagram(
                    now,
                    std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                    &d,
                );
            }
            if !(block_remote && dir == Direction::Uplink) {
                air.forward(d);
            }
        },
    ))
}

/// Downgrade: the adversary rewrites the suite byte of the pilot's pairing `Init` (to 0,
/// 2 and 255, re-computing its mac1, which for a pairing needs only the public link id)
/// or its version byte. The aircraft refuses each before any cryptography (no OPAQUE run,
/// no attempt counted). Once the adversary stops, the untouched retransmission pairs.
/// The same for the resume `Init` of a reconnect. (A change the aircraft would accept
/// changes the transcript, which the session keys and key confirmations cover: see the
/// byte-flip proptests in `link/tests/handshake_attacks.rs`.)
#[test]
fn rewriting_the_version_or_suite_is_refused_before_any_work() {
    let config = guarded_config();
    let active = Arc::new(Mutex::new(true));
    let rewrites = Arc::new(Mutex::new((Drops::default(), Drops::default())));
    let (on, books) = (active.clone(), rewrites.clone());
    let mut n = 0u32;
    let adversary = FnAdversary::new(
        move |_now: Timestamp, dir: Direction, mut d: Vec<u8>, air: &mut Air| {
            if *lock(&on) && dir == Direction::Uplink && d[1] == FrameType::HandshakeInit as u8 {
                n += 1;
                let mut b = lock(&books);
                match n % 4 {
                    // The suite byte (payload offset 1) to an undefined suite, as is.
                    1 => {
                        d[HEADER_LEN + 1] = 0;
                        b.0.add(Why::Handshake);
                    }
                    // ... or to another suite (1: the home-made handshake before issue 15),
                    // with mac1 recomputed where the attacker can (a pairing's needs only
                    // the public link id).
                    2 | 3 => {
                        d[HEADER_LEN + 1] = if n % 4 == 2 { 1 } else { 0xff };
                        if d[HEADER_LEN] == Kind::Pair as u8 {
                            let split = d.len() - MAC1_LEN;
                            let tag = mac1(&LINK_ID, &[], &d[..split]);
                            d[split..].copy_from_slice(&tag);
                        }
                        b.0.add(Why::Handshake);
                    }
                    // The version byte.
                    _ => {
                        d[0] = 0;
                        b.0.add(Why::Malformed);
                    }
                }
            }
            air.forward(d);
        },
    );
    let mut f = Flight::pairing(config, 18);
    f.pair.set_adversary(Box::new(adversary));
    f.fly(ms(1200));
    // The remote sent its Init at 0, 0.1, 0.3 and 0.7 s: all rewritten.
    assert!(!f.pair.remote.is_connected() && !f.pair.aircraft.is_connected());
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 0);
    assert_eq!(f.pair.aircraft.remaining_attempts(), Some(3));
    {
        let b = lock(&rewrites);
        assert_eq!(Drops::of(f.pair.aircraft.stats()), b.0);
        assert_eq!(Drops::of(f.pair.remote.stats()), b.1);
        assert!(b.0.handshake == 3 && b.0.malformed == 1, "{b:?}");
    }
    *lock(&active) = false;
    f.fly(ms(1500));
    assert!(
        f.pair.remote.is_connected(),
        "paired once the adversary stopped"
    );
    assert!(f.pair.remote.storage_unlocked());
    // OPAQUE and the bond's X25519 for the pairing, OPAQUE for the unlock.
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 3);

    // A reconnect (resume) under the same attack: its mac1 cannot be recomputed, and the
    // suite is checked first anyway.
    let before = (
        Drops::of(f.pair.aircraft.stats()),
        Drops::of(f.pair.remote.stats()),
    );
    *lock(&rewrites) = (Drops::default(), Drops::default());
    *lock(&active) = true;
    let index = f.pair.remote.local_index();
    f.pair
        .remote
        .connect(
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            f.pair.now(),
        )
        .unwrap();
    f.fly(ms(800));
    assert_eq!(f.pair.remote.local_index(), index, "no new session");
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 3);
    {
        let b = lock(&rewrites);
        assert_eq!(Drops::of(f.pair.aircraft.stats()).since(before.0), b.0);
        assert_eq!(Drops::of(f.pair.remote.stats()).since(before.1), b.1);
    }
    *lock(&active) = false;
    f.fly(ms(1200));
    assert_ne!(
        f.pair.remote.local_index(),
        index,
        "resumed once it stopped"
    );
    // And one X25519 for the resume.
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 4);
    assert!(
        f.pair.remote.storage_unlocked(),
        "a resume keeps the unlock"
    );
}

/// A man in the middle with a guessed code, both ways. Towards the aircraft it pairs
/// with guesses: each attempt costs exactly one OPAQUE evaluation and gives one wrong
/// answer; attempts in the back-off are refused without any work; the third failure
/// locks the aircraft out. Towards the pilot it plays an aircraft provisioned with a
/// guess: the remote's OPAQUE fails (reported as a rejected pairing), it never sends a
/// `Finish` to the impostor, and never bonds: one guess per pilot attempt. No bond is
/// made anywhere.
#[test]
fn a_man_in_the_middle_with_a_guessed_code_gets_one_guess_per_attempt() {
    let config = quick_verdict(guarded_config());
    let store = SharedStore::default();
    let mut f = Flight::pairing(config.clone(), 19);
    f.pair.aircraft = aircraft_over(&config, provision(20), &store, 21, Timestamp::ZERO);
    let impostor_identity =
        AircraftIdentity::provision(LINK_ID, WRONG, KsfParams::INSECURE_FAST, &mut rng(22))
            .unwrap();
    // The impostor counts nothing: it answers every attempt.
    let lax = Config {
        limits: LimitsConfig {
            max_failures: u32::MAX,
            base_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            lockout: Duration::ZERO,
            max_unlock_failures: u32::MAX,
        },
        ..config.clone()
    };
    let impostor = Arc::new(Mutex::new(aircraft_over(
        &lax,
        impostor_identity,
        &SharedStore::default(),
        23,
        Timestamp::ZERO,
    )));
    let mut guesser = Guesser::new(&config, 24);
    let pilot_finishes = Arc::new(Mutex::new(0u32));
    let (link, imp, fin) = (
        guesser.link.clone(),
        impostor.clone(),
        pilot_finishes.clone(),
    );
    f.pair.set_adversary(Box::new(FnAdversary::new(
        move |now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| match dir {
            // The aircraft's answers go to the attacker's remote only.
            Direction::Downlink => {
                let _ = lock(&link).handle_datagram(
                    now,
                    std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                    &d,
                );
            }
            // The pilot's messages go to the impostor only.
            Direction::Uplink => {
                if d[1] == FrameType::HandshakeFinish as u8 {
                    *lock(&fin) += 1;
                }
                let mut imp = lock(&imp);
                let _ = imp.handle_datagram(
                    now,
                    std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                    &d,
                );
                let mut buf = vec![0u8; 2048];
                while let Some(t) = imp.poll_transmit(now, &mut buf) {
                    air.inject(Direction::Downlink, buf[..t.len].to_vec(), now);
                }
            }
        },
    )));
    let mut pilot_attempts = 1;
    for _ in 0..300 {
        guesser.step(&mut f.pair);
        f.fly(ms(5));
        let rejected = f.count(Role::Remote, |e| matches!(e, Event::PairingRejected { .. }));
        if rejected == pilot_attempts && pilot_attempts < 3 {
            // The pilot, told the code was wrong, types it again.
            f.pair
                .remote
                .pair(
                    CODE,
                    std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                    f.pair.now(),
                )
                .unwrap();
            pilot_attempts += 1;
        }
    }
    // Towards the aircraft: three guesses, three OPAQUE runs, then the lockout.
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 3);
    assert_eq!(
        guesser.count(|e| matches!(e, Event::PairingRejected { .. })),
        3
    );
    assert!(
        guesser.refused(RefusalReason::BackOff) >= 5,
        "{:?}",
        guesser.events
    );
    assert!(guesser.refused(RefusalReason::LockedOut) >= 5);
    assert_eq!(f.pair.aircraft.remaining_attempts(), Some(0));
    assert!(store.record().locked_until.is_some());
    assert!(f.count(Role::Aircraft, |e| matches!(e, Event::LockedOut { .. })) >= 1);
    // Towards the pilot: one impostor OPAQUE run per attempt, each rejected.
    assert_eq!(lock(&impostor).handshake_crypto_ops(), 3);
    assert_eq!(
        f.count(Role::Remote, |e| matches!(e, Event::PairingRejected { .. })),
        3
    );
    assert_eq!(
        *lock(&pilot_finishes),
        0,
        "the pilot never confirmed to the impostor"
    );
    // No bond, no session anywhere.
    assert!(f
        .pair
        .aircraft
        .aircraft_identity()
        .unwrap()
        .bonds()
        .is_empty());
    assert!(lock(&impostor)
        .aircraft_identity()
        .unwrap()
        .bonds()
        .is_empty());
    assert!(f.pair.remote.remote_identity().unwrap().bond().is_none());
    assert!(!f.pair.remote.is_connected() && !f.pair.aircraft.is_connected());
}

/// A man in the middle that puts its own static key into the pilot's pairing `Init`
/// (re-computing the public mac1) to get it bonded. The aircraft answers (the attempt
/// counts), but the pilot's OPAQUE context covers the `Init` it sent, so the login fails
/// on the remote, which sends no `Finish`: no bond for the attacker's key. When the pilot
/// tries again without the attacker, it pairs with its own key.
#[test]
fn a_substituted_static_key_is_never_bonded() {
    let config = quick_verdict(guarded_config());
    let attacker_key = PublicKey::from(&StaticSecret::from([0x66; 32])).to_bytes();
    let active = Arc::new(Mutex::new(true));
    let on = active.clone();
    let adversary = FnAdversary::new(
        move |_now: Timestamp, dir: Direction, mut d: Vec<u8>, air: &mut Air| {
            if *lock(&on) && dir == Direction::Uplink && d[1] == FrameType::HandshakeInit as u8 {
                // Pair Init payload: kind, suite, index (4), remote static (32), ...
                d[HEADER_LEN + 6..HEADER_LEN + 38].copy_from_slice(&attacker_key);
                let split = d.len() - MAC1_LEN;
                let tag = mac1(&LINK_ID, &[], &d[..split]);
                d[split..].copy_from_slice(&tag);
            }
            air.forward(d);
        },
    );
    let mut f = Flight::pairing(config, 25);
    f.pair.set_adversary(Box::new(adversary));
    f.fly(ms(600));
    assert_eq!(
        f.count(Role::Remote, |e| matches!(e, Event::PairingRejected { .. })),
        1
    );
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 1);
    assert_eq!(f.pair.aircraft.remaining_attempts(), Some(2));
    assert!(f
        .pair
        .aircraft
        .aircraft_identity()
        .unwrap()
        .bonds()
        .is_empty());
    *lock(&active) = false;
    f.pair
        .remote
        .pair(
            CODE,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            f.pair.now(),
        )
        .unwrap();
    f.fly(ms(1000));
    let bonds = f
        .pair
        .aircraft
        .aircraft_identity()
        .unwrap()
        .bonds()
        .to_vec();
    let pilot = f.pair.remote.remote_identity().unwrap().static_public();
    assert_eq!(bonds, [pilot]);
    assert!(f.pair.remote.storage_unlocked());
    assert_eq!(
        f.pair.aircraft.remaining_attempts(),
        Some(3),
        "success clears the count"
    );
}

/// P2: the owner changes the code (over a channel it trusts). The session ends with an
/// authenticated `CODE_CHANGED` close, and the remote that was bonded (lost, stolen,
/// a previous owner's) is refused when it comes back: its resume as an unknown ticket,
/// the session handshake it falls back to as an unknown bond, neither costing the
/// aircraft any public-key work. Pairing again needs the new code.
#[test]
fn changing_the_code_cuts_off_every_bonded_remote() {
    let mut f = Flight::pairing(config(), 43);
    f.fly(ms(500));
    assert!(f.pair.remote.is_connected());
    let ops = f.pair.aircraft.handshake_crypto_ops();
    f.pair.aircraft.change_code(b"999999").unwrap();
    f.fly(ms(100));
    // The session (and the bond) is over; the remote's link stays open to pair again.
    let closed =
        |e: &Event| matches!(e, Event::SessionEnded { code } if *code == CloseCode::CODE_CHANGED);
    // The owner changed the code to link the remotes again: the window opens.
    let now = f.pair.now();
    f.pair
        .aircraft
        .open_pairing_window(Duration::from_secs(60), now)
        .unwrap();
    assert_eq!(f.count(Role::Remote, closed), 1);
    assert!(f
        .pair
        .aircraft
        .aircraft_identity()
        .unwrap()
        .bonds()
        .is_empty());
    f.pair
        .remote
        .connect(
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            f.pair.now(),
        )
        .unwrap();
    f.fly(ms(500));
    let refused = |reason: RefusalReason| move |e: &Event| matches!(e, Event::HandshakeRefused { reason: r, .. } if *r == reason);
    assert_eq!(
        f.count(Role::Remote, refused(RefusalReason::UnknownBond)),
        1
    );
    assert!(!f.pair.remote.is_connected());
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), ops);
    f.pair
        .remote
        .pair(
            CODE,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            f.pair.now(),
        )
        .unwrap();
    f.fly(ms(500));
    assert!(
        !f.pair.remote.is_connected(),
        "the old code no longer pairs"
    );
    assert_eq!(f.pair.aircraft.remaining_attempts(), Some(9));
    // After the back-off that failure earned (1 s):
    f.fly(ms(600));
    f.pair
        .remote
        .pair(
            b"999999",
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            f.pair.now(),
        )
        .unwrap();
    f.fly(ms(500));
    assert!(f.pair.remote.is_connected(), "the new code does");
}

/// Aircraft provisioned with other codes, one per `(seed, code)`: impostors whose pairing
/// `Response`s are well-formed `KE2`s the pilot's code cannot open.
fn impostors(config: &Config, codes: &[(u64, String)]) -> Vec<Arc<Mutex<Link>>> {
    codes
        .iter()
        .map(|(seed, code)| {
            let identity = AircraftIdentity::provision(
                LINK_ID,
                code.as_bytes(),
                KsfParams::INSECURE_FAST,
                &mut rng(*seed),
            )
            .unwrap();
            let store = SharedStore::default();
            let air = aircraft_over(config, identity, &store, seed + 10, Timestamp::ZERO);
            Arc::new(Mutex::new(air))
        })
        .collect()
}

/// An adversary that shows every pilot `Init` to each impostor and injects `copies` copies
/// of each answer towards the pilot at once, ahead of the aircraft's; `block` keeps the
/// `Init` from the aircraft. `forged` counts the injected copies.
fn answering_first(
    impostors: Vec<Arc<Mutex<Link>>>,
    copies: u32,
    block: bool,
    forged: Arc<Mutex<u32>>,
) -> Box<dyn Adversary> {
    Box::new(FnAdversary::new(
        move |now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            if dir == Direction::Uplink && d[1] == FrameType::HandshakeInit as u8 {
                for imp in &impostors {
                    let mut imp = lock(imp);
                    let from = std::net::SocketAddr::from(([10, 0, 0, 1], 47474));
                    let _ = imp.handle_datagram(now, from, &d);
                    let mut buf = vec![0u8; 2048];
                    while let Some(t) = imp.poll_transmit(now, &mut buf) {
                        for _ in 0..copies {
                            air.inject(Direction::Downlink, buf[..t.len].to_vec(), now);
                            *lock(&forged) += 1;
                        }
                    }
                }
                if block {
                    return;
                }
            }
            air.forward(d);
        },
    ))
}

/// Issue 15, finding 2 (was MEDIUM): an attacker who only injects (no jamming, no
/// blocking) answers the pilot's `Init` at once with well-formed pairing `Response`s of its
/// own (a `KE2` from any OPAQUE server: here two, provisioned with other codes), 50 copies
/// of each, 100 in all, every time it sees the `Init`. They all reach the remote before the
/// aircraft's genuine `Response`. The remote used to take "the same bytes failed twice" as
/// proof of a wrong code and drop the genuine answer; and every forged copy cost it an
/// Argon2id run. Now a failed response proves nothing until the attempt times out, a
/// byte-identical copy is never evaluated again, and an attempt evaluates at most three
/// distinct responses: two forgeries and the genuine one, which pairs.
#[test]
fn a_forged_pairing_response_does_not_make_the_right_code_look_wrong() {
    forged_responses_then_the_genuine_one(None);
}

/// The same with the remote's key stretching outside its link (the tokio adapter's way),
/// 150 ms each: the two forgeries and the genuine response are under evaluation at once,
/// and the pilot pairs when the genuine one's result comes back.
#[test]
fn forged_pairing_responses_stretched_outside_the_link_do_not_make_the_right_code_look_wrong() {
    let f = forged_responses_then_the_genuine_one(Some(ms(150)));
    assert_eq!(
        f.count(Role::Remote, |e| matches!(e, Event::KeyStretchReady)),
        4,
        "three responses of the pairing, then the unlock"
    );
    assert!(f.pair.remote.storage_unlocked());
}

fn forged_responses_then_the_genuine_one(stretch_outside: Option<Duration>) -> Flight {
    let config = config();
    let codes = [(44, "000001".to_string()), (45, "000002".to_string())];
    let forged = Arc::new(Mutex::new(0u32));
    let adversary = answering_first(impostors(&config, &codes), 50, false, forged.clone());
    let mut f = Flight::pairing(config, 46);
    if let Some(time) = stretch_outside {
        f.stretch_outside(time);
    }
    f.pair.set_adversary(adversary);
    f.fly(ms(1000));
    let rejected = f.count(Role::Remote, |e| matches!(e, Event::PairingRejected { .. }));
    assert!(*lock(&forged) >= 100, "{} forged", lock(&forged));
    assert!(
        f.pair.remote.is_connected(),
        "the right code was reported wrong ({rejected} PairingRejected) and did not pair"
    );
    assert_eq!(rejected, 0);
    assert_eq!(
        f.pair.remote.handshake_crypto_ops(),
        3,
        "Argon2id on the two forgeries and the genuine response, none on copies"
    );
    // The aircraft: the pairing (OPAQUE, the bond's X25519) and the unlock.
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 3);
    f
}

/// A remote whose pairing `Response`s all fail (here: four distinct forgeries, and the
/// aircraft never hears the pilot) stops evaluating after three and reports the attempt
/// rejected at once — "wrong code or interference" — without waiting for its timeout.
/// Copies cost nothing.
#[test]
fn three_failed_responses_end_the_attempt_without_more_key_stretching() {
    three_forgeries_only(None);
}

/// The same with the remote's key stretching outside its link, 150 ms each: three
/// forgeries are under evaluation at once, the fourth is not evaluated at all.
#[test]
fn three_failed_responses_stretched_outside_the_link_end_the_attempt() {
    let f = three_forgeries_only(Some(ms(150)));
    assert_eq!(
        f.count(Role::Remote, |e| matches!(e, Event::KeyStretchReady)),
        3
    );
}

fn three_forgeries_only(stretch_outside: Option<Duration>) -> Flight {
    let config = config();
    let codes: Vec<_> = (0..4u64).map(|i| (60 + i, format!("00000{i}"))).collect();
    let forged = Arc::new(Mutex::new(0u32));
    let adversary = answering_first(impostors(&config, &codes), 25, true, forged);
    let mut f = Flight::pairing(config, 47);
    if let Some(time) = stretch_outside {
        f.stretch_outside(time);
    }
    f.pair.set_adversary(adversary);
    f.fly(ms(400));
    assert_eq!(f.pair.remote.handshake_crypto_ops(), 3);
    assert_eq!(
        f.count(Role::Remote, |e| matches!(e, Event::PairingRejected { .. })),
        1,
        "rejected once its evaluations were spent"
    );
    assert!(!f.pair.remote.is_connected());
    f
}

/// A pairing whose key stretching came back after its attempt timed out changes nothing,
/// and neither finishes nor spoils the pilot's next attempt: had its `Finish` gone out,
/// the aircraft would have bonded a remote that reported the pairing failed.
#[test]
fn a_pairing_result_that_comes_back_after_its_attempt_timed_out_establishes_nothing() {
    let mut config = config();
    config.handshake.timeout = ms(1000);
    let mut f = Flight::pairing(config, 48);
    f.pair.remote.set_defer_key_stretching(true);
    assert!(f.fly_until(ms(500), |f| f
        .count(Role::Remote, |e| matches!(e, Event::KeyStretchReady))
        == 1));
    let stale = f
        .pair
        .remote
        .poll_key_stretch()
        .expect("the pairing's stretching waits");
    assert!(f.pair.remote.poll_key_stretch().is_none(), "taken once");
    f.fly(ms(1500));
    let timed_out = |f: &Flight| {
        f.count(Role::Remote, |e| {
            matches!(
                e,
                Event::HandshakeFailed {
                    error: HandshakeError::Timeout
                }
            )
        })
    };
    assert_eq!(timed_out(&f), 1);

    // The pilot tries again; the first attempt's result comes back meanwhile.
    let now = f.pair.now();
    f.pair
        .remote
        .pair(CODE, rotorlink_sim::pair::addr(Role::Aircraft), now)
        .unwrap();
    assert!(f.fly_until(ms(500), |f| f
        .count(Role::Remote, |e| matches!(e, Event::KeyStretchReady))
        == 2));
    let now = f.pair.now();
    f.pair.remote.handle_key_stretched(now, stale.run());
    f.fly(ms(200));
    assert!(!f.pair.remote.is_connected() && !f.pair.aircraft.is_connected());
    for side in [Role::Aircraft, Role::Remote] {
        assert_eq!(f.count(side, |e| matches!(e, Event::Bonded)), 0, "{side:?}");
    }

    // The second attempt's own result pairs.
    let job = f
        .pair
        .remote
        .poll_key_stretch()
        .expect("the second stretching waits");
    let now = f.pair.now();
    f.pair.remote.handle_key_stretched(now, job.run());
    f.fly(ms(200));
    assert!(f.pair.remote.is_connected() && f.pair.aircraft.is_connected());
    assert_eq!(f.count(Role::Remote, |e| matches!(e, Event::Bonded)), 1);
    assert_eq!(timed_out(&f), 1);
}

/// Online brute force from a second remote in range: guesses as fast as the aircraft
/// allows. One OPAQUE run per permitted attempt, back-off refusals in between, lockout
/// after the third failure. The aircraft restarts (new `Link` from its persisted identity
/// and attempt store): still locked out, the guesser and then the pilot with the right
/// code are refused without any work, and the store holds the lockout.
#[test]
fn online_guessing_ends_in_a_lockout_that_survives_a_restart() {
    let config = guarded_config();
    let store = SharedStore::default();
    let mut f = Flight::pairing(config.clone(), 26);
    f.pair.aircraft = aircraft_over(&config, provision(27), &store, 28, Timestamp::ZERO);
    let mut guesser = Guesser::new(&config, 29);
    f.pair.set_adversary(feeding(&guesser, true));
    for _ in 0..200 {
        guesser.step(&mut f.pair);
        f.fly(ms(5));
    }
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 3);
    assert_eq!(
        guesser.count(|e| matches!(e, Event::PairingRejected { .. })),
        3
    );
    assert!(guesser.refused(RefusalReason::BackOff) >= 5);
    assert!(guesser.refused(RefusalReason::LockedOut) >= 5);
    let record = store.record();
    assert_eq!(record.failures, 3);
    let until = record.locked_until.expect("locked out");
    assert!(until >= f.pair.now() + Duration::from_secs(3500));

    // Power cycle: a new aircraft link from what was persisted.
    let identity =
        AircraftIdentity::from_bytes(&f.pair.aircraft.aircraft_identity().unwrap().to_bytes())
            .unwrap();
    f.pair.aircraft = aircraft_over(&config, identity, &store, 30, f.pair.now());
    assert_eq!(f.pair.aircraft.remaining_attempts(), Some(0));
    let refused = guesser.refused(RefusalReason::LockedOut);
    for _ in 0..100 {
        guesser.step(&mut f.pair);
        f.fly(ms(5));
    }
    assert!(guesser.refused(RefusalReason::LockedOut) >= refused + 5);
    assert_eq!(
        guesser.count(|e| matches!(e, Event::PairingRejected { .. })),
        3
    );
    // The pilot, with the right code, is refused too (the lockout is for everyone), once
    // the rate limiter has tokens again.
    f.pair.take_adversary();
    f.fly(ms(1000));
    f.pair
        .remote
        .pair(
            CODE,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            f.pair.now(),
        )
        .unwrap();
    f.fly(ms(300));
    assert_eq!(
        f.pair.aircraft.handshake_crypto_ops(),
        0,
        "no work after the restart"
    );
    assert!(
        f.count(Role::Remote, |e| matches!(
            e,
            Event::HandshakeRefused {
                reason: RefusalReason::LockedOut,
                ..
            }
        )) >= 1
    );
    assert!(!f.pair.remote.is_connected());
    assert_eq!(store.record().locked_until, Some(until));
}
