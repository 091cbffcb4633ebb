//! `utcp bench`: the command line of [`utcp_tools::bench`].

use crate::args::Args;
use std::time::Duration;
use utcp_tools::bench::{self, Options, SystemKind, Workload};

const USAGE: &str = "\
usage: utcp bench [options]            kernel vs smoltcp vs utcp in private namespaces (root)
       utcp bench --engine [--segments N]   two in-memory Stacks exchange N full segments
       utcp bench --scale N[,N..]           memory per connection and demux cost (in memory)
       utcp bench --lossy [--quick]         utcp vs kernel through a router dropping 1%/5% (root)

options:
  --quick             a smoke run: 1 round, 0.3 s per workload
  --rounds N          rounds, systems interleaved in each (default 3)
  --duration SECS     length of one sample (default 5; bulk also stops at --max-bytes)
  --max-bytes SIZE    most bytes of one bulk sample (default 1G)
  --only W[,W..]      workloads: bulk_to_stack, bulk_from_stack, rr, connect
  --systems S[,S..]   systems: kernel, smoltcp, utcp
  --json              print one JSON object instead of the table
  --kernel-no-offload turn TSO/GSO/GRO off on the kernel reference's veth (needs ethtool)
  --segments N        segments of the --engine run (default 100000)
";

pub fn run(argv: &[String]) -> i32 {
    match run_inner(argv) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("utcp bench: {e}");
            if e.contains("needs root") { 77 } else { 1 }
        }
    }
}

fn run_inner(argv: &[String]) -> Result<(), String> {
    // main.rs installs the counting allocator as the global allocator.
    bench::alloc::mark_installed();
    let a = Args::parse(argv, &["only", "systems", "rounds", "duration", "max-bytes", "segments", "scale"])?;
    a.check_switches(&["json", "quick", "engine", "help", "kernel-no-offload", "lossy"])?;
    if a.has("help") {
        print!("{USAGE}");
        return Ok(());
    }
    if !a.positional.is_empty() {
        return Err(format!("unexpected argument {:?}\n{USAGE}", a.positional[0]));
    }
    let json = a.has("json");
    if a.has("lossy") {
        // Workload `lossy` (issue 10): utcp vs the kernel through a router dropping 1% and 5%.
        let mut o = bench::lossy::Options::default();
        if a.has("quick") {
            o.bytes = 2 << 20;
        }
        let rows = bench::lossy::run(&o, true).map_err(|e| e.to_string())?;
        print!("{}", bench::lossy::table(&rows));
        return Ok(());
    }
    if a.has("engine") {
        let segments: u64 = a.parse_or("segments", 100_000)?;
        let r = bench::engine::run(segments).map_err(|e| e.to_string())?;
        if json {
            println!("{}", r.json());
        } else {
            print!("{}", r.text());
        }
        return Ok(());
    }
    if let Some(list) = a.get("scale") {
        let ns = list.split(',').map(|s| parse_count(s.trim())).collect::<Result<Vec<usize>, String>>()?;
        let r = bench::scale::run(&ns, !json).map_err(|e| e.to_string())?;
        if json {
            println!("{}", r.json());
        } else {
            print!("{}", r.text());
        }
        return Ok(());
    }
    let mut opts = if a.has("quick") { Options::quick() } else { Options::full() };
    opts.kernel_offload = !a.has("kernel-no-offload");
    if let Some(r) = a.get("rounds") {
        opts.rounds = r.parse().ok().filter(|&r| r >= 1).ok_or(format!("--rounds: bad count {r:?}"))?;
    }
    if let Some(d) = a.get("duration") {
        let secs: f64 = d
            .parse()
            .ok()
            .filter(|s: &f64| *s > 0.0 && *s <= 600.0)
            .ok_or(format!("--duration: bad seconds {d:?} (0 < s <= 600)"))?;
        opts.duration = Duration::from_secs_f64(secs);
    }
    if let Some(m) = a.get("max-bytes") {
        opts.max_bytes = crate::args::parse_size(m)?.max(1);
    }
    if let Some(list) = a.get("only") {
        opts.workloads = parse_list(list, Workload::parse, "workload")?;
    }
    if let Some(list) = a.get("systems") {
        opts.systems = parse_list(list, SystemKind::parse, "system")?;
    }
    let report = bench::run(&opts).map_err(|e| e.to_string())?;
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// A comma-separated list, deduplicated, in canonical order.
fn parse_list<T: Ord + Copy>(list: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<Vec<T>, String> {
    let mut v = Vec::new();
    for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        v.push(parse(s).ok_or(format!("unknown {what} {s:?}"))?);
    }
    if v.is_empty() {
        return Err(format!("empty {what} list"));
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// `1000`, `10k`, `100k`, `1m`.
fn parse_count(s: &str) -> Result<usize, String> {
    let (num, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1_000),
        Some('m' | 'M') => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    num.parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| (1..=1_000_000).contains(&n))
        .ok_or(format!("--scale: bad count {s:?} (1..=1m)"))
}
