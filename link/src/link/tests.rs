use super::*;
use crate::event::KeyDirection;
use crate::session::SendKeys;
use crate::wire::body::{SegmentHeader, SEGMENT_FIRST};
use crate::wire::{DecodeError, HEADER_LEN, TAG_LEN};
use crate::RustCrypto;
use core::time::Duration;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
extern crate std;
use std::vec;
use std::vec::Vec;

const AIRCRAFT: SocketAddr = SocketAddr::V4(core::net::SocketAddrV4::new(
    core::net::Ipv4Addr::new(10, 0, 0, 1),
    47474,
));
const REMOTE: SocketAddr = SocketAddr::V4(core::net::SocketAddrV4::new(
    core::net::Ipv4Addr::new(10, 0, 0, 2),
    47474,
));

/// The address datagrams to `to` come from: the other end's.
fn from(to: &Link) -> SocketAddr {
    match to.role() {
        Role::Aircraft => REMOTE,
        Role::Remote => AIRCRAFT,
    }
}

fn pair_with(config: Config) -> (Link, Link) {
    let secret = Secret::new([5; 32]);
    let hash = [6; 32];
    let t = Timestamp::ZERO;
    (
        Link::from_secret(
            Role::Aircraft,
            config.clone(),
            &secret,
            &hash,
            10,
            20,
            REMOTE,
            &mut ChaCha20Rng::seed_from_u64(101),
            t,
        )
        .unwrap(),
        Link::from_secret(
            Role::Remote,
            config,
            &secret,
            &hash,
            20,
            10,
            AIRCRAFT,
            &mut ChaCha20Rng::seed_from_u64(102),
            t,
        )
        .unwrap(),
    )
}

fn pair() -> (Link, Link) {
    pair_with(Config::default())
}

/// Every datagram `from` has to send now.
fn drain(from: &mut Link, now: Timestamp) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(t) = from.poll_transmit(now, &mut buf) {
        out.push(buf[..t.len].to_vec());
    }
    out
}

fn deliver_all(to: &mut Link, now: Timestamp, frames: &[Vec<u8>]) {
    for f in frames {
        to.handle_datagram(now, from(to), f).unwrap();
    }
}

fn messages(link: &mut Link) -> Vec<(Channel, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(ev) = link.poll_event() {
        if let Event::Message { channel, data } = ev {
            out.push((channel, data.to_vec()));
        }
    }
    out
}

#[test]
fn each_channel_carries_messages_in_its_direction() {
    let (mut air, mut rc) = pair();
    let t = Timestamp::ZERO;
    rc.send(Channel::Control, b"stick").unwrap();
    rc.send(Channel::Storage, b"GET log").unwrap();
    air.send(Channel::Telemetry, b"alt 120").unwrap();
    air.send(Channel::Video, &[9u8; 5000]).unwrap();
    let up = drain(&mut rc, t);
    deliver_all(&mut air, t, &up);
    let down = drain(&mut air, t);
    deliver_all(&mut rc, t, &down);
    assert_eq!(
        messages(&mut air),
        [
            (Channel::Control, b"stick".to_vec()),
            (Channel::Storage, b"GET log".to_vec())
        ]
    );
    assert_eq!(
        messages(&mut rc),
        [
            (Channel::Telemetry, b"alt 120".to_vec()),
            (Channel::Video, vec![9u8; 5000])
        ]
    );
    // 4 data fragments, and parity for the loss assumed before any feedback.
    let parity = air.stats().video_parity_sent;
    assert!(parity > 0);
    assert_eq!(air.stats().channel(Channel::Video).frames_sent, 4 + parity);

    assert_eq!(
        air.send(Channel::Control, b"x"),
        Err(SendError::NotAllowed(Channel::Control))
    );
    assert_eq!(
        rc.send(Channel::Video, b"x"),
        Err(SendError::NotAllowed(Channel::Video))
    );
    assert_eq!(
        rc.send(Channel::Control, &[0; 129]),
        Err(SendError::MessageSize { len: 129, max: 128 })
    );
    assert!(matches!(
        rc.send(Channel::Storage, b""),
        Err(SendError::MessageSize { len: 0, .. })
    ));
}

#[test]
fn control_is_latest_wins_and_goes_before_everything() {
    let (mut air, mut rc) = pair();
    let t = Timestamp::ZERO;
    rc.send(Channel::Storage, b"req").unwrap();
    rc.send(Channel::Control, b"old").unwrap();
    rc.send(Channel::Control, b"new").unwrap();
    let frames = drain(&mut rc, t);
    assert_eq!(frames.len(), 2);
    // The control frame went first although storage was queued first.
    deliver_all(&mut air, t, &frames[..1]);
    assert_eq!(messages(&mut air), [(Channel::Control, b"new".to_vec())]);

    // On receive, a control frame older than one delivered is dropped.
    rc.send(Channel::Control, b"a").unwrap();
    let a = drain(&mut rc, t);
    rc.send(Channel::Control, b"b").unwrap();
    let b = drain(&mut rc, t);
    deliver_all(&mut air, t, &b);
    deliver_all(&mut air, t, &a);
    assert_eq!(messages(&mut air), [(Channel::Control, b"b".to_vec())]);
    assert_eq!(air.stats().dropped_stale_control, 1);

    // Video queued before control still goes after it.
    air.send(Channel::Video, &[1; 4000]).unwrap();
    air.send(Channel::Telemetry, b"t").unwrap();
    let mut buf = [0u8; 1500];
    let first = air.poll_transmit(t, &mut buf).unwrap();
    assert_eq!(first.channel, Some(Channel::Telemetry));
}

#[test]
fn a_peer_sending_on_a_channel_it_does_not_own_is_refused() {
    // A remote that believes it is an aircraft sends telemetry: the real aircraft refuses.
    let secret = Secret::new([5; 32]);
    let t = Timestamp::ZERO;
    let cfg = Config::default();
    let mut air = Link::<RustCrypto>::from_secret(
        Role::Aircraft,
        cfg.clone(),
        &secret,
        &[6; 32],
        10,
        20,
        REMOTE,
        &mut ChaCha20Rng::seed_from_u64(103),
        t,
    )
    .unwrap();
    // Same keys as the remote, but claiming the aircraft role for sending.
    let mut fake = Link::<RustCrypto>::from_secret(
        Role::Aircraft,
        cfg,
        &secret,
        &[6; 32],
        20,
        10,
        REMOTE,
        &mut ChaCha20Rng::seed_from_u64(104),
        t,
    )
    .unwrap();
    fake.send(Channel::Telemetry, b"t").unwrap();
    // fake sends with aircraft keys, so the aircraft cannot even open it: forged.
    let frames = drain(&mut fake, t);
    assert_eq!(
        air.handle_datagram(t, from(&air), &frames[0]),
        Err(Error::DecryptFailed)
    );
    assert_eq!(air.stats().dropped_auth, 1);
}

#[test]
fn video_with_a_lost_fragment_is_reported_lost_and_never_delivered() {
    // Without forward error correction (tests of it: `channel::video`, tests/video_fec.rs).
    let (mut air, mut rc) = pair_with(Config {
        max_video_parity: 0,
        ..Config::default()
    });
    let t = Timestamp::ZERO;
    air.send(Channel::Video, &[3u8; 4000]).unwrap();
    air.send(Channel::Video, &[4u8; 4000]).unwrap();
    let frames = drain(&mut air, t);
    assert_eq!(frames.len(), 6);
    for (i, f) in frames.iter().enumerate() {
        if i != 1 {
            rc.handle_datagram(t, from(&rc), f).unwrap();
        }
    }
    assert_eq!(messages(&mut rc), [(Channel::Video, vec![4u8; 4000])]);
    let deadline = t + Config::default().video_reassembly_timeout;
    assert!(rc.poll_timeout().unwrap() <= deadline);
    rc.handle_timeout(deadline);
    assert_eq!(rc.poll_event(), Some(Event::VideoLost { message_id: 0 }));
    assert_eq!(rc.stats().channel(Channel::Video).messages_lost, 1);
    assert_eq!(rc.reassembly_bytes(), 0);
    // The missing fragment arriving late changes nothing.
    rc.handle_datagram(t, from(&rc), &frames[1]).unwrap();
    assert_eq!(rc.poll_event(), None);
}

#[test]
fn storage_is_reliable_in_order_and_exactly_once_over_loss() {
    let config = Config::default();
    let (mut air, mut rc) = pair_with(config);
    let log: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut expected = Vec::new();
    for chunk in log.chunks(30_000) {
        air.send(Channel::Storage, chunk).unwrap();
        expected.push(chunk.to_vec());
    }
    let mut now = Timestamp::ZERO;
    let mut got = Vec::new();
    let mut n = 0u32;
    for _ in 0..2000 {
        // Drop every 7th frame each way, deliver the rest.
        for f in drain(&mut air, now) {
            n += 1;
            if n % 7 != 0 {
                rc.handle_datagram(now, from(&rc), &f).unwrap();
            }
        }
        for f in drain(&mut rc, now) {
            n += 1;
            if n % 7 != 0 {
                air.handle_datagram(now, from(&air), &f).unwrap();
            }
        }
        got.extend(messages(&mut rc).into_iter().map(|(_, m)| m));
        if air.storage_unacked() == 0 {
            break;
        }
        now = now + Duration::from_millis(10);
        air.handle_timeout(now);
        rc.handle_timeout(now);
    }
    assert_eq!(got, expected);
    assert!(air.stats().storage_retransmits > 0);
    assert_eq!(air.storage_unacked(), 0);
}

#[test]
fn forged_truncated_and_replayed_frames_are_dropped_and_counted() {
    let (mut air, mut rc) = pair();
    let t = Timestamp::ZERO;
    rc.send(Channel::Control, b"go").unwrap();
    let f = drain(&mut rc, t).remove(0);
    let mut flipped = f.clone();
    flipped[HEADER_LEN + 1] ^= 0x40;
    assert_eq!(
        air.handle_datagram(t, from(&air), &flipped),
        Err(Error::DecryptFailed)
    );
    // Shorter than a header: malformed. A byte short of the whole frame: the payload is
    // the rest of the datagram, so its tag is not where it was sealed and fails.
    assert_eq!(
        air.handle_datagram(t, from(&air), &f[..HEADER_LEN - 1]),
        Err(Error::Malformed(DecodeError::Truncated))
    );
    assert_eq!(
        air.handle_datagram(t, from(&air), &f[..f.len() - 1]),
        Err(Error::DecryptFailed)
    );
    let mut wrong_index = f.clone();
    wrong_index[7] ^= 1;
    assert_eq!(
        air.handle_datagram(t, from(&air), &wrong_index),
        Err(Error::UnknownReceiver)
    );
    air.handle_datagram(t, from(&air), &f).unwrap();
    assert_eq!(
        air.handle_datagram(t, from(&air), &f),
        Err(Error::Replayed(crate::ReplayError::Duplicate))
    );
    let s = air.stats();
    assert_eq!(
        (
            s.dropped_auth,
            s.dropped_malformed,
            s.dropped_unknown_receiver,
            s.dropped_duplicate
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(messages(&mut air), [(Channel::Control, b"go".to_vec())]);
}

#[test]
fn keepalives_link_loss_and_recovery() {
    let (mut air, mut rc) = pair();
    let cfg = Config::default();
    let t0 = Timestamp::ZERO;
    assert_eq!(air.poll_timeout(), Some(t0 + cfg.keepalive_interval));
    let t1 = t0 + cfg.keepalive_interval;
    air.handle_timeout(t1);
    let ka = drain(&mut air, t1);
    assert_eq!(ka.len(), 1);
    assert_eq!(air.stats().keepalives_sent, 1);
    rc.handle_datagram(t1, from(&rc), &ka[0]).unwrap();
    // Nothing more for the link-loss timeout: the remote reports the link lost, once.
    let lost_at = t1 + cfg.link_loss_timeout;
    rc.handle_timeout(lost_at - Duration::from_micros(1));
    assert_eq!(rc.poll_event(), None);
    rc.handle_timeout(lost_at);
    assert_eq!(rc.poll_event(), Some(Event::LinkLost));
    rc.handle_timeout(lost_at + Duration::from_secs(1));
    assert_eq!(rc.poll_event(), None);
    // Traffic again: restored.
    let t2 = lost_at + Duration::from_secs(2);
    let ka = drain(&mut air, t2);
    rc.handle_datagram(t2, from(&rc), &ka[0]).unwrap();
    assert_eq!(rc.poll_event(), Some(Event::LinkRestored));
}

#[test]
fn close_is_authenticated_and_final() {
    let (mut air, mut rc) = pair();
    let t = Timestamp::ZERO;
    // The aircraft's first event is its encoder's first budget.
    assert!(matches!(air.poll_event(), Some(Event::VideoBudget { .. })));
    rc.close(CloseCode(7));
    // Three copies of the close frame (a lost one would leave the peer to its link-loss
    // timeout), each with its own counter.
    let frames = drain(&mut rc, t);
    assert_eq!(frames.len(), 3);
    assert_eq!(
        rc.poll_event(),
        Some(Event::Closed {
            code: CloseCode(7),
            by_peer: false
        })
    );
    assert!(rc.is_closed());
    assert_eq!(rc.send(Channel::Control, b"x"), Err(SendError::Closed));
    // A forged close does nothing; the real one closes the aircraft's side.
    let mut forged = frames[0].clone();
    forged[HEADER_LEN] ^= 1;
    assert_eq!(
        air.handle_datagram(t, from(&air), &forged),
        Err(Error::DecryptFailed)
    );
    assert!(!air.is_closed());
    air.handle_datagram(t, from(&air), &frames[0]).unwrap();
    assert_eq!(
        air.poll_event(),
        Some(Event::Closed {
            code: CloseCode(7),
            by_peer: true
        })
    );
    assert!(air.is_closed());
    // The other copies reach a closed link: dropped and counted.
    for copy in &frames[1..] {
        assert_eq!(air.handle_datagram(t, from(&air), copy), Err(Error::Closed));
    }
    assert_eq!(air.stats().dropped_closed, 2);
    assert_eq!(air.poll_event(), None);
    assert_eq!(air.poll_timeout(), None);
}

#[test]
fn rekeys_happen_without_losing_a_message() {
    let config = Config {
        rekey_after_packets: 50,
        ..Config::default()
    };
    let (mut air, mut rc) = pair_with(config);
    let t = Timestamp::ZERO;
    let mut received = 0;
    for i in 0..500u32 {
        air.send(Channel::Telemetry, &i.to_be_bytes()).unwrap();
        let mut frames = drain(&mut air, t);
        // Deliver in reverse order to reorder across phase boundaries.
        frames.reverse();
        deliver_all(&mut rc, t, &frames);
        let mut back = drain(&mut rc, t);
        back.reverse();
        deliver_all(&mut air, t, &back);
        received += messages(&mut rc).len();
        messages(&mut air);
    }
    assert_eq!(received, 500);
    // A key update every 50 frames or so, each one an X25519 exchange both ways.
    assert!(air.stats().rekeys_sent >= 8, "{:?}", air.stats());
    assert!(rc.stats().rekeys_received + 1 >= air.stats().rekeys_sent);
    assert_eq!(air.stats().dropped_total() + rc.stats().dropped_total(), 0);
}

#[test]
fn counter_exhaustion_ends_the_session_instead_of_reusing_a_nonce() {
    let config = Config {
        counter_limit: 5,
        ..Config::default()
    };
    let (mut air, _rc) = pair_with(config);
    let t = Timestamp::ZERO;
    assert!(matches!(air.poll_event(), Some(Event::VideoBudget { .. })));
    for _ in 0..10 {
        let _ = air.send(Channel::Telemetry, b"x");
    }
    assert_eq!(drain(&mut air, t).len(), 5);
    assert!(!air.is_connected());
    assert!(
        !air.is_closed(),
        "a worn-out session does not close the link"
    );
    assert_eq!(
        air.poll_event(),
        Some(Event::SessionEnded {
            code: CloseCode::COUNTER_EXHAUSTED
        })
    );
    assert!(drain(&mut air, t).is_empty());
}

#[test]
fn small_transmit_buffers_and_full_queues_are_reported() {
    let (mut air, _rc) = pair();
    air.send(Channel::Telemetry, b"x").unwrap();
    assert_eq!(air.poll_transmit(Timestamp::ZERO, &mut [0u8; 100]), None);
    assert_eq!(air.stats().transmit_buffer_too_small, 1);
    let limit = air.config().send_queue_len;
    for _ in 1..limit {
        air.send(Channel::Telemetry, b"x").unwrap();
    }
    assert_eq!(
        air.send(Channel::Telemetry, b"x"),
        Err(SendError::QueueFull(Channel::Telemetry))
    );
}

/// Seal a storage frame as the remote would, with an arbitrary segment body.
fn forge_storage_as_remote(body: &[u8], counter_base: &mut SendKeys<RustCrypto>) -> Vec<u8> {
    let mut frame = vec![0u8; HEADER_LEN + body.len() + TAG_LEN];
    frame[HEADER_LEN..HEADER_LEN + body.len()].copy_from_slice(body);
    let header = Header {
        frame_type: FrameType::Data,
        key_phase: false,
        channel: Some(Channel::Storage),
        receiver_index: 10,
        packet_number: 0,
    };
    counter_base
        .seal(&Config::default(), header, &mut frame)
        .unwrap();
    frame
}

#[test]
fn storage_protocol_violations_are_counted_not_delivered() {
    // An authenticated but buggy remote: a continuation segment without a start, then a
    // segment far beyond the receive window.
    let (mut air, _rc) = pair();
    let secrets = crate::crypto::traffic_secrets(&Secret::new([5; 32]), &[6; 32]);
    let mut keys = SendKeys::<RustCrypto>::new(secrets.remote_to_aircraft, Timestamp::ZERO);
    let t = Timestamp::ZERO;
    let mut body = vec![0u8; 5];
    SegmentHeader {
        seq: 0,
        flags: crate::wire::body::SEGMENT_LAST,
    }
    .emit(&mut body)
    .unwrap();
    body.extend_from_slice(b"orphan");
    let f = forge_storage_as_remote(&body, &mut keys);
    air.handle_datagram(t, from(&air), &f).unwrap();
    assert!(messages(&mut air).is_empty());
    assert_eq!(air.stats().dropped_protocol, 1);

    SegmentHeader {
        seq: Config::default().storage_window + 1,
        flags: SEGMENT_FIRST,
    }
    .emit(&mut body)
    .unwrap();
    let f = forge_storage_as_remote(&body, &mut keys);
    assert_eq!(
        air.handle_datagram(t, from(&air), &f),
        Err(Error::UnexpectedFrame)
    );
    assert_eq!(air.stats().dropped_protocol, 2);

    // A good message after that still arrives.
    SegmentHeader {
        seq: 1,
        flags: SEGMENT_FIRST | crate::wire::body::SEGMENT_LAST,
    }
    .emit(&mut body)
    .unwrap();
    let f = forge_storage_as_remote(&body, &mut keys);
    air.handle_datagram(t, from(&air), &f).unwrap();
    assert_eq!(messages(&mut air), [(Channel::Storage, b"orphan".to_vec())]);
}

/// Keepalives effectively off, no application traffic: the send keys still rotate by age,
/// at exactly the deadline `poll_timeout` announced, and nothing is sent before it.
#[test]
fn a_silent_link_rekeys_by_age_exactly_when_poll_timeout_said() {
    let day = Duration::from_secs(86_400);
    let config = Config {
        keepalive_interval: day,
        link_loss_timeout: 2 * day,
        rekey_after_time: Duration::from_secs(30),
        reject_after_time: Duration::from_secs(90),
        ..Config::default()
    };
    let (mut air, mut rc) = pair_with(config);
    let t0 = Timestamp::ZERO;
    let due = t0 + Duration::from_secs(30);
    assert_eq!(air.poll_timeout(), Some(due));
    assert_eq!(rc.poll_timeout(), Some(due));

    // A microsecond early: nothing to do, nothing sent.
    let early = due - Duration::from_micros(1);
    air.handle_timeout(early);
    rc.handle_timeout(early);
    assert!(drain(&mut air, early).is_empty() && drain(&mut rc, early).is_empty());

    // At the deadline both ends ask for a key update (the aircraft's request wins the
    // crossing); three exchanges finish it.
    air.handle_timeout(due);
    rc.handle_timeout(due);
    for _ in 0..3 {
        let from_air = drain(&mut air, due);
        deliver_all(&mut rc, due, &from_air);
        let from_rc = drain(&mut rc, due);
        deliver_all(&mut air, due, &from_rc);
    }
    assert!(air.stats().rekeys_sent >= 1 && rc.stats().rekeys_sent >= 1);
    // The first frames under the new keys rotate the receivers too.
    rc.send(Channel::Control, b"sticks").unwrap();
    air.send(Channel::Telemetry, b"alt").unwrap();
    let from_rc = drain(&mut rc, due);
    deliver_all(&mut air, due, &from_rc);
    let from_air = drain(&mut air, due);
    deliver_all(&mut rc, due, &from_air);
    assert!(air.stats().rekeys_received >= 1 && rc.stats().rekeys_received >= 1);
    let rotated = |link: &mut Link| {
        core::iter::from_fn(|| link.poll_event()).any(|e| {
            matches!(
                e,
                Event::Rekeyed {
                    direction: KeyDirection::Send,
                    ..
                }
            )
        })
    };
    assert!(rotated(&mut air) && rotated(&mut rc));
    // Feedback on what arrived goes back (it asks for none in return).
    let later = due + Duration::from_millis(10);
    for _ in 0..2 {
        air.handle_timeout(later);
        rc.handle_timeout(later);
        let from_air = drain(&mut air, later);
        deliver_all(&mut rc, later, &from_air);
        let from_rc = drain(&mut rc, later);
        deliver_all(&mut air, later, &from_rc);
    }
    // The new keys are young: the next rotation is another 30 s away, and the session never
    // reached its hard limit.
    assert_eq!(air.poll_timeout(), Some(due + Duration::from_secs(30)));
    assert!(air.is_connected() && rc.is_connected());
}

/// Flow control: a `send` refused as full owes exactly one `Writable` once the queue has
/// room, so an application that sends until full and then waits for it never drops data
/// and never polls.
#[test]
fn a_full_queue_reports_writable_once_it_drains() {
    let (mut air, mut rc) = pair();
    let t = Timestamp::ZERO;
    let limit = air.config().send_queue_len;
    let mut sent = 0;
    while air.send(Channel::Storage, &[7; 3000]).is_ok() {
        sent += 1;
    }
    assert_eq!(sent, limit);
    assert_eq!(
        air.send(Channel::Storage, &[7; 3000]),
        Err(SendError::QueueFull(Channel::Storage))
    );
    let writable = |link: &mut Link| {
        core::iter::from_fn(|| link.poll_event())
            .filter(|e| {
                *e == Event::Writable {
                    channel: Channel::Storage,
                }
            })
            .count()
    };
    assert_eq!(writable(&mut air), 0, "nothing drained yet");
    // The window takes some segments at once: room, reported once.
    let frames = drain(&mut air, t);
    assert_eq!(writable(&mut air), 1);
    // Room is not reported again without another refusal.
    deliver_all(&mut rc, t, &frames);
    let acks = drain(&mut rc, t);
    deliver_all(&mut air, t, &acks);
    drain(&mut air, t);
    assert_eq!(writable(&mut air), 0);
    // Every message sent before and after arrives.
    air.send(Channel::Storage, &[8; 3000]).unwrap();
    let mut got = messages(&mut rc).len();
    let mut now = t;
    for _ in 0..2000 {
        now = now + Duration::from_millis(10);
        air.handle_timeout(now);
        rc.handle_timeout(now);
        let frames = drain(&mut air, now);
        deliver_all(&mut rc, now, &frames);
        let acks = drain(&mut rc, now);
        deliver_all(&mut air, now, &acks);
        got += messages(&mut rc).len();
        if air.storage_unacked() == 0 {
            break;
        }
    }
    assert_eq!(got, limit + 1, "after {:?}", now.saturating_since(t));
}

/// `buf` with `message` written where [`Link::send_in_place`] wants it.
fn in_place_buffer(message: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    buf[PAYLOAD_OFFSET..][..message.len()].copy_from_slice(message);
    buf
}

#[test]
fn messages_sealed_and_opened_in_place_cross_without_a_copy() {
    let (mut air, mut rc) = pair();
    let t = Timestamp::ZERO;
    // Telemetry, aircraft to remote: sealed in the application's buffer...
    let mut buf = in_place_buffer(b"alt 120");
    let tx = air
        .send_in_place(t, Channel::Telemetry, &mut buf, 7)
        .unwrap()
        .expect("nothing goes before it");
    assert_eq!(
        (tx.len, tx.destination, tx.channel),
        (HEADER_LEN + 7 + TAG_LEN, REMOTE, Some(Channel::Telemetry))
    );
    assert_ne!(
        &buf[HEADER_LEN..][..7],
        b"alt 120",
        "encrypted where it lay"
    );
    assert!(drain(&mut air, t).is_empty(), "nothing was queued");
    // ... and opened in the receiver's: the message comes back where it lies, not as an event.
    let got = rc
        .handle_datagram_in_place(t, from(&rc), &mut buf[..tx.len])
        .unwrap()
        .expect("a whole message");
    assert_eq!(got.channel, Channel::Telemetry);
    assert_eq!(&buf[got.range], b"alt 120");
    assert!(messages(&mut rc).is_empty());
    assert_eq!(rc.stats().channel(Channel::Telemetry).messages_delivered, 1);
    assert_eq!(rc.stats().channel(Channel::Telemetry).bytes_delivered, 7);

    // Control the other way; an in-place frame also opens through the copying path, and a
    // frame from `poll_transmit` through the in-place one.
    let mut buf = in_place_buffer(b"stick");
    let tx = rc
        .send_in_place(t, Channel::Control, &mut buf, 5)
        .unwrap()
        .unwrap();
    air.handle_datagram(t, from(&air), &buf[..tx.len]).unwrap();
    assert_eq!(messages(&mut air), [(Channel::Control, b"stick".to_vec())]);
    air.send(Channel::Telemetry, b"hdg 270").unwrap();
    let mut frame = drain(&mut air, t).remove(0);
    let got = rc
        .handle_datagram_in_place(t, from(&rc), &mut frame)
        .unwrap()
        .unwrap();
    assert_eq!(&frame[got.range], b"hdg 270");
}

#[test]
fn in_place_sends_keep_the_send_order() {
    let (mut air, mut rc) = pair();
    let t = Timestamp::ZERO;
    // Telemetry already queued goes first: the new one is queued behind it (one copy).
    air.send(Channel::Telemetry, b"first").unwrap();
    let mut buf = in_place_buffer(b"second");
    assert_eq!(
        air.send_in_place(t, Channel::Telemetry, &mut buf, 6),
        Ok(None)
    );
    // Video is paced: never sealed in place, queued as by `send`.
    let mut video = in_place_buffer(&[7; 900]);
    assert_eq!(
        air.send_in_place(t, Channel::Video, &mut video, 900),
        Ok(None)
    );
    let mut delivered = Vec::new();
    for mut frame in drain(&mut air, t) {
        if let Some(got) = rc
            .handle_datagram_in_place(t, from(&rc), &mut frame)
            .unwrap()
        {
            delivered.push(frame[got.range].to_vec());
        }
    }
    assert_eq!(delivered, [b"first".to_vec(), b"second".to_vec()]);
    // Video is reassembled by the link and delivered as an event.
    assert_eq!(messages(&mut rc), [(Channel::Video, vec![7; 900])]);

    // Control goes before everything, and supersedes an unsent control message.
    rc.send(Channel::Storage, b"GET log").unwrap();
    rc.send(Channel::Control, b"old").unwrap();
    let mut buf = in_place_buffer(b"new");
    let tx = rc
        .send_in_place(t, Channel::Control, &mut buf, 3)
        .unwrap()
        .expect("control is never behind anything");
    air.handle_datagram(t, from(&air), &buf[..tx.len]).unwrap();
    let up = drain(&mut rc, t);
    deliver_all(&mut air, t, &up);
    assert_eq!(
        messages(&mut air),
        [
            (Channel::Control, b"new".to_vec()),
            (Channel::Storage, b"GET log".to_vec())
        ]
    );
}

#[test]
fn in_place_errors_are_typed_and_change_nothing() {
    let (mut air, mut rc) = pair();
    let t = Timestamp::ZERO;
    let mut buf = in_place_buffer(b"alt");
    assert_eq!(
        rc.send_in_place(t, Channel::Telemetry, &mut buf, 3),
        Err(SendError::NotAllowed(Channel::Telemetry))
    );
    assert!(matches!(
        air.send_in_place(t, Channel::Telemetry, &mut buf, 0),
        Err(SendError::MessageSize { len: 0, .. })
    ));
    // The buffer must hold the header, the message and the tag.
    let mut short = vec![0u8; HEADER_LEN + 3 + TAG_LEN - 1];
    assert_eq!(
        air.send_in_place(t, Channel::Telemetry, &mut short, 3),
        Err(SendError::MessageSize { len: 3, max: 2 })
    );
    let tx = air
        .send_in_place(t, Channel::Telemetry, &mut buf, 3)
        .unwrap()
        .unwrap();
    let genuine = buf[..tx.len].to_vec();
    // Forged, truncated: dropped and counted; the genuine frame still opens afterwards.
    let mut forged = genuine.clone();
    forged[HEADER_LEN] ^= 1;
    assert_eq!(
        rc.handle_datagram_in_place(t, from(&rc), &mut forged),
        Err(Error::DecryptFailed)
    );
    let mut truncated = genuine[..HEADER_LEN + TAG_LEN - 1].to_vec();
    assert!(rc
        .handle_datagram_in_place(t, from(&rc), &mut truncated)
        .is_err());
    assert_eq!(
        (rc.stats().dropped_auth, rc.stats().dropped_malformed),
        (1, 1)
    );
    let mut frame = genuine.clone();
    let got = rc
        .handle_datagram_in_place(t, from(&rc), &mut frame)
        .unwrap()
        .unwrap();
    assert_eq!(&frame[got.range], b"alt");
    // A replay of it is refused.
    let mut again = genuine;
    assert_eq!(
        rc.handle_datagram_in_place(t, from(&rc), &mut again),
        Err(Error::Replayed(crate::ReplayError::Duplicate))
    );
}

#[test]
fn the_aircraft_reports_a_video_budget_as_its_session_starts() {
    // Before any feedback measured the path: the rate the pacer starts at, less the
    // margin and the parity, so that the encoder's first frame (a key frame) is not sized
    // for the camera's bitrate.
    let (mut aircraft, mut remote) = pair();
    let budgets = |link: &mut Link| {
        core::iter::from_fn(|| link.poll_event())
            .filter_map(|e| match e {
                Event::VideoBudget { bits_per_second } => Some(bits_per_second),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let first = budgets(&mut aircraft);
    assert_eq!(first.len(), 1, "{first:?}");
    let pacing = aircraft.path_estimate().pacing_bps;
    assert!(
        first[0] > pacing / 2 && first[0] < pacing,
        "{first:?} of {pacing}"
    );
    // The remote sends no video: no budget.
    assert!(budgets(&mut remote).is_empty());
}

#[test]
fn acks_and_feedback_elicit_no_feedback() {
    // A remote that only receives a transfer answers with acks (and feedback on the data):
    // the aircraft owes no feedback for them, so the downlink carries the transfer.
    let (mut air, mut rc) = pair();
    air.send(Channel::Storage, &[7u8; 20_000]).unwrap();
    let mut now = Timestamp::ZERO;
    let types = |link: &mut Link, now: Timestamp| {
        let mut buf = vec![0u8; 2048];
        let mut out = Vec::new();
        while let Some(t) = link.poll_transmit(now, &mut buf) {
            out.push((t.frame_type, buf[..t.len].to_vec()));
        }
        out
    };
    let (mut from_remote, mut from_aircraft) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        for (frame_type, f) in types(&mut air, now) {
            from_aircraft.push(frame_type);
            rc.handle_datagram(now, from(&rc), &f).unwrap();
        }
        for (frame_type, f) in types(&mut rc, now) {
            from_remote.push(frame_type);
            air.handle_datagram(now, from(&air), &f).unwrap();
        }
        now = now + Duration::from_millis(10);
        air.handle_timeout(now);
        rc.handle_timeout(now);
    }
    assert_eq!(air.storage_unacked(), 0);
    assert!(from_remote.contains(&FrameType::Ack), "{from_remote:?}");
    assert!(
        from_remote
            .iter()
            .all(|t| matches!(t, FrameType::Ack | FrameType::Feedback)),
        "{from_remote:?}"
    );
    // Until well past the feedback delay, the aircraft sent no feedback at all.
    now = now + Duration::from_millis(50);
    air.handle_timeout(now);
    from_aircraft.extend(types(&mut air, now).into_iter().map(|(t, _)| t));
    assert!(
        from_aircraft.contains(&FrameType::Data),
        "{from_aircraft:?}"
    );
    assert!(
        !from_aircraft.contains(&FrameType::Feedback),
        "{from_aircraft:?}"
    );
}

#[test]
fn stick_commands_get_relaxed_feedback_and_bulk_data_prompt_feedback() {
    // The remote's 100 stick commands a second: the aircraft reports them after eight, not
    // every 10 ms (QUIC acks every second packet; a thin flow needs fewer).
    /// Deliver what the remote sends, then what the aircraft sends; its feedback frames.
    fn exchange(air: &mut Link, rc: &mut Link, now: Timestamp) -> usize {
        for f in drain(rc, now) {
            air.handle_datagram(now, from(air), &f).unwrap();
        }
        let mut buf = vec![0u8; 2048];
        let mut feedback = 0;
        while let Some(t) = air.poll_transmit(now, &mut buf) {
            feedback += usize::from(t.frame_type == FrameType::Feedback);
            rc.handle_datagram(now, from(rc), &buf[..t.len]).unwrap();
        }
        feedback
    }
    let (mut air, mut rc) = pair();
    let mut now = Timestamp::ZERO;
    let mut feedback = 0;
    for ms in 0..1000 {
        if ms % 10 == 0 {
            rc.send(Channel::Control, b"sticks").unwrap();
        }
        feedback += exchange(&mut air, &mut rc, now);
        now = now + Duration::from_millis(1);
        air.handle_timeout(now);
        rc.handle_timeout(now);
    }
    assert!(
        (11..=13).contains(&feedback),
        "{feedback} feedback frames for 100 stick commands"
    );
    // The remote still measures its round trip from them.
    assert!(rc.path_estimate().min_rtt.is_some());
    // A storage request (bulk, paced) 5 ms after a stick command: reported 10 ms after
    // it, not 100 ms after the stick command.
    now = now + Duration::from_millis(200);
    air.handle_timeout(now);
    rc.handle_timeout(now);
    exchange(&mut air, &mut rc, now);
    rc.send(Channel::Control, b"sticks").unwrap();
    assert_eq!(exchange(&mut air, &mut rc, now), 0);
    let request_at = now + Duration::from_millis(5);
    let mut reported_at = None;
    for _ in 0..100 {
        if now == request_at {
            rc.send(Channel::Storage, b"LIST /").unwrap();
        }
        if exchange(&mut air, &mut rc, now) > 0 {
            reported_at = Some(now);
            break;
        }
        now = now + Duration::from_millis(1);
        air.handle_timeout(now);
        rc.handle_timeout(now);
    }
    assert_eq!(
        reported_at,
        Some(request_at + Duration::from_millis(10)),
        "{request_at:?}"
    );
}

#[test]
fn unanswered_probes_double_up_to_a_burst_and_an_answer_starts_them_again() {
    // A download in steady state, then the downlink goes silent in both directions (a fade
    // that loses datagrams by the datagram: each probe is one more try through it). Once
    // the path is full, the aircraft probes at each probe time with twice as many empty
    // keepalives as the last time, up to 8; feedback for one of them starts again at 1.
    let (mut air, mut rc) = pair();
    let chunk = [7u8; 16_000];
    let mut now = Timestamp::ZERO;
    let mut buf = vec![0u8; 2048];
    let fill = |air: &mut Link| while air.send(Channel::Storage, &chunk).is_ok() {};
    // A radio that carries 8 frames a millisecond (about 90 Mbit/s), 1 ms each way.
    let mut radio = std::collections::VecDeque::new();
    for _ in 0..500 {
        fill(&mut air);
        radio.extend(drain(&mut air, now));
        for f in radio.drain(..radio.len().min(8)) {
            rc.handle_datagram(now, from(&rc), &f).unwrap();
        }
        for f in drain(&mut rc, now) {
            air.handle_datagram(now, from(&air), &f).unwrap();
        }
        now = now + Duration::from_millis(1);
        air.handle_timeout(now);
        rc.handle_timeout(now);
    }
    // The fade: every datagram lost, while telemetry goes on at 100 Hz (it asks for
    // relaxed feedback only, so it is no probe and must not put the probes off). Probe
    // bursts: (when, keepalives, the first of them).
    let mut fade = |air: &mut Link, now: &mut Timestamp, until: Timestamp| {
        let mut bursts: Vec<(Timestamp, usize, Vec<u8>)> = Vec::new();
        while *now < until {
            fill(air);
            if now.as_micros() % 10_000 == 0 {
                air.send(Channel::Telemetry, b"position").unwrap();
            }
            air.handle_timeout(*now);
            let mut keepalives = Vec::new();
            while let Some(t) = air.poll_transmit(*now, &mut buf) {
                if t.frame_type == FrameType::Keepalive {
                    keepalives.push(buf[..t.len].to_vec());
                }
            }
            if !keepalives.is_empty() {
                bursts.push((*now, keepalives.len(), keepalives.swap_remove(0)));
            }
            *now = *now + Duration::from_millis(1);
        }
        bursts
    };
    let until = now + Duration::from_millis(200);
    let bursts = fade(&mut air, &mut now, until);
    let sizes: Vec<usize> = bursts.iter().map(|b| b.1).collect();
    assert!(sizes.starts_with(&[1, 2, 4, 8, 8, 8]), "{sizes:?}");
    // One probe gets through, and its feedback back.
    let (_, _, probe) = bursts.last().unwrap();
    rc.handle_datagram(now, from(&rc), probe).unwrap();
    now = now + Duration::from_millis(10);
    rc.handle_timeout(now);
    for f in drain(&mut rc, now) {
        air.handle_datagram(now, from(&air), &f).unwrap();
    }
    let until = now + Duration::from_millis(100);
    let sizes: Vec<usize> = fade(&mut air, &mut now, until)
        .iter()
        .map(|b| b.1)
        .collect();
    assert!(sizes.starts_with(&[1, 2, 4]), "{sizes:?}");
}
