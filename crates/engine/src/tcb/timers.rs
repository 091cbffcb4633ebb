//! TCB timers: retransmission (RFC 6298), persist (RFC 9293 §3.8.6.1), delayed ACK
//! (§3.8.6.3), keepalive (§3.8.4) and TIME-WAIT (§3.4.2).

use super::{Cx, State, Tcb};
use crate::CloseReason;
use crate::time::Instant;

impl Tcb {
    /// The earliest instant at which `on_timeout` has work to do.
    #[inline]
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        // Branch-free: an unarmed timer counts as `u64::MAX` microseconds (the Stack asks
        // after every segment in and out; issue 12, engine cost).
        #[inline(always)]
        fn at(t: Option<Instant>) -> u64 {
            t.map_or(u64::MAX, |t| t.micros())
        }
        let d = at(self.rtx_deadline)
            .min(at(self.delack_deadline))
            .min(at(self.persist_deadline))
            .min(at(self.timewait_deadline))
            .min(at(self.keepalive_deadline))
            .min(at(self.scoreboard.rack.timer)) // RFC 8985 §6.2 step 6
            .min(at(self.handshake_deadline))
            .min(at(self.tlp.deadline));
        (d != u64::MAX).then(|| Instant::from_micros(d))
    }

    /// Fire every timer due at `now`.
    pub(crate) fn on_timeout(&mut self, cx: &mut Cx, now: Instant) {
        if let Some(t) = self.timewait_deadline
            && t <= now
        {
            // RFC 9293 §3.10.8: "If the time-wait timeout expires on a connection, delete the TCB".
            self.timewait_deadline = None;
            self.close_with(cx, CloseReason::Normal);
            return;
        }
        if let Some(t) = self.handshake_deadline
            && t <= now
        {
            // The connection did not synchronize in time (Config::connect_timeout).
            self.handshake_deadline = None;
            if matches!(self.state, State::SynSent | State::SynReceived) {
                cx.counters.attempt_fails += 1;
                self.close_with(cx, CloseReason::TimedOut);
                return;
            }
        }
        if let Some(t) = self.rtx_deadline
            && t <= now
        {
            self.rtx_deadline = None;
            self.on_rto(cx, now);
            if self.state == State::Closed {
                return;
            }
        }
        if let Some(t) = self.scoreboard.rack.timer
            && t <= now
        {
            // RFC 8985 §6.2 step 6: the reordering timer (rack.rs).
            self.on_rack_timer(cx, now);
        }
        if let Some(t) = self.tlp.deadline
            && t <= now
        {
            // RFC 8985 §7.3: the probe timeout.
            self.on_pto(cx.cfg, now);
        }
        if let Some(t) = self.persist_deadline
            && t <= now
        {
            self.persist_deadline = None;
            self.persist_backoff += 1;
            self.force_probe = true;
        }
        if let Some(t) = self.delack_deadline
            && t <= now
        {
            self.delack_deadline = None;
            cx.counters.delayed_acks += 1;
            self.ack_now = true;
            self.ack_reason = crate::TxReason::DelayedAck;
        }
        self.update_keepalive(cx, now);
    }

    /// Retransmission timeout (RFC 6298 §5.4–5.7, RFC 5681 §3.1, RFC 1122 §4.2.3.5).
    fn on_rto(&mut self, cx: &mut Cx, now: Instant) {
        let handshake = matches!(self.state, State::SynSent | State::SynReceived);
        if !handshake && self.snd.una == self.snd_max {
            return; // Nothing outstanding: a stale deadline.
        }
        // RFC 5482 / RFC 9293 §3.8.3: the user timeout ends the connection (user_timeout.rs).
        if !handshake && self.user_timeout_expired(now) {
            cx.counters.timeouts += 1;
            self.close_with(cx, CloseReason::TimedOut);
            return;
        }
        self.retries += 1;
        self.timeouts += 1;
        cx.counters.timeouts += 1;
        let limit = if handshake { cx.cfg.syn_retries } else { self.data_retries };
        if self.retries > limit {
            // RFC 1122 §4.2.3.5: R2 reached, close the connection and tell the user.
            if handshake {
                cx.counters.attempt_fails += 1;
            }
            self.close_with(cx, CloseReason::TimedOut);
            return;
        }
        // RFC 4821 §7.7 black-hole detection (pmtu.rs, Config::mtu_probing).
        self.black_hole_check(cx.cfg, cx.counters);
        // RFC 6298 §5.5: back off the timer.
        self.rtt.backoff();
        // Karn's algorithm: nothing in flight now may be timed.
        self.rtt_timed = None;
        if handshake {
            // RFC 9293 §3.8.1: retransmit the SYN (or SYN-ACK).
            self.send_syn = true;
            self.rtx_reason = crate::TxReason::SynRetransmit;
            self.snd.nxt = self.snd.iss;
            return;
        }
        if self.snd.wnd == 0 {
            // The outstanding byte was a zero-window probe: probe again; the window is not
            // congestion (RFC 9293 §3.8.6.1), and a responsive peer never times us out.
            self.snd.nxt = self.snd.una;
            self.force_probe = true;
            return;
        }
        // RFC 5681 §3.1 eq. (4) and the loss window; RFC 6582 §3.2 step 1 on timeout.
        let smss = self.eff_mss(cx.cfg);
        let flight = self.flight_size();
        self.cc.on_rto(flight, smss);
        self.recovery.on_rto(self.snd_max);
        // Go back N: resend from SND.UNA.
        self.snd.nxt = self.snd.una;
        self.rtx_una = false;
        // RFC 3042's allowance belongs to the duplicates of the lost window, not to the
        // loss window of RFC 5681 §3.1 (one segment).
        self.limited_transmit = 0;
        self.tlp = Default::default();
        // RFC 6675 §5.1: the RTO ends loss recovery; HighRxt restarts at HighACK.
        self.prr = None;
        self.scoreboard.high_rxt = self.snd.una;
        // RFC 8985 §6.3: every unSACKed segment is lost (all of them when SACK is forgotten).
        self.scoreboard.rack.on_rto(self.retries >= 2);
        // SACKed data is not resent after a first timeout (as Linux does); from the second
        // one on, the receiver may have reneged (RFC 2018 §8): forget the SACK information.
        if self.retries >= 2 {
            self.scoreboard.clear();
        }
    }

    /// Keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): probe after `idle`, then every
    /// `interval`; give up after `probes` unanswered probes.
    pub(crate) fn update_keepalive(&mut self, cx: &mut Cx, now: Instant) {
        let Some(ka) = self.keepalive else {
            self.keepalive_deadline = None;
            return;
        };
        // MUST-26 (RFC 9293 §3.8.4): probe only an idle connection with nothing outstanding
        // (the retransmission timer watches the peer otherwise).
        if !matches!(self.state, State::Established | State::CloseWait) || self.snd.una != self.snd_max {
            self.keepalive_deadline = None;
            return;
        }
        let due = if self.keepalive_sent == 0 {
            self.last_rcv_time + ka.idle
        } else {
            self.last_rcv_time + ka.idle + ka.interval * self.keepalive_sent
        };
        if due <= now {
            if self.keepalive_sent >= ka.probes {
                self.close_with(cx, CloseReason::TimedOut);
                return;
            }
            self.keepalive_sent += 1;
            self.send_keepalive = true;
            self.keepalive_deadline = Some(self.last_rcv_time + ka.idle + ka.interval * self.keepalive_sent);
        } else {
            self.keepalive_deadline = Some(due);
        }
    }
}
