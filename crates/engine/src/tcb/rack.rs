//! RACK: time-based loss detection (RFC 8985 §6, `Config::rack`).
//!
//! Every data transmission leaves a record (start, end, xmit_ts, lost / retransmitted /
//! SACKed) in the send-side scoreboard (`Scoreboard::rack`, a ring that reaches its
//! working size with the flight and then neither allocates nor frees). On each ACK:
//! - §6.2 step 2: the most recently sent segment among those newly delivered gives
//!   RACK.xmit_ts / RACK.end_seq / RACK.rtt; an ambiguous retransmission (its ACK echoes
//!   an older TSval, or its RTT is below RACK.min_RTT) is no sample.
//! - step 3: a segment delivered below RACK.fack that was never retransmitted is
//!   reordering (RACK.reord); a D-SACK widens the window (RACK.reo_wnd_mult, 16 recoveries).
//! - step 4: RACK.reo_wnd = min(reo_wnd_mult * RACK.min_RTT / 4, SRTT), or 0 before any
//!   reordering was seen while in recovery or once DupThresh segments are SACKed.
//! - step 5: a segment sent before RACK's one is lost once RACK.rtt + RACK.reo_wnd passed
//!   since its transmission; RFC 6675's IsLost() marks segments lost too (§6.2 "may be
//!   used alongside DupThresh").
//! - step 6: when a segment could still be lost later, the reordering timer fires then.
//!   It shares its slot with the TLP's PTO (§8: arming one cancels the other; the RTO
//!   stays armed as the backstop).
//!
//! Lost-marked segments become NextSeg rule 1 (loss.rs) and leave `pipe` (RFC 6675 §4);
//! our FIN has a record like data (it occupies one sequence number, RFC 9293 §3.4) and is
//! resent the same way, alone or with the data of its record;
//! a RACK loss outside recovery starts it (RFC 6675 §5 step 4, with PRR).
//! After an RTO every unSACKed segment is lost (§6.3).

use super::congestion::DUP_THRESH;
use super::sack::Scoreboard;
use super::{Cx, Tcb};
use crate::minmax::WindowedMin;
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::TcpSegment;
use std::collections::VecDeque;

/// Most transmission records per connection. Beyond it a new transmission extends the
/// newest record, which takes the later time: coarser, and never an early loss.
pub(crate) const MAX_SEGS: usize = 1024;

/// RFC 8985 §6.2 step 3: recoveries a D-SACK-widened reordering window persists.
const REO_WND_PERSIST: u32 = 16;

const LOST: u8 = 1;
const RETRANS: u8 = 2;
const SACKED: u8 = 4;

/// One transmission record (RFC 8985 §5.2 per-segment variables).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SentSeg {
    start: SeqNum,
    end: SeqNum,
    /// Segment.xmit_ts: the time of its latest (re)transmission.
    xmit_ts: Instant,
    flags: u8,
}

/// RACK's per-connection variables (RFC 8985 §5.2).
#[derive(Clone, Copy, Debug)]
struct RackVars {
    /// RACK.xmit_ts and RACK.end_seq of the most recently sent delivered segment.
    xmit_ts: Option<Instant>,
    end_seq: SeqNum,
    /// RACK.segs_sacked: records SACKed above SND.UNA.
    segs_sacked: u32,
    /// RACK.fack: the highest end delivered (None before the first delivery: a fixed
    /// start such as 0 lies "ahead" of half of all ISSs in sequence space, which once made
    /// the first in-order delivery look reordered).
    fack: Option<SeqNum>,
    /// RACK.rtt: the RTT of the segment behind RACK.xmit_ts.
    rtt: Duration,
    /// RACK.min_RTT: the smallest RACK RTT sample inside `Config::min_rtt_window`.
    min_rtt: WindowedMin,
    /// RACK.reord: reordering has been observed.
    reord: bool,
    /// RACK.reo_wnd_mult / RACK.reo_wnd_persist / RACK.dsack_round (§6.2 step 3).
    reo_wnd_mult: u32,
    reo_wnd_persist: u32,
    dsack_round: Option<SeqNum>,
    /// The most recently sent segment this ACK delivered so far (for RACK.rtt).
    ack_newest: Option<(Instant, SeqNum)>,
}

/// The RACK state of one connection, kept in the scoreboard.
#[derive(Debug)]
pub(crate) struct Rack {
    /// Records in sequence order, contiguous, covering SND.UNA..SND.MAX.
    segs: VecDeque<SentSeg>,
    v: RackVars,
    /// The reordering timer (§6.2 step 6).
    pub(crate) timer: Option<Instant>,
    /// Loss recovery started by RACK: its first retransmission ignores cwnd - pipe
    /// (RFC 6675 §5 step 4.3).
    pub(crate) rxt_first: bool,
    /// The end of the highest retransmission above SND.UNA: above it records were sent
    /// once, in sequence order, so their times do not decrease (detect_loss stops there).
    rtx_end: Option<SeqNum>,
}

impl Default for Rack {
    fn default() -> Rack {
        let v = RackVars {
            xmit_ts: None,
            end_seq: SeqNum(0),
            segs_sacked: 0,
            fack: None,
            rtt: Duration::ZERO,
            min_rtt: WindowedMin::default(),
            reord: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
            ack_newest: None,
        };
        Rack { segs: VecDeque::new(), v, timer: None, rxt_first: false, rtx_end: None }
    }
}

/// RACK_sent_after(t1, seq1, t2, seq2) of RFC 8985 §6.2 step 2.
fn sent_after(t1: Instant, seq1: SeqNum, t2: Instant, seq2: SeqNum) -> bool {
    t1 > t2 || (t1 == t2 && seq1.gt(seq2))
}

/// What the ACK tells about one delivered record.
struct Delivered {
    xmit_ts: Instant,
    end: SeqNum,
    retrans: bool,
}

impl RackVars {
    /// §6.2 steps 2 and 3 for one newly delivered segment. `tsval_older(t)`: the ACK echoes
    /// a TSval older than our clock at `t` (a timestamp-based ambiguity check).
    fn on_delivered(
        &mut self,
        d: Delivered,
        now: Instant,
        win: Duration,
        tsval_older: &dyn Fn(Instant) -> bool,
    ) {
        // Step 3: RACK_detect_reordering.
        match self.fack {
            Some(f) if !d.end.gt(f) => self.reord |= d.end.lt(f) && !d.retrans,
            _ => self.fack = Some(d.end),
        }
        let rtt = now.saturating_since(d.xmit_ts);
        if d.retrans && (tsval_older(d.xmit_ts) || self.min_rtt.get().is_some_and(|m| rtt < m)) {
            return; // Step 2: the ACK may be for the original transmission.
        }
        self.min_rtt.update(win, now, rtt);
        // The RFC walks this ACK's delivered segments in send order, so RACK.rtt ends as
        // the most recently sent one's; we walk in sequence order and keep that one's.
        if self.ack_newest.is_none_or(|(t, e)| sent_after(d.xmit_ts, d.end, t, e)) {
            self.ack_newest = Some((d.xmit_ts, d.end));
            self.rtt = rtt;
        }
        if self.xmit_ts.is_none_or(|t| sent_after(d.xmit_ts, d.end, t, self.end_seq)) {
            self.xmit_ts = Some(d.xmit_ts);
            self.end_seq = d.end;
        }
    }

    /// §6.2 step 4: RACK_update_reo_wnd's result.
    fn reo_wnd(&self, in_recovery: bool, srtt: Option<Duration>) -> Duration {
        if !self.reord && (in_recovery || self.segs_sacked >= DUP_THRESH) {
            return Duration::ZERO;
        }
        let w = self.min_rtt.get().unwrap_or(Duration::ZERO) / 4 * self.reo_wnd_mult;
        srtt.map_or(w, |s| w.min(s))
    }
}

impl Rack {
    /// True while records are kept (RACK on and data sent).
    #[inline]
    pub(crate) fn active(&self) -> bool {
        !self.segs.is_empty()
    }

    /// No records, no reordering timer, no retransmission mark and no D-SACK round: the
    /// per-ACK steps (`Tcb::rack_on_ack`) of an ACK without SACK blocks change nothing
    /// observable (tcb/fast_path.rs).
    pub(crate) fn idle(&self) -> bool {
        self.segs.is_empty() && self.timer.is_none() && self.rtx_end.is_none() && self.v.dsack_round.is_none()
    }

    /// A transmission of `[start, end)` at `now`; `new` when it extends SND.MAX.
    pub(crate) fn on_sent(&mut self, start: SeqNum, end: SeqNum, now: Instant, new: bool) {
        if new || self.segs.back().is_none_or(|b| b.end.le(start)) {
            if self.segs.len() >= MAX_SEGS
                && let Some(b) = self.segs.back_mut()
            {
                b.end = end;
                b.xmit_ts = now;
                return;
            }
            self.segs.push_back(SentSeg { start, end, xmit_ts: now, flags: 0 });
            return;
        }
        // A retransmission: the records it covers exactly get the new time.
        if self.rtx_end.is_none_or(|e| e.lt(end)) {
            self.rtx_end = Some(end);
        }
        self.split_at(start);
        self.split_at(end);
        for s in self.segs.iter_mut() {
            if s.start.lt(end) && start.lt(s.end) {
                s.xmit_ts = now;
                s.flags |= RETRANS;
            }
        }
        // The part beyond the newest record is new data.
        if let Some(b) = self.segs.back()
            && b.end.lt(end)
            && self.segs.len() < MAX_SEGS
        {
            self.segs.push_back(SentSeg { start: b.end, end, xmit_ts: now, flags: 0 });
        }
    }

    /// Cut the record holding `seq` strictly inside into two.
    fn split_at(&mut self, seq: SeqNum) {
        if self.segs.len() >= MAX_SEGS {
            return;
        }
        if let Some(i) = self.segs.iter().position(|s| s.start.lt(seq) && seq.lt(s.end)) {
            let mut tail = self.segs[i];
            tail.start = seq;
            self.segs[i].end = seq;
            if tail.flags & SACKED != 0 {
                self.v.segs_sacked += 1;
            }
            self.segs.insert(i + 1, tail);
        }
    }

    /// Steps 2-3 for an ACK: records below `una` left the window, records inside a SACKed
    /// range are delivered now.
    fn on_ack(
        &mut self,
        una: SeqNum,
        ranges: &[(SeqNum, SeqNum)],
        now: Instant,
        win: Duration,
        older: &dyn Fn(Instant) -> bool,
    ) {
        if self.rtx_end.is_some_and(|e| e.le(una)) {
            self.rtx_end = None;
        }
        self.v.ack_newest = None;
        while let Some(f) = self.segs.front_mut() {
            if !f.end.le(una) {
                if f.start.lt(una) {
                    f.start = una;
                }
                break;
            }
            let s = *f;
            self.segs.pop_front();
            if s.flags & SACKED != 0 {
                self.v.segs_sacked = self.v.segs_sacked.saturating_sub(1);
            } else {
                let d = Delivered { xmit_ts: s.xmit_ts, end: s.end, retrans: s.flags & RETRANS != 0 };
                self.v.on_delivered(d, now, win, older);
            }
        }
        if ranges.is_empty() {
            return;
        }
        let mut r = 0;
        for s in self.segs.iter_mut() {
            if s.flags & SACKED != 0 {
                continue;
            }
            while r < ranges.len() && ranges[r].1.le(s.start) {
                r += 1;
            }
            let Some(&(rs, re)) = ranges.get(r) else { break };
            if rs.le(s.start) && s.end.le(re) {
                s.flags = (s.flags & !LOST) | SACKED;
                self.v.segs_sacked += 1;
                let d = Delivered { xmit_ts: s.xmit_ts, end: s.end, retrans: s.flags & RETRANS != 0 };
                self.v.on_delivered(d, now, win, older);
            }
        }
    }

    /// §6.2 step 3, RACK_update_reo_wnd's D-SACK part.
    fn on_dsack(&mut self, dsack: bool, una: SeqNum, snd_nxt: SeqNum) {
        if self.v.dsack_round.is_some_and(|r| una.ge(r)) {
            self.v.dsack_round = None;
        }
        if dsack && self.v.dsack_round.is_none() {
            self.v.dsack_round = Some(snd_nxt);
            self.v.reo_wnd_mult = self.v.reo_wnd_mult.saturating_add(1);
            self.v.reo_wnd_persist = REO_WND_PERSIST;
        }
    }

    /// §6.2 step 3: "exiting fast or lost recovery": the widened window decays.
    pub(crate) fn on_recovery_exit(&mut self) {
        self.v.reo_wnd_persist = self.v.reo_wnd_persist.saturating_sub(1);
        if self.v.reo_wnd_persist == 0 {
            self.v.reo_wnd_mult = 1;
        }
    }

    /// RFC 6675 IsLost(): unSACKed records ending at or below `lost_end` that nobody
    /// marked or retransmitted yet are lost too.
    fn mark_lost_below(&mut self, lost_end: SeqNum) -> u32 {
        let mut n = 0;
        for s in self.segs.iter_mut() {
            if !s.end.le(lost_end) {
                break;
            }
            if s.flags & (LOST | RETRANS | SACKED) == 0 {
                s.flags |= LOST;
                n += 1;
            }
        }
        n
    }

    /// §6.2 step 5, RACK_detect_loss: returns the records newly marked lost and the
    /// reordering timeout still to wait for (step 6), if any.
    fn detect_loss(&mut self, now: Instant, reo_wnd: Duration) -> (u32, Option<Duration>) {
        let Some(rx) = self.v.xmit_ts else { return (0, None) };
        let (end_seq, rtt) = (self.v.end_seq, self.v.rtt);
        let (mut lost, mut timeout) = (0, None::<Duration>);
        let rtx_end = self.rtx_end;
        for s in self.segs.iter_mut() {
            if !sent_after(rx, end_seq, s.xmit_ts, s.end) {
                if s.flags & RETRANS == 0 && rtx_end.is_none_or(|e| !s.start.lt(e)) {
                    break; // This and every later record were sent after RACK's segment.
                }
                continue;
            }
            if s.flags & SACKED != 0 {
                continue;
            }
            if s.flags & LOST != 0 && s.flags & RETRANS == 0 {
                continue; // Lost and not yet retransmitted.
            }
            let due = s.xmit_ts + rtt + reo_wnd;
            if due <= now {
                s.flags = LOST;
                lost += 1;
            } else {
                let rem = due.saturating_since(now);
                timeout = Some(timeout.map_or(rem, |t| t.max(rem)));
            }
        }
        (lost, timeout)
    }

    /// §6.3: after an RTO every unSACKed record is lost; `reneged`: SACK state was dropped.
    pub(crate) fn on_rto(&mut self, reneged: bool) {
        self.timer = None;
        self.rxt_first = false;
        for s in self.segs.iter_mut() {
            if reneged || s.flags & SACKED == 0 {
                s.flags = LOST;
            }
        }
        if reneged {
            self.v.segs_sacked = 0;
        }
    }

    /// The first record marked lost and not retransmitted since (NextSeg rule 1).
    /// Only records starting below `limit` (the end of the data, or past a sent FIN) count.
    pub(crate) fn first_lost(&self, limit: SeqNum) -> Option<(SeqNum, SeqNum)> {
        self.segs
            .iter()
            .take_while(|s| s.start.lt(limit))
            .find(|s| s.flags & (LOST | RETRANS | SACKED) == LOST)
            .map(|s| (s.start, s.end))
    }

    /// Whether the record starting at `seq` is lost and not retransmitted.
    pub(crate) fn is_lost_at(&self, seq: SeqNum) -> bool {
        self.segs
            .iter()
            .find(|s| s.start.le(seq) && seq.lt(s.end))
            .is_some_and(|s| s.flags & (LOST | RETRANS) == LOST)
    }
}

impl Scoreboard {
    /// RFC 6675 §4 SetPipe() on RACK's records: every unSACKed octet counts once unless it
    /// is lost (RACK's mark or IsLost()), and once more while its retransmission is out.
    pub(crate) fn pipe_rack(&self, una: SeqNum, high_data: SeqNum, smss: u32) -> u32 {
        let lost_end = self.lost_below(smss).unwrap_or(una);
        let gap = |a: SeqNum, b: SeqNum| self.unsacked_in(a.max(lost_end), b);
        let (mut pipe, mut pos) = (0u32, una);
        for s in self.rack.segs.iter() {
            let (a, b) = (s.start.max(una), s.end.min(high_data));
            if !a.lt(b) {
                continue;
            }
            if pos.lt(a) {
                pipe += gap(pos, a);
            }
            let u = self.unsacked_in(a, b);
            if s.flags & LOST == 0 && !a.lt(lost_end) {
                pipe += u;
            }
            if s.flags & RETRANS != 0 {
                pipe += u;
            }
            pos = b;
        }
        if pos.lt(high_data) {
            pipe += gap(pos, high_data);
        }
        pipe
    }
}

impl Tcb {
    /// A data segment `[seq, end)` left at `now` (output.rs); `new` if it extends SND.MAX.
    #[inline]
    pub(crate) fn rack_on_sent(
        &mut self,
        cfg: &crate::Config,
        seq: SeqNum,
        end: SeqNum,
        now: Instant,
        new: bool,
    ) {
        if cfg.rack && self.sack_ok {
            self.scoreboard.rack.on_sent(seq, end, now, new);
        }
    }

    /// RFC 8985 §6.2 steps 1-6 for an ACK, after the scoreboard and SND.UNA were updated.
    /// Returns the records newly marked lost.
    pub(crate) fn rack_on_ack(&mut self, cx: &mut Cx, now: Instant, seg: &TcpSegment) -> u32 {
        if !cx.cfg.rack || !self.sack_ok {
            return 0;
        }
        let ecr = if self.ts_ok { seg.options.timestamps.map(|(_, e)| e) } else { None };
        let off = self.ts_offset;
        let older = move |t: Instant| {
            let tsval = ((t.micros() / 1000) as u32).wrapping_add(off);
            ecr.is_some_and(|e| e != 0 && (e.wrapping_sub(tsval) as i32) < 0)
        };
        let smss = self.eff_mss(cx.cfg) as u32;
        let (una, nxt) = (self.snd.una, self.snd.nxt);
        let dsack = is_dsack(seg);
        let (rack, ranges) = self.scoreboard.rack_and_ranges();
        rack.on_ack(una, ranges, now, cx.cfg.min_rtt_window, &older);
        rack.on_dsack(dsack, una, nxt);
        let marked = match self.scoreboard.lost_below(smss) {
            Some(l) => self.scoreboard.rack.mark_lost_below(l),
            None => 0,
        };
        cx.counters.rack_lost_marks += marked as u64;
        marked + self.rack_detect_loss_and_arm_timer(cx, now)
    }

    /// §6.2 steps 4-6: RACK_detect_loss_and_arm_timer. Arming the reordering timer cancels
    /// the PTO (§8).
    fn rack_detect_loss_and_arm_timer(&mut self, cx: &mut Cx, now: Instant) -> u32 {
        let reo_wnd = self.scoreboard.rack.v.reo_wnd(self.recovery.in_recovery(), self.rtt.srtt());
        let (lost, timeout) = self.scoreboard.rack.detect_loss(now, reo_wnd);
        self.scoreboard.rack.timer = timeout.map(|t| now + t);
        if timeout.is_some() {
            self.tlp.deadline = None;
        }
        cx.counters.rack_lost_marks += lost as u64;
        lost
    }

    /// The reordering timer fired (§6.2 step 6): detect losses again; a loss outside
    /// recovery starts it (RFC 6675 §5 step 4).
    pub(crate) fn on_rack_timer(&mut self, cx: &mut Cx, now: Instant) {
        self.scoreboard.rack.timer = None;
        if !self.state.is_synchronized() || self.state == super::State::TimeWait {
            return;
        }
        cx.counters.rack_reo_timeouts += 1;
        let lost = self.rack_detect_loss_and_arm_timer(cx, now);
        if lost > 0 && !self.recovery.in_recovery() && self.snd.una != self.snd_max {
            self.rack_start_recovery(cx);
        }
    }
}

/// RFC 2883 §4: the first SACK block reports a duplicate when it lies below the
/// cumulative ACK or inside the second block.
fn is_dsack(seg: &TcpSegment) -> bool {
    let b = seg.options.sack.as_slice();
    match b {
        [(s, _), ..] if s.lt(seg.ack) => true,
        [(s1, e1), (s2, e2), ..] => s2.le(*s1) && e1.le(*e2),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::from_millis(1000);
    const W: Duration = Duration::from_secs(300);

    /// RFC 8985 §6.2 step 2 with a windowed RACK.min_RTT: once the 5 ms path is a window
    /// old, reo_wnd follows the 40 ms path (40 / 4) instead of staying at 5 / 4 for good.
    #[test]
    fn reo_wnd_follows_min_rtt_over_the_window() {
        let mut v = Rack::default().v;
        v.reord = true;
        let win = Duration::from_secs(10);
        let deliver = |v: &mut RackVars, sent: Instant, rtt_ms: u64| {
            let d = Delivered { xmit_ts: sent, end: SeqNum(100), retrans: false };
            v.on_delivered(d, sent + Duration::from_millis(rtt_ms), win, &|_| false);
        };
        deliver(&mut v, T0, 5);
        assert_eq!(v.reo_wnd(false, None), Duration::from_micros(1250));
        for i in 1..=30 {
            deliver(&mut v, T0 + Duration::from_secs(i), 40);
        }
        assert_eq!(v.reo_wnd(false, None), Duration::from_millis(10));
    }

    /// Regression: RACK.fack started at sequence number 0, so for an ISS in the other half
    /// of the sequence space the first in-order delivery was "below" it and set RACK.reord
    /// (RFC 8985 §6.2 step 3), which keeps the reordering window open in recovery.
    #[test]
    fn in_order_deliveries_are_not_reordering_for_any_iss() {
        for iss in [0u32, 1 << 20, 0x8000_0001, 0x9000_0000, u32::MAX - 50] {
            let mut v = Rack::default().v;
            for k in 1..=4u32 {
                let d = Delivered { xmit_ts: T0, end: SeqNum(iss.wrapping_add(k * 1000)), retrans: false };
                v.on_delivered(d, T0 + Duration::from_millis(5), W, &|_| false);
            }
            assert!(!v.reord, "ISS {iss:#x}: in-order deliveries taken for reordering");
            let late = Delivered { xmit_ts: T0, end: SeqNum(iss.wrapping_add(500)), retrans: false };
            v.on_delivered(late, T0 + Duration::from_millis(6), W, &|_| false);
            assert!(v.reord, "ISS {iss:#x}: a delivery below RACK.fack is reordering");
        }
    }

    #[test]
    fn records_are_capped_and_retransmissions_split_them() {
        let mut r = Rack::default();
        for i in 0..(MAX_SEGS as u32 + 10) {
            r.on_sent(SeqNum(i * 100), SeqNum(i * 100 + 100), T0, true);
        }
        assert_eq!(r.segs.len(), MAX_SEGS);
        assert_eq!(r.segs.back().unwrap().end, SeqNum((MAX_SEGS as u32 + 10) * 100));
        let mut r = Rack::default();
        r.on_sent(SeqNum(0), SeqNum(300), T0, true);
        // A retransmission of the middle third gets its own record and time.
        let t1 = T0 + Duration::from_millis(5);
        r.on_sent(SeqNum(100), SeqNum(200), t1, false);
        let v: Vec<_> = r.segs.iter().map(|s| (s.start.0, s.end.0, s.xmit_ts, s.flags)).collect();
        assert_eq!(v, vec![(0, 100, T0, 0), (100, 200, t1, RETRANS), (200, 300, T0, 0)]);
    }

    #[test]
    fn detect_loss_marks_only_segments_sent_rtt_plus_reo_wnd_before() {
        let mut r = Rack::default();
        let t1 = T0 + Duration::from_millis(10);
        r.on_sent(SeqNum(0), SeqNum(100), T0, true);
        r.on_sent(SeqNum(100), SeqNum(200), t1, true);
        r.on_sent(SeqNum(200), SeqNum(300), t1, true);
        // 100 ms later the segment sent at t1 (100..200) is SACKed.
        let now = t1 + Duration::from_millis(100);
        r.on_ack(SeqNum(0), &[(SeqNum(100), SeqNum(200))], now, W, &|_| false);
        assert_eq!(r.v.rtt, Duration::from_millis(100));
        // reo_wnd 5 ms: 0..100 was sent 10 ms earlier, so it is lost; 200..300 was sent
        // after RACK's segment (same time, higher sequence) and is not judged.
        let (lost, timeout) = r.detect_loss(now, Duration::from_millis(5));
        assert_eq!((lost, timeout), (1, None));
        assert_eq!(r.first_lost(SeqNum(300)), Some((SeqNum(0), SeqNum(100))));
        // reo_wnd 20 ms would have waited 10 ms more.
        let mut r2 = Rack::default();
        r2.on_sent(SeqNum(0), SeqNum(100), T0, true);
        r2.on_sent(SeqNum(100), SeqNum(200), t1, true);
        r2.on_ack(SeqNum(0), &[(SeqNum(100), SeqNum(200))], now, W, &|_| false);
        assert_eq!(r2.detect_loss(now, Duration::from_millis(20)), (0, Some(Duration::from_millis(10))));
    }
}
