//! Known-answer tests: Wycheproof AES-256-GCM through every provider, RFC 5869 HKDF-SHA256,
//! and the link's own key schedule and key update vectors from PROTOCOL.md.

use super::*;
extern crate std;
use std::vec::Vec;

fn check_wycheproof<P: AeadProvider>() {
    use wycheproof::aead::{TestName, TestSet};
    let set = TestSet::load(TestName::AesGcm).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for t in group.tests {
            let key = P::key(&Secret::new(t.key.as_slice().try_into().unwrap()));
            let nonce: [u8; NONCE_LEN] = t.nonce.as_slice().try_into().unwrap();
            let mut sealed: Vec<u8> = t.pt.to_vec();
            sealed.resize(t.pt.len() + TAG_LEN, 0);
            key.seal_in_place(&nonce, &t.aad, &mut sealed).unwrap();
            let mut expected: Vec<u8> = t.ct.to_vec();
            expected.extend_from_slice(&t.tag);
            let mut opened = expected.clone();
            let open = key.open_in_place(&nonce, &t.aad, &mut opened);
            if t.result.must_fail() {
                assert!(open.is_err(), "{} test {} opened", P::NAME, t.tc_id);
            } else {
                assert_eq!(sealed, expected, "{} test {} seal", P::NAME, t.tc_id);
                assert!(open.is_ok(), "{} test {} open", P::NAME, t.tc_id);
                assert_eq!(&opened[..t.pt.len()], &t.pt[..]);
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} vectors checked");
}

#[test]
fn wycheproof_aes256gcm_rustcrypto() {
    check_wycheproof::<RustCrypto>();
}

#[cfg(feature = "aws-lc")]
#[test]
fn wycheproof_aes256gcm_awslc() {
    check_wycheproof::<AwsLc>();
}

#[test]
fn providers_refuse_a_buffer_without_room_for_the_tag() {
    let key = RustCrypto::key(&Secret::new([1; 32]));
    assert_eq!(
        key.seal_in_place(&nonce(0), b"", &mut [0u8; 15]),
        Err(AeadError)
    );
    assert_eq!(
        key.open_in_place(&nonce(0), b"", &mut [0u8; 15]),
        Err(AeadError)
    );
}

#[test]
fn rfc5869_hkdf_sha256_vectors() {
    use hkdf::Hkdf;
    use sha2::Sha256;
    // RFC 5869 appendix A, test cases 1 and 3.
    let cases: [(&str, &str, &str, &str, &str); 2] = [
        (
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "000102030405060708090a0b0c",
            "f0f1f2f3f4f5f6f7f8f9",
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        ),
        (
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "",
            "",
            "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        ),
    ];
    for (ikm, salt, info, prk, okm) in cases {
        let salt = hex::decode(salt).unwrap();
        let salt = if salt.is_empty() {
            None
        } else {
            Some(&salt[..])
        };
        let (got_prk, hk) = Hkdf::<Sha256>::extract(salt, &hex::decode(ikm).unwrap());
        assert_eq!(hex::encode(got_prk), prk);
        let mut out = std::vec![0u8; 42];
        hk.expand(&hex::decode(info).unwrap(), &mut out).unwrap();
        assert_eq!(hex::encode(out), okm);
    }
}

/// The specification, whose known-answer vectors the tests below check.
const PROTOCOL_MD: &str = include_str!("../../../PROTOCOL.md");

mod protocol_vectors_md {
    use super::std::collections::BTreeMap;
    use super::Vec;
    include!("../../tests/common/protocol_vectors.rs");
}

/// The vectors of PROTOCOL.md (see `tests/common/protocol_vectors.rs`).
fn protocol_vectors() -> std::collections::BTreeMap<&'static str, Vec<u8>> {
    protocol_vectors_md::parse(PROTOCOL_MD)
}

/// One 32-byte vector of PROTOCOL.md, by name.
fn vector32(vectors: &std::collections::BTreeMap<&str, Vec<u8>>, name: &str) -> [u8; 32] {
    let bytes = vectors
        .get(name)
        .unwrap_or_else(|| panic!("PROTOCOL.md has no vector {name}"));
    bytes
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("vector {name} is {} bytes, not 32", bytes.len()))
}

/// The key schedule vectors of PROTOCOL.md ("Known-answer vectors", "Key schedule"):
/// handshake secret 0x42 * 32 and transcript hash 0x17 * 32 give `prk`, `a2r_0`, `r2a_0` and
/// `key_0` (the AES key of `a2r_0`).
#[test]
fn key_schedule_vectors_from_protocol_md() {
    use hkdf::Hkdf;
    use sha2::Sha256;
    let v = protocol_vectors();
    let handshake_secret = vector32(&v, "handshake_secret");
    let transcript_hash = vector32(&v, "transcript_hash");
    assert_eq!(handshake_secret, [0x42; 32]);
    assert_eq!(transcript_hash, [0x17; 32]);

    let (prk, _) = Hkdf::<Sha256>::extract(Some(&transcript_hash), &handshake_secret);
    assert_eq!(prk[..], vector32(&v, "prk"), "prk");

    let secrets = traffic_secrets(&Secret::new(handshake_secret), &transcript_hash);
    let a2r_0 = &secrets.aircraft_to_remote;
    let r2a_0 = &secrets.remote_to_aircraft;
    assert_eq!(a2r_0.expose(), &vector32(&v, "a2r_0"), "a2r_0");
    assert_eq!(r2a_0.expose(), &vector32(&v, "r2a_0"), "r2a_0");
    assert_eq!(traffic_key(a2r_0).expose(), &vector32(&v, "key_0"), "key_0");

    // Pinned here as well: these were computed independently (Python's hmac and hashlib), so
    // an edit that changed both the document and the key schedule would still fail.
    assert_eq!(
        hex::encode(vector32(&v, "a2r_0")),
        "84832fbe1c8750d5740b1f848e64a089caf7e9e4b9e798b1651e899fbba31d7a"
    );
    assert_eq!(
        hex::encode(vector32(&v, "r2a_0")),
        "03588275f7a5ed329ae5bba1f9b4da7c79b6a35b6399a3fa34df6b3f71e7383b"
    );
    assert_eq!(
        hex::encode(vector32(&v, "key_0")),
        "9330d5c2ed19a234fa86553db5b8017352b8cda499dd1b72c6ada998af305d5e"
    );
}

/// The key update vectors of PROTOCOL.md ("Known-answer vectors", "Key update"): two fixed
/// X25519 ephemerals (private keys 0x01 * 32 and 0x02 * 32, clamped by X25519), their public
/// keys and shared secret, and the next traffic secret of each direction of the session of
/// the key schedule vectors.
#[test]
fn key_update_vectors_from_protocol_md() {
    use x25519_dalek::{PublicKey, StaticSecret};
    let v = protocol_vectors();
    let aircraft = StaticSecret::from(vector32(&v, "update_aircraft_private"));
    let remote = StaticSecret::from(vector32(&v, "update_remote_private"));
    assert_eq!(vector32(&v, "update_aircraft_private"), [0x01; 32]);
    assert_eq!(vector32(&v, "update_remote_private"), [0x02; 32]);
    let aircraft_public = PublicKey::from(&aircraft);
    let remote_public = PublicKey::from(&remote);
    assert_eq!(
        aircraft_public.as_bytes(),
        &vector32(&v, "update_aircraft_public"),
        "update_aircraft_public"
    );
    assert_eq!(
        remote_public.as_bytes(),
        &vector32(&v, "update_remote_public"),
        "update_remote_public"
    );
    let dh = aircraft.diffie_hellman(&remote_public);
    assert!(dh.was_contributory());
    assert_eq!(dh.as_bytes(), &vector32(&v, "update_dh"), "update_dh");
    assert_eq!(
        remote.diffie_hellman(&aircraft_public).as_bytes(),
        dh.as_bytes(),
        "both ends compute the same DH"
    );

    let secrets = traffic_secrets(
        &Secret::new(vector32(&v, "handshake_secret")),
        &vector32(&v, "transcript_hash"),
    );
    let a2r_1 = updated_traffic_secret(&secrets.aircraft_to_remote, dh.as_bytes());
    let r2a_1 = updated_traffic_secret(&secrets.remote_to_aircraft, dh.as_bytes());
    assert_eq!(a2r_1.expose(), &vector32(&v, "a2r_1"), "a2r_1");
    assert_eq!(r2a_1.expose(), &vector32(&v, "r2a_1"), "r2a_1");
    assert_eq!(
        traffic_key(&a2r_1).expose(),
        &vector32(&v, "key_1"),
        "key_1"
    );

    // The update is HKDF-Extract(salt = old secret, ikm = dh), then one Expand.
    {
        use hkdf::Hkdf;
        use sha2::Sha256;
        let hk = Hkdf::<Sha256>::new(Some(secrets.aircraft_to_remote.expose()), dh.as_bytes());
        let mut okm = [0u8; 32];
        hk.expand(b"rotorlink v1 key update", &mut okm).unwrap();
        assert_eq!(&okm, a2r_1.expose());
    }

    // Pinned (computed independently with Python's `cryptography` X25519, hmac and hashlib).
    assert_eq!(
        hex::encode(vector32(&v, "update_dh")),
        "2ed76ab549b1e73c031eb49c9448f0798aea81b698279a0c3dc3e49fbfc4b953"
    );
    assert_eq!(
        hex::encode(vector32(&v, "a2r_1")),
        "eb7c3daa817d048007ca6eff40a7fdd50ebe566974fb05aca8ed4e8987cdd9b2"
    );
    assert_eq!(
        hex::encode(vector32(&v, "r2a_1")),
        "d0c9275985149b1e8dac71ac61379d140afab29c79dac2944a514ad881aee7e8"
    );
}

/// Every vectors block of PROTOCOL.md parses, and every frame key listed there is the one the
/// key schedule gives for that frame's direction (all frames are in phase 0).
#[test]
fn frame_keys_in_protocol_md_follow_the_key_schedule() {
    let v = protocol_vectors();
    let secrets = traffic_secrets(
        &Secret::new(vector32(&v, "handshake_secret")),
        &vector32(&v, "transcript_hash"),
    );
    let a2r_0 = traffic_key(&secrets.aircraft_to_remote);
    let r2a_0 = traffic_key(&secrets.remote_to_aircraft);
    let expected = [
        ("control_key", &r2a_0),
        ("keepalive_key", &a2r_0),
        ("video_0_key", &a2r_0),
        ("video_1_key", &a2r_0),
        ("storage_0_key", &r2a_0),
        ("storage_1_key", &r2a_0),
        ("ack_key", &a2r_0),
        ("close_key", &r2a_0),
    ];
    for (name, key) in expected {
        assert_eq!(key.expose(), &vector32(&v, name), "{name}");
    }
}

#[test]
fn secrets_compare_by_value_and_never_print() {
    assert_eq!(Secret::new([3; 32]), Secret::new([3; 32]));
    assert_ne!(Secret::new([3; 32]), Secret::new([4; 32]));
    assert_eq!(std::format!("{:?}", Secret::new([3; 32])), "Secret(..)");
    assert_eq!(&nonce(0x0102)[..], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
}
