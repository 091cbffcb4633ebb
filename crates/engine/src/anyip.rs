//! Any-IP termination (tun2socks, transparent proxies): one listener that takes SYNs for
//! any destination address and port, optionally limited to some prefixes and ports. The
//! accepted connection's local address is the original destination, so the application
//! learns where the peer meant to connect.
//!
//! Segments that match no connection still follow RFC 9293 §3.10.7.1 (a RST), whatever
//! their destination; only segments outside the filter, for no connection of ours, are
//! dropped as `NotOurAddress` (they were not meant for this host).

use std::net::{IpAddr, SocketAddr};

/// Which destinations an any-IP listener terminates. Empty lists mean "all".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnyIpFilter {
    /// Destination prefixes `(network, length)`; a destination matches if it is in one.
    pub prefixes: Vec<(IpAddr, u8)>,
    /// Destination port ranges, inclusive.
    pub ports: Vec<(u16, u16)>,
}

impl AnyIpFilter {
    /// Every destination address and port.
    pub fn all() -> AnyIpFilter {
        AnyIpFilter::default()
    }

    /// Add a destination prefix, e.g. `("10.99.0.0".parse()?, 24)`.
    pub fn prefix(mut self, net: IpAddr, len: u8) -> AnyIpFilter {
        self.prefixes.push((net, len));
        self
    }

    /// Add a destination port range (inclusive).
    pub fn ports(mut self, lo: u16, hi: u16) -> AnyIpFilter {
        self.ports.push((lo, hi));
        self
    }

    /// `ip` is inside one of the prefixes (or there are none).
    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|&(net, len)| in_prefix(ip, net, len))
    }

    /// `dst` is inside the prefixes and the port ranges.
    pub fn matches(&self, dst: SocketAddr) -> bool {
        self.matches_ip(dst.ip())
            && (self.ports.is_empty() || self.ports.iter().any(|&(lo, hi)| (lo..=hi).contains(&dst.port())))
    }
}

/// `ip` lies in `net/len` (same family only).
pub fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_ports() {
        let f = AnyIpFilter::all().prefix("10.99.0.0".parse().unwrap(), 24).ports(80, 90);
        assert!(f.matches("10.99.0.1:80".parse().unwrap()));
        assert!(f.matches("10.99.0.255:90".parse().unwrap()));
        assert!(!f.matches("10.99.1.1:80".parse().unwrap()));
        assert!(!f.matches("10.99.0.1:91".parse().unwrap()));
        assert!(!f.matches("[::1]:80".parse().unwrap()));
        assert!(AnyIpFilter::all().matches("192.0.2.1:1".parse().unwrap()));
        assert!(in_prefix("1.2.3.4".parse().unwrap(), "0.0.0.0".parse().unwrap(), 0));
        assert!(in_prefix("2001:db8::1".parse().unwrap(), "2001:db8::".parse().unwrap(), 32));
    }
}
