//! Shared pieces of the criterion benchmarks in `benches/` (see BENCHMARKS.md).

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::crypto::{AeadProvider, Secret};
use rotorlink::{Channel, Config, Event, Link, Role, Timestamp};

/// The payload sizes every per-packet bench measures.
pub const SIZES: [usize; 4] = [64, 256, 1400, 8192];

/// A pair of links whose frames can carry 8 KiB.
pub fn links<P: AeadProvider>() -> (Link<P>, Link<P>) {
    let config = Config {
        mtu: rotorlink::wire::MAX_DATAGRAM_LEN,
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
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
        &mut rng,
        t,
    );
    let rc = Link::from_secret(
        Role::Remote,
        config,
        &s,
        &[3; 32],
        2,
        1,
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        &mut rng,
        t,
    );
    (air.expect("valid config"), rc.expect("valid config"))
}

/// Send one telemetry message through `air` and receive it on `rc`; whatever `rc` has to
/// send back (a key update answer, now and then) goes back to `air`, so that key updates
/// run as they would in a real session.
pub fn round_trip<P: AeadProvider>(
    air: &mut Link<P>,
    rc: &mut Link<P>,
    payload: &[u8],
    wire: &mut [u8],
) {
    let t = Timestamp::ZERO;
    air.send(Channel::Telemetry, payload)
        .expect("queue has room");
    while let Some(tx) = air.poll_transmit(t, wire) {
        rc.handle_datagram(
            t,
            std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
            &wire[..tx.len],
        )
        .expect("authentic frame");
    }
    while let Some(back) = rc.poll_transmit(t, wire) {
        air.handle_datagram(
            t,
            std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
            &wire[..back.len],
        )
        .expect("authentic frame");
    }
    // The aircraft's events are key update notices only.
    while air.poll_event().is_some() {}
    let mut delivered = 0;
    while let Some(event) = rc.poll_event() {
        if let Event::Message { data, .. } = event {
            assert_eq!(data.len(), payload.len());
            delivered += 1;
        }
    }
    assert_eq!(delivered, 1, "frame not delivered");
}

/// As [`round_trip`], without a copy: the `len`-byte message lies in the datagram buffer
/// at `PAYLOAD_OFFSET`, where the application wrote it (that write is not timed, as the
/// raw AEAD's plaintext is not), is sealed there (`send_in_place`) and opened there
/// (`handle_datagram_in_place`), where the receiver reads it. Whatever else either end has
/// to send (feedback, a key update answer) goes through the same in-place receive.
pub fn round_trip_in_place<P: AeadProvider>(
    air: &mut Link<P>,
    rc: &mut Link<P>,
    len: usize,
    wire: &mut [u8],
) {
    let t = Timestamp::ZERO;
    let to_rc = std::net::SocketAddr::from(([10, 0, 0, 1], 47474));
    let to_air = std::net::SocketAddr::from(([10, 0, 0, 2], 47474));
    let mut delivered = 0;
    let mut check = |got: Option<rotorlink::InPlace>| {
        if let Some(m) = got {
            assert_eq!(m.range.len(), len);
            delivered += 1;
        }
    };
    match air
        .send_in_place(t, Channel::Telemetry, wire, len)
        .expect("telemetry may go")
    {
        Some(tx) => check(
            rc.handle_datagram_in_place(t, to_rc, &mut wire[..tx.len])
                .expect("authentic frame"),
        ),
        // Something went first (a key update): everything through `poll_transmit`.
        None => {
            while let Some(tx) = air.poll_transmit(t, wire) {
                check(
                    rc.handle_datagram_in_place(t, to_rc, &mut wire[..tx.len])
                        .expect("authentic frame"),
                );
            }
        }
    }
    while let Some(back) = rc.poll_transmit(t, wire) {
        air.handle_datagram_in_place(t, to_air, &mut wire[..back.len])
            .expect("authentic frame");
    }
    while air.poll_event().is_some() {}
    while rc.poll_event().is_some() {}
    assert_eq!(delivered, 1, "frame not delivered");
}
