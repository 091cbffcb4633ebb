//! Engine configuration: every policy knob a profile (utcp, FreeBSD, Linux) can set.

pub use crate::tcb::congestion::{CongestionAlgorithm, CongestionControl, ControllerFactory};
use crate::time::Duration;
use crate::wire::OptionLayout;

/// TCP keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6). Off by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe; RFC 1122 says no less than two hours by default.
    pub idle: Duration,
    /// Time between unanswered probes (RFC 1122 §4.2.3.6).
    pub interval: Duration,
    /// Unanswered probes after which the connection is closed with `CloseReason::TimedOut`.
    pub probes: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive { idle: Duration::from_secs(7200), interval: Duration::from_secs(75), probes: 9 }
    }
}

/// Engine configuration. `Config::default()` is the utcp profile.
///
/// `Config` is `#[non_exhaustive]`: start from a profile and change knobs with the
/// builder-style `with_<field>` setters (see `config_builder.rs`) or by mutation.
///
/// ```
/// use utcp_engine::{Config, Stack};
/// use utcp_engine::time::Duration;
///
/// let cfg = Config::deterministic(1)
///     .with_mtu(1280)
///     .with_sack(true)
///     .with_delayed_ack(Some(Duration::from_millis(40)));
/// assert_eq!((cfg.mtu, cfg.sack), (1280, true));
///
/// let mut other = Config::default();
/// other.timestamps = false;
/// let _stack = Stack::new(cfg);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
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
    /// When an ACK that frees send-buffer space raises `Event::Writable` (the wake-up of a
    /// writer blocked on a full buffer). `None` (Linux, `sk_stream_write_space`): once the
    /// free space is at least half of what is still queued, so a full buffer must drain
    /// by a third. `Some(n)` (FreeBSD's `so_snd.sb_lowat`, SO_SNDLOWAT, 2048 by default):
    /// once `n` bytes are free. Waking the writer for every small ACK costs a wake-up per
    /// ACK and makes it queue small pieces (bulk_from_stack, 4 GiB, two paired runs:
    /// 26.6 and 27.4 Gbit/s with the Linux rule, 22.3 and 26.7 waking at every ACK).
    pub send_lowat: Option<usize>,
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
    /// When a read opens the receive window by enough to announce (receiver SWS avoidance,
    /// RFC 9293 §3.8.6.2.2, which leaves the timing open): `true` (Linux-like, default)
    /// lets the next segment we send carry it, else the delayed-ACK timer, as long as the
    /// peer may still send two full segments in the window it knows; `false` (FreeBSD's
    /// tcp_output after soreceive) sends a pure window update at once. A request/response
    /// server otherwise sends a pure ACK between reading a request and answering it
    /// (issue 12: one TUN write per connection in `utcp bench` connect).
    pub defer_window_update: bool,
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
    /// Stack-wide challenge ACKs per second (RFC 5961 §7); 0 = unlimited. The budget of
    /// each second is drawn as `limit/2 + rand(limit)` (Linux's tcp_challenge_ack_limit)
    /// so that no connection can read another's use of it (CVE-2016-5696).
    pub challenge_ack_limit: u32,
    /// Initial congestion window in segments; `None` uses RFC 6928 (min(10*MSS, max(2*MSS, 14600))).
    pub initial_window_segments: Option<u32>,
    /// Secret keying the RFC 6528 ISN hash, SYN cookies, the connection-table hash and
    /// the ephemeral port start. `Config::default()` draws it from the OS (`getrandom`);
    /// tests and the simulator use [`Config::deterministic`] or [`Config::with_secret`].
    pub isn_secret: [u8; 16],
    /// IPv4 TTL / IPv6 hop limit of emitted packets: stateless replies, and each
    /// connection's default (per connection: `Stack::set_ttl`, RFC 1122 §3.2.1.7).
    pub ttl: u8,
    /// Ephemeral port range for active opens without an explicit port.
    pub ephemeral_ports: (u16, u16),
    /// Emit `Event::StateChange` for every transition (for traces).
    pub trace_states: bool,
    /// Largest number of out-of-order ranges held by one receive buffer.
    pub max_ooo_ranges: usize,
    /// Pending-connection limit per listener when `listen` is given 0.
    pub default_backlog: usize,

    // --- Hostile networks (issue 9): RFC 5961 §7 per-connection challenge-ACK limit ---
    /// Each connection sends at most `challenge_ack_burst` challenge ACKs per
    /// `challenge_ack_interval` (RFC 5961 §7). Linux: 1 per 500 ms
    /// (net.ipv4.tcp_invalid_ratelimit); FreeBSD: 5 per 1000 ms
    /// (net.inet.tcp.ack_war_cnt / ack_war_timewindow). A zero interval turns it off.
    pub challenge_ack_interval: Duration,
    /// See `challenge_ack_interval`.
    pub challenge_ack_burst: u32,
    /// Least time between two duplicate ACKs a connection sends for unacceptable segments
    /// without text, FIN or SYN (ACK-loop defence; Linux's tcp_invalid_ratelimit applies
    /// to these too, 500 ms). Zero answers every one (RFC 9293 §3.10.7.4 as written).
    pub oow_ack_interval: Duration,

    // --- Hostile networks (issue 9): IPv4 reassembly (RFC 791 §3.2, RFC 1122 §3.3.2) ---
    /// Bytes of reassembly buffers the stack may hold (Linux's net.ipv4.ipfrag_high_thresh,
    /// 4 MiB). 0 turns reassembly off: fragments are dropped as `Fragment`.
    pub ipfrag_high_thresh: usize,
    /// Datagrams reassembled at once.
    pub ipfrag_max_datagrams: usize,
    /// Fragments one datagram may have (at most `wire::frag::MAX_FRAGMENTS`, 64).
    pub ipfrag_max_fragments: usize,
    /// A datagram not complete this long after its first fragment is dropped (RFC 1122
    /// §3.3.2; Linux's net.ipv4.ipfrag_time, 30 s).
    pub ipfrag_time: Duration,
    // ---- FreeBSD policies (issue 10: the rest of the FreeBSD corpus) ----
    /// Drop a SYN-ACK that arrives at a listener without answering (FreeBSD's
    /// tcp_input); RFC 9293 §3.10.7.2 answers any ACK in LISTEN with <SEQ=SEG.ACK><CTL=RST>.
    pub listen_drop_syn_ack: bool,
    /// From this SYN retransmission on (1 = the first), SYNs carry only the MSS option, in
    /// case a middlebox drops SYNs with unknown options (FreeBSD's
    /// net.inet.tcp.rexmit_drop_options: from the third). `None` keeps the options.
    pub syn_rexmit_drop_options: Option<u32>,
    /// Once timestamps are in use, silently drop a non-RST segment without TSopt
    /// (RFC 7323 §3.2 SHOULD; FreeBSD's net.inet.tcp.tolerate_missing_ts=0). Off
    /// accepts such segments (Linux, FreeBSD's default).
    pub ts_missing_drop: bool,

    // ---- Linux policies (issue 10: the `linux` profile) ----
    /// Restart from the initial window after an idle period of one RTO (RFC 5681 §4.1
    /// SHOULD; Linux's net.ipv4.tcp_slow_start_after_idle, on by default).
    pub slow_start_after_idle: bool,
    /// Derive the offered window-scale shift from this much buffer space instead of the
    /// receive buffer: Linux's tcp_select_initial_window() takes max(`tcp_rmem[2]`,
    /// rmem_max) and offers ilog2(space) - 15 (8 for the 15 MiB `tcp_rmem[2]` of the
    /// `linux` profile). `None`: the smallest shift that fits the receive buffer.
    pub window_scale_space: Option<usize>,
    /// Quick-ACK mode (Linux's tcp_incr_quickack, TCP_MAX_QUICKACKS = 16): the first data
    /// segments of a connection, and again the first after the receiver was idle longer
    /// than the RTO, are acknowledged at once, up to this many (and at most
    /// RCV.WND / (2 * MSS), at least 2). 0 turns it off (every ACK may be delayed).
    pub quickack_segments: u32,
    /// An in-sequence segment that starts inside a non-zero RCV.WND but ends beyond it is
    /// accepted whole (as far as the buffer has room) when the receive queue is empty
    /// (Linux's tcp_sequence(): "Only accept this packet if receive queue is empty").
    /// Off trims it to the window (RFC 9293 §3.10.7.4).
    pub accept_beyond_window_if_empty: bool,
    // ---- SYN queue / cookies (RFC 4987 §3.3, §3.6) ----
    /// When a listener answers with a SYN cookie instead of a SYN queue entry.
    pub syn_cookies: SynCookies,
    /// Most half-open (SYN-RECEIVED) connections one listener holds. The listen backlog
    /// bounds it too, as on Linux (`inet_csk_reqsk_queue_is_full`: qlen >= backlog), so a
    /// listener's SYN queue holds min(backlog, syn_queue_len) entries (Linux's
    /// net.ipv4.tcp_max_syn_backlog plays this role).
    pub syn_queue_len: usize,

    // ---- Martians (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7) ----
    /// Prefix length of our IPv4 addresses, if known: then packets from or to their
    /// subnet-directed broadcast address are dropped as martians.
    pub local_prefix_len: Option<u8>,

    // ---- Memory (issue 9: bounded memory whatever the peers do) ----
    /// Most connections kept in TIME-WAIT as compact records (Linux's
    /// `net.ipv4.tcp_max_tw_buckets`). Policy when the table is full: a connection that
    /// would enter it closes at once without TIME-WAIT, and `Counters::tw_overflow` counts
    /// it, as Linux does. Each record costs at most 128 bytes (`timewait::TIME_WAIT_RECORD_BYTES`).
    pub max_time_wait: usize,
    /// Stack-wide cap on send and receive buffer storage in bytes (Linux's `tcp_mem`).
    /// Buffers start small and grow on demand up to their per-connection size; growth
    /// that would pass the cap is refused. Under pressure (above 3/4 of the cap) the
    /// windows we advertise stop growing beyond the storage a connection already has
    /// (the right edge already advertised never moves left, RFC 9293 §3.8.6 / RFC 7323
    /// §2.4) and out-of-order data is not stored and is pruned first (`Counters::ofo_pruned`),
    /// like Linux's tcp_prune_queue; in-order data beyond the storage is dropped
    /// (`Counters::rcv_pruned`) and the peer retransmits it. A send that would pass the cap
    /// blocks (`WouldBlock`) until memory is freed. As with Linux's `tcp_rmem[0]`/`tcp_wmem[0]`,
    /// every ring may reach 4 KiB (`memory::RING_MIN`) for in-order data and sends even
    /// above the cap, so no connection stalls for good.
    pub buffer_memory: usize,

    // --- Loss recovery (issue 10: RFC 6675, PRR, RACK-TLP, CUBIC) ---
    /// Congestion controller for new connections: NewReno (RFC 5681/6582, the default,
    /// FreeBSD's too), CUBIC (RFC 9438, Linux's default), or the user's own
    /// [`CongestionControl`] through `CongestionAlgorithm::Custom(factory)`.
    pub congestion_control: CongestionAlgorithm,
    /// Proportional Rate Reduction (RFC 6937) for the cwnd reduction during SACK-based loss
    /// recovery. Off gives RFC 6675 §5 as written: cwnd = ssthresh for the whole recovery.
    pub prr: bool,
    /// RFC 8985 §7 tail loss probe: when the ACK clock stops with data outstanding, probe
    /// after PTO = 2*SRTT (plus the peer's delayed-ACK allowance when one segment is in
    /// flight) instead of waiting for the RTO. See docs/performance.md for the measurement
    /// behind the default.
    pub tail_loss_probe: bool,
    /// RFC 8985 §6 RACK: time-based loss detection from per-segment transmit times (needs
    /// SACK). A segment sent more than RTT + reo_wnd before one that was delivered is lost;
    /// this repairs lost retransmissions and tail losses without an RTO. Linux's
    /// `tcp_recovery` bit 0. See docs/performance.md for the measurement behind the default.
    pub rack: bool,
    /// RFC 8985 §6.2 step 2: RACK.min_RTT is the minimum RTT over this window, not over
    /// the connection's life (a windowed min filter, `minmax.rs`), so that a path that got
    /// longer widens the reordering window again. Linux's `net.ipv4.tcp_min_rtt_wlen`
    /// (default 300 s).
    pub min_rtt_window: Duration,

    // ---- ICMP echo (issue 13; RFC 792, RFC 1122 §3.2.2.6; crates/engine/src/icmp.rs) ----
    /// Echo replies per second, a token bucket refilled on virtual time that holds at most
    /// one second's worth (Linux's net.ipv4.icmp_msgs_per_sec plays this role); excess
    /// requests are dropped and counted. 0 = never answer echo requests.
    pub icmp_echo_per_sec: u32,

    // ---- IPv6 (issue 13; crates/engine/src/wire/ipv6.rs, stack.rs listener lookup) ----
    /// IPV6_V6ONLY for every listener on the IPv6 wildcard `[::]` (RFC 3493 §5.3): when
    /// false, a `[::]:port` listener also takes IPv4 connections to that port that no
    /// IPv4 listener (exact or `0.0.0.0`) takes. Default false, as Linux's
    /// net.ipv6.bindv6only = 0. (`ttl` is the IPv6 hop limit too; the MSS is derived per
    /// family, `Config::mss_for`.)
    pub v6only: bool,
    // ---- ICMP errors, PMTUD, TOS (issue 13; RFC 1122 §4.2.3.9, RFC 5927, RFC 1191,
    //      RFC 4821; crates/engine/src/icmp_error.rs, crates/engine/src/tcb/pmtu.rs) ----
    /// Hard ICMP errors (protocol/port unreachable, administratively prohibited) abort a
    /// connection in SYN-SENT or SYN-RECEIVED (RFC 1122 §4.2.3.9 SHOULD; FreeBSD's
    /// net.inet.tcp.icmp_may_rst=1, Linux always). Off: every error is soft.
    pub icmp_may_rst: bool,
    /// Time Exceeded in transit is a hard error in the handshake too (FreeBSD; RFC 1122
    /// §4.2.3.9 calls it soft, as the default does).
    pub icmp_time_exceeded_hard: bool,
    /// A hard error reports `CloseReason::Refused` whatever its kind (FreeBSD's
    /// tcp_drop_syn_sent(ECONNREFUSED)); off, administratively prohibited reports
    /// `HostUnreachable` (Linux's EHOSTUNREACH).
    pub icmp_hard_refused: bool,
    /// Path MTU discovery (RFC 1191): DF on every emitted IPv4 packet, and Fragmentation
    /// Needed lowers the connection's MSS. On as Linux (ip_no_pmtu_disc=0) and FreeBSD
    /// (net.inet.tcp.path_mtu_discovery=1).
    pub pmtu_discovery: bool,
    /// Smallest path MTU taken from Fragmentation Needed (Linux's min_pmtu, 552).
    pub min_pmtu: u16,
    /// Packetization-layer PMTUD (RFC 4821) as Linux's tcp_mtu_probing: 0 off, 1 after a
    /// black hole is detected (repeated RTOs of the same data), 2 always (start at
    /// `base_mss`).
    pub mtu_probing: u8,
    /// The MSS the black-hole search starts from (Linux's tcp_base_mss, 1024).
    pub base_mss: u16,
    /// RFC 4821 §7.2 / Linux tcp_probe_interval (600 s): this long after a packetization-
    /// layer search began, it starts again from the link's MSS, so that a path that got
    /// wider is found. Zero: never.
    pub mtu_probe_interval: Duration,
    /// RFC 1191 §6.3: a path MTU learned from Fragmentation Needed / Packet Too Big is
    /// forgotten after this ("no less than 5 minutes, 10 recommended"; Linux's
    /// net.ipv4.route.mtu_expires, 600 s), and new segments try the link's size again; a
    /// path still that narrow answers with another ICMP. Zero: never.
    pub pmtu_expires: Duration,
    /// IPv4 TOS byte (DSCP and ECN bits) of emitted packets; per connection with
    /// `Stack::set_tos` (RFC 9293 MUST-48). Linux and FreeBSD default to 0.
    pub tos: u8,
    /// An ICMPv6 Packet Too Big taken in SYN-SENT also lowers the MSS option of the
    /// retransmitted SYN (FreeBSD: icmp6_mtudisc_update writes the PTB into the host cache
    /// at the ICMPv6 layer, and tcp_mssopt reads it; an IPv4 Fragmentation Needed goes
    /// through tcp_ctlinput, which in SYN-SENT compares it with the not yet negotiated
    /// 536-byte t_maxseg and leaves the offer alone). Off (default) the MSS option stays
    /// what the interface allows, as Linux's advmss and RFC 9293 §3.7.1 have it; the path
    /// bounds only what we send.
    pub pmtu_syn_mss: bool,
    // ---- Engine cost (issue 12): header prediction (tcb/fast_path.rs)
    /// Take the header-prediction fast path for segments whose processing it provably
    /// reproduces (tcb/fast_path.rs). Off: every segment goes through the full RFC 9293
    /// §3.10.7.4 path (the equivalence test runs both). Not a policy knob.
    #[doc(hidden)]
    pub fast_path: bool,
}

/// SYN cookie policy (RFC 4987 §3.6; Linux's net.ipv4.tcp_syncookies 1/2/0, FreeBSD's
/// net.inet.tcp.syncookies / syncookies_only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynCookies {
    /// Answer with a cookie only while the listener's SYN queue is full (the default).
    OnOverflow,
    /// Answer every SYN with a cookie; no half-open state is ever kept.
    Always,
    /// Never: a SYN that finds the SYN queue full is dropped.
    Never,
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
            send_lowat: None,
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
            defer_window_update: true,
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
            isn_secret: os_secret(),
            ttl: 64,
            ephemeral_ports: (32768, 60999),
            trace_states: false,
            max_ooo_ranges: 64,
            default_backlog: 128,
            challenge_ack_interval: Duration::from_millis(500),
            challenge_ack_burst: 1,
            oow_ack_interval: Duration::from_millis(500),
            ipfrag_high_thresh: 4 * 1024 * 1024,
            ipfrag_max_datagrams: 1024,
            ipfrag_max_fragments: 64,
            ipfrag_time: Duration::from_secs(30),
            // FreeBSD policies (issue 10).
            listen_drop_syn_ack: false,
            syn_rexmit_drop_options: None,
            ts_missing_drop: false,
            // Linux policies (issue 10).
            slow_start_after_idle: true,
            window_scale_space: None,
            quickack_segments: 0,
            accept_beyond_window_if_empty: false,
            syn_cookies: SynCookies::OnOverflow,
            syn_queue_len: 1024,
            local_prefix_len: None,
            // Memory: 131,072 TIME-WAIT records are at most 16 MiB; 512 MiB of buffers.
            max_time_wait: 131_072,
            buffer_memory: 512 << 20,
            // Loss recovery (issue 10).
            congestion_control: CongestionAlgorithm::NewReno,
            prr: true,
            tail_loss_probe: true,
            rack: true,
            min_rtt_window: Duration::from_secs(300),
            // ICMP echo (issue 13): Linux's icmp_msgs_per_sec default.
            icmp_echo_per_sec: 1000,
            // IPv6 (issue 13): Linux's net.ipv6.bindv6only default.
            v6only: false,
            // ICMP errors, PMTUD, TOS (issue 13): Linux's defaults.
            icmp_may_rst: true,
            icmp_time_exceeded_hard: false,
            icmp_hard_refused: false,
            pmtu_discovery: true,
            min_pmtu: 552,
            mtu_probing: 0,
            base_mss: 1024,
            mtu_probe_interval: Duration::from_secs(600),
            pmtu_expires: Duration::from_secs(600),
            tos: 0,
            pmtu_syn_mss: false,
            fast_path: true,
        }
    }
}

/// 16 bytes from the OS random source. If the OS has none (it cannot happen on Linux
/// after boot), fall back to address-space and clock noise rather than a public constant.
fn os_secret() -> [u8; 16] {
    let mut s = [0u8; 16];
    if getrandom::fill(&mut s).is_err() {
        let noise = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ (&s as *const _ as usize as u128);
        s = noise.to_le_bytes();
    }
    s
}

impl Config {
    /// The default configuration with a fixed secret: the same `seed` gives the same
    /// ISNs, cookies, ports and table order (tests, simulator, scripts).
    pub fn deterministic(seed: u64) -> Config {
        let mut secret = [0u8; 16];
        secret[..8].copy_from_slice(&seed.to_le_bytes());
        secret[8..].copy_from_slice(b"utcp-det");
        Config::default().with_secret(secret)
    }

    /// This configuration keyed with `secret` instead of OS randomness.
    pub fn with_secret(mut self, secret: [u8; 16]) -> Config {
        self.isn_secret = secret;
        self
    }

    /// The MSS we advertise on our SYN (RFC 9293 §3.7.1: MTU minus fixed IP and TCP headers).
    pub fn effective_mss(&self) -> u16 {
        self.mss.unwrap_or_else(|| self.mtu.saturating_sub(40).clamp(16, 65495) as u16)
    }

    /// MMS_S − 20 (RFC 9293 §3.7.1, MUST-16): the largest segment the IP layer lets us
    /// send, from the MTU alone; `mss` only changes what we advertise (Linux's advmss).
    pub fn send_mss_cap(&self) -> u16 {
        self.mtu.saturating_sub(40).clamp(16, 65495) as u16
    }

    // ---- IPv6 (issue 13): MSS per family ----

    /// The MSS we advertise on a connection whose local address is `ip`: `mss` if set,
    /// else the MTU less the fixed IP and TCP headers, 40 bytes over IPv4 and 60 over IPv6
    /// (RFC 9293 §3.7.1; RFC 8200 §3: the IPv6 header is 40 bytes).
    pub fn mss_for(&self, ip: std::net::IpAddr) -> u16 {
        self.mss.unwrap_or_else(|| self.send_mss_cap_for(ip))
    }

    /// MMS_S − 20 for the family of `ip` (RFC 9293 §3.7.1, MUST-16).
    pub fn send_mss_cap_for(&self, ip: std::net::IpAddr) -> u16 {
        let headers = if ip.is_ipv6() { 60 } else { 40 };
        self.mtu.saturating_sub(headers).clamp(16, 65495) as u16
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
        if let Some(space) = self.window_scale_space {
            // Linux: ilog2(max(space, the socket's buffer)) - 15, within 0..=14.
            let space = space.max(recv_buffer).max(1);
            return (space.ilog2().saturating_sub(15)).min(14) as u8;
        }
        let mut shift = 0u8;
        while shift < 14 && (recv_buffer >> shift) > 65535 {
            shift += 1;
        }
        shift
    }
}
