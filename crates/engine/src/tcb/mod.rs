//! The Transmission Control Block and its state machine (RFC 9293 §3.3.2).

/// The 11 connection states of RFC 9293 §3.3.2.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum State {
    /// No connection (RFC 9293 §3.3.2: a fictional state).
    Closed,
    /// Waiting for a SYN (passive OPEN).
    Listen,
    /// SYN sent, waiting for a matching SYN (active OPEN).
    SynSent,
    /// SYN received and SYN sent, waiting for the ACK of our SYN.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// We sent FIN (CLOSE called), waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// The peer's FIN arrived; waiting for the local user to CLOSE.
    CloseWait,
    /// Both FINs sent (simultaneous close); waiting for the ACK of ours.
    Closing,
    /// The peer closed first and we sent FIN; waiting for its ACK.
    LastAck,
    /// Waiting 2×MSL so the peer has received the ACK of its FIN (RFC 9293 §3.6.1).
    TimeWait,
}

impl State {
    /// All states, in RFC 9293 §3.3.2 order (for tables and counters indexed by state).
    pub const ALL: [State; 11] = [
        State::Closed,
        State::Listen,
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    /// RFC 9293 name, e.g. `SYN-RECEIVED`.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }

    /// States after the handshake completed (RFC 9293 §3.5 "synchronized").
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::Closed | State::Listen | State::SynSent | State::SynReceived)
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

mod challenge;
pub mod congestion;
pub mod cubic;
mod fast_path;
mod input;
mod loss;
mod memory;
mod output;
pub(crate) mod pmtu;
pub mod prr;
mod quickack;
mod rack;
pub mod reassembly;
mod ring;
pub mod rtt;
mod sack;
pub mod sendbuf;
mod timers;
mod tlp;
mod urgent;
mod user;
mod user_timeout;

pub use self::challenge::challenge_budget;
use self::congestion::{CongestionControl, Recovery, initial_window, new_controller};
use self::reassembly::RecvBuffer;
use self::rtt::RttEstimator;
use self::sendbuf::SendBuffer;
use crate::seq::SeqNum;
use crate::time::Instant;
use crate::{CloseReason, Config, ConnId, Counters, Event, Keepalive, ListenerId, Quad, Status};
use std::collections::VecDeque;

/// Send sequence space (RFC 9293 §3.3.1, figure 3).
#[derive(Clone, Copy, Debug, Default)]
pub struct SendSeq {
    /// SND.UNA: oldest unacknowledged sequence number.
    pub una: SeqNum,
    /// SND.NXT: next sequence number to send.
    pub nxt: SeqNum,
    /// SND.WND: send window, already scaled (RFC 7323 §2.3).
    pub wnd: u32,
    /// SND.UP: send urgent pointer.
    pub up: SeqNum,
    /// SND.WL1: segment sequence number used for the last window update.
    pub wl1: SeqNum,
    /// SND.WL2: segment acknowledgment number used for the last window update.
    pub wl2: SeqNum,
    /// ISS: initial send sequence number.
    pub iss: SeqNum,
}

/// Receive sequence space (RFC 9293 §3.3.1, figure 4).
#[derive(Clone, Copy, Debug, Default)]
pub struct RecvSeq {
    /// RCV.NXT: next sequence number expected.
    pub nxt: SeqNum,
    /// RCV.WND: receive window currently offered (bytes, unscaled).
    pub wnd: u32,
    /// RCV.UP: receive urgent pointer.
    pub up: SeqNum,
    /// IRS: initial receive sequence number.
    pub irs: SeqNum,
}

/// Bits the TCB raises for the Stack to turn into events after each call.
pub(crate) mod notify {
    pub const READABLE: u8 = 1;
    pub const WRITABLE: u8 = 2;
    pub const CONNECTED: u8 = 4;
    pub const CLOSED: u8 = 8;
    /// A passive open reached ESTABLISHED: move it to the listener's accept queue.
    pub const ACCEPTABLE: u8 = 16;
    /// The peer's urgent pointer moved ahead of what the user has read (MUST-32).
    pub const URGENT: u8 = 32;
}

/// What the Stack lends a TCB for one call.
pub(crate) struct Cx<'a> {
    pub cfg: &'a Config,
    pub counters: &'a mut Counters,
    pub events: &'a mut VecDeque<Event>,
    /// Challenge ACKs still allowed in the current second (RFC 5961 §7).
    pub challenge_budget: &'a mut u32,
    // --- TUN offload (issue 12, engine cost): `Stack::poll_transmit_gso` (gso.rs)
    /// Write IPv4 data segments with only the pseudo-header sum in the TCP checksum field
    /// (the device, or gso.rs for a packet that goes out alone, completes it).
    pub partial_csum: bool,
    /// Set by `Tcb::emit` when it wrote such a segment.
    pub wrote_partial: bool,
}

/// Why a stateless reply is needed: the TCB asks the Stack to send a RST
/// for a segment it will not keep (RFC 9293 §3.10.7.3/§3.10.7.4).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RstReply {
    pub seq: SeqNum,
    pub ack: Option<SeqNum>,
}

/// The Transmission Control Block (RFC 9293 §3.3.1).
pub struct Tcb {
    pub(crate) id: ConnId,
    pub(crate) quad: Quad,
    pub(crate) state: State,
    pub(crate) snd: SendSeq,
    pub(crate) rcv: RecvSeq,
    /// Highest sequence number sent so far (SND.NXT can move back on RTO).
    pub(crate) snd_max: SeqNum,
    /// Largest window the peer ever offered (RFC 5961 §5 MAX.SND.WND; SWS avoidance).
    pub(crate) max_snd_wnd: u32,
    /// Right edge of the window we last advertised: never moves left (RFC 9293 §3.8.6.2.2).
    pub(crate) rcv_adv: SeqNum,
    /// Came from a passive OPEN (RFC 9293 §3.10.7.4: RST in SYN-RECEIVED returns to LISTEN).
    pub(crate) passive: Option<ListenerId>,

    // Negotiated options.
    /// MSS we advertised (RFC 9293 §3.7.1).
    pub(crate) rcv_mss: u16,
    /// Peer's MSS option, 536 if absent (RFC 9293 §3.7.1, MUST-15).
    pub(crate) snd_mss: u16,
    /// Shift applied to windows the peer sends us (RFC 7323 §2.3).
    pub(crate) snd_wscale: u8,
    /// Shift applied to windows we send.
    pub(crate) rcv_wscale: u8,
    pub(crate) wscale_ok: bool,
    pub(crate) sack_ok: bool,
    pub(crate) ts_ok: bool,
    /// TS.Recent (RFC 7323 §4.3).
    pub(crate) ts_recent: u32,
    pub(crate) ts_recent_stamp: Instant,
    /// Offset added to our millisecond clock to form TSval.
    pub(crate) ts_offset: u32,
    /// Last ACK number we sent (RFC 7323 §4.3 Last.ACK.sent).
    pub(crate) last_ack_sent: SeqNum,

    // Buffers.
    pub(crate) sendbuf: SendBuffer,
    pub(crate) recvbuf: RecvBuffer,
    /// The user has issued CLOSE or shutdown(Write): a FIN follows the queued data.
    pub(crate) fin_queued: bool,
    /// Our FIN has been acknowledged (SND.UNA is then one past it).
    pub(crate) fin_acked_flag: bool,
    /// The peer's FIN sequence number, when known but not yet reached (out of order).
    pub(crate) fin_seq_rcvd: Option<SeqNum>,
    /// The peer's FIN has been processed (RFC 9293 §3.10.7.4 eighth step).
    pub(crate) fin_rcvd: bool,
    /// shutdown(Read): reads return EOF and new data is dropped.
    pub(crate) read_shut: bool,
    /// The user released its handle (CLOSE); data arriving now draws a RST.
    pub(crate) user_closed: bool,

    // Timers (RFC 6298, RFC 9293 §3.8).
    pub(crate) rtt: RttEstimator,
    pub(crate) rtx_deadline: Option<Instant>,
    /// Consecutive retransmissions of the same data (RFC 1122 R2 give-up).
    pub(crate) retries: u32,
    /// R2 for this connection: retransmissions of data before giving up (MUST-21).
    pub(crate) data_retries: u32,
    /// One timed segment for RTT without timestamps (Karn: never a retransmitted one).
    pub(crate) rtt_timed: Option<(SeqNum, Instant)>,
    /// TSval of our latest retransmission: an echo older than it may come from the original
    /// transmission and is no RTT sample (RFC 7323 §4.2, Karn's rule for timestamps).
    pub(crate) rtx_tsval: Option<u32>,
    pub(crate) persist_deadline: Option<Instant>,
    pub(crate) persist_backoff: u32,
    pub(crate) delack_deadline: Option<Instant>,
    /// A read opened the window and its announcement waits (`Config::defer_window_update`).
    pub(crate) window_update_deferred: bool,
    pub(crate) timewait_deadline: Option<Instant>,
    /// The handshake must complete by then (`Config::connect_timeout`).
    pub(crate) handshake_deadline: Option<Instant>,
    pub(crate) keepalive: Option<Keepalive>,
    pub(crate) keepalive_deadline: Option<Instant>,
    pub(crate) keepalive_sent: u32,
    pub(crate) last_rcv_time: Instant,
    pub(crate) last_snd_time: Instant,

    // Output requests.
    /// Send an ACK at the next poll (RFC 9293 §3.10.7.4: "send an acknowledgment").
    pub(crate) ack_now: bool,
    /// The pending ACK is a challenge ACK (RFC 5961 §3.2): a bare <SEQ=SND.NXT><ACK=RCV.NXT>.
    pub(crate) challenge_pending: bool,
    // --- explain (issue 14): why the next ACK / retransmission / segment is sent
    pub(crate) ack_reason: crate::TxReason,
    pub(crate) rtx_reason: crate::TxReason,
    pub(crate) tx_reason: crate::TxReason,
    /// Bytes of in-order data received since the last ACK we sent.
    pub(crate) unacked_bytes: u32,
    /// In-order data segments received since the last ACK we sent.
    pub(crate) unacked_segs: u32,
    /// Linux's quick-ACK mode (`Config::quickack_segments`).
    pub(crate) quickack: quickack::QuickAck,
    /// USER TIMEOUT (RFC 9293 §3.8.3, RFC 5482; TCP_USER_TIMEOUT).
    pub(crate) user_timeout: user_timeout::UserTimeout,
    /// Retransmit one segment from SND.UNA (fast retransmit / partial ACK).
    pub(crate) rtx_una: bool,
    /// Segments RFC 3042 limited transmit lets out beyond the congestion window.
    pub(crate) limited_transmit: u32,
    /// What the peer SACKed above SND.UNA (RFC 6675 §3).
    pub(crate) scoreboard: sack::Scoreboard,
    /// Send one byte past the window (zero-window probe, §3.8.6.1).
    pub(crate) force_probe: bool,
    /// Send a keepalive probe.
    pub(crate) send_keepalive: bool,
    /// SYN (or SYN-ACK) must be (re)sent.
    pub(crate) send_syn: bool,
    /// Send a RST and close (ABORT, or close with unread data).
    pub(crate) send_rst: bool,
    /// The most recently received out-of-order segment, reported first in SACK (RFC 2018 §4).
    pub(crate) last_ooo: Option<(SeqNum, SeqNum)>,
    /// Text that arrived on a SYN in SYN-SENT, delivered once ESTABLISHED (RFC 9293 §3.10.7.3).
    pub(crate) syn_text: Option<Vec<u8>>,
    /// A duplicate range to report as D-SACK in the next ACK (RFC 2883).
    pub(crate) dsack: Option<(SeqNum, SeqNum)>,
    /// SACK blocks in the order last reported, most recent first (RFC 2018 §4).
    pub(crate) sack_reported: crate::wire::SackBlocks,

    // Congestion control (RFC 5681, RFC 6582).
    pub(crate) cc: Box<dyn CongestionControl>,
    pub(crate) recovery: Recovery,
    /// RFC 6937 state while SACK-based loss recovery runs with `Config::prr`.
    pub(crate) prr: Option<prr::Prr>,
    /// RFC 8985 §7 tail loss probe (`Config::tail_loss_probe`).
    pub(crate) tlp: tlp::Tlp,

    pub(crate) nodelay: bool,
    /// End of the last sub-MSS segment sent (Minshall's Nagle variant).
    pub(crate) snd_sml: SeqNum,
    /// RCV.WND is all free buffer space (`Config::window_full_space`).
    pub(crate) full_space: bool,
    pub(crate) error: Option<CloseReason>,
    /// Pending notification bits (see [`notify`]).
    pub(crate) notify: u8,
    pub(crate) retransmits: u64,
    pub(crate) fast_retransmits: u64,
    pub(crate) timeouts: u64,
    /// Counter for the IPv4 identification field.
    pub(crate) ip_id: u16,
    /// IPv6 flow label (RFC 6437 §3: constant for the connection's life; 0 over IPv4),
    /// hashed once here rather than per segment (crate::flow_label).
    pub(crate) flow_label: u32,
    /// RFC 5961 §7 per-connection challenge-ACK limit (issue 9, hostile networks).
    pub(crate) challenge_limit: challenge::ChallengeLimit,
    /// Per-connection limit on duplicate ACKs for unacceptable pure ACKs (issue 9).
    pub(crate) oow_limit: challenge::ChallengeLimit,
    /// Largest in-order segment received: the "full size" of RFC 5681 §4.2 (issue 9).
    pub(crate) rcv_seg_max: u32,
    /// TTL, TOS, ICMP soft error and path MTU (issue 13, pmtu.rs).
    pub(crate) path: pmtu::PathState,
    /// The end of the urgent data the user has been told of and not yet read (MUST-32/33,
    /// urgent.rs); `None` outside such a stretch.
    pub(crate) rcv_urgent_end: Option<SeqNum>,
}

impl Tcb {
    pub(crate) fn new(cfg: &Config, id: ConnId, quad: Quad, iss: SeqNum, now: Instant, state: State) -> Tcb {
        let recv_cap = cfg.recv_buffer.max(1);
        let rcv_mss = cfg.mss_for(quad.local.ip());
        let smss = 536usize;
        Tcb {
            id,
            quad,
            state,
            snd: SendSeq { una: iss, nxt: iss, wnd: 0, up: iss, wl1: SeqNum(0), wl2: SeqNum(0), iss },
            rcv: RecvSeq::default(),
            snd_max: iss,
            max_snd_wnd: 0,
            rcv_adv: SeqNum(0),
            passive: None,
            rcv_mss,
            snd_mss: 536,
            snd_wscale: 0,
            rcv_wscale: 0,
            wscale_ok: false,
            sack_ok: false,
            ts_ok: false,
            ts_recent: 0,
            ts_recent_stamp: now,
            ts_offset: iss.0.rotate_left(13),
            last_ack_sent: SeqNum(0),
            sendbuf: SendBuffer::with_capacity(cfg.send_buffer.max(1)),
            recvbuf: RecvBuffer::with_limits(recv_cap, cfg.max_ooo_ranges),
            fin_queued: false,
            fin_acked_flag: false,
            fin_seq_rcvd: None,
            fin_rcvd: false,
            read_shut: false,
            user_closed: false,
            rtt: RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto),
            rtx_deadline: None,
            retries: 0,
            data_retries: cfg.data_retries,
            rtt_timed: None,
            rtx_tsval: None,
            persist_deadline: None,
            persist_backoff: 0,
            delack_deadline: None,
            window_update_deferred: false,
            timewait_deadline: None,
            handshake_deadline: cfg.connect_timeout.map(|d| now + d),
            keepalive: cfg.keepalive,
            keepalive_deadline: None,
            keepalive_sent: 0,
            last_rcv_time: now,
            last_snd_time: now,
            ack_now: false,
            challenge_pending: false,
            ack_reason: crate::TxReason::Ack,
            rtx_reason: crate::TxReason::FastRetransmit,
            tx_reason: crate::TxReason::Unexplained,
            unacked_bytes: 0,
            unacked_segs: 0,
            quickack: quickack::QuickAck::default(),
            user_timeout: user_timeout::UserTimeout::default(),
            rtx_una: false,
            limited_transmit: 0,
            scoreboard: sack::Scoreboard::new(iss),
            force_probe: false,
            send_keepalive: false,
            send_syn: false,
            send_rst: false,
            last_ooo: None,
            dsack: None,
            syn_text: None,
            sack_reported: crate::wire::SackBlocks::new(),
            cc: new_controller(cfg.congestion_control, initial_window(smss, cfg.initial_window_segments)),
            recovery: Recovery::new(iss),
            prr: None,
            tlp: tlp::Tlp::default(),
            nodelay: !cfg.nagle,
            snd_sml: iss,
            full_space: cfg.window_full_space,
            error: None,
            notify: 0,
            retransmits: 0,
            fast_retransmits: 0,
            timeouts: 0,
            ip_id: iss.0 as u16,
            flow_label: crate::flow_label::flow_label(&cfg.isn_secret, &quad),
            challenge_limit: challenge::ChallengeLimit::default(),
            oow_limit: challenge::ChallengeLimit::default(),
            rcv_seg_max: 0,
            rcv_urgent_end: None,
            path: pmtu::PathState::new(cfg),
        }
    }

    /// OPEN, active (RFC 9293 §3.10.1): CLOSED → SYN-SENT, a SYN is queued.
    pub(crate) fn new_active(cfg: &Config, id: ConnId, quad: Quad, iss: SeqNum, now: Instant) -> Tcb {
        let mut tcb = Tcb::new(cfg, id, quad, iss, now, State::SynSent);
        tcb.send_syn = true;
        tcb
    }

    /// The connection's current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The connection's socket pair.
    pub fn quad(&self) -> Quad {
        self.quad
    }

    /// Move to `to`, tracing the transition when asked to.
    pub(crate) fn set_state(&mut self, cx: &mut Cx, to: State) {
        if self.state == to {
            return;
        }
        let from = self.state;
        self.state = to;
        if cx.cfg.trace_states {
            cx.events.push_back(Event::StateChange { conn: self.id, quad: self.quad, from, to });
        }
        match to {
            State::Established if from == State::SynSent || from == State::SynReceived => {
                self.handshake_deadline = None;
                if self.passive.is_some() {
                    self.notify |= notify::ACCEPTABLE;
                } else {
                    self.notify |= notify::CONNECTED;
                }
                self.notify |= notify::WRITABLE;
            }
            State::Closed => {
                self.notify |= notify::CLOSED | notify::READABLE | notify::WRITABLE;
                self.rtx_deadline = None;
                self.persist_deadline = None;
                self.delack_deadline = None;
                self.timewait_deadline = None;
                self.keepalive_deadline = None;
                self.handshake_deadline = None;
            }
            _ => {}
        }
    }

    /// Enter CLOSED with a reason the user will see (RFC 9293 §3.10.7.4 "connection reset").
    pub(crate) fn close_with(&mut self, cx: &mut Cx, reason: CloseReason) {
        // RFC 1122 §4.2.3.9 / MUST-47: a timeout reports the last soft ICMP error (pmtu.rs).
        let reason = match (reason, self.path.soft_error) {
            (CloseReason::TimedOut, Some(soft)) => soft,
            _ => reason,
        };
        if self.error.is_none() && reason != CloseReason::Normal {
            self.error = Some(reason);
        }
        self.set_state(cx, State::Closed);
    }

    /// Sequence number of the first byte in the send buffer.
    #[inline]
    pub(crate) fn buf_seq(&self) -> SeqNum {
        // The SYN occupies ISS; data starts at ISS+1 until the SYN is acknowledged.
        if self.snd.una == self.snd.iss { self.snd.iss + 1 } else { self.snd.una }
    }

    /// Sequence number our FIN occupies, once CLOSE was issued.
    #[inline]
    pub(crate) fn fin_seq(&self) -> Option<SeqNum> {
        if self.fin_acked_flag {
            return Some(self.snd.una - 1);
        }
        self.fin_queued.then(|| self.buf_seq() + self.sendbuf.len() as u32)
    }

    /// Our FIN has been acknowledged.
    #[inline]
    pub(crate) fn fin_acked(&self) -> bool {
        self.fin_acked_flag
    }

    /// Effective send MSS: the peer's MSS less the options every data segment carries
    /// (RFC 9293 §3.7.1, MUST-16: Eff.snd.MSS = min(SendMSS+20, MMS_S) - TCPhdrsize - IPoptionsize).
    #[inline]
    pub(crate) fn eff_mss(&self, cfg: &Config) -> usize {
        // RFC 1191 / RFC 4821: the path's MSS (pmtu.rs) bounds MMS_S too.
        let mms = (cfg.send_mss_cap_for(self.quad.local.ip()) as usize).min(self.path_mss_cap());
        let mut mss = (self.snd_mss as usize).min(mms);
        if self.ts_ok {
            mss -= 12;
        }
        mss.max(1)
    }

    /// The RTO to arm now: RFC 6298 plus `Config::rto_slop` once a sample or a backoff
    /// replaced the initial value.
    #[inline]
    pub(crate) fn rto_timer(&self, cfg: &Config) -> crate::time::Duration {
        let rto = self.rtt.rto();
        if self.rtt.srtt().is_some() || self.rtt.backoff_count() > 0 {
            (rto + cfg.rto_slop).min(cfg.max_rto)
        } else {
            rto
        }
    }

    /// Bytes sent and not yet acknowledged.
    #[inline]
    pub(crate) fn flight_size(&self) -> usize {
        self.snd_max.since(self.snd.una) as usize
    }

    /// Our TSval clock: milliseconds plus a per-connection offset (RFC 7323 §5.4).
    #[inline]
    pub(crate) fn ts_now(&self, now: Instant) -> u32 {
        ((now.micros() / 1000) as u32).wrapping_add(self.ts_offset)
    }

    pub(crate) fn status(&self) -> Status {
        let options = (self.ts_ok as u8) | ((self.sack_ok as u8) << 1) | ((self.wscale_ok as u8) << 2);
        let buf_seq = self.buf_seq();
        let sent_off = if self.snd_max.lt(buf_seq) { 0 } else { self.snd_max.since(buf_seq) as usize };
        Status {
            state: self.state,
            quad: self.quad,
            snd_una: self.snd.una.0,
            snd_nxt: self.snd.nxt.0,
            snd_wnd: self.snd.wnd,
            rcv_nxt: self.rcv.nxt.0,
            rcv_wnd: self.rcv.wnd,
            cwnd: self.cc.cwnd() as u32,
            ssthresh: self.cc.ssthresh().min(u32::MAX as usize) as u32,
            srtt_us: self.rtt.srtt().map(|d| d.as_micros() as u64).unwrap_or(0),
            rto_us: self.rtt.rto().as_micros() as u64,
            mss: self.snd_mss,
            options,
            snd_wscale: self.snd_wscale,
            rcv_wscale: self.rcv_wscale,
            bytes_readable: self.recvbuf.readable(),
            urgent_remaining: self.urgent_remaining(),
            bytes_unsent: self.sendbuf.len().saturating_sub(sent_off),
            bytes_in_flight: self.flight_size(),
            retransmits: self.retransmits,
            fast_retransmits: self.fast_retransmits,
            timeouts: self.timeouts,
            phase: self.cc_phase(),
        }
    }
}
