//! The Stack's half of IPv6's non-TCP traffic (issue 13; crate::icmp6): ICMPv6 echo
//! requests for our addresses get a reply, ICMPv6 errors go to the error hook, anything
//! else is dropped and counted.

use super::Stack;
use crate::icmp6::{self, Icmp6, Icmp6Error};
use crate::time::Instant;
use crate::wire::DropReason;
use crate::wire::ipv6::{self, NH_ICMPV6};
use std::net::IpAddr;

impl Stack {
    /// An IPv6 packet `parse_ip_tcp` refused as `NotTcp`.
    pub(super) fn handle_ipv6_not_tcp(&mut self, now: Instant, packet: &[u8]) {
        let ip = match ipv6::parse(packet) {
            Ok(ip) if ip.next_header == NH_ICMPV6 && ip.fragment.is_none() => ip,
            Ok(_) => return self.counters.drop(DropReason::NotTcp),
            Err(reason) => return self.counters.drop(reason),
        };
        let (src, dst) = (IpAddr::V6(ip.src), IpAddr::V6(ip.dst));
        // RFC 4443 §4.2: replies only for our (unicast) addresses.
        if !self.accepts_dst(dst) {
            return self.counters.drop(DropReason::NotOurAddress);
        }
        // Martians get nothing: multicast/unspecified/loopback, our address as source.
        if let Some(reason) = ipv6::martian_reason(&ip.src, &ip.dst) {
            return self.counters.drop(reason);
        }
        let prefix = self.config.local_prefix_len;
        if let Some(reason) = crate::martian::local_martian(src, dst, &self.local_addrs, prefix) {
            return self.counters.drop(reason);
        }
        match icmp6::parse(&ip.src, &ip.dst, ip.payload) {
            Err(reason) => self.counters.drop(reason),
            Ok(Icmp6::Error(e)) => self.handle_icmp6_error(now, ip.dst, &e),
            Ok(Icmp6::EchoRequest(msg)) => {
                // The reply is as large as the request's IPv6 packet: bounded by the MTU
                // and the transmit buffer, as for IPv4 (crate::icmp::max_request_len).
                let len = ipv6::IPV6_HEADER_LEN + msg.len();
                if len > crate::icmp::max_request_len(self.config.mtu, self.min_transmit_buffer()) {
                    return self.counters.drop(DropReason::IcmpTooLarge);
                }
                self.counters.icmp_in_echos += 1;
                let per_sec = self.config.icmp_echo_per_sec;
                if let Err(reason) = self.echo6.queue_reply(now, per_sec, ip.src, ip.dst, msg) {
                    if reason == DropReason::IcmpRateLimited {
                        self.counters.icmp_rate_limited += 1;
                    }
                    self.counters.drop(reason);
                }
            }
        }
    }

    /// ICMPv6 errors (RFC 4443 §3: destination unreachable, packet too big, time
    /// exceeded, parameter problem) for our address `dst`: parsed into the family-agnostic
    /// `IcmpError` (`icmp_error::from_v6`) and handed to the IPv4 handler
    /// (`Stack::deliver_icmp_error`: RFC 5927 validation of the quoted SEG.SEQ, soft/hard
    /// errors, RFC 8201 PMTUD from a packet too big).
    pub(super) fn handle_icmp6_error(&mut self, now: Instant, dst: std::net::Ipv6Addr, e: &Icmp6Error<'_>) {
        match crate::icmp_error::from_v6(e.kind, e.code, e.param, e.quoted, dst) {
            Ok(err) => self.deliver_icmp_error(now, &err),
            Err(reason) => self.counters.drop(reason),
        }
    }
}
