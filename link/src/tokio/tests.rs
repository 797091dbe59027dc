use std::boxed::Box;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::vec;
use std::vec::Vec;

use bytes::Bytes;
use rand_core::OsRng;
use tokio::sync::{mpsc, Mutex};
use tokio::time::timeout;

use super::*;
use crate::handshake::{AircraftIdentity, KsfParams, MemoryAttemptStore};
use crate::{CloseCode, Config, SendError};

const LINK_ID: [u8; 16] = *b"tokio-test-00001";
const CODE: &[u8] = b"246813";

fn config() -> Config {
    Config {
        ksf: KsfParams::INSECURE_FAST,
        ..Config::default()
    }
}

/// An aircraft listening on `transport`, its pairing window open for a minute.
fn aircraft<T: Transport>(transport: T) -> Connection {
    aircraft_with(transport, &config())
}

/// The same, with `config` (and its key stretching).
fn aircraft_with<T: Transport>(transport: T, config: &Config) -> Connection {
    let identity = AircraftIdentity::provision(LINK_ID, CODE, config.ksf, &mut OsRng).unwrap();
    let aircraft = Aircraft::listen(
        transport,
        identity,
        Box::new(MemoryAttemptStore::new()),
        config.clone(),
    )
    .unwrap();
    aircraft
        .open_pairing_window(Duration::from_secs(60))
        .unwrap();
    aircraft
}

/// The aircraft's and the remote's addresses on the in-memory pipe.
const PIPE_AIRCRAFT: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(10, 0, 0, 1),
    47474,
));
const PIPE_REMOTE: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(10, 0, 0, 2),
    47474,
));

/// One end of an in-memory datagram pipe; `cut` loses everything sent while set.
struct Pipe {
    /// Where this end's datagrams come from, as seen by the other end.
    peer: SocketAddr,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    rx: Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    cut: Arc<AtomicBool>,
    /// How this end hands over what is waiting.
    batch: Batch,
    /// A datagram taken from `rx` by `try_recv_batch` and not handed over yet.
    peeked: std::sync::Mutex<Option<Vec<u8>>>,
}

/// How a [`Pipe`] receives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Batch {
    /// One datagram per wake-up (the trait's defaults).
    One,
    /// `try_recv_batch` takes what is waiting, one datagram per buffer.
    Drain,
    /// As `Drain`, with datagrams of one size packed into one buffer (as UDP GRO).
    Coalesce,
}

impl Pipe {
    fn with_batch(mut self, batch: Batch) -> Self {
        self.batch = batch;
        self
    }
}

fn pipes() -> (Pipe, Pipe, Arc<AtomicBool>) {
    let (a_tx, a_rx) = mpsc::unbounded_channel();
    let (b_tx, b_rx) = mpsc::unbounded_channel();
    let cut = Arc::new(AtomicBool::new(false));
    let a = Pipe {
        peer: PIPE_REMOTE,
        tx: b_tx,
        rx: Mutex::new(a_rx),
        cut: cut.clone(),
        batch: Batch::One,
        peeked: std::sync::Mutex::new(None),
    };
    let b = Pipe {
        peer: PIPE_AIRCRAFT,
        tx: a_tx,
        rx: Mutex::new(b_rx),
        cut: cut.clone(),
        batch: Batch::One,
        peeked: std::sync::Mutex::new(None),
    };
    (a, b, cut)
}

impl Transport for Pipe {
    async fn send(&self, datagram: &[u8], _to: SocketAddr) -> io::Result<()> {
        if !self.cut.load(Ordering::Relaxed) {
            let _ = self.tx.send(datagram.to_vec());
        }
        Ok(())
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let peeked = self.peeked.lock().unwrap().take();
        let d = match peeked {
            Some(d) => Some(d),
            None => self.rx.lock().await.recv().await,
        };
        let d = d.ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
        buf[..d.len()].copy_from_slice(&d);
        Ok((d.len(), self.peer))
    }

    fn recv_batch_size(&self) -> (usize, usize) {
        match self.batch {
            Batch::One => (1, 1),
            Batch::Drain => (8, 1),
            Batch::Coalesce => (4, 16),
        }
    }

    fn try_recv_batch(
        &self,
        bufs: &mut [std::io::IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> io::Result<usize> {
        if self.batch == Batch::One {
            return Ok(0);
        }
        let segments = self.recv_batch_size().1;
        let Ok(mut rx) = self.rx.try_lock() else {
            return Ok(0);
        };
        let mut n = 0;
        let mut peeked = self.peeked.lock().unwrap();
        let mut next = peeked.take().or_else(|| rx.try_recv().ok());
        for (buf, slot) in bufs.iter_mut().zip(meta.iter_mut()) {
            let Some(first) = next.take() else {
                break;
            };
            let stride = first.len();
            buf[..stride].copy_from_slice(&first);
            let mut len = stride;
            let mut count = 1;
            next = rx.try_recv().ok();
            // Datagrams of the same size (the last may be shorter) share the buffer.
            while let Some(d) = next
                .take_if(|d| count < segments && d.len() <= stride && len + d.len() <= buf.len())
            {
                buf[len..len + d.len()].copy_from_slice(&d);
                len += d.len();
                count += 1;
                next = rx.try_recv().ok();
                if d.len() < stride {
                    break;
                }
            }
            *slot = Received {
                len,
                stride,
                source: self.peer,
            };
            n += 1;
        }
        // Taken from the channel but not handed over: first in line next time.
        *peeked = next;
        Ok(n)
    }
}

/// The next event that is not a message or a rekey, within `within`.
async fn next_event(c: &mut Connection, within: Duration) -> Option<LinkEvent> {
    timeout(within, async {
        loop {
            match c.recv().await? {
                LinkEvent::Message { .. } => {}
                other => return Some(other),
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// The next `n` messages on `channel` (other events are skipped); fails the test if they
/// do not all arrive within 5 s.
async fn messages(c: &mut Connection, channel: Channel, n: usize) -> Vec<Bytes> {
    let collect = async {
        let mut got = Vec::new();
        while got.len() < n {
            match c.recv().await {
                Some(LinkEvent::Message { channel: ch, data }) if ch == channel => got.push(data),
                Some(_) => {}
                None => break,
            }
        }
        got
    };
    let got = timeout(Duration::from_secs(5), collect).await;
    got.unwrap_or_else(|_| panic!("{n} messages on {channel:?} did not arrive within 5 s"))
}

#[tokio::test(start_paused = true)]
async fn a_remote_pairs_sends_and_closes_over_a_pipe() {
    let (a, r, _) = pipes();
    let mut aircraft = aircraft(a);
    let remote = Remote::connect(r, PIPE_AIRCRAFT, LINK_ID, CODE, config())
        .await
        .unwrap();
    assert!(remote.is_connected());
    remote
        .send(Channel::Control, Bytes::from_static(b"sticks"))
        .await
        .unwrap();
    let got = messages(&mut aircraft, Channel::Control, 1).await;
    assert_eq!(got, [Bytes::from_static(b"sticks")]);
    assert!(aircraft.is_connected());
    aircraft
        .send(Channel::Telemetry, Bytes::from_static(b"alt 12m"))
        .await
        .unwrap();
    let stats = remote.close().await;
    assert_eq!(stats.channel(Channel::Control).messages_sent, 1);
    loop {
        match next_event(&mut aircraft, Duration::from_secs(5)).await {
            Some(LinkEvent::Link(Event::Closed { code, by_peer })) => {
                assert_eq!((code, by_peer), (CloseCode::NORMAL, true));
                break;
            }
            Some(_) => {}
            None => panic!("the aircraft never saw the close"),
        }
    }
    // The driver stopped, so the event stream ends.
    assert_eq!(aircraft.recv().await, None);
}

#[tokio::test(start_paused = true)]
async fn the_events_read_while_connecting_are_still_delivered() {
    let (a, r, _) = pipes();
    let _aircraft = aircraft(a);
    let mut remote = Remote::connect(r, PIPE_AIRCRAFT, LINK_ID, CODE, config())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(e) = next_event(&mut remote, Duration::from_millis(100)).await {
        seen.push(e);
    }
    assert!(
        seen.contains(&LinkEvent::Link(Event::Connected {
            kind: crate::handshake::Kind::Pair
        })),
        "{seen:?}"
    );
    assert!(seen.contains(&LinkEvent::Link(Event::Bonded)), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn a_wrong_code_is_rejected_with_the_attempts_left() {
    let (a, r, _) = pipes();
    let _aircraft = aircraft(a);
    let err = Remote::connect(r, PIPE_AIRCRAFT, LINK_ID, b"000000", config())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::Rejected { remaining_attempts } if remaining_attempts > 0),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn nobody_answering_times_out() {
    let (_a, r, cut) = pipes();
    cut.store(true, Ordering::Relaxed);
    let err = Remote::connect(r, PIPE_AIRCRAFT, LINK_ID, CODE, config())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ConnectError::Failed(crate::handshake::HandshakeError::Timeout)
    );
}

#[tokio::test(start_paused = true)]
async fn send_waits_for_queue_space_and_storage_arrives_in_order() {
    let (a, r, _) = pipes();
    let mut aircraft = aircraft(a);
    let remote = Remote::connect(r, PIPE_AIRCRAFT, LINK_ID, CODE, config())
        .await
        .unwrap();
    remote.unlock_storage(CODE).unwrap();
    loop {
        match next_event(&mut aircraft, Duration::from_secs(5)).await {
            Some(LinkEvent::Link(Event::StorageUnlocked)) => break,
            Some(_) => {}
            None => panic!("storage never unlocked"),
        }
    }
    let n = config().send_queue_len * 3;
    // More than the queue holds: `try_send` would fail part way, `send` waits instead.
    let sender = tokio::spawn(async move {
        for i in 0..n {
            let m = Bytes::from(vec![i as u8; 3000]);
            remote.send(Channel::Storage, m).await.unwrap();
        }
        remote
    });
    let got = messages(&mut aircraft, Channel::Storage, n).await;
    assert_eq!(got.len(), n);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(&m[..], &vec![i as u8; 3000][..]);
    }
    let remote = sender.await.unwrap();
    assert!(matches!(
        remote.try_send(Channel::Video, b"x"),
        Err(SendError::NotAllowed(Channel::Video))
    ));
}

/// The remote sends `n` storage messages of `len` bytes to an aircraft whose pipe receives
/// as `batch` says; every message arrives, in order. Returns the aircraft's stats.
async fn storage_to_aircraft(batch: Batch, n: usize, len: usize) -> crate::Stats {
    let (a, r, _) = pipes();
    let mut aircraft = aircraft(a.with_batch(batch));
    let remote = Remote::connect(r, PIPE_AIRCRAFT, LINK_ID, CODE, config())
        .await
        .unwrap();
    remote.unlock_storage(CODE).unwrap();
    loop {
        match next_event(&mut aircraft, Duration::from_secs(5)).await {
            Some(LinkEvent::Link(Event::StorageUnlocked)) => break,
            Some(_) => {}
            None => panic!("storage never unlocked"),
        }
    }
    let before = aircraft.stats();
    let sender = tokio::spawn(async move {
        for i in 0..n {
            let m = Bytes::from(vec![i as u8; len]);
            remote.send(Channel::Storage, m).await.unwrap();
        }
        remote
    });
    let got = messages(&mut aircraft, Channel::Storage, n).await;
    for (i, m) in got.iter().enumerate() {
        assert_eq!(&m[..], &vec![i as u8; len][..], "message {i}");
    }
    drop(sender.await.unwrap());
    let after = aircraft.stats();
    crate::Stats {
        datagrams_received: after.datagrams_received - before.datagrams_received,
        acks_sent: after.acks_sent - before.acks_sent,
        ..after
    }
}

/// A burst that arrived together is taken whole before the driver answers, so one ack
/// covers it: fewer acks than when datagrams come one per wake-up, where the receiver's
/// policy (every second segment, no sooner than 500 µs after the last ack) sets them.
#[tokio::test(start_paused = true)]
async fn a_burst_that_arrived_together_is_taken_whole_and_acknowledged_once() {
    let one = storage_to_aircraft(Batch::One, 40, 20_000).await;
    let drained = storage_to_aircraft(Batch::Drain, 40, 20_000).await;
    // 40 messages of 20 000 bytes: 600 segments or so either way.
    assert!(one.datagrams_received >= 590, "{one:?}");
    assert!(drained.datagrams_received >= 590, "{drained:?}");
    // One per wake-up: 77 acks (one for every 8 segments: the pipe delivers them faster
    // than 2000 acks a second); drained: 45 (one for every 13).
    assert!(
        one.acks_sent * 10 >= one.datagrams_received,
        "one per wake-up: {} acks for {} datagrams",
        one.acks_sent,
        one.datagrams_received
    );
    assert!(
        drained.acks_sent * 10 <= drained.datagrams_received,
        "drained: {} acks for {} datagrams, one per wake-up: {}",
        drained.acks_sent,
        drained.datagrams_received,
        one.acks_sent
    );
}

/// Datagrams packed into one buffer (a coalesced receive, `stride` apart) are cut apart and
/// each handed to the link: the storage arrives whole and in order.
#[tokio::test(start_paused = true)]
async fn coalesced_datagrams_are_cut_at_the_stride() {
    let stats = storage_to_aircraft(Batch::Coalesce, 40, 20_000).await;
    assert!(stats.datagrams_received >= 590, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn the_aircraft_reports_the_failsafe_when_control_stops_and_clears_it_when_it_resumes() {
    let (a, r, _) = pipes();
    let mut aircraft = aircraft(a);
    let remote = Remote::connect(r, PIPE_AIRCRAFT, LINK_ID, CODE, config())
        .await
        .unwrap();
    remote
        .send(Channel::Control, Bytes::from_static(b"sticks"))
        .await
        .unwrap();
    let _ = messages(&mut aircraft, Channel::Control, 1).await;
    let silent_from = aircraft.now();
    // Keepalives still flow, so the link is up: only the pilot's commands stopped.
    loop {
        match next_event(&mut aircraft, Duration::from_secs(5)).await {
            Some(LinkEvent::Failsafe) => break,
            Some(LinkEvent::Link(Event::LinkLost)) => panic!("the link itself was fine"),
            Some(_) => {}
            None => panic!("no failsafe"),
        }
    }
    let waited = aircraft.now().saturating_since(silent_from);
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_millis(1600),
        "{waited:?}"
    );
    remote
        .send(Channel::Control, Bytes::from_static(b"sticks again"))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut aircraft, Duration::from_secs(1)).await,
        Some(LinkEvent::FailsafeCleared)
    );
}

#[tokio::test(start_paused = true)]
async fn a_radio_outage_is_reported_lost_then_restored() {
    let (a, r, cut) = pipes();
    let _aircraft = aircraft(a);
    let mut remote = Remote::connect(r, PIPE_AIRCRAFT, LINK_ID, CODE, config())
        .await
        .unwrap();
    cut.store(true, Ordering::Relaxed);
    let mut lost = false;
    while let Some(e) = next_event(&mut remote, Duration::from_secs(3)).await {
        if e == LinkEvent::Link(Event::LinkLost) {
            lost = true;
            break;
        }
    }
    assert!(lost);
    cut.store(false, Ordering::Relaxed);
    let mut restored = false;
    while let Some(e) = next_event(&mut remote, Duration::from_secs(5)).await {
        if matches!(
            e,
            LinkEvent::Link(Event::LinkRestored | Event::Connected { .. })
        ) {
            restored = true;
            break;
        }
    }
    assert!(restored);
}

async fn udp_pair() -> (Connection, Connection, SocketAddr) {
    udp_pair_with(config()).await
}

/// An aircraft listening on loopback UDP with `config`, and its address.
async fn udp_aircraft(config: &Config) -> (Connection, SocketAddr) {
    let listen = UdpTransport::listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let at = listen.local_addr().unwrap();
    (aircraft_with(listen, config), at)
}

/// An aircraft listening on loopback UDP and a remote paired with it, both with `config`.
async fn udp_pair_with(config: Config) -> (Connection, Connection, SocketAddr) {
    let (aircraft, at) = udp_aircraft(&config).await;
    let transport = UdpTransport::connect("127.0.0.1:0".parse().unwrap(), at)
        .await
        .unwrap();
    let remote = Remote::connect(transport, at, LINK_ID, CODE, config)
        .await
        .unwrap();
    (aircraft, remote, at)
}

#[tokio::test]
async fn a_remote_and_an_aircraft_talk_over_loopback_udp() {
    let (mut aircraft, remote, _) = udp_pair().await;
    for i in 0..10u8 {
        remote
            .send(Channel::Control, Bytes::from(vec![i]))
            .await
            .unwrap();
        let got = messages(&mut aircraft, Channel::Control, 1).await;
        assert_eq!(got, [Bytes::from(vec![i])]);
    }
    let mut remote = remote;
    aircraft
        .send(Channel::Telemetry, Bytes::from_static(b"battery 97%"))
        .await
        .unwrap();
    let got = messages(&mut remote, Channel::Telemetry, 1).await;
    assert_eq!(got, [Bytes::from_static(b"battery 97%")]);
}

#[tokio::test]
async fn garbage_from_another_address_does_not_take_the_aircraft_over() {
    let (mut aircraft, mut remote, at) = udp_pair().await;
    let intruder = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A forged data frame: right shape, wrong tag.
    let mut forged = vec![0u8; 64];
    forged[0] = 1;
    forged[1] = crate::wire::FrameType::Data as u8;
    forged[3] = Channel::Control as u8;
    intruder.send_to(&forged, at).await.unwrap();
    remote
        .send(Channel::Control, Bytes::from_static(b"mine"))
        .await
        .unwrap();
    let got = messages(&mut aircraft, Channel::Control, 1).await;
    assert_eq!(got, [Bytes::from_static(b"mine")]);
    // Replies still go to the remote, not to the intruder.
    aircraft
        .send(Channel::Telemetry, Bytes::from_static(b"to the pilot"))
        .await
        .unwrap();
    let got = messages(&mut remote, Channel::Telemetry, 1).await;
    assert_eq!(got, [Bytes::from_static(b"to the pilot")]);
    let mut buf = [0u8; 2048];
    let stray = timeout(Duration::from_millis(300), intruder.recv(&mut buf)).await;
    assert!(stray.is_err(), "the intruder got a reply");
    let s = aircraft.stats();
    assert_eq!(
        s.dropped_auth + s.dropped_malformed + s.dropped_unknown_receiver,
        1,
        "{s:?}"
    );
}

#[tokio::test]
async fn a_pairing_init_from_elsewhere_does_not_take_a_live_session_over() {
    let (mut aircraft, mut remote, at) = udp_pair().await;
    // A well-formed pairing Init needs only the public link id.
    let mut intruder_link: crate::Link = crate::Link::remote(
        config(),
        crate::handshake::RemoteIdentity::generate(&mut OsRng),
        LINK_ID,
        &mut OsRng,
        crate::Timestamp::ZERO,
    )
    .unwrap();
    intruder_link
        .pair(b"000000", at, crate::Timestamp::ZERO)
        .unwrap();
    let mut init = [0u8; 1500];
    let len = intruder_link
        .poll_transmit(crate::Timestamp::ZERO, &mut init)
        .unwrap()
        .len;
    let intruder = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let datagrams_before = aircraft.stats().datagrams_received;
    intruder.send_to(&init[..len], at).await.unwrap();
    while aircraft.stats().datagrams_received == datagrams_before {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    aircraft
        .send(Channel::Telemetry, Bytes::from_static(b"to the pilot"))
        .await
        .unwrap();
    let got = messages(&mut remote, Channel::Telemetry, 1).await;
    assert_eq!(got, [Bytes::from_static(b"to the pilot")]);
    // The intruder gets at most the answer to its own Init, never the session's frames.
    let mut buf = [0u8; 2048];
    while let Ok(Ok(n)) = timeout(Duration::from_millis(300), intruder.recv(&mut buf)).await {
        let (header, _) = crate::handshake::messages::parse_frame(&buf[..n])
            .expect("only handshake frames may reach the intruder");
        assert_ne!(header.frame_type, crate::wire::FrameType::Data);
    }
    remote
        .send(Channel::Control, Bytes::from_static(b"still flying"))
        .await
        .unwrap();
    let got = messages(&mut aircraft, Channel::Control, 1).await;
    assert_eq!(got, [Bytes::from_static(b"still flying")]);
}

/// A transport whose every receive fails at once, counting the attempts.
struct Broken(std::sync::atomic::AtomicU64);

impl Transport for Broken {
    async fn send(&self, _datagram: &[u8], _to: SocketAddr) -> io::Result<()> {
        Ok(())
    }

    async fn recv(&self, _buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Err(io::Error::from(io::ErrorKind::ConnectionRefused))
    }
}

#[tokio::test(start_paused = true)]
async fn a_transport_that_always_fails_does_not_make_the_driver_spin() {
    let broken = Arc::new(Broken(std::sync::atomic::AtomicU64::new(0)));
    let conn = aircraft(broken.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let tries = broken.0.load(Ordering::Relaxed);
    // One try per millisecond at most, not millions.
    assert!(
        (50..=101).contains(&tries),
        "{tries} receive attempts in 100 ms"
    );
    drop(conn);
}

/// A transport that keeps a copy of every datagram it sends.
struct Recording {
    inner: UdpTransport,
    sent: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Transport for Recording {
    async fn send(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(datagram.to_vec());
        self.inner.send(datagram, to).await
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.recv(buf).await
    }
}

/// An `Init` of `body` with the anti-DoS MAC an outsider can compute (public link id only).
fn outsider_init(body: crate::handshake::messages::InitBody<'_>) -> Vec<u8> {
    use crate::handshake::messages::{frame, Init, MAC1_LEN, SUITE_V2};
    let init = Init {
        suite: SUITE_V2,
        sender_index: 0x0bad_cafe,
        body,
        mac1: [0; MAC1_LEN],
    };
    let mut f = frame(crate::wire::FrameType::HandshakeInit, 0, &init.emit());
    let split = f.len() - MAC1_LEN;
    let tag = crate::handshake::keys::mac1(&LINK_ID, &[], &f[..split]);
    f[split..].copy_from_slice(&tag);
    f
}

/// Over real UDP, a third socket replays the remote's recorded `Init` and `Finish`, sends a
/// forged `Init`, a session `Init` for an unknown bond and a resume `Init` for an unknown
/// ticket, while the pilot flies. It never receives an encrypted frame (a refusal at most),
/// the aircraft's peer stays the remote, and telemetry and sticks arrive without a gap.
#[tokio::test]
async fn a_third_socket_replaying_or_forging_handshakes_takes_nothing_over() {
    use crate::handshake::messages::{InitBody, BOND_ID_LEN, MESSAGE1_LEN, TICKET_LEN};
    use crate::wire::FrameType;
    let listen = UdpTransport::listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let at = listen.local_addr().unwrap();
    let mut aircraft = aircraft(listen);
    let udp = UdpTransport::connect("127.0.0.1:0".parse().unwrap(), at)
        .await
        .unwrap();
    let remote_addr = udp.local_addr().unwrap();
    let recording = Arc::new(Recording {
        inner: udp,
        sent: std::sync::Mutex::new(Vec::new()),
    });
    let mut remote = Remote::connect(recording.clone(), at, LINK_ID, CODE, config())
        .await
        .unwrap();
    let recorded = recording.sent.lock().unwrap().clone();
    let of_type = |t: FrameType| {
        recorded
            .iter()
            .find(|d| d[1] == t as u8)
            .cloned()
            .expect("recorded")
    };
    let init = of_type(FrameType::HandshakeInit);
    let finish = of_type(FrameType::HandshakeFinish);
    let mut forged = init.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x5a;
    let unknown_bond = outsider_init(InitBody::Session {
        bond_id: [0xb0; BOND_ID_LEN],
        message: [9; MESSAGE1_LEN],
    });
    let unknown_ticket = outsider_init(InitBody::Resume {
        ticket: [0x7e; TICKET_LEN],
        message: [9; MESSAGE1_LEN],
    });
    assert_eq!(aircraft_peer(&aircraft), Some(remote_addr));

    let third = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut telemetry_seq = 0u32;
    let mut stick_seq = 0u32;
    for attack in [
        &init,
        &finish,
        &forged,
        &unknown_bond,
        &unknown_ticket,
        &init,
    ] {
        third.send_to(attack, at).await.unwrap();
        // The pilot keeps flying through it: a few rounds of sticks and telemetry.
        for _ in 0..5 {
            remote
                .send(
                    Channel::Control,
                    Bytes::from(stick_seq.to_be_bytes().to_vec()),
                )
                .await
                .unwrap();
            let got = messages(&mut aircraft, Channel::Control, 1).await;
            assert_eq!(got, [Bytes::from(stick_seq.to_be_bytes().to_vec())]);
            stick_seq += 1;
            aircraft
                .send(
                    Channel::Telemetry,
                    Bytes::from(telemetry_seq.to_be_bytes().to_vec()),
                )
                .await
                .unwrap();
            let got = messages(&mut remote, Channel::Telemetry, 1).await;
            assert_eq!(got, [Bytes::from(telemetry_seq.to_be_bytes().to_vec())]);
            telemetry_seq += 1;
        }
        assert_eq!(aircraft_peer(&aircraft), Some(remote_addr));
    }
    // Whatever reached the third socket is a handshake frame (a refusal or a response to
    // its own Init), never an encrypted one.
    let mut buf = [0u8; 2048];
    let mut answers = 0;
    while let Ok(Ok(_)) = timeout(Duration::from_millis(300), third.recv(&mut buf)).await {
        let t = crate::wire::FrameType::from_u8(buf[1]).unwrap();
        assert!(!t.is_encrypted(), "the third socket got an encrypted {t:?}");
        answers += 1;
    }
    assert!(answers >= 2, "the refusals answer their source");
    let s = aircraft.stats();
    assert_eq!(s.peer_address_changes, 0);
    assert!(
        s.dropped_handshake >= 1,
        "the forged Init was dropped: {s:?}"
    );
    assert!(aircraft.is_connected() && remote.is_connected());
}

fn aircraft_peer(aircraft: &Connection) -> Option<SocketAddr> {
    aircraft.with_link(|link| link.peer_addr())
}

/// An application that stops reading: the driver's channel holds `max_pending_events`
/// events, the link's own queue as many again, and everything past that is refused and
/// counted — memory stays bounded end to end. Reading again resumes delivery.
#[tokio::test(start_paused = true)]
async fn events_are_bounded_end_to_end_when_the_application_stops_reading() {
    let cap = 4;
    let bounded = Config {
        max_pending_events: cap,
        ..config()
    };
    let (a, r, _) = pipes();
    let aircraft = aircraft_with(a, &bounded);
    let mut remote = Remote::connect(r, PIPE_AIRCRAFT, LINK_ID, CODE, bounded)
        .await
        .unwrap();
    // Drain what connecting left behind.
    while next_event(&mut remote, Duration::from_millis(50))
        .await
        .is_some()
    {}
    let sent = 100u32;
    for i in 0..sent {
        aircraft
            .send(Channel::Telemetry, Bytes::from(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Now read everything that was kept.
    let mut kept = 0u32;
    while let Ok(Some(event)) = timeout(Duration::from_millis(50), remote.recv()).await {
        if matches!(
            event,
            LinkEvent::Message {
                channel: Channel::Telemetry,
                ..
            }
        ) {
            kept += 1;
        }
    }
    let overflowed = remote.stats().events_overflowed;
    assert!(
        kept as usize <= 2 * cap + 1,
        "{kept} events were held for an application that did not read"
    );
    assert_eq!(u64::from(kept) + overflowed, u64::from(sent));
    // Reading again: new messages flow.
    aircraft
        .send(Channel::Telemetry, Bytes::from_static(b"again"))
        .await
        .unwrap();
    let got = messages(&mut remote, Channel::Telemetry, 1).await;
    assert_eq!(got, [Bytes::from_static(b"again")]);
}

/// An application that never reads its events can still close: the driver, holding
/// events for a full channel, does not wait for room that will never come.
#[tokio::test(start_paused = true)]
async fn close_returns_when_the_application_never_read_its_events() {
    let (a, r, _) = pipes();
    let small = Config {
        max_pending_events: 8,
        ..config()
    };
    let identity = AircraftIdentity::provision(LINK_ID, CODE, small.ksf, &mut OsRng).unwrap();
    let attempts = Box::new(MemoryAttemptStore::new());
    let aircraft = Aircraft::listen(a, identity, attempts, small.clone()).unwrap();
    aircraft
        .open_pairing_window(Duration::from_secs(60))
        .unwrap();
    let remote = Remote::connect(r, PIPE_AIRCRAFT, LINK_ID, CODE, config())
        .await
        .unwrap();
    // Far more messages than the aircraft's event channel holds, none of them read.
    for i in 0..8 * small.max_pending_events {
        remote
            .send(Channel::Control, Bytes::from(std::format!("{i}")))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = timeout(Duration::from_secs(5), aircraft.close())
        .await
        .expect("close returns");
    assert!(stats.events_overflowed > 0, "{stats:?}");
    remote.close().await;
}

/// Receive from `rx` until `n` datagrams arrived (5 s at most); each with its source, and
/// the buffers they came in.
async fn receive_datagrams(rx: &UdpTransport, n: usize) -> (Vec<(Vec<u8>, SocketAddr)>, usize) {
    let (buffers, segments) = rx.recv_batch_size();
    let slot = if segments > 1 { 64 * 1024 } else { 2048 };
    let mut storage = vec![0u8; buffers * slot];
    let mut bufs: Vec<std::io::IoSliceMut<'_>> = storage
        .chunks_mut(slot)
        .map(std::io::IoSliceMut::new)
        .collect();
    let mut meta = vec![Received::default(); buffers];
    let mut got = Vec::new();
    let mut buffers = 0;
    timeout(Duration::from_secs(5), async {
        while got.len() < n {
            let k = rx.recv_batch(&mut bufs, &mut meta).await.unwrap();
            assert!(k >= 1);
            buffers += k;
            for (buf, m) in bufs.iter().zip(&meta[..k]) {
                got.extend(m.datagrams(buf).map(|d| (d.to_vec(), m.source)));
            }
        }
    })
    .await
    .expect("the datagrams arrive");
    // Nothing more is waiting: a try returns at once with nothing.
    assert_eq!(rx.try_recv_batch(&mut bufs, &mut meta).unwrap(), 0);
    (got, buffers)
}

/// A listening UDP transport on loopback and one connected to it, with their addresses.
async fn loopback_pair() -> (UdpTransport, SocketAddr, UdpTransport, SocketAddr) {
    let listening = UdpTransport::listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let at = listening.local_addr().unwrap();
    let connected = UdpTransport::connect("127.0.0.1:0".parse().unwrap(), at)
        .await
        .unwrap();
    let from = connected.local_addr().unwrap();
    (listening, at, connected, from)
}

/// Over a real loopback socket, a batch of datagrams of one size (the last one shorter)
/// goes out with `send_batch` and comes back whole, in order, with its source, through
/// `recv_batch`, from a listening and from a connected socket.
#[tokio::test]
async fn udp_sends_and_receives_a_batch() {
    let (listening, at, connected, from) = loopback_pair().await;
    let data: Vec<u8> = (0..1030u32).map(|i| (i % 251) as u8).collect();
    let expected: Vec<&[u8]> = data.chunks(100).collect();
    connected.send_batch(&data, 100, at).await.unwrap();
    let (got, buffers) = receive_datagrams(&listening, expected.len()).await;
    assert_eq!(got.len(), expected.len());
    for ((d, source), want) in got.iter().zip(&expected) {
        assert_eq!((&d[..], *source), (*want, from));
    }
    // On Linux the 11 datagrams went in one GSO send, and the loopback hands the receiver,
    // which asked for GRO, the same one buffer.
    if cfg!(target_os = "linux") {
        assert!(connected.max_send_segments() > 1);
        assert!(listening.recv_batch_size().1 > 1);
        assert_eq!(buffers, 1);
    }
    // And back, to the connected socket.
    listening.send_batch(&data, 100, from).await.unwrap();
    let (got, _) = receive_datagrams(&connected, expected.len()).await;
    for ((d, source), want) in got.iter().zip(&expected) {
        assert_eq!((&d[..], *source), (*want, at));
    }
}

/// `recv`, one datagram per call, hands out a coalesced receive a datagram at a time (a
/// wrapper transport that only forwards `recv` still sees datagrams, never a GRO buffer),
/// and what it kept goes first through `try_recv_batch`.
#[tokio::test]
async fn udp_recv_returns_one_datagram_of_a_coalesced_receive_at_a_time() {
    let (listening, at, connected, from) = loopback_pair().await;
    let data: Vec<u8> = (0..1030u32).map(|i| (i % 251) as u8).collect();
    connected.send_batch(&data, 100, at).await.unwrap();
    let mut buf = [0u8; 2048];
    for want in data.chunks(100).take(4) {
        let (n, source) = timeout(Duration::from_secs(5), listening.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&buf[..n], source), (want, from));
    }
    let (rest, _) = receive_datagrams(&listening, 7).await;
    let rest: Vec<&[u8]> = rest.iter().map(|(d, _)| &d[..]).collect();
    assert_eq!(rest, data.chunks(100).skip(4).collect::<Vec<_>>());
}

/// The socket buffers are sized: the kernel grants at least its default either way, and
/// here (Linux, `rmem_max` permitting) the 4 MiB asked for.
#[tokio::test]
async fn udp_socket_buffers_are_sized() {
    let t = UdpTransport::listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (recv, send) = t.socket_buffers().unwrap();
    let max = |name: &str| {
        std::fs::read_to_string(std::format!("/proc/sys/net/core/{name}"))
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
    };
    if let (Some(rmem), Some(wmem)) = (max("rmem_max"), max("wmem_max")) {
        // Linux doubles the size asked for (the other half is its bookkeeping).
        assert!(
            recv >= 2 * rmem.min(UdpTransport::SOCKET_BUFFER),
            "{recv} of {rmem}"
        );
        assert!(
            send >= 2 * wmem.min(UdpTransport::SOCKET_BUFFER),
            "{send} of {wmem}"
        );
    }
}

/// A batch larger than one segmented send may carry (64 KiB, one IP packet) is cut into
/// several sends: every datagram arrives.
#[tokio::test]
async fn udp_sends_a_batch_larger_than_one_packet() {
    let listening = UdpTransport::listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let at = listening.local_addr().unwrap();
    let connected = UdpTransport::connect("127.0.0.1:0".parse().unwrap(), at)
        .await
        .unwrap();
    // 100 datagrams of 1400 bytes, each starting with its number, and a short one.
    let mut data = Vec::new();
    for i in 0..100u8 {
        data.extend(std::iter::repeat_n(i, 1400));
    }
    data.extend([0xff; 33]);
    connected.send_batch(&data, 1400, at).await.unwrap();
    let (got, _) = receive_datagrams(&listening, 101).await;
    let got: Vec<&[u8]> = got.iter().map(|(d, _)| &d[..]).collect();
    assert_eq!(got, data.chunks(1400).collect::<Vec<_>>());
}

/// A datagram that takes long to handle (the remote stretches a key for the storage unlock
/// inside `handle_datagram`) does not date the datagrams taken after it to before they
/// arrived: each receive's datagrams carry the time that receive returned. Dated early, they
/// made the receiver state a longer hold than the real one in its feedback, and the sender
/// a round trip shorter than the path.
#[tokio::test]
async fn datagrams_taken_after_a_slow_one_are_dated_when_they_were_taken() {
    let (aircraft, remote, _) = pipes();
    let aircraft = aircraft.with_batch(Batch::Drain);
    let clock = Clock::start();
    remote.tx.send(b"first".to_vec()).unwrap();
    let mut rx = vec![0u8; 64 * 8];
    let mut bufs: Vec<std::io::IoSliceMut<'_>> =
        rx.chunks_mut(64).map(std::io::IoSliceMut::new).collect();
    let mut meta = vec![Received::default(); bufs.len()];
    let n = aircraft.recv_batch(&mut bufs, &mut meta).await.unwrap();
    let slow = Duration::from_millis(30);
    let mut dated: Vec<(Vec<u8>, crate::Timestamp)> = Vec::new();
    driver::take_waiting(
        &aircraft,
        &clock,
        &mut bufs,
        &mut meta,
        n,
        |now, _, datagram| {
            if dated.is_empty() {
                // Handled slowly; the next datagram arrives meanwhile.
                std::thread::sleep(slow);
                remote.tx.send(b"second".to_vec()).unwrap();
            }
            dated.push((datagram.to_vec(), now));
        },
    );
    assert_eq!(dated.len(), 2, "both datagrams are taken in one round");
    assert_eq!(dated[1].0, b"second");
    let apart = dated[1].1.saturating_since(dated[0].1);
    assert!(
        apart >= slow,
        "the second is dated {apart:?} after the first"
    );
}

/// Heavy key stretching: Argon2id over 64 MiB, three passes (a PC's 200 ms, a small
/// controller's [`KsfParams::INTERACTIVE`]).
fn heavy_stretching() -> Config {
    Config {
        ksf: KsfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        },
        ..Config::default()
    }
}

/// Stick commands kept arriving through a key stretching of `took` (`what`): `arrivals`
/// holds its start, each stick command's arrival and its end.
fn assert_sticks_kept_arriving(
    what: &str,
    took: Duration,
    arrivals: &[tokio::time::Instant],
    sent: u32,
) {
    let longest = arrivals
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    std::eprintln!(
        "{what} {took:?}, {} stick commands arrived of {sent}, longest gap {longest:?}",
        arrivals.len() - 2
    );
    assert!(
        took >= Duration::from_millis(100),
        "the stretching is real work: {what} {took:?}"
    );
    assert!(
        longest < took / 2,
        "longest gap between stick commands {longest:?} during a {what} of {took:?}"
    );
}

/// The pilot flies (a stick command every 2 ms) while the remote unlocks the storage with
/// [`heavy_stretching`]: the driver runs the stretching on a blocking thread, so the stick
/// commands keep arriving at the aircraft throughout. Run inside the driver, it held them
/// (and the lock `send` takes) for the whole stretching.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stick_commands_keep_arriving_while_the_remote_stretches_its_code() {
    let config = heavy_stretching();
    let (mut aircraft, mut remote, _) = udp_pair_with(config).await;

    let mut sticks = tokio::time::interval(Duration::from_millis(2));
    let start = tokio::time::Instant::now();
    remote.unlock_storage(CODE).unwrap();
    let mut arrivals = vec![start];
    let mut sent = 0u32;
    let unlocked = loop {
        tokio::select! {
            _ = sticks.tick() => {
                sent += 1;
                remote.send(Channel::Control, Bytes::from(sent.to_be_bytes().to_vec())).await.unwrap();
            }
            event = aircraft.recv() => {
                if let Some(LinkEvent::Message { channel: Channel::Control, .. }) = event {
                    arrivals.push(tokio::time::Instant::now());
                }
            }
            event = remote.recv() => match event {
                Some(LinkEvent::Link(Event::StorageUnlocked)) => {
                    arrivals.push(tokio::time::Instant::now());
                    break start.elapsed();
                }
                Some(LinkEvent::Link(e @ (Event::StorageUnlockRejected { .. } | Event::HandshakeFailed { .. }))) => {
                    panic!("unlock failed: {e:?}")
                }
                _ => {}
            }
        }
    };
    assert_sticks_kept_arriving("unlock", unlocked, &arrivals, sent);
}

/// A ground station's remote pairs with an aircraft and unlocks its storage: the driver
/// runs the unlock's key stretching on a blocking thread (its `Event::KeyStretchReady` never
/// reaches the application) and the unlock completes.
#[tokio::test]
async fn a_ground_station_unlocks_an_aircrafts_storage() {
    let (_aircraft, at) = udp_aircraft(&config()).await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut station: GroundStation = GroundStation::spawn(socket).unwrap();
    let clock = station.clock();
    let key = station_pairs(&station, at, config());
    let mut unlock_asked = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (from, event) = tokio::time::timeout_at(deadline, station.recv())
            .await
            .expect("the unlock completes")
            .unwrap();
        assert_eq!(from, key);
        match event {
            LinkEvent::Link(Event::Connected { .. }) if !unlock_asked => {
                station
                    .with_link(key, |link| link.unlock_storage(CODE, clock.now()))
                    .unwrap()
                    .unwrap();
                unlock_asked = true;
            }
            LinkEvent::Link(Event::StorageUnlocked) => break,
            LinkEvent::Link(e @ (Event::KeyStretchReady | Event::HandshakeFailed { .. })) => {
                panic!("{e:?}")
            }
            _ => {}
        }
    }
    assert!(unlock_asked);
    assert_eq!(station.with_link(key, |l| l.storage_unlocked()), Some(true));
}

/// A ground station's new remote link with `config` starts pairing with the aircraft
/// listening on `at`.
fn station_pairs(station: &GroundStation, at: SocketAddr, config: Config) -> crate::LinkKey {
    let clock = station.clock();
    let identity = crate::handshake::RemoteIdentity::generate(&mut OsRng);
    let link = crate::Link::remote(config, identity, LINK_ID, &mut OsRng, clock.now()).unwrap();
    let key = station.add(link).unwrap();
    station
        .with_link(key, |link| link.pair(CODE, at, clock.now()))
        .unwrap()
        .unwrap();
    key
}

/// Read the station's events until the link `key` reports `Connected` (10 s at most).
async fn until_connected(station: &mut GroundStation, key: crate::LinkKey) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (from, event) = tokio::time::timeout_at(deadline, station.recv())
            .await
            .expect("the link connects")
            .unwrap();
        if from == key && matches!(event, LinkEvent::Link(Event::Connected { .. })) {
            return;
        }
    }
}

/// A ground station flies one aircraft (a stick command every 2 ms) while it pairs another
/// with [`heavy_stretching`]: the driver runs the pairing's key stretching on a blocking
/// thread, so the first aircraft's stick commands keep arriving throughout. Run inside
/// `handle_datagram`, under the fleet's lock, it held every link's frames (and the lock
/// `send` takes) for the whole stretching.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ground_station_flies_one_aircraft_while_it_pairs_another() {
    let (mut flying, flying_at) = udp_aircraft(&config()).await;
    let (_pairing, pairing_at) = udp_aircraft(&heavy_stretching()).await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut station: GroundStation = GroundStation::spawn(socket).unwrap();
    let first = station_pairs(&station, flying_at, config());
    until_connected(&mut station, first).await;

    let mut sticks = tokio::time::interval(Duration::from_millis(2));
    let start = tokio::time::Instant::now();
    let second = station_pairs(&station, pairing_at, heavy_stretching());
    let mut arrivals = vec![start];
    let mut sent = 0u32;
    let paired = loop {
        tokio::select! {
            _ = sticks.tick() => {
                sent += 1;
                station.send(first, Channel::Control, &sent.to_be_bytes()).unwrap();
            }
            event = flying.recv() => {
                if let Some(LinkEvent::Message { channel: Channel::Control, .. }) = event {
                    arrivals.push(tokio::time::Instant::now());
                }
            }
            event = station.recv() => match event {
                Some((key, LinkEvent::Link(Event::Connected { .. }))) if key == second => {
                    arrivals.push(tokio::time::Instant::now());
                    break start.elapsed();
                }
                Some((_, LinkEvent::Link(e @ (Event::PairingRejected { .. } | Event::HandshakeFailed { .. })))) => {
                    panic!("pairing failed: {e:?}")
                }
                _ => {}
            }
        }
    };
    assert_sticks_kept_arriving("pairing", paired, &arrivals, sent);
}

/// A ground station whose application stopped reading its events (thousands wait, the
/// first aircraft's telemetry) still pairs a new aircraft: the driver takes a key
/// stretching whether or not its event was read. Taken on its event, it waited behind the
/// unread ones until the pairing timed out.
#[tokio::test]
async fn a_ground_station_pairs_while_its_application_reads_no_events() {
    let (flying, flying_at) = udp_aircraft(&config()).await;
    let (_pairing, pairing_at) = udp_aircraft(&config()).await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut station: GroundStation = GroundStation::spawn(socket).unwrap();
    let first = station_pairs(&station, flying_at, config());
    until_connected(&mut station, first).await;
    // More telemetry than the station's event queue holds, never read.
    let telemetry = |station: &GroundStation| {
        station
            .with_link(first, |l| {
                l.stats().channel(Channel::Telemetry).messages_delivered
            })
            .unwrap()
    };
    for i in 0..6000u32 {
        flying
            .send(Channel::Telemetry, Bytes::from(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
        if i % 500 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let full = tokio::time::Instant::now() + Duration::from_secs(5);
    while telemetry(&station) < 4200 && tokio::time::Instant::now() < full {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(telemetry(&station) >= 4200, "{}", telemetry(&station));

    let second = station_pairs(&station, pairing_at, config());
    let paired = tokio::time::Instant::now() + Duration::from_secs(5);
    while station.with_link(second, |l| l.is_connected()) != Some(true) {
        assert!(
            tokio::time::Instant::now() < paired,
            "the second aircraft did not pair while the events waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
