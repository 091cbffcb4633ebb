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
#![warn(missing_docs)]

pub mod wire;
pub mod seq;
pub mod time;
pub mod anyip;
pub mod config;
mod gate;
pub mod counters;
pub mod isn;
pub mod stack;
pub mod tcb;
mod ack_queue;
pub mod timewait;
pub mod memory;
pub mod explain;
pub mod observe;

pub use anyip::AnyIpFilter;

// SYN queue / cookies (RFC 4987)
pub mod syncookie;
// Martians (RFC 1122 §3.2.1.3)
pub mod martian;

pub use config::{Config, Keepalive, SynCookies};
pub use counters::Counters;
pub use stack::Stack;
pub use tcb::State;
pub use explain::TxReason;
pub use observe::CcPhase;

use std::net::SocketAddr;

/// A connection's identity: local and remote socket addresses (RFC 9293 §3.2 "socket pair").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
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
        }
    }
}

/// What the engine tells its user, drained with [`Stack::poll_event`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
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
