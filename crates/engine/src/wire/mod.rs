//! Wire layer: IPv4 ([`ipv4`]), IPv6 ([`ipv6`]) and TCP ([`tcp`]) headers, options,
//! checksums.
//!
//! Parsing ([`parse_ip_tcp`]) verifies the IP header and the TCP checksum and returns a
//! zero-copy [`TcpSegment`] view; emitting ([`emit_ip_tcp`]) writes a complete IP+TCP
//! packet into a caller-supplied buffer. Both use one TCP header representation,
//! [`TcpRepr`]. Neither allocates. Fragments of either family, which parsing refuses, are
//! reassembled by [`frag`] (one reused buffer per datagram).

pub mod checksum;
pub mod frag;
pub mod ipv4;
pub mod ipv6;
pub mod options;
pub mod packet;
pub mod tcp;

pub use options::{OptionLayout, SackBlocks, TcpOptions};
pub use packet::{
    TcpHeaderOut, TcpSegment, emit_ip_tcp, emit_ipv4_tcp, emit_ipv4_tcp_partial, emit_ipv6_tcp, parse_ip_tcp,
    parse_ip_tcp_checksum_ok, parse_ipv4_tcp, parse_ipv6_tcp,
};
pub use tcp::TcpRepr;

use core::fmt;

/// TCP control bits (RFC 9293 §3.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN: no more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN: synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST: reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH: push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK: the acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// URG: the urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECE: ECN-Echo (RFC 3168 §6.1).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// CWR: congestion window reduced (RFC 3168 §6.1).
    pub const CWR: TcpFlags = TcpFlags(0x80);
    /// No flag set.
    pub const NONE: TcpFlags = TcpFlags(0);

    #[inline]
    /// True if every bit of `other` is set in `self`.
    #[must_use]
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    #[inline]
    /// SYN is set.
    #[must_use]
    pub fn syn(self) -> bool {
        self.0 & 0x02 != 0
    }
    #[inline]
    /// ACK is set.
    #[must_use]
    pub fn ack(self) -> bool {
        self.0 & 0x10 != 0
    }
    #[inline]
    /// RST is set.
    #[must_use]
    pub fn rst(self) -> bool {
        self.0 & 0x04 != 0
    }
    #[inline]
    /// FIN is set.
    #[must_use]
    pub fn fin(self) -> bool {
        self.0 & 0x01 != 0
    }
    #[inline]
    /// PSH is set.
    #[must_use]
    pub fn psh(self) -> bool {
        self.0 & 0x08 != 0
    }
    #[inline]
    /// URG is set.
    #[must_use]
    pub fn urg(self) -> bool {
        self.0 & 0x20 != 0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// tcpdump-style flag letters: `S`, `F`, `R`, `P`, `U`, `E`, `W`, and `.` for ACK.
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for (bit, c) in [
            (0x02, 'S'),
            (0x01, 'F'),
            (0x04, 'R'),
            (0x08, 'P'),
            (0x20, 'U'),
            (0x40, 'E'),
            (0x80, 'W'),
            (0x10, '.'),
        ] {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
                any = true;
            }
        }
        if !any {
            write!(f, "none")?;
        }
        Ok(())
    }
}

/// Why a received packet was dropped before reaching a TCB, or by one. Counted in
/// [`crate::Counters`] the way `nstat` counts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum DropReason {
    /// Shorter than the headers it claims.
    Truncated,
    /// An IPv6 packet given to the IPv4-only parser (`parse_ipv4_tcp`); `parse_ip_tcp` and
    /// the Stack take IPv6.
    Ipv6,
    /// IP version neither 4 nor 6.
    BadIpVersion,
    /// IHL < 5 or beyond the packet.
    BadIhl,
    /// IPv4 total length smaller than the header or beyond the buffer.
    BadTotalLength,
    /// IPv4 header checksum mismatch.
    BadIpChecksum,
    /// MF set or fragment offset non-zero, with reassembly off
    /// (`Config::ipfrag_high_thresh` = 0).
    Fragment,
    /// Protocol other than TCP and ICMP (UDP, ...).
    NotTcp,
    /// TCP data offset < 5 or beyond the segment.
    BadDataOffset,
    /// TCP checksum mismatch.
    BadTcpChecksum,
    /// An option whose length is malformed or overflows the header.
    BadOption,
    /// Destination address is unspecified (0.0.0.0).
    BadAddress,
    /// Destination address is not one of ours.
    NotOurAddress,
    /// Failed the RFC 9293 §3.10.7.4 acceptability test (an ACK was sent if required).
    NotAcceptable,
    /// RST that did not match (RFC 5961 §3) or for no connection.
    BadRst,
    /// ACK acknowledging something not yet sent, or too old (RFC 5961 §5).
    BadAck,
    /// Timestamp older than TS.Recent (RFC 7323 §5 PAWS).
    Paws,
    /// Listener backlog full.
    ListenOverflow,
    /// No connection and no listener: answered with a RST (RFC 9293 §3.10.7.1).
    NoSocket,
    /// Segment in a state that discards it (e.g. data in CLOSE-WAIT, no SYN/RST/ACK in LISTEN).
    Ignored,

    // --- IPv4 reassembly (issue 9; `wire/frag.rs`) ---
    /// A fragment overlapping another of its datagram, or inconsistent with its last
    /// fragment: the whole datagram is dropped (RFC 5722 policy).
    FragOverlap,
    /// An exact duplicate of a fragment already held: that fragment alone is dropped.
    FragDuplicate,
    /// The datagram would exceed 65,535 bytes (RFC 791 §3.1).
    FragTooLarge,
    /// More fragments than `Config::ipfrag_max_fragments`.
    FragTooMany,
    /// Over `Config::ipfrag_high_thresh` bytes or `Config::ipfrag_max_datagrams` datagrams.
    FragMemory,
    /// Not complete within `Config::ipfrag_time` (RFC 1122 §3.3.2).
    FragTimeout,
    /// Empty, or a non-last fragment whose length is not a multiple of 8 (RFC 791 §3.2).
    FragMalformed,

    // ---- Martians (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7) ----
    /// Source is the limited broadcast address 255.255.255.255.
    MartianSrcBroadcast,
    /// Source is a multicast (224/4) address.
    MartianSrcMulticast,
    /// Source is 0.0.0.0.
    MartianSrcUnspecified,
    /// Source is loopback (127/8) or reserved class E (240/4).
    MartianSrcReserved,
    /// Destination is the limited broadcast address.
    MartianDstBroadcast,
    /// Destination is a multicast address.
    MartianDstMulticast,
    /// Source or destination is the subnet-directed broadcast of one of our addresses.
    MartianSubnetBroadcast,
    /// Source is one of our own addresses (LAND attack).
    Land,

    // ---- SYN queue / cookies (RFC 4987) ----
    /// An ACK to a listener whose SYN cookie did not validate.
    BadCookie,

    // ---- ICMP echo (issue 13; crates/engine/src/icmp.rs) ----
    /// ICMP message neither an echo request nor an error TCP acts on (replies, timestamps, ...).
    IcmpNotEcho,
    /// ICMP checksum mismatch (RFC 792).
    IcmpBadChecksum,
    /// Echo request larger than the MTU (or the transmit buffer): not answered.
    IcmpTooLarge,
    /// Echo request over `Config::icmp_echo_per_sec` (also counted in `icmp_rate_limited`).
    IcmpRateLimited,
    /// Echo request while the reply queue was full (the caller did not drain `poll_transmit`).
    IcmpQueueFull,

    // ---- IPv6 (issue 13; wire/ipv6.rs) ----
    /// A malformed, misplaced or unroutable extension header, or more than
    /// `ipv6::MAX_EXT_HEADERS` of them (RFC 8200 §4).
    Ipv6ExtHeader,
    /// An unrecognised option whose action bits say discard (RFC 8200 §4.2).
    Ipv6BadOption,
    /// A type 0 routing header with segments left (RFC 5095 §3).
    Ipv6RoutingType0,
    /// An atomic fragment: offset 0 and M = 0 (RFC 6946 context; utcp does not take them).
    Ipv6AtomicFragment,
    /// A jumbogram (RFC 2675 Jumbo Payload option).
    Ipv6Jumbogram,
    // ---- ICMP errors and PMTUD (issue 13; crates/engine/src/icmp_error.rs, tcb/pmtu.rs) ----
    /// An ICMP error TCP does not act on: source quench (RFC 6633), redirect, unknown code.
    IcmpIgnored,
    /// An ICMP error quoting something other than a readable IPv4+TCP header.
    IcmpNotTcp,
    /// An ICMP error naming no connection of ours.
    IcmpNoConnection,
    /// An ICMP error whose quoted SEG.SEQ is outside SND.UNA..SND.NXT (RFC 5927 §4.1).
    IcmpOutOfWindow,
    /// A Fragmentation Needed that cannot lower the path MTU (PMTUD off, or not smaller).
    IcmpPmtuIgnored,
}

impl DropReason {
    /// Every reason, in `index` order (for tables of drop counters).
    pub const ALL: [DropReason; 51] = [
        DropReason::Truncated,
        DropReason::Ipv6,
        DropReason::BadIpVersion,
        DropReason::BadIhl,
        DropReason::BadTotalLength,
        DropReason::BadIpChecksum,
        DropReason::Fragment,
        DropReason::NotTcp,
        DropReason::BadDataOffset,
        DropReason::BadTcpChecksum,
        DropReason::BadOption,
        DropReason::BadAddress,
        DropReason::NotOurAddress,
        DropReason::NotAcceptable,
        DropReason::BadRst,
        DropReason::BadAck,
        DropReason::Paws,
        DropReason::ListenOverflow,
        DropReason::NoSocket,
        DropReason::Ignored,
        // IPv4 reassembly
        DropReason::FragOverlap,
        DropReason::FragDuplicate,
        DropReason::FragTooLarge,
        DropReason::FragTooMany,
        DropReason::FragMemory,
        DropReason::FragTimeout,
        DropReason::FragMalformed,
        // Martians
        DropReason::MartianSrcBroadcast,
        DropReason::MartianSrcMulticast,
        DropReason::MartianSrcUnspecified,
        DropReason::MartianSrcReserved,
        DropReason::MartianDstBroadcast,
        DropReason::MartianDstMulticast,
        DropReason::MartianSubnetBroadcast,
        DropReason::Land,
        // SYN queue / cookies
        DropReason::BadCookie,
        // ICMP echo
        DropReason::IcmpNotEcho,
        DropReason::IcmpBadChecksum,
        DropReason::IcmpTooLarge,
        DropReason::IcmpRateLimited,
        DropReason::IcmpQueueFull,
        // IPv6
        DropReason::Ipv6ExtHeader,
        DropReason::Ipv6BadOption,
        DropReason::Ipv6RoutingType0,
        DropReason::Ipv6AtomicFragment,
        DropReason::Ipv6Jumbogram,
        // ICMP errors and PMTUD
        DropReason::IcmpIgnored,
        DropReason::IcmpNotTcp,
        DropReason::IcmpNoConnection,
        DropReason::IcmpOutOfWindow,
        DropReason::IcmpPmtuIgnored,
    ];
    /// Position of this reason in [`DropReason::ALL`] and in the drop counter table.
    pub fn index(self) -> usize {
        self as usize
    }
    /// The variant's name, as printed in counter dumps.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "Truncated",
            DropReason::Ipv6 => "Ipv6",
            DropReason::BadIpVersion => "BadIpVersion",
            DropReason::BadIhl => "BadIhl",
            DropReason::BadTotalLength => "BadTotalLength",
            DropReason::BadIpChecksum => "BadIpChecksum",
            DropReason::Fragment => "Fragment",
            DropReason::NotTcp => "NotTcp",
            DropReason::BadDataOffset => "BadDataOffset",
            DropReason::BadTcpChecksum => "BadTcpChecksum",
            DropReason::BadOption => "BadOption",
            DropReason::BadAddress => "BadAddress",
            DropReason::NotOurAddress => "NotOurAddress",
            DropReason::NotAcceptable => "NotAcceptable",
            DropReason::BadRst => "BadRst",
            DropReason::BadAck => "BadAck",
            DropReason::Paws => "Paws",
            DropReason::ListenOverflow => "ListenOverflow",
            DropReason::NoSocket => "NoSocket",
            DropReason::Ignored => "Ignored",
            // IPv4 reassembly
            DropReason::FragOverlap => "FragOverlap",
            DropReason::FragDuplicate => "FragDuplicate",
            DropReason::FragTooLarge => "FragTooLarge",
            DropReason::FragTooMany => "FragTooMany",
            DropReason::FragMemory => "FragMemory",
            DropReason::FragTimeout => "FragTimeout",
            DropReason::FragMalformed => "FragMalformed",
            DropReason::MartianSrcBroadcast => "MartianSrcBroadcast",
            DropReason::MartianSrcMulticast => "MartianSrcMulticast",
            DropReason::MartianSrcUnspecified => "MartianSrcUnspecified",
            DropReason::MartianSrcReserved => "MartianSrcReserved",
            DropReason::MartianDstBroadcast => "MartianDstBroadcast",
            DropReason::MartianDstMulticast => "MartianDstMulticast",
            DropReason::MartianSubnetBroadcast => "MartianSubnetBroadcast",
            DropReason::Land => "Land",
            DropReason::BadCookie => "BadCookie",
            DropReason::IcmpNotEcho => "IcmpNotEcho",
            DropReason::IcmpBadChecksum => "IcmpBadChecksum",
            DropReason::IcmpTooLarge => "IcmpTooLarge",
            DropReason::IcmpRateLimited => "IcmpRateLimited",
            DropReason::IcmpQueueFull => "IcmpQueueFull",
            DropReason::Ipv6ExtHeader => "Ipv6ExtHeader",
            DropReason::Ipv6BadOption => "Ipv6BadOption",
            DropReason::Ipv6RoutingType0 => "Ipv6RoutingType0",
            DropReason::Ipv6AtomicFragment => "Ipv6AtomicFragment",
            DropReason::Ipv6Jumbogram => "Ipv6Jumbogram",
            DropReason::IcmpIgnored => "IcmpIgnored",
            DropReason::IcmpNotTcp => "IcmpNotTcp",
            DropReason::IcmpNoConnection => "IcmpNoConnection",
            DropReason::IcmpOutOfWindow => "IcmpOutOfWindow",
            DropReason::IcmpPmtuIgnored => "IcmpPmtuIgnored",
        }
    }
}
