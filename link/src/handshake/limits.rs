//! Brute-force limits on the security code.
//!
//! An active attacker gets one guess at the security code per PAKE attempt, so the aircraft
//! rations attempts with an [`AttemptGuard`]: exponential back-off between failed attempts
//! and a lockout after [`LimitsConfig::max_failures`] of them. Pairing has one such budget;
//! storage unlocks have one per bond, under a total only the owner resets (PROTOCOL.md 24.2).
//! The counts live behind an [`AttemptStore`] the app implements, so they survive a restart.
//!
//! An attempt counts as a failure the moment it *starts*: [`AttemptGuard::begin`] persists the
//! count before the caller does any expensive work, and only [`AttemptGuard::succeed`] (a
//! valid final message) clears it. A handshake that is abandoned, or a crash or power cut in
//! the middle of one, therefore costs the attacker a guess like a wrong code does.
//!
//! Time is the caller's [`Timestamp`]. Ideally it keeps counting across restarts (a real-time
//! clock). If it restarts from zero at boot, or otherwise jumps back, a stored deadline
//! further away than the policy ever sets is pulled in to a full wait from now: a restart
//! never shortens a wait, nor stretches it past one full period.
//!
//! ```
//! use rotorlink::handshake::limits::{AttemptGuard, LimitsConfig, MemoryAttemptStore, Refusal};
//! use rotorlink::Timestamp;
//!
//! let mut guard = AttemptGuard::new(LimitsConfig::default(), MemoryAttemptStore::new());
//! let now = Timestamp::from_millis(1_000);
//! let permit = guard.begin(now)?; // counted and saved before the PAKE runs
//! assert_eq!(permit.remaining_attempts_after_this_one, 9);
//! // ... the handshake fails: nothing to do, the failure is already counted.
//! assert!(matches!(guard.begin(now), Err(Refusal::BackOff { .. })));
//! let later = Timestamp::from_millis(2_000);
//! guard.begin(later)?;
//! // ... the handshake succeeds:
//! guard.succeed()?;
//! assert_eq!(guard.remaining_attempts(), 10);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use core::fmt;
use core::time::Duration;

use sha2::{Digest, Sha256};

use crate::Timestamp;

/// Brute-force policy. Defaults: `max_failures` 10, `base_backoff` 1 s, `max_backoff` 5 min,
/// `lockout` 1 h, `max_unlock_failures` 30.
///
/// Pairing has one budget (`max_failures`, back-off, lockout). Storage unlocks have their
/// own: the same policy per bond, and at most `max_unlock_failures` failed unlocks in all
/// until the owner resets the count, so a stolen remote cannot guess on for ever and
/// neither a pairing flood nor another bond's guesses can lock the pilot out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Consecutive failed attempts that lock the aircraft out (default 10; 0 is treated as 1).
    pub max_failures: u32,
    /// Wait after the first failure; each further failure doubles it (default 1 s).
    pub base_backoff: Duration,
    /// Longest wait between two attempts outside a lockout (default 5 min).
    pub max_backoff: Duration,
    /// How long a lockout lasts (default 1 h).
    pub lockout: Duration,
    /// Failed storage unlocks, over all bonds, that lock unlocks until the owner resets the
    /// count (`Link::reset_attempts` or a code change) (default 30; 0 is treated as 1).
    pub max_unlock_failures: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_failures: 10,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5 * 60),
            lockout: Duration::from_secs(60 * 60),
            max_unlock_failures: 30,
        }
    }
}

impl LimitsConfig {
    /// The wait after an attempt that started with `failures_before` failures already
    /// counted: `base_backoff * 2^failures_before`, at most `max_backoff`. Never overflows.
    pub fn backoff(&self, failures_before: u32) -> Duration {
        1u32.checked_shl(failures_before)
            .and_then(|factor| self.base_backoff.checked_mul(factor))
            .map_or(self.max_backoff, |wait| wait.min(self.max_backoff))
    }

    fn effective_max_failures(&self) -> u32 {
        self.max_failures.max(1)
    }

    fn effective_max_unlock_failures(&self) -> u32 {
        self.max_unlock_failures.max(1)
    }
}

/// One budget of attempts: the pairing one (persisted in [`AttemptRecord`]) or a bond's
/// unlock budget (in memory).
#[derive(Debug, Clone, Copy, Default)]
struct Budget {
    failures: u32,
    next_attempt_at: Timestamp,
    locked_until: Option<Timestamp>,
}

impl Budget {
    fn of(record: &AttemptRecord) -> Self {
        Budget {
            failures: record.failures,
            next_attempt_at: record.next_attempt_at,
            locked_until: record.locked_until,
        }
    }

    /// May an attempt start at `now`?
    fn check(&self, now: Timestamp) -> Result<(), Refusal> {
        if let Some(until) = self.locked_until {
            if now < until {
                return Err(Refusal::LockedOut { until });
            }
        }
        if now < self.next_attempt_at {
            return Err(Refusal::BackOff {
                retry_at: self.next_attempt_at,
            });
        }
        Ok(())
    }

    /// The budget once an attempt started at `now` is counted as failed.
    fn after_attempt(&self, config: &LimitsConfig, now: Timestamp) -> Budget {
        let failures = self.failures.saturating_add(1);
        Budget {
            failures,
            next_attempt_at: now + config.backoff(self.failures),
            locked_until: (failures >= config.effective_max_failures())
                .then(|| now + config.lockout),
        }
    }
}

/// Length of [`AttemptRecord::to_bytes`].
pub const RECORD_LEN: usize = 30;
const RECORD_VERSION: u8 = 2;
/// Bytes covered by the checksum: version, failures, next attempt, lock flag, locked until,
/// unlock failures.
const BODY_LEN: usize = 26;
/// Version 1 records (before unlocks had their own budget) are still read.
const V1_LEN: usize = 26;
const V1_BODY_LEN: usize = 22;

/// What is persisted between attempts and across restarts.
///
/// Encoded by [`to_bytes`](Self::to_bytes) as [`RECORD_LEN`] bytes: version (2), failures
/// (u32), `next_attempt_at` (u64 microseconds), lock flag (0 or 1), `locked_until` (u64, zero
/// when not locked), `unlock_failures` (u32), all big-endian, then the first 4 bytes of a
/// SHA-256 of the rest, so a torn or decayed flash write is detected rather than read as "no
/// failures". A version 1 record (26 bytes, no `unlock_failures`) reads as 0 unlock failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttemptRecord {
    /// Consecutive failed attempts (an attempt counts as failed from the moment it starts).
    pub failures: u32,
    /// No attempt may start before this time.
    pub next_attempt_at: Timestamp,
    /// Locked out until this time, if the failures reached the limit.
    pub locked_until: Option<Timestamp>,
    /// Failed storage unlocks over all bonds since the owner last reset the count (an
    /// unlock counts as failed from the moment it starts, and is refunded if it succeeds).
    pub unlock_failures: u32,
}

impl AttemptRecord {
    /// The stable encoding (see the type's documentation).
    pub fn to_bytes(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0] = RECORD_VERSION;
        b[1..5].copy_from_slice(&self.failures.to_be_bytes());
        b[5..13].copy_from_slice(&self.next_attempt_at.as_micros().to_be_bytes());
        if let Some(until) = self.locked_until {
            b[13] = 1;
            b[14..22].copy_from_slice(&until.as_micros().to_be_bytes());
        }
        b[22..26].copy_from_slice(&self.unlock_failures.to_be_bytes());
        let sum = checksum(&b[..BODY_LEN]);
        b[BODY_LEN..].copy_from_slice(&sum);
        b
    }

    /// Decodes what [`to_bytes`](Self::to_bytes) produced.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] if `bytes` has the wrong length, an unknown version, a bad checksum or
    /// a non-canonical lock field. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let body_len = match (bytes.first().copied(), bytes.len()) {
            (Some(RECORD_VERSION), RECORD_LEN) => BODY_LEN,
            (Some(1), V1_LEN) => V1_BODY_LEN,
            (Some(1 | RECORD_VERSION), _) | (None, _) => {
                return Err(StoreError::new("attempt record: wrong length"))
            }
            _ => return Err(StoreError::new("attempt record: unknown version")),
        };
        if bytes[body_len..] != checksum(&bytes[..body_len]) {
            return Err(StoreError::new("attempt record: checksum mismatch"));
        }
        let until = be_u64(&bytes[14..22]);
        let locked_until = match bytes[13] {
            0 if until == 0 => None,
            1 => Some(Timestamp::from_micros(until)),
            _ => return Err(StoreError::new("attempt record: bad lock field")),
        };
        Ok(AttemptRecord {
            failures: u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]),
            next_attempt_at: Timestamp::from_micros(be_u64(&bytes[5..13])),
            locked_until,
            unlock_failures: match body_len {
                BODY_LEN => u32::from_be_bytes([bytes[22], bytes[23], bytes[24], bytes[25]]),
                _ => 0,
            },
        })
    }
}

fn checksum(body: &[u8]) -> [u8; 4] {
    let digest = Sha256::digest(body);
    [digest[0], digest[1], digest[2], digest[3]]
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// A storage failure, reported by an [`AttemptStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub Cow<'static, str>);

impl StoreError {
    /// An error with this message.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        StoreError(message.into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt store: {}", self.0)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StoreError {}

/// Where the [`AttemptRecord`] lives. The app implements it for its flash or EEPROM, typically
/// with [`AttemptRecord::to_bytes`] and [`AttemptRecord::from_bytes`].
pub trait AttemptStore {
    /// Reads the record; a store that was never written returns the default record.
    ///
    /// # Errors
    ///
    /// Any read failure, or a record that does not decode. The guard then refuses attempts.
    fn load(&mut self) -> Result<AttemptRecord, StoreError>;

    /// Durably writes the record: when this returns `Ok`, a power cut must not lose it.
    ///
    /// # Errors
    ///
    /// Any write failure. The guard then refuses the attempt.
    fn save(&mut self, record: &AttemptRecord) -> Result<(), StoreError>;
}

impl<S: AttemptStore + ?Sized> AttemptStore for &mut S {
    fn load(&mut self) -> Result<AttemptRecord, StoreError> {
        (**self).load()
    }

    fn save(&mut self, record: &AttemptRecord) -> Result<(), StoreError> {
        (**self).save(record)
    }
}

impl<S: AttemptStore + ?Sized> AttemptStore for alloc::boxed::Box<S> {
    fn load(&mut self) -> Result<AttemptRecord, StoreError> {
        (**self).load()
    }

    fn save(&mut self, record: &AttemptRecord) -> Result<(), StoreError> {
        (**self).save(record)
    }
}

/// A store in memory, for tests and for apps that persist the record some other way. A clone
/// is an independent copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryAttemptStore {
    record: AttemptRecord,
}

impl MemoryAttemptStore {
    /// A store holding the default record (no failures).
    pub fn new() -> Self {
        Self::default()
    }

    /// The record as last saved.
    pub fn record(&self) -> &AttemptRecord {
        &self.record
    }
}

impl AttemptStore for MemoryAttemptStore {
    fn load(&mut self) -> Result<AttemptRecord, StoreError> {
        Ok(self.record)
    }

    fn save(&mut self, record: &AttemptRecord) -> Result<(), StoreError> {
        self.record = *record;
        Ok(())
    }
}

#[cfg(feature = "std")]
pub use file::FileAttemptStore;

#[cfg(feature = "std")]
mod file {
    use std::format;
    use std::fs;
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};

    use super::{AttemptRecord, AttemptStore, StoreError};

    /// A store in one file, holding [`AttemptRecord::to_bytes`].
    ///
    /// Saves are atomic and durable: the record is written to `<path>.tmp` in the same
    /// directory, synced, renamed over `<path>`, and the directory is synced (on Unix). A
    /// missing file is a fresh record; a file that does not decode is an error, so the guard
    /// fails closed. On Unix the file is created with mode 0600.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FileAttemptStore {
        path: PathBuf,
    }

    impl FileAttemptStore {
        /// A store in the file at `path` (created on the first save).
        pub fn new(path: impl Into<PathBuf>) -> Self {
            FileAttemptStore { path: path.into() }
        }

        /// The file's path.
        pub fn path(&self) -> &Path {
            &self.path
        }

        fn write(&self, record: &AttemptRecord) -> io::Result<()> {
            let mut tmp = self.path.clone().into_os_string();
            tmp.push(".tmp");
            // A leftover from a crash may have other permissions: start afresh.
            let _ = fs::remove_file(&tmp);
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            // Readable by the aircraft's own user only: whoever may rewrite the count may
            // reset it.
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            file.write_all(&record.to_bytes())?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, &self.path)?;
            #[cfg(unix)]
            {
                let dir = match self.path.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir,
                    _ => Path::new("."),
                };
                fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        }
    }

    fn io_error(what: &str, path: &Path, e: &io::Error) -> StoreError {
        StoreError::new(format!("{what} {}: {e}", path.display()))
    }

    impl AttemptStore for FileAttemptStore {
        fn load(&mut self) -> Result<AttemptRecord, StoreError> {
            match fs::read(&self.path) {
                Ok(bytes) => AttemptRecord::from_bytes(&bytes),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(AttemptRecord::default()),
                Err(e) => Err(io_error("reading", &self.path, &e)),
            }
        }

        fn save(&mut self, record: &AttemptRecord) -> Result<(), StoreError> {
            self.write(record)
                .map_err(|e| io_error("writing", &self.path, &e))
        }
    }
}

/// Permission to run one attempt, returned by [`AttemptGuard::begin`]. The attempt is already
/// counted as a failure; call [`AttemptGuard::succeed`] if it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Permit {
    /// Further failed attempts allowed before a lockout, if this one fails.
    pub remaining_attempts_after_this_one: u32,
}

/// Why [`AttemptGuard::begin`] refused an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Too soon after a failed attempt.
    BackOff {
        /// The earliest time the next attempt may start.
        retry_at: Timestamp,
    },
    /// Too many failed attempts.
    LockedOut {
        /// The lockout ends at this time.
        until: Timestamp,
    },
    /// The record could not be loaded or the count could not be saved: no attempt runs
    /// without a persisted count.
    Store(StoreError),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BackOff { retry_at } => write!(f, "attempt too soon, retry at {retry_at:?}"),
            Refusal::LockedOut { until } => write!(f, "locked out until {until:?}"),
            Refusal::Store(e) => write!(f, "attempt refused: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Refusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Refusal::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// Rations attempts at the security code. The aircraft calls [`begin`](Self::begin) before
/// each pairing attempt and [`succeed`](Self::succeed) when one succeeds, and
/// [`begin_unlock`](Self::begin_unlock) / [`unlock_succeeded`](Self::unlock_succeeded) for a
/// storage unlock, which spends the bond's own budget under the persisted total
/// ([`LimitsConfig::max_unlock_failures`]) and never the pairing budget.
///
/// Attempt `k + 1` (with `k` failures counted before it) starting at `now` sets the next
/// allowed attempt to `now + min(base_backoff * 2^k, max_backoff)`. The attempt that brings
/// the count to `max_failures` also locks the guard until `now + lockout`.
///
/// When a lockout expires the count is *not* reset: the next attempt is allowed, and if it
/// fails it locks again at once. After the first `max_failures` guesses an attacker thus gets
/// one guess per lockout period (24 a day by default), instead of a fresh batch of
/// `max_failures` each period. Only a success or [`reset`](Self::reset) clears the count.
#[derive(Debug)]
pub struct AttemptGuard<S: AttemptStore> {
    config: LimitsConfig,
    store: S,
    record: AttemptRecord,
    load_error: Option<StoreError>,
    /// Each bond's unlock budget; the persisted total in `record` caps them all.
    bonds: BTreeMap<[u8; 32], Budget>,
}

impl<S: AttemptStore> AttemptGuard<S> {
    /// A guard over `store`, loading its record. If the load fails the guard starts locked
    /// (fail closed): [`begin`](Self::begin) retries the load and refuses until it works, or
    /// until [`reset`](Self::reset) overwrites the record.
    pub fn new(config: LimitsConfig, mut store: S) -> Self {
        let (record, load_error) = match store.load() {
            Ok(record) => (record, None),
            Err(e) => (Self::fail_closed_record(&config), Some(e)),
        };
        AttemptGuard {
            config,
            store,
            record,
            load_error,
            bonds: BTreeMap::new(),
        }
    }

    fn fail_closed_record(config: &LimitsConfig) -> AttemptRecord {
        let never = Timestamp::MAX;
        AttemptRecord {
            failures: config.effective_max_failures(),
            next_attempt_at: never,
            locked_until: Some(never),
            unlock_failures: config.effective_max_unlock_failures(),
        }
    }

    /// Asks to start an attempt at `now`. If allowed, the attempt is counted as a failure and
    /// saved before this returns, so an abandoned attempt or a crash still counts.
    ///
    /// # Errors
    ///
    /// - [`Refusal::LockedOut`] while locked out,
    /// - [`Refusal::BackOff`] before the back-off after the last failure has passed,
    /// - [`Refusal::Store`] if the record cannot be loaded (see [`new`](Self::new)) or the new
    ///   count cannot be saved. The cached count is raised anyway, so it never under-counts.
    pub fn begin(&mut self, now: Timestamp) -> Result<Permit, Refusal> {
        self.reload()?;
        self.pull_in_deadlines(now);
        let pairing = Budget::of(&self.record);
        pairing.check(now)?;
        let next = pairing.after_attempt(&self.config, now);
        self.record = AttemptRecord {
            failures: next.failures,
            next_attempt_at: next.next_attempt_at,
            locked_until: next.locked_until,
            ..self.record
        };
        self.store.save(&self.record).map_err(Refusal::Store)?;
        Ok(Permit {
            remaining_attempts_after_this_one: self.remaining_attempts(),
        })
    }

    /// Asks to start a storage unlock for the bond `bond` (the remote's static public key)
    /// at `now`: the bond's own budget (the pairing policy, kept in memory) and the total of
    /// failed unlocks (persisted, at most [`LimitsConfig::max_unlock_failures`]) must both
    /// allow it. If allowed, it is counted against both and saved before this returns.
    ///
    /// # Errors
    ///
    /// As [`begin`](Self::begin); when the total is spent, [`Refusal::LockedOut`] until
    /// [`Timestamp::MAX`]: only [`reset`](Self::reset) (the owner) ends it.
    pub fn begin_unlock(&mut self, bond: &[u8; 32], now: Timestamp) -> Result<Permit, Refusal> {
        self.reload()?;
        if self.record.unlock_failures >= self.config.effective_max_unlock_failures() {
            return Err(Refusal::LockedOut {
                until: Timestamp::MAX,
            });
        }
        let budget = self.bonds.get(bond).copied().unwrap_or_default();
        budget.check(now)?;
        self.bonds
            .insert(*bond, budget.after_attempt(&self.config, now));
        self.record.unlock_failures = self.record.unlock_failures.saturating_add(1);
        self.store.save(&self.record).map_err(Refusal::Store)?;
        Ok(Permit {
            remaining_attempts_after_this_one: self.remaining_unlocks(bond),
        })
    }

    /// The unlock `bond` started succeeded: the bond's failures are cleared and this attempt
    /// is taken off the total. Nothing else changes: the pairing budget, other bonds and
    /// earlier failures stay as they were, so a success hands nobody a fresh budget.
    ///
    /// # Errors
    ///
    /// The store's error if the save fails; the cleared count is still cached.
    pub fn unlock_succeeded(&mut self, bond: &[u8; 32]) -> Result<(), StoreError> {
        if self.bonds.remove(bond).is_some() {
            self.record.unlock_failures = self.record.unlock_failures.saturating_sub(1);
        }
        self.store.save(&self.record)
    }

    /// Failed unlocks `bond` may still make before its own lockout or the total's,
    /// whichever comes first.
    pub fn remaining_unlocks(&self, bond: &[u8; 32]) -> u32 {
        let failures = self.bonds.get(bond).map_or(0, |b| b.failures);
        let own = self
            .config
            .effective_max_failures()
            .saturating_sub(failures);
        let total = self
            .config
            .effective_max_unlock_failures()
            .saturating_sub(self.record.unlock_failures);
        own.min(total)
    }

    /// Retries a failed load: no attempt runs without the persisted count.
    fn reload(&mut self) -> Result<(), Refusal> {
        if self.load_error.is_some() {
            self.record = self.store.load().map_err(Refusal::Store)?;
            self.load_error = None;
        }
        Ok(())
    }

    /// A deadline further from `now` than the policy ever sets means the clock went back (a
    /// boot-relative clock after a restart, say): restart that wait from `now`. Only the
    /// cached record changes; after another restart the stored one is pulled in again.
    fn pull_in_deadlines(&mut self, now: Timestamp) {
        let longest_backoff = self.config.backoff(self.record.failures.saturating_sub(1));
        if self.record.next_attempt_at.saturating_since(now) > longest_backoff {
            self.record.next_attempt_at = now + longest_backoff;
        }
        if let Some(until) = &mut self.record.locked_until {
            if until.saturating_since(now) > self.config.lockout {
                *until = now + self.config.lockout;
            }
        }
    }

    /// The attempt succeeded (the peer sent a valid final message): clears the failures and
    /// any back-off or lockout, and saves.
    ///
    /// # Errors
    ///
    /// The store's error if the save fails; the cleared record is still cached.
    pub fn succeed(&mut self) -> Result<(), StoreError> {
        self.record = AttemptRecord {
            unlock_failures: self.record.unlock_failures,
            ..AttemptRecord::default()
        };
        self.store.save(&self.record)
    }

    /// Forgets all failures, pairing and unlock, for when the owner reset the code (or the
    /// count) over a trusted channel. Also
    /// recovers a guard whose record failed to load, by overwriting it.
    ///
    /// # Errors
    ///
    /// The store's error if the save fails; the guard then stays fail-closed if it was.
    pub fn reset(&mut self) -> Result<(), StoreError> {
        self.store.save(&AttemptRecord::default())?;
        self.record = AttemptRecord::default();
        self.bonds.clear();
        self.load_error = None;
        Ok(())
    }

    /// Failed attempts left before a lockout (0 while locked out or fail-closed).
    pub fn remaining_attempts(&self) -> u32 {
        self.config
            .effective_max_failures()
            .saturating_sub(self.record.failures)
    }

    /// The cached record.
    pub fn record(&self) -> &AttemptRecord {
        &self.record
    }

    /// The error that made the guard fail closed, until a load or [`reset`](Self::reset)
    /// succeeds.
    pub fn load_error(&self) -> Option<&StoreError> {
        self.load_error.as_ref()
    }

    /// The policy.
    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, giving up the guard.
    pub fn into_store(self) -> S {
        self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn secs(s: u64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    fn guard() -> AttemptGuard<MemoryAttemptStore> {
        AttemptGuard::new(LimitsConfig::default(), MemoryAttemptStore::new())
    }

    /// Fails every attempt, each as early as allowed, and returns when the next is allowed.
    fn fail(g: &mut AttemptGuard<impl AttemptStore>, times: u32, mut now: Timestamp) -> Timestamp {
        for _ in 0..times {
            let _ = g.begin(now).unwrap();
            now = g
                .record()
                .locked_until
                .unwrap_or(g.record().next_attempt_at);
        }
        now
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let c = LimitsConfig::default();
        assert_eq!(c.backoff(0), Duration::from_secs(1));
        assert_eq!(c.backoff(1), Duration::from_secs(2));
        assert_eq!(c.backoff(8), Duration::from_secs(256));
        assert_eq!(c.backoff(9), Duration::from_secs(300));
        assert_eq!(c.backoff(31), Duration::from_secs(300));
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(300));
        let huge = LimitsConfig {
            base_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            ..c
        };
        assert_eq!(huge.backoff(3), Duration::MAX);

        let mut g = AttemptGuard::new(
            LimitsConfig {
                max_failures: 100,
                ..LimitsConfig::default()
            },
            MemoryAttemptStore::new(),
        );
        let mut now = secs(10);
        for k in 0..12 {
            let _ = g.begin(now).unwrap();
            let wait = g.record().next_attempt_at.saturating_since(now);
            assert_eq!(wait, Duration::from_secs((1 << k).min(300)));
            now = g.record().next_attempt_at;
        }
    }

    #[test]
    fn begin_during_backoff_is_refused() {
        let mut g = guard();
        let p = g.begin(secs(100)).unwrap();
        assert_eq!(p.remaining_attempts_after_this_one, 9);
        let p = g.begin(secs(101)).unwrap();
        assert_eq!(p.remaining_attempts_after_this_one, 8);
        let retry_at = secs(103);
        assert_eq!(g.begin(secs(102)), Err(Refusal::BackOff { retry_at }));
        assert_eq!(
            g.begin(retry_at - Duration::from_micros(1)),
            Err(Refusal::BackOff { retry_at })
        );
        // Refusals are not counted.
        assert_eq!(g.record().failures, 2);
        assert!(g.begin(retry_at).is_ok());
    }

    #[test]
    fn lockout_after_max_failures_and_one_guess_per_lockout_after() {
        let mut g = guard();
        let now = fail(&mut g, 9, secs(1));
        assert_eq!(g.remaining_attempts(), 1);
        let p = g.begin(now).unwrap();
        assert_eq!(p.remaining_attempts_after_this_one, 0);
        let until = now + Duration::from_secs(3600);
        assert_eq!(g.record().locked_until, Some(until));
        assert_eq!(
            g.begin(now + Duration::from_secs(600)),
            Err(Refusal::LockedOut { until })
        );
        // After the lockout: one attempt, which locks again.
        let _ = g.begin(until).unwrap();
        let until2 = until + Duration::from_secs(3600);
        assert_eq!(
            g.begin(until + Duration::from_secs(1)),
            Err(Refusal::LockedOut { until: until2 })
        );
        assert_eq!(g.record().failures, 11);
    }

    #[test]
    fn success_resets() {
        let mut g = guard();
        let now = fail(&mut g, 10, secs(1));
        let _ = g.begin(now).unwrap();
        g.succeed().unwrap();
        assert_eq!(*g.record(), AttemptRecord::default());
        assert_eq!(*g.store().record(), AttemptRecord::default());
        assert_eq!(g.remaining_attempts(), 10);
        assert!(g.begin(now).is_ok());

        g.reset().unwrap();
        assert_eq!(g.remaining_attempts(), 10);
    }

    #[test]
    fn lockout_survives_restart() {
        let mut g = guard();
        let now = fail(&mut g, 9, secs(1));
        let _ = g.begin(now).unwrap();
        let until = g.record().locked_until.unwrap();
        let store = g.into_store();
        let mut g = AttemptGuard::new(LimitsConfig::default(), store.clone());
        assert_eq!(g.begin(now), Err(Refusal::LockedOut { until }));
        assert_eq!(g.remaining_attempts(), 0);
        // The clone shares nothing.
        let mut other = store.clone();
        other.save(&AttemptRecord::default()).unwrap();
        assert_eq!(store.record().locked_until, Some(until));
    }

    #[test]
    fn crash_mid_attempt_is_counted() {
        let mut g = guard();
        let _ = g.begin(secs(5)).unwrap();
        let store = g.into_store(); // crash: no succeed, but the store already has it
        assert_eq!(store.record().failures, 1);
        let mut g = AttemptGuard::new(LimitsConfig::default(), store);
        assert_eq!(g.remaining_attempts(), 9);
        assert_eq!(
            g.begin(secs(5)),
            Err(Refusal::BackOff { retry_at: secs(6) })
        );
    }

    #[test]
    fn clock_reset_by_restart_restarts_the_wait() {
        let mut g = guard();
        let now = fail(&mut g, 10, secs(1_000_000));
        let mut g = AttemptGuard::new(LimitsConfig::default(), g.into_store());
        // A boot-relative clock starts again from zero: a full lockout from now, not 11 days.
        let until = secs(5) + Duration::from_secs(3600);
        assert!(now > until);
        assert_eq!(g.begin(secs(5)), Err(Refusal::LockedOut { until }));
        assert_eq!(g.begin(secs(6)), Err(Refusal::LockedOut { until }));
        assert!(g.begin(until).is_ok());
    }

    /// A store whose operations fail on demand.
    #[derive(Default)]
    struct FlakyStore {
        inner: MemoryAttemptStore,
        fail_load: bool,
        fail_save: bool,
    }

    impl AttemptStore for FlakyStore {
        fn load(&mut self) -> Result<AttemptRecord, StoreError> {
            if self.fail_load {
                return Err(StoreError::new("load failed"));
            }
            self.inner.load()
        }

        fn save(&mut self, record: &AttemptRecord) -> Result<(), StoreError> {
            if self.fail_save {
                return Err(StoreError::new("save failed"));
            }
            self.inner.save(record)
        }
    }

    #[test]
    fn failed_save_refuses_the_attempt() {
        let store = FlakyStore {
            fail_save: true,
            ..FlakyStore::default()
        };
        let mut g = AttemptGuard::new(LimitsConfig::default(), store);
        assert_eq!(
            g.begin(secs(1)),
            Err(Refusal::Store(StoreError::new("save failed")))
        );
        assert_eq!(g.record().failures, 1); // never under-counts
        assert!(g.succeed().is_err());
        assert!(g.reset().is_err());
    }

    #[test]
    fn failed_load_fails_closed_until_load_or_reset_works() {
        let store = FlakyStore {
            fail_load: true,
            ..FlakyStore::default()
        };
        let mut g = AttemptGuard::new(LimitsConfig::default(), store);
        assert!(g.load_error().is_some());
        assert_eq!(g.remaining_attempts(), 0);
        assert!(matches!(g.begin(secs(1)), Err(Refusal::Store(_))));
        g.reset().unwrap();
        assert!(g.load_error().is_none());
        assert!(g.begin(secs(1)).is_ok());
    }

    #[test]
    fn zero_max_failures_is_one() {
        let config = LimitsConfig {
            max_failures: 0,
            ..LimitsConfig::default()
        };
        let mut g = AttemptGuard::new(config, MemoryAttemptStore::new());
        assert_eq!(g.remaining_attempts(), 1);
        let p = g.begin(secs(1)).unwrap();
        assert_eq!(p.remaining_attempts_after_this_one, 0);
        assert!(matches!(g.begin(secs(2)), Err(Refusal::LockedOut { .. })));
    }

    #[cfg(feature = "std")]
    mod file {
        use super::*;
        use std::path::PathBuf;
        use std::sync::atomic::{AtomicU32, Ordering};

        /// A fresh directory, removed on drop.
        struct TempDir(PathBuf);

        impl TempDir {
            fn new() -> Self {
                static COUNTER: AtomicU32 = AtomicU32::new(0);
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let name = std::format!(
                    "rotorlink-limits-{}-{}-{nanos}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed)
                );
                let dir = std::env::temp_dir().join(name);
                std::fs::create_dir(&dir).unwrap();
                TempDir(dir)
            }
        }

        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }

        #[test]
        #[cfg(unix)]
        fn the_file_is_private_to_its_owner() {
            use std::os::unix::fs::PermissionsExt;
            let dir = TempDir::new();
            let path = dir.0.join("attempts");
            let mut store = FileAttemptStore::new(&path);
            store.save(&AttemptRecord::default()).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        #[test]
        fn lockout_survives_restart_in_a_file() {
            let dir = TempDir::new();
            let path = dir.0.join("attempts");
            let mut g = AttemptGuard::new(LimitsConfig::default(), FileAttemptStore::new(&path));
            assert_eq!(g.remaining_attempts(), 10); // missing file: fresh
            let now = fail(&mut g, 9, secs(1));
            let _ = g.begin(now).unwrap(); // the tenth: locks, and "crashes"
            let until = g.record().locked_until.unwrap();
            drop(g);
            assert!(!dir.0.join("attempts.tmp").exists());

            let mut g = AttemptGuard::new(LimitsConfig::default(), FileAttemptStore::new(&path));
            assert_eq!(g.begin(now), Err(Refusal::LockedOut { until }));
            let _ = g.begin(until).unwrap();
            g.succeed().unwrap();
            let g = AttemptGuard::new(LimitsConfig::default(), FileAttemptStore::new(&path));
            assert_eq!(*g.record(), AttemptRecord::default());
        }

        #[test]
        fn corrupt_file_fails_closed() {
            let dir = TempDir::new();
            let path = dir.0.join("attempts");
            let mut bytes = AttemptRecord::default().to_bytes();
            bytes[3] ^= 1;
            std::fs::write(&path, bytes).unwrap();
            let mut g = AttemptGuard::new(LimitsConfig::default(), FileAttemptStore::new(&path));
            assert!(g.load_error().is_some());
            assert_eq!(g.remaining_attempts(), 0);
            assert!(g.record().locked_until.is_some());
            assert!(matches!(g.begin(secs(1)), Err(Refusal::Store(_))));
            // The owner's reset overwrites it.
            g.reset().unwrap();
            assert!(g.begin(secs(1)).is_ok());
        }

        #[test]
        fn unwritable_path_refuses() {
            let dir = TempDir::new();
            let path = dir.0.join("missing-dir").join("attempts");
            let mut g = AttemptGuard::new(LimitsConfig::default(), FileAttemptStore::new(path));
            assert!(matches!(g.begin(secs(1)), Err(Refusal::Store(_))));
        }
    }

    const PILOT: [u8; 32] = [1; 32];
    const STOLEN: [u8; 32] = [2; 32];

    #[test]
    fn a_pairing_lockout_leaves_unlocks_alone() {
        let mut g = guard();
        // Inside the lockout the tenth failure set.
        let now = fail(&mut g, 10, secs(0)) - Duration::from_secs(1);
        assert!(matches!(g.begin(now), Err(Refusal::LockedOut { .. })));
        let permit = g.begin_unlock(&PILOT, now).unwrap();
        assert_eq!(permit.remaining_attempts_after_this_one, 9);
        g.unlock_succeeded(&PILOT).unwrap();
        assert_eq!(g.remaining_unlocks(&PILOT), 10);
        // And the pilot's success hands the pairing guesser nothing.
        assert_eq!(g.record().failures, 10);
        assert!(matches!(g.begin(now), Err(Refusal::LockedOut { .. })));
    }

    #[test]
    fn each_bond_has_its_own_unlock_budget() {
        let mut g = guard();
        let mut now = secs(0);
        for _ in 0..10 {
            let _ = g.begin_unlock(&STOLEN, now).unwrap();
            now = now + Duration::from_secs(301);
        }
        assert!(matches!(
            g.begin_unlock(&STOLEN, now),
            Err(Refusal::LockedOut { .. })
        ));
        assert_eq!(g.remaining_unlocks(&STOLEN), 0);
        // The pilot's bond is not locked, and its success leaves the other's count alone.
        let _ = g.begin_unlock(&PILOT, now).unwrap();
        g.unlock_succeeded(&PILOT).unwrap();
        assert_eq!(g.record().unlock_failures, 10);
        assert!(g.begin_unlock(&STOLEN, now).is_err());
    }

    #[test]
    fn the_unlock_total_locks_until_the_owner_resets_it_even_across_restarts() {
        let config = LimitsConfig {
            max_unlock_failures: 4,
            ..LimitsConfig::default()
        };
        let mut g = AttemptGuard::new(config.clone(), MemoryAttemptStore::new());
        let mut now = secs(0);
        for bond in 0..4u8 {
            let _ = g.begin_unlock(&[bond; 32], now).unwrap();
            now = now + Duration::from_secs(1);
        }
        let never = Err(Refusal::LockedOut {
            until: Timestamp::MAX,
        });
        assert_eq!(g.begin_unlock(&[9; 32], now), never);
        // A restart reads the total back.
        let mut g = AttemptGuard::new(config, g.into_store());
        assert_eq!(g.record().unlock_failures, 4);
        assert_eq!(g.begin_unlock(&PILOT, secs(10_000)), never);
        assert_eq!(g.remaining_unlocks(&PILOT), 0);
        g.reset().unwrap();
        assert!(g.begin_unlock(&PILOT, secs(10_000)).is_ok());
    }

    #[test]
    fn record_encoding() {
        let r = AttemptRecord {
            failures: 3,
            next_attempt_at: Timestamp::from_micros(0x0102_0304_0506_0708),
            locked_until: Some(Timestamp::from_micros(9)),
            unlock_failures: 0x0a0b_0c0d,
        };
        let b = r.to_bytes();
        assert_eq!(b[..13], [2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(b[22..26], [0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(AttemptRecord::from_bytes(&b), Ok(r));
        assert!(AttemptRecord::from_bytes(&b[..RECORD_LEN - 1]).is_err());
        assert!(AttemptRecord::from_bytes(&[]).is_err());
        let mut v = b;
        v[0] = 3;
        assert!(AttemptRecord::from_bytes(&v).is_err());
        // A version 1 record (written before unlocks had their own budget) still reads.
        let mut v1 = [0u8; V1_LEN];
        v1[..V1_BODY_LEN].copy_from_slice(&b[..V1_BODY_LEN]);
        v1[0] = 1;
        let sum = checksum(&v1[..V1_BODY_LEN]);
        v1[V1_BODY_LEN..].copy_from_slice(&sum);
        let old = AttemptRecord::from_bytes(&v1).unwrap();
        assert_eq!(
            old,
            AttemptRecord {
                unlock_failures: 0,
                ..r
            }
        );
        // A lock flag of 0 with a non-zero time is not canonical, even with a good checksum.
        let mut v = b;
        v[13] = 0;
        let sum = checksum(&v[..BODY_LEN]);
        v[BODY_LEN..].copy_from_slice(&sum);
        assert!(AttemptRecord::from_bytes(&v).is_err());
    }

    fn any_record() -> impl Strategy<Value = AttemptRecord> {
        (
            any::<u32>(),
            any::<u64>(),
            any::<Option<u64>>(),
            any::<u32>(),
        )
            .prop_map(|(failures, next, until, unlock_failures)| AttemptRecord {
                failures,
                next_attempt_at: Timestamp::from_micros(next),
                locked_until: until.map(Timestamp::from_micros),
                unlock_failures,
            })
    }

    proptest! {
        #[test]
        fn record_round_trips(r in any_record()) {
            prop_assert_eq!(AttemptRecord::from_bytes(&r.to_bytes()), Ok(r));
        }

        #[test]
        fn from_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = AttemptRecord::from_bytes(&bytes);
        }

        #[test]
        fn flipped_bits_are_rejected(r in any_record(), bit in 0..RECORD_LEN * 8) {
            let mut b: Vec<u8> = r.to_bytes().to_vec();
            b[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(AttemptRecord::from_bytes(&b).is_err());
        }

        #[test]
        fn guard_never_panics(
            config in (0..20u32, any::<u64>(), any::<u64>(), any::<u64>()),
            start in any_record(),
            times in proptest::collection::vec(any::<u64>(), 1..20),
        ) {
            let config = LimitsConfig {
                max_failures: config.0,
                base_backoff: Duration::from_micros(config.1),
                max_backoff: Duration::from_micros(config.2),
                lockout: Duration::from_micros(config.3),
                max_unlock_failures: config.0 * 3,
            };
            let mut store = MemoryAttemptStore::new();
            store.save(&start).unwrap();
            let mut g = AttemptGuard::new(config, store);
            for t in times {
                let now = Timestamp::from_micros(t);
                if g.begin(now).is_ok() {
                    prop_assert_eq!(g.store().record(), g.record());
                }
                let bond = [(t % 3) as u8; 32];
                let total = g.record().unlock_failures;
                if g.begin_unlock(&bond, now).is_ok() {
                    prop_assert_eq!(g.store().record(), g.record());
                    prop_assert_eq!(g.record().unlock_failures, total + 1);
                    if t % 2 == 0 {
                        g.unlock_succeeded(&bond).unwrap();
                        prop_assert_eq!(g.record().unlock_failures, total);
                    }
                }
                prop_assert!(g.remaining_attempts() <= g.config().max_failures.max(1));
                prop_assert!(g.remaining_unlocks(&bond) <= g.config().max_failures.max(1));
            }
        }
    }
}
