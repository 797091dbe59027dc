//! Running the link over a transport of your own: here a lossy in-process "radio modem"
//! made of two tokio channels, which drops every tenth datagram.
//!
//! ```text
//! cargo run -p rotorlink --features tokio --example custom_transport
//! ```
//!
//! A [`Transport`] sends one datagram to an address and receives the next with its source;
//! `recv` must be cancel-safe (the driver waits on it inside `tokio::select!`). A radio
//! without addresses gives each end one fixed address: the link only compares them. Anything that carries datagrams fits:
//! a serial radio modem, a raw 802.11 injection socket, a QUIC datagram extension.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rotorlink::handshake::{AircraftIdentity, MemoryAttemptStore};
use rotorlink::tokio::{Aircraft, LinkEvent, Remote, Transport};
use rotorlink::{Channel, Config};
use tokio::sync::{mpsc, Mutex};

/// The modem has no addresses: each end is given a fixed one.
const AIRCRAFT: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(192, 0, 2, 1),
    1,
));
const REMOTE: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(192, 0, 2, 2),
    1,
));

/// One end of the modem pair.
struct Modem {
    /// The other end's address: every datagram received comes from it.
    other: SocketAddr,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    rx: Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    sent: AtomicU64,
}

impl Transport for Modem {
    async fn send(&self, datagram: &[u8], _to: SocketAddr) -> io::Result<()> {
        // Every tenth datagram is lost on the air; the link recovers.
        if self.sent.fetch_add(1, Ordering::Relaxed) % 10 != 9 {
            let _ = self.tx.send(datagram.to_vec());
        }
        Ok(())
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        // `UnboundedReceiver::recv` is cancel-safe, so this is too.
        let datagram = self.rx.lock().await.recv().await;
        let datagram = datagram.ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok((n, self.other))
    }
}

fn modems() -> (Modem, Modem) {
    let (a_tx, a_rx) = mpsc::unbounded_channel();
    let (b_tx, b_rx) = mpsc::unbounded_channel();
    let end = |other, tx, rx| Modem {
        other,
        tx,
        rx: Mutex::new(rx),
        sent: AtomicU64::new(0),
    };
    (end(REMOTE, b_tx, a_rx), end(AIRCRAFT, a_tx, b_rx))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let link_id = *b"modem-aircraft-1";
    let code = b"246813";
    let config = Config::default();
    let (aircraft_modem, remote_modem) = modems();

    let identity = AircraftIdentity::provision(link_id, code, config.ksf, &mut rand_core::OsRng)?;
    let attempts = Box::new(MemoryAttemptStore::new());
    let mut aircraft = Aircraft::listen(aircraft_modem, identity, attempts, config.clone())?;
    let remote = Remote::connect(remote_modem, AIRCRAFT, link_id, code, config).await?;

    for i in 0..20u8 {
        remote.send(Channel::Control, Bytes::from(vec![i])).await?;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut got = 0;
    while let Ok(Some(event)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), aircraft.recv()).await
    {
        if let LinkEvent::Message {
            channel: Channel::Control,
            ..
        } = event
        {
            got += 1;
        }
    }
    // Control is latest-wins and unreliable: a lost command is superseded by the next.
    println!("the aircraft got {got} of 20 stick commands over a modem losing 10 %");
    let stats = remote.close().await;
    println!("the remote sent {} datagrams", stats.datagrams_sent);
    Ok(())
}
