//! Engine configuration: every policy knob a profile (utcp, FreeBSD, Linux) can set.

use crate::time::Duration;
use crate::wire::OptionLayout;
pub use crate::tcb::congestion::CongestionAlgorithm;

/// TCP keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6). Off by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe; RFC 1122 says no less than two hours by default.
    pub idle: Duration,
    pub interval: Duration,
    pub probes: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive { idle: Duration::from_secs(7200), interval: Duration::from_secs(75), probes: 9 }
    }
}

/// Engine configuration. `Config::default()` is the utcp profile.
#[derive(Clone, Debug)]
pub struct Config {
    /// Link MTU; the MSS we advertise is `mtu - 40` (RFC 9293 §3.7.1) unless `mss` is set.
    pub mtu: usize,
    /// Override for the MSS option value we send.
    pub mss: Option<u16>,
    /// Receive buffer per connection, bytes. The advertised window comes from its free space.
    pub recv_buffer: usize,
    /// Round the receive buffer up to a multiple of the MSS (FreeBSD's tcp_mss() does).
    pub recv_buffer_round_to_mss: bool,
    /// RCV.WND is all free receive-buffer space (FreeBSD): it goes in every segment's
    /// window field and bounds the acceptability test, and receiver SWS avoidance
    /// (RFC 9293 §3.8.6.2.2) only decides when a pure window update is sent. When false,
    /// RCV.WND is what was last advertised and its right edge moves in steps of
    /// min(RCV.BUFF/2, MSS), as the RFC describes.
    pub window_full_space: bool,
    /// While our FIN is unacknowledged, every ACK we send carries the FIN again
    /// (FreeBSD's tcp_output); otherwise the FIN is only retransmitted by the timer.
    pub resend_fin_with_ack: bool,
    /// Send buffer per connection, bytes.
    pub send_buffer: usize,
    /// Send the MSS option on our SYN (RFC 9293 §3.7.1: SHOULD when the MSS differs from
    /// 536; off only to emulate TCP_NOOPT).
    pub send_mss_option: bool,
    /// Offer window scaling (RFC 7323 §2). The shift is derived from `recv_buffer` unless set.
    pub window_scale: bool,
    /// Fixed window-scale shift to offer, instead of the derived one.
    pub window_scale_shift: Option<u8>,
    /// Offer SACK-permitted and generate SACK blocks (RFC 2018).
    pub sack: bool,
    /// Generate D-SACK blocks for duplicate segments (RFC 2883).
    pub dsack: bool,
    /// Offer timestamps (RFC 7323 §3) and use them for RTTM and PAWS.
    pub timestamps: bool,
    /// Option ordering on SYN and data segments.
    pub option_layout: OptionLayout,
    /// RFC 6298 initial RTO (1 s).
    pub initial_rto: Duration,
    /// RFC 6298 (2.4) lower bound on the RTO.
    pub min_rto: Duration,
    /// RFC 6298 (2.5) upper bound on the RTO.
    pub max_rto: Duration,
    /// Added to every RTO except the initial one (FreeBSD's net.inet.tcp.rexmit_slop).
    pub rto_slop: Duration,
    /// SYN (and SYN-ACK) retransmissions before giving up (RFC 1122 §4.2.3.5 R2 for SYN).
    pub syn_retries: u32,
    /// Give up on a connection still not synchronized after this long (FreeBSD's
    /// TCP_KEEPINIT / net.inet.tcp.keepinit); `None` bounds the handshake by
    /// `syn_retries` alone.
    pub connect_timeout: Option<Duration>,
    /// Data/FIN retransmissions before giving up (R2).
    pub data_retries: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts 2*MSL (RFC 9293 §3.4.2).
    pub msl: Duration,
    /// Delayed-ACK bound; `None` acknowledges every segment at once (RFC 9293 §3.8.6.3: < 0.5 s).
    pub delayed_ack: Option<Duration>,
    /// ACK at least every this many full-sized segments (RFC 5681 §4.2: 2).
    pub ack_every: u32,
    /// Count every in-order data segment toward `ack_every`, whatever its size (FreeBSD
    /// acknowledges every second segment); otherwise only full-sized segments' worth of
    /// bytes count (Linux-like).
    pub ack_every_counts_segments: bool,
    /// Nagle's algorithm for new connections (RFC 9293 §3.7.4).
    pub nagle: bool,
    /// Minshall's variant of Nagle (Linux): a small segment waits only while an earlier
    /// small segment is unacknowledged, not behind full-sized ones. Avoids the stall of
    /// Nagle with a delayed-ACK peer on write sizes that are not MSS multiples.
    pub nagle_minshall: bool,
    /// Keepalive for new connections; off by default.
    pub keepalive: Option<Keepalive>,
    /// RFC 5961 §3 (challenge ACK for an in-window RST that is not exact) and §5 (ACK
    /// validity). Off gives RFC 793 behaviour (FreeBSD's net.inet.tcp.insecure_rst=1).
    pub rfc5961: bool,
    /// RFC 5961 §4: challenge ACK for a SYN in a synchronized state. Off gives RFC 793
    /// behaviour, a RST for an in-window SYN (FreeBSD's net.inet.tcp.insecure_syn=1).
    pub rfc5961_syn: bool,
    /// Process the ACK field of a segment wholly left of the window (its text is dropped
    /// and an ACK sent), as FreeBSD's tcp_input does; RFC 9293 drops such a segment after
    /// sending an ACK.
    pub ack_old_segments: bool,
    /// Drop every segment with both SYN and FIN set, in any state (FreeBSD's
    /// net.inet.tcp.drop_synfin; RFC 9293 gives such segments no special meaning).
    pub drop_synfin: bool,
    /// Ignore RST segments in TIME-WAIT (RFC 1337 §3, hazard H1). Off by default: RFC 9293
    /// §3.10.7.4 and Linux (net.ipv4.tcp_rfc1337=0) close on such a RST.
    pub rfc1337: bool,
    /// Handle TIME-WAIT as FreeBSD's tcp_twcheck() does (no acceptability test; ACK
    /// anything but an exact duplicate ACK; drop RSTs and segments without ACK).
    pub time_wait_bsd: bool,
    /// Challenge ACKs allowed per second (RFC 5961 §7); 0 = unlimited.
    pub challenge_ack_limit: u32,
    /// Initial congestion window in segments; `None` uses RFC 6928 (min(10*MSS, max(2*MSS, 14600))).
    pub initial_window_segments: Option<u32>,
    /// Secret for the RFC 6528 ISN hash. Randomise it in production; the sim seeds it.
    pub isn_secret: [u8; 16],
    /// IPv4 TTL of emitted packets.
    pub ttl: u8,
    /// Ephemeral port range for active opens without an explicit port.
    pub ephemeral_ports: (u16, u16),
    /// Emit `Event::StateChange` for every transition (for traces).
    pub trace_states: bool,
    /// Largest number of out-of-order ranges held by one receive buffer.
    pub max_ooo_ranges: usize,
    /// Pending-connection limit per listener when `listen` is given 0.
    pub default_backlog: usize,

    // --- Loss recovery (issue 10: RFC 6675, PRR, RACK-TLP, CUBIC) ---
    /// Congestion controller for new connections: NewReno (RFC 5681/6582, the default,
    /// FreeBSD's too) or CUBIC (RFC 9438, Linux's default).
    pub congestion_control: CongestionAlgorithm,
    /// Proportional Rate Reduction (RFC 6937) for the cwnd reduction during SACK-based loss
    /// recovery. Off gives RFC 6675 §5 as written: cwnd = ssthresh for the whole recovery.
    pub prr: bool,
    /// RFC 8985 §7 tail loss probe: when the ACK clock stops with data outstanding, probe
    /// after PTO = 2*SRTT (plus the peer's delayed-ACK allowance when one segment is in
    /// flight) instead of waiting for the RTO. See docs/performance.md for the measurement
    /// behind the default.
    pub tail_loss_probe: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mtu: 1500,
            mss: None,
            recv_buffer: 256 * 1024,
            recv_buffer_round_to_mss: false,
            window_full_space: false,
            resend_fin_with_ack: false,
            send_buffer: 256 * 1024,
            send_mss_option: true,
            window_scale: true,
            window_scale_shift: None,
            sack: true,
            dsack: true,
            timestamps: true,
            option_layout: OptionLayout::Linux,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            rto_slop: Duration::ZERO,
            // RFC 9293 §3.8.3 (MUST-23): SYNs retransmitted for at least 3 minutes (255 s).
            syn_retries: 7,
            connect_timeout: None,
            data_retries: 15,
            msl: Duration::from_secs(30),
            delayed_ack: Some(Duration::from_millis(40)),
            ack_every: 2,
            ack_every_counts_segments: false,
            nagle: true,
            nagle_minshall: true,
            keepalive: None,
            rfc5961: true,
            rfc5961_syn: true,
            rfc1337: false,
            time_wait_bsd: false,
            ack_old_segments: false,
            drop_synfin: false,
            challenge_ack_limit: 1000,
            initial_window_segments: None,
            isn_secret: *b"utcp-isn-secret!",
            ttl: 64,
            ephemeral_ports: (32768, 60999),
            trace_states: false,
            max_ooo_ranges: 64,
            default_backlog: 128,
            // Loss recovery (issue 10).
            congestion_control: CongestionAlgorithm::NewReno,
            prr: true,
            tail_loss_probe: true,
        }
    }
}

impl Config {
    /// The MSS we advertise on our SYN (RFC 9293 §3.7.1: MTU minus fixed IP and TCP headers).
    pub fn effective_mss(&self) -> u16 {
        self.mss.unwrap_or_else(|| self.mtu.saturating_sub(40).clamp(16, 65495) as u16)
    }

    /// The window-scale shift we offer (RFC 7323 §2.3): the smallest shift that lets
    /// the receive buffer be advertised, at most 14.
    pub fn offered_wscale(&self) -> u8 {
        self.wscale_for(self.recv_buffer)
    }

    /// The window-scale shift for a receive buffer of `recv_buffer` bytes.
    pub fn wscale_for(&self, recv_buffer: usize) -> u8 {
        if let Some(s) = self.window_scale_shift {
            return s.min(14);
        }
        let mut shift = 0u8;
        while shift < 14 && (recv_buffer >> shift) > 65535 {
            shift += 1;
        }
        shift
    }
}
