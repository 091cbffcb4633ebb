//! `utcp plot`: a time-sequence graph of one connection from a pcap (thin CLI over
//! `utcp_tools::plot::run`).

use crate::args::Args;
use utcp_tools::plot::{PlotOptions, run};

const HELP: &str = "\
usage: utcp plot CAPTURE.pcap [--conn SRC:PORT-DST:PORT] [--from T] [--to T] -o OUT.svg
  --conn SRC:PORT-DST:PORT  the data direction to draw       [the busiest]
  --from T, --to T          seconds from the connection's first packet
  -o, --out FILE            the SVG to write                  [plot.svg]
";

pub fn run_cli(argv: &[String]) -> i32 {
    let argv: Vec<String> = argv.iter().map(|a| if a == "-o" { "--out".into() } else { a.clone() }).collect();
    let opts = match Args::parse(&argv, &["conn", "from", "to", "out"]).and_then(|a| build(&a)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{HELP}");
            return 0;
        }
        Err(e) => {
            eprintln!("utcp plot: {e}\n\n{HELP}");
            return 2;
        }
    };
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

fn build(a: &Args) -> Result<Option<PlotOptions>, String> {
    a.check_switches(&["help"])?;
    if a.has("help") {
        return Ok(None);
    }
    let [capture] = a.positional.as_slice() else { return Err("one capture file expected".into()) };
    Ok(Some(PlotOptions {
        capture: capture.into(),
        conn: a.get("conn").map(str::parse).transpose()?,
        from: a.parse_or("from", 0.0)?,
        to: a.parse_or("to", f64::INFINITY)?,
        out: a.get("out").unwrap_or("plot.svg").into(),
    }))
}

/// `utcp sim --plot FILE [--plot-side a|b]`: write the recorded run's plot.
pub fn write_sim_plot(
    rec: &utcp_tools::plot::record::Recorder,
    side: Option<&str>,
    path: &str,
    title: &str,
) -> Result<(), String> {
    use utcp::device::link::Side;
    let side = match side.unwrap_or("a") {
        "a" | "A" => Side::A,
        "b" | "B" => Side::B,
        o => return Err(format!("--plot-side {o}: expected a or b")),
    };
    let flow = rec.flow_of(side).ok_or("nothing was sent")?;
    let svg = rec.svg(side, &format!("{title}: {flow}"))?;
    utcp_tools::plot::write(std::path::Path::new(path), &svg)?;
    println!("plot: {path}");
    Ok(())
}

/// `utcp sim --scenario NAME|list [--trace] [--explain] [--plot FILE]`.
pub fn scenario_cli(name: &str, args: &Args) -> i32 {
    use utcp_tools::scenario;
    if name == "list" {
        for s in scenario::ALL {
            println!("{:<18} {}", s.name, s.title);
        }
        return 0;
    }
    let Some(sc) = scenario::find(name) else {
        eprintln!("utcp sim: no scenario {name:?}; `utcp sim --scenario list` names them");
        return 2;
    };
    println!("scenario {}: {}\n", sc.name, sc.title);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let trace: Option<&mut dyn std::io::Write> = if args.has("trace") { Some(&mut out) } else { None };
    let (report, rec) = scenario::run(sc, trace, args.has("explain"));
    drop(out);
    let path = args.get("plot").map(str::to_string).unwrap_or(format!("{}.svg", sc.name));
    let side = args.get("plot-side").or(Some(if sc.side == utcp::device::link::Side::A { "a" } else { "b" }));
    if let Err(e) = write_sim_plot(&rec, side, &path, sc.name) {
        eprintln!("utcp sim: {e}");
        return 1;
    }
    crate::sim::print_summary(&(sc.config)(), &report);
    println!("\nwhat to look for: {}", sc.look_for);
    if report.ok() { 0 } else { 1 }
}
