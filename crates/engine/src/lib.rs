//! The sans-IO TCP engine: a [`Stack`] of TCBs keyed by [`Quad`].
//!
//! It takes time as an argument and packets as bytes, and hands back packets
//! ([`Stack::poll_transmit`]), timer deadlines ([`Stack::poll_timeout`]) and
//! events ([`Stack::poll_event`]). It owns no threads, sockets or clocks.
//!
//! Layers, in the order a segment meets them: [`wire`] (header views and builders,
//! options, checksums) → [`Stack`] (demux by [`Quad`], listeners, RST rules, ISN)
//! → the TCB state machine (`tcb`, split by concern) → [`wire`] again on the way out.
//! [`seq`] and [`time`] hold the sequence-number and virtual-time arithmetic.
//!
//! # Example: two stacks on a virtual clock
//!
//! Stack `a` connects to a listener on stack `b`; a helper moves every packet one
//! stack emits into the other until both are quiet. `a` sends five bytes, both close,
//! and virtual time runs until every timer (delayed ACK, TIME-WAIT) has fired.
//!
//! ```
//! use std::net::SocketAddr;
//! use utcp_engine::{time::Instant, Config, Event, Stack};
//!
//! /// Deliver packets both ways until neither stack has one to send.
//! fn shuttle(now: Instant, a: &mut Stack, b: &mut Stack) {
//!     let mut buf = [0u8; 2048];
//!     loop {
//!         let mut moved = false;
//!         while let Some(n) = a.poll_transmit(now, &mut buf) {
//!             b.handle_packet(now, &buf[..n]);
//!             moved = true;
//!         }
//!         while let Some(n) = b.poll_transmit(now, &mut buf) {
//!             a.handle_packet(now, &buf[..n]);
//!             moved = true;
//!         }
//!         if !moved {
//!             return;
//!         }
//!     }
//! }
//!
//! let a_addr: SocketAddr = "10.0.0.1:40000".parse().unwrap();
//! let b_addr: SocketAddr = "10.0.0.2:80".parse().unwrap();
//! let (mut a, mut b) = (Stack::new(Config::deterministic(1)), Stack::new(Config::deterministic(2)));
//! let mut now = Instant::ZERO;
//!
//! // Three-way handshake (RFC 9293 §3.5).
//! let listener = b.listen(b_addr, 8)?;
//! let ca = a.connect(now, a_addr, b_addr)?;
//! shuttle(now, &mut a, &mut b);
//! assert_eq!(a.poll_event(), Some(Event::Connected(ca)));
//! let (cb, peer) = b.accept(listener)?;
//! assert_eq!(peer, a_addr);
//!
//! // Data, then CLOSE on both sides.
//! assert_eq!(a.send(ca, b"hello")?, 5);
//! shuttle(now, &mut a, &mut b);
//! let mut got = [0u8; 16];
//! let n = b.recv(cb, &mut got)?;
//! assert_eq!(&got[..n], b"hello");
//! a.close(ca);
//! shuttle(now, &mut a, &mut b);
//! assert_eq!(b.recv(cb, &mut got)?, 0, "EOF after the peer's FIN");
//! b.close(cb);
//! shuttle(now, &mut a, &mut b);
//!
//! // Run the virtual clock until no timer is left (bounded).
//! for _ in 0..100 {
//!     let Some(t) = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min() else { break };
//!     now = now.max(t);
//!     a.handle_timeout(now);
//!     b.handle_timeout(now);
//!     shuttle(now, &mut a, &mut b);
//! }
//! // Both handles were released by `close`; TIME-WAIT on `a` has expired.
//! assert_eq!((a.state(ca), b.state(cb)), (None, None));
//! assert_eq!(a.connection_count() + a.time_wait_count() + b.connection_count(), 0);
//! # Ok::<(), std::io::Error>(())
//! ```
#![warn(missing_docs)]

mod ack_queue;
pub mod anyip;
pub mod config;
mod config_builder;
pub mod counters;
pub mod error;
pub mod explain;
mod gate;
pub mod isn;
pub mod memory;
mod minmax;
pub mod observe;
pub mod seq;
pub mod stack;
pub mod tcb;
pub mod time;
pub mod timewait;
pub mod wire;

pub use anyip::AnyIpFilter;

// SYN queue / cookies (RFC 4987)
pub mod syncookie;
// SYN flood (issue 9): Quad hashing by whole words.
mod quad_hash;
// Martians (RFC 1122 §3.2.1.3)
pub mod martian;
// ICMP echo (RFC 792, RFC 1122 §3.2.2.6)
pub mod icmp;
// ICMP errors for TCP (issue 13).
pub mod icmp_error;

pub use config::{Config, Keepalive, SynCookies};
pub use counters::Counters;
pub use error::{ConnectError, ListenError, RecvError, SendError};
pub use explain::TxReason;
pub use observe::CcPhase;
pub use stack::Stack;
// TUN offload (issue 12): what Stack::poll_transmit_gso writes.
pub use stack::gso::{TCP_CSUM_OFFSET, Transmit};
pub use tcb::State;

use std::net::SocketAddr;

/// A connection's identity: local and remote socket addresses (RFC 9293 §3.2 "socket pair").
/// `Hash` is written out in `quad_hash.rs` (whole words: the demux lookup runs for every
/// segment and every SYN).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Quad {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

/// Handle of a connection inside a [`Stack`]. Stale handles are detected by generation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ConnId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// Handle of a listening endpoint inside a [`Stack`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ListenerId(pub(crate) u32);

/// Why a connection reached CLOSED.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// Both FINs exchanged and acknowledged (possibly via TIME-WAIT).
    Normal,
    /// The peer reset the connection in a synchronized state.
    Reset,
    /// Our SYN was answered by a RST.
    Refused,
    /// Retransmissions or keepalive probes gave up.
    TimedOut,
    /// The local user aborted (or closed with unread data, RFC 2525 §2.17).
    Aborted,
    // --- ICMP errors (issue 13; RFC 1122 §4.2.3.9, RFC 9293 MUST-47) ---
    /// An ICMP host unreachable (or administratively prohibited, time exceeded, parameter
    /// problem): a hard error in the handshake, or the last soft error when we timed out.
    HostUnreachable,
    /// An ICMP network unreachable, the last soft error when we timed out.
    NetworkUnreachable,
}

impl CloseReason {
    /// The `io::ErrorKind` std would report for this reason, if it is an error.
    #[must_use]
    pub fn error_kind(self) -> Option<std::io::ErrorKind> {
        use std::io::ErrorKind::*;
        match self {
            CloseReason::Normal => None,
            CloseReason::Reset => Some(ConnectionReset),
            CloseReason::Refused => Some(ConnectionRefused),
            CloseReason::TimedOut => Some(TimedOut),
            CloseReason::Aborted => Some(ConnectionAborted),
            CloseReason::HostUnreachable => Some(HostUnreachable),
            CloseReason::NetworkUnreachable => Some(NetworkUnreachable),
        }
    }
}

/// What the engine tells its user, drained with [`Stack::poll_event`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Event {
    /// An active OPEN reached ESTABLISHED.
    Connected(ConnId),
    /// A listener has a connection ready for `accept`.
    Incoming(ListenerId),
    /// A gated listener holds a new SYN (`Stack::poll_held_syn`, then `accept_syn` or
    /// `refuse_syn`); see `Stack::set_handshake_gate`.
    SynArrived(ListenerId),
    /// New data (or EOF) can be read.
    Readable(ConnId),
    /// Send-buffer space became free.
    Writable(ConnId),
    /// The connection reached CLOSED. The handle stays valid until `close`/`abort` releases it.
    Closed(ConnId, CloseReason),
    /// The peer sent urgent data (RFC 9293 §3.8.5, MUST-32): its urgent pointer moved ahead
    /// of what the user has read. Raised once per continuous stretch of urgent data; the
    /// data itself stays inline (RFC 6093), and `Status::urgent_remaining` says how much
    /// of what `recv` returns next is urgent.
    Urgent(ConnId),
    /// A state transition, emitted only when `Config::trace_states` is set.
    StateChange {
        /// The connection.
        conn: ConnId,
        /// Its socket pair.
        quad: Quad,
        /// State before the transition.
        from: State,
        /// State after the transition.
        to: State,
    },
}

/// Result of the STATUS user call (RFC 9293 §3.10.6).
#[derive(Clone, Copy, Debug)]
pub struct Status {
    /// Connection state (RFC 9293 §3.3.2).
    pub state: State,
    /// The socket pair.
    pub quad: Quad,
    /// SND.UNA: oldest unacknowledged sequence number.
    pub snd_una: u32,
    /// SND.NXT: next sequence number to send.
    pub snd_nxt: u32,
    /// SND.WND: the peer's window, bytes, after scaling.
    pub snd_wnd: u32,
    /// RCV.NXT: next sequence number expected.
    pub rcv_nxt: u32,
    /// RCV.WND: our receive window, bytes, after scaling.
    pub rcv_wnd: u32,
    /// Congestion window, bytes (RFC 5681 §2).
    pub cwnd: u32,
    /// Slow-start threshold, bytes (RFC 5681 §2); `u32::MAX` when unset.
    pub ssthresh: u32,
    /// Smoothed RTT, microseconds (RFC 6298 §2); 0 before the first sample.
    pub srtt_us: u64,
    /// Current retransmission timeout, microseconds (RFC 6298 §2).
    pub rto_us: u64,
    /// Send MSS in use (effective, RFC 9293 §3.7.1), bytes.
    pub mss: u16,
    /// Negotiated options, as in Linux `tcpi_options`: 1 = TS, 2 = SACK, 4 = WSCALE.
    pub options: u8,
    /// Shift the peer applies to the windows it sends (RFC 7323 §2.3).
    pub snd_wscale: u8,
    /// Shift we apply to the windows we send (RFC 7323 §2.3).
    pub rcv_wscale: u8,
    /// In-order bytes the user can read now.
    pub bytes_readable: usize,
    /// Urgent data not yet read (RFC 9293 §3.8.5, MUST-33): the bytes from the next one
    /// `recv` returns up to the peer's urgent pointer (RCV.UP, RFC 6093 §4: it points
    /// after the last urgent octet), whether or not they have arrived yet; 0 when none.
    pub urgent_remaining: u32,
    /// Queued bytes not yet sent.
    pub bytes_unsent: usize,
    /// Bytes sent and not yet acknowledged (FlightSize, RFC 5681 §2).
    pub bytes_in_flight: usize,
    /// Segments retransmitted (any cause).
    pub retransmits: u64,
    /// Fast retransmits (RFC 5681 §3.2).
    pub fast_retransmits: u64,
    /// Retransmission timeouts that fired (RFC 6298 §5).
    pub timeouts: u64,
    // --- observe (issue 14): what only the engine knows, for plots
    /// Congestion-control phase (slow start, avoidance, fast or RTO recovery).
    pub phase: CcPhase,
}

// ---- IPv6 (issue 13): ICMPv6 and flow labels ----
pub mod flow_label;
pub mod icmp6;
