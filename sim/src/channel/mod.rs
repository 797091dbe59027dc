//! The simulated radio, one [`RadioChannel`] per direction, and the on-path [`Adversary`]
//! hook for the security tests.
//!
//! # One direction
//!
//! A datagram handed to [`RadioChannel::send`] at time `now` goes through, in order:
//!
//! 1. **MTU**: larger than [`ChannelConfig::mtu`]: dropped (`dropped_mtu`).
//! 2. **Bottleneck** ([`ChannelConfig::rate_bps`]): the sender's radio transmits one datagram
//!    after another at `rate_bps` (or the rate [`ChannelConfig::rate_steps`] set by the time
//!    its transmission starts); a datagram that finds it busy waits in a queue of
//!    [`ChannelConfig::queue_bytes`] bytes, or is dropped if it does not fit (drop-tail,
//!    `dropped_queue`). The datagram leaves the radio when its last bit is transmitted.
//! 3. **Air**, at that departure time: the Gilbert–Elliott chain ([`Burst`]) steps and may
//!    lose it (`lost_burst`), then the [`DistanceProfile`] may (`lost_distance`), then the
//!    independent `loss` may (`lost_random`). All three also count in `lost`.
//! 4. **Duplication**: it may become two copies (`duplicated`).
//! 5. **Each copy**: may get one random bit flipped (`corrupted`), and arrives after `delay`
//!    plus a uniform `0..=jitter`, plus, with probability `reorder`, a hold-back of
//!    `1 µs..=reorder_delay` (`reordered`).
//!
//! Copies arriving at the same microsecond come out first-in first-out. Every random choice
//! comes from the channel's own ChaCha8 stream, seeded by [`RadioChannel::new`], and is made
//! in send order, so the same seed and the same sends give the same arrivals, byte for
//! byte. No hash map is involved anywhere.
//!
//! # Both directions and the adversary
//!
//! [`Pair`](crate::Pair) owns two channels (`uplink`: remote to aircraft, `downlink`:
//! aircraft to remote). With an [`Adversary`] set, every datagram a link transmits goes to
//! the adversary first, and only what the adversary forwards or injects (through [`Air`])
//! enters a channel: the adversary sits between the sender and the impairments, so its
//! output then sees the MTU, the bottleneck, loss, duplication, corruption and delay like any
//! other datagram, and is counted in the channel's `sent`.

mod adversary;
mod config;

pub(crate) use adversary::OnPath;
pub use adversary::{Adversary, Air, Direction, FnAdversary, Recorder, Sighting};
pub use config::{Burst, ChannelConfig, ChannelConfigError, DistanceProfile, RateStep};

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rotorlink::Timestamp;

/// What a channel did to the datagrams it carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RadioStats {
    /// Datagrams put on the channel.
    pub sent: u64,
    /// Copies delivered (duplicates included).
    pub delivered: u64,
    /// Bytes delivered (duplicates included).
    pub bytes_delivered: u64,
    /// Datagrams lost on the air, all causes: `lost_random + lost_burst + lost_distance`.
    pub lost: u64,
    /// Lost to the independent `loss`.
    pub lost_random: u64,
    /// Lost in the bad state of the Gilbert–Elliott chain.
    pub lost_burst: u64,
    /// Lost to the distance profile.
    pub lost_distance: u64,
    /// Dropped because the bottleneck queue was full.
    pub dropped_queue: u64,
    /// Dropped because they were larger than the MTU.
    pub dropped_mtu: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Copies with a flipped bit.
    pub corrupted: u64,
    /// Copies held back to be overtaken.
    pub reordered: u64,
}

impl RadioStats {
    /// Datagrams that never arrived: lost on the air or dropped at the sender.
    pub fn dropped(&self) -> u64 {
        self.lost + self.dropped_queue + self.dropped_mtu
    }
}

/// One direction of the radio, holding the datagrams in flight.
#[derive(Debug)]
pub struct RadioChannel {
    config: ChannelConfig,
    rng: ChaCha8Rng,
    /// (arrival time, send order, datagram): the order keeps equal times first-in first-out.
    in_flight: BinaryHeap<Reverse<(Timestamp, u64, Vec<u8>)>>,
    order: u64,
    stats: RadioStats,
    /// The Gilbert–Elliott chain is in its bad state.
    bad: bool,
    /// When the bottleneck finishes transmitting what it accepted, in nanoseconds.
    busy_until_ns: u64,
    /// Accepted datagrams that have not started transmitting: (start in ns, length).
    waiting: VecDeque<(u64, usize)>,
    waiting_bytes: usize,
}

impl RadioChannel {
    /// A channel with its own random stream (ChaCha8, from `seed`).
    ///
    /// # Panics
    /// If `config` fails [`ChannelConfig::validate`].
    pub fn new(config: ChannelConfig, seed: u64) -> Self {
        if let Err(e) = config.validate() {
            panic!("{e}");
        }
        RadioChannel {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            in_flight: BinaryHeap::new(),
            order: 0,
            stats: RadioStats::default(),
            bad: false,
            busy_until_ns: 0,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
        }
    }

    /// The channel's behaviour.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// The channel's behaviour; change it mid-run to cut or restore the link. Datagrams
    /// already in flight keep their fate. Keep it valid ([`ChannelConfig::validate`]): out of
    /// range values do not panic, but mean nothing useful.
    pub fn config_mut(&mut self) -> &mut ChannelConfig {
        &mut self.config
    }

    /// What the channel has done so far.
    pub fn stats(&self) -> RadioStats {
        self.stats
    }

    /// Copies in flight, not yet received.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// True with probability `p`; draws from the stream only if the answer is uncertain.
    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 || p.is_nan() {
            false
        } else if p >= 1.0 {
            true
        } else {
            // 53 random bits: uniform in [0, 1).
            ((self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) < p
        }
    }

    /// Uniform in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        match max.checked_add(1) {
            Some(n) => ((u128::from(self.rng.next_u64()) * u128::from(n)) >> 64) as u64,
            None => self.rng.next_u64(),
        }
    }

    /// Put a datagram on the channel at `now`.
    pub fn send(&mut self, now: Timestamp, datagram: &[u8]) {
        self.send_vec(now, datagram.to_vec());
    }

    /// [`RadioChannel::send`], taking the datagram by value.
    pub fn send_vec(&mut self, now: Timestamp, datagram: Vec<u8>) {
        self.stats.sent += 1;
        if self.config.mtu.is_some_and(|mtu| datagram.len() > mtu) {
            self.stats.dropped_mtu += 1;
            return;
        }
        let Some(departure) = self.bottleneck(now, datagram.len()) else {
            self.stats.dropped_queue += 1;
            return;
        };
        if self.lost_on_air(departure) {
            self.stats.lost += 1;
            return;
        }
        if self.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            self.propagate(departure, datagram.clone());
        }
        self.propagate(departure, datagram);
    }

    /// Admit a datagram of `len` bytes to the bottleneck at `now`; when its last bit leaves,
    /// or `None` if the queue is full.
    fn bottleneck(&mut self, now: Timestamp, len: usize) -> Option<Timestamp> {
        let now_ns = now.as_micros().saturating_mul(1000);
        while let Some(&(start, n)) = self.waiting.front() {
            if start > now_ns {
                break;
            }
            self.waiting.pop_front();
            self.waiting_bytes -= n;
        }
        let start = self.busy_until_ns.max(now_ns);
        // The rate in force when the transmission starts (rate steps change it mid-run).
        let Some(rate) = self.config.rate_at(Timestamp::from_micros(start / 1000)) else {
            return Some(now);
        };
        let waits = start > now_ns;
        if waits && self.waiting_bytes + len > self.config.queue_bytes {
            return None;
        }
        let bits = len as u128 * 8 * 1_000_000_000;
        let serialization = bits.div_ceil(u128::from(rate.max(1)));
        self.busy_until_ns = start.saturating_add(u64::try_from(serialization).unwrap_or(u64::MAX));
        if waits {
            self.waiting.push_back((start, len));
            self.waiting_bytes += len;
        }
        Some(Timestamp::from_micros(self.busy_until_ns.div_ceil(1000)))
    }

    /// Step the burst chain and draw the air's losses for a datagram leaving at `at`.
    fn lost_on_air(&mut self, at: Timestamp) -> bool {
        if let Some(burst) = self.config.burst {
            let flip = if self.bad {
                burst.bad_to_good
            } else {
                burst.good_to_bad
            };
            if self.chance(flip) {
                self.bad = !self.bad;
            }
            if self.bad && self.chance(burst.bad_loss) {
                self.stats.lost_burst += 1;
                return true;
            }
        }
        if let Some(distance) = self.config.distance {
            if self.chance(distance.loss_at(at)) {
                self.stats.lost_distance += 1;
                return true;
            }
        }
        if self.chance(self.config.loss) {
            self.stats.lost_random += 1;
            return true;
        }
        false
    }

    /// Corrupt, delay and queue one copy that left the sender at `departure`.
    fn propagate(&mut self, departure: Timestamp, mut bytes: Vec<u8>) {
        if !bytes.is_empty() && self.chance(self.config.corrupt) {
            let bit = self.upto(bytes.len() as u64 * 8 - 1) as usize;
            bytes[bit / 8] ^= 1 << (bit % 8);
            self.stats.corrupted += 1;
        }
        let jitter = self.upto(micros(self.config.jitter));
        let mut arrival = departure + self.config.delay + Duration::from_micros(jitter);
        if self.chance(self.config.reorder) {
            let hold = 1 + self.upto(micros(self.config.reorder_delay).saturating_sub(1));
            arrival = arrival + Duration::from_micros(hold);
            self.stats.reordered += 1;
        }
        self.order += 1;
        self.in_flight.push(Reverse((arrival, self.order, bytes)));
    }

    /// When the next copy arrives, if any is in flight.
    pub fn next_arrival(&self) -> Option<Timestamp> {
        self.in_flight.peek().map(|Reverse((t, _, _))| *t)
    }

    /// The next copy that has arrived by `now`: earliest arrival first, first sent first
    /// among equal arrivals.
    pub fn receive(&mut self, now: Timestamp) -> Option<Vec<u8>> {
        if self.next_arrival()? > now {
            return None;
        }
        let Reverse((_, _, bytes)) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        self.stats.bytes_delivered += bytes.len() as u64;
        Some(bytes)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
