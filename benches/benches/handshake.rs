//! Handshakes per second: full pairing with the code (OPAQUE with the default Argon2id
//! parameters, 19 MiB, 2 passes), a bonded session handshake, a fast reconnect (resume) and an
//! in-session key update. Setup (building the links) is outside the timed part.
//! `cargo bench -p rotorlink-bench --bench handshake`.

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::handshake::{AircraftIdentity, KsfParams, MemoryAttemptStore, RemoteIdentity};
use rotorlink::{Channel, Config, Link, Role, Secret, Timestamp};

const LINK_ID: [u8; 16] = *b"bench-aircraft-1";
const CODE: &[u8] = b"246813";

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Move datagrams both ways until `done` or nothing moves.
fn shuttle(air: &mut Link, rc: &mut Link, done: impl Fn(&Link, &Link) -> bool) {
    let mut buf = vec![0u8; 2048];
    let now = Timestamp::ZERO;
    for _ in 0..32 {
        let mut moved = false;
        while let Some(t) = rc.poll_transmit(now, &mut buf) {
            let _ = air.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                &buf[..t.len],
            );
            moved = true;
        }
        while let Some(t) = air.poll_transmit(now, &mut buf) {
            let _ = rc.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                &buf[..t.len],
            );
            moved = true;
        }
        while air.poll_event().is_some() {}
        while rc.poll_event().is_some() {}
        if done(air, rc) || !moved {
            break;
        }
    }
    assert!(done(air, rc), "handshake did not complete");
}

fn connected(air: &Link, rc: &Link) -> bool {
    air.is_connected() && rc.is_connected()
}

fn aircraft(identity: &[u8], seed: u64) -> Link {
    let identity = AircraftIdentity::from_bytes(identity).expect("valid identity");
    let store = Box::new(MemoryAttemptStore::new());
    let mut air = Link::aircraft(
        Config::default(),
        identity,
        store,
        &mut rng(seed),
        Timestamp::ZERO,
    )
    .expect("valid config");
    air.open_pairing_window(std::time::Duration::from_secs(3600), Timestamp::ZERO)
        .expect("an aircraft");
    air
}

fn remote(identity: &[u8], seed: u64) -> Link {
    let identity = RemoteIdentity::from_bytes(identity).expect("valid identity");
    Link::remote(
        Config::default(),
        identity,
        LINK_ID,
        &mut rng(seed),
        Timestamp::ZERO,
    )
    .expect("valid config")
}

fn benches(c: &mut Criterion) {
    let ksf = KsfParams::default();
    let provisioned = AircraftIdentity::provision(LINK_ID, CODE, ksf, &mut rng(1)).unwrap();
    let air_fresh = provisioned.to_bytes().to_vec();
    let rc_fresh = RemoteIdentity::generate(&mut rng(2)).to_bytes().to_vec();

    // Pair once to get bonded identities for the session and resume benches.
    let (mut air, mut rc) = (aircraft(&air_fresh, 3), remote(&rc_fresh, 4));
    rc.pair(
        CODE,
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        Timestamp::ZERO,
    )
    .unwrap();
    shuttle(&mut air, &mut rc, connected);
    let air_bonded = air.aircraft_identity().unwrap().to_bytes().to_vec();
    let rc_bonded = rc.remote_identity().unwrap().to_bytes().to_vec();

    let mut group = c.benchmark_group("handshake");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("pairing (OPAQUE + Argon2id 19 MiB)", |b| {
        b.iter_batched(
            || (aircraft(&air_fresh, 5), remote(&rc_fresh, 6)),
            |(mut air, mut rc)| {
                rc.pair(
                    CODE,
                    std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                    Timestamp::ZERO,
                )
                .unwrap();
                shuttle(&mut air, &mut rc, connected);
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("session (bonded, X25519)", |b| {
        b.iter_batched(
            || (aircraft(&air_bonded, 7), remote(&rc_bonded, 8)),
            |(mut air, mut rc)| {
                rc.connect(
                    std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                    Timestamp::ZERO,
                )
                .unwrap();
                shuttle(&mut air, &mut rc, connected);
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("resume (fast reconnect)", |b| {
        b.iter_batched(
            || {
                let (mut air, mut rc) = (aircraft(&air_bonded, 9), remote(&rc_bonded, 10));
                rc.connect(
                    std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                    Timestamp::ZERO,
                )
                .unwrap();
                shuttle(&mut air, &mut rc, connected);
                let before = air.stats().handshakes_completed;
                (air, rc, before)
            },
            |(mut air, mut rc, before)| {
                rc.connect(
                    std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                    Timestamp::ZERO,
                )
                .unwrap(); // holds a ticket: a resume
                shuttle(&mut air, &mut rc, |a, r| {
                    a.stats().handshakes_completed > before && r.is_connected()
                });
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("key update (X25519 in-session)", |b| {
        let config = Config {
            rekey_after_packets: 1,
            ..Config::default()
        };
        b.iter_batched(
            || {
                let s = Secret::new([4; 32]);
                let mut r = rng(11);
                let t = Timestamp::ZERO;
                let air = Link::from_secret(
                    Role::Aircraft,
                    config.clone(),
                    &s,
                    &[5; 32],
                    1,
                    2,
                    std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                    &mut r,
                    t,
                );
                let rc = Link::from_secret(
                    Role::Remote,
                    config.clone(),
                    &s,
                    &[5; 32],
                    2,
                    1,
                    std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                    &mut r,
                    t,
                );
                (air.unwrap(), rc.unwrap())
            },
            |(mut air, mut rc)| {
                air.send(Channel::Telemetry, b"x").unwrap();
                shuttle(&mut air, &mut rc, |a, r| {
                    a.stats().rekeys_sent >= 1 && r.stats().rekeys_received >= 1
                });
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(handshakes, benches);
criterion_main!(handshakes);
