//! The state directories of `rotorlink aircraft --state` and `rotorlink remote --state`:
//! the identity (with its bonds) and, on the aircraft, the record of failed attempts at the
//! code, so that neither the bonds nor the brute-force lockout are forgotten at a restart.
//!
//! ```text
//! DIR/identity   AircraftIdentity::to_bytes (aircraft) or RemoteIdentity::to_bytes (remote)
//! DIR/attempts   the AttemptRecord of FileAttemptStore (aircraft only)
//! ```
//!
//! Every file is written whole to a temporary file in the same directory, synced, renamed
//! over the old one and the directory synced, so a crash leaves the old file or the new one,
//! never a torn one; on Unix the files are created with mode 0600 and a directory made here
//! with mode 0700.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use rotorlink::handshake::limits::{AttemptRecord, FileAttemptStore};
use rotorlink::handshake::{AircraftIdentity, AttemptStore, LinkId, RemoteIdentity};
use rotorlink::Config;
use zeroize::Zeroizing;

/// The identity's file name in a state directory.
pub(crate) const IDENTITY: &str = "identity";
/// The attempt record's file name in an aircraft's state directory.
pub(crate) const ATTEMPTS: &str = "attempts";

/// Why a state directory could not be read or written.
#[derive(Debug)]
pub(crate) enum StateError {
    /// A file or directory could not be read, written or created.
    Io {
        /// What was being done ("reading", "writing", "creating").
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The aircraft's identity file does not exist: it was never activated here.
    NotActivated {
        /// The missing file.
        path: PathBuf,
    },
    /// The attempt record is missing although the identity is there.
    NoAttempts {
        /// The missing file.
        path: PathBuf,
    },
    /// A file exists but does not hold what it should (damaged, or another kind of state).
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// `activate` without `--force` on a directory that already holds an identity.
    AlreadyActivated {
        /// The existing identity file.
        path: PathBuf,
    },
    /// Provisioning or changing the code failed.
    Provision(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Io { what, path, source } => {
                write!(f, "{what} {}: {source}", path.display())
            }
            StateError::NotActivated { path } => write!(
                f,
                "no aircraft identity at {}: activate the aircraft first \
                 (rotorlink aircraft activate --state DIR --code-file FILE)",
                path.display()
            ),
            StateError::NoAttempts { path } => write!(
                f,
                "the attempt record {} is missing: the count of failed attempts at the code \
                 cannot be trusted, so the aircraft does not start (activate it again with \
                 --force, or change its code, to start a new count)",
                path.display()
            ),
            StateError::Corrupt { path, detail } => {
                write!(f, "{} is not a valid state file: {detail}", path.display())
            }
            StateError::AlreadyActivated { path } => write!(
                f,
                "an aircraft is already activated here ({}); --force activates a new one \
                 (every bond is lost: each remote must pair again)",
                path.display()
            ),
            StateError::Provision(e) => write!(f, "cannot set the code: {e}"),
        }
    }
}

impl std::error::Error for StateError {}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Create `dir` (and its parents) if it does not exist; on Unix with mode 0700.
pub(crate) fn create_dir(dir: &Path) -> Result<(), StateError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_error("creating", dir))
}

/// Write `bytes` to `path` atomically and durably: a temporary file (mode 0600 on Unix) in
/// the same directory, synced, renamed over `path`, then the directory synced.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = write_new(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(StateError::Io {
            what: "writing",
            path: path.to_path_buf(),
            source: e,
        });
    }
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("syncing", dir))?;
    }
    Ok(())
}

/// Create `path` afresh (a leftover is removed first) with mode 0600 on Unix, write `bytes`
/// and sync.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The bytes of a secret file, wiped from memory when dropped; `None` if it does not exist.
fn read_secret(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, StateError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("reading", path)(e)),
    }
}

/// An aircraft's state, read back: its identity and the store of its failed attempts.
pub(crate) struct AircraftState {
    /// The identity with its bonds.
    pub(crate) identity: AircraftIdentity,
    /// The attempt record's store (`DIR/attempts`).
    pub(crate) attempts: FileAttemptStore,
}

/// Read the aircraft's state in `dir`. Fails closed: a missing or unreadable identity, or a
/// missing attempt record, is an error, never a fresh aircraft.
pub(crate) fn load_aircraft(dir: &Path) -> Result<AircraftState, StateError> {
    let path = dir.join(IDENTITY);
    let bytes =
        read_secret(&path)?.ok_or_else(|| StateError::NotActivated { path: path.clone() })?;
    let identity = AircraftIdentity::from_bytes(&bytes).map_err(|e| StateError::Corrupt {
        path: path.clone(),
        detail: format!("not an aircraft identity ({e})"),
    })?;
    let attempts_path = dir.join(ATTEMPTS);
    match fs::metadata(&attempts_path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StateError::NoAttempts {
                path: attempts_path,
            })
        }
        Err(e) => return Err(io_error("reading", &attempts_path)(e)),
    }
    let mut attempts = FileAttemptStore::new(attempts_path.clone());
    // A record that does not decode would make the link refuse every attempt at the code
    // (fail closed) while bonded remotes still connect; say so at the start.
    if let Err(e) = attempts.load() {
        return Err(StateError::Corrupt {
            path: attempts_path,
            detail: format!(
                "{e} (the count of failed attempts is lost: change the code, or activate \
                 again with --force, to start a new count)"
            ),
        });
    }
    Ok(AircraftState { identity, attempts })
}

/// Write the aircraft's identity to `dir`.
pub(crate) fn save_aircraft(dir: &Path, identity: &AircraftIdentity) -> Result<(), StateError> {
    write_atomic(&dir.join(IDENTITY), &identity.to_bytes())
}

/// Start a fresh count of failed attempts in `dir` (activation, a new code).
pub(crate) fn reset_attempts(dir: &Path) -> Result<(), StateError> {
    write_atomic(&dir.join(ATTEMPTS), &AttemptRecord::default().to_bytes())
}

/// `rotorlink aircraft activate`: provision a new aircraft with `code` in `dir` (made if
/// needed) and start its count of failed attempts. Refuses a directory that already holds
/// an identity unless `force`. The code itself is never written.
pub(crate) fn activate(
    dir: &Path,
    code: &[u8],
    link_id: LinkId,
    force: bool,
) -> Result<AircraftIdentity, StateError> {
    let path = dir.join(IDENTITY);
    if !force && fs::symlink_metadata(&path).is_ok() {
        return Err(StateError::AlreadyActivated { path });
    }
    create_dir(dir)?;
    let ksf = Config::default().ksf;
    let identity = AircraftIdentity::provision(link_id, code, ksf, &mut rand_core::OsRng)
        .map_err(|e| StateError::Provision(e.to_string()))?;
    // The identity first: a crash in between leaves the old count (or none, which the
    // aircraft refuses to start without), never a fresh count for the old identity.
    save_aircraft(dir, &identity)?;
    reset_attempts(dir)?;
    Ok(identity)
}

/// `rotorlink aircraft change-code`: replace the code of the aircraft in `dir`. Every bond is
/// revoked and the count of failed attempts starts afresh, as `Link::change_code` does.
pub(crate) fn change_code(dir: &Path, code: &[u8]) -> Result<AircraftIdentity, StateError> {
    let path = dir.join(IDENTITY);
    let bytes = read_secret(&path)?.ok_or(StateError::NotActivated { path: path.clone() })?;
    let mut identity = AircraftIdentity::from_bytes(&bytes).map_err(|e| StateError::Corrupt {
        path,
        detail: format!("not an aircraft identity ({e})"),
    })?;
    identity
        .change_code(code, &mut rand_core::OsRng)
        .map_err(|e| StateError::Provision(e.to_string()))?;
    save_aircraft(dir, &identity)?;
    reset_attempts(dir)?;
    Ok(identity)
}

/// Read the remote's identity in `dir`; `None` if it has none yet.
pub(crate) fn load_remote(dir: &Path) -> Result<Option<RemoteIdentity>, StateError> {
    let path = dir.join(IDENTITY);
    let Some(bytes) = read_secret(&path)? else {
        return Ok(None);
    };
    RemoteIdentity::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| StateError::Corrupt {
            path,
            detail: format!("not a remote identity ({e})"),
        })
}

/// Write the remote's identity to `dir` (made if needed).
pub(crate) fn save_remote(dir: &Path, identity: &RemoteIdentity) -> Result<(), StateError> {
    create_dir(dir)?;
    write_atomic(&dir.join(IDENTITY), &identity.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rotorlink-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        create_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = scratch("atomic");
        let path = dir.join("f");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_or_damaged_state_is_an_error() {
        let dir = scratch("damaged");
        assert!(matches!(
            load_aircraft(&dir),
            Err(StateError::NotActivated { .. })
        ));
        fs::write(dir.join(IDENTITY), b"garbage").unwrap();
        assert!(matches!(
            load_aircraft(&dir),
            Err(StateError::Corrupt { .. })
        ));
        assert!(matches!(load_remote(&dir), Err(StateError::Corrupt { .. })));
        fs::remove_file(dir.join(IDENTITY)).unwrap();
        assert!(load_remote(&dir).unwrap().is_none());
        let _ = fs::remove_dir_all(&dir);
    }
}
