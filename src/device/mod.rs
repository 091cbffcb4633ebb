//! Devices: where packets come from and go to.

pub mod netns;
pub mod tun;
