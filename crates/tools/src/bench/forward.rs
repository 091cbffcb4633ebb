//! `utcp bench --only forward`: a tun2socks gateway through each user-space stack, beside
//! plain kernel routing, on the same work and the same topology (issue 11, item 5).
//!
//! Per system, the bench creates two private namespaces and removes them afterwards:
//! - A (clients): 10.99.0.0/24 is routed into a TUN `fw0` (MTU 1500) terminated by the
//!   gateway, or, for `kernel`, over a veth to B (plain routing, the reference);
//! - B (servers): 10.99.0.1 on a dummy interface where the kernel has one, else on B's
//!   loopback; three std server threads (bulk source, 1-byte connect echo, echo).
//!
//! The gateways (`forward/gateways.rs`) run the same minimal tokio forwarder on `utcp`, `ipstack`
//! and `netstack-smoltcp`, with upstream sockets made in B. The clients are std sockets on
//! threads in A. Metrics: bulk download Gbit/s (best of N), sequential connects/s (connect,
//! 1-byte exchange, close), and p50/p99 of 1-byte request/response on one connection.
//! Every socket operation has a 10 s timeout, so a stuck system fails, never hangs.

mod gateways;
mod tunfd;

use crate::netns::NetNs;
use gateways::{Gateway, Stack};
use serde::Serialize;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The destinations routed into the gateway.
pub(crate) const CLIENT_NET: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 0);
/// The servers' address in B.
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
/// The TUN in A: kernel side and stack side of a /30.
pub(crate) const TUN: &str = "fw0";
pub(crate) const TUN_PEER: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 1);
pub(crate) const TUN_STACK: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 2);
const BULK_PORT: u16 = 7001;
const CONNECT_PORT: u16 = 7002;
const ECHO_PORT: u16 = 7003;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The systems, in the order they run.
const SYSTEMS: [(&str, Option<Stack>); 4] = [
    ("kernel", None),
    ("utcp", Some(Stack::Utcp)),
    ("ipstack", Some(Stack::Ipstack)),
    ("netstack-smoltcp", Some(Stack::NetstackSmoltcp)),
];

/// The fixed amounts of work. All systems are up at once and the rounds interleave them
/// (A B C D A B C D ...), so a noisy neighbour hits every system alike.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Work {
    /// Rounds; per system, bulk is the best round, the others the median round.
    pub rounds: usize,
    /// Bytes of one bulk download (one per round).
    pub bulk_bytes: u64,
    /// Sequential connects per round.
    pub connects: usize,
    /// 1-byte request/responses on one connection per round.
    pub rr: usize,
}

impl Work {
    pub fn new(quick: bool) -> Work {
        if quick {
            Work { rounds: 1, bulk_bytes: 16 << 20, connects: 50, rr: 200 }
        } else {
            Work { rounds: 5, bulk_bytes: 256 << 20, connects: 500, rr: 2000 }
        }
    }
}

/// One system's numbers (NaN, null in JSON, where it failed).
#[derive(Clone, Debug, Serialize)]
pub struct SystemResult {
    pub system: String,
    pub bulk_gbit_s: f64,
    pub connects_per_s: f64,
    pub rr_p50_us: f64,
    pub rr_p99_us: f64,
    /// Why a metric is missing.
    pub error: Option<String>,
}

/// How many times better utcp is than `versus` on each metric (> 1: utcp better):
/// utcp/x for bulk and connects/s, x/utcp for the latencies.
#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    pub versus: String,
    pub bulk: f64,
    pub connects: f64,
    pub rr_p50: f64,
    pub rr_p99: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ForwardBenchReport {
    pub work: Work,
    pub systems: Vec<SystemResult>,
    pub ratios: Vec<Ratio>,
}

/// Run the workload on every system (root; a system that cannot run reports its error).
pub fn run(quick: bool) -> ForwardBenchReport {
    let work = Work::new(quick);
    let mut runs = Vec::new();
    for (name, stack) in SYSTEMS.into_iter().filter(|(n, _)| only_system().is_none_or(|o| o == *n)) {
        eprintln!("bench forward: setting up {name}");
        runs.push((name, Topology::start(stack, work.bulk_bytes), Vec::new()));
    }
    for round in 0..work.rounds {
        for (name, topology, samples) in runs.iter_mut() {
            let Ok(t) = topology else { continue };
            match sample(t, work) {
                Ok(s) => {
                    eprintln!("bench forward: round {}/{} {name}: {}", round + 1, work.rounds, s.describe());
                    samples.push(s);
                }
                Err(e) => *topology = Err(e),
            }
        }
    }
    eprintln!("bench forward: tearing down");
    let systems: Vec<SystemResult> = runs
        .into_iter()
        .map(|(name, t, samples)| match t {
            Ok(_) => summarize(name, &samples),
            Err(e) => failed(name, e),
        })
        .collect();
    let ratios = ratios(&systems);
    ForwardBenchReport { work, systems, ratios }
}

/// One round of the three measurements from a thread in A.
fn sample(t: &Topology, work: Work) -> io::Result<SystemResult> {
    let h = t.a.spawn(move || clients(work))?;
    h.join().map_err(|_| io::Error::other("client thread panicked"))??
}

/// Best bulk, median of the rest, over the rounds.
fn summarize(name: &str, samples: &[SystemResult]) -> SystemResult {
    let median = |f: fn(&SystemResult) -> f64| {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    SystemResult {
        system: name.into(),
        bulk_gbit_s: samples.iter().map(|s| s.bulk_gbit_s).fold(f64::NAN, f64::max),
        connects_per_s: median(|s| s.connects_per_s),
        rr_p50_us: median(|s| s.rr_p50_us),
        rr_p99_us: median(|s| s.rr_p99_us),
        error: None,
    }
}

impl SystemResult {
    fn describe(&self) -> String {
        format!(
            "{:.2} Gbit/s, {:.0} connects/s, rr p50 {:.1} us p99 {:.1} us",
            self.bulk_gbit_s, self.connects_per_s, self.rr_p50_us, self.rr_p99_us
        )
    }
}

fn failed(name: &str, e: io::Error) -> SystemResult {
    eprintln!("bench forward: {name} FAILED: {e}");
    let nan = f64::NAN;
    SystemResult {
        system: name.into(),
        bulk_gbit_s: nan,
        connects_per_s: nan,
        rr_p50_us: nan,
        rr_p99_us: nan,
        error: Some(e.to_string()),
    }
}

fn ratios(systems: &[SystemResult]) -> Vec<Ratio> {
    let Some(u) = systems.iter().find(|s| s.system == "utcp") else { return vec![] };
    let others = systems.iter().filter(|s| s.system == "ipstack" || s.system == "netstack-smoltcp");
    others
        .map(|x| Ratio {
            versus: x.system.clone(),
            bulk: u.bulk_gbit_s / x.bulk_gbit_s,
            connects: u.connects_per_s / x.connects_per_s,
            rr_p50: x.rr_p50_us / u.rr_p50_us,
            rr_p99: x.rr_p99_us / u.rr_p99_us,
        })
        .collect()
}

/// The namespaces, servers and gateway of one system; dropped gateway first, then the
/// servers (stopped and joined), then the namespaces.
struct Topology {
    _gateway: Option<Gateway>,
    _servers: super::harness::Servers<io::Result<io::Result<()>>>,
    a: NetNs,
    _b: NetNs,
}

impl Topology {
    /// Namespaces, servers, and the gateway (`Some`) or plain routing (`None`).
    fn start(stack: Option<Stack>, bulk_bytes: u64) -> io::Result<Topology> {
        if !crate::netns::is_root() || !std::path::Path::new("/dev/net/tun").exists() {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "needs root and /dev/net/tun"));
        }
        let a = NetNs::create(&NetNs::unique_name("utcpfw-a"))?;
        let b = NetNs::create(&NetNs::unique_name("utcpfw-b"))?;
        server_address(&b)?;
        let servers = start_servers(&b, bulk_bytes)?;
        let gateway = match stack {
            Some(s) => Some(Gateway::start(s, &a, b.name())?),
            None => {
                kernel_route(&a, &b)?;
                None
            }
        };
        Ok(Topology { _gateway: gateway, _servers: servers, a, _b: b })
    }
}

/// 10.99.0.1 in B: on a dummy interface if the kernel has the module, else on loopback.
fn server_address(b: &NetNs) -> io::Result<()> {
    let dev = if b.exec("ip", &["link", "add", "d0", "type", "dummy"]).is_ok() { "d0" } else { "lo" };
    b.exec("ip", &["addr", "add", &format!("{SERVER_IP}/32"), "dev", dev])?;
    b.exec("ip", &["link", "set", dev, "up"])?;
    Ok(())
}

/// The reference: A routes 10.99.0.0/24 over a veth to B (offloads on, as a host has them).
fn kernel_route(a: &NetNs, b: &NetNs) -> io::Result<()> {
    a.exec("ip", &["link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b.name()])?;
    a.exec("ip", &["addr", "add", "10.98.0.1/30", "dev", "va"])?;
    a.exec("ip", &["link", "set", "va", "up"])?;
    b.exec("ip", &["addr", "add", "10.98.0.2/30", "dev", "vb"])?;
    b.exec("ip", &["link", "set", "vb", "up"])?;
    b.exec("ip", &["route", "add", "10.98.0.0/30", "dev", "vb"]).or(Ok::<_, io::Error>(String::new()))?;
    a.exec("ip", &["route", "replace", &format!("{CLIENT_NET}/24"), "via", "10.98.0.2"])?;
    Ok(())
}

fn start_servers(
    b: &NetNs,
    bulk_bytes: u64,
) -> io::Result<super::harness::Servers<io::Result<io::Result<()>>>> {
    let mut servers = super::harness::Servers::new();
    let (tx, rx) = std::sync::mpsc::channel();
    for port in [BULK_PORT, CONNECT_PORT, ECHO_PORT] {
        let (stop, tx) = (servers.stop.clone(), tx.clone());
        servers.push(b.spawn(move || {
            let l = bind(SocketAddr::from((SERVER_IP, port)));
            let _ = tx.send(l.as_ref().map(|_| ()).map_err(|e| io::Error::new(e.kind(), e.to_string())));
            accept_loop(&l?, port, bulk_bytes, &stop)
        })?);
    }
    for _ in 0..3 {
        rx.recv_timeout(Duration::from_secs(5)).map_err(|_| io::Error::other("server did not start"))??;
    }
    Ok(servers)
}

/// A listener whose `accept` wakes every 100 ms to see the stop flag.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    let wake = Some(Duration::from_millis(100));
    rustix::net::sockopt::set_socket_timeout(&l, rustix::net::sockopt::Timeout::Recv, wake)?;
    Ok(l)
}

fn accept_loop(l: &TcpListener, port: u16, bulk_bytes: u64, stop: &Arc<AtomicBool>) -> io::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((s, _)) => {
                std::thread::spawn(move || serve(s, port, bulk_bytes));
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One server connection: the port picks the behaviour. Errors end it quietly.
fn serve(mut s: TcpStream, port: u16, bulk_bytes: u64) -> io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    match port {
        BULK_PORT => {
            let mut left = bulk_bytes;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                s.write_all(&buf[..n])?;
                left -= n as u64;
            }
        }
        CONNECT_PORT => {
            s.read_exact(&mut buf[..1])?;
            s.write_all(&buf[..1])?;
            while s.read(&mut buf)? > 0 {}
        }
        _ => loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n])?;
        },
    }
    Ok(())
}

fn connect(port: u16) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&SocketAddr::from((SERVER_IP, port)), IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// The three measurements, on a thread in A.
fn clients(work: Work) -> io::Result<SystemResult> {
    let ctx = |what: &'static str| move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let best = bulk(work.bulk_bytes).map_err(ctx("bulk"))?;
    let connects_per_s = connects(work.connects).map_err(ctx("connects"))?;
    let (rr_p50_us, rr_p99_us) = rr(work.rr).map_err(ctx("rr"))?;
    Ok(SystemResult {
        system: String::new(),
        bulk_gbit_s: best,
        connects_per_s,
        rr_p50_us,
        rr_p99_us,
        error: None,
    })
}

/// Download `bytes`; Gbit/s from connect to the last byte. The client stops at the known
/// length instead of waiting for EOF: ipstack 1.0.1 does not pass the upstream's FIN on
/// while the client's direction is open (half-close), so EOF would never come through it.
fn bulk(bytes: u64) -> io::Result<f64> {
    let t = Instant::now();
    let mut s = connect(BULK_PORT)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    while got < bytes {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other(format!("bulk: EOF after {got} bytes of {bytes}")));
        }
        got += n as u64;
    }
    Ok(got as f64 * 8.0 / t.elapsed().as_secs_f64() / 1e9)
}

/// `n` sequential connect + 1-byte exchange + close; per second.
fn connects(n: usize) -> io::Result<f64> {
    let t = Instant::now();
    for _ in 0..n {
        let mut s = connect(CONNECT_PORT)?;
        s.write_all(b"c")?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// `n` 1-byte request/responses on one connection; p50 and p99 in µs.
fn rr(n: usize) -> io::Result<(f64, f64)> {
    let mut s = connect(ECHO_PORT)?;
    let mut lat = Vec::with_capacity(n);
    let mut b = [0u8; 1];
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(b"r")?;
        s.read_exact(&mut b)?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    Ok((pct(0.50), pct(0.99)))
}

/// `utcp bench --only forward [--quick] [--json]`; without root, PermissionDenied (exit 77).
pub fn cli(quick: bool, json: bool) -> io::Result<String> {
    if !crate::netns::is_root() || !std::path::Path::new("/dev/net/tun").exists() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "utcp bench --only forward needs root and /dev/net/tun: it creates network namespaces, \
             a veth pair and TUN devices",
        ));
    }
    let r = run(quick);
    Ok(if json { r.json() } else { r.table() })
}

impl ForwardBenchReport {
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn table(&self) -> String {
        let w = &self.work;
        let mut t = format!(
            "forward (tun2socks gateway), {} rounds: bulk {} MiB (best), {} connects, {} x 1-byte rr (medians)\n",
            w.rounds,
            w.bulk_bytes >> 20,
            w.connects,
            w.rr
        );
        t += &format!(
            "{:<18} {:>10} {:>12} {:>10} {:>10}\n",
            "system", "Gbit/s", "connects/s", "p50 us", "p99 us"
        );
        for s in &self.systems {
            t += &format!(
                "{:<18} {:>10.2} {:>12.0} {:>10.1} {:>10.1}\n",
                s.system, s.bulk_gbit_s, s.connects_per_s, s.rr_p50_us, s.rr_p99_us
            );
        }
        for r in &self.ratios {
            t += &format!(
                "{:<18} {:>9.2}x {:>11.2}x {:>9.2}x {:>9.2}x\n",
                format!("utcp vs {}", r.versus),
                r.bulk,
                r.connects,
                r.rr_p50,
                r.rr_p99
            );
        }
        t + "(ratios: > 1 means utcp is better; latency ratios are other/utcp)\n"
    }
}

/// `UTCP_FORWARD_SYSTEM=name` runs one system only (for profiling).
fn only_system() -> Option<String> {
    std::env::var("UTCP_FORWARD_SYSTEM").ok()
}
