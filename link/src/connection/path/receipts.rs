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
}

/// Which counters arrived, settled into lost counters and runs of them once
/// [`FEEDBACK_SETTLE`] larger ones have: late enough that a reordered frame is not taken
/// for a lost one (a radio's jitter of 2 ms reorders about 180 frames at 1 Gbit/s), early
/// enough to follow the radio (half a second of 20 Mbit/s video).
#[derive(Debug)]
struct LossRuns {
    /// Bit `c % FEEDBACK_SETTLE`: counter `c` of the window ending at the largest arrived.
    window: [u64; WINDOW_WORDS],
    lost: u64,
    runs: u64,
    /// The newest settled counter was lost: a lost one next continues its run.
    in_run: bool,
}

const WINDOW_WORDS: usize = (FEEDBACK_SETTLE / 64) as usize;

impl Default for LossRuns {
    fn default() -> Self {
        LossRuns {
            // Counters before the first that arrives are not judged: as if they arrived.
            window: [u64::MAX; WINDOW_WORDS],
            lost: 0,
            runs: 0,
            in_run: false,
        }
    }
}

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

    /// A counter that was not seen before arrived; `largest` is the largest before it.
    fn on_counter(&mut self, counter: u64, largest: Option<u64>) {
        let Some(largest) = largest else {
            self.set(counter, true);
            return;
        };
        if counter <= largest {
            // Within the window: it arrived in time. Older: already counted lost (a frame
            // reordered by more than the window), left so.
            if largest - counter < FEEDBACK_SETTLE {
                self.set(counter, true);
            }
            return;
        }
        // Each counter entering the window settles the one `FEEDBACK_SETTLE` before it;
        // past a whole window, the counters in between never arrived.
        let entering = counter - largest;
        for c in largest + 1..=largest + entering.min(FEEDBACK_SETTLE) {
            self.settle(self.arrived(c));
            self.set(c, false);
        }
        let skipped = entering.saturating_sub(FEEDBACK_SETTLE);
        if skipped > 0 {
            self.settle(false);
            self.lost += skipped - 1;
            // The window now holds only counters that never arrived (all bits clear).
        }
        self.set(counter, true);
    }

    fn settle(&mut self, arrived: bool) {
        if !arrived {
            self.lost += 1;
            if !self.in_run {
                self.runs += 1;
            }
        }
        self.in_run = !arrived;
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
        self.losses.on_counter(counter, self.largest);
        if self.largest.is_none_or(|l| counter > l) {
            self.largest = Some(counter);
            self.largest_at = now;
        }
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
        }
    }
}
