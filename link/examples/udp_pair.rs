//! An aircraft and a remote over real UDP on the loopback interface, in one process.
//!
//! ```text
//! cargo run -p rotorlink --features tokio --example udp_pair
//! ```
//!
//! The aircraft listens on 127.0.0.1 (any free port); the remote pairs with the code, flies
//! a few stick commands, unlocks the storage channel with the same code and fetches a
//! file; the aircraft answers telemetry for each command.

use std::error::Error;
use std::time::Duration;

use bytes::Bytes;
use rotorlink::handshake::{AircraftIdentity, MemoryAttemptStore};
use rotorlink::tokio::{Aircraft, LinkEvent, Remote, UdpTransport};
use rotorlink::{Channel, Config, Event};

const LINK_ID: [u8; 16] = *b"example-aircraft";
const CODE: &[u8] = b"246813";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let config = Config::default();

    // The aircraft: provisioned once with the code (it keeps only OPAQUE's password file).
    let identity = AircraftIdentity::provision(LINK_ID, CODE, config.ksf, &mut rand_core::OsRng)?;
    let transport = UdpTransport::listen("127.0.0.1:0".parse()?).await?;
    let address = transport.local_addr()?;
    let attempts = Box::new(MemoryAttemptStore::new()); // persist it on a real aircraft
    let mut aircraft = Aircraft::listen(transport, identity, attempts, config.clone())?;
    let aircraft_task = tokio::spawn(async move {
        while let Some(event) = aircraft.recv().await {
            match event {
                LinkEvent::Message {
                    channel: Channel::Control,
                    data,
                } => {
                    let reply = format!("applied {}", String::from_utf8_lossy(&data));
                    aircraft.send(Channel::Telemetry, reply.into()).await?;
                }
                LinkEvent::Message {
                    channel: Channel::Storage,
                    data,
                } if &data[..] == b"GET /flightlog" => {
                    let log = Bytes::from(vec![0x42; 200_000]);
                    aircraft.send(Channel::Storage, log).await?;
                }
                LinkEvent::Link(Event::Closed { .. }) => break,
                other => println!("aircraft: {other}"),
            }
        }
        Ok::<_, rotorlink::SendError>(aircraft.stats())
    });

    // The remote: pair with the code; `connect` returns once the session is confirmed.
    let transport = UdpTransport::connect("127.0.0.1:0".parse()?, address).await?;
    let mut remote = Remote::connect(transport, address, LINK_ID, CODE, config).await?;
    println!("remote: paired with the aircraft at {address}");
    for throttle in [10, 20, 30] {
        let command = format!("throttle {throttle}%");
        remote.send(Channel::Control, command.into()).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    remote.unlock_storage(CODE)?;
    let mut received = 0;
    while let Some(event) = remote.recv().await {
        match event {
            LinkEvent::Link(Event::StorageUnlocked) => {
                remote
                    .send(Channel::Storage, Bytes::from_static(b"GET /flightlog"))
                    .await?;
            }
            LinkEvent::Message {
                channel: Channel::Storage,
                data,
            } => {
                received = data.len();
                break;
            }
            other => println!("remote: {other}"),
        }
    }
    println!("remote: downloaded a {received}-byte flight log");
    let remote_stats = remote.close().await;
    let aircraft_stats = aircraft_task.await??;
    println!(
        "remote sent {} datagrams, aircraft sent {}",
        remote_stats.datagrams_sent, aircraft_stats.datagrams_sent
    );
    Ok(())
}
