//! The fake aircraft: telemetry at 50 Hz, a video stream with periodic key frames whose
//! bitrate follows the link's [`Event::VideoBudget`], onboard storage (the flight log,
//! photos, a video clip) served over the storage channel, stick commands applied as they
//! arrive, and a return-to-home failsafe when the pilot's commands stop for too long (the
//! link's [`Failsafe`]: its own over a link it is handed, the driver's over the tokio
//! adapter).
//!
//! Nothing it sends is dropped silently. Files are produced only as fast as the link takes
//! them: the aircraft sends chunks until the storage queue is full
//! ([`SendError::QueueFull`]) and then waits for [`Event::Writable`] before making more
//! (see [`crate::storage`] for the protocol). Telemetry and video are real time: a message
//! the link cannot queue is not retried, it is counted
//! ([`AircraftStats::telemetry_refused`], [`AircraftStats::video_frames_refused`]) and
//! reported, as is video the link dropped because it would have waited too long
//! ([`Event::VideoDropped`], [`AircraftStats::video_dropped`]).
//!
//! Every frame starts with a [`FrameHeader`]: its number, its kind, the key frame it depends
//! on, and when it was handed to the link. When the remote asks for a key frame (a new id in
//! the key-frame request field of its stick commands, see [`CONTROL_LEN`]), the encoder
//! makes its next frame a key frame and counts its periodic pattern from there, as x264,
//! NVENC or libvpx do with a forced IDR frame: the periodic key frames exist to bound how
//! long a broken picture lasts, and one a few frames after a forced one would spend four
//! frames' bits on a radio that is already losing frames, for nothing.
//!
//! The encoder runs at `min(video_bitrate, budget)`: the camera's configured bitrate is the
//! most it asks for, and the link's latest [`Event::VideoBudget`] (what the radio carries)
//! lowers it. Like a real encoder it changes bitrate at a frame boundary: the next frame is
//! sized from the new rate, key frames included.

use std::collections::VecDeque;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rotorlink::handshake::Kind;
use rotorlink::{Channel, Event, Failsafe, Link, SendError, Timestamp};
use sha2::{Digest, Sha256};

use crate::storage::{
    self, DigestJob, Digested, Onboard, Request, Response, StorageConfig, DATA_HEADER_LEN,
};
use crate::video::{FrameHeader, FrameKind, FRAME_HEADER_LEN};

/// Length of a stick command: stamp, four 16-bit axes, key-frame request, check (see
/// [`is_intact`]); made by [`stick_command`].
///
/// The key-frame request is the id (big-endian `u32`, 0 for none) of the latest key frame
/// the remote asked for; the aircraft makes one key frame for each id above the last it
/// honoured. It rides in every stick command, on the control channel, because that is the
/// fastest and surest way to the aircraft: control is sent before all other data and at
/// 100 Hz, so a request waits at most one stick period, and a lost datagram costs the next
/// command 10 ms later rather than a retransmission timeout. Latest-wins suits it: the
/// request is state (the latest id), not an event, so a command that replaces another loses
/// nothing. The storage channel is reliable but slower to recover a loss, and locked until
/// the code is proven again; the session channel is the link's own; telemetry only goes
/// the other way.
pub const CONTROL_LEN: usize = 8 + 8 + 4 + CHECK_LEN;
/// Length of a telemetry message: stamp, altitude, battery, failsafe flag, link quality,
/// check (see [`is_intact`]).
pub const TELEMETRY_LEN: usize = 8 + 8 + CHECK_LEN;
/// Length of the check that ends every stick command and telemetry message.
const CHECK_LEN: usize = 8;

/// What the aircraft does.
#[derive(Debug, Clone, PartialEq)]
pub struct AircraftConfig {
    /// Telemetry messages per second (default 50).
    pub telemetry_hz: u32,
    /// The most the camera asks of the video encoder, in bits per second (default
    /// 20 Mbit/s); the encoder runs below it when the link's video budget is lower.
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
    /// Photos in onboard storage, `photo-1.jpg` and on (default 3).
    pub photos: u32,
    /// Size of each photo (default 4 MiB).
    pub photo_size: u64,
    /// Size of the video clip in onboard storage, `clip.mp4` (default 32 MiB; 0 for none).
    pub clip_size: u64,
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
            photos: 3,
            photo_size: 4 << 20,
            clip_size: 32 << 20,
        }
    }
}

impl AircraftConfig {
    /// What the onboard storage holds.
    pub fn storage(&self) -> StorageConfig {
        StorageConfig {
            log_len: self.initial_log_len,
            photos: self.photos,
            photo_size: self.photo_size,
            clip_size: self.clip_size,
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
    /// Payload bytes of those frames (the parity the link adds is not counted).
    pub video_bytes_sent: u64,
    /// The key-frame requests the encoder honoured: the request's id and when the key frame
    /// made for it was handed to the link (refused or not).
    pub key_requests_honoured: Vec<(u32, Timestamp)>,
    /// Video frames the link refused (its queue was full, or it was closed): dropped, as
    /// real-time video is, and counted here.
    pub video_frames_refused: u64,
    /// Video frames the link took and then dropped before sending any of them, because they
    /// would have waited too long ([`Event::VideoDropped`]).
    pub video_dropped: u64,
    /// The encoder's bitrate, bits per second, from each frame at which it changed: the
    /// first frame encoded, then each change the video budget made.
    pub video_bitrates: Vec<(Timestamp, u64)>,
    /// The sum of the encoder's bitrate over every frame encoded (for the mean: see
    /// [`AircraftStats::video_bitrate_mean`]).
    pub video_bitrate_sum: u64,
    /// Telemetry messages the link refused (its queue was full, or it was closed).
    pub telemetry_refused: u64,
    /// Failsafes raised.
    pub failsafe_events: u64,
    /// Storage requests taken (lists and reads).
    pub storage_requests: u64,
    /// Storage messages delivered that were not requests of the protocol (must stay 0).
    pub corrupted_storage: u64,
    /// File bytes handed to the link.
    pub storage_bytes_sent: u64,
    /// Times the storage queue was full and the aircraft waited for
    /// [`Event::Writable`] before sending more.
    pub storage_waits: u64,
    /// Storage sends refused for another reason than a full queue (the link closed, or a
    /// new session locked the storage again): the answer or transfer was given up (the
    /// remote asks again after a new session).
    pub storage_refused: u64,
}

impl AircraftStats {
    /// Messages delivered corrupted, per channel (control, telemetry, video, storage): the
    /// stick commands and the storage requests.
    pub fn corrupted(&self) -> [u64; 4] {
        [self.corrupted_control, 0, 0, self.corrupted_storage]
    }

    /// Frames the encoder made (handed to the link or refused by it).
    pub fn video_frames_encoded(&self) -> u64 {
        self.video_frames_sent + self.video_frames_refused
    }

    /// The encoder's mean bitrate over the frames it made, bits per second (`None` before
    /// the first frame).
    pub fn video_bitrate_mean(&self) -> Option<u64> {
        self.video_bitrate_sum
            .checked_div(self.video_frames_encoded())
    }

    /// The encoder's bitrate for the latest frame, bits per second (`None` before the
    /// first frame).
    pub fn video_bitrate_last(&self) -> Option<u64> {
        self.video_bitrates.last().map(|&(_, bps)| bps)
    }

    /// Messages the link refused and the application dropped, per channel (control,
    /// telemetry, video, storage). Storage waits instead of dropping: always 0 there.
    pub fn refused(&self) -> [u64; 4] {
        [0, self.telemetry_refused, self.video_frames_refused, 0]
    }
}

/// The aircraft application.
#[derive(Debug)]
pub struct AircraftApp {
    config: AircraftConfig,
    rng: ChaCha8Rng,
    next_telemetry: Timestamp,
    next_frame: Timestamp,
    /// The number of the next frame.
    frame_no: u32,
    /// Frames until the next periodic key frame (0: the next frame is one).
    frames_to_key: u32,
    /// The number of the latest key frame, which the delta frames depend on.
    last_key: u32,
    /// A key-frame request the next frame answers.
    key_wanted: Option<u32>,
    /// The latest key-frame request honoured (0 for none).
    key_honoured: u32,
    /// Bytes the forced key frames cost above the delta frames they replaced, not yet paid
    /// back by smaller frames.
    key_debt: usize,
    /// The link's latest video budget, bits per second, if it reported one.
    video_budget: Option<u64>,
    storage: Onboard,
    /// Answers to send before any more file data, oldest first.
    answers: VecDeque<Answer>,
    /// The file being sent.
    transfer: Option<Transfer>,
    /// A storage send was refused as full: wait for [`Event::Writable`].
    storage_blocked: bool,
    /// The generated files are hashed elsewhere ([`AircraftApp::hash_elsewhere`]).
    hash_elsewhere: bool,
    /// The message being built (reused: no allocation per chunk).
    scratch: Vec<u8>,
    failsafe: Watch,
    altitude_cm: i32,
    battery: u8,
    /// Added to the link's clock in stamps (see [`AircraftApp::with_clock_offset`]).
    clock_offset: Duration,
    /// What happened.
    pub stats: AircraftStats,
}

/// An answer waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// The list (made when it goes out, once the digests are known).
    List,
    /// A refusal.
    Fail(String),
}

/// A file being sent: bytes `next..end` of `name` are still to go.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Transfer {
    name: String,
    next: u64,
    end: u64,
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

/// A stick command stamped `now`, with the sticks' four 16-bit `axes` and the id of the
/// latest `key_request` (0 for none), checked (see [`CONTROL_LEN`] for its bytes).
pub fn stick_command(now: Timestamp, axes: [u8; 8], key_request: u32) -> Vec<u8> {
    let mut body = axes.to_vec();
    body.extend_from_slice(&key_request.to_be_bytes());
    with_check(Channel::Control, stamped(now, &body))
}

/// The key-frame request id of a stick command (0 for none; `None` if it is not one).
pub fn key_request_of(command: &[u8]) -> Option<u32> {
    if command.len() != CONTROL_LEN {
        return None;
    }
    Some(u32::from_be_bytes(command.get(16..20)?.try_into().ok()?))
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
    /// An aircraft whose onboard storage holds a flight log made from `seed`, and the
    /// photos and clip of `config`.
    pub fn new(config: AircraftConfig, seed: u64) -> Self {
        let storage = Onboard::new(&config.storage(), seed);
        // The log's bytes come from their own generator: the application's starts here.
        let rng = ChaCha8Rng::seed_from_u64(seed ^ 0xa1c3);
        let failsafe = Watch::Own(Failsafe::new(config.failsafe_after));
        AircraftApp {
            config,
            rng,
            next_telemetry: Timestamp::ZERO,
            next_frame: Timestamp::ZERO,
            frame_no: 0,
            frames_to_key: 0,
            last_key: 0,
            key_wanted: None,
            key_honoured: 0,
            key_debt: 0,
            video_budget: None,
            storage,
            answers: VecDeque::new(),
            transfer: None,
            storage_blocked: false,
            hash_elsewhere: false,
            scratch: Vec::new(),
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

    /// What the aircraft does.
    pub fn config(&self) -> &AircraftConfig {
        &self.config
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

    /// The encoder's bitrate for the next frame: what the camera asks, or less if the link's
    /// budget is lower.
    pub fn video_bitrate(&self) -> u64 {
        self.video_budget.map_or(self.config.video_bitrate, |b| {
            b.min(self.config.video_bitrate)
        })
    }

    /// The length of the next frame at `bitrate`, `forced` on request or not. A forced key
    /// frame costs more than the delta frame it replaces; like a real encoder's rate
    /// control, the encoder pays that back from the frames after it (each gives up to three
    /// quarters of its size), so that frequent requests on a saturated radio do not raise
    /// the bitrate above the link's budget and make it drop more frames.
    fn paid_frame_len(&mut self, bitrate: u64, key: bool, forced: bool) -> usize {
        let nominal = self.frame_len(bitrate, key);
        if forced {
            self.key_debt += nominal.saturating_sub(self.frame_len(bitrate, false));
        }
        let repay = self.key_debt.min(nominal * 3 / 4);
        self.key_debt -= repay;
        (nominal - repay).max(FRAME_HEADER_LEN)
    }

    fn frame_len(&self, bitrate: u64, key: bool) -> usize {
        let per_frame = bitrate / 8 / u64::from(self.config.video_fps.max(1));
        let n = u64::from(self.config.key_frame_interval.max(1));
        // Delta frames are sized so that the average, key frames included, is the bitrate.
        let delta = per_frame * n / (n + 3);
        (if key { delta * 4 } else { delta }).max(FRAME_HEADER_LEN as u64) as usize
    }

    /// Send what is due at `now`, watch for the failsafe, and send what the storage
    /// channel has room for (hashing the files first if a list was asked for: see
    /// [`AircraftApp::hash_files`]).
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
                self.storage.append_log(&message);
                // Real time: a record the link cannot take now is stale by the next one.
                if link.send(Channel::Telemetry, &message).is_err() {
                    self.stats.telemetry_refused += 1;
                }
            }
        }
        while now >= self.next_frame {
            self.next_frame = self.next_frame
                + Duration::from_micros(1_000_000 / u64::from(self.config.video_fps.max(1)));
            if flying && self.config.video_bitrate > 0 {
                let forced = self.frames_to_key != 0 && self.key_wanted.is_some();
                let key = self.frames_to_key == 0 || forced;
                if key {
                    self.frames_to_key = self.config.key_frame_interval.max(1);
                    self.last_key = self.frame_no;
                    if let Some(id) = self.key_wanted.take() {
                        self.key_honoured = id;
                        self.stats.key_requests_honoured.push((id, now));
                    }
                }
                self.frames_to_key -= 1;
                // The budget that arrived since the last frame applies from this one on.
                let bitrate = self.video_bitrate();
                if self.stats.video_bitrate_last() != Some(bitrate) {
                    self.stats.video_bitrates.push((now, bitrate));
                }
                self.stats.video_bitrate_sum += bitrate;
                // Stamped when handed to the link: the link tells nothing of when its first
                // fragment goes out.
                let frame = FrameHeader {
                    sent_at: now + self.clock_offset,
                    number: self.frame_no,
                    kind: if key {
                        FrameKind::Key
                    } else {
                        FrameKind::Delta
                    },
                    key: self.last_key,
                    request: self.key_honoured,
                }
                .frame(self.paid_frame_len(bitrate, key, forced));
                self.frame_no = self.frame_no.wrapping_add(1);
                match link.send(Channel::Video, &frame) {
                    Ok(()) => {
                        self.stats.video_frames_sent += 1;
                        self.stats.video_bytes_sent += frame.len() as u64;
                    }
                    Err(_) => self.stats.video_frames_refused += 1,
                }
            }
        }
        self.hash_files();
        self.pump_storage(link);
    }

    /// Compute the SHA-256 of the files a list request waits for (the slow part of
    /// answering it: a 1 GiB clip takes about a second), without the link; only the flight
    /// log's after [`AircraftApp::hash_elsewhere`]. [`AircraftApp::poll`] calls it.
    pub fn hash_files(&mut self) {
        if self.answers.contains(&Answer::List) {
            if self.hash_elsewhere {
                self.storage.compute_log_digest();
            } else {
                self.storage.compute_digests();
            }
        }
    }

    /// Hash the generated files elsewhere from now on: their digests come through
    /// [`AircraftApp::digest_jobs`] and [`AircraftApp::digested`], and a list waits for
    /// them. What [`fly_aircraft`](crate::flight::fly_aircraft) does in real time, on a
    /// thread of their own: hashed in the loop that takes the link's messages, a 256 MiB
    /// clip held the pilot's sticks for 230 ms.
    pub fn hash_elsewhere(&mut self) {
        self.hash_elsewhere = true;
    }

    /// The digests a list request waits for, as jobs to run elsewhere (none if no list
    /// waits, or they are known).
    pub fn digest_jobs(&self) -> Vec<DigestJob> {
        if self.answers.contains(&Answer::List) {
            self.storage.digest_jobs()
        } else {
            Vec::new()
        }
    }

    /// Keep a digest a [`DigestJob`] computed.
    pub fn digested(&mut self, done: Digested) {
        self.storage.set_digest(done);
    }

    /// The onboard storage.
    pub fn storage(&self) -> &Onboard {
        &self.storage
    }

    /// Stop sending the file under way (the flight is over: the remote asked for the
    /// summary). What the link has queued still goes out, unless withdrawn
    /// ([`Link::discard_unsent_storage`]).
    pub fn stop_transfer(&mut self) {
        self.transfer = None;
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
                if let Some(id) = key_request_of(data) {
                    // Each id once: every stick command repeats the latest.
                    if id > self.key_honoured && self.key_wanted.is_none_or(|w| id > w) {
                        self.key_wanted = Some(id);
                    }
                }
                if let Watch::Own(failsafe) = &mut self.failsafe {
                    failsafe.on_control(now);
                }
                self.altitude_cm = (self.altitude_cm + 1).min(12_000);
                if self.stats.sticks_applied % 6000 == 0 {
                    self.battery = self.battery.saturating_sub(1);
                }
            }
            Channel::Storage => {
                match Request::parse(data) {
                    Ok(request) => self.on_request(request),
                    Err(_) => self.stats.corrupted_storage += 1,
                }
                self.pump_storage(link);
            }
            _ => {}
        }
    }

    /// Take one of the link's other events: [`Event::Writable`] for the storage channel
    /// sends more of the file; a new session (not a resume) started the storage channel
    /// afresh, so what was queued is gone and the remote will ask again;
    /// [`Event::VideoBudget`] sets the encoder's bitrate from the next frame on;
    /// [`Event::VideoDropped`] is counted.
    pub fn on_event(&mut self, event: &Event, link: &mut Link) {
        match *event {
            Event::VideoBudget { bits_per_second } => self.video_budget = Some(bits_per_second),
            Event::VideoDropped { .. } => self.stats.video_dropped += 1,
            Event::Writable {
                channel: Channel::Storage,
            } => {
                self.storage_blocked = false;
                self.pump_storage(link);
            }
            Event::Connected { kind } if kind != Kind::Resume => {
                self.answers.clear();
                self.transfer = None;
                self.storage_blocked = false;
            }
            _ => {}
        }
    }

    fn on_request(&mut self, request: Request) {
        self.stats.storage_requests += 1;
        match request {
            Request::List => self.answers.push_back(Answer::List),
            Request::Read { name, offset, end } => match self.storage.size(&name) {
                Some(size) if end <= size => {
                    self.transfer = Some(Transfer {
                        name,
                        next: offset,
                        end,
                    });
                }
                Some(size) => self
                    .answers
                    .push_back(Answer::Fail(format!("{name} has {size} bytes, not {end}"))),
                None => self
                    .answers
                    .push_back(Answer::Fail(format!("no file named {name}"))),
            },
        }
    }

    /// Send answers, then file data, until the storage queue is full (then wait for
    /// [`Event::Writable`]) or nothing is left.
    fn pump_storage(&mut self, link: &mut Link) {
        if self.storage_blocked {
            return;
        }
        while let Some(answer) = self.answers.front() {
            if *answer == Answer::List && !self.storage.digests_ready() {
                // Hashed by the next `poll`, outside the link's lock.
                return;
            }
            self.scratch.clear();
            match answer {
                Answer::List => Response::Files(self.storage.list()),
                Answer::Fail(reason) => Response::Fail(reason.clone()),
            }
            .encode_into(&mut self.scratch);
            if !self.send_storage(link) {
                return;
            }
            self.answers.pop_front();
        }
        let chunk = link
            .config()
            .max_storage_message
            .saturating_sub(DATA_HEADER_LEN)
            .clamp(1, storage::CHUNK);
        while let Some(t) = &self.transfer {
            if t.next >= t.end {
                self.transfer = None;
                break;
            }
            let n = (t.end - t.next).min(chunk as u64) as usize;
            self.scratch.clear();
            storage::data_header(t.next, &mut self.scratch);
            self.scratch.resize(DATA_HEADER_LEN + n, 0);
            if !self
                .storage
                .read(&t.name, t.next, &mut self.scratch[DATA_HEADER_LEN..])
            {
                // Checked when the read was asked for; the log only grows.
                self.transfer = None;
                break;
            }
            if !self.send_storage(link) {
                return;
            }
            self.stats.storage_bytes_sent += n as u64;
            if let Some(t) = &mut self.transfer {
                t.next += n as u64;
            }
        }
    }

    /// Send the message in `scratch` on the storage channel. False if it was not sent:
    /// the queue is full (wait for [`Event::Writable`]), or the link refused it for good
    /// (what was pending is given up).
    fn send_storage(&mut self, link: &mut Link) -> bool {
        match link.send(Channel::Storage, &self.scratch) {
            Ok(()) => true,
            Err(SendError::QueueFull(_)) => {
                self.storage_blocked = true;
                self.stats.storage_waits += 1;
                false
            }
            Err(_) => {
                self.stats.storage_refused += 1;
                self.answers.clear();
                self.transfer = None;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelConfig;
    use crate::pair::Pair;
    use rotorlink::{Config, Role};

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
        let message = stick_command(at, [0x80; 8], 0);
        app.on_message(at, Channel::Control, &message, &mut pair.aircraft);
    }

    /// Fly both applications over `pair` until the download is finished or `limit` passes.
    fn fly(
        pair: &mut Pair,
        aircraft: &mut AircraftApp,
        remote: &mut crate::remote::RemoteApp,
        limit: Duration,
    ) {
        use crate::pair::Received;
        let end = pair.now() + limit;
        while pair.now() < end && !remote.stats.download.finished() {
            let now = pair.now();
            aircraft.poll(now, &mut pair.aircraft);
            remote.poll(now, &mut pair.remote);
            let next = aircraft.next_wakeup().min(remote.next_wakeup()).min(end);
            pair.run_until(next.max(now));
            for r in std::mem::take(&mut pair.aircraft_received) {
                match r {
                    Received::Message(t, c, data) => {
                        aircraft.on_message(t, c, &data, &mut pair.aircraft);
                    }
                    Received::Event(_, e) => aircraft.on_event(&e, &mut pair.aircraft),
                }
            }
            for r in std::mem::take(&mut pair.remote_received) {
                match r {
                    Received::Message(t, c, data) => remote.on_message(t, c, &data),
                    Received::Event(_, e) => remote.on_event(&e),
                }
            }
        }
    }

    /// A file larger than the storage queue holds (`send_queue_len` messages of the largest
    /// storage message the aircraft sends) arrives whole: the aircraft sends until the
    /// queue is full, then waits for `Writable`, so no chunk is dropped and none is sent
    /// twice. (When the aircraft ignored `QueueFull`, the tail of such a file was lost.)
    #[test]
    fn a_download_larger_than_the_send_queue_arrives_whole_under_flow_control() {
        let config = Config {
            send_queue_len: 4,
            ..Config::default()
        };
        let radio = ChannelConfig::default();
        let mut pair = Pair::new(config.clone(), radio.clone(), radio, 3).unwrap();
        let size = 1_500_001;
        let largest = storage::CHUNK + DATA_HEADER_LEN;
        assert!(size > config.send_queue_len * largest);
        let mut aircraft = AircraftApp::new(
            AircraftConfig {
                video_bitrate: 0,
                photos: 0,
                clip_size: size as u64,
                ..AircraftConfig::default()
            },
            3,
        );
        let mut remote = crate::remote::RemoteApp::new(b"246813").downloading("clip");
        fly(
            &mut pair,
            &mut aircraft,
            &mut remote,
            Duration::from_secs(20),
        );
        let d = &remote.stats.download;
        assert!(d.verified, "{d:?}");
        assert_eq!(d.received, size as u64);
        assert_eq!(d.file.as_ref().unwrap().name, storage::CLIP);
        let a = &aircraft.stats;
        assert!(a.storage_waits > 5, "the queue filled up: {a:?}");
        assert_eq!(a.storage_refused, 0);
        assert_eq!(a.storage_bytes_sent, size as u64, "each byte sent once");
        assert_eq!(a.storage_requests, 2, "a list and a read");
        assert_eq!(a.telemetry_refused, 0);
        // Every storage message queued arrived: the list and the chunks.
        let chunks = (size as u64).div_ceil(storage::CHUNK as u64);
        let sent = pair
            .aircraft
            .stats()
            .channel(Channel::Storage)
            .messages_sent;
        assert_eq!(sent, 1 + chunks);
        assert_eq!(
            pair.remote
                .stats()
                .channel(Channel::Storage)
                .messages_delivered,
            sent
        );
    }

    /// Video the link cannot queue is counted as refused, not dropped silently.
    #[test]
    fn video_the_link_refuses_is_counted() {
        let config = Config {
            send_queue_len: 2,
            ..Config::default()
        };
        let radio = ChannelConfig {
            loss: 1.0,
            ..ChannelConfig::default()
        };
        let mut pair = Pair::new(config, radio.clone(), radio, 3).unwrap();
        let mut app = AircraftApp::new(
            AircraftConfig {
                video_bitrate: 200_000_000,
                ..AircraftConfig::default()
            },
            3,
        );
        // Nothing is transmitted between the polls: the queue fills.
        for ms in 0..200 {
            app.poll(Timestamp::from_millis(ms), &mut pair.aircraft);
        }
        let s = &app.stats;
        assert!(s.video_frames_refused > 0, "{s:?}");
        assert_eq!(s.video_frames_sent + s.video_frames_refused, 6);
        assert!(s.telemetry_refused > 0, "{s:?}");
        assert_eq!(
            s.refused(),
            [0, s.telemetry_refused, s.video_frames_refused, 0]
        );
    }

    /// The encoder takes the link's budget at the next frame, key frames keep their pattern
    /// and size ratio at the new rate, and the camera's bitrate stays the ceiling.
    #[test]
    fn the_encoder_follows_the_video_budget_from_the_next_frame_never_above_the_camera() {
        let config = Config {
            // Nothing is dropped for waiting: every frame shows its size at the remote.
            video_max_queue_delay: Duration::from_secs(10),
            ..Config::default()
        };
        let radio = ChannelConfig::default();
        let mut pair = Pair::new(config, radio.clone(), radio, 5).unwrap();
        let mut app = AircraftApp::new(
            AircraftConfig {
                video_bitrate: 6_000_000,
                video_fps: 30,
                key_frame_interval: 3,
                telemetry_hz: 1,
                ..AircraftConfig::default()
            },
            5,
        );
        let period = Duration::from_micros(1_000_000 / 30);
        // The budget the link reports before each frame, if any.
        let budgets = [
            None,
            Some(3_000_000),
            None,
            Some(50_000_000),
            Some(1_500_000),
        ];
        for (i, budget) in budgets.into_iter().chain([None, None]).enumerate() {
            if let Some(bits_per_second) = budget {
                app.on_event(&Event::VideoBudget { bits_per_second }, &mut pair.aircraft);
            }
            app.poll(Timestamp::ZERO + period * i as u32, &mut pair.aircraft);
            pair.run_until(Timestamp::ZERO + period * (i as u32 + 1));
        }
        pair.run_for(Duration::from_secs(2));
        let sizes: Vec<usize> = pair
            .messages(Role::Remote, Channel::Video)
            .iter()
            .map(|m| m.len())
            .collect();
        // At 6 Mbit/s, 25 000 bytes a frame on average: with a key frame (four deltas) every
        // three frames, deltas of 12 500 and keys of 50 000.
        assert_eq!(
            sizes,
            [50_000, 6_250, 6_250, 50_000, 3_125, 3_125, 12_500],
            "key, 3 Mbit/s, 3 Mbit/s, key at the camera's 6 (not 50), then 1.5 Mbit/s"
        );
        let s = &app.stats;
        let changes: Vec<u64> = s.video_bitrates.iter().map(|&(_, b)| b).collect();
        assert_eq!(changes, [6_000_000, 3_000_000, 6_000_000, 1_500_000]);
        assert_eq!(s.video_bitrates[1].0, Timestamp::ZERO + period);
        assert_eq!(s.video_bitrate_last(), Some(1_500_000));
        assert_eq!(s.video_bitrate_mean(), Some(22_500_000 / 7));
        app.on_event(&Event::VideoDropped { message_id: 4 }, &mut pair.aircraft);
        assert_eq!(app.stats.video_dropped, 1);
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
        let message = stick_command(ms(5), [1, 2, 3, 4, 5, 6, 7, 8], 0);
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
        let mut message = stick_command(ms(10), [0x80; 8], 0);
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
