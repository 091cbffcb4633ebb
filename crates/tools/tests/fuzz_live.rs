//! Hostile packets against a stack holding live connections (driver: `utcp_tools::fuzz`).
//! Sequence numbers are drawn near RCV.NXT and acknowledgments near SND.UNA, so a good
//! share lands in the window; the shielded connections must survive and still deliver
//! byte-exact. The long run is `cargo run --release -p utcp-tools --example fuzz_live`.

use utcp_tools::fuzz::{LiveFuzz, run_live, run_structured};

#[test]
fn a_million_hostile_packets_against_live_connections() {
    let cfg = LiveFuzz { packets: 1_050_000, ..LiveFuzz::default() };
    let r = run_live(&cfg).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{r:#?}");
    assert_eq!(r.packets, 1_050_000);
    // The draw reaches the window: at least a tenth of the aimed segments are in it,
    // including RSTs and SYNs that must only draw a challenge ACK (RFC 5961 §3.2, §4).
    assert!(r.aimed > cfg.packets / 2, "{r:?}");
    assert!(r.in_window * 10 > r.aimed, "too few in-window segments: {r:?}");
    assert!(r.in_window_rst > 1_000 && r.in_window_syn > 1_000, "{r:?}");
    // Every shielded connection survived and delivered both ways.
    assert_eq!(r.shielded, cfg.conns / 2);
    assert_eq!(r.shielded_ok, r.shielded);
    assert_eq!(r.exposed, cfg.conns / 2);
    // Noise and bit flips were seen and dropped by reason.
    assert!(r.bad_checksum > 10_000, "{r:?}");
    assert!(r.in_segs > cfg.packets / 2, "{r:?}");
    // No amplification: at most one answer per injected packet.
    assert!(r.answers <= r.packets, "{r:?}");
}

#[test]
fn structure_aware_segments_against_live_connections() {
    let r = run_structured(20_000, 0x5eed).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{r:#?}");
    assert_eq!(r.inputs, 20_000);
    assert!(r.segments > 2 * r.inputs, "{r:?}");
    // A good share reaches a TCB or listener; B never answers more than it was sent.
    assert!(r.in_segs * 4 > r.segments && r.drops > r.segments / 20, "{r:?}");
    assert!(r.answers <= r.segments, "amplification: {r:?}");
}

/// Regression test for an engine bug found by the structure-aware run: one blind in-window data segment
/// desynchronizes a connection between two utcp stacks (B's RCV.NXT passes A's SND.NXT),
/// and then each side answers the other's ACK with an ACK forever: A because the ACK
/// acknowledges data it never sent (RFC 9293 §3.10.7.4, "send an ACK, drop the segment"),
/// B because A's sequence number is below its window ("an acknowledgment should be sent
/// in reply"). Neither reply was rate-limited, so the two never fell silent: an endless
/// ACK storm from one forged packet. Both replies are now limited per connection, as
/// Linux's `tcp_invalid_ratelimit` does (`Config::oow_ack_interval`, `tcb/challenge.rs`).
#[test]
fn blind_in_window_data_does_not_start_an_ack_storm() {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use utcp::engine::{Config, Stack};
    use utcp::seq::SeqNum;
    use utcp::time::Instant;
    use utcp::wire::{OptionLayout, TcpFlags, TcpHeaderOut, TcpOptions, emit_ipv4_tcp};
    let (ia, ib) = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    let (mut a, mut b) = (Stack::new(Config::default()), Stack::new(Config::default()));
    a.add_local_addr(ia);
    b.add_local_addr(ib);
    let now = Instant::from_millis(1);
    let mut buf = vec![0u8; 65536];
    let l = b.listen(SocketAddr::new(ib, 80), 8).unwrap();
    let c = a.connect(now, SocketAddr::new(ia, 0), SocketAddr::new(ib, 80)).unwrap();
    let mut exchange = |a: &mut Stack, b: &mut Stack, now: Instant, rounds: usize| -> usize {
        let mut moved = 0;
        for _ in 0..rounds {
            let mut any = false;
            while let Some(n) = a.poll_transmit(now, &mut buf) {
                b.handle_packet(now, &buf[..n]);
                any = true;
                moved += 1;
            }
            while let Some(n) = b.poll_transmit(now, &mut buf) {
                a.handle_packet(now, &buf[..n]);
                any = true;
                moved += 1;
            }
            if !any {
                break;
            }
        }
        moved
    };
    exchange(&mut a, &mut b, now, 100);
    let (s, _) = b.accept(l).unwrap();
    let st = b.status(s).unwrap();
    // The forged segment: A's quad, SEG.SEQ = RCV.NXT, an acceptable ACK, 100 bytes.
    let h = TcpHeaderOut {
        tcp: utcp::wire::TcpRepr {
            src_port: a.local_addr(c).unwrap().port(),
            dst_port: 80,
            seq: SeqNum(st.rcv_nxt),
            ack: SeqNum(st.snd_una),
            flags: TcpFlags(TcpFlags::ACK.0 | TcpFlags::PSH.0),
            window: 1000,
            urgent: 0,
            options: TcpOptions::default(),
        },
        src: ia,
        dst: ib,
        ttl: 64,
        ip_id: 0,
        flow_label: 0,
    };
    let mut pkt = vec![0u8; 2048];
    let n = emit_ipv4_tcp(&mut pkt, &h, OptionLayout::Linux, &[&[0x41; 100]]).unwrap();
    b.handle_packet(now, &pkt[..n]);
    // B acknowledges the forged bytes (at once or when its delayed-ACK timer fires).
    let later = now + utcp::time::Duration::from_millis(500);
    b.handle_timeout(later);
    a.handle_timeout(later);
    let moved = exchange(&mut a, &mut b, later, 10_000);
    assert!(moved < 100, "{moved} packets exchanged at one instant after one forged segment");
}
