//! `utcp forward`: a tun2socks-style gateway. Every TCP connection routed into the TUN
//! is terminated by utcp (any-IP, with the handshake gated), and the gateway connects to
//! the original destination with a kernel socket, from another namespace or bound to a
//! device (so the upstream traffic does not loop back into the TUN), optionally through
//! a SOCKS5 proxy (RFC 1928, CONNECT, no authentication). Then it copies both ways with
//! back-pressure and half-close.
//!
//! - Upstream refused: the client's SYN is answered with a RST ("connection refused").
//! - Upstream silent past `connect_timeout`: the client's SYN is refused the same way.
//! - A RST from either side aborts the other (SO_LINGER 0 on the kernel socket).
//! - Non-TCP packets are dropped and counted by the engine.
//!
//! - IPv6 (issue 13): routes may be IPv6 prefixes; the TUN then also gets an IPv6
//!   address (`addr6`/`peer6`), the stack terminates any IPv6 destination in them, and
//!   the upstream socket is of the destination's family.
//!
//! A line per connection on stdout, totals when `stop` is set (SIGINT in the CLI).

use socket2::{Domain, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use utcp::engine::AnyIpFilter;
use utcp::tokio::{HeldSyn, TcpListener, TcpStream};
use utcp::{Interface, InterfaceConfig};

/// Where upstream connections leave from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// Sockets created inside this network namespace (as named by `ip netns`).
    Netns(String),
    /// Sockets in the current namespace, bound to this device (SO_BINDTODEVICE).
    BindDevice(String),
}

/// What `utcp forward` does.
#[derive(Clone, Debug)]
pub struct ForwardOptions {
    /// Namespace of the TUN (and of the clients).
    pub netns: String,
    /// TUN name.
    pub tun: String,
    /// Destinations routed into the TUN and terminated (IPv4 or IPv6 prefixes).
    pub routes: Vec<(IpAddr, u8)>,
    /// The stack's address and the kernel side's address/prefix on the TUN.
    pub addr: Ipv4Addr,
    /// The kernel side of the TUN.
    pub peer: (Ipv4Addr, u8),
    // --- IPv6 (issue 13): used only when `routes` holds an IPv6 prefix.
    /// The stack's IPv6 address on the TUN.
    pub addr6: Ipv6Addr,
    /// The kernel side's IPv6 address and prefix on the TUN.
    pub peer6: (Ipv6Addr, u8),
    /// Where upstream connections leave from.
    pub upstream: Upstream,
    /// SOCKS5 proxy for upstream connections.
    pub socks5: Option<SocketAddr>,
    /// Upstream connect limit; past it the client is refused.
    pub connect_timeout: Duration,
    /// Capture what crosses the TUN.
    pub pcap: Option<PathBuf>,
    /// Print a line per connection.
    pub verbose: bool,
    /// Read the TUN on the gateway's tokio runtime (`utcp::tokio::drive`): no hop through
    /// the interface's driver thread per packet (default). Off: the driver thread reads it.
    pub drive: bool,
}

impl ForwardOptions {
    /// Defaults: stack 10.255.255.2, kernel side 10.255.255.1/30 (IPv6: stack
    /// fd00:ff:ff::2, kernel side fd00:ff:ff::1/126, private ULAs of RFC 4193), 5 s
    /// connect timeout, the TUN read on the gateway's runtime (`drive`).
    pub fn new(netns: &str, tun: &str, routes: Vec<(IpAddr, u8)>, upstream: Upstream) -> ForwardOptions {
        ForwardOptions {
            netns: netns.into(),
            tun: tun.into(),
            routes,
            addr: Ipv4Addr::new(10, 255, 255, 2),
            peer: (Ipv4Addr::new(10, 255, 255, 1), 30),
            addr6: Ipv6Addr::new(0xfd00, 0xff, 0xff, 0, 0, 0, 0, 2),
            peer6: (Ipv6Addr::new(0xfd00, 0xff, 0xff, 0, 0, 0, 0, 1), 126),
            upstream,
            socks5: None,
            connect_timeout: Duration::from_secs(5),
            pcap: None,
            verbose: true,
            drive: true,
        }
    }

    /// Some route is an IPv6 prefix: the TUN needs an IPv6 address.
    pub fn wants_ipv6(&self) -> bool {
        self.routes.iter().any(|(net, _)| net.is_ipv6())
    }
}

/// How one forwarded connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Both directions finished with FIN.
    Closed,
    /// A RST (or another error) on one side; the other was aborted.
    Reset,
    /// The upstream refused; the client got a RST to its SYN.
    Refused,
    /// The upstream did not answer in time; the client got a RST to its SYN.
    TimedOut,
}

/// Totals over the gateway's life.
#[derive(Debug, Default)]
pub struct Totals {
    /// Connections by ending: closed, reset, refused, timed out.
    pub closed: AtomicU64,
    /// Connections that ended by a reset.
    pub reset: AtomicU64,
    /// Connections refused upstream.
    pub refused: AtomicU64,
    /// Upstream connects that timed out.
    pub timed_out: AtomicU64,
    /// Bytes client → upstream.
    pub up_bytes: AtomicU64,
    /// Bytes upstream → client.
    pub down_bytes: AtomicU64,
}

impl Totals {
    fn count(&self, e: Ending) {
        let c = match e {
            Ending::Closed => &self.closed,
            Ending::Reset => &self.reset,
            Ending::Refused => &self.refused,
            Ending::TimedOut => &self.timed_out,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Creates upstream sockets where they must live: a thread parked in the upstream
/// namespace (a socket belongs to the namespace it was created in), or here with
/// SO_BINDTODEVICE. Shared with the `forward` bench ([`crate::bench::forward`]).
pub(crate) struct SocketFactory {
    requests: Mutex<mpsc::Sender<SocketRequest>>,
}

/// A socket of this family (IPv4 or IPv6), and where to send it (a tokio oneshot, so
/// that the asking task awaits the reply instead of blocking its worker thread).
type SocketRequest = (Domain, oneshot::Sender<io::Result<Socket>>);

impl SocketFactory {
    pub(crate) fn new(up: &Upstream) -> io::Result<SocketFactory> {
        let (tx, rx) = mpsc::channel::<SocketRequest>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let up = up.clone();
        std::thread::Builder::new().name("utcp-fwd-sockets".into()).spawn(move || {
            let entered = match &up {
                Upstream::Netns(ns) => enter_netns(ns),
                Upstream::BindDevice(_) => Ok(()),
            };
            let failed = entered.is_err();
            let _ = ready_tx.send(entered);
            if failed {
                return;
            }
            for (domain, reply) in rx {
                let s = Socket::new(domain, Type::STREAM, None).and_then(|s| {
                    if let Upstream::BindDevice(dev) = &up {
                        s.bind_device(Some(dev.as_bytes()))?;
                    }
                    Ok(s)
                });
                let _ = reply.send(s);
            }
        })?;
        ready_rx.recv().map_err(|_| io::Error::other("socket thread died"))??;
        Ok(SocketFactory { requests: Mutex::new(tx) })
    }

    /// A stream socket of the family of `to`, made by the factory's thread (which sits in
    /// the upstream namespace); awaited, so no tokio worker blocks on the round trip.
    async fn socket(&self, to: SocketAddr) -> io::Result<Socket> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((Domain::for_address(to), tx))
            .map_err(|_| io::Error::other("socket thread gone"))?;
        rx.await.map_err(|_| io::Error::other("socket thread gone"))?
    }
}

/// Move the calling thread into the named network namespace.
fn enter_netns(ns: &str) -> io::Result<()> {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}"))
        .map_err(|e| io::Error::new(e.kind(), format!("network namespace {ns:?}: {e}")))?;
    rustix::thread::move_into_link_name_space(f.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("setns into {ns:?}: {e}")))
}

/// Add a route for each prefix into the TUN, inside its namespace.
fn add_routes(o: &ForwardOptions) -> io::Result<()> {
    for (net, len) in &o.routes {
        let family = if net.is_ipv6() { "-6" } else { "-4" };
        let st = std::process::Command::new("ip")
            .args(["-n", &o.netns, family, "route", "replace", &format!("{net}/{len}"), "dev", &o.tun])
            .status()?;
        if !st.success() {
            return Err(io::Error::other(format!("ip route {net}/{len} dev {} failed", o.tun)));
        }
    }
    Ok(())
}

/// Connect upstream to `dst` (through the SOCKS5 proxy if set), within `limit`.
pub(crate) async fn connect_upstream(
    f: &SocketFactory,
    o: &ForwardOptions,
    dst: SocketAddr,
) -> io::Result<tokio::net::TcpStream> {
    let first_hop = o.socks5.unwrap_or(dst);
    let sock = f.socket(first_hop).await?;
    sock.set_nonblocking(true)?;
    let std_stream: std::net::TcpStream = sock.into();
    let s = tokio::net::TcpSocket::from_std_stream(std_stream);
    let mut stream = tokio::time::timeout(o.connect_timeout, s.connect(first_hop))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream connect timed out"))??;
    if o.socks5.is_some() {
        tokio::time::timeout(o.connect_timeout, socks5_connect(&mut stream, dst))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "SOCKS5 handshake timed out"))??;
    }
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// RFC 1928: greeting with "no authentication", then CONNECT to `dst`.
async fn socks5_connect(s: &mut tokio::net::TcpStream, dst: SocketAddr) -> io::Result<()> {
    s.write_all(&[5, 1, 0]).await?;
    let mut r = [0u8; 2];
    s.read_exact(&mut r).await?;
    if r != [5, 0] {
        return Err(io::Error::other("SOCKS5 proxy wants authentication"));
    }
    s.write_all(&socks5_request(dst)).await?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    let addr_len = match head[3] {
        1 => 4,
        4 => 16,
        3 => s.read_u8().await? as usize,
        _ => return Err(io::Error::other("SOCKS5: bad reply address type")),
    };
    let mut rest = vec![0u8; addr_len + 2];
    s.read_exact(&mut rest).await?;
    socks5_reply_result(head[1])
}

/// The CONNECT request for `dst` (RFC 1928 §4).
fn socks5_request(dst: SocketAddr) -> Vec<u8> {
    let mut req = vec![5, 1, 0];
    match dst.ip() {
        IpAddr::V4(a) => {
            req.push(1);
            req.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            req.push(4);
            req.extend_from_slice(&a.octets());
        }
    }
    req.extend_from_slice(&dst.port().to_be_bytes());
    req
}

/// RFC 1928 §6 reply codes as io errors.
fn socks5_reply_result(rep: u8) -> io::Result<()> {
    match rep {
        0 => Ok(()),
        2 => Err(io::Error::new(io::ErrorKind::PermissionDenied, "SOCKS5: not allowed by ruleset")),
        3 | 4 => Err(io::Error::new(io::ErrorKind::HostUnreachable, "SOCKS5: unreachable")),
        5 => Err(io::Error::new(io::ErrorKind::ConnectionRefused, "SOCKS5: connection refused")),
        6 => Err(io::Error::new(io::ErrorKind::TimedOut, "SOCKS5: TTL expired")),
        r => Err(io::Error::other(format!("SOCKS5: failure {r}"))),
    }
}

/// The relay tasks waiting for their client's stream, by (original destination, client),
/// each with its task's number. A client may have two: when the gateway accepted its SYN
/// but the stack could not admit it (accept queue full) or answered it with a SYN cookie,
/// the client's retransmitted SYN is held and decided again. The newer task replaces the
/// older (which then ends), and a task that gives up removes only its own entry.
type Waiting = Arc<Mutex<HashMap<(SocketAddr, SocketAddr), (u64, oneshot::Sender<TcpStream>)>>>;

/// Remove `key`'s entry if it is task `id`'s.
fn forget(waiting: &Waiting, key: &(SocketAddr, SocketAddr), id: u64) {
    let mut w = waiting.lock().unwrap_or_else(|e| e.into_inner());
    if w.get(key).is_some_and(|(owner, _)| *owner == id) {
        w.remove(key);
    }
}

/// Run the gateway until `stop` is set. Returns the totals.
pub fn run(o: ForwardOptions, stop: Arc<AtomicBool>) -> io::Result<Arc<Totals>> {
    let iface = open_interface(&o)?;
    serve(&iface, o, stop)
}

/// The gateway's TUN in `o.netns`, with the routes into it.
pub fn open_interface(o: &ForwardOptions) -> io::Result<Interface> {
    let mut cfg = InterfaceConfig::new(&o.tun, o.addr, o.peer.0, o.peer.1);
    cfg.netns = Some(o.netns.clone());
    cfg.pcap = o.pcap.clone();
    if o.wants_ipv6() {
        cfg.addr6 = Some(o.addr6);
        cfg.peer6 = Some(o.peer6);
    }
    let iface = Interface::new(cfg)?;
    add_routes(o)?;
    Ok(iface)
}

/// Run the gateway on `iface` (from [`open_interface`]) until `stop` is set (a test can
/// watch the interface meanwhile). Returns the totals.
pub fn serve(iface: &Interface, o: ForwardOptions, stop: Arc<AtomicBool>) -> io::Result<Arc<Totals>> {
    let factory = Arc::new(SocketFactory::new(&o.upstream)?);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let totals = Arc::new(Totals::default());
    let mut filter = AnyIpFilter::all();
    for (net, len) in &o.routes {
        filter = filter.prefix(*net, *len);
    }
    let o = Arc::new(o);
    rt.block_on(async {
        let listener = Arc::new(TcpListener::bind_any(iface, filter)?);
        if o.drive {
            // Read the TUN on this runtime: no driver-thread hop per packet (issue 11).
            utcp::tokio::drive(iface)?;
        }
        listener.set_handshake_gate(true)?;
        let waiting: Waiting = Arc::default();
        tokio::spawn(accept_loop(listener.clone(), waiting.clone(), o.verbose));
        let syns = tokio::spawn(syn_loop(listener, waiting, factory, o.clone(), totals.clone()));
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        syns.abort();
        Ok::<(), io::Error>(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    let c = iface.counters();
    if o.verbose {
        println!(
            "forward: {} closed, {} reset, {} refused, {} timed out; {} B up, {} B down; {} other packets dropped (not TCP, or ICMP other than echo)",
            totals.closed.load(Ordering::Relaxed),
            totals.reset.load(Ordering::Relaxed),
            totals.refused.load(Ordering::Relaxed),
            totals.timed_out.load(Ordering::Relaxed),
            totals.up_bytes.load(Ordering::Relaxed),
            totals.down_bytes.load(Ordering::Relaxed),
            utcp::wire::DropReason::ALL
                .iter()
                .filter(|d| **d == utcp::wire::DropReason::NotTcp || d.name().starts_with("Icmp"))
                .map(|d| c.dropped(*d))
                .sum::<u64>(),
        );
    }
    Ok(totals)
}

/// Hand each established stream to the task that accepted its SYN.
async fn accept_loop(listener: Arc<TcpListener>, waiting: Waiting, verbose: bool) {
    while let Ok((s, peer)) = listener.accept().await {
        let Ok(local) = s.local_addr() else { continue };
        let tx = waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&(local, peer));
        if let Some((_, tx)) = tx {
            let _ = tx.send(s);
        } else {
            if verbose {
                println!("{peer} -> {local}: established with no upstream waiting for it, reset");
            }
            s.abort();
        }
    }
}

/// For each held SYN: connect upstream, then accept or refuse the client.
async fn syn_loop(
    listener: Arc<TcpListener>,
    waiting: Waiting,
    factory: Arc<SocketFactory>,
    o: Arc<ForwardOptions>,
    totals: Arc<Totals>,
) {
    while let Ok(syn) = listener.held_syn().await {
        let (waiting, factory, o, totals) = (waiting.clone(), factory.clone(), o.clone(), totals.clone());
        tokio::spawn(async move {
            let (dst, client) = (syn.local_addr(), syn.peer_addr());
            let start = Instant::now();
            let (ending, up, down) = forward_one(syn, &waiting, &factory, &o).await;
            totals.count(ending);
            totals.up_bytes.fetch_add(up, Ordering::Relaxed);
            totals.down_bytes.fetch_add(down, Ordering::Relaxed);
            if o.verbose {
                let ms = start.elapsed().as_secs_f64() * 1e3;
                println!("{client} -> {dst}: {up} B up, {down} B down, {ms:.1} ms, {ending:?}");
            }
        });
    }
}

async fn forward_one(
    syn: HeldSyn,
    waiting: &Waiting,
    f: &SocketFactory,
    o: &ForwardOptions,
) -> (Ending, u64, u64) {
    let key = (syn.local_addr(), syn.peer_addr());
    let mut upstream = match connect_upstream(f, o, key.0).await {
        Ok(s) => s,
        Err(e) => {
            let _ = syn.refuse();
            let ending = if e.kind() == io::ErrorKind::TimedOut { Ending::TimedOut } else { Ending::Refused };
            return (ending, 0, 0);
        }
    };
    static TASKS: AtomicU64 = AtomicU64::new(0);
    let id = TASKS.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    // An older task for the same client (see `Waiting`) loses its sender and ends.
    waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (id, tx));
    if syn.accept().is_err() {
        // The accept queue was full (the SYN was dropped; its retransmission starts a new
        // task) or the interface is down: the upstream connection closes now.
        forget(waiting, &key, id);
        return (Ending::Reset, 0, 0);
    }
    // The client's handshake completes in about one RTT; it may also never complete.
    let Ok(Ok(mut client)) = tokio::time::timeout(o.connect_timeout, rx).await else {
        forget(waiting, &key, id);
        abort_kernel(upstream);
        return (Ending::Reset, 0, 0);
    };
    let (mut up, mut down) = (0u64, 0u64);
    let r = copy_both(&mut client, &mut upstream, &mut up, &mut down).await;
    match r {
        Ok(()) => (Ending::Closed, up, down),
        Err(_) => {
            client.abort();
            abort_kernel(upstream);
            (Ending::Reset, up, down)
        }
    }
}

/// Copy both ways until both sides sent FIN; each EOF is passed on as a FIN
/// (half-close). Any error ends both.
async fn copy_both(
    client: &mut TcpStream,
    upstream: &mut tokio::net::TcpStream,
    up: &mut u64,
    down: &mut u64,
) -> io::Result<()> {
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let c2u = async {
        let n = tokio::io::copy(&mut cr, &mut uw).await?;
        uw.shutdown().await?;
        Ok::<u64, io::Error>(n)
    };
    let u2c = async {
        let n = tokio::io::copy(&mut ur, &mut cw).await?;
        cw.shutdown().await?;
        Ok::<u64, io::Error>(n)
    };
    let (a, b) = tokio::try_join!(c2u, u2c)?;
    (*up, *down) = (a, b);
    Ok(())
}

/// Close a kernel socket with a RST (SO_LINGER 0).
fn abort_kernel(s: tokio::net::TcpStream) {
    if let Ok(std) = s.into_std() {
        let sock = Socket::from(std);
        let _ = sock.set_linger(Some(Duration::ZERO));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_task_that_gives_up_removes_only_its_own_waiting_entry() {
        // Task 1 waits for client K's stream; K's SYN comes again and task 2 replaces it.
        let waiting: Waiting = Arc::default();
        let key: (SocketAddr, SocketAddr) =
            ("10.99.0.1:80".parse().unwrap(), "10.0.0.2:4000".parse().unwrap());
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, _rx2) = oneshot::channel();
        waiting.lock().unwrap().insert(key, (1, tx1));
        waiting.lock().unwrap().insert(key, (2, tx2));
        assert!(rx1.try_recv().is_err(), "task 1 sees its sender gone and ends");
        forget(&waiting, &key, 1);
        assert_eq!(waiting.lock().unwrap().get(&key).map(|(id, _)| *id), Some(2), "task 2's entry stays");
        forget(&waiting, &key, 2);
        assert!(waiting.lock().unwrap().is_empty());
    }

    #[test]
    fn socks5_connect_request_encoding() {
        let r = socks5_request("10.99.0.1:8080".parse().unwrap());
        assert_eq!(r, [5, 1, 0, 1, 10, 99, 0, 1, 0x1f, 0x90]);
        let r = socks5_request("[2001:db8::1]:80".parse().unwrap());
        assert_eq!(r.len(), 4 + 16 + 2);
        assert_eq!(r[3], 4);
    }

    #[test]
    fn socks5_reply_codes_map_to_error_kinds() {
        assert!(socks5_reply_result(0).is_ok());
        assert_eq!(socks5_reply_result(5).unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(socks5_reply_result(4).unwrap_err().kind(), io::ErrorKind::HostUnreachable);
    }
}
