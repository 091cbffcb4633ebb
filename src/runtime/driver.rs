//! The driver thread and the state it shares with application threads.
//!
//! Locking: one mutex ([`Shared::lock`]) guards the engine and everything that goes with
//! it. The driver reads a burst of packets from the TUN *without* the lock (into a reused
//! arena), then takes the lock once to feed the whole burst to the engine, transmit what
//! the engine produced, and signal the sockets the engine's events concern.

use super::impair::{Impairer, Impairment};
use super::tap::{Direction, Tap, Taps};
use super::{InterfaceConfig, LinkStats};
use crate::device::tun::{MAX_PACKET, Tun, TunConfig};
use crate::engine::{CloseReason, ConnId, Event, ListenerId, Stack};
use crate::time::Instant;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

const TUN_TOKEN: Token = Token(0);
const WAKE_TOKEN: Token = Token(1);
/// Packets read per lock acquisition, at most.
const RX_BATCH: usize = 128;
/// Receive arena: a read needs `MAX_PACKET` free bytes, so this holds many MTU-sized
/// packets (about 130 at MTU 1500) and at least one of 64 KiB.
const RX_ARENA: usize = 256 * 1024;

/// What a blocked socket waits on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Key {
    Conn(ConnId),
    Listener(ListenerId),
}

/// A socket's wait slot: its condvar, how many threads sleep on it (so that events for
/// sockets nobody waits on cost no futex syscall), and the close reason once known.
pub(crate) struct Waiter {
    cv: Arc<Condvar>,
    waiting: u32,
    pub(crate) closed: Option<CloseReason>,
}

/// Everything the interface lock protects.
pub(crate) struct Inner {
    pub(crate) stack: Stack,
    tun: Option<Arc<Tun>>,
    txbuf: Box<[u8]>,
    tap: Option<Taps>,
    /// (receive direction, transmit direction)
    impair: Option<(Impairer, Impairer)>,
    pub(crate) waiters: HashMap<Key, Waiter>,
    down: Option<(io::ErrorKind, String)>,
    stop: bool,
    /// The deadline the driver sleeps until; application threads wake it if they make
    /// the engine's earliest deadline earlier than this.
    driver_deadline: Option<Instant>,
    pub(crate) stats: LinkStats,
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    waker: Waker,
    epoch: std::time::Instant,
    pub(crate) addr: Ipv4Addr,
}

impl Shared {
    /// The interface lock. A panic while it was held (an engine bug) poisons it; the
    /// driver then records the interface as down, so we keep using the data.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `std::time::Instant` mapped onto engine time (microseconds since interface start).
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        let _ = self.waker.wake();
    }

    /// After the driver thread has exited: close the TUN and fail every blocked call.
    pub(crate) fn closed_after_stop(&self) {
        let mut g = self.lock();
        g.tun = None;
        if g.down.is_none() {
            g.down = Some((io::ErrorKind::NotConnected, "interface closed".into()));
        }
        g.notify_all();
        if let Some(t) = g.tap.as_mut() {
            t.finish();
        }
    }

    /// Register a wait slot for a new socket.
    pub(crate) fn register(&self, g: &mut Inner, key: Key) {
        g.waiters.insert(key, Waiter { cv: Arc::new(Condvar::new()), waiting: 0, closed: None });
    }

    /// Sleep until the socket's condvar is signalled or `deadline` passes. The caller
    /// re-checks its condition (and the deadline) afterwards.
    pub(crate) fn wait<'a>(
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
        let mut g = match deadline {
            None => cv.wait(g).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                cv.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0
            }
        };
        if let Some(w) = g.waiters.get_mut(&key) {
            w.waiting = w.waiting.saturating_sub(1);
        }
        Ok(g)
    }

    /// Wake every thread blocked on `key` (e.g. after a local shutdown).
    pub(crate) fn notify(&self, g: &Inner, key: Key) {
        if let Some(w) = g.waiters.get(&key) {
            w.cv.notify_all();
        }
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

    /// After any engine call: transmit what it produced, signal sockets, and (from an
    /// application thread) wake the driver if its sleep would overrun a new deadline.
    pub(crate) fn after_op(&mut self, shared: &Shared, now: Instant) {
        self.after_op_inner(shared, now, true);
    }

    fn after_op_inner(&mut self, shared: &Shared, now: Instant, from_app: bool) {
        self.flush_tx(now);
        self.dispatch_events(now);
        if from_app
            && !self.stop
            && let Some(t) = self.stack.poll_timeout()
            && self.driver_deadline.is_none_or(|d| t < d)
        {
            self.driver_deadline = Some(t);
            self.stats.driver_wakeups += 1;
            let _ = shared.waker.wake();
        }
        if from_app && self.stop {
            // A fatal TUN error on this thread: make the driver notice and exit.
            let _ = shared.waker.wake();
        }
    }

    fn flush_tx(&mut self, now: Instant) {
        let Inner { stack, tun, txbuf, tap, impair, stats, .. } = self;
        let Some(tun) = tun.as_deref() else {
            return;
        };
        let mut fatal = None;
        let mut emit = |p: &[u8]| emit(tun, tap, stats, &mut fatal, now, p);
        while let Some(n) = stack.poll_transmit(now, txbuf) {
            let pkt = &txbuf[..n.min(txbuf.len())];
            match impair {
                Some((_, tx)) => tx.process(pkt, &mut emit),
                None => emit(pkt),
            }
        }
        if let Some((_, tx)) = impair {
            tx.release(&mut emit);
        }
        if let Some(e) = fatal {
            self.fail(e);
        }
    }

    fn dispatch_events(&mut self, now: Instant) {
        while let Some(ev) = self.stack.poll_event() {
            let key = match ev {
                Event::Connected(c) | Event::Readable(c) | Event::Writable(c) => Some(Key::Conn(c)),
                Event::Closed(c, reason) => {
                    if let Some(w) = self.waiters.get_mut(&Key::Conn(c)) {
                        w.closed = Some(reason);
                    }
                    Some(Key::Conn(c))
                }
                Event::Incoming(l) => Some(Key::Listener(l)),
                Event::StateChange { .. } => None,
            };
            if let Some(w) = key.and_then(|k| self.waiters.get(&k))
                && w.waiting > 0
            {
                w.cv.notify_all();
            }
            if let Some(t) = self.tap.as_mut() {
                t.event(now, &ev);
            }
        }
    }

    fn notify_all(&self) {
        for w in self.waiters.values() {
            w.cv.notify_all();
        }
    }

    /// Shut the interface down with `err`, stored for every later socket call.
    fn fail(&mut self, err: io::Error) {
        if self.down.is_none() {
            self.down = Some((err.kind(), format!("utcp interface down: {err}")));
        }
        self.stop = true;
        self.tun = None;
        self.notify_all();
    }

    fn receive_batch(&mut self, now: Instant, arena: &[u8], lens: &[(usize, usize)]) {
        for &(off, len) in lens {
            let pkt = &arena[off..off + len];
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += len as u64;
            if let Some(t) = self.tap.as_mut() {
                t.packet(now, Direction::In, pkt);
            }
            let stack = &mut self.stack;
            match &mut self.impair {
                Some((rx, _)) => rx.process(pkt, |p| stack.handle_packet(now, p)),
                None => stack.handle_packet(now, pkt),
            }
            if self.tap.is_some() {
                // A tap sees each packet's events right after it, in causal order.
                self.dispatch_events(now);
            }
        }
        if let Some((rx, _)) = &mut self.impair {
            let stack = &mut self.stack;
            rx.release(|p| stack.handle_packet(now, p));
        }
    }
}

/// Write one packet to the TUN. Congestion in the kernel (`EAGAIN`, `ENOBUFS`) and a
/// packet the kernel rejects (`EINVAL`) are losses; anything else kills the interface.
fn emit(
    tun: &Tun,
    tap: &mut Option<Taps>,
    stats: &mut LinkStats,
    fatal: &mut Option<io::Error>,
    now: Instant,
    pkt: &[u8],
) {
    if fatal.is_some() {
        return;
    }
    if let Some(t) = tap.as_mut() {
        t.packet(now, Direction::Out, pkt);
    }
    match tun.send(pkt) {
        Ok(()) => {
            stats.tx_packets += 1;
            stats.tx_bytes += pkt.len() as u64;
        }
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock
                || matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ENOMEM | libc::EINVAL)) =>
        {
            stats.tx_dropped += 1;
        }
        Err(e) => *fatal = Some(io::Error::new(e.kind(), format!("TUN write: {e}"))),
    }
}

/// Spawn the driver thread; it enters the namespace, creates the TUN and reports back.
pub(crate) fn start(config: InterfaceConfig) -> io::Result<(Arc<Shared>, JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::channel::<io::Result<Arc<Shared>>>();
    let thread = std::thread::Builder::new().name(format!("utcp-{}", config.tun_name)).spawn(move || {
        match setup(config) {
            Ok((shared, tun, poll)) => {
                let _ = tx.send(Ok(shared.clone()));
                run(&shared, &tun, poll);
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

fn setup(config: InterfaceConfig) -> io::Result<(Arc<Shared>, Arc<Tun>, Poll)> {
    if let Some(ns) = &config.netns {
        let f = std::fs::File::open(format!("/var/run/netns/{ns}"))
            .map_err(|e| io::Error::new(e.kind(), format!("network namespace {ns:?}: {e}")))?;
        // SAFETY: setns on a valid namespace fd changes only this (driver) thread.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("setns into {ns:?}: {e}")));
        }
    }
    let tun = Arc::new(Tun::open(&TunConfig {
        name: config.tun_name.clone(),
        peer: config.peer,
        prefix: config.prefix,
        mtu: config.mtu,
    })?);
    let poll = Poll::new()?;
    poll.registry().register(&mut SourceFd(&tun.as_raw_fd()), TUN_TOKEN, Interest::READABLE)?;
    let waker = Waker::new(poll.registry(), WAKE_TOKEN)?;

    let mut engine = config.engine;
    engine.mtu = config.mtu as usize;
    if engine.isn_secret == utcp_default_secret() {
        // RFC 6528 / MUST-9: the ISN secret must not be guessable; the engine's default is a
        // fixed value for deterministic tests, so a real interface draws its own.
        let mut f = std::fs::File::open("/dev/urandom")?;
        std::io::Read::read_exact(&mut f, &mut engine.isn_secret)?;
    }
    let mut stack = Stack::new(engine);
    stack.add_local_addr(IpAddr::V4(config.addr));

    let mut taps: Vec<Box<dyn Tap>> = Vec::new();
    if let Some(path) = &config.pcap {
        taps.push(super::pcap::open(path)?);
    }
    if let Some(t) = config.tap {
        taps.push(t);
    }
    let impair = config.impairment.map(|c| (Impairer::new(c, 1), Impairer::new(c, 2)));
    let inner = Inner {
        stack,
        tun: Some(tun.clone()),
        txbuf: vec![0u8; MAX_PACKET].into_boxed_slice(),
        tap: if taps.is_empty() { None } else { Some(Taps(taps)) },
        impair,
        waiters: HashMap::new(),
        down: None,
        stop: false,
        driver_deadline: None,
        stats: LinkStats::default(),
    };
    let shared = Arc::new(Shared {
        inner: Mutex::new(inner),
        waker,
        epoch: std::time::Instant::now(),
        addr: config.addr,
    });
    Ok((shared, tun, poll))
}

/// The driver thread's body: never exits silently. A TUN error or an engine panic is
/// stored as the interface's error and every blocked socket call is woken to return it.
fn run(shared: &Shared, tun: &Tun, poll: Poll) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drive(shared, tun, poll)));
    let err = match result {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(payload) => {
            io::Error::other(format!("driver thread panicked: {}", panic_message(payload.as_ref())))
        }
    };
    shared.lock().fail(err);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn drive(shared: &Shared, tun: &Tun, mut poll: Poll) -> io::Result<()> {
    let mut events = Events::with_capacity(8);
    let mut arena = vec![0u8; RX_ARENA].into_boxed_slice();
    let mut lens: Vec<(usize, usize)> = Vec::with_capacity(RX_BATCH);
    // mio is edge-triggered: drain whatever is already queued before the first wait.
    let mut rx_ready = true;
    loop {
        if rx_ready {
            rx_ready = rx_batch(shared, tun, &mut arena, &mut lens)?;
        }
        let timeout = {
            let mut g = shared.lock();
            if g.stop {
                return Ok(());
            }
            let now = shared.now();
            let mut fired = false;
            if g.stack.poll_timeout().is_some_and(|t| t <= now) {
                g.stack.handle_timeout(now);
                g.after_op_inner(shared, now, false);
                fired = true;
                if g.stop {
                    return Ok(());
                }
            }
            let next = g.stack.poll_timeout();
            g.driver_deadline = next;
            if rx_ready {
                Some(Duration::ZERO)
            } else {
                match next {
                    None => None,
                    // A deadline the engine did not consume: do not spin on it.
                    Some(t) if fired && t <= now => Some(Duration::from_millis(1)),
                    Some(t) => Some(t.saturating_since(shared.now())),
                }
            }
        };
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("epoll: {e}"))),
        }
        if events.iter().any(|e| e.token() == TUN_TOKEN) {
            rx_ready = true;
        }
    }
}

/// Read up to a batch of packets without the lock, then feed them to the engine under
/// it. Returns true if the TUN may hold more (the batch filled up).
fn rx_batch(
    shared: &Shared,
    tun: &Tun,
    arena: &mut [u8],
    lens: &mut Vec<(usize, usize)>,
) -> io::Result<bool> {
    lens.clear();
    let mut off = 0;
    let mut more = true;
    while lens.len() < RX_BATCH && off + MAX_PACKET <= arena.len() {
        match tun.recv(&mut arena[off..off + MAX_PACKET]) {
            Ok(n) => {
                lens.push((off, n));
                off += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                more = false;
                break;
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("TUN read: {e}"))),
        }
    }
    if lens.is_empty() {
        return Ok(more);
    }
    let mut g = shared.lock();
    if g.stop {
        return Ok(false);
    }
    let now = shared.now();
    g.receive_batch(now, arena, lens);
    g.after_op_inner(shared, now, false);
    Ok(more)
}

fn utcp_default_secret() -> [u8; 16] {
    crate::engine::Config::default().isn_secret
}
