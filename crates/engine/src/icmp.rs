//! ICMPv4 echo (issue 13): answer pings to the stack's own addresses (RFC 792 "Echo or
//! Echo Reply Message"; RFC 1122 §3.2.2.6: "Every host MUST implement an ICMP Echo server
//! function"). Errors go to crate::icmp_error; other messages are dropped and counted
//! (`DropReason::IcmpNotEcho`).
//!
//! Bounded by construction:
//! - the request (hence the reply) is at most [`max_request_len`] bytes; a larger one,
//!   which would need reassembly or a larger transmit buffer, is dropped (`IcmpTooLarge`);
//! - the reply is never larger than the request (no IP options are echoed), so no
//!   amplification;
//! - at most [`ECHO_QUEUE_CAP`] replies wait between two `poll_transmit` drains
//!   (`IcmpQueueFull`);
//! - a token bucket of `Config::icmp_echo_per_sec` (Linux's icmp_msgs_per_sec) refilled on
//!   virtual time limits the reply rate (`IcmpRateLimited`, `Counters::icmp_rate_limited`).

use crate::time::Instant;
use crate::wire::DropReason;
use crate::wire::checksum;
use std::collections::VecDeque;
use std::net::Ipv4Addr;

/// IPv4 protocol number of ICMP (RFC 792).
pub const PROTO_ICMP: u8 = 1;
/// ICMP type of an echo request (RFC 792).
pub const ECHO_REQUEST: u8 = 8;
/// ICMP type of an echo reply (RFC 792).
pub const ECHO_REPLY: u8 = 0;
/// Echo replies queued between two `poll_transmit` drains at most.
pub const ECHO_QUEUE_CAP: usize = 64;
/// TTL of the replies we send (Linux's default ip_default_ttl).
pub const REPLY_TTL: u8 = 64;

/// The largest echo request (IPv4 total length) answered: the link MTU, and never more
/// than `min_transmit` (the buffer size `poll_transmit` is guaranteed), so every queued
/// reply fits the caller's buffer.
#[must_use]
pub fn max_request_len(mtu: usize, min_transmit: usize) -> usize {
    mtu.min(min_transmit).min(u16::MAX as usize)
}

/// A verified echo request: addresses, TOS, and the ICMP message (type 8, code, checksum,
/// identifier, sequence number, data) as received.
#[derive(Debug)]
pub struct EchoRequest<'a> {
    /// Source of the request: the destination of the reply.
    pub src: Ipv4Addr,
    /// The address the request was sent to: the source of the reply (RFC 1122 §3.2.2.6).
    pub dst: Ipv4Addr,
    /// Type of service, copied to the reply (RFC 1122 §3.2.2.6 is silent; Linux copies it).
    pub tos: u8,
    /// The ICMP message, header included.
    pub icmp: &'a [u8],
}

/// Parse an IPv4 packet carrying ICMP and keep it if it is an echo request with a good
/// checksum. The IPv4 header checks (version, IHL, total length, header checksum, no
/// fragment) are `wire::parse_ipv4_tcp`'s and are repeated here so this function stands
/// alone and never panics.
pub fn parse_echo_request(packet: &[u8]) -> Result<EchoRequest<'_>, DropReason> {
    if packet.len() < 20 {
        return Err(DropReason::Truncated);
    }
    if packet[0] >> 4 != 4 {
        return Err(DropReason::BadIpVersion);
    }
    let ihl = ((packet[0] & 0x0f) as usize) * 4;
    if ihl < 20 || ihl > packet.len() {
        return Err(DropReason::BadIhl);
    }
    let total_len = u16::from_be_bytes([packet[2], packet[3]]) as usize;
    if total_len < ihl || total_len > packet.len() {
        return Err(DropReason::BadTotalLength);
    }
    let packet = &packet[..total_len];
    if !checksum::verify(&packet[..ihl], 0) {
        return Err(DropReason::BadIpChecksum);
    }
    // RFC 791 §3.1: MF or a fragment offset; ICMP is not reassembled.
    if u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0 {
        return Err(DropReason::Fragment);
    }
    if packet[9] != PROTO_ICMP {
        return Err(DropReason::NotTcp);
    }
    let icmp = &packet[ihl..];
    // RFC 792: type, code, checksum, identifier, sequence number = 8 bytes.
    if icmp.len() < 8 {
        return Err(DropReason::Truncated);
    }
    // RFC 792: "the 16-bit one's complement of the one's complement sum of the ICMP
    // message starting with the ICMP Type".
    if !checksum::verify(icmp, 0) {
        return Err(DropReason::IcmpBadChecksum);
    }
    // RFC 792: echo request is type 8, code 0 (any code is answered, as Linux does).
    if icmp[0] != ECHO_REQUEST {
        return Err(DropReason::IcmpNotEcho);
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    Ok(EchoRequest { src, dst, tos: packet[1], icmp })
}

/// One reply waiting for `poll_transmit`: the IPv4 addresses and the ICMP message, already
/// turned into an echo reply.
#[derive(Debug)]
struct QueuedReply {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    tos: u8,
    icmp: Vec<u8>,
}

/// Token bucket of echo replies on virtual time; tokens are kept in millionths so a rate
/// of any size refills smoothly per microsecond.
#[derive(Debug, Default)]
pub(crate) struct Bucket {
    micro_tokens: u64,
    last: Option<Instant>,
}

impl Bucket {
    /// Take one token if there is one, after refilling `per_sec` tokens per second of
    /// virtual time since the last call, up to one second's worth.
    pub(crate) fn take(&mut self, now: Instant, per_sec: u32) -> bool {
        let cap = u64::from(per_sec) * 1_000_000;
        match self.last {
            // A new bucket starts full (as Linux's icmp_global does).
            None => self.micro_tokens = cap,
            Some(last) => {
                let us = u64::try_from(now.saturating_since(last).as_micros()).unwrap_or(u64::MAX);
                let add = us.saturating_mul(u64::from(per_sec));
                self.micro_tokens = self.micro_tokens.saturating_add(add).min(cap);
            }
        }
        self.last = Some(now);
        if self.micro_tokens < 1_000_000 {
            return false;
        }
        self.micro_tokens -= 1_000_000;
        true
    }
}

/// The echo server's state in a `Stack`: the reply queue, its rate limit and the IPv4
/// identification counter of the replies.
#[derive(Debug, Default)]
pub struct EchoServer {
    queue: VecDeque<QueuedReply>,
    bucket: Bucket,
    ip_id: u16,
}

impl EchoServer {
    /// Queue the reply to `req`, or say why not: `IcmpQueueFull`, `IcmpRateLimited`.
    pub fn queue_reply(
        &mut self,
        now: Instant,
        per_sec: u32,
        req: &EchoRequest<'_>,
    ) -> Result<(), DropReason> {
        if self.queue.len() >= ECHO_QUEUE_CAP {
            return Err(DropReason::IcmpQueueFull);
        }
        if per_sec == 0 || !self.bucket.take(now, per_sec) {
            return Err(DropReason::IcmpRateLimited);
        }
        // RFC 792 / RFC 1122 §3.2.2.6: same identifier, sequence number and data; type 0.
        let mut icmp = req.icmp.to_vec();
        icmp[0] = ECHO_REPLY;
        icmp[2] = 0;
        icmp[3] = 0;
        let c = checksum::checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        // RFC 1122 §3.2.2.6: the reply's source is the request's destination.
        self.queue.push_back(QueuedReply { src: req.dst, dst: req.src, tos: req.tos, icmp });
        Ok(())
    }

    /// Replies waiting for `poll_transmit`.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Write the next reply (a 20-byte IPv4 header, no options, DF clear, TTL 64, then the
    /// ICMP message) into `buf`. `None` when none is queued; a reply that does not fit
    /// `buf` (the caller's buffer is smaller than promised) is dropped, not kept forever.
    pub fn emit(&mut self, buf: &mut [u8]) -> Option<usize> {
        let r = self.queue.pop_front()?;
        let total = 20 + r.icmp.len();
        if total > buf.len() || total > u16::MAX as usize {
            return None;
        }
        self.ip_id = self.ip_id.wrapping_add(1);
        let ip = &mut buf[..20];
        ip[0] = 0x45;
        ip[1] = r.tos;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
        ip[6..8].copy_from_slice(&[0, 0]);
        ip[8] = REPLY_TTL;
        ip[9] = PROTO_ICMP;
        ip[10..12].copy_from_slice(&[0, 0]);
        ip[12..16].copy_from_slice(&r.src.octets());
        ip[16..20].copy_from_slice(&r.dst.octets());
        let c = checksum::checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        buf[20..total].copy_from_slice(&r.icmp);
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_per_microsecond_and_caps_at_one_second() {
        let mut b = Bucket::default();
        let t0 = Instant::from_millis(5);
        assert!((0..2).all(|_| b.take(t0, 2)));
        assert!(!b.take(t0, 2));
        assert!(!b.take(Instant::from_micros(5_000 + 499_999), 2));
        assert!(b.take(Instant::from_micros(5_000 + 500_000), 2));
        let later = Instant::from_millis(60_000);
        assert!((0..2).all(|_| b.take(later, 2)));
        assert!(!b.take(later, 2), "the bucket holds one second's worth at most");
    }
}
