//! The Noise test vectors of the two patterns the link runs (`Noise_KKpsk0_25519_AESGCM_SHA256`
//! for sessions, `Noise_NNpsk0_25519_AESGCM_SHA256` for resumes), from the cacophony project
//! as shipped with snow 0.10.0 (`tests/vectors/noise_cacophony.json`, those entries only,
//! unchanged), run through `rotorlink::handshake::noise::NoiseHandshake`: the same wrapper,
//! resolver (X25519, AES-256-GCM, SHA-256, generator) and snow state machine the link uses.
//! The vectors' ephemeral keys go in the way the link's do: as the 32 bytes the resolver's
//! generator hands snow.
//!
//! Each vector checks both handshake messages byte for byte (initiator and responder each
//! write and read), the payloads, the handshake hash, and the split: the vector's transport
//! messages are AES-256-GCM under the raw split keys the link derives its own keys from.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use rotorlink::handshake::noise::{Ephemeral, Keys, NoiseHandshake, NoiseOutputs, Pattern};
use serde_json::Value;
use x25519_dalek::{PublicKey, StaticSecret};

const VECTORS: &str = include_str!("vectors/noise_cacophony.json");

fn bytes(v: &Value, name: &str) -> Vec<u8> {
    hex::decode(v[name].as_str().unwrap_or_else(|| panic!("{name}"))).expect("hex")
}

fn array(v: &Value, name: &str) -> [u8; 32] {
    bytes(v, name).try_into().expect("32 bytes")
}

fn side(v: &Value, prefix: &str, pattern: Pattern, initiator: bool) -> NoiseHandshake {
    let psks = v[format!("{prefix}_psks")].as_array().expect("psks");
    assert_eq!(psks.len(), 1, "psk0 patterns have one psk");
    let psk: [u8; 32] = hex::decode(psks[0].as_str().expect("psk"))
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let local = v
        .get(format!("{prefix}_static"))
        .map(|_| StaticSecret::from(array(v, &format!("{prefix}_static"))));
    let remote = v
        .get(format!("{prefix}_remote_static"))
        .map(|_| PublicKey::from(array(v, &format!("{prefix}_remote_static"))));
    let keys = Keys {
        psk: &psk,
        local_static: local.as_ref(),
        remote_static: remote.as_ref(),
    };
    let prologue = bytes(v, &format!("{prefix}_prologue"));
    let ephemeral = Ephemeral::from_bytes(array(v, &format!("{prefix}_ephemeral")));
    if initiator {
        NoiseHandshake::initiator(pattern, &prologue, &keys, ephemeral).expect("initiator")
    } else {
        NoiseHandshake::responder(pattern, &prologue, &keys, ephemeral).expect("responder")
    }
}

fn seal(key: &[u8; 32], counter: u64, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    let mut out = plaintext.to_vec();
    let tag = Aes256Gcm::new(key.into())
        .encrypt_in_place_detached((&nonce).into(), &[], &mut out)
        .expect("seal");
    out.extend_from_slice(&tag);
    out
}

fn check(v: &Value, pattern: Pattern) {
    assert_eq!(v["protocol_name"], pattern.name());
    let mut init = side(v, "init", pattern, true);
    let mut resp = side(v, "resp", pattern, false);
    let messages = v["messages"].as_array().expect("messages");
    assert!(messages.len() > 2, "handshake and transport messages");
    for (i, m) in messages[..2].iter().enumerate() {
        let payload = bytes(m, "payload");
        let ciphertext = bytes(m, "ciphertext");
        let (writer, reader) = if i == 0 {
            (&mut init, &mut resp)
        } else {
            (&mut resp, &mut init)
        };
        assert_eq!(
            writer.write_message(&payload).expect("write"),
            ciphertext,
            "message {i}"
        );
        assert_eq!(
            &reader.read_message(&ciphertext).expect("read")[..],
            &payload[..]
        );
    }
    let hash = bytes(v, "handshake_hash");
    assert_eq!(init.handshake_hash().to_vec(), hash);
    assert_eq!(resp.handshake_hash().to_vec(), hash);
    let NoiseOutputs { k1, k2, .. } = init.finish().expect("finished");
    let r = resp.finish().expect("finished");
    assert_eq!(k1.expose(), r.k1.expose());
    assert_eq!(k2.expose(), r.k2.expose());
    // Transport messages alternate, initiator first; each direction counts its own nonces.
    for (i, m) in messages[2..].iter().enumerate() {
        let key = if i % 2 == 0 { k1.expose() } else { k2.expose() };
        let counter = (i / 2) as u64;
        assert_eq!(
            seal(key, counter, &bytes(m, "payload")),
            bytes(m, "ciphertext")
        );
    }
}

#[test]
fn cacophony_vectors_of_the_session_and_resume_patterns_pass_through_the_link_wrapper() {
    let all: Value = serde_json::from_str(VECTORS).expect("json");
    let vectors = all["vectors"].as_array().expect("vectors");
    let mut seen = (0, 0);
    for v in vectors {
        match v["protocol_name"].as_str() {
            Some("Noise_KKpsk0_25519_AESGCM_SHA256") => {
                check(v, Pattern::KKpsk0);
                seen.0 += 1;
            }
            Some("Noise_NNpsk0_25519_AESGCM_SHA256") => {
                check(v, Pattern::NNpsk0);
                seen.1 += 1;
            }
            other => panic!("unexpected vector {other:?}"),
        }
    }
    assert_eq!(seen, (1, 1));
}

#[test]
fn a_forged_second_message_leaves_the_initiator_able_to_read_the_genuine_one() {
    let all: Value = serde_json::from_str(VECTORS).expect("json");
    for v in all["vectors"].as_array().expect("vectors") {
        let pattern = match v["protocol_name"].as_str() {
            Some("Noise_KKpsk0_25519_AESGCM_SHA256") => Pattern::KKpsk0,
            _ => Pattern::NNpsk0,
        };
        let mut init = side(v, "init", pattern, true);
        let messages = v["messages"].as_array().expect("messages");
        init.write_message(&bytes(&messages[0], "payload"))
            .expect("write");
        let genuine = bytes(&messages[1], "ciphertext");
        for i in 0..genuine.len() {
            let mut forged = genuine.clone();
            forged[i] ^= 1;
            assert!(init.read_message(&forged).is_err(), "byte {i}");
        }
        assert!(init.read_message(&genuine[..genuine.len() - 1]).is_err());
        assert_eq!(
            &init.read_message(&genuine).expect("genuine")[..],
            &bytes(&messages[1], "payload")[..]
        );
        assert_eq!(init.handshake_hash().to_vec(), bytes(v, "handshake_hash"));
    }
}

#[test]
fn a_low_order_ephemeral_is_refused() {
    let all: Value = serde_json::from_str(VECTORS).expect("json");
    for v in all["vectors"].as_array().expect("vectors") {
        let pattern = match v["protocol_name"].as_str() {
            Some("Noise_KKpsk0_25519_AESGCM_SHA256") => Pattern::KKpsk0,
            _ => Pattern::NNpsk0,
        };
        let mut init = side(v, "init", pattern, true);
        let messages = v["messages"].as_array().expect("messages");
        init.write_message(&bytes(&messages[0], "payload"))
            .expect("write");
        // The identity element as the responder's ephemeral: an all-zero ee.
        let mut forged = bytes(&messages[1], "ciphertext");
        forged[..32].copy_from_slice(&[0; 32]);
        assert!(init.read_message(&forged).is_err());
    }
}
