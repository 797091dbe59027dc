//! `rotorlink decrypt`: decrypt a capture with a key log, for study in Wireshark
//! (PROTOCOL.md 30.2).

use std::fs::{self, File};
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

use rotorlink_sim::keylog::{decrypt_capture, KeyLog};

/// `rotorlink decrypt`.
#[derive(Debug, clap::Args)]
pub(crate) struct DecryptArgs {
    /// The capture to decrypt (`--pcap` of `sim`, `aircraft` or `remote`).
    #[arg(value_name = "CAPTURE")]
    capture: PathBuf,
    /// A key log (`sim --keylog`); give it once per file when each end wrote its own.
    #[arg(long, value_name = "FILE", required = true)]
    keylog: Vec<PathBuf>,
    /// Where to write the decrypted capture.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

/// Decrypt `a.capture` into `a.output`; exit status 0, or 1 when a file cannot be read or
/// written (with the reason).
pub(crate) fn run(a: &DecryptArgs) -> ExitCode {
    let mut log = KeyLog::new();
    for path in &a.keylog {
        let parsed = fs::read_to_string(path).and_then(|text| KeyLog::parse(&text));
        match parsed {
            Ok(more) => log.extend(&more),
            Err(e) => return fail(&format!("cannot read the key log {}: {e}", path.display())),
        }
    }
    let input = match File::open(&a.capture) {
        Ok(f) => BufReader::new(f),
        Err(e) => return fail(&format!("cannot read {}: {e}", a.capture.display())),
    };
    let output = match File::create(&a.output) {
        Ok(f) => BufWriter::new(f),
        Err(e) => return fail(&format!("cannot write {}: {e}", a.output.display())),
    };
    match decrypt_capture(input, &log, output) {
        Ok(done) => {
            println!(
                "{} records: {} encrypted frames decrypted, {} not (no logged secret opens \
                 them), {} others; wrote {} (UDP port 47475)",
                done.records,
                done.decrypted,
                done.undecrypted,
                done.other,
                a.output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("cannot decrypt {}: {e}", a.capture.display())),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("rotorlink: {message}");
    ExitCode::FAILURE
}
