//! A train of frames sent back to back at the start of a transfer, whose spread at the
//! receiver measures the radio's rate a round trip after it went (`PathModel`, Startup).
//!
//! Startup learns the rate by doubling it (nearly three times) each round trip, from the
//! pacer's initial 4 Mbit/s: on a 150 ms round trip that is four round trips, 0.6 s, to
//! reach a 100 Mbit/s radio, most of it with the radio idle. A radio carries frames sent
//! at once one after another at its own rate, so the arrival times of a burst say that rate
//! whatever the sender paced at. The receiver reports every `FEEDBACK_EVERY` frames, and
//! three times that many frames bring three reports from within the train: the first two
//! of them that are a feedback interval and a millisecond apart give the rate.
//!
//! ```text
//!  sender: TRAIN_FRAMES at once ─▶ radio at C ─▶ receiver: feedback at frame k, k + 8,
//!                                                           k + 16 (k <= 8)
//!  a round trip later: C = bytes sent between the first and the last / time between them
//!  ─▶ C no more than Startup's next round trip would pace at: the estimate is C, Startup
//!     ends (Drain, then cruising at C)
//!  ─▶ C more: the estimate starts from C / 2 (Startup's gain then paces at 1.44 C, and
//!     its own samples confirm the rate within the next round trip)
//! ```
//!
//! Only where the round trip is known and long (`TRAIN_MIN_RTT`), and only from a sender
//! with a train's worth of storage data waiting (a download's start), or from an aircraft
//! with nothing paced to send, whose train is padding (the connection decides which).
//!
//! The train's frames queue behind one another (on a 20 Mbit/s radio the last waits
//! 13 ms): the model keeps their one-way delays and their spread out of the rules that end
//! Startup on a queue (`covers`).

use core::time::Duration;

use super::receipts::FEEDBACK_EVERY;
use super::Anchor;
use crate::time::Timestamp;

/// Frames in a train: three feedback intervals, so that two reports from within it span
/// at least one (a frame lost moves a report on by one).
pub(super) const TRAIN_FRAMES: u64 = 3 * FEEDBACK_EVERY as u64;
/// The fewest frames between the two reports a rate is taken from: a feedback interval.
const TRAIN_SAMPLE_FRAMES: u64 = FEEDBACK_EVERY as u64;
/// Frames sent this close after the first are in the train (a sender's loop sends a burst
/// within microseconds).
const TRAIN_SEND_SPAN: Duration = Duration::from_micros(250);
/// A sample's arrival span must be this long: a receiver that reads a few datagrams at
/// once stamps them alike, and a span of a few hundred microseconds would read as a far
/// faster radio. A shorter one waits for the next report: eight frames on a 100 Mbit/s
/// radio take 0.9 ms, and a receiver reading datagrams as a proxy releases them, on
/// whole milliseconds, reports every ten to eighteen frames.
const MIN_TRAIN_SPAN: Duration = Duration::from_millis(1);
/// The train's send span must be at most this fraction of its arrival span: otherwise the
/// radio did not spread it (it carried it as fast as it went).
const MAX_SEND_SHARE: f64 = 0.5;
/// The share of the train's rate the estimate takes: a half, so that Startup's gain
/// (2.885) paces at 1.44 times it, and an arrival span that jitter shortened does not pace
/// at several times the radio for a round trip.
pub(super) const TRAIN_SHARE: f64 = 0.5;
/// Trains tried before the model gives up (each that was too short: a sender with little to
/// send, a thinned return path reporting less often than twice in a train).
const TRAIN_TRIES: u8 = 3;

#[derive(Clone, Copy)]
enum State {
    /// The next burst the pacer lets through is a train.
    Armed { tries: u8 },
    /// The pacer let a train's worth through (`begin`): the next frame is its first.
    Starting { tries: u8 },
    /// Frames `first..=last` went out back to back from `at`; `start` is the first
    /// feedback that reported one of them.
    Sent {
        first: u64,
        last: u64,
        at: Timestamp,
        start: Option<Anchor>,
        tries: u8,
    },
    /// Measured, given up, or Startup is over.
    Done,
}

/// See the module docs.
pub(super) struct StartupTrain {
    state: State,
    /// The counters of the latest train sent, kept once it is measured: the samples that
    /// span it are judged apart (`within`).
    frames: Option<(u64, u64)>,
}

impl StartupTrain {
    pub(super) fn new() -> Self {
        StartupTrain {
            state: State::Armed { tries: 0 },
            frames: None,
        }
    }

    /// Is a train wanted from the next burst?
    pub(super) fn armed(&self) -> bool {
        matches!(self.state, State::Armed { .. })
    }

    /// The pacer lets a train's worth through now, if a train is armed: true once for it.
    pub(super) fn begin(&mut self) -> bool {
        let State::Armed { tries } = self.state else {
            return false;
        };
        self.state = State::Starting { tries: tries + 1 };
        true
    }

    /// Is the train going out at `now`? Until then the pacer keeps the tokens `begin` gave.
    pub(super) fn sending(&self, now: Timestamp) -> bool {
        match self.state {
            State::Starting { .. } => true,
            State::Sent {
                at, start: None, ..
            } => now.saturating_since(at) <= TRAIN_SEND_SPAN,
            _ => false,
        }
    }

    /// No train from now on (Startup ended).
    pub(super) fn stop(&mut self) {
        self.state = State::Done;
    }

    /// A frame `counter` went out at `now`.
    pub(super) fn on_sent(&mut self, now: Timestamp, counter: u64) {
        if let State::Sent {
            first,
            last,
            at,
            start: None,
            tries,
        } = self.state
        {
            if counter == last + 1 && now.saturating_since(at) <= TRAIN_SEND_SPAN {
                self.frames = Some((first, counter));
                self.state = State::Sent {
                    first,
                    last: counter,
                    at,
                    start: None,
                    tries,
                };
                return;
            }
            if last + 1 - first < TRAIN_FRAMES {
                self.retry(tries);
            }
        }
        if let State::Starting { tries } = self.state {
            self.frames = Some((counter, counter));
            self.state = State::Sent {
                first: counter,
                last: counter,
                at: now,
                start: None,
                tries,
            };
        }
    }

    fn retry(&mut self, tries: u8) {
        self.state = if tries < TRAIN_TRIES {
            State::Armed { tries }
        } else {
            State::Done
        };
    }

    /// Was `counter` one of the latest train's frames?
    pub(super) fn covers(&self, counter: u64) -> bool {
        self.frames
            .is_some_and(|(first, last)| (first..=last).contains(&counter))
    }

    /// Does the span of counters after `from` up to `to` hold any of the latest train's
    /// frames?
    pub(super) fn within(&self, from: u64, to: u64) -> bool {
        self.frames
            .is_some_and(|(first, last)| from < last && to >= first)
    }

    /// Feedback reported `here`: the train's rate, bit/s, once two reports from within it
    /// span enough of it.
    pub(super) fn on_feedback(&mut self, here: &Anchor) -> Option<f64> {
        let State::Sent {
            first,
            last,
            at,
            start,
            tries,
        } = self.state
        else {
            return None;
        };
        if here.largest < first {
            return None;
        }
        if last + 1 - first < TRAIN_FRAMES || here.largest > last {
            // Too short to bring two reports, or the reports skipped past it (lost or
            // thinned): another try.
            self.retry(tries);
            return None;
        }
        let Some(start) = start else {
            self.state = State::Sent {
                first,
                last,
                at,
                start: Some(*here),
                tries,
            };
            return None;
        };
        let span = f64::from(here.received_at_us.wrapping_sub(start.received_at_us)) / 1e6;
        if here.largest < start.largest + TRAIN_SAMPLE_FRAMES || span < MIN_TRAIN_SPAN.as_secs_f64()
        {
            // Too close: a later report within the train may do (one past it tries again).
            return None;
        }
        let send_span = here.sent_at.saturating_since(start.sent_at).as_secs_f64();
        // Every byte sent between the two: those lost on the air took the radio's time too (at
        // 20 % loss, what arrived of a train read a 20 Mbit/s radio as 13).
        let bytes = here.sent_cumulative.saturating_sub(start.sent_cumulative) as f64;
        self.state = State::Done;
        (send_span <= MAX_SEND_SHARE * span).then(|| bytes * 8.0 / span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(us: u64) -> Timestamp {
        Timestamp::from_micros(us)
    }

    /// Reports of frames `counter` of 1400 bytes, the first of the train (counter 10) at
    /// 100 ms, one every `frame_us` after it.
    fn point(counter: u64, frame_us: u64) -> Anchor {
        Anchor {
            largest: counter,
            frames: counter,
            bytes: counter * 1400,
            sent_cumulative: counter * 1400,
            at: at(150_000),
            received_at_us: (100_000 + (counter - 10) * frame_us) as u32,
            sent_at: at(5),
        }
    }

    fn sent_train(frames: u64) -> StartupTrain {
        let mut train = StartupTrain::new();
        assert!(train.armed());
        train.on_sent(at(0), 9);
        assert!(train.armed() && !train.sending(at(0)));
        assert!(train.begin());
        assert!(!train.begin() && train.sending(at(5)));
        for c in 10..10 + frames {
            train.on_sent(at(5), c);
        }
        assert!(train.sending(at(5)) && !train.sending(at(1_000)));
        train
    }

    #[test]
    fn a_train_measures_the_radio_from_two_reports_within_it() {
        // 20 Mbit/s: a 1400-byte frame is 560 us on the air.
        let mut train = sent_train(TRAIN_FRAMES);
        assert!(!train.armed());
        assert!(train.covers(10) && train.covers(33) && !train.covers(34));
        assert!(train.within(9, 10) && !train.within(33, 40));
        assert_eq!(train.on_feedback(&point(17, 560)), None);
        // Seven frames apart are too few.
        assert_eq!(train.on_feedback(&point(24, 560)), None);
        let rate = train.on_feedback(&point(25, 560)).unwrap();
        assert!((rate - 20e6).abs() < 1e3, "{rate}");
        // Measured once; its frames are still known.
        assert!(!train.armed() && train.covers(10));
        assert_eq!(train.on_feedback(&point(34, 560)), None);
    }

    #[test]
    fn a_report_lost_within_the_train_leaves_two_that_measure_it() {
        // The report at 25 was lost: 17 and the train's last frame, 33, measure the radio.
        let mut train = sent_train(TRAIN_FRAMES);
        assert_eq!(train.on_feedback(&point(17, 560)), None);
        let rate = train.on_feedback(&point(33, 560)).unwrap();
        assert!((rate - 20e6).abs() < 1e3, "{rate}");
    }

    #[test]
    fn a_short_train_is_tried_again_a_few_times() {
        let mut train = sent_train(TRAIN_FRAMES - 1);
        // The next frame, later, closes it: too short.
        train.on_sent(at(3_000), 10 + TRAIN_FRAMES - 1);
        assert!(train.armed());
        for _ in 1..TRAIN_TRIES - 1 {
            assert!(train.begin());
            train.on_sent(at(4_000), 100);
            train.on_sent(at(9_000), 101);
            assert!(train.armed());
        }
        assert!(train.begin());
        train.on_sent(at(10_000), 102);
        train.on_sent(at(19_000), 103);
        assert!(!train.armed() && !train.begin());
    }

    #[test]
    fn reports_too_close_in_time_wait_for_a_later_one_within_the_train() {
        // 100 Mbit/s (112 us a frame), read as a proxy releases datagrams, on whole
        // milliseconds: reports at frames 12, 20 and 30, the first two stamped alike.
        let mut train = sent_train(TRAIN_FRAMES);
        let stamped = |counter: u64, ms: u32| Anchor {
            received_at_us: 100_000 + ms * 1000,
            ..point(counter, 112)
        };
        assert_eq!(train.on_feedback(&stamped(12, 0)), None);
        assert_eq!(train.on_feedback(&stamped(20, 0)), None);
        let rate = train.on_feedback(&stamped(30, 2)).unwrap();
        assert!((rate - 18.0 * 1400.0 * 8.0 / 2e-3).abs() < 1e3, "{rate}");
    }

    #[test]
    fn a_train_the_radio_did_not_spread_or_a_receiver_stamped_alike_gives_no_rate() {
        // The frames arrived 30 us apart: 23 frames in 690 us, under `MIN_TRAIN_SPAN`, and
        // the next report is past the train: tried again.
        let mut train = sent_train(TRAIN_FRAMES);
        train.on_feedback(&point(10, 30));
        assert_eq!(train.on_feedback(&point(33, 30)), None);
        assert!(!train.armed());
        assert_eq!(train.on_feedback(&point(41, 30)), None);
        assert!(train.armed());
        // A train sent over a span as long as it arrived in: the radio did not spread it.
        let mut train = sent_train(TRAIN_FRAMES);
        train.on_feedback(&point(12, 560));
        let late = Anchor {
            sent_at: at(6_000),
            ..point(28, 560)
        };
        assert_eq!(train.on_feedback(&late), None);
        // Reports that skip past the train: tried again.
        let mut train = sent_train(TRAIN_FRAMES);
        train.on_feedback(&point(17, 560));
        assert_eq!(train.on_feedback(&point(40, 560)), None);
        assert!(train.armed());
    }
}
