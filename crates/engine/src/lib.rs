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
    pub local: SocketAddr,
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
    StateChange { conn: ConnId, quad: Quad, from: State, to: State },
}

/// Result of the STATUS user call (RFC 9293 §3.10.6).
#[derive(Clone, Copy, Debug)]
pub struct Status {
    pub state: State,
    pub quad: Quad,
    pub snd_una: u32,
    pub snd_nxt: u32,
    pub snd_wnd: u32,
    pub rcv_nxt: u32,
    pub rcv_wnd: u32,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub srtt_us: u64,
    pub rto_us: u64,
    pub mss: u16,
    /// Negotiated options, as in Linux `tcpi_options`: 1 = TS, 2 = SACK, 4 = WSCALE.
    pub options: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub bytes_readable: usize,
    pub bytes_unsent: usize,
    pub bytes_in_flight: usize,
    pub retransmits: u64,
    pub fast_retransmits: u64,
    pub timeouts: u64,
    // --- observe (issue 14): what only the engine knows, for plots
    /// Congestion-control phase (slow start, avoidance, fast or RTO recovery).
    pub phase: CcPhase,
}
