//! Tail loss probe (RFC 8985 §7, `Config::tail_loss_probe`).
//!
//! When the ACK clock stops with data outstanding and no loss recovery running, a probe
//! leaves after the probe timeout (PTO) instead of waiting for the RTO: new data if the
//! peer's window allows (§7.3), else the highest sent segment again. Its ACK, with SACK,
//! gives RFC 6675 the information to start fast recovery for the tail of the window.
//! One probe per tail: no new probe until an ACK covers the data sent before it (§7.2).
//! A loss the probe repaired (its ACK carries no D-SACK for it) triggers the same
//! cwnd reduction as fast recovery would have (§7.4).
//! With RACK (rack.rs, `Config::rack`) the PTO and the reordering timer share one slot
//! (RFC 8985 §8): while the reordering timer is armed no PTO is.

use super::output::Plan;
use super::{Cx, State, Tcb};
use crate::Config;
use crate::time::{Duration, Instant};
use crate::wire::{TcpFlags, TcpSegment};

/// RFC 8985 §7.2 WCDelAckT: the worst-case delayed-ACK time added when only one segment
/// is in flight.
const WC_DEL_ACK_T: Duration = Duration::from_millis(200);
/// Lower bound on the PTO, so that a tiny SRTT (a loopback or a same-instant handshake
/// sample) does not probe at once (Linux: TCP_TIMEOUT_MIN, 2 jiffies).
pub(crate) const MIN_PTO: Duration = Duration::from_millis(10);

/// TLP state of one connection.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tlp {
    /// When the probe is due.
    pub(crate) deadline: Option<Instant>,
    /// A probe must be sent at the next poll.
    pub(crate) pending: bool,
    /// TLP.end_seq: SND.MAX when the probe was sent; no new probe until it is ACKed.
    pub(crate) end_seq: Option<crate::seq::SeqNum>,
    /// The probe was a retransmission (§7.4: did it repair a loss?).
    pub(crate) is_retrans: bool,
}

impl Tcb {
    /// §7.2: (re)arm the PTO after an ACK or a transmission.
    pub(crate) fn arm_tlp(&mut self, cfg: &Config, now: Instant) {
        self.tlp.deadline = None;
        // Our FIN may be outstanding (FIN-WAIT-1, CLOSING, LAST-ACK): it is probed too.
        let open = matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait1 | State::Closing | State::LastAck
        );
        if !cfg.tail_loss_probe
            || !self.sack_ok
            || !open
            || self.recovery.in_recovery()
            || self.snd.una == self.snd_max
            || self.tlp.end_seq.is_some()
            || self.retries > 0
            || self.snd.wnd == 0
            || self.scoreboard.rack.timer.is_some()
        {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        let mut pto = (srtt * 2).max(MIN_PTO);
        if self.flight_size() <= self.eff_mss(cfg) {
            pto += WC_DEL_ACK_T;
        }
        let at = now + pto;
        // PTO = min(PTO, RTO): the RTO fires first otherwise.
        if self.rtx_deadline.is_none_or(|r| at < r) {
            self.tlp.deadline = Some(at);
        }
    }

    /// The PTO fired (§7.3): send a probe at the next poll and arm the RTO.
    pub(crate) fn on_pto(&mut self, cfg: &Config, now: Instant) {
        self.tlp.deadline = None;
        if self.snd.una == self.snd_max || self.recovery.in_recovery() {
            return;
        }
        self.tlp.pending = true;
        self.rtx_deadline = Some(now + self.rto_timer(cfg));
    }

    /// §7.4: an ACK for the data up to TLP.end_seq ends the episode; if the probe was a
    /// retransmission and no D-SACK reports it as a duplicate, it repaired a loss.
    pub(crate) fn tlp_on_ack(&mut self, cx: &mut Cx, seg: &TcpSegment) {
        let Some(end) = self.tlp.end_seq else { return };
        if seg.ack.lt(end) {
            return;
        }
        self.tlp.end_seq = None;
        let dsack = seg.options.sack.as_slice().first().is_some_and(|&(s, _)| s.lt(seg.ack));
        if self.tlp.is_retrans && !dsack && !self.recovery.in_recovery() {
            let smss = self.eff_mss(cx.cfg);
            let ssthresh_before = self.cc.ssthresh();
            self.cc.on_sack_recovery_start(self.cc.cwnd(), smss);
            cx.counters.tlp_recoveries += (self.cc.ssthresh() != ssthresh_before) as u64;
        }
    }

    /// §7.3: the probe segment: new data if the window allows, else the last segment sent.
    pub(super) fn plan_tlp(&mut self, cx: &mut Cx) -> Option<Plan> {
        if !self.tlp.pending {
            return None;
        }
        self.tlp.pending = false;
        let mss = self.eff_mss(cx.cfg);
        let buf_seq = self.buf_seq();
        let off = self.snd.nxt.since(buf_seq) as usize;
        let unsent = self.sendbuf.len().saturating_sub(off);
        let room = (self.snd.wnd as usize).saturating_sub(self.snd.nxt.since(self.snd.una) as usize);
        cx.counters.tlp_probes += 1;
        self.tlp.end_seq = Some(self.snd_max);
        if self.snd.nxt == self.snd_max && unsent > 0 && room > 0 {
            let len = unsent.min(room).min(mss);
            let mut flags = TcpFlags::ACK;
            if off + len == self.sendbuf.len() {
                flags |= TcpFlags::PSH;
            }
            self.tlp.is_retrans = false;
            self.tx_reason = crate::TxReason::TailLossProbeNewData;
            return Some(Plan { seq: self.snd.nxt, flags, off, len });
        }
        let data_end = buf_seq + self.sendbuf.len() as u32;
        let end = if self.snd_max.lt(data_end) { self.snd_max } else { data_end };
        let start = if end.since(self.snd.una) as usize > mss { end - mss as u32 } else { self.snd.una };
        self.tlp.is_retrans = true;
        // "The last segment sent" may carry our FIN, or be the FIN alone: the probe carries
        // it again (as Linux's loss probe resends its tail skb), so a lost FIN is repaired
        // after the PTO, not the RTO.
        let fin = self.fin_seq().filter(|&fs| fs == end && !self.fin_acked() && self.snd_max.gt(fs));
        let plan = match fin {
            Some(fs) if start == end => Some(self.plan_fin_probe(cx, fs)),
            _ => self.plan_rxt_range(cx, start, end.since(start)).map(|mut p| {
                if fin.is_some_and(|fs| p.seq + p.len as u32 == fs) {
                    p.flags |= TcpFlags::FIN;
                }
                p
            }),
        };
        if plan.is_none() {
            self.tlp.end_seq = None;
        }
        plan
    }

    /// A probe that is the FIN alone (all data acknowledged, the FIN not).
    fn plan_fin_probe(&mut self, cx: &mut Cx, fin_seq: crate::seq::SeqNum) -> Plan {
        self.tx_reason = crate::TxReason::TailLossProbe;
        self.retransmits += 1;
        cx.counters.retrans_segs += 1;
        Plan { seq: fin_seq, flags: TcpFlags::ACK | TcpFlags::FIN, off: self.sendbuf.len(), len: 0 }
    }
}
