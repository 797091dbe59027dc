//! `rotorlink proxy`, the real binary, over loopback: a UDP client, the proxy and a UDP echo
//! server.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn rotorlink() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rotorlink"))
}

/// Kills the proxy if the test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A UDP echo server on loopback: its address, the count of datagrams it echoed, and the
/// switch that stops it.
fn echo_server() -> (SocketAddr, Arc<AtomicU64>, Arc<AtomicBool>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let echoed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, done) = (Arc::clone(&echoed), Arc::clone(&stop));
    thread::spawn(move || {
        let mut buf = [0; 2048];
        while !done.load(Ordering::Relaxed) {
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                if socket.send_to(&buf[..n], from).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    (addr, echoed, stop)
}

#[test]
fn datagrams_cross_the_proxy_both_ways_delayed() {
    let (echo, echoed, stop_echo) = echo_server();
    let mut child = rotorlink()
        .args(["proxy", "--listen", "127.0.0.1:0", "--forward"])
        .arg(echo.to_string())
        .args(["--delay", "5ms", "--duration", "3s", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut stdout = child.stdout.take().unwrap();
    let running = Running(child);

    // `proxy: 127.0.0.1:PORT -> 127.0.0.1:PORT`
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let rest = line
        .trim_end()
        .strip_prefix("proxy: ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    let (listen, forward) = rest.split_once(" -> ").expect("two addresses");
    let listen: SocketAddr = listen.parse().unwrap();
    assert_eq!(forward, echo.to_string());
    assert!(listen.ip().is_loopback());
    assert_ne!(listen.port(), 0, "the bound port, not the flag's");

    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(listen).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0; 64];
    for i in 0..20u8 {
        let sent = Instant::now();
        client.send(&[i; 32]).unwrap();
        let n = client.recv(&mut buf).expect("the echo comes back");
        let rtt = sent.elapsed();
        assert_eq!(&buf[..n], &[i; 32]);
        assert!(rtt >= Duration::from_millis(10), "round trip {rtt:?}");
    }

    let mut json = String::new();
    stdout.read_to_string(&mut json).unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let mut child = running;
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}: {rest}");
    stop_echo.store(true, Ordering::Relaxed);
    assert_eq!(echoed.load(Ordering::Relaxed), 20);

    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON on stdout");
    assert_eq!(v["listen"], listen.to_string());
    assert_eq!(v["forward"], echo.to_string());
    assert_eq!(v["seed"], 1);
    let secs = v["duration_s"].as_f64().unwrap();
    assert!((2.9..10.0).contains(&secs), "ran {secs} s");
    for way in ["uplink", "downlink"] {
        let d = &v[way];
        assert_eq!(d["received"], 20, "{way}: {d}");
        assert_eq!(d["forwarded"], 20, "{way}: {d}");
        assert_eq!(d["in_flight"], 0, "{way}: {d}");
        assert_eq!(d["send_errors"], 0, "{way}: {d}");
        let c = &d["channel"];
        assert_eq!(c["sent"], 20, "{way}: {c}");
        assert_eq!(c["delivered"], 20, "{way}: {c}");
        assert_eq!(c["bytes_delivered"], 20 * 32, "{way}: {c}");
        assert_eq!(c["lost"], 0, "{way}: {c}");
    }
}

#[test]
fn a_bad_flag_is_status_2_and_a_socket_error_status_1() {
    let out = rotorlink()
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--forward",
            "127.0.0.1:9",
        ])
        .args(["--loss", "60%", "--burst", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("'--burst'"), "{err}");

    let out = rotorlink()
        .args(["proxy", "--listen", "nowhere", "--forward", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = rotorlink()
        .args(["proxy", "--forward", "127.0.0.1:9", "--listen"])
        .arg(taken.local_addr().unwrap().to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("rotorlink: cannot proxy"), "{err}");
}
