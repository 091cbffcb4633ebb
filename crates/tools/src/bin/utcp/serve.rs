//! `utcp serve --port P (--echo | --discard | --http DIR)`: servers on the stack, until
//! SIGINT/SIGTERM. Also the namespace/interface flags that `connect` shares.

use crate::signals::Stop;
use clap::Args;
use std::collections::HashMap;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use utcp::{Interface, InterfaceConfig, TcpListener, TcpStream};
use utcp_tools::apps;
use utcp_tools::netns::NetNs;

/// How long `accept` waits before the loop looks at the stop flag again.
const ACCEPT_WAKE: Duration = Duration::from_millis(50);

/// Serve echo, discard or HTTP on the stack until SIGINT/SIGTERM (root)
///
/// Serves on the stack's address behind a TUN. The first SIGINT/SIGTERM closes the
/// connections gracefully; a second one exits at once.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Port [default: 7 for --echo, 9 for --discard, 80 for --http]
    #[arg(long, value_name = "P")]
    port: Option<u16>,
    #[command(flatten)]
    mode: ModeArgs,
    #[command(flatten)]
    net: NetArgs,
}

/// Exactly one server.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct ModeArgs {
    /// Echo what each client sends (RFC 862)
    #[arg(long)]
    echo: bool,
    /// Read and drop what each client sends (RFC 863)
    #[arg(long)]
    discard: bool,
    /// Serve the files under DIR (GET and HEAD)
    #[arg(long, value_name = "DIR")]
    http: Option<PathBuf>,
}

/// The flags every TUN-backed command takes.
#[derive(Args, Debug, Clone)]
pub struct NetArgs {
    /// Network namespace for the TUN (created if missing, removed on exit only if created)
    #[arg(long, value_name = "NAME", default_value = "utcp")]
    pub netns: String,
    /// TUN interface name
    #[arg(long, value_name = "NAME", default_value = "utcp0")]
    pub tun: String,
    /// The stack's own address
    #[arg(long, value_name = "IP", default_value = "10.77.0.2")]
    pub addr: Ipv4Addr,
    /// The kernel side's address on the TUN
    #[arg(long, value_name = "IP/PREFIX", default_value = "10.77.0.1/24", value_parser = crate::parsers::cidr)]
    pub peer: (Ipv4Addr, u8),
    /// The stack's own IPv6 address (with --peer6; `serve` then listens on [::], both families)
    #[arg(long, value_name = "IP6", requires = "peer6")]
    pub addr6: Option<std::net::Ipv6Addr>,
    /// The kernel side's IPv6 address on the TUN and the prefix routed into it
    #[arg(long, value_name = "IP6/PREFIX", requires = "addr6", value_parser = crate::parsers::cidr6)]
    pub peer6: Option<(std::net::Ipv6Addr, u8)>,
    /// Write every packet crossing the TUN to FILE (pcap, raw IP)
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Write a time-sequence graph (SVG) of the busiest connection to FILE on close (from a
    /// capture beside it, FILE.pcap, unless --pcap names one)
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Length of the kernel's queue of packets for utcp to read (the TUN's txqueuelen;
    /// the kernel's default is 500). Longer rides out a SYN flood with fewer lost SYNs, at
    /// the price of queueing delay (docs/performance.md, "SYN flood")
    #[arg(long, value_name = "N")]
    pub txqueuelen: Option<u32>,
    /// Open the TUN without offload (no virtio-net header, checksum offload or TSO/GRO;
    /// one packet per MSS), to compare
    #[arg(long)]
    pub no_offload: bool,
}

impl NetArgs {
    /// The checks clap cannot express; a usage error names the subcommand.
    pub fn validate(&self, subcommand: &str) {
        if let (Some(a6), Some((p6, _))) = (self.addr6, self.peer6)
            && a6 == p6
        {
            crate::usage_error(subcommand, format!("--addr6 {a6} must differ from the kernel side --peer6"));
        }
        if self.addr == self.peer.0 {
            crate::usage_error(
                subcommand,
                format!("--addr {} must differ from the kernel side --peer", self.addr),
            );
        }
    }

    /// Where the TUN's packets are captured: --pcap, or beside the --plot file.
    fn capture(&self) -> Option<PathBuf> {
        self.pcap.clone().or_else(|| self.plot.as_ref().map(|p| p.with_extension("pcap")))
    }

    /// After the interface is dropped (its capture flushed): draw `--plot`.
    pub fn finish_plot(&self) {
        let (Some(out), Some(capture)) = (&self.plot, self.capture()) else { return };
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
        let mut cfg = InterfaceConfig::new(&self.tun, self.addr, self.peer.0, self.peer.1);
        cfg.engine = engine;
        cfg.netns = Some(self.netns.clone());
        cfg.tx_queue_len = self.txqueuelen;
        // IPv6 (issue 13).
        cfg.addr6 = self.addr6;
        cfg.peer6 = self.peer6;
        cfg.pcap = self.capture();
        cfg.offload = !self.no_offload;
        let iface = Interface::new(cfg).map_err(|e| format!("interface {}: {e}", self.tun))?;
        Ok((ns, iface))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Echo,
    Discard,
    Http,
}

impl ModeArgs {
    fn mode(&self) -> Mode {
        match (self.echo, self.discard) {
            (true, _) => Mode::Echo,
            (_, true) => Mode::Discard,
            _ => Mode::Http,
        }
    }
}

/// The connections being served, so that a stop can shut them.
type Conns = Arc<Mutex<HashMap<u64, Arc<TcpStream>>>>;

pub fn run(args: ServeArgs) -> i32 {
    args.net.validate("serve");
    if let Some(d) = &args.mode.http
        && !d.is_dir()
    {
        crate::usage_error("serve", format!("--http {}: not a directory", d.display()));
    }
    match serve(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("utcp serve: {e}");
            1
        }
    }
}

fn serve(args: &ServeArgs) -> Result<(), String> {
    let (mode, net) = (args.mode.mode(), &args.net);
    let port = args.port.unwrap_or(match mode {
        Mode::Echo => 7,
        Mode::Discard => 9,
        Mode::Http => 80,
    });
    let stop =
        Stop::install(|| eprintln!("utcp serve: stopping")).map_err(|e| format!("signal handlers: {e}"))?;
    let (ns, iface) = net.open(utcp::engine::Config::default())?;
    // With an IPv6 address: the wildcard [::] takes both families (Config::v6only false).
    let bind_ip: std::net::IpAddr = match net.addr6 {
        Some(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        None => net.addr.into(),
    };
    let listener = TcpListener::bind(&iface, (bind_ip, port))
        .map_err(|e| format!("listen on {}: {e}", std::net::SocketAddr::new(bind_ip, port)))?;
    let six = net.addr6.map(|a| format!(" and [{a}]:{port}")).unwrap_or_default();
    println!(
        "utcp serve: {mode:?} on {}:{port}{six} via {} (kernel side {}/{}) in netns {}; ready",
        net.addr,
        net.tun,
        net.peer.0,
        net.peer.1,
        ns.name()
    );
    let _ = io::Write::flush(&mut io::stdout());

    let conns = Conns::default();
    let bytes = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    let mut served = 0u64;
    while !stop.requested() {
        match listener.accept_timeout(ACCEPT_WAKE) {
            Ok((s, _peer)) => {
                served += 1;
                let s = Arc::new(s);
                conns.lock().unwrap_or_else(|e| e.into_inner()).insert(served, s.clone());
                let (conns, bytes, root, id) = (conns.clone(), bytes.clone(), args.mode.http.clone(), served);
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
    drop(listener);
    close_all(&conns, threads);
    iface.wait_quiet(Duration::from_millis(300), Duration::from_secs(3));
    let c = iface.counters();
    eprintln!(
        "utcp serve: {served} connections, {} bytes, {} retransmitted segments",
        bytes.load(Ordering::Relaxed),
        c.retrans_segs
    );
    drop(iface);
    args.net.finish_plot();
    drop(ns);
    Ok(())
}

/// Graceful close: EOF the readers so handlers return and drop (FIN); after a grace
/// period, also shut the write side so a handler stuck sending gives up.
fn close_all(conns: &Conns, threads: Vec<std::thread::JoinHandle<()>>) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Net {
        #[command(flatten)]
        net: NetArgs,
    }

    fn net(v: &[&str]) -> Result<NetArgs, clap::Error> {
        Net::try_parse_from(std::iter::once("t").chain(v.iter().copied())).map(|n| n.net)
    }

    #[test]
    fn net_options_defaults_and_overrides() {
        let n = net(&[]).unwrap();
        assert_eq!((n.netns.as_str(), n.tun.as_str()), ("utcp", "utcp0"));
        assert_eq!((n.addr, n.peer), (Ipv4Addr::new(10, 77, 0, 2), (Ipv4Addr::new(10, 77, 0, 1), 24)));
        assert!(n.pcap.is_none());
        let n = net(&[
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
        ])
        .unwrap();
        assert_eq!((n.netns.as_str(), n.tun.as_str()), ("x", "t1"));
        assert_eq!((n.addr, n.peer), (Ipv4Addr::new(192, 168, 5, 9), (Ipv4Addr::new(192, 168, 5, 1), 28)));
        assert_eq!(n.pcap, Some(PathBuf::from("a.pcap")));
        assert!(net(&["--peer", "10.1.2.3/31"]).is_err());
        assert!(net(&["--tun", "a", "--tun", "b"]).is_err(), "a repeated flag is an error");
    }

    #[test]
    fn exactly_one_mode() {
        let parse = |v: &[&str]| crate::Cli::try_parse_from(["utcp", "serve"].iter().chain(v));
        assert!(parse(&[]).is_err());
        assert!(parse(&["--echo", "--discard"]).is_err());
        assert!(parse(&["--echo", "--http", "/"]).is_err());
        assert!(parse(&["--discard", "--port", "99"]).is_ok());
    }
}
