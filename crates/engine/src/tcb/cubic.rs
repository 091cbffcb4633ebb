//! CUBIC congestion control (RFC 9438), beside NewReno behind [`CongestionControl`].
//!
//! Windows are bytes at the trait boundary and segments (of the current SMSS) inside the
//! RFC's formulas; time is the engine's virtual [`Instant`], so the window growth is
//! deterministic and testable.
//!
//! - §4.2 window growth: `W_cubic(t) = C * (t - K)^3 + W_max`, `K = cbrt((W_max - cwnd_epoch) / C)`.
//! - §4.3 Reno-friendly region: `W_est` grows by `alpha_cubic` segments per RTT
//!   (`alpha_cubic = 3 * (1 - beta) / (1 + beta)`, 1 once `W_est >= W_max`); cwnd follows
//!   `W_est` while `W_cubic(t) < W_est`.
//! - §4.4/4.5 concave/convex regions: cwnd grows by `(target - cwnd) / cwnd` per ACKed segment
//!   with `target = W_cubic(t + RTT)` clamped to `[cwnd, 1.5 * cwnd]`.
//! - §4.6 multiplicative decrease with `beta_cubic = 0.7`; §4.7 fast convergence;
//!   §4.8 timeout (K = 0 and W_max = cwnd at the start of the next CA stage).

use super::congestion::CongestionControl;
use crate::time::{Duration, Instant};

/// RFC 9438 §5.1: C = 0.4 (segments / s^3).
pub const C: f64 = 0.4;
/// RFC 9438 §4.6: beta_cubic = 0.7.
pub const BETA: f64 = 0.7;
/// RFC 9438 §4.3: alpha_cubic = 3 * (1 - beta) / (1 + beta).
pub const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);
/// RTT assumed before the first sample (RFC 6298's initial RTO is 1 s; 100 ms is a
/// conservative guess for the target look-ahead only).
const DEFAULT_RTT: Duration = Duration::from_millis(100);

/// CUBIC window state.
#[derive(Clone, Debug)]
pub struct Cubic {
    cwnd: usize,
    ssthresh: usize,
    initial_window: usize,
    /// W_max in segments: the window just before the last reduction (after §4.7).
    w_max: f64,
    /// K in seconds (§4.2).
    k: f64,
    /// Start of the current congestion-avoidance stage (t = 0).
    epoch_start: Option<Instant>,
    /// W_est in segments (§4.3).
    w_est: f64,
    /// The last reduction was a timeout: the next CA stage starts with K = 0 (§4.8).
    after_rto: bool,
    /// Fractional bytes of growth not yet added to cwnd.
    frac: f64,
}

impl Cubic {
    /// `initial_window` bytes of cwnd; ssthresh starts at infinity (RFC 9438 §4.10 follows
    /// RFC 5681 slow start).
    pub fn new(initial_window: usize) -> Cubic {
        Cubic {
            cwnd: initial_window,
            ssthresh: usize::MAX,
            initial_window,
            w_max: 0.0,
            k: 0.0,
            epoch_start: None,
            w_est: 0.0,
            after_rto: false,
            frac: 0.0,
        }
    }

    /// RFC 9438 eq. (1): W_cubic(t) in segments, `t` seconds into the CA stage.
    pub fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.w_max
    }

    /// K in seconds (RFC 9438 eq. (2)).
    pub fn k(&self) -> f64 {
        self.k
    }

    /// W_max in segments.
    pub fn w_max(&self) -> f64 {
        self.w_max
    }

    /// W_est in segments (RFC 9438 §4.3).
    pub fn w_est(&self) -> f64 {
        self.w_est
    }

    /// Start of the current congestion-avoidance stage.
    pub fn epoch_start(&self) -> Option<Instant> {
        self.epoch_start
    }

    /// RFC 9438 §4.6 and §4.7: remember W_max (with fast convergence) and set ssthresh.
    fn reduce(&mut self, smss: usize) {
        let cwnd_seg = self.cwnd as f64 / smss as f64;
        // §4.7 fast convergence: a window below the last W_max releases bandwidth.
        self.w_max = if cwnd_seg < self.w_max { cwnd_seg * (1.0 + BETA) / 2.0 } else { cwnd_seg };
        // §4.6: ssthresh = cwnd * beta_cubic, at least 2 segments (RFC 5681 eq. (4) floor).
        self.ssthresh = ((self.cwnd as f64 * BETA) as usize).max(2 * smss);
        self.epoch_start = None;
        self.frac = 0.0;
    }

    /// §4.2: the first ACK of a congestion-avoidance stage starts the epoch.
    fn start_epoch(&mut self, now: Instant, smss: usize) {
        let cwnd_epoch = self.cwnd as f64 / smss as f64;
        self.epoch_start = Some(now);
        if self.after_rto || self.w_max <= cwnd_epoch {
            // §4.8 after a timeout (and before any loss): K = 0, W_max = cwnd.
            self.w_max = cwnd_epoch;
            self.k = 0.0;
        } else {
            self.k = ((self.w_max - cwnd_epoch) / C).cbrt();
        }
        self.after_rto = false;
        self.w_est = cwnd_epoch;
    }

    /// Congestion avoidance for `acked` bytes at `now` (§4.2-4.5).
    fn avoid(&mut self, acked: usize, smss: usize, now: Instant, rtt: Duration) {
        if self.epoch_start.is_none() {
            self.start_epoch(now, smss);
        }
        let t = now.saturating_since(self.epoch_start.unwrap_or(now)).as_secs_f64();
        // At least one segment: the per-ACK steps divide by cwnd.
        let cwnd_seg = (self.cwnd as f64 / smss.max(1) as f64).max(1.0);
        let segs = acked as f64 / smss as f64;
        // §4.3: W_est, with alpha 1 once it reached W_max.
        let alpha = if self.w_est >= self.w_max { 1.0 } else { ALPHA };
        self.w_est += alpha * segs / cwnd_seg;
        let w_cubic = self.w_cubic(t);
        let new_seg = if w_cubic < self.w_est {
            // §4.3 Reno-friendly region.
            self.w_est.max(cwnd_seg)
        } else {
            // §4.4/§4.5: target W_cubic(t + RTT) within [cwnd, 1.5 cwnd].
            let target = self.w_cubic(t + rtt.as_secs_f64()).clamp(cwnd_seg, 1.5 * cwnd_seg);
            cwnd_seg + (target - cwnd_seg) / cwnd_seg * segs
        };
        let grow = (new_seg - cwnd_seg) * smss as f64 + self.frac;
        if grow.is_finite() && grow > 0.0 {
            let whole = grow.floor();
            self.frac = grow - whole;
            self.cwnd = self.cwnd.saturating_add(whole as usize);
        }
    }
}

impl CongestionControl for Cubic {
    fn cwnd(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_ack(&mut self, acked: usize, smss: usize) {
        // Without a clock only slow start applies; CA needs `on_ack_at`.
        if self.cwnd < self.ssthresh {
            self.cwnd = self.cwnd.saturating_add(acked.min(smss));
        }
    }

    fn on_ack_at(&mut self, acked: usize, smss: usize, now: Instant, rtt: Option<Duration>) {
        if acked == 0 {
            return;
        }
        if self.cwnd < self.ssthresh {
            // RFC 9438 §4.10: standard slow start (RFC 5681 §3.1, L = 1*SMSS).
            self.cwnd = self.cwnd.saturating_add(acked.min(smss));
            return;
        }
        self.avoid(acked, smss, now, rtt.unwrap_or(DEFAULT_RTT));
    }

    fn on_fast_retransmit(&mut self, _flight_size: usize, smss: usize) {
        // §4.6 decrease, then RFC 5681 §3.2 step 3's inflation (non-SACK recovery).
        self.reduce(smss);
        self.cwnd = self.ssthresh.saturating_add(3 * smss);
    }

    fn on_dup_ack_in_recovery(&mut self, smss: usize) {
        self.cwnd = self.cwnd.saturating_add(smss);
    }

    fn on_partial_ack(&mut self, acked: usize, smss: usize) {
        // RFC 6582 §3.2 step 3 as in NewReno.
        self.cwnd = super::congestion::partial_ack_cwnd(self.cwnd, acked, smss);
    }

    fn on_recovery_exit(&mut self, flight_size: usize, smss: usize) {
        self.cwnd = super::congestion::recovery_exit_cwnd(self.ssthresh, flight_size, smss);
        self.epoch_start = None;
    }

    fn on_rto(&mut self, _flight_size: usize, smss: usize) {
        // §4.8: ssthresh as in §4.6, cwnd = 1 SMSS (RFC 5681 loss window).
        self.reduce(smss);
        self.cwnd = smss;
        self.after_rto = true;
    }

    fn on_idle_restart(&mut self, smss: usize) {
        self.cwnd = self.cwnd.min(self.initial_window.max(smss));
        self.epoch_start = None;
    }

    fn on_sack_recovery_start(&mut self, _flight_size: usize, smss: usize) {
        // RFC 9438 §4.6: cwnd = ssthresh = cwnd * beta_cubic.
        self.reduce(smss);
        self.cwnd = self.ssthresh;
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = cwnd;
    }
}
