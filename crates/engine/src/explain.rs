//! Why a segment was sent: a reason code attached to every segment the engine emits.
//!
//! The transmit decision sites (tcb/output.rs, tcb/timers.rs, tcb/input.rs, stack.rs)
//! store one [`TxReason`] byte as they decide; [`crate::Stack::last_tx_reason`] reads the
//! reason of the segment that the last [`crate::Stack::poll_transmit`] returned. Storing
//! a one-byte enum costs no allocation and no branch, so the record is always kept and
//! reading it is what `--explain` turns on (the engine benchmark shows no difference).

/// The rule that made the engine send a segment, with the RFC section that states it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[repr(u8)]
pub enum TxReason {
    /// Nothing was recorded (a bug if a segment carries it; a test checks).
    #[default]
    Unexplained,
    /// Active OPEN: <SEQ=ISS><CTL=SYN> (RFC 9293 §3.10.1).
    Syn,
    /// SYN received in LISTEN: <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> (RFC 9293 §3.10.7.2).
    SynAck,
    /// Simultaneous open: SYN received in SYN-SENT (RFC 9293 §3.10.7.3, figure 8).
    SimultaneousSynAck,
    /// A retransmitted SYN answered with our SYN-ACK again (RFC 9293 §3.10.7.4).
    SynAckAgain,
    /// SYN or SYN-ACK retransmitted on timeout (RFC 6298 (5.4), RFC 9293 §3.8.1).
    SynRetransmit,
    /// SYN-ACK received in SYN-SENT: complete the handshake (RFC 9293 §3.10.7.3).
    HandshakeAck,
    /// New data within the send and congestion windows (RFC 9293 §3.8.6, RFC 5681 §3.1).
    NewData,
    /// Our FIN after the user's CLOSE (RFC 9293 §3.10.4).
    Fin,
    /// Fast retransmit on the third duplicate ACK (RFC 5681 §3.2 step 2).
    FastRetransmit,
    /// NewReno partial ACK: resend the first unacknowledged segment (RFC 6582 §3.2 step 3).
    PartialAckRetransmit,
    /// Retransmit the next SACK hole (RFC 6675 §4 NextSeg rule 1).
    SackHoleRetransmit,
    /// Go-back-N after a retransmission timeout (RFC 6298 (5.4)).
    RtoRetransmit,
    /// One rescue retransmission per recovery (RFC 6675 §4 NextSeg rule 4).
    RescueRetransmit,
    /// A retransmission found lost again, resent (RFC 6675 §4 IsLost applied to it).
    LostRetransmit,
    /// Tail loss probe on the PTO timer, resending the last segment (RFC 8985 §7.3).
    TailLossProbe,
    /// Tail loss probe on the PTO timer, sending new data (RFC 8985 §7.3).
    TailLossProbeNewData,
    /// SYN-ACK carrying a SYN cookie, no state kept (RFC 4987 §3.6).
    CookieSynAck,
    /// Zero-window probe on the persist timer (RFC 9293 §3.8.6.1).
    ZeroWindowProbe,
    /// Sender SWS avoidance override timer expired (RFC 9293 §3.8.6.2.1).
    SwsOverride,
    /// Keepalive probe <SEQ=SND.NXT-1> (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6).
    KeepaliveProbe,
    /// Immediate ACK: every second full-sized segment, or delayed ACKs off (RFC 9293 §3.8.6.3).
    AckEveryOther,
    /// The delayed-ACK timer fired (RFC 9293 §3.8.6.3).
    DelayedAck,
    /// Out-of-order segment: immediate duplicate ACK (RFC 5681 §4.2).
    OutOfOrderAck,
    /// A segment filled a hole: immediate ACK (RFC 5681 §4.2).
    HoleFilledAck,
    /// Unacceptable segment: "send an acknowledgment" (RFC 9293 §3.10.7.4 first check).
    UnacceptableAck,
    /// Duplicate data: D-SACK (RFC 2883 §4).
    DsackAck,
    /// PAWS rejected a segment: send an ACK (RFC 7323 §5.3 R1).
    PawsAck,
    /// ACK of something not yet sent: "send an ACK, drop the segment" (RFC 9293 §3.10.7.4).
    AckTooHigh,
    /// Challenge ACK (RFC 5961 §4 for SYN, §3.2 for RST, §5.2 for ACK).
    ChallengeAck,
    /// ACK of the peer's FIN (RFC 9293 §3.10.7.4 eighth check).
    FinAck,
    /// Window update after the user read (RFC 9293 §3.8.6.2.2).
    WindowUpdate,
    /// Text beyond the window (a zero-window probe) answered with an ACK (RFC 9293 §3.8.6.1).
    ProbeAck,
    /// TIME-WAIT re-acknowledges a retransmitted FIN (RFC 9293 §3.10.7.4).
    TimeWaitAck,
    /// Any other state-machine acknowledgment (RFC 9293 §3.10.7.4).
    Ack,
    /// ABORT, or CLOSE with unread data (RFC 9293 §3.10.5, RFC 2525 §2.17).
    UserAbortRst,
    /// Data arrived after the user closed (RFC 9293 §3.10.4, RFC 2525 §2.17).
    DataAfterCloseRst,
    /// RST for a segment to no connection (RFC 9293 §3.10.7.1).
    NoConnectionRst,
    /// RST for an ACK to a listener (RFC 9293 §3.10.7.2).
    ListenAckRst,
    /// RST from a connection's own checks (bad ACK in SYN-SENT or SYN-RECEIVED, RFC 9293 §3.10.7.3/4).
    ConnectionRst,
    /// ICMP echo reply to an echo request for us (RFC 792, RFC 1122 §3.2.2.6); not a TCP segment.
    EchoReply,
}

impl TxReason {
    /// Every reason, for tests and documentation.
    pub const ALL: &'static [TxReason] = &[
        TxReason::Unexplained,
        TxReason::Syn,
        TxReason::SynAck,
        TxReason::SimultaneousSynAck,
        TxReason::SynAckAgain,
        TxReason::SynRetransmit,
        TxReason::HandshakeAck,
        TxReason::NewData,
        TxReason::Fin,
        TxReason::FastRetransmit,
        TxReason::PartialAckRetransmit,
        TxReason::SackHoleRetransmit,
        TxReason::RtoRetransmit,
        TxReason::RescueRetransmit,
        TxReason::LostRetransmit,
        TxReason::TailLossProbe,
        TxReason::TailLossProbeNewData,
        TxReason::CookieSynAck,
        TxReason::ZeroWindowProbe,
        TxReason::SwsOverride,
        TxReason::KeepaliveProbe,
        TxReason::AckEveryOther,
        TxReason::DelayedAck,
        TxReason::OutOfOrderAck,
        TxReason::HoleFilledAck,
        TxReason::UnacceptableAck,
        TxReason::DsackAck,
        TxReason::PawsAck,
        TxReason::AckTooHigh,
        TxReason::ChallengeAck,
        TxReason::FinAck,
        TxReason::WindowUpdate,
        TxReason::ProbeAck,
        TxReason::TimeWaitAck,
        TxReason::Ack,
        TxReason::UserAbortRst,
        TxReason::DataAfterCloseRst,
        TxReason::NoConnectionRst,
        TxReason::ListenAckRst,
        TxReason::ConnectionRst,
        TxReason::EchoReply,
    ];

    /// The rule in words, with its RFC section.
    pub fn describe(self) -> &'static str {
        use TxReason::*;
        match self {
            Unexplained => "unexplained",
            Syn => "active open SYN, RFC 9293 §3.10.1",
            SynAck => "SYN-ACK to a SYN in LISTEN, RFC 9293 §3.10.7.2",
            SimultaneousSynAck => "simultaneous open SYN-ACK, RFC 9293 §3.10.7.3",
            SynAckAgain => "SYN-ACK again for a retransmitted SYN, RFC 9293 §3.10.7.4",
            SynRetransmit => "SYN retransmission on timeout, RFC 6298 (5.4) and RFC 9293 §3.8.1",
            HandshakeAck => "ACK completing the handshake, RFC 9293 §3.10.7.3",
            NewData => "new data within cwnd and the peer's window, RFC 5681 §3.1",
            Fin => "FIN after CLOSE, RFC 9293 §3.10.4",
            FastRetransmit => "fast retransmit, RFC 5681 §3.2 step 2",
            PartialAckRetransmit => "partial ACK retransmission, RFC 6582 §3.2 step 3",
            SackHoleRetransmit => "SACK hole retransmission, RFC 6675 §4 NextSeg",
            RescueRetransmit => "rescue retransmission, RFC 6675 §4 NextSeg rule 4",
            LostRetransmit => "lost retransmission resent, RFC 6675 §4 IsLost",
            TailLossProbe => "tail loss probe (last segment again), RFC 8985 §7.3",
            TailLossProbeNewData => "tail loss probe (new data), RFC 8985 §7.3",
            CookieSynAck => "SYN-ACK with a SYN cookie, RFC 4987 §3.6",
            RtoRetransmit => "RTO retransmission, RFC 6298 (5.4)",
            ZeroWindowProbe => "zero-window probe, RFC 9293 §3.8.6.1",
            SwsOverride => "SWS override timeout, RFC 9293 §3.8.6.2.1",
            KeepaliveProbe => "keepalive probe, RFC 9293 §3.8.4",
            AckEveryOther => "immediate ACK (every second segment), RFC 9293 §3.8.6.3",
            DelayedAck => "delayed ACK timer, RFC 9293 §3.8.6.3",
            OutOfOrderAck => "duplicate ACK for out-of-order data, RFC 5681 §4.2",
            HoleFilledAck => "immediate ACK, hole filled, RFC 5681 §4.2",
            UnacceptableAck => "ACK for an unacceptable segment, RFC 9293 §3.10.7.4",
            DsackAck => "D-SACK for duplicate data, RFC 2883 §4",
            PawsAck => "ACK after PAWS rejected a segment, RFC 7323 §5.3",
            AckTooHigh => "ACK for an ACK of unsent data, RFC 9293 §3.10.7.4",
            ChallengeAck => "challenge ACK, RFC 5961 §4",
            FinAck => "ACK of the peer's FIN, RFC 9293 §3.10.7.4",
            WindowUpdate => "window update after a read, RFC 9293 §3.8.6.2.2",
            ProbeAck => "ACK for text beyond the window, RFC 9293 §3.8.6.1",
            TimeWaitAck => "TIME-WAIT ACK of a retransmitted FIN, RFC 9293 §3.10.7.4",
            Ack => "acknowledgment, RFC 9293 §3.10.7.4",
            UserAbortRst => "RST on ABORT (or CLOSE with unread data), RFC 9293 §3.10.5",
            DataAfterCloseRst => "RST for data after close, RFC 9293 §3.10.4",
            NoConnectionRst => "RST for a segment to no connection, RFC 9293 §3.10.7.1",
            ListenAckRst => "RST for an ACK to a listener, RFC 9293 §3.10.7.2",
            ConnectionRst => "RST for an unacceptable ACK, RFC 9293 §3.10.7.3",
            EchoReply => "ICMP echo reply, RFC 792 / RFC 1122 §3.2.2.6",
        }
    }

    /// Whether the segment resends sequence space already sent.
    pub fn is_retransmission(self) -> bool {
        use TxReason::*;
        matches!(
            self,
            SynRetransmit
                | FastRetransmit
                | PartialAckRetransmit
                | SackHoleRetransmit
                | RtoRetransmit
                | RescueRetransmit
                | LostRetransmit
                | TailLossProbe
        )
    }
}

impl core::fmt::Display for TxReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}

/// The reason for a SYN or SYN-ACK: a first SYN (RFC 9293 §3.10.1), a first SYN-ACK
/// (§3.10.7.2), or a resend whose cause the sender recorded in `resend`.
pub(crate) fn syn_reason(active: bool, retransmission: bool, resend: TxReason) -> TxReason {
    match (retransmission, active) {
        (true, _) => resend,
        (false, true) => TxReason::Syn,
        (false, false) => TxReason::SynAck,
    }
}

/// The reason for a segment from the data path: `so_far` from the probe and SWS branches
/// (else new data), a go-back-N resend after an RTO, or a bare FIN.
pub(crate) fn data_reason(so_far: TxReason, retransmission: bool, len: usize) -> TxReason {
    match so_far {
        TxReason::NewData if retransmission => TxReason::RtoRetransmit,
        TxReason::NewData if len == 0 => TxReason::Fin,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_and_described_once() {
        let mut seen = std::collections::HashSet::new();
        for r in TxReason::ALL {
            assert!(seen.insert(*r), "{r:?} listed twice");
            assert!(!r.describe().is_empty());
        }
        assert_eq!(seen.len(), TxReason::EchoReply as usize + 1);
    }
}
