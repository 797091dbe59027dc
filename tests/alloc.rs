//! The steady-state data path allocates nothing: a counting global allocator watches a link
//! send and receive frames on every channel after a warm-up, and control and telemetry
//! sealed and opened in place.
#![allow(unsafe_code)] // implementing GlobalAlloc is unsafe by definition; this file only counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::{Channel, Config, Event, Link, Role, Secret, Timestamp};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One round: the remote sends control and a storage request, the aircraft telemetry, a
/// video frame and a storage reply; everything is delivered, acknowledged and consumed.
fn round(
    air: &mut Link,
    rc: &mut Link,
    now: &mut Timestamp,
    buf: &mut [u8],
    video: &[u8],
) -> usize {
    let mut delivered = 0;
    rc.send(Channel::Control, &[1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    rc.send(Channel::Storage, b"GET /log").unwrap();
    air.send(Channel::Telemetry, &[9; 60]).unwrap();
    air.send(Channel::Video, video).unwrap();
    air.send(Channel::Storage, &[7; 3000]).unwrap();
    // The pacer spreads the aircraft's ~23 KB over a few milliseconds: step 1 ms at a time
    // until all five messages are through.
    for _ in 0..40 {
        *now = *now + std::time::Duration::from_millis(1);
        let now = *now;
        while let Some(t) = rc.poll_transmit(now, buf) {
            air.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
                &buf[..t.len],
            )
            .unwrap();
        }
        while let Some(t) = air.poll_transmit(now, buf) {
            rc.handle_datagram(
                now,
                std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
                &buf[..t.len],
            )
            .unwrap();
        }
        for link in [&mut *air, &mut *rc] {
            while let Some(ev) = link.poll_event() {
                if let Event::Message { data, .. } = ev {
                    delivered += data.len().min(1);
                    // Handing the buffer back keeps the data path free of allocations.
                    link.recycle(data);
                }
            }
        }
        if delivered == 5 {
            break;
        }
    }
    delivered
}

/// Telemetry from the aircraft and control from the remote, sealed and opened in the
/// datagram buffer (`send_in_place`, `handle_datagram_in_place`): the messages read where
/// they lie. Returns how many arrived (2).
fn in_place_round(air: &mut Link, rc: &mut Link, now: &mut Timestamp, buf: &mut [u8]) -> usize {
    *now = *now + std::time::Duration::from_millis(1);
    in_place_one(air, rc, *now, buf, Channel::Telemetry, [10, 0, 0, 1])
        + in_place_one(rc, air, *now, buf, Channel::Control, [10, 0, 0, 2])
}

/// One `channel` message from `from` to `to` (which sees it come from `addr`), and whatever
/// `from` had to send before it.
fn in_place_one(
    from: &mut Link,
    to: &mut Link,
    now: Timestamp,
    buf: &mut [u8],
    channel: Channel,
    addr: [u8; 4],
) -> usize {
    let addr = std::net::SocketAddr::from((addr, 47474));
    let mark = channel as u8;
    buf[rotorlink::PAYLOAD_OFFSET..][..48].fill(mark);
    // Feedback or an ack may be due first: then the message is queued behind it.
    let mut next = from
        .send_in_place(now, channel, buf, 48)
        .unwrap()
        .map(|t| t.len);
    let mut delivered = 0;
    while let Some(len) = next
        .take()
        .or_else(|| from.poll_transmit(now, buf).map(|t| t.len))
    {
        if let Some(m) = to
            .handle_datagram_in_place(now, addr, &mut buf[..len])
            .unwrap()
        {
            assert!(buf[m.range].iter().all(|&b| b == mark));
            delivered += 1;
        }
    }
    delivered
}

#[test]
fn steady_state_send_and_receive_allocate_nothing() {
    let s = Secret::new([1; 32]);
    let t0 = Timestamp::ZERO;
    let cfg = Config::default();
    let mut air: Link = Link::from_secret(
        Role::Aircraft,
        cfg.clone(),
        &s,
        &[2; 32],
        1,
        2,
        std::net::SocketAddr::from(([10, 0, 0, 2], 47474)),
        &mut ChaCha20Rng::seed_from_u64(101),
        t0,
    )
    .unwrap();
    let mut rc: Link = Link::from_secret(
        Role::Remote,
        cfg,
        &s,
        &[2; 32],
        2,
        1,
        std::net::SocketAddr::from(([10, 0, 0, 1], 47474)),
        &mut ChaCha20Rng::seed_from_u64(102),
        t0,
    )
    .unwrap();
    let mut buf = vec![0u8; 1500];
    let video = vec![0xab; 20_000];
    let mut now = t0;
    // Steady state: 300 ms of rounds, past the 80 ms (and two round trips) for which a
    // storage receiver keeps the segments it delivered, for repair frames (PROTOCOL.md 12.4),
    // so that the kept ones have started to cycle through their own buffers.
    for _ in 0..150 {
        assert_eq!(round(&mut air, &mut rc, &mut now, &mut buf, &video), 5);
        assert_eq!(in_place_round(&mut air, &mut rc, &mut now, &mut buf), 2);
    }
    eprintln!(
        "NOW {:?} est {:?} {:?} held {} {}",
        now,
        air.path_estimate().srtt,
        rc.path_estimate().srtt,
        air.reassembly_bytes(),
        rc.reassembly_bytes()
    );
    // The counter itself works: a deliberate allocation is seen.
    COUNTING.store(true, Ordering::SeqCst);
    drop(std::hint::black_box(Box::new([0u8; 64])));
    assert_eq!(ALLOCATIONS.swap(0, Ordering::SeqCst), 1);
    let (mut delivered, mut in_place) = (0, 0);
    for _ in 0..500 {
        delivered += round(&mut air, &mut rc, &mut now, &mut buf, &video);
        in_place += in_place_round(&mut air, &mut rc, &mut now, &mut buf);
    }
    COUNTING.store(false, Ordering::SeqCst);
    eprintln!(
        "END {:?} held {} {}",
        now,
        air.reassembly_bytes(),
        rc.reassembly_bytes()
    );
    assert_eq!((delivered, in_place), (2500, 1000));
    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "allocations on the data path"
    );
}
