//! `utcp plot`: time-sequence graphs (Stevens, tcptrace) of one direction of one TCP
//! connection, from any pcap or from the simulator, with the engine's own state
//! (cwnd, ssthresh, pipe, SRTT/RTO, recovery phase) when it is known.
//!
//! - [`pcap`]: a small pcap reader (raw IP, Ethernet, Linux SLL);
//! - [`conn`]: TCP headers, connections, the busiest one;
//! - [`series`]: what the graph draws, in seconds and relative sequence numbers;
//! - [`render`]: the SVG, with `plotters`.

pub mod conn;
pub mod pcap;
pub mod record;
pub mod render;
pub mod series;

pub use conn::{Flow, Packet};
pub use series::Series;
use utcp::engine::{CcPhase, Status};

/// Options of `utcp plot` (the CLI is a thin layer over [`run`]).
#[derive(Clone, Debug)]
pub struct PlotOptions {
    pub capture: std::path::PathBuf,
    /// The data direction to draw; the busiest when None.
    pub conn: Option<Flow>,
    /// Time window in seconds from the connection's first packet.
    pub from: f64,
    pub to: f64,
    pub out: std::path::PathBuf,
}

/// What [`run`] drew.
#[derive(Clone, Debug)]
pub struct PlotSummary {
    pub flow: Flow,
    pub segments: usize,
    pub retransmits: usize,
    pub zero_window_probes: usize,
    pub duration: f64,
    /// Top of the graph's sequence range: the highest sequence sent, or the highest
    /// window edge the receiver offered.
    pub bytes: i64,
    /// One past the highest sequence number sent (relative; SYN and FIN count).
    pub sent_end: i64,
}

/// Read the capture, pick the connection, draw it to `opts.out`.
pub fn run(opts: &PlotOptions) -> Result<PlotSummary, String> {
    let data = std::fs::read(&opts.capture).map_err(|e| format!("{}: {e}", opts.capture.display()))?;
    let cap = pcap::Capture::parse(data).map_err(|e| format!("{}: {e}", opts.capture.display()))?;
    let packets = packets_of(&cap);
    let flow = match opts.conn {
        Some(f) => f,
        None => conn::busiest(&packets).ok_or("no TCP segments in the capture")?,
    };
    let s = series::build(&packets, flow, opts.from, opts.to);
    if s.segs.is_empty() && s.acks.is_empty() {
        return Err(format!("no segments of {flow} in the time window"));
    }
    let title = format!("{flow}: time-sequence graph");
    write(&opts.out, &render::svg(&s, None, &title)?)?;
    Ok(summary(&s, flow))
}

/// The TCP segments of a capture, time in seconds from its first frame.
pub fn packets_of(cap: &pcap::Capture) -> Vec<Packet> {
    let frames = cap.frames();
    let t0 = frames.iter().map(|f| f.time_us).min().unwrap_or(0);
    frames.iter().filter_map(|f| conn::parse_tcp((f.time_us - t0) as f64 / 1e6, f.ip)).collect()
}

pub fn summary(s: &Series, flow: Flow) -> PlotSummary {
    PlotSummary {
        flow,
        segments: s.segs.len(),
        retransmits: s.retransmits,
        zero_window_probes: s.zero_window_probes,
        duration: s.t_max - s.t_min,
        bytes: s.seq_max,
        sent_end: s.segs.iter().map(|g| g.end).max().unwrap_or(0),
    }
}

pub fn write(path: &std::path::Path, svg: &str) -> Result<(), String> {
    std::fs::write(path, svg).map_err(|e| format!("{}: {e}", path.display()))
}

/// One sample of engine state, `t` in seconds of the run's own clock.
#[derive(Clone, Copy, Debug)]
pub struct EngineSample {
    pub t: f64,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub in_flight: usize,
    pub srtt_ms: f64,
    pub rto_ms: f64,
    pub phase: CcPhase,
}

impl EngineSample {
    pub fn of(t: f64, st: &Status) -> EngineSample {
        EngineSample {
            t,
            cwnd: st.cwnd,
            ssthresh: st.ssthresh,
            in_flight: st.bytes_in_flight,
            srtt_ms: st.srtt_us as f64 / 1e3,
            rto_ms: st.rto_us as f64 / 1e3,
            phase: st.phase,
        }
    }
}

/// The engine state of one side over a run, sampled whenever it may have changed.
#[derive(Clone, Debug, Default)]
pub struct EngineTrack {
    /// Who this is ("A's" / "B's"), for panel titles.
    pub side: String,
    pub samples: Vec<EngineSample>,
}

/// Cap on samples kept (a long run keeps its first part; the plot says so by ending).
pub const MAX_ENGINE_SAMPLES: usize = 1 << 20;

impl EngineTrack {
    /// Record a sample unless nothing plotted changed since the last one.
    pub fn push(&mut self, s: EngineSample) {
        let same = self.samples.last().is_some_and(|l| {
            (l.cwnd, l.ssthresh, l.in_flight, l.phase) == (s.cwnd, s.ssthresh, s.in_flight, s.phase)
                && l.srtt_ms == s.srtt_ms
                && l.rto_ms == s.rto_ms
        });
        if !same && self.samples.len() < MAX_ENGINE_SAMPLES {
            self.samples.push(s);
        }
    }

    /// Phase transitions: (t, from, to).
    pub fn transitions(&self) -> Vec<(f64, CcPhase, CcPhase)> {
        self.samples
            .windows(2)
            .filter(|w| w[0].phase != w[1].phase)
            .map(|w| (w[1].t, w[0].phase, w[1].phase))
            .collect()
    }
}

/// Intervals of constant phase, in the series' time (`t - t0`), for shading.
pub fn phases(e: &EngineTrack, t0: f64) -> Vec<(f64, f64, CcPhase)> {
    let mut out: Vec<(f64, f64, CcPhase)> = Vec::new();
    for p in &e.samples {
        let t = p.t - t0;
        match out.last_mut() {
            Some(last) if last.2 == p.phase => last.1 = t,
            Some(last) => {
                last.1 = t;
                out.push((t, t, p.phase));
            }
            None => out.push((t, t, p.phase)),
        }
    }
    out
}

/// Every direction of every connection in `capture` that carried data, one SVG each in
/// `dir` (`utcp demo --plot DIR`), named after the flow.
pub fn plot_all(capture: &std::path::Path, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>, String> {
    let data = std::fs::read(capture).map_err(|e| format!("{}: {e}", capture.display()))?;
    let cap = pcap::Capture::parse(data).map_err(|e| format!("{}: {e}", capture.display()))?;
    let packets = packets_of(&cap);
    let mut flows: Vec<Flow> = Vec::new();
    for p in packets.iter().filter(|p| p.len > 0) {
        let f = Flow { src: p.src, dst: p.dst };
        if !flows.contains(&f) {
            flows.push(f);
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for f in flows {
        let s = series::build(&packets, f, 0.0, f64::INFINITY);
        let name = f.to_string().replace([':', '[', ']'], "_");
        let path = dir.join(format!("{name}.svg"));
        write(&path, &render::svg(&s, None, &format!("{f}: time-sequence graph"))?)?;
        out.push(path);
    }
    Ok(out)
}
