//! `utcp bench --scale N`: N established connections between two in-memory Stacks.
//!
//! Reports the memory one connection costs (both ends, and per endpoint) from the counting
//! allocator of the `utcp` binary ([`super::alloc`]; RSS deltas from /proc/self/statm when it
//! is not installed), and the cost of one data segment in (demux + input) as N grows.
//! Connections use many local addresses on A so N can exceed one port range.

use super::alloc;
use super::engine::{A_IP, B_IP, B_PORT, Pair};
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use utcp::engine::{Config, ConnId, State};

/// Local ports used per local address of A.
const PORTS_PER_ADDR: usize = 50_000;
const FIRST_PORT: u16 = 10_000;
/// Connections opened between two delivery rounds (below the listen backlog).
const BATCH: usize = 256;
/// Connections probed for the lookup cost (each then holds its 2 x 256 KiB buffers).
const PROBES: usize = 1_000;
/// Timed passes over the probed connections.
const PASSES: usize = 5;
/// Stop opening connections when the measured memory exceeds this share of MemAvailable.
const MEMORY_SHARE: f64 = 0.5;

#[derive(Clone, Debug)]
pub struct ScalePoint {
    pub requested: usize,
    pub established: usize,
    /// Net bytes allocated for the connections (both stacks, and the handle vectors' room).
    pub bytes: i64,
    /// How `bytes` was measured: "allocator" or "rss".
    pub method: &'static str,
    pub setup: Duration,
    /// Mean cost of `handle_packet` for one 1-byte data segment on B, nanoseconds.
    pub ns_per_segment: f64,
    pub probes: usize,
    /// Why fewer than `requested` were opened, if so.
    pub note: Option<String>,
}

impl ScalePoint {
    pub fn bytes_per_conn(&self) -> f64 {
        self.bytes as f64 / self.established.max(1) as f64
    }
}

#[derive(Clone, Debug)]
pub struct ScaleReport {
    pub points: Vec<ScalePoint>,
}

impl ScaleReport {
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:>9} {:>11} {:>16} {:>16} {:>9} {:>14} {:>9}",
            "N", "established", "bytes/conn(2 ends)", "bytes/endpoint", "method", "ns/segment in", "setup s"
        );
        for p in &self.points {
            let _ = writeln!(
                out,
                "{:>9} {:>11} {:>18.0} {:>16.0} {:>9} {:>14.1} {:>9.2}",
                p.requested,
                p.established,
                p.bytes_per_conn(),
                p.bytes_per_conn() / 2.0,
                p.method,
                p.ns_per_segment,
                p.setup.as_secs_f64()
            );
            if let Some(n) = &p.note {
                let _ = writeln!(out, "          note: {n}");
            }
        }
        out
    }

    /// One JSON object: `{"scale":[{"n","established","bytes","bytes_per_conn","method",
    /// "ns_per_segment","probes","setup_s"}]}` (a non-finite number is null).
    pub fn json(&self) -> String {
        let points = self
            .points
            .iter()
            .map(|p| ScaleJson {
                n: p.requested,
                established: p.established,
                bytes: p.bytes,
                bytes_per_conn: p.bytes_per_conn(),
                method: p.method,
                ns_per_segment: p.ns_per_segment,
                probes: p.probes,
                setup_s: p.setup.as_secs_f64(),
            })
            .collect();
        let j = ScaleReportJson { scale: points };
        super::report::to_json(&j)
    }
}

/// `ScaleReport::json`'s object; fields in output order.
#[derive(serde::Serialize)]
struct ScaleReportJson {
    scale: Vec<ScaleJson>,
}

#[derive(serde::Serialize)]
struct ScaleJson {
    n: usize,
    established: usize,
    bytes: i64,
    bytes_per_conn: f64,
    method: &'static str,
    ns_per_segment: f64,
    probes: usize,
    setup_s: f64,
}

pub fn run(ns: &[usize], progress: bool) -> io::Result<ScaleReport> {
    let mut points = Vec::new();
    for &n in ns {
        if progress {
            eprintln!("bench: scale: opening {n} connections");
        }
        points.push(point(n)?);
    }
    Ok(ScaleReport { points })
}

fn mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn local_addr(i: usize) -> SocketAddr {
    let a = A_IP.octets();
    let host = (i / PORTS_PER_ADDR) as u32;
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(a[0], a[1], 1, 0)) + host + 1);
    SocketAddr::from((ip, FIRST_PORT + (i % PORTS_PER_ADDR) as u16))
}

/// Measure one N.
pub fn point(n: usize) -> io::Result<ScalePoint> {
    let config = Config::default();
    let mut pair = Pair::new(config.clone(), config);
    for h in 0..n.div_ceil(PORTS_PER_ADDR) {
        if let IpAddr::V4(ip) = local_addr(h * PORTS_PER_ADDR).ip() {
            pair.a.add_local_addr(IpAddr::V4(ip));
        }
    }
    let l = pair.b.listen(SocketAddr::from((B_IP, B_PORT)), 4 * BATCH)?;
    let remote = SocketAddr::from((B_IP, B_PORT));
    let mut conns_a: Vec<ConnId> = Vec::with_capacity(n);
    let mut conns_b: Vec<ConnId> = Vec::with_capacity(n);
    let budget = mem_available().map(|m| (m as f64 * MEMORY_SHARE) as i64);
    let counting = alloc::installed();
    let method = if counting { "allocator" } else { "rss" };
    let measure =
        || -> i64 { if counting { alloc::live_bytes() } else { alloc::rss_bytes().unwrap_or(0) as i64 } };
    if counting {
        alloc::start();
    }
    let base = measure();
    let start = Instant::now();
    let mut note = None;
    let mut opened = 0usize;
    'outer: while opened < n {
        let batch_end = (opened + BATCH).min(n);
        for i in opened..batch_end {
            conns_a.push(pair.a.connect(pair.now, local_addr(i), remote)?);
        }
        opened = batch_end;
        // Handshakes: SYN, SYN-ACK, ACK; a few rounds, bounded.
        for _ in 0..8 {
            if pair.step() == 0 {
                break;
            }
            pair.now += Duration::from_micros(1);
        }
        pair.drain_events();
        pair.check()?;
        loop {
            match pair.b.accept(l) {
                Ok((c, _)) => conns_b.push(c),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if conns_b.len() + 4 * BATCH < opened {
            note = Some(format!("handshakes fell behind: {} accepted of {opened} opened", conns_b.len()));
            break 'outer;
        }
        if let Some(b) = budget
            && measure() - base > b
        {
            note =
                Some(format!("stopped at {opened}: more than {:.0}% of MemAvailable", MEMORY_SHARE * 100.0));
            break 'outer;
        }
    }
    // Let the last handshakes finish.
    for _ in 0..8 {
        if pair.step() == 0 {
            break;
        }
    }
    pair.drain_events();
    while let Ok((c, _)) = pair.b.accept(l) {
        conns_b.push(c);
    }
    let bytes = measure() - base;
    if counting {
        alloc::stop();
    }
    let setup = start.elapsed();
    let established = conns_b.len();
    pair.check()?;
    let est_a: Vec<ConnId> =
        conns_a.iter().copied().filter(|&c| pair.a.state(c) == Some(State::Established)).collect();
    let (ns_per_segment, probes) = lookup_cost(&mut pair, &est_a)?;
    Ok(ScalePoint { requested: n, established, bytes, method, setup, ns_per_segment, probes, note })
}

/// Time `handle_packet` on B for one 1-byte data segment on each of up to `PROBES`
/// connections, visited in a scattered order (stride coprime with N) so each lookup lands on
/// a different part of the table. A first, untimed pass makes both ends allocate their
/// buffers (the engine allocates them on first use); then `PASSES` timed passes.
fn lookup_cost(pair: &mut Pair, conns: &[ConnId]) -> io::Result<(f64, usize)> {
    let n = conns.len();
    if n == 0 {
        return Ok((0.0, 0));
    }
    let k = n.min(PROBES);
    let mut stride = 7919usize % n;
    while stride == 0 || gcd(stride, n) != 1 {
        stride += 1;
    }
    let probe: Vec<ConnId> = (1..=k).map(|i| conns[(i * stride) % n]).collect();
    for &c in &probe {
        pair.a.set_nodelay(c, true)?;
    }
    let mut buf = vec![0u8; pair.a.config().mtu + 64];
    let mut packets: Vec<Vec<u8>> = Vec::with_capacity(k);
    let mut timed = Duration::ZERO;
    let mut segments = 0usize;
    for pass in 0..=PASSES {
        packets.clear();
        for &c in &probe {
            pair.a.send(c, b"x")?;
        }
        // Bounded: one segment per probed connection is expected.
        for _ in 0..4 * k {
            let Some(len) = pair.a.poll_transmit(pair.now, &mut buf) else {
                break;
            };
            packets.push(buf[..len].to_vec());
        }
        if packets.len() > 2 * k {
            return Err(io::Error::other(format!(
                "stack A emitted {} packets for {k} one-byte sends (engine bug?)",
                packets.len()
            )));
        }
        let t = Instant::now();
        for p in &packets {
            pair.b.handle_packet(pair.now, p);
        }
        if pass > 0 {
            timed += t.elapsed();
            segments += packets.len();
        }
        // Untimed: B's ACKs back to A; let delayed ACKs fire so the next pass starts clean.
        let _ = pair.step();
        pair.now += Duration::from_millis(500);
        pair.a.handle_timeout(pair.now);
        pair.b.handle_timeout(pair.now);
        let _ = pair.step();
        pair.drain_events();
    }
    Ok((timed.as_nanos() as f64 / segments.max(1) as f64, segments))
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addrs_are_distinct_across_address_boundaries() {
        let a = local_addr(0);
        let b = local_addr(PORTS_PER_ADDR - 1);
        let c = local_addr(PORTS_PER_ADDR);
        assert_eq!(a.ip(), b.ip());
        assert_ne!(b.ip(), c.ip());
        assert_eq!(a.port(), c.port());
        assert_eq!(b.port(), FIRST_PORT + (PORTS_PER_ADDR - 1) as u16);
    }

    #[test]
    fn gcd_works() {
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(gcd(7919, 1000), 1);
    }

    #[test]
    fn point_establishes_every_connection_and_times_probes() {
        let p = point(300).expect("scale point");
        assert_eq!(p.requested, 300);
        assert_eq!(p.established, 300, "{p:?}");
        assert_eq!(p.probes, 300 * PASSES, "{p:?}");
        assert!(p.ns_per_segment > 0.0, "{p:?}");
        assert!(p.note.is_none(), "{p:?}");
        let r = ScaleReport { points: vec![p] };
        assert!(r.json().starts_with("{\"scale\":[{\"n\":300,\"established\":300,"), "{}", r.json());
        assert!(r.text().contains("300"));
    }
}
