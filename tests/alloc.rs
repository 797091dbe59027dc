//! The steady-state data path allocates nothing: a counting global allocator watches a link
//! send and receive frames on every channel after a warm-up.
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
    for _ in 0..50 {
        assert_eq!(round(&mut air, &mut rc, &mut now, &mut buf, &video), 5);
    }
    // The counter itself works: a deliberate allocation is seen.
    COUNTING.store(true, Ordering::SeqCst);
    drop(std::hint::black_box(Box::new([0u8; 64])));
    assert_eq!(ALLOCATIONS.swap(0, Ordering::SeqCst), 1);
    let mut delivered = 0;
    for _ in 0..500 {
        delivered += round(&mut air, &mut rc, &mut now, &mut buf, &video);
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(delivered, 2500);
    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "allocations on the data path"
    );
}
