//! Reflection and splicing across sessions: every datagram sent back to its sender, and
//! frames of another session (another remote and aircraft) put into this one.
//!
//! The fixtures (the flight, the adversary's model of the receiver and its books, the tape of
//! frames on the air) and what every scenario checks are in `tests/common/adversary.rs`.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rotorlink::wire::HEADER_LEN;
use rotorlink::Timestamp;
use rotorlink_sim::{Air, Direction, FnAdversary, Recorder};

use common::adversary::*;

/// Every datagram either side sends, handshake included, is also sent back to its sender,
/// as it is and (encrypted ones) re-addressed to the sender's own index. Per-direction keys:
/// none opens; the pairing, the unlock and every message still go through.
#[test]
fn reflected_frames_are_refused() {
    let config = config();
    let ledger = Arc::new(Mutex::new(Ledger::new(&config)));
    let books = ledger.clone();
    let adversary = FnAdversary::new(
        move |now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            let mut l = lock(&books);
            let back = dir.reverse();
            if is_encrypted(&d) {
                l.model(dir).learn(&d);
                if let Some(own) = l.model(back).index {
                    let mut readdressed = d.clone();
                    set_receiver_index(&mut readdressed, own);
                    l.expect(back, &readdressed);
                    air.inject(back, readdressed, now);
                }
            }
            l.expect(back, &d);
            air.reflect(d.clone());
            if is_encrypted(&d) {
                l.model(dir).accept(&d);
            }
            air.forward(d);
        },
    );
    let f = fly_attacked(config, 10, Box::new(adversary));
    let l = lock(&ledger);
    l.check(&f);
    // The pairing Response back to the aircraft; the Init and Finish back to the remote.
    assert!(
        l.aircraft.handshake >= 1 && l.remote.handshake >= 2,
        "{l:?}"
    );
    assert!(l.aircraft.unknown_receiver > 200 && l.remote.unknown_receiver > 200);
    assert!(l.aircraft.auth + l.aircraft.duplicate > 300, "{l:?}");
}

/// Frames of another session (another remote paired with another aircraft, recorded
/// earlier) put into this one: as recorded (the other session's index), re-addressed to
/// this session, and with this session's genuine header on the other session's payload.
#[test]
fn frames_spliced_from_another_session_are_refused() {
    let recorder = Recorder::new();
    fly_attacked(config(), 11, Box::new(recorder.clone()));
    let mut other: BTreeMap<Direction, Vec<Vec<u8>>> = BTreeMap::new();
    for dir in [Direction::Uplink, Direction::Downlink] {
        other.insert(
            dir,
            recorder
                .datagrams(dir)
                .into_iter()
                .filter(|d| is_encrypted(d))
                .collect(),
        );
    }
    let mut next = BTreeMap::<Direction, usize>::new();
    let copies: Copies = Box::new(move |dir, d, model| {
        let frames = &other[&dir];
        let i = next.entry(dir).or_default();
        let e = frames[*i % frames.len()].clone();
        *i += 1;
        let mut readdressed = e.clone();
        set_receiver_index(&mut readdressed, model.index.unwrap());
        let mut spliced = d[..HEADER_LEN].to_vec();
        spliced.extend_from_slice(&e[HEADER_LEN..]);
        vec![e, readdressed, spliced]
    });
    let (adversary, ledger) = copier(&config(), copies);
    let f = fly_attacked(config(), 12, adversary);
    let l = lock(&ledger);
    l.check(&f);
    for d in [&l.aircraft, &l.remote] {
        assert!(d.unknown_receiver > 200 && d.auth > 300, "{d:?}");
    }
}
