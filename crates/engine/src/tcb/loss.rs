//! SACK-based loss recovery (RFC 6675) with Proportional Rate Reduction (RFC 6937).
//!
//! - §2 DupAck: an ACK that SACKs previously unSACKed octets is a duplicate, even when it
//!   changes the window or also advances SND.UNA; an RFC 5681 duplicate counts as well.
//! - §5 steps (1)-(4): loss recovery starts at DupThresh duplicates or as soon as
//!   IsLost(HighACK + 1) holds; ssthresh comes from the congestion controller, cwnd =
//!   ssthresh, or PRR's `pipe + sndcnt` with `Config::prr`.
//! - §5 (B)/(C) and §4 NextSeg rules 1-4: while cwnd - pipe >= 1 SMSS, send the first lost
//!   hole above HighRxt (rule 1), else new data (rule 2, `plan_data`), else an unSACKed
//!   range above HighRxt (rule 3), else one rescue retransmission per recovery (rule 4).
//!   A partial ACK retransmits nothing by itself; RFC 6582's rule is the non-SACK path.
//!
//! The non-SACK path (RFC 5681 + RFC 6582) stays in input.rs.

use super::congestion::DupAckAction;
use super::output::Plan;
use super::prr::Prr;
use super::{Cx, Tcb};
use crate::Config;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpSegment};

impl Tcb {
    /// The ACK processing of RFC 6675 §5 for a connection that negotiated SACK.
    pub(crate) fn on_ack_rfc6675(&mut self, cx: &mut Cx, now: Instant, seg: &TcpSegment) {
        let una_before = self.snd.una;
        let sacked_before = self.scoreboard.total_sacked() as usize;
        // RFC 2018 §5 / RFC 6675 §5: Update() the scoreboard with every ACK's blocks,
        // including ACKs that advance SND.UNA.
        let newly_sacked = if seg.options.sack.is_empty() {
            0
        } else {
            let una = seg.ack.max(self.snd.una);
            self.scoreboard.update(una, self.snd_max, seg.options.sack.as_slice())
        };
        let classic_dup = self.is_rfc5681_dup_ack(seg);
        if self.snd.una.lt(seg.ack) {
            self.on_new_ack(cx, now, seg);
        }
        // RFC 8985 §6.2: RACK's time-based loss marks (rack.rs, `Config::rack`).
        let rack_lost = self.rack_on_ack(cx, now, seg);
        // RFC 6937 §3: DeliveredData = change in SND.UNA + change in SACKed bytes (which
        // shrink when SND.UNA passes SACKed data).
        let sacked_after = self.scoreboard.total_sacked() as usize;
        let delivered =
            (self.snd.una.since(una_before) as usize + sacked_after).saturating_sub(sacked_before);
        if self.recovery.in_recovery() {
            // §5 (B): Update() done, SetPipe() is computed where it is used; PRR.
            if !self.scoreboard.rack.active() {
                self.detect_lost_retransmission(cx.cfg);
            }
            self.prr_on_ack(cx.cfg, delivered);
            return;
        }
        // §2 DupAck, with data outstanding.
        if self.snd.una == self.snd_max || !(newly_sacked > 0 || classic_dup || rack_lost > 0) {
            return;
        }
        let smss = self.eff_mss(cx.cfg);
        let lost = rack_lost > 0 || self.scoreboard.is_lost(self.snd.una, smss as u32);
        match self.recovery.on_sack_dup_ack(self.snd.una, self.snd_max, lost) {
            DupAckAction::FastRetransmit => self.start_sack_recovery(cx, delivered),
            DupAckAction::None => {
                // §5 step (3): RFC 3042 limited transmit for the first two duplicates.
                if self.recovery.dup_acks() <= 2 {
                    self.limited_transmit = self.recovery.dup_acks();
                }
            }
            DupAckAction::Inflate => {}
        }
    }

    /// RFC 6675 §5 step (4): enter loss recovery.
    fn start_sack_recovery(&mut self, cx: &mut Cx, delivered: usize) {
        let smss = self.eff_mss(cx.cfg);
        let flight = self.flight_size();
        // (4.1) RecoveryPoint = HighData was set by `Recovery`; (4.2) ssthresh, cwnd.
        self.cc.on_sack_recovery_start(flight, smss);
        self.scoreboard.high_rxt = self.snd.una;
        self.scoreboard.rescue_rxt = None;
        self.limited_transmit = 0;
        // (4.3) Retransmit the first segment presumed dropped, HighACK + 1; with RACK, the
        // first segment it marked lost.
        let rack = &mut self.scoreboard.rack;
        if rack.active() && !rack.is_lost_at(self.snd.una) && rack.first_lost(self.snd_max).is_some() {
            rack.rxt_first = true;
        } else {
            self.rtx_una = true;
        }
        self.scoreboard.rxt_fence = Some((self.snd.una, self.snd_max));
        self.scoreboard.rxt_again = None;
        self.fast_retransmits += 1;
        cx.counters.fast_retransmits += 1;
        self.rtt_timed = None;
        self.prr = None;
        if cx.cfg.prr {
            // RFC 6937 §3: RecoverFS = snd.nxt - snd.una; this ACK is the first of recovery.
            self.prr = Some(Prr::start(flight));
            self.prr_on_ack(cx.cfg, delivered);
        }
    }

    /// A retransmission of the segment at SND.UNA is lost when more than
    /// (DupThresh - 1) * SMSS bytes sent after it are SACKed while it is still
    /// unacknowledged: the IsLost() rule of RFC 6675 §4 applied to the retransmission's
    /// place in the send order (Linux's lost-retransmit detection before RACK, the idea of
    /// RFC 8985 §6.2 without per-segment times). Without this only the RTO repairs it.
    fn detect_lost_retransmission(&mut self, cfg: &Config) {
        let Some((seq, fence)) = self.scoreboard.rxt_fence else { return };
        if seq.lt(self.snd.una) {
            self.scoreboard.rxt_fence = None;
            return;
        }
        let smss = self.eff_mss(cfg) as u32;
        if seq == self.snd.una
            && self.scoreboard.sacked_above(fence) > (super::congestion::DUP_THRESH - 1) * smss
        {
            self.scoreboard.rxt_fence = None;
            self.scoreboard.rxt_again = Some(seq);
        }
    }

    /// RFC 6937 §3, on every ACK during recovery: cwnd = pipe + sndcnt.
    fn prr_on_ack(&mut self, cfg: &Config, delivered: usize) {
        let Some(mut prr) = self.prr else { return };
        let smss = self.eff_mss(cfg);
        let pipe = self.scoreboard.pipe(self.snd.una, self.snd_max, smss as u32) as usize;
        let cwnd = prr.on_ack(delivered, pipe, self.cc.ssthresh(), smss);
        self.cc.set_cwnd(cwnd);
        self.prr = Some(prr);
    }

    /// RFC 6675 §5 (A): the cumulative ACK covers RecoveryPoint; recovery ends. With PRR,
    /// cwnd = ssthresh (RFC 6937 §3); else RFC 6582 §3.2 step 3's burst-avoiding exit.
    pub(crate) fn end_sack_recovery(&mut self, cx: &mut Cx) {
        self.scoreboard.rack.on_recovery_exit(); // RFC 8985 §6.2 step 3
        if self.prr.take().is_some() {
            let ssthresh = self.cc.ssthresh();
            self.cc.set_cwnd(ssthresh);
        } else {
            let flight = self.flight_size();
            self.cc.on_recovery_exit(flight, self.eff_mss(cx.cfg));
        }
    }

    /// What the congestion window limits with SACK: SetPipe() (RFC 6675 §4) while loss
    /// recovery runs; after an RTO, until SND.UNA reaches the recovery point (§5.1), the
    /// bytes sent from SND.UNA to SND.NXT that the receiver has not SACKed, so that
    /// slow start refills the holes without counting SACKed data as in flight.
    pub(crate) fn recovery_pipe(&self, cfg: &Config) -> Option<usize> {
        if !self.sack_ok {
            return None;
        }
        if self.recovery.in_recovery() {
            let smss = self.eff_mss(cfg) as u32;
            return Some(self.scoreboard.pipe(self.snd.una, self.snd_max, smss) as usize);
        }
        if self.snd.una.lt(self.recovery.recover()) {
            return Some(self.scoreboard.unsacked_in(self.snd.una, self.snd.nxt) as usize);
        }
        None
    }

    /// RFC 6675 §5 (C): cwnd - pipe >= 1 SMSS.
    fn recovery_room(&self, cfg: &Config) -> bool {
        if !self.recovery.in_recovery() {
            return false;
        }
        self.recovery_pipe(cfg).is_some_and(|pipe| self.cc.cwnd() >= pipe + self.eff_mss(cfg))
    }

    /// NextSeg rule 1 (RFC 6675 §4): the first lost unSACKed range above HighRxt; before
    /// it, a retransmission found lost again (`detect_lost_retransmission`).
    pub(super) fn plan_next_seg_lost(&mut self, cx: &mut Cx) -> Option<Plan> {
        if self.scoreboard.rack.active() {
            return self.plan_rack_lost(cx);
        }
        if !self.recovery_room(cx.cfg) {
            return None;
        }
        let smss = self.eff_mss(cx.cfg) as u32;
        if let Some(seq) = self.scoreboard.rxt_again.take()
            && seq == self.snd.una
        {
            cx.counters.lost_retransmits += 1;
            self.tx_reason = crate::TxReason::LostRetransmit;
            let plan = self.plan_rxt(cx, seq, smss, false);
            self.scoreboard.rxt_fence = Some((seq, self.snd_max));
            if plan.is_some() {
                return plan;
            }
        }
        match self.scoreboard.next_seg_rxt(self.snd.una, smss)? {
            (seq, len, true) => {
                self.tx_reason = crate::TxReason::SackHoleRetransmit;
                self.plan_rxt(cx, seq, len, true)
            }
            _ => None,
        }
    }

    /// NextSeg rules 3 and 4 (RFC 6675 §4), after new data (rule 2) had nothing to send.
    pub(super) fn plan_next_seg_rescue(&mut self, cx: &mut Cx) -> Option<Plan> {
        if !self.recovery_room(cx.cfg) {
            return None;
        }
        let smss = self.eff_mss(cx.cfg) as u32;
        // Rule 3: an unSACKed range above HighRxt below the highest SACKed octet.
        if let Some((seq, len, _)) = self.scoreboard.next_seg_rxt(self.snd.una, smss) {
            self.tx_reason = crate::TxReason::SackHoleRetransmit;
            return self.plan_rxt(cx, seq, len, true);
        }
        // Rule 4: one rescue retransmission per recovery ("HighACK > RescueRxt").
        if self.scoreboard.rescue_rxt.is_some_and(|r| !self.snd.una.gt(r)) {
            return None;
        }
        let data_end = self.buf_seq() + self.sendbuf.len() as u32;
        let (seq, len) = self.scoreboard.rescue_range(self.snd.una, data_end, smss)?;
        self.tx_reason = crate::TxReason::RescueRetransmit;
        let plan = self.plan_rxt(cx, seq, len, false)?;
        // "RescueRxt set to RecoveryPoint. HighRxt MUST NOT be updated."
        self.scoreboard.rescue_rxt = Some(self.recovery.recover());
        Some(plan)
    }

    /// RFC 8985 §6.2: RACK marked a segment lost outside recovery; start it as RFC 6675
    /// §5 step 4 does.
    pub(crate) fn rack_start_recovery(&mut self, cx: &mut Cx) {
        let action = self.recovery.on_sack_dup_ack(self.snd.una, self.snd_max, true);
        if let DupAckAction::FastRetransmit = action {
            self.start_sack_recovery(cx, 0);
        }
    }

    /// NextSeg rule 1 with RACK (RFC 8985 §6.2, RFC 6675 §4): the first segment marked lost
    /// (by RACK or IsLost()) and not retransmitted since, its unSACKed front, at most SMSS.
    /// Our FIN occupies one sequence number (RFC 9293 §3.4): a lost record holding it is
    /// resent like data, the FIN alone or with the data before it.
    fn plan_rack_lost(&mut self, cx: &mut Cx) -> Option<Plan> {
        let first = core::mem::take(&mut self.scoreboard.rack.rxt_first);
        if !first && !self.recovery_room(cx.cfg) {
            return None;
        }
        let data_end = self.buf_seq() + self.sendbuf.len() as u32;
        // The FIN, if it was sent and is not acknowledged yet.
        let fin = self.fin_seq().filter(|&fs| !self.fin_acked() && self.snd_max.gt(fs));
        let limit = fin.map_or(data_end, |fs| fs + 1);
        let (mut seq, end) = self.scoreboard.rack.first_lost(limit)?;
        if let Some(e) = self.scoreboard.sacked_end_at(seq) {
            seq = e;
        }
        if fin == Some(seq) {
            return Some(self.plan_rack_lost_fin(cx, seq));
        }
        let fin = fin.filter(|&fs| fs.lt(end));
        let mut end = end.min(data_end);
        if let Some(s) = self.scoreboard.next_sacked_after(seq) {
            end = end.min(s);
        }
        if !seq.lt(end) {
            return None;
        }
        let len = end.since(seq).min(self.eff_mss(cx.cfg) as u32);
        self.tx_reason = crate::TxReason::SackHoleRetransmit;
        let mut plan = self.plan_rxt(cx, seq, len, false)?;
        // The lost record holds the FIN right after this data: it goes along.
        if fin.is_some_and(|fs| plan.seq + plan.len as u32 == fs) {
            plan.flags |= TcpFlags::FIN;
        }
        // HighRxt covers it, so that rules 3 and 4 do not send it again.
        if self.scoreboard.high_rxt.lt(seq + len) {
            self.scoreboard.high_rxt = seq + len;
        }
        Some(plan)
    }

    /// NextSeg rule 1 for a lost record that is our FIN alone (all data before it is
    /// acknowledged or was resent): <SEQ=FIN><CTL=FIN,ACK>, no payload.
    fn plan_rack_lost_fin(&mut self, cx: &mut Cx, fin_seq: crate::seq::SeqNum) -> Plan {
        self.tx_reason = crate::TxReason::SackHoleRetransmit;
        self.retransmits += 1;
        cx.counters.retrans_segs += 1;
        if self.scoreboard.high_rxt.lt(fin_seq + 1) {
            self.scoreboard.high_rxt = fin_seq + 1;
        }
        Plan { seq: fin_seq, flags: TcpFlags::ACK | TcpFlags::FIN, off: self.sendbuf.len(), len: 0 }
    }

    /// A retransmission of `[seq, seq + len)` that leaves HighRxt alone (TLP, RFC 8985 §7.3).
    pub(super) fn plan_rxt_range(&mut self, cx: &mut Cx, seq: crate::seq::SeqNum, len: u32) -> Option<Plan> {
        self.tx_reason = crate::TxReason::TailLossProbe;
        self.plan_rxt(cx, seq, len, false)
    }

    /// A retransmission of `[seq, seq + len)` from the send buffer; (C.4) HighRxt.
    fn plan_rxt(&mut self, cx: &mut Cx, seq: crate::seq::SeqNum, len: u32, high_rxt: bool) -> Option<Plan> {
        let buf_seq = self.buf_seq();
        if seq.lt(buf_seq) {
            return None;
        }
        let off = seq.since(buf_seq) as usize;
        let len = (len as usize).min(self.sendbuf.len().saturating_sub(off));
        if len == 0 {
            return None;
        }
        if high_rxt {
            self.scoreboard.high_rxt = seq + len as u32;
        }
        self.retransmits += 1;
        cx.counters.retrans_segs += 1;
        let mut flags = TcpFlags::ACK;
        if off + len == self.sendbuf.len() {
            flags |= TcpFlags::PSH;
        }
        Some(Plan { seq, flags, off, len })
    }
}
