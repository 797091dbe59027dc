//! Seal + open of one data frame through the whole link path (header, counter, replay
//! window, channel, event) against the raw AES-256-GCM of the same provider on a buffer of
//! the same size. The ratio is the framing overhead. `link` queues the message and hands it
//! over as an event (`send`, `handle_datagram`); `link-in-place` seals and opens it in the
//! datagram buffer (`send_in_place`, `handle_datagram_in_place`).
//! `cargo bench -p rotorlink-bench --bench aead`.

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rotorlink::crypto::{nonce, AeadKey, AeadProvider, Secret, TAG_LEN};
use rotorlink::{AwsLc, RustCrypto};
use rotorlink_bench::{links, round_trip, round_trip_in_place, SIZES};

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
        let (mut air, mut rc) = links::<P>();
        let payload = vec![0x5a; size];
        let mut wire = vec![0u8; rotorlink::wire::MAX_DATAGRAM_LEN];
        group.bench_with_input(BenchmarkId::new("link", size), &size, |b, _| {
            b.iter(|| round_trip(&mut air, &mut rc, &payload, &mut wire))
        });
        let (mut air, mut rc) = links::<P>();
        wire[rotorlink::PAYLOAD_OFFSET..][..size].copy_from_slice(&payload);
        group.bench_with_input(BenchmarkId::new("link-in-place", size), &size, |b, _| {
            b.iter(|| round_trip_in_place(&mut air, &mut rc, size, &mut wire))
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_provider::<RustCrypto>(c);
    bench_provider::<AwsLc>(c);
}

criterion_group!(aead, benches);
criterion_main!(aead);
