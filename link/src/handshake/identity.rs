//! The long-lived security state of each end, which the application persists.
//!
//! The aircraft holds its link id (public), its static X25519 key, the OPAQUE password file
//! (never the code) and the bonds of the remotes linked to it. Changing the code replaces the
//! password file and revokes every bond. The remote holds its static X25519 key and, once
//! linked, the bond: the aircraft's link id and static public key.

use alloc::vec::Vec;

use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::keys::{bond_id, bond_key, LinkId};
use super::pake::{self, KsfParams, PakeError, PasswordFile};
use crate::crypto::Secret;
use crate::wire::handshake::BOND_ID_LEN;

const FORMAT_V1: u8 = 1;
/// Version 2 (issue 15): each bond carries the newest handshake timestamp accepted from it.
const FORMAT_V2: u8 = 2;

/// Revoked remotes whose newest handshake timestamp the aircraft remembers (PROTOCOL.md 25).
pub const MAX_RETIRED_TIMESTAMPS: usize = 64;

/// A handshake timestamp (TAI64N, PROTOCOL.md 20): all zeros means none yet.
pub type HandshakeTimestamp = [u8; crate::handshake::noise::TIMESTAMP_LEN];

/// The aircraft's security state.
pub struct AircraftIdentity {
    link_id: LinkId,
    static_secret: StaticSecret,
    password: PasswordFile,
    ksf: KsfParams,
    code_epoch: u32,
    bonds: Vec<PublicKey>,
    /// The bond key of each bond, in the same order (cached: one X25519 each).
    bond_keys: Vec<Secret>,
    /// The newest handshake timestamp accepted from each bond, in the same order (persisted:
    /// a recorded `Init` is refused after a restart too).
    newest: Vec<HandshakeTimestamp>,
    /// The newest timestamps of remotes a code change revoked, oldest revocation first, at
    /// most [`MAX_RETIRED_TIMESTAMPS`]: a remote that pairs again has the same static key,
    /// hence the same bond key, and its `Init`s recorded before the change must stay refused.
    retired: Vec<(PublicKey, HandshakeTimestamp)>,
}

impl AircraftIdentity {
    /// Activate an aircraft: set its security code. Only the OPAQUE password file derived from
    /// the code is kept. Run this over a channel the owner trusts (e.g. a cable at
    /// activation).
    ///
    /// # Errors
    /// [`PakeError`] if the key-stretching parameters are invalid.
    pub fn provision(
        link_id: LinkId,
        code: &[u8],
        ksf: KsfParams,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, PakeError> {
        Ok(AircraftIdentity {
            link_id,
            static_secret: StaticSecret::random_from_rng(&mut *rng),
            password: pake::provision(code, ksf, rng)?,
            ksf,
            code_epoch: 1,
            bonds: Vec::new(),
            bond_keys: Vec::new(),
            newest: Vec::new(),
            retired: Vec::new(),
        })
    }

    /// Replace the security code. Every bond is revoked: each remote must pair again. Their
    /// newest handshake timestamps are kept (the last [`MAX_RETIRED_TIMESTAMPS`]), so a
    /// remote that pairs again does not make its old recorded `Init`s acceptable.
    ///
    /// # Errors
    /// [`PakeError`] if the key-stretching parameters are invalid; nothing changes then.
    pub fn change_code(
        &mut self,
        new_code: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), PakeError> {
        self.password = pake::provision(new_code, self.ksf, rng)?;
        self.code_epoch = self.code_epoch.wrapping_add(1);
        self.bond_keys.clear();
        for (remote, ts) in self.bonds.drain(..).zip(self.newest.drain(..)) {
            self.retired.retain(|(r, _)| *r != remote);
            if ts != [0; 12] {
                self.retired.push((remote, ts));
            }
        }
        let excess = self.retired.len().saturating_sub(MAX_RETIRED_TIMESTAMPS);
        self.retired.drain(..excess);
        Ok(())
    }

    /// The public link id (keys the anti-DoS MAC; remotes must know it).
    pub fn link_id(&self) -> LinkId {
        self.link_id
    }

    /// The aircraft's static public key.
    pub fn static_public(&self) -> PublicKey {
        PublicKey::from(&self.static_secret)
    }

    /// How many times the code was set (1 after provisioning).
    pub fn code_epoch(&self) -> u32 {
        self.code_epoch
    }

    /// The remotes linked to this aircraft.
    pub fn bonds(&self) -> &[PublicKey] {
        &self.bonds
    }

    /// The key-stretching parameters the code was registered with.
    pub fn ksf(&self) -> KsfParams {
        self.ksf
    }

    pub(crate) fn password(&self) -> &PasswordFile {
        &self.password
    }

    pub(crate) fn static_secret(&self) -> &StaticSecret {
        &self.static_secret
    }

    pub(crate) fn add_bond(&mut self, remote: PublicKey) {
        if !self.bonds.contains(&remote) {
            let key = bond_key(&self.static_secret.diffie_hellman(&remote));
            self.bond_keys.push(key);
            self.bonds.push(remote);
            let newest = match self.retired.iter().position(|(r, _)| *r == remote) {
                Some(i) => self.retired.remove(i).1,
                None => [0; 12],
            };
            self.newest.push(newest);
        }
    }

    /// The newest handshake timestamp accepted from the bonded remote `remote` (zeros: none).
    pub fn newest_timestamp(&self, remote: &[u8; 32]) -> Option<HandshakeTimestamp> {
        let i = self.bonds.iter().position(|pk| pk.as_bytes() == remote)?;
        self.newest.get(i).copied()
    }

    /// Record a newer handshake timestamp for `remote`; false if it is not newer (or no bond).
    pub(crate) fn advance_timestamp(&mut self, remote: &[u8; 32], ts: HandshakeTimestamp) -> bool {
        let Some(i) = self.bonds.iter().position(|pk| pk.as_bytes() == remote) else {
            return false;
        };
        match self.newest.get_mut(i) {
            Some(newest) if ts > *newest => {
                *newest = ts;
                true
            }
            _ => false,
        }
    }

    /// The bonded remote with this id, and its bond key.
    pub(crate) fn find_bond(&self, id: &[u8; BOND_ID_LEN]) -> Option<(PublicKey, &Secret)> {
        let i = self.bonds.iter().position(|pk| &bond_id(pk) == id)?;
        Some((self.bonds[i], &self.bond_keys[i]))
    }

    /// Encode for persistence. Holds secrets: store it as such.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let pw = self.password.to_bytes();
        // Sized up front: a growing Vec would leave copies of the secrets in freed memory.
        let len = 1 + 16 + 32 + 4 + 12 + 4 + pw.len() + 4 + (32 + 12) * self.bonds.len();
        let len = len + 4 + (32 + 12) * self.retired.len();
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        out.push(FORMAT_V2);
        out.extend_from_slice(&self.link_id);
        out.extend_from_slice(self.static_secret.as_bytes());
        out.extend_from_slice(&self.code_epoch.to_be_bytes());
        for v in [
            self.ksf.memory_kib,
            self.ksf.iterations,
            self.ksf.parallelism,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&(pw.len() as u32).to_be_bytes());
        out.extend_from_slice(&pw);
        out.extend_from_slice(&(self.bonds.len() as u32).to_be_bytes());
        for (b, ts) in self.bonds.iter().zip(&self.newest) {
            out.extend_from_slice(b.as_bytes());
            out.extend_from_slice(ts);
        }
        out.extend_from_slice(&(self.retired.len() as u32).to_be_bytes());
        for (r, ts) in &self.retired {
            out.extend_from_slice(r.as_bytes());
            out.extend_from_slice(ts);
        }
        debug_assert_eq!(out.len(), len, "sized up front");
        out
    }

    /// Decode what [`AircraftIdentity::to_bytes`] wrote (format 2), or the format 1 of
    /// earlier versions (no timestamps: every bond starts with none).
    ///
    /// # Errors
    /// [`PakeError::Storage`] for bytes that are not a valid identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PakeError> {
        let mut r = Fields(bytes);
        let version = r.take(1)?;
        let with_timestamps = match version {
            [FORMAT_V1] => false,
            [FORMAT_V2] => true,
            _ => return Err(PakeError::Storage),
        };
        let link_id: LinkId = r.array()?;
        let static_secret = StaticSecret::from(r.array::<32>()?);
        let code_epoch = r.u32()?;
        let ksf = KsfParams {
            memory_kib: r.u32()?,
            iterations: r.u32()?,
            parallelism: r.u32()?,
        };
        let pw_len = r.u32()? as usize;
        let password = PasswordFile::from_bytes(r.take(pw_len)?)?;
        let n = r.u32()? as usize;
        let entry = if with_timestamps { 32 + 12 } else { 32 };
        if n > r.0.len() / entry {
            return Err(PakeError::Storage);
        }
        let mut bonds = Vec::with_capacity(n);
        let mut newest = Vec::with_capacity(n);
        for _ in 0..n {
            bonds.push(PublicKey::from(r.array::<32>()?));
            newest.push(if with_timestamps { r.array()? } else { [0; 12] });
        }
        let mut retired = Vec::new();
        if with_timestamps {
            let n = r.u32()? as usize;
            if n > MAX_RETIRED_TIMESTAMPS || n > r.0.len() / (32 + 12) {
                return Err(PakeError::Storage);
            }
            for _ in 0..n {
                retired.push((PublicKey::from(r.array::<32>()?), r.array()?));
            }
        }
        if !r.0.is_empty() {
            return Err(PakeError::Storage);
        }
        let bond_keys = bonds
            .iter()
            .map(|pk| bond_key(&static_secret.diffie_hellman(pk)))
            .collect();
        Ok(AircraftIdentity {
            link_id,
            static_secret,
            password,
            ksf,
            code_epoch,
            bonds,
            bond_keys,
            newest,
            retired,
        })
    }
}

impl core::fmt::Debug for AircraftIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AircraftIdentity")
            .field("link_id", &self.link_id)
            .field("code_epoch", &self.code_epoch)
            .field("bonds", &self.bonds.len())
            .finish_non_exhaustive()
    }
}

/// What a remote keeps about the aircraft it is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bond {
    /// The aircraft's link id.
    pub link_id: LinkId,
    /// The aircraft's static public key.
    pub aircraft_static: PublicKey,
}

/// The remote's security state.
#[derive(Clone)]
pub struct RemoteIdentity {
    static_secret: StaticSecret,
    bond: Option<Bond>,
}

impl RemoteIdentity {
    /// A fresh identity with a new static key and no bond.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        RemoteIdentity {
            static_secret: StaticSecret::random_from_rng(rng),
            bond: None,
        }
    }

    /// The remote's static public key.
    pub fn static_public(&self) -> PublicKey {
        PublicKey::from(&self.static_secret)
    }

    /// The aircraft this remote is linked to, if any.
    pub fn bond(&self) -> Option<&Bond> {
        self.bond.as_ref()
    }

    /// Record the bond a pairing produced.
    pub fn set_bond(&mut self, bond: Bond) {
        self.bond = Some(bond);
    }

    pub(crate) fn static_secret(&self) -> &StaticSecret {
        &self.static_secret
    }

    /// Encode for persistence. Holds a secret key: store it as such.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(82));
        out.push(FORMAT_V1);
        out.extend_from_slice(self.static_secret.as_bytes());
        if let Some(b) = &self.bond {
            out.push(1);
            out.extend_from_slice(&b.link_id);
            out.extend_from_slice(b.aircraft_static.as_bytes());
        } else {
            out.push(0);
        }
        out
    }

    /// Decode what [`RemoteIdentity::to_bytes`] wrote.
    ///
    /// # Errors
    /// [`PakeError::Storage`] for bytes that are not a valid identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PakeError> {
        let mut r = Fields(bytes);
        if r.take(1)? != [FORMAT_V1] {
            return Err(PakeError::Storage);
        }
        let static_secret = StaticSecret::from(r.array::<32>()?);
        let bond = match r.take(1)? {
            [0] => None,
            [1] => Some(Bond {
                link_id: r.array()?,
                aircraft_static: PublicKey::from(r.array::<32>()?),
            }),
            _ => return Err(PakeError::Storage),
        };
        if !r.0.is_empty() {
            return Err(PakeError::Storage);
        }
        Ok(RemoteIdentity {
            static_secret,
            bond,
        })
    }
}

impl core::fmt::Debug for RemoteIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RemoteIdentity")
            .field("bond", &self.bond)
            .finish_non_exhaustive()
    }
}

/// Checked reads for the persistence formats.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PakeError> {
        if self.0.len() < n {
            return Err(PakeError::Storage);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], PakeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32, PakeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
}
