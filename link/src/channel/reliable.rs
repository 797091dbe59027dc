//! The reliable channel: segmentation, selective acknowledgement, retransmission, and
//! in-order exactly-once delivery.
//!
//! Every segment carries a 32-bit sequence number (wrapping). The receiver answers with an
//! ack holding the next sequence number it expects, its receive window, and up to
//! [`MAX_SACK_RANGES`] ranges of the segments it holds beyond it: the newest half in every
//! ack, the older ones in turn (the sender remembers what earlier acks reported). A bulk
//! receiver acks every second segment (no sooner than [`ACK_MIN_INTERVAL`] after the last
//! ack), at once when a duplicate arrives, and otherwise within [`ACK_DELAY`].
//!
//! The sender keeps at most the peer's window (and its own) in flight; how much of that it
//! uses is the pacer's business (`connection/path.rs`). A segment is lost when one sent
//! after it was acknowledged and a little more than a round trip has passed since it was
//! sent (RACK, RFC 8985), so neither the radio's jitter nor a growing queue causes spurious
//! retransmissions. When nothing is acknowledged for a whole timeout (RFC 6298's estimator,
//! Karn's rule) one probe goes, the oldest unacknowledged segment, and the next timeout is
//! twice as long (QUIC's probe timeout, RFC 9002): its ack tells RACK what else was lost,
//! instead of every timed-out segment being sent again.
//!
//! At the end of a storage transfer on a lossy path, parity over the segments in flight
//! lets the receiver rebuild the last round trip's losses without a round trip more
//! (`repair`: the sender's blocks, the receiver's decoding).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::time::Duration;

use crate::config::Config;
use crate::pool::BufPool;
use crate::time::Timestamp;
use crate::wire::body::{
    AckBody, RepairHeader, SackRange, SegmentHeader, MAX_REPAIR_SEGMENTS, MAX_SACK_RANGES,
    SEGMENT_FIRST, SEGMENT_LAST,
};

mod repair;
use repair::{parity_segments, RepairIn, RepairOut};

/// The window a sender assumes before the peer's first ack; every receiver's window is at
/// least this (`Config::storage_window`).
pub(crate) const INITIAL_WINDOW: u32 = 64;
/// The longest an ack waits for a second segment.
pub(crate) const ACK_DELAY: Duration = Duration::from_millis(5);
/// The longest a thinned receiver delays an ack (`ACK_DELAY` times the scale, up to this):
/// the sender's round-trip samples carry the delay, and its loss detection and probe
/// timeout wait as long.
const MAX_ACK_DELAY: Duration = Duration::from_millis(80);
/// The shortest time between two acks that segments arriving in turn make due: at most 2000
/// acks a second, one for every 4.5 segments of a 100 Mbit/s download rather than every
/// second one (no limit under 40 Mbit/s). The acks of such a download took 2 Mbit/s of an
/// uplink in its bursts, and a drone's uplink is narrow (BENCHMARKS.md).
pub(crate) const ACK_MIN_INTERVAL: Duration = Duration::from_micros(500);
/// The reordering window's ceiling, in quarters of the lowest round trip (the window is
/// never more than a round trip either).
const MAX_REORDER_QUARTERS: u32 = 4;
/// Genuine retransmissions in a row after which the reordering window shrinks a step
/// (RFC 8985's 16 recoveries).
const REORDER_PERSIST: u32 = 16;

/// `a - b` as a signed distance on the wrapping sequence space.
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

struct InFlight {
    /// Segment header and data, as sent (kept until acknowledged in order: a repair block
    /// covers the segments the peer holds among those it lacks).
    segment: Vec<u8>,
    sent_at: Timestamp,
    /// Order of the last transmission among all transmissions.
    tx_order: u64,
    retransmitted: bool,
    /// The last retransmission was RACK's (not a probe): what its ack says about the
    /// reordering window.
    declared_lost: bool,
    sacked: bool,
    /// Declared lost by RACK: to be retransmitted from then on.
    lost_at: Option<Timestamp>,
    /// Its latest transmission is in a repair block (`next_repair`).
    protected: bool,
}

/// RFC 6298's round-trip estimator; its timeout is the probe timeout here.
struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
    latest: Option<Duration>,
    /// The smallest sample: the path's round trip without queueing or jitter.
    lowest: Option<Duration>,
    /// RACK's adaptive reordering window, in quarters of `lowest` (RFC 8985 section 6.2):
    /// none at first, one more for each retransmission found to be spurious, one less after
    /// `REORDER_PERSIST` genuine ones in a row.
    reorder_quarters: u32,
    /// Retransmissions found genuine since the window last changed.
    genuine_in_a_row: u32,
    rto: Duration,
    min: Duration,
    max: Duration,
}

impl Rtt {
    /// Take a round-trip sample. One longer than the longest probe timeout is not the path's
    /// round trip but an outage: the segment, or every ack of it, waited out a fade. Taken,
    /// it would make RACK wait as long, and make every retransmission's prompt ack look like
    /// its late original's (`acked_too_soon`), so that a transfer's tail crawled one probe per
    /// timeout.
    fn sample(&mut self, rtt: Duration) {
        if rtt > self.max {
            return;
        }
        self.latest = Some(rtt);
        self.lowest = Some(self.lowest.map_or(rtt, |l| l.min(rtt)));
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

    /// RACK's wait before a segment overtaken by an acknowledged one counts as lost: the
    /// larger of the smoothed and the latest round trip, and a reordering window of an
    /// eighth more (QUIC's time threshold, RFC 9002 section 6.1.2) or, if larger, RACK's
    /// adaptive window of quarters of the lowest round trip (RFC 8985), never more than a
    /// round trip. A radio with jitter reorders frames by up to its whole range; the window
    /// grows until that stops causing spurious retransmissions, and stays short (quick loss
    /// detection) on a radio that does not reorder.
    fn loss_wait(&self) -> Duration {
        let rtt = match (self.srtt, self.latest) {
            (Some(s), Some(l)) => s.max(l),
            _ => self.rto,
        };
        let adaptive = self.lowest.unwrap_or(rtt) / 4 * self.reorder_quarters;
        let reordering = (rtt / 8).max(adaptive).min(rtt);
        (rtt + reordering).max(Duration::from_millis(1))
    }

    /// Was a retransmission acknowledged at `now`, sent at `sent_at`, acknowledged too soon
    /// to be the retransmission's own ack (RFC 8985 section 6.2, step 2)? Then the original
    /// arrived: it was not lost but reordered.
    fn acked_too_soon(&self, now: Timestamp, sent_at: Timestamp) -> bool {
        self.lowest
            .is_some_and(|lowest| now.saturating_since(sent_at) < lowest)
    }

    /// Learn from an acknowledged retransmission whether the reordering window is too
    /// short (a spurious retransmission) or may shrink (genuine ones in a row).
    fn on_retransmission_acked(&mut self, spurious: bool) {
        if spurious {
            self.reorder_quarters = (self.reorder_quarters + 1).min(MAX_REORDER_QUARTERS);
            self.genuine_in_a_row = 0;
        } else {
            self.genuine_in_a_row += 1;
            if self.genuine_in_a_row >= REORDER_PERSIST {
                self.reorder_quarters = self.reorder_quarters.saturating_sub(1);
                self.genuine_in_a_row = 0;
            }
        }
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
    /// This end's own limit on segments in flight.
    max_window: u32,
    /// The peer's receive window, from its latest ack.
    peer_window: u32,
    rtt: Rtt,
    /// Probe timeouts in a row without an ack: each doubles the next.
    backoff: u32,
    /// When a segment was last (re)transmitted.
    last_tx: Option<Timestamp>,
    tx_order: u64,
    /// The newest transmission the peer has acknowledged (RACK's reference).
    newest_acked_tx: u64,
    /// The earliest `lost_at` of a segment not yet retransmitted, kept so that the checks
    /// made for every datagram do not scan the window.
    earliest_lost: Option<Timestamp>,
    /// No segment before this index of `inflight` waits for a repair block.
    protect_from: usize,
    /// The repair block whose parity is going out.
    repair: Option<RepairOut>,
    /// The repair blocks whose parity may still rebuild their segments, oldest first.
    repair_live: VecDeque<LiveBlock>,
}

/// A repair block whose parity went out: until `until` (a round trip and RACK's wait after
/// its last shard) the receiver may still rebuild its segments from it.
#[derive(Clone, Copy)]
struct LiveBlock {
    first_seq: u32,
    count: u32,
    until: Timestamp,
}

impl LiveBlock {
    fn covers(&self, seq: u32, now: Timestamp) -> bool {
        now < self.until && seq.wrapping_sub(self.first_seq) < self.count
    }
}

impl ReliableSender {
    pub(crate) fn new(config: &Config) -> Self {
        ReliableSender {
            queue: VecDeque::new(),
            cursor: 0,
            una: 0,
            inflight: VecDeque::new(),
            max_window: config.storage_window,
            peer_window: INITIAL_WINDOW,
            rtt: Rtt {
                srtt: None,
                rttvar: Duration::ZERO,
                latest: None,
                lowest: None,
                reorder_quarters: 0,
                genuine_in_a_row: 0,
                rto: config.storage_initial_rto,
                min: config.storage_min_rto,
                max: config.storage_max_rto,
            },
            backoff: 0,
            last_tx: None,
            tx_order: 0,
            newest_acked_tx: 0,
            earliest_lost: None,
            protect_from: 0,
            repair: None,
            repair_live: VecDeque::new(),
        }
    }

    /// Messages waiting to be segmented.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Are at least `bytes` of the messages waiting still to be segmented?
    pub(crate) fn queued_at_least(&self, bytes: usize) -> bool {
        let mut queued = 0;
        bytes == 0
            || self.queue.iter().any(|m| {
                queued += m.len();
                queued >= bytes + self.cursor
            })
    }

    /// Segments sent and not yet acknowledged.
    pub(crate) fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// The probe timeout now, backoff included.
    pub(crate) fn probe_timeout(&self) -> Duration {
        (self.rtt.rto * 2u32.saturating_pow(self.backoff.min(16))).min(self.rtt.max)
    }

    pub(crate) fn push(&mut self, message: Vec<u8>) {
        self.queue.push_back(message);
    }

    /// Drop the queued messages of which no segment was sent yet (the front one stays if it
    /// is partly sent, so the receiver still gets whole messages): how many.
    pub(crate) fn discard_unsent(&mut self, pool: &mut BufPool) -> usize {
        let keep = usize::from(self.cursor > 0).min(self.queue.len());
        let dropped = self.queue.len() - keep;
        for message in self.queue.drain(keep..) {
            pool.give(message);
        }
        dropped
    }

    /// When the probe timer fires: a probe timeout after the last transmission, while
    /// anything is unacknowledged.
    fn probe_at(&self) -> Option<Timestamp> {
        let last = self.last_tx?;
        self.inflight
            .iter()
            .any(|s| !s.sacked)
            .then(|| last + self.probe_timeout())
    }

    fn refresh_earliest_lost(&mut self) {
        self.earliest_lost = self
            .inflight
            .iter()
            .filter(|s| !s.sacked)
            .filter_map(|s| s.lost_at)
            .min();
    }

    fn transmit(&mut self, index: usize, now: Timestamp, out: &mut [u8]) -> Option<usize> {
        self.tx_order += 1;
        self.last_tx = Some(now);
        let seg = self.inflight.get_mut(index)?;
        let dst = out.get_mut(..seg.segment.len())?;
        dst.copy_from_slice(&seg.segment);
        seg.sent_at = now;
        seg.tx_order = self.tx_order;
        seg.lost_at = None;
        // A live block's parity rebuilds the segment whichever transmission is lost: its
        // retransmission needs no block of its own (`next_repair`).
        let seq = self.una.wrapping_add(index as u32);
        if !self.repair_live.iter().any(|live| live.covers(seq, now)) {
            seg.protected = false;
            self.protect_from = self.protect_from.min(index);
        }
        Some(seg.segment.len())
    }

    /// Write a due retransmission into `out`, if any: a segment declared lost, or, when the
    /// probe timer fired, the oldest unacknowledged segment as a probe.
    pub(crate) fn next_retransmit(&mut self, now: Timestamp, out: &mut [u8]) -> Option<usize> {
        let (index, declared_lost) = if self.earliest_lost.is_some_and(|at| at <= now) {
            let index = self
                .inflight
                .iter()
                .position(|s| !s.sacked && s.lost_at.is_some_and(|at| at <= now))?;
            (index, true)
        } else if self.probe_at().is_some_and(|at| at <= now) {
            // Nothing acknowledged for a whole timeout: probe once, and wait twice as long
            // for the next (RFC 9002's PTO). The probe's ack tells RACK what else was lost.
            self.backoff += 1;
            (self.inflight.iter().position(|s| !s.sacked)?, false)
        } else {
            return None;
        };
        self.inflight[index].retransmitted = true;
        self.inflight[index].declared_lost = declared_lost;
        let n = self.transmit(index, now, out);
        self.refresh_earliest_lost();
        n
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
        if self.inflight.len() >= self.peer_window.min(self.max_window) as usize {
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
            tx_order: 0,
            retransmitted: false,
            declared_lost: false,
            sacked: false,
            lost_at: None,
            protected: false,
        });
        self.transmit(self.inflight.len() - 1, now, out)
    }

    /// Is no new data queued, and is a repair block's parity going out or a segment in
    /// flight in none yet?
    pub(crate) fn repair_wanted(&self) -> bool {
        self.queue.is_empty()
            && (self.repair.is_some()
                || self
                    .inflight
                    .iter()
                    .skip(self.protect_from)
                    .any(|s| !s.sacked && !s.protected))
    }

    /// Write into `out` the next repair body (PROTOCOL.md 12.4), if no new data is queued:
    /// the next parity shard of the block going out, or the first of a new block over the
    /// segments in flight whose latest transmission is in none yet, sized for a path losing
    /// `loss` in runs of `burst` (`repair::parity_segments`).
    ///
    /// The block runs from the oldest such segment, `MAX_REPAIR_SEGMENTS` at most (the
    /// next block goes on from its end), the segments the peer holds included: the
    /// receiver decodes with what it holds. Its segments then count as retransmitted (Karn: an ack may be
    /// the repair's), and nothing else RACK knows changes. A segment of the block that RACK
    /// sends again while the block's parity may still rebuild it stays in the block.
    pub(crate) fn next_repair(
        &mut self,
        now: Timestamp,
        loss: f64,
        burst: f64,
        out: &mut [u8],
    ) -> Option<usize> {
        if !self.queue.is_empty() {
            return None;
        }
        if self.repair.is_none() {
            self.repair = self.new_repair_block(now, loss, burst);
        }
        let repair = self.repair.as_mut()?;
        let (n, last) = repair.next_body(out)?;
        if last {
            if let Some(live) = self.repair_live.back_mut() {
                live.until = now + self.rtt.loss_wait();
            }
            self.repair = None;
        }
        Some(n)
    }

    fn new_repair_block(&mut self, now: Timestamp, loss: f64, burst: f64) -> Option<RepairOut> {
        let wanted = |s: &InFlight| !s.sacked && !s.protected;
        let start =
            self.protect_from + self.inflight.range(self.protect_from..).position(wanted)?;
        let end = (start + usize::from(MAX_REPAIR_SEGMENTS)).min(self.inflight.len());
        self.protect_from = end;
        let mut unknown = 0;
        for seg in self.inflight.range_mut(start..end).filter(|s| !s.sacked) {
            seg.protected = true;
            seg.retransmitted = true;
            unknown += 1;
        }
        let parity = u16::try_from(2 * parity_segments(unknown, loss, burst)).ok()?;
        let segments = self.inflight.range(start..end).map(|s| {
            (
                s.segment[SegmentHeader::LEN - 1],
                &s.segment[SegmentHeader::LEN..],
            )
        });
        let block = RepairOut::encode(self.una.wrapping_add(start as u32), segments, parity)?;
        // Live from now: RACK may send its segments again while its parity goes out.
        let (first_seq, count) = block.span();
        self.repair_live.retain(|live| now < live.until);
        self.repair_live.push_back(LiveBlock {
            first_seq,
            count,
            until: now + self.probe_timeout(),
        });
        Some(block)
    }

    /// Does every range of `ack` lie within what was sent beyond its `next_expected`?
    fn ranges_valid(&self, ack: &AckBody, acked: usize) -> bool {
        ack.ranges().iter().all(|r| {
            let offset = seq_diff(r.start, self.una);
            offset > acked as i64 && offset + i64::from(r.len) <= self.inflight.len() as i64
        })
    }

    /// Take an acknowledgement. Returns false (and changes nothing) if it acknowledges
    /// segments never sent.
    pub(crate) fn on_ack(&mut self, now: Timestamp, ack: &AckBody, pool: &mut BufPool) -> bool {
        let acked = seq_diff(ack.next_expected, self.una);
        if acked < 0 {
            return true; // an old ack, overtaken by a newer one
        }
        let acked = acked as usize;
        if acked > self.inflight.len() || !self.ranges_valid(ack, acked) {
            return false;
        }
        self.peer_window = u32::from(ack.window).max(INITIAL_WINDOW);
        // The RTT sample comes from the newest transmission this ack newly covers, if it was
        // not a retransmission (Karn).
        // A retransmission acknowledged sooner than a round trip after it was sent was not
        // what arrived: its original did, late. It says nothing of what was sent before it,
        // and the reordering window was too short.
        let mut newest: Option<(u64, Timestamp, bool)> = None;
        let rtt = &mut self.rtt;
        let mut note = |seg: &InFlight| {
            if seg.sacked {
                return;
            }
            // Only RACK's retransmissions: a probe went because nothing was acknowledged for a
            // whole timeout, and its ack is what tells RACK what else was lost (RFC 9002), even
            // when `lowest` is a sample stretched by a fade, under which every prompt ack
            // would look too soon.
            let too_soon = seg.declared_lost && rtt.acked_too_soon(now, seg.sent_at);
            if seg.declared_lost {
                rtt.on_retransmission_acked(too_soon);
            }
            if !too_soon && newest.is_none_or(|(t, _, _)| seg.tx_order > t) {
                newest = Some((seg.tx_order, seg.sent_at, seg.retransmitted));
            }
        };
        for seg in self.inflight.iter().take(acked) {
            note(seg);
        }
        for range in ack.ranges() {
            let from = seq_diff(range.start, self.una) as usize;
            for seg in self.inflight.range(from..from + usize::from(range.len)) {
                note(seg);
            }
        }
        for _ in 0..acked {
            if let Some(seg) = self.inflight.pop_front() {
                pool.give(seg.segment);
            }
        }
        self.protect_from = self.protect_from.saturating_sub(acked);
        self.una = ack.next_expected;
        if self
            .repair
            .as_ref()
            .is_some_and(|r| seq_diff(self.una, r.end_seq()) >= 0)
        {
            self.repair = None; // all of its block arrived
        }
        for range in ack.ranges() {
            let from = seq_diff(range.start, self.una) as usize;
            for seg in self.inflight.range_mut(from..from + usize::from(range.len)) {
                seg.sacked = true;
            }
        }
        let Some((tx_order, sent_at, retransmitted)) = newest else {
            return true; // nothing new: a duplicate ack
        };
        self.backoff = 0;
        self.newest_acked_tx = self.newest_acked_tx.max(tx_order);
        if !retransmitted {
            self.rtt.sample(now.saturating_since(sent_at));
        }
        // RACK (RFC 8985) in short: a segment whose last transmission came before one that
        // has been acknowledged is lost once the reordering wait has also passed.
        let wait = self.rtt.loss_wait();
        let newest_acked_tx = self.newest_acked_tx;
        for seg in self.inflight.iter_mut().filter(|s| !s.sacked) {
            if seg.tx_order < newest_acked_tx && seg.lost_at.is_none() {
                seg.lost_at = Some(seg.sent_at + wait);
            }
        }
        self.refresh_earliest_lost();
        true
    }

    /// When the next retransmission is due (a segment lost, or the probe timer).
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        crate::time::earliest(self.earliest_lost, self.probe_at())
    }

    /// Is a retransmission due now?
    pub(crate) fn retransmit_due(&self, now: Timestamp) -> bool {
        self.poll_timeout().is_some_and(|at| at <= now)
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
    /// Segments delivered in order so far: `next_expected` without the wrap, the key space
    /// of `out_of_order`.
    delivered: u64,
    /// Segments held beyond `next_expected`, by unwrapped sequence number. Empty (and
    /// allocating nothing) on a link that loses nothing.
    out_of_order: BTreeMap<u64, (u8, Vec<u8>)>,
    /// How far beyond `next_expected` a segment may be.
    window: u32,
    assembling: Vec<u8>,
    in_message: bool,
    max_message: usize,
    /// Segments received since the last ack.
    unacked: u32,
    /// An ack goes once this many segments arrived (or sooner, see the module's notes).
    ack_every: u32,
    /// Bulk acks go this many times less often (`set_ack_scale`).
    ack_scale: f64,
    /// When the owed ack is due.
    ack_at: Option<Timestamp>,
    /// When the last ack was due (the next waits `ACK_MIN_INTERVAL` after it).
    last_ack_at: Option<Timestamp>,
    /// Where the next ack's older ranges start (see `take_ack`).
    sack_cursor: usize,
    /// What repair frames are decoded with (storage only: `with_repair`).
    repair: Option<RepairIn>,
    /// Messages dropped because an authenticated peer broke the segment rules.
    pub(crate) protocol_errors: u64,
}

impl ReliableReceiver {
    /// A receiver that acks every `ack_every`-th segment (at least every one).
    pub(crate) fn new(config: &Config, ack_every: u32) -> Self {
        ReliableReceiver {
            next_expected: 0,
            delivered: 0,
            out_of_order: BTreeMap::new(),
            window: config.storage_window,
            assembling: Vec::new(),
            in_message: false,
            max_message: config.max_storage_message,
            unacked: 0,
            ack_every: ack_every.max(1),
            ack_scale: 1.0,
            ack_at: None,
            last_ack_at: None,
            sack_cursor: 0,
            repair: None,
            protocol_errors: 0,
        }
    }

    /// Take repair frames (PROTOCOL.md 12.4): keep the last `MAX_REPAIR_SEGMENTS`
    /// segments delivered (the window's, if fewer), to decode with.
    pub(crate) fn with_repair(mut self) -> Self {
        self.repair = Some(RepairIn::new(self.window));
        self
    }

    /// Keep delivered segments for repair for twice the round trip `rtt` and the longest an
    /// ack waits (`repair::RepairIn::set_keep_for`).
    pub(crate) fn set_repair_rtt(&mut self, rtt: Duration) {
        if let Some(repair) = self.repair.as_mut() {
            repair.set_keep_for(rtt * 2 + MAX_ACK_DELAY);
        }
    }

    /// Bytes buffered out of order, in a partial message or for repair (for the memory
    /// invariant).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.repair.as_ref().map_or(0, RepairIn::buffered_bytes)
            + self.assembling.len()
            + self
                .out_of_order
                .values()
                .map(|(_, d)| d.len())
                .sum::<usize>()
    }

    /// Ack bulk data (`ack_every` above 1) `scale` times less often: every
    /// `ack_every * scale`-th segment, `ACK_MIN_INTERVAL * scale` apart at least, and
    /// otherwise within `ACK_DELAY * scale` (`MAX_ACK_DELAY` at most). Each ack
    /// carries the ranges held whatever their number; fewer of them keep a narrow return
    /// path free for the pilot's sticks (`PathModel::return_scale`).
    pub(crate) fn set_ack_scale(&mut self, scale: f64) {
        self.ack_scale = scale.max(1.0);
    }

    /// When the ack a duplicate makes due goes: at once, unless acks are thinned
    /// (`set_ack_scale`). Then no sooner than the thinned spacing after the last: a
    /// transfer's tail copies (before repair frames), each a duplicate, sent a burst of acks that queued the
    /// pilot's sticks behind them for 50 ms on a 150 kbit/s uplink.
    fn duplicate_ack_at(&self, now: Timestamp) -> Timestamp {
        let thinned = self.ack_every > 1 && self.ack_scale > 1.0;
        let spaced = self
            .last_ack_at
            .filter(|_| thinned)
            .map(|at| at + ACK_MIN_INTERVAL.mul_f64(self.ack_scale));
        let at = spaced.map_or(now, |at| at.max(now));
        self.ack_at.map_or(at, |due| due.min(at))
    }

    /// Is an ack owed to the sender?
    pub(crate) fn ack_pending(&self) -> bool {
        self.ack_at.is_some()
    }

    /// When the owed ack is due.
    pub(crate) fn ack_deadline(&self) -> Option<Timestamp> {
        self.ack_at
    }

    /// Is the owed ack due at `now`?
    pub(crate) fn ack_due(&self, now: Timestamp) -> bool {
        self.ack_at.is_some_and(|at| at <= now)
    }

    /// The ack describing what has been received; clears the pending ack.
    pub(crate) fn take_ack(&mut self) -> AckBody {
        self.last_ack_at = self.ack_at.or(self.last_ack_at);
        self.ack_at = None;
        self.unacked = 0;
        let window = u16::try_from(self.window).unwrap_or(u16::MAX);
        let mut ack = AckBody::new(self.next_expected, window);
        let total = self.runs().count();
        // The newest half of the ranges always (what RACK needs first), then the next half
        // of the older ones in turn, so that every range is reported within a few acks
        // however many holes loss and reordering leave: a range never reported would be
        // sent again for nothing.
        let newest = MAX_SACK_RANGES / 2;
        let older = total.saturating_sub(newest);
        if self.sack_cursor >= older {
            self.sack_cursor = 0;
        }
        let rotating = self
            .runs()
            .skip(newest + self.sack_cursor)
            .chain(self.runs().skip(newest).take(self.sack_cursor));
        for range in self
            .runs()
            .take(newest)
            .chain(rotating.take(MAX_SACK_RANGES - newest))
        {
            ack.push_range(range);
        }
        self.sack_cursor += MAX_SACK_RANGES - newest;
        ack
    }

    /// The runs of held segments beyond `next_expected`, newest first.
    fn runs(&self) -> impl Iterator<Item = SackRange> + '_ {
        let wrap = |start: u64, end: u64| SackRange {
            start: self
                .next_expected
                .wrapping_add((start - self.delivered) as u32),
            len: (end - start) as u16,
        };
        let mut keys = self.out_of_order.keys().rev().copied().peekable();
        core::iter::from_fn(move || {
            let end = keys.next()? + 1;
            let mut start = end - 1;
            while keys
                .next_if(|&seq| seq + 1 == start && end - seq <= u64::from(u16::MAX))
                .is_some()
            {
                start -= 1;
            }
            Some(wrap(start, end))
        })
    }

    /// Take one segment, received at `now`; complete messages, in order, are passed to
    /// `deliver`.
    pub(crate) fn on_segment(
        &mut self,
        now: Timestamp,
        header: &SegmentHeader,
        data: &[u8],
        pool: &mut BufPool,
        deliver: &mut impl FnMut(Vec<u8>),
    ) -> SegmentOutcome {
        let offset = seq_diff(header.seq, self.next_expected);
        if offset < 0 {
            // Our ack was lost: say again what we hold, at once.
            self.ack_at = Some(self.duplicate_ack_at(now));
            return SegmentOutcome::Duplicate;
        }
        if offset >= i64::from(self.window) {
            return SegmentOutcome::OutOfWindow;
        }
        let seq = self.delivered + offset as u64;
        if self.out_of_order.contains_key(&seq) {
            self.ack_at = Some(self.duplicate_ack_at(now));
            return SegmentOutcome::Duplicate;
        }
        self.unacked += 1;
        let scale = if self.ack_every > 1 {
            self.ack_scale
        } else {
            1.0
        };
        self.ack_at = if f64::from(self.unacked) >= f64::from(self.ack_every) * scale {
            // Due now; for bulk data, no sooner than `ACK_MIN_INTERVAL` after the last one.
            let spaced = self
                .last_ack_at
                .filter(|_| self.ack_every > 1)
                .map(|at| at + ACK_MIN_INTERVAL.mul_f64(scale));
            Some(spaced.map_or(now, |at| at.max(now)))
        } else {
            // Thinned, the delay too: a 10 Mbit/s download (560 segments a second) reached
            // `ACK_DELAY` long before its 32nd segment, and at 16 times thinner its acks
            // still went every 7 ms, 37 kbit/s of a 100 kbit/s uplink.
            Some(
                self.ack_at
                    .unwrap_or(now + ACK_DELAY.mul_f64(scale).min(MAX_ACK_DELAY)),
            )
        };
        if let Some(repair) = self.repair.as_mut() {
            repair.on_arrival(seq);
        }
        if seq == self.delivered && self.out_of_order.is_empty() {
            // In order with nothing held: straight through, no copy unless kept for repair.
            self.delivered += 1;
            self.next_expected = self.next_expected.wrapping_add(1);
            self.assemble(header.flags, data, pool, deliver);
            if let Some(repair) = self.repair.as_mut() {
                repair.keep(now, header.flags, data, pool);
            }
            return SegmentOutcome::Accepted;
        }
        self.out_of_order
            .insert(seq, (header.flags, pool.take_copy(data)));
        while let Some((flags, data)) = self.out_of_order.remove(&self.delivered) {
            self.delivered += 1;
            self.next_expected = self.next_expected.wrapping_add(1);
            self.assemble(flags, &data, pool, deliver);
            if let Some(repair) = self.repair.as_mut() {
                repair.keep(now, flags, &data, pool);
            }
            pool.give(data);
        }
        SegmentOutcome::Accepted
    }

    /// Take one repair frame's parity shard, received at `now`; the segments it lets the
    /// receiver rebuild are taken as received (complete messages passed to `deliver`).
    /// Returns how many were rebuilt, or `None` if the block reaches beyond the receive
    /// window (the sender broke the protocol) or this receiver takes no repair.
    pub(crate) fn on_repair(
        &mut self,
        now: Timestamp,
        header: &RepairHeader,
        shard: &[u8],
        pool: &mut BufPool,
        deliver: &mut impl FnMut(Vec<u8>),
    ) -> Option<usize> {
        let offset = seq_diff(header.first_seq, self.next_expected);
        if offset + i64::from(header.count) > i64::from(self.window) {
            return None;
        }
        let first = i64::try_from(self.delivered).ok()? + offset;
        let repair = self.repair.as_mut()?;
        let Ok(first) = u64::try_from(first) else {
            return Some(0); // before the first segment: nothing to rebuild
        };
        let held = &self.out_of_order;
        let rebuilt = repair.on_repair(
            first,
            header,
            shard,
            self.delivered,
            |seq| {
                held.get(&seq)
                    .map(|(flags, data)| (*flags, data.as_slice()))
            },
            pool,
        );
        let count = rebuilt.len();
        for (seq, flags, data) in rebuilt {
            let header = SegmentHeader {
                seq: self
                    .next_expected
                    .wrapping_add(seq.wrapping_sub(self.delivered) as u32),
                flags,
            };
            self.on_segment(now, &header, &data, pool, deliver);
            pool.give(data);
        }
        Some(count)
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
