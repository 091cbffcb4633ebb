//! Bytes on the wire for the script runner: building inbound IPv4/TCP packets exactly as a
//! script writes them (option order, `eol` padding), and taking apart the packets the
//! stack emits, keeping the raw option bytes so they can be compared bytewise the way
//! packetdrill compares them.
//!
//! This is deliberately independent of `utcp::wire`: the runner must be able to send
//! option layouts the stack itself would never emit, and must not trust the code under test
//! to decode its own output.

use super::ast::{Packet, TcpOpt};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const OPT_EOL: u8 = 0;
pub const OPT_NOP: u8 = 1;
pub const OPT_MSS: u8 = 2;
pub const OPT_WSCALE: u8 = 3;
pub const OPT_SACK_OK: u8 = 4;
pub const OPT_SACK: u8 = 5;
pub const OPT_TS: u8 = 8;

/// Encode script options in order, without padding.
pub fn encode_options(opts: &[TcpOpt]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in opts {
        match o {
            TcpOpt::Eol => out.push(OPT_EOL),
            TcpOpt::Nop => out.push(OPT_NOP),
            TcpOpt::Mss(m) => {
                out.extend_from_slice(&[OPT_MSS, 4]);
                out.extend_from_slice(&m.to_be_bytes());
            }
            TcpOpt::WScale(s) => out.extend_from_slice(&[OPT_WSCALE, 3, *s]),
            TcpOpt::SackOk => out.extend_from_slice(&[OPT_SACK_OK, 2]),
            TcpOpt::Sack(blocks) => {
                out.extend_from_slice(&[OPT_SACK, (2 + 8 * blocks.len()) as u8]);
                for (a, b) in blocks {
                    out.extend_from_slice(&a.to_be_bytes());
                    out.extend_from_slice(&b.to_be_bytes());
                }
            }
            TcpOpt::Timestamp { val, ecr } => {
                out.extend_from_slice(&[OPT_TS, 10]);
                out.extend_from_slice(&val.to_be_bytes());
                out.extend_from_slice(&ecr.to_be_bytes());
            }
        }
    }
    out
}

/// Where the TS option's value and echo-reply fields sit inside raw option bytes.
/// Returns the byte offset of TSval (TSecr follows at +4). Malformed options give `None`.
pub fn find_timestamp(opts: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            OPT_EOL => return None,
            OPT_NOP => i += 1,
            kind => {
                let len = *opts.get(i + 1)? as usize;
                if len < 2 || i + len > opts.len() {
                    return None;
                }
                if kind == OPT_TS && len == 10 {
                    return Some(i + 2);
                }
                i += len;
            }
        }
    }
    None
}

/// Offsets of every SACK block edge (4-byte big-endian numbers) inside raw option bytes.
pub fn sack_edges(opts: &[u8]) -> Vec<usize> {
    let mut edges = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            OPT_EOL => break,
            OPT_NOP => i += 1,
            kind => {
                let Some(&len) = opts.get(i + 1) else { break };
                let len = len as usize;
                if len < 2 || i + len > opts.len() {
                    break;
                }
                if kind == OPT_SACK {
                    let mut j = i + 2;
                    while j + 4 <= i + len {
                        edges.push(j);
                        j += 4;
                    }
                }
                i += len;
            }
        }
    }
    edges
}

pub fn read_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

pub fn write_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// Human-readable rendering of raw options, packetdrill style (`mss 1460,nop,wscale 6`).
pub fn options_to_string(opts: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            OPT_EOL => {
                parts.push("eol".into());
                i += 1;
            }
            OPT_NOP => {
                parts.push("nop".into());
                i += 1;
            }
            kind => {
                let Some(&len) = opts.get(i + 1) else {
                    parts.push(format!("truncated option {kind}"));
                    break;
                };
                let len = len as usize;
                if len < 2 || i + len > opts.len() {
                    parts.push(format!("bad option {kind} len {len}"));
                    break;
                }
                let body = &opts[i + 2..i + len];
                parts.push(match (kind, body.len()) {
                    (OPT_MSS, 2) => format!("mss {}", u16::from_be_bytes([body[0], body[1]])),
                    (OPT_WSCALE, 1) => format!("wscale {}", body[0]),
                    (OPT_SACK_OK, 0) => "sackOK".into(),
                    (OPT_TS, 8) => format!("TS val {} ecr {}", read_u32(body, 0), read_u32(body, 4)),
                    (OPT_SACK, n) if n % 8 == 0 => {
                        let blocks: Vec<String> = (0..n / 8)
                            .map(|k| format!("{}:{}", read_u32(body, 8 * k), read_u32(body, 8 * k + 4)))
                            .collect();
                        format!("sack {}", blocks.join(" "))
                    }
                    _ => format!("option {kind} len {len}"),
                });
                i += len;
            }
        }
    }
    parts.join(",")
}

/// RFC 1071 Internet checksum over `data`, starting from `sum`.
pub(super) fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u32) << 8;
    }
    sum
}

pub(super) fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Everything needed to build one inbound segment, already mapped into live space.
pub struct InboundSegment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    /// Raw option bytes (padded to a multiple of 4 by the builder with EOL).
    pub options: &'a [u8],
    pub payload_len: usize,
    pub ttl: u8,
    pub tos: u8,
}

/// Build an IPv4 or IPv6 (by the addresses) + TCP packet with correct checksums. The
/// payload is zero bytes. Over IPv6, `tos` is the traffic class and `ttl` the hop limit.
pub fn build_ip_tcp(s: &InboundSegment<'_>) -> Vec<u8> {
    let mut opts = s.options.to_vec();
    while !opts.len().is_multiple_of(4) {
        opts.push(OPT_EOL);
    }
    let tcp_len = 20 + opts.len() + s.payload_len;
    let (mut p, pseudo) = match (s.src.ip(), s.dst.ip()) {
        (IpAddr::V6(src), IpAddr::V6(dst)) => ipv6_header(src, dst, s, tcp_len),
        (src, dst) => ipv4_header(v4(src), v4(dst), s, tcp_len),
    };
    let at = p.len();
    p.resize(at + tcp_len, 0);
    let t = &mut p[at..];
    t[0..2].copy_from_slice(&s.src.port().to_be_bytes());
    t[2..4].copy_from_slice(&s.dst.port().to_be_bytes());
    t[4..8].copy_from_slice(&s.seq.to_be_bytes());
    t[8..12].copy_from_slice(&s.ack.to_be_bytes());
    t[12] = (((20 + opts.len()) / 4) as u8) << 4;
    t[13] = s.flags;
    t[14..16].copy_from_slice(&s.window.to_be_bytes());
    t[18..20].copy_from_slice(&s.urgent.to_be_bytes());
    t[20..20 + opts.len()].copy_from_slice(&opts);
    let sum = checksum_fold(checksum_add(checksum_add(0, &pseudo), t));
    t[16..18].copy_from_slice(&sum.to_be_bytes());
    p
}

fn v4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    }
}

/// RFC 791 header (DF set) and the TCP pseudo-header.
fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, s: &InboundSegment<'_>, tcp_len: usize) -> (Vec<u8>, Vec<u8>) {
    let total = 20 + tcp_len;
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[1] = s.tos;
    p[2..4].copy_from_slice(&(total.min(65535) as u16).to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = s.ttl;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let ip_sum = checksum_fold(checksum_add(0, &p[..20]));
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let mut pseudo = vec![0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&(tcp_len as u16).to_be_bytes());
    (p, pseudo)
}

/// RFC 8200 §3 header (no extension headers) and the §8.1 pseudo-header.
fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, s: &InboundSegment<'_>, tcp_len: usize) -> (Vec<u8>, Vec<u8>) {
    let mut p = vec![0u8; 40];
    let vtf = 6u32 << 28 | (s.tos as u32) << 20;
    p[0..4].copy_from_slice(&vtf.to_be_bytes());
    p[4..6].copy_from_slice(&(tcp_len.min(65535) as u16).to_be_bytes());
    p[6] = 6;
    p[7] = s.ttl;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    let mut pseudo = vec![0u8; 40];
    pseudo[0..16].copy_from_slice(&src.octets());
    pseudo[16..32].copy_from_slice(&dst.octets());
    pseudo[32..36].copy_from_slice(&(tcp_len as u32).to_be_bytes());
    pseudo[39] = 6;
    (p, pseudo)
}

/// A packet the stack sent, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub tos: u8,
    pub ttl: u8,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Decode an IPv4/TCP or IPv6/TCP packet emitted by the stack, verifying the checksums.
pub fn parse_outbound(p: &[u8]) -> Result<Outbound, String> {
    match p.first().map(|b| b >> 4) {
        Some(6) => parse_outbound_v6(p),
        _ => parse_outbound_v4(p),
    }
}

/// The IPv6 half of [`parse_outbound`]: the stack sends no extension headers.
fn parse_outbound_v6(p: &[u8]) -> Result<Outbound, String> {
    if p.len() < 40 {
        return Err(format!("packet of {} bytes is shorter than an IPv6 header", p.len()));
    }
    let plen = u16::from_be_bytes([p[4], p[5]]) as usize;
    if 40 + plen > p.len() {
        return Err(format!("bad IPv6 payload length {plen}, buffer {}", p.len()));
    }
    if p[6] != 6 {
        return Err(format!("IPv6 next header {} is not TCP", p[6]));
    }
    let src: [u8; 16] = p[8..24].try_into().unwrap_or_default();
    let dst: [u8; 16] = p[24..40].try_into().unwrap_or_default();
    let mut pseudo = [0u8; 40];
    pseudo[0..16].copy_from_slice(&src);
    pseudo[16..32].copy_from_slice(&dst);
    pseudo[32..36].copy_from_slice(&(plen as u32).to_be_bytes());
    pseudo[39] = 6;
    let tclass = ((u16::from_be_bytes([p[0], p[1]]) >> 4) & 0xff) as u8;
    tcp_outbound(&p[40..40 + plen], &pseudo, IpAddr::from(src), IpAddr::from(dst), tclass, p[7])
}

fn parse_outbound_v4(p: &[u8]) -> Result<Outbound, String> {
    if p.len() < 20 {
        return Err(format!("packet of {} bytes is shorter than an IPv4 header", p.len()));
    }
    if p[0] >> 4 != 4 {
        return Err(format!("IP version {} is not 4", p[0] >> 4));
    }
    let ihl = (p[0] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([p[2], p[3]]) as usize;
    if ihl < 20 || total < ihl || total > p.len() {
        return Err(format!("bad IPv4 lengths: ihl {ihl}, total {total}, buffer {}", p.len()));
    }
    if checksum_fold(checksum_add(0, &p[..ihl])) != 0 {
        return Err("bad IPv4 header checksum".into());
    }
    if p[9] != 6 {
        return Err(format!("IP protocol {} is not TCP", p[9]));
    }
    let src_ip = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst_ip = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let t = &p[ihl..total];
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src_ip.octets());
    pseudo[4..8].copy_from_slice(&dst_ip.octets());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&(t.len() as u16).to_be_bytes());
    tcp_outbound(t, &pseudo, src_ip.into(), dst_ip.into(), p[1], p[8])
}

/// The TCP half of [`parse_outbound`].
fn tcp_outbound(
    t: &[u8],
    pseudo: &[u8],
    src_ip: IpAddr,
    dst_ip: IpAddr,
    tos: u8,
    ttl: u8,
) -> Result<Outbound, String> {
    if t.len() < 20 {
        return Err(format!("TCP segment of {} bytes is shorter than its header", t.len()));
    }
    let doff = (t[12] >> 4) as usize * 4;
    if doff < 20 || doff > t.len() {
        return Err(format!("bad TCP data offset {doff}"));
    }
    if checksum_fold(checksum_add(checksum_add(0, pseudo), t)) != 0 {
        return Err("bad TCP checksum".into());
    }
    Ok(Outbound {
        src: SocketAddr::new(src_ip, u16::from_be_bytes([t[0], t[1]])),
        dst: SocketAddr::new(dst_ip, u16::from_be_bytes([t[2], t[3]])),
        tos,
        ttl,
        seq: read_u32(t, 4),
        ack: read_u32(t, 8),
        flags: t[13],
        window: u16::from_be_bytes([t[14], t[15]]),
        urgent: u16::from_be_bytes([t[18], t[19]]),
        options: t[20..doff].to_vec(),
        payload: t[doff..].to_vec(),
    })
}

/// tcpdump-style flag letters in packetdrill's order (`-` for none).
pub fn flags_to_string(flags: u8) -> String {
    if flags == 0 { "-".into() } else { utcp::wire::TcpFlags(flags).to_string() }
}

/// Render an outbound packet in script space, in script syntax.
pub fn outbound_to_string(o: &Outbound) -> String {
    let mut s = format!(
        "{} {}:{}({})",
        flags_to_string(o.flags),
        o.seq,
        o.seq.wrapping_add(o.payload.len() as u32),
        o.payload.len()
    );
    if o.flags & 0x10 != 0 {
        s.push_str(&format!(" ack {}", o.ack));
    }
    s.push_str(&format!(" win {}", o.window));
    if o.urgent != 0 {
        s.push_str(&format!(" urg {}", o.urgent));
    }
    if !o.options.is_empty() {
        s.push_str(&format!(" <{}>", options_to_string(&o.options)));
    }
    s
}

/// Render a script packet in script syntax.
pub fn script_packet_to_string(p: &Packet) -> String {
    let mut s = flags_to_string(p.flags);
    match p.seq {
        Some(seq) => s.push_str(&format!(" {}:{}({})", seq, seq.wrapping_add(p.len), p.len)),
        None => s.push_str(&format!(" ...({})", p.len)),
    }
    if let Some(a) = p.ack {
        s.push_str(&format!(" ack {a}"));
    }
    if let Some(w) = p.win {
        s.push_str(&format!(" win {w}"));
    }
    if let Some(u) = p.urg {
        s.push_str(&format!(" urg {u}"));
    }
    match &p.options {
        None => s.push_str(" <...>"),
        Some(o) if o.is_empty() => {}
        Some(o) => s.push_str(&format!(" <{}>", options_to_string(&encode_options(o)))),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_then_parse_round_trips() {
        let opts = encode_options(&[TcpOpt::Mss(1460), TcpOpt::SackOk, TcpOpt::Eol, TcpOpt::Eol]);
        assert_eq!(opts, vec![2, 4, 0x05, 0xb4, 4, 2, 0, 0]);
        let seg = InboundSegment {
            src: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 42000),
            dst: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)), 8080),
            seq: 7,
            ack: 9,
            flags: 0x12,
            window: 32767,
            urgent: 0,
            options: &opts,
            payload_len: 5,
            ttl: 64,
            tos: 0,
        };
        let bytes = build_ip_tcp(&seg);
        let o = parse_outbound(&bytes).expect("valid");
        assert_eq!((o.seq, o.ack, o.flags, o.window), (7, 9, 0x12, 32767));
        assert_eq!(o.options, opts);
        assert_eq!(o.payload, vec![0; 5]);
        assert_eq!(outbound_to_string(&o), "S. 7:12(5) ack 9 win 32767 <mss 1460,sackOK,eol,eol>");
        let mut bad = bytes.clone();
        bad[30] ^= 1;
        assert!(parse_outbound(&bad).is_err());
    }

    #[test]
    fn timestamp_and_sack_offsets() {
        let opts = encode_options(&[
            TcpOpt::Nop,
            TcpOpt::Nop,
            TcpOpt::Timestamp { val: 5, ecr: 6 },
            TcpOpt::Nop,
            TcpOpt::Nop,
            TcpOpt::Sack(vec![(10, 20), (30, 40)]),
        ]);
        let ts = find_timestamp(&opts).expect("has TS");
        assert_eq!((read_u32(&opts, ts), read_u32(&opts, ts + 4)), (5, 6));
        let edges: Vec<u32> = sack_edges(&opts).iter().map(|&e| read_u32(&opts, e)).collect();
        assert_eq!(edges, vec![10, 20, 30, 40]);
        assert_eq!(options_to_string(&opts), "nop,nop,TS val 5 ecr 6,nop,nop,sack 10:20 30:40");
    }

    #[test]
    fn parse_never_panics_on_garbage() {
        for len in 0..64 {
            for fill in [0u8, 0x45, 0xff] {
                let mut b = vec![fill; len];
                if len > 0 {
                    b[0] = 0x45;
                }
                let _ = parse_outbound(&b);
            }
        }
        assert_eq!(find_timestamp(&[8, 200]), None);
        assert!(sack_edges(&[5, 1]).is_empty());
        assert!(options_to_string(&[2]).contains("truncated"));
    }
}
