//! TCP options (RFC 9293 §3.2; RFC 7323; RFC 2018). OWNED BY THE WIRE HELPER.

use super::DropReason;
use crate::seq::SeqNum;
use core::fmt;

/// How options are ordered on the wire. Receivers accept any order; this only matters
/// to match a host's exact layout (the packetdrill profiles).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum OptionLayout {
    /// SYN: `mss, sackOK, TS, nop, wscale`; data: `nop, nop, TS` then `nop, nop, sack ...`.
    #[default]
    Linux,
    /// SYN: `mss, nop, wscale, sackOK, TS`; data: `nop, nop, TS` then `nop, nop, sack ...`.
    FreeBsd,
}

/// Up to four SACK blocks `[start, end)` (RFC 2018 §3).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SackBlocks {
    blocks: [(SeqNum, SeqNum); 4],
    len: u8,
}

impl SackBlocks {
    /// No blocks.
    pub const fn new() -> Self {
        SackBlocks { blocks: [(SeqNum(0), SeqNum(0)); 4], len: 0 }
    }
    /// Append a block; returns false when all four slots are used.
    pub fn push(&mut self, start: SeqNum, end: SeqNum) -> bool {
        if self.len as usize >= self.blocks.len() {
            return false;
        }
        self.blocks[self.len as usize] = (start, end);
        self.len += 1;
        true
    }
    /// The blocks held, in the order pushed.
    pub fn as_slice(&self) -> &[(SeqNum, SeqNum)] {
        &self.blocks[..self.len as usize]
    }
    /// Number of blocks held (0 to 4).
    pub fn len(&self) -> usize {
        self.len as usize
    }
    /// True when no block is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Remove all blocks.
    pub fn clear(&mut self) {
        self.len = 0;
    }
    /// Keep at most `n` blocks.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n as u8);
    }
}

/// The options of one segment, parsed or to be emitted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TcpOptions {
    /// Maximum Segment Size, bytes (RFC 9293 §3.7.1); only on SYNs.
    pub mss: Option<u16>,
    /// Window scale shift count (RFC 7323 §2); only on SYNs.
    pub window_scale: Option<u8>,
    /// SACK-permitted (RFC 2018 §2); only on SYNs.
    pub sack_permitted: bool,
    /// (TSval, TSecr)
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks (RFC 2018 §3).
    pub sack: SackBlocks,
}

// Option kinds (RFC 9293 §3.2, RFC 7323 §2-3, RFC 2018 §2-3).
const KIND_EOL: u8 = 0;
const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WSCALE: u8 = 3;
const KIND_SACK_PERMITTED: u8 = 4;
const KIND_SACK: u8 = 5;
const KIND_TIMESTAMPS: u8 = 8;

/// Largest window shift (RFC 7323 §2.3).
pub const MAX_WINDOW_SCALE: u8 = 14;
/// Maximum length of the TCP options area (data offset 15 → 60-byte header).
pub const MAX_OPTIONS_LEN: usize = 40;

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Parse the options area of a TCP header (the bytes between the 20-byte fixed header and
/// the data offset). Returns `Err(BadOption)` when an option's length byte is missing,
/// < 2, runs past the area, or does not match the fixed length of a known kind.
/// Unknown kinds are skipped by their length (RFC 9293 §3.2: "must be prepared to handle
/// an illegal option length"); EOL ends parsing; duplicate options: the last one wins.
pub fn parse(area: &[u8]) -> Result<TcpOptions, DropReason> {
    let mut opts = TcpOptions::default();
    parse_into(area, &mut opts)?;
    Ok(opts)
}

/// [`parse`] into an existing (default-initialised) `TcpOptions`, so the packet parser can
/// fill the segment it returns in place.
#[inline(always)]
pub fn parse_into(area: &[u8], opts: &mut TcpOptions) -> Result<(), DropReason> {
    // Fast path for the layout nearly every data segment carries (RFC 7323 Appendix A:
    // NOP, NOP, TS aligned on a 32-bit boundary).
    if area.len() == 12 && area[..4] == [KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10] {
        opts.timestamps = Some((be32(&area[4..8]), be32(&area[8..12])));
        return Ok(());
    }
    let mut i = 0usize;
    while i < area.len() {
        let kind = area[i];
        match kind {
            KIND_EOL => break,
            KIND_NOP => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(&len) = area.get(i + 1) else {
            return Err(DropReason::BadOption);
        };
        let len = len as usize;
        if len < 2 || len > area.len() - i {
            return Err(DropReason::BadOption);
        }
        let body = &area[i + 2..i + len];
        match kind {
            // RFC 9293 §3.2: MSS, length 4.
            KIND_MSS => {
                if len != 4 {
                    return Err(DropReason::BadOption);
                }
                opts.mss = Some(be16(body));
            }
            // RFC 7323 §2.2: window scale, length 3; §2.3: shift > 14 is treated as 14.
            KIND_WSCALE => {
                if len != 3 {
                    return Err(DropReason::BadOption);
                }
                opts.window_scale = Some(body[0].min(MAX_WINDOW_SCALE));
            }
            // RFC 2018 §2: SACK-permitted, length 2.
            KIND_SACK_PERMITTED => {
                if len != 2 {
                    return Err(DropReason::BadOption);
                }
                opts.sack_permitted = true;
            }
            // RFC 2018 §3: SACK, length 2 + 8n, n = 1..=4 (fits in 40 bytes).
            KIND_SACK => {
                if !(len - 2).is_multiple_of(8) || !(10..=34).contains(&len) {
                    return Err(DropReason::BadOption);
                }
                opts.sack.clear();
                for b in body.chunks_exact(8) {
                    opts.sack.push(SeqNum(be32(&b[..4])), SeqNum(be32(&b[4..])));
                }
            }
            // RFC 7323 §3.2: timestamps, length 10.
            KIND_TIMESTAMPS => {
                if len != 10 {
                    return Err(DropReason::BadOption);
                }
                opts.timestamps = Some((be32(&body[..4]), be32(&body[4..])));
            }
            _ => {}
        }
        i += len;
    }
    Ok(())
}

/// Options laid out on the wire: at most 40 bytes, padded to a multiple of 4.
pub struct EncodedOptions {
    buf: [u8; MAX_OPTIONS_LEN],
    len: usize,
}

impl EncodedOptions {
    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
    fn nop_until(&mut self, rem: usize) {
        while self.len % 4 != rem {
            self.put(&[KIND_NOP]);
        }
    }
    fn timestamps(&mut self, (val, ecr): (u32, u32)) {
        self.put(&[KIND_TIMESTAMPS, 10]);
        self.put(&val.to_be_bytes());
        self.put(&ecr.to_be_bytes());
    }
    /// SACK blocks that fit in what is left (header of 2 bytes plus 8 per block), after
    /// two NOPs of alignment (RFC 2018 §3: at most 3 blocks with timestamps, 4 without).
    fn sack(&mut self, sack: &SackBlocks) {
        if sack.is_empty() {
            return;
        }
        let pad = (6 - self.len % 4) % 4; // bring len to ≡ 2 (mod 4)
        let room = MAX_OPTIONS_LEN.saturating_sub(self.len + pad + 2) / 8;
        let n = sack.len().min(room);
        if n == 0 {
            return;
        }
        self.nop_until(2);
        self.put(&[KIND_SACK, (2 + 8 * n) as u8]);
        for &(start, end) in &sack.as_slice()[..n] {
            self.put(&start.0.to_be_bytes());
            self.put(&end.0.to_be_bytes());
        }
    }
}

/// Lay out `opts` in the byte order `layout` prescribes. Always ≤ 40 bytes and a
/// multiple of 4; SACK blocks that do not fit are dropped from the end.
pub fn encode(opts: &TcpOptions, layout: OptionLayout) -> EncodedOptions {
    let mut w = EncodedOptions { buf: [0; MAX_OPTIONS_LEN], len: 0 };
    match layout {
        // Linux tcp_options_write order: every option is packed in 32-bit words.
        OptionLayout::Linux => {
            if let Some(mss) = opts.mss {
                w.put(&[KIND_MSS, 4]);
                w.put(&mss.to_be_bytes());
            }
            if let Some(ts) = opts.timestamps {
                if opts.sack_permitted {
                    w.put(&[KIND_SACK_PERMITTED, 2]);
                } else {
                    w.put(&[KIND_NOP, KIND_NOP]);
                }
                w.timestamps(ts);
            } else if opts.sack_permitted {
                w.put(&[KIND_NOP, KIND_NOP, KIND_SACK_PERMITTED, 2]);
            }
            if let Some(ws) = opts.window_scale {
                w.put(&[KIND_NOP, KIND_WSCALE, 3, ws]);
            }
            w.sack(&opts.sack);
        }
        // FreeBSD tcp_addoptions order: mss, nop+wscale, sackOK, TS (NOP-aligned so the
        // values are 4-aligned), SACK; tail padded with EOL.
        OptionLayout::FreeBsd => {
            if let Some(mss) = opts.mss {
                w.put(&[KIND_MSS, 4]);
                w.put(&mss.to_be_bytes());
            }
            if let Some(ws) = opts.window_scale {
                w.put(&[KIND_NOP, KIND_WSCALE, 3, ws]);
            }
            if opts.sack_permitted {
                w.put(&[KIND_SACK_PERMITTED, 2]);
            }
            if let Some(ts) = opts.timestamps {
                w.nop_until(2);
                w.timestamps(ts);
            }
            w.sack(&opts.sack);
        }
    }
    // RFC 9293 §3.1: the header is padded with zeros (EOL) to a 32-bit boundary.
    while !w.len.is_multiple_of(4) {
        w.put(&[KIND_EOL]);
    }
    w
}

/// Length in bytes of the options [`encode`] emits for `opts` (padded to a multiple of 4),
/// so a sender can compute the payload room of a segment (MSS minus options).
pub fn emitted_len(opts: &TcpOptions, layout: OptionLayout) -> usize {
    encode(opts, layout).len
}

/// packetdrill-style rendering, in Linux wire order (mss, sackOK, TS, wscale, sack) with
/// the NOPs Linux emits: `<mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>`,
/// `<nop,nop,TS val 5 ecr 6,nop,nop,sack 1:2 3:4>`. Empty options print nothing.
impl fmt::Display for TcpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items = 0usize;
        let mut item = |f: &mut fmt::Formatter<'_>, args: fmt::Arguments<'_>| {
            let sep = if items == 0 { "<" } else { "," };
            items += 1;
            write!(f, "{sep}{args}")
        };
        if let Some(mss) = self.mss {
            item(f, format_args!("mss {mss}"))?;
        }
        if let Some((val, ecr)) = self.timestamps {
            if self.sack_permitted {
                item(f, format_args!("sackOK"))?;
            } else {
                item(f, format_args!("nop,nop"))?;
            }
            item(f, format_args!("TS val {val} ecr {ecr}"))?;
        } else if self.sack_permitted {
            item(f, format_args!("nop,nop,sackOK"))?;
        }
        if let Some(ws) = self.window_scale {
            item(f, format_args!("nop,wscale {ws}"))?;
        }
        if !self.sack.is_empty() {
            item(f, format_args!("nop,nop,sack"))?;
            for (start, end) in self.sack.as_slice() {
                write!(f, " {}:{}", start.0, end.0)?;
            }
        }
        if items > 0 {
            write!(f, ">")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sack_of(blocks: &[(u32, u32)]) -> SackBlocks {
        let mut s = SackBlocks::new();
        for &(a, b) in blocks {
            assert!(s.push(SeqNum(a), SeqNum(b)));
        }
        s
    }

    #[test]
    fn parse_linux_syn() {
        let area = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];
        let o = parse(&area).expect("valid");
        assert_eq!(o.mss, Some(1460));
        assert!(o.sack_permitted);
        assert_eq!(o.timestamps, Some((1, 0)));
        assert_eq!(o.window_scale, Some(7));
        assert!(o.sack.is_empty());
        assert_eq!(o.to_string(), "<mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>");
        // Encoding it back in Linux layout gives the same bytes.
        assert_eq!(encode(&o, OptionLayout::Linux).as_bytes(), &area);
    }

    #[test]
    fn freebsd_syn_layout() {
        let o = TcpOptions {
            mss: Some(1460),
            window_scale: Some(6),
            sack_permitted: true,
            timestamps: Some((0x01020304, 0)),
            sack: SackBlocks::new(),
        };
        let want = [2, 4, 0x05, 0xb4, 1, 3, 3, 6, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0];
        assert_eq!(encode(&o, OptionLayout::FreeBsd).as_bytes(), &want);
        assert_eq!(emitted_len(&o, OptionLayout::FreeBsd), 20);
        // Without TS: mss, nop, wscale, sackOK, then EOL padding.
        let o2 = TcpOptions { timestamps: None, ..o };
        assert_eq!(
            encode(&o2, OptionLayout::FreeBsd).as_bytes(),
            &[2, 4, 0x05, 0xb4, 1, 3, 3, 6, 4, 2, 0, 0]
        );
        // mss + TS only: NOP NOP keep TS values aligned.
        let o3 = TcpOptions { window_scale: None, sack_permitted: false, ..o };
        assert_eq!(
            encode(&o3, OptionLayout::FreeBsd).as_bytes(),
            &[2, 4, 0x05, 0xb4, 1, 1, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0]
        );
    }

    #[test]
    fn linux_syn_without_ts() {
        let o = TcpOptions {
            mss: Some(536),
            window_scale: Some(0),
            sack_permitted: true,
            ..TcpOptions::default()
        };
        assert_eq!(encode(&o, OptionLayout::Linux).as_bytes(), &[2, 4, 0x02, 0x18, 1, 1, 4, 2, 1, 3, 3, 0]);
        assert_eq!(o.to_string(), "<mss 536,nop,nop,sackOK,nop,wscale 0>");
    }

    #[test]
    fn data_segment_layouts_agree() {
        let o = TcpOptions {
            timestamps: Some((5, 6)),
            sack: sack_of(&[(1, 2), (3, 4)]),
            ..TcpOptions::default()
        };
        let want = [
            1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
        ];
        for layout in [OptionLayout::Linux, OptionLayout::FreeBsd] {
            assert_eq!(encode(&o, layout).as_bytes(), &want);
        }
        assert_eq!(o.to_string(), "<nop,nop,TS val 5 ecr 6,nop,nop,sack 1:2 3:4>");
        assert_eq!(TcpOptions::default().to_string(), "");
        assert_eq!(emitted_len(&TcpOptions::default(), OptionLayout::Linux), 0);
    }

    #[test]
    fn sack_blocks_limited_to_40_bytes() {
        let four = sack_of(&[(1, 2), (3, 4), (5, 6), (7, 8)]);
        let with_ts = TcpOptions { timestamps: Some((1, 1)), sack: four, ..Default::default() };
        for layout in [OptionLayout::Linux, OptionLayout::FreeBsd] {
            let e = encode(&with_ts, layout);
            assert_eq!(e.as_bytes().len(), 12 + 4 + 24);
            let back = parse(e.as_bytes()).expect("parses");
            assert_eq!(back.sack.as_slice(), &four.as_slice()[..3]);
            let no_ts = TcpOptions { sack: four, ..Default::default() };
            let e = encode(&no_ts, layout);
            assert_eq!(e.as_bytes().len(), 36);
            assert_eq!(parse(e.as_bytes()).expect("parses").sack, four);
        }
    }

    #[test]
    fn eol_stops_parsing() {
        // MSS, EOL, then garbage that would be BadOption if parsed.
        let o = parse(&[2, 4, 1, 0, 0, 5, 1, 0]).expect("EOL ends the list");
        assert_eq!(o.mss, Some(256));
        assert!(o.sack.is_empty());
    }

    #[test]
    fn unknown_option_skipped() {
        // Kind 30 (MPTCP) len 6, then wscale 20 → clamped to 14 (RFC 7323 §2.3).
        let o = parse(&[30, 6, 9, 9, 9, 9, 3, 3, 20, 1]).expect("valid");
        assert_eq!(o.window_scale, Some(14));
        assert_eq!(o.mss, None);
    }

    #[test]
    fn malformed_lengths() {
        for bad in [
            &[30u8, 0][..],            // len 0
            &[30, 1, 1, 1],            // len 1
            &[30],                     // kind without length byte
            &[2, 4, 1],                // runs past the area
            &[1, 1, 1, 30, 8, 0, 0],   // unknown kind overflowing
            &[2, 3, 1, 1],             // MSS wrong length
            &[3, 4, 1, 1],             // wscale wrong length
            &[4, 3, 1, 1],             // sackOK wrong length
            &[8, 8, 0, 0, 0, 0, 0, 0], // TS wrong length
        ] {
            assert_eq!(parse(bad), Err(DropReason::BadOption), "{bad:?}");
        }
    }

    #[test]
    fn sack_lengths() {
        let mut area = [0u8; 40];
        area[0] = 5;
        for len in 0..=40u8 {
            area[1] = len;
            let ok = matches!(len, 10 | 18 | 26 | 34);
            let r = parse(&area[..(len as usize).max(2)]);
            assert_eq!(r.is_ok(), ok, "len {len}");
            if let Ok(o) = r {
                assert_eq!(o.sack.len(), (len as usize - 2) / 8);
            }
        }
    }

    #[test]
    fn duplicates_last_wins() {
        let o =
            parse(&[2, 4, 0, 1, 2, 4, 0, 2, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 5, 10, 0, 0, 0, 3, 0, 0, 0, 4])
                .expect("valid");
        assert_eq!(o.mss, Some(2));
        assert_eq!(o.sack.as_slice(), &[(SeqNum(3), SeqNum(4))]);
    }
}
