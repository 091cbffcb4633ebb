//! `utcp plot`: a time-sequence graph of one connection from a pcap (thin CLI over
//! `utcp_tools::plot::run`), and the plot helpers of `utcp sim`.

use clap::Args;
use std::path::PathBuf;
use utcp_tools::plot::{PlotOptions, run};

/// Draw a time-sequence graph of one connection in a pcap, tcptrace style (no root)
///
/// Data segments as bars (retransmissions in red), the ACK line, the receive-window edge,
/// SACK blocks, zero-window probes, SYN/FIN/RST marks; below: goodput, RTT samples and
/// bytes in flight. Reads raw-IP, Ethernet and Linux cooked captures (tcpdump, utcp).
#[derive(Args, Debug)]
pub struct PlotArgs {
    /// The capture to read
    #[arg(value_name = "CAPTURE.pcap")]
    capture: PathBuf,
    /// The data direction to draw, SRC:PORT-DST:PORT [default: the busiest]
    #[arg(long, value_name = "SRC:PORT-DST:PORT")]
    conn: Option<String>,
    /// Start, in seconds from the connection's first packet
    #[arg(long, value_name = "T", default_value_t = 0.0)]
    from: f64,
    /// End, in seconds from the connection's first packet [default: the end]
    #[arg(long, value_name = "T")]
    to: Option<f64>,
    /// The SVG to write
    #[arg(short = 'o', long = "out", value_name = "OUT.svg", default_value = "plot.svg")]
    out: PathBuf,
}

pub fn run_cli(a: PlotArgs) -> i32 {
    let conn = match a.conn.as_deref().map(str::parse).transpose() {
        Ok(c) => c,
        Err(e) => crate::usage_error("plot", format!("--conn: {e}")),
    };
    let opts =
        PlotOptions { capture: a.capture, conn, from: a.from, to: a.to.unwrap_or(f64::INFINITY), out: a.out };
    match run(&opts) {
        Ok(s) => {
            println!(
                "{}: {} segments, {} retransmitted, {} zero-window probes, {:.3} s, sequence 0..{} -> {}",
                s.flow,
                s.segments,
                s.retransmits,
                s.zero_window_probes,
                s.duration,
                s.sent_end,
                opts.out.display()
            );
            0
        }
        Err(e) => {
            eprintln!("utcp plot: {e}");
            1
        }
    }
}

/// `utcp sim --plot FILE [--plot-side a|b]`: write the recorded run's plot.
pub fn write_sim_plot(
    rec: &utcp_tools::plot::record::Recorder,
    side: utcp::device::link::Side,
    path: &std::path::Path,
    title: &str,
) -> Result<(), String> {
    let flow = rec.flow_of(side).ok_or("nothing was sent")?;
    let svg = rec.svg(side, &format!("{title}: {flow}"))?;
    utcp_tools::plot::write(path, &svg)?;
    println!("plot: {}", path.display());
    Ok(())
}

/// `utcp sim --scenario NAME|list [--trace] [--explain] [--plot FILE]`.
pub fn scenario_cli(
    name: &str,
    trace: bool,
    explain: bool,
    plot: Option<&std::path::Path>,
    side: Option<utcp::device::link::Side>,
) -> i32 {
    use utcp_tools::scenario;
    if name == "list" {
        for s in scenario::ALL {
            println!("{:<18} {}", s.name, s.title);
        }
        return 0;
    }
    let Some(sc) = scenario::find(name) else {
        crate::usage_error("sim", format!("no scenario {name:?}; `utcp sim --scenario list` names them"));
    };
    println!("scenario {}: {}\n", sc.name, sc.title);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let tr: Option<&mut dyn std::io::Write> = if trace { Some(&mut out) } else { None };
    let (report, rec) = scenario::run(sc, tr, explain);
    drop(out);
    let path = plot.map(PathBuf::from).unwrap_or_else(|| PathBuf::from(format!("{}.svg", sc.name)));
    if let Err(e) = write_sim_plot(&rec, side.unwrap_or(sc.side), &path, sc.name) {
        eprintln!("utcp sim: {e}");
        return 1;
    }
    let mut so = std::io::stdout().lock();
    let _ = crate::sim::print_summary(&mut so, &(sc.config)(), &report);
    println!("\nwhat to look for: {}", sc.look_for);
    if report.ok() { 0 } else { 1 }
}
