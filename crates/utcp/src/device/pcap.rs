//! Classic libpcap capture files of raw IP packets, readable by tcpdump and Wireshark.
//!
//! Format (little-endian, microsecond timestamps): a 24-byte global header
//! (magic 0xa1b2c3d4, version 2.4, thiszone 0, sigfigs 0, snaplen, link type) and per
//! packet a 16-byte record header (ts_sec, ts_usec, incl_len, orig_len) followed by
//! `incl_len` bytes. Link type 101 (LINKTYPE_RAW) means each packet starts with an IPv4 or
//! IPv6 header, which is exactly what a TUN device and the in-memory link carry.
//!
//! With TUN offload (issue 12) the capture shows what crossed the TUN: a TCP super-segment
//! is one record of its real length (at most 65535 bytes, within the snaplen), the
//! virtio-net header is not written, and a TCP checksum the kernel or the device completes
//! (`NEEDS_CSUM`) appears as the pseudo-header sum, so Wireshark's optional checksum
//! validation flags it, as it does for captures on a NIC with checksum offload.

use crate::time::Instant;
use std::io::{self, Write};

/// Magic number of microsecond-resolution pcap files.
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
/// LINKTYPE_RAW: raw IPv4/IPv6, no link-layer header.
pub const LINKTYPE_RAW: u32 = 101;
/// Largest number of bytes stored per packet; longer packets are truncated.
pub const SNAPLEN: u32 = 65535;

/// Writes a pcap stream to `W`.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header and returns the writer.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_MAGIC.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes()); // version_major
        h[6..8].copy_from_slice(&4u16.to_le_bytes()); // version_minor
        // thiszone (8..12) and sigfigs (12..16) stay 0.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Appends one packet stamped with `ts` (microseconds since the caller's epoch;
    /// pass wall-clock based instants for real dates in the viewer).
    pub fn write_packet(&mut self, ts: Instant, data: &[u8]) -> io::Result<()> {
        let us = ts.micros();
        let secs = u32::try_from(us / 1_000_000).unwrap_or(u32::MAX);
        self.write_packet_at(secs, (us % 1_000_000) as u32, data)
    }

    /// Appends one packet with an explicit `(seconds, microseconds)` timestamp.
    /// `usecs` above 999999 is carried into `secs`.
    pub fn write_packet_at(&mut self, secs: u32, usecs: u32, data: &[u8]) -> io::Result<()> {
        let secs = secs.saturating_add(usecs / 1_000_000);
        let usecs = usecs % 1_000_000;
        let orig_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(SNAPLEN);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&usecs.to_le_bytes());
        h[8..12].copy_from_slice(&incl_len.to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&data[..incl_len as usize])
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer (not flushed).
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Consumes the pcap writer, returning the underlying writer (not flushed).
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// A minimal IPv4/TCP SYN (checksums filled in) so a dissector has something real.
    fn syn_packet() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // IPv4
            0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0, // TCP
        ];
        let sum = |bytes: &[u8], init: u32| {
            let mut s = init;
            for c in bytes.chunks(2) {
                s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            !(s as u16)
        };
        let ip = sum(&p[..20], 0);
        p[10..12].copy_from_slice(&ip.to_be_bytes());
        let pseudo = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 20;
        let tcp = sum(&p[20..], pseudo);
        p[36..38].copy_from_slice(&tcp.to_be_bytes());
        p
    }

    #[test]
    fn global_and_record_headers() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let p1 = syn_packet();
        let p2 = [0x45u8, 1, 2, 3, 4];
        w.write_packet(Instant::from_micros(3_000_250), &p1).unwrap();
        w.write_packet_at(7, 1_000_005, &p2).unwrap();
        let b = w.into_inner();
        assert_eq!(b.len(), 24 + 16 + p1.len() + 16 + p2.len());
        assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u16::from_le_bytes([b[4], b[5]]), 2);
        assert_eq!(u16::from_le_bytes([b[6], b[7]]), 4);
        assert_eq!(le32(&b, 8), 0);
        assert_eq!(le32(&b, 12), 0);
        assert_eq!(le32(&b, 16), 65535);
        assert_eq!(le32(&b, 20), 101);
        // First record.
        assert_eq!(le32(&b, 24), 3);
        assert_eq!(le32(&b, 28), 250);
        assert_eq!(le32(&b, 32), p1.len() as u32);
        assert_eq!(le32(&b, 36), p1.len() as u32);
        assert_eq!(&b[40..40 + p1.len()], &p1[..]);
        // Second record: microseconds carried into seconds.
        let r2 = 40 + p1.len();
        assert_eq!(le32(&b, r2), 8);
        assert_eq!(le32(&b, r2 + 4), 5);
        assert_eq!(le32(&b, r2 + 8), 5);
        assert_eq!(le32(&b, r2 + 12), 5);
        assert_eq!(&b[r2 + 16..], &p2);
    }

    /// TUN offload (issue 12): the largest IPv4 super-segment (65535 bytes) is one whole
    /// record, not truncated and not split.
    #[test]
    fn largest_super_segment_is_one_whole_record() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let big = vec![0x45u8; 65_535];
        w.write_packet(Instant::ZERO, &big).unwrap();
        let b = w.into_inner();
        assert_eq!(le32(&b, 32), 65_535, "incl_len");
        assert_eq!(le32(&b, 36), 65_535, "orig_len");
        assert_eq!(b.len(), 24 + 16 + 65_535);
    }

    #[test]
    fn oversized_packet_truncated_to_snaplen() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let big = vec![0xabu8; 70_000];
        w.write_packet(Instant::ZERO, &big).unwrap();
        let b = w.into_inner();
        assert_eq!(le32(&b, 32), SNAPLEN);
        assert_eq!(le32(&b, 36), 70_000);
        assert_eq!(b.len(), 24 + 16 + SNAPLEN as usize);
    }
}
