//! SEGMENT ARRIVES (RFC 9293 §3.10.7), for a TCB that exists: SYN-SENT (§3.10.7.3) and
//! the other states (§3.10.7.4), in the RFC's order. LISTEN and CLOSED live in `stack.rs`.

use super::{Cx, RstReply, State, Tcb, notify};
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::{DropReason, TcpOptions, TcpSegment};
use crate::{CloseReason, Config, ConnId, ListenerId, Quad};

/// RFC 9293 §3.8.6.3 (MUST-40): an ACK is never delayed by 0.5 s or more, whatever
/// `Config::delayed_ack` says.
pub(super) const MAX_ACK_DELAY: Duration = Duration::from_millis(499);

/// PAWS idle limit: TS.Recent is invalid after 24 days of silence (RFC 7323 §5.5).
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

impl Tcb {
    /// A SYN arrived at a listener (RFC 9293 §3.10.7.2, third check): build the TCB in
    /// SYN-RECEIVED; the SYN-ACK is queued.
    pub(crate) fn new_passive(
        cfg: &Config,
        id: ConnId,
        quad: Quad,
        iss: SeqNum,
        seg: &TcpSegment,
        now: Instant,
        listener: ListenerId,
    ) -> Tcb {
        let mut tcb = Tcb::new(cfg, id, quad, iss, now, State::SynReceived);
        tcb.passive = Some(listener);
        // "Set RCV.NXT to SEG.SEQ+1, IRS is set to SEG.SEQ"
        tcb.rcv.irs = seg.seq;
        tcb.rcv.nxt = seg.seq + 1;
        tcb.rcv.up = seg.seq;
        tcb.negotiate(cfg, seg, now);
        // The window in a SYN is never scaled (RFC 7323 §2.2).
        tcb.snd.wnd = seg.window as u32;
        tcb.max_snd_wnd = tcb.snd.wnd;
        tcb.snd.wl1 = seg.seq;
        tcb.snd.wl2 = seg.ack;
        tcb.send_syn = true;
        tcb
    }

    /// Options on a SYN decide what the connection uses (RFC 9293 §3.7.1, RFC 7323 §1.3,
    /// RFC 2018 §2). We only use an option the peer offered in its SYN.
    fn negotiate(&mut self, cfg: &Config, seg: &TcpSegment, now: Instant) {
        // An option is used only if our SYN offered it too (RFC 7323 §2.2, §3.2; RFC 2018 §2).
        let none = TcpOptions { mss: seg.options.mss, ..TcpOptions::default() };
        let o = if self.syn_options_dropped(cfg) { &none } else { &seg.options };
        // RFC 9293 §3.7.1 (MUST-15): without an MSS option assume 536 over IPv4, and
        // 1220 over IPv6 (RFC 8200 §5's 1280-byte minimum link MTU less 60).
        let dflt = if self.quad.remote.is_ipv6() { 1220 } else { 536 };
        self.snd_mss = o.mss.unwrap_or(dflt).max(64);
        if cfg.window_scale
            && let Some(ws) = o.window_scale
        {
            self.wscale_ok = true;
            self.snd_wscale = ws.min(14); // RFC 7323 §2.3: shifts above 14 are treated as 14
            self.rcv_wscale = cfg.wscale_for(self.recvbuf.capacity());
        } else {
            self.wscale_ok = false;
            self.snd_wscale = 0;
            self.rcv_wscale = 0;
        }
        self.sack_ok = cfg.sack && o.sack_permitted;
        if cfg.recv_buffer_round_to_mss {
            // FreeBSD's tcp_mss(): once the MSS is known, round the receive buffer up to a
            // multiple of it.
            let mss = (self.snd_mss as usize).min(cfg.mss_for(self.quad.local.ip()) as usize).max(1);
            let cap = self.recvbuf.capacity().div_ceil(mss) * mss;
            self.recvbuf.set_capacity(cap);
        }
        if cfg.timestamps
            && let Some((tsval, _)) = o.timestamps
        {
            self.ts_ok = true;
            self.ts_recent = tsval;
            self.ts_recent_stamp = now;
        } else {
            self.ts_ok = false;
        }
        let smss = self.eff_mss(cfg);
        let iw = super::congestion::initial_window(smss, cfg.initial_window_segments);
        self.cc = super::congestion::new_controller(cfg.congestion_control, iw);
    }

    /// The three-way handshake just completed.
    fn on_handshake_complete(&mut self, cfg: &Config) {
        if self.timeouts > 0 {
            // RFC 6298 §5.7: after a SYN timeout, data transmission starts with a 3 s RTO.
            self.rtt.reinit_after_syn_timeout();
        }
        if self.timeouts > 1 {
            // RFC 5681 §3.1 / RFC 6928 §2: after repeated SYN or SYN-ACK loss the initial
            // window is one segment.
            let smss = self.eff_mss(cfg);
            let iw = super::congestion::initial_window(smss, Some(1));
            self.cc = super::congestion::new_controller(cfg.congestion_control, iw);
        }
    }

    /// Process one segment. Returns a RST to send statelessly, if the RFC asks for one.
    pub(crate) fn on_segment(&mut self, cx: &mut Cx, now: Instant, seg: &TcpSegment) -> Option<RstReply> {
        cx.counters.in_segs += 1;
        self.last_rcv_time = now;
        self.keepalive_sent = 0;
        let reply = match self.state {
            State::SynSent => self.on_segment_syn_sent(cx, now, seg),
            State::Closed | State::Listen => None,
            _ => self.on_segment_synchronized(cx, now, seg),
        };
        if self.keepalive.is_some() {
            self.update_keepalive(cx, now);
        }
        reply
    }

    /// RFC 9293 §3.10.7.3: SYN-SENT.
    fn on_segment_syn_sent(&mut self, cx: &mut Cx, now: Instant, seg: &TcpSegment) -> Option<RstReply> {
        let f = seg.flags;
        // First, check the ACK bit.
        if f.ack() {
            // "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST bit is set)"
            if seg.ack.le(self.snd.iss) || seg.ack.gt(self.snd_max) {
                cx.counters.drop(DropReason::BadAck);
                return (!f.rst()).then_some(RstReply { seq: seg.ack, ack: None });
            }
        }
        // Second, check the RST bit.
        if f.rst() {
            // RFC 5961 §3.2 / RFC 9293: a RST is acceptable here only if its ACK acknowledges the SYN.
            if f.ack() {
                // "the user should be warned with 'error: connection reset', ... enter CLOSED"
                cx.counters.attempt_fails += 1;
                self.close_with(cx, CloseReason::Refused);
            } else {
                cx.counters.drop(DropReason::BadRst);
            }
            return None;
        }
        // Fourth, check the SYN bit.
        if !f.syn() {
            // Fifth: "If neither of the SYN or RST bits is set, then drop the segment and return."
            cx.counters.drop(DropReason::Ignored);
            return None;
        }
        self.rcv.irs = seg.seq;
        self.rcv.nxt = seg.seq + 1;
        self.rcv.up = seg.seq;
        self.negotiate(cx.cfg, seg, now);
        if f.ack() {
            // "SND.UNA should be advanced to equal SEG.ACK"
            self.snd.una = seg.ack;
            if let Some((timed, sent)) = self.rtt_timed.take()
                && seg.ack.gt(timed)
            {
                self.rtt.sample(now - sent);
            }
            if self.ts_ok
                && let Some((_, ecr)) = seg.options.timestamps
                && ecr != 0
            {
                self.rtt_sample_ts(now, ecr);
            }
            self.retries = 0;
            self.rtx_deadline = None;
        }
        // Window from a SYN is unscaled (RFC 7323 §2.2).
        self.snd.wnd = seg.window as u32;
        self.max_snd_wnd = self.snd.wnd;
        self.snd.wl1 = seg.seq;
        self.snd.wl2 = seg.ack;
        if self.snd.una.gt(self.snd.iss) {
            // "our SYN has been ACKed ... change the connection state to ESTABLISHED,
            //  form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it."
            self.set_state(cx, State::Established);
            self.on_handshake_complete(cx.cfg);
            self.send_syn = false;
            self.ack_now = true;
            self.ack_reason = crate::TxReason::HandshakeAck;
            // "Data or controls that were queued for transmission may be included." Data
            // in the SYN-ACK itself is processed at the sixth step and later.
            // The window we offered in our SYN is what the peer may fill.
            self.rcv_adv = self.rcv.nxt + self.rcv.wnd;
            if !seg.payload.is_empty() || f.fin() {
                self.process_text_and_fin(cx, now, seg);
            }
        } else {
            // Simultaneous open: "enter SYN-RECEIVED, form a SYN,ACK segment
            // <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it."
            self.set_state(cx, State::SynReceived);
            self.snd.nxt = self.snd.iss;
            self.send_syn = true;
            self.rtx_reason = crate::TxReason::SimultaneousSynAck;
            self.rtx_deadline = None;
            // "If there are other controls or text in the segment, queue them for
            // processing after the ESTABLISHED state has been reached."
            if !seg.payload.is_empty() {
                let n = seg.payload.len().min(self.recvbuf.capacity());
                self.syn_text = Some(seg.payload[..n].to_vec());
            }
        }
        None
    }

    /// RFC 9293 §3.10.7.4: SYN-RECEIVED through TIME-WAIT.
    fn on_segment_synchronized(&mut self, cx: &mut Cx, now: Instant, seg: &TcpSegment) -> Option<RstReply> {
        // Header prediction (fast_path.rs): the same result for the segments it takes.
        if let Some(reply) = self.fast_path(cx, now, seg) {
            return reply;
        }
        let f = seg.flags;

        // RFC 7323 §3.2: "a TCP SHOULD silently drop" a non-RST segment without TSopt once
        // timestamps are in use (`Config::ts_missing_drop`).
        if self.ts_ok && !f.rst() && seg.options.timestamps.is_none() && cx.cfg.ts_missing_drop {
            cx.counters.drop(DropReason::Paws);
            return None;
        }
        // RFC 7323 §5.3: PAWS runs before the sequence-number check.
        if self.ts_ok
            && !f.rst()
            && let Some((tsval, _)) = seg.options.timestamps
            && (tsval.wrapping_sub(self.ts_recent) as i32) < 0
            && now.saturating_since(self.ts_recent_stamp) < PAWS_IDLE
        {
            cx.counters.drop(DropReason::Paws);
            if self.admit_oow_ack(cx, now, seg) {
                self.ack_now = true;
                self.ack_reason = crate::TxReason::PawsAck;
            }
            return None;
        }

        // Simultaneous open (RFC 9293 §3.5 figure 8, line 6): the peer's SYN-ACK repeats
        // the SYN we already have; trim it off ("including SYN", §3.10.7.4) and process
        // the rest, whose ACK completes the handshake.
        let syn_trimmed;
        let seg = if self.state == State::SynReceived
            && self.passive.is_none()
            && f.syn()
            && f.ack()
            && seg.seq == self.rcv.irs
        {
            syn_trimmed = TcpSegment {
                tcp: crate::wire::TcpRepr {
                    seq: seg.seq + 1,
                    flags: crate::wire::TcpFlags(f.0 & !0x02),
                    ..seg.tcp
                },
                ..*seg
            };
            &syn_trimmed
        } else {
            seg
        };
        let f = seg.flags;
        let seg_len = seg.payload.len() as u32 + f.syn() as u32 + f.fin() as u32;

        if self.state == State::TimeWait && cx.cfg.time_wait_bsd {
            return self.on_segment_time_wait_bsd(cx, now, seg);
        }
        if self.state == State::TimeWait && f.rst() && cx.cfg.rfc1337 {
            // RFC 1337 §3 (TIME-WAIT assassination, hazard H1): ignore RST in TIME-WAIT.
            cx.counters.drop(DropReason::BadRst);
            return None;
        }

        // RFC 5961 §4.2: "If the SYN bit is set, irrespective of the sequence number, TCP
        // MUST send an ACK (also referred to as challenge ACK) to the remote peer".
        if f.syn() && cx.cfg.rfc5961_syn && self.state != State::SynReceived {
            self.challenge_ack(cx, now);
            return None;
        }

        // A segment wholly left of the window: with `Config::ack_old_segments` its text is
        // dropped and an ACK scheduled, but its ACK field is still processed (FreeBSD).
        let trimmed;
        let seg = if cx.cfg.ack_old_segments
            && !f.rst()
            && !f.syn()
            && (seg.seq + seg_len).le(self.rcv.nxt)
            && seg.seq != self.rcv.nxt
        {
            cx.counters.drop(DropReason::NotAcceptable);
            self.ack_now = true;
            self.ack_reason = crate::TxReason::UnacceptableAck;
            if !seg.payload.is_empty() && cx.cfg.dsack && self.sack_ok {
                self.dsack = Some((seg.seq, seg.seq + seg.payload.len() as u32));
            }
            trimmed = TcpSegment {
                tcp: crate::wire::TcpRepr {
                    flags: crate::wire::TcpFlags(f.0 & !0x01),
                    seq: self.rcv.nxt,
                    ..seg.tcp
                },
                payload: &[],
                ..*seg
            };
            &trimmed
        } else {
            seg
        };
        let f = seg.flags;
        let seg_len = seg.payload.len() as u32 + f.syn() as u32 + f.fin() as u32;

        // First, check sequence number: the four-case acceptability test.
        if !self.acceptable(seg.seq, seg_len) {
            cx.counters.drop(DropReason::NotAcceptable);
            // "If an incoming segment is not acceptable, an acknowledgment should be sent in
            //  reply (unless the RST bit is set)". A duplicate wholly below RCV.NXT is a
            //  D-SACK candidate (RFC 2883 §4).
            if !f.rst() {
                if !self.admit_oow_ack(cx, now, seg) {
                    return None;
                }
                if !seg.payload.is_empty() && seg.seq.lt(self.rcv.nxt) && cx.cfg.dsack && self.sack_ok {
                    let end = seg.seq + seg.payload.len() as u32;
                    self.dsack = Some((seg.seq, end.min(self.rcv.nxt)));
                }
                self.ack_now = true;
                self.ack_reason = crate::TxReason::UnacceptableAck;
                // An unacceptable SYN is answered like a challenge: a bare ACK.
                self.challenge_pending |= f.syn();
                if self.state == State::TimeWait && f.fin() {
                    // A retransmitted FIN: restart the 2 MSL timeout (RFC 9293 §3.10.7.4).
                    self.timewait_deadline = Some(now + cx.cfg.msl * 2);
                }
            }
            return None;
        }

        // Second, check the RST bit (RFC 9293 §3.10.7.4 with RFC 5961 §3.2).
        if f.rst() {
            if cx.cfg.rfc5961 && seg.seq != self.rcv.nxt {
                // In window but not exact: challenge ACK (RFC 5961 §3.2).
                self.challenge_ack(cx, now);
                return None;
            }
            self.on_rst(cx);
            return None;
        }

        // Third, security: not implemented (RFC 9293 §3.10.7.4 allows ignoring it).

        // Fourth, check the SYN bit.
        if f.syn() {
            if self.is_retransmitted_syn(seg) {
                // Retransmitted SYN: answer with the SYN-ACK again (RFC 9293 §3.10.7.4 via the
                // acceptability test's allowance; Linux and FreeBSD do the same).
                self.send_syn = true;
                self.rtx_reason = crate::TxReason::SynAckAgain;
                self.snd.nxt = self.snd.iss;
                return None;
            }
            if self.state == State::SynReceived && self.passive.is_some() {
                // "If the connection was initiated with a passive OPEN, then return this
                //  connection to the LISTEN state and return."
                self.close_with(cx, CloseReason::Reset);
                return None;
            }
            if cx.cfg.rfc5961_syn {
                // RFC 5961 §4.2: any SYN in a synchronized state draws a challenge ACK.
                self.challenge_ack(cx, now);
                return None;
            }
            // RFC 793: a SYN in the window is an error; send a reset and close.
            cx.counters.estab_resets += self.state.is_synchronized() as u64;
            self.close_with(cx, CloseReason::Reset);
            return Some(RstReply { seq: self.snd_max, ack: Some(self.rcv.nxt) });
        }

        // Fifth, check the ACK field.
        if !f.ack() {
            // "if the ACK bit is off, drop the segment and return"
            cx.counters.drop(DropReason::Ignored);
            return None;
        }
        if let Some(rst) = self.process_ack(cx, now, seg) {
            return rst;
        }
        if self.state == State::Closed {
            return None;
        }

        // RFC 7323 §4.3: update TS.Recent when the segment covers Last.ACK.sent — not for
        // text a zero window refused (RFC 9293 §3.10.7.4: such a segment is not acceptable,
        // only its ACK is processed).
        let refused_text = !seg.payload.is_empty() && self.acceptance_window() == 0;
        if !refused_text {
            self.update_ts_recent(now, seg, seg_len);
        }

        // Sixth, check the URG bit.
        if f.urg() && matches!(self.state, State::Established | State::FinWait1 | State::FinWait2) {
            // "RCV.UP <- max(RCV.UP,SEG.UP)" — the data stays inline (RFC 6093).
            let up = seg.seq + seg.urgent as u32;
            self.rcv.up = self.rcv.up.max(up);
            self.on_urgent_pointer(up);
        }

        // Seventh and eighth: segment text and FIN.
        self.process_text_and_fin(cx, now, seg);
        None
    }

    /// RFC 7323 §4.3: TS.Recent takes SEG.TSval when the segment (`seg_len` octets of
    /// sequence space) covers Last.ACK.sent. Shared by the full path and fast_path.rs.
    pub(super) fn update_ts_recent(&mut self, now: Instant, seg: &TcpSegment, seg_len: u32) {
        if self.ts_ok
            && let Some((tsval, _)) = seg.options.timestamps
            && seg.seq.le(self.last_ack_sent)
            && self.last_ack_sent.lt(seg.seq + seg_len.max(1))
        {
            self.ts_recent = tsval;
            self.ts_recent_stamp = now;
        }
    }

    /// A SYN that may reopen this connection from TIME-WAIT (RFC 1122 §4.2.2.13, RFC 6191):
    /// above RCV.NXT, and with a newer timestamp when timestamps are in use.
    pub(crate) fn accepts_reincarnation(&self, seg: &TcpSegment) -> bool {
        let f = seg.flags;
        if self.state != State::TimeWait || !f.syn() || f.ack() || f.rst() || !seg.seq.gt(self.rcv.nxt) {
            return false;
        }
        match (self.ts_ok, seg.options.timestamps) {
            (true, Some((tsval, _))) => (tsval.wrapping_sub(self.ts_recent) as i32) > 0,
            _ => true,
        }
    }

    /// `Config::syn_rexmit_drop_options`: our SYN retransmissions have stopped offering
    /// window scale, SACK and timestamps (FreeBSD's net.inet.tcp.rexmit_drop_options).
    pub(crate) fn syn_options_dropped(&self, cfg: &Config) -> bool {
        self.state == State::SynSent && cfg.syn_rexmit_drop_options.is_some_and(|n| self.retries >= n.max(1))
    }

    /// The peer's SYN again, while we are in SYN-RECEIVED after a passive open.
    fn is_retransmitted_syn(&self, seg: &TcpSegment) -> bool {
        self.state == State::SynReceived
            && self.passive.is_some()
            && seg.seq == self.rcv.irs
            && !seg.flags.ack()
    }

    /// TIME-WAIT as FreeBSD's tcp_twcheck() handles it (`Config::time_wait_bsd`): no
    /// acceptability test; RSTs (RFC 1337) and segments without ACK are dropped; a
    /// retransmitted FIN restarts the 2 MSL timer; anything but an exact duplicate ACK
    /// is answered with an ACK.
    fn on_segment_time_wait_bsd(&mut self, cx: &mut Cx, now: Instant, seg: &TcpSegment) -> Option<RstReply> {
        let f = seg.flags;
        if f.rst() || !f.ack() {
            cx.counters.drop(if f.rst() { DropReason::BadRst } else { DropReason::Ignored });
            return None;
        }
        if f.fin() {
            let end = seg.seq + seg.payload.len() as u32 + f.syn() as u32;
            if end + 1 == self.rcv.nxt {
                self.timewait_deadline = Some(now + cx.cfg.msl * 2);
            }
        }
        let duplicate_ack = f == crate::wire::TcpFlags::ACK
            && seg.payload.is_empty()
            && seg.seq == self.rcv.nxt
            && seg.ack == self.snd_max;
        if !duplicate_ack {
            self.ack_now = true;
            self.ack_reason = crate::TxReason::TimeWaitAck;
        }
        None
    }

    /// The four cases of RFC 9293 §3.10.7.4 "first, check sequence number".
    fn acceptable(&self, seq: SeqNum, seg_len: u32) -> bool {
        let wnd = self.acceptance_window();
        let nxt = self.rcv.nxt;
        match (seg_len, wnd) {
            (0, 0) => seq == nxt,
            (0, w) => seq.in_window(nxt, w),
            (_, 0) => {
                // Zero window: nothing is acceptable, but ACKs, URGs and RSTs still get
                // processed for a segment at RCV.NXT (its text is trimmed away later).
                seq == nxt
            }
            (l, w) => seq.in_window(nxt, w) || (seq + (l - 1)).in_window(nxt, w),
        }
    }

    /// RCV.WND: what remains of the window we last advertised. The right edge never moves
    /// left (RFC 9293 §3.8.6.2.2), so this is RCV.ADV - RCV.NXT.
    pub(crate) fn rcv_wnd_now(&self) -> u32 {
        let w = self.rcv_adv.since(self.rcv.nxt);
        if (w as i32) < 0 { 0 } else { w }
    }

    /// The window the acceptability test and text trimming use: what we advertised, or
    /// with `Config::window_full_space` all free buffer space if that is more.
    pub(super) fn acceptance_window(&self) -> u32 {
        let adv = self.rcv_wnd_now();
        // (A FreeBSD passive SYN-RECEIVED connection lives in the syncache, whose window is
        // the one its SYN-ACK advertised.)
        let syncache = self.state == State::SynReceived && self.passive.is_some();
        if self.full_space && !syncache { adv.max(self.recvbuf.window() as u32) } else { adv }
    }

    fn on_rst(&mut self, cx: &mut Cx) {
        match self.state {
            State::SynReceived if self.passive.is_some() => {
                // "If this connection was initiated with a passive OPEN, then return this
                //  connection to LISTEN state": the listener stays, this TCB goes.
                self.close_with(cx, CloseReason::Reset);
            }
            State::SynReceived => {
                // Active open (simultaneous): "the connection was refused".
                cx.counters.attempt_fails += 1;
                self.close_with(cx, CloseReason::Refused);
            }
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                // "any outstanding RECEIVEs and SEND should receive 'reset' responses"
                cx.counters.estab_resets += 1;
                self.close_with(cx, CloseReason::Reset);
            }
            State::Closing | State::LastAck => {
                // "enter the CLOSED state, delete the TCB": a user still holding the
                // connection learns of the reset, as on Linux and FreeBSD.
                self.close_with(cx, CloseReason::Reset);
            }
            State::TimeWait => self.close_with(cx, CloseReason::Normal),
            _ => {}
        }
    }

    /// RFC 9293 §3.10.7.4 "fifth, check the ACK field". Returns Some(reply) to stop
    /// processing this segment (with an optional RST to send).
    pub(super) fn process_ack(
        &mut self,
        cx: &mut Cx,
        now: Instant,
        seg: &TcpSegment,
    ) -> Option<Option<RstReply>> {
        if self.state == State::SynReceived {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state"
            if self.snd.una.lt(seg.ack) && seg.ack.le(self.snd_max) {
                self.set_state(cx, State::Established);
                self.on_handshake_complete(cx.cfg);
                self.send_syn = false;
                if let Some(text) = self.syn_text.take() {
                    // Text queued from a SYN in SYN-SENT (RFC 9293 §3.10.7.3).
                    let n = self.recvbuf.write(0, &text);
                    self.rcv.nxt += n as u32;
                    self.notify |= notify::READABLE;
                    self.unacked_segs += 1;
                    match cx.cfg.delayed_ack {
                        Some(d) => self.delack_deadline = Some(now + d.min(MAX_ACK_DELAY)),
                        None => {
                            self.ack_now = true;
                            self.ack_reason = crate::TxReason::AckEveryOther;
                        }
                    }
                }
                // Window from the handshake-completing ACK (RFC 9293 §3.10.7.4).
                self.snd.wnd = (seg.window as u32) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd.wnd);
                self.snd.wl1 = seg.seq;
                self.snd.wl2 = seg.ack;
            } else {
                // "If the segment acknowledgment is not acceptable, form a reset segment
                //  <SEQ=SEG.ACK><CTL=RST> and send it."
                cx.counters.drop(DropReason::BadAck);
                return Some(Some(RstReply { seq: seg.ack, ack: None }));
            }
        }

        // RFC 5961 §5.2: acceptable iff (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT.
        if seg.ack.gt(self.snd_max) {
            // "If the ACK acks something not yet sent (SEG.ACK > SND.NXT), then send an ACK,
            //  drop the segment, and return."
            cx.counters.drop(DropReason::BadAck);
            self.ack_now = true;
            self.ack_reason = crate::TxReason::AckTooHigh;
            return Some(None);
        }
        if cx.cfg.rfc5961 && seg.ack.lt(self.snd.una - self.max_snd_wnd.max(1)) {
            cx.counters.drop(DropReason::BadAck);
            self.challenge_ack(cx, now);
            return Some(None);
        }

        let fin_was_acked = self.fin_acked();
        if self.sack_ok {
            // RFC 6675 §5: SACK-based loss recovery (loss.rs); RFC 8985 §7 (tlp.rs).
            self.on_ack_rfc6675(cx, now, seg);
            if cx.cfg.tail_loss_probe {
                self.tlp_on_ack(cx, seg);
                self.arm_tlp(cx.cfg, now);
            }
        } else if self.snd.una.lt(seg.ack) {
            self.on_new_ack(cx, now, seg);
        } else if seg.ack == self.snd.una {
            self.on_dup_ack_candidate(cx, seg);
        }
        // Window update (RFC 9293 §3.10.7.4): "If SND.UNA =< SEG.ACK =< SND.NXT ... if
        // (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK))".
        if self.snd.una.le(seg.ack)
            && (self.snd.wl1.lt(seg.seq) || (self.snd.wl1 == seg.seq && self.snd.wl2.le(seg.ack)))
        {
            let wnd = (seg.window as u32) << self.snd_wscale;
            if wnd > self.snd.wnd {
                self.notify |= notify::WRITABLE;
            }
            if self.snd.wnd == 0 && wnd > 0 && seg.ack == self.snd.una && self.snd.nxt.gt(self.snd.una) {
                // The window opened without accepting the probe byte: send it again with
                // the rest, from SND.UNA.
                self.snd.nxt = self.snd.una;
            }
            self.snd.wnd = wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            self.snd.wl1 = seg.seq;
            self.snd.wl2 = seg.ack;
            if wnd > 0 {
                self.persist_deadline = None;
                self.persist_backoff = 0;
            } else {
                // The receiver answers our probes: a zero window never times the
                // connection out (RFC 9293 §3.8.6.1, MUST-37).
                self.retries = 0;
            }
        }

        let fin_acked = !fin_was_acked && self.fin_acked();
        match self.state {
            State::FinWait1 if fin_acked => {
                // "if the FIN segment is now acknowledged, then enter FIN-WAIT-2"
                self.set_state(cx, State::FinWait2);
            }
            State::Closing if fin_acked => {
                // "if the ACK acknowledges our FIN, then enter the TIME-WAIT state"
                self.enter_time_wait(cx, now);
                if cx.cfg.time_wait_bsd {
                    // FreeBSD's tcp_twstart() ends input processing: no ACK is owed.
                    self.ack_now = false;
                    self.challenge_pending = false;
                }
            }
            State::LastAck if fin_acked => {
                // "If our FIN is now acknowledged, delete the TCB, enter the CLOSED state"
                self.close_with(cx, CloseReason::Normal);
                return Some(None);
            }
            State::TimeWait => {
                // Only a retransmitted FIN arrives here; it is acknowledged in the eighth step.
            }
            _ => {}
        }
        None
    }

    /// Whether the send buffer's free space is worth a blocked writer's wake-up
    /// (`Config::send_lowat`): Linux's `sk_stream_is_writeable` (free >= queued / 2) or
    /// FreeBSD's low-water mark in bytes.
    fn send_space_wakes(&self, cfg: &Config) -> bool {
        let free = self.sendbuf.free();
        match cfg.send_lowat {
            None => free >= self.sendbuf.len() / 2,
            Some(n) => free >= n.min(self.sendbuf.capacity()),
        }
    }

    /// SND.UNA < SEG.ACK =< SND.NXT: new data acknowledged.
    pub(crate) fn on_new_ack(&mut self, cx: &mut Cx, now: Instant, seg: &TcpSegment) {
        let acked_seq = seg.ack.since(self.snd.una) as usize;
        let syn_acked = self.snd.una == self.snd.iss;
        let fin_seq = self.fin_seq();
        // Bytes of data (not SYN/FIN) leaving the send buffer.
        let mut data_acked = acked_seq - syn_acked as usize;
        if let Some(fs) = fin_seq
            && seg.ack.gt(fs)
        {
            data_acked -= 1;
            self.fin_acked_flag = true;
        }
        let data_acked = data_acked.min(self.sendbuf.len());
        self.sendbuf.drain(data_acked);
        self.drag_marks(seg.ack);
        self.snd.una = seg.ack;
        self.user_timeout_on_ack(now);
        self.scoreboard.prune(seg.ack);
        if self.snd.nxt.lt(self.snd.una) {
            self.snd.nxt = self.snd.una;
        }
        if data_acked > 0 && self.send_space_wakes(cx.cfg) {
            self.notify |= notify::WRITABLE;
        }

        // RTT measurement: timestamps (RFC 7323 §4.1) or one timed segment, never a
        // retransmitted one (Karn's algorithm, RFC 6298 §3).
        if self.ts_ok {
            if let Some((_, ecr)) = seg.options.timestamps
                && ecr != 0
            {
                self.rtt_sample_ts(now, ecr);
            }
        } else if let Some((timed, sent)) = self.rtt_timed
            && seg.ack.gt(timed)
        {
            self.rtt.sample(now - sent);
            self.rtt_timed = None;
        }
        // The backed-off RTO stays until a valid RTT sample replaces it (RFC 6298 §5, Karn:
        // `RttEstimator::sample` clears the backoff); the R2 counter restarts.
        self.retries = 0;
        self.mtu_probe_acked(cx.counters); // RFC 4821 §7.6.1 (pmtu.rs)

        self.limited_transmit = 0;
        // Congestion control (RFC 5681 §3, RFC 6582 §3.2).
        let smss = self.eff_mss(cx.cfg);
        use super::congestion::AckKind;
        // RFC 5681 §3.1: "the SYN/ACK and the acknowledgment of the SYN/ACK MUST NOT
        // increase the size of the congestion window": the SYN's sequence number is no
        // acknowledged data (it made a passive open's IW 14,601 bytes).
        let cc_acked = acked_seq - syn_acked as usize;
        match self.recovery.on_new_ack(seg.ack) {
            AckKind::Normal => self.cc.on_ack_at(cc_acked, smss, now, self.rtt.srtt()),
            // RFC 6675 §5 (B)/(C): with SACK, loss.rs decides what a partial ACK lets out;
            // RFC 6582's retransmission on partial ACKs is the non-SACK path only.
            AckKind::Partial if self.sack_ok => {}
            AckKind::Full if self.sack_ok => self.end_sack_recovery(cx),
            AckKind::Partial => {
                // RFC 6582 §3.2 step 5: retransmit the first unacknowledged segment.
                self.cc.on_partial_ack(acked_seq, smss);
                self.rtx_una = true;
                self.rtx_reason = crate::TxReason::PartialAckRetransmit;
            }
            AckKind::Full => {
                let flight = self.flight_size();
                self.cc.on_recovery_exit(flight, smss);
            }
        }

        // RFC 6298 §5.2/5.3: stop the timer when all is acknowledged, else restart it.
        if self.snd.una == self.snd_max {
            self.rtx_deadline = None;
        } else {
            self.rtx_deadline = Some(self.clamp_to_user_timeout(now + self.rto_timer(cx.cfg)));
        }
    }

    /// RFC 5681 §2 "DUPLICATE ACKNOWLEDGMENT": same ACK, no data, no SYN/FIN, same
    /// window, with data outstanding.
    pub(crate) fn is_rfc5681_dup_ack(&self, seg: &TcpSegment) -> bool {
        let f = seg.flags;
        let wnd = (seg.window as u32) << self.snd_wscale;
        seg.ack == self.snd.una
            && seg.payload.is_empty()
            && !f.syn()
            && !f.fin()
            && wnd == self.snd.wnd
            && wnd != 0 // a zero window is flow control, not a loss signal (§3.8.6.1)
            && self.snd.una != self.snd_max
    }

    /// A duplicate ACK without SACK (RFC 5681 §3.2, RFC 6582).
    fn on_dup_ack_candidate(&mut self, cx: &mut Cx, seg: &TcpSegment) {
        if !self.is_rfc5681_dup_ack(seg) {
            return;
        }
        let smss = self.eff_mss(cx.cfg);
        use super::congestion::DupAckAction;
        match self.recovery.on_dup_ack(self.snd.una, self.snd_max) {
            DupAckAction::None => {
                // RFC 3042 limited transmit: the first two duplicate ACKs each let one new
                // segment out beyond the congestion window, so that small windows still
                // produce the duplicates fast retransmit needs.
                if !self.recovery.in_recovery() && self.recovery.dup_acks() <= 2 {
                    self.limited_transmit = self.recovery.dup_acks();
                }
            }
            DupAckAction::FastRetransmit => {
                // RFC 5681 §3.2 steps 2-3 / RFC 6582 §3.2 step 2.
                let flight = self.flight_size();
                self.cc.on_fast_retransmit(flight, smss);
                // Limited transmit ends where fast recovery's own window accounting begins.
                self.limited_transmit = 0;
                self.rtx_una = true;
                self.rtx_reason = crate::TxReason::FastRetransmit;
                self.fast_retransmits += 1;
                cx.counters.fast_retransmits += 1;
                self.rtt_timed = None;
            }
            DupAckAction::Inflate => {
                self.cc.on_dup_ack_in_recovery(smss);
            }
        }
    }

    /// RTT from a timestamp echo (RFC 7323 §4.1, fed to RFC 6298).
    fn rtt_sample_ts(&mut self, now: Instant, ecr: u32) {
        if let Some(rtx) = self.rtx_tsval {
            if (ecr.wrapping_sub(rtx) as i32) < 0 {
                return;
            }
            self.rtx_tsval = None;
        }
        let elapsed_ms = self.ts_now(now).wrapping_sub(ecr);
        if (elapsed_ms as i32) >= 0 && elapsed_ms < 60_000 {
            self.rtt.sample(Duration::from_millis(elapsed_ms as u64));
        }
    }

    /// Seventh (segment text) and eighth (FIN) steps of RFC 9293 §3.10.7.4.
    fn process_text_and_fin(&mut self, cx: &mut Cx, now: Instant, seg: &TcpSegment) {
        let f = seg.flags;
        let mut seq = seg.seq;
        let mut data = seg.payload;
        if f.syn() {
            seq += 1;
        }
        // Trim what we already have from the front. The first duplicate part of a segment
        // is reported as a D-SACK block (RFC 2883 §4), and a duplicate is acknowledged at once.
        let want_dsack = cx.cfg.dsack && self.sack_ok;
        if seq.lt(self.rcv.nxt) {
            let skip = self.rcv.nxt.since(seq) as usize;
            if want_dsack && !data.is_empty() {
                self.dsack = Some((seq, seq + skip.min(data.len()) as u32));
                self.ack_now = true;
                self.ack_reason = crate::TxReason::DsackAck;
            }
            data = &data[skip.min(data.len())..];
            seq = self.rcv.nxt;
        } else if want_dsack && !data.is_empty() {
            let off = seq.since(self.rcv.nxt) as usize;
            let end = off + data.len();
            if let Some((s, e)) = self.recvbuf.ooo_ranges().find(|&(s, e)| s < end && off < e) {
                let (s, e) = (s.max(off), e.min(end));
                self.dsack = Some((self.rcv.nxt + s as u32, self.rcv.nxt + e as u32));
                self.ack_now = true;
                self.ack_reason = crate::TxReason::DsackAck;
            }
        }
        let fin_seq = seg.seq + f.syn() as u32 + seg.payload.len() as u32;
        // Text beyond the window is not accepted (RFC 9293 §3.10.7.4 "trimmed ... to discard
        // any data beyond the window"); a FIN beyond it is not seen either.
        let room = self.acceptance_window().saturating_sub(seq.since(self.rcv.nxt)) as usize;
        let room = self.room_beyond_window(cx.cfg, seq, room);
        let fin_in_window = data.len() <= room;
        if data.len() > room {
            // Text beyond the window (e.g. a zero-window probe) still deserves an ACK showing
            // RCV.NXT and the current window (RFC 9293 §3.8.6.1).
            data = &data[..room];
            self.ack_now = true;
            self.ack_reason = crate::TxReason::ProbeAck;
        }

        if !data.is_empty() {
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    if self.user_closed {
                        // RFC 2525 §2.17 / RFC 9293 §3.10.4: data for a closed user → reset.
                        self.send_rst = true;
                        self.ack_reason = crate::TxReason::DataAfterCloseRst;
                        return;
                    }
                    self.accept_text(cx, now, seq, data);
                }
                _ => {
                    // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: "This should not occur since
                    // a FIN has been received from the remote side. Ignore the segment text."
                }
            }
        }

        if f.fin() && fin_in_window {
            match self.state {
                State::Closed | State::Listen | State::SynSent => return,
                _ => {}
            }
            if self.fin_rcvd {
                // Retransmitted FIN: acknowledge it; TIME-WAIT restarts its 2 MSL timeout.
                self.ack_now = true;
                self.ack_reason = crate::TxReason::FinAck;
                if self.state == State::TimeWait {
                    self.timewait_deadline = Some(now + cx.cfg.msl * 2);
                }
            } else if fin_seq.since(self.rcv.nxt) as i32 >= 0 {
                self.fin_seq_rcvd = Some(fin_seq);
                if fin_seq != self.rcv.nxt {
                    // FIN ahead of a hole: it is processed once the hole fills.
                    self.ack_now = true;
                    self.ack_reason = crate::TxReason::OutOfOrderAck;
                }
            }
        }
        self.maybe_process_fin(cx, now);
    }

    /// Place in-window text in the receive buffer and decide how to acknowledge it.
    pub(super) fn accept_text(&mut self, cx: &mut Cx, now: Instant, seq: SeqNum, data: &[u8]) {
        let offset = seq.since(self.rcv.nxt) as usize;
        let had_ooo = self.recvbuf.ooo_bytes() > 0;
        let advanced = if self.read_shut {
            // shutdown(Read): acknowledge and discard in-order data.
            if offset == 0 { data.len().min(self.recvbuf.window()) } else { 0 }
        } else {
            self.recvbuf.write(offset, data)
        };
        if advanced > 0 {
            self.rcv.nxt += advanced as u32;
            self.rcv.up = self.rcv.up.max(self.rcv.nxt);
            if !self.read_shut {
                self.notify |= notify::READABLE;
            }
        }
        if offset > 0 {
            // Out of order: RFC 5681 §4.2 "SHOULD send an immediate duplicate ACK".
            let stored = (offset < self.recvbuf.window()) as u32;
            if stored > 0 {
                let end = seq + (data.len().min(self.recvbuf.window() - offset)) as u32;
                self.last_ooo = Some((seq, end));
            }
            self.ack_now = true;
            self.ack_reason = crate::TxReason::OutOfOrderAck;
            return;
        }
        if had_ooo {
            // Filling a hole: RFC 5681 §4.2 "SHOULD send an immediate ACK".
            self.ack_now = true;
            self.ack_reason = crate::TxReason::HoleFilledAck;
            return;
        }
        // In order: delayed ACK (RFC 9293 §3.8.6.3, RFC 5681 §4.2): at least every second
        // full-sized segment, and within the configured bound (< 0.5 s).
        self.rcv_seg_max = self.rcv_seg_max.max(data.len() as u32);
        self.unacked_bytes += advanced as u32;
        self.unacked_segs += 1;
        if self.quickack_due(cx.cfg, now) {
            self.ack_now = true;
            return;
        }
        match cx.cfg.delayed_ack {
            None => {
                self.ack_now = true;
                self.ack_reason = crate::TxReason::AckEveryOther;
            }
            Some(delay) => {
                if self.ack_every_reached(cx.cfg) {
                    self.ack_now = true;
                    self.ack_reason = crate::TxReason::AckEveryOther;
                } else if self.delack_deadline.is_none() {
                    self.delack_deadline = Some(now + delay.min(MAX_ACK_DELAY));
                }
            }
        }
    }

    /// RFC 5681 §4.2 / RFC 9293 SHLD-19: the in-order data not yet acknowledged amounts to
    /// `Config::ack_every` full-sized segments (or segments, with
    /// `Config::ack_every_counts_segments`).
    pub(crate) fn ack_every_reached(&self, cfg: &Config) -> bool {
        let every = cfg.ack_every.max(1);
        if cfg.ack_every_counts_segments {
            return self.unacked_segs >= every;
        }
        // "Full-sized" is what the peer actually sends at most (Linux's rcv_mss estimate):
        // a peer behind a smaller path MTU never fills our MSS.
        let mss = self.rcv_mss as u32 - if self.ts_ok { 12 } else { 0 };
        let full = self.rcv_seg_max.clamp(536.min(mss), mss);
        self.unacked_segs > 0 && self.unacked_bytes >= every * full
    }

    /// Eighth step once RCV.NXT reaches the peer's FIN.
    fn maybe_process_fin(&mut self, cx: &mut Cx, now: Instant) {
        let Some(fs) = self.fin_seq_rcvd else { return };
        if fs != self.rcv.nxt || self.fin_rcvd {
            return;
        }
        // "advance RCV.NXT over the FIN, and send an acknowledgment for the FIN"
        self.fin_rcvd = true;
        self.rcv.nxt += 1;
        self.ack_now = true;
        self.ack_reason = crate::TxReason::FinAck;
        self.notify |= notify::READABLE;
        match self.state {
            State::SynReceived | State::Established => self.set_state(cx, State::CloseWait),
            State::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(cx, now);
                } else {
                    // Simultaneous close.
                    self.set_state(cx, State::Closing);
                }
            }
            State::FinWait2 => self.enter_time_wait(cx, now),
            _ => {}
        }
    }

    /// TIME-WAIT for 2 MSL (RFC 9293 §3.4.2); other timers stop.
    pub(crate) fn enter_time_wait(&mut self, cx: &mut Cx, now: Instant) {
        self.set_state(cx, State::TimeWait);
        self.timewait_deadline = Some(now + cx.cfg.msl * 2);
        self.rtx_deadline = None;
        self.persist_deadline = None;
        self.keepalive_deadline = None;
    }
}
