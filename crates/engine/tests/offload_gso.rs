//! TUN offload, the engine's side (issue 12): super-segments out (`Stack::poll_transmit_gso`)
//! and device-verified super-segments in (`Stack::handle_packet_checksum_ok`).
//!
//! The send tests drive two identical senders with identical input on virtual time: one
//! polled with `poll_transmit`, one with `poll_transmit_gso`. Each super-segment is cut the
//! way Linux TSO cuts it (per-piece SEG.SEQ, IPv4 ID + 1, PSH/FIN on the last piece, full
//! checksums) and must equal, byte for byte, the segments the plain twin sends.

mod common;

use common::{ACK, H, PSH, Seg, base_config, payload};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utcp_engine::time::{Duration, Instant};
use utcp_engine::wire::checksum;
use utcp_engine::wire::{TcpOptions, parse_ip_tcp_checksum_ok, parse_ipv4_tcp};
use utcp_engine::{Config, ConnId, Stack, Transmit};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// Cut a super-segment as Linux TSO does (tcp_gso_segment): the header repeated, SEG.SEQ
/// and the IPv4 ID advanced per piece, PSH and FIN only on the last, checksums computed.
fn tso_split(p: &[u8], t: Transmit) -> Vec<Vec<u8>> {
    let Some(size) = t.segment_size else {
        return vec![p.to_vec()];
    };
    let hdr = t.header_len;
    assert_eq!(t.csum_start, Some(20), "a super-segment asks the device for the checksum");
    // The device completes the checksum over the whole TCP part: it must verify.
    let mut whole = p.to_vec();
    let at = 20 + utcp_engine::TCP_CSUM_OFFSET;
    let c = checksum::checksum(&whole[20..]);
    whole[at..at + 2].copy_from_slice(&c.to_be_bytes());
    assert!(parse_ipv4_tcp(&whole).is_ok(), "completed super-segment checksum is valid");
    let seq0 = u32::from_be_bytes(p[24..28].try_into().unwrap());
    let id0 = u16::from_be_bytes([p[4], p[5]]);
    let chunks: Vec<&[u8]> = p[hdr..].chunks(size).collect();
    assert_eq!(chunks.len(), t.segments);
    let mut out = Vec::new();
    for (i, d) in chunks.iter().enumerate() {
        let mut s = p[..hdr].to_vec();
        s.extend_from_slice(d);
        let len = s.len() as u16;
        s[2..4].copy_from_slice(&len.to_be_bytes());
        s[4..6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
        s[10..12].fill(0);
        let ipc = checksum::checksum(&s[..20]);
        s[10..12].copy_from_slice(&ipc.to_be_bytes());
        let seq = seq0.wrapping_add((i * size) as u32);
        s[24..28].copy_from_slice(&seq.to_be_bytes());
        if i + 1 < chunks.len() {
            s[33] &= !(0x08 | 0x01); // PSH, FIN
        }
        s[36..38].fill(0);
        let src: [u8; 4] = s[12..16].try_into().unwrap();
        let dst: [u8; 4] = s[16..20].try_into().unwrap();
        let ph = checksum::pseudo_header_ipv4(src, dst, 6, (s.len() - 20) as u16);
        let tc = checksum::finish(checksum::sum(&s[20..], ph));
        // The kernel's way (tcp_gso_segment, then NEEDS_CSUM): the super-segment's field
        // (pseudo-header sum over the whole TCP length) is adjusted by the length change,
        // then the device sums from csum_start with that field in place and complements.
        let whole_field = u16::from_be_bytes([p[36], p[37]]);
        let piece_field = checksum::fold(
            u64::from(whole_field) + u64::from(!((p.len() - 20) as u16)) + (s.len() - 20) as u64,
        );
        s[36..38].copy_from_slice(&piece_field.to_be_bytes());
        assert_eq!(checksum::checksum(&s[20..]), tc, "kernel-style completion of piece {i}");
        s[36..38].copy_from_slice(&tc.to_be_bytes());
        out.push(s);
    }
    out
}

struct Twin {
    gso: Stack,
    plain: Stack,
    peer: Stack,
    now: Instant,
    c: (ConnId, ConnId),
    s: Option<ConnId>,
    received: Vec<u8>,
    supers: usize,
    max_pieces: usize,
    /// End of the highest sequence number sent so far (SND.MAX as seen on the wire).
    snd_max: Option<u32>,
    /// Packets with data `poll_transmit_gso` sent alone (their checksum must be complete).
    data_singles: usize,
}

fn sender_config() -> Config {
    let mut c = Config::deterministic(1);
    c.send_buffer = 1 << 20;
    c
}

impl Twin {
    fn new() -> Twin {
        let mut gso = Stack::new(sender_config());
        let mut plain = Stack::new(sender_config());
        gso.add_local_addr(A);
        plain.add_local_addr(A);
        let mut pc = Config::deterministic(2);
        pc.recv_buffer = 1 << 20;
        let mut peer = Stack::new(pc);
        peer.add_local_addr(B);
        let now = Instant::from_millis(1000);
        let l = peer.listen(SocketAddr::new(B, 80), 4).unwrap();
        let (la, rb) = (SocketAddr::new(A, 40000), SocketAddr::new(B, 80));
        let c = (gso.connect(now, la, rb).unwrap(), plain.connect(now, la, rb).unwrap());
        let mut t = Twin {
            gso,
            plain,
            peer,
            now,
            c,
            s: None,
            received: Vec::new(),
            supers: 0,
            max_pieces: 0,
            snd_max: None,
            data_singles: 0,
        };
        t.pump(64);
        let (s, _) = t.peer.accept(l).expect("handshake");
        t.s = Some(s);
        t
    }

    /// Move everything until quiet; the twins must send the same bytes.
    fn pump(&mut self, max_segs: usize) {
        let mut buf = vec![0u8; 65536];
        let mut twin = vec![0u8; 65536];
        let mut sink = vec![0u8; 65536];
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(t) = self.gso.poll_transmit_gso(self.now, &mut buf, max_segs) {
                assert!(t.segments <= max_segs.max(1));
                if t.segments == 1 {
                    // Alone: no device help asked, a full checksum (partial ones completed).
                    assert_eq!((t.segment_size, t.csum_start), (None, None), "{t:?}");
                    self.data_singles += usize::from(t.len > t.header_len);
                }
                if t.segments > 1 {
                    self.supers += 1;
                    self.max_pieces = self.max_pieces.max(t.segments);
                    // Only new data is glued: a retransmission is always a normal segment.
                    let seq = u32::from_be_bytes(buf[24..28].try_into().unwrap());
                    assert_eq!(Some(seq), self.snd_max, "a super-segment starts at SND.MAX");
                }
                for piece in tso_split(&buf[..t.len], t) {
                    let seq = u32::from_be_bytes(piece[24..28].try_into().unwrap());
                    let doff = (piece[32] >> 4) as u32 * 4;
                    let end = seq.wrapping_add(piece.len() as u32 - 20 - doff);
                    if self.snd_max.is_none_or(|m| (end.wrapping_sub(m) as i32) > 0) {
                        self.snd_max = Some(end);
                    }
                    let n = self.plain.poll_transmit(self.now, &mut twin).expect("the twin sends it too");
                    assert_eq!(piece, &twin[..n], "piece of a super-segment differs from the plain segment");
                    self.peer.handle_packet(self.now, &piece);
                }
                moved = true;
            }
            assert_eq!(self.plain.poll_transmit(self.now, &mut twin), None, "the twin sent more");
            while let Some(n) = self.peer.poll_transmit(self.now, &mut buf) {
                self.gso.handle_packet(self.now, &buf[..n]);
                self.plain.handle_packet(self.now, &buf[..n]);
                moved = true;
            }
            if let Some(s) = self.s {
                while let Ok(n) = self.peer.recv(s, &mut sink) {
                    if n == 0 {
                        break;
                    }
                    self.received.extend_from_slice(&sink[..n]);
                }
            }
            while self.gso.poll_event().is_some() {}
            while self.plain.poll_event().is_some() {}
            while self.peer.poll_event().is_some() {}
            if !moved {
                return;
            }
        }
        panic!("no quiet after 10000 rounds");
    }

    fn write(&mut self, data: &[u8]) {
        assert_eq!(self.gso.send(self.c.0, data).unwrap(), data.len());
        assert_eq!(self.plain.send(self.c.1, data).unwrap(), data.len());
    }

    fn tick(&mut self, d: Duration) {
        self.now += d;
        self.gso.handle_timeout(self.now);
        self.plain.handle_timeout(self.now);
        self.peer.handle_timeout(self.now);
    }
}

#[test]
fn super_segments_equal_the_segments_the_engine_would_send() {
    let mut t = Twin::new();
    let data = payload(300_000);
    t.write(&data);
    for _ in 0..200 {
        t.pump(64);
        t.tick(Duration::from_millis(5));
        if t.received.len() == data.len() {
            break;
        }
    }
    assert_eq!(t.received, data, "byte-exact through TSO-cut super-segments");
    assert!(t.supers > 5, "super-segments were sent ({})", t.supers);
    assert!(t.max_pieces >= 10, "cwnd allowed big ones ({} pieces)", t.max_pieces);
    // Per-segment accounting: the twins' counters agree (segments out, retransmissions).
    assert_eq!(t.gso.counters().out_segs, t.plain.counters().out_segs);
}

#[test]
fn max_segs_caps_the_super_segment_and_fin_rides_on_the_last_piece() {
    let mut t = Twin::new();
    let data = payload(40_000);
    t.write(&data);
    t.gso.close(t.c.0);
    t.plain.close(t.c.1);
    for _ in 0..100 {
        t.pump(4);
        t.tick(Duration::from_millis(5));
    }
    assert_eq!(t.received, data);
    assert!(t.supers > 0 && t.max_pieces == 4, "capped at 4 pieces: {}", t.max_pieces);
}

/// Data segments are written with only the pseudo-header sum while `poll_transmit_gso`
/// polls (the device checksums the pieces); one that goes out alone (a runt, a segment held
/// back because it did not continue the previous one, the head of a one-piece packet) gets
/// its full checksum: byte-identical to the plain twin's. Odd write sizes and a cap of 3
/// pieces make many of those.
#[test]
fn data_segments_sent_alone_carry_full_checksums() {
    let mut t = Twin::new();
    let mut all = Vec::new();
    for (i, n) in [1_000, 5_000, 3 * 1448 + 7, 100, 20_000, 1, 9_999].into_iter().enumerate() {
        let data = payload(n + i);
        t.write(&data);
        all.extend_from_slice(&data);
        t.pump(3);
        t.tick(Duration::from_millis(50));
    }
    for _ in 0..100 {
        t.pump(3);
        t.tick(Duration::from_millis(50));
    }
    assert_eq!(t.received, all, "byte-exact");
    assert!(t.supers > 0, "some super-segments");
    assert!(t.data_singles >= 5, "data segments went out alone: {}", t.data_singles);
}

#[test]
fn lost_segment_is_retransmitted_as_a_normal_segment() {
    let mut t = Twin::new();
    let data = payload(60_000);
    t.write(&data);
    // First flight: drop the whole first super-segment's second piece on the way.
    let mut buf = vec![0u8; 65536];
    let mut twin = vec![0u8; 65536];
    let tx = t.gso.poll_transmit_gso(t.now, &mut buf, 64).expect("data");
    assert!(tx.segments > 2, "IW10 gives a super-segment: {tx:?}");
    for (i, piece) in tso_split(&buf[..tx.len], tx).into_iter().enumerate() {
        let n = t.plain.poll_transmit(t.now, &mut twin).unwrap();
        assert_eq!(piece, &twin[..n]);
        if i != 1 {
            t.peer.handle_packet(t.now, &piece);
        }
    }
    let seq0 = u32::from_be_bytes(buf[24..28].try_into().unwrap());
    t.snd_max = Some(seq0.wrapping_add((tx.len - tx.header_len) as u32));
    // The rest (through recovery or the RTO) must still be per-segment identical.
    for _ in 0..400 {
        t.pump(64);
        t.tick(Duration::from_millis(10));
        if t.received.len() == data.len() {
            break;
        }
    }
    assert_eq!(t.received, data);
    assert!(t.gso.counters().retrans_segs > 0, "a retransmission happened");
    assert_eq!(t.gso.counters().retrans_segs, t.plain.counters().retrans_segs);
}

/// A receiver fed whole super-segments (GRO: the device hands them over uncut, with the
/// checksum vouched for) gets the data byte-exact.
#[test]
fn whole_super_segments_are_accepted_by_a_receiver() {
    let mut cfg = sender_config();
    cfg.recv_buffer = 1 << 20;
    let mut a = Stack::new(cfg);
    a.add_local_addr(A);
    let mut pc = Config::deterministic(2);
    pc.recv_buffer = 1 << 20;
    let mut b = Stack::new(pc);
    b.add_local_addr(B);
    let mut now = Instant::from_millis(1000);
    let l = b.listen(SocketAddr::new(B, 80), 4).unwrap();
    let c = a.connect(now, SocketAddr::new(A, 40000), SocketAddr::new(B, 80)).unwrap();
    let data = payload(500_000);
    let mut buf = vec![0u8; 65536];
    let mut sink = vec![0u8; 65536];
    let (mut sent, mut got, mut s, mut supers) = (0, Vec::new(), None, 0);
    for _ in 0..2000 {
        if sent < data.len()
            && let Ok(n) = a.send(c, &data[sent..])
        {
            sent += n;
        }
        while let Some(t) = a.poll_transmit_gso(now, &mut buf, 64) {
            if t.segments > 1 {
                supers += 1;
                assert!(parse_ipv4_tcp(&buf[..t.len]).is_err(), "partial checksum fails a full check");
                assert!(parse_ip_tcp_checksum_ok(&buf[..t.len]).is_ok());
            }
            b.handle_packet_checksum_ok(now, &buf[..t.len]);
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            a.handle_packet(now, &buf[..n]);
        }
        if s.is_none() {
            s = b.accept(l).ok().map(|x| x.0);
        }
        if let Some(s) = s {
            while let Ok(n) = b.recv(s, &mut sink) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&sink[..n]);
            }
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
        if got.len() == data.len() {
            break;
        }
        now += Duration::from_millis(1);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert!(got == data, "byte-exact ({} of {} bytes)", got.len(), data.len());
    assert!(supers > 10, "super-segments crossed ({supers})");
    assert_eq!(b.counters().total_drops(), 0, "nothing dropped");
}

/// RFC 9293 §3.10.7.4: a segment is acceptable by the window, whatever its size relative
/// to the MSS (a GRO super-segment is 40 MSS long). Exact segments out.
#[test]
fn segment_longer_than_mss_within_window_is_accepted() {
    let mut h = H::new(base_config());
    h.establish_passive(TcpOptions { mss: Some(1460), ..TcpOptions::default() });
    let big = payload(20 * 1460); // 29200 < the 64000-byte window
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(&big));
    let o = h.expect(ACK, h.our(0), h.peer(big.len() as u32));
    assert!(o.payload.is_empty());
    h.expect_nothing();
    assert_eq!(h.read_all(), big);
}

/// The same long segment with a bad checksum is dropped by `handle_packet`, while the
/// checksum-vouched entry point takes it (and still drops a bad IPv4 header checksum).
#[test]
fn checksum_ok_entry_skips_only_the_tcp_checksum() {
    let mut h = H::new(base_config());
    h.establish_passive(TcpOptions { mss: Some(1460), ..TcpOptions::default() });
    let big = payload(10 * 1460);
    let mut p = Seg::new(ACK, h.peer(0), h.our(0)).data(&big).packet();
    p[36] ^= 0xff; // corrupt the TCP checksum
    h.send_raw(&p);
    h.expect_nothing();
    assert_eq!(h.stack.counters().total_drops(), 1);
    let mut bad_ip = p.clone();
    bad_ip[10] ^= 0xff;
    let now = h.now;
    h.stack.handle_packet_checksum_ok(now, &bad_ip);
    h.expect_nothing();
    assert_eq!(h.stack.counters().total_drops(), 2, "the IPv4 header checksum is still checked");
    h.stack.handle_packet_checksum_ok(now, &p);
    h.expect(ACK, h.our(0), h.peer(big.len() as u32));
    assert_eq!(h.read_all(), big);
}

/// The reassembly path takes a super-segment too: one arriving out of order (past a hole)
/// is held whole and delivered once the hole is filled (RFC 9293 §3.10.7.4). Exact ACKs.
#[test]
fn out_of_order_segment_longer_than_mss_is_held_and_delivered() {
    let mut h = H::new(base_config());
    h.establish_passive(TcpOptions { mss: Some(1460), ..TcpOptions::default() });
    let data = payload(1460 + 20 * 1460);
    let (first, rest) = data.split_at(1460);
    h.send(Seg::new(ACK, h.peer(1460), h.our(0)).data(rest));
    // Out of order: a duplicate ACK for the hole at once (RFC 5681 §4.2).
    h.expect(ACK, h.our(0), h.peer(0));
    h.expect_nothing();
    assert!(h.read_all().is_empty());
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(first));
    h.expect(ACK, h.our(0), h.peer(data.len() as u32));
    h.expect_nothing();
    assert_eq!(h.read_all(), data);
}

/// After a timeout the whole flight goes back N (RFC 6298 §5.4, RFC 5681 §3.1): those
/// consecutive retransmissions stay normal segments (`Twin::pump` asserts every
/// super-segment starts at SND.MAX), identical to the plain twin's.
#[test]
fn go_back_n_after_a_timeout_is_not_glued() {
    let mut t = Twin::new();
    let data = payload(60_000);
    t.write(&data);
    let mut buf = vec![0u8; 65536];
    let mut twin = vec![0u8; 65536];
    let tx = t.gso.poll_transmit_gso(t.now, &mut buf, 64).expect("data");
    assert!(tx.segments > 2, "IW10 gives a super-segment: {tx:?}");
    for piece in tso_split(&buf[..tx.len], tx) {
        let n = t.plain.poll_transmit(t.now, &mut twin).unwrap();
        assert_eq!(piece, &twin[..n]); // and the whole flight is lost
    }
    let seq0 = u32::from_be_bytes(buf[24..28].try_into().unwrap());
    t.snd_max = Some(seq0.wrapping_add((tx.len - tx.header_len) as u32));
    let rto = t.gso.counters().retrans_segs;
    for _ in 0..2000 {
        t.pump(64);
        t.tick(Duration::from_millis(10));
        if t.received.len() == data.len() {
            break;
        }
    }
    assert_eq!(t.received, data);
    assert!(t.gso.counters().retrans_segs >= rto + 3, "went back N: {}", t.gso.counters().retrans_segs);
    assert_eq!(t.gso.counters().retrans_segs, t.plain.counters().retrans_segs);
}

/// Two connections with a full window of data queued each. The stack drains the first
/// before the second, so the second's first segment does not continue the first one's
/// super-segment (other ports): `poll_transmit_gso` holds it back (the glue that fails,
/// gso.rs) with its checksum completed, and it leads the next super-segment. Exact output:
/// the pieces of both packets are the plain twin's segments, in its order.
#[test]
fn a_segment_of_another_connection_is_held_and_leads_the_next_packet() {
    let mut t = Twin::new();
    let (la, rb) = (SocketAddr::new(A, 40001), SocketAddr::new(B, 80));
    let c2 = (t.gso.connect(t.now, la, rb).unwrap(), t.plain.connect(t.now, la, rb).unwrap());
    t.pump(64); // the second handshake (its child stays in the peer's accept queue)
    // IW10 (RFC 6928): ten full segments each, with more queued, so none carries PSH.
    let data = payload(20 * 1448);
    for (g, p) in [t.c, c2] {
        assert_eq!(t.gso.send(g, &data).unwrap(), data.len());
        assert_eq!(t.plain.send(p, &data).unwrap(), data.len());
    }
    let mut buf = vec![0u8; 65536];
    let mut twin = vec![0u8; 65536];
    for port in [40000u16, 40001] {
        let tx = t.gso.poll_transmit_gso(t.now, &mut buf, 64).expect("a super-segment");
        let size = tx.segment_size.expect("glued");
        assert_eq!(
            tx,
            Transmit {
                len: 52 + 10 * size,
                header_len: 52,
                segment_size: Some(size),
                segments: 10,
                csum_start: Some(20)
            }
        );
        assert_eq!(u16::from_be_bytes([buf[20], buf[21]]), port, "one connection per packet");
        for piece in tso_split(&buf[..tx.len], tx) {
            let n = t.plain.poll_transmit(t.now, &mut twin).expect("the twin sends it too");
            assert_eq!(piece, &twin[..n], "piece of a super-segment differs from the plain segment");
        }
    }
    assert_eq!(t.gso.poll_transmit_gso(t.now, &mut buf, 64), None);
    assert_eq!(t.plain.poll_transmit(t.now, &mut twin), None);
}

/// An ICMP echo request (RFC 792) from B to A carrying `data`; checksums valid.
fn ping_packet(data: &[u8]) -> Vec<u8> {
    let total = 28 + data.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (B, A) else { unreachable!() };
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = 8;
    p[28..].copy_from_slice(data);
    let c = checksum::checksum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

/// Packets that cannot lead a super-segment go out alone, and `header_len` is their IP
/// header plus their TCP header if they are TCP: an ICMP echo reply (RFC 792), short or
/// with data that would read as a TCP data offset, is 20; an IPv6 SYN is 40 plus its
/// TCP header. (It used to read a "TCP data offset" at IPv4 offsets in any packet.)
#[test]
fn packets_that_cannot_lead_go_out_alone_with_their_header_length() {
    let mut s = Stack::new(sender_config());
    s.add_local_addr(A);
    let now = Instant::from_millis(1000);
    let mut buf = vec![0u8; 65536];
    for (data, len) in [(&[][..], 28), (&[0xff; 56][..], 84)] {
        s.handle_packet(now, &ping_packet(data));
        let tx = s.poll_transmit_gso(now, &mut buf, 64).expect("an echo reply");
        assert_eq!(tx, Transmit { len, header_len: 20, segment_size: None, segments: 1, csum_start: None });
        assert_eq!((buf[9], buf[20], &buf[28..len]), (1, 0, data), "ICMP echo reply");
    }
    let (us, peer): (IpAddr, IpAddr) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
    s.add_local_addr(us);
    s.connect(now, SocketAddr::new(us, 40000), SocketAddr::new(peer, 80)).unwrap();
    let tx = s.poll_transmit_gso(now, &mut buf, 64).expect("a SYN");
    let tcp_hdr = (buf[40 + 12] >> 4) as usize * 4;
    assert_eq!((buf[0] >> 4, buf[6], buf[40 + 13]), (6, 6, 0x02), "an IPv6 SYN");
    assert_eq!(
        tx,
        Transmit {
            len: 40 + tcp_hdr,
            header_len: 40 + tcp_hdr,
            segment_size: None,
            segments: 1,
            csum_start: None
        }
    );
    assert_eq!(s.poll_transmit_gso(now, &mut buf, 64), None);
}
