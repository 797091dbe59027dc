//! The datagram transport the driver runs over, and its UDP implementation.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::UdpSocket;

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

/// A UDP socket as a [`Transport`].
///
/// [`UdpTransport::connect`] talks to one fixed address (the remote dialling the aircraft);
/// [`UdpTransport::listen`] takes datagrams from anyone and sends where the link says (the
/// aircraft, waiting for its remote).
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    /// The one peer of a connected socket.
    connected: Option<SocketAddr>,
}

impl UdpTransport {
    /// Bind `local` and talk to `peer` only (datagrams from elsewhere are dropped by the
    /// kernel; everything sent goes to `peer`).
    ///
    /// # Errors
    /// If the socket cannot be bound or connected.
    pub async fn connect(local: SocketAddr, peer: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(local).await?;
        socket.connect(peer).await?;
        Ok(UdpTransport {
            connected: Some(socket.peer_addr()?),
            socket,
        })
    }

    /// Bind `local` and take datagrams from anyone.
    ///
    /// # Errors
    /// If the socket cannot be bound.
    pub async fn listen(local: SocketAddr) -> io::Result<Self> {
        Ok(UdpTransport {
            socket: UdpSocket::bind(local).await?,
            connected: None,
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
}

impl Transport for UdpTransport {
    async fn send(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        match self.connected {
            // A connected socket has one peer, and the link's only peer is that one.
            Some(_) => self.socket.send(datagram).await?,
            None => self.socket.send_to(datagram, to).await?,
        };
        Ok(())
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self.connected {
            Some(peer) => Ok((self.socket.recv(buf).await?, peer)),
            None => self.socket.recv_from(buf).await,
        }
    }

    fn recv_batch_size(&self) -> (usize, usize) {
        (RECV_BATCH, 1)
    }

    async fn recv_batch(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> io::Result<usize> {
        loop {
            self.socket.readable().await?;
            match self.try_recv_batch(bufs, meta) {
                Ok(0) => {}
                other => return other,
            }
        }
    }

    fn try_recv_batch(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> io::Result<usize> {
        let mut n = 0;
        for (buf, slot) in bufs.iter_mut().zip(meta.iter_mut()) {
            let got = match self.connected {
                Some(peer) => self.socket.try_recv(buf).map(|len| (len, peer)),
                None => self.socket.try_recv_from(buf),
            };
            match got {
                Ok((len, source)) => *slot = Received::single(len, source),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // What arrived so far is handed over; the error (an ICMP report, which the
                // driver would only count) is dropped.
                Err(_) if n > 0 => break,
                Err(e) => return Err(e),
            }
            n += 1;
        }
        Ok(n)
    }
}

/// Datagrams one `recv_batch` of [`UdpTransport`] takes at most.
const RECV_BATCH: usize = 32;
