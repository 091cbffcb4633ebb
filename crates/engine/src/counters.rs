//! Counters in the style of `nstat`: every drop by reason, and the main TCP MIB values.

use crate::wire::DropReason;
use core::fmt;

#[derive(Clone, Debug, Default)]
/// Stack-wide counters: the TCP MIB (RFC 4022) values plus one drop counter per [`DropReason`].
///
/// Read them with [`Stack::counters`](crate::Stack::counters); `Display` prints them like `nstat`.
pub struct Counters {
    /// Packets handed to `Stack::handle_packet`.
    pub in_packets: u64,
    /// Segments that reached a TCB or a listener.
    pub in_segs: u64,
    /// Packets emitted by `Stack::poll_transmit`.
    pub out_segs: u64,
    /// Segments retransmitted (any cause).
    pub retrans_segs: u64,
    /// Fast retransmits (RFC 5681 §3.2, RFC 6675 §5).
    pub fast_retransmits: u64,
    /// Retransmission timeouts that fired (RFC 6298 §5).
    pub timeouts: u64,
    /// Active OPENs: CLOSED → SYN-SENT (MIB tcpActiveOpens).
    pub active_opens: u64,
    /// Passive OPENs: LISTEN → SYN-RECEIVED (MIB tcpPassiveOpens).
    pub passive_opens: u64,
    /// Handshakes that failed: SYN-SENT/SYN-RECEIVED → CLOSED (MIB tcpAttemptFails).
    pub attempt_fails: u64,
    /// Resets of ESTABLISHED or CLOSE-WAIT connections (MIB tcpEstabResets).
    pub estab_resets: u64,
    /// RST segments sent (MIB tcpOutRsts).
    pub out_rsts: u64,
    /// Challenge ACKs sent (RFC 5961 §3.2, §4.2).
    pub challenge_acks: u64,
    /// ACKs delayed rather than sent at once (RFC 9293 §3.8.6.3, RFC 1122 §4.2.3.2).
    pub delayed_acks: u64,
    /// Zero-window probes sent (RFC 9293 §3.8.6.1).
    pub zero_window_probes: u64,
    /// Keepalive probes sent (RFC 1122 §4.2.3.6).
    pub keepalive_probes: u64,
    // --- Hostile networks (issue 9) ---
    /// Challenge ACKs not sent because a per-connection or the stack-wide RFC 5961 §7
    /// limit held them back (Linux's TCPChallengeACK is what was sent).
    pub challenge_acks_limited: u64,
    /// Duplicate ACKs for unacceptable pure ACKs held back by `Config::oow_ack_interval`
    /// (Linux's TCPACKSkipped*).
    pub oow_acks_limited: u64,
    /// ACKs that fell due between two `poll_transmit` calls and were sent ahead of the
    /// next segment (RFC 5681 §4.2 every second full-sized segment).
    pub acks_queued: u64,
    /// Such ACKs folded into a later one because the ACK queue was full.
    pub acks_coalesced: u64,
    /// Stateless RSTs not sent because `MAX_REPLIES` were already queued (the caller did
    /// not drain `poll_transmit` between packets; RFC 9293 §3.10.7.1 replies are best effort).
    pub replies_dropped: u64,
    // --- IPv4 reassembly (issue 9) ---
    /// Fragments received (Linux's ReasmReqds).
    pub reasm_reqds: u64,
    /// Datagrams reassembled (ReasmOKs).
    pub reasm_oks: u64,
    /// Datagrams given up (ReasmFails).
    pub reasm_fails: u64,

    // ---- SYN queue / cookies (RFC 4987; names as Linux's TcpExt) ----
    /// SYN-ACKs sent with a SYN cookie.
    pub syncookies_sent: u64,
    /// ACKs that carried a valid SYN cookie.
    pub syncookies_recv: u64,
    /// ACKs to a listener whose cookie did not validate (forged, old or corrupt).
    pub syncookies_failed: u64,
    /// Handshakes refused because the accept queue was full.
    pub listen_overflows: u64,
    /// SYNs or cookie ACKs a listener dropped for any reason.
    pub listen_drops: u64,

    // ---- Memory (issue 9) ----
    /// Connections parked in the compact TIME-WAIT table.
    pub tw_parked: u64,
    /// Connections closed without TIME-WAIT because the table was full (Linux's
    /// TCPTimeWaitOverflow; `Config::max_time_wait`).
    pub tw_overflow: u64,
    /// Out-of-order bytes dropped or not stored under memory pressure (Linux's OfoPruned).
    pub ofo_pruned: u64,
    /// In-order bytes dropped because the buffer cap refused storage (Linux's RcvPruned).
    pub rcv_pruned: u64,
    /// Buffer growths refused by `Config::buffer_memory` (Linux's TCPMemoryPressures).
    pub mem_pressure: u64,
    /// Buffer storage returned to the allocator (closed, TIME-WAIT or idle rings).
    pub buffers_released: u64,

    /// Drops by reason, indexed by `DropReason::index()`.
    pub drops: DropCounts,

    // --- Loss recovery (issue 10: RACK-TLP) ---
    /// Tail loss probes sent (RFC 8985 §7.3).
    pub tlp_probes: u64,
    /// Losses a tail loss probe repaired, answered with a cwnd reduction (RFC 8985 §7.4).
    pub tlp_recoveries: u64,
    /// Retransmissions found lost during SACK recovery and sent again before the RTO.
    pub lost_retransmits: u64,
    /// Segments RACK marked lost (RFC 8985 §6.2 step 5, with RFC 6675 IsLost() marks).
    pub rack_lost_marks: u64,
    /// RACK reordering timer expirations (RFC 8985 §6.2 step 6).
    pub rack_reo_timeouts: u64,

    // --- ICMP echo (issue 13; Linux's Icmp MIB names) ---
    /// Echo requests received for us with a valid checksum (IcmpInEchos).
    pub icmp_in_echos: u64,
    /// Echo replies emitted by `poll_transmit` (IcmpOutEchoReps).
    pub icmp_out_echo_reps: u64,
    /// Echo requests not answered because `Config::icmp_echo_per_sec` held them back.
    pub icmp_rate_limited: u64,

    // --- ICMP errors and PMTUD (issue 13; icmp_error.rs, tcb/pmtu.rs) ---
    /// ICMP errors that aborted a connection being opened (RFC 1122 §4.2.3.9 hard errors).
    pub icmp_hard_aborts: u64,
    /// ICMP errors kept as a connection's soft error (RFC 1122 §4.2.3.9, MUST-47).
    pub icmp_soft_errors: u64,
    /// Fragmentation Needed messages that lowered a connection's MSS (RFC 1191).
    pub pmtu_reductions: u64,
    /// Black-hole timeouts that lowered a connection's MSS (RFC 4821 §7.7, tcp_mtu_probing).
    pub pmtu_black_holes: u64,
    /// PMTU probes acknowledged: the MSS grew (RFC 4821 §7.6.1; Linux's TCPMTUPSuccess).
    pub pmtu_probes_acked: u64,
    /// PMTU probes lost to an RTO: the search stays below them (Linux's TCPMTUPFail).
    pub pmtu_probes_failed: u64,

    // --- Engine cost (issue 12): header prediction (tcb/fast_path.rs) ---
    /// Segments the header-prediction fast path processed (in-order data with nothing in
    /// flight, pure ACKs advancing SND.UNA). Diagnostic: the only counter that differs
    /// with `Config::fast_path` off.
    pub fast_path_segs: u64,
}

/// One counter per [`DropReason`] (a newtype: std derives `Default` for arrays of at
/// most 32 elements only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropCounts(pub [u64; DropReason::ALL.len()]);

impl Default for DropCounts {
    fn default() -> Self {
        DropCounts([0; DropReason::ALL.len()])
    }
}

impl std::ops::Deref for DropCounts {
    type Target = [u64; DropReason::ALL.len()];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for DropCounts {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Counters {
    #[inline]
    /// Count one packet dropped for `reason`.
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }
    /// Packets dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }
    /// Packets dropped for any reason so far.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: [(&str, u64); 28] = [
            ("InPackets", self.in_packets),
            ("InSegs", self.in_segs),
            ("OutSegs", self.out_segs),
            ("RetransSegs", self.retrans_segs),
            ("FastRetrans", self.fast_retransmits),
            ("Timeouts", self.timeouts),
            ("ActiveOpens", self.active_opens),
            ("PassiveOpens", self.passive_opens),
            ("AttemptFails", self.attempt_fails),
            ("EstabResets", self.estab_resets),
            ("OutRsts", self.out_rsts),
            ("ChallengeACKs", self.challenge_acks),
            ("DelayedACKs", self.delayed_acks),
            ("ZeroWindowProbes", self.zero_window_probes),
            ("KeepAliveProbes", self.keepalive_probes),
            ("ChallengeACKsLimited", self.challenge_acks_limited),
            ("OowACKsLimited", self.oow_acks_limited),
            ("AcksQueued", self.acks_queued),
            ("AcksCoalesced", self.acks_coalesced),
            ("ReasmReqds", self.reasm_reqds),
            ("ReasmOKs", self.reasm_oks),
            ("ReasmFails", self.reasm_fails),
            // Memory
            ("TimeWaitParked", self.tw_parked),
            ("TimeWaitOverflow", self.tw_overflow),
            ("OfoPruned", self.ofo_pruned),
            ("RcvPruned", self.rcv_pruned),
            ("MemoryPressures", self.mem_pressure),
            ("BuffersReleased", self.buffers_released),
        ];
        // Loss recovery (issue 10).
        let rows = rows.into_iter().chain([
            ("TLPProbes", self.tlp_probes),
            ("TLPRecoveries", self.tlp_recoveries),
            ("LostRetransmits", self.lost_retransmits),
            ("RackLostMarks", self.rack_lost_marks),
            ("RackReoTimeouts", self.rack_reo_timeouts),
        ]);
        for (name, v) in rows {
            if v != 0 {
                writeln!(f, "Tcp{name:<24}{v}")?;
            }
        }
        // SYN queue / cookies (Linux's TcpExt names).
        let ext: [(&str, u64); 5] = [
            ("SyncookiesSent", self.syncookies_sent),
            ("SyncookiesRecv", self.syncookies_recv),
            ("SyncookiesFailed", self.syncookies_failed),
            ("ListenOverflows", self.listen_overflows),
            ("ListenDrops", self.listen_drops),
        ];
        for (name, v) in ext {
            if v != 0 {
                writeln!(f, "TcpExt{name:<21}{v}")?;
            }
        }
        // ICMP echo (issue 13; Linux's Icmp MIB names).
        let icmp: [(&str, u64); 9] = [
            ("InEchos", self.icmp_in_echos),
            ("OutEchoReps", self.icmp_out_echo_reps),
            ("RateLimited", self.icmp_rate_limited),
            // ICMP errors and PMTUD (issue 13).
            ("HardAborts", self.icmp_hard_aborts),
            ("SoftErrors", self.icmp_soft_errors),
            ("PmtuReductions", self.pmtu_reductions),
            ("PmtuBlackHoles", self.pmtu_black_holes),
            ("PmtuProbesAcked", self.pmtu_probes_acked),
            ("PmtuProbesFailed", self.pmtu_probes_failed),
        ];
        for (name, v) in icmp {
            if v != 0 {
                writeln!(f, "Icmp{name:<23}{v}")?;
            }
        }
        for r in DropReason::ALL {
            let v = self.dropped(r);
            if v != 0 {
                writeln!(f, "TcpDrop{:<20}{v}", r.name())?;
            }
        }
        Ok(())
    }
}
