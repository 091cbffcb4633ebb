//! kernel ↔ smoltcp 0.14 over a TUN (MTU 1500) inside one private namespace.
//!
//! smoltcp gets its best shipped configuration: 256 KiB receive and send buffers (utcp's
//! default), window scaling (derived from the buffer), Reno congestion control, delayed ACK as
//! shipped, Nagle off only where the kernel and utcp turn it off too (rr and connect), and a
//! poll loop that sleeps on the TUN fd for `iface.poll_delay` instead of spinning.
//!
//! The TUN is created by the stack thread after it entered the namespace; the main thread
//! then gives the kernel side 10.88.2.1/24 with `ip`; smoltcp answers as 10.88.2.2.

use super::harness::pattern;
use super::{Port, System, SystemKind};
use crate::netns::NetNs;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration as SDuration, Instant as SInstant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 2, 1);
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 2, 2);
const TUN_NAME: &str = "tun-smol";
/// Socket buffers, as utcp's default.
pub const BUFFER: usize = 256 * 1024;
/// Longest sleep of the poll loop, so the stop flag is seen promptly.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Listening sockets kept ready per port.
const LISTENERS_PER_PORT: usize = 2;
/// Most sockets per port (listening + connected + closing).
const MAX_SOCKETS_PER_PORT: usize = 64;

pub struct SmoltcpSystem {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<io::Result<()>>>>,
    ns: NetNs,
}

impl SmoltcpSystem {
    pub fn start() -> io::Result<SmoltcpSystem> {
        let ns = NetNs::create(&NetNs::unique_name("utcpb-sm"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let stop2 = stop.clone();
        let thread = ns.spawn(move || {
            let device = match TunTapInterface::new(TUN_NAME, Medium::Ip) {
                Ok(d) => {
                    let _ = tx.send(Ok(()));
                    d
                }
                Err(e) => {
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            };
            run_stack(device, &stop2)
        })?;
        let mut sys = SmoltcpSystem { stop, thread: Some(thread), ns };
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| io::Error::other("smoltcp thread did not create its TUN"))??;
        sys.ns.exec("ip", &["link", "set", TUN_NAME, "mtu", "1500", "up"])?;
        sys.ns.exec("ip", &["addr", "add", "10.88.2.1/24", "dev", TUN_NAME])?;
        if let Some(t) = &sys.thread
            && t.is_finished()
        {
            let t = sys.thread.take();
            return Err(match t.map(|t| t.join()) {
                Some(Ok(Ok(Err(e)))) | Some(Ok(Err(e))) => e,
                _ => io::Error::other("smoltcp thread exited"),
            });
        }
        Ok(sys)
    }
}

impl System for SmoltcpSystem {
    fn kind(&self) -> SystemKind {
        SystemKind::Smoltcp
    }
    fn client_ns(&self) -> &NetNs {
        &self.ns
    }
    fn server_ip(&self) -> Ipv4Addr {
        STACK_IP
    }
}

impl Drop for SmoltcpSystem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A new server socket for `port`, configured as described in the module documentation.
fn new_socket(port: Port) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; BUFFER]),
        tcp::SocketBuffer::new(vec![0u8; BUFFER]),
    );
    configure(&mut s, port);
    s
}

fn configure(s: &mut tcp::Socket<'_>, port: Port) {
    // A fresh controller per connection (`listen` does not reset it).
    s.set_congestion_control(tcp::CongestionControl::Reno);
    s.set_nagle_enabled(!matches!(port, Port::Echo | Port::Connect));
}

/// The server application: which sockets serve which port.
pub struct Server {
    sockets: Vec<(SocketHandle, Port)>,
    data: Vec<u8>,
}

impl Server {
    pub fn new() -> Server {
        Server { sockets: Vec::new(), data: pattern() }
    }

    /// Keep `LISTENERS_PER_PORT` sockets listening on every port, reusing closed sockets.
    pub fn arm(&mut self, set: &mut SocketSet<'static>) {
        for port in Port::ALL {
            let mut listening = 0;
            let mut idle = Vec::new();
            let mut total = 0;
            for &(h, p) in &self.sockets {
                if p != port {
                    continue;
                }
                total += 1;
                let s = set.get::<tcp::Socket>(h);
                if s.is_listening() {
                    listening += 1;
                } else if !s.is_open() {
                    idle.push(h);
                }
            }
            while listening < LISTENERS_PER_PORT {
                let h = match idle.pop() {
                    Some(h) => h,
                    None if total < MAX_SOCKETS_PER_PORT => {
                        total += 1;
                        let h = set.add(new_socket(port));
                        self.sockets.push((h, port));
                        h
                    }
                    None => break,
                };
                let s = set.get_mut::<tcp::Socket>(h);
                configure(s, port);
                if s.listen((IpAddress::Ipv4(STACK_IP), port.number())).is_ok() {
                    listening += 1;
                } else {
                    break;
                }
            }
        }
    }

    /// Serve every socket; true if anything was queued or closed (so poll again at once).
    pub fn service(&mut self, set: &mut SocketSet<'static>) -> bool {
        let mut busy = false;
        let mut scratch = [0u8; 4096];
        for &(h, port) in &self.sockets {
            let s = set.get_mut::<tcp::Socket>(h);
            match port {
                Port::Sink => {
                    while s.can_recv() {
                        let _ = s.recv(|b| (b.len(), ()));
                        busy = true;
                    }
                    if s.state() == tcp::State::CloseWait && !s.can_recv() {
                        let _ = s.send_slice(b"k");
                        s.close();
                        busy = true;
                    }
                }
                Port::Source => {
                    while s.can_send() {
                        match s.send_slice(&self.data) {
                            Ok(n) if n > 0 => busy = true,
                            _ => break,
                        }
                    }
                    if s.state() == tcp::State::CloseWait {
                        s.close();
                        busy = true;
                    }
                }
                Port::Echo => {
                    while s.can_recv() && s.can_send() {
                        let room = s.send_capacity() - s.send_queue();
                        let want = room.min(scratch.len());
                        match s.recv_slice(&mut scratch[..want]) {
                            Ok(n) if n > 0 => {
                                let _ = s.send_slice(&scratch[..n]);
                                busy = true;
                            }
                            _ => break,
                        }
                    }
                    if s.state() == tcp::State::CloseWait && !s.can_recv() {
                        s.close();
                        busy = true;
                    }
                }
                Port::Connect => {
                    let st = s.state();
                    if matches!(st, tcp::State::Established | tcp::State::CloseWait) && s.can_recv() {
                        let _ = s.recv(|b| (b.len(), ()));
                        let _ = s.send_slice(b"k");
                        s.close();
                        busy = true;
                    }
                }
            }
        }
        busy
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

/// The stack thread: poll, serve, sleep on the TUN fd until smoltcp's next deadline.
fn run_stack(mut device: TunTapInterface, stop: &AtomicBool) -> io::Result<()> {
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = 0x7574_6370_6265_6e63 ^ u64::from(std::process::id());
    let mut iface = Interface::new(config, &mut device, SInstant::now());
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(STACK_IP), 24));
    });
    let mut set = SocketSet::new(Vec::new());
    let mut server = Server::new();
    server.arm(&mut set);
    let fd = device.as_raw_fd();
    while !stop.load(Ordering::Relaxed) {
        iface.poll(SInstant::now(), &mut device, &mut set);
        let busy = server.service(&mut set);
        server.arm(&mut set);
        if busy {
            continue;
        }
        let wait = match iface.poll_delay(SInstant::now(), &set) {
            Some(d) if d == SDuration::ZERO => continue,
            Some(d) => Duration::from_micros(d.total_micros()).min(MAX_WAIT),
            None => MAX_WAIT,
        };
        wait_readable(fd, wait)?;
    }
    Ok(())
}

/// Sleep until `fd` is readable or `timeout` passes (ppoll: microsecond resolution).
/// Hand-written: smoltcp's own `phy::wait` rounds the timeout down to whole milliseconds
/// (select with `millis() * 1000`), which would spin at sub-millisecond `poll_delay`s, and
/// its `TunTapInterface` offers only a raw fd, so a safe `rustix::event::poll` would still
/// need an unsafe `BorrowedFd::borrow_raw`.
pub fn wait_readable(fd: i32, timeout: Duration) -> io::Result<()> {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}
