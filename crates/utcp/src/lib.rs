//! utcp: a user-space TCP/IP stack (RFC 9293) that terminates TCP on a Linux TUN device.
//!
//! This crate is the runtime: it drives the sans-IO engine ([`engine`], the
//! `utcp-engine` crate, re-exported here) on a TUN device and offers sockets.
//! The path of a segment: [`device`] (TUN or in-memory link) → [`wire`] (parse, checksum)
//! → [`engine`] (`Stack` demux → TCB state machine) → [`wire`] (emit) → [`device`].
//!
//! The runtime drives a [`Stack`](crate::engine::Stack) on a TUN device and offers
//! blocking sockets shaped like `std::net` ([`TcpListener`], [`TcpStream`]).
//!
//! Each [`Interface`] has a driver thread that waits with epoll on the TUN descriptor, a
//! timerfd holding the engine's next deadline (`Stack::poll_timeout`) and a stop eventfd.
//! There is no polling tick, so an idle interface costs no CPU. Application threads call
//! into the engine under the interface lock and transmit what the call produced
//! themselves before returning, so a `write` reaches the wire without waiting for the
//! driver; a call that moves the engine's deadline earlier re-programs the timerfd
//! (one syscall, no wake-up).
//!
//! A socket call that must block is caller-driven (leader/follower, see `lead.rs`): if no
//! other thread reads the TUN, the blocked thread takes the TUN from the driver and polls
//! it itself, feeds the engine and returns as soon as its own socket can proceed, so a
//! request/response costs one wake-up of the thread that consumes it, with the driver
//! asleep. Threads that block while another thread leads sleep on their socket's
//! `Condvar`, signalled when the engine reports `Readable`, `Writable`, `Connected`,
//! `Incoming` or `Closed` for that socket.
//!
//! Logs go through [`tracing`](https://docs.rs/tracing): a span `utcp{tun, netns}` on each
//! interface's driver thread, a span `tcp{conn, peer}` per [`TcpStream`], and events for
//! connections opening and closing, the interface going down and a failed pcap capture.
//! The library installs no subscriber, so logging is off unless the application sets one.
#![warn(missing_docs)]

pub use utcp_engine as engine;
pub use utcp_engine::{seq, time, wire};

pub mod device;
mod driver;
mod impair;
mod lead;
mod pcap;
#[cfg(feature = "tokio")]
mod pump;
mod socket;
mod steered;
mod sys;
mod tap;
#[cfg(feature = "tokio")]
pub mod tokio;
mod tx;

pub use impair::Impairment;
pub use socket::{Incoming, TcpListener, TcpStream};
pub use tap::{Direction, Tap};

use crate::engine::{Config, Counters};
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

/// How to build an [`Interface`].
pub struct InterfaceConfig {
    /// TUN interface name (at most 15 bytes).
    pub tun_name: String,
    /// The stack's own IPv4 address (it lives behind the TUN, not on it).
    pub addr: Ipv4Addr,
    /// The kernel side's address on the TUN.
    pub peer: Ipv4Addr,
    /// Prefix length of `peer`; the kernel routes that subnet into the TUN.
    pub prefix: u8,
    /// Link MTU; also written into `engine.mtu`.
    pub mtu: u16,
    /// Engine configuration.
    pub engine: Config,
    /// Network namespace (as named by `ip netns`) the driver thread enters before it
    /// creates the TUN, so that the TUN lives there. `None`: the process's namespace.
    pub netns: Option<String>,
    /// Write every packet crossing the TUN, both directions, to this pcap file.
    pub pcap: Option<PathBuf>,
    /// Loss, reordering and duplication injected between the TUN and the engine.
    pub impairment: Option<Impairment>,
    /// Observer for every packet crossing the TUN and every engine event.
    pub tap: Option<Box<dyn Tap>>,
    /// A TUN descriptor to adopt instead of creating one (see [`Interface::from_fd`]).
    pub tun_fd: Option<std::os::fd::OwnedFd>,
    /// SYN flood (issue 9): length of the kernel's queue of packets waiting for the stack
    /// to read them (the TUN's `txqueuelen`; `None` keeps the kernel's 500). The kernel
    /// drops what does not fit (the device's TX `dropped` counter in `ip -s link`). A
    /// longer queue absorbs the time the reading thread is off the CPU, so fewer packets
    /// (and legitimate SYNs among a flood) are lost, at the price of queueing delay when
    /// the stack cannot keep up. See docs/performance.md, "SYN flood".
    pub tx_queue_len: Option<u32>,
    // --- IPv6 (issue 13)
    /// The stack's own IPv6 address, if it has one.
    pub addr6: Option<std::net::Ipv6Addr>,
    /// The kernel side's IPv6 address on the TUN and its prefix length (the kernel routes
    /// that prefix into the TUN).
    pub peer6: Option<(std::net::Ipv6Addr, u8)>,
    /// TUN offload (issue 12, default on): open the TUN with `IFF_VNET_HDR`, checksum
    /// offload and TSO, take GRO super-segments whole and send super-segments
    /// (`Stack::poll_transmit_gso`). Falls back to a plain TUN when the kernel refuses;
    /// off with an `impairment` (which works per packet) or an adopted `tun_fd`.
    /// [`LinkStats::offload`] says what is in force.
    pub offload: bool,
    // --- latency (issue 12)
    /// Whether a thread that leads (reads the TUN while blocked in a socket call) polls
    /// the TUN without sleeping before it sleeps in `ppoll`, so that a reply arriving
    /// within the budget costs no wake-up. Default [`BusyPoll::Adaptive`] with 50 µs.
    /// See [`BusyPoll`] and docs/latency.md.
    pub busy_poll: BusyPoll,
    /// Flow steering (issue 12, docs/latency.md section 8): at most this many extra TUN
    /// queues (`IFF_MULTI_QUEUE`, at most 255), each given to a connection whose thread
    /// blocks while another thread reads the TUN. An eBPF program (`device/steer.rs`)
    /// sends that connection's packets to its queue, so the kernel wakes the thread that
    /// waits for them instead of a reader that must then wake it. Queues are opened 8 at a
    /// time once threads crowd on connections (none before: a single-queue TUN never runs
    /// the program); each costs two descriptors (the queue and its eventfd), and each
    /// thread waiting on one a 256 KiB receive arena (pooled, so at most this many). 0 turns
    /// steering off. Without the privilege to load the program, or
    /// with an adopted `tun_fd`, steering is off ([`LinkStats::steering`] says which).
    pub steer_queues: u16,
}

impl InterfaceConfig {
    /// A configuration with MTU 1500, the default engine profile and no extras.
    pub fn new(tun_name: &str, addr: Ipv4Addr, peer: Ipv4Addr, prefix: u8) -> InterfaceConfig {
        InterfaceConfig {
            tun_name: tun_name.to_string(),
            addr,
            peer,
            prefix,
            mtu: 1500,
            engine: Config::default(),
            netns: None,
            pcap: None,
            impairment: None,
            tap: None,
            tun_fd: None,
            tx_queue_len: None,
            addr6: None,
            peer6: None,
            offload: true,
            busy_poll: BusyPoll::default(),
            steer_queues: 64,
        }
    }
}

/// How a leading thread waits for the TUN (`InterfaceConfig::busy_poll`, issue 12).
///
/// On a virtual machine a halted vCPU takes ~25–30 µs to wake, twice per request/response
/// round trip; polling the TUN for a few tens of microseconds before sleeping removes the
/// wake-up on the utcp side. It costs CPU, and on a loaded machine the poll takes CPU
/// from the threads that would produce the packet, so the default polls only when that
/// is unlikely to hurt (measured in docs/latency.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusyPoll {
    /// Sleep in `ppoll` at once (Linux's default, `net.core.busy_read` = 0).
    Off,
    /// Poll for up to this long before every sleep (like `net.core.busy_read`).
    Always(std::time::Duration),
    /// Poll for up to this long only while the leader is the interface's only blocked
    /// thread (no followers, no async tasks: the request/response or accept loop of one
    /// thread), and only while polling pays: a poll that reads nothing, or during which
    /// the polling thread was preempted (the CPU was wanted elsewhere), skips the next 1,
    /// 3, 7, ... up to 255 chances; a poll that reads a packet uncontended resets that.
    /// An idle or busy machine therefore polls at most once per 256 waits.
    Adaptive(std::time::Duration),
}

impl Default for BusyPoll {
    fn default() -> BusyPoll {
        BusyPoll::Adaptive(std::time::Duration::from_micros(50))
    }
}

/// Traffic seen by the device layer (not by the engine).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets read from the device.
    pub rx_packets: u64,
    /// Bytes read from the device.
    pub rx_bytes: u64,
    /// Packets written to the device.
    pub tx_packets: u64,
    /// Bytes written to the device.
    pub tx_bytes: u64,
    /// Packets the kernel refused to take (`EAGAIN`/`ENOBUFS` on the TUN write).
    pub tx_dropped: u64,
    // --- transmit queue (issue 12, latency): TUN writes after the interface lock ---
    /// Packets written to the TUN after the interface lock was released.
    pub tx_unlocked: u64,
    /// Packets written by another thread than the one whose engine call produced them
    /// (it found a writer already busy and returned at once).
    pub tx_by_other: u64,
    /// Times the transmit arena filled up in one engine call and was handed over early.
    pub tx_spills: u64,
    /// Times a producer waited for the writer to return an arena (the queue was full).
    pub tx_waits: u64,
    // --- transmit queue without the extra copy (tx.rs): arenas swapped, not copied ---
    /// Batches handed over by swapping the filled arena for an empty one (no copy).
    pub tx_swaps: u64,
    /// Small batches (`tx::TX_APPEND_MAX` bytes) copied behind the last queued batch.
    pub tx_appends: u64,
    /// Packets the impairment hook dropped.
    pub impaired_drops: u64,
    /// Packets the impairment hook duplicated.
    pub impaired_dups: u64,
    /// Packets the impairment hook reordered.
    pub impaired_reorders: u64,
    /// Times the driver thread woke up (TUN readable, timer, stop).
    pub driver_wakeups: u64,
    /// Times a thread moved the driver's timer (timerfd) to an earlier deadline.
    pub timer_arms: u64,
    /// Times a blocked application thread took over reading the TUN (became the leader).
    pub leads: u64,
    /// Times a leading application thread woke up from its poll of the TUN, or found
    /// packets waiting that the previous leader had left unread (it read one packet after
    /// its poll and returned, issue 12).
    pub leader_wakeups: u64,
    /// Times another thread had to wake the leader (an event for its socket).
    pub leader_kicks: u64,
    /// Times a leader handed the TUN straight back to the driver (others were waiting).
    pub handoffs: u64,
    /// Times the driver took back a TUN parked by a leader that stayed away.
    pub handbacks: u64,
    /// Waits a leader ended by busy polling (`InterfaceConfig::busy_poll`): a packet came
    /// before the budget ran out, so it did not sleep.
    pub busy_poll_hits: u64,
    /// Busy polls that read nothing within the budget (the leader then slept in `ppoll`).
    pub busy_poll_misses: u64,
    /// Busy polls during which the polling thread was preempted (it got under 3/4 of
    /// the wall time as CPU): the CPU was wanted elsewhere, so the adaptive poll backs off.
    pub busy_poll_contended: u64,
    /// Bursts read from a parked TUN by a socket call that did not block.
    pub pumps: u64,
    // --- async receive (`utcp::tokio::drive`, issue 11) ---
    /// Times the tokio task that reads the TUN woke up on its readiness.
    pub async_wakeups: u64,
    /// Bursts the tokio task read from the TUN and fed to the engine.
    pub async_bursts: u64,
    // --- TUN offload (issue 12)
    /// Whether the TUN runs with offload (`virtio_net_hdr`, checksum offload, TSO/GRO).
    pub offload: bool,
    /// GSO super-segments read from the TUN (each one packet in `rx_packets`).
    pub rx_super_segments: u64,
    /// Super-segments written to the TUN for the kernel to cut (each one packet in `tx_packets`).
    pub tx_super_segments: u64,
    /// TCP segments those written super-segments stand for.
    pub tx_super_segment_segs: u64,
    // --- flow steering (issue 12, `InterfaceConfig::steer_queues`, steered.rs)
    /// Whether the steering program is attached (a multi-queue TUN).
    pub steering: bool,
    /// Extra TUN queues opened so far (at most `InterfaceConfig::steer_queues`).
    pub steer_queues: u64,
    /// Connections given a queue (a flow entered the steering map).
    pub steer_assigned: u64,
    /// Queue requests that found none free (steering went on without that connection).
    pub steer_no_queue: u64,
    /// Steering-map updates or removals the kernel refused (the flow stays on queue 0).
    pub steer_map_errors: u64,
    /// Waits of a thread on its connection's own queue.
    pub steered_waits: u64,
    /// Times such a thread woke with packets on its queue.
    pub steered_wakeups: u64,
    /// Times another thread rang a steered waiter's bell (an event it processed).
    pub steered_bells: u64,
    /// Times the driver took over a queue whose thread stayed away (`HANDBACK`).
    pub steer_adoptions: u64,
}

/// A TUN device with a stack behind it, driven by its own thread.
///
/// Dropping it stops and joins the thread and closes the TUN; sockets still alive
/// afterwards fail with `NotConnected`.
pub struct Interface {
    shared: Arc<driver::Shared>,
    thread: Option<JoinHandle<()>>,
    tun_name: String,
    peer: Ipv4Addr,
    prefix: u8,
}

impl Interface {
    /// Create the TUN (in `config.netns` if set), configure it and start the driver.
    pub fn new(config: InterfaceConfig) -> io::Result<Interface> {
        let tun_name = config.tun_name.clone();
        let (peer, prefix) = (config.peer, config.prefix);
        let (shared, thread) = driver::start(config)?;
        Ok(Interface { shared, thread: Some(thread), tun_name, peer, prefix })
    }

    /// Drive an existing TUN descriptor ("bring your own device"): one handed over by a
    /// supervisor, made with `tun-rs`, or returned by a VPN API such as Android's
    /// `VpnService`. The device must be `IFF_TUN | IFF_NO_PI` without `IFF_VNET_HDR`;
    /// its addresses, routes and MTU are left as the caller set them, so
    /// `config.peer`, `prefix` and `netns` are not applied to it, and `config.mtu`
    /// must match the device's. `config.addr` is the stack's address behind the TUN.
    ///
    /// ```no_run
    /// # fn f() -> std::io::Result<()> {
    /// use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
    /// let dev = tun_rs::DeviceBuilder::new().name("byo0").ipv4("10.80.0.1", 24, None).build_sync()?;
    /// // SAFETY: the descriptor was just released by tun-rs; we own it now.
    /// let fd = unsafe { OwnedFd::from_raw_fd(dev.into_raw_fd()) };
    /// let cfg = utcp::InterfaceConfig::new("byo0", "10.80.0.2".parse().unwrap(), "10.80.0.1".parse().unwrap(), 24);
    /// let iface = utcp::Interface::from_fd(fd, cfg)?;
    /// # Ok(()) }
    /// ```
    pub fn from_fd(fd: std::os::fd::OwnedFd, mut config: InterfaceConfig) -> io::Result<Interface> {
        config.tun_fd = Some(fd);
        config.netns = None;
        Interface::new(config)
    }

    /// The stack's own address.
    pub fn addr(&self) -> Ipv4Addr {
        self.shared.addr
    }

    /// The kernel side's address and prefix.
    pub fn peer(&self) -> (Ipv4Addr, u8) {
        (self.peer, self.prefix)
    }

    /// The TUN interface's name.
    pub fn tun_name(&self) -> &str {
        &self.tun_name
    }

    /// A snapshot of the engine counters.
    pub fn counters(&self) -> Counters {
        self.shared.lock().stack.counters().clone()
    }

    /// A snapshot of the device-layer counters.
    pub fn link_stats(&self) -> LinkStats {
        let g = self.shared.lock();
        let mut s = g.link_stats();
        // Issue 12: the transmit counters live with the queue written outside the lock.
        self.shared.tx.add_stats(&mut s);
        s
    }

    /// The error that shut the interface down, if it is down.
    pub fn error(&self) -> Option<io::Error> {
        self.shared.lock().check_up().err()
    }

    /// Change the loss/duplication/reordering injected between the TUN and the engine
    /// from now on (`None` turns it off).
    pub fn set_impairment(&self, impairment: Option<Impairment>) {
        self.shared.lock().set_impairment(impairment);
    }

    /// Run `f` on the engine under the interface lock (diagnostics; keep it short).
    pub fn with_stack<R>(&self, f: impl FnOnce(&mut crate::engine::Stack) -> R) -> R {
        let mut g = self.shared.lock();
        let r = f(&mut g.stack);
        let now = self.shared.now();
        g.after_op(&self.shared, now);
        r
    }

    /// Wait until no packet has crossed the TUN for `quiet`, or `max` elapsed: lets
    /// FIN exchanges of just-closed connections finish before the interface is dropped.
    pub fn wait_quiet(&self, quiet: std::time::Duration, max: std::time::Duration) {
        let start = std::time::Instant::now();
        let total = |s: &LinkStats| s.rx_packets + s.tx_packets;
        let mut last = total(&self.link_stats());
        let mut last_change = std::time::Instant::now();
        while start.elapsed() < max && last_change.elapsed() < quiet {
            std::thread::sleep(std::time::Duration::from_millis(10));
            let t = total(&self.link_stats());
            if t != last {
                last = t;
                last_change = std::time::Instant::now();
            }
        }
    }
}

impl Drop for Interface {
    fn drop(&mut self) {
        self.shared.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.closed_after_stop();
    }
}
