//! Counters in the style of `nstat`: every drop by reason, and the main TCP MIB values.

use crate::wire::DropReason;
use core::fmt;

#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Packets handed to `Stack::handle_packet`.
    pub in_packets: u64,
    /// Segments that reached a TCB or a listener.
    pub in_segs: u64,
    /// Packets emitted by `Stack::poll_transmit`.
    pub out_segs: u64,
    /// Segments retransmitted (any cause).
    pub retrans_segs: u64,
    pub fast_retransmits: u64,
    pub timeouts: u64,
    pub active_opens: u64,
    pub passive_opens: u64,
    pub attempt_fails: u64,
    pub estab_resets: u64,
    pub out_rsts: u64,
    pub challenge_acks: u64,
    pub delayed_acks: u64,
    pub zero_window_probes: u64,
    pub keepalive_probes: u64,
    /// Drops by reason, indexed by `DropReason::index()`.
    pub drops: [u64; DropReason::ALL.len()],

    // --- Loss recovery (issue 10: RACK-TLP) ---
    /// Tail loss probes sent (RFC 8985 §7.3).
    pub tlp_probes: u64,
    /// Losses a tail loss probe repaired, answered with a cwnd reduction (RFC 8985 §7.4).
    pub tlp_recoveries: u64,
    /// Retransmissions found lost during SACK recovery and sent again before the RTO.
    pub lost_retransmits: u64,
}

impl Counters {
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: [(&str, u64); 15] = [
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
        ];
        // Loss recovery (issue 10).
        let rows = rows.into_iter().chain([("TLPProbes", self.tlp_probes), ("TLPRecoveries", self.tlp_recoveries), ("LostRetransmits", self.lost_retransmits)]);
        for (name, v) in rows {
            if v != 0 {
                writeln!(f, "Tcp{name:<24}{v}")?;
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
