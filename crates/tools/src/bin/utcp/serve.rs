//! `utcp serve --port P (--echo | --discard | --http DIR)`: servers on the stack, until
//! SIGINT/SIGTERM. Also the namespace/interface flags and the signal handling that
//! `connect` shares.

use crate::args::Args;
use std::collections::HashMap;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use utcp_tools::netns::NetNs;
use utcp::{Interface, InterfaceConfig, TcpListener, TcpStream};
use utcp_tools::apps;

const USAGE: &str = "\
usage: utcp serve --port P (--echo | --discard | --http DIR) [options]

Serves on the stack's address behind a TUN until SIGINT/SIGTERM.
  --port P           port (default 7 for --echo, 9 for --discard, 80 for --http)
  --echo             echo what each client sends (RFC 862)
  --discard          read and drop what each client sends (RFC 863)
  --http DIR         serve the files under DIR (GET and HEAD)
  --netns NAME       network namespace for the TUN (default utcp; created if missing,
                     removed on exit only if created)
  --tun NAME         TUN interface name (default utcp0)
  --addr IP          the stack's own address (default 10.77.0.2)
  --peer IP/PREFIX   the kernel side's address on the TUN (default 10.77.0.1/24)
  --pcap FILE        write every packet crossing the TUN to FILE (pcap, raw IP)
  --plot FILE        time-sequence graph of the busiest connection, on close (SVG)
";

/// The flags every TUN-backed command takes.
pub struct NetOpts {
    pub netns: String,
    pub tun: String,
    pub addr: Ipv4Addr,
    pub peer: Ipv4Addr,
    pub prefix: u8,
    pub pcap: Option<PathBuf>,
    /// `--plot FILE`: a time-sequence graph of the busiest connection, written on close
    /// (from a capture beside it, FILE.pcap, unless --pcap names one).
    pub plot: Option<PathBuf>,
}

/// Flags that take a value, for `Args::parse`.
pub const NET_FLAGS: [&str; 6] = ["netns", "tun", "addr", "peer", "pcap", "plot"];

impl NetOpts {
    pub fn from_args(a: &Args) -> Result<NetOpts, String> {
        let addr = a.parse_or("addr", Ipv4Addr::new(10, 77, 0, 2))?;
        let (peer, prefix) = match a.get("peer") {
            None => (Ipv4Addr::new(10, 77, 0, 1), 24),
            Some(p) => parse_cidr(p)?,
        };
        if addr == peer {
            return Err(format!("--addr {addr} must differ from the kernel side --peer"));
        }
        Ok(NetOpts {
            netns: a.get("netns").unwrap_or("utcp").to_string(),
            tun: a.get("tun").unwrap_or("utcp0").to_string(),
            addr,
            peer,
            prefix,
            pcap: a.get("pcap").map(PathBuf::from).or_else(|| a.get("plot").map(|p| PathBuf::from(p).with_extension("pcap"))),
            plot: a.get("plot").map(PathBuf::from),
        })
    }

    /// After the interface is dropped (its capture flushed): draw `--plot`.
    pub fn finish_plot(&self) {
        let (Some(out), Some(capture)) = (&self.plot, &self.pcap) else { return };
        let opts = utcp_tools::plot::PlotOptions {
            capture: capture.clone(),
            conn: None,
            from: 0.0,
            to: f64::INFINITY,
            out: out.clone(),
        };
        match utcp_tools::plot::run(&opts) {
            Ok(s) => println!("plot of {} written to {}", s.flow, out.display()),
            Err(e) => eprintln!("utcp: --plot: {e}"),
        }
    }

    /// Open (or create) the namespace and start the interface in it.
    pub fn open(&self, engine: utcp::engine::Config) -> Result<(NetNs, Interface), String> {
        if !utcp_tools::netns::is_root() {
            return Err("needs root (CAP_NET_ADMIN) to create a TUN and a namespace".into());
        }
        let ns = NetNs::open_or_create(&self.netns)
            .map_err(|e| format!("network namespace {}: {e}", self.netns))?;
        let mut cfg = InterfaceConfig::new(&self.tun, self.addr, self.peer, self.prefix);
        cfg.engine = engine;
        cfg.netns = Some(self.netns.clone());
        cfg.pcap = self.pcap.clone();
        let iface = Interface::new(cfg).map_err(|e| format!("interface {}: {e}", self.tun))?;
        Ok((ns, iface))
    }
}

/// `10.77.0.1/24` (a bare address means /24).
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, prefix) = s.split_once('/').unwrap_or((s, "24"));
    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("bad IPv4 address {ip:?}"))?;
    let prefix: u8 = prefix.parse().map_err(|_| format!("bad prefix length {prefix:?}"))?;
    if prefix > 30 {
        return Err(format!("prefix /{prefix} leaves no room for the stack's address"));
    }
    Ok((ip, prefix))
}

static STOP: AtomicBool = AtomicBool::new(false);
static STOP_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_stop_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    let fd = STOP_PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the pipe end stays open for the process.
        unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
    }
}

/// True once SIGINT or SIGTERM arrived (after [`StopSignal::install`]).
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// SIGINT/SIGTERM handling: an atomic flag plus a self-pipe a thread can block on.
pub struct StopSignal {
    read_fd: libc::c_int,
}

impl StopSignal {
    pub fn install() -> io::Result<StopSignal> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two fds into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        STOP_PIPE.store(fds[1], Ordering::SeqCst);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction with a valid handler and an empty mask.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_stop_signal as *const () as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(StopSignal { read_fd: fds[0] })
    }

    pub fn is_set(&self) -> bool {
        STOP.load(Ordering::SeqCst)
    }

    /// Block until a stop signal arrives.
    pub fn wait(&self) {
        let mut b = [0u8; 1];
        while !self.is_set() {
            // SAFETY: reading one byte into a valid buffer from our own pipe.
            let n = unsafe { libc::read(self.read_fd, b.as_mut_ptr().cast(), 1) };
            if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Echo,
    Discard,
    Http,
}

pub fn run(argv: &[String]) -> i32 {
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return 0;
    }
    match serve(argv) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("utcp serve: {e}");
            1
        }
    }
}

fn serve(argv: &[String]) -> Result<(), String> {
    let mut flags = vec!["port", "http"];
    flags.extend(NET_FLAGS);
    let a = Args::parse(argv, &flags)?;
    a.check_switches(&["echo", "discard"])?;
    if let Some(p) = a.positional.first() {
        return Err(format!("unexpected argument {p:?}\n{USAGE}"));
    }
    let modes: Vec<Mode> = [
        (a.has("echo"), Mode::Echo),
        (a.has("discard"), Mode::Discard),
        (a.get("http").is_some(), Mode::Http),
    ]
    .into_iter()
    .filter_map(|(on, m)| on.then_some(m))
    .collect();
    let [mode] = modes[..] else {
        return Err(format!("give exactly one of --echo, --discard, --http DIR\n{USAGE}"));
    };
    let root = match a.get("http") {
        Some(d) => {
            let p = PathBuf::from(d);
            if !p.is_dir() {
                return Err(format!("--http {d}: not a directory"));
            }
            Some(p)
        }
        None => None,
    };
    let default_port = match mode {
        Mode::Echo => 7,
        Mode::Discard => 9,
        Mode::Http => 80,
    };
    let port: u16 = a.parse_or("port", default_port)?;
    let net = NetOpts::from_args(&a)?;
    let stop = StopSignal::install().map_err(|e| format!("signal handlers: {e}"))?;
    let (ns, iface) = net.open(utcp::engine::Config::default())?;
    let listener = TcpListener::bind(&iface, (net.addr, port))
        .map_err(|e| format!("listen on {}:{port}: {e}", net.addr))?;
    println!(
        "utcp serve: {mode:?} on {}:{port} via {} (kernel side {}/{}) in netns {}; ready",
        net.addr,
        net.tun,
        net.peer,
        net.prefix,
        ns.name()
    );
    let _ = io::Write::flush(&mut io::stdout());

    let conns: Arc<Mutex<HashMap<u64, Arc<TcpStream>>>> = Arc::default();
    let bytes = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    let mut served = 0u64;
    while !stop.is_set() {
        match listener.accept_timeout(Duration::from_millis(250)) {
            Ok((s, _peer)) => {
                served += 1;
                let s = Arc::new(s);
                conns.lock().unwrap_or_else(|e| e.into_inner()).insert(served, s.clone());
                let (conns, bytes, root, id) = (conns.clone(), bytes.clone(), root.clone(), served);
                threads.push(std::thread::spawn(move || {
                    let n = match (mode, &root) {
                        (Mode::Echo, _) => apps::echo(&*s).unwrap_or(0),
                        (Mode::Discard, _) => apps::discard(&*s).unwrap_or(0),
                        (Mode::Http, Some(r)) => apps::http(&*s, r).map(|x| x.1).unwrap_or(0),
                        (Mode::Http, None) => 0,
                    };
                    bytes.fetch_add(n, Ordering::Relaxed);
                    // Last reference goes away here: the drop sends our FIN.
                    conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => return Err(format!("accept: {e}")),
        }
        threads.retain(|t| !t.is_finished());
    }
    eprintln!("utcp serve: stopping");
    drop(listener);
    // Graceful close: EOF the readers so handlers return and drop (FIN); after a grace
    // period, also shut the write side so a handler stuck sending gives up.
    for how in [std::net::Shutdown::Read, std::net::Shutdown::Both] {
        let open: Vec<Arc<TcpStream>> =
            conns.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for s in open {
            let _ = s.shutdown(how);
        }
        let t0 = Instant::now();
        while threads.iter().any(|t| !t.is_finished()) && t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    for t in threads {
        if t.is_finished() {
            let _ = t.join();
        }
    }
    iface.wait_quiet(Duration::from_millis(300), Duration::from_secs(3));
    let c = iface.counters();
    eprintln!(
        "utcp serve: {served} connections, {} bytes, {} retransmitted segments",
        bytes.load(Ordering::Relaxed),
        c.retrans_segs
    );
    drop(iface);
    net.finish_plot();
    drop(ns);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Args {
        let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        Args::parse(&v, &NET_FLAGS).unwrap()
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(parse_cidr("10.1.2.3/16"), Ok((Ipv4Addr::new(10, 1, 2, 3), 16)));
        assert_eq!(parse_cidr("10.1.2.3"), Ok((Ipv4Addr::new(10, 1, 2, 3), 24)));
        assert!(parse_cidr("10.1.2/24").is_err());
        assert!(parse_cidr("10.1.2.3/31").is_err());
        assert!(parse_cidr("10.1.2.3/x").is_err());
    }

    #[test]
    fn net_options_defaults_and_overrides() {
        let n = NetOpts::from_args(&args(&[])).unwrap();
        assert_eq!((n.netns.as_str(), n.tun.as_str()), ("utcp", "utcp0"));
        assert_eq!(
            (n.addr, n.peer, n.prefix),
            (Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(10, 77, 0, 1), 24)
        );
        assert!(n.pcap.is_none());
        let n = NetOpts::from_args(&args(&[
            "--netns",
            "x",
            "--tun",
            "t1",
            "--addr",
            "192.168.5.9",
            "--peer",
            "192.168.5.1/28",
            "--pcap",
            "a.pcap",
        ]))
        .unwrap();
        assert_eq!((n.netns.as_str(), n.tun.as_str()), ("x", "t1"));
        assert_eq!(
            (n.addr, n.peer, n.prefix),
            (Ipv4Addr::new(192, 168, 5, 9), Ipv4Addr::new(192, 168, 5, 1), 28)
        );
        assert_eq!(n.pcap, Some(PathBuf::from("a.pcap")));
        assert!(NetOpts::from_args(&args(&["--addr", "10.77.0.1"])).is_err(), "same as peer");
    }
}
