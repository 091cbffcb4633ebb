//! Plots of simulator runs: an [`Observer`] that keeps every segment, the engine's
//! reason for it, and both sides' engine state, then draws one side's data direction.

use super::conn::{Flow, Packet, parse_tcp};
use super::{EngineSample, EngineTrack, render, series};
use crate::sim::{ADDR_A, ADDR_B, Observer};
use utcp::device::link::Side;
use utcp::engine::{Status, TxReason};
use utcp::time::Instant;

/// Cap on segments kept (the plot of a longer run ends there).
pub const MAX_PACKETS: usize = 1 << 21;

#[derive(Default)]
pub struct Recorder {
    pub packets: Vec<Packet>,
    /// The reason of each segment in `packets`, and who sent it.
    pub reasons: Vec<(Side, TxReason)>,
    pub a: EngineTrack,
    pub b: EngineTrack,
    /// What a capture on A's and on B's host sees, in event order: the host's own
    /// segments as they leave, the peer's as they arrive.
    pub view_a: Vec<Packet>,
    pub view_b: Vec<Packet>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            a: EngineTrack { side: "A's".into(), ..EngineTrack::default() },
            b: EngineTrack { side: "B's".into(), ..EngineTrack::default() },
            ..Recorder::default()
        }
    }

    /// The data direction sent by `side`: its connection that carried the most bytes.
    pub fn flow_of(&self, side: Side) -> Option<Flow> {
        let ip = if side == Side::A { ADDR_A } else { ADDR_B };
        let mine: Vec<Packet> = self.packets.iter().filter(|p| p.src.ip() == ip).cloned().collect();
        super::conn::busiest(&mine)
    }

    /// The series of `side`'s data direction, as a capture on `side`'s host would see it
    /// (tcptrace's usual vantage point): its segments when they leave, the peer's when
    /// they arrive, so RTT samples are round trips.
    pub fn series(&self, side: Side) -> Option<series::Series> {
        let flow = self.flow_of(side)?;
        let view = if side == Side::A { &self.view_a } else { &self.view_b };
        Some(series::build(view, flow, 0.0, f64::INFINITY))
    }

    /// The SVG of `side`'s data direction with its engine panels.
    pub fn svg(&self, side: Side, title: &str) -> Result<String, String> {
        let s = self.series(side).ok_or("no segments from that side")?;
        let track = if side == Side::A { &self.a } else { &self.b };
        render::svg(&s, Some(track), title)
    }
}

impl Observer for Recorder {
    fn segment(&mut self, now: Instant, from: Side, packet: &[u8], why: TxReason) {
        if self.packets.len() >= MAX_PACKETS {
            return;
        }
        if let Some(p) = parse_tcp(now.micros() as f64 / 1e6, packet) {
            if from == Side::A {
                self.view_a.push(p.clone())
            } else {
                self.view_b.push(p.clone())
            }
            self.packets.push(p);
            self.reasons.push((from, why));
        }
    }

    fn delivered(&mut self, now: Instant, to: Side, packet: &[u8]) {
        let view = if to == Side::A { &mut self.view_a } else { &mut self.view_b };
        if view.len() >= MAX_PACKETS {
            return;
        }
        if let Some(p) = parse_tcp(now.micros() as f64 / 1e6, packet) {
            view.push(p);
        }
    }

    fn engine(&mut self, now: Instant, side: Side, status: &Status) {
        let s = EngineSample::of(now.micros() as f64 / 1e6, status);
        if side == Side::A { self.a.push(s) } else { self.b.push(s) }
    }
}
