//! The handshake against an active attacker on the radio: tampering, floods and replays.

use std::time::Duration;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rotorlink::handshake::keys::{bond_id, mac1};
use rotorlink::handshake::limits::{LimitsConfig, MemoryAttemptStore};
use rotorlink::handshake::messages::{frame, Init, InitBody, MAC1_LEN, MESSAGE1_LEN, SUITE_V2};
use rotorlink::handshake::{AircraftIdentity, HandshakeConfig, KsfParams, RemoteIdentity};
use rotorlink::wire::FrameType;
use rotorlink::{Config, Event, Link, Timestamp};
use x25519_dalek::PublicKey;

const LINK_ID: [u8; 16] = *b"RL-ATTACK-TEST-1";
const CODE: &[u8] = b"271828";

fn config() -> Config {
    Config {
        ksf: KsfParams::INSECURE_FAST,
        limits: LimitsConfig {
            max_failures: 5,
            base_backoff: Duration::from_millis(200),
            ..LimitsConfig::default()
        },
        handshake: HandshakeConfig {
            timeout: Duration::from_secs(2),
            ..HandshakeConfig::default()
        },
        ..Config::default()
    }
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn provisioned() -> AircraftIdentity {
    AircraftIdentity::provision(LINK_ID, CODE, KsfParams::INSECURE_FAST, &mut rng(1)).unwrap()
}

fn aircraft(identity: AircraftIdentity) -> Link {
    let store = Box::new(MemoryAttemptStore::new());
    let mut air = Link::aircraft(config(), identity, store, &mut rng(2), Timestamp::ZERO).unwrap();
    air.open_pairing_window(core::time::Duration::from_secs(3600), Timestamp::ZERO)
        .unwrap();
    air
}

fn remote(identity: RemoteIdentity) -> Link {
    Link::remote(config(), identity, LINK_ID, &mut rng(3), Timestamp::ZERO).unwrap()
}

fn connected(link: &mut Link) -> bool {
    let mut up = false;
    while let Some(ev) = link.poll_event() {
        up |= matches!(ev, Event::Connected { .. });
    }
    up
}

/// Drive both links for `duration`; `tamper` sees every datagram (true: remote to aircraft)
/// and may change it. Returns whether each side reported a connection.
fn run(
    air: &mut Link,
    rc: &mut Link,
    duration: Duration,
    mut tamper: impl FnMut(bool, &mut Vec<u8>),
) -> (bool, bool) {
    let mut buf = vec![0u8; 2048];
    let (mut air_up, mut rc_up) = (false, false);
    let mut now = Timestamp::ZERO;
    let end = now + duration;
    while now < end {
        while let Some(t) = rc.poll_transmit(now, &mut buf) {
            let mut d = buf[..t.len].to_vec();
            tamper(true, &mut d);
            let _ =
                air.handle_datagram(now, std::net::SocketAddr::from(([10, 0, 0, 2], 47474)), &d);
        }
        while let Some(t) = air.poll_transmit(now, &mut buf) {
            let mut d = buf[..t.len].to_vec();
            tamper(false, &mut d);
            let _ = rc.handle_datagram(now, std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), &d);
        }
        air_up |= connected(air);
        rc_up |= connected(rc);
        now = now + Duration::from_millis(10);
        air.handle_timeout(now);
        rc.handle_timeout(now);
    }
    (air_up, rc_up)
}

/// Which handshake message the man in the middle changes, by frame type byte.
fn message_type(which: u8) -> u8 {
    [
        FrameType::HandshakeInit as u8,
        FrameType::HandshakeResponse as u8,
        FrameType::HandshakeFinish as u8,
    ][usize::from(which % 3)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A man in the middle that relays everything but changes one byte of one kind of
    /// pairing message (every copy of it) makes the pairing fail on both sides.
    #[test]
    fn changing_any_byte_of_a_pairing_message_fails_both_sides(
        which in 0u8..3,
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut air = aircraft(provisioned());
        let mut rc = remote(RemoteIdentity::generate(&mut rng(4)));
        rc.pair(CODE, std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), Timestamp::ZERO).unwrap();
        let target = message_type(which);
        let (air_up, rc_up) = run(&mut air, &mut rc, Duration::from_secs(3), |_, d| {
            if d[1] == target {
                let i = position.index(d.len());
                d[i] ^= flip;
            }
        });
        prop_assert!(!air_up && !rc_up, "a tampered pairing connected: {air_up} {rc_up}");
        prop_assert!(!air.is_connected() && !rc.is_connected());
        prop_assert!(air.aircraft_identity().unwrap().bonds().is_empty());
    }

    /// The same for the bonded session handshake.
    #[test]
    fn changing_any_byte_of_a_session_message_fails_both_sides(
        which in 0u8..3,
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (mut air, mut rc) = bonded();
        rc.connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), Timestamp::ZERO).unwrap();
        let target = message_type(which);
        let (air_up, rc_up) = run(&mut air, &mut rc, Duration::from_secs(3), |_, d| {
            if d[1] == target {
                let i = position.index(d.len());
                d[i] ^= flip;
            }
        });
        prop_assert!(!air_up && !rc_up, "a tampered session connected: {air_up} {rc_up}");
    }
}

/// An aircraft and a remote that paired once, restarted (fresh links from their identities).
fn bonded() -> (Link, Link) {
    let mut air = aircraft(provisioned());
    let mut rc = remote(RemoteIdentity::generate(&mut rng(4)));
    rc.pair(
        CODE,
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        Timestamp::ZERO,
    )
    .unwrap();
    let (air_up, rc_up) = run(&mut air, &mut rc, Duration::from_millis(200), |_, _| {});
    assert!(air_up && rc_up);
    let air_id = AircraftIdentity::from_bytes(&air.aircraft_identity().unwrap().to_bytes());
    let rc_id = RemoteIdentity::from_bytes(&rc.remote_identity().unwrap().to_bytes());
    (aircraft(air_id.unwrap()), remote(rc_id.unwrap()))
}

/// A session `Init` as an attacker makes it: it knows the link id and the bonded remote's
/// public key (sent in the clear when it paired), but not the bond key.
fn forged_session_init(victim: &PublicKey, r: &mut ChaCha20Rng) -> Vec<u8> {
    // Any 32 bytes are an X25519 public key, and any 28 more a ciphertext and tag: the
    // attacker needs no scalar multiplication.
    let mut message = [0u8; MESSAGE1_LEN];
    r.fill_bytes(&mut message);
    let init = Init {
        suite: SUITE_V2,
        sender_index: r.next_u32(),
        body: InitBody::Session {
            bond_id: bond_id(victim),
            message,
        },
        mac1: [0; MAC1_LEN],
    };
    let mut f = frame(FrameType::HandshakeInit, 0, &init.emit());
    let split = f.len() - MAC1_LEN;
    // The best the attacker can do: the MAC with the public part of the key only.
    let tag = mac1(&LINK_ID, &[], &f[..split]);
    f[split..].copy_from_slice(&tag);
    f
}

#[test]
fn a_session_flood_costs_no_diffie_hellman_and_the_bonded_remote_still_connects() {
    let (mut air, mut rc) = bonded();
    let victim = rc.remote_identity().unwrap().static_public();
    let mut attacker = rng(66);
    rc.connect(
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        Timestamp::ZERO,
    )
    .unwrap();
    let mut buf = vec![0u8; 2048];
    let mut now = Timestamp::ZERO;
    let mut up = false;
    for _ in 0..100 {
        // 100 forged initiations per 10 ms, interleaved with the real remote's traffic.
        for _ in 0..100 {
            let forged = forged_session_init(&victim, &mut attacker);
            assert!(air
                .handle_datagram(
                    now,
                    std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                    &forged
                )
                .is_err());
        }
        while let Some(t) = rc.poll_transmit(now, &mut buf) {
            let _ = air.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                &buf[..t.len],
            );
        }
        while let Some(t) = air.poll_transmit(now, &mut buf) {
            let _ = rc.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                &buf[..t.len],
            );
        }
        up |= connected(&mut rc);
        now = now + Duration::from_millis(10);
    }
    assert!(
        up && rc.is_connected(),
        "the bonded remote connected during the flood"
    );
    // 10 000 forged initiations, and the aircraft ran X25519 only for the real one.
    assert_eq!(air.handshake_crypto_ops(), 4);
    assert!(air.stats().dropped_handshake >= 10_000);
}

#[test]
fn a_pairing_flood_is_bounded_by_the_back_off() {
    let mut air = aircraft(provisioned());
    let mut attackers: Vec<Link> = (0..200)
        .map(|i| {
            let mut l = remote(RemoteIdentity::generate(&mut rng(100 + i)));
            l.pair(
                b"guess",
                std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                Timestamp::ZERO,
            )
            .unwrap();
            l
        })
        .collect();
    let mut buf = vec![0u8; 2048];
    let mut now = Timestamp::ZERO;
    for _ in 0..100 {
        for a in &mut attackers {
            while let Some(t) = a.poll_transmit(now, &mut buf) {
                let _ = air.handle_datagram(
                    now,
                    std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                    &buf[..t.len],
                );
            }
        }
        while air.poll_transmit(now, &mut buf).is_some() {}
        now = now + Duration::from_millis(10);
        air.handle_timeout(now);
    }
    // One second of 200 attackers retrying: each OPAQUE evaluation needed a permitted
    // attempt, and the back-off (200 ms, doubling) allows only a handful.
    let ops = air.handshake_crypto_ops();
    assert!((1..=4).contains(&ops), "{ops} OPAQUE evaluations");
    assert!(air.remaining_attempts().unwrap() <= 5 - ops as u32);
}

#[test]
fn replayed_session_initiations_cost_nothing() {
    let (mut air, mut rc) = bonded();
    rc.connect(
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        Timestamp::ZERO,
    )
    .unwrap();
    let mut buf = vec![0u8; 2048];
    let t = rc.poll_transmit(Timestamp::ZERO, &mut buf).unwrap();
    let init = buf[..t.len].to_vec();
    air.handle_datagram(
        Timestamp::ZERO,
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
        &init,
    )
    .unwrap();
    assert_eq!(air.handshake_crypto_ops(), 4);
    // Let the pending handshake time out, then replay the recorded initiation many times.
    let later = Timestamp::ZERO + Duration::from_secs(20);
    air.handle_timeout(later);
    for _ in 0..1000 {
        assert!(air
            .handle_datagram(
                later,
                std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                &init
            )
            .is_err());
    }
    assert_eq!(air.handshake_crypto_ops(), 4);
}
