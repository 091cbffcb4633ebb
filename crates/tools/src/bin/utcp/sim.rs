//! `utcp sim`: two engines over an impaired in-memory link, no root needed.

use crate::args::{Args, parse_prob, parse_size};
use std::io::Write;
use utcp::device::link::Impairments;
use utcp::device::pcap::PcapWriter;
use utcp_tools::sim::{CloseMode, OpenMode, SimConfig, SimReport};
use utcp::time::Duration;

const HELP: &str = "\
usage: utcp sim [options]
  --bytes N          bytes each side sends (K/M/G suffixes)          [1M]
  --loss P           per-packet loss probability (fraction)           [0]
  --reorder P        per-packet reordering probability                [0]
  --dup P            per-packet duplication probability               [0]
  --corrupt P        per-packet one-bit corruption probability        [0]
  --delay MS         one-way delay in milliseconds                    [5]
  --jitter MS        extra uniform delay in milliseconds              [0]
  --rate BITS        bottleneck rate in bit/s (K/M/G suffixes)        [none]
  --seed S           PRNG seed                                        [1]
  --close MODE       active | passive | simultaneous                  [active]
  --open MODE        normal | simultaneous                            [normal]
  --trace            one line per segment and per state transition
  --pcap FILE        write every segment sent to a pcap file
  --explain          with --trace: the rule that sent each segment
  --plot FILE        time-sequence graph with engine state (SVG)
  --plot-side a|b    whose sending direction --plot draws             [a]
  --scenario NAME    a guided run that teaches one thing; `list` names them
";

pub fn run_cli(argv: &[String]) -> i32 {
    let args = match Args::parse(
        argv,
        &[
            "bytes", "loss", "reorder", "dup", "corrupt", "delay", "jitter", "rate", "seed", "close", "open",
            "pcap", "plot", "plot-side", "scenario",
        ],
    ) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("utcp sim: {e}\n\n{HELP}");
            return 2;
        }
    };
    if args.has("help") {
        print!("{HELP}");
        return 0;
    }
    if let Some(name) = args.get("scenario") {
        return crate::plot::scenario_cli(name, &args);
    }
    let cfg = match build(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("utcp sim: {e}\n\n{HELP}");
            return 2;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut pcap = match args.get("pcap") {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => {
                let w: Box<dyn Write> = Box::new(std::io::BufWriter::new(f));
                match PcapWriter::new(w) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        eprintln!("utcp sim: {path}: {e}");
                        return 1;
                    }
                }
            }
            Err(e) => {
                eprintln!("utcp sim: {path}: {e}");
                return 1;
            }
        },
        None => None,
    };
    let trace: Option<&mut dyn Write> = if args.has("trace") { Some(&mut out) } else { None };
    let mut rec = utcp_tools::plot::record::Recorder::new();
    let obs: Option<&mut dyn utcp_tools::sim::Observer> =
        if args.get("plot").is_some() { Some(&mut rec) } else { None };
    let report = utcp_tools::sim::run_observed(&cfg, trace, pcap.as_mut(), obs);
    if let Some(mut p) = pcap {
        let _ = p.flush();
    }
    if let Some(path) = args.get("plot")
        && let Err(e) = crate::plot::write_sim_plot(&rec, args.get("plot-side"), path, "utcp sim")
    {
        eprintln!("utcp sim: {e}");
        return 1;
    }
    print_summary(&cfg, &report);
    if report.ok() { 0 } else { 1 }
}

fn build(args: &Args) -> Result<SimConfig, String> {
    args.check_switches(&["trace", "explain", "help"])?;
    let mut cfg = SimConfig::default();
    let prob = |name: &str| args.get(name).map(parse_prob).transpose().map(|v| v.unwrap_or(0.0));
    let ms = |name: &str, d: u64| -> Result<Duration, String> {
        let v: f64 = args.parse_or(name, d as f64)?;
        if v.is_nan() || v < 0.0 || !v.is_finite() {
            return Err(format!("--{name} must be >= 0"));
        }
        Ok(Duration::from_micros((v * 1000.0) as u64))
    };
    cfg.bytes = args.get("bytes").map(parse_size).transpose()?.unwrap_or(1 << 20);
    let imp = Impairments {
        loss: prob("loss")?,
        reorder: prob("reorder")?,
        dup: prob("dup")?,
        corrupt: prob("corrupt")?,
        delay: ms("delay", 5)?,
        jitter: ms("jitter", 0)?,
        rate_bps: args.get("rate").map(parse_size).transpose()?,
        queue_limit: 1000,
        ..Impairments::none()
    };
    cfg.a_to_b = imp.clone();
    cfg.b_to_a = imp;
    cfg.seed = args.parse_or("seed", 1u64)?;
    cfg.explain = args.has("explain");
    cfg.close = match args.get("close").unwrap_or("active") {
        "active" => CloseMode::Active,
        "passive" => CloseMode::Passive,
        "simultaneous" => CloseMode::Simultaneous,
        o => return Err(format!("--close {o}: expected active, passive or simultaneous")),
    };
    cfg.open = match args.get("open").unwrap_or("normal") {
        "normal" => OpenMode::Normal,
        "simultaneous" => OpenMode::Simultaneous,
        o => return Err(format!("--open {o}: expected normal or simultaneous")),
    };
    Ok(cfg)
}

fn hex(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn print_summary(cfg: &SimConfig, r: &SimReport) {
    println!();
    println!("utcp sim: seed {} bytes {} close {:?} open {:?}", cfg.seed, cfg.bytes, cfg.close, cfg.open);
    println!("  simulated time   {:.3} s", r.duration.as_secs_f64());
    for (name, s, peer) in [("A→B", &r.a, &r.b), ("B→A", &r.b, &r.a)] {
        let ok = if s.sha_sent == peer.sha_received && s.sent == peer.received { "match" } else { "DIFFER" };
        println!("  {name}  sent {} received {}  {ok}", s.sent, peer.received);
        println!("        sha256 sent     {}", hex(&s.sha_sent));
        println!("        sha256 received {}", hex(&peer.sha_received));
    }
    for (name, s) in [("A", &r.a), ("B", &r.b)] {
        println!(
            "  {name}: retransmits {} fast retransmits {} timeouts {} final state {} ({:?})",
            s.retransmits, s.fast_retransmits, s.timeouts, s.final_state, s.close_reason
        );
        let drops: Vec<String> = utcp::wire::DropReason::ALL
            .iter()
            .filter(|d| s.counters.dropped(**d) > 0)
            .map(|d| format!("{}={}", d.name(), s.counters.dropped(*d)))
            .collect();
        if !drops.is_empty() {
            println!("     drops: {}", drops.join(" "));
        }
    }
    let l = &r.link;
    println!(
        "  link A→B: sent {} lost {} dup {} reordered {} corrupted {}",
        l.a_to_b.sent, l.a_to_b.dropped_loss, l.a_to_b.duplicated, l.a_to_b.reordered, l.a_to_b.corrupted
    );
    println!(
        "  link B→A: sent {} lost {} dup {} reordered {} corrupted {}",
        l.b_to_a.sent, l.b_to_a.dropped_loss, l.b_to_a.duplicated, l.b_to_a.reordered, l.b_to_a.corrupted
    );
    match &r.failure {
        None => println!("  result: OK"),
        Some(f) => println!("  result: FAILED: {f}"),
    }
}
