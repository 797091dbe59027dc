//! Seal + open of one data frame through the whole link path (header, counter, replay
//! window, channel) against the raw AES-256-GCM of the same provider on the same buffer.
//! The ratio is the framing overhead. `cargo bench --bench aead`.

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::crypto::{nonce, AeadKey, AeadProvider, Secret, TAG_LEN};
use rotorlink::{Channel, Config, Event, Link, Role, RustCrypto, Timestamp};

const SIZES: [usize; 4] = [64, 256, 1400, 8192];

fn bench_provider<P: AeadProvider>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("seal+open/{}", P::NAME));
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));

        let key = P::key(&Secret::new([1; 32]));
        let mut buf = vec![0u8; size + TAG_LEN];
        let mut counter = 0u64;
        group.bench_with_input(BenchmarkId::new("raw-aead", size), &size, |b, _| {
            b.iter(|| {
                counter += 1;
                key.seal_in_place(&nonce(counter), b"header", &mut buf)
                    .unwrap();
                key.open_in_place(&nonce(counter), b"header", &mut buf)
                    .unwrap();
            })
        });

        let config = Config {
            mtu: rotorlink::wire::MAX_DATAGRAM_LEN,
            ..Config::default()
        };
        let s = Secret::new([2; 32]);
        let t = Timestamp::ZERO;
        let mut air = Link::<P>::from_secret(
            Role::Aircraft,
            config.clone(),
            &s,
            &[3; 32],
            1,
            2,
            &mut ChaCha20Rng::seed_from_u64(101),
            t,
        )
        .unwrap();
        let mut rc = Link::<P>::from_secret(
            Role::Remote,
            config,
            &s,
            &[3; 32],
            2,
            1,
            &mut ChaCha20Rng::seed_from_u64(102),
            t,
        )
        .unwrap();
        let payload = vec![0x5a; size];
        let mut wire = vec![0u8; rotorlink::wire::MAX_DATAGRAM_LEN];
        group.bench_with_input(BenchmarkId::new("link", size), &size, |b, _| {
            b.iter(|| {
                air.send(Channel::Telemetry, &payload).unwrap();
                let tx = air.poll_transmit(t, &mut wire).unwrap();
                rc.handle_datagram(t, &wire[..tx.len]).unwrap();
                // Skip the occasional rekey event; every frame delivers one message.
                loop {
                    match rc.poll_event() {
                        Some(Event::Message { data, .. }) => break assert_eq!(data.len(), size),
                        Some(_) => continue,
                        None => panic!("frame not delivered"),
                    }
                }
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_provider::<RustCrypto>(c);
}

criterion_group!(aead, benches);
criterion_main!(aead);
