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
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub struct TcpHeaderOut {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
    pub ttl: u8,
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
    // RFC 791 §3.1: flags bit 2 = MF; 13-bit fragment offset. We do not reassemble.
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
    let options = options::parse(&tcp[TCP_HEADER_LEN..doff])?;
    let (src4, dst4) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
    if bad_address(src4) || bad_address(dst4) {
        return Err(DropReason::BadAddress);
    }
    Ok(TcpSegment {
        src: IpAddr::V4(src4),
        dst: IpAddr::V4(dst4),
        src_port: be16(tcp, 0),
        dst_port: be16(tcp, 2),
        seq: SeqNum(be32(tcp, 4)),
        ack: SeqNum(be32(tcp, 8)),
        flags: TcpFlags(tcp[13]),
        window: be16(tcp, 14),
        urgent: be16(tcp, 18),
        options,
        payload: &tcp[doff..],
    })
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

    // RFC 791 §3.1 header.
    ip[0] = 0x45; // version 4, IHL 5
    ip[1] = 0; // TOS / DSCP+ECN
    ip[2..4].copy_from_slice(&(total_len as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&h.ip_id.to_be_bytes());
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF, offset 0
    ip[8] = h.ttl;
    ip[9] = PROTO_TCP;
    ip[10..12].fill(0);
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let ip_csum = checksum::checksum(ip);
    ip[10..12].copy_from_slice(&ip_csum.to_be_bytes());

    // RFC 9293 §3.1 header.
    tcp[0..2].copy_from_slice(&h.src_port.to_be_bytes());
    tcp[2..4].copy_from_slice(&h.dst_port.to_be_bytes());
    tcp[4..8].copy_from_slice(&h.seq.0.to_be_bytes());
    tcp[8..12].copy_from_slice(&h.ack.0.to_be_bytes());
    tcp[12] = ((tcp_hdr_len / 4) as u8) << 4;
    tcp[13] = h.flags.0;
    tcp[14..16].copy_from_slice(&h.window.to_be_bytes());
    tcp[16..18].fill(0);
    tcp[18..20].copy_from_slice(&h.urgent.to_be_bytes());
    tcp[TCP_HEADER_LEN..tcp_hdr_len].copy_from_slice(opts.as_bytes());
    let mut at = tcp_hdr_len;
    for p in payload {
        tcp[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    let pseudo = checksum::pseudo_header_ipv4(src, dst, PROTO_TCP, tcp.len() as u16);
    let tcp_csum = checksum::finish(checksum::sum(tcp, pseudo));
    tcp[16..18].copy_from_slice(&tcp_csum.to_be_bytes());
    Some(total_len)
}
