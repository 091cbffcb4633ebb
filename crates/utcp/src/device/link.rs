//! An in-memory link between two endpoints, A and B, on virtual time.
//!
//! The link is sans-IO and deterministic: it is told the time, moves byte packets, and every
//! random decision (loss, duplication, corruption, jitter, reordering) comes from a PRNG
//! seeded by the caller, one stream per direction. The same seed and the same sequence of
//! calls always give the same deliveries, in the same order, at the same instants.
//!
//! Per direction, a packet offered with [`Link::send`] goes through:
//! 1. the bottleneck queue, if `rate_bps` is set: it waits for the packets ahead of it and
//!    takes `len * 8 / rate` to serialise; if `queue_limit` packets are already waiting or
//!    serialising, it is tail-dropped;
//! 2. random loss;
//! 3. random corruption (one random bit flipped);
//! 4. propagation: `delay` plus a uniform `jitter`, plus, with probability `reorder`, an
//!    extra hold-back in `[reorder_extra / 3, reorder_extra]` so later packets overtake it;
//! 5. random duplication (the copy arrives right after the original, same bytes).
//!
//! Delivery order is by (due time, send order), from a binary heap.
//!
//! A TCP super-segment (TUN offload, issue 12) is one packet here, of its real length (up
//! to 64 KiB): it is queued, serialised, lost or corrupted as a whole, like a GSO packet on
//! a Linux qdisc before segmentation.
//!
//! Buffers: received packets are [`Packet`]s; hand them back with [`Link::recycle`] and
//! the link reuses their storage, so a steady-state simulation allocates nothing per packet.

use super::rng::Rng;
use crate::time::{Duration, Instant};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// Buffers kept for reuse at most; more are freed.
const POOL_MAX: usize = 4096;
/// Capacity of a freshly allocated buffer (fits a 1500-byte MTU packet and then some).
const BUF_CAPACITY: usize = 2048;

/// What one direction of the link does to packets.
#[derive(Clone, Debug, PartialEq)]
pub struct Impairments {
    /// Per-packet loss probability.
    pub loss: f64,
    /// Per-packet duplication probability.
    pub dup: f64,
    /// Per-packet probability of being held back by an extra delay (reordering).
    pub reorder: f64,
    /// Per-packet probability of flipping one random bit.
    pub corrupt: f64,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra delay, uniform in `[0, jitter]`, per packet. Jitter alone can reorder packets.
    pub jitter: Duration,
    /// Largest extra hold-back of a reordered packet (default 3 ms).
    pub reorder_extra: Duration,
    /// Bottleneck serialisation rate in bits per second; `None` (or 0) = infinitely fast.
    pub rate_bps: Option<u64>,
    /// Packets that may wait in (or be serialised by) the bottleneck; more are tail-dropped.
    /// Only meaningful with `rate_bps`: an infinitely fast link has no queue.
    pub queue_limit: usize,
}

impl Impairments {
    /// A perfect link: no delay, no loss, unlimited rate.
    pub fn none() -> Impairments {
        Impairments {
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder_extra: Duration::from_millis(3),
            rate_bps: None,
            queue_limit: usize::MAX,
        }
    }

    /// A perfect link with a fixed one-way delay.
    pub fn with_delay(delay: Duration) -> Impairments {
        Impairments { delay, ..Impairments::none() }
    }
}

impl Default for Impairments {
    fn default() -> Self {
        Impairments::none()
    }
}

/// An endpoint of the link.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Side {
    /// The first endpoint.
    A,
    /// The second endpoint.
    B,
}

impl Side {
    /// The other endpoint.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// Counters of one direction. Invariant:
/// `sent + duplicated == delivered + dropped_loss + dropped_queue + in_flight`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct DirStats {
    /// Packets offered by the sender.
    pub sent: u64,
    /// Packets handed to the receiver (duplicates included).
    pub delivered: u64,
    /// Packets lost at random.
    pub dropped_loss: u64,
    /// Packets tail-dropped by a full bottleneck queue.
    pub dropped_queue: u64,
    /// Extra copies created.
    pub duplicated: u64,
    /// Packets held back to be reordered.
    pub reordered: u64,
    /// Packets with a flipped bit.
    pub corrupted: u64,
    /// Packets (copies included) on the way, not yet delivered.
    pub in_flight: u64,
}

/// Counters of both directions.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct LinkStats {
    /// Packets sent by A towards B.
    pub a_to_b: DirStats,
    /// Packets sent by B towards A.
    pub b_to_a: DirStats,
}

/// A delivered packet: its bytes, in a buffer the link can reuse ([`Link::recycle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    buf: Vec<u8>,
}

impl Packet {
    /// The bytes as a vector (the buffer then leaves the pool for good).
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

impl core::ops::Deref for Packet {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl core::ops::DerefMut for Packet {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

/// A packet on its way; the heap pops the earliest `(at, seq)` first.
#[derive(Debug)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: Side,
    buf: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// One direction's impairments, randomness, bottleneck and counters.
#[derive(Debug)]
struct Direction {
    imp: Impairments,
    rng: Rng,
    /// When the bottleneck finishes serialising everything accepted so far, in ns.
    busy_until_ns: u64,
    /// Finish times (ns) of packets accepted by the bottleneck and not yet fully sent.
    queue: VecDeque<u64>,
    stats: DirStats,
}

impl Direction {
    fn new(imp: Impairments, seed: u64) -> Direction {
        Direction {
            imp,
            rng: Rng::new(seed),
            busy_until_ns: 0,
            queue: VecDeque::new(),
            stats: DirStats::default(),
        }
    }

    /// Uniform duration in `[lo, hi]`, microsecond resolution.
    fn uniform(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo = lo.as_micros().min(u64::MAX as u128) as u64;
        let hi = hi.as_micros().min(u64::MAX as u128) as u64;
        if hi <= lo {
            return Duration::from_micros(lo);
        }
        Duration::from_micros(self.rng.gen_range(lo, hi.saturating_add(1)))
    }
}

/// Two endpoints joined by an impaired, deterministic, in-memory link.
#[derive(Debug)]
pub struct Link {
    /// Index 0: A to B; index 1: B to A.
    dirs: [Direction; 2],
    heap: BinaryHeap<InFlight>,
    next_seq: u64,
    pool: Vec<Vec<u8>>,
}

impl Link {
    /// A link whose every random decision derives from `seed`.
    pub fn new(seed: u64, a_to_b: Impairments, b_to_a: Impairments) -> Link {
        // Independent streams per direction, so traffic one way does not change the fate
        // of packets the other way.
        let mut mix = Rng::new(seed);
        let (s0, s1) = (mix.next_u64(), mix.next_u64());
        Link {
            dirs: [Direction::new(a_to_b, s0), Direction::new(b_to_a, s1)],
            heap: BinaryHeap::new(),
            next_seq: 0,
            pool: Vec::new(),
        }
    }

    /// Replace the impairments of packets sent by `from` (e.g. to cut the link for a while).
    /// Packets already in flight keep their fate.
    pub fn set_impairments(&mut self, from: Side, imp: Impairments) {
        self.dirs[from.index()].imp = imp;
    }

    /// The impairments of packets sent by `from`.
    pub fn impairments(&self, from: Side) -> &Impairments {
        &self.dirs[from.index()].imp
    }

    fn take_buf(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut buf = self.pool.pop().unwrap_or_else(|| Vec::with_capacity(BUF_CAPACITY.max(bytes.len())));
        buf.clear();
        buf.extend_from_slice(bytes);
        buf
    }

    /// Offer a packet sent by `from` at `now`; the link decides drop/dup/corrupt/delay.
    pub fn send(&mut self, now: Instant, from: Side, packet: &[u8]) {
        let d = from.index();
        self.dirs[d].stats.sent += 1;

        // 1. Bottleneck queue and serialisation.
        let now_ns = now.micros().saturating_mul(1000);
        let depart = match self.dirs[d].imp.rate_bps {
            Some(rate) if rate > 0 => {
                let dir = &mut self.dirs[d];
                while dir.queue.front().is_some_and(|&finish| finish <= now_ns) {
                    dir.queue.pop_front();
                }
                if dir.queue.len() >= dir.imp.queue_limit {
                    dir.stats.dropped_queue += 1;
                    return;
                }
                let bits = packet.len() as u128 * 8;
                let tx_ns = (bits * 1_000_000_000).div_ceil(rate as u128).min(u64::MAX as u128) as u64;
                let finish = dir.busy_until_ns.max(now_ns).saturating_add(tx_ns);
                dir.busy_until_ns = finish;
                dir.queue.push_back(finish);
                Instant::from_micros(finish.div_ceil(1000))
            }
            _ => now,
        };

        // 2. Random loss.
        let loss = self.dirs[d].imp.loss;
        if self.dirs[d].rng.chance(loss) {
            self.dirs[d].stats.dropped_loss += 1;
            return;
        }

        let mut buf = self.take_buf(packet);
        let dir = &mut self.dirs[d];

        // 3. Corruption: exactly one bit.
        if dir.rng.chance(dir.imp.corrupt) && !buf.is_empty() {
            let bit = dir.rng.gen_range(0, buf.len() as u64 * 8);
            buf[(bit / 8) as usize] ^= 1 << (bit % 8);
            dir.stats.corrupted += 1;
        }

        // 4. Propagation delay, jitter, reordering hold-back.
        let mut at = depart + dir.imp.delay;
        if !dir.imp.jitter.is_zero() {
            at += dir.uniform(Duration::ZERO, dir.imp.jitter);
        }
        if dir.rng.chance(dir.imp.reorder) {
            let max = dir.imp.reorder_extra;
            at += dir.uniform(max / 3, max);
            dir.stats.reordered += 1;
        }

        // 5. Duplication.
        let dup = dir.rng.chance(dir.imp.dup);
        dir.stats.in_flight += 1;
        let to = from.other();
        let copy = if dup {
            self.dirs[d].stats.duplicated += 1;
            self.dirs[d].stats.in_flight += 1;
            Some(self.take_buf(&buf))
        } else {
            None
        };
        self.push(at, to, buf);
        if let Some(copy) = copy {
            self.push(at, to, copy);
        }
    }

    fn push(&mut self, at: Instant, to: Side, buf: Vec<u8>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(InFlight { at, seq, to, buf });
    }

    /// The next packet due at or before `now`, and the side it is delivered to.
    pub fn recv(&mut self, now: Instant) -> Option<(Side, Packet)> {
        if self.heap.peek()?.at > now {
            return None;
        }
        let p = self.heap.pop()?;
        let stats = &mut self.dirs[p.to.other().index()].stats;
        stats.delivered += 1;
        stats.in_flight -= 1;
        Some((p.to, Packet { buf: p.buf }))
    }

    /// Give a delivered packet's buffer back for reuse.
    pub fn recycle(&mut self, packet: Packet) {
        if self.pool.len() < POOL_MAX {
            self.pool.push(packet.buf);
        }
    }

    /// When the next packet is due, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.heap.peek().map(|p| p.at)
    }

    /// Packets in flight in both directions.
    pub fn in_flight(&self) -> usize {
        self.heap.len()
    }

    /// Counters of both directions.
    pub fn stats(&self) -> LinkStats {
        LinkStats { a_to_b: self.dirs[0].stats, b_to_a: self.dirs[1].stats }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn drain(link: &mut Link, until: Instant) -> Vec<(Instant, Side, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(at) = link.next_delivery() {
            if at > until {
                break;
            }
            let (side, p) = link.recv(at).expect("due packet");
            out.push((at, side, p.to_vec()));
            link.recycle(p);
        }
        out
    }

    fn check_invariant(s: &DirStats) {
        assert_eq!(
            s.sent + s.duplicated,
            s.delivered + s.dropped_loss + s.dropped_queue + s.in_flight,
            "{s:?}"
        );
    }

    #[test]
    fn perfect_link_preserves_order_bytes_and_delay() {
        let mut link = Link::new(1, Impairments::with_delay(ms(10)), Impairments::with_delay(ms(20)));
        for i in 0..50u8 {
            link.send(t(i as u64), Side::A, &[i, i.wrapping_mul(3), 0xee]);
        }
        link.send(t(5), Side::B, b"back");
        assert_eq!(link.next_delivery(), Some(t(10)));
        assert!(link.recv(t(9)).is_none());
        let got = drain(&mut link, t(1000));
        let a_to_b: Vec<_> = got.iter().filter(|g| g.1 == Side::B).collect();
        assert_eq!(a_to_b.len(), 50);
        for (i, (at, _, bytes)) in a_to_b.iter().enumerate() {
            let i = i as u8;
            assert_eq!(*at, t(i as u64 + 10));
            assert_eq!(bytes, &vec![i, i.wrapping_mul(3), 0xee]);
        }
        let back: Vec<_> = got.iter().filter(|g| g.1 == Side::A).collect();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].0, t(25));
        assert_eq!(back[0].2, b"back".to_vec());
        let s = link.stats();
        assert_eq!(s.a_to_b.sent, 50);
        assert_eq!(s.a_to_b.delivered, 50);
        assert_eq!(s.b_to_a.delivered, 1);
        check_invariant(&s.a_to_b);
        check_invariant(&s.b_to_a);
        assert_eq!(link.in_flight(), 0);
    }

    /// TUN offload (issue 12): a 64 KiB super-segment crosses as one packet, intact, and
    /// a rate-limited link serialises it by its real length.
    #[test]
    fn super_segment_crosses_whole_and_serialises_by_its_length() {
        let imp = Impairments { rate_bps: Some(8_000_000), queue_limit: 4, ..Impairments::none() };
        let mut link = Link::new(1, imp, Impairments::none());
        let big: Vec<u8> = (0..65_535u32).map(|i| (i * 7 % 251) as u8).collect();
        link.send(t(0), Side::A, &big);
        link.send(t(0), Side::A, b"small");
        let got = drain(&mut link, t(1000));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].2, big, "one packet, byte-exact");
        // 65535 bytes at 1 MB/s: 65.535 ms on the wire (rounded up to the microsecond).
        assert_eq!(got[0].0, Instant::from_micros(65_535));
        assert_eq!(got[1].2, b"small");
    }

    #[test]
    fn zero_delay_delivers_at_send_time() {
        let mut link = Link::new(1, Impairments::none(), Impairments::none());
        link.send(t(7), Side::B, b"x");
        let (side, p) = link.recv(t(7)).unwrap();
        assert_eq!(side, Side::A);
        assert_eq!(&*p, b"x");
    }

    #[test]
    fn loss_one_drops_everything() {
        let imp = Impairments { loss: 1.0, ..Impairments::with_delay(ms(1)) };
        let mut link = Link::new(2, imp, Impairments::none());
        for i in 0..100 {
            link.send(t(i), Side::A, &[1, 2, 3]);
        }
        assert_eq!(link.next_delivery(), None);
        assert!(link.recv(t(10_000)).is_none());
        let s = link.stats().a_to_b;
        assert_eq!((s.sent, s.dropped_loss, s.delivered), (100, 100, 0));
        check_invariant(&s);
    }

    #[test]
    fn partial_loss_rate_is_roughly_right() {
        let imp = Impairments { loss: 0.1, ..Impairments::none() };
        let mut link = Link::new(3, imp, Impairments::none());
        for i in 0..20_000 {
            link.send(t(i), Side::A, &[0; 40]);
            if let Some((_, p)) = link.recv(t(i)) {
                link.recycle(p);
            }
        }
        let s = link.stats().a_to_b;
        assert!((1_700..2_300).contains(&s.dropped_loss), "{s:?}");
        check_invariant(&s);
    }

    #[test]
    fn dup_one_doubles() {
        let imp = Impairments { dup: 1.0, ..Impairments::with_delay(ms(2)) };
        let mut link = Link::new(4, imp, Impairments::none());
        for i in 0..10u8 {
            link.send(t(i as u64), Side::A, &[i]);
        }
        let got = drain(&mut link, t(100));
        assert_eq!(got.len(), 20);
        for (k, (at, side, bytes)) in got.iter().enumerate() {
            let i = (k / 2) as u8;
            assert_eq!(*side, Side::B);
            assert_eq!(*at, t(i as u64 + 2));
            assert_eq!(bytes, &vec![i]);
        }
        let s = link.stats().a_to_b;
        assert_eq!((s.sent, s.duplicated, s.delivered), (10, 10, 20));
        check_invariant(&s);
    }

    #[test]
    fn corrupt_flips_exactly_one_bit() {
        let imp = Impairments { corrupt: 1.0, ..Impairments::none() };
        let mut link = Link::new(5, imp, Impairments::none());
        let orig: Vec<u8> = (0..=255u8).collect();
        let mut positions = std::collections::HashSet::new();
        for i in 0..200 {
            link.send(t(i), Side::A, &orig);
            let (_, p) = link.recv(t(i)).unwrap();
            assert_eq!(p.len(), orig.len());
            let diff: u32 = p.iter().zip(&orig).map(|(a, b)| (a ^ b).count_ones()).sum();
            assert_eq!(diff, 1);
            positions.insert(p.iter().zip(&orig).position(|(a, b)| a != b));
            link.recycle(p);
        }
        assert!(positions.len() > 50, "bit positions should vary: {}", positions.len());
        assert_eq!(link.stats().a_to_b.corrupted, 200);
        // An empty packet cannot be corrupted and passes unchanged.
        link.send(t(1000), Side::A, &[]);
        assert_eq!(link.recv(t(1000)).unwrap().1.len(), 0);
    }

    #[test]
    fn rate_limit_spaces_packets() {
        // 1000-byte packets at 8 Mbit/s: 1 ms each.
        let imp = Impairments { rate_bps: Some(8_000_000), ..Impairments::with_delay(ms(5)) };
        let mut link = Link::new(6, imp, Impairments::none());
        for _ in 0..5 {
            link.send(t(0), Side::A, &[0u8; 1000]);
        }
        // After the queue drains, the next packet is not delayed by it.
        link.send(t(100), Side::A, &[0u8; 500]);
        let times: Vec<Instant> = drain(&mut link, t(1000)).iter().map(|g| g.0).collect();
        assert_eq!(times, vec![t(6), t(7), t(8), t(9), t(10), Instant::from_micros(105_500)]);
    }

    #[test]
    fn queue_limit_tail_drops() {
        let imp = Impairments { rate_bps: Some(8_000_000), queue_limit: 3, ..Impairments::none() };
        let mut link = Link::new(7, imp, Impairments::none());
        for _ in 0..5 {
            link.send(t(0), Side::A, &[0u8; 1000]);
        }
        // At 1.5 ms the first packet has left the queue: one more fits.
        link.send(Instant::from_micros(1500), Side::A, &[0u8; 1000]);
        link.send(Instant::from_micros(1500), Side::A, &[0u8; 1000]);
        let s = link.stats().a_to_b;
        assert_eq!(s.dropped_queue, 3);
        let times: Vec<Instant> = drain(&mut link, t(1000)).iter().map(|g| g.0).collect();
        assert_eq!(times, vec![t(1), t(2), t(3), t(4)]);
        check_invariant(&link.stats().a_to_b);
    }

    #[test]
    fn reordering_lets_later_packets_overtake() {
        let imp = Impairments { reorder: 0.3, ..Impairments::with_delay(ms(10)) };
        let mut link = Link::new(8, imp, Impairments::none());
        for i in 0..200u64 {
            link.send(Instant::from_micros(i * 500), Side::A, &i.to_be_bytes());
        }
        let got = drain(&mut link, t(10_000));
        assert_eq!(got.len(), 200);
        let order: Vec<u64> = got.iter().map(|g| u64::from_be_bytes(g.2[..8].try_into().unwrap())).collect();
        let inversions = order.windows(2).filter(|w| w[0] > w[1]).count();
        assert!(inversions > 10, "{inversions}");
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..200).collect::<Vec<_>>());
        let s = link.stats().a_to_b;
        assert!((30..90).contains(&s.reordered), "{s:?}");
        // Held-back packets arrive within delay + reorder_extra.
        for (at, _, bytes) in &got {
            let i = u64::from_be_bytes(bytes[..8].try_into().unwrap());
            let sent = Instant::from_micros(i * 500);
            assert!(*at >= sent + ms(10) && *at <= sent + ms(13));
        }
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let imp = Impairments { jitter: ms(4), ..Impairments::with_delay(ms(10)) };
        let mut link = Link::new(9, imp, Impairments::none());
        for i in 0..100u64 {
            link.send(t(i * 100), Side::A, &i.to_be_bytes());
        }
        let got = drain(&mut link, t(100_000));
        let mut extra_seen = false;
        for (at, _, bytes) in &got {
            let i = u64::from_be_bytes(bytes[..8].try_into().unwrap());
            let base = t(i * 100) + ms(10);
            assert!(*at >= base && *at <= base + ms(4));
            extra_seen |= *at > base;
        }
        assert!(extra_seen);
    }

    fn run_scenario(seed: u64) -> (Vec<(Instant, Side, Vec<u8>)>, LinkStats) {
        let imp = Impairments {
            loss: 0.1,
            dup: 0.05,
            reorder: 0.1,
            corrupt: 0.05,
            delay: ms(3),
            jitter: ms(1),
            reorder_extra: ms(3),
            rate_bps: Some(10_000_000),
            queue_limit: 8,
        };
        let mut link = Link::new(seed, imp.clone(), Impairments { loss: 0.2, ..imp });
        let mut out = Vec::new();
        for i in 0..2000u64 {
            let now = Instant::from_micros(i * 300);
            let side = if i % 3 == 0 { Side::B } else { Side::A };
            let len = 40 + (i % 1400) as usize;
            let pkt: Vec<u8> = (0..len).map(|k| (k as u64 ^ i) as u8).collect();
            link.send(now, side, &pkt);
            while let Some((to, p)) = link.recv(now) {
                out.push((now, to, p.to_vec()));
                link.recycle(p);
            }
        }
        out.extend(drain(&mut link, Instant::from_micros(u64::MAX)));
        (out, link.stats())
    }

    #[test]
    fn same_seed_same_deliveries() {
        let (a, sa) = run_scenario(99);
        let (b, sb) = run_scenario(99);
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        let (c, _) = run_scenario(100);
        assert_ne!(a, c);
    }

    #[test]
    fn stats_are_consistent_under_all_impairments() {
        let (out, s) = run_scenario(5);
        for d in [&s.a_to_b, &s.b_to_a] {
            check_invariant(d);
            assert_eq!(d.in_flight, 0);
            assert!(d.dropped_loss > 0 && d.duplicated > 0 && d.reordered > 0 && d.corrupted > 0, "{d:?}");
            assert!(d.dropped_queue > 0, "{d:?}");
        }
        let to_b = out.iter().filter(|o| o.1 == Side::B).count() as u64;
        assert_eq!(to_b, s.a_to_b.delivered);
        assert_eq!(out.len() as u64 - to_b, s.b_to_a.delivered);
    }

    #[test]
    fn buffers_are_reused_through_recycle() {
        let mut link = Link::new(10, Impairments::none(), Impairments::none());
        link.send(t(0), Side::A, &[1; 100]);
        let (_, p) = link.recv(t(0)).unwrap();
        let ptr = p.as_ptr();
        link.recycle(p);
        link.send(t(1), Side::B, &[2; 200]);
        let (side, p) = link.recv(t(1)).unwrap();
        assert_eq!(side, Side::A);
        assert_eq!(p.as_ptr(), ptr);
        assert_eq!(&*p, &[2u8; 200][..]);
    }

    #[test]
    fn set_impairments_changes_future_packets_only() {
        let mut link = Link::new(11, Impairments::with_delay(ms(1)), Impairments::none());
        link.send(t(0), Side::A, b"before");
        link.set_impairments(Side::A, Impairments { loss: 1.0, ..Impairments::none() });
        assert_eq!(link.impairments(Side::A).loss, 1.0);
        link.send(t(0), Side::A, b"after");
        let got = drain(&mut link, t(10));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].2, b"before".to_vec());
    }

    proptest::proptest! {
        #[test]
        fn invariant_holds_for_any_impairments(
            seed in proptest::prelude::any::<u64>(),
            probs in proptest::collection::vec(0.0f64..=1.0, 8),
            delay_us in 0u64..20_000,
            jitter_us in 0u64..5_000,
            rate in proptest::option::of(1u64..100_000_000),
            queue_limit in 0usize..20,
            sends in proptest::collection::vec((0u64..2_000, 0usize..1600, proptest::prelude::any::<bool>()), 0..200),
        ) {
            let imp = |o: usize| Impairments {
                loss: probs[o], dup: probs[o + 1], reorder: probs[o + 2], corrupt: probs[o + 3],
                delay: Duration::from_micros(delay_us), jitter: Duration::from_micros(jitter_us),
                reorder_extra: ms(3), rate_bps: rate, queue_limit,
            };
            let mut link = Link::new(seed, imp(0), imp(4));
            let mut now = Instant::ZERO;
            let buf = [0x5au8; 1600];
            for (gap, len, from_a) in sends {
                now += Duration::from_micros(gap);
                link.send(now, if from_a { Side::A } else { Side::B }, &buf[..len]);
                while let Some((_, p)) = link.recv(now) {
                    proptest::prop_assert!(p.len() <= 1600);
                    link.recycle(p);
                }
                if let Some(next) = link.next_delivery() {
                    proptest::prop_assert!(next > now);
                }
            }
            let s = link.stats();
            check_invariant(&s.a_to_b);
            check_invariant(&s.b_to_a);
            proptest::prop_assert_eq!((s.a_to_b.in_flight + s.b_to_a.in_flight) as usize, link.in_flight());
            drain(&mut link, Instant::from_micros(u64::MAX));
            proptest::prop_assert_eq!(link.in_flight(), 0);
        }
    }
}
