//! ICMP errors (RFC 792, RFC 1122 §4.2.3.9, RFC 5927; RFC 9293 MUST-47, MUST-54), path MTU
//! discovery (RFC 1191; RFC 4821 black-hole fallback) and per-connection TTL/TOS
//! (MUST-48): exact segments on virtual time (crates/engine/src/icmp_error.rs, tcb/pmtu.rs).

mod common;
use common::*;
use std::net::Ipv4Addr;
use utcp_engine::CloseReason;
use utcp_engine::wire::DropReason;
use utcp_engine::wire::checksum::checksum;

const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);

/// An ICMP error from a router to us, quoting the IPv4 header and the first 8 TCP bytes of
/// a segment we sent (LOCAL → REMOTE) with SEG.SEQ `seq` (RFC 792). `word` is the second
/// 32-bit word of the ICMP header (the next-hop MTU in its low 16 bits for code 4).
fn icmp_error(ty: u8, code: u8, word: u32, seq: u32) -> Vec<u8> {
    let mut quoted = vec![0u8; 28];
    quoted[0] = 0x45;
    quoted[2..4].copy_from_slice(&1500u16.to_be_bytes());
    quoted[6] = 0x40;
    quoted[8] = 64;
    quoted[9] = 6;
    quoted[12..16].copy_from_slice(&LOCAL_IP.octets());
    quoted[16..20].copy_from_slice(&REMOTE_IP.octets());
    let c = checksum(&quoted[..20]);
    quoted[10..12].copy_from_slice(&c.to_be_bytes());
    quoted[20..22].copy_from_slice(&LOCAL_PORT.to_be_bytes());
    quoted[22..24].copy_from_slice(&REMOTE_PORT.to_be_bytes());
    quoted[24..28].copy_from_slice(&seq.to_be_bytes());
    let mut icmp = vec![ty, code, 0, 0];
    icmp.extend_from_slice(&word.to_be_bytes());
    icmp.extend_from_slice(&quoted);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&ROUTER.octets());
    p[16..20].copy_from_slice(&LOCAL_IP.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&icmp);
    p
}

/// RFC 1122 §4.2.3.9: port unreachable is hard; in SYN-SENT it aborts the open and the
/// user gets ECONNREFUSED. Nothing is sent (no RST for an ICMP).
#[test]
fn port_unreachable_aborts_syn_sent_as_refused() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.events();
    h.send_raw(&icmp_error(3, 3, 0, h.iss));
    assert_eq!(closed_reason(&mut h), Some(CloseReason::Refused));
    assert_eq!(h.state(), Some(State::Closed));
    assert_eq!(h.stack.counters().icmp_hard_aborts, 1);
    h.expect_nothing();
    assert_eq!(h.stack.recv(h.c(), &mut [0u8; 8]).unwrap_err().kind(), std::io::ErrorKind::ConnectionRefused);
}

/// Administratively prohibited (codes 9, 10, 13) is hard in the handshake: HostUnreachable,
/// or ECONNREFUSED with `Config::icmp_hard_refused` (FreeBSD).
#[test]
fn admin_prohibited_aborts_syn_sent_as_host_unreachable() {
    for (refused, want) in [(false, CloseReason::HostUnreachable), (true, CloseReason::Refused)] {
        let mut c = base_config();
        c.icmp_hard_refused = refused;
        let mut h = H::new(c);
        h.open_to_syn_sent();
        h.events();
        h.send_raw(&icmp_error(3, 13, 0, h.iss));
        assert_eq!(closed_reason(&mut h), Some(want));
        let kind =
            if refused { std::io::ErrorKind::ConnectionRefused } else { std::io::ErrorKind::HostUnreachable };
        assert_eq!(want.error_kind(), Some(kind));
    }
}

/// RFC 5927 §4.1: an ICMP error whose quoted SEG.SEQ is not in SND.UNA..SND.NXT (in
/// SYN-SENT: not ISS) changes nothing and is counted.
#[test]
fn out_of_window_quote_changes_nothing_in_syn_sent() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.events();
    let timer = h.next_timer();
    for seq in [h.iss.wrapping_sub(1), h.iss.wrapping_add(1), h.iss ^ 0x8000_0000] {
        h.send_raw(&icmp_error(3, 3, 0, seq));
    }
    assert_eq!(h.state(), Some(State::SynSent));
    assert!(h.events().is_empty());
    assert_eq!(h.next_timer(), timer);
    h.expect_nothing();
    let c = h.stack.counters();
    assert_eq!(c.dropped(DropReason::IcmpOutOfWindow), 3);
    assert_eq!((c.icmp_hard_aborts, c.icmp_soft_errors), (0, 0));
    assert_eq!(h.stack.soft_error(h.c()).unwrap(), None);
    // The handshake still completes.
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)));
    h.expect(ACK, h.our(0), h.peer(0));
    assert_eq!(h.state(), Some(State::Established));
}

/// In a synchronized state the window is SND.UNA =< SEG.SEQ < SND.NXT: a quote of acked
/// data or of SND.NXT itself is ignored; a Fragmentation Needed out of window does not
/// lower the MSS.
#[test]
fn out_of_window_quote_changes_nothing_when_established() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(1460));
    h.write(&payload(1000));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(1000);
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    h.write(&payload(500));
    h.expect(ACK | PSH, h.our(1000), h.peer(0)).len(500);
    for seq in [h.our(999), h.our(1500), h.our(0)] {
        h.send_raw(&icmp_error(3, 1, 0, seq));
        h.send_raw(&icmp_error(3, 4, 576, seq));
    }
    h.expect_nothing();
    assert_eq!(h.stack.counters().dropped(DropReason::IcmpOutOfWindow), 6);
    assert_eq!(h.stack.soft_error(h.c()).unwrap(), None);
    assert_eq!(h.stack.path_mss(h.c()).unwrap(), None);
    // In window: kept as the soft error.
    h.send_raw(&icmp_error(3, 1, 0, h.our(1200)));
    assert_eq!(h.stack.soft_error(h.c()).unwrap(), Some(CloseReason::HostUnreachable));
    assert_eq!(h.state(), Some(State::Established));
}

/// RFC 1122 §4.2.3.9 / RFC 5927 §4.2: a hard error in a synchronized state is soft: the
/// connection lives on.
#[test]
fn hard_error_when_established_is_soft() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(1460));
    h.write(&payload(100));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(100);
    h.send_raw(&icmp_error(3, 3, 0, h.our(0)));
    assert_eq!(h.state(), Some(State::Established));
    assert!(closed_reason(&mut h).is_none());
    assert_eq!(h.stack.counters().icmp_soft_errors, 1);
    h.send(Seg::new(ACK, h.peer(0), h.our(100)));
    h.expect_nothing();
}

/// Soft errors (host/net unreachable) do not abort SYN-SENT; the last one is what the user
/// hears when the connection times out (MUST-47) instead of a plain TimedOut.
#[test]
fn soft_error_is_reported_on_timeout() {
    for (code, want) in [(1u8, CloseReason::HostUnreachable), (0, CloseReason::NetworkUnreachable)] {
        let mut c = base_config();
        c.syn_retries = 2;
        let mut h = H::new(c);
        h.open_to_syn_sent();
        h.events();
        h.send_raw(&icmp_error(3, code, 0, h.iss));
        assert_eq!(h.state(), Some(State::SynSent));
        h.expect_nothing();
        h.fire_timer();
        h.expect(SYN, h.iss, 0);
        h.fire_timer();
        h.expect(SYN, h.iss, 0);
        h.fire_timer();
        assert_eq!(closed_reason(&mut h), Some(want));
    }
    // Without a soft error: TimedOut.
    let mut c = base_config();
    c.syn_retries = 0;
    let mut h = H::new(c);
    h.open_to_syn_sent();
    h.fire_timer();
    assert_eq!(closed_reason(&mut h), Some(CloseReason::TimedOut));
}

/// `Config::icmp_may_rst` off (FreeBSD net.inet.tcp.icmp_may_rst=0): every error is soft.
/// `Config::icmp_time_exceeded_hard` (FreeBSD): TTL exceeded aborts the handshake.
#[test]
fn icmp_may_rst_and_time_exceeded_policies() {
    let mut c = base_config();
    c.icmp_may_rst = false;
    let mut h = H::new(c);
    h.open_to_syn_sent();
    for code in [2u8, 3, 9, 10, 13] {
        h.send_raw(&icmp_error(3, code, 0, h.iss));
    }
    assert_eq!(h.state(), Some(State::SynSent));
    assert_eq!(h.stack.counters().icmp_soft_errors, 5);

    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send_raw(&icmp_error(11, 0, 0, h.iss));
    assert_eq!(h.state(), Some(State::SynSent), "RFC 1122: time exceeded is soft");
    let mut c = base_config();
    c.icmp_time_exceeded_hard = true;
    let mut h = H::new(c);
    h.open_to_syn_sent();
    h.send_raw(&icmp_error(11, 1, 0, h.iss));
    assert_eq!(h.state(), Some(State::SynSent), "reassembly time exceeded stays soft");
    h.events();
    h.send_raw(&icmp_error(11, 0, 0, h.iss));
    assert_eq!(closed_reason(&mut h), Some(CloseReason::HostUnreachable));
}

/// A hard error quoting our SYN-ACK drops the embryonic connection (Linux's tcp_req_err);
/// the listener stays and takes the next SYN.
#[test]
fn hard_error_drops_syn_received() {
    let mut h = H::new(base_config());
    h.open_to_syn_received(mss_opts(1460));
    h.send_raw(&icmp_error(3, 3, 0, h.iss.wrapping_add(1)));
    assert_eq!(h.stack.counters().dropped(DropReason::IcmpOutOfWindow), 1);
    h.send_raw(&icmp_error(3, 3, 0, h.iss));
    assert_eq!(h.stack.counters().icmp_hard_aborts, 1);
    assert_eq!(h.stack.connection_count(), 0);
    h.expect_nothing();
    h.send(Seg::new(SYN, PEER_ISS + 5000, 0).mss(1460));
    let o = h.recv().expect("SYN-ACK to the next SYN");
    assert_eq!((o.flags, o.ack), (SYN | ACK, PEER_ISS + 5001));
}

/// Errors for no connection, to another address, ones TCP ignores (source quench,
/// RFC 6633; redirect), and quotes of other protocols are dropped by reason.
#[test]
fn unusable_errors_are_dropped_by_reason() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    let mut other = icmp_error(3, 3, 0, h.iss);
    other[20 + 8 + 20..20 + 8 + 22].copy_from_slice(&81u16.to_be_bytes()); // quoted sport
    let c = checksum(&{
        let mut i = other[20..].to_vec();
        i[2] = 0;
        i[3] = 0;
        i
    });
    other[22..24].copy_from_slice(&c.to_be_bytes());
    h.send_raw(&other);
    h.send_raw(&icmp_error(4, 0, 0, h.iss));
    h.send_raw(&icmp_error(5, 1, 0, h.iss));
    let mut udp = icmp_error(3, 3, 0, h.iss);
    udp[20 + 8 + 9] = 17;
    udp[22..24].copy_from_slice(&[0, 0]);
    let c = checksum(&udp[20..]);
    udp[22..24].copy_from_slice(&c.to_be_bytes());
    h.send_raw(&udp);
    let mut bad = icmp_error(3, 3, 0, h.iss);
    bad[25] ^= 1;
    h.send_raw(&bad);
    assert_eq!(h.state(), Some(State::SynSent));
    let c = h.stack.counters();
    assert_eq!(c.dropped(DropReason::IcmpNoConnection), 1);
    assert_eq!(c.dropped(DropReason::IcmpIgnored), 2);
    assert_eq!(c.dropped(DropReason::IcmpNotTcp), 1);
    assert_eq!(c.dropped(DropReason::IcmpBadChecksum), 1);
    // Every truncation of a valid error is dropped without a panic.
    let full = icmp_error(3, 3, 0, h.iss);
    for n in 0..full.len() {
        let mut p = full[..n].to_vec();
        if n >= 20 {
            p[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            p[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&p[..20]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        h.send_raw(&p);
    }
    assert_eq!(h.state(), Some(State::SynSent));
}

/// RFC 1191 §6.4: Fragmentation Needed with a next-hop MTU of 1280 lowers the MSS to 1240
/// and what was outstanding is sent again at the new size, without a cwnd reduction.
/// A larger MTU afterwards is ignored (§6.3); one below `Config::min_pmtu` is raised to it.
#[test]
fn frag_needed_lowers_mss_and_resends() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(1460));
    h.write(&payload(2920));
    h.expect(ACK, h.our(0), h.peer(0)).len(1460);
    h.expect(ACK | PSH, h.our(1460), h.peer(0)).len(1460);
    h.send_raw(&icmp_error(3, 4, 1280, h.our(0)));
    assert_eq!(h.stack.path_mss(h.c()).unwrap(), Some(1240));
    assert_eq!(h.stack.counters().pmtu_reductions, 1);
    h.expect(ACK, h.our(0), h.peer(0)).len(1240);
    h.expect(ACK, h.our(1240), h.peer(0)).len(1240);
    h.expect(ACK | PSH, h.our(2480), h.peer(0)).len(440);
    h.expect_nothing();
    h.send_raw(&icmp_error(3, 4, 1500, h.our(0)));
    assert_eq!(h.stack.path_mss(h.c()).unwrap(), Some(1240));
    assert_eq!(h.stack.counters().dropped(DropReason::IcmpPmtuIgnored), 1);
    h.send_raw(&icmp_error(3, 4, 300, h.our(0)));
    assert_eq!(h.stack.path_mss(h.c()).unwrap(), Some(512), "min_pmtu 552 - 40");
    h.send(Seg::new(ACK, h.peer(0), h.our(2920)));
    h.write(&payload(600));
    h.expect(ACK, h.our(2920), h.peer(0)).len(512);
    h.expect(ACK | PSH, h.our(3432), h.peer(0)).len(88);
}

/// `Config::pmtu_discovery` off: DF clear and Fragmentation Needed ignored. On (default):
/// DF set on every packet.
#[test]
fn pmtu_discovery_off_clears_df_and_ignores_frag_needed() {
    for on in [true, false] {
        let mut c = base_config();
        c.pmtu_discovery = on;
        let mut h = H::new(c);
        h.establish_passive(mss_opts(1460));
        h.write(&payload(1460));
        let mut buf = vec![0u8; 2048];
        let n = h.stack.poll_transmit(h.now, &mut buf).expect("data segment");
        assert_eq!(buf[6] & 0x40 != 0, on, "DF");
        assert_eq!(checksum(&buf[..20]), 0, "header checksum stays valid");
        assert_eq!(n, 1500);
        h.send_raw(&icmp_error(3, 4, 1280, h.our(0)));
        assert_eq!(h.stack.path_mss(h.c()).unwrap(), if on { Some(1240) } else { None });
    }
}

/// MUST-48: per-connection TOS and TTL (`Stack::set_tos`, `Stack::set_ttl`), defaults from
/// `Config::tos` / `Config::ttl`; listeners pass theirs to the connections they accept.
#[test]
fn tos_and_ttl_per_connection() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(1460));
    assert_eq!(h.stack.ttl_tos(h.c()).unwrap(), (64, 0));
    h.stack.set_tos(h.c(), 0xb8).unwrap();
    h.stack.set_ttl(h.c(), 7).unwrap();
    assert!(h.stack.set_ttl(h.c(), 0).is_err());
    h.write(&payload(10));
    let mut buf = vec![0u8; 2048];
    let n = h.stack.poll_transmit(h.now, &mut buf).expect("data");
    assert_eq!((buf[1], buf[8], buf[6] & 0x40), (0xb8, 7, 0x40));
    assert_eq!(checksum(&buf[..20]), 0);
    assert!(utcp_engine::wire::parse_ipv4_tcp(&buf[..n]).is_ok());

    let mut h = H::new(base_config());
    let l = h.listen();
    h.stack.set_listener_ttl_tos(l, Some(4), Some(0x20)).unwrap();
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(1460));
    let n = h.stack.poll_transmit(h.now, &mut buf).expect("SYN-ACK");
    assert_eq!((buf[1], buf[8]), (0x20, 4));
    assert!(utcp_engine::wire::parse_ipv4_tcp(&buf[..n]).is_ok());
}

/// Drive an ESTABLISHED connection with one full segment outstanding through `rtos`
/// timeouts and return the payload sizes of the retransmissions.
fn retransmission_sizes(mtu_probing: u8, rtos: usize) -> Vec<usize> {
    let mut c = base_config();
    c.mtu_probing = mtu_probing;
    let mut h = H::new(c);
    h.establish_passive(mss_opts(1460));
    h.write(&payload(1460));
    let first = h.recv().expect("first transmission").payload.len();
    let mut sizes = vec![first];
    sizes.extend(h.drain().iter().map(|o| o.payload.len()));
    for _ in 0..rtos {
        h.fire_timer();
        sizes.push(h.recv().expect("retransmission").payload.len());
        // Drain whatever else the smaller MSS lets out (the rest of the segment).
        sizes.extend(h.drain().iter().map(|o| o.payload.len()));
    }
    sizes
}

/// RFC 4821 §7.7 / Linux tcp_mtu_probing=1: after `BLACK_HOLE_RTOS` timeouts the path is
/// taken for a black hole and the MSS drops to `Config::base_mss` (1024); with probing off
/// it never changes; with 2 the connection starts at base_mss.
#[test]
fn black_hole_falls_back_to_base_mss() {
    assert_eq!(retransmission_sizes(0, 4), [1460, 1460, 1460, 1460, 1460]);
    // The third timeout detects the black hole (1024); the fourth halves (512). After an
    // RTO the congestion window is one segment, so one retransmission goes each time.
    assert_eq!(retransmission_sizes(1, 4), [1460, 1460, 1460, 1024, 512]);
    // With 2 the search starts at base_mss and at once probes halfway up to the peer's
    // MSS (RFC 4821 §7.3): 1024 + 218 = 1242; its loss to the RTO ends the search below it
    // and the retransmission goes at 1024.
    assert_eq!(retransmission_sizes(2, 1), [1242, 218, 1024]);
}

/// An ICMP error quoting the segment `packet` (an IPv4/TCP packet one stack sent), from a
/// router to that stack.
fn icmp_quoting(ty: u8, code: u8, word: u32, packet: &[u8]) -> Vec<u8> {
    let mut icmp = vec![ty, code, 0, 0];
    icmp.extend_from_slice(&word.to_be_bytes());
    icmp.extend_from_slice(&packet[..28]);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&ROUTER.octets());
    p[16..20].copy_from_slice(&packet[12..16]);
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&icmp);
    p
}

/// Every kind of ICMP error, quoting segments really in flight (so in window), injected
/// into a 300 kB transfer between two engines: no panic, and the data arrives intact (soft
/// errors never abort a synchronized connection; PMTU reductions only shrink segments).
#[test]
fn icmp_storm_on_a_transfer_keeps_it_byte_exact() {
    use std::net::{IpAddr, SocketAddr};
    use utcp_engine::Stack;
    use utcp_engine::time::{Duration, Instant};
    let (a_ip, b_ip) = (IpAddr::V4(LOCAL_IP), IpAddr::V4(REMOTE_IP));
    let mut a = Stack::new(Config::deterministic(1));
    a.add_local_addr(a_ip);
    let mut b = Stack::new(Config::deterministic(2));
    b.add_local_addr(b_ip);
    let mut now = Instant::from_millis(1);
    let l = b.listen(SocketAddr::new(b_ip, 80), 4).unwrap();
    let c = a.connect(now, SocketAddr::new(a_ip, 0), SocketAddr::new(b_ip, 80)).unwrap();
    let kinds: [(u8, u8, u32); 10] = [
        (3, 0, 0),
        (3, 1, 0),
        (3, 2, 0),
        (3, 3, 0),
        (3, 13, 0),
        (11, 0, 0),
        (12, 0, 0),
        (3, 4, 0),
        (3, 4, 900),
        (3, 4, 1400),
    ];
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (mut sent, mut got, mut s) = (0usize, Vec::new(), None);
    let mut buf = vec![0u8; 65536];
    let mut rd = vec![0u8; 16384];
    let mut rng = 0x9e37_79b9_u32;
    for _ in 0..20_000 {
        if s.is_none() {
            s = b.accept(l).ok().map(|(s, _)| s);
        }
        if sent < data.len() && a.state(c) == Some(State::Established) {
            sent += a.send(c, &data[sent..]).unwrap_or(0);
        }
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            let pkt = buf[..n].to_vec();
            b.handle_packet(now, &pkt);
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            if rng.is_multiple_of(3) {
                let (ty, code, word) = kinds[(rng >> 8) as usize % kinds.len()];
                a.handle_packet(now, &icmp_quoting(ty, code, word, &pkt));
            }
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            a.handle_packet(now, &buf[..n]);
        }
        if let Some(s) = s {
            while let Ok(n) = b.recv(s, &mut rd) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&rd[..n]);
            }
        }
        if got.len() == data.len() {
            break;
        }
        now = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min().unwrap_or(now).max(now)
            + Duration::from_micros(100);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "byte-exact");
    assert_eq!(a.state(c), Some(State::Established));
    let k = a.counters();
    assert!(k.icmp_soft_errors > 100 && k.pmtu_reductions >= 1, "{k}");
    // MTU 0 makes RFC 1191 §5 guess the plateau below the quoted length, step by step
    // down to the 508 plateau, which `Config::min_pmtu` raises to 552: MSS 512.
    assert_eq!(a.path_mss(c).unwrap(), Some(512), "min_pmtu 552 - 40");
}

/// Mutated ICMP errors (random bytes flipped, checksums fixed up half of the time) never
/// panic; whatever they do, the connection stays consistent and can still send.
#[test]
fn mutated_icmp_errors_never_panic() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(1460));
    h.write(&payload(3000));
    h.drain();
    let mut rng = 0x2545_f491_u32;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        rng
    };
    for i in 0..20_000u32 {
        let ty = [3u8, 11, 12, 4, 5][(next() % 5) as usize];
        let mut p = icmp_error(ty, (next() % 16) as u8, next() % 2000, h.our(next() % 3000));
        for _ in 0..(next() % 4) {
            let at = (next() as usize) % p.len();
            p[at] ^= 1 << (next() % 8);
        }
        if i % 2 == 0 && p.len() >= 28 {
            p[22..24].copy_from_slice(&[0, 0]);
            let c = checksum(&p[20..]);
            p[22..24].copy_from_slice(&c.to_be_bytes());
            p[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&p[..20]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let n = (next() as usize) % (p.len() + 1);
        h.send_raw(&p[..if i % 7 == 0 { n } else { p.len() }]);
        // Raw: a flipped type byte can make an echo request, and its reply is no TCP.
        let mut buf = [0u8; 2048];
        while h.stack.poll_transmit(h.now, &mut buf).is_some() {}
    }
    assert_eq!(h.state(), Some(State::Established), "no ICMP error aborts a synchronized connection");
    let mss = h.stack.path_mss(h.c()).unwrap().unwrap_or(1460);
    assert!(mss >= 512, "never below min_pmtu: {mss}");
    h.send(Seg::new(ACK, h.peer(0), h.our(3000)));
    h.write(&payload(10));
    let o = h.recv().expect("the connection still sends");
    assert_eq!(o.payload.len(), 10);
}

/// Zero-window probes that go unanswered are no black hole: the MSS stays (the check
/// skips timeouts while SND.WND = 0).
#[test]
fn zero_window_probe_timeouts_are_no_black_hole() {
    let mut c = base_config();
    c.mtu_probing = 1;
    let mut h = H::new(c);
    h.establish_passive(mss_opts(1460));
    h.write(&payload(1460));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(1460);
    h.send(Seg::new(ACK, h.peer(0), h.our(1460)).win(0));
    h.write(&payload(3000));
    h.expect_nothing();
    for _ in 0..6 {
        h.fire_timer();
        h.drain();
    }
    assert_eq!(h.state(), Some(State::Established));
    assert_eq!(h.stack.path_mss(h.c()).unwrap(), None);
    assert_eq!(h.stack.counters().pmtu_black_holes, 0);
}

/// Send `total` bytes through a path that drops every segment longer than `limit` bytes of
/// payload (no ICMP) and ACKs the rest cumulatively; returns the payload sizes sent.
fn through_path(mtu_probing: u8, limit: usize, total: usize) -> (H, Vec<usize>) {
    let mut c = base_config();
    c.mtu_probing = mtu_probing;
    let mut h = H::new(c);
    h.establish_passive(mss_opts(1460));
    h.write(&payload(total));
    let (mut sizes, mut rcv_nxt) = (Vec::new(), h.our(0));
    for _ in 0..5_000 {
        let out = h.drain();
        if out.is_empty() {
            if h.stack.status(h.c()).unwrap().bytes_in_flight == 0 {
                break;
            }
            h.fire_timer();
            continue;
        }
        for o in out {
            sizes.push(o.payload.len());
            if o.payload.len() <= limit && o.seq == rcv_nxt {
                rcv_nxt = rcv_nxt.wrapping_add(o.payload.len() as u32);
            }
            if !o.payload.is_empty() {
                h.send(Seg::new(ACK, h.peer(0), rcv_nxt));
            }
        }
    }
    assert_eq!(rcv_nxt, h.our(total as u32), "every byte delivered");
    (h, sizes)
}

/// RFC 4821 §7.3 upward search (Linux tcp_mtu_probing=2): from base_mss the MSS climbs by
/// acknowledged probes, halving the remaining range each time, to within 8 bytes of the
/// peer's MSS; no probe is ever lost on a path that takes them all.
#[test]
fn probes_climb_to_the_peer_mss_on_an_open_path() {
    let (h, sizes) = through_path(2, 1460, 200_000);
    let mss = h.stack.path_mss(h.c()).unwrap().unwrap();
    assert!((1452..=1460).contains(&mss), "mss {mss}");
    assert_eq!(sizes[0], 1242, "the first segment is the first probe");
    let k = h.stack.counters();
    assert_eq!((k.pmtu_probes_acked, k.pmtu_probes_failed), (6, 0));
    assert_eq!(k.timeouts, 0);
}

/// A 1240-byte black hole (no ICMP): the probes above it are lost, the search stays below
/// and converges within 8 bytes under it; the transfer completes.
#[test]
fn probes_stop_below_a_black_hole() {
    let (h, sizes) = through_path(2, 1240, 200_000);
    let mss = h.stack.path_mss(h.c()).unwrap().unwrap();
    assert!((1232..=1240).contains(&mss), "mss {mss}");
    assert!(sizes.iter().filter(|&&s| s > 1240).count() <= 2, "few lost probes: {sizes:?}");
    assert!(h.stack.counters().pmtu_probes_failed >= 1);
}

/// RFC 1191 §6.3: the MSS learned from Fragmentation Needed is forgotten after
/// `Config::pmtu_expires` (Linux route mtu_expires, 600 s); new data then tries the
/// link's size again (a path still that narrow would answer with another ICMP).
#[test]
fn an_icmp_learned_pmtu_expires() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(1460));
    h.write(&payload(1460));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(1460);
    h.send_raw(&icmp_error(3, 4, 1280, h.our(0)));
    h.expect(ACK, h.our(0), h.peer(0)).len(1240);
    h.expect(ACK | PSH, h.our(1240), h.peer(0)).len(220);
    h.send(Seg::new(ACK, h.peer(0), h.our(1460)));
    h.advance(Duration::from_secs(599));
    h.write(&payload(1460));
    h.expect(ACK, h.our(1460), h.peer(0)).len(1240);
    h.expect(ACK | PSH, h.our(2700), h.peer(0)).len(220);
    h.send(Seg::new(ACK, h.peer(0), h.our(2920)));
    h.advance(Duration::from_secs(2));
    h.write(&payload(1460));
    h.expect(ACK | PSH, h.our(2920), h.peer(0)).len(1460);
    assert_eq!(h.stack.path_mss(h.c()).unwrap(), None, "the ICMP's value expired");
}

/// RFC 4821 §7.2 / Linux tcp_probe_interval: a search that stopped below a black hole
/// starts again from the link's MSS after `Config::mtu_probe_interval`, so a path that
/// got wider would be found: the first new segment is a probe above the old limit.
#[test]
fn the_search_starts_again_after_the_probe_interval() {
    let (mut h, _) = through_path(2, 1240, 200_000);
    let mss = h.stack.path_mss(h.c()).unwrap().unwrap();
    h.advance(Duration::from_secs(60));
    h.write(&payload(20_000));
    let first = h.drain().first().map(|o| o.payload.len()).unwrap();
    assert!(first <= mss as usize, "within the interval no probe above the limit: {first}");
    h.send(Seg::new(ACK, h.peer(0), h.our(200_000 + first as u32)));
    h.drain();
    let (mut h, _) = through_path(2, 1240, 200_000);
    h.advance(Duration::from_secs(601));
    h.write(&payload(20_000));
    let first = h.drain().first().map(|o| o.payload.len()).unwrap();
    assert!(first > 1240, "a probe above the old black hole: {first}");
}
