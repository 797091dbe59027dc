//! What a simulated flight measured, as a table for people and as JSON for tools.

use std::fmt;
use std::time::Duration;

use rotorlink::{Channel, Stats};
use serde::{Deserialize, Serialize};

use crate::remote::RemoteStats;

/// Latency percentiles of one channel, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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
    /// Delivered messages whose bytes were not what the sending application generated (must
    /// be 0: the AEAD drops every corrupted frame). Every byte of every stick command and
    /// telemetry message is checked, video frames by their contents, the flight log by its
    /// SHA-256.
    pub corrupted: u64,
    /// One-way latency from `send` to delivery (control and telemetry only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
}

/// The four channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoFrames {
    /// Delivered whole.
    pub complete: u64,
    /// Sent but never delivered (a fragment was lost).
    pub incomplete: u64,
}

/// Frames both links dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Delivered messages whose contents differ from what was sent, all channels (the sum
    /// of their `corrupted`; must be 0: the AEAD drops every corrupted frame).
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
    /// True when the flight ran on real sockets in real time (`rotorlink remote`); then the
    /// radio figures are the datagrams both links sent and those that did not arrive.
    #[serde(skip)]
    pub real_time: bool,
}

/// The channels a report covers, in the order of [`EndSummary`]'s arrays.
const CHANNELS: [Channel; 4] = [
    Channel::Control,
    Channel::Telemetry,
    Channel::Video,
    Channel::Storage,
];

/// What one end of a flight counted: the part of the report it alone can see. The aircraft
/// sends its own to the remote at the end of a flight over real sockets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndSummary {
    /// Messages the application queued, per channel (control, telemetry, video, storage).
    pub messages_sent: [u64; 4],
    /// Messages delivered to the application, per channel.
    pub messages_delivered: [u64; 4],
    /// Payload bytes delivered to the application, per channel.
    pub bytes_delivered: [u64; 4],
    /// Delivered messages whose bytes were not what the other end's application sent, per
    /// channel, as this end's application checked them.
    pub corrupted: [u64; 4],
    /// Frames this end dropped, by reason.
    pub rejected: Rejected,
    /// Key updates this end started.
    pub rekeys_sent: u64,
    /// Storage segments this end retransmitted.
    pub storage_retransmits: u64,
    /// Datagrams this end sent.
    pub datagrams_sent: u64,
    /// Datagrams this end received.
    pub datagrams_received: u64,
    /// One-way latencies, in microseconds, of the stamped messages this end received
    /// (stick commands on the aircraft, telemetry on the remote).
    pub latencies_us: Vec<u64>,
    /// Failsafes this end raised (the aircraft's return to home).
    pub failsafe_events: u64,
}

impl EndSummary {
    /// The summary of a link's `stats`, the `latencies` its application measured, the
    /// messages it found `corrupted` (per channel, in the order of
    /// [`EndSummary::messages_sent`]) and its `failsafe_events`.
    pub fn of(
        stats: &Stats,
        latencies: &[Duration],
        corrupted: [u64; 4],
        failsafe_events: u64,
    ) -> Self {
        let per_channel =
            |f: fn(&rotorlink::ChannelStats) -> u64| CHANNELS.map(|c| f(stats.channel(c)));
        EndSummary {
            messages_sent: per_channel(|c| c.messages_sent),
            messages_delivered: per_channel(|c| c.messages_delivered),
            bytes_delivered: per_channel(|c| c.bytes_delivered),
            corrupted,
            rejected: Rejected {
                auth: stats.dropped_auth
                    + stats.dropped_unknown_receiver
                    + stats.dropped_key_expired,
                replay: stats.dropped_duplicate + stats.dropped_too_old,
                malformed: stats.dropped_malformed,
                other: stats.dropped_protocol
                    + stats.dropped_handshake
                    + stats.dropped_storage_locked,
            },
            rekeys_sent: stats.rekeys_sent,
            storage_retransmits: stats.storage_retransmits,
            datagrams_sent: stats.datagrams_sent,
            datagrams_received: stats.datagrams_received,
            latencies_us: latencies
                .iter()
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
                .collect(),
            failsafe_events,
        }
    }

    /// Take one delivered message of `len` bytes on `channel` off the counts (a message
    /// that was not part of the flight).
    pub fn uncount_delivered(&mut self, channel: Channel, len: usize) {
        if let Some(i) = CHANNELS.iter().position(|&c| c == channel) {
            self.messages_delivered[i] = self.messages_delivered[i].saturating_sub(1);
            self.bytes_delivered[i] = self.bytes_delivered[i].saturating_sub(len as u64);
        }
    }

    fn latency(&self) -> Latency {
        let mut samples: Vec<Duration> = self
            .latencies_us
            .iter()
            .map(|&us| Duration::from_micros(us))
            .collect();
        Latency::of(&mut samples)
    }
}

/// Everything a report is made of: both ends' summaries, what the remote's application saw,
/// and the radio's totals.
#[derive(Debug, Clone, Copy)]
pub struct Flight<'a> {
    /// The seed of every random choice.
    pub seed: u64,
    /// Seconds flown.
    pub duration_s: f64,
    /// The aircraft's summary.
    pub aircraft: &'a EndSummary,
    /// The remote's summary.
    pub remote: &'a EndSummary,
    /// What the remote's application counted.
    pub remote_app: &'a RemoteStats,
    /// Was the storage unlocked on the remote?
    pub storage_unlocked: bool,
    /// Datagrams the radio carried and lost (both directions).
    pub radio: (u64, u64),
    /// Real sockets in real time, rather than the simulated radio.
    pub real_time: bool,
}

fn channel(from: &EndSummary, to: &EndSummary, c: usize, seconds: f64) -> ChannelReport {
    let (sent, delivered) = (from.messages_sent[c], to.messages_delivered[c]);
    ChannelReport {
        sent,
        delivered,
        lost: sent.saturating_sub(delivered),
        goodput_mbps: to.bytes_delivered[c] as f64 * 8.0 / seconds.max(1e-9) / 1e6,
        bytes: to.bytes_delivered[c],
        corrupted: to.corrupted[c],
        latency: None,
    }
}

impl Report {
    /// The report of a flight.
    pub fn assemble(flight: &Flight<'_>) -> Report {
        let (a, r, seconds) = (flight.aircraft, flight.remote, flight.duration_s);
        let mut control = channel(r, a, 0, seconds);
        control.latency = Some(a.latency());
        let mut telemetry = channel(a, r, 1, seconds);
        telemetry.latency = Some(r.latency());
        let video = channel(a, r, 2, seconds);
        let (up, down) = (channel(r, a, 3, seconds), channel(a, r, 3, seconds));
        let storage = ChannelReport {
            sent: up.sent + down.sent,
            delivered: up.delivered + down.delivered,
            lost: up.lost + down.lost,
            goodput_mbps: up.goodput_mbps + down.goodput_mbps,
            bytes: up.bytes + down.bytes,
            corrupted: up.corrupted + down.corrupted,
            latency: None,
        };
        let (ar, rr) = (&a.rejected, &r.rejected);
        let app = flight.remote_app;
        let paired = app.connected_at.is_some();
        Report {
            seed: flight.seed,
            duration_s: seconds,
            paired,
            handshake_ms: app
                .connected_at
                .map(|t| t.saturating_since(rotorlink::Timestamp::ZERO).as_secs_f64() * 1e3),
            refusal: if paired { None } else { app.refusal.clone() },
            storage_unlocked: flight.storage_unlocked,
            channels: Channels {
                control,
                telemetry,
                video,
                storage,
            },
            video_frames: VideoFrames {
                complete: video.delivered,
                incomplete: video.sent.saturating_sub(video.delivered),
            },
            corrupted_payloads: [control, telemetry, video, storage]
                .iter()
                .map(|c| c.corrupted)
                .sum(),
            storage_bytes: app.log_bytes,
            flight_log_complete: app.log_complete,
            rekeys: a.rekeys_sent + r.rekeys_sent,
            reconnects: app.reconnects,
            rejected: Rejected {
                auth: ar.auth + rr.auth,
                replay: ar.replay + rr.replay,
                malformed: ar.malformed + rr.malformed,
                other: ar.other + rr.other,
            },
            failsafe_events: a.failsafe_events,
            storage_retransmits: a.storage_retransmits + r.storage_retransmits,
            radio_sent: flight.radio.0,
            radio_lost: flight.radio.1,
            real_time: flight.real_time,
        }
    }
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
            "rotorlink flight  seed {}  {:.1} s {}",
            self.seed,
            self.duration_s,
            if self.real_time {
                "over UDP"
            } else {
                "simulated"
            }
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
            "{:<10} {:>8} {:>9} {:>7} {:>7} {:>9}   {:>7} {:>7} {:>7}",
            "channel",
            "sent",
            "delivered",
            "lost",
            "corrupt",
            "Mbit/s",
            "p50 ms",
            "p99 ms",
            "max ms"
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
                "{:<10} {:>8} {:>9} {:>7} {:>7} {:>9.3}   {}",
                name,
                ch.sent,
                ch.delivered,
                ch.lost,
                ch.corrupted,
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
            "{}{} datagrams, {} lost",
            if self.real_time {
                "udp              "
            } else {
                "radio            "
            },
            self.radio_sent,
            self.radio_lost
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupted_messages_are_reported_per_channel_and_in_total() {
        let aircraft = EndSummary {
            messages_sent: [0, 100, 30, 20],
            corrupted: [1, 0, 0, 2],
            ..EndSummary::default()
        };
        let remote = EndSummary {
            messages_sent: [200, 0, 0, 1],
            corrupted: [0, 3, 4, 5],
            ..EndSummary::default()
        };
        let r = Report::assemble(&Flight {
            seed: 1,
            duration_s: 1.0,
            aircraft: &aircraft,
            remote: &remote,
            remote_app: &RemoteStats::default(),
            storage_unlocked: true,
            radio: (0, 0),
            real_time: false,
        });
        let c = &r.channels;
        let corrupted = [c.control, c.telemetry, c.video, c.storage].map(|c| c.corrupted);
        assert_eq!(corrupted, [1, 3, 4, 7]);
        assert_eq!(r.corrupted_payloads, 15);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["channels"]["storage"]["corrupted"], 7);
        assert_eq!(json["corrupted_payloads"], 15);
        let table = r.to_string();
        assert!(table.contains(" corrupt "), "{table}");
        let telemetry = table.lines().find(|l| l.starts_with("telemetry")).unwrap();
        let columns: Vec<&str> = telemetry.split_whitespace().collect();
        assert_eq!(columns[1..5], ["100", "0", "100", "3"], "{table}");
    }
}
