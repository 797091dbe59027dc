//! `rotorlink sim --pcap --keylog` and `rotorlink decrypt`, the real binary: a capture and
//! its key log decrypt whole; a wrong or missing key log decrypts nothing and says so.

use std::process::Command;

use rotorlink_sim::pcap::{PcapReader, DECRYPTED_PORT, UDP_PORT};

fn rotorlink() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rotorlink"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the binary starts");
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (records on the decrypted port, records left on the capture port).
fn ports(path: &std::path::Path) -> (u64, u64) {
    let mut reader = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let (mut decrypted, mut left) = (0, 0);
    while let Some(r) = reader.next_udp().unwrap() {
        match r.dst.port() {
            DECRYPTED_PORT => decrypted += 1,
            UDP_PORT => left += 1,
            other => panic!("port {other}"),
        }
    }
    (decrypted, left)
}

#[test]
fn a_simulated_capture_decrypts_with_its_key_log_and_not_without() {
    let dir = std::env::temp_dir().join(format!("rotorlink-decrypt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (capture, keys, plain) = (
        dir.join("capture.pcap"),
        dir.join("keys.log"),
        dir.join("plain.pcap"),
    );
    let said = run(rotorlink()
        .args(["sim", "--duration", "2s", "--pcap"])
        .arg(&capture)
        .arg("--keylog")
        .arg(&keys));
    assert!(said.contains("traffic secrets to"), "{said}");
    let said = run(rotorlink()
        .arg("decrypt")
        .arg(&capture)
        .arg("--keylog")
        .arg(&keys)
        .arg("-o")
        .arg(&plain));
    assert!(said.contains(", 0 not"), "{said}");
    let (decrypted, left) = ports(&plain);
    assert!(decrypted > 1000 && left == 0, "{decrypted} {left}");

    // Another run's key log opens nothing: every encrypted frame stays as it was.
    let other_keys = dir.join("other.log");
    run(rotorlink()
        .args(["sim", "--duration", "1s", "--seed", "9", "--pcap"])
        .arg(dir.join("other.pcap"))
        .arg("--keylog")
        .arg(&other_keys));
    let said = run(rotorlink()
        .arg("decrypt")
        .arg(&capture)
        .arg("--keylog")
        .arg(&other_keys)
        .arg("-o")
        .arg(&plain));
    assert!(said.contains(" 0 encrypted frames decrypted"), "{said}");
    let (decrypted, left) = ports(&plain);
    assert!(left > 1000 && decrypted < 10, "{decrypted} {left}");

    // A file that is not a key log: an error naming it, status 1.
    let out = rotorlink()
        .arg("decrypt")
        .arg(&capture)
        .arg("--keylog")
        .arg(&capture)
        .arg("-o")
        .arg(&plain)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key log"));
    let _ = std::fs::remove_dir_all(&dir);
}
