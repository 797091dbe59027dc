//! The formats inside a decrypted payload. Each is parsed only after its frame's tag has
//! verified, but is still checked field by field: an authenticated peer can have bugs.
//!
//! ```text
//! Video fragment (Data, channel 3):    Storage segment (Data, channel 4):
//! +---------------+---------------+    +---------------+-------+
//! | message id    | total length  |    | sequence      | flags | data ...
//! +-------+-------+-------+-------+    +---------------+-------+
//! | index | count | parity| data ...     flags: 0x01 first segment, 0x02 last segment
//! +-------+-------+-------+
//!
//! Repair (storage):
//! +---------------+-------+-------+-------+
//! | first seq     | count | parity| index | parity shard ...
//! +---------------+-------+-------+-------+
//!
//! Ack (channels 4, 0):                               Close:
//! +---------------+--------+---+---------------+     +-------+
//! | next expected | window | n | n SACK ranges |     | code  |
//! +---------------+--------+---+---------------+     +-------+
//! ```

use super::reader::Reader;
use super::{DecodeError, EncodeError};

fn put(buf: &mut [u8], bytes: &[u8]) -> Result<usize, EncodeError> {
    buf.get_mut(..bytes.len())
        .ok_or(EncodeError::BufferTooSmall)?
        .copy_from_slice(bytes);
    Ok(bytes.len())
}

/// The header of one video fragment.
///
/// ```text
/// offset  0               4               8       10      12      14
///         +---------------+---------------+-------+-------+-------+---------
///         | message id    | total length  | index | count | parity| data ...
///         +---------------+---------------+-------+-------+-------+---------
/// ```
///
/// All fields are big-endian. A message of `total_len` bytes is cut into `count` data
/// fragments (the message's Reed-Solomon data shards) and followed by `parity` parity
/// fragments (0: no forward error correction). Index `0..count` is a data fragment: bytes
/// [`FragmentHeader::range`] of the message. Index `count..count + parity` is a parity
/// fragment: exactly one shard of [`FragmentHeader::shard_len`] bytes, parity shard
/// `index - count` of the systematic code over the data fragments, each zero-padded to the
/// shard length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader {
    /// The video message this fragment belongs to.
    pub message_id: u32,
    /// Length of the whole message in bytes.
    pub total_len: u32,
    /// Index of this fragment: `0..count` data, `count..count + parity` parity.
    pub index: u16,
    /// Number of data fragments in the message, at least 1.
    pub count: u16,
    /// Number of parity fragments sent after the data fragments; 0 for none.
    pub parity: u16,
}

impl FragmentHeader {
    /// Encoded length.
    pub const LEN: usize = 14;

    /// Size of every data fragment but the last: `ceil(total_len / count)`.
    pub fn fragment_size(&self) -> usize {
        (self.total_len as usize).div_ceil(usize::from(self.count.max(1)))
    }

    /// Length of one Reed-Solomon shard, and so of every parity fragment:
    /// [`FragmentHeader::fragment_size`] rounded up to an even number, because the
    /// erasure code (`reed-solomon-simd`) works on pairs of bytes. Data fragments are
    /// zero-padded to it for the code; the padding is never sent.
    pub fn shard_len(&self) -> usize {
        let size = self.fragment_size();
        size + size % 2
    }

    /// Is this a parity fragment (index at or past `count`)?
    pub fn is_parity(&self) -> bool {
        self.index >= self.count
    }

    /// Byte range of this data fragment inside the message (empty for a parity fragment).
    pub fn range(&self) -> core::ops::Range<usize> {
        if self.is_parity() {
            return 0..0;
        }
        let size = self.fragment_size();
        let start = size * usize::from(self.index);
        let end = (start + size).min(self.total_len as usize);
        start..end
    }

    /// Length of this fragment's data: the data range, or one shard for a parity fragment.
    pub fn data_len(&self) -> usize {
        if self.is_parity() {
            self.shard_len()
        } else {
            self.range().len()
        }
    }

    /// Parse a fragment header and return it with the fragment data.
    ///
    /// # Errors
    /// [`DecodeError::PayloadTooShort`] if the header does not fit, and
    /// [`DecodeError::InvalidField`] if the count is zero, the index is past
    /// `count + parity`, the layout leaves a data fragment empty, the erasure code does not
    /// support `count` data with `parity` parity shards, or the data length is not the one
    /// the layout gives.
    pub fn parse(payload: &[u8]) -> Result<(Self, &[u8]), DecodeError> {
        let mut r = Reader::new(payload);
        let h = FragmentHeader {
            message_id: r.u32()?,
            total_len: r.u32()?,
            index: r.u16()?,
            count: r.u16()?,
            parity: r.u16()?,
        };
        let data = r.rest();
        h.check(data.len())?;
        Ok((h, data))
    }

    /// Check the header's fields against each other and against `data_len`, the length of
    /// the data that came with it (what [`FragmentHeader::parse`] checks).
    ///
    /// # Errors
    /// [`DecodeError::InvalidField`] as [`FragmentHeader::parse`] says.
    pub fn check(&self, data_len: usize) -> Result<(), DecodeError> {
        if self.count == 0
            || self.total_len == 0
            || u32::from(self.index) >= u32::from(self.count) + u32::from(self.parity)
        {
            return Err(DecodeError::InvalidField);
        }
        // Every data fragment, the last included, must be non-empty for the layout to be
        // valid.
        let size = self.fragment_size();
        if size * (usize::from(self.count) - 1) >= self.total_len as usize {
            return Err(DecodeError::InvalidField);
        }
        if self.parity > 0 && !fec_supports(self.count, self.parity) {
            return Err(DecodeError::InvalidField);
        }
        if self.data_len() != data_len {
            return Err(DecodeError::InvalidField);
        }
        Ok(())
    }

    /// Write the header into `buf`, returning the bytes written.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] if `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&self.message_id.to_be_bytes());
        b[4..8].copy_from_slice(&self.total_len.to_be_bytes());
        b[8..10].copy_from_slice(&self.index.to_be_bytes());
        b[10..12].copy_from_slice(&self.count.to_be_bytes());
        b[12..14].copy_from_slice(&self.parity.to_be_bytes());
        put(buf, &b)
    }

    /// The fragment count a sender uses for a message of `total_len` bytes when each fragment
    /// may carry at most `max_fragment` bytes. `None` if it would need more than `u16::MAX`.
    pub fn count_for(total_len: usize, max_fragment: usize) -> Option<u16> {
        if total_len == 0 || max_fragment == 0 {
            return None;
        }
        u16::try_from(total_len.div_ceil(max_fragment)).ok()
    }
}

/// Does the erasure code support `count` data shards with `parity` parity shards? Its limit
/// (65536 shards in all, powers of two permitting) is the crate's, asked of the crate.
pub fn fec_supports(count: u16, parity: u16) -> bool {
    reed_solomon_simd::ReedSolomonEncoder::supports(usize::from(count), usize::from(parity))
}

/// Flag of a storage segment that starts a message.
pub const SEGMENT_FIRST: u8 = 0x01;
/// Flag of a storage segment that ends a message.
pub const SEGMENT_LAST: u8 = 0x02;

/// The header of one reliable storage segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Sequence number, one per segment, wrapping.
    pub seq: u32,
    /// [`SEGMENT_FIRST`] and/or [`SEGMENT_LAST`].
    pub flags: u8,
}

impl SegmentHeader {
    /// Encoded length.
    pub const LEN: usize = 5;

    /// Parse a segment header and return it with the segment data.
    ///
    /// # Errors
    /// [`DecodeError::PayloadTooShort`] if the header does not fit and
    /// [`DecodeError::ReservedFlags`] for undefined flag bits.
    pub fn parse(payload: &[u8]) -> Result<(Self, &[u8]), DecodeError> {
        let mut r = Reader::new(payload);
        let seq = r.u32()?;
        let flags = r.u8()?;
        if flags & !(SEGMENT_FIRST | SEGMENT_LAST) != 0 {
            return Err(DecodeError::ReservedFlags(flags));
        }
        Ok((SegmentHeader { seq, flags }, r.rest()))
    }

    /// Write the header into `buf`, returning the bytes written.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] if `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&self.seq.to_be_bytes());
        b[4] = self.flags;
        put(buf, &b)
    }
}

/// The most segments one repair block covers ([`RepairHeader`]), and the segments a storage
/// receiver keeps after delivering them, to decode with: a block's segments the receiver
/// delivered are those whose acks were on the way when it was sent, a round trip's worth
/// and RACK's wait (4096 full segments are 1.5 round trips of 150 ms at 100 Mbit/s), so
/// a block within the last `MAX_REPAIR_SEGMENTS` sent only ever counts on kept ones.
pub const MAX_REPAIR_SEGMENTS: u16 = 4096;

/// The header of one repair frame: a Reed-Solomon parity shard over a block of storage
/// segments (PROTOCOL.md 6.9, 12.4).
///
/// ```text
/// offset  0               4       6       8       10
///         +---------------+-------+-------+-------+---------
///         | first seq     | count | parity| index | shard ...
///         +---------------+-------+-------+-------+---------
/// ```
///
/// The block is the `count` segments from sequence number `first_seq` on. Each segment
/// is laid out as an image of twice the shard length: its flags (u8), its data length
/// (u16) and its data, zero-padded; the image's two halves are data shards `2i` and
/// `2i + 1` of the code. `parity` parity shards follow from them, and this frame carries
/// shard `index`. The shard is the rest of the body: the same even length in every frame of
/// a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairHeader {
    /// Sequence number of the block's first segment.
    pub first_seq: u32,
    /// Segments in the block, 1 to [`MAX_REPAIR_SEGMENTS`].
    pub count: u16,
    /// Parity shards of the block, at least 1.
    pub parity: u16,
    /// This frame's parity shard, below `parity`.
    pub index: u16,
}

impl RepairHeader {
    /// Encoded length.
    pub const LEN: usize = 10;

    /// Parse a repair body and return its header and shard.
    ///
    /// # Errors
    /// [`DecodeError::PayloadTooShort`] if the header does not fit;
    /// [`DecodeError::InvalidField`] for a count of 0 or over [`MAX_REPAIR_SEGMENTS`], no
    /// parity, an index past it, a pair the erasure code does not support, or a shard that
    /// is empty or of odd length.
    pub fn parse(payload: &[u8]) -> Result<(Self, &[u8]), DecodeError> {
        let mut r = Reader::new(payload);
        let header = RepairHeader {
            first_seq: r.u32()?,
            count: r.u16()?,
            parity: r.u16()?,
            index: r.u16()?,
        };
        let shard = r.rest();
        let valid = (1..=MAX_REPAIR_SEGMENTS).contains(&header.count)
            && header.index < header.parity
            && fec_supports(2 * header.count, header.parity)
            && !shard.is_empty()
            && shard.len() % 2 == 0;
        if !valid {
            return Err(DecodeError::InvalidField);
        }
        Ok((header, shard))
    }

    /// Write the header into `buf`, returning the bytes written.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] if `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&self.first_seq.to_be_bytes());
        b[4..6].copy_from_slice(&self.count.to_be_bytes());
        b[6..8].copy_from_slice(&self.parity.to_be_bytes());
        b[8..10].copy_from_slice(&self.index.to_be_bytes());
        put(buf, &b)
    }
}

/// The most SACK ranges one ack carries: an ack reports the newest ranges, and the sender
/// remembers what earlier acks reported, so 32 ranges per ack keep up with one loss in
/// every few segments (acks go every second segment).
pub const MAX_SACK_RANGES: usize = 32;

/// A run of consecutive segments the receiver holds beyond `next_expected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackRange {
    /// Sequence number of the first segment of the run.
    pub start: u32,
    /// Segments in the run, at least 1.
    pub len: u16,
}

/// A selective acknowledgement for the reliable channel.
///
/// ```text
/// +---------------+-------+---+--------------------------+
/// | next expected | window| n | n x (start u32, len u16)  |  newest range first
/// +---------------+-------+---+--------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckBody {
    /// Every sequence number before this one has been received.
    pub next_expected: u32,
    /// The receive window: the sender may send sequence numbers below
    /// `next_expected + window`.
    pub window: u16,
    ranges: [SackRange; MAX_SACK_RANGES],
    count: u8,
}

impl AckBody {
    /// Encoded length without ranges.
    pub const MIN_LEN: usize = 7;
    /// Encoded length of one range.
    pub const RANGE_LEN: usize = 6;
    /// Largest encoded length.
    pub const MAX_LEN: usize = Self::MIN_LEN + MAX_SACK_RANGES * Self::RANGE_LEN;

    /// An ack with no ranges.
    pub fn new(next_expected: u32, window: u16) -> Self {
        AckBody {
            next_expected,
            window,
            ranges: [SackRange::default(); MAX_SACK_RANGES],
            count: 0,
        }
    }

    /// The ranges, newest first.
    pub fn ranges(&self) -> &[SackRange] {
        &self.ranges[..usize::from(self.count)]
    }

    /// Add a range after those already there; false (and nothing added) when the ack holds
    /// [`MAX_SACK_RANGES`] already.
    pub fn push_range(&mut self, range: SackRange) -> bool {
        let Some(slot) = self.ranges.get_mut(usize::from(self.count)) else {
            return false;
        };
        *slot = range;
        self.count += 1;
        true
    }

    /// Encoded length.
    pub fn len(&self) -> usize {
        Self::MIN_LEN + usize::from(self.count) * Self::RANGE_LEN
    }

    /// Does the ack carry no ranges?
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Parse an ack body.
    ///
    /// # Errors
    /// [`DecodeError::PayloadTooShort`] or [`DecodeError::TrailingBytes`] when the length does
    /// not match the range count; [`DecodeError::InvalidField`] for more than [`MAX_SACK_RANGES`]
    /// ranges or an empty one.
    pub fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let mut body = AckBody::new(r.u32()?, r.u16()?);
        let count = r.u8()?;
        if usize::from(count) > MAX_SACK_RANGES {
            return Err(DecodeError::InvalidField);
        }
        for _ in 0..count {
            let range = SackRange {
                start: r.u32()?,
                len: r.u16()?,
            };
            if range.len == 0 {
                return Err(DecodeError::InvalidField);
            }
            body.push_range(range);
        }
        r.end()?;
        Ok(body)
    }

    /// Write the body into `buf`, returning the bytes written.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] if `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let out = buf
            .get_mut(..self.len())
            .ok_or(EncodeError::BufferTooSmall)?;
        out[0..4].copy_from_slice(&self.next_expected.to_be_bytes());
        out[4..6].copy_from_slice(&self.window.to_be_bytes());
        out[6] = self.count;
        for (range, b) in self
            .ranges()
            .iter()
            .zip(out[Self::MIN_LEN..].chunks_exact_mut(Self::RANGE_LEN))
        {
            b[0..4].copy_from_slice(&range.start.to_be_bytes());
            b[4..6].copy_from_slice(&range.len.to_be_bytes());
        }
        Ok(self.len())
    }
}

/// The body of a feedback frame: what this end received of the peer's frames in the
/// current session, cumulatively, so a lost feedback frame loses no information.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// | largest counter (u64)         | frames received (u64)         |
/// +-------------------------------+---------------+---------------+
/// | bytes received (u64)          | rx time (u32) | ack delay u32 |
/// +-------------------------------+---------------+---------------+
/// | counters lost (u64)           | loss runs (u64)               |
/// +-------------------------------+-------------------------------+
/// | unjudged (u16)|
/// +---------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackBody {
    /// The largest counter authenticated so far in this session.
    pub largest: u64,
    /// Frames authenticated so far in this session (any type).
    pub frames: u64,
    /// Datagram bytes of those frames.
    pub bytes: u64,
    /// When the frame `largest` arrived, in the receiver's clock: microseconds, modulo
    /// 2^32 (only differences are used).
    pub received_at_us: u32,
    /// Microseconds from that arrival to this feedback's sending.
    pub ack_delay_us: u32,
    /// Counters of this session judged lost: not arrived by the time reordering has
    /// settled ([`FEEDBACK_SETTLE`] larger ones arrived, or one larger a while ago).
    pub lost: u64,
    /// Runs of consecutive lost counters among them: `lost / loss_runs` is the mean length
    /// of a loss burst.
    pub loss_runs: u64,
    /// The counters up to `largest` not judged yet (at most [`FEEDBACK_SETTLE`]): `lost`
    /// and `loss_runs` cover every counter below `largest + 1 - unjudged`.
    pub unjudged: u16,
}

/// A counter not received by the time the largest is this much larger counts as lost in
/// [`FeedbackBody::lost`] (if no other rule judged it sooner).
pub const FEEDBACK_SETTLE: u64 = 1024;

impl FeedbackBody {
    /// Encoded length.
    pub const LEN: usize = 50;

    /// The counters judged so far, from the session's first: the ones below
    /// `largest + 1 - unjudged`.
    pub fn judged(&self) -> u64 {
        self.largest
            .saturating_add(1)
            .saturating_sub(u64::from(self.unjudged))
    }

    /// Parse a feedback body; it must be exactly [`FeedbackBody::LEN`] bytes.
    ///
    /// # Errors
    /// [`DecodeError::PayloadTooShort`] or [`DecodeError::TrailingBytes`];
    /// [`DecodeError::InvalidField`] if more frames than counters are claimed, more counters
    /// unjudged than [`FEEDBACK_SETTLE`] or than there are, more lost than judged, or more
    /// loss runs than lost counters.
    pub fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let body = FeedbackBody {
            largest: r.u64()?,
            frames: r.u64()?,
            bytes: r.u64()?,
            received_at_us: r.u32()?,
            ack_delay_us: r.u32()?,
            lost: r.u64()?,
            loss_runs: r.u64()?,
            unjudged: r.u16()?,
        };
        r.end()?;
        let counters = body.largest.saturating_add(1);
        let unjudged = u64::from(body.unjudged);
        if body.frames > counters
            || unjudged > FEEDBACK_SETTLE.min(counters)
            || body.lost > body.judged()
            || body.loss_runs > body.lost
        {
            return Err(DecodeError::InvalidField);
        }
        Ok(body)
    }

    /// Write the body into `buf`, returning the bytes written.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] if `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut b = [0u8; Self::LEN];
        b[0..8].copy_from_slice(&self.largest.to_be_bytes());
        b[8..16].copy_from_slice(&self.frames.to_be_bytes());
        b[16..24].copy_from_slice(&self.bytes.to_be_bytes());
        b[24..28].copy_from_slice(&self.received_at_us.to_be_bytes());
        b[28..32].copy_from_slice(&self.ack_delay_us.to_be_bytes());
        b[32..40].copy_from_slice(&self.lost.to_be_bytes());
        b[40..48].copy_from_slice(&self.loss_runs.to_be_bytes());
        b[48..50].copy_from_slice(&self.unjudged.to_be_bytes());
        put(buf, &b)
    }
}

/// The plaintext of a probe (PROTOCOL.md 6.6, 34.6): a `Keepalive` of this one byte asks
/// its receiver for a feedback frame of its own, at once. Any other keepalive plaintext
/// (empty, or padding) means nothing.
pub const KEEPALIVE_PROBE: [u8; 1] = [0x01];

/// The body of a close frame: a reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseBody {
    /// Why the sender closed the link (see [`crate::CloseCode`]).
    pub code: u16,
}

impl CloseBody {
    /// Encoded length.
    pub const LEN: usize = 2;

    /// Parse a close body; it must be exactly [`CloseBody::LEN`] bytes.
    ///
    /// # Errors
    /// [`DecodeError::PayloadTooShort`] or [`DecodeError::TrailingBytes`].
    pub fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let code = r.u16()?;
        r.end()?;
        Ok(CloseBody { code })
    }

    /// Write the body into `buf`, returning the bytes written.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] if `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        put(buf, &self.code.to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_layout_covers_the_message_exactly() {
        for total in 1..300usize {
            for max in 1..40usize {
                let count = FragmentHeader::count_for(total, max).unwrap();
                let mut covered = 0;
                for index in 0..count {
                    let h = FragmentHeader {
                        message_id: 7,
                        total_len: total as u32,
                        index,
                        count,
                        parity: 0,
                    };
                    let r = h.range();
                    assert_eq!(r.start, covered, "total {total} max {max}");
                    assert!(!r.is_empty() && r.len() <= max, "total {total} max {max}");
                    covered = r.end;
                    let mut buf = [0u8; FragmentHeader::LEN + 64];
                    let n = h.emit(&mut buf).unwrap();
                    let (parsed, data) = FragmentHeader::parse(&buf[..n + r.len()]).unwrap();
                    assert_eq!((parsed, data.len()), (h, r.len()));
                }
                assert_eq!(covered, total);
            }
        }
    }

    #[test]
    fn inconsistent_fragments_are_rejected() {
        let mut buf = [0u8; 64];
        let bad = [
            (10, 0, 0), // zero count
            (10, 2, 2), // index past count
            (0, 0, 1),  // empty message
            (3, 0, 3),  // size 1 * 2 covers 2 < 3 fine, but wrong data length below
            (2, 0, 3),  // three fragments cannot split two bytes
        ];
        for (total, index, count) in bad {
            let h = FragmentHeader {
                message_id: 1,
                total_len: total,
                index,
                count,
                parity: 0,
            };
            let n = h.emit(&mut buf).unwrap();
            assert_eq!(
                FragmentHeader::parse(&buf[..n + 5]),
                Err(DecodeError::InvalidField)
            );
        }
        assert_eq!(
            FragmentHeader::parse(&buf[..13]),
            Err(DecodeError::PayloadTooShort)
        );
    }

    #[test]
    fn parity_fragments_carry_one_even_shard() {
        // 1001 bytes in 4 fragments: size 251, shards of 252; parity indices 4 and 5.
        let h = FragmentHeader {
            message_id: 0x0102_0304,
            total_len: 1001,
            index: 5,
            count: 4,
            parity: 2,
        };
        assert_eq!((h.fragment_size(), h.shard_len()), (251, 252));
        assert!(h.is_parity());
        assert_eq!((h.range(), h.data_len()), (0..0, 252));
        let mut buf = [0u8; FragmentHeader::LEN + 300];
        assert_eq!(h.emit(&mut buf), Ok(14));
        assert_eq!(
            buf[..14],
            [1, 2, 3, 4, 0, 0, 0x03, 0xe9, 0, 5, 0, 4, 0, 2],
            "message id, total length, index, count, parity, big-endian"
        );
        assert_eq!(
            FragmentHeader::parse(&buf[..14 + 252]),
            Ok((h, &buf[14..266]))
        );
        // A data fragment of the same message keeps its own length.
        let d = FragmentHeader { index: 3, ..h };
        assert_eq!(d.data_len(), 248);
        d.emit(&mut buf).unwrap();
        assert_eq!(
            FragmentHeader::parse(&buf[..14 + 248]).map(|(h, _)| h),
            Ok(d)
        );
        let bad = [
            (FragmentHeader { index: 6, ..h }, 252), // index past count + parity
            (h, 251),                                // a parity shard one short
            (h, 253),                                // and one long
            (FragmentHeader { index: 3, ..h }, 252), // a data fragment padded
            (
                FragmentHeader {
                    count: 0,
                    index: 0,
                    ..h
                },
                0,
            ), // no data fragments
            // More shards than the erasure code supports.
            (
                FragmentHeader {
                    total_len: 65_535,
                    count: 65_535,
                    parity: 2,
                    index: 65_535,
                    ..h
                },
                2,
            ),
        ];
        for (h, len) in bad {
            h.emit(&mut buf).unwrap();
            assert_eq!(
                FragmentHeader::parse(&buf[..14 + len]),
                Err(DecodeError::InvalidField),
                "{h:?} with {len} bytes"
            );
        }
        // The largest index: count + parity - 1 may exceed the count's range no more than
        // the code allows: 65535 data and 1 parity is 65536 shards, which it supports.
        let edge = FragmentHeader {
            total_len: 65_535,
            count: 65_535,
            parity: 1,
            index: 65_535,
            ..h
        };
        edge.emit(&mut buf).unwrap();
        assert_eq!(FragmentHeader::parse(&buf[..16]).map(|(h, _)| h), Ok(edge));
    }

    #[test]
    fn segment_ack_close_round_trip() {
        let mut buf = [0u8; AckBody::MAX_LEN + 8];
        let s = SegmentHeader {
            seq: 0xfffffffe,
            flags: SEGMENT_FIRST | SEGMENT_LAST,
        };
        let n = s.emit(&mut buf).unwrap();
        buf[n..n + 3].copy_from_slice(b"abc");
        assert_eq!(SegmentHeader::parse(&buf[..n + 3]), Ok((s, &b"abc"[..])));
        buf[4] = 0x04;
        assert_eq!(
            SegmentHeader::parse(&buf[..5]),
            Err(DecodeError::ReservedFlags(4))
        );

        let mut a = AckBody::new(9, 4096);
        assert!(a.push_range(SackRange { start: 40, len: 3 }));
        assert!(a.push_range(SackRange { start: 11, len: 1 }));
        let n = a.emit(&mut buf).unwrap();
        assert_eq!(n, AckBody::MIN_LEN + 2 * AckBody::RANGE_LEN);
        assert_eq!(AckBody::parse(&buf[..n]), Ok(a));
        assert_eq!(
            AckBody::parse(&buf[..n - 1]),
            Err(DecodeError::PayloadTooShort)
        );
        assert_eq!(
            AckBody::parse(&buf[..n + 1]),
            Err(DecodeError::TrailingBytes)
        );

        // An empty range, or more ranges than an ack may hold, is malformed.
        let mut bad = buf;
        bad[AckBody::MIN_LEN + 5] = 0;
        assert_eq!(AckBody::parse(&bad[..n]), Err(DecodeError::InvalidField));
        let mut full = AckBody::new(0, 1);
        for start in 0..MAX_SACK_RANGES as u32 {
            assert!(full.push_range(SackRange { start, len: 1 }));
        }
        assert!(!full.push_range(SackRange { start: 99, len: 1 }));
        let n = full.emit(&mut buf).unwrap();
        assert_eq!(n, AckBody::MAX_LEN);
        assert_eq!(AckBody::parse(&buf[..n]), Ok(full));
        buf[6] = MAX_SACK_RANGES as u8 + 1;
        assert_eq!(AckBody::parse(&buf[..n]), Err(DecodeError::InvalidField));

        let c = CloseBody { code: 3 };
        let n = c.emit(&mut buf).unwrap();
        assert_eq!(CloseBody::parse(&buf[..n]), Ok(c));
        assert_eq!(
            CloseBody::parse(&buf[..1]),
            Err(DecodeError::PayloadTooShort)
        );
    }

    #[test]
    fn repair_headers_round_trip_and_inconsistent_ones_are_rejected() {
        let h = RepairHeader {
            first_seq: 0xffff_fff0,
            count: 40,
            parity: 12,
            index: 11,
        };
        let mut buf = [0u8; RepairHeader::LEN + 4];
        assert_eq!(h.emit(&mut buf), Ok(RepairHeader::LEN));
        buf[RepairHeader::LEN..].copy_from_slice(b"wxyz");
        assert_eq!(RepairHeader::parse(&buf), Ok((h, &b"wxyz"[..])));
        assert_eq!(
            RepairHeader::parse(&buf[..RepairHeader::LEN - 1]),
            Err(DecodeError::PayloadTooShort)
        );
        let bad = |f: &dyn Fn(&mut RepairHeader), shard: &[u8]| {
            let mut h = h;
            f(&mut h);
            let mut buf = [0u8; RepairHeader::LEN + 8];
            h.emit(&mut buf).unwrap();
            buf[RepairHeader::LEN..RepairHeader::LEN + shard.len()].copy_from_slice(shard);
            RepairHeader::parse(&buf[..RepairHeader::LEN + shard.len()]).map(|(h, _)| h)
        };
        let invalid = Err(DecodeError::InvalidField);
        assert_eq!(bad(&|_| {}, b""), invalid, "no shard");
        assert_eq!(bad(&|_| {}, b"abc"), invalid, "an odd shard");
        assert_eq!(bad(&|h| h.count = 0, b"ab"), invalid);
        assert_eq!(bad(&|h| h.count = MAX_REPAIR_SEGMENTS + 1, b"ab"), invalid);
        assert_eq!(bad(&|h| h.parity = 0, b"ab"), invalid);
        assert_eq!(bad(&|h| h.index = 12, b"ab"), invalid, "index past parity");
        let most = bad(&|h| h.count = MAX_REPAIR_SEGMENTS, b"ab");
        assert_eq!(most.map(|h| h.count), Ok(MAX_REPAIR_SEGMENTS));
    }

    #[test]
    fn feedback_round_trips_and_inconsistent_counts_are_rejected() {
        let f = FeedbackBody {
            largest: 5000,
            frames: 4900,
            bytes: 4900 * 1400,
            received_at_us: 7,
            ack_delay_us: 9,
            lost: 90,
            loss_runs: 12,
            unjudged: 40,
        };
        assert_eq!(f.judged(), 5001 - 40);
        let mut buf = [0u8; FeedbackBody::LEN];
        assert_eq!(f.emit(&mut buf), Ok(FeedbackBody::LEN));
        assert_eq!(FeedbackBody::parse(&buf), Ok(f));
        assert_eq!(
            FeedbackBody::parse(&buf[..FeedbackBody::LEN - 1]),
            Err(DecodeError::PayloadTooShort)
        );
        for bad in [
            // More unjudged than the window holds, or than there are counters.
            FeedbackBody {
                unjudged: FEEDBACK_SETTLE as u16 + 1,
                ..f
            },
            FeedbackBody {
                largest: 30,
                frames: 20,
                lost: 0,
                loss_runs: 0,
                ..f
            },
            // More lost than judged, though not more than there are counters.
            FeedbackBody { lost: 4962, ..f },
            FeedbackBody { loss_runs: 91, ..f },
        ] {
            bad.emit(&mut buf).unwrap();
            assert_eq!(
                FeedbackBody::parse(&buf),
                Err(DecodeError::InvalidField),
                "{bad:?}"
            );
        }
    }
}
