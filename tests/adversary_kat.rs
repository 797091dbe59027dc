//! Known-answer tests for the primitives *as the link uses them*, and the link's refusal of
//! the degenerate inputs those vectors contain.
//!
//! - X25519 through `x25519-dalek` (the link's `StaticSecret::diffie_hellman` and
//!   `was_contributory`): RFC 7748 sections 5.2 and 6.1, and every Wycheproof `x25519`
//!   vector, including the low-order public keys whose output is all zeros.
//! - The link refuses each of those low-order keys where a peer can send one: as a key-update
//!   public key (section 9.2 of PROTOCOL.md) and as a session handshake ephemeral (18.3),
//!   with a positive control each time (the same forged message with a good key is accepted),
//!   so the refusal is the contributory check and not a broken forgery.
//! - HKDF-SHA256 through the `hkdf` crate as the key schedule calls it: every Wycheproof
//!   `hkdf_sha256` vector.
//!
//! Elsewhere: Wycheproof AES-256-GCM through every AEAD provider and RFC 5869 are in
//! `link/src/crypto/tests.rs`; the link's own key schedule, frame and handshake vectors from
//! PROTOCOL.md in `link/src/crypto/tests.rs`, `link/tests/vectors.rs` and
//! `link/tests/handshake_vectors.rs`.

use hkdf::Hkdf;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::crypto::{nonce, traffic_key, traffic_secrets, AeadKey, AeadProvider};
use rotorlink::handshake::keys::{bond_id, bond_key, contributory, mac1, prologue};
use rotorlink::handshake::limits::MemoryAttemptStore;
use rotorlink::handshake::messages::{frame, Init, InitBody, MAC1_LEN, MESSAGE1_LEN, SUITE_V2};
use rotorlink::handshake::noise::{tai64n, Ephemeral, Keys as NoiseKeys, NoiseHandshake, Pattern};
use rotorlink::handshake::{AircraftIdentity, HandshakeError, KsfParams};
use rotorlink::wire::body::{SegmentHeader, SEGMENT_FIRST, SEGMENT_LAST};
use rotorlink::wire::{FrameType, Header, HEADER_LEN, TAG_LEN};
use rotorlink::{Channel, Config, Error, Link, Role, RustCrypto, Secret, Timestamp};
use sha2::Sha256;
use wycheproof::TestResult;
use x25519_dalek::{x25519, PublicKey, StaticSecret, X25519_BASEPOINT_BYTES};

fn h32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn h(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// X25519 the way the link computes it: a `StaticSecret` (clamped by x25519-dalek) and a
/// peer `PublicKey`, returning the output and whether it was contributory.
fn dh(private: [u8; 32], public: [u8; 32]) -> ([u8; 32], bool) {
    let shared = StaticSecret::from(private).diffie_hellman(&PublicKey::from(public));
    (*shared.as_bytes(), contributory(&shared))
}

/// RFC 7748 section 5.2: the two single-multiplication test vectors.
#[test]
fn rfc7748_section_5_2_x25519_vectors() {
    let cases = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ];
    for (scalar, u, out) in cases {
        assert_eq!(h(&x25519(h32(scalar), h32(u))), out);
        let (shared, ok) = dh(h32(scalar), h32(u));
        assert_eq!(h(&shared), out);
        assert!(ok);
    }
}

/// RFC 7748 section 5.2: the iterated test, after 1 and 1000 iterations. (The
/// 1 000 000-iteration value is not checked: it takes minutes in a debug build.)
#[test]
fn rfc7748_section_5_2_iterated_x25519() {
    let mut k = X25519_BASEPOINT_BYTES;
    let mut u = X25519_BASEPOINT_BYTES;
    for i in 1..=1000 {
        let out = x25519(k, u);
        u = k;
        k = out;
        match i {
            1 => assert_eq!(
                h(&k),
                "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
            ),
            1000 => assert_eq!(
                h(&k),
                "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"
            ),
            _ => {}
        }
    }
}

/// RFC 7748 section 6.1: Alice's and Bob's key pairs and their shared secret, both ways.
#[test]
fn rfc7748_section_6_1_diffie_hellman() {
    let alice = h32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let bob = h32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let alice_public = PublicKey::from(&StaticSecret::from(alice));
    let bob_public = PublicKey::from(&StaticSecret::from(bob));
    assert_eq!(
        h(alice_public.as_bytes()),
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    );
    assert_eq!(
        h(bob_public.as_bytes()),
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    );
    let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    for (private, public) in [(alice, bob_public), (bob, alice_public)] {
        let (out, ok) = dh(private, public.to_bytes());
        assert_eq!(h(&out), shared);
        assert!(ok);
    }
}

/// The public keys of the Wycheproof `x25519` vectors whose output is all zeros (low-order
/// points, in canonical and non-canonical encodings), without repeats.
fn low_order_points() -> Vec<[u8; 32]> {
    use wycheproof::xdh::{TestFlag, TestName, TestSet};
    let set = TestSet::load(TestName::X25519).unwrap();
    let mut points: Vec<[u8; 32]> = Vec::new();
    for t in set.test_groups.into_iter().flat_map(|g| g.tests) {
        if t.flags.contains(&TestFlag::ZeroSharedSecret) {
            let p: [u8; 32] = t.public_key.as_slice().try_into().unwrap();
            if !points.contains(&p) {
                points.push(p);
            }
        }
    }
    points
}

/// Every Wycheproof X25519 vector through x25519-dalek as the link calls it. The link's
/// contributory check (`handshake::keys::contributory`, x25519-dalek's `was_contributory`)
/// is false exactly for the vectors whose shared secret is all zeros, which Wycheproof flags
/// `ZeroSharedSecret` (low-order public keys).
#[test]
fn wycheproof_x25519_through_x25519_dalek() {
    use wycheproof::xdh::{TestFlag, TestName, TestSet};
    let set = TestSet::load(TestName::X25519).unwrap();
    let (mut checked, mut zero) = (0, 0);
    for t in set.test_groups.into_iter().flat_map(|g| g.tests) {
        // Every x25519 vector is valid or acceptable: an output is always defined.
        assert_ne!(t.result, TestResult::Invalid, "test {}", t.tc_id);
        let private: [u8; 32] = t.private_key.as_slice().try_into().unwrap();
        let public: [u8; 32] = t.public_key.as_slice().try_into().unwrap();
        let (out, ok) = dh(private, public);
        assert_eq!(
            out[..],
            t.shared_secret[..],
            "test {}: {}",
            t.tc_id,
            t.comment
        );
        let all_zero = out == [0; 32];
        assert_eq!(ok, !all_zero, "test {}: contributory", t.tc_id);
        assert_eq!(
            all_zero,
            t.flags.contains(&TestFlag::ZeroSharedSecret),
            "test {}: flags {:?}",
            t.tc_id,
            t.flags
        );
        if all_zero {
            zero += 1;
            assert!(
                t.flags.contains(&TestFlag::LowOrderPublic),
                "test {}",
                t.tc_id
            );
        }
        checked += 1;
    }
    assert!(checked >= 500, "only {checked} vectors");
    assert!(zero >= 20, "only {zero} zero-output vectors");
    assert!(low_order_points().len() >= 10);
}

/// Every Wycheproof HKDF-SHA256 vector through the `hkdf` crate, called as the key schedule
/// calls it (`Hkdf::<Sha256>::new(Some(salt), ikm)`, then `expand`); and the two-step form
/// (`extract`, then `from_prk`) the traffic-key derivation uses gives the same output.
#[test]
fn wycheproof_hkdf_sha256() {
    use wycheproof::hkdf::{TestName, TestSet};
    let set = TestSet::load(TestName::HkdfSha256).unwrap();
    let (mut checked, mut refused) = (0, 0);
    for t in set.test_groups.into_iter().flat_map(|g| g.tests) {
        let hk = Hkdf::<Sha256>::new(Some(&t.salt), &t.ikm);
        let mut okm = vec![0u8; t.size];
        let result = hk.expand(&t.info, &mut okm);
        if t.result.must_fail() {
            assert!(result.is_err(), "test {}: {}", t.tc_id, t.comment);
            refused += 1;
        } else {
            result.unwrap();
            assert_eq!(okm[..], t.okm[..], "test {}: {}", t.tc_id, t.comment);
            let (prk, _) = Hkdf::<Sha256>::extract(Some(&t.salt), &t.ikm);
            let mut again = vec![0u8; t.size];
            Hkdf::<Sha256>::from_prk(&prk)
                .unwrap()
                .expand(&t.info, &mut again)
                .unwrap();
            assert_eq!(again, okm, "test {}", t.tc_id);
        }
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} vectors");
    assert!(refused >= 1, "no over-long output was refused");
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// An encrypted frame with `counter` sealed with `key` as a sender would (header, with
/// the counter's low 32 bits as its packet number, as associated data; the counter as the
/// nonce).
fn seal(key: &Secret, header: Header, counter: u64, plaintext: &[u8]) -> Vec<u8> {
    let header = Header {
        packet_number: counter as u32,
        ..header
    };
    let mut buf = vec![0u8; HEADER_LEN + plaintext.len() + TAG_LEN];
    header.emit(&mut buf).unwrap();
    buf[HEADER_LEN..HEADER_LEN + plaintext.len()].copy_from_slice(plaintext);
    let (aad, in_out) = buf.split_at_mut(HEADER_LEN);
    RustCrypto::key(&traffic_key(key))
        .seal_in_place(&nonce(counter), aad, in_out)
        .unwrap();
    buf
}

/// A `KeyUpdateRequest` (session channel message type 1, PROTOCOL.md 6.7) carrying
/// `public`, as session-channel segment `seq` in a frame with counter `counter`, sealed with
/// the remote-to-aircraft key of the session `secret`.
fn key_update_request(secret: &Secret, public: [u8; 32], seq: u32, counter: u64) -> Vec<u8> {
    let mut plain = vec![0u8; SegmentHeader::LEN];
    SegmentHeader {
        seq,
        flags: SEGMENT_FIRST | SEGMENT_LAST,
    }
    .emit(&mut plain)
    .unwrap();
    plain.push(1);
    plain.extend_from_slice(&public);
    let header = Header {
        frame_type: FrameType::Data,
        key_phase: false,
        channel: Some(Channel::Session),
        receiver_index: 1,
        packet_number: 0,
    };
    seal(secret, header, counter, &plain)
}

/// Drain what `link` wants to send now: (type, channel) of each datagram.
fn sent(link: &mut Link, now: Timestamp) -> Vec<(FrameType, Option<Channel>)> {
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::new();
    while let Some(t) = link.poll_transmit(now, &mut buf) {
        out.push((t.frame_type, t.channel));
    }
    out
}

/// A key update whose public key is a low-order point gives an all-zero X25519 output; the
/// aircraft refuses it (`AuthenticationFailed`), answers nothing and rotates nothing. The
/// same forged request with an ordinary key is answered, so the forgery itself is sound.
#[test]
fn the_link_refuses_a_low_order_key_update() {
    let secret = Secret::new([0x3c; 32]);
    let hash = [0xc3; 32];
    let now = Timestamp::ZERO;
    let config = Config::default();
    let mut aircraft: Link = Link::from_secret(
        Role::Aircraft,
        config,
        &secret,
        &hash,
        1,
        2,
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
        &mut rng(1),
        now,
    )
    .unwrap();
    let r2a = traffic_secrets(&secret, &hash).remote_to_aircraft;
    let points = low_order_points();
    for (i, point) in points.iter().enumerate() {
        let i = u32::try_from(i).unwrap();
        let forged = key_update_request(&r2a, *point, i, u64::from(i));
        assert_eq!(
            aircraft.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                &forged
            ),
            Err(Error::Handshake(HandshakeError::AuthenticationFailed)),
            "low-order point {}",
            h(point)
        );
        // The segment is acknowledged (it was authenticated), nothing else is sent.
        let out = sent(&mut aircraft, now);
        assert!(
            !out.contains(&(FrameType::Data, Some(Channel::Session))),
            "answered a low-order key update: {out:?}"
        );
    }
    let stats = aircraft.stats();
    assert_eq!(stats.dropped_handshake, points.len() as u64);
    assert_eq!(stats.rekeys_sent + stats.rekeys_received, 0);

    // Positive control: the next request, with an ordinary key, is answered.
    let good = PublicKey::from(&StaticSecret::from([0x77; 32])).to_bytes();
    let n = u32::try_from(points.len()).unwrap();
    let forged = key_update_request(&r2a, good, n, u64::from(n));
    aircraft
        .handle_datagram(
            now,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &forged,
        )
        .unwrap();
    let out = sent(&mut aircraft, now);
    assert!(
        out.contains(&(FrameType::Data, Some(Channel::Session))),
        "a good key update was not answered: {out:?}"
    );
}

const LINK_ID: [u8; 16] = *b"RL-KAT-LOWORDER1";

/// An aircraft bonded to a remote whose static secret is `remote_static` (the bond added
/// through the documented identity format, PROTOCOL.md section 25).
fn bonded_aircraft(remote_static: &StaticSecret) -> Link {
    let identity =
        AircraftIdentity::provision(LINK_ID, b"135790", KsfParams::INSECURE_FAST, &mut rng(2))
            .unwrap();
    let mut bytes = identity.to_bytes().to_vec();
    // With no bond, format 2 is format 1 but for the version byte and the count of retired
    // timestamps at the end (0); write format 1 (still read).
    bytes[0] = 1;
    assert_eq!(
        bytes.split_off(bytes.len() - 4),
        [0, 0, 0, 0],
        "none retired"
    );
    let count_at = bytes.len() - 4;
    assert_eq!(
        bytes[count_at..],
        [0, 0, 0, 0],
        "a fresh identity has no bond"
    );
    bytes[count_at..].copy_from_slice(&1u32.to_be_bytes());
    bytes.extend_from_slice(PublicKey::from(remote_static).as_bytes());
    let identity = AircraftIdentity::from_bytes(&bytes).unwrap();
    let config = Config {
        ksf: KsfParams::INSECURE_FAST,
        ..Config::default()
    };
    let store = Box::new(MemoryAttemptStore::new());
    Link::aircraft(config, identity, store, &mut rng(3), Timestamp::ZERO).unwrap()
}

/// A session `Init` from the bonded remote (its mac1 keyed by the bond key, so it passes
/// the aircraft's cheap checks) whose Noise message 1 starts with the ephemeral public key
/// `e` (the rest: zeros, since with a low-order `e` the aircraft's `es` fails first), or, for
/// `Err(private)`, a genuine Noise message 1 from that ephemeral private key.
fn session_init(
    remote: &StaticSecret,
    aircraft: &PublicKey,
    index: u32,
    e: Result<[u8; 32], [u8; 32]>,
) -> Vec<u8> {
    let init = Init {
        suite: SUITE_V2,
        sender_index: index,
        body: InitBody::Session {
            bond_id: bond_id(&PublicKey::from(remote)),
            message: [0; MESSAGE1_LEN],
        },
        mac1: [0; MAC1_LEN],
    };
    let mut datagram = frame(FrameType::HandshakeInit, 0, &init.emit());
    let offset = HEADER_LEN + init.noise_offset();
    let key = bond_key(&remote.diffie_hellman(aircraft));
    match e {
        Ok(public) => datagram[offset..offset + 32].copy_from_slice(&public),
        Err(private) => {
            let mut noise = NoiseHandshake::initiator(
                Pattern::KKpsk0,
                &prologue(b"rotorlink v1 session prologue", &datagram[..offset]),
                &NoiseKeys {
                    psk: key.expose(),
                    local_static: Some(remote),
                    remote_static: Some(aircraft),
                },
                Ephemeral::from_bytes(private),
            )
            .unwrap();
            let m = noise.write_message(&tai64n(1_780_000_000_000_000)).unwrap();
            datagram[offset..offset + MESSAGE1_LEN].copy_from_slice(&m);
        }
    }
    let split = datagram.len() - MAC1_LEN;
    let tag = mac1(&LINK_ID, key.expose(), &datagram[..split]);
    datagram[split..].copy_from_slice(&tag);
    datagram
}

/// A session `Init` whose ephemeral is a low-order point makes `ee` and `se` all zeros; the
/// aircraft refuses it (`AuthenticationFailed`) and sends no `Response`. The same `Init`
/// with an ordinary ephemeral is answered.
#[test]
fn the_link_refuses_a_low_order_handshake_ephemeral() {
    let remote = StaticSecret::from([0x5e; 32]);
    let mut aircraft = bonded_aircraft(&remote);
    let aircraft_static = aircraft.aircraft_identity().unwrap().static_public();
    let now = Timestamp::ZERO;
    let points = low_order_points();
    for (i, point) in points.iter().enumerate() {
        let index = 100 + u32::try_from(i).unwrap();
        let init = session_init(&remote, &aircraft_static, index, Ok(*point));
        assert_eq!(
            aircraft.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                &init
            ),
            Err(Error::Handshake(HandshakeError::AuthenticationFailed)),
            "low-order ephemeral {}",
            h(point)
        );
        assert!(sent(&mut aircraft, now).is_empty(), "answered {}", h(point));
    }
    assert_eq!(aircraft.stats().dropped_handshake, points.len() as u64);
    assert!(!aircraft.is_connected());

    // Positive control: an ordinary ephemeral gets a Response.
    let init = session_init(&remote, &aircraft_static, 7, Err([0x99; 32]));
    aircraft
        .handle_datagram(
            now,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &init,
        )
        .unwrap();
    assert_eq!(
        sent(&mut aircraft, now),
        [(FrameType::HandshakeResponse, None)]
    );
}
