//! Video: fragmentation to the MTU and reassembly with bounded memory.
//!
//! The receiver reassembles at most `video_reassembly_slots` messages at once, each at most
//! `max_video_message` bytes, so reassembly memory is bounded by their product. A message is
//! delivered only when every fragment arrived; a message that times out, or is evicted to
//! make room for a newer one, is reported lost. Late fragments of a message that was already
//! delivered or reported lost are dropped.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::pool::BufPool;
use crate::time::Timestamp;
use crate::wire::body::FragmentHeader;
use crate::wire::DecodeError;
use core::time::Duration;

/// A video message waiting to be sent, fragment by fragment.
struct Outgoing {
    id: u32,
    data: Vec<u8>,
    next_index: u16,
    count: u16,
}

/// The sending side: a queue of messages, cut into fragments as frames are produced.
#[derive(Default)]
pub(crate) struct VideoSender {
    queue: VecDeque<Outgoing>,
    next_id: u32,
    /// Bytes of the queued messages.
    bytes: usize,
}

impl VideoSender {
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Drop the oldest message nothing of which was sent yet, if more than `max_bytes`
    /// wait: a video frame that would arrive too late is better not sent. Returns its id.
    pub(crate) fn drop_stale(&mut self, max_bytes: usize, pool: &mut BufPool) -> Option<u32> {
        if self.bytes <= max_bytes {
            return None;
        }
        let i = self.queue.iter().position(|m| m.next_index == 0)?;
        // Never the newest: the encoder's latest frame is the one worth sending.
        if i + 1 == self.queue.len() {
            return None;
        }
        let dropped = self.queue.remove(i)?;
        self.bytes -= dropped.data.len();
        pool.give(dropped.data);
        Some(dropped.id)
    }

    /// Queue a message; `data` is non-empty and at most `max_video_message` bytes (checked by
    /// the caller). Returns its message id.
    pub(crate) fn push(&mut self, data: Vec<u8>, max_fragment: usize) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let count = FragmentHeader::count_for(data.len(), max_fragment).unwrap_or(1);
        self.bytes += data.len();
        self.queue.push_back(Outgoing {
            id,
            data,
            next_index: 0,
            count,
        });
        id
    }

    /// Write the next fragment (header and data) into `out`, returning its length. The
    /// message buffer goes back to `pool` after its last fragment.
    pub(crate) fn next_fragment(&mut self, out: &mut [u8], pool: &mut BufPool) -> Option<usize> {
        let msg = self.queue.front_mut()?;
        let header = FragmentHeader {
            message_id: msg.id,
            total_len: msg.data.len() as u32,
            index: msg.next_index,
            count: msg.count,
        };
        let range = header.range();
        let n = header.emit(out).ok()?;
        let dst = out.get_mut(n..n + range.len())?;
        dst.copy_from_slice(&msg.data[range.clone()]);
        msg.next_index += 1;
        if msg.next_index == msg.count {
            if let Some(done) = self.queue.pop_front() {
                self.bytes -= done.data.len();
                pool.give(done.data);
            }
        }
        Some(n + range.len())
    }
}

/// One message being reassembled.
struct Slot {
    id: u32,
    data: Vec<u8>,
    /// Bit per fragment: received?
    have: Vec<u64>,
    missing: u16,
    count: u16,
    started: Timestamp,
}

/// What a fragment did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reassembled {
    /// Stored; the message is not complete yet.
    Pending,
    /// The message is complete: here it is.
    Complete(u32, Vec<u8>),
    /// A late fragment of a message already finished or given up, or a duplicate.
    Stale,
}

/// How many finished message ids are remembered to recognise late fragments.
const RECENT: usize = 64;

/// The receiving side.
pub(crate) struct Reassembler {
    slots: Vec<Slot>,
    max_slots: usize,
    max_message: usize,
    timeout: Duration,
    /// Ids recently delivered or reported lost.
    finished: VecDeque<u32>,
    /// Spare bitmaps, so that slots allocate nothing in steady state.
    spare_bitmaps: Vec<Vec<u64>>,
}

impl Reassembler {
    pub(crate) fn new(max_slots: usize, max_message: usize, timeout: Duration) -> Self {
        Reassembler {
            slots: Vec::with_capacity(max_slots),
            max_slots,
            max_message,
            timeout,
            finished: VecDeque::with_capacity(RECENT),
            spare_bitmaps: Vec::new(),
        }
    }

    fn finish(&mut self, id: u32) {
        if self.finished.len() == RECENT {
            self.finished.pop_front();
        }
        self.finished.push_back(id);
    }

    fn release(&mut self, slot: Slot, pool: &mut BufPool) -> u32 {
        pool.give(slot.data);
        self.spare_bitmaps.push(slot.have);
        self.finish(slot.id);
        slot.id
    }

    /// Bytes currently held for reassembly (for the memory-bound invariant).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.slots.iter().map(|s| s.data.len()).sum()
    }

    /// Take one fragment. Evicted messages (reported lost) are pushed onto `lost`.
    ///
    /// # Errors
    /// [`DecodeError::InvalidField`] for a fragment inconsistent with the others of its
    /// message or larger than `max_message`.
    pub(crate) fn on_fragment(
        &mut self,
        now: Timestamp,
        header: &FragmentHeader,
        data: &[u8],
        pool: &mut BufPool,
        lost: &mut impl FnMut(u32),
    ) -> Result<Reassembled, DecodeError> {
        if header.total_len as usize > self.max_message {
            return Err(DecodeError::InvalidField);
        }
        if self.finished.contains(&header.message_id) {
            return Ok(Reassembled::Stale);
        }
        let in_progress = self.slots.iter().any(|s| s.id == header.message_id);
        if header.count == 1 {
            if in_progress {
                // A one-fragment message with the id of one being reassembled: inconsistent.
                return Err(DecodeError::InvalidField);
            }
            self.finish(header.message_id);
            return Ok(Reassembled::Complete(
                header.message_id,
                pool.take_copy(data),
            ));
        }
        let pos = match self.slots.iter().position(|s| s.id == header.message_id) {
            Some(pos) => {
                let slot = &self.slots[pos];
                if slot.count != header.count || slot.data.len() != header.total_len as usize {
                    return Err(DecodeError::InvalidField);
                }
                pos
            }
            None => {
                if self.slots.len() == self.max_slots {
                    // Evict the oldest message to make room: it is lost.
                    let oldest = (0..self.slots.len())
                        .min_by_key(|&i| self.slots[i].started)
                        .unwrap_or(0);
                    let slot = self.slots.swap_remove(oldest);
                    lost(self.release(slot, pool));
                }
                let mut data = pool.take();
                data.resize(header.total_len as usize, 0);
                let mut have = self.spare_bitmaps.pop().unwrap_or_default();
                have.clear();
                have.resize(usize::from(header.count).div_ceil(64), 0);
                self.slots.push(Slot {
                    id: header.message_id,
                    data,
                    have,
                    missing: header.count,
                    count: header.count,
                    started: now,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[pos];
        let (word, bit) = (usize::from(header.index) / 64, 1u64 << (header.index % 64));
        if slot.have[word] & bit != 0 {
            return Ok(Reassembled::Stale);
        }
        slot.have[word] |= bit;
        slot.missing -= 1;
        slot.data[header.range()].copy_from_slice(data);
        if slot.missing > 0 {
            return Ok(Reassembled::Pending);
        }
        let mut slot = self.slots.swap_remove(pos);
        let data = core::mem::take(&mut slot.data);
        let id = self.release(slot, pool);
        Ok(Reassembled::Complete(id, data))
    }

    /// Report as lost every message older than the reassembly timeout.
    pub(crate) fn expire(
        &mut self,
        now: Timestamp,
        pool: &mut BufPool,
        lost: &mut impl FnMut(u32),
    ) {
        while let Some(pos) = self
            .slots
            .iter()
            .position(|s| now.saturating_since(s.started) >= self.timeout)
        {
            let slot = self.slots.swap_remove(pos);
            lost(self.release(slot, pool));
        }
    }

    /// When the oldest incomplete message times out.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.slots.iter().map(|s| s.started + self.timeout).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;
    use std::vec::Vec as StdVec;

    fn fragments(msg: &[u8], max: usize) -> StdVec<StdVec<u8>> {
        let mut tx = VideoSender::default();
        let mut pool = BufPool::default();
        tx.push(msg.to_vec(), max);
        let mut out = StdVec::new();
        let mut buf = vec![0u8; max + FragmentHeader::LEN];
        while let Some(n) = tx.next_fragment(&mut buf, &mut pool) {
            out.push(buf[..n].to_vec());
        }
        out
    }

    fn feed(
        r: &mut Reassembler,
        now: Timestamp,
        frag: &[u8],
        lost: &mut StdVec<u32>,
    ) -> Reassembled {
        let (h, data) = FragmentHeader::parse(frag).unwrap();
        let mut pool = BufPool::default();
        r.on_fragment(now, &h, data, &mut pool, &mut |id| lost.push(id))
            .unwrap()
    }

    #[test]
    fn reassembles_in_any_order_and_never_twice() {
        let msg: StdVec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let mut frags = fragments(&msg, 700);
        assert_eq!(frags.len(), 8);
        frags.reverse();
        let mut r = Reassembler::new(4, 1 << 20, Duration::from_millis(100));
        let mut lost = StdVec::new();
        for f in &frags[..7] {
            assert_eq!(
                feed(&mut r, Timestamp::ZERO, f, &mut lost),
                Reassembled::Pending
            );
        }
        assert_eq!(
            feed(&mut r, Timestamp::ZERO, &frags[7], &mut lost),
            Reassembled::Complete(0, msg)
        );
        assert_eq!(
            feed(&mut r, Timestamp::ZERO, &frags[3], &mut lost),
            Reassembled::Stale
        );
        assert!(lost.is_empty());
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn a_missing_fragment_is_reported_lost_on_timeout_never_delivered() {
        let frags = fragments(&[7u8; 3000], 1000);
        let mut r = Reassembler::new(4, 1 << 20, Duration::from_millis(100));
        let mut lost = StdVec::new();
        feed(&mut r, Timestamp::ZERO, &frags[0], &mut lost);
        feed(&mut r, Timestamp::ZERO, &frags[2], &mut lost);
        assert_eq!(r.poll_timeout(), Some(Timestamp::from_millis(100)));
        let mut pool = BufPool::default();
        r.expire(Timestamp::from_millis(99), &mut pool, &mut |id| {
            lost.push(id)
        });
        assert!(lost.is_empty());
        r.expire(Timestamp::from_millis(100), &mut pool, &mut |id| {
            lost.push(id)
        });
        assert_eq!(lost, [0]);
        // The late fragment does not resurrect it.
        assert_eq!(
            feed(&mut r, Timestamp::from_millis(101), &frags[1], &mut lost),
            Reassembled::Stale
        );
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn memory_is_bounded_by_slots_and_message_size() {
        let mut r = Reassembler::new(2, 4000, Duration::from_secs(10));
        let mut lost = StdVec::new();
        let mut tx = VideoSender::default();
        let mut pool = BufPool::default();
        for _ in 0..5 {
            tx.push(vec![1u8; 4000], 1000);
        }
        let mut buf = [0u8; 1100];
        // First fragment of each of five messages: only two stay, three are evicted as lost.
        for _ in 0..5 {
            let n = tx.next_fragment(&mut buf, &mut pool).unwrap();
            feed(&mut r, Timestamp::ZERO, &buf[..n], &mut lost);
            for _ in 0..3 {
                tx.next_fragment(&mut buf, &mut pool).unwrap();
            }
            assert!(r.buffered_bytes() <= 2 * 4000);
        }
        assert_eq!(lost, [0, 1, 2]);
        // Too large for this receiver: refused.
        let h = FragmentHeader {
            message_id: 99,
            total_len: 4001,
            index: 0,
            count: 5,
        };
        assert_eq!(
            r.on_fragment(Timestamp::ZERO, &h, &[0; 801], &mut pool, &mut |_| {}),
            Err(DecodeError::InvalidField)
        );
        // Inconsistent with the slot's message: refused.
        let h = FragmentHeader {
            message_id: 4,
            total_len: 3000,
            index: 1,
            count: 4,
        };
        assert_eq!(
            r.on_fragment(Timestamp::ZERO, &h, &[0; 750], &mut pool, &mut |_| {}),
            Err(DecodeError::InvalidField)
        );
    }

    #[test]
    fn a_single_fragment_reusing_an_id_in_progress_is_refused() {
        let mut r = Reassembler::new(4, 1 << 20, Duration::from_millis(100));
        let mut pool = BufPool::default();
        let first = FragmentHeader {
            message_id: 5,
            total_len: 20,
            index: 0,
            count: 2,
        };
        let got = r.on_fragment(Timestamp::ZERO, &first, &[2; 10], &mut pool, &mut |_| {});
        assert_eq!(got, Ok(Reassembled::Pending));
        let single = FragmentHeader {
            message_id: 5,
            total_len: 3,
            index: 0,
            count: 1,
        };
        assert_eq!(
            r.on_fragment(Timestamp::ZERO, &single, &[2; 3], &mut pool, &mut |_| {}),
            Err(DecodeError::InvalidField)
        );
    }
}
