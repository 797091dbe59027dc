//! The peer-address rule at the sans-IO level: only a frame that authenticates under the
//! current session, or a handshake that completes, moves the aircraft's peer. Every other
//! datagram the endpoint answers with `Ok` (a replayed `Init` or `Finish`, a session `Init`
//! for an unknown bond, a resume `Init` for an unknown ticket, a fresh pairing `Init`, a
//! refusal) is answered — if at all — at its source with handshake frames only, and the
//! pilot's session carries on without a gap.

use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rotorlink::handshake::keys::mac1;
use rotorlink::handshake::limits::MemoryAttemptStore;
use rotorlink::handshake::messages::{
    frame, Init, InitBody, BOND_ID_LEN, MAC1_LEN, MESSAGE1_LEN, SUITE_V2, TICKET_LEN,
};
use rotorlink::handshake::{AircraftIdentity, KsfParams, RemoteIdentity};
use rotorlink::wire::FrameType;
use rotorlink::{Channel, CloseCode, Config, Event, Link, SendError, Timestamp};

const LINK_ID: [u8; 16] = *b"RL-PEER-ADDR-001";
const CODE: &[u8] = b"314159";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn aircraft_addr() -> SocketAddr {
    addr("192.0.2.1:47474")
}

fn remote_addr() -> SocketAddr {
    addr("192.0.2.2:50000")
}

fn third_addr() -> SocketAddr {
    addr("198.51.100.7:6666")
}

fn config() -> Config {
    Config {
        ksf: KsfParams::INSECURE_FAST,
        ..Config::default()
    }
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// An aircraft and a remote on a loss-free radio, with every datagram each sent.
struct Net {
    air: Link,
    rc: Link,
    now: Timestamp,
    /// Every datagram the remote sent, in order.
    from_remote: Vec<Vec<u8>>,
    air_events: Vec<Event>,
    rc_events: Vec<Event>,
}

impl Net {
    fn paired() -> Net {
        Net::paired_with(config())
    }

    fn paired_with(config: Config) -> Net {
        let identity =
            AircraftIdentity::provision(LINK_ID, CODE, config.ksf, &mut rng(1)).expect("provision");
        let store = Box::new(MemoryAttemptStore::new());
        let mut air = Link::aircraft(
            config.clone(),
            identity,
            store,
            &mut rng(2),
            Timestamp::ZERO,
        )
        .unwrap();
        air.open_pairing_window(core::time::Duration::from_secs(3600), Timestamp::ZERO)
            .unwrap();
        let rc_id = RemoteIdentity::generate(&mut rng(3));
        let mut rc = Link::remote(config, rc_id, LINK_ID, &mut rng(4), Timestamp::ZERO).unwrap();
        rc.pair(CODE, aircraft_addr(), Timestamp::ZERO).unwrap();
        let mut net = Net {
            air,
            rc,
            now: Timestamp::ZERO,
            from_remote: Vec::new(),
            air_events: Vec::new(),
            rc_events: Vec::new(),
        };
        net.run(Duration::from_millis(100));
        assert!(net.air.is_connected() && net.rc.is_connected());
        assert_eq!(net.air.peer_addr(), Some(remote_addr()));
        net
    }

    /// Move every datagram between the two (the aircraft's go where it says; anything it
    /// addresses elsewhere is returned), run the timers, collect events.
    fn step(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut elsewhere = Vec::new();
        let mut buf = vec![0u8; 2048];
        for _ in 0..4 {
            while let Some(t) = self.rc.poll_transmit(self.now, &mut buf) {
                assert_eq!(t.destination, aircraft_addr());
                let d = buf[..t.len].to_vec();
                let _ = self.air.handle_datagram(self.now, remote_addr(), &d);
                self.from_remote.push(d);
            }
            while let Some(t) = self.air.poll_transmit(self.now, &mut buf) {
                let d = buf[..t.len].to_vec();
                if t.destination == remote_addr() {
                    let _ = self.rc.handle_datagram(self.now, aircraft_addr(), &d);
                } else {
                    elsewhere.push((t.destination, d));
                }
            }
        }
        while let Some(e) = self.air.poll_event() {
            self.air_events.push(e);
        }
        while let Some(e) = self.rc.poll_event() {
            self.rc_events.push(e);
        }
        elsewhere
    }

    fn run(&mut self, d: Duration) -> Vec<(SocketAddr, Vec<u8>)> {
        let end = self.now + d;
        let mut elsewhere = self.step();
        while self.now < end {
            self.now = self.now + Duration::from_millis(5);
            self.air.handle_timeout(self.now);
            self.rc.handle_timeout(self.now);
            elsewhere.extend(self.step());
        }
        elsewhere
    }

    /// The remote's handshake datagrams of type `t`, as recorded.
    fn recorded(&self, t: FrameType) -> Vec<Vec<u8>> {
        self.from_remote
            .iter()
            .filter(|d| d[1] == t as u8)
            .cloned()
            .collect()
    }

    /// `datagram` arrives at the aircraft from the third address; returns whether the
    /// aircraft took it (`Ok`) and what it sent anywhere but to the remote.
    fn deliver_from_third(&mut self, datagram: &[u8]) -> (bool, Vec<(SocketAddr, Vec<u8>)>) {
        let ok = self
            .air
            .handle_datagram(self.now, third_addr(), datagram)
            .is_ok();
        (ok, self.run(Duration::from_millis(50)))
    }

    /// The pilot's sticks and the aircraft's telemetry still flow, with no loss.
    fn assert_link_carries_on(&mut self, round: u8) {
        let before_air = self
            .air
            .stats()
            .channel(Channel::Control)
            .messages_delivered;
        let before_rc = self
            .rc
            .stats()
            .channel(Channel::Telemetry)
            .messages_delivered;
        self.rc.send(Channel::Control, &[round]).unwrap();
        self.air.send(Channel::Telemetry, &[round]).unwrap();
        let stray = self.run(Duration::from_millis(20));
        assert!(stray.is_empty(), "the session spilled to {stray:?}");
        assert_eq!(
            self.air
                .stats()
                .channel(Channel::Control)
                .messages_delivered,
            before_air + 1
        );
        assert_eq!(
            self.rc
                .stats()
                .channel(Channel::Telemetry)
                .messages_delivered,
            before_rc + 1
        );
    }
}

/// Only handshake frames (responses and refusals), never an encrypted one.
fn assert_handshake_only(sent: &[(SocketAddr, Vec<u8>)]) {
    for (to, d) in sent {
        assert_eq!(*to, third_addr(), "a datagram to an unknown address");
        let frame_type = FrameType::from_u8(d[1]).unwrap();
        assert!(
            !frame_type.is_encrypted(),
            "an encrypted {frame_type:?} frame went to the third address"
        );
    }
}

fn init_frame(body: InitBody<'_>, r: &mut ChaCha20Rng) -> Vec<u8> {
    let init = Init {
        suite: SUITE_V2,
        sender_index: r.next_u32() | 1,
        body,
        mac1: [0; MAC1_LEN],
    };
    let mut f = frame(FrameType::HandshakeInit, 0, &init.emit());
    let split = f.len() - MAC1_LEN;
    let tag = mac1(&LINK_ID, &[], &f[..split]);
    f[split..].copy_from_slice(&tag);
    f
}

#[test]
fn no_handshake_datagram_from_elsewhere_moves_the_peer_or_gets_an_encrypted_frame() {
    let mut net = Net::paired();
    let mut r = rng(99);
    let pair_init = net.recorded(FrameType::HandshakeInit).remove(0);
    let pair_finish = net.recorded(FrameType::HandshakeFinish).remove(0);
    let mut forged = pair_init.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x55; // the anti-DoS MAC no longer verifies

    let unknown_bond = init_frame(
        InitBody::Session {
            bond_id: [0xb0; BOND_ID_LEN],
            message: [9; MESSAGE1_LEN],
        },
        &mut r,
    );
    let unknown_ticket = init_frame(
        InitBody::Resume {
            ticket: [0x7e; TICKET_LEN],
            message: [9; MESSAGE1_LEN],
        },
        &mut r,
    );
    // A fresh pairing Init needs only the public link id: the aircraft may answer it (at
    // its source), and it must not touch the pilot's session.
    let mut intruder: Link = Link::remote(
        config(),
        RemoteIdentity::generate(&mut rng(5)),
        LINK_ID,
        &mut rng(6),
        net.now,
    )
    .unwrap();
    intruder.pair(b"000000", aircraft_addr(), net.now).unwrap();
    let mut buf = vec![0u8; 2048];
    let t = intruder.poll_transmit(net.now, &mut buf).unwrap();
    let fresh_pair_init = buf[..t.len].to_vec();

    let cases: [(&str, &[u8], bool); 6] = [
        ("replayed pairing Init", &pair_init, true),
        ("replayed pairing Finish", &pair_finish, true),
        ("Init with a forged MAC", &forged, false),
        ("session Init for an unknown bond", &unknown_bond, true),
        ("resume Init for an unknown ticket", &unknown_ticket, true),
        ("fresh pairing Init", &fresh_pair_init, true),
    ];
    for (round, (what, datagram, accepted)) in cases.into_iter().enumerate() {
        let (ok, sent) = net.deliver_from_third(datagram);
        assert_eq!(ok, accepted, "{what}");
        assert_handshake_only(&sent);
        assert_eq!(net.air.peer_addr(), Some(remote_addr()), "{what}");
        assert!(net.air.is_connected(), "{what}");
        net.assert_link_carries_on(round as u8);
    }
    assert_eq!(net.air.stats().peer_address_changes, 0);
    // The refusals did answer their source.
    assert!(net.air.stats().datagrams_sent > 0);
}

/// A fresh pairing `Init` of an outsider (it knows only the public link id).
fn outsider_pairing_init(seed: u64, now: Timestamp) -> Vec<u8> {
    let mut intruder: Link = Link::remote(
        config(),
        RemoteIdentity::generate(&mut rng(seed)),
        LINK_ID,
        &mut rng(seed + 1),
        now,
    )
    .unwrap();
    intruder.pair(b"000000", aircraft_addr(), now).unwrap();
    let mut buf = vec![0u8; 2048];
    let t = intruder.poll_transmit(now, &mut buf).unwrap();
    buf[..t.len].to_vec()
}

/// A flood of pairing `Init`s from the third address runs the aircraft through every
/// refusal — pairing window closed, busy, backing off, locked out — and each is answered at the source only; the
/// pilot's session never moves and never stops.
#[test]
fn refusals_of_every_kind_go_to_the_source_and_move_nothing() {
    use rotorlink::handshake::limits::LimitsConfig;
    use rotorlink::handshake::messages::{parse_frame, Refusal, RefusalReason};
    use rotorlink::handshake::HandshakeConfig;
    let tight = Config {
        limits: LimitsConfig {
            max_failures: 3,
            base_backoff: Duration::from_secs(1),
            ..LimitsConfig::default()
        },
        handshake: HandshakeConfig {
            rate_per_second: 2,
            ..HandshakeConfig::default()
        },
        ..config()
    };
    let mut net = Net::paired_with(tight);
    let mut reasons = std::collections::BTreeSet::new();
    for round in 0..12u8 {
        if round == 2 {
            // The pilot paired, which closed the window; the owner opens it again (for a
            // second remote), and the outsiders' pairings get past that check.
            net.air
                .open_pairing_window(Duration::from_secs(3600), net.now)
                .unwrap();
        }
        for i in 0..3u64 {
            let init = outsider_pairing_init(100 + 10 * u64::from(round) + 2 * i, net.now);
            let _ = net.air.handle_datagram(net.now, third_addr(), &init);
        }
        let sent = net.run(Duration::from_millis(600));
        assert_handshake_only(&sent);
        for (_, d) in &sent {
            if d[1] == FrameType::CookieReply as u8 {
                let (_, payload) = parse_frame(d).unwrap();
                reasons.insert(Refusal::parse(payload).unwrap().reason as u8);
            }
        }
        assert_eq!(net.air.peer_addr(), Some(remote_addr()));
        net.assert_link_carries_on(round);
    }
    for reason in [
        RefusalReason::PairingClosed,
        RefusalReason::Busy,
        RefusalReason::BackOff,
        RefusalReason::LockedOut,
    ] {
        assert!(
            reasons.contains(&(reason as u8)),
            "no {reason:?} refusal seen"
        );
    }
    assert_eq!(net.air.stats().peer_address_changes, 0);
}

#[test]
fn an_authenticated_frame_from_a_new_address_moves_the_peer_a_replayed_one_does_not() {
    let mut net = Net::paired();
    let roamed = addr("192.0.2.99:40000");
    let mut buf = vec![0u8; 2048];
    // The pilot's remote changes address (a new network): its next frame authenticates.
    net.rc
        .send(Channel::Control, b"from the new address")
        .unwrap();
    let t = net.rc.poll_transmit(net.now, &mut buf).unwrap();
    let sticks = buf[..t.len].to_vec();
    net.air.handle_datagram(net.now, roamed, &sticks).unwrap();
    assert_eq!(net.air.peer_addr(), Some(roamed));
    assert_eq!(net.air.stats().peer_address_changes, 1);
    // A copy of the same frame from elsewhere is a replay: refused, the peer stays.
    assert!(net
        .air
        .handle_datagram(net.now, third_addr(), &sticks)
        .is_err());
    assert_eq!(net.air.peer_addr(), Some(roamed));
    // An older frame, delayed and re-sent from elsewhere, authenticates but is not the
    // newest: the peer stays too.
    net.rc.send(Channel::Telemetry, b"late").unwrap_err(); // the remote may not send it
    net.rc.send(Channel::Control, b"one").unwrap();
    let one = {
        let t = net.rc.poll_transmit(net.now, &mut buf).unwrap();
        buf[..t.len].to_vec()
    };
    net.rc.send(Channel::Control, b"two").unwrap();
    let two = {
        let t = net.rc.poll_transmit(net.now, &mut buf).unwrap();
        buf[..t.len].to_vec()
    };
    net.air.handle_datagram(net.now, roamed, &two).unwrap();
    net.air
        .handle_datagram(net.now, third_addr(), &one)
        .unwrap();
    assert_eq!(net.air.peer_addr(), Some(roamed));
    // The aircraft's frames now go to the new address.
    net.air.send(Channel::Telemetry, b"alt 40 m").unwrap();
    let t = net.air.poll_transmit(net.now, &mut buf).unwrap();
    assert_eq!(t.destination, roamed);
}

#[test]
fn a_closed_link_stays_closed_whatever_arrives() {
    let mut net = Net::paired();
    let pair_init = net.recorded(FrameType::HandshakeInit).remove(0);
    net.rc.send(Channel::Control, b"sticks").unwrap();
    let mut buf = vec![0u8; 2048];
    let t = net.rc.poll_transmit(net.now, &mut buf).unwrap();
    let sticks = buf[..t.len].to_vec();

    net.air.close(CloseCode::NORMAL);
    for _ in 0..3 {
        let t = net.air.poll_transmit(net.now, &mut buf).unwrap();
        assert_eq!(t.frame_type, FrameType::Close);
    }
    assert!(net.air.is_closed());
    // A valid data frame of the old session, a pairing Init, the remote reconnecting:
    // nothing reopens it, nothing is sent, no timer is armed.
    for d in [&sticks, &pair_init] {
        assert_eq!(
            net.air.handle_datagram(net.now, remote_addr(), d),
            Err(rotorlink::Error::Closed)
        );
    }
    net.rc.connect(aircraft_addr(), net.now).unwrap();
    let from_rc: Vec<Vec<u8>> = std::iter::from_fn(|| {
        net.rc
            .poll_transmit(net.now, &mut buf)
            .map(|t| buf[..t.len].to_vec())
    })
    .collect();
    for d in &from_rc {
        assert!(net.air.handle_datagram(net.now, remote_addr(), d).is_err());
    }
    assert!(net.air.is_closed() && !net.air.is_connected());
    assert!(net.air.poll_transmit(net.now, &mut buf).is_none());
    assert_eq!(net.air.poll_timeout(), None);
    assert_eq!(
        net.air.send(Channel::Telemetry, b"x"),
        Err(SendError::Closed)
    );
    net.air.handle_timeout(net.now + Duration::from_secs(60));
    assert!(net.air.is_closed());
    assert_eq!(
        net.air.stats().dropped_closed,
        2 + from_rc.len() as u64,
        "every datagram after the close is counted"
    );
}
