//! `utcp bench --engine`: two utcp [`Stack`]s joined in memory exchange N full-sized segments.
//!
//! No TUN, no root, no clock inside the run: time is virtual (one microsecond per delivery
//! round, jumps to the next timer when idle), the ISN secret and ports are fixed, so the
//! instruction count under `valgrind --tool=callgrind` compares run to run. Wall-clock elapsed
//! time is printed beside it for a rough per-segment cost.
//!
//! `--systems smoltcp` (or `utcp,smoltcp`) runs the same workload for smoltcp 0.14 ([`smol`]).
//! The measured loops are the functions [`utcp_transfer`] and [`smol::smoltcp_transfer`]
//! (never inlined), so `valgrind --tool=callgrind --toggle-collect='*utcp_transfer*'` counts
//! the data transfer without the setup (docs/engine-cost.md).

pub mod smol;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use utcp::engine::{Config, ConnId, Event, ListenerId, Stack};
use utcp::time::Instant;

/// The in-memory client and server addresses (never on any real link).
pub const A_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const B_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const B_PORT: u16 = 80;
/// Most packets one direction of [`Pair::step`] moves.
pub const STEP_LIMIT: usize = 1 << 16;

/// Two stacks and the virtual time they share. Packets move by direct calls.
pub struct Pair {
    pub a: Stack,
    pub b: Stack,
    pub now: Instant,
    buf: Vec<u8>,
    /// Set when a `step` hit `STEP_LIMIT`: a stack kept emitting (an engine bug).
    pub overflowed: bool,
    /// TUN offload in memory: above 1, both stacks are drained with `poll_transmit_gso`
    /// (at most this many segments per packet) and a super-segment is handed over whole
    /// with its checksum vouched for (`handle_packet_checksum_ok`), as GRO would.
    pub gso: usize,
    /// Packets (super-segments count once) handed A→B and B→A.
    pub moved: (u64, u64),
}

impl Pair {
    pub fn new(config_a: Config, config_b: Config) -> Pair {
        let mtu = config_a.mtu.max(config_b.mtu);
        let mut a = Stack::new(config_a);
        let mut b = Stack::new(config_b);
        a.add_local_addr(IpAddr::V4(A_IP));
        b.add_local_addr(IpAddr::V4(B_IP));
        Pair {
            a,
            b,
            now: Instant::from_micros(1_000_000),
            buf: vec![0u8; mtu + 64],
            overflowed: false,
            gso: 0,
            moved: (0, 0),
        }
    }

    /// Move super-segments of up to `max_segs` segments (see [`Pair::gso`]).
    pub fn with_gso(mut self, max_segs: usize) -> Pair {
        self.gso = max_segs;
        if max_segs > 1 {
            self.buf.resize(65_536, 0);
        }
        self
    }

    /// The next packet `from` sends, handed to `to`; false when `from` is quiet.
    fn hand_over(from: &mut Stack, to: &mut Stack, now: Instant, buf: &mut [u8], gso: usize) -> bool {
        if gso > 1 {
            let Some(t) = from.poll_transmit_gso(now, buf, gso) else { return false };
            if t.csum_start.is_some() {
                to.handle_packet_checksum_ok(now, &buf[..t.len]);
            } else {
                to.handle_packet(now, &buf[..t.len]);
            }
            return true;
        }
        let Some(n) = from.poll_transmit(now, buf) else { return false };
        to.handle_packet(now, &buf[..n]);
        true
    }

    /// Move every queued packet: each packet A emits is handed to B, and what B emits in
    /// answer goes straight back to A, as on a wire where ACKs leave as segments arrive.
    /// At most `STEP_LIMIT` packets, so a stack that never stops emitting cannot hang the
    /// bench. Returns how many moved.
    pub fn step(&mut self) -> usize {
        let mut moved = 0;
        loop {
            let mut round = 0;
            if Self::hand_over(&mut self.a, &mut self.b, self.now, &mut self.buf, self.gso) {
                round += 1;
                self.moved.0 += 1;
            }
            while moved + round < STEP_LIMIT
                && Self::hand_over(&mut self.b, &mut self.a, self.now, &mut self.buf, self.gso)
            {
                round += 1;
                self.moved.1 += 1;
            }
            moved += round;
            if round == 0 {
                break;
            }
            if moved >= STEP_LIMIT {
                self.overflowed = true;
                break;
            }
        }
        moved
    }

    /// An error if a stack ever kept emitting without end.
    pub fn check(&self) -> io::Result<()> {
        if self.overflowed {
            return Err(io::Error::other(format!(
                "a stack emitted more than {STEP_LIMIT} packets in one round without input \
                 (engine bug; A: {} out, B: {} out)",
                self.a.counters().out_segs,
                self.b.counters().out_segs
            )));
        }
        Ok(())
    }

    /// One delivery round; when nothing moved, jump to the earliest timer and fire it.
    /// Returns false when both stacks are idle with no timer.
    pub fn tick(&mut self) -> bool {
        let moved = self.step();
        self.now += Duration::from_micros(1);
        if moved > 0 {
            return true;
        }
        let next = match (self.a.poll_timeout(), self.b.poll_timeout()) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        match next {
            Some(t) => {
                if t > self.now {
                    self.now = t;
                }
                self.a.handle_timeout(self.now);
                self.b.handle_timeout(self.now);
                true
            }
            None => false,
        }
    }

    /// Drain both event queues (the bench reacts to state, not events).
    pub fn drain_events(&mut self) -> (usize, usize) {
        let mut na = 0;
        while self.a.poll_event().is_some() {
            na += 1;
        }
        let mut nb = 0;
        while self.b.poll_event().is_some() {
            nb += 1;
        }
        (na, nb)
    }

    /// Listen on B, connect from A (local port `a_port`), run the handshake, accept on B.
    pub fn establish(&mut self, l: ListenerId, a_port: u16) -> io::Result<(ConnId, ConnId)> {
        let local = SocketAddr::from((A_IP, a_port));
        let remote = SocketAddr::from((B_IP, B_PORT));
        let ca = self.a.connect(self.now, local, remote)?;
        for _ in 0..64 {
            self.step();
            self.now += Duration::from_micros(1);
            let mut connected = false;
            while let Some(e) = self.a.poll_event() {
                if e == Event::Connected(ca) {
                    connected = true;
                }
            }
            self.drain_events();
            if connected || self.a.state(ca) == Some(utcp::engine::State::Established) {
                match self.b.accept(l) {
                    Ok((cb, _)) => return Ok((ca, cb)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Err(io::Error::new(io::ErrorKind::TimedOut, "in-memory handshake did not complete"))
    }
}

/// Payload bytes of one full-sized segment: the MSS less the timestamp option (12 bytes
/// with padding, RFC 7323 §3) when timestamps are on, as the MSS counts data only.
pub fn segment_payload(config: &Config) -> usize {
    let mss = usize::from(config.effective_mss());
    if config.timestamps { mss - 12 } else { mss }
}

/// The outcome of `utcp bench --engine`.
#[derive(Clone, Debug)]
pub struct EngineRun {
    /// `utcp` or `smoltcp`.
    pub system: &'static str,
    pub segments: u64,
    pub bytes: u64,
    /// Payload bytes per full segment.
    pub payload: usize,
    pub packets_a_to_b: u64,
    pub packets_b_to_a: u64,
    pub virtual_time: Duration,
    pub elapsed: Duration,
}

impl EngineRun {
    pub fn text(&self) -> String {
        let ns = self.elapsed.as_nanos() as f64 / self.segments.max(1) as f64;
        format!(
            "engine {}: {} segments of {} bytes ({} bytes) A->B in {:.3} s wall ({:.0} ns/segment, \
             {:.2} Gbit/s), {} packets A->B, {} packets B->A, {:.3} s virtual\n",
            self.system,
            self.segments,
            self.payload,
            self.bytes,
            self.elapsed.as_secs_f64(),
            ns,
            self.bytes as f64 * 8.0 / self.elapsed.as_secs_f64().max(1e-9) / 1e9,
            self.packets_a_to_b,
            self.packets_b_to_a,
            self.virtual_time.as_secs_f64()
        )
    }

    /// One JSON object: the counts, `virtual_us` and `elapsed_ns`.
    pub fn json(&self) -> String {
        let j = EngineJson {
            segments: self.segments,
            bytes: self.bytes,
            payload: self.payload,
            packets_a_to_b: self.packets_a_to_b,
            packets_b_to_a: self.packets_b_to_a,
            virtual_us: self.virtual_time.as_micros(),
            elapsed_ns: self.elapsed.as_nanos(),
            system: self.system,
        };
        super::report::to_json(&j)
    }
}

/// `EngineRun::json`'s object; fields in output order.
#[derive(serde::Serialize)]
struct EngineJson {
    segments: u64,
    bytes: u64,
    payload: usize,
    packets_a_to_b: u64,
    packets_b_to_a: u64,
    virtual_us: u128,
    elapsed_ns: u128,
    system: &'static str,
}

/// Most delivery rounds a transfer of `bytes` may take: a healthy one needs about two per
/// full segment; this allows one per 64 bytes.
fn max_rounds(bytes: u64) -> u64 {
    (bytes / 64).saturating_add(10_000)
}

/// The measured loop: A's application sends `total` bytes, B's reads them all. Not inlined,
/// so `valgrind --tool=callgrind --toggle-collect='*utcp_transfer*'` counts exactly it.
#[inline(never)]
pub fn utcp_transfer(
    pair: &mut Pair,
    (ca, cb): (ConnId, ConnId),
    total: u64,
    data: &[u8],
    sink: &mut [u8],
) -> io::Result<()> {
    let (mut sent, mut received) = (0u64, 0u64);
    let max_rounds = max_rounds(total);
    let mut rounds = 0u64;
    while received < total {
        rounds += 1;
        if rounds > max_rounds {
            return Err(io::Error::other(format!(
                "in-memory transfer stalled at {received} of {total} bytes"
            )));
        }
        let (sent_before, received_before) = (sent, received);
        while sent < total {
            let n = ((total - sent) as usize).min(data.len());
            match pair.a.send(ca, &data[..n]) {
                Ok(0) => break,
                Ok(k) => sent += k as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        let progressed = pair.tick();
        pair.check()?;
        loop {
            match pair.b.recv(cb, sink) {
                Ok(0) => break,
                Ok(k) => received += k as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        pair.drain_events();
        if !progressed && sent == sent_before && received == received_before {
            // Idle, no timer armed, nothing left to hand over: nothing can make progress.
            return Err(io::Error::other(format!("in-memory transfer idle at {received} of {total} bytes")));
        }
    }
    Ok(())
}

/// Transfer `segments` full-sized segments from A to B with the default (utcp) profile.
pub fn run(segments: u64) -> io::Result<EngineRun> {
    run_utcp(segments, 0)
}

/// [`run`] with super-segments of up to `gso` segments when `gso > 1` ([`Pair::gso`]).
///
/// `UTCP_ENGINE_FAST_PATH=0` in the environment turns header prediction off
/// (`Config::fast_path`, engine tcb/fast_path.rs): the before/after of docs/engine-cost.md
/// with one binary.
pub fn run_utcp(segments: u64, gso: usize) -> io::Result<EngineRun> {
    let mut config = Config::default();
    config.fast_path = std::env::var_os("UTCP_ENGINE_FAST_PATH").is_none_or(|v| v != "0");
    let payload = segment_payload(&config);
    let mut pair = Pair::new(config.clone(), config).with_gso(gso);
    let l = pair.b.listen(SocketAddr::from((B_IP, B_PORT)), 16)?;
    let conns = pair.establish(l, 40_000)?;
    let total = segments * payload as u64;
    // Whole segments per send call, so no call leaves a runt segment behind.
    let data = vec![0xa5u8; 44 * payload];
    let mut sink = vec![0u8; 64 * 1024];
    let (p_ab, p_ba) = pair.moved;
    let t0 = pair.now;
    let start = std::time::Instant::now();
    utcp_transfer(&mut pair, conns, total, &data, &mut sink)?;
    let elapsed = start.elapsed();
    Ok(EngineRun {
        system: if gso > 1 { "utcp-gso" } else { "utcp" },
        segments,
        bytes: total,
        payload,
        packets_a_to_b: pair.moved.0 - p_ab,
        packets_b_to_a: pair.moved.1 - p_ba,
        virtual_time: Duration::from_micros(pair.now.micros() - t0.micros()),
        elapsed,
    })
}

/// `run` for utcp, [`smol::run`] for smoltcp, one after the other; `systems` names them
/// (`utcp`, `smoltcp`). `gso > 1`: utcp moves super-segments ([`run_utcp`]).
pub fn run_systems(segments: u64, systems: &[&str], gso: usize) -> io::Result<Vec<EngineRun>> {
    systems
        .iter()
        .map(|s| match *s {
            "utcp" => run_utcp(segments, gso),
            "smoltcp" => smol::run(segments),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--engine runs utcp and smoltcp, not {other}"),
            )),
        })
        .collect()
}

/// Text for several runs: one line each, then the wall-time ratio of the first two.
pub fn text(runs: &[EngineRun]) -> String {
    let mut s: String = runs.iter().map(EngineRun::text).collect();
    if let [x, y, ..] = runs {
        let per = |r: &EngineRun| r.elapsed.as_secs_f64() / r.segments.max(1) as f64;
        s += &format!(
            "wall time per segment {}/{}: {:.2} (instructions: valgrind --tool=callgrind, docs/engine-cost.md)\n",
            x.system,
            y.system,
            per(x) / per(y).max(1e-12)
        );
    }
    s
}

/// JSON: the run's object for one run, `{"runs":[...]}` for several.
pub fn json(runs: &[EngineRun]) -> String {
    match runs {
        [r] => r.json(),
        _ => format!("{{\"runs\":[{}]}}", runs.iter().map(EngineRun::json).collect::<Vec<_>>().join(",")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_run_delivers_every_segment() {
        let r = run(500).expect("in-memory run");
        let payload = segment_payload(&Config::default());
        assert_eq!(r.segments, 500);
        assert_eq!(r.bytes, 500 * payload as u64);
        // Every segment full-sized: the handshake ACK plus 500 data segments, give or take.
        assert!((500..=520).contains(&r.packets_a_to_b), "{r:?}");
        // Roughly one ACK per two segments (RFC 5681 §4.2), never none.
        assert!(r.packets_b_to_a >= 200 && r.packets_b_to_a <= 520, "{r:?}");
        let j = r.json();
        assert!(j.starts_with("{\"segments\":500,"), "{j}");
        let v: serde_json::Value = serde_json::from_str(&j).expect("valid JSON");
        assert_eq!(v["packets_a_to_b"], r.packets_a_to_b, "{j}");
    }

    /// The in-memory offload path: super-segments of up to 44 segments out, handed over
    /// whole; every byte arrives and far fewer packets move than segments.
    #[test]
    fn gso_run_moves_super_segments() {
        let r = run_utcp(2_000, 44).expect("in-memory offload run");
        assert_eq!((r.system, r.bytes), ("utcp-gso", 2_000 * segment_payload(&Config::default()) as u64));
        assert!(r.packets_a_to_b < 1_000, "super-segments: {r:?}");
        // Per-segment accounting stays: every segment is counted as sent.
        assert!(r.packets_a_to_b > 0 && r.packets_b_to_a > 0, "{r:?}");
    }

    #[test]
    fn step_reports_quiet_pair() {
        let mut pair = Pair::new(Config::default(), Config::default());
        assert_eq!(pair.step(), 0);
        assert!(!pair.tick(), "no timers armed on idle stacks");
        assert!(pair.check().is_ok());
    }
}
