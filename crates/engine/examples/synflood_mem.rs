//! In-memory SYN flood against one listener: N spoofed random-source SYNs, each answered
//! (SYN queue first, then cookies) and drained with `poll_transmit`. Prints ns per SYN.
//! `cargo run --release -p utcp-engine --example synflood_mem -- [N]` (for callgrind too).
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utcp_engine::seq::SeqNum;
use utcp_engine::time::Instant;
use utcp_engine::wire::{OptionLayout, TcpFlags, TcpHeaderOut, TcpOptions, TcpRepr, emit_ipv4_tcp};
use utcp_engine::{Config, Stack};

const US: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn spoofed_syn(x: u64, buf: &mut [u8]) -> usize {
    let h = TcpHeaderOut {
        src: IpAddr::V4(Ipv4Addr::from(0x0a63_0000 | (x as u32 & 0xffff))),
        dst: US,
        tcp: TcpRepr {
            src_port: 1024 + ((x >> 16) as u16 % 60000),
            dst_port: 80,
            seq: SeqNum((x >> 32) as u32),
            ack: SeqNum(0),
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                timestamps: Some((x as u32, 0)),
                window_scale: Some(7),
                sack_permitted: true,
                ..TcpOptions::default()
            },
        },
        ttl: 64,
        ip_id: x as u16,
        flow_label: 0,
    };
    emit_ipv4_tcp(buf, &h, OptionLayout::Linux, &[]).unwrap_or(0)
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let mut stack = Stack::new(Config::deterministic(1));
    stack.add_local_addr(US);
    stack.listen(SocketAddr::new(US, 80), 128).expect("listen");
    // Pre-build the packets so only the engine is timed.
    let mut pkts = vec![[0u8; 64]; 4096];
    let mut lens = vec![0usize; 4096];
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    for (p, l) in pkts.iter_mut().zip(lens.iter_mut()) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        *l = spoofed_syn(rng, p);
    }
    let mut out = vec![0u8; 2048];
    let (mut synacks, mut bytes) = (0u64, 0usize);
    let t = std::time::Instant::now();
    for i in 0..n {
        let now = Instant::from_millis(1000 + i / 1000);
        let k = (i % 4096) as usize;
        stack.handle_packet(now, &pkts[k][..lens[k]]);
        while let Some(len) = stack.poll_transmit(now, &mut out) {
            synacks += 1;
            bytes += len;
        }
    }
    let el = t.elapsed();
    let c = stack.counters();
    println!(
        "{n} SYNs in {:.3} s: {:.0} ns/SYN; {synacks} segments out ({bytes} B); cookies sent {}",
        el.as_secs_f64(),
        el.as_nanos() as f64 / n as f64,
        c.syncookies_sent
    );
}
