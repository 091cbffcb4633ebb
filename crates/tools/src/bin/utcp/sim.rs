//! `utcp sim`: two engines over an impaired in-memory link, no root needed.

use crate::parsers::{millis, prob, size};
use clap::{Args, ValueEnum};
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;
use utcp::device::link::Impairments;
use utcp::device::pcap::PcapWriter;
use utcp_tools::sim::{CloseMode, OpenMode, SimConfig, SimReport};

/// Two engines over an impaired in-memory link (no root)
///
/// Each side sends --bytes to the other; the summary compares SHA-256 digests of what was
/// sent and received. Exit status 1 if they differ or the connection failed.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// Bytes each side sends (K/M/G suffixes)
    #[arg(long, value_name = "N", default_value = "1M", value_parser = size)]
    bytes: u64,
    /// Per-packet loss probability (fraction)
    #[arg(long, value_name = "P", default_value = "0", value_parser = prob)]
    loss: f64,
    /// Per-packet reordering probability
    #[arg(long, value_name = "P", default_value = "0", value_parser = prob)]
    reorder: f64,
    /// Per-packet duplication probability
    #[arg(long, value_name = "P", default_value = "0", value_parser = prob)]
    dup: f64,
    /// Per-packet one-bit corruption probability
    #[arg(long, value_name = "P", default_value = "0", value_parser = prob)]
    corrupt: f64,
    /// One-way delay in milliseconds
    #[arg(long, value_name = "MS", default_value = "5", value_parser = millis)]
    delay: Duration,
    /// Extra uniform delay in milliseconds
    #[arg(long, value_name = "MS", default_value = "0", value_parser = millis)]
    jitter: Duration,
    /// Bottleneck rate in bit/s (K/M/G suffixes) [default: none]
    #[arg(long, value_name = "BITS", value_parser = size)]
    rate: Option<u64>,
    /// PRNG seed
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Which side closes first
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Close::Active)]
    close: Close,
    /// How the connection opens
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Open::Normal)]
    open: Open,
    /// One line per segment and per state transition
    #[arg(long)]
    trace: bool,
    /// Write every segment sent to a pcap file
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Congestion control of both engines (RFC 5681/6582 NewReno, RFC 9438 CUBIC)
    #[arg(long, value_name = "NAME", value_enum, default_value_t = Cc::Newreno)]
    cc: Cc,
    /// RFC 8985 tail loss probe [default: the engine's Config default]
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    tlp: Option<bool>,
    /// RFC 6937 proportional rate reduction in SACK recovery [default: Config default]
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    prr: Option<bool>,
    /// RFC 8985 §6 RACK time-based loss detection [default: the engine's Config default]
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    rack: Option<bool>,
    /// With --trace: the rule that sent each segment (and each drop's reason)
    #[arg(long)]
    explain: bool,
    /// Write a time-sequence graph with the engine's state (cwnd, ssthresh, pipe, RTO,
    /// recovery phases) to this SVG
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Whose sending direction --plot draws [default: a]
    #[arg(long, value_name = "a|b", value_parser = side)]
    plot_side: Option<utcp::device::link::Side>,
    /// A guided run that teaches one thing (`list` names them); writes its plot
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
    /// Run over IPv6 (2001:db8::1 to 2001:db8::2) instead of IPv4
    #[arg(long)]
    ipv6: bool,
}

fn side(s: &str) -> Result<utcp::device::link::Side, String> {
    match s {
        "a" | "A" => Ok(utcp::device::link::Side::A),
        "b" | "B" => Ok(utcp::device::link::Side::B),
        o => Err(format!("expected a or b, not {o:?}")),
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Cc {
    Newreno,
    Cubic,
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        o => Err(format!("expected on or off, not {o:?}")),
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Close {
    Active,
    Passive,
    Simultaneous,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Open {
    Normal,
    Simultaneous,
}

pub fn run(args: SimArgs) -> i32 {
    if let Some(name) = &args.scenario {
        return crate::plot::scenario_cli(
            name,
            args.trace,
            args.explain,
            args.plot.as_deref(),
            args.plot_side,
        );
    }
    let mut cfg = config(&args);
    cfg.explain = args.explain;
    let mut pcap = match args.pcap.as_deref().map(open_pcap).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("utcp sim: {e}");
            return 1;
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let trace: Option<&mut dyn Write> = if args.trace { Some(&mut out) } else { None };
    let mut rec = utcp_tools::plot::record::Recorder::new();
    let obs: Option<&mut dyn utcp_tools::sim::Observer> =
        if args.plot.is_some() { Some(&mut rec) } else { None };
    let report = utcp_tools::sim::run_observed(&cfg, trace, pcap.as_mut(), obs);
    if let Some(mut p) = pcap {
        let _ = p.flush();
    }
    if let Some(path) = &args.plot {
        let side = args.plot_side.unwrap_or(utcp::device::link::Side::A);
        if let Err(e) = crate::plot::write_sim_plot(&rec, side, path, "utcp sim") {
            eprintln!("utcp sim: {e}");
            return 1;
        }
    }
    let printed = print_summary(&mut out, &cfg, &report);
    crate::output_status("sim", printed.map(|()| if report.ok() { 0 } else { 1 }))
}

fn open_pcap(path: &std::path::Path) -> Result<PcapWriter<Box<dyn Write>>, String> {
    let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let w: Box<dyn Write> = Box::new(io::BufWriter::new(f));
    PcapWriter::new(w).map_err(|e| format!("{}: {e}", path.display()))
}

fn config(a: &SimArgs) -> SimConfig {
    let imp = Impairments {
        loss: a.loss,
        reorder: a.reorder,
        dup: a.dup,
        corrupt: a.corrupt,
        delay: a.delay,
        jitter: a.jitter,
        rate_bps: a.rate,
        queue_limit: 1000,
        ..Impairments::none()
    };
    let mut cfg = SimConfig {
        bytes: a.bytes,
        a_to_b: imp.clone(),
        b_to_a: imp,
        seed: a.seed,
        close: match a.close {
            Close::Active => CloseMode::Active,
            Close::Passive => CloseMode::Passive,
            Close::Simultaneous => CloseMode::Simultaneous,
        },
        open: match a.open {
            Open::Normal => OpenMode::Normal,
            Open::Simultaneous => OpenMode::Simultaneous,
        },
        ..SimConfig::default()
    };
    // Loss recovery (issue 10).
    cfg.engine.congestion_control = match a.cc {
        Cc::Newreno => utcp::engine::config::CongestionAlgorithm::NewReno,
        Cc::Cubic => utcp::engine::config::CongestionAlgorithm::Cubic,
    };
    cfg.engine.tail_loss_probe = a.tlp.unwrap_or(cfg.engine.tail_loss_probe);
    cfg.engine.prr = a.prr.unwrap_or(cfg.engine.prr);
    // IPv6 (issue 13).
    cfg.ipv6 = a.ipv6;
    cfg.engine.rack = a.rack.unwrap_or(cfg.engine.rack);
    cfg
}

fn hex(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn print_summary(out: &mut impl Write, cfg: &SimConfig, r: &SimReport) -> io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "utcp sim: seed {} bytes {} close {:?} open {:?}",
        cfg.seed, cfg.bytes, cfg.close, cfg.open
    )?;
    writeln!(out, "  simulated time   {:.3} s", r.duration.as_secs_f64())?;
    let done = |s: &utcp_tools::sim::SideReport| {
        s.received_all_at.map_or("never".to_string(), |d| format!("{:.3} s", d.as_secs_f64()))
    };
    writeln!(out, "  transfer done    A {}  B {} (all bytes received)", done(&r.b), done(&r.a))?;
    for (name, s, peer) in [("A→B", &r.a, &r.b), ("B→A", &r.b, &r.a)] {
        let ok = if s.sha_sent == peer.sha_received && s.sent == peer.received { "match" } else { "DIFFER" };
        writeln!(out, "  {name}  sent {} received {}  {ok}", s.sent, peer.received)?;
        writeln!(out, "        sha256 sent     {}", hex(&s.sha_sent))?;
        writeln!(out, "        sha256 received {}", hex(&peer.sha_received))?;
    }
    for (name, s) in [("A", &r.a), ("B", &r.b)] {
        writeln!(
            out,
            "  {name}: retransmits {} fast retransmits {} timeouts {} final state {} ({:?})",
            s.retransmits, s.fast_retransmits, s.timeouts, s.final_state, s.close_reason
        )?;
        let drops: Vec<String> = utcp::wire::DropReason::ALL
            .iter()
            .filter(|d| s.counters.dropped(**d) > 0)
            .map(|d| format!("{}={}", d.name(), s.counters.dropped(*d)))
            .collect();
        if !drops.is_empty() {
            writeln!(out, "     drops: {}", drops.join(" "))?;
        }
    }
    for (name, l) in [("A→B", &r.link.a_to_b), ("B→A", &r.link.b_to_a)] {
        writeln!(
            out,
            "  link {name}: sent {} lost {} dup {} reordered {} corrupted {}",
            l.sent, l.dropped_loss, l.duplicated, l.reordered, l.corrupted
        )?;
    }
    match &r.failure {
        None => writeln!(out, "  result: OK"),
        Some(f) => writeln!(out, "  result: FAILED: {f}"),
    }
}
