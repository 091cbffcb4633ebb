//! `utcp bench`: the command line of [`utcp_tools::bench`].

use crate::parsers;
use clap::Args;
use std::io::{self, Write};
use std::time::Duration;
use utcp_tools::bench::{self, Options, SystemKind, Workload};

/// Compare utcp with the kernel and smoltcp, as ratios (root; --engine, --scale: no root)
///
/// Without --engine or --scale: the kernel's TCP, smoltcp and utcp serve the same workloads
/// in private network namespaces the bench creates and removes; the table gives medians and
/// utcp's ratios. A failed sample is counted under "fails" (null in --json), never as 0.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A smoke run: 1 round, 0.3 s per workload
    #[arg(long)]
    quick: bool,
    /// Rounds, systems interleaved in each [default: 3]
    #[arg(long, value_name = "N", value_parser = parsers::count)]
    rounds: Option<usize>,
    /// Length of one sample in seconds; bulk also stops at --max-bytes [default: 5]
    #[arg(long, value_name = "SECS", value_parser = parsers::sample_duration)]
    duration: Option<Duration>,
    /// Most bytes of one bulk sample [default: 1G]
    #[arg(long, value_name = "SIZE", value_parser = parsers::size)]
    max_bytes: Option<u64>,
    /// Workloads: bulk_to_stack, bulk_from_stack, rr, connect; or alone: forward
    #[arg(long, value_name = "W[,W..]", value_parser = workloads)]
    only: Option<Workloads>,
    /// Systems: kernel, smoltcp, utcp; also utcp-busy (BusyPoll::Always 50 µs), utcp-nopoll (BusyPoll::Off) and utcp-nosteer (no flow steering), never in the default set
    #[arg(long, value_name = "S[,S..]", value_parser = systems)]
    systems: Option<Systems>,
    /// Print one JSON object instead of the table
    #[arg(long)]
    json: bool,
    /// Turn TSO/GSO/GRO off on the kernel reference's veth (needs ethtool)
    #[arg(long)]
    kernel_no_offload: bool,
    /// Open utcp's TUN without offload (no virtio-net header, checksum offload or TSO/GRO)
    #[arg(long)]
    no_offload: bool,
    /// Two in-memory Stacks exchange --segments full segments (no root); with --systems
    /// smoltcp (or utcp,smoltcp) two smoltcp interfaces run the same workload
    #[arg(long, conflicts_with = "scale")]
    engine: bool,
    /// Segments of the --engine run
    #[arg(long, value_name = "N", default_value_t = 100_000, requires = "engine")]
    segments: u64,
    /// With --engine: the utcp pair moves super-segments of up to N segments
    /// (poll_transmit_gso) handed over whole with the checksum vouched for (TUN offload)
    #[arg(long, value_name = "N", requires = "engine")]
    gso: Option<usize>,
    /// Memory per connection and demux cost for N connections (in memory, no root)
    #[arg(long, value_name = "N[,N..]", value_parser = scale)]
    scale: Option<Counts>,
    /// RSS per server-closed connection: N connections the stack closes first, measured
    /// at the end and after TIME-WAIT expiry (root)
    #[arg(long, value_name = "N", value_parser = parsers::scale_count, conflicts_with_all = ["engine", "scale", "synflood"])]
    twmem: Option<usize>,
    /// Bulk transfers both ways through a router namespace dropping 1% and 5% (iptables
    /// statistic), utcp against the kernel with the same congestion control (root)
    #[arg(long, conflicts_with_all = ["engine", "scale", "synflood", "twmem"])]
    lossy: bool,
    /// Spoofed random-source SYN flood (--duration, 20 s by default, at most 60) while a
    /// kernel client connects every 20 ms; legitimate success, p50/p99 and RSS (root)
    #[arg(long, conflicts_with_all = ["engine", "scale"])]
    synflood: bool,
    /// With --synflood(-ceiling): the utcp (or reflector) TUN queue in packets (InterfaceConfig::tx_queue_len;
    /// 0 keeps the kernel's 500) [default: 10000]
    #[arg(long, value_name = "N")]
    txqueuelen: Option<u32>,
    /// The SYN flood's ceiling behind a TUN: a null reflector answers each packet through
    /// read/write and through io_uring (--duration, 10 s by default, at most 60; root)
    #[arg(long, conflicts_with_all = ["engine", "scale", "synflood", "twmem", "lossy"])]
    synflood_ceiling: bool,
    /// With --synflood-ceiling: the paths (rw, uring, uring-ms, sink, rw2) [default: rw,uring]
    #[arg(long, value_name = "P[,P..]", requires = "synflood_ceiling")]
    paths: Option<String>,
    /// With --synflood-ceiling: io_uring reads in flight [default: 64]
    #[arg(long, value_name = "N", requires = "synflood_ceiling")]
    uring_depth: Option<u32>,
}

/// The parsed comma lists (newtypes: clap reads a `Vec` field as a repeatable flag).
#[derive(Clone, Debug)]
struct Workloads(Vec<Workload>, Option<bench::StandaloneRun>);
#[derive(Clone, Debug)]
struct Systems(Vec<SystemKind>);
#[derive(Clone, Debug)]
struct Counts(Vec<usize>);

fn workloads(s: &str) -> Result<Workloads, String> {
    if let Some(&(_, run)) = bench::STANDALONE.iter().find(|(name, _)| *name == s) {
        return Ok(Workloads(vec![], Some(run)));
    }
    parsers::list(s, |w| Workload::parse(w).ok_or(format!("unknown workload {w:?}")))
        .map(|w| Workloads(w, None))
}

fn systems(s: &str) -> Result<Systems, String> {
    parsers::list(s, |k| SystemKind::parse(k).ok_or(format!("unknown system {k:?}"))).map(Systems)
}

fn scale(s: &str) -> Result<Counts, String> {
    // In the order given: each point is printed as it is measured.
    s.split(',').map(|n| parsers::scale_count(n.trim())).collect::<Result<_, _>>().map(Counts)
}

pub fn run(args: BenchArgs) -> i32 {
    match run_inner(&args) {
        Ok(()) => 0,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("utcp bench: {e}");
            match e.kind() {
                io::ErrorKind::PermissionDenied => 77,
                io::ErrorKind::Interrupted => 130,
                _ => 1,
            }
        }
    }
}

fn run_inner(a: &BenchArgs) -> io::Result<()> {
    // main.rs installs the counting allocator as the global allocator.
    bench::alloc::mark_installed();
    let text = if let Some(Workloads(_, Some(standalone))) = &a.only {
        standalone(a.quick, a.json)?
    } else if a.engine {
        let systems = match &a.systems {
            // utcp first, so the ratio line reads utcp/smoltcp.
            Some(Systems(s)) => s.iter().rev().map(|k| k.name()).collect(),
            None => vec!["utcp"],
        };
        let r = bench::engine::run_systems(a.segments, &systems, a.gso.unwrap_or(0))?;
        if a.json { bench::engine::json(&r) } else { bench::engine::text(&r) }
    } else if let Some(n) = a.twmem {
        bench::twmem::run(n, !a.json)?.text()
    } else if a.lossy {
        let mut o = bench::lossy::Options::default();
        if a.quick {
            o.bytes = 2 << 20;
        }
        bench::lossy::table(&bench::lossy::run(&o, !a.json)?)
    } else if a.synflood {
        let mut o = bench::synflood::SynfloodOptions::default();
        if let Some(d) = a.duration {
            o.flood = d.min(Duration::from_secs(60));
        }
        if let Some(Systems(s)) = &a.systems {
            o.systems = s.clone();
        }
        if let Some(n) = a.txqueuelen {
            o.utcp_tx_queue_len = (n > 0).then_some(n);
        }
        let r = bench::synflood::run(&o, !a.json)?;
        if a.json { bench::synflood::json(&r) } else { bench::synflood::table(&r, &o) }
    } else if a.synflood_ceiling {
        use bench::synflood_ceiling as ceil;
        let mut o = ceil::CeilingOptions::default();
        if let Some(d) = a.duration {
            o.flood = d.min(Duration::from_secs(60));
        }
        if let Some(n) = a.txqueuelen {
            o.tx_queue_len = (n > 0).then_some(n);
        }
        if let Some(n) = a.uring_depth {
            o.uring.depth = n;
        }
        if let Some(p) = &a.paths {
            o.paths = parsers::list(p, |w| {
                ceil::Path::parse(w).ok_or(format!("unknown path {w:?} (rw, uring, uring-ms, sink, rw2)"))
            })
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        ceil::table(&ceil::run(&o, !a.json)?, &o)
    } else if let Some(Counts(ns)) = &a.scale {
        let r = bench::scale::run(ns, !a.json)?;
        if a.json { r.json() } else { r.text() }
    } else {
        let r = bench::run(&options(a))?;
        if a.json { r.json() } else { r.table() }
    };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if a.json {
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn options(a: &BenchArgs) -> Options {
    let mut opts = if a.quick { Options::quick() } else { Options::full() };
    opts.kernel_offload = !a.kernel_no_offload;
    opts.utcp_offload = !a.no_offload;
    opts.rounds = a.rounds.unwrap_or(opts.rounds);
    opts.duration = a.duration.unwrap_or(opts.duration);
    opts.max_bytes = a.max_bytes.map(|m| m.max(1)).unwrap_or(opts.max_bytes);
    if let Some(Workloads(w, _)) = &a.only {
        opts.workloads = w.clone();
    }
    if let Some(Systems(s)) = &a.systems {
        opts.systems = s.clone();
    }
    opts
}
