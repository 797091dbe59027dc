//! Video forward error correction end to end, through the public `Link` API: an aircraft
//! sends frames to a remote over a path that loses datagrams; the frames come out whole,
//! byte-exact, thanks to parity fragments, and the counters say so; a replayed or forged
//! parity datagram changes nothing.

use std::net::SocketAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::{Channel, Config, Event, Link, Role, Secret, Timestamp};

const AIRCRAFT: ([u8; 4], u16) = ([10, 0, 0, 1], 47474);
const REMOTE: ([u8; 4], u16) = ([10, 0, 0, 2], 47475);

fn pair(config: &Config) -> (Link, Link) {
    let secret = [7u8; 32];
    let hash = [9u8; 32];
    let make = |role, local, peer, addr: ([u8; 4], u16), seed| {
        Link::from_secret(
            role,
            config.clone(),
            &Secret::new(secret),
            &hash,
            local,
            peer,
            SocketAddr::from(addr),
            &mut ChaCha20Rng::seed_from_u64(seed),
            Timestamp::ZERO,
        )
        .unwrap()
    };
    (
        make(Role::Aircraft, 1, 2, REMOTE, 1),
        make(Role::Remote, 2, 1, AIRCRAFT, 2),
    )
}

fn frame(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|p| (p * 13 + i * 101) as u8).collect()
}

/// Send `frames` frames of `len` bytes, one every 33 ms, dropping the aircraft's datagrams
/// for which `lose(n)` is true; returns the frames delivered and the lost ids reported.
fn fly(config: &Config, frames: usize, len: usize, lose: impl Fn(u64) -> bool) -> Flight {
    let (mut aircraft, mut remote) = pair(config);
    let mut now = Timestamp::ZERO;
    let mut buf = vec![0u8; 2048];
    let mut sent_datagrams = 0u64;
    let mut flight = Flight::default();
    for step in 0..frames * 33 + 500 {
        if step % 33 == 0 && step / 33 < frames {
            aircraft
                .send(Channel::Video, &frame(step / 33, len))
                .unwrap();
        }
        aircraft.handle_timeout(now);
        remote.handle_timeout(now);
        while let Some(t) = aircraft.poll_transmit(now, &mut buf) {
            sent_datagrams += 1;
            if !lose(sent_datagrams) {
                let _ = remote.handle_datagram(now, SocketAddr::from(AIRCRAFT), &buf[..t.len]);
            }
        }
        while let Some(t) = remote.poll_transmit(now, &mut buf) {
            let _ = aircraft.handle_datagram(now, SocketAddr::from(REMOTE), &buf[..t.len]);
        }
        while let Some(event) = remote.poll_event() {
            match event {
                Event::Message {
                    channel: Channel::Video,
                    data,
                } => flight.delivered.push(data.to_vec()),
                Event::VideoLost { message_id } => flight.lost.push(message_id),
                _ => {}
            }
        }
        while aircraft.poll_event().is_some() {}
        now = now + std::time::Duration::from_millis(1);
    }
    flight.parity_sent = aircraft.stats().video_parity_sent;
    flight.recovered = remote.stats().video_recovered;
    flight.fragments_recovered = remote.stats().video_fragments_recovered;
    flight.bad = remote.stats().dropped_bad_video;
    flight
}

#[derive(Default)]
struct Flight {
    delivered: Vec<Vec<u8>>,
    lost: Vec<u32>,
    parity_sent: u64,
    recovered: u64,
    fragments_recovered: u64,
    bad: u64,
}

#[test]
fn lost_fragments_are_recovered_from_parity_byte_exact() {
    // 60 KB frames: 45 fragments at the default MTU, so one parity fragment each even
    // before any loss is measured. Every 97th datagram of the aircraft is lost.
    let config = Config::default();
    let flight = fly(&config, 60, 60_000, |n| n % 97 == 0);
    assert!(flight.parity_sent >= 60, "{}", flight.parity_sent);
    assert!(flight.recovered > 0 && flight.fragments_recovered >= flight.recovered);
    assert_eq!(flight.bad, 0);
    assert!(flight.lost.is_empty(), "lost {:?}", flight.lost);
    assert_eq!(flight.delivered.len(), 60);
    for (i, got) in flight.delivered.iter().enumerate() {
        assert!(*got == frame(i, 60_000), "frame {i} differs");
    }
}

#[test]
fn without_parity_the_same_losses_lose_frames_never_corrupt_them() {
    let config = Config {
        max_video_parity: 0,
        ..Config::default()
    };
    let flight = fly(&config, 60, 60_000, |n| n % 97 == 0);
    assert_eq!((flight.parity_sent, flight.recovered), (0, 0));
    assert!(!flight.lost.is_empty());
    assert_eq!(flight.delivered.len() + flight.lost.len(), 60);
    for got in &flight.delivered {
        assert!((0..60).any(|i| *got == frame(i, 60_000)), "a corrupt frame");
    }
}

/// Every datagram the aircraft sends for one 60 KB frame (45 data fragments and at least
/// one parity fragment) but the first reaches the remote; the frame comes out once,
/// recovered from parity. Then a forged copy of each datagram (one bit flipped) and each
/// datagram again: nothing more is delivered and nothing altered. The forgery of the one
/// datagram never received fails authentication, the other forgeries and the replays are
/// duplicates, and that datagram itself, genuine and late, is a fragment of a finished
/// frame.
#[test]
fn replayed_or_forged_parity_never_alters_or_repeats_a_frame() {
    let (mut aircraft, mut remote) = pair(&Config::default());
    let mut now = Timestamp::ZERO;
    let from = SocketAddr::from(AIRCRAFT);
    aircraft.send(Channel::Video, &frame(0, 60_000)).unwrap();
    let mut buf = vec![0u8; 2048];
    let mut datagrams = Vec::new();
    // As fast as the pacer lets the frame out (nothing comes back: no feedback).
    for _ in 0..200 {
        aircraft.handle_timeout(now);
        while let Some(t) = aircraft.poll_transmit(now, &mut buf) {
            datagrams.push(buf[..t.len].to_vec());
        }
        now = now + std::time::Duration::from_millis(1);
    }
    assert!(aircraft.stats().video_parity_sent >= 1);
    // The parity goes last: lose the first data fragment so the parity is needed.
    for d in &datagrams[1..] {
        let _ = remote.handle_datagram(now, from, d);
    }
    let videos = |remote: &mut Link| {
        let mut got = Vec::new();
        while let Some(event) = remote.poll_event() {
            if let Event::Message {
                channel: Channel::Video,
                data,
            } = event
            {
                got.push(data.to_vec());
            }
        }
        got
    };
    assert_eq!(videos(&mut remote), vec![frame(0, 60_000)]);
    assert_eq!(remote.stats().video_recovered, 1);
    let before = remote.stats().clone();
    for d in &datagrams {
        let mut forged = d.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let _ = remote.handle_datagram(now, from, &forged);
    }
    for d in &datagrams {
        let _ = remote.handle_datagram(now, from, d);
    }
    assert!(videos(&mut remote).is_empty(), "a frame delivered again");
    let after = remote.stats();
    let n = datagrams.len() as u64;
    assert_eq!(after.dropped_auth - before.dropped_auth, 1);
    assert_eq!(
        after.dropped_duplicate - before.dropped_duplicate,
        2 * n - 2
    );
    assert_eq!(after.dropped_stale_video - before.dropped_stale_video, 1);
    assert_eq!(after.video_recovered, 1);
}

/// At an odd MTU the largest fragment is odd, and its parity shard one byte longer: the
/// sender sizes fragments so that parity fragments fit too, and every frame comes through.
#[test]
fn at_odd_mtus_parity_fragments_fit_and_frames_are_recovered() {
    for mtu in [257, 601, 1401] {
        let config = Config {
            mtu,
            ..Config::default()
        };
        let flight = fly(&config, 20, 60_000, |n| n % 97 == 0);
        assert!(
            flight.parity_sent >= 20,
            "mtu {mtu}: {}",
            flight.parity_sent
        );
        assert!(flight.recovered > 0, "mtu {mtu}");
        assert!(flight.lost.is_empty(), "mtu {mtu}: lost {:?}", flight.lost);
        for (i, got) in flight.delivered.iter().enumerate() {
            assert!(*got == frame(i, 60_000), "mtu {mtu}: frame {i} differs");
        }
        assert_eq!(flight.delivered.len(), 20, "mtu {mtu}");
    }
}
