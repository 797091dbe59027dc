//! The default AEAD provider: RustCrypto's pure-Rust `aes-gcm` (AES-NI and CLMUL when the CPU
//! has them, detected at run time).

use super::{AeadError, AeadKey, AeadProvider, Secret, NONCE_LEN, TAG_LEN};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

/// RustCrypto AES-256-GCM.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

/// An expanded RustCrypto AES-256-GCM key (its round keys are zeroized on drop by `aes`).
pub struct RustCryptoKey(Aes256Gcm);

impl AeadProvider for RustCrypto {
    type Key = RustCryptoKey;
    const NAME: &'static str = "rustcrypto";

    fn key(bytes: &Secret) -> RustCryptoKey {
        RustCryptoKey(Aes256Gcm::new(bytes.expose().into()))
    }
}

impl AeadKey for RustCryptoKey {
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<(), AeadError> {
        let split = in_out.len().checked_sub(TAG_LEN).ok_or(AeadError)?;
        let (plain, tag_out) = in_out.split_at_mut(split);
        let tag = self
            .0
            .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, plain)
            .map_err(|_| AeadError)?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<(), AeadError> {
        let split = in_out.len().checked_sub(TAG_LEN).ok_or(AeadError)?;
        let (cipher, tag) = in_out.split_at_mut(split);
        self.0
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, cipher, Tag::from_slice(tag))
            .map_err(|_| AeadError)
    }
}
