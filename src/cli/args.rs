//! The flags of `sim` and `sweep`, and the scenario they describe.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rotorlink::config::MAX_VIDEO_PARITY;
use rotorlink::{Config, VideoFec};
use rotorlink_sim::aircraft::AircraftConfig;
use rotorlink_sim::channel::Burst;
use rotorlink_sim::scenario::Scenario;
use rotorlink_sim::storage::{self, StorageConfig};
use rotorlink_sim::{ChannelConfig, RateStep};

use super::units::{self, show_duration, show_percent, show_rate};

/// How the radio behaves, the same both ways; every flag left out keeps the demo radio's
/// value. The loss is not here: `sim` takes one, `sweep` a list.
#[derive(Debug, Clone, Args)]
pub(crate) struct RadioArgs {
    /// Make losses come in bursts of LEN datagrams on average (a Gilbert-Elliott chain),
    /// keeping the average loss of --loss [default: independent losses].
    #[arg(long, value_name = "LEN", value_parser = units::burst_length)]
    pub(crate) burst: Option<f64>,
    /// Fixed one-way delay, e.g. 10ms [default: 5ms].
    #[arg(long, value_name = "DURATION", value_parser = units::duration)]
    pub(crate) delay: Option<Duration>,
    /// Extra random delay per datagram, uniform in 0..=DURATION, e.g. 3ms [default: 2ms].
    #[arg(long, value_name = "DURATION", value_parser = units::duration)]
    pub(crate) jitter: Option<Duration>,
    /// Datagrams held back so that later ones overtake them, e.g. 1% [default: 0%].
    #[arg(long, value_name = "PERCENT", value_parser = units::percent)]
    pub(crate) reorder: Option<f64>,
    /// Datagrams that arrive twice, e.g. 0.5% [default: 0.5%].
    #[arg(long, value_name = "PERCENT", value_parser = units::percent)]
    pub(crate) duplicate: Option<f64>,
    /// Datagrams with one bit flipped, e.g. 0.1% [default: 0.1%].
    #[arg(long, value_name = "PERCENT", value_parser = units::percent)]
    pub(crate) corrupt: Option<f64>,
    /// Bottleneck rate of the radio, e.g. 50mbit, 500kbit, 1gbit [default: unlimited].
    #[arg(long, value_name = "RATE", value_parser = units::rate)]
    pub(crate) rate: Option<u64>,
    /// Change the bottleneck rate during the flight, as a radio's modulation does with
    /// range: TIME=RATE steps in time order, comma-separated, e.g. 4s=8mbit,8s=20mbit (8
    /// Mbit/s from 4 s, 20 Mbit/s again from 8 s); before the first, --rate
    /// [default: no change].
    #[arg(long, value_name = "TIME=RATE,...", value_parser = units::rate_step, value_delimiter = ',')]
    pub(crate) rate_step: Vec<RateStep>,
    /// Bottleneck rate of the uplink alone (remote to aircraft: sticks, acks, feedback), e.g.
    /// 500kbit, for a radio that gives the uplink a small share of its air time, as drone
    /// radios do; --rate-step then changes the downlink only [default: as the downlink].
    #[arg(long, value_name = "RATE", value_parser = units::rate)]
    pub(crate) uplink_rate: Option<u64>,
    /// Bytes that may wait for the bottleneck of --rate before datagrams are dropped, e.g.
    /// 64KiB, 1MiB [default: 1MiB].
    #[arg(long, value_name = "BYTES", value_parser = units::bytes)]
    pub(crate) queue: Option<usize>,
    /// Largest datagram, in bytes, of the radio and of both links (400..=16384)
    /// [default: 1400].
    #[arg(long, value_name = "BYTES", value_parser = units::mtu)]
    pub(crate) mtu: Option<usize>,
}

/// What the aircraft's onboard storage holds (the flight log, photos, a video clip); every
/// flag left out keeps the default.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct StorageArgs {
    /// Size of the flight log before the flight, e.g. 10MiB, 512KiB (telemetry records are
    /// appended as it flies) [default: 1MiB].
    #[arg(long, value_name = "BYTES", value_parser = units::bytes)]
    pub(crate) log_size: Option<usize>,
    /// Photos in onboard storage, photo-1.jpg and on (0 to 1000) [default: 3].
    #[arg(long, value_name = "N", value_parser = units::photos)]
    pub(crate) photos: Option<u32>,
    /// Size of each photo, e.g. 4MiB [default: 4MiB].
    #[arg(long, value_name = "BYTES", value_parser = units::bytes)]
    pub(crate) photo_size: Option<usize>,
    /// Size of the video clip, clip.mp4, e.g. 64MiB or 1GiB; 0 for none [default: 32MiB].
    /// Its contents are generated as they are read: any size costs no memory.
    #[arg(long, value_name = "BYTES", value_parser = units::file_size)]
    pub(crate) clip_size: Option<u64>,
}

impl StorageArgs {
    /// `base` with the flags applied.
    pub(crate) fn apply(&self, base: &AircraftConfig) -> AircraftConfig {
        let mut c = base.clone();
        if let Some(n) = self.log_size {
            c.initial_log_len = n;
        }
        if let Some(n) = self.photos {
            c.photos = n;
        }
        if let Some(n) = self.photo_size {
            c.photo_size = n as u64;
        }
        if let Some(n) = self.clip_size {
            c.clip_size = n;
        }
        c
    }
}

/// What flies and how long, and how to print it.
#[derive(Debug, Clone, Args)]
pub(crate) struct FlightArgs {
    /// Video bitrate of the aircraft, e.g. 20mbit, 2mbit; 0 for no video [default: 20mbit].
    #[arg(long, value_name = "RATE", value_parser = units::video_rate)]
    pub(crate) video: Option<u64>,
    /// Seed of every random choice: the same flags and seed give the same report.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,
    /// The security code the pilot types [default: the demo's, 246813].
    #[arg(long, value_name = "CODE")]
    pub(crate) password: Option<String>,
    /// The code the aircraft was provisioned with [default: the same as --password].
    #[arg(long, value_name = "CODE")]
    pub(crate) aircraft_password: Option<String>,
    /// Print the report as JSON and nothing else on standard output.
    #[arg(long)]
    pub(crate) json: bool,
    /// The file the remote downloads from onboard storage: flightlog, clip, photo-N (or
    /// the full name, clip.mp4) [default: flightlog].
    #[arg(long, value_name = "FILE")]
    pub(crate) download: Option<String>,
    #[command(flatten)]
    pub(crate) storage: StorageArgs,
}

/// `rotorlink sim`: one flight.
#[derive(Debug, Clone, Args)]
pub(crate) struct SimArgs {
    /// Datagrams lost, e.g. 5% or 0.05 [default: 2%].
    #[arg(long, value_name = "PERCENT", value_parser = units::percent)]
    pub(crate) loss: Option<f64>,
    /// Virtual flight time, e.g. 60s, 1.5s, 2min.
    #[arg(long, value_name = "DURATION", value_parser = units::flight_duration, default_value = "30s")]
    pub(crate) duration: Duration,
    /// Write every datagram on the air to FILE as a pcap (UDP port 47474; open it in
    /// Wireshark with tools/wireshark/rotorlink.lua).
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: Option<PathBuf>,
    /// Write both links' traffic secrets to FILE, so that `rotorlink decrypt` can decrypt
    /// the --pcap capture (whoever reads FILE reads the traffic: test benches only).
    #[arg(long, value_name = "FILE")]
    pub(crate) keylog: Option<PathBuf>,
    /// Cut the radio both ways from FROM to TO of virtual time, e.g. 1s..2.5s; several
    /// windows comma-separated. A cut longer than the link-loss timeout (1 s) makes the
    /// remote resume the session, or run a new session handshake with its bond once the
    /// aircraft has dropped the session (--resume-lifetime) [default: none].
    #[arg(long, value_name = "FROM..TO", value_parser = units::outage, value_delimiter = ',')]
    pub(crate) outage: Vec<(Duration, Duration)>,
    /// How long the aircraft keeps an idle session for a one-round-trip resume, e.g. 2s
    /// [default: 10min].
    #[arg(long, value_name = "DURATION", value_parser = units::duration)]
    pub(crate) resume_lifetime: Option<Duration>,
    #[command(flatten)]
    pub(crate) radio: RadioArgs,
    #[command(flatten)]
    pub(crate) flight: FlightArgs,
}

/// `rotorlink sweep`: one flight per loss rate.
#[derive(Debug, Clone, Args)]
pub(crate) struct SweepArgs {
    /// The loss rates to fly, in percent, comma-separated (the % sign is optional).
    #[arg(
        long,
        value_name = "PERCENTS",
        value_parser = units::percent_point,
        value_delimiter = ',',
        default_value = "0,1,2,5,10,20"
    )]
    pub(crate) loss: Vec<f64>,
    /// Virtual flight time of each run.
    #[arg(long, value_name = "DURATION", value_parser = units::flight_duration, default_value = "10s")]
    pub(crate) duration: Duration,
    /// Write one CSV row per loss rate (and a header) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,
    /// Write an SVG plot of goodput and control latency against loss to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) svg: Option<PathBuf>,
    /// Fly every loss rate once per video FEC policy, comma-separated: adaptive
    /// (rotorlink's), off (no parity), fixed-K-N (K data fragments in every N, the
    /// overhead wfb-ng's K-of-N blocks have, e.g. fixed-8-12). The table, the CSV and the
    /// SVG then show video frames complete and decodable and the parity overhead of each
    /// policy against loss [default: the usual sweep, adaptive only].
    #[arg(long, value_name = "POLICIES", value_parser = fec_policy, value_delimiter = ',')]
    pub(crate) fec: Vec<FecPolicy>,
    #[command(flatten)]
    pub(crate) radio: RadioArgs,
    #[command(flatten)]
    pub(crate) flight: FlightArgs,
}

/// A video FEC policy of `sweep --fec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FecPolicy {
    /// rotorlink's: parity as the measured loss asks ([`VideoFec::Adaptive`]).
    Adaptive,
    /// No parity at all (`max_video_parity` 0).
    Off,
    /// `data` data fragments in every `total`: `total - data` parity fragments per `data`
    /// ([`VideoFec::Fixed`]), with the parity cap raised so that every frame, key frames
    /// too, gets the whole ratio.
    Fixed {
        /// Data fragments per block (`K` of `fixed-K-N`).
        data: u16,
        /// Fragments per block, data and parity (`N`).
        total: u16,
    },
}

impl FecPolicy {
    /// Its name on the command line and in the outputs: `adaptive`, `off`, `fixed-8-12`.
    pub(crate) fn name(self) -> String {
        match self {
            FecPolicy::Adaptive => "adaptive".into(),
            FecPolicy::Off => "off".into(),
            FecPolicy::Fixed { data, total } => format!("fixed-{data}-{total}"),
        }
    }

    /// `link` flying this policy.
    pub(crate) fn apply(self, link: &mut Config) {
        match self {
            FecPolicy::Adaptive => link.video_fec = VideoFec::Adaptive,
            FecPolicy::Off => link.max_video_parity = 0,
            FecPolicy::Fixed { data, total } => {
                link.video_fec = VideoFec::Fixed {
                    data,
                    parity: total - data,
                };
                link.max_video_parity = MAX_VIDEO_PARITY;
            }
        }
    }
}

/// `adaptive`, `off` or `fixed-K-N` (`0 < K < N`, `N` at most 256).
pub(crate) fn fec_policy(s: &str) -> Result<FecPolicy, String> {
    let t = s.trim().to_ascii_lowercase();
    match t.as_str() {
        "adaptive" => return Ok(FecPolicy::Adaptive),
        "off" | "none" => return Ok(FecPolicy::Off),
        _ => {}
    }
    let wrong = || format!("'{s}' is not a FEC policy (adaptive, off, or fixed-K-N as fixed-8-12)");
    let (k, n) = t
        .strip_prefix("fixed-")
        .and_then(|rest| rest.split_once('-'))
        .ok_or_else(wrong)?;
    let digits = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit());
    if !digits(k) || !digits(n) {
        return Err(wrong());
    }
    let (data, total) = (k.parse::<u16>(), n.parse::<u16>());
    match (data, total) {
        (Ok(data), Ok(total)) if data > 0 && data < total && total <= 256 => {
            Ok(FecPolicy::Fixed { data, total })
        }
        _ => Err(format!(
            "{s}: a fixed-K-N code needs 0 < K < N <= 256 (K data fragments in every N)"
        )),
    }
}

/// Report `e` in one line naming the flag; exit status 2.
pub(crate) fn flag_error(e: &FlagError) -> std::process::ExitCode {
    eprintln!("error: invalid value for '{}': {}", e.flag, e.message);
    std::process::ExitCode::from(2)
}

/// A flag whose value is fine on its own but not with the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlagError {
    /// The flag at fault, `--burst`.
    pub(crate) flag: &'static str,
    /// What is wrong.
    pub(crate) message: String,
}

/// The radio of one direction: the demo radio with the flags applied, and `loss`.
///
/// # Errors
/// A [`FlagError`] if the combination is impossible (a burst chain that cannot average
/// that loss) or the channel model refuses it.
pub(crate) fn radio(
    base: &ChannelConfig,
    loss: Option<f64>,
    args: &RadioArgs,
) -> Result<ChannelConfig, FlagError> {
    let mut c = base.clone();
    if let Some(loss) = loss {
        c.loss = loss;
    }
    if let Some(len) = args.burst {
        // The bursts carry all the loss.
        let average = c.loss;
        let most = len / (len + 1.0);
        if average > most {
            return Err(FlagError {
                flag: "--burst",
                message: format!(
                    "bursts of {} datagrams on average cannot make {} loss (at most {})",
                    units::trim(len),
                    show_percent(average),
                    show_percent(most)
                ),
            });
        }
        c.burst = Some(Burst::mean_length(len, average));
        c.loss = 0.0;
    }
    if let Some(d) = args.delay {
        c.delay = d;
    }
    if let Some(j) = args.jitter {
        c.jitter = j;
    }
    if let Some(r) = args.reorder {
        c.reorder = r;
    }
    if let Some(d) = args.duplicate {
        c.duplicate = d;
    }
    if let Some(p) = args.corrupt {
        c.corrupt = p;
    }
    if let Some(r) = args.rate {
        c.rate_bps = Some(r);
    }
    if !args.rate_step.is_empty() {
        c.rate_steps.clone_from(&args.rate_step);
    }
    if let Some(q) = args.queue {
        c.queue_bytes = q;
    }
    if let Some(m) = args.mtu {
        c.mtu = Some(m);
    }
    c.validate().map_err(|e| {
        let field = e.field();
        let flag = match field.split('.').next().unwrap_or(field) {
            "loss" => "--loss",
            "burst" => "--burst",
            "reorder" | "reorder_delay" => "--reorder",
            "duplicate" => "--duplicate",
            "corrupt" => "--corrupt",
            "rate_bps" => "--rate",
            "rate_steps" => "--rate-step",
            "mtu" => "--mtu",
            _ => "the radio",
        };
        FlagError {
            flag,
            message: e.message().to_string(),
        }
    })?;
    Ok(c)
}

/// The uplink's radio: `both_ways` (what [`radio`] made of the flags) with its own rate if
/// `--uplink-rate` gives one.
pub(crate) fn uplink(both_ways: ChannelConfig, args: &RadioArgs) -> ChannelConfig {
    match args.uplink_rate {
        Some(rate) => ChannelConfig {
            rate_bps: Some(rate),
            rate_steps: Vec::new(),
            ..both_ways
        },
        None => both_ways,
    }
}

/// The scenario of one run: the demo's, with `loss`, the radio flags and the flight flags
/// applied.
///
/// # Errors
/// As [`radio`].
pub(crate) fn scenario(
    loss: Option<f64>,
    duration: Duration,
    radio_args: &RadioArgs,
    flight: &FlightArgs,
) -> Result<Scenario, FlagError> {
    let mut s = Scenario {
        seed: flight.seed,
        duration,
        ..Scenario::default()
    };
    s.uplink = uplink(radio(&s.uplink, loss, radio_args)?, radio_args);
    s.downlink = radio(&s.downlink, loss, radio_args)?;
    if let Some(m) = radio_args.mtu {
        s.link.mtu = m;
    }
    if let Some(v) = flight.video {
        s.aircraft.video_bitrate = v;
    }
    s.aircraft = flight.storage.apply(&s.aircraft);
    if let Some(file) = &flight.download {
        s.download = download(file, &s.aircraft.storage())?;
    }
    if let Some(p) = &flight.password {
        s.password = p.as_bytes().to_vec();
    }
    s.aircraft_password = match &flight.aircraft_password {
        Some(p) => p.as_bytes().to_vec(),
        None => s.password.clone(),
    };
    Ok(s)
}

/// The file `--download` names, if the storage holds one by that name.
///
/// # Errors
/// A [`FlagError`] for `--download` listing the files there are.
pub(crate) fn download(wanted: &str, storage: &StorageConfig) -> Result<String, FlagError> {
    let names = storage.names();
    if names.iter().any(|n| storage::name_matches(n, wanted)) {
        return Ok(wanted.to_string());
    }
    let shown = match names.as_slice() {
        [a, b, c, d, .., last] if names.len() > 5 => format!("{a}, {b}, {c}, {d}, ..., {last}"),
        all => all.join(", "),
    };
    Err(FlagError {
        flag: "--download",
        message: format!("no file named {wanted} in onboard storage (there are {shown})"),
    })
}

/// One line for people: what the onboard storage holds, and the file downloaded.
pub(crate) fn describe_storage(c: &AircraftConfig, download: &str) -> String {
    let mut parts = vec![format!(
        "flight log {}",
        units::show_bytes(c.initial_log_len)
    )];
    match c.photos {
        0 => {}
        1 => parts.push(format!(
            "1 photo of {}",
            units::show_bytes(c.photo_size as usize)
        )),
        n => parts.push(format!(
            "{n} photos of {}",
            units::show_bytes(c.photo_size as usize)
        )),
    }
    if c.clip_size > 0 {
        parts.push(format!("clip {}", units::show_bytes(c.clip_size as usize)));
    }
    format!("{}; downloading {download}", parts.join(", "))
}

/// One line for people: what the radio does both ways ([`describe`] of the downlink), and
/// the uplink's own rate where `--uplink-rate` gave it one.
pub(crate) fn describe_radio(
    uplink: &ChannelConfig,
    downlink: &ChannelConfig,
    with_loss: bool,
) -> String {
    let both = describe(downlink, with_loss);
    if uplink.rate_bps == downlink.rate_bps && uplink.rate_steps == downlink.rate_steps {
        return both;
    }
    let up = uplink
        .rate_bps
        .map_or_else(|| "unlimited".to_string(), show_rate);
    format!("{both}; uplink rate {up}")
}

/// One line for people: what the radio of `c` does (`loss 5%, delay 5 ms, ...`); without
/// the loss rate itself if `with_loss` is false (a sweep varies it).
pub(crate) fn describe(c: &ChannelConfig, with_loss: bool) -> String {
    let mut parts = Vec::new();
    match (&c.burst, with_loss) {
        (Some(b), true) => parts.push(format!(
            "loss {} in bursts of {} datagrams",
            show_percent(b.average_loss() + c.loss),
            units::trim(b.mean_burst_length())
        )),
        (Some(b), false) => parts.push(format!(
            "losses in bursts of {} datagrams",
            units::trim(b.mean_burst_length())
        )),
        (None, true) => parts.push(format!("loss {}", show_percent(c.loss))),
        (None, false) => {}
    }
    parts.push(format!("delay {}", show_duration(c.delay)));
    if !c.jitter.is_zero() {
        parts.push(format!("jitter {}", show_duration(c.jitter)));
    }
    for (name, p) in [
        ("reorder", c.reorder),
        ("duplicate", c.duplicate),
        ("corrupt", c.corrupt),
    ] {
        if p > 0.0 {
            parts.push(format!("{name} {}", show_percent(p)));
        }
    }
    if c.rate_bps.is_some() || !c.rate_steps.is_empty() {
        parts.push(format!(
            "rate {} (queue {})",
            c.rate_bps
                .map_or_else(|| "unlimited".to_string(), show_rate),
            units::show_bytes(c.queue_bytes)
        ));
    }
    for step in &c.rate_steps {
        parts.push(format!(
            "{} from {}",
            show_rate(step.bps),
            show_duration(step.at)
        ));
    }
    if let Some(m) = c.mtu {
        parts.push(format!("mtu {m}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Sim {
        #[command(flatten)]
        args: SimArgs,
    }

    fn parse(flags: &[&str]) -> SimArgs {
        let argv = std::iter::once("sim").chain(flags.iter().copied());
        Sim::try_parse_from(argv).expect("flags parse").args
    }

    fn build(flags: &[&str]) -> Result<Scenario, FlagError> {
        let a = parse(flags);
        scenario(a.loss, a.duration, &a.radio, &a.flight)
    }

    /// The defaults the help text promises are the demo's.
    #[test]
    fn no_flags_fly_the_demo_as_documented() {
        let s = build(&[]).unwrap();
        let demo = Scenario::default();
        assert_eq!(s.duration, Duration::from_secs(30));
        assert_eq!(s, demo);
        let r = &s.uplink;
        assert_eq!(r.loss, 0.02);
        assert_eq!(r.burst, None);
        assert_eq!(r.delay, Duration::from_millis(5));
        assert_eq!(r.jitter, Duration::from_millis(2));
        assert_eq!(r.reorder, 0.0);
        assert_eq!(r.duplicate, 0.005);
        assert_eq!(r.corrupt, 0.001);
        assert_eq!(r.rate_bps, None);
        assert_eq!(r.queue_bytes, 1024 * 1024);
        assert_eq!(r.mtu, None);
        assert_eq!(s.link.mtu, 1400);
        assert_eq!(s.aircraft.video_bitrate, 20_000_000);
        assert_eq!(s.password, b"246813");
        assert_eq!(s.aircraft_password, b"246813");
        assert_eq!(s.download, "flightlog");
        assert_eq!(s.aircraft.initial_log_len, 1 << 20);
    }

    #[test]
    fn storage_flags_size_the_files_and_pick_the_download() {
        let s = build(&[
            "--clip-size",
            "64MiB",
            "--photos",
            "5",
            "--photo-size",
            "2MiB",
            "--log-size",
            "512KiB",
            "--download",
            "clip",
        ])
        .unwrap();
        let a = &s.aircraft;
        assert_eq!(
            (a.clip_size, a.photos, a.photo_size, a.initial_log_len),
            (64 << 20, 5, 2 << 20, 512 << 10)
        );
        assert_eq!(s.download, "clip");
        assert_eq!(
            describe_storage(a, &s.download),
            "flight log 512 KiB, 5 photos of 2 MiB, clip 64 MiB; downloading clip"
        );
        assert_eq!(
            build(&["--download", "photo-5.jpg", "--photos", "5"])
                .unwrap()
                .download,
            "photo-5.jpg"
        );
        for flags in [
            &["--download", "photo-6", "--photos", "5"][..],
            &["--download", "clip", "--clip-size", "0"],
            &["--download", "nothing"],
        ] {
            let e = build(flags).unwrap_err();
            assert_eq!(e.flag, "--download", "{flags:?}");
            assert!(e.message.contains("no file named"), "{}", e.message);
        }
    }

    #[test]
    fn flags_apply_to_both_directions() {
        let s = build(&[
            "--loss",
            "5%",
            "--delay",
            "10ms",
            "--jitter",
            "3ms",
            "--reorder",
            "1%",
            "--duplicate",
            "0.5%",
            "--corrupt",
            "0%",
            "--rate",
            "50mbit",
            "--queue",
            "1MiB",
            "--mtu",
            "1200",
            "--duration",
            "60s",
            "--video",
            "2mbit",
            "--seed",
            "9",
        ])
        .unwrap();
        assert_eq!(s.uplink, s.downlink);
        let r = &s.uplink;
        assert_eq!(r.loss, 0.05);
        assert_eq!(r.delay, Duration::from_millis(10));
        assert_eq!(r.jitter, Duration::from_millis(3));
        assert_eq!(r.reorder, 0.01);
        assert_eq!(r.corrupt, 0.0);
        assert_eq!(r.rate_bps, Some(50_000_000));
        assert_eq!(r.queue_bytes, 1 << 20);
        assert_eq!(r.mtu, Some(1200));
        assert_eq!(s.link.mtu, 1200);
        assert_eq!(s.duration, Duration::from_secs(60));
        assert_eq!(s.aircraft.video_bitrate, 2_000_000);
        assert_eq!(s.seed, 9);
        assert!(describe(r, true).contains("rate 50 Mbit/s (queue 1 MiB)"));
    }

    #[test]
    fn rate_steps_change_the_rate_both_ways_in_time_order() {
        let s = build(&["--rate", "20mbit", "--rate-step", "4s=8mbit,8s=20mbit"]).unwrap();
        assert_eq!(s.uplink, s.downlink);
        let steps: Vec<(Duration, u64)> = s
            .downlink
            .rate_steps
            .iter()
            .map(|r| (r.at, r.bps))
            .collect();
        assert_eq!(
            steps,
            [
                (Duration::from_secs(4), 8_000_000),
                (Duration::from_secs(8), 20_000_000)
            ]
        );
        assert!(
            describe(&s.downlink, true)
                .contains("rate 20 Mbit/s (queue 1 MiB), 8 Mbit/s from 4 s, 20 Mbit/s from 8 s"),
            "{}",
            describe(&s.downlink, true)
        );
        let e = build(&["--rate-step", "8s=8mbit,4s=20mbit"]).unwrap_err();
        assert_eq!(e.flag, "--rate-step");
        assert!(e.message.contains("times must increase"), "{}", e.message);
    }

    #[test]
    fn an_uplink_rate_narrows_the_uplink_alone() {
        let s = build(&[
            "--rate",
            "20mbit",
            "--rate-step",
            "4s=8mbit",
            "--uplink-rate",
            "500kbit",
        ])
        .unwrap();
        assert_eq!(s.downlink.rate_bps, Some(20_000_000));
        assert_eq!(s.downlink.rate_steps.len(), 1);
        assert_eq!(s.uplink.rate_bps, Some(500_000));
        assert!(s.uplink.rate_steps.is_empty());
        // Everything else is the same both ways.
        assert_eq!(
            ChannelConfig {
                rate_bps: s.downlink.rate_bps,
                rate_steps: s.downlink.rate_steps.clone(),
                ..s.uplink.clone()
            },
            s.downlink
        );
        let line = describe_radio(&s.uplink, &s.downlink, true);
        assert!(line.ends_with("; uplink rate 500 kbit/s"), "{line}");
        let same = build(&["--rate", "20mbit"]).unwrap();
        let line = describe_radio(&same.uplink, &same.downlink, true);
        assert!(!line.contains("uplink"), "{line}");
    }

    #[test]
    fn the_aircraft_code_defaults_to_the_pilots() {
        let s = build(&["--password", "1234"]).unwrap();
        assert_eq!(s.aircraft_password, b"1234");
        let s = build(&["--password", "1234", "--aircraft-password", "5678"]).unwrap();
        assert_eq!(
            (&s.password[..], &s.aircraft_password[..]),
            (&b"1234"[..], &b"5678"[..])
        );
    }

    #[test]
    fn a_burst_carries_the_whole_loss() {
        let s = build(&["--loss", "10%", "--burst", "4"]).unwrap();
        let b = s.uplink.burst.expect("a burst chain");
        assert_eq!(s.uplink.loss, 0.0);
        assert!((b.average_loss() - 0.10).abs() < 1e-12);
        assert!((b.mean_burst_length() - 4.0).abs() < 1e-12);
        assert!(describe(&s.uplink, true).starts_with("loss 10% in bursts of 4 datagrams"));
        let e = build(&["--loss", "60%", "--burst", "1"]).unwrap_err();
        assert_eq!(e.flag, "--burst");
        assert!(build(&["--loss", "50%", "--burst", "1"]).is_ok());
    }

    #[derive(Debug, Parser)]
    struct Sweep {
        #[command(flatten)]
        args: SweepArgs,
    }

    fn parse_sweep(flags: &[&str]) -> Result<SweepArgs, clap::Error> {
        let argv = std::iter::once("sweep").chain(flags.iter().copied());
        Sweep::try_parse_from(argv).map(|s| s.args)
    }

    #[test]
    fn fec_policies_parse_and_apply() {
        assert_eq!(parse_sweep(&[]).unwrap().fec, []);
        let a = parse_sweep(&["--fec", "adaptive,off,fixed-8-12", "--loss", "0,5"]).unwrap();
        assert_eq!(
            a.fec,
            [
                FecPolicy::Adaptive,
                FecPolicy::Off,
                FecPolicy::Fixed { data: 8, total: 12 }
            ]
        );
        let names: Vec<_> = a.fec.iter().map(|p| p.name()).collect();
        assert_eq!(names, ["adaptive", "off", "fixed-8-12"]);
        for p in &a.fec {
            assert_eq!(fec_policy(&p.name()), Ok(*p));
        }
        assert_eq!(
            fec_policy(" Fixed-4-5 "),
            Ok(FecPolicy::Fixed { data: 4, total: 5 })
        );
        assert_eq!(fec_policy("none"), Ok(FecPolicy::Off));

        let mut link = Config::default();
        FecPolicy::Off.apply(&mut link);
        assert_eq!(link.max_video_parity, 0);
        assert_eq!(link.validate(), Ok(()));
        let mut link = Config::default();
        FecPolicy::Fixed { data: 8, total: 12 }.apply(&mut link);
        assert_eq!(link.video_fec, VideoFec::WFB_NG);
        assert_eq!(link.max_video_parity, MAX_VIDEO_PARITY);
        assert_eq!(link.validate(), Ok(()));
        let mut link = Config::default();
        FecPolicy::Adaptive.apply(&mut link);
        assert_eq!(link, Config::default());

        for bad in [
            "fixed",
            "fixed-8",
            "fixed-12-8",
            "fixed-0-4",
            "fixed-8-8",
            "fixed-8-300",
            "fixed-a-12",
            "fixed--8-12",
            "adaptif",
            "",
        ] {
            assert!(fec_policy(bad).is_err(), "{bad:?}");
        }
        let e = parse_sweep(&["--fec", "adaptive,fixed-12-8"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(e.to_string().contains("--fec"), "{e}");
        assert!(e.to_string().contains("0 < K < N"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_by_the_parser() {
        for flags in [
            &["--loss", "150%"][..],
            &["--mtu", "10"],
            &["--delay", "abc"],
            &["--duration", "0s"],
            &["--rate", "0mbit"],
            &["--queue", "0"],
            &["--video", "fast"],
        ] {
            let argv = std::iter::once("sim").chain(flags.iter().copied());
            let e = Sim::try_parse_from(argv).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{flags:?}"
            );
            assert!(e.to_string().contains(flags[0]), "{e}");
        }
    }
}
