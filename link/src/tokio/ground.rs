//! A ground station: a [`Fleet`] of links on one UDP socket, run by one driver task.
//!
//! ```text
//!  application                       driver task (one for the fleet)        socket
//!  ───────────                       ───────────────────────────────        ──────
//!  gs.add(link) / gs.send(k, ch, b) ──lock──▶ Fleet ─┬─ poll_transmit ──────▶ send_batch
//!                              wake ──▶       timers ┤  handle_timeout       recv_batch ─┐
//!  gs.recv() ◀── (key, LinkEvent) ◀── poll_event ◀───┴─ handle_datagram ◀───────────────┘
//! ```
//!
//! No task per link: the fleet's timer heap gives the driver one wake-up time, and a
//! datagram is routed by the receiver index in its header. The socket is batched as
//! [`super::UdpTransport`] is (many datagrams per system call, where the system allows).
//! The links' key stretching (a pairing's, an unlock's: Argon2id) runs on blocking threads
//! ([`Fleet::poll_key_stretch`]), so one aircraft's pairing holds no other aircraft's frames.
//!
//! ```no_run
//! use rotorlink::handshake::RemoteIdentity;
//! use rotorlink::tokio::{GroundStation, LinkEvent};
//! use rotorlink::{Channel, Config, Link};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let socket = tokio::net::UdpSocket::bind("0.0.0.0:47475").await?;
//! let mut station: GroundStation = GroundStation::spawn(socket)?;
//! // One remote link per aircraft, each with the bond its pairing left (saved on
//! // `Event::Bonded`): it connects without the code.
//! for (addr, link_id, saved) in [
//!     ("10.0.0.11:47474", *b"aircraft-0000011", "aircraft-11.identity"),
//!     ("10.0.0.12:47474", *b"aircraft-0000012", "aircraft-12.identity"),
//! ] {
//!     let identity = RemoteIdentity::from_bytes(&std::fs::read(saved)?)?;
//!     let now = station.clock().now();
//!     let link = Link::remote(Config::default(), identity, link_id, &mut rand_core::OsRng, now)?;
//!     let key = station.add(link).map_err(|_| "index taken")?;
//!     let aircraft = addr.parse()?;
//!     let clock = station.clock();
//!     station.with_link(key, |link| link.connect(aircraft, clock.now())).ok_or("gone")??;
//! }
//! while let Some((key, event)) = station.recv().await {
//!     match event {
//!         LinkEvent::Message { channel: Channel::Telemetry, data } => {
//!             println!("{key:?}: {} bytes of telemetry", data.len());
//!             station.send(key, Channel::Control, b"sticks")?;
//!         }
//!         other => println!("{key:?}: {other}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::boxed::Box;
use std::collections::VecDeque;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::vec;
use std::vec::Vec;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};
use tokio::task::{JoinHandle, JoinSet};

use super::driver::{
    offer, receive_buffers, sleep_until_or_forever, take_waiting, Outgoing, SPIN_GUARD,
};
use super::{Clock, LinkEvent, Received, Transport, UdpTransport};
use crate::fleet::FleetStats;
use crate::wire::MAX_DATAGRAM_LEN;
use crate::{
    AeadProvider, Channel, Event, Fleet, KeyStretched, Link, LinkKey, RustCrypto, SendError,
};

/// Events waiting for the application, at most (then the driver stops taking events from
/// the links until it reads: each link's own queue applies its back-pressure).
const EVENT_QUEUE: usize = 4096;

struct Shared<P: AeadProvider> {
    fleet: Mutex<Fleet<P>>,
    wake: Notify,
    clock: Clock,
}

impl<P: AeadProvider> Shared<P> {
    fn lock(&self) -> MutexGuard<'_, Fleet<P>> {
        // A panic while holding the lock can only come from a bug in a link; the fleet's
        // state is still consistent, so carry on with it.
        self.fleet.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Many links over one UDP socket, run by one driver task (module docs). Dropping it stops
/// the driver (links are not closed: call [`GroundStation::close`] for that).
pub struct GroundStation<P: AeadProvider = RustCrypto> {
    shared: Arc<Shared<P>>,
    events: mpsc::Receiver<(LinkKey, LinkEvent)>,
    driver: JoinHandle<()>,
    local_addr: SocketAddr,
}

impl<P: AeadProvider> GroundStation<P>
where
    Link<P>: Send + 'static,
{
    /// Run a fleet, empty for now, on `socket`, in a new task of the current tokio runtime.
    /// Its clock ([`GroundStation::clock`]) reads [`crate::Timestamp::ZERO`] now: make links
    /// with a time from it.
    ///
    /// # Errors
    /// If the socket's local address cannot be read, or the socket cannot be set up for
    /// batched system calls.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(socket: UdpSocket) -> std::io::Result<Self> {
        let local_addr = socket.local_addr()?;
        let socket = UdpTransport::from_socket(socket)?;
        let shared = Arc::new(Shared {
            fleet: Mutex::new(Fleet::new()),
            wake: Notify::new(),
            clock: Clock::start(),
        });
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let driver = tokio::spawn(drive(shared.clone(), socket, tx));
        Ok(GroundStation {
            shared,
            events,
            driver,
            local_addr,
        })
    }

    /// The socket's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The clock every link of the station runs on.
    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// Add a link (a remote: see [`Fleet::insert`]); start it with
    /// [`GroundStation::with_link`] (`pair` or `connect`, at [`GroundStation::clock`]'s
    /// time) if it is not established.
    ///
    /// # Errors
    /// The link, if another one already receives on one of its indices.
    pub fn add(&self, mut link: Link<P>) -> Result<LinkKey, Box<Link<P>>> {
        link.set_defer_key_stretching(true);
        let key = self.shared.lock().insert(link)?;
        self.shared.wake.notify_one();
        Ok(key)
    }

    /// Use a link: `f` runs on it under the lock, then the driver wakes. `None` for no such
    /// link.
    pub fn with_link<R>(&self, key: LinkKey, f: impl FnOnce(&mut Link<P>) -> R) -> Option<R> {
        let result = self.shared.lock().with_link(key, f);
        self.shared.wake.notify_one();
        result
    }

    /// Queue a message on one link.
    ///
    /// # Errors
    /// As [`Link::send`] ([`SendError::QueueFull`] included: this does not wait), and
    /// [`SendError::Closed`] for no such link.
    pub fn send(&self, key: LinkKey, channel: Channel, data: &[u8]) -> Result<(), SendError> {
        self.with_link(key, |link| link.send(channel, data))
            .unwrap_or(Err(SendError::Closed))
    }

    /// Take a link out of the station.
    pub fn remove(&self, key: LinkKey) -> Option<Link<P>> {
        self.shared.lock().remove(key)
    }

    /// How many links.
    pub fn len(&self) -> usize {
        self.shared.lock().len()
    }

    /// No link at all?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the fleet dropped itself (datagrams for no link, malformed ones).
    pub fn stats(&self) -> FleetStats {
        self.shared.lock().stats()
    }

    /// The next event of any link: a message (as [`Bytes`]) or anything else the link
    /// reports. `None` once the driver stopped.
    pub async fn recv(&mut self) -> Option<(LinkKey, LinkEvent)> {
        self.events.recv().await
    }

    /// Close every link (each sends its close frame) and stop the driver once they are out.
    pub async fn close(mut self) {
        {
            let mut fleet = self.shared.lock();
            let keys: Vec<LinkKey> = fleet.keys().collect();
            for key in keys {
                fleet.with_link(key, |link| link.close(crate::CloseCode::NORMAL));
            }
        }
        self.shared.wake.notify_one();
        // The driver stops once the closes are out and nobody listens.
        self.events.close();
        let _ = (&mut self.driver).await;
    }
}

impl<P: AeadProvider> Drop for GroundStation<P> {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The driver: datagrams in, datagrams out, timers, events to the application.
async fn drive<P: AeadProvider>(
    shared: Arc<Shared<P>>,
    socket: UdpTransport,
    events: mpsc::Sender<(LinkKey, LinkEvent)>,
) where
    Link<P>: Send + 'static,
{
    let mut tx_buf = vec![0u8; MAX_DATAGRAM_LEN];
    let (mut rx, slot) = receive_buffers(&socket);
    let mut rx_bufs: Vec<IoSliceMut<'_>> = rx.chunks_mut(slot).map(IoSliceMut::new).collect();
    let mut rx_meta = vec![Received::default(); rx_bufs.len()];
    let mut outgoing = Outgoing::with_capacity(64 * 1500);
    let mut held: VecDeque<(LinkKey, LinkEvent)> = VecDeque::new();
    // Pairings' and storage unlocks' key stretching, on blocking threads while the other
    // links fly.
    let mut stretching: JoinSet<(LinkKey, KeyStretched)> = JoinSet::new();
    loop {
        let (wake_at, all_closed) = {
            let mut fleet = shared.lock();
            let now = shared.clock.now();
            if fleet.poll_timeout().is_some_and(|at| at <= now) {
                fleet.handle_timeout(now);
            }
            while let Some((_, t)) = fleet.poll_transmit(now, &mut tx_buf) {
                outgoing.push(&tx_buf[..t.len], t.destination);
            }
            // Argon2id inside the driver would hold every link's frames. Taken here, not on
            // its event, so that an application that stopped reading events does not hold
            // a pairing or an unlock too.
            while let Some((key, job)) = fleet.poll_key_stretch() {
                stretching.spawn_blocking(move || (key, job.run()));
            }
            offer(&events, &mut held);
            while held.is_empty() {
                let Some((key, event)) = fleet.poll_event() else {
                    break;
                };
                let event = match event {
                    // Taken above.
                    Event::KeyStretchReady => continue,
                    Event::Message { channel, data } => {
                        let bytes = Bytes::copy_from_slice(&data);
                        fleet.with_link(key, |link| link.recycle(data));
                        LinkEvent::Message {
                            channel,
                            data: bytes,
                        }
                    }
                    other => LinkEvent::Link(other),
                };
                held.push_back((key, event));
                offer(&events, &mut held);
            }
            let all_closed = fleet
                .keys()
                .all(|k| fleet.get(k).is_none_or(Link::is_closed));
            (fleet.poll_timeout(), all_closed)
        };
        outgoing.send(&socket).await;
        if all_closed && events.is_closed() {
            return;
        }
        let wake_at = wake_at.map(|t| shared.clock.instant(t));
        tokio::select! {
            received = socket.recv_batch(&mut rx_bufs, &mut rx_meta) => {
                match received {
                    Ok(n) => {
                        let mut fleet = shared.lock();
                        // Drops are counted by the fleet and the links.
                        take_waiting(
                            &socket,
                            &shared.clock,
                            &mut rx_bufs,
                            &mut rx_meta,
                            n,
                            |now, from, datagram| {
                                let _ = fleet.handle_datagram(now, from, datagram);
                            },
                        );
                    }
                    // Transient (an ICMP error of a peer gone): not a reason to spin.
                    Err(_) => tokio::time::sleep(SPIN_GUARD).await,
                }
            }
            permit = events.reserve(), if !held.is_empty() => {
                match permit {
                    Ok(permit) => {
                        if let Some(event) = held.pop_front() {
                            permit.send(event);
                        }
                    }
                    Err(_) => held.clear(),
                }
            }
            Some(done) = stretching.join_next(), if !stretching.is_empty() => {
                // A stretching that panicked leaves its attempt to the timeout.
                if let Ok((key, done)) = done {
                    let now = shared.clock.now();
                    shared
                        .lock()
                        .with_link(key, |link| link.handle_key_stretched(now, done));
                }
            }
            () = shared.wake.notified() => {}
            () = sleep_until_or_forever(wake_at) => {}
        }
    }
}
