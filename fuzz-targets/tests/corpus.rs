//! The fuzz targets' committed inputs, replayed without a fuzzer, and the seeds.
//!
//! Every file under `fuzz/corpus/<target>/` (the seed corpus) and `fuzz/regressions/<target>/`
//! (inputs that once crashed a target) is run through that target's body, the same function
//! `fuzz/fuzz_targets/<target>.rs` runs under libFuzzer, so a regression is caught by
//! `cargo test --workspace`. Each target has its own tests: `committed::<target>` replays its
//! committed inputs, `fresh_seeds::<target>` the seeds as [`seeds`] builds them today. The
//! seeds are built from the known-answer vectors of PROTOCOL.md and from real handshakes:
//!
//! ```text
//! cargo test -p rotorlink-fuzz-targets --test corpus -- --ignored write_seed_corpus
//! ```
//!
//! rewrites `fuzz/corpus/<target>/seed-*` (the files libFuzzer adds while fuzzing are not
//! committed; see the "Fuzzing" section of README.md).

use std::collections::{BTreeMap, BTreeSet};
use std::panic::catch_unwind;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::handshake::limits::AttemptRecord;
use rotorlink::handshake::{pake, AircraftIdentity, KsfParams, MemoryAttemptStore, RemoteIdentity};
use rotorlink::wire::session::SessionMessage;
use rotorlink::{Config, Link, Timestamp};
use rotorlink_fuzz_targets::{
    hs_mode, identity_examples, recv_mode, HsOp, Input, Mutation, NetOp, Output, ReasmOp, RecvOp,
    SealSpec, Target, TARGETS,
};

const PROTOCOL_MD: &str = include_str!("../../PROTOCOL.md");

/// The committed corpora: `fuzz/` beside this crate.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The directories under `fuzz/` that hold committed inputs, one subdirectory per target.
const COMMITTED_DIRS: [&str; 2] = ["corpus", "regressions"];

/// The committed inputs of `target` in `fuzz/<dir>/<target>/`, by path (none if there is no
/// such directory).
fn committed(dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read a corpus file");
            out.push((path, bytes));
        }
    }
    out.sort();
    out
}

/// `path` as `fuzz/...`, for messages.
fn shown(path: &Path) -> String {
    let inside = path.strip_prefix(fuzz_dir()).unwrap_or(path);
    format!("fuzz/{}", inside.display())
}

/// The target called `name` in [`TARGETS`].
fn target(name: &str) -> Target {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no fuzz target {name} in TARGETS"))
}

/// Run `target` on every input; panic naming every input it fails on (each failure's own panic
/// message is printed above).
fn replay<'a>(name: &str, inputs: impl IntoIterator<Item = (String, &'a [u8])>) {
    let target = target(name);
    let mut runs = 0;
    let mut failed = Vec::new();
    for (what, bytes) in inputs {
        runs += 1;
        if catch_unwind(|| target(bytes)).is_err() {
            failed.push(what);
        }
    }
    assert!(
        failed.is_empty(),
        "fuzz target {name} fails on {} of {runs} inputs:\n  {}",
        failed.len(),
        failed.join("\n  ")
    );
}

/// Replay the seed corpus and the regressions of the target `name`.
fn replay_committed(name: &str) {
    let seeds = committed("corpus", name);
    assert!(
        !seeds.is_empty(),
        "no seed corpus for fuzz target {name}: run this file's write_seed_corpus"
    );
    let regressions = committed("regressions", name);
    replay(
        name,
        seeds
            .iter()
            .chain(&regressions)
            .map(|(path, bytes)| (shown(path), bytes.as_slice())),
    );
}

/// Replay the seeds [`seeds`] builds for the target `name`.
fn replay_fresh_seeds(name: &str) {
    let seeds: Vec<_> = seeds().iter().filter(|(n, _, _)| *n == name).collect();
    assert!(!seeds.is_empty(), "seeds() builds no seed for {name}");
    replay(
        name,
        seeds
            .into_iter()
            .map(|(_, seed, bytes)| (format!("seed {seed}"), bytes.as_slice())),
    );
}

/// The replay tests, one per target in each of `committed` and `fresh_seeds`. Keep the list
/// equal to `TARGETS` (`every_target_is_replayed` checks).
macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        /// The targets that have replay tests.
        const REPLAYED: &[&str] = &[$(stringify!($name)),*];

        /// Every committed input of a target (`fuzz/corpus/<target>/`,
        /// `fuzz/regressions/<target>/`) passes it.
        mod committed {
            $(
                #[test]
                fn $name() {
                    super::replay_committed(stringify!($name));
                }
            )*
        }

        /// The seeds as built today pass their target.
        mod fresh_seeds {
            $(
                #[test]
                fn $name() {
                    super::replay_fresh_seeds(stringify!($name));
                }
            )*
        }
    };
}

replay_tests!(
    frame_decode,
    handshake_aircraft,
    handshake_remote,
    session_recv,
    reassembly,
    structured,
    fec,
    session_message,
    stored,
);

#[test]
fn every_target_is_replayed() {
    let targets: BTreeSet<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    let replayed: BTreeSet<&str> = REPLAYED.iter().copied().collect();
    assert_eq!(
        targets, replayed,
        "the replay_tests! list in this file differs from TARGETS"
    );
    assert_eq!(REPLAYED.len(), replayed.len(), "a target listed twice");
}

/// A corpus or regression directory named after no target would never be replayed.
#[test]
fn every_committed_directory_is_a_target() {
    for dir in COMMITTED_DIRS {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir)) else {
            assert_ne!(dir, "corpus", "no fuzz/corpus directory");
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().expect("a name").to_string_lossy();
            assert!(
                path.is_dir() && TARGETS.iter().any(|(target, _)| *target == name),
                "fuzz/{dir}/{name} is not the directory of a fuzz target: \
                 inputs belong in fuzz/{dir}/<target>/"
            );
        }
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
            fec: 11,
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
    for &(name, ref seed, ref bytes) in seeds() {
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

/// Every seed: target, name, input. Built once, shared by the tests.
fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let v = Vectors::load(PROTOCOL_MD);
        let transcript = real_transcript();
        let mut out = Vec::new();
        frame_decode_seeds(&v, &transcript, &mut out);
        handshake_seeds(&v, &transcript, &mut out);
        session_recv_seeds(&v, &mut out);
        reassembly_seeds(&mut out);
        structured_seeds(&mut out);
        fec_seeds(&mut out);
        session_message_seeds(&mut out);
        stored_seeds(&mut out);
        out
    })
}

type Seeds = Vec<(&'static str, String, Vec<u8>)>;

/// The known-answer vectors of PROTOCOL.md, by name: every line `name = hex` inside a fenced
/// ```` ```vectors ```` block. rotorlink's own tests check the vectors (strictly, with
/// `link/tests/common/protocol_vectors.rs`); the seeds only need their bytes.
struct Vectors(BTreeMap<&'static str, Vec<u8>>);

impl Vectors {
    /// Parse `markdown` (PROTOCOL.md).
    fn load(markdown: &'static str) -> Self {
        let mut vectors = BTreeMap::new();
        // Inside a fenced block: `Some(true)` if it is a vectors block.
        let mut fence: Option<bool> = None;
        for (number, line) in markdown.lines().enumerate() {
            let line = line.trim();
            if let Some(info) = line.strip_prefix("```") {
                fence = match fence {
                    None => Some(info.trim() == "vectors"),
                    Some(_) => None,
                };
                continue;
            }
            if fence != Some(true) || line.is_empty() {
                continue;
            }
            let at = number + 1;
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("PROTOCOL.md:{at}: not `name = hex`"));
            let bytes = hex::decode(value.trim())
                .unwrap_or_else(|e| panic!("PROTOCOL.md:{at}: {}: {e}", name.trim()));
            vectors.insert(name.trim(), bytes);
        }
        Vectors(vectors)
    }

    /// The vector `name`; panics if PROTOCOL.md has none.
    fn get(&self, name: &str) -> &[u8] {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("PROTOCOL.md has no vector {name}"))
    }
}

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
    air.open_pairing_window(std::time::Duration::from_secs(3600), now)
        .expect("aircraft");
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
        fec: 0,
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
            fec: 0,
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
    // Forward error correction: a 4000-byte message in 4 data and 3 parity fragments, of
    // which 2 data ones are lost (recovered from parity), then one with a forged parity
    // count, and one with more parity than the receiver accepts.
    let config = 3 | (3 << 2) | (2 << 5);
    let fec = |id: u32, index: u16, mode: u8, fec: u8| ReasmOp::Video {
        id,
        total: 3999,
        size: 1000,
        index,
        mode: 0x40 | mode,
        fec,
    };
    let list = [
        fec(1, 0, 0, 3),
        fec(1, 4, 0, 3),
        fec(1, 2, 0, 3),
        fec(1, 6, 0, 3),
        fec(1, 5, 0, 3),
        fec(2, 5, 0x80, 0xff),
        fec(3, 4, 0, 200),
        fec(4, 4, 0x10, 2),
        fec(4, 0, 0, 2),
        fec(4, 1, 0, 2),
        fec(4, 2, 0, 2),
    ];
    out.push(("reassembly", "fec".into(), reasm(config, &list)));
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

/// One message of the `fec` target: length, fragment size, parity, content seed, which data
/// fragments arrived (a bit each), how each parity fragment arrives (see `fec`: 0 lost,
/// 2 genuine, 4 a byte flipped, 5 a byte short, 6 a byte long, 7 twice, 0x87 a bad index),
/// and no extra shards.
fn fec_op(out: &mut Output, total: u16, size: u16, parity: u8, have: &[u8], how: &[u8]) {
    out.u16(total - 1)
        .u16(size - 1)
        .u8(parity)
        .u32(0x5eed_0000 ^ u32::from(total));
    for &bits in have {
        out.u8(bits);
    }
    for &h in how {
        out.u8(h);
    }
    out.u8(0);
}

fn fec_seeds(out: &mut Seeds) {
    let one = |name: &str, total, size, parity, have: &[u8], how: &[u8], out: &mut Seeds| {
        let mut o = Output::default();
        fec_op(&mut o, total, size, parity, have, how);
        out.push(("fec", name.to_string(), o.0));
    };
    // 10 fragments of 300 bytes.
    one("no-parity", 3000, 300, 0, &[0xff, 0x03], &[], out);
    one(
        "lose-two-of-ten",
        3000,
        300,
        4,
        &[0xfc, 0x03],
        &[2, 2, 0, 2],
        out,
    );
    one(
        "lose-five-of-ten",
        3000,
        300,
        4,
        &[0x1f, 0x00],
        &[2, 2, 2, 2],
        out,
    );
    one(
        "corrupt-parity",
        3000,
        300,
        4,
        &[0xfe, 0x03],
        &[4, 2, 2, 2],
        out,
    );
    one("short-shard", 3000, 300, 2, &[0xfe, 0x03], &[5, 2], out);
    one("long-shard", 3000, 300, 2, &[0xfe, 0x03], &[6, 2], out);
    one("bad-index", 3000, 300, 2, &[0xfe, 0x03], &[0x87, 2], out);
    one("duplicate", 3000, 300, 2, &[0xfc, 0x03], &[7, 0], out);
    // Odd fragment size (padded shards), a short last fragment.
    one("odd-size", 1001, 77, 3, &[0xf5, 0x1f], &[2, 2, 2], out);
    // 128 fragments of 64 bytes, 64 parity, half the data lost.
    let mut how = vec![2u8; 64];
    how[63] = 0;
    one("wide", 8192, 64, 64, &[0x55; 16], &how, out);
    // One fragment.
    one("single", 40, 1000, 1, &[0x00], &[2], out);
    // Four messages through the same codecs.
    let mut o = Output::default();
    fec_op(&mut o, 3000, 300, 4, &[0xfc, 0x03], &[2, 2, 0, 2]);
    fec_op(&mut o, 1001, 77, 3, &[0xf5, 0x1f], &[2, 2, 2]);
    fec_op(&mut o, 500, 100, 2, &[0x1c], &[2, 2]);
    fec_op(&mut o, 3000, 300, 4, &[0xff, 0x00], &[2, 2, 0, 2]);
    out.push(("fec", "reused-codecs".into(), o.0));
}

fn session_message_seeds(out: &mut Seeds) {
    let messages = [
        (
            "key-update-request",
            SessionMessage::KeyUpdateRequest([0x11; 32]),
        ),
        (
            "key-update-response",
            SessionMessage::KeyUpdateResponse([0x22; 32]),
        ),
        (
            "unlock-init",
            SessionMessage::UnlockInit(&[0x33; pake::KE1_LEN]),
        ),
        (
            "unlock-response",
            SessionMessage::UnlockResponse {
                remaining: 9,
                ke2: &[0x44; pake::KE2_LEN],
            },
        ),
        (
            "unlock-finish",
            SessionMessage::UnlockFinish(&[0x55; pake::KE3_LEN]),
        ),
        (
            "unlock-result",
            SessionMessage::UnlockResult {
                ok: true,
                remaining: 10,
            },
        ),
        (
            "unlock-refused",
            SessionMessage::UnlockRefused {
                reason: 2,
                remaining: 0,
                retry_after_ms: 60_000,
            },
        ),
    ];
    for (name, m) in messages {
        let mut bytes = Vec::new();
        m.emit(&mut bytes);
        out.push(("session_message", name.into(), bytes));
    }
}

fn stored_seeds(out: &mut Seeds) {
    let with_mode = |mode: u8, bytes: &[u8]| [&[mode][..], bytes].concat();
    for (name, bytes) in identity_examples() {
        let mode = if name.starts_with("aircraft") { 0 } else { 1 };
        out.push(("stored", name.into(), with_mode(mode, &bytes)));
    }
    let file = pake::provision(
        b"246813",
        KsfParams::INSECURE_FAST,
        &mut ChaCha20Rng::seed_from_u64(11),
    )
    .expect("provision");
    out.push((
        "stored",
        "password-file".into(),
        with_mode(2, &file.to_bytes()),
    ));
    let locked = AttemptRecord {
        failures: 3,
        next_attempt_at: Timestamp::from_millis(5_000),
        locked_until: Some(Timestamp::from_millis(65_000)),
        unlock_failures: 2,
    };
    let open = AttemptRecord {
        failures: 1,
        next_attempt_at: Timestamp::from_millis(1_500),
        locked_until: None,
        unlock_failures: 0,
    };
    for (name, record) in [("record-locked", locked), ("record-open", open)] {
        let bytes = record.to_bytes();
        out.push(("stored", name.into(), with_mode(3, &bytes)));
        // The same with a stale checksum, which bit 7 fixes up.
        let mut stale = bytes;
        stale[1] ^= 0x40;
        out.push(("stored", format!("{name}-fix"), with_mode(0x83, &stale)));
    }
    // A version 1 record (no unlock failures), checksum fixed up by the target.
    let mut v1 = locked.to_bytes()[..26].to_vec();
    v1[0] = 1;
    out.push(("stored", "record-v1".into(), with_mode(0x83, &v1)));
}
