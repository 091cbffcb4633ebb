//! kernel ↔ utcp over a TUN (MTU 1500) via [`utcp`], in one private namespace.
//!
//! The runtime's driver thread enters the namespace, creates the TUN there and gives the
//! kernel side 10.88.3.1/24; utcp answers as 10.88.3.2 with its default profile (256 KiB
//! buffers, window scaling, SACK, timestamps, delayed ACK). One server thread per [`Port`]
//! runs the same serve loop as the kernel system ([`serve_port`]), so the two differ only in
//! the TCP underneath.

use super::harness::serve_port;
use super::{Port, System, SystemKind};
use crate::netns::NetNs;
use utcp::{Interface, InterfaceConfig, TcpListener};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 3, 1);
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 3, 2);
const TUN_NAME: &str = "tun-utcp";

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
            sys.threads.push(std::thread::spawn(move || serve_port(port, &l, &stop)));
        }
        Ok(sys)
    }
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
