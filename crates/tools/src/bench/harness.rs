//! The load generator: the Linux kernel's TCP, driven through std sockets on a thread that
//! entered the system's client namespace. Every loop here is bounded in time and count, and
//! every socket has timeouts, so a stuck system under test fails a sample instead of hanging.

use super::{Options, Port, System};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Timeout of any single blocking socket call of the client.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of a TCP handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Most transactions (rr) or connections (connect) one sample performs.
const MAX_OPS: usize = 20_000_000;
/// Write/read chunk of the bulk workloads.
const CHUNK: usize = 64 * 1024;

/// A workload the kernel client runs against a system.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// The kernel sends, the stack receives.
    BulkToStack,
    /// The stack sends, the kernel receives.
    BulkFromStack,
    /// 1-byte request/response on one connection.
    Rr,
    /// Open, 1-byte exchange, close.
    Connect,
}

impl Workload {
    pub const ALL: [Workload; 4] =
        [Workload::BulkToStack, Workload::BulkFromStack, Workload::Rr, Workload::Connect];

    pub fn name(self) -> &'static str {
        match self {
            Workload::BulkToStack => "bulk_to_stack",
            Workload::BulkFromStack => "bulk_from_stack",
            Workload::Rr => "rr",
            Workload::Connect => "connect",
        }
    }

    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    /// The result rows one sample of this workload produces: (row name, unit, higher is better).
    pub fn metrics(self) -> &'static [(&'static str, &'static str, bool)] {
        match self {
            Workload::BulkToStack => &[("bulk_to_stack", "Gbit/s", true)],
            Workload::BulkFromStack => &[("bulk_from_stack", "Gbit/s", true)],
            Workload::Rr => &[("rr", "trans/s", true), ("rr_p50", "us", false), ("rr_p99", "us", false)],
            Workload::Connect => &[("connect", "conn/s", true)],
        }
    }

    fn port(self) -> Port {
        match self {
            Workload::BulkToStack => Port::Sink,
            Workload::BulkFromStack => Port::Source,
            Workload::Rr => Port::Echo,
            Workload::Connect => Port::Connect,
        }
    }
}

/// One measurement: the values of `Workload::metrics`, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub workload: Workload,
    pub values: Vec<f64>,
    /// Payload bytes moved or operations done, for the progress line.
    pub volume: u64,
    pub elapsed: Duration,
}

impl Sample {
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .workload
            .metrics()
            .iter()
            .zip(&self.values)
            .map(|((_, unit, _), v)| format!("{v:.3} {unit}"))
            .collect();
        format!("{} ({} in {:.2} s)", parts.join(", "), self.volume, self.elapsed.as_secs_f64())
    }
}

/// Run one sample of `w` against `sys` from a kernel client thread in the client namespace.
pub fn run_sample(sys: &dyn System, w: Workload, opts: &Options) -> io::Result<Sample> {
    let addr = SocketAddr::from((sys.server_ip(), w.port().number()));
    let duration = opts.duration;
    let max_bytes = opts.max_bytes;
    let handle = sys.client_ns().spawn(move || match w {
        Workload::BulkToStack => bulk_to_stack(addr, duration, max_bytes),
        Workload::BulkFromStack => bulk_from_stack(addr, duration, max_bytes),
        Workload::Rr => request_response(addr, duration),
        Workload::Connect => connect_rate(addr, duration),
    })?;
    handle.join().map_err(|_| io::Error::other("client thread panicked"))??
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// Close with SO_LINGER 0: the kernel sends a RST and keeps no TIME-WAIT state, so thousands
/// of short connections do not pile up (RFC 9293 §3.10.7 ABORT semantics on the wire).
pub fn close_with_reset(s: TcpStream) {
    // Best effort: without the option the close is an ordinary FIN.
    let _ = rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO));
    drop(s);
}

fn gbits(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 * 8.0 / elapsed.as_secs_f64().max(1e-9) / 1e9
}

/// The kernel writes for `duration` (or `max_bytes`), half-closes, and waits for the stack's
/// one-byte receipt, which it sends only after reading everything up to the FIN: the time
/// covers delivery of every byte to the stack's application.
fn bulk_to_stack(addr: SocketAddr, duration: Duration, max_bytes: u64) -> io::Result<Sample> {
    let mut s = connect(addr)?;
    let buf = vec![0x5au8; CHUNK];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < max_bytes && start.elapsed() < duration {
        let n = (max_bytes - sent).min(CHUNK as u64) as usize;
        s.write_all(&buf[..n])?;
        sent += n as u64;
    }
    s.shutdown(Shutdown::Write)?;
    let mut receipt = [0u8; 1];
    s.read_exact(&mut receipt)?;
    let elapsed = start.elapsed();
    close_with_reset(s);
    Ok(Sample { workload: Workload::BulkToStack, values: vec![gbits(sent, elapsed)], volume: sent, elapsed })
}

/// The stack writes as fast as it can; the kernel reads for `duration` (or `max_bytes`), then
/// resets the connection, which ends the stack's writer.
fn bulk_from_stack(addr: SocketAddr, duration: Duration, max_bytes: u64) -> io::Result<Sample> {
    let mut s = connect(addr)?;
    let mut buf = vec![0u8; CHUNK];
    let start = Instant::now();
    let mut received = 0u64;
    let mut elapsed = Duration::ZERO;
    while received < max_bytes && elapsed < duration {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stack closed the source connection",
            ));
        }
        received += n as u64;
        elapsed = start.elapsed();
    }
    close_with_reset(s);
    Ok(Sample {
        workload: Workload::BulkFromStack,
        values: vec![gbits(received, elapsed)],
        volume: received,
        elapsed,
    })
}

/// 1-byte ping-pong with Nagle off; transactions/s and the p50/p99 round-trip time.
fn request_response(addr: SocketAddr, duration: Duration) -> io::Result<Sample> {
    let mut s = connect(addr)?;
    s.set_nodelay(true)?;
    let mut lat_ns: Vec<u32> = Vec::with_capacity(1 << 16);
    let mut b = [0u8; 1];
    let start = Instant::now();
    while lat_ns.len() < MAX_OPS && start.elapsed() < duration {
        let t = Instant::now();
        s.write_all(b"q")?;
        s.read_exact(&mut b)?;
        lat_ns.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
    }
    let elapsed = start.elapsed();
    close_with_reset(s);
    if lat_ns.is_empty() {
        return Err(io::Error::other("no transaction completed"));
    }
    lat_ns.sort_unstable();
    let n = lat_ns.len();
    if super::stats_wanted() {
        let over = |us: u32| lat_ns.iter().rev().take_while(|&&l| l > us * 1000).count();
        let mean = elapsed.as_secs_f64() * 1e6 / n as f64;
        eprintln!(
            "bench: rr tail: mean {mean:.2} us, p99.9 {:.1} us, max {:.1} us, >50us {}, >200us {}, >1ms {}, >3ms {}",
            percentile(&lat_ns, 0.999) / 1e3,
            lat_ns[n - 1] as f64 / 1e3,
            over(50),
            over(200),
            over(1000),
            over(3000)
        );
    }
    Ok(Sample {
        workload: Workload::Rr,
        values: vec![
            n as f64 / elapsed.as_secs_f64(),
            percentile(&lat_ns, 0.50) / 1e3,
            percentile(&lat_ns, 0.99) / 1e3,
        ],
        volume: n as u64,
        elapsed,
    })
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

/// Sequential connections: connect, 1 byte each way, the stack closes, the kernel resets.
fn connect_rate(addr: SocketAddr, duration: Duration) -> io::Result<Sample> {
    let start = Instant::now();
    let mut n = 0usize;
    let mut b = [0u8; 1];
    while n < MAX_OPS && start.elapsed() < duration {
        let mut s = connect(addr)?;
        s.set_nodelay(true)?;
        s.write_all(b"c")?;
        s.read_exact(&mut b)?;
        close_with_reset(s);
        n += 1;
    }
    let elapsed = start.elapsed();
    Ok(Sample {
        workload: Workload::Connect,
        values: vec![n as f64 / elapsed.as_secs_f64()],
        volume: n as u64,
        elapsed,
    })
}

/// A 64 KiB pattern the source servers write from (so every system copies real bytes).
pub fn pattern() -> Vec<u8> {
    (0..CHUNK).map(|i| (i % 251) as u8).collect()
}

/// How often a server's blocked calls wake up to look at the stop flag.
pub const WAKE: Duration = Duration::from_millis(100);

/// What the shared serve loop ([`serve_port`]) accepts from: the kernel's listener
/// ([`KernelListener`]) or utcp's.
pub trait Listener {
    type Stream: Stream;
    /// The next connection, or a timeout error ([`is_timeout`]) after about [`WAKE`].
    fn accept_or_wake(&self) -> io::Result<Self::Stream>;
}

/// A connected stream with std's blocking-socket settings.
pub trait Stream: Read + Write {
    /// Read and write timeouts, so blocked calls return to look at the stop flag.
    fn set_timeouts(&self, t: Duration) -> io::Result<()>;
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()>;
}

/// A kernel listener whose `accept` returns after [`WAKE`] (SO_RCVTIMEO bounds `accept`
/// on Linux).
pub struct KernelListener(std::net::TcpListener);

impl KernelListener {
    pub fn bind(addr: SocketAddr) -> io::Result<KernelListener> {
        let l = std::net::TcpListener::bind(addr)?;
        rustix::net::sockopt::set_socket_timeout(&l, rustix::net::sockopt::Timeout::Recv, Some(WAKE))?;
        Ok(KernelListener(l))
    }
}

impl Listener for KernelListener {
    type Stream = TcpStream;
    fn accept_or_wake(&self) -> io::Result<TcpStream> {
        self.0.accept().map(|(s, _)| s)
    }
}

impl Listener for utcp::TcpListener {
    type Stream = utcp::TcpStream;
    fn accept_or_wake(&self) -> io::Result<utcp::TcpStream> {
        self.accept_timeout(WAKE).map(|(s, _)| s)
    }
}

/// std's stream and utcp's have the same inherent methods: forward to them.
macro_rules! impl_stream {
    ($($t:ty),*) => {$(
        impl Stream for $t {
            fn set_timeouts(&self, t: Duration) -> io::Result<()> {
                <$t>::set_read_timeout(self, Some(t))?;
                <$t>::set_write_timeout(self, Some(t))
            }
            fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
                <$t>::set_nodelay(self, nodelay)
            }
        }
    )*};
}
impl_stream!(TcpStream, utcp::TcpStream);

/// The server threads of a system and their stop flag. Dropping it sets the flag and joins
/// them, so a system declares it before the interface and namespaces the threads use.
pub struct Servers<T> {
    pub stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<T>>,
}

impl<T> Servers<T> {
    pub fn new() -> Servers<T> {
        Servers { stop: Arc::new(AtomicBool::new(false)), threads: Vec::new() }
    }

    pub fn push(&mut self, thread: JoinHandle<T>) {
        self.threads.push(thread);
    }
}

impl<T> Default for Servers<T> {
    fn default() -> Self {
        Servers::new()
    }
}

impl<T> Drop for Servers<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

/// A server thread of a system with a std-like stack (the kernel, utcp): accept and serve
/// connections one at a time (the client runs one at a time per workload) until `stop`.
pub fn serve_port<L: Listener>(port: Port, l: &L, stop: &AtomicBool) -> io::Result<()> {
    let stopped = || stop.load(Ordering::Relaxed);
    while !stopped() {
        let mut s = match l.accept_or_wake() {
            Ok(s) => s,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(e),
        };
        s.set_timeouts(WAKE)?;
        if port == Port::Echo || port == Port::Connect {
            s.set_nodelay(true)?;
        }
        // A reset by the client ends Source; other errors end only this connection.
        let _ = serve_stream(port, &mut s, &stopped);
    }
    Ok(())
}

/// The server side for stacks with a std-like blocking stream (the kernel and utcp): serve
/// one accepted connection according to its port. `stopped` is polled between blocking calls
/// (which must have timeouts) so teardown is bounded.
pub fn serve_stream<S: Read + Write>(port: Port, s: &mut S, stopped: &dyn Fn() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let alive = || !stopped() && Instant::now() < deadline;
    match port {
        Port::Sink => {
            let mut buf = vec![0u8; CHUNK];
            while alive() {
                match s.read(&mut buf) {
                    Ok(0) => {
                        s.write_all(b"k")?;
                        return Ok(());
                    }
                    Ok(_) => {}
                    Err(e) if is_timeout(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Port::Source => {
            let data = pattern();
            while alive() {
                match s.write(&data) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if is_timeout(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Port::Echo => {
            let mut buf = vec![0u8; 4096];
            while alive() {
                match s.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => s.write_all(&buf[..n])?,
                    Err(e) if is_timeout(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Port::Connect => {
            let mut b = [0u8; 1];
            while alive() {
                match s.read(&mut b) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {
                        s.write_all(b"k")?;
                        return Ok(());
                    }
                    Err(e) if is_timeout(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

/// A Read+Write test double: scripted input, recorded output (the bench's unit tests).
#[cfg(test)]
pub(crate) struct Pipe {
    pub(crate) input: io::Cursor<Vec<u8>>,
    pub(crate) out: Vec<u8>,
}

#[cfg(test)]
impl Read for Pipe {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        self.input.read(b)
    }
}

#[cfg(test)]
impl Write for Pipe {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[7], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn workload_names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()), Some(w));
        }
        assert_eq!(Workload::parse("nope"), None);
    }

    #[test]
    fn serve_stream_sink_answers_after_eof() {
        // 10 bytes of input then EOF; records what the server writes.
        let mut p = Pipe { input: io::Cursor::new(vec![1; 10]), out: vec![] };
        serve_stream(Port::Sink, &mut p, &|| false).unwrap();
        assert_eq!(p.out, b"k");
        let mut p = Pipe { input: io::Cursor::new(b"abc".to_vec()), out: vec![] };
        serve_stream(Port::Echo, &mut p, &|| false).unwrap();
        assert_eq!(p.out, b"abc");
        let mut p = Pipe { input: io::Cursor::new(b"x".to_vec()), out: vec![] };
        serve_stream(Port::Connect, &mut p, &|| false).unwrap();
        assert_eq!(p.out, b"k");
    }
}
