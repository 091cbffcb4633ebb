//! `utcp bench --only http`: many concurrent connections (issue 12, item 3).
//!
//! 64 kernel client threads (in the client namespace) GET a 1 KiB body, once with
//! `Connection: close` (a new connection per request) and once with keep-alive (one
//! connection per client), from the same HTTP/1.1 server code over two stacks
//! ([`harness::Listener`]/[`harness::Stream`]):
//! - `kernel`: the server's kernel sockets behind a veth (offloads on), the reference;
//! - `utcp`: utcp's blocking sockets behind a TUN (MTU 1500).
//!
//! The server is an accept thread feeding a bounded queue that a fixed pool of worker
//! threads serves, one connection at a time each (no per-connection thread spawns).
//! Metric: requests/s, median of the rounds; systems interleave round by round.
//! Every socket call has a timeout, every loop a time bound.

use super::harness::{self, KernelListener, Listener, Stream};
use crate::netns::NetNs;
use serde::Serialize;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PORT: u16 = 8080;
const KERNEL_SERVER: Ipv4Addr = Ipv4Addr::new(10, 88, 6, 2);
const TUN_PEER: Ipv4Addr = Ipv4Addr::new(10, 88, 7, 1);
const TUN_STACK: Ipv4Addr = Ipv4Addr::new(10, 88, 7, 2);
/// Concurrent client connections (threads).
const CLIENTS: usize = 64;
/// Server worker threads (each serves one connection at a time).
const WORKERS: usize = 64;
/// Accepted connections waiting for a worker, at most.
const QUEUE: usize = 256;
/// The response body.
const BODY: usize = 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// A request head longer than this is refused (the server closes).
const MAX_HEAD: usize = 4096;

/// Connection handling of one sample.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub enum Mode {
    Close,
    KeepAlive,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Close => "http_close",
            Mode::KeepAlive => "http_keepalive",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub workload: &'static str,
    pub system: &'static str,
    /// Median over the rounds (NaN/null if every round failed).
    pub requests_per_s: f64,
    pub min: f64,
    pub max: f64,
    /// Requests that failed (timeouts, resets), over all rounds.
    pub errors: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct HttpBenchReport {
    pub rounds: usize,
    pub seconds: f64,
    pub clients: usize,
    pub rows: Vec<Row>,
    /// utcp/kernel per workload (medians).
    pub ratios: Vec<(&'static str, f64)>,
}

/// A system: its namespaces, server and where the clients connect.
struct Topology {
    name: &'static str,
    server: Option<Server>,
    _iface: Option<utcp::Interface>,
    client: NetNs,
    _server_ns: Option<NetNs>,
    addr: SocketAddr,
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Stop the server threads before the interface and namespaces go.
        self.server.take();
        if let Some(i) = &self._iface
            && std::env::var_os("UTCP_HTTP_STATS").is_some()
        {
            eprintln!("bench http: {} link stats: {:?}", self.name, i.link_stats());
        }
    }
}

fn kernel() -> io::Result<Topology> {
    let client = NetNs::create(&NetNs::unique_name("utcpb-hc"))?;
    let server_ns = NetNs::create(&NetNs::unique_name("utcpb-hs"))?;
    let veth = ["link", "add", "hc", "type", "veth", "peer", "name", "hs", "netns", server_ns.name()];
    client.exec("ip", &veth)?;
    client.exec("ip", &["addr", "add", "10.88.6.1/24", "dev", "hc"])?;
    client.exec("ip", &["link", "set", "hc", "up"])?;
    server_ns.exec("ip", &["addr", "add", "10.88.6.2/24", "dev", "hs"])?;
    server_ns.exec("ip", &["link", "set", "hs", "up"])?;
    server_ns.exec("ip", &["link", "set", "lo", "up"])?;
    let addr = SocketAddr::from((KERNEL_SERVER, PORT));
    let l = server_ns
        .spawn(move || KernelListener::bind(addr))?
        .join()
        .map_err(|_| io::Error::other("bind"))???;
    Ok(Topology {
        name: "kernel",
        server: Some(Server::start(l)),
        _iface: None,
        client,
        _server_ns: Some(server_ns),
        addr,
    })
}

/// The utcp server: `name` is `utcp` (the defaults), `utcp-nosteer` (flow steering off)
/// or `utcp-busy` (`BusyPoll::Always(50 µs)`).
fn utcp(name: &'static str) -> io::Result<Topology> {
    let client = NetNs::create(&NetNs::unique_name("utcpb-hu"))?;
    let mut cfg = utcp::InterfaceConfig::new("tun-http", TUN_STACK, TUN_PEER, 24);
    cfg.mtu = 1500;
    // `UTCP_HTTP_PCAP=FILE` captures what crosses the TUN (timing analysis).
    cfg.pcap = std::env::var_os("UTCP_HTTP_PCAP").map(Into::into);
    match name {
        "utcp-nosteer" => cfg.steer_queues = 0,
        "utcp-busy" => cfg.busy_poll = utcp::BusyPoll::Always(super::utcp_sys::BUSY_POLL),
        _ => {}
    }
    cfg.netns = Some(client.name().to_string());
    let iface = utcp::Interface::new(cfg)?;
    let addr = SocketAddr::from((TUN_STACK, PORT));
    let l = utcp::TcpListener::bind(&iface, addr)?;
    Ok(Topology { name, server: Some(Server::start(l)), _iface: Some(iface), client, _server_ns: None, addr })
}

/// The accept thread and the worker pool; dropping it stops and joins them.
struct Server {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    fn start<L>(l: L) -> Server
    where
        L: Listener + Send + 'static,
        L::Stream: Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel::<L::Stream>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for _ in 0..WORKERS {
            let (rx, stop) = (rx.clone(), stop.clone());
            // Named, so that profiles tell workers, the acceptor and the clients apart.
            let named = std::thread::Builder::new().name("http-worker".into());
            threads.push(named.spawn(move || worker(&rx, &stop)).expect("spawn a worker"));
        }
        let st = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("http-accept".into())
                .spawn(move || {
                    while !st.load(Ordering::Relaxed) {
                        match l.accept_or_wake() {
                            Ok(s) => {
                                // A full queue drops the connection (the client sees it closed).
                                let _ = tx.try_send(s);
                            }
                            Err(e) if harness::is_timeout(&e) => {}
                            Err(_) => std::thread::sleep(Duration::from_millis(1)),
                        }
                    }
                })
                .expect("spawn the acceptor"),
        );
        Server { stop, threads }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn worker<S: Stream>(rx: &Mutex<mpsc::Receiver<S>>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv_timeout(harness::WAKE);
        match next {
            Ok(mut s) => {
                let _ = s.set_timeouts(harness::WAKE).and_then(|_| s.set_nodelay(true));
                let _ = serve_http(&mut s, stop);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Serve requests on one connection until the client closes, asks to close, or `stop`.
pub fn serve_http<S: Read + Write>(s: &mut S, stop: &AtomicBool) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // Answer every complete request already read (pipelined ones too) before reading.
        while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let close = head[..end].windows(17).any(|w| w.eq_ignore_ascii_case(b"connection: close"));
            respond(s, close)?;
            head.drain(..end + 4);
            if close {
                return Ok(());
            }
        }
        if head.len() > MAX_HEAD || stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return Ok(());
        }
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if harness::is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Write one response with the 1 KiB body, in one write.
fn respond<S: Write>(s: &mut S, close: bool) -> io::Result<()> {
    let mut resp = Vec::with_capacity(128 + BODY);
    let conn = if close { "close" } else { "keep-alive" };
    write!(resp, "HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\nConnection: {conn}\r\n\r\n")?;
    resp.resize(resp.len() + BODY, b'x');
    s.write_all(&resp)
}

/// One client: requests for `dur`; returns (completed, failed).
fn client(addr: SocketAddr, mode: Mode, dur: Duration) -> (u64, u64) {
    let start = Instant::now();
    let (mut ok, mut failed) = (0, 0);
    let mut conn: Option<TcpStream> = None;
    let mut resp = vec![0u8; 4096];
    while start.elapsed() < dur && failed < 1000 {
        let r = (|| -> io::Result<()> {
            let s = match conn.take() {
                Some(s) => s,
                None => {
                    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
                    s.set_read_timeout(Some(IO_TIMEOUT))?;
                    s.set_write_timeout(Some(IO_TIMEOUT))?;
                    s.set_nodelay(true)?;
                    s
                }
            };
            let mut s = s;
            let req: &[u8] = match mode {
                Mode::Close => b"GET /1k HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
                Mode::KeepAlive => b"GET /1k HTTP/1.1\r\nHost: bench\r\n\r\n",
            };
            s.write_all(req)?;
            read_response(&mut s, &mut resp)?;
            if mode == Mode::KeepAlive {
                conn = Some(s);
            } else {
                // The server closes after the response: read its FIN, then close.
                let mut b = [0u8; 1];
                if s.read(&mut b)? != 0 {
                    return Err(io::Error::other("data after the response"));
                }
            }
            Ok(())
        })();
        match r {
            Ok(()) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    (ok, failed)
}

/// Read one response: the head, then `Content-Length` bytes.
fn read_response(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut have = 0;
    loop {
        if have == buf.len() {
            return Err(io::Error::other("response head too long"));
        }
        let n = s.read(&mut buf[have..])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the response"));
        }
        have += n;
        if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            let body_have = have - end - 4;
            if body_have > BODY {
                return Err(io::Error::other("response longer than announced"));
            }
            let mut rest = vec![0u8; BODY - body_have];
            return s.read_exact(&mut rest);
        }
    }
}

/// `CLIENTS` client threads in the client namespace for `dur`: (requests/s, errors).
fn sample(t: &Topology, mode: Mode, dur: Duration) -> io::Result<(f64, u64)> {
    let done = Arc::new(AtomicU64::new(0));
    let errs = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut hs = Vec::new();
    for _ in 0..CLIENTS {
        let (addr, done, errs) = (t.addr, done.clone(), errs.clone());
        hs.push(t.client.spawn(move || {
            let (ok, failed) = client(addr, mode, dur);
            done.fetch_add(ok, Ordering::Relaxed);
            errs.fetch_add(failed, Ordering::Relaxed);
        })?);
    }
    for h in hs {
        h.join().map_err(|_| io::Error::other("client thread panicked"))??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok((done.load(Ordering::Relaxed) as f64 / elapsed, errs.load(Ordering::Relaxed)))
}

/// Run both modes on both systems, interleaved, `rounds` times.
pub fn run(quick: bool) -> io::Result<HttpBenchReport> {
    let (rounds, dur) = if quick { (1, Duration::from_millis(500)) } else { (3, Duration::from_secs(3)) };
    // `UTCP_HTTP_SYSTEM=utcp` runs one system alone (for profiling); a comma-separated
    // list picks several; `utcp-nosteer` and `utcp-busy` are only run when named.
    let only = std::env::var("UTCP_HTTP_SYSTEM").ok();
    let want = |n: &str| match only.as_deref() {
        None => n == "kernel" || n == "utcp",
        Some(o) => o.split(',').any(|x| x == n),
    };
    let mut systems = Vec::new();
    if want("kernel") {
        systems.push(kernel()?);
    }
    for name in ["utcp", "utcp-nosteer", "utcp-busy"] {
        if want(name) {
            systems.push(utcp(name)?);
        }
    }
    // `UTCP_HTTP_MODE=http_close` (or `http_keepalive`) runs one mode alone (profiling).
    let mode = std::env::var("UTCP_HTTP_MODE").ok();
    let modes: Vec<Mode> = [Mode::Close, Mode::KeepAlive]
        .into_iter()
        .filter(|m| mode.as_deref().is_none_or(|o| o == m.name()))
        .collect();
    let mut samples = vec![Vec::new(); systems.len() * modes.len()];
    let mut errors = vec![0u64; samples.len()];
    for round in 0..rounds {
        for (mi, &mode) in modes.iter().enumerate() {
            for (si, t) in systems.iter().enumerate() {
                let (rate, errs) = sample(t, mode, dur)?;
                eprintln!(
                    "bench http: round {}/{rounds} {} {}: {rate:.0} req/s, {errs} errors",
                    round + 1,
                    mode.name(),
                    t.name
                );
                samples[mi * systems.len() + si].push(rate);
                errors[mi * systems.len() + si] += errs;
            }
        }
    }
    let mut rows = Vec::new();
    for (mi, &mode) in modes.iter().enumerate() {
        for (si, t) in systems.iter().enumerate() {
            let mut v = samples[mi * systems.len() + si].clone();
            v.sort_by(f64::total_cmp);
            rows.push(Row {
                workload: mode.name(),
                system: t.name,
                requests_per_s: v.get(v.len() / 2).copied().unwrap_or(f64::NAN),
                min: v.first().copied().unwrap_or(f64::NAN),
                max: v.last().copied().unwrap_or(f64::NAN),
                errors: errors[mi * systems.len() + si],
            });
        }
    }
    let ratios = modes
        .iter()
        .map(|m| {
            let of = |sys| {
                rows.iter().find(|r| r.workload == m.name() && r.system == sys).map(|r| r.requests_per_s)
            };
            (m.name(), of("utcp").unwrap_or(f64::NAN) / of("kernel").unwrap_or(f64::NAN))
        })
        .collect();
    Ok(HttpBenchReport { rounds, seconds: dur.as_secs_f64(), clients: CLIENTS, rows, ratios })
}

impl HttpBenchReport {
    pub fn table(&self) -> String {
        let mut out = format!(
            "http: {} clients, 1 KiB body, {} round(s) x {:.1} s\n{:<16} {:<8} {:>10} {:>21} {:>7}\n",
            self.clients, self.rounds, self.seconds, "workload", "system", "req/s", "min - max", "errors"
        );
        for r in &self.rows {
            out += &format!(
                "{:<16} {:<8} {:>10.0} {:>10.0} - {:>8.0} {:>7}\n",
                r.workload, r.system, r.requests_per_s, r.min, r.max, r.errors
            );
        }
        out += "\nratios           utcp/kernel\n";
        for (w, r) in &self.ratios {
            out += &format!("{w:<16} {r:>11.3}\n");
        }
        out
    }
}

pub fn cli(quick: bool, json: bool) -> io::Result<String> {
    if !crate::netns::is_root() || !std::path::Path::new("/dev/net/tun").exists() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "utcp bench --only http needs root and /dev/net/tun: it creates network namespaces, \
             a veth pair and a TUN device",
        ));
    }
    let r = run(quick)?;
    Ok(if json {
        serde_json::to_string(&r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    } else {
        r.table()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bench::harness::Pipe;

    fn responses(out: &[u8]) -> usize {
        out.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count()
    }

    #[test]
    fn keep_alive_serves_every_request_and_close_stops_after_one() {
        let stop = AtomicBool::new(false);
        let two = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        let mut p = Pipe { input: io::Cursor::new(two), out: vec![] };
        serve_http(&mut p, &stop).unwrap();
        assert_eq!(responses(&p.out), 2);
        assert_eq!(
            p.out.len(),
            2 * (BODY + "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nConnection: keep-alive\r\n\r\n".len())
        );
        let closing = b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\nGET / HTTP/1.1\r\n\r\n".to_vec();
        let mut p = Pipe { input: io::Cursor::new(closing), out: vec![] };
        serve_http(&mut p, &stop).unwrap();
        assert_eq!(responses(&p.out), 1);
        assert!(p.out.windows(17).any(|w| w == b"Connection: close"));
    }

    #[test]
    fn an_endless_head_is_refused() {
        let stop = AtomicBool::new(false);
        let mut p = Pipe { input: io::Cursor::new(vec![b'a'; 3 * MAX_HEAD]), out: vec![] };
        serve_http(&mut p, &stop).unwrap();
        assert!(p.out.is_empty());
    }
}
