//! The handshake vectors of PROTOCOL.md ("Known-answer vectors", "Session handshake and
//! resume" and "Seeded handshake run").
//!
//! - The session handshake (`Noise_KKpsk0_25519_AESGCM_SHA256`) and the resume
//!   (`Noise_NNpsk0_25519_AESGCM_SHA256`) built from fixed keys through the crate's public
//!   pieces (message formats, `mac1`, the Noise wrapper `handshake::noise` with the
//!   vectors' ephemerals injected as the link injects its own, the key schedule) give
//!   exactly the datagrams, Noise outputs, confirmations, secrets, transcript hashes,
//!   traffic secrets and resumption values listed there. Those were computed independently
//!   of this crate (Python with `noiseprotocol`, appendix of PROTOCOL.md).
//! - The real state machines accept those messages: an aircraft holding the fixed keys
//!   answers the vector `Init` (and refuses it once it is stale), and establishes the session
//!   on a `Finish` computed as the document says from its `Response`; a remote holding the
//!   fixed keys finishes against a `Response` made as the document says, and sends no
//!   application data before the first authenticated frame.
//! - A full seeded run through `Link::aircraft` and `Link::remote` (pairing, a session
//!   handshake after a restart, then a resume) produces handshake datagrams whose SHA-256
//!   hashes are the regression vectors listed. These are not independently derived: OPAQUE
//!   is not re-implemented outside the crate.

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::crypto::{nonce, traffic_key, traffic_secrets, AeadKey, AeadProvider};
use rotorlink::handshake::keys::{
    bond_id, bond_key, keyed_secrets, mac1, mac1_valid, prologue, resumption,
};
use rotorlink::handshake::limits::MemoryAttemptStore;
use rotorlink::handshake::messages::{
    frame, parse_frame, Finish, Init, InitBody, Kind, Response, ResponseBody, MAC1_LEN,
    MESSAGE1_LEN, SUITE_V2,
};
use rotorlink::handshake::noise::{tai64n, Ephemeral, Keys as NoiseKeys, NoiseHandshake, Pattern};
use rotorlink::handshake::{AircraftIdentity, HandshakeError, KsfParams, RemoteIdentity};
use rotorlink::wire::{FrameType, HEADER_LEN, TAG_LEN};
use rotorlink::{Config, Event, Link, RustCrypto, Secret, Timestamp};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

mod protocol_vectors {
    use std::collections::BTreeMap;
    include!("common/protocol_vectors.rs");
}
use protocol_vectors::Vectors;

const PROTOCOL_MD: &str = include_str!("../../PROTOCOL.md");

/// The remote's wall clock at the session `Init`, in microseconds since 1970 (28.4).
const UNIX: u64 = 1_780_000_000_123_456;

/// The fixed keys and indices of the session handshake vectors.
struct Keys {
    link_id: [u8; 16],
    aircraft_static: StaticSecret,
    remote_static: StaticSecret,
    aircraft_index: u32,
    remote_index: u32,
}

impl Keys {
    fn load(v: &Vectors) -> Self {
        let keys = Keys {
            link_id: v.array("hs_link_id"),
            aircraft_static: StaticSecret::from(v.array::<32>("hs_aircraft_static_private")),
            remote_static: StaticSecret::from(v.array::<32>("hs_remote_static_private")),
            aircraft_index: v.u32("aircraft_index"),
            remote_index: v.u32("remote_index"),
        };
        assert_eq!(&keys.link_id, b"rotorlink-kat-01");
        for (name, byte) in [
            ("hs_aircraft_static_private", 0x11),
            ("hs_remote_static_private", 0x22),
            ("hs_remote_ephemeral_private", 0x33),
            ("hs_aircraft_ephemeral_private", 0x44),
            ("rs_remote_ephemeral_private", 0x55),
            ("rs_aircraft_ephemeral_private", 0x66),
        ] {
            assert_eq!(v.array::<32>(name), [byte; 32], "{name}");
        }
        keys
    }
}

/// One keyed handshake built from the document's inputs through the crate's pieces.
struct Built {
    init: Vec<u8>,
    response: Vec<u8>,
    finish: Vec<u8>,
}

/// One end's static private key and its peer's static public key.
type Side<'a> = (&'a StaticSecret, PublicKey);

/// Build a keyed handshake (session or resume) as the document says, checking every
/// intermediate value named `{prefix}_*`. `statics` are the remote's and the aircraft's
/// (static private key, peer static public key) for a session.
#[allow(clippy::too_many_arguments)]
fn build_keyed(
    v: &Vectors,
    prefix: &str,
    kind: Kind,
    link_id: &[u8; 16],
    psk: &Secret,
    body: InitBody<'_>,
    remote_index: u32,
    aircraft_index: u32,
    timestamp_micros: u64,
    statics: Option<(Side<'_>, Side<'_>)>,
) -> Built {
    let (pattern, prologue_label, label) = match kind {
        Kind::Session => (
            Pattern::KKpsk0,
            &b"rotorlink v1 session prologue"[..],
            &b"rotorlink v1 session"[..],
        ),
        _ => (
            Pattern::NNpsk0,
            &b"rotorlink v1 resume prologue"[..],
            &b"rotorlink v1 resume"[..],
        ),
    };
    let get = |name: &str| v.get(&format!("{prefix}_{name}")).to_vec();
    let init = Init {
        suite: SUITE_V2,
        sender_index: remote_index,
        body,
        mac1: [0; MAC1_LEN],
    };
    let mut datagram = frame(FrameType::HandshakeInit, 0, &init.emit());
    let offset = HEADER_LEN + init.noise_offset();
    let prologue = prologue(prologue_label, &datagram[..offset]);
    assert_eq!(prologue, get("prologue"), "{prefix}_prologue");
    let (rc_keys, air_keys) = match &statics {
        Some(((rs, a_pub), (as_, r_pub))) => (
            NoiseKeys {
                psk: psk.expose(),
                local_static: Some(*rs),
                remote_static: Some(a_pub),
            },
            NoiseKeys {
                psk: psk.expose(),
                local_static: Some(*as_),
                remote_static: Some(r_pub),
            },
        ),
        None => (
            NoiseKeys {
                psk: psk.expose(),
                local_static: None,
                remote_static: None,
            },
            NoiseKeys {
                psk: psk.expose(),
                local_static: None,
                remote_static: None,
            },
        ),
    };
    let e_names = match kind {
        Kind::Session => (
            "hs_remote_ephemeral_private",
            "hs_aircraft_ephemeral_private",
        ),
        _ => (
            "rs_remote_ephemeral_private",
            "rs_aircraft_ephemeral_private",
        ),
    };
    let mut rc = NoiseHandshake::initiator(
        pattern,
        &prologue,
        &rc_keys,
        Ephemeral::from_bytes(v.array(e_names.0)),
    )
    .unwrap();
    let mut air = NoiseHandshake::responder(
        pattern,
        &prologue,
        &air_keys,
        Ephemeral::from_bytes(v.array(e_names.1)),
    )
    .unwrap();
    let timestamp = tai64n(timestamp_micros);
    assert_eq!(timestamp.to_vec(), get("timestamp"));
    let message1 = rc.write_message(&timestamp).unwrap();
    assert_eq!(message1, get("noise_message1"));
    assert_eq!(message1.len(), MESSAGE1_LEN);
    datagram[offset..offset + MESSAGE1_LEN].copy_from_slice(&message1);
    let split = datagram.len() - MAC1_LEN;
    let tag = mac1(link_id, psk.expose(), &datagram[..split]);
    assert_eq!(tag.to_vec(), get("mac1"));
    datagram[split..].copy_from_slice(&tag);
    assert_eq!(datagram, get("init_datagram"));
    assert!(mac1_valid(link_id, psk.expose(), &datagram));
    assert_eq!(&air.read_message(&message1).unwrap()[..], &timestamp[..]);

    let message2 = air.write_message(&aircraft_index.to_be_bytes()).unwrap();
    assert_eq!(message2, get("noise_message2"));
    assert_eq!(
        &rc.read_message(&message2).unwrap()[..],
        &aircraft_index.to_be_bytes()
    );
    let response = Response {
        sender_index: aircraft_index,
        body: ResponseBody::Keyed {
            kind,
            message: message2.try_into().unwrap(),
        },
    };
    let response = frame(FrameType::HandshakeResponse, remote_index, &response.emit());
    assert_eq!(response, get("response_datagram"));
    let rc_out = rc.finish().unwrap();
    let air_out = air.finish().unwrap();
    assert_eq!(rc_out.handshake_hash.to_vec(), get("handshake_hash"));
    assert_eq!(air_out.handshake_hash.to_vec(), get("handshake_hash"));
    assert_eq!(rc_out.k1.expose().to_vec(), get("k1"));
    assert_eq!(rc_out.k2.expose().to_vec(), get("k2"));
    assert_eq!(air_out.k1.expose(), rc_out.k1.expose());
    assert_eq!(air_out.k2.expose(), rc_out.k2.expose());
    let s = keyed_secrets(label, &rc_out, &datagram, &response);
    let a = keyed_secrets(label, &air_out, &datagram, &response);
    assert_eq!(s.transcript_hash.to_vec(), get("transcript_hash"));
    assert_eq!(s.confirm_remote.to_vec(), get("confirm_remote"));
    assert_eq!(
        s.handshake_secret.expose().to_vec(),
        get("handshake_secret")
    );
    assert_eq!(a.transcript_hash, s.transcript_hash);
    assert_eq!(a.confirm_remote, s.confirm_remote);
    let finish = Finish::Keyed {
        kind,
        confirm: s.confirm_remote,
    };
    let finish = frame(FrameType::HandshakeFinish, aircraft_index, &finish.emit());
    assert_eq!(finish, get("finish_datagram"));
    let t = traffic_secrets(&s.handshake_secret, &s.transcript_hash);
    let (a2r, r2a) = (t.aircraft_to_remote, t.remote_to_aircraft);
    assert_eq!(a2r.expose().to_vec(), get("a2r_0"));
    assert_eq!(r2a.expose().to_vec(), get("r2a_0"));
    let r = resumption(&s.handshake_secret, &s.transcript_hash);
    assert_eq!(r.ticket.to_vec(), get("resumption_ticket"));
    assert_eq!(r.secret.expose().to_vec(), get("resumption_secret"));
    Built {
        init: datagram,
        response,
        finish,
    }
}

#[test]
fn session_and_resume_vectors_follow_the_message_formats_and_key_schedule() {
    let v = Vectors::load(PROTOCOL_MD);
    let k = Keys::load(&v);
    let aircraft_static = PublicKey::from(&k.aircraft_static);
    let remote_static = PublicKey::from(&k.remote_static);
    v.check("hs_aircraft_static_public", aircraft_static.as_bytes());
    v.check("hs_remote_static_public", remote_static.as_bytes());
    for (private, public) in [
        ("hs_remote_ephemeral_private", "hs_remote_ephemeral_public"),
        (
            "hs_aircraft_ephemeral_private",
            "hs_aircraft_ephemeral_public",
        ),
        ("rs_remote_ephemeral_private", "rs_remote_ephemeral_public"),
        (
            "rs_aircraft_ephemeral_private",
            "rs_aircraft_ephemeral_public",
        ),
    ] {
        let p = PublicKey::from(&StaticSecret::from(v.array::<32>(private)));
        v.check(public, p.as_bytes());
    }
    let id = bond_id(&remote_static);
    v.check("hs_bond_id", &id);
    let key = bond_key(&k.remote_static.diffie_hellman(&aircraft_static));
    assert_eq!(
        key.expose(),
        bond_key(&k.aircraft_static.diffie_hellman(&remote_static)).expose()
    );
    v.check("hs_bond_key", key.expose());

    let session = build_keyed(
        &v,
        "hs",
        Kind::Session,
        &k.link_id,
        &key,
        InitBody::Session {
            bond_id: id,
            message: [0; MESSAGE1_LEN],
        },
        k.remote_index,
        k.aircraft_index,
        UNIX,
        Some((
            (&k.remote_static, aircraft_static),
            (&k.aircraft_static, remote_static),
        )),
    );
    // The datagrams parse back to what was built.
    let (header, payload) = parse_frame(&session.init).unwrap();
    assert_eq!(header.frame_type, FrameType::HandshakeInit);
    let parsed = Init::parse(payload).unwrap();
    assert_eq!(parsed.suite, SUITE_V2);
    assert_eq!(parsed.sender_index, k.remote_index);
    assert_eq!(session.init.len(), 102);
    assert_eq!(session.response.len(), 65);
    assert_eq!(session.finish.len(), 29);
    let (header, payload) = parse_frame(&session.response).unwrap();
    assert_eq!(header.receiver_index, k.remote_index);
    assert!(matches!(
        Response::parse(payload).unwrap().body,
        ResponseBody::Keyed {
            kind: Kind::Session,
            ..
        }
    ));

    let ticket: [u8; 16] = v.array("hs_resumption_ticket");
    let secret = Secret::new(v.array("hs_resumption_secret"));
    let resume = build_keyed(
        &v,
        "rs",
        Kind::Resume,
        &k.link_id,
        &secret,
        InitBody::Resume {
            ticket,
            message: [0; MESSAGE1_LEN],
        },
        v.u32("rs_remote_index"),
        v.u32("rs_aircraft_index"),
        UNIX + 60_000_000,
        None,
    );
    assert_eq!(resume.init.len(), 110);
    assert_eq!(resume.response.len(), 65);
    assert_eq!(resume.finish.len(), 29);
}

fn config() -> Config {
    Config {
        ksf: KsfParams::INSECURE_FAST,
        ..Config::default()
    }
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// An aircraft identity with the vectors' link id and static key, bonded to `remote`.
///
/// Built through the persistence format 1 (identity.rs, still read): version 1, link id (16), static
/// private key (32), code epoch (u32), KSF parameters (3 × u32), password file length (u32)
/// and bytes, bond count (u32), bonds (32 each).
fn aircraft_identity(k: &Keys, remote: &PublicKey) -> AircraftIdentity {
    let provisioned =
        AircraftIdentity::provision(k.link_id, b"482916", KsfParams::INSECURE_FAST, &mut rng(7))
            .unwrap();
    let mut bytes = provisioned.to_bytes().to_vec();
    // With no bond yet, format 2 is format 1 but for the version byte and the count of
    // retired timestamps at the end (0); write format 1.
    assert_eq!(bytes[0], 2);
    bytes[0] = 1;
    assert_eq!(
        bytes.split_off(bytes.len() - 4),
        [0, 0, 0, 0],
        "none retired"
    );
    assert_eq!(&bytes[1..17], &k.link_id);
    bytes[17..49].copy_from_slice(&k.aircraft_static.to_bytes());
    let count = bytes.len() - 4;
    assert_eq!(&bytes[count..], &[0, 0, 0, 0], "no bond yet");
    bytes[count..].copy_from_slice(&1u32.to_be_bytes());
    bytes.extend_from_slice(remote.as_bytes());
    let identity = AircraftIdentity::from_bytes(&bytes).unwrap();
    assert_eq!(
        identity.static_public(),
        PublicKey::from(&k.aircraft_static)
    );
    assert_eq!(identity.bonds(), &[*remote]);
    identity
}

/// A remote identity with the vectors' static key, bonded to the vectors' aircraft.
fn remote_identity(k: &Keys) -> RemoteIdentity {
    let mut bytes = vec![1];
    bytes.extend_from_slice(&k.remote_static.to_bytes());
    bytes.push(1);
    bytes.extend_from_slice(&k.link_id);
    bytes.extend_from_slice(PublicKey::from(&k.aircraft_static).as_bytes());
    let identity = RemoteIdentity::from_bytes(&bytes).unwrap();
    assert_eq!(identity.static_public(), PublicKey::from(&k.remote_static));
    identity
}

/// Everything `link` sends at `now`.
fn drain(link: &mut Link, now: Timestamp) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::new();
    while let Some(t) = link.poll_transmit(now, &mut buf) {
        out.push(buf[..t.len].to_vec());
    }
    out
}

/// Every event `link` has to report.
fn events(link: &mut Link) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(ev) = link.poll_event() {
        out.push(ev);
    }
    out
}

/// Open an encrypted frame with the AES key of `secret`; returns the plaintext.
fn open(secret: &Secret, datagram: &[u8]) -> Option<Vec<u8>> {
    let key = RustCrypto::key(&traffic_key(secret));
    // The packet number: the whole counter for the first frames of a session.
    let counter = u64::from(u32::from_be_bytes(datagram[8..12].try_into().unwrap()));
    let mut buf = datagram[HEADER_LEN..].to_vec();
    key.open_in_place(&nonce(counter), &datagram[..HEADER_LEN], &mut buf)
        .ok()?;
    buf.truncate(buf.len() - TAG_LEN);
    Some(buf)
}

/// A keepalive with counter 0, sealed with the AES key of `secret`.
fn keepalive(secret: &Secret, receiver_index: u32) -> Vec<u8> {
    let mut datagram = vec![2, 0x12, 0, 0];
    datagram.extend_from_slice(&receiver_index.to_be_bytes());
    datagram.extend_from_slice(&0u32.to_be_bytes());
    let mut tag = [0u8; TAG_LEN];
    RustCrypto::key(&traffic_key(secret))
        .seal_in_place(&nonce(0), &datagram, &mut tag)
        .unwrap();
    datagram.extend_from_slice(&tag);
    datagram
}

/// The aircraft state machine, holding the vectors' keys, accepts the vector `Init`, answers
/// with a `Response` (its own ephemeral) that the document's Noise initiator accepts, and
/// establishes the session on the `Finish` the document's key schedule gives; the same
/// `Init` once more after that session, and after a restart, is refused as stale.
#[test]
fn the_aircraft_answers_the_vector_init_as_the_document_says() {
    let v = Vectors::load(PROTOCOL_MD);
    let k = Keys::load(&v);
    let remote_static = PublicKey::from(&k.remote_static);
    let aircraft_static = PublicKey::from(&k.aircraft_static);
    let now = Timestamp::ZERO;
    let from = std::net::SocketAddr::from(([10, 0, 0, 2], 47474));
    let identity = aircraft_identity(&k, &remote_static);
    let saved = identity.to_bytes();
    let mut air = Link::aircraft(
        config(),
        identity,
        Box::new(MemoryAttemptStore::new()),
        &mut rng(8),
        now,
    )
    .unwrap();

    // A flipped mac1 bit is dropped before any DH.
    let init = v.get("hs_init_datagram");
    let mut bad = init.to_vec();
    *bad.last_mut().unwrap() ^= 1;
    assert!(air.handle_datagram(now, from, &bad).is_err());
    assert_eq!(air.handshake_crypto_ops(), 0);

    air.handle_datagram(now, from, init).unwrap();
    assert_eq!(air.handshake_crypto_ops(), 4, "es, ss; ee, se");
    assert!(events(&mut air).contains(&Event::IdentityChanged));
    let sent = drain(&mut air, now);
    assert_eq!(sent.len(), 1);
    let response = &sent[0];
    assert_eq!(response.len(), 65);
    assert_eq!(&response[4..8], &k.remote_index.to_be_bytes());

    // The document's initiator (the vector ephemeral) reads the Response.
    let key = Secret::new(v.array("hs_bond_key"));
    let prologue = v.get("hs_prologue");
    let mut rc = NoiseHandshake::initiator(
        Pattern::KKpsk0,
        prologue,
        &NoiseKeys {
            psk: key.expose(),
            local_static: Some(&k.remote_static),
            remote_static: Some(&aircraft_static),
        },
        Ephemeral::from_bytes(v.array("hs_remote_ephemeral_private")),
    )
    .unwrap();
    assert_eq!(
        rc.write_message(&tai64n(UNIX)).unwrap(),
        v.get("hs_noise_message1")
    );
    let (_, payload) = parse_frame(response).unwrap();
    let Response {
        body: ResponseBody::Keyed { kind, message },
        ..
    } = Response::parse(payload).unwrap()
    else {
        panic!("a keyed response")
    };
    assert_eq!(kind, Kind::Session);
    let index = rc.read_message(&message).unwrap();
    let sender_index = u32::from_be_bytes(index[..].try_into().unwrap());
    let out = rc.finish().unwrap();
    let s = keyed_secrets(b"rotorlink v1 session", &out, init, response);
    let finish = frame(
        FrameType::HandshakeFinish,
        sender_index,
        &Finish::Keyed {
            kind: Kind::Session,
            confirm: s.confirm_remote,
        }
        .emit(),
    );
    // A wrong confirmation changes nothing; the right one establishes the session.
    let mut wrong = finish.clone();
    *wrong.last_mut().unwrap() ^= 1;
    assert!(air.handle_datagram(now, from, &wrong).is_err());
    assert!(!air.is_connected());
    air.handle_datagram(now, from, &finish).unwrap();
    assert!(air.is_connected());
    // Its first frame, a keepalive, opens with the document's a2r key.
    let a2r = traffic_secrets(&s.handshake_secret, &s.transcript_hash).aircraft_to_remote;
    let first = drain(&mut air, now);
    assert!(first.iter().any(|d| open(&a2r, d).is_some()));

    // The same Init again: a late copy of the session's own Init is ignored; after a restart
    // (identity persisted on `IdentityChanged`) it is refused as stale, before ee and se.
    let persisted = air.aircraft_identity().unwrap().to_bytes();
    assert_ne!(persisted, saved);
    let mut restarted = Link::aircraft(
        config(),
        AircraftIdentity::from_bytes(&persisted).unwrap(),
        Box::new(MemoryAttemptStore::new()),
        &mut rng(9),
        now,
    )
    .unwrap();
    assert_eq!(
        restarted.handle_datagram(now, from, init).unwrap_err(),
        rotorlink::Error::Handshake(HandshakeError::Replayed)
    );
    assert_eq!(restarted.handshake_crypto_ops(), 2);
    assert!(drain(&mut restarted, now).is_empty());
    // Without the persisted timestamp (the identity as it was before), it would be answered.
    let mut forgetful = Link::aircraft(
        config(),
        AircraftIdentity::from_bytes(&saved).unwrap(),
        Box::new(MemoryAttemptStore::new()),
        &mut rng(10),
        now,
    )
    .unwrap();
    forgetful.handle_datagram(now, from, init).unwrap();
    assert_eq!(drain(&mut forgetful, now).len(), 1);
}

/// The remote state machine, holding the vectors' keys, sends a session `Init` whose
/// cleartext is the document's (its ephemeral and timestamp are its own), finishes against
/// a `Response` made by the document's Noise responder, sends the document's `Finish` for
/// it, and sends no application data before the aircraft's first authenticated frame.
#[test]
fn the_remote_finishes_against_the_document_key_schedule() {
    let v = Vectors::load(PROTOCOL_MD);
    let k = Keys::load(&v);
    let remote_static = PublicKey::from(&k.remote_static);
    let aircraft_static = PublicKey::from(&k.aircraft_static);
    let now = Timestamp::ZERO;
    let air_addr = std::net::SocketAddr::from(([10, 0, 0, 1], 47474));
    let mut rc = Link::remote(config(), remote_identity(&k), k.link_id, &mut rng(11), now).unwrap();
    rc.set_wall_clock(Duration::from_micros(UNIX), now);
    rc.connect(air_addr, now).unwrap();
    rc.send(rotorlink::Channel::Control, b"sticks").unwrap();
    let sent = drain(&mut rc, now);
    assert_eq!(sent.len(), 1, "only the Init");
    let init = &sent[0];
    assert_eq!(init.len(), 102);
    let key = Secret::new(v.array("hs_bond_key"));
    assert!(mac1_valid(&k.link_id, key.expose(), init));
    // Header, kind, suite, bond id are the document's; the index is the remote's own.
    let doc = v.get("hs_init_datagram");
    assert_eq!(&init[..HEADER_LEN + 2], &doc[..HEADER_LEN + 2]);
    let bond_id = HEADER_LEN + 6..HEADER_LEN + 14;
    assert_eq!(&init[bond_id.clone()], &doc[bond_id]);
    let rc_index = u32::from_be_bytes(init[HEADER_LEN + 2..HEADER_LEN + 6].try_into().unwrap());

    let offset = HEADER_LEN + 14;
    let mut air = NoiseHandshake::responder(
        Pattern::KKpsk0,
        &prologue(b"rotorlink v1 session prologue", &init[..offset]),
        &NoiseKeys {
            psk: key.expose(),
            local_static: Some(&k.aircraft_static),
            remote_static: Some(&remote_static),
        },
        Ephemeral::from_bytes(v.array("hs_aircraft_ephemeral_private")),
    )
    .unwrap();
    let ts = air
        .read_message(&init[offset..offset + MESSAGE1_LEN])
        .unwrap();
    assert_eq!(&ts[..], &tai64n(UNIX)[..], "the wall clock set");
    let message2 = air.write_message(&k.aircraft_index.to_be_bytes()).unwrap();
    let response = frame(
        FrameType::HandshakeResponse,
        rc_index,
        &Response {
            sender_index: k.aircraft_index,
            body: ResponseBody::Keyed {
                kind: Kind::Session,
                message: message2.clone().try_into().unwrap(),
            },
        }
        .emit(),
    );
    let out = air.finish().unwrap();
    let s = keyed_secrets(b"rotorlink v1 session", &out, init, &response);
    // A tampered Response (its ephemeral, the encrypted index, the tag) changes nothing.
    for i in [HEADER_LEN + 1, HEADER_LEN + 34, response.len() - 1] {
        let mut bad = response.clone();
        bad[i] ^= 1;
        let _ = rc.handle_datagram(now, air_addr, &bad);
        let out = drain(&mut rc, now);
        assert!(out.iter().all(|d| d[1] == 0x01), "byte {i}: {out:?}");
    }
    rc.handle_datagram(now, air_addr, &response).unwrap();
    let sent = drain(&mut rc, now);
    let finish = frame(
        FrameType::HandshakeFinish,
        k.aircraft_index,
        &Finish::Keyed {
            kind: Kind::Session,
            confirm: s.confirm_remote,
        }
        .emit(),
    );
    assert_eq!(sent, vec![finish], "the Finish and nothing encrypted");
    assert!(!rc.is_connected());
    // The aircraft's first frame confirms the session; the queued sticks follow.
    let t = traffic_secrets(&s.handshake_secret, &s.transcript_hash);
    let (a2r, r2a) = (t.aircraft_to_remote, t.remote_to_aircraft);
    rc.handle_datagram(now, air_addr, &keepalive(&a2r, rc_index))
        .unwrap();
    assert!(rc.is_connected());
    assert!(events(&mut rc).contains(&Event::Connected {
        kind: Kind::Session
    }));
    let data = drain(&mut rc, now);
    assert!(data.iter().any(|d| open(&r2a, d).is_some()));
    let _ = aircraft_static;
}

/// A handshake datagram seen on the air during the seeded run.
struct Seen {
    from_remote: bool,
    datagram: Vec<u8>,
}

/// Two links and the handshake datagrams exchanged between them, lossless.
struct Run {
    air: Link,
    rc: Link,
    now: Timestamp,
    seen: Vec<Seen>,
    air_events: Vec<Event>,
    rc_events: Vec<Event>,
}

impl Run {
    /// Deliver everything due now, both ways, until quiet; then advance 5 ms and run timers.
    fn step(&mut self) {
        let mut buf = vec![0u8; 2048];
        loop {
            let mut moved = false;
            while let Some(t) = self.rc.poll_transmit(self.now, &mut buf) {
                moved = true;
                let datagram = buf[..t.len].to_vec();
                let _ = self.air.handle_datagram(
                    self.now,
                    std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                    &datagram,
                );
                if datagram[1] < 0x10 {
                    self.seen.push(Seen {
                        from_remote: true,
                        datagram,
                    });
                }
            }
            while let Some(t) = self.air.poll_transmit(self.now, &mut buf) {
                moved = true;
                let datagram = buf[..t.len].to_vec();
                let _ = self.rc.handle_datagram(
                    self.now,
                    std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                    &datagram,
                );
                if datagram[1] < 0x10 {
                    self.seen.push(Seen {
                        from_remote: false,
                        datagram,
                    });
                }
            }
            self.air_events.extend(events(&mut self.air));
            self.rc_events.extend(events(&mut self.rc));
            if !moved {
                break;
            }
        }
        self.now = self.now + Duration::from_millis(5);
        self.air.handle_timeout(self.now);
        self.rc.handle_timeout(self.now);
    }

    /// Step until both ends reported a `kind` handshake connected.
    fn until_connected(&mut self, kind: Kind) {
        let event = Event::Connected { kind };
        for _ in 0..200 {
            self.step();
            if self.air_events.contains(&event) && self.rc_events.contains(&event) {
                self.air_events.clear();
                self.rc_events.clear();
                return;
            }
        }
        panic!("no {event:?}: {:?} {:?}", self.air_events, self.rc_events);
    }
}

/// The seeded run's handshake datagrams, in order: vector name, sender, frame type, kind
/// byte and datagram length.
const SEEDED: [(&str, bool, u8, u8, usize); 9] = [
    ("seeded_pair_init", true, 0x01, 1, 162),
    ("seeded_pair_response", false, 0x02, 1, 373),
    ("seeded_pair_finish", true, 0x03, 1, 77),
    ("seeded_session_init", true, 0x01, 2, 102),
    ("seeded_session_response", false, 0x02, 2, 65),
    ("seeded_session_finish", true, 0x03, 2, 29),
    ("seeded_resume_init", true, 0x01, 3, 110),
    ("seeded_resume_response", false, 0x02, 3, 65),
    ("seeded_resume_finish", true, 0x03, 3, 29),
];

#[test]
fn a_seeded_run_reproduces_the_regression_vectors() {
    let link_id = *b"RL-TEST-AIRCRAFT";
    let code = b"483920";
    let identity =
        AircraftIdentity::provision(link_id, code, KsfParams::INSECURE_FAST, &mut rng(1)).unwrap();
    let now = Timestamp::ZERO;
    let store = || Box::new(MemoryAttemptStore::new());
    let mut run = Run {
        air: {
            let mut air = Link::aircraft(config(), identity, store(), &mut rng(2), now).unwrap();
            air.open_pairing_window(core::time::Duration::from_secs(3600), now)
                .unwrap();
            air
        },
        rc: Link::remote(
            config(),
            RemoteIdentity::generate(&mut rng(3)),
            link_id,
            &mut rng(4),
            now,
        )
        .unwrap(),
        now,
        seen: Vec::new(),
        air_events: Vec::new(),
        rc_events: Vec::new(),
    };

    // Pairing with the code.
    run.rc
        .pair(
            code,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            run.now,
        )
        .unwrap();
    run.until_connected(Kind::Pair);

    // Both ends restart from their persisted identities; the bond carries a session.
    let air_identity = run.air.aircraft_identity().unwrap().to_bytes();
    let rc_identity = run.rc.remote_identity().unwrap().to_bytes();
    run.air = Link::aircraft(
        config(),
        AircraftIdentity::from_bytes(&air_identity).unwrap(),
        store(),
        &mut rng(5),
        run.now,
    )
    .unwrap();
    run.rc = Link::remote(
        config(),
        RemoteIdentity::from_bytes(&rc_identity).unwrap(),
        link_id,
        &mut rng(6),
        run.now,
    )
    .unwrap();
    run.rc
        .connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), run.now)
        .unwrap();
    run.until_connected(Kind::Session);

    // A reconnect within the session's lifetime resumes it.
    run.rc
        .connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), run.now)
        .unwrap();
    run.until_connected(Kind::Resume);

    let hashes: Vec<String> = run
        .seen
        .iter()
        .map(|s| hex::encode(Sha256::digest(&s.datagram)))
        .collect();
    let block: String = SEEDED
        .iter()
        .zip(&hashes)
        .map(|((name, ..), hash)| format!("{name} = {hash}\n"))
        .collect();
    assert_eq!(
        run.seen.len(),
        SEEDED.len(),
        "handshake datagrams:\n{block}"
    );
    for (seen, &(name, from_remote, frame_type, kind, len)) in run.seen.iter().zip(&SEEDED) {
        assert_eq!(
            (
                seen.from_remote,
                seen.datagram[1],
                seen.datagram[HEADER_LEN]
            ),
            (from_remote, frame_type, kind),
            "{name}"
        );
        assert_eq!(seen.datagram.len(), len, "{name} length");
    }
    let v = Vectors::load(PROTOCOL_MD);
    for ((name, ..), hash) in SEEDED.iter().zip(&hashes) {
        assert_eq!(
            hash,
            &hex::encode(v.get(name)),
            "{name}; the run's hashes are:\n{block}"
        );
    }
}
