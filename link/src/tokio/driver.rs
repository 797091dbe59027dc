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
use tokio::time::{sleep_until, Instant};

use super::connection::Shared;
use super::{LinkEvent, Options, Received, Transport};
use crate::wire::MAX_DATAGRAM_LEN;
use crate::{AeadProvider, Channel, Event, Failsafe, Link, Role};

/// If the link asks to be woken in the past and nothing moved, or the transport fails to
/// receive, wait this long instead of spinning.
const SPIN_GUARD: Duration = Duration::from_millis(1);

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
    // One more than the largest frame, so an oversized datagram is seen whole and refused;
    // as many buffers as the transport fills per call.
    let (buffers, segments) = transport.recv_batch_size();
    let slot = if segments > 1 {
        MAX_COALESCED.max(MAX_DATAGRAM_LEN + 1)
    } else {
        MAX_DATAGRAM_LEN + 1
    };
    let mut rx = vec![0u8; buffers.max(1) * slot];
    let mut rx_bufs: Vec<IoSliceMut<'_>> = rx.chunks_mut(slot).map(IoSliceMut::new).collect();
    let mut rx_meta = vec![Received::default(); rx_bufs.len()];
    // Datagrams of one round, back to back, sent once the lock is released.
    let mut outgoing = Vec::with_capacity(64 * mtu);
    let mut sends: Vec<(usize, SocketAddr)> = Vec::with_capacity(64);
    let role = shared.lock().role();
    // Only an aircraft watches the pilot's control messages.
    let mut failsafe = match role {
        Role::Aircraft => options.failsafe_after.map(Failsafe::new),
        Role::Remote => None,
    };
    // Events that did not fit the application's channel, oldest first (at most a few: the
    // link is not polled while any wait).
    let mut held: VecDeque<LinkEvent> = VecDeque::new();
    loop {
        let now_instant = Instant::now();
        let (wake_at, closed, delivered) = {
            let mut link = shared.lock();
            let now = shared.clock.timestamp(now_instant);
            link.handle_timeout(now);
            while let Some(t) = link.poll_transmit(now, &mut tx_buf) {
                outgoing.extend_from_slice(&tx_buf[..t.len]);
                sends.push((t.len, t.destination));
            }
            let mut delivered = 0;
            offer(&events, &mut held);
            while held.is_empty() {
                let Some(event) = link.poll_event() else {
                    break;
                };
                delivered += 1;
                let event = match event {
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
            (wake_at, link.is_closed(), delivered)
        };
        let moved = !sends.is_empty() || delivered > 0;
        // Queues may have emptied, acknowledgements may have arrived: let waiters look. Only
        // when something moved: a waiter woken for nothing would try, fail and wake the
        // driver again, a loop that never lets (virtual) time pass while the pacer waits.
        if moved {
            shared.drained.notify_waiters();
        }
        // Runs of datagrams of one size to one destination (the last may be shorter) go in
        // one `send_batch`. A failed send is a lost datagram to the link, which recovers.
        let mut at = 0;
        let mut i = 0;
        while i < sends.len() {
            let (segment, to) = sends[i];
            let mut end = at;
            while let Some(&(len, dest)) = sends.get(i) {
                if dest != to || len > segment {
                    break;
                }
                end += len;
                i += 1;
                if len < segment {
                    break;
                }
            }
            let _ = transport.send_batch(&outgoing[at..end], segment, to).await;
            at = end;
        }
        sends.clear();
        outgoing.clear();
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
                        let mut taken = hand(&shared, &rx_bufs, &rx_meta[..n]);
                        // Take what is already waiting before answering (see MAX_BATCH).
                        while taken < MAX_BATCH {
                            match transport.try_recv_batch(&mut rx_bufs, &mut rx_meta) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => taken += hand(&shared, &rx_bufs, &rx_meta[..n]),
                            }
                        }
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
            () = shared.wake.notified() => {}
            () = sleep_until_or_forever(wake_at) => {}
        }
    }
}

/// Hand the link the datagrams of one receive; returns how many there were.
fn hand<P: AeadProvider>(shared: &Shared<P>, bufs: &[IoSliceMut<'_>], meta: &[Received]) -> usize {
    let mut link = shared.lock();
    let now = shared.clock.now();
    let mut n = 0;
    for (buf, got) in bufs.iter().zip(meta) {
        for datagram in got.datagrams(buf) {
            // Dropped datagrams are counted by the link; the peer address is the link's
            // business (only authenticated frames move it).
            let _ = link.handle_datagram(now, got.source, datagram);
            n += 1;
        }
    }
    n
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
