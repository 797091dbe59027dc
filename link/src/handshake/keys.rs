//! The handshakes' key derivations: the anti-DoS MAC, the bonded session and resume key
//! schedules, transcript hashes, bond ids and resumption tickets.
//!
//! ```text
//! mac1 key     = SHA-256("rotorlink v1 mac1" || link id || proof key)
//!   proof key: Pair: empty (anyone who knows the link id may try the code);
//!              Session: the bond key, SHA-256("rotorlink v1 bond" || X25519(remote static,
//!              aircraft static)), which both ends cache when they bond;
//!              Resume: the resumption secret.
//! mac1         = HMAC-SHA256(mac1 key, Init frame up to mac1)[..16]
//! pair context = SHA-256("rotorlink v1 pair" || Init frame || Response frame up to KE2)
//! prologue     = prologue label || Init frame up to its Noise message   (handshake::noise)
//!   Session:  "rotorlink v1 session prologue", Noise_KKpsk0, psk = bond key
//!   Resume:   "rotorlink v1 resume prologue",  Noise_NNpsk0, psk = resumption secret
//! th           = SHA-256(label || h || Init frame || Response frame)
//!   (label "rotorlink v1 session" or "rotorlink v1 resume"; h the Noise handshake hash)
//! prk          = HKDF-Extract(salt = th, IKM = k1 || k2)     (k1, k2: the Noise split)
//! confirm_r    = HKDF-Expand(prk, "rotorlink v1 remote confirm", 16)
//! hs secret    = HKDF-Expand(prk, "rotorlink v1 handshake secret", 32)
//! transcript   = th (session, resume); SHA-256(Init frame || Response frame) (pairing)
//! resumption   = HKDF-Expand(HKDF-Extract(transcript, hs secret), "rotorlink v1 resumption", 32)
//! ticket       = HKDF-Expand(HKDF-Extract(transcript, hs secret), "rotorlink v1 ticket", 16)
//! ```

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, SharedSecret};
use zeroize::Zeroizing;

use super::noise::NoiseOutputs;
use crate::crypto::{label, Secret, KEY_LEN};
use crate::wire::handshake::{BOND_ID_LEN, CONFIRM_LEN, MAC1_LEN, TICKET_LEN};

/// The public identifier of an aircraft (like a network name): keys the anti-DoS MAC.
pub type LinkId = [u8; 16];

fn mac1_key(link_id: &LinkId, proof_key: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(label::MAC1);
    h.update(link_id);
    h.update(proof_key);
    Zeroizing::new(h.finalize().into())
}

/// The bond key of a remote and an aircraft: both compute it from their static keys when
/// they bond, and it keys the `mac1` of their session handshakes, so that only a bonded
/// remote can make the aircraft spend a Diffie-Hellman.
pub fn bond_key(shared_static: &SharedSecret) -> Secret {
    let mut h = Sha256::new();
    h.update(label::BOND);
    h.update(shared_static.as_bytes());
    Secret::new(h.finalize().into())
}

/// The anti-DoS MAC of an `Init` frame (everything before the MAC itself). `proof_key` is
/// empty for a pairing, the bond key for a session and the resumption secret for a resume.
pub fn mac1(link_id: &LinkId, proof_key: &[u8], frame_before_mac: &[u8]) -> [u8; MAC1_LEN] {
    // HMAC accepts a key of any length (RFC 2104 hashes long ones): this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&mac1_key(link_id, proof_key)[..])
        .expect("HMAC takes keys of any length");
    mac.update(frame_before_mac);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; MAC1_LEN];
    out.copy_from_slice(&full[..MAC1_LEN]);
    out
}

/// Check an `Init` frame's MAC in constant time.
pub fn mac1_valid(link_id: &LinkId, proof_key: &[u8], init_frame: &[u8]) -> bool {
    let Some(split) = init_frame.len().checked_sub(MAC1_LEN) else {
        return false;
    };
    let (body, tag) = init_frame.split_at(split);
    mac1(link_id, proof_key, body).ct_eq(tag).into()
}

/// The id under which a remote's bond is stored: the start of SHA-256 of its static key.
pub fn bond_id(remote_static: &PublicKey) -> [u8; BOND_ID_LEN] {
    let digest = Sha256::digest(remote_static.as_bytes());
    let mut out = [0u8; BOND_ID_LEN];
    out.copy_from_slice(&digest[..BOND_ID_LEN]);
    out
}

/// SHA-256 of the concatenated frames.
pub fn transcript_hash(frames: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for f in frames {
        h.update(f);
    }
    h.finalize().into()
}

/// What a keyed (session or resume) handshake derives from the Noise outputs.
pub struct KeyedSecrets {
    /// The remote's key confirmation (its `Finish`).
    pub confirm_remote: [u8; CONFIRM_LEN],
    /// Input of the traffic key schedule.
    pub handshake_secret: Secret,
    /// The session's transcript hash (input of the traffic keys and the resumption).
    pub transcript_hash: [u8; 32],
}

/// Is a DH output usable? A low-order peer key gives an all-zero, non-contributory result.
pub fn contributory(shared: &SharedSecret) -> bool {
    shared.was_contributory()
}

/// The Noise prologue of a keyed handshake: `label` and every byte of the `Init` datagram
/// before its Noise message (header, kind, suite, sender index, bond id or ticket).
pub fn prologue(label: &[u8], init_before_noise: &[u8]) -> alloc::vec::Vec<u8> {
    let mut p = alloc::vec::Vec::with_capacity(label.len() + init_before_noise.len());
    p.extend_from_slice(label);
    p.extend_from_slice(init_before_noise);
    p
}

/// Derive a keyed handshake's secrets from the finished Noise handshake and both datagrams.
/// `label` separates session from resume.
pub fn keyed_secrets(
    label: &[u8],
    noise: &NoiseOutputs,
    init_frame: &[u8],
    response_frame: &[u8],
) -> KeyedSecrets {
    let mut h = Sha256::new();
    h.update(label);
    h.update(noise.handshake_hash);
    h.update(init_frame);
    h.update(response_frame);
    let th: [u8; 32] = h.finalize().into();
    let mut ikm = Zeroizing::new([0u8; 2 * KEY_LEN]);
    ikm[..KEY_LEN].copy_from_slice(noise.k1.expose());
    ikm[KEY_LEN..].copy_from_slice(noise.k2.expose());
    let hk = Hkdf::<Sha256>::new(Some(&th), &ikm[..]);
    let mut confirm_remote = [0u8; CONFIRM_LEN];
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    // Output lengths of 16 and 32 bytes are always valid for HKDF-SHA256.
    let ok = hk
        .expand(label::REMOTE_CONFIRM, &mut confirm_remote)
        .is_ok()
        && hk.expand(label::HANDSHAKE_SECRET, &mut secret[..]).is_ok();
    debug_assert!(ok);
    KeyedSecrets {
        confirm_remote,
        handshake_secret: Secret::new(*secret),
        transcript_hash: th,
    }
}

/// What an established session can later be resumed with.
pub struct Resumption {
    /// Identifies the session to the aircraft.
    pub ticket: [u8; TICKET_LEN],
    /// Secret input of the resume handshake.
    pub secret: Secret,
}

/// The resumption ticket and secret of a session.
pub fn resumption(handshake_secret: &Secret, transcript_hash: &[u8; 32]) -> Resumption {
    let hk = Hkdf::<Sha256>::new(Some(transcript_hash), handshake_secret.expose());
    let mut ticket = [0u8; TICKET_LEN];
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    let ok = hk.expand(label::TICKET, &mut ticket).is_ok()
        && hk.expand(label::RESUMPTION, &mut secret[..]).is_ok();
    debug_assert!(ok);
    Resumption {
        ticket,
        secret: Secret::new(*secret),
    }
}

/// The OPAQUE context of a pairing: binds the protocol, the suite, the whole `Init`
/// (including the remote's static key) and the `Response` up to KE2 (the aircraft's index,
/// attempts and static key) into OPAQUE's own transcript, so that a change to any of them
/// makes OPAQUE fail.
pub fn pair_context(init_frame: &[u8], response_before_ke2: &[u8]) -> [u8; 32] {
    transcript_hash(&[label::PAIR, init_frame, response_before_ke2])
}

/// Constant-time comparison of confirmation values.
pub fn confirm_eq(a: &[u8; CONFIRM_LEN], b: &[u8; CONFIRM_LEN]) -> bool {
    a.ct_eq(b).into()
}
