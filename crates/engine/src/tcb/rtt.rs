//! Retransmission timeout estimation (RFC 6298).
//!
//! [`RttEstimator`] keeps SRTT and RTTVAR in integer microseconds and derives the RTO
//! from them, with the exponential backoff of RFC 6298 (5.5) on top.
//!
//! **Karn's algorithm (RFC 6298 §3) is the caller's job:** never feed [`RttEstimator::sample`]
//! a measurement taken from a segment that was retransmitted, because its ACK is ambiguous
//! (it may acknowledge either transmission). With RFC 7323 timestamps the echoed TSval
//! identifies the transmission, so samples from retransmissions are then allowed
//! (RFC 7323 §4.1). The backed-off RTO is kept until a valid sample arrives, which
//! [`RttEstimator::sample`] handles by resetting the backoff itself.

use crate::time::Duration;

/// Clock granularity G of RFC 6298 §2: the engine's timers have 1 ms resolution.
pub const CLOCK_GRANULARITY: Duration = Duration::from_millis(1);

/// K of RFC 6298 §2: RTO = SRTT + max(G, K*RTTVAR).
const K: u64 = 4;

/// Samples are capped at about 12.7 days so the integer arithmetic cannot overflow
/// (an RTT may be derived from a peer's timestamp echo, i.e. from packet input).
const MAX_SAMPLE_US: u64 = 1 << 40;

/// Largest backoff exponent we track; 2^20 * any sane RTO exceeds every `max_rto`.
const MAX_BACKOFF_SHIFT: u32 = 20;

/// RFC 6298 RTT estimator with exponential backoff.
#[derive(Clone, Debug)]
pub struct RttEstimator {
    /// SRTT in microseconds; `None` until the first measurement (RFC 6298 (2.1)).
    srtt_us: Option<u64>,
    /// RTTVAR in microseconds.
    rttvar_us: u64,
    /// RTO before backoff, already clamped to `[min_rto, max_rto]`, in microseconds.
    base_rto_us: u64,
    min_rto_us: u64,
    max_rto_us: u64,
    /// Number of consecutive RTO expiries (RFC 6298 (5.5)); the RTO is doubled this often.
    backoff_shift: u32,
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

impl RttEstimator {
    /// A fresh estimator. Until the first sample the RTO is `initial_rto`
    /// (RFC 6298 (2.1): 1 second), clamped to `[min_rto, max_rto]`.
    /// `max_rto` below `min_rto` is raised to `min_rto`.
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> RttEstimator {
        let min_rto_us = micros(min_rto);
        let max_rto_us = micros(max_rto).max(min_rto_us);
        RttEstimator {
            srtt_us: None,
            rttvar_us: 0,
            base_rto_us: micros(initial_rto).clamp(min_rto_us, max_rto_us),
            min_rto_us,
            max_rto_us,
            backoff_shift: 0,
        }
    }

    /// Feed one RTT measurement R (the caller applies Karn's rule, see the module docs).
    /// Also clears the backoff: a valid sample means the path delivers again.
    pub fn sample(&mut self, rtt: Duration) {
        let r = micros(rtt).min(MAX_SAMPLE_US);
        match self.srtt_us {
            // RFC 6298 (2.2): first measurement: SRTT <- R, RTTVAR <- R/2.
            None => {
                self.srtt_us = Some(r);
                self.rttvar_us = r / 2;
            }
            // RFC 6298 (2.3): RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|
            //                 SRTT   <- (1 - alpha) * SRTT + alpha * R'
            // with alpha = 1/8, beta = 1/4; RTTVAR is updated with the old SRTT.
            Some(srtt) => {
                let err = srtt.abs_diff(r);
                self.rttvar_us = (3 * self.rttvar_us + err) / 4;
                self.srtt_us = Some((7 * srtt + r) / 8);
            }
        }
        self.base_rto_us = self.compute_rto();
        self.backoff_shift = 0;
    }

    /// RFC 6298 (2.2)/(2.3): RTO <- SRTT + max(G, K*RTTVAR), then (2.4) at least
    /// `min_rto` (1 s in the RFC, 200 ms in our default profile) and (2.5) at most `max_rto`.
    fn compute_rto(&self) -> u64 {
        let srtt = self.srtt_us.unwrap_or(0);
        let var_term = (K * self.rttvar_us).max(micros(CLOCK_GRANULARITY));
        srtt.saturating_add(var_term).clamp(self.min_rto_us, self.max_rto_us)
    }

    /// The current RTO, including backoff: the base RTO doubled once per expiry
    /// (RFC 6298 (5.5)), capped at `max_rto` (RFC 6298 (2.5)).
    pub fn rto(&self) -> Duration {
        let backed = self.base_rto_us.checked_shl(self.backoff_shift).unwrap_or(u64::MAX);
        // A shift can lose high bits without overflowing `checked_shl`; detect that too.
        let backed = if backed >> self.backoff_shift != self.base_rto_us { u64::MAX } else { backed };
        Duration::from_micros(backed.min(self.max_rto_us))
    }

    /// The RTO from SRTT/RTTVAR alone, without backoff.
    pub fn base_rto(&self) -> Duration {
        Duration::from_micros(self.base_rto_us)
    }

    /// The retransmission timer expired: RFC 6298 (5.5) "back off the timer" (RTO *= 2).
    pub fn backoff(&mut self) {
        if self.backoff_shift < MAX_BACKOFF_SHIFT {
            self.backoff_shift += 1;
        }
    }

    /// Drop the backoff, e.g. when an ACK for new data arrives. [`sample`](Self::sample)
    /// does this by itself.
    pub fn reset_backoff(&mut self) {
        self.backoff_shift = 0;
    }

    /// Consecutive expiries since the last reset.
    pub fn backoff_count(&self) -> u32 {
        self.backoff_shift
    }

    /// RFC 6298 (5.7): if the timer expired while waiting for the ACK of a SYN and the RTO
    /// in use is below 3 s, the RTO must be re-initialised to 3 s when data transmission
    /// begins (after the handshake). Call this once on reaching ESTABLISHED in that case.
    /// It has no effect once an RTT sample exists (the RFC allows a sample to override it).
    pub fn reinit_after_syn_timeout(&mut self) {
        self.backoff_shift = 0;
        if self.srtt_us.is_none() {
            let three_s = micros(Duration::from_secs(3));
            if self.base_rto_us < three_s {
                self.base_rto_us = three_s.min(self.max_rto_us).max(self.min_rto_us);
            }
        }
    }

    /// Smoothed RTT, `None` before the first sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt_us.map(Duration::from_micros)
    }

    /// RTT variation (zero before the first sample).
    pub fn rttvar(&self) -> Duration {
        Duration::from_micros(self.rttvar_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn est() -> RttEstimator {
        RttEstimator::new(ms(1000), ms(200), ms(60_000))
    }

    #[test]
    fn initial_rto_before_any_sample() {
        let e = est();
        assert_eq!(e.rto(), ms(1000));
        assert_eq!(e.srtt(), None);
        assert_eq!(e.rttvar(), Duration::ZERO);
    }

    #[test]
    fn initial_rto_is_clamped() {
        assert_eq!(RttEstimator::new(ms(50), ms(200), ms(60_000)).rto(), ms(200));
        assert_eq!(RttEstimator::new(ms(90_000), ms(200), ms(60_000)).rto(), ms(60_000));
    }

    #[test]
    fn first_sample_rule_2_2() {
        let mut e = est();
        e.sample(ms(100));
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), ms(50));
        // RTO = 100 + 4*50 = 300 ms.
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn subsequent_samples_rule_2_3() {
        let mut e = est();
        e.sample(ms(100));
        e.sample(ms(200));
        // RTTVAR = 3/4*50 + 1/4*|100-200| = 37.5 + 25 = 62.5 ms
        // SRTT   = 7/8*100 + 1/8*200 = 112.5 ms
        assert_eq!(e.rttvar(), Duration::from_micros(62_500));
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        // RTO = 112.5 + 4*62.5 = 362.5 ms
        assert_eq!(e.rto(), Duration::from_micros(362_500));

        let (srtt, var) = (112_500u64, 62_500u64);
        e.sample(ms(50));
        let var2 = (3 * var + srtt.abs_diff(50_000)) / 4;
        let srtt2 = (7 * srtt + 50_000) / 8;
        assert_eq!(e.rttvar(), Duration::from_micros(var2));
        assert_eq!(e.srtt(), Some(Duration::from_micros(srtt2)));
        assert_eq!(e.rto(), Duration::from_micros(srtt2 + 4 * var2));
    }

    #[test]
    fn min_rto_rule_2_4() {
        let mut e = est();
        e.sample(ms(10)); // 10 + 4*5 = 30 ms < 200 ms
        assert_eq!(e.rto(), ms(200));
    }

    #[test]
    fn granularity_term_applies_when_rttvar_tiny() {
        // No lower bound, so G is visible: constant RTT drives RTTVAR towards 0.
        let mut e = RttEstimator::new(ms(1000), Duration::ZERO, ms(60_000));
        for _ in 0..100 {
            e.sample(ms(20));
        }
        assert_eq!(e.srtt(), Some(ms(20)));
        assert!(e.rttvar() * 4 < CLOCK_GRANULARITY);
        assert_eq!(e.rto(), ms(20) + CLOCK_GRANULARITY);
    }

    #[test]
    fn max_rto_rule_2_5() {
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(2000));
        e.sample(ms(1500)); // 1500 + 3000 > 2000
        assert_eq!(e.rto(), ms(2000));
    }

    #[test]
    fn backoff_doubles_and_caps_rule_5_5() {
        let mut e = est();
        e.sample(ms(100)); // RTO 300 ms
        e.backoff();
        assert_eq!(e.rto(), ms(600));
        e.backoff();
        assert_eq!(e.rto(), ms(1200));
        assert_eq!(e.backoff_count(), 2);
        for _ in 0..100 {
            e.backoff();
        }
        assert_eq!(e.rto(), ms(60_000));
        assert_eq!(e.base_rto(), ms(300));
        e.reset_backoff();
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn sample_clears_backoff() {
        let mut e = est();
        e.backoff();
        e.backoff();
        assert_eq!(e.rto(), ms(4000));
        e.sample(ms(100));
        assert_eq!(e.backoff_count(), 0);
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn syn_timeout_reinit_rule_5_7() {
        let mut e = est();
        e.backoff();
        e.reinit_after_syn_timeout();
        assert_eq!(e.rto(), ms(3000));
        // With a sample, no effect on the base RTO.
        let mut e = est();
        e.sample(ms(100));
        e.reinit_after_syn_timeout();
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn huge_sample_does_not_overflow() {
        let mut e = est();
        e.sample(Duration::from_secs(u64::MAX / 2));
        e.sample(Duration::ZERO);
        e.backoff();
        assert_eq!(e.rto(), ms(60_000));
    }

    proptest::proptest! {
        #[test]
        fn rto_always_within_bounds(
            samples in proptest::collection::vec((0u64..10_000_000, 0u8..4), 1..50),
            min_ms in 0u64..2000,
            span_ms in 0u64..120_000,
        ) {
            let (min, max) = (ms(min_ms), ms(min_ms + span_ms));
            let mut e = RttEstimator::new(ms(1000), min, max);
            for (rtt_us, backoffs) in samples {
                e.sample(Duration::from_micros(rtt_us));
                proptest::prop_assert!(e.rto() >= min && e.rto() <= max);
                let before = e.rto();
                for _ in 0..backoffs {
                    e.backoff();
                    proptest::prop_assert!(e.rto() >= before && e.rto() <= max);
                }
            }
        }
    }
}
