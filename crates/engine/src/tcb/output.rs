//! What a TCB sends next: SYN/SYN-ACK, data under the send and congestion windows
//! (Nagle and sender SWS avoidance), retransmissions, FIN, ACKs with SACK, RST.

use super::{Cx, State, Tcb};
use crate::CloseReason;
use crate::TxReason;
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::{SackBlocks, TcpFlags, TcpHeaderOut, TcpOptions, emit_ip_tcp};

/// RFC 9293 §3.8.6.2.1: the override timeout for sender SWS avoidance (0.1 to 1 s).
const SWS_OVERRIDE: Duration = Duration::from_millis(200);

/// What one segment carries, before the header is filled in.
pub(super) struct Plan {
    pub(super) seq: SeqNum,
    pub(super) flags: TcpFlags,
    /// Offset into the send buffer and length of the payload.
    pub(super) off: usize,
    pub(super) len: usize,
}

impl Tcb {
    /// Write the next segment this TCB wants to send into `buf`. Returns its length.
    pub(crate) fn poll_transmit(&mut self, cx: &mut Cx, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.send_rst {
            return self.emit_rst(cx, now, buf);
        }
        match self.state {
            State::Closed | State::Listen | State::TimeWait => {
                // TIME-WAIT only re-acknowledges a retransmitted FIN.
                if self.state == State::TimeWait && self.ack_now {
                    let seq = self.snd_max;
                    self.tx_reason = TxReason::TimeWaitAck;
                    return self.emit(cx, now, buf, Plan { seq, flags: TcpFlags::ACK, off: 0, len: 0 });
                }
                return None;
            }
            State::SynSent | State::SynReceived => {
                if self.send_syn {
                    return self.emit_syn(cx, now, buf);
                }
                if self.state == State::SynSent {
                    return None;
                }
            }
            _ => {}
        }
        if self.state != State::SynReceived {
            if let Some(plan) = self.plan_retransmit_una(cx) {
                return self.emit(cx, now, buf, plan);
            }
            // RFC 6675 §4 NextSeg: rule 1 (a lost hole), rule 2 (new data), rules 3-4.
            if let Some(plan) = self.plan_next_seg_lost(cx) {
                return self.emit(cx, now, buf, plan);
            }
            if let Some(plan) = self.plan_tlp(cx) {
                return self.emit(cx, now, buf, plan);
            }
            if let Some(plan) = self.plan_data(cx, now) {
                return self.emit(cx, now, buf, plan);
            }
            if let Some(plan) = self.plan_next_seg_rescue(cx) {
                return self.emit(cx, now, buf, plan);
            }
        }
        if self.send_keepalive {
            // RFC 9293 §3.8.4 / RFC 1122 §4.2.3.6: <SEQ=SND.NXT-1> with no data.
            self.send_keepalive = false;
            self.tx_reason = TxReason::KeepaliveProbe;
            cx.counters.keepalive_probes += 1;
            let seq = self.snd_max - 1;
            return self.emit(cx, now, buf, Plan { seq, flags: TcpFlags::ACK, off: 0, len: 0 });
        }
        // Window updates are requested by the user's reads (`after_user_read`), as on Linux.
        // A deferred one waits for the next segment, at most the delayed-ACK bound.
        if std::mem::take(&mut self.window_update_deferred)
            && !self.ack_now
            && self.delack_deadline.is_none()
            && let Some(d) = cx.cfg.delayed_ack
        {
            self.delack_deadline = Some(now + d.min(super::input::MAX_ACK_DELAY));
        }
        if self.ack_now {
            if cx.cfg.resend_fin_with_ack
                && !self.challenge_pending
                && let Some(fs) = self.fin_seq()
                && !self.fin_acked()
                && self.snd_max.gt(fs)
            {
                let plan = Plan { seq: fs, flags: TcpFlags::FIN | TcpFlags::ACK, off: 0, len: 0 };
                self.tx_reason = self.ack_reason;
                return self.emit(cx, now, buf, plan);
            }
            let seq = self.snd_max;
            self.tx_reason = self.ack_reason;
            return self.emit(cx, now, buf, Plan { seq, flags: TcpFlags::ACK, off: 0, len: 0 });
        }
        None
    }

    /// If an ACK for at least one in-order data segment is due now, write it as a pure
    /// ACK into `buf` (the Stack calls this before the next segment folds it into a later
    /// ACK; RFC 5681 §4.2, see `ack_queue.rs`).
    pub(crate) fn emit_owed_ack(&mut self, cx: &mut Cx, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if !self.owes_data_ack(cx.cfg) {
            return None;
        }
        let seq = self.snd_max;
        self.emit(cx, now, buf, Plan { seq, flags: TcpFlags::ACK, off: 0, len: 0 })
    }

    /// An ACK for at least `Config::ack_every` full-sized segments of in-order data is due
    /// now (see [`Tcb::emit_owed_ack`]). Smaller amounts are aggregated (MUST-58).
    pub(crate) fn owes_data_ack(&self, cfg: &crate::Config) -> bool {
        self.ack_now
            && self.ack_every_reached(cfg)
            && !self.challenge_pending
            && !self.send_rst
            && self.state.is_synchronized()
            && self.state != State::TimeWait
    }

    /// ABORT or close with unread data: <SEQ=SND.NXT><CTL=RST> (RFC 9293 §3.10.5), then CLOSED.
    fn emit_rst(&mut self, cx: &mut Cx, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.send_rst = false;
        self.tx_reason = if self.ack_reason == TxReason::DataAfterCloseRst {
            self.ack_reason
        } else {
            TxReason::UserAbortRst
        };
        let synced = self.state != State::SynSent && self.state != State::Closed;
        let n = if synced {
            let flags = TcpFlags::RST | TcpFlags::ACK;
            let plan = Plan { seq: self.snd_max, flags, off: 0, len: 0 };
            self.emit(cx, now, buf, plan)
        } else {
            None
        };
        if n.is_some() {
            cx.counters.out_rsts += 1;
        }
        self.close_with(cx, CloseReason::Aborted);
        n
    }

    /// SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), with our options (RFC 9293 §3.10.1).
    fn emit_syn(&mut self, cx: &mut Cx, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let cfg = cx.cfg;
        let active = self.state == State::SynSent;
        // `Config::pmtu_syn_mss` (FreeBSD): a path MTU learnt from ICMP lowers our offer.
        let path = match self.path.mss_cap {
            Some(cap) if cfg.pmtu_syn_mss && self.quad.remote.is_ipv6() => cap,
            _ => u16::MAX,
        };
        let mss = cfg.send_mss_option.then_some(self.rcv_mss.min(path));
        let mut opts = TcpOptions { mss, ..TcpOptions::default() };
        // `Config::syn_rexmit_drop_options`: late SYN retransmissions carry the MSS only.
        let mss_only = self.syn_options_dropped(cfg);
        // Offer only what the peer offered, when answering (RFC 7323 §2.2, RFC 2018 §2).
        if cfg.window_scale && !mss_only && (active || self.wscale_ok) {
            opts.window_scale = Some(cfg.wscale_for(self.recvbuf.capacity()));
        }
        if cfg.sack && !mss_only && (active || self.sack_ok) {
            opts.sack_permitted = true;
        }
        if cfg.timestamps && !mss_only && (active || self.ts_ok) {
            let ecr = if active { 0 } else { self.ts_recent };
            opts.timestamps = Some((self.ts_now(now), ecr));
        }
        let mut flags = TcpFlags::SYN;
        let ack = if active { SeqNum(0) } else { self.rcv.nxt };
        if !active {
            flags |= TcpFlags::ACK;
        }
        // The window in a SYN is never scaled (RFC 7323 §2.2).
        let wnd = (self.recvbuf.window() as u32).min(65535);
        let h = TcpHeaderOut {
            tcp: crate::wire::TcpRepr {
                src_port: self.quad.local.port(),
                dst_port: self.quad.remote.port(),
                seq: self.snd.iss,
                ack,
                flags,
                window: wnd as u16,
                urgent: 0,
                options: opts,
            },
            src: self.quad.local.ip(),
            dst: self.quad.remote.ip(),
            ttl: self.path.ttl,
            ip_id: self.next_ip_id(),
            // RFC 6437: one label per connection (Tcb::flow_label).
            flow_label: self.flow_label,
        };
        let n = emit_ip_tcp(buf, &h, cfg.option_layout, &[])?;
        self.stamp_ip(cfg, &mut buf[..n]); // IP_TOS, DF (pmtu.rs)
        self.send_syn = false;
        self.rcv.wnd = wnd;
        if !active {
            self.rcv_adv = self.rcv.nxt + wnd;
            self.last_ack_sent = self.rcv.nxt;
            self.ack_now = false;
        }
        let retransmission = self.snd_max != self.snd.iss;
        self.tx_reason = crate::explain::syn_reason(active, retransmission, self.rtx_reason);
        self.snd.nxt = self.snd.iss + 1;
        self.snd_max = self.snd_max.max(self.snd.nxt);
        if retransmission {
            self.retransmits += 1;
            cx.counters.retrans_segs += 1;
        } else if !self.ts_ok || active {
            self.rtt_timed = Some((self.snd.iss, now));
        }
        if self.rtx_deadline.is_none() {
            self.rtx_deadline = Some(now + self.rto_timer(cx.cfg));
        }
        self.last_snd_time = now;
        cx.counters.out_segs += 1;
        Some(n)
    }

    /// Fast retransmit / NewReno partial ACK: one segment from SND.UNA (RFC 5681 §3.2 step 2,
    /// RFC 6582 §3.2 step 5).
    fn plan_retransmit_una(&mut self, cx: &mut Cx) -> Option<Plan> {
        if !self.rtx_una {
            return None;
        }
        self.rtx_una = false;
        if self.snd.una == self.snd_max {
            return None;
        }
        let off = self.snd.una.since(self.buf_seq()) as usize;
        let len = self.sendbuf.len().saturating_sub(off).min(self.eff_mss(cx.cfg));
        let mut flags = TcpFlags::ACK;
        if let Some(fs) = self.fin_seq()
            && self.snd.una + len as u32 == fs
            && self.snd_max.gt(fs)
        {
            flags |= TcpFlags::FIN;
        }
        if len == 0 && !flags.fin() {
            return None;
        }
        if len > 0 && off + len == self.sendbuf.len() {
            flags |= TcpFlags::PSH;
        }
        self.retransmits += 1;
        cx.counters.retrans_segs += 1;
        self.scoreboard.high_rxt = self.snd.una + len as u32;
        self.tx_reason = self.rtx_reason;
        Some(Plan { seq: self.snd.una, flags, off, len })
    }

    /// New (or go-back-N re-sent) data and FIN, under the windows, with Nagle and
    /// sender SWS avoidance (RFC 9293 §3.7.4, §3.8.6.2.1; RFC 1122 §4.2.3.4).
    fn plan_data(&mut self, cx: &mut Cx, now: Instant) -> Option<Plan> {
        if !matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait1 | State::Closing | State::LastAck
        ) {
            return None;
        }
        // Going back N after a timeout: skip what the receiver SACKed (RFC 6675 §5.1).
        if self.snd.nxt.lt(self.snd_max)
            && let Some(end) = self.scoreboard.sacked_end_at(self.snd.nxt)
        {
            self.snd.nxt = end.min(self.snd_max);
        }
        let buf_seq = self.buf_seq();
        if self.snd.nxt.lt(buf_seq) {
            return None;
        }
        let off = self.snd.nxt.since(buf_seq) as usize;
        let unsent = self.sendbuf.len().saturating_sub(off);
        let fin_seq = self.fin_seq();
        let fin_pending = matches!(fin_seq, Some(fs) if self.snd.nxt.le(fs));
        if unsent == 0 && !fin_pending {
            return None;
        }
        // RFC 5681 §4.1: restart from the initial window after an idle period of one RTO.
        // `Config::slow_start_after_idle` off: Linux's tcp_slow_start_after_idle=0.
        if cx.cfg.slow_start_after_idle
            && self.snd.una == self.snd_max
            && now.saturating_since(self.last_snd_time) > self.rtt.rto()
        {
            self.cc.on_idle_restart(self.eff_mss(cx.cfg));
        }
        self.path_aging(cx.cfg, now); // RFC 1191 §6.3, RFC 4821 §7.2 (pmtu.rs)
        let mss = self.eff_mss(cx.cfg);
        self.tx_reason = TxReason::NewData;
        let in_flight = self.snd.nxt.since(self.snd.una) as usize;
        let cwnd = self.cc.cwnd() + self.limited_transmit as usize * mss;
        // During SACK recovery the congestion window limits pipe, not FlightSize
        // (RFC 6675 §5 (C), NextSeg rule 2); the peer's window still limits what is outstanding.
        let pipe = self.recovery_pipe(cx.cfg).unwrap_or(in_flight);
        let usable = (self.snd.wnd as usize).saturating_sub(in_flight).min(cwnd.saturating_sub(pipe));
        // RFC 4821 §7.3: perhaps a larger probe segment (pmtu.rs).
        let size = self.mtu_probe_size(cx.cfg, mss, unsent.min(usable));
        let mut len = unsent.min(usable).min(size);
        let retransmission = self.snd.nxt.lt(self.snd_max);
        if retransmission && let Some(s) = self.scoreboard.next_sacked_after(self.snd.nxt) {
            len = len.min(s.since(self.snd.nxt) as usize);
        }

        if self.force_probe && len == 0 && unsent > 0 && self.snd.wnd == 0 {
            // Zero-window probe: one byte past the window (RFC 9293 §3.8.6.1).
            self.force_probe = false;
            cx.counters.zero_window_probes += 1;
            self.tx_reason = TxReason::ZeroWindowProbe;
            len = 1;
        } else if self.force_probe && len > 0 {
            // The SWS override timeout expired: send what the window allows
            // (RFC 9293 §3.8.6.2.1 (iv)).
            self.tx_reason = TxReason::SwsOverride;
        } else if len < mss && !retransmission {
            let all_queued = len == unsent;
            let with_fin = all_queued && fin_pending;
            if len == 0 && !with_fin {
                self.arm_persist(now, unsent);
                return None;
            }
            if all_queued {
                // Nagle (RFC 9293 §3.7.4, SHLD-7/MUST-17 via RFC 1122 §4.2.3.4): hold a small
                // segment while data is unacknowledged — with Minshall's variant (Linux), only
                // while an earlier small segment is.
                let waiting_on =
                    if cx.cfg.nagle_minshall { self.snd_sml.gt(self.snd.una) } else { in_flight > 0 };
                if len > 0 && waiting_on && !self.nodelay && !with_fin && !self.urgent_mode() {
                    return None;
                }
            } else if (len as u32) < self.max_snd_wnd / 2 {
                // Sender SWS avoidance (RFC 9293 §3.8.6.2.1): wait for a useful window, but
                // no longer than the override timeout.
                if self.persist_deadline.is_none() {
                    self.persist_deadline = Some(now + SWS_OVERRIDE);
                }
                return None;
            }
        }
        self.force_probe = false;
        let mut flags = TcpFlags::ACK;
        if let Some(fs) = fin_seq
            && self.snd.nxt + len as u32 == fs
        {
            flags |= TcpFlags::FIN;
        }
        if len > 0 && off + len == self.sendbuf.len() {
            flags |= TcpFlags::PSH;
        }
        if len == 0 && !flags.fin() {
            return None;
        }
        if retransmission {
            self.retransmits += 1;
            cx.counters.retrans_segs += 1;
        }
        self.tx_reason = crate::explain::data_reason(self.tx_reason, retransmission, len);
        if len < mss {
            // Minshall's Nagle tracks the end of the last small segment.
            self.snd_sml = self.snd.nxt + len as u32;
        }
        Some(Plan { seq: self.snd.nxt, flags, off, len })
    }

    /// Start the persist timer when a zero window blocks queued data (RFC 9293 §3.8.6.1).
    fn arm_persist(&mut self, now: Instant, unsent: usize) {
        if unsent > 0 && self.snd.wnd == 0 && self.snd.una == self.snd_max && self.persist_deadline.is_none()
        {
            let shift = self.persist_backoff.min(10);
            let d = (self.rtt.rto() * (1 << shift)).min(Duration::from_secs(60));
            self.persist_deadline = Some(now + d);
        }
    }

    /// Receiver SWS avoidance (RFC 9293 §3.8.6.2.2): announce a larger window once it grew
    /// by min(RCV.BUFF/2, MSS) beyond what the peer was told.
    pub(crate) fn window_update_due(&self) -> bool {
        if !self.state.is_synchronized() || self.fin_rcvd {
            return false;
        }
        let cur = self.rcv_wnd_now() as usize;
        // What the window field can carry at most (RFC 7323 §2.3).
        let free = self.recvbuf.window().min(65535 << self.rcv_wscale);
        let step = (self.recvbuf.capacity() / 2).min(self.rcv_mss as usize);
        free >= cur + step.max(1 << self.rcv_wscale)
    }

    /// The window field for a non-SYN segment, and the bookkeeping of what we advertised.
    fn advertise_window(&mut self, cx_full_space: bool) -> u16 {
        let cur = self.rcv_wnd_now() as usize;
        let free = if self.read_shut { self.recvbuf.capacity() } else { self.recvbuf.window() };
        let step = (self.recvbuf.capacity() / 2).min(self.rcv_mss as usize);
        // Receiver SWS avoidance: grow only by useful amounts; never shrink the right edge.
        let grow = cx_full_space || free >= cur + step || free == self.recvbuf.capacity();
        let wnd = if grow { free.max(cur) } else { cur };
        let field = (wnd >> self.rcv_wscale).min(65535) as u32;
        let adv = self.rcv.nxt + (field << self.rcv_wscale);
        if adv.gt(self.rcv_adv) {
            self.rcv_adv = adv;
        }
        self.rcv.wnd = field << self.rcv_wscale;
        field as u16
    }

    /// SACK blocks for an ACK (RFC 2018 §4): a D-SACK first (RFC 2883 §4), then the block
    /// holding the most recently received out-of-order segment, then the blocks reported
    /// before, most recent first, then any others.
    fn sack_blocks(&mut self, max: usize) -> SackBlocks {
        let mut blocks = SackBlocks::new();
        if !self.sack_ok {
            return blocks;
        }
        if let Some((s, e)) = self.dsack.take() {
            blocks.push(s, e);
        }
        let nxt = self.rcv.nxt;
        // The held out-of-order ranges, as sequence numbers.
        let mut held: [(SeqNum, SeqNum); 64] = [(SeqNum(0), SeqNum(0)); 64];
        let mut n = 0;
        for (s, e) in self.recvbuf.ooo_ranges() {
            if n == held.len() {
                break;
            }
            held[n] = (nxt + s as u32, nxt + e as u32);
            n += 1;
        }
        let held = &held[..n];
        let containing = |seq: SeqNum| held.iter().copied().find(|(s, e)| s.le(seq) && seq.lt(*e));
        let mut order = SackBlocks::new();
        let add = |b: (SeqNum, SeqNum), order: &mut SackBlocks| {
            if !order.as_slice().contains(&b) {
                order.push(b.0, b.1);
            }
        };
        if let Some((ls, _)) = self.last_ooo
            && let Some(b) = containing(ls)
        {
            add(b, &mut order);
        }
        for &(s, _) in self.sack_reported.as_slice() {
            if let Some(b) = containing(s) {
                add(b, &mut order);
            }
        }
        for &b in held.iter().rev() {
            add(b, &mut order);
        }
        self.sack_reported = order;
        for &(s, e) in order.as_slice() {
            if blocks.len() >= max {
                break;
            }
            blocks.push(s, e);
        }
        blocks
    }

    fn next_ip_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }

    /// Fill the header for `plan`, emit it, and account for what was sent.
    fn emit(&mut self, cx: &mut Cx, now: Instant, buf: &mut [u8], plan: Plan) -> Option<usize> {
        let cfg = cx.cfg;
        let window = self.advertise_window(cfg.window_full_space);
        let mut options = TcpOptions::default();
        if self.ts_ok {
            options.timestamps = Some((self.ts_now(now), self.ts_recent));
        }
        if plan.flags.ack() && !plan.flags.rst() {
            // MUST-16 (RFC 9293 §3.7.1): payload plus options stay within the send MSS, so
            // a full-sized segment carries only the SACK blocks that fit.
            let mss = (self.snd_mss as usize)
                .min(cfg.send_mss_cap_for(self.quad.local.ip()) as usize)
                .min(self.path_mss_cap());
            let room = mss.saturating_sub(plan.len + if self.ts_ok { 12 } else { 0 });
            let fit = if room >= 12 { (room - 4) / 8 } else { 0 };
            let max = fit.min(if self.ts_ok { 3 } else { 4 });
            if max > 0 {
                options.sack = self.sack_blocks(max);
            }
        }
        // RFC 9293 §3.8.5: URG and the urgent pointer while SND.UP is ahead (urgent.rs).
        let urgent = self.urgent_pointer(plan.seq).filter(|_| !plan.flags.rst());
        let flags = if urgent.is_some() { plan.flags | TcpFlags::URG } else { plan.flags };
        let h = TcpHeaderOut {
            tcp: crate::wire::TcpRepr {
                src_port: self.quad.local.port(),
                dst_port: self.quad.remote.port(),
                seq: plan.seq,
                ack: if plan.flags.ack() { self.rcv.nxt } else { SeqNum(0) },
                flags,
                window,
                urgent: urgent.unwrap_or(0),
                options,
            },
            src: self.quad.local.ip(),
            dst: self.quad.remote.ip(),
            ttl: self.path.ttl,
            ip_id: self.next_ip_id(),
            // RFC 6437: one label per connection (Tcb::flow_label).
            flow_label: self.flow_label,
        };
        let (a, b) = self.sendbuf.slices(plan.off, plan.len);
        // TUN offload (issue 12): the device checksums data segments (gso.rs).
        let partial = cx.partial_csum && plan.len > 0 && self.quad.remote.is_ipv4();
        let n = if partial {
            crate::wire::emit_ipv4_tcp_partial(buf, &h, cfg.option_layout, &[a, b])?
        } else {
            emit_ip_tcp(buf, &h, cfg.option_layout, &[a, b])?
        };
        cx.wrote_partial = partial;
        self.stamp_ip(cfg, &mut buf[..n]); // IP_TOS, DF (pmtu.rs)
        cx.counters.out_segs += 1;
        if plan.len > 0 && plan.seq.lt(self.snd_max) {
            // A retransmission: echoes of earlier TSvals are ambiguous from now on.
            self.rtx_tsval = options.timestamps.map(|(v, _)| v);
        }
        if let Some(prr) = self.prr.as_mut() {
            // RFC 6937 §3: prr_out counts everything sent during recovery.
            prr.on_sent(plan.len);
        }

        // An ACK went out: nothing is owed any more (RFC 9293 §3.8.6.3).
        if plan.flags.ack() {
            self.ack_now = false;
            self.challenge_pending = false;
            self.delack_deadline = None;
            self.window_update_deferred = false;
            self.unacked_bytes = 0;
            self.unacked_segs = 0;
            self.last_ack_sent = self.rcv.nxt;
        }
        let seg_len = plan.len as u32 + plan.flags.fin() as u32;
        if seg_len > 0 && !plan.flags.rst() {
            let end = plan.seq + seg_len;
            if plan.seq == self.snd.nxt {
                self.snd.nxt = end;
            }
            // RFC 8985 §6.1: remember when each segment left (rack.rs).
            self.rack_on_sent(cx.cfg, plan.seq, end, now, !plan.seq.lt(self.snd_max));
            if end.gt(self.snd_max) {
                // New data: time it unless timestamps do the job (Karn: never a retransmission).
                if self.rtt_timed.is_none() && !self.ts_ok && plan.seq.ge(self.snd_max) {
                    self.rtt_timed = Some((plan.seq, now));
                }
                self.snd_max = end;
            }
            if self.rtx_deadline.is_none() {
                // RFC 6298 §5.1: start the timer when data is sent and it is not running.
                self.user_timeout_on_send(now);
                self.rtx_deadline = Some(self.clamp_to_user_timeout(now + self.rto_timer(cx.cfg)));
            }
            if cx.cfg.tail_loss_probe {
                self.arm_tlp(cx.cfg, now); // RFC 8985 §7.2
            }
            self.persist_deadline = None;
            self.last_snd_time = now;
        }
        Some(n)
    }
}
