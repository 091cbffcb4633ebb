//! `utcp bench --synflood`: a random-source SYN flood against each system while a
//! legitimate kernel client keeps connecting (RFC 4987; issue "Hostile networks").
//!
//! Everything stays inside the namespaces the systems create: a raw socket in the client
//! namespace writes SYNs to the server's address with spoofed sources from
//! [`SPOOF_NET`]/16, for at most `flood` (and [`MAX_FLOOD_PACKETS`]). The range is routed
//! back to the client namespace (the TUN systems answer through their TUN into it; the
//! kernel reference gets a route via the client's veth address), whose kernel drops the
//! answers (forwarding is off in a new namespace). Meanwhile a kernel client opens one
//! connection every [`INTERVAL`] to the `connect` port (3 s connect timeout), writes one
//! byte and reads one back, during the flood and for `after` once it stops.
//!
//! Reported per system: success % and connect p50/p99 during and after the flood, SYNs
//! sent, and the growth of this process's RSS (where utcp and smoltcp run; the kernel's
//! memory is not in it).

use super::{Port, System, SystemKind};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use utcp::seq::SeqNum;
use utcp::wire::{OptionLayout, TcpFlags, TcpHeaderOut, TcpOptions, emit_ipv4_tcp};

/// Spoofed sources are drawn from 10.99.0.0/16.
pub const SPOOF_NET: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 0);
/// One legitimate connect every 20 ms.
pub const INTERVAL: Duration = Duration::from_millis(20);
/// Legitimate connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Hard bound on the SYNs of one flood, whatever the duration.
pub const MAX_FLOOD_PACKETS: u64 = 100_000_000;
/// The utcp system's TUN queue (`InterfaceConfig::tx_queue_len`) unless `--txqueuelen`
/// says otherwise; the kernel's default for a new TUN is 500 (see docs/performance.md).
pub const UTCP_TX_QUEUE_LEN: u32 = 10_000;

#[derive(Clone, Debug)]
pub struct SynfloodOptions {
    pub flood: Duration,
    pub after: Duration,
    pub systems: Vec<SystemKind>,
    /// The utcp system's TUN queue, packets (`None`: the kernel's 500).
    pub utcp_tx_queue_len: Option<u32>,
}

impl Default for SynfloodOptions {
    fn default() -> Self {
        SynfloodOptions {
            flood: Duration::from_secs(20),
            after: Duration::from_secs(5),
            systems: SystemKind::ALL.to_vec(),
            utcp_tx_queue_len: Some(UTCP_TX_QUEUE_LEN),
        }
    }
}

/// Legitimate connects of one phase.
#[derive(Clone, Debug, Default)]
pub struct Phase {
    pub attempts: u64,
    pub ok: u64,
    /// Connect times of the successful attempts, ms, sorted.
    pub connect_ms: Vec<f64>,
}

impl Phase {
    pub fn success_pct(&self) -> f64 {
        if self.attempts == 0 { 0.0 } else { 100.0 * self.ok as f64 / self.attempts as f64 }
    }
    pub fn pct(&self, p: f64) -> Option<f64> {
        let n = self.connect_ms.len();
        (n > 0).then(|| self.connect_ms[((n as f64 * p).ceil() as usize).clamp(1, n) - 1])
    }
}

#[derive(Clone, Debug)]
pub struct SynfloodResult {
    pub kind: SystemKind,
    pub syns_sent: u64,
    pub during: Phase,
    pub after: Phase,
    /// Largest RSS seen while the flood ran, minus RSS before it, KiB.
    pub rss_growth_kib: i64,
    /// The same until the end of the run (includes the legitimate connections' buffers,
    /// e.g. in TIME-WAIT), KiB.
    pub rss_growth_total_kib: i64,
    /// Packets the kernel dropped at the TUN's queue during the run (TX `dropped` of the
    /// TUN devices in the client namespace): SYNs that never reached the stack. `None`
    /// for the kernel reference (no TUN).
    pub tun_drops: Option<u64>,
    /// CPU time of the flooder's thread per SYN sent, ns (`getrusage(RUSAGE_THREAD)`): for
    /// the kernel reference it includes the kernel's own SYN handling, which runs inside
    /// the flooder's `sendto` (loopback delivery in softirq context on the sending thread).
    pub flooder_ns_per_syn: f64,
    /// CPU time of this process less the flooder's thread, per SYN that reached the
    /// stack (SYNs sent less TUN drops), ns: the user-space stack's cost per SYN, plus
    /// the legitimate client's small share. `None` for the kernel reference (its SYN
    /// work is in the flooder's `sendto`).
    pub stack_ns_per_syn: Option<f64>,
}

/// Run the flood against every selected system, one after the other.
pub fn run(opts: &SynfloodOptions, progress: bool) -> io::Result<Vec<SynfloodResult>> {
    if !crate::netns::is_root() || !std::path::Path::new("/dev/net/tun").exists() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "utcp bench --synflood needs root and /dev/net/tun",
        ));
    }
    let mut out = Vec::new();
    for &k in &opts.systems {
        if progress {
            eprintln!("synflood: setting up {}", k.name());
        }
        let sys: Box<dyn System> = match k {
            SystemKind::Kernel => Box::new(super::kernel::KernelSystem::start(true)?),
            SystemKind::Smoltcp => Box::new(super::smoltcp_sys::SmoltcpSystem::start()?),
            SystemKind::Utcp => {
                Box::new(super::utcp_sys::UtcpSystem::start_with(opts.utcp_tx_queue_len, true)?)
            }
            k @ (SystemKind::UtcpBusy | SystemKind::UtcpNoPoll | SystemKind::UtcpNoSteer) => {
                Box::new(super::utcp_sys::UtcpSystem::start_variant(k, true)?)
            }
        };
        if let Some(server) = sys.server_ns() {
            // The spoofed range answers into the client namespace, which drops it.
            let via = client_addr_for(sys.server_ip());
            server.exec("ip", &["route", "add", "10.99.0.0/16", "via", &via.to_string()])?;
        }
        let r = flood_one(sys.as_ref(), opts)?;
        if progress {
            eprintln!("synflood: {}", describe(&r));
        }
        out.push(r);
    }
    Ok(out)
}

/// The client side's address on the server's /24 (.1 in every system).
fn client_addr_for(server: Ipv4Addr) -> Ipv4Addr {
    let o = server.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 1)
}

fn flood_one(sys: &dyn System, opts: &SynfloodOptions) -> io::Result<SynfloodResult> {
    let server = sys.server_ip();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let rss0 = rss_kib();
    let drops0 = tun_tx_dropped(sys.client_ns());
    let cpu0 = process_cpu_ns();
    let t0 = Instant::now();
    let flood_end = t0 + opts.flood;
    let flooder = {
        let (stop, sent) = (stop.clone(), sent.clone());
        sys.client_ns().spawn(move || {
            let t0 = thread_cpu_ns();
            flood(server, flood_end, &stop, &sent).map(|()| thread_cpu_ns().saturating_sub(t0))
        })?
    };
    let end = flood_end + opts.after;
    let client = sys.client_ns().spawn(move || legit_client(server, flood_end, end))?;
    let phases = client.join().map_err(|_| io::Error::other("client thread panicked"))?;
    stop.store(true, Ordering::Relaxed);
    let flood_res = flooder.join().map_err(|_| io::Error::other("flood thread panicked"))?;
    let ((mut during, mut after), (peak_flood, peak)) = phases??;
    let flooder_cpu_ns = flood_res??;
    let cpu = process_cpu_ns().saturating_sub(cpu0).saturating_sub(flooder_cpu_ns);
    let syns_sent = sent.load(Ordering::Relaxed);
    let tun_drops = match (drops0, tun_tx_dropped(sys.client_ns())) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    during.connect_ms.sort_by(f64::total_cmp);
    after.connect_ms.sort_by(f64::total_cmp);
    Ok(SynfloodResult {
        kind: sys.kind(),
        syns_sent,
        during,
        after,
        rss_growth_kib: peak_flood as i64 - rss0 as i64,
        rss_growth_total_kib: peak.max(rss_kib()) as i64 - rss0 as i64,
        tun_drops,
        flooder_ns_per_syn: flooder_cpu_ns as f64 / syns_sent.max(1) as f64,
        stack_ns_per_syn: tun_drops
            .map(|d| syns_sent.saturating_sub(d))
            .filter(|&n| n > 0)
            .map(|n| cpu as f64 / n as f64),
    })
}

/// This process's user + system CPU time, ns.
fn process_cpu_ns() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// This thread's user + system CPU time, ns.
pub(crate) fn thread_cpu_ns() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with a valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Sum of the TX `dropped` counters of the TUN devices in `ns` (what the kernel could not
/// queue for the user-space stack); `None` if there is no TUN there.
fn tun_tx_dropped(ns: &crate::netns::NetNs) -> Option<u64> {
    let out = ns.exec("ip", &["-j", "-s", "link", "show", "type", "tun"]).ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let devs = v.as_array().filter(|a| !a.is_empty())?;
    Some(devs.iter().filter_map(|d| d["stats64"]["tx"]["dropped"].as_u64()).sum())
}

/// Spoofed SYNs through a raw socket until `end`, `stop` or the packet bound.
pub(crate) fn flood(server: Ipv4Addr, end: Instant, stop: &AtomicBool, sent: &AtomicU64) -> io::Result<()> {
    // SAFETY: plain socket(2); the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let dst = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(server).to_be() },
        sin_zero: [0; 8],
    };
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15 ^ nanos;
    let mut buf = [0u8; 64];
    let mut n_sent = 0u64;
    while n_sent < MAX_FLOOD_PACKETS && !stop.load(Ordering::Relaxed) {
        if n_sent.is_multiple_of(1024) && Instant::now() >= end {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let src = Ipv4Addr::from(u32::from(SPOOF_NET) | (rng as u32 & 0xffff));
        let h = TcpHeaderOut {
            tcp: utcp::wire::TcpRepr {
                src_port: 1024 + ((rng >> 16) as u16 % 60000),
                dst_port: Port::Connect.number(),
                seq: SeqNum((rng >> 32) as u32),
                ack: SeqNum(0),
                flags: TcpFlags::SYN,
                window: 64240,
                urgent: 0,
                options: TcpOptions { mss: Some(1460), ..TcpOptions::default() },
            },
            src: IpAddr::V4(src),
            dst: IpAddr::V4(server),
            ttl: 64,
            ip_id: rng as u16,
            flow_label: 0,
        };
        let Some(len) = emit_ipv4_tcp(&mut buf, &h, OptionLayout::Linux, &[]) else { break };
        // SAFETY: valid fd, buffer and address of the right size.
        let rc = unsafe {
            libc::sendto(
                fd,
                buf.as_ptr().cast(),
                len,
                0,
                (&dst as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc > 0 {
            n_sent += 1;
            if n_sent.is_multiple_of(1024) {
                sent.store(n_sent, Ordering::Relaxed);
            }
        }
    }
    sent.store(n_sent, Ordering::Relaxed);
    // SAFETY: fd came from socket(2) above.
    unsafe { libc::close(fd) };
    Ok(())
}

/// One connect + 1-byte echo every INTERVAL until `end`. Returns (during, after) and the
/// peak RSS seen (during the flood, over the whole run).
/// Most legitimate exchanges in flight at once (each ends within two 3 s timeouts, so
/// at one start per 20 ms about 300 can be; beyond the cap an attempt counts as failed).
const MAX_IN_FLIGHT: usize = 512;

/// One exchange starts every `INTERVAL` whether or not the earlier ones have finished,
/// so a connect stuck behind the flood does not thin out the samples (each exchange runs
/// on its own thread, which inherits this thread's network namespace).
fn legit_client(
    server: Ipv4Addr,
    flood_end: Instant,
    end: Instant,
) -> io::Result<((Phase, Phase), (u64, u64))> {
    let addr = SocketAddr::from((server, Port::Connect.number()));
    let (mut during, mut after) = (Phase::default(), Phase::default());
    let (mut peak_flood, mut peak) = (0u64, 0u64);
    let (tx, rx) = std::sync::mpsc::channel::<(bool, Option<f64>)>();
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut next = Instant::now();
    while next < end {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        let in_flood = Instant::now() < flood_end;
        if in_flood { &mut during } else { &mut after }.attempts += 1;
        if in_flight.fetch_add(1, Ordering::Relaxed) < MAX_IN_FLIGHT {
            let (tx, slot) = (tx.clone(), in_flight.clone());
            let spawned = std::thread::Builder::new().spawn(move || {
                let _ = tx.send((in_flood, one_exchange(addr)));
                slot.fetch_sub(1, Ordering::Relaxed);
            });
            if spawned.is_err() {
                in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        } else {
            in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        peak = peak.max(rss_kib());
        if Instant::now() < flood_end {
            peak_flood = peak;
        }
        next = (next + INTERVAL).max(Instant::now());
    }
    drop(tx);
    // Every exchange ends within its timeouts; the channel closes with the last one.
    for (in_flood, r) in rx {
        if let Some(ms) = r {
            let phase = if in_flood { &mut during } else { &mut after };
            phase.ok += 1;
            phase.connect_ms.push(ms);
        }
    }
    Ok(((during, after), (peak_flood, peak)))
}

/// Connect (3 s timeout), write one byte, read one byte. The connect time in ms.
fn one_exchange(addr: SocketAddr) -> Option<f64> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).ok()?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    s.set_read_timeout(Some(CONNECT_TIMEOUT)).ok()?;
    s.write_all(b"x").ok()?;
    let mut b = [0u8; 1];
    (s.read(&mut b).ok()? == 1).then_some(ms)
}

/// This process's resident set, KiB.
fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

/// One line per system.
pub fn describe(r: &SynfloodResult) -> String {
    format!(
        "{:<8} SYNs {:>9}  during: {:>6.2}% ok ({}/{}) p50 {} p99 {} ms  after: {:>6.2}% ok ({}/{}) p50 {} p99 {} ms  RSS +{} KiB (run +{} KiB)  TUN drops {}  flooder {:.0} ns CPU/SYN  stack {} ns CPU/SYN",
        r.kind.name(),
        r.syns_sent,
        r.during.success_pct(),
        r.during.ok,
        r.during.attempts,
        fmt_ms(r.during.pct(0.5)),
        fmt_ms(r.during.pct(0.99)),
        r.after.success_pct(),
        r.after.ok,
        r.after.attempts,
        fmt_ms(r.after.pct(0.5)),
        fmt_ms(r.after.pct(0.99)),
        r.rss_growth_kib,
        r.rss_growth_total_kib,
        r.tun_drops.map_or("-".into(), |d| d.to_string()),
        r.flooder_ns_per_syn,
        r.stack_ns_per_syn.map_or("-".into(), |v| format!("{v:.0}")),
    )
}

/// A Markdown table of the results (for docs/performance.md).
pub fn table(results: &[SynfloodResult], opts: &SynfloodOptions) -> String {
    let mut t = format!(
        "synflood: {} s random-source SYN flood, then {} s; one connect + 1-byte echo every {} ms (3 s timeout); utcp TUN txqueuelen {}\n\n",
        opts.flood.as_secs(),
        opts.after.as_secs(),
        INTERVAL.as_millis(),
        opts.utcp_tx_queue_len.map_or("500 (kernel default)".into(), |n| n.to_string()),
    );
    t.push_str("| system | SYNs sent | success during | p50 / p99 during (ms) | success after | p50 / p99 after (ms) | RSS growth (flood / run) | TUN drops | flooder CPU ns/SYN | stack CPU ns/SYN |\n");
    t.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        t.push_str(&format!(
            "| {} | {} | {:.1}% ({}/{}) | {} / {} | {:.1}% ({}/{}) | {} / {} | {} / {} KiB | {} | {:.0} | {} |\n",
            r.kind.name(),
            r.syns_sent,
            r.during.success_pct(),
            r.during.ok,
            r.during.attempts,
            fmt_ms(r.during.pct(0.5)),
            fmt_ms(r.during.pct(0.99)),
            r.after.success_pct(),
            r.after.ok,
            r.after.attempts,
            fmt_ms(r.after.pct(0.5)),
            fmt_ms(r.after.pct(0.99)),
            r.rss_growth_kib,
            r.rss_growth_total_kib,
            r.tun_drops.map_or("-".into(), |d| d.to_string()),
            r.flooder_ns_per_syn,
            r.stack_ns_per_syn.map_or("-".into(), |v| format!("{v:.0}")),
        ));
    }
    t
}

/// One JSON object per system (`utcp bench --synflood --json`). A phase without
/// attempts has `null` success and percentiles, never 0.
pub fn json(results: &[SynfloodResult]) -> String {
    let phase = |p: &Phase| {
        serde_json::json!({
            "attempts": p.attempts,
            "ok": p.ok,
            "success_pct": (p.attempts > 0).then(|| p.success_pct()),
            "p50_ms": p.pct(0.5),
            "p99_ms": p.pct(0.99),
        })
    };
    let rows: Vec<_> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "system": r.kind.name(),
                "syns_sent": r.syns_sent,
                "during": phase(&r.during),
                "after": phase(&r.after),
                "rss_growth_kib": r.rss_growth_kib,
                "rss_growth_total_kib": r.rss_growth_total_kib,
                "tun_drops": r.tun_drops,
                "flooder_ns_per_syn": r.flooder_ns_per_syn,
                "stack_ns_per_syn": r.stack_ns_per_syn,
            })
        })
        .collect();
    serde_json::json!({ "workload": "synflood", "results": rows }).to_string()
}
