//! Inbound ICMP error lines of packetdrill scripts (issue 13), for either family:
//! `< icmp unreachable port_unreachable [0:0(0)]`,
//! `< icmp unreachable frag_needed mtu 1234 [1:1461(1460)]`,
//! `< icmp time_exceeded ttl_exceeded_in_transit [0:0(0)]`,
//! `< icmp packet_too_big mtu 1300 [0:0(0)]` (ICMPv6 under `--ip_version=ipv6`).
//! The bracket names the TCP segment the ICMP message quotes: one the stack sent, so its
//! sequence numbers are relative to our ISS, as outbound segments are. The packet is an
//! ICMP error from the remote address quoting an IP header (local → remote) and the
//! first 8 bytes of TCP (ports and SEG.SEQ), as RFC 792 and RFC 4443 §2.4 ask.

use super::packet::{checksum_add, checksum_fold};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV4};

/// One parsed ICMP line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpLine {
    /// The type's name, as written.
    pub ty_name: String,
    /// The code's name (or `code_N`), as written; `None` is code 0.
    pub code_name: Option<String>,
    /// `mtu N` (next-hop MTU of a Fragmentation Needed).
    pub mtu: Option<u16>,
    /// Quoted SEG.SEQ (script space, relative to our ISS).
    pub seq: u32,
    /// Quoted segment length.
    pub len: u32,
}

/// packetdrill's ICMPv6 type names (icmpv6_packet.c, RFC 4443 §3).
fn type_of_v6(name: &str) -> Option<u8> {
    Some(match name {
        "unreachable" => 1,
        "packet_too_big" => 2,
        "time_exceeded" => 3,
        "parameter_problem" => 4,
        "echo_request" => 128,
        "echo_reply" => 129,
        _ => return None,
    })
}

/// packetdrill's ICMPv6 code names for `ty` (RFC 4443 §3.1, §3.3, §3.4; code 2 of
/// unreachable is RFC 2463's "not a neighbour", RFC 4443's "beyond scope"), or `code_N`.
fn code_of_v6(ty: u8, name: &str) -> Option<u8> {
    if let Some(n) = name.strip_prefix("code_") {
        return n.parse().ok();
    }
    let table: &[&str] = match ty {
        1 => &["no_route", "admin_prohibited", "not_neighbour", "address_unreachable", "port_unreachable"],
        3 => &["exceeded_hop_limit", "exceeded_frag_time"],
        4 => &["header_field", "unknown_next_header", "unknown_option"],
        _ => &[],
    };
    match (ty, name) {
        (1, "beyond_scope") => Some(2),
        _ => table.iter().position(|n| *n == name).map(|i| i as u8),
    }
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
    let mut line = IcmpLine { ty_name: tname.to_string(), code_name: None, mtu: None, seq: 0, len: 0 };
    if type_of(tname).is_none() && type_of_v6(tname).is_none() {
        return Err(format!("ICMP type `{tname}`"));
    }
    if let Some(w) = words.peek().copied()
        && !w.starts_with('[')
        && w != "mtu"
    {
        line.code_name = Some(w.to_string());
        if line.v4().is_err() && line.v6().is_err() {
            return Err(format!("ICMP code `{w}` of `{tname}`"));
        }
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
    Ok(IcmpLine { mtu, seq, len, ..line })
}

impl IcmpLine {
    /// ICMPv4 (type, code), or why the names are not ICMPv4's.
    pub fn v4(&self) -> Result<(u8, u8), String> {
        let ty = type_of(&self.ty_name).ok_or_else(|| format!("ICMPv4 type `{}`", self.ty_name))?;
        let code = match &self.code_name {
            None => 0,
            Some(c) => code_of(ty, c).ok_or_else(|| format!("ICMPv4 code `{c}` of `{}`", self.ty_name))?,
        };
        Ok((ty, code))
    }

    /// ICMPv6 (type, code), or why the names are not ICMPv6's.
    pub fn v6(&self) -> Result<(u8, u8), String> {
        let ty = type_of_v6(&self.ty_name).ok_or_else(|| format!("ICMPv6 type `{}`", self.ty_name))?;
        let code = match &self.code_name {
            None => 0,
            Some(c) => code_of_v6(ty, c).ok_or_else(|| format!("ICMPv6 code `{c}` of `{}`", self.ty_name))?,
        };
        Ok((ty, code))
    }
}

/// The packet for either family (`Err`: the line's names are not that family's).
pub fn build(i: &IcmpLine, local: SocketAddr, remote: SocketAddr, live_seq: u32) -> Result<Vec<u8>, String> {
    match (local, remote) {
        (SocketAddr::V4(l), SocketAddr::V4(r)) => Ok(build_v4(i, i.v4()?, l, r, live_seq)),
        (SocketAddr::V6(l), SocketAddr::V6(r)) => {
            let (ty, code) = i.v6()?;
            Ok(build_v6(i, (ty, code), (*l.ip(), l.port()), (*r.ip(), r.port()), live_seq))
        }
        _ => Err("an ICMP line for a mixed-family connection".into()),
    }
}

/// The IPv6 packet (RFC 4443 §2.1, §2.3): an ICMPv6 error from `remote` to `local` quoting
/// the IPv6 header and the first 8 TCP bytes of a segment `local → remote`.
fn build_v6(
    i: &IcmpLine,
    (ty, code): (u8, u8),
    local: (Ipv6Addr, u16),
    remote: (Ipv6Addr, u16),
    seq: u32,
) -> Vec<u8> {
    let mut quoted = [0u8; 48];
    quoted[0] = 0x60;
    let plen = 20u32.saturating_add(i.len).min(65535) as u16;
    quoted[4..6].copy_from_slice(&plen.to_be_bytes());
    quoted[6] = 6;
    quoted[7] = 64;
    quoted[8..24].copy_from_slice(&local.0.octets());
    quoted[24..40].copy_from_slice(&remote.0.octets());
    quoted[40..42].copy_from_slice(&local.1.to_be_bytes());
    quoted[42..44].copy_from_slice(&remote.1.to_be_bytes());
    quoted[44..48].copy_from_slice(&seq.to_be_bytes());
    let mut icmp = vec![ty, code, 0, 0, 0, 0, 0, 0];
    icmp[4..8].copy_from_slice(&u32::from(i.mtu.unwrap_or(0)).to_be_bytes());
    icmp.extend_from_slice(&quoted);
    // RFC 8200 §8.1 pseudo-header: source, destination, upper-layer length, next header 58.
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&remote.0.octets());
    pseudo.extend_from_slice(&local.0.octets());
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    let s = checksum_fold(checksum_add(checksum_add(0, &pseudo), &icmp));
    icmp[2..4].copy_from_slice(&s.to_be_bytes());
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(icmp.len() as u16).to_be_bytes());
    p[6] = 58;
    p[7] = 64;
    p[8..24].copy_from_slice(&remote.0.octets());
    p[24..40].copy_from_slice(&local.0.octets());
    p.extend_from_slice(&icmp);
    p
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
fn build_v4(
    i: &IcmpLine,
    (ty, code): (u8, u8),
    local: SocketAddrV4,
    remote: SocketAddrV4,
    live_seq: u32,
) -> Vec<u8> {
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
    let mut icmp = vec![ty, code, 0, 0, 0, 0, 0, 0];
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
        assert_eq!((l.v4(), l.mtu, l.seq, l.len), (Ok((3, 4)), Some(1234), 0, 0));
        let l = parse("time_exceeded ttl_exceeded_in_transit [4294967295:4294967295(0)]").unwrap();
        assert_eq!((l.v4(), l.seq), (Ok((11, 0)), u32::MAX));
        assert_eq!(parse("unreachable packet_filtered [1:1(0)]").unwrap().v4(), Ok((3, 13)));
        assert_eq!(parse("parameter_problem code_2 [0:0(0)]").unwrap().v4(), Ok((12, 2)));
        assert_eq!(parse("source_quench [0:0(0)]").unwrap().v4(), Ok((4, 0)));
        // ICMPv6 names (RFC 4443).
        let l = parse("packet_too_big mtu 1300 [0:0(0)]").unwrap();
        assert_eq!((l.v6(), l.mtu), (Ok((2, 0)), Some(1300)));
        assert!(l.v4().is_err());
        assert_eq!(parse("unreachable port_unreachable [0:0(0)]").unwrap().v6(), Ok((1, 4)));
        assert_eq!(parse("unreachable admin_prohibited [0:0(0)]").unwrap().v6(), Ok((1, 1)));
        assert_eq!(parse("time_exceeded exceeded_hop_limit [0:0(0)]").unwrap().v6(), Ok((3, 0)));
        assert_eq!(parse("parameter_problem unknown_next_header [0:0(0)]").unwrap().v6(), Ok((4, 1)));
        assert!(parse("unreachable bogus [0:0(0)]").is_err());
        assert!(parse("unreachable port_unreachable [0:5(4)]").is_err());
        assert!(parse("unreachable port_unreachable").is_err());
    }

    #[test]
    fn built_packet_has_valid_checksums() {
        let l = parse("unreachable port_unreachable [0:0(0)]").unwrap();
        let local = SocketAddr::from(([192, 168, 0, 1], 8080));
        let remote = SocketAddr::from(([192, 0, 2, 1], 1234));
        let p = build(&l, local, remote, 77).unwrap();
        assert_eq!(checksum_fold(checksum_add(0, &p[..20])), 0);
        assert_eq!(checksum_fold(checksum_add(0, &p[20..])), 0);
        assert_eq!(&p[20 + 8 + 24..20 + 8 + 28], &77u32.to_be_bytes());
    }

    /// The ICMPv6 packet verifies with the RFC 8200 §8.1 pseudo-header, in the engine's
    /// own parser, and quotes SEG.SEQ where RFC 4443 §2.4 puts the invoking packet.
    #[test]
    fn built_icmpv6_packet_verifies() {
        let l = parse("unreachable port_unreachable [0:0(0)]").unwrap();
        let local: SocketAddr = "[fd3d:fa7b:d17d::1]:8080".parse().unwrap();
        let remote: SocketAddr = "[2001:db8::1]:1234".parse().unwrap();
        let p = build(&l, local, remote, 77).unwrap();
        let (SocketAddr::V6(l6), SocketAddr::V6(r6)) = (local, remote) else { unreachable!() };
        let ip = utcp::engine::wire::ipv6::parse(&p).unwrap();
        match utcp::engine::icmp6::parse(r6.ip(), l6.ip(), ip.payload).unwrap() {
            utcp::engine::icmp6::Icmp6::Error(e) => {
                assert_eq!((e.kind, e.code), (1, 4));
                assert_eq!(&e.quoted[44..48], &77u32.to_be_bytes());
            }
            other => panic!("not an error: {other:?}"),
        }
        let v4_only = parse("unreachable frag_needed mtu 1234 [0:0(0)]").unwrap();
        assert!(build(&v4_only, local, remote, 77).is_err());
    }
}
