//! Counters, key updates and their limits: no (key, nonce) pair is used twice when a
//! counter runs out or a key update is blocked, and frames held back across a key update open
//! only within the previous key's grace period.
//!
//! The fixtures (the flight, the adversary's model of the receiver and its books, the tape of
//! frames on the air) and what every scenario checks are in `tests/common/adversary.rs`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use rotorlink::wire::FrameType;
use rotorlink::Role;
use rotorlink::{Channel, CloseCode, Config, Event, Timestamp};
use rotorlink_sim::aircraft::AircraftConfig;
use rotorlink_sim::{Air, Direction, FnAdversary, Recorder};

use common::adversary::*;

/// A flight of 7 s with key updates every 40 frames and a counter limit of 300; every
/// frame on the air.
fn exhaust(app: AircraftConfig, seed: u64) -> (Flight, Vec<(Timestamp, Direction, Vec<u8>)>) {
    let config = Config {
        rekey_after_packets: 40,
        counter_limit: 300,
        ..config()
    };
    let recorder = Recorder::new();
    let mut f = Flight::pairing_app(config.clone(), seed, CODE, app);
    f.pair.set_adversary(Box::new(recorder.clone()));
    // A worn-out session ends without closing the link, and the bonded remote starts
    // the next one by itself (on its own exhaustion at once, on the aircraft's when the
    // link is lost): no application step is needed.
    f.fly(ms(7000));
    assert!(f.pair.remote.is_connected() || !f.pair.remote.is_closed());
    let keys = keys_on_air(&recorder.log());
    assert_nonces_unique(&keys, config.reject_after_packets, config.counter_limit);
    let sessions: BTreeSet<_> = keys.keys().map(|(d, i, _)| (*d, *i)).collect();
    assert!(sessions.len() >= 6, "{} sessions", sessions.len());
    assert!(keys.len() >= 30, "{} keys", keys.len());
    assert!(
        f.count(Role::Remote, |e| matches!(e, Event::Connected { .. })) >= 3,
        "the flight went on after each exhaustion"
    );
    let sticks = f
        .pair
        .aircraft
        .stats()
        .channel(Channel::Control)
        .messages_delivered;
    assert!(sticks > 300, "{sticks}");
    (f, recorder.log())
}

fn exhausted(f: &Flight, side: Role) -> usize {
    f.count(
        side,
        |e| matches!(e, Event::SessionEnded { code } if *code == CloseCode::COUNTER_EXHAUSTED),
    )
}

/// Key updates every 40 frames and a counter limit of 300. With video on, the aircraft
/// sends more and exhausts its counter first, again and again: it closes locally with
/// `COUNTER_EXHAUSTED` (it never seals with the limit) and the remote reconnects. Across
/// every key update and every session, no counter is used twice under a key.
#[test]
fn no_nonce_is_reused_when_the_aircraft_exhausts_its_counter() {
    let (f, _) = exhaust(aircraft_app(), 13);
    assert!(exhausted(&f, Role::Aircraft) >= 2);
}

/// The same with the video off: the remote, sending sticks at 100 Hz, exhausts first.
#[test]
fn no_nonce_is_reused_when_the_remote_exhausts_its_counter() {
    let app = AircraftConfig {
        video_bitrate: 0,
        ..aircraft_app()
    };
    let (f, _) = exhaust(app, 14);
    assert!(exhausted(&f, Role::Remote) >= 2);
}

/// The adversary holds every fourth telemetry frame back for 2.5 s while key updates
/// run (every 200 frames). Once released, a frame still under the receiver's current key
/// is accepted; one under the previous key only within `previous_key_grace` (2 s) of the
/// rotation, else refused as an expired key; one two updates old fails its tag. The
/// remote's counters match that prediction exactly, and the only messages lost are the
/// held frames it refused.
#[test]
fn frames_held_back_across_a_key_update_open_only_within_the_grace_period() {
    let config = Config {
        rekey_after_packets: 200,
        ..config()
    };
    let hold = ms(2500);
    let delay = ms(5);
    // (sent at, generation, held)
    let seen = Arc::new(Mutex::new(Vec::<(Timestamp, u64, bool)>::new()));
    let log = seen.clone();
    let mut tape = Tape::default();
    let mut n = 0u32;
    let adversary = FnAdversary::new(
        move |now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            if dir == Direction::Downlink && is_encrypted(&d) {
                let s = tape.record(now, dir, &d);
                let telemetry = d[1] == FrameType::Data as u8 && d[3] == Channel::Telemetry as u8;
                n += u32::from(telemetry);
                let held = telemetry && n % 4 == 0;
                lock(&log).push((now, s.generation, held));
                if held {
                    air.forward_after(hold, d);
                    return;
                }
            }
            air.forward(d);
        },
    );
    let mut f = Flight::pairing(config.clone(), 42);
    f.pair.set_adversary(Box::new(adversary));
    f.fly(ms(5000));
    f.settle(ms(3000));
    let seen = lock(&seen);
    // When the remote's receive key first reached each generation: the arrival of the
    // first frame of it that was not held.
    let mut rotated = BTreeMap::<u64, Timestamp>::new();
    for (at, generation, held) in seen.iter() {
        if !held {
            rotated.entry(*generation).or_insert(*at + delay);
        }
    }
    let mut expect = Drops::default();
    let (mut accepted, mut refused) = (0, 0);
    for (at, g, held) in seen.iter() {
        if !held {
            continue;
        }
        let arrival = *at + hold + delay;
        let (current, since) = rotated
            .iter()
            .filter(|(_, t)| **t < arrival)
            .map(|(c, t)| (*c, *t))
            .next_back()
            .unwrap();
        let grace_over = arrival >= since + config.previous_key_grace;
        let why = match current - g {
            0 => None,
            1 if !grace_over => None,
            k if k % 2 == 1 && grace_over => Some(Why::KeyExpired),
            _ => Some(Why::Auth),
        };
        match why {
            None => accepted += 1,
            Some(why) => {
                refused += 1;
                expect.add(why);
            }
        }
    }
    assert_eq!(Drops::of(f.pair.remote.stats()), expect);
    assert_eq!(Drops::of(f.pair.aircraft.stats()), Drops::default());
    assert!(
        accepted > 5 && expect.key_expired > 5,
        "{accepted} {expect:?}"
    );
    assert!(f.pair.remote.stats().rekeys_received >= 3);
    assert_eq!(undelivered(&f.pair), [0, refused, 0]);
}

/// The adversary blocks every key-update message (session-channel frames are visible
/// on the air by their channel byte). The senders' keys reach `reject_after_packets`:
/// each stops on its own (`KEY_EXPIRED`, nothing sent under the worn-out key, so the
/// receiver never has to refuse one), and the remote reconnects.
#[test]
fn a_blocked_key_update_stops_the_sender_at_the_hard_limit() {
    let config = Config {
        rekey_after_packets: 30,
        reject_after_packets: 60,
        ..config()
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let blocked = Arc::new(Mutex::new(0u64));
    let b = blocked.clone();
    let adversary = FnAdversary::new(
        move |now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            lock(&l).push((now, dir, d.clone()));
            if frame_type(&d) == Some(FrameType::Data as u8) && d[3] == 0 {
                *lock(&b) += 1;
                return;
            }
            air.forward(d);
        },
    );
    let mut f = Flight::pairing(config.clone(), 15);
    f.pair.set_adversary(Box::new(adversary));
    f.fly(ms(4000));
    let expired = f.count(
        Role::Remote,
        |e| matches!(e, Event::SessionEnded { code } if *code == CloseCode::KEY_EXPIRED),
    ) + f.count(
        Role::Aircraft,
        |e| matches!(e, Event::SessionEnded { code } if *code == CloseCode::KEY_EXPIRED),
    );
    assert!(expired >= 3, "{expired} keys expired");
    assert!(*lock(&blocked) > 10);
    let keys = keys_on_air(&lock(&log));
    assert_nonces_unique(&keys, config.reject_after_packets, config.counter_limit);
    assert!(keys
        .values()
        .any(|c| c.len() as u64 == config.reject_after_packets));
    // No key update ever completed, and the receivers never had to refuse a frame.
    let (a, r) = (f.pair.aircraft.stats(), f.pair.remote.stats());
    assert_eq!(a.rekeys_sent + r.rekeys_sent, 0);
    assert_eq!(a.dropped_key_expired + r.dropped_key_expired, 0);
    assert!(f.count(Role::Remote, |e| matches!(e, Event::Connected { .. })) >= 3);
    assert!(a.channel(Channel::Control).messages_delivered > 150);
}
