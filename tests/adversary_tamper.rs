//! Forgery, bit flips, truncation and extension within a session: altered copies of genuine
//! frames, forged frames of every type and channel, and frames spliced across channels or
//! with their channel or key phase rewritten. Each is dropped under the reason the
//! adversary's `Model` predicts.
//!
//! The fixtures (the flight, the adversary's model of the receiver and its books, the tape of
//! frames on the air) and what every scenario checks are in `tests/common/adversary.rs`.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rand_core::RngCore;
use rotorlink::wire::{FrameType, Header, HEADER_LEN, TAG_LEN};
use rotorlink::{Channel, Config};
use rotorlink_sim::Direction;

use common::adversary::*;

/// An alteration of a datagram.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    /// Flip bit `i % 8` of byte `i / 8`; a negative `i` counts bits from the end.
    Flip(isize),
    /// Cut `n` bytes off the end.
    Cut(usize),
    /// Append `n` bytes.
    Extend(usize),
}

impl Mutation {
    /// Every header bit, bits of the ciphertext and of the tag, and cuts and extensions
    /// around the interesting lengths (inside the tag, the whole payload, the header).
    fn all() -> Vec<Mutation> {
        let mut all: Vec<Mutation> = (0..(HEADER_LEN * 8) as isize).map(Mutation::Flip).collect();
        all.extend([
            Mutation::Flip((HEADER_LEN * 8) as isize),
            Mutation::Flip((HEADER_LEN * 8 + 13) as isize),
            Mutation::Flip(-(TAG_LEN as isize) * 8 - 1),
            Mutation::Flip(-(TAG_LEN as isize) * 8),
            Mutation::Flip(-1),
            Mutation::Flip(-60),
            Mutation::Cut(1),
            Mutation::Cut(TAG_LEN),
            Mutation::Cut(TAG_LEN + 1),
            Mutation::Cut(3),
            Mutation::Cut(HEADER_LEN),
            Mutation::Cut(usize::MAX),
            Mutation::Extend(1),
            Mutation::Extend(TAG_LEN),
            Mutation::Extend(300),
        ]);
        all
    }

    fn apply(self, d: &[u8]) -> Option<Vec<u8>> {
        let mut out = d.to_vec();
        match self {
            Mutation::Flip(i) => {
                let bits = d.len() as isize * 8;
                let i = if i < 0 { bits + i } else { i };
                if !(0..bits).contains(&i) {
                    return None;
                }
                out[(i / 8) as usize] ^= 1 << (i % 8);
            }
            Mutation::Cut(n) => out.truncate(d.len().saturating_sub(n)),
            Mutation::Extend(n) => out.resize(d.len() + n, 0xa5),
        }
        Some(out)
    }
}

/// Before every genuine frame, two altered copies of it go on the air: every bit of the
/// header in turn (version, type, flags and key phase, channel, receiver index, packet
/// number), bits of the ciphertext and tag, truncations and extensions (there is no length
/// field: the payload is the rest of the datagram, and its tag then fails). Every copy is dropped, under the reason the model predicts
/// (malformed, handshake, unknown receiver, duplicate, too old, failed tag); the
/// originals all arrive.
#[test]
fn every_bit_flip_truncation_and_extension_is_refused_under_its_reason() {
    let config = Config {
        replay_window: 64,
        ..config()
    };
    let all = Mutation::all();
    let mut next = BTreeMap::<Direction, usize>::new();
    let used = Arc::new(Mutex::new(vec![0u32; all.len()]));
    let u = used.clone();
    let copies: Copies = Box::new(move |dir, d, _| {
        let mut out = Vec::new();
        for _ in 0..2 {
            let i = next.entry(dir).or_default();
            let m = *i % all.len();
            *i += 1;
            if let Some(c) = all[m].apply(d) {
                lock(&u)[m] += 1;
                out.push(c);
            }
        }
        out
    });
    let (adversary, ledger) = copier(&config, copies);
    let f = fly_attacked(config, 6, adversary);
    let l = lock(&ledger);
    l.check(&f);
    let both = |f: fn(&Drops) -> u64| f(&l.aircraft) + f(&l.remote);
    assert!(both(|d| d.malformed) > 300, "{l:?}");
    assert!(both(|d| d.unknown_receiver) > 50, "{l:?}");
    assert!(both(|d| d.auth) > 300, "{l:?}");
    // Counter bits flipped downwards land on accepted counters, or a window behind.
    assert!(both(|d| d.duplicate) >= 10, "{l:?}");
    assert!(both(|d| d.too_old) >= 3, "{l:?}");
    assert!(
        lock(&used).iter().all(|&n| n >= 2),
        "every mutation was tried"
    );
}

/// Forged frames with every type and channel, correct receiver indices and fresh
/// counters (the tag fails), counters far ahead, up to the farthest a packet number reaches
/// (2^31 - 1 past the newest: they must not move the window, the genuine frames after
/// them all arrive), wrong indices, and garbage.
#[test]
fn forged_frames_are_refused_and_never_move_the_window() {
    let config = config();
    let mut r = rng(7);
    let copies: Copies = Box::new(move |_, d, model| {
        let index = model.index.unwrap();
        let next = model.top().map_or(0, |t| t + 1);
        let mut out = Vec::new();
        let kinds: [(FrameType, Option<Channel>); 8] = [
            (FrameType::Data, Some(Channel::Session)),
            (FrameType::Data, Some(Channel::Control)),
            (FrameType::Data, Some(Channel::Telemetry)),
            (FrameType::Data, Some(Channel::Video)),
            (FrameType::Data, Some(Channel::Storage)),
            (FrameType::Ack, Some(Channel::Storage)),
            (FrameType::Keepalive, None),
            (FrameType::Close, None),
        ];
        let (frame_type, channel) = kinds[(r.next_u32() % 8) as usize];
        for counter in [next, next + 1, next + 1_000_000, next + (1 << 31) - 1] {
            let len = 16 + (r.next_u32() % 64) as usize;
            let mut forged = vec![0u8; HEADER_LEN + len];
            r.fill_bytes(&mut forged[HEADER_LEN..]);
            let header = Header {
                frame_type,
                key_phase: r.next_u32() % 2 == 0,
                channel,
                receiver_index: index,
                packet_number: counter as u32,
            };
            header.emit(&mut forged).unwrap();
            out.push(forged);
        }
        // The genuine frame with another index, and garbage.
        let mut other = d.to_vec();
        set_receiver_index(&mut other, index ^ 0x0101_0101);
        out.push(other);
        let mut garbage = vec![0u8; 1 + (r.next_u32() % 100) as usize];
        r.fill_bytes(&mut garbage);
        out.push(garbage);
        out
    });
    let (adversary, ledger) = copier(&config, copies);
    let f = fly_attacked(config, 8, adversary);
    let l = lock(&ledger);
    l.check(&f);
    for d in [&l.aircraft, &l.remote] {
        assert!(d.auth > 400 && d.unknown_receiver > 100);
        assert!(d.malformed > 50, "{d:?}");
    }
}

/// Splicing within a session: a genuine header with the payload of the latest frame of
/// another channel (and the reverse, an old header with the new payload), and the genuine
/// frame with its channel id rewritten to every other value, or its key phase flipped,
/// while key updates run. All dropped under the predicted reason; nothing is delivered on
/// the wrong channel.
#[test]
fn splicing_channels_and_rewriting_the_channel_or_key_phase_is_refused() {
    let config = Config {
        rekey_after_packets: 64,
        ..config()
    };
    let mut last = BTreeMap::<(Direction, u8, u8), Vec<u8>>::new();
    let copies: Copies = Box::new(move |dir, d, _| {
        let mut out = Vec::new();
        let (ty, ch) = (d[1], d[3]);
        for ((_, oty, och), e) in last.range((dir, 0, 0)..=(dir, 255, 255)) {
            if (*oty, *och) == (ty, ch) {
                continue;
            }
            let mut spliced = d[..HEADER_LEN].to_vec();
            spliced.extend_from_slice(&e[HEADER_LEN..]);
            out.push(spliced);
            let mut old_header = e[..HEADER_LEN].to_vec();
            old_header.extend_from_slice(&d[HEADER_LEN..]);
            out.push(old_header);
        }
        for other in [0u8, 1, 2, 3, 4, 5, 0x80, 0xff] {
            if other != ch {
                let mut moved = d.to_vec();
                moved[3] = other;
                out.push(moved);
            }
        }
        let mut phase = d.to_vec();
        phase[2] ^= 1;
        out.push(phase);
        last.insert((dir, ty, ch), d.to_vec());
        out
    });
    let (adversary, ledger) = copier(&config, copies);
    let f = fly_attacked(config, 9, adversary);
    let l = lock(&ledger);
    l.check(&f);
    let (a, r) = (f.pair.aircraft.stats(), f.pair.remote.stats());
    assert!(a.rekeys_sent >= 3 && r.rekeys_sent >= 3);
    assert!(l.aircraft.auth > 500 && l.remote.auth > 500, "{l:?}");
}
