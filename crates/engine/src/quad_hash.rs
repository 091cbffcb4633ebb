//! How a [`Quad`] feeds a hasher (SYN flood, issue 9: the per-SYN path).
//!
//! The derived `Hash` walked both `SocketAddr`s field by field: an enum tag, the address
//! as a length-prefixed byte slice, the port, for each side, about a dozen small writes
//! and ~45 instructions per `SocketAddr` with the stack's seeded foldhash (callgrind of
//! `examples/synflood_mem.rs`: 134 instructions per spoofed SYN for the Quad lookups).
//! This one feeds whole words: for an IPv4 pair, one `u64` (both addresses) and one `u32`
//! (both ports). The hasher stays the stack's keyed one (`stack::QuadHasherBuilder`), so
//! an attacker still cannot aim colliding 4-tuples at the table.
//!
//! `Hash` must agree with the derived `Eq`: equal quads feed equal words. IPv6's flow
//! info and scope id take part in `Eq` but not here, which only makes more quads share a
//! hash, never splits equal ones.

use crate::Quad;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

impl Hash for Quad {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        let ports = (self.local.port() as u32) << 16 | self.remote.port() as u32;
        match (self.local, self.remote) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => {
                h.write_u64((u32::from(*l.ip()) as u64) << 32 | u32::from(*r.ip()) as u64);
                h.write_u32(ports);
            }
            (l, r) => {
                // IPv6 (or a mixed pair, which no table holds): the addresses as 128-bit
                // words, IPv4 ones mapped, and a tag telling the families apart.
                let bits = |a: SocketAddr| match a {
                    SocketAddr::V4(a) => a.ip().to_ipv6_mapped().to_bits(),
                    SocketAddr::V6(a) => a.ip().to_bits(),
                };
                h.write_u128(bits(l));
                h.write_u128(bits(r));
                h.write_u64((ports as u64) << 2 | (l.is_ipv6() as u64) << 1 | r.is_ipv6() as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};

    fn h(q: &Quad) -> u64 {
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(q)
    }

    fn quad(l: IpAddr, lp: u16, r: IpAddr, rp: u16) -> Quad {
        Quad { local: SocketAddr::new(l, lp), remote: SocketAddr::new(r, rp) }
    }

    #[test]
    fn every_field_moves_the_hash() {
        let (a, b) = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(10, 99, 1, 2)));
        let q = quad(a, 80, b, 4000);
        let base = h(&q);
        for other in [quad(b, 80, b, 4000), quad(a, 81, b, 4000), quad(a, 80, a, 4000), quad(a, 80, b, 4001)]
        {
            assert_ne!(h(&other), base, "{other:?}");
        }
        // Sides are not interchangeable.
        assert_ne!(h(&quad(b, 4000, a, 80)), base);
    }

    #[test]
    fn families_and_v6_fields_hash_consistently_with_eq() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        let peer = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
        assert_ne!(h(&quad(v4, 80, peer, 1)), h(&quad(mapped, 80, peer, 1)));
        let mut a = quad(peer, 80, peer, 1);
        let b = a;
        if let SocketAddr::V6(ref mut s) = a.local {
            *s = SocketAddrV6::new(*s.ip(), s.port(), 0, 0);
        }
        assert_eq!(a, b);
        assert_eq!(h(&a), h(&b));
    }
}
