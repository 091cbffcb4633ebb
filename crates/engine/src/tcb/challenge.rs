//! RFC 5961 §7 challenge-ACK limits without a side channel (CVE-2016-5696).
//!
//! A single stack-wide budget of fixed size is an oracle: an off-path attacker who spoofs
//! segments at a victim connection and counts the challenge ACKs its own connection
//! receives learns whether the victim consumed budget, i.e. whether a guessed 4-tuple
//! exists and whether a guessed sequence number is in its window. The defence is the one
//! Linux adopted (commits 75ff39ccc1bd and f2b2c582e824):
//!
//! 1. every connection has its own limit (`Config::challenge_ack_burst` per
//!    `Config::challenge_ack_interval`; Linux's `tcp_invalid_ratelimit`, one per 500 ms),
//!    checked first, so a victim never spends more than that of the shared budget;
//! 2. the stack-wide budget (`Config::challenge_ack_limit` per second) is drawn afresh each
//!    second as `limit/2 + rand(limit)`, from a keyed PRF of the stack secret and the
//!    second's number (the engine has no entropy of its own), so its exhaustion point is
//!    not known to the attacker.

use super::{Cx, Tcb};
use crate::isn::siphash24;
use crate::time::{Duration, Instant};
use crate::wire::TcpSegment;

/// Per-connection limiter state (RFC 5961 §7 "per-connection" rate limit).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ChallengeLimit {
    /// Start of the current per-connection interval.
    window_start: Option<Instant>,
    /// Challenge ACKs sent in it.
    sent: u32,
}

impl ChallengeLimit {
    /// May one more challenge ACK go out at `now`? Counts it if so.
    fn admit(&mut self, now: Instant, interval: Duration, burst: u32) -> bool {
        if interval == Duration::ZERO || burst == 0 {
            return true;
        }
        let fresh = match self.window_start {
            None => true,
            Some(t) => now.saturating_since(t) >= interval,
        };
        if fresh {
            self.window_start = Some(now);
            self.sent = 0;
        }
        if self.sent >= burst {
            return false;
        }
        self.sent += 1;
        true
    }
}

/// The stack-wide challenge-ACK budget for second number `epoch`: `limit/2 + rand(limit)`
/// with `rand` a SipHash of the secret and the epoch (Linux: `limit/2 +
/// get_random_u32_below(limit)` each second). `limit` 0 means unlimited.
pub fn challenge_budget(secret: &[u8; 16], limit: u32, epoch: u64) -> u32 {
    if limit == 0 {
        return u32::MAX;
    }
    let mut msg = [0u8; 22];
    msg[..14].copy_from_slice(b"challenge-ack:");
    msg[14..].copy_from_slice(&epoch.to_le_bytes());
    let r = siphash24(secret, &msg) % limit as u64;
    (limit / 2).saturating_add(r as u32)
}

impl Tcb {
    /// A challenge ACK (RFC 5961 §3.2, §4.2, §5.2), rate-limited per §7: first by this
    /// connection's own limit, then by the randomised stack-wide budget. A suppressed
    /// challenge is counted (`Counters::challenge_acks_limited`).
    pub(crate) fn challenge_ack(&mut self, cx: &mut Cx, now: Instant) {
        let (interval, burst) = (cx.cfg.challenge_ack_interval, cx.cfg.challenge_ack_burst);
        if !self.challenge_limit.admit(now, interval, burst) {
            cx.counters.challenge_acks_limited += 1;
            return;
        }
        if cx.cfg.challenge_ack_limit != 0 {
            if *cx.challenge_budget == 0 {
                cx.counters.challenge_acks_limited += 1;
                return;
            }
            *cx.challenge_budget -= 1;
        }
        cx.counters.challenge_acks += 1;
        self.ack_now = true;
        self.ack_reason = crate::TxReason::ChallengeAck;
        self.challenge_pending = true;
    }
}

impl Tcb {
    /// Linux's tcp_oow_rate_limited: the duplicate ACK owed to an unacceptable segment
    /// without text, FIN or SYN (the kind two confused peers bounce in an ACK loop) goes
    /// out at most once per `Config::oow_ack_interval`. Data segments are always answered.
    pub(crate) fn admit_oow_ack(&mut self, cx: &mut Cx, now: Instant, seg: &TcpSegment) -> bool {
        let f = seg.flags;
        if !seg.payload.is_empty() || f.fin() || f.syn() {
            return true;
        }
        if self.oow_limit.admit(now, cx.cfg.oow_ack_interval, 1) {
            return true;
        }
        cx.counters.oow_acks_limited += 1;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_stays_in_half_open_range_and_varies() {
        let key = *b"0123456789abcdef";
        let budgets: Vec<u32> = (0..200).map(|e| challenge_budget(&key, 1000, e)).collect();
        assert!(budgets.iter().all(|&b| (500..1500).contains(&b)), "{budgets:?}");
        let distinct: std::collections::HashSet<_> = budgets.iter().collect();
        assert!(distinct.len() > 150, "not randomised: {} distinct", distinct.len());
        assert_eq!(challenge_budget(&key, 0, 7), u32::MAX);
    }

    #[test]
    fn per_connection_limit_admits_burst_per_interval() {
        let mut l = ChallengeLimit::default();
        let t0 = Instant::from_millis(1000);
        let iv = Duration::from_millis(500);
        assert!(l.admit(t0, iv, 1));
        assert!(!l.admit(t0 + Duration::from_millis(499), iv, 1));
        assert!(l.admit(t0 + Duration::from_millis(500), iv, 1));
        assert!(l.admit(t0, Duration::ZERO, 1), "zero interval: unlimited");
    }
}
