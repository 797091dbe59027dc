//! What a simulated flight measured, as a table for people and as JSON for tools.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Latency percentiles of one channel, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Worst.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of `samples` (sorted in place); zero when there are none.
    pub fn of(samples: &mut [Duration]) -> Latency {
        samples.sort_unstable();
        let at = |p: usize| {
            let i = (samples.len() * p / 100).min(samples.len().saturating_sub(1));
            samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        Latency {
            p50_ms: at(50),
            p99_ms: at(99),
            max_ms: samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        }
    }
}

/// One channel's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ChannelReport {
    /// Messages the sending application queued.
    pub sent: u64,
    /// Messages the receiving application got.
    pub delivered: u64,
    /// Messages that never arrived (`sent - delivered`; for storage, still in flight).
    pub lost: u64,
    /// Payload bytes delivered per second of flight, in Mbit/s.
    pub goodput_mbps: f64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// One-way latency from `send` to delivery (control and telemetry only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
}

/// The four channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Channels {
    /// Stick commands, remote to aircraft.
    pub control: ChannelReport,
    /// Telemetry, aircraft to remote.
    pub telemetry: ChannelReport,
    /// Video, aircraft to remote.
    pub video: ChannelReport,
    /// Storage requests and responses, both ways (responses counted by the remote).
    pub storage: ChannelReport,
}

/// Video frames by outcome at the remote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct VideoFrames {
    /// Delivered whole.
    pub complete: u64,
    /// Sent but never delivered (a fragment was lost).
    pub incomplete: u64,
}

/// Frames both links dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rejected {
    /// Failed authentication (forged or corrupted), unknown index, expired key.
    pub auth: u64,
    /// Replayed or duplicated, or older than the replay window.
    pub replay: u64,
    /// Malformed.
    pub malformed: u64,
    /// Protocol violations, handshake messages refused, locked storage.
    pub other: u64,
}

/// The whole report of one run. Its JSON form is one object with these keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The seed of every random choice.
    pub seed: u64,
    /// Virtual seconds flown.
    pub duration_s: f64,
    /// Did the remote pair with the aircraft?
    pub paired: bool,
    /// From the remote's first handshake message to its confirmed session.
    pub handshake_ms: Option<f64>,
    /// Why it did not pair, if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Was the onboard storage unlocked (the code proven again in-session)?
    pub storage_unlocked: bool,
    /// Per-channel traffic.
    pub channels: Channels,
    /// Video frames by outcome.
    pub video_frames: VideoFrames,
    /// Delivered messages whose contents differ from what was sent (must be 0: the AEAD
    /// drops every corrupted frame).
    pub corrupted_payloads: u64,
    /// Flight-log bytes the remote downloaded and verified.
    pub storage_bytes: u64,
    /// True if the whole flight log arrived intact (its SHA-256 matched).
    pub flight_log_complete: bool,
    /// Key updates, both directions.
    pub rekeys: u64,
    /// Reconnections (resumes) after link loss.
    pub reconnects: u64,
    /// Dropped frames by reason.
    pub rejected: Rejected,
    /// Return-to-home failsafes the aircraft raised.
    pub failsafe_events: u64,
    /// Storage segments retransmitted, both sides.
    pub storage_retransmits: u64,
    /// Datagrams the radio carried and lost (both directions).
    pub radio_sent: u64,
    /// Datagrams the radio lost (both directions).
    pub radio_lost: u64,
}

fn ms(v: Option<Latency>) -> String {
    v.map_or_else(String::new, |l| {
        format!("{:>7.1} {:>7.1} {:>7.1}", l.p50_ms, l.p99_ms, l.max_ms)
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rotorlink flight  seed {}  {:.1} s simulated",
            self.seed, self.duration_s
        )?;
        match (self.paired, self.handshake_ms) {
            (true, Some(t)) => writeln!(
                f,
                "paired with the code in {t:.1} ms (OPAQUE); storage {}",
                if self.storage_unlocked {
                    "unlocked"
                } else {
                    "locked"
                }
            )?,
            _ => writeln!(
                f,
                "NOT PAIRED: {}",
                self.refusal.as_deref().unwrap_or("no answer")
            )?,
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<10} {:>8} {:>9} {:>7} {:>9}   {:>7} {:>7} {:>7}",
            "channel", "sent", "delivered", "lost", "Mbit/s", "p50 ms", "p99 ms", "max ms"
        )?;
        let c = &self.channels;
        for (name, ch) in [
            ("control", c.control),
            ("telemetry", c.telemetry),
            ("video", c.video),
            ("storage", c.storage),
        ] {
            writeln!(
                f,
                "{:<10} {:>8} {:>9} {:>7} {:>9.3}   {}",
                name,
                ch.sent,
                ch.delivered,
                ch.lost,
                ch.goodput_mbps,
                ms(ch.latency)
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "video frames     {} complete, {} incomplete",
            self.video_frames.complete, self.video_frames.incomplete
        )?;
        writeln!(
            f,
            "flight log       {} bytes, {}",
            self.storage_bytes,
            if self.flight_log_complete {
                "complete and intact"
            } else {
                "incomplete"
            }
        )?;
        writeln!(
            f,
            "key updates {}   reconnects {}   failsafes {}   storage retransmits {}",
            self.rekeys, self.reconnects, self.failsafe_events, self.storage_retransmits
        )?;
        let r = &self.rejected;
        writeln!(
            f,
            "rejected frames  auth {}  replay {}  malformed {}  other {}",
            r.auth, r.replay, r.malformed, r.other
        )?;
        writeln!(
            f,
            "radio            {} datagrams, {} lost",
            self.radio_sent, self.radio_lost
        )
    }
}
