//! Many links behind one socket: a ground station flying a fleet of aircraft.
//!
//! A [`Fleet`] holds remote links, one per aircraft, and does for all of them what a caller
//! does for one [`Link`]: datagrams in, datagrams out, events, one wake-up time. Every
//! frame's header names the index its receiver chose (PROTOCOL.md 3), so an incoming
//! datagram goes to the link that receives on the index it names ([`Link::receive_indices`]:
//! the session's, and the handshake's under way, a fresh one per handshake), handshake
//! replies included; anything else is dropped after reading the header and counted. The links'
//! deadlines sit in one heap, so waking costs `O(log n)` however many links there are,
//! and the caller needs no task per link.
//!
//! ```text
//!   socket ──datagram──▶ handle_datagram ──receiver index──▶ link k ──▶ poll_event: (k, event)
//!   socket ◀──(k, transmit)── poll_transmit ◀── the links with something to send, in turn
//!   sleep until poll_timeout(); handle_timeout(now) ──▶ the links whose deadline passed
//! ```
//!
//! Sending goes through [`Fleet::with_link`], after which the fleet knows that the link may
//! have something to send and a new deadline. Links that leave their key stretching to the
//! caller ([`Link::set_defer_key_stretching`]: a pairing's or an unlock's Argon2id would
//! otherwise hold every link) hand it out through [`Fleet::poll_key_stretch`].
//!
//! # Example
//!
//! One loop for every aircraft (here one link, established from a secret; in a ground
//! station each comes from [`Link::remote`] and `pair` or `connect`, inside `with_link`):
//!
//! ```
//! use rotorlink::{Channel, Event, Fleet, Timestamp};
//! # use rotorlink::{Config, Link, Role, Secret};
//! # use rand_chacha::ChaCha20Rng;
//! # use rand_core::SeedableRng;
//! # let link: Link = Link::from_secret(Role::Remote, Config::default(), &Secret::new([1; 32]),
//! #     &[0; 32], 7, 9, "10.0.0.1:47474".parse().unwrap(),
//! #     &mut ChaCha20Rng::seed_from_u64(1), Timestamp::ZERO).unwrap();
//! let mut fleet: Fleet = Fleet::new();
//! let aircraft_1 = fleet.insert(link).map_err(|_| "index taken")?;
//! let now = Timestamp::ZERO;
//! fleet
//!     .with_link(aircraft_1, |link| link.send(Channel::Control, b"sticks"))
//!     .ok_or("no such link")?
//!     .map_err(|_| "queue full")?;
//! let mut buf = [0u8; 1500];
//! while let Some((_aircraft, t)) = fleet.poll_transmit(now, &mut buf) {
//!     // socket.send_to(&buf[..t.len], t.destination)
//!     assert_eq!(t.channel, Some(Channel::Control));
//! }
//! // For each datagram from the socket: fleet.handle_datagram(now, from, &datagram)
//! while let Some((aircraft, event)) = fleet.poll_event() {
//!     if let Event::Message { channel, data } = event {
//!         println!("aircraft {aircraft:?}: {channel:?}, {} bytes", data.len());
//!         fleet.with_link(aircraft, |link| link.recycle(data));
//!     }
//! }
//! // Sleep until fleet.poll_timeout() (or a datagram), then fleet.handle_timeout(now).
//! assert!(fleet.poll_timeout().is_some());
//! # Ok::<(), &str>(())
//! ```

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BinaryHeap, VecDeque};
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::net::SocketAddr;

use crate::crypto::{AeadProvider, RustCrypto};
use crate::error::Error;
use crate::event::Event;
use crate::handshake::stretch::KeyStretch;
use crate::link::{Link, Transmit};
use crate::time::Timestamp;
use crate::wire::{Frame, Header};

/// Which link of a [`Fleet`]: given by [`Fleet::insert`], never reused. (Not the link's
/// index, which changes with each handshake.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkKey(u64);

/// One link and what the fleet knows of it.
struct Slot<P: AeadProvider> {
    /// Boxed: a link is several KiB, and the map moves its entries.
    link: Box<Link<P>>,
    /// The deadline in the timer heap for this link (older heap entries are stale).
    deadline: Option<Timestamp>,
    /// The link's indices when last looked at, and those of them routed to it (all but
    /// one another link had first).
    indices: [Option<u32>; 2],
    routed: [Option<u32>; 2],
    /// In `transmit_ready` / `event_ready` / `stretch_ready`.
    may_transmit: bool,
    may_have_events: bool,
    may_stretch: bool,
}

/// Counters of what the fleet itself dropped (each link counts its own drops).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetStats {
    /// Datagrams received, routed or not.
    pub datagrams_received: u64,
    /// Datagrams naming a receiver index no link of the fleet has.
    pub unknown_receiver: u64,
    /// Datagrams too short or malformed to read a header from.
    pub malformed: u64,
    /// Times a link's new index was already another link's (1 in 2^32 / links per
    /// handshake): the other keeps the route, and this link's handshake times out and
    /// starts again with another index.
    pub index_collisions: u64,
}

/// Many links over one socket, demultiplexed by receiver index, with one timer heap
/// (module docs).
pub struct Fleet<P: AeadProvider = RustCrypto> {
    links: BTreeMap<u64, Slot<P>>,
    /// Receiver index to link.
    routes: BTreeMap<u32, u64>,
    next_key: u64,
    /// `(deadline, key)`, earliest first; an entry whose deadline is not its slot's is stale.
    timers: BinaryHeap<Reverse<(Timestamp, u64)>>,
    /// Links that may have a datagram to send, taken in turn.
    transmit_ready: VecDeque<u64>,
    /// Links that may have events.
    event_ready: VecDeque<u64>,
    /// Links with a key stretching waiting to be taken.
    stretch_ready: VecDeque<u64>,
    /// Keys whose deadline passed, collected before any is handled.
    due: Vec<u64>,
    stats: FleetStats,
}

impl<P: AeadProvider> Default for Fleet<P> {
    fn default() -> Self {
        Fleet {
            links: BTreeMap::new(),
            routes: BTreeMap::new(),
            next_key: 0,
            timers: BinaryHeap::new(),
            transmit_ready: VecDeque::new(),
            event_ready: VecDeque::new(),
            stretch_ready: VecDeque::new(),
            due: Vec::new(),
            stats: FleetStats::default(),
        }
    }
}

impl<P: AeadProvider> Fleet<P> {
    /// An empty fleet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a link. A fleet holds remotes: an aircraft answers `Init`s, which name no
    /// receiver index, on a socket of its own.
    ///
    /// # Errors
    /// The link itself, if another link of the fleet already receives on one of its
    /// indices (make another: indices are random).
    pub fn insert(&mut self, link: Link<P>) -> Result<LinkKey, Box<Link<P>>> {
        let taken = link
            .receive_indices()
            .iter()
            .flatten()
            .any(|i| self.routes.contains_key(i));
        if taken {
            return Err(Box::new(link));
        }
        let key = self.next_key;
        self.next_key += 1;
        self.links.insert(
            key,
            Slot {
                link: Box::new(link),
                deadline: None,
                indices: [None; 2],
                routed: [None; 2],
                may_transmit: false,
                may_have_events: false,
                may_stretch: false,
            },
        );
        self.touched(key);
        Ok(LinkKey(key))
    }

    /// Take a link out of the fleet.
    pub fn remove(&mut self, key: LinkKey) -> Option<Link<P>> {
        let slot = self.links.remove(&key.0)?;
        for index in slot.routed.iter().flatten() {
            self.routes.remove(index);
        }
        // Its queue and heap entries go stale and are skipped.
        Some(*slot.link)
    }

    /// The link `key`, to look at.
    pub fn get(&self, key: LinkKey) -> Option<&Link<P>> {
        self.links.get(&key.0).map(|slot| &*slot.link)
    }

    /// Use the link `key` (send, pair, connect, close, recycle...): `f` runs on it, and
    /// then the fleet takes note of what it may have to send and when it must be woken.
    /// `None` if there is no such link.
    pub fn with_link<R>(&mut self, key: LinkKey, f: impl FnOnce(&mut Link<P>) -> R) -> Option<R> {
        let slot = self.links.get_mut(&key.0)?;
        let result = f(&mut slot.link);
        self.touched(key.0);
        Some(result)
    }

    /// The keys of every link, oldest first.
    pub fn keys(&self) -> impl Iterator<Item = LinkKey> + '_ {
        self.links.keys().map(|&k| LinkKey(k))
    }

    /// How many links.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// No link at all?
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// What the fleet itself dropped.
    pub fn stats(&self) -> FleetStats {
        self.stats
    }

    /// Take one datagram from the socket and hand it to the link its header names.
    ///
    /// # Errors
    /// [`Error::Malformed`] if no header can be read, [`Error::UnknownReceiver`] if no link
    /// receives on the index it names (both counted in [`Fleet::stats`], no link touched),
    /// or what the link returned (counted in its [`Link::stats`]; `key` is then known from
    /// the header only).
    pub fn handle_datagram(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<LinkKey, Error> {
        self.stats.datagrams_received += 1;
        let index = match Frame::new_checked(datagram).and_then(|f| Header::parse(&f)) {
            Ok(header) => header.receiver_index,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(Error::Malformed(e));
            }
        };
        let Some((key, slot)) = self
            .routes
            .get(&index)
            .and_then(|&key| Some(key).zip(self.links.get_mut(&key)))
        else {
            self.stats.unknown_receiver += 1;
            return Err(Error::UnknownReceiver);
        };
        let result = slot.link.handle_datagram(now, from, datagram);
        self.touched(key);
        result.map(|()| LinkKey(key))
    }

    /// The next datagram to send, from the links with something to send, one datagram per
    /// link in turn. `buf` as for [`Link::poll_transmit`].
    pub fn poll_transmit(&mut self, now: Timestamp, buf: &mut [u8]) -> Option<(LinkKey, Transmit)> {
        while let Some(key) = self.transmit_ready.pop_front() {
            let Some(slot) = self.links.get_mut(&key) else {
                continue; // removed
            };
            match slot.link.poll_transmit(now, buf) {
                Some(transmit) => {
                    // Back of the line: the next datagram is another link's.
                    self.transmit_ready.push_back(key);
                    self.reschedule(key);
                    self.mark_events(key);
                    return Some((LinkKey(key), transmit));
                }
                None => {
                    slot.may_transmit = false;
                    self.reschedule(key);
                    self.mark_events(key);
                }
            }
        }
        None
    }

    /// The next event of any link.
    pub fn poll_event(&mut self) -> Option<(LinkKey, Event)> {
        while let Some(&key) = self.event_ready.front() {
            // A removed link's entry is just dropped.
            if let Some(slot) = self.links.get_mut(&key) {
                match slot.link.poll_event() {
                    Some(event) => return Some((LinkKey(key), event)),
                    None => slot.may_have_events = false,
                }
            }
            self.event_ready.pop_front();
        }
        None
    }

    /// A key stretching of any link (remotes that leave it to the caller:
    /// [`Link::set_defer_key_stretching`]), each once, taken whether or not its
    /// [`Event::KeyStretchReady`] was read: a caller that holds its events back does not
    /// hold a pairing or an unlock with them. Hand the result to that link's
    /// [`Link::handle_key_stretched`] (through [`Fleet::with_link`]).
    pub fn poll_key_stretch(&mut self) -> Option<(LinkKey, KeyStretch)> {
        while let Some(&key) = self.stretch_ready.front() {
            // A removed link's entry is just dropped.
            if let Some(slot) = self.links.get_mut(&key) {
                match slot.link.poll_key_stretch() {
                    Some(job) => return Some((LinkKey(key), job)),
                    None => slot.may_stretch = false,
                }
            }
            self.stretch_ready.pop_front();
        }
        None
    }

    /// The earliest deadline of every link (see [`Link::poll_timeout`]).
    pub fn poll_timeout(&mut self) -> Option<Timestamp> {
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if self.is_current(at, key) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Run the timers of every link whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        // Collected first: a link may name a deadline that is still `now` until its
        // `poll_transmit` runs, and must not be handled twice in one call.
        let mut due = core::mem::take(&mut self.due);
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.is_current(at, key) {
                due.push(key);
            }
        }
        for &key in &due {
            if let Some(slot) = self.links.get_mut(&key) {
                slot.deadline = None;
                slot.link.handle_timeout(now);
                self.touched(key);
            }
        }
        due.clear();
        self.due = due;
    }

    fn is_current(&self, at: Timestamp, key: u64) -> bool {
        self.links
            .get(&key)
            .is_some_and(|slot| slot.deadline == Some(at))
    }

    /// The link `key` was used: it may have datagrams and events, and a new deadline.
    fn touched(&mut self, key: u64) {
        let Some(slot) = self.links.get_mut(&key) else {
            return;
        };
        if !slot.may_transmit {
            slot.may_transmit = true;
            self.transmit_ready.push_back(key);
        }
        self.mark_events(key);
        if let Some(slot) = self.links.get_mut(&key) {
            if !slot.may_stretch && slot.link.has_key_stretch() {
                slot.may_stretch = true;
                self.stretch_ready.push_back(key);
            }
        }
        self.reschedule(key);
    }

    fn mark_events(&mut self, key: u64) {
        if let Some(slot) = self.links.get_mut(&key) {
            if !slot.may_have_events {
                slot.may_have_events = true;
                self.event_ready.push_back(key);
            }
        }
    }

    /// Route the link's current indices to it, and put its current deadline in the heap
    /// if it moved.
    fn reschedule(&mut self, key: u64) {
        let Some(slot) = self.links.get_mut(&key) else {
            return;
        };
        let indices = slot.link.receive_indices();
        if indices != slot.indices {
            slot.indices = indices;
            for old in slot.routed.iter().flatten() {
                if !indices.contains(&Some(*old)) && self.routes.get(old) == Some(&key) {
                    self.routes.remove(old);
                }
            }
            let mut routed = [None; 2];
            for (slot_index, new) in routed.iter_mut().zip(indices) {
                let Some(new) = new else { continue };
                match self.routes.get(&new) {
                    Some(&other) if other != key => self.stats.index_collisions += 1,
                    _ => {
                        self.routes.insert(new, key);
                        *slot_index = Some(new);
                    }
                }
            }
            slot.routed = routed;
        }
        let deadline = slot.link.poll_timeout();
        if deadline == slot.deadline {
            return;
        }
        slot.deadline = deadline;
        if let Some(at) = deadline {
            self.timers.push(Reverse((at, key)));
        }
        // Deadlines move on every frame sent (the keepalive): stale entries pile up until
        // their time comes. Past a bound, rebuild the heap from the links.
        if self.timers.len() > 4 * self.links.len() + 64 {
            self.timers = self
                .links
                .iter()
                .filter_map(|(&k, s)| s.deadline.map(|at| Reverse((at, k))))
                .collect();
        }
    }
}

impl<P: AeadProvider> core::fmt::Debug for Fleet<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Fleet")
            .field("links", &self.links.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
