use super::*;
use crate::crypto::{traffic_secrets, RustCrypto};
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
        counter: 0,
        payload_len: 0,
    }
}

fn seal(tx: &mut SendKeys<RustCrypto>, now: Timestamp, config: &Config, msg: &[u8]) -> Vec<u8> {
    let mut frame = std::vec![0u8; HEADER_LEN + msg.len() + TAG_LEN];
    frame[HEADER_LEN..HEADER_LEN + msg.len()].copy_from_slice(msg);
    tx.seal(now, config, header(), &mut frame).unwrap();
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
    rx.open(now, config, &h, &mut buf)?;
    Ok(buf[HEADER_LEN..buf.len() - TAG_LEN].to_vec())
}

#[test]
fn sealed_frames_open_once_and_in_any_order() {
    let config = Config::default();
    let (mut tx, mut rx) = pair(&config);
    let frames: Vec<_> = (0..10u8)
        .map(|i| seal(&mut tx, Timestamp::ZERO, &config, &[i; 5]))
        .collect();
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
fn a_forged_frame_changes_nothing() {
    let config = Config::default();
    let (mut tx, mut rx) = pair(&config);
    let good = seal(&mut tx, Timestamp::ZERO, &config, b"hello");
    // Same counter, far-future counter, flipped phase: none verify, none moves the window.
    let mut forged = good.clone();
    forged[HEADER_LEN] ^= 1;
    assert_eq!(
        open(&mut rx, Timestamp::ZERO, &config, &forged),
        Err(Error::DecryptFailed)
    );
    let mut future = good.clone();
    future[8..16].copy_from_slice(&1_000_000u64.to_be_bytes());
    assert_eq!(
        open(&mut rx, Timestamp::ZERO, &config, &future),
        Err(Error::DecryptFailed)
    );
    let mut phase = good.clone();
    phase[2] ^= 1;
    assert_eq!(
        open(&mut rx, Timestamp::ZERO, &config, &phase),
        Err(Error::DecryptFailed)
    );
    assert_eq!(rx.generation(), 0);
    assert_eq!(
        open(&mut rx, Timestamp::ZERO, &config, &good).unwrap(),
        b"hello"
    );
}

#[test]
fn rotation_is_followed_and_the_previous_key_has_a_grace_period() {
    let config = Config {
        rekey_after_packets: 4,
        ..Config::default()
    };
    let (mut tx, mut rx) = pair(&config);
    let t0 = Timestamp::ZERO;
    let frames: Vec<_> = (0..12u8)
        .map(|i| seal(&mut tx, t0, &config, &[i]))
        .collect();
    // Phases: 0-3 phase 0, 4-7 phase 1, 8-11 phase 0 (generation 2).
    assert_eq!(frames[4][2] & 1, 1);
    assert_eq!(frames[8][2] & 1, 0);
    // Deliver 5 (next phase) before 3 and 4: 3 must still open with the previous key,
    // 4 with the current one although it is below the first counter seen.
    for i in [0usize, 1, 2, 5, 3, 4, 6, 7] {
        assert_eq!(
            open(&mut rx, t0, &config, &frames[i]).unwrap(),
            [i as u8],
            "frame {i}"
        );
    }
    assert_eq!(rx.generation(), 1);
    // Past the grace period, a late frame of the previous phase is refused.
    let late = t0 + config.previous_key_grace + Duration::from_millis(1);
    assert_eq!(open(&mut rx, late, &config, &frames[9]).unwrap(), [9]);
    assert_eq!(rx.generation(), 2);
    assert_eq!(open(&mut rx, late, &config, &frames[8]).unwrap(), [8]);
    let after = late + config.previous_key_grace + Duration::from_millis(1);
    assert_eq!(open(&mut rx, after, &config, &frames[10]).unwrap(), [10]);
}

#[test]
fn time_and_byte_limits_rotate_the_send_key() {
    let config = Config {
        rekey_after_bytes: 10,
        rekey_after_time: Duration::from_secs(1),
        ..Config::default()
    };
    let (mut tx, mut rx) = pair(&config);
    let t0 = Timestamp::ZERO;
    let f0 = seal(&mut tx, t0, &config, &[0; 10]);
    let f1 = seal(&mut tx, t0, &config, &[1; 3]); // 10 bytes done: rotates first
    assert_ne!(f0[2] & 1, f1[2] & 1);
    let t1 = t0 + Duration::from_secs(1);
    let f2 = seal(&mut tx, t1, &config, &[2; 3]); // a second later: rotates again
    assert_ne!(f1[2] & 1, f2[2] & 1);
    for (i, f) in [f0, f1, f2].iter().enumerate() {
        assert_eq!(open(&mut rx, t1, &config, f).unwrap()[0], i as u8);
    }
    assert_eq!(rx.generation(), 2);
}

#[test]
fn the_hard_limits_refuse_rather_than_reuse() {
    let config = Config {
        counter_limit: 3,
        ..Config::default()
    };
    let (mut tx, _) = pair(&config);
    for _ in 0..3 {
        seal(&mut tx, Timestamp::ZERO, &config, b"x");
    }
    let mut frame = std::vec![0u8; HEADER_LEN + 1 + TAG_LEN];
    assert_eq!(
        tx.seal(Timestamp::ZERO, &config, header(), &mut frame),
        Err(Error::CounterExhausted)
    );
    assert_eq!(tx.next_counter(), 3);

    // A receiver refuses a key used past reject_after_packets or reject_after_time.
    let config = Config {
        reject_after_packets: 2,
        rekey_after_packets: 2,
        ..Config::default()
    };
    let (_, mut rx) = pair(&config);
    let mut rogue = SendKeys::<RustCrypto>::new(
        traffic_secrets(&Secret::new([9; 32]), &[1; 32]).aircraft_to_remote,
        Timestamp::ZERO,
    );
    // A sender that ignores the rekey limit (config without it).
    let lax = Config::default();
    let frames: Vec<_> = (0..3)
        .map(|_| seal(&mut rogue, Timestamp::ZERO, &lax, b"x"))
        .collect();
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
