//! Video: fragmentation to the MTU, forward error correction, and reassembly with bounded
//! memory.
//!
//! A message is cut into `count` data fragments and followed by `parity` Reed-Solomon
//! parity fragments ([`super::fec`]), computed when its first parity fragment is due: after
//! its last data fragment, so FEC adds no frame of latency. The receiver delivers a message
//! as soon as it holds any `count` of its `count + parity` fragments, recovering the missing
//! data fragments from the parity ones.
//!
//! The receiver reassembles at most `video_reassembly_slots` messages at once. Each slot
//! holds its message (at most `max_video_message` bytes) and the parity shards received for
//! it: fewer than `count` of them (at `count` fragments the message is complete), at most
//! `max_video_parity`, each one shard long; so a slot holds less than twice
//! `max_video_message` plus `count` bytes ([`crate::Config::max_video_reassembly_bytes`]
//! is the bound). A message that times out, or is evicted to make room for a newer one, is
//! reported lost. Late fragments of a message that was already delivered or reported lost
//! are dropped.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::fec::{FecDecoder, FecEncoder};
use crate::pool::BufPool;
use crate::time::Timestamp;
use crate::wire::body::{fec_supports, FragmentHeader};
use crate::wire::{DecodeError, MAX_DATAGRAM_LEN};
use core::time::Duration;

/// A video message waiting to be sent, fragment by fragment.
struct Outgoing {
    id: u32,
    data: Vec<u8>,
    /// Its parity shards, computed when the first of them is due (empty until then).
    parity_data: Vec<u8>,
    /// The next fragment to send: `0..count` data, then `count..count + parity` parity.
    /// Wider than the wire's index: `count + parity` may be 65536.
    next_index: u32,
    count: u16,
    parity: u16,
    /// Fragment data bytes it has still to put on the air, parity included.
    wire_left: usize,
}

impl Outgoing {
    fn header(&self, index: u16) -> FragmentHeader {
        FragmentHeader {
            message_id: self.id,
            total_len: self.data.len() as u32,
            index,
            count: self.count,
            parity: self.parity,
        }
    }

    fn end(&self) -> u32 {
        u32::from(self.count) + u32::from(self.parity)
    }
}

/// The sending side: a queue of messages, cut into fragments as frames are produced.
#[derive(Default)]
pub(crate) struct VideoSender {
    queue: VecDeque<Outgoing>,
    next_id: u32,
    /// Fragment data bytes of the queued messages not sent yet, parity included.
    bytes: usize,
    encoder: FecEncoder,
    /// Data fragments of the last two messages queued, the newest first (0 before them).
    last_counts: [u16; 2],
}

impl VideoSender {
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Data fragments of the smaller of the last two messages queued (of the last, before a
    /// second; 0 before the first): the frame size the encoder produces, for sizing the
    /// parity share of the video budget. The smaller, because one key frame among them is
    /// several times the others: sized by it, the budget offered the frames after it too
    /// little parity (a tenth more than the radio carries after a forced key frame).
    pub(crate) fn last_count(&self) -> u16 {
        match self.last_counts {
            [last, 0] => last,
            [last, before] => last.min(before),
        }
    }

    /// Drop the oldest message nothing of which was sent yet, if more than `max_bytes`
    /// wait to be sent before the newest one starts: a video frame that would arrive too
    /// late is better not sent. Returns its id.
    ///
    /// What waits is counted, not what the queue ever held: a key frame half sent holds
    /// the frames behind it back by its other half only, and the newest frame's own bytes
    /// are not a wait (they go as soon as it starts).
    pub(crate) fn drop_stale(&mut self, max_bytes: usize, pool: &mut BufPool) -> Option<u32> {
        let newest = self.queue.back()?.wire_left;
        if self.bytes.saturating_sub(newest) <= max_bytes {
            return None;
        }
        let i = self.queue.iter().position(|m| m.next_index == 0)?;
        // Never the newest: the encoder's latest frame is the one worth sending.
        if i + 1 == self.queue.len() {
            return None;
        }
        let dropped = self.queue.remove(i)?;
        Some(self.release(dropped, pool))
    }

    fn release(&mut self, msg: Outgoing, pool: &mut BufPool) -> u32 {
        self.bytes -= msg.wire_left;
        pool.give(msg.data);
        pool.give(msg.parity_data);
        msg.id
    }

    /// Queue a message with `parity` parity fragments after its data fragments (0 for no
    /// FEC; lowered to 0 if the erasure code does not support it for this message's
    /// fragment count). `data` is non-empty and at most `max_video_message` bytes (checked
    /// by the caller). Returns its message id.
    pub(crate) fn push(&mut self, data: Vec<u8>, max_fragment: usize, parity: u16) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let count = FragmentHeader::count_for(data.len(), max_fragment).unwrap_or(1);
        let parity = if fec_supports(count, parity) {
            parity
        } else {
            0
        };
        let mut msg = Outgoing {
            id,
            data,
            parity_data: Vec::new(),
            next_index: 0,
            count,
            parity,
            wire_left: 0,
        };
        msg.wire_left = msg.data.len() + usize::from(parity) * msg.header(0).shard_len();
        self.bytes += msg.wire_left;
        self.last_counts = [count, self.last_counts[0]];
        self.queue.push_back(msg);
        id
    }

    /// Write the next fragment (header and data) into `out`, returning its length and
    /// whether it is a parity fragment. The message's buffers go back to `pool` after its
    /// last fragment.
    pub(crate) fn next_fragment(
        &mut self,
        out: &mut [u8],
        pool: &mut BufPool,
    ) -> Option<(usize, bool)> {
        let msg = self.queue.front_mut()?;
        let header = msg.header(u16::try_from(msg.next_index).ok()?);
        if header.is_parity() && msg.parity_data.is_empty() {
            let mut parity = pool.take();
            if self
                .encoder
                .encode(&msg.data, msg.count, msg.parity, &mut parity)
                .is_err()
            {
                // Not for a message `push` accepted; were it to happen, the data fragments
                // are out and the message simply goes without parity.
                pool.give(parity);
                let done = self.queue.pop_front()?;
                self.release(done, pool);
                return self.next_fragment(out, pool);
            }
            msg.parity_data = parity;
        }
        let src = if header.is_parity() {
            let shard = header.shard_len();
            let start = usize::from(header.index - header.count) * shard;
            msg.parity_data.get(start..start + shard)?
        } else {
            msg.data.get(header.range())?
        };
        let n = header.emit(out).ok()?;
        out.get_mut(n..n + src.len())?.copy_from_slice(src);
        let len = n + src.len();
        msg.next_index += 1;
        msg.wire_left = msg.wire_left.saturating_sub(src.len());
        self.bytes = self.bytes.saturating_sub(src.len());
        if msg.next_index >= msg.end() {
            if let Some(done) = self.queue.pop_front() {
                self.release(done, pool);
            }
        }
        Some((len, header.is_parity()))
    }
}

/// One message being reassembled.
struct Slot {
    id: u32,
    data: Vec<u8>,
    /// The parity shards received, one after the other, in arrival order...
    parity_data: Vec<u8>,
    /// ...and their parity indices (`index - count`).
    parity_index: Vec<u16>,
    /// Bit per fragment, data and parity: received?
    have: Vec<u64>,
    /// Fragments received, data and parity.
    received: u32,
    /// Data fragments received.
    data_received: u16,
    count: u16,
    parity: u16,
    started: Timestamp,
}

impl Slot {
    fn has(&self, index: u16) -> bool {
        let (word, bit) = (usize::from(index) / 64, 1u64 << (index % 64));
        self.have.get(word).is_some_and(|w| w & bit != 0)
    }

    fn bytes(&self) -> usize {
        self.data.len() + self.parity_data.len()
    }
}

/// What a fragment did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reassembled {
    /// Stored; the message is not complete yet.
    Pending,
    /// The message is complete: its id, its bytes, and how many of its data fragments were
    /// recovered from parity (0 when all arrived).
    Complete(u32, Vec<u8>, u16),
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
    max_parity: u16,
    timeout: Duration,
    /// Ids recently delivered or reported lost.
    finished: VecDeque<u32>,
    /// Spare bitmaps, so that slots allocate nothing in steady state.
    spare_bitmaps: Vec<Vec<u64>>,
    decoder: FecDecoder,
}

impl Reassembler {
    pub(crate) fn new(
        max_slots: usize,
        max_message: usize,
        max_parity: u16,
        timeout: Duration,
    ) -> Self {
        Reassembler {
            slots: Vec::with_capacity(max_slots),
            max_slots,
            max_message,
            max_parity,
            timeout,
            finished: VecDeque::with_capacity(RECENT),
            spare_bitmaps: Vec::new(),
            decoder: FecDecoder::default(),
        }
    }

    fn finish(&mut self, id: u32) {
        if self.finished.len() == RECENT {
            self.finished.pop_front();
        }
        self.finished.push_back(id);
    }

    fn release(&mut self, mut slot: Slot, pool: &mut BufPool) -> u32 {
        pool.give(core::mem::take(&mut slot.data));
        pool.give(slot.parity_data);
        self.spare_bitmaps.push(slot.have);
        self.finish(slot.id);
        slot.id
    }

    /// Bytes currently held for reassembly (for the memory-bound invariant): messages and
    /// parity shards.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.slots.iter().map(Slot::bytes).sum()
    }

    /// Take one fragment. Evicted messages (reported lost) are pushed onto `lost`.
    ///
    /// # Errors
    /// [`DecodeError::InvalidField`] for a fragment that is malformed (as
    /// [`FragmentHeader::check`] says), inconsistent with the others of its message (another
    /// count, parity count or length), larger than `max_message`, with more parity than
    /// `max_parity`, or a parity shard longer than a datagram; and for a message whose
    /// recovery the erasure code refused (it is then reported lost).
    pub(crate) fn on_fragment(
        &mut self,
        now: Timestamp,
        header: &FragmentHeader,
        data: &[u8],
        pool: &mut BufPool,
        lost: &mut impl FnMut(u32),
    ) -> Result<Reassembled, DecodeError> {
        header.check(data.len())?;
        if header.total_len as usize > self.max_message
            || header.parity > self.max_parity
            || data.len() > MAX_DATAGRAM_LEN
        {
            return Err(DecodeError::InvalidField);
        }
        if self.finished.contains(&header.message_id) {
            return Ok(Reassembled::Stale);
        }
        let in_progress = self.slots.iter().position(|s| s.id == header.message_id);
        if header.count == 1 && header.index == 0 {
            if in_progress.is_some() {
                // A one-fragment message with the id of one being reassembled: inconsistent.
                return Err(DecodeError::InvalidField);
            }
            self.finish(header.message_id);
            return Ok(Reassembled::Complete(
                header.message_id,
                pool.take_copy(data),
                0,
            ));
        }
        let pos = match in_progress {
            Some(pos) => {
                let slot = self.slots.get(pos).ok_or(DecodeError::InvalidField)?;
                if slot.count != header.count
                    || slot.parity != header.parity
                    || slot.data.len() != header.total_len as usize
                {
                    return Err(DecodeError::InvalidField);
                }
                pos
            }
            None => {
                if self.slots.len() >= self.max_slots {
                    // Evict the oldest message to make room: it is lost.
                    let oldest = (0..self.slots.len())
                        .min_by_key(|&i| self.slots[i].started)
                        .unwrap_or(0);
                    if oldest < self.slots.len() {
                        let slot = self.slots.swap_remove(oldest);
                        lost(self.release(slot, pool));
                    }
                }
                let mut data = pool.take();
                data.resize(header.total_len as usize, 0);
                let mut have = self.spare_bitmaps.pop().unwrap_or_default();
                have.clear();
                let bits = usize::from(header.count) + usize::from(header.parity);
                have.resize(bits.div_ceil(64), 0);
                self.slots.push(Slot {
                    id: header.message_id,
                    data,
                    parity_data: pool.take(),
                    parity_index: Vec::new(),
                    have,
                    received: 0,
                    data_received: 0,
                    count: header.count,
                    parity: header.parity,
                    started: now,
                });
                self.slots.len() - 1
            }
        };
        let slot = self.slots.get_mut(pos).ok_or(DecodeError::InvalidField)?;
        if slot.has(header.index) {
            return Ok(Reassembled::Stale);
        }
        let (word, bit) = (usize::from(header.index) / 64, 1u64 << (header.index % 64));
        let w = slot.have.get_mut(word).ok_or(DecodeError::InvalidField)?;
        *w |= bit;
        slot.received += 1;
        if header.is_parity() {
            slot.parity_data.extend_from_slice(data);
            slot.parity_index.push(header.index - header.count);
        } else {
            slot.data_received += 1;
            slot.data
                .get_mut(header.range())
                .ok_or(DecodeError::InvalidField)?
                .copy_from_slice(data);
        }
        if slot.received < u32::from(slot.count) {
            return Ok(Reassembled::Pending);
        }
        let mut slot = self.slots.swap_remove(pos);
        let recovered = slot.count - slot.data_received;
        if recovered > 0 {
            let shard_len = header.shard_len();
            let shards = slot
                .parity_index
                .iter()
                .copied()
                .zip(slot.parity_data.chunks_exact(shard_len));
            let have = |i: u16| {
                let (word, bit) = (usize::from(i) / 64, 1u64 << (i % 64));
                slot.have.get(word).is_some_and(|w| w & bit != 0)
            };
            let result =
                self.decoder
                    .recover(&mut slot.data, slot.count, slot.parity, have, shards);
            if result.is_err() {
                // Only a code that refuses what it accepted when encoding gets here: the
                // message cannot be trusted, so it is lost, never delivered.
                lost(self.release(slot, pool));
                return Err(DecodeError::InvalidField);
            }
        }
        let data = core::mem::take(&mut slot.data);
        let id = self.release(slot, pool);
        Ok(Reassembled::Complete(id, data, recovered))
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
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};
    use std::vec;
    use std::vec::Vec as StdVec;

    /// The fragments the sender makes of `msg`, data then parity.
    fn fragments_fec(msg: &[u8], max: usize, parity: u16) -> StdVec<StdVec<u8>> {
        let mut tx = VideoSender::default();
        let mut pool = BufPool::default();
        tx.push(msg.to_vec(), max, parity);
        let mut out = StdVec::new();
        let mut buf = vec![0u8; max + 1 + FragmentHeader::LEN];
        while let Some((n, _)) = tx.next_fragment(&mut buf, &mut pool) {
            out.push(buf[..n].to_vec());
        }
        assert_eq!(tx.bytes, 0);
        out
    }

    fn fragments(msg: &[u8], max: usize) -> StdVec<StdVec<u8>> {
        fragments_fec(msg, max, 0)
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

    fn message(len: usize, seed: u8) -> StdVec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Feed `frags` but those in `missing` (in a shuffled order when `rng` is given);
    /// returns what came out: the message if delivered, and what was reported lost after a
    /// timeout.
    fn deliver(
        frags: &[StdVec<u8>],
        missing: &[usize],
        rng: Option<&mut ChaCha20Rng>,
    ) -> (Option<StdVec<u8>>, StdVec<u32>) {
        let mut order: StdVec<usize> = (0..frags.len()).filter(|i| !missing.contains(i)).collect();
        if let Some(rng) = rng {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.next_u32() as usize % (i + 1));
            }
        }
        let mut r = Reassembler::new(4, 1 << 20, 64, Duration::from_millis(100));
        let mut lost = StdVec::new();
        let mut delivered = None;
        let k = usize::from(FragmentHeader::parse(&frags[0]).unwrap().0.count);
        let mut fed = StdVec::new();
        for i in order {
            fed.push(i);
            match feed(&mut r, Timestamp::ZERO, &frags[i], &mut lost) {
                Reassembled::Complete(_, data, recovered) => {
                    assert!(delivered.is_none(), "delivered twice");
                    // Exactly the data fragments not received yet were recovered.
                    let absent = (0..k).filter(|d| !fed.contains(d)).count();
                    assert_eq!(usize::from(recovered), absent);
                    delivered = Some(data);
                }
                Reassembled::Stale => assert!(delivered.is_some(), "stale before complete"),
                Reassembled::Pending => assert!(delivered.is_none()),
            }
        }
        let mut pool = BufPool::default();
        r.expire(Timestamp::from_millis(100), &mut pool, &mut |id| {
            lost.push(id)
        });
        assert_eq!(r.buffered_bytes(), 0);
        (delivered, lost)
    }

    #[test]
    fn reassembles_in_any_order_and_never_twice() {
        let msg: StdVec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let mut frags = fragments(&msg, 700);
        assert_eq!(frags.len(), 8);
        frags.reverse();
        let mut r = Reassembler::new(4, 1 << 20, 64, Duration::from_millis(100));
        let mut lost = StdVec::new();
        for f in &frags[..7] {
            assert_eq!(
                feed(&mut r, Timestamp::ZERO, f, &mut lost),
                Reassembled::Pending
            );
        }
        assert_eq!(
            feed(&mut r, Timestamp::ZERO, &frags[7], &mut lost),
            Reassembled::Complete(0, msg, 0)
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
        let mut r = Reassembler::new(4, 1 << 20, 64, Duration::from_millis(100));
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
    fn the_sender_sends_data_then_parity_of_one_shard_each() {
        // 1001 bytes in fragments of at most 300: 4 of 251 (odd: shards of 252), last 248.
        let msg = message(1001, 5);
        let frags = fragments_fec(&msg, 300, 3);
        assert_eq!(frags.len(), 7);
        for (i, f) in frags.iter().enumerate() {
            let (h, data) = FragmentHeader::parse(f).unwrap();
            assert_eq!((h.index, h.count, h.parity), (i as u16, 4, 3));
            if i < 4 {
                assert_eq!(data, &msg[h.range()]);
            } else {
                assert_eq!(data.len(), 252);
            }
        }
        // Without FEC the layout is unchanged.
        assert_eq!(fragments(&msg, 300).len(), 4);
    }

    #[test]
    fn any_parity_or_fewer_missing_fragments_are_recovered_byte_exact() {
        // Every pattern of up to p missing fragments out of k + p, for small k and p, with an
        // odd fragment size and a short last fragment.
        for (k, p, len) in [
            (1usize, 1u16, 77usize),
            (1, 3, 10),
            (2, 2, 301),
            (4, 3, 1001),
            (5, 4, 999),
        ] {
            let max = len.div_ceil(k);
            let msg = message(len, k as u8);
            let frags = fragments_fec(&msg, max, p);
            let n = frags.len();
            assert_eq!(n, k + usize::from(p), "k {k} p {p}");
            for mask in 0u32..1 << n {
                let missing: StdVec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
                let (got, lost) = deliver(&frags, &missing, None);
                if missing.len() <= usize::from(p) {
                    assert_eq!(
                        got.as_deref(),
                        Some(&msg[..]),
                        "k {k} p {p} missing {missing:?}"
                    );
                    assert!(lost.is_empty());
                } else {
                    assert_eq!(got, None, "k {k} p {p} missing {missing:?}");
                    // Reported lost, unless nothing of it arrived at all.
                    let expected: &[u32] = if missing.len() == n { &[] } else { &[0] };
                    assert_eq!(lost, expected);
                }
            }
        }
    }

    #[test]
    fn a_sixty_fragment_frame_survives_random_losses_up_to_its_parity() {
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        let msg = message(60 * 1400 - 123, 9);
        let frags = fragments_fec(&msg, 1400, 8);
        assert_eq!(frags.len(), 68);
        for round in 0..200 {
            let lose = rng.next_u32() as usize % 11;
            let mut missing = StdVec::new();
            while missing.len() < lose {
                let i = rng.next_u32() as usize % frags.len();
                if !missing.contains(&i) {
                    missing.push(i);
                }
            }
            let (got, lost) = deliver(&frags, &missing, Some(&mut rng));
            if lose <= 8 {
                assert_eq!(got.as_deref(), Some(&msg[..]), "round {round} {missing:?}");
                assert!(lost.is_empty());
            } else {
                assert_eq!(got, None, "round {round} {missing:?}");
                assert_eq!(lost, [0]);
            }
        }
    }

    #[test]
    fn an_inconsistent_parity_fragment_is_refused_and_alters_nothing() {
        let msg = message(4000, 1);
        let frags = fragments_fec(&msg, 1000, 2);
        let mut r = Reassembler::new(4, 1 << 20, 64, Duration::from_millis(100));
        let mut pool = BufPool::default();
        let mut lost = StdVec::new();
        feed(&mut r, Timestamp::ZERO, &frags[0], &mut lost);
        feed(&mut r, Timestamp::ZERO, &frags[1], &mut lost);
        let (good, shard) = FragmentHeader::parse(&frags[4]).unwrap();
        let forged = [
            FragmentHeader {
                count: 5,
                index: 5,
                ..good
            },
            FragmentHeader { parity: 3, ..good },
            FragmentHeader {
                total_len: 3999,
                ..good
            },
        ];
        for h in forged {
            let data = vec![0xAA; h.data_len()];
            assert_eq!(
                r.on_fragment(Timestamp::ZERO, &h, &data, &mut pool, &mut |_| {}),
                Err(DecodeError::InvalidField),
                "{h:?}"
            );
        }
        // A wrong shard length, and more parity than this receiver accepts.
        assert_eq!(
            r.on_fragment(Timestamp::ZERO, &good, &shard[1..], &mut pool, &mut |_| {}),
            Err(DecodeError::InvalidField)
        );
        let mut small = Reassembler::new(4, 1 << 20, 1, Duration::from_millis(100));
        assert_eq!(
            small.on_fragment(Timestamp::ZERO, &good, shard, &mut pool, &mut |_| {}),
            Err(DecodeError::InvalidField)
        );
        // The genuine parity completes the message byte-exact; a late forgery is stale.
        feed(&mut r, Timestamp::ZERO, &frags[4], &mut lost);
        assert_eq!(
            feed(&mut r, Timestamp::ZERO, &frags[5], &mut lost),
            Reassembled::Complete(0, msg, 2)
        );
        assert_eq!(
            feed(&mut r, Timestamp::ZERO, &frags[2], &mut lost),
            Reassembled::Stale
        );
        assert!(lost.is_empty());
    }

    #[test]
    fn memory_is_bounded_by_slots_and_message_size() {
        let mut r = Reassembler::new(2, 4000, 64, Duration::from_secs(10));
        let mut lost = StdVec::new();
        let mut tx = VideoSender::default();
        let mut pool = BufPool::default();
        for _ in 0..5 {
            tx.push(vec![1u8; 4000], 1000, 0);
        }
        let mut buf = [0u8; 1100];
        // First fragment of each of five messages: only two stay, three are evicted as lost.
        for _ in 0..5 {
            let (n, _) = tx.next_fragment(&mut buf, &mut pool).unwrap();
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
            parity: 0,
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
            parity: 0,
        };
        assert_eq!(
            r.on_fragment(Timestamp::ZERO, &h, &[0; 750], &mut pool, &mut |_| {}),
            Err(DecodeError::InvalidField)
        );
    }

    #[test]
    fn forged_huge_counts_and_parity_stay_within_the_memory_bound() {
        use crate::Config;
        let config = Config {
            video_reassembly_slots: 3,
            max_video_message: 100_000,
            max_video_parity: 4096,
            ..Config::default()
        };
        let bound = config.max_video_reassembly_bytes();
        let mut r = Reassembler::new(
            config.video_reassembly_slots,
            config.max_video_message,
            config.max_video_parity,
            Duration::from_secs(10),
        );
        let mut pool = BufPool::default();
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut refused = 0;
        for step in 0..20_000u32 {
            let count = 1 + (rng.next_u32() % 65_535) as u16;
            let parity = (rng.next_u32() % 5000) as u16;
            let total_len = 1 + rng.next_u32() % 100_000;
            let h = FragmentHeader {
                message_id: step % 7,
                total_len,
                index: (rng.next_u32() % (u32::from(count) + u32::from(parity) + 1)) as u16,
                count,
                parity,
            };
            let data = vec![0x55; h.data_len().min(20_000)];
            match r.on_fragment(Timestamp::ZERO, &h, &data, &mut pool, &mut |_| {}) {
                Ok(_) => {}
                Err(_) => refused += 1,
            }
            assert!(r.buffered_bytes() <= bound, "step {step}");
        }
        assert!(refused > 0);
        // A valid, maximal message: many parity shards of a huge message stay bounded too.
        let mut r = Reassembler::new(1, 100_000, 4096, Duration::from_secs(10));
        let h = FragmentHeader {
            message_id: 1,
            total_len: 100_000,
            index: 0,
            count: 2000,
            parity: 4096,
        };
        for index in 2000..6000u16 {
            let h = FragmentHeader { index, ..h };
            let data = vec![1; h.data_len()];
            r.on_fragment(Timestamp::ZERO, &h, &data, &mut pool, &mut |_| {})
                .unwrap();
            assert!(r.buffered_bytes() <= bound / 3);
        }
    }

    #[test]
    fn a_single_fragment_reusing_an_id_in_progress_is_refused() {
        let mut r = Reassembler::new(4, 1 << 20, 64, Duration::from_millis(100));
        let mut pool = BufPool::default();
        let first = FragmentHeader {
            message_id: 5,
            total_len: 20,
            index: 0,
            count: 2,
            parity: 0,
        };
        let got = r.on_fragment(Timestamp::ZERO, &first, &[2; 10], &mut pool, &mut |_| {});
        assert_eq!(got, Ok(Reassembled::Pending));
        let single = FragmentHeader {
            message_id: 5,
            total_len: 3,
            index: 0,
            count: 1,
            parity: 0,
        };
        assert_eq!(
            r.on_fragment(Timestamp::ZERO, &single, &[2; 3], &mut pool, &mut |_| {}),
            Err(DecodeError::InvalidField)
        );
    }

    #[test]
    fn a_stale_message_with_parity_is_dropped_whole_and_its_bytes_forgotten() {
        let mut tx = VideoSender::default();
        let mut pool = BufPool::default();
        tx.push(vec![1u8; 3000], 1000, 2);
        tx.push(vec![2u8; 3000], 1000, 2);
        assert_eq!(tx.bytes, 2 * (3000 + 2 * 1000));
        let mut buf = [0u8; 1100];
        tx.next_fragment(&mut buf, &mut pool).unwrap();
        // The first is partly sent: never dropped; the second is the newest: kept.
        assert_eq!(tx.drop_stale(0, &mut pool), None);
        tx.push(vec![3u8; 3000], 1000, 2);
        // What waits ahead of the newest: the first's unsent 4000 bytes and the second.
        assert_eq!(tx.bytes, 4000 + 5000 + 5000);
        assert_eq!(tx.drop_stale(9000, &mut pool), None);
        assert_eq!(tx.drop_stale(8999, &mut pool), Some(1));
        assert_eq!(tx.bytes, 4000 + 5000);
        let mut sent = 0;
        while tx.next_fragment(&mut buf, &mut pool).is_some() {
            sent += 1;
        }
        assert_eq!((sent, tx.bytes), (9, 0));
    }
}
