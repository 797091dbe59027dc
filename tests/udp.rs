//! Whole-system tests over real UDP on the loopback interface: `rotorlink aircraft` and
//! `rotorlink remote` as two processes, directly and through `rotorlink proxy` with 5 %
//! loss, moving a 10 MiB flight log over the storage channel alongside the stick commands,
//! and a 64 MiB video clip, four times the link's send queue, under flow control.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

#[path = "common/process.rs"]
mod process;
use process::{Process, BIN};

const LOG_SIZE: u64 = 10 << 20;

fn code_file(name: &str, code: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rotorlink-udp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("{code}\n")).unwrap();
    path
}

fn start_aircraft(code: &Path, extra: &[&str]) -> (Process, SocketAddr) {
    let mut args = vec![
        "aircraft",
        "--listen",
        "127.0.0.1:0",
        "--code-file",
        code.to_str().unwrap(),
        "--log-size",
        "10MiB",
        "--video",
        "2mbit",
        "--duration",
        "90s",
        "--json",
    ];
    args.extend_from_slice(extra);
    let mut aircraft = Process::start(&args);
    let at = aircraft.address("aircraft: listening on ");
    (aircraft, at)
}

fn remote(to: SocketAddr, code: &Path, extra: &[&str]) -> Output {
    remote_for(to, code, "60s", extra)
}

fn remote_for(to: SocketAddr, code: &Path, duration: &str, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("remote")
        .args(extra)
        .args([
            "--connect",
            &to.to_string(),
            "--code-file",
            code.to_str().unwrap(),
            "--duration",
            duration,
            "--until-downloaded",
            "--json",
        ])
        .output()
        .expect("the binary runs")
}

/// Fly once to `to` and check both processes' reports.
fn fly(to: SocketAddr, aircraft: Process, extra: &[&str]) -> Value {
    let code = code_file("code", "246813");
    let out = remote(to, &code, extra);
    let report = reports(out, aircraft);
    // The log grows with telemetry records during the flight.
    assert_eq!(report["download"]["file"], "flightlog", "{report}");
    assert!(
        report["download"]["received"].as_u64().unwrap() >= LOG_SIZE,
        "{report}"
    );
    report
}

/// Both processes' reports, once the remote is done: the same, paired, the download
/// complete and verified, nothing corrupted, every counter known.
fn reports(out: Output, aircraft: Process) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "remote failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is JSON");
    let (status, aircraft_out, aircraft_err) = aircraft.finish(Duration::from_secs(20));
    assert_eq!(status, Some(0), "aircraft: {aircraft_err:?}");
    // The aircraft prints the same report, which the remote sent it over the link.
    let aircraft_report: Value = serde_json::from_str(&aircraft_out).expect("JSON");
    assert_eq!(aircraft_report, report);

    assert_eq!(report["paired"], true, "{report}");
    assert_eq!(report["storage_unlocked"], true);
    let download = &report["download"];
    assert_eq!(download["verified"], true, "{report}");
    assert_eq!(download["received"], download["size"], "{report}");
    assert!(download["goodput_mbps"].as_f64().unwrap() > 0.0, "{report}");
    // The aircraft's summary arrived: its counters are known.
    assert_eq!(report["corrupted_payloads"], 0, "{report}");
    assert!(report["radio_sent"].as_u64().unwrap() > 0, "{report}");
    let control = &report["channels"]["control"];
    assert!(control["delivered"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["channels"]["telemetry"]["delivered"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Both ends' counters made it into one report: the aircraft's storage sends (the log)
    // and the remote's deliveries.
    let storage = &report["channels"]["storage"];
    let size = download["size"].as_u64().unwrap();
    assert!(storage["bytes"].as_u64().unwrap() >= size, "{report}");
    report
}

#[test]
fn two_processes_pair_and_move_ten_mebibytes_over_loopback_udp() {
    let code = code_file("code", "246813");
    let dir = code.parent().unwrap();
    let (aircraft_pcap, remote_pcap) = (dir.join("aircraft.pcap"), dir.join("remote.pcap"));
    let (aircraft_keys, remote_keys) = (dir.join("aircraft.keys"), dir.join("remote.keys"));
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    let (aircraft, at) = start_aircraft(
        &code,
        &[
            "--pcap",
            &path(&aircraft_pcap),
            "--keylog",
            &path(&aircraft_keys),
        ],
    );
    let report = fly(
        at,
        aircraft,
        &[
            "--pcap",
            &path(&remote_pcap),
            "--keylog",
            &path(&remote_keys),
        ],
    );
    assert_eq!(report["rejected"]["auth"], 0, "{report}");
    // Each end captured what it sent and received: every datagram of the flight shows at
    // least once, and the remote's capture opens with its pairing Init.
    let sent = report["radio_sent"].as_u64().unwrap();
    let records = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(bytes[..4], 0xa1b2_c3d4u32.to_le_bytes());
        let (mut at, mut n, mut first_type) = (24, 0u64, None);
        while at + 16 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            // Ethernet 14 + IPv4 20 + UDP 8, then the frame: version, type, ...
            first_type.get_or_insert(bytes[at + 16 + 42 + 1]);
            at += 16 + len;
            n += 1;
        }
        assert_eq!(at, bytes.len(), "{}: truncated record", path.display());
        (n, first_type)
    };
    let (air_records, _) = records(&aircraft_pcap);
    let (remote_records, first) = records(&remote_pcap);
    assert_eq!(
        first,
        Some(0x01),
        "the remote's capture starts with a HandshakeInit"
    );
    assert!(
        air_records + remote_records >= sent,
        "{air_records} + {remote_records} < {sent}"
    );
    // With both ends' key logs the remote's capture decrypts whole (each end logs the
    // secrets it sends under); with one end's, only that end's frames.
    let decrypt = |logs: &[&PathBuf]| {
        let mut cmd = Command::new(BIN);
        cmd.arg("decrypt").arg(&remote_pcap);
        for log in logs {
            cmd.arg("--keylog").arg(log);
        }
        let out = cmd
            .arg("-o")
            .arg(dir.join("decrypted.pcap"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let both = decrypt(&[&aircraft_keys, &remote_keys]);
    assert!(both.contains(" decrypted, 0 not "), "{both}");
    let one = decrypt(&[&remote_keys]);
    assert!(
        !one.contains(" decrypted, 0 not ") && !one.contains(" 0 encrypted"),
        "{one}"
    );
}

#[test]
fn two_processes_move_ten_mebibytes_through_the_proxy_at_five_percent_loss() {
    let code = code_file("code", "246813");
    let (aircraft, at) = start_aircraft(&code, &[]);
    let mut proxy = Process::start(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--forward",
        &at.to_string(),
        "--loss",
        "5%",
        "--delay",
        "2ms",
        "--seed",
        "7",
        "--duration",
        "90s",
    ]);
    let via = proxy.address("proxy: ");
    let report = fly(via, aircraft, &[]);
    // The proxy's losses show: retransmitted storage segments, lost datagrams.
    assert!(
        report["storage_retransmits"].as_u64().unwrap() > 0,
        "{report}"
    );
    let lost = report["radio_lost"].as_u64().unwrap();
    let sent = report["radio_sent"].as_u64().unwrap();
    assert!(
        lost as f64 > 0.02 * sent as f64,
        "{lost} of {sent} lost: {report}"
    );
}

/// A 64 MiB clip: four times what the aircraft's send queue holds (256 messages of 64 KiB),
/// so it only arrives whole if the aircraft waits for the link (`QueueFull`, then
/// `Writable`) rather than dropping what does not fit. About 1.5 s in a debug build.
#[test]
fn two_processes_download_a_64_mebibyte_clip_and_verify_its_sha256() {
    let code = code_file("code", "246813");
    let (aircraft, at) = start_aircraft(&code, &["--clip-size", "64MiB", "--photos", "0"]);
    let started = std::time::Instant::now();
    let out = remote_for(at, &code, "120s", &["--download", "clip"]);
    let report = reports(out, aircraft);
    let download = &report["download"];
    assert_eq!(download["file"], "clip.mp4", "{report}");
    assert_eq!(download["size"], 64 << 20, "{report}");
    assert_eq!(download["resumes"], 0, "{report}");
    // Every chunk was queued once: the aircraft neither dropped nor repeated one.
    let storage = &report["channels"]["storage"];
    assert_eq!(storage["lost"], 0, "{report}");
    assert_eq!(storage["refused"], 0, "{report}");
    eprintln!(
        "64 MiB in {:.1} s of wall time, {} Mbit/s",
        started.elapsed().as_secs_f64(),
        download["goodput_mbps"]
    );
}

#[test]
fn a_wrong_code_file_exits_with_status_3() {
    let right = code_file("right", "246813");
    let wrong = code_file("wrong", "135792");
    let (aircraft, at) = start_aircraft(&right, &[]);
    let out = remote(at, &wrong, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("rejected the code"), "{stderr}");
    assert!(out.stdout.is_empty());
    drop(aircraft);
}

/// Hashing a large clip for the list (a second for 1 GiB) is done on a thread of its own: the pilot's stick commands do
/// not wait for it (in the loop that takes them, it held them for as long). The flight ends
/// in the middle of the download, and the aircraft's summary still arrives.
#[test]
fn hashing_a_large_clip_for_the_list_holds_no_stick_command() {
    let code = code_file("code", "246813");
    let (aircraft, at) = start_aircraft(&code, &["--clip-size", "1GiB", "--photos", "0"]);
    let out = remote_for(at, &code, "4s", &["--download", "clip"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "remote failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is JSON");
    let (status, _, aircraft_err) = aircraft.finish(Duration::from_secs(20));
    assert_eq!(status, Some(0), "aircraft: {aircraft_err:?}");
    assert_eq!(report["missing_summary"], Value::Null, "{report}");
    let latency = &report["channels"]["control"]["latency"];
    eprintln!("control latency {latency}, download {}", report["download"]);
    assert!(latency["max_ms"].as_f64().unwrap() < 500.0, "{report}");
}
