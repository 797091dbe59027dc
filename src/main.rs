//! The `rotorlink` command line.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rotorlink_sim::demo::{self, DemoConfig};

/// rotorlink: an open, verifiable encrypted link between an aircraft and its remote.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fly the demo: an aircraft and a remote over a moderately lossy simulated radio, with
    /// stick commands, telemetry, video and a flight-log download; prints the report.
    Demo {
        /// Seed of every random choice (the same seed gives the same report).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Virtual flight time in seconds.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        seconds: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { seed, seconds } => {
            let cfg = DemoConfig {
                seed,
                duration: Duration::from_secs(seconds),
                ..DemoConfig::default()
            };
            let started = Instant::now();
            match demo::run(&cfg) {
                Ok(report) => {
                    let wall = started.elapsed();
                    print!("{report}");
                    println!(
                        "\nsimulated {:.1} s in {:.2} s of wall time ({:.0}x real time)",
                        report.flown.as_secs_f64(),
                        wall.as_secs_f64(),
                        report.flown.as_secs_f64() / wall.as_secs_f64().max(1e-9)
                    );
                    if report.flight_log_complete {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("rotorlink: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
