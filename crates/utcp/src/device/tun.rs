//! A Linux TUN device carrying raw IPv4 packets (`IFF_TUN | IFF_NO_PI`), optionally with
//! TUN offload (`IFF_VNET_HDR`: checksum offload and TCP super-segments, issue 12).
//!
//! [`Tun::open`] creates the device in the network namespace of the *calling thread*
//! (the runtime's driver thread `setns`es first), gives the kernel side its address and
//! prefix, sets the MTU and brings the link up, all in-process through `tun-rs`
//! (ioctls and netlink, no `ip` subprocess). The descriptor is nonblocking: [`Tun::recv`]
//! returns `WouldBlock` when the queue is empty, and both directions retry `EINTR`.
//!
//! Everything the kernel routes into the device is handed up unfiltered (IPv6 router
//! solicitations, ICMP, UDP included): the engine classifies and counts what is not
//! TCP for us, so this layer never logs per packet.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// The largest packet a TUN read or write can carry (an IPv4 datagram is at most 64 KiB).
pub const MAX_PACKET: usize = 65536;

/// What [`Tun::open`] configures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunConfig {
    /// Interface name, at most 15 bytes (IFNAMSIZ - 1).
    pub name: String,
    /// The kernel side's own address on the link.
    pub peer: Ipv4Addr,
    /// Prefix length of the kernel side's address (the connected route).
    pub prefix: u8,
    /// Link MTU, bytes.
    pub mtu: u16,
    /// IPv6 (issue 13): the kernel side's IPv6 address and prefix length, if any.
    pub peer6: Option<(std::net::Ipv6Addr, u8)>,
    /// Open the device with `IFF_MULTI_QUEUE`, so that [`Tun::clone_queue`] can add
    /// queues (flow steering, `device/steer.rs`).
    pub multi_queue: bool,
}

/// An open, configured, up TUN device.
pub struct Tun {
    dev: tun_rs::SyncDevice,
    name: String,
    /// TUN offload (issue 12): every packet is preceded by a `virtio_net_hdr`
    /// (`IFF_VNET_HDR`) and the kernel may send and take TCP super-segments (`device/vnet.rs`).
    vnet: bool,
}

/// What the `virtio_net_hdr` of a received packet said (all false without offload).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxInfo {
    /// The kernel vouches for the TCP checksum (`NEEDS_CSUM` or `DATA_VALID`): feed the
    /// packet through `Stack::handle_packet_checksum_ok`.
    pub checksum_ok: bool,
    /// A GSO super-segment (more than one MSS of TCP payload).
    pub gso: bool,
}

// TUN offload (issue 12): <linux/if_tun.h> ioctls and flags.
/// `TUNSETOFFLOAD = _IOW('T', 208, unsigned int)`, the argument passed by value.
const TUNSETOFFLOAD: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<std::ffi::c_uint>(b'T', 208);
/// `TUNSETVNETHDRSZ = _IOW('T', 216, int)`, the argument passed by pointer.
const TUNSETVNETHDRSZ: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<std::ffi::c_int>(b'T', 216);
/// `TUN_F_CSUM`: we take packets with partial checksums.
pub const TUN_F_CSUM: u32 = 0x01;
/// `TUN_F_TSO4`: we take TCP/IPv4 super-segments.
pub const TUN_F_TSO4: u32 = 0x02;
/// `TUN_F_TSO6`: we take TCP/IPv6 super-segments.
pub const TUN_F_TSO6: u32 = 0x04;

/// Tell the kernel which offloads this end of the TUN handles (`TUNSETOFFLOAD`).
fn set_offload(fd: BorrowedFd<'_>, flags: u32) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes an unsigned int by value (drivers/net/tun.c, set_offload),
    // which `IntegerSetter` passes as the ioctl argument; `fd` is a live TUN descriptor.
    unsafe {
        let op = rustix::ioctl::IntegerSetter::<TUNSETOFFLOAD>::new_usize(flags as usize);
        rustix::ioctl::ioctl(fd, op).map_err(io::Error::from)
    }
}

/// Set the size of the header before each packet (`TUNSETVNETHDRSZ`).
fn set_vnet_hdr_size(fd: BorrowedFd<'_>, size: std::ffi::c_int) -> io::Result<()> {
    // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer argument (tun.c copies
    // sizeof(int) from user memory); `Setter` passes a pointer to `size`, alive for the call.
    unsafe {
        let op = rustix::ioctl::Setter::<TUNSETVNETHDRSZ, std::ffi::c_int>::new(size);
        rustix::ioctl::ioctl(fd, op).map_err(io::Error::from)
    }
}

impl Tun {
    /// Create and configure the device in the calling thread's network namespace.
    pub fn open(cfg: &TunConfig) -> io::Result<Tun> {
        Tun::open_with(cfg, false)
    }

    /// [`Tun::open`] with TUN offload (issue 12): `IFF_VNET_HDR`, a 10-byte header
    /// (`TUNSETVNETHDRSZ`) and `TUNSETOFFLOAD` with `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`.
    /// Falls back to a plain device (see [`Tun::offload`]) when the kernel refuses.
    pub fn open_offload(cfg: &TunConfig) -> io::Result<Tun> {
        match Tun::open_with(cfg, true) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() != io::ErrorKind::InvalidInput => {
                tracing::info!(error = %e, "TUN offload unavailable; using a plain TUN");
                Tun::open_with(cfg, false)
            }
            Err(e) => Err(e),
        }
    }

    /// Are packets framed with a `virtio_net_hdr` (offload on)?
    pub fn offload(&self) -> bool {
        self.vnet
    }

    fn open_with(cfg: &TunConfig, offload: bool) -> io::Result<Tun> {
        if cfg.name.is_empty() || cfg.name.len() > 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TUN name {:?} must be 1 to 15 bytes", cfg.name),
            ));
        }
        if cfg.prefix > 32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("prefix /{} is longer than 32", cfg.prefix),
            ));
        }
        if (cfg.mtu as usize) < 576 {
            // RFC 791: every host must accept 576-byte datagrams.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("MTU {} is below the IPv4 minimum of 576", cfg.mtu),
            ));
        }
        let ctx =
            |what: &str, e: io::Error| io::Error::new(e.kind(), format!("TUN {}: {what}: {e}", cfg.name));
        let mut builder = tun_rs::DeviceBuilder::new()
            .name(cfg.name.clone())
            .layer(tun_rs::Layer::L3)
            .packet_information(false)
            .offload(offload)
            .multi_queue(cfg.multi_queue)
            .mtu(cfg.mtu)
            .ipv4(cfg.peer, cfg.prefix, None);
        if let Some((peer6, prefix6)) = cfg.peer6 {
            // RFC 8200 §5: IPv6 links carry at least 1280 bytes.
            if cfg.mtu < 1280 || prefix6 > 126 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "IPv6 needs MTU >= 1280 and a prefix of at most /126 (MTU {}, /{prefix6})",
                        cfg.mtu
                    ),
                ));
            }
            builder = builder.ipv6(peer6, prefix6);
        }
        let dev = builder
            .enable(true)
            .build_sync()
            .map_err(|e| ctx("create (needs CAP_NET_ADMIN and /dev/net/tun)", e))?;
        dev.set_nonblocking(true).map_err(|e| ctx("set nonblocking", e))?;
        let name = dev.name().unwrap_or_else(|_| cfg.name.clone());
        let vnet = offload && dev.tcp_gso();
        if vnet {
            // tun-rs set IFF_VNET_HDR and its own offload mask (with UDP GSO, which the
            // engine has no use for): state ours explicitly. Failing here leaves a device
            // whose framing we know, so it is an error, and `open_offload` falls back.
            set_vnet_hdr_size(dev.as_fd(), super::vnet::VNET_HDR_LEN as std::ffi::c_int)
                .map_err(|e| ctx("TUNSETVNETHDRSZ", e))?;
            set_offload(dev.as_fd(), TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
                .map_err(|e| ctx("TUNSETOFFLOAD", e))?;
        }
        Ok(Tun { dev, name, vnet })
    }

    /// Adopt a TUN descriptor made elsewhere: by a supervisor that passed it in, by
    /// `tun-rs` (`SyncDevice::into_raw_fd`), or by a VPN API (Android's
    /// `VpnService.Builder.establish()`). The device must carry raw IP packets without
    /// packet information (`IFF_TUN | IFF_NO_PI`) and without `IFF_VNET_HDR`; its
    /// addresses, routes and MTU are the caller's business. The descriptor is made
    /// nonblocking and closed with the `Tun`.
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> io::Result<Tun> {
        use std::os::fd::IntoRawFd;
        let raw = fd.into_raw_fd();
        // SAFETY: `raw` comes from an `OwnedFd` given up just above, so it is open and
        // nothing else will close it; `SyncDevice` takes ownership. tun-rs checks that it
        // is a TUN (TUNGETIFF) and rejects the framing flags it can detect.
        let dev = unsafe { tun_rs::SyncDevice::from_fd(raw) }
            .map_err(|e| io::Error::new(e.kind(), format!("adopting TUN fd {raw}: {e}")))?;
        dev.set_nonblocking(true)?;
        let name = dev.name().unwrap_or_else(|_| format!("fd{raw}"));
        Ok(Tun { dev, name, vnet: false })
    }

    /// Attach another queue to a device opened with `TunConfig::multi_queue` (a new
    /// descriptor on the same interface, with the same framing). The kernel numbers
    /// queues in the order they attach: the first is queue 0.
    pub fn clone_queue(&self) -> io::Result<Tun> {
        let dev = self
            .dev
            .try_clone()
            .map_err(|e| io::Error::new(e.kind(), format!("TUN {}: add a queue: {e}", self.name)))?;
        dev.set_nonblocking(true)?;
        Ok(Tun { dev, name: self.name.clone(), vnet: self.vnet })
    }

    /// The interface name the kernel gave the device.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Set the kernel's queue of packets for us to read (`ip link set .. txqueuelen`);
    /// see `InterfaceConfig::tx_queue_len`.
    pub fn set_tx_queue_len(&self, len: u32) -> io::Result<()> {
        self.dev
            .set_tx_queue_len(len)
            .map_err(|e| io::Error::new(e.kind(), format!("TUN {}: set txqueuelen {len}: {e}", self.name)))
    }

    /// The kernel's queue length for this TUN.
    pub fn tx_queue_len(&self) -> io::Result<u32> {
        self.dev.tx_queue_len()
    }

    /// The device MTU as the kernel reports it.
    pub fn mtu(&self) -> io::Result<u16> {
        self.dev.mtu()
    }

    /// Read one packet. `WouldBlock` when none is queued; `EINTR` is retried.
    /// A packet longer than `buf` is truncated by the kernel, so pass [`MAX_PACKET`] bytes.
    /// With offload on, the packet's checksum may be partial: use [`Tun::recv_info`].
    #[inline]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_info(buf).map(|(n, _)| n)
    }

    /// Read one packet and what its `virtio_net_hdr` says (offload on; all false otherwise).
    /// The header is read beside `buf` (`readv`), so the packet starts at `buf[0]`.
    #[inline]
    pub fn recv_info(&self, buf: &mut [u8]) -> io::Result<(usize, RxInfo)> {
        if !self.vnet {
            return self.recv_raw(buf).map(|n| (n, RxInfo::default()));
        }
        let mut hdr = [0u8; super::vnet::VNET_HDR_LEN];
        let n = loop {
            let mut iov = [io::IoSliceMut::new(&mut hdr), io::IoSliceMut::new(buf)];
            match self.dev.recv_vectored(&mut iov) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        let Some(h) = super::vnet::VnetHdr::parse(&hdr).filter(|_| n >= hdr.len()) else {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "TUN read shorter than its vnet header"));
        };
        Ok((n - hdr.len(), RxInfo { checksum_ok: h.checksum_ok(), gso: h.is_gso() }))
    }

    fn recv_raw(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.dev.recv(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Write one engine packet: a super-segment when `t.segment_size` is set (the kernel
    /// cuts it, TSO), else a plain packet. Without offload only plain packets are possible.
    pub fn send_transmit(&self, packet: &[u8], t: &utcp_engine::Transmit) -> io::Result<()> {
        if !self.vnet {
            if t.segment_size.is_some() || t.csum_start.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "super-segment on a TUN without offload",
                ));
            }
            return self.send(packet);
        }
        self.send_vnet(&super::vnet::VnetHdr::for_transmit(t).encode(), packet)
    }

    fn send_vnet(&self, hdr: &[u8], packet: &[u8]) -> io::Result<()> {
        let want = hdr.len() + packet.len();
        loop {
            match self.dev.send_vectored(&[io::IoSlice::new(hdr), io::IoSlice::new(packet)]) {
                Ok(n) if n == want => return Ok(()),
                Ok(n) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("short TUN write: {n} of {want} bytes"),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Write one packet. `EINTR` is retried; `WouldBlock` (queue full) is returned to the
    /// caller, which treats it as a loss on the link (TCP retransmits).
    #[inline]
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        if self.vnet {
            return self.send_vnet(&[0u8; super::vnet::VNET_HDR_LEN], packet);
        }
        loop {
            match self.dev.send(packet) {
                Ok(n) if n == packet.len() => return Ok(()),
                Ok(n) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("short TUN write: {n} of {} bytes", packet.len()),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dev.as_fd()
    }
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun").field("name", &self.name).field("fd", &self.as_raw_fd()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_config_without_touching_the_system() {
        let mut cfg = TunConfig {
            name: "a-name-that-is-far-too-long".into(),
            peer: Ipv4Addr::new(10, 77, 0, 1),
            prefix: 24,
            mtu: 1500,
            peer6: None,
            multi_queue: false,
        };
        assert_eq!(Tun::open(&cfg).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        cfg.name = "utcp0".into();
        cfg.prefix = 33;
        assert_eq!(Tun::open(&cfg).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        cfg.prefix = 24;
        cfg.mtu = 100;
        assert_eq!(Tun::open(&cfg).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
