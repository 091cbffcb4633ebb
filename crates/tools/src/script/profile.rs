//! Profiles: which engine [`Config`] a script runs against, and how the `sysctl` lines of
//! a script map onto documented `Config` fields.
//!
//! A profile only sets real engine knobs; it never special-cases a script. A `sysctl` that
//! names engine policy without a matching knob makes the script UNSUPPORTED (naming the
//! variable), unless its value asks for what the engine does anyway.

use utcp::engine::{Config, SynCookies};
use utcp::time::Duration;
use utcp::wire::OptionLayout;

/// A named set of engine settings plus the host conventions scripts assume.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: &'static str,
    pub config: Config,
    /// Names defined for `#ifdef` in scripts.
    pub defines: Vec<&'static str>,
    /// `accept` hands out sockets that inherit the listener's O_NONBLOCK (BSD semantics).
    pub accept_inherits_nonblock: bool,
    /// Value of the O_NONBLOCK bit reported by `fcntl(F_GETFL)`.
    pub o_nonblock: i64,
    /// SO_RCVBUF/SO_SNDBUF report twice the value set (Linux, socket(7)); the engine
    /// buffer gets the value as set (the other half is Linux's bookkeeping overhead).
    pub sockbuf_doubling: bool,
    /// With `--verbose`: log each segment the stack sends with the rule that sent it
    /// (`--explain`, issue 14).
    pub explain: bool,
}

pub const PROFILE_NAMES: [&str; 3] = ["utcp", "freebsd", "linux"];

impl Profile {
    pub fn by_name(name: &str) -> Option<Profile> {
        match name {
            "utcp" => Some(Profile::utcp()),
            "freebsd" => Some(Profile::freebsd()),
            "linux" => Some(Profile::linux()),
            _ => None,
        }
    }

    /// The engine defaults (`Config::default()` with a fixed secret), Linux socket conventions.
    pub fn utcp() -> Profile {
        Profile {
            name: "utcp",
            // A fixed secret: the same script gives the same run (ISNs, ports, cookies).
            config: Config::deterministic(0),
            defines: vec!["utcp", "STANDARD"],
            accept_inherits_nonblock: false,
            o_nonblock: 0x800,
            sockbuf_doubling: false,
            explain: false,
        }
    }

    /// FreeBSD's defaults as the freebsd-net/tcp-testsuite scripts expect them.
    pub fn freebsd() -> Profile {
        let mut config = Config::deterministic(0);
        // net.inet.tcp.recvspace = 65536, rounded to a multiple of the MSS.
        config.recv_buffer = 65536;
        config.recv_buffer_round_to_mss = true;
        // net.inet.tcp.sendspace = 32768; a blocked writer wakes at so_snd.sb_lowat = 2048
        // free bytes (sowwakeup).
        config.send_buffer = 32768;
        config.send_lowat = Some(2048);
        // SYN options `mss, nop, wscale, sackOK, TS`; the shift follows
        // kern.ipc.maxsockbuf (2 MiB -> 6).
        config.option_layout = OptionLayout::FreeBsd;
        config.window_scale_shift = Some(wscale_for_maxsockbuf(2_097_152));
        // A read that opens the window is announced at once (tcp_output after soreceive).
        config.defer_window_update = false;
        // net.inet.tcp.delacktime = 40 ms; ACK every second full segment.
        config.delayed_ack = Some(Duration::from_millis(40));
        config.ack_every = 2;
        config.ack_every_counts_segments = true;
        // FreeBSD's tcp_output applies RFC 1122 Nagle as written.
        config.nagle_minshall = false;
        // net.inet.tcp.insecure_rst = 0 / insecure_syn = 0.
        config.rfc5961 = true;
        config.rfc5961_syn = true;
        // FreeBSD puts all free space in every window field.
        config.window_full_space = true;
        config.resend_fin_with_ack = true;
        config.time_wait_bsd = true;
        config.ack_old_segments = true;
        // net.inet.tcp.rexmit_slop = 200 ms.
        config.rto_slop = Duration::from_millis(200);
        // TCPTV_RTOBASE / net.inet.tcp.rexmit_initial: 1 s; TCPTV_REXMTMAX: 64 s.
        config.initial_rto = Duration::from_secs(1);
        config.max_rto = Duration::from_secs(64);
        // net.inet.tcp.keepinit = 75 s bounds the handshake; SYNs are retransmitted up
        // to 10 times within it.
        config.connect_timeout = Some(Duration::from_secs(75));
        config.syn_retries = 10;
        // TCPTV_MSL = 30 s.
        config.msl = Duration::from_secs(30);
        // net.inet.tcp.ack_war_timewindow = 1000 ms, ack_war_cnt = 5 (RFC 5961 §7).
        config.challenge_ack_interval = Duration::from_millis(1000);
        config.challenge_ack_burst = 5;
        // tcp_input's dropafterack answers every unacceptable segment.
        config.oow_ack_interval = Duration::ZERO;
        // tcp_input drops a SYN-ACK to a listening socket without a RST.
        config.listen_drop_syn_ack = true;
        // SYN queue / cookies: net.inet.tcp.syncookies = 1, cookies on syncache overflow.
        config.syn_cookies = SynCookies::OnOverflow;
        // Loss recovery (issue 10): net.inet.tcp.cc.algorithm = newreno; the default
        // stack has no tail loss probe (that is the RACK stack's).
        config.congestion_control = utcp::engine::config::CongestionAlgorithm::NewReno;
        config.tail_loss_probe = false;
        // ICMP errors (issue 13): tcp_ctlinput treats TTL exceeded as hard in SYN-SENT and
        // tcp_drop_syn_sent reports ECONNREFUSED for unreachable/prohibited.
        config.icmp_time_exceeded_hard = true;
        config.icmp_hard_refused = true;
        // tcp_mssopt: the MSS option follows the host cache's path MTU.
        config.pmtu_syn_mss = true;
        // Nor RACK (RFC 8985 §6).
        config.rack = false;
        Profile {
            name: "freebsd",
            config,
            defines: vec!["FreeBSD"],
            accept_inherits_nonblock: true,
            o_nonblock: 0x4,
            sockbuf_doubling: false,
            explain: false,
        }
    }
}

/// FreeBSD picks the smallest shift with `65535 << shift >= kern.ipc.maxsockbuf`
/// (at most 14, RFC 7323 §2.3).
pub fn wscale_for_maxsockbuf(maxsockbuf: u64) -> u8 {
    let mut shift = 0u8;
    while shift < 14 && (65535u64 << shift) < maxsockbuf {
        shift += 1;
    }
    shift
}

/// What a `sysctl -w name=value` does to the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SysctlEffect {
    /// Changed (or confirmed) an engine knob; the note says which.
    Applied(String),
    /// No engine counterpart is needed (e.g. flushing a cache a fresh stack does not have).
    Ignored(String),
    /// The setting asks for behaviour the engine has no knob for.
    Unsupported(String),
    /// Keepalive defaults used when a socket turns SO_KEEPALIVE on (not engine config).
    Keepalive(KeepaliveField, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepaliveField {
    IdleMs,
    IntervalMs,
    Count,
}

/// Parse `sysctl [-w] [-q] a.b.c=N`. Returns (name, value).
pub fn parse_sysctl(cmd: &str) -> Option<(String, String)> {
    let mut words = cmd.split_whitespace();
    if words.next()? != "sysctl" {
        return None;
    }
    // `-w` (write) and `-q` (quiet) change nothing here.
    let rest: Vec<&str> = words.filter(|w| *w != "-w" && *w != "-q").collect();
    if rest.len() != 1 {
        return None;
    }
    let (n, v) = rest[0].split_once('=')?;
    Some((n.to_string(), v.to_string()))
}

/// Apply one sysctl to `cfg`.
pub fn apply_sysctl(cfg: &mut Config, name: &str, value: &str) -> SysctlEffect {
    use SysctlEffect::*;
    if let Some(effect) = super::linux::apply_linux_sysctl(cfg, name, value) {
        return effect;
    }
    let Ok(v) = value.parse::<u64>() else {
        return Unsupported(format!("sysctl {name}={value}: non-numeric value"));
    };
    match name {
        "net.inet.tcp.rfc1323" => match v {
            0 | 1 => {
                cfg.window_scale = v == 1;
                cfg.timestamps = v == 1;
                Applied(format!("window_scale = timestamps = {}", v == 1))
            }
            _ => Unsupported(format!("sysctl {name}={v}: only 0 and 1 map to engine knobs")),
        },
        "net.inet.tcp.sack.enable" => {
            cfg.sack = v != 0;
            cfg.dsack = v != 0;
            Applied(format!("sack = dsack = {}", v != 0))
        }
        "net.inet.tcp.recvspace" => {
            cfg.recv_buffer = v as usize;
            Applied(format!("recv_buffer = {v}"))
        }
        "net.inet.tcp.sendspace" => {
            cfg.send_buffer = v as usize;
            Applied(format!("send_buffer = {v}"))
        }
        "kern.ipc.maxsockbuf" => {
            let s = wscale_for_maxsockbuf(v);
            cfg.window_scale_shift = Some(s);
            Applied(format!("window_scale_shift = {s}"))
        }
        "net.inet.tcp.delacktime" => {
            cfg.delayed_ack = if v == 0 { None } else { Some(Duration::from_millis(v)) };
            Applied(format!("delayed_ack = {v} ms"))
        }
        "net.inet.tcp.rexmit_initial" => {
            cfg.initial_rto = Duration::from_millis(v.max(1));
            Applied(format!("initial_rto = {v} ms"))
        }
        "net.inet.tcp.rexmit_min" => {
            cfg.min_rto = Duration::from_millis(v.max(1));
            Applied(format!("min_rto = {v} ms"))
        }
        "net.inet.tcp.insecure_rst" => {
            // RFC 5961 §3 and §5 on (0) or off (1).
            cfg.rfc5961 = v == 0;
            Applied(format!("rfc5961 = {}", v == 0))
        }
        "net.inet.tcp.insecure_syn" => {
            // RFC 5961 §4 on (0) or off (1).
            cfg.rfc5961_syn = v == 0;
            Applied(format!("rfc5961_syn = {}", v == 0))
        }
        "net.inet.tcp.hostcache.purgenow" => Ignored("host cache flush: a fresh stack has none".into()),
        "net.inet.tcp.blackhole" if v == 0 => {
            Ignored("blackhole=0: RSTs for closed ports, as the engine does".into())
        }
        "net.inet.tcp.ecn.enable" if v == 0 || v == 2 => Ignored(format!(
            "ecn.enable={v}: the engine does not initiate ECN (RFC 3168 negotiation is not implemented)"
        )),
        "net.inet.tcp.rexmit_drop_options" => {
            // tcp_timer_rexmt() clears the options when t_rxtshift reaches 3.
            cfg.syn_rexmit_drop_options = (v != 0).then_some(3);
            Applied(format!("syn_rexmit_drop_options = {:?}", cfg.syn_rexmit_drop_options))
        }
        "net.inet.tcp.tolerate_missing_ts" => {
            cfg.ts_missing_drop = v == 0;
            Applied(format!("ts_missing_drop = {}", v == 0))
        }
        "net.inet.tcp.rexmit_slop" => {
            cfg.rto_slop = Duration::from_millis(v);
            Applied(format!("rto_slop = {v} ms"))
        }
        // ICMP errors (issue 13): hard errors may abort a connection being opened.
        "net.inet.tcp.icmp_may_rst" => {
            cfg.icmp_may_rst = v != 0;
            Applied(format!("icmp_may_rst = {}", v != 0))
        }
        "net.inet.tcp.drop_synfin" => {
            cfg.drop_synfin = v != 0;
            Applied(format!("drop_synfin = {}", v != 0))
        }
        // SYN queue / cookies: FreeBSD answers with SYN cookies when the syncache overflows
        // (syncookies=1) or always (syncookies_only=1); Linux's tcp_syncookies 0/1/2.
        "net.inet.tcp.syncookies" | "net.ipv4.tcp_syncookies" => {
            cfg.syn_cookies = match v {
                0 => SynCookies::Never,
                1 => SynCookies::OnOverflow,
                _ => SynCookies::Always,
            };
            Applied(format!("syn_cookies = {:?}", cfg.syn_cookies))
        }
        "net.inet.tcp.syncookies_only" => {
            if v != 0 {
                cfg.syn_cookies = SynCookies::Always;
            } else if cfg.syn_cookies == SynCookies::Always {
                cfg.syn_cookies = SynCookies::OnOverflow;
            }
            Applied(format!("syn_cookies = {:?}", cfg.syn_cookies))
        }
        "net.ipv4.tcp_max_syn_backlog" => {
            cfg.syn_queue_len = v.max(1) as usize;
            Applied(format!("syn_queue_len = {v}"))
        }
        "net.inet.tcp.keepinit" => {
            cfg.connect_timeout = (v > 0).then(|| Duration::from_millis(v));
            Applied(format!("connect_timeout = {v} ms"))
        }
        // Linux names (Google's packetdrill scripts).
        "net.ipv4.tcp_timestamps" => {
            cfg.timestamps = v != 0;
            Applied(format!("timestamps = {}", v != 0))
        }
        "net.ipv4.tcp_window_scaling" => {
            cfg.window_scale = v != 0;
            Applied(format!("window_scale = {}", v != 0))
        }
        "net.ipv4.tcp_sack" => {
            cfg.sack = v != 0;
            Applied(format!("sack = {}", v != 0))
        }
        "net.ipv4.tcp_dsack" => {
            cfg.dsack = v != 0;
            Applied(format!("dsack = {}", v != 0))
        }
        "net.ipv4.tcp_rfc1337" => {
            cfg.rfc1337 = v != 0;
            Applied(format!("rfc1337 = {}", v != 0))
        }
        "net.ipv4.tcp_syn_retries" => {
            cfg.syn_retries = v as u32;
            Applied(format!("syn_retries = {v}"))
        }
        "net.ipv4.tcp_retries2" => {
            cfg.data_retries = v as u32;
            Applied(format!("data_retries = {v}"))
        }
        "net.ipv4.tcp_challenge_ack_limit" => {
            cfg.challenge_ack_limit = v.min(u32::MAX as u64) as u32;
            Applied(format!("challenge_ack_limit = {v}"))
        }
        "net.ipv4.tcp_invalid_ratelimit" => {
            cfg.challenge_ack_interval = Duration::from_millis(v);
            cfg.oow_ack_interval = Duration::from_millis(v);
            cfg.challenge_ack_burst = 1;
            Applied(format!("challenge_ack_interval = {v} ms"))
        }
        "net.inet.tcp.ack_war_timewindow" => {
            cfg.challenge_ack_interval = Duration::from_millis(v);
            Applied(format!("challenge_ack_interval = {v} ms"))
        }
        "net.inet.tcp.ack_war_cnt" => {
            cfg.challenge_ack_burst = v.min(u32::MAX as u64) as u32;
            Applied(format!("challenge_ack_burst = {v}"))
        }
        "net.ipv4.tcp_keepalive_time" => Keepalive(KeepaliveField::IdleMs, v.saturating_mul(1000)),
        "net.ipv4.tcp_keepalive_intvl" => Keepalive(KeepaliveField::IntervalMs, v.saturating_mul(1000)),
        "net.ipv4.tcp_keepalive_probes" => Keepalive(KeepaliveField::Count, v),
        "net.inet.tcp.keepidle" => Keepalive(KeepaliveField::IdleMs, v),
        "net.inet.tcp.keepintvl" => Keepalive(KeepaliveField::IntervalMs, v),
        "net.inet.tcp.keepcnt" => Keepalive(KeepaliveField::Count, v),
        _ => Unsupported(format!("sysctl {name}={value}: no engine knob")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wscale_from_maxsockbuf_matches_freebsd() {
        assert_eq!(wscale_for_maxsockbuf(2_097_152), 6);
        assert_eq!(wscale_for_maxsockbuf(73_728), 1);
        assert_eq!(wscale_for_maxsockbuf(4_294_967_295), 14);
        assert_eq!(wscale_for_maxsockbuf(65_535), 0);
    }

    #[test]
    fn sysctls_map_to_config() {
        let mut cfg = Config::default();
        assert_eq!(
            parse_sysctl("sysctl -w net.inet.tcp.rfc1323=0"),
            Some(("net.inet.tcp.rfc1323".into(), "0".into()))
        );
        assert!(matches!(apply_sysctl(&mut cfg, "net.inet.tcp.rfc1323", "0"), SysctlEffect::Applied(_)));
        assert!(!cfg.timestamps && !cfg.window_scale);
        apply_sysctl(&mut cfg, "net.inet.tcp.insecure_rst", "1");
        assert!(!cfg.rfc5961);
        apply_sysctl(&mut cfg, "net.inet.tcp.insecure_syn", "0");
        assert!(cfg.rfc5961_syn);
        apply_sysctl(&mut cfg, "net.inet.tcp.drop_synfin", "1");
        assert!(cfg.drop_synfin);
        // SYN queue / cookies.
        apply_sysctl(&mut cfg, "net.ipv4.tcp_syncookies", "2");
        assert_eq!(cfg.syn_cookies, SynCookies::Always);
        apply_sysctl(&mut cfg, "net.inet.tcp.syncookies_only", "0");
        assert_eq!(cfg.syn_cookies, SynCookies::OnOverflow);
        apply_sysctl(&mut cfg, "net.inet.tcp.syncookies", "0");
        assert_eq!(cfg.syn_cookies, SynCookies::Never);
        apply_sysctl(&mut cfg, "net.ipv4.tcp_max_syn_backlog", "64");
        assert_eq!(cfg.syn_queue_len, 64);
        apply_sysctl(&mut cfg, "net.inet.tcp.delacktime", "100");
        assert_eq!(
            parse_sysctl("sysctl -q net.ipv4.tcp_sack=0"),
            Some(("net.ipv4.tcp_sack".into(), "0".into()))
        );
        apply_sysctl(&mut cfg, "net.ipv4.tcp_sack", "0");
        assert!(!cfg.sack);
        assert!(matches!(
            apply_sysctl(&mut cfg, "net.ipv4.tcp_rmem", "4096 87380"),
            SysctlEffect::Unsupported(_)
        ));
        assert_eq!(cfg.delayed_ack, Some(Duration::from_millis(100)));
    }
}
