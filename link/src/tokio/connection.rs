//! The application's handle on a link run by the driver task, and the two ways to start one.

use core::fmt;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use rand_core::OsRng;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::driver::drive;
use super::{LinkEvent, Options, Transport};
use crate::handshake::{
    AircraftIdentity, BoxedAttemptStore, HandshakeError, LinkId, RefusalReason, RemoteIdentity,
};
use crate::{
    AeadProvider, Channel, CloseCode, Config, ConfigError, Error, Event, Link, RustCrypto,
    SendError, Stats, Timestamp,
};

/// The system's wall clock, as time since 1970 (zero if the clock reads earlier).
pub(crate) fn wall_clock() -> core::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// The link's clock in tokio time: converts a [`tokio::time::Instant`] to the [`Timestamp`]
/// a [`Link`] run by the driver is handed, and back. It reads [`Timestamp::ZERO`] at its
/// epoch.
///
/// The driver runs every link on one ([`Connection::clock`]); anything that schedules tokio
/// timers against a link's time, or puts tokio time on a sans-IO clock (a simulated radio),
/// converts with one too. Under a paused tokio clock, it reads virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Clock {
    /// The instant the clock reads zero.
    epoch: Instant,
}

impl Clock {
    /// A clock that reads zero now.
    pub fn start() -> Self {
        Clock::from_epoch(Instant::now())
    }

    /// A clock that reads zero at `epoch`.
    pub fn from_epoch(epoch: Instant) -> Self {
        Clock { epoch }
    }

    /// The instant the clock reads zero.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The time now.
    pub fn now(&self) -> Timestamp {
        self.timestamp(Instant::now())
    }

    /// The time at `at` ([`Timestamp::ZERO`] before the epoch).
    pub fn timestamp(&self, at: Instant) -> Timestamp {
        let micros = at.saturating_duration_since(self.epoch).as_micros();
        Timestamp::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// The instant the clock reads `t` (decades away for a time too far to represent).
    pub fn instant(&self, t: Timestamp) -> Instant {
        /// Farther than any timer needs to look (what tokio itself uses for "never").
        const FAR: core::time::Duration = core::time::Duration::from_secs(86_400 * 365 * 30);
        let after = t.saturating_since(Timestamp::ZERO);
        self.epoch
            .checked_add(after)
            .unwrap_or_else(|| Instant::now() + FAR)
    }
}

/// What the handle and the driver share.
pub(super) struct Shared<P: AeadProvider> {
    link: Mutex<Link<P>>,
    /// Wakes the driver: the application queued something or closed the link.
    pub(super) wake: Notify,
    /// Wakes tasks waiting for queue space or acknowledgements: the driver went round once.
    pub(super) drained: Notify,
    /// The link's clock: it reads zero when the link was spawned.
    pub(super) clock: Clock,
}

impl<P: AeadProvider> Shared<P> {
    pub(super) fn lock(&self) -> MutexGuard<'_, Link<P>> {
        // A panic while holding the lock can only come from a bug in the link; its state is
        // still the link's own (every method leaves it consistent), so carry on with it.
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One end of a link, run by a driver task. Made by [`Remote::connect`],
/// [`Aircraft::listen`] or [`Connection::spawn`].
///
/// Dropping the handle closes the link (the driver sends the close frame and stops);
/// [`Connection::close`] does the same and waits for it.
pub struct Connection<P: AeadProvider = RustCrypto> {
    shared: Arc<Shared<P>>,
    events: mpsc::Receiver<LinkEvent>,
    /// Events read while waiting for the session, handed out again by `recv`.
    early: VecDeque<LinkEvent>,
    driver: Option<JoinHandle<()>>,
}

impl<P: AeadProvider> Connection<P> {
    /// Run `link` over `transport` in a new task of the current tokio runtime. The link's
    /// clock reads [`Timestamp::ZERO`] now: make the link with `Timestamp::ZERO`.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    ///
    /// The link's wall clock (a remote's handshake timestamps, [`Link::set_wall_clock`]) is
    /// set from the system clock.
    pub fn spawn<T: Transport>(mut link: Link<P>, transport: T, options: Options) -> Self
    where
        Link<P>: Send + 'static,
    {
        link.set_wall_clock(wall_clock(), Timestamp::ZERO);
        // The driver runs a pairing's and a storage unlock's key stretching on blocking threads.
        link.set_defer_key_stretching(true);
        let capacity = link.config().max_pending_events;
        let shared = Arc::new(Shared {
            link: Mutex::new(link),
            wake: Notify::new(),
            drained: Notify::new(),
            clock: Clock::start(),
        });
        let (events_tx, events) = mpsc::channel(capacity);
        let driver = tokio::spawn(drive(shared.clone(), transport, events_tx, options));
        Connection {
            shared,
            events,
            early: VecDeque::new(),
            driver: Some(driver),
        }
    }

    /// Queue a message, waiting while the channel's queue is full (until the driver has
    /// sent some of it). Before the session is up, messages wait in the queue.
    ///
    /// # Errors
    /// As [`Link::send`], except that [`SendError::QueueFull`] is waited out.
    pub async fn send(&self, channel: Channel, data: Bytes) -> Result<(), SendError> {
        loop {
            let drained = self.shared.drained.notified();
            tokio::pin!(drained);
            // Registered before trying, so a drain between the try and the wait is not missed.
            drained.as_mut().enable();
            match self.try_send(channel, &data) {
                Err(SendError::QueueFull(_)) => drained.await,
                other => return other,
            }
        }
    }

    /// Queue a message now, or fail.
    ///
    /// # Errors
    /// As [`Link::send`], [`SendError::QueueFull`] included.
    pub fn try_send(&self, channel: Channel, data: &[u8]) -> Result<(), SendError> {
        self.with_link(|link| link.send(channel, data))
    }

    /// The next message or event; `None` once the link has closed and every event was
    /// read.
    ///
    /// Cancel-safe: an event is either returned or kept for the next call.
    pub async fn recv(&mut self) -> Option<LinkEvent> {
        match self.early.pop_front() {
            Some(event) => Some(event),
            None => self.events.recv().await,
        }
    }

    /// Prove the code inside the session to open the storage channel (see
    /// [`Link::unlock_storage`]); the answer arrives as [`Event::StorageUnlocked`] or
    /// [`Event::StorageUnlockRejected`].
    ///
    /// # Errors
    /// As [`Link::unlock_storage`].
    pub fn unlock_storage(&self, code: &[u8]) -> Result<(), Error> {
        let now = self.now();
        self.with_link(|link| link.unlock_storage(code, now))
    }

    /// Aircraft: accept pairings for `duration` from now ([`Link::open_pairing_window`]).
    ///
    /// # Errors
    /// [`Error::Handshake`] with `WrongRole` on a remote.
    pub fn open_pairing_window(&self, duration: core::time::Duration) -> Result<(), Error> {
        let now = self.now();
        self.with_link(|link| link.open_pairing_window(duration, now))
    }

    /// True once a session is up and confirmed.
    pub fn is_connected(&self) -> bool {
        self.shared.lock().is_connected()
    }

    /// True once the storage channel is open.
    pub fn storage_unlocked(&self) -> bool {
        self.shared.lock().storage_unlocked()
    }

    /// The link's counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats().clone()
    }

    /// The link's clock now.
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// The link's clock: converts tokio instants to the link's times and back (e.g. to
    /// sleep until a [`Timestamp`]).
    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// Run `f` on the link itself (to persist [`Link::remote_identity`] after
    /// [`Event::Bonded`], or to drive a synchronous application), then wake the driver.
    /// Keep it short: the driver waits for the lock.
    pub fn with_link<R>(&self, f: impl FnOnce(&mut Link<P>) -> R) -> R {
        let result = f(&mut self.shared.lock());
        self.shared.wake.notify_one();
        result
    }

    /// Wait until every storage message queued so far was acknowledged by the peer (and the
    /// other channels' queues went out), e.g. before [`Connection::close`], which sends
    /// nothing after the close frame. Waits forever if the peer is gone: wrap it in a
    /// timeout.
    pub async fn flush(&self) {
        loop {
            let drained = self.shared.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            let done = {
                let link = self.shared.lock();
                link.is_closed() || (link.storage_unacked() == 0 && !link.has_pending_send())
            };
            if done {
                return;
            }
            drained.await;
        }
    }

    /// Close the link and wait until the driver has sent the close frame and stopped.
    /// Returns the link's final counters. Events not read yet are dropped.
    pub async fn close(mut self) -> Stats {
        self.with_link(|link| link.close(CloseCode::NORMAL));
        // Nobody reads the events any more: the driver must not wait for room to hand over
        // the last ones (with a full channel it would wait forever).
        self.events.close();
        if let Some(driver) = self.driver.take() {
            // The driver only ends by returning; a panic in it is a bug to surface.
            if let Err(e) = driver.await {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
        self.stats()
    }

    /// Wait for [`Event::Connected`], keeping the events read on the way for `recv`.
    async fn connected(&mut self) -> Result<(), ConnectError> {
        loop {
            let event = self.events.recv().await.ok_or(ConnectError::Closed)?;
            let LinkEvent::Link(link_event) = &event else {
                self.early.push_back(event);
                continue;
            };
            let failure = match link_event {
                Event::Connected { .. } => None,
                &Event::PairingRejected { remaining_attempts } => {
                    Some(ConnectError::Rejected { remaining_attempts })
                }
                &Event::LockedOut { until } => Some(ConnectError::LockedOut {
                    retry_after: until.saturating_since(self.now()),
                }),
                &Event::HandshakeRefused {
                    reason, retry_at, ..
                } => Some(ConnectError::Refused {
                    reason,
                    retry_after: retry_at.saturating_since(self.now()),
                }),
                &Event::HandshakeFailed { error } => Some(ConnectError::Failed(error)),
                Event::Closed { .. } => Some(ConnectError::Closed),
                _ => {
                    self.early.push_back(event);
                    continue;
                }
            };
            self.early.push_back(event);
            return failure.map_or(Ok(()), Err);
        }
    }
}

impl<P: AeadProvider> Drop for Connection<P> {
    fn drop(&mut self) {
        if self.driver.is_some() {
            // The driver sends the close frame and stops on its own.
            self.with_link(|link| link.close(CloseCode::NORMAL));
        }
    }
}

impl<P: AeadProvider> fmt::Debug for Connection<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("link", &*self.shared.lock())
            .finish_non_exhaustive()
    }
}

/// Why [`Remote::connect`] did not get a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The aircraft rejected the code, or someone interfered: the remote cannot tell a
    /// wrong code from a forged `Response` ([`Event::PairingRejected`]).
    Rejected {
        /// Attempts left before the aircraft locks out.
        remaining_attempts: u32,
    },
    /// The aircraft refuses attempts at the code for this long.
    LockedOut {
        /// How long.
        retry_after: core::time::Duration,
    },
    /// The aircraft refused the handshake (advisory: refusals are not authenticated).
    Refused {
        /// Why.
        reason: RefusalReason,
        /// When it will take another attempt.
        retry_after: core::time::Duration,
    },
    /// The handshake failed: no answer in time, or an answer that did not verify.
    Failed(HandshakeError),
    /// The link closed before the session was up.
    Closed,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Config(e) => write!(f, "invalid configuration: {e}"),
            ConnectError::Rejected { remaining_attempts } => write!(
                f,
                "the aircraft rejected the code, or someone interfered ({remaining_attempts} \
                 attempts left before lockout)"
            ),
            ConnectError::LockedOut { retry_after } => write!(
                f,
                "the aircraft is locked out after too many wrong codes (retry in {:.0} s)",
                retry_after.as_secs_f64()
            ),
            ConnectError::Refused {
                reason,
                retry_after,
            } => write!(
                f,
                "the aircraft refused the handshake ({reason:?}; retry in {:.1} s)",
                retry_after.as_secs_f64()
            ),
            ConnectError::Failed(e) => write!(f, "the handshake failed: {e}"),
            ConnectError::Closed => f.write_str("the link closed before the session was up"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl From<ConfigError> for ConnectError {
    fn from(e: ConfigError) -> Self {
        ConnectError::Config(e)
    }
}

/// Starting a remote.
#[derive(Debug)]
pub struct Remote;

impl Remote {
    /// Pair with the aircraft at `aircraft` whose public link id is `link_id`, with its
    /// security `code`, over `transport`; return once the session is confirmed. Keys come from the
    /// operating system's generator. The events read on the way ([`Event::Connected`],
    /// [`Event::Bonded`]) are still delivered by [`Connection::recv`]; persist
    /// [`Link::remote_identity`] (through [`Connection::with_link`]) to reconnect later
    /// with [`Remote::reconnect`] without the code.
    ///
    /// ```text
    /// remote                                  aircraft
    ///   Init(pairing: OPAQUE KE1)     ───────▶
    ///                                 ◀───────  Response(KE2)
    ///   Finish(KE3)                   ───────▶   (bond stored)
    ///                                 ◀───────  first authenticated frame: Connected
    /// ```
    ///
    /// # Errors
    /// [`ConnectError`]: the code was rejected, the aircraft is locked out or refused, no
    /// answer came within the handshake timeout, or the configuration is invalid.
    pub async fn connect<T: Transport>(
        transport: T,
        aircraft: SocketAddr,
        link_id: LinkId,
        code: &[u8],
        config: Config,
    ) -> Result<Connection, ConnectError> {
        let mut link = Link::remote(
            config,
            RemoteIdentity::generate(&mut OsRng),
            link_id,
            &mut OsRng,
            Timestamp::ZERO,
        )?;
        link.pair(code, aircraft, Timestamp::ZERO)
            .map_err(|_| ConnectError::Failed(HandshakeError::WrongRole))?;
        Self::start(link, transport).await
    }

    /// Open a session with the aircraft at `aircraft` that `identity` is bonded to, without
    /// the code.
    ///
    /// # Errors
    /// As [`Remote::connect`]; [`ConnectError::Failed`] with [`HandshakeError::NotBonded`]
    /// if `identity` has no bond.
    pub async fn reconnect<T: Transport>(
        transport: T,
        aircraft: SocketAddr,
        identity: RemoteIdentity,
        link_id: LinkId,
        config: Config,
    ) -> Result<Connection, ConnectError> {
        let mut link = Link::remote(config, identity, link_id, &mut OsRng, Timestamp::ZERO)?;
        // Before the first Init: its timestamp must grow across restarts of this remote.
        link.set_wall_clock(wall_clock(), Timestamp::ZERO);
        link.connect(aircraft, Timestamp::ZERO)
            .map_err(|e| match e {
                Error::Handshake(h) => ConnectError::Failed(h),
                _ => ConnectError::Failed(HandshakeError::WrongRole),
            })?;
        Self::start(link, transport).await
    }

    async fn start<T: Transport>(link: Link, transport: T) -> Result<Connection, ConnectError> {
        let mut connection = Connection::spawn(link, transport, Options::default());
        connection.connected().await?;
        Ok(connection)
    }
}

/// Starting an aircraft.
#[derive(Debug)]
pub struct Aircraft;

impl Aircraft {
    /// Listen for remotes over `transport`: a remote pairs with the code `identity` was
    /// provisioned with, or reconnects with its bond. Returns at once; the pairing shows
    /// up as [`Event::Bonded`] (persist [`Link::aircraft_identity`] then) and
    /// [`Event::Connected`] from [`Connection::recv`], and the failsafe as
    /// [`LinkEvent::Failsafe`].
    ///
    /// # Errors
    /// [`ConfigError`] if `config` is invalid.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn listen<T: Transport>(
        transport: T,
        identity: AircraftIdentity,
        attempts: BoxedAttemptStore,
        config: Config,
    ) -> Result<Connection, ConfigError> {
        let link = Link::aircraft(config, identity, attempts, &mut OsRng, Timestamp::ZERO)?;
        Ok(Connection::spawn(link, transport, Options::default()))
    }
}

#[cfg(test)]
mod clock_tests {
    use core::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_clock_converts_both_ways_to_the_microsecond() {
        let clock = Clock::start();
        assert_eq!(clock.now(), Timestamp::ZERO);
        tokio::time::advance(Duration::from_micros(2_500_123)).await;
        let now = Instant::now();
        assert_eq!(clock.timestamp(now), Timestamp::from_micros(2_500_123));
        assert_eq!(clock.instant(clock.timestamp(now)), now);
        assert_eq!(clock.instant(Timestamp::ZERO), clock.epoch());
        // Before the epoch is zero; a time too far to represent is far away, not a panic.
        let later = Clock::from_epoch(now + Duration::from_secs(1));
        assert_eq!(later.timestamp(now), Timestamp::ZERO);
        let never = clock.instant(Timestamp::from_micros(u64::MAX));
        assert!(never > now + Duration::from_secs(86_400 * 365));
    }
}
