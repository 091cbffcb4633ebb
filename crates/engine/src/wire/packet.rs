//! IPv4 + TCP parse and emit (RFC 791, RFC 9293 §3.1).
//!
//! Parsing is done by hand with explicit bounds checks: it reads the fixed header fields at
//! constant offsets after one length check per header, runs one checksum pass per header
//! and returns a [`TcpSegment`] whose payload borrows the input. Emitting writes a whole
//! packet into a caller buffer, copying the payload once. Neither allocates.
use super::checksum;
use super::options;
use super::{DropReason, OptionLayout, TcpFlags, TcpOptions};
use crate::seq::SeqNum;
use std::net::{IpAddr, Ipv4Addr};

/// IPv4 protocol number of TCP (RFC 9293 §3.1).
pub const PROTO_TCP: u8 = 6;
/// Size of an IPv4 header without options (IHL 5).
pub const IPV4_HEADER_LEN: usize = 20;
/// Size of a TCP header without options (data offset 5).
pub const TCP_HEADER_LEN: usize = 20;

/// A received TCP segment: the parsed headers and a view of its payload.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address.
    pub dst: IpAddr,
    /// TCP source port.
    pub src_port: u16,
    /// TCP destination port.
    pub dst_port: u16,
    /// SEG.SEQ: sequence number of the first octet (or of the SYN).
    pub seq: SeqNum,
    /// SEG.ACK: next sequence number the sender expects (valid if ACK is set).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// SEG.WND as on the wire, before window scaling (RFC 7323 §2.3).
    pub window: u16,
    /// SEG.UP, the urgent pointer (RFC 9293 §3.8.5).
    pub urgent: u16,
    /// Parsed TCP options.
    pub options: TcpOptions,
    /// The segment's data (SEG.LEN bytes, not counting SYN/FIN).
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
/// The headers of a segment to emit with [`emit_ipv4_tcp`].
pub struct TcpHeaderOut {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address.
    pub dst: IpAddr,
    /// TCP source port.
    pub src_port: u16,
    /// TCP destination port.
    pub dst_port: u16,
    /// SEG.SEQ.
    pub seq: SeqNum,
    /// SEG.ACK (sent as zero unless ACK is set).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// SEG.WND as written on the wire (already scaled down, RFC 7323 §2.3).
    pub window: u16,
    /// SEG.UP, the urgent pointer.
    pub urgent: u16,
    /// TCP options to write.
    pub options: TcpOptions,
    /// IPv4 time to live.
    pub ttl: u8,
    /// IPv4 identification field.
    pub ip_id: u16,
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn addr4(b: &[u8], at: usize) -> [u8; 4] {
    [b[at], b[at + 1], b[at + 2], b[at + 3]]
}

/// Not a valid unicast endpoint: limited broadcast, multicast (224/4), or unspecified
/// (RFC 1122 §3.2.1.3; RFC 9293 §3.10.7.2 "a SYN to a broadcast or multicast address
/// should be ignored").
#[inline]
fn bad_address(a: Ipv4Addr) -> bool {
    a.is_broadcast() || a.is_multicast() || a.is_unspecified()
}

/// A source no segment can legitimately come from on a link: loopback (127/8) or the
/// reserved class E (240/4) (RFC 1122 §3.2.1.3, MUST-63 of RFC 9293).
#[inline]
fn martian_source(a: Ipv4Addr) -> bool {
    a.is_loopback() || a.octets()[0] >= 240
}

/// Martians: why a packet with these addresses is dropped, by reason (RFC 1122 §3.2.1.3,
/// RFC 1812 §5.3.7). Checks that need our own addresses (LAND, subnet broadcast) are
/// made by the Stack (`crates/engine/src/martian.rs`).
pub(crate) fn martian_reason(src: Ipv4Addr, dst: Ipv4Addr) -> Option<DropReason> {
    if bad_address(dst) {
        return Some(if dst.is_broadcast() {
            DropReason::MartianDstBroadcast
        } else if dst.is_multicast() {
            DropReason::MartianDstMulticast
        } else {
            DropReason::BadAddress
        });
    }
    if bad_address(src) {
        return Some(if src.is_broadcast() {
            DropReason::MartianSrcBroadcast
        } else if src.is_multicast() {
            DropReason::MartianSrcMulticast
        } else {
            DropReason::MartianSrcUnspecified
        });
    }
    martian_source(src).then_some(DropReason::MartianSrcReserved)
}

/// Parse and verify one IPv4 packet carrying a TCP segment.
///
/// Checks, in order (the first failure is returned): length ≥ 20 (`Truncated`), version
/// (`Ipv6`, `BadIpVersion`), IHL (`BadIhl`), total length (`BadTotalLength`; bytes beyond
/// it, e.g. Ethernet padding, are ignored), header checksum (`BadIpChecksum`), MF/offset
/// (`Fragment`), protocol (`NotTcp`), TCP fixed header (`Truncated`), data offset
/// (`BadDataOffset`), TCP checksum (`BadTcpChecksum`), options (`BadOption`), addresses
/// (`BadAddress`).
pub fn parse_ipv4_tcp(packet: &[u8]) -> Result<TcpSegment<'_>, DropReason> {
    // RFC 791 §3.1: fixed 20-byte header.
    if packet.len() < IPV4_HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    match packet[0] >> 4 {
        4 => {}
        6 => return Err(DropReason::Ipv6),
        _ => return Err(DropReason::BadIpVersion),
    }
    // RFC 791 §3.1: IHL is the header length in 32-bit words, minimum 5.
    let ihl = ((packet[0] & 0x0f) as usize) * 4;
    if ihl < IPV4_HEADER_LEN || ihl > packet.len() {
        return Err(DropReason::BadIhl);
    }
    let total_len = be16(packet, 2) as usize;
    if total_len < ihl || total_len > packet.len() {
        return Err(DropReason::BadTotalLength);
    }
    let packet = &packet[..total_len];
    if !checksum::verify(&packet[..ihl], 0) {
        return Err(DropReason::BadIpChecksum);
    }
    // RFC 791 §3.1: flags bit 2 = MF; 13-bit fragment offset. Fragments go to `frag.rs`.
    if be16(packet, 6) & 0x3fff != 0 {
        return Err(DropReason::Fragment);
    }
    if packet[9] != PROTO_TCP {
        return Err(DropReason::NotTcp);
    }
    let src = addr4(packet, 12);
    let dst = addr4(packet, 16);

    let tcp = &packet[ihl..];
    if tcp.len() < TCP_HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    // RFC 9293 §3.1: data offset in 32-bit words, minimum 5.
    let doff = ((tcp[12] >> 4) as usize) * 4;
    if doff < TCP_HEADER_LEN || doff > tcp.len() {
        return Err(DropReason::BadDataOffset);
    }
    // RFC 9293 §3.1 "Checksum": over the pseudo-header, TCP header and data. tcp.len() ≤
    // total_len ≤ 65535, so the cast is lossless.
    let pseudo = checksum::pseudo_header_ipv4(src, dst, PROTO_TCP, tcp.len() as u16);
    if !checksum::verify(tcp, pseudo) {
        return Err(DropReason::BadTcpChecksum);
    }
    let (src4, dst4) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
    let mut seg = TcpSegment {
        src: IpAddr::V4(src4),
        dst: IpAddr::V4(dst4),
        src_port: be16(tcp, 0),
        dst_port: be16(tcp, 2),
        seq: SeqNum(be32(tcp, 4)),
        ack: SeqNum(be32(tcp, 8)),
        flags: TcpFlags(tcp[13]),
        window: be16(tcp, 14),
        urgent: be16(tcp, 18),
        options: TcpOptions::default(),
        payload: &tcp[doff..],
    };
    // Filled in place: avoids building the options on the stack and copying them.
    options::parse_into(&tcp[TCP_HEADER_LEN..doff], &mut seg.options)?;
    if let Some(reason) = martian_reason(src4, dst4) {
        return Err(reason);
    }
    Ok(seg)
}

/// Write a complete IPv4 + TCP packet into `buf`: a 20-byte IPv4 header (DF set, no
/// options), the TCP header with `h.options` laid out per `layout`, then the payload
/// slices concatenated. Fills both checksums. Returns the packet length, or None if `buf`
/// is too small, the packet would exceed 65535 bytes, or an address is not IPv4.
pub fn emit_ipv4_tcp(
    buf: &mut [u8],
    h: &TcpHeaderOut,
    layout: OptionLayout,
    payload: &[&[u8]],
) -> Option<usize> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (h.src, h.dst) else {
        return None;
    };
    let (src, dst) = (src.octets(), dst.octets());
    let opts = options::encode(&h.options, layout);
    let opt_len = opts.as_bytes().len();
    let tcp_hdr_len = TCP_HEADER_LEN + opt_len;
    let payload_len: usize = payload.iter().map(|p| p.len()).sum();
    let total_len = IPV4_HEADER_LEN + tcp_hdr_len + payload_len;
    if total_len > u16::MAX as usize {
        return None;
    }
    let buf = buf.get_mut(..total_len)?;
    let (ip, tcp) = buf.split_at_mut(IPV4_HEADER_LEN);

    // RFC 791 §3.1 header, written as five 32-bit words. Checksums are summed from these
    // words in registers rather than re-read from `buf` just after narrow stores.
    let w_src = u32::from_be_bytes(src);
    let w_dst = u32::from_be_bytes(dst);
    let ip_words = [
        0x4500_0000 | total_len as u32,  // version 4, IHL 5, TOS 0, total length
        (h.ip_id as u32) << 16 | 0x4000, // id, DF set, fragment offset 0
        (h.ttl as u32) << 24 | (PROTO_TCP as u32) << 16, // TTL, protocol, checksum 0
        w_src,
        w_dst,
    ];
    let ip_csum = checksum::finish(ip_words.iter().map(|&w| w as u64).sum());
    for (k, w) in ip_words.iter().enumerate() {
        ip[4 * k..4 * k + 4].copy_from_slice(&w.to_be_bytes());
    }
    ip[10..12].copy_from_slice(&ip_csum.to_be_bytes());

    // RFC 9293 §3.1 header (checksum field 0 while summing).
    let tcp_words = [
        (h.src_port as u32) << 16 | h.dst_port as u32,
        h.seq.0,
        h.ack.0,
        ((tcp_hdr_len as u32 / 4) << 28) | (h.flags.0 as u32) << 16 | h.window as u32,
        h.urgent as u32,
    ];
    for (k, w) in tcp_words.iter().enumerate() {
        tcp[4 * k..4 * k + 4].copy_from_slice(&w.to_be_bytes());
    }
    tcp[TCP_HEADER_LEN..tcp_hdr_len].copy_from_slice(opts.as_bytes());
    let mut at = tcp_hdr_len;
    for p in payload {
        tcp[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    // RFC 9293 §3.1 "Checksum": pseudo-header + header words + options + data. The options
    // are a multiple of 4 bytes, so the data starts at an even offset as `sum` requires.
    // (Summing while copying measured worse than `memcpy` + `sum`: see checksum.rs.)
    let mut acc = checksum::pseudo_header_ipv4(src, dst, PROTO_TCP, tcp.len() as u16);
    acc += tcp_words.iter().map(|&w| w as u64).sum::<u64>();
    acc = checksum::sum(opts.as_bytes(), acc);
    acc = checksum::sum(&tcp[tcp_hdr_len..], acc);
    let tcp_csum = checksum::finish(acc);
    tcp[16..18].copy_from_slice(&tcp_csum.to_be_bytes());
    Some(total_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::SackBlocks;

    fn header(options: TcpOptions) -> TcpHeaderOut {
        TcpHeaderOut {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            src_port: 40000,
            dst_port: 80,
            seq: SeqNum(0xfffffff0),
            ack: SeqNum(7),
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 65535,
            urgent: 0,
            options,
            ttl: 64,
            ip_id: 0x1234,
        }
    }

    fn syn_options() -> TcpOptions {
        TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((100, 0)),
            sack: SackBlocks::new(),
        }
    }

    fn build(options: TcpOptions, payload: &[&[u8]]) -> Vec<u8> {
        let mut buf = vec![0u8; 1600];
        let n = emit_ipv4_tcp(&mut buf, &header(options), OptionLayout::Linux, payload).expect("fits");
        buf.truncate(n);
        buf
    }

    /// Recompute the IPv4 header checksum after a test mutated the header.
    fn fix_ip(p: &mut [u8]) {
        let ihl = ((p[0] & 0x0f) as usize) * 4;
        p[10..12].fill(0);
        let c = checksum::checksum(&p[..ihl]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }

    /// Recompute the TCP checksum (IPv4 header assumed well-formed).
    fn fix_tcp(p: &mut [u8]) {
        let ihl = ((p[0] & 0x0f) as usize) * 4;
        let total = be16(p, 2) as usize;
        let ph = checksum::pseudo_header_ipv4(addr4(p, 12), addr4(p, 16), p[9], (total - ihl) as u16);
        let tcp = &mut p[ihl..total];
        tcp[16..18].fill(0);
        let c = checksum::finish(checksum::sum(tcp, ph));
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn round_trip_syn_and_payload_slices() {
        let p = build(syn_options(), &[b"abc", b"", b"defgh"]);
        assert_eq!(p.len(), 20 + 20 + 20 + 8);
        let s = parse_ipv4_tcp(&p).expect("valid");
        assert_eq!(s.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(s.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!((s.src_port, s.dst_port), (40000, 80));
        assert_eq!((s.seq, s.ack), (SeqNum(0xfffffff0), SeqNum(7)));
        assert_eq!(s.flags, TcpFlags::ACK | TcpFlags::PSH);
        assert_eq!((s.window, s.urgent), (65535, 0));
        assert_eq!(s.options, syn_options());
        assert_eq!(s.payload, b"abcdefgh");
        // IPv4 header fields: DF, TTL, id, proto.
        assert_eq!(&p[4..10], &[0x12, 0x34, 0x40, 0x00, 64, 6]);
    }

    #[test]
    fn emitted_packets_parse_with_etherparse() {
        let p = build(syn_options(), &[b"hello"]);
        let sliced = etherparse::SlicedPacket::from_ip(&p).expect("etherparse parses");
        let Some(etherparse::NetSlice::Ipv4(ip)) = &sliced.net else {
            panic!("not ipv4: {:?}", sliced.net);
        };
        let iph = ip.header().to_header();
        assert_eq!(iph.header_checksum, iph.calc_header_checksum());
        assert!(iph.dont_fragment);
        let Some(etherparse::TransportSlice::Tcp(tcp)) = &sliced.transport else {
            panic!("not tcp");
        };
        let th = tcp.to_header();
        let want = th.calc_checksum_ipv4(&iph, tcp.payload()).expect("checksum");
        assert_eq!(th.checksum, want);
        assert_eq!(tcp.payload(), b"hello");
        assert_eq!(th.sequence_number, 0xfffffff0);
    }

    /// The checksum is right for every split of the payload into the send ring's two
    /// halves, odd or even.
    #[test]
    fn checksum_of_split_payloads_matches_etherparse() {
        let data: Vec<u8> =
            (0..301u32).map(|i| (i * 151 % 256) as u8 | ((i % 9 == 0) as u8 * 0xf0)).collect();
        for k in 0..=data.len() {
            let p = build(syn_options(), &[&data[..k], &data[k..]]);
            let sliced = etherparse::SlicedPacket::from_ip(&p).expect("etherparse parses");
            let (Some(etherparse::NetSlice::Ipv4(ip)), Some(etherparse::TransportSlice::Tcp(tcp))) =
                (&sliced.net, &sliced.transport)
            else {
                panic!("not ipv4/tcp");
            };
            let th = tcp.to_header();
            let want = th.calc_checksum_ipv4(&ip.header().to_header(), tcp.payload()).expect("checksum");
            assert_eq!(th.checksum, want, "split at {k}");
            assert_eq!(tcp.payload(), &data[..]);
        }
    }

    #[test]
    fn emit_rejects_small_buffer_and_ipv6() {
        let h = header(syn_options());
        let mut buf = [0u8; 60 + 4];
        assert_eq!(emit_ipv4_tcp(&mut buf, &h, OptionLayout::Linux, &[b"abcd"]), Some(64));
        assert_eq!(emit_ipv4_tcp(&mut buf, &h, OptionLayout::Linux, &[b"abcde"]), None);
        // IPv4 total length is 16 bits: 40 + 65496 bytes is the most that fits.
        let big = vec![0u8; 65535 - 40];
        let mut huge = vec![0u8; 70000];
        let plain = header(TcpOptions::default());
        let emit = |buf: &mut [u8], p: &[&[u8]]| emit_ipv4_tcp(buf, &plain, OptionLayout::Linux, p);
        assert_eq!(emit(&mut huge, &[&big]), Some(65535));
        assert!(parse_ipv4_tcp(&huge[..65535]).is_ok());
        assert_eq!(emit(&mut huge, &[&big, b"x"]), None);
        let h6 = TcpHeaderOut { dst: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), ..h };
        assert_eq!(emit_ipv4_tcp(&mut buf, &h6, OptionLayout::Linux, &[]), None);
    }

    #[test]
    fn trailing_padding_ignored() {
        let mut p = build(TcpOptions::default(), &[b"xy"]);
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // Ethernet minimum-frame padding
        let s = parse_ipv4_tcp(&p).expect("valid");
        assert_eq!(s.payload, b"xy");
    }

    #[test]
    fn every_wire_drop_reason() {
        let good = build(syn_options(), &[b"data"]);
        let check = |name: &str, p: &[u8], want: DropReason| {
            assert_eq!(parse_ipv4_tcp(p).err(), Some(want), "{name}");
        };
        check("empty", &[], DropReason::Truncated);
        check("short", &good[..19], DropReason::Truncated);
        let mut p = good.clone();
        p[0] = 0x65;
        check("v6", &p, DropReason::Ipv6);
        p[0] = 0x55;
        check("v5", &p, DropReason::BadIpVersion);
        p[0] = 0x44;
        check("ihl 4", &p, DropReason::BadIhl);
        let mut p = good[..23].to_vec();
        p[0] = 0x46;
        check("ihl past end", &p, DropReason::BadIhl);
        let mut p = good.clone();
        p[2..4].copy_from_slice(&19u16.to_be_bytes());
        check("total < ihl", &p, DropReason::BadTotalLength);
        p[2..4].copy_from_slice(&((good.len() + 1) as u16).to_be_bytes());
        check("total > buffer", &p, DropReason::BadTotalLength);
        let mut p = good.clone();
        p[8] = 63; // TTL changed without fixing the checksum
        check("ip checksum", &p, DropReason::BadIpChecksum);
        let mut p = good.clone();
        p[6] = 0x20; // MF
        fix_ip(&mut p);
        check("MF", &p, DropReason::Fragment);
        p[6] = 0x00;
        p[7] = 0x01; // offset 8
        fix_ip(&mut p);
        check("offset", &p, DropReason::Fragment);
        let mut p = good.clone();
        p[9] = 17;
        fix_ip(&mut p);
        check("udp", &p, DropReason::NotTcp);
        let mut p = good[..39].to_vec();
        p[2..4].copy_from_slice(&39u16.to_be_bytes());
        fix_ip(&mut p);
        check("tcp short", &p, DropReason::Truncated);
        let mut p = good.clone();
        p[32] = 0x40; // data offset 4
        fix_tcp(&mut p);
        check("doff 4", &p, DropReason::BadDataOffset);
        p[32] = 0xf0; // 60 bytes > 44-byte segment
        fix_tcp(&mut p);
        check("doff past end", &p, DropReason::BadDataOffset);
        let mut p = good.clone();
        let last = p.len() - 1;
        p[last] ^= 0x01;
        check("tcp checksum", &p, DropReason::BadTcpChecksum);
        let mut p = good.clone();
        p[41] = 3; // MSS length 3
        fix_tcp(&mut p);
        check("bad option", &p, DropReason::BadOption);
        // Martians, each by its reason (RFC 1122 §3.2.1.3).
        use DropReason::*;
        let cases = [
            ([255, 255, 255, 255], MartianSrcBroadcast, MartianDstBroadcast),
            ([224, 0, 0, 1], MartianSrcMulticast, MartianDstMulticast),
            ([0, 0, 0, 0], MartianSrcUnspecified, BadAddress),
            ([239, 1, 2, 3], MartianSrcMulticast, MartianDstMulticast),
        ];
        for (addr, as_src, as_dst) in cases {
            for (at, want) in [(12, as_src), (16, as_dst)] {
                let mut p = good.clone();
                p[at..at + 4].copy_from_slice(&addr);
                fix_ip(&mut p);
                fix_tcp(&mut p);
                check("address", &p, want);
            }
        }
    }

    #[test]
    fn ip_options_are_skipped() {
        // Rebuild the packet with a 4-byte IPv4 option (NOP x3 + EOL) → IHL 6.
        let good = build(TcpOptions::default(), &[b"zz"]);
        let mut p = Vec::new();
        p.extend_from_slice(&good[..20]);
        p.extend_from_slice(&[1, 1, 1, 0]);
        p.extend_from_slice(&good[20..]);
        p[0] = 0x46;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        fix_ip(&mut p);
        let s = parse_ipv4_tcp(&p).expect("valid with IP options");
        assert_eq!(s.payload, b"zz");
    }

    #[test]
    fn martian_sources_are_dropped() {
        for src in [[127, 0, 0, 1], [240, 0, 0, 1], [250, 1, 2, 3]] {
            let h = TcpHeaderOut {
                src: std::net::IpAddr::V4(Ipv4Addr::from(src)),
                dst: std::net::IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                src_port: 1,
                dst_port: 2,
                seq: SeqNum(1),
                ack: SeqNum(0),
                flags: TcpFlags::SYN,
                window: 100,
                urgent: 0,
                options: TcpOptions::default(),
                ttl: 64,
                ip_id: 0,
            };
            let mut buf = [0u8; 100];
            let n = emit_ipv4_tcp(&mut buf, &h, OptionLayout::Linux, &[]).unwrap();
            assert_eq!(parse_ipv4_tcp(&buf[..n]).err(), Some(DropReason::MartianSrcReserved), "{src:?}");
        }
    }
}
