//! The receiving side of the path model: what arrived, reported back in feedback frames.

use alloc::collections::VecDeque;
use core::time::Duration;

use crate::time::Timestamp;
use crate::wire::body::{FeedbackBody, FEEDBACK_SETTLE};

/// Receipts not yet reported make a feedback frame due at once.
pub(super) const FEEDBACK_EVERY: u32 = 8;
/// Otherwise a feedback frame goes this long after the first unreported frame that asks
/// for prompt feedback...
pub(super) const FEEDBACK_DELAY: Duration = Duration::from_millis(10);
/// ...or this long after the first unreported one that asks for relaxed feedback.
const RELAXED_FEEDBACK_DELAY: Duration = Duration::from_millis(100);
/// The most feedback frames owed to probes at once (`Receipts::on_probe`): a sender's
/// largest probe burst (`PROBE_BURST` in the connection's send code).
const MAX_PROBES_OWED: usize = 8;

/// How soon a frame asks its receiver for feedback (PROTOCOL.md 34.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elicits {
    /// None: feedback and acks.
    Nothing,
    /// Within [`FEEDBACK_DELAY`]: the frames the sender paces or probes with, whose rate
    /// and round trip the sender's model lives on.
    Prompt,
    /// Within [`RELAXED_FEEDBACK_DELAY`]: small unpaced messages (control, telemetry). A
    /// thin flow needs no rate sample every 10 ms, and answering a remote's 100 stick
    /// commands a second took 0.8 % of a 5 Mbit/s downlink.
    Relaxed,
}

/// The receiving side: what arrived of the peer's frames in this session, reported back in
/// feedback frames (PROTOCOL.md 34).
#[derive(Debug, Default)]
pub(crate) struct Receipts {
    largest: Option<u64>,
    largest_at: Timestamp,
    frames: u64,
    bytes: u64,
    /// Frames that ask for feedback (all but feedback and acks) since the last one sent.
    unreported: u32,
    due: Option<Timestamp>,
    losses: LossRuns,
    /// Prompt feedback goes this many times less often (`set_scale`).
    scale: f64,
    /// Probes (PROTOCOL.md 34.6) each owed a feedback frame of its own, at once: what had
    /// arrived when each came, which its answer reports (`on_probe`), oldest first.
    probes_owed: VecDeque<Report>,
}

/// What arrived as of one frame: the part of a feedback frame that is not settled losses.
#[derive(Debug, Clone, Copy)]
struct Report {
    largest: u64,
    largest_at: Timestamp,
    frames: u64,
    bytes: u64,
    lost: u64,
    loss_runs: u64,
    unjudged: u16,
}

/// Which counters arrived, judged lost or not once reordering has settled: once
/// [`FEEDBACK_SETTLE`] larger counters have arrived, or one larger arrived [`SETTLE_TIME`]
/// ago, whichever comes first. Late enough that a reordered frame is not taken for a lost
/// one (a radio's jitter of 2 ms reorders about 180 frames at 1 Gbit/s), early enough to
/// follow the radio: half a second of 20 Mbit/s video by the count alone, but 2.3 s of a
/// 5 Mbit/s download and 6 s of 2 Mbit/s video, and the sender's cap for a run of lost
/// feedback and its video parity wait for the runs these counts show.
#[derive(Debug, Default)]
struct LossRuns {
    /// Bit `c % FEEDBACK_SETTLE`: counter `c` arrived, for `c` from `next` to the largest
    /// arrived.
    window: [u64; WINDOW_WORDS],
    /// The smallest counter not judged yet (counters before the first that arrives are not
    /// judged: as if they arrived).
    next: u64,
    lost: u64,
    runs: u64,
    /// The newest judged counter was lost: a lost one next continues its run.
    in_run: bool,
    /// When the largest counter grew, and to what, over the last `SETTLE_TIME`: every
    /// counter below one of these is judged once it is `SETTLE_TIME` old.
    grown: VecDeque<Grown>,
}

const WINDOW_WORDS: usize = (FEEDBACK_SETTLE / 64) as usize;

/// The largest counters that arrived in one step of `SETTLE_TIME / GROWN_STEPS`: the newest
/// of them, and when it arrived.
#[derive(Debug, Clone, Copy)]
struct Grown {
    /// When the step began (its first counter arrived).
    from: Timestamp,
    at: Timestamp,
    largest: u64,
}

/// A counter missing this long after a larger one arrived is judged lost: longer than the
/// reordering of any radio modelled (the bench's and the proxy's jitter, up to 20 ms each
/// way). A radio reordering by more counts its late frames lost, as one reordering by more
/// than `FEEDBACK_SETTLE` counters does; they are still delivered.
pub(super) const SETTLE_TIME: Duration = Duration::from_millis(100);
/// `LossRuns::grown` keeps about this many steps of `SETTLE_TIME`: a counter is judged up
/// to `SETTLE_TIME / GROWN_STEPS` later than `SETTLE_TIME`, never sooner.
const GROWN_STEPS: u32 = 16;

impl LossRuns {
    fn bit(counter: u64) -> (usize, u64) {
        let i = counter % FEEDBACK_SETTLE;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn set(&mut self, counter: u64, arrived: bool) {
        let (word, bit) = Self::bit(counter);
        if let Some(w) = self.window.get_mut(word) {
            if arrived {
                *w |= bit;
            } else {
                *w &= !bit;
            }
        }
    }

    fn arrived(&self, counter: u64) -> bool {
        let (word, bit) = Self::bit(counter);
        self.window.get(word).is_some_and(|w| w & bit != 0)
    }

    /// A counter that was not seen before arrived at `now`; `largest` is the largest before
    /// it.
    fn on_counter(&mut self, now: Timestamp, counter: u64, largest: Option<u64>) {
        let Some(largest) = largest else {
            self.next = counter;
            self.set(counter, true);
            self.grow(now, counter);
            return;
        };
        if counter <= largest {
            // Not judged yet: it arrived in time. Judged: counted lost (a frame reordered
            // by more than the window or `SETTLE_TIME`), left so.
            if counter >= self.next {
                self.set(counter, true);
            }
            return;
        }
        // The window holds `next` to `counter`: judge what leaves it. The counters between
        // the previous largest and this one have not arrived (yet).
        self.judge_below(counter.saturating_sub(FEEDBACK_SETTLE - 1), largest);
        for c in (largest + 1).max(self.next)..counter {
            self.set(c, false);
        }
        self.set(counter, true);
        let next = self.next;
        while self.grown.front().is_some_and(|g| g.largest <= next) {
            self.grown.pop_front();
        }
        self.grow(now, counter);
    }

    /// The largest counter grew to `counter` at `now`.
    fn grow(&mut self, now: Timestamp, counter: u64) {
        let step = SETTLE_TIME / GROWN_STEPS;
        match self.grown.back_mut() {
            // The step's earlier counters are judged as late as this one: never too soon.
            Some(back) if now.saturating_since(back.from) < step => {
                back.at = now;
                back.largest = counter;
            }
            _ => self.grown.push_back(Grown {
                from: now,
                at: now,
                largest: counter,
            }),
        }
    }

    /// Judge the counters below every one that arrived `SETTLE_TIME` before `now` or
    /// earlier; `largest` is the largest arrived.
    fn judge_by_time(&mut self, now: Timestamp, largest: Option<u64>) {
        let Some(largest) = largest else {
            return;
        };
        while let Some(&Grown {
            at, largest: end, ..
        }) = self.grown.front()
        {
            if now.saturating_since(at) < SETTLE_TIME {
                break;
            }
            self.grown.pop_front();
            self.judge_below(end, largest);
        }
    }

    /// Judge every counter from `next` to below `end`: lost unless its bit says it arrived
    /// (none above `largest` did).
    fn judge_below(&mut self, end: u64, largest: u64) {
        let arrivals_end = end.min(largest.saturating_add(1));
        while self.next < arrivals_end {
            self.judge(self.arrived(self.next));
            self.next += 1;
        }
        if self.next < end {
            // Past the largest, the counters never arrived: one run.
            self.judge(false);
            self.lost += end - self.next - 1;
            self.next = end;
        }
    }

    fn judge(&mut self, arrived: bool) {
        if !arrived {
            self.lost += 1;
            if !self.in_run {
                self.runs += 1;
            }
        }
        self.in_run = !arrived;
    }

    /// Counters up to `largest` not judged yet.
    fn unjudged(&self, largest: Option<u64>) -> u16 {
        largest.map_or(0, |l| {
            u16::try_from(l.saturating_add(1).saturating_sub(self.next)).unwrap_or(u16::MAX)
        })
    }
}

impl Receipts {
    /// An authenticated frame arrived (never one seen before: the replay window drops
    /// those first). Feedback frames are counted but ask for none, so two ends never feed
    /// each other feedback.
    pub(crate) fn on_frame(
        &mut self,
        now: Timestamp,
        counter: u64,
        bytes: usize,
        elicits: Elicits,
    ) {
        self.frames += 1;
        self.bytes += bytes as u64;
        self.losses.on_counter(now, counter, self.largest);
        if self.largest.is_none_or(|l| counter > l) {
            self.largest = Some(counter);
            self.largest_at = now;
        }
        self.losses.judge_by_time(now, self.largest);
        let delay = match elicits {
            Elicits::Nothing => return,
            Elicits::Prompt => FEEDBACK_DELAY.mul_f64(self.scale.max(1.0)),
            Elicits::Relaxed => RELAXED_FEEDBACK_DELAY,
        };
        self.unreported += 1;
        let due = now + delay;
        self.due = Some(self.due.map_or(due, |d| d.min(due)));
    }

    /// A probe arrived: it gets a feedback frame of its own, at once, whatever else is
    /// owed. A probe burst (up to `PROBE_BURST` of them, sent when this end's feedback
    /// stopped arriving) is then answered by as many feedback frames, each one more try
    /// through a run of losses on the way back: one frame answering a whole burst took a
    /// run of eight lost datagrams on a sparse return path eight probe intervals to cross
    /// (160 ms of a stalled 5 Mbit/s download). At most `MAX_PROBES_OWED` are owed.
    ///
    /// Each probe is answered as things stood when it arrived, even if more frames arrived
    /// before the answer goes (a receiver that reads datagrams in batches): the answers to
    /// Startup's scout, three probes four full frames apart, then still say when each
    /// arrived, and their spacing the radio's rate.
    pub(crate) fn on_probe(&mut self) {
        if self.probes_owed.len() < MAX_PROBES_OWED {
            self.probes_owed.push_back(self.report());
        }
    }

    fn report(&self) -> Report {
        Report {
            largest: self.largest.unwrap_or(0),
            largest_at: self.largest_at,
            frames: self.frames,
            bytes: self.bytes,
            lost: self.losses.lost,
            loss_runs: self.losses.runs,
            unjudged: self.losses.unjudged(self.largest),
        }
    }

    /// When a feedback frame is due, if one is owed.
    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        if !self.probes_owed.is_empty() {
            return Some(self.largest_at);
        }
        if f64::from(self.unreported) >= f64::from(FEEDBACK_EVERY) * self.scale.max(1.0) {
            return Some(self.largest_at);
        }
        self.due
    }

    /// Report `scale` times less often than `FEEDBACK_EVERY` and `FEEDBACK_DELAY` say
    /// (`PathModel::return_scale`: the return path is queueing this end's frames).
    pub(crate) fn set_scale(&mut self, scale: f64) {
        self.scale = scale.max(1.0);
    }

    pub(crate) fn is_due(&self, now: Timestamp) -> bool {
        self.deadline().is_some_and(|at| now >= at)
    }

    /// The feedback to send now.
    pub(crate) fn take(&mut self, now: Timestamp) -> FeedbackBody {
        self.losses.judge_by_time(now, self.largest);
        let current = self.report();
        let r = self.probes_owed.pop_front().unwrap_or(current);
        if r.frames == current.frames {
            self.unreported = 0;
            self.due = None;
        }
        // Else what arrived after the probe is still owed its report, due as it was.
        FeedbackBody {
            largest: r.largest,
            frames: r.frames,
            bytes: r.bytes,
            // Only differences of arrival times are used: the low 32 bits of microseconds.
            received_at_us: r.largest_at.as_micros() as u32,
            ack_delay_us: u32::try_from(now.saturating_since(r.largest_at).as_micros())
                .unwrap_or(u32::MAX),
            lost: r.lost,
            loss_runs: r.loss_runs,
            unjudged: r.unjudged,
        }
    }
}
