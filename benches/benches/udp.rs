//! The tokio driver over real UDP on the loopback interface: 4 MiB in 64 KiB storage
//! messages from an aircraft to a remote (`Connection::send` on `Channel::Storage`, the
//! remote `recv`s until every byte arrived: reliable, in order, encrypted, acknowledged),
//! against two plain tokio UDP sockets moving the same bytes in datagrams of the same sizes
//! under the same window, with no crypto and no retransmission (a per-datagram floor).
//! Then `bulk_64MiB`: 64 MiB by QUIC (quinn 0.11, one unidirectional stream) and by
//! rotorlink's storage channel over the same loopback in the same run. Every bench prints
//! the CPU time of the process (both ends, user and system) per iteration.
//! `cargo bench -p rotorlink-bench --bench udp`.
//!
//! The links and the QUIC connection are set up once, outside the timed part (Argon2 with
//! `KsfParams::INSECURE_FAST`: the pairing parameters do not touch the data path).

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand_core::OsRng;
use rotorlink::handshake::{AircraftIdentity, KsfParams, MemoryAttemptStore, RemoteIdentity};
use rotorlink::tokio::{Aircraft, Connection, LinkEvent, Options, Remote, UdpTransport};
use rotorlink::wire::body::SegmentHeader;
use rotorlink::{AeadProvider, AwsLc, Channel, Config, Event, Link, RustCrypto, Stats, Timestamp};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use rustls::RootCertStore;
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;
use tokio::time::timeout;

/// Bytes moved per iteration.
const PAYLOAD: usize = 4 << 20;
/// Bytes moved per iteration by the bulk group (rotorlink against quinn).
const BULK: usize = 64 << 20;
/// Bytes per storage message.
const MESSAGE: usize = 64 << 10;
const LINK_ID: [u8; 16] = *b"bench-udp-air-01";
const CODE: &[u8] = b"246813";
/// How long a raw end waits for a datagram before it counts the rest as lost.
const LOSS_TIMEOUT: Duration = Duration::from_millis(200);
/// How long the setup waits for an event.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

fn config() -> Config {
    Config {
        ksf: KsfParams::INSECURE_FAST,
        ..Config::default()
    }
}

/// Storage data per datagram at the default MTU: the raw sockets send datagrams of the
/// same sizes (each message cut the same way), so both sides make as many `send` calls.
fn segment_len() -> usize {
    config().max_plaintext() - SegmentHeader::LEN
}

/// The raw sender keeps as many datagrams in flight as the link keeps segments.
fn window() -> u64 {
    u64::from(config().storage_window)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

/// Both ends of the floor: plain connected sockets; each datagram starts with its 8-byte
/// sequence number; the receiver acknowledges the highest number seen after every datagram
/// or after draining what the socket holds; nothing lost is resent (losses are counted and
/// printed, as is the datagram count).
struct Raw {
    sender: Arc<UdpSocket>,
    receiver: Arc<UdpSocket>,
    /// (offset, length) of each datagram in the payload.
    chunks: Arc<[(usize, usize)]>,
    payload: Arc<[u8]>,
    /// Sequence number of the first datagram of the next iteration: numbers keep rising
    /// across iterations, so a late datagram or ack of an earlier one is never counted.
    base: u64,
    ack_per_datagram: bool,
    lost: u64,
    acks: u64,
    iterations: u64,
}

impl Raw {
    async fn new(ack_per_datagram: bool) -> io::Result<Self> {
        let sender = UdpSocket::bind(addr("127.0.0.1:0")).await?;
        let receiver = UdpSocket::bind(addr("127.0.0.1:0")).await?;
        // The socket buffers rotorlink's UdpTransport asks for (the kernel's default, 208
        // KiB, drops bursts on this machine).
        for socket in [&sender, &receiver] {
            let socket = socket2::SockRef::from(socket);
            socket.set_recv_buffer_size(UdpTransport::SOCKET_BUFFER)?;
            socket.set_send_buffer_size(UdpTransport::SOCKET_BUFFER)?;
        }
        sender.connect(receiver.local_addr()?).await?;
        receiver.connect(sender.local_addr()?).await?;
        let seg = segment_len();
        let chunks: Vec<(usize, usize)> = (0..PAYLOAD)
            .step_by(MESSAGE)
            .flat_map(|m| {
                (m..m + MESSAGE)
                    .step_by(seg)
                    .map(move |at| (at, seg.min(m + MESSAGE - at)))
            })
            .collect();
        Ok(Raw {
            sender: Arc::new(sender),
            receiver: Arc::new(receiver),
            chunks: chunks.into(),
            payload: vec![0x5a; PAYLOAD].into(),
            base: 0,
            ack_per_datagram,
            lost: 0,
            acks: 0,
            iterations: 0,
        })
    }

    /// One transfer: the sender and the receiver each in a task, as the two drivers are.
    async fn transfer(&mut self) {
        let (base, n) = (self.base, self.chunks.len() as u64);
        let send = tokio::spawn(raw_send(
            self.sender.clone(),
            self.chunks.clone(),
            self.payload.clone(),
            base,
        ));
        let recv = tokio::spawn(raw_recv(
            self.receiver.clone(),
            base,
            n,
            self.ack_per_datagram,
        ));
        let (sent, received) = tokio::join!(send, recv);
        sent.expect("sender task").expect("loopback send");
        let (bytes, datagrams, acks) = received.expect("receiver task").expect("loopback recv");
        assert!(bytes <= PAYLOAD);
        self.lost += n - datagrams;
        self.acks += acks;
        self.base += n;
        self.iterations += 1;
    }
}

async fn raw_send(
    socket: Arc<UdpSocket>,
    chunks: Arc<[(usize, usize)]>,
    payload: Arc<[u8]>,
    base: u64,
) -> io::Result<()> {
    let n = chunks.len() as u64;
    let (end, window) = (base + n, window());
    let mut datagram = vec![0u8; segment_len()];
    let mut ack = [0u8; 8];
    let (mut next, mut acked) = (base, base);
    while acked < end {
        while next < end && next - acked < window {
            let (at, len) = chunks[(next - base) as usize];
            // One copy into the datagram, as the link seals into its datagram buffer.
            datagram[..len].copy_from_slice(&payload[at..at + len]);
            datagram[..8].copy_from_slice(&next.to_be_bytes());
            socket.send(&datagram[..len]).await?;
            next += 1;
        }
        match timeout(LOSS_TIMEOUT, socket.recv(&mut ack)).await {
            Ok(got) => {
                got?;
                acked = acked.max(u64::from_be_bytes(ack));
            }
            // Datagrams or acks lost: carry on, the receiver counts what arrived.
            Err(_) => acked = next,
        }
        while let Ok(8) = socket.try_recv(&mut ack) {
            acked = acked.max(u64::from_be_bytes(ack));
        }
    }
    Ok(())
}

/// Returns the payload bytes and datagrams that arrived, and the acks sent.
async fn raw_recv(
    socket: Arc<UdpSocket>,
    base: u64,
    n: u64,
    ack_per_datagram: bool,
) -> io::Result<(usize, u64, u64)> {
    let end = base + n;
    let mut buf = vec![0u8; 2048];
    let (mut bytes, mut datagrams, mut acks) = (0usize, 0u64, 0u64);
    // One past the highest sequence number seen.
    let mut highest = base;
    loop {
        let len = match timeout(LOSS_TIMEOUT, socket.recv(&mut buf)).await {
            Ok(len) => len?,
            Err(_) => break, // the rest was lost
        };
        let mut len = Some(len);
        while let Some(l) = len {
            let seq = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
            if (base..end).contains(&seq) {
                bytes += l;
                datagrams += 1;
                highest = highest.max(seq + 1);
            }
            len = if ack_per_datagram {
                None
            } else {
                socket.try_recv(&mut buf).ok()
            };
        }
        socket.send(&highest.to_be_bytes()).await?;
        acks += 1;
        if highest >= end {
            break;
        }
    }
    Ok((bytes, datagrams, acks))
}

fn bench_raw(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("raw_udp");
    group.throughput(Throughput::Bytes(PAYLOAD as u64));
    for (name, per_datagram) in [("ack_per_batch", false), ("ack_per_datagram", true)] {
        let mut raw = rt
            .block_on(Raw::new(per_datagram))
            .expect("loopback sockets");
        group.bench_function(name, |b| b.iter(|| rt.block_on(raw.transfer())));
        let sent = raw.iterations * raw.chunks.len() as u64;
        eprintln!(
            "raw_udp/{name}: {} datagrams per iteration, {} lost of {sent} in {} iterations, {:.0} acks per iteration",
            raw.chunks.len(),
            raw.lost,
            raw.iterations,
            raw.acks as f64 / raw.iterations.max(1) as f64,
        );
    }
    group.finish();
}

/// Wait for an event of the link itself, discarding the others.
async fn wait_for<P: AeadProvider>(
    conn: &mut Connection<P>,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) {
    let waiting = async {
        loop {
            match conn.recv().await {
                Some(LinkEvent::Link(e)) if pred(&e) => return,
                Some(_) => {}
                None => panic!("link closed while waiting for {what}"),
            }
        }
    };
    timeout(SETUP_TIMEOUT, waiting)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {SETUP_TIMEOUT:?}"));
}

/// Listening aircraft and its transport.
async fn listen() -> (UdpTransport, SocketAddr, AircraftIdentity) {
    let transport = UdpTransport::listen(addr("127.0.0.1:0"))
        .await
        .expect("bind loopback");
    let at = transport.local_addr().expect("bound address");
    let identity = AircraftIdentity::provision(LINK_ID, CODE, config().ksf, &mut OsRng)
        .expect("provision the aircraft");
    (transport, at, identity)
}

/// The default provider, started as an application would: `Aircraft::listen` and
/// `Remote::connect`.
async fn pair_rustcrypto() -> (Connection<RustCrypto>, Connection<RustCrypto>) {
    let (transport, at, identity) = listen().await;
    let attempts = Box::new(MemoryAttemptStore::new());
    let aircraft = Aircraft::listen(transport, identity, attempts, config()).expect("valid config");
    aircraft
        .open_pairing_window(Duration::from_secs(60))
        .expect("an aircraft");
    let transport = UdpTransport::connect(addr("127.0.0.1:0"), at)
        .await
        .expect("bind loopback");
    let remote = Remote::connect(transport, at, LINK_ID, CODE, config())
        .await
        .expect("pairing");
    (aircraft, remote)
}

/// AWS-LC: the same links built by hand (what `listen` and `connect` do, with the
/// provider named) and run with `Connection::spawn`.
async fn pair_aws_lc() -> (Connection<AwsLc>, Connection<AwsLc>) {
    let (transport, at, identity) = listen().await;
    let attempts = Box::new(MemoryAttemptStore::new());
    let mut link =
        Link::<AwsLc>::aircraft(config(), identity, attempts, &mut OsRng, Timestamp::ZERO)
            .expect("valid config");
    link.open_pairing_window(Duration::from_secs(60), Timestamp::ZERO)
        .expect("an aircraft");
    let aircraft = Connection::spawn(link, transport, Options::default());
    let transport = UdpTransport::connect(addr("127.0.0.1:0"), at)
        .await
        .expect("bind loopback");
    let identity = RemoteIdentity::generate(&mut OsRng);
    let mut link = Link::<AwsLc>::remote(config(), identity, LINK_ID, &mut OsRng, Timestamp::ZERO)
        .expect("valid config");
    link.pair(CODE, at, Timestamp::ZERO)
        .expect("a remote pairs");
    let mut remote = Connection::spawn(link, transport, Options::default());
    wait_for(&mut remote, "session", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    (aircraft, remote)
}

/// Open the storage channel on both ends.
async fn unlock<P: AeadProvider>(aircraft: &mut Connection<P>, remote: &mut Connection<P>) {
    remote.unlock_storage(CODE).expect("session up");
    let unlocked = |e: &Event| matches!(e, Event::StorageUnlocked);
    wait_for(remote, "storage unlock (remote)", unlocked).await;
    wait_for(aircraft, "storage unlock (aircraft)", unlocked).await;
}

/// One transfer: the aircraft queues `count` copies of `message` (`send` waits out a full
/// queue), the remote receives until every byte arrived.
async fn storage_transfer<P: AeadProvider>(
    aircraft: &Connection<P>,
    remote: &mut Connection<P>,
    message: &Bytes,
    count: usize,
) {
    let send = async {
        for _ in 0..count {
            aircraft
                .send(Channel::Storage, message.clone())
                .await
                .expect("storage open");
        }
    };
    let recv = async {
        let (mut got, total) = (0, count * message.len());
        while got < total {
            match remote.recv().await {
                Some(LinkEvent::Message {
                    channel: Channel::Storage,
                    data,
                }) => {
                    assert_eq!(data.len(), message.len());
                    got += data.len();
                }
                Some(_) => {}
                None => panic!("link closed during the transfer"),
            }
        }
    };
    tokio::join!(send, recv);
}

/// CPU time of this process (every thread: both ends, both directions), user and system,
/// from `/proc/self/stat` (clock ticks of 10 ms; zero where there is no such file).
fn cpu_time() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let field = |n: usize| {
        rest.split(' ')
            .nth(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let tick = |t: u64| Duration::from_millis(t * 10);
    (tick(field(14)), tick(field(15)))
}

/// The CPU and wall time of the timed iterations of one bench.
#[derive(Default)]
struct Tally {
    user: Duration,
    sys: Duration,
    wall: Duration,
    iterations: u64,
}

impl Tally {
    /// Run `iters` iterations of `run`, timed, and count their CPU time.
    fn time(&mut self, iters: u64, mut run: impl FnMut()) -> Duration {
        let (user, sys) = cpu_time();
        let start = Instant::now();
        for _ in 0..iters {
            run();
        }
        let wall = start.elapsed();
        let (user2, sys2) = cpu_time();
        self.user += user2 - user;
        self.sys += sys2 - sys;
        self.wall += wall;
        self.iterations += iters;
        wall
    }

    /// "CPU per iteration: ... user + ... system = ... ms, ... CPUs busy, ... s per GB".
    fn report(&self, bytes: usize) -> String {
        let n = self.iterations.max(1) as f64;
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / n;
        let cpu = self.user + self.sys;
        format!(
            "CPU per iteration {:.1} ms user + {:.1} ms system = {:.1} ms ({:.2} CPUs busy, {:.2} CPU-s per GB); {} iterations",
            ms(self.user),
            ms(self.sys),
            ms(cpu),
            cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9),
            cpu.as_secs_f64() / (n * bytes as f64 / 1e9),
            self.iterations,
        )
    }
}

/// `count` storage messages of `MESSAGE` bytes per iteration over a paired, unlocked link.
fn bench_link<P: AeadProvider>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    (aircraft, remote): &mut (Connection<P>, Connection<P>),
    count: usize,
) where
    Link<P>: Send + 'static,
{
    let message = Bytes::from(vec![0x5a; MESSAGE]);
    let (air0, rc0) = (aircraft.stats(), remote.stats());
    let mut tally = Tally::default();
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            tally.time(iters, || {
                rt.block_on(storage_transfer(aircraft, remote, &message, count));
            })
        })
    });
    let per = |a: u64, b: u64| (a - b) as f64 / tally.iterations.max(1) as f64;
    let (air, rc): (Stats, Stats) = (aircraft.stats(), remote.stats());
    eprintln!(
        "{}/{name}: per iteration {:.0} datagrams sent by the aircraft ({:.1} retransmits), {:.0} acks sent by the remote; {}",
        group_name(count),
        per(air.datagrams_sent, air0.datagrams_sent),
        per(air.storage_retransmits, air0.storage_retransmits),
        per(rc.acks_sent, rc0.acks_sent),
        tally.report(count * MESSAGE),
    );
}

fn group_name(count: usize) -> &'static str {
    if count * MESSAGE == BULK {
        "bulk_64MiB"
    } else {
        "rotorlink_storage"
    }
}

/// A paired link with storage unlocked, by either provider.
async fn paired<P: AeadProvider>(
    pair: impl std::future::Future<Output = (Connection<P>, Connection<P>)>,
) -> (Connection<P>, Connection<P>) {
    let (mut aircraft, mut remote) = pair.await;
    unlock(&mut aircraft, &mut remote).await;
    (aircraft, remote)
}

async fn close<P: AeadProvider>((aircraft, remote): (Connection<P>, Connection<P>)) {
    remote.close().await;
    aircraft.close().await;
}

/// QUIC over the same loopback: a quinn server (the aircraft's side) and client, connected
/// once; each iteration the server opens a unidirectional stream and writes the bytes in
/// `MESSAGE`-byte chunks, the client reads it to the end. quinn's defaults otherwise (its
/// Cubic, its flow-control windows, quinn-udp's GSO and GRO, AES-128-GCM from rustls on
/// AWS-LC).
struct Quic {
    _server: quinn::Endpoint,
    client: quinn::Endpoint,
    /// The server's end of the connection, and the client's.
    sending: quinn::Connection,
    receiving: quinn::Connection,
}

impl Quic {
    async fn connect() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("rcgen makes a self-signed certificate");
        let cert: CertificateDer<'static> = certified.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
        let server_config = quinn::ServerConfig::with_single_cert(vec![cert.clone()], key.into())
            .expect("the certificate and key match");
        let server =
            quinn::Endpoint::server(server_config, addr("127.0.0.1:0")).expect("bind loopback");
        let mut roots = RootCertStore::empty();
        roots.add(cert).expect("a valid certificate");
        let mut client = quinn::Endpoint::client(addr("127.0.0.1:0")).expect("bind loopback");
        client.set_default_client_config(
            quinn::ClientConfig::with_root_certificates(Arc::new(roots)).expect("one root"),
        );
        let at = server.local_addr().expect("bound address");
        let connecting = client
            .connect(at, "localhost")
            .expect("a valid client config");
        let accepting = async {
            let incoming = server.accept().await.expect("an incoming connection");
            incoming.await.expect("the handshake completes")
        };
        let (receiving, sending) = tokio::join!(connecting, accepting);
        Quic {
            _server: server,
            client,
            sending,
            receiving: receiving.expect("the handshake completes"),
        }
    }

    async fn transfer(&self, chunk: &Bytes, count: usize) {
        let send = async {
            let mut stream = self.sending.open_uni().await.expect("a stream");
            for _ in 0..count {
                stream
                    .write_chunk(chunk.clone())
                    .await
                    .expect("the stream is open");
            }
            stream.finish().expect("finish once");
        };
        let recv = async {
            let mut stream = self.receiving.accept_uni().await.expect("the stream");
            let mut got = 0;
            while let Some(c) = stream
                .read_chunk(usize::MAX, true)
                .await
                .expect("the stream reads")
            {
                got += c.bytes.len();
            }
            assert_eq!(got, count * chunk.len());
        };
        tokio::join!(send, recv);
    }
}

fn bench_quinn(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    count: usize,
) {
    let quic = rt.block_on(Quic::connect());
    let chunk = Bytes::from(vec![0x5a; MESSAGE]);
    let mut tally = Tally::default();
    group.bench_function("quinn", |b| {
        b.iter_custom(|iters| tally.time(iters, || rt.block_on(quic.transfer(&chunk, count))))
    });
    let stats = quic.sending.stats();
    eprintln!(
        "{}/quinn: {} datagrams sent by the server, {} lost, in all; {}",
        group_name(count),
        stats.udp_tx.datagrams,
        stats.path.lost_packets,
        tally.report(count * MESSAGE),
    );
    quic.sending.close(0u32.into(), b"done");
    rt.block_on(quic.client.wait_idle());
}

fn benches(c: &mut Criterion) {
    // Built once: two workers, as many as the machine has cores.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    bench_raw(c, &rt);
    let mut rustcrypto = rt.block_on(paired(pair_rustcrypto()));
    let mut aws_lc = rt.block_on(paired(pair_aws_lc()));
    let mut group = c.benchmark_group("rotorlink_storage");
    group.throughput(Throughput::Bytes(PAYLOAD as u64));
    let count = PAYLOAD / MESSAGE;
    bench_link(&mut group, &rt, RustCrypto::NAME, &mut rustcrypto, count);
    bench_link(&mut group, &rt, AwsLc::NAME, &mut aws_lc, count);
    group.finish();
    // The same bulk transfer by QUIC and by rotorlink, in the same run.
    let mut group = c.benchmark_group("bulk_64MiB");
    group.throughput(Throughput::Bytes(BULK as u64));
    let count = BULK / MESSAGE;
    bench_quinn(&mut group, &rt, count);
    bench_link(&mut group, &rt, "rotorlink-aws-lc", &mut aws_lc, count);
    bench_link(
        &mut group,
        &rt,
        "rotorlink-rustcrypto",
        &mut rustcrypto,
        count,
    );
    group.finish();
    rt.block_on(close(rustcrypto));
    rt.block_on(close(aws_lc));
}

criterion_group! {
    name = udp;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = benches
}
criterion_main!(udp);
