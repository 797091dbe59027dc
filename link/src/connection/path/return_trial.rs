//! Does thinning this end's acks and feedback shorten its frames' queue? A trial that
//! answers it by doing so for a moment (`PathModel::return_scale`).
//!
//! A queue the returns fill only now and then (an uplink 90 to 98 % busy with them) never
//! stays over the jitter bound for a round trip, and the delay it adds swings as much as it
//! is deep, so it reads as the radio's jitter: on a 500 kbit/s uplink under a 33 Mbit/s
//! downlink the remote's acks and feedback took 476 kbit/s, the jitter read 9 to 10 ms
//! (the radio's: 2 ms), and the sticks waited 7 ms on average. Only the cause tells such a
//! queue from a jittery radio: one this end fills goes when it sends less, the radio's
//! jitter does not.
//!
//! ```text
//!  mean queue > TRIAL_QUEUE, and the last trial long enough ago
//!      │  scale × 2
//!      ▼
//!  one round trip to settle, then TRIAL_SAMPLES one-way delays
//!      │
//!      ├── mean a third of the one before or less: this end's queue; keep the scale
//!      └── otherwise: the radio's jitter; scale back, and try half as often
//! ```

use core::time::Duration;

use super::PERSISTENT_QUEUE_THRESHOLD;
use crate::time::Timestamp;

/// A mean queue this deep starts a trial: the sticks then wait about three times as long at
/// their 99th percentile (7 ms on average and 17 at the p99 on the 500 kbit/s uplink above),
/// near the issue's 15 ms. Not less: at half, trials ran on a 150 kbit/s
/// uplink already thinned 11 times (a queue of one 76-byte frame there is 4 ms), and on a
/// radio with 20 ms of jitter, each costing the download a moment of thinner acks.
const TRIAL_QUEUE: Duration = PERSISTENT_QUEUE_THRESHOLD;
/// The one-way delays a trial averages, and about how many the mean queue it starts from
/// does (`MEAN_WEIGHT`)...
const TRIAL_SAMPLES: u32 = 16;
/// ...and how much shorter the trial's mean must be to keep the thinner scale. The delays
/// of a jittery radio are not uniform as its jitter is: a feedback frame reports the
/// largest counter that arrived, often one that overtook others (30 ms of jitter each way
/// read as a mean queue of 2.5 to 5.5 ms). With a half and 8 delays, one of the first four
/// trials there kept a scale; a queue this end fills goes from 8 ms to under 1.
const TRIAL_SHORTER: u32 = 3;
/// A trial ends after at most this long, whatever it has seen (feedback that stopped).
const TRIAL_LONGEST: Duration = Duration::from_millis(500);
/// How long after a trial the next may start, at first...
const TRIAL_EVERY: Duration = Duration::from_secs(2);
/// ...and after every trial that found the radio's jitter, twice as long, up to this;
/// unless the mean queue has since grown to `TRIAL_SHORTER` times what that trial started
/// from, which the radio's jitter does not do (a trial started on the first 3 ms of a
/// queue, too shallow to halve clearly, held the next one back while the queue grew to
/// 10 ms).
const TRIAL_EVERY_MOST: Duration = Duration::from_secs(32);
/// The weight of each one-way delay in the mean queue a trial starts from; no trial starts
/// before this many have come (the mean starts from nothing).
const MEAN_WEIGHT: u32 = TRIAL_SAMPLES;

/// What the path model does with its return scale after a one-way delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum TrialStep {
    /// Nothing.
    Wait,
    /// A trial starts: thin twice as much.
    Start,
    /// The queue went with the thinning: keep the scale as it is.
    Keep,
    /// The queue stayed: go back to this scale.
    Revert(f64),
}

/// A trial under way.
#[derive(Debug, Clone, Copy)]
struct Running {
    started: Timestamp,
    /// The mean queue when it started...
    before: Duration,
    /// ...and the scale.
    scale_before: f64,
    sum: Duration,
    samples: u32,
}

/// The trials of one end's return path: the mean queue its one-way delays show, the trial
/// under way, and when the next may start.
#[derive(Debug, Clone)]
pub(super) struct ReturnTrial {
    mean_queue: Duration,
    running: Option<Running>,
    next_at: Timestamp,
    every: Duration,
    /// The mean queue the last trial that found the radio's jitter started from.
    jitter_queue: Duration,
    /// One-way delays the mean has taken in, up to `MEAN_WEIGHT`.
    seen: u32,
}

impl ReturnTrial {
    pub(super) fn new(now: Timestamp) -> Self {
        ReturnTrial {
            mean_queue: Duration::ZERO,
            running: None,
            next_at: now,
            every: TRIAL_EVERY,
            jitter_queue: Duration::ZERO,
            seen: 0,
        }
    }

    /// Is a trial under way (the scale must not decay meanwhile)?
    pub(super) fn running(&self) -> bool {
        self.running.is_some()
    }

    /// The end sends data again, or a queue that stays thinned the returns anyway: a trial
    /// under way is over, with no verdict.
    pub(super) fn cancel(&mut self, now: Timestamp) {
        if self.running.take().is_some() {
            self.next_at = now + self.every;
        }
    }

    /// A one-way delay of this end's frames `queue` over the minimum arrived, on an end
    /// that sends returns only at the scale `scale`; `settle` is how long thinner returns
    /// take to show in it (a round trip).
    pub(super) fn on_queue(
        &mut self,
        now: Timestamp,
        queue: Duration,
        settle: Duration,
        scale: f64,
        max_scale: f64,
    ) -> TrialStep {
        self.mean_queue = (self.mean_queue * (MEAN_WEIGHT - 1) + queue) / MEAN_WEIGHT;
        self.seen = (self.seen + 1).min(MEAN_WEIGHT);
        let Some(mut run) = self.running else {
            let grew = self.jitter_queue > Duration::ZERO
                && self.mean_queue > self.jitter_queue * TRIAL_SHORTER;
            let due = self.seen >= MEAN_WEIGHT && (now >= self.next_at || grew);
            if self.mean_queue > TRIAL_QUEUE && due && scale < max_scale {
                self.running = Some(Running {
                    started: now,
                    before: self.mean_queue,
                    scale_before: scale,
                    sum: Duration::ZERO,
                    samples: 0,
                });
                return TrialStep::Start;
            }
            return TrialStep::Wait;
        };
        let elapsed = now.saturating_since(run.started);
        if elapsed >= settle {
            run.sum += queue;
            run.samples += 1;
        }
        if run.samples < TRIAL_SAMPLES && elapsed < TRIAL_LONGEST {
            self.running = Some(run);
            return TrialStep::Wait;
        }
        self.running = None;
        let during = run.sum / run.samples.max(1);
        if run.samples > 0 && during * TRIAL_SHORTER <= run.before {
            self.every = TRIAL_EVERY;
            self.next_at = now + self.every;
            self.jitter_queue = Duration::ZERO;
            // The delays from before the thinning no longer describe the queue.
            self.mean_queue = during;
            TrialStep::Keep
        } else {
            self.every = (self.every * 2).min(TRIAL_EVERY_MOST);
            self.next_at = now + self.every;
            self.jitter_queue = run.before;
            TrialStep::Revert(run.scale_before)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::Noise;
    use super::*;
    use alloc::vec::Vec;

    const MAX_SCALE: f64 = 16.0;

    /// One-way delays every 10 ms for `secs`, each `queue(scale, noise)` over the
    /// minimum, with the scale the trials set (a round trip of 20 ms to settle). Every step
    /// that was not `Wait`, with when it came.
    fn fly(
        secs: u64,
        mut queue: impl FnMut(f64, &mut Noise) -> Duration,
    ) -> Vec<(Timestamp, TrialStep)> {
        let mut trial = ReturnTrial::new(Timestamp::ZERO);
        let mut noise = Noise::new();
        let mut scale = 1.0;
        let mut steps = Vec::new();
        for tick in 1..=secs * 100 {
            let now = Timestamp::from_millis(tick * 10);
            let q = queue(scale, &mut noise);
            let step = trial.on_queue(now, q, Duration::from_millis(20), scale, MAX_SCALE);
            match step {
                TrialStep::Start => scale *= 2.0,
                TrialStep::Revert(before) => scale = before,
                TrialStep::Keep | TrialStep::Wait => {}
            }
            if step != TrialStep::Wait {
                steps.push((now, step));
            }
        }
        steps
    }

    #[test]
    fn a_queue_this_end_fills_goes_with_a_trial_and_the_thinner_scale_stays() {
        // 4 to 12 ms of queue at the usual scale, under a millisecond at twice it.
        let steps = fly(10, |scale, noise| {
            let mean_ms = if scale >= 2.0 { 0.5 } else { 8.0 };
            Duration::from_secs_f64(mean_ms * (0.5 + noise.uniform()) / 1000.0)
        });
        let Some(&(started, TrialStep::Start)) = steps.first() else {
            panic!("no trial: {steps:?}");
        };
        // Once the mean has taken in its first delays, not before.
        assert_eq!(started, Timestamp::from_millis(u64::from(MEAN_WEIGHT) * 10));
        // The verdict after the round trip to settle and the delays it averages.
        let settled = started + Duration::from_millis(20);
        assert_eq!(
            steps.get(1),
            Some(&(
                settled + Duration::from_millis(10 * u64::from(TRIAL_SAMPLES - 1)),
                TrialStep::Keep
            ))
        );
        // And no trial after: the queue stays gone at the kept scale.
        assert_eq!(steps.len(), 2, "{steps:?}");
    }

    #[test]
    fn a_jittery_radio_keeps_no_scale_and_is_tried_ever_less_often() {
        // Up to 14 ms over the minimum, whatever the scale: the radio's jitter.
        let steps = fly(120, |_, noise| {
            Duration::from_secs_f64(0.014 * noise.uniform() * noise.uniform().sqrt())
        });
        assert!(
            steps.iter().all(|(_, s)| *s != TrialStep::Keep),
            "{steps:?}"
        );
        let starts: Vec<Timestamp> = steps
            .iter()
            .filter(|(_, s)| *s == TrialStep::Start)
            .map(|&(at, _)| at)
            .collect();
        assert!(starts.len() >= 3, "{starts:?}");
        // Each gap at least twice the one before (the trial's own span aside), up to
        // `TRIAL_EVERY_MOST`.
        let gaps: Vec<Duration> = starts
            .windows(2)
            .map(|w| w[1].saturating_since(w[0]))
            .collect();
        assert!(gaps[0] >= TRIAL_EVERY * 2, "{gaps:?}");
        for w in gaps.windows(2) {
            assert!(
                w[1] >= (w[0] * 2).min(TRIAL_EVERY_MOST) - Duration::from_millis(500),
                "{gaps:?}"
            );
        }
        // Every trial reverts to the usual scale.
        assert!(steps
            .iter()
            .all(|(_, s)| matches!(s, TrialStep::Start | TrialStep::Revert(1.0))));
    }

    #[test]
    fn a_queue_grown_past_a_failed_trial_is_tried_again_at_once() {
        // The first 6 ms of a queue (which the trial cannot tell from jitter: 4 ms at twice
        // the scale), then from 2 s on 20 ms, gone at twice the scale.
        let mut tick = 0u64;
        let steps = fly(4, |scale, noise| {
            tick += 1;
            let mean_ms = match (tick >= 200, scale >= 2.0) {
                (false, false) => 6.0,
                (false, true) => 4.0,
                (true, false) => 20.0,
                (true, true) => 0.5,
            };
            Duration::from_secs_f64(mean_ms * (0.8 + 0.4 * noise.uniform()) / 1000.0)
        });
        let verdicts: Vec<&TrialStep> = steps
            .iter()
            .map(|(_, s)| s)
            .filter(|s| **s != TrialStep::Start)
            .collect();
        assert_eq!(
            verdicts,
            [&TrialStep::Revert(1.0), &TrialStep::Keep],
            "{steps:?}"
        );
        // The second within a second of the queue's growth, long before `every` (4 s).
        let kept_at = steps[3].0;
        assert!(kept_at < Timestamp::from_millis(3000), "{steps:?}");
    }

    #[test]
    fn no_trial_below_the_queue_or_at_the_most_thinning() {
        let steps = fly(10, |_, _| TRIAL_QUEUE.mul_f64(0.9));
        assert!(steps.is_empty(), "{steps:?}");
        let mut trial = ReturnTrial::new(Timestamp::ZERO);
        for tick in 1..=100 {
            let step = trial.on_queue(
                Timestamp::from_millis(tick * 10),
                Duration::from_millis(20),
                Duration::from_millis(20),
                MAX_SCALE,
                MAX_SCALE,
            );
            assert_eq!(step, TrialStep::Wait);
        }
    }

    #[test]
    fn a_cancelled_trial_gives_no_verdict_and_waits_its_interval() {
        let mut trial = ReturnTrial::new(Timestamp::ZERO);
        let q = Duration::from_millis(10);
        let settle = Duration::from_millis(20);
        let mut at = Timestamp::ZERO;
        let mut step = TrialStep::Wait;
        while step == TrialStep::Wait {
            at = at + Duration::from_millis(10);
            step = trial.on_queue(at, q, settle, 1.0, MAX_SCALE);
        }
        assert_eq!(step, TrialStep::Start);
        assert!(trial.running());
        trial.cancel(at);
        assert!(!trial.running());
        let next = trial.on_queue(at + Duration::from_millis(10), q, settle, 1.0, MAX_SCALE);
        assert_eq!(next, TrialStep::Wait);
        assert_eq!(
            trial.on_queue(at + TRIAL_EVERY, q, settle, 1.0, MAX_SCALE),
            TrialStep::Start
        );
    }
}
