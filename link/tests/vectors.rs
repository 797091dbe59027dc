//! The frame vectors of PROTOCOL.md ("Known-answer vectors", "Frames"), checked through the
//! public API only:
//!
//! - each datagram opens, with the key the key schedule gives for its direction (all are in
//!   key phase 0), to the plaintext listed, and its header and body decode to the fields the
//!   document describes;
//! - two `Link`s given the inputs the document describes produce exactly these datagrams;
//! - the peer `Link` accepts the document's bytes and delivers the expected messages.
//!
//! The vectors themselves were computed independently of this crate (see the appendix of
//! PROTOCOL.md), so these tests tie the implementation to the specification.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::crypto::{nonce, traffic_key, traffic_secrets, AeadKey, AeadProvider};
use rotorlink::wire::body::{
    AckBody, CloseBody, FeedbackBody, FragmentHeader, SackRange, SegmentHeader,
};
use rotorlink::wire::{Channel, Frame, FrameType, Header, HEADER_LEN, TAG_LEN};
use rotorlink::{CloseCode, Config, Event, Link, Role, RustCrypto, Secret, Timestamp};

mod protocol_vectors {
    use std::collections::BTreeMap;
    include!("common/protocol_vectors.rs");
}
use protocol_vectors::Vectors;

const PROTOCOL_MD: &str = include_str!("../../PROTOCOL.md");

impl Vectors {
    fn secret(&self) -> Secret {
        Secret::new(self.array("handshake_secret"))
    }

    fn hash(&self) -> [u8; 32] {
        self.array("transcript_hash")
    }
}

/// Which traffic secret chain protects a frame.
#[derive(Clone, Copy)]
enum Sender {
    Aircraft,
    Remote,
}

/// What PROTOCOL.md says about one frame vector. Every frame is in key phase 0 (generation
/// 0 of its direction's traffic secret).
struct Expected {
    name: &'static str,
    sender: Sender,
    frame_type: FrameType,
    channel: Option<Channel>,
    counter: u64,
}

const FRAMES: [Expected; 9] = [
    Expected {
        name: "control",
        sender: Sender::Remote,
        frame_type: FrameType::Data,
        channel: Some(Channel::Control),
        counter: 0,
    },
    Expected {
        name: "feedback",
        sender: Sender::Aircraft,
        frame_type: FrameType::Feedback,
        channel: None,
        counter: 0,
    },
    Expected {
        name: "keepalive",
        sender: Sender::Aircraft,
        frame_type: FrameType::Keepalive,
        channel: None,
        counter: 1,
    },
    Expected {
        name: "video_0",
        sender: Sender::Aircraft,
        frame_type: FrameType::Data,
        channel: Some(Channel::Video),
        counter: 2,
    },
    Expected {
        name: "video_1",
        sender: Sender::Aircraft,
        frame_type: FrameType::Data,
        channel: Some(Channel::Video),
        counter: 3,
    },
    Expected {
        name: "storage_0",
        sender: Sender::Remote,
        frame_type: FrameType::Data,
        channel: Some(Channel::Storage),
        counter: 1,
    },
    Expected {
        name: "storage_1",
        sender: Sender::Remote,
        frame_type: FrameType::Data,
        channel: Some(Channel::Storage),
        counter: 2,
    },
    Expected {
        name: "ack",
        sender: Sender::Aircraft,
        frame_type: FrameType::Ack,
        channel: Some(Channel::Storage),
        counter: 4,
    },
    Expected {
        name: "close",
        sender: Sender::Remote,
        frame_type: FrameType::Close,
        channel: None,
        counter: 3,
    },
];

/// The AES key of `sender`'s first traffic secret, from the key schedule.
fn schedule_key(v: &Vectors, sender: Sender) -> Secret {
    let secrets = traffic_secrets(&v.secret(), &v.hash());
    let secret = match sender {
        Sender::Aircraft => secrets.aircraft_to_remote,
        Sender::Remote => secrets.remote_to_aircraft,
    };
    traffic_key(&secret)
}

/// Seal and open one frame vector with provider `P`.
fn check_aead<P: AeadProvider>(v: &Vectors, name: &str, key: &Secret) {
    let key = P::key(key);
    let datagram = v.get(&format!("{name}_datagram"));
    let header = &datagram[..HEADER_LEN];
    let nonce_bytes: [u8; 12] = v.array(&format!("{name}_nonce"));
    let plaintext = v.get(&format!("{name}_plaintext"));

    let mut opened = datagram[HEADER_LEN..].to_vec();
    key.open_in_place(&nonce_bytes, header, &mut opened)
        .unwrap_or_else(|_| panic!("{name}: {} does not open it", P::NAME));
    assert_eq!(
        &opened[..opened.len() - TAG_LEN],
        plaintext,
        "{name} plaintext"
    );

    let mut sealed = plaintext.to_vec();
    sealed.resize(plaintext.len() + TAG_LEN, 0);
    key.seal_in_place(&nonce_bytes, header, &mut sealed)
        .unwrap();
    assert_eq!(
        &sealed[..],
        &datagram[HEADER_LEN..],
        "{name}: {} seal",
        P::NAME
    );

    // The header is the associated data: changing any byte of it breaks the tag.
    for i in 0..HEADER_LEN {
        let mut aad = header.to_vec();
        aad[i] ^= 0x80;
        let mut buf = datagram[HEADER_LEN..].to_vec();
        assert!(
            key.open_in_place(&nonce_bytes, &aad, &mut buf).is_err(),
            "{name}: header byte {i} is not authenticated"
        );
    }
}

#[test]
fn frame_vectors_follow_the_wire_format_and_key_schedule() {
    let v = Vectors::load(PROTOCOL_MD);
    let aircraft_index = v.u32("aircraft_index");
    let remote_index = v.u32("remote_index");
    assert_eq!(aircraft_index, u32::from_be_bytes(*b"AIR1"));
    assert_eq!(remote_index, u32::from_be_bytes(*b"RMT1"));

    for e in &FRAMES {
        let name = e.name;
        let datagram = v.get(&format!("{name}_datagram"));
        let plaintext = v.get(&format!("{name}_plaintext"));

        // The key is the key schedule's for this direction.
        let key = schedule_key(&v, e.sender);
        assert_eq!(
            key.expose(),
            &v.array::<32>(&format!("{name}_key")),
            "{name}_key"
        );

        // The header: fields as described, and the listed bytes are the datagram's first 12.
        let frame = Frame::new_checked(datagram).unwrap_or_else(|e| panic!("{name}: {e}"));
        let header = Header::parse(&frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        let receiver = match e.sender {
            Sender::Aircraft => remote_index,
            Sender::Remote => aircraft_index,
        };
        assert_eq!(
            header,
            Header {
                frame_type: e.frame_type,
                key_phase: false,
                channel: e.channel,
                receiver_index: receiver,
                packet_number: u32::try_from(e.counter).unwrap(),
            },
            "{name} header fields"
        );
        assert_eq!(
            frame.header_bytes(),
            v.get(&format!("{name}_header")),
            "{name}_header"
        );
        assert_eq!(datagram.len(), HEADER_LEN + plaintext.len() + TAG_LEN);

        // The nonce is four zero bytes and the counter.
        assert_eq!(
            nonce(e.counter),
            v.array::<12>(&format!("{name}_nonce")),
            "{name}_nonce"
        );

        // The AEAD, through every provider.
        check_aead::<RustCrypto>(&v, name, &key);
        #[cfg(feature = "aws-lc")]
        check_aead::<rotorlink::AwsLc>(&v, name, &key);
    }

    // The bodies decode to what the document says.
    assert_eq!(v.get("control_plaintext"), b"throttle 40%");
    assert_eq!(v.get("keepalive_plaintext"), b"");
    let video: Vec<u8> = (0..217u8).collect();
    for (index, range) in [(0u16, 0..109), (1, 109..217)] {
        let body = v.get(&format!("video_{index}_plaintext"));
        let (fragment, data) = FragmentHeader::parse(body).unwrap();
        assert_eq!(
            fragment,
            FragmentHeader {
                message_id: 0,
                total_len: 217,
                index,
                count: 2,
                parity: 0
            }
        );
        assert_eq!(fragment.fragment_size(), 109);
        assert_eq!(fragment.range(), range);
        assert_eq!(data, &video[fragment.range()]);
    }
    for (seq, text) in [(0u32, &b"LIST /logs"[..]), (1, b"GET /logs/0007.bin")] {
        let body = v.get(&format!("storage_{seq}_plaintext"));
        let (segment, data) = SegmentHeader::parse(body).unwrap();
        assert_eq!(segment, SegmentHeader { seq, flags: 0x03 });
        assert_eq!(data, text);
    }
    assert_eq!(
        AckBody::parse(v.get("ack_plaintext")),
        Ok({
            let mut ack = AckBody::new(0, 16_384);
            ack.push_range(SackRange { start: 1, len: 1 });
            ack
        })
    );
    assert_eq!(
        FeedbackBody::parse(v.get("feedback_plaintext")),
        Ok(FeedbackBody {
            largest: 0,
            frames: 1,
            bytes: v.get("control_datagram").len() as u64,
            received_at_us: 0,
            ack_delay_us: 100_000,
            lost: 0,
            loss_runs: 0,
            unjudged: 1,
        })
    );
    assert_eq!(
        CloseBody::parse(v.get("close_plaintext")),
        Ok(CloseBody {
            code: CloseCode::NORMAL.0
        })
    );
}

/// Large enough for any MTU used here.
const BUF_LEN: usize = 1500;

/// The next datagram `link` sends at `now`, which must be the vector `name`.
fn expect_transmit<P: AeadProvider>(
    v: &Vectors,
    link: &mut Link<P>,
    now: Timestamp,
    name: &str,
    frame_type: FrameType,
    channel: Option<Channel>,
) -> Vec<u8> {
    let mut buf = [0u8; BUF_LEN];
    let t = link
        .poll_transmit(now, &mut buf)
        .unwrap_or_else(|| panic!("{name}: nothing to send"));
    assert_eq!((t.frame_type, t.channel), (frame_type, channel), "{name}");
    let expected = v.get(&format!("{name}_datagram"));
    assert_eq!(
        hex::encode(&buf[..t.len]),
        hex::encode(expected),
        "{name}: the link's datagram differs from PROTOCOL.md"
    );
    expected.to_vec()
}

fn expect_nothing_to_send<P: AeadProvider>(link: &mut Link<P>, now: Timestamp) {
    let mut buf = [0u8; BUF_LEN];
    assert_eq!(link.poll_transmit(now, &mut buf), None);
}

fn expect_message<P: AeadProvider>(link: &mut Link<P>, channel: Channel, data: &[u8]) {
    match link.poll_event() {
        Some(Event::Message {
            channel: c,
            data: d,
        }) => {
            assert_eq!((c, &d[..]), (channel, data));
        }
        other => panic!("expected a {} message, got {other:?}", channel.name()),
    }
}

fn expect_event<P: AeadProvider>(link: &mut Link<P>, event: Event) {
    assert_eq!(link.poll_event(), Some(event));
}

fn expect_no_event<P: AeadProvider>(link: &mut Link<P>) {
    assert_eq!(link.poll_event(), None);
}

/// The session PROTOCOL.md describes, replayed with two links.
fn session<P: AeadProvider>() {
    let v = Vectors::load(PROTOCOL_MD);
    let (aircraft_index, remote_index) = (v.u32("aircraft_index"), v.u32("remote_index"));
    let t0 = Timestamp::ZERO;
    let t1 = Timestamp::from_millis(350);

    // The video vectors are data fragments of a message without parity (PROTOCOL.md 6.2).
    let aircraft_config = Config {
        mtu: 256,
        max_video_parity: 0,
        ..Config::default()
    };
    // The links draw randomness only for key update ephemerals, and no key update falls due
    // in these few frames (default limits), so the seeds do not affect the datagrams.
    let mut aircraft = Link::<P>::from_secret(
        Role::Aircraft,
        aircraft_config,
        &v.secret(),
        &v.hash(),
        aircraft_index,
        remote_index,
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
        &mut ChaCha20Rng::seed_from_u64(1),
        t0,
    )
    .unwrap();
    let mut remote = Link::<P>::from_secret(
        Role::Remote,
        Config::default(),
        &v.secret(),
        &v.hash(),
        remote_index,
        aircraft_index,
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        &mut ChaCha20Rng::seed_from_u64(2),
        t0,
    )
    .unwrap();
    assert_eq!(aircraft.config().keepalive_interval.as_millis(), 250);
    // The encoder's first budget: 90 % of the rate the pacer starts at, 4 Mbit/s (no
    // parity in this session).
    expect_event(
        &mut aircraft,
        Event::VideoBudget {
            bits_per_second: 3_600_000,
        },
    );

    // Control, remote -> aircraft, counter 0.
    let control = v.get("control_plaintext");
    remote.send(Channel::Control, control).unwrap();
    let frame = expect_transmit(
        &v,
        &mut remote,
        t0,
        "control",
        FrameType::Data,
        Some(Channel::Control),
    );
    expect_nothing_to_send(&mut remote, t0);
    aircraft
        .handle_datagram(
            t0,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &frame,
        )
        .unwrap();
    expect_message(&mut aircraft, Channel::Control, control);
    expect_no_event(&mut aircraft);

    // Feedback, aircraft -> remote, counter 0: due 100 ms after the control message it
    // reports (control asks for relaxed feedback).
    let t_feedback = t0 + core::time::Duration::from_millis(100);
    expect_nothing_to_send(&mut aircraft, t0);
    expect_nothing_to_send(
        &mut aircraft,
        t_feedback - core::time::Duration::from_micros(1),
    );
    let frame = expect_transmit(
        &v,
        &mut aircraft,
        t_feedback,
        "feedback",
        FrameType::Feedback,
        None,
    );
    remote
        .handle_datagram(
            t_feedback,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            &frame,
        )
        .unwrap();
    expect_no_event(&mut remote);
    // Feedback asks for none: the remote owes nothing (its keepalive is due at 250 ms).
    expect_nothing_to_send(&mut remote, t_feedback);

    // Keepalive, aircraft -> remote, counter 1: due once nothing was sent for 250 ms.
    expect_nothing_to_send(&mut aircraft, t1 - core::time::Duration::from_micros(1));
    let frame = expect_transmit(
        &v,
        &mut aircraft,
        t1,
        "keepalive",
        FrameType::Keepalive,
        None,
    );
    expect_nothing_to_send(&mut aircraft, t1);
    remote
        .handle_datagram(
            t1,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            &frame,
        )
        .unwrap();
    expect_no_event(&mut remote);

    // Video message 0 in two fragments, aircraft -> remote, counters 2 and 3.
    let mut video = v.get("video_0_plaintext")[FragmentHeader::LEN..].to_vec();
    video.extend_from_slice(&v.get("video_1_plaintext")[FragmentHeader::LEN..]);
    aircraft.send(Channel::Video, &video).unwrap();
    let video_0 = expect_transmit(
        &v,
        &mut aircraft,
        t1,
        "video_0",
        FrameType::Data,
        Some(Channel::Video),
    );
    let video_1 = expect_transmit(
        &v,
        &mut aircraft,
        t1,
        "video_1",
        FrameType::Data,
        Some(Channel::Video),
    );
    expect_nothing_to_send(&mut aircraft, t1);
    remote
        .handle_datagram(
            t1,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            &video_0,
        )
        .unwrap();
    expect_no_event(&mut remote);
    remote
        .handle_datagram(
            t1,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            &video_1,
        )
        .unwrap();
    expect_message(&mut remote, Channel::Video, &video);
    expect_no_event(&mut remote);

    // Two storage messages, remote -> aircraft, counters 1 and 2.
    let list = &v.get("storage_0_plaintext")[SegmentHeader::LEN..];
    let get = &v.get("storage_1_plaintext")[SegmentHeader::LEN..];
    remote.send(Channel::Storage, list).unwrap();
    remote.send(Channel::Storage, get).unwrap();
    let storage_0 = expect_transmit(
        &v,
        &mut remote,
        t1,
        "storage_0",
        FrameType::Data,
        Some(Channel::Storage),
    );
    let storage_1 = expect_transmit(
        &v,
        &mut remote,
        t1,
        "storage_1",
        FrameType::Data,
        Some(Channel::Storage),
    );
    expect_nothing_to_send(&mut remote, t1);

    // The aircraft gets segment 1 first: a gap, but no reason to acknowledge at once. It
    // acknowledges it selectively 5 ms later (the ack delay), counter 4, still in key
    // phase 0.
    aircraft
        .handle_datagram(
            t1,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &storage_1,
        )
        .unwrap();
    expect_no_event(&mut aircraft);
    expect_nothing_to_send(&mut aircraft, t1);
    let t2 = Timestamp::from_millis(355);
    let ack = expect_transmit(
        &v,
        &mut aircraft,
        t2,
        "ack",
        FrameType::Ack,
        Some(Channel::Storage),
    );
    expect_no_event(&mut aircraft);
    expect_nothing_to_send(&mut aircraft, t2);
    aircraft
        .handle_datagram(
            t2,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &storage_0,
        )
        .unwrap();
    expect_message(&mut aircraft, Channel::Storage, list);
    expect_message(&mut aircraft, Channel::Storage, get);
    expect_no_event(&mut aircraft);

    // The remote takes the ack.
    remote
        .handle_datagram(t2, std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), &ack)
        .unwrap();
    expect_no_event(&mut remote);
    assert_eq!(
        remote.storage_unacked(),
        2,
        "the ack acknowledges nothing cumulatively"
    );

    // Close, remote -> aircraft, counter 3.
    remote.close(CloseCode::NORMAL);
    let close = expect_transmit(&v, &mut remote, t2, "close", FrameType::Close, None);
    // Two more copies of the close (counters 4 and 5; PROTOCOL.md 14.3), then nothing.
    let mut buf = [0u8; BUF_LEN];
    for _ in 1..3 {
        let t = remote
            .poll_transmit(t2, &mut buf)
            .expect("a copy of the close");
        assert_eq!(t.frame_type, FrameType::Close);
    }
    assert!(remote.poll_transmit(t2, &mut buf).is_none());
    expect_event(
        &mut remote,
        Event::Closed {
            code: CloseCode::NORMAL,
            by_peer: false,
        },
    );
    assert!(remote.is_closed());
    aircraft
        .handle_datagram(
            t2,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &close,
        )
        .unwrap();
    expect_event(
        &mut aircraft,
        Event::Closed {
            code: CloseCode::NORMAL,
            by_peer: true,
        },
    );
    assert!(aircraft.is_closed());
    assert_eq!(aircraft.stats().dropped_total(), 0);
    assert_eq!(remote.stats().dropped_total(), 0);
}

#[test]
fn links_produce_and_accept_the_frame_vectors_rustcrypto() {
    session::<RustCrypto>();
}

#[cfg(feature = "aws-lc")]
#[test]
fn links_produce_and_accept_the_frame_vectors_awslc() {
    session::<rotorlink::AwsLc>();
}

/// Every vector replayed to a link that already accepted it is refused, and a vector with a
/// flipped bit anywhere is refused without changing the link.
#[test]
fn the_vectors_are_not_accepted_twice_or_altered() {
    let v = Vectors::load(PROTOCOL_MD);
    let (aircraft_index, remote_index) = (v.u32("aircraft_index"), v.u32("remote_index"));
    let t0 = Timestamp::ZERO;
    let mut aircraft: Link = Link::from_secret(
        Role::Aircraft,
        Config::default(),
        &v.secret(),
        &v.hash(),
        aircraft_index,
        remote_index,
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
        &mut ChaCha20Rng::seed_from_u64(1),
        t0,
    )
    .unwrap();
    assert!(matches!(
        aircraft.poll_event(),
        Some(Event::VideoBudget { .. })
    ));
    let control = v.get("control_datagram");
    for i in 0..control.len() {
        let mut bad = control.to_vec();
        bad[i] ^= 0x01;
        assert!(
            aircraft
                .handle_datagram(t0, std::net::SocketAddr::from(([10, 0, 0, 2], 47474)), &bad)
                .is_err(),
            "bit flip at byte {i}"
        );
    }
    expect_no_event(&mut aircraft);
    aircraft
        .handle_datagram(
            t0,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            control,
        )
        .unwrap();
    expect_message(&mut aircraft, Channel::Control, v.get("control_plaintext"));
    assert_eq!(
        aircraft.handle_datagram(
            t0,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            control
        ),
        Err(rotorlink::Error::Replayed(
            rotorlink::ReplayError::Duplicate
        ))
    );
    expect_no_event(&mut aircraft);
}
