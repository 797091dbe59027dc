//! The fake remote: pairs with the code, flies the aircraft with stick commands at 100 Hz,
//! watches telemetry and video, unlocks the onboard storage and downloads the flight log.

use std::time::Duration;

use rotorlink::handshake::Kind;
use rotorlink::{Channel, Event, Link, Timestamp};
use sha2::{Digest, Sha256};

use crate::aircraft::{is_intact, stamp_of, stamped, with_check, GET_FLIGHT_LOG, TELEMETRY_LEN};

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
    /// Telemetry messages delivered whose bytes were not what the aircraft sent (must stay
    /// 0).
    pub corrupted_telemetry: u64,
    /// Video frames delivered whose contents were not what the aircraft sent (must stay 0).
    pub corrupted_video: u64,
    /// Flight logs that arrived whole (every byte announced) with a SHA-256 that did not
    /// match, and storage messages that were not a piece of the log (must stay 0).
    pub corrupted_storage: u64,
    /// Flight log bytes received.
    pub log_bytes: u64,
    /// True once the whole log arrived and its SHA-256 matched.
    pub log_complete: bool,
    /// Sessions resumed after a link loss.
    pub reconnects: u64,
    /// The last refusal or failure the link reported.
    pub refusal: Option<String>,
}

impl RemoteStats {
    /// Messages delivered corrupted, per channel (control, telemetry, video, storage).
    pub fn corrupted(&self) -> [u64; 4] {
        [
            0,
            self.corrupted_telemetry,
            self.corrupted_video,
            self.corrupted_storage,
        ]
    }
}

/// The remote application.
#[derive(Debug)]
pub struct RemoteApp {
    code: Vec<u8>,
    next_stick: Timestamp,
    unlock_asked: bool,
    log_asked: bool,
    log: Vec<u8>,
    /// The length of the whole log, as its chunks announce it.
    log_total: Option<usize>,
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
            log_total: None,
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
                let message = stamped(now + self.clock_offset, &sticks);
                let message = with_check(Channel::Control, message);
                if link.send(Channel::Control, &message).is_ok() {
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
                if data.len() != TELEMETRY_LEN || !is_intact(Channel::Telemetry, data) {
                    self.stats.corrupted_telemetry += 1;
                    return;
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
                    self.stats.corrupted_video += 1;
                }
            }
            Channel::Storage => self.on_log_message(data),
            _ => {}
        }
    }

    fn on_log_message(&mut self, data: &[u8]) {
        if let Some(digest) = data.strip_prefix(b"END") {
            self.stats.log_complete = Sha256::digest(&self.log).as_slice() == digest;
            // Every byte arrived and still the digest differs: the log is not what was sent.
            if !self.stats.log_complete && Some(self.log.len()) == self.log_total {
                self.storage_corrupted();
            }
            return;
        }
        let Some((offset, total)) = data.get(..8).map(|h| {
            let word = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            (word(0) as usize, word(4) as usize)
        }) else {
            self.storage_corrupted();
            return;
        };
        self.log_total = Some(total);
        // The storage channel delivers in order and exactly once, so chunks append.
        if offset == self.log.len() {
            self.log.extend_from_slice(&data[8..]);
            self.stats.log_bytes = self.log.len() as u64;
        }
    }

    fn storage_corrupted(&mut self) {
        self.stats.corrupted_storage += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aircraft::{AircraftApp, AircraftConfig};
    use crate::channel::ChannelConfig;
    use crate::pair::Pair;
    use rotorlink::{Config, Role};

    /// A telemetry message as the aircraft application sends it, delivered.
    fn telemetry() -> (Timestamp, Vec<u8>) {
        let radio = ChannelConfig::default();
        let mut pair: Pair = Pair::new(Config::default(), radio.clone(), radio, 1).unwrap();
        let config = AircraftConfig {
            video_bitrate: 0,
            ..AircraftConfig::default()
        };
        AircraftApp::new(config, 1).poll(Timestamp::ZERO, &mut pair.aircraft);
        pair.run_for(Duration::from_millis(10));
        let messages = pair.messages(Role::Remote, Channel::Telemetry);
        assert_eq!(messages.len(), 1);
        (pair.now(), messages[0].to_vec())
    }

    #[test]
    fn every_byte_of_every_telemetry_message_is_checked() {
        let (now, message) = telemetry();
        assert_eq!(message.len(), TELEMETRY_LEN);
        let mut remote = RemoteApp::new(b"246813");
        remote.on_message(now, Channel::Telemetry, &message);
        assert_eq!(remote.stats.corrupted_telemetry, 0);
        assert_eq!(remote.stats.telemetry_latencies.len(), 1);
        for i in 0..message.len() {
            let mut m = message.clone();
            m[i] ^= 0x10;
            remote.on_message(now, Channel::Telemetry, &m);
        }
        remote.on_message(now, Channel::Telemetry, &message[..TELEMETRY_LEN - 1]);
        let mut longer = message.clone();
        longer.push(0);
        remote.on_message(now, Channel::Telemetry, &longer);
        let wrong = TELEMETRY_LEN as u64 + 2;
        assert_eq!(remote.stats.corrupted_telemetry, wrong);
        assert_eq!(remote.stats.corrupted().iter().sum::<u64>(), wrong);
        assert_eq!(remote.stats.corrupted(), [0, wrong, 0, 0]);
        assert_eq!(
            remote.stats.telemetry_latencies.len(),
            1,
            "only the intact one"
        );
    }

    #[test]
    fn a_whole_log_with_the_wrong_digest_is_corrupted_and_a_short_one_is_not() {
        let chunk = |offset: u32, data: &[u8]| {
            let mut m = offset.to_be_bytes().to_vec();
            m.extend_from_slice(&8u32.to_be_bytes());
            m.extend_from_slice(data);
            m
        };
        let end = |log: &[u8]| [&b"END"[..], &Sha256::digest(log)].concat();
        let log = *b"flightlg";

        let mut remote = RemoteApp::new(b"246813");
        remote.on_message(Timestamp::ZERO, Channel::Storage, &chunk(0, &log[..4]));
        remote.on_message(Timestamp::ZERO, Channel::Storage, &chunk(4, &log[4..]));
        remote.on_message(Timestamp::ZERO, Channel::Storage, &end(&log));
        assert!(remote.stats.log_complete);
        assert_eq!(remote.stats.corrupted(), [0; 4]);

        // Every byte arrived, and the digest does not match: corrupted.
        let mut remote = RemoteApp::new(b"246813");
        remote.on_message(Timestamp::ZERO, Channel::Storage, &chunk(0, b"flightLG"));
        remote.on_message(Timestamp::ZERO, Channel::Storage, &end(&log));
        assert!(!remote.stats.log_complete);
        assert_eq!(remote.stats.corrupted_storage, 1);

        // Half of it: incomplete, not corrupted; a message too short for a chunk is.
        let mut remote = RemoteApp::new(b"246813");
        remote.on_message(Timestamp::ZERO, Channel::Storage, &chunk(0, &log[..4]));
        remote.on_message(Timestamp::ZERO, Channel::Storage, &end(&log));
        assert!(!remote.stats.log_complete);
        assert_eq!(remote.stats.corrupted_storage, 0);
        remote.on_message(Timestamp::ZERO, Channel::Storage, b"12345");
        assert_eq!(remote.stats.corrupted(), [0, 0, 0, 1]);
        assert_eq!(remote.stats.corrupted().iter().sum::<u64>(), 1);
    }
}
