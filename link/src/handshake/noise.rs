//! The session and resume handshakes' Noise layer: named patterns of the Noise Protocol
//! Framework (revision 34), run by [`snow`].
//!
//! | handshake | pattern                               | psk                    |
//! |-----------|---------------------------------------|------------------------|
//! | Session   | `Noise_KKpsk0_25519_AESGCM_SHA256`    | the bond key (18.1)    |
//! | Resume    | `Noise_NNpsk0_25519_AESGCM_SHA256`    | the resumption secret  |
//!
//! The core has no global generator and must build without `std`, so snow gets its
//! primitives from [`LinkResolver`]:
//!
//! - **randomness**: exactly the 32 bytes of the ephemeral private key, drawn by the caller
//!   from the link's own generator ([`Ephemeral`]). snow asks for randomness only to make
//!   the ephemeral key, so the known-answer tests inject the vectors' ephemerals through the
//!   same path the link uses;
//! - **X25519**: x25519-dalek (private keys zeroized on drop), refusing an all-zero output (a
//!   low-order peer key) with `Error::Dh`; snow's own Curve25519 accepts it and keeps its
//!   keys in plain arrays;
//! - **AES-256-GCM**: the `aes-gcm` crate with Noise's nonce (4 zero bytes, then the 64-bit
//!   counter big-endian), its key zeroized on drop;
//! - **SHA-256**: RustCrypto `sha2` (snow builds HMAC and HKDF on it as the Noise
//!   specification says).
//!
//! What snow does not zeroize (its chaining key and handshake hash, in the `HandshakeState`)
//! is listed in SECURITY.md.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use sha2::{Digest, Sha256};
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::CryptoResolver;
use snow::types::{Cipher, Dh, Hash, Random};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use super::HandshakeError;
use crate::crypto::Secret;

/// The session handshake's pattern.
pub const SESSION_PATTERN: &str = "Noise_KKpsk0_25519_AESGCM_SHA256";
/// The resume handshake's pattern.
pub const RESUME_PATTERN: &str = "Noise_NNpsk0_25519_AESGCM_SHA256";

/// Length of an X25519 public key.
pub const DH_LEN: usize = 32;
/// Length of an AEAD tag.
pub const TAG_LEN: usize = 16;
/// Length of the timestamp in the first message's payload (TAI64N: seconds, nanoseconds).
pub const TIMESTAMP_LEN: usize = 12;
/// Length of the first Noise message of both patterns: `e` and the encrypted timestamp.
pub const MESSAGE1_LEN: usize = DH_LEN + TIMESTAMP_LEN + TAG_LEN;
/// Length of the aircraft's session index, the payload of the second message.
pub const INDEX_LEN: usize = 4;
/// Length of the second Noise message of both patterns: `e` and the encrypted index of the
/// aircraft (4 + 16).
pub const MESSAGE2_LEN: usize = DH_LEN + INDEX_LEN + TAG_LEN;

/// Which pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `Noise_KKpsk0_25519_AESGCM_SHA256`: both static keys known in advance.
    KKpsk0,
    /// `Noise_NNpsk0_25519_AESGCM_SHA256`: ephemeral keys and the psk only.
    NNpsk0,
}

impl Pattern {
    /// The Noise protocol name.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::KKpsk0 => SESSION_PATTERN,
            Pattern::NNpsk0 => RESUME_PATTERN,
        }
    }
}

/// The ephemeral private key a handshake will use: 32 bytes from the link's generator (or,
/// in the known-answer tests, the vectors' fixed key). Zeroized on drop.
pub struct Ephemeral(Zeroizing<[u8; 32]>);

impl Ephemeral {
    /// Draw the key from `rng`.
    pub fn random(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut bytes[..]);
        Ephemeral(bytes)
    }

    /// A given key (known-answer tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Ephemeral(Zeroizing::new(bytes))
    }
}

/// Hands snow exactly the ephemeral key's bytes, once.
struct EphemeralRandom(Option<Ephemeral>);

impl Random for EphemeralRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        match self.0.take() {
            Some(e) if dest.len() == e.0.len() => {
                dest.copy_from_slice(&e.0[..]);
                Ok(())
            }
            _ => Err(snow::Error::Rng),
        }
    }
}

/// snow's primitives for the link (module docs).
pub struct LinkResolver {
    ephemeral: RefCell<Option<Ephemeral>>,
}

impl LinkResolver {
    /// A resolver whose generator yields `ephemeral` (once).
    pub fn new(ephemeral: Ephemeral) -> Self {
        LinkResolver {
            ephemeral: RefCell::new(Some(ephemeral)),
        }
    }
}

impl CryptoResolver for LinkResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        let e = self.ephemeral.borrow_mut().take()?;
        Some(Box::new(EphemeralRandom(Some(e))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(X25519::default())),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        match choice {
            HashChoice::SHA256 => Some(Box::new(Sha256Hash::default())),
            _ => None,
        }
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        match choice {
            CipherChoice::AESGCM => Some(Box::new(AesGcmCipher::default())),
            _ => None,
        }
    }
}

/// SHA-256 through RustCrypto `sha2`.
#[derive(Default)]
struct Sha256Hash(Sha256);

impl Hash for Sha256Hash {
    fn name(&self) -> &'static str {
        "SHA256"
    }

    fn block_len(&self) -> usize {
        64
    }

    fn hash_len(&self) -> usize {
        32
    }

    fn reset(&mut self) {
        self.0 = Sha256::new();
    }

    fn input(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn result(&mut self, out: &mut [u8]) {
        let digest = self.0.finalize_reset();
        let n = out.len().min(digest.len());
        out[..n].copy_from_slice(&digest[..n]);
    }
}

/// X25519 through x25519-dalek.
struct X25519 {
    secret: StaticSecret,
    public: [u8; 32],
}

impl Default for X25519 {
    fn default() -> Self {
        let secret = StaticSecret::from([0u8; 32]);
        let public = PublicKey::from(&secret).to_bytes();
        X25519 { secret, public }
    }
}

impl Dh for X25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        32
    }

    fn priv_len(&self) -> usize {
        32
    }

    fn set(&mut self, privkey: &[u8]) {
        let mut bytes = Zeroizing::new([0u8; 32]);
        let n = privkey.len().min(32);
        bytes[..n].copy_from_slice(&privkey[..n]);
        self.secret = StaticSecret::from(*bytes);
        self.public = PublicKey::from(&self.secret).to_bytes();
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(&mut bytes[..])?;
        self.set(&bytes[..]);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        self.secret.as_bytes()
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let their: [u8; 32] = pubkey
            .get(..32)
            .and_then(|p| p.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(their));
        // A low-order key gives all zeros: no contribution from the peer (Noise section 12.1
        // allows refusing it; the link always does).
        if !shared.was_contributory() {
            return Err(snow::Error::Dh);
        }
        let out = out.get_mut(..32).ok_or(snow::Error::Dh)?;
        out.copy_from_slice(shared.as_bytes());
        Ok(())
    }
}

/// AES-256-GCM as Noise uses it: nonce = 4 zero bytes || 64-bit counter, big-endian.
#[derive(Default)]
struct AesGcmCipher {
    key: Zeroizing<[u8; 32]>,
}

fn noise_nonce(n: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_be_bytes());
    nonce
}

impl Cipher for AesGcmCipher {
    fn name(&self) -> &'static str {
        "AESGCM"
    }

    fn set(&mut self, key: &[u8; 32]) {
        self.key.copy_from_slice(key);
    }

    fn encrypt(&self, nonce: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        let len = plaintext.len();
        if out.len() < len + TAG_LEN {
            return 0; // snow sizes `out`; never reached
        }
        let aead = Aes256Gcm::new((&*self.key).into());
        out[..len].copy_from_slice(plaintext);
        match aead.encrypt_in_place_detached(&noise_nonce(nonce).into(), authtext, &mut out[..len])
        {
            Ok(tag) => {
                out[len..len + TAG_LEN].copy_from_slice(&tag);
                len + TAG_LEN
            }
            Err(_) => 0,
        }
    }

    fn decrypt(
        &self,
        nonce: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let len = ciphertext
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(snow::Error::Decrypt)?;
        if out.len() < len {
            return Err(snow::Error::Decrypt);
        }
        let aead = Aes256Gcm::new((&*self.key).into());
        out[..len].copy_from_slice(&ciphertext[..len]);
        let tag = aes_gcm::Tag::from_slice(&ciphertext[len..]);
        match aead.decrypt_in_place_detached(
            &noise_nonce(nonce).into(),
            authtext,
            &mut out[..len],
            tag,
        ) {
            Ok(()) => Ok(len),
            Err(_) => {
                out[..len].zeroize();
                Err(snow::Error::Decrypt)
            }
        }
    }
}

/// The keys one side brings to a handshake.
pub struct Keys<'a> {
    /// The pre-shared key (the bond key, or the resumption secret).
    pub psk: &'a [u8; 32],
    /// Own static private key (KK only).
    pub local_static: Option<&'a StaticSecret>,
    /// The peer's static public key (KK only).
    pub remote_static: Option<&'a PublicKey>,
}

/// What a finished Noise handshake gives the link's key schedule.
pub struct NoiseOutputs {
    /// The handshake hash `h`.
    pub handshake_hash: [u8; 32],
    /// The split's first key (initiator to responder).
    pub k1: Secret,
    /// The split's second key (responder to initiator).
    pub k2: Secret,
}

/// One side of a Noise handshake, through snow with [`LinkResolver`]. This is the only way
/// the link runs Noise (the known-answer tests go through it too).
pub struct NoiseHandshake {
    state: snow::HandshakeState,
}

fn params(pattern: Pattern) -> Result<NoiseParams, HandshakeError> {
    pattern
        .name()
        .parse()
        .map_err(|_| HandshakeError::Malformed)
}

fn auth(e: snow::Error) -> HandshakeError {
    match e {
        snow::Error::Input => HandshakeError::Malformed,
        _ => HandshakeError::AuthenticationFailed,
    }
}

impl NoiseHandshake {
    fn build(
        pattern: Pattern,
        initiator: bool,
        prologue: &[u8],
        keys: &Keys<'_>,
        ephemeral: Ephemeral,
    ) -> Result<Self, HandshakeError> {
        let resolver = Box::new(LinkResolver::new(ephemeral));
        let mut builder = snow::Builder::with_resolver(params(pattern)?, resolver)
            .prologue(prologue)
            .and_then(|b| b.psk(0, keys.psk))
            .map_err(|_| HandshakeError::Malformed)?;
        let local = keys.local_static.map(|s| Zeroizing::new(s.to_bytes()));
        let remote = keys.remote_static.map(|p| p.to_bytes());
        if let Some(s) = &local {
            builder = builder
                .local_private_key(&s[..])
                .map_err(|_| HandshakeError::Malformed)?;
        }
        if let Some(p) = &remote {
            builder = builder
                .remote_public_key(&p[..])
                .map_err(|_| HandshakeError::Malformed)?;
        }
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .map_err(|_| HandshakeError::Malformed)?;
        Ok(NoiseHandshake { state })
    }

    /// The initiator (the remote).
    ///
    /// # Errors
    /// `Malformed` if snow refuses the parameters (a missing key for the pattern).
    pub fn initiator(
        pattern: Pattern,
        prologue: &[u8],
        keys: &Keys<'_>,
        ephemeral: Ephemeral,
    ) -> Result<Self, HandshakeError> {
        Self::build(pattern, true, prologue, keys, ephemeral)
    }

    /// The responder (the aircraft).
    ///
    /// # Errors
    /// `Malformed` if snow refuses the parameters (a missing key for the pattern).
    pub fn responder(
        pattern: Pattern,
        prologue: &[u8],
        keys: &Keys<'_>,
        ephemeral: Ephemeral,
    ) -> Result<Self, HandshakeError> {
        Self::build(pattern, false, prologue, keys, ephemeral)
    }

    /// Write the next message carrying `payload`.
    ///
    /// # Errors
    /// `AuthenticationFailed` if a DH output is all zeros, `Malformed` out of turn.
    pub fn write_message(&mut self, payload: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let mut out = vec![0u8; payload.len() + 2 * DH_LEN + 2 * TAG_LEN + 64];
        let n = self.state.write_message(payload, &mut out).map_err(auth)?;
        out.truncate(n);
        Ok(out)
    }

    /// Read the next message; returns its payload. A message that fails leaves the state
    /// as it was (snow restores its symmetric state), so a forgery does not spoil the
    /// genuine message.
    ///
    /// # Errors
    /// `AuthenticationFailed` for a tag that does not verify or a low-order key, `Malformed`
    /// for a message too short or out of turn.
    pub fn read_message(&mut self, message: &[u8]) -> Result<Zeroizing<Vec<u8>>, HandshakeError> {
        let mut out = Zeroizing::new(vec![0u8; message.len()]);
        let n = self.state.read_message(message, &mut out).map_err(auth)?;
        out.truncate(n);
        Ok(out)
    }

    /// The handshake hash so far.
    pub fn handshake_hash(&self) -> [u8; 32] {
        let mut h = [0u8; 32];
        let got = self.state.get_handshake_hash();
        let n = got.len().min(32);
        h[..n].copy_from_slice(&got[..n]);
        h
    }

    /// The outputs of a finished handshake.
    ///
    /// # Errors
    /// `Unexpected` if the handshake has not finished.
    pub fn finish(mut self) -> Result<NoiseOutputs, HandshakeError> {
        if !self.state.is_handshake_finished() {
            return Err(HandshakeError::Unexpected);
        }
        let handshake_hash = self.handshake_hash();
        let (mut k1, mut k2) = self.state.dangerously_get_raw_split();
        let out = NoiseOutputs {
            handshake_hash,
            k1: Secret::new(k1),
            k2: Secret::new(k2),
        };
        k1.zeroize();
        k2.zeroize();
        Ok(out)
    }
}

/// A TAI64N-style timestamp (WireGuard's): seconds as TAI64 (2^62 + 10 + Unix seconds) and
/// nanoseconds, both big-endian. Compared as bytes, later is greater.
pub fn tai64n(unix_micros: u64) -> [u8; TIMESTAMP_LEN] {
    let secs = 0x4000_0000_0000_000a_u64.saturating_add(unix_micros / 1_000_000);
    // Microsecond resolution: the remote makes each timestamp at least 1 us after the one
    // before, so reconnections in quick succession are not refused. (WireGuard rounds down to
    // 2^24 ns to hide its clock from the responder; the timestamp here is encrypted to the
    // aircraft, which already sees when each Init arrives.)
    let nanos = u32::try_from((unix_micros % 1_000_000) * 1000).unwrap_or(0);
    let mut out = [0u8; TIMESTAMP_LEN];
    out[..8].copy_from_slice(&secs.to_be_bytes());
    out[8..].copy_from_slice(&nanos.to_be_bytes());
    out
}
