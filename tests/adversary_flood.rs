//! Handshake floods: forged and replayed initiations cost the aircraft no public-key work,
//! replays of a pending pairing `Init` are answered from the cache, and well-formed pairing
//! floods are bounded by the attempt guard (which they can exhaust: an ignored finding).
//!
//! The fixtures (the flight, the adversary's model of the receiver and its books, the tape of
//! frames on the air) and what every scenario checks are in `tests/common/adversary.rs`.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_core::RngCore;
use rotorlink::handshake::keys::{bond_id, mac1};
use rotorlink::handshake::messages::{
    frame, Init, InitBody, Kind, MAC1_LEN, MESSAGE1_LEN, SUITE_V2,
};

/// A Noise message 1 an attacker can make without a key: any ephemeral, any ciphertext.
fn message1(random: [u8; 32]) -> [u8; MESSAGE1_LEN] {
    let mut m = [0u8; MESSAGE1_LEN];
    m[..32].copy_from_slice(&random);
    m[32..].copy_from_slice(&random[..MESSAGE1_LEN - 32]);
    m
}
use rotorlink::handshake::{pake, RemoteIdentity};
use rotorlink::wire::{FrameType, HEADER_LEN};
use rotorlink::Role;
use rotorlink::{Event, Link, Timestamp};
use rotorlink_sim::{Adversary, Air, Direction, FnAdversary};
use x25519_dalek::PublicKey;

use common::adversary::*;

/// The kinds of forged initiation in a flood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Forged {
    /// Not a frame: a wrong version byte.
    Garbage,
    /// A pairing `Init` with a random mac1.
    BadMac,
    /// A pairing `Init` with a correct mac1 (the link id is public) but a KE1 that does not
    /// decode.
    BadKe1,
    /// A session `Init` naming the pilot's bond (its static key was on the air when it
    /// paired), its mac1 without the bond key (which the attacker cannot compute).
    BondWithoutKey,
    /// A session `Init` naming a bond that does not exist.
    UnknownBond,
    /// A resume `Init` with a made-up ticket.
    UnknownTicket,
    /// A copy of the pilot's latest `Init`.
    Replay,
}

const FORGED: [Forged; 7] = [
    Forged::Garbage,
    Forged::BadMac,
    Forged::BadKe1,
    Forged::BondWithoutKey,
    Forged::UnknownBond,
    Forged::UnknownTicket,
    Forged::Replay,
];

fn pair_init(remote_static: [u8; 32], ke1: &[u8], index: u32, good_mac: bool) -> Vec<u8> {
    let init = Init {
        suite: SUITE_V2,
        sender_index: index,
        body: InitBody::Pair { remote_static, ke1 },
        mac1: [0x3b; MAC1_LEN],
    };
    let mut d = frame(FrameType::HandshakeInit, 0, &init.emit());
    if good_mac {
        let split = d.len() - MAC1_LEN;
        let tag = mac1(&LINK_ID, &[], &d[..split]);
        d[split..].copy_from_slice(&tag);
    }
    d
}

fn keyed_init(body: InitBody<'_>, index: u32) -> Vec<u8> {
    let init = Init {
        suite: SUITE_V2,
        sender_index: index,
        body,
        mac1: [0x5c; MAC1_LEN],
    };
    let mut d = frame(FrameType::HandshakeInit, 0, &init.emit());
    let split = d.len() - MAC1_LEN;
    let tag = mac1(&LINK_ID, &[], &d[..split]);
    d[split..].copy_from_slice(&tag);
    d
}

/// While the pilot pairs, unlocks storage and downloads the log, the adversary sends
/// seven forged or replayed initiations for every datagram on the air for a second
/// (over 1500 in all). The aircraft spends no OPAQUE or X25519 on any of them (in all: the
/// pairing's OPAQUE run and bond X25519, and the unlock's OPAQUE run), refuses each as
/// expected (dropped and counted, or answered with a short refusal, or a replay answered
/// from the cache at most twice), and the pilot loses nothing.
#[test]
fn an_initiation_flood_costs_the_aircraft_nothing_and_the_pilot_still_pairs() {
    let config = config();
    #[derive(Debug, Default)]
    struct Books {
        sent: BTreeMap<(Forged, bool), u64>,
        latest_init: Option<Vec<u8>>,
        pilot_static: Option<[u8; 32]>,
        /// The pilot's Finish went by: from then on the aircraft holds the bond.
        bonded: bool,
        /// `Response`s and `Refusal`s the aircraft sent.
        responses: u64,
        refusals: u64,
    }
    let books = Arc::new(Mutex::new(Books::default()));
    let b = books.clone();
    let mut r = rng(31);
    let adversary = FnAdversary::new(
        move |now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            let mut books = lock(&b);
            if dir == Direction::Downlink && d[1] == FrameType::HandshakeResponse as u8 {
                books.responses += 1;
            }
            if dir == Direction::Downlink && d[1] == FrameType::CookieReply as u8 {
                books.refusals += 1;
            }
            if dir == Direction::Uplink && d[1] == FrameType::HandshakeInit as u8 {
                books.latest_init = Some(d.clone());
                if d[HEADER_LEN] == Kind::Pair as u8 {
                    books.pilot_static =
                        Some(d[HEADER_LEN + 6..HEADER_LEN + 38].try_into().unwrap());
                }
            }
            if dir == Direction::Uplink && d[1] == FrameType::HandshakeFinish as u8 {
                // Forwarded below, before any forgery that follows it.
                air.forward(d.clone());
                books.bonded = true;
            } else {
                air.forward(d.clone());
            }
            let Some(pilot) = books.pilot_static else {
                return;
            };
            // Not on the aircraft's handshake answers: those are caused by the flood.
            if now >= Timestamp::from_millis(1000)
                || (dir == Direction::Downlink && !is_encrypted(&d))
            {
                return;
            }
            let bonded = books.bonded;
            for kind in FORGED {
                let index = r.next_u32() | 1;
                let mut random = [0u8; 32];
                r.fill_bytes(&mut random);
                let forged = match kind {
                    Forged::Garbage => {
                        let mut g = vec![0u8; 168];
                        r.fill_bytes(&mut g);
                        g[0] = 0xfe;
                        g
                    }
                    Forged::BadMac => pair_init(random, &[7u8; pake::KE1_LEN], index, false),
                    Forged::BadKe1 => pair_init(random, &[0xff; pake::KE1_LEN], index, true),
                    Forged::BondWithoutKey => keyed_init(
                        InitBody::Session {
                            bond_id: bond_id(&PublicKey::from(pilot)),
                            message: message1(random),
                        },
                        index,
                    ),
                    Forged::UnknownBond => keyed_init(
                        InitBody::Session {
                            bond_id: random[..8].try_into().unwrap(),
                            message: message1(random),
                        },
                        index,
                    ),
                    Forged::UnknownTicket => keyed_init(
                        InitBody::Resume {
                            ticket: random[..16].try_into().unwrap(),
                            message: message1(random),
                        },
                        index,
                    ),
                    Forged::Replay => match &books.latest_init {
                        Some(i) => i.clone(),
                        None => continue,
                    },
                };
                *books.sent.entry((kind, bonded)).or_default() += 1;
                air.inject(Direction::Uplink, forged, now);
            }
        },
    );
    let mut f = Flight::pairing(config, 32);
    f.pair.set_adversary(Box::new(adversary));
    f.fly(ms(1500));
    f.settle(ms(300));
    assert!(f.pair.remote.storage_unlocked());
    assert_nothing_lost(&f);
    assert_eq!(
        f.pair.aircraft.handshake_crypto_ops(),
        3,
        "pairing (OPAQUE, the bond's X25519) + unlock only"
    );

    let books = lock(&books);
    let sent = |k: Forged, bonded: bool| books.sent.get(&(k, bonded)).copied().unwrap_or(0);
    let both = |k: Forged| sent(k, false) + sent(k, true);
    let total: u64 = books.sent.values().sum();
    assert!(total > 1500, "{total} forged initiations");
    let a = f.pair.aircraft.stats();
    assert_eq!(a.dropped_malformed, both(Forged::Garbage));
    // Bad mac1, undecodable KE1, and (once the bond exists) a session Init without the
    // bond key: dropped by the handshake before any public-key operation. Replays of the
    // pilot's pairing Init: answered from the cache while it is pending, ignored after.
    assert_eq!(
        a.dropped_handshake,
        both(Forged::BadMac) + both(Forged::BadKe1) + sent(Forged::BondWithoutKey, true),
    );
    // Before the bond exists, a session Init for it is refused as an unknown bond; bad
    // bonds and tickets always are: 27-byte refusals, smaller than what caused them.
    let refusals = sent(Forged::BondWithoutKey, false)
        + both(Forged::UnknownBond)
        + both(Forged::UnknownTicket);
    assert_eq!(books.refusals, refusals);
    assert!(refusals > 500);
    // A replay of the pending pairing Init is answered with the cached Response, no new
    // work, at most once per half `retry_initial`; after the session is up, it is ignored.
    assert!((1..=3).contains(&books.responses), "{}", books.responses);
    assert!(sent(Forged::BondWithoutKey, true) > 100 && sent(Forged::BondWithoutKey, false) >= 1);
    assert!(both(Forged::Replay) > 200);
    assert!(
        f.pair.aircraft.remaining_attempts() == Some(10),
        "no attempt counted"
    );
}

/// The adversary holds back the pilot's `Finish`, so the pairing stays pending, and
/// replays the pilot's `Init` 200 times (from a spoofed source, say). Each answer would be
/// the 373-byte pairing `Response` to a 162-byte `Init`: an amplifier (issue 15, finding
/// 5). The aircraft answers a repeat from its cache at most once per half `retry_initial`
/// (no OPAQUE run, no attempt, no token): no more often than a genuine remote retransmits,
/// so a flood gets far fewer bytes out than it sends. Once the `Finish` goes through, the
/// pairing completes and replays are ignored.
#[test]
fn replays_of_a_pending_pairing_init_are_answered_from_the_cache() {
    #[derive(Debug, Default)]
    struct Books {
        init: Option<Vec<u8>>,
        replayed: u64,
        responses: u64,
        response_bytes: u64,
        hold_finish: bool,
    }
    let books = Arc::new(Mutex::new(Books {
        hold_finish: true,
        ..Books::default()
    }));
    let b = books.clone();
    let adversary = FnAdversary::new(
        move |_now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            let mut b = lock(&b);
            match (dir, d[1]) {
                (Direction::Uplink, t) if t == FrameType::HandshakeInit as u8 => {
                    b.init = Some(d.clone());
                }
                (Direction::Uplink, t)
                    if t == FrameType::HandshakeFinish as u8 && b.hold_finish =>
                {
                    return;
                }
                (Direction::Downlink, t) if t == FrameType::HandshakeResponse as u8 => {
                    b.responses += 1;
                    b.response_bytes += d.len() as u64;
                }
                _ => {}
            }
            air.forward(d);
        },
    );
    let mut f = Flight::pairing(config(), 47);
    f.pair.set_adversary(Box::new(adversary));
    f.fly(ms(50));
    let init = lock(&books).init.clone().unwrap();
    assert_eq!(init.len(), 162);
    let replays = 200;
    let every = ms(1);
    for _ in 0..replays {
        f.pair.inject(Direction::Uplink, init.clone(), f.pair.now());
        lock(&books).replayed += 1;
        f.pair.run_for(every);
    }
    f.settle(ms(20));
    {
        let b = lock(&books);
        // The genuine Init's answer and one cached answer per half `retry_initial` of
        // the flood (the first copy may come as soon as half of it after the genuine one).
        let gap = config().handshake.retry_initial / 2;
        let cached = (every * replays).as_micros() / gap.as_micros() + 1;
        assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 1);
        assert_eq!(f.pair.aircraft.remaining_attempts(), Some(9));
        let answers = 1 + u64::try_from(cached).unwrap();
        assert!(
            (3..=answers).contains(&b.responses),
            "{} answers to {} replays, at most {answers}",
            b.responses,
            b.replayed
        );
        assert_eq!(b.response_bytes, b.responses * 373);
        let bytes_in = (b.replayed + 1) * init.len() as u64;
        assert!(
            b.response_bytes <= bytes_in,
            "{} bytes out for {bytes_in} in",
            b.response_bytes
        );
    }
    lock(&books).hold_finish = false;
    f.fly(ms(1500));
    assert!(f.pair.remote.is_connected() && f.pair.remote.storage_unlocked());
    // OPAQUE and the bond's X25519 for the pairing, OPAQUE for the unlock.
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 3);
    let responses = lock(&books).responses;
    f.pair.inject(Direction::Uplink, init, f.pair.now());
    f.settle(ms(20));
    assert_eq!(
        lock(&books).responses,
        responses,
        "ignored once established"
    );
    assert_eq!(Drops::of(f.pair.aircraft.stats()), Drops::default());
}

/// The radio loses the aircraft's first five pairing `Response`s (a fade on the downlink
/// while the remote retransmits its `Init` at 0.1, 0.3, 0.7 and 1.5 s). The aircraft
/// answers each retransmission from its cache, so the sixth `Response` gets through and the
/// pairing completes on its one attempt. With a fixed number of cached answers (two, as it
/// once was) the aircraft fell silent after the third: the remote retransmitted into
/// silence until its handshake timed out, and the owner's attempt was spent.
#[test]
fn a_pairing_whose_first_responses_are_lost_completes_on_a_retransmission() {
    let lost = 5;
    let responses = Arc::new(Mutex::new(0u32));
    let r = responses.clone();
    let adversary = FnAdversary::new(
        move |_now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            if dir == Direction::Downlink && d[1] == FrameType::HandshakeResponse as u8 {
                let mut r = lock(&r);
                *r += 1;
                if *r <= lost {
                    return;
                }
            }
            air.forward(d);
        },
    );
    let mut f = Flight::pairing(config(), 48);
    f.pair.set_adversary(Box::new(adversary));
    let done = f.fly_until(Duration::from_secs(5), |f| {
        f.pair.remote.is_connected() && f.pair.remote.storage_unlocked()
    });
    assert!(done, "{} responses sent", lock(&responses));
    assert_eq!(*lock(&responses), lost + 1);
    // One OPAQUE run and the bond's X25519 for the pairing, OPAQUE for the unlock; the
    // pairing's attempt was not counted as a failure.
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 3);
    assert_eq!(f.pair.aircraft.remaining_attempts(), Some(10));
}

/// An adversary that forwards everything and, for each datagram, injects `n` well-formed
/// pairing `Init`s of its own (fresh static key, KE1 from a guessed code, the public
/// mac1).
fn pairing_flood(seed: u64, n: usize) -> Box<dyn Adversary> {
    let mut r = rng(seed);
    Box::new(FnAdversary::new(
        move |now: Timestamp, _dir: Direction, d: Vec<u8>, air: &mut Air| {
            // On genuine traffic only, not on the refusals the flood itself causes.
            let trigger = is_encrypted(&d);
            air.forward(d);
            for _ in 0..if trigger { n } else { 0 } {
                let code = format!("{:06}", r.next_u32() % 1_000_000);
                let (_, ke1) = pake::client_start(code.as_bytes(), &mut r).unwrap();
                let mut key = [0u8; 32];
                r.fill_bytes(&mut key);
                let init = pair_init(key, &ke1, r.next_u32() | 1, true);
                air.inject(Direction::Uplink, init, now);
            }
        },
    ))
}

/// Anyone in range can make well-formed pairing `Init`s (the link id is public, KE1 is
/// cheap). Outside the owner's pairing window (closed once the pilot paired) a flood of
/// them is refused before any attempt or work. Inside a window the owner opens, it costs
/// the aircraft one OPAQUE run per attempt the back-off allows, and none once locked out;
/// bonded remotes are untouched (their own rate-limit bucket, no attempt guard): the
/// pilot reconnects and flies through the flood.
#[test]
fn a_pairing_flood_is_bounded_and_bonded_remotes_still_connect() {
    let mut f = Flight::pairing(guarded_config(), 33);
    f.fly(ms(500));
    assert!(f.pair.remote.is_connected() && f.pair.remote.storage_unlocked());
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 3);
    assert!(!f.pair.aircraft.pairing_window_open(f.pair.now()));
    f.pair.set_adversary(pairing_flood(34, 3));
    f.fly(ms(700));
    // The window is closed: nothing spent.
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 3);
    assert_eq!(f.pair.aircraft.remaining_attempts(), Some(3));
    // The owner opens it (for a second remote, say): three flood attempts (the whole
    // budget), then the lockout.
    let now = f.pair.now();
    f.pair
        .aircraft
        .open_pairing_window(Duration::from_secs(60), now)
        .unwrap();
    f.fly(ms(700));
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 6);
    assert_eq!(f.pair.aircraft.remaining_attempts(), Some(0));
    // The pilot reconnects during the flood (a resume: one X25519) and flies on.
    let sessions = f.count(Role::Remote, |e| matches!(e, Event::Connected { .. }));
    f.pair
        .remote
        .connect(
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            f.pair.now(),
        )
        .unwrap();
    f.fly(ms(800));
    let now = f.count(Role::Remote, |e| matches!(e, Event::Connected { .. }));
    assert_eq!(now, sessions + 1);
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 7);
    f.settle(ms(300));
    let lost = undelivered(&f.pair);
    // At most what was in flight when the resume replaced the keys.
    assert!(lost.iter().all(|&n| n <= 3), "{lost:?}");
    assert!(f.remote.stats.download.verified);
}

/// Issue 15, finding 1 (was HIGH): pairing and storage unlock shared one attempt guard,
/// and a pairing `Init` needs only the public link id, so anyone in radio range could keep
/// the aircraft locked out and the bonded pilot could never open storage. Now a pairing
/// outside the owner's window is refused before any attempt, and unlocks have their own
/// budget per bond. Here the worst case: the owner has the window open and the flood
/// locks pairing out; the pilot, restarted, still flies and opens storage.
#[test]
fn a_pairing_flood_does_not_lock_the_bonded_pilot_out_of_storage() {
    let config = guarded_config();
    let mut f = Flight::pairing(config.clone(), 35);
    f.fly(ms(500));
    assert!(f.pair.remote.storage_unlocked());
    let now = f.pair.now();
    f.pair
        .aircraft
        .open_pairing_window(Duration::from_secs(60), now)
        .unwrap();
    f.pair.set_adversary(pairing_flood(36, 1));
    f.fly(ms(1500));
    assert_eq!(
        f.pair.aircraft.remaining_attempts(),
        Some(0),
        "the flood locked pairing out"
    );
    // The pilot restarts the remote: a new session, whose storage starts locked.
    let identity = f.pair.remote.remote_identity().unwrap().to_bytes();
    let identity = RemoteIdentity::from_bytes(&identity).unwrap();
    let now = f.pair.now();
    f.pair.remote = Link::remote(config, identity, LINK_ID, &mut rng(37), now).unwrap();
    f.pair
        .remote
        .connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), now)
        .unwrap();
    f.fly(ms(300));
    assert!(f.pair.remote.is_connected(), "the bonded pilot flies");
    f.pair.remote.unlock_storage(CODE, f.pair.now()).unwrap();
    f.fly(ms(500));
    assert!(
        f.pair.remote.storage_unlocked(),
        "the pilot, with the right code, could not open storage"
    );
}
