//! The transmit queue (issue 12): packets are produced under the interface lock and
//! written to the TUN after it is released.
//!
//! A TUN write runs the kernel's whole receive path for the packet inside the syscall
//! (the peer socket's wake-up included). Done under the interface lock, every other
//! thread's engine work waits behind it. So the engine's output goes into a reused arena
//! ([`TxArena`]) under the lock; before the lock is released the arena is handed to the
//! [`TxQueue`] (a small mutex of its own, taken while the interface lock is still held, so
//! batches enter the queue in the order the engine produced them). One thread at a time
//! is the queue's *writer*: the thread that handed over a batch and found no writer
//! active. It holds a [`TxDuty`] and writes every queued batch, in order, until the queue
//! is empty; the others return at once. Packet order on the wire is therefore the
//! engine's order, per connection and overall.
//!
//! Hand-over without a copy: the queue owns a fixed set of arenas ([`TX_QUEUE_ARENAS`]),
//! each queued (full), being written, or empty in its pool. A producer hands its filled
//! arena over by swapping it for an empty one from the pool ([`LinkStats::tx_swaps`]); the
//! writer returns each arena to the pool once written. Only a small batch
//! ([`TX_APPEND_MAX`] bytes) is copied, behind the last queued arena if it fits
//! ([`LinkStats::tx_appends`]): that costs less than the arena it would take, and leaves
//! the pool to large batches, so producers seldom wait.
//!
//! Caps: an arena holds [`TX_ARENA`] bytes and [`TX_ARENA_PKTS`] packets. When the one
//! being filled under the lock is full, it is handed over at once
//! ([`LinkStats::tx_spills`]) and, if every arena of the queue is queued or being written
//! by another thread, the producer waits for the writer to return one
//! ([`LinkStats::tx_waits`]; bounded: the writer needs no lock but the queue's). Nothing is
//! dropped for space; a packet the kernel refuses is counted in `tx_dropped` as before.
//! Memory per interface: the arena being filled plus [`TX_QUEUE_ARENAS`], 4 × 256 KiB =
//! 1 MiB (plus 256 packet descriptors of 72 bytes, 18 KiB, per arena), one arena more than
//! the 768 KiB of the copying queue (issue 12), all allocated when the interface is made:
//! the data path allocates nothing.

use super::LinkStats;
use super::driver::Shared;
use crate::device::tun::{MAX_PACKET, Tun};
use crate::engine::Transmit;
use std::collections::VecDeque;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A cheap identity of the calling thread (the address of a thread-local), unlike
/// `std::thread::current()` which clones an `Arc`.
type ThreadId = usize;

fn thread_id() -> ThreadId {
    thread_local!(static MARK: u8 = const { 0 });
    MARK.with(|m| m as *const u8 as usize)
}

/// Where the writer puts packets: the TUN (a test records them instead).
pub(crate) trait Sink {
    fn send_packet(&self, pkt: &[u8], gso: Option<&Transmit>) -> io::Result<()>;
}

impl Sink for Tun {
    fn send_packet(&self, pkt: &[u8], gso: Option<&Transmit>) -> io::Result<()> {
        match gso {
            Some(t) => self.send_transmit(pkt, t),
            None => self.send(pkt),
        }
    }
}

/// Bytes one transmit arena holds (several 64 KiB super-segments, or ~170 MTU packets).
pub(crate) const TX_ARENA: usize = 4 * MAX_PACKET;
/// Packets one arena holds (its descriptor list is allocated once, never grown).
pub(crate) const TX_ARENA_PKTS: usize = 256;
/// Arenas the queue owns besides the one being filled under the interface lock: one being
/// written and two queued before a producer waits. 3 × 256 KiB; with the interface's own,
/// 1 MiB per interface.
pub(crate) const TX_QUEUE_ARENAS: usize = 3;
/// A batch of at most this many bytes is copied behind the last queued arena (if it fits)
/// instead of taking an arena from the pool: ACKs and a couple of MTU packets. Without
/// it (every batch swapped), `utcp bench --only http` made producers wait 171 537 times
/// and http_close fell from ~21-23k to 15.5k req/s (docs/latency.md).
pub(crate) const TX_APPEND_MAX: usize = 4096;
/// Errors a TUN write reports for a packet the kernel would not take (a loss, not a failure).
const ENOBUFS: i32 = rustix::io::Errno::NOBUFS.raw_os_error();
const ENOMEM: i32 = rustix::io::Errno::NOMEM.raw_os_error();
const EINVAL: i32 = rustix::io::Errno::INVAL.raw_os_error();

/// Packets back to back, with their (offset, length, GSO descriptor for TUN offload).
pub(crate) struct TxArena {
    buf: Box<[u8]>,
    used: usize,
    pkts: Vec<(usize, usize, Option<Transmit>)>,
}

impl TxArena {
    pub(crate) fn new() -> TxArena {
        TxArena {
            buf: vec![0u8; TX_ARENA].into_boxed_slice(),
            used: 0,
            pkts: Vec::with_capacity(TX_ARENA_PKTS),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    fn clear(&mut self) {
        self.used = 0;
        self.pkts.clear();
    }

    /// Whether one more packet of the largest size still fits.
    pub(crate) fn has_room(&self) -> bool {
        self.buf.len() - self.used >= MAX_PACKET && self.pkts.len() < TX_ARENA_PKTS
    }

    /// The free space to produce one packet into (`MAX_PACKET` bytes; check `has_room`).
    pub(crate) fn space(&mut self) -> &mut [u8] {
        let end = (self.used + MAX_PACKET).min(self.buf.len());
        &mut self.buf[self.used..end]
    }

    /// The packet just produced into `space()` is `len` bytes long.
    pub(crate) fn commit(&mut self, len: usize, gso: Option<Transmit>) {
        let len = len.min(self.buf.len() - self.used);
        self.pkts.push((self.used, len, gso));
        self.used += len;
    }

    /// Copy a packet in (the impairment hook's path). The caller checked `has_room`.
    pub(crate) fn push(&mut self, pkt: &[u8]) {
        let len = pkt.len().min(self.buf.len() - self.used);
        self.buf[self.used..self.used + len].copy_from_slice(&pkt[..len]);
        self.commit(len, None);
    }

    /// Append `other`'s packets if they fit (bytes and descriptors: no allocation).
    fn append(&mut self, other: &TxArena) -> bool {
        if self.buf.len() - self.used < other.used || TX_ARENA_PKTS - self.pkts.len() < other.pkts.len() {
            return false;
        }
        for &(off, len, gso) in &other.pkts {
            self.buf[self.used..self.used + len].copy_from_slice(&other.buf[off..off + len]);
            self.commit(len, gso);
        }
        true
    }
}

/// The writers' counters, each with the [`LinkStats`] field it is added to: one list for
/// the struct, its sum and the stats.
macro_rules! tx_counts {
    ($($field:ident => $stat:ident),* $(,)?) => {
        /// Counters of the writers (merged into [`LinkStats`]).
        #[derive(Clone, Copy, Default, Debug)]
        struct TxCounts {
            $($field: u64,)*
        }

        impl TxCounts {
            fn add(&mut self, o: &TxCounts) {
                $(self.$field += o.$field;)*
            }

            fn add_to(&self, s: &mut LinkStats) {
                $(s.$stat += self.$field;)*
            }
        }
    };
}

tx_counts! {
    packets => tx_packets,
    bytes => tx_bytes,
    dropped => tx_dropped,
    super_segments => tx_super_segments,
    super_segment_segs => tx_super_segment_segs,
    unlocked => tx_unlocked,
    by_other => tx_by_other,
    spills => tx_spills,
    waits => tx_waits,
    swaps => tx_swaps,
    appends => tx_appends,
}

/// A batch handed over and not yet taken by the writer.
struct Queued {
    arena: TxArena,
    /// Some of its packets were handed over by another thread than the writer.
    by_other: bool,
}

struct Queue {
    /// Batches handed over and not yet taken by the writer, in production order.
    /// Invariant: not empty only while there is a writer.
    queued: VecDeque<Queued>,
    /// Empty arenas. Every arena of the queue is here, in `queued`, or with the writer;
    /// so when this is empty there is a writer.
    pool: Vec<TxArena>,
    /// The thread that holds the writer's duty, if any.
    writer: Option<ThreadId>,
    /// A fatal write error for the interface lock's holder to act on.
    fatal: Option<io::Error>,
    /// The interface is down: discard instead of writing.
    dead: bool,
    /// Producers waiting on `returned` (std's condvar makes a syscall per notify even with
    /// nobody waiting, so the writer notifies only when someone is).
    waiting: u32,
    counts: TxCounts,
}

impl Queue {
    /// Copy a small `batch` behind the last queued one if it fits (see the module docs).
    fn append_small(&mut self, batch: &mut TxArena, by_other: bool) -> bool {
        let Some(last) = self.queued.back_mut() else { return false };
        if batch.used > TX_APPEND_MAX || !last.arena.append(batch) {
            return false;
        }
        last.by_other |= by_other;
        batch.clear();
        self.counts.appends += 1;
        true
    }

    /// Queue `batch` and give the producer an empty arena in its place, if there is one.
    fn swap_in(&mut self, batch: &mut TxArena, by_other: bool) -> bool {
        let Some(empty) = self.pool.pop() else { return false };
        let arena = std::mem::replace(batch, empty);
        self.queued.push_back(Queued { arena, by_other });
        self.counts.swaps += 1;
        true
    }
}

/// The queue between the engine's output and the TUN (see the module docs).
pub(crate) struct TxQueue {
    q: Mutex<Queue>,
    /// A producer waits here for the writer to return an arena to the pool.
    returned: Condvar,
}

impl TxQueue {
    pub(crate) fn new() -> TxQueue {
        TxQueue {
            q: Mutex::new(Queue {
                queued: VecDeque::with_capacity(TX_QUEUE_ARENAS),
                pool: (0..TX_QUEUE_ARENAS).map(|_| TxArena::new()).collect(),
                writer: None,
                fatal: None,
                dead: false,
                waiting: 0,
                counts: TxCounts::default(),
            }),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand over `batch` (it comes back empty: another arena, or the same one cleared).
    /// Called with the interface lock held, which orders the batches. Returns whether the
    /// caller became the writer (it then holds the duty).
    /// `spill`: `batch` filled up in the middle of producing.
    pub(crate) fn hand_over(&self, batch: &mut TxArena, tun: &impl Sink, spill: bool) -> bool {
        if batch.is_empty() {
            return false;
        }
        let me = thread_id();
        let mut q = self.lock();
        q.counts.spills += spill as u64;
        loop {
            let by_other = q.writer.is_some_and(|w| w != me);
            if q.append_small(batch, by_other) || q.swap_in(batch, by_other) {
                break;
            }
            // The pool is empty, so there is a writer (the invariant).
            if q.writer == Some(me) {
                // This thread holds the duty from an earlier hand-over: write now.
                q = self.write_all(q, tun, false);
                q.writer = Some(me);
            } else {
                q.counts.waits += 1;
                q.waiting += 1;
                q = self.returned.wait(q).unwrap_or_else(|e| e.into_inner());
                q.waiting -= 1;
            }
        }
        let first = q.writer.is_none();
        if first {
            q.writer = Some(me);
        }
        first
    }

    /// The writer's loop: write every queued batch until the queue is empty, then give up
    /// the duty. `unlocked`: the interface lock is not held (counted).
    fn write_all<'a>(
        &'a self,
        mut q: MutexGuard<'a, Queue>,
        tun: &impl Sink,
        unlocked: bool,
    ) -> MutexGuard<'a, Queue> {
        while let Some(Queued { arena: mut batch, by_other }) = q.queued.pop_front() {
            let dead = q.dead;
            drop(q);
            let mut c = TxCounts::default();
            let fatal = if dead { None } else { write_batch(tun, &batch, &mut c) };
            if unlocked {
                c.unlocked = batch.pkts.len() as u64;
            }
            if by_other {
                c.by_other = batch.pkts.len() as u64;
            }
            batch.clear();
            q = self.lock();
            q.pool.push(batch);
            q.counts.add(&c);
            if let Some(e) = fatal {
                q.dead = true;
                q.fatal.get_or_insert(e);
            }
            if q.waiting > 0 {
                self.returned.notify_all();
            }
        }
        q.writer = None;
        q
    }

    /// A fatal TUN write error, for the interface lock's holder to fail the interface with.
    pub(crate) fn take_fatal(&self) -> Option<io::Error> {
        self.lock().fatal.take()
    }

    /// The interface went down: discard what is queued from now on.
    pub(crate) fn kill(&self) {
        self.lock().dead = true;
    }

    /// Add the writers' counters to `s`.
    pub(crate) fn add_stats(&self, s: &mut LinkStats) {
        self.lock().counts.add_to(s);
    }
}

/// Write a batch in order. Congestion in the kernel (`EAGAIN`, `ENOBUFS`) and a packet the
/// kernel rejects (`EINVAL`) are losses; anything else is fatal (returned; the rest of
/// the batch is not written).
fn write_batch(tun: &impl Sink, batch: &TxArena, c: &mut TxCounts) -> Option<io::Error> {
    for &(off, len, gso) in &batch.pkts {
        let pkt = &batch.buf[off..off + len];
        let sent = tun.send_packet(pkt, gso.as_ref());
        match sent {
            Ok(()) => {
                if let Some(t) = gso.filter(|t| t.segments > 1) {
                    c.super_segments += 1;
                    c.super_segment_segs += t.segments as u64;
                }
                c.packets += 1;
                c.bytes += len as u64;
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || matches!(e.raw_os_error(), Some(ENOBUFS | ENOMEM | EINVAL)) =>
            {
                c.dropped += 1;
                tracing::trace!(error = %e, "TUN write refused: counted as a loss");
            }
            Err(e) => return Some(io::Error::new(e.kind(), format!("TUN write: {e}"))),
        }
    }
    None
}

/// The writer's duty: whoever holds it writes the queue when it is dropped. Drop it after
/// releasing the interface lock (`drop(g); drop(duty)`) to write outside the lock; a duty
/// dropped with the lock held writes under it, as before issue 12. Never hold one across
/// a wait: other threads' packets wait for it.
#[must_use = "dropping the duty writes the queued packets: drop it after the interface lock"]
pub(crate) struct TxDuty<'a> {
    shared: Option<&'a Shared>,
    unlocked: bool,
}

impl<'a> TxDuty<'a> {
    pub(crate) fn none() -> TxDuty<'a> {
        TxDuty { shared: None, unlocked: false }
    }

    pub(crate) fn writer(shared: &'a Shared) -> TxDuty<'a> {
        TxDuty { shared: Some(shared), unlocked: false }
    }

    /// Write now; the caller says it does not hold the interface lock (for the counters).
    pub(crate) fn write_unlocked(mut self) {
        self.unlocked = true;
    }

    /// Write now, under the interface lock (as before issue 12).
    pub(crate) fn write_locked(self) {}
}

impl Drop for TxDuty<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let q = shared.tx.write_all(shared.tx.lock(), &*shared.tun_dev, self.unlocked);
            let fatal = q.fatal.is_some();
            drop(q);
            if fatal {
                // The interface lock's next holder (the driver, woken) fails the interface.
                shared.wake_driver();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Records what the writer sends: (packet's first 8 bytes as a number, length).
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(u64, usize)>>);

    impl Sink for Recorder {
        fn send_packet(&self, pkt: &[u8], _: Option<&Transmit>) -> io::Result<()> {
            let id = u64::from_le_bytes(pkt[..8].try_into().unwrap());
            self.0.lock().unwrap().push((id, pkt.len()));
            Ok(())
        }
    }

    fn packet(id: u64, len: usize) -> Vec<u8> {
        let mut p = vec![0xa5u8; len];
        p[..8].copy_from_slice(&id.to_le_bytes());
        p
    }

    /// What `Inner::flush_tx` does with the interface lock held: produce into the
    /// thread's arena, spilling when full, then hand over.
    fn produce(q: &TxQueue, sink: &impl Sink, arena: &mut TxArena, pkts: &[Vec<u8>]) -> bool {
        for p in pkts {
            if !arena.has_room() && q.hand_over(arena, sink, true) {
                drop(q.write_all(q.lock(), sink, false));
            }
            arena.push(p);
        }
        q.hand_over(arena, sink, false)
    }

    #[test]
    fn packets_leave_in_production_order_across_threads() {
        // Four threads take an "interface lock", produce numbered packets (the number is
        // taken under that lock, so it is the engine's order), hand them over before
        // releasing it and write after it: the wire must see 0, 1, 2, ... with no gap.
        let q = Arc::new(TxQueue::new());
        let sink = Arc::new(Recorder::default());
        let iface = Arc::new(Mutex::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (q, sink, iface) = (q.clone(), sink.clone(), iface.clone());
                std::thread::spawn(move || {
                    let mut arena = TxArena::new();
                    for round in 0..300 {
                        let mut next = iface.lock().unwrap();
                        let n = 1 + (round + t) % 5;
                        let len = if round % 7 == 0 { 9000 } else { 60 };
                        let pkts: Vec<_> = (0..n).map(|i| packet(*next + i as u64, len)).collect();
                        *next += n as u64;
                        let writer = produce(&q, &*sink, &mut arena, &pkts);
                        drop(next);
                        if writer {
                            drop(q.write_all(q.lock(), &*sink, true));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let sent = sink.0.lock().unwrap();
        let total = *iface.lock().unwrap();
        assert_eq!(sent.len() as u64, total, "every packet written once");
        for (i, &(id, _)) in sent.iter().enumerate() {
            assert_eq!(id, i as u64, "packet order on the wire is the production order");
        }
        let mut s = LinkStats::default();
        q.add_stats(&mut s);
        assert_eq!(s.tx_packets, total);
        assert_eq!(s.tx_dropped, 0);
        assert_eq!(s.tx_swaps + s.tx_appends, 4 * 300, "every hand-over swapped or appended");
        assert_all_arenas_home(&q);
    }

    /// The queue is idle and owns all its arenas again, empty: none lost, none made.
    fn assert_all_arenas_home(q: &TxQueue) {
        let g = q.lock();
        assert!(g.writer.is_none() && g.queued.is_empty());
        assert_eq!(g.pool.len(), TX_QUEUE_ARENAS);
        assert!(g.pool.iter().all(|a| a.is_empty() && a.pkts.capacity() == TX_ARENA_PKTS));
    }

    #[test]
    fn a_full_arena_spills_without_losing_a_packet() {
        // One engine call produces more than an arena holds while another thread's batch
        // still waits to be written by this thread (it holds the writer's duty): the
        // arena is handed over early, written in place, and nothing is lost or reordered.
        let q = TxQueue::new();
        let sink = Recorder::default();
        let mut arena = TxArena::new();
        assert!(produce(&q, &sink, &mut arena, &[packet(0, 100)]), "first hand-over: the writer");
        let big: Vec<_> = (1..=20).map(|i| packet(i, MAX_PACKET - 100)).collect();
        assert!(!produce(&q, &sink, &mut arena, &big), "the duty is already held");
        drop(q.write_all(q.lock(), &sink, true));
        let sent = sink.0.lock().unwrap();
        let ids: Vec<u64> = sent.iter().map(|&(id, _)| id).collect();
        assert_eq!(ids, (0..=20).collect::<Vec<u64>>());
        let mut s = LinkStats::default();
        q.add_stats(&mut s);
        assert!(s.tx_spills >= 4, "20 near-64 KiB packets need several arenas: {s:?}");
        assert_eq!(s.tx_packets, 21);
    }

    /// A TUN that takes a packet only when the test lets it (a writer busy for as long as
    /// the test wants), recording (packet number, length, address it was written from).
    #[derive(Default)]
    struct Gate {
        permits: Mutex<usize>,
        opened: Condvar,
        sent: Mutex<Vec<(u64, usize, usize)>>,
    }

    impl Gate {
        fn let_through(&self, n: usize) {
            *self.permits.lock().unwrap() += n;
            self.opened.notify_all();
        }
    }

    impl Sink for Gate {
        fn send_packet(&self, pkt: &[u8], _: Option<&Transmit>) -> io::Result<()> {
            let mut p = self.permits.lock().unwrap();
            while *p == 0 {
                p = self.opened.wait(p).unwrap();
            }
            *p -= 1;
            let id = u64::from_le_bytes(pkt[..8].try_into().unwrap());
            self.sent.lock().unwrap().push((id, pkt.len(), pkt.as_ptr() as usize));
            Ok(())
        }
    }

    /// Fill `arena` with packets `ids` of `len` bytes; return where its buffer starts.
    fn fill(arena: &mut TxArena, ids: std::ops::Range<u64>, len: usize) -> usize {
        for id in ids {
            arena.push(&packet(id, len));
        }
        arena.buf.as_ptr() as usize
    }

    /// Spin (yielding) until `cond` holds on the queue: a rendezvous, not a timing.
    fn until(q: &TxQueue, cond: impl Fn(&Queue) -> bool) {
        while !cond(&q.lock()) {
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_busy_writer_gets_arenas_swapped_not_copied() {
        // Thread W hands over batch A (packets 0-1), becomes the writer and blocks in the
        // TUN. Meanwhile the producer hands over B (2-3) and C (4-5): each is queued in
        // the very arena it was produced in (swapped for an empty one, no copy). A small
        // D (6) is copied behind C. E (7-8) finds no empty arena (A being written, B and C
        // queued) and waits until W has written A. The wire sees 0..=8 in order.
        let q = TxQueue::new();
        let gate = Gate::default();
        let (mut arena, mut arena_e) = (TxArena::new(), TxArena::new());
        std::thread::scope(|s| {
            let w = s.spawn(|| {
                let mut a = TxArena::new();
                fill(&mut a, 0..2, 3000);
                assert!(q.hand_over(&mut a, &gate, false), "first hand-over: the writer");
                drop(q.write_all(q.lock(), &gate, true));
            });
            until(&q, |g| g.writer.is_some());
            let b = fill(&mut arena, 2..4, 3000);
            assert!(!q.hand_over(&mut arena, &gate, false), "W holds the duty");
            assert_ne!(arena.buf.as_ptr() as usize, b, "the producer got another arena");
            assert!(arena.is_empty());
            let c = fill(&mut arena, 4..6, 3000);
            assert!(!q.hand_over(&mut arena, &gate, false));
            fill(&mut arena, 6..7, 100);
            assert!(!q.hand_over(&mut arena, &gate, false));
            assert!(q.lock().pool.is_empty(), "A with W, B and C+D queued");
            let e = s.spawn(|| {
                let e = fill(&mut arena_e, 7..9, 3000);
                assert!(!q.hand_over(&mut arena_e, &gate, false), "W still holds the duty");
                e
            });
            until(&q, |g| g.waiting == 1);
            gate.let_through(2); // A only: W returns its arena and blocks on B.
            let e = e.join().unwrap();
            gate.let_through(usize::MAX / 2);
            w.join().unwrap();
            let sent = gate.sent.lock().unwrap();
            let ids: Vec<u64> = sent.iter().map(|p| p.0).collect();
            assert_eq!(ids, (0..9).collect::<Vec<u64>>(), "production order on the wire");
            let from: Vec<usize> = sent[2..].iter().map(|p| p.2).collect();
            let want = [b, b + 3000, c, c + 3000, c + 6000, e, e + 3000];
            assert_eq!(from, want, "B, C, E written where produced; D copied behind C");
        });
        let mut st = LinkStats::default();
        q.add_stats(&mut st);
        assert_eq!((st.tx_packets, st.tx_unlocked, st.tx_dropped), (9, 9, 0), "{st:?}");
        assert_eq!((st.tx_swaps, st.tx_appends, st.tx_waits, st.tx_spills), (4, 1, 1, 0), "{st:?}");
        assert_eq!(st.tx_by_other, 7, "B..E were handed over while W wrote: {st:?}");
        assert_all_arenas_home(&q);
    }

    #[test]
    fn an_arena_holds_a_bounded_number_of_packets() {
        // 600 bare ACK-sized packets in one engine call: the arena spills at
        // TX_ARENA_PKTS packets instead of growing its descriptor list.
        let q = TxQueue::new();
        let sink = Recorder::default();
        let mut arena = TxArena::new();
        let acks: Vec<_> = (0..600).map(|i| packet(i, 40)).collect();
        assert!(produce(&q, &sink, &mut arena, &acks));
        drop(q.write_all(q.lock(), &sink, true));
        let ids: Vec<u64> = sink.0.lock().unwrap().iter().map(|&(id, _)| id).collect();
        assert_eq!(ids, (0..600).collect::<Vec<u64>>());
        let mut st = LinkStats::default();
        q.add_stats(&mut st);
        assert_eq!((st.tx_packets, st.tx_spills), (600, 600 / TX_ARENA_PKTS as u64), "{st:?}");
        assert_eq!(arena.pkts.capacity(), TX_ARENA_PKTS);
        assert_all_arenas_home(&q);
    }

    /// Counts heap allocations made by a thread that set `MEASURING` (only this test's).
    struct Counting;

    static ALLOCS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    thread_local! {
        static MEASURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    fn count() {
        if MEASURING.try_with(|m| m.get()).unwrap_or(false) {
            ALLOCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    // SAFETY: forwards to the system allocator; only counts calls.
    unsafe impl std::alloc::GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            count();
            // SAFETY: same contract as the caller's.
            unsafe { std::alloc::System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
            count();
            // SAFETY: same contract as the caller's.
            unsafe { std::alloc::System.realloc(ptr, layout, size) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// A TUN that only counts (it allocates nothing).
    #[derive(Default)]
    struct Tally(std::sync::atomic::AtomicU64);

    impl Sink for Tally {
        fn send_packet(&self, _: &[u8], _: Option<&Transmit>) -> io::Result<()> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
    }

    #[test]
    fn the_hand_over_allocates_nothing() {
        // Producing, spilling, swapping, appending and writing: no heap allocation, even
        // with this thread holding the duty across spills (every arena queued at once).
        let q = TxQueue::new();
        let tun = Tally::default();
        let mut arena = TxArena::new();
        let big: Vec<_> = (0..9).map(|i| packet(i, MAX_PACKET - 100)).collect();
        let small: Vec<_> = (0..300).map(|i| packet(i, 40)).collect();
        MEASURING.with(|m| m.set(true));
        for _ in 0..20 {
            assert!(produce(&q, &tun, &mut arena, &small[..3]), "the writer");
            assert!(!produce(&q, &tun, &mut arena, &small[..2]), "appended");
            assert!(!produce(&q, &tun, &mut arena, &big), "spilled and swapped");
            assert!(!produce(&q, &tun, &mut arena, &small), "spilled on the packet cap");
            drop(q.write_all(q.lock(), &tun, true));
        }
        MEASURING.with(|m| m.set(false));
        assert_eq!(ALLOCS.load(std::sync::atomic::Ordering::Relaxed), 0);
        assert_eq!(tun.0.load(std::sync::atomic::Ordering::Relaxed), 20 * (3 + 2 + 9 + 300));
        let mut st = LinkStats::default();
        q.add_stats(&mut st);
        assert!(st.tx_appends >= 20 && st.tx_swaps >= 20 * 4 && st.tx_spills >= 20 * 3, "{st:?}");
        assert_all_arenas_home(&q);
    }
}
