//! The storage channel (P8): it stays locked without the code, even for a bonded remote
//! running modified software, and a wrong code never opens it and is counted. An unlock
//! whose key stretching runs outside the link leaves the link flying meanwhile, and a late
//! result opens nothing.
//!
//! The fixtures (the flight, the adversary's model of the receiver and its books, the tape of
//! frames on the air) and what every scenario checks are in `tests/common/adversary.rs`.

mod common;

use rotorlink::handshake::keys::{bond_id, bond_key, keyed_secrets, mac1, prologue};
use rotorlink::handshake::messages::{
    frame, Finish, Init, InitBody, Kind, Response, ResponseBody, MAC1_LEN, MESSAGE1_LEN, SUITE_V2,
};
use rotorlink::handshake::noise::{tai64n, Ephemeral, Keys as NoiseKeys, NoiseHandshake, Pattern};
use rotorlink::handshake::{HandshakeError, RefusalReason, RemoteIdentity};
use rotorlink::wire::{FrameType, HEADER_LEN};
use rotorlink::{Channel, Event, Link, Role, SendError};
use rotorlink_sim::storage::Request;
use rotorlink_sim::{Direction, Recorder};
use x25519_dalek::{PublicKey, StaticSecret};

use common::adversary::*;

/// A session handshake made by hand for the bonded remote whose identity is `remote` (a
/// remote running modified software: it has the bond's keys, not the code), through the
/// air. Returns the remote's end of the session as a `Link` (built from the handshake
/// secret, so it considers its storage open).
fn rogue_session(f: &mut Flight, remote: &RemoteIdentity, seed: u64) -> Link {
    let bytes = remote.to_bytes();
    let s_r = StaticSecret::from(<[u8; 32]>::try_from(&bytes[1..33]).unwrap());
    let s_a = remote.bond().unwrap().aircraft_static;
    let index = 0x0bad_cafe;
    let key = bond_key(&s_r.diffie_hellman(&s_a));
    let body = InitBody::Session {
        bond_id: bond_id(&PublicKey::from(&s_r)),
        message: [0; MESSAGE1_LEN],
    };
    let init = Init {
        suite: SUITE_V2,
        sender_index: index,
        body,
        mac1: [0; MAC1_LEN],
    };
    let mut init_frame = frame(FrameType::HandshakeInit, 0, &init.emit());
    let offset = HEADER_LEN + init.noise_offset();
    let mut noise = NoiseHandshake::initiator(
        Pattern::KKpsk0,
        &prologue(b"rotorlink v1 session prologue", &init_frame[..offset]),
        &NoiseKeys {
            psk: key.expose(),
            local_static: Some(&s_r),
            remote_static: Some(&s_a),
        },
        Ephemeral::from_bytes([0x71; 32]),
    )
    .unwrap();
    // Its own clock: any time later than the pilot's last session.
    let m1 = noise.write_message(&tai64n(u64::MAX / 2)).unwrap();
    init_frame[offset..offset + MESSAGE1_LEN].copy_from_slice(&m1);
    let split = init_frame.len() - MAC1_LEN;
    let tag = mac1(&LINK_ID, key.expose(), &init_frame[..split]);
    init_frame[split..].copy_from_slice(&tag);
    let init = init_frame;
    let recorder = Recorder::new();
    f.pair.set_adversary(Box::new(recorder.clone()));
    f.pair.inject(Direction::Uplink, init.clone(), f.pair.now());
    f.settle(ms(20));
    let response = recorder
        .datagrams(Direction::Downlink)
        .into_iter()
        .find(|d| d[1] == FrameType::HandshakeResponse as u8 && receiver_index(d) == index)
        .expect("the aircraft answered the bonded remote");
    let parsed = Response::parse(&response[HEADER_LEN..]).unwrap();
    let ResponseBody::Keyed { message, .. } = parsed.body else {
        panic!("not a session response");
    };
    let aircraft_index = u32::from_be_bytes(
        noise.read_message(&message).unwrap()[..]
            .try_into()
            .unwrap(),
    );
    let out = noise.finish().unwrap();
    let s = keyed_secrets(b"rotorlink v1 session", &out, &init, &response);
    let finish = frame(
        FrameType::HandshakeFinish,
        aircraft_index,
        &Finish::Keyed {
            kind: Kind::Session,
            confirm: s.confirm_remote,
        }
        .emit(),
    );
    let th = s.transcript_hash;
    let link = Link::from_secret(
        Role::Remote,
        f.pair.remote.config().clone(),
        &s.handshake_secret,
        &th,
        index,
        aircraft_index,
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        &mut rng(seed),
        f.pair.now(),
    )
    .unwrap();
    f.pair.inject(Direction::Uplink, finish, f.pair.now());
    f.pair.take_adversary();
    link
}

/// A bonded remote running modified software (it has the bond, not the code) opens a
/// session and sends storage requests anyway, retransmitting them. The aircraft, whose
/// storage is locked in that session, drops every one (`StorageLocked`, counted), never
/// acknowledges or delivers one, never answers with the log; the remote may still fly.
#[test]
fn storage_stays_locked_without_the_code_even_for_a_bonded_remote() {
    let mut f = Flight::pairing_with(config(), 39, WRONG);
    f.fly(ms(500));
    assert!(f.pair.remote.is_connected() && !f.pair.remote.storage_unlocked());
    let identity = f.pair.remote.remote_identity().unwrap().clone();
    let mut rogue = rogue_session(&mut f, &identity, 40);
    rogue
        .send(Channel::Storage, &Request::List.encode())
        .unwrap();
    rogue.send(Channel::Storage, b"PUT /config").unwrap();
    f.pair.remote = rogue;
    let recorder = Recorder::new();
    f.pair.set_adversary(Box::new(recorder.clone()));
    let before = Drops::of(f.pair.aircraft.stats());
    let sticks_before = f
        .pair
        .aircraft
        .stats()
        .channel(Channel::Control)
        .messages_delivered;
    for i in 0..100u32 {
        f.pair
            .remote
            .send(Channel::Control, &i.to_be_bytes())
            .unwrap();
        f.fly(ms(20));
    }
    let a = f.pair.aircraft.stats();
    let drops = Drops::of(a).since(before);
    let storage_sent = f.pair.remote.stats().channel(Channel::Storage).frames_sent;
    assert!(storage_sent >= 4, "the rogue retransmitted: {storage_sent}");
    assert_eq!(drops.storage_locked, storage_sent);
    assert_eq!(drops.total(), drops.storage_locked, "{drops:?}");
    assert_eq!(a.channel(Channel::Storage).messages_delivered, 0);
    assert_eq!(f.aircraft.stats.storage_requests, 0);
    let storage_acks = recorder
        .datagrams(Direction::Downlink)
        .iter()
        .filter(|d| d[1] == FrameType::Ack as u8 && d[3] == Channel::Storage as u8)
        .count();
    assert_eq!(storage_acks, 0, "nothing acknowledged");
    assert!(!f.pair.aircraft.storage_unlocked());
    assert_eq!(
        f.pair.aircraft.send(Channel::Storage, b"log"),
        Err(SendError::StorageLocked)
    );
    // It may fly: bonded remotes are trusted with the sticks.
    let sticks = f
        .pair
        .aircraft
        .stats()
        .channel(Channel::Control)
        .messages_delivered;
    assert!(sticks >= sticks_before + 100, "{sticks}");
}

/// The pilot, bonded and flying, types a wrong code to open storage. The unlock fails
/// on both sides and is counted (`unlock_failures`, one attempt of this bond's unlock
/// budget, none of the pairing budget); storage stays locked, no log is sent; flying is
/// unaffected. Wrong codes again: the back-off refuses, then the bond's lockout, which then
/// refuses the right code too.
#[test]
fn a_wrong_code_never_opens_storage_and_is_counted() {
    let config = guarded_config();
    let mut f = Flight::pairing_with(config, 41, WRONG);
    f.fly(ms(1500));
    f.settle(ms(100));
    assert!(f.pair.remote.is_connected());
    let a = f.pair.aircraft.stats();
    assert_eq!(a.unlock_failures, 1);
    assert_eq!(
        f.pair.aircraft.handshake_crypto_ops(),
        3,
        "pairing (OPAQUE, the bond's X25519) + one unlock"
    );
    assert_eq!(f.pair.aircraft.remaining_unlocks(), Some(2));
    assert_eq!(
        f.pair.aircraft.remaining_attempts(),
        Some(3),
        "pairing's untouched"
    );
    for side in [Role::Aircraft, Role::Remote] {
        assert_eq!(
            f.count(side, |e| matches!(
                e,
                Event::StorageUnlockRejected {
                    remaining_attempts: 2
                }
            )),
            1,
            "{side:?}"
        );
    }
    assert!(!f.pair.remote.storage_unlocked() && !f.pair.aircraft.storage_unlocked());
    assert_eq!(a.channel(Channel::Storage).messages_sent, 0);
    assert_eq!(f.remote.stats.download.received, 0);
    assert_eq!(
        f.pair
            .remote
            .send(Channel::Storage, &Request::List.encode()),
        Err(SendError::StorageLocked)
    );
    assert_eq!(undelivered(&f.pair), [0, 0, 0]);

    // More wrong codes, as fast as the pilot can type them.
    for _ in 0..40 {
        f.pair.remote.unlock_storage(WRONG, f.pair.now()).unwrap();
        f.fly(ms(25));
    }
    assert_eq!(f.pair.aircraft.stats().unlock_failures, 3);
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 5);
    assert_eq!(f.pair.aircraft.remaining_unlocks(), Some(0));
    assert_eq!(f.pair.aircraft.remaining_attempts(), Some(3));
    let refused = |reason| {
        f.count(
            Role::Remote,
            |e| matches!(e, Event::HandshakeRefused { reason: r, .. } if *r == reason),
        )
    };
    assert!(refused(RefusalReason::BackOff) >= 5);
    assert!(refused(RefusalReason::LockedOut) >= 5);
    f.pair.remote.unlock_storage(CODE, f.pair.now()).unwrap();
    f.fly(ms(100));
    assert!(
        !f.pair.remote.storage_unlocked(),
        "locked out: the right code waits too"
    );
    assert_eq!(f.pair.aircraft.handshake_crypto_ops(), 5);
}

/// Pair, then leave the remote's key stretching to the test: the unlock's, which starts on
/// `Connected` and waits for a round trip.
fn defer_once_paired(f: &mut Flight) {
    assert!(
        f.fly_until(ms(1000), |f| f.pair.remote.is_connected()),
        "paired"
    );
    f.pair.remote.set_defer_key_stretching(true);
}

/// A remote that runs the unlock's key stretching outside the link
/// (`Link::set_defer_key_stretching`, as the tokio adapter does on a blocking thread): while
/// the stretching waits, the link flies on (the pilot's stick commands and the telemetry
/// arrive as before), and once its result is handed back the storage opens on both ends.
/// Inside `handle_datagram` the stretching (Argon2id, tens to hundreds of milliseconds)
/// held every frame of the link.
#[test]
fn an_unlock_whose_key_stretching_runs_outside_the_link_leaves_the_link_flying() {
    let mut f = Flight::pairing(config(), 43);
    defer_once_paired(&mut f);
    f.fly(ms(1500));
    assert!(f.pair.remote.is_connected());
    assert_eq!(
        f.count(Role::Remote, |e| matches!(e, Event::KeyStretchReady)),
        1
    );
    assert!(!f.pair.remote.storage_unlocked() && !f.pair.aircraft.storage_unlocked());

    // The stretching is held for a second: the link carries on.
    let before = traffic(&f.pair);
    f.fly(ms(1000));
    let after = traffic(&f.pair);
    let sticks = after[0].1 - before[0].1;
    assert!(
        sticks >= 95,
        "stick commands (100 a second) delivered: {sticks}"
    );
    let telemetry = (after[1].0 - before[1].0, after[1].1 - before[1].1);
    assert!(
        telemetry.0 >= 45 && telemetry.1 + 2 >= telemetry.0,
        "telemetry (sent, delivered) in the second: {telemetry:?}"
    );
    assert!(!f.pair.remote.storage_unlocked());

    let job = f
        .pair
        .remote
        .poll_key_stretch()
        .expect("the stretching waits");
    assert!(f.pair.remote.poll_key_stretch().is_none(), "taken once");
    let now = f.pair.now();
    f.pair.remote.handle_key_stretched(now, job.run());
    f.fly(ms(200));
    f.settle(ms(100));
    assert!(f.pair.remote.storage_unlocked() && f.pair.aircraft.storage_unlocked());
    for side in [Role::Aircraft, Role::Remote] {
        assert_eq!(
            f.count(side, |e| matches!(e, Event::StorageUnlocked)),
            1,
            "{side:?}"
        );
    }
    assert_eq!(f.pair.aircraft.stats().unlock_failures, 0);
    assert_eq!(undelivered(&f.pair), [0, 0, 0]);
}

/// A stretching's result that comes back after its unlock was given up (the handshake
/// timeout) sends nothing and opens nothing: the remote's next unlock starts afresh.
#[test]
fn a_key_stretching_result_for_an_unlock_given_up_opens_nothing() {
    let mut config = config();
    config.handshake.timeout = ms(2000);
    let mut f = Flight::pairing(config, 44);
    defer_once_paired(&mut f);
    f.fly(ms(1500));
    let stale = f
        .pair
        .remote
        .poll_key_stretch()
        .expect("the stretching waits");
    f.fly(ms(2500));
    assert_eq!(
        f.count(Role::Remote, |e| matches!(
            e,
            Event::HandshakeFailed {
                error: HandshakeError::Timeout
            }
        )),
        1
    );
    // The aircraft still waits for that unlock's finish: had it gone out, the aircraft
    // would open its storage to a remote that reported the unlock failed.
    let now = f.pair.now();
    f.pair.remote.handle_key_stretched(now, stale.run());
    f.fly(ms(200));
    assert!(!f.pair.remote.storage_unlocked() && !f.pair.aircraft.storage_unlocked());
    assert_eq!(
        f.count(Role::Aircraft, |e| matches!(e, Event::StorageUnlocked)),
        0
    );
    assert_eq!(f.pair.aircraft.stats().unlock_failures, 0);
}
