//! Repair of a transfer's tail (PROTOCOL.md 12.4): Reed-Solomon parity over the storage
//! segments in flight once no new data is queued.
//!
//! At the end of a transfer the radio has nothing new to carry while the last round trip's
//! segments are in flight, and on a lossy radio each lost one costs a round trip more
//! (found lost a round trip and a reordering wait after it was sent), each retransmission
//! lost again with the same chance. A block of parity sent at once over those segments
//! lets the receiver rebuild any of them, up to the parity that arrived, half a round trip
//! later. The field arithmetic is `reed-solomon-simd`'s.
//!
//! Each segment is laid out as an image of two shards: flags, data length, data, zero
//! padding ([`RepairHeader`]). The two halves keep a repair frame, with its header, within
//! the size of a full segment's frame.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::pool::BufPool;
use crate::time::Timestamp;
use crate::wire::body::{
    fec_supports, RepairHeader, MAX_REPAIR_SEGMENTS, SEGMENT_FIRST, SEGMENT_LAST,
};

/// Image bytes before a segment's data: its flags and its data length.
const IMAGE_HEADER: usize = 3;
/// Blocks a receiver collects parity for at once: a new block's first frames can arrive
/// before the last of the one before.
const OPEN_BLOCKS: usize = 2;
/// Standard deviations of the loss count the parity covers beyond its mean: with the
/// margin on the loss itself, a block fails (and its tail falls back to retransmissions)
/// well under once in a thousand.
const PARITY_DEVIATIONS: f64 = 3.0;
/// The measured loss is scaled by this, and `LOSS_MARGIN_ABS` added, before use (as for
/// video, `fec.rs`): the estimate lags a worsening radio.
const LOSS_MARGIN_FACTOR: f64 = 1.5;
const LOSS_MARGIN_ABS: f64 = 0.002;

/// The shard length for a segment of `data_len` data bytes: half its image, rounded up
/// to an even number (the code works on pairs of bytes).
pub(crate) fn shard_len_for(data_len: usize) -> usize {
    (IMAGE_HEADER + data_len).div_ceil(2).next_multiple_of(2)
}

/// Write the image of a segment (`flags`, `data`) of `2 * shard_len` bytes into `out`.
fn write_image(flags: u8, data: &[u8], shard_len: usize, out: &mut Vec<u8>) {
    out.clear();
    out.push(flags);
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out.resize(2 * shard_len, 0);
}

/// The flags and data of a rebuilt image, if they are valid: defined flags, a length
/// within the image, zero padding.
fn parse_image(image: &[u8]) -> Option<(u8, &[u8])> {
    let (&flags, rest) = image.split_first()?;
    let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let data = rest.get(2..2 + len)?;
    let valid =
        flags & !(SEGMENT_FIRST | SEGMENT_LAST) == 0 && rest[2 + len..].iter().all(|&b| b == 0);
    valid.then_some((flags, data))
}

/// How many segments' worth of parity a block needs when `unknown` of its segments may
/// be lost, the path losing a fraction `loss` in runs of `burst`: the mean loss at a
/// margin plus [`PARITY_DEVIATIONS`] standard deviations (runs widen the spread: a count
/// of runs of mean length `burst` has about `2 * burst - 1` times the variance), over the
/// share of the parity itself that arrives. Never more than `unknown`: a copy of each.
pub(crate) fn parity_segments(unknown: usize, loss: f64, burst: f64) -> usize {
    if unknown == 0 {
        return 0;
    }
    let loss = if loss.is_finite() { loss } else { 0.0 };
    let burst = if burst.is_finite() {
        burst.max(1.0)
    } else {
        1.0
    };
    let q = (loss.clamp(0.0, 1.0) * LOSS_MARGIN_FACTOR + LOSS_MARGIN_ABS).min(0.5);
    let n = unknown as f64;
    let spread = sqrt(n * q * (1.0 - q) * (2.0 * burst - 1.0));
    let wanted = (n * q + PARITY_DEVIATIONS * spread) / (1.0 - q);
    // Rounded up (`core` has no `ceil`): the cast truncates a non-negative value.
    let whole = wanted as usize;
    whole
        .saturating_add(usize::from((whole as f64) < wanted))
        .clamp(1, unknown)
}

/// The square root of `x >= 0` (`core` has none), by Newton's method from above: each
/// step lowers the estimate until it stops falling.
fn sqrt(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 0.0;
    }
    if x.is_infinite() {
        return x;
    }
    let mut root = x.max(1.0);
    loop {
        let next = 0.5 * (root + x / root);
        if next >= root {
            return root;
        }
        root = next;
    }
}

/// The block a sender is sending parity for: its header (whose `index` is the next shard
/// to go) and its parity shards, `shard_len` bytes each, one after the other.
pub(crate) struct RepairOut {
    header: RepairHeader,
    shard_len: usize,
    shards: Vec<u8>,
}

impl RepairOut {
    /// The parity for `segments` (flags, data; in sequence order from `first_seq`):
    /// `parity` shards. None if the code refuses the block.
    pub(crate) fn encode<'a>(
        first_seq: u32,
        segments: impl Iterator<Item = (u8, &'a [u8])> + Clone,
        parity: u16,
    ) -> Option<Self> {
        let count = u16::try_from(segments.clone().count()).ok()?;
        let shard_len = segments
            .clone()
            .map(|(_, d)| shard_len_for(d.len()))
            .max()?;
        if count == 0 || count > MAX_REPAIR_SEGMENTS || !fec_supports(2 * count, parity) {
            return None;
        }
        let mut codec =
            ReedSolomonEncoder::new(2 * usize::from(count), usize::from(parity), shard_len).ok()?;
        let mut image = Vec::with_capacity(2 * shard_len);
        for (flags, data) in segments {
            write_image(flags, data, shard_len, &mut image);
            let (low, high) = image.split_at(shard_len);
            codec.add_original_shard(low).ok()?;
            codec.add_original_shard(high).ok()?;
        }
        let result = codec.encode().ok()?;
        let mut shards = Vec::with_capacity(usize::from(parity) * shard_len);
        for shard in result.recovery_iter() {
            shards.extend_from_slice(shard);
        }
        Some(RepairOut {
            header: RepairHeader {
                first_seq,
                count,
                parity,
                index: 0,
            },
            shard_len,
            shards,
        })
    }

    /// The sequence number after the block's last segment.
    pub(crate) fn end_seq(&self) -> u32 {
        self.header
            .first_seq
            .wrapping_add(u32::from(self.header.count))
    }

    /// The block's first sequence number and its number of segments.
    pub(crate) fn span(&self) -> (u32, u32) {
        (self.header.first_seq, u32::from(self.header.count))
    }

    /// Write the next repair body into `out`: its length, and whether it was the block's
    /// last. None if `out` is too small.
    pub(crate) fn next_body(&mut self, out: &mut [u8]) -> Option<(usize, bool)> {
        let index = usize::from(self.header.index);
        let shard = self
            .shards
            .get(index * self.shard_len..(index + 1) * self.shard_len)?;
        let n = self.header.emit(out).ok()?;
        out.get_mut(n..n + shard.len())?.copy_from_slice(shard);
        self.header.index += 1;
        Some((n + shard.len(), self.header.index >= self.header.parity))
    }
}

/// Parity received for one block.
struct Block {
    /// Unwrapped sequence number of the first segment.
    first: u64,
    count: u16,
    parity: u16,
    shard_len: usize,
    shards: Vec<(u16, Vec<u8>)>,
    /// Segments of the block not received, once counted.
    missing: Option<usize>,
}

impl Block {
    fn holds(&self, seq: u64) -> bool {
        (self.first..self.first + u64::from(self.count)).contains(&seq)
    }
}

/// What a storage receiver keeps to decode repair frames with: the segments it delivered
/// lately (the sender's block may start before what was delivered, its acks still on the
/// way) and the parity of the open blocks.
pub(crate) struct RepairIn {
    /// The last segments delivered (when, flags, data), oldest first, up to `keep` and for
    /// `keep_for` (one it no longer has counts as missing).
    kept: VecDeque<(Timestamp, u8, Vec<u8>)>,
    /// [`MAX_REPAIR_SEGMENTS`], or the receive window if smaller: a block's segments are
    /// all within the sender's window, so those delivered are within it too.
    keep: usize,
    /// How long a delivered segment may still be in a block (`set_keep_for`).
    keep_for: Option<Duration>,
    blocks: VecDeque<Block>,
    /// The last block decoded (first, count, parity), well or not: its later shards are
    /// ignored, so that a peer's parity that does not decode is not decoded again and again.
    decoded: Option<(u64, u16, u16)>,
}

/// One segment rebuilt from parity: unwrapped sequence number, flags, data.
pub(crate) type Rebuilt = (u64, u8, Vec<u8>);

impl RepairIn {
    pub(crate) fn new(window: u32) -> Self {
        RepairIn {
            kept: VecDeque::new(),
            keep: usize::from(MAX_REPAIR_SEGMENTS).min(window as usize),
            keep_for: None,
            blocks: VecDeque::new(),
            decoded: None,
        }
    }

    /// Bytes held (for the memory invariant).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.kept.iter().map(|(_, _, d)| d.len()).sum::<usize>()
            + self
                .blocks
                .iter()
                .flat_map(|b| b.shards.iter())
                .map(|(_, s)| s.len())
                .sum::<usize>()
    }

    /// Keep segments delivered for `keep_for`, or, before it is known, by their number
    /// alone: a block's segments the receiver delivered are those whose acks had not
    /// reached the sender when it made the block, and its parity takes half a round trip
    /// more to come, so twice the round trip and the longest an ack waits (`MAX_ACK_DELAY`)
    /// hold them all. Without a limit in time a receiver would keep thousands of segments
    /// for ever: a session's storage requests and replies, long acknowledged.
    pub(crate) fn set_keep_for(&mut self, keep_for: Duration) {
        self.keep_for = Some(keep_for);
    }

    /// Keep a copy of a segment delivered at `now`. The oldest kept goes if there are
    /// `keep` or it was kept for longer than `keep_for`, its buffer taking the copy: the
    /// kept segments cycle through buffers of their own, so a steady download allocates
    /// nothing, and the shared pool's large buffers (a video frame's) are not handed out
    /// for copies and grown again. One goes at most per one kept, so after a faster
    /// transfer the old ones stay until later segments replace them (`keep` at most).
    pub(crate) fn keep(&mut self, now: Timestamp, flags: u8, data: &[u8], pool: &mut BufPool) {
        let full = self.kept.len() >= self.keep;
        let expired = self
            .kept
            .front()
            .is_some_and(|(at, _, _)| self.keep_for.is_some_and(|k| now.saturating_since(*at) > k));
        let oldest = if full || expired {
            self.kept.pop_front()
        } else {
            None
        };
        let mut buf = oldest.map_or_else(|| pool.take(), |(_, _, old)| old);
        buf.clear();
        buf.extend_from_slice(data);
        self.kept.push_back((now, flags, buf));
    }

    /// A segment `seq` arrived (not rebuilt): one fewer missing in the blocks that hold it.
    pub(crate) fn on_arrival(&mut self, seq: u64) {
        for block in self.blocks.iter_mut().filter(|b| b.holds(seq)) {
            if let Some(missing) = block.missing.as_mut() {
                *missing = missing.saturating_sub(1);
            }
        }
    }

    /// Take a parity shard for the block `first` (unwrapped) of `header`. `delivered` is
    /// the receiver's next unwrapped sequence number and `held(seq)` says whether a segment
    /// beyond it is held. Returns the segments rebuilt, if the block could be decoded now.
    pub(crate) fn on_repair<'h>(
        &mut self,
        first: u64,
        header: &RepairHeader,
        shard: &[u8],
        delivered: u64,
        held: impl Fn(u64) -> Option<(u8, &'h [u8])>,
        pool: &mut BufPool,
    ) -> Vec<Rebuilt> {
        let kept_from = delivered - self.kept.len() as u64;
        if first + u64::from(header.count) <= delivered
            || self.decoded == Some((first, header.count, header.parity))
        {
            return Vec::new(); // all of it delivered, or decoded already
        }
        let same = |b: &Block| {
            b.first == first
                && b.count == header.count
                && b.parity == header.parity
                && b.shard_len == shard.len()
        };
        let at = match self.blocks.iter().position(same) {
            Some(at) => at,
            None => {
                // A block that overlaps a new one is over: its sender moved on.
                self.blocks.retain(|b| {
                    b.first + u64::from(b.count) <= first
                        || b.first >= first + u64::from(header.count)
                });
                if self.blocks.len() >= OPEN_BLOCKS {
                    self.drop_block(0, pool);
                }
                self.blocks.push_back(Block {
                    first,
                    count: header.count,
                    parity: header.parity,
                    shard_len: shard.len(),
                    shards: Vec::new(),
                    missing: None,
                });
                self.blocks.len() - 1
            }
        };
        let block = &mut self.blocks[at];
        // In index order, each once; never more than the block's data shards (the most a
        // decode uses).
        if block.shards.len() < 2 * usize::from(block.count) {
            if let Err(slot) = block
                .shards
                .binary_search_by_key(&header.index, |(i, _)| *i)
            {
                block
                    .shards
                    .insert(slot, (header.index, pool.take_copy(shard)));
            }
        }
        let missing = *block.missing.get_or_insert_with(|| {
            (first..first + u64::from(header.count))
                .filter(|&seq| {
                    if seq < delivered {
                        seq < kept_from
                    } else {
                        held(seq).is_none()
                    }
                })
                .count()
        });
        if missing == 0 {
            self.drop_block(at, pool);
            return Vec::new();
        }
        if block.shards.len() < 2 * missing {
            return Vec::new();
        }
        let Some(block) = self.blocks.remove(at) else {
            return Vec::new();
        };
        self.decoded = Some((block.first, block.count, block.parity));
        let rebuilt = self
            .decode(&block, delivered, kept_from, held)
            .unwrap_or_default();
        for (_, shard) in block.shards {
            pool.give(shard);
        }
        // What the others counted as missing may have been rebuilt: count again.
        for other in &mut self.blocks {
            other.missing = None;
        }
        rebuilt
    }

    /// Rebuild a block's missing segments; None if the code refuses (the peer's parity
    /// does not fit what arrived) or a rebuilt image is not a segment's.
    fn decode<'h>(
        &self,
        block: &Block,
        delivered: u64,
        kept_from: u64,
        held: impl Fn(u64) -> Option<(u8, &'h [u8])>,
    ) -> Option<Vec<Rebuilt>> {
        let s = block.shard_len;
        let mut codec =
            ReedSolomonDecoder::new(2 * usize::from(block.count), usize::from(block.parity), s)
                .ok()?;
        let mut image = Vec::with_capacity(2 * s);
        for (i, seq) in (block.first..block.first + u64::from(block.count)).enumerate() {
            let segment = if seq < delivered {
                seq.checked_sub(kept_from)
                    .and_then(|i| self.kept.get(i as usize))
                    .map(|(_, flags, data)| (*flags, data.as_slice()))
            } else {
                held(seq)
            };
            let Some((flags, data)) = segment else {
                continue;
            };
            if IMAGE_HEADER + data.len() > 2 * s {
                return None;
            }
            write_image(flags, data, s, &mut image);
            codec.add_original_shard(2 * i, &image[..s]).ok()?;
            codec.add_original_shard(2 * i + 1, &image[s..]).ok()?;
        }
        for (index, shard) in &block.shards {
            codec.add_recovery_shard(usize::from(*index), shard).ok()?;
        }
        let result = codec.decode().ok()?;
        let mut halves: Vec<(usize, &[u8])> = result.restored_original_iter().collect();
        halves.sort_unstable_by_key(|(i, _)| *i);
        let mut rebuilt = Vec::new();
        for pair in halves.chunks(2) {
            let [(low_index, low), (high_index, high)] = pair else {
                return None;
            };
            if low_index % 2 != 0 || *high_index != low_index + 1 {
                return None;
            }
            image.clear();
            image.extend_from_slice(low);
            image.extend_from_slice(high);
            let (flags, data) = parse_image(&image)?;
            let seq = block.first + (low_index / 2) as u64;
            if seq >= delivered {
                rebuilt.push((seq, flags, data.to_vec()));
            }
        }
        Some(rebuilt)
    }

    fn drop_block(&mut self, at: usize, pool: &mut BufPool) {
        if let Some(block) = self.blocks.remove(at) {
            for (_, shard) in block.shards {
                pool.give(shard);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_round_trip_and_reject_what_no_segment_is() {
        for len in [0, 1, 2, 100, 1367] {
            let data: Vec<u8> = (0..len).map(|i| i as u8 | 1).collect();
            let s = shard_len_for(len);
            assert_eq!(s % 2, 0);
            assert!(2 * s >= IMAGE_HEADER + len && 2 * s < IMAGE_HEADER + len + 4);
            let mut image = Vec::new();
            write_image(SEGMENT_LAST, &data, s, &mut image);
            assert_eq!(parse_image(&image), Some((SEGMENT_LAST, data.as_slice())));
        }
        let mut image = Vec::new();
        write_image(SEGMENT_FIRST, b"abc", 8, &mut image);
        let mut bad_flags = image.clone();
        bad_flags[0] = 0x80;
        assert_eq!(parse_image(&bad_flags), None);
        let mut too_long = image.clone();
        too_long[2] = 200;
        assert_eq!(parse_image(&too_long), None);
        let mut dirty_padding = image.clone();
        *dirty_padding.last_mut().unwrap() = 1;
        assert_eq!(parse_image(&dirty_padding), None);
    }

    #[test]
    fn square_roots_match_the_standard_librarys() {
        extern crate std;
        for x in [0.0, 1e-9, 0.017, 0.5, 1.0, 2.0, 123.4, 1e4, 1e12] {
            let (ours, std) = (sqrt(x), std::primitive::f64::sqrt(x));
            assert!(
                (ours - std).abs() <= 1e-12 * std.max(1.0),
                "{x}: {ours} {std}"
            );
        }
        assert_eq!(sqrt(-1.0), 0.0);
        assert_eq!(sqrt(f64::NAN), 0.0);
        assert_eq!(sqrt(f64::INFINITY), f64::INFINITY);
        let top = std::primitive::f64::sqrt(f64::MAX);
        assert!((sqrt(f64::MAX) - top).abs() <= 1e-12 * top);
    }

    #[test]
    fn parity_grows_with_the_loss_and_its_runs_and_never_passes_a_copy_each() {
        assert_eq!(parity_segments(0, 0.1, 1.0), 0);
        assert_eq!(parity_segments(1, 0.01, 1.0), 1);
        let at = |loss, burst| parity_segments(1364, loss, burst);
        assert!(at(0.01, 1.0) < at(0.1, 1.0) && at(0.1, 1.0) < at(0.2, 1.0));
        assert!(at(0.05, 1.0) < at(0.05, 8.0));
        // 10 %: the mean loss at the margin (207) and its spread, over what arrives.
        assert!((250..320).contains(&at(0.1, 1.0)), "{}", at(0.1, 1.0));
        assert_eq!(parity_segments(10, 0.5, 8.0), 10);
        assert_eq!(parity_segments(10, f64::NAN, f64::INFINITY), 1);
        // A run length no radio has (a peer's bug) asks for a copy of each, no more.
        assert_eq!(parity_segments(10, 0.1, f64::MAX), 10);
    }
}
