//! The datagram transport the driver runs over, and its UDP implementation.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
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
}

impl<T: Transport> Transport for Arc<T> {
    fn send(&self, datagram: &[u8], to: SocketAddr) -> impl Future<Output = io::Result<()>> + Send {
        (**self).send(datagram, to)
    }

    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send {
        (**self).recv(buf)
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
}
