//! TCP segmentation offload, the engine's side (issue 12, "Performance II", item 1).
//!
//! **Send.** [`Stack::poll_transmit_gso`] writes one IPv4 packet that may be a TCP
//! *super-segment*: the concatenation of up to `max_segs` consecutive new-data segments of
//! one connection, each exactly what [`Stack::poll_transmit`] would have written. The
//! segments are still planned one by one by the TCB (cwnd, the peer's window, Nagle, RTT
//! timing, the retransmission timer and the SACK scoreboard all see MSS-sized segments);
//! this layer only glues the ones a device (Linux TSO through the TUN's virtio-net header)
//! will cut back into the very same segments:
//! - same addresses, ports, TTL, ACK, window, options (so also the same TSval) and no URG;
//! - SEG.SEQ and the IPv4 ID of the k-th piece are the first one's plus `k * segment_size`
//!   and plus `k` (the kernel's TSO increments the ID per segment);
//! - every piece but the last carries exactly `segment_size` octets and neither PSH nor FIN
//!   (TSO puts PSH and FIN on the last segment only, RFC 9293 §3.9.1 SEND/CLOSE);
//! - only new data (`TxReason::NewData`): a retransmission is always a normal segment.
//!
//! The glued packet's IPv4 total length covers every piece and its TCP checksum field holds
//! the pseudo-header sum over the whole TCP length, not complemented (what virtio-net
//! `NEEDS_CSUM` with `csum_start`/`csum_offset` expects; the device completes it per piece).
//! A packet of one segment keeps its full checksum and has no `segment_size`.
//!
//! A segment polled but not gluable is kept (one packet, in a buffer sized once) and comes
//! out first on the next call of either `poll_transmit` flavour.
//!
//! **Receive.** [`Stack::handle_packet_checksum_ok`] takes a packet whose TCP checksum the
//! device vouches for (`NEEDS_CSUM` / `DATA_VALID`); a GRO super-segment is handed over as
//! one segment, and the TCB accepts a segment longer than the MSS that fits the window
//! (RFC 9293 §3.10.7.4: acceptability is by the window, not by the MSS).

use super::Stack;
use crate::TxReason;
use crate::time::Instant;
use crate::wire::checksum;
use crate::wire::{DropReason, TcpFlags, parse_ip_tcp_checksum_ok};

/// IPv4 header length the engine emits (IHL 5, no options).
const IP_HDR: usize = 20;
/// Offset of the TCP checksum field within the TCP header (RFC 9293 §3.1).
pub const TCP_CSUM_OFFSET: usize = 16;

/// One packet written by [`Stack::poll_transmit_gso`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Bytes written at the start of the buffer: one IPv4 packet.
    pub len: usize,
    /// IP plus TCP header length (virtio-net `hdr_len`); for a packet that is not TCP
    /// (ICMP, ICMPv6), the IP header length.
    pub header_len: usize,
    /// `Some(payload octets per piece)` when the packet is a super-segment of more than
    /// one TCP segment (virtio-net `gso_size`); the last piece may be shorter.
    pub segment_size: Option<usize>,
    /// How many TCP segments the packet stands for (1 for a normal packet).
    pub segments: usize,
    /// Where the checksum the device must complete starts (the TCP header) when the TCP
    /// checksum field holds only the pseudo-header sum (virtio-net `csum_start`; the field
    /// is at `csum_start + TCP_CSUM_OFFSET`). `None`: every checksum is complete.
    pub csum_start: Option<usize>,
}

impl Transmit {
    fn single(len: usize, header_len: usize) -> Transmit {
        Transmit { len, header_len, segment_size: None, segments: 1, csum_start: None }
    }
}

/// The packet polled from the engine but not glued to the previous super-segment, and the
/// partial-checksum flags between `poll_transmit_gso` and the TCB's emitter.
#[derive(Default)]
pub(super) struct GsoStash {
    buf: Vec<u8>,
    len: usize,
    why: TxReason,
    /// Set while `poll_transmit_gso` polls: IPv4 data segments leave the TCP checksum to
    /// the device (`Cx::partial_csum`).
    pub(super) partial_csum: bool,
    /// The packet `poll_transmit` just wrote has only the pseudo-header sum.
    pub(super) wrote_partial: bool,
}

impl GsoStash {
    /// Copy the held packet into `buf` (the caller checked its size) and forget it.
    fn take_into(&mut self, buf: &mut [u8]) -> Option<(usize, TxReason)> {
        if self.len == 0 || buf.len() < self.len {
            return None;
        }
        let n = std::mem::take(&mut self.len);
        buf[..n].copy_from_slice(&self.buf[..n]);
        Some((n, self.why))
    }

    fn hold(&mut self, pkt: &[u8], why: TxReason) {
        if self.buf.len() < pkt.len() {
            // Sized once to the largest packet the engine writes (a data segment).
            self.buf.resize(pkt.len().max(2048), 0);
        }
        self.buf[..pkt.len()].copy_from_slice(pkt);
        self.len = pkt.len();
        self.why = why;
    }
}

fn be16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

fn be32(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

/// IPv4 + TCP header length of a packet the engine wrote, if it is a TCP segment with
/// payload that may head a super-segment (IHL 5, ACK set, no SYN/RST/URG/PSH/FIN).
fn head_len(p: &[u8]) -> Option<usize> {
    if p.len() < IP_HDR + 20 || p[0] != 0x45 || p[9] != crate::wire::packet::PROTO_TCP {
        return None;
    }
    let hdr = IP_HDR + ((p[IP_HDR + 12] >> 4) as usize) * 4;
    let flags = TcpFlags(p[IP_HDR + 13]);
    let plain = flags.ack() && !flags.syn() && !flags.rst() && !flags.urg() && !flags.psh() && !flags.fin();
    (plain && hdr >= IP_HDR + 20 && hdr < p.len()).then_some(hdr)
}

/// The header length of a packet that goes out alone (`Transmit::header_len`): the IPv4
/// header (IHL) or the fixed IPv6 header (the engine writes no extension headers), plus
/// the TCP header (data offset) when the packet is TCP. The engine wrote `p`; the reads
/// are still bounded (a missing octet reads as 0), so no input can make it panic.
fn header_len_alone(p: &[u8]) -> usize {
    let at = |i: usize| p.get(i).copied().unwrap_or(0);
    let v6 = at(0) >> 4 == 6;
    let (ip, proto) = if v6 { (40, at(6)) } else { ((at(0) & 0x0f) as usize * 4, at(9)) };
    let tcp = if proto == crate::wire::packet::PROTO_TCP { (at(ip + 12) >> 4) as usize * 4 } else { 0 };
    (ip + tcp).min(p.len())
}

/// Does `next` continue the super-segment `head` (of `segs` pieces of `size` octets, all
/// full so far) as the device would cut it? See the module doc for the rules.
fn continues(head: &[u8], hdr: usize, size: usize, segs: usize, next: &[u8]) -> bool {
    if next.len() <= hdr || next.len() - hdr > size || next[0] != 0x45 {
        return false;
    }
    let t = IP_HDR;
    let same = |a: usize, b: usize| head[a..b] == next[a..b];
    // IPv4: TOS; flags/fragment, TTL, protocol; addresses. TCP: ports; ACK; offset;
    // window; urgent pointer; options.
    let headers_match = same(1, 2)
        && same(6, 10)
        && same(12, 20)
        && same(t, t + 4)
        && same(t + 8, t + 13)
        && same(t + 14, t + 16)
        && same(t + 18, hdr);
    let flags = TcpFlags(next[t + 13]);
    let extra = TcpFlags(next[t + 13] & !(TcpFlags::PSH.0 | TcpFlags::FIN.0));
    let seq_ok = be32(next, t + 4) == be32(head, t + 4).wrapping_add((size * segs) as u32);
    let id_ok = be16(next, 4) == be16(head, 4).wrapping_add(segs as u16);
    headers_match && flags.ack() && extra == TcpFlags(head[t + 13]) && seq_ok && id_ok
}

/// Longest IPv4 (IHL 5) + TCP header (data offset 15).
const MAX_HDR: usize = IP_HDR + 60;

/// Complete the TCP checksum of an IPv4 packet the emitter wrote with only the
/// pseudo-header sum (it goes out alone; RFC 9293 §3.1). The same bytes as a full emit.
fn complete_tcp_checksum(p: &mut [u8]) {
    let src = [p[12], p[13], p[14], p[15]];
    let dst = [p[16], p[17], p[18], p[19]];
    let tcp_len = (p.len() - IP_HDR) as u16;
    let pseudo = checksum::pseudo_header_ipv4(src, dst, crate::wire::packet::PROTO_TCP, tcp_len);
    let at = IP_HDR + TCP_CSUM_OFFSET;
    p[at..at + 2].fill(0);
    let c = checksum::finish(checksum::sum(&p[IP_HDR..], pseudo));
    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Turn `p` (IPv4 + TCP, `tcp_len` octets of TCP) into the head of a super-segment: its
/// total length, a new IPv4 header checksum, and the TCP pseudo-header sum for the device.
fn finish_super(p: &mut [u8], total: usize) {
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[10..12].fill(0);
    let c = checksum::checksum(&p[..IP_HDR]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let src = [p[12], p[13], p[14], p[15]];
    let dst = [p[16], p[17], p[18], p[19]];
    let tcp_len = (total - IP_HDR) as u16;
    let pseudo =
        checksum::fold(checksum::pseudo_header_ipv4(src, dst, crate::wire::packet::PROTO_TCP, tcp_len));
    let at = IP_HDR + TCP_CSUM_OFFSET;
    p[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
}

impl Stack {
    /// Feed one received IPv4 packet whose TCP checksum the device has verified or will
    /// not need (virtio-net `DATA_VALID` / `NEEDS_CSUM` through a TUN with offload): like
    /// [`Stack::handle_packet`] without the TCP checksum check. The IPv4 header checksum is
    /// still checked. A GRO super-segment is one segment here. Never call it for a packet
    /// the device did not vouch for: that would accept corrupted data.
    pub fn handle_packet_checksum_ok(&mut self, now: Instant, packet: &[u8]) {
        match parse_ip_tcp_checksum_ok(packet) {
            Ok(seg) => {
                self.counters.in_packets += 1;
                self.handle_segment(now, seg);
            }
            // Fragments and ICMP take the ordinary path.
            Err(DropReason::Fragment | DropReason::NotTcp) => self.handle_packet(now, packet),
            Err(reason) => {
                self.counters.in_packets += 1;
                self.counters.drop(reason);
            }
        }
    }

    /// Like [`Stack::poll_transmit`], but glue up to `max_segs` consecutive full-sized
    /// new-data segments of one connection into one super-segment for a device with TCP
    /// segmentation offload (see the module doc). `buf` should hold 64 KiB; one segment
    /// needs [`Stack::min_transmit_buffer`] bytes. Do not mix with `poll_transmit` within
    /// one drain unless the ordering of a held packet does not matter (it goes out first).
    ///
    /// While it polls, the TCB writes IPv4 data segments without summing them (the device
    /// checksums every piece, `NEEDS_CSUM`), and each next piece is written with its header
    /// over the last octets of the previous piece (saved and put back), so its payload lands
    /// in place: the header is built once per piece but no payload is summed or moved here.
    /// A packet that goes out alone gets its full checksum.
    #[must_use = "a packet written into `buf` must be sent, or it is lost"]
    pub fn poll_transmit_gso(&mut self, now: Instant, buf: &mut [u8], max_segs: usize) -> Option<Transmit> {
        self.gso_stash.partial_csum = true;
        let t = self.gso_glue(now, buf, max_segs);
        self.gso_stash.partial_csum = false;
        t
    }

    fn gso_glue(&mut self, now: Instant, buf: &mut [u8], max_segs: usize) -> Option<Transmit> {
        let min = self.min_transmit_buffer();
        if buf.len() < min {
            return None;
        }
        let (n, why, partial) = match self.gso_stash.take_into(buf) {
            Some((n, why)) => (n, why, false),
            None => (self.poll_transmit(now, buf)?, self.last_tx_reason, self.gso_stash.wrote_partial),
        };
        self.last_tx_reason = why;
        let Some(hdr) = head_len(&buf[..n]).filter(|_| why == TxReason::NewData && max_segs > 1) else {
            if partial {
                complete_tcp_checksum(&mut buf[..n]);
            }
            return Some(Transmit::single(n, header_len_alone(&buf[..n])));
        };
        let size = n - hdr;
        let mut head = [0u8; MAX_HDR];
        head[..hdr].copy_from_slice(&buf[..hdr]);
        let mut saved = [0u8; MAX_HDR];
        let (mut total, mut segs) = (n, 1);
        while segs < max_segs && total + size <= u16::MAX as usize && buf.len() - total >= min {
            // The next packet starts `hdr` octets early, so its payload lands at `total`.
            let at = total - hdr;
            saved[..hdr].copy_from_slice(&buf[at..total]);
            let polled = self.poll_transmit(now, &mut buf[at..]);
            let Some(m) = polled else {
                buf[at..total].copy_from_slice(&saved[..hdr]);
                break;
            };
            let why = self.last_tx_reason;
            let next = &mut buf[at..at + m];
            if why != TxReason::NewData || !continues(&head[..hdr], hdr, size, segs, next) {
                if self.gso_stash.wrote_partial {
                    complete_tcp_checksum(next);
                }
                self.gso_stash.hold(next, why);
                buf[at..total].copy_from_slice(&saved[..hdr]);
                break;
            }
            let last_flags = next[IP_HDR + 13] & (TcpFlags::PSH.0 | TcpFlags::FIN.0);
            let piece = m - hdr;
            buf[at..total].copy_from_slice(&saved[..hdr]);
            total += piece;
            segs += 1;
            if piece < size || last_flags != 0 {
                buf[IP_HDR + 13] |= last_flags;
                break;
            }
        }
        self.last_tx_reason = TxReason::NewData;
        if segs == 1 {
            if partial {
                complete_tcp_checksum(&mut buf[..n]);
            }
            return Some(Transmit::single(n, hdr));
        }
        finish_super(&mut buf[..total], total);
        Some(Transmit {
            len: total,
            header_len: hdr,
            segment_size: Some(size),
            segments: segs,
            csum_start: Some(IP_HDR),
        })
    }

    /// The packet `poll_transmit_gso` held back, if any (for `poll_transmit`).
    pub(super) fn take_gso_stash(&mut self, buf: &mut [u8]) -> Option<usize> {
        let (n, why) = self.gso_stash.take_into(buf)?;
        self.last_tx_reason = why;
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stash_round_trips_and_is_sized_once() {
        let mut s = GsoStash::default();
        let mut out = [0u8; 64];
        assert!(s.take_into(&mut out).is_none());
        s.hold(&[1, 2, 3], TxReason::NewData);
        let cap = s.buf.len();
        assert_eq!(s.take_into(&mut out), Some((3, TxReason::NewData)));
        assert_eq!(&out[..3], &[1, 2, 3]);
        assert!(s.take_into(&mut out).is_none(), "taken once");
        s.hold(&[9; 40], TxReason::Fin);
        assert_eq!(s.buf.len(), cap);
    }

    #[test]
    fn header_len_alone_is_ip_plus_tcp_or_ip_alone() {
        let mut p = [0u8; 80];
        p[0] = 0x45;
        p[9] = 6;
        p[IP_HDR + 12] = 8 << 4;
        assert_eq!(header_len_alone(&p), 52, "IPv4, TCP with 12 octets of options");
        p[9] = 1;
        assert_eq!(header_len_alone(&p[..28]), 20, "IPv4 ICMP");
        let mut q = [0u8; 80];
        q[0] = 0x60;
        q[6] = 6;
        q[40 + 12] = 10 << 4;
        assert_eq!(header_len_alone(&q), 80, "IPv6, TCP with 20 octets of options");
        q[6] = 58;
        assert_eq!(header_len_alone(&q[..48]), 40, "ICMPv6");
        p[0] = 0x4f;
        assert_eq!(header_len_alone(&p[..28]), 28, "bounded by the packet");
        assert_eq!(header_len_alone(&[]), 0);
    }

    #[test]
    fn head_len_refuses_what_cannot_lead() {
        let mut p = [0u8; 60];
        p[0] = 0x45;
        p[9] = 6;
        p[IP_HDR + 12] = 5 << 4;
        p[IP_HDR + 13] = TcpFlags::ACK.0;
        assert_eq!(head_len(&p), Some(40));
        p[IP_HDR + 13] = (TcpFlags::ACK | TcpFlags::PSH).0;
        assert_eq!(head_len(&p), None, "PSH only on the last piece");
        p[IP_HDR + 13] = TcpFlags::ACK.0;
        assert_eq!(head_len(&p[..40]), None, "no payload");
        p[0] = 0x46;
        assert_eq!(head_len(&p), None, "IPv4 options");
    }
}
