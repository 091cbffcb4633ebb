//! Drawing: the time-sequence graph and the panels below it, as SVG with `plotters`.
//! An opaque white background and mid-saturation colours keep it readable in light and
//! dark viewers alike.

use super::series::{Mark, Series};
use super::{EngineTrack, phases};
use plotters::coord::Shift;
use plotters::prelude::*;
use utcp::engine::CcPhase;

pub const DATA: RGBColor = RGBColor(31, 119, 180);
/// Retransmissions: used for nothing else, so a test can count them in the SVG.
pub const RETRANSMIT: RGBColor = RGBColor(214, 39, 40);
pub const PROBE: RGBColor = RGBColor(255, 127, 14);
pub const ACKS: RGBColor = RGBColor(44, 160, 44);
pub const WINDOW: RGBColor = RGBColor(148, 103, 189);
pub const SACK: RGBColor = RGBColor(23, 190, 207);
pub const MARKS: RGBColor = RGBColor(40, 40, 40);
pub const RST: RGBColor = RGBColor(140, 20, 90);
pub const CWND: RGBColor = RGBColor(31, 119, 180);
pub const SSTHRESH: RGBColor = RGBColor(214, 120, 40);
pub const PIPE: RGBColor = RGBColor(100, 100, 100);
const GRID: RGBColor = RGBColor(232, 232, 232);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type R = Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing: {e:?}")
}

/// The shade of a congestion-control phase.
pub fn phase_color(p: CcPhase) -> RGBColor {
    match p {
        CcPhase::SlowStart => RGBColor(222, 242, 222),
        CcPhase::CongestionAvoidance => RGBColor(225, 236, 250),
        CcPhase::FastRecovery => RGBColor(255, 232, 200),
        CcPhase::RtoRecovery => RGBColor(250, 210, 214),
    }
}

/// Bytes in short human units (decimal, as network people count).
pub fn human_bytes(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2} GB", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2} MB", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.0} kB", v / 1e3)
    } else {
        format!("{v:.0} B")
    }
}

/// Render `s` (and the engine's track, if any) to an SVG document.
pub fn svg(s: &Series, engine: Option<&EngineTrack>, title: &str) -> Result<String, String> {
    let panels = 3 + engine.is_some() as u32;
    let (w, h) = (1200u32, 560 + 190 * panels + 10);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(title, ("sans-serif", 22)).map_err(err)?;
        let (main, mut rest) = root.split_vertically(530);
        let x = time_range(s);
        let shades = engine.map(|e| phases(e, s.t0)).unwrap_or_default();
        time_sequence(&main, s, x.clone(), &shades)?;
        if let Some(e) = engine {
            let (a, b) = rest.split_vertically(190);
            congestion_panel(&a, e, s.t0, x.clone(), &shades)?;
            rest = b;
        }
        let (a, b) = rest.split_vertically(190);
        let goodput: Vec<(f64, f64)> = s.goodput.iter().map(|&(t, v)| (t, v / 1e6)).collect();
        line_panel(&a, x.clone(), "goodput (Mbit/s)", &[("goodput, sliding window", ACKS, &goodput)], &[])?;
        let (a, b) = b.split_vertically(190);
        rtt_panel(&a, s, engine, x.clone())?;
        let flight: Vec<(f64, f64)> =
            steps_f(&s.in_flight.iter().map(|&(t, v)| (t, v as f64 / 1e3)).collect::<Vec<_>>());
        line_panel(&b, x, "bytes in flight (kB)", &[("in flight (wire)", PIPE, &flight)], &[])?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

fn time_range(s: &Series) -> std::ops::Range<f64> {
    let span = (s.t_max - s.t_min).max(1e-3);
    (s.t_min - span * 0.01)..(s.t_max + span * 0.02)
}

/// The time and sequence ranges of the time-sequence graph's axes.
pub fn ranges(s: &Series) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let y_hi = (s.seq_max.max(1) as f64) * 1.04;
    (time_range(s), -y_hi * 0.02..y_hi)
}

/// The Stevens/tcptrace graph: data bars, ACK line, window edge, SACKs, marks.
fn time_sequence(area: &Area, s: &Series, x: std::ops::Range<f64>, shades: &[(f64, f64, CcPhase)]) -> R {
    let y = ranges(s).1;
    let y_hi = y.end;
    let mut c = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("time (s)")
        .y_desc("relative sequence number")
        .y_label_formatter(&|v| human_bytes(*v))
        .light_line_style(GRID)
        .draw()
        .map_err(err)?;
    shade(&mut c, shades, -y_hi * 0.02, y_hi)?;
    let win: Vec<(f64, f64)> = steps(&s.window);
    c.draw_series(LineSeries::new(win, WINDOW.stroke_width(1)))
        .map_err(err)?
        .label("receive window edge (ACK + window)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], WINDOW.stroke_width(2)));
    c.draw_series(LineSeries::new(steps(&s.acks), ACKS.stroke_width(2)))
        .map_err(err)?
        .label("ACK (cumulative)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], ACKS.stroke_width(2)));
    c.draw_series(
        s.sacks
            .iter()
            .map(|&(t, l, r)| PathElement::new(vec![(t, l as f64), (t, r as f64)], SACK.stroke_width(3))),
    )
    .map_err(err)?
    .label("SACK block")
    .legend(|(x, y)| Rectangle::new([(x, y - 2), (x + 18, y + 2)], SACK.filled()));
    // A bar is at least ~3 px tall, so a lone small segment on a long transfer shows.
    let min_h = y_hi * 0.006;
    let bar = move |color: RGBColor, w: u32| {
        move |g: &super::series::Seg| {
            let top = (g.end as f64).max(g.seq as f64 + min_h);
            PathElement::new(vec![(g.t, g.seq as f64), (g.t, top)], color.stroke_width(w))
        }
    };
    c.draw_series(s.segs.iter().filter(|g| !g.retransmit && !g.zero_window_probe).map(bar(DATA, 2)))
        .map_err(err)?
        .label("data segment (seq .. seq+len)")
        .legend(|(x, y)| Rectangle::new([(x + 7, y - 6), (x + 10, y + 6)], DATA.filled()));
    c.draw_series(s.segs.iter().filter(|g| g.retransmit).map(bar(RETRANSMIT, 3)))
        .map_err(err)?
        .label("retransmission")
        .legend(|(x, y)| Rectangle::new([(x + 7, y - 6), (x + 10, y + 6)], RETRANSMIT.filled()));
    c.draw_series(s.segs.iter().filter(|g| g.zero_window_probe && !g.retransmit).map(bar(PROBE, 2)))
        .map_err(err)?;
    c.draw_series(
        s.segs
            .iter()
            .filter(|g| g.zero_window_probe)
            .map(|g| TriangleMarker::new((g.t, g.end as f64), 6, PROBE.filled())),
    )
    .map_err(err)?
    .label("zero-window probe")
    .legend(|(x, y)| TriangleMarker::new((x + 9, y), 6, PROBE.filled()));
    draw_marks(&mut c, s)?;
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.92))
        .border_style(BLACK.mix(0.5))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn draw_marks(c: &mut Chart, s: &Series) -> R {
    let of = |m: Mark| s.marks.iter().filter(move |x| x.2 == m).map(|&(t, y, _)| (t, y as f64));
    c.draw_series(of(Mark::Syn).map(|p| Circle::new(p, 6, MARKS.stroke_width(2))))
        .map_err(err)?
        .label("SYN")
        .legend(|(x, y)| Circle::new((x + 9, y), 5, MARKS.stroke_width(2)));
    c.draw_series(of(Mark::Fin).map(|p| Circle::new(p, 6, MARKS.filled())))
        .map_err(err)?
        .label("FIN")
        .legend(|(x, y)| Circle::new((x + 9, y), 5, MARKS.filled()));
    c.draw_series(of(Mark::Rst).map(|p| Cross::new(p, 7, RST.stroke_width(3))))
        .map_err(err)?
        .label("RST")
        .legend(|(x, y)| Cross::new((x + 9, y), 5, RST.stroke_width(3)));
    Ok(())
}

/// Shade each congestion-control phase interval across a chart's full height.
fn shade(c: &mut Chart, shades: &[(f64, f64, CcPhase)], lo: f64, hi: f64) -> R {
    c.draw_series(
        shades.iter().map(|&(a, b, p)| Rectangle::new([(a, lo), (b, hi)], phase_color(p).filled())),
    )
    .map_err(err)?;
    Ok(())
}

/// A step line: hold each value until the next sample.
fn steps(v: &[(f64, i64)]) -> Vec<(f64, f64)> {
    let f: Vec<(f64, f64)> = v.iter().map(|&(t, y)| (t, y as f64)).collect();
    steps_f(&f)
}

fn steps_f(v: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(v.len() * 2);
    for (i, &(t, y)) in v.iter().enumerate() {
        if i > 0 {
            out.push((t, v[i - 1].1));
        }
        out.push((t, y));
    }
    out
}

fn panel<'a, 'b>(
    area: &'a Area<'b>,
    x: std::ops::Range<f64>,
    y_hi: f64,
    desc: &str,
) -> Result<Chart<'a, 'b>, String> {
    let mut c = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(90)
        .build_cartesian_2d(x, 0.0..y_hi.max(1e-9) * 1.08)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("time (s)")
        .y_desc(desc)
        .y_labels(5)
        .light_line_style(GRID)
        .draw()
        .map_err(err)?;
    Ok(c)
}

type Line<'a> = (&'a str, RGBColor, &'a [(f64, f64)]);

fn line_panel(area: &Area, x: std::ops::Range<f64>, desc: &str, lines: &[Line], dots: &[Line]) -> R {
    let y_hi = lines.iter().chain(dots).flat_map(|l| l.2.iter().map(|p| p.1)).fold(0.0, f64::max);
    let mut c = panel(area, x, y_hi, desc)?;
    for &(name, color, pts) in lines {
        c.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    for &(name, color, pts) in dots {
        c.draw_series(pts.iter().map(|&p| Circle::new(p, 2, color.filled())))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 9, y), 3, color.filled()));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.92))
        .border_style(BLACK.mix(0.5))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)
}

fn rtt_panel(area: &Area, s: &Series, engine: Option<&EngineTrack>, x: std::ops::Range<f64>) -> R {
    let samples: Vec<(f64, f64)> = s.rtt.iter().map(|&(t, r)| (t, r * 1e3)).collect();
    let (mut srtt, mut rto) = (Vec::new(), Vec::new());
    if let Some(e) = engine {
        for p in &e.samples {
            // The initial RTO (1 s, RFC 6298 (2.1)) is drawn from the first measurement on,
            // so it does not flatten the round trips on the scale.
            if p.srtt_ms > 0.0 {
                srtt.push((p.t - s.t0, p.srtt_ms));
                rto.push((p.t - s.t0, p.rto_ms));
            }
        }
    }
    let (srtt, rto) = (steps_f(&srtt), steps_f(&rto));
    let lines: Vec<Line> = if engine.is_some() {
        vec![("SRTT (engine)", ACKS, &srtt), ("RTO (engine)", RETRANSMIT_DARK, &rto)]
    } else {
        vec![]
    };
    line_panel(area, x, "RTT (ms)", &lines, &[("RTT sample (segments sent once)", DATA, &samples)])
}

/// RTO in the RTT panel: darker than retransmissions so those stay countable.
const RETRANSMIT_DARK: RGBColor = RGBColor(150, 30, 30);

fn congestion_panel(
    area: &Area,
    e: &EngineTrack,
    t0: f64,
    x: std::ops::Range<f64>,
    shades: &[(f64, f64, CcPhase)],
) -> R {
    let kb = |f: fn(&super::EngineSample) -> f64| -> Vec<(f64, f64)> {
        let v: Vec<(f64, f64)> = e.samples.iter().map(|p| (p.t - t0, f(p) / 1e3)).collect();
        steps_f(&v)
    };
    let cwnd = kb(|p| p.cwnd as f64);
    let pipe = kb(|p| p.in_flight as f64);
    let top = cwnd.iter().chain(&pipe).map(|p| p.1).fold(0.0, f64::max);
    // ssthresh starts "arbitrarily high" (RFC 5681 §3.1): clip it to the panel.
    let ssthresh: Vec<(f64, f64)> =
        kb(|p| p.ssthresh as f64).into_iter().map(|(t, v)| (t, v.min(top * 1.05))).collect();
    let mut c = panel(area, x, top, &format!("{} window (kB)", e.side))?;
    shade(&mut c, shades, 0.0, top.max(1e-9) * 1.08)?;
    for (t, _, p) in shades.iter().skip(1) {
        c.draw_series(std::iter::once(PathElement::new(vec![(*t, 0.0), (*t, top * 1.08)], phase_edge(*p))))
            .map_err(err)?;
    }
    for (name, color, pts) in
        [("cwnd", CWND, &cwnd), ("ssthresh", SSTHRESH, &ssthresh), ("pipe (engine)", PIPE, &pipe)]
    {
        c.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    for p in [CcPhase::SlowStart, CcPhase::CongestionAvoidance, CcPhase::FastRecovery, CcPhase::RtoRecovery] {
        c.draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(err)?
            .label(p.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], phase_color(p).filled()));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.92))
        .border_style(BLACK.mix(0.5))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)
}

/// The line marking a transition into phase `p`, on the time axis.
fn phase_edge(p: CcPhase) -> ShapeStyle {
    let c = phase_color(p);
    RGBColor(c.0 / 2, c.1 / 2, c.2 / 2).stroke_width(1)
}
