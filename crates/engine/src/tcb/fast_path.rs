//! Header prediction (Van Jacobson's fast path, as in BSD's tcp_input and Linux's
//! tcp_rcv_established): two kinds of segment in ESTABLISHED that dominate a bulk
//! transfer are handled with only the work the full RFC 9293 §3.10.7.4 path would do for
//! them. Every other segment takes the full path (`input.rs`). `Config::fast_path` off
//! sends everything there; `tests/fast_path_equivalence.rs` runs both and requires
//! byte-identical segments out, the same events and the same counters.
//!
//! Entry conditions (all must hold; `predicted`):
//! - State ESTABLISHED (RFC 9293 §3.10.7.4; no FIN sent or received, so the "FIN-WAIT",
//!   "CLOSING", "LAST-ACK" and "TIME-WAIT" arms of the fifth and eighth steps are idle),
//!   and our FIN-state bits are clear: no FIN received ahead of a hole (`fin_seq_rcvd`).
//! - Control bits exactly ACK or ACK+PSH: no SYN, RST, FIN, URG, ECE, CWR (fourth, second,
//!   eighth and sixth steps do nothing; PSH is not acted on, RFC 9293 §3.9.1 MAY-ignore).
//! - SEG.SEQ = RCV.NXT: the first acceptability case passes (§3.10.7.4 first check), no
//!   text is trimmed from the front, nothing is a D-SACK (RFC 2883 §4), and with an empty
//!   out-of-order queue the text goes straight to the receive buffer (RFC 5681 §4.2's
//!   in-order rules: delayed ACK, every-second-segment, quick ACKs, all in `accept_text`).
//! - Timestamps present iff negotiated (RFC 7323 §3.2), and when present SEG.TSval >=
//!   TS.Recent (RFC 7323 §5.3 R1: PAWS accepts it whatever the idle time). TS.Recent is
//!   updated with the same rule as the full path (§4.3: SEG.SEQ =< Last.ACK.sent <
//!   SEG.SEQ + max(SEG.LEN, 1)).
//! - No SACK blocks (RFC 2018 §3): the scoreboard gets no Update() (RFC 6675 §5).
//! - SEG.WND, scaled (RFC 7323 §2.3), equals SND.WND and is not zero: the window update
//!   (§3.10.7.4 fifth step) moves only SND.WL1/WL2 and stops persist, done here with the
//!   full path's WL1/WL2 rule; no probe byte needs resending.
//! - Not in loss recovery (RFC 6582 / RFC 6675 §5), no TLP outstanding (RFC 8985 §7:
//!   TLP.end_seq unset).
//!
//! Then either
//! - (a) data: SEG.LEN > 0, SEG.ACK = SND.UNA = SND.MAX (nothing of ours in flight), the
//!   text fits the acceptance window (no trimming at the right edge, RFC 9293 §3.10.7.4
//!   seventh step), the user has not closed (RFC 9293 §3.10.4), the scoreboard is empty
//!   and RACK holds no records, timer, retransmission mark or D-SACK round (RFC 8985 §6.2:
//!   its per-ACK steps change nothing then), so RACK, RFC 6675 and TLP (whose PTO is
//!   disarmed with nothing in flight, §7.2) are skipped; or
//! - (b) pure ACK: SEG.LEN = 0, SND.UNA < SEG.ACK =< SND.MAX: the skipped work is the
//!   pre-ACK checks (PAWS, SYN, RST, old-segment and acceptability tests, which all pass)
//!   and the text/FIN steps (nothing to do); the ACK itself goes through the same
//!   `process_ack` as the full path (RFC 6675, RACK, TLP, congestion control, window).
//!
//! Shared with the full path, so identical by construction: the per-segment preamble and
//! keepalive restart (`on_segment`), the receive buffer's memory-pool accounting and
//! pressure rules (`RecvBuffer::write` inside `accept_text`), delayed ACK / `ack_every` /
//! quick-ACK bookkeeping (`accept_text`), RTT samples, PMTU probe acknowledgement and the
//! user timeout (`on_new_ack`, reached only through `process_ack`). Urgent data (URG set)
//! and ICMP errors never enter here.

use super::{Cx, RstReply, State, Tcb};
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpSegment};

impl Tcb {
    /// Try the fast path. `None`: not predicted, take the full path (nothing was changed).
    /// `Some(reply)`: the segment was processed.
    pub(super) fn fast_path(
        &mut self,
        cx: &mut Cx,
        now: Instant,
        seg: &TcpSegment,
    ) -> Option<Option<RstReply>> {
        if !cx.cfg.fast_path || !self.predicted(seg) {
            return None;
        }
        if seg.payload.is_empty() {
            if !(self.snd.una.lt(seg.ack) && seg.ack.le(self.snd_max)) {
                return None;
            }
            // (b): the full path's fifth step, then TS.Recent; nothing else applies.
            cx.counters.fast_path_segs += 1;
            if let Some(rst) = self.process_ack(cx, now, seg) {
                return Some(rst);
            }
            self.update_ts_recent(now, seg, seg.payload.len() as u32);
            return Some(None);
        }
        if !self.data_predicted(seg) {
            return None;
        }
        cx.counters.fast_path_segs += 1;
        // (a): the fifth step reduces to the window update's WL1/WL2 bookkeeping.
        self.fast_window_update(seg);
        if self.sack_ok && cx.cfg.tail_loss_probe {
            // RFC 8985 §7.2: arm_tlp with nothing in flight leaves the PTO disarmed.
            self.tlp.deadline = None;
        }
        self.update_ts_recent(now, seg, seg.payload.len() as u32);
        self.accept_text(cx, now, seg.seq, seg.payload);
        Some(None)
    }

    /// The entry conditions common to (a) and (b) (module documentation).
    fn predicted(&self, seg: &TcpSegment) -> bool {
        let f = seg.flags;
        let ts_ok = match seg.options.timestamps {
            Some((tsval, _)) => self.ts_ok && (tsval.wrapping_sub(self.ts_recent) as i32) >= 0,
            None => !self.ts_ok,
        };
        self.state == State::Established
            && (f == TcpFlags::ACK || f == (TcpFlags::ACK | TcpFlags::PSH))
            && seg.seq == self.rcv.nxt
            && ts_ok
            && seg.options.sack.is_empty()
            && (seg.window as u32) << self.snd_wscale == self.snd.wnd
            && self.snd.wnd != 0
            && self.fin_seq_rcvd.is_none()
            && !self.recovery.in_recovery()
            && self.tlp.end_seq.is_none()
    }

    /// (a)'s further conditions (module documentation).
    fn data_predicted(&self, seg: &TcpSegment) -> bool {
        seg.ack == self.snd.una
            && self.snd.una == self.snd_max
            && !self.user_closed
            && seg.payload.len() as u64 <= self.acceptance_window() as u64
            && !self.recvbuf.has_ooo()
            && self.scoreboard.is_empty()
            && self.scoreboard.rack.idle()
    }

    /// RFC 9293 §3.10.7.4 fifth step, window update, for an unchanged non-zero window.
    fn fast_window_update(&mut self, seg: &TcpSegment) {
        if self.snd.wl1.lt(seg.seq) || (self.snd.wl1 == seg.seq && self.snd.wl2.le(seg.ack)) {
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd.wnd);
            self.snd.wl1 = seg.seq;
            self.snd.wl2 = seg.ack;
            self.persist_deadline = None;
            self.persist_backoff = 0;
        }
    }
}
