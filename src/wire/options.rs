//! TCP options (RFC 9293 §3.2; RFC 7323; RFC 2018). OWNED BY THE WIRE HELPER.

use crate::seq::SeqNum;

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
    pub const fn new() -> Self {
        SackBlocks {
            blocks: [(SeqNum(0), SeqNum(0)); 4],
            len: 0,
        }
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
    pub fn as_slice(&self) -> &[(SeqNum, SeqNum)] {
        &self.blocks[..self.len as usize]
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
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
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr)
    pub timestamps: Option<(u32, u32)>,
    pub sack: SackBlocks,
}
