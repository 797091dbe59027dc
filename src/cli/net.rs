//! `rotorlink aircraft` and `rotorlink remote`: the two ends as processes on real UDP
//! sockets, flying the simulator's applications through the tokio driver
//! ([`rotorlink_sim::flight`]), with an optional pcap of every datagram.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use rotorlink::handshake::{AircraftIdentity, LinkId, MemoryAttemptStore};
use rotorlink::tokio::{Aircraft, LinkEvent, Remote, Transport, UdpTransport};
use rotorlink::Config;
use rotorlink_sim::aircraft::{AircraftApp, AircraftConfig};
use rotorlink_sim::flight::{fly_aircraft, fly_remote, RemoteFlight};
use rotorlink_sim::pcap::{PcapTap, UDP_PORT};
use rotorlink_sim::remote::RemoteApp;
use rotorlink_sim::report::Report;
use rotorlink_sim::storage::FLIGHT_LOG;

use super::args::StorageArgs;
use super::units;

/// The link id both ends use unless told otherwise.
const DEFAULT_LINK_ID: &str = "rotorlink-cli-01";

/// `rotorlink aircraft`.
#[derive(Debug, Clone, Args)]
pub(crate) struct AircraftArgs {
    /// UDP address to listen on; port 0 picks a free one (the address is printed).
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, UDP_PORT)))]
    pub(crate) listen: SocketAddr,
    /// File whose first line is the security code the aircraft is provisioned with.
    #[arg(long, value_name = "FILE")]
    pub(crate) code_file: PathBuf,
    /// The aircraft's public link id, up to 16 bytes (the remote needs the same).
    #[arg(long, value_name = "ID", default_value = DEFAULT_LINK_ID, value_parser = link_id)]
    pub(crate) link_id: LinkId,
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
    /// Print the report as JSON and nothing else on standard output.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `rotorlink remote`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RemoteArgs {
    /// UDP address of the aircraft (or of a `rotorlink proxy` in front of it).
    #[arg(long, value_name = "ADDR")]
    pub(crate) connect: SocketAddr,
    /// File whose first line is the security code the pilot types.
    #[arg(long, value_name = "FILE")]
    pub(crate) code_file: PathBuf,
    /// The aircraft's public link id, up to 16 bytes.
    #[arg(long, value_name = "ID", default_value = DEFAULT_LINK_ID, value_parser = link_id)]
    pub(crate) link_id: LinkId,
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
    #[arg(long)]
    pub(crate) until_downloaded: bool,
    /// Seed, for the report.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Write every datagram sent and received to FILE as a pcap (open it in Wireshark
    /// with tools/wireshark/rotorlink.lua).
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: Option<PathBuf>,
    /// Print the report as JSON and nothing else on standard output.
    #[arg(long)]
    pub(crate) json: bool,
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

/// The code: the first line of the file, without surrounding white space.
fn read_code(path: &Path) -> Result<Vec<u8>, ExitCode> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("error: --code-file {}: {e}", path.display());
        ExitCode::from(2)
    })?;
    let code = text.lines().next().unwrap_or("").trim();
    if code.is_empty() {
        eprintln!("error: --code-file {}: the file is empty", path.display());
        return Err(ExitCode::from(2));
    }
    Ok(code.as_bytes().to_vec())
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

fn print_event(who: &str, event: &LinkEvent) {
    if !matches!(event, LinkEvent::Message { .. }) {
        eprintln!("{who}: {event}");
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

/// Run the aircraft.
pub(crate) fn aircraft(a: &AircraftArgs) -> ExitCode {
    let code = match read_code(&a.code_file) {
        Ok(code) => code,
        Err(status) => return status,
    };
    runtime().block_on(run_aircraft(a, &code))
}

async fn run_aircraft(a: &AircraftArgs, code: &[u8]) -> ExitCode {
    let config = Config::default();
    let identity =
        match AircraftIdentity::provision(a.link_id, code, config.ksf, &mut rand_core::OsRng) {
            Ok(identity) => identity,
            Err(e) => {
                eprintln!("error: cannot provision the aircraft: {e}");
                return ExitCode::FAILURE;
            }
        };
    let transport = match UdpTransport::listen(a.listen).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: --listen {}: {e}", a.listen);
            return ExitCode::FAILURE;
        }
    };
    let local = transport.local_addr().unwrap_or(a.listen);
    let transport = match Captured::new(transport, a.pcap.as_deref()) {
        Ok(t) => t,
        Err(status) => return status,
    };
    // The aircraft forgets its attempts when it exits; a real one persists them
    // (`handshake::limits::FileAttemptStore`).
    let attempts = Box::new(MemoryAttemptStore::new());
    let mut conn = match Aircraft::listen(transport.clone(), identity, attempts, config) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("aircraft: listening on {local}");
    let app_config = a.storage.apply(&AircraftConfig {
        video_bitrate: a.video.unwrap_or(AircraftConfig::default().video_bitrate),
        ..AircraftConfig::default()
    });
    let mut app = AircraftApp::new(app_config, a.seed).with_clock_offset(wall_clock());
    let stop = async {
        match a.duration {
            Some(d) => tokio::select! {
                () = tokio::time::sleep(d) => {}
                () = ctrl_c() => {}
            },
            None => ctrl_c().await,
        }
    };
    let flight = fly_aircraft(&mut conn, &mut app, stop, &mut |e| {
        print_event("aircraft", e)
    })
    .await;
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
    if flight.connected {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

/// Run the remote.
pub(crate) fn remote(a: &RemoteArgs) -> ExitCode {
    let code = match read_code(&a.code_file) {
        Ok(code) => code,
        Err(status) => return status,
    };
    runtime().block_on(run_remote(a, &code))
}

async fn run_remote(a: &RemoteArgs, code: &[u8]) -> ExitCode {
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
    let transport = match Captured::new(transport, a.pcap.as_deref()) {
        Ok(t) => t,
        Err(status) => return status,
    };
    let epoch = wall_clock();
    let connected = Remote::connect(
        transport.clone(),
        transport.udp.peer_addr().unwrap_or(a.connect),
        a.link_id,
        code,
        Config::default(),
    )
    .await;
    let mut conn = match connected {
        Ok(conn) => conn,
        Err(e) => {
            let _ = transport.finish();
            eprintln!("remote: not paired: {e}");
            return ExitCode::from(3);
        }
    };
    eprintln!("remote: paired with the aircraft at {}", a.connect);
    let mut app = RemoteApp::new(code)
        .downloading(&a.download)
        .with_clock_offset(epoch);
    let flight = RemoteFlight {
        seed: a.seed,
        duration: a.duration,
        until_downloaded: a.until_downloaded,
    };
    let outcome = fly_remote(&mut conn, &mut app, &flight, ctrl_c(), &mut |e| {
        print_event("remote", e);
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

/// A UDP transport that also writes every datagram to a pcap, with wall-clock timestamps
/// and the sockets' real addresses.
#[derive(Clone)]
struct Captured {
    udp: Arc<UdpTransport>,
    pcap: Option<PcapTap>,
}

/// An address as IPv4 for the capture (IPv6 peers are recorded as 0.0.0.0).
fn v4(addr: Option<SocketAddr>) -> SocketAddrV4 {
    match addr {
        Some(SocketAddr::V4(a)) => a,
        _ => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    }
}

impl Captured {
    fn new(udp: UdpTransport, pcap: Option<&Path>) -> Result<Self, ExitCode> {
        let pcap = pcap
            .map(|path| {
                PcapTap::create(path).map_err(|e| {
                    eprintln!("error: --pcap {}: {e}", path.display());
                    ExitCode::FAILURE
                })
            })
            .transpose()?;
        Ok(Captured {
            udp: Arc::new(udp),
            pcap,
        })
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
}
