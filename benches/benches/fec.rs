//! Video forward error correction: one 60-fragment frame of 1400-byte fragments (84 000 bytes
//! of video) with 6 parity fragments, encoded, then decoded with 6 of its data fragments (10 %)
//! missing, through `rotorlink::channel::fec`. Throughput counts the frame's video bytes.
//! In the same run, the same frame through a peer code: `reed-solomon-erasure`, GF(2^8)
//! Reed-Solomon by matrix inversion (the construction of zfec, which wfb-ng uses).
//! `cargo bench -p rotorlink-bench --bench fec`.

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rotorlink::channel::fec::{FecDecoder, FecEncoder};

const COUNT: u16 = 60;
const PARITY: u16 = 6;
const FRAGMENT: usize = 1400;
/// The data fragments lost: every tenth.
const MISSING: [u16; 6] = [3, 13, 23, 33, 43, 53];

fn bench(c: &mut Criterion) {
    let mut frame = vec![0u8; usize::from(COUNT) * FRAGMENT];
    ChaCha20Rng::seed_from_u64(14).fill_bytes(&mut frame);
    let mut encoder = FecEncoder::default();
    let mut decoder = FecDecoder::default();
    let mut parity = Vec::new();
    let mut received = frame.clone();

    let mut group = c.benchmark_group("fec");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("encode_60+6x1400", |b| {
        b.iter(|| {
            parity.clear();
            encoder
                .encode(black_box(&frame), COUNT, PARITY, &mut parity)
                .unwrap();
        })
    });
    group.bench_function("encode_decode_60+6x1400_10pct_lost", |b| {
        b.iter(|| {
            parity.clear();
            encoder
                .encode(black_box(&frame), COUNT, PARITY, &mut parity)
                .unwrap();
            for &i in &MISSING {
                let start = usize::from(i) * FRAGMENT;
                received[start..start + FRAGMENT].fill(0);
            }
            let shards = (0..PARITY).zip(parity.chunks_exact(FRAGMENT));
            decoder
                .recover(
                    &mut received,
                    COUNT,
                    PARITY,
                    |i| !MISSING.contains(&i),
                    shards,
                )
                .unwrap();
            black_box(&received);
        })
    });
    group.finish();
    assert_eq!(received, frame, "the lost fragments came back byte-exact");
    peer(c, &frame);
}

/// The same frame, encoded and recovered by `reed-solomon-erasure` over GF(2^8).
fn peer(c: &mut Criterion, frame: &[u8]) {
    use reed_solomon_erasure::galois_8::ReedSolomon;
    let (k, p) = (usize::from(COUNT), usize::from(PARITY));
    let code = ReedSolomon::new(k, p).unwrap();
    let mut shards: Vec<Vec<u8>> = frame
        .chunks_exact(FRAGMENT)
        .map(<[u8]>::to_vec)
        .chain((0..p).map(|_| vec![0u8; FRAGMENT]))
        .collect();
    let mut group = c.benchmark_group("fec_peer_gf256");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("encode_60+6x1400", |b| {
        b.iter(|| code.encode(black_box(&mut shards)).unwrap())
    });
    let mut received: Vec<Option<Vec<u8>>> = Vec::new();
    group.bench_function("encode_decode_60+6x1400_10pct_lost", |b| {
        b.iter(|| {
            code.encode(black_box(&mut shards)).unwrap();
            received.clear();
            received.extend(shards.iter().enumerate().map(|(i, s)| {
                let lost = u16::try_from(i).is_ok_and(|i| MISSING.contains(&i));
                (!lost).then(|| s.clone())
            }));
            code.reconstruct_data(&mut received).unwrap();
            black_box(&received);
        })
    });
    group.finish();
    let recovered: Vec<u8> = received
        .iter()
        .take(k)
        .flat_map(|s| s.clone().unwrap())
        .collect();
    assert_eq!(recovered, frame, "the peer's recovery is byte-exact too");
}

criterion_group!(benches, bench);
criterion_main!(benches);
