//! One direction of one connection, reduced to the series a time-sequence graph draws
//! (Stevens, TCP/IP Illustrated vol. 1 ch. 21; tcptrace's graphs).

use super::conn::{ACK, FIN, Flow, Packet, RST, SYN, Unwrap};
use std::collections::BTreeMap;

/// What kind of mark a point is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mark {
    Syn,
    Fin,
    /// A RST from the sender (at its seq) or the receiver (at its ack).
    Rst,
}

/// A data segment: `seq..end` (relative, bytes) sent at `t` seconds.
#[derive(Clone, Copy, Debug)]
pub struct Seg {
    pub t: f64,
    pub seq: i64,
    pub end: i64,
    /// Resends sequence space already sent (tcptrace's "R").
    pub retransmit: bool,
    /// Sent into a zero window at its left edge (RFC 9293 §3.8.6.1).
    pub zero_window_probe: bool,
}

/// The series of one direction, time in seconds from the connection's first packet,
/// sequence numbers relative to the sender's ISN.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub flow: Option<Flow>,
    pub segs: Vec<Seg>,
    /// (t, ack) from the receiver, as a step line.
    pub acks: Vec<(f64, i64)>,
    /// (t, ack + window << wscale): the receive-window edge.
    pub window: Vec<(f64, i64)>,
    /// (t, left, right) SACK blocks.
    pub sacks: Vec<(f64, i64, i64)>,
    pub marks: Vec<(f64, i64, Mark)>,
    /// (t, bit/s) goodput: acknowledged bytes over a sliding window.
    pub goodput: Vec<(f64, f64)>,
    /// (t, seconds) RTT samples from ACKs of segments sent once (Karn).
    pub rtt: Vec<(f64, f64)>,
    /// (t, bytes) highest sent minus highest acknowledged.
    pub in_flight: Vec<(f64, i64)>,
    /// The connection's first packet, in the capture's (or run's) seconds.
    pub t0: f64,
    pub t_min: f64,
    pub t_max: f64,
    pub seq_max: i64,
    pub retransmits: usize,
    pub zero_window_probes: usize,
}

/// Build the series of `flow` from `packets` (any order of both directions), keeping
/// packets with `from <= t <= to` (seconds from the connection's first packet).
pub fn build(packets: &[Packet], flow: Flow, from: f64, to: f64) -> Series {
    let fwd = |p: &Packet| p.src == flow.src && p.dst == flow.dst;
    let rev = |p: &Packet| p.src == flow.dst && p.dst == flow.src;
    let conn: Vec<&Packet> = packets.iter().filter(|p| fwd(p) || rev(p)).collect();
    let mut s = Series { flow: Some(flow), ..Series::default() };
    let Some(t0) = conn.iter().map(|p| p.t).reduce(f64::min) else { return s };
    // The ISN: the sender's SYN, else its first segment (a capture started mid-transfer).
    let isn = conn
        .iter()
        .find(|p| fwd(p) && p.flags & SYN != 0)
        .or_else(|| conn.iter().find(|p| fwd(p)))
        .map(|p| p.seq)
        .or_else(|| conn.iter().find(|p| rev(p) && p.flags & ACK != 0).map(|p| p.ack))
        .unwrap_or(0);
    // RFC 7323 §2.2: windows are scaled only when both SYNs carried the option; the
    // receiver's own shift applies to the windows it sends, never to a SYN's.
    let ws = |f: &dyn Fn(&Packet) -> bool| {
        conn.iter().find(|p| f(p) && p.flags & SYN != 0).map(|p| p.opts.window_scale)
    };
    let shift = match (ws(&fwd), ws(&rev)) {
        (Some(Some(_)), Some(Some(r))) => r.min(14),
        _ => 0,
    };
    s.t0 = t0;
    let mut st = Walk { seq: Unwrap::new(isn), ..Walk::default() };
    for p in conn.iter().filter(|p| p.t - t0 >= from && p.t - t0 <= to) {
        let t = p.t - t0;
        if fwd(p) {
            st.sent(&mut s, p, t);
        } else {
            st.acked(&mut s, p, t, shift);
        }
        s.t_max = s.t_max.max(t);
    }
    s.t_min = conn.iter().map(|p| p.t - t0).filter(|&t| t >= from).fold(f64::INFINITY, f64::min).min(s.t_max);
    s.goodput = goodput(&s.acks, s.t_max - s.t_min);
    s
}

/// State while walking the packets in time order.
#[derive(Default)]
struct Walk {
    seq: Unwrap,
    high: Option<i64>,
    ack: Option<i64>,
    wnd_zero: bool,
    /// Segment end → (send time, sent more than once), for Karn RTT samples.
    sent_at: BTreeMap<i64, (f64, bool)>,
}

impl Default for Unwrap {
    fn default() -> Unwrap {
        Unwrap::new(0)
    }
}

impl Walk {
    fn sent(&mut self, s: &mut Series, p: &Packet, t: f64) {
        let seq = self.seq.rel(p.seq);
        let end = seq + p.seg_len() as i64;
        if p.flags & SYN != 0 {
            s.marks.push((t, seq, Mark::Syn));
        }
        if p.flags & FIN != 0 {
            s.marks.push((t, end - 1, Mark::Fin));
        }
        if p.flags & RST != 0 {
            s.marks.push((t, seq, Mark::Rst));
        }
        if end > seq {
            let retransmit = self.high.is_some_and(|h| seq < h);
            let zero_window_probe = self.wnd_zero && self.ack == Some(seq) && p.len > 0;
            s.retransmits += retransmit as usize;
            s.zero_window_probes += zero_window_probe as usize;
            s.segs.push(Seg { t, seq, end, retransmit, zero_window_probe });
            s.seq_max = s.seq_max.max(end);
            self.high = Some(self.high.map_or(end, |h| h.max(end)));
            let e = self.sent_at.entry(end).or_insert((t, false));
            if retransmit {
                e.1 = true;
                // Karn: every segment ending inside the resent range is ambiguous now.
                for (_, v) in self.sent_at.range_mut(seq + 1..end) {
                    v.1 = true;
                }
            }
        }
        self.flight(s, t);
    }

    fn acked(&mut self, s: &mut Series, p: &Packet, t: f64, shift: u8) {
        if p.flags & RST != 0 {
            let at = if p.flags & ACK != 0 { self.seq.rel(p.ack) } else { self.high.unwrap_or(0) };
            s.marks.push((t, at, Mark::Rst));
        }
        if p.flags & ACK == 0 {
            return;
        }
        let ack = self.seq.rel(p.ack);
        let shift = if p.flags & SYN != 0 { 0 } else { shift };
        let wnd = (p.win as i64) << shift;
        self.wnd_zero = wnd == 0;
        if self.ack.is_none_or(|a| ack > a) {
            // Karn: time only segments sent once, the newest one this ACK covers.
            let covered: Vec<i64> = self.sent_at.range(..=ack).map(|(k, _)| *k).collect();
            if let Some(&(sent, again)) = covered.last().and_then(|k| self.sent_at.get(k))
                && !again
            {
                s.rtt.push((t, t - sent));
            }
            for k in covered {
                self.sent_at.remove(&k);
            }
            self.ack = Some(ack);
        }
        s.acks.push((t, ack));
        s.window.push((t, ack + wnd));
        s.seq_max = s.seq_max.max(ack + wnd);
        for &(l, r) in p.opts.sack.as_slice() {
            s.sacks.push((t, self.seq.rel(l.0), self.seq.rel(r.0)));
        }
        self.flight(s, t);
    }

    fn flight(&self, s: &mut Series, t: f64) {
        if let (Some(h), Some(a)) = (self.high, self.ack) {
            s.in_flight.push((t, (h - a).max(0)));
        } else if let Some(h) = self.high {
            s.in_flight.push((t, h));
        }
    }
}

/// Goodput: bytes newly acknowledged over a sliding window of a twentieth of the
/// connection's duration (at least 1 ms), in bit/s, on a grid of 400 points.
fn goodput(acks: &[(f64, i64)], span: f64) -> Vec<(f64, f64)> {
    let (Some(first), Some(last)) = (acks.first(), acks.last()) else { return Vec::new() };
    let w = (span / 20.0).max(0.001);
    // The highest ACK at or before t (ACKs are in time order; the max guards reordering).
    let mut high = Vec::with_capacity(acks.len());
    let mut m = i64::MIN;
    for &(t, a) in acks {
        m = m.max(a);
        high.push((t, m));
    }
    let at = |t: f64| -> i64 {
        let i = high.partition_point(|p| p.0 <= t);
        if i == 0 { high[0].1 } else { high[i - 1].1 }
    };
    let n = 400;
    (0..=n)
        .map(|i| {
            let t = first.0 + (last.0 - first.0) * i as f64 / n as f64;
            let dt = w.min(t - first.0).max(w / 4.0);
            (t, (at(t) - at(t - dt)) as f64 * 8.0 / dt)
        })
        .collect()
}
