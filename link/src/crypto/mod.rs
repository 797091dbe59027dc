//! Cryptography: the AEAD provider trait, secrets, and the key schedule.
//!
//! No primitive is implemented here: AES-256-GCM comes from RustCrypto's `aes-gcm` (the
//! default, pure Rust, `no_std`) or from AWS-LC (feature `aws-lc`, about four times faster on
//! x86-64); HKDF-SHA256 from RustCrypto's `hkdf`.

mod keys;
pub mod label;
mod rustcrypto;

#[cfg(feature = "aws-lc")]
mod awslc;

pub use keys::{traffic_key, traffic_secrets, updated_traffic_secret, TrafficSecrets};
pub use rustcrypto::RustCrypto;

#[cfg(feature = "aws-lc")]
pub use awslc::AwsLc;

use core::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of an AES-256 key and of every secret in the key schedule.
pub const KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of an AES-GCM tag.
pub const TAG_LEN: usize = crate::wire::TAG_LEN;

/// The AEAD failed: the tag did not verify, or the provider refused the input.
///
/// Deliberately carries no detail, so nothing about a forged frame leaks to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadError;

/// A source of AES-256-GCM keys. Implement it to plug in another AEAD library.
pub trait AeadProvider: 'static {
    /// An expanded key, ready to seal and open.
    type Key: AeadKey;
    /// A short name for reports and benchmarks.
    const NAME: &'static str;
    /// Expand a 32-byte key.
    fn key(bytes: &Secret) -> Self::Key;
}

/// One AES-256-GCM key. Implementations must zeroize key material on drop.
pub trait AeadKey {
    /// Encrypt `in_out[..len - TAG_LEN]` in place and write the tag into the last
    /// [`TAG_LEN`] bytes of `in_out`.
    ///
    /// # Errors
    /// [`AeadError`] if `in_out` is shorter than [`TAG_LEN`] or the provider fails.
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<(), AeadError>;

    /// Verify the tag in the last [`TAG_LEN`] bytes of `in_out` and decrypt the bytes before
    /// it in place. On error the buffer's contents are unspecified.
    ///
    /// # Errors
    /// [`AeadError`] if the tag does not verify.
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<(), AeadError>;
}

/// The nonce for a packet counter: four zero bytes, then the counter, big-endian.
///
/// Each direction has its own key, so a counter is never used twice under one key.
pub fn nonce(counter: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// 32 bytes of secret key material: zeroized on drop, compared in constant time, never
/// printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret([u8; KEY_LEN]);

impl Secret {
    /// Wrap secret bytes.
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Secret(bytes)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests;
