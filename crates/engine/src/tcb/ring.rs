//! The pooled byte ring under both connection buffers ([`super::sendbuf::SendBuffer`] and
//! [`super::reassembly::RecvBuffer`]).
//!
//! A `Ring` is storage only: a `Vec<u8>` used circularly from `head`, with a logical
//! capacity (`Config::send_buffer` / `recv_buffer`, SO_SNDBUF / SO_RCVBUF). The owner
//! knows how many bytes from `head` it holds and passes that count (`keep`) when the
//! storage moves. Storage grows on demand in powers of two (`ring_size`), each growth
//! granted by the Stack's [`MemPool`] (issue 9, `Config::buffer_memory`); a ring empty for
//! a whole sweep interval is given back. The steady-state data path neither allocates nor
//! frees.

use crate::memory::{MemPool, ring_size};
use std::sync::Arc;

/// Circular storage accounted in a [`MemPool`].
#[derive(Debug, Default)]
pub(crate) struct Ring {
    /// Backing storage; its length is the ring size, at most `cap`.
    buf: Vec<u8>,
    /// Logical capacity.
    cap: usize,
    /// Ring index of logical offset 0.
    head: usize,
    /// The Stack's buffer budget; `None` for a standalone buffer.
    pool: Option<Arc<MemPool>>,
    /// Empty and unused since the last sweep.
    idle: bool,
}

impl Ring {
    /// A ring of logical capacity `cap`; storage is allocated on first use.
    pub(crate) fn new(cap: usize) -> Ring {
        Ring { buf: Vec::new(), cap, head: 0, pool: None, idle: false }
    }

    /// Account this ring's storage in `pool` from now on.
    pub(crate) fn set_pool(&mut self, pool: Arc<MemPool>) {
        if let Some(old) = self.pool.take() {
            old.shrink(self.buf.len());
        }
        pool.force_grow(self.buf.len());
        self.pool = Some(pool);
    }

    /// The pool, if any (for its pressure flag and counters).
    #[inline]
    pub(crate) fn pool(&self) -> Option<&MemPool> {
        self.pool.as_deref()
    }

    /// Logical capacity.
    #[inline]
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Bytes of storage allocated now (the ring size).
    #[inline]
    pub(crate) fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Ring index of logical offset `off` (`off <= ring size`).
    #[inline]
    fn phys(&self, off: usize) -> usize {
        let i = self.head + off;
        if i >= self.buf.len() { i - self.buf.len() } else { i }
    }

    /// Logical offsets `[off, off + n)` as up to two slices (the second is non-empty only
    /// when the range wraps). `off + n` must be within the ring size.
    #[inline]
    pub(crate) fn slices(&self, off: usize, n: usize) -> (&[u8], &[u8]) {
        if n == 0 {
            return (&[], &[]);
        }
        let p = self.phys(off);
        let first = n.min(self.buf.len() - p);
        (&self.buf[p..p + first], &self.buf[..n - first])
    }

    /// The contiguous part of logical offsets `[off, off + n)` starting at `off`, to
    /// write into (zero-copy send). `off + n` must be within the ring size.
    pub(crate) fn contiguous_mut(&mut self, off: usize, n: usize) -> &mut [u8] {
        if n == 0 {
            return &mut [];
        }
        self.idle = false;
        let p = self.phys(off);
        let first = n.min(self.buf.len() - p);
        &mut self.buf[p..p + first]
    }

    /// Copy `data` in at logical offset `off` (`off + data.len() <= ring size`).
    #[inline]
    pub(crate) fn copy_in(&mut self, off: usize, data: &[u8]) {
        self.idle = false;
        let ring = self.buf.len();
        let p = self.phys(off);
        let first = data.len().min(ring - p);
        self.buf[p..p + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
    }

    /// Mark the ring used (not idle) without writing to it.
    #[inline]
    pub(crate) fn touch(&mut self) {
        self.idle = false;
    }

    /// Move logical offset 0 forward by `n` bytes (consumed from the front).
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        self.head = self.phys(n);
    }

    /// Restart at index 0 (the owner holds nothing), so later writes stay contiguous longer.
    #[inline]
    pub(crate) fn rewind(&mut self) {
        self.head = 0;
    }

    /// Move the first `keep` bytes into a new ring of `size` bytes at index 0. The old
    /// storage leaves the pool; the caller accounts the new one (`grant`, `force_grow`).
    fn relayout(&mut self, size: usize, keep: usize) {
        let keep = keep.min(size).min(self.buf.len());
        let mut nb = Vec::with_capacity(size);
        let (a, b) = self.slices(0, keep);
        nb.extend_from_slice(a);
        nb.extend_from_slice(b);
        nb.resize(size, 0);
        if let Some(p) = &self.pool {
            p.shrink(self.buf.len());
        }
        self.buf = nb;
        self.head = 0;
    }

    /// Grow the storage to hold `need` bytes from `head`, keeping the first `keep`, if the
    /// pool allows (`ooo`: for out-of-order data, refused under pressure).
    pub(crate) fn ensure(&mut self, need: usize, keep: usize, ooo: bool) -> bool {
        if need <= self.buf.len() {
            return true;
        }
        let size = ring_size(need, self.cap);
        if let Some(p) = &self.pool
            && !p.grant(size, ooo)
        {
            return false;
        }
        self.relayout(size, keep);
        true
    }

    /// Shrink the storage to `size` bytes keeping the first `keep` (a lowered capacity,
    /// pruned out-of-order data). Does nothing unless the ring is larger than `size`.
    pub(crate) fn shrink_to(&mut self, size: usize, keep: usize) {
        if self.buf.len() > size {
            self.relayout(size, keep);
            if let Some(p) = &self.pool {
                p.force_grow(size);
            }
        }
    }

    /// Change the logical capacity; storage larger than it shrinks at once (keeping the
    /// first `keep` bytes), growth stays lazy.
    pub(crate) fn set_cap(&mut self, cap: usize, keep: usize) {
        self.cap = cap;
        self.shrink_to(cap, keep);
    }

    /// Give the storage back (the owner holds nothing); returns the bytes freed.
    pub(crate) fn release(&mut self) -> usize {
        let n = self.buf.len();
        if n == 0 {
            return 0;
        }
        if let Some(p) = &self.pool {
            p.shrink(n);
            p.count_released();
        }
        self.buf = Vec::new();
        self.head = 0;
        n
    }

    /// The Stack's periodic sweep: storage that stayed `empty` and unused for a whole
    /// interval is released. Returns the bytes freed.
    pub(crate) fn sweep_idle(&mut self, empty: bool) -> usize {
        if !empty || self.buf.is_empty() {
            self.idle = false;
            return 0;
        }
        if !self.idle {
            self.idle = true;
            return 0;
        }
        self.release()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if let Some(p) = &self.pool {
            p.shrink(self.buf.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_keeps_and_wraps() {
        let mut r = Ring::new(16);
        assert_eq!(r.allocated(), 0);
        assert!(r.ensure(3, 0, false));
        let small = r.allocated();
        assert!((3..=16).contains(&small));
        r.copy_in(0, b"abc");
        r.advance(2);
        assert!(r.ensure(16, 1, false));
        assert_eq!(r.allocated(), 16);
        assert_eq!(r.slices(0, 1), (&b"c"[..], &[][..]));
        r.advance(1);
        r.rewind();
        r.advance(14);
        r.copy_in(0, b"wxyz");
        assert_eq!(r.slices(0, 4), (&b"wx"[..], &b"yz"[..]));
        assert_eq!(r.contiguous_mut(1, 3).len(), 1);
    }

    #[test]
    fn pool_accounting_and_idle_release() {
        let pool = Arc::new(MemPool::new(1 << 20));
        let mut r = Ring::new(1 << 16);
        r.set_pool(pool.clone());
        assert!(r.ensure(100, 0, false));
        let size = r.allocated();
        assert_eq!(pool.used(), size);
        assert_eq!(r.sweep_idle(false), 0);
        assert_eq!(r.sweep_idle(true), 0, "the first empty sweep only marks it idle");
        assert_eq!(r.sweep_idle(true), size);
        assert_eq!(pool.used(), 0);
        assert!(r.ensure(10, 0, false));
        r.set_cap(8, 0);
        assert_eq!((r.cap(), r.allocated(), pool.used()), (8, 8, 8));
        drop(r);
        assert_eq!(pool.used(), 0);
    }
}
