//! `utcp bench --twmem N`: memory per server-closed connection (issue 9, bounded memory).
//!
//! utcp serves an HTTP-like exchange on a TUN in a private namespace the bench creates: the
//! kernel client (threads inside the namespace, six source addresses and a wide port
//! range, so that the quads of up to ~150k connections are distinct) connects, sends a short request, reads the response until EOF and closes.
//! utcp closes first, so every connection ends in TIME-WAIT on utcp's side. The bench
//! reports the process's RSS growth per connection at the end (all of them in TIME-WAIT)
//! and after TIME-WAIT expired (2 MSL later). Everything is bounded: at most `N`
//! connections, a load phase of at most `LOAD_LIMIT`, and a wait of 2 MSL + 10 s.

use super::alloc::rss_bytes;
use crate::netns::NetNs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use utcp::{Interface, InterfaceConfig, TcpListener};

const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 9, 1);
const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 9, 2);
const TUN_NAME: &str = "tun-twmem";
const PORT: u16 = 8080;
/// Client threads, each with its own source address (10.88.9.11 ...).
const CLIENTS: u8 = 6;
/// Upper bound of the load phase.
const LOAD_LIMIT: Duration = Duration::from_secs(120);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello world\n";

/// What one run measured.
#[derive(Clone, Debug)]
pub struct TwmemReport {
    pub requested: usize,
    pub completed: usize,
    pub failed: usize,
    pub load_secs: f64,
    pub rss_base: u64,
    pub rss_end: u64,
    pub rss_expired: u64,
    /// After `malloc_trim(0)`: what the allocator kept of the freed memory is the difference.
    pub rss_trimmed: u64,
    pub time_wait_end: usize,
    pub buffer_memory_end: usize,
    pub tw_parked: u64,
    pub tw_overflow: u64,
}

impl TwmemReport {
    pub fn text(&self) -> String {
        let per = |rss: u64| (rss.saturating_sub(self.rss_base)) as f64 / self.completed.max(1) as f64;
        format!(
            "twmem: {} of {} server-closed connections in {:.1} s ({} failed)\n\
             RSS base {:.1} MiB, at end {:.1} MiB (+{:.1} MiB, {:.0} B/conn), \
             after TIME-WAIT expiry {:.1} MiB (+{:.1} MiB, {:.0} B/conn), \
             after malloc_trim {:.1} MiB\n\
             at end: {} TIME-WAIT records, {} B of ring storage; parked {}, overflow {}\n",
            self.completed,
            self.requested,
            self.load_secs,
            self.failed,
            mib(self.rss_base),
            mib(self.rss_end),
            mib(self.rss_end.saturating_sub(self.rss_base)),
            per(self.rss_end),
            mib(self.rss_expired),
            mib(self.rss_expired.saturating_sub(self.rss_base)),
            per(self.rss_expired),
            mib(self.rss_trimmed),
            self.time_wait_end,
            self.buffer_memory_end,
            self.tw_parked,
            self.tw_overflow,
        )
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// Run `n` server-closed connections against utcp and measure RSS.
pub fn run(n: usize, progress: bool) -> io::Result<TwmemReport> {
    if !crate::netns::is_root() || !std::path::Path::new("/dev/net/tun").exists() {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "--twmem needs root and /dev/net/tun"));
    }
    let ns = NetNs::create(&NetNs::unique_name("utcpb-tw"))?;
    let mut config = InterfaceConfig::new(TUN_NAME, STACK_IP, KERNEL_IP, 24);
    config.mtu = 1500;
    config.netns = Some(ns.name().to_string());
    let iface = Interface::new(config)?;
    // Distinct quads for up to ~150k connections: a wide port range (namespaced sysctl) and
    // sequential port choice at connect (IP_BIND_ADDRESS_NO_PORT) on six source addresses.
    ns.exec("sysctl", &["-q", "-w", "net.ipv4.ip_local_port_range=10000 65000"])?;
    for i in 0..CLIENTS {
        ns.exec("ip", &["addr", "add", &format!("{}/24", client_ip(i)), "dev", TUN_NAME])?;
    }
    let msl = iface.with_stack(|s| s.config().msl);
    let listener = Arc::new(TcpListener::bind(&iface, SocketAddr::from((STACK_IP, PORT)))?);
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (l, stop) = (listener.clone(), stop.clone());
        std::thread::spawn(move || serve(&l, &stop))
    };
    let rss_base = rss_bytes().unwrap_or(0);
    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let share = n / CLIENTS as usize + usize::from((i as usize) < n % CLIENTS as usize);
        let (done, failed) = (done.clone(), failed.clone());
        clients.push(ns.spawn(move || client(client_ip(i), share, started, &done, &failed))?);
    }
    let mut last = Instant::now();
    while clients.iter().any(|c| !c.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if progress && last.elapsed() > Duration::from_secs(5) {
            last = Instant::now();
            eprintln!("twmem: {} connections", done.load(Ordering::Relaxed));
        }
    }
    for c in clients {
        let _ = c.join();
    }
    let load_secs = started.elapsed().as_secs_f64();
    // Let the last FINs and ACKs settle.
    std::thread::sleep(Duration::from_millis(500));
    let rss_end = rss_bytes().unwrap_or(0);
    let (time_wait_end, buffer_memory_end) = iface.with_stack(|s| (s.time_wait_count(), s.buffer_memory()));
    if progress {
        eprintln!("twmem: waiting 2 MSL for TIME-WAIT to expire");
    }
    let wait_until =
        Instant::now() + Duration::from_micros(msl.as_micros() as u64 * 2) + Duration::from_secs(10);
    while Instant::now() < wait_until && iface.with_stack(|s| s.time_wait_count()) > 0 {
        std::thread::sleep(Duration::from_millis(250));
    }
    let rss_expired = rss_bytes().unwrap_or(0);
    // SAFETY: malloc_trim only returns free memory to the OS.
    unsafe { libc::malloc_trim(0) };
    let rss_trimmed = rss_bytes().unwrap_or(0);
    let c = iface.counters();
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    drop(listener);
    drop(iface);
    drop(ns);
    Ok(TwmemReport {
        requested: n,
        completed: done.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        load_secs,
        rss_base,
        rss_end,
        rss_expired,
        rss_trimmed,
        time_wait_end,
        buffer_memory_end,
        tw_parked: c.tw_parked,
        tw_overflow: c.tw_overflow,
    })
}

fn client_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 88, 9, 11 + i)
}

/// The server: read the request, answer, close first (the connection enters TIME-WAIT).
fn serve(l: &TcpListener, stop: &AtomicBool) {
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut s, _)) = l.accept_timeout(Duration::from_millis(100)) else { continue };
        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
        let _ = s.set_write_timeout(Some(IO_TIMEOUT));
        let mut got = 0;
        while got < REQUEST.len() {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        let _ = s.write_all(RESPONSE);
        drop(s);
    }
}

/// One client thread: `n` connections from `src`, one at a time, within `LOAD_LIMIT`.
fn client(src: Ipv4Addr, n: usize, started: Instant, done: &AtomicUsize, failed: &AtomicUsize) {
    let dst = SocketAddrV4::new(STACK_IP, PORT);
    let mut buf = [0u8; 512];
    for _ in 0..n {
        if started.elapsed() > LOAD_LIMIT {
            return;
        }
        let ok = (|| -> io::Result<()> {
            let mut s = connect_from(src, dst)?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            s.write_all(REQUEST)?;
            let mut got = 0;
            loop {
                match s.read(&mut buf)? {
                    0 => break,
                    k => got += k,
                }
            }
            if got == RESPONSE.len() { Ok(()) } else { Err(io::Error::other("short response")) }
        })();
        match ok {
            Ok(()) => done.fetch_add(1, Ordering::Relaxed),
            Err(_) => failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// A kernel TCP connection from `src` (bound before connecting).
fn connect_from(src: Ipv4Addr, dst: SocketAddrV4) -> io::Result<TcpStream> {
    let sin = |a: SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor we own; the sockaddr outlives each call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let s = TcpStream::from_raw_fd(fd);
        let one: libc::c_int = 1;
        let optlen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let opt = &one as *const libc::c_int as *const libc::c_void;
        libc::setsockopt(fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, opt, optlen);
        let local = sin(SocketAddrV4::new(src, 0));
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let remote = sin(dst);
        if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(s)
    }
}
