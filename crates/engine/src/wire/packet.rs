//! IP + TCP parse and emit (RFC 791, RFC 8200, RFC 9293 §3.1).
//!
//! The IP header is `ipv4.rs`'s or `ipv6.rs`'s, the TCP header is `tcp.rs`'s [`TcpRepr`],
//! one representation for parse and emit. Parsing reads the fixed header fields at
//! constant offsets after one length check per header, runs one checksum pass per header
//! and returns a [`TcpSegment`] whose payload borrows the input. Emitting writes a whole
//! packet into a caller buffer, copying the payload once. Neither allocates.
use super::ipv4::{self, Ipv4Out};
use super::ipv6::{self, Ipv6Out};
use super::options;
use super::{DropReason, OptionLayout, TcpRepr};
use std::net::IpAddr;

pub use super::ipv4::IPV4_HEADER_LEN;
pub(crate) use super::ipv4::martian_reason;
pub use super::ipv6::IPV6_HEADER_LEN;
pub use super::tcp::{PROTO_TCP, TCP_HEADER_LEN};

/// A received TCP segment: the IP addresses, the TCP header and a view of its payload.
/// Derefs to its [`TcpRepr`], so `seg.seq`, `seg.flags`, ... read the TCP header.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address.
    pub dst: IpAddr,
    /// The TCP header.
    pub tcp: TcpRepr,
    /// The segment's data (SEG.LEN bytes, not counting SYN/FIN).
    pub payload: &'a [u8],
}

impl core::ops::Deref for TcpSegment<'_> {
    type Target = TcpRepr;
    fn deref(&self) -> &TcpRepr {
        &self.tcp
    }
}

#[derive(Clone, Copy, Debug)]
/// The headers of a segment to emit with [`emit_ip_tcp`]: the IP fields and the same
/// [`TcpRepr`] parsing yields (it derefs to it).
pub struct TcpHeaderOut {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address.
    pub dst: IpAddr,
    /// The TCP header (SEG.WND already scaled down, RFC 7323 §2.3).
    pub tcp: TcpRepr,
    /// IPv4 time to live / IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification field (unused over IPv6).
    pub ip_id: u16,
    /// IPv6 flow label (RFC 6437; 20 bits, unused over IPv4).
    pub flow_label: u32,
}

impl core::ops::Deref for TcpHeaderOut {
    type Target = TcpRepr;
    fn deref(&self) -> &TcpRepr {
        &self.tcp
    }
}

impl core::ops::DerefMut for TcpHeaderOut {
    fn deref_mut(&mut self) -> &mut TcpRepr {
        &mut self.tcp
    }
}

/// Parse and verify one IPv4 packet carrying a TCP segment.
///
/// Checks, in order (the first failure is returned): the IPv4 header (`ipv4::parse`:
/// `Truncated`, `Ipv6`, `BadIpVersion`, `BadIhl`, `BadTotalLength`, `BadIpChecksum`), MF/
/// offset (`Fragment`), protocol (`NotTcp`), the TCP header (`TcpRepr::parse`:
/// `Truncated`, `BadDataOffset`, `BadTcpChecksum`, `BadOption`), addresses (martians).
pub fn parse_ipv4_tcp(packet: &[u8]) -> Result<TcpSegment<'_>, DropReason> {
    parse_ipv4_tcp_with(packet, true)
}

/// [`parse_ip_tcp`] for a packet whose TCP checksum the device vouches for (TUN offload,
/// issue 12: virtio-net `NEEDS_CSUM` or `DATA_VALID`): everything is checked except the TCP
/// checksum, which for `NEEDS_CSUM` holds only the pseudo-header sum. Never use it for a
/// packet without such a flag.
pub fn parse_ip_tcp_checksum_ok(packet: &[u8]) -> Result<TcpSegment<'_>, DropReason> {
    match packet.first().map(|b| b >> 4) {
        Some(6) => parse_ipv6_tcp_with(packet, false),
        _ => parse_ipv4_tcp_with(packet, false),
    }
}

fn parse_ipv4_tcp_with(packet: &[u8], verify_tcp: bool) -> Result<TcpSegment<'_>, DropReason> {
    let ip = ipv4::parse(packet)?;
    // RFC 791 §3.2: fragments go to `frag.rs`.
    if ip.is_fragment {
        return Err(DropReason::Fragment);
    }
    if ip.protocol != PROTO_TCP {
        return Err(DropReason::NotTcp);
    }
    // tcp.len() ≤ total length ≤ 65535, so the cast is lossless.
    let pseudo = super::checksum::pseudo_header_ipv4(
        ip.src.octets(),
        ip.dst.octets(),
        PROTO_TCP,
        ip.payload.len() as u16,
    );
    let (tcp, doff) = TcpRepr::parse_with(ip.payload, verify_tcp.then_some(pseudo))?;
    if let Some(reason) = ipv4::martian_reason(ip.src, ip.dst) {
        return Err(reason);
    }
    Ok(TcpSegment { src: IpAddr::V4(ip.src), dst: IpAddr::V4(ip.dst), tcp, payload: &ip.payload[doff..] })
}

/// Parse and verify one IPv6 packet carrying a TCP segment: the IPv6 header and its
/// extension headers (`ipv6::parse`), a fragment (`Fragment`), the upper layer
/// (`NotTcp`), the TCP header with the RFC 8200 §8.1 pseudo-header, the martians.
pub fn parse_ipv6_tcp(packet: &[u8]) -> Result<TcpSegment<'_>, DropReason> {
    parse_ipv6_tcp_with(packet, true)
}

fn parse_ipv6_tcp_with(packet: &[u8], verify_tcp: bool) -> Result<TcpSegment<'_>, DropReason> {
    let ip = ipv6::parse(packet)?;
    if ip.fragment.is_some() {
        return Err(DropReason::Fragment);
    }
    if ip.next_header != PROTO_TCP {
        return Err(DropReason::NotTcp);
    }
    let pseudo = ipv6::pseudo_header(&ip.src, &ip.dst, PROTO_TCP, ip.payload.len() as u32);
    let (tcp, doff) = TcpRepr::parse_with(ip.payload, verify_tcp.then_some(pseudo))?;
    if let Some(reason) = ipv6::martian_reason(&ip.src, &ip.dst) {
        return Err(reason);
    }
    Ok(TcpSegment { src: IpAddr::V6(ip.src), dst: IpAddr::V6(ip.dst), tcp, payload: &ip.payload[doff..] })
}

/// Parse either family, by the version nibble (`Truncated` if empty, `BadIpVersion` if
/// neither 4 nor 6).
pub fn parse_ip_tcp(packet: &[u8]) -> Result<TcpSegment<'_>, DropReason> {
    match packet.first().map(|b| b >> 4) {
        None => Err(DropReason::Truncated),
        Some(6) => parse_ipv6_tcp(packet),
        Some(4) => parse_ipv4_tcp(packet),
        Some(_) => Err(DropReason::BadIpVersion),
    }
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
    emit_ipv4_tcp_with(buf, h, layout, payload, true)
}

/// [`emit_ipv4_tcp`] for a device that completes the TCP checksum (virtio-net
/// `NEEDS_CSUM`, issue 12): the TCP checksum field holds the pseudo-header sum over the TCP
/// length, folded and not complemented; the header and payload are not summed. The IPv4
/// header checksum is complete.
pub fn emit_ipv4_tcp_partial(
    buf: &mut [u8],
    h: &TcpHeaderOut,
    layout: OptionLayout,
    payload: &[&[u8]],
) -> Option<usize> {
    emit_ipv4_tcp_with(buf, h, layout, payload, false)
}

/// IPv4 + TCP with the full TCP checksum (`full`) or only the pseudo-header sum.
fn emit_ipv4_tcp_with(
    buf: &mut [u8],
    h: &TcpHeaderOut,
    layout: OptionLayout,
    payload: &[&[u8]],
    full: bool,
) -> Option<usize> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (h.src, h.dst) else {
        return None;
    };
    let ip = Ipv4Out { src, dst, protocol: PROTO_TCP, ttl: h.ttl, ip_id: h.ip_id };
    emit_over(buf, IPV4_HEADER_LEN, h, layout, payload, full, |b, n| ip.emit(b, n).then(|| ip.pseudo(n)))
}

/// Write a complete IPv6 + TCP packet (40-byte header, no extension headers, hop limit
/// `h.ttl`, flow label `h.flow_label`). None if `buf` is too small, the TCP segment would
/// exceed 65535 bytes, or an address is not IPv6.
pub fn emit_ipv6_tcp(
    buf: &mut [u8],
    h: &TcpHeaderOut,
    layout: OptionLayout,
    payload: &[&[u8]],
) -> Option<usize> {
    let (IpAddr::V6(src), IpAddr::V6(dst)) = (h.src, h.dst) else {
        return None;
    };
    let ip = Ipv6Out {
        src,
        dst,
        next_header: PROTO_TCP,
        hop_limit: h.ttl,
        traffic_class: 0,
        flow_label: h.flow_label,
    };
    emit_over(buf, IPV6_HEADER_LEN, h, layout, payload, true, |b, n| ip.emit(b, n).then(|| ip.pseudo(n)))
}

/// Write a packet of the family of `h`'s addresses (None if they differ).
pub fn emit_ip_tcp(
    buf: &mut [u8],
    h: &TcpHeaderOut,
    layout: OptionLayout,
    payload: &[&[u8]],
) -> Option<usize> {
    match h.dst {
        IpAddr::V4(_) => emit_ipv4_tcp(buf, h, layout, payload),
        IpAddr::V6(_) => emit_ipv6_tcp(buf, h, layout, payload),
    }
}

/// Lay out IP header (`ip_len` bytes, written by `ip_emit` which returns the pseudo-header
/// sum) + TCP header + payload; `full_csum` false leaves the TCP checksum to the device.
fn emit_over(
    buf: &mut [u8],
    ip_len: usize,
    h: &TcpHeaderOut,
    layout: OptionLayout,
    payload: &[&[u8]],
    full_csum: bool,
    ip_emit: impl FnOnce(&mut [u8], usize) -> Option<u64>,
) -> Option<usize> {
    let opts = options::encode(&h.options, layout);
    let payload_len: usize = payload.iter().map(|p| p.len()).sum();
    let tcp_len = TCP_HEADER_LEN + opts.as_bytes().len() + payload_len;
    if tcp_len > u16::MAX as usize {
        return None;
    }
    let buf = buf.get_mut(..ip_len + tcp_len)?;
    let (ip, tcp) = buf.split_at_mut(ip_len);
    let pseudo = ip_emit(ip, tcp_len)?;
    h.tcp.emit_with(tcp, &opts, payload, pseudo, full_csum).then_some(ip_len + tcp_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seq::SeqNum;
    use crate::wire::checksum;
    use crate::wire::{SackBlocks, TcpFlags, TcpOptions};
    use std::net::Ipv4Addr;

    fn be16(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    fn addr4(b: &[u8], at: usize) -> [u8; 4] {
        [b[at], b[at + 1], b[at + 2], b[at + 3]]
    }

    fn header(options: TcpOptions) -> TcpHeaderOut {
        TcpHeaderOut {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            tcp: TcpRepr {
                src_port: 40000,
                dst_port: 80,
                seq: SeqNum(0xfffffff0),
                ack: SeqNum(7),
                flags: TcpFlags::ACK | TcpFlags::PSH,
                window: 65535,
                urgent: 0,
                options,
            },
            ttl: 64,
            ip_id: 0x1234,
            flow_label: 0,
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
                tcp: TcpRepr {
                    seq: SeqNum(1),
                    flags: TcpFlags::SYN,
                    window: 100,
                    src_port: 1,
                    dst_port: 2,
                    ..TcpRepr::default()
                },
                ttl: 64,
                ip_id: 0,
                flow_label: 0,
            };
            let mut buf = [0u8; 100];
            let n = emit_ipv4_tcp(&mut buf, &h, OptionLayout::Linux, &[]).unwrap();
            assert_eq!(parse_ipv4_tcp(&buf[..n]).err(), Some(DropReason::MartianSrcReserved), "{src:?}");
        }
    }
}
