//! Replay: genuine encrypted frames recorded off the air and put back on it, inside and
//! beyond the replay window, across key updates and after a reconnect. The adversary
//! predicts the receiver's verdict on every replay (duplicate or too old, or, re-addressed to
//! a new session, a failed tag) and the tests compare it with the drop counters exactly.
//!
//! The fixtures (the flight, the adversary's model of the receiver and its books, the tape of
//! frames on the air) and what every scenario checks are in `tests/common/adversary.rs`.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rotorlink::handshake::messages::Kind;
use rotorlink::Role;
use rotorlink::{Config, Event, Timestamp};
use rotorlink_sim::{Adversary, Air, Direction, FnAdversary};

use common::adversary::*;

/// An adversary that records every genuine encrypted frame and replays each once, `after`
/// the original (and, with `also_after`, a second time then); and a watcher that goes on
/// recording once it is off the path, while its last replays arrive, so that the tape
/// holds every frame the receiver judges them against.
fn replayer(after: Duration, also_after: Option<Duration>) -> Replayer {
    let tape = Arc::new(Mutex::new(Tape::default()));
    let t = tape.clone();
    let adversary = FnAdversary::new(
        move |now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            if is_encrypted(&d) {
                let mut tape = lock(&t);
                let seen = tape.record(now, dir, &d);
                for delay in std::iter::once(after).chain(also_after) {
                    let at = now + delay;
                    air.inject(dir, d.clone(), at);
                    tape.replays.push(Replay {
                        frame: seen.clone(),
                        at,
                    });
                }
            }
            air.forward(d);
        },
    );
    let t = tape.clone();
    let watcher = FnAdversary::new(
        move |now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            if is_encrypted(&d) {
                lock(&t).record(now, dir, &d);
            }
            air.forward(d);
        },
    );
    Replayer {
        adversary: Box::new(adversary),
        watcher: Box::new(watcher),
        tape,
    }
}

/// What [`replayer`] makes: the adversary, its watcher and their tape.
struct Replayer {
    adversary: Box<dyn Adversary>,
    watcher: Box<dyn Adversary>,
    tape: Arc<Mutex<Tape>>,
}

/// A flight with `replayer`'s adversary, then its watcher.
fn fly_replayed(config: Config, seed: u64, r: Replayer) -> (Flight, Arc<Mutex<Tape>>) {
    let f = fly_attacked_then_watched(config, seed, r.adversary, Some(r.watcher));
    (f, r.tape)
}

/// Check a replay flight: every replay dropped as the window says, nothing else dropped.
fn check_replays(f: &Flight, tape: &Tape, window: u64) -> (Drops, Drops) {
    let now = f.pair.now();
    let (aircraft, remote) = tape.verdicts(window, now);
    assert_eq!(Drops::of(f.pair.aircraft.stats()), aircraft, "aircraft");
    assert_eq!(Drops::of(f.pair.remote.stats()), remote, "remote");
    assert_eq!(
        aircraft.total() + remote.total(),
        tape.delivered(now).count() as u64,
        "every replay dropped once"
    );
    (aircraft, remote)
}

/// Every data frame, ack and keepalive of a whole flight replayed 3 ms after the
/// original: all inside the 2048-frame window, all dropped as duplicates (before any
/// decryption), nothing delivered twice, nothing legitimate lost.
#[test]
fn replayed_frames_inside_the_window_are_duplicates() {
    let (f, tape) = fly_replayed(config(), 2, replayer(ms(3), None));
    let tape = lock(&tape);
    let (aircraft, remote) = check_replays(&f, &tape, 2048);
    assert!(aircraft.duplicate > 200 && remote.duplicate > 300);
    assert_eq!(aircraft.too_old + remote.too_old, 0);
}

/// With a 64-frame window, frames replayed 1 s later are older than the window: dropped
/// as too old (those replayed in a quiet moment, still inside it, as duplicates).
#[test]
fn replayed_frames_beyond_the_window_are_too_old() {
    let config = Config {
        replay_window: 64,
        ..config()
    };
    let (f, tape) = fly_replayed(config, 3, replayer(ms(1000), None));
    let tape = lock(&tape);
    let (aircraft, remote) = check_replays(&f, &tape, 64);
    assert!(aircraft.too_old > 100 && remote.too_old > 100);
}

/// Key updates every 64 frames (a new key phase every half second or so): frames
/// replayed 50 ms and 2.5 s later, many into a later key phase and many after the old
/// key's 2 s grace period. The one window across phases drops every one as a replay:
/// no replay reaches a key, none is counted as an expired key or a failed tag.
#[test]
fn replays_across_a_key_update_are_caught_by_the_window() {
    let config = Config {
        rekey_after_packets: 64,
        ..config()
    };
    let (f, tape) = fly_replayed(config.clone(), 4, replayer(ms(50), Some(ms(2500))));
    let tape = lock(&tape);
    check_replays(&f, &tape, 2048);
    let (a, r) = (f.pair.aircraft.stats(), f.pair.remote.stats());
    assert!(
        a.rekeys_sent >= 4 && r.rekeys_sent >= 4,
        "{} {}",
        a.rekeys_sent,
        r.rekeys_sent
    );
    let (crossed, expired) = tape.across_rekeys(config.previous_key_grace, f.pair.now());
    assert!(crossed > 200, "{crossed} replays crossed a key update");
    assert!(
        expired > 100,
        "{expired} replays came after the grace period"
    );
}

/// Frames recorded in one session and replayed after the remote reconnected (a resume:
/// new indices, new keys, counters from 0). As recorded, they name the old session's
/// index: dropped as unknown before any cryptography. Re-addressed to the new session,
/// they fail the tag (or, where the new session already used the counter, the window).
#[test]
fn replays_after_a_reconnect_are_refused() {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mode {
        Record,
        Wait,
        Attack,
    }
    let config = config();
    let tape = Arc::new(Mutex::new(BTreeMap::<Direction, Vec<Vec<u8>>>::new()));
    let mode = Arc::new(Mutex::new(Mode::Record));
    let (t, m) = (tape.clone(), mode.clone());
    let mut cursor = BTreeMap::<Direction, usize>::new();
    let copies: Copies = Box::new(move |dir, d, model| {
        let mut tape = lock(&t);
        match *lock(&m) {
            Mode::Record => {
                tape.entry(dir).or_default().push(d.to_vec());
                return Vec::new();
            }
            Mode::Wait => return Vec::new(),
            Mode::Attack => {}
        }
        // Newest first: counters above the new session's, then ones it has used.
        let old = tape.entry(dir).or_default();
        let i = cursor.entry(dir).or_default();
        let Some(recorded) = old.iter().rev().nth(*i % old.len()).cloned() else {
            return Vec::new();
        };
        *i += 1;
        let mut readdressed = recorded.clone();
        set_receiver_index(&mut readdressed, model.index.unwrap());
        vec![recorded, readdressed]
    });
    let (adversary, ledger) = copier(&config, copies);
    let mut f = Flight::pairing(config, 5);
    f.pair.set_adversary(adversary);
    f.fly(ms(1500));
    let first = f.pair.remote.local_index();
    *lock(&mode) = Mode::Wait;
    f.pair
        .remote
        .connect(
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            f.pair.now(),
        )
        .unwrap();
    f.fly(ms(300));
    assert_ne!(f.pair.remote.local_index(), first, "a new session");
    let resumed = |e: &Event| matches!(e, Event::Connected { kind: Kind::Resume });
    assert_eq!(f.count(Role::Remote, resumed), 1);
    // The switch itself may lose what was in flight under the old keys: let it settle,
    // then count only the attack.
    f.settle(ms(100));
    let lost_before = undelivered(&f.pair);
    let before = (
        Drops::of(f.pair.aircraft.stats()),
        Drops::of(f.pair.remote.stats()),
    );
    let booked = {
        let l = lock(&ledger);
        (l.aircraft, l.remote)
    };
    *lock(&mode) = Mode::Attack;
    f.fly(ms(1500));
    f.settle(ms(300));
    let l = lock(&ledger);
    let aircraft = Drops::of(f.pair.aircraft.stats()).since(before.0);
    let remote = Drops::of(f.pair.remote.stats()).since(before.1);
    assert_eq!(aircraft, l.aircraft.since(booked.0), "aircraft");
    assert_eq!(remote, l.remote.since(booked.1), "remote");
    assert!(aircraft.unknown_receiver > 100 && remote.unknown_receiver > 100);
    assert!(
        aircraft.auth > 40 && remote.auth > 40,
        "{aircraft:?} {remote:?}"
    );
    assert_eq!(undelivered(&f.pair), lost_before, "nothing more lost");
    assert!(f.remote.stats.download.verified);
}
