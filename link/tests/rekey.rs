//! Key updates mix a fresh X25519 exchange: traffic keeps flowing across them, and a leaked
//! session secret stops opening traffic after the next update.

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::{Channel, CloseCode, Config, Event, Link, Role, Secret, Timestamp};

fn config() -> Config {
    Config {
        rekey_after_packets: 40,
        ..Config::default()
    }
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn link(role: Role, local: u32, peer: u32, seed: u64) -> Link {
    let secret = Secret::new([0x33; 32]);
    let (cfg, hash, now) = (config(), [0x44; 32], Timestamp::ZERO);
    Link::from_secret(
        role,
        cfg,
        &secret,
        &hash,
        local,
        peer,
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        &mut rng(seed),
        now,
    )
    .unwrap()
}

/// Shuttle frames until both sides are quiet; return what the aircraft sent.
fn exchange(air: &mut Link, rc: &mut Link, now: Timestamp) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 1500];
    let mut sent = Vec::new();
    for _ in 0..20 {
        let mut moved = false;
        while let Some(t) = air.poll_transmit(now, &mut buf) {
            sent.push(buf[..t.len].to_vec());
            rc.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                &buf[..t.len],
            )
            .unwrap();
            moved = true;
        }
        while let Some(t) = rc.poll_transmit(now, &mut buf) {
            air.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                &buf[..t.len],
            )
            .unwrap();
            moved = true;
        }
        if !moved {
            break;
        }
    }
    sent
}

fn drain(link: &mut Link) -> (usize, usize) {
    let (mut messages, mut rekeys) = (0, 0);
    while let Some(ev) = link.poll_event() {
        match ev {
            Event::Message { .. } => messages += 1,
            Event::Rekeyed { .. } => rekeys += 1,
            _ => {}
        }
    }
    (messages, rekeys)
}

#[test]
fn traffic_flows_across_key_updates_and_a_leaked_secret_stops_working() {
    let mut air = link(Role::Aircraft, 1, 2, 1);
    let mut rc = link(Role::Remote, 2, 1, 2);
    // The eavesdropper holds the session secret (leaked) and the indices, but not the
    // remote's ephemeral keys.
    let mut spy = link(Role::Remote, 2, 1, 3);
    let mut now = Timestamp::ZERO;
    let (mut delivered, mut spy_opened_late) = (0, 0);
    let mut spy_opened_early = 0;
    for i in 0..400u32 {
        air.send(Channel::Telemetry, &i.to_be_bytes()).unwrap();
        rc.send(Channel::Control, &i.to_be_bytes()).unwrap();
        for frame in exchange(&mut air, &mut rc, now) {
            let opened = spy
                .handle_datagram(
                    now,
                    std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                    &frame,
                )
                .is_ok();
            if i < 20 {
                spy_opened_early += usize::from(opened);
            } else if i > 100 {
                spy_opened_late += usize::from(opened);
            }
        }
        delivered += drain(&mut rc).0;
        drain(&mut air);
        drain(&mut spy);
        now = now + Duration::from_millis(1);
    }
    assert_eq!(delivered, 400, "no telemetry lost across key updates");
    assert!(air.stats().rekeys_sent >= 5, "{:?}", air.stats());
    assert!(rc.stats().rekeys_sent >= 5, "{:?}", rc.stats());
    assert_eq!(air.stats().rekeys_received, rc.stats().rekeys_sent);
    assert!(
        spy_opened_early >= 20,
        "the leaked secret opens the first phase"
    );
    assert_eq!(
        spy_opened_late, 0,
        "after a key update the leaked secret is useless"
    );
    assert!(spy.stats().dropped_auth > 0);
    assert_eq!(air.stats().dropped_total() + rc.stats().dropped_total(), 0);
}

#[test]
fn a_peer_that_never_answers_a_key_update_is_cut_off_at_the_hard_limit() {
    let cfg = Config {
        rekey_after_packets: 10,
        reject_after_packets: 30,
        ..Config::default()
    };
    let secret = Secret::new([0x33; 32]);
    let now = Timestamp::ZERO;
    let mut air: Link = Link::from_secret(
        Role::Aircraft,
        cfg,
        &secret,
        &[0x44; 32],
        1,
        2,
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
        &mut rng(4),
        now,
    )
    .unwrap();
    let mut buf = vec![0u8; 1500];
    let mut sent = 0;
    for i in 0..100u32 {
        let _ = air.send(Channel::Telemetry, &i.to_be_bytes());
        while air.poll_transmit(Timestamp::ZERO, &mut buf).is_some() {
            sent += 1;
        }
    }
    // Nothing came back, so no update completed: the key stops at its hard limit.
    assert_eq!(sent, 30);
    // The session ends (the link does not close): its keys are gone, nothing more is sent.
    assert!(!air.is_connected() && !air.is_closed());
    let mut ended = false;
    while let Some(e) = air.poll_event() {
        ended |= e
            == Event::SessionEnded {
                code: CloseCode::KEY_EXPIRED,
            };
    }
    assert!(ended);
    assert!(air.poll_transmit(Timestamp::ZERO, &mut buf).is_none());
}

/// The key log (`Config::log_traffic_secrets`): every frame both ends send, across several
/// key updates, opens with a secret the two ends logged for its receiver index and key
/// phase, to exactly the plaintext the receiver got; with the log off, nothing is logged.
#[test]
fn every_frame_opens_with_a_logged_traffic_secret_across_key_updates() {
    use std::collections::BTreeMap;
    let logging = |role: Role, local: u32, peer: u32, seed: u64| {
        let mut cfg = config();
        cfg.log_traffic_secrets = true;
        Link::from_secret(
            role,
            cfg,
            &Secret::new([0x33; 32]),
            &[0x44; 32],
            local,
            peer,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            &mut rng(seed),
            Timestamp::ZERO,
        )
        .unwrap()
    };
    let mut air = logging(Role::Aircraft, 1, 2, 1);
    let mut rc = logging(Role::Remote, 2, 1, 2);
    let mut log: BTreeMap<(u32, u64), Secret> = BTreeMap::new();
    let mut take = |link: &mut Link, got: &mut Vec<Vec<u8>>| {
        while let Some(ev) = link.poll_event() {
            match ev {
                Event::TrafficSecret {
                    receiver_index,
                    generation,
                    secret,
                } => {
                    log.insert((receiver_index, generation), secret);
                }
                Event::Message { data, .. } => got.push(data.to_vec()),
                _ => {}
            }
        }
    };
    let (mut frames, mut received) = (Vec::new(), Vec::new());
    let mut now = Timestamp::ZERO;
    for i in 0..200u32 {
        air.send(Channel::Telemetry, &i.to_be_bytes()).unwrap();
        frames.extend(exchange(&mut air, &mut rc, now));
        take(&mut air, &mut Vec::new());
        take(&mut rc, &mut received);
        now = now + Duration::from_millis(1);
    }
    assert!(air.stats().rekeys_sent >= 3, "{:?}", air.stats());
    // Both directions' first key and every rotation of each.
    let rotations = air.stats().rekeys_sent + rc.stats().rekeys_sent;
    assert_eq!(log.len() as u64, 2 + rotations);
    let mut opened = Vec::new();
    // The newest counter opened per receiver index: each frame's counter is recovered from
    // its packet number and the one after it.
    let mut newest: BTreeMap<u32, u64> = BTreeMap::new();
    for frame in &frames {
        let header = &frame[..rotorlink::wire::HEADER_LEN];
        let receiver = u32::from_be_bytes(header[4..8].try_into().unwrap());
        let phase = header[2] & 1 == 1;
        let expected = newest.get(&receiver).map_or(0, |c| c + 1);
        let plain: Vec<_> = log
            .range((receiver, 0)..=(receiver, u64::MAX))
            .filter(|((_, g), _)| (g % 2 == 1) == phase)
            .filter_map(|(_, s)| rotorlink::session::open_logged(s, frame, expected).ok())
            .collect();
        assert_eq!(plain.len(), 1, "exactly one logged key opens each frame");
        let (counter, plain) = plain.into_iter().next().unwrap();
        let top = newest.entry(receiver).or_insert(counter);
        *top = (*top).max(counter);
        opened.push(plain);
    }
    // Each telemetry message is in a frame that opened (channel data after its header).
    for m in &received {
        assert!(opened.iter().any(|p| p.ends_with(m)), "{m:?}");
    }
    assert_eq!(received.len(), 200);
    // Off by default.
    let mut quiet = link(Role::Aircraft, 1, 2, 1);
    while let Some(ev) = quiet.poll_event() {
        assert!(!matches!(ev, Event::TrafficSecret { .. }));
    }
}
