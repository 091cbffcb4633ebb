//! Congestion control (RFC 5681) with the NewReno fast-recovery modification (RFC 6582).
//!
//! Two halves:
//! - [`CongestionControl`]: the window arithmetic (cwnd, ssthresh). [`NewReno`] and
//!   [`Cubic`] (RFC 9438) implement it; `Config::congestion_control` picks one, or a
//!   user's own through [`CongestionAlgorithm::Custom`].
//! - [`Recovery`]: the TCB-side bookkeeping of RFC 6582 (duplicate-ACK counter, the
//!   `recover` point, whether we are in fast recovery). It tells the caller which window
//!   hook to call and when to retransmit.
//!
//! A typical ACK path in the TCB:
//! ```text
//! if is_duplicate_ack (RFC 5681 §2 definition) {
//!     match recovery.on_dup_ack(ack, snd_nxt) {
//!         FastRetransmit => { cc.on_fast_retransmit(flight, smss); retransmit snd_una }
//!         Inflate        => { cc.on_dup_ack_in_recovery(smss); maybe send new data }
//!         None           => {}
//!     }
//! } else if ack advances snd_una by `acked` bytes {
//!     match recovery.on_new_ack(ack) {
//!         Normal  => cc.on_ack(acked, smss),
//!         Partial => { retransmit snd_una; cc.on_partial_ack(acked, smss) }
//!         Full    => cc.on_recovery_exit(flight, smss),
//!     }
//! }
//! on RTO: recovery.on_rto(snd_max); cc.on_rto(flight, smss)
//! ```

use crate::seq::SeqNum;
use crate::time::{Duration, Instant};

pub use super::cubic::Cubic;

/// Which congestion controller a connection uses (`Config::congestion_control`). The TCB
/// builds its controller from this at open and again when the handshake fixes the MSS
/// (`negotiate`); nothing else picks one, so `Custom` plugs in any [`CongestionControl`].
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub enum CongestionAlgorithm {
    /// RFC 5681 with RFC 6582 (the default; FreeBSD's default too).
    #[default]
    NewReno,
    /// RFC 9438 CUBIC (Linux's default).
    Cubic,
    /// A controller of the user's own, built by the factory from the initial window in
    /// bytes (RFC 6928, or `Config::initial_window_segments`).
    Custom(ControllerFactory),
}

/// `Custom` factories compare by address (`std::ptr::fn_addr_eq`), which is only a best
/// effort: the same function may have two addresses.
impl PartialEq for CongestionAlgorithm {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (CongestionAlgorithm::Custom(a), CongestionAlgorithm::Custom(b)) => std::ptr::fn_addr_eq(*a, *b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Eq for CongestionAlgorithm {}

/// Builds a [`CongestionControl`] from the initial window in bytes (for
/// [`CongestionAlgorithm::Custom`]).
pub type ControllerFactory = fn(initial_window: usize) -> Box<dyn CongestionControl>;

/// A controller of `algo` starting from `initial_window` bytes.
pub fn new_controller(algo: CongestionAlgorithm, initial_window: usize) -> Box<dyn CongestionControl> {
    match algo {
        CongestionAlgorithm::NewReno => Box::new(NewReno::new(initial_window)),
        CongestionAlgorithm::Cubic => Box::new(Cubic::new(initial_window)),
        CongestionAlgorithm::Custom(factory) => factory(initial_window),
    }
}

/// Window arithmetic of a congestion controller. All sizes are bytes.
pub trait CongestionControl: Send + core::fmt::Debug {
    /// Congestion window.
    fn cwnd(&self) -> usize;
    /// Slow-start threshold.
    fn ssthresh(&self) -> usize;
    /// New data acknowledged outside fast recovery. RFC 5681 §3.1: slow start
    /// (cwnd += min(acked, smss), RFC 3465 L=1*SMSS), congestion avoidance
    /// (about one SMSS per RTT).
    fn on_ack(&mut self, acked: usize, smss: usize);
    /// Third duplicate ACK: RFC 5681 §3.2 steps 2-3 / RFC 6582:
    /// ssthresh = max(flight/2, 2*smss); cwnd = ssthresh + 3*smss.
    fn on_fast_retransmit(&mut self, flight_size: usize, smss: usize);
    /// Further duplicate ACK during recovery: cwnd += smss (RFC 5681 §3.2 step 4).
    fn on_dup_ack_in_recovery(&mut self, smss: usize);
    /// Partial ACK during NewReno recovery (RFC 6582 §3.2 step 3, "partial
    /// acknowledgments"): deflate by acked, add back smss if acked >= smss.
    fn on_partial_ack(&mut self, acked: usize, smss: usize);
    /// Full ACK ends recovery (RFC 6582 §3.2 step 3, "full acknowledgments", option 2):
    /// cwnd = min(ssthresh, max(flight_size, smss) + smss).
    fn on_recovery_exit(&mut self, flight_size: usize, smss: usize);
    /// RTO expiry (RFC 5681 §3.1 eq. 4 and the loss window):
    /// ssthresh = max(flight/2, 2*smss), cwnd = 1*smss.
    fn on_rto(&mut self, flight_size: usize, smss: usize);
    /// Restart after idle longer than an RTO (RFC 5681 §4.1): cwnd = min(cwnd, IW).
    fn on_idle_restart(&mut self, smss: usize);
    /// SACK-based loss recovery begins (RFC 6675 §5 step (4.2)): the controller's
    /// multiplicative decrease sets ssthresh, and cwnd = ssthresh (no inflation; PRR,
    /// RFC 6937, then steers cwnd through [`CongestionControl::set_cwnd`]).
    fn on_sack_recovery_start(&mut self, flight_size: usize, smss: usize);
    /// Set cwnd directly: PRR's `cwnd = pipe + sndcnt` (RFC 6937 §3) and its
    /// `cwnd = ssthresh` at the end of recovery.
    fn set_cwnd(&mut self, cwnd: usize);
    /// New data acknowledged outside recovery, with the time and the smoothed RTT for
    /// controllers whose growth is a function of time (CUBIC, RFC 9438 §4.2).
    fn on_ack_at(&mut self, acked: usize, smss: usize, _now: Instant, _rtt: Option<Duration>) {
        self.on_ack(acked, smss);
    }
    /// RFC 5681 §3.1: slow start while cwnd < ssthresh.
    fn in_slow_start(&self) -> bool {
        self.cwnd() < self.ssthresh()
    }
}

/// RFC 6928 initial window: `min(10*smss, max(2*smss, 14600))` when `segments` is `None`,
/// else `segments * smss` (a profile override, e.g. RFC 5681 §3.1's 2-4 segments).
pub fn initial_window(smss: usize, segments: Option<u32>) -> usize {
    match segments {
        // RFC 6928 §2.
        None => (10 * smss).min((2 * smss).max(14600)),
        Some(n) => (n as usize).saturating_mul(smss),
    }
}

/// RFC 5681 §3.2 eq. (4): ssthresh = max(FlightSize / 2, 2*SMSS).
pub(crate) fn halve(flight_size: usize, smss: usize) -> usize {
    (flight_size / 2).max(2 * smss)
}

/// Reno/NewReno window arithmetic (RFC 5681 with RFC 6582 fast recovery).
///
/// Congestion avoidance uses byte counting, the way RFC 5681 §3.1 recommends: bytes
/// acknowledged are accumulated and cwnd grows by one SMSS each time a full cwnd's worth
/// has been acknowledged (RFC 3465 §2.1).
#[derive(Clone, Debug)]
pub struct NewReno {
    cwnd: usize,
    ssthresh: usize,
    /// Initial window, used again for restart after idle (RFC 5681 §4.1).
    initial_window: usize,
    /// Bytes acknowledged in congestion avoidance not yet turned into cwnd growth.
    bytes_acked: usize,
}

impl NewReno {
    /// `initial_window` bytes of cwnd (see [`initial_window`]); ssthresh starts
    /// "arbitrarily high" (RFC 5681 §3.1), here `usize::MAX`.
    pub fn new(initial_window: usize) -> NewReno {
        NewReno { cwnd: initial_window, ssthresh: usize::MAX, initial_window, bytes_acked: 0 }
    }
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_ack(&mut self, acked: usize, smss: usize) {
        if acked == 0 {
            return;
        }
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 eq. (2): cwnd += min(N, SMSS) (RFC 3465 with L = 1*SMSS).
            self.cwnd = self.cwnd.saturating_add(acked.min(smss));
            self.bytes_acked = 0;
        } else {
            // RFC 5681 §3.1 congestion avoidance, byte counting: once bytes acked reach
            // cwnd, cwnd += SMSS (at most once per ACK, RFC 3465 §2.1).
            self.bytes_acked = self.bytes_acked.saturating_add(acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(smss);
            }
        }
    }

    fn on_fast_retransmit(&mut self, flight_size: usize, smss: usize) {
        // RFC 5681 §3.2 step 2: ssthresh per eq. (4); step 3: cwnd = ssthresh + 3*SMSS,
        // inflating by the three segments that have left the network.
        self.ssthresh = halve(flight_size, smss);
        self.cwnd = self.ssthresh.saturating_add(3 * smss);
        self.bytes_acked = 0;
    }

    fn on_dup_ack_in_recovery(&mut self, smss: usize) {
        // RFC 5681 §3.2 step 4: each further duplicate ACK means a segment left the network.
        self.cwnd = self.cwnd.saturating_add(smss);
    }

    fn on_partial_ack(&mut self, acked: usize, smss: usize) {
        self.cwnd = partial_ack_cwnd(self.cwnd, acked, smss);
    }

    fn on_recovery_exit(&mut self, flight_size: usize, smss: usize) {
        self.cwnd = recovery_exit_cwnd(self.ssthresh, flight_size, smss);
        self.bytes_acked = 0;
    }

    fn on_rto(&mut self, flight_size: usize, smss: usize) {
        // RFC 5681 §3.1: ssthresh per eq. (4), cwnd = LW = 1 full-sized segment.
        self.ssthresh = halve(flight_size, smss);
        self.cwnd = smss;
        self.bytes_acked = 0;
    }

    fn on_idle_restart(&mut self, smss: usize) {
        // RFC 5681 §4.1: RW = min(IW, cwnd); never below one segment.
        self.cwnd = self.cwnd.min(self.initial_window.max(smss));
        self.bytes_acked = 0;
    }

    fn on_sack_recovery_start(&mut self, flight_size: usize, smss: usize) {
        // RFC 6675 §5 (4.2): ssthresh = cwnd = FlightSize / 2 (RFC 5681 eq. (4)).
        self.ssthresh = halve(flight_size, smss);
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = cwnd;
    }
}

/// RFC 5681 §3.2: the duplicate-ACK threshold (DupThresh).
pub const DUP_THRESH: u32 = 3;

/// What the caller should do after a duplicate ACK.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DupAckAction {
    /// Nothing (first or second duplicate, or fast retransmit refused by the `recover` check).
    /// RFC 3042 limited transmit, if implemented, is the caller's choice here.
    None,
    /// Third duplicate: retransmit the segment at SND.UNA and call
    /// [`CongestionControl::on_fast_retransmit`] (RFC 5681 §3.2 steps 2-3).
    FastRetransmit,
    /// Duplicate during fast recovery: call [`CongestionControl::on_dup_ack_in_recovery`]
    /// and send new data if the window allows (RFC 5681 §3.2 steps 4-5).
    Inflate,
}

/// What kind of ACK for new data arrived.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AckKind {
    /// Not in fast recovery: call [`CongestionControl::on_ack`].
    Normal,
    /// In recovery and the ACK does not cover `recover` (RFC 6582 §3.2 step 3): retransmit
    /// the first unacknowledged segment, call [`CongestionControl::on_partial_ack`], and on
    /// the first partial ACK of an episode ([`Recovery::partial_acks`] == 1) restart the
    /// retransmission timer (RFC 6582 §3.2 step 3).
    Partial,
    /// The ACK covers `recover`: recovery ends; call [`CongestionControl::on_recovery_exit`].
    Full,
}

/// TCB-side NewReno state (RFC 6582 §3.2).
///
/// `recover` is stored as one past the highest sequence number transmitted (SND.MAX, the
/// largest SND.NXT so far). "The ACK covers more than recover" in the RFC's terms (where
/// recover is the highest byte sent) is thus `ack >= recover` here, and so is "acknowledges
/// all data up to and including recover".
#[derive(Clone, Debug)]
pub struct Recovery {
    dup_acks: u32,
    recover: SeqNum,
    in_recovery: bool,
    partial_acks: u32,
}

impl Recovery {
    /// RFC 6582 §3.2 step 1: recover is initialised to the initial send sequence number.
    pub fn new(iss: SeqNum) -> Recovery {
        Recovery { dup_acks: 0, recover: iss, in_recovery: false, partial_acks: 0 }
    }

    /// A duplicate ACK (RFC 5681 §2 definition, checked by the caller) with cumulative
    /// acknowledgment `ack`; `snd_max` is one past the highest sequence number sent so far.
    pub fn on_dup_ack(&mut self, ack: SeqNum, snd_max: SeqNum) -> DupAckAction {
        self.dup_acks = self.dup_acks.saturating_add(1);
        if self.in_recovery {
            // RFC 5681 §3.2 step 4.
            return DupAckAction::Inflate;
        }
        if self.dup_acks != DUP_THRESH {
            return DupAckAction::None;
        }
        // RFC 6582 §3.2 step 2: enter fast retransmit only if the ACK covers more than
        // `recover`. After a fast recovery or an RTO, duplicates for data sent before that
        // point most likely come from our own (go-back-N) retransmissions of the same
        // window, not from a new loss; a second fast retransmit (and a second halving of
        // ssthresh) for the same window is what this check prevents (RFC 6582 §4).
        if ack.ge(self.recover) {
            self.recover = snd_max;
            self.in_recovery = true;
            self.partial_acks = 0;
            DupAckAction::FastRetransmit
        } else {
            DupAckAction::None
        }
    }

    /// RFC 6675 §5: a duplicate ACK in the sense of §2 (it SACKs new data, or is an
    /// RFC 5681 duplicate) while not in loss recovery. Loss recovery starts at DupThresh
    /// duplicates (step 1) or as soon as IsLost(HighACK + 1) holds (`lost`, step 2),
    /// and only once the cumulative ACK reached the recovery point of the previous
    /// recovery or RTO (RFC 6675 §5.1, RFC 6582 §3.2 step 2).
    pub fn on_sack_dup_ack(&mut self, ack: SeqNum, snd_max: SeqNum, lost: bool) -> DupAckAction {
        if self.in_recovery {
            return DupAckAction::Inflate;
        }
        self.dup_acks = self.dup_acks.saturating_add(1);
        if (self.dup_acks >= DUP_THRESH || lost) && ack.ge(self.recover) {
            self.recover = snd_max;
            self.in_recovery = true;
            self.partial_acks = 0;
            return DupAckAction::FastRetransmit;
        }
        DupAckAction::None
    }

    /// An ACK that advances SND.UNA to `ack`.
    pub fn on_new_ack(&mut self, ack: SeqNum) -> AckKind {
        // RFC 5681 §3.2: the duplicate counter restarts with every ACK for new data.
        self.dup_acks = 0;
        if self.in_recovery {
            if ack.ge(self.recover) {
                // RFC 6582 §3.2 step 3, full acknowledgment: exit fast recovery.
                self.in_recovery = false;
                self.partial_acks = 0;
                AckKind::Full
            } else {
                // RFC 6582 §3.2 step 3, partial acknowledgment: stay in recovery.
                self.partial_acks = self.partial_acks.saturating_add(1);
                AckKind::Partial
            }
        } else {
            // Keep `recover` trailing SND.UNA once it has been passed. This does not change
            // the step-2 test (ack >= recover stays true for later ACKs) and keeps
            // `recover` within 2^31 of SND.UNA on long transfers, so the wrapping
            // comparison stays meaningful (RFC 9293 §3.4).
            if ack.ge(self.recover) {
                self.recover = ack;
            }
            AckKind::Normal
        }
    }

    /// Retransmission timeout (RFC 6582 §3.2 step 4): record the highest sequence number
    /// transmitted in `recover` and leave fast recovery.
    pub fn on_rto(&mut self, snd_max: SeqNum) {
        self.recover = snd_max;
        self.in_recovery = false;
        self.dup_acks = 0;
        self.partial_acks = 0;
    }

    /// Whether NewReno fast recovery is in progress.
    pub fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    /// Consecutive duplicate ACKs since the last ACK for new data.
    pub fn dup_acks(&self) -> u32 {
        self.dup_acks
    }

    /// The recovery point (one past the highest sequence sent when recovery began or
    /// the last RTO fired).
    pub fn recover(&self) -> SeqNum {
        self.recover
    }

    /// Partial ACKs received in the current recovery episode.
    pub fn partial_acks(&self) -> u32 {
        self.partial_acks
    }
}

/// RFC 6582 §3.2 step 3 (partial acknowledgments): deflate cwnd by the new data
/// acknowledged; if at least one SMSS was acknowledged, add back SMSS so about ssthresh
/// bytes stay outstanding when recovery ends. cwnd stays at least one SMSS so the
/// retransmission can always be sent. (NewReno and CUBIC share it.)
pub(crate) fn partial_ack_cwnd(cwnd: usize, acked: usize, smss: usize) -> usize {
    let mut cwnd = cwnd.saturating_sub(acked);
    if acked >= smss {
        cwnd = cwnd.saturating_add(smss);
    }
    cwnd.max(smss)
}

/// RFC 6582 §3.2 step 3 (full acknowledgments), option 2: cwnd = min(ssthresh,
/// max(FlightSize, SMSS) + SMSS), which avoids a burst when little data is outstanding.
pub(crate) fn recovery_exit_cwnd(ssthresh: usize, flight_size: usize, smss: usize) -> usize {
    ssthresh.min(flight_size.max(smss).saturating_add(smss))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    #[test]
    fn initial_window_rfc6928() {
        assert_eq!(initial_window(1460, None), 14600);
        assert_eq!(initial_window(536, None), 5360); // 10*536 < 14600
        assert_eq!(initial_window(9000, None), 18000); // max(2*9000, 14600) < 90000
        assert_eq!(initial_window(1460, Some(4)), 5840);
        assert_eq!(initial_window(1460, Some(1)), 1460);
    }

    #[test]
    fn slow_start_grows_by_min_acked_smss() {
        let mut cc = NewReno::new(10 * MSS);
        assert!(cc.in_slow_start());
        cc.on_ack(MSS, MSS);
        assert_eq!(cc.cwnd(), 11 * MSS);
        // A stretch ACK of 4 segments still adds one SMSS (L = 1*SMSS).
        cc.on_ack(4 * MSS, MSS);
        assert_eq!(cc.cwnd(), 12 * MSS);
        cc.on_ack(300, MSS);
        assert_eq!(cc.cwnd(), 12 * MSS + 300);
        cc.on_ack(0, MSS);
        assert_eq!(cc.cwnd(), 12 * MSS + 300);
    }

    #[test]
    fn congestion_avoidance_one_smss_per_window() {
        let mut cc = NewReno::new(10 * MSS);
        cc.on_rto(20 * MSS, MSS); // ssthresh = 10 MSS, cwnd = 1 MSS
        assert_eq!(cc.ssthresh(), 10 * MSS);
        // Slow start back up to ssthresh.
        for _ in 0..9 {
            cc.on_ack(MSS, MSS);
        }
        assert_eq!(cc.cwnd(), 10 * MSS);
        assert!(!cc.in_slow_start());
        // Nine full-sized ACKs: not yet a window's worth.
        for _ in 0..9 {
            cc.on_ack(MSS, MSS);
            assert_eq!(cc.cwnd(), 10 * MSS);
        }
        cc.on_ack(MSS, MSS);
        assert_eq!(cc.cwnd(), 11 * MSS);
        // Next increase after 11 more segments.
        for _ in 0..10 {
            cc.on_ack(MSS, MSS);
        }
        assert_eq!(cc.cwnd(), 11 * MSS);
        cc.on_ack(MSS, MSS);
        assert_eq!(cc.cwnd(), 12 * MSS);
    }

    #[test]
    fn fast_retransmit_and_recovery_arithmetic() {
        let mut cc = NewReno::new(10 * MSS);
        cc.on_fast_retransmit(20 * MSS, MSS);
        assert_eq!(cc.ssthresh(), 10 * MSS);
        assert_eq!(cc.cwnd(), 13 * MSS);
        cc.on_dup_ack_in_recovery(MSS);
        assert_eq!(cc.cwnd(), 14 * MSS);
        // Partial ACK of 3 segments: 14 - 3 + 1 = 12.
        cc.on_partial_ack(3 * MSS, MSS);
        assert_eq!(cc.cwnd(), 12 * MSS);
        // Partial ACK below one SMSS: no add-back.
        cc.on_partial_ack(500, MSS);
        assert_eq!(cc.cwnd(), 12 * MSS - 500);
        // Full ACK with 4 segments still in flight: min(10, 4 + 1) = 5.
        cc.on_recovery_exit(4 * MSS, MSS);
        assert_eq!(cc.cwnd(), 5 * MSS);
        let mut cc2 = NewReno::new(10 * MSS);
        cc2.on_fast_retransmit(20 * MSS, MSS);
        // Lots in flight: capped at ssthresh (option 1 value).
        cc2.on_recovery_exit(30 * MSS, MSS);
        assert_eq!(cc2.cwnd(), 10 * MSS);
        // Nothing in flight: max(0, smss) + smss.
        let mut cc3 = NewReno::new(10 * MSS);
        cc3.on_fast_retransmit(20 * MSS, MSS);
        cc3.on_recovery_exit(0, MSS);
        assert_eq!(cc3.cwnd(), 2 * MSS);
    }

    #[test]
    fn ssthresh_floor_is_two_segments() {
        let mut cc = NewReno::new(10 * MSS);
        cc.on_fast_retransmit(MSS, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.cwnd(), 5 * MSS);
        cc.on_rto(0, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.cwnd(), MSS);
    }

    #[test]
    fn partial_ack_never_drops_below_one_segment() {
        let mut cc = NewReno::new(2 * MSS);
        cc.on_partial_ack(10 * MSS, MSS);
        assert_eq!(cc.cwnd(), MSS);
    }

    #[test]
    fn idle_restart_limits_to_initial_window() {
        let mut cc = NewReno::new(4 * MSS);
        for _ in 0..10 {
            cc.on_ack(MSS, MSS);
        }
        assert_eq!(cc.cwnd(), 14 * MSS);
        cc.on_idle_restart(MSS);
        assert_eq!(cc.cwnd(), 4 * MSS);
        cc.on_rto(10 * MSS, MSS);
        cc.on_idle_restart(MSS);
        assert_eq!(cc.cwnd(), MSS); // already below IW: unchanged
    }

    fn s(v: u32) -> SeqNum {
        SeqNum(v)
    }

    #[test]
    fn third_dup_ack_triggers_fast_retransmit() {
        let mut r = Recovery::new(s(1000));
        assert_eq!(r.on_new_ack(s(2001)), AckKind::Normal);
        assert_eq!(r.on_dup_ack(s(2001), s(12001)), DupAckAction::None);
        assert_eq!(r.on_dup_ack(s(2001), s(12001)), DupAckAction::None);
        assert_eq!(r.dup_acks(), 2);
        assert_eq!(r.on_dup_ack(s(2001), s(12001)), DupAckAction::FastRetransmit);
        assert!(r.in_recovery());
        assert_eq!(r.recover(), s(12001));
        assert_eq!(r.on_dup_ack(s(2001), s(12001)), DupAckAction::Inflate);
        assert_eq!(r.on_dup_ack(s(2001), s(13001)), DupAckAction::Inflate);
    }

    #[test]
    fn new_ack_resets_dup_counter() {
        let mut r = Recovery::new(s(0));
        r.on_dup_ack(s(100), s(5000));
        r.on_dup_ack(s(100), s(5000));
        assert_eq!(r.on_new_ack(s(1100)), AckKind::Normal);
        assert_eq!(r.dup_acks(), 0);
        assert_eq!(r.on_dup_ack(s(1100), s(5000)), DupAckAction::None);
        assert_eq!(r.on_dup_ack(s(1100), s(5000)), DupAckAction::None);
        assert_eq!(r.on_dup_ack(s(1100), s(5000)), DupAckAction::FastRetransmit);
    }

    #[test]
    fn partial_then_full_ack() {
        let mut r = Recovery::new(s(0));
        for _ in 0..3 {
            r.on_dup_ack(s(1000), s(10_000));
        }
        assert!(r.in_recovery());
        assert_eq!(r.on_new_ack(s(3000)), AckKind::Partial);
        assert_eq!(r.partial_acks(), 1);
        assert!(r.in_recovery());
        // Duplicates after a partial ACK keep inflating (we are still in recovery).
        assert_eq!(r.on_dup_ack(s(3000), s(10_000)), DupAckAction::Inflate);
        assert_eq!(r.on_new_ack(s(9999)), AckKind::Partial);
        assert_eq!(r.partial_acks(), 2);
        assert_eq!(r.on_new_ack(s(10_000)), AckKind::Full);
        assert!(!r.in_recovery());
        assert_eq!(r.partial_acks(), 0);
        assert_eq!(r.on_new_ack(s(11_000)), AckKind::Normal);
    }

    #[test]
    fn full_ack_beyond_recover() {
        let mut r = Recovery::new(s(0));
        for _ in 0..3 {
            r.on_dup_ack(s(1000), s(10_000));
        }
        assert_eq!(r.on_new_ack(s(15_000)), AckKind::Full);
    }

    #[test]
    fn no_second_fast_retransmit_for_same_window_after_rto() {
        // RFC 6582 §3.2 step 4 then step 2: after an RTO with SND.MAX = 20000, duplicate
        // ACKs below 20000 must not start a second fast retransmit.
        let mut r = Recovery::new(s(0));
        r.on_new_ack(s(5000));
        r.on_rto(s(20_000));
        assert!(!r.in_recovery());
        assert_eq!(r.recover(), s(20_000));
        r.on_new_ack(s(8000));
        for _ in 0..5 {
            assert_eq!(r.on_dup_ack(s(8000), s(20_000)), DupAckAction::None);
        }
        assert!(!r.in_recovery());
        // Once the ACK reaches recover, a new loss may be fast-retransmitted.
        r.on_new_ack(s(20_000));
        for _ in 0..2 {
            assert_eq!(r.on_dup_ack(s(20_000), s(30_000)), DupAckAction::None);
        }
        assert_eq!(r.on_dup_ack(s(20_000), s(30_000)), DupAckAction::FastRetransmit);
        assert_eq!(r.recover(), s(30_000));
    }

    #[test]
    fn rto_during_recovery_exits_it() {
        let mut r = Recovery::new(s(0));
        for _ in 0..3 {
            r.on_dup_ack(s(1000), s(10_000));
        }
        r.on_rto(s(12_000));
        assert!(!r.in_recovery());
        assert_eq!(r.dup_acks(), 0);
        assert_eq!(r.on_new_ack(s(11_000)), AckKind::Normal);
    }

    #[test]
    fn recover_follows_long_transfers_across_wrap() {
        let iss = s(0xFFFF_0000);
        let mut r = Recovery::new(iss);
        // Acknowledge 3 GiB in 1 MiB steps without any loss, crossing the 2^32 wrap.
        let mut ack = iss;
        for _ in 0..3072 {
            ack += 1 << 20;
            assert_eq!(r.on_new_ack(ack), AckKind::Normal);
        }
        for _ in 0..2 {
            r.on_dup_ack(ack, ack + 50_000);
        }
        assert_eq!(r.on_dup_ack(ack, ack + 50_000), DupAckAction::FastRetransmit);
    }
}
