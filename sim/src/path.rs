//! One direction of a simulated radio: loss, delay, jitter (hence reordering), duplication
//! and bit corruption, in virtual time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rotorlink::Timestamp;

/// The behaviour of one direction of the radio.
#[derive(Debug, Clone, PartialEq)]
pub struct PathConfig {
    /// Probability that a datagram is lost, 0.0 to 1.0.
    pub loss: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in `0..=jitter`; datagrams can overtake each other.
    pub jitter: Duration,
    /// Probability that a datagram arrives twice.
    pub duplicate: f64,
    /// Probability that one random bit of a datagram is flipped.
    pub corrupt: f64,
}

impl Default for PathConfig {
    /// A clean path with 5 ms of delay.
    fn default() -> Self {
        PathConfig {
            loss: 0.0,
            delay: Duration::from_millis(5),
            jitter: Duration::ZERO,
            duplicate: 0.0,
            corrupt: 0.0,
        }
    }
}

/// What a path did to the datagrams it carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Datagrams put on the path.
    pub sent: u64,
    /// Datagrams dropped.
    pub lost: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Datagrams with a flipped bit.
    pub corrupted: u64,
    /// Datagrams delivered (copies included).
    pub delivered: u64,
}

/// One direction of the radio, holding the datagrams in flight.
#[derive(Debug)]
pub struct Path {
    config: PathConfig,
    rng: ChaCha8Rng,
    /// (arrival time, send order) -> datagram; the order keeps equal times first-in first-out.
    in_flight: BinaryHeap<Reverse<(Timestamp, u64, Vec<u8>)>>,
    order: u64,
    stats: PathStats,
}

impl Path {
    /// A path with its own random stream, from `seed`.
    pub fn new(config: PathConfig, seed: u64) -> Self {
        Path {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            in_flight: BinaryHeap::new(),
            order: 0,
            stats: PathStats::default(),
        }
    }

    /// The path's behaviour; change it mid-run to cut or restore the link.
    pub fn config_mut(&mut self) -> &mut PathConfig {
        &mut self.config
    }

    /// What the path has done so far.
    pub fn stats(&self) -> PathStats {
        self.stats
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    /// Put a datagram on the path at `now`.
    pub fn send(&mut self, now: Timestamp, datagram: &[u8]) {
        self.stats.sent += 1;
        if self.chance(self.config.loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut bytes = datagram.to_vec();
            if !bytes.is_empty() && self.chance(self.config.corrupt) {
                let bit = self.rng.next_u64() as usize % (bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
                self.stats.corrupted += 1;
            }
            let jitter_us = self.config.jitter.as_micros() as u64;
            let extra = if jitter_us > 0 {
                self.rng.next_u64() % (jitter_us + 1)
            } else {
                0
            };
            let arrival = now + self.config.delay + Duration::from_micros(extra);
            self.order += 1;
            self.in_flight.push(Reverse((arrival, self.order, bytes)));
        }
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_arrival(&self) -> Option<Timestamp> {
        self.in_flight.peek().map(|Reverse((t, _, _))| *t)
    }

    /// The next datagram that has arrived by `now`.
    pub fn receive(&mut self, now: Timestamp) -> Option<Vec<u8>> {
        if self.next_arrival()? > now {
            return None;
        }
        let Reverse((_, _, bytes)) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_path() {
        let cfg = PathConfig {
            loss: 0.2,
            jitter: Duration::from_millis(3),
            duplicate: 0.1,
            corrupt: 0.1,
            ..PathConfig::default()
        };
        let run = |seed| {
            let mut p = Path::new(cfg.clone(), seed);
            for i in 0..500u32 {
                p.send(Timestamp::from_millis(u64::from(i)), &i.to_be_bytes());
            }
            let mut out = Vec::new();
            while let Some(b) = p.receive(Timestamp::from_millis(10_000)) {
                out.push(b);
            }
            (out, p.stats())
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let (_, stats) = run(1);
        assert!((60..140).contains(&stats.lost), "{stats:?}");
        assert!(stats.duplicated > 10 && stats.corrupted > 10, "{stats:?}");
    }

    #[test]
    fn nothing_arrives_before_its_delay() {
        let mut p = Path::new(PathConfig::default(), 0);
        p.send(Timestamp::ZERO, b"x");
        assert_eq!(p.next_arrival(), Some(Timestamp::from_millis(5)));
        assert_eq!(p.receive(Timestamp::from_millis(4)), None);
        assert_eq!(p.receive(Timestamp::from_millis(5)), Some(b"x".to_vec()));
    }
}
