//! Human-readable traces, one line per segment, in the spirit of tshark:
//! time, direction, flags, relative seq/ack, window, length, options.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use utcp::seq::SeqNum;
use utcp::time::Instant;
use utcp::wire::{TcpSegment, parse_ip_tcp};

/// Formats segments with sequence numbers relative to each direction's first SYN
/// (as tshark and packetdrill show them).
#[derive(Default)]
pub struct Tracer {
    /// ISN per sending endpoint.
    isn: HashMap<SocketAddr, SeqNum>,
}

impl Tracer {
    pub fn new() -> Tracer {
        Tracer::default()
    }

    /// One line for an IPv4 or IPv6 packet, or a note on why it does not parse.
    pub fn line(&mut self, now: Instant, dir: &str, packet: &[u8]) -> String {
        match parse_ip_tcp(packet) {
            Ok(seg) => self.segment_line(now, dir, &seg),
            Err(r) => format!("{:>11} {dir} [dropped: {}] {} bytes", fmt_time(now), r.name(), packet.len()),
        }
    }

    pub fn segment_line(&mut self, now: Instant, dir: &str, seg: &TcpSegment) -> String {
        let src = SocketAddr::new(seg.src, seg.src_port);
        let dst = SocketAddr::new(seg.dst, seg.dst_port);
        if seg.flags.syn() {
            self.isn.insert(src, seg.seq);
        }
        let rel = |isn: Option<&SeqNum>, v: SeqNum| isn.map(|i| v.since(*i)).unwrap_or(v.0);
        let mut s = String::with_capacity(128);
        let _ = write!(
            s,
            "{:>11} {dir} {:<4} seq {}",
            fmt_time(now),
            seg.flags.to_string(),
            rel(self.isn.get(&src), seg.seq)
        );
        if seg.flags.ack() {
            let _ = write!(s, " ack {}", rel(self.isn.get(&dst), seg.ack));
        }
        let _ = write!(s, " win {} len {}", seg.window, seg.payload.len());
        // SACK blocks name the other direction's bytes: show them relative like the ACK.
        let mut options = seg.options;
        if let Some(isn) = self.isn.get(&dst) {
            options.sack.clear();
            for &(a, b) in seg.options.sack.as_slice() {
                options.sack.push(SeqNum(a.since(*isn)), SeqNum(b.since(*isn)));
            }
        }
        let opts = options.to_string();
        if !opts.is_empty() {
            let _ = write!(s, " {opts}");
        }
        s
    }
}

/// Seconds with microsecond precision, like tshark's relative time column.
pub fn fmt_time(now: Instant) -> String {
    let us = now.micros();
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}
