//! The control of the adversary suite: the flight every `adversary_*` scenario flies, with
//! nothing on the path but a recorder, drops nothing and delivers everything, so every drop
//! the other files count is the attack's.
//!
//! The fixtures (the flight, the adversary's model of the receiver and its books, the tape of
//! frames on the air) and what every scenario checks are in `tests/common/adversary.rs`.

mod common;

use rotorlink_sim::{Direction, Recorder};

use common::adversary::*;

/// The baseline: the same flight with nothing on the path drops nothing, so every drop the
/// other tests count is the attack's.
#[test]
fn a_clean_flight_drops_nothing_and_delivers_everything() {
    let recorder = Recorder::new();
    let f = fly_attacked(config(), 1, Box::new(recorder.clone()));
    assert_eq!(Drops::of(f.pair.aircraft.stats()), Drops::default());
    assert_eq!(Drops::of(f.pair.remote.stats()), Drops::default());
    assert!(recorder.datagrams(Direction::Downlink).len() > 300);
}
