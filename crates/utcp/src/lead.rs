//! Blocking waits, leader/follower style (run to completion).
//!
//! A thread whose socket call must block first tries to become the *leader*: if nobody
//! else reads the TUN, it disarms the TUN in the driver's epoll and polls the TUN itself
//! (plus a kick eventfd, with its own timeout), reads a burst, feeds the engine,
//! transmits, dispatches events, and returns as soon as an event concerns its own
//! socket. A request/response then costs one wake-up of one thread, the one that
//! consumes the data. Threads that block while someone else leads are *followers*: they
//! sleep on their socket's condvar and are signalled by whoever processes their events.
//!
//! When a leader returns to its application and no other thread waits on a connection,
//! the TUN stays *parked* (disarmed in the driver's epoll): the typical application
//! calls back into a blocking read or write within microseconds and leads again without
//! any syscall. If it does not within `HANDBACK` (1 ms), the driver re-arms the TUN for itself
//! at its next check (its timerfd; at most 8 ms later). If other threads wait on connections, the leader
//! hands the TUN straight back to the driver instead, so their packets are not delayed.
//! A leader that keeps processing packets for other connections' waiting threads and
//! none for its own steps down, so leadership follows the traffic.
//!
//! Timers stay with the driver thread (timerfd), so they fire with no application
//! thread inside; a leader also fires timers that are due whenever it holds the lock.

use super::driver::{Inner, Interest, Key, RxBuf, RxOwner, Shared, Who, panic_message};
use super::sys::{Ready, ppoll2};
use super::tx::TxDuty;
use crate::BusyPoll;
use crate::time::Instant;
use std::io;
use std::sync::MutexGuard;

/// Step down after this many bursts that woke other connections' threads but not ours.
const STEP_DOWN_AFTER: u32 = 2;

/// A socket call that does not block reads a parked TUN once it has been parked this
/// long (a request/response loop comes back sooner and never pays the extra read).
const PUMP_AFTER: std::time::Duration = std::time::Duration::from_micros(50);

/// How a leadership stint ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    /// An event for our socket, our deadline, or the interface stopping: the caller
    /// re-checks its condition.
    Return,
    /// Others' traffic only: go on waiting as a follower.
    StepDown,
}

/// How one busy poll went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Spin {
    /// It read packets before the budget ran out.
    pub(crate) hit: bool,
    /// The thread was preempted while polling (see `Shared::busy_poll`).
    pub(crate) contended: bool,
}

/// The adaptive busy poll's back-off (`BusyPoll::Adaptive`): after `level` polls in a row
/// that read nothing or were contended, the next `2^level - 1` chances to poll are skipped.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SpinBackoff {
    level: u32,
    skip: u32,
}

impl SpinBackoff {
    /// At most 2^8 - 1 = 255 chances skipped after a run of misses.
    const MAX_LEVEL: u32 = 8;

    /// Whether this chance to poll is taken (else it counts as skipped).
    fn take(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    /// A poll paid (read packets without taking a CPU others wanted) or did not.
    pub(crate) fn record(&mut self, s: Spin) {
        if s.hit && !s.contended {
            *self = SpinBackoff::default();
        } else {
            self.level = (self.level + 1).min(Self::MAX_LEVEL);
            self.skip = (1 << self.level) - 1;
        }
    }
}

impl Inner {
    /// One round of a thread that read a burst without the lock (a leader, a steered
    /// wait): feed it to the engine, fire due timers, and fail the interface on `err` (a
    /// read error) or an engine panic. Returns the TUN writes to do after the lock.
    pub(crate) fn feed_burst<'s>(
        &mut self,
        shared: &'s Shared,
        now: Instant,
        rx: &RxBuf,
        who: Who,
        mut err: Option<io::Error>,
    ) -> TxDuty<'s> {
        let mut duty = TxDuty::none();
        let fed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if !self.stop && !rx.is_empty() {
                self.receive_batch(shared, now, rx, who);
                duty = self.after_op_by(shared, now, who);
            }
            if !self.stop {
                self.fire_due_timers(shared, now, who);
            }
        }));
        if let Err(p) = fed {
            err = err.or(Some(io::Error::other(format!("engine panicked: {}", panic_message(p.as_ref())))));
        }
        if let Some(e) = err {
            self.fail(shared, e);
        }
        duty
    }

    /// Account for a busy poll: the adaptive back-off and the counters.
    pub(crate) fn record_spin(&mut self, s: Spin) {
        self.spin.record(s);
        *(if s.hit { &mut self.stats.busy_poll_hits } else { &mut self.stats.busy_poll_misses }) += 1;
        self.stats.busy_poll_contended += s.contended as u64;
    }

    /// The busy-poll budget for the leader's (or a steered thread's) next wait, if it
    /// polls (`BusyPoll`): with the adaptive policy, only when no other thread waits on a
    /// connection.
    pub(crate) fn spin_budget(&mut self) -> Option<std::time::Duration> {
        match self.busy_poll {
            BusyPoll::Off => None,
            BusyPoll::Always(d) => Some(d),
            BusyPoll::Adaptive(d) => {
                // Alone: nobody else needs the CPU this poll would take from the peer.
                let alone = self.conn_followers == 0 && self.async_wakers == 0 && !self.pump_running;
                (alone && self.spin.take()).then_some(d)
            }
        }
    }
}

impl Shared {
    /// Block until an event may let the caller's operation on `key` proceed (the caller
    /// re-checks its condition and the deadline afterwards), leading if nobody does.
    pub(crate) fn wait<'a>(
        &'a self,
        g: MutexGuard<'a, Inner>,
        key: Key,
        interest: Interest,
        deadline: Option<std::time::Instant>,
    ) -> io::Result<MutexGuard<'a, Inner>> {
        if !g.waiters.contains_key(&key) {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        }
        if let Some(q) = g.steered_queue(key) {
            // The connection has its own queue (flow steering, `steered.rs`).
            return self.wait_steered(g, key, q, interest, deadline);
        }
        if !g.can_lead() {
            return self.follow_or_steer(g, key, interest, deadline);
        }
        let (g, end) = self.lead(g, key, interest, deadline);
        match end {
            End::Return => Ok(g),
            End::StepDown => self.follow_or_steer(g, key, interest, deadline),
        }
    }

    /// Someone else reads the TUN: wait on a queue of our own if other threads wait on
    /// connections too and the connection can get one (flow steering), else sleep on the
    /// socket's condvar. A thread whose only company is listeners' threads follows, and
    /// leadership comes to it (step-down), so single-connection use (rr, connect) keeps
    /// the leader's path and its busy poll.
    fn follow_or_steer<'a>(
        &'a self,
        mut g: MutexGuard<'a, Inner>,
        key: Key,
        interest: Interest,
        deadline: Option<std::time::Instant>,
    ) -> io::Result<MutexGuard<'a, Inner>> {
        let crowd = g.conn_followers > 0 || g.leader.is_some_and(|(k, _)| matches!(k, Key::Conn(_)));
        if !crowd {
            return self.follow(g, key, deadline);
        }
        match g.assign_queue(self, key) {
            // (A free queue the driver is still reading is taken at the next wait.)
            Some(q) if g.steered_queue(key) == Some(q) => self.wait_steered(g, key, q, interest, deadline),
            _ => self.follow(g, key, deadline),
        }
    }

    /// One leadership stint. Precondition: `g.can_lead()` and `key` is registered.
    fn lead<'a>(
        &'a self,
        mut g: MutexGuard<'a, Inner>,
        key: Key,
        interest: Interest,
        deadline: Option<std::time::Instant>,
    ) -> (MutexGuard<'a, Inner>, End) {
        let Some(tun) = g.tun.clone() else {
            return (g, End::Return);
        };
        if g.rx == RxOwner::Driver {
            self.arm_tun(false);
        }
        g.rx = RxOwner::Leader;
        g.leader = Some((key, interest));
        g.stats.leads += 1;
        let mut rx = g.leader_rx.take().unwrap_or_else(RxBuf::new);
        let start = g.waiters.get(&key).map(|w| w.seq(interest));
        let mut foreign = 0;
        // A previous leader may have left packets behind (see below): read before polling.
        let mut more = std::mem::take(&mut g.rx_maybe_more);
        let mut ahead = more;
        let mut first_only;
        // One clock read per wake-up: the deadline in engine time (rounded up).
        let t0 = std::time::Instant::now();
        let mut now = self.now_at(t0);
        let deadline =
            deadline.map(|d| now + d.saturating_duration_since(t0) + std::time::Duration::from_micros(1));
        // The previous burst's TUN writes, done after the lock is released (issue 12).
        let mut duty = TxDuty::none();
        let end = loop {
            let spin = g.spin_budget();
            drop(g);
            std::mem::replace(&mut duty, TxDuty::none()).write_unlocked();
            let (polled, spun, err) = self.next_burst(&tun, &mut rx, &mut more, spin, deadline, now);
            let hit = spun.is_some_and(|s| s.hit);
            first_only = polled && !hit;
            g = self.lock();
            if let Some(s) = spun {
                g.record_spin(s);
            }
            if !hit && (polled || (std::mem::take(&mut ahead) && !rx.is_empty())) {
                // Woken by the poll, or found what a previous leader left unread.
                g.stats.leader_wakeups += 1;
            }
            now = self.now();
            g.woke_other_conn = false;
            duty = g.feed_burst(self, now, &rx, Who::Leader, err);
            if g.stop {
                break End::Return;
            }
            match g.waiters.get(&key) {
                Some(w) if Some(w.seq(interest)) == start => {}
                _ => break End::Return,
            }
            if deadline.is_some_and(|d| now >= d) {
                break End::Return;
            }
            if g.woke_other_conn {
                foreign += 1;
                if foreign >= STEP_DOWN_AFTER {
                    break End::StepDown;
                }
            }
        };
        duty.write_locked();
        // We stopped after one packet without looking for more: tell the next leader.
        g.rx_maybe_more = more && first_only;
        g.leader = None;
        g.leader_rx = Some(rx);
        self.release_rx(&mut g, now, end == End::StepDown);
        (g, end)
    }

    /// Wait for and read the leader's next burst into `rx`: busy poll for `spin` (if
    /// any), else sleep in `ppoll` on the TUN and the kick. Woken by the poll, read one
    /// packet only, so that a request/response answers without first paying the read that
    /// finds the TUN empty (issue 12); `more` then says to read on without polling. A read
    /// that finds nothing, with no kick and no error, polls again without taking the lock.
    /// Returns (woken by the poll, how the busy poll went if one ran, error).
    fn next_burst(
        &self,
        tun: &crate::device::tun::Tun,
        rx: &mut RxBuf,
        more: &mut bool,
        mut spin: Option<std::time::Duration>,
        deadline: Option<Instant>,
        now: Instant,
    ) -> (bool, Option<Spin>, Option<io::Error>) {
        let mut spun = None;
        loop {
            let polled = !*more;
            let mut err = None;
            let ready = if *more {
                // The last burst filled up: read on without asking.
                Ready { a: true, a_err: false, b: false }
            } else if let Some(budget) = spin.take()
                && spun.insert(self.busy_poll(tun, rx, budget)).hit
            {
                // Busy polling read packets: no sleep, no wake-up.
                *more = false;
                return (true, spun, None);
            } else {
                let timeout = deadline.map(|d| d.saturating_since(now));
                match ppoll2(&*self.tun_dev, &self.kick, timeout) {
                    Ok(r) => r,
                    Err(e) => {
                        err = Some(io::Error::new(e.kind(), format!("TUN poll: {e}")));
                        Ready::default()
                    }
                }
            };
            if ready.b {
                self.kick.drain();
            }
            *more = false;
            rx.clear();
            if ready.a {
                let (m, e) = if polled { rx.read_up_to(tun, 1) } else { rx.read_batch(tun) };
                *more = m;
                err = err.or(e);
                if ready.a_err && rx.is_empty() && err.is_none() {
                    // An error the read does not report: do not spin on it.
                    err = Some(io::Error::other("TUN poll reports an error condition"));
                }
            }
            if !polled && rx.is_empty() && err.is_none() {
                // Read on and found the TUN empty: nothing new, poll.
                continue;
            }
            return (polled, spun, err);
        }
    }

    /// Busy polling (`InterfaceConfig::busy_poll`): read the TUN without sleeping until a
    /// packet comes, the kick rings, or `budget` passes. Returns whether packets were read
    /// into `rx` (else `rx` is empty and the caller sleeps in `ppoll` as usual), and
    /// whether the poll was *contended*: this thread got under 3/4 of the wall time as CPU
    /// time (it was preempted, so the poll took a CPU that other threads wanted).
    pub(crate) fn busy_poll(
        &self,
        tun: &crate::device::tun::Tun,
        rx: &mut RxBuf,
        budget: std::time::Duration,
    ) -> Spin {
        let start = std::time::Instant::now();
        let cpu0 = super::sys::thread_cpu_ns();
        let hit = loop {
            let (more, err) = rx.read_batch(tun);
            if !rx.is_empty() || more || err.is_some() {
                // An error is left for the ppoll/read path to report.
                break !rx.is_empty();
            }
            if start.elapsed() >= budget {
                break false;
            }
            std::hint::spin_loop();
        };
        let wall = start.elapsed().as_nanos() as u64;
        let cpu = super::sys::thread_cpu_ns().saturating_sub(cpu0);
        Spin { hit, contended: cpu < wall / 4 * 3 }
    }

    /// Give up reading the TUN: to the driver if other threads (or async tasks) wait on
    /// connections (or `to_driver`), else park it for the next blocking call.
    fn release_rx(&self, g: &mut Inner, now: Instant, to_driver: bool) {
        if g.stop || g.tun.is_none() {
            // The driver is on its way out; nothing to hand back.
            g.rx = RxOwner::Driver;
        } else if g.pump_running {
            // A tokio task reads the TUN (`pump.rs`): it gets it back.
            g.rx = RxOwner::Driver;
            g.hand_to_pump(self);
        } else if g.conn_followers > 0 || g.async_wakers > 0 || to_driver {
            // Others wait on connections: the driver reads for them from now on.
            self.arm_tun(true);
            g.rx = RxOwner::Driver;
            g.stats.handoffs += 1;
        } else {
            g.park(self, now);
        }
    }

    /// Called by socket calls that do not block. If the TUN has been parked for a while
    /// (its last leader is busy in its application, e.g. a sender that never fills its
    /// buffer), read one burst of what queued up (ACKs, data) on this thread, before the
    /// driver takes the TUN back and then wakes for every burst.
    /// Returns the guard and the time to use from now on.
    pub(crate) fn pump_parked<'a>(
        &'a self,
        g: MutexGuard<'a, Inner>,
        now: Instant,
    ) -> (MutexGuard<'a, Inner>, Instant) {
        self.pump_parked_after(g, now, PUMP_AFTER)
    }

    /// [`Shared::pump_parked`] once the TUN has been parked `after` (zero: at once, for a
    /// close, so that a FIN or RST already waiting is processed before ours is decided:
    /// a peer that already reset the connection then gets no FIN to answer).
    pub(crate) fn pump_parked_after<'a>(
        &'a self,
        mut g: MutexGuard<'a, Inner>,
        now: Instant,
        after: std::time::Duration,
    ) -> (MutexGuard<'a, Inner>, Instant) {
        let RxOwner::Parked { since } = g.rx else {
            return (g, now);
        };
        if g.stop || now < since + after {
            return (g, now);
        }
        let Some(tun) = g.tun.clone() else {
            return (g, now);
        };
        let mut rx = g.leader_rx.take().unwrap_or_else(RxBuf::new);
        // Keeps everybody else off the TUN while we read it without the lock.
        g.rx = RxOwner::Leader;
        drop(g);
        let (_, mut err) = rx.read_batch(&tun);
        let mut g = self.lock();
        let now = self.now();
        g.stats.pumps += 1;
        if !g.stop && !rx.is_empty() {
            let fed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                g.receive_batch(self, now, &rx, Who::App);
                g.after_op_by(self, now, Who::App).write_locked();
            }));
            if let Err(p) = fed {
                err =
                    err.or(Some(io::Error::other(format!("engine panicked: {}", panic_message(p.as_ref())))));
            }
        }
        if let Some(e) = err {
            g.fail(self, e);
        }
        g.leader_rx = Some(rx);
        self.release_rx(&mut g, now, false);
        (g, now)
    }
}

#[cfg(test)]
mod tests {
    use super::{Spin, SpinBackoff};

    const MISS: Spin = Spin { hit: false, contended: false };
    const HIT: Spin = Spin { hit: true, contended: false };
    const CONTENDED_HIT: Spin = Spin { hit: true, contended: true };

    /// Which of the next `n` chances poll, recording `outcome` for each poll.
    fn run(b: &mut SpinBackoff, n: usize, outcome: Spin) -> Vec<usize> {
        (0..n)
            .filter(|_| {
                let polls = b.take();
                if polls {
                    b.record(outcome);
                }
                polls
            })
            .collect()
    }

    #[test]
    fn misses_back_off_exponentially_up_to_255_skips() {
        let mut b = SpinBackoff::default();
        // Polls at 0, then after 1, 3, 7, 15 skips.
        assert_eq!(run(&mut b, 32, MISS), vec![0, 2, 6, 14, 30]);
        let mut b = SpinBackoff::default();
        let polls = run(&mut b, 5000, MISS);
        let gaps: Vec<usize> = polls.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(*gaps.iter().max().unwrap(), 256, "capped at 255 skipped chances");
        assert!(gaps.ends_with(&[256, 256]));
    }

    #[test]
    fn an_uncontended_hit_resets_and_a_contended_one_backs_off() {
        let mut b = SpinBackoff::default();
        run(&mut b, 64, MISS);
        b.record(HIT);
        assert_eq!(run(&mut b, 4, HIT), vec![0, 1, 2, 3], "polls every time while it pays");
        assert_eq!(run(&mut b, 8, CONTENDED_HIT), vec![0, 2, 6], "preempted polls back off like misses");
    }
}
