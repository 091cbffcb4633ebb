//! The driver thread and the state it shares with application threads.
//!
//! Locking: one mutex ([`Shared::lock`]) guards the engine and everything that goes with
//! it. Whoever reads the TUN reads a burst of packets *without* the lock (into a reused
//! arena), then takes the lock once to feed the whole burst to the engine, queue what
//! the engine produced for the TUN, and signal the sockets the engine's events concern.
//! The queued packets are written after the lock is released (`tx.rs`, issue 12), so a
//! TUN write, which runs the kernel's receive path inside the syscall, holds nobody up.
//!
//! Who reads the TUN ([`RxOwner`]): the driver thread, or an application thread that
//! blocks in a socket call and polls the TUN itself (the "leader", see `lead.rs`). Only
//! one of them at a time: the TUN is armed in the driver's epoll only while the driver
//! owns it, so a packet wakes exactly one thread.
//!
//! Timers: the engine's next deadline is programmed into a timerfd that sits in the
//! driver's epoll. Any thread may move it earlier with one `timerfd_settime` and no
//! wake-up; the driver fires due timers whoever owns the TUN.

use super::impair::{Impairer, Impairment};
use super::sys::{Epoll, EventFd, TimerFd, mono_ns, token};
use super::tap::{Direction, Tap, Taps};
use super::tx::{TxArena, TxDuty, TxQueue};
use super::{InterfaceConfig, LinkStats};
use crate::device::tun::{MAX_PACKET, Tun, TunConfig};
use crate::engine::{CloseReason, ConnId, Event, ListenerId, Stack};
use crate::time::Instant;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::Duration;

const TUN_TOKEN: u64 = 0;
const WAKE_TOKEN: u64 = 1;
const TIMER_TOKEN: u64 = 2;
/// Packets read per lock acquisition, at most.
const RX_BATCH: usize = 128;
/// Receive arena: a read needs `MAX_PACKET` free bytes, so this holds many MTU-sized
/// packets (about 130 at MTU 1500) and at least one of 64 KiB.
const RX_ARENA: usize = 256 * 1024;
/// TUN offload (issue 12): most TCP segments glued into one super-segment (64 KiB / MSS
/// is fewer; the engine also stops at 64 KiB).
const GSO_MAX_SEGS: usize = 64;
/// How long the TUN may stay parked with a leader that went back to its application
/// before the driver takes it back.
pub(crate) const HANDBACK: Duration = Duration::from_millis(1);
/// The driver checks a parked TUN `HANDBACK` after parking at first; every check that
/// finds an application thread back in charge doubles the check interval up to this, so
/// that a tight request/response or bulk loop wakes the driver ~125 times a second, not
/// 1000. The longest a packet nobody waits for can sit in the TUN queue is this.
const HANDBACK_CHECK_MAX: Duration = Duration::from_millis(8);
/// A deadline the engine did not consume when fired is retried after this, not at once.
const RETRY_UNCONSUMED: Duration = Duration::from_millis(1);

/// A cheap hasher for [`Key`]s: they are handed out by the engine, not chosen by peers,
/// so flooding resistance (std's SipHash) buys nothing on this per-event path.
#[derive(Clone, Copy, Default)]
pub(crate) struct KeyHasher(u64);

impl KeyHasher {
    #[inline]
    fn mix(&mut self, v: u64) {
        // Rotate-xor-multiply by an odd constant (2^64 / golden ratio): the high bits,
        // which the table uses for its control bytes, depend on every input bit.
        self.0 = (self.0.rotate_left(23) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.mix(b as u64);
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.mix(v as u64);
    }
    fn write_u32(&mut self, v: u32) {
        self.mix(v as u64);
    }
    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }
    fn write_usize(&mut self, v: usize) {
        self.mix(v as u64);
    }
    fn write_isize(&mut self, v: isize) {
        self.mix(v as u64);
    }
}

type KeyMap<V> = HashMap<Key, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// What a blocked socket waits on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Key {
    Conn(ConnId),
    Listener(ListenerId),
}

/// Which events end a wait: a reader does not care that send space opened up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Interest {
    Read,
    Write,
    Any,
}

/// A socket's wait slot: its condvar, how many threads sleep on it (so that events for
/// sockets nobody waits on cost no futex syscall), event sequence numbers (so that a
/// leading thread knows an event concerned it) and the close reason once known.
pub(crate) struct Waiter {
    cv: Arc<Condvar>,
    waiting: u32,
    /// Bumped on every event that may let a blocked read (resp. write) proceed.
    read_seq: u32,
    write_seq: u32,
    pub(crate) closed: Option<CloseReason>,
    /// The async task waiting to read (or accept), woken with `read_seq` (tokio API).
    read_waker: Option<Waker>,
    /// The async task waiting to write, woken with `write_seq`.
    write_waker: Option<Waker>,
    /// The connection's own TUN queue (flow steering, `steered.rs`), once it has one.
    pub(crate) queue: Option<u16>,
    /// A thread waits on that queue (it is woken by the queue's bell, not the condvar).
    pub(crate) steered: bool,
}

impl Waiter {
    /// Wake the async tasks waiting for `read` / `write` readiness; returns how many.
    fn wake(&mut self, read: bool, write: bool) -> u32 {
        let mut n = 0;
        for (on, w) in [(read, &mut self.read_waker), (write, &mut self.write_waker)] {
            if on && let Some(w) = w.take() {
                w.wake();
                n += 1;
            }
        }
        n
    }

    /// The queue whose bell wakes the thread waiting on this socket, if one waits there.
    pub(crate) fn bell(&self) -> Option<u16> {
        self.queue.filter(|_| self.steered)
    }

    pub(crate) fn seq(&self, i: Interest) -> (u32, u32) {
        match i {
            Interest::Read => (self.read_seq, 0),
            Interest::Write => (0, self.write_seq),
            Interest::Any => (self.read_seq, self.write_seq),
        }
    }
}

/// Who reads the TUN.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RxOwner {
    /// The driver thread: the TUN is armed in its epoll.
    Driver,
    /// An application thread blocked in a socket call polls the TUN itself.
    Leader,
    /// The last leader went back to its application and no other thread waits on a
    /// connection. The TUN stays disarmed in the driver's epoll, so the next blocking call
    /// takes over without a syscall; the driver takes it back `HANDBACK` after `since`.
    Parked { since: Instant },
    /// A tokio task reads the TUN through the runtime's reactor (`utcp::tokio::drive`,
    /// `pump.rs`): a packet wakes that task, which runs the engine and wakes the waiting
    /// tasks on its own worker, with no hop through the driver thread. Blocking calls
    /// follow (condvar) while it owns the TUN.
    Async,
}

/// A reusable receive arena: packets back to back, with their (offset, length).
pub(crate) struct RxBuf {
    arena: Box<[u8]>,
    /// (offset, length, the kernel vouches for the TCP checksum: TUN offload).
    lens: Vec<(usize, usize, bool)>,
    /// GSO super-segments among them (TUN offload).
    gso: u64,
}

impl RxBuf {
    pub(crate) fn new() -> RxBuf {
        RxBuf { arena: vec![0u8; RX_ARENA].into_boxed_slice(), lens: Vec::with_capacity(RX_BATCH), gso: 0 }
    }

    pub(crate) fn clear(&mut self) {
        self.lens.clear();
        self.gso = 0;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Read up to a batch of packets (no lock needed). Returns whether the TUN may hold
    /// more (the batch filled up) and a fatal read error, if any; packets read before an
    /// error are kept.
    pub(crate) fn read_batch(&mut self, tun: &Tun) -> (bool, Option<io::Error>) {
        self.read_up_to(tun, RX_BATCH)
    }

    /// `read_batch` of at most `max` packets (the batch "fills up" at `max`).
    pub(crate) fn read_up_to(&mut self, tun: &Tun, max: usize) -> (bool, Option<io::Error>) {
        self.clear();
        let mut off = 0;
        while self.lens.len() < max.min(RX_BATCH) && off + MAX_PACKET <= self.arena.len() {
            match tun.recv_info(&mut self.arena[off..off + MAX_PACKET]) {
                Ok((n, info)) => {
                    self.lens.push((off, n, info.checksum_ok));
                    self.gso += info.gso as u64;
                    off += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (false, None),
                Err(e) => return (false, Some(io::Error::new(e.kind(), format!("TUN read: {e}")))),
            }
        }
        (true, None)
    }
}

/// Which kind of thread runs an engine call (decides who must be told about events).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Who {
    /// An application thread in an ordinary socket call.
    App,
    /// The application thread currently leading (polling the TUN).
    Leader,
    /// A thread in a steered wait on this connection's own queue (`steered.rs`): its
    /// own events need no bell.
    Steered(Key),
    Driver,
}

/// Everything the interface lock protects.
pub(crate) struct Inner {
    pub(crate) stack: Stack,
    pub(crate) tun: Option<Arc<Tun>>,
    /// The impairment hook's packet buffer.
    txbuf: Box<[u8]>,
    /// The engine's output under the lock, handed to `Shared::tx` before the lock goes
    /// (issue 12, `tx.rs`).
    txq: TxArena,
    tap: Option<Taps>,
    /// (receive direction, transmit direction)
    impair: Option<(Impairer, Impairer)>,
    pub(crate) waiters: KeyMap<Waiter>,
    down: Option<(io::ErrorKind, String)>,
    pub(crate) stop: bool,
    pub(crate) rx: RxOwner,
    /// The driver is reading a burst (without the lock); nobody may take the TUN meanwhile.
    driver_reading: bool,
    /// The leading thread's socket and what it waits for.
    pub(crate) leader: Option<(Key, Interest)>,
    /// The leader's receive arena while nobody leads.
    pub(crate) leader_rx: Option<RxBuf>,
    /// Threads asleep on a connection's condvar (they need someone to read the TUN).
    pub(crate) conn_followers: u32,
    /// Async tasks with a registered waker: like `conn_followers`, they need the driver
    /// (or a leader) to keep reading the TUN.
    pub(crate) async_wakers: u32,
    /// Set when a dispatch woke a thread blocked on a connection other than the leader's.
    pub(crate) woke_other_conn: bool,
    /// The last leader read one packet after its poll and returned without reading on:
    /// the TUN may hold more, so the next leader reads before it polls (issue 12).
    pub(crate) rx_maybe_more: bool,
    /// What the timerfd is armed to (it may already have fired).
    timer_at: Option<Instant>,
    /// Current interval of the driver's checks of a parked TUN.
    handback_check: Duration,
    /// A tokio task (`pump.rs`) is alive and wants the TUN.
    pub(crate) pump_running: bool,
    /// `InterfaceConfig::busy_poll` (issue 12) and its adaptive state (`lead.rs`).
    pub(crate) busy_poll: super::BusyPoll,
    pub(crate) spin: super::lead::SpinBackoff,
    /// Flow steering (issue 12, `steered.rs`), if the TUN is multi-queue.
    pub(crate) steer: Option<super::steered::Steer>,
    pub(crate) stats: LinkStats,
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Packets on their way to the TUN, written outside the interface lock (`tx.rs`).
    pub(crate) tx: TxQueue,
    pub(crate) epoll: Epoll,
    /// Wakes the driver (stop, fatal error).
    waker: EventFd,
    /// The engine's next deadline.
    timer: TimerFd,
    /// Wakes the leading application thread.
    pub(crate) kick: EventFd,
    /// Rings the tokio task reading the TUN (`pump.rs`): the interface stops, or the TUN
    /// was handed to it.
    pub(crate) pump_bell: EventFd,
    /// The device, for readiness registrations (the driver thread holds another handle).
    pub(crate) tun_dev: Arc<Tun>,
    /// `CLOCK_MONOTONIC` nanoseconds at engine time zero.
    epoch_ns: u64,
    /// The same moment as `epoch_ns` (taken just before it, so timers never fire early).
    epoch: std::time::Instant,
    pub(crate) addr: Ipv4Addr,
    /// IPv6 (issue 13): the stack's IPv6 address, if any.
    pub(crate) addr6: Option<std::net::Ipv6Addr>,
}

impl Shared {
    /// The interface lock. A panic while it was held (an engine bug) poisons it; the
    /// driver then records the interface as down, so we keep using the data.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The monotonic clock mapped onto engine time (microseconds since interface start).
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        self.now_at(std::time::Instant::now())
    }

    /// Engine time at `t`, a reading the caller already took (one clock read serves the
    /// socket timeouts and the engine, issue 12). Both clocks are `CLOCK_MONOTONIC`.
    #[inline]
    pub(crate) fn now_at(&self, t: std::time::Instant) -> Instant {
        Instant::from_micros(t.saturating_duration_since(self.epoch).as_micros() as u64)
    }

    fn mono_of(&self, t: Instant) -> u64 {
        self.epoch_ns.saturating_add(t.micros().saturating_mul(1000))
    }

    /// Wake the driver thread (it re-checks stop, timers and write errors).
    pub(crate) fn wake_driver(&self) {
        self.waker.signal();
    }

    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        self.waker.signal();
        self.kick.signal();
        self.pump_bell.signal();
    }

    /// After the driver thread has exited: close the TUN and fail every blocked call.
    pub(crate) fn closed_after_stop(&self) {
        // The async reader holds the TUN open: give it a moment to see the stop and exit,
        // so the device is gone when `Interface::drop` returns (bounded: its runtime may
        // be blocked or gone, in which case its task was dropped already).
        for _ in 0..200 {
            if !self.lock().pump_running {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut g = self.lock();
        g.tun = None;
        if g.down.is_none() {
            g.down = Some((io::ErrorKind::NotConnected, "interface closed".into()));
        }
        g.notify_all(self);
        if let Some(t) = g.tap.as_mut() {
            t.finish();
        }
    }

    /// Register a wait slot for a new socket.
    pub(crate) fn register(&self, g: &mut Inner, key: Key) {
        g.waiters.insert(
            key,
            Waiter {
                cv: Arc::new(Condvar::new()),
                waiting: 0,
                read_seq: 0,
                write_seq: 0,
                closed: None,
                read_waker: None,
                write_waker: None,
                queue: None,
                steered: false,
            },
        );
    }

    /// Sleep on the socket's condvar until it is signalled or `deadline` passes.
    pub(crate) fn follow<'a>(
        &'a self,
        mut g: MutexGuard<'a, Inner>,
        key: Key,
        deadline: Option<std::time::Instant>,
    ) -> io::Result<MutexGuard<'a, Inner>> {
        let cv = match g.waiters.get_mut(&key) {
            Some(w) => {
                w.waiting += 1;
                w.cv.clone()
            }
            None => return Err(io::Error::from(io::ErrorKind::NotConnected)),
        };
        let conn = matches!(key, Key::Conn(_));
        if conn {
            g.conn_followers += 1;
        }
        let mut g = match deadline {
            None => cv.wait(g).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                cv.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0
            }
        };
        if conn {
            g.conn_followers = g.conn_followers.saturating_sub(1);
        }
        if let Some(w) = g.waiters.get_mut(&key) {
            w.waiting = w.waiting.saturating_sub(1);
        }
        Ok(g)
    }

    /// Wake every thread blocked on `key` (e.g. after a local shutdown).
    pub(crate) fn notify(&self, g: &mut Inner, key: Key) {
        if let Some(w) = g.waiters.get_mut(&key) {
            w.read_seq = w.read_seq.wrapping_add(1);
            w.write_seq = w.write_seq.wrapping_add(1);
            w.cv.notify_all();
            let bell = w.bell();
            g.async_wakers = g.async_wakers.saturating_sub(w.wake(true, true));
            g.ring_steered(key, bell, Who::App);
        }
        if g.leader.is_some_and(|(k, _)| k == key) {
            self.kick.signal();
        }
    }

    /// Turn the driver's interest in the TUN on or off. Errors are impossible for a
    /// registered descriptor; if the TUN is gone, nobody needs the interest anyway.
    pub(crate) fn arm_tun(&self, on: bool) {
        let _ = self.epoll.set_input(&*self.tun_dev, TUN_TOKEN, on);
    }
}

impl Inner {
    /// `Err` with the reason the interface is down, if it is.
    pub(crate) fn check_up(&self) -> io::Result<()> {
        match &self.down {
            None => Ok(()),
            Some((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
        }
    }

    pub(crate) fn link_stats(&self) -> LinkStats {
        let mut s = self.stats;
        if let Some((rx, tx)) = &self.impair {
            s.impaired_drops += rx.counts.drops + tx.counts.drops;
            s.impaired_dups += rx.counts.dups + tx.counts.dups;
            s.impaired_reorders += rx.counts.reorders + tx.counts.reorders;
        }
        s
    }

    /// Replace the impairment (a packet held back for reordering is lost).
    pub(crate) fn set_impairment(&mut self, imp: Option<Impairment>) {
        self.stats = self.link_stats();
        self.impair = imp.map(|c| (Impairer::new(c, 1), Impairer::new(c, 2)));
    }

    /// May a thread about to block take over reading the TUN?
    pub(crate) fn can_lead(&self) -> bool {
        !self.stop
            && self.tun.is_some()
            && match self.rx {
                RxOwner::Driver => !self.driver_reading,
                RxOwner::Parked { .. } => true,
                RxOwner::Leader | RxOwner::Async => false,
            }
    }

    /// After any engine call from an application thread: transmit what it produced,
    /// signal sockets, and make sure the timerfd fires by the engine's next deadline.
    pub(crate) fn after_op(&mut self, shared: &Shared, now: Instant) {
        self.after_op_by(shared, now, Who::App).write_locked();
    }

    /// `after_op` that leaves the TUN writes to the caller: it drops the interface lock,
    /// then the returned duty (`drop(g); duty.write_unlocked()`), issue 12.
    pub(crate) fn after_op_deferred<'s>(&mut self, shared: &'s Shared, now: Instant) -> TxDuty<'s> {
        self.after_op_by(shared, now, Who::App)
    }

    pub(crate) fn after_op_by<'s>(&mut self, shared: &'s Shared, now: Instant, who: Who) -> TxDuty<'s> {
        let duty = self.flush_tx(shared, now);
        self.dispatch_events(shared, now, who);
        if let Some(e) = shared.tx.take_fatal() {
            self.fail(shared, e);
        }
        if self.stop {
            if who != Who::Driver {
                // A fatal TUN error on this thread: make the driver notice and exit.
                shared.waker.signal();
            }
            return duty;
        }
        if let Some(t) = self.stack.poll_timeout() {
            self.arm_earlier(shared, t);
        }
        duty
    }

    /// A leader returns to its application and nobody else waits on a connection: keep
    /// the TUN disarmed for its next blocking call, and have the driver check on it.
    pub(crate) fn park(&mut self, shared: &Shared, now: Instant) {
        self.rx = RxOwner::Parked { since: now };
        self.arm_earlier(shared, now + self.handback_check);
    }

    /// If a tokio task wants the TUN (`pump.rs`) and the driver holds it, hand it over
    /// and ring the task, so ownership settles with the task. Returns whether it did.
    pub(crate) fn hand_to_pump(&mut self, shared: &Shared) -> bool {
        if !self.pump_running || self.stop || self.driver_reading || self.rx != RxOwner::Driver {
            return false;
        }
        shared.arm_tun(false);
        self.rx = RxOwner::Async;
        shared.pump_bell.signal();
        true
    }

    /// Make the timerfd fire no later than `t`.
    pub(crate) fn arm_earlier(&mut self, shared: &Shared, t: Instant) {
        if self.timer_at.is_none_or(|a| t < a) {
            self.timer_at = Some(t);
            shared.timer.set(Some(shared.mono_of(t)));
            self.stats.timer_arms += 1;
        }
    }

    /// Produce the engine's output into the transmit arena and hand it to the queue
    /// (issue 12, `tx.rs`). A full arena is handed over at once (written under the lock if
    /// this thread becomes the writer). Returns the writer's duty if this thread has it.
    fn flush_tx<'s>(&mut self, shared: &'s Shared, now: Instant) -> TxDuty<'s> {
        let Inner { stack, tun, txbuf, txq, tap, impair, .. } = self;
        if tun.is_none() {
            return TxDuty::none();
        }
        let dev = &*shared.tun_dev;
        let mut writer = false;
        let spill = |txq: &mut TxArena| {
            if !txq.has_room() && shared.tx.hand_over(txq, dev, true) {
                // This thread became the writer: write now (under the lock) to make room.
                TxDuty::writer(shared).write_locked();
            }
        };
        let tapped = |tap: &mut Option<Taps>, pkt: &[u8]| {
            if let Some(t) = tap.as_mut() {
                t.packet(now, Direction::Out, pkt);
            }
        };
        if dev.offload() && impair.is_none() {
            // TUN offload (issue 12): super-segments, cut by the kernel (TSO).
            loop {
                spill(txq);
                let Some(t) = stack.poll_transmit_gso(now, txq.space(), GSO_MAX_SEGS) else { break };
                tapped(tap, &txq.space()[..t.len.min(MAX_PACKET)]);
                txq.commit(t.len, Some(t));
            }
        }
        match impair {
            None => loop {
                spill(txq);
                let Some(n) = stack.poll_transmit(now, txq.space()) else { break };
                tapped(tap, &txq.space()[..n.min(MAX_PACKET)]);
                txq.commit(n, None);
            },
            Some((_, imp)) => {
                let mut emit = |p: &[u8]| {
                    spill(txq);
                    tapped(tap, p);
                    txq.push(p);
                };
                while let Some(n) = stack.poll_transmit(now, txbuf) {
                    imp.process(&txbuf[..n.min(txbuf.len())], &mut emit);
                }
                imp.release(&mut emit);
            }
        }
        writer |= shared.tx.hand_over(txq, dev, false);
        if writer { TxDuty::writer(shared) } else { TxDuty::none() }
    }

    fn dispatch_events(&mut self, shared: &Shared, now: Instant, who: Who) {
        let mut kick = false;
        while let Some(ev) = self.stack.poll_event() {
            // (socket, may unblock a reader, may unblock a writer)
            let target = match ev {
                Event::Readable(c) => Some((Key::Conn(c), true, false)),
                Event::Writable(c) => Some((Key::Conn(c), false, true)),
                Event::Connected(c) => Some((Key::Conn(c), true, true)),
                Event::Closed(c, reason) => {
                    tracing::debug!(conn = ?c, ?reason, "connection closed");
                    if let Some(w) = self.waiters.get_mut(&Key::Conn(c)) {
                        w.closed = Some(reason);
                    }
                    Some((Key::Conn(c), true, true))
                }
                Event::Incoming(l) | Event::SynArrived(l) => Some((Key::Listener(l), true, true)),
                Event::StateChange { .. } => None,
                _ => None,
            };
            if let Some((key, read, write)) = target
                && let Some(w) = self.waiters.get_mut(&key)
            {
                if read {
                    w.read_seq = w.read_seq.wrapping_add(1);
                }
                if write {
                    w.write_seq = w.write_seq.wrapping_add(1);
                }
                self.async_wakers = self.async_wakers.saturating_sub(w.wake(read, write));
                let leader = self.leader.filter(|(k, _)| *k == key);
                if w.waiting > 0 {
                    w.cv.notify_all();
                    if leader.is_none() && matches!(key, Key::Conn(_)) {
                        self.woke_other_conn = true;
                    }
                }
                let bell = w.bell();
                if self.ring_steered(key, bell, who) && leader.is_none() {
                    self.woke_other_conn = true;
                }
                if who != Who::Leader
                    && let Some((_, interest)) = leader
                    && match interest {
                        Interest::Read => read,
                        Interest::Write => write,
                        Interest::Any => true,
                    }
                {
                    kick = true;
                }
            }
            if let Some(t) = self.tap.as_mut() {
                t.event(now, &ev);
            }
        }
        if kick {
            self.stats.leader_kicks += 1;
            shared.kick.signal();
        }
    }

    /// Register the async task to wake when `key` may be readable (`read`) or writable.
    /// Only the last task registered per direction is woken, as with tokio's own sockets.
    pub(crate) fn register_waker(&mut self, key: Key, read: bool, waker: &Waker) -> io::Result<()> {
        let w = self.waiters.get_mut(&key).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        let slot = if read { &mut w.read_waker } else { &mut w.write_waker };
        match slot {
            Some(old) if old.will_wake(waker) => {}
            Some(old) => old.clone_from(waker),
            None => {
                *slot = Some(waker.clone());
                self.async_wakers += 1;
            }
        }
        Ok(())
    }

    /// Forget a socket's wait slot (its handle is gone), with any waker it held.
    pub(crate) fn unregister(&mut self, key: Key) {
        if let Some(mut w) = self.waiters.remove(&key) {
            self.async_wakers = self.async_wakers.saturating_sub(w.wake(true, true));
            if let Some(q) = w.queue {
                self.release_queue(q);
            }
        }
    }

    fn notify_all(&mut self, shared: &Shared) {
        for w in self.waiters.values_mut() {
            w.read_seq = w.read_seq.wrapping_add(1);
            w.write_seq = w.write_seq.wrapping_add(1);
            w.cv.notify_all();
            w.wake(true, true);
        }
        if let Some(st) = self.steer.as_ref() {
            st.ring_all();
        }
        self.async_wakers = 0;
        shared.kick.signal();
    }

    /// Shut the interface down with `err`, stored for every later socket call.
    pub(crate) fn fail(&mut self, shared: &Shared, err: io::Error) {
        if self.down.is_none() {
            tracing::warn!(error = %err, "interface down");
            self.down = Some((err.kind(), format!("utcp interface down: {err}")));
        }
        self.stop = true;
        self.tun = None;
        shared.tx.kill();
        self.notify_all(shared);
        shared.waker.signal();
    }

    pub(crate) fn receive_batch(&mut self, shared: &Shared, now: Instant, rx: &RxBuf, who: Who) {
        self.stats.rx_super_segments += rx.gso;
        for &(off, len, checksum_ok) in &rx.lens {
            let pkt = &rx.arena[off..off + len];
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += len as u64;
            if let Some(t) = self.tap.as_mut() {
                t.packet(now, Direction::In, pkt);
            }
            let stack = &mut self.stack;
            match &mut self.impair {
                Some((rx, _)) => rx.process(pkt, |p| stack.handle_packet(now, p)),
                None if checksum_ok => stack.handle_packet_checksum_ok(now, pkt),
                None => stack.handle_packet(now, pkt),
            }
            if self.tap.is_some() {
                // A tap sees each packet's events right after it, in causal order.
                self.dispatch_events(shared, now, who);
            }
        }
        if let Some((rx, _)) = &mut self.impair {
            let stack = &mut self.stack;
            rx.release(|p| stack.handle_packet(now, p));
        }
    }

    /// Fire due timers (any thread holding the lock may).
    pub(crate) fn fire_due_timers(&mut self, shared: &Shared, now: Instant, who: Who) {
        if self.stack.poll_timeout().is_some_and(|t| t <= now) {
            self.stack.handle_timeout(now);
            self.after_op_by(shared, now, who).write_locked();
        }
    }

    /// The driver's housekeeping after any wake-up: fire timers, take the TUN back from
    /// a leader that has been away too long, and program the timerfd for what is next.
    /// Returns true if the driver took the TUN back.
    fn driver_timers(&mut self, shared: &Shared, now: Instant) -> bool {
        if let Some(e) = shared.tx.take_fatal() {
            self.fail(shared, e);
            return false;
        }
        self.fire_due_timers(shared, now, Who::Driver);
        if self.stop {
            return false;
        }
        let mut took_back = false;
        match self.rx {
            RxOwner::Parked { since } if now >= since + HANDBACK => {
                self.rx = RxOwner::Driver;
                shared.arm_tun(true);
                self.stats.handbacks += 1;
                self.handback_check = HANDBACK;
                took_back = true;
            }
            RxOwner::Parked { .. } | RxOwner::Leader => {
                self.handback_check = (self.handback_check * 2).min(HANDBACK_CHECK_MAX);
            }
            RxOwner::Driver | RxOwner::Async => {}
        }
        let mut want = self.stack.poll_timeout();
        if want.is_some_and(|t| t <= now) {
            // A deadline the engine did not consume: do not spin on it.
            want = Some(now + RETRY_UNCONSUMED);
        }
        if let RxOwner::Parked { since } = self.rx {
            let back = since + HANDBACK;
            want = Some(want.map_or(back, |t| t.min(back)));
        }
        if let Some(check) = self.steer_housekeeping(shared, now) {
            want = Some(want.map_or(check, |t| t.min(check)));
        }
        if want != self.timer_at {
            self.timer_at = want;
            shared.timer.set(want.map(|t| shared.mono_of(t)));
        }
        took_back
    }
}

/// Spawn the driver thread; it enters the namespace, creates the TUN and reports back.
pub(crate) fn start(config: InterfaceConfig) -> io::Result<(Arc<Shared>, JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::channel::<io::Result<Arc<Shared>>>();
    let span = tracing::info_span!("utcp", tun = %config.tun_name, netns = ?config.netns);
    let thread = std::thread::Builder::new().name(format!("utcp-{}", config.tun_name)).spawn(move || {
        let _entered = span.enter();
        match setup(config) {
            Ok((shared, tun)) => {
                tracing::debug!(addr = %shared.addr, "interface up");
                let _ = tx.send(Ok(shared.clone()));
                run(&shared, &tun);
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    })?;
    match rx.recv() {
        Ok(Ok(shared)) => Ok((shared, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let msg = match thread.join() {
                Err(payload) => panic_message(payload.as_ref()),
                Ok(()) => "no report".into(),
            };
            Err(io::Error::other(format!("utcp driver thread died during setup: {msg}")))
        }
    }
}

fn setup(mut config: InterfaceConfig) -> io::Result<(Arc<Shared>, Arc<Tun>)> {
    if let Some(ns) = &config.netns {
        let f = std::fs::File::open(format!("/var/run/netns/{ns}"))
            .map_err(|e| io::Error::new(e.kind(), format!("network namespace {ns:?}: {e}")))?;
        // setns(2) changes only this (driver) thread's network namespace.
        use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
        move_into_link_name_space(std::os::fd::AsFd::as_fd(&f), Some(LinkNameSpaceType::Network))
            .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("setns into {ns:?}: {e}")))?;
    }
    let adopted = config.tun_fd.is_some();
    let tun = Arc::new(match config.tun_fd.take() {
        Some(fd) => Tun::from_fd(fd)?,
        None => {
            let cfg = TunConfig {
                name: config.tun_name.clone(),
                peer: config.peer,
                prefix: config.prefix,
                mtu: config.mtu,
                peer6: config.peer6,
                multi_queue: config.steer_queues > 0,
            };
            // TUN offload (issue 12); the impairment hook works per packet, so not with it.
            if config.offload && config.impairment.is_none() {
                Tun::open_offload(&cfg)?
            } else {
                Tun::open(&cfg)?
            }
        }
    });
    if let Some(len) = config.tx_queue_len {
        tun.set_tx_queue_len(len)?; // SYN flood (issue 9): InterfaceConfig::tx_queue_len
    }
    let ctx = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let epoll = Epoll::new().map_err(|e| ctx("epoll_create", e))?;
    let waker = EventFd::new().map_err(|e| ctx("eventfd", e))?;
    let kick = EventFd::new().map_err(|e| ctx("eventfd", e))?;
    let pump_bell = EventFd::new().map_err(|e| ctx("eventfd", e))?;
    let timer = TimerFd::new().map_err(|e| ctx("timerfd_create", e))?;
    epoll.add(&*tun, TUN_TOKEN).map_err(|e| ctx("epoll_ctl TUN", e))?;
    epoll.add(&waker, WAKE_TOKEN).map_err(|e| ctx("epoll_ctl eventfd", e))?;
    epoll.add(&timer, TIMER_TOKEN).map_err(|e| ctx("epoll_ctl timerfd", e))?;

    let mut engine = config.engine;
    engine.mtu = config.mtu as usize;
    // RFC 6528 / MUST-9: the secret is not guessable: `Config::default()` draws it from the
    // OS (getrandom), and only tests and the simulator fix it (`Config::deterministic`).
    let mut stack = Stack::new(engine);
    stack.add_local_addr(IpAddr::V4(config.addr));
    // IPv6 (issue 13).
    if let Some(a6) = config.addr6 {
        stack.add_local_addr(IpAddr::V6(a6));
    }

    let mut taps: Vec<Box<dyn Tap>> = Vec::new();
    if let Some(path) = &config.pcap {
        taps.push(super::pcap::open(path)?);
    }
    if let Some(t) = config.tap {
        taps.push(t);
    }
    let impair = config.impairment.map(|c| (Impairer::new(c, 1), Impairer::new(c, 2)));
    let steer = match (adopted, config.steer_queues) {
        (false, n) if n > 0 => super::steered::Steer::new(&tun, n)
            .map_err(|e| tracing::info!(error = %e, "TUN flow steering unavailable"))
            .ok(),
        _ => None,
    };
    let inner = Inner {
        stack,
        tun: Some(tun.clone()),
        txbuf: vec![0u8; MAX_PACKET].into_boxed_slice(),
        txq: TxArena::new(),
        tap: if taps.is_empty() { None } else { Some(Taps(taps)) },
        impair,
        waiters: KeyMap::default(),
        down: None,
        stop: false,
        rx: RxOwner::Driver,
        driver_reading: false,
        leader: None,
        leader_rx: Some(RxBuf::new()),
        conn_followers: 0,
        async_wakers: 0,
        woke_other_conn: false,
        rx_maybe_more: false,
        timer_at: None,
        handback_check: HANDBACK,
        pump_running: false,
        busy_poll: config.busy_poll,
        spin: Default::default(),
        stats: LinkStats { offload: tun.offload(), steering: steer.is_some(), ..LinkStats::default() },
        steer,
    };
    let epoch = std::time::Instant::now();
    let shared = Arc::new(Shared {
        inner: Mutex::new(inner),
        tx: TxQueue::new(),
        epoll,
        waker,
        timer,
        kick,
        pump_bell,
        tun_dev: tun.clone(),
        epoch,
        epoch_ns: mono_ns(),
        addr: config.addr,
        addr6: config.addr6,
    });
    Ok((shared, tun))
}

/// The driver thread's body: never exits silently. A TUN error or an engine panic is
/// stored as the interface's error and every blocked socket call is woken to return it.
fn run(shared: &Shared, tun: &Tun) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drive(shared, tun)));
    let err = match result {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(payload) => {
            io::Error::other(format!("driver thread panicked: {}", panic_message(payload.as_ref())))
        }
    };
    shared.lock().fail(shared, err);
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn drive(shared: &Shared, tun: &Tun) -> io::Result<()> {
    let mut events = Vec::with_capacity(8);
    let mut rx = RxBuf::new();
    let mut queues_ready: Vec<u16> = Vec::new();
    // Edge-triggered: drain whatever is already queued before the first wait.
    let mut tun_ready = true;
    let mut woke = 0;
    loop {
        let read = {
            let mut g = shared.lock();
            if g.stop {
                return Ok(());
            }
            g.stats.driver_wakeups += woke;
            let now = shared.now();
            tun_ready |= g.driver_timers(shared, now);
            if g.stop {
                return Ok(());
            }
            if tun_ready && g.hand_to_pump(shared) {
                tun_ready = false;
            }
            let read = tun_ready && g.rx == RxOwner::Driver && !g.driver_reading;
            g.driver_reading |= read;
            read
        };
        tun_ready = false;
        if read {
            rx_burst(shared, tun, &mut rx, None)?;
        }
        // Flow steering: extra queues the driver holds (their threads stayed away).
        for q in queues_ready.drain(..) {
            let io = shared.lock().driver_claims_queue(q);
            if let Some(io) = io {
                rx_burst(shared, &io.tun, &mut rx, Some(q))?;
            }
        }
        let n =
            shared.epoll.wait(&mut events).map_err(|e| io::Error::new(e.kind(), format!("epoll: {e}")))?;
        woke = 1;
        for ev in &events[..n] {
            match token(ev) {
                TUN_TOKEN => tun_ready = true,
                WAKE_TOKEN => shared.waker.drain(),
                TIMER_TOKEN => shared.timer.drain(),
                t => queues_ready.push((t - super::steered::QUEUE_TOKEN) as u16),
            }
        }
    }
}

/// Read bursts until the TUN (queue 0, or extra queue `q` with flow steering) is empty,
/// feeding each to the engine under the lock. The queue's `driver_reading` is set on
/// entry and cleared on every way out.
fn rx_burst(shared: &Shared, tun: &Tun, rx: &mut RxBuf, q: Option<u16>) -> io::Result<()> {
    loop {
        let (more, err) = rx.read_batch(tun);
        let mut g = shared.lock();
        let done = !more || err.is_some() || g.stop;
        let mut duty = TxDuty::none();
        if !g.stop && !rx.is_empty() {
            let now = shared.now();
            g.receive_batch(shared, now, rx, Who::Driver);
            duty = g.after_op_by(shared, now, Who::Driver);
        }
        if done {
            if let Some(q) = q {
                g.driver_done_with_queue(q);
            } else {
                g.driver_reading = false;
                g.hand_to_pump(shared);
            }
        }
        // Issue 12: the TUN writes happen after the interface lock is released.
        drop(g);
        duty.write_unlocked();
        if done {
            return err.map_or(Ok(()), Err);
        }
    }
}
