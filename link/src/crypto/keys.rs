//! The key schedule (HKDF-SHA256, RFC 5869).
//!
//! ```text
//! prk      = HKDF-Extract(salt = transcript hash, ikm = handshake secret)
//! a2r_0    = HKDF-Expand(prk, "rotorlink v1 traffic a2r", 32)   aircraft -> remote
//! r2a_0    = HKDF-Expand(prk, "rotorlink v1 traffic r2a", 32)   remote -> aircraft
//! key_n    = HKDF-Expand(secret_n, "rotorlink v1 key", 32)       AES-256-GCM key, phase n
//! dh         = X25519(fresh ephemeral, peer's fresh ephemeral)      (a key update exchange)
//! secret_n+1 = HKDF-Expand(HKDF-Extract(salt = secret_n, ikm = dh), "rotorlink v1 key update", 32)
//! ```
//!
//! Each traffic secret is already uniformly random, so it is used directly as the PRK of its
//! key expansion. Every key update mixes a fresh X25519 exchange into both directions'
//! secrets, so a traffic key or secret that leaks stops working after the next update; the
//! secret of a phase is dropped (and zeroized) once the next one is in use, so a key leaked
//! later does not open earlier phases either.

use super::{Secret, KEY_LEN};
use hkdf::Hkdf;
use sha2::Sha256;

use super::label::{KEY as LABEL_KEY, KEY_UPDATE as LABEL_UPDATE};
use super::label::{TRAFFIC_A2R as LABEL_A2R, TRAFFIC_R2A as LABEL_R2A};

/// The first traffic secret of each direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSecrets {
    /// Protects frames the aircraft sends.
    pub aircraft_to_remote: Secret,
    /// Protects frames the remote sends.
    pub remote_to_aircraft: Secret,
}

fn expand(hk: &Hkdf<Sha256>, label: &[u8]) -> Secret {
    let mut out = [0u8; KEY_LEN];
    // HKDF-SHA256 can expand up to 255 * 32 bytes; 32 always fits.
    #[allow(clippy::expect_used)]
    hk.expand(label, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let secret = Secret::new(out);
    zeroize::Zeroize::zeroize(&mut out);
    secret
}

fn expand_from(secret: &Secret, label: &[u8]) -> Secret {
    // A 32-byte PRK is exactly SHA-256's output length, the minimum `from_prk` accepts.
    #[allow(clippy::expect_used)]
    let hk = Hkdf::<Sha256>::from_prk(secret.expose()).expect("a 32-byte PRK is valid");
    expand(&hk, label)
}

/// Derive both directions' first traffic secrets from the handshake's shared secret and the
/// hash of its transcript.
pub fn traffic_secrets(handshake_secret: &Secret, transcript_hash: &[u8; 32]) -> TrafficSecrets {
    let hk = Hkdf::<Sha256>::new(Some(transcript_hash), handshake_secret.expose());
    TrafficSecrets {
        aircraft_to_remote: expand(&hk, LABEL_A2R),
        remote_to_aircraft: expand(&hk, LABEL_R2A),
    }
}

/// The AES-256-GCM key of a traffic secret.
pub fn traffic_key(secret: &Secret) -> Secret {
    expand_from(secret, LABEL_KEY)
}

/// The traffic secret of the next key phase, from the current one and the output of a fresh
/// X25519 exchange.
pub fn updated_traffic_secret(secret: &Secret, dh: &[u8; 32]) -> Secret {
    let hk = Hkdf::<Sha256>::new(Some(secret.expose()), dh);
    expand(&hk, LABEL_UPDATE)
}
