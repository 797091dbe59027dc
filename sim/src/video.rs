//! The fake video stream's application protocol: the header the aircraft's encoder puts at
//! the start of every frame, and the remote's model of a decoder that tells which frames it
//! could show.
//!
//! A frame is
//!
//! ```text
//! stamp u64 | number u32 | kind u8 | key u32 | request u32 | filler (kind byte)...
//! ```
//!
//! big-endian: the time the aircraft handed it to the link (microseconds of its clock), its
//! number (one more than the frame before, refused or not), its kind (0 delta, 1 key), the
//! number of the key frame it depends on (its own for a key frame), and the latest
//! key-frame request the encoder had honoured when it made it (0 for none; see
//! [`crate::aircraft::CONTROL_LEN`] for how the remote asks). The rest of the frame is the
//! kind byte repeated, so that the remote can check every byte it was handed.
//!
//! A delta frame only decodes on top of every frame since its key frame; a key frame
//! decodes on its own. The remote's [`Decoder`] follows that rule in the order frames
//! arrive, as a low-latency player without a jitter buffer does: a frame that arrives after
//! a later one is shown if everything before it arrived, but the later one was already
//! found undecodable.

use rotorlink::Timestamp;

/// Length of the header at the start of every video frame.
pub const FRAME_HEADER_LEN: usize = 8 + 4 + 1 + 4 + 4;

/// What a frame needs to be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Decodes only on top of the frame before it (and so on back to a key frame).
    Delta = 0,
    /// Decodes on its own (an intra frame).
    Key = 1,
}

/// The header of a video frame (see the [module documentation](self) for its bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// When the aircraft handed the frame to the link, in its clock plus its offset.
    pub sent_at: Timestamp,
    /// The frame's number: one more than the frame the encoder made before it.
    pub number: u32,
    /// Delta or key.
    pub kind: FrameKind,
    /// The number of the key frame it depends on (its own number for a key frame).
    pub key: u32,
    /// The latest key-frame request the encoder had honoured when it made this frame (0
    /// for none): a frame with this at or above a request id tells the remote that the
    /// aircraft has answered it.
    pub request: u32,
}

impl FrameHeader {
    /// The frame: this header, then the kind byte repeated up to `len` bytes (never
    /// shorter than the header).
    pub fn frame(&self, len: usize) -> Vec<u8> {
        let mut frame = Vec::with_capacity(len.max(FRAME_HEADER_LEN));
        frame.extend_from_slice(&self.sent_at.as_micros().to_be_bytes());
        frame.extend_from_slice(&self.number.to_be_bytes());
        frame.push(self.kind as u8);
        frame.extend_from_slice(&self.key.to_be_bytes());
        frame.extend_from_slice(&self.request.to_be_bytes());
        frame.resize(len.max(FRAME_HEADER_LEN), self.kind as u8);
        frame
    }

    /// The header of `frame`, if `frame` is one the encoder could have made: a known kind,
    /// a key frame that depends on itself, a delta frame on an earlier key frame, and a
    /// filler of nothing but the kind byte. `None` for anything else (corrupted).
    pub fn parse(frame: &[u8]) -> Option<FrameHeader> {
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(frame.get(at..at + 4)?.try_into().ok()?))
        };
        let stamp: [u8; 8] = frame.get(..8)?.try_into().ok()?;
        let number = u32_at(8)?;
        let kind = match *frame.get(12)? {
            0 => FrameKind::Delta,
            1 => FrameKind::Key,
            _ => return None,
        };
        let key = u32_at(13)?;
        let request = u32_at(17)?;
        let consistent = match kind {
            FrameKind::Key => key == number,
            FrameKind::Delta => key < number,
        };
        let filler = frame.get(FRAME_HEADER_LEN..)?;
        if !consistent || filler.iter().any(|&b| b != kind as u8) {
            return None;
        }
        Some(FrameHeader {
            sent_at: Timestamp::from_micros(u64::from_be_bytes(stamp)),
            number,
            kind,
            key,
            request,
        })
    }
}

/// Which frames a decoder fed in arrival order could decode (see the [module
/// documentation](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoder {
    /// The key frame and the latest frame of the unbroken run decoded from it, if any.
    chain: Option<(u32, u32)>,
}

impl Decoder {
    /// A decoder that has seen nothing: only a key frame decodes.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Take the frame of `header`, delivered whole: can it be decoded? A key frame always
    /// can; a delta frame only right after the last frame of the run decoded from its key
    /// frame. A delta frame that cannot leaves the run where it was, so that a frame that
    /// arrives late, but before anything that depends on it, still decodes.
    pub fn decode(&mut self, header: &FrameHeader) -> bool {
        match header.kind {
            FrameKind::Key => {
                // A key frame older than the run (arriving late) decodes on its own, but
                // starts nothing: the run already went past it.
                if self.chain.is_none_or(|(_, last)| header.number > last) {
                    self.chain = Some((header.number, header.number));
                }
                true
            }
            FrameKind::Delta => {
                let follows = header
                    .number
                    .checked_sub(1)
                    .is_some_and(|before| self.chain == Some((header.key, before)));
                if follows {
                    self.chain = Some((header.key, header.number));
                }
                follows
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(number: u32, key: u32) -> FrameHeader {
        FrameHeader {
            sent_at: Timestamp::from_micros(1_234_567),
            number,
            kind: if key == number {
                FrameKind::Key
            } else {
                FrameKind::Delta
            },
            key,
            request: 7,
        }
    }

    #[test]
    fn a_frame_reads_back_and_every_changed_byte_is_seen() {
        let h = header(41, 30);
        let frame = h.frame(64);
        assert_eq!(frame.len(), 64);
        assert_eq!(FrameHeader::parse(&frame), Some(h));
        assert_eq!(
            h.frame(3).len(),
            FRAME_HEADER_LEN,
            "never shorter than the header"
        );
        let key = header(30, 30);
        assert_eq!(FrameHeader::parse(&key.frame(40)), Some(key));
        // The stamp and numbers are free; the kind, the key's consistency and the filler
        // are checked.
        for at in 12..frame.len() {
            let mut f = frame.clone();
            f[at] ^= 0x02;
            let parsed = FrameHeader::parse(&f);
            let changed_key = (13..17).contains(&at);
            let changed_request = (17..21).contains(&at);
            if changed_request
                || (changed_key && u32::from_be_bytes(f[13..17].try_into().unwrap()) < 41)
            {
                assert!(parsed.is_some_and(|p| p != h), "byte {at}");
            } else {
                assert_eq!(parsed, None, "byte {at}");
            }
        }
        assert_eq!(FrameHeader::parse(&frame[..FRAME_HEADER_LEN - 1]), None);
        assert_eq!(FrameHeader::parse(&[]), None);
        // A delta frame that depends on itself or a later frame is not one the encoder made.
        assert_eq!(FrameHeader::parse(&header(5, 6).frame(30)), None);
    }

    #[test]
    fn deltas_decode_only_on_an_unbroken_run_from_their_key_frame() {
        let mut d = Decoder::new();
        assert!(!d.decode(&header(3, 0)), "no key frame seen yet");
        assert!(d.decode(&header(10, 10)));
        assert!(d.decode(&header(11, 10)));
        // 12 is missing: 13 and 14 cannot be decoded.
        assert!(!d.decode(&header(13, 10)));
        assert!(!d.decode(&header(14, 10)));
        // 12 arrives late: it decodes (everything before it did), but 13 and 14 are gone.
        assert!(d.decode(&header(12, 10)));
        assert!(!d.decode(&header(15, 10)));
        // The next key frame restarts the run.
        assert!(d.decode(&header(20, 20)));
        assert!(d.decode(&header(21, 20)));
        // A late key frame of an older group decodes, and changes nothing.
        assert!(d.decode(&header(5, 5)));
        assert!(!d.decode(&header(6, 5)));
        assert!(d.decode(&header(22, 20)));
    }

    #[test]
    fn a_lost_key_frame_leaves_its_group_undecodable() {
        let mut d = Decoder::new();
        assert!(d.decode(&header(0, 0)));
        assert!(d.decode(&header(1, 0)));
        // Key frame 2 is lost: 3 and 4 depend on it.
        assert!(!d.decode(&header(3, 2)));
        assert!(!d.decode(&header(4, 2)));
        assert!(d.decode(&header(5, 5)));
        assert!(d.decode(&header(6, 5)));
    }
}
