//! What the engine shows an observer beyond the wire: the congestion-control phase.
//!
//! Plots of engine state (`utcp sim --plot`) sample [`crate::Stack::status`] after every
//! call that can change a TCB (`handle_packet`, `handle_timeout`, `poll_transmit`). Those
//! are the only places state changes in a sans-IO engine, so the samples are exact, and
//! nothing in the engine runs unless someone asks: no hook, no cost when off.

use crate::seq::SeqNum;

/// The loss-recovery / congestion-control phase of a connection's sender.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum CcPhase {
    /// cwnd < ssthresh: exponential growth (RFC 5681 §3.1).
    #[default]
    SlowStart,
    /// cwnd >= ssthresh: about one SMSS per RTT (RFC 5681 §3.1).
    CongestionAvoidance,
    /// NewReno fast recovery, from the third duplicate ACK until `recover` is
    /// acknowledged (RFC 5681 §3.2, RFC 6582 §3.2).
    FastRecovery,
    /// After a retransmission timeout until everything sent before it is acknowledged
    /// (RFC 6298 (5.4)–(5.7), RFC 6582 §3.2 step 4).
    RtoRecovery,
}

impl CcPhase {
    /// The phase from the sender's state: in fast recovery, below the RTO recovery point
    /// (`snd.una < recover` outside fast recovery happens only after an RTO), or by cwnd.
    pub fn of(
        in_fast_recovery: bool,
        snd_una: SeqNum,
        recover: SeqNum,
        cwnd: usize,
        ssthresh: usize,
    ) -> CcPhase {
        if in_fast_recovery {
            CcPhase::FastRecovery
        } else if snd_una.lt(recover) {
            CcPhase::RtoRecovery
        } else if cwnd < ssthresh {
            CcPhase::SlowStart
        } else {
            CcPhase::CongestionAvoidance
        }
    }

    /// Human-readable name, as printed by traces and plots.
    pub fn name(self) -> &'static str {
        match self {
            CcPhase::SlowStart => "slow start",
            CcPhase::CongestionAvoidance => "congestion avoidance",
            CcPhase::FastRecovery => "fast recovery",
            CcPhase::RtoRecovery => "RTO recovery",
        }
    }
}

impl crate::tcb::Tcb {
    /// This sender's phase, for [`crate::Status::phase`].
    pub(crate) fn cc_phase(&self) -> CcPhase {
        let (cwnd, ssthresh) = (self.cc.cwnd(), self.cc.ssthresh());
        CcPhase::of(self.recovery.in_recovery(), self.snd.una, self.recovery.recover(), cwnd, ssthresh)
    }
}
