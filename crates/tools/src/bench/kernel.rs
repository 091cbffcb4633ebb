//! The reference system: kernel ↔ kernel over a veth pair between two private namespaces.
//!
//! Namespace `client` holds `vc` (10.88.1.1/24), namespace `server` holds `vs` (10.88.1.2/24)
//! and one std listener thread per [`Port`]. By default the veth keeps its offloads (TSO/GSO),
//! as a kernel-to-kernel path on one host has them; the TUN systems move 1500-byte packets.
//! `--kernel-no-offload` turns them off for a per-packet reference.

use super::harness::{KernelListener, Servers, serve_port};
use super::{Port, System, SystemKind};
use crate::netns::NetNs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 1);
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 2);

pub struct KernelSystem {
    // Dropped in this order: the server threads are stopped and joined, then the namespaces.
    servers: Servers<io::Result<io::Result<()>>>,
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
        let mut sys = KernelSystem { servers: Servers::new(), client, _server: server };
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
            let stop = sys.servers.stop.clone();
            let tx = tx.clone();
            let h = sys._server.spawn(move || {
                let l = match KernelListener::bind(SocketAddr::from((SERVER_IP, port.number()))) {
                    Ok(l) => {
                        let _ = tx.send(Ok(()));
                        l
                    }
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                };
                serve_port(port, &l, &stop)
            })?;
            sys.servers.push(h);
        }
        for _ in Port::ALL {
            rx.recv_timeout(Duration::from_secs(5))
                .map_err(|_| io::Error::other("kernel server did not start"))??;
        }
        Ok(sys)
    }
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
