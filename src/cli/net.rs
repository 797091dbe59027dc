//! `rotorlink aircraft` and `rotorlink remote`: the two ends as processes on real UDP
//! sockets, flying the simulator's applications through the tokio driver
//! ([`rotorlink_sim::flight`]), with an optional pcap of every datagram.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use rand_core::OsRng;
use rotorlink::handshake::{
    AircraftIdentity, BoxedAttemptStore, LinkId, MemoryAttemptStore, RefusalReason, RemoteIdentity,
};
use rotorlink::tokio::{
    Aircraft, Connection, LinkEvent, Options, Received, Transport, UdpTransport,
};
use rotorlink::{Config, Event, Link, Timestamp};
use rotorlink_sim::aircraft::{AircraftApp, AircraftConfig};
use rotorlink_sim::flight::{fly_aircraft, fly_remote, RemoteFlight};
use rotorlink_sim::keylog::KeyLog;
use rotorlink_sim::pcap::{PcapTap, UDP_PORT};
use rotorlink_sim::remote::RemoteApp;
use rotorlink_sim::report::Report;
use rotorlink_sim::storage::FLIGHT_LOG;
use zeroize::Zeroizing;

use super::args::StorageArgs;
use super::state::{self, StateError};
use super::units;

/// The link id both ends use unless told otherwise.
const DEFAULT_LINK_ID: &str = "rotorlink-cli-01";

/// `rotorlink aircraft`: run it (the flags below), or manage its state (the subcommands).
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct AircraftArgs {
    /// Set up or change the aircraft's persistent state instead of running it.
    #[command(subcommand)]
    pub(crate) command: Option<AircraftCommand>,
    /// UDP address to listen on; port 0 picks a free one (the address is printed).
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, UDP_PORT)))]
    pub(crate) listen: SocketAddr,
    /// Run from the state `rotorlink aircraft activate` wrote in DIR: its identity and bonds
    /// (saved again at each new bond) and its count of failed attempts at the code, which
    /// survive a restart. Refuses to start if the state is missing or damaged. Remotes pair
    /// only while --pairing-window is open; bonded remotes connect at any time.
    #[arg(long, value_name = "DIR")]
    pub(crate) state: Option<PathBuf>,
    /// Without --state: file whose first line is the security code; the aircraft is
    /// provisioned with it at start and forgets everything (bonds, failed attempts) when
    /// it exits.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "state",
        conflicts_with = "state"
    )]
    pub(crate) code_file: Option<PathBuf>,
    /// Without --state: the aircraft's public link id, up to 16 bytes (the remote needs
    /// the same) [default: rotorlink-cli-01]. With --state it is the activated one.
    #[arg(long, value_name = "ID", value_parser = link_id, conflicts_with = "state")]
    pub(crate) link_id: Option<LinkId>,
    /// Accept pairings with the code for this long after the start, e.g. 60s, 2min; the
    /// first successful pairing closes the window. With --state the window is closed
    /// unless this is given; without --state it is open for the whole run.
    #[arg(long, value_name = "DURATION", value_parser = units::flight_duration)]
    pub(crate) pairing_window: Option<Duration>,
    /// Video bitrate, e.g. 20mbit, 2mbit; 0 for no video [default: 20mbit].
    #[arg(long, value_name = "RATE", value_parser = units::video_rate)]
    pub(crate) video: Option<u64>,
    #[command(flatten)]
    pub(crate) storage: StorageArgs,
    /// Give up after this long [default: run until the remote closes the link or Ctrl-C].
    #[arg(long, value_name = "DURATION", value_parser = units::duration)]
    pub(crate) duration: Option<Duration>,
    /// Seed of the flight log's first bytes.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Write every datagram sent and received to FILE as a pcap (open it in Wireshark
    /// with tools/wireshark/rotorlink.lua).
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: Option<PathBuf>,
    /// Write the traffic secrets this end sends under to FILE, so that `rotorlink decrypt`
    /// can decrypt the --pcap capture (with the other end's key log too). Whoever reads FILE
    /// reads the traffic: test benches only.
    #[arg(long, value_name = "FILE")]
    pub(crate) keylog: Option<PathBuf>,
    /// Print the report as JSON and nothing else on standard output.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The subcommands of `rotorlink aircraft` that manage its state directory.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum AircraftCommand {
    /// Activate the aircraft once, over a channel the owner trusts: provision it with the
    /// code in --code-file and write its identity (DIR/identity, holding OPAQUE's password
    /// file, never the code) and a fresh count of failed attempts (DIR/attempts) to
    /// --state DIR. Then run it with `rotorlink aircraft --state DIR`.
    Activate(ActivateArgs),
    /// Replace the code of the aircraft in --state DIR with the one in --code-file (while
    /// it is not running): every bond is revoked (each remote must pair again) and the
    /// count of failed attempts starts afresh.
    ChangeCode(ChangeCodeArgs),
}

/// `rotorlink aircraft activate`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ActivateArgs {
    /// The state directory to write (made if needed, mode 0700 on Unix).
    #[arg(long, value_name = "DIR")]
    pub(crate) state: PathBuf,
    /// File whose first line is the security code.
    #[arg(long, value_name = "FILE")]
    pub(crate) code_file: PathBuf,
    /// The aircraft's public link id, up to 16 bytes (the remote needs the same).
    #[arg(long, value_name = "ID", default_value = DEFAULT_LINK_ID, value_parser = link_id)]
    pub(crate) link_id: LinkId,
    /// Activate even if DIR already holds an aircraft: a new identity replaces it, every
    /// bond is lost and the count of failed attempts starts afresh.
    #[arg(long)]
    pub(crate) force: bool,
}

/// `rotorlink aircraft change-code`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ChangeCodeArgs {
    /// The state directory of an activated aircraft.
    #[arg(long, value_name = "DIR")]
    pub(crate) state: PathBuf,
    /// File whose first line is the new security code.
    #[arg(long, value_name = "FILE")]
    pub(crate) code_file: PathBuf,
}

/// `rotorlink remote`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RemoteArgs {
    /// UDP address of the aircraft (or of a `rotorlink proxy` in front of it).
    #[arg(long, value_name = "ADDR")]
    pub(crate) connect: SocketAddr,
    /// File whose first line is the security code the pilot types: needed to pair, and to
    /// open the onboard storage (the download and the report travel over it). A remote
    /// bonded in --state connects without it, and then flies with the storage locked.
    #[arg(long, value_name = "FILE")]
    pub(crate) code_file: Option<PathBuf>,
    /// Keep the remote's identity and its bond in DIR/identity (saved when it pairs): once
    /// bonded, later runs connect with the bond, without the code.
    #[arg(long, value_name = "DIR")]
    pub(crate) state: Option<PathBuf>,
    /// Pair with the code even if --state holds a bond (after the aircraft's code changed
    /// or it was activated again); the new bond replaces the old one.
    #[arg(long, requires = "code_file")]
    pub(crate) pair: bool,
    /// The aircraft's public link id, up to 16 bytes [default: the bond's, or
    /// rotorlink-cli-01].
    #[arg(long, value_name = "ID", value_parser = link_id)]
    pub(crate) link_id: Option<LinkId>,
    /// Local UDP address [default: port 0 on the loopback or unspecified address of
    /// --connect's family].
    #[arg(long, value_name = "ADDR")]
    pub(crate) bind: Option<SocketAddr>,
    /// Flight time once paired, e.g. 10s, 2min.
    #[arg(long, value_name = "DURATION", value_parser = units::flight_duration, default_value = "10s")]
    pub(crate) duration: Duration,
    /// The file to download from onboard storage: flightlog, clip, photo-N, or a full name
    /// from the aircraft's list (clip.mp4).
    #[arg(long, value_name = "FILE", default_value = FLIGHT_LOG)]
    pub(crate) download: String,
    /// End the flight as soon as the file has arrived whole (and its SHA-256 was checked).
    #[arg(long, requires = "code_file")]
    pub(crate) until_downloaded: bool,
    /// Seed, for the report.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Write every datagram sent and received to FILE as a pcap (open it in Wireshark
    /// with tools/wireshark/rotorlink.lua).
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: Option<PathBuf>,
    /// Write the traffic secrets this end sends under to FILE, so that `rotorlink decrypt`
    /// can decrypt the --pcap capture (with the other end's key log too). Whoever reads FILE
    /// reads the traffic: test benches only.
    #[arg(long, value_name = "FILE")]
    pub(crate) keylog: Option<PathBuf>,
    /// Print the report as JSON and nothing else on standard output.
    #[arg(long)]
    pub(crate) json: bool,
    /// How long a handshake may take before it is given up [default: 10s]. A wrong code
    /// is reported only then. For tests.
    #[arg(long, value_name = "DURATION", value_parser = units::flight_duration, hide = true)]
    pub(crate) handshake_timeout: Option<Duration>,
}

fn link_id(s: &str) -> Result<LinkId, String> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(format!("a link id is 1 to 16 bytes, not {}", bytes.len()));
    }
    let mut id = [0u8; 16];
    id[..bytes.len()].copy_from_slice(bytes);
    Ok(id)
}

/// A link id as typed: its bytes up to the zero padding.
fn show_link_id(id: &LinkId) -> String {
    let len = id.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&id[..len]).into_owned()
}

/// The code: the first line of the file, without surrounding white space. The file's text
/// and the code are wiped from memory when dropped.
fn read_code(path: &Path) -> Result<Zeroizing<Vec<u8>>, ExitCode> {
    let text = std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| {
            eprintln!("error: --code-file {}: {e}", path.display());
            ExitCode::from(2)
        })?;
    let code = text.lines().next().unwrap_or("").trim();
    if code.is_empty() {
        eprintln!("error: --code-file {}: the file is empty", path.display());
        return Err(ExitCode::from(2));
    }
    Ok(Zeroizing::new(code.as_bytes().to_vec()))
}

fn runtime() -> tokio::runtime::Runtime {
    // Two workers: the driver's crypto and the application's loop side by side.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime starts on any supported platform")
}

/// Wall-clock time now, since the UNIX epoch.
fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Seconds since the aircraft or remote started, for the time an event line ends with: the
/// order of a link's events says little of a rate estimate without their times.
fn event_time() -> f64 {
    static FIRST: OnceLock<Instant> = OnceLock::new();
    FIRST.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Print an event (not messages), or keep a traffic secret in the key log (never printed).
fn print_event(who: &str, event: &LinkEvent, capture: &Captured) {
    match event {
        LinkEvent::Message { .. } => {}
        LinkEvent::Link(e) if capture.log_key(e) => {}
        _ => eprintln!("{who}: {event} (at {:.3} s)", event_time()),
    }
}

fn print_report(report: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("a report serialises")
        );
    } else {
        print!("{report}");
    }
}

async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A state error: one line, status 2 (the state is missing, damaged or unreadable), or 1
/// for a file or directory that could not be written.
fn state_error(flag: &str, e: &StateError) -> ExitCode {
    eprintln!("error: {flag}: {e}");
    match e {
        StateError::Io { what, .. } if *what != "reading" => ExitCode::FAILURE,
        _ => ExitCode::from(2),
    }
}

/// `rotorlink aircraft activate`.
fn activate(a: &ActivateArgs) -> ExitCode {
    let code = match read_code(&a.code_file) {
        Ok(code) => code,
        Err(status) => return status,
    };
    match state::activate(&a.state, &code, a.link_id, a.force) {
        Ok(identity) => {
            let dir = a.state.display();
            println!(
                "aircraft activated: link id {}, state in {dir} (run it with \
                 `rotorlink aircraft --state {dir} --pairing-window 2min` to pair a remote)",
                show_link_id(&identity.link_id()),
            );
            ExitCode::SUCCESS
        }
        Err(e) => state_error("--state", &e),
    }
}

/// `rotorlink aircraft change-code`.
fn change_code(a: &ChangeCodeArgs) -> ExitCode {
    let code = match read_code(&a.code_file) {
        Ok(code) => code,
        Err(status) => return status,
    };
    match state::change_code(&a.state, &code) {
        Ok(identity) => {
            println!(
                "aircraft code changed (code epoch {}): every bond is revoked, remotes pair \
                 again with the new code",
                identity.code_epoch()
            );
            ExitCode::SUCCESS
        }
        Err(e) => state_error("--state", &e),
    }
}

/// What an aircraft starts from.
struct AircraftStart {
    identity: AircraftIdentity,
    attempts: BoxedAttemptStore,
    /// Where to save the identity at each new bond (`--state`), if anywhere.
    state: Option<PathBuf>,
    /// How long the pairing window stays open from the start (`None`: closed).
    window: Option<Duration>,
}

/// Run the aircraft, or one of its state subcommands.
pub(crate) fn aircraft(a: &AircraftArgs) -> ExitCode {
    match &a.command {
        Some(AircraftCommand::Activate(args)) => return activate(args),
        Some(AircraftCommand::ChangeCode(args)) => return change_code(args),
        None => {}
    }
    let start = match (&a.state, &a.code_file) {
        (Some(dir), _) => match state::load_aircraft(dir) {
            Ok(s) => AircraftStart {
                identity: s.identity,
                attempts: Box::new(s.attempts),
                state: Some(dir.clone()),
                window: a.pairing_window,
            },
            Err(e) => return state_error("--state", &e),
        },
        (None, Some(code_file)) => {
            let code = match read_code(code_file) {
                Ok(code) => code,
                Err(status) => return status,
            };
            let link_id = match a.link_id {
                Some(id) => id,
                None => match link_id(DEFAULT_LINK_ID) {
                    Ok(id) => id,
                    Err(e) => {
                        eprintln!("error: --link-id: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            let ksf = Config::default().ksf;
            match AircraftIdentity::provision(link_id, &code, ksf, &mut OsRng) {
                // A throwaway aircraft: it forgets its attempts and bonds when it exits, and
                // pairs for the whole run unless told otherwise.
                Ok(identity) => AircraftStart {
                    identity,
                    attempts: Box::new(MemoryAttemptStore::new()),
                    state: None,
                    window: Some(a.pairing_window.unwrap_or(Duration::MAX)),
                },
                Err(e) => {
                    eprintln!("error: cannot provision the aircraft: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        (None, None) => {
            eprintln!("error: --code-file or --state is needed");
            return ExitCode::from(2);
        }
    };
    runtime().block_on(run_aircraft(a, start))
}

/// Save the aircraft's identity as the link holds it now (serialised under the link's
/// lock, written outside it).
/// A copy of the aircraft's identity, to save.
type IdentityCopy = Zeroizing<Vec<u8>>;

/// Write the copies of the aircraft's identity sent on `copies` (a new bond: `true`) to
/// `dir`, the newest first: a copy superseded before it was written is never written. Runs
/// beside the flight, each write on a blocking thread, so that the file system's sync does
/// not hold the pilot's telemetry and video. Ends when the sender is dropped, every copy
/// written; returns whether a write failed.
async fn save_identities(
    dir: PathBuf,
    mut copies: tokio::sync::mpsc::UnboundedReceiver<(IdentityCopy, bool)>,
) -> bool {
    let mut failed = false;
    while let Some((mut bytes, mut new_bond)) = copies.recv().await {
        while let Ok((newer, bond)) = copies.try_recv() {
            bytes = newer;
            new_bond |= bond;
        }
        let path = dir.join(state::IDENTITY);
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || state::write_atomic(&target, &bytes))
            .await
            .unwrap_or_else(|panicked| {
                Err(StateError::Io {
                    what: "writing",
                    path,
                    source: io::Error::other(panicked),
                })
            });
        match written {
            Ok(()) if new_bond => eprintln!("aircraft: new bond saved to {}", dir.display()),
            Ok(()) => eprintln!("aircraft: handshake timestamp saved to {}", dir.display()),
            Err(e) if new_bond => {
                failed = true;
                eprintln!(
                    "error: cannot save the new bond: {e} (the remote must pair again after a \
                     restart)"
                );
            }
            Err(e) => {
                failed = true;
                eprintln!(
                    "error: cannot save the handshake timestamp: {e} (after a restart the \
                     aircraft would answer a recording of this Init once)"
                );
            }
        }
    }
    failed
}

async fn run_aircraft(a: &AircraftArgs, start: AircraftStart) -> ExitCode {
    event_time(); // events are timed from here
    let mut config = Config::default();
    let transport = match UdpTransport::listen(a.listen).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: --listen {}: {e}", a.listen);
            return ExitCode::FAILURE;
        }
    };
    let local = transport.local_addr().unwrap_or(a.listen);
    let transport = match Captured::new(transport, a.pcap.as_deref(), a.keylog.as_deref()) {
        Ok(t) => t,
        Err(status) => return status,
    };
    config.log_traffic_secrets = transport.logs_keys();
    let mut conn = match Aircraft::listen(transport.clone(), start.identity, start.attempts, config)
    {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(window) = start.window {
        if let Err(e) = conn.open_pairing_window(window) {
            eprintln!("error: cannot open the pairing window: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("aircraft: listening on {local}");
    match start.window {
        Some(window) if window < Duration::MAX => eprintln!(
            "aircraft: pairing window open for {}",
            units::show_duration(window)
        ),
        Some(_) => {}
        None => eprintln!(
            "aircraft: pairing window closed: bonded remotes only (--pairing-window opens it)"
        ),
    }
    let app_config = a.storage.apply(&AircraftConfig {
        video_bitrate: a.video.unwrap_or(AircraftConfig::default().video_bitrate),
        ..AircraftConfig::default()
    });
    let mut app = AircraftApp::new(app_config, a.seed).with_clock_offset(wall_clock());
    let deadline = a.duration.map(|d| tokio::time::Instant::now() + d);
    let interrupted = ctrl_c();
    tokio::pin!(interrupted);
    // A new bond, or a bonded remote's newer handshake timestamp (PROTOCOL.md 20.1), is saved
    // at once: the identity is copied under the link's lock and written beside the flight
    // (`save_identities`). An unsaved timestamp would let a restart accept its `Init` again.
    let (copies, saved) = tokio::sync::mpsc::unbounded_channel();
    let saver = start
        .state
        .clone()
        .map(|dir| tokio::spawn(save_identities(dir, saved)));
    let mut on_event = |e: &LinkEvent, conn: &Connection| {
        print_event("aircraft", e, &transport);
        let new_bond = match e {
            LinkEvent::Link(Event::Bonded) => true,
            LinkEvent::Link(Event::IdentityChanged) => false,
            _ => return,
        };
        let copy = conn.with_link(|link| link.aircraft_identity().map(AircraftIdentity::to_bytes));
        if let Some(bytes) = copy {
            // Without a state directory nobody receives: nothing to save.
            let _ = copies.send((bytes, new_bond));
        }
    };
    let stop = async {
        tokio::select! {
            () = sleep_until(deadline) => {}
            () = &mut interrupted => {}
        }
    };
    let flight = fly_aircraft(&mut conn, &mut app, stop, &mut on_event).await;
    drop(copies);
    let save_failed = match saver {
        Some(saver) => saver.await.unwrap_or(true),
        None => false,
    };
    if let Some(e) = &flight.summary_refused {
        eprintln!("aircraft: could not send the remote its summary: {e}");
    }
    conn.close().await;
    if let Err(status) = transport.finish() {
        return status;
    }
    match &flight.report {
        Some(report) => print_report(report, a.json),
        None if a.json => println!(
            "{}",
            serde_json::to_string_pretty(&flight.summary).expect("a summary serialises")
        ),
        None => eprintln!("aircraft: the remote sent no report"),
    }
    if save_failed {
        ExitCode::FAILURE
    } else if flight.connected {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

/// Sleep until `deadline`, or for ever.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What a remote starts from.
struct RemoteStart {
    identity: RemoteIdentity,
    link_id: LinkId,
    code: Option<Zeroizing<Vec<u8>>>,
    /// Connect with the identity's bond instead of pairing.
    use_bond: bool,
}

/// Run the remote.
pub(crate) fn remote(a: &RemoteArgs) -> ExitCode {
    let code = match &a.code_file {
        Some(path) => match read_code(path) {
            Ok(code) => Some(code),
            Err(status) => return status,
        },
        None => None,
    };
    let stored = match &a.state {
        Some(dir) => match state::load_remote(dir) {
            Ok(identity) => identity,
            Err(e) => return state_error("--state", &e),
        },
        None => None,
    };
    let bond = stored.as_ref().and_then(|i| i.bond().copied());
    let link_id = match (bond, a.link_id) {
        (Some(bond), Some(id)) if bond.link_id != id && !a.pair => {
            eprintln!(
                "error: --link-id: the remote in --state is bonded to the aircraft {}, not {}",
                show_link_id(&bond.link_id),
                show_link_id(&id)
            );
            return ExitCode::from(2);
        }
        (_, Some(id)) => id,
        (Some(bond), None) => bond.link_id,
        (None, None) => match link_id(DEFAULT_LINK_ID) {
            Ok(id) => id,
            Err(e) => {
                eprintln!("error: --link-id: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let use_bond = bond.is_some() && !a.pair;
    if !use_bond && code.is_none() {
        eprintln!(
            "error: --code-file is needed to pair (the remote has no bond{})",
            if a.state.is_some() {
                " in --state"
            } else {
                "; --state keeps one"
            }
        );
        return ExitCode::from(2);
    }
    let start = RemoteStart {
        identity: stored.unwrap_or_else(|| RemoteIdentity::generate(&mut OsRng)),
        link_id,
        code,
        use_bond,
    };
    runtime().block_on(run_remote(a, start))
}

/// Save the remote's identity (with its new bond) as the link holds it now.
fn save_remote_identity(conn: &Connection, dir: &Path) -> Result<(), StateError> {
    match conn.with_link(|link| link.remote_identity().cloned()) {
        Some(identity) => state::save_remote(dir, &identity),
        None => Ok(()),
    }
}

/// Why the remote got no session, in a sentence; with the aircraft's attempts left when it
/// said them.
fn refusal_text(reason: RefusalReason, remaining_attempts: u32, retry_after: Duration) -> String {
    let left = format!("{remaining_attempts} attempts left before lockout");
    let retry = retry_after.as_secs_f64();
    match reason {
        RefusalReason::PairingClosed => format!(
            "the aircraft's pairing window is closed: open it on the aircraft (rotorlink \
             aircraft --state DIR --pairing-window 2min) and pair again ({left})"
        ),
        RefusalReason::BackOff => format!(
            "the aircraft refused: too soon after a wrong code, retry in {retry:.1} s ({left})"
        ),
        RefusalReason::LockedOut => format!(
            "the aircraft is locked out after too many wrong codes, retry in {retry:.0} s \
             ({left})"
        ),
        RefusalReason::UnknownBond => format!(
            "the aircraft does not know this remote's bond (its code was changed or it was \
             activated again): pair again with --pair and the code ({left})"
        ),
        other => format!(
            "the aircraft refused the handshake ({other:?}), retry in {retry:.1} s ({left})"
        ),
    }
}

/// Wait for the session: the events on the way go to the application (if any) and are
/// printed, a new bond is saved to `state`. `Err` says why there is no session.
async fn wait_connected(
    conn: &mut Connection,
    capture: &Captured,
    mut app: Option<&mut RemoteApp>,
    state: Option<&Path>,
    saved: &mut bool,
) -> Result<(), String> {
    let interrupted = ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let event = tokio::select! {
            event = conn.recv() => event,
            () = &mut interrupted => return Err("interrupted".to_string()),
        };
        let event = match event {
            None => return Err("the link closed before the session was up".to_string()),
            Some(LinkEvent::Message { channel, data }) => {
                if let Some(app) = app.as_deref_mut() {
                    app.on_message(conn.now(), channel, &data);
                }
                continue;
            }
            Some(LinkEvent::Link(event)) => event,
            Some(other) => {
                print_event("remote", &other, capture);
                continue;
            }
        };
        if capture.log_key(&event) {
            continue;
        }
        eprintln!("remote: {event:?} (at {:.3} s)", event_time());
        if let Some(app) = app.as_deref_mut() {
            app.on_event(&event);
        }
        let now = conn.now();
        match event {
            Event::Connected { .. } => return Ok(()),
            Event::Bonded => {
                if let Some(dir) = state {
                    save_remote_bond(conn, dir, saved);
                }
            }
            Event::PairingRejected { remaining_attempts } => {
                // The remote cannot tell a wrong code from a forged answer.
                return Err(format!(
                    "the aircraft rejected the code, or someone interfered \
                     ({remaining_attempts} attempts left before lockout)"
                ));
            }
            Event::LockedOut { until } => {
                return Err(refusal_text(
                    RefusalReason::LockedOut,
                    0,
                    until.saturating_since(now),
                ))
            }
            Event::HandshakeRefused {
                reason,
                remaining_attempts,
                retry_at,
            } => {
                return Err(refusal_text(
                    reason,
                    remaining_attempts,
                    retry_at.saturating_since(now),
                ))
            }
            Event::HandshakeFailed { error } => {
                return Err(format!("the handshake failed: {error}"))
            }
            Event::Closed { .. } => {
                return Err("the link closed before the session was up".to_string())
            }
            _ => {}
        }
    }
}

/// Save the remote's new bond once; a failure is reported, and the flight goes on.
fn save_remote_bond(conn: &Connection, dir: &Path, saved: &mut bool) {
    if *saved {
        return;
    }
    match save_remote_identity(conn, dir) {
        Ok(()) => {
            *saved = true;
            eprintln!("remote: bond saved to {}", dir.display());
        }
        Err(e) => {
            eprintln!("error: cannot save the bond: {e} (the remote must pair again next time)")
        }
    }
}

async fn run_remote(a: &RemoteArgs, start: RemoteStart) -> ExitCode {
    event_time(); // events are timed from here
    let bind = a.bind.unwrap_or_else(|| match a.connect {
        SocketAddr::V4(v4) if v4.ip().is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    });
    let transport = match UdpTransport::connect(bind, a.connect).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: --connect {}: {e}", a.connect);
            return ExitCode::FAILURE;
        }
    };
    let transport = match Captured::new(transport, a.pcap.as_deref(), a.keylog.as_deref()) {
        Ok(t) => t,
        Err(status) => return status,
    };
    let aircraft = transport.udp.peer_addr().unwrap_or(a.connect);
    let mut config = Config::default();
    if let Some(timeout) = a.handshake_timeout {
        config.handshake.timeout = timeout;
    }
    config.log_traffic_secrets = transport.logs_keys();
    let epoch = wall_clock();
    let mut link = match Link::remote(
        config,
        start.identity,
        start.link_id,
        &mut OsRng,
        Timestamp::ZERO,
    ) {
        Ok(link) => link,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let begun = match (&start.code, start.use_bond) {
        (Some(code), false) => link.pair(code, aircraft, Timestamp::ZERO),
        _ => link.connect(aircraft, Timestamp::ZERO),
    };
    if let Err(e) = begun {
        let _ = transport.finish();
        eprintln!("remote: not paired: {e}");
        return ExitCode::from(3);
    }
    let mut conn = Connection::spawn(link, transport.clone(), Options::default());
    let mut app = start.code.as_ref().map(|code| {
        RemoteApp::new(code)
            .downloading(&a.download)
            .with_clock_offset(epoch)
    });
    let mut saved = false;
    let state = a.state.as_deref();
    if let Err(why) = wait_connected(&mut conn, &transport, app.as_mut(), state, &mut saved).await {
        conn.close().await;
        let _ = transport.finish();
        let what = if start.use_bond {
            "not connected"
        } else {
            "not paired"
        };
        eprintln!("remote: {what}: {why}");
        return ExitCode::from(3);
    }
    if start.use_bond {
        eprintln!(
            "remote: connected to the aircraft at {} with its bond (no pairing)",
            a.connect
        );
    } else {
        eprintln!("remote: paired with the aircraft at {}", a.connect);
        // The bond may be reported with the session or just before it.
        if let Some(dir) = state {
            let bonded = conn.with_link(|link| {
                link.remote_identity()
                    .is_some_and(|identity| identity.bond().is_some())
            });
            if bonded {
                save_remote_bond(&conn, dir, &mut saved);
            }
        }
    }
    let Some(mut app) = app else {
        return fly_without_code(a, conn, &transport).await;
    };
    let flight = RemoteFlight {
        seed: a.seed,
        duration: a.duration,
        until_downloaded: a.until_downloaded,
    };
    let outcome = fly_remote(&mut conn, &mut app, &flight, ctrl_c(), &mut |e| {
        print_event("remote", e, &transport);
    })
    .await;
    let report = outcome.report;
    if !outcome.report_delivered {
        eprintln!("remote: the aircraft did not acknowledge the report");
    }
    conn.close().await;
    if let Err(status) = transport.finish() {
        return status;
    }
    if let Some(why) = &report.missing_summary {
        eprintln!("remote: the aircraft's summary is missing ({why}): its counters are unknown");
    }
    if let Some(e) = &report.download.error {
        eprintln!("remote: {e}");
    }
    print_report(&report, a.json);
    ExitCode::SUCCESS
}

/// A bonded remote without the code: the onboard storage, which carries the download and
/// the report, stays locked, so hold the session for --duration (printing its events) and
/// close it; with --json, a small JSON object says so on standard output.
async fn fly_without_code(a: &RemoteArgs, mut conn: Connection, transport: &Captured) -> ExitCode {
    eprintln!("remote: no --code-file: the onboard storage stays locked (no download, no report)");
    let end = tokio::time::Instant::now() + a.duration;
    let interrupted = ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            event = conn.recv() => match event {
                None | Some(LinkEvent::Link(Event::Closed { .. })) => break,
                Some(event) => print_event("remote", &event, transport),
            },
            () = tokio::time::sleep_until(end) => break,
            () = &mut interrupted => break,
        }
    }
    let stats = conn.close().await;
    if let Err(status) = transport.finish() {
        return status;
    }
    eprintln!(
        "remote: flew {} with the bond: {} datagrams sent, {} received",
        units::show_duration(a.duration),
        stats.datagrams_sent,
        stats.datagrams_received
    );
    if a.json {
        let summary = serde_json::json!({
            "connected": true,
            "storage_unlocked": false,
            "duration_s": a.duration.as_secs_f64(),
            "datagrams_sent": stats.datagrams_sent,
            "datagrams_received": stats.datagrams_received,
        });
        println!("{summary:#}");
    }
    ExitCode::SUCCESS
}

/// A UDP transport that also writes every datagram to a pcap, with wall-clock timestamps
/// and the sockets' real addresses, and this end's traffic secrets to a key log.
#[derive(Clone)]
struct Captured {
    udp: Arc<UdpTransport>,
    pcap: Option<PcapTap>,
    keylog: Option<(PathBuf, Arc<Mutex<KeyLog>>)>,
}

/// An address as IPv4 for the capture (IPv6 peers are recorded as 0.0.0.0).
fn v4(addr: Option<SocketAddr>) -> SocketAddrV4 {
    match addr {
        Some(SocketAddr::V4(a)) => a,
        _ => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    }
}

impl Captured {
    fn new(
        udp: UdpTransport,
        pcap: Option<&Path>,
        keylog: Option<&Path>,
    ) -> Result<Self, ExitCode> {
        let pcap = pcap
            .map(|path| {
                PcapTap::create(path).map_err(|e| {
                    eprintln!("error: --pcap {}: {e}", path.display());
                    ExitCode::FAILURE
                })
            })
            .transpose()?;
        if let Some(path) = keylog {
            // Fail before the link starts, not at the end.
            if let Err(e) = std::fs::write(path, "") {
                eprintln!("error: --keylog {}: {e}", path.display());
                return Err(ExitCode::FAILURE);
            }
        }
        Ok(Captured {
            udp: Arc::new(udp),
            pcap,
            keylog: keylog.map(|path| (path.to_path_buf(), Arc::new(Mutex::new(KeyLog::new())))),
        })
    }

    /// Whether the link should report its traffic secrets.
    fn logs_keys(&self) -> bool {
        self.keylog.is_some()
    }

    /// Keep `event` if it is a traffic secret, and write the key log out at once (a crash
    /// later still leaves the capture decryptable). Returns whether it was one.
    fn log_key(&self, event: &Event) -> bool {
        let Some((path, log)) = &self.keylog else {
            return matches!(event, Event::TrafficSecret { .. });
        };
        let mut log = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !log.record(event) {
            return false;
        }
        if let Err(e) = std::fs::write(path, log.to_text()) {
            eprintln!("error: --keylog {}: {e}", path.display());
        }
        true
    }

    fn record(&self, from: Option<SocketAddr>, to: Option<SocketAddr>, datagram: &[u8]) {
        if let Some(pcap) = &self.pcap {
            pcap.record(wall_clock(), v4(from), v4(to), datagram);
        }
    }

    /// Flush the capture; a write error is reported here, with exit status 1.
    fn finish(&self) -> Result<(), ExitCode> {
        match self.pcap.as_ref().map(PcapTap::finish) {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => {
                eprintln!("error: --pcap: {e}");
                Err(ExitCode::FAILURE)
            }
        }
    }
}

impl Transport for Captured {
    async fn send(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        // A connected socket sends to its one peer whatever `to` says.
        let to = self.udp.peer_addr().unwrap_or(to);
        self.record(self.udp.local_addr().ok(), Some(to), datagram);
        self.udp.send(datagram, to).await
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, from) = self.udp.recv(buf).await?;
        self.record(Some(from), self.udp.local_addr().ok(), &buf[..n]);
        Ok((n, from))
    }

    // The UDP transport's batches (recvmmsg, GRO, GSO), each datagram recorded.
    fn recv_batch_size(&self) -> (usize, usize) {
        self.udp.recv_batch_size()
    }

    async fn recv_batch(
        &self,
        bufs: &mut [std::io::IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> io::Result<usize> {
        let n = self.udp.recv_batch(bufs, meta).await?;
        self.record_received(bufs, &meta[..n]);
        Ok(n)
    }

    fn try_recv_batch(
        &self,
        bufs: &mut [std::io::IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> io::Result<usize> {
        let n = self.udp.try_recv_batch(bufs, meta)?;
        self.record_received(bufs, &meta[..n]);
        Ok(n)
    }

    async fn send_batch(&self, datagrams: &[u8], segment: usize, to: SocketAddr) -> io::Result<()> {
        let to = self.udp.peer_addr().unwrap_or(to);
        if self.pcap.is_some() {
            for datagram in datagrams.chunks(segment.max(1)) {
                self.record(self.udp.local_addr().ok(), Some(to), datagram);
            }
        }
        self.udp.send_batch(datagrams, segment, to).await
    }
}

impl Captured {
    fn record_received(&self, bufs: &[std::io::IoSliceMut<'_>], meta: &[Received]) {
        if self.pcap.is_none() {
            return;
        }
        for (buf, m) in bufs.iter().zip(meta) {
            for datagram in m.datagrams(buf) {
                self.record(Some(m.source), self.udp.local_addr().ok(), datagram);
            }
        }
    }
}
