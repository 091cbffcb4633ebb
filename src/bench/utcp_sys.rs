//! kernel ↔ utcp over a TUN (MTU 1500) via `utcp::runtime` (landing later).

use super::{System, SystemKind};
use crate::device::netns::NetNs;
use std::io;
use std::net::Ipv4Addr;

pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 3, 1);
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 3, 2);

pub struct UtcpSystem {
    ns: NetNs,
}

impl UtcpSystem {
    pub fn start() -> io::Result<UtcpSystem> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "the utcp runtime is not available yet"))
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
