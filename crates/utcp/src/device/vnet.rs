//! The virtio-net header that precedes every packet on a TUN opened with `IFF_VNET_HDR`
//! (Linux `include/uapi/linux/virtio_net.h`, `struct virtio_net_hdr`, 10 bytes; issue 12).
//!
//! ```text
//! u8  flags        NEEDS_CSUM (1): the L4 checksum field holds only the pseudo-header
//!                  sum; complete it from csum_start, field at csum_start + csum_offset.
//!                  DATA_VALID (2): the checksum was verified (receive side only).
//! u8  gso_type     NONE (0), TCPV4 (1), UDP (3), TCPV6 (4), UDP_L4 (5); ECN bit 0x80
//! u16 hdr_len      L3 + L4 header length of a GSO packet
//! u16 gso_size     payload bytes per segment of a GSO packet (the MSS)
//! u16 csum_start   where the checksummed region starts (the TCP header)
//! u16 csum_offset  offset of the checksum field within it (16 for TCP)
//! ```
//!
//! The 16-bit fields are in the host's byte order: the TUN driver uses the legacy virtio
//! rule (little-endian on little-endian hosts) unless `TUNSETVNETBE`/`LE` is called, which
//! this crate never does.
//!
//! What the kernel hands us (tun_put_user → virtio_net_hdr_from_skb): GSO super-segments
//! with `gso_type` TCPV4 and `NEEDS_CSUM`, small packets with `NEEDS_CSUM` (the local TCP
//! stack left the checksum to the "hardware") or `DATA_VALID`, or no flag (a full checksum).

use utcp_engine::Transmit;

/// Size of `struct virtio_net_hdr` (without the `num_buffers` of the mergeable variant).
pub const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum is partial (pseudo-header only).
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified.
pub const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP` (UFO).
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4` (USO).
pub const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`: the TCP packet has CWR set and each segment should keep ECN.
pub const GSO_ECN: u8 = 0x80;

/// One decoded `virtio_net_hdr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `F_NEEDS_CSUM`, `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_*`.
    pub gso_type: u8,
    /// IP + TCP header length of a GSO packet.
    pub hdr_len: u16,
    /// Payload bytes per segment of a GSO packet.
    pub gso_size: u16,
    /// Start of the region whose checksum the device completes.
    pub csum_start: u16,
    /// Offset of the checksum field within that region.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Decode the first [`VNET_HDR_LEN`] bytes; `None` when fewer are given.
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = b.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    /// Encode as the 10 bytes the TUN expects.
    pub fn encode(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// The header for an engine packet: a plain one (all checksums complete) or a TCP/IPv4
    /// super-segment the kernel cuts into `gso_size` pieces and checksums (TSO).
    pub fn for_transmit(t: &Transmit) -> VnetHdr {
        let mut h = VnetHdr::default();
        if let Some(start) = t.csum_start {
            h.flags = F_NEEDS_CSUM;
            h.csum_start = start as u16;
            h.csum_offset = utcp_engine::TCP_CSUM_OFFSET as u16;
        }
        if let Some(size) = t.segment_size {
            h.gso_type = GSO_TCPV4;
            h.gso_size = size as u16;
            h.hdr_len = t.header_len as u16;
        }
        h
    }

    /// Does the kernel vouch for the L4 checksum (so the engine must not verify it)?
    /// `NEEDS_CSUM`: the field is only the pseudo-header sum, a full check would fail.
    /// `DATA_VALID`: already verified.
    pub fn checksum_ok(&self) -> bool {
        self.flags & (F_NEEDS_CSUM | F_DATA_VALID) != 0
    }

    /// A GSO packet (more than one segment's worth in one read).
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_encode_round_trip_in_host_order() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 52,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        let b = h.encode();
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 1);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 1448);
        assert_eq!(VnetHdr::parse(&b), Some(h));
        assert_eq!(VnetHdr::parse(&b[..9]), None, "short");
        let mut longer = b.to_vec();
        longer.extend_from_slice(&[0x45, 0]);
        assert_eq!(VnetHdr::parse(&longer), Some(h), "the packet after it is ignored");
    }

    #[test]
    fn checksum_ok_only_for_needs_csum_or_data_valid() {
        let mut h = VnetHdr::default();
        assert!(!h.checksum_ok(), "no flag: the engine verifies");
        h.flags = F_NEEDS_CSUM;
        assert!(h.checksum_ok());
        h.flags = F_DATA_VALID;
        assert!(h.checksum_ok());
        h.flags = 4; // RSC_INFO alone
        assert!(!h.checksum_ok());
    }

    #[test]
    fn gso_types() {
        let mut h = VnetHdr::default();
        assert!(!h.is_gso());
        h.gso_type = GSO_ECN;
        assert!(!h.is_gso());
        for t in [GSO_TCPV4, GSO_TCPV6, GSO_UDP, GSO_UDP_L4, GSO_TCPV4 | GSO_ECN] {
            h.gso_type = t;
            assert!(h.is_gso(), "{t:#x}");
        }
    }

    #[test]
    fn header_for_a_plain_packet_is_all_zero() {
        let t = Transmit { len: 60, header_len: 52, segment_size: None, segments: 1, csum_start: None };
        assert_eq!(VnetHdr::for_transmit(&t).encode(), [0u8; VNET_HDR_LEN]);
    }

    #[test]
    fn header_for_a_super_segment_asks_for_tso_and_checksum() {
        let t = Transmit {
            len: 20 + 32 + 10 * 1448,
            header_len: 52,
            segment_size: Some(1448),
            segments: 10,
            csum_start: Some(20),
        };
        let h = VnetHdr::for_transmit(&t);
        assert_eq!(
            h,
            VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_TCPV4,
                hdr_len: 52,
                gso_size: 1448,
                csum_start: 20,
                csum_offset: 16
            }
        );
    }
}
