//! The fake remote: pairs with the code, flies the aircraft with stick commands at 100 Hz,
//! watches telemetry and video, unlocks the onboard storage and downloads one file (the
//! flight log unless told otherwise), verifying its SHA-256; after a new session it resumes
//! the download from the bytes it has (see [`crate::storage`] for the protocol).
//!
//! Video goes through a model of a decoder ([`Decoder`]): a frame counts as decodable only
//! if it is a key frame or every frame since its key frame arrived whole. When the picture
//! breaks (a frame arrives that cannot be decoded, or the link gives a frame up and nothing
//! arrived since it started), the remote asks the aircraft for a key frame: a new request
//! id in its stick commands (see [`crate::aircraft::CONTROL_LEN`]), sent at once. One
//! request at a time: the next waits until a frame shows the aircraft honoured the last
//! (the key frame answering it, or a later frame when that key frame was lost), or for a
//! round trip plus [`ANSWER_SLACK`], so that the frames lost from one broken group of
//! pictures do not each ask again.

use std::time::Duration;

use rotorlink::handshake::Kind;
use rotorlink::{Channel, Event, Link, SendError, Timestamp};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::aircraft::{is_intact, stamp_of, stick_command, TELEMETRY_LEN};
use crate::storage::{FileInfo, Request, Response, FLIGHT_LOG};
use crate::video::{Decoder, FrameHeader, FrameKind};

/// How long past a round trip the remote waits for the answer to a key-frame request before
/// it may ask again: three frames at 30 fps, for the aircraft's next frame and a key frame's
/// transmission (the answer normally ends the wait first).
pub const ANSWER_SLACK: Duration = Duration::from_millis(100);
/// The round trip assumed until the link has measured one.
const DEFAULT_RTT: Duration = Duration::from_millis(100);

/// A video frame delivered whole, as the remote saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameArrival {
    /// When it was delivered.
    pub at: Timestamp,
    /// Its number.
    pub number: u32,
    /// Delta or key.
    pub kind: FrameKind,
    /// The key frame it depends on.
    pub key: u32,
    /// The latest key-frame request the aircraft had honoured when it made the frame.
    pub request: u32,
    /// Could it be decoded when it arrived?
    pub decodable: bool,
}

/// How the download of the chosen file went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DownloadStats {
    /// The file the pilot asked for: its name, or its name without the extension (`clip`
    /// for `clip.mp4`).
    pub wanted: String,
    /// The file, from the aircraft's list (name, size, SHA-256), once the list arrived.
    pub file: Option<FileInfo>,
    /// Bytes of it received, in order from the start.
    pub received: u64,
    /// True once every byte arrived and their SHA-256 matched the list's.
    pub verified: bool,
    /// The offsets the download was asked again from, after new sessions reset the storage
    /// channel (one entry per resume).
    pub resumed_at: Vec<u64>,
    /// When the file was first asked for.
    pub requested_at: Option<Timestamp>,
    /// When the latest bytes arrived.
    pub last_data_at: Option<Timestamp>,
    /// Why it cannot be downloaded (no such file on the aircraft, or the aircraft refused).
    pub error: Option<String>,
}

impl DownloadStats {
    /// Did every byte arrive (verified or not)?
    pub fn complete(&self) -> bool {
        self.file.as_ref().is_some_and(|f| self.received == f.size)
    }

    /// Is there nothing more to do: complete, or impossible?
    pub fn finished(&self) -> bool {
        self.complete() || self.error.is_some()
    }
}

/// What the remote counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteStats {
    /// When the session was first confirmed.
    pub connected_at: Option<Timestamp>,
    /// The handshake that made the first session: pairing with the code, or a bonded
    /// session without it.
    pub first_handshake: Option<Kind>,
    /// Stick commands handed to the link.
    pub sticks_sent: u64,
    /// One-way latency of each telemetry message.
    pub telemetry_latencies: Vec<Duration>,
    /// Video frames delivered whole.
    pub video_frames: u64,
    /// Video frames delivered whole that could be decoded (see [`Decoder`]).
    pub video_frames_decodable: u64,
    /// Every video frame delivered whole and intact, in order of arrival.
    pub video_arrivals: Vec<FrameArrival>,
    /// Latency of each video frame delivered whole, from the aircraft handing it to the link
    /// to its delivery.
    pub video_latencies: Vec<Duration>,
    /// When each key-frame request was sent (request id `i + 1` at index `i`).
    pub key_requests: Vec<Timestamp>,
    /// For each request that a key frame followed: the time from the request to the next key
    /// frame delivered.
    pub key_waits: Vec<Duration>,
    /// Telemetry messages delivered whose bytes were not what the aircraft sent (must stay
    /// 0).
    pub corrupted_telemetry: u64,
    /// Video frames delivered whose contents were not what the aircraft sent (must stay 0).
    pub corrupted_video: u64,
    /// Files that arrived whole with a SHA-256 that did not match the list's, and storage
    /// messages that were not a message of the protocol or a piece of the file (must stay
    /// 0).
    pub corrupted_storage: u64,
    /// The download of the chosen file.
    pub download: DownloadStats,
    /// Stick commands the link refused (it was closed, or not connected yet).
    pub sticks_refused: u64,
    /// Storage requests the link refused (they are sent again).
    pub storage_refused: u64,
    /// Sessions resumed, or started again, after a link loss.
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

    /// Messages the link refused and the application dropped, per channel (control,
    /// telemetry, video, storage): the stick commands (storage requests are sent again).
    pub fn refused(&self) -> [u64; 4] {
        [self.sticks_refused, 0, 0, 0]
    }
}

/// The remote application.
#[derive(Debug)]
pub struct RemoteApp {
    /// The pilot's code, for the storage unlock; wiped when the application is dropped.
    code: Zeroizing<Vec<u8>>,
    next_stick: Timestamp,
    /// An unlock was asked for in this session.
    unlock_asked: bool,
    /// The list was asked for in this session.
    list_asked: bool,
    /// The file was asked for in this session.
    read_asked: bool,
    /// Sessions started afresh (pairings and full sessions, not resumes).
    fresh_sessions: u64,
    /// The SHA-256 of the bytes received so far.
    hasher: Sha256,
    /// Added to the link's clock in stamps (see [`crate::aircraft::AircraftApp::with_clock_offset`]).
    clock_offset: Duration,
    /// Which frames could be shown.
    decoder: Decoder,
    /// The picture is broken: ask for a key frame as soon as no request is outstanding.
    want_key: bool,
    /// The link gave a frame up: decided at the next poll, which knows the time.
    video_lost: bool,
    /// The latest key-frame request id (0 for none), carried in every stick command.
    key_request: u32,
    /// When the latest request was sent, while the aircraft has not shown it honoured it.
    asked_at: Option<Timestamp>,
    /// When the requests that no key frame followed yet were sent.
    unanswered: Vec<Timestamp>,
    /// When the latest video frame was delivered.
    last_frame_at: Option<Timestamp>,
    /// The link's smoothed round trip, at the latest poll.
    rtt: Duration,
    /// The link's video reassembly timeout: a frame it gives up started arriving this long
    /// before.
    reassembly_timeout: Duration,
    /// What happened.
    pub stats: RemoteStats,
}

const STICK_PERIOD: Duration = Duration::from_millis(10);

impl RemoteApp {
    /// A remote whose pilot types `code` and downloads the flight log.
    pub fn new(code: &[u8]) -> Self {
        RemoteApp {
            code: Zeroizing::new(code.to_vec()),
            next_stick: Timestamp::ZERO,
            unlock_asked: false,
            list_asked: false,
            read_asked: false,
            fresh_sessions: 0,
            hasher: Sha256::new(),
            clock_offset: Duration::ZERO,
            decoder: Decoder::new(),
            want_key: false,
            video_lost: false,
            key_request: 0,
            asked_at: None,
            unanswered: Vec::new(),
            last_frame_at: None,
            rtt: DEFAULT_RTT,
            reassembly_timeout: rotorlink::Config::default().video_reassembly_timeout,
            stats: RemoteStats {
                download: DownloadStats {
                    wanted: FLIGHT_LOG.to_string(),
                    ..DownloadStats::default()
                },
                ..RemoteStats::default()
            },
        }
    }

    /// Download `file` instead of the flight log: a name from the aircraft's list, or a
    /// name without its extension (`clip` for `clip.mp4`, `photo-2` for `photo-2.jpg`).
    pub fn downloading(mut self, file: &str) -> Self {
        self.stats.download.wanted = file.to_string();
        self
    }

    /// Stamp and measure with the link's clock plus `offset` (see
    /// [`crate::aircraft::AircraftApp::with_clock_offset`]).
    pub fn with_clock_offset(mut self, offset: Duration) -> Self {
        self.clock_offset = offset;
        self
    }

    /// When [`RemoteApp::poll`] next has something to do.
    pub fn next_wakeup(&self) -> Timestamp {
        match self.asked_at {
            // Ask again once the wait for the answer is over.
            Some(at) if self.want_key => self.next_stick.min(at + self.answer_wait()),
            _ => self.next_stick,
        }
    }

    /// How long a key-frame request is outstanding at most.
    fn answer_wait(&self) -> Duration {
        self.rtt + ANSWER_SLACK
    }

    /// Send what is due at `now`: stick commands, a key-frame request if the picture is
    /// broken, storage requests.
    pub fn poll(&mut self, now: Timestamp, link: &mut Link) {
        let connected = link.is_connected();
        if connected && self.stats.connected_at.is_none() {
            self.stats.connected_at = Some(now);
        }
        if let Some(srtt) = link.path_estimate().srtt {
            self.rtt = srtt;
        }
        self.reassembly_timeout = link.config().video_reassembly_timeout;
        // A frame given up matters only if nothing arrived since it started arriving: a frame
        // that did arrive already told whether the picture broke (or was mended since).
        if std::mem::take(&mut self.video_lost)
            && self
                .last_frame_at
                .is_none_or(|at| now.saturating_since(at) >= self.reassembly_timeout)
        {
            self.want_key = true;
        }
        if let Some(at) = self.asked_at {
            if now >= at + self.answer_wait() {
                self.asked_at = None;
            }
        }
        if connected && self.want_key && self.asked_at.is_none() {
            self.want_key = false;
            self.key_request = self.key_request.saturating_add(1);
            self.asked_at = Some(now);
            self.unanswered.push(now);
            self.stats.key_requests.push(now);
            // The request goes at once, in a stick command of its own.
            self.next_stick = self.next_stick.min(now);
        }
        while now >= self.next_stick {
            self.next_stick = self.next_stick + STICK_PERIOD;
            if connected {
                let sticks = [0x80, 0x00, 0x7f, 0xf0, 0x80, 0x00, 0x90, 0x00];
                let message = stick_command(now + self.clock_offset, sticks, self.key_request);
                // Latest wins: a refused command is superseded by the next, 10 ms later.
                match link.send(Channel::Control, &message) {
                    Ok(()) => self.stats.sticks_sent += 1,
                    Err(_) => self.stats.sticks_refused += 1,
                }
            }
        }
        if connected && !self.unlock_asked && !link.storage_unlocked() {
            self.unlock_asked = link.unlock_storage(&self.code, now).is_ok();
        }
        if link.storage_unlocked() {
            self.ask(now, link);
        }
    }

    /// Ask for what the download needs next: the list, then the file from the bytes held.
    fn ask(&mut self, now: Timestamp, link: &mut Link) {
        let d = &self.stats.download;
        if d.finished() {
            return;
        }
        let request = match &d.file {
            None if !self.list_asked => Request::List,
            Some(file) if !self.read_asked => Request::Read {
                name: file.name.clone(),
                offset: d.received,
                end: file.size,
            },
            _ => return,
        };
        if let Err(e) = link.send(Channel::Storage, &request.encode()) {
            // Not asked: asked again at the next poll (a full queue has room by then; a
            // closed link never has, and nothing is owed then).
            debug_assert!(!matches!(e, SendError::MessageSize { .. }), "{e}");
            self.stats.storage_refused += 1;
            return;
        }
        let d = &mut self.stats.download;
        match request {
            Request::List => self.list_asked = true,
            Request::Read { offset, .. } => {
                self.read_asked = true;
                if d.requested_at.is_some() {
                    d.resumed_at.push(offset);
                } else {
                    d.requested_at = Some(now);
                }
            }
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
            Channel::Video => self.on_frame(now, data),
            Channel::Storage => self.on_storage_message(now, data),
            _ => {}
        }
    }

    fn on_frame(&mut self, now: Timestamp, data: &[u8]) {
        self.stats.video_frames += 1;
        self.last_frame_at = Some(now);
        let Some(header) = FrameHeader::parse(data) else {
            self.stats.corrupted_video += 1;
            return;
        };
        let at = now + self.clock_offset;
        self.stats
            .video_latencies
            .push(at.saturating_since(header.sent_at));
        let decodable = self.decoder.decode(&header);
        // A decodable frame means the picture is whole again; one that is not, broken.
        self.want_key = !decodable;
        if decodable {
            self.stats.video_frames_decodable += 1;
        }
        if header.kind == FrameKind::Key {
            for asked in self.unanswered.drain(..) {
                self.stats.key_waits.push(now.saturating_since(asked));
            }
        }
        if self.key_request > 0 && header.request >= self.key_request {
            // The aircraft honoured the latest request: if this frame does not decode, its
            // answer was lost, and the remote may ask again at once.
            self.asked_at = None;
        }
        self.stats.video_arrivals.push(FrameArrival {
            at: now,
            number: header.number,
            kind: header.kind,
            key: header.key,
            request: header.request,
            decodable,
        });
    }

    fn on_storage_message(&mut self, now: Timestamp, data: &[u8]) {
        let d = &mut self.stats.download;
        match Response::parse(data) {
            Ok(Response::Files(files)) => {
                if d.file.is_some() {
                    // Asked once; a repeat (after a new session) changes nothing.
                    return;
                }
                match files.into_iter().find(|f| f.matches(&d.wanted)) {
                    Some(file) => {
                        let empty = file.size == 0;
                        d.file = Some(file);
                        if empty {
                            self.finish();
                        }
                    }
                    None => d.error = Some(format!("no file named {} on the aircraft", d.wanted)),
                }
            }
            Ok(Response::Data { offset, data }) => {
                let Some(size) = d.file.as_ref().map(|f| f.size) else {
                    self.storage_corrupted();
                    return;
                };
                // The channel delivers in order and exactly once: each piece follows the
                // last, and a new session asks again from the bytes held.
                let end = offset.saturating_add(data.len() as u64);
                if offset != d.received || end > size || d.complete() {
                    self.storage_corrupted();
                    return;
                }
                self.hasher.update(data);
                d.received = end;
                d.last_data_at = Some(now);
                if d.complete() {
                    self.finish();
                }
            }
            Ok(Response::Fail(reason)) => {
                d.error = Some(format!("the aircraft refused: {reason}"));
            }
            Err(_) => self.storage_corrupted(),
        }
    }

    /// Every byte arrived: check the SHA-256.
    fn finish(&mut self) {
        let digest = std::mem::take(&mut self.hasher).finalize();
        let d = &mut self.stats.download;
        d.verified = d.file.as_ref().is_some_and(|f| f.sha256 == *digest);
        if !d.verified {
            // Every byte arrived and still the digest differs: not what was sent.
            self.storage_corrupted();
        }
    }

    fn storage_corrupted(&mut self) {
        self.stats.corrupted_storage += 1;
    }

    /// Take one of the link's other events.
    pub fn on_event(&mut self, event: &Event) {
        let refusal = match *event {
            Event::VideoLost { .. } => {
                self.video_lost = true;
                return;
            }
            Event::Connected { kind: Kind::Resume } => {
                self.stats.first_handshake.get_or_insert(Kind::Resume);
                self.stats.reconnects += 1;
                return;
            }
            Event::Connected { kind } => {
                self.stats.first_handshake.get_or_insert(kind);
                self.fresh_sessions += 1;
                if self.fresh_sessions > 1 {
                    self.stats.reconnects += 1;
                    // A new session: the storage channel starts afresh, locked. Unlock it
                    // again and ask for the file from the bytes held.
                    self.unlock_asked = false;
                    self.list_asked = false;
                    self.read_asked = false;
                }
                return;
            }
            Event::PairingRejected { remaining_attempts } => format!(
                "the aircraft rejected the code, or someone interfered ({remaining_attempts} \
                 attempts left before lockout)"
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

    fn list(files: &[(&str, &[u8])]) -> Vec<u8> {
        let files = files
            .iter()
            .map(|(name, bytes)| FileInfo {
                name: name.to_string(),
                size: bytes.len() as u64,
                sha256: Sha256::digest(bytes).into(),
            })
            .collect();
        Response::Files(files).encode()
    }

    fn data(offset: u64, bytes: &[u8]) -> Vec<u8> {
        Response::Data {
            offset,
            data: bytes,
        }
        .encode()
    }

    #[test]
    fn a_whole_file_with_the_wrong_digest_is_corrupted_and_a_short_one_is_not() {
        let t = Timestamp::ZERO;
        let log = *b"flightlg";
        let files = list(&[(FLIGHT_LOG, &log), ("clip.mp4", b"0123456789")]);

        let mut remote = RemoteApp::new(b"246813");
        remote.on_message(t, Channel::Storage, &files);
        remote.on_message(t, Channel::Storage, &data(0, &log[..4]));
        assert!(!remote.stats.download.complete());
        remote.on_message(t, Channel::Storage, &data(4, &log[4..]));
        let d = &remote.stats.download;
        assert!(d.complete() && d.verified, "{d:?}");
        assert_eq!(d.received, 8);
        assert_eq!(remote.stats.corrupted(), [0; 4]);

        // Every byte arrived, and the digest does not match: corrupted.
        let mut remote = RemoteApp::new(b"246813");
        remote.on_message(t, Channel::Storage, &files);
        remote.on_message(t, Channel::Storage, &data(0, b"flightLG"));
        assert!(remote.stats.download.complete() && !remote.stats.download.verified);
        assert_eq!(remote.stats.corrupted_storage, 1);

        // Half of it: incomplete, not corrupted. A piece out of place, past the end, before
        // the list, or a message that is not one of the protocol's: corrupted.
        let mut remote = RemoteApp::new(b"246813").downloading("clip");
        remote.on_message(t, Channel::Storage, &data(0, b"01"));
        assert_eq!(remote.stats.corrupted_storage, 1, "before the list");
        remote.on_message(t, Channel::Storage, &files);
        remote.on_message(t, Channel::Storage, &data(0, b"01234"));
        assert_eq!(
            remote.stats.download.file.as_ref().unwrap().name,
            "clip.mp4"
        );
        assert!(!remote.stats.download.complete() && !remote.stats.download.verified);
        assert_eq!(remote.stats.corrupted_storage, 1);
        remote.on_message(t, Channel::Storage, &data(3, b"34"));
        remote.on_message(t, Channel::Storage, &data(5, b"56789X"));
        remote.on_message(t, Channel::Storage, b"12345");
        assert_eq!(remote.stats.corrupted(), [0, 0, 0, 4]);
        assert_eq!(remote.stats.download.received, 5);
        remote.on_message(t, Channel::Storage, &data(5, b"56789"));
        assert!(remote.stats.download.verified);
    }

    #[test]
    fn a_file_the_aircraft_does_not_have_is_an_error_not_a_wait() {
        let t = Timestamp::ZERO;
        let mut remote = RemoteApp::new(b"246813").downloading("clip");
        remote.on_message(t, Channel::Storage, &list(&[(FLIGHT_LOG, b"log")]));
        let d = &remote.stats.download;
        assert!(d.finished() && !d.complete());
        assert_eq!(
            d.error.as_deref(),
            Some("no file named clip on the aircraft")
        );
        let mut remote = RemoteApp::new(b"246813");
        remote.on_message(t, Channel::Storage, &Response::Fail("busy".into()).encode());
        assert!(remote.stats.download.finished());
        assert_eq!(remote.stats.corrupted_storage, 0);
    }
}
