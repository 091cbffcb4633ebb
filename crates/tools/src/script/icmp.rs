//! Inbound ICMPv4 error lines of packetdrill scripts (issue 13):
//! `< icmp unreachable port_unreachable [0:0(0)]`,
//! `< icmp unreachable frag_needed mtu 1234 [1:1461(1460)]`,
//! `< icmp time_exceeded ttl_exceeded_in_transit [0:0(0)]`.
//! The bracket names the TCP segment the ICMP message quotes: one the stack sent, so its
//! sequence numbers are relative to our ISS, as outbound segments are. The packet is an
//! ICMP error from the remote address quoting an IPv4 header (local → remote) and the
//! first 8 bytes of TCP (ports and SEG.SEQ), as RFC 792 asks.

use super::packet::{checksum_add, checksum_fold};
use std::net::SocketAddrV4;

/// One parsed ICMP line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpLine {
    /// ICMP type.
    pub ty: u8,
    /// ICMP code.
    pub code: u8,
    /// `mtu N` (next-hop MTU of a Fragmentation Needed).
    pub mtu: Option<u16>,
    /// Quoted SEG.SEQ (script space, relative to our ISS).
    pub seq: u32,
    /// Quoted segment length.
    pub len: u32,
}

/// packetdrill's ICMPv4 type names (icmp_packet.c).
fn type_of(name: &str) -> Option<u8> {
    Some(match name {
        "echo_reply" => 0,
        "unreachable" => 3,
        "source_quench" => 4,
        "redirect" => 5,
        "echo_request" => 8,
        "time_exceeded" => 11,
        "parameter_problem" => 12,
        _ => return None,
    })
}

/// packetdrill's ICMPv4 code names for `ty`, or `code_N`.
fn code_of(ty: u8, name: &str) -> Option<u8> {
    if let Some(n) = name.strip_prefix("code_") {
        return n.parse().ok();
    }
    const UNREACH: [&str; 16] = [
        "net_unreachable",
        "host_unreachable",
        "protocol_unreachable",
        "port_unreachable",
        "frag_needed",
        "source_route_failed",
        "net_unknown",
        "host_unknown",
        "source_host_isolated",
        "net_prohibited",
        "host_prohibited",
        "net_unreachable_for_tos",
        "host_unreachable_for_tos",
        "packet_filtered",
        "precedence_violation",
        "precedence_cutoff",
    ];
    let table: &[&str] = match ty {
        3 => &UNREACH,
        11 => &["ttl_exceeded_in_transit", "frag_reass_exceeded"],
        _ => &[],
    };
    table.iter().position(|n| *n == name).map(|i| i as u8)
}

/// Parse what follows `icmp` on an inbound packet line.
pub fn parse(rest: &str) -> Result<IcmpLine, String> {
    let mut words = rest.split_whitespace().peekable();
    let tname = words.next().ok_or("ICMP type missing")?;
    let ty = type_of(tname).ok_or_else(|| format!("ICMP type `{tname}`"))?;
    let mut code = 0;
    if let Some(w) = words.peek().copied()
        && !w.starts_with('[')
        && w != "mtu"
    {
        code = code_of(ty, w).ok_or_else(|| format!("ICMP code `{w}` of `{tname}`"))?;
        words.next();
    }
    let mut mtu = None;
    if words.peek() == Some(&"mtu") {
        words.next();
        let v = words.next().and_then(|v| v.parse().ok()).ok_or("ICMP `mtu` needs a number")?;
        mtu = Some(v);
    }
    let quote = words.next().ok_or("ICMP line without the quoted segment `[start:end(len)]`")?;
    if words.next().is_some() {
        return Err(format!("ICMP line with more after the quote ({rest})"));
    }
    let (seq, len) = parse_quote(quote).ok_or_else(|| format!("ICMP quote `{quote}`"))?;
    Ok(IcmpLine { ty, code, mtu, seq, len })
}

/// `[start:end(len)]`.
fn parse_quote(q: &str) -> Option<(u32, u32)> {
    let inner = q.strip_prefix('[')?.strip_suffix(']')?;
    let (start, rest) = inner.split_once(':')?;
    let (end, len) = rest.strip_suffix(')')?.split_once('(')?;
    let (start, end, len): (u32, u32, u32) = (start.parse().ok()?, end.parse().ok()?, len.parse().ok()?);
    (end.wrapping_sub(start) == len).then_some((start, len))
}

/// The IPv4 packet: an ICMP error from `remote` to `local` quoting a segment `local →
/// remote` with SEG.SEQ `live_seq` (the script's sequence number mapped to live space).
pub fn build(i: &IcmpLine, local: SocketAddrV4, remote: SocketAddrV4, live_seq: u32) -> Vec<u8> {
    let mut quoted = [0u8; 28];
    quoted[0] = 0x45;
    let qlen = 40u32.saturating_add(i.len).min(65535) as u16;
    quoted[2..4].copy_from_slice(&qlen.to_be_bytes());
    quoted[6] = 0x40;
    quoted[8] = 64;
    quoted[9] = 6;
    quoted[12..16].copy_from_slice(&local.ip().octets());
    quoted[16..20].copy_from_slice(&remote.ip().octets());
    let s = checksum_fold(checksum_add(0, &quoted[..20]));
    quoted[10..12].copy_from_slice(&s.to_be_bytes());
    quoted[20..22].copy_from_slice(&local.port().to_be_bytes());
    quoted[22..24].copy_from_slice(&remote.port().to_be_bytes());
    quoted[24..28].copy_from_slice(&live_seq.to_be_bytes());
    let mut icmp = vec![i.ty, i.code, 0, 0, 0, 0, 0, 0];
    icmp[6..8].copy_from_slice(&i.mtu.unwrap_or(0).to_be_bytes());
    icmp.extend_from_slice(&quoted);
    let s = checksum_fold(checksum_add(0, &icmp));
    icmp[2..4].copy_from_slice(&s.to_be_bytes());
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&remote.ip().octets());
    p[16..20].copy_from_slice(&local.ip().octets());
    let s = checksum_fold(checksum_add(0, &p));
    p[10..12].copy_from_slice(&s.to_be_bytes());
    p.extend_from_slice(&icmp);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_packetdrill_icmp_lines() {
        let l = parse("unreachable frag_needed mtu 1234 [0:0(0)]").unwrap();
        assert_eq!(l, IcmpLine { ty: 3, code: 4, mtu: Some(1234), seq: 0, len: 0 });
        let l = parse("time_exceeded ttl_exceeded_in_transit [4294967295:4294967295(0)]").unwrap();
        assert_eq!((l.ty, l.code, l.seq), (11, 0, u32::MAX));
        assert_eq!(parse("unreachable packet_filtered [1:1(0)]").unwrap().code, 13);
        assert_eq!(parse("parameter_problem code_2 [0:0(0)]").unwrap().code, 2);
        assert_eq!(parse("source_quench [0:0(0)]").unwrap().ty, 4);
        assert!(parse("unreachable bogus [0:0(0)]").is_err());
        assert!(parse("unreachable port_unreachable [0:5(4)]").is_err());
        assert!(parse("unreachable port_unreachable").is_err());
    }

    #[test]
    fn built_packet_has_valid_checksums() {
        let l = parse("unreachable port_unreachable [0:0(0)]").unwrap();
        let local = SocketAddrV4::new([192, 168, 0, 1].into(), 8080);
        let remote = SocketAddrV4::new([192, 0, 2, 1].into(), 1234);
        let p = build(&l, local, remote, 77);
        assert_eq!(checksum_fold(checksum_add(0, &p[..20])), 0);
        assert_eq!(checksum_fold(checksum_add(0, &p[20..])), 0);
        assert_eq!(&p[20 + 8 + 24..20 + 8 + 28], &77u32.to_be_bytes());
    }
}
