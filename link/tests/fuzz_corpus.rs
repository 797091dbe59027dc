//! The fuzz targets' committed inputs, replayed without a fuzzer.
//!
//! Every file under `fuzz/corpus/<target>/` (the seed corpus) and `fuzz/regressions/<target>/`
//! (inputs that once crashed a target) is run through that target's body, the same function
//! the libFuzzer target runs (`fuzz/src/targets.rs`, included here by path), so a regression is
//! caught by `cargo test --workspace`. The seeds themselves are built here, from the
//! known-answer vectors of PROTOCOL.md and from real handshakes:
//!
//! ```text
//! cargo test -p rotorlink --test fuzz_corpus -- --ignored write_seed_corpus
//! ```
//!
//! rewrites `fuzz/corpus/<target>/seed-*` (the files libFuzzer adds while fuzzing are not
//! committed; see the "Fuzzing" section of README.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::handshake::{AircraftIdentity, KsfParams, MemoryAttemptStore, RemoteIdentity};
use rotorlink::{Config, Link, Timestamp};

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../fuzz/src/targets.rs"]
mod targets;

use targets::{
    hs_mode, recv_mode, HsOp, Input, Mutation, NetOp, Output, ReasmOp, RecvOp, SealSpec,
};

mod protocol_vectors {
    use std::collections::BTreeMap;
    include!("common/protocol_vectors.rs");
}
use protocol_vectors::Vectors;

const PROTOCOL_MD: &str = include_str!("../../PROTOCOL.md");

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The committed inputs of `target`: its seed corpus and its regressions, by path.
fn committed(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("read a corpus file");
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_committed_fuzz_input_passes_its_target() {
    for (name, target) in targets::TARGETS {
        let inputs = committed(name);
        assert!(
            inputs
                .iter()
                .any(|(p, _)| p.to_string_lossy().contains("corpus")),
            "no seed corpus for fuzz target {name}: run this file's write_seed_corpus"
        );
        for (path, bytes) in inputs {
            let run = std::panic::catch_unwind(|| target(&bytes));
            assert!(
                run.is_ok(),
                "fuzz target {name} fails on {}",
                path.display()
            );
        }
    }
}

#[test]
fn fresh_seeds_pass_their_targets() {
    for (name, seed, bytes) in seeds() {
        let target = targets::TARGETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .expect("a seed for a known target");
        let run = std::panic::catch_unwind(|| target(&bytes));
        assert!(run.is_ok(), "fuzz target {name} fails on seed {seed}");
    }
}

#[test]
fn operations_read_back_as_written() {
    let mutation = Mutation {
        kind: 2,
        pos: 300,
        value: 7,
    };
    let hs = [
        HsOp::Raw {
            fix: 0x1f,
            bytes: vec![1, 2, 3],
        },
        HsOp::PumpPeer,
        HsOp::ForwardPeer(mutation),
        HsOp::PumpTarget,
        HsOp::ForwardTarget(Mutation::NONE),
        HsOp::Advance(9),
        HsOp::Restart(2),
        HsOp::Replay { index: 3, mutation },
    ];
    let mut out = Output::default();
    hs.iter().for_each(|op| op.write(&mut out));
    let mut input = Input::new(&out.0);
    for op in &hs {
        assert_eq!(&HsOp::read(&mut input), op);
    }
    assert!(input.is_empty());

    let recv = [
        RecvOp::Seal(SealSpec {
            shape: 3,
            channel: 4,
            counter_mode: 1,
            counter_arg: u64::MAX,
            body_mode: 6,
            a: 1,
            b: 2,
            c: 3,
            d: 4,
            bytes: vec![9; 40],
        }),
        RecvOp::Replay(7),
        RecvOp::Mutate { index: 1, mutation },
        RecvOp::Raw {
            fix: 7,
            bytes: vec![0; 20],
        },
        RecvOp::Advance(1),
        RecvOp::Transmit,
    ];
    let mut out = Output::default();
    recv.iter().for_each(|op| op.write(&mut out));
    let mut input = Input::new(&out.0);
    for op in &recv {
        assert_eq!(&RecvOp::read(&mut input), op);
    }
    assert!(input.is_empty());

    let reasm = [
        ReasmOp::Video {
            id: 1,
            total: 2,
            size: 3,
            index: 4,
            mode: 5,
        },
        ReasmOp::Segment {
            seq: 6,
            flags: 7,
            len: 8,
            mode: 9,
        },
        ReasmOp::Advance(10),
        ReasmOp::Transmit,
    ];
    let mut out = Output::default();
    reasm.iter().for_each(|op| op.write(&mut out));
    let mut input = Input::new(&out.0);
    for op in &reasm {
        assert_eq!(&ReasmOp::read(&mut input), op);
    }
    assert!(input.is_empty());

    let net = [
        NetOp::Send { which: 3, len: 999 },
        NetOp::Transmit { side: 1, count: 2 },
        NetOp::Deliver { side: 0, index: 5 },
        NetOp::DeliverFront { side: 1, count: 0 },
        NetOp::Drop { side: 0, index: 1 },
        NetOp::Duplicate { side: 1, index: 2 },
        NetOp::Corrupt {
            side: 0,
            index: 3,
            pos: 17,
            bit: 0x40,
        },
        NetOp::Advance(4),
        NetOp::Flush,
        NetOp::Raw {
            side: 1,
            bytes: vec![1; 30],
        },
        NetOp::Close(0),
    ];
    let mut out = Output::default();
    net.iter().for_each(|op| op.write(&mut out));
    let mut input = Input::new(&out.0);
    for op in &net {
        assert_eq!(&NetOp::read(&mut input), op);
    }
    assert!(input.is_empty());
}

/// Rewrite the seed corpus: `fuzz/corpus/<target>/seed-<name>`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing the targets or the seeds"]
fn write_seed_corpus() {
    let mut written = BTreeMap::new();
    for (name, seed, bytes) in seeds() {
        let dir = fuzz_dir().join("corpus").join(name);
        if !written.contains_key(name) {
            // Replace the old seeds, keep anything else in the directory.
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().starts_with("seed-") {
                        std::fs::remove_file(entry.path()).expect("remove an old seed");
                    }
                }
            }
            std::fs::create_dir_all(&dir).expect("create the corpus directory");
        }
        std::fs::write(dir.join(format!("seed-{seed}")), bytes).expect("write a seed");
        *written.entry(name).or_insert(0) += 1;
    }
    println!("{written:?}");
}

// ---------------------------------------------------------------------------------------------
// The seeds

/// Every seed: target, name, input.
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let v = Vectors::load(PROTOCOL_MD);
    let transcript = real_transcript();
    let mut out = Vec::new();
    frame_decode_seeds(&v, &transcript, &mut out);
    handshake_seeds(&v, &transcript, &mut out);
    session_recv_seeds(&v, &mut out);
    reassembly_seeds(&mut out);
    structured_seeds(&mut out);
    out
}

type Seeds = Vec<(&'static str, String, Vec<u8>)>;

/// The frame vectors of PROTOCOL.md, by name.
const FRAME_VECTORS: [&str; 11] = [
    "control",
    "keepalive",
    "video_0",
    "video_1",
    "storage_0",
    "storage_1",
    "ack",
    "close",
    "hs_init",
    "hs_response",
    "hs_finish",
];

/// The handshake datagrams of a real pairing and a refused session, in order, named.
fn real_transcript() -> Vec<(String, Vec<u8>)> {
    let config = Config {
        ksf: KsfParams::INSECURE_FAST,
        ..Config::default()
    };
    let link_id = *b"rotorlink-seeds1";
    let now = Timestamp::from_millis(1);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let identity =
        AircraftIdentity::provision(link_id, b"246813", config.ksf, &mut rng).expect("provision");
    let attempts = Box::new(MemoryAttemptStore::new());
    let mut air: Link =
        Link::aircraft(config.clone(), identity, attempts, &mut rng, now).expect("aircraft");
    let rc_identity = RemoteIdentity::generate(&mut rng);
    let mut rc: Link =
        Link::remote(config.clone(), rc_identity, link_id, &mut rng, now).expect("remote");
    rc.pair(
        b"246813",
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        now,
    )
    .expect("pair");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    for round in 0..4 {
        while let Some(t) = rc.poll_transmit(now, &mut buf) {
            out.push((format!("pair-remote-{round}"), buf[..t.len].to_vec()));
            let _ = air.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                &buf[..t.len],
            );
        }
        while let Some(t) = air.poll_transmit(now, &mut buf) {
            out.push((format!("pair-aircraft-{round}"), buf[..t.len].to_vec()));
            let _ = rc.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                &buf[..t.len],
            );
        }
    }
    assert!(air.is_connected() && rc.is_connected());
    // A remote the aircraft has no bond with: refused.
    let mut stranger_identity = RemoteIdentity::generate(&mut rng);
    if let Some(bond) = rc.remote_identity().and_then(|r| r.bond()) {
        stranger_identity.set_bond(*bond);
    }
    let mut stranger: Link =
        Link::remote(config, stranger_identity, link_id, &mut rng, now).expect("remote");
    stranger
        .connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), now)
        .expect("connect");
    while let Some(t) = stranger.poll_transmit(now, &mut buf) {
        out.push(("session-stranger".into(), buf[..t.len].to_vec()));
        let _ = air.handle_datagram(
            now,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &buf[..t.len],
        );
    }
    while let Some(t) = air.poll_transmit(now, &mut buf) {
        out.push(("refusal".into(), buf[..t.len].to_vec()));
    }
    out
}

fn frame_decode_seeds(v: &Vectors, transcript: &[(String, Vec<u8>)], out: &mut Seeds) {
    for name in FRAME_VECTORS {
        let datagram = v.get(&format!("{name}_datagram")).to_vec();
        out.push(("frame_decode", format!("vector-{name}"), datagram));
        if !name.starts_with("hs_") {
            let plaintext = v.get(&format!("{name}_plaintext")).to_vec();
            if !plaintext.is_empty() {
                out.push(("frame_decode", format!("plaintext-{name}"), plaintext));
            }
        }
    }
    for (i, (name, datagram)) in transcript.iter().enumerate() {
        out.push((
            "frame_decode",
            format!("real-{i:02}-{name}"),
            datagram.clone(),
        ));
    }
}

fn ops<T>(mode: &[u8], ops: &[T], write: impl Fn(&T, &mut Output)) -> Vec<u8> {
    let mut out = Output(mode.to_vec());
    for op in ops {
        write(op, &mut out);
    }
    out.0
}

fn hs(mode: u8, list: &[HsOp]) -> Vec<u8> {
    ops(&[mode], list, HsOp::write)
}

/// Deliver the genuine peer's next datagram, unaltered.
const FORWARD: HsOp = HsOp::ForwardPeer(Mutation::NONE);
/// Deliver the target's next datagram to the peer, unaltered.
const BACK: HsOp = HsOp::ForwardTarget(Mutation::NONE);

fn handshake_seeds(v: &Vectors, transcript: &[(String, Vec<u8>)], out: &mut Seeds) {
    use HsOp::*;
    let flip = Mutation {
        kind: 2,
        pos: 40,
        value: 0x10,
    };
    // The aircraft under test; the genuine remote's frames forwarded.
    let exchange = [
        PumpPeer,
        FORWARD,
        PumpTarget,
        BACK,
        PumpPeer,
        FORWARD,
        PumpTarget,
        BACK,
        PumpPeer,
        FORWARD,
        Advance(2),
        PumpTarget,
        BACK,
    ];
    for (name, mode) in [
        ("session", hs_mode(true, 0)),
        ("pair", hs_mode(false, 1)),
        ("pair-wrong-code", hs_mode(false, 2)),
        ("pair-again", hs_mode(true, 1)),
    ] {
        out.push((
            "handshake_aircraft",
            format!("genuine-{name}"),
            hs(mode, &exchange),
        ));
    }
    let tampered = [
        PumpPeer,
        ForwardPeer(flip),
        Replay {
            index: 0,
            mutation: Mutation::NONE,
        },
        PumpTarget,
        BACK,
        PumpPeer,
        ForwardPeer(Mutation {
            kind: 3,
            pos: 30,
            value: 0,
        }),
        Replay {
            index: 1,
            mutation: Mutation::NONE,
        },
        Advance(4),
        Restart(0),
        PumpPeer,
        FORWARD,
        PumpTarget,
        Advance(6),
        Advance(7),
    ];
    out.push((
        "handshake_aircraft",
        "tampered-session".into(),
        hs(hs_mode(true, 0), &tampered),
    ));
    let mut raws = Vec::new();
    for name in ["hs_init", "hs_finish", "hs_response"] {
        let bytes = v.get(&format!("{name}_datagram")).to_vec();
        raws.push(Raw {
            fix: 0,
            bytes: bytes.clone(),
        });
        raws.push(Raw { fix: 4 | 16, bytes });
    }
    for (_, bytes) in transcript {
        raws.push(Raw {
            fix: 2 | 4 | 8 | 16,
            bytes: bytes.clone(),
        });
    }
    out.push((
        "handshake_aircraft",
        "raw-vectors".into(),
        hs(hs_mode(true, 3), &raws),
    ));
    let mut lockout = Vec::new();
    for _ in 0..5 {
        lockout.extend([PumpPeer, FORWARD, PumpTarget, BACK, Advance(4), Restart(2)]);
    }
    out.push((
        "handshake_aircraft",
        "lockout".into(),
        hs(hs_mode(false, 2), &lockout),
    ));

    // The remote under test (its first Init is already queued); the genuine aircraft's frames
    // forwarded.
    let exchange = [
        BACK,
        PumpPeer,
        FORWARD,
        PumpTarget,
        BACK,
        PumpPeer,
        FORWARD,
        PumpTarget,
        BACK,
        PumpPeer,
        FORWARD,
        Advance(2),
    ];
    for (name, mode) in [
        ("session", hs_mode(true, 0)),
        ("pair", hs_mode(false, 1)),
        ("pair-wrong-code", hs_mode(false, 2)),
        ("unknown-bond", hs_mode(false, 0)),
    ] {
        out.push((
            "handshake_remote",
            format!("genuine-{name}"),
            hs(mode, &exchange),
        ));
    }
    // A session, then silence: the remote resumes by itself.
    let mut resume = exchange.to_vec();
    resume.extend([Advance(4), Advance(4), PumpTarget]);
    resume.extend(exchange);
    out.push((
        "handshake_remote",
        "resume".into(),
        hs(hs_mode(true, 0), &resume),
    ));
    let mut raws = Vec::new();
    for name in ["hs_response", "hs_init", "hs_finish"] {
        let bytes = v.get(&format!("{name}_datagram")).to_vec();
        raws.push(Raw { fix: 4, bytes });
    }
    for (name, bytes) in transcript {
        if name.contains("aircraft") || name == "refusal" {
            raws.push(Raw {
                fix: 4,
                bytes: bytes.clone(),
            });
        }
    }
    out.push((
        "handshake_remote",
        "raw-vectors".into(),
        hs(hs_mode(true, 0), &raws),
    ));
    let tampered = [
        BACK,
        PumpPeer,
        ForwardPeer(flip),
        Replay {
            index: 0,
            mutation: Mutation::NONE,
        },
        Advance(1),
        PumpTarget,
        BACK,
        PumpPeer,
        FORWARD,
        Restart(1),
        PumpTarget,
        BACK,
        PumpPeer,
        FORWARD,
    ];
    out.push((
        "handshake_remote",
        "tampered".into(),
        hs(hs_mode(true, 0), &tampered),
    ));
}

fn seal(shape: u8, channel: u8, body_mode: u8, bytes: &[u8]) -> RecvOp {
    RecvOp::Seal(SealSpec {
        shape,
        channel,
        body_mode,
        bytes: bytes.to_vec(),
        ..SealSpec::default()
    })
}

fn session_recv_seeds(v: &Vectors, out: &mut Seeds) {
    let recv = |mode: u8, list: &[RecvOp]| ops(&[mode], list, RecvOp::write);
    // The aircraft receives control, storage and session messages.
    let key_update = {
        let mut m = vec![1u8];
        m.extend_from_slice(&[9u8; 32]);
        m
    };
    let aircraft = [
        seal(0, 1, 0, b"throttle 40%"),
        seal(0, 1, 0, b"yaw 3"),
        seal(0, 4, 0, b"\x03LIST /logs"),
        RecvOp::Seal(SealSpec {
            shape: 0,
            channel: 4,
            c: 3,
            bytes: b"GET /logs/0007.bin".to_vec(),
            ..SealSpec::default()
        }),
        RecvOp::Seal(SealSpec {
            shape: 0,
            channel: 0,
            c: 3,
            bytes: key_update,
            ..SealSpec::default()
        }),
        seal(4, 0, 0, b""),
        seal(5, 0, 0, b""),
        RecvOp::Transmit,
        RecvOp::Replay(0),
        RecvOp::Replay(3),
        RecvOp::Mutate {
            index: 1,
            mutation: Mutation {
                kind: 2,
                pos: 20,
                value: 1,
            },
        },
        RecvOp::Advance(3),
        seal(6, 0, 0, b""),
        seal(0, 1, 0, b"after close"),
    ];
    out.push((
        "session_recv",
        "aircraft".into(),
        recv(recv_mode(false, 0, false, false), &aircraft),
    ));
    // The remote receives telemetry and video, counters out of order.
    let counter = |mode: u8, arg: u64, channel: u8, bytes: &[u8]| {
        RecvOp::Seal(SealSpec {
            shape: 0,
            channel,
            counter_mode: mode,
            counter_arg: arg,
            b: 210,
            c: 106,
            d: 0,
            bytes: bytes.to_vec(),
            ..SealSpec::default()
        })
    };
    let remote = [
        counter(0, 0, 2, b"alt 120m"),
        counter(1, 3000, 2, b"alt 121m"),
        counter(3, 100, 2, b"late"),
        counter(3, 3000, 2, b"too old"),
        counter(2, 0, 2, b"duplicate"),
        counter(0, 0, 3, b""),
        counter(4, 5, 3, b""),
        counter(5, 0, 2, b"max"),
        RecvOp::Transmit,
        RecvOp::Advance(6),
        RecvOp::Advance(6),
        counter(0, 0, 2, b"expired"),
    ];
    out.push((
        "session_recv",
        "remote".into(),
        recv(recv_mode(true, 0, false, false), &remote),
    ));
    let mut many = Vec::new();
    for i in 0..60u8 {
        many.push(seal(0, 1, 0, &[i]));
        if i % 10 == 0 {
            many.push(RecvOp::Transmit);
        }
    }
    out.push((
        "session_recv",
        "key-limits".into(),
        recv(recv_mode(false, 1, true, false), &many),
    ));
    let mut raw = Vec::new();
    for name in FRAME_VECTORS {
        raw.push(RecvOp::Raw {
            fix: 4,
            bytes: v.get(&format!("{name}_datagram")).to_vec(),
        });
    }
    out.push((
        "session_recv",
        "raw-vectors".into(),
        recv(recv_mode(false, 2, false, false), &raw),
    ));
    // The null AEAD: the same frames (sealed with a zero tag), and raw frames given a zero tag.
    let mut null = aircraft.to_vec();
    null.extend(remote);
    for name in ["control", "storage_0", "ack", "close"] {
        null.push(RecvOp::Raw {
            fix: 4 | 8,
            bytes: v.get(&format!("{name}_datagram")).to_vec(),
        });
    }
    out.push((
        "session_recv",
        "null-aead".into(),
        recv(recv_mode(false, 0, true, true), &null),
    ));
}

fn reassembly_seeds(out: &mut Seeds) {
    let reasm = |config: u8, list: &[ReasmOp]| ops(&[config], list, ReasmOp::write);
    let video = |id: u32, total: u32, size: u16, index: u16| ReasmOp::Video {
        id,
        total,
        size,
        index,
        mode: 0,
    };
    let segment = |seq: u32, flags: u8, len: u16| ReasmOp::Segment {
        seq,
        flags,
        len,
        mode: 0,
    };
    // Config: 4 slots, 4096-byte video, 5000-byte storage.
    let config = 3 | (3 << 2) | (2 << 5);
    let mut list = Vec::new();
    for i in 0..4 {
        list.push(video(1, 4000, 1000, i));
    }
    for i in (0..4).rev() {
        list.push(video(2, 3000, 700, i));
    }
    for id in 3..9 {
        list.push(video(id, 4096, 1000, 0));
    }
    list.push(ReasmOp::Advance(3));
    list.push(video(9, 1, 1, 0));
    list.extend([
        segment(0, 1, 1000),
        segment(1, 0, 1000),
        segment(3, 2, 10),
        segment(2, 0, 1000),
        segment(2, 0, 1000),
        segment(60, 3, 5000),
        ReasmOp::Transmit,
    ]);
    out.push(("reassembly", "mixed".into(), reasm(config, &list)));
    // The default limits (4 slots of 1 MiB): a large message, then a flood of new ids.
    let config = 3 | (7 << 2) | (3 << 5);
    let mut list = Vec::new();
    for i in 0..8 {
        list.push(video(1, 1 << 20, 16000, i));
    }
    for id in 2..12 {
        list.push(ReasmOp::Video {
            id,
            total: 0,
            size: 16000,
            index: 0,
            mode: 2,
        });
    }
    for seq in 1..64 {
        list.push(ReasmOp::Segment {
            seq,
            flags: 0,
            len: 16_345, // the most a datagram holds
            mode: 1,
        });
    }
    out.push(("reassembly", "limits".into(), reasm(config, &list)));
}

fn structured_seeds(out: &mut Seeds) {
    use NetOp::*;
    let net = |a: u8, b: u8, list: &[NetOp]| ops(&[a, b], list, NetOp::write);
    let mut clean = Vec::new();
    for which in 0..5u8 {
        clean.push(Send {
            which,
            len: 900 + u16::from(which),
        });
    }
    clean.extend([Flush, Advance(3), Flush]);
    out.push(("structured", "clean".into(), net(0, 0, &clean)));
    let mut lossy = Vec::new();
    for round in 0..12u8 {
        lossy.push(Send {
            which: round,
            len: 3000,
        });
        lossy.push(Send {
            which: round + 3,
            len: 100,
        });
        lossy.extend([
            Transmit { side: 0, count: 7 },
            Transmit { side: 1, count: 7 },
            Drop { side: 0, index: 1 },
            Duplicate { side: 0, index: 2 },
            Deliver { side: 0, index: 3 },
            Corrupt {
                side: 1,
                index: 0,
                pos: 30,
                bit: 4,
            },
            DeliverFront { side: 0, count: 5 },
            DeliverFront { side: 1, count: 5 },
            Advance(2),
        ]);
    }
    // MTU 256, storage window 4, a key update every 16 frames, replay window 64.
    let config = 2 << 2 | 1 << 4 | 1 << 6;
    out.push((
        "structured",
        "lossy-rekeying".into(),
        net(config, 1, &lossy),
    ));
    let mut late = clean.clone();
    late.extend([
        Send { which: 3, len: 50 },
        Transmit { side: 0, count: 3 },
        Advance(6),
        Flush,
        DeliverFront { side: 0, count: 3 },
        Raw {
            side: 1,
            bytes: vec![1, 0x10, 0, 3, 0, 0, 0, 0],
        },
        Close(1),
        Flush,
    ]);
    out.push((
        "structured",
        "late-and-closed".into(),
        net(2, 2 << 4, &late),
    ));
}
