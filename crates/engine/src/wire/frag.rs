//! IPv4 and IPv6 reassembly (RFC 791 §3.2 "reassembly", RFC 1122 §3.3.2: "the IP layer
//! MUST implement reassembly of IP datagrams"; RFC 8200 §4.5).
//!
//! Fragments are keyed by (source, destination, protocol, identification) (RFC 791 §3.2;
//! RFC 8200 §4.5: source, destination and the 32-bit identification). Both families share
//! one table and its bounds. An IPv6 datagram is rebuilt as its 40-byte header followed by
//! the fragmentable part (the unfragmentable extension headers are dropped: they were
//! already walked), then parsed again.
//! Policy for a hostile network:
//!
//! - every datagram is bounded: at most `Config::ipfrag_max_fragments` fragments and
//!   65,535 bytes with its header (a longer one, the "ping of death", is dropped);
//! - the table is bounded: at most `Config::ipfrag_max_datagrams` datagrams and
//!   `Config::ipfrag_high_thresh` bytes of buffers (Linux's net.ipv4.ipfrag_high_thresh);
//!   a fragment that would pass either bound is dropped;
//! - a datagram not complete `Config::ipfrag_time` after its first fragment is dropped
//!   (RFC 1122 §3.3.2: a reassembly timeout, 30 s as Linux's net.ipv4.ipfrag_time);
//! - overlapping fragments drop the whole datagram, the policy RFC 5722 §4 sets for IPv6
//!   (overlaps are an IDS-evasion tool, never produced by an honest sender); an exact
//!   duplicate fragment is dropped on its own (Linux does the same);
//! - only TCP is reassembled: other protocols are dropped before they cost memory.
//!
//! Each drop is counted by reason (`DropReason::Frag*`). One buffer is allocated per
//! datagram, never per fragment; no ICMP "fragment reassembly time exceeded" is sent.

use super::DropReason;
use super::checksum;
use super::ipv6::{self, IPV6_HEADER_LEN};
use super::packet::{IPV4_HEADER_LEN, PROTO_TCP};
use crate::time::Instant;
use crate::{Config, Counters};

/// Most fragments one datagram may have, whatever `Config::ipfrag_max_fragments` says.
pub const MAX_FRAGMENTS: usize = 64;
/// Largest IPv4 datagram, header included (RFC 791 §3.1 total length).
const MAX_DATAGRAM: usize = 65535;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Key {
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    proto: u8,
    v6: bool,
}

impl Key {
    /// Length of the datagram's fixed header in the reassembly buffer.
    fn header_len(&self) -> usize {
        if self.v6 { IPV6_HEADER_LEN } else { IPV4_HEADER_LEN }
    }
}

/// One datagram being reassembled. `buf` holds a 20-byte header followed by the payload
/// bytes received so far, each at its fragment offset.
struct Datagram {
    key: Key,
    deadline: Instant,
    buf: Vec<u8>,
    /// Payload ranges received, as (start, end) byte offsets; disjoint.
    ranges: [(u32, u32); MAX_FRAGMENTS],
    nranges: usize,
    /// Payload length, once the last fragment (MF = 0) arrived.
    total: Option<u32>,
    /// Payload bytes received (the ranges are disjoint, so their sum).
    received: u32,
}

/// Fragment header fields of a packet `parse_ip_tcp` refused as `Fragment` (its IP
/// header is then already validated).
struct Frag<'a> {
    key: Key,
    /// Header bytes counted against the 65,535-byte limit with the payload: the IPv4 IHL;
    /// 0 for IPv6, whose payload length excludes the fixed header.
    ihl: usize,
    offset: u32,
    more: bool,
    header: &'a [u8],
    payload: &'a [u8],
}

fn frag_of(packet: &[u8]) -> Option<Frag<'_>> {
    if packet.first()? >> 4 == 6 {
        return frag_of_v6(packet);
    }
    let ihl = ((*packet.first()? & 0x0f) as usize) * 4;
    let total_len = u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]) as usize;
    if ihl < IPV4_HEADER_LEN || total_len < ihl || total_len > packet.len() {
        return None;
    }
    let fo = u16::from_be_bytes([packet[6], packet[7]]);
    let mut key = Key {
        src: [0; 16],
        dst: [0; 16],
        id: u16::from_be_bytes([packet[4], packet[5]]) as u32,
        proto: packet[9],
        v6: false,
    };
    key.src[..4].copy_from_slice(&packet[12..16]);
    key.dst[..4].copy_from_slice(&packet[16..20]);
    Some(Frag {
        key,
        ihl,
        offset: (fo & 0x1fff) as u32 * 8,
        more: fo & 0x2000 != 0,
        header: &packet[..IPV4_HEADER_LEN],
        payload: &packet[ihl..total_len],
    })
}

/// RFC 8200 §4.5: the fragment header's offset, M flag and identification; the header
/// copied into the datagram is the fixed 40 bytes.
fn frag_of_v6(packet: &[u8]) -> Option<Frag<'_>> {
    let ip = ipv6::parse(packet).ok()?;
    let f = ip.fragment?;
    let key = Key { src: ip.src.octets(), dst: ip.dst.octets(), id: f.id, proto: ip.next_header, v6: true };
    Some(Frag {
        key,
        ihl: 0,
        offset: f.offset,
        more: f.more,
        header: &packet[..IPV6_HEADER_LEN],
        payload: ip.payload,
    })
}

/// The destination address of a fragment (None if it is not a well-formed one).
#[must_use]
pub fn destination(packet: &[u8]) -> Option<std::net::IpAddr> {
    let f = frag_of(packet)?;
    Some(if f.key.v6 {
        std::net::IpAddr::from(f.key.dst)
    } else {
        std::net::IpAddr::from([f.key.dst[0], f.key.dst[1], f.key.dst[2], f.key.dst[3]])
    })
}

/// The reassembly table of one Stack.
#[derive(Default)]
pub struct Reassembler {
    datagrams: Vec<Datagram>,
    /// Bytes of buffers held, the spare included (the sum of their capacities).
    memory: usize,
    /// The buffer of the last finished datagram, reused by the next one so that the
    /// steady path allocates nothing. Counted in `memory`; given up under pressure.
    spare: Option<Vec<u8>>,
}

/// Outcome of one fragment.
pub enum FragResult {
    /// Held (or dropped, with the reason to count).
    Pending(Option<DropReason>),
    /// The datagram is complete: an unfragmented IPv4 packet (20-byte header) or IPv6
    /// packet (40-byte header, no extension headers before the upper layer). Hand it back with [`Reassembler::recycle`] when done.
    Complete(Vec<u8>),
}

impl Reassembler {
    /// Bytes of reassembly buffers held now (never above `Config::ipfrag_high_thresh`).
    pub fn memory(&self) -> usize {
        self.memory
    }

    /// Datagrams being reassembled.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    /// True when no datagram is being reassembled.
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// The earliest reassembly timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.datagrams.iter().map(|d| d.deadline).min()
    }

    /// Drop every datagram whose timeout passed (RFC 1122 §3.3.2); returns how many.
    pub fn expire(&mut self, now: Instant, counters: &mut Counters) -> u64 {
        let mut n = 0;
        let mut i = 0;
        while i < self.datagrams.len() {
            if self.datagrams[i].deadline <= now {
                self.remove(i);
                n += 1;
                // An idle table holds nothing.
                if self.datagrams.is_empty() {
                    self.drop_spare();
                }
            } else {
                i += 1;
            }
        }
        counters.reasm_fails += n;
        for _ in 0..n {
            counters.drop(DropReason::FragTimeout);
        }
        n
    }

    /// A completed datagram's buffer is no longer needed: keep it as the spare.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.is_none() && buf.capacity() <= MAX_DATAGRAM + IPV6_HEADER_LEN {
            buf.clear();
            self.memory += buf.capacity();
            self.spare = Some(buf);
        }
    }

    fn remove(&mut self, i: usize) -> Datagram {
        let d = self.datagrams.swap_remove(i);
        self.memory -= d.buf.capacity();
        d
    }

    /// Drop datagram `i` for `reason`.
    fn fail(&mut self, i: usize, reason: DropReason, counters: &mut Counters) -> FragResult {
        let d = self.remove(i);
        self.recycle(d.buf);
        counters.reasm_fails += 1;
        FragResult::Pending(Some(reason))
    }

    /// Take one fragment (a packet `parse_ip_tcp` refused as `Fragment`).
    /// The caller counts the returned drop reason; reassembly counters are kept here.
    pub fn insert(
        &mut self,
        cfg: &Config,
        now: Instant,
        packet: &[u8],
        counters: &mut Counters,
    ) -> FragResult {
        counters.reasm_reqds += 1;
        let Some(f) = frag_of(packet) else {
            return FragResult::Pending(Some(DropReason::FragMalformed));
        };
        if f.key.proto != PROTO_TCP {
            return FragResult::Pending(Some(DropReason::NotTcp));
        }
        let len = f.payload.len() as u32;
        // RFC 791 §3.2: every fragment but the last carries a multiple of 8 octets.
        if len == 0 || (f.more && !len.is_multiple_of(8)) {
            return FragResult::Pending(Some(DropReason::FragMalformed));
        }
        let end = f.offset + len;
        let found = self.datagrams.iter().position(|d| d.key == f.key);
        if f.ihl + end as usize > MAX_DATAGRAM {
            // Longer than any IPv4 datagram can be (the "ping of death").
            return match found {
                Some(i) => self.fail(i, DropReason::FragTooLarge, counters),
                None => FragResult::Pending(Some(DropReason::FragTooLarge)),
            };
        }
        let i = match found {
            Some(i) => i,
            None => match self.create(cfg, now, f.key) {
                Some(i) => i,
                None => return FragResult::Pending(Some(DropReason::FragMemory)),
            },
        };
        if let Err(reason) = self.check(cfg, i, &f, end) {
            return match reason {
                DropReason::FragDuplicate => FragResult::Pending(Some(reason)),
                _ => self.fail(i, reason, counters),
            };
        }
        if !self.grow(cfg, i, f.key.header_len() + end as usize) {
            return self.fail(i, DropReason::FragMemory, counters);
        }
        self.place(i, &f, end, counters)
    }

    /// A new datagram entry, if the table has room (`ipfrag_max_datagrams`).
    fn create(&mut self, cfg: &Config, now: Instant, key: Key) -> Option<usize> {
        // The spare is about to be reused: it does not count against a new datagram.
        let spare = self.spare.as_ref().map_or(0, |b| b.capacity());
        if self.datagrams.len() >= cfg.ipfrag_max_datagrams || self.memory - spare >= cfg.ipfrag_high_thresh {
            return None;
        }
        // The spare moves to the new datagram: `memory` already counts it.
        let buf = self.spare.take().unwrap_or_default();
        self.datagrams.push(Datagram {
            key,
            deadline: now + cfg.ipfrag_time,
            buf,
            ranges: [(0, 0); MAX_FRAGMENTS],
            nranges: 0,
            total: None,
            received: 0,
        });
        Some(self.datagrams.len() - 1)
    }

    /// May fragment `f` (payload [offset, end)) join datagram `i`?
    fn check(&self, cfg: &Config, i: usize, f: &Frag, end: u32) -> Result<(), DropReason> {
        let d = &self.datagrams[i];
        let ranges = &d.ranges[..d.nranges];
        if ranges.contains(&(f.offset, end)) {
            return Err(DropReason::FragDuplicate);
        }
        if ranges.iter().any(|&(s, e)| f.offset < e && s < end) {
            // RFC 5722 policy: an overlap discards the whole datagram.
            return Err(DropReason::FragOverlap);
        }
        // The last fragment fixes the length; nothing may lie beyond it.
        let last_end = ranges.iter().map(|&(_, e)| e).max().unwrap_or(0);
        let inconsistent = match (d.total, f.more) {
            (Some(t), true) => end > t,
            (Some(_), false) => true, // a second, different last fragment
            (None, false) => last_end > end,
            (None, true) => false,
        };
        if inconsistent {
            return Err(DropReason::FragOverlap);
        }
        if d.nranges >= cfg.ipfrag_max_fragments.min(MAX_FRAGMENTS) {
            return Err(DropReason::FragTooMany);
        }
        Ok(())
    }

    /// Make datagram `i`'s buffer hold `need` bytes within the memory cap.
    fn grow(&mut self, cfg: &Config, i: usize, need: usize) -> bool {
        let d = &mut self.datagrams[i];
        if d.buf.len() >= need {
            return true;
        }
        let old = d.buf.capacity();
        if need <= old {
            d.buf.resize(need, 0);
            return true;
        }
        // Known length: allocate it once; otherwise at least double (amortised growth).
        let want = match d.total {
            Some(t) => d.key.header_len() + t as usize,
            None => need.max(d.buf.len() * 2).min(MAX_DATAGRAM),
        }
        .max(need);
        if self.memory - old + want > cfg.ipfrag_high_thresh {
            self.drop_spare();
            if self.memory - old + want > cfg.ipfrag_high_thresh {
                return false;
            }
        }
        let d = &mut self.datagrams[i];
        d.buf.reserve_exact(want - d.buf.len());
        d.buf.resize(need, 0);
        self.memory = self.memory - old + d.buf.capacity();
        true
    }

    fn drop_spare(&mut self) {
        if let Some(b) = self.spare.take() {
            self.memory -= b.capacity();
        }
    }

    /// Copy the fragment in; a complete datagram is taken out of the table.
    fn place(&mut self, i: usize, f: &Frag, end: u32, counters: &mut Counters) -> FragResult {
        let d = &mut self.datagrams[i];
        let hl = d.key.header_len();
        let at = hl + f.offset as usize;
        d.buf[at..at + f.payload.len()].copy_from_slice(f.payload);
        if f.offset == 0 {
            // RFC 791 §3.2 / RFC 8200 §4.5: the first fragment's header becomes the
            // datagram's header.
            d.buf[..hl].copy_from_slice(f.header);
        }
        d.ranges[d.nranges] = (f.offset, end);
        d.nranges += 1;
        d.received += f.payload.len() as u32;
        if !f.more {
            d.total = Some(end);
        }
        match d.total {
            Some(t) if d.received == t => {
                let d = self.remove(i);
                let mut buf = d.buf;
                if d.key.v6 {
                    finish_header_v6(&mut buf, t as usize, d.key.proto);
                } else {
                    finish_header(&mut buf, t as usize);
                }
                counters.reasm_oks += 1;
                FragResult::Complete(buf)
            }
            _ => FragResult::Pending(None),
        }
    }
}

/// Turn the first fragment's header into the header of the whole datagram: IHL 5 (its
/// options were copied only in part), the full length, no fragment bits, a new checksum.
fn finish_header(buf: &mut Vec<u8>, payload_len: usize) {
    let total = IPV4_HEADER_LEN + payload_len;
    buf.truncate(total);
    buf[0] = 0x45;
    buf[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    buf[6] = 0;
    buf[7] = 0;
    buf[10] = 0;
    buf[11] = 0;
    let c = checksum::checksum(&buf[..IPV4_HEADER_LEN]);
    buf[10..12].copy_from_slice(&c.to_be_bytes());
}

/// RFC 8200 §4.5 reassembly: the first fragment's fixed header, with the payload length
/// of the whole and the fragment header's next header (the unfragmentable extension
/// headers, already walked, are not kept).
fn finish_header_v6(buf: &mut Vec<u8>, payload_len: usize, next_header: u8) {
    buf.truncate(IPV6_HEADER_LEN + payload_len);
    buf[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
    buf[6] = next_header;
}
