//! A whole simulated flight: an aircraft provisioned with a code, a remote that pairs with the
//! pilot's code, both applications running over the simulated radio, and the report.

use std::time::Duration;

use rotorlink::{Channel, Config, ConfigError, Stats, Timestamp};

use crate::aircraft::{AircraftApp, AircraftConfig};
use crate::pair::{Pair, Received};
use crate::path::PathConfig;
use crate::remote::RemoteApp;
use crate::report::{ChannelReport, Channels, Latency, Rejected, Report, VideoFrames};

/// Everything that defines a run. The same scenario gives the same report, byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Seed of every random choice.
    pub seed: u64,
    /// Virtual flight time.
    pub duration: Duration,
    /// Remote to aircraft.
    pub uplink: PathConfig,
    /// Aircraft to remote.
    pub downlink: PathConfig,
    /// What the aircraft does.
    pub aircraft: AircraftConfig,
    /// The code the pilot types.
    pub password: Vec<u8>,
    /// The code the aircraft was provisioned with.
    pub aircraft_password: Vec<u8>,
    /// Link configuration of both ends.
    pub link: Config,
    /// Cut the radio (both ways) during this window of virtual time.
    pub outage: Option<(Duration, Duration)>,
}

impl Default for Scenario {
    /// The demo: 30 s over a moderately lossy radio (2 % loss, 5 ms +- 2 ms, 0.5 %
    /// duplicates, 0.1 % corrupted), 20 Mbit/s video, a 1 MiB flight log.
    fn default() -> Self {
        // Fields not named here keep their defaults as the channel model grows.
        #[allow(clippy::needless_update)]
        let radio = PathConfig {
            loss: 0.02,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(2),
            duplicate: 0.005,
            corrupt: 0.001,
            ..PathConfig::default()
        };
        Scenario {
            seed: 1,
            duration: Duration::from_secs(30),
            uplink: radio.clone(),
            downlink: radio,
            aircraft: AircraftConfig::default(),
            password: b"246813".to_vec(),
            aircraft_password: b"246813".to_vec(),
            link: Config::default(),
            outage: None,
        }
    }
}

/// Fly the scenario. `progress` is told the fraction of virtual time done, now and then.
///
/// # Errors
/// [`ConfigError`] if the link configuration is invalid.
pub fn run(scenario: &Scenario, progress: &mut dyn FnMut(f64)) -> Result<Report, ConfigError> {
    let s = scenario;
    let mut pair: Pair = Pair::pairing(
        s.link.clone(),
        s.uplink.clone(),
        s.downlink.clone(),
        s.seed,
        &s.aircraft_password,
        &s.password,
    )?;
    let mut aircraft = AircraftApp::new(s.aircraft.clone(), s.seed);
    let mut remote = RemoteApp::new(&s.password);
    let end = Timestamp::ZERO + s.duration;
    let mut outage_on = false;
    let mut next_progress = Duration::ZERO;
    while pair.now() < end {
        let now = pair.now();
        if let Some((from, to)) = s.outage {
            let cut = now >= Timestamp::ZERO + from && now < Timestamp::ZERO + to;
            if cut != outage_on {
                outage_on = cut;
                let loss = |c: &PathConfig| if cut { 1.0 } else { c.loss };
                pair.uplink.config_mut().loss = loss(&s.uplink);
                pair.downlink.config_mut().loss = loss(&s.downlink);
            }
        }
        aircraft.poll(now, &mut pair.aircraft);
        remote.poll(now, &mut pair.remote);
        let mut next = aircraft.next_wakeup().min(remote.next_wakeup()).min(end);
        if let Some((from, to)) = s.outage {
            for edge in [Timestamp::ZERO + from, Timestamp::ZERO + to] {
                if edge > now {
                    next = next.min(edge);
                }
            }
        }
        pair.run_until(next.max(now));
        for r in pair.aircraft_received.drain(..) {
            if let Received::Message(t, channel, data) = r {
                aircraft.on_message(t, channel, &data, &mut pair.aircraft);
            }
        }
        for r in pair.remote_received.drain(..) {
            match r {
                Received::Message(t, channel, data) => remote.on_message(t, channel, &data),
                Received::Event(_, event) => remote.on_event(&event),
            }
        }
        if pair.now().saturating_since(Timestamp::ZERO) >= next_progress {
            progress(
                pair.now().saturating_since(Timestamp::ZERO).as_secs_f64()
                    / s.duration.as_secs_f64(),
            );
            next_progress += Duration::from_millis(500);
        }
    }
    progress(1.0);
    Ok(report(s, &pair, &aircraft, &mut remote))
}

fn channel(sent: &Stats, received: &Stats, c: Channel, seconds: f64) -> ChannelReport {
    let tx = sent.channel(c);
    let rx = received.channel(c);
    ChannelReport {
        sent: tx.messages_sent,
        delivered: rx.messages_delivered,
        lost: tx.messages_sent.saturating_sub(rx.messages_delivered),
        goodput_mbps: rx.bytes_delivered as f64 * 8.0 / seconds.max(1e-9) / 1e6,
        bytes: rx.bytes_delivered,
        latency: None,
    }
}

fn report(s: &Scenario, pair: &Pair, aircraft: &AircraftApp, remote: &mut RemoteApp) -> Report {
    let (a, r) = (pair.aircraft.stats(), pair.remote.stats());
    let seconds = s.duration.as_secs_f64();
    let mut control = channel(r, a, Channel::Control, seconds);
    control.latency = Some(Latency::of(&mut aircraft.stats.control_latencies.clone()));
    let mut telemetry = channel(a, r, Channel::Telemetry, seconds);
    telemetry.latency = Some(Latency::of(&mut remote.stats.telemetry_latencies));
    let video = channel(a, r, Channel::Video, seconds);
    let up = channel(r, a, Channel::Storage, seconds);
    let down = channel(a, r, Channel::Storage, seconds);
    let storage = ChannelReport {
        sent: up.sent + down.sent,
        delivered: up.delivered + down.delivered,
        lost: up.lost + down.lost,
        goodput_mbps: up.goodput_mbps + down.goodput_mbps,
        bytes: up.bytes + down.bytes,
        latency: None,
    };
    let both = |f: fn(&Stats) -> u64| f(a) + f(r);
    let rejected = Rejected {
        auth: both(|s| s.dropped_auth + s.dropped_unknown_receiver + s.dropped_key_expired),
        replay: both(|s| s.dropped_duplicate + s.dropped_too_old),
        malformed: both(|s| s.dropped_malformed),
        other: both(|s| s.dropped_protocol + s.dropped_handshake + s.dropped_storage_locked),
    };
    let paired = remote.stats.connected_at.is_some();
    Report {
        seed: s.seed,
        duration_s: seconds,
        paired,
        handshake_ms: remote
            .stats
            .connected_at
            .map(|t| t.saturating_since(Timestamp::ZERO).as_secs_f64() * 1e3),
        refusal: if paired {
            None
        } else {
            remote.stats.refusal.clone()
        },
        storage_unlocked: pair.remote.storage_unlocked(),
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
        corrupted_payloads: remote.stats.corrupted_payloads,
        storage_bytes: remote.stats.log_bytes,
        flight_log_complete: remote.stats.log_complete,
        rekeys: a.rekeys_sent + r.rekeys_sent,
        reconnects: remote.stats.reconnects,
        rejected,
        failsafe_events: aircraft.stats.failsafe_events,
        storage_retransmits: a.storage_retransmits + r.storage_retransmits,
        radio_sent: pair.uplink.stats().sent + pair.downlink.stats().sent,
        radio_lost: pair.uplink.stats().lost + pair.downlink.stats().lost,
    }
}
