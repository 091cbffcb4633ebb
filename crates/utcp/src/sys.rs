//! Thin wrappers over the Linux readiness primitives the runtime sleeps on: an epoll
//! instance (the driver), eventfds (wake-ups), a timerfd (the engine's next deadline, so
//! that any thread can move it without waking the driver) and `ppoll` (a leading
//! application thread waiting on the TUN itself).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// Nanoseconds on `CLOCK_MONOTONIC` (the clock `std::time::Instant` and the timerfd use).
#[inline]
pub(crate) fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// An epoll instance. Registrations are edge-triggered.
pub(crate) struct Epoll(OwnedFd);

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; the result is a fresh descriptor we own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is valid and owned by nobody else.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: valid descriptors and a valid event struct.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut ev) }).map(|_| ())
    }

    /// Watch `fd` for input, edge-triggered.
    pub(crate) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, (libc::EPOLLIN | libc::EPOLLET) as u32)
    }

    /// Turn input interest on or off for a registered `fd`. Turning it on reports the fd
    /// at once if it is already readable (the kernel re-checks readiness on modify).
    pub(crate) fn set_input(&self, fd: RawFd, token: u64, on: bool) -> io::Result<()> {
        let events = if on { libc::EPOLLIN | libc::EPOLLET } else { libc::EPOLLET };
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, events as u32)
    }

    /// Wait without a timeout; returns the number of events filled in (0 on `EINTR`).
    pub(crate) fn wait(&self, events: &mut [libc::epoll_event]) -> io::Result<usize> {
        // SAFETY: `events` is a valid, writable buffer of the given length.
        let n = unsafe {
            libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), events.len() as libc::c_int, -1)
        };
        match cvt(n) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// A nonblocking eventfd used as a doorbell.
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: plain syscall; the result is a fresh descriptor we own.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` is valid and owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Ring the bell (never blocks; a full counter already means "rung").
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a valid u64.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Reset the bell.
    pub(crate) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes into a valid u64; EAGAIN when not rung is fine.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A nonblocking one-shot timer on `CLOCK_MONOTONIC`.
pub(crate) struct TimerFd(OwnedFd);

impl TimerFd {
    pub(crate) fn new() -> io::Result<TimerFd> {
        // SAFETY: plain syscall; the result is a fresh descriptor we own.
        let fd = cvt(unsafe {
            libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
        })?;
        // SAFETY: `fd` is valid and owned by nobody else.
        Ok(TimerFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Fire once at `at_ns` on the monotonic clock (at once if that is past);
    /// `None` disarms.
    pub(crate) fn set(&self, at_ns: Option<u64>) {
        // An all-zero it_value disarms, so a deadline of exactly 0 becomes 1 ns.
        let value = at_ns.map_or(Duration::ZERO, |ns| Duration::from_nanos(ns.max(1)));
        let spec = libc::itimerspec { it_interval: timespec(Duration::ZERO), it_value: timespec(value) };
        // SAFETY: a valid timerfd and a valid itimerspec; the old value is not wanted.
        unsafe {
            libc::timerfd_settime(self.0.as_raw_fd(), libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut())
        };
    }

    /// Consume an expiry (EAGAIN when none is pending is fine).
    pub(crate) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes into a valid u64.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
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
pub(crate) fn ppoll2(a: RawFd, b: RawFd, timeout: Option<Duration>) -> io::Result<Ready> {
    let mut fds = [
        libc::pollfd { fd: a, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: b, events: libc::POLLIN, revents: 0 },
    ];
    let ts = timeout.map(timespec);
    let tp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: two valid pollfd entries, a valid or null timespec, no signal mask change.
    let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, tp, std::ptr::null()) };
    match cvt(n) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Ready::default()),
        Err(e) => return Err(e),
    }
    let bad = libc::POLLIN | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
    let err = libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
    Ok(Ready { a: fds[0].revents & bad != 0, a_err: fds[0].revents & err != 0, b: fds[1].revents & bad != 0 })
}
