//! The QUIC side: quinn-proto's sans-IO connection, the aircraft as the server writing the
//! transfer on one unidirectional stream, the remote as the client reading it, over the same
//! [`RadioChannel`]s as rotorlink, in the same virtual time.
//!
//! The stepping follows quinn-proto's own test `Pair` (`src/tests/util.rs`): datagrams into
//! `Endpoint::handle`, connection events back and forth, timers through
//! `poll_timeout`/`handle_timeout`, datagrams out of `poll_transmit`. quinn-proto takes a
//! `std::time::Instant`; virtual time is a fixed base instant plus the simulator's
//! [`Timestamp`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use quinn_proto::congestion::{BbrConfig, ControllerFactory, CubicConfig};
use quinn_proto::{
    ClientConfig, Connection, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig,
    Event, ReadError, ServerConfig, StreamEvent, StreamId, TransportConfig, VarInt, WriteError,
};
use rotorlink::{Role, Timestamp};
use rotorlink_sim::storage::CHUNK;
use rotorlink_sim::{addr, RadioChannel};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use rustls::RootCertStore;

use super::grid::{secs, Outcome, Point, RunParams};

/// quinn's congestion controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Congestion {
    /// `BbrConfig::default()`.
    Bbr,
    /// `CubicConfig::default()` (quinn's default).
    Cubic,
}

/// The UDP payload size of every QUIC datagram: rotorlink's default MTU, so both systems put
/// the same number of bytes in a datagram on the radio.
const DATAGRAM: u16 = 1400;
/// Stream, connection and send windows: four times the largest bandwidth-delay product plus
/// queue of the grid (3.75 MB at 100 Mbit/s, 75 ms), so flow control does not limit quinn
/// even while a loss holds up the stream for a round trip or two.
const WINDOW: u32 = 16 << 20;

/// quinn's transport: its defaults, except the congestion controller, datagram size and
/// windows (see [`DATAGRAM`], [`WINDOW`]).
fn transport(cc: Congestion) -> TransportConfig {
    let mut t = TransportConfig::default();
    let factory: Arc<dyn ControllerFactory + Send + Sync> = match cc {
        Congestion::Bbr => Arc::new(BbrConfig::default()),
        Congestion::Cubic => Arc::new(CubicConfig::default()),
    };
    t.congestion_controller_factory(factory)
        // A fixed size: no path MTU discovery, whose probes would grow datagrams past
        // rotorlink's (the radio has no MTU), nor black-hole detection shrinking them under
        // loss.
        .initial_mtu(DATAGRAM)
        .min_mtu(DATAGRAM)
        .mtu_discovery_config(None)
        .stream_receive_window(VarInt::from_u32(WINDOW))
        .receive_window(VarInt::from_u32(WINDOW))
        .send_window(u64::from(WINDOW))
        // One datagram per `poll_transmit`: the radio takes datagrams, not GSO batches.
        .enable_segmentation_offload(false);
    t
}

/// A server configuration with a fresh self-signed certificate, and a client configuration
/// that trusts it.
fn configs(cc: Congestion) -> (ServerConfig, ClientConfig) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("rcgen makes a self-signed certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
    let transport = Arc::new(transport(cc));
    let mut server = ServerConfig::with_single_cert(vec![cert.clone()], key.into())
        .expect("the certificate and key match");
    server.transport_config(transport.clone());
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("a valid certificate");
    let mut client =
        ClientConfig::with_root_certificates(Arc::new(roots)).expect("one trusted root");
    client.transport_config(transport);
    (server, client)
}

/// Virtual time as quinn sees it.
struct Clock(Instant);

impl Clock {
    fn at(&self, t: Timestamp) -> Instant {
        self.0 + t.saturating_since(Timestamp::ZERO)
    }

    /// A deadline as a timestamp, rounded up so that a timer handled then has expired.
    fn stamp(&self, deadline: Instant) -> Timestamp {
        let d = deadline.saturating_duration_since(self.0);
        Timestamp::from_micros(u64::try_from(d.as_nanos().div_ceil(1000)).unwrap_or(u64::MAX))
    }
}

/// One end: its endpoint and its one connection.
struct Peer {
    endpoint: Endpoint,
    conn: Option<(ConnectionHandle, Connection)>,
    /// The other end's address (the radio has none; quinn wants one).
    other: SocketAddr,
    buf: Vec<u8>,
}

impl Peer {
    fn new(endpoint: Endpoint, other: SocketAddr) -> Self {
        Peer {
            endpoint,
            conn: None,
            other,
            buf: Vec::new(),
        }
    }

    fn conn(&mut self) -> Option<&mut Connection> {
        self.conn.as_mut().map(|(_, c)| c)
    }

    /// A datagram from the radio; the endpoint's stateless answers go onto `out`.
    fn receive(&mut self, at: Instant, now: Timestamp, datagram: &[u8], out: &mut RadioChannel) {
        self.buf.clear();
        let event = self.endpoint.handle(
            at,
            self.other,
            None,
            None,
            BytesMut::from(datagram),
            &mut self.buf,
        );
        match event {
            Some(DatagramEvent::NewConnection(incoming)) => {
                match self.endpoint.accept(incoming, at, &mut self.buf, None) {
                    Ok(accepted) => self.conn = Some(accepted),
                    Err(e) => {
                        if let Some(t) = e.response {
                            out.send(now, &self.buf[..t.size]);
                        }
                    }
                }
            }
            Some(DatagramEvent::ConnectionEvent(ch, event)) => {
                if let Some((own, conn)) = &mut self.conn {
                    if *own == ch {
                        conn.handle_event(event);
                    }
                }
            }
            Some(DatagramEvent::Response(t)) => out.send(now, &self.buf[..t.size]),
            None => {}
        }
    }

    /// Run the timer if it is due, exchange endpoint events, and put every datagram the
    /// connection has to send now onto `out`. True if anything was sent.
    fn transmit(&mut self, at: Instant, now: Timestamp, out: &mut RadioChannel) -> bool {
        let Some((ch, conn)) = &mut self.conn else {
            return false;
        };
        if conn.poll_timeout().is_some_and(|deadline| deadline <= at) {
            conn.handle_timeout(at);
        }
        while let Some(event) = conn.poll_endpoint_events() {
            if let Some(back) = self.endpoint.handle_event(*ch, event) {
                conn.handle_event(back);
            }
        }
        let mut sent = false;
        loop {
            self.buf.clear();
            let Some(t) = conn.poll_transmit(at, 1, &mut self.buf) else {
                break;
            };
            out.send(now, &self.buf[..t.size]);
            sent = true;
        }
        sent
    }

    fn next_timeout(&mut self, clock: &Clock) -> Option<Timestamp> {
        self.conn()?.poll_timeout().map(|d| clock.stamp(d))
    }
}

/// The aircraft's application: writes the transfer on one stream under flow control.
struct Sender {
    stream: Option<StreamId>,
    written: u64,
    /// The flow-control contract: write until `Blocked`, then wait for `Writable`.
    writable: bool,
    finished: bool,
}

/// The remote's application: reads the stream.
struct Receiver {
    stream: Option<StreamId>,
}

/// Move `point.transfer` bytes from the aircraft (server) to the remote (client); see the
/// module docs. The transfer's clock starts when the server, its handshake complete, writes
/// the first byte: the handshake is not part of the goodput, as rotorlink's links start
/// with their keys.
pub(crate) fn run(point: &Point, params: RunParams, cc: Congestion) -> Outcome {
    let wall = Instant::now();
    let clock = Clock(Instant::now());
    let (server_config, client_config) = configs(cc);
    let radio = point.channel();
    // Seeded as `Pair` seeds them: the same radio as rotorlink's run of this point.
    let mut downlink = RadioChannel::new(radio.clone(), params.seed.wrapping_mul(2));
    let mut uplink = RadioChannel::new(radio, params.seed.wrapping_mul(2).wrapping_add(1));
    let endpoint_seed = |side: u8| {
        let mut s = [side; 32];
        s[..8].copy_from_slice(&params.seed.to_le_bytes());
        Some(s)
    };
    let endpoint_config = Arc::new(EndpointConfig::default());
    let mut server = Peer::new(
        Endpoint::new(
            endpoint_config.clone(),
            Some(Arc::new(server_config)),
            false,
            endpoint_seed(1),
        ),
        addr(Role::Remote),
    );
    let mut client = Peer::new(
        Endpoint::new(endpoint_config, None, false, endpoint_seed(2)),
        addr(Role::Aircraft),
    );
    let mut now = Timestamp::ZERO;
    client.conn = Some(
        client
            .endpoint
            .connect(
                clock.at(now),
                client_config,
                addr(Role::Aircraft),
                "localhost",
            )
            .expect("a valid client configuration"),
    );

    let chunk = vec![0x42u8; CHUNK];
    let cap = Timestamp::ZERO + params.cap;
    let mut out = Outcome::default();
    let mut sender = Sender {
        stream: None,
        written: 0,
        writable: false,
        finished: false,
    };
    let mut receiver = Receiver { stream: None };
    let mut spins = 0u32;
    'run: loop {
        let at = clock.at(now);
        let mut progressed = false;
        loop {
            let mut moved = false;
            while let Some(d) = downlink.receive(now) {
                client.receive(at, now, &d, &mut uplink);
                moved = true;
            }
            while let Some(d) = uplink.receive(now) {
                server.receive(at, now, &d, &mut downlink);
                moved = true;
            }
            if let Some(conn) = server.conn() {
                if let Err(why) = sender.step(conn, now, point.transfer, &chunk, &mut out) {
                    out.give_up(now, why);
                    break 'run;
                }
            }
            if let Some(conn) = client.conn() {
                if let Err(why) = receiver.step(conn, now, &mut out) {
                    out.give_up(now, why);
                    break 'run;
                }
            }
            moved |= server.transmit(at, now, &mut downlink);
            moved |= client.transmit(at, now, &mut uplink);
            if !moved {
                break;
            }
            progressed = true;
        }
        if out.delivered >= point.transfer {
            out.complete = true;
            break;
        }
        let next = [
            downlink.next_arrival(),
            uplink.next_arrival(),
            server.next_timeout(&clock),
            client.next_timeout(&clock),
        ]
        .into_iter()
        .flatten()
        .min();
        match out.step(next, now, cap, params.cap, progressed, &mut spins) {
            Some(t) => now = t,
            None => break,
        }
    }
    // The handshake is outside the measured interval, but a slow one is worth knowing.
    if out.start > Timestamp::ZERO + Duration::from_secs(1) {
        out.notes
            .push(format!("handshake took {:.2} s", secs(out.start)));
    }
    if let Some(conn) = server.conn() {
        let stats = conn.stats();
        out.datagrams_sent = stats.udp_tx.datagrams;
        out.retransmits = stats.path.lost_packets;
    }
    out.downlink = downlink.stats();
    out.wall = wall.elapsed();
    out
}

impl Sender {
    /// Handle the server connection's events and write what flow control allows.
    fn step(
        &mut self,
        conn: &mut Connection,
        now: Timestamp,
        total: u64,
        chunk: &[u8],
        out: &mut Outcome,
    ) -> Result<(), String> {
        while let Some(event) = conn.poll() {
            match event {
                Event::Connected => {
                    self.stream = conn.streams().open(Dir::Uni);
                    if self.stream.is_none() {
                        return Err("server: no stream credit".into());
                    }
                    self.writable = true;
                    out.start = now;
                }
                Event::Stream(StreamEvent::Writable { .. }) => self.writable = true,
                Event::ConnectionLost { reason } => {
                    return Err(format!(
                        "server: connection lost at {:.3} s: {reason}",
                        secs(now)
                    ))
                }
                _ => {}
            }
        }
        let Some(id) = self.stream else {
            return Ok(());
        };
        let mut stream = conn.send_stream(id);
        while self.writable && self.written < total {
            let n = (total - self.written).min(chunk.len() as u64) as usize;
            match stream.write(&chunk[..n]) {
                Ok(k) => self.written += k as u64,
                Err(WriteError::Blocked) => self.writable = false,
                Err(e) => return Err(format!("server: write failed: {e}")),
            }
        }
        if self.written == total && !self.finished {
            stream
                .finish()
                .map_err(|e| format!("server: finish failed: {e}"))?;
            self.finished = true;
        }
        Ok(())
    }
}

impl Receiver {
    /// Handle the client connection's events and read everything that arrived.
    fn step(
        &mut self,
        conn: &mut Connection,
        now: Timestamp,
        out: &mut Outcome,
    ) -> Result<(), String> {
        let mut readable = false;
        while let Some(event) = conn.poll() {
            match event {
                Event::Stream(StreamEvent::Opened { dir: Dir::Uni }) => {
                    self.stream = self.stream.or_else(|| conn.streams().accept(Dir::Uni));
                    readable = true;
                }
                Event::Stream(StreamEvent::Readable { .. }) => readable = true,
                Event::ConnectionLost { reason } => {
                    return Err(format!(
                        "client: connection lost at {:.3} s: {reason}",
                        secs(now)
                    ))
                }
                _ => {}
            }
        }
        let Some(id) = self.stream.filter(|_| readable) else {
            return Ok(());
        };
        let mut stream = conn.recv_stream(id);
        let mut chunks = match stream.read(true) {
            Ok(chunks) => chunks,
            // Read to the end already: nothing more will come.
            Err(_) => return Ok(()),
        };
        let result = loop {
            match chunks.next(usize::MAX) {
                Ok(Some(chunk)) => out.delivered_at(now, chunk.bytes.len()),
                Ok(None) | Err(ReadError::Blocked) => break Ok(()),
                Err(e) => break Err(format!("client: read failed: {e}")),
            }
        };
        // Hands the read bytes' flow-control credit back to the server; the next
        // `poll_transmit` sends it.
        let _ = chunks.finalize();
        result
    }
}
