//! The driver task: moves datagrams between the link and the transport, runs the timers,
//! hands events to the application, and watches for the failsafe.

use std::sync::Arc;
use std::time::Duration;
use std::vec;
use std::vec::Vec;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::connection::Shared;
use super::{LinkEvent, Options, Transport};
use crate::handshake::{messages, Kind};
use crate::wire::{FrameType, MAX_DATAGRAM_LEN};
use crate::{AeadProvider, Channel, Event, Link, Role, Timestamp};

/// If the link asks to be woken in the past and nothing moved, or the transport fails to
/// receive, wait this long instead of spinning.
const SPIN_GUARD: Duration = Duration::from_millis(1);

/// Run the link until it is closed and the close frame is out.
pub(super) async fn drive<P: AeadProvider, T: Transport>(
    shared: Arc<Shared<P>>,
    transport: T,
    events: mpsc::UnboundedSender<LinkEvent>,
    options: Options,
) where
    Link<P>: Send + 'static,
{
    let mtu = shared.lock().config().mtu;
    let mut tx_buf = vec![0u8; mtu];
    // One more than the largest frame, so an oversized datagram is seen whole and refused.
    let mut rx_buf = vec![0u8; MAX_DATAGRAM_LEN + 1];
    // Datagrams of one round, back to back, sent once the lock is released.
    let mut outgoing = Vec::with_capacity(64 * mtu);
    let mut lens = Vec::with_capacity(64);
    let role = shared.lock().role();
    let mut failsafe = Failsafe::new(match role {
        Role::Aircraft => options.failsafe_after,
        Role::Remote => None,
    });
    // A session is up and its peer alive: then only datagrams that prove a key or a bond
    // may move the transport's peer, not a pairing `Init` (anyone can make one).
    let mut link_up = false;
    loop {
        let now_instant = Instant::now();
        let (wake_at, closed, delivered) = {
            let mut link = shared.lock();
            let now = shared.timestamp(now_instant);
            link.handle_timeout(now);
            while let Some(t) = link.poll_transmit(now, &mut tx_buf) {
                outgoing.extend_from_slice(&tx_buf[..t.len]);
                lens.push(t.len);
            }
            let mut delivered = 0;
            while let Some(event) = link.poll_event() {
                delivered += 1;
                let event = match event {
                    Event::Message { channel, data } => {
                        if channel == Channel::Control {
                            if let Some(e) = failsafe.on_control(now) {
                                let _ = events.send(e);
                            }
                        }
                        LinkEvent::Message {
                            channel,
                            data: Bytes::copy_from_slice(data),
                        }
                    }
                    other => match other.detached() {
                        Some(e) => {
                            link_up = match e {
                                Event::Connected { .. } | Event::LinkRestored => true,
                                Event::LinkLost | Event::Closed { .. } => false,
                                _ => link_up,
                            };
                            LinkEvent::Link(e)
                        }
                        None => continue,
                    },
                };
                // A closed receiver means nobody listens: the events are dropped.
                let _ = events.send(event);
            }
            if let Some(e) = failsafe.on_time(now) {
                delivered += 1;
                let _ = events.send(e);
            }
            let wake_at = match (link.poll_timeout(), failsafe.deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (wake_at, link.is_closed(), delivered)
        };
        let moved = !lens.is_empty() || delivered > 0;
        // Queues may have emptied, acknowledgements may have arrived: let waiters look.
        shared.drained.notify_waiters();
        let mut at = 0;
        for len in lens.drain(..) {
            // A failed send is a lost datagram to the link, which recovers from losses.
            let _ = transport.send(&outgoing[at..at + len]).await;
            at += len;
        }
        outgoing.clear();
        if closed {
            return;
        }
        let wake_at = wake_at.map(|t| {
            let at = shared.instant(t);
            if at <= now_instant && !moved {
                now_instant + SPIN_GUARD
            } else {
                at
            }
        });
        tokio::select! {
            received = transport.recv(&mut rx_buf) => {
                // Receive errors (an ICMP port unreachable on a connected socket) are
                // transient: the link's timers decide when the peer is gone. A transport
                // that fails at once every time must not make the driver spin, though.
                if received.is_err() {
                    tokio::time::sleep(SPIN_GUARD).await;
                }
                if let Ok(n) = received {
                    let datagram = &rx_buf[..n];
                    let accepted = {
                        let mut link = shared.lock();
                        let now = shared.timestamp(Instant::now());
                        link.handle_datagram(now, datagram).is_ok()
                    };
                    if accepted && (!link_up || !is_pairing_init(datagram)) {
                        transport.accept_last();
                    }
                }
            }
            () = shared.wake.notified() => {}
            () = sleep_until_or_forever(wake_at) => {}
        }
    }
}

/// Is `datagram` a pairing `Init` (which needs only the public link id)?
fn is_pairing_init(datagram: &[u8]) -> bool {
    messages::parse_frame(datagram)
        .ok()
        .filter(|(header, _)| header.frame_type == FrameType::HandshakeInit)
        .and_then(|(_, payload)| messages::Init::parse(payload).ok())
        .is_some_and(|init| init.kind() == Kind::Pair)
}

async fn sleep_until_or_forever(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The aircraft's failsafe: control messages stopped for too long.
#[derive(Debug)]
struct Failsafe {
    after: Option<Duration>,
    /// When the last control message arrived; `None` before the first.
    last_control: Option<Timestamp>,
    active: bool,
}

impl Failsafe {
    fn new(after: Option<Duration>) -> Self {
        Failsafe {
            after,
            last_control: None,
            active: false,
        }
    }

    fn on_control(&mut self, now: Timestamp) -> Option<LinkEvent> {
        self.after?;
        self.last_control = Some(now);
        if self.active {
            self.active = false;
            return Some(LinkEvent::FailsafeCleared);
        }
        None
    }

    fn deadline(&self) -> Option<Timestamp> {
        match (self.after, self.last_control, self.active) {
            (Some(after), Some(last), false) => Some(last + after),
            _ => None,
        }
    }

    fn on_time(&mut self, now: Timestamp) -> Option<LinkEvent> {
        if self.deadline().is_some_and(|d| now >= d) {
            self.active = true;
            return Some(LinkEvent::Failsafe);
        }
        None
    }
}
