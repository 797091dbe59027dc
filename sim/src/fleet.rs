//! A ground station flying a fleet, over real UDP on loopback, in real time.
//!
//! The ground station is one thread (one core) with one socket and one [`Fleet`] of N
//! remote links; the N aircraft are another thread with one socket and a [`Fleet`] of N
//! aircraft links. Every link carries what a flight's control link carries: sticks from
//! the ground at 100 Hz, telemetry from the aircraft at 50 Hz, each message stamped with
//! the time it was handed to the link, so the receiver measures its latency (both threads
//! read the same clock). The links are established from a shared secret: this measures
//! the data path and the fleet, not pairing. Optionally a third thread floods the ground
//! station's socket with genuine pairing `Init`s from unknown remotes, and the ground side
//! runs on the tokio adapter's `GroundStation` instead of this module's loop
//! ([`FleetRun::ground_station`]).
//!
//! ```text
//!   ground thread: Fleet<N remotes> ── 127.0.0.1 UDP ── aircraft thread: Fleet<N aircraft>
//!                  ▲ flood thread: pairing Inits of 16 unknown remotes
//! ```

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rotorlink::fleet::FleetStats;
use rotorlink::{Channel, Config, Event, Fleet, Link, LinkKey, Role, Secret, Timestamp};
use serde::Serialize;

/// What to fly.
#[derive(Debug, Clone)]
pub struct FleetRun {
    /// Aircraft, one link each.
    pub aircraft: u32,
    /// How long, after a second of warm-up.
    pub duration: Duration,
    /// Stick messages per second per link, ground to aircraft.
    pub stick_hz: u32,
    /// Telemetry messages per second per link, aircraft to ground.
    pub telemetry_hz: u32,
    /// Handshake `Init`s per second sent at the ground station from unknown sources.
    pub flood_per_second: u32,
    /// Seed of the links' keys.
    pub seed: u64,
    /// All links start in the same instant (their timers then fire together), instead of
    /// joining one after the other over half a second.
    pub synchronized: bool,
    /// Run the ground side on the tokio adapter's [`rotorlink::tokio::GroundStation`] (its
    /// driver task and the application on one current-thread runtime) instead of a
    /// [`Fleet`] driven by this module's own loop.
    pub ground_station: bool,
}

impl Default for FleetRun {
    fn default() -> Self {
        FleetRun {
            aircraft: 1000,
            duration: Duration::from_secs(10),
            stick_hz: 100,
            telemetry_hz: 50,
            flood_per_second: 0,
            seed: 1,
            synchronized: false,
            ground_station: false,
        }
    }
}

/// Latency percentiles of the messages of one kind, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Messages measured.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest.
    pub max_us: u64,
}

impl Latency {
    fn of(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(i).copied().unwrap_or(0)
        };
        Latency {
            count: samples.len() as u64,
            p50_us: at(0.5),
            p99_us: at(0.99),
            max_us: samples.last().copied().unwrap_or(0),
        }
    }
}

/// What a fleet flight measured.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    /// Links.
    pub links: u32,
    /// Did they all start in the same instant?
    pub synchronized: bool,
    /// Was the ground side the tokio adapter's `GroundStation`?
    pub ground_station: bool,
    /// Measured time (after the warm-up).
    pub duration_s: f64,
    /// Sticks handed to the ground station's links, and delivered to the aircraft.
    pub sticks_sent: u64,
    /// Sticks delivered.
    pub sticks_delivered: u64,
    /// Stick latency, ground application to aircraft application.
    pub stick_latency: Latency,
    /// Telemetry handed to the aircraft's links.
    pub telemetry_sent: u64,
    /// Telemetry delivered.
    pub telemetry_delivered: u64,
    /// Telemetry latency, aircraft application to ground application.
    pub telemetry_latency: Latency,
    /// CPU time of the ground station's thread over the measured time, as a fraction of
    /// one core.
    pub ground_cpu: f64,
    /// Datagrams the ground station received and sent over the measured time.
    pub ground_datagrams_received: u64,
    /// Datagrams the ground station sent (not counted by a `GroundStation`).
    pub ground_datagrams_sent: Option<u64>,
    /// Flood `Init`s sent at the ground station over the measured time.
    pub flood_sent: u64,
    /// What the ground station's fleet dropped itself.
    pub unknown_receiver: u64,
    /// Malformed datagrams the fleet dropped.
    pub malformed: u64,
}

/// The ground station's index of link `i` (the aircraft's is `AIRCRAFT_BASE + i`).
const GROUND_BASE: u32 = 0x1000_0000;
const AIRCRAFT_BASE: u32 = 0x2000_0000;
/// Stick and telemetry payloads: the send time (8 bytes) and padding to a realistic size.
const STICK_LEN: usize = 24;
const TELEMETRY_LEN: usize = 96;
const WARM_UP: Duration = Duration::from_secs(1);
/// Messages handed to a link in a flight's last this long are not measured: both sides
/// stop at its end, and one handed over just before may still wait for its driver or be
/// on its way (at 5000 sticks a second, the two milliseconds a loaded machine takes to
/// schedule the ground station's driver were ten messages "lost" at the edge).
const SETTLE: Duration = Duration::from_millis(100);

/// Is a message handed over `at` one of the measured ones: after the warm-up, before the
/// `SETTLE` before the flight's `end`? (The sender counts it sent, the receiver delivered.)
fn in_measured_time(at: Instant, base: Instant, end: Instant) -> bool {
    at >= base + WARM_UP && at < end - SETTLE
}
/// How often the applications hand their due messages to the links.
const TICK: Duration = Duration::from_millis(1);
/// Unless synchronized, the links join one after the other over this time (within the
/// warm-up).
const JOIN: Duration = Duration::from_millis(500);

/// Link `i` of one side (a remote on the ground, an aircraft in the air), established at
/// `now` from a secret both sides derive from the seed.
fn make_link(
    role: Role,
    i: u32,
    seed: u64,
    peer: SocketAddr,
    now: Timestamp,
) -> std::io::Result<Link> {
    {
        let mut secret = [0u8; 32];
        ChaCha20Rng::seed_from_u64(seed ^ u64::from(i)).fill_bytes(&mut secret);
        let (local, remote) = match role {
            Role::Remote => (GROUND_BASE + i, AIRCRAFT_BASE + i),
            Role::Aircraft => (AIRCRAFT_BASE + i, GROUND_BASE + i),
        };
        let link = Link::from_secret(
            role,
            Config::default(),
            &Secret::new(secret),
            &[0; 32],
            local,
            remote,
            peer,
            &mut ChaCha20Rng::seed_from_u64(seed.wrapping_add(u64::from(local))),
            now,
        );
        link.map_err(|e| std::io::Error::other(format!("{e:?}")))
    }
}

/// Micro-seconds since `base`, as the link's time.
fn stamp(base: Instant, now: Instant) -> Timestamp {
    Timestamp::ZERO + now.saturating_duration_since(base)
}

/// CPU time (user + system) of the calling thread, from `/proc/thread-self/stat`; zero
/// where that file does not exist.
fn thread_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Clock ticks of 10 ms (USER_HZ is 100 on Linux).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// What one side of the fleet does: send its kind of message on every link at `hz`, spread
/// evenly, receive the other kind and measure its latency.
struct Side {
    socket: UdpSocket,
    role: Role,
    links: u32,
    seed: u64,
    peer: SocketAddr,
    /// All links join at the start, or one after the other over [`JOIN`].
    synchronized: bool,
    hz: u32,
    channel: Channel,
    len: usize,
}

/// What a side counted over the measured time.
#[derive(Default)]
struct SideCounts {
    sent: u64,
    delivered: u64,
    latencies_us: Vec<u64>,
    datagrams_received: u64,
    datagrams_sent: u64,
    cpu: Duration,
    stats: FleetStats,
}

impl Side {
    fn run(self, base: Instant, end: Instant, stop: &AtomicBool) -> std::io::Result<SideCounts> {
        let mut fleet = Fleet::new();
        let mut keys: Vec<LinkKey> = Vec::with_capacity(self.links as usize);
        let mut schedule = Schedule::new(&self, base, end);
        let measure_from = base + WARM_UP;
        let mut counts = SideCounts::default();
        let mut cpu_at_start = None;
        let mut buf = vec![0u8; 2048];
        let mut socket = Batched::new(&self.socket)?;
        // Readiness of the socket, to sleep until a datagram comes or a deadline passes. The
        // socket stays std's (mio registers its file descriptor; edge-triggered, which is
        // why every wake-up drains the socket until it would block).
        let mut poll = mio::Poll::new()?;
        let mut events = mio::Events::with_capacity(4);
        poll.registry().register(
            &mut mio::unix::SourceFd(&std::os::fd::AsRawFd::as_raw_fd(&self.socket)),
            mio::Token(0),
            mio::Interest::READABLE,
        )?;
        loop {
            let now = Instant::now();
            if now >= end || stop.load(Ordering::Relaxed) {
                break;
            }
            self.join_due(base, now, stamp(base, now), &mut keys, |link| {
                fleet.insert(link)
            })?;
            let fleet = &mut fleet;
            let measuring = now >= measure_from;
            if measuring && cpu_at_start.is_none() {
                cpu_at_start = Some(thread_cpu());
                counts.stats = fleet.stats();
            }
            let t = stamp(base, now);
            // Receive everything there is, a batch per system call.
            loop {
                let got = socket.recv(&mut |from, datagram| {
                    if measuring {
                        counts.datagrams_received += 1;
                    }
                    // Drops are counted by the fleet and the links.
                    let _ = fleet.handle_datagram(t, from, datagram);
                });
                match got {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // ICMP errors of loopback (a peer socket not yet bound): try again later.
                    Err(_) => break,
                }
            }
            counts.sent += schedule.send_due(now, &keys, |key, message| {
                fleet
                    .with_link(key, |link| link.send(self.channel, message))
                    .is_some_and(|r| r.is_ok())
            });
            if fleet.poll_timeout().is_some_and(|at| at <= t) {
                fleet.handle_timeout(t);
            }
            while let Some((_, tx)) = fleet.poll_transmit(t, &mut buf) {
                if measuring {
                    counts.datagrams_sent += 1;
                }
                socket.send(&buf[..tx.len], tx.destination);
            }
            socket.flush();
            while let Some((key, event)) = fleet.poll_event() {
                if let Event::Message { channel, data } = event {
                    self.record(&mut counts, channel, &data, base, end);
                    fleet.with_link(key, |link| link.recycle(data));
                }
            }
            // Sleep until a datagram comes, a deadline of a link, or the next tick of the
            // applications (every millisecond, as a control loop would run: the messages
            // of a tick go together).
            let tick = now + TICK;
            let wake = fleet
                .poll_timeout()
                .map_or(end, |at| base + at.saturating_since(Timestamp::ZERO))
                .min(schedule.next.max(tick))
                .min(end);
            let wait = wake.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                // Interrupted or failed: the loop looks again.
                let _ = poll.poll(&mut events, Some(wait));
            }
        }
        counts.cpu = thread_cpu().saturating_sub(cpu_at_start.unwrap_or_default());
        let end_stats = fleet.stats();
        counts.stats = FleetStats {
            datagrams_received: end_stats.datagrams_received - counts.stats.datagrams_received,
            unknown_receiver: end_stats.unknown_receiver - counts.stats.unknown_receiver,
            malformed: end_stats.malformed - counts.stats.malformed,
            index_collisions: end_stats.index_collisions - counts.stats.index_collisions,
        };
        Ok(counts)
    }
}

/// When each message of a side is due: one for some link every `1 / (hz n)`, links in
/// turn.
struct Schedule {
    links: u64,
    slot: Duration,
    /// When the next message is due, and which it is.
    next: Instant,
    index: u64,
    base: Instant,
    end: Instant,
    message: Vec<u8>,
}

impl Schedule {
    fn new(side: &Side, base: Instant, end: Instant) -> Self {
        let links = u64::from(side.links.max(1));
        Schedule {
            links,
            slot: Duration::from_nanos(1_000_000_000 / (u64::from(side.hz) * links).max(1)),
            next: base,
            index: 0,
            base,
            end,
            message: vec![0u8; side.len],
        }
    }

    /// Hand `send` the messages due by `now`, each stamped with the time it is handed to
    /// the link (the latency measured is the links' and the network's, not the loop's
    /// scheduling); returns how many it took that carry a stamp in the measured time (the
    /// receiver counts by the stamp too: a loop that falls behind hands over messages due
    /// before the measured time with a stamp inside it). A link not joined yet gets
    /// nothing.
    fn send_due(
        &mut self,
        now: Instant,
        keys: &[LinkKey],
        mut send: impl FnMut(LinkKey, &[u8]) -> bool,
    ) -> u64 {
        let sent_at = now.saturating_duration_since(self.base).as_nanos() as u64;
        self.message[..8].copy_from_slice(&sent_at.to_be_bytes());
        let stamped_in_measured_time = in_measured_time(now, self.base, self.end);
        let mut measured = 0;
        while self.next <= now {
            if let Some(&key) = keys.get((self.index % self.links) as usize) {
                if send(key, &self.message) && stamped_in_measured_time {
                    measured += 1;
                }
            }
            self.index += 1;
            self.next += self.slot;
        }
        measured
    }
}

impl Side {
    /// Make the links due to join by `now` (all at once, or evenly over `JOIN`, as a fleet
    /// comes up), at the links' time `t`, hand each to `add` and keep its key.
    fn join_due(
        &self,
        base: Instant,
        now: Instant,
        t: Timestamp,
        keys: &mut Vec<LinkKey>,
        mut add: impl FnMut(Link) -> Result<LinkKey, Box<Link>>,
    ) -> std::io::Result<()> {
        let n = u64::from(self.links.max(1));
        while (keys.len() as u64) < n {
            let i = keys.len() as u32;
            let joins = if self.synchronized {
                base
            } else {
                base + JOIN.mul_f64(f64::from(i) / n as f64)
            };
            if joins > now {
                break;
            }
            let link = make_link(self.role, i, self.seed, self.peer, t)?;
            let key = add(link).map_err(|_| std::io::Error::other("two links with one index"))?;
            keys.push(key);
        }
        Ok(())
    }

    /// A message delivered to this side: if it is of the other side's kind and was sent
    /// in the measured time ([`in_measured_time`]), count it and its latency (from the
    /// send time it carries).
    fn record(
        &self,
        counts: &mut SideCounts,
        channel: Channel,
        data: &[u8],
        base: Instant,
        end: Instant,
    ) {
        let Some(at) = data.get(..8).filter(|_| channel != self.channel) else {
            return;
        };
        let mut stamp = [0u8; 8];
        stamp.copy_from_slice(at);
        let sent_at = base + Duration::from_nanos(u64::from_be_bytes(stamp));
        if in_measured_time(sent_at, base, end) {
            counts.delivered += 1;
            let latency = Instant::now().saturating_duration_since(sent_at);
            counts.latencies_us.push(latency.as_micros() as u64);
        }
    }

    /// The ground side on [`rotorlink::tokio::GroundStation`]: the same links, messages and
    /// measurements as [`Side::run`], with the station's driver task and this loop on one
    /// current-thread runtime (one core). The station makes its own `poll_transmit` rounds;
    /// the application hands it each tick's sticks and reads the events it delivers.
    fn run_station(
        self,
        base: Instant,
        end: Instant,
        stop: &AtomicBool,
    ) -> std::io::Result<SideCounts> {
        use rotorlink::tokio::{GroundStation, LinkEvent};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            self.socket.set_nonblocking(true)?;
            // A second handle on the same socket (`self` keeps the first with its other
            // fields).
            let socket = tokio::net::UdpSocket::from_std(self.socket.try_clone()?)?;
            let mut station: GroundStation = GroundStation::spawn(socket)?;
            let clock = station.clock();
            let mut keys: Vec<LinkKey> = Vec::with_capacity(self.links as usize);
            let mut schedule = Schedule::new(&self, base, end);
            let measure_from = base + WARM_UP;
            let mut counts = SideCounts::default();
            let mut cpu_at_start = None;
            loop {
                let now = Instant::now();
                if now >= end || stop.load(Ordering::Relaxed) {
                    break;
                }
                self.join_due(base, now, clock.now(), &mut keys, |link| station.add(link))?;
                let measuring = now >= measure_from;
                if measuring && cpu_at_start.is_none() {
                    cpu_at_start = Some(thread_cpu());
                    counts.stats = station.stats();
                }
                counts.sent += schedule.send_due(now, &keys, |key, message| {
                    station.send(key, self.channel, message).is_ok()
                });
                // Events until the next tick of the application.
                let tick = tokio::time::Instant::from_std(schedule.next.max(now + TICK).min(end));
                loop {
                    tokio::select! {
                        event = station.recv() => {
                            let Some((_, event)) = event else { break };
                            if let LinkEvent::Message { channel, data } = event {
                                self.record(&mut counts, channel, &data, base, end);
                            }
                        }
                        () = tokio::time::sleep_until(tick) => break,
                    }
                }
            }
            counts.cpu = thread_cpu().saturating_sub(cpu_at_start.unwrap_or_default());
            let end_stats = station.stats();
            counts.datagrams_received =
                end_stats.datagrams_received - counts.stats.datagrams_received;
            counts.stats = FleetStats {
                datagrams_received: counts.datagrams_received,
                unknown_receiver: end_stats.unknown_receiver - counts.stats.unknown_receiver,
                malformed: end_stats.malformed - counts.stats.malformed,
                index_collisions: end_stats.index_collisions - counts.stats.index_collisions,
            };
            Ok(counts)
        })
    }
}

/// Genuine pairing `Init`s of 16 remotes nobody knows, each from its own socket, `rate`
/// a second in turn (an `Init` names no receiver: index 0).
/// Returns how many it sent from `measure_from` on.
fn flood(
    target: SocketAddr,
    rate: u32,
    measure_from: Instant,
    end: Instant,
    stop: &AtomicBool,
) -> u64 {
    if rate == 0 {
        return 0;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let mut senders = Vec::new();
    for _ in 0..16 {
        let (Ok(socket), Ok(mut remote)) = (
            UdpSocket::bind("127.0.0.1:0"),
            Link::<rotorlink::RustCrypto>::remote(
                Config::default(),
                rotorlink::handshake::RemoteIdentity::generate(&mut rng),
                [0x5a; 16],
                &mut rng,
                Timestamp::ZERO,
            ),
        ) else {
            continue;
        };
        let mut buf = vec![0u8; 2048];
        let init = remote
            .pair(b"000000", target, Timestamp::ZERO)
            .ok()
            .and_then(|()| remote.poll_transmit(Timestamp::ZERO, &mut buf))
            .map(|t| buf[..t.len].to_vec());
        if let Some(init) = init {
            senders.push((socket, init));
        }
    }
    if senders.is_empty() {
        return 0;
    }
    let (mut sent, mut measured) = (0u64, 0u64);
    let start = Instant::now();
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        // Catch up to the rate, in bursts of at most 64.
        let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as u64;
        for _ in 0..due.saturating_sub(sent).min(64) {
            let (socket, init) = &senders[(sent % senders.len() as u64) as usize];
            let _ = socket.send_to(init, target);
            sent += 1;
            if Instant::now() >= measure_from {
                measured += 1;
            }
        }
        thread::sleep(Duration::from_micros(500));
    }
    measured
}

/// A non-blocking UDP socket with batched system calls ([`quinn_udp`], as the tokio
/// adapter's `UdpTransport`): one receive takes up to 32 buffers (`recvmmsg`), each
/// holding up to 64 datagrams of one size (GRO); sends of one size to one address go out
/// together, up to 64 per call (GSO). A datagram the kernel refuses is lost on the air, to
/// the link, which recovers from losses.
struct Batched<'a> {
    socket: &'a UdpSocket,
    state: quinn_udp::UdpSocketState,
    rx: Vec<Vec<u8>>,
    /// Datagrams of one size to one address, waiting to go in one call.
    tx: Vec<u8>,
    tx_segment: usize,
    tx_to: Option<SocketAddr>,
}

/// The most bytes one segmented send carries: an IPv4 packet less its IP and UDP headers.
const MAX_GSO_BYTES: usize = 65_507;

impl<'a> Batched<'a> {
    fn new(socket: &'a UdpSocket) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        let state = quinn_udp::UdpSocketState::new(socket.into())?;
        let rx_len = (state.gro_segments() * 2048).max(2048);
        Ok(Batched {
            socket,
            state,
            rx: vec![vec![0; rx_len]; quinn_udp::BATCH_SIZE],
            tx: Vec::with_capacity(MAX_GSO_BYTES),
            tx_segment: 0,
            tx_to: None,
        })
    }

    /// One receive system call: every datagram it got, to `each`; how many (0 when none
    /// was waiting).
    fn recv(&mut self, each: &mut dyn FnMut(SocketAddr, &[u8])) -> std::io::Result<usize> {
        let mut meta = [quinn_udp::RecvMeta::default(); quinn_udp::BATCH_SIZE];
        let mut bufs: Vec<std::io::IoSliceMut<'_>> = self
            .rx
            .iter_mut()
            .map(|b| std::io::IoSliceMut::new(b))
            .collect();
        let n = match self.state.recv(self.socket.into(), &mut bufs, &mut meta) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut datagrams = 0;
        for (m, buf) in meta.iter().zip(&self.rx).take(n) {
            let stride = if m.stride == 0 { m.len } else { m.stride };
            for datagram in buf[..m.len].chunks(stride.max(1)) {
                each(m.addr, datagram);
                datagrams += 1;
            }
        }
        Ok(datagrams)
    }

    /// Queue a datagram; it goes with the others of its size and address.
    fn send(&mut self, datagram: &[u8], to: SocketAddr) {
        let max = self
            .state
            .max_gso_segments()
            .min(MAX_GSO_BYTES / datagram.len().max(1))
            .max(1);
        let same = self.tx_to == Some(to) && self.tx_segment == datagram.len();
        if !same || self.tx.len() / self.tx_segment.max(1) >= max {
            self.flush();
        }
        self.tx_to = Some(to);
        self.tx_segment = datagram.len();
        self.tx.extend_from_slice(datagram);
    }

    /// Send what is queued.
    fn flush(&mut self) {
        let Some(to) = self.tx_to.take() else {
            return;
        };
        if !self.tx.is_empty() {
            let transmit = quinn_udp::Transmit {
                destination: to,
                ecn: None,
                contents: &self.tx,
                segment_size: (self.tx.len() > self.tx_segment).then_some(self.tx_segment),
                src_ip: None,
            };
            // Refused (a full send buffer): lost on the air, to the links.
            let _ = self.state.try_send(self.socket.into(), &transmit);
        }
        self.tx.clear();
    }
}

/// Socket buffers each way: a thousand links' datagrams of a few milliseconds (the kernel
/// may grant less: `net.core.rmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;

/// A UDP socket on 127.0.0.1 with [`SOCKET_BUFFER`] each way.
fn loopback_socket() -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_recv_buffer_size(SOCKET_BUFFER)?;
    socket.set_send_buffer_size(SOCKET_BUFFER)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    Ok(socket.into())
}

/// Fly the fleet.
///
/// # Errors
/// If a loopback socket cannot be made.
pub fn run(run: &FleetRun) -> std::io::Result<FleetReport> {
    let ground_socket = loopback_socket()?;
    let air_socket = loopback_socket()?;
    let (ground_addr, air_addr) = (ground_socket.local_addr()?, air_socket.local_addr()?);
    let n = run.aircraft.max(1);
    let ground = Side {
        socket: ground_socket,
        role: Role::Remote,
        links: n,
        seed: run.seed,
        peer: air_addr,
        synchronized: run.synchronized,
        hz: run.stick_hz,
        channel: Channel::Control,
        len: STICK_LEN,
    };
    let air = Side {
        socket: air_socket,
        role: Role::Aircraft,
        links: n,
        seed: run.seed,
        peer: ground_addr,
        synchronized: run.synchronized,
        hz: run.telemetry_hz,
        channel: Channel::Telemetry,
        len: TELEMETRY_LEN,
    };
    let base = Instant::now();
    let end = base + WARM_UP + run.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let (s1, s2, s3) = (stop.clone(), stop.clone(), stop.clone());
    let ground = if run.ground_station {
        thread::spawn(move || ground.run_station(base, end, &s1))
    } else {
        thread::spawn(move || ground.run(base, end, &s1))
    };
    let air = thread::spawn(move || air.run(base, end, &s2));
    let rate = run.flood_per_second;
    let flood = thread::spawn(move || flood(ground_addr, rate, base + WARM_UP, end, &s3));
    let join = |r: thread::Result<std::io::Result<SideCounts>>| {
        r.unwrap_or_else(|_| Err(std::io::Error::other("a fleet thread panicked")))
    };
    let ground = join(ground.join())?;
    let air = join(air.join())?;
    stop.store(true, Ordering::Relaxed);
    let flood_sent = flood.join().unwrap_or(0);
    let secs = run.duration.as_secs_f64();
    Ok(FleetReport {
        links: n,
        synchronized: run.synchronized,
        ground_station: run.ground_station,
        duration_s: secs,
        sticks_sent: ground.sent,
        sticks_delivered: air.delivered,
        stick_latency: Latency::of(air.latencies_us),
        telemetry_sent: air.sent,
        telemetry_delivered: ground.delivered,
        telemetry_latency: Latency::of(ground.latencies_us),
        ground_cpu: ground.cpu.as_secs_f64() / secs,
        ground_datagrams_received: ground.datagrams_received,
        ground_datagrams_sent: (!run.ground_station).then_some(ground.datagrams_sent),
        flood_sent,
        unknown_receiver: ground.stats.unknown_receiver,
        malformed: ground.stats.malformed,
    })
}

impl std::fmt::Display for FleetReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "fleet: {} links on one ground-station socket{} ({}), {:.1} s measured",
            self.links,
            if self.ground_station {
                " (tokio GroundStation)"
            } else {
                ""
            },
            if self.synchronized {
                "all started in the same instant"
            } else {
                "joined over half a second"
            },
            self.duration_s
        )?;
        let messages = |f: &mut std::fmt::Formatter<'_>, name, sent: u64, got: u64, l: Latency| {
            let ms = |us: u64| us as f64 / 1000.0;
            writeln!(
                f,
                "{name:<10} {sent:>9} sent {got:>9} delivered ({:.2}%)  latency p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                if sent == 0 { 0.0 } else { 100.0 * got as f64 / sent as f64 },
                ms(l.p50_us),
                ms(l.p99_us),
                ms(l.max_us)
            )
        };
        messages(
            f,
            "sticks",
            self.sticks_sent,
            self.sticks_delivered,
            self.stick_latency,
        )?;
        messages(
            f,
            "telemetry",
            self.telemetry_sent,
            self.telemetry_delivered,
            self.telemetry_latency,
        )?;
        writeln!(
            f,
            "ground     CPU {:.0}% of one core, {} datagrams in, {} out",
            self.ground_cpu * 100.0,
            self.ground_datagrams_received,
            self.ground_datagrams_sent
                .map_or_else(|| "?".to_string(), |n| n.to_string())
        )?;
        write!(
            f,
            "flood      {} handshake Inits from unknown sources; the fleet dropped {} for no link, {} malformed",
            self.flood_sent, self.unknown_receiver, self.malformed
        )
    }
}
