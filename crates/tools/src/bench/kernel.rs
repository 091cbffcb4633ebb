//! The reference system: kernel ↔ kernel over a veth pair between two private namespaces.
//!
//! Namespace `client` holds `vc` (10.88.1.1/24), namespace `server` holds `vs` (10.88.1.2/24)
//! and one std listener thread per [`Port`]. By default the veth keeps its offloads (TSO/GSO),
//! as a kernel-to-kernel path on one host has them; the TUN systems move 1500-byte packets.
//! `--kernel-no-offload` turns them off for a per-packet reference.

use super::harness::{is_timeout, serve_stream};
use super::{Port, System, SystemKind};
use crate::netns::NetNs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 1);
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 2);

/// How often blocked server calls wake up to look at the stop flag.
const WAKE: Duration = Duration::from_millis(100);

pub struct KernelSystem {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<io::Result<io::Result<()>>>>,
    // Dropped after the threads are joined (see Drop): namespaces go last.
    client: NetNs,
    _server: NetNs,
}

impl KernelSystem {
    /// `offload`: keep the veth's offloads (64 KB TSO/GSO super-segments). Without them
    /// (`ethtool -K .. tso off gso off gro off`, needs ethtool) the kernel moves one MSS per
    /// packet, like the TUN systems.
    pub fn start(offload: bool) -> io::Result<KernelSystem> {
        let client = NetNs::create(&NetNs::unique_name("utcpb-kc"))?;
        let server = NetNs::create(&NetNs::unique_name("utcpb-ks"))?;
        let mut sys = KernelSystem {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            client,
            _server: server,
        };
        let (c, s) = (&sys.client, &sys._server);
        c.exec(
            "ip",
            &[
                "link",
                "add",
                "vc",
                "mtu",
                "1500",
                "type",
                "veth",
                "peer",
                "name",
                "vs",
                "mtu",
                "1500",
                "netns",
                s.name(),
            ],
        )?;
        c.exec("ip", &["addr", "add", "10.88.1.1/24", "dev", "vc"])?;
        c.exec("ip", &["link", "set", "vc", "up"])?;
        s.exec("ip", &["addr", "add", "10.88.1.2/24", "dev", "vs"])?;
        s.exec("ip", &["link", "set", "vs", "up"])?;
        if !offload {
            c.exec("ethtool", &["-K", "vc", "tso", "off", "gso", "off", "gro", "off"])?;
            s.exec("ethtool", &["-K", "vs", "tso", "off", "gso", "off", "gro", "off"])?;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        for port in Port::ALL {
            let stop = sys.stop.clone();
            let tx = tx.clone();
            let h = sys._server.spawn(move || {
                let l = match bind(port) {
                    Ok(l) => {
                        let _ = tx.send(Ok(()));
                        l
                    }
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                };
                serve(port, l, &stop)
            })?;
            sys.threads.push(h);
        }
        for _ in Port::ALL {
            rx.recv_timeout(Duration::from_secs(5))
                .map_err(|_| io::Error::other("kernel server did not start"))??;
        }
        Ok(sys)
    }
}

fn bind(port: Port) -> io::Result<TcpListener> {
    let l = TcpListener::bind(SocketAddr::from((SERVER_IP, port.number())))?;
    set_timeout(&l, WAKE)?;
    Ok(l)
}

/// SO_RCVTIMEO on a listener bounds `accept` on Linux, so the loop can see the stop flag.
fn set_timeout(l: &TcpListener, t: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: valid fd, correctly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Accept and serve connections one at a time (the client runs one at a time per workload).
fn serve(port: Port, l: TcpListener, stop: &AtomicBool) -> io::Result<()> {
    let stopped = || stop.load(Ordering::Relaxed);
    while !stopped() {
        let mut s = match l.accept() {
            Ok((s, _)) => s,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(e),
        };
        s.set_read_timeout(Some(WAKE))?;
        s.set_write_timeout(Some(WAKE))?;
        if port == Port::Echo || port == Port::Connect {
            s.set_nodelay(true)?;
        }
        // A reset by the client ends Source; other errors end only this connection.
        let _ = serve_stream(port, &mut s, &stopped);
    }
    Ok(())
}

impl System for KernelSystem {
    fn kind(&self) -> SystemKind {
        SystemKind::Kernel
    }
    fn client_ns(&self) -> &NetNs {
        &self.client
    }
    fn server_ip(&self) -> Ipv4Addr {
        SERVER_IP
    }
    fn server_ns(&self) -> Option<&NetNs> {
        Some(&self._server)
    }
}

impl Drop for KernelSystem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}
