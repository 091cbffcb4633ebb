//! `utcp forward`: the command line of [`utcp_tools::forward`], a tun2socks-style gateway.

use clap::Args;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use utcp_tools::forward::{ForwardOptions, Upstream, run};

/// Terminate every TCP connection routed into a TUN and relay it to its original
/// destination with a kernel socket (tun2socks style; root)
///
/// Creates the TUN in --netns, routes each --route prefix into it, accepts any destination
/// in those prefixes (the handshake waits for the upstream connect, so a refused upstream
/// is a refused client), and connects upstream from --out-netns or bound to --bind-device,
/// optionally through a SOCKS5 proxy. One line per connection; totals on SIGINT/SIGTERM.
#[derive(Args, Debug)]
pub struct ForwardArgs {
    /// Network namespace of the TUN and the clients (created if missing)
    #[arg(long, value_name = "NS")]
    netns: String,
    /// TUN interface name
    #[arg(long, value_name = "NAME", default_value = "fw0")]
    tun: String,
    /// Destination prefixes to route into the TUN and terminate, IPv4 or IPv6
    /// (e.g. 10.99.0.0/24,fd00:99::/64; an IPv6 one gives the TUN --addr6/--peer6)
    #[arg(long, value_name = "PREFIX[,PREFIX..]", required = true, value_delimiter = ',',
          value_parser = crate::parsers::route)]
    route: Vec<(IpAddr, u8)>,
    /// Open upstream connections from this namespace (so they do not loop into the TUN)
    #[arg(long, value_name = "NS2", required_unless_present = "bind_device", conflicts_with = "bind_device")]
    out_netns: Option<String>,
    /// Open upstream connections bound to this device (SO_BINDTODEVICE)
    #[arg(long, value_name = "IF")]
    bind_device: Option<String>,
    /// Connect upstream through this SOCKS5 proxy (RFC 1928, CONNECT, no authentication)
    #[arg(long, value_name = "HOST:PORT")]
    socks5: Option<SocketAddr>,
    /// Upstream connect limit in seconds; past it the client's connection is refused
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    connect_timeout: u64,
    /// The stack's address on the TUN
    #[arg(long, value_name = "IP", default_value = "10.255.255.2")]
    addr: Ipv4Addr,
    /// The kernel side's address on the TUN
    #[arg(long, value_name = "IP/PREFIX", default_value = "10.255.255.1/30", value_parser = crate::parsers::cidr)]
    peer: (Ipv4Addr, u8),
    /// The stack's IPv6 address on the TUN (when a --route is IPv6)
    #[arg(long, value_name = "IP6", default_value = "fd00:ff:ff::2")]
    addr6: Ipv6Addr,
    /// The kernel side's IPv6 address on the TUN (when a --route is IPv6)
    #[arg(long, value_name = "IP6/PREFIX", default_value = "fd00:ff:ff::1/126", value_parser = crate::parsers::cidr6)]
    peer6: (Ipv6Addr, u8),
    /// Write every packet crossing the TUN to FILE (pcap, raw IP)
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// No line per connection (totals only)
    #[arg(long, short)]
    quiet: bool,
    /// Read the TUN on the interface's driver thread instead of the gateway's tokio
    /// runtime (utcp::tokio::drive, the default: no thread hop per packet)
    #[arg(long)]
    no_drive: bool,
}

pub fn run_cli(a: ForwardArgs) -> i32 {
    if !utcp_tools::netns::is_root() {
        eprintln!("utcp forward: needs root (CAP_NET_ADMIN) to create a TUN and routes");
        return 77;
    }
    let upstream = match (&a.out_netns, &a.bind_device) {
        (Some(ns), _) => Upstream::Netns(ns.clone()),
        (None, Some(dev)) => Upstream::BindDevice(dev.clone()),
        (None, None) => crate::usage_error("forward", "--out-netns or --bind-device is required"),
    };
    // The TUN's namespace: an existing one is used, a missing one is created and removed.
    let ns = match utcp_tools::netns::NetNs::open_or_create(&a.netns) {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("utcp forward: network namespace {}: {e}", a.netns);
            return 1;
        }
    };
    let mut o = ForwardOptions::new(&a.netns, &a.tun, a.route.clone(), upstream);
    o.addr = a.addr;
    o.peer = a.peer;
    o.addr6 = a.addr6;
    o.peer6 = a.peer6;
    o.socks5 = a.socks5;
    o.connect_timeout = Duration::from_secs(a.connect_timeout.max(1));
    o.pcap = a.pcap.clone();
    o.verbose = !a.quiet;
    o.drive = !a.no_drive;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _signals = match crate::signals::Stop::install(move || flag.store(true, Ordering::SeqCst)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("utcp forward: signal handlers: {e}");
            return 1;
        }
    };
    eprintln!(
        "utcp forward: terminating {} in namespace {} via {}; Ctrl-C prints totals",
        a.route.iter().map(|(net, len)| format!("{net}/{len}")).collect::<Vec<_>>().join(", "),
        a.netns,
        a.tun
    );
    let code = match run(o, stop) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("utcp forward: {e}");
            1
        }
    };
    drop(ns);
    code
}
