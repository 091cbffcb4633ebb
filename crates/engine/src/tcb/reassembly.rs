//! Receive buffer with out-of-order reassembly bounded by the receive window.
//!
//! RFC 9293 §3.10.7.4 ("seventh, process the segment text"): in-order text is delivered to
//! the user's receive buffer and RCV.NXT advances over it; segments that start beyond
//! RCV.NXT but inside the window may be held until the gap is filled. RFC 9293 §3.8.6: the
//! window offered is the free space of this buffer, so out-of-order text always fits in
//! the part of the ring that lies after the readable bytes.
//!
//! Layout of the ring (`capacity()` bytes), starting at `head`:
//!
//! ```text
//! [ readable (in order, not yet read) ][ window: holes and out-of-order ranges ]
//!                                      ^ RCV.NXT
//! ```
//!
//! Out-of-order ranges are kept sorted, merged (no overlap, no adjacency) and bounded by
//! `max_ranges`; they are also the source of SACK blocks (RFC 2018 §4). They are stored as
//! absolute stream positions (bytes since the buffer was created), so advancing RCV.NXT
//! never rewrites them.
//!
//! The ring grows on demand up to `capacity()` and is accounted in the Stack's [`MemPool`]
//! (issue 9, `Config::buffer_memory`): under pressure out-of-order data may not grow it,
//! the window offered stops growing past the storage held, and the sweep prunes held
//! out-of-order data (`prune_ooo`) and releases idle rings (`sweep_idle`).

use super::ring::Ring;
use crate::memory::{MemPool, RING_MIN, ring_size};
use std::sync::Arc;

/// Default bound on held out-of-order ranges.
pub const DEFAULT_MAX_RANGES: usize = 32;

/// Receive ring with out-of-order reassembly.
#[derive(Debug)]
pub struct RecvBuffer {
    /// Storage; logical offset 0 is the first readable byte.
    ring: Ring,
    /// In-order bytes not yet read by the application.
    readable: usize,
    /// Absolute stream position of RCV.NXT (first byte not yet received in order).
    rcv_nxt: u64,
    /// Held out-of-order ranges, absolute `[start, end)`, sorted, disjoint, non-adjacent,
    /// all strictly after `rcv_nxt` and within the window.
    ranges: Vec<(u64, u64)>,
    max_ranges: usize,
}

impl Default for RecvBuffer {
    fn default() -> Self {
        RecvBuffer::with_capacity(0)
    }
}

impl RecvBuffer {
    /// An empty buffer of `cap` bytes holding at most `DEFAULT_MAX_RANGES` out-of-order
    /// ranges. Storage is allocated on first use.
    pub fn with_capacity(cap: usize) -> Self {
        RecvBuffer::with_limits(cap, DEFAULT_MAX_RANGES)
    }

    /// An empty buffer of `cap` bytes holding at most `max_ranges` out-of-order ranges.
    pub fn with_limits(cap: usize, max_ranges: usize) -> Self {
        RecvBuffer {
            ring: Ring::new(cap),
            readable: 0,
            rcv_nxt: 0,
            ranges: Vec::with_capacity(max_ranges),
            max_ranges,
        }
    }

    /// Account this buffer's storage in `pool` from now on.
    pub fn set_pool(&mut self, pool: Arc<MemPool>) {
        self.ring.set_pool(pool);
    }

    /// Bytes of storage allocated now.
    #[inline]
    pub fn allocated(&self) -> usize {
        self.ring.allocated()
    }

    #[inline]
    /// The buffer size in bytes (the most that can be readable plus out of order).
    pub fn capacity(&self) -> usize {
        self.ring.cap()
    }

    /// In-order bytes available to the application.
    #[inline]
    pub fn readable(&self) -> usize {
        self.readable
    }

    /// Space the receiver can advertise (RFC 9293 §3.8.6): `capacity - readable`.
    /// Out-of-order data sits inside this space and does not reduce it. Under memory
    /// pressure only the storage held (at least `RING_MIN`) counts.
    #[inline]
    pub fn window(&self) -> usize {
        let cap = self.ring.cap();
        let limit = match self.ring.pool() {
            Some(p) if p.under_pressure() => self.ring.allocated().max(RING_MIN).min(cap),
            _ => cap,
        };
        limit.saturating_sub(self.readable)
    }

    #[inline]
    /// The most out-of-order ranges held at once.
    pub fn max_ranges(&self) -> usize {
        self.max_ranges
    }

    /// Change the bound on held out-of-order ranges; if lowered below the current count,
    /// the ranges furthest from RCV.NXT are forgotten (the sender will retransmit them).
    pub fn set_max_ranges(&mut self, max_ranges: usize) {
        self.max_ranges = max_ranges;
        self.ranges.truncate(max_ranges);
        if self.ranges.capacity() < max_ranges {
            self.ranges.reserve_exact(max_ranges - self.ranges.len());
        }
    }

    /// Any range held out of order (the fast path's test, tcb/fast_path.rs).
    #[inline]
    pub fn has_ooo(&self) -> bool {
        !self.ranges.is_empty()
    }

    /// Total bytes held out of order.
    pub fn ooo_bytes(&self) -> usize {
        self.ranges.iter().map(|&(s, e)| (e - s) as usize).sum()
    }

    /// Held out-of-order ranges as `(start, end)` offsets relative to RCV.NXT, ascending
    /// (for SACK blocks, RFC 2018). `start > 0` always.
    pub fn ooo_ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let nxt = self.rcv_nxt;
        self.ranges.iter().map(move |&(s, e)| ((s - nxt) as usize, (e - nxt) as usize))
    }

    /// Bytes from `head` to the end of the last held range.
    fn held_span(&self) -> usize {
        match self.ranges.last() {
            Some(&(_, e)) => self.readable + (e - self.rcv_nxt) as usize,
            None => self.readable,
        }
    }

    /// Drop every held out-of-order range and shrink the ring to the readable bytes
    /// (memory pressure, like Linux's tcp_prune_ofo_queue; RFC 2018 §8 lets a receiver
    /// discard data it has SACKed). Returns the bytes pruned.
    pub fn prune_ooo(&mut self) -> usize {
        let n = self.ooo_bytes();
        if n == 0 {
            return 0;
        }
        self.ranges.clear();
        if let Some(p) = self.ring.pool() {
            p.count_ofo_pruned(n);
        }
        self.ring.shrink_to(ring_size(self.readable, self.ring.cap()), self.readable);
        n
    }

    /// Nothing readable or held out of order.
    fn is_empty(&self) -> bool {
        self.readable == 0 && self.ranges.is_empty()
    }

    /// Give the storage back if nothing is held; returns the bytes freed.
    pub fn release(&mut self) -> usize {
        if self.is_empty() { self.ring.release() } else { 0 }
    }

    /// Called by the Stack's periodic sweep: a ring empty and unused for a whole interval
    /// is released. Returns the bytes freed.
    pub fn sweep_idle(&mut self) -> usize {
        self.ring.sweep_idle(self.is_empty())
    }

    /// Place `data` whose first byte is `offset` bytes after RCV.NXT (0 = in order).
    /// Bytes beyond the window are discarded. Returns how far RCV.NXT advanced, i.e. how
    /// many bytes became readable (including held out-of-order data now contiguous).
    ///
    /// A new disjoint out-of-order range that would exceed `max_ranges` is not stored
    /// (returns 0); an in-order write is always accepted up to the window.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> usize {
        // RFC 9293 §3.10.7.4 / §3.8.6: keep only the part of the text inside the window.
        let win = self.window();
        if offset >= win || data.is_empty() {
            return 0;
        }
        let mut len = data.len().min(win - offset);
        if !self.ring.ensure(self.readable + offset + len, self.held_span(), offset > 0) {
            // The buffer cap refused storage: out-of-order text is not kept; in-order
            // text is kept as far as the ring reaches (the peer retransmits the rest).
            let room = self.ring.allocated().saturating_sub(self.readable + offset);
            if offset > 0 || room == 0 {
                self.count_refused(offset > 0, len);
                return 0;
            }
            self.count_refused(false, len - room.min(len));
            len = room.min(len);
        }
        let data = &data[..len];
        let start = self.rcv_nxt + offset as u64;
        let end = start + len as u64;

        if offset == 0 {
            self.ring.copy_in(self.readable, data);
            // Absorb held ranges now touching or overlapped by the in-order text.
            let mut new_nxt = end;
            let mut k = 0;
            while k < self.ranges.len() && self.ranges[k].0 <= new_nxt {
                new_nxt = new_nxt.max(self.ranges[k].1);
                k += 1;
            }
            self.ranges.drain(..k);
            let adv = (new_nxt - self.rcv_nxt) as usize;
            self.rcv_nxt = new_nxt;
            self.readable += adv;
            return adv;
        }

        // Out of order: merge [start, end) into the sorted range set.
        // i = first range that ends at or after `start` (overlapping or adjacent on the left).
        let i = self.ranges.partition_point(|&(_, e)| e < start);
        // j = first range starting strictly after `end` (not touching on the right).
        let j = i + self.ranges[i..].partition_point(|&(s, _)| s <= end);
        if i == j {
            if self.ranges.len() >= self.max_ranges {
                return 0;
            }
            self.ring.copy_in(self.readable + offset, data);
            self.ranges.insert(i, (start, end));
        } else {
            self.ring.copy_in(self.readable + offset, data);
            let merged = (self.ranges[i].0.min(start), self.ranges[j - 1].1.max(end));
            self.ranges[i] = merged;
            self.ranges.drain(i + 1..j);
        }
        0
    }

    fn count_refused(&self, ooo: bool, bytes: usize) {
        if let Some(p) = self.ring.pool() {
            if ooo { p.count_ofo_pruned(bytes) } else { p.count_rcv_pruned(bytes) }
        }
    }

    /// The readable bytes as up to two slices (ring wrap).
    pub fn peek_slices(&self) -> (&[u8], &[u8]) {
        self.ring.slices(0, self.readable)
    }

    /// Copy readable bytes into `buf` without consuming them; returns the count.
    pub fn peek(&self, buf: &mut [u8]) -> usize {
        let (a, b) = self.peek_slices();
        let na = a.len().min(buf.len());
        buf[..na].copy_from_slice(&a[..na]);
        let nb = b.len().min(buf.len() - na);
        buf[na..na + nb].copy_from_slice(&b[..nb]);
        na + nb
    }

    /// Drop `n` readable bytes (clipped to `readable()`), opening the window by as much.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.readable);
        self.readable -= n;
        if self.is_empty() { self.ring.rewind() } else { self.ring.advance(n) }
    }

    /// Copy readable bytes into `buf` and consume them; returns the count.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = self.peek(buf);
        self.consume(n);
        n
    }

    /// Forget all readable and out-of-order data (RCV.NXT is unchanged in stream terms;
    /// the caller resets its own sequence state).
    pub fn clear(&mut self) {
        self.readable = 0;
        self.ring.rewind();
        self.ranges.clear();
    }

    /// Change the capacity, keeping readable data (never below `readable()`). Held
    /// out-of-order bytes beyond the new window are forgotten. Shrinking the window is
    /// discouraged by RFC 9293 §3.8.6; that policy is the caller's. Reallocates.
    pub fn set_capacity(&mut self, cap: usize) {
        let cap = cap.max(self.readable);
        if cap == self.ring.cap() {
            return;
        }
        // Clip held ranges to the new window.
        let limit = self.rcv_nxt + (cap - self.readable) as u64;
        self.ranges.retain(|&(s, _)| s < limit);
        if let Some(last) = self.ranges.last_mut() {
            last.1 = last.1.min(limit);
        }
        self.ring.set_cap(cap, self.held_span());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(rb: &mut RecvBuffer) -> Vec<u8> {
        let mut out = vec![0u8; rb.readable()];
        let n = rb.read(&mut out);
        out.truncate(n);
        out
    }

    fn ranges(rb: &RecvBuffer) -> Vec<(usize, usize)> {
        rb.ooo_ranges().collect()
    }

    #[test]
    fn in_order_write_and_read() {
        let mut rb = RecvBuffer::with_capacity(10);
        assert_eq!(rb.write(0, b"hello"), 5);
        assert_eq!(rb.readable(), 5);
        assert_eq!(rb.window(), 5);
        let mut b = [0u8; 3];
        assert_eq!(rb.peek(&mut b), 3);
        assert_eq!(&b, b"hel");
        assert_eq!(rb.read(&mut b), 3);
        assert_eq!(rb.window(), 8);
        assert_eq!(read_all(&mut rb), b"lo");
    }

    #[test]
    fn out_of_order_fill_and_merge() {
        let mut rb = RecvBuffer::with_capacity(20);
        assert_eq!(rb.write(6, b"ghi"), 0);
        assert_eq!(rb.write(2, b"cd"), 0);
        assert_eq!(ranges(&rb), vec![(2, 4), (6, 9)]);
        assert_eq!(rb.ooo_bytes(), 5);
        // Adjacent on the right of (2,4) and on the left of (6,9): all merge.
        assert_eq!(rb.write(4, b"ef"), 0);
        assert_eq!(ranges(&rb), vec![(2, 9)]);
        // Overlapping duplicate.
        assert_eq!(rb.write(5, b"fgh"), 0);
        assert_eq!(ranges(&rb), vec![(2, 9)]);
        assert_eq!(rb.window(), 20);
        assert_eq!(rb.write(0, b"ab"), 9);
        assert_eq!(rb.ooo_bytes(), 0);
        assert_eq!(read_all(&mut rb), b"abcdefghi");
    }

    #[test]
    fn in_order_overlapping_held_range() {
        let mut rb = RecvBuffer::with_capacity(20);
        rb.write(3, b"def");
        rb.write(10, b"k");
        assert_eq!(rb.write(0, b"abcde"), 6);
        assert_eq!(ranges(&rb), vec![(4, 5)]);
        assert_eq!(read_all(&mut rb), b"abcdef");
        assert_eq!(ranges(&rb), vec![(4, 5)]);
    }

    #[test]
    fn clip_to_window() {
        let mut rb = RecvBuffer::with_capacity(8);
        assert_eq!(rb.write(0, b"abcdef"), 6);
        // Window is 2: offset 2 is beyond it, offset 1 fits one byte.
        assert_eq!(rb.write(2, b"x"), 0);
        assert_eq!(rb.write(1, b"yz"), 0);
        assert_eq!(ranges(&rb), vec![(1, 2)]);
        assert_eq!(rb.write(0, b"gyzz"), 2);
        assert_eq!(rb.window(), 0);
        assert_eq!(rb.write(0, b"q"), 0);
        assert_eq!(read_all(&mut rb), b"abcdefgy");
    }

    #[test]
    fn max_ranges_bound() {
        let mut rb = RecvBuffer::with_limits(100, 2);
        rb.write(10, b"a");
        rb.write(20, b"b");
        // A third disjoint range is refused...
        assert_eq!(rb.write(30, b"c"), 0);
        assert_eq!(ranges(&rb), vec![(10, 11), (20, 21)]);
        // ...but extending an existing one is fine, and in-order text always is.
        rb.write(11, b"x");
        assert_eq!(ranges(&rb), vec![(10, 12), (20, 21)]);
        assert_eq!(rb.write(0, b"0123456789"), 12);
        assert_eq!(ranges(&rb), vec![(8, 9)]);
        let mut rb0 = RecvBuffer::with_limits(10, 0);
        assert_eq!(rb0.write(1, b"x"), 0);
        assert_eq!(rb0.ooo_bytes(), 0);
        assert_eq!(rb0.write(0, b"ab"), 2);
    }

    #[test]
    fn wrap_around() {
        let mut rb = RecvBuffer::with_capacity(8);
        assert_eq!(rb.write(0, b"abcdef"), 6);
        let mut b = [0u8; 5];
        rb.read(&mut b);
        // head = 5, one readable byte 'f'; write across the ring end out of order.
        assert_eq!(rb.write(1, b"hijk"), 0);
        assert_eq!(rb.write(0, b"g"), 5);
        let (a, b) = rb.peek_slices();
        assert_eq!(a, b"fgh");
        assert_eq!(b, b"ijk");
        assert_eq!(read_all(&mut rb), b"fghijk");
    }

    #[test]
    fn set_capacity_keeps_data() {
        let mut rb = RecvBuffer::with_capacity(8);
        rb.write(0, b"abcdef");
        rb.consume(4);
        rb.write(0, b"gh"); // readable "efgh", wrapped
        rb.write(1, b"jk"); // ooo, wrapped to ring 1..3
        rb.set_capacity(16);
        assert_eq!(rb.window(), 12);
        assert_eq!(ranges(&rb), vec![(1, 3)]);
        assert_eq!(rb.write(0, b"i"), 3);
        assert_eq!(read_all(&mut rb), b"efghijk");
        // Shrink: clipped to readable, ooo beyond the new window dropped.
        rb.write(0, b"12");
        rb.write(1, b"45678");
        rb.set_capacity(6); // window 4: "78" dropped
        assert_eq!(rb.capacity(), 6);
        assert_eq!(ranges(&rb), vec![(1, 4)]);
        assert_eq!(rb.write(0, b"3"), 4);
        assert_eq!(read_all(&mut rb), b"123456");
        rb.write(0, b"ab");
        rb.write(3, b"d");
        rb.set_capacity(0); // clipped to readable() = 2: no window, ooo dropped
        assert_eq!(rb.capacity(), 2);
        assert_eq!(rb.window(), 0);
        assert_eq!(rb.ooo_bytes(), 0);
        assert_eq!(read_all(&mut rb), b"ab");
    }

    #[test]
    fn zero_capacity() {
        let mut rb = RecvBuffer::with_capacity(0);
        assert_eq!(rb.write(0, b"abc"), 0);
        assert_eq!(rb.window(), 0);
        assert_eq!(rb.peek_slices(), (&[][..], &[][..]));
        rb.consume(3);
        assert_eq!(rb.read(&mut [0u8; 4]), 0);
    }
}
