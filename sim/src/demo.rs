//! The demo flight: an aircraft and a remote on a moderately lossy radio. The remote flies
//! the aircraft with stick commands at 100 Hz; the aircraft sends telemetry at 50 Hz and a
//! video stream; one second in, the remote asks for the flight log and downloads it over the
//! reliable storage channel.

use std::time::Duration;

use rotorlink::{Channel, Config, Timestamp};

use crate::pair::{Pair, Received, Side};
use crate::path::{PathConfig, PathStats};

/// What the demo flight does.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Virtual flight time.
    pub duration: Duration,
    /// The radio, both directions.
    pub path: PathConfig,
    /// Video bitrate in bits per second.
    pub video_bitrate: u64,
    /// Size of the flight log the remote downloads.
    pub flight_log_len: usize,
    /// Link configuration.
    pub link: Config,
    /// The code the pilot types.
    pub code: Vec<u8>,
    /// The code the aircraft was provisioned with.
    pub aircraft_code: Vec<u8>,
}

impl Default for DemoConfig {
    /// 30 s over a moderately lossy radio: 2 % loss, 5 ms +- 2 ms, 0.5 % duplicates, 0.1 %
    /// corrupted; 4 Mbit/s video; a 1 MiB flight log.
    fn default() -> Self {
        DemoConfig {
            seed: 1,
            duration: Duration::from_secs(30),
            path: PathConfig {
                loss: 0.02,
                delay: Duration::from_millis(5),
                jitter: Duration::from_millis(2),
                duplicate: 0.005,
                corrupt: 0.001,
            },
            video_bitrate: 4_000_000,
            flight_log_len: 1 << 20,
            link: Config::default(),
            code: b"246813".to_vec(),
            aircraft_code: b"246813".to_vec(),
        }
    }
}

/// Sent and delivered message counts of one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelReport {
    /// Messages the sender queued.
    pub sent: u64,
    /// Messages the receiver got.
    pub delivered: u64,
    /// Payload bytes the receiver got.
    pub bytes: u64,
}

/// What happened during the flight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoReport {
    /// The seed.
    pub seed: u64,
    /// Did the remote pair with the aircraft?
    pub paired: bool,
    /// Time from the first handshake message to the remote's confirmed session.
    pub handshake: Option<Duration>,
    /// Did the storage unlock (a second proof of the code) succeed?
    pub storage_unlocked: bool,
    /// Pairing attempts the aircraft has left.
    pub remaining_attempts: u32,
    /// Virtual time flown.
    pub flown: Duration,
    /// Per channel: control, telemetry, video, storage.
    pub channels: [ChannelReport; 4],
    /// Video messages reported lost (incomplete).
    pub video_lost: u64,
    /// Control latency percentiles (p50, p99, max).
    pub control_latency: [Duration; 3],
    /// True if the whole flight log arrived, byte for byte.
    pub flight_log_complete: bool,
    /// Storage retransmissions, both sides.
    pub storage_retransmits: u64,
    /// Key rotations, both directions.
    pub rekeys: u64,
    /// Datagrams dropped for failing authentication (corruption), both sides.
    pub rejected_auth: u64,
    /// Datagrams dropped as replays (duplicates), both sides.
    pub rejected_replay: u64,
    /// Datagrams dropped as malformed, both sides.
    pub rejected_malformed: u64,
    /// The radio, aircraft to remote.
    pub downlink: PathStats,
    /// The radio, remote to aircraft.
    pub uplink: PathStats,
}

/// The flight log's byte at `i`: a pattern the remote can check.
fn log_byte(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8)) as u8
}

/// Fly the demo.
///
/// # Errors
/// [`rotorlink::ConfigError`] if the link configuration is invalid.
pub fn run(cfg: &DemoConfig) -> Result<DemoReport, rotorlink::ConfigError> {
    let mut pair: Pair = Pair::pairing(
        cfg.link.clone(),
        cfg.path.clone(),
        cfg.path.clone(),
        cfg.seed,
        &cfg.aircraft_code,
        &cfg.code,
    )?;
    let mut connected_at = None;
    let mut unlock_asked = false;
    let mut seen_remote = 0;
    let tick = Duration::from_millis(10);
    let frame_interval_ticks = 3; // ~33 fps
    let frame_bytes = (cfg.video_bitrate / 8 / 33).max(1) as usize;
    let end = Timestamp::ZERO + cfg.duration;
    let mut seen_aircraft = 0;
    let mut log_requested = false;
    let mut log_received = Vec::new();
    let mut latencies = Vec::new();
    let mut tick_no: u64 = 0;
    while pair.now() < end {
        let now = pair.now();
        // The pilot paired with the code; once connected, the remote proves it again to
        // open the onboard storage, then asks for the flight log.
        for r in &pair.remote_received[seen_remote..] {
            if let Received::Other(t, e) = r {
                if e.starts_with("Connected") && connected_at.is_none() {
                    connected_at = Some(*t);
                }
            }
        }
        seen_remote = pair.remote_received.len();
        if connected_at.is_some() && !unlock_asked {
            unlock_asked = pair.remote.unlock_storage(&cfg.code).is_ok();
        }
        if pair.remote.storage_unlocked() && !log_requested {
            log_requested = pair
                .remote
                .send(Channel::Storage, b"GET /flightlog")
                .is_ok();
        }
        let flying = pair.remote.is_connected() && pair.aircraft.is_connected();
        // Remote: a stick command every tick, stamped with its send time.
        let mut stick = now.as_micros().to_be_bytes().to_vec();
        stick.extend_from_slice(&[0x80, 0x80, 0x40, 0x80]);
        if flying {
            let _ = pair.remote.send(Channel::Control, &stick);
        }
        // Aircraft: telemetry every other tick, video every third, key frame every 30th.
        if flying && tick_no % 2 == 0 {
            let telemetry = format!("t={} alt=120.5 spd=12.0 bat=87%", now.as_micros());
            let _ = pair.aircraft.send(Channel::Telemetry, telemetry.as_bytes());
        }
        if flying && tick_no % frame_interval_ticks == 0 {
            let key_frame = (tick_no / frame_interval_ticks) % 30 == 0;
            let len = if key_frame {
                frame_bytes * 4
            } else {
                frame_bytes
            };
            let len = len.min(cfg.link.max_video_message);
            let _ = pair
                .aircraft
                .send(Channel::Video, &vec![tick_no as u8; len]);
        }
        pair.run_until(now + tick);
        tick_no += 1;

        // The aircraft answers requests; the remote collects what arrives.
        for r in &pair.aircraft_received[seen_aircraft..] {
            match r {
                Received::Message(t, Channel::Control, m) if m.len() >= 8 => {
                    let sent = u64::from_be_bytes(m[..8].try_into().unwrap_or([0; 8]));
                    latencies.push(t.saturating_since(Timestamp::from_micros(sent)));
                }
                Received::Message(_, Channel::Storage, m) if m == b"GET /flightlog" => {
                    let log: Vec<u8> = (0..cfg.flight_log_len).map(log_byte).collect();
                    for chunk in log.chunks(cfg.link.max_storage_message.min(64 * 1024)) {
                        let _ = pair.aircraft.send(Channel::Storage, chunk);
                    }
                }
                _ => {}
            }
        }
        seen_aircraft = pair.aircraft_received.len();
    }
    for m in pair.messages(Side::Remote, Channel::Storage) {
        log_received.extend_from_slice(m);
    }

    latencies.sort();
    let pct = |p: usize| {
        latencies
            .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let (a, r) = (pair.aircraft.stats(), pair.remote.stats());
    let channel = |c: Channel| {
        let (tx, rx) = match c {
            Channel::Control => (r, a),
            Channel::Storage => (a, r),
            _ => (a, r),
        };
        ChannelReport {
            sent: tx.channel(c).messages_sent,
            delivered: rx.channel(c).messages_delivered,
            bytes: rx.channel(c).bytes_delivered,
        }
    };
    Ok(DemoReport {
        seed: cfg.seed,
        paired: connected_at.is_some(),
        handshake: connected_at.map(|t| t.saturating_since(Timestamp::ZERO)),
        storage_unlocked: pair.remote.storage_unlocked(),
        remaining_attempts: pair.aircraft.remaining_attempts().unwrap_or(0),
        flown: pair.now().saturating_since(Timestamp::ZERO),
        channels: Channel::ALL.map(channel),
        video_lost: r.channel(Channel::Video).messages_lost,
        control_latency: [
            pct(50),
            pct(99),
            latencies.last().copied().unwrap_or_default(),
        ],
        flight_log_complete: log_received.len() == cfg.flight_log_len
            && log_received
                .iter()
                .enumerate()
                .all(|(i, b)| *b == log_byte(i)),
        storage_retransmits: a.storage_retransmits + r.storage_retransmits,
        rekeys: a.rekeys_sent + r.rekeys_sent,
        rejected_auth: a.dropped_auth + r.dropped_auth,
        rejected_replay: a.dropped_duplicate
            + a.dropped_too_old
            + r.dropped_duplicate
            + r.dropped_too_old,
        rejected_malformed: a.dropped_malformed + r.dropped_malformed,
        downlink: pair.downlink.stats(),
        uplink: pair.uplink.stats(),
    })
}

impl std::fmt::Display for DemoReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "rotorlink demo flight  (seed {}, {:.1} s flown)",
            self.seed,
            self.flown.as_secs_f64()
        )?;
        writeln!(f)?;
        match self.handshake {
            Some(t) => writeln!(
                f,
                "paired with the code in {:.1} ms (OPAQUE, Argon2id); storage {}",
                ms(t),
                if self.storage_unlocked {
                    "unlocked"
                } else {
                    "LOCKED"
                }
            )?,
            None => writeln!(
                f,
                "NOT PAIRED: the aircraft refused the code ({} attempts left)",
                self.remaining_attempts
            )?,
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<10} {:>9} {:>10} {:>8} {:>12}",
            "channel", "sent", "delivered", "lost", "bytes"
        )?;
        for (c, ch) in Channel::ALL.iter().zip(&self.channels) {
            writeln!(
                f,
                "{:<10} {:>9} {:>10} {:>8} {:>12}",
                c.name(),
                ch.sent,
                ch.delivered,
                ch.sent.saturating_sub(ch.delivered),
                ch.bytes
            )?;
        }
        writeln!(f)?;
        let [p50, p99, max] = self.control_latency;
        writeln!(
            f,
            "control latency   p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
            ms(p50),
            ms(p99),
            ms(max)
        )?;
        writeln!(f, "video frames lost (incomplete)  {}", self.video_lost)?;
        writeln!(
            f,
            "flight log        {}",
            if self.flight_log_complete {
                "downloaded complete and intact"
            } else {
                "INCOMPLETE"
            }
        )?;
        writeln!(f, "storage retransmissions  {}", self.storage_retransmits)?;
        writeln!(f, "key rotations            {}", self.rekeys)?;
        writeln!(
            f,
            "rejected frames   auth {}   replay {}   malformed {}",
            self.rejected_auth, self.rejected_replay, self.rejected_malformed
        )?;
        for (name, p) in [("downlink", self.downlink), ("uplink", self.uplink)] {
            writeln!(
                f,
                "radio {name:<8}  sent {}  lost {}  duplicated {}  corrupted {}",
                p.sent, p.lost, p.duplicated, p.corrupted
            )?;
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short() -> DemoConfig {
        DemoConfig {
            duration: Duration::from_secs(4),
            video_bitrate: 1_000_000,
            flight_log_len: 200_000,
            link: rotorlink::Config {
                ksf: rotorlink::handshake::KsfParams::INSECURE_FAST,
                ..rotorlink::Config::default()
            },
            ..DemoConfig::default()
        }
    }

    #[test]
    fn the_demo_flight_downloads_the_log_and_is_deterministic() {
        let report = run(&short()).unwrap();
        assert!(report.paired && report.storage_unlocked, "{report}");
        assert!(report.flight_log_complete, "{report}");
        let control = report.channels[0];
        // Stick commands start once the session is up, a few round trips in.
        assert!(control.sent > 390 && control.sent < 400, "{report}");
        // 2 % loss: most control arrives, a little does not.
        assert!(
            control.delivered > 360 && control.delivered < control.sent,
            "{report}"
        );
        assert!(
            report.control_latency[1] <= Duration::from_millis(7),
            "{report}"
        );
        assert!(
            report.control_latency[0] >= Duration::from_millis(5),
            "{report}"
        );
        assert!(
            report.rejected_replay > 0 || report.downlink.duplicated == 0,
            "{report}"
        );
        assert_eq!(run(&short()).unwrap(), report);
        let other = run(&DemoConfig { seed: 2, ..short() }).unwrap();
        assert_ne!(other, report);
    }

    #[test]
    fn a_wrong_code_never_pairs_and_costs_an_attempt() {
        let cfg = DemoConfig {
            code: b"000000".to_vec(),
            ..short()
        };
        let report = run(&cfg).unwrap();
        assert!(!report.paired && !report.storage_unlocked, "{report}");
        assert_eq!(report.channels[0].delivered, 0);
        assert_eq!(report.remaining_attempts, 9);
        assert!(!report.flight_log_complete);
    }
}
