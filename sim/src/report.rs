//! What a simulated flight measured, as a table for people and as JSON for tools.
//!
//! A counter only the aircraft knows (what it sent, what it received, its drops) reaches a
//! remote over real sockets in the aircraft's end-of-flight summary. When that exchange
//! fails (the link died first), those counters are unknown: `None` here, `null` in the
//! JSON and `?` in the table, never zeros.

use std::fmt;
use std::time::Duration;

use rotorlink::handshake::Kind;
use rotorlink::{Channel, PathEstimate, Stats, Timestamp};
use serde::{Deserialize, Serialize};

use crate::aircraft::AircraftStats;
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

/// One channel's traffic. A count that depends on an end whose summary is missing is
/// `None` (`null`, `?`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelReport {
    /// Messages the sending application queued.
    pub sent: Option<u64>,
    /// Messages the receiving application got.
    pub delivered: Option<u64>,
    /// Messages that never arrived (`sent - delivered - superseded`; for storage, still in
    /// flight).
    pub lost: Option<u64>,
    /// Stick commands that arrived after a newer one had been delivered and were dropped
    /// as stale (the radio reordered them): they reached the aircraft and are not lost. 0
    /// on the other channels.
    #[serde(default)]
    pub superseded: Option<u64>,
    /// Messages the sending application could not queue (the link's queue was full, or it
    /// was closed) and dropped: real-time telemetry and video, stick commands. Storage
    /// waits for room instead: 0.
    pub refused: Option<u64>,
    /// Payload bytes delivered per second of flight, in Mbit/s.
    pub goodput_mbps: Option<f64>,
    /// Payload bytes delivered.
    pub bytes: Option<u64>,
    /// Delivered messages whose bytes were not what the sending application generated (must
    /// be 0: the AEAD drops every corrupted frame). Every byte of every stick command and
    /// telemetry message is checked, video frames by their contents, files by their
    /// SHA-256, storage messages by their format.
    pub corrupted: Option<u64>,
    /// One-way latency from `send` to delivery: control and telemetry; video frames from the
    /// aircraft handing the frame to the link (`Link::send`: the link reports nothing of
    /// when its first fragment goes out, so the time a frame waits in the link's queue is
    /// included) to its delivery whole. `null` for storage, when unknown, and for video
    /// when no frame arrived.
    pub latency: Option<Latency>,
}

/// `a + b` if both are known.
fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    a.zip(b).map(|(a, b)| a + b)
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
    /// Delivered whole and decodable, as a decoder fed in arrival order finds them: a key
    /// frame, or a delta frame after every frame since its key frame (inclusive) arrived
    /// whole (see [`crate::video`]). At most `complete`.
    #[serde(default)]
    pub decodable: u64,
    /// Sent but never delivered (a fragment was lost).
    pub incomplete: Option<u64>,
    /// The key frames the remote asked for when the picture broke.
    #[serde(default)]
    pub key_frame_requests: KeyFrameRequests,
}

/// Forward error correction of the video (Reed-Solomon parity fragments, see
/// `rotorlink::channel::fec`): what it cost the aircraft and what it saved the remote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoFecReport {
    /// Parity fragments the aircraft sent (`null` when its summary is missing).
    pub parity_sent: Option<u64>,
    /// Bytes of parity those fragments carried (their shards, headers not counted).
    pub parity_bytes: Option<u64>,
    /// Bytes of video payload (the frames, without parity) the aircraft's link took.
    pub payload_bytes: Option<u64>,
    /// `parity_bytes` as a percentage of the video payload the aircraft's link took (0 when
    /// neither was sent; `null` when the aircraft's summary is missing).
    pub overhead_percent: Option<f64>,
    /// Frames the remote got whole only thanks to parity (some of their data fragments
    /// were lost and rebuilt); counted among `video_frames.complete`.
    pub frames_recovered: u64,
    /// Data fragments the remote rebuilt from parity.
    pub fragments_recovered: u64,
}

impl VideoFecReport {
    fn of(aircraft: Option<&EndSummary>, remote: &EndSummary) -> Self {
        let payload = aircraft.map(|a| a.encoder.map_or(0, |e| e.bytes_sent));
        let parity_bytes = aircraft.map(|a| a.video_parity_bytes);
        VideoFecReport {
            parity_sent: aircraft.map(|a| a.video_parity_sent),
            parity_bytes,
            payload_bytes: payload,
            overhead_percent: parity_bytes.zip(payload).and_then(|(p, d)| match (p, d) {
                (0, 0) => Some(0.0),
                (_, 0) => None,
                (p, d) => Some(p as f64 * 100.0 / d as f64),
            }),
            frames_recovered: remote.video_recovered,
            fragments_recovered: remote.video_fragments_recovered,
        }
    }
}

/// Key frames the remote asked the aircraft for (see [`crate::remote`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyFrameRequests {
    /// Requests the remote sent.
    pub sent: u64,
    /// Requests the aircraft's encoder answered with a key frame (`null` when the aircraft's
    /// summary is missing).
    pub honoured: Option<u64>,
    /// From a request to the next key frame delivered, median, in milliseconds (`null` when
    /// no key frame followed a request).
    pub wait_p50_ms: Option<f64>,
    /// The same, worst.
    pub wait_max_ms: Option<f64>,
}

impl KeyFrameRequests {
    fn of(app: &RemoteStats, encoder: Option<EncoderSummary>) -> Self {
        let mut waits = app.key_waits.clone();
        let wait = (!waits.is_empty()).then(|| Latency::of(&mut waits));
        KeyFrameRequests {
            sent: app.key_requests.len() as u64,
            honoured: encoder.map(|e| e.key_requests_honoured),
            wait_p50_ms: wait.map(|w| w.p50_ms),
            wait_max_ms: wait.map(|w| w.max_ms),
        }
    }
}

/// The download of the chosen file from the onboard storage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DownloadReport {
    /// The file (as the aircraft lists it; as the pilot named it if it never did).
    pub file: String,
    /// Its size, from the aircraft's list (`null` if the list never arrived).
    pub size: Option<u64>,
    /// Bytes received, in order from the start.
    pub received: u64,
    /// `received / size`, 0 to 1 (`null` while the size is unknown).
    pub progress: Option<f64>,
    /// True once every byte arrived and their SHA-256 matched the aircraft's list.
    pub verified: bool,
    /// Times the download was asked again after a new session reset the storage channel.
    pub resumes: u64,
    /// The offsets it was asked again from (the bytes held then).
    pub resumed_at: Vec<u64>,
    /// Bytes received per second from the first request to the latest bytes, in Mbit/s
    /// (`null` before any byte arrived).
    pub goodput_mbps: Option<f64>,
    /// Why it cannot be downloaded, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DownloadReport {
    /// The report of `app`'s download.
    pub fn of(app: &RemoteStats) -> Self {
        let d = &app.download;
        let goodput_mbps = match (d.requested_at, d.last_data_at) {
            (Some(from), Some(to)) if to > from => {
                Some(d.received as f64 * 8.0 / to.saturating_since(from).as_secs_f64() / 1e6)
            }
            _ => None,
        };
        DownloadReport {
            file: d
                .file
                .as_ref()
                .map_or_else(|| d.wanted.clone(), |f| f.name.clone()),
            size: d.file.as_ref().map(|f| f.size),
            received: d.received,
            progress: d.file.as_ref().map(|f| match f.size {
                0 => 1.0,
                size => d.received as f64 / size as f64,
            }),
            verified: d.verified,
            resumes: d.resumed_at.len() as u64,
            resumed_at: d.resumed_at.clone(),
            goodput_mbps,
            error: d.error.clone(),
        }
    }
}

/// What the aircraft's link estimated of the downlink (aircraft to remote) at the end of the
/// flight, from the remote's feedback. Each figure is `null` when unknown: no estimate yet
/// (no rate sample), or the aircraft's summary is missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PathReport {
    /// The bottleneck rate, Mbit/s: the capacity the link measured.
    pub capacity_mbps: Option<f64>,
    /// Fraction of frames lost lately, random and congestive alike, 0 to 1.
    pub loss: Option<f64>,
    /// The smallest round trip seen lately, in milliseconds.
    pub min_rtt_ms: Option<f64>,
    /// The smoothed round trip, in milliseconds.
    pub srtt_ms: Option<f64>,
    /// Times the aircraft found the radio slower than its estimate and started again from
    /// what the radio carried (`rotorlink::PathEstimate::slowdowns`).
    pub slowdowns: Option<u64>,
}

/// The aircraft's video encoder, which follows the link's video budget below the camera's
/// bitrate. `null` when unknown (no frame encoded, or the aircraft's summary is missing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BitrateReport {
    /// The most the camera asks for, Mbit/s.
    pub camera_mbps: Option<f64>,
    /// The encoder's mean bitrate over the frames of the flight, Mbit/s.
    pub mean_mbps: Option<f64>,
    /// The encoder's bitrate for the last frame, Mbit/s.
    pub last_mbps: Option<f64>,
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
    /// Which handshake made that session: `"pair"` (with the code, OPAQUE), `"session"`
    /// (a bonded remote, Noise KK, no code) or `"resume"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake: Option<String>,
    /// Why it did not pair, if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Was the onboard storage unlocked (the code proven again in-session)?
    pub storage_unlocked: bool,
    /// Per-channel traffic.
    pub channels: Channels,
    /// Video frames by outcome.
    pub video_frames: VideoFrames,
    /// The video's forward error correction.
    #[serde(default)]
    pub video_fec: VideoFecReport,
    /// The downlink as the aircraft's link estimated it at the end.
    pub downlink_estimate: PathReport,
    /// The bitrate the aircraft's encoder chose.
    pub video_bitrate: BitrateReport,
    /// Video frames the aircraft's link dropped before sending: they would have waited too
    /// long for the radio (also counted as lost video).
    pub video_dropped_at_sender: Option<u64>,
    /// Delivered messages whose contents differ from what was sent, all channels (the sum
    /// of their `corrupted`; must be 0: the AEAD drops every corrupted frame).
    pub corrupted_payloads: Option<u64>,
    /// The download of the chosen file.
    pub download: DownloadReport,
    /// Key updates, both directions.
    pub rekeys: Option<u64>,
    /// Reconnections (resumes, and new sessions) after link loss.
    pub reconnects: u64,
    /// Dropped frames by reason, both ends.
    pub rejected: Option<Rejected>,
    /// Return-to-home failsafes the aircraft raised.
    pub failsafe_events: Option<u64>,
    /// Storage segments retransmitted, both sides.
    pub storage_retransmits: Option<u64>,
    /// Storage repair frames sent at transfers' tails (PROTOCOL.md 12.4), both sides.
    pub storage_repairs: Option<u64>,
    /// Storage segments rebuilt from repair frames, both sides.
    pub storage_repaired: Option<u64>,
    /// Datagrams the radio carried (both directions).
    pub radio_sent: Option<u64>,
    /// Datagrams the radio lost (both directions): on the air in the simulator (see
    /// `radio_queue_dropped` for its queue), all that did not arrive over UDP.
    pub radio_lost: Option<u64>,
    /// Datagrams the simulated radio's bottleneck queue dropped because it was full (both
    /// directions): the link sent faster than the radio carries. Absent over UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radio_queue_dropped: Option<u64>,
    /// Why the aircraft's end-of-flight summary is missing, if it is (its counters are then
    /// unknown). Over real sockets only: in the simulator both ends are at hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_summary: Option<String>,
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
    /// Messages this end's application could not queue and dropped, per channel.
    #[serde(default)]
    pub refused: [u64; 4],
    /// Stick commands this end's link dropped on arrival because a newer one had been
    /// delivered (`Stats::dropped_stale_control`).
    #[serde(default)]
    pub control_superseded: u64,
    /// Frames this end dropped, by reason.
    pub rejected: Rejected,
    /// Key updates this end started.
    pub rekeys_sent: u64,
    /// Storage segments this end retransmitted.
    pub storage_retransmits: u64,
    /// Storage repair frames this end sent.
    pub storage_repairs: u64,
    /// Storage segments this end rebuilt from repair frames.
    pub storage_repaired: u64,
    /// Datagrams this end sent.
    pub datagrams_sent: u64,
    /// Datagrams this end received.
    pub datagrams_received: u64,
    /// One-way latencies, in microseconds, of the stamped messages this end received
    /// (stick commands on the aircraft, telemetry on the remote).
    pub latencies_us: Vec<u64>,
    /// Failsafes this end raised (the aircraft's return to home).
    pub failsafe_events: u64,
    /// Video messages this end's link dropped before sending any of them (they would have
    /// waited too long).
    #[serde(default)]
    pub video_dropped_at_sender: u64,
    /// Video parity fragments this end sent.
    #[serde(default)]
    pub video_parity_sent: u64,
    /// Bytes of parity those fragments carried (shards, headers not counted).
    #[serde(default)]
    pub video_parity_bytes: u64,
    /// Video messages this end received whole only thanks to parity.
    #[serde(default)]
    pub video_recovered: u64,
    /// Video data fragments this end rebuilt from parity.
    #[serde(default)]
    pub video_fragments_recovered: u64,
    /// This end's estimate of the path to the other end (see [`EndSummary::with_path`]).
    #[serde(default)]
    pub path: Option<PathSummary>,
    /// This end's video encoder, if it sends video (see [`EndSummary::with_encoder`]).
    #[serde(default)]
    pub encoder: Option<EncoderSummary>,
}

/// An end's estimate of the path to the other end ([`rotorlink::PathEstimate`]), made once
/// it has a rate sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PathSummary {
    /// The bottleneck rate, bits per second.
    pub bottleneck_bps: u64,
    /// Fraction of frames lost lately, 0 to 1.
    pub loss: f64,
    /// The smallest round trip seen lately, microseconds.
    pub min_rtt_us: Option<u64>,
    /// The smoothed round trip, microseconds.
    pub srtt_us: Option<u64>,
    /// Times the model found the radio slower than its estimate.
    #[serde(default)]
    pub slowdowns: u64,
}

/// A video encoder's bitrates, bits per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EncoderSummary {
    /// The most the camera asks for.
    pub camera_bps: u64,
    /// The mean over the frames encoded (`None` before the first).
    pub mean_bps: Option<u64>,
    /// The bitrate of the last frame (`None` before the first).
    pub last_bps: Option<u64>,
    /// Key-frame requests the encoder answered with a key frame.
    #[serde(default)]
    pub key_requests_honoured: u64,
    /// Payload bytes of the frames the link took (parity not counted).
    #[serde(default)]
    pub bytes_sent: u64,
}

impl EndSummary {
    /// The summary of a link's `stats`, the `latencies` its application measured, the
    /// messages it found `corrupted` and those the link `refused` (per channel, in the
    /// order of [`EndSummary::messages_sent`]) and its `failsafe_events`.
    pub fn of(
        stats: &Stats,
        latencies: &[Duration],
        corrupted: [u64; 4],
        refused: [u64; 4],
        failsafe_events: u64,
    ) -> Self {
        let per_channel =
            |f: fn(&rotorlink::ChannelStats) -> u64| CHANNELS.map(|c| f(stats.channel(c)));
        EndSummary {
            messages_sent: per_channel(|c| c.messages_sent),
            messages_delivered: per_channel(|c| c.messages_delivered),
            bytes_delivered: per_channel(|c| c.bytes_delivered),
            corrupted,
            refused,
            control_superseded: stats.dropped_stale_control,
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
            storage_repairs: stats.storage_repairs_sent,
            storage_repaired: stats.storage_repaired,
            datagrams_sent: stats.datagrams_sent,
            datagrams_received: stats.datagrams_received,
            latencies_us: latencies
                .iter()
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
                .collect(),
            failsafe_events,
            video_dropped_at_sender: stats.video_dropped_at_sender,
            video_parity_sent: stats.video_parity_sent,
            video_parity_bytes: stats.video_parity_bytes,
            video_recovered: stats.video_recovered,
            video_fragments_recovered: stats.video_fragments_recovered,
            path: None,
            encoder: None,
        }
    }

    /// With the link's `estimate` of the path, if it has measured a rate yet (before that
    /// the figures are not known, and stay `None`).
    pub fn with_path(mut self, estimate: PathEstimate) -> Self {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.path = (estimate.bottleneck_bps > 0).then(|| PathSummary {
            bottleneck_bps: estimate.bottleneck_bps,
            loss: estimate.loss,
            min_rtt_us: estimate.min_rtt.map(micros),
            srtt_us: estimate.srtt.map(micros),
            slowdowns: estimate.slowdowns,
        });
        self
    }

    /// With the bitrates of the video encoder whose camera asks for `camera_bps` and which
    /// counted `stats`.
    pub fn with_encoder(mut self, camera_bps: u64, stats: &AircraftStats) -> Self {
        self.encoder = Some(EncoderSummary {
            camera_bps,
            mean_bps: stats.video_bitrate_mean(),
            last_bps: stats.video_bitrate_last(),
            key_requests_honoured: stats.key_requests_honoured.len() as u64,
            bytes_sent: stats.video_bytes_sent,
        });
        self
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
    /// The aircraft's summary; `None` if it could not be fetched (its counters are then
    /// unknown in the report).
    pub aircraft: Option<&'a EndSummary>,
    /// The remote's summary.
    pub remote: &'a EndSummary,
    /// What the remote's application counted.
    pub remote_app: &'a RemoteStats,
    /// Was the storage unlocked on the remote?
    pub storage_unlocked: bool,
    /// Datagrams the radio carried and lost (both directions), if known.
    pub radio: Option<(u64, u64)>,
    /// Datagrams the simulated radio's full queue dropped (both directions); `None` over
    /// UDP.
    pub radio_queue_dropped: Option<u64>,
    /// Real sockets in real time, rather than the simulated radio.
    pub real_time: bool,
}

/// Channel `c` from `from`'s application to `to`'s (either unknown).
fn channel(
    from: Option<&EndSummary>,
    to: Option<&EndSummary>,
    c: usize,
    seconds: f64,
) -> ChannelReport {
    let sent = from.map(|f| f.messages_sent[c]);
    let delivered = to.map(|t| t.messages_delivered[c]);
    let bytes = to.map(|t| t.bytes_delivered[c]);
    let control = CHANNELS[c] == Channel::Control;
    let superseded = to.map(|t| if control { t.control_superseded } else { 0 });
    ChannelReport {
        sent,
        delivered,
        lost: sent
            .zip(delivered)
            .zip(superseded)
            .map(|((s, d), x)| s.saturating_sub(d).saturating_sub(x)),
        superseded,
        refused: from.map(|f| f.refused[c]),
        goodput_mbps: bytes.map(|b| b as f64 * 8.0 / seconds.max(1e-9) / 1e6),
        bytes,
        corrupted: to.map(|t| t.corrupted[c]),
        latency: None,
    }
}

impl Report {
    /// The report of a flight.
    pub fn assemble(flight: &Flight<'_>) -> Report {
        let (a, r, seconds) = (flight.aircraft, flight.remote, flight.duration_s);
        let mut control = channel(Some(r), a, 0, seconds);
        control.latency = a.map(EndSummary::latency);
        let mut telemetry = channel(a, Some(r), 1, seconds);
        telemetry.latency = Some(r.latency());
        let app = flight.remote_app;
        let mut video = channel(a, Some(r), 2, seconds);
        let mut frame_latencies = app.video_latencies.clone();
        video.latency = (!frame_latencies.is_empty()).then(|| Latency::of(&mut frame_latencies));
        let (up, down) = (
            channel(Some(r), a, 3, seconds),
            channel(a, Some(r), 3, seconds),
        );
        let storage = ChannelReport {
            sent: add(up.sent, down.sent),
            delivered: add(up.delivered, down.delivered),
            lost: add(up.lost, down.lost),
            superseded: add(up.superseded, down.superseded),
            refused: add(up.refused, down.refused),
            goodput_mbps: up.goodput_mbps.zip(down.goodput_mbps).map(|(u, d)| u + d),
            bytes: add(up.bytes, down.bytes),
            corrupted: add(up.corrupted, down.corrupted),
            latency: None,
        };
        let paired = app.connected_at.is_some();
        let both = |f: fn(&EndSummary) -> u64| a.map(|a| f(a) + f(r));
        Report {
            seed: flight.seed,
            duration_s: seconds,
            paired,
            handshake_ms: app
                .connected_at
                .map(|t| t.saturating_since(Timestamp::ZERO).as_secs_f64() * 1e3),
            handshake: app.first_handshake.map(|kind| {
                match kind {
                    Kind::Pair => "pair",
                    Kind::Session => "session",
                    Kind::Resume => "resume",
                }
                .to_string()
            }),
            refusal: if paired { None } else { app.refusal.clone() },
            storage_unlocked: flight.storage_unlocked,
            channels: Channels {
                control,
                telemetry,
                video,
                storage,
            },
            video_frames: VideoFrames {
                complete: video.delivered.unwrap_or(0),
                decodable: app.video_frames_decodable,
                incomplete: video.lost,
                key_frame_requests: KeyFrameRequests::of(app, a.and_then(|a| a.encoder)),
            },
            video_fec: VideoFecReport::of(a, r),
            downlink_estimate: PathReport::of(a.and_then(|a| a.path)),
            video_bitrate: BitrateReport::of(a.and_then(|a| a.encoder)),
            video_dropped_at_sender: a.map(|a| a.video_dropped_at_sender),
            corrupted_payloads: [control, telemetry, video, storage]
                .iter()
                .try_fold(0, |sum, c| Some(sum + c.corrupted?)),
            download: DownloadReport::of(app),
            rekeys: both(|e| e.rekeys_sent),
            reconnects: app.reconnects,
            rejected: a.map(|a| {
                let (ar, rr) = (&a.rejected, &r.rejected);
                Rejected {
                    auth: ar.auth + rr.auth,
                    replay: ar.replay + rr.replay,
                    malformed: ar.malformed + rr.malformed,
                    other: ar.other + rr.other,
                }
            }),
            failsafe_events: a.map(|a| a.failsafe_events),
            storage_retransmits: both(|e| e.storage_retransmits),
            storage_repairs: both(|e| e.storage_repairs),
            storage_repaired: both(|e| e.storage_repaired),
            radio_sent: flight.radio.map(|(sent, _)| sent),
            radio_lost: flight.radio.map(|(_, lost)| lost),
            radio_queue_dropped: flight.radio_queue_dropped,
            missing_summary: None,
            real_time: flight.real_time,
        }
    }
}

/// Bits per second in Mbit/s.
fn mbps(bps: u64) -> f64 {
    bps as f64 / 1e6
}

impl PathReport {
    fn of(path: Option<PathSummary>) -> Self {
        let ms = |us: u64| us as f64 / 1e3;
        PathReport {
            capacity_mbps: path.map(|p| mbps(p.bottleneck_bps)),
            loss: path.map(|p| p.loss),
            min_rtt_ms: path.and_then(|p| p.min_rtt_us).map(ms),
            srtt_ms: path.and_then(|p| p.srtt_us).map(ms),
            slowdowns: path.map(|p| p.slowdowns),
        }
    }
}

impl BitrateReport {
    fn of(encoder: Option<EncoderSummary>) -> Self {
        BitrateReport {
            camera_mbps: encoder.map(|e| mbps(e.camera_bps)),
            mean_mbps: encoder.and_then(|e| e.mean_bps).map(mbps),
            last_mbps: encoder.and_then(|e| e.last_bps).map(mbps),
        }
    }
}

/// A figure for people with `digits` decimals and a unit, or `?` when unknown.
fn fig(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map_or_else(|| "?".to_string(), |v| format!("{v:.digits$}{unit}"))
}

/// A count for people: the number, or `?` when unknown.
fn n<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "?".to_string(), |v| v.to_string())
}

/// Latency columns: blank where nothing is measured, `?` where it is unknown.
fn ms(v: Option<Latency>, measured: bool) -> String {
    match v {
        Some(l) => format!("{:>7.1} {:>7.1} {:>7.1}", l.p50_ms, l.p99_ms, l.max_ms),
        None if measured => format!("{:>7} {:>7} {:>7}", "?", "?", "?"),
        None => String::new(),
    }
}

/// A size for people: `1.5 MiB`, `64.0 KiB`, `300 B`.
fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", b / f64::from(1 << 20))
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

impl fmt::Display for DownloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        let Some(total) = self.size else {
            return f.write_str(self.error.as_deref().unwrap_or("no list from the aircraft"));
        };
        let percent = if total == 0 {
            100.0
        } else {
            self.received as f64 * 100.0 / total as f64
        };
        write!(
            f,
            "{} of {} ({percent:.0}%), ",
            size(self.received),
            size(total)
        )?;
        if self.verified {
            f.write_str("SHA-256 verified")?;
        } else if self.received == total {
            f.write_str("SHA-256 MISMATCH")?;
        } else {
            f.write_str("incomplete")?;
        }
        match self.resumed_at.as_slice() {
            [] => f.write_str(", no resume")?,
            [at] => write!(f, ", resumed once (at {})", size(*at))?,
            all => write!(f, ", resumed {} times", all.len())?,
        }
        if let Some(g) = self.goodput_mbps {
            write!(f, ", {g:.3} Mbit/s")?;
        }
        if let Some(e) = &self.error {
            write!(f, " ({e})")?;
        }
        Ok(())
    }
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
                "{} in {t:.1} ms ({}); storage {}",
                match self.handshake.as_deref() {
                    Some("session") => "connected with its bond",
                    Some("resume") => "resumed",
                    _ => "paired with the code",
                },
                match self.handshake.as_deref() {
                    Some("session") => "Noise KK, no code",
                    Some("resume") => "Noise NN from the resumption secret",
                    _ => "OPAQUE",
                },
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
            "{:<10} {:>8} {:>9} {:>7} {:>7} {:>7} {:>9}   {:>7} {:>7} {:>7}",
            "channel",
            "sent",
            "delivered",
            "lost",
            "corrupt",
            "refused",
            "Mbit/s",
            "p50 ms",
            "p99 ms",
            "max ms"
        )?;
        let c = &self.channels;
        for (name, ch, measured) in [
            ("control", c.control, true),
            ("telemetry", c.telemetry, true),
            // Blank for video when no frame arrived: nothing to measure, not unknown.
            ("video", c.video, false),
            ("storage", c.storage, false),
        ] {
            writeln!(
                f,
                "{:<10} {:>8} {:>9} {:>7} {:>7} {:>7} {:>9}   {}",
                name,
                n(ch.sent),
                n(ch.delivered),
                n(ch.lost),
                n(ch.corrupted),
                n(ch.refused),
                ch.goodput_mbps
                    .map_or_else(|| "?".to_string(), |g| format!("{g:.3}")),
                ms(ch.latency, measured)
            )?;
        }
        if let Some(stale) = c.control.superseded.filter(|&n| n > 0) {
            writeln!(
                f,
                "(control: {stale} more arrived after a newer stick command and were dropped as \
                 stale; not counted lost)"
            )?;
        }
        writeln!(f)?;
        let v = &self.video_frames;
        writeln!(
            f,
            "video frames     {} complete, {} decodable, {} incomplete",
            v.complete,
            v.decodable,
            n(v.incomplete)
        )?;
        let fec = &self.video_fec;
        writeln!(
            f,
            "video FEC        {} parity fragments ({} of the video payload), {} frames recovered ({} fragments)",
            n(fec.parity_sent),
            fig(fec.overhead_percent, 1, "%"),
            fec.frames_recovered,
            fec.fragments_recovered
        )?;
        let k = &v.key_frame_requests;
        write!(
            f,
            "key frames       {} asked for by the remote, {} honoured by the aircraft",
            k.sent,
            n(k.honoured)
        )?;
        match (k.wait_p50_ms, k.wait_max_ms) {
            (Some(p50), Some(max)) => {
                writeln!(f, "; request to key frame p50 {p50:.1} ms, max {max:.1} ms")?
            }
            _ if k.sent > 0 => writeln!(f, "; no key frame arrived after a request")?,
            _ => writeln!(f)?,
        }
        let (e, b) = (&self.downlink_estimate, &self.video_bitrate);
        writeln!(
            f,
            "downlink         capacity {} Mbit/s (the aircraft's estimate), loss {}, min RTT {} ms, {} slowdowns",
            fig(e.capacity_mbps, 2, ""),
            fig(e.loss.map(|l| l * 100.0), 1, "%"),
            fig(e.min_rtt_ms, 1, ""),
            n(e.slowdowns),
        )?;
        writeln!(
            f,
            "video bitrate    mean {} Mbit/s, last {} Mbit/s (camera {} Mbit/s), {} frames dropped at the sender",
            fig(b.mean_mbps, 2, ""),
            fig(b.last_mbps, 2, ""),
            n(b.camera_mbps),
            n(self.video_dropped_at_sender),
        )?;
        writeln!(f, "download         {}", self.download)?;
        writeln!(
            f,
            "key updates {}   reconnects {}   failsafes {}   storage retransmits {}   \
             repair frames {} (segments rebuilt {})",
            n(self.rekeys),
            self.reconnects,
            n(self.failsafe_events),
            n(self.storage_retransmits),
            n(self.storage_repairs),
            n(self.storage_repaired)
        )?;
        match &self.rejected {
            Some(r) => writeln!(
                f,
                "rejected frames  auth {}  replay {}  malformed {}  other {}",
                r.auth, r.replay, r.malformed, r.other
            )?,
            None => writeln!(f, "rejected frames  ?")?,
        }
        writeln!(
            f,
            "{}{} datagrams, {} lost",
            if self.real_time {
                "udp              "
            } else {
                "radio            "
            },
            n(self.radio_sent),
            n(self.radio_lost)
        )?;
        if let Some(dropped) = self.radio_queue_dropped {
            writeln!(
                f,
                "                 {dropped} dropped by the radio's full queue"
            )?;
        }
        if self.radio_sent.is_none() {
            writeln!(
                f,
                "? = unknown: the aircraft's end-of-flight summary did not arrive{}",
                self.missing_summary
                    .as_deref()
                    .map_or_else(String::new, |why| format!(" ({why})"))
            )?;
        } else if self.downlink_estimate.capacity_mbps.is_none()
            || self.video_bitrate.mean_mbps.is_none()
        {
            writeln!(
                f,
                "? = not measured: no feedback from the remote yet, or no video frame"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight<'a>(
        aircraft: Option<&'a EndSummary>,
        remote: &'a EndSummary,
        app: &'a RemoteStats,
    ) -> Flight<'a> {
        Flight {
            seed: 1,
            duration_s: 1.0,
            aircraft,
            remote,
            remote_app: app,
            storage_unlocked: true,
            radio: aircraft.map(|_| (0, 0)),
            radio_queue_dropped: None,
            real_time: aircraft.is_none(),
        }
    }

    /// What an encoder that made one frame at each of `bitrates` (ms, bit/s) counted.
    fn encoded(bitrates: &[(u64, u64)]) -> AircraftStats {
        AircraftStats {
            video_frames_sent: bitrates.len() as u64,
            video_bitrates: bitrates
                .iter()
                .map(|&(ms, bps)| (Timestamp::from_millis(ms), bps))
                .collect(),
            video_bitrate_sum: bitrates.iter().map(|&(_, bps)| bps).sum(),
            ..AircraftStats::default()
        }
    }

    /// The aircraft's summary arrived, but its link had no rate sample yet and its camera
    /// made no frame: those figures are unknown, not zero.
    #[test]
    fn figures_not_measured_during_the_flight_are_null_not_zero() {
        let estimate = PathEstimate {
            bottleneck_bps: 0,
            pacing_bps: 4_000_000,
            min_rtt: None,
            srtt: None,
            loss: 0.0,
            loss_burst: 1.0,
            slowdowns: 0,
        };
        let aircraft = EndSummary::default()
            .with_path(estimate)
            .with_encoder(20_000_000, &AircraftStats::default());
        assert_eq!(aircraft.path, None);
        let remote = EndSummary::default();
        let app = RemoteStats::default();
        let r = Report::assemble(&flight(Some(&aircraft), &remote, &app));
        assert_eq!(r.downlink_estimate, PathReport::default());
        assert_eq!(r.video_bitrate.camera_mbps, Some(20.0));
        assert_eq!(
            (r.video_bitrate.mean_mbps, r.video_bitrate.last_mbps),
            (None, None)
        );
        assert_eq!(r.video_dropped_at_sender, Some(0));
        assert_eq!(r.download.progress, None, "no list: the size is unknown");
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "capacity_mbps",
            "loss",
            "min_rtt_ms",
            "srtt_ms",
            "slowdowns",
        ] {
            assert!(json["downlink_estimate"][key].is_null(), "{key}: {json}");
        }
        assert!(json["video_bitrate"]["mean_mbps"].is_null(), "{json}");
        let table = r.to_string();
        assert!(
            table.contains(
                "capacity ? Mbit/s (the aircraft's estimate), loss ?, min RTT ? ms, ? slowdowns"
            ),
            "{table}"
        );
        assert!(table.contains("mean ? Mbit/s, last ? Mbit/s (camera 20 Mbit/s), 0 frames"));
        assert!(table.contains("? = not measured"), "{table}");
    }

    #[test]
    fn corrupted_messages_are_reported_per_channel_and_in_total() {
        let aircraft = EndSummary {
            messages_sent: [0, 100, 30, 20],
            corrupted: [1, 0, 0, 2],
            refused: [0, 6, 7, 0],
            video_dropped_at_sender: 3,
            ..EndSummary::default()
        }
        .with_encoder(20_000_000, &encoded(&[(0, 20_000_000), (33, 8_000_000)]));
        let aircraft = EndSummary {
            path: Some(PathSummary {
                bottleneck_bps: 9_870_000,
                loss: 0.021,
                min_rtt_us: Some(10_400),
                srtt_us: Some(12_000),
                slowdowns: 3,
            }),
            ..aircraft
        };
        let remote = EndSummary {
            messages_sent: [200, 0, 0, 1],
            corrupted: [0, 3, 4, 5],
            ..EndSummary::default()
        };
        let app = RemoteStats::default();
        let r = Report::assemble(&flight(Some(&aircraft), &remote, &app));
        let c = &r.channels;
        let corrupted = [c.control, c.telemetry, c.video, c.storage].map(|c| c.corrupted);
        assert_eq!(corrupted, [1, 3, 4, 7].map(Some));
        assert_eq!(r.corrupted_payloads, Some(15));
        assert_eq!((c.telemetry.refused, c.video.refused), (Some(6), Some(7)));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["channels"]["storage"]["corrupted"], 7);
        assert_eq!(json["corrupted_payloads"], 15);
        assert_eq!(json["downlink_estimate"]["slowdowns"], 3);
        let table = r.to_string();
        assert!(table.contains(" corrupt "), "{table}");
        assert!(!table.contains('?'), "{table}");
        assert!(
            table.contains(
                "downlink         capacity 9.87 Mbit/s (the aircraft's estimate), loss 2.1%, min RTT 10.4 ms, 3 slowdowns"
            ),
            "{table}"
        );
        assert!(
            table.contains("video bitrate    mean 14.00 Mbit/s, last 8.00 Mbit/s (camera 20 Mbit/s), 3 frames dropped at the sender"),
            "{table}"
        );
        assert_eq!(json["downlink_estimate"]["capacity_mbps"], 9.87);
        assert_eq!(json["downlink_estimate"]["min_rtt_ms"], 10.4);
        assert_eq!(json["video_bitrate"]["mean_mbps"], 14.0);
        assert_eq!(json["video_bitrate"]["last_mbps"], 8.0);
        assert_eq!(json["video_dropped_at_sender"], 3);
        let telemetry = table.lines().find(|l| l.starts_with("telemetry")).unwrap();
        let columns: Vec<&str> = telemetry.split_whitespace().collect();
        assert_eq!(columns[1..6], ["100", "0", "100", "3", "6"], "{table}");
    }

    /// Decodable frames, key-frame requests and frame latency reach the table and the JSON.
    #[test]
    fn decodable_frames_key_frame_requests_and_frame_latency_are_reported() {
        let ms = Duration::from_millis;
        let at = Timestamp::from_millis;
        let mut encoder = encoded(&[(0, 2_000_000)]);
        encoder.key_requests_honoured = vec![(1, at(40)), (2, at(400))];
        let aircraft = EndSummary {
            messages_sent: [0, 0, 10, 0],
            ..EndSummary::default()
        }
        .with_encoder(2_000_000, &encoder);
        let remote = EndSummary {
            messages_delivered: [0, 0, 8, 0],
            ..EndSummary::default()
        };
        let app = RemoteStats {
            video_frames: 8,
            video_frames_decodable: 5,
            video_latencies: (1..=8).map(|i| ms(5 * i)).collect(),
            key_requests: vec![at(30), at(380), at(900)],
            key_waits: vec![ms(60), ms(25), ms(30)],
            ..RemoteStats::default()
        };
        let r = Report::assemble(&flight(Some(&aircraft), &remote, &app));
        let v = &r.video_frames;
        assert_eq!((v.complete, v.decodable, v.incomplete), (8, 5, Some(2)));
        assert_eq!(
            v.key_frame_requests,
            KeyFrameRequests {
                sent: 3,
                honoured: Some(2),
                wait_p50_ms: Some(30.0),
                wait_max_ms: Some(60.0),
            }
        );
        let latency = r.channels.video.latency.unwrap();
        assert_eq!(
            (latency.p50_ms, latency.p99_ms, latency.max_ms),
            (25.0, 40.0, 40.0)
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["video_frames"]["decodable"], 5);
        assert_eq!(json["video_frames"]["key_frame_requests"]["sent"], 3);
        assert_eq!(json["video_frames"]["key_frame_requests"]["honoured"], 2);
        assert_eq!(
            json["video_frames"]["key_frame_requests"]["wait_max_ms"],
            60.0
        );
        assert_eq!(json["channels"]["video"]["latency"]["p99_ms"], 40.0);
        let table = r.to_string();
        assert!(
            table.contains("video frames     8 complete, 5 decodable, 2 incomplete"),
            "{table}"
        );
        assert!(
            table.contains("key frames       3 asked for by the remote, 2 honoured by the aircraft; request to key frame p50 30.0 ms, max 60.0 ms"),
            "{table}"
        );
        let video = table.lines().find(|l| l.starts_with("video ")).unwrap();
        let columns: Vec<&str> = video.split_whitespace().collect();
        assert_eq!(columns[7..], ["25.0", "40.0", "40.0"], "{table}");

        // Requests that no key frame followed: said so, not a zero wait.
        let app = RemoteStats {
            key_requests: vec![at(30)],
            ..RemoteStats::default()
        };
        let r = Report::assemble(&flight(Some(&aircraft), &remote, &app));
        assert_eq!(r.video_frames.key_frame_requests.wait_p50_ms, None);
        assert_eq!(r.channels.video.latency, None, "no frame, no latency");
        assert!(
            r.to_string()
                .contains("; no key frame arrived after a request"),
            "{r}"
        );
    }

    /// What parity cost the aircraft (against the video payload its link took) and what it
    /// rebuilt at the remote reach the table and the JSON, and survive a round trip.
    #[test]
    fn video_fec_cost_and_recoveries_are_reported() {
        let mut encoder = encoded(&[(0, 20_000_000)]);
        encoder.video_bytes_sent = 2_000_000;
        let aircraft = EndSummary {
            messages_sent: [0, 0, 30, 0],
            video_parity_sent: 100,
            video_parity_bytes: 50_000,
            ..EndSummary::default()
        }
        .with_encoder(20_000_000, &encoder);
        let remote = EndSummary {
            messages_delivered: [0, 0, 30, 0],
            video_recovered: 4,
            video_fragments_recovered: 9,
            ..EndSummary::default()
        };
        let app = RemoteStats::default();
        let r = Report::assemble(&flight(Some(&aircraft), &remote, &app));
        assert_eq!(
            r.video_fec,
            VideoFecReport {
                parity_sent: Some(100),
                parity_bytes: Some(50_000),
                payload_bytes: Some(2_000_000),
                overhead_percent: Some(2.5),
                frames_recovered: 4,
                fragments_recovered: 9,
            }
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["video_fec"]["parity_sent"], 100);
        assert_eq!(json["video_fec"]["parity_bytes"], 50_000);
        assert_eq!(json["video_fec"]["overhead_percent"], 2.5);
        assert_eq!(json["video_fec"]["frames_recovered"], 4);
        assert_eq!(json["video_fec"]["fragments_recovered"], 9);
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let table = r.to_string();
        assert!(
            table.contains(
                "video FEC        100 parity fragments (2.5% of the video payload), 4 frames recovered (9 fragments)\n"
            ),
            "{table}"
        );
        // The summary the aircraft sends over UDP carries the counters, and an older one
        // without them still reads.
        let sent: EndSummary =
            serde_json::from_value(serde_json::to_value(&aircraft).unwrap()).unwrap();
        assert_eq!(sent, aircraft);
        let mut old = serde_json::to_value(&aircraft).unwrap();
        old.as_object_mut().unwrap().remove("video_parity_bytes");
        let old: EndSummary = serde_json::from_value(old).unwrap();
        assert_eq!(old.video_parity_bytes, 0);

        // No video sent: nothing spent, not a division by zero.
        let silent = EndSummary::default().with_encoder(20_000_000, &AircraftStats::default());
        let r = Report::assemble(&flight(Some(&silent), &remote, &app));
        assert_eq!(r.video_fec.overhead_percent, Some(0.0));
        assert_eq!(r.video_fec.parity_sent, Some(0));
    }

    /// The report names the handshake that made the session: pairing with the code, or a
    /// bonded remote's session without it.
    #[test]
    fn the_report_says_which_handshake_connected() {
        let remote = EndSummary::default();
        for (kind, json, line) in [
            (
                Kind::Pair,
                "pair",
                "paired with the code in 25.0 ms (OPAQUE)",
            ),
            (
                Kind::Session,
                "session",
                "connected with its bond in 25.0 ms (Noise KK, no code)",
            ),
        ] {
            let app = RemoteStats {
                connected_at: Some(Timestamp::from_millis(25)),
                first_handshake: Some(kind),
                ..RemoteStats::default()
            };
            let r = Report::assemble(&flight(None, &remote, &app));
            assert_eq!(r.handshake.as_deref(), Some(json));
            assert!(r.to_string().contains(line), "{r}");
            let back: Report = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
            assert_eq!(back.handshake, r.handshake);
        }
    }

    /// A stick command the radio delivered after a newer one is dropped as stale by the
    /// aircraft's link: it arrived, and is counted apart from the lost ones.
    #[test]
    fn stick_commands_dropped_as_stale_are_not_counted_lost() {
        let remote = EndSummary {
            messages_sent: [100, 0, 0, 0],
            ..EndSummary::default()
        };
        let aircraft = EndSummary {
            messages_delivered: [90, 0, 0, 0],
            control_superseded: 7,
            ..EndSummary::default()
        };
        let app = RemoteStats::default();
        let r = Report::assemble(&flight(Some(&aircraft), &remote, &app));
        let c = &r.channels;
        assert_eq!((c.control.lost, c.control.superseded), (Some(3), Some(7)));
        assert_eq!(c.telemetry.superseded, Some(0));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["channels"]["control"]["superseded"], 7);
        let table = r.to_string();
        assert!(
            table.contains("(control: 7 more arrived after a newer stick command"),
            "{table}"
        );
        // None: no line.
        let aircraft = EndSummary {
            control_superseded: 0,
            ..aircraft
        };
        let table = Report::assemble(&flight(Some(&aircraft), &remote, &app)).to_string();
        assert!(!table.contains("stale"), "{table}");
    }

    /// The aircraft's summary never arrived: everything it alone counted is unknown, `null`
    /// in the JSON and `?` in the table, and what the remote counted is still there.
    #[test]
    fn counters_the_aircraft_never_sent_are_null_and_question_marks_not_zeros() {
        let remote = EndSummary {
            messages_sent: [500, 0, 0, 2],
            messages_delivered: [0, 240, 80, 30],
            bytes_delivered: [0, 5760, 800_000, 1 << 20],
            corrupted: [0, 0, 0, 0],
            latencies_us: vec![6000; 240],
            ..EndSummary::default()
        };
        let app = RemoteStats {
            connected_at: Some(Timestamp::from_millis(25)),
            ..RemoteStats::default()
        };
        let r = Report::assemble(&flight(None, &remote, &app));
        let c = &r.channels;
        // Known: what the remote sent and received.
        assert_eq!(c.control.sent, Some(500));
        assert_eq!(c.telemetry.delivered, Some(240));
        assert_eq!(c.video.bytes, Some(800_000));
        assert!(c.telemetry.latency.is_some());
        // Unknown: what only the aircraft counted.
        assert_eq!(c.control.delivered, None);
        assert_eq!(c.control.lost, None);
        assert_eq!(c.control.superseded, None);
        assert_eq!(c.control.latency, None);
        assert_eq!(c.telemetry.sent, None);
        assert_eq!(c.video.refused, None);
        assert_eq!(c.storage.bytes, None);
        assert_eq!(r.video_frames.incomplete, None);
        assert_eq!(r.corrupted_payloads, None);
        assert_eq!(r.rejected, None);
        assert_eq!(r.failsafe_events, None);
        assert_eq!(r.downlink_estimate, PathReport::default());
        assert_eq!(r.video_bitrate, BitrateReport::default());
        assert_eq!(r.video_dropped_at_sender, None);

        let json = serde_json::to_value(&r).unwrap();
        for path in [
            &["channels", "control", "delivered"][..],
            &["channels", "control", "lost"],
            &["channels", "control", "superseded"],
            &["channels", "control", "latency"],
            &["channels", "telemetry", "sent"],
            &["channels", "video", "refused"],
            &["channels", "storage", "goodput_mbps"],
            &["video_frames", "incomplete"],
            &["video_frames", "key_frame_requests", "honoured"],
            &["video_frames", "key_frame_requests", "wait_p50_ms"],
            &["channels", "video", "latency"],
            &["corrupted_payloads"],
            &["rekeys"],
            &["rejected"],
            &["failsafe_events"],
            &["storage_retransmits"],
            &["storage_repairs"],
            &["storage_repaired"],
            &["radio_sent"],
            &["radio_lost"],
            &["downlink_estimate", "capacity_mbps"],
            &["downlink_estimate", "loss"],
            &["downlink_estimate", "min_rtt_ms"],
            &["video_bitrate", "camera_mbps"],
            &["video_bitrate", "mean_mbps"],
            &["video_bitrate", "last_mbps"],
            &["video_dropped_at_sender"],
            &["video_fec", "parity_sent"],
            &["video_fec", "parity_bytes"],
            &["video_fec", "payload_bytes"],
            &["video_fec", "overhead_percent"],
        ] {
            let v = path.iter().fold(&json, |v, k| &v[*k]);
            assert!(v.is_null(), "{path:?} is {v}, not null");
            let parent = path[..path.len() - 1].iter().fold(&json, |v, k| &v[*k]);
            assert!(
                parent.get(path[path.len() - 1]).is_some(),
                "{path:?} missing"
            );
        }
        assert_eq!(json["channels"]["control"]["sent"], 500);
        assert_eq!(json["channels"]["telemetry"]["delivered"], 240);
        // Read back, it is the same report (the aircraft prints the one the remote sends).
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(
            back,
            Report {
                real_time: false,
                ..r.clone()
            }
        );

        let table = r.to_string();
        let row = |name: &str| -> Vec<String> {
            let line = table.lines().find(|l| l.starts_with(name)).unwrap();
            line.split_whitespace().map(str::to_string).collect()
        };
        // control: sent 500, delivered ? lost ? corrupt ? refused 0, Mbit/s ?, latency ?
        assert_eq!(
            row("control")[1..],
            ["500", "?", "?", "?", "0", "?", "?", "?", "?"],
            "{table}"
        );
        assert_eq!(
            row("telemetry")[1..6],
            ["?", "240", "?", "0", "?"],
            "{table}"
        );
        assert!(
            table.contains("80 complete, 0 decodable, ? incomplete"),
            "{table}"
        );
        assert!(
            table.contains(
                "key frames       0 asked for by the remote, ? honoured by the aircraft\n"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "key updates ?   reconnects 0   failsafes ?   storage retransmits ?   \
                 repair frames ? (segments rebuilt ?)"
            ),
            "{table}"
        );
        assert!(table.contains("rejected frames  ?"), "{table}");
        assert!(
            table.contains(
                "video FEC        ? parity fragments (? of the video payload), 0 frames recovered (0 fragments)\n"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "capacity ? Mbit/s (the aircraft's estimate), loss ?, min RTT ? ms, ? slowdowns"
            ),
            "{table}"
        );
        assert!(
            table.contains("mean ? Mbit/s, last ? Mbit/s (camera ? Mbit/s), ? frames dropped"),
            "{table}"
        );
        assert!(
            table.contains("udp              ? datagrams, ? lost"),
            "{table}"
        );
        assert!(table.contains("? = unknown"), "{table}");
    }
}
