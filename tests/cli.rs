//! The `rotorlink` binary, run for real: its exit statuses, its JSON, its error messages,
//! and the files a sweep writes. Flights are short and the video is slow, so that the
//! whole file stays fast in a debug build.

use serde_json::Value;

#[path = "common/process.rs"]
mod process;
use process::{rotorlink, scratch, stderr, stdout};

/// A flight of `sim --json`, parsed; the whole of stdout must be one JSON object.
fn sim_json(extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["sim", "--duration", "2s", "--video", "2mbit", "--json"];
    args.extend_from_slice(extra);
    let out = rotorlink(&args);
    let text = stdout(&out);
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{text}"));
    assert!(value.is_object(), "{text}");
    (out.status.code(), value)
}

#[test]
fn demo_pairs_and_prints_a_report() {
    let out = rotorlink(&["demo"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("rotorlink flight  seed 1"), "{text}");
    assert!(text.contains("paired with the code"), "{text}");
    for channel in ["control", "telemetry", "video", "storage"] {
        assert!(text.contains(channel), "{channel} missing:\n{text}");
    }
    assert!(text.contains("x real time"), "{text}");
}

#[test]
fn sim_json_is_one_object_with_every_key() {
    let out = rotorlink(&["sim", "--duration", "3s", "--video", "2mbit", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let r: Value = serde_json::from_str(&text).expect("stdout is exactly one JSON value");
    assert_eq!(r["paired"], Value::Bool(true), "{text}");
    assert!(
        r["handshake_ms"].as_f64().is_some_and(|t| t > 0.0),
        "{text}"
    );
    for channel in ["control", "telemetry", "video", "storage"] {
        let c = &r["channels"][channel];
        for key in [
            "sent",
            "delivered",
            "lost",
            "refused",
            "goodput_mbps",
            "bytes",
        ] {
            assert!(
                c[key].is_number(),
                "channels.{channel}.{key} missing:\n{text}"
            );
        }
        assert!(c["sent"].as_u64().unwrap() > 0, "nothing sent on {channel}");
    }
    for key in ["p50_ms", "p99_ms", "max_ms"] {
        assert!(
            r["channels"]["control"]["latency"][key].is_number(),
            "{text}"
        );
    }
    for key in ["rejected", "video_frames"] {
        assert!(r[key].is_object(), "{key} missing:\n{text}");
    }
    for key in ["rekeys", "failsafe_events", "seed"] {
        assert!(r[key].is_u64(), "{key} missing:\n{text}");
    }
    assert_eq!(r["seed"], 1);
    assert_eq!(r["duration_s"], 3.0);
    // The flight log, downloaded and verified: the simulator knows every count, and the
    // summary of a real-socket flight is never missing here.
    let d = &r["download"];
    assert_eq!(d["file"], "flightlog", "{text}");
    assert_eq!(d["verified"], true, "{text}");
    assert_eq!(d["received"], d["size"], "{text}");
    assert_eq!(d["resumes"], 0, "{text}");
    assert!(
        d["goodput_mbps"].as_f64().is_some_and(|g| g > 0.0),
        "{text}"
    );
    assert!(r.get("missing_summary").is_none(), "{text}");
}

/// `--download` picks the file, `--clip-size` sizes it; the report says how it went.
#[test]
fn sim_downloads_the_file_it_is_told_to() {
    let (code, r) = sim_json(&["--download", "clip", "--clip-size", "2MiB", "--photos", "0"]);
    assert_eq!(code, Some(0), "{r:#}");
    let d = &r["download"];
    assert_eq!(d["file"], "clip.mp4", "{r:#}");
    assert_eq!(d["size"], 2 << 20, "{r:#}");
    assert_eq!(d["verified"], true, "{r:#}");
    let out = rotorlink(&["demo", "--download", "photo-1", "--photo-size", "64KiB"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "download         photo-1.jpg: 64.0 KiB of 64.0 KiB (100%), SHA-256 verified"
        ),
        "{text}"
    );
}

#[test]
fn a_wrong_code_does_not_pair_and_exits_3() {
    // The remote reports a wrong code when its attempt times out (10 s: a failed `Response`
    // may be a forgery), so the flight outlasts it; unpaired, it costs little.
    let args = [
        "sim",
        "--duration",
        "11s",
        "--json",
        "--password",
        "a",
        "--aircraft-password",
        "b",
    ];
    let out = rotorlink(&args);
    let code = out.status.code();
    let r: Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(code, Some(3), "{r:#}");
    assert_eq!(r["paired"], Value::Bool(false));
    assert!(r["handshake_ms"].is_null());
    assert!(r["refusal"].is_string(), "no refusal in {r:#}");
}

#[test]
fn the_same_seed_gives_the_same_json() {
    let flags = ["--seed", "42", "--loss", "5%", "--jitter", "3ms"];
    let (code_a, a) = sim_json(&flags);
    let (code_b, b) = sim_json(&flags);
    assert_eq!((code_a, code_b), (Some(0), Some(0)));
    assert_eq!(a, b);
    assert_eq!(a["seed"], 42);
}

#[test]
fn bad_values_get_one_line_naming_the_flag_and_exit_2() {
    for (args, flag) in [
        (&["sim", "--loss", "150%"][..], "--loss"),
        (&["sim", "--mtu", "10"][..], "--mtu"),
        (&["sim", "--delay", "abc"][..], "--delay"),
        (&["sim", "--rate", "50"][..], "--rate"),
        (&["sim", "--burst", "1", "--loss", "80%"][..], "--burst"),
        (&["sweep", "--loss", "0,150"][..], "--loss"),
        (
            &["sim", "--download", "clip", "--clip-size", "0"][..],
            "--download",
        ),
        (&["demo", "--download", "photo-4"][..], "--download"),
        (&["sim", "--clip-size", "5GiB"][..], "--clip-size"),
        (
            &["aircraft", "--code-file", "x", "--photos", "1001"][..],
            "--photos",
        ),
    ] {
        let out = rotorlink(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn sweep_writes_a_csv_and_an_svg() {
    let dir = scratch("sweep");
    let (csv, svg) = (dir.join("sweep.csv"), dir.join("sweep.svg"));
    let out = rotorlink(&[
        "sweep",
        "--loss",
        "0,10",
        "--duration",
        "2s",
        "--video",
        "2mbit",
        "--csv",
        csv.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    let table = text.lines().filter(|l| l.contains(" yes ")).count();
    assert_eq!(table, 2, "one summary row per point:\n{text}");

    let csv = std::fs::read_to_string(&csv).expect("the CSV was written");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    for column in [
        "loss_percent",
        "seed",
        "paired",
        "video_mbps",
        "control_p99_ms",
    ] {
        assert!(header.contains(&column), "{column} missing: {}", lines[0]);
    }
    let col = |row: &str, name: &str| {
        let i = header.iter().position(|h| *h == name).unwrap();
        row.split(',').nth(i).unwrap().to_string()
    };
    assert_eq!(col(lines[1], "loss_percent"), "0");
    assert_eq!(col(lines[2], "loss_percent"), "10");
    assert_eq!(col(lines[1], "paired"), "true");
    assert!(lines.iter().all(|l| l.split(',').count() == header.len()));

    let svg = std::fs::read_to_string(&svg).expect("the SVG was written");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    for series in ["total goodput", "video goodput", "control p99"] {
        assert!(
            svg.contains(&format!("data-series=\"{series}\"")),
            "{series} missing"
        );
    }
    assert!(svg.contains("<polyline"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The records of a classic little-endian pcap file, after checking its global header:
/// (seconds, microseconds, captured bytes) of each.
fn pcap_records(file: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
    let u32le = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
    assert!(file.len() >= 24, "no pcap global header");
    assert_eq!(&file[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "pcap magic");
    assert_eq!(u32le(20), 1, "LINKTYPE_ETHERNET");
    let mut records = Vec::new();
    let mut at = 24;
    while at < file.len() {
        let len = u32le(at + 8) as usize;
        assert_eq!(
            len,
            u32le(at + 12) as usize,
            "record {} truncated",
            records.len()
        );
        records.push((
            u32le(at),
            u32le(at + 4),
            file[at + 16..at + 16 + len].to_vec(),
        ));
        at += 16 + len;
    }
    assert_eq!(at, file.len(), "the last record ends with the file");
    records
}

#[test]
fn sim_pcap_captures_every_datagram_on_the_air() {
    let dir = scratch("pcap");
    let file = dir.join("capture.pcap");
    let path = file.to_str().unwrap();
    let (code, report) = sim_json(&["--pcap", path]);
    assert_eq!(code, Some(0), "{report}");
    let records = pcap_records(&std::fs::read(&file).expect("the capture was written"));
    assert!(!records.is_empty());
    assert_eq!(
        records.len() as u64,
        report["radio_sent"].as_u64().unwrap(),
        "one record per datagram put on the air"
    );
    // Simulation time from zero, in order; UDP to port 47474; rotorlink inside.
    assert_eq!((records[0].0, records[0].1), (0, 0));
    let micros: Vec<u64> = records
        .iter()
        .map(|(s, us, _)| u64::from(*s) * 1_000_000 + u64::from(*us))
        .collect();
    assert!(micros.windows(2).all(|w| w[0] <= w[1]));
    assert!(*micros.last().unwrap() <= 2_000_000);
    for (_, _, frame) in &records {
        assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4 over Ethernet");
        assert_eq!(frame[23], 17, "UDP");
        assert_eq!(&frame[36..38], &47474u16.to_be_bytes(), "destination port");
        assert_eq!(frame[42], rotorlink::wire::VERSION, "rotorlink's version");
    }

    // The same flight without a capture gives the same report.
    let (_, plain) = sim_json(&[]);
    assert_eq!(plain, report);

    // Without --json, the report says where the capture went.
    let out = rotorlink(&[
        "sim",
        "--duration",
        "1s",
        "--video",
        "2mbit",
        "--pcap",
        path,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("datagrams to {path}")),
        "{}",
        stdout(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_pcap_to_an_unwritable_file_exits_1_with_one_line() {
    let dir = scratch("pcap-unwritable");
    let file = dir.join("no-such-dir").join("capture.pcap");
    let out = rotorlink(&["sim", "--duration", "1s", "--pcap", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("rotorlink: cannot write "), "{err}");
    assert!(err.contains("capture.pcap"), "{err}");
    assert!(stdout(&out).is_empty(), "no report: {}", stdout(&out));
    let _ = std::fs::remove_dir_all(&dir);

    // A file that opens but fails on write: the error surfaces at the end, not lost.
    if std::path::Path::new("/dev/full").exists() {
        let out = rotorlink(&["sim", "--duration", "1s", "--pcap", "/dev/full"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("rotorlink: cannot write /dev/full: "),
            "{err}"
        );
    }
}
