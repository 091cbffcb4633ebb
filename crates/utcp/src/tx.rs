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
//! Caps: an arena holds [`TX_ARENA`] bytes. When the one being filled under the lock is
//! full, it is handed over at once ([`LinkStats::tx_spills`]) and, if the queue still
//! holds an earlier full batch that another thread is writing, the producer waits for it
//! (bounded: the writer needs no lock but the queue's). Nothing is dropped for space; a
//! packet the kernel refuses is counted in `tx_dropped` as before.

use super::LinkStats;
use super::driver::Shared;
use crate::device::tun::{MAX_PACKET, Tun};
use crate::engine::Transmit;
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
        TxArena { buf: vec![0u8; TX_ARENA].into_boxed_slice(), used: 0, pkts: Vec::with_capacity(256) }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    fn clear(&mut self) {
        self.used = 0;
        self.pkts.clear();
    }

    /// Whether a packet of the largest size still fits.
    pub(crate) fn has_room(&self) -> bool {
        self.buf.len() - self.used >= MAX_PACKET
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

    /// Append `other`'s packets if they fit.
    fn append(&mut self, other: &TxArena) -> bool {
        if self.buf.len() - self.used < other.used {
            return false;
        }
        for &(off, len, gso) in &other.pkts {
            self.buf[self.used..self.used + len].copy_from_slice(&other.buf[off..off + len]);
            self.commit(len, gso);
        }
        true
    }
}

/// Counters of the writers (merged into [`LinkStats`]).
#[derive(Clone, Copy, Default, Debug)]
struct TxCounts {
    packets: u64,
    bytes: u64,
    dropped: u64,
    super_segments: u64,
    super_segment_segs: u64,
    unlocked: u64,
    by_other: u64,
    spills: u64,
    waits: u64,
}

struct Queue {
    /// Batches handed over and not yet taken by the writer, in production order.
    pending: TxArena,
    /// The writer's arena while it is not writing.
    spare: Option<TxArena>,
    /// The thread that holds the writer's duty, if any. Invariant: `pending` is not
    /// empty only while there is a writer.
    writer: Option<ThreadId>,
    /// Whoever handed over the batches in `pending` other than the writer.
    pending_by_other: bool,
    /// A fatal write error for the interface lock's holder to act on.
    fatal: Option<io::Error>,
    /// The interface is down: discard instead of writing.
    dead: bool,
    /// Producers waiting on `taken` (std's condvar makes a syscall per notify even with
    /// nobody waiting, so the writer notifies only when someone is).
    waiting: u32,
    counts: TxCounts,
}

/// The queue between the engine's output and the TUN (see the module docs).
pub(crate) struct TxQueue {
    q: Mutex<Queue>,
    /// A producer waits here for the writer to take a full `pending`.
    taken: Condvar,
}

impl TxQueue {
    pub(crate) fn new() -> TxQueue {
        TxQueue {
            q: Mutex::new(Queue {
                pending: TxArena::new(),
                spare: Some(TxArena::new()),
                writer: None,
                pending_by_other: false,
                fatal: None,
                dead: false,
                waiting: 0,
                counts: TxCounts::default(),
            }),
            taken: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand over `batch` (emptied). Called with the interface lock held, which orders the
    /// batches. Returns whether the caller became the writer (it then holds the duty).
    /// `spill`: `batch` filled up in the middle of producing.
    pub(crate) fn hand_over(&self, batch: &mut TxArena, tun: &impl Sink, spill: bool) -> bool {
        if batch.is_empty() {
            return false;
        }
        let me = thread_id();
        let mut q = self.lock();
        q.counts.spills += spill as u64;
        loop {
            if q.pending.is_empty() {
                std::mem::swap(&mut q.pending, batch);
                break;
            }
            if q.pending.append(batch) {
                batch.clear();
                break;
            }
            // `pending` is full, so there is a writer (the invariant).
            if q.writer == Some(me) {
                // This thread holds the duty from an earlier hand-over: write now.
                q = self.write_all(q, tun, false);
                q.writer = Some(me);
            } else {
                q.counts.waits += 1;
                q.waiting += 1;
                q = self.taken.wait(q).unwrap_or_else(|e| e.into_inner());
                q.waiting -= 1;
            }
        }
        if q.writer.is_none() {
            q.writer = Some(me);
            true
        } else {
            q.pending_by_other |= q.writer != Some(me);
            false
        }
    }

    /// The writer's loop: write every queued batch until the queue is empty, then give up
    /// the duty. `unlocked`: the interface lock is not held (counted).
    fn write_all<'a>(
        &'a self,
        mut q: MutexGuard<'a, Queue>,
        tun: &impl Sink,
        unlocked: bool,
    ) -> MutexGuard<'a, Queue> {
        loop {
            if q.pending.is_empty() {
                q.writer = None;
                q.pending_by_other = false;
                return q;
            }
            let Some(mut batch) = q.spare.take() else {
                // Only the writer takes the spare; a missing one is a bug: keep order, drop.
                q.pending.clear();
                continue;
            };
            std::mem::swap(&mut batch, &mut q.pending);
            let by_other = std::mem::take(&mut q.pending_by_other);
            let dead = q.dead;
            let waiting = q.waiting > 0;
            drop(q);
            if waiting {
                self.taken.notify_all();
            }
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
            q.spare = Some(batch);
            q.counts.add(&c);
            if let Some(e) = fatal {
                q.dead = true;
                q.fatal.get_or_insert(e);
            }
        }
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
        let c = self.lock().counts;
        s.tx_packets += c.packets;
        s.tx_bytes += c.bytes;
        s.tx_dropped += c.dropped;
        s.tx_super_segments += c.super_segments;
        s.tx_super_segment_segs += c.super_segment_segs;
        s.tx_unlocked += c.unlocked;
        s.tx_by_other += c.by_other;
        s.tx_spills += c.spills;
        s.tx_waits += c.waits;
    }
}

impl TxCounts {
    fn add(&mut self, o: &TxCounts) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.dropped += o.dropped;
        self.super_segments += o.super_segments;
        self.super_segment_segs += o.super_segment_segs;
        self.unlocked += o.unlocked;
        self.by_other += o.by_other;
        self.spills += o.spills;
        self.waits += o.waits;
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
    fn produce(q: &TxQueue, sink: &Recorder, arena: &mut TxArena, pkts: &[Vec<u8>]) -> bool {
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
                        let writer = produce(&q, &sink, &mut arena, &pkts);
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
        assert!(q.lock().writer.is_none() && q.lock().pending.is_empty());
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
}
