//! The datagram transport the driver runs over, and its UDP implementation.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::vec;
use std::vec::Vec;

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::driver::MAX_COALESCED;

/// A datagram transport: UDP, a radio modem, or a simulated channel.
///
/// Every datagram comes with its source address and goes to a destination the link
/// chooses: the link decides who its peer is (only authenticated frames and completed
/// handshakes move it), so a transport never follows senders on its own. A transport
/// without addresses (a point-to-point radio) may use one fixed address per end.
///
/// The driver calls [`Transport::recv`] inside `tokio::select!`, so `recv` must be
/// cancel-safe: a datagram is either returned or left for the next call, never half read.
/// Datagrams may be lost, duplicated, reordered or corrupted; the link copes.
///
/// `send` and `recv` are all a transport needs. A transport that can move several
/// datagrams per system call says so with the batch methods, whose defaults fall back on
/// `send` and `recv`: [`Transport::recv_batch`] and [`Transport::try_recv_batch`] (the
/// driver takes everything already waiting, up to a bound, before it answers, so one ack
/// covers the batch), [`Transport::send_batch`] (the datagrams of one round to one peer,
/// for a segmentation offload).
///
/// ```
/// # use std::{future::Future, io, net::SocketAddr};
/// use rotorlink::tokio::Transport;
///
/// /// A transport that loses everything.
/// struct Void;
///
/// impl Transport for Void {
///     async fn send(&self, _datagram: &[u8], _to: SocketAddr) -> io::Result<()> {
///         Ok(())
///     }
///     async fn recv(&self, _buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
///         std::future::pending().await
///     }
/// }
/// ```
pub trait Transport: Send + Sync + 'static {
    /// Send one datagram to `to`.
    ///
    /// # Errors
    /// An I/O error; the driver counts it and carries on (a lost datagram, to the link).
    fn send(&self, datagram: &[u8], to: SocketAddr) -> impl Future<Output = io::Result<()>> + Send;

    /// Wait for the next datagram and copy it into `buf`, returning its length (a datagram
    /// longer than `buf` may be truncated; the link then drops it) and where it came from.
    /// Cancel-safe.
    ///
    /// # Errors
    /// An I/O error; the driver counts it and carries on.
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;

    /// The receive buffers the driver hands [`Transport::recv_batch`]: `(buffers,
    /// segments)`, how many buffers one call may fill and how many datagrams one buffer may
    /// hold (a coalesced receive, as Linux's UDP GRO). The default, `(1, 1)`, is one
    /// datagram per call.
    fn recv_batch_size(&self) -> (usize, usize) {
        (1, 1)
    }

    /// Wait until datagrams arrive, and put them in `bufs` (one or more datagrams per
    /// buffer, see [`Received`]), describing buffer `i` in `meta[i]`; returns how many
    /// buffers were filled (at least one, at most `bufs.len()` and `meta.len()`).
    /// Cancel-safe, as [`Transport::recv`]. The default calls `recv` once.
    ///
    /// # Errors
    /// An I/O error; the driver counts it and carries on.
    fn recv_batch(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> impl Future<Output = io::Result<usize>> + Send {
        async move {
            let (Some(buf), Some(slot)) = (bufs.first_mut(), meta.first_mut()) else {
                return Ok(0);
            };
            let (len, source) = self.recv(buf).await?;
            *slot = Received::single(len, source);
            Ok(1)
        }
    }

    /// As [`Transport::recv_batch`], but without waiting: `Ok(0)` when nothing is there.
    /// The default always returns `Ok(0)` (the driver then takes one receive per wake-up).
    ///
    /// # Errors
    /// An I/O error; the driver stops draining and carries on.
    fn try_recv_batch(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> io::Result<usize> {
        let _ = (bufs, meta);
        Ok(0)
    }

    /// Send `datagrams` to `to`: datagrams of `segment` bytes each, back to back, the last
    /// one possibly shorter. The default calls `send` for each.
    ///
    /// # Errors
    /// An I/O error; datagrams not sent are lost, to the link.
    fn send_batch(
        &self,
        datagrams: &[u8],
        segment: usize,
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<()>> + Send {
        async move {
            for datagram in datagrams.chunks(segment.max(1)) {
                self.send(datagram, to).await?;
            }
            Ok(())
        }
    }
}

/// What one buffer of [`Transport::recv_batch`] holds: `len` bytes from `source`, one
/// datagram every `stride` bytes (the last one may be shorter); `stride == len` for a
/// single datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes in the buffer.
    pub len: usize,
    /// Bytes per datagram (the last one may be shorter).
    pub stride: usize,
    /// Where the datagrams came from.
    pub source: SocketAddr,
}

impl Received {
    /// One datagram of `len` bytes from `source`.
    pub fn single(len: usize, source: SocketAddr) -> Self {
        Received {
            len,
            stride: len,
            source,
        }
    }

    /// The datagrams in `buf` (the buffer this describes), in order.
    pub fn datagrams<'a>(&self, buf: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        buf[..self.len.min(buf.len())].chunks(self.stride.max(1))
    }
}

impl Default for Received {
    /// Nothing, from nowhere (`0.0.0.0:0`).
    fn default() -> Self {
        Received::single(0, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
    }
}

impl<T: Transport> Transport for Arc<T> {
    fn send(&self, datagram: &[u8], to: SocketAddr) -> impl Future<Output = io::Result<()>> + Send {
        (**self).send(datagram, to)
    }

    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send {
        (**self).recv(buf)
    }

    fn recv_batch_size(&self) -> (usize, usize) {
        (**self).recv_batch_size()
    }

    fn recv_batch(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> impl Future<Output = io::Result<usize>> + Send {
        (**self).recv_batch(bufs, meta)
    }

    fn try_recv_batch(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> io::Result<usize> {
        (**self).try_recv_batch(bufs, meta)
    }

    fn send_batch(
        &self,
        datagrams: &[u8],
        segment: usize,
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<()>> + Send {
        (**self).send_batch(datagrams, segment, to)
    }
}

/// A UDP socket as a [`Transport`], batched with [`quinn_udp`] (the socket layer of the
/// quinn QUIC stack): on Linux one system call receives up to 32 buffers (`recvmmsg`), a
/// buffer may hold up to 64 datagrams of one size coalesced by the kernel (UDP GRO), and
/// one call sends up to 64 datagrams of one size (UDP GSO, segmented by the kernel or the
/// network card); other systems get what they support, down to a datagram per call. The
/// socket buffers are asked for [`UdpTransport::SOCKET_BUFFER`] bytes each way (what the
/// kernel granted: [`UdpTransport::socket_buffers`]). As in quinn, the socket sets
/// don't-fragment where it can: a datagram larger than the path's MTU is not sent (keep
/// [`crate::Config::mtu`] under it, as the default is).
///
/// [`UdpTransport::connect`] talks to one fixed address (the remote dialling the aircraft);
/// [`UdpTransport::listen`] takes datagrams from anyone and sends where the link says (the
/// aircraft, waiting for its remote).
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    state: UdpSocketState,
    /// The one peer of a connected socket.
    connected: Option<SocketAddr>,
    /// For [`Transport::recv`], which returns one datagram: the last coalesced receive and
    /// the datagrams of it not returned yet.
    single: Mutex<Coalesced>,
}

/// A coalesced receive, handed out a datagram at a time.
#[derive(Debug)]
struct Coalesced {
    buf: Vec<u8>,
    /// `buf[at..len]` is still to be handed out, `stride` bytes per datagram.
    at: usize,
    len: usize,
    stride: usize,
    source: SocketAddr,
}

/// The most bytes one segmented send carries: an IPv4 packet's 65 535 bytes less its
/// 20-byte IP and 8-byte UDP headers (Linux refuses a larger one with `EMSGSIZE`).
const MAX_GSO_BYTES: usize = 65_507;

/// Buffers one receive fills at most (quinn-udp's own batch, 32 on Linux).
const RECV_BUFFERS: usize = quinn_udp::BATCH_SIZE;

impl UdpTransport {
    /// The size asked for each socket buffer, receive and send: 4 MiB, enough for a few
    /// milliseconds at several Gbit/s, so a burst the driver has not yet taken is not
    /// dropped by the kernel (the default, 208 KiB on Linux, holds about 64 full
    /// datagrams). The kernel may grant less (`net.core.rmem_max`, `net.core.wmem_max`).
    pub const SOCKET_BUFFER: usize = 4 << 20;

    /// Bind `local` and talk to `peer` only (datagrams from elsewhere are dropped by the
    /// kernel; everything sent goes to `peer`).
    ///
    /// # Errors
    /// If the socket cannot be bound or connected, or quinn-udp cannot set it up.
    pub async fn connect(local: SocketAddr, peer: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(local).await?;
        socket.connect(peer).await?;
        let peer = socket.peer_addr()?;
        UdpTransport::new(socket, Some(peer))
    }

    /// Bind `local` and take datagrams from anyone.
    ///
    /// # Errors
    /// If the socket cannot be bound, or quinn-udp cannot set it up.
    pub async fn listen(local: SocketAddr) -> io::Result<Self> {
        UdpTransport::new(UdpSocket::bind(local).await?, None)
    }

    /// Take datagrams from anyone on a socket bound already (as [`UdpTransport::listen`]
    /// does), and send where the link says.
    ///
    /// # Errors
    /// If quinn-udp cannot set the socket up, or its address cannot be read.
    pub fn from_socket(socket: UdpSocket) -> io::Result<Self> {
        UdpTransport::new(socket, None)
    }

    fn new(socket: UdpSocket, connected: Option<SocketAddr>) -> io::Result<Self> {
        let state = UdpSocketState::new((&socket).into())?;
        // Best effort: a kernel that refuses keeps its default, which still works.
        let _ = state.set_recv_buffer_size((&socket).into(), Self::SOCKET_BUFFER);
        let _ = state.set_send_buffer_size((&socket).into(), Self::SOCKET_BUFFER);
        let source = socket.local_addr()?;
        Ok(UdpTransport {
            socket,
            state,
            connected,
            single: Mutex::new(Coalesced {
                buf: Vec::new(),
                at: 0,
                len: 0,
                stride: 1,
                source,
            }),
        })
    }

    /// The address the socket is bound to (the port, when bound to port 0).
    ///
    /// # Errors
    /// As [`UdpSocket::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The peer of a connected socket.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.connected
    }

    /// The socket buffers the kernel granted, `(receive, send)` in bytes, as it reports
    /// them (Linux reports twice the size it accounts for payload).
    ///
    /// # Errors
    /// If the socket options cannot be read.
    pub fn socket_buffers(&self) -> io::Result<(usize, usize)> {
        Ok((
            self.state.recv_buffer_size((&self.socket).into())?,
            self.state.send_buffer_size((&self.socket).into())?,
        ))
    }

    /// How many datagrams one send may carry (1 without segmentation offload).
    pub fn max_send_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// One receive, without waiting; `WouldBlock` when nothing is there.
    fn recv_now(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [Received]) -> io::Result<usize> {
        let n = bufs.len().min(meta.len()).min(RECV_BUFFERS);
        let mut got = [RecvMeta::default(); RECV_BUFFERS];
        let k = self.socket.try_io(Interest::READABLE, || {
            self.state
                .recv((&self.socket).into(), &mut bufs[..n], &mut got[..n])
        })?;
        for (slot, m) in meta.iter_mut().zip(&got[..k]) {
            *slot = Received {
                len: m.len,
                stride: if m.stride == 0 { m.len } else { m.stride },
                // A connected socket's only peer, as `connect` resolved it.
                source: self.connected.unwrap_or(m.addr),
            };
        }
        Ok(k)
    }

    /// One transmit, waiting while the socket buffer is full.
    async fn transmit(&self, contents: &[u8], segment: usize, to: SocketAddr) -> io::Result<()> {
        let transmit = Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size: (contents.len() > segment).then_some(segment),
            src_ip: None,
        };
        loop {
            self.socket.writable().await?;
            match self.socket.try_io(Interest::WRITABLE, || {
                self.state.try_send((&self.socket).into(), &transmit)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
        }
    }
}

impl Transport for UdpTransport {
    async fn send(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        // A connected socket has one peer, and the link's only peer is that one.
        let to = self.connected.unwrap_or(to);
        self.transmit(datagram, datagram.len(), to).await
    }

    /// One datagram: a coalesced receive is kept and handed out a datagram per call.
    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            {
                let mut single = self.single.lock().unwrap_or_else(PoisonError::into_inner);
                if single.at >= single.len {
                    if single.buf.is_empty() {
                        single.buf = vec![0; MAX_COALESCED];
                    }
                    let c = &mut *single;
                    let mut meta = [Received::default()];
                    match self.recv_now(&mut [IoSliceMut::new(&mut c.buf)], &mut meta) {
                        Ok(_) => {
                            let [m] = meta;
                            (c.at, c.len, c.stride, c.source) =
                                (0, m.len, m.stride.max(1), m.source);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                if single.at < single.len {
                    let end = single.len.min(single.at + single.stride);
                    let datagram = &single.buf[single.at..end];
                    let n = datagram.len().min(buf.len());
                    buf[..n].copy_from_slice(&datagram[..n]);
                    single.at = end;
                    return Ok((n, single.source));
                }
            }
            self.socket.readable().await?;
        }
    }

    fn recv_batch_size(&self) -> (usize, usize) {
        (RECV_BUFFERS, self.state.gro_segments())
    }

    async fn recv_batch(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> io::Result<usize> {
        loop {
            match self.try_recv_batch(bufs, meta) {
                Ok(0) => self.socket.readable().await?,
                other => return other,
            }
        }
    }

    fn try_recv_batch(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> io::Result<usize> {
        let (Some(first), Some(slot)) = (bufs.first_mut(), meta.first_mut()) else {
            return Ok(0);
        };
        // What `recv` kept of a coalesced receive goes first (only when both are used).
        {
            let mut single = self.single.lock().unwrap_or_else(PoisonError::into_inner);
            if single.at < single.len {
                let rest = &single.buf[single.at..single.len];
                let n = rest.len().min(first.len());
                first[..n].copy_from_slice(&rest[..n]);
                *slot = Received {
                    len: n,
                    stride: single.stride,
                    source: single.source,
                };
                single.at = single.len;
                return Ok(1);
            }
        }
        match self.recv_now(bufs, meta) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            other => other,
        }
    }

    /// Up to [`UdpTransport::max_send_segments`] datagrams per system call.
    async fn send_batch(&self, datagrams: &[u8], segment: usize, to: SocketAddr) -> io::Result<()> {
        let to = self.connected.unwrap_or(to);
        let segment = segment.max(1);
        let mut rest = datagrams;
        let mut result = Ok(());
        while !rest.is_empty() {
            // One send is one IP packet to the kernel: 64 KiB at most, headers included.
            let max = self
                .state
                .max_gso_segments()
                .min(MAX_GSO_BYTES / segment)
                .max(1);
            let (now, later) = rest.split_at(rest.len().min(segment * max));
            let mut sent = self.transmit(now, segment, to).await;
            if sent.is_err() && now.len() > segment && self.state.max_gso_segments() == 1 {
                // The offload failed, and quinn-udp stopped using it: one by one.
                sent = Ok(());
                for datagram in now.chunks(segment) {
                    sent = sent.and(self.transmit(datagram, segment, to).await);
                }
            }
            // A failed send loses its datagrams, not the ones after it.
            result = result.and(sent);
            rest = later;
        }
        result
    }
}
