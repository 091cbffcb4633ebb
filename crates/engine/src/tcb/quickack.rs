//! Linux's quick-ACK mode (`Config::quickack_segments`): at the start of a connection,
//! and again after the receiver was idle for longer than the RTO, in-order data is
//! acknowledged at once instead of waiting for the delayed-ACK timer or a second
//! full-sized segment (net/ipv4/tcp_input.c: tcp_event_data_recv, tcp_incr_quickack).
//! RFC 9293 §3.8.6.3 and RFC 5681 §4.2 allow an ACK to be sent sooner than the delay
//! bound, so the knob only makes ACKs earlier.
//!
//! Also here: Linux's acceptance of an in-sequence segment beyond the window when the
//! receive queue is empty (`Config::accept_beyond_window_if_empty`).

use super::Tcb;
use crate::Config;
use crate::time::Instant;

/// Quick-ACK state of one connection.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct QuickAck {
    /// Immediate ACKs still to send in this quick-ACK period.
    left: u32,
    /// When in-order data last arrived; `None` before the first.
    last_data: Option<Instant>,
}

impl Tcb {
    /// Called for each in-order data segment: true if it must be acknowledged at once.
    pub(crate) fn quickack_due(&mut self, cfg: &Config, now: Instant) -> bool {
        if cfg.quickack_segments == 0 {
            return false;
        }
        let idle = match self.quickack.last_data {
            None => true,
            Some(t) => now.saturating_since(t) > self.rtt.rto(),
        };
        self.quickack.last_data = Some(now);
        if idle {
            // tcp_incr_quickack: RCV.WND / (2 * MSS), at least 2, at most the maximum.
            let mss = (self.rcv_mss as usize).max(1);
            let by_window = (self.recvbuf.window() / (2 * mss)).max(2) as u32;
            self.quickack.left = self.quickack.left.max(by_window.min(cfg.quickack_segments));
        }
        if self.quickack.left == 0 {
            return false;
        }
        self.quickack.left -= 1;
        true
    }
}

impl Tcb {
    /// How much of an in-window segment at `seq` may be kept, given `room` from the
    /// window (RFC 9293 §3.10.7.4 trims at the window's right edge). With
    /// `Config::accept_beyond_window_if_empty` an in-sequence segment starting inside a
    /// non-zero window is kept whole, within the free buffer space, when nothing waits to
    /// be read (Linux's tcp_sequence() and tcp_data_queue()).
    pub(crate) fn room_beyond_window(&self, cfg: &Config, seq: crate::seq::SeqNum, room: usize) -> usize {
        let queue_empty = self.recvbuf.readable() == 0 && self.recvbuf.ooo_bytes() == 0;
        if !cfg.accept_beyond_window_if_empty || seq != self.rcv.nxt || room == 0 || !queue_empty {
            return room;
        }
        room.max(self.recvbuf.window())
    }
}
