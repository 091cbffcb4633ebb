//! Buffer memory of one TCB (issue 9, bounded memory): the rings join the Stack's
//! [`MemPool`], are freed when the connection closes or enters TIME-WAIT, are released when
//! idle, and give up their out-of-order data under pressure.

use super::{State, Tcb};
use crate::memory::MemPool;
use std::sync::Arc;

impl Tcb {
    /// Account this connection's rings in the Stack's pool (`Config::buffer_memory`).
    pub(crate) fn attach_pool(&mut self, pool: &Arc<MemPool>) {
        self.sendbuf.set_pool(pool.clone());
        self.recvbuf.set_pool(pool.clone());
    }

    /// TIME-WAIT or CLOSED: nothing will be sent or reassembled any more, so the send ring,
    /// the out-of-order data, the SACK scoreboard and (once read) the receive ring go back
    /// to the allocator at once. Unread in-order data stays for a user still holding the
    /// handle.
    pub(crate) fn release_closed_buffers(&mut self) {
        debug_assert!(matches!(self.state, State::TimeWait | State::Closed));
        if self.state == State::Closed {
            self.sendbuf.clear();
        }
        self.sendbuf.release();
        if self.recvbuf.ooo_bytes() > 0 {
            self.recvbuf.prune_ooo();
            self.last_ooo = None;
        }
        self.recvbuf.release();
        if !self.scoreboard.is_empty() {
            self.scoreboard = super::sack::Scoreboard::new(self.snd.una);
        }
        self.syn_text = None;
    }

    /// The Stack's periodic sweep: release rings idle since the last sweep; under memory
    /// pressure prune held out-of-order data first (Linux's tcp_prune_ofo_queue).
    pub(crate) fn sweep_buffers(&mut self, pressure: bool) {
        if pressure && self.recvbuf.prune_ooo() > 0 {
            self.last_ooo = None;
        }
        self.sendbuf.sweep_idle();
        self.recvbuf.sweep_idle();
    }

    /// Bytes of ring storage this connection holds.
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.sendbuf.allocated() + self.recvbuf.allocated()
    }
}
