//! A whole simulated flight: an aircraft provisioned with a code, a remote that pairs with the
//! pilot's code, both applications running over the simulated radio, and the report.
//!
//! [`run_watched`] also hands a watcher the flight as it goes ([`Moment`]): both links, the
//! radio and both applications, after every step, so that tests can follow figures over
//! time (the aircraft's capacity estimate, the encoder's bitrate, the bytes delivered).

use std::time::Duration;

use rotorlink::{Config, ConfigError, Timestamp};

use crate::aircraft::{AircraftApp, AircraftConfig};
use crate::channel::{Adversary, ChannelConfig};
use crate::keylog::KeyLog;
use crate::pair::{Pair, Received};
use crate::remote::RemoteApp;
use crate::report::{EndSummary, Flight, Report};
use crate::storage::FLIGHT_LOG;

/// Everything that defines a run. The same scenario gives the same report, byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Seed of every random choice.
    pub seed: u64,
    /// Virtual flight time.
    pub duration: Duration,
    /// Remote to aircraft.
    pub uplink: ChannelConfig,
    /// Aircraft to remote.
    pub downlink: ChannelConfig,
    /// What the aircraft does, and what its onboard storage holds.
    pub aircraft: AircraftConfig,
    /// The file the remote downloads: a name of the aircraft's list, or a name without its
    /// extension (`clip`, `photo-2`); default the flight log.
    pub download: String,
    /// The code the pilot types.
    pub password: Vec<u8>,
    /// The code the aircraft was provisioned with.
    pub aircraft_password: Vec<u8>,
    /// Link configuration of both ends.
    pub link: Config,
    /// Cut the radio (both ways) during each of these windows of virtual time, `(from, to)`.
    pub outages: Vec<(Duration, Duration)>,
}

impl Default for Scenario {
    /// The demo: 30 s over a moderately lossy radio (2 % loss, 5 ms +- 2 ms, 0.5 %
    /// duplicates, 0.1 % corrupted), 20 Mbit/s video, a 1 MiB flight log downloaded.
    fn default() -> Self {
        // Fields not named here keep their defaults as the channel model grows.
        #[allow(clippy::needless_update)]
        let radio = ChannelConfig {
            loss: 0.02,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(2),
            duplicate: 0.005,
            corrupt: 0.001,
            ..ChannelConfig::default()
        };
        Scenario {
            seed: 1,
            duration: Duration::from_secs(30),
            uplink: radio.clone(),
            downlink: radio,
            aircraft: AircraftConfig::default(),
            download: FLIGHT_LOG.to_string(),
            password: b"246813".to_vec(),
            aircraft_password: b"246813".to_vec(),
            link: Config::default(),
            outages: Vec::new(),
        }
    }
}

/// Fly the scenario. `progress` is told the fraction of virtual time done, now and then.
///
/// # Errors
/// [`ConfigError`] if the link configuration is invalid.
pub fn run(scenario: &Scenario, progress: &mut dyn FnMut(f64)) -> Result<Report, ConfigError> {
    fly(scenario, progress, None, &mut |_| {}, None)
}

/// The flight under way, as a watcher of [`run_watched`] sees it.
pub struct Moment<'a> {
    /// The virtual time.
    pub now: Timestamp,
    /// Both links and the radio.
    pub pair: &'a Pair,
    /// The aircraft application.
    pub aircraft: &'a AircraftApp,
    /// The remote application.
    pub remote: &'a RemoteApp,
}

/// Fly the scenario as [`run`] does, handing `watch` the flight after every step (at least
/// every 10 ms of virtual time: the remote's stick period). Watching changes nothing: the
/// report is [`run`]'s, byte for byte.
///
/// # Errors
/// [`ConfigError`] if the link configuration is invalid.
pub fn run_watched(
    scenario: &Scenario,
    watch: &mut dyn FnMut(&Moment<'_>),
) -> Result<Report, ConfigError> {
    fly(scenario, &mut |_| {}, None, watch, None)
}

/// Fly the scenario with `observer` on the radio path: it is handed every datagram either
/// link transmits, as a [`Pair`]'s [`Adversary`] is (see [`Pair::set_adversary`]).
///
/// An observer that forwards every datagram unchanged at once, such as a
/// [`PcapTap`](crate::pcap::PcapTap) or a [`Recorder`](crate::Recorder), leaves the run
/// exactly as [`run`] flies it: the same report, byte for byte. One that does more makes
/// its own run, and the report shows what it did.
///
/// # Errors
/// [`ConfigError`] if the link configuration is invalid.
pub fn run_observed(
    scenario: &Scenario,
    progress: &mut dyn FnMut(f64),
    observer: Box<dyn Adversary>,
) -> Result<Report, ConfigError> {
    fly(scenario, progress, Some(observer), &mut |_| {}, None)
}

/// Fly the scenario as [`run_observed`] does, with both links logging their traffic
/// secrets into `key_log` ([`Config::log_traffic_secrets`](rotorlink::Config), PROTOCOL.md
/// 30.2), so that a capture of the run can be decrypted
/// ([`decrypt_capture`](crate::keylog::decrypt_capture)). Logging changes nothing else:
/// the report is the same.
///
/// # Errors
/// [`ConfigError`] if the link configuration is invalid.
pub fn run_logged(
    scenario: &Scenario,
    progress: &mut dyn FnMut(f64),
    observer: Option<Box<dyn Adversary>>,
    key_log: &mut KeyLog,
) -> Result<Report, ConfigError> {
    let mut logging = scenario.clone();
    logging.link.log_traffic_secrets = true;
    fly(&logging, progress, observer, &mut |_| {}, Some(key_log))
}

fn fly(
    s: &Scenario,
    progress: &mut dyn FnMut(f64),
    observer: Option<Box<dyn Adversary>>,
    watch: &mut dyn FnMut(&Moment<'_>),
    mut key_log: Option<&mut KeyLog>,
) -> Result<Report, ConfigError> {
    let mut pair: Pair = Pair::pairing(
        s.link.clone(),
        s.uplink.clone(),
        s.downlink.clone(),
        s.seed,
        &s.aircraft_password,
        &s.password,
    )?;
    if let Some(observer) = observer {
        pair.set_adversary(observer);
    }
    let mut aircraft = AircraftApp::new(s.aircraft.clone(), s.seed);
    let mut remote = RemoteApp::new(&s.password).downloading(&s.download);
    let end = Timestamp::ZERO + s.duration;
    let mut outage_on = false;
    let mut next_progress = Duration::ZERO;
    while pair.now() < end {
        let now = pair.now();
        let cut = s
            .outages
            .iter()
            .any(|&(from, to)| now >= Timestamp::ZERO + from && now < Timestamp::ZERO + to);
        if cut != outage_on {
            outage_on = cut;
            let loss = |c: &ChannelConfig| if cut { 1.0 } else { c.loss };
            pair.uplink.config_mut().loss = loss(&s.uplink);
            pair.downlink.config_mut().loss = loss(&s.downlink);
        }
        aircraft.poll(now, &mut pair.aircraft);
        remote.poll(now, &mut pair.remote);
        let mut next = aircraft.next_wakeup().min(remote.next_wakeup()).min(end);
        for &(from, to) in &s.outages {
            for edge in [Timestamp::ZERO + from, Timestamp::ZERO + to] {
                if edge > now {
                    next = next.min(edge);
                }
            }
        }
        pair.run_until(next.max(now));
        for r in pair.aircraft_received.drain(..) {
            match r {
                Received::Message(t, channel, data) => {
                    aircraft.on_message(t, channel, &data, &mut pair.aircraft);
                }
                Received::Event(_, event) => {
                    if let Some(log) = key_log.as_deref_mut() {
                        log.record(&event);
                    }
                    aircraft.on_event(&event, &mut pair.aircraft);
                }
            }
        }
        for r in pair.remote_received.drain(..) {
            match r {
                Received::Message(t, channel, data) => remote.on_message(t, channel, &data),
                Received::Event(_, event) => {
                    if let Some(log) = key_log.as_deref_mut() {
                        log.record(&event);
                    }
                    remote.on_event(&event);
                }
            }
        }
        watch(&Moment {
            now: pair.now(),
            pair: &pair,
            aircraft: &aircraft,
            remote: &remote,
        });
        if pair.now().saturating_since(Timestamp::ZERO) >= next_progress {
            progress(
                pair.now().saturating_since(Timestamp::ZERO).as_secs_f64()
                    / s.duration.as_secs_f64(),
            );
            next_progress += Duration::from_millis(500);
        }
    }
    progress(1.0);
    Ok(report(s, &pair, &aircraft, &remote))
}

fn report(s: &Scenario, pair: &Pair, aircraft: &AircraftApp, remote: &RemoteApp) -> Report {
    let aircraft_end = EndSummary::of(
        pair.aircraft.stats(),
        &aircraft.stats.control_latencies,
        aircraft.stats.corrupted(),
        aircraft.stats.refused(),
        aircraft.stats.failsafe_events,
    )
    .with_path(pair.aircraft.path_estimate())
    .with_encoder(s.aircraft.video_bitrate, &aircraft.stats);
    let remote_end = EndSummary::of(
        pair.remote.stats(),
        &remote.stats.telemetry_latencies,
        remote.stats.corrupted(),
        remote.stats.refused(),
        0,
    );
    Report::assemble(&Flight {
        seed: s.seed,
        duration_s: s.duration.as_secs_f64(),
        aircraft: Some(&aircraft_end),
        remote: &remote_end,
        remote_app: &remote.stats,
        storage_unlocked: pair.remote.storage_unlocked(),
        radio: Some((
            pair.uplink.stats().sent + pair.downlink.stats().sent,
            pair.uplink.stats().lost + pair.downlink.stats().lost,
        )),
        radio_queue_dropped: Some(
            pair.uplink.stats().dropped_queue + pair.downlink.stats().dropped_queue,
        ),
        real_time: false,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pcap::{PcapTap, PcapWriter, AIRCRAFT_ADDR};

    /// A short flight that still pairs, unlocks storage and sends on every channel.
    pub(crate) fn short() -> Scenario {
        Scenario {
            duration: Duration::from_secs(2),
            aircraft: AircraftConfig {
                video_bitrate: 2_000_000,
                ..AircraftConfig::default()
            },
            ..Scenario::default()
        }
    }

    #[test]
    fn a_watcher_sees_the_flight_as_it_goes_and_changes_nothing() {
        let s = short();
        let plain = run(&s, &mut |_| {}).unwrap();
        let mut seen: Vec<(Timestamp, u64)> = Vec::new();
        let watched = run_watched(&s, &mut |m| {
            let sticks = m.remote.stats.sticks_sent;
            seen.push((m.now, sticks));
        })
        .unwrap();
        assert_eq!(watched, plain);
        // At least every stick period, in time order, to the end.
        assert!(seen
            .windows(2)
            .all(|w| w[0].0 <= w[1].0
                && w[1].0.saturating_since(w[0].0) <= Duration::from_millis(10)));
        assert_eq!(seen.last().unwrap().0, Timestamp::ZERO + s.duration);
        assert_eq!(seen.last().unwrap().1, plain.channels.control.sent.unwrap());
    }

    #[test]
    fn a_tap_changes_nothing_and_captures_every_datagram_sent() {
        let s = short();
        let plain = run(&s, &mut |_| {}).unwrap();
        let tap = PcapTap::new(PcapWriter::new(Vec::new()).unwrap());
        let tapped = run_observed(&s, &mut |_| {}, Box::new(tap.clone())).unwrap();
        assert_eq!(tapped, plain, "a tap must not change the run");
        assert!(plain.paired);
        // `radio_sent` counts the datagrams put on the channels, which is every datagram
        // the links transmit when the observer forwards each one once, at once.
        let radio_sent = plain.radio_sent.unwrap();
        assert!(radio_sent > 100, "{radio_sent}");
        assert_eq!(tap.records(), radio_sent);
        let capture = tap.finish().unwrap();
        // Walk the records: as many as radio_sent, both directions present.
        let (mut at, mut records, mut from_aircraft) = (24, 0u64, 0u64);
        while at < capture.len() {
            let len = u32::from_le_bytes(capture[at + 8..at + 12].try_into().unwrap()) as usize;
            let ip_src = &capture[at + 16 + 26..at + 16 + 30];
            if ip_src == AIRCRAFT_ADDR.ip().octets() {
                from_aircraft += 1;
            }
            records += 1;
            at += 16 + len;
        }
        assert_eq!(at, capture.len());
        assert_eq!(records, radio_sent);
        assert!(from_aircraft > 0 && from_aircraft < records);
    }
}
