//! Send buffer: bytes queued by the user that are not yet acknowledged.
//!
//! RFC 9293 §3.3.1 (send sequence space): the buffer holds the bytes from SND.UNA onward.
//! Offset 0 is the byte at SND.UNA; bytes `[SND.NXT - SND.UNA, len())` are queued but not
//! yet sent. The TCB asks for `slices(offset, len)` to build a segment (the two halves are
//! handed to the emitter without copying) and calls `drain(n)` when an ACK moves SND.UNA
//! forward by `n` (RFC 9293 §3.10.7.4, "If SND.UNA < SEG.ACK =< SND.NXT").
//!
//! The storage is the pooled `Ring` shared with the receive buffer (`ring.rs`): it grows
//! on demand up to `capacity()`, is accounted in the Stack's [`MemPool`] and is given back
//! when idle (`sweep_idle`). The steady-state data path neither allocates nor frees.

use super::ring::Ring;
use crate::memory::MemPool;
use std::sync::Arc;

/// Ring buffer of unacknowledged (sent or unsent) bytes.
#[derive(Debug, Default)]
pub struct SendBuffer {
    /// Storage; logical offset 0 is the byte at SND.UNA.
    ring: Ring,
    /// Number of bytes held.
    len: usize,
}

impl SendBuffer {
    /// An empty buffer able to hold `cap` bytes. Storage is allocated on first use.
    pub fn with_capacity(cap: usize) -> Self {
        SendBuffer { ring: Ring::new(cap), len: 0 }
    }

    /// Account this buffer's storage in `pool` from now on.
    pub fn set_pool(&mut self, pool: Arc<MemPool>) {
        self.ring.set_pool(pool);
    }

    /// Maximum number of bytes the buffer can hold.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.ring.cap()
    }

    /// Bytes of storage allocated now.
    #[inline]
    pub fn allocated(&self) -> usize {
        self.ring.allocated()
    }

    /// Number of bytes held (from SND.UNA to the end of the queued data).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Space left for `push`.
    #[inline]
    pub fn free(&self) -> usize {
        self.ring.cap() - self.len
    }

    #[inline]
    /// True when no byte is queued or unacknowledged.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Make room for up to `want` more bytes; returns how many fit. Under the stack's
    /// buffer cap only what the current ring holds is offered.
    fn reserve(&mut self, want: usize) -> usize {
        let n = want.min(self.free());
        if n == 0 {
            return 0;
        }
        self.ring.touch();
        if self.ring.ensure(self.len + n, self.len, false) {
            n
        } else {
            n.min(self.ring.allocated() - self.len)
        }
    }

    /// Append as much of `data` as fits; returns the number of bytes queued. Under the
    /// stack's buffer cap only what the current ring holds is taken.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = self.reserve(data.len());
        if n == 0 {
            return 0;
        }
        self.ring.copy_in(self.len, &data[..n]);
        self.len += n;
        n
    }

    /// Zero-copy append: `f` writes into the contiguous free space after the queued bytes
    /// and returns how many bytes it wrote (clipped to the space offered). The space may
    /// be less than `free()` where the ring wraps; call again for the rest. Returns the
    /// bytes queued.
    pub fn push_with(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> usize {
        let n = self.reserve(self.free());
        let space = self.ring.contiguous_mut(self.len, n);
        let k = if space.is_empty() { 0 } else { f(space).min(space.len()) };
        self.len += k;
        k
    }

    /// The bytes `[offset, offset + len)` clipped to `len()`, as up to two slices (the
    /// second is non-empty only when the range wraps around the end of the ring).
    pub fn slices(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let start = offset.min(self.len);
        let end = offset.saturating_add(len).min(self.len);
        self.ring.slices(start, end - start)
    }

    /// Drop `n` acknowledged bytes from the front (SND.UNA advanced by `n`); `n` is
    /// clipped to `len()`.
    pub fn drain(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        // Restart at index 0 when empty so later pushes stay contiguous longer.
        if self.len == 0 { self.ring.rewind() } else { self.ring.advance(n) }
    }

    /// Drop everything (e.g. on RST, RFC 9293 §3.10.7).
    pub fn clear(&mut self) {
        self.len = 0;
        self.ring.rewind();
    }

    /// Give the storage back if the buffer is empty; returns the bytes freed.
    pub fn release(&mut self) -> usize {
        if self.len != 0 { 0 } else { self.ring.release() }
    }

    /// Called by the Stack's periodic sweep: a ring empty and unused for a whole interval
    /// is released. Returns the bytes freed.
    pub fn sweep_idle(&mut self) -> usize {
        self.ring.sweep_idle(self.len == 0)
    }

    /// Change the capacity, keeping the content; the new capacity is never below `len()`.
    /// Reallocates (this is not a per-segment operation).
    pub fn set_capacity(&mut self, cap: usize) {
        let cap = cap.max(self.len);
        if cap != self.ring.cap() {
            self.ring.set_cap(cap, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(sb: &SendBuffer, off: usize, len: usize) -> Vec<u8> {
        let (a, b) = sb.slices(off, len);
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn push_clips_to_capacity() {
        let mut sb = SendBuffer::with_capacity(8);
        assert!(sb.is_empty());
        assert_eq!(sb.push(b"hello"), 5);
        assert_eq!(sb.push(b"world"), 3);
        assert_eq!(sb.len(), 8);
        assert_eq!(sb.free(), 0);
        assert_eq!(sb.push(b"x"), 0);
        assert_eq!(collect(&sb, 0, 100), b"hellowor");
    }

    #[test]
    fn wrap_around_and_drain() {
        let mut sb = SendBuffer::with_capacity(8);
        assert_eq!(sb.push(b"abcdef"), 6);
        sb.drain(4); // "ef" left at ring index 4..6
        assert_eq!(sb.len(), 2);
        assert_eq!(sb.push(b"ghijk"), 5); // wraps: "gh" at 6..8, "ijk" at 0..3
        assert_eq!(sb.len(), 7);
        let (a, b) = sb.slices(0, 7);
        assert_eq!(a, b"efgh");
        assert_eq!(b, b"ijk");
        // A slice entirely after the wrap point is a single slice.
        let (a, b) = sb.slices(4, 3);
        assert_eq!(a, b"ijk");
        assert!(b.is_empty());
        // A slice crossing the wrap point.
        let (a, b) = sb.slices(3, 2);
        assert_eq!(a, b"h");
        assert_eq!(b, b"i");
        // Clipping at the end and past the end.
        assert_eq!(collect(&sb, 5, 10), b"jk");
        assert_eq!(collect(&sb, 7, 10), b"");
        assert_eq!(collect(&sb, 100, 10), b"");
        assert_eq!(collect(&sb, usize::MAX, usize::MAX), b"");
        sb.drain(3);
        assert_eq!(collect(&sb, 0, 10), b"hijk");
        sb.drain(100);
        assert!(sb.is_empty());
        assert_eq!(sb.free(), 8);
    }

    #[test]
    fn set_capacity_keeps_content_across_wrap() {
        let mut sb = SendBuffer::with_capacity(6);
        sb.push(b"123456");
        sb.drain(4);
        sb.push(b"789"); // "56" + "789", wrapped
        sb.set_capacity(3); // clipped to len() = 5
        assert_eq!(sb.capacity(), 5);
        assert_eq!(collect(&sb, 0, 5), b"56789");
        sb.set_capacity(10);
        assert_eq!(sb.capacity(), 10);
        assert_eq!(sb.push(b"abcdefghij"), 5);
        assert_eq!(collect(&sb, 0, 10), b"56789abcde");
    }

    #[test]
    fn zero_capacity_and_lazy_alloc() {
        let mut sb = SendBuffer::with_capacity(0);
        assert_eq!(sb.push(b"abc"), 0);
        assert_eq!(sb.slices(0, 3), (&[][..], &[][..]));
        sb.drain(5);
        sb.set_capacity(4);
        assert_eq!(sb.push(b"abcdef"), 4);
        assert_eq!(collect(&sb, 1, 2), b"bc");
    }

    #[test]
    fn push_with_offers_contiguous_space() {
        let mut sb = SendBuffer::with_capacity(8);
        assert_eq!(
            sb.push_with(|b| {
                assert_eq!(b.len(), 8);
                b[..6].copy_from_slice(b"abcdef");
                6
            }),
            6
        );
        sb.drain(4); // "ef" at ring index 4..6
        // The free space wraps: 6..8 first, then 0..4 on the next call.
        assert_eq!(
            sb.push_with(|b| {
                assert_eq!(b.len(), 2);
                b.copy_from_slice(b"gh");
                99
            }),
            2
        );
        assert_eq!(
            sb.push_with(|b| {
                assert_eq!(b.len(), 4);
                b[..3].copy_from_slice(b"ijk");
                3
            }),
            3
        );
        assert_eq!(collect(&sb, 0, 10), b"efghijk");
        assert_eq!(sb.push_with(|b| b.len()), 1);
        assert_eq!(sb.push_with(|_| panic!("full")), 0);
    }

    #[test]
    fn matches_model_over_many_ops() {
        // Deterministic LCG-driven mix of pushes and drains against a Vec model.
        let mut sb = SendBuffer::with_capacity(37);
        let mut model: Vec<u8> = Vec::new();
        let mut x: u32 = 12345;
        let mut next = || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as usize
        };
        let mut byte = 0u8;
        for _ in 0..5000 {
            if next() % 2 == 0 {
                let k = next() % 20;
                let data: Vec<u8> = (0..k)
                    .map(|_| {
                        byte = byte.wrapping_add(1);
                        byte
                    })
                    .collect();
                let n = sb.push(&data);
                assert_eq!(n, k.min(37 - model.len()));
                model.extend_from_slice(&data[..n]);
            } else {
                let k = next() % 20;
                sb.drain(k);
                model.drain(..k.min(model.len()));
            }
            assert_eq!(sb.len(), model.len());
            let off = next() % 40;
            let len = next() % 40;
            let lo = off.min(model.len());
            let hi = (off + len).min(model.len());
            assert_eq!(collect(&sb, off, len), &model[lo..hi]);
        }
    }
}
