//! The IPv4 header (RFC 791 §3.1): validation on receive, the fixed 20-byte header on
//! send, the pseudo-header of the transport checksum, and the address martians.
//!
//! The transport above (TCP in `tcp.rs`, ICMP in `crate::icmp`) is parsed separately, so
//! the same TCP code runs over IPv6 (`ipv6.rs`).
use super::DropReason;
use super::checksum;
use std::net::Ipv4Addr;

/// Size of an IPv4 header without options (IHL 5).
pub const IPV4_HEADER_LEN: usize = 20;

/// A validated IPv4 packet: header fields and a view of its payload.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Packet<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol number of the payload.
    pub protocol: u8,
    /// Type of service / DSCP+ECN byte.
    pub tos: u8,
    /// Time to live.
    pub ttl: u8,
    /// Header length (IHL × 4).
    pub header_len: usize,
    /// More fragments or a non-zero fragment offset: `payload` is a fragment.
    pub is_fragment: bool,
    /// The payload (total length minus the header; trailing link padding removed).
    pub payload: &'a [u8],
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Validate an IPv4 header. Checks, in order (the first failure is returned): length
/// ≥ 20 (`Truncated`), version (`Ipv6`, `BadIpVersion`), IHL (`BadIhl`), total length
/// (`BadTotalLength`; bytes beyond it, e.g. Ethernet padding, are ignored), header
/// checksum (`BadIpChecksum`). Fragments are returned with `is_fragment` set.
pub fn parse(packet: &[u8]) -> Result<Ipv4Packet<'_>, DropReason> {
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
    let header_ok = match <&[u8; IPV4_HEADER_LEN]>::try_from(&packet[..ihl]) {
        Ok(h) => checksum::verify_ipv4_header(h),
        Err(_) => checksum::verify(&packet[..ihl], 0), // with options
    };
    if !header_ok {
        return Err(DropReason::BadIpChecksum);
    }
    Ok(Ipv4Packet {
        src: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        dst: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
        protocol: packet[9],
        tos: packet[1],
        ttl: packet[8],
        header_len: ihl,
        // RFC 791 §3.1: flags bit 2 = MF; 13-bit fragment offset.
        is_fragment: be16(packet, 6) & 0x3fff != 0,
        payload: &packet[ihl..],
    })
}

/// Fields of an IPv4 header to emit (20 bytes, no options, DF set).
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Out {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol number of the payload.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification field.
    pub ip_id: u16,
}

impl Ipv4Out {
    /// Write the 20-byte header for a payload of `payload_len` bytes into `ip[..20]`.
    /// Returns false if the datagram would exceed 65,535 bytes or `ip` is too short.
    pub fn emit(&self, ip: &mut [u8], payload_len: usize) -> bool {
        let total_len = IPV4_HEADER_LEN + payload_len;
        if total_len > u16::MAX as usize || ip.len() < IPV4_HEADER_LEN {
            return false;
        }
        // RFC 791 §3.1 header, written as five 32-bit words whose checksum is summed in
        // registers rather than re-read from `ip` just after narrow stores.
        let words = [
            0x4500_0000 | total_len as u32,     // version 4, IHL 5, TOS 0, total length
            (self.ip_id as u32) << 16 | 0x4000, // id, DF set, fragment offset 0
            (self.ttl as u32) << 24 | (self.protocol as u32) << 16, // TTL, protocol, checksum 0
            u32::from(self.src),
            u32::from(self.dst),
        ];
        let c = checksum::finish(words.iter().map(|&w| w as u64).sum());
        for (k, w) in words.iter().enumerate() {
            ip[4 * k..4 * k + 4].copy_from_slice(&w.to_be_bytes());
        }
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        true
    }

    /// The transport pseudo-header partial sum for `len` bytes of payload.
    #[must_use]
    pub fn pseudo(&self, len: usize) -> u64 {
        checksum::pseudo_header_ipv4(self.src.octets(), self.dst.octets(), self.protocol, len as u16)
    }
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
