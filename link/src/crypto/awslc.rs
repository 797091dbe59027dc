//! The fast AEAD provider: AWS-LC's AES-256-GCM through `aws-lc-rs` (feature `aws-lc`).

use super::{AeadError, AeadKey, AeadProvider, Secret, NONCE_LEN, TAG_LEN};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

/// AWS-LC AES-256-GCM.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsLc;

/// An expanded AWS-LC key. AWS-LC cleanses the key schedule when it is freed.
pub struct AwsLcKey(LessSafeKey);

impl AeadProvider for AwsLc {
    type Key = AwsLcKey;
    const NAME: &'static str = "aws-lc";

    fn key(bytes: &Secret) -> AwsLcKey {
        // AES_256_GCM takes exactly 32 bytes, which `Secret` always holds: this cannot fail.
        #[allow(clippy::expect_used)]
        let unbound = UnboundKey::new(&AES_256_GCM, bytes.expose())
            .expect("a 32-byte key is valid for AES-256-GCM");
        AwsLcKey(LessSafeKey::new(unbound))
    }
}

impl AeadKey for AwsLcKey {
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
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), plain)
            .map_err(|_| AeadError)?;
        tag_out.copy_from_slice(tag.as_ref());
        Ok(())
    }

    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<(), AeadError> {
        self.0
            .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), in_out)
            .map(|_| ())
            .map_err(|_| AeadError)
    }
}
