//! Pairing, bonded sessions, resume and the brute-force limits, end to end between two links
//! over an in-memory radio with optional loss.

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rotorlink::handshake::limits::{
    AttemptRecord, AttemptStore, LimitsConfig, MemoryAttemptStore, StoreError,
};
use rotorlink::handshake::{
    AircraftIdentity, HandshakeError, Kind, KsfParams, RefusalReason, RemoteIdentity,
};
use rotorlink::{Channel, CloseCode, Config, Event, Link, Timestamp};

const LINK_ID: [u8; 16] = *b"RL-TEST-AIRCRAFT";
const CODE: &[u8] = b"483920";
/// How long the tests' owners open the pairing window.
const WINDOW: Duration = Duration::from_secs(3600);

fn config() -> Config {
    Config {
        ksf: KsfParams::INSECURE_FAST,
        limits: LimitsConfig {
            max_failures: 3,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(2),
            lockout: Duration::from_secs(60),
            max_unlock_failures: 9,
        },
        ..Config::default()
    }
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Both ends, the radio between them and everything each end reported.
struct Net {
    air: Link,
    rc: Link,
    now: Timestamp,
    loss: f64,
    rng: ChaCha20Rng,
    /// Every event other than a message, in order.
    air_events: Vec<Event>,
    rc_events: Vec<Event>,
    air_messages: Vec<(Channel, Vec<u8>)>,
    rc_messages: Vec<(Channel, Vec<u8>)>,
    /// Every datagram put on the air, for replay tests.
    log: Vec<(bool, Vec<u8>)>,
}

fn collect(link: &mut Link, events: &mut Vec<Event>, messages: &mut Vec<(Channel, Vec<u8>)>) {
    while let Some(ev) = link.poll_event() {
        match ev {
            Event::Message { channel, data } => messages.push((channel, data.to_vec())),
            other => events.push(other),
        }
    }
}

impl Net {
    fn new(air: Link, rc: Link) -> Self {
        Net {
            air,
            rc,
            now: Timestamp::ZERO,
            loss: 0.0,
            rng: rng(99),
            air_events: Vec::new(),
            rc_events: Vec::new(),
            air_messages: Vec::new(),
            rc_messages: Vec::new(),
            log: Vec::new(),
        }
    }

    fn lost(&mut self) -> bool {
        (self.rng.next_u64() as f64 / u64::MAX as f64) < self.loss
    }

    /// Exchange everything due now (one hop each way, repeated until quiet), then advance
    /// the clock by `dt` and run timers.
    fn step(&mut self, dt: Duration) {
        let mut buf = vec![0u8; 2048];
        for _ in 0..50 {
            let mut moved = false;
            while let Some(t) = self.rc.poll_transmit(self.now, &mut buf) {
                moved = true;
                self.log.push((true, buf[..t.len].to_vec()));
                if !self.lost() {
                    let _ = self.air.handle_datagram(
                        self.now,
                        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                        &buf[..t.len],
                    );
                }
            }
            while let Some(t) = self.air.poll_transmit(self.now, &mut buf) {
                moved = true;
                self.log.push((false, buf[..t.len].to_vec()));
                if !self.lost() {
                    let _ = self.rc.handle_datagram(
                        self.now,
                        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                        &buf[..t.len],
                    );
                }
            }
            collect(&mut self.air, &mut self.air_events, &mut self.air_messages);
            collect(&mut self.rc, &mut self.rc_events, &mut self.rc_messages);
            if !moved {
                break;
            }
        }
        self.now = self.now + dt;
        self.air.handle_timeout(self.now);
        self.rc.handle_timeout(self.now);
    }

    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step(Duration::from_millis(5));
        }
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            self.step(Duration::from_millis(5));
            if done(self) {
                return true;
            }
        }
        false
    }
}

/// Whether the aircraft refused a handshake of this end for `reason`.
fn refused(events: &[Event], reason: RefusalReason) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::HandshakeRefused { reason: r, .. } if *r == reason))
}

fn provisioned(seed: u64) -> (AircraftIdentity, MemoryAttemptStore) {
    let identity =
        AircraftIdentity::provision(LINK_ID, CODE, KsfParams::INSECURE_FAST, &mut rng(seed))
            .unwrap();
    (identity, MemoryAttemptStore::new())
}

/// An aircraft whose owner opened the pairing window (for an hour).
fn aircraft(identity: AircraftIdentity, store: MemoryAttemptStore, seed: u64) -> Link {
    let mut air = Link::aircraft(
        config(),
        identity,
        Box::new(store),
        &mut rng(seed),
        Timestamp::ZERO,
    )
    .unwrap();
    air.open_pairing_window(WINDOW, Timestamp::ZERO).unwrap();
    air
}

fn remote(identity: RemoteIdentity, seed: u64) -> Link {
    Link::remote(config(), identity, LINK_ID, &mut rng(seed), Timestamp::ZERO).unwrap()
}

/// Prove the code inside the session so that storage opens.
fn unlock(net: &mut Net) {
    net.rc.unlock_storage(CODE, net.now).unwrap();
    assert!(
        net.run_until(Duration::from_secs(1), |n| n.rc.storage_unlocked()
            && n.air.storage_unlocked())
    );
}

fn paired_net() -> Net {
    let (identity, store) = provisioned(1);
    let air = aircraft(identity, store, 2);
    let rc = remote(RemoteIdentity::generate(&mut rng(3)), 4);
    let mut net = Net::new(air, rc);
    net.rc
        .pair(
            CODE,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            net.now,
        )
        .unwrap();
    assert!(net.run_until(Duration::from_secs(2), |n| n.rc.is_connected()));
    net.run(Duration::from_millis(50));
    net
}

#[test]
fn the_right_code_pairs_bonds_and_carries_data() {
    let mut net = paired_net();
    assert!(
        net.rc_events
            .contains(&Event::Connected { kind: Kind::Pair }),
        "{:?}",
        net.rc_events
    );
    assert!(
        net.air_events
            .contains(&Event::Connected { kind: Kind::Pair }),
        "{:?}",
        net.air_events
    );
    assert!(net.rc_events.contains(&Event::Bonded) && net.air_events.contains(&Event::Bonded));
    let bond = net.rc.remote_identity().unwrap().bond().copied().unwrap();
    assert_eq!(bond.link_id, LINK_ID);
    assert_eq!(
        bond.aircraft_static,
        net.air.aircraft_identity().unwrap().static_public()
    );
    assert_eq!(net.air.aircraft_identity().unwrap().bonds().len(), 1);
    assert_eq!(net.air.remaining_attempts(), Some(3));

    net.rc.send(Channel::Control, b"sticks").unwrap();
    net.air.send(Channel::Telemetry, b"alt 100").unwrap();
    net.run(Duration::from_millis(50));
    assert_eq!(net.air_messages, [(Channel::Control, b"sticks".to_vec())]);
    assert_eq!(net.rc_messages, [(Channel::Telemetry, b"alt 100".to_vec())]);
}

#[test]
fn data_queued_before_pairing_waits_for_key_confirmation() {
    let (identity, store) = provisioned(1);
    let mut net = Net::new(
        aircraft(identity, store, 2),
        remote(RemoteIdentity::generate(&mut rng(3)), 4),
    );
    net.rc.send(Channel::Control, b"early").unwrap();
    net.rc
        .pair(
            CODE,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            net.now,
        )
        .unwrap();
    net.step(Duration::ZERO);
    // Nothing but handshake frames went out before the session was confirmed.
    let first_data = net.log.iter().position(|(_, f)| f[1] >= 0x10).unwrap();
    let confirm = net
        .log
        .iter()
        .position(|(up, f)| !up && f[1] == 0x12)
        .unwrap();
    assert!(confirm <= first_data, "data before key confirmation");
    net.run(Duration::from_millis(50));
    assert_eq!(net.air_messages, [(Channel::Control, b"early".to_vec())]);
}

#[test]
fn bonded_devices_reconnect_without_the_code_after_a_restart() {
    let net = paired_net();
    let air_bytes = net.air.aircraft_identity().unwrap().to_bytes();
    let rc_bytes = net.rc.remote_identity().unwrap().to_bytes();
    drop(net);

    let identity = AircraftIdentity::from_bytes(&air_bytes).unwrap();
    let air = aircraft(identity, MemoryAttemptStore::new(), 12);
    let rc = remote(RemoteIdentity::from_bytes(&rc_bytes).unwrap(), 14);
    let mut net = Net::new(air, rc);
    net.rc
        .connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), net.now)
        .unwrap();
    assert!(net.run_until(Duration::from_secs(1), |n| n.rc.is_connected()));
    assert!(
        net.rc_events.contains(&Event::Connected {
            kind: Kind::Session
        }),
        "{:?}",
        net.rc_events
    );
    // Four X25519 on the aircraft for one session handshake, and no OPAQUE.
    assert_eq!(net.air.handshake_crypto_ops(), 4);
    unlock(&mut net);
    net.rc.send(Channel::Storage, b"LIST").unwrap();
    net.run(Duration::from_millis(50));
    assert_eq!(net.air_messages, [(Channel::Storage, b"LIST".to_vec())]);
}

#[test]
fn an_unbonded_remote_cannot_connect() {
    let (identity, store) = provisioned(1);
    let mut net = Net::new(
        aircraft(identity, store, 2),
        remote(RemoteIdentity::generate(&mut rng(3)), 4),
    );
    assert_eq!(
        net.rc
            .connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), net.now),
        Err(rotorlink::Error::Handshake(HandshakeError::NotBonded))
    );
    // A remote claiming a bond it does not have is refused.
    let mut stranger = RemoteIdentity::generate(&mut rng(5));
    stranger.set_bond(rotorlink::handshake::Bond {
        link_id: LINK_ID,
        aircraft_static: net.air.aircraft_identity().unwrap().static_public(),
    });
    net.rc = remote(stranger, 6);
    net.rc
        .connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), net.now)
        .unwrap();
    net.run(Duration::from_millis(100));
    assert!(!net.rc.is_connected());
    assert!(
        refused(&net.rc_events, RefusalReason::UnknownBond),
        "{:?}",
        net.rc_events
    );
    assert_eq!(
        net.air.handshake_crypto_ops(),
        0,
        "no DH for an unknown bond"
    );
}

#[test]
fn a_wrong_code_fails_on_both_sides_and_consumes_an_attempt() {
    let (identity, store) = provisioned(1);
    let mut net = Net::new(
        aircraft(identity, store, 2),
        remote(RemoteIdentity::generate(&mut rng(3)), 4),
    );
    net.rc
        .pair(
            b"000000",
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            net.now,
        )
        .unwrap();
    net.run(Duration::from_secs(11));
    assert!(!net.rc.is_connected() && !net.air.is_connected());
    assert!(
        net.rc_events.contains(&Event::PairingRejected {
            remaining_attempts: 2
        }),
        "{:?}",
        net.rc_events
    );
    assert!(
        net.air_events.contains(&Event::PairingRejected {
            remaining_attempts: 2
        }),
        "{:?}",
        net.air_events
    );
    assert_eq!(net.air.remaining_attempts(), Some(2));
    assert!(net.air.aircraft_identity().unwrap().bonds().is_empty());
}

#[test]
fn back_off_is_enforced_and_the_lockout_survives_a_restart() {
    let (identity, _) = provisioned(1);
    let air_bytes = identity.to_bytes();
    let store = SharedStore::default();
    let mut air = Link::aircraft(
        config(),
        identity,
        Box::new(store.clone()),
        &mut rng(2),
        Timestamp::ZERO,
    )
    .unwrap();
    air.open_pairing_window(WINDOW, Timestamp::ZERO).unwrap();
    let mut net = Net::new(air, remote(RemoteIdentity::generate(&mut rng(3)), 4));
    // First wrong attempt, then an immediate second one: refused by the back-off.
    net.rc
        .pair(
            b"111111",
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            net.now,
        )
        .unwrap();
    net.run(Duration::from_millis(100));
    net.rc
        .pair(
            b"222222",
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            net.now,
        )
        .unwrap();
    net.run(Duration::from_millis(100));
    assert!(
        refused(&net.rc_events, RefusalReason::BackOff),
        "{:?}",
        net.rc_events
    );
    assert_eq!(net.air.remaining_attempts(), Some(2));
    // Wait out each back-off and fail twice more: locked out.
    for code in [b"333333", b"444444"] {
        net.run(Duration::from_secs(3));
        net.rc
            .pair(
                code,
                std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                net.now,
            )
            .unwrap();
        net.run(Duration::from_millis(100));
    }
    assert_eq!(net.air.remaining_attempts(), Some(0));
    net.run(Duration::from_secs(3));
    net.rc
        .pair(
            CODE,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            net.now,
        )
        .unwrap();
    net.run(Duration::from_millis(100));
    assert!(
        refused(&net.rc_events, RefusalReason::LockedOut),
        "{:?}",
        net.rc_events
    );
    assert!(
        !net.rc.is_connected(),
        "even the right code is refused while locked out"
    );

    // Restart the aircraft from its stored identity and the same attempt record: still
    // locked, even for the right code.
    drop(net);
    let identity = AircraftIdentity::from_bytes(&air_bytes).unwrap();
    let mut air = Link::aircraft(
        config(),
        identity,
        Box::new(store),
        &mut rng(7),
        Timestamp::ZERO,
    )
    .unwrap();
    air.open_pairing_window(WINDOW, Timestamp::ZERO).unwrap();
    let mut net = Net::new(air, remote(RemoteIdentity::generate(&mut rng(3)), 8));
    assert_eq!(net.air.remaining_attempts(), Some(0));
    net.rc
        .pair(
            CODE,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            net.now,
        )
        .unwrap();
    net.run(Duration::from_millis(100));
    assert!(
        refused(&net.rc_events, RefusalReason::LockedOut),
        "{:?}",
        net.rc_events
    );
    assert!(!net.rc.is_connected());
}

/// An attempt store shared between aircraft "restarts", as flash memory would be.
#[derive(Clone, Default)]
struct SharedStore(std::sync::Arc<std::sync::Mutex<Option<AttemptRecord>>>);

impl AttemptStore for SharedStore {
    fn load(&mut self) -> Result<AttemptRecord, StoreError> {
        Ok(self.0.lock().unwrap().unwrap_or_default())
    }
    fn save(&mut self, record: &AttemptRecord) -> Result<(), StoreError> {
        *self.0.lock().unwrap() = Some(*record);
        Ok(())
    }
}

#[test]
fn pairing_completes_at_twenty_percent_loss() {
    for seed in 0..5 {
        let (identity, store) = provisioned(1);
        let mut net = Net::new(
            aircraft(identity, store, 2),
            remote(RemoteIdentity::generate(&mut rng(3)), 4),
        );
        net.loss = 0.2;
        net.rng = rng(seed);
        net.rc
            .pair(
                CODE,
                std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                net.now,
            )
            .unwrap();
        assert!(
            net.run_until(Duration::from_secs(5), |n| n.rc.is_connected()
                && n.air.is_connected()),
            "seed {seed}: {:?} {:?}",
            net.rc_events,
            net.air_events
        );
    }
}

#[test]
fn a_replayed_handshake_never_yields_a_session() {
    let net = paired_net();
    let recorded: Vec<Vec<u8>> = net
        .log
        .iter()
        .filter(|(up, f)| *up && f[1] < 0x10)
        .map(|(_, f)| f.clone())
        .collect();
    let air_bytes = net.air.aircraft_identity().unwrap().to_bytes();
    drop(net);
    // A fresh aircraft (same identity) hears the old Init and Finish replayed.
    let identity = AircraftIdentity::from_bytes(&air_bytes).unwrap();
    let mut air = aircraft(identity, MemoryAttemptStore::new(), 22);
    let mut buf = vec![0u8; 2048];
    for f in &recorded {
        let _ = air.handle_datagram(
            Timestamp::ZERO,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            f,
        );
        while air.poll_transmit(Timestamp::ZERO, &mut buf).is_some() {}
    }
    assert!(!air.is_connected());
    while let Some(ev) = air.poll_event() {
        assert!(!matches!(ev, Event::Connected { .. }), "{ev:?}");
    }
    assert!(air.stats().dropped_handshake >= 1);
}

#[test]
fn a_lost_link_resumes_in_one_round_trip_and_storage_carries_on() {
    let mut net = paired_net();
    unlock(&mut net);
    let log: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    for chunk in log.chunks(50_000) {
        net.air.send(Channel::Storage, chunk).unwrap();
    }
    net.run(Duration::from_millis(20));
    // Cut the radio for two seconds.
    net.loss = 1.0;
    net.run(Duration::from_secs(2));
    assert!(net.rc_events.contains(&Event::LinkLost));
    net.loss = 0.0;
    let before = net.air.handshake_crypto_ops();
    assert!(net.run_until(Duration::from_secs(3), |n| n
        .rc_events
        .contains(&Event::Connected { kind: Kind::Resume })));
    assert_eq!(
        net.air.handshake_crypto_ops() - before,
        1,
        "resume costs one X25519"
    );
    net.run(Duration::from_secs(2));
    let got: Vec<u8> = net
        .rc_messages
        .iter()
        .filter(|(c, _)| *c == Channel::Storage)
        .flat_map(|(_, m)| m.clone())
        .collect();
    assert_eq!(got, log);
}

#[test]
fn changing_the_code_revokes_bonds() {
    let mut net = paired_net();
    net.air.change_code(b"new-code").unwrap();
    net.run(Duration::from_millis(50));
    assert!(
        net.rc_events.contains(&Event::SessionEnded {
            code: CloseCode::CODE_CHANGED
        }),
        "{:?}",
        net.rc_events
    );
    assert!(!net.rc.is_closed() && !net.air.is_closed());
    assert!(net.air.aircraft_identity().unwrap().bonds().is_empty());
    net.rc
        .connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), net.now)
        .unwrap();
    net.run(Duration::from_millis(100));
    // The resume ticket and the bond are both gone: refused.
    assert!(!net.rc.is_connected());
    assert!(
        refused(&net.rc_events, RefusalReason::UnknownBond),
        "{:?}",
        net.rc_events
    );
}

#[test]
fn storage_is_refused_before_unlock_and_a_wrong_code_is_counted() {
    let mut net = paired_net();
    assert_eq!(
        net.rc.send(Channel::Storage, b"GET /log"),
        Err(rotorlink::SendError::StorageLocked)
    );
    assert_eq!(
        net.air.send(Channel::Storage, b"log"),
        Err(rotorlink::SendError::StorageLocked)
    );
    // A wrong code: refused on both sides, and it costs an attempt.
    net.rc.unlock_storage(b"999999", net.now).unwrap();
    net.run(Duration::from_millis(100));
    assert!(!net.rc.storage_unlocked() && !net.air.storage_unlocked());
    assert!(
        net.rc_events.contains(&Event::StorageUnlockRejected {
            remaining_attempts: 2
        }),
        "{:?}",
        net.rc_events
    );
    assert!(
        net.air_events
            .iter()
            .any(|e| matches!(e, Event::StorageUnlockRejected { .. })),
        "{:?}",
        net.air_events
    );
    assert_eq!(net.air.stats().unlock_failures, 1);
    assert_eq!(net.air.remaining_unlocks(), Some(2));
    // Unlocks have their own budget: the pairing budget is untouched.
    assert_eq!(net.air.remaining_attempts(), Some(3));
    // Too soon after: the back-off refuses the next attempt without running OPAQUE.
    net.rc.unlock_storage(CODE, net.now).unwrap();
    net.run(Duration::from_millis(100));
    assert!(
        refused(&net.rc_events, RefusalReason::BackOff),
        "{:?}",
        net.rc_events
    );
    assert!(!net.rc.storage_unlocked());
    // After the back-off, the right code opens storage, and the count resets.
    net.run(Duration::from_secs(1));
    unlock(&mut net);
    assert_eq!(net.air.remaining_unlocks(), Some(3));
    net.rc.send(Channel::Storage, b"GET /log").unwrap();
    net.run(Duration::from_millis(50));
    assert_eq!(net.air_messages, [(Channel::Storage, b"GET /log".to_vec())]);
}

#[test]
fn a_forged_response_leaves_the_handshake_able_to_finish() {
    let (identity, store) = provisioned(1);
    let mut net = Net::new(
        aircraft(identity, store, 2),
        remote(RemoteIdentity::generate(&mut rng(3)), 4),
    );
    net.rc
        .pair(
            CODE,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            net.now,
        )
        .unwrap();
    let mut buf = vec![0u8; 2048];
    let init = net.rc.poll_transmit(net.now, &mut buf).unwrap();
    let init = buf[..init.len].to_vec();
    net.air
        .handle_datagram(
            net.now,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &init,
        )
        .unwrap();
    let genuine = net.air.poll_transmit(net.now, &mut buf).unwrap();
    let genuine = buf[..genuine.len].to_vec();
    // An attacker answers first with a response of the right shape but its own contents.
    for byte in [0x00u8, 0x5a, 0xff] {
        let mut forged = genuine.clone();
        for b in &mut forged[30..] {
            *b ^= byte | 1;
        }
        assert!(net
            .rc
            .handle_datagram(
                net.now,
                std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                &forged
            )
            .is_err());
    }
    net.rc
        .handle_datagram(
            net.now,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            &genuine,
        )
        .unwrap();
    assert!(net.run_until(Duration::from_secs(1), |n| n.rc.is_connected()));
}

#[test]
fn resume_falls_back_to_the_full_handshake_when_the_aircraft_forgot_the_session() {
    let mut net = paired_net();
    let air_bytes = net.air.aircraft_identity().unwrap().to_bytes();
    // The aircraft reboots (its resumption state is gone); the remote keeps its link.
    let identity = AircraftIdentity::from_bytes(&air_bytes).unwrap();
    net.air = aircraft(identity, MemoryAttemptStore::new(), 31);
    net.rc_events.clear();
    net.rc
        .connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), net.now)
        .unwrap();
    assert!(
        net.run_until(Duration::from_secs(2), |n| n.rc_events.contains(
            &Event::Connected {
                kind: Kind::Session
            }
        ))
    );
    assert!(net.rc.is_connected() && net.air.is_connected());
}

#[test]
fn sessions_have_unrelated_keys_and_recordings_stay_closed_to_long_term_secrets() {
    // Two sessions of the same bonded pair carry the same messages.
    let net = paired_net();
    let air_bytes = net.air.aircraft_identity().unwrap().to_bytes();
    let rc_bytes = net.rc.remote_identity().unwrap().to_bytes();
    drop(net);
    let session = |seed: u64| {
        let identity = AircraftIdentity::from_bytes(&air_bytes).unwrap();
        let air = aircraft(identity, MemoryAttemptStore::new(), seed);
        let rc = remote(RemoteIdentity::from_bytes(&rc_bytes).unwrap(), seed + 1);
        let mut net = Net::new(air, rc);
        net.rc
            .connect(std::net::SocketAddr::from(([10, 0, 0, 1], 47474)), net.now)
            .unwrap();
        assert!(net.run_until(Duration::from_secs(1), |n| n.rc.is_connected()));
        for i in 0..20u8 {
            net.rc.send(Channel::Control, &[i; 16]).unwrap();
            net.step(Duration::from_millis(5));
        }
        net.run(Duration::from_millis(50));
        assert_eq!(net.air_messages.len(), 20);
        net.log
    };
    let first = session(40);
    let second = session(50);
    let data = |log: &[(bool, Vec<u8>)]| -> Vec<Vec<u8>> {
        log.iter()
            .filter(|(up, f)| *up && f[1] == 0x10)
            .map(|(_, f)| f.clone())
            .collect()
    };
    // Same plaintexts, same counters, different ciphertexts: unrelated keys.
    let (a, b) = (data(&first), data(&second));
    assert!(!a.is_empty());
    for (x, y) in a.iter().zip(&b) {
        assert_ne!(x[18..], y[18..]);
    }
    // Everything recorded in the first session, replayed to fresh links that hold both ends'
    // long-term secrets (static keys, password file), opens nothing and makes no session.
    let identity = AircraftIdentity::from_bytes(&air_bytes).unwrap();
    let mut air = aircraft(identity, MemoryAttemptStore::new(), 60);
    let mut rc = remote(RemoteIdentity::from_bytes(&rc_bytes).unwrap(), 61);
    let mut buf = vec![0u8; 2048];
    for (up, frame) in &first {
        let to = if *up { &mut air } else { &mut rc };
        let _ = to.handle_datagram(
            Timestamp::ZERO,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            frame,
        );
        while to.poll_transmit(Timestamp::ZERO, &mut buf).is_some() {}
    }
    for link in [&mut air, &mut rc] {
        assert!(!link.is_connected());
        while let Some(ev) = link.poll_event() {
            assert!(
                !matches!(ev, Event::Message { .. } | Event::Connected { .. }),
                "{ev:?}"
            );
        }
    }
}

#[test]
fn stick_commands_flow_again_right_after_a_resume() {
    let mut net = paired_net();
    for i in 0..50u8 {
        net.rc.send(Channel::Control, &[i]).unwrap();
        net.step(Duration::from_millis(10));
    }
    net.loss = 1.0;
    net.run(Duration::from_secs(2));
    net.loss = 0.0;
    assert!(net.run_until(Duration::from_secs(3), |n| n
        .rc_events
        .contains(&Event::Connected { kind: Kind::Resume })));
    net.air_messages.clear();
    net.rc.send(Channel::Control, b"after").unwrap();
    net.run(Duration::from_millis(50));
    // The new keys restart the packet counters; latest-wins must restart with them.
    assert_eq!(net.air_messages, [(Channel::Control, b"after".to_vec())]);
    assert_eq!(net.air.stats().dropped_stale_control, 0);
}

#[test]
fn a_late_copy_of_the_pairing_init_costs_no_attempt() {
    let mut net = paired_net();
    let init = net
        .log
        .iter()
        .find(|(up, f)| *up && f[1] == 0x01)
        .map(|(_, f)| f.clone())
        .unwrap();
    assert_eq!(net.air.remaining_attempts(), Some(3));
    net.air
        .handle_datagram(
            net.now,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &init,
        )
        .unwrap();
    net.run(Duration::from_secs(11));
    assert_eq!(net.air.remaining_attempts(), Some(3));
    assert!(
        !net.air_events
            .iter()
            .any(|e| matches!(e, Event::PairingRejected { .. })),
        "{:?}",
        net.air_events
    );
    assert!(net.air.is_connected() && net.rc.is_connected());
}

/// By hand, one hop each: the remote's `Init` to the aircraft, its `Response` back (the
/// remote's `Finish`, if any, is left for the caller to poll).
fn init_and_response(net: &mut Net) {
    let (air_addr, rc_addr) = (
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
    );
    let mut buf = vec![0u8; 2048];
    let t = net.rc.poll_transmit(net.now, &mut buf).unwrap();
    net.air
        .handle_datagram(net.now, rc_addr, &buf[..t.len])
        .unwrap();
    let t = net.air.poll_transmit(net.now, &mut buf).unwrap();
    net.rc
        .handle_datagram(net.now, air_addr, &buf[..t.len])
        .unwrap();
}

/// Issue 15, finding 6: the aircraft checks a pairing `Finish`'s KE3 before the X25519 that
/// makes the bond, so 2000 forged `Finish`es (the pending handshake's index, KE3 bytes of
/// the attacker's choosing) cost it no key exchange at all, and the genuine one still
/// pairs.
#[test]
fn forged_pairing_finishes_cost_the_aircraft_no_key_exchange() {
    let (identity, store) = provisioned(1);
    let mut net = Net::new(
        aircraft(identity, store, 2),
        remote(RemoteIdentity::generate(&mut rng(3)), 4),
    );
    let rc_addr = std::net::SocketAddr::from(([10, 0, 0, 2], 47474));
    net.rc
        .pair(
            CODE,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            net.now,
        )
        .unwrap();
    init_and_response(&mut net);
    let mut buf = vec![0u8; 2048];
    let t = net.rc.poll_transmit(net.now, &mut buf).unwrap();
    let finish = buf[..t.len].to_vec();
    assert_eq!(net.air.handshake_crypto_ops(), 1, "the OPAQUE start");
    let mut r = rng(5);
    for _ in 0..2000 {
        let mut forged = finish.clone();
        let ke3_at = forged.len() - 64;
        r.fill_bytes(&mut forged[ke3_at..]);
        assert!(net.air.handle_datagram(net.now, rc_addr, &forged).is_err());
    }
    assert_eq!(net.air.handshake_crypto_ops(), 1, "no X25519 for a forgery");
    assert!(!net.air.is_connected());
    net.air.handle_datagram(net.now, rc_addr, &finish).unwrap();
    assert!(net.run_until(Duration::from_secs(1), |n| n.rc.is_connected()));
    assert_eq!(net.air.handshake_crypto_ops(), 2, "and one for the bond");
}

/// Issue 15, finding 7: a resume the aircraft never confirms (its `Finish` lost for good)
/// leaves the remote with the resumption of the session before it, which the aircraft
/// still holds: the next reconnect is again a one-round-trip resume, not a full session
/// handshake.
#[test]
fn a_resume_that_is_never_confirmed_keeps_the_previous_resumption() {
    let mut net = paired_net();
    let air_addr = std::net::SocketAddr::from(([10, 0, 0, 1], 47474));
    net.rc.connect(air_addr, net.now).unwrap();
    init_and_response(&mut net);
    // The resume's Finish, and everything after it from the remote, is lost until the
    // remote gives the unconfirmed session up.
    net.loss = 1.0;
    let ok = net.run_until(Duration::from_secs(15), |n| {
        n.rc_events.contains(&Event::HandshakeFailed {
            error: HandshakeError::Timeout,
        })
    });
    assert!(ok, "{:?}", net.rc_events);
    net.loss = 0.0;
    let before = net.air.handshake_crypto_ops();
    net.rc.connect(air_addr, net.now).unwrap();
    assert!(net.run_until(Duration::from_secs(2), |n| n.rc.is_connected()));
    assert_eq!(
        net.rc_events.last(),
        Some(&Event::Connected { kind: Kind::Resume }),
        "{:?}",
        net.rc_events
    );
    assert_eq!(
        net.air.handshake_crypto_ops() - before,
        1,
        "a resume's X25519"
    );
}

/// Step the remote and the aircraft by hand: deliver what the remote sends now to the
/// aircraft and back, once each way. Returns the remote's datagrams.
fn exchange_once(air: &mut Link, rc: &mut Link, now: Timestamp, deliver_rc: bool) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    let mut sent = Vec::new();
    while let Some(t) = rc.poll_transmit(now, &mut buf) {
        sent.push(buf[..t.len].to_vec());
        if deliver_rc {
            let _ = air.handle_datagram(now, RC_ADDR, &buf[..t.len]);
        }
    }
    while let Some(t) = air.poll_transmit(now, &mut buf) {
        let _ = rc.handle_datagram(now, AIR_ADDR, &buf[..t.len]);
    }
    sent
}

const RC_ADDR: std::net::SocketAddr = std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
    47474,
);
const AIR_ADDR: std::net::SocketAddr = std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
    47474,
);
const ATTACKER: std::net::SocketAddr = std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 66)),
    4,
);

/// The wall clock of the remotes of the timestamp tests (2026).
const UNIX: u64 = 1_780_000_000;

/// A paired net restarted from its saved identities, whose remote then connected with its
/// bond: the net, and the session `Init` an attacker recorded.
fn bonded_session_recorded() -> (Net, Vec<u8>) {
    let net = paired_net();
    let air_bytes = net.air.aircraft_identity().unwrap().to_bytes();
    let rc_bytes = net.rc.remote_identity().unwrap().to_bytes();
    drop(net);
    let air = aircraft(
        AircraftIdentity::from_bytes(&air_bytes).unwrap(),
        MemoryAttemptStore::new(),
        12,
    );
    let mut rc = remote(RemoteIdentity::from_bytes(&rc_bytes).unwrap(), 14);
    rc.set_wall_clock(Duration::from_secs(UNIX), Timestamp::ZERO);
    let mut net = Net::new(air, rc);
    net.rc.connect(AIR_ADDR, net.now).unwrap();
    assert!(net.run_until(Duration::from_secs(1), |n| n.rc.is_connected()));
    let recorded = net
        .log
        .iter()
        .find(|(up, f)| *up && f[1] == 0x01)
        .map(|(_, f)| f.clone())
        .unwrap();
    (net, recorded)
}

/// SECURITY.md 5.1 finding 3: a session `Init` recorded before the aircraft restarted was
/// answered after it (the replay cache lived in memory and the `Init` carried no time): four
/// X25519, the pilot's pending handshake displaced and its `Finish` refused. Now the `Init`
/// carries a timestamp the aircraft persists per bond: the recording is refused after the
/// restart, before `ee` and `se`, and changes nothing.
#[test]
fn a_session_init_recorded_before_an_aircraft_restart_is_refused_after_it() {
    // A session the attacker records.
    let (net, recorded) = bonded_session_recorded();
    assert!(
        net.air_events.contains(&Event::IdentityChanged),
        "{:?}",
        net.air_events
    );
    // The application persisted the identity on `IdentityChanged`; both ends restart.
    let air_bytes = net.air.aircraft_identity().unwrap().to_bytes();
    let rc_bytes = net.rc.remote_identity().unwrap().to_bytes();
    drop(net);

    let mut air = aircraft(
        AircraftIdentity::from_bytes(&air_bytes).unwrap(),
        MemoryAttemptStore::new(),
        22,
    );
    let mut rc = remote(RemoteIdentity::from_bytes(&rc_bytes).unwrap(), 24);
    // A minute later by the remote's wall clock; both links' own clocks start again at 0.
    let now = Timestamp::ZERO;
    rc.set_wall_clock(Duration::from_secs(UNIX + 60), now);
    // The recording alone, first: refused, nothing sent, two X25519 (Noise reads message 1
    // with es and ss before it can see the timestamp).
    let before = air.handshake_crypto_ops();
    let err = air.handle_datagram(now, ATTACKER, &recorded).unwrap_err();
    assert_eq!(
        err,
        rotorlink::Error::Handshake(rotorlink::handshake::HandshakeError::Replayed)
    );
    let mut buf = vec![0u8; 2048];
    assert!(air.poll_transmit(now, &mut buf).is_none());
    assert_eq!(air.handshake_crypto_ops() - before, 2);
    assert_eq!(air.aircraft_identity().unwrap().to_bytes(), air_bytes);
    let reported = air.poll_event();
    assert!(reported.is_none(), "the replay reported {reported:?}");

    // The pilot connects: Init and Response go through, the Finish is held back...
    rc.connect(AIR_ADDR, now).unwrap();
    exchange_once(&mut air, &mut rc, now, true);
    let held = exchange_once(&mut air, &mut rc, now, false);
    assert_eq!(held.len(), 1, "the Finish");
    assert_eq!(held[0][1], 0x03);
    // ... while the recording is replayed, again and again (the cache makes copies free).
    let before = air.handshake_crypto_ops();
    for _ in 0..300 {
        assert!(air.handle_datagram(now, ATTACKER, &recorded).is_err());
        assert!(air.poll_transmit(now, &mut buf).is_none());
    }
    assert_eq!(air.handshake_crypto_ops(), before, "copies cost nothing");
    // The pilot's Finish still completes the pending handshake.
    air.handle_datagram(now, RC_ADDR, &held[0]).unwrap();
    assert!(air.is_connected());
    exchange_once(&mut air, &mut rc, now, true);
    assert!(rc.is_connected());
}

/// A code change revokes the bonds, but a remote that pairs again keeps its static key, so
/// its bond key is the same as before: its session `Init`s recorded before the change must
/// stay refused, after a restart too (the aircraft keeps revoked remotes' newest timestamps).
#[test]
fn a_remote_that_pairs_again_after_a_code_change_keeps_its_old_inits_refused() {
    // A bonded session the attacker records.
    let (mut net, recorded) = bonded_session_recorded();

    // The owner changes the code; the same remote pairs again with the new one.
    net.air.change_code(b"135790").unwrap();
    net.run(Duration::from_millis(50));
    assert!(net.air.aircraft_identity().unwrap().bonds().is_empty());
    net.air
        .open_pairing_window(Duration::from_secs(60), net.now)
        .unwrap();
    net.rc.pair(b"135790", AIR_ADDR, net.now).unwrap();
    assert!(net.run_until(Duration::from_secs(2), |n| n.rc.is_connected()));
    assert_eq!(net.air.aircraft_identity().unwrap().bonds().len(), 1);

    // The aircraft restarts from its saved identity; the recording is refused.
    let air_bytes = net.air.aircraft_identity().unwrap().to_bytes();
    drop(net);
    let mut air = aircraft(
        AircraftIdentity::from_bytes(&air_bytes).unwrap(),
        MemoryAttemptStore::new(),
        22,
    );
    let err = air
        .handle_datagram(Timestamp::ZERO, ATTACKER, &recorded)
        .unwrap_err();
    assert_eq!(
        err,
        rotorlink::Error::Handshake(rotorlink::handshake::HandshakeError::Replayed)
    );
    let mut buf = vec![0u8; 2048];
    assert!(air.poll_transmit(Timestamp::ZERO, &mut buf).is_none());
}

/// Identities saved before issue 15 (format 1, no timestamps) still load: every bond starts
/// with no timestamp, and the next save is format 2.
#[test]
fn an_identity_of_format_1_loads_with_no_timestamps() {
    let net = paired_net();
    let v2 = net.air.aircraft_identity().unwrap().to_bytes();
    let remote_static = net.rc.remote_identity().unwrap().static_public();
    assert_eq!(v2[0], 2);
    // Format 1 is format 2 without the 12 timestamp bytes after each bond's key and without
    // the retired timestamps (here a count of 0, 4 bytes).
    let mut v1 = v2[..v2.len() - 12 - 4].to_vec();
    v1[0] = 1;
    let id = AircraftIdentity::from_bytes(&v1).unwrap();
    assert_eq!(id.bonds(), &[remote_static]);
    assert_eq!(id.newest_timestamp(remote_static.as_bytes()), Some([0; 12]));
    assert_eq!(id.to_bytes()[..], v2[..]);
    assert!(AircraftIdentity::from_bytes(&v1[..v1.len() - 1]).is_err());
    let mut v3 = v2.to_vec();
    v3[0] = 3;
    assert!(AircraftIdentity::from_bytes(&v3).is_err());
}
