//! The `rotorlink` binary in tests: one-shot commands, and long-running processes (an
//! aircraft, a proxy) whose standard error is read line by line as they run.
//!
//! Included by path (`#[path = "common/process.rs"] mod process;`) by the tests that run
//! the binary, so that they do not compile the adversary helpers of `common/`. Not every
//! test uses every helper.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_rotorlink");

/// How long a process may take to print a line a test waits for.
const LINE_WAIT: Duration = Duration::from_secs(20);

/// Run `rotorlink` with `args` to the end.
pub(crate) fn rotorlink(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the rotorlink binary runs")
}

/// A finished command's standard output.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// A finished command's standard error.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

/// A directory of its own for one test's files, empty: `name` within this test run.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rotorlink-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// A running `rotorlink` whose standard error is read on a thread, line by line; killed
/// when dropped.
pub(crate) struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The lines of standard error read so far.
    pub(crate) stderr: Vec<String>,
}

impl Process {
    /// Start `rotorlink` with `args`.
    pub(crate) fn start(args: &[&str]) -> Process {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the rotorlink binary runs");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            lines,
            stderr: Vec::new(),
        }
    }

    /// The first line of standard error, from here on, that starts with `prefix`.
    pub(crate) fn wait_for(&mut self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(LINE_WAIT)
                .unwrap_or_else(|_| panic!("no '{prefix}' line; stderr: {:#?}", self.stderr));
            self.stderr.push(line.clone());
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// The address that follows `prefix` in the first line that starts with it
    /// (`aircraft: listening on 127.0.0.1:PORT`, `proxy: 127.0.0.1:PORT -> ...`).
    pub(crate) fn address(&mut self, prefix: &str) -> SocketAddr {
        let line = self.wait_for(prefix);
        let rest = &line[prefix.len()..];
        let addr = rest.split_whitespace().next().unwrap_or_default();
        addr.parse()
            .unwrap_or_else(|_| panic!("no address after '{prefix}': {line}"))
    }

    /// Wait (at most `within`, else fail the test) for the process to exit; its status.
    pub(crate) fn exit_status(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the process") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit; stderr: {:#?}",
                self.stderr
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for the process (killing it after `within`: status `None`) and collect its
    /// standard output and the rest of its standard error.
    pub(crate) fn finish(mut self, within: Duration) -> (Option<i32>, String, Vec<String>) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the process") {
                break status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).expect("stdout is UTF-8");
        }
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.stderr.push(line);
        }
        (status, stdout, std::mem::take(&mut self.stderr))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
