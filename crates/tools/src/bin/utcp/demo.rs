//! `utcp demo`: the stack in a private namespace, exercised by the kernel's own clients.
//!
//! 1. a namespace, a TUN inside (kernel 10.77.0.1/24, stack 10.77.0.2);
//! 2. an echo server (port 7) and an HTTP server (port 80) on the stack;
//! 3. a kernel client says hello to the echo server (its segments and state changes are
//!    printed as a trace), then pushes a bulk transfer through it, then `curl` (or a
//!    kernel-socket HTTP client if curl is missing) downloads a file;
//! 4. over IPv6 (issue 13; kernel fd00:75:7463::2/64, stack fd00:75:7463::1 on the same
//!    TUN), a kernel client sends a block through the echo server, byte-exact;
//! 5. a summary; everything it made is removed.

use clap::Args;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use utcp::engine::Event;
use utcp::wire::{TcpSegment, parse_ipv4_tcp};
use utcp::{Direction, Interface, InterfaceConfig, Tap, TcpListener};
use utcp_tools::apps;
use utcp_tools::netns::{NetNs, is_root};

/// The stack in a private namespace against the kernel's clients: trace and summary (root)
///
/// Runs the stack in a private network namespace against the kernel's clients, prints a
/// trace of the first connection and a summary, and removes everything it created.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Write every packet crossing the TUN to FILE (pcap, raw IP)
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Bytes the kernel pushes through the echo server (at most 1G)
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = buffer_size)]
    bulk: u64,
    /// Pace the kernel's bulk writes to this many bit/s
    #[arg(long, value_name = "BITS", default_value = "200M", value_parser = crate::parsers::size)]
    bulk_rate: u64,
    /// Size of the file curl downloads (at most 1G)
    #[arg(long, value_name = "SIZE", default_value = "4M", value_parser = buffer_size)]
    http_size: u64,
    /// Write a time-sequence graph (SVG) of each connection's data direction into DIR
    /// (from a capture there, DIR/demo.pcap, unless --pcap names one)
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Open the TUN without offload (no virtio-net header, checksum offload or TSO/GRO)
    #[arg(long)]
    no_offload: bool,
}

/// A size the demo holds in memory (twice, for the echo): capped at 1 GiB.
fn buffer_size(s: &str) -> Result<u64, String> {
    crate::parsers::size(s).and_then(|n| if n <= 1 << 30 { Ok(n) } else { Err("more than 1G".into()) })
}

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
// --- IPv6 (issue 13): a private ULA prefix (RFC 4193) on the same TUN.
const KERNEL6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x75, 0x7463, 0, 0, 0, 0, 2);
const STACK6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x75, 0x7463, 0, 0, 0, 0, 1);
const PREFIX6: u8 = 64;
/// Bytes the kernel sends through the echo server over IPv6.
const ECHO6_BYTES: usize = 256 << 10;
/// Lines of trace kept for the first connection.
const TRACE_LIMIT: usize = 80;

pub fn run(args: DemoArgs) -> i32 {
    match demo(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("utcp demo: {e}");
            1
        }
    }
}

/// Records the segments and state changes of the first connection the kernel opens.
struct TraceTap {
    lines: Arc<Mutex<Vec<String>>>,
    /// (kernel endpoint, stack endpoint) of the first connection.
    first: Option<(SocketAddr, SocketAddr)>,
    /// Initial sequence numbers of (kernel, stack), for relative numbering.
    isn: (Option<u32>, Option<u32>),
    /// Window-scale shifts offered on the SYNs of (kernel, stack) (RFC 7323 §2.2).
    wscale: (Option<u8>, Option<u8>),
    /// Trailing lines that are segments we sent at time `tail_at`: a state change
    /// caused by the same input goes before them, where it happened.
    out_tail: usize,
    tail_at: u64,
}

impl TraceTap {
    fn new(lines: Arc<Mutex<Vec<String>>>) -> TraceTap {
        TraceTap { lines, first: None, isn: (None, None), wscale: (None, None), out_tail: 0, tail_at: 0 }
    }

    fn push(&mut self, at: usize, line: String) {
        let mut l = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if l.len() < TRACE_LIMIT {
            let at = at.min(l.len());
            l.insert(at, line);
        } else if l.len() == TRACE_LIMIT {
            l.push("   ... (trace truncated)".into());
        }
    }

    fn len(&self) -> usize {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn format(&mut self, now: utcp::time::Instant, dir: Direction, s: &TcpSegment<'_>) -> String {
        let (arrow, mine, theirs) = match dir {
            Direction::In => ("kernel -> utcp", &mut self.isn.0, self.isn.1),
            Direction::Out => ("utcp -> kernel", &mut self.isn.1, self.isn.0),
        };
        if s.flags.syn() {
            *mine = Some(s.seq.0);
            match dir {
                Direction::In => self.wscale.0 = s.options.window_scale,
                Direction::Out => self.wscale.1 = s.options.window_scale,
            }
        }
        // Windows on SYNs are never scaled; later ones are if both sides offered it.
        let shift = match (s.flags.syn(), self.wscale, dir) {
            (false, (Some(k), Some(_)), Direction::In) => k,
            (false, (Some(_), Some(u)), Direction::Out) => u,
            _ => 0,
        };
        let seq = s.seq.0.wrapping_sub(mine.unwrap_or(0));
        let ack = if s.flags.ack() { s.ack.0.wrapping_sub(theirs.unwrap_or(0)) } else { 0 };
        let mut opts = Vec::new();
        if let Some(m) = s.options.mss {
            opts.push(format!("mss {m}"));
        }
        if s.options.sack_permitted {
            opts.push("sackOK".into());
        }
        if let Some((val, ecr)) = s.options.timestamps {
            opts.push(format!("TS val {val} ecr {ecr}"));
        }
        if let Some(w) = s.options.window_scale {
            opts.push(format!("wscale {w}"));
        }
        for (a, b) in s.options.sack.as_slice() {
            opts.push(format!(
                "sack {}-{}",
                a.0.wrapping_sub(theirs.unwrap_or(0)),
                b.0.wrapping_sub(theirs.unwrap_or(0))
            ));
        }
        format!(
            "{:>9.3} ms  {arrow}  [{:<3}] seq {seq:<6} ack {ack:<6} win {:<7} len {:<4} {}",
            now.micros() as f64 / 1000.0,
            s.flags.to_string(),
            u32::from(s.window) << shift.min(14),
            s.payload.len(),
            if opts.is_empty() { String::new() } else { format!("<{}>", opts.join(", ")) }
        )
    }
}

impl Tap for TraceTap {
    fn packet(&mut self, now: utcp::time::Instant, dir: Direction, packet: &[u8]) {
        let Ok(seg) = parse_ipv4_tcp(packet) else {
            return; // not TCP (IPv6 chatter etc.): counted by the engine, not traced
        };
        let src = SocketAddr::new(seg.src, seg.src_port);
        let dst = SocketAddr::new(seg.dst, seg.dst_port);
        let pair = match dir {
            Direction::In => (src, dst),
            Direction::Out => (dst, src),
        };
        if self.first.is_none() && dir == Direction::In && seg.flags.syn() && !seg.flags.ack() {
            self.first = Some(pair);
        }
        if self.first == Some(pair) {
            let line = self.format(now, dir, &seg);
            if dir == Direction::Out && self.tail_at == now.micros() {
                self.out_tail += 1;
            } else {
                self.out_tail = usize::from(dir == Direction::Out);
                self.tail_at = now.micros();
            }
            let at = self.len();
            self.push(at, line);
        }
    }

    fn event(&mut self, now: utcp::time::Instant, event: &Event) {
        if let Event::StateChange { quad, from, to, .. } = event
            && self.first == Some((quad.remote, quad.local))
        {
            let line = format!("{:>9.3} ms      state  {from} -> {to}", now.micros() as f64 / 1000.0);
            let tail = if self.tail_at == now.micros() { self.out_tail } else { 0 };
            let at = self.len().saturating_sub(tail);
            self.push(at, line);
        }
    }
}

/// Deterministic test data from the project's seeded PRNG.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    utcp::device::rng::Rng::new(seed).fill_bytes(&mut v);
    v
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64().max(1e-9) / 1e6
}

/// Removes the demo's temporary directory however the demo ends.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn demo(a: &DemoArgs) -> Result<(), String> {
    // Both at most 1 GiB (`buffer_size`), so they fit a usize.
    let (bulk, http_size) = (a.bulk as usize, a.http_size as usize);
    let rate_bps = a.bulk_rate.max(1) as f64;
    if !is_root() || !Path::new("/dev/net/tun").exists() {
        return Err("needs root (CAP_NET_ADMIN) and /dev/net/tun: try `sudo`".into());
    }

    let ns = NetNs::create(&NetNs::unique_name("utcp-demo"))
        .map_err(|e| format!("creating a network namespace: {e}"))?;
    println!("namespace {}: kernel {KERNEL}/24 on TUN utcp0, utcp stack at {STACK}", ns.name());
    println!("  and over IPv6: kernel {KERNEL6}/{PREFIX6}, utcp stack at {STACK6}");

    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = InterfaceConfig::new("utcp0", STACK, KERNEL, 24);
    cfg.netns = Some(ns.name().to_string());
    cfg.engine.trace_states = true;
    cfg.addr6 = Some(STACK6);
    cfg.peer6 = Some((KERNEL6, PREFIX6));
    // A receive buffer well above what one paced burst brings: the capture shows a
    // transfer that flow control never has to stop.
    cfg.engine.recv_buffer = 1 << 20;
    cfg.pcap = a.pcap.clone();
    cfg.offload = !a.no_offload;
    if let (None, Some(dir)) = (&cfg.pcap, &a.plot) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("utcp demo: {}: {e}", dir.display());
        }
        cfg.pcap = Some(dir.join("demo.pcap"));
    }
    let capture = cfg.pcap.clone();
    cfg.tap = Some(Box::new(TraceTap::new(lines.clone())));
    let iface = Interface::new(cfg).map_err(|e| format!("interface: {e}"))?;

    let dir = TempDir(std::env::temp_dir().join(format!("utcp-demo-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).map_err(|e| format!("{}: {e}", dir.0.display()))?;
    let file = pattern(http_size, 3);
    std::fs::write(dir.0.join("file.bin"), &file).map_err(|e| e.to_string())?;
    std::fs::write(dir.0.join("index.html"), b"<h1>hello from utcp</h1>\n").map_err(|e| e.to_string())?;

    let echo_l = TcpListener::bind(&iface, (STACK, 7)).map_err(|e| format!("listen :7: {e}"))?;
    let http_l = TcpListener::bind(&iface, (STACK, 80)).map_err(|e| format!("listen :80: {e}"))?;
    let echo6_l = TcpListener::bind(&iface, (STACK6, 7)).map_err(|e| format!("listen [{STACK6}]:7: {e}"))?;
    let served = Arc::new(AtomicU64::new(0));
    let echoed = Arc::new(AtomicU64::new(0));
    let retrans_seen = Arc::new(AtomicU64::new(0));
    std::thread::scope(|sc| -> Result<(), String> {
        // Servers: accept the two echo connections and the HTTP one, then stop.
        let echo_srv = sc.spawn(|| {
            for _ in 0..2 {
                let Ok((s, _)) = echo_l.accept_timeout(Duration::from_secs(20)) else {
                    return;
                };
                served.fetch_add(1, Ordering::Relaxed);
                let n = apps::echo(&s).unwrap_or(0);
                echoed.fetch_add(n, Ordering::Relaxed);
                if let Ok(st) = s.status() {
                    retrans_seen.fetch_add(st.retransmits, Ordering::Relaxed);
                }
            }
        });
        let echo6_srv = sc.spawn(|| {
            // The IPv6 echo connection.
            if let Ok((s, _)) = echo6_l.accept_timeout(Duration::from_secs(20)) {
                served.fetch_add(1, Ordering::Relaxed);
                echoed.fetch_add(apps::echo(&s).unwrap_or(0), Ordering::Relaxed);
            }
        });
        let http_srv = sc.spawn(|| {
            // One download, by curl or by the fallback client.
            if let Ok((s, _)) = http_l.accept_timeout(Duration::from_secs(20)) {
                served.fetch_add(1, Ordering::Relaxed);
                let _ = apps::http(&s, &dir.0);
            }
        });

        // 1. Hello, traced.
        let hello = in_ns(&ns, "kernel echo client", || {
            let mut s = kernel_connect(IpAddr::V4(STACK), 7, Duration::from_secs(10))?;
            s.write_all(b"hello, utcp\n")?;
            s.shutdown(Shutdown::Write)?;
            let mut back = Vec::new();
            s.read_to_end(&mut back)?;
            Ok(back)
        })?;
        if hello != b"hello, utcp\n" {
            return Err(format!("echo returned {:?}", String::from_utf8_lossy(&hello)));
        }
        // Let the FIN exchange of the traced connection finish before printing it.
        iface.wait_quiet(Duration::from_millis(100), Duration::from_secs(2));
        println!("\ntrace of the first connection (kernel client -> utcp echo server, port 7)");
        println!(
            "  seq/ack relative to each side's ISN, win in bytes (scaled), flags as in tcpdump (. = ACK)\n"
        );
        for l in lines.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            println!("  {l}");
        }

        // 2. Bulk echo.
        let data = Arc::new(pattern(bulk, 7));
        let d2 = data.clone();
        let t0 = Instant::now();
        let ok = in_ns(&ns, "kernel bulk client", move || {
            let s = kernel_connect(IpAddr::V4(STACK), 7, Duration::from_secs(30))?;
            let mut w = s.try_clone()?;
            let d3 = d2.clone();
            let writer = std::thread::spawn(move || -> io::Result<()> {
                // Paced in 64 KiB bursts so that flow control never has to stop the
                // sender: the capture then shows a clean transfer (no zero windows);
                // `utcp bench` is where line rate is measured.
                let start = Instant::now();
                for (i, chunk) in d3.chunks(64 << 10).enumerate() {
                    w.write_all(chunk)?;
                    let due = Duration::from_secs_f64(((i + 1) * (64 << 10)) as f64 * 8.0 / rate_bps);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                w.shutdown(Shutdown::Write)
            });
            let mut back = Vec::with_capacity(d2.len());
            (&s).read_to_end(&mut back)?;
            writer.join().map_err(|_| io::Error::other("writer panicked"))??;
            Ok(back[..] == d2[..])
        })?;
        let bulk_time = t0.elapsed();
        if !ok {
            return Err("bulk echo returned different bytes".into());
        }
        println!(
            "\nbulk echo: {} bytes each way, byte-exact, {:.2} s, {:.0} Mbit/s each way",
            data.len(),
            bulk_time.as_secs_f64(),
            mbps(data.len() as u64, bulk_time)
        );

        // 3. HTTP download by curl (or a kernel socket if curl is missing).
        let t0 = Instant::now();
        let got = http_download(&ns, file.len())?;
        let http_time = t0.elapsed();
        if got != file.len() as u64 {
            return Err(format!("HTTP download: {got} bytes, expected {}", file.len()));
        }
        println!(
            "http: GET /file.bin -> {got} bytes in {:.2} s ({:.0} Mbit/s)",
            http_time.as_secs_f64(),
            mbps(got, http_time)
        );

        // 4. IPv6 (issue 13): a block through the echo server, byte-exact.
        echo6(&ns)?;
        let _ = echo_srv.join();
        let _ = echo6_srv.join();
        let _ = http_srv.join();
        Ok(())
    })?;
    drop(echo_l);
    drop(http_l);
    drop(echo6_l);
    iface.wait_quiet(Duration::from_millis(100), Duration::from_secs(2));

    let c = iface.counters();
    let link = iface.link_stats();
    println!("\nsummary");
    println!("  connections served      {}", served.load(Ordering::Relaxed));
    println!("  bytes echoed            {}", echoed.load(Ordering::Relaxed));
    println!("  packets in / out (TUN)  {} / {}", link.rx_packets, link.tx_packets);
    if link.offload {
        println!(
            "  TUN offload             {} super-segments in, {} out ({} segments)",
            link.rx_super_segments, link.tx_super_segments, link.tx_super_segment_segs
        );
    }
    println!("  bytes in / out (TUN)    {} / {}", link.rx_bytes, link.tx_bytes);
    println!(
        "  retransmitted segments  {} (echo connections: {})",
        c.retrans_segs,
        retrans_seen.load(Ordering::Relaxed)
    );
    println!("  non-TCP or foreign packets dropped: {}", c.total_drops());
    println!("\nengine counters (non-zero):");
    for l in c.to_string().lines() {
        println!("  {l}");
    }
    if let Some(p) = &a.pcap {
        println!("\npcap written to {}", p.display());
    }
    drop(iface);
    if let (Some(dir), Some(capture)) = (&a.plot, &capture) {
        match utcp_tools::plot::plot_all(capture, dir) {
            Ok(files) => files.iter().for_each(|f| println!("plot: {}", f.display())),
            Err(e) => eprintln!("utcp demo: --plot: {e}"),
        }
    }
    let name = ns.name().to_string();
    drop(ns);
    println!("removed namespace {name} and its TUN; done");
    Ok(())
}

/// Download /file.bin from the stack inside the namespace; returns the body length.
fn http_download(ns: &NetNs, expect: usize) -> Result<u64, String> {
    let url = format!("http://{STACK}/file.bin");
    match ns.exec(
        "curl",
        &["-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", &url],
    ) {
        Ok(out) => {
            let mut w = out.split_whitespace();
            let code = w.next().unwrap_or("");
            let size: u64 = w.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            if code != "200" {
                return Err(format!("curl {url}: HTTP status {code:?}"));
            }
            println!("\ncurl {url} (inside the namespace): HTTP 200");
            Ok(size)
        }
        Err(e) if which("curl").is_none() => {
            println!("\ncurl not installed ({e}); fetching with a kernel socket instead");
            in_ns(ns, "kernel HTTP client", move || {
                let mut s = kernel_connect(IpAddr::V4(STACK), 80, Duration::from_secs(30))?;
                s.write_all(b"GET /file.bin HTTP/1.1\r\nHost: utcp\r\n\r\n")?;
                let mut resp = Vec::with_capacity(expect + 512);
                s.read_to_end(&mut resp)?;
                let body =
                    resp.windows(4).position(|w| w == b"\r\n\r\n").map(|p| resp.len() - p - 4).unwrap_or(0);
                Ok(body as u64)
            })
        }
        Err(e) => Err(format!("curl: {e}")),
    }
}

/// Run `f` on a thread inside `ns` and wait for it; `what` names it in errors.
fn in_ns<T: Send + 'static>(
    ns: &NetNs,
    what: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, String> {
    let thread = ns.spawn(f).map_err(|e| format!("{what}: {e}"))?;
    thread.join().map_err(|_| format!("{what} panicked"))?.and_then(|r| r).map_err(|e| format!("{what}: {e}"))
}

/// IPv6 (issue 13): a kernel client sends [`ECHO6_BYTES`] through the stack's echo
/// server at [STACK6]:7 and checks what comes back; prints the summary line.
fn echo6(ns: &NetNs) -> Result<(), String> {
    let data = Arc::new(pattern(ECHO6_BYTES, 6));
    let d2 = data.clone();
    let t0 = Instant::now();
    let (local, back) = in_ns(ns, "kernel IPv6 echo client", move || {
        let s = kernel_connect(IpAddr::V6(STACK6), 7, Duration::from_secs(20))?;
        let local = s.local_addr()?;
        let mut w = s.try_clone()?;
        let writer = std::thread::spawn(move || -> io::Result<()> {
            w.write_all(&d2)?;
            w.shutdown(Shutdown::Write)
        });
        let mut back = Vec::with_capacity(ECHO6_BYTES);
        (&s).read_to_end(&mut back)?;
        writer.join().map_err(|_| io::Error::other("writer panicked"))??;
        Ok((local, back))
    })?;
    if back[..] != data[..] {
        return Err(format!("IPv6 echo returned {} different bytes", back.len()));
    }
    println!(
        "ipv6 echo: {local} -> [{STACK6}]:7, {} bytes each way, byte-exact, {:.2} s",
        data.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A kernel socket connected to the stack's `ip`:`port`, with a read timeout.
fn kernel_connect(ip: IpAddr, port: u16, read_timeout: Duration) -> io::Result<std::net::TcpStream> {
    let addr = SocketAddr::new(ip, port);
    let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(read_timeout))?;
    Ok(s)
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(prog)).find(|p| p.is_file())
}
