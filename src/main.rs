//! The `rotorlink` command line.
//!
//! Exit status: 0 when the remote paired, 2 for a bad flag or configuration (with a one-line
//! message naming the flag), 3 when the remote did not pair, 1 when a file could not be
//! written.

mod cli;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use rotorlink_sim::keylog::KeyLog;
use rotorlink_sim::pcap::PcapTap;
use rotorlink_sim::report::Report;
use rotorlink_sim::scenario::{self, Scenario};

use cli::args::{self, flag_error, FlagError, SimArgs, StorageArgs, SweepArgs};
use cli::progress::Progress;
use cli::sweep::{self, Point};
use cli::units::{show_duration, show_rate, trim};

/// rotorlink: an open, verifiable encrypted link between an aircraft and its remote.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Exit status: 0 paired, 2 bad flag or configuration, 3 not paired."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fly the demo: provision an aircraft with a code, pair a remote, fly 30 s over a
    /// moderately lossy simulated radio (sticks, telemetry, 20 Mbit/s video), unlock the
    /// onboard storage and download the flight log (or --download another file); print the
    /// report.
    Demo(DemoArgs),
    /// Fly one simulated flight over the radio the flags describe (the same both ways;
    /// every flag left out keeps the demo's value) and print its report.
    ///
    /// Values take units: percentages as 5% or 0.05, durations as 500us, 10ms, 1.5s or
    /// 2min, rates as 500kbit, 50mbit or 1gbit.
    Sim(SimArgs),
    /// Fly one simulated flight per loss rate, in parallel over the cores; print a table,
    /// and write a CSV and an SVG plot of goodput and control latency against loss.
    ///
    /// Every other flag of `sim` is a fixed parameter of all the flights, the seed included.
    /// The exit status is 3 if any flight did not pair (the files are written all the same).
    Sweep(SweepArgs),
    /// Run an aircraft on a real UDP socket: wait for a remote to pair with the code (or
    /// connect with its bond), fly (telemetry, video, onboard storage) and print the report
    /// when the remote closes the link.
    ///
    /// With --code-file the aircraft is a throwaway, provisioned at start and forgetting its
    /// bonds and failed attempts when it exits. A real one is activated once
    /// (`rotorlink aircraft activate --state DIR --code-file FILE`) and runs from its state
    /// (`rotorlink aircraft --state DIR [--pairing-window 2min]`): bonds and the count of
    /// failed attempts at the code survive a restart.
    Aircraft(cli::net::AircraftArgs),
    /// Run a remote on a real UDP socket: pair with the aircraft at --connect using the code
    /// in --code-file (or connect with the bond kept in --state), fly for --duration,
    /// download a file from its onboard storage (the flight log, or --download) and print
    /// the same report as `sim`.
    Remote(cli::net::RemoteArgs),
    /// Put the simulated radio between a remote and an aircraft over real UDP: datagrams
    /// arriving at --listen go through the channel model to --forward, and the replies back.
    Proxy(cli::proxy::ProxyArgs),
    /// Decrypt a capture with the key log of its run (`sim --pcap F --keylog K`): every
    /// frame a logged secret opens is written with its plaintext in place of the
    /// ciphertext, on UDP port 47475, where the Wireshark dissector decodes the bodies
    /// (video fragments with their FEC layout, acks, feedback).
    Decrypt(cli::decrypt::DecryptArgs),
    /// Fly a fleet over real UDP on loopback: one ground-station thread with one socket
    /// holding a link per aircraft (`rotorlink::Fleet`), the aircraft on another thread;
    /// sticks at 100 Hz and telemetry at 50 Hz on every link; print the latencies and the
    /// ground station's CPU. --flood adds handshake Inits from unknown sources.
    Fleet(cli::fleet::FleetArgs),
}

/// `rotorlink demo`.
#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Seed of every random choice (the same seed gives the same report).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The file the remote downloads from onboard storage: flightlog, clip, photo-N
    /// [default: flightlog].
    #[arg(long, value_name = "FILE")]
    download: Option<String>,
    #[command(flatten)]
    storage: StorageArgs,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(&e),
    };
    match cli.command {
        Command::Demo(a) => demo(&a),
        Command::Sim(a) => sim(&a),
        Command::Sweep(a) => run_sweep(&a),
        Command::Aircraft(a) => cli::net::aircraft(&a),
        Command::Remote(a) => cli::net::remote(&a),
        Command::Proxy(a) => cli::proxy::run(&a),
        Command::Decrypt(a) => cli::decrypt::run(&a),
        Command::Fleet(a) => cli::fleet::run(&a),
    }
}

/// A bad value gets one line naming its flag (clap's first line) and status 2; help,
/// version and other usage errors are clap's own.
fn parse_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or("error: invalid value");
            eprintln!("{}", line.trim_end());
            ExitCode::from(2)
        }
        _ => e.exit(),
    }
}

/// Write to standard output; a closed pipe (`| head`) is not an error worth a panic.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

fn status(paired: bool) -> ExitCode {
    if paired {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

/// `simulated 30.0 s in 0.32 s of wall time (92x real time)`.
fn speed(simulated_s: f64, wall: Duration) -> String {
    let wall = wall.max(Duration::from_micros(1)).as_secs_f64();
    format!(
        "simulated {simulated_s:.1} s in {wall:.2} s of wall time ({:.0}x real time)\n",
        simulated_s / wall
    )
}

/// Fly one scenario with a progress bar (unless `quiet`); the report and the wall time.
/// With a `tap`, every datagram on the air is also written to its capture.
fn fly(
    s: &Scenario,
    quiet: bool,
    tap: Option<&PcapTap>,
    key_log: Option<&mut KeyLog>,
) -> Result<(Report, Duration), rotorlink::ConfigError> {
    let progress = Progress::new(1, format!("flying {}", show_duration(s.duration)), quiet);
    let started = Instant::now();
    let observer = tap.map(|tap| Box::new(tap.clone()) as Box<dyn rotorlink_sim::Adversary>);
    let result = match (key_log, observer) {
        (Some(log), observer) => {
            scenario::run_logged(s, &mut progress.run_callback(), observer, log)
        }
        (None, Some(observer)) => scenario::run_observed(s, &mut progress.run_callback(), observer),
        (None, None) => scenario::run(s, &mut progress.run_callback()),
    };
    progress.finish();
    result.map(|r| (r, started.elapsed()))
}

fn demo(a: &DemoArgs) -> ExitCode {
    let mut scenario = Scenario {
        seed: a.seed,
        ..Scenario::default()
    };
    scenario.aircraft = a.storage.apply(&scenario.aircraft);
    if let Some(file) = &a.download {
        match args::download(file, &scenario.aircraft.storage()) {
            Ok(file) => scenario.download = file,
            Err(e) => return flag_error(&e),
        }
    }
    match fly(&scenario, false, None, None) {
        Ok((report, wall)) => {
            out(&format!("{report}\n{}", speed(report.duration_s, wall)));
            status(report.paired)
        }
        Err(e) => {
            eprintln!("rotorlink: {e}");
            ExitCode::from(2)
        }
    }
}

fn sim(a: &SimArgs) -> ExitCode {
    let mut scenario = match args::scenario(a.loss, a.duration, &a.radio, &a.flight) {
        Ok(s) => s,
        Err(e) => return flag_error(&e),
    };
    scenario.outages.clone_from(&a.outage);
    if let Some(lifetime) = a.resume_lifetime {
        scenario.link.handshake.resume_lifetime = lifetime;
    }
    let tap = match &a.pcap {
        Some(path) => match PcapTap::create(path) {
            Ok(tap) => Some((path, tap)),
            Err(e) => return cannot_write_capture(path, &e),
        },
        None => None,
    };
    let mut key_log = a.keylog.as_ref().map(|_| KeyLog::new());
    let (report, wall) = match fly(
        &scenario,
        a.flight.json,
        tap.as_ref().map(|(_, t)| t),
        key_log.as_mut(),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rotorlink: {e}");
            return ExitCode::from(2);
        }
    };
    let mut captured = String::new();
    if let Some((path, tap)) = tap {
        let records = tap.records();
        if let Err(e) = tap.finish() {
            return cannot_write_capture(path, &e);
        }
        captured = format!("wrote {records} datagrams to {}\n", path.display());
    }
    if let (Some(path), Some(log)) = (&a.keylog, &key_log) {
        if let Err(e) = std::fs::write(path, log.to_text()) {
            return cannot_write_capture(path, &e);
        }
        captured += &format!(
            "wrote {} traffic secrets to {}\n",
            log.len(),
            path.display()
        );
    }
    if a.flight.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => out(&format!("{json}\n")),
            Err(e) => {
                eprintln!("rotorlink: cannot write the report as JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        out(&format!(
            "radio (each way): {}\nvideo: the camera asks {}, the encoder follows the link; link MTU {}\nstorage: {}\n\n{report}\n{}",
            args::describe_radio(&scenario.uplink, &scenario.downlink, true),
            show_rate(scenario.aircraft.video_bitrate),
            scenario.link.mtu,
            args::describe_storage(&scenario.aircraft, &scenario.download),
            speed(report.duration_s, wall)
        ));
        out(&captured);
    }
    status(report.paired)
}

fn cannot_write_capture(path: &Path, e: &std::io::Error) -> ExitCode {
    eprintln!("rotorlink: cannot write {}: {e}", path.display());
    ExitCode::FAILURE
}

fn run_sweep(a: &SweepArgs) -> ExitCode {
    if !a.fec.is_empty() {
        return run_fec_sweep(a);
    }
    let scenarios: Result<Vec<Scenario>, FlagError> = a
        .loss
        .iter()
        .map(|&loss| args::scenario(Some(loss), a.duration, &a.radio, &a.flight))
        .collect();
    let scenarios = match scenarios {
        Ok(s) => s,
        Err(e) => return flag_error(&e),
    };
    let Some(first) = scenarios.first() else {
        eprintln!("error: invalid value for '--loss': no loss rate to fly");
        return ExitCode::from(2);
    };
    let radio = args::describe_radio(&first.uplink, &first.downlink, false);
    let fixed = format!(
        "{} per flight, seed {}, video {}, link MTU {}; radio: {radio}",
        show_duration(a.duration),
        a.flight.seed,
        show_rate(first.aircraft.video_bitrate),
        first.link.mtu,
    );
    let (reports, wall) = match fly_sweep(&scenarios, a.flight.json) {
        Ok(flown) => flown,
        Err(code) => return code,
    };
    let points: Vec<Point> = a
        .loss
        .iter()
        .zip(reports)
        .map(|(&loss, report)| Point { loss, report })
        .collect();
    let wrote = match write_sweep_files(
        a,
        || sweep::csv(&points),
        || sweep::chart(&points, fixed.clone()).render(),
    ) {
        Ok(wrote) => wrote,
        Err(code) => return code,
    };
    let printed = if a.flight.json {
        print_json(
            points
                .iter()
                .map(|p| serde_json::json!({ "loss": p.loss, "report": p.report }))
                .collect(),
        )
    } else {
        let mut text = format!("rotorlink sweep: {fixed}\n\n{}\n", sweep::table(&points));
        text.push_str(&sweep_footer(a, points.len(), wall, &wrote));
        out(&text);
        Ok(())
    };
    if let Err(code) = printed {
        return code;
    }
    status(points.iter().all(|p| p.report.paired))
}

/// Fly `scenarios` in parallel behind a progress bar (hidden with `json`): their reports
/// in order, and the wall time they took.
///
/// # Errors
/// The exit code to return when a flight could not be set up.
fn fly_sweep(scenarios: &[Scenario], json: bool) -> Result<(Vec<Report>, Duration), ExitCode> {
    let progress = Progress::new(
        scenarios.len(),
        format!("{} flights", scenarios.len()),
        json,
    );
    let started = Instant::now();
    let results = sweep::run_all(scenarios, &progress);
    let wall = started.elapsed();
    progress.finish();
    let reports = results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            eprintln!("rotorlink: {e}");
            ExitCode::from(2)
        })?;
    Ok((reports, wall))
}

/// Write the sweep's CSV and SVG where `--csv` and `--svg` say; the paths written.
///
/// # Errors
/// The exit code to return when a file could not be written.
fn write_sweep_files(
    a: &SweepArgs,
    csv: impl FnOnce() -> String,
    svg: impl FnOnce() -> String,
) -> Result<Vec<String>, ExitCode> {
    let write = |path: &Path, contents: String| -> Result<String, ExitCode> {
        std::fs::write(path, contents).map_err(|e| {
            eprintln!("rotorlink: cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        })?;
        Ok(path.display().to_string())
    };
    let mut wrote = Vec::new();
    if let Some(path) = &a.csv {
        wrote.push(write(path, csv())?);
    }
    if let Some(path) = &a.svg {
        wrote.push(write(path, svg())?);
    }
    Ok(wrote)
}

/// Print `all` as pretty JSON on standard output.
///
/// # Errors
/// The exit code to return when it cannot be serialised.
fn print_json(all: Vec<serde_json::Value>) -> Result<(), ExitCode> {
    match serde_json::to_string_pretty(&all) {
        Ok(json) => {
            out(&format!("{json}\n"));
            Ok(())
        }
        Err(e) => {
            eprintln!("rotorlink: cannot write the reports as JSON: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// The last lines of a sweep's text: flights, simulated and wall time, files written.
fn sweep_footer(a: &SweepArgs, flights: usize, wall: Duration, wrote: &[String]) -> String {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(flights);
    let simulated = a.duration.as_secs_f64() * flights as f64;
    let mut text = format!(
        "{flights} flights ({} s simulated) in {:.2} s of wall time on {threads} thread{}\n",
        trim(simulated),
        wall.as_secs_f64(),
        if threads == 1 { "" } else { "s" }
    );
    if !wrote.is_empty() {
        text.push_str(&format!("wrote {}\n", wrote.join(" and ")));
    }
    text
}

/// `rotorlink sweep --fec`: every loss rate flown once per FEC policy; video frames and
/// parity overhead per policy.
fn run_fec_sweep(a: &SweepArgs) -> ExitCode {
    let mut grid = Vec::new();
    for &loss in &a.loss {
        for &policy in &a.fec {
            match args::scenario(Some(loss), a.duration, &a.radio, &a.flight) {
                Ok(mut s) => {
                    policy.apply(&mut s.link);
                    grid.push((loss, policy, s));
                }
                Err(e) => return flag_error(&e),
            }
        }
    }
    let Some((_, _, first)) = grid.first() else {
        eprintln!("error: invalid value for '--loss': no loss rate to fly");
        return ExitCode::from(2);
    };
    let fixed = format!(
        "{} per flight, seed {}, video {}, link MTU {}; radio: {}; policies {}",
        show_duration(a.duration),
        a.flight.seed,
        show_rate(first.aircraft.video_bitrate),
        first.link.mtu,
        args::describe_radio(&first.uplink, &first.downlink, false),
        a.fec
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", "),
    );
    let scenarios: Vec<Scenario> = grid.iter().map(|(_, _, s)| s.clone()).collect();
    let (reports, wall) = match fly_sweep(&scenarios, a.flight.json) {
        Ok(flown) => flown,
        Err(code) => return code,
    };
    let points: Vec<sweep::FecPoint> = grid
        .into_iter()
        .zip(reports)
        .map(|((loss, policy, s), report)| sweep::FecPoint::new(loss, policy, report, &s))
        .collect();
    let wrote = match write_sweep_files(
        a,
        || sweep::fec_csv(&points),
        || sweep::fec_chart(&points, fixed.clone()).render(),
    ) {
        Ok(wrote) => wrote,
        Err(code) => return code,
    };
    let printed = if a.flight.json {
        print_json(
            points
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "loss": p.loss,
                        "policy": p.policy.name(),
                        "complete_percent": p.complete_percent(),
                        "decodable_percent": p.decodable_percent(),
                        "wfb_ng_8_12_complete_percent": p.wfb_ng.map(|w| w.complete_percent),
                        "wfb_ng_8_12_overhead_percent": p.wfb_ng.map(|w| w.overhead_percent),
                        "report": p.report,
                    })
                })
                .collect(),
        )
    } else {
        let mut text = format!(
            "rotorlink sweep: {fixed}\n\n{}\n",
            sweep::fec_table(&points)
        );
        text.push_str(
            "wfb-ng 8/12: independent blocks of 8 data + 4 parity fragments over the flight's mean frame and this radio, computed (not flown)\n",
        );
        text.push_str(&sweep_footer(a, points.len(), wall, &wrote));
        out(&text);
        Ok(())
    };
    if let Err(code) = printed {
        return code;
    }
    status(points.iter().all(|p| p.report.paired))
}
