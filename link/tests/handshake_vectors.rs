//! The handshake vectors of PROTOCOL.md ("Known-answer vectors", "Session handshake" and
//! "Seeded handshake run").
//!
//! - The session (bonded) handshake built from fixed X25519 keys through the public message
//!   and key-schedule pieces gives exactly the `Init`, `Response` and `Finish` datagrams, the
//!   key confirmations, the handshake secret, the transcript hash, the traffic secrets and
//!   the resumption ticket and secret listed there. Those values were computed independently
//!   of this crate (Python, appendix of PROTOCOL.md).
//! - The real state machines accept those messages: an aircraft holding the fixed keys
//!   answers the vector `Init` with a `Response` that verifies under the document's key
//!   schedule and establishes the session on the matching `Finish`; a remote holding the
//!   fixed keys finishes against a `Response` built from the document's key schedule, and
//!   sends no application data before the first authenticated frame.
//! - A full seeded run through `Link::aircraft` and `Link::remote` (pairing, a session
//!   handshake after a restart, then a resume) produces handshake datagrams whose SHA-256
//!   hashes are the regression vectors listed. These are not independently derived: OPAQUE
//!   is not re-implemented outside the crate.

use std::time::Duration;

use hkdf::Hkdf;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::crypto::{nonce, traffic_key, traffic_secrets, AeadKey, AeadProvider};
use rotorlink::handshake::keys::{
    bond_id, bond_key, keyed_secrets, mac1, mac1_valid, resumption, transcript_hash,
};
use rotorlink::handshake::limits::MemoryAttemptStore;
use rotorlink::handshake::messages::{
    frame, parse_frame, Finish, Init, InitBody, Kind, Response, ResponseBody, CONFIRM_LEN,
    MAC1_LEN, SUITE_V2,
};
use rotorlink::handshake::{AircraftIdentity, KsfParams, RemoteIdentity};
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

/// The fixed keys and indices of the session handshake vectors.
struct Keys {
    link_id: [u8; 16],
    aircraft_static: StaticSecret,
    remote_static: StaticSecret,
    remote_ephemeral: StaticSecret,
    aircraft_ephemeral: StaticSecret,
    aircraft_index: u32,
    remote_index: u32,
}

impl Keys {
    fn load(v: &Vectors) -> Self {
        let keys = Keys {
            link_id: v.array("hs_link_id"),
            aircraft_static: StaticSecret::from(v.array::<32>("hs_aircraft_static_private")),
            remote_static: StaticSecret::from(v.array::<32>("hs_remote_static_private")),
            remote_ephemeral: StaticSecret::from(v.array::<32>("hs_remote_ephemeral_private")),
            aircraft_ephemeral: StaticSecret::from(v.array::<32>("hs_aircraft_ephemeral_private")),
            aircraft_index: v.u32("aircraft_index"),
            remote_index: v.u32("remote_index"),
        };
        assert_eq!(&keys.link_id, b"rotorlink-kat-01");
        for (name, byte) in [
            ("hs_aircraft_static_private", 0x11),
            ("hs_remote_static_private", 0x22),
            ("hs_remote_ephemeral_private", 0x33),
            ("hs_aircraft_ephemeral_private", 0x44),
        ] {
            assert_eq!(v.array::<32>(name), [byte; 32], "{name}");
        }
        keys
    }
}

/// The session handshake's four DH outputs, concatenated in the order of the key schedule
/// (ee, es, se, ss), computed by the remote. `aircraft_ephemeral` is the aircraft's
/// ephemeral public key.
fn remote_ikm(
    remote_static: &StaticSecret,
    remote_ephemeral: &StaticSecret,
    aircraft_static: &PublicKey,
    aircraft_ephemeral: &PublicKey,
) -> Vec<u8> {
    [
        remote_ephemeral.diffie_hellman(aircraft_ephemeral),
        remote_ephemeral.diffie_hellman(aircraft_static),
        remote_static.diffie_hellman(aircraft_ephemeral),
        remote_static.diffie_hellman(aircraft_static),
    ]
    .iter()
    .flat_map(|dh| *dh.as_bytes())
    .collect()
}

/// A session `Init` datagram from the remote with index `remote_index`, its mac1 keyed by the
/// link id and the bond key.
fn session_init(
    link_id: &[u8; 16],
    bond_key: &Secret,
    remote_index: u32,
    bond: [u8; 8],
    ephemeral: [u8; 32],
) -> Vec<u8> {
    let init = Init {
        suite: SUITE_V2,
        sender_index: remote_index,
        body: InitBody::Session {
            bond_id: bond,
            ephemeral,
        },
        mac1: [0; MAC1_LEN],
    };
    let mut datagram = frame(FrameType::HandshakeInit, 0, &init.emit());
    let split = datagram.len() - MAC1_LEN;
    let tag = mac1(link_id, bond_key.expose(), &datagram[..split]);
    datagram[split..].copy_from_slice(&tag);
    datagram
}

/// A session `Response` datagram, with the confirmation computed from `ikm` and the `Init`.
/// Returns the datagram, the remote's expected confirmation and the handshake secret.
fn session_response(
    init: &[u8],
    remote_index: u32,
    aircraft_index: u32,
    aircraft_ephemeral: [u8; 32],
    ikm: &[u8],
) -> (Vec<u8>, [u8; CONFIRM_LEN], Secret) {
    let mut response = Response {
        sender_index: aircraft_index,
        body: ResponseBody::Keyed {
            kind: Kind::Session,
            ephemeral: aircraft_ephemeral,
            confirm: [0; CONFIRM_LEN],
        },
    };
    let unconfirmed = frame(FrameType::HandshakeResponse, remote_index, &response.emit());
    let before_confirm = &unconfirmed[..unconfirmed.len() - CONFIRM_LEN];
    let s = keyed_secrets(b"rotorlink v1 session", &[init, before_confirm], ikm);
    if let ResponseBody::Keyed { confirm, .. } = &mut response.body {
        *confirm = s.confirm_aircraft;
    }
    let datagram = frame(FrameType::HandshakeResponse, remote_index, &response.emit());
    (datagram, s.confirm_remote, s.handshake_secret)
}

/// A session `Finish` datagram to the aircraft with index `aircraft_index`.
fn session_finish(aircraft_index: u32, confirm: [u8; CONFIRM_LEN]) -> Vec<u8> {
    let finish = Finish::Keyed {
        kind: Kind::Session,
        confirm,
    };
    frame(FrameType::HandshakeFinish, aircraft_index, &finish.emit())
}

#[test]
fn session_handshake_vectors_follow_the_message_formats_and_key_schedule() {
    let v = Vectors::load(PROTOCOL_MD);
    let k = Keys::load(&v);
    let aircraft_static = PublicKey::from(&k.aircraft_static);
    let remote_static = PublicKey::from(&k.remote_static);
    let remote_ephemeral = PublicKey::from(&k.remote_ephemeral);
    let aircraft_ephemeral = PublicKey::from(&k.aircraft_ephemeral);
    v.check("hs_aircraft_static_public", aircraft_static.as_bytes());
    v.check("hs_remote_static_public", remote_static.as_bytes());
    v.check("hs_remote_ephemeral_public", remote_ephemeral.as_bytes());
    v.check(
        "hs_aircraft_ephemeral_public",
        aircraft_ephemeral.as_bytes(),
    );

    // Init: bond id, bond key, mac1 key and mac1.
    let bond = bond_id(&remote_static);
    v.check("hs_bond_id", &bond);
    let key = bond_key(&k.remote_static.diffie_hellman(&aircraft_static));
    v.check("hs_bond_key", key.expose());
    assert_eq!(
        &bond_key(&k.aircraft_static.diffie_hellman(&remote_static)),
        &key,
        "both ends compute the same bond key"
    );
    let mut mac1_key = Sha256::new();
    mac1_key.update(b"rotorlink v1 mac1");
    mac1_key.update(k.link_id);
    mac1_key.update(key.expose());
    v.check("hs_mac1_key", &mac1_key.finalize());
    let init = session_init(
        &k.link_id,
        &key,
        k.remote_index,
        bond,
        *remote_ephemeral.as_bytes(),
    );
    v.check("hs_mac1", &init[init.len() - MAC1_LEN..]);
    v.check("hs_init_datagram", &init);
    assert_eq!(init.len(), HEADER_LEN + 62);
    assert!(mac1_valid(&k.link_id, key.expose(), &init));
    assert!(
        !mac1_valid(b"rotorlink-kat-02", key.expose(), &init),
        "mac1 is keyed by the link id"
    );
    assert!(
        !mac1_valid(&k.link_id, &[], &init),
        "mac1 is keyed by the bond key"
    );
    let (header, payload) = parse_frame(&init).unwrap();
    assert_eq!(
        (header.frame_type, header.receiver_index, header.counter),
        (FrameType::HandshakeInit, 0, 0)
    );
    let parsed = Init::parse(payload).unwrap();
    assert_eq!(parsed.kind(), Kind::Session);
    assert_eq!(parsed.suite, SUITE_V2);
    assert_eq!(parsed.sender_index, k.remote_index);
    assert_eq!(
        parsed.body,
        InitBody::Session {
            bond_id: bond,
            ephemeral: *remote_ephemeral.as_bytes()
        }
    );

    // The four DH outputs, the same from both ends.
    let ee = k.remote_ephemeral.diffie_hellman(&aircraft_ephemeral);
    let es = k.remote_ephemeral.diffie_hellman(&aircraft_static);
    let se = k.remote_static.diffie_hellman(&aircraft_ephemeral);
    let ss = k.remote_static.diffie_hellman(&aircraft_static);
    let remote_ephemeral_pk = PublicKey::from(&k.remote_ephemeral);
    assert_eq!(
        ee.as_bytes(),
        k.aircraft_ephemeral
            .diffie_hellman(&remote_ephemeral_pk)
            .as_bytes()
    );
    assert_eq!(
        es.as_bytes(),
        k.aircraft_static
            .diffie_hellman(&remote_ephemeral_pk)
            .as_bytes()
    );
    assert_eq!(
        se.as_bytes(),
        k.aircraft_ephemeral
            .diffie_hellman(&remote_static)
            .as_bytes()
    );
    assert_eq!(
        ss.as_bytes(),
        k.aircraft_static.diffie_hellman(&remote_static).as_bytes()
    );
    v.check("hs_dh_ee", ee.as_bytes());
    v.check("hs_dh_es", es.as_bytes());
    v.check("hs_dh_se", se.as_bytes());
    v.check("hs_dh_ss", ss.as_bytes());
    let ikm = remote_ikm(
        &k.remote_static,
        &k.remote_ephemeral,
        &aircraft_static,
        &aircraft_ephemeral,
    );

    // Response: the keyed transcript hash, PRK, confirmations and handshake secret.
    let (response, confirm_remote, handshake_secret) = session_response(
        &init,
        k.remote_index,
        k.aircraft_index,
        *aircraft_ephemeral.as_bytes(),
        &ikm,
    );
    let before_confirm = &response[..response.len() - CONFIRM_LEN];
    let keyed_th = transcript_hash(&[b"rotorlink v1 session", &init, before_confirm]);
    v.check("hs_keyed_th", &keyed_th);
    let (prk, _) = Hkdf::<Sha256>::extract(Some(&keyed_th), &ikm);
    v.check("hs_keyed_prk", &prk);
    v.check(
        "hs_confirm_aircraft",
        &response[response.len() - CONFIRM_LEN..],
    );
    v.check("hs_confirm_remote", &confirm_remote);
    v.check("hs_handshake_secret", handshake_secret.expose());
    v.check("hs_response_datagram", &response);
    assert_eq!(response.len(), HEADER_LEN + 53);
    let (header, payload) = parse_frame(&response).unwrap();
    assert_eq!(
        (header.frame_type, header.receiver_index),
        (FrameType::HandshakeResponse, k.remote_index)
    );
    assert_eq!(
        Response::parse(payload).unwrap(),
        Response {
            sender_index: k.aircraft_index,
            body: ResponseBody::Keyed {
                kind: Kind::Session,
                ephemeral: *aircraft_ephemeral.as_bytes(),
                confirm: v.array("hs_confirm_aircraft"),
            }
        }
    );

    // Finish.
    let finish = session_finish(k.aircraft_index, confirm_remote);
    v.check("hs_finish_datagram", &finish);
    assert_eq!(finish.len(), HEADER_LEN + 17);
    let (header, payload) = parse_frame(&finish).unwrap();
    assert_eq!(
        (header.frame_type, header.receiver_index),
        (FrameType::HandshakeFinish, k.aircraft_index)
    );
    assert_eq!(
        Finish::parse(payload).unwrap(),
        Finish::Keyed {
            kind: Kind::Session,
            confirm: confirm_remote
        }
    );

    // The session: transcript hash, traffic secrets, resumption.
    let th = transcript_hash(&[&init, &response]);
    v.check("hs_transcript_hash", &th);
    let traffic = traffic_secrets(&handshake_secret, &th);
    v.check("hs_a2r_0", traffic.aircraft_to_remote.expose());
    v.check("hs_r2a_0", traffic.remote_to_aircraft.expose());
    let resume = resumption(&handshake_secret, &th);
    v.check("hs_resumption_ticket", &resume.ticket);
    v.check("hs_resumption_secret", resume.secret.expose());

    // Pinned (computed independently with Python's `cryptography` X25519, hmac and hashlib),
    // so that an edit changing both the document and the code still fails.
    assert_eq!(
        hex::encode(v.get("hs_handshake_secret")),
        "1f3ad1c88b8a5ca46d9e7434dacd171c0a7b65004019d142b790d26d2c8ed7f9"
    );
    assert_eq!(
        hex::encode(v.get("hs_transcript_hash")),
        "c8c473d0fb696db546e21c56e389ea9c721a93827add8ac42adf2afc06c7528c"
    );
    assert_eq!(
        hex::encode(v.get("hs_finish_datagram")),
        "010300004149523100000000000000000011029ed547f361c6787ffcddb70848a48418"
    );
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
/// Built through the persistence format (identity.rs): version 1, link id (16), static
/// private key (32), code epoch (u32), KSF parameters (3 × u32), password file length (u32)
/// and bytes, bond count (u32), bonds (32 each).
fn aircraft_identity(k: &Keys, remote: &PublicKey) -> AircraftIdentity {
    let provisioned =
        AircraftIdentity::provision(k.link_id, b"482916", KsfParams::INSECURE_FAST, &mut rng(7))
            .unwrap();
    let mut bytes = provisioned.to_bytes().to_vec();
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
    let counter = u64::from_be_bytes(datagram[8..16].try_into().unwrap());
    let mut buf = datagram[HEADER_LEN..].to_vec();
    key.open_in_place(&nonce(counter), &datagram[..HEADER_LEN], &mut buf)
        .ok()?;
    buf.truncate(buf.len() - TAG_LEN);
    Some(buf)
}

/// A keepalive with counter 0, sealed with the AES key of `secret`.
fn keepalive(secret: &Secret, receiver_index: u32) -> Vec<u8> {
    let mut datagram = vec![1, 0x12, 0, 0];
    datagram.extend_from_slice(&receiver_index.to_be_bytes());
    datagram.extend_from_slice(&0u64.to_be_bytes());
    datagram.extend_from_slice(&(TAG_LEN as u16).to_be_bytes());
    let mut tag = [0u8; TAG_LEN];
    RustCrypto::key(&traffic_key(secret))
        .seal_in_place(&nonce(0), &datagram, &mut tag)
        .unwrap();
    datagram.extend_from_slice(&tag);
    datagram
}

/// The aircraft state machine, holding the vectors' keys, accepts the vector `Init`, answers
/// with a `Response` that verifies under the document's key schedule, and establishes the
/// session on the matching `Finish`.
#[test]
fn the_aircraft_answers_the_vector_init_as_the_document_says() {
    let v = Vectors::load(PROTOCOL_MD);
    let k = Keys::load(&v);
    let remote_static = PublicKey::from(&k.remote_static);
    let aircraft_static = PublicKey::from(&k.aircraft_static);
    let now = Timestamp::ZERO;
    let mut air = Link::aircraft(
        config(),
        aircraft_identity(&k, &remote_static),
        Box::new(MemoryAttemptStore::new()),
        &mut rng(8),
        now,
    )
    .unwrap();

    // A flipped mac1 bit is dropped before any DH.
    let init = v.get("hs_init_datagram");
    let mut bad = init.to_vec();
    *bad.last_mut().unwrap() ^= 1;
    assert!(air
        .handle_datagram(
            now,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &bad
        )
        .is_err());
    assert!(drain(&mut air, now).is_empty());
    assert_eq!(air.handshake_crypto_ops(), 0);

    air.handle_datagram(
        now,
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
        init,
    )
    .unwrap();
    let sent = drain(&mut air, now);
    assert_eq!(sent.len(), 1);
    let response = &sent[0];
    assert_eq!(air.handshake_crypto_ops(), 4, "four X25519");
    let (header, payload) = parse_frame(response).unwrap();
    assert_eq!(
        (header.frame_type, header.receiver_index),
        (FrameType::HandshakeResponse, k.remote_index)
    );
    let Response {
        sender_index: aircraft_index,
        body:
            ResponseBody::Keyed {
                kind: Kind::Session,
                ephemeral,
                confirm,
            },
    } = Response::parse(payload).unwrap()
    else {
        panic!("not a session response");
    };

    // The response verifies under the document's key schedule, with the remote's keys.
    let ikm = remote_ikm(
        &k.remote_static,
        &k.remote_ephemeral,
        &aircraft_static,
        &PublicKey::from(ephemeral),
    );
    let (expected, confirm_remote, handshake_secret) =
        session_response(init, k.remote_index, aircraft_index, ephemeral, &ikm);
    assert_eq!(&expected, response);
    assert_eq!(&expected[expected.len() - CONFIRM_LEN..], &confirm);

    // A retransmitted Init gets the same response, at no cost.
    air.handle_datagram(
        now,
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
        init,
    )
    .unwrap();
    assert_eq!(drain(&mut air, now), std::slice::from_ref(response));
    assert_eq!(air.handshake_crypto_ops(), 4);

    // A wrong confirmation changes nothing; the right one establishes the session.
    let mut wrong = confirm_remote;
    wrong[0] ^= 1;
    assert!(air
        .handle_datagram(
            now,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &session_finish(aircraft_index, wrong)
        )
        .is_err());
    assert!(!air.is_connected());
    air.handle_datagram(
        now,
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
        &session_finish(aircraft_index, confirm_remote),
    )
    .unwrap();
    assert!(air.is_connected());
    assert!(
        events(&mut air).contains(&Event::Connected {
            kind: Kind::Session
        }),
        "the aircraft reports the session"
    );

    // It confirms at once with a keepalive under a2r_0 of the document's key schedule.
    let th = transcript_hash(&[init, response]);
    let traffic = traffic_secrets(&handshake_secret, &th);
    let sent = drain(&mut air, now);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][1], FrameType::Keepalive as u8);
    assert_eq!(&sent[0][4..8], &k.remote_index.to_be_bytes());
    assert_eq!(
        open(&traffic.aircraft_to_remote, &sent[0]),
        Some(Vec::new())
    );
}

/// The remote state machine, holding the vectors' keys, sends a session `Init` as the
/// document says, finishes against a `Response` built from the document's key schedule,
/// and sends no application data before the aircraft's first authenticated frame.
#[test]
fn the_remote_finishes_against_the_document_key_schedule() {
    let v = Vectors::load(PROTOCOL_MD);
    let k = Keys::load(&v);
    let aircraft_static = PublicKey::from(&k.aircraft_static);
    let aircraft_ephemeral = PublicKey::from(&k.aircraft_ephemeral);
    let now = Timestamp::ZERO;
    let mut rc = Link::remote(config(), remote_identity(&k), k.link_id, &mut rng(9), now).unwrap();
    rc.send(rotorlink::Channel::Control, b"early").unwrap();
    rc.connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), now)
        .unwrap();
    let sent = drain(&mut rc, now);
    assert_eq!(sent.len(), 1, "only the Init");
    let init = &sent[0];
    let key = bond_key(&k.remote_static.diffie_hellman(&aircraft_static));
    assert!(mac1_valid(&k.link_id, key.expose(), init));
    let (header, payload) = parse_frame(init).unwrap();
    assert_eq!(header.receiver_index, 0);
    let parsed = Init::parse(payload).unwrap();
    let InitBody::Session {
        bond_id: bond,
        ephemeral,
    } = parsed.body
    else {
        panic!("not a session init");
    };
    v.check("hs_bond_id", &bond);
    let remote_index = parsed.sender_index;
    assert_eq!(
        init,
        &session_init(&k.link_id, &key, remote_index, bond, ephemeral),
        "the Init is laid out as the document says"
    );

    // The aircraft's side, from the document: its ikm uses the remote's public keys.
    let their_ephemeral = PublicKey::from(ephemeral);
    let remote_static = PublicKey::from(&k.remote_static);
    let ikm: Vec<u8> = [
        k.aircraft_ephemeral.diffie_hellman(&their_ephemeral),
        k.aircraft_static.diffie_hellman(&their_ephemeral),
        k.aircraft_ephemeral.diffie_hellman(&remote_static),
        k.aircraft_static.diffie_hellman(&remote_static),
    ]
    .iter()
    .flat_map(|dh| *dh.as_bytes())
    .collect();
    let (response, confirm_remote, handshake_secret) = session_response(
        init,
        remote_index,
        k.aircraft_index,
        *aircraft_ephemeral.as_bytes(),
        &ikm,
    );

    // A response with a flipped confirmation bit changes nothing.
    let mut bad = response.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(rc
        .handle_datagram(
            now,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            &bad
        )
        .is_err());
    assert!(drain(&mut rc, now).is_empty());

    rc.handle_datagram(
        now,
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        &response,
    )
    .unwrap();
    let sent = drain(&mut rc, now);
    assert_eq!(
        sent,
        [session_finish(k.aircraft_index, confirm_remote)],
        "the Finish, and no data before key confirmation"
    );
    assert!(!rc.is_connected());

    // The aircraft's first authenticated frame confirms the session; data flows.
    let th = transcript_hash(&[init, &response]);
    let traffic = traffic_secrets(&handshake_secret, &th);
    rc.handle_datagram(
        now,
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        &keepalive(&traffic.aircraft_to_remote, remote_index),
    )
    .unwrap();
    assert!(rc.is_connected());
    assert!(events(&mut rc).contains(&Event::Connected {
        kind: Kind::Session
    }));
    let sent = drain(&mut rc, now);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        open(&traffic.remote_to_aircraft, &sent[0]).as_deref(),
        Some(&b"early"[..])
    );
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
    ("seeded_pair_init", true, 0x01, 1, 168),
    ("seeded_pair_response", false, 0x02, 1, 379),
    ("seeded_pair_finish", true, 0x03, 1, 83),
    ("seeded_session_init", true, 0x01, 2, 80),
    ("seeded_session_response", false, 0x02, 2, 71),
    ("seeded_session_finish", true, 0x03, 2, 35),
    ("seeded_resume_init", true, 0x01, 3, 88),
    ("seeded_resume_response", false, 0x02, 3, 71),
    ("seeded_resume_finish", true, 0x03, 3, 35),
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
