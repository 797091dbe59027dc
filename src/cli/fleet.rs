//! `rotorlink fleet`: a ground station flying many aircraft over loopback UDP
//! ([`rotorlink_sim::fleet`]).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use rotorlink_sim::fleet::{self, FleetRun};

use super::units;

/// `rotorlink fleet`.
#[derive(Debug, Clone, Args)]
pub(crate) struct FleetArgs {
    /// Aircraft, one link each, all on the ground station's one socket.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub(crate) aircraft: u32,
    /// Measured time, after a second of warm-up, e.g. 10s.
    #[arg(long, value_name = "DURATION", value_parser = units::flight_duration, default_value = "10s")]
    pub(crate) duration: Duration,
    /// Handshake Inits per second from unknown sources at the ground station, e.g. 20000
    /// [default: none].
    #[arg(long, value_name = "PER_SECOND", default_value_t = 0)]
    pub(crate) flood: u32,
    /// Seed of the links' keys.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Start every link in the same instant (their timers then fire together) instead of
    /// one after the other over half a second.
    #[arg(long)]
    pub(crate) synchronized: bool,
    /// Run the ground side on the tokio adapter's `GroundStation` (its driver task and the
    /// application on one thread) instead of a `Fleet` in a loop of the runner's own.
    #[arg(long)]
    pub(crate) ground_station: bool,
    /// Print the report as JSON and nothing else on standard output.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run(a: &FleetArgs) -> ExitCode {
    let flight = FleetRun {
        aircraft: a.aircraft.max(1),
        duration: a.duration,
        flood_per_second: a.flood,
        seed: a.seed,
        synchronized: a.synchronized,
        ground_station: a.ground_station,
        ..FleetRun::default()
    };
    match fleet::run(&flight) {
        Ok(report) if a.json => match serde_json::to_string_pretty(&report) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rotorlink: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rotorlink: cannot run the fleet on loopback UDP: {e}");
            ExitCode::FAILURE
        }
    }
}
