//! The aircraft's and the remote's persistent state, with real processes over loopback UDP:
//! `rotorlink aircraft activate`, `rotorlink aircraft --state DIR` (its failed attempts and
//! bonds survive a restart, it refuses to start from a missing or damaged state, and pairs
//! only inside `--pairing-window`), and `rotorlink remote --state DIR` (reconnects with its
//! bond, without the code).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

#[path = "common/process.rs"]
mod process;
use process::{rotorlink, scratch, stderr, stdout, Process, BIN};

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

/// `dir/name` holding `code` on its first line.
fn code_file(dir: &Path, name: &str, code: &str) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, format!("{code}\n")).expect("write a code file");
    file
}

fn activate(state: &Path, code: &Path) {
    let out = rotorlink(&[
        "aircraft",
        "activate",
        "--state",
        path(state),
        "--code-file",
        path(code),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("aircraft activated"),
        "{}",
        stdout(&out)
    );
}

/// A running `rotorlink aircraft` and the address it listens on; killed when dropped.
struct Aircraft {
    process: Process,
    at: SocketAddr,
}

impl Aircraft {
    /// `rotorlink aircraft --state STATE` on a free loopback port, with `extra` flags.
    fn start(state: &Path, extra: &[&str]) -> Aircraft {
        let mut args = vec![
            "aircraft",
            "--state",
            path(state),
            "--listen",
            "127.0.0.1:0",
            "--video",
            "1mbit",
            "--log-size",
            "64KiB",
            "--clip-size",
            "0",
            "--duration",
            "60s",
        ];
        args.extend_from_slice(extra);
        let mut process = Process::start(&args);
        let at = process.address("aircraft: listening on ");
        Aircraft { process, at }
    }

    /// The first line of standard error, from here on, that starts with `prefix`.
    fn wait_for(&mut self, prefix: &str) -> String {
        self.process.wait_for(prefix)
    }

    /// Wait (at most `within`) for the aircraft to exit; its status.
    fn exit_status(&mut self, within: Duration) -> Option<i32> {
        self.process.exit_status(within)
    }
}

/// `rotorlink remote` against `to` with `extra` flags: a short flight without video
/// downloads (the flight log is small).
fn remote(to: SocketAddr, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["remote", "--connect", &to.to_string(), "--duration", "1s"])
        .args(extra)
        .output()
        .expect("the rotorlink binary runs")
}

/// A remote with a wrong code: rejected (exit 3) after its short handshake timeout, the
/// aircraft's attempts left in its output. An attempt refused as too soon after the last
/// one (the aircraft's back-off) is tried again once the back-off is over.
fn wrong_code_run(to: SocketAddr, code: &Path) -> String {
    for _ in 0..4 {
        let out = remote(
            to,
            &["--code-file", path(code), "--handshake-timeout", "3s"],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{err}");
        if err.contains("too soon after a wrong code") {
            thread::sleep(Duration::from_secs(1));
            continue;
        }
        return err;
    }
    panic!("the aircraft kept refusing the attempt as too soon");
}

#[test]
fn wrong_codes_still_count_after_the_aircraft_restarts() {
    let dir = scratch("attempts");
    let state = dir.join("aircraft");
    let code = code_file(&dir, "code", "246813");
    let wrong = code_file(&dir, "wrong", "135792");
    activate(&state, &code);

    let aircraft = Aircraft::start(&state, &["--pairing-window", "60s"]);
    // Each wrong code costs one of the 10 attempts, and the remote says how many are left.
    for left in [9, 8, 7] {
        let err = wrong_code_run(aircraft.at, &wrong);
        assert!(
            err.contains(&format!(
                "not paired: the aircraft rejected the code, or someone interfered \
                 ({left} attempts left before lockout)"
            )),
            "expected {left} attempts left:\n{err}"
        );
    }
    drop(aircraft);

    // A new process, the same state: the count was kept (a fresh aircraft would say 10).
    let aircraft = Aircraft::start(&state, &["--pairing-window", "60s"]);
    let out = remote(
        aircraft.at,
        &["--code-file", path(&wrong), "--handshake-timeout", "3s"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("not paired: "), "{err}");
    assert!(err.contains("(7 attempts left before lockout)"), "{err}");
    drop(aircraft);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bonded_remote_reconnects_without_the_code_after_the_aircraft_restarts() {
    let dir = scratch("bond");
    let state = dir.join("aircraft");
    let remote_state = dir.join("remote");
    let code = code_file(&dir, "code", "246813");
    activate(&state, &code);

    // Pairing inside the window: both ends save the bond.
    let mut aircraft = Aircraft::start(&state, &["--pairing-window", "60s"]);
    aircraft.wait_for("aircraft: pairing window open for 60 s");
    let out = remote(
        aircraft.at,
        &["--code-file", path(&code), "--state", path(&remote_state)],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("remote: paired with the aircraft"), "{err}");
    assert!(err.contains("remote: bond saved to"), "{err}");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("paired with the code in"), "{report}");
    aircraft.wait_for("aircraft: new bond saved to");
    // The remote closed the link: the aircraft's flight is over.
    assert_eq!(aircraft.exit_status(Duration::from_secs(10)), Some(0));
    drop(aircraft);
    assert!(remote_state.join("identity").is_file());

    // A new aircraft process from the same state, its pairing window closed.
    let identity_before = std::fs::read(state.join("identity")).unwrap();
    let mut aircraft = Aircraft::start(&state, &[]);
    aircraft.wait_for("aircraft: pairing window closed");
    // A remote without a bond cannot pair now, and is told why.
    let out = remote(aircraft.at, &["--code-file", path(&code)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("not paired: the aircraft's pairing window is closed"),
        "{err}"
    );
    assert!(err.contains("(10 attempts left before lockout)"), "{err}");
    // The bonded remote connects from its state, with no code at all.
    let out = remote(aircraft.at, &["--state", path(&remote_state)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("remote: connected to the aircraft at") && err.contains("with its bond"),
        "{err}"
    );
    assert!(err.contains("remote: Connected { kind: Session }"), "{err}");
    assert!(!err.contains("Pair"), "no pairing: {err}");
    aircraft.wait_for("aircraft: Connected { kind: Session }");
    assert_eq!(aircraft.exit_status(Duration::from_secs(10)), Some(0));
    // The session Init's timestamp was saved with the bond (PROTOCOL.md 20.1): a recording
    // of it is refused after the next restart.
    let identity_after = std::fs::read(state.join("identity")).unwrap();
    assert_eq!(identity_after.len(), identity_before.len());
    assert_ne!(
        identity_after, identity_before,
        "the newest timestamp was saved"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_aircraft_without_a_sound_state_does_not_start() {
    let dir = scratch("damaged");
    let code = code_file(&dir, "code", "246813");
    let run = |state: &Path| {
        rotorlink(&[
            "aircraft",
            "--state",
            path(state),
            "--listen",
            "127.0.0.1:0",
            "--pairing-window",
            "60s",
        ])
    };
    let check = |out: &Output, what: &str| {
        let err = stderr(out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.starts_with("error: --state: "), "{what}: {err}");
        assert!(!err.contains("listening"), "{what}: {err}");
    };

    // Never activated.
    let missing = dir.join("missing");
    let out = run(&missing);
    check(&out, "missing");
    assert!(stderr(&out).contains("activate the aircraft first"));

    // An identity that does not parse: truncated, or garbage.
    let state = dir.join("aircraft");
    activate(&state, &code);
    let identity = std::fs::read(state.join("identity")).unwrap();
    std::fs::write(state.join("identity"), &identity[..identity.len() / 2]).unwrap();
    let out = run(&state);
    check(&out, "truncated");
    assert!(stderr(&out).contains("is not a valid state file"));
    std::fs::write(state.join("identity"), b"not an identity\n").unwrap();
    check(&run(&state), "garbage");

    // A sound identity whose attempt record is gone or damaged: the count of failed
    // attempts cannot be trusted.
    std::fs::write(state.join("identity"), &identity).unwrap();
    std::fs::remove_file(state.join("attempts")).unwrap();
    let out = run(&state);
    check(&out, "no attempts");
    assert!(stderr(&out).contains("attempt record"));
    std::fs::write(state.join("attempts"), [0xff; 30]).unwrap();
    check(&run(&state), "bad attempts");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn activation_writes_private_files_once_unless_forced() {
    let dir = scratch("activate");
    let state = dir.join("aircraft");
    let code = code_file(&dir, "code", "246813");
    activate(&state, &code);
    let identity = std::fs::read(state.join("identity")).unwrap();
    assert!(!identity.is_empty());
    assert!(
        !identity.windows(6).any(|w| w == b"246813"),
        "the code itself is never stored"
    );
    assert_eq!(std::fs::read(state.join("attempts")).unwrap().len(), 30);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for file in ["identity", "attempts"] {
            let mode = std::fs::metadata(state.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 2);

    // Once only: a second activation is refused and changes nothing.
    let args = [
        "aircraft",
        "activate",
        "--state",
        path(&state),
        "--code-file",
        path(&code),
    ];
    let out = rotorlink(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("already activated"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(state.join("identity")).unwrap(), identity);

    // --force: a new identity.
    let mut forced = args.to_vec();
    forced.push("--force");
    let out = rotorlink(&forced);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(std::fs::read(state.join("identity")).unwrap(), identity);

    // Without --state a code file is needed, and --state takes no code file.
    let out = rotorlink(&["aircraft", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = rotorlink(&[
        "aircraft",
        "--state",
        path(&state),
        "--code-file",
        path(&code),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
