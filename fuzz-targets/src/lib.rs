//! The bodies of rotorlink's fuzz targets, as plain functions over bytes.
//!
//! Each `pub fn <target>(data: &[u8])` below is what `fuzz/fuzz_targets/<target>.rs` runs under
//! libFuzzer (the cargo-fuzz crate in `fuzz/` depends on this one by path), and what this
//! crate's `tests/corpus.rs` replays for every file committed under `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/`: the committed inputs are regression tests that run in
//! `cargo test --workspace`, without a fuzzer. [`TARGETS`] lists them by name.
//!
//! Every target panics (a crash, for libFuzzer) when an invariant breaks; whatever the input,
//! nothing else may panic. Every run is a pure function of its input. Where the fuzzer must
//! not know the real ends' keys (the handshake targets, `structured`), they are drawn from a
//! hash of the whole input, so that bytes libFuzzer picks up from one run's comparisons (a
//! genuine `Finish`, a sealed frame) cannot be replayed into another.
//!
//! The structure-aware targets read their input as a sequence of operations with [`Input`], a
//! tiny byte reader: an opcode byte, then fixed fields (no `arbitrary`: the layout is defined
//! here, so seeds are written with [`Output`] and the committed corpora keep their meaning). Every operation type has `read` and
//! `write`, so seed inputs are built from operations (see `tests/corpus.rs`) rather than
//! written by hand, and `read(write(op)) == op`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::OnceLock;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::channel::fec::{FecDecoder, FecEncoder};
use rotorlink::crypto::{
    nonce, traffic_key, traffic_secrets, AeadError, AeadKey, AeadProvider, NONCE_LEN,
};
use rotorlink::handshake::keys::{bond_key, mac1, transcript_hash};
use rotorlink::handshake::limits::{AttemptRecord, RECORD_LEN};
use rotorlink::handshake::messages::{
    self, Finish, Init, InitBody, Kind, Refusal, RefusalReason, Response, ResponseBody,
    BOND_ID_LEN, CONFIRM_LEN, MAC1_LEN, MESSAGE1_LEN, MESSAGE2_LEN, SUITE_V2, TICKET_LEN,
};
use rotorlink::handshake::pake::{self, PasswordFile, KE1_LEN};
use rotorlink::handshake::{
    AircraftIdentity, HandshakeConfig, KsfParams, LimitsConfig, MemoryAttemptStore, RemoteIdentity,
};
use rotorlink::wire::body::{
    fec_supports, AckBody, CloseBody, FeedbackBody, FragmentHeader, RepairHeader, SackRange,
    SegmentHeader, FEEDBACK_SETTLE, MAX_REPAIR_SEGMENTS,
};
use rotorlink::wire::session::SessionMessage;
use rotorlink::wire::{
    counter_from_packet_number, DecodeError, Frame, FrameType, Header, FLAG_KEY_PHASE, HEADER_LEN,
    MAX_DATAGRAM_LEN, MAX_PAYLOAD_LEN, TAG_LEN, VERSION,
};
use rotorlink::{
    Channel, CloseCode, Config, Error, Event, Link, ReplayError, Role, RustCrypto, Secret,
    Timestamp,
};
use sha2::{Digest, Sha256};
use x25519_dalek::StaticSecret;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name: what the corpus test replays and `.ci/run` fuzzes.
pub const TARGETS: [(&str, Target); 9] = [
    ("frame_decode", frame_decode),
    ("handshake_aircraft", handshake_aircraft),
    ("handshake_remote", handshake_remote),
    ("session_recv", session_recv),
    ("reassembly", reassembly),
    ("structured", structured),
    ("fec", fec),
    ("session_message", session_message),
    ("stored", stored),
];

/// The aircraft's public link id in the handshake targets.
pub const LINK_ID: [u8; 16] = *b"rotorlink-fuzz-1";
/// The security code the handshake targets' aircraft is provisioned with.
pub const CODE: &[u8] = b"246813";
/// A wrong code.
pub const WRONG_CODE: &[u8] = b"135792";
/// The handshake secret of the `from_secret` links.
const SECRET: [u8; 32] = [0x5a; 32];
/// The transcript hash of the `from_secret` links.
const TRANSCRIPT: [u8; 32] = [0x17; 32];
/// The index the link under test receives on.
const LOCAL_INDEX: u32 = 0x4c4f_4341;
/// The index of its (simulated) peer.
const PEER_INDEX: u32 = 0x5045_4552;
/// When every target's links are created.
const T0: Timestamp = Timestamp::from_millis(1_000);
/// How long the fuzzed aircraft's owner opened its pairing window.
const WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);
/// The aircraft's and the remote's addresses in every target.
const AIRCRAFT_ADDR: std::net::SocketAddr = std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(10, 0, 0, 1),
    47474,
));
const REMOTE_ADDR: std::net::SocketAddr = std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(10, 0, 0, 2),
    47474,
));

/// Where datagrams to the end of role `to` come from: the other end.
fn source_for(to: Role) -> std::net::SocketAddr {
    match to {
        Role::Aircraft => REMOTE_ADDR,
        Role::Remote => AIRCRAFT_ADDR,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading and writing inputs

/// Reads the fuzz input front to back. Past the end every read gives zeros, so any byte string
/// is a valid input.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Read `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Nothing left?
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// One byte.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }

    /// A byte string of at most `max` bytes: a `u16` length (modulo `max + 1`), then the bytes
    /// (fewer if the input ends).
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (usize::from(self.u16()) % (max + 1)).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }
}

/// Writes the fields [`Input`] reads, for building seed inputs.
#[derive(Debug, Clone, Default)]
pub struct Output(pub Vec<u8>);

impl Output {
    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A byte string that [`Input::bytes`] with this `max` reads back.
    pub fn bytes(&mut self, b: &[u8], max: usize) -> &mut Self {
        assert!(
            b.len() <= max,
            "a seed's byte string is longer than its field allows"
        );
        let len = u16::try_from(b.len()).expect("at most 65535 bytes");
        self.u16(len);
        self.0.extend_from_slice(b);
        self
    }
}

/// A change to a datagram before it is delivered. Half the kinds change nothing, so forwarded
/// frames are often genuine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mutation {
    /// What to do (`kind % 6`): 0 and 1 nothing, 2 flip the bits of `value | 1` at `pos`,
    /// 3 truncate to `pos`, 4 set the byte at `pos` to `value`, 5 append `value`.
    pub kind: u8,
    /// Where (modulo the length).
    pub pos: u16,
    /// With what.
    pub value: u8,
}

impl Mutation {
    /// Leave the datagram as it is.
    pub const NONE: Mutation = Mutation {
        kind: 0,
        pos: 0,
        value: 0,
    };

    fn read(input: &mut Input<'_>) -> Self {
        Mutation {
            kind: input.u8(),
            pos: input.u16(),
            value: input.u8(),
        }
    }

    fn write(&self, out: &mut Output) {
        out.u8(self.kind).u16(self.pos).u8(self.value);
    }

    /// The datagram after the change.
    pub fn apply(&self, datagram: &[u8]) -> Vec<u8> {
        let mut d = datagram.to_vec();
        let at = if d.is_empty() {
            0
        } else {
            usize::from(self.pos) % d.len()
        };
        match self.kind % 6 {
            2 if !d.is_empty() => d[at] ^= self.value | 1,
            3 => d.truncate(at),
            4 if !d.is_empty() => d[at] = self.value,
            5 => d.push(self.value),
            _ => {}
        }
        d
    }
}

/// A time step: 0 to an hour, picked by a byte.
pub fn time_step(b: u8) -> Duration {
    const STEPS_MS: [u64; 8] = [0, 1, 10, 100, 1_000, 10_000, 130_000, 3_600_000];
    Duration::from_millis(STEPS_MS[usize::from(b % 8)] * (1 + u64::from(b >> 3) % 4))
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the targets

/// An event, owned (a [`Event::Message`] borrows the link).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Message(Channel, Vec<u8>),
    Connected,
    Bonded,
    Other,
}

/// Every event the link has for the application.
fn drain<P: AeadProvider>(link: &mut Link<P>) -> Vec<Seen> {
    let mut out = Vec::new();
    while let Some(event) = link.poll_event() {
        out.push(match event {
            Event::Message { channel, data } => Seen::Message(channel, data.to_vec()),
            Event::Connected { .. } => Seen::Connected,
            Event::Bonded => Seen::Bonded,
            _ => Seen::Other,
        });
    }
    out
}

/// Every datagram the link has to send now.
fn transmit_all<P: AeadProvider>(link: &mut Link<P>, now: Timestamp) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; MAX_DATAGRAM_LEN];
    let mut out = Vec::new();
    while let Some(t) = link.poll_transmit(now, &mut buf) {
        out.push(buf[..t.len].to_vec());
        assert!(out.len() < 200_000, "poll_transmit never runs dry");
    }
    out
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// 32 bytes derived from the whole input (SHA-256 with a label).
///
/// The targets where the real ends' keys must stay unknown to the fuzzer draw them from this:
/// the same input always gives the same run, but bytes libFuzzer learned from one run's
/// comparisons (a genuine `Finish`, a sealed frame) are useless in another, since putting them
/// into the input changes the keys.
fn input_secret(label: &[u8], data: &[u8]) -> [u8; 32] {
    transcript_hash(&[b"rotorlink fuzz input ", label, data])
}

/// Byte `pos` of the deterministic content identified by `seed`.
fn pattern(seed: u32, pos: usize) -> u8 {
    let x = (pos as u32).wrapping_mul(0x9e37_79b1) ^ seed.wrapping_mul(0x85eb_ca6b);
    ((x >> 24) ^ x) as u8
}

/// The 12 header bytes, field by field, unchecked (the packet number: `counter`'s low 32 bits).
fn header_bytes(
    frame_type: u8,
    flags: u8,
    channel: u8,
    receiver: u32,
    counter: u64,
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = VERSION;
    h[1] = frame_type;
    h[2] = flags;
    h[3] = channel;
    h[4..8].copy_from_slice(&receiver.to_be_bytes());
    // The packet number: the counter's low 32 bits.
    h[8..12].copy_from_slice(&(counter as u32).to_be_bytes());
    h
}

/// An AEAD that does not encrypt and whose tag is 16 zero bytes: with it, any datagram whose
/// last 16 bytes are zero authenticates, so that a fuzzer mutating raw bytes reaches every
/// parser behind the tag. For fuzzing only; `Link<NullAead>` is a link like any other.
#[derive(Debug, Clone, Copy)]
pub struct NullAead;

/// The key of [`NullAead`].
#[derive(Debug, Clone, Copy)]
pub struct NullKey;

impl AeadProvider for NullAead {
    type Key = NullKey;
    const NAME: &'static str = "null (fuzzing only)";
    fn key(_: &Secret) -> NullKey {
        NullKey
    }
}

impl AeadKey for NullKey {
    fn seal_in_place(
        &self,
        _: &[u8; NONCE_LEN],
        _: &[u8],
        in_out: &mut [u8],
    ) -> Result<(), AeadError> {
        let split = in_out.len().checked_sub(TAG_LEN).ok_or(AeadError)?;
        in_out[split..].fill(0);
        Ok(())
    }

    fn open_in_place(
        &self,
        _: &[u8; NONCE_LEN],
        _: &[u8],
        in_out: &mut [u8],
    ) -> Result<(), AeadError> {
        let split = in_out.len().checked_sub(TAG_LEN).ok_or(AeadError)?;
        if in_out[split..].iter().all(|&b| b == 0) {
            Ok(())
        } else {
            Err(AeadError)
        }
    }
}

/// Seals frames with the first (phase 0) traffic key of one direction of the `from_secret`
/// session, as that direction's real sender would.
struct Sealer<P: AeadProvider = RustCrypto> {
    key: P::Key,
}

impl<P: AeadProvider> Sealer<P> {
    /// The key frames from `sender` are sealed with in a session made from `secret`.
    fn new(sender: Role, secret: [u8; 32]) -> Self {
        let secrets = traffic_secrets(&Secret::new(secret), &TRANSCRIPT);
        let secret = match sender {
            Role::Aircraft => secrets.aircraft_to_remote,
            Role::Remote => secrets.remote_to_aircraft,
        };
        Sealer {
            key: P::key(&traffic_key(&secret)),
        }
    }

    /// `header`, then `plaintext` sealed with the nonce of `counter` and the header as
    /// associated data.
    fn seal(&self, header: &[u8; HEADER_LEN], counter: u64, plaintext: &[u8]) -> Vec<u8> {
        let mut out = header.to_vec();
        out.extend_from_slice(plaintext);
        out.resize(out.len() + TAG_LEN, 0);
        let (aad, body) = out.split_at_mut(HEADER_LEN);
        self.key
            .seal_in_place(&nonce(counter), aad, body)
            .expect("sealing cannot fail");
        out
    }

    /// The plaintext of `datagram`, if it opens under this key.
    fn open(&self, datagram: &[u8], counter: u64) -> Option<Vec<u8>> {
        let (aad, body) = datagram.split_at_checked(HEADER_LEN)?;
        let mut body = body.to_vec();
        self.key
            .open_in_place(&nonce(counter), aad, &mut body)
            .ok()?;
        body.truncate(body.len() - TAG_LEN);
        Some(body)
    }
}

/// A link made with `Link::from_secret(secret)` and `config`: `role`, receiving on `local`.
/// The events of its start (an aircraft's first video budget) are taken: the targets check
/// the events that what they feed it produces.
fn secret_link<P: AeadProvider>(
    role: Role,
    config: Config,
    secret: [u8; 32],
    (local, peer): (u32, u32),
    seed: u64,
) -> Link<P> {
    let mut link = Link::from_secret(
        role,
        config,
        &Secret::new(secret),
        &TRANSCRIPT,
        local,
        peer,
        AIRCRAFT_ADDR,
        &mut rng(seed),
        T0,
    )
    .expect("the targets' configurations are valid");
    while link.poll_event().is_some() {}
    link
}

/// Largest data bytes of one storage segment in a datagram of the maximum size.
const MAX_SEGMENT_DATA: usize = MAX_PAYLOAD_LEN - TAG_LEN - SegmentHeader::LEN;
/// Largest data bytes of one video fragment in a datagram of the maximum size.
const MAX_FRAGMENT_DATA: usize = MAX_PAYLOAD_LEN - TAG_LEN - FragmentHeader::LEN;

// ---------------------------------------------------------------------------------------------
// frame_decode

/// `frame_decode`: arbitrary bytes into every parser of the wire format and of the handshake
/// messages.
///
/// Asserts: nothing panics; a frame that parses emits back to exactly its bytes and re-parses
/// to the same header; `messages::parse_frame` agrees with the frame parser; every body and
/// handshake message that parses (fragment, segment, ack, close, `Init`, `Response`, `Finish`,
/// `Refusal`) emits back to exactly the bytes it was parsed from, and a parsed fragment has the
/// layout a sender would produce; values built from the input's bytes emit and parse back to
/// themselves.
pub fn frame_decode(data: &[u8]) {
    let parsed = Frame::new_checked(data).and_then(|f| Header::parse(&f));
    let handshake = messages::parse_frame(data).map(|(h, p)| (h, p.to_vec()));
    match parsed {
        Ok(header) => {
            let mut out = data.to_vec();
            header
                .emit(&mut out)
                .expect("a parsed header fits its own frame");
            assert_eq!(out, data, "a parsed frame emits back to its own bytes");
            let again = Frame::new_checked(&out[..]).and_then(|f| Header::parse(&f));
            assert_eq!(again, Ok(header));
            let payload = &data[HEADER_LEN..];
            if header.frame_type.is_encrypted() {
                assert!(payload.len() >= TAG_LEN);
                assert_eq!(handshake, Err(DecodeError::InvalidField));
                let plaintext = &payload[..payload.len() - TAG_LEN];
                body_parsers(plaintext);
            } else {
                assert_eq!(header.channel, None);
                assert!(!header.key_phase);
                if header.packet_number != 0 {
                    assert_eq!(handshake, Err(DecodeError::InvalidField));
                } else {
                    assert_eq!(handshake, Ok((header, payload.to_vec())));
                    handshake_parsers(payload);
                }
            }
        }
        Err(e) => assert_eq!(handshake, Err(e), "parse_frame and Header::parse disagree"),
    }
    body_parsers(data);
    handshake_parsers(data);
    round_trips(&mut Input::new(data));
}

/// The plaintext body parsers on `b`: what parses emits back to `b`.
fn body_parsers(b: &[u8]) {
    if let Ok((h, data)) = FragmentHeader::parse(b) {
        assert!(h.count >= 1 && h.total_len >= 1);
        assert!(u32::from(h.index) < u32::from(h.count) + u32::from(h.parity));
        if h.is_parity() {
            // A parity fragment: one whole shard, of a code the erasure code supports.
            assert!(h.range().is_empty());
            assert_eq!(data.len(), h.shard_len());
            assert!(h.shard_len() % 2 == 0 && h.shard_len() >= h.fragment_size());
            assert!(fec_supports(h.count, h.parity));
        } else {
            let range = h.range();
            assert!(range.start < range.end && range.end <= h.total_len as usize);
            assert_eq!(range.len(), data.len());
        }
        assert_eq!(data, &b[FragmentHeader::LEN..]);
        // Only layouts a sender produces: `count` fragments of `fragment_size`.
        let size = h.fragment_size();
        assert!(size * (usize::from(h.count) - 1) < h.total_len as usize);
        assert_eq!(
            FragmentHeader::count_for(h.total_len as usize, size),
            Some(h.count)
        );
        let mut out = [0u8; FragmentHeader::LEN];
        assert_eq!(h.emit(&mut out), Ok(FragmentHeader::LEN));
        assert_eq!(&out[..], &b[..FragmentHeader::LEN]);
    }
    if let Ok((s, data)) = SegmentHeader::parse(b) {
        assert_eq!(s.flags & !0x03, 0);
        assert_eq!(data, &b[SegmentHeader::LEN..]);
        let mut out = [0u8; SegmentHeader::LEN];
        assert_eq!(s.emit(&mut out), Ok(SegmentHeader::LEN));
        assert_eq!(&out[..], &b[..SegmentHeader::LEN]);
    }
    if let Ok(a) = AckBody::parse(b) {
        let mut out = [0u8; AckBody::MAX_LEN];
        assert_eq!(a.emit(&mut out), Ok(b.len()));
        assert_eq!(&out[..b.len()], b);
    }
    if let Ok((r, shard)) = RepairHeader::parse(b) {
        assert!(r.count >= 1 && r.count <= MAX_REPAIR_SEGMENTS && r.index < r.parity);
        assert!(!shard.is_empty() && shard.len() % 2 == 0);
        assert_eq!(shard, &b[RepairHeader::LEN..]);
        let mut out = [0u8; RepairHeader::LEN];
        assert_eq!(r.emit(&mut out), Ok(RepairHeader::LEN));
        assert_eq!(&out[..], &b[..RepairHeader::LEN]);
    }
    if let Ok(c) = CloseBody::parse(b) {
        let mut out = [0u8; CloseBody::LEN];
        assert_eq!(c.emit(&mut out), Ok(CloseBody::LEN));
        assert_eq!(&out[..], b);
    }
    if let Ok(f) = FeedbackBody::parse(b) {
        let counters = f.largest.saturating_add(1);
        assert!(f.frames <= counters && f.loss_runs <= f.lost);
        assert!(u64::from(f.unjudged) <= FEEDBACK_SETTLE.min(counters) && f.lost <= f.judged());
        let mut out = [0u8; FeedbackBody::LEN];
        assert_eq!(f.emit(&mut out), Ok(FeedbackBody::LEN));
        assert_eq!(&out[..], b);
    }
}

/// The handshake message parsers on `p`: what parses emits back to `p`.
fn handshake_parsers(p: &[u8]) {
    if let Ok(m) = Init::parse(p) {
        assert_eq!(m.emit(), p, "Init");
        assert_eq!(m.kind() as u8, p[0]);
    }
    if let Ok(m) = Response::parse(p) {
        assert_eq!(m.emit(), p, "Response");
    }
    if let Ok(m) = Finish::parse(p) {
        assert_eq!(m.emit(), p, "Finish");
    }
    if let Ok(m) = Refusal::parse(p) {
        assert_eq!(&m.emit()[..], p, "Refusal");
    }
}

/// Values built from the input emit and parse back to themselves.
fn round_trips(input: &mut Input<'_>) {
    // A header of any valid combination of fields.
    let types = [
        FrameType::HandshakeInit,
        FrameType::HandshakeResponse,
        FrameType::HandshakeFinish,
        FrameType::CookieReply,
        FrameType::Data,
        FrameType::Ack,
        FrameType::Keepalive,
        FrameType::Close,
    ];
    let frame_type = types[usize::from(input.u8() % 8)];
    let pick = input.u8();
    let channel = match frame_type {
        FrameType::Data => Some(Channel::from_u8(pick % 5).expect("0 to 4 are channels")),
        FrameType::Ack if pick & 1 == 0 => Some(Channel::Session),
        FrameType::Ack => Some(Channel::Storage),
        _ => None,
    };
    let min = if frame_type.is_encrypted() {
        TAG_LEN
    } else {
        0
    };
    let payload_len = min + usize::from(input.u8());
    let header = Header {
        frame_type,
        key_phase: frame_type.is_encrypted() && pick & 0x80 != 0,
        channel,
        receiver_index: input.u32(),
        packet_number: input.u32(),
    };
    let mut buf = vec![0u8; HEADER_LEN + payload_len];
    header.emit(&mut buf).expect("fits");
    let parsed = Frame::new_checked(&buf[..]).and_then(|f| Header::parse(&f));
    assert_eq!(parsed, Ok(header), "an emitted header parses back");

    // A fragment of a message cut the way a sender cuts it.
    let total = input.u32() % 200_000 + 1;
    let max = usize::from(input.u16() % 2_000) + 1;
    if let Some(count) = FragmentHeader::count_for(total as usize, max) {
        let h = FragmentHeader {
            message_id: input.u32(),
            total_len: total,
            index: input.u16() % count,
            count,
            parity: 0,
        };
        let range = h.range();
        assert!(!range.is_empty() && range.len() <= max);
        let mut buf = vec![0u8; FragmentHeader::LEN + range.len()];
        h.emit(&mut buf).expect("fits");
        let (parsed, data) = FragmentHeader::parse(&buf).expect("a sender's fragment parses");
        assert_eq!((parsed, data.len()), (h, range.len()));
    }

    // Handshake messages with arbitrary field values.
    let mut array32 = [0u8; 32];
    array32.iter_mut().for_each(|b| *b = input.u8());
    let mut mac = [0u8; MAC1_LEN];
    mac.iter_mut().for_each(|b| *b = input.u8());
    let mut confirm = [0u8; CONFIRM_LEN];
    confirm.iter_mut().for_each(|b| *b = input.u8());
    let mut bond_id = [0u8; BOND_ID_LEN];
    bond_id.copy_from_slice(&array32[..BOND_ID_LEN]);
    let mut ticket = [0u8; TICKET_LEN];
    ticket.copy_from_slice(&array32[..TICKET_LEN]);
    let index = input.u32();
    let kind = [Kind::Session, Kind::Resume][usize::from(input.u8() & 1)];
    let mut message1 = [0u8; MESSAGE1_LEN];
    message1.iter_mut().for_each(|b| *b = input.u8());
    let mut message2 = [0u8; MESSAGE2_LEN];
    message2.iter_mut().for_each(|b| *b = input.u8());
    for body in [
        InitBody::Session {
            bond_id,
            message: message1,
        },
        InitBody::Resume {
            ticket,
            message: message1,
        },
    ] {
        let init = Init {
            suite: SUITE_V2,
            sender_index: index,
            body,
            mac1: mac,
        };
        assert_eq!(Init::parse(&init.emit()), Ok(init));
    }
    // A keyed Response carries the aircraft's index inside Noise message 2: none in the clear.
    let response = Response {
        sender_index: 0,
        body: ResponseBody::Keyed {
            kind,
            message: message2,
        },
    };
    assert_eq!(Response::parse(&response.emit()), Ok(response));
    let finish = Finish::Keyed { kind, confirm };
    assert_eq!(Finish::parse(&finish.emit()), Ok(finish));
    let reasons = [
        RefusalReason::BackOff,
        RefusalReason::LockedOut,
        RefusalReason::UnknownBond,
        RefusalReason::UnknownTicket,
        RefusalReason::Busy,
    ];
    let refusal = Refusal {
        reason: reasons[usize::from(input.u8() % 5)],
        remaining_attempts: input.u32(),
        retry_after_ms: input.u32(),
    };
    assert_eq!(Refusal::parse(&refusal.emit()), Ok(refusal));
}

// ---------------------------------------------------------------------------------------------
// handshake_aircraft and handshake_remote

/// The identities the handshake targets start from, made once per process: an aircraft
/// provisioned with [`CODE`] before and after one real pairing with a remote, that remote
/// before and after (bonded), the bond key (for fixing up `mac1`) and a valid OPAQUE KE1.
struct Fixture {
    fresh_aircraft: Vec<u8>,
    bonded_aircraft: Vec<u8>,
    fresh_remote: Vec<u8>,
    bonded_remote: Vec<u8>,
    bond_key: Secret,
    ke1: Vec<u8>,
}

/// The remote's static secret key in the handshake targets.
const REMOTE_STATIC: [u8; 32] = [0x22; 32];

/// The configuration of the handshake targets: fast key stretching, a small rate limit and
/// attempt limit so that refusals and lockouts are reachable.
fn handshake_config() -> Config {
    Config {
        ksf: KsfParams::INSECURE_FAST,
        handshake: HandshakeConfig {
            rate_per_second: HANDSHAKE_RATE,
            ..HandshakeConfig::default()
        },
        limits: LimitsConfig {
            max_failures: 3,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
            lockout: Duration::from_secs(60),
            max_unlock_failures: 9,
        },
        ..Config::default()
    }
}

/// The aircraft's handshake rate limit in the handshake targets (initiations per second).
const HANDSHAKE_RATE: u32 = 4;

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let config = handshake_config();
        let mut rng = rng(0xf1a7);
        let identity =
            AircraftIdentity::provision(LINK_ID, CODE, config.ksf, &mut rng).expect("provision");
        let fresh_aircraft = identity.to_bytes().to_vec();
        let mut remote_bytes = vec![1u8];
        remote_bytes.extend_from_slice(&REMOTE_STATIC);
        remote_bytes.push(0);
        let remote_identity = RemoteIdentity::from_bytes(&remote_bytes).expect("identity");
        let fresh_remote = remote_identity.to_bytes().to_vec();
        let attempts = Box::new(MemoryAttemptStore::new());
        let mut air: Link =
            Link::aircraft(config.clone(), identity, attempts, &mut rng, T0).expect("aircraft");
        air.open_pairing_window(WINDOW, T0).expect("aircraft");
        let mut rc: Link =
            Link::remote(config, remote_identity, LINK_ID, &mut rng, T0).expect("remote");
        rc.pair(CODE, AIRCRAFT_ADDR, T0).expect("pair");
        for _ in 0..8 {
            for d in transmit_all(&mut rc, T0) {
                let _ = air.handle_datagram(T0, REMOTE_ADDR, &d);
            }
            for d in transmit_all(&mut air, T0) {
                let _ = rc.handle_datagram(T0, AIRCRAFT_ADDR, &d);
            }
        }
        assert!(
            air.is_connected() && rc.is_connected(),
            "the fixture pairing"
        );
        let bonded_aircraft = air
            .aircraft_identity()
            .expect("aircraft")
            .to_bytes()
            .to_vec();
        let remote_identity = rc.remote_identity().expect("remote");
        assert!(
            remote_identity.bond().is_some(),
            "the fixture pairing bonds"
        );
        let bonded_remote = remote_identity.to_bytes().to_vec();
        let aircraft_public = AircraftIdentity::from_bytes(&bonded_aircraft)
            .expect("identity")
            .static_public();
        let shared = StaticSecret::from(REMOTE_STATIC).diffie_hellman(&aircraft_public);
        let (_, ke1) = pake::client_start(CODE, &mut rng).expect("KE1");
        Fixture {
            fresh_aircraft,
            bonded_aircraft,
            fresh_remote,
            bonded_remote,
            bond_key: bond_key(&shared),
            ke1,
        }
    })
}

/// One operation of the handshake targets. The *target* is the end under test (the aircraft
/// in `handshake_aircraft`, the remote in `handshake_remote`); the *peer* is a genuine other
/// end whose frames the input can forward, alter and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsOp {
    /// Deliver these bytes to the target, after the fix-ups in `fix` (bit 0: a handshake
    /// header, type from bits 5 and 6; bit 1: packet number 0; bit 2: the target's current
    /// index as receiver; bit 3: a valid KE1 in a pairing `Init`; bit 4: a valid `mac1`).
    Raw {
        /// Fix-ups.
        fix: u8,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// Queue everything the peer has to send.
    PumpPeer,
    /// Deliver the peer's oldest queued datagram to the target.
    ForwardPeer(Mutation),
    /// Queue everything the target has to send.
    PumpTarget,
    /// Deliver the target's oldest queued datagram to the peer.
    ForwardTarget(Mutation),
    /// Let time pass ([`time_step`]) and run both ends' timers.
    Advance(u8),
    /// The remote starts again: `connect` (0), `pair` with the code (1) or a wrong code (2).
    Restart(u8),
    /// Deliver again a datagram the peer sent earlier (the `index`th, modulo their number).
    Replay {
        /// Which.
        index: u8,
        /// Changed how.
        mutation: Mutation,
    },
}

/// Largest `Raw` datagram of the handshake targets.
const HS_RAW_MAX: usize = 1024;

impl HsOp {
    /// Read one operation.
    pub fn read(input: &mut Input<'_>) -> Self {
        match input.u8() % 8 {
            0 => HsOp::Raw {
                fix: input.u8(),
                bytes: input.bytes(HS_RAW_MAX),
            },
            1 => HsOp::PumpPeer,
            2 => HsOp::ForwardPeer(Mutation::read(input)),
            3 => HsOp::PumpTarget,
            4 => HsOp::ForwardTarget(Mutation::read(input)),
            5 => HsOp::Advance(input.u8()),
            6 => HsOp::Restart(input.u8()),
            _ => HsOp::Replay {
                index: input.u8(),
                mutation: Mutation::read(input),
            },
        }
    }

    /// Write it so that [`HsOp::read`] reads it back.
    pub fn write(&self, out: &mut Output) {
        match self {
            HsOp::Raw { fix, bytes } => {
                out.u8(0).u8(*fix).bytes(bytes, HS_RAW_MAX);
            }
            HsOp::PumpPeer => {
                out.u8(1);
            }
            HsOp::ForwardPeer(m) => {
                out.u8(2);
                m.write(out);
            }
            HsOp::PumpTarget => {
                out.u8(3);
            }
            HsOp::ForwardTarget(m) => {
                out.u8(4);
                m.write(out);
            }
            HsOp::Advance(step) => {
                out.u8(5).u8(*step);
            }
            HsOp::Restart(how) => {
                out.u8(6).u8(*how);
            }
            HsOp::Replay { index, mutation } => {
                out.u8(7).u8(*index);
                mutation.write(out);
            }
        }
    }
}

/// Operations per input in the handshake targets.
const HS_MAX_OPS: usize = 48;

/// The mode byte of the handshake targets. Bit 0: the aircraft is already bonded to the
/// remote; bits 1 and 2: the remote starts with `connect` (0, as the bonded remote), `pair`
/// with the code (1) or a wrong code (2), or not at all (3).
pub fn hs_mode(bonded_aircraft: bool, start: u8) -> u8 {
    u8::from(bonded_aircraft) | (start & 3) << 1
}

/// Both real ends of a handshake, the datagrams between them, and what each has received
/// that was genuinely sent by the other.
struct Handshakes {
    air: Link,
    rc: Link,
    target: Role,
    now: Timestamp,
    air_out: VecDeque<Vec<u8>>,
    rc_out: VecDeque<Vec<u8>>,
    /// Every datagram each end has sent.
    air_sent: HashSet<Vec<u8>>,
    rc_sent: HashSet<Vec<u8>>,
    /// The peer's datagrams, in order, for replays.
    peer_history: Vec<Vec<u8>>,
    /// The target's index in the handshake under way, as its last handshake frame gave it.
    target_index: Option<u32>,
    /// The aircraft received a `Finish` byte for byte as the remote sent it.
    air_got_finish: bool,
    /// The remote received a `Response` byte for byte as the aircraft sent it.
    rc_got_response: bool,
    /// The remote received an encrypted frame byte for byte as the aircraft sent it.
    rc_got_encrypted: bool,
    bonds_before: usize,
}

impl Handshakes {
    fn new(mode: u8, target: Role, seed: [u8; 32]) -> Self {
        let f = fixture();
        let config = handshake_config();
        let mut rng = ChaCha20Rng::from_seed(seed);
        let aircraft_bytes = if mode & 1 == 1 {
            &f.bonded_aircraft
        } else {
            &f.fresh_aircraft
        };
        let identity = AircraftIdentity::from_bytes(aircraft_bytes).expect("identity");
        let bonds_before = identity.bonds().len();
        let attempts = Box::new(MemoryAttemptStore::new());
        let mut air =
            Link::aircraft(config.clone(), identity, attempts, &mut rng, T0).expect("aircraft");
        air.open_pairing_window(WINDOW, T0).expect("aircraft");
        let start = (mode >> 1) & 3;
        let remote_bytes = if start == 0 {
            &f.bonded_remote
        } else {
            &f.fresh_remote
        };
        let remote_identity = RemoteIdentity::from_bytes(remote_bytes).expect("identity");
        let rc = Link::remote(config, remote_identity, LINK_ID, &mut rng, T0).expect("remote");
        let mut hs = Handshakes {
            air,
            rc,
            target,
            now: T0,
            air_out: VecDeque::new(),
            rc_out: VecDeque::new(),
            air_sent: HashSet::new(),
            rc_sent: HashSet::new(),
            peer_history: Vec::new(),
            target_index: None,
            air_got_finish: false,
            rc_got_response: false,
            rc_got_encrypted: false,
            bonds_before,
        };
        if start < 3 {
            hs.restart(start);
        }
        hs
    }

    fn restart(&mut self, how: u8) {
        let _ = match how % 3 {
            0 => self.rc.connect(AIRCRAFT_ADDR, self.now),
            1 => self.rc.pair(CODE, AIRCRAFT_ADDR, self.now),
            _ => self.rc.pair(WRONG_CODE, AIRCRAFT_ADDR, self.now),
        };
    }

    fn run(&mut self, op: HsOp) {
        let peer = self.target.peer();
        match op {
            HsOp::Raw { fix, bytes } => {
                let d = self.fix_up(fix, bytes);
                self.deliver(self.target, &d);
            }
            HsOp::PumpPeer => self.pump(peer),
            HsOp::PumpTarget => self.pump(self.target),
            HsOp::ForwardPeer(m) => self.forward(peer, m),
            HsOp::ForwardTarget(m) => self.forward(self.target, m),
            HsOp::Advance(step) => {
                self.now = self.now + time_step(step);
                self.air.handle_timeout(self.now);
                self.rc.handle_timeout(self.now);
            }
            HsOp::Restart(how) => self.restart(how),
            HsOp::Replay { index, mutation } => {
                if !self.peer_history.is_empty() {
                    let i = usize::from(index) % self.peer_history.len();
                    let d = mutation.apply(&self.peer_history[i]);
                    self.deliver(self.target, &d);
                }
            }
        }
        self.check();
    }

    /// Apply the `Raw` fix-ups (see [`HsOp::Raw`]).
    fn fix_up(&self, fix: u8, mut d: Vec<u8>) -> Vec<u8> {
        if fix & 1 != 0 {
            if d.len() < HEADER_LEN {
                d.resize(HEADER_LEN, 0);
            }
            d[0] = VERSION;
            d[1] = 1 + ((fix >> 5) & 3);
            d[2] = 0;
            d[3] = 0;
        }
        if fix & 2 != 0 && d.len() >= HEADER_LEN {
            d[8..HEADER_LEN].fill(0);
        }
        if let (true, Some(index), true) = (fix & 4 != 0, self.target_index, d.len() >= 8) {
            d[4..8].copy_from_slice(&index.to_be_bytes());
        }
        let pair_init_len = HEADER_LEN + 6 + 32 + KE1_LEN + MAC1_LEN;
        if fix & 8 != 0 && d.len() == pair_init_len && d[HEADER_LEN] == Kind::Pair as u8 {
            let at = HEADER_LEN + 6 + 32;
            d[at..at + KE1_LEN].copy_from_slice(&fixture().ke1);
        }
        if fix & 16 != 0 && d.len() >= HEADER_LEN + 1 + MAC1_LEN {
            let key: &[u8] = if d[HEADER_LEN] == Kind::Session as u8 {
                fixture().bond_key.expose()
            } else {
                &[]
            };
            let split = d.len() - MAC1_LEN;
            let tag = mac1(&LINK_ID, key, &d[..split]);
            d[split..].copy_from_slice(&tag);
        }
        d
    }

    fn link(&mut self, role: Role) -> &mut Link {
        match role {
            Role::Aircraft => &mut self.air,
            Role::Remote => &mut self.rc,
        }
    }

    /// Queue what `role` has to send, checking the remote's `Finish`es.
    fn pump(&mut self, role: Role) {
        let now = self.now;
        for d in transmit_all(self.link(role), now) {
            let frame_type = d[1];
            if role == Role::Remote && frame_type == FrameType::HandshakeFinish as u8 {
                assert!(
                    self.rc_got_response,
                    "the remote finished a handshake without a genuine Response"
                );
            }
            if role == self.target {
                let at = match (role, frame_type) {
                    (Role::Remote, 0x01) => Some(HEADER_LEN + 2),
                    (Role::Aircraft, 0x02) => Some(HEADER_LEN + 1),
                    _ => None,
                };
                if let Some(b) = at.and_then(|at| d.get(at..at + 4)) {
                    self.target_index = Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                }
            } else {
                self.peer_history.push(d.clone());
            }
            match role {
                Role::Aircraft => {
                    self.air_sent.insert(d.clone());
                    self.air_out.push_back(d);
                }
                Role::Remote => {
                    self.rc_sent.insert(d.clone());
                    self.rc_out.push_back(d);
                }
            }
        }
    }

    /// Deliver `from`'s oldest queued datagram to the other end.
    fn forward(&mut self, from: Role, m: Mutation) {
        let queued = match from {
            Role::Aircraft => self.air_out.pop_front(),
            Role::Remote => self.rc_out.pop_front(),
        };
        if let Some(d) = queued {
            self.deliver(from.peer(), &m.apply(&d));
        }
    }

    /// Deliver `d` to `to`, noting whether it is byte for byte what the other end sent.
    fn deliver(&mut self, to: Role, d: &[u8]) {
        let frame_type = d.get(1).copied().unwrap_or(0);
        match to {
            Role::Aircraft => {
                if self.rc_sent.contains(d) && frame_type == FrameType::HandshakeFinish as u8 {
                    self.air_got_finish = true;
                }
            }
            Role::Remote => {
                if self.air_sent.contains(d) {
                    if frame_type == FrameType::HandshakeResponse as u8 {
                        self.rc_got_response = true;
                    }
                    if frame_type >= FrameType::Data as u8 {
                        self.rc_got_encrypted = true;
                    }
                }
            }
        }
        let now = self.now;
        let _ = self.link(to).handle_datagram(now, source_for(to), d);
    }

    /// The invariants: no session, bond or message without the genuine messages; the
    /// aircraft's expensive work stays within its rate limit.
    fn check(&mut self) {
        for e in drain(&mut self.air) {
            if matches!(e, Seen::Connected | Seen::Bonded | Seen::Message(..)) {
                assert!(
                    self.air_got_finish,
                    "aircraft: {e:?} without the remote's genuine Finish"
                );
            }
        }
        if self.air.is_connected() {
            assert!(self.air_got_finish, "aircraft: a session from garbage");
        }
        let bonds = self
            .air
            .aircraft_identity()
            .map_or(0, |identity| identity.bonds().len());
        if bonds > self.bonds_before {
            assert!(self.air_got_finish, "aircraft: a bond from garbage");
        }
        let genuine = self.rc_got_response && self.rc_got_encrypted;
        for e in drain(&mut self.rc) {
            if matches!(e, Seen::Connected | Seen::Bonded | Seen::Message(..)) {
                assert!(
                    genuine,
                    "remote: {e:?} without the aircraft's genuine frames"
                );
            }
        }
        if self.rc.is_connected() {
            assert!(genuine, "remote: a session from garbage");
        }
        let elapsed = self.now.saturating_since(T0);
        let seconds = elapsed.as_secs() + u64::from(elapsed.subsec_nanos() > 0);
        let budget = 5 * u64::from(HANDSHAKE_RATE) * (1 + seconds);
        assert!(
            self.air.handshake_crypto_ops() <= budget,
            "aircraft: {} expensive operations in {elapsed:?}, over the rate limit",
            self.air.handshake_crypto_ops()
        );
    }
}

fn handshake_target(data: &[u8], target: Role) {
    let mut input = Input::new(data);
    let seed = input_secret(b"handshake", data);
    let mut hs = Handshakes::new(input.u8(), target, seed);
    if target == Role::Remote {
        hs.pump(Role::Remote); // learn the remote's index before any fix-up needs it
    }
    for _ in 0..HS_MAX_OPS {
        if input.is_empty() {
            break;
        }
        hs.run(HsOp::read(&mut input));
    }
}

/// `handshake_aircraft`: a real aircraft (`Link::aircraft`, bonded or not) fed arbitrary
/// datagrams (with optional fix-ups that give them a valid header, the target's index, a valid
/// KE1 or a valid `mac1`), and the frames of a genuine remote (`connect`, or `pair` with the
/// right or a wrong code), forwarded, altered, dropped or replayed, under arbitrary time steps.
///
/// Both ends' randomness (ephemeral keys, indices) comes from a hash of the input.
///
/// Asserts: nothing panics; the aircraft reports no session (`Connected`, `is_connected`), no
/// bond and no message unless it received, unaltered, a `Finish` the genuine remote sent; the
/// remote sends a `Finish` only after an unaltered `Response` from the aircraft and reports a
/// session only after an unaltered encrypted frame from it; the aircraft's OPAQUE and X25519
/// work stays within its rate limit (`5 * rate * (1 + seconds)` operations).
pub fn handshake_aircraft(data: &[u8]) {
    handshake_target(data, Role::Aircraft);
}

/// `handshake_remote`: a real remote (`Link::remote`, after `connect` or `pair`) fed arbitrary
/// datagrams (with optional fix-ups: a valid header, the remote's current index as receiver),
/// and the frames of a genuine aircraft, forwarded, altered, dropped or replayed, under
/// arbitrary time steps. The same invariants as `handshake_aircraft`.
pub fn handshake_remote(data: &[u8]) {
    handshake_target(data, Role::Remote);
}

// ---------------------------------------------------------------------------------------------
// session_recv

/// How to build one frame in `session_recv`. The fields are raw; [`SealSpec`]'s doc says how
/// each is read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SealSpec {
    /// Bits 0 to 2: the frame type (0 to 3 data, 4 ack, 5 keepalive, 6 close, 7 the raw type
    /// byte `channel`); bit 3: key phase 1; bit 4: a wrong receiver index; bit 5: a byte
    /// more after the tag; bit 6: the next version; bit 7: reserved flag bits.
    pub shape: u8,
    /// The channel (data: modulo 5; ack: session if even, else storage).
    pub channel: u8,
    /// The counter (`% 6`): 0 the next, 1 the next plus `counter_arg % 4096`, 2 the counter of
    /// an earlier frame (the `counter_arg`th), 3 the newest accepted minus
    /// `counter_arg % 4096`, 4 `counter_arg` itself, 5 `u64::MAX - counter_arg % 4`.
    pub counter_mode: u8,
    /// See `counter_mode`.
    pub counter_arg: u64,
    /// Body options, by frame (see `SealSpec::body` in the source).
    pub body_mode: u8,
    /// Body field.
    pub a: u32,
    /// Body field.
    pub b: u32,
    /// Body field.
    pub c: u16,
    /// Body field.
    pub d: u16,
    /// Body bytes.
    pub bytes: Vec<u8>,
}

/// Largest byte string of a `session_recv` operation.
const RECV_BYTES_MAX: usize = 4096;

impl SealSpec {
    fn read(input: &mut Input<'_>) -> Self {
        SealSpec {
            shape: input.u8(),
            channel: input.u8(),
            counter_mode: input.u8(),
            counter_arg: input.u64(),
            body_mode: input.u8(),
            a: input.u32(),
            b: input.u32(),
            c: input.u16(),
            d: input.u16(),
            bytes: input.bytes(RECV_BYTES_MAX),
        }
    }

    fn write(&self, out: &mut Output) {
        out.u8(self.shape)
            .u8(self.channel)
            .u8(self.counter_mode)
            .u64(self.counter_arg)
            .u8(self.body_mode)
            .u32(self.a)
            .u32(self.b)
            .u16(self.c)
            .u16(self.d)
            .bytes(&self.bytes, RECV_BYTES_MAX);
    }
}

/// One operation of `session_recv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecvOp {
    /// Build a frame, seal it with the real key and deliver it.
    Seal(SealSpec),
    /// Deliver again the `n`th sealed frame (modulo their number).
    Replay(u16),
    /// Deliver an altered copy of the `index`th sealed frame.
    Mutate {
        /// Which.
        index: u16,
        /// How.
        mutation: Mutation,
    },
    /// Deliver these bytes (bit 0 of `fix`: a valid encrypted header; bit 1: the packet
    /// number of the next fresh counter; bit 2: the right receiver index; bit 3: the null
    /// AEAD's tag).
    Raw {
        /// Fix-ups.
        fix: u8,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// Let time pass and run the timers.
    Advance(u8),
    /// Take and check everything the link sends.
    Transmit,
}

impl RecvOp {
    /// Read one operation.
    pub fn read(input: &mut Input<'_>) -> Self {
        match input.u8() % 6 {
            0 => RecvOp::Seal(SealSpec::read(input)),
            1 => RecvOp::Replay(input.u16()),
            2 => RecvOp::Mutate {
                index: input.u16(),
                mutation: Mutation::read(input),
            },
            3 => RecvOp::Raw {
                fix: input.u8(),
                bytes: input.bytes(RECV_BYTES_MAX),
            },
            4 => RecvOp::Advance(input.u8()),
            _ => RecvOp::Transmit,
        }
    }

    /// Write it so that [`RecvOp::read`] reads it back.
    pub fn write(&self, out: &mut Output) {
        match self {
            RecvOp::Seal(spec) => {
                out.u8(0);
                spec.write(out);
            }
            RecvOp::Replay(n) => {
                out.u8(1).u16(*n);
            }
            RecvOp::Mutate { index, mutation } => {
                out.u8(2).u16(*index);
                mutation.write(out);
            }
            RecvOp::Raw { fix, bytes } => {
                out.u8(3).u8(*fix).bytes(bytes, RECV_BYTES_MAX);
            }
            RecvOp::Advance(step) => {
                out.u8(4).u8(*step);
            }
            RecvOp::Transmit => {
                out.u8(5);
            }
        }
    }
}

/// The reference replay window (PROTOCOL.md section 10): a counter is accepted iff it was
/// never accepted and is less than `size` behind the newest accepted one.
struct ReplayModel {
    size: u64,
    top: Option<u64>,
    seen: BTreeSet<u64>,
}

impl ReplayModel {
    /// The counter the link recovers from `packet_number` (PROTOCOL.md 3): nearest to the
    /// one after the newest accepted.
    fn counter_of(&self, packet_number: u32) -> u64 {
        let expected = self.top.map_or(0, |top| top.saturating_add(1));
        counter_from_packet_number(packet_number, expected)
    }

    fn new(replay_window: usize) -> Self {
        ReplayModel {
            size: (replay_window.div_ceil(64).max(1) * 64) as u64,
            top: None,
            seen: BTreeSet::new(),
        }
    }

    fn check(&self, counter: u64) -> Result<(), ReplayError> {
        match self.top {
            Some(top) if counter <= top && top - counter >= self.size => Err(ReplayError::TooOld),
            Some(top) if counter <= top && self.seen.contains(&counter) => {
                Err(ReplayError::Duplicate)
            }
            _ => Ok(()),
        }
    }

    fn commit(&mut self, counter: u64) {
        let top = self.top.map_or(counter, |t| t.max(counter));
        self.top = Some(top);
        self.seen.insert(counter);
        let floor = top.saturating_sub(self.size);
        self.seen = self.seen.split_off(&floor);
    }
}

/// The mode byte of `session_recv`: bit 0 the link is the remote (else the aircraft); bits 1
/// and 2 the replay window (64, 100, 2048, 128); bit 3 low packet limits (a key update due
/// after 20 frames, the key refused after 50); bit 4 the [`NullAead`] (any frame with a zero
/// tag authenticates).
pub fn recv_mode(remote: bool, window: u8, low_limits: bool, null: bool) -> u8 {
    u8::from(remote) | (window & 3) << 1 | u8::from(low_limits) << 3 | u8::from(null) << 4
}

/// Operations per input in `session_recv`.
const RECV_MAX_OPS: usize = 256;

/// The link under test in `session_recv`, its (simulated) peer and the reference model.
struct Receiver<P: AeadProvider> {
    link: Link<P>,
    /// The link uses the [`NullAead`].
    null: bool,
    config: Config,
    sealer: Sealer<P>,
    /// Opens what the link sends (its first send key).
    opener: Sealer<P>,
    now: Timestamp,
    model: ReplayModel,
    /// Sealed datagrams and their counters, in order.
    history: Vec<(Vec<u8>, u64)>,
    next_counter: u64,
    /// Next sequence number of the session and storage channels.
    next_seq: [u32; 5],
    /// Frames accepted (all on the first key).
    accepted: u64,
    /// Counters of the frames whose plaintext was delivered as a message.
    delivered: BTreeSet<u64>,
    /// Counter of the newest frame the link sent.
    sent_counter: Option<u64>,
}

impl<P: AeadProvider> Receiver<P> {
    fn new(mode: u8, null: bool) -> Self {
        let role = if mode & 1 == 0 {
            Role::Aircraft
        } else {
            Role::Remote
        };
        let replay_window = [64, 100, 2048, 128][usize::from((mode >> 1) & 3)];
        let mut config = Config {
            replay_window,
            ..Config::default()
        };
        if mode & 8 != 0 {
            config.rekey_after_packets = 20;
            config.reject_after_packets = 50;
        }
        Receiver {
            link: secret_link(role, config.clone(), SECRET, (LOCAL_INDEX, PEER_INDEX), 1),
            null,
            config,
            sealer: Sealer::new(role.peer(), SECRET),
            opener: Sealer::new(role, SECRET),
            now: T0,
            model: ReplayModel::new(replay_window),
            history: Vec::new(),
            next_counter: 0,
            next_seq: [0; 5],
            accepted: 0,
            delivered: BTreeSet::new(),
            sent_counter: None,
        }
    }

    fn run(&mut self, op: RecvOp) {
        match op {
            RecvOp::Seal(spec) => {
                let d = self.seal(&spec);
                self.deliver(d);
            }
            RecvOp::Replay(n) => {
                if !self.history.is_empty() {
                    let d = self.history[usize::from(n) % self.history.len()].0.clone();
                    self.deliver(d);
                }
            }
            RecvOp::Mutate { index, mutation } => {
                if !self.history.is_empty() {
                    let i = usize::from(index) % self.history.len();
                    let d = mutation.apply(&self.history[i].0);
                    self.deliver(d);
                }
            }
            RecvOp::Raw { fix, bytes } => {
                let mut d = bytes;
                if fix & 1 != 0 {
                    if d.len() < HEADER_LEN + TAG_LEN {
                        d.resize(HEADER_LEN + TAG_LEN, 0);
                    }
                    d[0] = VERSION;
                    d[1] = 0x10 + ((fix >> 4) & 3);
                    d[2] &= FLAG_KEY_PHASE;
                    d[3] = if d[1] == 0x10 { (fix >> 6) + 1 } else { 0 };
                }
                if fix & 2 != 0 && d.len() >= HEADER_LEN {
                    let next = self.model.top.map_or(0, |top| top.saturating_add(1));
                    d[8..HEADER_LEN].copy_from_slice(&(next as u32).to_be_bytes());
                }
                if fix & 4 != 0 && d.len() >= 8 {
                    d[4..8].copy_from_slice(&LOCAL_INDEX.to_be_bytes());
                }
                if fix & 8 != 0 && d.len() >= TAG_LEN {
                    let split = d.len() - TAG_LEN;
                    d[split..].fill(0); // the tag of the null AEAD
                }
                self.deliver(d);
            }
            RecvOp::Advance(step) => {
                self.now = self.now + time_step(step);
                self.link.handle_timeout(self.now);
                for e in drain(&mut self.link) {
                    assert!(
                        !matches!(e, Seen::Message(..) | Seen::Connected | Seen::Bonded),
                        "a timer delivered {e:?}"
                    );
                }
            }
            RecvOp::Transmit => self.transmit(),
        }
    }

    fn counter(&mut self, spec: &SealSpec) -> u64 {
        let arg = spec.counter_arg;
        match spec.counter_mode % 6 {
            0 => {
                let c = self.next_counter;
                self.next_counter = c.saturating_add(1);
                c
            }
            1 => {
                let c = self.next_counter.saturating_add(arg % 4096);
                self.next_counter = c.saturating_add(1);
                c
            }
            2 if !self.history.is_empty() => {
                self.history[(arg % self.history.len() as u64) as usize].1
            }
            3 => self.model.top.unwrap_or(0).saturating_sub(arg % 4096),
            4 => arg,
            5 => u64::MAX - arg % 4,
            _ => self.next_counter,
        }
    }

    /// The plaintext of the frame `spec` describes.
    fn body(&mut self, frame_type: u8, channel: u8, spec: &SealSpec) -> Vec<u8> {
        let raw = spec.body_mode & 1 != 0;
        match (frame_type, channel) {
            (0x10, 3) => {
                let id = if raw { spec.a } else { spec.a % 8 };
                let total = if spec.body_mode & 2 != 0 {
                    spec.b
                } else {
                    spec.b % 4096 + 1
                };
                let (count, index) = if spec.body_mode & 4 == 0 {
                    let size = usize::from(spec.c.max(1));
                    let count = FragmentHeader::count_for(total as usize, size).unwrap_or(1);
                    (count, spec.d % count)
                } else {
                    (spec.c, spec.d)
                };
                let h = FragmentHeader {
                    message_id: id,
                    total_len: total,
                    index,
                    count,
                    parity: 0,
                };
                let mut out = vec![0u8; FragmentHeader::LEN];
                h.emit(&mut out).expect("fits");
                if spec.body_mode & 8 != 0 {
                    out.extend_from_slice(&spec.bytes);
                } else {
                    let r = h.range();
                    let end = r.end.min(r.start + MAX_FRAGMENT_DATA);
                    let seed = id ^ total.rotate_left(16);
                    out.extend((r.start..end.max(r.start)).map(|p| pattern(seed, p)));
                }
                out
            }
            (0x10, 0 | 4) => {
                let ch = usize::from(channel);
                let seq = if raw {
                    self.next_seq[ch].wrapping_add(spec.a)
                } else {
                    let s = self.next_seq[ch];
                    self.next_seq[ch] = s.wrapping_add(1);
                    s
                };
                let flags = if spec.body_mode & 2 != 0 {
                    spec.c as u8
                } else {
                    spec.c as u8 & 3
                };
                let mut out = vec![0u8; SegmentHeader::LEN];
                SegmentHeader { seq, flags }.emit(&mut out).expect("fits");
                out.extend_from_slice(&spec.bytes);
                out
            }
            (0x11, _) if !raw => {
                // Window `c`, up to three ranges drawn from `b` and `d`: starts near
                // `next_expected` (often valid), lengths 1 to 16.
                let mut ack = AckBody::new(spec.a, spec.c);
                for i in 0..((spec.body_mode >> 1) & 3) {
                    let start = spec.a.wrapping_add(1 + (spec.b >> (8 * u32::from(i))) % 64);
                    let len = 1 + (spec.d >> (4 * u16::from(i))) % 16;
                    ack.push_range(SackRange { start, len });
                }
                let mut out = vec![0u8; AckBody::MAX_LEN];
                let n = ack.emit(&mut out).expect("fits");
                out.truncate(n);
                out
            }
            (0x12, _) if !raw => Vec::new(),
            (0x13, _) if !raw => spec.c.to_be_bytes().to_vec(),
            _ => spec.bytes.clone(),
        }
    }

    /// Build and seal the frame `spec` describes.
    fn seal(&mut self, spec: &SealSpec) -> Vec<u8> {
        let (frame_type, channel) = match spec.shape & 7 {
            0..=3 => (0x10, spec.channel % 5),
            4 if spec.channel & 1 == 0 => (0x11, 0),
            4 => (0x11, 4),
            5 => (0x12, 0),
            6 => (0x13, 0),
            _ => (spec.channel, spec.channel & 7),
        };
        let counter = self.counter(spec);
        let plaintext = self.body(frame_type, channel, spec);
        let mut flags = if spec.shape & 8 != 0 {
            FLAG_KEY_PHASE
        } else {
            0
        };
        if spec.shape & 0x80 != 0 {
            flags |= spec.body_mode & 0xfe;
        }
        let receiver = if spec.shape & 0x10 != 0 {
            LOCAL_INDEX ^ spec.a.max(1)
        } else {
            LOCAL_INDEX
        };
        let mut header = header_bytes(frame_type, flags, channel, receiver, counter);
        if spec.shape & 0x40 != 0 {
            header[0] = VERSION + 1;
        }
        let mut d = self.sealer.seal(&header, counter, &plaintext);
        if spec.shape & 0x20 != 0 {
            d.push(0);
        }
        self.history.push((d.clone(), counter));
        d
    }

    /// Has the link's (first and only) receive key expired?
    fn key_expired(&self) -> bool {
        self.now.saturating_since(T0) >= self.config.reject_after_time
            || self.accepted >= self.config.reject_after_packets
    }

    /// Deliver `d` and check the result against the reference model, and the messages against
    /// what was sealed.
    fn deliver(&mut self, d: Vec<u8>) {
        let closed = self.link.is_closed();
        // A session whose keys wore out (its send key's age or count) has ended: the link
        // stays open but holds no keys to open anything with.
        let ended = !closed && !self.link.is_connected();
        let header = Frame::new_checked(&d[..]).and_then(|f| Header::parse(&f));
        // The counter the link recovers from the packet number (used only if it parsed).
        let counter = header.map_or(0, |h| self.model.counter_of(h.packet_number));
        let result = self
            .link
            .handle_datagram(self.now, source_for(self.link.role()), &d);
        let events = drain(&mut self.link);
        let expected_drop = match header {
            // A closed link is final: it drops everything before even parsing it.
            _ if closed => Some(Error::Closed),
            Err(e) => Some(Error::Malformed(e)),
            Ok(h) if !h.frame_type.is_encrypted() => {
                // A handshake frame, and this link runs no handshake.
                assert!(matches!(result, Err(Error::Handshake(_))), "{result:?}");
                assert!(events.is_empty(), "a handshake frame produced {events:?}");
                return;
            }
            Ok(_) if ended => Some(Error::UnexpectedFrame),
            Ok(h) if h.receiver_index != LOCAL_INDEX => Some(Error::UnknownReceiver),
            Ok(h) => match self.model.check(counter) {
                Err(kind) => Some(Error::Replayed(kind)),
                Ok(()) if counter == u64::MAX => Some(Error::KeyExpired),
                Ok(()) if self.null => {
                    // Any key opens a zero tag, so the key phases are reachable from raw bytes:
                    // only authentication and the replay window are checked exactly.
                    let zero_tag = d[d.len() - TAG_LEN..].iter().all(|&b| b == 0);
                    match result {
                        Err(e @ (Error::DecryptFailed | Error::KeyExpired)) => Some(e),
                        _ => {
                            assert!(zero_tag, "a frame with a wrong tag authenticated");
                            None
                        }
                    }
                }
                Ok(()) if h.key_phase => Some(Error::DecryptFailed),
                Ok(()) if self.key_expired() => Some(Error::KeyExpired),
                Ok(()) if self.sealer.open(&d, counter).is_none() => Some(Error::DecryptFailed),
                Ok(()) => None,
            },
        };
        if let Some(error) = expected_drop {
            assert_eq!(result, Err(error), "a datagram the link must drop");
            assert!(
                events.is_empty(),
                "a dropped datagram produced events: {events:?}"
            );
            return;
        }
        // Authentic and fresh: consumed, whatever its body.
        let h = header.expect("checked above");
        assert!(
            !matches!(
                result,
                Err(Error::DecryptFailed
                    | Error::Replayed(_)
                    | Error::KeyExpired
                    | Error::UnknownReceiver
                    | Error::Closed)
            ),
            "an authentic, fresh frame was refused: {result:?}"
        );
        self.model.commit(counter);
        self.accepted += 1;
        let plaintext = if self.null {
            d[HEADER_LEN..d.len() - TAG_LEN].to_vec()
        } else {
            self.sealer.open(&d, counter).expect("authentic")
        };
        let mut whole_messages = 0;
        for e in events {
            match e {
                Seen::Message(channel, data) => {
                    assert_eq!(Some(channel), h.channel, "a message on another channel");
                    assert_eq!(h.frame_type, FrameType::Data);
                    assert!(self.link.role().peer().may_send(channel));
                    assert_ne!(channel, Channel::Session);
                    if matches!(channel, Channel::Control | Channel::Telemetry) {
                        assert_eq!(data, plaintext, "a message that was not sealed");
                        whole_messages += 1;
                        assert!(
                            self.delivered.insert(counter),
                            "counter {counter} delivered twice"
                        );
                    }
                }
                Seen::Connected | Seen::Bonded => panic!("a handshake event without handshake"),
                Seen::Other => {}
            }
        }
        assert!(whole_messages <= 1);
    }

    /// Everything the link sends parses, is addressed to the peer, has increasing counters and
    /// (before any key update) opens under the link's send key.
    fn transmit(&mut self) {
        for d in transmit_all(&mut self.link, self.now) {
            let h = Frame::new_checked(&d[..])
                .and_then(|f| Header::parse(&f))
                .expect("the link sends well-formed frames");
            assert!(h.frame_type.is_encrypted());
            assert_eq!(h.receiver_index, PEER_INDEX);
            let expected = self.sent_counter.map_or(0, |c| c + 1);
            let counter = counter_from_packet_number(h.packet_number, expected);
            assert!(self.sent_counter.is_none_or(|c| counter > c));
            self.sent_counter = Some(counter);
            if self.link.stats().rekeys_sent == 0 {
                assert!(!h.key_phase);
                let opens = self.opener.open(&d, counter).is_some();
                assert!(opens, "a frame that does not open");
            }
        }
        for e in drain(&mut self.link) {
            assert!(!matches!(e, Seen::Message(..)), "sending delivered {e:?}");
        }
    }
}

/// `session_recv`: an established session (`Link::from_secret`, either role) fed arbitrary
/// datagrams mixed with frames sealed with the real key from fields the input picks (any type,
/// channel, counter, phase, body), replays and altered copies of them, time steps, and
/// `poll_transmit`. In one mode the link runs on the [`NullAead`] instead, so that raw bytes
/// with a zero tag get past authentication (key phases and rotations included).
///
/// Asserts, against a reference model of the replay window (PROTOCOL.md sections 10 and 11):
/// every datagram is dropped with exactly the error the model predicts (malformed, unknown
/// receiver, duplicate, too old, key expired, failed tag) and then produces no event, and every
/// authentic frame (one that opens under the peer's key) with a fresh counter is accepted and
/// consumed; every message delivered comes from an authentic frame on its channel and
/// direction, a control or telemetry message is exactly the frame's plaintext, and no counter
/// is delivered twice. What the link sends is
/// well-formed, addressed to the peer, opens under its key and has increasing counters. With
/// the null AEAD the key phases are not modelled: there only the replay window and
/// authentication (a non-zero tag never passes) are checked exactly.
pub fn session_recv(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    if mode & 16 != 0 {
        run_receiver(Receiver::<NullAead>::new(mode, true), input);
    } else {
        run_receiver(Receiver::<RustCrypto>::new(mode, false), input);
    }
}

fn run_receiver<P: AeadProvider>(mut receiver: Receiver<P>, mut input: Input<'_>) {
    for _ in 0..RECV_MAX_OPS {
        if input.is_empty() {
            break;
        }
        receiver.run(RecvOp::read(&mut input));
    }
}

// ---------------------------------------------------------------------------------------------
// reassembly

/// One operation of `reassembly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasmOp {
    /// A sealed video fragment. `mode` bit 0: `id` raw (else modulo 16); bits 1 and 2: the
    /// total length (0 `total % max + 1`, 1 at most 15 below the maximum, 2 up to 16 above
    /// it, 3 raw); bit 3: raw `count` (= `size`) and `index` (else the layout of fragments of
    /// at most `size` bytes, data or parity); bit 4: corrupt content; bit 5: one byte too
    /// many; bit 6: forward error correction, `fec` parity fragments (else none); bit 7 with
    /// bit 6: a forged parity count, `fec` in both bytes (up to 65535).
    Video {
        /// Message id.
        id: u32,
        /// Total length.
        total: u32,
        /// Fragment size (or raw count).
        size: u16,
        /// Fragment index.
        index: u16,
        /// Options.
        mode: u8,
        /// Parity fragments (see `mode` bits 6 and 7).
        fec: u8,
    },
    /// A sealed storage segment. `mode` bit 0: raw `seq` (else the next expected plus
    /// `seq % 70`); bit 1: exactly the next expected; bit 2: raw flags (else `flags & 3`).
    /// With `mode` bit 7, a repair frame instead, over `len % 128 + 1` segments from
    /// `seq % 70` before the next expected (all of `seq` with bit 0), `flags % 16 + 1`
    /// parity shards of a pattern, `2 + 2 * ((len >> 7) % 340)` bytes each.
    Segment {
        /// Sequence number.
        seq: u32,
        /// Flags.
        flags: u8,
        /// Data length (modulo the largest a datagram holds).
        len: u16,
        /// Options.
        mode: u8,
    },
    /// Let time pass and run the timers.
    Advance(u8),
    /// Take everything the link sends (acks).
    Transmit,
}

impl ReasmOp {
    /// Read one operation.
    pub fn read(input: &mut Input<'_>) -> Self {
        match input.u8() % 8 {
            0..=3 => ReasmOp::Video {
                id: input.u32(),
                total: input.u32(),
                size: input.u16(),
                index: input.u16(),
                mode: input.u8(),
                fec: input.u8(),
            },
            4 | 5 => ReasmOp::Segment {
                seq: input.u32(),
                flags: input.u8(),
                len: input.u16(),
                mode: input.u8(),
            },
            6 => ReasmOp::Advance(input.u8()),
            _ => ReasmOp::Transmit,
        }
    }

    /// Write it so that [`ReasmOp::read`] reads it back.
    pub fn write(&self, out: &mut Output) {
        match *self {
            ReasmOp::Video {
                id,
                total,
                size,
                index,
                mode,
                fec,
            } => {
                out.u8(0)
                    .u32(id)
                    .u32(total)
                    .u16(size)
                    .u16(index)
                    .u8(mode)
                    .u8(fec);
            }
            ReasmOp::Segment {
                seq,
                flags,
                len,
                mode,
            } => {
                out.u8(4).u32(seq).u8(flags).u16(len).u8(mode);
            }
            ReasmOp::Advance(step) => {
                out.u8(6).u8(step);
            }
            ReasmOp::Transmit => {
                out.u8(7);
            }
        }
    }
}

/// The configuration byte of `reassembly`: slots `1 + (b & 3)`, largest video message from
/// bits 2 to 4 (1, 64, 1000, 4096, 20000, 65536, 300000, 1 MiB), largest storage message from
/// bits 5 and 6 (1, 100, 5000, 65536), and from bit 7 the most parity fragments a video
/// message may have (64, else 4096, the largest allowed).
pub fn reasm_config(b: u8) -> Config {
    const VIDEO: [usize; 8] = [1, 64, 1000, 4096, 20_000, 65_536, 300_000, 1 << 20];
    const STORAGE: [usize; 4] = [1, 100, 5000, 65_536];
    Config {
        video_reassembly_slots: 1 + usize::from(b & 3),
        max_video_message: VIDEO[usize::from((b >> 2) & 7)],
        max_storage_message: STORAGE[usize::from((b >> 5) & 3)],
        max_video_parity: if b & 0x80 == 0 { 64 } else { 4096 },
        ..Config::default()
    }
}

/// The bound on `Link::reassembly_bytes` that `config` implies: every video slot full
/// (message and parity shards, `Config::max_video_reassembly_bytes`), a whole storage
/// message being assembled, a full receive window (64 segments) of the largest segments
/// a datagram can carry, and what a storage receiver keeps for repair frames: each of the
/// `REASM_MAX_OPS` operations at most one segment delivered or one parity shard.
pub fn reassembly_bound(config: &Config) -> usize {
    config.max_video_reassembly_bytes()
        + config.max_storage_message
        + (64 + REASM_MAX_OPS) * MAX_SEGMENT_DATA
}

/// Operations per input in `reassembly`.
const REASM_MAX_OPS: usize = 256;

/// `reassembly`: arbitrary sequences of video fragments and storage segments (consistent or
/// not, any ids, lengths, indices, sequence numbers and flags, duplicates, gaps), sealed and
/// delivered to a remote made with `Link::from_secret` under one of several configurations,
/// with time steps.
///
/// Parity fragments (`mode` bit 6) carry the genuine parity of the message their header
/// describes when the receiver may accept it (at most 64 parity fragments, a message within
/// `max_video_message`); otherwise zeros, counted as corrupt.
///
/// Asserts: nothing panics; after every step `Link::reassembly_bytes()` stays within
/// [`reassembly_bound`] (and within `Config::max_video_reassembly_bytes` while no storage
/// segment was sent); every video message delivered is exactly the content of a message
/// that was sent with that length (never a mix, never corrupt, unless some of its fragments
/// were sent corrupt), whether all its data fragments arrived or some were recovered from
/// parity.
pub fn reassembly(data: &[u8]) {
    let mut input = Input::new(data);
    let config = reasm_config(input.u8());
    let bound = reassembly_bound(&config);
    let video_bound = config.max_video_reassembly_bytes();
    // The parity shards of each (id, total, count, parity) message, computed once.
    let mut parity_cache: HashMap<(u32, u32, u16, u16), Option<Vec<u8>>> = HashMap::new();
    let mut encoder = FecEncoder::default();
    let indices = (LOCAL_INDEX, PEER_INDEX);
    let mut link: Link = secret_link(Role::Remote, config.clone(), SECRET, indices, 2);
    let sealer: Sealer = Sealer::new(Role::Aircraft, SECRET);
    let mut now = T0;
    let mut counter = 0u64;
    let mut next_seq = 0u32;
    let mut storage_sent = false;
    // (message id, total length) of every fragment sent, and whether any was corrupt.
    let mut video_sent: HashMap<u32, Vec<(u32, bool)>> = HashMap::new();
    for _ in 0..REASM_MAX_OPS {
        if input.is_empty() {
            break;
        }
        let frame = match ReasmOp::read(&mut input) {
            ReasmOp::Video {
                id,
                total,
                size,
                index,
                mode,
                fec,
            } => {
                let id = if mode & 1 != 0 { id } else { id % 16 };
                let parity = match mode >> 6 {
                    0 | 2 => 0,
                    1 => u16::from(fec),
                    _ => u16::from_be_bytes([fec, fec]),
                };
                let max = u32::try_from(config.max_video_message).unwrap_or(u32::MAX);
                let total = match (mode >> 1) & 3 {
                    0 => total % max + 1,
                    1 => max.saturating_sub(total % 16).max(1),
                    2 => max.saturating_add(1 + total % 16),
                    _ => total,
                };
                let (count, index) = if mode & 8 == 0 {
                    let count = FragmentHeader::count_for(total as usize, usize::from(size.max(1)))
                        .unwrap_or(1);
                    let all = u32::from(count) + u32::from(parity);
                    (count, (u32::from(index) % all) as u16)
                } else {
                    (size, index)
                };
                let h = FragmentHeader {
                    message_id: id,
                    total_len: total,
                    index,
                    count,
                    parity,
                };
                let mut corrupt = mode & 16 != 0;
                let seed = id ^ total.rotate_left(16);
                let mut body = vec![0u8; FragmentHeader::LEN];
                h.emit(&mut body).expect("fits");
                if h.is_parity() {
                    let shards = parity_cache
                        .entry((id, total, count, parity))
                        .or_insert_with(|| {
                            genuine_parity(&mut encoder, &config, seed, total, count, parity)
                        });
                    let shard = h.shard_len();
                    let start = usize::from(h.index - h.count) * shard;
                    match shards.as_ref().and_then(|s| s.get(start..start + shard)) {
                        Some(bytes) => body.extend(
                            bytes
                                .iter()
                                .take(MAX_FRAGMENT_DATA)
                                .map(|b| b ^ u8::from(corrupt)),
                        ),
                        None => {
                            corrupt = true;
                            body.resize(FragmentHeader::LEN + shard.min(MAX_FRAGMENT_DATA), 0);
                        }
                    }
                } else {
                    let r = h.range();
                    let end = r.end.min(r.start + MAX_FRAGMENT_DATA);
                    body.extend(
                        (r.start..end.max(r.start)).map(|p| pattern(seed, p) ^ u8::from(corrupt)),
                    );
                }
                if mode & 32 != 0 && body.len() < MAX_PAYLOAD_LEN - TAG_LEN {
                    body.push(0);
                }
                video_sent.entry(total).or_default().push((id, corrupt));
                Some((body, FrameType::Data, Channel::Video as u8))
            }
            ReasmOp::Segment {
                seq,
                flags,
                len,
                mode,
            } if mode & 0x80 != 0 => {
                let parity = u16::from(flags % 16) + 1;
                let header = RepairHeader {
                    first_seq: if mode & 1 != 0 {
                        seq
                    } else {
                        next_seq.wrapping_sub(seq % 70)
                    },
                    count: len % 128 + 1,
                    parity,
                    index: (seq >> 8) as u16 % parity,
                };
                let mut body = vec![0u8; RepairHeader::LEN];
                header.emit(&mut body).expect("fits");
                let shard_len = 2 + 2 * usize::from((len >> 7) % 340);
                body.extend((0..shard_len).map(|p| pattern(seq, p)));
                storage_sent = true;
                Some((body, FrameType::Repair, 0))
            }
            ReasmOp::Segment {
                seq,
                flags,
                len,
                mode,
            } => {
                let seq = if mode & 1 != 0 {
                    seq
                } else if mode & 2 != 0 {
                    next_seq
                } else {
                    next_seq.wrapping_add(seq % 70)
                };
                if seq == next_seq {
                    next_seq = next_seq.wrapping_add(1);
                }
                let flags = if mode & 4 != 0 { flags } else { flags & 3 };
                let mut body = vec![0u8; SegmentHeader::LEN];
                SegmentHeader { seq, flags }.emit(&mut body).expect("fits");
                let len = usize::from(len) % (MAX_SEGMENT_DATA + 1);
                body.extend((0..len).map(|p| pattern(seq, p)));
                storage_sent = true;
                Some((body, FrameType::Data, Channel::Storage as u8))
            }
            ReasmOp::Advance(step) => {
                now = now + time_step(step);
                link.handle_timeout(now);
                None
            }
            ReasmOp::Transmit => {
                transmit_all(&mut link, now);
                None
            }
        };
        if let Some((body, frame_type, channel)) = frame {
            let header = header_bytes(frame_type as u8, 0, channel, LOCAL_INDEX, counter);
            let d = sealer.seal(&header, counter, &body);
            counter += 1;
            let _ = link.handle_datagram(now, source_for(link.role()), &d);
        }
        for e in drain(&mut link) {
            if let Seen::Message(Channel::Video, message) = e {
                let total = u32::try_from(message.len()).expect("bounded");
                let candidates = video_sent.get(&total).map_or(&[][..], |v| &v[..]);
                let genuine = candidates.iter().any(|&(id, corrupt)| {
                    let seed = id ^ total.rotate_left(16);
                    corrupt
                        || message
                            .iter()
                            .enumerate()
                            .all(|(p, &b)| b == pattern(seed, p))
                });
                assert!(
                    genuine,
                    "a video message of {total} bytes that was never sent"
                );
            }
        }
        let held = link.reassembly_bytes();
        assert!(held <= bound, "{held} bytes held, over the bound {bound}");
        if !storage_sent {
            assert!(
                held <= video_bound,
                "{held} bytes held for video, over {video_bound}"
            );
        }
    }
}

/// The parity shards of the `total`-byte message of `seed`'s pattern cut into `count`
/// fragments, when the `reassembly` receiver could accept them (at most 64 of them, a
/// message within `max_video_message`); `None` otherwise, or if the code refuses the layout.
fn genuine_parity(
    encoder: &mut FecEncoder,
    config: &Config,
    seed: u32,
    total: u32,
    count: u16,
    parity: u16,
) -> Option<Vec<u8>> {
    let total = total as usize;
    if parity == 0 || parity > 64 || total > config.max_video_message {
        return None;
    }
    let message: Vec<u8> = (0..total).map(|p| pattern(seed, p)).collect();
    let mut out = Vec::new();
    encoder.encode(&message, count, parity, &mut out).ok()?;
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// structured

/// One operation of `structured`. `side` picks an end by its lowest bit: 0 the aircraft, 1
/// the remote; for queue operations, the queue of datagrams that end has sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetOp {
    /// The application sends a message: `which % 5` is control (remote), telemetry, video,
    /// storage (aircraft), storage (remote); `len` its length (modulo the channel's maximum).
    Send {
        /// Which channel and end.
        which: u8,
        /// Length.
        len: u16,
    },
    /// Queue up to `count + 1` datagrams the end has to send.
    Transmit {
        /// Which end.
        side: u8,
        /// How many.
        count: u8,
    },
    /// Deliver the `index`th queued datagram (reordering).
    Deliver {
        /// Whose queue.
        side: u8,
        /// Which.
        index: u8,
    },
    /// Deliver the `count + 1` oldest queued datagrams, in order.
    DeliverFront {
        /// Whose queue.
        side: u8,
        /// How many.
        count: u8,
    },
    /// Lose the `index`th queued datagram.
    Drop {
        /// Whose queue.
        side: u8,
        /// Which.
        index: u8,
    },
    /// Deliver a copy of the `index`th queued datagram and keep it queued.
    Duplicate {
        /// Whose queue.
        side: u8,
        /// Which.
        index: u8,
    },
    /// Deliver a copy of the `index`th queued datagram with the bits of `bit | 1` flipped at
    /// `pos`, and keep the original queued.
    Corrupt {
        /// Whose queue.
        side: u8,
        /// Which.
        index: u8,
        /// Where.
        pos: u16,
        /// Which bits.
        bit: u8,
    },
    /// Let time pass and run both ends' timers.
    Advance(u8),
    /// Exchange everything, losslessly, until both ends are quiet (no time passes).
    Flush,
    /// Deliver these bytes to the end.
    Raw {
        /// Which end.
        side: u8,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// The end closes the link.
    Close(u8),
}

/// Largest `Raw` datagram of `structured`.
const NET_RAW_MAX: usize = 512;

impl NetOp {
    /// Read one operation.
    pub fn read(input: &mut Input<'_>) -> Self {
        match input.u8() % 16 {
            0..=2 => NetOp::Send {
                which: input.u8(),
                len: input.u16(),
            },
            3 | 4 => NetOp::Transmit {
                side: input.u8(),
                count: input.u8(),
            },
            5 => NetOp::Deliver {
                side: input.u8(),
                index: input.u8(),
            },
            6 | 7 => NetOp::DeliverFront {
                side: input.u8(),
                count: input.u8(),
            },
            8 => NetOp::Drop {
                side: input.u8(),
                index: input.u8(),
            },
            9 => NetOp::Duplicate {
                side: input.u8(),
                index: input.u8(),
            },
            10 => NetOp::Corrupt {
                side: input.u8(),
                index: input.u8(),
                pos: input.u16(),
                bit: input.u8(),
            },
            11 | 12 => NetOp::Advance(input.u8()),
            13 => NetOp::Flush,
            14 => NetOp::Raw {
                side: input.u8(),
                bytes: input.bytes(NET_RAW_MAX),
            },
            _ => NetOp::Close(input.u8()),
        }
    }

    /// Write it so that [`NetOp::read`] reads it back.
    pub fn write(&self, out: &mut Output) {
        match self {
            NetOp::Send { which, len } => {
                out.u8(0).u8(*which).u16(*len);
            }
            NetOp::Transmit { side, count } => {
                out.u8(3).u8(*side).u8(*count);
            }
            NetOp::Deliver { side, index } => {
                out.u8(5).u8(*side).u8(*index);
            }
            NetOp::DeliverFront { side, count } => {
                out.u8(6).u8(*side).u8(*count);
            }
            NetOp::Drop { side, index } => {
                out.u8(8).u8(*side).u8(*index);
            }
            NetOp::Duplicate { side, index } => {
                out.u8(9).u8(*side).u8(*index);
            }
            NetOp::Corrupt {
                side,
                index,
                pos,
                bit,
            } => {
                out.u8(10).u8(*side).u8(*index).u16(*pos).u8(*bit);
            }
            NetOp::Advance(step) => {
                out.u8(11).u8(*step);
            }
            NetOp::Flush => {
                out.u8(13);
            }
            NetOp::Raw { side, bytes } => {
                out.u8(14).u8(*side).bytes(bytes, NET_RAW_MAX);
            }
            NetOp::Close(side) => {
                out.u8(15).u8(*side);
            }
        }
    }
}

/// The two configuration bytes of `structured`. First byte: MTU (bits 0-1: 256, 400, 1400,
/// 600), storage window (bits 2-3: 64, 128, 4096, 256), key update after (bits 4-5: 2^22, 16, 64,
/// 5 frames), replay window (bit 6: 2048, 64). Second byte: video slots `1 + (b & 3)`, largest
/// video message (bits 2-3: 5000, 5, 20000, 1300), largest storage message (bits 4-5: 3000,
/// 5, 200, 20000).
pub fn net_config(a: u8, b: u8) -> Config {
    Config {
        mtu: [256, 400, 1400, 600][usize::from(a & 3)],
        storage_window: [64, 128, 4096, 256][usize::from((a >> 2) & 3)],
        rekey_after_packets: [1 << 22, 16, 64, 5][usize::from((a >> 4) & 3)],
        replay_window: [2048, 64][usize::from((a >> 6) & 1)],
        video_reassembly_slots: 1 + usize::from(b & 3),
        max_video_message: [5000, 5, 20_000, 1300][usize::from((b >> 2) & 3)],
        max_storage_message: [3000, 5, 200, 20_000][usize::from((b >> 4) & 3)],
        ..Config::default()
    }
}

/// Operations per input in `structured`.
const NET_MAX_OPS: usize = 256;
/// Bytes the application may send in one `structured` run (keeps runs fast).
const NET_SEND_BUDGET: usize = 256 * 1024;
/// Rounds of 10 ms the final lossless exchange may take.
const SETTLE_ROUNDS: usize = 3000;

/// A message sent in `structured`.
struct SentMessage {
    from: Role,
    channel: Channel,
    data: Vec<u8>,
}

/// Two real ends and the air between them.
struct Net {
    air: Link,
    rc: Link,
    now: Timestamp,
    /// Datagrams in flight from the aircraft and from the remote.
    from_air: VecDeque<Vec<u8>>,
    from_rc: VecDeque<Vec<u8>>,
    sent: HashMap<u32, SentMessage>,
    next_tag: u32,
    budget: usize,
    /// Storage messages sent by the aircraft (0) and the remote (1), by tag, in order, and how
    /// many of each were delivered.
    storage_sent: [Vec<u32>; 2],
    storage_delivered: [usize; 2],
    /// Newest control message delivered.
    last_control: Option<u32>,
    /// Telemetry and video messages delivered.
    delivered: HashSet<u32>,
}

fn side(b: u8) -> Role {
    if b & 1 == 0 {
        Role::Aircraft
    } else {
        Role::Remote
    }
}

fn dir(role: Role) -> usize {
    match role {
        Role::Aircraft => 0,
        Role::Remote => 1,
    }
}

impl Net {
    fn new(config: &Config, secret: [u8; 32]) -> Self {
        let (air, rc) = ((PEER_INDEX, LOCAL_INDEX), (LOCAL_INDEX, PEER_INDEX));
        Net {
            air: secret_link(Role::Aircraft, config.clone(), secret, air, 3),
            rc: secret_link(Role::Remote, config.clone(), secret, rc, 4),
            now: T0,
            from_air: VecDeque::new(),
            from_rc: VecDeque::new(),
            sent: HashMap::new(),
            next_tag: 0,
            budget: NET_SEND_BUDGET,
            storage_sent: [Vec::new(), Vec::new()],
            storage_delivered: [0, 0],
            last_control: None,
            delivered: HashSet::new(),
        }
    }

    fn link(&mut self, role: Role) -> &mut Link {
        match role {
            Role::Aircraft => &mut self.air,
            Role::Remote => &mut self.rc,
        }
    }

    fn queue(&mut self, role: Role) -> &mut VecDeque<Vec<u8>> {
        match role {
            Role::Aircraft => &mut self.from_air,
            Role::Remote => &mut self.from_rc,
        }
    }

    fn run(&mut self, op: NetOp) {
        match op {
            NetOp::Send { which, len } => self.send(which, len),
            NetOp::Transmit { side: s, count } => {
                self.transmit(side(s), usize::from(count) + 1);
            }
            NetOp::Deliver { side: s, index } => {
                let q = self.queue(side(s));
                if !q.is_empty() {
                    let i = usize::from(index) % q.len();
                    if let Some(d) = q.remove(i) {
                        self.deliver(side(s).peer(), &d);
                    }
                }
            }
            NetOp::DeliverFront { side: s, count } => {
                for _ in 0..=count {
                    let Some(d) = self.queue(side(s)).pop_front() else {
                        break;
                    };
                    self.deliver(side(s).peer(), &d);
                }
            }
            NetOp::Drop { side: s, index } => {
                let q = self.queue(side(s));
                if !q.is_empty() {
                    let i = usize::from(index) % q.len();
                    q.remove(i);
                }
            }
            NetOp::Duplicate { side: s, index } => {
                let q = self.queue(side(s));
                if !q.is_empty() {
                    let d = q[usize::from(index) % q.len()].clone();
                    self.deliver(side(s).peer(), &d);
                }
            }
            NetOp::Corrupt {
                side: s,
                index,
                pos,
                bit,
            } => {
                let q = self.queue(side(s));
                if !q.is_empty() {
                    let mut d = q[usize::from(index) % q.len()].clone();
                    let at = usize::from(pos) % d.len();
                    d[at] ^= bit | 1;
                    self.deliver(side(s).peer(), &d);
                }
            }
            NetOp::Advance(step) => self.advance(time_step(step)),
            NetOp::Flush => self.flush(),
            NetOp::Raw { side: s, bytes } => self.deliver(side(s), &bytes),
            NetOp::Close(s) => self.link(side(s)).close(CloseCode::NORMAL),
        }
    }

    fn send(&mut self, which: u8, len: u16) {
        let (from, channel) = match which % 5 {
            0 => (Role::Remote, Channel::Control),
            1 => (Role::Aircraft, Channel::Telemetry),
            2 => (Role::Aircraft, Channel::Video),
            3 => (Role::Aircraft, Channel::Storage),
            _ => (Role::Remote, Channel::Storage),
        };
        let config = self.air.config();
        let max = match channel {
            Channel::Control => config.max_control_message,
            Channel::Telemetry => config.max_plaintext(),
            Channel::Video => config.max_video_message,
            _ => config.max_storage_message,
        };
        if max < 5 {
            return;
        }
        let len = 5 + usize::from(len) % (max - 4);
        if len > self.budget {
            return;
        }
        let tag = self.next_tag;
        let mut data = tag.to_be_bytes().to_vec();
        data.push(channel as u8);
        data.extend((5..len).map(|p| pattern(tag, p)));
        if self.link(from).send(channel, &data).is_ok() {
            self.budget -= len;
            self.next_tag += 1;
            if channel == Channel::Storage {
                self.storage_sent[dir(from)].push(tag);
            }
            self.sent.insert(
                tag,
                SentMessage {
                    from,
                    channel,
                    data,
                },
            );
        }
    }

    /// Queue up to `max` datagrams `role` has to send.
    fn transmit(&mut self, role: Role, max: usize) -> usize {
        let now = self.now;
        let mut buf = vec![0u8; MAX_DATAGRAM_LEN];
        let mut n = 0;
        while n < max {
            let Some(t) = self.link(role).poll_transmit(now, &mut buf) else {
                break;
            };
            let d = buf[..t.len].to_vec();
            self.queue(role).push_back(d);
            n += 1;
            assert!(n < 200_000, "poll_transmit never runs dry");
        }
        self.check(role);
        n
    }

    fn deliver(&mut self, to: Role, d: &[u8]) {
        let now = self.now;
        let _ = self.link(to).handle_datagram(now, source_for(to), d);
        self.check(to);
    }

    fn advance(&mut self, dt: Duration) {
        self.now = self.now + dt;
        let now = self.now;
        self.air.handle_timeout(now);
        self.rc.handle_timeout(now);
        self.check(Role::Aircraft);
        self.check(Role::Remote);
    }

    /// Exchange everything until both ends are quiet.
    fn flush(&mut self) {
        for _ in 0..64 {
            let mut moved = self.transmit(Role::Aircraft, usize::MAX);
            moved += self.transmit(Role::Remote, usize::MAX);
            for from in [Role::Aircraft, Role::Remote] {
                while let Some(d) = self.queue(from).pop_front() {
                    self.deliver(from.peer(), &d);
                    moved += 1;
                }
            }
            if moved == 0 {
                break;
            }
        }
    }

    /// Every message `role` delivered was sent, by the other end, on that channel, as it is;
    /// storage in order and exactly once, control newest first, the others at most once.
    fn check(&mut self, role: Role) {
        for e in drain(self.link(role)) {
            let (channel, data) = match e {
                Seen::Message(channel, data) => (channel, data),
                Seen::Connected | Seen::Bonded => panic!("a handshake event without handshake"),
                Seen::Other => continue,
            };
            assert!(data.len() >= 5, "a message that was never sent: {data:?}");
            let tag = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let sent = self
                .sent
                .get(&tag)
                .unwrap_or_else(|| panic!("message {tag} was never sent"));
            assert_eq!(
                sent.from,
                role.peer(),
                "message {tag} delivered to its sender"
            );
            assert_eq!(sent.channel, channel, "message {tag} on another channel");
            assert!(sent.data == data, "message {tag} delivered altered");
            match channel {
                Channel::Storage => {
                    let d = dir(sent.from);
                    let next = self.storage_sent[d].get(self.storage_delivered[d]);
                    assert_eq!(next, Some(&tag), "storage out of order or twice");
                    self.storage_delivered[d] += 1;
                }
                Channel::Control => {
                    assert!(
                        self.last_control.is_none_or(|last| tag > last),
                        "control message {tag} after a newer one"
                    );
                    self.last_control = Some(tag);
                }
                _ => assert!(self.delivered.insert(tag), "message {tag} delivered twice"),
            }
        }
    }

    /// Has an end stopped for good? Closed, or its session ended (worn-out keys: a link made
    /// from a secret has no handshake to start another).
    fn stopped(&self) -> bool {
        let ended = |link: &Link| link.is_closed() || !link.is_connected();
        ended(&self.air) || ended(&self.rc)
    }

    /// Run a lossless exchange; then, if neither end stopped, every storage message must have
    /// been delivered.
    fn settle(&mut self) {
        for _ in 0..SETTLE_ROUNDS {
            if self.stopped() {
                return;
            }
            self.flush();
            let done = (0..2).all(|d| self.storage_delivered[d] == self.storage_sent[d].len());
            if done {
                return;
            }
            self.advance(Duration::from_millis(10));
        }
        if !self.stopped() {
            panic!(
                "storage never completed on a lossless link: delivered {:?} of {:?} messages \
                 (paths: aircraft {:?}, remote {:?})",
                self.storage_delivered,
                [self.storage_sent[0].len(), self.storage_sent[1].len()],
                self.air.path_estimate(),
                self.rc.path_estimate()
            );
        }
    }
}

/// `structured`: two real ends (`Link::from_secret`, aircraft and remote, under one of many
/// configurations: MTU, storage window, frequent key updates, small replay window, message
/// limits) and the air between them, driven by a sequence of operations: the application
/// sends on every channel, the ends transmit, and the air delivers, reorders, loses,
/// duplicates and corrupts datagrams, time passes, garbage arrives, an end closes. At the end
/// a lossless exchange runs until storage completes.
///
/// Asserts: every message delivered was sent, by the other end, on that channel, unaltered;
/// storage messages arrive in order and exactly once, and all of them once the air stops
/// losing (unless an end closed); control messages arrive newest first (latest wins, never a
/// stale or repeated one); telemetry and video at most once.
pub fn structured(data: &[u8]) {
    let mut input = Input::new(data);
    let config = net_config(input.u8(), input.u8());
    let mut net = Net::new(&config, input_secret(b"structured", data));
    for _ in 0..NET_MAX_OPS {
        if input.is_empty() {
            break;
        }
        net.run(NetOp::read(&mut input));
    }
    net.settle();
}

// ---------------------------------------------------------------------------------------------
// fec

/// Largest message of the `fec` target.
const FEC_MAX_MESSAGE: usize = 8192;
/// Most data fragments of a message in the `fec` target.
const FEC_MAX_COUNT: usize = 128;
/// Most messages per input in the `fec` target (the codecs are reused between them). Every
/// recovery costs the same whatever the message (the decoder evaluates a polynomial over all
/// of GF(2^16)), so more would only slow the target down.
const FEC_MAX_MESSAGES: usize = 2;
/// What a missing data fragment holds before recovery.
const FEC_JUNK: u8 = 0xee;

/// `fec`: the video erasure code on its own, `FecEncoder` and `FecDecoder`, the same two
/// (reused, as a link reuses them) for up to two messages per input. Each message: a length
/// and fragment size (at most 8192 bytes and 128 data fragments), a parity count (0 to 64),
/// content from a seed; which data fragments arrived (one bit each); and for each parity
/// fragment whether it arrived and how (genuine, one byte flipped, a byte short, a byte too
/// long, an index past the parity count, twice), then up to four arbitrary shards.
///
/// Asserts: nothing panics; the encoder refuses exactly the `(count, parity)` pairs
/// `fec_supports` refuses (and parity 0), and otherwise gives `parity` shards of
/// `shard_len` bytes; a failed recovery leaves the message as it was; a successful one
/// changes only the missing fragments; with only genuine shards (distinct, in range) and at
/// least `count` fragments in all, recovery succeeds and gives the message back exactly;
/// with fewer than `count` distinct fragments it fails.
pub fn fec(data: &[u8]) {
    let mut input = Input::new(data);
    let mut encoder = FecEncoder::default();
    let mut decoder = FecDecoder::default();
    for _ in 0..FEC_MAX_MESSAGES {
        if input.is_empty() {
            break;
        }
        fec_message(&mut input, &mut encoder, &mut decoder);
    }
}

/// One message of the `fec` target.
fn fec_message(input: &mut Input<'_>, encoder: &mut FecEncoder, decoder: &mut FecDecoder) {
    let total = usize::from(input.u16()) % FEC_MAX_MESSAGE + 1;
    let size =
        (usize::from(input.u16()) % MAX_FRAGMENT_DATA + 1).max(total.div_ceil(FEC_MAX_COUNT));
    let count = FragmentHeader::count_for(total, size).expect("at most 128 fragments");
    let parity = u16::from(input.u8() % 65);
    let seed = input.u32();
    let message: Vec<u8> = (0..total).map(|p| pattern(seed, p)).collect();
    let layout = FragmentHeader {
        message_id: 0,
        total_len: u32::try_from(total).expect("small"),
        index: 0,
        count,
        parity,
    };
    let shard_len = layout.shard_len();
    let mut shards = Vec::new();
    let encoded = encoder.encode(&message, count, parity, &mut shards);
    if parity == 0 || !fec_supports(count, parity) {
        assert!(encoded.is_err(), "parity for an unsupported code");
        assert!(shards.is_empty(), "a refused encoding wrote parity");
        return;
    }
    assert_eq!(encoded, Ok(()), "the encoder refused a supported code");
    assert_eq!(shards.len(), usize::from(parity) * shard_len);

    // Which data fragments arrived: one bit each.
    let mut have = vec![false; usize::from(count)];
    for chunk in have.chunks_mut(8) {
        let bits = input.u8();
        for (i, h) in chunk.iter_mut().enumerate() {
            *h = bits & (1 << i) != 0;
        }
    }
    // Which parity fragments arrived, and how.
    let mut supplied: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut genuine = true;
    for (j, shard) in shards.chunks(shard_len).enumerate() {
        let j = u16::try_from(j).expect("at most 64");
        let how = input.u8();
        let mut bytes = shard.to_vec();
        match how % 8 {
            0 | 1 => continue,
            2 | 3 => {}
            4 => {
                let at = usize::from(how >> 3) % shard_len;
                bytes[at] ^= 1 | (how & 0xf0);
                genuine = false;
            }
            5 => {
                bytes.pop();
                genuine = false;
            }
            6 => {
                bytes.push(how);
                genuine = false;
            }
            _ => {
                // Past the parity count, or the same shard twice.
                if how & 0x80 != 0 {
                    supplied.push((parity + u16::from(how & 0x0f), bytes));
                } else {
                    supplied.push((j, bytes.clone()));
                    supplied.push((j, bytes));
                }
                genuine = false;
                continue;
            }
        }
        supplied.push((j, bytes));
    }
    for _ in 0..input.u8() % 5 {
        let index = input.u16();
        let bytes = input.bytes(2 * shard_len + 2);
        supplied.push((index, bytes));
        genuine = false;
    }

    let mut received = message.clone();
    for (index, &h) in (0..count).zip(&have) {
        if !h {
            received[FragmentHeader { index, ..layout }.range()].fill(FEC_JUNK);
        }
    }
    let before = received.clone();
    let result = decoder.recover(
        &mut received,
        count,
        parity,
        |i| have[usize::from(i)],
        supplied.iter().map(|(i, b)| (*i, &b[..])),
    );
    let present = have.iter().filter(|&&h| h).count();
    let distinct: BTreeSet<u16> = supplied
        .iter()
        .filter(|(i, b)| *i < parity && b.len() == shard_len)
        .map(|(i, _)| *i)
        .collect();
    match result {
        Ok(()) => {
            for (index, &h) in (0..count).zip(&have) {
                let r = FragmentHeader { index, ..layout }.range();
                if h {
                    assert_eq!(
                        received[r.clone()],
                        before[r],
                        "recovery changed fragment {index}, which had arrived"
                    );
                }
            }
        }
        Err(_) => assert_eq!(received, before, "a failed recovery changed the message"),
    }
    if genuine && present + distinct.len() >= usize::from(count) {
        assert_eq!(
            result,
            Ok(()),
            "genuine shards, {present} fragments and {} parity of {count}: not recovered",
            distinct.len()
        );
        assert!(
            received == message,
            "recovered from genuine shards, but wrong"
        );
    }
    if present < usize::from(count) && present + distinct.len() < usize::from(count) {
        assert!(
            result.is_err(),
            "recovered {count} fragments from {present} and {} parity",
            distinct.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// session_message

/// `session_message`: arbitrary bytes into `SessionMessage::parse`, the parser of the
/// session channel's messages (key update, storage unlock), which `session_recv` reaches only
/// behind an authentic frame and the reliable channel; and messages built from the input's
/// bytes.
///
/// Asserts: nothing panics; a parsed message emits exactly the bytes it was parsed from (one
/// encoding per message: no trailing bytes, an unlock outcome of 0 or 1), and re-parses to
/// itself; a message built from any field values emits and parses back to itself.
pub fn session_message(data: &[u8]) {
    if let Ok(m) = SessionMessage::parse(data) {
        let mut out = Vec::new();
        m.emit(&mut out);
        assert_eq!(SessionMessage::parse(&out), Ok(m), "emit, parse");
        assert_eq!(out, data, "{m:?} does not emit its own bytes");
    }
    let mut input = Input::new(data);
    let key = {
        let mut k = [0u8; 32];
        k.iter_mut().for_each(|b| *b = input.u8());
        k
    };
    let bytes = input.bytes(MAX_PAYLOAD_LEN);
    let (a, b, c) = (input.u32(), input.u32(), input.u8());
    for m in [
        SessionMessage::KeyUpdateRequest(key),
        SessionMessage::KeyUpdateResponse(key),
        SessionMessage::UnlockInit(&bytes),
        SessionMessage::UnlockResponse {
            remaining: a,
            ke2: &bytes,
        },
        SessionMessage::UnlockFinish(&bytes),
        SessionMessage::UnlockResult {
            ok: c & 1 != 0,
            remaining: a,
        },
        SessionMessage::UnlockRefused {
            reason: c,
            remaining: a,
            retry_after_ms: b,
        },
    ] {
        let mut out = Vec::new();
        m.emit(&mut out);
        assert_eq!(SessionMessage::parse(&out), Ok(m), "built, emitted, parsed");
    }
}

// ---------------------------------------------------------------------------------------------
// stored

/// Longest aircraft identity `stored` reads: room for 16 bonds.
const STORED_AIRCRAFT_MAX: usize = 1 + 16 + 32 + 4 + 12 + 4 + pake::PASSWORD_FILE_LEN + 4 + 16 * 32;

/// Genuine persisted identities, for the `stored` target's seeds: the handshake targets'
/// aircraft before and after its pairing, and the remote before and after.
pub fn identity_examples() -> [(&'static str, Vec<u8>); 4] {
    let f = fixture();
    [
        ("aircraft-fresh", f.fresh_aircraft.clone()),
        ("aircraft-bonded", f.bonded_aircraft.clone()),
        ("remote-fresh", f.fresh_remote.clone()),
        ("remote-bonded", f.bonded_remote.clone()),
    ]
}

/// `stored`: arbitrary bytes into the parsers of what the ends persist:
/// `AircraftIdentity::from_bytes`, `RemoteIdentity::from_bytes`, `PasswordFile::from_bytes`
/// and `AttemptRecord::from_bytes`. The first byte picks the parser (bits 0 and 1); with bit 7
/// set, the attempt record's checksum is fixed up first (a version 1 or 2 record of the right
/// length gets the SHA-256 prefix of its body), so mutations get past it.
///
/// Aircraft identities longer than 16 bonds are not read (each bond costs an X25519).
///
/// Asserts: nothing panics; an identity or password file that parses writes back exactly the
/// bytes it was read from; an attempt record of version 2 too, and one of version 1 reads
/// with no unlock failures and writes back as version 2 with the same fields; what is
/// written back parses again to the same.
pub fn stored(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    match mode & 3 {
        // Reading an aircraft identity computes one X25519 per bond: past a few bonds, a
        // longer input runs the same code, only slower (4 KB inputs, 120 bonds, cut the
        // target's rate from 65,000 to 9,000 executions a second).
        0 if bytes.len() <= STORED_AIRCRAFT_MAX => {
            if let Ok(identity) = AircraftIdentity::from_bytes(bytes) {
                let out = identity.to_bytes();
                // Format 1 (no handshake timestamps) is read and written as format 2 with
                // zero timestamps; only the current format must come back byte for byte.
                if bytes.first() == out.first() {
                    assert_eq!(
                        &out[..],
                        bytes,
                        "an aircraft identity writes back other bytes"
                    );
                }
                let again = AircraftIdentity::from_bytes(&out).expect("written back, parses");
                assert_eq!(again.to_bytes(), out);
                assert_eq!(again.static_public(), identity.static_public());
            }
        }
        1 => {
            if let Ok(identity) = RemoteIdentity::from_bytes(bytes) {
                let out = identity.to_bytes();
                assert_eq!(&out[..], bytes, "a remote identity writes back other bytes");
                let again = RemoteIdentity::from_bytes(&out).expect("written back, parses");
                assert_eq!(again.bond(), identity.bond());
                assert_eq!(again.static_public(), identity.static_public());
            }
        }
        2 => {
            if let Ok(file) = PasswordFile::from_bytes(bytes) {
                let out = file.to_bytes();
                assert_eq!(&out[..], bytes, "a password file writes back other bytes");
                let again = PasswordFile::from_bytes(&out).expect("written back, parses");
                assert_eq!(again.to_bytes(), out);
            }
        }
        0 => {}
        _ => {
            let mut bytes = bytes.to_vec();
            if mode & 0x80 != 0 {
                let body = match (bytes.first(), bytes.len()) {
                    (Some(2), RECORD_LEN) => Some(RECORD_LEN - 4),
                    (Some(1), 26) => Some(22),
                    _ => None,
                };
                if let Some(body) = body {
                    let sum = Sha256::digest(&bytes[..body]);
                    bytes[body..].copy_from_slice(&sum[..4]);
                }
            }
            if let Ok(record) = AttemptRecord::from_bytes(&bytes) {
                let out = record.to_bytes();
                if bytes[0] == 2 {
                    assert_eq!(
                        &out[..],
                        &bytes[..],
                        "an attempt record writes back other bytes"
                    );
                } else {
                    assert_eq!(record.unlock_failures, 0, "a version 1 record");
                    assert_eq!(out[0], 2);
                    assert_eq!(&out[1..22], &bytes[1..22], "a version 1 record's fields");
                }
                assert_eq!(AttemptRecord::from_bytes(&out), Ok(record));
            }
        }
    }
}
