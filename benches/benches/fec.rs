//! Video forward error correction: one 60-fragment frame of 1400-byte fragments (84 000 bytes
//! of video) with 6 parity fragments, encoded, then decoded with 6 of its data fragments (10 %)
//! missing, through `rotorlink::channel::fec`. Throughput counts the frame's video bytes.
//! In the same run, the same frame through a peer code: `reed-solomon-erasure`, GF(2^8)
//! Reed-Solomon by matrix inversion (the construction of zfec, which wfb-ng uses).
//! Then the largest repair block of a storage transfer's tail (PROTOCOL.md 6.9, 12.4): 4096
//! full segments as 8192 shards of 686 bytes, with the 820 parity shards a 10 % loss asks
//! for, encoded, and decoded with 410 segments (820 shards, every tenth segment) missing:
//! the same code (`reed-solomon-simd`, systematic, the video FEC's) in the same shape, here
//! through the video codec's API. Throughput counts the block's segment bytes.
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
    repair_block(c);
}

/// The largest repair block: see the module docs.
fn repair_block(c: &mut Criterion) {
    const SHARDS: u16 = 8192;
    const SHARD: usize = 686;
    const PARITY: u16 = 820;
    let mut block = vec![0u8; usize::from(SHARDS) * SHARD];
    ChaCha20Rng::seed_from_u64(15).fill_bytes(&mut block);
    // Every tenth segment lost: both of its shards.
    let lost = |i: u16| (i / 2) % 10 == 3;
    let mut encoder = FecEncoder::default();
    let mut decoder = FecDecoder::default();
    let mut parity = Vec::new();
    let mut received = block.clone();
    let mut group = c.benchmark_group("repair_block");
    group.throughput(Throughput::Bytes(4096 * 1367));
    group.sample_size(20);
    group.bench_function("encode_4096seg_8192+820x686", |b| {
        b.iter(|| {
            parity.clear();
            encoder
                .encode(black_box(&block), SHARDS, PARITY, &mut parity)
                .unwrap();
        })
    });
    group.bench_function("decode_4096seg_410_lost", |b| {
        b.iter(|| {
            for i in (0..SHARDS).filter(|&i| lost(i)) {
                let start = usize::from(i) * SHARD;
                received[start..start + SHARD].fill(0);
            }
            let shards = (0..PARITY).zip(parity.chunks_exact(SHARD));
            decoder
                .recover(&mut received, SHARDS, PARITY, |i| !lost(i), shards)
                .unwrap();
            black_box(&received);
        })
    });
    group.finish();
    assert_eq!(received, block, "the lost segments came back byte-exact");
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
    if received.is_empty() {
        return; // filtered out: nothing ran
    }
    let recovered: Vec<u8> = received
        .iter()
        .take(k)
        .flat_map(|s| s.clone().unwrap())
        .collect();
    assert_eq!(recovered, frame, "the peer's recovery is byte-exact too");
}

criterion_group!(benches, bench);
criterion_main!(benches);
