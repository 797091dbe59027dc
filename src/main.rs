//! The `rotorlink` command line.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rotorlink_sim::scenario::{self, Scenario};

/// rotorlink: an open, verifiable encrypted link between an aircraft and its remote.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fly the demo: provision an aircraft with a code, pair a remote, fly 30 s over a
    /// moderately lossy simulated radio (sticks, telemetry, 20 Mbit/s video), unlock the
    /// onboard storage and download the flight log; print the report.
    Demo {
        /// Seed of every random choice (the same seed gives the same report).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { seed } => {
            let scenario = Scenario {
                seed,
                ..Scenario::default()
            };
            let started = Instant::now();
            match scenario::run(&scenario, &mut |_| {}) {
                Ok(report) => {
                    let wall = started.elapsed().max(Duration::from_micros(1));
                    print!("{report}");
                    println!(
                        "\nsimulated {:.1} s in {:.2} s of wall time ({:.0}x real time)",
                        report.duration_s,
                        wall.as_secs_f64(),
                        report.duration_s / wall.as_secs_f64()
                    );
                    if report.paired {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(3)
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
