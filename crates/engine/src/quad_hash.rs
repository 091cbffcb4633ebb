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
//!
//! The listener map (`Stack::listen_map`, looked up once or twice per SYN) uses the same
//! words for one address ([`ListenAddr`]) and an unkeyed hasher ([`ListenHasher`]):
//! callgrind of `examples/synflood_mem.rs` puts `Stack::find_bound_listener` at 71
//! instructions per SYN with it, 86 with the derived `SocketAddr` hash (docs/synflood.md).

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
                h.write_u128(addr_bits(l));
                h.write_u128(addr_bits(r));
                h.write_u64((ports as u64) << 2 | (l.is_ipv6() as u64) << 1 | r.is_ipv6() as u64);
            }
        }
    }
}

/// An address as one 128-bit word, IPv4 mapped into IPv6.
#[inline]
fn addr_bits(a: SocketAddr) -> u128 {
    match a {
        SocketAddr::V4(a) => a.ip().to_ipv6_mapped().to_bits(),
        SocketAddr::V6(a) => a.ip().to_bits(),
    }
}

/// The key of the listener map: a local socket address, hashed by whole words as [`Quad`]
/// is (IPv4: address and port in one `u64`; IPv6: the address word, then the port with
/// a family tag). `Eq` is `SocketAddr`'s.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ListenAddr(pub(crate) SocketAddr);

impl Hash for ListenAddr {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self.0 {
            SocketAddr::V4(a) => h.write_u64((u32::from(*a.ip()) as u64) << 16 | a.port() as u64),
            a => {
                h.write_u128(addr_bits(a));
                h.write_u32(1 << 16 | a.port() as u32);
            }
        }
    }
}

/// The listener map's hasher: foldhash with its fixed seed, not keyed by the stack's
/// secret. That is safe here, unlike for the connection table: the keys are the addresses
/// the local application listens on (`Stack::listen`), never chosen by a peer. A peer
/// only looks a destination up, which walks at most the one chain the application's
/// few keys built; it cannot add keys, so it cannot grow a chain (no hash flooding).
pub(crate) type ListenHasher = foldhash::fast::FixedState;

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
    fn listen_addr_hash_moves_with_every_field_and_follows_eq() {
        let hl = |a: SocketAddr| ListenHasher::default().hash_one(ListenAddr(a));
        let v4 = |o: u8, p: u16| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, o)), p);
        let base = hl(v4(1, 80));
        for other in [v4(2, 80), v4(1, 81), v4(0, 80)] {
            assert_ne!(hl(other), base, "{other:?}");
        }
        let mapped = SocketAddr::new(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()), 80);
        assert_ne!(hl(mapped), base);
        let v6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 80, 0, 0));
        assert_ne!(hl(v6), hl(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 81, 0, 0))));
        // Unkeyed: every stack hashes a key alike.
        assert_eq!(hl(v6), ListenHasher::default().hash_one(ListenAddr(v6)));
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
