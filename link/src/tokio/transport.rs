//! The datagram transport the driver runs over, and its UDP implementation.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::UdpSocket;

/// A datagram transport to one peer: UDP, a radio modem, or a simulated channel.
///
/// The driver calls [`Transport::recv`] inside `tokio::select!`, so `recv` must be
/// cancel-safe: a datagram is either returned or left for the next call, never half read.
/// Datagrams may be lost, duplicated, reordered or corrupted; the link copes.
///
/// ```
/// # use std::{future::Future, io};
/// use rotorlink::tokio::Transport;
///
/// /// A transport that loses everything.
/// struct Void;
///
/// impl Transport for Void {
///     async fn send(&self, _datagram: &[u8]) -> io::Result<()> {
///         Ok(())
///     }
///     async fn recv(&self, _buf: &mut [u8]) -> io::Result<usize> {
///         std::future::pending().await
///     }
/// }
/// ```
pub trait Transport: Send + Sync + 'static {
    /// Send one datagram to the peer.
    ///
    /// # Errors
    /// An I/O error; the driver counts it and carries on (a lost datagram, to the link).
    fn send(&self, datagram: &[u8]) -> impl Future<Output = io::Result<()>> + Send;

    /// Wait for the next datagram from the peer and copy it into `buf`, returning its length
    /// (a datagram longer than `buf` may be truncated; the link then drops it). Cancel-safe.
    ///
    /// # Errors
    /// An I/O error; the driver counts it and carries on.
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send;

    /// The link accepted the datagram the last [`Transport::recv`] returned, so its sender
    /// is the peer. A transport that learns its peer from traffic (a listening UDP socket)
    /// sends to that address from now on; others ignore this. Called by the driver only
    /// for datagrams that authenticated or were valid handshake messages, so forged
    /// datagrams cannot redirect the link.
    fn accept_last(&self) {}
}

impl<T: Transport> Transport for Arc<T> {
    fn send(&self, datagram: &[u8]) -> impl Future<Output = io::Result<()>> + Send {
        (**self).send(datagram)
    }

    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send {
        (**self).recv(buf)
    }

    fn accept_last(&self) {
        (**self).accept_last();
    }
}

/// A UDP socket as a [`Transport`].
///
/// [`UdpTransport::connect`] talks to one fixed address (the remote dialling the aircraft);
/// [`UdpTransport::listen`] learns its peer from the first datagram the link accepts and
/// follows it if it moves (the aircraft, waiting for its remote).
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    /// `None` for a connected socket.
    peers: Option<Mutex<Peers>>,
}

#[derive(Debug, Default)]
struct Peers {
    /// Where the last datagram came from.
    last_from: Option<SocketAddr>,
    /// Where datagrams go: the sender of the last datagram the link accepted.
    peer: Option<SocketAddr>,
}

impl UdpTransport {
    /// Bind `local` and send to `peer` only (datagrams from elsewhere are ignored by the
    /// kernel).
    ///
    /// # Errors
    /// If the socket cannot be bound or connected.
    pub async fn connect(local: SocketAddr, peer: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(local).await?;
        socket.connect(peer).await?;
        Ok(UdpTransport {
            socket,
            peers: None,
        })
    }

    /// Bind `local` and wait for a peer: replies go to whoever sent the last datagram the
    /// link accepted.
    ///
    /// # Errors
    /// If the socket cannot be bound.
    pub async fn listen(local: SocketAddr) -> io::Result<Self> {
        Ok(UdpTransport {
            socket: UdpSocket::bind(local).await?,
            peers: Some(Mutex::new(Peers::default())),
        })
    }

    /// The address the socket is bound to (the port, when bound to port 0).
    ///
    /// # Errors
    /// As [`UdpSocket::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Where the last datagram came from (the peer, for a connected socket).
    pub fn last_sender(&self) -> Option<SocketAddr> {
        match &self.peers {
            None => self.socket.peer_addr().ok(),
            Some(peers) => lock(peers).last_from,
        }
    }

    /// The address datagrams go to, if known yet.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.peers {
            None => self.socket.peer_addr().ok(),
            Some(peers) => lock(peers).peer,
        }
    }
}

fn lock(peers: &Mutex<Peers>) -> std::sync::MutexGuard<'_, Peers> {
    // Two addresses, always consistent: a panic elsewhere cannot leave them torn.
    peers.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Transport for UdpTransport {
    async fn send(&self, datagram: &[u8]) -> io::Result<()> {
        match &self.peers {
            None => self.socket.send(datagram).await?,
            Some(peers) => {
                let peer = lock(peers).peer;
                match peer {
                    Some(to) => self.socket.send_to(datagram, to).await?,
                    // Nobody to talk to yet: the datagram is lost, as on a silent radio.
                    None => 0,
                }
            }
        };
        Ok(())
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.peers {
            None => self.socket.recv(buf).await,
            Some(peers) => {
                let (n, from) = self.socket.recv_from(buf).await?;
                lock(peers).last_from = Some(from);
                Ok(n)
            }
        }
    }

    fn accept_last(&self) {
        if let Some(peers) = &self.peers {
            let mut p = lock(peers);
            if p.last_from.is_some() {
                p.peer = p.last_from;
            }
        }
    }
}
