//! From IP packets to what a time-sequence graph draws: TCP headers (parsed without
//! checksum checks, since captures of offloading senders carry partial checksums),
//! connections and their busiest one, and one direction's series.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use utcp::wire::TcpOptions;

/// One TCP segment as seen on the wire, at `t` seconds.
#[derive(Clone, Debug)]
pub struct Packet {
    pub t: f64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub win: u16,
    pub len: u32,
    pub opts: TcpOptions,
}

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

impl Packet {
    /// Sequence space the segment occupies (RFC 9293 §3.4: SYN and FIN count).
    pub fn seg_len(&self) -> u32 {
        self.len + (self.flags & SYN != 0) as u32 + (self.flags & FIN != 0) as u32
    }
}

/// Parse an IPv4 or IPv6 packet carrying TCP. Checksums are not verified. The payload
/// length comes from the IP header, so a capture cut short by its snap length still
/// counts every byte.
pub fn parse_tcp(t: f64, ip: &[u8]) -> Option<Packet> {
    let (src, dst, tcp, tcp_len) = match ip.first()? >> 4 {
        4 => {
            let ihl = (ip[0] & 0x0f) as usize * 4;
            if ihl > ip.len() {
                return None;
            }
            let total = u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]) as usize;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff;
            if *ip.get(9)? != 6 || ihl < 20 || frag != 0 {
                return None;
            }
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            // A capture may pad (Ethernet minimum) or truncate (snap length).
            let end = total.clamp(ihl, ip.len());
            let tcp_len = total.saturating_sub(ihl);
            (IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(d)), ip.get(ihl..end)?, tcp_len)
        }
        6 => {
            if *ip.get(6)? != 6 {
                return None; // extension headers are not followed
            }
            let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let end = (40 + plen).min(ip.len());
            (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)), ip.get(40..end)?, plen)
        }
        _ => return None,
    };
    let off = (*tcp.get(12)? >> 4) as usize * 4;
    if off < 20 || off > tcp.len() || off > tcp_len {
        return None;
    }
    let be32 = |i: usize| u32::from_be_bytes([tcp[i], tcp[i + 1], tcp[i + 2], tcp[i + 3]]);
    Some(Packet {
        t,
        src: SocketAddr::new(src, u16::from_be_bytes([tcp[0], tcp[1]])),
        dst: SocketAddr::new(dst, u16::from_be_bytes([tcp[2], tcp[3]])),
        seq: be32(4),
        ack: be32(8),
        flags: tcp[13],
        win: u16::from_be_bytes([tcp[14], tcp[15]]),
        len: (tcp_len - off) as u32,
        opts: utcp::wire::options::parse(&tcp[20..off]).unwrap_or_default(),
    })
}

/// One direction of one connection: data flows `src` → `dst`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Flow {
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl std::fmt::Display for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.src, self.dst)
    }
}

impl std::str::FromStr for Flow {
    type Err = String;
    /// `SRC:PORT-DST:PORT` (IPv6 in brackets).
    fn from_str(s: &str) -> Result<Flow, String> {
        let bad = || format!("{s:?}: expected SRC:PORT-DST:PORT");
        // No IP address (v4, or v6 in brackets) contains '-'.
        let i = s.find('-').ok_or_else(bad)?;
        let src = s[..i].parse().map_err(|_| bad())?;
        let dst = s[i + 1..].parse().map_err(|_| bad())?;
        Ok(Flow { src, dst })
    }
}

/// The direction that carried the most payload among all connections.
pub fn busiest(packets: &[Packet]) -> Option<Flow> {
    let mut bytes: HashMap<Flow, u64> = HashMap::new();
    for p in packets {
        *bytes.entry(Flow { src: p.src, dst: p.dst }).or_default() += p.len as u64 + 1;
    }
    bytes.into_iter().max_by_key(|&(f, b)| (b, f.src.port(), f.dst.port())).map(|(f, _)| f)
}

/// Relative sequence numbers over a long transfer: unwraps 32-bit values near the last one.
#[derive(Clone, Copy, Debug)]
pub struct Unwrap {
    base: u32,
    last: i64,
}

impl Unwrap {
    pub fn new(base: u32) -> Unwrap {
        Unwrap { base, last: 0 }
    }

    pub fn rel(&mut self, v: u32) -> i64 {
        let d = v.wrapping_sub(self.base.wrapping_add(self.last as u32)) as i32 as i64;
        let r = self.last + d;
        if d > 0 {
            self.last = r;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arbitrary bytes never panic the parser (captures hold anything).
    #[test]
    fn arbitrary_bytes_do_not_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut buf = [0u8; 120];
        for round in 0..20_000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            // Make many of them look like IPv4/IPv6 carrying TCP so the deeper paths run.
            buf[0] = [0x45, 0x4f, 0x60, buf[0]][round % 4];
            buf[9] = 6;
            buf[6] = if round % 4 == 2 { 6 } else { buf[6] & 0x20 };
            let _ = parse_tcp(0.0, &buf[..round % buf.len()]);
        }
    }

    /// A snap length of 128 cuts the payload, not the segment's length (a bug: the
    /// kernel capture's last segment and FIN were drawn 1400 bytes short).
    #[test]
    fn snapped_capture_keeps_the_ip_payload_length() {
        let mut p = vec![0u8; 128];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&1500u16.to_be_bytes());
        p[9] = 6;
        p[32] = 0x50; // data offset 20
        p[33] = 0x11; // FIN, ACK
        let s = parse_tcp(0.0, &p).unwrap();
        assert_eq!(s.len, 1460);
        assert_eq!(s.seg_len(), 1461);
    }

    #[test]
    fn flows_parse_both_families() {
        let f: Flow = "10.0.0.1:5-10.0.0.2:80".parse().unwrap();
        assert_eq!((f.src.port(), f.dst.port()), (5, 80));
        let g: Flow = "[fd00::1]:5-[fd00::2]:80".parse().unwrap();
        assert!(g.src.is_ipv6() && g.dst.port() == 80);
        assert!("nonsense".parse::<Flow>().is_err());
    }

    #[test]
    fn sequence_numbers_unwrap_across_2_pow_32() {
        let mut u = Unwrap::new(u32::MAX - 10);
        assert_eq!(u.rel(u32::MAX - 10), 0);
        assert_eq!(u.rel(5), 16);
        assert_eq!(u.rel(1_000_000), 1_000_011);
        assert_eq!(u.rel(0), 11, "an older value stays below");
    }
}
