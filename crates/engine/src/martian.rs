//! Martians that only a host knowing its own addresses can see (RFC 1122 §3.2.1.3,
//! RFC 1812 §5.3.7). The address checks that need no state (broadcast, multicast,
//! unspecified, loopback, class E) are made by the parser (`crates/engine/src/wire/packet.rs`).

use crate::wire::DropReason;
use std::net::{IpAddr, Ipv4Addr};

/// Why a packet from `src` to `dst` must be dropped, given our addresses and, if known,
/// their IPv4 prefix length.
///
/// - LAND: "our own address as the source" (RFC 1122 §3.2.1.3 (a)/(g), RFC 1812 §5.3.7):
///   such a SYN would make us answer ourselves, and a forwarding host loops the answers.
/// - Subnet-directed broadcast as source or destination (RFC 1122 §3.2.1.3 (d)/(e),
///   RFC 1812 §5.3.7: "MUST NOT ... a source address of ... a subnet broadcast").
pub fn local_martian(
    src: IpAddr,
    dst: IpAddr,
    local_addrs: &[IpAddr],
    prefix_len: Option<u8>,
) -> Option<DropReason> {
    if src == dst || local_addrs.contains(&src) {
        return Some(DropReason::Land);
    }
    let (Some(len), IpAddr::V4(s), IpAddr::V4(d)) = (prefix_len, src, dst) else {
        return None;
    };
    let directed = |a: Ipv4Addr| {
        local_addrs.iter().any(|l| matches!(l, IpAddr::V4(l) if is_subnet_broadcast(a, *l, len)))
    };
    (directed(s) || directed(d)).then_some(DropReason::MartianSubnetBroadcast)
}

/// `a` is the all-ones host part of `local`'s subnet of `len` bits (prefixes of /31 and
/// /32 have no broadcast address, RFC 3021).
pub fn is_subnet_broadcast(a: Ipv4Addr, local: Ipv4Addr, len: u8) -> bool {
    if len >= 31 {
        return false;
    }
    let host_mask = u32::MAX >> len;
    let (a, l) = (u32::from(a), u32::from(local));
    a & !host_mask == l & !host_mask && a & host_mask == host_mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn land_and_subnet_broadcast() {
        let ours = [v4(10, 0, 0, 1)];
        assert_eq!(local_martian(v4(10, 0, 0, 1), v4(10, 0, 0, 1), &ours, None), Some(DropReason::Land));
        assert_eq!(local_martian(v4(10, 0, 0, 1), v4(10, 0, 0, 9), &[], None), None);
        assert_eq!(local_martian(v4(10, 0, 0, 7), v4(10, 0, 0, 7), &[], None), Some(DropReason::Land));
        let bcast = Some(DropReason::MartianSubnetBroadcast);
        assert_eq!(local_martian(v4(10, 0, 0, 255), v4(10, 0, 0, 1), &ours, Some(24)), bcast);
        assert_eq!(local_martian(v4(10, 0, 0, 2), v4(10, 0, 0, 255), &ours, Some(24)), bcast);
        assert_eq!(local_martian(v4(10, 0, 0, 255), v4(10, 0, 0, 1), &ours, Some(16)), None);
        assert_eq!(local_martian(v4(10, 0, 255, 255), v4(10, 0, 0, 1), &ours, Some(16)), bcast);
        assert_eq!(local_martian(v4(10, 0, 0, 255), v4(10, 0, 0, 1), &ours, None), None);
        assert!(!is_subnet_broadcast(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 0), 31));
    }
}
