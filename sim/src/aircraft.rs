//! The fake aircraft: telemetry at 50 Hz, a video stream with periodic key frames, a flight
//! log in onboard storage, stick commands applied as they arrive, and a return-to-home
//! failsafe when the pilot's commands stop for too long.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rotorlink::{Channel, Link, Timestamp};
use sha2::{Digest, Sha256};

/// The flight log request the remote sends on the storage channel.
pub const GET_FLIGHT_LOG: &[u8] = b"GET /flightlog";
/// Length of a telemetry message: stamp, altitude, battery, failsafe flag, link quality.
pub const TELEMETRY_LEN: usize = 16;
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
    /// Return home when no stick command arrived for this long (default 1.5 s).
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
            failsafe_after: Duration::from_millis(1500),
            initial_log_len: 1 << 20,
        }
    }
}

/// What the aircraft counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AircraftStats {
    /// Stick commands applied.
    pub sticks_applied: u64,
    /// One-way latency of each stick command.
    pub control_latencies: Vec<Duration>,
    /// Video frames handed to the link.
    pub video_frames_sent: u64,
    /// Failsafes raised.
    pub failsafe_events: u64,
    /// Flight log requests answered.
    pub log_requests: u64,
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
    last_stick: Option<Timestamp>,
    failsafe: bool,
    altitude_cm: i32,
    battery: u8,
    /// Added to the link's clock in stamps (see [`AircraftApp::with_clock_offset`]).
    clock_offset: Duration,
    /// What happened.
    pub stats: AircraftStats,
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

impl AircraftApp {
    /// An aircraft whose onboard storage holds a flight log made from `seed`.
    pub fn new(config: AircraftConfig, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xa1c2);
        let mut flight_log = vec![0u8; config.initial_log_len];
        rng.fill_bytes(&mut flight_log);
        AircraftApp {
            config,
            rng,
            next_telemetry: Timestamp::ZERO,
            next_frame: Timestamp::ZERO,
            frame_no: 0,
            flight_log,
            last_stick: None,
            failsafe: false,
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
        self.failsafe
    }

    /// When [`AircraftApp::poll`] next has something to do.
    pub fn next_wakeup(&self) -> Timestamp {
        let failsafe = match self.last_stick {
            Some(t) if !self.failsafe => t + self.config.failsafe_after,
            _ => Timestamp::from_micros(u64::MAX),
        };
        self.next_telemetry.min(self.next_frame).min(failsafe)
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
        if let Some(last) = self.last_stick {
            if !self.failsafe && now >= last + self.config.failsafe_after {
                self.failsafe = true;
                self.stats.failsafe_events += 1;
            }
        }
        let flying = link.is_connected();
        while now >= self.next_telemetry {
            self.next_telemetry = self.next_telemetry
                + Duration::from_micros(1_000_000 / u64::from(self.config.telemetry_hz.max(1)));
            if flying {
                let mut body = Vec::with_capacity(20);
                body.extend_from_slice(&self.altitude_cm.to_be_bytes());
                body.extend_from_slice(&[self.battery, u8::from(self.failsafe)]);
                body.extend_from_slice(&(self.rng.next_u32() as u16).to_be_bytes());
                let message = stamped(now + self.clock_offset, &body);
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
                if let Some(sent) = stamp_of(data) {
                    let at = now + self.clock_offset;
                    self.stats.control_latencies.push(at.saturating_since(sent));
                }
                self.stats.sticks_applied += 1;
                self.last_stick = Some(now);
                self.failsafe = false;
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
