//! `lossy`: bulk transfers through a router namespace that drops packets on FORWARD
//! (iptables `statistic --mode random`), utcp against the kernel over the same path.
//!
//! Namespaces (all created here, removed on drop; private addresses only):
//! ```text
//!   cl (kernel client) c0 10.89.1.1 ── r0 10.89.1.254  rt (router, drops p on FORWARD)
//!   sv (kernel server) s0 10.89.2.1 ── r1 10.89.2.254  rt
//!   ut  u0 10.89.4.1 ── r2 10.89.4.254 rt;  ut forwards to its TUN 10.89.3.1 ─ utcp 10.89.3.2
//! ```
//! GSO/TSO/GRO are off on every veth (ethtool), so a drop is one packet. The kernel's
//! congestion control is set per socket (`TCP_CONGESTION`, on the client socket and on
//! every accepted server socket) to match utcp's (`reno` against NewReno, `cubic` against
//! CUBIC), and the kernel is also measured with its default (`net.ipv4.tcp_congestion_control`).
//! Each transfer is bounded by `Options::time_limit`; RTOs are `TcpExtTCPTimeouts` (nstat) of
//! the sending kernel namespace or utcp's `Counters::timeouts`.

use super::Port;
use super::harness::{close_with_reset, is_timeout, pattern, serve_stream};
use crate::netns::NetNs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use utcp::engine::config::CongestionAlgorithm;

const KERNEL_SERVER: Ipv4Addr = Ipv4Addr::new(10, 89, 2, 1);
const UTCP_SERVER: Ipv4Addr = Ipv4Addr::new(10, 89, 3, 2);
const WAKE: Duration = Duration::from_millis(100);

/// The kernel congestion control for the next kernel sockets; `None`: the kernel default.
static KERNEL_CC: Mutex<Option<&'static str>> = Mutex::new(None);

/// `setsockopt(TCP_CONGESTION)` with the current [`KERNEL_CC`], if any.
fn apply_cc(s: &TcpStream) -> io::Result<()> {
    let Some(cc) = *KERNEL_CC.lock().unwrap_or_else(|e| e.into_inner()) else { return Ok(()) };
    // SAFETY: valid fd; the option value is a byte string of the given length.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            cc.as_ptr().cast(),
            cc.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Drop probabilities on the router's FORWARD chain.
    pub losses: Vec<f64>,
    /// Bytes per transfer.
    pub bytes: u64,
    /// Upper bound on one transfer.
    pub time_limit: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { losses: vec![0.01, 0.05], bytes: 16 << 20, time_limit: Duration::from_secs(120) }
    }
}

/// One measured transfer.
#[derive(Clone, Debug)]
pub struct Row {
    pub loss: f64,
    /// "to stack" (kernel client sends) or "from stack" (the server under test sends).
    pub direction: &'static str,
    /// "utcp" or "kernel".
    pub system: &'static str,
    /// "reno" or "cubic".
    pub cc: &'static str,
    /// Goodput in Mbit/s, `None` when the transfer did not finish in time.
    pub mbps: Option<f64>,
    /// Retransmission timeouts of the sender.
    pub rtos: u64,
}

struct Topology {
    cl: NetNs,
    rt: NetNs,
    sv: NetNs,
    ut: NetNs,
}

fn veth(a: &NetNs, an: &str, aip: &str, b: &NetNs, bn: &str, bip: &str) -> io::Result<()> {
    a.exec("ip", &["link", "add", an, "mtu", "1500", "type", "veth", "peer", "name", bn, "netns", b.name()])?;
    for (ns, n, ip) in [(a, an, aip), (b, bn, bip)] {
        ns.exec("ip", &["addr", "add", ip, "dev", n])?;
        ns.exec("ip", &["link", "set", n, "up"])?;
        // One MSS per packet: a drop is one segment.
        ns.exec("ethtool", &["-K", n, "tso", "off", "gso", "off", "gro", "off"])?;
    }
    Ok(())
}

impl Topology {
    fn build() -> io::Result<Topology> {
        let t = Topology {
            cl: NetNs::create(&NetNs::unique_name("utcpl-cl"))?,
            rt: NetNs::create(&NetNs::unique_name("utcpl-rt"))?,
            sv: NetNs::create(&NetNs::unique_name("utcpl-sv"))?,
            ut: NetNs::create(&NetNs::unique_name("utcpl-ut"))?,
        };
        veth(&t.cl, "c0", "10.89.1.1/24", &t.rt, "r0", "10.89.1.254/24")?;
        veth(&t.sv, "s0", "10.89.2.1/24", &t.rt, "r1", "10.89.2.254/24")?;
        veth(&t.ut, "u0", "10.89.4.1/24", &t.rt, "r2", "10.89.4.254/24")?;
        t.cl.exec("ip", &["route", "add", "default", "via", "10.89.1.254"])?;
        t.sv.exec("ip", &["route", "add", "default", "via", "10.89.2.254"])?;
        t.ut.exec("ip", &["route", "add", "default", "via", "10.89.4.254"])?;
        t.rt.exec("ip", &["route", "add", "10.89.3.0/24", "via", "10.89.4.1"])?;
        for ns in [&t.rt, &t.ut] {
            ns.exec("sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
        }
        Ok(t)
    }

    fn set_loss(&self, p: f64) -> io::Result<()> {
        let _ = self.rt.exec("iptables", &["-F", "FORWARD"]);
        let prob = format!("{p}");
        self.rt.exec(
            "iptables",
            &["-A", "FORWARD", "-m", "statistic", "--mode", "random", "--probability", &prob, "-j", "DROP"],
        )?;
        Ok(())
    }
}

/// TcpExtTCPTimeouts (RTOs) of a namespace (absolute, not touching nstat's history).
fn kernel_timeouts(ns: &NetNs) -> u64 {
    let out = ns.exec("nstat", &["-asz", "TcpExtTCPTimeouts"]).unwrap_or_default();
    out.lines()
        .find(|l| l.starts_with("TcpExtTCPTimeouts"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Servers for Sink and Source on `listeners`, one connection at a time, until `stop`.
fn serve_kernel(stop: Arc<AtomicBool>, port: Port) -> io::Result<()> {
    let l = TcpListener::bind(SocketAddr::from((KERNEL_SERVER, port.number())))?;
    l.set_nonblocking(true)?;
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((mut s, _)) => {
                s.set_nonblocking(false)?;
                apply_cc(&s)?;
                s.set_read_timeout(Some(WAKE))?;
                s.set_write_timeout(Some(WAKE))?;
                let _ = serve_stream(port, &mut s, &|| stop.load(Ordering::Relaxed));
            }
            Err(e) if is_timeout(&e) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn serve_utcp(stop: Arc<AtomicBool>, port: Port, l: utcp::TcpListener) -> io::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        let mut s = match l.accept_timeout(WAKE) {
            Ok((s, _)) => s,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(e),
        };
        s.set_read_timeout(Some(WAKE))?;
        s.set_write_timeout(Some(WAKE))?;
        let _ = serve_stream(port, &mut s, &|| stop.load(Ordering::Relaxed));
    }
    Ok(())
}

/// One bulk transfer from the client namespace; returns the elapsed time.
fn transfer(server: Ipv4Addr, port: Port, bytes: u64, limit: Duration) -> io::Result<Duration> {
    let start = Instant::now();
    let mut s =
        TcpStream::connect_timeout(&SocketAddr::from((server, port.number())), Duration::from_secs(5))?;
    apply_cc(&s)?;
    s.set_read_timeout(Some(limit))?;
    s.set_write_timeout(Some(limit))?;
    let mut left = bytes;
    if port == Port::Sink {
        let data = pattern();
        while left > 0 {
            let n = (left as usize).min(data.len());
            s.write_all(&data[..n])?;
            left -= n as u64;
        }
        s.shutdown(std::net::Shutdown::Write)?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
    } else {
        let mut buf = vec![0u8; 64 << 10];
        while left > 0 {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::other("early EOF"));
            }
            left = left.saturating_sub(n as u64);
        }
        close_with_reset(s);
    }
    if start.elapsed() > limit {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "transfer exceeded the time limit"));
    }
    Ok(start.elapsed())
}

/// Run every loss rate, direction and congestion control; utcp and the kernel alternate.
pub fn run(opts: &Options, progress: bool) -> io::Result<Vec<Row>> {
    let topo = Topology::build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads: Vec<JoinHandle<io::Result<io::Result<()>>>> = Vec::new();
    for port in [Port::Sink, Port::Source] {
        let st = stop.clone();
        threads.push(topo.sv.spawn(move || serve_kernel(st, port))?);
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut rows = Vec::new();
    let res = (|| -> io::Result<()> {
        for (cc, algo) in [("reno", CongestionAlgorithm::NewReno), ("cubic", CongestionAlgorithm::Cubic)] {
            let iface = start_utcp(&topo, algo, &stop, &mut threads)?;
            for &loss in &opts.losses {
                topo.set_loss(loss)?;
                for (port, direction) in [(Port::Sink, "to stack"), (Port::Source, "from stack")] {
                    // The kernel with the same CC, utcp, and (once) the kernel's default.
                    let mut runs = vec![("kernel", Some(cc), cc), ("utcp", Some(cc), cc)];
                    if cc == "cubic" {
                        runs.push(("kernel", None, "default"));
                    }
                    for (system, kcc, label) in runs {
                        *KERNEL_CC.lock().unwrap_or_else(|e| e.into_inner()) = kcc;
                        let row = measure(&topo, &iface, opts, loss, label, port, direction, system)?;
                        if progress {
                            eprintln!("lossy: {row:?}");
                        }
                        rows.push(row);
                    }
                }
            }
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    for h in threads {
        let _ = h.join();
    }
    res.map(|_| rows)
}

fn start_utcp(
    topo: &Topology,
    algo: CongestionAlgorithm,
    stop: &Arc<AtomicBool>,
    threads: &mut Vec<JoinHandle<io::Result<io::Result<()>>>>,
) -> io::Result<Arc<utcp::Interface>> {
    let name = format!("tunl{}", u8::from(algo == CongestionAlgorithm::Cubic));
    let mut config = utcp::InterfaceConfig::new(&name, UTCP_SERVER, Ipv4Addr::new(10, 89, 3, 1), 24);
    config.netns = Some(topo.ut.name().to_string());
    config.engine.congestion_control = algo;
    let iface = Arc::new(utcp::Interface::new(config)?);
    let _ = topo.ut.exec("ethtool", &["-K", &name, "tso", "off", "gso", "off", "gro", "off"]);
    for port in [Port::Sink, Port::Source] {
        let l = utcp::TcpListener::bind(&iface, SocketAddr::from((UTCP_SERVER, port.number())))?;
        let st = stop.clone();
        threads.push(std::thread::spawn(move || Ok(serve_utcp(st, port, l))));
    }
    Ok(iface)
}

#[allow(clippy::too_many_arguments)]
fn measure(
    topo: &Topology,
    iface: &utcp::Interface,
    opts: &Options,
    loss: f64,
    cc: &'static str,
    port: Port,
    direction: &'static str,
    system: &'static str,
) -> io::Result<Row> {
    let server = if system == "utcp" { UTCP_SERVER } else { KERNEL_SERVER };
    // The sender: the kernel client (to stack), or the server under test (from stack).
    let rtos_now = || match (port, system) {
        (Port::Sink, _) => kernel_timeouts(&topo.cl),
        (_, "utcp") => iface.counters().timeouts,
        _ => kernel_timeouts(&topo.sv),
    };
    let before = rtos_now();
    let (bytes, limit) = (opts.bytes, opts.time_limit);
    let elapsed = topo.cl.spawn(move || transfer(server, port, bytes, limit))?.join();
    let elapsed = match elapsed {
        Ok(Ok(Ok(d))) => Some(d),
        _ => None,
    };
    let mbps = elapsed.map(|d| opts.bytes as f64 * 8.0 / d.as_secs_f64() / 1e6);
    Ok(Row { loss, direction, system, cc, mbps, rtos: rtos_now().saturating_sub(before) })
}

/// The rows as a markdown table, with utcp/kernel ratios.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| loss | direction | cc | kernel Mbit/s (RTOs) | utcp Mbit/s (RTOs) | utcp/kernel |\n|---|---|---|---|---|---|\n",
    );
    for k in rows.iter().filter(|r| r.system == "kernel" && r.cc == "default") {
        let f = k.mbps.map_or("timeout".to_string(), |m| format!("{m:.1} ({})", k.rtos));
        s += &format!("| {}% | {} | kernel default | {} | | |\n", k.loss * 100.0, k.direction, f);
    }
    for k in rows.iter().filter(|r| r.system == "kernel") {
        let Some(u) = rows
            .iter()
            .find(|r| r.system == "utcp" && r.loss == k.loss && r.direction == k.direction && r.cc == k.cc)
        else {
            continue;
        };
        let f = |r: &Row| r.mbps.map_or("timeout".to_string(), |m| format!("{m:.1} ({})", r.rtos));
        let ratio = match (u.mbps, k.mbps) {
            (Some(a), Some(b)) => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        s += &format!(
            "| {}% | {} | {} | {} | {} | {} |\n",
            k.loss * 100.0,
            k.direction,
            k.cc,
            f(k),
            f(u),
            ratio
        );
    }
    s
}
