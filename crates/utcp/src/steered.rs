//! Steered waits (issue 12, docs/latency.md section 7): a thread blocked on a connection
//! while another thread reads the TUN sleeps on that connection's own TUN queue.
//!
//! With one queue, the thread that reads the TUN (a leader or the driver) must wake the
//! thread that waits on a packet's connection: two cross-CPU wake-ups per request where
//! the kernel's own sockets need one. With `InterfaceConfig::steer_queues`, the TUN is
//! multi-queue and an eBPF program (`device/steer.rs`) sends the packets of every flow in
//! its map to that flow's queue, everything else to queue 0:
//!
//! - A thread about to *follow* (someone else leads) on a connection without a queue,
//!   while other threads wait on connections, takes a free queue, and the connection's flow enters the map (one `bpf()` call).
//!   From then on the connection keeps its queue until its socket is dropped (the flow
//!   leaves the map), so a request/response loop pays no syscall per wait for it.
//! - A thread that waits on a connection with a queue polls that queue and the queue's
//!   *bell* (an eventfd rung by any thread that processed an event for the connection,
//!   e.g. from a packet that came on queue 0), reads, feeds the engine itself, and
//!   returns when an event concerns it: the kernel's packet wakes the thread that
//!   consumes it.
//! - When the thread goes back to its application the queue is *parked*, like the
//!   single TUN in `lead.rs`: the next wait takes it without a syscall, and the driver
//!   takes it over (arms it in its epoll) if it stays parked `HANDBACK`, so packets of a
//!   connection whose thread stays away are still processed within milliseconds.
//! - Queues are opened by the driver thread (which lives in the TUN's namespace) when a
//!   thread found none free, a few at a time, up to the configured maximum; none at
//!   setup, so that the kernel runs the program only once steering is in use. Threads
//!   that find none follow as before (`LinkStats::steer_no_queue`).
//!
//! Only a thread that waits while other threads wait on *connections* steers; one
//! connection thread among threads blocked in `accept` follows and gets leadership, so
//! rr, connect and bulk keep the leader's path and its busy poll (`lead.rs`,
//! `follow_or_steer`).

use super::device::steer::{FlowKey, Steering};
use super::device::tun::Tun;
use super::driver::{HANDBACK, Inner, Interest, Key, RxBuf, Shared, Who};
use super::sys::{Epoll, EventFd, Ready, ppoll2};
use super::tx::TxDuty;
use crate::time::Instant;
use std::io;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

/// Epoll token of extra queue `i` in the driver's epoll: `QUEUE_TOKEN + i`.
pub(crate) const QUEUE_TOKEN: u64 = 16;
/// Queues the driver opens at once when a thread found none free.
const OPEN_BATCH: usize = 8;
/// The driver looks at parked queues at most this often.
const PARKED_CHECK: Duration = Duration::from_millis(4);

/// An extra queue's descriptors, used without the interface lock.
pub(crate) struct QueueIo {
    pub(crate) tun: Tun,
    /// Rung when another thread processed an event for the waiting thread's connection.
    bell: EventFd,
}

/// Who reads an extra queue (like `RxOwner` for queue 0).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum QueueOwner {
    /// Armed in the driver's epoll.
    Driver,
    /// A thread blocked on the queue's connection polls it.
    Waiting,
    /// Its thread went back to its application; disarmed, taken over by the driver
    /// `HANDBACK` after `since`.
    Parked { since: Instant },
}

pub(crate) struct SteerQueue {
    pub(crate) io: Arc<QueueIo>,
    pub(crate) owner: QueueOwner,
    /// The map key of the connection steered here.
    conn: Option<FlowKey>,
    /// The driver is reading it (without the lock).
    pub(crate) driver_reading: bool,
}

/// The interface's steering state (under the interface lock).
pub(crate) struct Steer {
    prog: Steering,
    pub(crate) queues: Vec<SteerQueue>,
    /// Queues with no connection (any owner but `Waiting`).
    free: Vec<u16>,
    max: usize,
    /// A thread found no free queue: the driver opens more.
    want_more: bool,
    /// Receive arenas of steered waits, reused.
    rx_pool: Vec<RxBuf>,
}

impl Steer {
    /// Load and attach the steering program to `tun` (opened multi-queue), for at most
    /// `max` extra queues (the TUN allows 256 in all). No queue is opened yet: while the
    /// TUN has one queue the kernel does not run the program at all (it picks queue 0
    /// without asking), so an interface that never sees threads crowd on connections
    /// pays nothing per packet (`utcp bench --systems utcp,utcp-nosteer`: connect was 3 %
    /// slower with 8 queues open from the start).
    pub(crate) fn new(tun: &Tun, max: u16) -> io::Result<Steer> {
        let max = usize::from(max.min(255));
        let prog = Steering::load(max as u32)?;
        prog.attach(tun)?;
        Ok(Steer { prog, queues: Vec::new(), free: Vec::new(), max, want_more: false, rx_pool: Vec::new() })
    }

    /// Open up to `OPEN_BATCH` more queues (within `max`), armed in the driver's epoll
    /// and free. Must run in the TUN's network namespace (the driver thread). Returns how
    /// many it opened.
    pub(crate) fn open_queues(&mut self, tun: &Tun, epoll: &Epoll) -> u64 {
        let mut opened = 0;
        for _ in 0..OPEN_BATCH.min(self.max - self.queues.len()) {
            let q = self.queues.len() as u16;
            let Ok(tun) = tun.clone_queue() else { break };
            let Ok(bell) = EventFd::new() else { break };
            if epoll.add(&tun, QUEUE_TOKEN + u64::from(q)).is_err() {
                break;
            }
            let io = Arc::new(QueueIo { tun, bell });
            self.queues.push(SteerQueue { io, owner: QueueOwner::Driver, conn: None, driver_reading: false });
            self.free.push(q);
            opened += 1;
        }
        opened
    }

    /// Ring every waiting thread's bell (the interface stops or fails).
    pub(crate) fn ring_all(&self) {
        for sq in self.queues.iter().filter(|sq| sq.owner == QueueOwner::Waiting) {
            sq.io.bell.signal();
        }
    }
}

impl Shared {
    /// Turn the driver's interest in extra queue `q` on or off.
    fn arm_queue(&self, q: u16, tun: &Tun, on: bool) {
        let _ = self.epoll.set_input(tun, QUEUE_TOKEN + u64::from(q), on);
    }

    /// Block on `key`'s own queue (see the module docs) until an event may let the
    /// caller proceed, the deadline passes, or the interface stops.
    /// Precondition: `g.steered_queue(key) == Some(q)`.
    pub(crate) fn wait_steered<'a>(
        &'a self,
        mut g: MutexGuard<'a, Inner>,
        key: Key,
        q: u16,
        interest: Interest,
        deadline: Option<std::time::Instant>,
    ) -> io::Result<MutexGuard<'a, Inner>> {
        let Some(w) = g.waiters.get_mut(&key) else {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        };
        w.steered = true;
        let start = w.seq(interest);
        let (io, mut rx) = {
            let st = g.steer.as_mut().expect("a steered queue implies steering");
            let sq = &mut st.queues[usize::from(q)];
            if sq.owner == QueueOwner::Driver {
                self.arm_queue(q, &sq.io.tun, false);
            }
            sq.owner = QueueOwner::Waiting;
            (sq.io.clone(), st.rx_pool.pop().unwrap_or_else(RxBuf::new))
        };
        // Alone among connection threads (the others left since the queue was given):
        // poll the queue before sleeping, as a leader would (`BusyPoll`).
        let mut spin = g.spin_budget();
        g.conn_followers += 1;
        g.stats.steered_waits += 1;
        let t0 = std::time::Instant::now();
        let mut now = self.now_at(t0);
        let deadline =
            deadline.map(|d| now + d.saturating_duration_since(t0) + std::time::Duration::from_micros(1));
        let mut duty = TxDuty::none();
        let mut more = false;
        loop {
            drop(g);
            std::mem::replace(&mut duty, TxDuty::none()).write_unlocked();
            let spun = spin.take().map(|budget| self.busy_poll(&io.tun, &mut rx, budget));
            let (polled, err) = match spun {
                // Read by the busy poll: no wake-up to count.
                Some(s) if s.hit => (false, None),
                _ => next_burst(&io, &mut rx, &mut more, deadline.map(|d| d.saturating_since(now))),
            };
            g = self.lock();
            now = self.now();
            if let Some(s) = spun {
                g.record_spin(s);
            }
            if polled && !rx.is_empty() {
                g.stats.steered_wakeups += 1;
            }
            duty = g.feed_burst(self, now, &rx, Who::Steered(key), err);
            let moved = g.waiters.get(&key).is_none_or(|w| w.seq(interest) != start);
            if g.stop || moved || deadline.is_some_and(|d| now >= d) {
                break;
            }
        }
        duty.write_locked();
        g.end_steered_wait(self, key, q, rx, now);
        Ok(g)
    }
}

/// Wait for and read the next burst of a steered queue: after a poll, one packet (a
/// request then answers without first paying a read that finds the queue empty), then
/// on without polling while reads fill up. Returns (woken by the poll, error).
fn next_burst(
    io: &QueueIo,
    rx: &mut RxBuf,
    more: &mut bool,
    timeout: Option<Duration>,
) -> (bool, Option<io::Error>) {
    loop {
        let polled = !*more;
        let ready = if polled {
            match ppoll2(&io.tun, &io.bell, timeout) {
                Ok(r) => r,
                Err(e) => return (true, Some(io::Error::new(e.kind(), format!("TUN queue poll: {e}")))),
            }
        } else {
            Ready { a: true, a_err: false, b: false }
        };
        if ready.b {
            io.bell.drain();
        }
        rx.clear();
        *more = false;
        let mut err = None;
        if ready.a {
            let (m, e) = if polled { rx.read_up_to(&io.tun, 1) } else { rx.read_batch(&io.tun) };
            *more = m;
            err = e;
            if ready.a_err && rx.is_empty() && err.is_none() {
                err = Some(io::Error::other("TUN queue poll reports an error condition"));
            }
        }
        if !polled && rx.is_empty() && err.is_none() {
            continue;
        }
        return (polled, err);
    }
}

impl Inner {
    /// The queue a wait on `key` may use now: the connection has one and nobody else
    /// reads it.
    pub(crate) fn steered_queue(&self, key: Key) -> Option<u16> {
        let q = self.waiters.get(&key)?.queue?;
        let sq = &self.steer.as_ref()?.queues[usize::from(q)];
        (sq.owner != QueueOwner::Waiting && !sq.driver_reading).then_some(q)
    }

    /// Give `key`'s connection a free queue and steer its flow there. `None` (and the
    /// caller follows as before) without steering, for a listener, without a free queue
    /// (the driver is asked to open more) or if the kernel refuses the map update.
    pub(crate) fn assign_queue(&mut self, shared: &Shared, key: Key) -> Option<u16> {
        let Key::Conn(c) = key else { return None };
        let st = self.steer.as_mut()?;
        let w = self.waiters.get_mut(&key)?;
        if w.queue.is_some() || self.stop {
            return None;
        }
        let (Ok(local), Ok(remote)) = (self.stack.local_addr(c), self.stack.peer_addr(c)) else {
            return None;
        };
        let Some(q) = st.free.pop() else {
            if st.queues.len() < st.max && !st.want_more {
                st.want_more = true;
                shared.wake_driver();
            }
            self.stats.steer_no_queue += 1;
            return None;
        };
        let fk = FlowKey::inbound(local, remote);
        if st.prog.set(&fk, u32::from(q) + 1).is_err() {
            st.free.push(q);
            self.stats.steer_map_errors += 1;
            return None;
        }
        st.queues[usize::from(q)].conn = Some(fk);
        w.queue = Some(q);
        self.stats.steer_assigned += 1;
        Some(q)
    }

    /// The socket behind `key` is gone: its flow leaves the map and its queue is free
    /// (whatever is still queued there is read by the queue's next reader).
    pub(crate) fn release_queue(&mut self, q: u16) {
        let Some(st) = self.steer.as_mut() else { return };
        let sq = &mut st.queues[usize::from(q)];
        if let Some(fk) = sq.conn.take() {
            if st.prog.remove(&fk).is_err() {
                self.stats.steer_map_errors += 1;
            }
            if sq.owner != QueueOwner::Waiting {
                st.free.push(q);
            }
        }
    }

    fn end_steered_wait(&mut self, shared: &Shared, key: Key, q: u16, rx: RxBuf, now: Instant) {
        self.conn_followers = self.conn_followers.saturating_sub(1);
        if let Some(w) = self.waiters.get_mut(&key) {
            w.steered = false;
        }
        let Some(st) = self.steer.as_mut() else { return };
        st.rx_pool.push(rx);
        let sq = &mut st.queues[usize::from(q)];
        sq.owner = QueueOwner::Parked { since: now };
        if sq.conn.is_none() {
            // Released while we waited.
            st.free.push(q);
        }
        self.arm_earlier(shared, now + PARKED_CHECK);
    }

    /// Ring `bell` (`Waiter::bell`, the queue of the thread waiting on `key`), unless
    /// `who` runs the engine is that thread itself.
    pub(crate) fn ring_steered(&mut self, key: Key, bell: Option<u16>, who: Who) -> bool {
        let (Some(q), Some(st)) = (bell, self.steer.as_ref()) else { return false };
        if who == Who::Steered(key) {
            return false;
        }
        st.queues[usize::from(q)].io.bell.signal();
        self.stats.steered_bells += 1;
        true
    }

    /// Driver housekeeping: open queues a thread asked for, take over queues parked too
    /// long. Returns when to look at parked queues next.
    pub(crate) fn steer_housekeeping(&mut self, shared: &Shared, now: Instant) -> Option<Instant> {
        let st = self.steer.as_mut()?;
        if std::mem::take(&mut st.want_more) {
            self.stats.steer_queues += st.open_queues(&shared.tun_dev, &shared.epoll);
        }
        let mut next: Option<Instant> = None;
        for (i, sq) in st.queues.iter_mut().enumerate() {
            if let QueueOwner::Parked { since } = sq.owner {
                if now >= since + HANDBACK {
                    sq.owner = QueueOwner::Driver;
                    shared.arm_queue(i as u16, &sq.io.tun, true);
                    self.stats.steer_adoptions += 1;
                } else {
                    let at = since + HANDBACK;
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
        }
        next.map(|n| n.max(now + PARKED_CHECK))
    }

    /// The driver's claim on extra queue `q` for a read (`None`: not its queue now).
    pub(crate) fn driver_claims_queue(&mut self, q: u16) -> Option<Arc<QueueIo>> {
        let sq = self.steer.as_mut()?.queues.get_mut(usize::from(q))?;
        if sq.owner != QueueOwner::Driver || sq.driver_reading {
            return None;
        }
        sq.driver_reading = true;
        Some(sq.io.clone())
    }

    /// The driver finished reading extra queue `q`.
    pub(crate) fn driver_done_with_queue(&mut self, q: u16) {
        if let Some(sq) = self.steer.as_mut().and_then(|s| s.queues.get_mut(usize::from(q))) {
            sq.driver_reading = false;
        }
    }
}
