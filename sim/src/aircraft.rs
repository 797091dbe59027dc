//! The fake aircraft: telemetry at 50 Hz, a video stream with periodic key frames, a flight
//! log in onboard storage, stick commands applied as they arrive, and a return-to-home
//! failsafe when the pilot's commands stop for too long (the link's [`Failsafe`]: its own
//! over a link it is handed, the driver's over the tokio adapter).

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rotorlink::{Channel, Failsafe, Link, Timestamp};
use sha2::{Digest, Sha256};

/// The flight log request the remote sends on the storage channel.
pub const GET_FLIGHT_LOG: &[u8] = b"GET /flightlog";
/// Length of a stick command: stamp, four 16-bit axes, check (see [`is_intact`]).
pub const CONTROL_LEN: usize = 8 + 8 + CHECK_LEN;
/// Length of a telemetry message: stamp, altitude, battery, failsafe flag, link quality,
/// check (see [`is_intact`]).
pub const TELEMETRY_LEN: usize = 8 + 8 + CHECK_LEN;
/// Length of the check that ends every stick command and telemetry message.
const CHECK_LEN: usize = 8;
/// Bytes of flight log per storage message.
const LOG_CHUNK: usize = 64 * 1024;

/// What the aircraft does.
#[derive(Debug, Clone, PartialEq)]
pub struct AircraftConfig {
    /// Telemetry messages per second (default 50).
    pub telemetry_hz: u32,
    /// Video bitrate in bits per second (default 20 Mbit/s).
    pub video_bitrate: u64,
    /// Video frames per second (default 30).
    pub video_fps: u32,
    /// A key frame (four times a delta frame) every this many frames (default 30).
    pub key_frame_interval: u32,
    /// Return home when no stick command arrived for this long (default 1.5 s,
    /// [`Failsafe::DEFAULT_AFTER`]). Over the tokio adapter the aircraft follows the
    /// driver's failsafe instead ([`AircraftApp::follow_link_failsafe`]), whose delay is
    /// [`rotorlink::tokio::Options::failsafe_after`].
    pub failsafe_after: Duration,
    /// Size of the flight log in onboard storage before this flight (default 1 MiB).
    pub initial_log_len: usize,
}

impl Default for AircraftConfig {
    fn default() -> Self {
        AircraftConfig {
            telemetry_hz: 50,
            video_bitrate: 20_000_000,
            video_fps: 30,
            key_frame_interval: 30,
            failsafe_after: Failsafe::DEFAULT_AFTER,
            initial_log_len: 1 << 20,
        }
    }
}

/// What the aircraft counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AircraftStats {
    /// Stick commands applied.
    pub sticks_applied: u64,
    /// Stick commands delivered whose bytes were not what the remote sent (must stay 0);
    /// they are not applied.
    pub corrupted_control: u64,
    /// One-way latency of each stick command.
    pub control_latencies: Vec<Duration>,
    /// Video frames handed to the link.
    pub video_frames_sent: u64,
    /// Failsafes raised.
    pub failsafe_events: u64,
    /// Flight log requests answered.
    pub log_requests: u64,
}

impl AircraftStats {
    /// Messages delivered corrupted, per channel (control, telemetry, video, storage): the
    /// stick commands.
    pub fn corrupted(&self) -> [u64; 4] {
        [self.corrupted_control, 0, 0, 0]
    }
}

/// The aircraft application.
#[derive(Debug)]
pub struct AircraftApp {
    config: AircraftConfig,
    rng: ChaCha8Rng,
    next_telemetry: Timestamp,
    next_frame: Timestamp,
    frame_no: u32,
    flight_log: Vec<u8>,
    failsafe: Watch,
    altitude_cm: i32,
    battery: u8,
    /// Added to the link's clock in stamps (see [`AircraftApp::with_clock_offset`]).
    clock_offset: Duration,
    /// What happened.
    pub stats: AircraftStats,
}

/// Who watches for the failsafe.
#[derive(Debug)]
enum Watch {
    /// The application, on the stick commands it is handed.
    Own(Failsafe),
    /// The link's driver, which reports it ([`AircraftApp::on_link_failsafe`]): is it raised?
    Link(bool),
}

/// Stamp a message with its send time, so the receiver can measure latency.
pub(crate) fn stamped(now: Timestamp, rest: &[u8]) -> Vec<u8> {
    let mut m = now.as_micros().to_be_bytes().to_vec();
    m.extend_from_slice(rest);
    m
}

/// The send time stamped at the start of a message.
pub(crate) fn stamp_of(message: &[u8]) -> Option<Timestamp> {
    let bytes: [u8; 8] = message.get(..8)?.try_into().ok()?;
    Some(Timestamp::from_micros(u64::from_be_bytes(bytes)))
}

/// `message` for `channel` with its check appended (see [`is_intact`]).
pub fn with_check(channel: Channel, mut message: Vec<u8>) -> Vec<u8> {
    let check = check_of(channel, &message);
    message.extend_from_slice(&check);
    message
}

/// Is `message` byte for byte what its sender made with [`with_check`] for `channel`? Every
/// stick command and telemetry message ends with a check: the first bytes of the SHA-256 of
/// the channel and everything before it, so the receiver, which cannot know the aircraft's
/// state or the pilot's sticks, still tells whether a single byte changed (or the message
/// was cut, or belongs to another channel).
pub fn is_intact(channel: Channel, message: &[u8]) -> bool {
    match message.len().checked_sub(CHECK_LEN) {
        Some(at) => {
            let (body, check) = message.split_at(at);
            check == check_of(channel, body)
        }
        None => false,
    }
}

fn check_of(channel: Channel, body: &[u8]) -> [u8; CHECK_LEN] {
    let digest = Sha256::new()
        .chain_update(b"rotorlink-sim message check")
        .chain_update([channel as u8])
        .chain_update(body)
        .finalize();
    let mut check = [0; CHECK_LEN];
    check.copy_from_slice(&digest[..CHECK_LEN]);
    check
}

impl AircraftApp {
    /// An aircraft whose onboard storage holds a flight log made from `seed`.
    pub fn new(config: AircraftConfig, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xa1c2);
        let mut flight_log = vec![0u8; config.initial_log_len];
        rng.fill_bytes(&mut flight_log);
        let failsafe = Watch::Own(Failsafe::new(config.failsafe_after));
        AircraftApp {
            config,
            rng,
            next_telemetry: Timestamp::ZERO,
            next_frame: Timestamp::ZERO,
            frame_no: 0,
            flight_log,
            failsafe,
            altitude_cm: 0,
            battery: 100,
            clock_offset: Duration::ZERO,
            stats: AircraftStats::default(),
        }
    }

    /// Stamp messages with the link's clock plus `offset`, and measure latencies the same
    /// way. Two processes on one host give the wall-clock time at which their link's clock
    /// read zero, so that one-way latencies compare one clock (in the simulator both links
    /// share the virtual clock and the offset is zero).
    pub fn with_clock_offset(mut self, offset: Duration) -> Self {
        self.clock_offset = offset;
        self
    }

    /// Is the failsafe (return to home) active?
    pub fn failsafe(&self) -> bool {
        match &self.failsafe {
            Watch::Own(failsafe) => failsafe.is_active(),
            &Watch::Link(raised) => raised,
        }
    }

    /// Leave the failsafe to the link's driver: stop watching the stick commands, and
    /// raise or clear the failsafe only as [`AircraftApp::on_link_failsafe`] says. What
    /// [`fly_aircraft`](crate::flight::fly_aircraft) does over the tokio adapter, whose driver
    /// watches them already.
    pub fn follow_link_failsafe(&mut self) {
        let raised = self.failsafe();
        self.failsafe = Watch::Link(raised);
    }

    /// The link's driver raised (`true`: [`rotorlink::tokio::LinkEvent::Failsafe`]) or
    /// cleared ([`rotorlink::tokio::LinkEvent::FailsafeCleared`]) the failsafe. Implies
    /// [`AircraftApp::follow_link_failsafe`].
    pub fn on_link_failsafe(&mut self, raised: bool) {
        if raised && !self.failsafe() {
            self.stats.failsafe_events += 1;
        }
        self.failsafe = Watch::Link(raised);
    }

    /// When [`AircraftApp::poll`] next has something to do.
    pub fn next_wakeup(&self) -> Timestamp {
        let failsafe = match &self.failsafe {
            Watch::Own(failsafe) => failsafe.deadline(),
            Watch::Link(_) => None,
        };
        self.next_telemetry
            .min(self.next_frame)
            .min(failsafe.unwrap_or(Timestamp::from_micros(u64::MAX)))
    }

    fn frame_len(&self, key: bool) -> usize {
        let per_frame = self.config.video_bitrate / 8 / u64::from(self.config.video_fps.max(1));
        let n = u64::from(self.config.key_frame_interval.max(1));
        // Delta frames are sized so that the average, key frames included, is the bitrate.
        let delta = per_frame * n / (n + 3);
        (if key { delta * 4 } else { delta }).max(16) as usize
    }

    /// Send what is due at `now` and watch for the failsafe.
    pub fn poll(&mut self, now: Timestamp, link: &mut Link) {
        if let Watch::Own(failsafe) = &mut self.failsafe {
            if failsafe.on_time(now) {
                self.stats.failsafe_events += 1;
            }
        }
        let flying = link.is_connected();
        while now >= self.next_telemetry {
            self.next_telemetry = self.next_telemetry
                + Duration::from_micros(1_000_000 / u64::from(self.config.telemetry_hz.max(1)));
            if flying {
                let mut body = Vec::with_capacity(8);
                body.extend_from_slice(&self.altitude_cm.to_be_bytes());
                body.extend_from_slice(&[self.battery, u8::from(self.failsafe())]);
                body.extend_from_slice(&(self.rng.next_u32() as u16).to_be_bytes());
                let message =
                    with_check(Channel::Telemetry, stamped(now + self.clock_offset, &body));
                // Every record also goes to the flight log in onboard storage.
                self.flight_log.extend_from_slice(&message);
                let _ = link.send(Channel::Telemetry, &message);
            }
        }
        while now >= self.next_frame {
            self.next_frame = self.next_frame
                + Duration::from_micros(1_000_000 / u64::from(self.config.video_fps.max(1)));
            if flying && self.config.video_bitrate > 0 {
                let key = self.frame_no % self.config.key_frame_interval.max(1) == 0;
                let mut frame = stamped(now + self.clock_offset, &self.frame_no.to_be_bytes());
                frame.resize(self.frame_len(key), key as u8);
                self.frame_no += 1;
                if link.send(Channel::Video, &frame).is_ok() {
                    self.stats.video_frames_sent += 1;
                }
            }
        }
    }

    /// Take a message from the remote.
    pub fn on_message(&mut self, now: Timestamp, channel: Channel, data: &[u8], link: &mut Link) {
        match channel {
            Channel::Control => {
                if data.len() != CONTROL_LEN || !is_intact(Channel::Control, data) {
                    self.stats.corrupted_control += 1;
                    return;
                }
                if let Some(sent) = stamp_of(data) {
                    let at = now + self.clock_offset;
                    self.stats.control_latencies.push(at.saturating_since(sent));
                }
                self.stats.sticks_applied += 1;
                if let Watch::Own(failsafe) = &mut self.failsafe {
                    failsafe.on_control(now);
                }
                self.altitude_cm = (self.altitude_cm + 1).min(12_000);
                if self.stats.sticks_applied % 6000 == 0 {
                    self.battery = self.battery.saturating_sub(1);
                }
            }
            Channel::Storage if data == GET_FLIGHT_LOG => {
                self.stats.log_requests += 1;
                self.send_flight_log(link);
            }
            _ => {}
        }
    }

    /// The log as it is now: chunks of `offset, total, data`, then `END` and its SHA-256.
    fn send_flight_log(&mut self, link: &mut Link) {
        let total = self.flight_log.len() as u32;
        for (i, chunk) in self.flight_log.chunks(LOG_CHUNK).enumerate() {
            let mut m = ((i * LOG_CHUNK) as u32).to_be_bytes().to_vec();
            m.extend_from_slice(&total.to_be_bytes());
            m.extend_from_slice(chunk);
            let _ = link.send(Channel::Storage, &m);
        }
        let mut end = b"END".to_vec();
        end.extend_from_slice(&Sha256::digest(&self.flight_log));
        let _ = link.send(Channel::Storage, &end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelConfig;
    use crate::pair::Pair;
    use rotorlink::Config;

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    fn setup() -> (Pair, AircraftApp) {
        let radio = ChannelConfig::default();
        let pair = Pair::new(Config::default(), radio.clone(), radio, 1).unwrap();
        let config = AircraftConfig {
            video_bitrate: 0,
            ..AircraftConfig::default()
        };
        (pair, AircraftApp::new(config, 1))
    }

    fn stick(app: &mut AircraftApp, pair: &mut Pair, at: Timestamp) {
        let message = with_check(Channel::Control, stamped(at, &[0x80; 8]));
        app.on_message(at, Channel::Control, &message, &mut pair.aircraft);
    }

    #[test]
    fn the_aircraft_raises_its_own_failsafe_once_when_the_sticks_stop() {
        let (mut pair, mut app) = setup();
        app.poll(ms(0), &mut pair.aircraft);
        assert!(app.next_wakeup() <= ms(20));
        stick(&mut app, &mut pair, ms(100));
        app.poll(ms(1599), &mut pair.aircraft);
        assert!(!app.failsafe());
        assert!(app.next_wakeup() <= ms(1600));
        app.poll(ms(1600), &mut pair.aircraft);
        app.poll(ms(3000), &mut pair.aircraft);
        assert!(app.failsafe());
        assert_eq!(app.stats.failsafe_events, 1);
        stick(&mut app, &mut pair, ms(3100));
        assert!(!app.failsafe());
    }

    #[test]
    fn an_aircraft_following_the_link_only_raises_the_failsafe_when_told() {
        let (mut pair, mut app) = setup();
        app.follow_link_failsafe();
        stick(&mut app, &mut pair, ms(100));
        app.poll(ms(10_000), &mut pair.aircraft);
        assert!(!app.failsafe());
        assert!(app.next_wakeup() <= ms(10_020), "no failsafe deadline");
        app.on_link_failsafe(true);
        app.on_link_failsafe(true);
        assert!(app.failsafe());
        assert_eq!(app.stats.failsafe_events, 1);
        // A stick command does not clear it: the link's driver does.
        stick(&mut app, &mut pair, ms(10_100));
        assert!(app.failsafe());
        app.on_link_failsafe(false);
        assert!(!app.failsafe());
        assert_eq!(app.stats.failsafe_events, 1);
    }

    #[test]
    fn every_flipped_bit_of_a_checked_message_is_seen() {
        let message = with_check(Channel::Control, stamped(ms(5), &[1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(message.len(), CONTROL_LEN);
        assert!(is_intact(Channel::Control, &message));
        assert!(
            !is_intact(Channel::Telemetry, &message),
            "another channel's"
        );
        assert!(!is_intact(Channel::Control, &message[..CONTROL_LEN - 1]));
        assert!(!is_intact(Channel::Control, &[]));
        for bit in 0..message.len() * 8 {
            let mut m = message.clone();
            m[bit / 8] ^= 1 << (bit % 8);
            assert!(!is_intact(Channel::Control, &m), "bit {bit}");
        }
    }

    #[test]
    fn a_corrupted_stick_command_is_counted_and_not_applied() {
        let (mut pair, mut app) = setup();
        let mut message = with_check(Channel::Control, stamped(ms(10), &[0x80; 8]));
        message[9] ^= 4;
        app.on_message(ms(15), Channel::Control, &message, &mut pair.aircraft);
        assert_eq!(app.stats.corrupted_control, 1);
        assert_eq!(app.stats.sticks_applied, 0);
        assert!(app.stats.control_latencies.is_empty());
        assert_eq!(app.stats.corrupted(), [1, 0, 0, 0]);
        stick(&mut app, &mut pair, ms(20));
        assert_eq!(
            (app.stats.corrupted_control, app.stats.sticks_applied),
            (1, 1)
        );
    }
}
