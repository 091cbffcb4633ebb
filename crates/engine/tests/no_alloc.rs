//! The data path allocates nothing per segment: after a warm-up, moving thousands of
//! full-sized segments (and their ACKs) between two engines performs no heap allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use utcp_engine::{Config, Stack};
use utcp_engine::time::{Duration, Instant};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Only the test's own thread counts: libtest's main thread may allocate at any moment
    /// (it did under load, 4 allocations, failing the test without the engine allocating).
    /// Const-initialized and without a destructor, so reading it never allocates.
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if COUNTED.with(|c| c.get()) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

#[test]
fn steady_state_data_path_does_not_allocate() {
    COUNTED.with(|c| c.set(true));
    let mut a = Stack::new(Config::default());
    a.add_local_addr(A);
    let mut b = Stack::new(Config { isn_secret: *b"no-alloc-test-k!", ..Config::default() });
    b.add_local_addr(B);
    let mut now = Instant::from_millis(1);
    let l = b.listen(SocketAddr::new(B, 80), 4).unwrap();
    let c = a.connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 80)).unwrap();
    let mut buf = vec![0u8; 65536];
    let chunk = vec![0x42u8; 16384];
    let mut sink = vec![0u8; 65536];
    let mut s = None;
    let mut step = |a: &mut Stack, b: &mut Stack, now: Instant, s: Option<utcp_engine::ConnId>| {
        let _ = a.send(now, c, &chunk);
        for _ in 0..64 {
            let mut moved = false;
            while let Some(n) = a.poll_transmit(now, &mut buf) {
                b.handle_packet(now, &buf[..n]);
                moved = true;
            }
            while let Some(n) = b.poll_transmit(now, &mut buf) {
                a.handle_packet(now, &buf[..n]);
                moved = true;
            }
            if let Some(s) = s {
                while matches!(b.recv(now, s, &mut sink), Ok(n) if n > 0) {}
            }
            while a.poll_event().is_some() {}
            while b.poll_event().is_some() {}
            if !moved {
                break;
            }
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    };
    // Warm-up: handshake, buffers and queues reach their working size.
    for _ in 0..200 {
        step(&mut a, &mut b, now, s);
        if s.is_none() {
            s = b.accept(l).ok().map(|(s, _)| s);
        }
        now += Duration::from_millis(1);
    }
    let s = s.expect("accepted");
    let before_bytes = b.status(s).unwrap().rcv_nxt;
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..2000 {
        step(&mut a, &mut b, now, Some(s));
        now += Duration::from_millis(1);
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    let moved = b.status(s).unwrap().rcv_nxt.wrapping_sub(before_bytes) as u64;
    assert!(moved > 10_000_000, "the test moved too little data: {moved} bytes");
    assert_eq!(allocs, 0, "{allocs} allocations while moving {moved} bytes ({} segments)", moved / 1448);
}
