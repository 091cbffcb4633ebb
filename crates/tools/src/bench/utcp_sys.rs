//! kernel ↔ utcp over a TUN (MTU 1500) via [`utcp`], in one private namespace.
//!
//! The runtime's driver thread enters the namespace, creates the TUN there and gives the
//! kernel side 10.88.3.1/24; utcp answers as 10.88.3.2 with its default profile (256 KiB
//! buffers, window scaling, SACK, timestamps, delayed ACK). One server thread per [`Port`]
//! runs the same serve loop as the kernel system ([`serve_port`]), so the two differ only in
//! the TCP underneath.

use super::harness::{Servers, serve_port};
use super::{Port, System, SystemKind};
use crate::netns::NetNs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use utcp::{BusyPoll, Interface, InterfaceConfig, TcpListener};

pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 3, 1);
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 3, 2);
const TUN_NAME: &str = "tun-utcp";

/// The busy-poll budget of the `utcp-busy` system (`BusyPoll::Always`).
pub const BUSY_POLL: std::time::Duration = std::time::Duration::from_micros(50);

pub struct UtcpSystem {
    kind: SystemKind,
    // Dropped in this order: the server threads are stopped and joined, then the interface,
    // then the namespace.
    _servers: Servers<io::Result<()>>,
    _iface: Interface,
    ns: NetNs,
}

impl UtcpSystem {
    /// `offload`: TUN offload (issue 12), off for `utcp bench --no-offload`.
    pub fn start(offload: bool) -> io::Result<UtcpSystem> {
        UtcpSystem::start_with(None, offload)
    }

    /// The `utcp-busy` (`BusyPoll::Always(`[`BUSY_POLL`]`)`), `utcp-nopoll`
    /// (`BusyPoll::Off`) or `utcp-nosteer` (no flow steering) system: [`UtcpSystem::start`]
    /// with another policy.
    pub fn start_variant(kind: SystemKind, offload: bool) -> io::Result<UtcpSystem> {
        let poll = match kind {
            SystemKind::UtcpBusy => BusyPoll::Always(BUSY_POLL),
            SystemKind::UtcpNoPoll => BusyPoll::Off,
            _ => BusyPoll::default(),
        };
        UtcpSystem::start_config(None, offload, (kind, poll))
    }

    /// [`UtcpSystem::start`] with the TUN's kernel queue set to `tx_queue_len` packets
    /// (`InterfaceConfig::tx_queue_len`; `utcp bench --synflood --txqueuelen`).
    pub fn start_with(tx_queue_len: Option<u32>, offload: bool) -> io::Result<UtcpSystem> {
        UtcpSystem::start_config(tx_queue_len, offload, (SystemKind::Utcp, BusyPoll::default()))
    }

    fn start_config(
        tx_queue_len: Option<u32>,
        offload: bool,
        (kind, busy_poll): (SystemKind, BusyPoll),
    ) -> io::Result<UtcpSystem> {
        let ns = NetNs::create(&NetNs::unique_name("utcpb-ut"))?;
        let mut config = InterfaceConfig::new(TUN_NAME, STACK_IP, KERNEL_IP, 24);
        config.mtu = 1500;
        config.netns = Some(ns.name().to_string());
        config.tx_queue_len = tx_queue_len;
        config.offload = offload;
        config.busy_poll = busy_poll;
        if kind == SystemKind::UtcpNoSteer {
            config.steer_queues = 0;
        }
        // If this fails, `ns` is dropped (and deleted) on the way out.
        let iface = Interface::new(config)?;
        let mut listeners = Vec::new();
        for port in Port::ALL {
            listeners.push((port, TcpListener::bind(&iface, SocketAddr::from((STACK_IP, port.number())))?));
        }
        let mut servers = Servers::new();
        for (port, l) in listeners {
            let stop = servers.stop.clone();
            servers.push(std::thread::spawn(move || serve_port(port, &l, &stop)));
        }
        Ok(UtcpSystem { kind, _servers: servers, _iface: iface, ns })
    }
}

impl System for UtcpSystem {
    fn kind(&self) -> SystemKind {
        self.kind
    }
    fn client_ns(&self) -> &NetNs {
        &self.ns
    }
    fn server_ip(&self) -> Ipv4Addr {
        STACK_IP
    }
    fn link_stats(&self) -> Option<utcp::LinkStats> {
        Some(self._iface.link_stats())
    }
    fn engine_counters(&self) -> Option<utcp::engine::Counters> {
        Some(self._iface.counters())
    }
}
