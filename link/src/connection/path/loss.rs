//! What the radio loses: on the air, and as the receiver settled it.

use super::LOSS_HORIZON;
use crate::time::Timestamp;
use crate::wire::body::FeedbackBody;

/// The loss of the feedback intervals whose round trip showed no queue (faded sums of the
/// counters they spanned and the frames that arrived in them, over about `LOSS_HORIZON` of
/// such intervals). A drop-tail queue drops only when it is full, and then every round trip
/// shows it; the radio loses on the air whatever its queue. The loss of all intervals would
/// hold a rate overshoot up: a sender at 1.6 times a radio with a queue shallower than the
/// round trip's quarter (the depth that makes samples count only what arrived) lost 37 %
/// at the queue, and what arrived scaled up by that loss was again 1.6 times the radio.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct AirLoss {
    counters: f64,
    arrived: f64,
    /// The previous feedback's largest counter and frames received.
    from: Option<(u64, u64)>,
    /// When the last quiet interval ended.
    at: Option<Timestamp>,
}

impl AirLoss {
    /// Take the interval up to this feedback, if its round trip showed no queue (`quiet`);
    /// otherwise only move past it.
    pub(super) fn on_feedback(&mut self, now: Timestamp, f: &FeedbackBody, quiet: bool) {
        let from = self.from.replace((f.largest, f.frames));
        let Some((largest, frames)) = from else {
            return;
        };
        if !quiet || f.largest <= largest {
            self.at = None;
            return;
        }
        // Faded by the quiet time alone: stretches with a queue leave the estimate as it
        // was.
        let elapsed = self
            .at
            .map_or(0.0, |at| now.saturating_since(at).as_secs_f64());
        let fade = 1.0 - (elapsed / LOSS_HORIZON.as_secs_f64()).min(1.0);
        self.counters = fade * self.counters + (f.largest - largest) as f64;
        self.arrived = fade * self.arrived + f.frames.saturating_sub(frames) as f64;
        self.at = Some(now);
    }

    /// A new session's counters: the next feedback starts an interval, and what was
    /// learnt of the air stays.
    pub(super) fn restart_counters(&mut self) {
        self.from = None;
    }

    /// Fraction of frames lost on the air, 0 to 1 (0 before any quiet interval).
    pub(super) fn loss(&self) -> f64 {
        if self.counters <= 0.0 {
            return 0.0;
        }
        (1.0 - self.arrived / self.counters).clamp(0.0, 1.0)
    }
}

/// Faded sums of what the receiver found lost once reordering settled.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Settled {
    pub(super) counters: f64,
    pub(super) lost: f64,
    pub(super) runs: f64,
}

impl Settled {
    /// Fraction of counters lost, 0 to 1.
    pub(super) fn loss(&self) -> f64 {
        if self.counters <= 0.0 {
            return 0.0;
        }
        (self.lost / self.counters).clamp(0.0, 1.0)
    }

    /// Mean length of a run of lost counters, at least 1.
    pub(super) fn burst(&self) -> f64 {
        if self.runs <= 0.0 {
            return 1.0;
        }
        (self.lost / self.runs).max(1.0)
    }
}
