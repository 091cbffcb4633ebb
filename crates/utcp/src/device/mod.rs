//! Devices: where packets come from and go to.

pub mod link;
pub mod pcap;
pub mod rng;
pub mod steer;
pub mod tun;
pub mod vnet;
