//! Key confirmation and secrets on the air: the remote sends nothing encrypted before the
//! aircraft confirms the session (P3), a leaked traffic secret opens only its own key phase
//! (P4), and the code never crosses the air (P1).
//!
//! The fixtures (the flight, the adversary's model of the receiver and its books, the tape of
//! frames on the air) and what every scenario checks are in `tests/common/adversary.rs`.

mod common;

use std::sync::{Arc, Mutex};

use rotorlink::crypto::{
    nonce, traffic_key, traffic_secrets, updated_traffic_secret, AeadKey, AeadProvider,
};
use rotorlink::wire::{FrameType, HEADER_LEN};
use rotorlink::{Channel, Config, Link, Role, RustCrypto, Secret, Timestamp};
use rotorlink_sim::{Air, ChannelConfig, Direction, FnAdversary, Pair, Recorder};
use sha2::{Digest, Sha256};

use common::adversary::*;

/// P3: the adversary withholds every encrypted frame of the aircraft for the first 300 ms
/// (its key confirmation among them). The remote, which installed keys on the `Response`,
/// sends nothing encrypted, and keeps retransmitting its `Finish`, until an authenticated
/// frame of the aircraft reaches it.
#[test]
fn the_remote_sends_nothing_before_the_aircraft_confirms_the_session() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let adversary = FnAdversary::new(
        move |now: Timestamp, dir: Direction, d: Vec<u8>, air: &mut Air| {
            let pass = !(dir == Direction::Downlink
                && is_encrypted(&d)
                && now < Timestamp::from_millis(300));
            lock(&l).push((now, dir, d[1], pass));
            if pass {
                air.forward(d);
            }
        },
    );
    let mut f = Flight::pairing(config(), 15);
    f.pair.set_adversary(Box::new(adversary));
    f.fly(ms(1000));
    let log = lock(&log);
    let first_down = log
        .iter()
        .find(|(_, dir, t, pass)| *dir == Direction::Downlink && *t >= 0x10 && *pass)
        .map(|(at, ..)| *at)
        .unwrap();
    let first_up = log
        .iter()
        .find(|(_, dir, t, _)| *dir == Direction::Uplink && *t >= 0x10)
        .map(|(at, ..)| *at)
        .unwrap();
    assert!(first_down >= Timestamp::from_millis(300));
    // The aircraft's frame takes 5 ms to arrive.
    assert!(
        first_up >= first_down + ms(5),
        "{first_up:?} {first_down:?}"
    );
    let finishes = log
        .iter()
        .filter(|(_, dir, t, _)| {
            *dir == Direction::Uplink && *t == FrameType::HandshakeFinish as u8
        })
        .count();
    assert!(finishes >= 2, "the Finish was retransmitted: {finishes}");
    assert!(f.pair.remote.is_connected());
}

/// P4: an attacker who learned the first traffic secret of the aircraft's direction (a
/// memory dump) reads the frames of that key phase, and nothing after the first key update
/// (a fresh X25519 exchange it did not see the secrets of), nor does a guess at a hash
/// ratchet help; the other direction's frames never open.
#[test]
fn a_leaked_traffic_secret_opens_only_its_own_key_phase() {
    let config = Config {
        rekey_after_packets: 50,
        ..config()
    };
    let secret = Secret::new([0x42; 32]);
    let hash = [0x17; 32];
    let radio = ChannelConfig::default();
    let mut pair: Pair = Pair::new(config.clone(), radio.clone(), radio, 16).unwrap();
    let t = Timestamp::ZERO;
    pair.aircraft = Link::from_secret(
        Role::Aircraft,
        config.clone(),
        &secret,
        &hash,
        7,
        9,
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
        &mut rng(1),
        t,
    )
    .unwrap();
    pair.remote = Link::from_secret(
        Role::Remote,
        config,
        &secret,
        &hash,
        9,
        7,
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        &mut rng(2),
        t,
    )
    .unwrap();
    let recorder = Recorder::new();
    pair.set_adversary(Box::new(recorder.clone()));
    for i in 0..200u32 {
        pair.aircraft
            .send(Channel::Telemetry, &i.to_be_bytes())
            .unwrap();
        pair.remote
            .send(Channel::Control, &i.to_be_bytes())
            .unwrap();
        pair.run_for(ms(10));
    }
    assert_eq!(pair.messages(Role::Remote, Channel::Telemetry).len(), 200);
    let leaked = traffic_secrets(&secret, &hash).aircraft_to_remote;
    let guesses = [
        leaked.clone(),
        updated_traffic_secret(&leaked, &[0; 32]),
        updated_traffic_secret(&leaked, leaked.expose()),
    ];
    let open = |key: &Secret, d: &[u8]| {
        let mut buf = d.to_vec();
        let (aad, rest) = buf.split_at_mut(HEADER_LEN);
        RustCrypto::key(&traffic_key(key))
            .open_in_place(&nonce(counter(d)), aad, rest)
            .is_ok()
    };
    let mut tape = Tape::default();
    let (mut phase0, mut later, mut opened_later) = (0, 0, 0);
    for (at, dir, d) in recorder.log() {
        if !is_encrypted(&d) {
            continue;
        }
        let s = tape.record(at, dir, &d);
        let opens = guesses.iter().any(|g| open(g, &d));
        match (dir, s.generation) {
            (Direction::Uplink, _) => assert!(!opens, "an uplink frame opened"),
            (Direction::Downlink, 0) => {
                assert!(open(&leaked, &d), "a phase-0 frame did not open");
                phase0 += 1;
            }
            (Direction::Downlink, _) => {
                later += 1;
                opened_later += usize::from(opens);
            }
        }
    }
    assert!(phase0 >= 40 && later >= 100, "{phase0} {later}");
    assert_eq!(opened_later, 0);
}

/// P1: the code never crosses the air: no datagram of a pairing and a storage unlock holds
/// it, nor SHA-256 of it.
#[test]
fn the_code_never_crosses_the_air() {
    let recorder = Recorder::new();
    let f = fly_attacked(config(), 17, Box::new(recorder.clone()));
    assert!(f.pair.remote.storage_unlocked());
    let digest = Sha256::digest(CODE);
    for (_, _, d) in recorder.log() {
        for needle in [CODE, &digest[..8]] {
            assert!(!d.windows(needle.len()).any(|w| w == needle));
        }
    }
}
