//! `utcp plot`, `sim --plot`, `--explain` and the scenarios (issue 14).
//!
//! The SVG parses as XML; its axes cover the connection; the retransmission marks equal
//! the engine's counter for the same seed; a render to pixels has ink where the data is;
//! no segment the engine sends is unexplained; a kernel-to-kernel capture made with
//! tcpdump in two namespaces draws (root).

use std::io::Write;
use std::time::Duration;
use utcp::device::link::{Impairments, Side};
use utcp::device::pcap::PcapWriter;
use utcp::engine::{CcPhase, TxReason};
use utcp_tools::plot::record::Recorder;
use utcp_tools::plot::{self, PlotOptions, render};
use utcp_tools::scenario;
use utcp_tools::sim::{SimConfig, SimReport, run_observed};

/// A lossy, reordering, duplicating one-way transfer.
fn lossy(seed: u64) -> SimConfig {
    let imp = Impairments {
        loss: 0.03,
        reorder: 0.02,
        dup: 0.01,
        corrupt: 0.005,
        delay: Duration::from_millis(10),
        rate_bps: Some(20_000_000),
        queue_limit: 1000,
        ..Impairments::none()
    };
    SimConfig {
        bytes: 300_000,
        bytes_b: Some(20_000),
        a_to_b: imp.clone(),
        b_to_a: imp,
        seed,
        ..SimConfig::default()
    }
}

fn record(cfg: &SimConfig) -> (SimReport, Recorder) {
    let mut rec = Recorder::new();
    let r = run_observed(cfg, None, None, Some(&mut rec));
    assert!(r.ok(), "sim failed: {:?}", r.failure);
    (r, rec)
}

fn hex(c: plotters::style::RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// Polylines drawn with `color` (plotters writes one per PathElement).
fn polylines(doc: &roxmltree::Document, color: &str) -> usize {
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("polyline") && n.attribute("stroke").is_some_and(|s| s.eq_ignore_ascii_case(color))
        })
        .count()
}

#[test]
fn retransmission_marks_equal_the_engine_counter() {
    for seed in [1, 2, 3] {
        let (r, rec) = record(&lossy(seed));
        assert!(r.a.retransmits > 0, "seed {seed}: the impairments caused no retransmission");
        let s = rec.series(Side::A).unwrap();
        assert_eq!(s.retransmits as u64, r.a.retransmits, "seed {seed}: series vs engine");
        let svg = rec.svg(Side::A, "test").unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("the SVG parses as XML");
        assert_eq!(
            polylines(&doc, &hex(render::RETRANSMIT)) as u64,
            r.a.retransmits,
            "seed {seed}: SVG marks"
        );
    }
}

#[test]
fn axes_cover_the_connection_time_and_sequence_range() {
    let (r, rec) = record(&lossy(4));
    let s = rec.series(Side::A).unwrap();
    let (x, y) = render::ranges(&s);
    let first = rec.packets.first().unwrap().t;
    let last = rec.packets.iter().map(|p| p.t).fold(0.0, f64::max);
    assert!(x.start <= first && x.end >= last, "time axis {x:?} vs packets {first}..{last}");
    // 300 000 bytes + SYN + FIN of sequence space; the window edge lies above.
    assert!(s.seq_max >= r.a.sent as i64 + 2, "seq max {} < sent {}", s.seq_max, r.a.sent);
    assert!(y.start <= 0.0 && y.end >= s.seq_max as f64, "sequence axis {y:?} vs {}", s.seq_max);
    // The SVG's sequence tick labels reach at least three quarters of the range.
    let svg = rec.svg(Side::A, "test").unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let top = doc
        .descendants()
        .filter_map(|n| n.text())
        .filter_map(|t| t.trim().strip_suffix(" kB").and_then(|v| v.parse::<f64>().ok()))
        .fold(0.0, f64::max);
    assert!(top * 1e3 >= 0.75 * s.seq_max as f64, "highest sequence label {top} kB");
}

/// Render with resvg (no text: no fonts needed) and look at the pixels.
#[test]
fn rendered_png_is_not_blank_and_the_data_region_has_ink() {
    let (_, rec) = record(&scenario_cfg("fast-recovery"));
    let svg = rec.svg(Side::A, "test").unwrap();
    let tree = resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).expect("usvg parses it");
    let size = tree.size().to_int_size();
    let mut pm = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pm.as_mut());
    let px = pm.pixels();
    let w = size.width() as usize;
    let colors: std::collections::HashSet<[u8; 4]> =
        px.iter().map(|p| [p.red(), p.green(), p.blue(), p.alpha()]).collect();
    assert!(colors.len() > 10, "image is nearly blank: {} colours", colors.len());
    assert!(px.iter().all(|p| p.alpha() == 255), "background is not opaque");
    // The time-sequence graph (top 530 px): data bars, ACK line, retransmission.
    let near = |p: &resvg::tiny_skia::PremultipliedColorU8, c: plotters::style::RGBColor| {
        (p.red() as i32 - c.0 as i32).abs() < 8
            && (p.green() as i32 - c.1 as i32).abs() < 8
            && (p.blue() as i32 - c.2 as i32).abs() < 8
    };
    let region = &px[..530 * w];
    for (name, c, min) in
        [("data", render::DATA, 200), ("ACK", render::ACKS, 200), ("retransmission", render::RETRANSMIT, 5)]
    {
        let n = region.iter().filter(|p| near(p, c)).count();
        assert!(n >= min, "{name}: only {n} pixels of ink in the data region");
    }
    // The engine panel below has cwnd ink.
    let panel = &px[530 * w..720 * w];
    assert!(panel.iter().filter(|p| near(p, render::CWND)).count() > 100, "no cwnd line");
}

fn scenario_cfg(name: &str) -> SimConfig {
    (scenario::find(name).unwrap().config)()
}

#[test]
fn no_segment_is_unexplained_and_retransmissions_say_why() {
    for seed in [5, 6] {
        let (r, rec) = record(&lossy(seed));
        for (i, (side, why)) in rec.reasons.iter().enumerate() {
            assert_ne!(*why, TxReason::Unexplained, "seed {seed}: segment {i} from {side:?} is unexplained");
        }
        let rtx = rec.reasons.iter().filter(|(s, w)| *s == Side::A && w.is_retransmission()).count();
        assert_eq!(rtx as u64, r.a.retransmits, "seed {seed}: retransmission reasons vs counter");
    }
}

#[test]
fn explain_annotates_every_line_of_the_trace() {
    let cfg = SimConfig { explain: true, ..lossy(7) };
    let mut out = Vec::new();
    let r = run_observed(&cfg, Some(&mut out as &mut dyn Write), None, None);
    assert!(r.ok());
    let text = String::from_utf8(out).unwrap();
    let drops = text.lines().filter(|l| l.contains(" drops a segment ; dropped: ")).count();
    assert!(drops > 0, "corruption and duplicates cause drops, and each is named");
    let segs: Vec<&str> =
        text.lines().filter(|l| !l.contains(" state ") && !l.contains(" drops a segment")).collect();
    assert!(segs.len() > 100);
    for l in &segs {
        let (_, why) = l.split_once(" ; ").unwrap_or_else(|| panic!("no reason: {l}"));
        assert!(why.contains("RFC") && !why.contains("unexplained"), "{l}");
    }
}

/// Each scenario runs, is listed, teaches what it says, and plots.
#[test]
fn scenarios_show_what_they_promise() {
    let want: &[(&str, TxReason, Option<CcPhase>)] = &[
        ("slow-start", TxReason::NewData, Some(CcPhase::SlowStart)),
        ("fast-recovery", TxReason::FastRetransmit, Some(CcPhase::FastRecovery)),
        ("rto", TxReason::RtoRetransmit, Some(CcPhase::RtoRecovery)),
        ("zero-window", TxReason::ZeroWindowProbe, None),
        ("simultaneous-open", TxReason::SimultaneousSynAck, None),
        ("syn-flood", TxReason::CookieSynAck, None),
    ];
    assert_eq!(scenario::ALL.len(), want.len());
    for &(name, why, phase) in want {
        let sc = scenario::find(name).unwrap_or_else(|| panic!("{name} is not listed"));
        let (r, rec) = scenario::run(sc, None, false);
        assert!(r.ok(), "{name}: {:?}", r.failure);
        // The listener (B) answers the flood with cookies; every other lesson is A's sending.
        let from = if name == "syn-flood" { Side::B } else { Side::A };
        assert!(rec.reasons.iter().any(|(s, w)| *s == from && *w == why), "{name}: no {why:?} from {from:?}");
        if let Some(p) = phase {
            assert!(rec.a.samples.iter().any(|s| s.phase == p), "{name}: A never in {p:?}");
        }
        let svg = rec.svg(sc.side, name).unwrap();
        roxmltree::Document::parse(&svg).unwrap();
    }
    // The zero-window plot marks the probes, and the flood is answered with cookies.
    let (_, rec) = scenario::run(scenario::find("zero-window").unwrap(), None, false);
    assert!(rec.series(Side::A).unwrap().zero_window_probes >= 2);
    let (r, _) = scenario::run(scenario::find("syn-flood").unwrap(), None, false);
    assert!(r.b.counters.syncookies_sent > 0 && r.b.counters.syncookies_recv >= 1, "{:?}", r.b.counters);
}

/// A pcap written by the simulator (raw IP) plots with the same retransmission count.
#[test]
fn utcp_pcap_plots_like_the_recording() {
    let dir = std::env::temp_dir().join(format!("utcp-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pcap_path, svg_path) = (dir.join("sim.pcap"), dir.join("sim.svg"));
    let f: Box<dyn Write> = Box::new(std::fs::File::create(&pcap_path).unwrap());
    let mut w = PcapWriter::new(f).unwrap();
    let r = run_observed(&lossy(8), None, Some(&mut w), None);
    w.flush().unwrap();
    drop(w);
    assert!(r.ok());
    let opts =
        PlotOptions { capture: pcap_path, conn: None, from: 0.0, to: f64::INFINITY, out: svg_path.clone() };
    let s = plot::run(&opts).unwrap();
    assert_eq!(s.flow.src.ip(), utcp_tools::sim::ADDR_A, "busiest direction is A's");
    assert_eq!(s.retransmits as u64, r.a.retransmits);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(polylines(&doc, &hex(render::RETRANSMIT)) as u64, r.a.retransmits);
    // --conn picks the other direction; --from/--to cut the time window.
    let back = plot::Flow { src: s.flow.dst, dst: s.flow.src };
    let b = plot::run(&PlotOptions { conn: Some(back), ..opts.clone() }).unwrap();
    assert_eq!(b.retransmits as u64, r.b.retransmits);
    let part = plot::run(&PlotOptions { from: 0.0, to: s.duration / 2.0, ..opts }).unwrap();
    assert!(part.segments < s.segments && part.segments > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn garbage_captures_are_errors_not_panics() {
    let dir = std::env::temp_dir().join(format!("utcp-plot-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad.pcap");
    for bytes in [vec![], vec![0u8; 100], b"\xd4\xc3\xb2\xa1garbage-garbage-garbage".to_vec()] {
        std::fs::write(&p, &bytes).unwrap();
        let opts = PlotOptions {
            capture: p.clone(),
            conn: None,
            from: 0.0,
            to: f64::INFINITY,
            out: dir.join("x.svg"),
        };
        assert!(plot::run(&opts).is_err());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every segment the engine sends in our packetdrill scripts carries a reason.
#[test]
fn script_explain_leaves_no_segment_unexplained() {
    use utcp_tools::script::{self, profile::Profile};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scripts");
    let files = script::collect_scripts(&[dir]).unwrap();
    assert!(files.len() > 10);
    let mut profile = Profile::utcp();
    profile.explain = true;
    let mut explained = 0;
    for f in &files {
        let r = script::run_file(f, &profile, true);
        for l in r.trace.iter().filter(|l| l.contains("utcp sends")) {
            assert!(!l.ends_with("; unexplained"), "{}: {l}", f.display());
            assert!(l.contains("RFC"), "{}: {l}", f.display());
            explained += 1;
        }
    }
    assert!(explained > 100, "only {explained} segments seen");
}
