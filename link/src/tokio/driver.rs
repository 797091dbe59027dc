//! The driver task: moves datagrams between the link and the transport, runs the timers,
//! hands events to the application, and watches for the failsafe.

use std::collections::VecDeque;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::vec;
use std::vec::Vec;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use super::connection::{Clock, Shared};
use super::{LinkEvent, Options, Received, Transport};
use crate::wire::MAX_DATAGRAM_LEN;
use crate::{AeadProvider, Channel, Event, Failsafe, KeyStretched, Link, Role, Timestamp};

/// If the link asks to be woken in the past and nothing moved, or the transport fails to
/// receive, wait this long instead of spinning.
pub(super) const SPIN_GUARD: Duration = Duration::from_millis(1);

/// After a receive, the driver keeps taking the datagrams already waiting, without
/// waiting, until it has this many (or nothing is left), then answers them all at once:
/// one round of `poll_transmit`, so one ack covers the batch. Bounded so that timers and
/// sends are not starved by a peer that keeps the socket full.
const MAX_BATCH: usize = 64;

/// The most bytes one coalesced receive carries (one IP packet, as Linux's UDP GRO).
pub(super) const MAX_COALESCED: usize = 64 * 1024;

/// Run the link until it is closed and the close frame is out.
///
/// Events go to the application through a channel bounded by `max_pending_events`. When
/// the application falls behind, the driver holds the one event that did not fit and stops
/// taking events from the link until there is room: the link's own queue (bounded by the
/// same limit) then applies its back-pressure (storage is not acknowledged, so the peer
/// retransmits; other messages are counted in [`crate::Stats::events_overflowed`]).
pub(super) async fn drive<P: AeadProvider, T: Transport>(
    shared: Arc<Shared<P>>,
    transport: T,
    events: mpsc::Sender<LinkEvent>,
    options: Options,
) where
    Link<P>: Send + 'static,
{
    let mtu = shared.lock().config().mtu;
    let mut tx_buf = vec![0u8; mtu];
    let (mut rx, slot) = receive_buffers(&transport);
    let mut rx_bufs: Vec<IoSliceMut<'_>> = rx.chunks_mut(slot).map(IoSliceMut::new).collect();
    let mut rx_meta = vec![Received::default(); rx_bufs.len()];
    let mut outgoing = Outgoing::with_capacity(64 * mtu);
    let role = shared.lock().role();
    // Only an aircraft watches the pilot's control messages.
    let mut failsafe = match role {
        Role::Aircraft => options.failsafe_after.map(Failsafe::new),
        Role::Remote => None,
    };
    // Events that did not fit the application's channel, oldest first (at most a few: the
    // link is not polled while any wait).
    let mut held: VecDeque<LinkEvent> = VecDeque::new();
    // The key stretching of a pairing or a storage unlock, running on blocking threads while
    // the link goes on carrying the pilot's control (a pairing may evaluate up to three
    // responses at once: the aircraft's, a corrupted copy, a forgery).
    let mut stretching: JoinSet<KeyStretched> = JoinSet::new();
    loop {
        let (now_instant, wake_at, closed, delivered) = {
            let mut link = shared.lock();
            // Read once the lock is held: an application holding it for a while must not
            // date the frames sent now (and the feedback's stated delays) to before they
            // were made.
            let now_instant = Instant::now();
            let now = shared.clock.timestamp(now_instant);
            link.handle_timeout(now);
            while let Some(t) = link.poll_transmit(now, &mut tx_buf) {
                outgoing.push(&tx_buf[..t.len], t.destination);
            }
            // Argon2id takes tens to hundreds of milliseconds: inside the driver it would
            // hold every frame (and the lock `send` takes). Taken here, not on its event,
            // so that an application that stopped reading events does not hold it too.
            while let Some(job) = link.poll_key_stretch() {
                stretching.spawn_blocking(move || job.run());
            }
            let mut delivered = 0;
            offer(&events, &mut held);
            while held.is_empty() {
                let Some(event) = link.poll_event() else {
                    break;
                };
                delivered += 1;
                let event = match event {
                    // Taken above.
                    Event::KeyStretchReady => continue,
                    Event::Message { channel, data } => {
                        if channel == Channel::Control
                            && failsafe.as_mut().is_some_and(|f| f.on_control(now))
                        {
                            held.push_back(LinkEvent::FailsafeCleared);
                        }
                        let bytes = Bytes::copy_from_slice(&data);
                        // The link's buffer goes back to its pool: no allocation per frame
                        // inside the link, one copy into the application's `Bytes`.
                        link.recycle(data);
                        LinkEvent::Message {
                            channel,
                            data: bytes,
                        }
                    }
                    other => LinkEvent::Link(other),
                };
                held.push_back(event);
                offer(&events, &mut held);
            }
            if failsafe.as_mut().is_some_and(|f| f.on_time(now)) {
                delivered += 1;
                held.push_back(LinkEvent::Failsafe);
                offer(&events, &mut held);
            }
            let wake_at = match (
                link.poll_timeout(),
                failsafe.as_ref().and_then(Failsafe::deadline),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (now_instant, wake_at, link.is_closed(), delivered)
        };
        let moved = !outgoing.is_empty() || delivered > 0;
        // Queues may have emptied, acknowledgements may have arrived: let waiters look. Only
        // when something moved: a waiter woken for nothing would try, fail and wake the
        // driver again, a loop that never lets (virtual) time pass while the pacer waits.
        if moved {
            shared.drained.notify_waiters();
        }
        outgoing.send(&transport).await;
        if closed {
            // The last events (the close itself) still reach a listening application.
            for event in held.drain(..) {
                if events.send(event).await.is_err() {
                    break;
                }
            }
            return;
        }
        let wake_at = wake_at.map(|t| {
            let at = shared.clock.instant(t);
            if at <= now_instant && !moved {
                now_instant + SPIN_GUARD
            } else {
                at
            }
        });
        tokio::select! {
            received = transport.recv_batch(&mut rx_bufs, &mut rx_meta) => {
                match received {
                    Ok(n) => {
                        let mut link = shared.lock();
                        // Dropped datagrams are counted by the link; the peer address is
                        // the link's business (only authenticated frames move it).
                        take_waiting(
                            &transport,
                            &shared.clock,
                            &mut rx_bufs,
                            &mut rx_meta,
                            n,
                            |now, from, datagram| {
                                let _ = link.handle_datagram(now, from, datagram);
                            },
                        );
                    }
                    // Receive errors (an ICMP port unreachable on a connected socket) are
                    // transient: the link's timers decide when the peer is gone. A transport
                    // that fails at once every time must not make the driver spin, though.
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
                    // Nobody listens any more: the events are dropped.
                    Err(_) => held.clear(),
                }
            }
            Some(done) = stretching.join_next(), if !stretching.is_empty() => {
                // A stretching that panicked leaves its attempt to the timeout.
                if let Ok(done) = done {
                    let now = shared.clock.now();
                    shared.lock().handle_key_stretched(now, done);
                }
            }
            () = shared.wake.notified() => {}
            () = sleep_until_or_forever(wake_at) => {}
        }
    }
}

/// The receive buffers for `transport`, back to back: as many as it fills per call, each
/// one more than the largest frame (an oversized datagram is seen whole and refused), or a
/// coalesced receive's worth. Returns them and the size of each.
pub(super) fn receive_buffers<T: Transport>(transport: &T) -> (Vec<u8>, usize) {
    let (buffers, segments) = transport.recv_batch_size();
    let slot = if segments > 1 {
        MAX_COALESCED.max(MAX_DATAGRAM_LEN + 1)
    } else {
        MAX_DATAGRAM_LEN + 1
    };
    (vec![0u8; buffers.max(1) * slot], slot)
}

/// Hand `each` the datagrams of a receive that filled `n` buffers, then keep taking the
/// datagrams already waiting, without waiting, until [`MAX_BATCH`] (or nothing is left):
/// the caller answers them all at once, one round of `poll_transmit`, so one ack covers
/// the batch.
///
/// Each datagram comes with the time its receive returned, read from `clock` then: a
/// datagram handled slowly (a handshake's key stretching) must not date the ones taken
/// after it to before they arrived. The receiver's feedback states how long it held the
/// newest frame, and the sender takes that off the round trip: an arrival dated early
/// made a round trip shorter than the path, a minimum that pinned the in-flight cap for
/// ten seconds.
pub(super) fn take_waiting<T: Transport>(
    transport: &T,
    clock: &Clock,
    bufs: &mut [IoSliceMut<'_>],
    meta: &mut [Received],
    mut n: usize,
    mut each: impl FnMut(Timestamp, SocketAddr, &[u8]),
) {
    let mut taken = 0;
    loop {
        let now = clock.now();
        for (buf, got) in bufs.iter().zip(&meta[..n]) {
            for datagram in got.datagrams(buf) {
                each(now, got.source, datagram);
                taken += 1;
            }
        }
        if taken >= MAX_BATCH {
            return;
        }
        n = match transport.try_recv_batch(bufs, meta) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
    }
}

/// The datagrams of one round, back to back, sent once the lock is released: runs of one
/// size to one destination (the last may be shorter) in one [`Transport::send_batch`].
pub(super) struct Outgoing {
    bytes: Vec<u8>,
    /// Length and destination of each datagram in `bytes`.
    sends: Vec<(usize, SocketAddr)>,
}

impl Outgoing {
    pub(super) fn with_capacity(bytes: usize) -> Self {
        Outgoing {
            bytes: Vec::with_capacity(bytes),
            sends: Vec::with_capacity(64),
        }
    }

    pub(super) fn push(&mut self, datagram: &[u8], to: SocketAddr) {
        self.bytes.extend_from_slice(datagram);
        self.sends.push((datagram.len(), to));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.sends.is_empty()
    }

    /// Send everything, and forget it. A failed send is a lost datagram to the link, which
    /// recovers.
    pub(super) async fn send<T: Transport>(&mut self, transport: &T) {
        let mut at = 0;
        let mut i = 0;
        while i < self.sends.len() {
            let (segment, to) = self.sends[i];
            let mut end = at;
            while let Some(&(len, dest)) = self.sends.get(i) {
                if dest != to || len > segment {
                    break;
                }
                end += len;
                i += 1;
                if len < segment {
                    break;
                }
            }
            let _ = transport
                .send_batch(&self.bytes[at..end], segment, to)
                .await;
            at = end;
        }
        self.sends.clear();
        self.bytes.clear();
    }
}

/// Hand held events to the application while its channel has room.
pub(super) fn offer<E>(events: &mpsc::Sender<E>, held: &mut VecDeque<E>) {
    while let Some(event) = held.pop_front() {
        match events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                held.push_front(event);
                return;
            }
            // Nobody listens: the events are dropped.
            Err(mpsc::error::TrySendError::Closed(_)) => held.clear(),
        }
    }
}

pub(super) async fn sleep_until_or_forever(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
