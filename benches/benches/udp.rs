//! The tokio driver over real UDP on the loopback interface: 4 MiB in 64 KiB storage
//! messages from an aircraft to a remote (`Connection::send` on `Channel::Storage`, the
//! remote `recv`s until every byte arrived: reliable, in order, encrypted, acknowledged),
//! against two plain tokio UDP sockets moving the same bytes in datagrams of the same sizes
//! under the same window, with no crypto and no retransmission (the floor).
//! `cargo bench -p rotorlink-bench --bench udp`.
//!
//! The link is paired and its storage unlocked once, outside the timed part (Argon2 with
//! `KsfParams::INSECURE_FAST`: the pairing parameters do not touch the data path).

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand_core::OsRng;
use rotorlink::handshake::{AircraftIdentity, KsfParams, MemoryAttemptStore, RemoteIdentity};
use rotorlink::tokio::{Aircraft, Connection, LinkEvent, Options, Remote, UdpTransport};
use rotorlink::wire::body::SegmentHeader;
use rotorlink::{AeadProvider, AwsLc, Channel, Config, Event, Link, RustCrypto, Stats, Timestamp};
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;
use tokio::time::timeout;

/// Bytes moved per iteration.
const PAYLOAD: usize = 4 << 20;
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

/// One transfer: the aircraft queues every message (`send` waits out a full queue), the
/// remote receives until every byte arrived.
async fn storage_transfer<P: AeadProvider>(
    aircraft: &Connection<P>,
    remote: &mut Connection<P>,
    messages: &[Bytes],
) {
    let send = async {
        for m in messages {
            aircraft
                .send(Channel::Storage, m.clone())
                .await
                .expect("storage open");
        }
    };
    let recv = async {
        let mut got = 0;
        while got < PAYLOAD {
            match remote.recv().await {
                Some(LinkEvent::Message {
                    channel: Channel::Storage,
                    data,
                }) => {
                    assert_eq!(data.len(), MESSAGE);
                    got += data.len();
                }
                Some(_) => {}
                None => panic!("link closed during the transfer"),
            }
        }
    };
    tokio::join!(send, recv);
}

fn bench_link<P: AeadProvider>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    (mut aircraft, mut remote): (Connection<P>, Connection<P>),
) where
    Link<P>: Send + 'static,
{
    rt.block_on(unlock(&mut aircraft, &mut remote));
    let messages: Vec<Bytes> = (0..PAYLOAD / MESSAGE)
        .map(|i| Bytes::from(vec![i as u8; MESSAGE]))
        .collect();
    let (air0, rc0) = (aircraft.stats(), remote.stats());
    let mut iterations = 0u64;
    group.bench_function(P::NAME, |b| {
        b.iter(|| {
            iterations += 1;
            rt.block_on(storage_transfer(&aircraft, &mut remote, &messages));
        })
    });
    let per = |a: u64, b: u64| (a - b) as f64 / iterations.max(1) as f64;
    let (air, rc): (Stats, Stats) = (aircraft.stats(), remote.stats());
    eprintln!(
        "rotorlink_storage/{}: per iteration {:.0} datagrams sent by the aircraft ({:.1} retransmits), {:.0} acks sent by the remote; {iterations} iterations",
        P::NAME,
        per(air.datagrams_sent, air0.datagrams_sent),
        per(air.storage_retransmits, air0.storage_retransmits),
        per(rc.acks_sent, rc0.acks_sent),
    );
    rt.block_on(async {
        remote.close().await;
        aircraft.close().await;
    });
}

fn benches(c: &mut Criterion) {
    // Built once: two workers, as many as the machine has cores.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    bench_raw(c, &rt);
    let mut group = c.benchmark_group("rotorlink_storage");
    group.throughput(Throughput::Bytes(PAYLOAD as u64));
    bench_link(&mut group, &rt, rt.block_on(pair_rustcrypto()));
    bench_link(&mut group, &rt, rt.block_on(pair_aws_lc()));
    group.finish();
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
