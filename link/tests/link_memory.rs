//! Memory per idle established link (issue 16: at most 16 KiB, for a ground station that
//! holds a thousand), measured with a counting global allocator: the live heap bytes of
//! remote links that carried sticks and telemetry for a while and then went idle, plus the
//! bytes of the `Link` value itself. With RustCrypto every byte is Rust's (the AES key
//! schedules are inline); AWS-LC allocates its key contexts with C's `malloc`, which this
//! allocator does not see, so its figure is a lower bound.
#![allow(unsafe_code)] // implementing GlobalAlloc is unsafe by definition; this file only counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rotorlink::crypto::AeadProvider;
use rotorlink::{Channel, Config, Event, Link, Role, RustCrypto, Secret, Timestamp};

struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: defers every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const AIRCRAFT: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(10, 0, 0, 1),
    47474,
));
const REMOTE: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(10, 0, 0, 2),
    47474,
));

fn link<P: AeadProvider>(role: Role, i: u32) -> Link<P> {
    let (local, peer, to) = match role {
        Role::Remote => (1000 + i, 5000 + i, AIRCRAFT),
        Role::Aircraft => (5000 + i, 1000 + i, REMOTE),
    };
    Link::from_secret(
        role,
        Config::default(),
        &Secret::new([1; 32]),
        &[2; 32],
        local,
        peer,
        to,
        &mut ChaCha20Rng::seed_from_u64(u64::from(local)),
        Timestamp::ZERO,
    )
    .unwrap()
}

/// One second of a flight's control traffic: sticks at 100 Hz up, telemetry at 50 Hz down,
/// each delivered and handed back to the link.
fn fly_a_second<P: AeadProvider>(rc: &mut Link<P>, air: &mut Link<P>, now: &mut Timestamp) {
    let mut buf = vec![0u8; 1500];
    for tick in 0..100 {
        *now = *now + Duration::from_millis(10);
        rc.send(Channel::Control, &[tick; 24]).unwrap();
        if tick % 2 == 0 {
            air.send(Channel::Telemetry, &[tick; 96]).unwrap();
        }
        for _ in 0..2 {
            while let Some(t) = rc.poll_transmit(*now, &mut buf) {
                air.handle_datagram(*now, REMOTE, &buf[..t.len]).unwrap();
            }
            while let Some(t) = air.poll_transmit(*now, &mut buf) {
                rc.handle_datagram(*now, AIRCRAFT, &buf[..t.len]).unwrap();
            }
        }
        for l in [&mut *rc, &mut *air] {
            while let Some(e) = l.poll_event() {
                if let Event::Message { data, .. } = e {
                    l.recycle(data);
                }
            }
        }
    }
}

/// Bytes per idle remote link after a second of flight.
fn bytes_per_idle_link<P: AeadProvider>() -> i64 {
    const N: u32 = 100;
    let mut now = Timestamp::ZERO;
    let before = LIVE.load(Ordering::SeqCst);
    let mut remotes: Vec<Link<P>> = Vec::with_capacity(N as usize);
    let vec_bytes = remotes.capacity() * std::mem::size_of::<Link<P>>();
    for i in 0..N {
        let mut rc = link::<P>(Role::Remote, i);
        let mut air = link::<P>(Role::Aircraft, i);
        fly_a_second(&mut rc, &mut air, &mut now);
        drop(air);
        remotes.push(rc);
    }
    assert!(remotes.iter().all(Link::is_connected));
    let heap = LIVE.load(Ordering::SeqCst) - before - vec_bytes as i64;
    let per_link = heap / i64::from(N) + std::mem::size_of::<Link<P>>() as i64;
    eprintln!(
        "{}: {per_link} bytes per idle link ({} inline, {} on the heap)",
        P::NAME,
        std::mem::size_of::<Link<P>>(),
        heap / i64::from(N)
    );
    per_link
}

#[test]
fn an_idle_established_link_holds_at_most_16_kib() {
    let per_link = bytes_per_idle_link::<RustCrypto>();
    assert!(per_link <= 16 * 1024, "{per_link} bytes per idle link");
    #[cfg(feature = "aws-lc")]
    {
        let per_link = bytes_per_idle_link::<rotorlink::AwsLc>();
        assert!(
            per_link <= 16 * 1024,
            "{per_link} bytes per idle link (AWS-LC)"
        );
    }
}
