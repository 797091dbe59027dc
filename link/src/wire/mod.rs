//! The wire format: one frame per datagram, a fixed 12-byte header, then the payload, which
//! is the rest of the datagram.
//!
//! ```text
//!  0       1       2       3       4                               8
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! |version| type  | flags |channel|        receiver index         |
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! |   packet number (u32)         |  payload (ciphertext || 16-byte tag, or a
//! +-------+-------+-------+-------+  handshake message) ...
//! ```
//!
//! All integers are big-endian. The packet number is the low 32 bits of the sender's 64-bit
//! frame counter; the receiver recovers the counter from it and the newest counter it
//! accepted ([`counter_from_packet_number`]). For encrypted frames the 12 header bytes are
//! the AEAD's associated data, so no header field can be changed without the tag failing.
//! See `PROTOCOL.md` for the full specification.
//!
//! Parsing follows smoltcp: [`Frame`] is a zero-copy view over any `AsRef<[u8]>` that is only
//! built through [`Frame::new_checked`], after which every accessor is in bounds; [`Header`] is
//! the parsed, owned representation with [`Header::parse`] and [`Header::emit`]. Nothing here
//! allocates or panics on any input.

pub mod body;
pub mod handshake;
mod reader;
pub mod session;

use core::fmt;

/// The protocol version this crate speaks.
pub const VERSION: u8 = 2;
/// Length of the frame header in bytes.
pub const HEADER_LEN: usize = 12;
/// Length of the AEAD tag that ends every encrypted payload.
pub const TAG_LEN: usize = 16;
/// Largest datagram the protocol allows.
pub const MAX_DATAGRAM_LEN: usize = 16 * 1024;
/// Largest payload a frame may carry.
pub const MAX_PAYLOAD_LEN: usize = MAX_DATAGRAM_LEN - HEADER_LEN;

/// The flags bit that carries the key phase of an encrypted frame.
pub const FLAG_KEY_PHASE: u8 = 0x01;
const RESERVED_FLAGS: u8 = !FLAG_KEY_PHASE;

mod field {
    use core::ops::Range;
    pub(super) const VERSION: usize = 0;
    pub(super) const TYPE: usize = 1;
    pub(super) const FLAGS: usize = 2;
    pub(super) const CHANNEL: usize = 3;
    pub(super) const RECEIVER: Range<usize> = 4..8;
    pub(super) const PACKET_NUMBER: Range<usize> = 8..12;
}

/// The 64-bit counter whose low 32 bits are `packet_number`, nearest to `expected` (the
/// counter after the newest one accepted, 0 before any): RFC 9000's packet number
/// decoding (appendix A.3) for 32-bit packet numbers. A sender is never 2^31 frames ahead
/// of what its receiver accepted (that many frames lost in a row outlast every link-loss
/// timeout), nor are frames reordered by that much, so the nearest candidate is the
/// counter sent. Near 0 and near the top of the range the candidate on the far side does
/// not exist and the other is taken.
pub fn counter_from_packet_number(packet_number: u32, expected: u64) -> u64 {
    const WINDOW: u64 = 1 << 32;
    const HALF: u64 = WINDOW / 2;
    let candidate = (expected & !(WINDOW - 1)) | u64::from(packet_number);
    if candidate.saturating_add(HALF) <= expected {
        candidate.checked_add(WINDOW).unwrap_or(candidate)
    } else if candidate > expected.saturating_add(HALF) && candidate >= WINDOW {
        candidate - WINDOW
    } else {
        candidate
    }
}

/// Why a datagram could not be decoded. Each malformation has its own variant so that it can
/// be counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the header, or than a body's fields promise.
    Truncated,
    /// Bytes left over after a body (or a handshake message) whose fields say where it ends.
    TrailingBytes,
    /// A version this implementation does not speak.
    BadVersion(u8),
    /// A frame type this implementation does not know.
    UnknownType(u8),
    /// A channel id that is not defined, or a channel id on a frame type that takes none.
    BadChannel(u8),
    /// Flag bits that are reserved were set.
    ReservedFlags(u8),
    /// A payload longer than [`MAX_PAYLOAD_LEN`] (a datagram over [`MAX_DATAGRAM_LEN`]), or a
    /// body's length field beyond its limit.
    Oversize(usize),
    /// A payload shorter than its frame type requires (e.g. no room for the AEAD tag).
    PayloadTooShort,
    /// A field whose value is inconsistent with the others (e.g. a fragment index past the
    /// fragment count).
    InvalidField,
    /// A session-channel message type this implementation does not know.
    UnknownMessage(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("truncated frame"),
            DecodeError::TrailingBytes => f.write_str("bytes after the end of a body"),
            DecodeError::BadVersion(v) => write!(f, "unsupported protocol version {v}"),
            DecodeError::UnknownType(t) => write!(f, "unknown frame type {t:#04x}"),
            DecodeError::BadChannel(c) => write!(f, "invalid channel id {c}"),
            DecodeError::ReservedFlags(b) => write!(f, "reserved flag bits set: {b:#04x}"),
            DecodeError::Oversize(n) => write!(f, "payload length {n} exceeds the maximum"),
            DecodeError::PayloadTooShort => f.write_str("payload too short for its frame type"),
            DecodeError::InvalidField => f.write_str("inconsistent field value"),
            DecodeError::UnknownMessage(t) => write!(f, "unknown session message type {t}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Why a value could not be written. Separate from [`DecodeError`]: writing is this end's
/// own doing, never the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small for the value.
    BufferTooSmall,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

/// The frame types. Handshake types carry a cleartext handshake message; the others carry
/// ciphertext and a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// First handshake message, remote to aircraft.
    HandshakeInit = 0x01,
    /// Second handshake message, aircraft to remote.
    HandshakeResponse = 0x02,
    /// Third handshake message (key confirmation), remote to aircraft.
    HandshakeFinish = 0x03,
    /// Cookie reply sent by an aircraft under load instead of a response.
    CookieReply = 0x04,
    /// Application data on a channel.
    Data = 0x10,
    /// Acknowledgement for the reliable channel.
    Ack = 0x11,
    /// Empty authenticated frame that keeps the link alive.
    Keepalive = 0x12,
    /// Authenticated close with a reason code.
    Close = 0x13,
    /// Receiver feedback: what arrived, when, for the sender's estimate of the radio.
    Feedback = 0x14,
    /// A parity shard over a block of storage segments, sent at a transfer's tail.
    Repair = 0x15,
}

impl FrameType {
    /// Decode a type byte.
    ///
    /// # Errors
    /// [`DecodeError::UnknownType`] for any byte that is not a defined frame type.
    pub fn from_u8(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0x01 => FrameType::HandshakeInit,
            0x02 => FrameType::HandshakeResponse,
            0x03 => FrameType::HandshakeFinish,
            0x04 => FrameType::CookieReply,
            0x10 => FrameType::Data,
            0x11 => FrameType::Ack,
            0x12 => FrameType::Keepalive,
            0x13 => FrameType::Close,
            0x14 => FrameType::Feedback,
            0x15 => FrameType::Repair,
            other => return Err(DecodeError::UnknownType(other)),
        })
    }

    /// True for frames whose payload is AEAD ciphertext.
    pub fn is_encrypted(self) -> bool {
        (self as u8) >= 0x10
    }

    /// True for frame types whose channel byte names a channel (data and acks).
    pub fn has_channel(self) -> bool {
        matches!(self, FrameType::Data | FrameType::Ack)
    }
}

/// The logical channels. Each has its own delivery semantics; see [`crate::channel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Channel {
    /// The link's own control messages (key updates, storage unlock): reliable, in order.
    /// Internal: the application cannot send on it.
    Session = 0,
    /// Stick commands, remote to aircraft: small, latest wins, highest priority.
    Control = 1,
    /// Telemetry, aircraft to remote: unreliable, delivered in order of arrival.
    Telemetry = 2,
    /// Video, aircraft to remote: bulk, fragmented, loss tolerant.
    Video = 3,
    /// Onboard storage requests and responses: reliable, in order, exactly once.
    Storage = 4,
}

impl Channel {
    /// The application's channels, in priority order.
    pub const ALL: [Channel; 4] = [
        Channel::Control,
        Channel::Telemetry,
        Channel::Video,
        Channel::Storage,
    ];

    /// Decode a channel byte.
    ///
    /// # Errors
    /// [`DecodeError::BadChannel`] for any byte that is not a defined channel.
    pub fn from_u8(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0 => Channel::Session,
            1 => Channel::Control,
            2 => Channel::Telemetry,
            3 => Channel::Video,
            4 => Channel::Storage,
            other => return Err(DecodeError::BadChannel(other)),
        })
    }

    /// A short lower-case name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Session => "session",
            Channel::Control => "control",
            Channel::Telemetry => "telemetry",
            Channel::Video => "video",
            Channel::Storage => "storage",
        }
    }
}

/// A zero-copy view of one frame in a datagram.
///
/// Build it with [`Frame::new_checked`]; after that every accessor is in bounds.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wrap a buffer without checking it. Accessors may panic on a short buffer; use
    /// [`Frame::new_checked`] for anything from the network.
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wrap a buffer after checking that it holds a header and no more than the largest
    /// datagram.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] or [`DecodeError::Oversize`]. The other fields are
    /// checked by [`Header::parse`].
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let frame = Frame { buffer };
        frame.check_len()?;
        Ok(frame)
    }

    /// Check the buffer's length: a whole header, and no more than the largest datagram.
    ///
    /// # Errors
    /// See [`Frame::new_checked`].
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        if len > MAX_DATAGRAM_LEN {
            return Err(DecodeError::Oversize(len - HEADER_LEN));
        }
        Ok(())
    }

    /// Give back the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version byte.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// The raw frame type byte.
    pub fn frame_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The raw flags byte.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The raw channel byte.
    pub fn channel(&self) -> u8 {
        self.buffer.as_ref()[field::CHANNEL]
    }

    /// The receiver's session index.
    pub fn receiver_index(&self) -> u32 {
        u32::from_be_bytes(array(&self.buffer.as_ref()[field::RECEIVER]))
    }

    /// The packet number: the low 32 bits of the frame's counter.
    pub fn packet_number(&self) -> u32 {
        u32::from_be_bytes(array(&self.buffer.as_ref()[field::PACKET_NUMBER]))
    }

    /// The header bytes (the AEAD associated data of encrypted frames).
    pub fn header_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN]
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Set the version byte.
    pub fn set_version(&mut self, v: u8) {
        self.bytes_mut()[field::VERSION] = v;
    }

    /// Set the frame type byte.
    pub fn set_frame_type(&mut self, t: u8) {
        self.bytes_mut()[field::TYPE] = t;
    }

    /// Set the flags byte.
    pub fn set_flags(&mut self, flags: u8) {
        self.bytes_mut()[field::FLAGS] = flags;
    }

    /// Set the channel byte.
    pub fn set_channel(&mut self, c: u8) {
        self.bytes_mut()[field::CHANNEL] = c;
    }

    /// Set the receiver index.
    pub fn set_receiver_index(&mut self, index: u32) {
        self.bytes_mut()[field::RECEIVER].copy_from_slice(&index.to_be_bytes());
    }

    /// Set the packet number.
    pub fn set_packet_number(&mut self, packet_number: u32) {
        self.bytes_mut()[field::PACKET_NUMBER].copy_from_slice(&packet_number.to_be_bytes());
    }

    /// The header and payload as separate mutable slices (for sealing in place).
    pub fn split_header_payload_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        self.bytes_mut().split_at_mut(HEADER_LEN)
    }
}

/// Copy a slice of known length into an array. The ranges above make the length exact.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

/// The parsed, validated representation of a frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The frame type.
    pub frame_type: FrameType,
    /// The key phase bit (encrypted frames only; zero otherwise).
    pub key_phase: bool,
    /// The channel, for data and ack frames.
    pub channel: Option<Channel>,
    /// The receiver's session index.
    pub receiver_index: u32,
    /// The packet number: the low 32 bits of the frame's counter (0 in handshake frames).
    pub packet_number: u32,
}

impl Header {
    /// Parse and validate the header of a length-checked frame (the payload is the rest of
    /// the datagram).
    ///
    /// # Errors
    /// A [`DecodeError`] naming the first malformation found.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Self, DecodeError> {
        frame.check_len()?;
        if frame.version() != VERSION {
            return Err(DecodeError::BadVersion(frame.version()));
        }
        let frame_type = FrameType::from_u8(frame.frame_type())?;
        let flags = frame.flags();
        let allowed = if frame_type.is_encrypted() {
            !RESERVED_FLAGS
        } else {
            0
        };
        if flags & !allowed != 0 {
            return Err(DecodeError::ReservedFlags(flags));
        }
        let reliable = [Channel::Session as u8, Channel::Storage as u8];
        let channel = if frame_type == FrameType::Ack && !reliable.contains(&frame.channel()) {
            // Only the reliable channels are acknowledged.
            return Err(DecodeError::BadChannel(frame.channel()));
        } else if frame_type.has_channel() {
            Some(Channel::from_u8(frame.channel())?)
        } else if frame.channel() != 0 {
            return Err(DecodeError::BadChannel(frame.channel()));
        } else {
            None
        };
        if frame_type.is_encrypted() && frame.payload().len() < TAG_LEN {
            return Err(DecodeError::PayloadTooShort);
        }
        Ok(Header {
            frame_type,
            key_phase: flags & FLAG_KEY_PHASE != 0,
            channel,
            receiver_index: frame.receiver_index(),
            packet_number: frame.packet_number(),
        })
    }

    /// Write this header into the first [`HEADER_LEN`] bytes of `buf`.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] if `buf` is shorter than [`HEADER_LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), EncodeError> {
        let Some(head) = buf.get_mut(..HEADER_LEN) else {
            return Err(EncodeError::BufferTooSmall);
        };
        let mut frame = Frame::new_unchecked(head);
        frame.set_version(VERSION);
        frame.set_frame_type(self.frame_type as u8);
        frame.set_flags(if self.key_phase { FLAG_KEY_PHASE } else { 0 });
        frame.set_channel(self.channel.map_or(0, |c| c as u8));
        frame.set_receiver_index(self.receiver_index);
        frame.set_packet_number(self.packet_number);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            frame_type: FrameType::Data,
            key_phase: true,
            channel: Some(Channel::Video),
            receiver_index: 0xdead_beef,
            packet_number: 0x0506_0708,
        }
    }

    fn frame_bytes(h: &Header) -> [u8; HEADER_LEN + 20] {
        let mut buf = [0u8; HEADER_LEN + 20];
        h.emit(&mut buf).unwrap();
        buf
    }

    #[test]
    fn header_layout_is_as_specified() {
        let buf = frame_bytes(&sample());
        assert_eq!(
            &buf[..HEADER_LEN],
            &[2, 0x10, 0x01, 3, 0xde, 0xad, 0xbe, 0xef, 5, 6, 7, 8]
        );
    }

    #[test]
    fn header_round_trips() {
        let h = sample();
        let buf = frame_bytes(&h);
        let frame = Frame::new_checked(&buf[..]).unwrap();
        assert_eq!(Header::parse(&frame).unwrap(), h);
        assert_eq!(frame.payload().len(), 20);
    }

    #[test]
    fn every_malformation_has_its_error() {
        let good = frame_bytes(&sample());
        let parse = |b: &[u8]| Frame::new_checked(b).and_then(|f| Header::parse(&f));

        assert_eq!(parse(&good[..5]), Err(DecodeError::Truncated));
        assert_eq!(parse(&good[..HEADER_LEN - 1]), Err(DecodeError::Truncated));
        let mut long = [0u8; MAX_DATAGRAM_LEN + 1];
        long[..HEADER_LEN + 20].copy_from_slice(&good);
        assert_eq!(parse(&long[..MAX_DATAGRAM_LEN]).map(|_| ()), Ok(()));
        assert_eq!(
            parse(&long),
            Err(DecodeError::Oversize(MAX_PAYLOAD_LEN + 1))
        );

        let mut b = good;
        b[0] = 1;
        assert_eq!(parse(&b), Err(DecodeError::BadVersion(1)));
        let mut b = good;
        b[1] = 0x7f;
        assert_eq!(parse(&b), Err(DecodeError::UnknownType(0x7f)));
        let mut b = good;
        b[2] = 0x80;
        assert_eq!(parse(&b), Err(DecodeError::ReservedFlags(0x80)));
        let mut b = good;
        b[3] = 9;
        assert_eq!(parse(&b), Err(DecodeError::BadChannel(9)));
        let mut b = good;
        b[1] = FrameType::Keepalive as u8; // keepalives carry no channel
        assert_eq!(parse(&b), Err(DecodeError::BadChannel(3)));

        let mut short = [0u8; HEADER_LEN + TAG_LEN - 1];
        sample().emit(&mut short).unwrap();
        assert_eq!(parse(&short), Err(DecodeError::PayloadTooShort));
        assert_eq!(parse(&good[..HEADER_LEN + TAG_LEN]).map(|_| ()), Ok(()));
    }

    #[test]
    fn handshake_frames_take_no_flags_or_channel() {
        let h = Header {
            frame_type: FrameType::HandshakeInit,
            key_phase: false,
            channel: None,
            receiver_index: 0,
            packet_number: 0,
        };
        let mut buf = [0u8; HEADER_LEN];
        h.emit(&mut buf).unwrap();
        let parse = |b: &[u8]| Header::parse(&Frame::new_checked(b)?);
        assert_eq!(parse(&buf), Ok(h));
        buf[2] = FLAG_KEY_PHASE;
        assert_eq!(parse(&buf), Err(DecodeError::ReservedFlags(1)));
    }

    #[test]
    fn the_counter_is_recovered_from_its_packet_number() {
        let pn = |counter: u64| counter as u32;
        for (counter, expected) in [
            (0, 0),
            (5, 0),
            (1000, 1500),
            ((1 << 32) + 3, (1 << 32) - 10),
            ((1 << 32) - 3, (1 << 32) + 10),
            ((7 << 32) + 0x8000_0000, 7 << 32),
            (u64::MAX, u64::MAX - 5),
            (u64::MAX - 5, u64::MAX),
        ] {
            assert_eq!(
                counter_from_packet_number(pn(counter), expected),
                counter,
                "{counter} from {expected}"
            );
        }
        // A candidate more than half a window behind the expected counter: the next window.
        assert_eq!(
            counter_from_packet_number(0x9b32, 0xa82f_30eb),
            0x1_0000_9b32
        );
        // Before anything arrived, a small packet number is the counter itself.
        assert_eq!(counter_from_packet_number(3, 0), 3);
    }

    #[test]
    fn writing_into_a_short_buffer_is_an_encode_error() {
        let mut short = [0u8; HEADER_LEN - 1];
        assert_eq!(sample().emit(&mut short), Err(EncodeError::BufferTooSmall));
        let ack = body::AckBody::new(1, 64);
        assert_eq!(ack.emit(&mut [0u8; 3]), Err(EncodeError::BufferTooSmall));
    }
}
