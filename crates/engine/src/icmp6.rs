//! ICMPv6 (RFC 4443) for IPv6 (issue 13): the echo server, and the classification of the
//! error messages for a later handler.
//!
//! - Echo request (type 128) to one of our addresses gets an echo reply (type 129) with
//!   the same identifier, sequence number and data (RFC 4443 §4.2: "Every node MUST
//!   implement an ICMPv6 Echo responder function"), bounded exactly like the IPv4 echo
//!   server (`crate::icmp`): at most the MTU, at most [`crate::icmp::ECHO_QUEUE_CAP`]
//!   queued, and the same token bucket rate `Config::icmp_echo_per_sec`.
//! - Errors (destination unreachable 1, packet too big 2, time exceeded 3, parameter
//!   problem 4) are parsed into an [`Icmp6Error`] quoting the offending packet, and handed
//!   to `Stack::handle_icmp6_error` (in `crates/engine/src/icmp6_stack.rs`): the hook
//!   where the IPv4 ICMP error handler (RFC 5927 validation, PMTUD) plugs in for IPv6.
//! - Anything else (neighbour discovery, which a TUN has no use for, replies, ...) is
//!   dropped and counted as `IcmpNotEcho`.
use crate::icmp::Bucket;
use crate::time::Instant;
use crate::wire::DropReason;
use crate::wire::ipv6::{self, Ipv6Out, NH_ICMPV6};
use std::collections::VecDeque;
use std::net::Ipv6Addr;

/// ICMPv6 type of an echo request (RFC 4443 §4.1).
pub const ECHO_REQUEST: u8 = 128;
/// ICMPv6 type of an echo reply (RFC 4443 §4.2).
pub const ECHO_REPLY: u8 = 129;
/// Hop limit of the replies we send (Linux's default hop_limit).
pub const REPLY_HOP_LIMIT: u8 = 64;

/// An ICMPv6 error message (RFC 4443 §3), with the invoking packet it quotes.
#[derive(Clone, Copy, Debug)]
pub struct Icmp6Error<'a> {
    /// Type: 1 destination unreachable, 2 packet too big, 3 time exceeded, 4 parameter
    /// problem.
    pub kind: u8,
    /// Code.
    pub code: u8,
    /// The 32-bit field after the checksum: the MTU for packet too big (RFC 4443 §3.2),
    /// the pointer for parameter problem (§3.4), unused otherwise.
    pub param: u32,
    /// "As much of invoking packet as possible": the quoted IPv6 header and what follows,
    /// whose TCP header identifies the connection.
    pub quoted: &'a [u8],
}

/// A verified ICMPv6 message of a packet for us.
#[derive(Debug)]
pub enum Icmp6<'a> {
    /// An echo request: the message as received (type, code, checksum, id, seq, data).
    EchoRequest(&'a [u8]),
    /// An error message.
    Error(Icmp6Error<'a>),
}

/// Verify an ICMPv6 message (`msg`, the upper-layer bytes of a packet from `src` to
/// `dst`) and classify it: `Truncated`, `IcmpBadChecksum` (RFC 4443 §2.3, over the RFC
/// 8200 §8.1 pseudo-header), `IcmpNotEcho` for what we do not handle.
pub fn parse<'a>(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &'a [u8]) -> Result<Icmp6<'a>, DropReason> {
    if msg.len() < 8 {
        return Err(DropReason::Truncated);
    }
    if !ipv6::verify_upper(src, dst, NH_ICMPV6, msg) {
        return Err(DropReason::IcmpBadChecksum);
    }
    match msg[0] {
        ECHO_REQUEST => Ok(Icmp6::EchoRequest(msg)),
        kind @ 1..=4 => Ok(Icmp6::Error(Icmp6Error {
            kind,
            code: msg[1],
            param: u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]),
            quoted: &msg[8..],
        })),
        _ => Err(DropReason::IcmpNotEcho),
    }
}

#[derive(Debug)]
struct QueuedReply {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    icmp: Vec<u8>,
}

/// The ICMPv6 echo server of a `Stack`: the reply queue and its rate limit.
#[derive(Debug, Default)]
pub struct Echo6Server {
    queue: VecDeque<QueuedReply>,
    bucket: Bucket,
}

impl Echo6Server {
    /// Queue the reply to the echo request `msg` from `src` to `dst`, or say why not:
    /// `IcmpQueueFull`, `IcmpRateLimited`.
    pub fn queue_reply(
        &mut self,
        now: Instant,
        per_sec: u32,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        msg: &[u8],
    ) -> Result<(), DropReason> {
        if self.queue.len() >= crate::icmp::ECHO_QUEUE_CAP {
            return Err(DropReason::IcmpQueueFull);
        }
        if per_sec == 0 || !self.bucket.take(now, per_sec) {
            return Err(DropReason::IcmpRateLimited);
        }
        // RFC 4443 §4.2: type 129, same identifier, sequence number and data; the source
        // is the request's (unicast) destination.
        let mut icmp = msg.to_vec();
        icmp[0] = ECHO_REPLY;
        icmp[2] = 0;
        icmp[3] = 0;
        let c = crate::wire::checksum::finish(crate::wire::checksum::sum(
            &icmp,
            ipv6::pseudo_header(&dst, &src, NH_ICMPV6, icmp.len() as u32),
        ));
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        self.queue.push_back(QueuedReply { src: dst, dst: src, icmp });
        Ok(())
    }

    /// Replies waiting for `poll_transmit`.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Write the next reply (a 40-byte IPv6 header, then the ICMPv6 message) into `buf`.
    /// `None` when none is queued; a reply that does not fit `buf` is dropped.
    pub fn emit(&mut self, buf: &mut [u8]) -> Option<usize> {
        let r = self.queue.pop_front()?;
        let total = ipv6::IPV6_HEADER_LEN + r.icmp.len();
        let ip = Ipv6Out {
            src: r.src,
            dst: r.dst,
            next_header: NH_ICMPV6,
            hop_limit: REPLY_HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
        };
        if total > buf.len() || !ip.emit(buf, r.icmp.len()) {
            return None;
        }
        buf[ipv6::IPV6_HEADER_LEN..total].copy_from_slice(&r.icmp);
        Some(total)
    }
}
