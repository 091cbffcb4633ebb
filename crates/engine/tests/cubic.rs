//! CUBIC (RFC 9438) window growth in virtual time.

use utcp_engine::tcb::congestion::{CongestionControl, Cubic};
use utcp_engine::tcb::cubic::{ALPHA, BETA, C};
use utcp_engine::time::{Duration, Instant};

const SMSS: usize = 1000;

/// Acknowledge one window's worth of full segments per RTT for `rtts` round trips.
fn run(cc: &mut Cubic, now: &mut Instant, rtt: Duration, rtts: u32) {
    for _ in 0..rtts {
        let segs = cc.cwnd() / SMSS;
        for _ in 0..segs {
            cc.on_ack_at(SMSS, SMSS, *now, Some(rtt));
        }
        *now += rtt;
    }
}

fn segs(cc: &Cubic) -> f64 {
    cc.cwnd() as f64 / SMSS as f64
}

#[test]
fn constants_rfc9438() {
    assert_eq!(C, 0.4);
    assert_eq!(BETA, 0.7);
    assert!((ALPHA - 0.9 / 1.7).abs() < 1e-12);
}

#[test]
fn multiplicative_decrease_and_k() {
    let mut cc = Cubic::new(100 * SMSS);
    cc.on_sack_recovery_start(100 * SMSS, SMSS);
    // §4.6: ssthresh = cwnd = 0.7 * 100 segments.
    assert_eq!(cc.ssthresh(), 70 * SMSS);
    assert_eq!(cc.cwnd(), 70 * SMSS);
    assert_eq!(cc.w_max(), 100.0);
    // The first ACK in congestion avoidance starts the epoch: K = cbrt((100 - 70) / 0.4).
    let t0 = Instant::from_millis(1000);
    cc.on_ack_at(SMSS, SMSS, t0, Some(Duration::from_millis(100)));
    assert_eq!(cc.epoch_start(), Some(t0));
    let k = 75f64.cbrt();
    assert!((cc.k() - k).abs() < 1e-9, "K = {}", cc.k());
    // Eq. (1) at chosen t: W(0) = cwnd_epoch, W(K) = W_max, symmetric around K.
    assert!((cc.w_cubic(0.0) - 70.0).abs() < 1e-9);
    assert!((cc.w_cubic(k) - 100.0).abs() < 1e-9);
    assert!((cc.w_cubic(k + 1.0) - 100.4).abs() < 1e-9);
    assert!((cc.w_cubic(k - 1.0) - 99.6).abs() < 1e-9);
    assert!((cc.w_cubic(k + 5.0) - 150.0).abs() < 1e-9);
}

#[test]
fn window_follows_w_cubic_in_virtual_time() {
    let mut cc = Cubic::new(100 * SMSS);
    cc.on_sack_recovery_start(100 * SMSS, SMSS);
    let rtt = Duration::from_millis(100);
    let mut now = Instant::from_millis(1000);
    let t0 = now;
    // Concave region: after 2 s cwnd is close to W_cubic(2 s) (within a segment, the
    // per-ACK steps aim one RTT ahead and round down to bytes).
    run(&mut cc, &mut now, rtt, 20);
    let t = (now - t0).as_secs_f64();
    let w = cc.w_cubic(t);
    assert!((segs(&cc) - w).abs() < 1.5, "cwnd {} vs W_cubic({t}) = {w}", segs(&cc));
    // Plateau near W_max around t = K, then the convex region beyond it.
    run(&mut cc, &mut now, rtt, 22);
    let t = (now - t0).as_secs_f64();
    assert!((segs(&cc) - cc.w_cubic(t)).abs() < 1.5, "cwnd {} at t={t}", segs(&cc));
    assert!(segs(&cc) > 99.0 && segs(&cc) < 102.0);
    run(&mut cc, &mut now, rtt, 40);
    let t = (now - t0).as_secs_f64();
    assert!((segs(&cc) - cc.w_cubic(t)).abs() < 2.0, "cwnd {} at t={t}", segs(&cc));
    assert!(segs(&cc) > 110.0);
}

#[test]
fn fast_convergence_lowers_w_max() {
    let mut cc = Cubic::new(100 * SMSS);
    cc.on_sack_recovery_start(100 * SMSS, SMSS);
    // A second loss below the previous W_max (70 < 100): W_max = 70 * (1 + 0.7) / 2.
    cc.on_sack_recovery_start(70 * SMSS, SMSS);
    assert!((cc.w_max() - 59.5).abs() < 1e-9);
    assert_eq!(cc.ssthresh(), 49 * SMSS);
}

#[test]
fn reno_friendly_region_with_short_rtt() {
    // Small W_max and a short RTT: the Reno estimate outgrows W_cubic(t) (§4.3), and cwnd
    // follows W_est.
    let mut cc = Cubic::new(10 * SMSS);
    cc.on_sack_recovery_start(10 * SMSS, SMSS);
    let rtt = Duration::from_millis(10);
    let mut now = Instant::from_millis(1000);
    let t0 = now;
    run(&mut cc, &mut now, rtt, 100);
    let t = (now - t0).as_secs_f64();
    assert!(cc.w_cubic(t) < cc.w_est(), "W_cubic {} W_est {}", cc.w_cubic(t), cc.w_est());
    assert!((segs(&cc) - cc.w_est()).abs() < 1.0, "cwnd {} W_est {}", segs(&cc), cc.w_est());
    // W_est grew by about alpha_cubic per RTT until W_max, then 1 per RTT.
    assert!(cc.w_est() > 7.0 + 0.5 * 100.0 * ALPHA);
}

#[test]
fn timeout_restarts_with_k_zero() {
    let mut cc = Cubic::new(100 * SMSS);
    cc.on_rto(100 * SMSS, SMSS);
    assert_eq!(cc.cwnd(), SMSS);
    assert_eq!(cc.ssthresh(), 70 * SMSS);
    let rtt = Duration::from_millis(100);
    let mut now = Instant::from_millis(1000);
    // Slow start up to ssthresh, then the first CA ACK starts an epoch with K = 0 and
    // W_max = cwnd (§4.8).
    run(&mut cc, &mut now, rtt, 8);
    assert!(cc.cwnd() >= cc.ssthresh());
    run(&mut cc, &mut now, rtt, 1);
    assert_eq!(cc.k(), 0.0);
    assert!(cc.w_max() >= 70.0 && cc.w_max() < 140.0);
}
