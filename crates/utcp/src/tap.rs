//! Observers of the packets crossing the TUN and of the engine's events (traces, pcap).

use crate::engine::Event;
use crate::time::Instant;

/// Which way a packet crossed the TUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the kernel to the stack (read from the TUN).
    In,
    /// From the stack to the kernel (written to the TUN).
    Out,
}

/// Sees every packet crossing the TUN (before impairment on the way in, after it on the
/// way out, i.e. exactly what the kernel saw) and every engine event. Called on the
/// driver or an application thread with the interface lock held: keep it cheap.
pub trait Tap: Send {
    /// A packet crossed the TUN in direction `dir` at `now`; `packet` is the whole IP packet.
    fn packet(&mut self, now: Instant, dir: Direction, packet: &[u8]);
    /// The engine reported `event` at `now` (default: ignored).
    fn event(&mut self, _now: Instant, _event: &Event) {}
    /// Called once when the interface stops (flush files here).
    fn finish(&mut self) {}
}

/// Several taps in a row.
pub(crate) struct Taps(pub(crate) Vec<Box<dyn Tap>>);

impl Tap for Taps {
    fn packet(&mut self, now: Instant, dir: Direction, packet: &[u8]) {
        for t in &mut self.0 {
            t.packet(now, dir, packet);
        }
    }
    fn event(&mut self, now: Instant, event: &Event) {
        for t in &mut self.0 {
            t.event(now, event);
        }
    }
    fn finish(&mut self) {
        for t in &mut self.0 {
            t.finish();
        }
    }
}
