//! Per-packet encrypt + decrypt, in one run, through rotorlink (both AEAD providers, queued
//! and in place), Noise transport mode (`snow`, Noise_NN_25519_AESGCM_SHA256, with its
//! default RustCrypto resolver and with its ring resolver, the fast configuration a snow
//! user would pick) and WireGuard data packets (`boringtun`, ChaCha20-Poly1305 as WireGuard
//! specifies).
//! `cargo bench -p rotorlink-bench --bench peers`.

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use boringtun::noise::{Tunn, TunnResult};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::{AwsLc, RustCrypto};
use rotorlink_bench::{links, round_trip, round_trip_in_place, SIZES};
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver, RingResolver};
use snow::{Builder, TransportState};
use x25519_dalek::{PublicKey, StaticSecret};

/// snow's resolver: its default (RustCrypto), or ring for what ring has (AES-GCM, SHA-256,
/// randomness) and the default for the rest (X25519), as snow's `ring-accelerated` does.
fn snow_resolver(ring: bool) -> Box<dyn CryptoResolver + Send> {
    if ring {
        Box::new(FallbackResolver::new(
            Box::new(RingResolver),
            Box::new(DefaultResolver),
        ))
    } else {
        Box::new(DefaultResolver)
    }
}

fn snow_pair(ring: bool) -> (TransportState, TransportState) {
    let params = "Noise_NN_25519_AESGCM_SHA256"
        .parse()
        .expect("valid pattern");
    let mut i = Builder::with_resolver(params, snow_resolver(ring))
        .build_initiator()
        .expect("initiator");
    let params = "Noise_NN_25519_AESGCM_SHA256"
        .parse()
        .expect("valid pattern");
    let mut r = Builder::with_resolver(params, snow_resolver(ring))
        .build_responder()
        .expect("responder");
    let (mut a, mut b) = ([0u8; 1024], [0u8; 1024]);
    let n = i.write_message(&[], &mut a).expect("-> e");
    r.read_message(&a[..n], &mut b).expect("read e");
    let n = r.write_message(&[], &mut a).expect("<- e, ee");
    i.read_message(&a[..n], &mut b).expect("read e, ee");
    (
        i.into_transport_mode().expect("initiator done"),
        r.into_transport_mode().expect("responder done"),
    )
}

/// An IPv4 packet of `len` bytes (boringtun delivers only what looks like IP).
fn ipv4_packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(20)];
    p[0] = 0x45;
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[8] = 64;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    p
}

fn wireguard_pair() -> (Tunn, Tunn) {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let (ka, kb) = (
        StaticSecret::random_from_rng(&mut rng),
        StaticSecret::random_from_rng(&mut rng),
    );
    let (pa, pb) = (PublicKey::from(&ka), PublicKey::from(&kb));
    let mut a = Tunn::new(ka, pb, None, None, 1, None);
    let mut b = Tunn::new(kb, pa, None, None, 2, None);
    let mut buf = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    // a's first packet starts the handshake; shuttle until both have a session.
    let init = match a.encapsulate(&ipv4_packet(64), &mut buf) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => panic!("no handshake initiation"),
    };
    let response = match b.decapsulate(None, &init, &mut out) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => panic!("no handshake response"),
    };
    let mut next = match a.decapsulate(None, &response, &mut buf) {
        TunnResult::WriteToNetwork(p) => Some(p.to_vec()),
        _ => None,
    };
    while let Some(packet) = next.take() {
        if let TunnResult::WriteToNetwork(p) = b.decapsulate(None, &packet, &mut out) {
            next = Some(p.to_vec());
        }
    }
    (a, b)
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("per-packet");
    let (mut snow_tx, mut snow_rx) = snow_pair(false);
    let (mut ring_tx, mut ring_rx) = snow_pair(true);
    let (mut wg_tx, mut wg_rx) = wireguard_pair();
    let (mut rc_air, mut rc_rc) = links::<RustCrypto>();
    let (mut lc_air, mut lc_rc) = links::<AwsLc>();
    let (mut ip_air, mut ip_rc) = links::<AwsLc>();
    let mut wire = vec![0u8; 20_000];
    let mut out = vec![0u8; 20_000];
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let payload = vec![0x5a; size];
        group.bench_with_input(
            BenchmarkId::new("rotorlink-rustcrypto", size),
            &size,
            |b, _| b.iter(|| round_trip(&mut rc_air, &mut rc_rc, &payload, &mut wire)),
        );
        group.bench_with_input(BenchmarkId::new("rotorlink-aws-lc", size), &size, |b, _| {
            b.iter(|| round_trip(&mut lc_air, &mut lc_rc, &payload, &mut wire))
        });
        wire[rotorlink::PAYLOAD_OFFSET..][..size].copy_from_slice(&payload);
        group.bench_with_input(
            BenchmarkId::new("rotorlink-aws-lc-in-place", size),
            &size,
            |b, _| b.iter(|| round_trip_in_place(&mut ip_air, &mut ip_rc, size, &mut wire)),
        );
        for (name, tx, rx) in [
            ("snow-aesgcm", &mut snow_tx, &mut snow_rx),
            ("snow-ring", &mut ring_tx, &mut ring_rx),
        ] {
            group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter(|| {
                    let n = tx.write_message(&payload, &mut wire).expect("encrypt");
                    let m = rx.read_message(&wire[..n], &mut out).expect("decrypt");
                    assert_eq!(m, size);
                })
            });
        }
        let ip = ipv4_packet(size);
        group.bench_with_input(BenchmarkId::new("boringtun", size), &size, |b, _| {
            b.iter(|| {
                let n = match wg_tx.encapsulate(&ip, &mut wire) {
                    TunnResult::WriteToNetwork(p) => p.len(),
                    _ => panic!("not encapsulated"),
                };
                match wg_rx.decapsulate(None, &wire[..n], &mut out) {
                    TunnResult::WriteToTunnelV4(p, _) => assert_eq!(p.len(), ip.len()),
                    _ => panic!("not decapsulated"),
                }
            })
        });
    }
    group.finish();
}

criterion_group!(peers, benches);
criterion_main!(peers);
