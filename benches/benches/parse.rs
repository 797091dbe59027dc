//! Frame parsing: nanoseconds per frame on valid frames of every type and on garbage.
//! `cargo bench -p rotorlink-bench --bench parse`.

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rotorlink::wire::{Channel, Frame, FrameType, Header, HEADER_LEN};

fn frames() -> Vec<Vec<u8>> {
    let kinds = [
        (FrameType::Data, Some(Channel::Video), 1200),
        (FrameType::Data, Some(Channel::Control), 40),
        (FrameType::Ack, Some(Channel::Storage), 28),
        (FrameType::Keepalive, None, 16),
        (FrameType::HandshakeInit, None, 150),
    ];
    kinds
        .iter()
        .enumerate()
        .map(|(i, &(frame_type, channel, len))| {
            let header = Header {
                frame_type,
                key_phase: frame_type.is_encrypted() && i % 2 == 0,
                channel,
                receiver_index: 0x0102_0304,
                packet_number: 1000 + i as u32,
            };
            let mut f = vec![0xa5; HEADER_LEN + len];
            header.emit(&mut f).unwrap();
            f
        })
        .collect()
}

fn parse(bytes: &[u8]) -> bool {
    Frame::new_checked(bytes)
        .and_then(|f| Header::parse(&f))
        .is_ok()
}

fn benches(c: &mut Criterion) {
    let valid = frames();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let garbage: Vec<Vec<u8>> = (0..64)
        .map(|i| {
            let mut g = vec![0u8; 16 + i * 20];
            rng.fill_bytes(&mut g);
            g
        })
        .collect();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(valid.len() as u64));
    group.bench_function("valid", |b| {
        b.iter(|| {
            for f in &valid {
                assert!(parse(black_box(f)));
            }
        })
    });
    group.throughput(Throughput::Elements(garbage.len() as u64));
    group.bench_function("garbage", |b| {
        b.iter(|| {
            for g in &garbage {
                black_box(parse(black_box(g)));
            }
        })
    });
    group.finish();
}

criterion_group!(parsing, benches);
criterion_main!(parsing);
