//! Shared pieces of the criterion benchmarks in `benches/` (see BENCHMARKS.md).

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::crypto::{AeadProvider, Secret};
use rotorlink::{Channel, Config, Event, Link, Role, Timestamp};

/// The payload sizes every per-packet bench measures.
pub const SIZES: [usize; 4] = [64, 256, 1400, 8192];

/// A pair of links whose frames can carry 8 KiB, and no key update during the run.
pub fn links<P: AeadProvider>() -> (Link<P>, Link<P>) {
    let config = Config {
        mtu: rotorlink::wire::MAX_DATAGRAM_LEN,
        rekey_after_packets: 1 << 23,
        ..Config::default()
    };
    let s = Secret::new([2; 32]);
    let t = Timestamp::ZERO;
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let air = Link::from_secret(
        Role::Aircraft,
        config.clone(),
        &s,
        &[3; 32],
        1,
        2,
        &mut rng,
        t,
    );
    let rc = Link::from_secret(Role::Remote, config, &s, &[3; 32], 2, 1, &mut rng, t);
    (air.expect("valid config"), rc.expect("valid config"))
}

/// Send one telemetry message through `air` and receive it on `rc`.
pub fn round_trip<P: AeadProvider>(
    air: &mut Link<P>,
    rc: &mut Link<P>,
    payload: &[u8],
    wire: &mut [u8],
) {
    let t = Timestamp::ZERO;
    air.send(Channel::Telemetry, payload)
        .expect("queue has room");
    let tx = air.poll_transmit(t, wire).expect("a frame is due");
    rc.handle_datagram(t, &wire[..tx.len])
        .expect("authentic frame");
    loop {
        match rc.poll_event() {
            Some(Event::Message { data, .. }) => break assert_eq!(data.len(), payload.len()),
            Some(_) => continue,
            None => panic!("frame not delivered"),
        }
    }
}
