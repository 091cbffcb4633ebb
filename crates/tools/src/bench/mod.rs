//! `utcp bench`: utcp beside the Linux kernel's TCP and smoltcp, plus in-memory engine runs.
//!
//! Three systems are measured in one invocation, each inside private network namespaces the
//! bench creates and removes ([`crate::netns`]):
//! - `kernel`: kernel ↔ kernel over a veth pair between two namespaces (the reference),
//! - `smoltcp`: kernel ↔ smoltcp over a TUN (MTU 1500) in one namespace,
//! - `utcp`: kernel ↔ utcp over a TUN (MTU 1500) via [`utcp`].
//!
//! The load generator is always the kernel's TCP ([`harness`]): std sockets on a thread that
//! entered the namespace. Every system serves the same four ports ([`Port`]); the client picks
//! the workload by the port it connects to, so no workload header perturbs the numbers.
//!
//! The in-memory modes need no root: [`engine`] (two Stacks exchanging N full segments, for
//! callgrind) and [`scale`] (memory per connection and demux cost as N grows).

pub mod alloc;
pub mod engine;
pub mod forward;
pub mod harness;
pub mod http;
pub mod kernel;
pub mod lossy;
pub mod report;
pub mod scale;
pub mod smoltcp_sys;
pub mod synflood;
pub mod synflood_ceiling;
pub mod twmem;
pub mod utcp_sys;

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

pub use harness::{Sample, Workload};

/// Runs a standalone workload: (quick, json) -> the table or JSON.
pub type StandaloneRun = fn(bool, bool) -> io::Result<String>;

/// Workloads with their own topology and systems, run alone by name (`utcp bench --only NAME`).
pub const STANDALONE: &[(&str, StandaloneRun)] = &[("forward", forward::cli), ("http", http::cli)];
pub use report::Report;

/// The systems under test, in the order they are interleaved.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub enum SystemKind {
    Kernel,
    Smoltcp,
    Utcp,
    /// utcp polling before every sleep (`BusyPoll::Always(`[`utcp_sys::BUSY_POLL`]`)`): only
    /// on request (`--systems ...,utcp-busy`), reported as its own row, never instead of `utcp`.
    UtcpBusy,
    /// utcp that never polls (`BusyPoll::Off`), to show what the default adaptive poll
    /// buys: only on request (`--systems ...,utcp-nopoll`).
    UtcpNoPoll,
    /// utcp without flow steering (`InterfaceConfig::steer_queues = 0`), to show what the
    /// multi-queue TUN and its program cost or buy: only on request.
    UtcpNoSteer,
}

impl SystemKind {
    /// The systems of a default run.
    pub const ALL: [SystemKind; 3] = [SystemKind::Kernel, SystemKind::Smoltcp, SystemKind::Utcp];
    /// Systems measured only when named (`--systems`).
    pub const EXTRA: [SystemKind; 3] =
        [SystemKind::UtcpBusy, SystemKind::UtcpNoPoll, SystemKind::UtcpNoSteer];

    pub fn name(self) -> &'static str {
        match self {
            SystemKind::Kernel => "kernel",
            SystemKind::Smoltcp => "smoltcp",
            SystemKind::Utcp => "utcp",
            SystemKind::UtcpBusy => "utcp-busy",
            SystemKind::UtcpNoPoll => "utcp-nopoll",
            SystemKind::UtcpNoSteer => "utcp-nosteer",
        }
    }

    pub fn parse(s: &str) -> Option<SystemKind> {
        SystemKind::ALL.into_iter().chain(SystemKind::EXTRA).find(|k| k.name() == s)
    }
}

/// The server ports every system listens on; the port selects the server's behaviour.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Port {
    /// Read until EOF, then write one byte and close (`bulk_to_stack`).
    Sink = 5001,
    /// Write until the peer resets the connection (`bulk_from_stack`).
    Source = 5002,
    /// Echo every byte back until EOF (`rr`).
    Echo = 5003,
    /// Read one byte, write one byte, close (`connect`).
    Connect = 5004,
}

impl Port {
    pub const ALL: [Port; 4] = [Port::Sink, Port::Source, Port::Echo, Port::Connect];

    pub fn number(self) -> u16 {
        self as u16
    }

    pub fn from_number(n: u16) -> Option<Port> {
        Port::ALL.into_iter().find(|p| p.number() == n)
    }
}

/// What a running system offers the load generator.
pub trait System {
    fn kind(&self) -> SystemKind;
    /// Where the kernel client thread runs.
    fn client_ns(&self) -> &crate::netns::NetNs;
    /// The address the system's servers listen on.
    fn server_ip(&self) -> Ipv4Addr;
    /// The servers' own namespace, when it is not the client's (synflood routes into it).
    fn server_ns(&self) -> Option<&crate::netns::NetNs> {
        None
    }
    /// The runtime's link counters so far (utcp only), printed after each sample when
    /// `UTCP_BENCH_STATS` is set (issue 12: who woke how often).
    fn link_stats(&self) -> Option<utcp::LinkStats> {
        None
    }
    /// The engine's counters so far (utcp only), printed beside `link_stats`.
    fn engine_counters(&self) -> Option<utcp::engine::Counters> {
        None
    }
}

/// `UTCP_BENCH_STATS` is set: print utcp's link counters and rr's latency tail per sample.
pub fn stats_wanted() -> bool {
    std::env::var_os("UTCP_BENCH_STATS").is_some()
}

/// Options of a network run (`utcp bench` without `--engine`/`--scale`).
#[derive(Clone, Debug)]
pub struct Options {
    pub rounds: usize,
    /// Length of one sample of one workload.
    pub duration: Duration,
    /// Upper bound on the bytes of one bulk sample (1 GiB by default).
    pub max_bytes: u64,
    pub workloads: Vec<Workload>,
    pub systems: Vec<SystemKind>,
    /// Print progress on stderr.
    pub progress: bool,
    /// Keep TSO/GSO on the kernel reference's veth (default); off moves one MSS per packet.
    pub kernel_offload: bool,
    /// TUN offload on the utcp side (issue 12; default on): `--no-offload` turns it off.
    pub utcp_offload: bool,
}

impl Options {
    pub fn full() -> Options {
        Options {
            rounds: 3,
            duration: Duration::from_secs(5),
            max_bytes: 1 << 30,
            workloads: Workload::ALL.to_vec(),
            systems: SystemKind::ALL.to_vec(),
            progress: true,
            kernel_offload: true,
            utcp_offload: true,
        }
    }

    /// A smoke run for CI: one round, 0.3 s per workload.
    pub fn quick() -> Options {
        Options { rounds: 1, duration: Duration::from_millis(300), max_bytes: 256 << 20, ..Options::full() }
    }
}

/// Bring up every selected system, run the rounds interleaving the systems (A B C A B C ...),
/// tear everything down (also on error, by `Drop`), and return the medians.
pub fn run(opts: &Options) -> io::Result<Report> {
    if !crate::netns::is_root() || !std::path::Path::new("/dev/net/tun").exists() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "utcp bench needs root and /dev/net/tun: it creates network namespaces, a veth pair \
             and TUN devices (run it with sudo; the in-memory --engine and --scale modes need no root)",
        ));
    }
    let _guard = interrupt::Guard::install()?;
    let mut systems: Vec<Box<dyn System>> = Vec::new();
    for &k in &opts.systems {
        if opts.progress {
            eprintln!("bench: setting up {}", k.name());
        }
        let s: Box<dyn System> = match k {
            SystemKind::Kernel => Box::new(kernel::KernelSystem::start(opts.kernel_offload)?),
            SystemKind::Smoltcp => Box::new(smoltcp_sys::SmoltcpSystem::start()?),
            SystemKind::Utcp => Box::new(utcp_sys::UtcpSystem::start(opts.utcp_offload)?),
            k @ (SystemKind::UtcpBusy | SystemKind::UtcpNoPoll | SystemKind::UtcpNoSteer) => {
                Box::new(utcp_sys::UtcpSystem::start_variant(k, opts.utcp_offload)?)
            }
        };
        systems.push(s);
    }
    let mut report = Report::new(opts.rounds);
    for round in 0..opts.rounds {
        for &w in &opts.workloads {
            for s in &systems {
                if interrupt::requested() {
                    // Returning unwinds `systems`: threads joined, namespaces deleted.
                    return Err(io::Error::new(
                        io::ErrorKind::Interrupted,
                        "interrupted; namespaces removed",
                    ));
                }
                let res = harness::run_sample(s.as_ref(), w, opts);
                match res {
                    Ok(sample) => {
                        if opts.progress {
                            eprintln!(
                                "bench: round {}/{} {:<15} {:<8} {}",
                                round + 1,
                                opts.rounds,
                                w.name(),
                                s.kind().name(),
                                sample.describe()
                            );
                        }
                        if stats_wanted()
                            && let Some(st) = s.link_stats()
                        {
                            eprintln!("bench: utcp link stats so far: {st:?}");
                            if let Some(c) = s.engine_counters() {
                                eprintln!("bench: utcp engine counters so far: {c}");
                            }
                        }
                        report.add(w, s.kind(), sample);
                    }
                    Err(e) => {
                        eprintln!(
                            "bench: round {}/{} {} {} FAILED: {e}",
                            round + 1,
                            opts.rounds,
                            w.name(),
                            s.kind().name()
                        );
                        report.add_failure(w, s.kind());
                    }
                }
            }
        }
    }
    if opts.progress {
        eprintln!("bench: tearing down");
    }
    drop(systems);
    Ok(report)
}

/// Ctrl-C during a network run: the first SIGINT/SIGTERM only sets a flag, the run stops
/// after the current sample and unwinds, so every namespace is deleted. A second one
/// terminates at once (status 130). Outside a run the signals keep their default action.
mod interrupt {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A stop was asked for during the current run.
    static REQUESTED: AtomicBool = AtomicBool::new(false);
    /// No run is in progress: a signal does what it does by default.
    static IDLE: AtomicBool = AtomicBool::new(true);
    /// The handlers, registered once per process (signal-hook cannot hand a signal back
    /// to its default disposition, so they stay and `IDLE` emulates it).
    static INSTALLED: OnceLock<std::io::Result<()>> = OnceLock::new();

    fn install_once() -> std::io::Result<()> {
        for sig in [SIGINT, SIGTERM] {
            // In this order: outside a run, the default action; a second signal in a run
            // exits; the first one sets the flag.
            flag::register_conditional_default(sig, &IDLE)?;
            flag::register_conditional_shutdown(sig, 130, &REQUESTED)?;
            flag::register(sig, &REQUESTED)?;
        }
        Ok(())
    }

    pub fn requested() -> bool {
        REQUESTED.load(Ordering::SeqCst)
    }

    /// Marks a run in progress until dropped.
    pub struct Guard(());

    impl Guard {
        pub fn install() -> std::io::Result<Guard> {
            if let Err(e) = INSTALLED.get_or_init(install_once) {
                return Err(std::io::Error::new(e.kind(), format!("signal handlers: {e}")));
            }
            REQUESTED.store(false, Ordering::SeqCst);
            IDLE.store(false, Ordering::SeqCst);
            Ok(Guard(()))
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            IDLE.store(true, Ordering::SeqCst);
            REQUESTED.store(false, Ordering::SeqCst);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn first_signal_in_a_run_only_sets_the_flag() {
            let guard = Guard::install().expect("handlers");
            assert!(!requested());
            // raise(3) delivers the signal before it returns; a default action would end
            // the test process here.
            signal_hook::low_level::raise(SIGTERM).expect("raise");
            assert!(requested());
            drop(guard);
            assert!(!requested(), "the next run starts clean");
        }
    }
}
