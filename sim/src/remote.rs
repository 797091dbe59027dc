//! The fake remote: pairs with the code, flies the aircraft with stick commands at 100 Hz,
//! watches telemetry and video, unlocks the onboard storage and downloads the flight log.

use std::time::Duration;

use rotorlink::handshake::Kind;
use rotorlink::{Channel, Event, Link, Timestamp};
use sha2::{Digest, Sha256};

use crate::aircraft::{stamp_of, stamped, GET_FLIGHT_LOG, TELEMETRY_LEN};

/// What the remote counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteStats {
    /// When the session was first confirmed.
    pub connected_at: Option<Timestamp>,
    /// Stick commands handed to the link.
    pub sticks_sent: u64,
    /// One-way latency of each telemetry message.
    pub telemetry_latencies: Vec<Duration>,
    /// Video frames delivered whole.
    pub video_frames: u64,
    /// Delivered messages whose contents were not what the aircraft sent (must stay 0).
    pub corrupted_payloads: u64,
    /// Flight log bytes received.
    pub log_bytes: u64,
    /// True once the whole log arrived and its SHA-256 matched.
    pub log_complete: bool,
    /// Sessions resumed after a link loss.
    pub reconnects: u64,
    /// The last refusal or failure the link reported.
    pub refusal: Option<String>,
}

/// The remote application.
#[derive(Debug)]
pub struct RemoteApp {
    code: Vec<u8>,
    next_stick: Timestamp,
    unlock_asked: bool,
    log_asked: bool,
    log: Vec<u8>,
    /// Added to the link's clock in stamps (see [`crate::aircraft::AircraftApp::with_clock_offset`]).
    clock_offset: Duration,
    /// What happened.
    pub stats: RemoteStats,
}

const STICK_PERIOD: Duration = Duration::from_millis(10);

impl RemoteApp {
    /// A remote whose pilot types `code`.
    pub fn new(code: &[u8]) -> Self {
        RemoteApp {
            code: code.to_vec(),
            next_stick: Timestamp::ZERO,
            unlock_asked: false,
            log_asked: false,
            log: Vec::new(),
            clock_offset: Duration::ZERO,
            stats: RemoteStats::default(),
        }
    }

    /// Stamp and measure with the link's clock plus `offset` (see
    /// [`crate::aircraft::AircraftApp::with_clock_offset`]).
    pub fn with_clock_offset(mut self, offset: Duration) -> Self {
        self.clock_offset = offset;
        self
    }

    /// When [`RemoteApp::poll`] next has something to do.
    pub fn next_wakeup(&self) -> Timestamp {
        self.next_stick
    }

    /// Send what is due at `now`.
    pub fn poll(&mut self, now: Timestamp, link: &mut Link) {
        let connected = link.is_connected();
        if connected && self.stats.connected_at.is_none() {
            self.stats.connected_at = Some(now);
        }
        while now >= self.next_stick {
            self.next_stick = self.next_stick + STICK_PERIOD;
            if connected {
                let sticks = [0x80, 0x00, 0x7f, 0xf0, 0x80, 0x00, 0x90, 0x00];
                if link
                    .send(Channel::Control, &stamped(now + self.clock_offset, &sticks))
                    .is_ok()
                {
                    self.stats.sticks_sent += 1;
                }
            }
        }
        if connected && !self.unlock_asked {
            self.unlock_asked = link.unlock_storage(&self.code, now).is_ok();
        }
        if link.storage_unlocked() && !self.log_asked {
            self.log_asked = link.send(Channel::Storage, GET_FLIGHT_LOG).is_ok();
        }
    }

    /// Take a message from the aircraft.
    pub fn on_message(&mut self, now: Timestamp, channel: Channel, data: &[u8]) {
        match channel {
            Channel::Telemetry => {
                if data.len() != TELEMETRY_LEN {
                    self.stats.corrupted_payloads += 1;
                }
                if let Some(sent) = stamp_of(data) {
                    let at = now + self.clock_offset;
                    self.stats
                        .telemetry_latencies
                        .push(at.saturating_since(sent));
                }
            }
            Channel::Video => {
                self.stats.video_frames += 1;
                // After the stamp and frame number, every byte is the key-frame flag.
                let filler = data.get(12..).unwrap_or_default();
                if filler
                    .first()
                    .is_some_and(|&f| f > 1 || filler.iter().any(|&b| b != f))
                {
                    self.stats.corrupted_payloads += 1;
                }
            }
            Channel::Storage => self.on_log_message(data),
            _ => {}
        }
    }

    fn on_log_message(&mut self, data: &[u8]) {
        if let Some(digest) = data.strip_prefix(b"END") {
            self.stats.log_complete = Sha256::digest(&self.log).as_slice() == digest;
            return;
        }
        let Some(offset) = data
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return;
        };
        // The storage channel delivers in order and exactly once, so chunks append.
        if offset as usize == self.log.len() {
            self.log.extend_from_slice(&data[8..]);
            self.stats.log_bytes = self.log.len() as u64;
        }
    }

    /// Take one of the link's other events.
    pub fn on_event(&mut self, event: &Event) {
        let refusal = match *event {
            Event::Connected { kind: Kind::Resume } => {
                self.stats.reconnects += 1;
                return;
            }
            Event::PairingRejected { remaining_attempts } => format!(
                "the aircraft rejected the code ({remaining_attempts} attempts left before lockout)"
            ),
            Event::LockedOut { .. } => {
                "the aircraft is locked out after too many wrong codes".to_string()
            }
            Event::HandshakeRefused { reason, .. } => format!("the aircraft refused: {reason:?}"),
            Event::HandshakeFailed { error } => format!("the handshake failed: {error}"),
            _ => return,
        };
        self.stats.refusal = Some(refusal);
    }
}
