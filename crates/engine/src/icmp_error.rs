//! ICMP error messages for TCP (issue 13): parse an ICMPv4 Destination Unreachable, Time
//! Exceeded or Parameter Problem (RFC 792) into a family-agnostic [`IcmpError`]: what
//! happened ([`IcmpErrorKind`]), the connection it names (the [`Quad`] of the quoted IP
//! and TCP headers, seen from our side) and the quoted sequence number. The TCB validates
//! and acts on it (`tcb/pmtu.rs`); ICMPv6 (RFC 4443) can build the same struct later.
//!
//! RFC 1122 §4.2.3.9: "TCP MUST act on an ICMP error message passed up from the IP layer,
//! directing it to the connection that created the error. The necessary demultiplexing
//! information can be found in the IP header contained within the ICMP message."
//! RFC 792 quotes "the internet header plus the first 64 bits of the original datagram's
//! data": the TCP ports and sequence number, all that is needed here.

use crate::Quad;
use crate::seq::SeqNum;
use crate::wire::DropReason;
use crate::wire::checksum;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// ICMP type Destination Unreachable (RFC 792).
pub const DEST_UNREACHABLE: u8 = 3;
/// ICMP type Source Quench (RFC 792; deprecated by RFC 6633).
pub const SOURCE_QUENCH: u8 = 4;
/// ICMP type Redirect (RFC 792).
pub const REDIRECT: u8 = 5;
/// ICMP type Time Exceeded (RFC 792).
pub const TIME_EXCEEDED: u8 = 11;
/// ICMP type Parameter Problem (RFC 792).
pub const PARAMETER_PROBLEM: u8 = 12;

/// What an ICMP error says, independent of the address family.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IcmpErrorKind {
    /// Network unreachable (codes 0, 6, 11): soft (RFC 1122 §4.2.3.9).
    NetUnreachable,
    /// Host unreachable and its kin (codes 1, 5, 7, 8, 12, 14, 15): soft.
    HostUnreachable,
    /// Protocol unreachable (code 2): hard.
    ProtocolUnreachable,
    /// Port unreachable (code 3): hard.
    PortUnreachable,
    /// Communication administratively prohibited (codes 9, 10, 13; RFC 1812 §5.2.7.1): hard
    /// in SYN-SENT for FreeBSD and Linux (RFC 1122 predates them).
    AdminProhibited,
    /// Fragmentation needed and DF set (code 4), with the next-hop MTU (RFC 1191 §4), or
    /// a guess from the plateau table when the router sent 0 (RFC 1191 §5).
    FragmentationNeeded {
        /// The path MTU to use from now on.
        mtu: u16,
    },
    /// Time exceeded in transit or in reassembly (type 11): soft.
    TimeExceeded {
        /// Code 0 (TTL exceeded in transit) rather than 1 (reassembly time exceeded).
        in_transit: bool,
    },
    /// Parameter problem (type 12): soft.
    ParameterProblem,
}

impl IcmpErrorKind {
    /// RFC 1122 §4.2.3.9: "Since these Unreachable messages indicate soft error
    /// conditions, TCP MUST NOT abort the connection" (codes 0, 1, 5); protocol and port
    /// unreachable "SHOULD abort". Administratively prohibited counts as hard too (both
    /// FreeBSD's and Linux's choice).
    #[must_use]
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            IcmpErrorKind::ProtocolUnreachable
                | IcmpErrorKind::PortUnreachable
                | IcmpErrorKind::AdminProhibited
        )
    }
}

/// A parsed ICMP error for TCP: the kind, the connection it names and the quoted SEG.SEQ.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IcmpError {
    /// What happened.
    pub kind: IcmpErrorKind,
    /// The connection, from our side: local = the quoted source, remote = the quoted
    /// destination (the quoted datagram is one we sent).
    pub quad: Quad,
    /// SEG.SEQ of the quoted segment.
    pub seq: SeqNum,
    /// The address the ICMP message came to (it must be ours).
    pub dst: IpAddr,
}

/// RFC 1191 §7 table 7-1: MTU plateaus, for a Fragmentation Needed without a next-hop MTU.
const PLATEAUS: [u16; 10] = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/// RFC 1191 §5: "the PMTU should be reduced to the largest plateau value that is less than
/// the Total Length field in the datagram that it sent".
#[must_use]
pub fn plateau_below(total_len: u16) -> u16 {
    PLATEAUS.iter().copied().find(|&p| p < total_len).unwrap_or(68)
}

/// Map an ICMPv4 (type, code) to a kind; `None` for messages TCP ignores (RFC 6633:
/// source quench; redirects; unknown codes), which are dropped as `IcmpIgnored`.
fn kind_v4(ty: u8, code: u8, next_hop_mtu: u16, quoted_len: u16) -> Option<IcmpErrorKind> {
    use IcmpErrorKind::*;
    Some(match (ty, code) {
        (DEST_UNREACHABLE, 0 | 6 | 11) => NetUnreachable,
        (DEST_UNREACHABLE, 1 | 5 | 7 | 8 | 12 | 14 | 15) => HostUnreachable,
        (DEST_UNREACHABLE, 2) => ProtocolUnreachable,
        (DEST_UNREACHABLE, 3) => PortUnreachable,
        (DEST_UNREACHABLE, 4) => {
            let mtu = if next_hop_mtu == 0 { plateau_below(quoted_len) } else { next_hop_mtu };
            FragmentationNeeded { mtu }
        }
        (DEST_UNREACHABLE, 9 | 10 | 13) => AdminProhibited,
        (TIME_EXCEEDED, c @ (0 | 1)) => TimeExceeded { in_transit: c == 0 },
        (PARAMETER_PROBLEM, 0..=2) => ParameterProblem,
        _ => return None,
    })
}

/// Parse an IPv4 packet carrying an ICMP error that quotes a TCP segment. The outer
/// header was checked by `icmp::parse_echo_request`'s rules (version, IHL, length,
/// checksum, no fragment); they are repeated here so this function stands alone and
/// never panics. Errors: `Truncated`, `IcmpBadChecksum`, `IcmpNotEcho` (not an error
/// type), `IcmpIgnored` (an error TCP does not act on), `IcmpNotTcp` (quotes another
/// protocol or a header we cannot read).
pub fn parse_v4(packet: &[u8]) -> Result<IcmpError, DropReason> {
    let ihl = outer_header_len(packet)?;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]])).min(packet.len());
    let icmp = &packet[ihl..total];
    if icmp.len() < 8 {
        return Err(DropReason::Truncated);
    }
    if !checksum::verify(icmp, 0) {
        return Err(DropReason::IcmpBadChecksum);
    }
    let (ty, code) = (icmp[0], icmp[1]);
    if !matches!(ty, DEST_UNREACHABLE | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAMETER_PROBLEM) {
        return Err(DropReason::IcmpNotEcho);
    }
    // The quoted datagram: an IPv4 header and at least 8 bytes of TCP (RFC 792).
    let quoted = &icmp[8..];
    if quoted.len() < 20 || quoted[0] >> 4 != 4 {
        return Err(DropReason::IcmpNotTcp);
    }
    let qihl = usize::from(quoted[0] & 0x0f) * 4;
    if qihl < 20 || quoted.len() < qihl + 8 || quoted[9] != crate::wire::packet::PROTO_TCP {
        return Err(DropReason::IcmpNotTcp);
    }
    let next_hop_mtu = u16::from_be_bytes([icmp[6], icmp[7]]);
    let quoted_len = u16::from_be_bytes([quoted[2], quoted[3]]);
    let kind = kind_v4(ty, code, next_hop_mtu, quoted_len).ok_or(DropReason::IcmpIgnored)?;
    let q_src = Ipv4Addr::new(quoted[12], quoted[13], quoted[14], quoted[15]);
    let q_dst = Ipv4Addr::new(quoted[16], quoted[17], quoted[18], quoted[19]);
    let tcp = &quoted[qihl..];
    let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
    let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
    let seq = SeqNum(u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]));
    let quad = Quad {
        local: SocketAddr::new(IpAddr::V4(q_src), sport),
        remote: SocketAddr::new(IpAddr::V4(q_dst), dport),
    };
    let dst = IpAddr::V4(Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]));
    Ok(IcmpError { kind, quad, seq, dst })
}

/// An ICMPv6 error (RFC 4443 §3, already checksum-verified by `icmp6::parse`) as an
/// [`IcmpError`], so IPv6 shares the IPv4 handler: Destination Unreachable (§3.1) codes 0
/// no route and 2 beyond scope are soft like IPv4's net/host unreachable, 3 address
/// unreachable soft, 4 port unreachable hard, 1/5/6 (prohibited, ingress policy, reject
/// route) as administratively prohibited; Packet Too Big (§3.2, RFC 8201) carries the
/// MTU; Time Exceeded (§3.3) and Parameter Problem (§3.4) are soft, except an
/// unrecognized Next Header (§3.4 code 1), which is protocol unreachable. The quoted packet
/// must be an IPv6 header directly followed by at least 8 bytes of TCP (`IcmpNotTcp`
/// otherwise: utcp sends no extension headers, so a quote with them is not ours).
pub fn from_v6(ty: u8, code: u8, param: u32, quoted: &[u8], dst: Ipv6Addr) -> Result<IcmpError, DropReason> {
    use IcmpErrorKind::*;
    let kind = match (ty, code) {
        (1, 0 | 2) => NetUnreachable,
        (1, 3) => HostUnreachable,
        (1, 4) => PortUnreachable,
        (1, 1 | 5 | 6) => AdminProhibited,
        (2, _) => FragmentationNeeded { mtu: param.min(65535) as u16 },
        (3, c @ (0 | 1)) => TimeExceeded { in_transit: c == 0 },
        // §3.4 code 1, "unrecognized Next Header type": the peer has no TCP, IPv6's
        // protocol unreachable (hard, as FreeBSD's icmp6_errmap has it).
        (4, 1) => ProtocolUnreachable,
        (4, 0 | 2) => ParameterProblem,
        _ => return Err(DropReason::IcmpIgnored),
    };
    if quoted.len() < 48 || quoted[0] >> 4 != 6 || quoted[6] != crate::wire::packet::PROTO_TCP {
        return Err(DropReason::IcmpNotTcp);
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&quoted[at..at + 16]);
        Ipv6Addr::from(a)
    };
    let tcp = &quoted[40..];
    let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
    let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
    let seq = SeqNum(u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]));
    let quad = Quad {
        local: SocketAddr::new(IpAddr::V6(addr(8)), sport),
        remote: SocketAddr::new(IpAddr::V6(addr(24)), dport),
    };
    Ok(IcmpError { kind, quad, seq, dst: IpAddr::V6(dst) })
}

/// The outer IPv4 header's length, after the checks of RFC 791 §3.1.
fn outer_header_len(packet: &[u8]) -> Result<usize, DropReason> {
    if packet.len() < 20 {
        return Err(DropReason::Truncated);
    }
    if packet[0] >> 4 != 4 {
        return Err(DropReason::BadIpVersion);
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    if ihl < 20 || ihl > packet.len() {
        return Err(DropReason::BadIhl);
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total < ihl || total > packet.len() {
        return Err(DropReason::BadTotalLength);
    }
    if !checksum::verify(&packet[..ihl], 0) {
        return Err(DropReason::BadIpChecksum);
    }
    if u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0 {
        return Err(DropReason::Fragment);
    }
    Ok(ihl)
}

/// Is `packet` (an IPv4 ICMP packet) one of the error types [`parse_v4`] handles? Lets the
/// Stack send echo requests one way and errors the other without parsing twice.
#[must_use]
pub fn is_error_type(packet: &[u8]) -> bool {
    let ihl = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
    matches!(
        packet.get(ihl),
        Some(&(DEST_UNREACHABLE | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAMETER_PROBLEM))
    )
}

/// Rewrite the TOS byte and the DF bit of an IPv4 header that `emit_ipv4_tcp` wrote (TOS
/// 0, DF set), updating the header checksum incrementally (RFC 1624 eqn. 3). Used for a
/// connection's `Stack::set_tos` (RFC 9293 MUST-48) and `Config::pmtu_discovery` off.
pub fn restamp_ipv4(ip: &mut [u8], tos: u8, df: bool) {
    if ip.first().is_some_and(|b| b >> 4 == 6) && ip.len() >= 2 {
        // IPv6 (RFC 8200 §3): the traffic class spans the low nibble of byte 0 and the
        // high nibble of byte 1; there is no DF and no header checksum.
        ip[0] = 0x60 | (tos >> 4);
        ip[1] = (tos << 4) | (ip[1] & 0x0f);
        return;
    }
    if ip.len() < 20 || (tos == ip[1] && df == (ip[6] & 0x40 != 0)) {
        return;
    }
    let old = [u16::from_be_bytes([ip[0], ip[1]]), u16::from_be_bytes([ip[6], ip[7]])];
    ip[1] = tos;
    if df {
        ip[6] |= 0x40
    } else {
        ip[6] &= !0x40
    }
    let new = [u16::from_be_bytes([ip[0], ip[1]]), u16::from_be_bytes([ip[6], ip[7]])];
    // HC' = ~(~HC + ~m + m') for each changed 16-bit word.
    let mut sum = u32::from(!u16::from_be_bytes([ip[10], ip[11]]));
    for (o, n) in old.iter().zip(new.iter()) {
        sum += u32::from(!o) + u32::from(*n);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateaus_follow_rfc1191_table() {
        assert_eq!(plateau_below(1500), 1492);
        assert_eq!(plateau_below(1492), 1006);
        assert_eq!(plateau_below(40000), 32000);
        assert_eq!(plateau_below(60), 68);
    }

    #[test]
    fn restamp_keeps_the_header_checksum_valid() {
        let mut ip = [0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let c = checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        for (tos, df) in [(0xb8, true), (0x20, false), (0, true), (0xff, false)] {
            restamp_ipv4(&mut ip, tos, df);
            assert_eq!((ip[1], ip[6] & 0x40 != 0), (tos, df));
            assert!(checksum::verify(&ip, 0), "tos {tos:#x} df {df}");
        }
    }

    #[test]
    fn kinds_split_hard_and_soft_as_rfc1122() {
        let hard: Vec<u8> =
            (0..16).filter(|&c| kind_v4(3, c, 0, 1500).is_some_and(|k| k.is_hard())).collect();
        assert_eq!(hard, [2, 3, 9, 10, 13]);
        assert_eq!(kind_v4(3, 4, 0, 1500), Some(IcmpErrorKind::FragmentationNeeded { mtu: 1492 }));
        assert_eq!(kind_v4(3, 4, 1280, 1500), Some(IcmpErrorKind::FragmentationNeeded { mtu: 1280 }));
        assert_eq!(kind_v4(4, 0, 0, 1500), None, "RFC 6633: source quench is ignored");
        assert_eq!(kind_v4(5, 1, 0, 1500), None);
        assert_eq!(kind_v4(3, 16, 0, 1500), None);
    }
}
