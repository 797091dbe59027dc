//! The simulated radio under the tokio driver: [`SimNet`], two [`RadioChannel`]s as a pair of
//! [`Transport`]s in tokio time, and [`proxy`], the same channels between two real UDP
//! endpoints in real time.
//!
//! # In tokio time
//!
//! [`SimNet::pair`] gives the aircraft's end and the remote's end of a radio made of two
//! channels: the uplink (remote to aircraft) and the downlink (aircraft to remote). The
//! channels' clock is a [`Clock`] started when the pair is made (tokio time since then), so
//! under a paused clock (`#[tokio::test(start_paused = true)]`, a current-thread
//! runtime) the run is in virtual time: it goes as fast as the CPU allows and is the same,
//! datagram for datagram, for the same seed and the same sends.
//!
//! Tokio's timers tick in whole milliseconds: a datagram due at 10.3 ms is handed out by a
//! [`Transport::recv`] that wakes at 11 ms (delays in whole milliseconds are exact).
//!
//! ```
//! use std::time::Duration;
//! use rotorlink::tokio::Transport;
//! use rotorlink::Role;
//! use rotorlink_sim::net::SimNet;
//! use rotorlink_sim::{addr, ChannelConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let radio = ChannelConfig { delay: Duration::from_millis(10), ..ChannelConfig::default() };
//! let (aircraft, remote) = SimNet::pair(radio.clone(), radio, 7);
//! remote.send(b"hello", addr(Role::Aircraft)).await?;
//! let mut buf = [0; 64];
//! let (n, from) = aircraft.recv(&mut buf).await?;
//! assert_eq!((&buf[..n], from), (&b"hello"[..], addr(Role::Remote)));
//! assert_eq!(aircraft.channel_stats().delivered, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Over real UDP
//!
//! [`Proxy`] (or [`proxy`]) listens on one address for the remote, forwards what it sends
//! through the uplink channel to the aircraft's address, and what comes back through the
//! downlink channel to the latest sender, in real time, and counts it all ([`ProxyStats`]).

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rotorlink::tokio::{Clock, Transport};
use rotorlink::{Role, Timestamp};
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use crate::channel::{ChannelConfig, RadioChannel, RadioStats};
use crate::pair::addr;

/// The channel seeds of a radio seeded with `seed`, (uplink, downlink): the same as
/// [`Pair`](crate::Pair)'s, so both see the same radio for the same seed.
fn channel_seeds(seed: u64) -> (u64, u64) {
    let downlink = seed.wrapping_mul(2);
    (downlink.wrapping_add(1), downlink)
}

fn lock(channel: &Mutex<RadioChannel>) -> MutexGuard<'_, RadioChannel> {
    // A channel is only changed by its own methods, which do not panic half-way.
    channel.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One direction: its channel and the wake-up of the end that receives from it.
#[derive(Debug)]
struct Way {
    channel: Mutex<RadioChannel>,
    /// Notified (all waiters) whenever a datagram is put on the channel.
    sent: Notify,
}

impl Way {
    fn new(config: ChannelConfig, seed: u64) -> Self {
        Way {
            channel: Mutex::new(RadioChannel::new(config, seed)),
            sent: Notify::new(),
        }
    }
}

#[derive(Debug)]
struct Shared {
    /// The radio's clock: it reads zero when the radio was made.
    clock: Clock,
    /// Remote to aircraft.
    uplink: Way,
    /// Aircraft to remote.
    downlink: Way,
}

/// A simulated radio between an aircraft and a remote, in tokio time: the two ends are
/// [`SimTransport`]s.
#[derive(Debug, Clone)]
pub struct SimNet {
    shared: Arc<Shared>,
}

impl SimNet {
    /// A radio with the uplink (remote to aircraft) and downlink (aircraft to remote)
    /// channels configured by `uplink` and `downlink`, their random streams seeded from
    /// `seed` (as in [`Pair::new`](crate::Pair::new)). Its clock starts now: make it inside
    /// the runtime that uses it, so that a paused clock is the one it reads.
    ///
    /// # Panics
    /// If a configuration fails [`ChannelConfig::validate`](crate::ChannelConfig::validate).
    pub fn new(uplink: ChannelConfig, downlink: ChannelConfig, seed: u64) -> Self {
        let (up_seed, down_seed) = channel_seeds(seed);
        SimNet {
            shared: Arc::new(Shared {
                clock: Clock::start(),
                uplink: Way::new(uplink, up_seed),
                downlink: Way::new(downlink, down_seed),
            }),
        }
    }

    /// The two ends of a new radio ([`SimNet::new`]): `(aircraft, remote)`.
    ///
    /// # Panics
    /// As [`SimNet::new`].
    pub fn pair(
        uplink: ChannelConfig,
        downlink: ChannelConfig,
        seed: u64,
    ) -> (SimTransport, SimTransport) {
        let net = SimNet::new(uplink, downlink, seed);
        (net.end(Role::Aircraft), net.end(Role::Remote))
    }

    /// The end of `role`: it sends on its own direction's channel and receives from the
    /// other. Ends are cheap handles; two of the same role share the channels (and compete
    /// for the datagrams).
    pub fn end(&self, role: Role) -> SimTransport {
        SimTransport {
            shared: Arc::clone(&self.shared),
            role,
        }
    }

    /// The time on the radio's clock: tokio time since the radio was made.
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// What the uplink (remote to aircraft) has done so far.
    pub fn uplink_stats(&self) -> RadioStats {
        lock(&self.shared.uplink.channel).stats()
    }

    /// What the downlink (aircraft to remote) has done so far.
    pub fn downlink_stats(&self) -> RadioStats {
        lock(&self.shared.downlink.channel).stats()
    }

    /// Run `f` on the uplink channel, e.g. to change its configuration mid-run
    /// ([`RadioChannel::config_mut`]). Do not receive from it here: the receiving end is not
    /// told.
    pub fn with_uplink<R>(&self, f: impl FnOnce(&mut RadioChannel) -> R) -> R {
        f(&mut lock(&self.shared.uplink.channel))
    }

    /// [`SimNet::with_uplink`] for the downlink (aircraft to remote).
    pub fn with_downlink<R>(&self, f: impl FnOnce(&mut RadioChannel) -> R) -> R {
        f(&mut lock(&self.shared.downlink.channel))
    }
}

/// One end of a [`SimNet`]: a [`Transport`] whose datagrams cross the simulated radio.
///
/// [`Transport::send`] puts the datagram on the channel towards the other end, now, and
/// never fails; [`Transport::recv`] waits, in tokio time, for the next datagram to arrive
/// from the other end, and is cancel-safe (a datagram is taken off the channel only when it
/// is returned). A datagram longer than the buffer is truncated.
#[derive(Debug, Clone)]
pub struct SimTransport {
    shared: Arc<Shared>,
    role: Role,
}

impl SimTransport {
    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The radio this end belongs to.
    pub fn net(&self) -> SimNet {
        SimNet {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The direction this end receives from.
    fn incoming(&self) -> &Way {
        match self.role {
            Role::Aircraft => &self.shared.uplink,
            Role::Remote => &self.shared.downlink,
        }
    }

    /// The direction this end sends on.
    fn outgoing(&self) -> &Way {
        match self.role {
            Role::Aircraft => &self.shared.downlink,
            Role::Remote => &self.shared.uplink,
        }
    }

    /// What the channel this end receives from has done so far (the uplink for the
    /// aircraft, the downlink for the remote).
    pub fn channel_stats(&self) -> RadioStats {
        lock(&self.incoming().channel).stats()
    }

    /// What the channel this end sends on has done so far.
    pub fn outgoing_channel_stats(&self) -> RadioStats {
        lock(&self.outgoing().channel).stats()
    }

    fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }
}

impl Transport for SimTransport {
    async fn send(&self, datagram: &[u8], _to: SocketAddr) -> io::Result<()> {
        let way = self.outgoing();
        lock(&way.channel).send(self.now(), datagram);
        way.sent.notify_waiters();
        Ok(())
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let way = self.incoming();
        // A radio has no addresses: everything that arrives comes from the other end.
        let from = addr(self.role.peer());
        loop {
            // Listen for sends before looking at the channel, so that a send between the
            // look and the wait still wakes us.
            let sent = way.sent.notified();
            tokio::pin!(sent);
            sent.as_mut().enable();
            let next = {
                let mut channel = lock(&way.channel);
                if let Some(datagram) = channel.receive(self.now()) {
                    let n = datagram.len().min(buf.len());
                    buf[..n].copy_from_slice(&datagram[..n]);
                    return Ok((n, from));
                }
                channel.next_arrival()
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        () = &mut sent => {}
                        () = tokio::time::sleep_until(self.shared.clock.instant(at)) => {}
                    }
                }
                None => sent.await,
            }
        }
    }
}

/// What the [`Proxy`] did in one direction.
///
/// The counts add up: `received == channel.sent`, `channel.sent + channel.duplicated ==
/// channel.dropped() + channel.delivered + in_flight`, and `channel.delivered == forwarded
/// + send_errors + unaddressed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DirectionStats {
    /// Datagrams received from the sending end (and put on the channel).
    pub received: u64,
    /// Datagrams the channel delivered that were sent on to the receiving end.
    pub forwarded: u64,
    /// Delivered datagrams the socket failed to send (the receiving end is not there, or
    /// another I/O error): lost.
    pub send_errors: u64,
    /// Delivered datagrams with nowhere to go: downlink datagrams before any client spoke.
    pub unaddressed: u64,
    /// Copies still on the channel when the proxy stopped: lost.
    pub in_flight: u64,
    /// What the channel did.
    pub channel: RadioStats,
}

/// What a [`Proxy`] run did, both ways.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProxyStats {
    /// The client (remote) to the forward address (aircraft), through the uplink channel.
    pub uplink: DirectionStats,
    /// The forward address (aircraft) to the client (remote), through the downlink channel.
    pub downlink: DirectionStats,
}

/// The simulated radio between two real UDP endpoints, in real time.
///
/// Datagrams arriving at the listening socket from the client (the remote; replies go to
/// the latest sender) go through the uplink [`RadioChannel`] and out of a second socket,
/// connected to the forward address (the aircraft); datagrams coming back on that socket go
/// through the downlink channel to the client.
#[derive(Debug)]
pub struct Proxy {
    listen: UdpSocket,
    forward: UdpSocket,
    uplink: RadioChannel,
    downlink: RadioChannel,
}

/// The address to bind to talk to `peer`: the loopback address for a loopback peer (the
/// socket is then not reachable from the network), otherwise the unspecified address of
/// its family; any port.
fn local_for(peer: SocketAddr) -> SocketAddr {
    let ip: IpAddr = match (peer.ip(), peer.ip().is_loopback()) {
        (IpAddr::V4(_), true) => Ipv4Addr::LOCALHOST.into(),
        (IpAddr::V4(_), false) => Ipv4Addr::UNSPECIFIED.into(),
        (IpAddr::V6(_), true) => Ipv6Addr::LOCALHOST.into(),
        (IpAddr::V6(_), false) => Ipv6Addr::UNSPECIFIED.into(),
    };
    SocketAddr::new(ip, 0)
}

/// The peer is not there (an ICMP port unreachable reported on a later call): a lost
/// datagram, not a reason to stop.
fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

impl Proxy {
    /// Bind `listen` (port 0 picks one: see [`Proxy::local_addr`]) and a socket connected to
    /// `forward`, with the uplink (client to `forward`) and downlink channels configured by
    /// `uplink` and `downlink`, seeded from `seed` (as in [`SimNet::new`]).
    ///
    /// # Errors
    /// If a socket cannot be bound or connected.
    ///
    /// # Panics
    /// If a configuration fails [`ChannelConfig::validate`](crate::ChannelConfig::validate).
    pub async fn bind(
        listen: SocketAddr,
        forward: SocketAddr,
        uplink: ChannelConfig,
        downlink: ChannelConfig,
        seed: u64,
    ) -> io::Result<Self> {
        let (up_seed, down_seed) = channel_seeds(seed);
        let uplink = RadioChannel::new(uplink, up_seed);
        let downlink = RadioChannel::new(downlink, down_seed);
        let listen = UdpSocket::bind(listen).await?;
        let out = UdpSocket::bind(local_for(forward)).await?;
        out.connect(forward).await?;
        Ok(Proxy {
            listen,
            forward: out,
            uplink,
            downlink,
        })
    }

    /// The address the client sends to (with its port, when bound to port 0).
    ///
    /// # Errors
    /// As [`UdpSocket::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listen.local_addr()
    }

    /// The address the forward address sees the proxy's datagrams come from.
    ///
    /// # Errors
    /// As [`UdpSocket::local_addr`].
    pub fn forward_local_addr(&self) -> io::Result<SocketAddr> {
        self.forward.local_addr()
    }

    /// The address datagrams are forwarded to.
    ///
    /// # Errors
    /// As [`UdpSocket::peer_addr`].
    pub fn forward_addr(&self) -> io::Result<SocketAddr> {
        self.forward.peer_addr()
    }

    /// Forward datagrams both ways until `until` resolves; what was done. The channels'
    /// clock starts now.
    ///
    /// # Errors
    /// An I/O error receiving from a socket, other than a peer that is not there (which is
    /// ignored: UDP reports an earlier datagram refused by its destination on a later call).
    pub async fn run(mut self, until: impl Future) -> io::Result<ProxyStats> {
        let clock = Clock::start();
        let mut stats = ProxyStats::default();
        let mut client: Option<SocketAddr> = None;
        let mut from_client = vec![0; MAX_DATAGRAM];
        let mut from_forward = vec![0; MAX_DATAGRAM];
        tokio::pin!(until);
        loop {
            let next = match (self.uplink.next_arrival(), self.downlink.next_arrival()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let due = async {
                match next {
                    Some(at) => tokio::time::sleep_until(clock.instant(at)).await,
                    None => std::future::pending().await,
                }
            };
            // Not biased: a flood one way must not starve the other.
            tokio::select! {
                _ = &mut until => break,
                r = self.listen.recv_from(&mut from_client) => match r {
                    Ok((n, from)) => {
                        client = Some(from);
                        stats.uplink.received += 1;
                        self.uplink.send(clock.now(), &from_client[..n]);
                    }
                    Err(e) if peer_gone(&e) => {}
                    Err(e) => return Err(e),
                },
                r = self.forward.recv(&mut from_forward) => match r {
                    Ok(n) => {
                        stats.downlink.received += 1;
                        self.downlink.send(clock.now(), &from_forward[..n]);
                    }
                    Err(e) if peer_gone(&e) => {}
                    Err(e) => return Err(e),
                },
                () = due => {}
            }
            let now = clock.now();
            while let Some(datagram) = self.uplink.receive(now) {
                match self.forward.send(&datagram).await {
                    Ok(_) => stats.uplink.forwarded += 1,
                    Err(_) => stats.uplink.send_errors += 1,
                }
            }
            while let Some(datagram) = self.downlink.receive(now) {
                let Some(to) = client else {
                    stats.downlink.unaddressed += 1;
                    continue;
                };
                match self.listen.send_to(&datagram, to).await {
                    Ok(_) => stats.downlink.forwarded += 1,
                    Err(_) => stats.downlink.send_errors += 1,
                }
            }
        }
        stats.uplink.channel = self.uplink.stats();
        stats.uplink.in_flight = self.uplink.in_flight() as u64;
        stats.downlink.channel = self.downlink.stats();
        stats.downlink.in_flight = self.downlink.in_flight() as u64;
        Ok(stats)
    }
}

/// [`Proxy::bind`] then [`Proxy::run`]: the simulated radio between the client of `listen`
/// and `forward`, until `until` resolves.
///
/// # Errors
/// As [`Proxy::bind`] and [`Proxy::run`].
///
/// # Panics
/// As [`Proxy::bind`].
pub async fn proxy(
    listen: SocketAddr,
    forward: SocketAddr,
    uplink: ChannelConfig,
    downlink: ChannelConfig,
    seed: u64,
    until: impl Future,
) -> io::Result<ProxyStats> {
    Proxy::bind(listen, forward, uplink, downlink, seed)
        .await?
        .run(until)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use tokio::sync::oneshot;
    use tokio::time::{sleep, timeout, Instant};

    fn radio(delay_ms: u64) -> ChannelConfig {
        ChannelConfig {
            delay: Duration::from_millis(delay_ms),
            ..ChannelConfig::default()
        }
    }

    /// A datagram is received exactly its channel's delay after it was sent, each way, and
    /// a send wakes a `recv` that had nothing to wait for.
    #[tokio::test(start_paused = true)]
    async fn delay_is_exact_in_virtual_time() {
        let (aircraft, remote) = SimNet::pair(radio(10), radio(25), 1);
        assert_eq!(aircraft.role(), Role::Aircraft);
        assert_eq!(remote.role(), Role::Remote);
        let start = Instant::now();
        let receive = async {
            let mut buf = [0; 16];
            let (n, from) = aircraft.recv(&mut buf).await.unwrap();
            assert_eq!(from, addr(Role::Remote));
            (buf[..n].to_vec(), start.elapsed())
        };
        let send = async {
            sleep(Duration::from_millis(3)).await;
            remote.send(b"up", addr(Role::Aircraft)).await.unwrap();
        };
        let ((got, at), ()) = tokio::join!(receive, send);
        assert_eq!(got, b"up");
        assert_eq!(at, Duration::from_millis(13));

        let sent = Instant::now();
        aircraft.send(b"down", addr(Role::Remote)).await.unwrap();
        let mut buf = [0; 16];
        let (n, from) = remote.recv(&mut buf).await.unwrap();
        assert_eq!(from, addr(Role::Aircraft));
        assert_eq!(&buf[..n], b"down");
        assert_eq!(sent.elapsed(), Duration::from_millis(25));
        assert_eq!(remote.net().now(), Timestamp::from_millis(38));

        assert_eq!(aircraft.channel_stats().delivered, 1);
        assert_eq!(aircraft.outgoing_channel_stats(), remote.channel_stats());
        assert_eq!(remote.net().uplink_stats(), aircraft.channel_stats());
        assert_eq!(aircraft.net().downlink_stats().bytes_delivered, 4);
    }

    /// A buffer too small for the datagram gets its beginning.
    #[tokio::test(start_paused = true)]
    async fn a_long_datagram_is_truncated() {
        let (aircraft, remote) = SimNet::pair(radio(1), radio(1), 1);
        remote
            .send(b"0123456789", addr(Role::Aircraft))
            .await
            .unwrap();
        let mut buf = [0; 4];
        assert_eq!(aircraft.recv(&mut buf).await.unwrap().0, 4);
        assert_eq!(&buf, b"0123");
    }

    #[tokio::test(start_paused = true)]
    async fn total_loss_delivers_nothing() {
        let lossy = ChannelConfig {
            loss: 1.0,
            ..radio(5)
        };
        let (aircraft, remote) = SimNet::pair(lossy, radio(5), 3);
        for i in 0..100u8 {
            remote.send(&[i], addr(Role::Aircraft)).await.unwrap();
            sleep(Duration::from_millis(1)).await;
        }
        let mut buf = [0; 16];
        let got = timeout(Duration::from_secs(10), aircraft.recv(&mut buf)).await;
        assert!(got.is_err(), "a datagram crossed a dead channel: {got:?}");
        let stats = aircraft.channel_stats();
        assert_eq!((stats.sent, stats.lost, stats.delivered), (100, 100, 0));
        // The other way still works.
        aircraft.send(b"x", addr(Role::Remote)).await.unwrap();
        assert_eq!(remote.recv(&mut buf).await.unwrap().0, 1);
    }

    /// What the aircraft receives over a bad uplink, with the virtual time of each arrival.
    fn lossy_run(seed: u64) -> (Vec<(u64, Vec<u8>)>, RadioStats) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let bad = ChannelConfig {
                loss: 0.2,
                jitter: Duration::from_millis(3),
                reorder: 0.05,
                duplicate: 0.05,
                corrupt: 0.05,
                ..radio(5)
            };
            let (aircraft, remote) = SimNet::pair(bad, radio(5), seed);
            let net = aircraft.net();
            let sender = tokio::spawn(async move {
                for i in 0..300u16 {
                    remote
                        .send(&i.to_be_bytes(), addr(Role::Aircraft))
                        .await
                        .unwrap();
                    if i % 3 == 0 {
                        sleep(Duration::from_millis(1)).await;
                    }
                }
            });
            let mut got = Vec::new();
            let mut buf = [0; 16];
            while let Ok(n) = timeout(Duration::from_secs(1), aircraft.recv(&mut buf)).await {
                got.push((net.now().as_micros(), buf[..n.unwrap().0].to_vec()));
            }
            sender.await.unwrap();
            (got, aircraft.channel_stats())
        })
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let (a, stats) = lossy_run(42);
        assert!(stats.lost > 0 && stats.duplicated > 0 && stats.corrupted > 0);
        assert_eq!(stats.sent, 300);
        assert_eq!(a.len() as u64, stats.delivered);
        assert_eq!((a.clone(), stats), lossy_run(42));
        let (b, other) = lossy_run(43);
        assert_ne!(a, b);
        assert_ne!(stats, other);
    }

    /// A `recv` cancelled when its datagram is due leaves it for the next call, and one
    /// cancelled over and over loses nothing.
    #[tokio::test(start_paused = true)]
    async fn recv_is_cancel_safe() {
        let (aircraft, remote) = SimNet::pair(radio(10), radio(10), 5);
        let mut buf = [0; 16];

        remote.send(b"due", addr(Role::Aircraft)).await.unwrap();
        let cancelled = tokio::select! {
            biased;
            () = sleep(Duration::from_millis(10)) => true,
            _ = aircraft.recv(&mut buf) => false,
        };
        assert!(cancelled);
        assert_eq!(aircraft.channel_stats().delivered, 0);
        let n = timeout(Duration::ZERO, aircraft.recv(&mut buf)).await;
        assert_eq!(&buf[..n.unwrap().unwrap().0], b"due");

        let sender = async {
            for i in 0..100u8 {
                remote.send(&[i], addr(Role::Aircraft)).await.unwrap();
                sleep(Duration::from_micros(700)).await;
            }
        };
        let receiver = async {
            let (mut got, mut cancels) = (Vec::new(), 0);
            while got.len() < 100 {
                tokio::select! {
                    r = aircraft.recv(&mut buf) => got.push(buf[..r.unwrap().0].to_vec()),
                    () = sleep(Duration::from_millis(1)) => cancels += 1,
                }
            }
            (got, cancels)
        };
        let ((), (got, cancels)) = tokio::join!(sender, receiver);
        assert!(cancels >= 5, "only {cancels} cancellations");
        let want: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i]).collect();
        assert_eq!(got, want);
    }

    /// A UDP echo server on loopback: its address, and a count of what it echoed.
    async fn echo_server() -> (SocketAddr, Arc<Mutex<u64>>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let echoed = Arc::new(Mutex::new(0));
        let count = Arc::clone(&echoed);
        tokio::spawn(async move {
            let mut buf = [0; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                if socket.send_to(&buf[..n], from).await.is_ok() {
                    *count.lock().unwrap() += 1;
                }
            }
        });
        (addr, echoed)
    }

    /// Start a proxy on loopback in front of `forward`: its address, the switch that stops
    /// it, and its result.
    async fn start_proxy(
        forward: SocketAddr,
        uplink: ChannelConfig,
        downlink: ChannelConfig,
        seed: u64,
    ) -> (
        SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<io::Result<ProxyStats>>,
    ) {
        let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let proxy = Proxy::bind(localhost, forward, uplink, downlink, seed)
            .await
            .unwrap();
        let addr = proxy.local_addr().unwrap();
        assert_eq!(proxy.forward_addr().unwrap(), forward);
        assert!(proxy.forward_local_addr().unwrap().ip().is_loopback());
        let (stop, stopped) = oneshot::channel::<()>();
        (addr, stop, tokio::spawn(proxy.run(stopped)))
    }

    fn assert_adds_up(d: &DirectionStats) {
        let c = &d.channel;
        assert_eq!(d.received, c.sent, "{d:?}");
        assert_eq!(
            c.sent + c.duplicated,
            c.dropped() + c.delivered + d.in_flight,
            "{d:?}"
        );
        assert_eq!(
            c.delivered,
            d.forwarded + d.send_errors + d.unaddressed,
            "{d:?}"
        );
    }

    #[tokio::test]
    async fn the_proxy_delays_both_ways() {
        let (echo, echoed) = echo_server().await;
        let (addr, stop, proxy) = start_proxy(echo, radio(10), radio(10), 1).await;
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(addr).await.unwrap();
        let mut buf = [0; 64];
        for i in 0..10u8 {
            let sent = std::time::Instant::now();
            client.send(&[i; 20]).await.unwrap();
            let n = timeout(Duration::from_secs(5), client.recv(&mut buf))
                .await
                .expect("an echo")
                .unwrap();
            let rtt = sent.elapsed();
            assert_eq!(&buf[..n], &[i; 20]);
            assert!(rtt >= Duration::from_millis(20), "round trip {rtt:?}");
        }
        stop.send(()).unwrap();
        let stats = proxy.await.unwrap().unwrap();
        assert_eq!(*echoed.lock().unwrap(), 10);
        for d in [&stats.uplink, &stats.downlink] {
            assert_adds_up(d);
            assert_eq!((d.received, d.forwarded, d.channel.lost), (10, 10, 0));
            assert_eq!(d.channel.bytes_delivered, 200);
        }
    }

    #[tokio::test]
    async fn the_proxy_loses_what_the_channel_loses() {
        let (echo, echoed) = echo_server().await;
        let half = ChannelConfig {
            loss: 0.5,
            ..radio(2)
        };
        let (addr, stop, proxy) = start_proxy(echo, half.clone(), half, 7).await;
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(addr).await.unwrap();
        let received = async {
            let mut buf = [0; 64];
            let mut n = 0u64;
            while timeout(Duration::from_secs(1), client.recv(&mut buf))
                .await
                .is_ok()
            {
                n += 1;
            }
            n
        };
        let send = async {
            for i in 0..400u16 {
                client.send(&i.to_be_bytes()).await.unwrap();
                if i % 10 == 9 {
                    sleep(Duration::from_millis(1)).await;
                }
            }
        };
        let (got, ()) = tokio::join!(received, send);
        stop.send(()).unwrap();
        let stats = proxy.await.unwrap().unwrap();
        let (up, down) = (&stats.uplink, &stats.downlink);
        assert_adds_up(up);
        assert_adds_up(down);
        assert_eq!(up.received, 400);
        let rate = up.channel.lost as f64 / 400.0;
        assert!((0.4..=0.6).contains(&rate), "uplink lost {rate}");
        assert_eq!(up.forwarded, 400 - up.channel.lost);
        assert_eq!(*echoed.lock().unwrap(), up.forwarded);
        assert_eq!(down.received, up.forwarded);
        assert_eq!(got, down.forwarded);
        assert!(got > 50 && got < 150, "{got} of 400 came back");
    }
}
