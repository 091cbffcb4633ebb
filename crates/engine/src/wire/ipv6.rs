//! The IPv6 header (RFC 8200 §3) and its extension headers (RFC 8200 §4): validation on
//! receive, the fixed 40-byte header on send, the upper-layer pseudo-header (RFC 8200
//! §8.1), and the address martians.
//!
//! Extension headers are walked and skipped by their length: hop-by-hop options (first
//! only, §4.3), destination options (§4.6), routing (§4.4) and fragment (§4.5), at most
//! [`MAX_EXT_HEADERS`] of them. What utcp does not take is dropped and counted:
//!
//! - a routing header of type 0 with segments left (RFC 5095 §3: RH0 is never executed;
//!   with no segments left it is ignored like any routing header, RFC 8200 §4.4);
//! - an unrecognised routing type with segments left (RFC 8200 §4.4: discard);
//! - an unrecognised option whose two high-order bits say "discard" (RFC 8200 §4.2);
//! - atomic fragments, a fragment header with offset 0 and M = 0 (`Ipv6AtomicFragment`:
//!   utcp never asks for them, as RFC 8021 deprecates their generation);
//! - jumbograms (RFC 2675: payload length 0 with a Jumbo Payload option), which no link
//!   utcp runs on carries.
//!
//! No ICMPv6 Parameter Problem is sent for any of them (a host MAY stay silent, and
//! silence gives an off-path prober nothing).
use super::DropReason;
use super::checksum;
use std::net::Ipv6Addr;

/// Size of the fixed IPv6 header (RFC 8200 §3).
pub const IPV6_HEADER_LEN: usize = 40;
/// Next header: hop-by-hop options (RFC 8200 §4.3).
pub const NH_HOP_BY_HOP: u8 = 0;
/// Next header: routing (RFC 8200 §4.4).
pub const NH_ROUTING: u8 = 43;
/// Next header: fragment (RFC 8200 §4.5).
pub const NH_FRAGMENT: u8 = 44;
/// Next header: ICMPv6 (RFC 4443).
pub const NH_ICMPV6: u8 = 58;
/// Next header: no next header (RFC 8200 §4.7).
pub const NH_NONE: u8 = 59;
/// Next header: destination options (RFC 8200 §4.6).
pub const NH_DEST_OPTS: u8 = 60;
/// Extension headers walked at most; a packet with more is dropped (`Ipv6ExtHeader`).
pub const MAX_EXT_HEADERS: usize = 8;
/// Option type of the Jumbo Payload option (RFC 2675 §2).
const OPT_JUMBO: u8 = 0xc2;

/// The fragment header of a packet (RFC 8200 §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentHeader {
    /// Fragment offset in bytes (the 13-bit field × 8).
    pub offset: u32,
    /// M flag: more fragments follow.
    pub more: bool,
    /// Identification.
    pub id: u32,
}

/// A validated IPv6 packet: header fields, the upper-layer protocol after the extension
/// headers, and a view of the upper-layer bytes.
#[derive(Clone, Copy, Debug)]
pub struct Ipv6Packet<'a> {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Traffic class (DSCP + ECN).
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Hop limit.
    pub hop_limit: u8,
    /// The upper-layer protocol: the next header after the last extension header walked
    /// (for a fragment, the fragment header's next header).
    pub next_header: u8,
    /// The fragment header, if the packet is a fragment; `payload` is then the fragment's
    /// data (the fragmentable part).
    pub fragment: Option<FragmentHeader>,
    /// The upper-layer bytes (payload length minus the extension headers walked).
    pub payload: &'a [u8],
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn addr(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

/// Validate an IPv6 header and walk its extension headers. Checks, in order: length
/// ≥ 40 (`Truncated`), version (`BadIpVersion`), payload length (`BadTotalLength`; bytes
/// beyond it are ignored), then each extension header (`Ipv6ExtHeader`, `Ipv6BadOption`,
/// `Ipv6RoutingType0`, `Ipv6AtomicFragment`, `Ipv6Jumbogram`); no next header (59) is
/// `NotTcp`.
pub fn parse(packet: &[u8]) -> Result<Ipv6Packet<'_>, DropReason> {
    if packet.len() < IPV6_HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    if packet[0] >> 4 != 6 {
        return Err(DropReason::BadIpVersion);
    }
    let payload_len = be16(packet, 4) as usize;
    if IPV6_HEADER_LEN + payload_len > packet.len() {
        return Err(DropReason::BadTotalLength);
    }
    let vtf = be32(packet, 0);
    let mut p = Ipv6Packet {
        src: addr(packet, 8),
        dst: addr(packet, 24),
        traffic_class: (vtf >> 20) as u8,
        flow_label: vtf & 0xf_ffff,
        hop_limit: packet[7],
        next_header: packet[6],
        fragment: None,
        payload: &packet[IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload_len],
    };
    walk_extension_headers(&mut p)?;
    Ok(p)
}

/// RFC 8200 §4: skip extension headers until the upper layer (or a fragment header,
/// after which the rest is fragment data until reassembly).
fn walk_extension_headers(p: &mut Ipv6Packet<'_>) -> Result<(), DropReason> {
    for i in 0..=MAX_EXT_HEADERS {
        let rest = p.payload;
        let len = match p.next_header {
            // RFC 8200 §4.3: "MUST ... immediately follow the IPv6 header".
            NH_HOP_BY_HOP if i > 0 => return Err(DropReason::Ipv6ExtHeader),
            NH_HOP_BY_HOP | NH_DEST_OPTS => options_header(rest)?,
            NH_ROUTING => routing_header(rest)?,
            NH_FRAGMENT => {
                let f = fragment_header(rest)?;
                p.fragment = Some(f);
                p.next_header = rest[0];
                p.payload = &rest[8..];
                return Ok(());
            }
            NH_NONE => return Err(DropReason::NotTcp),
            _ => return Ok(()),
        };
        if i == MAX_EXT_HEADERS {
            break;
        }
        p.next_header = rest[0];
        p.payload = &rest[len..];
    }
    Err(DropReason::Ipv6ExtHeader)
}

/// Length of a hop-by-hop or destination options header (RFC 8200 §4.3, §4.6) whose
/// options all may be skipped.
fn options_header(h: &[u8]) -> Result<usize, DropReason> {
    if h.len() < 2 {
        return Err(DropReason::Ipv6ExtHeader);
    }
    // "Hdr Ext Len: 8-bit unsigned integer. Length of the header in 8-octet units, not
    // including the first 8 octets."
    let len = (h[1] as usize + 1) * 8;
    if len > h.len() {
        return Err(DropReason::Ipv6ExtHeader);
    }
    let mut at = 2;
    while at < len {
        let t = h[at];
        if t == 0 {
            at += 1; // Pad1
            continue;
        }
        let Some(&olen) = h.get(at + 1).filter(|_| at + 1 < len) else {
            return Err(DropReason::Ipv6ExtHeader);
        };
        let end = at + 2 + olen as usize;
        if end > len {
            return Err(DropReason::Ipv6ExtHeader);
        }
        match t {
            OPT_JUMBO => return Err(DropReason::Ipv6Jumbogram),
            // PadN (1), and any option whose action bits are 00: "skip over this option
            // and continue processing the header" (RFC 8200 §4.2). Router Alert (5) and
            // the tunnel encapsulation limit (4) are of that kind.
            _ if t >> 6 == 0 => {}
            // 01: discard; 10/11: discard (and MAY send a Parameter Problem, not sent).
            _ => return Err(DropReason::Ipv6BadOption),
        }
        at = end;
    }
    Ok(len)
}

/// Length of a routing header that may be ignored (RFC 8200 §4.4, RFC 5095 §3).
fn routing_header(h: &[u8]) -> Result<usize, DropReason> {
    if h.len() < 4 {
        return Err(DropReason::Ipv6ExtHeader);
    }
    let len = (h[1] as usize + 1) * 8;
    if len > h.len() {
        return Err(DropReason::Ipv6ExtHeader);
    }
    let (routing_type, segments_left) = (h[2], h[3]);
    if segments_left == 0 {
        // "If Segments Left is zero, the node must ignore the Routing header".
        return Ok(len);
    }
    // A host is the final destination; it routes nothing further.
    Err(if routing_type == 0 { DropReason::Ipv6RoutingType0 } else { DropReason::Ipv6ExtHeader })
}

/// The fragment header (RFC 8200 §4.5): 8 bytes.
fn fragment_header(h: &[u8]) -> Result<FragmentHeader, DropReason> {
    if h.len() < 8 {
        return Err(DropReason::Ipv6ExtHeader);
    }
    let om = be16(h, 2);
    let f = FragmentHeader { offset: u32::from(om >> 3) * 8, more: om & 1 != 0, id: be32(h, 4) };
    if f.offset == 0 && !f.more {
        return Err(DropReason::Ipv6AtomicFragment);
    }
    Ok(f)
}

/// The upper-layer pseudo-header partial sum (RFC 8200 §8.1): source, destination,
/// upper-layer packet length (32 bits), three zero bytes and the next header.
#[must_use]
pub fn pseudo_header(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, len: u32) -> u64 {
    let words = |a: &Ipv6Addr| -> u64 {
        let o = a.octets();
        (0..4).map(|k| be32(&o, 4 * k) as u64).sum()
    };
    words(src) + words(dst) + len as u64 + next_header as u64
}

/// Fields of an IPv6 header to emit (40 bytes, no extension headers).
#[derive(Clone, Copy, Debug)]
pub struct Ipv6Out {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header (the upper-layer protocol).
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class (DSCP + ECN).
    pub traffic_class: u8,
    /// Flow label; only the low 20 bits are written (RFC 6437).
    pub flow_label: u32,
}

impl Ipv6Out {
    /// Write the 40-byte header for `payload_len` bytes of payload into `ip[..40]`.
    /// Returns false if the payload exceeds 65,535 bytes (utcp sends no jumbograms) or
    /// `ip` is too short.
    pub fn emit(&self, ip: &mut [u8], payload_len: usize) -> bool {
        if payload_len > u16::MAX as usize || ip.len() < IPV6_HEADER_LEN {
            return false;
        }
        let vtf = 6u32 << 28 | (self.traffic_class as u32) << 20 | (self.flow_label & 0xf_ffff);
        ip[0..4].copy_from_slice(&vtf.to_be_bytes());
        ip[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
        ip[6] = self.next_header;
        ip[7] = self.hop_limit;
        ip[8..24].copy_from_slice(&self.src.octets());
        ip[24..40].copy_from_slice(&self.dst.octets());
        true
    }

    /// The upper-layer pseudo-header partial sum for `len` bytes.
    #[must_use]
    pub fn pseudo(&self, len: usize) -> u64 {
        pseudo_header(&self.src, &self.dst, self.next_header, len as u32)
    }
}

/// Verify an upper-layer checksum (TCP, ICMPv6) over `data` (RFC 8200 §8.1).
#[must_use]
pub fn verify_upper(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, data: &[u8]) -> bool {
    checksum::verify(data, pseudo_header(src, dst, next_header, data.len() as u32))
}

/// IPv4-mapped (`::ffff:0:0/96`, RFC 4291 §2.5.5.2): never valid in an IPv6 header.
fn v4_mapped(a: &Ipv6Addr) -> bool {
    let s = a.segments();
    s[..5] == [0; 5] && s[5] == 0xffff
}

/// Martians (RFC 4291 §2.5.2, §2.5.3, §2.7): why a packet with these addresses is
/// dropped. Destination: multicast (TCP is unicast, RFC 9293 §3.10.7.2), unspecified or
/// loopback (`::1` never arrives on a link). Source: multicast, unspecified, loopback or
/// IPv4-mapped. Our own address as the source (LAND) needs our addresses and is the
/// Stack's check (`crates/engine/src/martian.rs`).
pub(crate) fn martian_reason(src: &Ipv6Addr, dst: &Ipv6Addr) -> Option<DropReason> {
    if dst.is_multicast() {
        return Some(DropReason::MartianDstMulticast);
    }
    if dst.is_unspecified() || dst.is_loopback() {
        return Some(DropReason::BadAddress);
    }
    if src.is_multicast() {
        return Some(DropReason::MartianSrcMulticast);
    }
    if src.is_unspecified() {
        return Some(DropReason::MartianSrcUnspecified);
    }
    (src.is_loopback() || v4_mapped(src)).then_some(DropReason::MartianSrcReserved)
}
