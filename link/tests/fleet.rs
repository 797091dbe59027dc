//! A ground station's fleet: many remote links behind one socket, demultiplexed by the
//! receiver index, with one timer heap. Each aircraft is a separate `Link` on its own
//! address; the test plays the socket and the radio.

use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::handshake::limits::MemoryAttemptStore;
use rotorlink::handshake::{AircraftIdentity, Kind, KsfParams, RemoteIdentity};
use rotorlink::{Channel, Config, Error, Event, Fleet, Link, LinkKey, Role, Secret, Timestamp};

const GROUND: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(10, 0, 0, 100),
    47474,
));

fn aircraft_addr(i: u32) -> SocketAddr {
    SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 47474))
}

fn config() -> Config {
    Config {
        ksf: KsfParams::INSECURE_FAST,
        ..Config::default()
    }
}

/// `n` established pairs: the fleet's remotes, and the aircraft (index `i`: aircraft `i`).
fn established(n: u32) -> (Fleet, Vec<Link>, Vec<LinkKey>) {
    let mut fleet = Fleet::new();
    let mut aircraft = Vec::new();
    let mut keys = Vec::new();
    for i in 0..n {
        let secret = Secret::new([i as u8; 32]);
        let rc = Link::from_secret(
            Role::Remote,
            config(),
            &secret,
            &[7; 32],
            100 + i,
            900 + i,
            aircraft_addr(i),
            &mut ChaCha20Rng::seed_from_u64(u64::from(i)),
            Timestamp::ZERO,
        )
        .unwrap();
        let air = Link::from_secret(
            Role::Aircraft,
            config(),
            &secret,
            &[7; 32],
            900 + i,
            100 + i,
            GROUND,
            &mut ChaCha20Rng::seed_from_u64(1000 + u64::from(i)),
            Timestamp::ZERO,
        )
        .unwrap();
        keys.push(fleet.insert(rc).unwrap());
        aircraft.push(air);
    }
    (fleet, aircraft, keys)
}

/// Move every datagram both ways until nothing is left: the fleet's to the aircraft they
/// are addressed to, each aircraft's to the fleet.
fn exchange(fleet: &mut Fleet, aircraft: &mut [Link], now: Timestamp) {
    let mut buf = vec![0u8; 2048];
    loop {
        let mut moved = false;
        while let Some((_, t)) = fleet.poll_transmit(now, &mut buf) {
            let i = (0..aircraft.len())
                .find(|&i| aircraft_addr(i as u32) == t.destination)
                .expect("addressed to an aircraft");
            aircraft[i]
                .handle_datagram(now, GROUND, &buf[..t.len])
                .unwrap();
            moved = true;
        }
        for (i, air) in aircraft.iter_mut().enumerate() {
            while let Some(t) = air.poll_transmit(now, &mut buf) {
                assert_eq!(t.destination, GROUND);
                fleet
                    .handle_datagram(now, aircraft_addr(i as u32), &buf[..t.len])
                    .unwrap();
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
}

fn messages_of(link: &mut Link) -> Vec<(Channel, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(e) = link.poll_event() {
        if let Event::Message { channel, data } = e {
            out.push((channel, data.to_vec()));
        }
    }
    out
}

#[test]
fn each_aircraft_talks_to_its_own_link_of_the_fleet() {
    let (mut fleet, mut aircraft, keys) = established(40);
    assert_eq!(fleet.len(), 40);
    let t = Timestamp::ZERO + Duration::from_millis(10);
    for (i, key) in keys.iter().enumerate() {
        fleet
            .with_link(*key, |link| {
                link.send(Channel::Control, format!("stick {i}").as_bytes())
            })
            .unwrap()
            .unwrap();
    }
    for (i, air) in aircraft.iter_mut().enumerate() {
        air.send(Channel::Telemetry, format!("alt {i}").as_bytes())
            .unwrap();
    }
    exchange(&mut fleet, &mut aircraft, t);
    for (i, air) in aircraft.iter_mut().enumerate() {
        assert_eq!(
            messages_of(air),
            [(Channel::Control, format!("stick {i}").into_bytes())]
        );
    }
    let mut got = Vec::new();
    while let Some((key, event)) = fleet.poll_event() {
        if let Event::Message { channel, data } = event {
            got.push((key, channel, data.to_vec()));
        }
    }
    got.sort();
    let want: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| (k, Channel::Telemetry, format!("alt {i}").into_bytes()))
        .collect();
    assert_eq!(got, want);
    let s = fleet.stats();
    assert_eq!((s.unknown_receiver, s.malformed), (0, 0));
    assert!(s.datagrams_received >= 40);
}

#[test]
fn datagrams_for_no_link_are_dropped_after_the_header_and_change_nothing() {
    let (mut fleet, mut aircraft, keys) = established(3);
    let t = Timestamp::ZERO;
    aircraft[1].send(Channel::Telemetry, b"alt 1").unwrap();
    let mut buf = vec![0u8; 2048];
    let frame = {
        let tx = aircraft[1].poll_transmit(t, &mut buf).unwrap();
        buf[..tx.len].to_vec()
    };
    // The same frame to an index no link has (bytes 6..10 of the header).
    let mut stray = frame.clone();
    stray[6..10].copy_from_slice(&4242u32.to_be_bytes());
    let before: Vec<_> = keys
        .iter()
        .map(|&k| fleet.get(k).unwrap().stats().clone())
        .collect();
    assert_eq!(
        fleet.handle_datagram(t, aircraft_addr(1), &stray),
        Err(Error::UnknownReceiver)
    );
    assert!(matches!(
        fleet.handle_datagram(t, aircraft_addr(1), &frame[..5]),
        Err(Error::Malformed(_))
    ));
    let after: Vec<_> = keys
        .iter()
        .map(|&k| fleet.get(k).unwrap().stats().clone())
        .collect();
    assert_eq!(before, after, "no link saw them");
    assert!(fleet.poll_event().is_none());
    let s = fleet.stats();
    assert_eq!(
        (s.datagrams_received, s.unknown_receiver, s.malformed),
        (2, 1, 1)
    );
    // A forged frame for a real link is that link's to drop and count.
    let mut forged = frame.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(
        fleet.handle_datagram(t, aircraft_addr(1), &forged),
        Err(Error::DecryptFailed)
    );
    assert_eq!(fleet.get(keys[1]).unwrap().stats().dropped_auth, 1);
    // The genuine one still arrives, at link 1.
    assert_eq!(
        fleet.handle_datagram(t, aircraft_addr(1), &frame),
        Ok(keys[1])
    );
    match fleet.poll_event() {
        Some((k, Event::Message { channel, data })) => {
            assert_eq!(
                (k, channel, &data[..]),
                (keys[1], Channel::Telemetry, &b"alt 1"[..])
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_timer_heap_wakes_each_link_when_its_own_deadline_comes() {
    let (mut fleet, mut aircraft, keys) = established(5);
    let mut now = Timestamp::ZERO;
    exchange(&mut fleet, &mut aircraft, now);
    // The fleet's wake-up time is the earliest of its links'.
    let earliest = keys
        .iter()
        .filter_map(|&k| fleet.get(k).unwrap().poll_timeout())
        .min();
    assert_eq!(fleet.poll_timeout(), earliest);
    assert!(earliest.is_some());
    // Aircraft 3 goes silent; the others keep answering. Driven by the fleet's deadlines
    // alone, only link 3 is lost.
    let end = Timestamp::ZERO + Duration::from_secs(5);
    let mut lost = Vec::new();
    let mut wakeups = 0;
    while let Some(at) = fleet.poll_timeout() {
        if at > end {
            break;
        }
        now = now.max(at);
        fleet.handle_timeout(now);
        wakeups += 1;
        let mut buf = vec![0u8; 2048];
        while let Some((_, t)) = fleet.poll_transmit(now, &mut buf) {
            let i = (0..5).find(|&i| aircraft_addr(i) == t.destination).unwrap() as usize;
            if i != 3 {
                aircraft[i]
                    .handle_datagram(now, GROUND, &buf[..t.len])
                    .unwrap();
            }
        }
        for (i, air) in aircraft.iter_mut().enumerate() {
            air.handle_timeout(now);
            while let Some(t) = air.poll_transmit(now, &mut buf) {
                if i != 3 {
                    fleet
                        .handle_datagram(now, aircraft_addr(i as u32), &buf[..t.len])
                        .unwrap();
                }
            }
        }
        while let Some((key, event)) = fleet.poll_event() {
            if event == Event::LinkLost {
                lost.push(key);
            }
        }
        assert!(wakeups < 10_000, "the fleet keeps waking at {now:?}");
    }
    assert_eq!(lost, [keys[3]]);
    assert!(fleet.get(keys[0]).unwrap().is_connected());
}

#[test]
fn a_remote_of_the_fleet_pairs_with_a_real_handshake() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let identity = AircraftIdentity::provision(
        *b"RL-FLEET-TEST-01",
        b"246813",
        KsfParams::INSECURE_FAST,
        &mut rng,
    )
    .unwrap();
    let mut air = Link::aircraft(
        config(),
        identity,
        Box::new(MemoryAttemptStore::new()),
        &mut rng,
        Timestamp::ZERO,
    )
    .unwrap();
    air.open_pairing_window(Duration::from_secs(60), Timestamp::ZERO)
        .unwrap();
    let rc = Link::remote(
        config(),
        RemoteIdentity::generate(&mut rng),
        *b"RL-FLEET-TEST-01",
        &mut rng,
        Timestamp::ZERO,
    )
    .unwrap();
    let mut fleet = Fleet::new();
    let key = fleet.insert(rc).unwrap();
    fleet
        .with_link(key, |link| {
            link.pair(b"246813", aircraft_addr(0), Timestamp::ZERO)
        })
        .unwrap()
        .unwrap();
    let mut aircraft = vec![air];
    let mut now = Timestamp::ZERO;
    for _ in 0..100 {
        exchange(&mut fleet, &mut aircraft, now);
        if fleet.get(key).unwrap().is_connected() {
            break;
        }
        now = now + Duration::from_millis(10);
        fleet.handle_timeout(now);
        aircraft[0].handle_timeout(now);
    }
    let mut events = Vec::new();
    while let Some((k, e)) = fleet.poll_event() {
        assert_eq!(k, key);
        events.push(e);
    }
    assert!(
        events.contains(&Event::Connected { kind: Kind::Pair }),
        "{events:?}"
    );
    assert!(aircraft[0].is_connected());
}

#[test]
fn a_link_whose_index_is_taken_is_handed_back_and_a_removed_one_is_forgotten() {
    let (mut fleet, mut aircraft, keys) = established(2);
    let taken = fleet.get(keys[0]).unwrap().local_index();
    let twin = Link::from_secret(
        Role::Remote,
        config(),
        &Secret::new([9; 32]),
        &[7; 32],
        taken,
        5,
        aircraft_addr(9),
        &mut ChaCha20Rng::seed_from_u64(9),
        Timestamp::ZERO,
    )
    .unwrap();
    let back = fleet.insert(twin).unwrap_err();
    assert_eq!(back.local_index(), taken);
    assert_eq!(fleet.len(), 2);
    let index_1 = fleet.get(keys[1]).unwrap().local_index();
    let removed = fleet.remove(keys[1]).unwrap();
    assert_eq!(removed.local_index(), index_1);
    assert!(fleet.get(keys[1]).is_none() && fleet.with_link(keys[1], |_| ()).is_none());
    // Its queued work and deadline are skipped, not run on another link.
    let mut buf = vec![0u8; 2048];
    while let Some((k, _)) = fleet.poll_transmit(Timestamp::ZERO, &mut buf) {
        assert_eq!(k, keys[0]);
    }
    while let Some((k, _)) = fleet.poll_event() {
        assert_eq!(k, keys[0]);
    }
    assert_eq!(
        fleet.poll_timeout(),
        fleet.get(keys[0]).unwrap().poll_timeout()
    );
    // Its index is free again: its aircraft's next frame is nobody's.
    aircraft[1].send(Channel::Telemetry, b"alt").unwrap();
    let tx = aircraft[1]
        .poll_transmit(Timestamp::ZERO, &mut buf)
        .unwrap();
    assert_eq!(
        fleet.handle_datagram(Timestamp::ZERO, aircraft_addr(1), &buf[..tx.len]),
        Err(Error::UnknownReceiver)
    );
    assert_eq!(fleet.stats().unknown_receiver, 1);
}
