//! The on-path adversary: a hook between each link and the radio that can observe, drop,
//! delay, replay, inject, reflect and modify datagrams, for the security tests.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rotorlink::{Role, Timestamp};

use super::RadioChannel;

/// Which way a datagram travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Remote to aircraft.
    Uplink,
    /// Aircraft to remote.
    Downlink,
}

impl Direction {
    /// The other direction: where a reflected datagram goes.
    pub const fn reverse(self) -> Self {
        match self {
            Direction::Uplink => Direction::Downlink,
            Direction::Downlink => Direction::Uplink,
        }
    }

    /// The direction `sender`'s datagrams travel.
    pub const fn from_sender(sender: Role) -> Self {
        match sender {
            Role::Aircraft => Direction::Downlink,
            Role::Remote => Direction::Uplink,
        }
    }

    /// The end that receives datagrams travelling this way.
    pub const fn receiver(self) -> Role {
        match self {
            Direction::Uplink => Role::Aircraft,
            Direction::Downlink => Role::Remote,
        }
    }
}

/// An attacker on the radio path.
///
/// [`Pair`](crate::Pair) hands it every datagram either link transmits, before the datagram
/// reaches the channel. Whatever it puts back through [`Air`] enters the channels (and then
/// sees their loss, delay and other impairments); whatever it does not is dropped. Its own
/// output is not shown to it again. It must be deterministic for runs to be reproducible:
/// draw any randomness from a seeded generator.
pub trait Adversary: Send {
    /// `datagram` was transmitted at `now`, travelling `dir`. Forward it, change it, delay
    /// it, keep it to replay later, or inject others, through `air`; or do nothing to drop
    /// it.
    fn on_air(&mut self, now: Timestamp, dir: Direction, datagram: Vec<u8>, air: &mut Air);
}

/// What an [`Adversary`] can put on the air while it handles a datagram.
///
/// Everything goes into a channel at the time asked for (never earlier than now): the
/// [`Pair`](crate::Pair) wakes up for future ones by itself.
#[derive(Debug)]
pub struct Air {
    now: Timestamp,
    dir: Direction,
    out: Vec<(Timestamp, Direction, Vec<u8>)>,
}

impl Air {
    /// The current virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The direction of the datagram being handled.
    pub fn direction(&self) -> Direction {
        self.dir
    }

    /// Send `datagram` on its way now (the original, or a modified one).
    pub fn forward(&mut self, datagram: Vec<u8>) {
        self.out.push((self.now, self.dir, datagram));
    }

    /// Send `datagram` on its way after holding it for `delay`.
    pub fn forward_after(&mut self, delay: Duration, datagram: Vec<u8>) {
        self.out.push((self.now + delay, self.dir, datagram));
    }

    /// Put `datagram` on the air travelling `dir` at `at` (now, if `at` has passed): a
    /// replay of a kept copy, a forged datagram, or, into the reverse direction, a
    /// reflection.
    pub fn inject(&mut self, dir: Direction, datagram: Vec<u8>, at: Timestamp) {
        self.out.push((at.max(self.now), dir, datagram));
    }

    /// Send `datagram` back the way it came, now.
    pub fn reflect(&mut self, datagram: Vec<u8>) {
        self.out.push((self.now, self.dir.reverse(), datagram));
    }
}

/// One datagram seen on the air: when, which way, and its bytes.
pub type Sighting = (Timestamp, Direction, Vec<u8>);

/// An adversary that forwards everything untouched and keeps a log of what it saw.
///
/// Clones share the log: keep one, give the other to [`Pair::set_adversary`], and read the
/// log as the run goes.
///
/// [`Pair::set_adversary`]: crate::Pair::set_adversary
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    log: Arc<Mutex<Vec<Sighting>>>,
}

impl Recorder {
    /// A recorder with an empty log.
    pub fn new() -> Self {
        Recorder::default()
    }

    /// Everything seen so far, in the order seen.
    pub fn log(&self) -> Vec<Sighting> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The datagrams seen travelling `dir`, in order.
    pub fn datagrams(&self, dir: Direction) -> Vec<Vec<u8>> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, d, _)| *d == dir)
            .map(|(_, _, b)| b.clone())
            .collect()
    }
}

impl Adversary for Recorder {
    fn on_air(&mut self, now: Timestamp, dir: Direction, datagram: Vec<u8>, air: &mut Air) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((now, dir, datagram.clone()));
        air.forward(datagram);
    }
}

/// An adversary made of a closure, for tests:
/// `FnAdversary::new(|now, dir, datagram, air| air.forward(datagram))`.
pub struct FnAdversary<F>(F);

impl<F> FnAdversary<F>
where
    F: FnMut(Timestamp, Direction, Vec<u8>, &mut Air) + Send,
{
    /// The adversary that calls `f` for every datagram.
    pub fn new(f: F) -> Self {
        FnAdversary(f)
    }
}

impl<F> std::fmt::Debug for FnAdversary<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnAdversary")
    }
}

impl<F> Adversary for FnAdversary<F>
where
    F: FnMut(Timestamp, Direction, Vec<u8>, &mut Air) + Send,
{
    fn on_air(&mut self, now: Timestamp, dir: Direction, datagram: Vec<u8>, air: &mut Air) {
        (self.0)(now, dir, datagram, air);
    }
}

fn channel<'a>(
    dir: Direction,
    uplink: &'a mut RadioChannel,
    downlink: &'a mut RadioChannel,
) -> &'a mut RadioChannel {
    match dir {
        Direction::Uplink => uplink,
        Direction::Downlink => downlink,
    }
}

/// A datagram waiting to go on the air: (time, order, direction, bytes); the order keeps
/// equal times first-in first-out.
type Scheduled = Reverse<(Timestamp, u64, Direction, Vec<u8>)>;

/// The adversary's place on the path, with the datagrams it scheduled for later.
pub(crate) struct OnPath {
    adversary: Option<Box<dyn Adversary>>,
    pending: BinaryHeap<Scheduled>,
    order: u64,
    out: Vec<(Timestamp, Direction, Vec<u8>)>,
}

impl OnPath {
    pub(crate) fn new() -> Self {
        OnPath {
            adversary: None,
            pending: BinaryHeap::new(),
            order: 0,
            out: Vec::new(),
        }
    }

    /// Put `adversary` on the path, returning the one it replaces.
    pub(crate) fn set(&mut self, adversary: Box<dyn Adversary>) -> Option<Box<dyn Adversary>> {
        self.adversary.replace(adversary)
    }

    /// Take the adversary off the path.
    pub(crate) fn take(&mut self) -> Option<Box<dyn Adversary>> {
        self.adversary.take()
    }

    /// A link transmitted `datagram` travelling `dir` at `now`.
    pub(crate) fn transmit(
        &mut self,
        now: Timestamp,
        dir: Direction,
        datagram: &[u8],
        uplink: &mut RadioChannel,
        downlink: &mut RadioChannel,
    ) {
        let Some(adversary) = self.adversary.as_mut() else {
            channel(dir, uplink, downlink).send(now, datagram);
            return;
        };
        let mut air = Air {
            now,
            dir,
            out: std::mem::take(&mut self.out),
        };
        adversary.on_air(now, dir, datagram.to_vec(), &mut air);
        let mut out = air.out;
        for (at, dir, bytes) in out.drain(..) {
            if at <= now {
                channel(dir, uplink, downlink).send_vec(now, bytes);
            } else {
                self.schedule(at, dir, bytes);
            }
        }
        self.out = out;
    }

    /// Put `datagram` on the air travelling `dir` at `at`.
    pub(crate) fn schedule(&mut self, at: Timestamp, dir: Direction, datagram: Vec<u8>) {
        self.order += 1;
        self.pending.push(Reverse((at, self.order, dir, datagram)));
    }

    /// When the next scheduled datagram goes on the air.
    pub(crate) fn next_injection(&self) -> Option<Timestamp> {
        self.pending.peek().map(|Reverse((t, ..))| *t)
    }

    /// Put every scheduled datagram due by `now` into its channel. True if any was.
    pub(crate) fn release(
        &mut self,
        now: Timestamp,
        uplink: &mut RadioChannel,
        downlink: &mut RadioChannel,
    ) -> bool {
        let mut moved = false;
        while self.next_injection().is_some_and(|t| t <= now) {
            if let Some(Reverse((_, _, dir, bytes))) = self.pending.pop() {
                channel(dir, uplink, downlink).send_vec(now, bytes);
                moved = true;
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelConfig;
    use crate::pair::{Pair, Received};
    use rotorlink::{Channel, Config};

    fn pair() -> Pair {
        Pair::new(
            Config::default(),
            ChannelConfig::default(),
            ChannelConfig::default(),
            1,
        )
        .unwrap()
    }

    /// Ten telemetry messages down and ten control messages up, one every 10 ms, then time
    /// for their feedback (relaxed: up to 100 ms later) and replays of it to arrive.
    fn fly(pair: &mut Pair) {
        for i in 0..10u8 {
            pair.aircraft.send(Channel::Telemetry, &[b'T', i]).unwrap();
            pair.remote.send(Channel::Control, &[b'C', i]).unwrap();
            pair.run_for(Duration::from_millis(10));
        }
        pair.run_for(Duration::from_millis(300));
    }

    fn telemetry(pair: &Pair) -> Vec<Vec<u8>> {
        pair.messages(Role::Remote, Channel::Telemetry)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn control(pair: &Pair) -> Vec<Vec<u8>> {
        pair.messages(Role::Aircraft, Channel::Control)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn numbered(tag: u8) -> Vec<Vec<u8>> {
        (0..10).map(|i| vec![tag, i]).collect()
    }

    #[test]
    fn the_recorder_sees_everything_and_changes_nothing() {
        let recorder = Recorder::new();
        let mut p = pair();
        assert!(p.set_adversary(Box::new(recorder.clone())).is_none());
        fly(&mut p);
        assert_eq!(telemetry(&p), numbered(b'T'));
        assert_eq!(control(&p), numbered(b'C'));
        let down = recorder.datagrams(Direction::Downlink);
        let up = recorder.datagrams(Direction::Uplink);
        assert_eq!(down.len() as u64, p.aircraft.stats().datagrams_sent);
        assert_eq!(up.len() as u64, p.remote.stats().datagrams_sent);
        assert_eq!(p.downlink.stats().sent, down.len() as u64);
        assert_eq!(p.uplink.stats().sent, up.len() as u64);
        let log = recorder.log();
        assert_eq!(log.len(), down.len() + up.len());
        assert_eq!(log[0].0, Timestamp::ZERO);
        assert!(log.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn dropping_one_direction_silences_it() {
        let mut p = pair();
        p.set_adversary(Box::new(FnAdversary::new(|_, dir, d, air: &mut Air| {
            if dir == Direction::Uplink {
                air.forward(d);
            }
        })));
        fly(&mut p);
        assert!(telemetry(&p).is_empty());
        assert_eq!(control(&p), numbered(b'C'));
        assert_eq!(p.downlink.stats().sent, 0);
    }

    #[test]
    fn modified_frames_fail_authentication() {
        let mut p = pair();
        p.set_adversary(Box::new(FnAdversary::new(
            |_, dir, mut d: Vec<u8>, air: &mut Air| {
                if dir == Direction::Downlink {
                    let last = d.len() - 1;
                    d[last] ^= 0x01;
                }
                air.forward(d);
            },
        )));
        fly(&mut p);
        assert!(telemetry(&p).is_empty());
        assert_eq!(control(&p), numbered(b'C'));
        let sent = p.aircraft.stats().datagrams_sent;
        assert!(sent >= 10);
        assert_eq!(p.remote.stats().dropped_auth, sent);
    }

    #[test]
    fn delayed_frames_arrive_late() {
        let mut p = pair();
        p.set_adversary(Box::new(FnAdversary::new(|_, dir, d, air: &mut Air| {
            if dir == Direction::Uplink {
                air.forward_after(Duration::from_millis(30), d);
            } else {
                air.forward(d);
            }
        })));
        p.remote.send(Channel::Control, b"up").unwrap();
        p.aircraft.send(Channel::Telemetry, b"down").unwrap();
        // Nothing is in flight on the uplink: the pair must wake up for the held datagram.
        assert_eq!(p.uplink.in_flight(), 0);
        p.run_for(Duration::from_millis(100));
        // The first message each end received (the aircraft's first event is its video
        // budget).
        let at = |log: &[Received]| {
            log.iter()
                .find_map(|r| match r {
                    Received::Message(t, _, _) => Some(*t),
                    _ => None,
                })
                .expect("a message")
        };
        assert_eq!(at(&p.aircraft_received), Timestamp::from_millis(35));
        assert_eq!(at(&p.remote_received), Timestamp::from_millis(5));
    }

    #[test]
    fn replayed_frames_are_rejected_as_duplicates() {
        let mut p = pair();
        p.set_adversary(Box::new(FnAdversary::new(
            |now, dir, d: Vec<u8>, air: &mut Air| {
                if dir == Direction::Downlink {
                    // Replay each frame twice: soon after, and much later.
                    air.inject(dir, d.clone(), now + Duration::from_millis(3));
                    air.inject(dir, d.clone(), now + Duration::from_millis(150));
                }
                air.forward(d);
            },
        )));
        fly(&mut p);
        assert_eq!(telemetry(&p), numbered(b'T'));
        let sent = p.aircraft.stats().datagrams_sent;
        let r = p.remote.stats();
        assert_eq!(r.dropped_duplicate + r.dropped_too_old, 2 * sent, "{r:?}");
        assert_eq!(r.dropped_duplicate, 2 * sent, "{r:?}");
        assert_eq!(p.downlink.stats().sent, 3 * sent);
    }

    #[test]
    fn injected_frames_are_rejected() {
        let mut p = pair();
        // A forged datagram from outside, and garbage from the adversary, in both directions.
        p.inject(
            Direction::Uplink,
            vec![0xee; 64],
            Timestamp::from_millis(50),
        );
        assert_eq!(p.next_wakeup(), Some(Timestamp::from_millis(50)));
        p.set_adversary(Box::new(FnAdversary::new(|now, dir, d, air: &mut Air| {
            air.inject(Direction::Downlink, vec![0x42; 3], now);
            air.inject(
                Direction::Uplink,
                vec![0x42; 100],
                now + Duration::from_millis(1),
            );
            air.forward(d);
            assert_eq!(air.direction(), dir);
            assert_eq!(air.now(), now);
        })));
        fly(&mut p);
        assert_eq!(telemetry(&p), numbered(b'T'));
        assert_eq!(control(&p), numbered(b'C'));
        let seen = p.aircraft.stats().datagrams_sent + p.remote.stats().datagrams_sent;
        let (a, r) = (p.aircraft.stats(), p.remote.stats());
        assert_eq!(r.dropped_total(), seen, "{r:?}");
        assert_eq!(a.dropped_total(), seen + 1, "{a:?}");
        assert_eq!(r.dropped_malformed, seen);
    }

    #[test]
    fn reflected_frames_are_rejected() {
        let mut p = pair();
        p.set_adversary(Box::new(FnAdversary::new(
            |_, dir, d: Vec<u8>, air: &mut Air| {
                if dir == Direction::Downlink {
                    air.reflect(d.clone());
                }
                air.forward(d);
            },
        )));
        fly(&mut p);
        assert_eq!(telemetry(&p), numbered(b'T'));
        assert_eq!(control(&p), numbered(b'C'), "nothing extra on the aircraft");
        assert!(p.messages(Role::Aircraft, Channel::Telemetry).is_empty());
        let a = p.aircraft.stats();
        assert_eq!(a.dropped_total(), a.datagrams_sent, "{a:?}");
        assert_eq!(
            p.uplink.stats().sent,
            p.remote.stats().datagrams_sent + a.datagrams_sent
        );
    }

    #[test]
    fn the_adversary_output_sees_the_impairments() {
        let recorder = Recorder::new();
        let mut p = pair();
        p.downlink.config_mut().loss = 1.0;
        p.set_adversary(Box::new(recorder.clone()));
        fly(&mut p);
        assert!(telemetry(&p).is_empty());
        let down = recorder.datagrams(Direction::Downlink).len() as u64;
        assert!(down >= 10);
        assert_eq!(p.downlink.stats().lost, down);
        // Off the path again: traffic flows clean.
        assert!(p.take_adversary().is_some());
        p.downlink.config_mut().loss = 0.0;
        fly(&mut p);
        assert_eq!(telemetry(&p), numbered(b'T'));
        assert_eq!(recorder.datagrams(Direction::Downlink).len() as u64, down);
    }

    #[test]
    fn directions() {
        assert_eq!(Direction::Uplink.reverse(), Direction::Downlink);
        assert_eq!(Direction::from_sender(Role::Aircraft), Direction::Downlink);
        assert_eq!(Direction::Uplink.receiver(), Role::Aircraft);
    }
}
