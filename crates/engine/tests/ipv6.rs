//! IPv6 (issue 13): the wire layer (RFC 8200 header, extension headers, RFC 5722
//! reassembly) and the dual-stack engine (per-family MSS, RFC 6437 flow labels,
//! IPV6_V6ONLY listeners, martians, ICMPv6 echo), with exact segments on virtual time.

mod common;
use common::*;
use utcp_engine::wire::checksum;
use utcp_engine::wire::ipv6::{self, Ipv6Out};
use utcp_engine::wire::{TcpRepr, emit_ipv6_tcp, parse_ipv6_tcp};

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// A valid IPv6 + TCP packet from the peer to us (SYN with MSS 1440, 3 data bytes).
fn tcp6(src: Ipv6Addr, dst: Ipv6Addr, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
    let h = TcpHeaderOut {
        tcp: TcpRepr {
            src_port: REMOTE_PORT,
            dst_port: LOCAL_PORT,
            seq: SeqNum(PEER_ISS),
            flags,
            window: PEER_WIN,
            options: TcpOptions { mss: Some(1440), ..TcpOptions::default() },
            ..TcpRepr::default()
        },
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        ttl: 64,
        ip_id: 0,
        flow_label: 0xabcde,
    };
    let mut buf = vec![0u8; 2000];
    let n = emit_ipv6_tcp(&mut buf, &h, OptionLayout::Linux, &[payload]).expect("fits");
    buf.truncate(n);
    buf
}

/// Insert extension headers (type, body after the next-header byte) between the IPv6
/// header and the upper layer, fixing the chain and the payload length.
fn with_ext(p: &[u8], exts: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = p[..40].to_vec();
    let upper = p[6];
    let mut chain: Vec<u8> = exts.iter().map(|e| e.0).collect();
    chain.push(upper);
    out[6] = chain[0];
    for (i, (_, body)) in exts.iter().enumerate() {
        out.push(chain[i + 1]);
        out.extend_from_slice(body);
    }
    out.extend_from_slice(&p[40..]);
    let len = (out.len() - 40) as u16;
    out[4..6].copy_from_slice(&len.to_be_bytes());
    out
}

/// An options header body (hdr ext len, then options padded to 8-byte units).
fn opts_body(options: &[u8]) -> Vec<u8> {
    let total = (2 + options.len()).div_ceil(8) * 8;
    let mut b = vec![((total / 8) - 1) as u8];
    b.extend_from_slice(options);
    while b.len() + 1 < total {
        b.push(0); // Pad1
    }
    b
}

// ------------------------------------------------------------------ wire

#[test]
fn tcp_over_ipv6_round_trips_and_etherparse_agrees() {
    let p = tcp6(v6("2001:db8::2"), v6("2001:db8::1"), SYN, b"abc");
    assert_eq!(p.len(), 40 + 24 + 3);
    let s = parse_ipv6_tcp(&p).expect("valid");
    assert_eq!((s.src, s.dst), (IpAddr::V6(v6("2001:db8::2")), IpAddr::V6(v6("2001:db8::1"))));
    assert_eq!((s.src_port, s.dst_port, s.seq, s.flags), (REMOTE_PORT, LOCAL_PORT, SeqNum(PEER_ISS), SYN));
    assert_eq!(s.options.mss, Some(1440));
    assert_eq!(s.payload, b"abc");
    assert_eq!(parse_ip_tcp(&p).expect("dispatch by version").payload, b"abc");
    let sliced = etherparse::SlicedPacket::from_ip(&p).expect("etherparse parses");
    let Some(etherparse::NetSlice::Ipv6(ip)) = &sliced.net else { panic!("not ipv6") };
    let iph = ip.header().to_header();
    assert_eq!(iph.flow_label.value(), 0xabcde);
    assert_eq!(iph.hop_limit, 64);
    let Some(etherparse::TransportSlice::Tcp(tcp)) = &sliced.transport else { panic!("not tcp") };
    let th = tcp.to_header();
    assert_eq!(th.checksum, th.calc_checksum_ipv6(&iph, tcp.payload()).expect("checksum"));
    // Corrupt one payload byte: the RFC 8200 §8.1 pseudo-header checksum catches it.
    let mut bad = p.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(parse_ipv6_tcp(&bad).err(), Some(DropReason::BadTcpChecksum));
    // IPv4 parsing refuses it by version.
    assert_eq!(parse_ipv4_tcp(&p).err(), Some(DropReason::Ipv6));
}

#[test]
fn extension_headers_are_walked_and_skipped() {
    let p = tcp6(v6("2001:db8::2"), v6("2001:db8::1"), SYN, b"xyz");
    let hbh = (ipv6::NH_HOP_BY_HOP, opts_body(&[5, 2, 0, 0])); // Router Alert: skipped
    let dst = (ipv6::NH_DEST_OPTS, opts_body(&[1, 2, 0, 0, 0x1e, 1, 0])); // PadN, unknown 00
    let rt = (ipv6::NH_ROUTING, vec![0, 4, 0, 0, 0, 0, 0]); // type 4 (SRH), segments left 0
    let q = with_ext(&p, &[hbh.clone(), dst.clone(), rt.clone(), dst.clone()]);
    let s = parse_ipv6_tcp(&q).expect("extension headers skipped");
    assert_eq!(s.payload, b"xyz");
    let check = |name: &str, exts: &[(u8, Vec<u8>)], want: DropReason| {
        assert_eq!(parse_ipv6_tcp(&with_ext(&p, exts)).err(), Some(want), "{name}");
    };
    // RFC 8200 §4.3: hop-by-hop only right after the IPv6 header.
    check("hbh second", &[dst.clone(), hbh.clone()], DropReason::Ipv6ExtHeader);
    // RFC 5095 §3: RH0 with segments left is never executed.
    check("rh0", &[(ipv6::NH_ROUTING, vec![0, 0, 1, 0, 0, 0, 0])], DropReason::Ipv6RoutingType0);
    // RFC 8200 §4.4: an unrecognised type with segments left is discarded.
    check("rh9", &[(ipv6::NH_ROUTING, vec![0, 9, 1, 0, 0, 0, 0])], DropReason::Ipv6ExtHeader);
    // RFC 8200 §4.2: action bits 01 (0x40..) discard.
    check("option 01", &[(ipv6::NH_DEST_OPTS, opts_body(&[0x4f, 0]))], DropReason::Ipv6BadOption);
    check("option 11", &[(ipv6::NH_DEST_OPTS, opts_body(&[0xde, 0]))], DropReason::Ipv6BadOption);
    // RFC 2675 jumbo payload option.
    check("jumbo", &[(ipv6::NH_HOP_BY_HOP, opts_body(&[0xc2, 4, 0, 1, 0, 0]))], DropReason::Ipv6Jumbogram);
    // Atomic fragment: offset 0, M = 0.
    check("atomic", &[(ipv6::NH_FRAGMENT, vec![0, 0, 0, 0, 0, 0, 7])], DropReason::Ipv6AtomicFragment);
    // An option running past its header.
    check("option overrun", &[(ipv6::NH_DEST_OPTS, vec![0, 1, 9, 0, 0, 0, 0])], DropReason::Ipv6ExtHeader);
    // More than MAX_EXT_HEADERS headers.
    let many: Vec<_> = (0..=ipv6::MAX_EXT_HEADERS).map(|_| dst.clone()).collect();
    check("too many", &many, DropReason::Ipv6ExtHeader);
    let ok: Vec<_> = (0..ipv6::MAX_EXT_HEADERS).map(|_| dst.clone()).collect();
    assert!(parse_ipv6_tcp(&with_ext(&p, &ok)).is_ok(), "MAX_EXT_HEADERS headers are fine");
    // A header whose length runs past the payload.
    let mut cut = with_ext(&p, std::slice::from_ref(&dst));
    cut[41] = 200;
    assert_eq!(parse_ipv6_tcp(&cut).err(), Some(DropReason::Ipv6ExtHeader));
    // No next header (59).
    let mut none = p.clone();
    none[6] = ipv6::NH_NONE;
    assert_eq!(parse_ipv6_tcp(&none).err(), Some(DropReason::NotTcp));
    // Payload length beyond the buffer; trailing padding ignored.
    let mut long = p.clone();
    long[4..6].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(parse_ipv6_tcp(&long).err(), Some(DropReason::BadTotalLength));
    let mut padded = p.clone();
    padded.extend_from_slice(&[0; 6]);
    assert_eq!(parse_ipv6_tcp(&padded).expect("padding ignored").payload, b"xyz");
    assert_eq!(parse_ipv6_tcp(&p[..39]).err(), Some(DropReason::Truncated));
}

#[test]
fn ipv6_martians_are_dropped_by_reason() {
    use DropReason::*;
    let us = v6("2001:db8::1");
    let cases = [
        ("::1", "2001:db8::1", MartianSrcReserved),
        ("::ffff:10.0.0.2", "2001:db8::1", MartianSrcReserved),
        ("ff02::1", "2001:db8::1", MartianSrcMulticast),
        ("::", "2001:db8::1", MartianSrcUnspecified),
        ("2001:db8::2", "ff02::1", MartianDstMulticast),
        ("2001:db8::2", "::", BadAddress),
        ("2001:db8::2", "::1", BadAddress),
    ];
    for (src, dst, want) in cases {
        let p = tcp6(v6(src), v6(dst), SYN, b"");
        assert_eq!(parse_ipv6_tcp(&p).err(), Some(want), "{src} -> {dst}");
    }
    // Our own address as the source (LAND) is the Stack's check: dropped, no answer.
    let mut h = H::new6(base_config());
    h.listen();
    h.send_raw(&tcp6(us, us, SYN, b""));
    h.expect_nothing();
    assert_eq!(h.stack.counters().dropped(Land), 1);
    h.send_raw(&tcp6(v6("::1"), us, SYN, b""));
    h.expect_nothing();
    assert_eq!(h.stack.counters().dropped(MartianSrcReserved), 1);
}

/// Split `p` (an IPv6 packet without extension headers) into fragments of the
/// fragmentable part at the given byte offsets.
fn fragments(p: &[u8], id: u32, cuts: &[(usize, usize)]) -> Vec<Vec<u8>> {
    let upper = p[6];
    let body = &p[40..];
    cuts.iter()
        .map(|&(s, e)| {
            let mut f = p[..40].to_vec();
            f[6] = ipv6::NH_FRAGMENT;
            let more = e < body.len();
            let om = ((s / 8) as u16) << 3 | more as u16;
            f.extend_from_slice(&[upper, 0]);
            f.extend_from_slice(&om.to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(&body[s..e]);
            let len = (f.len() - 40) as u16;
            f[4..6].copy_from_slice(&len.to_be_bytes());
            f
        })
        .collect()
}

#[test]
fn ipv6_fragments_are_reassembled_and_overlaps_drop_the_datagram() {
    let mut h = H::new6(base_config());
    h.listen();
    let syn = tcp6(REMOTE_IP6, LOCAL_IP6, SYN, &[7u8; 40]);
    // The SYN's 64 bytes (24 header + 40 data) in three fragments, out of order.
    let f = fragments(&syn, 99, &[(0, 16), (16, 48), (48, 64)]);
    h.send_raw(&f[2]);
    h.send_raw(&f[0]);
    h.expect_nothing();
    assert_eq!(h.stack.reassembly_pending(), 1);
    h.send_raw(&f[1]);
    let o = h.recv().expect("a SYN-ACK to the reassembled SYN");
    assert_eq!((o.flags, o.ack, o.dst), (SYN | ACK, PEER_ISS + 1, remote_addr()));
    assert_eq!(h.stack.reassembly_pending(), 0);
    assert_eq!(h.stack.counters().reasm_oks, 1);
    // RFC 5722 §4: an overlapping fragment discards the whole datagram.
    let g = fragments(&syn, 100, &[(0, 24), (16, 64)]);
    h.send_raw(&g[0]);
    h.send_raw(&g[1]);
    h.expect_nothing();
    assert_eq!(h.stack.counters().dropped(DropReason::FragOverlap), 1);
    assert_eq!(h.stack.reassembly_pending(), 0);
    // A fragment for another address takes no memory.
    let other = tcp6(REMOTE_IP6, v6("2001:db8::99"), SYN, &[0; 40]);
    h.send_raw(&fragments(&other, 5, &[(0, 16)])[0]);
    assert_eq!(h.stack.counters().dropped(DropReason::NotOurAddress), 1);
    assert_eq!(h.stack.reassembly_pending(), 0);
}

// ------------------------------------------------------------------ engine

#[test]
fn passive_open_transfer_and_close_over_ipv6_with_one_flow_label() {
    let mut h = H::new6(base_config());
    // RFC 9293 §3.7.1 over IPv6: MSS = MTU 1500 − 40 (IPv6) − 20 (TCP).
    let synack = h.establish_passive(mss_opts(1440));
    assert_eq!(synack.options.mss, Some(1440));
    assert_eq!((synack.src, synack.dst), (local_addr(), remote_addr()));
    let label = synack.flow_label;
    assert!(label != 0 && label <= 0xf_ffff, "RFC 6437: a 20-bit label: {label:#x}");
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"hello"));
    let ack = h.expect(ACK, h.our(0), h.peer(5));
    assert_eq!(ack.flow_label, label, "RFC 6437: constant for the connection");
    assert_eq!(h.read_all(), b"hello");
    h.write(&payload(3000));
    // Full-sized segments are 1440 bytes: 40 + 20 + 1440 = the 1500-byte MTU.
    let d = h.expect(ACK, h.our(0), h.peer(5)).len(1440);
    assert_eq!(d.flow_label, label);
    h.expect(ACK, h.our(1440), h.peer(5)).len(1440);
    h.expect(ACK | PSH, h.our(2880), h.peer(5)).len(120);
    h.send(Seg::new(ACK, h.peer(5), h.our(3000)));
    h.stack.close(h.c());
    let fin = h.expect(FIN | ACK, h.our(3000), h.peer(5));
    assert_eq!(fin.flow_label, label);
    h.send(Seg::new(FIN | ACK, h.peer(5), h.our(3001)));
    h.expect(ACK, h.our(3001), h.peer(6));
    assert_eq!(h.state(), Some(State::TimeWait));
}

#[test]
fn active_open_over_ipv6_advertises_the_ipv6_mss() {
    let mut h = H::new6(base_config());
    let syn = h.open_to_syn_sent();
    assert_eq!(syn.options.mss, Some(1440));
    assert_eq!(syn.dst, remote_addr());
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).opts(mss_opts(1440)));
    let ack = h.expect(ACK, h.our(0), h.peer(0));
    assert_eq!(ack.flow_label, syn.flow_label);
    assert_eq!(h.state(), Some(State::Established));
}

#[test]
fn segment_for_no_connection_gets_a_reset_over_ipv6() {
    let mut h = H::new6(base_config());
    // RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    h.send(Seg::new(SYN, PEER_ISS, 0));
    let o = h.expect(RST | ACK, 0, PEER_ISS + 1);
    assert_eq!((o.src, o.dst), (local_addr(), remote_addr()));
    h.send(Seg::new(ACK, 5, 77));
    h.expect(RST, 77, 0);
}

/// RFC 3493 §5.3 IPV6_V6ONLY: a `[::]` listener takes IPv4 too unless `Config::v6only`.
#[test]
fn wildcard_ipv6_listener_takes_ipv4_unless_v6only() {
    for v6only in [false, true] {
        let mut c = base_config();
        c.v6only = v6only;
        let mut h = H::new(c);
        h.stack.add_local_addr(IpAddr::V6(LOCAL_IP6));
        let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), LOCAL_PORT);
        let l = h.stack.listen(any6, 16).expect("listen on [::]");
        // IPv6 always.
        let from6 = SocketAddr::new(IpAddr::V6(REMOTE_IP6), REMOTE_PORT);
        let to6 = SocketAddr::new(IpAddr::V6(LOCAL_IP6), LOCAL_PORT);
        h.send(Seg::new(SYN, PEER_ISS, 0).from(from6).to(to6));
        let o = h.recv().expect("SYN-ACK over IPv6");
        assert_eq!((o.dst, o.flags, o.ack, o.options.mss), (from6, SYN | ACK, PEER_ISS + 1, Some(1440)));
        // IPv4 only without v6only.
        h.send(Seg::new(SYN, PEER_ISS, 0));
        if v6only {
            h.expect(RST | ACK, 0, PEER_ISS + 1);
        } else {
            let o = h.recv().expect("SYN-ACK over IPv4");
            assert_eq!((o.dst, o.flags, o.ack), (remote_addr(), SYN | ACK, PEER_ISS + 1));
            assert_eq!(o.options.mss, Some(1460), "the IPv4 MSS for an IPv4 connection");
            assert_eq!(o.flow_label, 0);
            h.send(Seg::new(ACK, PEER_ISS + 1, o.seq.wrapping_add(1)));
        }
        let accepted = std::iter::from_fn(|| h.stack.accept(l).ok()).count();
        assert_eq!(accepted, if v6only { 0 } else { 1 }, "v6only = {v6only}");
    }
}

// ------------------------------------------------------------------ ICMPv6 echo

/// An ICMPv6 echo request from `src` to `dst` with a valid checksum.
fn echo6(src: Ipv6Addr, dst: Ipv6Addr, id: u16, seq: u16, data: &[u8], icmp_type: u8) -> Vec<u8> {
    let mut msg = vec![icmp_type, 0, 0, 0];
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&seq.to_be_bytes());
    msg.extend_from_slice(data);
    let c = checksum::finish(checksum::sum(&msg, ipv6::pseudo_header(&src, &dst, 58, msg.len() as u32)));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    let ip = Ipv6Out { src, dst, next_header: 58, hop_limit: 64, traffic_class: 0, flow_label: 0 };
    let mut p = vec![0u8; 40];
    assert!(ip.emit(&mut p, msg.len()));
    p.extend_from_slice(&msg);
    p
}

#[test]
fn icmpv6_echo_request_gets_a_reply_rate_limited() {
    let mut c = Config::deterministic(1);
    c.icmp_echo_per_sec = 2;
    let mut s = Stack::new(c);
    s.add_local_addr(IpAddr::V6(LOCAL_IP6));
    let now = Instant::from_millis(1000);
    let req = echo6(REMOTE_IP6, LOCAL_IP6, 0x77, 3, b"ping6", 128);
    s.handle_packet(now, &req);
    let mut buf = vec![0u8; 2000];
    let n = s.poll_transmit(now, &mut buf).expect("an echo reply");
    let r = &buf[..n];
    let ip = ipv6::parse(r).expect("a valid IPv6 packet");
    assert_eq!((ip.src, ip.dst, ip.next_header, ip.hop_limit), (LOCAL_IP6, REMOTE_IP6, 58, 64));
    // RFC 4443 §4.2: type 129, code 0, same identifier, sequence number and data.
    assert_eq!(ip.payload[..2], [129, 0]);
    assert_eq!(ip.payload[4..], req[44..]);
    assert!(ipv6::verify_upper(&ip.src, &ip.dst, 58, ip.payload), "checksum over the pseudo-header");
    assert_eq!(s.poll_transmit(now, &mut buf), None);
    assert_eq!(s.counters().icmp_in_echos, 1);
    assert_eq!(s.counters().icmp_out_echo_reps, 1);
    // Rate limit: two per second, the bucket started full.
    s.handle_packet(now, &req);
    s.handle_packet(now, &req);
    assert_eq!(s.counters().dropped(DropReason::IcmpRateLimited), 1);
    assert!(s.poll_transmit(now, &mut buf).is_some());
    assert_eq!(s.poll_transmit(now, &mut buf), None);
    // Bad checksum, not for us, from a multicast source, not an echo: dropped, counted.
    let mut bad = req.clone();
    bad[45] ^= 1;
    s.handle_packet(now, &bad);
    assert_eq!(s.counters().dropped(DropReason::IcmpBadChecksum), 1);
    s.handle_packet(now, &echo6(REMOTE_IP6, v6("2001:db8::9"), 1, 1, b"", 128));
    assert_eq!(s.counters().dropped(DropReason::NotOurAddress), 1);
    s.handle_packet(now, &echo6(v6("ff02::1"), LOCAL_IP6, 1, 1, b"", 128));
    assert_eq!(s.counters().dropped(DropReason::MartianSrcMulticast), 1);
    // Neighbour solicitation (135): not ours to answer. An error (type 1) goes to the ICMP
    // error handler (icmp_error::from_v6), which finds no TCP header in this quote.
    s.handle_packet(now, &echo6(REMOTE_IP6, LOCAL_IP6, 0, 0, &[0; 16], 135));
    s.handle_packet(now, &echo6(REMOTE_IP6, LOCAL_IP6, 0, 0, &[0x60; 48], 1));
    assert_eq!(s.counters().dropped(DropReason::IcmpNotEcho), 1);
    assert_eq!(s.counters().dropped(DropReason::IcmpNotTcp), 1);
    assert_eq!(s.poll_transmit(now + Duration::from_secs(5), &mut buf), None);
}
