//! Sending urgent data (RFC 9293 §3.8.5 and §3.10.2, RFC 6093).
//!
//! SEND with the URGENT flag sets SND.UP to the sequence number of the octet after the
//! last urgent octet, i.e. after everything queued so far (RFC 6093 §4: the urgent pointer
//! points to the byte following the urgent data, as Linux and the BSDs implement it).
//! While SND.UP is ahead of SND.UNA the connection is in urgent mode: every segment whose
//! sequence number is below SND.UP carries URG and the offset SND.UP − SEG.SEQ, capped at
//! 65535 (RFC 6093 §4 recommends the cap for urgent data beyond 64 KiB), and Nagle does not
//! hold the urgent data back (Linux's tcp_nagle_test). Receiving stays inline (MUST-30/31).
//!
//! Receiving: when SEG.UP moves the urgent pointer ahead of the data the user has read, the
//! user is signalled once for that continuous stretch (§3.10.7.4 sixth step, MUST-32,
//! `Event::Urgent`), and `Status::urgent_remaining` tells how much urgent data remains
//! before the pointer (MUST-33).

use super::Tcb;
use crate::seq::SeqNum;

impl Tcb {
    /// SEND with URGENT (RFC 9293 §3.10.2: "If the urgent flag is set, then SND.UP <-
    /// SND.NXT" after queueing): queue `data` and mark all of it urgent.
    pub(crate) fn user_send_urgent(&mut self, data: &[u8]) -> Result<usize, crate::error::SendError> {
        let n = self.user_send(data)?;
        if n > 0 {
            // The octet after the last one queued (RFC 6093 §4).
            self.snd.up = self.buf_seq() + self.sendbuf.len() as u32;
        }
        Ok(n)
    }

    /// The sequence number of the next octet the user reads.
    fn read_seq(&self) -> SeqNum {
        self.rcv.nxt - self.recvbuf.readable() as u32
    }

    /// §3.10.7.4 sixth step: "signal the user that the remote side has urgent data if the
    /// urgent pointer (RCV.UP) is in advance of the data consumed. If the user has already
    /// been signaled (or is still in the 'urgent mode') for this continuous sequence of
    /// urgent data, do not signal the user again."
    pub(crate) fn on_urgent_pointer(&mut self, up: SeqNum) {
        let read = self.read_seq();
        if !up.gt(read) {
            return;
        }
        match self.rcv_urgent_end {
            Some(end) if end.gt(read) => self.rcv_urgent_end = Some(end.max(up)),
            _ => {
                self.rcv_urgent_end = Some(up);
                self.notify |= super::notify::URGENT;
            }
        }
    }

    /// MUST-33: urgent octets between the user's read point and the urgent pointer.
    pub(crate) fn urgent_remaining(&self) -> u32 {
        let read = self.read_seq();
        self.rcv_urgent_end.filter(|e| e.gt(read)).map_or(0, |e| e.since(read))
    }

    /// After a read: the stretch ends once the user has read past the urgent pointer.
    pub(crate) fn urgent_read(&mut self) {
        if self.rcv_urgent_end.is_some() && self.urgent_remaining() == 0 {
            self.rcv_urgent_end = None;
        }
    }

    /// SND.UNA moves to `ack`: the marks compared with it move along once passed, so that
    /// they stay within 2^31 of SND.UNA and the wrapping comparison (RFC 9293 §3.4) cannot
    /// flip after 2 GiB of data (issue 12 regression):
    /// - SND.UP, unless urgent data is still outstanding beyond `ack` (BSD's tcp_output
    ///   "drag it along", Linux's tcp_clean_rtx_queue); else `urgent_mode` turned on;
    /// - the end of the last small segment (Minshall's Nagle, `output.rs`); else a small
    ///   segment was held with nothing in flight to release it.
    pub(crate) fn drag_marks(&mut self, ack: SeqNum) {
        if !self.snd.up.gt(ack) {
            self.snd.up = ack;
        }
        if !self.snd_sml.gt(ack) {
            self.snd_sml = ack;
        }
    }

    /// Urgent mode: SND.UP is ahead of SND.UNA (urgent data not yet acknowledged).
    pub(crate) fn urgent_mode(&self) -> bool {
        self.snd.up.gt(self.snd.una)
    }

    /// The urgent pointer for a segment starting at `seq`, when it must carry URG.
    pub(crate) fn urgent_pointer(&self, seq: SeqNum) -> Option<u16> {
        if !self.urgent_mode() || !seq.lt(self.snd.up) {
            return None;
        }
        Some(self.snd.up.since(seq).min(0xFFFF) as u16)
    }
}
