//! A small pcap reader: the classic libpcap file format (microsecond or nanosecond
//! stamps, either byte order) with raw IP (link types 101 and 228/229), Ethernet (1,
//! with 802.1Q tags) and Linux cooked capture (113 SLL, 276 SLL2). No libpcap.

use std::io;

/// One captured IP packet: its time stamp in microseconds and its IP header onwards.
pub struct Frame<'a> {
    pub time_us: u64,
    pub ip: &'a [u8],
}

/// Link-layer header types this reader understands (tcpdump's LINKTYPE_ values).
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LINUX_SLL: u32 = 113;
const LINKTYPE_IPV4: u32 = 228;
const LINKTYPE_IPV6: u32 = 229;
const LINKTYPE_LINUX_SLL2: u32 = 276;
/// The classic file's per-record header and a cap on one record (no allocation from input).
const RECORD_HEADER: usize = 16;
const MAX_RECORD: usize = 1 << 18;

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A parsed capture: the bytes stay in `data`, frames point into them.
pub struct Capture {
    data: Vec<u8>,
    big_endian: bool,
    nanos: bool,
    pub linktype: u32,
}

impl Capture {
    pub fn parse(data: Vec<u8>) -> io::Result<Capture> {
        if data.len() < 24 {
            return Err(bad("not a pcap file: shorter than its header"));
        }
        let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
        let (big_endian, nanos) = match magic {
            0xa1b2_c3d4 => (false, false),
            0xa1b2_3c4d => (false, true),
            0xd4c3_b2a1 => (true, false),
            0x4d3c_b2a1 => (true, true),
            0x0a0d_0d0a => return Err(bad("pcapng is not supported: convert with `editcap -F pcap`")),
            _ => return Err(bad("not a pcap file (bad magic)")),
        };
        let mut c = Capture { data, big_endian, nanos, linktype: 0 };
        c.linktype = c.u32_at(20) & 0x0fff_ffff;
        match c.linktype {
            LINKTYPE_ETHERNET | LINKTYPE_RAW | LINKTYPE_LINUX_SLL | LINKTYPE_IPV4 | LINKTYPE_IPV6
            | LINKTYPE_LINUX_SLL2 => Ok(c),
            l => Err(bad(format!("link type {l} is not supported (raw IP, Ethernet, Linux SLL are)"))),
        }
    }

    fn u32_at(&self, off: usize) -> u32 {
        let b: [u8; 4] = self.data[off..off + 4].try_into().unwrap();
        if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    }

    /// Every IP packet in the file, in file order. A truncated last record ends the list.
    pub fn frames(&self) -> Vec<Frame<'_>> {
        let mut out = Vec::new();
        let mut off = 24;
        while off + RECORD_HEADER <= self.data.len() {
            let (sec, frac, incl) = (self.u32_at(off), self.u32_at(off + 4), self.u32_at(off + 8) as usize);
            let start = off + RECORD_HEADER;
            if incl > MAX_RECORD || start + incl > self.data.len() {
                break;
            }
            let frac_us = if self.nanos { frac as u64 / 1000 } else { frac as u64 };
            let time_us = sec as u64 * 1_000_000 + frac_us;
            if let Some(ip) = strip_link(self.linktype, &self.data[start..start + incl]) {
                out.push(Frame { time_us, ip });
            }
            off = start + incl;
        }
        out
    }
}

/// The IP packet inside one link-layer frame, or None for anything else (ARP, ...).
fn strip_link(linktype: u32, f: &[u8]) -> Option<&[u8]> {
    let (ethertype, rest) = match linktype {
        LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 => return Some(f),
        LINKTYPE_ETHERNET => {
            let mut off = 12;
            let mut et = u16::from_be_bytes(f.get(off..off + 2)?.try_into().ok()?);
            // 802.1Q / 802.1ad tags.
            while et == 0x8100 || et == 0x88a8 {
                off += 4;
                et = u16::from_be_bytes(f.get(off..off + 2)?.try_into().ok()?);
            }
            (et, f.get(off + 2..)?)
        }
        LINKTYPE_LINUX_SLL => (u16::from_be_bytes(f.get(14..16)?.try_into().ok()?), f.get(16..)?),
        LINKTYPE_LINUX_SLL2 => (u16::from_be_bytes(f.get(0..2)?.try_into().ok()?), f.get(20..)?),
        _ => return None,
    };
    matches!(ethertype, 0x0800 | 0x86dd).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(linktype: u32, frames: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, linktype] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        for (i, f) in frames.iter().enumerate() {
            for x in [i as u32, 500, f.len() as u32, f.len() as u32] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v.extend_from_slice(f);
        }
        v
    }

    #[test]
    fn ethernet_frames_lose_their_header_and_arp_is_skipped() {
        let mut ip = vec![0u8; 12];
        ip.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 20]);
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 1, 2]);
        let c = Capture::parse(file(1, &[&ip, &arp])).unwrap();
        let f = c.frames();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].ip, &[0x45, 0, 0, 20]);
        assert_eq!(f[0].time_us, 500);
    }

    #[test]
    fn truncated_and_garbage_files_do_not_panic() {
        assert!(Capture::parse(vec![1, 2, 3]).is_err());
        let mut v = file(101, &[&[0x45; 40]]);
        v.truncate(v.len() - 3);
        assert_eq!(Capture::parse(v).unwrap().frames().len(), 0);
    }
}
