//! The Stack's half of ICMP echo (issue 13; crate::icmp): which echo requests are ours to
//! answer (RFC 1122 §3.2.2.6) and which are dropped, by reason.

use super::Stack;
use crate::icmp;
use crate::time::Instant;
use std::net::IpAddr;

impl Stack {
    /// An IPv4 packet with protocol 1 (ICMP): queue an echo reply if it is an echo
    /// request to one of our addresses from a source that may get one; drop and count
    /// anything else.
    pub(super) fn handle_icmp(&mut self, now: Instant, packet: &[u8]) {
        // ICMP errors for TCP (issue 13): icmp_demux.rs.
        if crate::icmp_error::is_error_type(packet) {
            return self.handle_icmp_error(now, packet);
        }
        let req = match icmp::parse_echo_request(packet) {
            Ok(r) => r,
            Err(reason) => return self.counters.drop(reason),
        };
        let (src, dst) = (IpAddr::V4(req.src), IpAddr::V4(req.dst));
        // RFC 1122 §3.2.2.6: requests to our addresses only (all, when none is claimed,
        // plus those an any-IP listener terminates).
        if !self.accepts_dst(dst) {
            return self.counters.drop(crate::wire::DropReason::NotOurAddress);
        }
        // Martians get no reply: broadcast/multicast/unspecified/loopback addresses
        // (RFC 1122 §3.2.2.6 "MAY be silently discarded" for broadcast; §3.2.1.3), our
        // own address as source, subnet broadcasts (RFC 1812 §5.3.7).
        if let Some(reason) = crate::wire::packet::martian_reason(req.src, req.dst) {
            return self.counters.drop(reason);
        }
        let prefix = self.config.local_prefix_len;
        if let Some(reason) = crate::martian::local_martian(src, dst, &self.local_addrs, prefix) {
            return self.counters.drop(reason);
        }
        if packet.len().min(usize::from(u16::from_be_bytes([packet[2], packet[3]])))
            > icmp::max_request_len(self.config.mtu, self.min_transmit_buffer())
        {
            return self.counters.drop(crate::wire::DropReason::IcmpTooLarge);
        }
        self.counters.icmp_in_echos += 1;
        match self.echo.queue_reply(now, self.config.icmp_echo_per_sec, &req) {
            Ok(()) => {}
            Err(reason) => {
                if reason == crate::wire::DropReason::IcmpRateLimited {
                    self.counters.icmp_rate_limited += 1;
                }
                self.counters.drop(reason);
            }
        }
    }
}
