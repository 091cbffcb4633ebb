//! The TCB's IP path state (issue 13): per-connection TTL and TOS (RFC 9293 MUST-48),
//! ICMP errors (RFC 1122 §4.2.3.9, RFC 5927, RFC 9293 MUST-47/MUST-54), classic path MTU
//! discovery (RFC 1191) and the black-hole fallback of packetization-layer PMTUD
//! (RFC 4821 §7.7; Linux's tcp_mtu_probing, tcp_base_mss).

use super::{Cx, State, Tcb};
use crate::CloseReason;
use crate::icmp_error::{IcmpError, IcmpErrorKind};
use crate::time::Instant;
use crate::wire::DropReason;

/// RTOs of the same data after which a path counts as a black hole (Linux: tcp_retries1 = 3,
/// the point where tcp_write_timeout calls tcp_mtu_probing).
pub const BLACK_HOLE_RTOS: u32 = 3;
/// Smallest MSS the black-hole search goes down to (Linux's tcp_mtu_probe_floor).
pub const PROBE_FLOOR_MSS: u16 = 48;
/// The upward search stops once its range is narrower than this (Linux's
/// tcp_probe_threshold, 8 bytes; RFC 4821 §7.2 leaves the step to the implementation).
pub const PROBE_THRESHOLD: u16 = 8;

/// A probe segment in flight (RFC 4821 §7.3): it ends at `end` and is `mss` bytes long; it
/// succeeded if acknowledged with no retransmission since `retransmits` (then the MSS
/// becomes `mss`), and failed on an RTO (then the search stops below it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    end: crate::seq::SeqNum,
    mss: u16,
    retransmits: u64,
}

/// Per-connection IP-level state.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PathState {
    /// IPv4 TTL of emitted packets (IP_TTL; `Config::ttl` by default).
    pub ttl: u8,
    /// IPv4 TOS byte (DSCP + ECN) of emitted packets (IP_TOS; `Config::tos` by default).
    pub tos: u8,
    /// The last soft ICMP error (RFC 1122 §4.2.3.9), reported if the connection times out.
    pub soft_error: Option<CloseReason>,
    /// The MSS the path allows (RFC 1191 PMTU − 40, or the black-hole search's value);
    /// `None` until the path said anything.
    pub mss_cap: Option<u16>,
    /// Packetization-layer PMTUD is searching (RFC 4821; Linux icsk_mtup.enabled).
    pub probing: bool,
    /// The smallest MSS known not to fit (RFC 4821 search_high, as an MSS); 0 = the link's.
    pub search_high: u16,
    /// The probe in flight, if any.
    pub probe: Option<Probe>,
    /// `Tcb::retransmits` when last seen, and SND.MAX then: no probe goes out until all
    /// sent before the latest retransmission is acknowledged (a probe must not share its
    /// flight with a loss repair, or its fate proves nothing).
    pub rtx_seen: u64,
    pub quiet_after: Option<crate::seq::SeqNum>,
    /// When the current upward search began (`Config::mtu_probe_interval`).
    pub search_started: Option<Instant>,
    /// When the MSS learned from an ICMP error is forgotten (`Config::pmtu_expires`).
    pub icmp_cap_expires: Option<Instant>,
}

impl PathState {
    /// Defaults for a new connection.
    pub(crate) fn new(cfg: &crate::Config) -> PathState {
        let mut p = PathState { ttl: cfg.ttl, tos: cfg.tos, ..PathState::default() };
        if cfg.mtu_probing >= 2 {
            // Linux tcp_mtu_probing=2: search from tcp_base_mss from the start.
            p.probing = true;
            p.mss_cap = Some(cfg.base_mss.max(PROBE_FLOOR_MSS));
        }
        p
    }
}

/// The close reason a soft or hard error reports (what `io::ErrorKind` the user sees).
fn reason_of(kind: IcmpErrorKind, cfg: &crate::Config, hard: bool) -> CloseReason {
    if hard && cfg.icmp_hard_refused && kind.is_hard() {
        // FreeBSD's tcp_drop_syn_sent(tp, ECONNREFUSED) for every hard error.
        return CloseReason::Refused;
    }
    match kind {
        IcmpErrorKind::ProtocolUnreachable | IcmpErrorKind::PortUnreachable => CloseReason::Refused,
        IcmpErrorKind::NetUnreachable => CloseReason::NetworkUnreachable,
        _ => CloseReason::HostUnreachable,
    }
}

impl Tcb {
    /// Write the connection's TOS (MUST-48) and, with PMTUD off, a clear DF into the IPv4
    /// header `emit_ipv4_tcp` wrote (TOS 0, DF set).
    #[inline]
    pub(crate) fn stamp_ip(&self, cfg: &crate::Config, packet: &mut [u8]) {
        if self.path.tos != 0 || !cfg.pmtu_discovery {
            crate::icmp_error::restamp_ipv4(packet, self.path.tos, cfg.pmtu_discovery);
        }
    }

    /// The MSS cap the path imposes, if any (used by `eff_mss`).
    #[inline]
    pub(crate) fn path_mss_cap(&self) -> usize {
        self.path.mss_cap.map_or(usize::MAX, usize::from)
    }

    /// An ICMP error quoting one of our segments (crate::icmp_error). `Err` names the drop
    /// reason when it changes nothing.
    pub(crate) fn on_icmp_error(
        &mut self,
        cx: &mut Cx,
        now: Instant,
        e: &IcmpError,
    ) -> Result<(), DropReason> {
        // RFC 5927 §4.1: "TCP SHOULD check that the TCP sequence number contained in the
        // payload of the ICMP error message is within the range SND.UNA =< SEG.SEQ <
        // SND.NXT" (SND.NXT here is the highest sent: it moves back on RTO). In SYN-SENT
        // and SYN-RECEIVED that is ISS alone.
        if !(self.snd.una.le(e.seq) && e.seq.lt(self.snd_max)) || self.state == State::Closed {
            return Err(DropReason::IcmpOutOfWindow);
        }
        if let IcmpErrorKind::FragmentationNeeded { mtu } = e.kind {
            return self.on_frag_needed(cx, now, mtu);
        }
        let handshake = matches!(self.state, State::SynSent | State::SynReceived);
        let time_exceeded_hard =
            cx.cfg.icmp_time_exceeded_hard && e.kind == (IcmpErrorKind::TimeExceeded { in_transit: true });
        let hard = e.kind.is_hard() || time_exceeded_hard;
        if hard && handshake && cx.cfg.icmp_may_rst {
            // RFC 1122 §4.2.3.9: protocol/port unreachable "SHOULD abort the connection";
            // only while it is being opened (RFC 5927 §4.2: hard errors in synchronized
            // states are treated as soft, so a forged one cannot reset a connection).
            cx.counters.attempt_fails += 1;
            cx.counters.icmp_hard_aborts += 1;
            self.close_with(cx, reason_of(e.kind, cx.cfg, true));
            return Ok(());
        }
        // RFC 1122 §4.2.3.9 / MUST-47: keep it; the user hears of it if we time out.
        cx.counters.icmp_soft_errors += 1;
        self.path.soft_error = Some(reason_of(e.kind, cx.cfg, false));
        Ok(())
    }

    /// RFC 1191 §6.4: Fragmentation Needed lowers the MSS to PMTU − 40 and what was lost at
    /// the old size is sent again at the new one (Linux's tcp_simple_retransmit: no cwnd
    /// reduction, the loss was not congestion).
    fn on_frag_needed(&mut self, cx: &mut Cx, now: Instant, mtu: u16) -> Result<(), DropReason> {
        if !cx.cfg.pmtu_discovery {
            return Err(DropReason::IcmpPmtuIgnored);
        }
        // Linux ip_rt_frag_needed / min_pmtu: a smaller value is raised to the floor.
        // IPv6 (a Packet Too Big, RFC 8201, once ICMPv6 calls in): the minimum link MTU is
        // 1280 (RFC 8200 §5) and the header 40 bytes longer than IPv4's 20.
        let (floor, headers) = if self.quad.remote.is_ipv6() { (1280, 60) } else { (68, 40) };
        let pmtu = mtu.max(cx.cfg.min_pmtu).max(floor);
        let mss = pmtu.saturating_sub(headers);
        // RFC 1191 §6.3: "a host MUST never increase its estimate of the Path MTU in
        // response to the contents of a Datagram Too Big message".
        let current = (cx.cfg.send_mss_cap() as usize).min(self.path_mss_cap());
        if usize::from(mss) >= current {
            return Err(DropReason::IcmpPmtuIgnored);
        }
        self.path.mss_cap = Some(mss);
        let expires = cx.cfg.pmtu_expires;
        self.path.icmp_cap_expires = (!expires.is_zero()).then(|| now + expires);
        cx.counters.pmtu_reductions += 1;
        if self.state.is_synchronized() && self.snd.una.lt(self.snd.nxt) {
            // Resend from SND.UNA at the new size (RFC 1191 §6.4 "retransmit").
            self.snd.nxt = self.snd.una;
            self.rtt_timed = None;
            self.rtx_deadline = Some(now + self.rto_timer(cx.cfg));
        }
        Ok(())
    }

    /// RFC 4821 §7.7 / Linux tcp_mtu_probing: after `BLACK_HOLE_RTOS` timeouts of the same
    /// data, a path that drops full-sized segments without ICMP is assumed; start the
    /// search at `Config::base_mss`, then halve (down to `PROBE_FLOOR_MSS`) on each further
    /// black-hole timeout.
    pub(crate) fn black_hole_check(&mut self, cfg: &crate::Config, counters: &mut crate::Counters) {
        // Zero-window probes time out for want of window, not of path (RFC 9293 §3.8.6.1).
        if cfg.mtu_probing == 0 || !self.state.is_synchronized() || self.snd.wnd == 0 {
            return;
        }
        if let Some(p) = self.path.probe.take() {
            // RFC 4821 §7.6.1: the probe was lost (the RTO covers it): search below it.
            self.path.search_high = p.mss.saturating_sub(1);
            counters.pmtu_probes_failed += 1;
            return;
        }
        if self.retries < BLACK_HOLE_RTOS {
            return;
        }
        let cur = self.eff_mss(cfg) as u16 + if self.ts_ok { 12 } else { 0 };
        let next = if self.path.probing { (cur / 2).min(cfg.base_mss) } else { cfg.base_mss.min(cur) };
        self.path.probing = true;
        let next = next.max(PROBE_FLOOR_MSS);
        if next < cur {
            self.path.mss_cap = Some(next);
            counters.pmtu_black_holes += 1;
        }
    }

    /// RFC 4821 §7.3 / Linux tcp_mtu_probe: while searching, the next new segment may be a
    /// probe halfway between the current MSS and the smallest size known too large (the
    /// link's MSS at first). Returns the size for the segment at SND.NXT: a probe's if one
    /// goes now (enough queued data and window for it, no loss recovery, none in flight),
    /// else `mss`.
    pub(crate) fn mtu_probe_size(&mut self, cfg: &crate::Config, mss: usize, room: usize) -> usize {
        let Some(low) = self.path.mss_cap else { return mss };
        if self.retransmits != self.path.rtx_seen {
            self.path.rtx_seen = self.retransmits;
            self.path.quiet_after = Some(self.snd_max);
        }
        if !self.path.probing
            || self.path.quiet_after.is_some_and(|q| self.snd.una.lt(q))
            || self.path.probe.is_some()
            || self.snd.nxt != self.snd_max
            || self.prr.is_some()
        {
            return mss;
        }
        let ts = if self.ts_ok { 12 } else { 0 };
        let link = cfg.send_mss_cap().min(self.snd_mss);
        let high = if self.path.search_high == 0 { link } else { self.path.search_high.min(link) };
        if high <= low || high - low < PROBE_THRESHOLD {
            return mss;
        }
        let probe = low + (high - low).div_ceil(2);
        let len = usize::from(probe) - ts;
        if room < len {
            return mss;
        }
        let end = self.snd.nxt + len as u32;
        self.path.probe = Some(Probe { end, mss: probe, retransmits: self.retransmits });
        len
    }

    /// What the path taught us ages: an ICMP-learned MSS is forgotten after
    /// `Config::pmtu_expires` (RFC 1191 §6.3), and a finished upward search starts again
    /// from the link's MSS every `Config::mtu_probe_interval` (Linux tcp_mtu_check_reprobe).
    pub(crate) fn path_aging(&mut self, cfg: &crate::Config, now: Instant) {
        if self.path.icmp_cap_expires.is_some_and(|t| now >= t) {
            self.path.icmp_cap_expires = None;
            if !self.path.probing {
                self.path.mss_cap = None;
            }
        }
        if !self.path.probing || cfg.mtu_probe_interval.is_zero() {
            return;
        }
        match self.path.search_started {
            None => self.path.search_started = Some(now),
            Some(t) if now >= t + cfg.mtu_probe_interval && self.path.probe.is_none() => {
                self.path.search_high = 0;
                self.path.search_started = Some(now);
            }
            Some(_) => {}
        }
    }

    /// An ACK advanced SND.UNA past a probe: it succeeded if nothing was resent while it
    /// was in flight. Otherwise it counts as lost, as Linux counts a probe that loss
    /// recovery repaired (RFC 4821 §7.6.2 would call a loss among other losses
    /// inconclusive; taking it as a failure keeps a lossy path from re-probing the same size
    /// forever, at the price of stopping the search early there).
    pub(crate) fn mtu_probe_acked(&mut self, counters: &mut crate::Counters) {
        let Some(p) = self.path.probe else { return };
        if self.snd.una.lt(p.end) {
            return;
        }
        self.path.probe = None;
        if self.retransmits == p.retransmits {
            self.path.mss_cap = Some(p.mss);
            counters.pmtu_probes_acked += 1;
        } else {
            self.path.search_high = p.mss.saturating_sub(1);
            counters.pmtu_probes_failed += 1;
        }
    }
}
