//! RFC 4987 §3: a SYN flood must not grow memory without bound. Live heap bytes are
//! counted while 10k spoofed SYNs reach a listener, the driver never polling (worst case),
//! then 10k more with output drained.

mod live_heap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utcp_engine::seq::SeqNum;
use utcp_engine::time::Instant;
use utcp_engine::wire::{OptionLayout, TcpFlags, TcpHeaderOut, TcpOptions, emit_ipv4_tcp};
use utcp_engine::{Config, Stack};

const US: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn spoofed_syn(x: u32, buf: &mut [u8]) -> usize {
    let h = TcpHeaderOut {
        tcp: utcp_engine::wire::TcpRepr {
            src_port: 1024 + (x % 60000) as u16,
            dst_port: 80,
            seq: SeqNum(x),
            ack: SeqNum(0),
            flags: TcpFlags::SYN,
            window: 65535,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                timestamps: Some((x, 0)),
                window_scale: Some(7),
                sack_permitted: true,
                ..TcpOptions::default()
            },
        },
        src: IpAddr::V4(Ipv4Addr::new(10, 64 + (x >> 26) as u8, (x >> 16) as u8, (x >> 8) as u8 | 1)),
        dst: US,
        ttl: 64,
        ip_id: 0,
        flow_label: 0,
    };
    emit_ipv4_tcp(buf, &h, OptionLayout::Linux, &[]).unwrap()
}

#[test]
fn syn_flood_memory_is_capped() {
    let mut stack = Stack::new(Config::deterministic(1));
    stack.add_local_addr(US);
    stack.listen(SocketAddr::new(US, 80), 128).unwrap();
    let (mut pkt, mut out) = (vec![0u8; 128], vec![0u8; 2048]);
    let now = Instant::from_millis(1000);
    let mut x: u32 = 7;
    let mut next = || {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        x
    };
    let base = live_heap::live();
    for _ in 0..10_000 {
        let n = spoofed_syn(next(), &mut pkt);
        stack.handle_packet(now, &pkt[..n]);
    }
    let undrained = live_heap::live() - base;
    while stack.poll_transmit(now, &mut out).is_some() {}
    for _ in 0..10_000 {
        let n = spoofed_syn(next(), &mut pkt);
        stack.handle_packet(now, &pkt[..n]);
        while stack.poll_transmit(now, &mut out).is_some() {}
    }
    let drained = live_heap::live() - base;
    println!("live heap after 10k undrained SYNs: {undrained} B; after 10k more, drained: {drained} B");
    assert_eq!(stack.connection_count(), 128);
    assert_eq!(stack.counters().syncookies_sent + stack.counters().listen_drops, 20_000 - 128);
    // 128 half-open TCBs (no buffers) + 1024 queued cookie SYN-ACKs + tables: well
    // under 1 MiB, whatever the flood's length.
    assert!(undrained < 1 << 20, "{undrained} bytes");
    assert!(drained <= undrained + (64 << 10), "{drained} bytes after draining vs {undrained}");
}
