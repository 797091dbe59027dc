//! The tokio ground station: a fleet of remote links on one UDP socket, one driver task,
//! against aircraft on sockets of their own (sans-IO links driven by the test), over real
//! UDP on loopback.
#![cfg(feature = "tokio")]

use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::tokio::{GroundStation, LinkEvent};
use rotorlink::{Channel, Config, Event, Link, Role, Secret};
use tokio::net::UdpSocket;

#[tokio::test]
async fn a_ground_station_flies_several_aircraft_on_one_socket() {
    const N: u32 = 8;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut station: GroundStation = GroundStation::spawn(socket).unwrap();
    let ground = station.local_addr();
    let t0 = station.clock().now();
    // Each aircraft: a socket and an established link, the station's twin of it added.
    let mut aircraft = Vec::new();
    let mut keys = Vec::new();
    for i in 0..N {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let secret = Secret::new([i as u8 + 1; 32]);
        let link = |role, local, peer, to: SocketAddr| -> Link {
            Link::from_secret(
                role,
                Config::default(),
                &secret,
                &[3; 32],
                local,
                peer,
                to,
                &mut ChaCha20Rng::seed_from_u64(u64::from(local)),
                t0,
            )
            .unwrap()
        };
        keys.push(
            station
                .add(link(Role::Remote, 100 + i, 500 + i, addr))
                .unwrap(),
        );
        aircraft.push((socket, link(Role::Aircraft, 500 + i, 100 + i, ground)));
    }
    assert_eq!(station.len(), N as usize);
    // Sticks to every aircraft; each answers with telemetry naming itself.
    for (i, key) in keys.iter().enumerate() {
        station
            .send(*key, Channel::Control, format!("stick {i}").as_bytes())
            .unwrap();
    }
    let mut buf = vec![0u8; 2048];
    for (i, (socket, link)) in aircraft.iter_mut().enumerate() {
        let got = loop {
            let (n, from) =
                tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
                    .await
                    .expect("the stick arrives")
                    .unwrap();
            let now = station.clock().now();
            link.handle_datagram(now, from, &buf[..n]).unwrap();
            let mut got = None;
            while let Some(e) = link.poll_event() {
                if let Event::Message { channel, data } = e {
                    got = Some((channel, data.to_vec()));
                }
            }
            if let Some(got) = got {
                break got;
            }
        };
        assert_eq!(got, (Channel::Control, format!("stick {i}").into_bytes()));
        link.send(Channel::Telemetry, format!("alt {i}").as_bytes())
            .unwrap();
        while let Some(t) = link.poll_transmit(station.clock().now(), &mut buf) {
            socket.send_to(&buf[..t.len], t.destination).await.unwrap();
        }
    }
    let mut telemetry = Vec::new();
    while telemetry.len() < N as usize {
        let (key, event) = tokio::time::timeout(Duration::from_secs(5), station.recv())
            .await
            .expect("telemetry arrives")
            .unwrap();
        if let LinkEvent::Message { channel, data } = event {
            assert_eq!(channel, Channel::Telemetry);
            telemetry.push((key, data.to_vec()));
        }
    }
    telemetry.sort();
    let want: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| (k, format!("alt {i}").into_bytes()))
        .collect();
    assert_eq!(telemetry, want);
    // A datagram with no header is dropped by the fleet and counted.
    let stray = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stray.send_to(&[0u8; 3], ground).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(station.stats().malformed, 1);
    // Closing sends each aircraft its link's close frame.
    let clock = station.clock();
    station.close().await;
    let (socket, link) = &mut aircraft[0];
    let closed = loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
            .await
            .expect("the close arrives")
            .unwrap();
        let _ = link.handle_datagram(clock.now(), from, &buf[..n]);
        if link.is_closed() {
            break true;
        }
    };
    assert!(closed);
}
