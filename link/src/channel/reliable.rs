//! The reliable channel: segmentation, selective acknowledgement, retransmission, and
//! in-order exactly-once delivery.
//!
//! Every segment carries a 32-bit sequence number (wrapping). The receiver answers with an
//! ack holding the next sequence number it expects and a 64-bit bitmap of the segments it
//! holds beyond it. The sender keeps at most `storage_window` (<= 64) segments in flight and
//! retransmits a segment when its timeout expires (RFC 6298 estimator, Karn's rule,
//! exponential backoff) or, sooner, when a segment sent after it was acknowledged and a
//! quarter of the smoothed RTT more has passed (RACK, RFC 8985), so that reordering by the
//! radio's jitter does not cause spurious retransmissions.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use crate::config::Config;
use crate::pool::BufPool;
use crate::time::Timestamp;
use crate::wire::body::{AckBody, SegmentHeader, SEGMENT_FIRST, SEGMENT_LAST};

/// The receive window, and the reach of the ack bitmap beyond the next expected segment.
pub(crate) const WINDOW: u32 = 64;

/// `a - b` as a signed distance on the wrapping sequence space.
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

struct InFlight {
    /// Segment header and data, as sent.
    segment: Vec<u8>,
    sent_at: Timestamp,
    deadline: Timestamp,
    /// Order of the last transmission among all transmissions.
    tx_order: u64,
    retransmitted: bool,
    sacked: bool,
    /// The deadline was brought forward by loss detection, not set by the timer.
    lost: bool,
}

/// RFC 6298 retransmission timer.
struct Rto {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    min: Duration,
    max: Duration,
}

impl Rto {
    fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        self.rto =
            (srtt + (self.rttvar * 4).max(Duration::from_millis(1))).clamp(self.min, self.max);
    }

    fn back_off(&mut self) {
        self.rto = (self.rto * 2).min(self.max);
    }
}

/// The sending side of the reliable channel.
pub(crate) struct ReliableSender {
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the front message already segmented.
    cursor: usize,
    /// Sequence number of `inflight[0]`.
    una: u32,
    inflight: VecDeque<InFlight>,
    window: usize,
    rto: Rto,
    tx_order: u64,
}

impl ReliableSender {
    pub(crate) fn new(config: &Config) -> Self {
        ReliableSender {
            queue: VecDeque::new(),
            cursor: 0,
            una: 0,
            inflight: VecDeque::with_capacity(WINDOW as usize),
            window: config.storage_window.min(WINDOW) as usize,
            rto: Rto {
                srtt: None,
                rttvar: Duration::ZERO,
                rto: config.storage_initial_rto,
                min: config.storage_min_rto,
                max: config.storage_max_rto,
            },
            tx_order: 0,
        }
    }

    /// Messages waiting to be segmented.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Segments sent and not yet acknowledged.
    pub(crate) fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// The current retransmission timeout.
    #[cfg(test)]
    pub(crate) fn rto(&self) -> Duration {
        self.rto.rto
    }

    pub(crate) fn push(&mut self, message: Vec<u8>) {
        self.queue.push_back(message);
    }

    fn transmit(&mut self, index: usize, now: Timestamp, out: &mut [u8]) -> Option<usize> {
        self.tx_order += 1;
        let rto = self.rto.rto;
        let seg = self.inflight.get_mut(index)?;
        let dst = out.get_mut(..seg.segment.len())?;
        dst.copy_from_slice(&seg.segment);
        seg.sent_at = now;
        seg.deadline = now + rto;
        seg.tx_order = self.tx_order;
        seg.lost = false;
        Some(seg.segment.len())
    }

    /// Write a due retransmission into `out`, if any.
    pub(crate) fn next_retransmit(&mut self, now: Timestamp, out: &mut [u8]) -> Option<usize> {
        let index = self
            .inflight
            .iter()
            .position(|s| !s.sacked && s.deadline <= now)?;
        let first_unacked = self.inflight.iter().position(|s| !s.sacked);
        if !self.inflight[index].lost && first_unacked == Some(index) {
            // The oldest segment timed out (RFC 6298 section 5.5): back off once. Later
            // segments expiring in the same burst do not double the timer again.
            self.rto.back_off();
        }
        self.inflight[index].retransmitted = true;
        self.transmit(index, now, out)
    }

    /// Write a new segment into `out` (at most `max_plaintext` bytes), if the window allows
    /// and data is queued.
    pub(crate) fn next_new(
        &mut self,
        now: Timestamp,
        max_plaintext: usize,
        out: &mut [u8],
        pool: &mut BufPool,
    ) -> Option<usize> {
        if self.inflight.len() >= self.window {
            return None;
        }
        let room = max_plaintext.checked_sub(SegmentHeader::LEN)?.max(1);
        let message = self.queue.front()?;
        let start = self.cursor;
        let end = (start + room).min(message.len());
        let mut flags = 0;
        if start == 0 {
            flags |= SEGMENT_FIRST;
        }
        if end == message.len() {
            flags |= SEGMENT_LAST;
        }
        let header = SegmentHeader {
            seq: self.una.wrapping_add(self.inflight.len() as u32),
            flags,
        };
        let mut segment = pool.take();
        segment.resize(SegmentHeader::LEN, 0);
        header.emit(&mut segment).ok()?;
        segment.extend_from_slice(&message[start..end]);
        if flags & SEGMENT_LAST != 0 {
            self.cursor = 0;
            if let Some(done) = self.queue.pop_front() {
                pool.give(done);
            }
        } else {
            self.cursor = end;
        }
        self.inflight.push_back(InFlight {
            segment,
            sent_at: now,
            deadline: now,
            tx_order: 0,
            retransmitted: false,
            sacked: false,
            lost: false,
        });
        self.transmit(self.inflight.len() - 1, now, out)
    }

    /// Take an acknowledgement. Returns false (and changes nothing) if it acknowledges
    /// segments never sent.
    pub(crate) fn on_ack(&mut self, now: Timestamp, ack: &AckBody, pool: &mut BufPool) -> bool {
        let acked = seq_diff(ack.next_expected, self.una);
        if acked < 0 {
            return true; // an old ack, overtaken by a newer one
        }
        let acked = acked as usize;
        if acked > self.inflight.len() {
            return false;
        }
        let mut rtt_sample = None;
        for _ in 0..acked {
            if let Some(seg) = self.inflight.pop_front() {
                if !seg.retransmitted {
                    rtt_sample = Some(now.saturating_since(seg.sent_at));
                }
                pool.give(seg.segment);
            }
        }
        self.una = ack.next_expected;
        if let Some(rtt) = rtt_sample {
            self.rto.sample(rtt);
        }
        for (i, seg) in self.inflight.iter_mut().enumerate().skip(1) {
            if i <= 64 && ack.sack & (1u64 << (i - 1)) != 0 {
                seg.sacked = true;
            }
        }
        // RACK (RFC 8985) in short: a segment sent before one that has been acknowledged is
        // lost once a reordering window has also passed, a quarter of the smoothed RTT.
        let newest_sacked = self
            .inflight
            .iter()
            .filter(|s| s.sacked)
            .map(|s| s.tx_order)
            .max()
            .unwrap_or(0);
        let srtt = self.rto.srtt.unwrap_or(self.rto.rto);
        let wait = srtt + srtt / 4;
        for seg in self.inflight.iter_mut().filter(|s| !s.sacked) {
            let early = seg.sent_at + wait;
            if seg.tx_order < newest_sacked && early < seg.deadline {
                seg.deadline = early;
                seg.lost = true;
            }
        }
        true
    }

    /// When the next retransmission is due.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.inflight
            .iter()
            .filter(|s| !s.sacked)
            .map(|s| s.deadline)
            .min()
    }

    /// Is a retransmission due now (timeout or detected loss)?
    pub(crate) fn retransmit_due(&self, now: Timestamp) -> bool {
        self.inflight.iter().any(|s| !s.sacked && s.deadline <= now)
    }
}

/// What one received segment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentOutcome {
    /// New data, stored or delivered.
    Accepted,
    /// Already delivered or already buffered.
    Duplicate,
    /// Beyond the receive window: the sender broke the protocol.
    OutOfWindow,
}

/// The receiving side of the reliable channel.
pub(crate) struct ReliableReceiver {
    next_expected: u32,
    /// Out-of-order segments, at `seq % WINDOW`.
    ring: Vec<Option<(u8, Vec<u8>)>>,
    assembling: Vec<u8>,
    in_message: bool,
    max_message: usize,
    ack_pending: bool,
    /// Messages dropped because an authenticated peer broke the segment rules.
    pub(crate) protocol_errors: u64,
}

impl ReliableReceiver {
    pub(crate) fn new(config: &Config) -> Self {
        let mut ring = Vec::with_capacity(WINDOW as usize);
        ring.resize_with(WINDOW as usize, || None);
        ReliableReceiver {
            next_expected: 0,
            ring,
            assembling: Vec::new(),
            in_message: false,
            max_message: config.max_storage_message,
            ack_pending: false,
            protocol_errors: 0,
        }
    }

    /// Bytes buffered out of order or in a partial message (for the memory invariant).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.assembling.len()
            + self
                .ring
                .iter()
                .flatten()
                .map(|(_, d)| d.len())
                .sum::<usize>()
    }

    /// Is an ack owed to the sender?
    pub(crate) fn ack_pending(&self) -> bool {
        self.ack_pending
    }

    /// The ack describing what has been received; clears the pending flag.
    pub(crate) fn take_ack(&mut self) -> AckBody {
        self.ack_pending = false;
        let mut sack = 0u64;
        for i in 0..WINDOW - 1 {
            let seq = self.next_expected.wrapping_add(1 + i);
            if self.ring[(seq % WINDOW) as usize].is_some() {
                sack |= 1 << i;
            }
        }
        AckBody {
            next_expected: self.next_expected,
            sack,
        }
    }

    /// Take one segment; complete messages, in order, are passed to `deliver`.
    pub(crate) fn on_segment(
        &mut self,
        header: &SegmentHeader,
        data: &[u8],
        pool: &mut BufPool,
        deliver: &mut impl FnMut(Vec<u8>),
    ) -> SegmentOutcome {
        self.ack_pending = true;
        let offset = seq_diff(header.seq, self.next_expected);
        if offset < 0 {
            return SegmentOutcome::Duplicate;
        }
        if offset >= i64::from(WINDOW) {
            return SegmentOutcome::OutOfWindow;
        }
        let slot = &mut self.ring[(header.seq % WINDOW) as usize];
        if slot.is_some() {
            return SegmentOutcome::Duplicate;
        }
        *slot = Some((header.flags, pool.take_copy(data)));
        while let Some((flags, data)) = self.ring[(self.next_expected % WINDOW) as usize].take() {
            self.next_expected = self.next_expected.wrapping_add(1);
            self.assemble(flags, &data, pool, deliver);
            pool.give(data);
        }
        SegmentOutcome::Accepted
    }

    fn assemble(
        &mut self,
        flags: u8,
        data: &[u8],
        pool: &mut BufPool,
        deliver: &mut impl FnMut(Vec<u8>),
    ) {
        if flags & SEGMENT_FIRST != 0 {
            if self.in_message {
                self.protocol_errors += 1; // a message that never ended
            }
            self.assembling.clear();
            self.in_message = true;
        } else if !self.in_message {
            self.protocol_errors += 1; // a continuation without a start
            return;
        }
        if self.assembling.len() + data.len() > self.max_message {
            self.protocol_errors += 1;
            self.assembling.clear();
            self.in_message = false;
            return;
        }
        self.assembling.extend_from_slice(data);
        if flags & SEGMENT_LAST != 0 {
            self.in_message = false;
            let next = pool.take();
            deliver(core::mem::replace(&mut self.assembling, next));
        }
    }
}

#[cfg(test)]
mod tests;
