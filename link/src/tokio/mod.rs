//! The async adapter (feature `tokio`): a driver task runs a [`Link`] over any datagram
//! [`Transport`] (UDP with [`UdpTransport`], a radio modem, the simulator's channel), and a
//! [`Connection`] handle sends and receives.
//!
//! ```text
//!  application                 driver task (one per link)                 transport
//!  ───────────                 ──────────────────────────                 ─────────
//!  conn.send(ch, bytes) ──lock──▶ Link::send ─┐
//!                        wake ──▶             ├─ poll_transmit ──────────▶ send(datagram)
//!                                 timers ─────┤  handle_timeout            recv() ──┐
//!  conn.recv() ◀── LinkEvent ◀── poll_event ◀─┴─ handle_datagram ◀─────────────────┘
//! ```
//!
//! A ground station flying many aircraft runs them all on one socket and one driver task
//! with a [`GroundStation`] (a [`crate::Fleet`] underneath: datagrams routed by receiver
//! index, one timer heap).
//!
//! The driver hands the link every datagram with its source and sends each datagram where
//! the link says: the link alone decides who its peer is. Events reach the application
//! through a channel bounded by [`crate::Config::max_pending_events`].
//!
//! The link sits behind a mutex shared by the handle and the driver, so `send`,
//! [`Connection::stats`] and the others act at once; the driver owns the transport and the
//! timers, and wakes when a datagram arrives, a timer is due or the handle queued something.
//! Time is tokio's clock ([`tokio::time::Instant`]), converted to the link's
//! [`crate::Timestamp`] by a [`Clock`], so a runtime with a paused clock runs the link in
//! virtual time, as the simulator does.
//!
//! A remote pairs with the aircraft's code; the aircraft waits for it:
//!
//! ```no_run
//! use bytes::Bytes;
//! use rotorlink::handshake::{AircraftIdentity, KsfParams, MemoryAttemptStore};
//! use rotorlink::tokio::{Aircraft, LinkEvent, Remote, UdpTransport};
//! use rotorlink::{Channel, Config};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let link_id = *b"my-aircraft-0001";
//! let config = Config::default();
//!
//! // On the aircraft: provisioned once with the code, then listening.
//! let identity = AircraftIdentity::provision(link_id, b"246813", config.ksf, &mut rand_core::OsRng)?;
//! let transport = UdpTransport::listen("127.0.0.1:47474".parse()?).await?;
//! let mut aircraft = Aircraft::listen(transport, identity, Box::new(MemoryAttemptStore::new()), config.clone())?;
//!
//! // On the remote: pair with the code; returns once the session is confirmed.
//! let aircraft_addr = "127.0.0.1:47474".parse()?;
//! let transport = UdpTransport::connect("127.0.0.1:0".parse()?, aircraft_addr).await?;
//! let remote = Remote::connect(transport, aircraft_addr, link_id, b"246813", config).await?;
//! remote.send(Channel::Control, Bytes::from_static(b"throttle 40%")).await?;
//!
//! while let Some(event) = aircraft.recv().await {
//!     if let LinkEvent::Message { channel: Channel::Control, data } = event {
//!         assert_eq!(&data[..], b"throttle 40%");
//!         break;
//!     }
//! }
//! remote.close().await;
//! # Ok(())
//! # }
//! ```

mod connection;
mod driver;
mod ground;
mod transport;

use core::fmt;
use std::time::Duration;

use bytes::Bytes;

pub use connection::{Aircraft, Clock, ConnectError, Connection, Remote};
pub use ground::GroundStation;
pub use transport::{Received, Transport, UdpTransport};

use crate::{Channel, Event, Failsafe};

#[cfg(doc)]
use crate::Link;

/// What the driver reports: the link's messages and events, and the failsafe.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// A message arrived.
    Message {
        /// The channel it arrived on.
        channel: Channel,
        /// The message.
        data: Bytes,
    },
    /// Anything else the link reports: [`Event::Connected`], [`Event::Bonded`] (persist the
    /// identity now), [`Event::PairingRejected`], [`Event::Rekeyed`], [`Event::LinkLost`],
    /// [`Event::LinkRestored`], [`Event::Closed`], ... Never [`Event::Message`], nor
    /// [`Event::KeyStretchReady`] (the driver runs the key stretching itself).
    Link(Event),
    /// Aircraft: no control message arrived for [`Options::failsafe_after`] after the pilot
    /// had been flying: the aircraft should hold or return home.
    Failsafe,
    /// Aircraft: control messages arrive again after [`LinkEvent::Failsafe`].
    FailsafeCleared,
}

/// How the driver behaves, beyond the link's own [`crate::Config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Aircraft: report [`LinkEvent::Failsafe`] when control messages stop for this long
    /// (default 1.5 s, [`crate::Failsafe::DEFAULT_AFTER`]); `None` never does. Ignored on a
    /// remote.
    pub failsafe_after: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            failsafe_after: Some(Failsafe::DEFAULT_AFTER),
        }
    }
}

impl fmt::Display for LinkEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkEvent::Message { channel, data } => {
                write!(f, "{} bytes on {channel:?}", data.len())
            }
            LinkEvent::Link(event) => write!(f, "{event:?}"),
            LinkEvent::Failsafe => f.write_str("failsafe: control lost"),
            LinkEvent::FailsafeCleared => f.write_str("failsafe cleared: control is back"),
        }
    }
}

#[cfg(test)]
mod tests;
