use super::*;
use crate::crypto::{traffic_secrets, updated_traffic_secret, RustCrypto};
use crate::wire::{Channel, FrameType};
use core::time::Duration;
use replay::ReplayError;
extern crate std;
use std::vec::Vec;

fn pair(config: &Config) -> (SendKeys<RustCrypto>, RecvKeys<RustCrypto>) {
    let s = traffic_secrets(&Secret::new([9; 32]), &[1; 32]);
    (
        SendKeys::new(s.aircraft_to_remote.clone(), Timestamp::ZERO),
        RecvKeys::new(s.aircraft_to_remote, Timestamp::ZERO, config),
    )
}

fn header() -> Header {
    Header {
        frame_type: FrameType::Data,
        key_phase: false,
        channel: Some(Channel::Telemetry),
        receiver_index: 7,
        packet_number: 0,
    }
}

fn seal(tx: &mut SendKeys<RustCrypto>, config: &Config, msg: &[u8]) -> Vec<u8> {
    let mut frame = std::vec![0u8; HEADER_LEN + msg.len() + TAG_LEN];
    frame[HEADER_LEN..HEADER_LEN + msg.len()].copy_from_slice(msg);
    tx.seal(config, header(), &mut frame).unwrap();
    frame
}

fn open(
    rx: &mut RecvKeys<RustCrypto>,
    now: Timestamp,
    config: &Config,
    frame: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut buf = frame.to_vec();
    let h = Header::parse(&crate::wire::Frame::new_checked(&buf[..]).unwrap()).unwrap();
    let counter = rx.counter_of(h.packet_number);
    rx.open(now, config, &h, counter, &mut buf)?;
    Ok(buf[HEADER_LEN..buf.len() - TAG_LEN].to_vec())
}

/// Both ends of one direction move to the secret a key update produced.
fn update(tx: &mut SendKeys<RustCrypto>, rx: &mut RecvKeys<RustCrypto>, dh: u8, now: Timestamp) {
    let next = updated_traffic_secret(tx.secret(), &[dh; 32]);
    assert_eq!(&next, &updated_traffic_secret(rx.secret(), &[dh; 32]));
    rx.set_next(next.clone());
    tx.rotate_to(next, now);
}

#[test]
fn sealed_frames_open_once_and_in_any_order() {
    let config = Config::default();
    let (mut tx, mut rx) = pair(&config);
    let frames: Vec<_> = (0..10u8).map(|i| seal(&mut tx, &config, &[i; 5])).collect();
    for i in [3usize, 0, 9, 1, 2, 8, 4, 5, 7, 6] {
        assert_eq!(
            open(&mut rx, Timestamp::ZERO, &config, &frames[i]).unwrap(),
            [i as u8; 5]
        );
    }
    for f in &frames {
        assert_eq!(
            open(&mut rx, Timestamp::ZERO, &config, f),
            Err(Error::Replayed(ReplayError::Duplicate))
        );
    }
}

#[test]
fn counters_beyond_32_bits_are_recovered_from_their_packet_numbers() {
    // A sender about to carry its counter past 2^32: the packet number wraps to 0, the
    // receiver's counter does not, and each frame opens under its own nonce once.
    let config = Config::default();
    let (mut tx, mut rx) = pair(&config);
    tx.next_counter = (1 << 32) - 3;
    let frames: Vec<_> = (0..6u8).map(|i| seal(&mut tx, &config, &[i; 3])).collect();
    assert_eq!(&frames[3][8..12], &[0, 0, 0, 0]);
    for i in [1usize, 0, 3, 2, 5, 4] {
        assert_eq!(
            open(&mut rx, Timestamp::ZERO, &config, &frames[i]).unwrap(),
            [i as u8; 3]
        );
    }
    assert_eq!(rx.counter_of(2), (1 << 32) + 2);
    for f in &frames {
        assert_eq!(
            open(&mut rx, Timestamp::ZERO, &config, f),
            Err(Error::Replayed(ReplayError::Duplicate))
        );
    }
}

#[test]
fn a_forged_frame_changes_nothing() {
    let config = Config::default();
    let (mut tx, mut rx) = pair(&config);
    let good = seal(&mut tx, &config, b"hello");
    // Same counter, far-future counter, flipped phase: none verify, none moves the window.
    let mut forged = good.clone();
    forged[HEADER_LEN] ^= 1;
    let t = Timestamp::ZERO;
    assert_eq!(
        open(&mut rx, t, &config, &forged),
        Err(Error::DecryptFailed)
    );
    let mut future = good.clone();
    future[8..12].copy_from_slice(&1_000_000u32.to_be_bytes());
    assert_eq!(
        open(&mut rx, t, &config, &future),
        Err(Error::DecryptFailed)
    );
    let mut phase = good.clone();
    phase[2] ^= 1;
    assert_eq!(open(&mut rx, t, &config, &phase), Err(Error::DecryptFailed));
    assert_eq!(rx.generation(), 0);
    assert_eq!(open(&mut rx, t, &config, &good).unwrap(), b"hello");
}

#[test]
fn rotation_is_followed_and_the_previous_key_has_a_grace_period() {
    let config = Config::default();
    let t0 = Timestamp::ZERO;
    let (mut tx, mut rx) = pair(&config);
    let mut frames = Vec::new();
    for i in 0..8u8 {
        if i == 4 {
            update(&mut tx, &mut rx, 4, t0);
        }
        frames.push(seal(&mut tx, &config, &[i]));
    }
    assert_eq!(frames[4][2] & 1, 1);
    // Deliver 5 (next phase) before 3 and 4: 3 still opens with the previous key, 4 with the
    // current one although it is below the first counter seen.
    for i in [0usize, 1, 2, 5, 3, 4, 6, 7] {
        assert_eq!(
            open(&mut rx, t0, &config, &frames[i]).unwrap(),
            [i as u8],
            "frame {i}"
        );
    }
    assert_eq!(rx.generation(), 1);
    // A late frame of the previous phase after the grace period is refused.
    let (mut tx, mut rx) = pair(&config);
    let old = seal(&mut tx, &config, b"old");
    update(&mut tx, &mut rx, 1, t0);
    let new = seal(&mut tx, &config, b"new");
    assert_eq!(open(&mut rx, t0, &config, &new).unwrap(), b"new");
    let late = t0 + config.previous_key_grace;
    assert_eq!(open(&mut rx, late, &config, &old), Err(Error::KeyExpired));
}

#[test]
fn rekey_becomes_due_by_packets_bytes_or_time() {
    let t0 = Timestamp::ZERO;
    let by_packets = Config {
        rekey_after_packets: 3,
        ..Config::default()
    };
    let (mut tx, _) = pair(&by_packets);
    for _ in 0..2 {
        seal(&mut tx, &by_packets, b"x");
    }
    assert!(!tx.rekey_due(t0, &by_packets));
    seal(&mut tx, &by_packets, b"x");
    assert!(tx.rekey_due(t0, &by_packets));
    tx.rotate_to(Secret::new([1; 32]), t0);
    assert!(!tx.rekey_due(t0, &by_packets));
    assert_eq!(tx.generation(), 1);

    let by_bytes = Config {
        rekey_after_bytes: 10,
        ..Config::default()
    };
    let (mut tx, _) = pair(&by_bytes);
    seal(&mut tx, &by_bytes, &[0; 9]);
    assert!(!tx.rekey_due(t0, &by_bytes));
    seal(&mut tx, &by_bytes, &[0; 1]);
    assert!(tx.rekey_due(t0, &by_bytes));

    let config = Config::default();
    let (tx, _) = pair(&config);
    assert!(!tx.rekey_due(
        t0 + config.rekey_after_time - Duration::from_micros(1),
        &config
    ));
    assert!(tx.rekey_due(t0 + config.rekey_after_time, &config));
    assert!(!tx.expired(t0 + config.rekey_after_time, &config));
    assert!(tx.expired(t0 + config.reject_after_time, &config));
}

#[test]
fn the_hard_limits_refuse_rather_than_reuse() {
    let config = Config {
        counter_limit: 3,
        ..Config::default()
    };
    let (mut tx, _) = pair(&config);
    for _ in 0..3 {
        seal(&mut tx, &config, b"x");
    }
    let mut frame = std::vec![0u8; HEADER_LEN + 1 + TAG_LEN];
    assert_eq!(
        tx.seal(&config, header(), &mut frame),
        Err(crate::session::SealError::CounterExhausted)
    );
    assert_eq!(tx.next_counter(), 3);

    // A receiver refuses a key used past reject_after_packets or reject_after_time.
    let config = Config {
        reject_after_packets: 2,
        rekey_after_packets: 2,
        ..Config::default()
    };
    let (mut tx, mut rx) = pair(&config);
    let frames: Vec<_> = (0..3).map(|_| seal(&mut tx, &config, b"x")).collect();
    assert!(tx.expired(Timestamp::ZERO, &config));
    assert!(open(&mut rx, Timestamp::ZERO, &config, &frames[0]).is_ok());
    assert!(open(&mut rx, Timestamp::ZERO, &config, &frames[1]).is_ok());
    assert_eq!(
        open(&mut rx, Timestamp::ZERO, &config, &frames[2]),
        Err(Error::KeyExpired)
    );
    let (_, mut rx) = pair(&config);
    let old = Timestamp::ZERO + config.reject_after_time;
    assert_eq!(
        open(&mut rx, old, &config, &frames[0]),
        Err(Error::KeyExpired)
    );
}
