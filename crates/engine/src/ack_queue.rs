//! ACKs that fell due between two `poll_transmit` calls (RFC 9293 §3.8.6.3 SHLD-19,
//! RFC 5681 §4.2: "an ACK SHOULD be generated for at least every second full-sized
//! segment").
//!
//! A runtime feeds a batch of received packets to `Stack::handle_packet` and only then
//! polls for output. Without this queue, a connection whose ACK was already due when its
//! next data segment arrived folded both into one ACK, so a batch of 50 segments drew one
//! ACK (a 100 MiB upload was acknowledged once per ~25 full-sized segments). The Stack
//! instead writes the owed pure ACK here before it processes the next segment, and
//! `poll_transmit` sends these first.
//!
//! Bounded: `ACK_QUEUE_SLOTS` packets of at most `ACK_SLOT` bytes, allocated once on first
//! use. When full, the owed ACK is folded into the next one as before and counted
//! (`Counters::acks_coalesced`).

use std::collections::VecDeque;

/// Largest pure ACK: 20 bytes IPv4, 20 bytes TCP, 40 bytes of options.
pub(crate) const ACK_SLOT: usize = 80;
/// Owed ACKs held at most between two `poll_transmit` calls.
pub(crate) const ACK_QUEUE_SLOTS: usize = 256;

#[derive(Default)]
pub(crate) struct AckQueue {
    /// `ACK_QUEUE_SLOTS * ACK_SLOT` bytes once used.
    arena: Vec<u8>,
    /// Filled slots in send order: (slot, length).
    ready: VecDeque<(u16, u8)>,
    /// Next slot to fill (a ring over the arena).
    next: usize,
}

impl AckQueue {
    /// A free slot to write one packet into, or `None` when the queue is full.
    pub(crate) fn slot(&mut self) -> Option<&mut [u8]> {
        if self.ready.len() >= ACK_QUEUE_SLOTS {
            return None;
        }
        if self.arena.is_empty() {
            self.arena = vec![0u8; ACK_QUEUE_SLOTS * ACK_SLOT];
            self.ready.reserve(ACK_QUEUE_SLOTS);
        }
        let at = self.next * ACK_SLOT;
        Some(&mut self.arena[at..at + ACK_SLOT])
    }

    /// The slot from [`AckQueue::slot`] now holds a packet of `len` bytes.
    pub(crate) fn commit(&mut self, len: usize) {
        debug_assert!(len <= ACK_SLOT);
        self.ready.push_back((self.next as u16, len.min(ACK_SLOT) as u8));
        self.next = (self.next + 1) % ACK_QUEUE_SLOTS;
    }

    /// Copy the oldest queued packet into `buf` (which holds at least `ACK_SLOT` bytes).
    pub(crate) fn pop_into(&mut self, buf: &mut [u8]) -> Option<usize> {
        let &(slot, len) = self.ready.front()?;
        let (at, len) = (slot as usize * ACK_SLOT, len as usize);
        buf.get_mut(..len)?.copy_from_slice(&self.arena[at..at + len]);
        self.ready.pop_front();
        Some(len)
    }
}
