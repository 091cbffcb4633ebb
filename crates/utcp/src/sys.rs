//! Thin wrappers over the Linux readiness primitives the runtime sleeps on: an epoll
//! instance (the driver), eventfds (wake-ups), a timerfd (the engine's next deadline, so
//! that any thread can move it without waking the driver) and `ppoll` (a leading
//! application thread waiting on the TUN itself).
//!
//! All of it goes through `rustix`'s safe API: this module has no `unsafe`.

use rustix::event::{PollFd, PollFlags, Timespec, epoll};
use rustix::time::{ClockId, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// Nanoseconds on `CLOCK_MONOTONIC` (the clock `std::time::Instant` and the timerfd use).
#[inline]
pub(crate) fn mono_ns() -> u64 {
    clock_ns(ClockId::Monotonic)
}

/// CPU time this thread has used, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`): the adaptive
/// busy poll compares it with wall time to see whether it was preempted (`lead.rs`).
pub(crate) fn thread_cpu_ns() -> u64 {
    clock_ns(ClockId::ThreadCPUTime)
}

#[inline]
fn clock_ns(id: ClockId) -> u64 {
    let ts = rustix::time::clock_gettime(id);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn timespec(d: Duration) -> Timespec {
    Timespec { tv_sec: d.as_secs().min(i64::MAX as u64) as _, tv_nsec: d.subsec_nanos() as _ }
}

/// An epoll instance. Registrations are edge-triggered.
pub(crate) struct Epoll(OwnedFd);

/// One readiness report from [`Epoll::wait`]: the token the fd was registered with.
pub(crate) type EpollEvent = epoll::Event;

/// The token of an [`EpollEvent`].
pub(crate) fn token(ev: &EpollEvent) -> u64 {
    ev.data.u64()
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        Ok(Epoll(epoll::create(epoll::CreateFlags::CLOEXEC)?))
    }

    /// Watch `fd` for input, edge-triggered.
    pub(crate) fn add(&self, fd: impl AsFd, token: u64) -> io::Result<()> {
        let flags = epoll::EventFlags::IN | epoll::EventFlags::ET;
        Ok(epoll::add(&self.0, fd, epoll::EventData::new_u64(token), flags)?)
    }

    /// Turn input interest on or off for a registered `fd`. Turning it on reports the fd
    /// at once if it is already readable (the kernel re-checks readiness on modify).
    pub(crate) fn set_input(&self, fd: impl AsFd, token: u64, on: bool) -> io::Result<()> {
        let flags = if on { epoll::EventFlags::IN | epoll::EventFlags::ET } else { epoll::EventFlags::ET };
        Ok(epoll::modify(&self.0, fd, epoll::EventData::new_u64(token), flags)?)
    }

    /// Wait without a timeout; returns the number of events filled in (0 on `EINTR`).
    pub(crate) fn wait(&self, events: &mut Vec<EpollEvent>) -> io::Result<usize> {
        events.clear();
        match epoll::wait(&self.0, rustix::buffer::spare_capacity(events), None) {
            Ok(n) => Ok(n),
            Err(rustix::io::Errno::INTR) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

/// A nonblocking eventfd used as a doorbell.
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        use rustix::event::EventfdFlags;
        Ok(EventFd(rustix::event::eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?))
    }

    /// Ring the bell (never blocks; a full counter already means "rung").
    pub(crate) fn signal(&self) {
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    /// Reset the bell (EAGAIN when not rung is fine).
    pub(crate) fn drain(&self) {
        let _ = rustix::io::read(&self.0, &mut [0u8; 8]);
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// A nonblocking one-shot timer on `CLOCK_MONOTONIC`.
pub(crate) struct TimerFd(OwnedFd);

impl TimerFd {
    pub(crate) fn new() -> io::Result<TimerFd> {
        let flags = TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC;
        Ok(TimerFd(rustix::time::timerfd_create(TimerfdClockId::Monotonic, flags)?))
    }

    /// Fire once at `at_ns` on the monotonic clock (at once if that is past);
    /// `None` disarms.
    pub(crate) fn set(&self, at_ns: Option<u64>) {
        // An all-zero it_value disarms, so a deadline of exactly 0 becomes 1 ns.
        let value = at_ns.map_or(Duration::ZERO, |ns| Duration::from_nanos(ns.max(1)));
        let spec = Itimerspec { it_interval: timespec(Duration::ZERO), it_value: timespec(value) };
        // Cannot fail for a valid timerfd and a normalised value; the old value is not wanted.
        let _ = rustix::time::timerfd_settime(&self.0, TimerfdTimerFlags::ABSTIME, &spec);
    }

    /// Consume an expiry (EAGAIN when none is pending is fine).
    pub(crate) fn drain(&self) {
        let _ = rustix::io::read(&self.0, &mut [0u8; 8]);
    }
}

impl AsFd for TimerFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// What [`ppoll2`] saw.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ready {
    /// The first descriptor is readable, or in error (a read will say which).
    pub(crate) a: bool,
    /// The first descriptor reported an error or hang-up.
    pub(crate) a_err: bool,
    /// The second descriptor is readable.
    pub(crate) b: bool,
}

/// Wait until `a` or `b` is readable, or `timeout` passes (`None`: no timeout).
/// `EINTR` returns with nothing ready.
pub(crate) fn ppoll2(a: impl AsFd, b: impl AsFd, timeout: Option<Duration>) -> io::Result<Ready> {
    let mut fds = [PollFd::new(&a, PollFlags::IN), PollFd::new(&b, PollFlags::IN)];
    let ts = timeout.map(timespec);
    match rustix::event::poll(&mut fds, ts.as_ref()) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => return Ok(Ready::default()),
        Err(e) => return Err(e.into()),
    }
    let err = PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL;
    let bad = PollFlags::IN | err;
    let (ra, rb) = (fds[0].revents(), fds[1].revents());
    Ok(Ready { a: ra.intersects(bad), a_err: ra.intersects(err), b: rb.intersects(bad) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_rings_and_drains_through_ppoll() {
        let (a, b) = (EventFd::new().unwrap(), EventFd::new().unwrap());
        let r = ppoll2(&a, &b, Some(Duration::ZERO)).unwrap();
        assert!(!r.a && !r.b);
        b.signal();
        let r = ppoll2(&a, &b, Some(Duration::ZERO)).unwrap();
        assert!(!r.a && r.b && !r.a_err);
        b.drain();
        assert!(!ppoll2(&a, &b, Some(Duration::ZERO)).unwrap().b);
    }

    #[test]
    fn epoll_reports_the_timer_token_once_armed_in_the_past() {
        let ep = Epoll::new().unwrap();
        let t = TimerFd::new().unwrap();
        ep.add(&t, 7).unwrap();
        t.set(Some(mono_ns().saturating_sub(1)));
        let mut evs = Vec::with_capacity(4);
        let n = ep.wait(&mut evs).unwrap();
        assert_eq!(n, 1);
        assert_eq!(token(&evs[0]), 7);
        t.drain();
    }
}
