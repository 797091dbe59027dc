//! OPAQUE (RFC 9807) through `opaque-ke`: proving knowledge of the aircraft's security code
//! (the pairing password) without ever sending it or storing it.
//!
//! The aircraft is the OPAQUE server, the remote is the client, and there is one account
//! ([`CREDENTIAL_ID`]). [`provision`] runs both halves of registration in one process (over a
//! channel the owner trusts) and yields the aircraft's [`PasswordFile`]. A login is then:
//!
//! ```text
//! remote                                         aircraft
//! client_start(code)              -- KE1 -->     server_start(file, KE1, context)
//! ClientLogin::finish(code, KE2,  <-- KE2 --
//!                     context)    -- KE3 -->     ServerLogin::finish(KE3, context)
//! session Secret                                 the same session Secret
//! ```
//!
//! Each [`server_start`] gives the client one online guess: the KE2 alone tells it whether its
//! code was right, whether or not it ever sends a KE3. Brute-force limits must therefore count
//! a guess when a KE2 is issued, and clear it only on a successful [`ServerLogin::finish`].
//!
//! Both sides must agree on the `context` (the caller binds the protocol version, suite and
//! transcript into it) and on the [`KsfParams`] the code was provisioned with.

use alloc::vec::Vec;
use core::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use opaque_ke::errors::{InternalError, ProtocolError};
use opaque_ke::generic_array::typenum::Unsigned;
use opaque_ke::{
    CipherSuite, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialFinalization, CredentialFinalizationLen,
    CredentialRequest, CredentialRequestLen, CredentialResponse, CredentialResponseLen,
    Identifiers, Ristretto255, ServerLoginParameters, ServerRegistration, ServerRegistrationLen,
    ServerSetup, TripleDh,
};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;
use zeroize::Zeroizing;

use crate::crypto::{label, Secret, KEY_LEN};

/// The credential identifier of the one account: the remote.
pub const CREDENTIAL_ID: &[u8] = b"rotorlink remote";

/// Length of KE1 (`CredentialRequest`, remote -> aircraft): 96 bytes.
pub const KE1_LEN: usize = <CredentialRequestLen<Suite> as Unsigned>::USIZE;
/// Length of KE2 (`CredentialResponse`, aircraft -> remote): 320 bytes.
pub const KE2_LEN: usize = <CredentialResponseLen<Suite> as Unsigned>::USIZE;
/// Length of KE3 (`CredentialFinalization`, remote -> aircraft): 64 bytes.
pub const KE3_LEN: usize = <CredentialFinalizationLen<Suite> as Unsigned>::USIZE;

/// Version byte that starts a serialized [`PasswordFile`].
const FILE_VERSION: u8 = 1;
/// `ServerSetup<Suite>`: OPRF seed (SHA-512 output, 64) + AKE private key (32) + the dummy
/// public key used for unknown accounts (32). `opaque-ke` does not export its length type;
/// a test checks this against `serialize()`.
const SETUP_LEN: usize = 64 + 32 + 32;
/// `ServerRegistration<Suite>`: client public key, masking key and envelope.
const REGISTRATION_LEN: usize = <ServerRegistrationLen<Suite> as Unsigned>::USIZE;
/// Length of a serialized [`PasswordFile`]: version byte, server setup, registration.
pub const PASSWORD_FILE_LEN: usize = 1 + SETUP_LEN + REGISTRATION_LEN;

/// The OPAQUE suite: ristretto255 OPRF, `TripleDh<Ristretto255, Sha512>` AKE, Argon2id KSF.
#[derive(Debug, Clone, Copy)]
pub struct Suite;

impl CipherSuite for Suite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, Sha512>;
    type Ksf = Ksf;
}

/// The key-stretching function OPAQUE runs on the OPRF output: Argon2id, in every build but
/// the fuzz build.
#[cfg(not(fuzzing))]
type Ksf = Argon2<'static>;

/// The fuzz build's key-stretching function (see [`fuzz_ksf`]).
#[cfg(fuzzing)]
type Ksf = fuzz_ksf::CheapKsf;

/// Whether OPAQUE's key-stretching function is the real Argon2id: false only in the fuzz build.
/// The unit tests check it is true (and that the function is Argon2id) in a normal build.
pub const KSF_IS_ARGON2ID: bool = !cfg!(fuzzing);

/// The fuzz build's stand-in for Argon2id, compiled only with `--cfg fuzzing`.
///
/// Why: `cargo fuzz` (and ClusterFuzzLite, which runs `cargo fuzz build`) passes `--cfg
/// fuzzing` to every crate; nothing else does, and no release is built with it. Argon2id, even
/// with [`KsfParams::INSECURE_FAST`], is work the fuzzer gains nothing from: its output is
/// only ever compared, never parsed. The stand-in is one HKDF-SHA256 of the input, keyed by
/// the parameters: deterministic, different for different codes (OPAQUE applies it to the
/// OPRF output, which depends on the code, so a wrong code still fails) and for different
/// parameters (so mismatched parameters still fail), and the parameters are still validated
/// with Argon2's rules (invalid ones are still [`PakeError::Ksf`]).
///
/// It cannot be tied to `debug_assertions` as a guard: `cargo fuzz build -O` (what
/// ClusterFuzzLite runs) and OSS-Fuzz's coverage builds turn them off. The guard is the cfg
/// itself, set only by fuzzing tools, and [`KSF_IS_ARGON2ID`], which the unit tests check.
#[cfg(fuzzing)]
pub mod fuzz_ksf {
    use hkdf::Hkdf;
    use opaque_ke::errors::InternalError;
    use opaque_ke::generic_array::{ArrayLength, GenericArray};
    use sha2::Sha256;

    use super::KsfParams;

    /// HKDF-SHA256 keyed by the Argon2 parameters. Fuzzing only.
    #[derive(Debug)]
    pub struct CheapKsf(pub(super) KsfParams);

    impl Default for CheapKsf {
        fn default() -> Self {
            CheapKsf(KsfParams::default())
        }
    }

    impl opaque_ke::ksf::Ksf for CheapKsf {
        fn hash<L: ArrayLength<u8>>(
            &self,
            input: GenericArray<u8, L>,
        ) -> Result<GenericArray<u8, L>, InternalError> {
            let mut info = [0u8; 12];
            info[..4].copy_from_slice(&self.0.memory_kib.to_be_bytes());
            info[4..8].copy_from_slice(&self.0.iterations.to_be_bytes());
            info[8..].copy_from_slice(&self.0.parallelism.to_be_bytes());
            let hkdf = Hkdf::<Sha256>::new(Some(b"rotorlink fuzzing-only KSF"), &input);
            let mut output = GenericArray::default();
            hkdf.expand(&info, &mut output)
                .map_err(|_| InternalError::KsfError)?;
            Ok(output)
        }
    }
}

/// Argon2id parameters of the key-stretching function. Public, but both sides must use the
/// same: the remote's login must use the parameters the code was provisioned with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KsfParams {
    /// Memory in KiB (at least 8 per lane, at most [`KsfParams::MAX_MEMORY_KIB`]).
    pub memory_kib: u32,
    /// Number of passes over the memory (at least 1).
    pub iterations: u32,
    /// Number of lanes (1 to 2^24 - 1; computed one after the other here).
    pub parallelism: u32,
}

impl KsfParams {
    /// OWASP's Argon2id minimum: 19 MiB, 2 iterations, 1 lane. The default.
    pub const INTERACTIVE: KsfParams = KsfParams {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// Argon2's minimums (8 KiB, 1 iteration, 1 lane): no protection against guessing at all.
    /// ONLY for tests and fuzzing; never provision a real code with it.
    pub const INSECURE_FAST: KsfParams = KsfParams {
        memory_kib: Params::MIN_M_COST,
        iterations: Params::MIN_T_COST,
        parallelism: Params::MIN_P_COST,
    };

    /// Largest accepted memory cost, 1 GiB: Argon2 allocates it up front, and an allocation
    /// failure aborts rather than returning an error.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;

    fn argon2(self) -> Result<Argon2<'static>, PakeError> {
        if self.memory_kib > Self::MAX_MEMORY_KIB {
            return Err(PakeError::Ksf);
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|_| PakeError::Ksf)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// The key-stretching function with these parameters: Argon2id.
    #[cfg(not(fuzzing))]
    fn ksf(self) -> Result<Ksf, PakeError> {
        self.argon2()
    }

    /// The fuzz build's stand-in, after the same validation as Argon2id's parameters.
    #[cfg(fuzzing)]
    fn ksf(self) -> Result<Ksf, PakeError> {
        self.argon2().map(|_| fuzz_ksf::CheapKsf(self))
    }
}

impl Default for KsfParams {
    fn default() -> Self {
        Self::INTERACTIVE
    }
}

/// Why an OPAQUE step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PakeError {
    /// A message has the wrong length or does not deserialize (or the context is longer than
    /// 65535 bytes).
    Malformed,
    /// The client could not open its envelope or verify the server: wrong code, KE2 tampered,
    /// or the two sides disagree on the context or the KSF parameters.
    WrongCode,
    /// The server: KE3's MAC is wrong (or the context differs from [`server_start`]'s).
    AuthenticationFailed,
    /// Invalid Argon2 parameters.
    Ksf,
    /// Bad [`PasswordFile`] bytes.
    Storage,
}

impl fmt::Display for PakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PakeError::Malformed => "malformed OPAQUE message",
            PakeError::WrongCode => "wrong security code or tampered OPAQUE response",
            PakeError::AuthenticationFailed => "OPAQUE client authentication failed",
            PakeError::Ksf => "invalid Argon2 parameters",
            PakeError::Storage => "invalid password file",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PakeError {}

/// Map an `opaque-ke` error; `invalid_login` is what a failed authentication means here.
fn map_err(e: ProtocolError, invalid_login: PakeError) -> PakeError {
    match e {
        ProtocolError::InvalidLoginError | ProtocolError::ReflectedValueError => invalid_login,
        ProtocolError::LibraryError(InternalError::KsfError) => PakeError::Ksf,
        _ => PakeError::Malformed,
    }
}

/// Check a message length and the context length (OPAQUE encodes it in two bytes) before
/// any crypto.
fn check_lengths(msg: &[u8], expected: usize, context: &[u8]) -> Result<(), PakeError> {
    if msg.len() != expected || context.len() > usize::from(u16::MAX) {
        return Err(PakeError::Malformed);
    }
    Ok(())
}

fn server_params(context: &[u8]) -> ServerLoginParameters<'_, '_> {
    ServerLoginParameters {
        context: Some(context),
        identifiers: Identifiers::default(),
    }
}

/// Reduce OPAQUE's session key to the session secret, and wipe it.
fn session_secret(session_key: &mut [u8]) -> Secret {
    let (mut prk, _) = Hkdf::<Sha256>::extract(Some(label::PAKE_SESSION), session_key);
    session_key.zeroize();
    let mut bytes: [u8; KEY_LEN] = prk.into();
    prk.as_mut_slice().zeroize();
    let secret = Secret::new(bytes);
    bytes.zeroize();
    secret
}

/// What the aircraft stores: the OPAQUE server setup (OPRF seed and AKE key pair) and the
/// password file (the registration record). Never the code itself. Zeroized on drop.
#[derive(Clone)]
pub struct PasswordFile {
    setup: ServerSetup<Suite>,
    registration: ServerRegistration<Suite>,
}

// Marker only: every secret field (OPRF seed, private key, masking key, envelope) is
// `ZeroizeOnDrop` itself in `opaque-ke`.
impl zeroize::ZeroizeOnDrop for PasswordFile {}

impl PasswordFile {
    /// Serialize to [`PASSWORD_FILE_LEN`] bytes: a version byte, the server setup, the
    /// registration. The bytes are secret (they hold the aircraft's private key and OPRF
    /// seed): store them where only the aircraft can read them.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(PASSWORD_FILE_LEN));
        out.push(FILE_VERSION);
        let mut setup = self.setup.serialize();
        out.extend_from_slice(&setup);
        setup.as_mut_slice().zeroize();
        let mut registration = self.registration.serialize();
        out.extend_from_slice(&registration);
        registration.as_mut_slice().zeroize();
        out
    }

    /// Parse bytes from [`PasswordFile::to_bytes`].
    ///
    /// # Errors
    /// [`PakeError::Storage`] if the length or version is wrong or a key does not decode.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PakeError> {
        let rest = match bytes.split_first() {
            Some((&FILE_VERSION, rest)) if bytes.len() == PASSWORD_FILE_LEN => rest,
            _ => return Err(PakeError::Storage),
        };
        let (setup, registration) = rest.split_at(SETUP_LEN);
        Ok(PasswordFile {
            setup: ServerSetup::deserialize(setup).map_err(|_| PakeError::Storage)?,
            registration: ServerRegistration::deserialize(registration)
                .map_err(|_| PakeError::Storage)?,
        })
    }
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordFile(..)")
    }
}

/// Register `code`: both sides of OPAQUE registration in one process, since provisioning
/// happens over a channel the owner trusts. Generates a fresh server setup.
///
/// # Errors
/// [`PakeError::Ksf`] if `ksf` is invalid; [`PakeError::Malformed`] if `opaque-ke` rejects
/// the code (practically impossible).
pub fn provision(
    code: &[u8],
    ksf: KsfParams,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<PasswordFile, PakeError> {
    let ksf_fn = ksf.ksf()?;
    let setup = ServerSetup::<Suite>::new(rng);
    let client = ClientRegistration::<Suite>::start(rng, code)
        .map_err(|e| map_err(e, PakeError::Malformed))?;
    let server = ServerRegistration::<Suite>::start(&setup, client.message, CREDENTIAL_ID)
        .map_err(|e| map_err(e, PakeError::Malformed))?;
    let params = ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf_fn));
    let mut finish = client
        .state
        .finish(rng, code, server.message, params)
        .map_err(|e| map_err(e, PakeError::Malformed))?;
    finish.export_key.as_mut_slice().zeroize();
    Ok(PasswordFile {
        setup,
        registration: ServerRegistration::finish(finish.message.clone()),
    })
}

/// The remote's login state between KE1 and KE3. Zeroized on drop.
#[derive(Clone)]
pub struct ClientLogin(opaque_ke::ClientLogin<Suite>);

impl fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientLogin(..)")
    }
}

/// The remote starts a login with the code the pilot entered: the state, and KE1
/// ([`KE1_LEN`] bytes) to send to the aircraft.
///
/// # Errors
/// [`PakeError::Malformed`] if `opaque-ke` rejects the code (practically impossible).
pub fn client_start(
    code: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(ClientLogin, Vec<u8>), PakeError> {
    let start = opaque_ke::ClientLogin::<Suite>::start(rng, code)
        .map_err(|e| map_err(e, PakeError::Malformed))?;
    Ok((ClientLogin(start.state), start.message.serialize().to_vec()))
}

impl ClientLogin {
    /// Process the aircraft's KE2: KE3 ([`KE3_LEN`] bytes) to send back, and the session
    /// secret. Runs Argon2 with `ksf`, which must be the parameters of [`provision`].
    ///
    /// Does not consume the state: after a forged or corrupted KE2 it still accepts the
    /// genuine one.
    ///
    /// # Errors
    /// [`PakeError::Malformed`] if KE2 is not [`KE2_LEN`] bytes or does not deserialize;
    /// [`PakeError::Ksf`] if `ksf` is invalid; [`PakeError::WrongCode`] if the code is wrong,
    /// KE2 was tampered with, or the aircraft used another context.
    pub fn finish(
        &self,
        code: &[u8],
        ke2: &[u8],
        context: &[u8],
        ksf: KsfParams,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Secret), PakeError> {
        check_lengths(ke2, KE2_LEN, context)?;
        let ksf_fn = ksf.ksf()?;
        let response =
            CredentialResponse::<Suite>::deserialize(ke2).map_err(|_| PakeError::Malformed)?;
        let params =
            ClientLoginFinishParameters::new(Some(context), Identifiers::default(), Some(&ksf_fn));
        let mut result = self
            .0
            .clone()
            .finish(rng, code, response, params)
            .map_err(|e| map_err(e, PakeError::WrongCode))?;
        result.export_key.as_mut_slice().zeroize();
        let secret = session_secret(&mut result.session_key);
        Ok((result.message.serialize().to_vec(), secret))
    }
}

/// The aircraft's login state between KE2 and KE3. Zeroized on drop.
#[derive(Clone)]
pub struct ServerLogin {
    state: opaque_ke::ServerLogin<Suite>,
    /// SHA-256 of [`server_start`]'s context. 3DH binds the context into KE2 and ignores it
    /// at finish, so [`ServerLogin::finish`] checks it here.
    context_hash: [u8; 32],
}

impl fmt::Debug for ServerLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerLogin(..)")
    }
}

/// Check that a KE1 decodes, without running OPAQUE: lets the aircraft refuse garbage before
/// it counts an attempt.
///
/// # Errors
/// [`PakeError::Malformed`] if KE1 is not [`KE1_LEN`] bytes or does not deserialize.
pub fn check_ke1(ke1: &[u8]) -> Result<(), PakeError> {
    check_lengths(ke1, KE1_LEN, &[])?;
    CredentialRequest::<Suite>::deserialize(ke1)
        .map(|_| ())
        .map_err(|_| PakeError::Malformed)
}

/// Aircraft: answer a KE1 with KE2. `context` must be the one the remote will use.
///
/// # Errors
/// [`PakeError::Malformed`] if KE1 is not [`KE1_LEN`] bytes or does not deserialize, or the
/// context is longer than 65535 bytes.
pub fn server_start(
    file: &PasswordFile,
    ke1: &[u8],
    context: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(ServerLogin, Vec<u8>), PakeError> {
    check_lengths(ke1, KE1_LEN, context)?;
    let request = CredentialRequest::<Suite>::deserialize(ke1).map_err(|_| PakeError::Malformed)?;
    let start = opaque_ke::ServerLogin::start(
        rng,
        &file.setup,
        Some(file.registration.clone()),
        request,
        CREDENTIAL_ID,
        server_params(context),
    )
    .map_err(|e| map_err(e, PakeError::Malformed))?;
    let login = ServerLogin {
        state: start.state,
        context_hash: Sha256::digest(context).into(),
    };
    Ok((login, start.message.serialize().to_vec()))
}

impl ServerLogin {
    /// Check the remote's KE3: the session secret, equal to the remote's.
    ///
    /// Does not consume the state: after a forged KE3 it still accepts the genuine one.
    ///
    /// # Errors
    /// [`PakeError::Malformed`] if KE3 is not [`KE3_LEN`] bytes;
    /// [`PakeError::AuthenticationFailed`] if its MAC is wrong or `context` is not the one
    /// given to [`server_start`].
    pub fn finish(&self, ke3: &[u8], context: &[u8]) -> Result<Secret, PakeError> {
        check_lengths(ke3, KE3_LEN, context)?;
        let context_hash: [u8; 32] = Sha256::digest(context).into();
        if !bool::from(context_hash.ct_eq(&self.context_hash)) {
            return Err(PakeError::AuthenticationFailed);
        }
        let ke3 =
            CredentialFinalization::<Suite>::deserialize(ke3).map_err(|_| PakeError::Malformed)?;
        let mut result = self
            .state
            .clone()
            .finish(ke3, server_params(context))
            .map_err(|e| map_err(e, PakeError::AuthenticationFailed))?;
        Ok(session_secret(&mut result.session_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::vec;

    const CODE: &[u8] = b"482916";
    const CTX: &[u8] = b"rotorlink v1 test transcript";
    const FAST: KsfParams = KsfParams::INSECURE_FAST;

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    fn file(seed: u64) -> PasswordFile {
        provision(CODE, FAST, &mut rng(seed)).unwrap()
    }

    /// A full login; returns (client secret, server secret).
    fn login(file: &PasswordFile, code: &[u8], seed: u64) -> Result<(Secret, Secret), PakeError> {
        let mut r = rng(seed);
        let (client, ke1) = client_start(code, &mut r)?;
        let (server, ke2) = server_start(file, &ke1, CTX, &mut r)?;
        let (ke3, client_secret) = client.finish(code, &ke2, CTX, FAST, &mut r)?;
        Ok((client_secret, server.finish(&ke3, CTX)?))
    }

    #[test]
    fn right_code_agrees_and_logins_differ() {
        let f = file(1);
        let (c1, s1) = login(&f, CODE, 2).unwrap();
        assert_eq!(c1, s1);
        let (c2, s2) = login(&f, CODE, 3).unwrap();
        assert_eq!(c2, s2);
        assert_ne!(c1, c2);
    }

    #[test]
    fn wrong_code_fails_at_client() {
        let f = file(1);
        let mut r = rng(2);
        let (client, ke1) = client_start(b"482917", &mut r).unwrap();
        let (_server, ke2) = server_start(&f, &ke1, CTX, &mut r).unwrap();
        // The client cannot produce a KE3, so the server never gets one.
        assert_eq!(
            client
                .finish(b"482917", &ke2, CTX, FAST, &mut r)
                .unwrap_err(),
            PakeError::WrongCode
        );
        // Registered with the right code but logging in with another is the same failure.
        let (client, ke1) = client_start(CODE, &mut r).unwrap();
        let (_server, ke2) = server_start(&f, &ke1, CTX, &mut r).unwrap();
        assert_eq!(
            client.finish(b"", &ke2, CTX, FAST, &mut r).unwrap_err(),
            PakeError::WrongCode
        );
    }

    #[test]
    fn mismatched_ksf_params_fail() {
        let f = file(1);
        let mut r = rng(2);
        let (client, ke1) = client_start(CODE, &mut r).unwrap();
        let (_server, ke2) = server_start(&f, &ke1, CTX, &mut r).unwrap();
        let other = KsfParams {
            iterations: 2,
            ..FAST
        };
        assert_eq!(
            client.finish(CODE, &ke2, CTX, other, &mut r).unwrap_err(),
            PakeError::WrongCode
        );
    }

    #[test]
    fn invalid_ksf_params_rejected() {
        let bad = [
            KsfParams {
                memory_kib: 0,
                ..FAST
            },
            KsfParams {
                iterations: 0,
                ..FAST
            },
            KsfParams {
                parallelism: 0,
                ..FAST
            },
            KsfParams {
                memory_kib: 8,
                parallelism: 2,
                ..FAST
            },
            KsfParams {
                memory_kib: KsfParams::MAX_MEMORY_KIB + 1,
                ..FAST
            },
        ];
        let f = file(1);
        let mut r = rng(2);
        let (client, ke1) = client_start(CODE, &mut r).unwrap();
        let (_server, ke2) = server_start(&f, &ke1, CTX, &mut r).unwrap();
        for ksf in bad {
            assert_eq!(provision(CODE, ksf, &mut r).unwrap_err(), PakeError::Ksf);
            assert_eq!(
                client.finish(CODE, &ke2, CTX, ksf, &mut r).unwrap_err(),
                PakeError::Ksf
            );
        }
        assert_eq!(KsfParams::default(), KsfParams::INTERACTIVE);
    }

    #[test]
    fn tampered_ke2_fails_and_state_survives() {
        let f = file(1);
        let mut r = rng(2);
        let (client, ke1) = client_start(CODE, &mut r).unwrap();
        let (server, ke2) = server_start(&f, &ke1, CTX, &mut r).unwrap();
        for i in 0..ke2.len() {
            // One bit per byte, cycling through the bit positions.
            let mut bad = ke2.clone();
            bad[i] ^= 1 << (i % 8);
            // A broken point encoding is Malformed; anything else fails authentication.
            let err = client.finish(CODE, &bad, CTX, FAST, &mut r).unwrap_err();
            assert!(
                matches!(err, PakeError::WrongCode | PakeError::Malformed),
                "byte {i}: {err:?}"
            );
        }
        let (ke3, client_secret) = client.finish(CODE, &ke2, CTX, FAST, &mut r).unwrap();
        assert_eq!(server.finish(&ke3, CTX).unwrap(), client_secret);
    }

    #[test]
    fn tampered_ke3_fails_and_state_survives() {
        let f = file(1);
        let mut r = rng(2);
        let (client, ke1) = client_start(CODE, &mut r).unwrap();
        let (server, ke2) = server_start(&f, &ke1, CTX, &mut r).unwrap();
        let (ke3, client_secret) = client.finish(CODE, &ke2, CTX, FAST, &mut r).unwrap();
        for i in 0..ke3.len() {
            let mut bad = ke3.clone();
            bad[i] ^= 1 << (i % 8);
            let err = server.finish(&bad, CTX).unwrap_err();
            assert_eq!(err, PakeError::AuthenticationFailed, "byte {i}");
        }
        assert_eq!(server.finish(&ke3, CTX).unwrap(), client_secret);
    }

    #[test]
    fn mismatched_context_fails() {
        let f = file(1);
        let mut r = rng(2);
        let (client, ke1) = client_start(CODE, &mut r).unwrap();
        let (server, ke2) = server_start(&f, &ke1, b"aircraft view", &mut r).unwrap();
        assert_eq!(
            client
                .finish(CODE, &ke2, b"remote view", FAST, &mut r)
                .unwrap_err(),
            PakeError::WrongCode
        );
        // Same context at start, another one at the server's finish.
        let (ke3, _) = client
            .finish(CODE, &ke2, b"aircraft view", FAST, &mut r)
            .unwrap();
        assert_eq!(
            server.finish(&ke3, b"remote view").unwrap_err(),
            PakeError::AuthenticationFailed
        );
        assert!(server.finish(&ke3, b"aircraft view").is_ok());
    }

    #[test]
    fn password_file_round_trips() {
        let f = file(1);
        let bytes = f.to_bytes();
        assert_eq!(bytes.len(), PASSWORD_FILE_LEN);
        assert_eq!(f.setup.serialize().len(), SETUP_LEN);
        let g = PasswordFile::from_bytes(&bytes).unwrap();
        assert_eq!(g.to_bytes(), bytes);
        let (c, s) = login(&g, CODE, 2).unwrap();
        assert_eq!(c, s);
        assert_eq!(std::format!("{g:?}"), "PasswordFile(..)");
    }

    #[test]
    fn password_file_rejects_bad_bytes() {
        let bytes = file(1).to_bytes();
        for len in 0..bytes.len() {
            assert_eq!(
                PasswordFile::from_bytes(&bytes[..len]).unwrap_err(),
                PakeError::Storage
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            PasswordFile::from_bytes(&long).unwrap_err(),
            PakeError::Storage
        );
        let mut version = bytes.clone();
        version[0] = 2;
        assert_eq!(
            PasswordFile::from_bytes(&version).unwrap_err(),
            PakeError::Storage
        );
        // 0xff.. is neither a canonical scalar nor a valid ristretto255 encoding.
        let mut garbage = vec![0xff; PASSWORD_FILE_LEN];
        garbage[0] = FILE_VERSION;
        assert_eq!(
            PasswordFile::from_bytes(&garbage).unwrap_err(),
            PakeError::Storage
        );
        // An all-zero private key is rejected, as is the identity point.
        let mut zero = vec![0; PASSWORD_FILE_LEN];
        zero[0] = FILE_VERSION;
        assert_eq!(
            PasswordFile::from_bytes(&zero).unwrap_err(),
            PakeError::Storage
        );
    }

    #[test]
    fn lengths_match_and_wrong_lengths_are_malformed() {
        assert_eq!((KE1_LEN, KE2_LEN, KE3_LEN), (96, 320, 64));
        assert_eq!(PASSWORD_FILE_LEN, 1 + 128 + 192);
        let f = file(1);
        let mut r = rng(2);
        let (client, ke1) = client_start(CODE, &mut r).unwrap();
        assert_eq!(ke1.len(), KE1_LEN);
        let (server, ke2) = server_start(&f, &ke1, CTX, &mut r).unwrap();
        assert_eq!(ke2.len(), KE2_LEN);
        let (ke3, _) = client.finish(CODE, &ke2, CTX, FAST, &mut r).unwrap();
        assert_eq!(ke3.len(), KE3_LEN);

        let cut = |m: &[u8], n: usize| m[..n].to_vec();
        let grow = |m: &[u8]| [m, &[0]].concat();
        for bad in [vec![], cut(&ke1, KE1_LEN - 1), grow(&ke1)] {
            let err = server_start(&f, &bad, CTX, &mut r).unwrap_err();
            assert_eq!(err, PakeError::Malformed);
        }
        for bad in [vec![], cut(&ke2, KE2_LEN - 1), grow(&ke2)] {
            let err = client.finish(CODE, &bad, CTX, FAST, &mut r).unwrap_err();
            assert_eq!(err, PakeError::Malformed);
        }
        for bad in [vec![], cut(&ke3, KE3_LEN - 1), grow(&ke3)] {
            assert_eq!(server.finish(&bad, CTX).unwrap_err(), PakeError::Malformed);
        }
        // A KE1 of the right length that is not a group element.
        let err = server_start(&f, &[0xff; KE1_LEN], CTX, &mut r).unwrap_err();
        assert_eq!(err, PakeError::Malformed);
        // Contexts longer than OPAQUE's two-byte length field.
        let huge = vec![0; 65536];
        assert_eq!(
            server_start(&f, &ke1, &huge, &mut r).unwrap_err(),
            PakeError::Malformed
        );
    }

    /// A provisioned file and the two states of one login, built once for the proptest.
    fn fixture() -> &'static (PasswordFile, ClientLogin, ServerLogin) {
        static FIXTURE: std::sync::OnceLock<(PasswordFile, ClientLogin, ServerLogin)> =
            std::sync::OnceLock::new();
        FIXTURE.get_or_init(|| {
            let f = file(1);
            let mut r = rng(2);
            let (client, ke1) = client_start(CODE, &mut r).unwrap();
            let (server, _) = server_start(&f, &ke1, CTX, &mut r).unwrap();
            (f, client, server)
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            any_len in prop::collection::vec(any::<u8>(), 0..400),
            mut stored in prop::collection::vec(any::<u8>(), PASSWORD_FILE_LEN),
            ke1 in prop::collection::vec(any::<u8>(), KE1_LEN),
            ke2 in prop::collection::vec(any::<u8>(), KE2_LEN),
            ke3 in prop::collection::vec(any::<u8>(), KE3_LEN),
        ) {
            stored[0] = FILE_VERSION;
            let _ = PasswordFile::from_bytes(&any_len);
            let _ = PasswordFile::from_bytes(&stored);
            let (f, client, server) = fixture();
            let mut r = rng(3);
            for m in [&any_len, &ke1] {
                let _ = server_start(f, m, CTX, &mut r);
            }
            for m in [&any_len, &ke2] {
                prop_assert!(client.finish(CODE, m, CTX, FAST, &mut r).is_err());
            }
            for m in [&any_len, &ke3] {
                prop_assert!(server.finish(m, CTX).is_err());
            }
        }
    }

    /// Outside the fuzz build the key-stretching function is the real Argon2id: the suite's
    /// type, and a known answer (Argon2id v1.3, 8 KiB, 1 pass, 1 lane, OPAQUE's all-zero
    /// 16-byte salt, over the bytes 0 to 63; computed with the `argon2` crate, which is
    /// checked against RFC 9106's vectors) that the fuzz build's stand-in does not give.
    #[test]
    // Constant in any one build: the point is which build runs it.
    #[allow(clippy::assertions_on_constants)]
    fn ksf_is_argon2id_outside_the_fuzz_build() {
        use opaque_ke::generic_array::GenericArray;
        use opaque_ke::ksf::Ksf as _;
        assert!(
            KSF_IS_ARGON2ID,
            "built with --cfg fuzzing: Argon2id is replaced"
        );
        assert_eq!(
            core::any::type_name::<<Suite as CipherSuite>::Ksf>(),
            core::any::type_name::<Argon2<'static>>()
        );
        let mut input = GenericArray::<u8, opaque_ke::generic_array::typenum::U64>::default();
        for (i, b) in input.iter_mut().enumerate() {
            *b = i as u8;
        }
        let out = FAST.ksf().unwrap().hash(input).unwrap();
        assert_eq!(
            hex::encode(out),
            "d57e96a0e76960a08d51b88fc0aab6e0bbb055d82626904333cf8163a06c36de\
             278f8cf3f15d0a6e7752dcca01ef89b635e6f86618b77299da33ba4dbdd1b35c"
        );
    }

    #[test]
    fn interactive_params_login() {
        let ksf = KsfParams::INTERACTIVE;
        let f = provision(CODE, ksf, &mut rng(1)).unwrap();
        let mut r = rng(2);
        let (client, ke1) = client_start(CODE, &mut r).unwrap();
        let (server, ke2) = server_start(&f, &ke1, CTX, &mut r).unwrap();
        let started = std::time::Instant::now();
        let (ke3, client_secret) = client.finish(CODE, &ke2, CTX, ksf, &mut r).unwrap();
        let elapsed = started.elapsed();
        std::println!("client finish with {ksf:?}: {elapsed:?}");
        assert_eq!(server.finish(&ke3, CTX).unwrap(), client_secret);
    }
}
