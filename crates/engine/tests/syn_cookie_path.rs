//! The SYN cookie path (RFC 4987 §3.6) is stateless and cheap: once a listener's SYN queue
//! is full, a spoofed SYN is answered by exactly one SYN-ACK, without a heap allocation,
//! without a new entry in the connection table, and the cookie still validates.
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use utcp_engine::seq::SeqNum;
use utcp_engine::time::Instant;
use utcp_engine::wire::{
    OptionLayout, TcpFlags, TcpHeaderOut, TcpOptions, TcpRepr, emit_ipv4_tcp, parse_ipv4_tcp,
};
use utcp_engine::{Config, Stack};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static MEASURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts calls on the measuring thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if MEASURING.try_with(|m| m.get()).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if MEASURING.try_with(|m| m.get()).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const US: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn syn(x: u32, flags: TcpFlags, ack: SeqNum, tsecr: u32, buf: &mut [u8]) -> usize {
    let h = TcpHeaderOut {
        src: IpAddr::V4(Ipv4Addr::new(10, 99, (x >> 8) as u8, x as u8)),
        dst: US,
        tcp: TcpRepr {
            src_port: 1024 + (x % 60000) as u16,
            dst_port: 80,
            seq: SeqNum(x.wrapping_mul(2_654_435_761)),
            ack,
            flags,
            window: 64240,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                timestamps: Some((x, tsecr)),
                window_scale: Some(7),
                sack_permitted: true,
                ..TcpOptions::default()
            },
        },
        ttl: 64,
        ip_id: 0,
        flow_label: 0,
    };
    emit_ipv4_tcp(buf, &h, OptionLayout::Linux, &[]).unwrap()
}

/// One test, so that no other test's allocations are counted.
#[test]
fn cookie_syns_allocate_nothing_and_add_no_tcb() {
    let mut stack = Stack::new(Config::deterministic(1));
    stack.add_local_addr(US);
    let l = stack.listen(SocketAddr::new(US, 80), 16).unwrap();
    let (mut pkt, mut out) = (vec![0u8; 128], vec![0u8; 2048]);
    let now = Instant::from_millis(5000);
    // Warm-up: the SYN queue (16 entries) fills, then cookies flow and queues reach size.
    for x in 0..2000u32 {
        let n = syn(x, TcpFlags::SYN, SeqNum(0), 0, &mut pkt);
        stack.handle_packet(now, &pkt[..n]);
        while stack.poll_transmit(now, &mut out).is_some() {}
    }
    let (tcbs, sent0, out0) =
        (stack.connection_count(), stack.counters().syncookies_sent, stack.counters().out_segs);
    assert_eq!(tcbs, 16, "the SYN queue holds its bound");
    let mut last = None;
    MEASURING.with(|m| m.set(true));
    for x in 10_000..20_000u32 {
        let n = syn(x, TcpFlags::SYN, SeqNum(0), 0, &mut pkt);
        stack.handle_packet(now, &pkt[..n]);
        while let Some(k) = stack.poll_transmit(now, &mut out) {
            last = Some((x, k));
        }
    }
    MEASURING.with(|m| m.set(false));
    let allocs = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(allocs, 0, "{allocs} allocations for 10k cookie SYN-ACKs");
    assert_eq!(stack.connection_count(), tcbs, "the cookie path adds no TCB");
    assert_eq!(stack.counters().syncookies_sent - sent0, 10_000, "one cookie per SYN");
    assert_eq!(stack.counters().out_segs - out0, 10_000, "one SYN-ACK per SYN, no more");
    // The last SYN-ACK's cookie completes the handshake.
    let (x, k) = last.expect("a SYN-ACK");
    let sa = parse_ipv4_tcp(&out[..k]).unwrap();
    assert!(sa.flags.syn() && sa.flags.ack());
    let (tsval, _) = sa.options.timestamps.expect("timestamps carry the options");
    let ack_seq = SeqNum(x.wrapping_mul(2_654_435_761)) + 1;
    let h = TcpHeaderOut {
        src: sa.dst,
        dst: US,
        tcp: TcpRepr {
            src_port: sa.dst_port,
            dst_port: 80,
            seq: ack_seq,
            ack: sa.seq + 1,
            flags: TcpFlags::ACK,
            window: 502,
            urgent: 0,
            options: TcpOptions { timestamps: Some((x + 1, tsval)), ..TcpOptions::default() },
        },
        ttl: 64,
        ip_id: 0,
        flow_label: 0,
    };
    let n = emit_ipv4_tcp(&mut pkt, &h, OptionLayout::Linux, &[]).unwrap();
    stack.handle_packet(now, &pkt[..n]);
    assert_eq!(stack.counters().syncookies_recv, 1);
    assert!(stack.accept(l).is_ok(), "the cookie ACK made an established connection");
}
