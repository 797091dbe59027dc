//! Property tests over the public API: wire round trips, tamper evidence, the replay window,
//! and reliable delivery over a bad simulated radio.

use std::time::Duration;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::wire::body::{
    AckBody, CloseBody, FragmentHeader, SackRange, SegmentHeader, MAX_SACK_RANGES,
};
use rotorlink::wire::{Channel, Frame, FrameType, Header, HEADER_LEN};
use rotorlink::{Config, Error, Event, Link, ReplayError, Role, Secret, Timestamp};
use rotorlink_sim::{ChannelConfig, Pair};

const FRAME_TYPES: [FrameType; 8] = [
    FrameType::HandshakeInit,
    FrameType::HandshakeResponse,
    FrameType::HandshakeFinish,
    FrameType::CookieReply,
    FrameType::Data,
    FrameType::Ack,
    FrameType::Keepalive,
    FrameType::Close,
];

fn header_strategy() -> impl Strategy<Value = Header> {
    (
        0..FRAME_TYPES.len(),
        any::<bool>(),
        0..4usize,
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(t, phase, c, receiver_index, packet_number)| {
            let frame_type = FRAME_TYPES[t];
            Header {
                frame_type,
                key_phase: phase && frame_type.is_encrypted(),
                channel: match frame_type {
                    FrameType::Ack => Some(Channel::Storage),
                    t if t.has_channel() => Some(Channel::ALL[c]),
                    _ => None,
                },
                receiver_index,
                packet_number,
            }
        })
}

fn pair() -> (Link, Link) {
    let s = Secret::new([3; 32]);
    let t = Timestamp::ZERO;
    let c = Config::default();
    (
        Link::from_secret(
            Role::Aircraft,
            c.clone(),
            &s,
            &[4; 32],
            1,
            2,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &mut ChaCha20Rng::seed_from_u64(101),
            t,
        )
        .unwrap(),
        Link::from_secret(
            Role::Remote,
            c,
            &s,
            &[4; 32],
            2,
            1,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            &mut ChaCha20Rng::seed_from_u64(102),
            t,
        )
        .unwrap(),
    )
}

fn drain(link: &mut Link, now: Timestamp) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 1500];
    std::iter::from_fn(|| {
        link.poll_transmit(now, &mut buf)
            .map(|t| buf[..t.len].to_vec())
    })
    .collect()
}

fn messages(link: &mut Link) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(ev) = link.poll_event() {
        if let Event::Message { data, .. } = ev {
            out.push(data.to_vec());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_frame_type_round_trips(
        header in header_strategy(),
        payload_len in 16usize..2000,
        fill in any::<u8>(),
    ) {
        let mut buf = vec![fill; HEADER_LEN + payload_len];
        header.emit(&mut buf).unwrap();
        let frame = Frame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Header::parse(&frame).unwrap(), header);
        prop_assert_eq!(frame.payload().len(), payload_len);
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics_and_what_parses_re_emits(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        if let Ok(frame) = Frame::new_checked(&bytes[..]) {
            if let Ok(header) = Header::parse(&frame) {
                let mut out = bytes.clone();
                header.emit(&mut out).unwrap();
                prop_assert_eq!(&out, &bytes);
            }
        }
        let _ = FragmentHeader::parse(&bytes);
        let _ = SegmentHeader::parse(&bytes);
        let _ = AckBody::parse(&bytes);
        let _ = CloseBody::parse(&bytes);
    }

    #[test]
    fn bodies_round_trip(seq in any::<u32>(), flags in 0u8..4, next in any::<u32>(), window in any::<u16>(), ranges in proptest::collection::vec((any::<u32>(), 1u16..), 0..=MAX_SACK_RANGES), code in any::<u16>()) {
        let mut buf = [0u8; AckBody::MAX_LEN];
        let s = SegmentHeader { seq, flags };
        let n = s.emit(&mut buf).unwrap();
        prop_assert_eq!(SegmentHeader::parse(&buf[..n]).unwrap().0, s);
        let mut a = AckBody::new(next, window);
        for (start, len) in ranges {
            let added = a.push_range(SackRange { start, len });
            prop_assert!(added);
        }
        let n = a.emit(&mut buf).unwrap();
        prop_assert_eq!(AckBody::parse(&buf[..n]).unwrap(), a);
        let c = CloseBody { code };
        let n = c.emit(&mut buf).unwrap();
        prop_assert_eq!(CloseBody::parse(&buf[..n]).unwrap(), c);
    }

    /// Any single bit flip anywhere in a sealed frame is rejected, delivers nothing, and leaves
    /// the link able to accept the genuine frame.
    #[test]
    fn any_single_bit_flip_is_rejected(
        channel in prop_oneof![Just(Channel::Telemetry), Just(Channel::Video), Just(Channel::Storage)],
        len in 1usize..1200,
        bit in any::<prop::sample::Index>(),
    ) {
        let (mut air, mut rc) = pair();
        let t = Timestamp::ZERO;
        air.send(channel, &vec![0x5a; len]).unwrap();
        let frame = drain(&mut air, t).remove(0);
        let bit = bit.index(frame.len() * 8);
        let mut flipped = frame.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(rc.handle_datagram(t, std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), &flipped).is_err());
        prop_assert!(messages(&mut rc).is_empty());
        prop_assert_eq!(rc.stats().dropped_total(), 1);
        prop_assert!(rc.handle_datagram(t, std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), &frame).is_ok());
    }

    /// Frames delivered in any order inside the window, with duplicates, arrive exactly once;
    /// replays after that are never delivered.
    #[test]
    fn any_order_inside_the_window_delivers_each_once(
        order in Just((0u32..300).collect::<Vec<_>>()).prop_shuffle(),
        dups in proptest::collection::vec(0usize..300, 0..50),
    ) {
        let (mut air, mut rc) = pair();
        let t = Timestamp::ZERO;
        let mut frames = Vec::new();
        for i in 0u32..300 {
            air.send(Channel::Telemetry, &i.to_be_bytes()).unwrap();
            frames.extend(drain(&mut air, t));
        }
        let mut schedule: Vec<usize> = order.iter().map(|&i| i as usize).collect();
        schedule.extend(&dups);
        let mut got = Vec::new();
        for i in schedule {
            let _ = rc.handle_datagram(t, std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), &frames[i]);
            got.extend(messages(&mut rc));
        }
        got.sort();
        let expected: Vec<Vec<u8>> = (0u32..300).map(|i| i.to_be_bytes().to_vec()).collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(rc.stats().dropped_duplicate, dups.len() as u64);
        for f in &frames {
            prop_assert_eq!(rc.handle_datagram(t, std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), f), Err(Error::Replayed(ReplayError::Duplicate)));
        }
        prop_assert!(messages(&mut rc).is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random loss, jitter (reordering) and duplication on the storage channel still deliver
    /// every byte, in order, exactly once.
    #[test]
    fn storage_survives_loss_and_reorder(
        seed in any::<u64>(),
        loss in 0.0f64..0.3,
        sizes in proptest::collection::vec(1usize..20_000, 1..12),
    ) {
        let path = ChannelConfig {
            loss,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(4),
            duplicate: 0.02,
            corrupt: 0.0,
            ..ChannelConfig::default()
        };
        let mut pair: Pair = Pair::new(Config::default(), path.clone(), path, seed).unwrap();
        let sent: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|b| (b * 7 + i) as u8).collect())
            .collect();
        for m in &sent {
            pair.aircraft.send(Channel::Storage, m).unwrap();
        }
        for _ in 0..600 {
            pair.run_for(Duration::from_millis(100));
            if pair.aircraft.storage_unacked() == 0 {
                break;
            }
        }
        let got = pair.messages(Role::Remote, Channel::Storage);
        prop_assert_eq!(got.len(), sent.len());
        for (g, s) in got.iter().zip(&sent) {
            prop_assert_eq!(*g, &s[..]);
        }
    }
}

#[test]
fn frames_too_short_for_a_header_or_tag_are_typed_errors() {
    let (mut air, _) = pair();
    for len in 0..HEADER_LEN + 16 {
        let bytes = vec![0u8; len];
        assert!(matches!(
            air.handle_datagram(
                Timestamp::ZERO,
                std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                &bytes
            ),
            Err(Error::Malformed(_))
        ));
    }
    assert_eq!(air.stats().dropped_malformed, (HEADER_LEN + 16) as u64);
}
