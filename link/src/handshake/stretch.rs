//! The remote's key stretching as a job the caller may run off the link's event loop.
//!
//! The remote's OPAQUE finish stretches the code (Argon2id: tens of milliseconds on a PC,
//! hundreds on a small controller), for a pairing's `Response` and for a storage unlock's
//! `UnlockResponse` alike. Inside `handle_datagram` that holds up every frame of the link
//! (and, on a ground station, of every other link on its lock), so a caller with threads to
//! spare turns on [`crate::Link::set_defer_key_stretching`], takes the work out
//! ([`KeyStretch`]) and hands back its result ([`KeyStretched`]) while the link carries on:
//!
//! ```text
//!   Response / UnlockResponse ──▶ handle_datagram ──▶ Event::KeyStretchReady
//!   poll_key_stretch() ──▶ KeyStretch ──run() on another thread──▶ KeyStretched
//!   handle_key_stretched(now, KeyStretched) ──▶ the Finish / UnlockFinish goes out
//! ```
//!
//! Each job carries a random tag: a result whose attempt was given up, restarted or
//! replaced since finds no job of that tag waiting and changes nothing.

use alloc::boxed::Box;
use alloc::vec::Vec;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use zeroize::Zeroizing;

use super::pake::{ClientLogin, KsfParams, PakeError};
use crate::crypto::Secret;

/// What a key stretching finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A pairing's `Response` (the endpoint's handshake).
    Pair,
    /// A storage unlock's `UnlockResponse` (the session's).
    Unlock,
}

/// A remote's OPAQUE finish waiting on its key stretching, taken out of the link by
/// [`crate::Link::poll_key_stretch`] so that it runs off the link's event loop (the tokio
/// adapter runs it on a blocking thread). It holds the code, zeroized on drop.
pub struct KeyStretch {
    purpose: Purpose,
    tag: u64,
    client: Box<ClientLogin>,
    code: Zeroizing<Vec<u8>>,
    ke2: Vec<u8>,
    context: [u8; 32],
    ksf: KsfParams,
    /// Seeded from the link's generator when the job was made.
    rng: ChaCha20Rng,
}

impl core::fmt::Debug for KeyStretch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyStretch")
            .field("purpose", &self.purpose)
            .field("ksf", &self.ksf)
            .finish_non_exhaustive()
    }
}

impl KeyStretch {
    /// A job finishing `client`'s login with `code` against `ke2`; its tag and generator
    /// are drawn from `rng`.
    pub(crate) fn new(
        purpose: Purpose,
        client: Box<ClientLogin>,
        code: Zeroizing<Vec<u8>>,
        ke2: &[u8],
        context: [u8; 32],
        ksf: KsfParams,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Self {
        let tag = rng.next_u64();
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *seed);
        KeyStretch {
            purpose,
            tag,
            client,
            code,
            ke2: ke2.to_vec(),
            context,
            ksf,
            rng: ChaCha20Rng::from_seed(*seed),
        }
    }

    /// The tag its result will carry.
    pub(crate) fn tag(&self) -> u64 {
        self.tag
    }

    /// Stretch the code and finish the OPAQUE login: the slow part (Argon2id with the
    /// link's [`crate::Config::ksf`]). Give the result to
    /// [`crate::Link::handle_key_stretched`].
    #[must_use]
    pub fn run(mut self) -> KeyStretched {
        let result = self.client.finish(
            &self.code,
            &self.ke2,
            &self.context,
            self.ksf,
            &mut self.rng,
        );
        KeyStretched {
            purpose: self.purpose,
            tag: self.tag,
            result,
        }
    }
}

/// The result of [`KeyStretch::run`]: the login's KE3 and session secret, or why it failed
/// (a wrong code, or a `Response` someone forged).
#[derive(Debug)]
pub struct KeyStretched {
    pub(crate) purpose: Purpose,
    pub(crate) tag: u64,
    pub(crate) result: Result<(Vec<u8>, Secret), PakeError>,
}
