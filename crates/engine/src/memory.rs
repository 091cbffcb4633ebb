//! Stack-wide accounting of send and receive buffer storage, like Linux's `tcp_mem`
//! (issue 9, bounded memory).
//!
//! Rings start empty and grow on demand (powers of two from [`RING_MIN`] up to their
//! per-connection size); every growth asks the pool, which refuses what would pass
//! `Config::buffer_memory`. Above [`PRESSURE_NUM`]/[`PRESSURE_DEN`] of the cap the stack is
//! under pressure: out-of-order data may not grow a ring any more, receive windows stop
//! growing beyond the storage a connection has (never moving an advertised right edge left,
//! RFC 9293 §3.8.6 / RFC 7323 §2.4), and the Stack's periodic sweep prunes held out-of-order
//! data (RFC 2018 §8 allows the receiver to discard SACKed data) before in-order data is
//! ever refused. Every ring may reach [`RING_MIN`] for in-order data or sends whatever the
//! pool says (Linux guarantees `tcp_rmem[0]`/`tcp_wmem[0]` the same way), so a connection can
//! always make progress; the cap can be passed by at most that much per ring. Rings that
//! stay empty for a sweep interval are given back to the allocator.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Smallest ring allocated (grown in powers of two from here).
pub const RING_MIN: usize = 4096;
/// Pressure starts at 3/4 of the cap.
pub const PRESSURE_NUM: usize = 3;
/// Denominator of the pressure mark (`cap * PRESSURE_NUM / PRESSURE_DEN`).
pub const PRESSURE_DEN: usize = 4;

/// The buffer-memory budget of one Stack, shared by its connections' rings.
#[derive(Debug, Default)]
pub struct MemPool {
    used: AtomicUsize,
    cap: AtomicUsize,
    refused: AtomicU64,
    ofo_pruned: AtomicU64,
    rcv_pruned: AtomicU64,
    released: AtomicU64,
    /// Pressure state with hysteresis, like Linux's tcp_memory_pressure: entered at the
    /// pressure mark or on any refusal, left when a sweep finds use below half the mark.
    pressure: AtomicBool,
}

impl MemPool {
    /// A pool that lets its users allocate at most `cap` bytes of ring storage.
    pub fn new(cap: usize) -> MemPool {
        MemPool { cap: AtomicUsize::new(cap), ..MemPool::default() }
    }

    /// Bytes of ring storage allocated now.
    pub fn used(&self) -> usize {
        self.used.load(Relaxed)
    }

    /// The budget in bytes (`Config` sets it; see `set_cap`).
    pub fn cap(&self) -> usize {
        self.cap.load(Relaxed)
    }

    pub(crate) fn set_cap(&self, cap: usize) {
        self.cap.store(cap, Relaxed);
    }

    fn pressure_mark(&self) -> usize {
        self.cap() / PRESSURE_DEN * PRESSURE_NUM
    }

    /// Above 3/4 of the cap, or a growth was refused and use has not fallen below 3/8.
    pub fn under_pressure(&self) -> bool {
        self.pressure.load(Relaxed) || self.used() >= self.pressure_mark()
    }

    /// The sweep's view: leave pressure below half the mark.
    pub(crate) fn update_pressure(&self) -> bool {
        if self.used() < self.pressure_mark() / 2 {
            self.pressure.store(false, Relaxed);
        }
        self.under_pressure()
    }

    /// Account `n` more bytes, if that stays under the cap (under the pressure mark for
    /// out-of-order data). A refusal is counted.
    pub(crate) fn try_grow(&self, n: usize, ooo: bool) -> bool {
        let limit = if ooo { self.pressure_mark() } else { self.cap() };
        if self.used().saturating_add(n) > limit {
            self.refused.fetch_add(1, Relaxed);
            self.pressure.store(true, Relaxed);
            return false;
        }
        self.used.fetch_add(n, Relaxed);
        true
    }

    /// Growth of a ring to `new` bytes. Like Linux's `tcp_rmem[0]`/`tcp_wmem[0]`
    /// guarantee, a ring may always reach [`RING_MIN`] for in-order data and sends, even
    /// above the cap, so that no connection stalls for good (the excess is bounded by
    /// RING_MIN per ring); out-of-order data gets no such guarantee.
    pub(crate) fn grant(&self, new: usize, ooo: bool) -> bool {
        if new <= RING_MIN && !ooo {
            self.force_grow(new);
            return true;
        }
        self.try_grow(new, ooo)
    }

    /// Account `n` bytes that are allocated already (not refusable).
    pub(crate) fn force_grow(&self, n: usize) {
        self.used.fetch_add(n, Relaxed);
    }

    /// `n` bytes went back to the allocator.
    pub(crate) fn shrink(&self, n: usize) {
        self.used.fetch_sub(n.min(self.used()), Relaxed);
    }

    pub(crate) fn count_ofo_pruned(&self, bytes: usize) {
        self.ofo_pruned.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn count_rcv_pruned(&self, bytes: usize) {
        self.rcv_pruned.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn count_released(&self) {
        self.released.fetch_add(1, Relaxed);
    }

    /// Copy the pool's counts into the Stack's counters.
    pub(crate) fn sync(&self, c: &mut crate::Counters) {
        c.mem_pressure = self.refused.load(Relaxed);
        c.ofo_pruned = self.ofo_pruned.load(Relaxed);
        c.rcv_pruned = self.rcv_pruned.load(Relaxed);
        c.buffers_released = self.released.load(Relaxed);
    }
}

/// Ring size to hold `need` bytes of a buffer whose logical size is `cap`.
#[inline]
pub(crate) fn ring_size(need: usize, cap: usize) -> usize {
    if need == 0 {
        return 0;
    }
    need.checked_next_power_of_two().unwrap_or(need).max(RING_MIN).min(cap).max(need)
}
