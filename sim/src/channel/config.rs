//! What one direction of the radio does: [`ChannelConfig`], with its bursty-loss model
//! ([`Burst`]), its distance profile ([`DistanceProfile`]), the changes of its bottleneck
//! rate during a run ([`RateStep`]) and its checks ([`ChannelConfigError`]).

use std::fmt;
use std::time::Duration;

use rotorlink::Timestamp;

/// The behaviour of one direction of the radio.
///
/// A datagram goes through these stages, in this order (see [`RadioChannel`] for the details):
/// the MTU check, the bottleneck (`rate_bps`, `rate_steps`, `queue_bytes`), the air (`burst`, `distance`,
/// `loss`), duplication (`duplicate`), and then each copy on its own: corruption (`corrupt`)
/// and propagation (`delay`, `jitter`, `reorder`).
///
/// [`RadioChannel`]: super::RadioChannel
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelConfig {
    /// Probability that a datagram is lost on the air, independently of any other, 0.0 to 1.0.
    pub loss: f64,
    /// Bursty loss on top of `loss`: a Gilbert–Elliott good/bad chain. `None`: no bursts.
    pub burst: Option<Burst>,
    /// Fixed one-way propagation delay.
    pub delay: Duration,
    /// Extra delay drawn for every datagram, uniform in `0..=jitter` (microsecond steps).
    /// Each datagram draws its own, so datagrams sent closer together than `jitter` can
    /// overtake each other, as on Linux netem.
    pub jitter: Duration,
    /// Probability that a datagram is held back by an extra delay, uniform in
    /// `1 µs..=reorder_delay`, so that later datagrams overtake it. Counted in
    /// [`RadioStats::reordered`](super::RadioStats::reordered).
    pub reorder: f64,
    /// The longest hold-back of a reordered datagram (used when `reorder > 0`).
    pub reorder_delay: Duration,
    /// Probability that a datagram arrives twice (the copy is made on the air: it costs no
    /// bandwidth and draws its own corruption, jitter and reordering).
    pub duplicate: f64,
    /// Probability that one random bit of a delivered copy is flipped.
    pub corrupt: f64,
    /// Bottleneck rate in bits per second: a datagram of `n` bytes occupies the sender's
    /// radio for `8 n / rate_bps` seconds, one datagram after another. `None`: unlimited.
    /// The rate at the start of the run: `rate_steps` may change it later.
    pub rate_bps: Option<u64>,
    /// Changes of the bottleneck rate during the run, in time order: from each step's `at`
    /// on, the rate is its `bps` (until the next step). Empty: `rate_bps` all along.
    ///
    /// A radio's capacity falls and recovers as its modulation adapts to range and
    /// interference; a schedule of steps is the simplest model of that which a test can
    /// reason about ("8 Mbit/s from 4 s to 8 s"). A datagram is transmitted at the rate in
    /// force when its transmission starts.
    pub rate_steps: Vec<RateStep>,
    /// Bytes that may wait behind the datagram being transmitted when `rate_bps` is set;
    /// a datagram that would make the waiting bytes exceed this is dropped (drop-tail).
    /// A datagram that finds the radio idle is always accepted.
    pub queue_bytes: usize,
    /// Largest datagram the radio carries; larger ones are dropped. `None`: no limit.
    pub mtu: Option<usize>,
    /// Loss that depends on how far the aircraft is. `None`: no distance loss.
    pub distance: Option<DistanceProfile>,
}

impl Default for ChannelConfig {
    /// A clean channel with 5 ms of delay: no loss, no jitter, no reordering, no
    /// duplicates, no corruption, unlimited rate (with a 1 MiB queue, should a rate be
    /// set) that never changes, no MTU, no distance loss. `reorder_delay` is 10 ms.
    fn default() -> Self {
        ChannelConfig {
            loss: 0.0,
            burst: None,
            delay: Duration::from_millis(5),
            jitter: Duration::ZERO,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
            duplicate: 0.0,
            corrupt: 0.0,
            rate_bps: None,
            rate_steps: Vec::new(),
            // Room for a 20 Mbit/s key frame (~300 KB), which the aircraft sends at once.
            queue_bytes: 1024 * 1024,
            mtu: None,
            distance: None,
        }
    }
}

fn probability(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

impl ChannelConfig {
    /// Check every value against its allowed range.
    ///
    /// # Errors
    /// A [`ChannelConfigError`] naming the first field out of range: probabilities must be
    /// within `0.0..=1.0` (NaN is not), `reorder_delay` must be non-zero when `reorder > 0`,
    /// `rate_bps` and `mtu` non-zero, `rate_steps` non-zero and in strictly increasing
    /// time order, and the distance profile as [`DistanceProfile::validate`] says.
    pub fn validate(&self) -> Result<(), ChannelConfigError> {
        use ChannelConfigError as E;
        let checks = [
            (probability(self.loss), E::Loss),
            (probability(self.reorder), E::Reorder),
            (
                self.reorder == 0.0 || !self.reorder_delay.is_zero(),
                E::ReorderDelay,
            ),
            (probability(self.duplicate), E::Duplicate),
            (probability(self.corrupt), E::Corrupt),
            (self.rate_bps != Some(0), E::RateBps),
            (self.mtu != Some(0), E::Mtu),
            (
                self.rate_steps.iter().all(|s| s.bps > 0)
                    && self.rate_steps.windows(2).all(|w| w[0].at < w[1].at),
                E::RateSteps,
            ),
        ];
        if let Some((_, e)) = checks.into_iter().find(|(ok, _)| !ok) {
            return Err(e);
        }
        if let Some(b) = &self.burst {
            b.validate()?;
        }
        if let Some(d) = &self.distance {
            d.validate()?;
        }
        Ok(())
    }

    /// The bottleneck rate at `at` (time since the start of the run): the last of
    /// `rate_steps` that has begun, or `rate_bps` before the first.
    pub fn rate_at(&self, at: Timestamp) -> Option<u64> {
        let since_start = at.saturating_since(Timestamp::ZERO);
        self.rate_steps
            .iter()
            .take_while(|s| s.at <= since_start)
            .last()
            .map_or(self.rate_bps, |s| Some(s.bps))
    }
}

/// A change of the bottleneck rate during a run (see [`ChannelConfig::rate_steps`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStep {
    /// When it takes effect: time since the start of the run (the simulator's
    /// [`Timestamp::ZERO`]; for `rotorlink proxy`, when the proxy started).
    pub at: Duration,
    /// The rate from then on, bits per second.
    pub bps: u64,
}

/// Bursty loss: a two-state Gilbert–Elliott chain, stepped once per datagram.
///
/// The chain starts in the good state. For every datagram that reaches the air it first
/// moves (good to bad with probability `good_to_bad`, bad to good with `bad_to_good`), then,
/// in the bad state, loses the datagram with probability `bad_loss`. In the good state it
/// loses nothing (the channel's independent `loss` still applies in both states).
///
/// With `bad_loss = 1` a burst of losses lasts `1 / bad_to_good` datagrams on average, and
/// the chain spends a fraction `good_to_bad / (good_to_bad + bad_to_good)` of datagrams in
/// the bad state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Probability of moving from the good to the bad state, per datagram.
    pub good_to_bad: f64,
    /// Probability of moving from the bad to the good state, per datagram.
    pub bad_to_good: f64,
    /// Probability that a datagram is lost in the bad state.
    pub bad_loss: f64,
}

impl Burst {
    /// The chain whose loss bursts last `len` datagrams on average and that loses
    /// `average_loss` of all datagrams overall: `bad_loss = 1`, `bad_to_good = 1 / len`,
    /// `good_to_bad = bad_to_good * average_loss / (1 - average_loss)`.
    ///
    /// Such a chain exists for `len >= 1` and `0 <= average_loss <= len / (len + 1)`;
    /// otherwise the result has a probability out of range and fails [`Burst::validate`].
    pub fn mean_length(len: f64, average_loss: f64) -> Self {
        let bad_to_good = 1.0 / len;
        Burst {
            good_to_bad: bad_to_good * average_loss / (1.0 - average_loss),
            bad_to_good,
            bad_loss: 1.0,
        }
    }

    /// The long-run fraction of datagrams this chain loses (on its own, without the
    /// channel's independent `loss`).
    pub fn average_loss(&self) -> f64 {
        let total = self.good_to_bad + self.bad_to_good;
        if total == 0.0 {
            0.0
        } else {
            self.good_to_bad / total * self.bad_loss
        }
    }

    /// The mean number of consecutive datagrams spent in the bad state: `1 / bad_to_good`.
    pub fn mean_burst_length(&self) -> f64 {
        1.0 / self.bad_to_good
    }

    /// Check the three probabilities.
    ///
    /// # Errors
    /// [`ChannelConfigError::BurstGoodToBad`], [`ChannelConfigError::BurstBadToGood`] or
    /// [`ChannelConfigError::BurstLoss`] for a value outside `0.0..=1.0`.
    pub fn validate(&self) -> Result<(), ChannelConfigError> {
        if !probability(self.good_to_bad) {
            Err(ChannelConfigError::BurstGoodToBad)
        } else if !probability(self.bad_to_good) {
            Err(ChannelConfigError::BurstBadToGood)
        } else if !probability(self.bad_loss) {
            Err(ChannelConfigError::BurstLoss)
        } else {
            Ok(())
        }
    }
}

/// Loss that grows as the aircraft flies away and recovers as it comes back.
///
/// The flight is out and back, repeated: the distance is a triangle wave of time `t` since
/// the start of the run,
///
/// ```text
/// phase(t)    = (t mod period) / period                      in [0, 1)
/// distance(t) = max_m * (1 - |2 phase(t) - 1|)               0 -> max_m -> 0
/// ```
///
/// and the extra loss probability at distance `d` is a smoothstep from `range_m` (full
/// strength) to `max_range_m` (nothing gets through):
///
/// ```text
/// x       = clamp((d - range_m) / (max_range_m - range_m), 0, 1)
/// loss(d) = x^2 (3 - 2x)          0 below range_m, 0.5 half way, 1 at and beyond max_range_m
/// ```
///
/// The distance loss is drawn independently of the channel's other losses, at the time the
/// datagram leaves the sender's radio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistanceProfile {
    /// The farthest the aircraft goes, in metres.
    pub max_m: f64,
    /// Time for one whole out-and-back leg.
    pub period: Duration,
    /// Distance up to which the radio loses nothing extra, in metres.
    pub range_m: f64,
    /// Distance from which the radio loses everything, in metres.
    pub max_range_m: f64,
}

impl DistanceProfile {
    /// An out-and-back flight to `max_m` metres and back every `period`, over a radio with
    /// full strength up to `range_m` and nothing beyond `max_range_m`.
    pub fn out_and_back(max_m: f64, period: Duration, range_m: f64, max_range_m: f64) -> Self {
        DistanceProfile {
            max_m,
            period,
            range_m,
            max_range_m,
        }
    }

    /// The aircraft's distance at `at`, in metres.
    pub fn distance_m(&self, at: Timestamp) -> f64 {
        let period = self.period.as_micros();
        if period == 0 {
            return 0.0;
        }
        let phase = (u128::from(at.as_micros()) % period) as f64 / period as f64;
        self.max_m * (1.0 - (2.0 * phase - 1.0).abs())
    }

    /// The extra loss probability at a distance of `d` metres.
    pub fn loss_at_distance(&self, d: f64) -> f64 {
        let span = self.max_range_m - self.range_m;
        let x = if span > 0.0 {
            ((d - self.range_m) / span).clamp(0.0, 1.0)
        } else if d >= self.max_range_m {
            1.0
        } else {
            0.0
        };
        x * x * (3.0 - 2.0 * x)
    }

    /// The extra loss probability at `at`.
    pub fn loss_at(&self, at: Timestamp) -> f64 {
        self.loss_at_distance(self.distance_m(at))
    }

    /// Check the profile.
    ///
    /// # Errors
    /// [`ChannelConfigError::DistanceMax`] unless `max_m` is finite and not negative,
    /// [`ChannelConfigError::DistancePeriod`] if `period` is under a microsecond,
    /// [`ChannelConfigError::DistanceRange`] unless `0 <= range_m < max_range_m`, both
    /// finite.
    pub fn validate(&self) -> Result<(), ChannelConfigError> {
        if !(self.max_m.is_finite() && self.max_m >= 0.0) {
            Err(ChannelConfigError::DistanceMax)
        } else if self.period.as_micros() == 0 {
            Err(ChannelConfigError::DistancePeriod)
        } else if !(self.range_m.is_finite()
            && self.max_range_m.is_finite()
            && self.range_m >= 0.0
            && self.range_m < self.max_range_m)
        {
            Err(ChannelConfigError::DistanceRange)
        } else {
            Ok(())
        }
    }
}

/// A [`ChannelConfig`] value out of its allowed range; each variant names its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelConfigError {
    /// `loss` is not a probability.
    Loss,
    /// `burst.good_to_bad` is not a probability.
    BurstGoodToBad,
    /// `burst.bad_to_good` is not a probability.
    BurstBadToGood,
    /// `burst.bad_loss` is not a probability.
    BurstLoss,
    /// `reorder` is not a probability.
    Reorder,
    /// `reorder_delay` is zero while `reorder` is not.
    ReorderDelay,
    /// `duplicate` is not a probability.
    Duplicate,
    /// `corrupt` is not a probability.
    Corrupt,
    /// `rate_bps` is zero.
    RateBps,
    /// `mtu` is zero.
    Mtu,
    /// A step of `rate_steps` is zero, or the steps are not in increasing time order.
    RateSteps,
    /// `distance.max_m` is negative or not finite.
    DistanceMax,
    /// `distance.period` is zero.
    DistancePeriod,
    /// `distance.range_m` and `distance.max_range_m` are not `0 <= range_m < max_range_m`.
    DistanceRange,
}

impl ChannelConfigError {
    /// The field at fault, as written in Rust (`"burst.bad_to_good"`).
    pub fn field(self) -> &'static str {
        self.message()
            .split_once(':')
            .map_or("", |(field, _)| field)
    }

    /// The field and what is wrong with it (`"loss: must be a probability in 0..=1"`).
    pub fn message(self) -> &'static str {
        use ChannelConfigError as E;
        match self {
            E::Loss => "loss: must be a probability in 0..=1",
            E::BurstGoodToBad => "burst.good_to_bad: must be a probability in 0..=1",
            E::BurstBadToGood => "burst.bad_to_good: must be a probability in 0..=1",
            E::BurstLoss => "burst.bad_loss: must be a probability in 0..=1",
            E::Reorder => "reorder: must be a probability in 0..=1",
            E::ReorderDelay => "reorder_delay: must not be zero when reorder is not",
            E::Duplicate => "duplicate: must be a probability in 0..=1",
            E::Corrupt => "corrupt: must be a probability in 0..=1",
            E::RateBps => "rate_bps: must not be zero",
            E::Mtu => "mtu: must not be zero",
            E::RateSteps => "rate_steps: rates must not be zero, times must increase",
            E::DistanceMax => "distance.max_m: must be finite and not negative",
            E::DistancePeriod => "distance.period: must be at least a microsecond",
            E::DistanceRange => {
                "distance.range_m: must be finite, 0 <= range_m < max_range_m (finite)"
            }
        }
    }
}

impl fmt::Display for ChannelConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid channel configuration: {}", self.message())
    }
}

impl std::error::Error for ChannelConfigError {}

impl From<ChannelConfigError> for rotorlink::ConfigError {
    fn from(e: ChannelConfigError) -> Self {
        rotorlink::ConfigError(e.message())
    }
}
