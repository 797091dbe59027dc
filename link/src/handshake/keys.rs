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
//! th           = SHA-256(label || Init frame || Response frame up to its confirm)
//!   Session:  label "rotorlink v1 session", ikm = DH(ee) || DH(es) || DH(se) || DH(ss)
//!   Resume:   label "rotorlink v1 resume",  ikm = resumption secret || DH(ee)
//! prk          = HKDF-Extract(salt = th, ikm)
//! confirm_a    = HKDF-Expand(prk, "rotorlink v1 aircraft confirm", 16)
//! confirm_r    = HKDF-Expand(prk, "rotorlink v1 remote confirm", 16)
//! hs secret    = HKDF-Expand(prk, "rotorlink v1 handshake secret", 32)
//! transcript   = SHA-256(Init frame || Response frame)      (input of the traffic keys)
//! resumption   = HKDF-Expand(HKDF-Extract(transcript, hs secret), "rotorlink v1 resumption", 32)
//! ticket       = HKDF-Expand(HKDF-Extract(transcript, hs secret), "rotorlink v1 ticket", 16)
//! ```

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, SharedSecret};
use zeroize::Zeroizing;

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

/// What a keyed (session or resume) handshake derives.
pub struct KeyedSecrets {
    /// The aircraft's key confirmation.
    pub confirm_aircraft: [u8; CONFIRM_LEN],
    /// The remote's key confirmation.
    pub confirm_remote: [u8; CONFIRM_LEN],
    /// Input of the traffic key schedule.
    pub handshake_secret: Secret,
}

/// Is a DH output usable? A low-order peer key gives an all-zero, non-contributory result.
pub fn contributory(shared: &SharedSecret) -> bool {
    shared.was_contributory()
}

/// Derive a keyed handshake's secrets. `label` separates session from resume; `ikm` is the
/// concatenated DH outputs (and resumption secret); `th_frames` the transcript so far.
pub fn keyed_secrets(label: &[u8], th_frames: &[&[u8]], ikm: &[u8]) -> KeyedSecrets {
    let mut h = Sha256::new();
    h.update(label);
    for f in th_frames {
        h.update(f);
    }
    let th: [u8; 32] = h.finalize().into();
    let hk = Hkdf::<Sha256>::new(Some(&th), ikm);
    let mut confirm_aircraft = [0u8; CONFIRM_LEN];
    let mut confirm_remote = [0u8; CONFIRM_LEN];
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    // Output lengths of 16 and 32 bytes are always valid for HKDF-SHA256.
    let ok = hk
        .expand(label::AIRCRAFT_CONFIRM, &mut confirm_aircraft)
        .is_ok()
        && hk
            .expand(label::REMOTE_CONFIRM, &mut confirm_remote)
            .is_ok()
        && hk.expand(label::HANDSHAKE_SECRET, &mut secret[..]).is_ok();
    debug_assert!(ok);
    KeyedSecrets {
        confirm_aircraft,
        confirm_remote,
        handshake_secret: Secret::new(*secret),
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
