//! kernel ↔ utcp over a TUN (MTU 1500) via [`utcp`], in one private namespace.
//!
//! The runtime's driver thread enters the namespace, creates the TUN there and gives the
//! kernel side 10.88.3.1/24; utcp answers as 10.88.3.2 with its default profile (256 KiB
//! buffers, window scaling, SACK, timestamps, delayed ACK). One server thread per [`Port`]
//! accepts with a timeout and serves with the same code as the kernel system
//! ([`serve_stream`]), so the two differ only in the TCP underneath.

use super::harness::{is_timeout, serve_stream};
use super::{Port, System, SystemKind};
use crate::netns::NetNs;
use utcp::{Interface, InterfaceConfig, TcpListener};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 3, 1);
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 3, 2);
const TUN_NAME: &str = "tun-utcp";
/// How often blocked server calls wake up to look at the stop flag.
const WAKE: Duration = Duration::from_millis(100);

pub struct UtcpSystem {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    // Torn down in this order by Drop: threads, then the interface, then the namespace.
    iface: Option<Interface>,
    ns: NetNs,
}

impl UtcpSystem {
    pub fn start() -> io::Result<UtcpSystem> {
        let ns = NetNs::create(&NetNs::unique_name("utcpb-ut"))?;
        let mut config = InterfaceConfig::new(TUN_NAME, STACK_IP, KERNEL_IP, 24);
        config.mtu = 1500;
        config.netns = Some(ns.name().to_string());
        // If this fails, `ns` is dropped (and deleted) on the way out.
        let iface = Interface::new(config)?;
        let mut sys =
            UtcpSystem { stop: Arc::new(AtomicBool::new(false)), threads: Vec::new(), iface: None, ns };
        let mut listeners = Vec::new();
        for port in Port::ALL {
            listeners.push((port, TcpListener::bind(&iface, SocketAddr::from((STACK_IP, port.number())))?));
        }
        sys.iface = Some(iface);
        for (port, l) in listeners {
            let stop = sys.stop.clone();
            sys.threads.push(std::thread::spawn(move || serve(port, l, &stop)));
        }
        Ok(sys)
    }
}

/// Accept and serve connections one at a time (the client runs one at a time per workload).
fn serve(port: Port, l: TcpListener, stop: &AtomicBool) -> io::Result<()> {
    let stopped = || stop.load(Ordering::Relaxed);
    while !stopped() {
        let mut s = match l.accept_timeout(WAKE) {
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

impl System for UtcpSystem {
    fn kind(&self) -> SystemKind {
        SystemKind::Utcp
    }
    fn client_ns(&self) -> &NetNs {
        &self.ns
    }
    fn server_ip(&self) -> Ipv4Addr {
        STACK_IP
    }
}

impl Drop for UtcpSystem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        drop(self.iface.take());
    }
}
