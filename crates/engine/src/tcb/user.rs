//! User calls on a TCB (RFC 9293 §3.10.2–3.10.6): SEND, RECEIVE, CLOSE (and half-close),
//! ABORT. Errors are the typed errors of `error.rs`.

use super::{Cx, State, Tcb, notify};
use crate::CloseReason;
use crate::error::{RecvError, SendError};

impl Tcb {
    /// Whether SEND may queue data now (RFC 9293 §3.10.2), else the error it returns.
    fn send_allowed(&mut self) -> Result<(), SendError> {
        if self.fin_queued || self.user_closed {
            // "error: connection closing" — std reports EPIPE.
            return Err(SendError::Closing);
        }
        match self.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => Ok(()),
            // Like SO_ERROR on Linux, the error is reported once; later calls see a broken pipe.
            State::Closed => Err(SendError::closed(self.error.take())),
            _ => Err(SendError::Closing),
        }
    }

    /// SEND (RFC 9293 §3.10.2).
    pub(crate) fn user_send(&mut self, data: &[u8]) -> Result<usize, SendError> {
        self.send_allowed()?;
        if data.is_empty() {
            return Ok(0);
        }
        match self.sendbuf.push(data) {
            0 => Err(SendError::WouldBlock),
            n => Ok(n),
        }
    }

    /// SEND without a copy (smoltcp's `send` with a closure): `f` writes into the send
    /// ring's free space and returns how many bytes it wrote.
    pub(crate) fn user_send_with(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> Result<usize, SendError> {
        self.send_allowed()?;
        if self.sendbuf.free() == 0 {
            return Err(SendError::WouldBlock);
        }
        match self.sendbuf.push_with(f) {
            // The pool gave no storage at all: as full as a full buffer.
            0 if self.sendbuf.allocated() == self.sendbuf.len() => Err(SendError::WouldBlock),
            n => Ok(n),
        }
    }

    /// Whether RECEIVE has data (`Ok(true)`), is at end of stream (`Ok(false)`), or fails
    /// (RFC 9293 §3.10.3).
    fn recv_ready(&mut self) -> Result<bool, RecvError> {
        if self.read_shut {
            return Ok(false);
        }
        if self.recvbuf.readable() > 0 {
            return Ok(true);
        }
        if self.fin_rcvd {
            return Ok(false);
        }
        match self.state {
            // The error is reported once (SO_ERROR); later reads see end of stream. Our
            // own ABORT is no read error: it stays for SO_ERROR and SEND.
            State::Closed => match RecvError::closed(self.error) {
                Some(e) => {
                    self.error = None;
                    Err(e)
                }
                None => Ok(false),
            },
            State::Closing | State::LastAck | State::TimeWait | State::CloseWait => Ok(false),
            _ => Err(RecvError::WouldBlock),
        }
    }

    /// RECEIVE (RFC 9293 §3.10.3). `Ok(0)` is end of stream.
    pub(crate) fn user_recv(&mut self, buf: &mut [u8], peek: bool) -> Result<usize, RecvError> {
        if !self.recv_ready()? || buf.is_empty() {
            return Ok(0);
        }
        Ok(if peek { self.recvbuf.peek(buf) } else { self.recvbuf.read(buf) })
    }

    /// RECEIVE without a copy: `f` sees the readable bytes up to the ring's wrap point and
    /// returns how many it consumed. End of stream is `Ok(0)` without calling `f`.
    pub(crate) fn user_recv_with(&mut self, f: impl FnOnce(&[u8]) -> usize) -> Result<usize, RecvError> {
        if !self.recv_ready()? {
            return Ok(0);
        }
        let (data, _) = self.recvbuf.peek_slices();
        let n = f(data).min(data.len());
        self.recvbuf.consume(n);
        Ok(n)
    }

    /// After the user read: announce the opened window if it grew enough, at once, or
    /// (`Config::defer_window_update`) with the next segment or the delayed-ACK timer
    /// while the peer can still send two full segments (`output.rs` arms the timer).
    pub(crate) fn after_user_read(&mut self, cfg: &crate::Config) {
        self.urgent_read();
        if self.window_update_due() {
            let room = self.rcv_wnd_now() as usize;
            if cfg.defer_window_update && cfg.delayed_ack.is_some() && room >= 2 * self.rcv_mss as usize {
                self.window_update_deferred = true;
            } else {
                self.ack_now = true;
                self.ack_reason = crate::TxReason::WindowUpdate;
            }
        }
    }

    /// shutdown(Write), i.e. CLOSE of the sending side (RFC 9293 §3.10.4): queue a FIN after
    /// the data. Returns true if the TCB is gone (SYN-SENT).
    pub(crate) fn user_shutdown_write(&mut self, cx: &mut Cx) -> bool {
        if self.fin_queued {
            return false;
        }
        match self.state {
            State::SynSent => {
                // "Delete the TCB and return 'error: closing' responses to any queued SENDs"
                self.close_with(cx, CloseReason::Normal);
                return true;
            }
            State::SynReceived | State::Established => {
                // "Queue this until all preceding SENDs have been segmentized, then form a FIN
                //  segment and send it. In any case, enter FIN-WAIT-1 state."
                self.fin_queued = true;
                self.set_state(cx, State::FinWait1);
            }
            State::CloseWait => {
                // "Queue this request until all preceding SENDs have been segmentized; then
                //  send a FIN segment, enter LAST-ACK state."
                self.fin_queued = true;
                self.set_state(cx, State::LastAck);
            }
            _ => {}
        }
        false
    }

    /// shutdown(Read): further reads see end of stream; queued data is discarded.
    pub(crate) fn user_shutdown_read(&mut self) {
        self.read_shut = true;
        let n = self.recvbuf.readable();
        self.recvbuf.consume(n);
        self.notify |= notify::READABLE;
    }

    /// CLOSE (RFC 9293 §3.10.4). With unread data, RFC 2525 §2.17 asks for a RST instead.
    pub(crate) fn user_close(&mut self, cx: &mut Cx) {
        self.user_closed = true;
        if self.state == State::Closed {
            return;
        }
        if self.recvbuf.readable() > 0 && !self.read_shut {
            self.user_abort(cx);
            return;
        }
        self.user_shutdown_write(cx);
    }

    /// ABORT (RFC 9293 §3.10.5): RST in synchronized states, then CLOSED.
    pub(crate) fn user_abort(&mut self, cx: &mut Cx) {
        self.user_closed = true;
        match self.state {
            State::Closed => {}
            State::SynSent | State::Listen => self.close_with(cx, CloseReason::Aborted),
            State::Closing | State::LastAck | State::TimeWait => {
                // "Respond with 'ok' and delete the TCB"
                self.close_with(cx, CloseReason::Aborted);
            }
            _ => {
                // "Send a reset segment: <SEQ=SND.NXT><CTL=RST>"
                self.send_rst = true;
                self.sendbuf.clear();
            }
        }
    }
}
