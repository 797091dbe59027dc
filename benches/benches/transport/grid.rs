//! The grid of issue 13: capacity x one-way delay x loss, the radio each point describes, and
//! what one run over it measured.

use std::time::Duration;

use rotorlink::Timestamp;
use rotorlink_sim::{Burst, ChannelConfig, RadioStats};

/// Bottleneck capacities, bits per second.
pub(crate) const CAPACITIES: [u64; 3] = [5_000_000, 20_000_000, 100_000_000];
/// One-way delays, milliseconds (the round trip is twice this).
pub(crate) const DELAYS_MS: [u64; 3] = [5, 15, 75];
/// Every loss model of the grid.
pub(crate) const LOSSES: [Loss; 5] = [
    Loss::Random(0.0),
    Loss::Random(0.01),
    Loss::Random(0.10),
    Loss::Random(0.20),
    Loss::Burst {
        average: 0.05,
        mean_length: 8.0,
    },
];

/// The smallest transfer: below it the slow start is a large part of a run at 5 Mbit/s.
const MIN_TRANSFER: u64 = 4 << 20;
/// A transfer lasts this long at full capacity: several seconds of steady state after a
/// slow start of well under a second even at 75 ms.
const TRANSFER_SECONDS: u64 = 8;
/// The smallest radio queue: a real radio modem buffers at least a few dozen frames.
const MIN_QUEUE: usize = 64 * 1024;

/// How the radio loses datagrams, in both directions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Loss {
    /// Each datagram independently, with this probability.
    Random(f64),
    /// Gilbert-Elliott bursts losing `average` of all datagrams, `mean_length` in a row on
    /// average.
    Burst {
        /// Long-run fraction of datagrams lost.
        average: f64,
        /// Mean datagrams per burst.
        mean_length: f64,
    },
}

impl Loss {
    /// The long-run fraction of datagrams lost.
    pub(crate) fn rate(self) -> f64 {
        match self {
            Loss::Random(p) => p,
            Loss::Burst { average, .. } => average,
        }
    }

    /// `0%`, `1%`, `5%b8` (5 % in bursts of 8).
    pub(crate) fn label(self) -> String {
        match self {
            Loss::Random(p) => format!("{}%", percent(p)),
            Loss::Burst {
                average,
                mean_length,
            } => format!("{}%b{mean_length}", percent(average)),
        }
    }

    /// `1 % random loss`, `5 % loss in bursts of 8 on average`.
    pub(crate) fn describe(self) -> String {
        match self {
            Loss::Random(p) => format!("{} % random loss", percent(p)),
            Loss::Burst {
                average,
                mean_length,
            } => format!(
                "{} % loss in bursts of {mean_length} on average (Gilbert-Elliott)",
                percent(average)
            ),
        }
    }
}

fn percent(p: f64) -> String {
    let v = p * 100.0;
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// One point of the grid: the radio both directions share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    /// Bottleneck capacity, bits per second (both directions).
    pub(crate) rate_bps: u64,
    /// One-way propagation delay (both directions).
    pub(crate) delay: Duration,
    /// The loss model (both directions).
    pub(crate) loss: Loss,
    /// Payload bytes to move from the aircraft to the remote.
    pub(crate) transfer: u64,
    /// The radio's queue in time at its capacity, instead of [`Point::queue_bytes`]'s
    /// default (`--queue-ms`): real radios and shapers often queue far less than a
    /// bandwidth-delay product.
    pub(crate) queue: Option<Duration>,
    /// Extra delay per datagram, uniform up to this (`--jitter-ms`; datagrams overtake
    /// one another): the grid's radio has none.
    pub(crate) jitter: Duration,
}

impl Point {
    /// A point of the grid, with the grid's transfer size: [`TRANSFER_SECONDS`] of capacity,
    /// at least [`MIN_TRANSFER`].
    pub(crate) fn new(rate_bps: u64, delay_ms: u64, loss: Loss) -> Self {
        Point {
            rate_bps,
            delay: Duration::from_millis(delay_ms),
            loss,
            transfer: (rate_bps / 8 * TRANSFER_SECONDS).max(MIN_TRANSFER),
            queue: None,
            jitter: Duration::ZERO,
        }
    }

    /// Every point of the grid, capacity outermost, then delay, then loss.
    pub(crate) fn grid() -> Vec<Point> {
        let mut points = Vec::new();
        for rate in CAPACITIES {
            for delay in DELAYS_MS {
                for loss in LOSSES {
                    points.push(Point::new(rate, delay, loss));
                }
            }
        }
        points
    }

    /// `20mbit/15ms/1%`: what the filters on the command line match.
    pub(crate) fn label(&self) -> String {
        format!(
            "{}mbit/{}ms/{}",
            self.rate_bps / 1_000_000,
            self.delay.as_millis(),
            self.loss.label()
        )
    }

    /// The target for the ratio at this point: 0.95 up to 10 % loss (and for the
    /// bursts), 0.90 above.
    pub(crate) fn target(&self) -> f64 {
        if self.loss.rate() > 0.10 {
            0.90
        } else {
            0.95
        }
    }

    /// The bandwidth-delay product: bytes in flight that fill the pipe, round trip.
    pub(crate) fn bdp_bytes(&self) -> usize {
        (u128::from(self.rate_bps) * 2 * self.delay.as_micros() / 8 / 1_000_000) as usize
    }

    /// The drop-tail queue in front of each direction's bottleneck: one bandwidth-delay
    /// product (the classic sizing that lets a single loss-based flow keep the link busy
    /// after it halves its window), and never under [`MIN_QUEUE`], as a radio modem holds a
    /// few dozen frames whatever the rate. At 100 Mbit/s and 75 ms that is 1.9 MB, 150 ms of
    /// queueing: a deep but not unusual buffer. Or as long as [`Point::queue`] says, at
    /// least one full datagram.
    pub(crate) fn queue_bytes(&self) -> usize {
        if let Some(queue) = self.queue {
            let bytes = u128::from(self.rate_bps) * queue.as_micros() / 8 / 1_000_000;
            return (bytes as usize).max(1400);
        }
        self.bdp_bytes().max(MIN_QUEUE)
    }

    /// One direction of the radio. The uplink, which carries the acks, is the same: the same
    /// capacity, queue, delay and losses (a radio's two directions share the air).
    pub(crate) fn channel(&self) -> ChannelConfig {
        let (loss, burst) = match self.loss {
            Loss::Random(p) => (p, None),
            Loss::Burst {
                average,
                mean_length,
            } => (0.0, Some(Burst::mean_length(mean_length, average))),
        };
        ChannelConfig {
            rate_bps: Some(self.rate_bps),
            queue_bytes: self.queue_bytes(),
            delay: self.delay,
            jitter: self.jitter,
            loss,
            burst,
            ..ChannelConfig::default()
        }
    }

    /// The most goodput the radio allows: `(1 - p) C`, bits per second.
    pub(crate) fn ceiling_bps(&self) -> f64 {
        (1.0 - self.loss.rate()) * self.rate_bps as f64
    }
}

/// The systems compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum System {
    /// rotorlink's storage channel.
    Rotorlink,
    /// quinn-proto, BBR congestion control.
    QuinnBbr,
    /// quinn-proto, Cubic congestion control.
    QuinnCubic,
}

impl System {
    /// Every system, in table order.
    pub(crate) const ALL: [System; 3] = [System::Rotorlink, System::QuinnBbr, System::QuinnCubic];

    /// The name on the command line and in the table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            System::Rotorlink => "rotorlink",
            System::QuinnBbr => "quinn-bbr",
            System::QuinnCubic => "quinn-cubic",
        }
    }
}

/// What a run needs besides its point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunParams {
    /// Seeds both directions of the radio (and the links' key generators).
    pub(crate) seed: u64,
    /// Virtual time after which a run that has not delivered everything gives up.
    pub(crate) cap: Duration,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// Payload bytes the receiving application got.
    pub(crate) delivered: u64,
    /// When the sending application handed over its first byte.
    pub(crate) start: Timestamp,
    /// When the last byte was delivered (or, for an incomplete run, when it gave up).
    pub(crate) end: Timestamp,
    /// Every byte arrived before the cap.
    pub(crate) complete: bool,
    /// The longest time without a delivery between start and end: stalls show here.
    pub(crate) longest_gap: Duration,
    /// Datagrams the sender put on the radio.
    pub(crate) datagrams_sent: u64,
    /// Data retransmitted, in datagrams (rotorlink: segments retransmitted and tail copies;
    /// quinn: packets declared lost, whose data goes out again).
    pub(crate) retransmits: u64,
    /// The downlink (data direction) radio's counters.
    pub(crate) downlink: RadioStats,
    /// Anything unusual: link losses, timeouts, connection errors, stalls.
    pub(crate) notes: Vec<String>,
    /// Wall-clock time the run took.
    pub(crate) wall: Duration,
}

impl Outcome {
    /// Payload bits per second over the transfer (for an incomplete run, up to the cap).
    pub(crate) fn goodput_bps(&self) -> Option<f64> {
        let secs = self.end.saturating_since(self.start).as_secs_f64();
        (self.delivered > 0 && secs > 0.0).then(|| self.delivered as f64 * 8.0 / secs)
    }

    /// Count one delivery of `bytes` at `now`.
    pub(crate) fn delivered_at(&mut self, now: Timestamp, bytes: usize) {
        let since = if self.delivered == 0 {
            self.start
        } else {
            self.end
        };
        self.longest_gap = self.longest_gap.max(now.saturating_since(since));
        self.delivered += bytes as u64;
        self.end = now;
    }

    /// Give up at `now`: the run is incomplete, and its goodput counts the time until now.
    /// Where a run's loop goes next, given the earliest event `next` (an arrival or a
    /// timer): `Some(time)` to step to, or `None` (and the run given up) past the `cap`, when
    /// a timer due now keeps firing without progress, or when nothing is left to happen.
    pub(crate) fn step(
        &mut self,
        next: Option<Timestamp>,
        now: Timestamp,
        cap: Timestamp,
        cap_len: Duration,
        progressed: bool,
        spins: &mut u32,
    ) -> Option<Timestamp> {
        match next {
            Some(t) if t > cap => {
                self.give_up(
                    cap,
                    format!("incomplete at the {} s cap", cap_len.as_secs()),
                );
                None
            }
            Some(t) if t <= now && !progressed => {
                *spins += 1;
                if *spins > MAX_SPINS {
                    let why = format!(
                        "stalled at {:.3} s: a timer due now never clears",
                        secs(now)
                    );
                    self.give_up(now, why);
                    return None;
                }
                Some(now)
            }
            Some(t) => {
                *spins = 0;
                Some(now.max(t))
            }
            None => {
                self.give_up(
                    now,
                    format!("idle at {:.3} s: no timer, nothing in flight", secs(now)),
                );
                None
            }
        }
    }

    pub(crate) fn give_up(&mut self, now: Timestamp, why: String) {
        let since = if self.delivered == 0 {
            self.start
        } else {
            self.end
        };
        self.longest_gap = self.longest_gap.max(now.saturating_since(since));
        self.end = now;
        self.complete = false;
        self.notes.push(why);
    }
}

/// A timestamp as a duration since time zero, for the notes.
pub(crate) fn secs(t: Timestamp) -> f64 {
    t.saturating_since(Timestamp::ZERO).as_secs_f64()
}

/// The most iterations of a driver loop at one instant with nothing moving before it calls
/// the run stalled: a timer that fires at `now` and is never cleared would otherwise spin
/// forever.
pub(crate) const MAX_SPINS: u32 = 10_000;
