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
//! **The scout.** The train queues on the radio for as long as the radio takes to carry it,
//! 58 ms at 5 Mbit/s, and the aircraft's telemetry waits behind it. So first, on a path
//! short enough that its round trip costs little (the caller decides), a scout: 8
//! full frames in two halves between three probes, each probe answered at once, as things
//! stood when it arrived (`Receipts::on_probe`). Its queue is a third of the train's, and
//! the probes' answers bound its halves whatever the feedback interval.
//!
//! ```text
//!  sender: probe (k), 4 full frames (a download's data, or padding), probe (k + 5),
//!          4 full frames, probe (k + 10), at once
//!  receiver: answers k at r_k, k + 5 at r_k+5, k + 10 at r_k+10
//!  a round trip later, if each half spans MIN_TRAIN_SPAN or more:
//!     C = bytes of k + 1 ..= k + 10 × 8 / (r_k+10 − r_k), taken as a train's rate
//!     (below), but one that would end Startup only if the halves agree within
//!     SCOUT_AGREEMENT (else scouted again: a receiver stamped a probe late)
//!  ─▶ a half shorter (a radio of about 45 Mbit/s or more, or a receiver that read them
//!     at once): the train goes, whose 24 frames span long enough
//!  ─▶ an answer lost, or other frames in between: scouted again, twice, then the train
//! ```
//!
//! A radio no faster than Startup's next round trip would pace at is so found in one
//! round trip with 19 ms of queue at 5 Mbit/s: without it Startup paced at nearly three
//! times such a radio for a round trip before the queue showed (at 75 ms one way the
//! telemetry behind that queue waited 200 ms), and with the train it queued 58 ms.
//!
//! The train's (and the scout's) frames queue behind one another (on a 20 Mbit/s radio the
//! train's last waits 13 ms): the model keeps their one-way delays and their spread out of
//! the rules that end Startup on a queue (`covers`).

use core::time::Duration;

use super::receipts::FEEDBACK_EVERY;
use super::{wrapping_us, Anchor};
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
/// Scouts tried before the train goes unscouted (each whose answers were lost, or that
/// other frames cut into).
const SCOUT_TRIES: u8 = 3;
/// Full frames between each two of the scout's three probes: two halves of a feedback
/// interval, as many as the train's sample spans at least.
const SCOUT_HALF: usize = TRAIN_SAMPLE_FRAMES as usize / 2;
/// The scout's frames: a probe, half the full frames, a probe, the other half, a probe.
const SCOUT_FRAMES: usize = 2 * SCOUT_HALF + 3;
/// The two halves of a scout whose rate would end Startup must read within this factor of
/// each other: a receiver not scheduled for a few milliseconds stamps a probe late, which
/// lengthens one half (and may shorten the other). The proxy's whole-millisecond ticks
/// make halves of 4.5 ms on a 10 Mbit/s radio differ by up to 1.6 times.
const SCOUT_AGREEMENT: f64 = 1.5;

/// The frames of a scout, in order (`StartupTrain::scout_frame`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScoutFrame {
    /// A probe: a keepalive its receiver answers at once (PROTOCOL.md 34.6).
    Probe,
    /// A full frame, whose time on the radio is measured: storage data where a download
    /// waits, else padding of the largest plaintext.
    Full,
}

#[derive(Clone, Copy)]
enum State {
    /// Nothing sent yet: a scout, or a train the caller sends without one, goes next.
    Unscouted { scouts: u8 },
    /// The scout goes out: `sent` of its frames went, the first, `first`, at `at`; `taken`:
    /// the caller took the next (`scout_frame`) and is sending it.
    Scouting {
        sent: u8,
        first: u64,
        at: Timestamp,
        taken: bool,
        scouts: u8,
    },
    /// The scout (`first..first + SCOUT_FRAMES`) is out; `answers`: those to its first
    /// and middle probes.
    Scouted {
        first: u64,
        answers: [Option<Anchor>; 2],
        scouts: u8,
    },
    /// The next burst the pacer lets through is a train (the scout found a radio too fast
    /// for it to measure).
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
    /// Measured (by the train or the scout), given up, or Startup is over.
    Done,
}

/// See the module docs.
pub(super) struct StartupTrain {
    state: State,
    /// The counters of the latest train sent, kept once it is measured: the samples that
    /// span it are judged apart (`within`).
    frames: Option<(u64, u64)>,
    /// The same of the latest scout, kept apart: a download's train may go while its
    /// answers are on their way, and its last probe waits 19 ms behind the scout's full
    /// frames on a 5 Mbit/s radio (taken for a queue, that ended Startup at 3.7 Mbit/s).
    scout_frames: Option<(u64, u64)>,
    /// The rate the latest train or scout measured (`reading`).
    reading: Option<f64>,
}

impl StartupTrain {
    pub(super) fn new() -> Self {
        StartupTrain {
            state: State::Unscouted { scouts: 0 },
            frames: None,
            scout_frames: None,
            reading: None,
        }
    }

    /// Is a train wanted from the next burst, the scout having found a radio too fast for it?
    pub(super) fn armed(&self) -> bool {
        matches!(self.state, State::Armed { .. })
    }

    /// Is nothing sent yet: a scout may go, or a train without one?
    pub(super) fn unscouted(&self) -> bool {
        matches!(self.state, State::Unscouted { .. })
    }

    /// Is the radio not scouted yet: nothing sent, or a scout out or to be sent again?
    pub(super) fn awaiting_scout(&self) -> bool {
        matches!(
            self.state,
            State::Unscouted { .. } | State::Scouting { .. } | State::Scouted { .. }
        )
    }

    /// The pacer lets a train's worth through now, if a train is armed or the radio not
    /// scouted yet (the scout's answers are then not waited for): true once for it.
    pub(super) fn begin(&mut self) -> bool {
        let tries = match self.state {
            State::Armed { tries } => tries,
            State::Unscouted { .. } | State::Scouting { .. } | State::Scouted { .. } => 0,
            _ => return false,
        };
        self.state = State::Starting { tries: tries + 1 };
        true
    }

    /// The scout goes out from the next frame, if nothing was sent yet.
    pub(super) fn begin_scout(&mut self, now: Timestamp) {
        if let State::Unscouted { scouts } = self.state {
            self.state = State::Scouting {
                sent: 0,
                first: 0,
                at: now,
                taken: false,
                scouts: scouts + 1,
            };
        }
    }

    /// The scout's next frame, which the caller sends now, if the scout is going out. Its
    /// frames go back to back: one later than `TRAIN_SEND_SPAN` after the first scouts
    /// again.
    pub(super) fn scout_frame(&mut self, now: Timestamp) -> Option<ScoutFrame> {
        let State::Scouting {
            sent,
            first,
            at,
            scouts,
            ..
        } = self.state
        else {
            return None;
        };
        if sent > 0 && now.saturating_since(at) > TRAIN_SEND_SPAN {
            self.scout_again(scouts);
            return None;
        }
        self.state = State::Scouting {
            sent,
            first,
            at,
            taken: true,
            scouts,
        };
        Some(match usize::from(sent) {
            0 => ScoutFrame::Probe,
            n if n == SCOUT_HALF + 1 => ScoutFrame::Probe,
            n if n < SCOUT_FRAMES - 1 => ScoutFrame::Full,
            _ => ScoutFrame::Probe,
        })
    }

    fn scout_again(&mut self, scouts: u8) {
        self.state = if scouts < SCOUT_TRIES {
            State::Unscouted { scouts }
        } else {
            // The radio could not be told: the train goes, as it would without a scout.
            State::Armed { tries: 0 }
        };
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

    /// A new session: its counters start again, and a scout or train out is never
    /// answered; it goes again.
    pub(super) fn restart_counters(&mut self) {
        self.frames = None;
        self.scout_frames = None;
        self.state = match self.state {
            State::Scouting { scouts, .. } | State::Scouted { scouts, .. } => {
                State::Unscouted { scouts }
            }
            State::Starting { tries } | State::Sent { tries, .. } => State::Armed { tries },
            state => state,
        };
    }

    /// A frame `counter` went out at `now`.
    pub(super) fn on_sent(&mut self, now: Timestamp, counter: u64) {
        if let State::Scouting {
            sent,
            first,
            at,
            taken,
            scouts,
        } = self.state
        {
            let first = if sent == 0 { counter } else { first };
            if !taken || counter != first + u64::from(sent) {
                // Another frame cut into the scout (before its first, none did).
                if sent > 0 {
                    self.scout_again(scouts);
                }
                return;
            }
            let at = if sent == 0 { now } else { at };
            self.state = if usize::from(sent) + 1 == SCOUT_FRAMES {
                self.scout_frames = Some((first, counter));
                State::Scouted {
                    first,
                    answers: [None; 2],
                    scouts,
                }
            } else {
                State::Scouting {
                    sent: sent + 1,
                    first,
                    at,
                    taken: false,
                    scouts,
                }
            };
            return;
        }
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

    /// Was `counter` one of the latest train's or scout's frames?
    pub(super) fn covers(&self, counter: u64) -> bool {
        [self.frames, self.scout_frames]
            .iter()
            .flatten()
            .any(|&(first, last)| (first..=last).contains(&counter))
    }

    /// Does the span of counters after `from` up to `to` hold any of the latest train's or
    /// scout's frames?
    pub(super) fn within(&self, from: u64, to: u64) -> bool {
        [self.frames, self.scout_frames]
            .iter()
            .flatten()
            .any(|&(first, last)| from < last && to >= first)
    }

    /// Feedback reported `here`: the train's rate, bit/s, once two reports from within it
    /// span enough of it; or the scout's, once both its probes are answered (and a second
    /// scout confirmed a rate of `found_at` or less, at which Startup ends). Kept as the
    /// reading (`reading`).
    pub(super) fn on_feedback(&mut self, here: &Anchor, found_at: f64) -> Option<f64> {
        let rate = self.measure(here, found_at);
        if rate.is_some() {
            self.reading = rate;
        }
        rate
    }

    /// A rate sample of a span holding the train's frames measured it before the train's
    /// own reports did: that is the reading (and the train measures nothing more).
    pub(super) fn read_by_span(&mut self, rate: f64) {
        self.reading = Some(rate);
        self.state = State::Done;
    }

    /// The radio's rate, bit/s, as the latest train or scout measured it.
    pub(super) fn reading(&self) -> Option<f64> {
        self.reading
    }

    fn measure(&mut self, here: &Anchor, found_at: f64) -> Option<f64> {
        if let State::Scouted {
            first,
            answers,
            scouts,
        } = self.state
        {
            return self.on_scout_answer(here, first, answers, scouts, found_at);
        }
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

    /// Feedback reported `here` while the scout that began at `first` is out: its rate,
    /// once its three probes are answered and each half spans at least `MIN_TRAIN_SPAN`;
    /// else the train (a half shorter), or another scout (an answer lost). A rate of
    /// `found_at` or less ends Startup: only if the halves agree (`SCOUT_AGREEMENT`). A
    /// receiver not scheduled for a few milliseconds (the remote stretching the storage
    /// unlock's key on a busy machine) stamped the last probe of a scout of one span
    /// (tried) 9 ms late, read a 20 Mbit/s radio as 6.5, and Startup ended there: the
    /// download got 0.79 of the radio, through `rotorlink proxy` 75 ms away.
    fn on_scout_answer(
        &mut self,
        here: &Anchor,
        first: u64,
        mut answers: [Option<Anchor>; 2],
        scouts: u8,
        found_at: f64,
    ) -> Option<f64> {
        let middle = first + SCOUT_HALF as u64 + 1;
        let last = first + SCOUT_FRAMES as u64 - 1;
        let slot = match here.largest {
            c if c == first => Some(0),
            c if c == middle => Some(1),
            _ => None,
        };
        if let Some(slot) = slot {
            answers[slot] = Some(*here);
            self.state = State::Scouted {
                first,
                answers,
                scouts,
            };
            return None;
        }
        // Before the scout, or its full frames reported: a probe's answer is yet to come.
        if here.largest < last {
            return None;
        }
        let ([Some(start), Some(mid)], true) = (answers, here.largest == last) else {
            // An answer lost: the spans are not known.
            self.scout_again(scouts);
            return None;
        };
        let spans = [(&start, &mid), (&mid, here)].map(|(from, to)| {
            let span = f64::from(wrapping_us(to.received_at_us, from.received_at_us)) / 1e6;
            let bytes = to.sent_cumulative.saturating_sub(from.sent_cumulative) as f64;
            (span, bytes)
        });
        if spans
            .iter()
            .any(|&(span, _)| span < MIN_TRAIN_SPAN.as_secs_f64())
        {
            // Too fast a radio for the scout, or stamped alike: the train measures it.
            self.state = State::Armed { tries: 0 };
            return None;
        }
        let [(a, a_bytes), (b, b_bytes)] = spans;
        let rate = (a_bytes + b_bytes) * 8.0 / (a + b);
        let (rate_a, rate_b) = (a_bytes / a, b_bytes / b);
        if rate <= found_at && rate_a.max(rate_b) > SCOUT_AGREEMENT * rate_a.min(rate_b) {
            self.scout_again(scouts);
            return None;
        }
        self.state = State::Done;
        Some(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Startup's next round trip's rate at the initial 4 Mbit/s: a rate read at or under
    /// it ends Startup.
    const FOUND_AT: f64 = 2.885 * 4e6;

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
        assert!(train.unscouted() && !train.armed());
        train.on_sent(at(0), 9);
        assert!(train.unscouted() && !train.sending(at(0)));
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
        assert_eq!(train.on_feedback(&point(17, 560), FOUND_AT), None);
        // Seven frames apart are too few.
        assert_eq!(train.on_feedback(&point(24, 560), FOUND_AT), None);
        let rate = train.on_feedback(&point(25, 560), FOUND_AT).unwrap();
        assert!((rate - 20e6).abs() < 1e3, "{rate}");
        // Measured once; its frames are still known.
        assert!(!train.armed() && train.covers(10));
        assert_eq!(train.on_feedback(&point(34, 560), FOUND_AT), None);
    }

    #[test]
    fn a_report_lost_within_the_train_leaves_two_that_measure_it() {
        // The report at 25 was lost: 17 and the train's last frame, 33, measure the radio.
        let mut train = sent_train(TRAIN_FRAMES);
        assert_eq!(train.on_feedback(&point(17, 560), FOUND_AT), None);
        let rate = train.on_feedback(&point(33, 560), FOUND_AT).unwrap();
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
        assert_eq!(train.on_feedback(&stamped(12, 0), FOUND_AT), None);
        assert_eq!(train.on_feedback(&stamped(20, 0), FOUND_AT), None);
        let rate = train.on_feedback(&stamped(30, 2), FOUND_AT).unwrap();
        assert!((rate - 18.0 * 1400.0 * 8.0 / 2e-3).abs() < 1e3, "{rate}");
    }

    #[test]
    fn a_train_the_radio_did_not_spread_or_a_receiver_stamped_alike_gives_no_rate() {
        // The frames arrived 30 us apart: 23 frames in 690 us, under `MIN_TRAIN_SPAN`, and
        // the next report is past the train: tried again.
        let mut train = sent_train(TRAIN_FRAMES);
        train.on_feedback(&point(10, 30), FOUND_AT);
        assert_eq!(train.on_feedback(&point(33, 30), FOUND_AT), None);
        assert!(!train.armed());
        assert_eq!(train.on_feedback(&point(41, 30), FOUND_AT), None);
        assert!(train.armed());
        // A train sent over a span as long as it arrived in: the radio did not spread it.
        let mut train = sent_train(TRAIN_FRAMES);
        train.on_feedback(&point(12, 560), FOUND_AT);
        let late = Anchor {
            sent_at: at(6_000),
            ..point(28, 560)
        };
        assert_eq!(train.on_feedback(&late, FOUND_AT), None);
        // Reports that skip past the train: tried again.
        let mut train = sent_train(TRAIN_FRAMES);
        train.on_feedback(&point(17, 560), FOUND_AT);
        assert_eq!(train.on_feedback(&point(40, 560), FOUND_AT), None);
        assert!(train.armed());
    }

    /// Sends the scout, its first frame counter 10 at 1 ms: true if it went whole.
    fn scout(train: &mut StartupTrain) -> bool {
        let now = at(1_000);
        train.begin_scout(now);
        for c in 10..=LAST {
            let want = if [10, MIDDLE, LAST].contains(&c) {
                ScoutFrame::Probe
            } else {
                ScoutFrame::Full
            };
            if train.scout_frame(now) != Some(want) {
                return false;
            }
            train.on_sent(now, c);
        }
        train.scout_frame(now).is_none()
    }

    /// The scout's middle and last probes.
    const MIDDLE: u64 = 10 + SCOUT_HALF as u64 + 1;
    const LAST: u64 = 10 + SCOUT_FRAMES as u64 - 1;

    /// The answer to the scout's frame `counter`, which arrived at `arrived_us`: the probes
    /// are 28 bytes on the air and the full frames 1400.
    fn answer(counter: u64, arrived_us: u32) -> Anchor {
        let sent_cumulative = (10..=counter)
            .map(|c| {
                if [10, MIDDLE, LAST].contains(&c) {
                    28
                } else {
                    1400
                }
            })
            .sum();
        Anchor {
            largest: counter,
            frames: counter,
            bytes: sent_cumulative,
            sent_cumulative,
            at: at(50_000),
            received_at_us: arrived_us,
            sent_at: at(1_000),
        }
    }

    /// The scout's answers, the probes arriving at `first`, `+ a` and `+ a + b` us: what it
    /// measured, and whether a train is then wanted.
    fn answered(first: u32, a: u32, b: u32) -> (StartupTrain, Option<f64>) {
        let mut train = StartupTrain::new();
        assert!(scout(&mut train));
        assert!(!train.unscouted() && !train.armed() && train.covers(LAST));
        assert_eq!(train.on_feedback(&answer(10, first), FOUND_AT), None);
        // A feedback interval's report from within it changes nothing.
        assert_eq!(train.on_feedback(&answer(13, first + 100), FOUND_AT), None);
        assert_eq!(
            train.on_feedback(&answer(MIDDLE, first + a), FOUND_AT),
            None
        );
        let rate = train.on_feedback(&answer(LAST, first + a + b), FOUND_AT);
        (train, rate)
    }

    #[test]
    fn a_scout_measures_a_radio_slow_enough_for_it_and_no_train_goes() {
        // 5 Mbit/s: each half, 4 full frames and a probe, 5628 bytes, takes 9.0 ms.
        let (mut train, rate) = answered(20_000, 9_005, 9_005);
        let rate = rate.unwrap();
        assert!((rate - 5e6).abs() < 1e4, "{rate}");
        assert!(!train.armed() && !train.unscouted() && !train.begin());
        // 40 Mbit/s: above Startup's next round trip's rate.
        let (_, rate) = answered(20_000, 1_126, 1_126);
        assert!((rate.unwrap() - 40e6).abs() < 1e5);
    }

    #[test]
    fn a_scout_whose_halves_disagree_does_not_end_startup() {
        // 20 Mbit/s (2.25 ms a half); the last probe stamped 9.3 ms late, as by a receiver
        // not scheduled: 6.5 Mbit/s over the whole, which would end Startup. Scouted again.
        let (train, rate) = answered(20_000, 2_251, 11_551);
        assert_eq!(rate, None);
        assert!(train.unscouted());
        // Halves that differ as much over a rate that would not end Startup: taken.
        let (_, rate) = answered(20_000, 1_126, 2_800);
        assert!(rate.is_some_and(|r| r > FOUND_AT), "{rate:?}");
    }

    #[test]
    fn a_scout_too_fast_to_measure_or_read_at_once_sends_the_train() {
        // 100 Mbit/s: 0.45 ms a half; a receiver that read them at once: 0.
        for half_us in [450, 0] {
            let (mut train, rate) = answered(20_000, half_us, half_us);
            assert_eq!(rate, None);
            assert!(train.armed() && train.begin(), "{half_us}");
        }
    }

    #[test]
    fn a_scout_whose_answer_was_lost_or_that_was_cut_into_goes_again_then_the_train() {
        let mut train = StartupTrain::new();
        // The middle probe's answer lost: the last one's tells nothing.
        assert!(scout(&mut train));
        train.on_feedback(&answer(10, 20_000), FOUND_AT);
        assert_eq!(train.on_feedback(&answer(LAST, 38_010), FOUND_AT), None);
        assert!(train.unscouted());
        // Another frame went between the probe and the full frames.
        let now = at(1_000);
        train.begin_scout(now);
        assert_eq!(train.scout_frame(now), Some(ScoutFrame::Probe));
        train.on_sent(now, 10);
        train.on_sent(now, 11);
        assert!(train.unscouted());
        // A full frame went too late after the probe.
        train.begin_scout(now);
        assert_eq!(train.scout_frame(now), Some(ScoutFrame::Probe));
        train.on_sent(now, 10);
        assert_eq!(train.scout_frame(at(2_000)), None);
        // Three scouts failed: the train goes, as it would without one.
        assert!(!train.unscouted() && train.armed());
    }

    #[test]
    fn a_scout_or_train_out_when_a_new_session_starts_goes_again() {
        let mut train = StartupTrain::new();
        assert!(scout(&mut train));
        train.restart_counters();
        assert!(train.unscouted() && !train.covers(10));
        let mut train = sent_train(TRAIN_FRAMES);
        train.restart_counters();
        assert!(train.armed() && !train.covers(10));
    }
}
