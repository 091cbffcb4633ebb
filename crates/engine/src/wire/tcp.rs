//! The TCP header (RFC 9293 §3.1), independent of the IP version underneath.
//!
//! [`TcpRepr`] is the one representation of a TCP header that both parsing and emitting
//! use (smoltcp's `Repr` is the model): [`TcpRepr::parse`] fills it from the bytes after
//! the IP header, [`TcpRepr::emit`] writes it back. The IP layer (`ipv4.rs`, `ipv6.rs`)
//! supplies the pseudo-header sum the checksum covers (RFC 9293 §3.1, RFC 8200 §8.1).
use super::checksum;
use super::options;
use super::{DropReason, OptionLayout, TcpFlags, TcpOptions};
use crate::seq::SeqNum;

/// IP protocol number / IPv6 next header of TCP (RFC 9293 §3.1).
pub const PROTO_TCP: u8 = 6;
/// Size of a TCP header without options (data offset 5).
pub const TCP_HEADER_LEN: usize = 20;

/// A TCP header: every field but the checksum and the data offset, which are derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcpRepr {
    /// TCP source port.
    pub src_port: u16,
    /// TCP destination port.
    pub dst_port: u16,
    /// SEG.SEQ: sequence number of the first octet (or of the SYN).
    pub seq: SeqNum,
    /// SEG.ACK: next sequence number the sender expects (valid if ACK is set; sent as
    /// zero unless it is).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// SEG.WND as on the wire, before window scaling (RFC 7323 §2.3).
    pub window: u16,
    /// SEG.UP, the urgent pointer (RFC 9293 §3.8.5).
    pub urgent: u16,
    /// TCP options.
    pub options: TcpOptions,
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl TcpRepr {
    /// Parse the TCP header at the start of `tcp` (header + data, exactly the IP payload)
    /// and verify its checksum against `pseudo`, the pseudo-header partial sum (which
    /// must include `tcp.len()`). Returns the header and its length (the data offset).
    ///
    /// Checks, in order: fixed header (`Truncated`), data offset (`BadDataOffset`),
    /// checksum (`BadTcpChecksum`), options (`BadOption`).
    pub fn parse(tcp: &[u8], pseudo: u64) -> Result<(TcpRepr, usize), DropReason> {
        Self::parse_with(tcp, Some(pseudo))
    }

    /// [`TcpRepr::parse`], verifying the checksum only when `pseudo` is given (`None`: the
    /// device vouched for it, TUN offload).
    pub fn parse_with(tcp: &[u8], pseudo: Option<u64>) -> Result<(TcpRepr, usize), DropReason> {
        if tcp.len() < TCP_HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        // RFC 9293 §3.1: data offset in 32-bit words, minimum 5.
        let doff = ((tcp[12] >> 4) as usize) * 4;
        if doff < TCP_HEADER_LEN || doff > tcp.len() {
            return Err(DropReason::BadDataOffset);
        }
        // RFC 9293 §3.1 "Checksum": over the pseudo-header, TCP header and data.
        if pseudo.is_some_and(|p| !checksum::verify(tcp, p)) {
            return Err(DropReason::BadTcpChecksum);
        }
        let mut repr = TcpRepr {
            src_port: be16(tcp, 0),
            dst_port: be16(tcp, 2),
            seq: SeqNum(be32(tcp, 4)),
            ack: SeqNum(be32(tcp, 8)),
            flags: TcpFlags(tcp[13]),
            window: be16(tcp, 14),
            urgent: be16(tcp, 18),
            options: TcpOptions::default(),
        };
        options::parse_into(&tcp[TCP_HEADER_LEN..doff], &mut repr.options)?;
        Ok((repr, doff))
    }

    /// Header length once the options are laid out per `layout`.
    #[must_use]
    pub fn header_len(&self, layout: OptionLayout) -> usize {
        TCP_HEADER_LEN + options::emitted_len(&self.options, layout)
    }

    /// Write the header with `opts` (this header's options, encoded once by the caller
    /// with `options::encode`) and the payload slices into `tcp`, which must be exactly
    /// header + payload long, and fill the checksum from `pseudo` (the pseudo-header
    /// partial sum, length included). Returns false, writing nothing, if `tcp` has the
    /// wrong length.
    pub fn emit(
        &self,
        tcp: &mut [u8],
        opts: &options::EncodedOptions,
        payload: &[&[u8]],
        pseudo: u64,
    ) -> bool {
        self.emit_with(tcp, opts, payload, pseudo, true)
    }

    /// [`TcpRepr::emit`]; with `full_csum` false the checksum field gets only `pseudo`,
    /// folded and not complemented, for a device to complete (virtio-net `NEEDS_CSUM`).
    pub fn emit_with(
        &self,
        tcp: &mut [u8],
        opts: &options::EncodedOptions,
        payload: &[&[u8]],
        pseudo: u64,
        full_csum: bool,
    ) -> bool {
        let hdr_len = TCP_HEADER_LEN + opts.as_bytes().len();
        let payload_len: usize = payload.iter().map(|p| p.len()).sum();
        if tcp.len() != hdr_len + payload_len {
            return false;
        }
        // RFC 9293 §3.1 header (checksum field 0 while summing), as five 32-bit words
        // summed in registers rather than re-read from `tcp` after narrow stores.
        let words = [
            (self.src_port as u32) << 16 | self.dst_port as u32,
            self.seq.0,
            self.ack.0,
            ((hdr_len as u32 / 4) << 28) | (self.flags.0 as u32) << 16 | self.window as u32,
            self.urgent as u32,
        ];
        for (k, w) in words.iter().enumerate() {
            tcp[4 * k..4 * k + 4].copy_from_slice(&w.to_be_bytes());
        }
        tcp[TCP_HEADER_LEN..hdr_len].copy_from_slice(opts.as_bytes());
        let mut at = hdr_len;
        for p in payload {
            tcp[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        if !full_csum {
            tcp[16..18].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
            return true;
        }
        // The options are a multiple of 4 bytes, so the data starts at an even offset as
        // `checksum::sum` requires.
        let mut acc = pseudo + words.iter().map(|&w| w as u64).sum::<u64>();
        // The options (padded to whole 32-bit words) summed as such, like the header words
        // (2^16 ≡ 1 mod 2^16 - 1); a remainder, were there one, by the general sum.
        let mut ow = opts.as_bytes().chunks_exact(4);
        for w in &mut ow {
            acc += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
        }
        if !ow.remainder().is_empty() {
            acc = checksum::sum(ow.remainder(), acc);
        }
        if payload_len > 0 {
            acc = checksum::sum(&tcp[hdr_len..], acc);
        }
        let c = checksum::finish(acc);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        true
    }
}
