//! A windowed minimum over time: Kathleen Nichols' estimator, as Linux keeps
//! `tcp_sock::rtt_min` (its `lib/win_minmax.c`, window `net.ipv4.tcp_min_rtt_wlen`).
//!
//! RFC 8985 §6.2 step 2 defines RACK.min_RTT as "the estimated minimum round-trip time
//! of the connection" and points at a windowed filter: a plain minimum never forgets a
//! short path the connection no longer has (a route change, a queue that has since
//! grown), so the reordering window (min_RTT / 4) would stay too narrow for good.
//!
//! Three samples are kept: the best, and the best of the later quarter and half of the
//! window, so that when the best ages out a close runner-up replaces it. Constant space
//! and time per update; the estimate is always a sample taken inside the window.

use crate::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
struct Sample {
    t: Instant,
    v: Duration,
}

/// The windowed minimum of a time series of durations.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WindowedMin {
    /// Best, second best (taken later), third best (taken later still). `None` before
    /// the first sample.
    s: Option<[Sample; 3]>,
}

impl WindowedMin {
    /// The current estimate, if any sample was taken.
    #[inline]
    pub(crate) fn get(&self) -> Option<Duration> {
        self.s.map(|s| s[0].v)
    }

    /// Take the sample `v` measured at `t` and return the minimum over the last `win`.
    pub(crate) fn update(&mut self, win: Duration, t: Instant, v: Duration) -> Duration {
        let new = Sample { t, v };
        let s = match &mut self.s {
            // A new best, or nothing left inside the window: start over from this one.
            Some(s) if v > s[0].v && t.saturating_since(s[2].t) <= win => s,
            slot => {
                *slot = Some([new; 3]);
                return v;
            }
        };
        if v <= s[1].v {
            s[1] = new;
            s[2] = new;
        } else if v <= s[2].v {
            s[2] = new;
        }
        Self::age(s, win, new);
        s[0].v
    }

    /// Move the runners-up forward as the best ages: past the whole window the best is
    /// dropped; a second (third) best still as old as the best after a quarter (half) of
    /// the window is refreshed with the newest sample, so the three stay spread out.
    fn age(s: &mut [Sample; 3], win: Duration, new: Sample) {
        let dt = new.t.saturating_since(s[0].t);
        if dt > win {
            s[0] = s[1];
            s[1] = s[2];
            s[2] = new;
            if new.t.saturating_since(s[0].t) > win {
                s[0] = s[1];
                s[1] = s[2];
            }
        } else if s[1].t == s[0].t && dt > win / 4 {
            s[1] = new;
            s[2] = new;
        } else if s[2].t == s[1].t && dt > win / 2 {
            s[2] = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn keeps_the_minimum_inside_the_window() {
        let mut f = WindowedMin::default();
        let win = ms(1000);
        assert_eq!(f.get(), None);
        assert_eq!(f.update(win, Instant::from_millis(0), ms(50)), ms(50));
        assert_eq!(f.update(win, Instant::from_millis(100), ms(80)), ms(50));
        assert_eq!(f.update(win, Instant::from_millis(900), ms(70)), ms(50));
        // The 50 ms sample is older than the window now: the best later one takes over.
        assert_eq!(f.update(win, Instant::from_millis(1100), ms(90)), ms(70));
        // A new best resets the filter at once.
        assert_eq!(f.update(win, Instant::from_millis(1200), ms(10)), ms(10));
    }

    #[test]
    fn a_path_that_got_longer_is_learned_after_one_window() {
        let mut f = WindowedMin::default();
        let win = ms(300);
        f.update(win, Instant::from_millis(0), ms(5));
        let mut last = ms(5);
        for i in 1..=100u64 {
            last = f.update(win, Instant::from_millis(i * 10), ms(40));
        }
        assert_eq!(last, ms(40), "the 5 ms sample left the window 700 ms ago");
    }

    // Property: the estimate is never above the newest sample, never below the smallest
    // sample inside the window, and always a value that was sampled inside the window.
    proptest::proptest! {
        #[test]
        fn estimate_is_a_sample_from_the_window(
            steps in proptest::collection::vec((0u64..400, 1u64..1000), 1..200),
            win_ms in 1u64..2000,
        ) {
            let win = ms(win_ms);
            let mut f = WindowedMin::default();
            let mut t = 0u64;
            let mut hist: Vec<(u64, u64)> = Vec::new();
            for (dt, v) in steps {
                t += dt;
                hist.push((t, v));
                let est = f.update(win, Instant::from_millis(t), ms(v)).as_millis() as u64;
                let inside: Vec<u64> =
                    hist.iter().filter(|(ht, _)| t - ht <= win_ms).map(|&(_, hv)| hv).collect();
                proptest::prop_assert!(est <= v);
                proptest::prop_assert!(est >= *inside.iter().min().unwrap());
                proptest::prop_assert!(inside.contains(&est));
            }
        }
    }
}
