//! The data path allocates nothing per segment: after a warm-up, moving thousands of
//! full-sized segments (and their ACKs) between two engines performs no heap allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use utcp_engine::time::{Duration, Instant};
use utcp_engine::{Config, Stack};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the measuring thread only: the test harness's own threads allocate at
    /// times of their choosing (that made this test flaky on a loaded machine).
    static MEASURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if MEASURING.try_with(|m| m.get()).unwrap_or(false) {
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

/// Feed `p` to `b`, as two IPv4 fragments when `fragment` (written into `f`).
fn deliver(b: &mut Stack, now: Instant, p: &[u8], fragment: bool, f: &mut [u8]) {
    if !fragment || p.len() <= 600 {
        b.handle_packet(now, p);
        return;
    }
    for (off, end, more) in [(20usize, 532usize, true), (532, p.len(), false)] {
        let len = 20 + end - off;
        f[..20].copy_from_slice(&p[..20]);
        f[20..len].copy_from_slice(&p[off..end]);
        f[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        let fo = ((off - 20) / 8) as u16 | if more { 0x2000 } else { 0 };
        f[6..8].copy_from_slice(&fo.to_be_bytes());
        f[10..12].fill(0);
        let c = utcp_engine::wire::checksum::checksum(&f[..20]);
        f[10..12].copy_from_slice(&c.to_be_bytes());
        b.handle_packet(now, &f[..len]);
    }
}

/// The plain data path, then the same with every data segment cut into two IPv4
/// fragments (reassembly reuses one buffer: nothing is allocated per fragment or
/// datagram), then the zero-copy calls (`send_with`, `recv_with`), then TUN offload's super-segments. One test, so that no
/// other test's allocations are counted.
#[test]
fn steady_state_data_path_does_not_allocate() {
    steady_state(false, false, false);
    steady_state(true, false, false);
    steady_state(false, true, false);
    steady_state(false, false, true);
}

/// `zero_copy`: `send_with`/`recv_with`. `gso`: TUN offload (issue 12): the sender writes
/// super-segments (`poll_transmit_gso`) and the receiver takes them whole
/// (`handle_packet_checksum_ok`).
fn steady_state(fragment: bool, zero_copy: bool, gso: bool) {
    let mut a = Stack::new(Config::default());
    a.add_local_addr(A);
    let mut b = Stack::new(Config::default().with_isn_secret(*b"no-alloc-test-k!"));
    b.add_local_addr(B);
    let mut now = Instant::from_millis(1);
    let l = b.listen(SocketAddr::new(B, 80), 4).unwrap();
    let c = a.connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 80)).unwrap();
    let mut buf = vec![0u8; 65536];
    let chunk = vec![0x42u8; 16384];
    let mut sink = vec![0u8; 65536];
    let mut frag = vec![0u8; 65536];
    let mut s = None;
    let mut step = |a: &mut Stack, b: &mut Stack, now: Instant, s: Option<utcp_engine::ConnId>| {
        if zero_copy {
            let _ = a.send_with(c, |free| {
                let n = free.len().min(chunk.len());
                free[..n].copy_from_slice(&chunk[..n]);
                n
            });
        } else {
            let _ = a.send(c, &chunk);
        }
        for _ in 0..64 {
            let mut moved = false;
            while gso && let Some(t) = a.poll_transmit_gso(now, &mut buf, 64) {
                b.handle_packet_checksum_ok(now, &buf[..t.len]);
                moved = true;
            }
            while let Some(n) = a.poll_transmit(now, &mut buf) {
                deliver(b, now, &buf[..n], fragment, &mut frag);
                moved = true;
            }
            while let Some(n) = b.poll_transmit(now, &mut buf) {
                a.handle_packet(now, &buf[..n]);
                moved = true;
            }
            if let Some(s) = s {
                if zero_copy {
                    while matches!(b.recv_with(s, |d| d.len()), Ok(n) if n > 0) {}
                } else {
                    while matches!(b.recv(s, &mut sink), Ok(n) if n > 0) {}
                }
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
    let before_pkts = b.counters().in_packets;
    let before = ALLOCS.load(Ordering::Relaxed);
    MEASURING.with(|m| m.set(true));
    for _ in 0..2000 {
        step(&mut a, &mut b, now, Some(s));
        now += Duration::from_millis(1);
    }
    MEASURING.with(|m| m.set(false));
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    let moved = b.status(s).unwrap().rcv_nxt.wrapping_sub(before_bytes) as u64;
    assert!(moved > 10_000_000, "the test moved too little data: {moved} bytes");
    assert_eq!(allocs, 0, "{allocs} allocations while moving {moved} bytes ({} segments)", moved / 1448);
    if fragment {
        assert!(b.counters().reasm_oks > 5000, "segments went through reassembly");
    }
    if gso {
        let pkts = b.counters().in_packets - before_pkts;
        assert!(pkts < moved / 1448 / 2, "super-segments carried the data ({pkts} packets in)");
    }
}
