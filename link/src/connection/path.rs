//! The sender's model of the radio path, from the receiver's feedback (PROTOCOL.md 34): the
//! bottleneck rate and the minimum round trip, as BBR models them, so that random radio loss
//! is not read as congestion and a growing queue is; and the pacer that sends at the model's
//! rate so the radio's queue stays short and the link's own priorities hold end to end.
//!
//! ```text
//!  sender                                            receiver
//!  frame c (counter), sent at t_c, cum. bytes B_c ──▶ arrives at r_c (receiver clock)
//!                                                    every few frames or 10 ms:
//!  on Feedback { largest = c, frames, bytes,  ◀────  Feedback (cumulative, so a lost one
//!                received_at = r_c, ack_delay }       loses nothing)
//!    rtt  = now - t_c - ack_delay              (min over 10 s: min_rtt)
//!    rate = (B_c - B_a) / (r_c - r_a)          a: the previous sample's `largest`
//!    loss = 1 - (frames - frames_a) / (c - a)
//! ```
//!
//! The rate sample counts every byte *sent* between the two acknowledged counters, lost
//! ones included, over the time the receiver took to see them pass: the rate the radio
//! carried the sender's frames, whatever it then lost at random. While the round trip grows
//! above its minimum (a queue is building), the sample counts only the bytes that arrived,
//! so the model cannot talk itself into a rate the radio does not carry.

use alloc::collections::VecDeque;
use core::time::Duration;

use crate::time::Timestamp;
use crate::wire::body::FeedbackBody;

mod loss;
mod receipts;
mod return_trial;
mod startup_train;

use self::loss::{AirLoss, Settled};
pub(crate) use self::receipts::{Elicits, Receipts};
use self::receipts::{FEEDBACK_DELAY, FEEDBACK_EVERY};
use self::return_trial::{ReturnTrial, TrialStep};
pub(crate) use self::startup_train::ScoutFrame;
use self::startup_train::{StartupTrain, TRAIN_FRAMES, TRAIN_SHARE};

/// The loss estimate's memory.
pub(super) const LOSS_HORIZON: Duration = Duration::from_secs(1);
/// A rate sample never spans more than this many minimum round trips...
const OUTAGE_RTTS: u32 = 16;
/// ...or, on a short path, than this: longer, the path was out, not slow.
const MIN_OUTAGE: Duration = Duration::from_secs(1);

fn outage_span(min_rtt: Duration) -> Duration {
    (min_rtt * OUTAGE_RTTS).max(MIN_OUTAGE)
}

/// Counters the receiver must have judged lately for its settled loss to be reported.
const MIN_SETTLED_COUNTERS: f64 = 256.0;
/// A full frame, for the in-flight cap's allowances.
const FRAME_BYTES: f64 = 1500.0;
/// Frames the history holds before it first grows (a few round trips of a narrow radio;
/// it grows to what a fast path keeps in flight, then stays).
const INITIAL_HISTORY: usize = 256;
/// Frames remembered for matching feedback: above a second of frames at 100 Mbit/s in
/// flight would be needed to lose a match, and then only that RTT sample is skipped.
const HISTORY: usize = 16_384;
/// A round trip this much (or a quarter) above the minimum means a queue is building, and
/// a rate sample counts only what arrived: well above the radio's jitter and a key frame's
/// burst.
const QUEUE_THRESHOLD: Duration = Duration::from_millis(10);
/// A queue this long in every round trip for a whole round trip is one the radio holds,
/// not the radio's jitter, which raises single round trips. Not a quarter of the round
/// trip, as `QUEUE_THRESHOLD`: telemetry waits behind the queue in milliseconds whatever the
/// path's length, and at 75 ms one way a quarter let a 37 ms queue stand (telemetry p99
/// 131 ms against the issue's 92).
const PERSISTENT_QUEUE_THRESHOLD: Duration = Duration::from_millis(5);
/// A queue this long in two round trips in a row ends startup (`PathModel::startup_queue`).
const STARTUP_QUEUE_THRESHOLD: Duration = Duration::from_millis(6);
/// How long a probe goes up (at `PROBE_GAINS[UP]`): where the radio has no room it queues a
/// quarter of this, 7.5 ms, which telemetry waits behind, whatever the path's length (a
/// probe a round trip long queued 37 ms at 75 ms one way); and it holds three feedback
/// intervals, so the probe's own sample (`PathModel::probe_sample`) spans at least one.
const UP_LENGTH: Duration = Duration::from_millis(30);
/// The shortest arrival span a rate sample is measured over.
const MIN_SAMPLE_SPAN: Duration = Duration::from_millis(30);
/// The same in startup, where finding the rate fast matters more than a precise one: a
/// sample shows a new rate as soon as feedback for frames sent at it comes back.
const MIN_STARTUP_SAMPLE_SPAN: Duration = Duration::from_millis(10);
/// Round-trip samples the jitter (`PathModel::jitter`) averages.
const DELAY_NOISE_SAMPLES: u32 = 16;
/// Where the jitter exceeds what the queue thresholds tolerate, Startup ends, and the radio
/// counts as busy, on a queue every one of this many round trips in a row shows.
const JITTERED_QUEUE_SAMPLES: usize = 8;
/// Rate samples the bottleneck estimate is the maximum of (about ten round trips).
const RATE_WINDOW: usize = 10;
/// How long a minimum round trip stays valid.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// The shortest round-trip sample (a clock's resolution).
const MIN_RTT_SAMPLE: Duration = Duration::from_micros(1);
/// Startup's pacing gain, 2/ln 2, doubles the rate every round trip.
const STARTUP_GAIN: f64 = 2.885;
/// Startup ends at a sample this many times slower than its frames were sent.
const STARTUP_SATURATION: f64 = 1.5;
/// Startup goes on while the estimate grows this much a round trip.
const STARTUP_GROWTH: f64 = 1.25;
/// Startup ends after this many round trips in a row without 25 % growth (BBR's).
const STARTUP_FLAT_ROUNDS: u8 = 3;
/// Startup's in-flight cap, in bandwidth-delay products (BBRv3's): the queue the last
/// round trip of startup builds, before feedback shows the rate found, is at most one BDP.
const STARTUP_CAP_GAIN: f64 = 2.0;
/// A sample of a radio kept busy throughout this far under the estimate is a slower radio,
/// in any phase of the cycle: a tenth is above what the radio's jitter does to a sample
/// (2 ms on a 30 ms span), and a radio that changes its modulation steps by more.
const SLOWER_RADIO: f64 = 0.9;
/// A span of a busy radio this long that carried under `QUICK_SLOWER` of what it was
/// offered is a slower radio before a whole sample (`MIN_SAMPLE_SPAN`) has passed...
const QUICK_SPAN: Duration = Duration::from_millis(15);
const QUICK_SLOWER: f64 = 0.75;
/// ...if it also spans this many full frames at the estimate.
const QUICK_FRAMES: f64 = 12.0;
/// The pacing gain that unloads the queue a much slower radio built (it drains in twice
/// its depth).
const UNLOAD_GAIN_SLOWER: f64 = 0.5;
/// The in-flight cap's gain while no queue shows (BBR's `cwnd_gain` in ProbeBW): room for
/// feedback a fade on the return path delayed or lost.
const LATE_FEEDBACK_CAP_GAIN: f64 = 2.0;
/// ...and at least room for a run of lost feedback frames this many times as long as the
/// path's mean run of losses: on a short path two BDPs are a few milliseconds, and a radio
/// that loses datagrams in bursts loses feedback frames in a row (a run of eight is 80 ms
/// of feedback).
const LATE_FEEDBACK_RUNS: f64 = 2.0;
/// Where the path loses this much (feedback frames too), the cap keeps room for a lost
/// feedback frame while a queue shows; below, a lost one costs less than the queue the room
/// lets a radio that got slower build.
const LOST_FEEDBACK_ROOM_LOSS: f64 = 0.05;
/// ProbeBw's gains: probe up (for `UP_LENGTH`), go down (`down_length`), cruise (six
/// phases of a minimum round trip each).
const PROBE_GAINS: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// A probe that raised the estimate this much found room the estimate did not show: a
/// tenth is above what the radio's jitter does to a sample (as `SLOWER_RADIO`).
const PROBE_FOUND_ROOM: f64 = 1.1;
/// The phases of `PROBE_GAINS` that are not cruising.
const UP: usize = 0;
const DOWN: usize = 1;
/// Where a cycle starts after Drain: cruising, so a fresh estimate is not probed at once.
const CRUISE: usize = 2;
/// Rate before the first sample: a cautious start for a narrow radio.
const INITIAL_RATE_BPS: f64 = 4_000_000.0;
/// The slowest the pacer ever goes. An estimate can collapse (a long stretch of loss, a
/// peer that stalled), and the model climbs out of it only as fast as its own frames bring
/// samples: at a few hundred bit/s, one probe cycle takes minutes. 256 kbit/s is below the
/// slowest radio a video link runs on (wfb-ng's and OpenHD's slowest modes carry about
/// 1 Mbit/s) and paces a full frame every 45 ms, so each cycle takes under a second.
const MIN_PACING_BPS: f64 = 256_000.0;
/// The pacer lets this much through at once.
const BURST: Duration = Duration::from_millis(2);
/// The pacer's burst on a narrow radio: a full frame. With two, telemetry waited behind
/// both, and the bound a queue must exceed to count (two bursts) was 9.6 ms at 5 Mbit/s.
const MIN_BURST_BYTES: f64 = FRAME_BYTES;
/// The longest unpaced frames keep paced ones waiting (`PathModel::release_at`), unless two
/// frames at the pacing rate take longer.
const PACED_MAX_WAIT: Duration = Duration::from_millis(100);
/// The most `PathModel::return_scale` thins acks and feedback: every 64th segment acked
/// (`ack_scale`)...
const MAX_RETURN_SCALE: f64 = 16.0;
/// ...and how much denser they get again for each 100 ms of feedback that shows no queue.
const RETURN_SCALE_DECAY: f64 = 0.97;
/// The calm jitter (`PathModel::calm_jitter`) is the most the jitter read at a calm
/// feedback, fading by this for each 100 ms (half in 2.3 s: a startup's queue is judged
/// against the jitter of the seconds before it).
const CALM_JITTER_FADE: f64 = 0.97;
/// A queue that came back once the thinning had decayed to some scale shows the return
/// path needs more than that scale: the decay stops half as much again above it...
const RETURN_FLOOR_MARGIN: f64 = 1.5;
/// ...and that floor goes down by this for each 100 ms (half in 35 s), so that a download
/// that slowed, or an uplink that got faster, gets its denser acks back.
const RETURN_FLOOR_DECAY: f64 = 0.998;
/// What a new path may send at once before its first round trip is known (QUIC's initial
/// window).
const INITIAL_BURST_BYTES: f64 = 10.0 * 1400.0;
/// What the pacer lets through at once for Startup's train (`startup_train`) on a radio
/// that loses nothing (`PathModel::train_bytes`).
const TRAIN_BYTES: usize = TRAIN_FRAMES as usize * FRAME_BYTES as usize;
/// The most loss a train is lengthened for.
const TRAIN_MAX_LOSS: f64 = 0.5;
/// Startup sends a train (after its scout, `startup_train`) where the round trip is known
/// and at least this long: on a shorter path Startup is over in a few tens of milliseconds
/// anyway. Not before a round trip is known: then the path could be anything.
const TRAIN_MIN_RTT: Duration = Duration::from_millis(20);
/// Where the round trip is at least this long, the train goes without a scout (a
/// download's at once, an idle aircraft's once the jitter is measured): a scout's round
/// trip there costs 40 ms or more of a radio that may be fast, and its answers, three
/// probes each way, are lost more often than a train's reports on a lossy radio. Scouted
/// there too (tried), real-time downloads 75 ms away with 10 to 20 % loss got 1 to 4 %
/// less of the radio, on four runs of that row (telemetry's maximum at 5 Mbit/s went
/// from 125 ms to 90).
const UNSCOUTED_TRAIN_MIN_RTT: Duration = Duration::from_millis(40);
/// The aircraft's scout of padding (`scout_wanted`), and so its train, waits for the jitter
/// to be measured, from this many of its samples (`delay_noise`): before any, a 15 ms path
/// with 20 ms of jitter each way showed a 46 ms round trip and no jitter (the path model's
/// test `a_jittery_radio_is_not_a_queue`), where a train read its radio as 11.6 Mbit/s of
/// 20 (one of 32 frames; one of 24 happened to measure nothing).
const PADDING_TRAIN_NOISE_SAMPLES: u32 = 2;

/// One frame sent.
#[derive(Clone, Copy)]
struct Sent {
    at: Timestamp,
    /// Bytes sent in this session up to and including this frame.
    cumulative: u64,
}

/// The frames a probe sent at its gain, for the probe's own rate sample.
#[derive(Clone, Copy)]
struct Probe {
    /// The first counter the probe sent.
    first: u64,
    /// The last one, once the probe is over.
    last: Option<u64>,
    /// The first feedback that reported one of its frames, once it came...
    start: Option<Anchor>,
    /// ...and the latest that reported none sent after it, with how long its frame
    /// waited in a queue.
    end: Option<(Anchor, Duration)>,
    /// The application had nothing to send at some point of the probe, which then
    /// probed nothing.
    idle: bool,
}

/// The point the next rate sample is measured from.
#[derive(Clone, Copy)]
struct Anchor {
    largest: u64,
    frames: u64,
    bytes: u64,
    received_at_us: u32,
    sent_cumulative: u64,
    /// When the frame `largest` was sent.
    sent_at: Timestamp,
    /// When the feedback reporting it came.
    at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Growing until the rate stops growing or a queue builds.
    Startup {
        /// The bottleneck when the rate last grew by a quarter.
        best: f64,
        /// Round trips since then.
        flat_rounds: u8,
        /// Feedback for this counter ends the round trip.
        round_end: u64,
    },
    /// Emptying the queue startup built.
    Drain,
    /// Emptying the queue a radio that got slower built: at `gain`, from `since` until the
    /// round trips show the queue gone (at least a round trip later), or `until` at the
    /// latest.
    Unload {
        since: Timestamp,
        until: Timestamp,
        gain: f64,
    },
    /// Cruising at the estimate, probing up and draining in turn.
    ProbeBw { phase: usize, since: Timestamp },
}

/// What the sender knows of the path, for reports and the application.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathEstimate {
    /// The bottleneck rate of the path, bits per second (0 before the first sample).
    pub bottleneck_bps: u64,
    /// The rate frames are paced at now, bits per second.
    pub pacing_bps: u64,
    /// The smallest round trip seen lately.
    pub min_rtt: Option<Duration>,
    /// The smoothed round trip.
    pub srtt: Option<Duration>,
    /// Fraction of frames lost lately (random and congestive alike), 0 to 1, as the
    /// receiver found once reordering settled.
    pub loss: f64,
    /// Mean length of a run of consecutive lost frames, at least 1 (1 for independent
    /// losses; a fading radio loses frames in bursts).
    pub loss_burst: f64,
    /// Times the model found the radio slower than its estimate (a queue that stayed) and
    /// started again from what the radio delivered.
    pub slowdowns: u64,
}

/// The sender's path model and pacer.
pub(crate) struct PathModel {
    sent: VecDeque<Sent>,
    /// Counter of `sent[0]`.
    first: u64,
    cumulative: u64,
    /// Sent bytes up to the largest counter acknowledged.
    acked_cumulative: u64,
    anchor: Option<Anchor>,
    min_rtt: Option<(Duration, Timestamp)>,
    srtt: Option<Duration>,
    /// The one-way delays of the frames feedback reports (`OneWay`), on the clock
    /// `one_way_base` sets: the latest, the one before, the smallest lately (over
    /// `MIN_RTT_WINDOW`), and the smallest in this probing cycle. A queue on the path is
    /// how far the latest is above the smallest: the one-way delay shows the queue of
    /// this direction alone, where a round trip also shows the return path's (a narrow
    /// uplink filled with the sticks, acks and feedback read as a downlink queue: 63
    /// slowdowns in 20 s of a 20 Mbit/s download over a 300 kbit/s uplink).
    latest_delay: Option<Duration>,
    prior_delay: Option<Duration>,
    min_delay: Option<(Duration, Timestamp)>,
    cycle_min_delay: Option<Duration>,
    /// The first one-way delay as the two clocks read it: later ones are taken relative
    /// to it (`on_one_way`).
    one_way_base: Option<u32>,
    /// The radio's jitter as the one-way delays show it: the mean of half the absolute
    /// second difference of successive samples (`on_one_way`).
    delay_noise: Duration,
    /// Samples `delay_noise` averages, up to `DELAY_NOISE_SAMPLES`.
    delay_noise_samples: u32,
    /// The last `JITTERED_QUEUE_SAMPLES` one-way delays (`every_recent_delay_over`).
    recent_delays: VecDeque<Duration>,
    samples: VecDeque<f64>,
    /// Counters spanned and frames arrived over about the last `LOSS_HORIZON` (older
    /// samples fading out): the loss is their ratio. Reordering moves frames between
    /// samples, by up to a video frame's burst; summed over a second these moves cancel,
    /// where an average of per-sample ratios would keep them.
    loss_counters: f64,
    loss_arrived: f64,
    /// What the radio loses on the air, not at a full queue: rate samples scale what
    /// arrived up by it.
    air: AirLoss,
    /// What the receiver found lost once reordering settled (`FeedbackBody::lost`), over
    /// about the last `LOSS_HORIZON`: counters, lost counters and runs of them, fading as
    /// the sums above. This is the loss reported to the rest of the link (forward error
    /// correction sizes its parity from it): the ratio above swings with the reordering
    /// still outstanding at each feedback (a video frame's burst, jittered, is reported
    /// before all of it arrived, then repaid at the next), between about 0 and twice a 1 %
    /// radio's loss; this one does not.
    settled: Settled,
    /// The last feedback's cumulative figures (counters judged, lost, loss runs), and when
    /// it came.
    settled_from: Option<(u64, u64, u64, Timestamp)>,
    phase: Phase,
    /// How far the last cycle's smallest one-way delay stayed above the minimum: a queue the
    /// cycle left standing, drained by a longer DOWN phase.
    standing_queue: Duration,
    /// The bottleneck estimate when the current cycle's probe began.
    probe_base: f64,
    /// The probes whose samples are still to come, oldest first (at most two: the next
    /// probe may start before the last one's feedback is all in).
    probes: VecDeque<Probe>,
    /// Since when every round trip has shown a queue (`PERSISTENT_QUEUE_THRESHOLD`), if
    /// the latest does.
    queue_since: Option<Timestamp>,
    /// Since when every round trip has shown a queue (as `queue_since`, but not restarted
    /// when cruising starts; on a jittery path, every `JITTERED_QUEUE_SAMPLES` in a row):
    /// the radio has been busy since then.
    busy_since: Option<Timestamp>,
    /// Slowdowns found (`PathEstimate::slowdowns`).
    slowdowns: u64,
    /// Counters up to this one were sent while the application had nothing more: rate
    /// samples that end at or before it may only raise the estimate.
    app_limited_until: Option<u64>,
    /// The size of the frames sent lately: up at once to a larger frame, down by a 64th of
    /// the difference for each smaller one (a data sender's few small frames, its probes
    /// in a fade, do not take it under half a full frame).
    frame_bytes: f64,
    /// How many times less often than usual the receiving side of this end sends acks and
    /// feedback (`return_scale`), and when it last grew.
    return_scale: f64,
    return_scale_grew: Timestamp,
    /// What the last growth set `return_scale` to: a queue found below it means the decay
    /// went too far.
    return_scale_set: f64,
    /// The least `return_scale` decays to (`RETURN_FLOOR_MARGIN`).
    return_floor: f64,
    /// Since when every one-way delay has shown this end's frames queued (over the jitter
    /// bound alone: `on_return_queue`), if the latest does.
    return_queue_since: Option<Timestamp>,
    /// The most the jitter (`jitter`) read at a feedback that showed this end's frames
    /// not queued, fading (`CALM_JITTER_FADE`): what a deep queue of them is judged
    /// against (`on_return_queue`).
    calm_jitter: Duration,
    /// Whether thinning the returns shortens this end's queue where no rule above sees it
    /// (`on_return_queue`).
    return_trial: ReturnTrial,
    /// Startup's train, which measures the radio's rate from a burst's spread.
    train: StartupTrain,
    /// Bytes sent (`cumulative`) when the train's reading entered the estimate at its
    /// share: Startup's confirming burst counts from there (`startup_confirming`).
    confirm_from: Option<u64>,
    /// Since when every round trip has shown a queue on the return path, if the latest
    /// does (`on_return_path`).
    return_path_since: Option<Timestamp>,
    /// ...for a minimum round trip (and 10 ms), as of the latest feedback: then the in-flight cap
    /// is the tight one, and the sender's rate falls with the longer round trip until the
    /// return path carries its acks and feedback (the peer thins them meanwhile).
    return_path_full: bool,
    /// This end sends no video or storage data now (`set_returns_only`).
    returns_only: bool,
    /// The frames each feedback frame reports, a moving average (the peer reports less
    /// often where it thins its feedback: `return_scale`), and the last feedback's count...
    frames_per_feedback: f64,
    reported_frames: Option<u64>,
    /// ...and when it came.
    feedback_at: Option<Timestamp>,
    tokens: f64,
    refilled: Timestamp,
}

/// Going down at 3/4 of the rate for as long as the probe went up at 5/4 takes back what
/// the probe put in the queue. A `queue` found standing (through the whole last cycle, or
/// for a round trip while cruising) is drained as well: at a quarter under the rate, that
/// takes four times as long as the queue is deep (at most three more probe lengths).
fn down_length(queue: Duration) -> Duration {
    UP_LENGTH + (queue * 4).min(UP_LENGTH * 3)
}

fn wrapping_us(later: u32, earlier: u32) -> u32 {
    later.wrapping_sub(earlier)
}

/// How many times less often storage acks go than unthinned, at the return scale `scale`
/// (`PathModel::return_scale`): the scale, and twice it from a scale of 2 up (32 at the
/// most). Acks thin faster than feedback: each carries every range held, so a sparser one
/// costs the sender only time, while feedback is what the peer's model is made of (at 16
/// times, a 40 Mbit/s download's acks alone took 31 kbit/s of a 100 kbit/s uplink; a
/// scale let grow past 16 instead held feedback at its sparsest for seconds after a
/// startup, and the downlink's telemetry p99 rose by 7 ms on a 150 kbit/s uplink).
pub(crate) fn ack_scale(scale: f64) -> f64 {
    let scale = scale.max(1.0);
    scale * scale.min(2.0)
}

/// `factor` to the power of `elapsed / 100 ms`, without `powf` (which `core` lacks): the
/// whole steps multiplied out, and the part of a step left as `e^(f ln factor)` by the
/// first terms of the two series (exact to 1e-9 for a factor near 1; taken linearly
/// instead, 0.97 at every 16 ms feedback was 0.4 % off after a second).
fn per_100ms(factor: f64, elapsed: Duration) -> f64 {
    let steps = elapsed.as_secs_f64() / 0.1;
    // Past a thousand steps every factor used here is nothing.
    let whole = steps.min(1000.0) as u32;
    let mut product = 1.0;
    for _ in 0..whole {
        product *= factor;
    }
    let z = (factor - 1.0) / (factor + 1.0);
    let ln = 2.0 * z * (1.0 + z * z / 3.0 + z * z * z * z / 5.0);
    let y = (steps - f64::from(whole)).min(1.0) * ln;
    product * (1.0 + y * (1.0 + y / 2.0 * (1.0 + y / 3.0)))
}

impl PathModel {
    /// Fraction of frames lost lately, 0 to 1.
    fn loss(&self) -> f64 {
        if self.loss_counters <= 0.0 {
            return 0.0;
        }
        (1.0 - self.loss_arrived / self.loss_counters).clamp(0.0, 1.0)
    }

    pub(crate) fn new(now: Timestamp) -> Self {
        PathModel {
            sent: VecDeque::with_capacity(INITIAL_HISTORY),
            first: 0,
            cumulative: 0,
            acked_cumulative: 0,
            anchor: None,
            min_rtt: None,
            srtt: None,
            latest_delay: None,
            prior_delay: None,
            min_delay: None,
            cycle_min_delay: None,
            one_way_base: None,
            delay_noise: Duration::ZERO,
            delay_noise_samples: 0,
            recent_delays: VecDeque::with_capacity(JITTERED_QUEUE_SAMPLES),
            samples: VecDeque::with_capacity(RATE_WINDOW),
            loss_counters: 0.0,
            loss_arrived: 0.0,
            air: AirLoss::default(),
            settled: Settled::default(),
            settled_from: None,
            phase: Phase::Startup {
                best: 0.0,
                flat_rounds: 0,
                round_end: 0,
            },
            standing_queue: Duration::ZERO,
            probe_base: 0.0,
            probes: VecDeque::new(),
            queue_since: None,
            busy_since: None,
            slowdowns: 0,
            app_limited_until: None,
            frame_bytes: 0.0,
            return_scale: 1.0,
            return_scale_grew: now,
            return_scale_set: 1.0,
            return_floor: 1.0,
            return_queue_since: None,
            calm_jitter: Duration::ZERO,
            return_trial: ReturnTrial::new(now),
            train: StartupTrain::new(),
            confirm_from: None,
            returns_only: false,
            return_path_since: None,
            return_path_full: false,
            frames_per_feedback: f64::from(FEEDBACK_EVERY),
            reported_frames: None,
            feedback_at: None,
            tokens: INITIAL_BURST_BYTES,
            refilled: now,
        }
    }

    /// A bottleneck sample, bits per second, into the maximum filter (the newest
    /// `RATE_WINDOW`).
    fn push_sample(&mut self, rate: f64) {
        if self.samples.len() == RATE_WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(rate);
    }

    /// The bottleneck estimate, bits per second.
    fn bottleneck(&self) -> f64 {
        self.samples.iter().copied().fold(0.0, f64::max)
    }

    fn gain(&self) -> f64 {
        match self.phase {
            Phase::Startup { .. } => STARTUP_GAIN,
            Phase::Drain => 1.0 / STARTUP_GAIN,
            Phase::Unload { gain, .. } => gain,
            Phase::ProbeBw { phase, .. } => PROBE_GAINS[phase],
        }
    }

    /// The pacing rate, bits per second: never below [`MIN_PACING_BPS`].
    fn pacing_rate(&self) -> f64 {
        if let Some(rate) = self.startup_confirming() {
            return rate;
        }
        let bottleneck = self.bottleneck();
        if bottleneck <= 0.0 {
            return INITIAL_RATE_BPS;
        }
        let rate = (self.gain() * bottleneck).max(MIN_PACING_BPS);
        if matches!(self.phase, Phase::Startup { .. }) {
            // Startup never goes slower than it began (as BBR's pacing never decreases
            // before it found the bandwidth). A sender with little to send at first (a
            // handshake's messages, the storage unlock, before the download) has samples
            // of a hundred kbit/s that say nothing of the path, and startup grows from its
            // estimate: from those it took two round trips more to reach the radio
            // (300 ms on a 75 ms path).
            rate.max(INITIAL_RATE_BPS)
        } else {
            rate
        }
    }

    /// Startup's pacing rate after a train or scout read the radio at C, more than Startup
    /// would have paced at, until samples show the radio faster than that by Startup's
    /// growth: a burst at Startup's gain times the reading's share (1.44 C) for
    /// `UP_LENGTH`, then C. The burst's samples a round trip later say whether the radio
    /// carries more than C (they read 1.25 C or more, and Startup grows from them) or not
    /// (they read C, and the burst's queue ends Startup). Paced from those samples at
    /// Startup's gain instead, the rest of the round trip went at 2.885 C before the queue
    /// showed (through the proxy, 20 Mbit/s, 75 ms, 10 % loss: 57 Mbit/s for 140 ms, and
    /// telemetry's maximum 216 ms in two runs of sixteen); at 1.44 C for the whole round
    /// trip, it queued up to 0.44 of one. `None` outside that part of Startup.
    fn startup_confirming(&self) -> Option<f64> {
        if !matches!(self.phase, Phase::Startup { .. }) {
            return None;
        }
        let reading = self.train.reading()?;
        let from = self.confirm_from?;
        if self.bottleneck() >= STARTUP_GROWTH * reading {
            return None;
        }
        let burst = STARTUP_GAIN * TRAIN_SHARE * reading;
        let burst_bytes = burst / 8.0 * UP_LENGTH.as_secs_f64();
        let sent = self.cumulative.saturating_sub(from) as f64;
        Some(if sent < burst_bytes { burst } else { reading })
    }

    /// Bytes sent and not yet covered by feedback.
    fn in_flight(&self) -> u64 {
        self.cumulative - self.acked_cumulative
    }

    /// The most the path should hold, plus what the receiver holds before it reports. In
    /// startup, two bandwidth-delay products, so the rate can double each round trip
    /// (startup ends as soon as a queue builds). Otherwise, while the latest round trip
    /// shows no queue, two BDPs: the pacer sets the rate, and the cap only lets sending go
    /// on while feedback is late or lost (a fade on the return path), which a tighter cap
    /// turned into a stall of the whole path. Once a round trip shows a queue (the radio
    /// got slower, or a probe filled it), the BDP times the pacing gain when probing up (at
    /// least 1) and one feedback interval (one run of them where the path loses in runs):
    /// enough to keep the radio busy and no more, so the queue drains and stays a few
    /// milliseconds long (a queue is what telemetry waits behind). No limit before the
    /// first round trip is known.
    fn in_flight_cap(&self) -> u64 {
        let bottleneck = self.bottleneck();
        let Some((rtt, _)) = self.min_rtt.filter(|_| bottleneck > 0.0) else {
            return u64::MAX;
        };
        let bytes_per_s = bottleneck / 8.0;
        // Feedback comes back up to the radio's jitter later than the minimum round trip,
        // and what is in flight meanwhile keeps the radio busy too. A few milliseconds of it
        // the room below holds (a feedback interval is 10 ms); beyond a queue that counts
        // (`PERSISTENT_QUEUE_THRESHOLD`), the round trip is the longer by the jitter.
        let bdp = bytes_per_s * (rtt + self.excess_jitter()).as_secs_f64();
        // What the receiver holds before it reports: `FEEDBACK_DELAY` of data or
        // `FEEDBACK_EVERY` frames, whichever comes first...
        let interval = bytes_per_s * FEEDBACK_DELAY.as_secs_f64();
        let frames = f64::from(FEEDBACK_EVERY) * FRAME_BYTES;
        // ...and their sum: room for a lost feedback frame as well. Where the return path is
        // narrow the receiver reports less often (`return_scale`): then half as much again
        // as the frames a feedback frame actually reports. (Not the time between them: a
        // run of lost feedback frames lengthens that, and the room above keeps what a run
        // needs already.)
        let reported = 1.5 * self.frames_per_feedback * FRAME_BYTES;
        let unreported = (interval + frames).max(reported);
        let cap = if matches!(self.phase, Phase::Startup { .. }) {
            // At least what a round trip at the initial rate sends (see `pacing_rate`).
            let initial = INITIAL_RATE_BPS / 8.0 * rtt.as_secs_f64();
            STARTUP_CAP_GAIN * bdp.max(initial) + unreported
        } else if self.queue_since.is_none() && !self.return_path_full {
            let late = self.gain().max(LATE_FEEDBACK_CAP_GAIN) * bdp + unreported;
            // Room for a run of lost feedback frames twice the path's usual run (each
            // frame reports `FEEDBACK_DELAY` of data).
            let run = FEEDBACK_DELAY.as_secs_f64() * LATE_FEEDBACK_RUNS * self.settled.burst();
            late.max(bytes_per_s * run)
        } else {
            let busy = self.gain().max(1.0) * bdp;
            let room = if self.reported_loss() >= LOST_FEEDBACK_ROOM_LOSS {
                unreported
            } else {
                // A radio that got slower fills its queue up to the cap before the model
                // finds it (the old rate's BDP is twice a halved radio's): the room for a
                // lost feedback frame was 20 ms of a halved 10 Mbit/s radio's queue.
                interval.max(frames) + FRAME_BYTES
            };
            // And room for one run of lost feedback frames as long as the path's usual
            // run: a radio that loses in bursts loses the feedback in runs too (a run of
            // eight is 80 ms of feedback), and the sender stopped at the cap until the run
            // was over (25 to 90 ms at a time on a 5 Mbit/s radio losing 5 % in bursts of
            // eight). Where losses are single, no more than the room above.
            busy + room.max(interval * self.settled.burst())
        };
        cap as u64
    }

    /// What the pacer lets through at once: `BURST` at the pacing rate, at least two frames.
    fn burst_bytes(&self) -> f64 {
        (self.pacing_rate() / 8.0 * BURST.as_secs_f64()).max(MIN_BURST_BYTES)
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = now.saturating_since(self.refilled).as_secs_f64();
        self.refilled = now;
        let rate = self.pacing_rate() / 8.0;
        let cap = self.burst_bytes();
        // Refilling never takes away what was there (the initial burst) before the first
        // round trip is known. After it, the burst is the pacer's: the initial burst kept
        // through a handshake's small messages went out at the start of a download as ten
        // frames at once, 22 ms of queue on a 5 Mbit/s radio, and that queue ended
        // startup at the handshake's rate. Nor while Startup's train goes (`send_train`).
        let ceiling = if self.min_rtt.is_some() && !self.train.sending(now) {
            cap
        } else {
            cap.max(self.tokens)
        };
        self.tokens = (self.tokens + rate * elapsed).min(ceiling);
    }

    /// Does the latest round trip show a queue building: above the minimum by more than
    /// `QUEUE_THRESHOLD`, a quarter, or the jitter (`jitter`)? Then a rate sample counts
    /// only what arrived. A quarter of a long round trip: counting only what arrived on a
    /// lossy radio reads its loss as a slower radio (with 10 ms at 75 ms one way, 5 Mbit/s
    /// at 10 % loss went from 0.95 of the radio to 0.89 to 0.93 in the transport bench,
    /// seeds 1 to 3).
    fn queue_building(&self) -> bool {
        self.queue_now() > (self.min_rtt() / 4).max(QUEUE_THRESHOLD).max(self.jitter())
    }

    /// Has every round trip for a whole minimum round trip (and at least two feedback
    /// intervals) shown a queue? A probe's queue, a key frame's burst or a late feedback
    /// frame raise single samples; a radio that got slower raises them all.
    fn queue_persists(&self, now: Timestamp) -> bool {
        let span = self.min_rtt().max(FEEDBACK_DELAY);
        self.queue_since
            .is_some_and(|since| now.saturating_since(since) >= span)
    }

    /// How far above the minimum the radio's jitter alone takes a round trip often enough
    /// that a queue must exceed it to count as one: two and a half times its deviation.
    /// With three, telemetry's p99 on a saturated 10 Mbit/s radio with 20 ms of jitter each
    /// way reached the issue's bound (jitter and 15 ms over the one-way delay); with two,
    /// the radio's jitter still read as a queue there, and video fell to 1.9 to 4.5 Mbit/s.
    fn jitter(&self) -> Duration {
        self.delay_noise * 5 / 2
    }

    /// The jitter beyond the few milliseconds every threshold tolerates anyway (on a clean
    /// 5 Mbit/s radio the round trips of a full frame and of the one behind it in a burst
    /// differ by 2.2 ms, and `jitter` shows 2 ms).
    fn excess_jitter(&self) -> Duration {
        self.jitter().saturating_sub(PERSISTENT_QUEUE_THRESHOLD)
    }

    /// The minimum round trip, zero before any.
    fn min_rtt(&self) -> Duration {
        self.min_rtt.map_or(Duration::ZERO, |(r, _)| r)
    }

    /// How far the latest one-way delay is above the minimum: the queue on the path.
    fn queue_now(&self) -> Duration {
        match (self.latest_delay, self.min_delay) {
            (Some(latest), Some((min, _))) => latest.saturating_sub(min),
            _ => Duration::ZERO,
        }
    }

    /// Does a queue show that ends startup: the latest round trip above the minimum by more
    /// than `STARTUP_QUEUE_THRESHOLD` and a quarter of it, or the last two by more than the
    /// threshold? Not the latest alone by the threshold alone: in real time a single round
    /// trip a few milliseconds late (a process not scheduled at once) ended startup early
    /// (through `rotorlink proxy`, 5 Mbit/s, 75 ms one way, 20 % loss: 0.89 of the radio
    /// over six runs, 0.91 now). Nor the latest by a quarter alone: on a 150 ms round trip
    /// startup then queued up to 280 ms of the radio before it ended. On a short path,
    /// where a quarter is under the threshold, the latest alone ends it, as before (waiting
    /// for a second raised the halving radio's telemetry p99 from 18.4 to 21.2 ms).
    fn startup_queue(&self) -> bool {
        let min = self.min_rtt();
        let base = self.min_delay();
        let over = |delay: Option<Duration>, threshold: Duration| {
            delay.is_some_and(|delay| delay.saturating_sub(base) > threshold)
        };
        let threshold = STARTUP_QUEUE_THRESHOLD.max(self.jitter());
        if self.excess_jitter() > Duration::ZERO {
            // The jitter has a mean as well as a spread, and both round trips of a pair
            // were above the minimum by more than the jitter one time in two (100 Mbit/s,
            // 75 ms one way, 10 ms of jitter: Startup ended at 4 to 9 Mbit/s).
            return over(self.latest_delay, threshold.max(min / 4))
                || self.every_recent_delay_over(threshold);
        }
        over(self.latest_delay, threshold.max(min / 4))
            || (over(self.latest_delay, threshold) && over(self.prior_delay, threshold))
    }

    /// Are the last `JITTERED_QUEUE_SAMPLES` one-way delays all above the minimum by more
    /// than `threshold`? The smallest of several is near the minimum unless a queue raised
    /// them all.
    fn every_recent_delay_over(&self, threshold: Duration) -> bool {
        self.recent_delays.len() == JITTERED_QUEUE_SAMPLES
            && self
                .recent_delays
                .iter()
                .min()
                .is_some_and(|delay| delay.saturating_sub(self.min_delay()) > threshold)
    }

    /// The smallest one-way delay lately (on `one_way_base`'s clock), zero before any.
    fn min_delay(&self) -> Duration {
        self.min_delay.map_or(Duration::ZERO, |(d, _)| d)
    }

    /// Is the model probing for more rate (startup, or the up phase of a cycle), with a
    /// first estimate to probe from?
    pub(crate) fn probing(&self) -> bool {
        if self.samples.is_empty() {
            return false;
        }
        match self.phase {
            Phase::Startup { .. } => true,
            Phase::Drain | Phase::Unload { .. } => false,
            Phase::ProbeBw { phase, .. } => phase == UP,
        }
    }

    /// Is the path holding as much as the model allows, so paced frames wait for feedback?
    pub(crate) fn in_flight_full(&self) -> bool {
        self.in_flight() >= self.in_flight_cap()
    }

    /// How long to wait for feedback before asking for it with a probe, once the path is
    /// full: two of the receiver's feedback intervals (200 ms before any round trip is
    /// known). The cap already waited out the round trip (it leaves two BDPs of room), so
    /// feedback is overdue; each probe is a tiny frame that brings one feedback frame back,
    /// and on a radio that loses datagrams in runs it takes a few to get one through.
    pub(crate) fn probe_interval(&self) -> Duration {
        match self.srtt {
            Some(_) => FEEDBACK_DELAY * 2,
            None => Duration::from_millis(200),
        }
    }

    /// May a paced frame go now?
    pub(crate) fn may_send(&mut self, now: Timestamp) -> bool {
        self.refill(now);
        self.tokens >= 0.0 && self.in_flight() < self.in_flight_cap()
    }

    /// May Startup send its train or scout (`startup_train`)? Only on a path whose round
    /// trip is known and long, and whose jitter is within what every threshold tolerates:
    /// a radio's jitter moves each frame of a train by more than the train's spread (on a
    /// 20 Mbit/s radio 15 ms away with 20 ms of jitter, the reports skipped past both
    /// trains tried, and the download lost 3 % to their bursts).
    fn train_allowed(&self) -> bool {
        matches!(self.phase, Phase::Startup { .. })
            && self.min_rtt.is_some_and(|(rtt, _)| rtt >= TRAIN_MIN_RTT)
            && self.excess_jitter() == Duration::ZERO
    }

    /// Does Startup want a download's train (`train_bytes` of paced data)? Once the scout
    /// found the radio too fast for it to measure, or at once on a path of
    /// `UNSCOUTED_TRAIN_MIN_RTT` or more while the radio is not scouted yet (nothing sent,
    /// or a scout out or lost: the download does not wait for it).
    pub(crate) fn train_wanted(&self) -> bool {
        self.train_allowed()
            && (self.train.armed() || (self.train.awaiting_scout() && self.long_path()))
    }

    /// Does Startup want a train of padding (an aircraft with nothing paced to send)?
    /// Once the scout found the radio too fast for it to measure, or unscouted on a path
    /// of `UNSCOUTED_TRAIN_MIN_RTT` or more once the jitter is measured
    /// (`PADDING_TRAIN_NOISE_SAMPLES`).
    pub(crate) fn padding_train_wanted(&self) -> bool {
        self.train_allowed()
            && (self.train.armed()
                || (self.train.unscouted()
                    && self.long_path()
                    && self.delay_noise_samples >= PADDING_TRAIN_NOISE_SAMPLES))
    }

    /// Is the round trip known and at least `UNSCOUTED_TRAIN_MIN_RTT`?
    fn long_path(&self) -> bool {
        self.min_rtt
            .is_some_and(|(rtt, _)| rtt >= UNSCOUTED_TRAIN_MIN_RTT)
    }

    /// Does Startup want its scout, before a train? On a path shorter than
    /// `UNSCOUTED_TRAIN_MIN_RTT`: for a download, at once (it waits on it), and on an
    /// aircraft with nothing paced to send (`padding` true) once the jitter is measured
    /// (`PADDING_TRAIN_NOISE_SAMPLES`).
    pub(crate) fn scout_wanted(&self, padding: bool) -> bool {
        self.train_allowed()
            && self.train.unscouted()
            && !self.long_path()
            && (!padding || self.delay_noise_samples >= PADDING_TRAIN_NOISE_SAMPLES)
    }

    /// The scout goes out from the next frame (`scout_wanted`).
    pub(crate) fn send_scout(&mut self, now: Timestamp) {
        self.train.begin_scout(now);
    }

    /// The scout's next frame, which the caller sends now, out of the pacer's order.
    pub(crate) fn scout_frame(&mut self, now: Timestamp) -> Option<ScoutFrame> {
        self.train.scout_frame(now)
    }

    /// A train's worth of bytes: `TRAIN_BYTES` over the fraction of frames that arrive, so
    /// that as many reports as on a lossless radio land within what arrives of it. At
    /// 20 % loss a 24-frame train's arrivals held two reports, and a lost report made
    /// the next skip past it: through `rotorlink sim` (20 Mbit/s, 75 ms), three padding
    /// trains in a row measured nothing on 1 seed in 12, and Startup then paced at twice
    /// the radio for a round trip (telemetry waited 177 ms).
    pub(crate) fn train_bytes(&self) -> usize {
        let arriving = 1.0 - self.reported_loss().min(TRAIN_MAX_LOSS);
        let bytes = TRAIN_BYTES as f64 / arriving;
        // Rounded up (`core` has no `ceil`).
        let whole = bytes as usize;
        whole + usize::from((whole as f64) < bytes)
    }

    /// The sender has the train's worth of storage data waiting, or padding to send
    /// (`train_wanted`): the pacer lets it through at once. (A train cut short measures
    /// nothing: a video frame's dozen fragments sent at once as one only queued, 150 ms of
    /// it on a saturated 5 Mbit/s radio 75 ms away.)
    pub(crate) fn send_train(&mut self) {
        if self.train_wanted() && self.train.begin() {
            self.tokens = self.tokens.max(self.train_bytes() as f64);
        }
    }

    /// Is Startup's train going out now (`send_train`)?
    pub(crate) fn train_sending(&self, now: Timestamp) -> bool {
        self.train.sending(now)
    }

    /// Does the in-flight cap alone hold paced frames back, kept tight for a queued return
    /// path (`return_path_full`)? Then the sender, not the radio, limits what the next rate
    /// samples show, as when it runs out of data (`on_idle`).
    pub(crate) fn held_for_return_path(&self) -> bool {
        self.return_path_full && self.tokens >= 0.0 && self.in_flight() >= self.in_flight_cap()
    }

    /// When a paced frame goes although the tokens are spent: `PACED_MAX_WAIT` (or two
    /// frames' time at the pacing rate, if longer) after `last_paced`, the last frame that
    /// asked for prompt feedback, while the in-flight cap has room. `None` while the tokens
    /// last or the cap is full.
    ///
    /// Unpaced frames (acks, feedback, sticks, telemetry) are charged to the pacer so that
    /// paced ones leave them room, and on its own a frame the pacer sends waits no longer
    /// than this. But unpaced frames can outrun the pacing rate: a remote downloading at
    /// 800 Mbit/s over loopback sent 1.5 Mbit/s of acks, which ask for no feedback, so its
    /// estimate of the uplink sat in Drain at a third of that, and the end-of-flight request
    /// behind them never went (`tests/udp.rs`). A paced frame now and then also asks the
    /// feedback that corrects the estimate.
    pub(crate) fn release_at(&self, last_paced: Timestamp) -> Option<Timestamp> {
        if self.tokens >= 0.0 || self.in_flight_full() {
            return None;
        }
        let frames = Duration::from_secs_f64(2.0 * self.frame_bytes * 8.0 / self.pacing_rate());
        Some(last_paced + PACED_MAX_WAIT.max(frames))
    }

    /// When a paced frame may go next, if the pacer holds it back now.
    pub(crate) fn next_send_at(&self) -> Option<Timestamp> {
        if self.tokens >= 0.0 {
            return None;
        }
        let rate = self.pacing_rate() / 8.0;
        // Rounded up to the next microsecond (the clock's resolution): a wait rounded down
        // to zero would wake the caller into the same refusal for ever.
        let wait_us = (-self.tokens / rate * 1e6).min(1e6) as u64 + 1;
        Some(self.refilled + Duration::from_micros(wait_us))
    }

    /// The application had nothing more to send while the pacer would have let it.
    /// (An idle sender saves up no more than the pacer's burst: `refill` caps the tokens.)
    pub(crate) fn on_idle(&mut self, next_counter: u64) {
        self.app_limited_until = Some(next_counter);
        if let (Phase::ProbeBw { phase: UP, .. }, Some(probe)) =
            (self.phase, self.probes.back_mut())
        {
            probe.idle = true;
        }
    }

    /// A frame with `counter` and `bytes` went out (paced or not: every byte counts).
    pub(crate) fn on_sent(&mut self, now: Timestamp, counter: u64, bytes: usize) {
        self.refill(now);
        self.train.on_sent(now, counter);
        self.tokens -= bytes as f64;
        self.cumulative += bytes as u64;
        let bytes_f = bytes as f64;
        self.frame_bytes = if bytes_f >= self.frame_bytes {
            bytes_f
        } else {
            self.frame_bytes - (self.frame_bytes - bytes_f) / 64.0
        };
        if self.sent.is_empty() {
            self.first = counter;
        } else if counter != self.first + self.sent.len() as u64 {
            // Counters are consecutive within a session; start again if not.
            self.sent.clear();
            self.first = counter;
        }
        if self.sent.len() == HISTORY {
            self.sent.pop_front();
            self.first += 1;
        }
        self.sent.push_back(Sent {
            at: now,
            cumulative: self.cumulative,
        });
    }

    fn lookup(&self, counter: u64) -> Option<Sent> {
        let i = counter.checked_sub(self.first)?;
        self.sent.get(usize::try_from(i).ok()?).copied()
    }

    /// A new session: its counters start again. What was learnt of the path stays.
    pub(crate) fn restart_counters(&mut self) {
        self.sent.clear();
        self.first = 0;
        self.cumulative = 0;
        self.acked_cumulative = 0;
        self.anchor = None;
        self.air.restart_counters();
        self.reported_frames = None;
        self.probes.clear();
        self.app_limited_until = None;
        self.train.restart_counters();
        // The confirming burst counts on from the new counters.
        self.confirm_from = self.confirm_from.map(|_| 0);
    }

    /// The receiver's feedback arrived (authenticated).
    pub(crate) fn on_feedback(&mut self, now: Timestamp, f: &FeedbackBody) {
        let Some(sent) = self.lookup(f.largest) else {
            return;
        };
        if f.largest < self.anchor.map_or(0, |a| a.largest) {
            return; // older than what we already took
        }
        self.acked_cumulative = self.acked_cumulative.max(sent.cumulative);
        self.on_settled(now, f);
        // Frames before the largest reported are never looked up again: the history holds
        // what is in flight, not the whole session.
        while self.first < f.largest && self.sent.pop_front().is_some() {
            self.first += 1;
        }
        let delay = Duration::from_micros(u64::from(f.ack_delay_us));
        // A round trip shorter than the clock's resolution (or than the receiver's stated
        // delay) is still a sample: the shortest one, not none. Skipping it would keep an
        // old, longer minimum forever on a path that is fast.
        let rtt = now
            .saturating_since(sent.at)
            .saturating_sub(delay)
            .max(MIN_RTT_SAMPLE);
        self.on_rtt(now, rtt);
        // The train's frames queue behind one another: their delays are no queue of the
        // radio's.
        if !self.train.covers(f.largest) {
            self.on_one_way(now, f.received_at_us, sent.at);
        }
        self.on_return_path(now, rtt);
        self.on_return_queue(now);
        if let Some(before) = self.reported_frames.replace(f.frames) {
            let frames = f.frames.saturating_sub(before) as f64;
            self.frames_per_feedback = (self.frames_per_feedback * 7.0 + frames) / 8.0;
        }
        self.feedback_at = Some(now);
        self.air.on_feedback(now, f, self.queue_since.is_none());
        self.advance_cycle(now);
        let here = Anchor {
            largest: f.largest,
            frames: f.frames,
            bytes: f.bytes,
            received_at_us: f.received_at_us,
            sent_cumulative: sent.cumulative,
            sent_at: sent.at,
            at: now,
        };
        self.probe_sample(&here);
        self.train_sample(&here);
        let Some(from) = self.anchor else {
            self.anchor = Some(here);
            return;
        };
        let span_us = wrapping_us(here.received_at_us, from.received_at_us);
        let min_rtt = self.min_rtt();
        // A sample spans at least a round trip, and once past startup 30 ms: the radio's
        // jitter (a few ms) must not turn into a rate the maximum filter would keep.
        let min_span = if matches!(self.phase, Phase::Startup { .. }) {
            // Startup follows its own growth as soon as feedback shows it: the rate it
            // paces at is a sample's ceiling anyway (the send span).
            MIN_STARTUP_SAMPLE_SPAN
        } else {
            min_rtt.max(MIN_SAMPLE_SPAN).max(self.excess_jitter() * 10)
        };
        if here.largest <= from.largest
            || (u64::from(span_us) < min_span.as_micros() as u64
                && !self.radio_lost_much_of_its_rate(&from, &here, span_us))
        {
            return;
        }
        self.anchor = Some(here);
        if u64::from(span_us) > outage_span(min_rtt).as_micros() as u64 {
            // Nothing arrived for many round trips: the span measured an outage (the radio
            // out of reach, or holding frames in its retries), not the radio's rate. Start
            // the next sample here rather than pin the estimate to a trickle that the pacer
            // would then take minutes to climb out of (its samples come as slowly as it
            // sends).
            return;
        }
        let counters = (here.largest - from.largest) as f64;
        let arrived = here.frames.saturating_sub(from.frames) as f64;
        let fade = 1.0 - (f64::from(span_us) / 1e6 / LOSS_HORIZON.as_secs_f64()).min(1.0);
        self.loss_counters = fade * self.loss_counters + counters;
        self.loss_arrived = fade * self.loss_arrived + arrived;
        let (sample, sent_rate) = self.rate_sample(&from, &here, span_us);
        let queueing = self.queue_building();
        // The sender went idle within the span: the sample shows what it offered, not what
        // the path carries, and may only raise the estimate, unless a queue proves the
        // path was full anyway.
        let app_limited = self.idle_since(&from) && !queueing;
        // A queue in the round trips ends startup (below) whatever this sample shows, an
        // idle sender's too: its bursts (a video frame's, at startup's gain) queue as well.
        // Skipping those samples let startup run on for 50 ms more on a 75 ms path and
        // queue 40 ms of the radio (`rotorlink sim --seed 3 --duration 30s --rate 10mbit
        // --delay 75ms`, with `JITTERED_QUEUE_SAMPLES`: telemetry p99 106 ms, 88 now).
        // But a sender that went idle within the span and sent under `MIN_PACING_BPS` over
        // it (a handshake's messages) cannot have built a queue on any radio it paces for:
        // what looks like one (a late round trip, arrivals spread out) is a peer that took
        // the frames late (busy stretching a key for the storage unlock, or not
        // scheduled), and only a queue that stays a whole round trip ends its startup.
        // Ended at the 110 kbit/s of the handshake's messages, the estimate took seconds of
        // probing to reach the radio's rate (real UDP, 20 Mbit/s: a download at 0.72 to
        // 0.80 of it in three runs of nine).
        let believable = !self.idle_since(&from) || sent_rate >= MIN_PACING_BPS;
        // Or the return path stayed queued: Startup's own acks and feedback filling a
        // narrow uplink (a 20 Mbit/s download's are 530 kbit/s), which the one-way delay
        // of this direction does not show.
        // Not at a report of the train's frames: their one-way delays are kept out, and the
        // latest the model has is older than the train, a frame a busy peer stamped late
        // (the storage unlock's key stretching) or one before it that queued. Startup
        // ended at its telemetry's rate then, and the train, stopped with it, measured
        // nothing (through `rotorlink proxy`, 5 Mbit/s, 15 ms, with trains from 20 ms
        // round trips: 0.9 Mbit/s, a second to climb to the radio).
        let queued = (self.startup_queue()
            && !self.train.covers(here.largest)
            && (believable || self.queue_persists(now)))
            || self.return_path_queued(now);
        // What the radio carried over the span, where the sender kept it busy: the most a
        // reading may add to the estimate when this span's queue ends Startup. Not over a
        // span the sender went idle in: the queue behind the train ends Startup there
        // (the download not yet begun), and bounded by that span the estimate stayed at
        // half the radio (0.87 of a 20 Mbit/s radio 75 ms away, 20 % loss, through the
        // proxy).
        let radio_rate = self.radio_rate(&from, &here, span_us);
        let carried = if app_limited {
            f64::INFINITY
        } else {
            radio_rate
        };
        if app_limited && sample < self.bottleneck() {
            if queued {
                self.end_startup(here.largest, app_limited, Some(carried));
            }
            return;
        }
        // The radio was busy throughout the span (every round trip since before it began
        // showed a queue): what it carried over the arrival span is its rate now, whoever
        // made the queue, and a rate well under the estimate is a slower radio in any
        // phase. Over the arrival span alone: a span the sender stretched (sending under
        // the radio's rate, its queue draining) must not read as a slower radio; and from
        // every byte sent, so a run of frames lost on the air does not either.
        let busy_throughout = self.busy_throughout(&from);
        let much_slower = busy_throughout
            && self.cycling()
            && !app_limited
            && radio_rate < SLOWER_RADIO * self.bottleneck();
        // Or a queue stayed for a round trip while cruising at the estimate (the queue is
        // not of our own making): the radio got slower, by a little or a lot.
        let cruising = matches!(self.phase, Phase::ProbeBw { phase, .. } if phase >= CRUISE);
        let slowed = much_slower || (self.queue_persists(now) && cruising && !app_limited);
        // While unloading, a radio still busy throughout carries its rate, under the
        // estimate too: the slowdown took that from a span that began before the change
        // (a radio halving from 10 Mbit/s read as 5.5, and the queue of the tenth too
        // many was found only 150 ms later, cruising).
        let unloading_slower = !slowed
            && busy_throughout
            && !app_limited
            && matches!(self.phase, Phase::Unload { .. })
            && radio_rate < self.bottleneck();
        if slowed {
            // What the radio delivers now is the estimate, not the maximum of the last
            // second (nor a probe's, sent before it was found).
            self.samples.clear();
            self.probes.clear();
            self.slowdowns += 1;
        }
        if unloading_slower {
            self.samples.clear();
        }
        // Startup went on after the train's or scout's reading (a radio faster than its
        // next round trip): a span holding their frames reads the radio as they did, and
        // the reading entered the estimate at its share (`train_sample`). Taken whole here
        // it undid that share: a 20 Mbit/s radio 75 ms away was paced at 58 Mbit/s for a
        // round trip before the saturation showed, 150 ms of queue. (Where the train ended
        // Startup, such a span counts.)
        let holds_train = matches!(self.phase, Phase::Startup { .. })
            && self.train.within(from.largest, here.largest);
        // Before the train's own reports measured it (they were lost: at 10 % loss one
        // train in a few), such a span's sample is the train's reading, and above
        // Startup's next round trip it enters as the train's would. Taken whole, Startup
        // paced at 2.885 times the radio for a round trip (through the proxy, 20 Mbit/s,
        // 75 ms, 10 % loss: 54 Mbit/s for 270 ms, the radio's 150 ms queue full, telemetry
        // 225 ms). A slower one counts as any sample: a span reaching back before the
        // train reads less than the radio, and must not end Startup as a train would.
        let read_train = holds_train
            && self.train.reading().is_none()
            && sample > STARTUP_GAIN * self.pacing_rate();
        if read_train {
            self.train.read_by_span(sample);
            self.confirm_reading(sample);
        } else if !(holds_train && self.train.reading().is_some()) {
            self.push_sample(if (slowed || unloading_slower) && busy_throughout {
                radio_rate
            } else {
                sample
            });
        }
        if slowed {
            // And the queue it built goes first, then cruising resumes at the new estimate.
            // After a small correction at the down phase's gain (a quarter under the rate,
            // a queue of q drains in 4 q: no longer, or the radio idles, 4 ms of a 5 Mbit/s
            // radio each time for a round trip more); after a large one at half the rate
            // for a round trip more (it drains in 2 q, and the queue grew all the time the
            // change took to show), until the round trips show it gone.
            let (gain, length) = if much_slower {
                (UNLOAD_GAIN_SLOWER, self.min_rtt() + self.queue_now() * 4)
            } else {
                (PROBE_GAINS[DOWN], self.queue_now() * 4)
            };
            self.phase = Phase::Unload {
                since: now,
                until: now + length,
                gain,
            };
        }
        // Startup ends when the frames of this span arrived spread out over a longer span
        // than they were sent in: the bottleneck is found, and a queue is building (a round
        // trip before the round trips show it; loss does not spread arrivals out, nor does
        // the radio's jitter by half). Or on a shorter queue than the one that makes
        // samples count only what arrived: every millisecond of it is one telemetry waits
        // behind.
        let send_span = here.sent_at.saturating_since(from.sent_at).as_secs_f64();
        // The arrival span less the jitter beyond what every threshold tolerates: the
        // jitter of the span's two ends stretches it as often as it shrinks it, and a
        // stretched one ended startup early (`rotorlink sim --rate 20mbit --delay 15ms
        // --jitter 20ms --video 0`: a download at 14.6 Mbit/s, 17.6 with this).
        let arrival_span = f64::from(span_us) / 1e6 - self.excess_jitter().as_secs_f64();
        // A span with the train in it was sent faster than the radio carries it, on purpose.
        let saturated = believable
            && !app_limited
            && arrival_span > STARTUP_SATURATION * send_span
            && !self.train.within(from.largest, here.largest);
        let queueing = (saturated || queued).then_some(carried);
        self.end_startup(here.largest, app_limited, queueing);
        if !matches!(self.phase, Phase::Startup { .. }) {
            self.train.stop();
        }
    }

    /// The feedback `here` may complete the train's measurement. A radio no faster than
    /// Startup's next round trip would pace at (its gain times the pacing rate): the train
    /// found the bottleneck, and Startup ends there. (The spans that hold the train cannot
    /// end it by their spread; without this, Startup went on at three times a saturated
    /// 5 Mbit/s radio for another round trip.) An estimate from the train so goes no
    /// further than that round trip would have. A faster radio: the estimate starts from a
    /// share of it (`TRAIN_SHARE`), if that is more than it has, and Startup goes on.
    fn train_sample(&mut self, here: &Anchor) {
        let found_at = STARTUP_GAIN * self.pacing_rate();
        let Some(rate) = self.train.on_feedback(here, found_at) else {
            return;
        };
        if rate <= found_at {
            self.push_sample(rate);
            self.end_startup(here.largest, false, Some(rate));
        } else {
            self.confirm_reading(rate);
        }
    }

    /// A reading of the radio above Startup's next round trip: the estimate starts from its
    /// share, and Startup's confirming burst starts now (`startup_confirming`).
    fn confirm_reading(&mut self, reading: f64) {
        self.push_sample(reading * TRAIN_SHARE);
        self.confirm_from = Some(self.cumulative);
    }

    /// The rate sample from `from` to `here` (`span_us` apart at the receiver), and the
    /// rate the frames between them were sent at, bit/s.
    fn rate_sample(&self, from: &Anchor, here: &Anchor, span_us: u32) -> (f64, f64) {
        // Over the longer of the receiver's span and the sender's: a sample is never faster
        // than the frames were sent (BBR's max(send, ack) interval), so the radio's jitter
        // shortening an arrival span cannot raise the estimate above the sending rate.
        let send_span = here.sent_at.saturating_since(from.sent_at).as_secs_f64();
        let seconds = (f64::from(span_us) / 1e6).max(send_span);
        let sent_rate = (here.sent_cumulative - from.sent_cumulative) as f64 * 8.0 / seconds;
        let delivered_rate = here.bytes.saturating_sub(from.bytes) as f64 * 8.0 / seconds;
        // A queue is building: count only what arrived, so losses at a full queue are not
        // mistaken for the radio's. Otherwise what arrived, scaled up by the loss on the
        // air (`AirLoss`): the sent rate counts frames a full queue dropped as if the radio
        // had carried them, this does not.
        let sample = if self.queue_building() {
            delivered_rate
        } else {
            sent_rate.min(delivered_rate / (1.0 - self.air.loss().min(0.5)))
        };
        (sample, sent_rate)
    }

    /// The feedback `here` may complete the sample of a probe: from the first feedback
    /// that reports a frame the probe sent to the last that reports none sent after it,
    /// so that it spans the frames sent at the probe's gain and no others. The samples
    /// that follow one another span a round trip or more (and 30 ms), at least as long as
    /// a probe: they straddle it and the phases around it. A probe then raised the
    /// estimate by a tenth where it found a quarter, and a radio that got four times
    /// faster took 3.3 s to follow on a 75 ms path.
    ///
    /// It counts only where the sender had frames to send throughout the probe. Where they
    /// went through without a queue (the last of them waited no more than an eighth of the
    /// probe's length, half what a radio without room would have held it), it is a rate
    /// sample as any other; where they queued, the rate the queue shows
    /// (`probe_sample_with_queue`). It can only raise the estimate.
    fn probe_sample(&mut self, here: &Anchor) {
        let queue = self.queue_now();
        let Some(probe) = self.probes.front_mut() else {
            return;
        };
        if here.largest < probe.first {
            return;
        }
        let start = *probe.start.get_or_insert(*here);
        let last = match probe.last {
            Some(last) if here.largest >= last => last,
            _ => {
                probe.end = Some((*here, queue));
                return;
            }
        };
        let end = if here.largest == last {
            Some((*here, queue))
        } else {
            probe.end
        };
        let idle = probe.idle;
        self.probes.pop_front();
        let Some((end, queue)) = end.filter(|(end, _)| end.largest > start.largest) else {
            return;
        };
        let span_us = wrapping_us(end.received_at_us, start.received_at_us);
        // The sender sent throughout the probe (an idle one probed nothing), the sample
        // spans a third of it at least (a few frames' span is mostly the radio's jitter;
        // with half, two probes in three after a radio got faster on a 75 ms path fell
        // short at 5 Mbit/s, whose feedback comes every 10 ms), and the path was not out.
        let send_span = end.sent_at.saturating_since(start.sent_at);
        if idle
            || send_span < UP_LENGTH / 3
            || u64::from(span_us) > outage_span(self.min_rtt()).as_micros() as u64
        {
            return;
        }
        let sample = if queue > (UP_LENGTH / 8).max(self.jitter()) {
            self.probe_sample_with_queue(&start, &end, span_us, queue)
        } else {
            self.rate_sample(&start, &end, span_us).0
        };
        if let Some(best) = self.samples.back_mut() {
            *best = best.max(sample);
        }
    }

    /// The rate of a probe whose last frame found a queue of more than an eighth of the
    /// probe (the radio had less room than the probe asked for, or none), from its first
    /// feedback `start` to its last `end`, `span_us` apart at the receiver, the last frame
    /// having waited `queue` (its round trip over the minimum). The radio carried the
    /// frames sent between them within their send span plus that wait, less a full frame's
    /// time at the probe's rate (the minimum is a small frame's round trip, and a full
    /// frame spends that much longer on the radio: 2.2 ms at 5 Mbit/s, a tenth of a short
    /// probe; at the probe's rate, shorter than at the radio's). That is a floor of the
    /// radio's rate: the wait also holds the radio's jitter and any queue there was before
    /// the probe. Nor faster than over the arrival span (should the minimum be a full
    /// frame's), nor than what arrived, scaled up by the loss on the air (frames a full
    /// queue dropped took none of the radio's time). Without it, an estimate a few per cent
    /// under the radio stayed there: a probe at a quarter more queued over an eighth of its
    /// length, its sample did not count, and the samples that follow one another, which
    /// straddle the probe and the phases around it, raised it by a per cent a cycle (a
    /// radio 8 % faster on a 75 ms path was not followed to within 2 % in 6 s).
    fn probe_sample_with_queue(
        &self,
        start: &Anchor,
        end: &Anchor,
        span_us: u32,
        queue: Duration,
    ) -> f64 {
        let send_span = end.sent_at.saturating_since(start.sent_at).as_secs_f64();
        let probe_rate = PROBE_GAINS[UP] * self.probe_base.max(MIN_PACING_BPS);
        let frame = FRAME_BYTES * 8.0 / probe_rate;
        let wait = (queue.as_secs_f64() - frame).max(0.0);
        let seconds = (send_span + wait).max(f64::from(span_us) / 1e6);
        let sent = (end.sent_cumulative - start.sent_cumulative) as f64 * 8.0;
        let arrived = end.bytes.saturating_sub(start.bytes) as f64 * 8.0;
        (sent / seconds).min(arrived / seconds / (1.0 - self.air.loss().min(0.5)))
    }

    /// Is the span from `from` to `here`, shorter than a whole sample, already proof of a
    /// radio that lost much of its rate? Only with the radio busy throughout it (every round
    /// trip since before it began showed a queue), the sender not idle, and what the radio
    /// carried over the arrival span under `QUICK_SLOWER` of what the sender offered it (or
    /// of the estimate, if it offered more): a radio whose queue empties because the sender
    /// unloads it carries what it is offered. The span is at least `QUICK_SPAN` and a dozen
    /// frames at the estimate (`QUICK_FRAMES`): the radio's jitter moves such a span by a
    /// few milliseconds, not by the quarter that would take a radio at the estimate under
    /// the bound. A radio whose rate halved grows its queue by a millisecond every
    /// millisecond, and each feedback interval this saves is one.
    fn radio_lost_much_of_its_rate(&self, from: &Anchor, here: &Anchor, span_us: u32) -> bool {
        let bottleneck = self.bottleneck();
        let frames = QUICK_FRAMES * FRAME_BYTES * 8.0 / bottleneck.max(1.0);
        if !self.cycling()
            || !self.busy_throughout(from)
            || self.idle_since(from)
            || f64::from(span_us) / 1e6 < QUICK_SPAN.as_secs_f64().max(frames)
        {
            return false;
        }
        let sent = (here.sent_cumulative - from.sent_cumulative) as f64 * 8.0;
        let send_span = here.sent_at.saturating_since(from.sent_at).as_secs_f64();
        let offered = if send_span > 0.0 {
            (sent / send_span).min(bottleneck)
        } else {
            bottleneck
        };
        self.radio_rate(from, here, span_us) < QUICK_SLOWER * offered
    }

    /// What a radio busy from `from` to `here` carried, bit/s: every byte sent between the
    /// two counters over the arrival span alone. A busy radio spends its time on the frames
    /// it then loses on the air too; frames a full queue dropped took none (they only raise
    /// the rate). The span less the jitter beyond what every threshold tolerates (at most
    /// half of it): the jitter of its two ends stretches it as often as it shrinks it, and
    /// a stretched one read as a slower radio (20 Mbit/s, 10 ms of jitter each way, 20 %
    /// loss: seven slowdowns in two seconds took the estimate to 2.2 Mbit/s).
    fn radio_rate(&self, from: &Anchor, here: &Anchor, span_us: u32) -> f64 {
        let span = f64::from(span_us) / 1e6;
        let seconds = (span - self.excess_jitter().as_secs_f64()).max(span / 2.0);
        (here.sent_cumulative - from.sent_cumulative) as f64 * 8.0 / seconds
    }

    /// Probing up and down or unloading: the phases in which a slower radio is found.
    fn cycling(&self) -> bool {
        matches!(self.phase, Phase::ProbeBw { .. } | Phase::Unload { .. })
    }

    /// Has every round trip shown a queue since before the feedback that set `from`?
    fn busy_throughout(&self, from: &Anchor) -> bool {
        self.busy_since.is_some_and(|since| since <= from.at)
    }

    /// Did the sender go idle after the counter `from` reports?
    fn idle_since(&self, from: &Anchor) -> bool {
        self.app_limited_until.is_some_and(|c| c > from.largest)
    }

    /// The loss the receiver found once reordering settled, when it judged enough
    /// counters lately to say; until then the ratio of arrivals to counters spanned (noisy,
    /// but unbiased); 0 before any feedback.
    pub(crate) fn reported_loss(&self) -> f64 {
        if self.settled.counters >= MIN_SETTLED_COUNTERS {
            self.settled.loss()
        } else {
            self.loss()
        }
    }

    /// The mean run of lost frames the receiver reports (1 for independent losses).
    pub(crate) fn loss_burst(&self) -> f64 {
        self.settled.burst()
    }

    /// Has any feedback said what the path loses?
    pub(crate) fn loss_known(&self) -> bool {
        self.loss_counters > 0.0 || self.settled.counters > 0.0
    }

    /// Add what the receiver newly found lost, fading what is older than the horizon.
    fn on_settled(&mut self, now: Timestamp, f: &FeedbackBody) {
        if let Some((judged, lost, runs, at)) = self.settled_from {
            let elapsed = now.saturating_since(at).as_secs_f64();
            let fade = 1.0 - (elapsed / LOSS_HORIZON.as_secs_f64()).min(1.0);
            let s = &mut self.settled;
            s.counters = fade * s.counters + f.judged().saturating_sub(judged) as f64;
            s.lost = fade * s.lost + f.lost.saturating_sub(lost) as f64;
            s.runs = fade * s.runs + f.loss_runs.saturating_sub(runs) as f64;
        }
        self.settled_from = Some((f.judged(), f.lost, f.loss_runs, now));
    }

    fn on_rtt(&mut self, now: Timestamp, rtt: Duration) {
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(s) => (s * 7 + rtt) / 8,
        });
        let expired = self
            .min_rtt
            .is_none_or(|(_, at)| now.saturating_since(at) > MIN_RTT_WINDOW);
        if expired || self.min_rtt.is_some_and(|(m, _)| rtt <= m) {
            self.min_rtt = Some((rtt, now));
        }
    }

    /// Acks and feedback are what this end's receiving side sends back for what it
    /// receives (2.6 % of a download's rate), and on a drone's narrow uplink they are most
    /// of what fills it: a queue of this end's frames that stays (a round trip over the
    /// jitter bound) makes
    /// them twice as sparse (a deep one four times), at most once a round trip and up to
    /// `MAX_RETURN_SCALE`, and every 100 ms with the queue clearly gone 3 % denser again
    /// (`RETURN_SCALE_DECAY`), down to a floor where a queue came back
    /// (`RETURN_FLOOR_MARGIN`). The queue is the one-way
    /// delay's, this direction's alone: a round trip would also show the peer's queue,
    /// which sparser acks do not shorten.
    fn on_return_queue(&mut self, now: Timestamp) {
        if !self.returns_only {
            // This end's own data is what queues: its acks and feedback are not.
            self.return_scale = 1.0;
            self.return_scale_set = 1.0;
            self.return_floor = 1.0;
            self.return_queue_since = None;
            self.return_trial.cancel(now);
            return;
        }
        let span = self.min_rtt().max(FEEDBACK_DELAY);
        // A queue that stays, or one twice as deep as the jitter allows (a download's
        // startup fills a narrow uplink faster than a queue can be seen to stay); on a
        // jittery radio a single late delay thinned the acks of a wide one (the transport
        // bench with 10 ms of jitter each way: 35.6 of 45, against 40.5).
        // The jitter from before the queue: a queue that fills in steps between two
        // feedback frames moves the delay as the radio's jitter does, and the jitter read
        // from it held the deep bound at 60 ms while a download's startup queued the
        // remote's sticks for 250 ms on a 150 kbit/s uplink (feedback 90 ms apart). The
        // most of it lately, not the latest: the jitter read dips, and on a radio with
        // 16 ms of jitter a dip to 6.6 ms let two delays of 14 ms in a row count as a deep
        // queue (after 22 s), which thinned the acks four times for good.
        if self.queue_now() <= PERSISTENT_QUEUE_THRESHOLD / 2 {
            let elapsed = self
                .feedback_at
                .map_or(Duration::ZERO, |at| now.saturating_since(at));
            let fading = self
                .calm_jitter
                .mul_f64(per_100ms(CALM_JITTER_FADE, elapsed));
            self.calm_jitter = self.jitter().max(fading);
        }
        let deep_bound = PERSISTENT_QUEUE_THRESHOLD.max(self.calm_jitter) * 2;
        let base = self.min_delay();
        let over = |d: Option<Duration>, bound: Duration| {
            d.is_some_and(|d| d.saturating_sub(base) > bound)
        };
        let deep = over(self.latest_delay, deep_bound * 2)
            || (over(self.latest_delay, deep_bound) && over(self.prior_delay, deep_bound));
        // A queue that stays: over the jitter bound for a round trip, without
        // `queue_persists`'s two bursts (acks and feedback are small frames no pacer
        // bunches, and the burst at the estimate of an end that sends little is long: two
        // 100-byte frames at 75 kbit/s, 21 ms, and a queue the thinning's decay let back
        // grew to 10 ms before it counted). Where the jitter exceeds what the thresholds
        // tolerate, one all of the last `JITTERED_QUEUE_SAMPLES` delays show: two in a row
        // thinned the acks of a 10 Mbit/s uplink with 10 ms of jitter each way up to four
        // times.
        let bound = PERSISTENT_QUEUE_THRESHOLD.max(self.jitter());
        let queued = self.queue_now() > bound;
        self.return_queue_since = queued.then(|| self.return_queue_since.unwrap_or(now));
        let stays = if self.excess_jitter() > Duration::ZERO {
            self.every_recent_delay_over(bound)
        } else {
            self.return_queue_since
                .is_some_and(|since| now.saturating_since(since) >= span)
        };
        if stays || deep {
            if now.saturating_since(self.return_scale_grew) >= span {
                // Four times at a deep queue: a download's startup outgrows a narrow uplink
                // by that much within a round trip (150 kbit/s: 58 ms of queue by the
                // second report, doubling).
                let growth = if deep { 4.0 } else { 2.0 };
                if self.return_scale < self.return_scale_set {
                    // Decayed to where the acks fill the return path again: every 4 to 5 s
                    // on a 150 kbit/s uplink under a 15 Mbit/s download, from 16 to 4,
                    // and each time the sticks waited behind 15 ms of acks.
                    self.return_floor =
                        (self.return_scale * RETURN_FLOOR_MARGIN).min(MAX_RETURN_SCALE);
                }
                self.return_scale = (self.return_scale * growth).min(MAX_RETURN_SCALE);
                self.return_scale_set = self.return_scale;
                self.return_scale_grew = now;
            }
            self.return_trial.cancel(now);
            return;
        }
        // A queue the rules above miss: one the returns fill now and then (`ReturnTrial`).
        let step = self.return_trial.on_queue(
            now,
            self.queue_now(),
            span,
            self.return_scale,
            MAX_RETURN_SCALE,
        );
        match step {
            TrialStep::Start => {
                self.return_scale = (self.return_scale * 2.0).min(MAX_RETURN_SCALE);
            }
            TrialStep::Keep => {
                // As a growth, but the decay stops here: the trial showed the scale is needed.
                self.return_scale_set = self.return_scale;
                self.return_floor = self.return_floor.max(self.return_scale);
                self.return_scale_grew = now;
            }
            TrialStep::Revert(scale) => self.return_scale = scale,
            TrialStep::Wait => {}
        }
        if self.return_trial.running() {
            return;
        }
        if self.queue_now() <= (PERSISTENT_QUEUE_THRESHOLD / 2).max(self.jitter()) {
            // Only with the queue clearly gone: one under the bound may be the start of the
            // next. By time, not by feedback: feedback comes more often while thinned.
            let elapsed = self
                .feedback_at
                .map_or(Duration::ZERO, |at| now.saturating_since(at));
            self.return_floor =
                (self.return_floor * per_100ms(RETURN_FLOOR_DECAY, elapsed)).max(1.0);
            self.return_scale =
                (self.return_scale * per_100ms(RETURN_SCALE_DECAY, elapsed)).max(self.return_floor);
        }
    }

    /// Whether this end sends only acks, feedback and the pilot's small messages now (no
    /// video or storage data): only then does `return_scale` thin them.
    pub(crate) fn set_returns_only(&mut self, returns_only: bool) {
        self.returns_only = returns_only;
    }

    /// Are acks and feedback thinned at all?
    pub(crate) fn return_thinned(&self) -> bool {
        self.return_scale > 1.0
    }

    /// How many times less often than usual acks and feedback go now (1 unless a queue of
    /// this end's frames stayed: `on_return_queue`).
    pub(crate) fn return_scale(&self) -> f64 {
        self.return_scale
    }

    /// The return path's queue: how far the round trip is above its minimum beyond this
    /// direction's queue (`queue_now`), over twice the jitter bound (the return path's own
    /// jitter is not measured; on a symmetric radio it is this one's).
    fn on_return_path(&mut self, now: Timestamp, rtt: Duration) {
        let back = rtt
            .saturating_sub(self.min_rtt())
            .saturating_sub(self.queue_now());
        let queued = back > PERSISTENT_QUEUE_THRESHOLD.max(self.jitter() * 2);
        self.return_path_since = queued.then(|| self.return_path_since.unwrap_or(now));
        self.return_path_full = self.return_path_queued(now);
    }

    /// Does the latest round trip show a queue on the return path (`on_return_path`)?
    pub(crate) fn return_path_queue(&self) -> bool {
        self.return_path_since.is_some()
    }

    /// Has the return path shown a queue for a minimum round trip (and 10 ms)?
    fn return_path_queued(&self, now: Timestamp) -> bool {
        let span = self.min_rtt().max(FEEDBACK_DELAY);
        self.return_path_since
            .is_some_and(|since| now.saturating_since(since) >= span)
    }

    /// The one-way delay of a frame reported: the receiver's clock when it arrived less
    /// the sender's when it went, both in microseconds modulo 2^32. The two clocks' offset
    /// is unknown but fixed, so only differences between samples count: each is taken
    /// relative to the first (`one_way_base`), on a clock that starts at 2^31 us so that a
    /// delay shorter than the first is still a positive duration.
    fn on_one_way(&mut self, now: Timestamp, received_at_us: u32, sent_at: Timestamp) {
        let raw = received_at_us.wrapping_sub(sent_at.as_micros() as u32);
        let base = *self.one_way_base.get_or_insert(raw);
        // The difference as a signed number: the delays of a path differ by far less
        // than the 35 minutes either way it holds.
        let from_base = i64::from(raw.wrapping_sub(base) as i32);
        let delay = Duration::from_micros((from_base + (1 << 31)).max(0) as u64);
        if let (Some(latest), Some(prior)) = (self.latest_delay, self.prior_delay) {
            // A queue that grows or drains at a steady rate moves the delay in a straight
            // line, which has no second difference; the radio's jitter moves each sample on
            // its own. Half the absolute second difference of independent samples averages
            // their standard deviation (its own is the square root of 6 times theirs; a
            // normal variable's mean absolute value is 0.8 of its deviation). The mean of
            // the first 16, then a moving average of as many: from zero, the jitter was a
            // third of itself after the first six samples, and Startup ended on it
            // (20 Mbit/s, 10 ms of jitter each way: at 8 to 12 Mbit/s).
            let second = (delay + prior).abs_diff(latest * 2) / 2;
            self.delay_noise_samples = (self.delay_noise_samples + 1).min(DELAY_NOISE_SAMPLES);
            let n = self.delay_noise_samples;
            self.delay_noise = (self.delay_noise * (n - 1) + second) / n;
        }
        self.prior_delay = self.latest_delay;
        self.latest_delay = Some(delay);
        if self.recent_delays.len() == JITTERED_QUEUE_SAMPLES {
            self.recent_delays.pop_front();
        }
        self.recent_delays.push_back(delay);
        self.cycle_min_delay = Some(self.cycle_min_delay.map_or(delay, |m| m.min(delay)));
        let expired = self
            .min_delay
            .is_none_or(|(_, at)| now.saturating_since(at) > MIN_RTT_WINDOW);
        if expired || self.min_delay.is_some_and(|(m, _)| delay <= m) {
            self.min_delay = Some((delay, now));
        }
        // Above the pacer's burst too (two of them): a narrow radio takes a while to carry
        // one, and the frames at its end wait that long. And above the radio's jitter. But
        // a sender of small frames (the remote's sticks, acks and feedback, which the
        // pacer does not hold) bursts one of them, not the pacer's burst: that was 80 ms
        // of two bursts on a 300 kbit/s uplink.
        let burst_bytes = if self.frame_bytes < FRAME_BYTES / 2.0 {
            self.frame_bytes
        } else {
            self.burst_bytes()
        };
        let burst = Duration::from_secs_f64(burst_bytes * 8.0 / self.bottleneck().max(1.0));
        let threshold = PERSISTENT_QUEUE_THRESHOLD.max(burst * 2).max(self.jitter());
        let queued = self.queue_now() > threshold;
        self.queue_since = queued.then(|| self.queue_since.unwrap_or(now));
        // Where the jitter exceeds what the thresholds tolerate, the radio is busy once
        // every one of several round trips shows a queue: a single one is above the jitter
        // bound about one time in two (its mean is half its range), and a radio taken for
        // busy when it was not read what the sender offered as the radio's rate (a 20
        // Mbit/s radio 5 ms away with 10 ms of jitter and 20 % loss: 34 slowdowns in 20 s,
        // the estimate down to 1.2 Mbit/s, a download at 0.31 of the radio; 0.80 now). A
        // queue that persists while cruising still counts single round trips: the
        // slowdowns it finds on a jittery radio are what drains the queue an estimate
        // raised by the jitter builds (without them, telemetry p99 45.8 ms on a saturated
        // 10 Mbit/s radio with 10 ms of jitter each way, against a bound of 40).
        let busy = if self.excess_jitter() > Duration::ZERO {
            self.every_recent_delay_over(threshold)
        } else {
            queued
        };
        self.busy_since = busy.then(|| self.busy_since.unwrap_or(now));
    }

    /// Startup ends when a queue builds (a new sample), or when the rate stopped growing:
    /// checked once a round trip, when feedback reaches `round_end`, the first counter
    /// sent after the previous check (a frame sent at a new rate shows it a round trip
    /// later, however many samples come in between).
    fn end_startup(&mut self, largest: u64, app_limited: bool, queueing: Option<f64>) {
        let bottleneck = self.bottleneck();
        let Phase::Startup {
            best,
            flat_rounds,
            round_end,
        } = self.phase
        else {
            return;
        };
        if let Some(carried) = queueing {
            // The spans holding the train's or scout's frames were kept out of the estimate
            // while Startup went on from a share of their reading (`on_feedback`). A queue
            // now says the radio is full at Startup's rate, so the reading counts whole.
            // Ended on the queue behind the train (a receiver in real time sees it in the
            // frames that follow) at the share, the estimate took seconds of probing to
            // reach the radio: 0.86 of a 20 Mbit/s radio 75 ms away through the proxy.
            // But no more than the radio carried over the span that showed the queue: a
            // train's span of a few milliseconds over-reads where arrivals are stamped on
            // coarse ticks (25.7 Mbit/s of a 20 Mbit/s radio through the proxy), and
            // cruising at that filled the radio's queue until a slowdown was found.
            let reading = self.train.reading().map(|r| r.min(carried));
            if let Some(reading) = reading.filter(|&r| r > bottleneck) {
                self.push_sample(reading);
            }
            self.phase = Phase::Drain;
            return;
        }
        if largest < round_end {
            return;
        }
        let round_end = self.first + self.sent.len() as u64;
        self.phase = if bottleneck >= best * STARTUP_GROWTH {
            Phase::Startup {
                best: bottleneck,
                flat_rounds: 0,
                round_end,
            }
        } else if app_limited {
            Phase::Startup {
                best,
                flat_rounds,
                round_end,
            }
        } else if flat_rounds + 1 >= STARTUP_FLAT_ROUNDS {
            Phase::Drain
        } else {
            Phase::Startup {
                best,
                flat_rounds: flat_rounds + 1,
                round_end,
            }
        };
    }

    /// Drain and the probing cycle move on with time and what is in flight (every
    /// feedback).
    fn advance_cycle(&mut self, now: Timestamp) {
        let bottleneck = self.bottleneck();
        let min_rtt = self.min_rtt.map_or(Duration::from_millis(20), |(r, _)| r);
        let bdp = bottleneck / 8.0 * min_rtt.as_secs_f64();
        match self.phase {
            Phase::Startup { .. } => {}
            Phase::Drain => {
                if (self.in_flight() as f64) <= bdp {
                    self.enter_probe_phase(now, CRUISE);
                }
            }
            Phase::Unload { since, until, .. } => {
                let drained = now.saturating_since(since) >= min_rtt
                    && self.queue_now() <= PERSISTENT_QUEUE_THRESHOLD.max(self.jitter());
                if now >= until || drained {
                    self.enter_probe_phase(now, CRUISE);
                }
            }
            Phase::ProbeBw { phase, since } => {
                let length = match phase {
                    UP => UP_LENGTH,
                    DOWN => down_length(self.standing_queue),
                    _ => min_rtt.max(Duration::from_millis(10)),
                };
                let ended = now.saturating_since(since) >= length;
                if (phase >= CRUISE || (phase == DOWN && ended)) && self.probe_found_room() {
                    self.enter_probe_phase(now, UP);
                } else if ended {
                    self.enter_probe_phase(now, (phase + 1) % PROBE_GAINS.len());
                }
            }
        }
    }

    /// Whether the probe of this cycle raised the estimate by more than the radio's jitter
    /// does (`PROBE_FOUND_ROOM`) and no queue shows: the radio has room the estimate does
    /// not show yet (it got faster, or the estimate fell below it), so the next probe goes
    /// as soon as the samples show it (they come a round trip and a sample's span after
    /// the probe, in the cruise that follows) instead of after cruising. A probe that finds
    /// no room raises the estimate by a few per cent at most, so a radio the estimate fits
    /// is probed as before. A probe raises the estimate by a tenth to a fifth (its samples
    /// straddle the phases around it), and with cruising after each one a radio that went
    /// from 5 to 20 Mbit/s took 2.4 s to follow on a 15 ms path; 0.9 s now.
    fn probe_found_room(&self) -> bool {
        self.probe_base > 0.0
            && self.bottleneck() >= PROBE_FOUND_ROOM * self.probe_base
            && self.queue_since.is_none()
    }

    fn enter_probe_phase(&mut self, now: Timestamp, phase: usize) {
        let next_counter = self.first + self.sent.len() as u64;
        if let Phase::ProbeBw { phase: UP, .. } = self.phase {
            if let Some(probe) = self.probes.back_mut() {
                probe.last.get_or_insert(next_counter.saturating_sub(1));
            }
        }
        if phase == UP {
            if self.probes.len() == 2 {
                self.probes.pop_front();
            }
            self.probes.push_back(Probe {
                first: next_counter,
                last: None,
                start: None,
                end: None,
                idle: false,
            });
            self.probe_base = self.bottleneck();
            // A new cycle: what the last one saw at best is the queue it never drained,
            // less a full frame's time on the radio: the minimum may be a small frame's
            // round trip, and a full one spends that much longer being sent (2.2 ms at
            // 5 Mbit/s), which is no queue to drain.
            let frame = Duration::from_secs_f64(FRAME_BYTES * 8.0 / self.bottleneck().max(1.0));
            self.standing_queue = self
                .cycle_min_delay
                .zip(self.min_delay)
                .map_or(Duration::ZERO, |(seen, (min, _))| {
                    seen.saturating_sub(min).saturating_sub(frame)
                });
            self.cycle_min_delay = None;
        }
        if phase == CRUISE {
            // The round trips of the next round trip are of frames sent before cruising
            // (startup's queue, or a probe's): a queue must persist past them to count.
            self.queue_since = None;
        }
        self.phase = Phase::ProbeBw { phase, since: now };
    }

    /// What the model knows now.
    pub(crate) fn estimate(&self) -> PathEstimate {
        PathEstimate {
            bottleneck_bps: self.bottleneck() as u64,
            pacing_bps: self.pacing_rate() as u64,
            min_rtt: self.min_rtt.map(|(r, _)| r),
            srtt: self.srtt,
            loss: self.reported_loss(),
            loss_burst: self.settled.burst(),
            slowdowns: self.slowdowns,
        }
    }
}

#[cfg(test)]
mod tests;
