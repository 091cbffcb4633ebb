//! The `linux` profile and the Linux sysctls (net.ipv4.*) that map onto engine knobs.
//!
//! The profile mirrors the production settings Linux packetdrill harnesses use (see
//! docs/conformance.md, "The linux profile"): tcp_rmem 4096 540000 15728640, tcp_wmem 4096
//! 262144 4194304, timestamps, SACK and D-SACK on, tcp_slow_start_after_idle 0,
//! tcp_early_retrans 4, tcp_recovery 1, tcp_tso_win_divisor 3, tcp_syncookies 1, SYN and
//! SYN-ACK retries 5, F-RTO 2. Behaviour is taken from Documentation/networking/
//! ip-sysctl.rst, tcp(7) and net/ipv4/tcp_input.c / tcp_output.c.
//!
//! Loss recovery: CUBIC (`tcp_congestion_control=cubic`, the Linux default), RACK
//! (`tcp_recovery` bit 0, `Config::rack`), TLP (`tcp_early_retrans=3|4`) and PRR.

use super::profile::{Profile, SysctlEffect};
use utcp::engine::Config;
use utcp::engine::config::CongestionAlgorithm;
use utcp::time::Duration;

/// Linux's default net.core.rmem_max: tcp_select_initial_window() takes the larger of it
/// and `tcp_rmem[2]` for the window scale.
pub const RMEM_MAX: usize = 212_992;
/// `tcp_rmem[2]` of the profile.
const TCP_RMEM_MAX: usize = 15_728_640;

impl Profile {
    /// Linux with the settings Linux packetdrill harnesses use.
    pub fn linux() -> Profile {
        let mut config = Config::deterministic(0);
        // tcp_rmem[1] / tcp_wmem[1]: the default socket buffers.
        config.recv_buffer = 540_000;
        config.send_buffer = 262_144;
        // Window scale from max(tcp_rmem[2], rmem_max): ilog2(15 MiB) - 15 = 8.
        config.window_scale = true;
        config.window_scale_shift = None;
        config.window_scale_space = Some(TCP_RMEM_MAX.max(RMEM_MAX));
        config.timestamps = true;
        config.sack = true;
        config.dsack = true;
        // tcp_slow_start_after_idle = 0.
        config.slow_start_after_idle = false;
        // tcp_syn_retries = tcp_synack_retries = 5.
        config.syn_retries = 5;
        // IW10 (RFC 6928, TCP_INIT_CWND), TCP_RTO_MIN 200 ms, TCP_TIMEOUT_INIT 1 s,
        // TCP_RTO_MAX 120 s.
        config.initial_window_segments = Some(10);
        config.min_rto = Duration::from_millis(200);
        config.initial_rto = Duration::from_secs(1);
        config.max_rto = Duration::from_secs(120);
        // TCP_DELACK_MIN 40 ms; an ACK for every second full-sized segment; quick-ACK
        // for the first TCP_MAX_QUICKACKS = 16 segments and after idle.
        config.delayed_ack = Some(Duration::from_millis(40));
        config.ack_every = 2;
        config.ack_every_counts_segments = false;
        config.quickack_segments = 16;
        config.nagle_minshall = true;
        // tcp_sequence(): in-sequence data beyond the window, accepted whole when the
        // receive queue is empty.
        config.accept_beyond_window_if_empty = true;
        // TCP_TIMEWAIT_LEN = 60 s = 2 MSL.
        config.msl = Duration::from_secs(30);
        // tcp_retries2 = 15, tcp_rfc1337 = 0, RFC 5961 on.
        config.data_retries = 15;
        config.rfc1337 = false;
        config.rfc5961 = true;
        config.rfc5961_syn = true;
        // tcp_congestion_control = cubic; tcp_early_retrans = 4 (TLP); PRR (RFC 6937)
        // for the reduction in recovery, as Linux has done since 3.2.
        config.congestion_control = CongestionAlgorithm::Cubic;
        config.tail_loss_probe = true;
        config.prr = true;
        // tcp_recovery = 1: RACK (RFC 8985 §6).
        config.rack = true;
        Profile {
            name: "linux",
            config,
            defines: vec!["Linux", "linux"],
            accept_inherits_nonblock: false,
            o_nonblock: 0x800,
            sockbuf_doubling: true,
            explain: false,
        }
    }
}

/// The value Linux reports for SO_RCVBUF/SO_SNDBUF after `setsockopt(v)` (socket(7): "the
/// kernel doubles this value"; sock_setsockopt clamps to rmem_max/wmem_max first and keeps
/// at least SOCK_MIN_RCVBUF = 2304 / SOCK_MIN_SNDBUF = 4608).
pub fn doubled_sockbuf(v: usize, recv: bool) -> usize {
    let max = if recv { RMEM_MAX } else { 212_992 };
    let min = if recv { 2304 } else { 4608 };
    (v.min(max) * 2).max(min)
}

/// Three numbers `min default max` (tcp_rmem, tcp_wmem).
fn triple(value: &str) -> Option<[usize; 3]> {
    let v: Vec<usize> = value.split_whitespace().map(|x| x.parse().ok()).collect::<Option<_>>()?;
    <[usize; 3]>::try_from(v).ok()
}

/// Linux sysctls beyond the ones [`super::profile::apply_sysctl`] maps directly; `None`
/// when the name is not one of them.
pub fn apply_linux_sysctl(cfg: &mut Config, name: &str, value: &str) -> Option<SysctlEffect> {
    use SysctlEffect::*;
    let n = name.strip_prefix("net.ipv4.")?;
    let num = value.trim().parse::<u64>().ok();
    let unsupported = |why: &str| Unsupported(format!("sysctl {name}={value}: {why}"));
    Some(match (n, num) {
        ("tcp_rmem", _) => match triple(value) {
            Some([_, dflt, max]) => {
                cfg.recv_buffer = dflt.max(1);
                cfg.window_scale_space = Some(max.max(RMEM_MAX));
                Applied(format!("recv_buffer = {dflt}, window_scale_space = {}", max.max(RMEM_MAX)))
            }
            None => unsupported("expected three numbers"),
        },
        ("tcp_wmem", _) => match triple(value) {
            Some([_, dflt, _]) => {
                cfg.send_buffer = dflt.max(1);
                Applied(format!("send_buffer = {dflt}"))
            }
            None => unsupported("expected three numbers"),
        },
        ("tcp_slow_start_after_idle", Some(v)) => {
            cfg.slow_start_after_idle = v != 0;
            Applied(format!("slow_start_after_idle = {}", v != 0))
        }
        ("tcp_synack_retries", Some(v)) if v as u32 == cfg.syn_retries => {
            Applied(format!("syn_retries = {v} (SYN and SYN-ACK)"))
        }
        ("tcp_synack_retries", _) => {
            unsupported("the engine has one retry count for SYN and SYN-ACK (Config::syn_retries)")
        }
        ("tcp_syn_retries", Some(v)) => {
            cfg.syn_retries = v as u32;
            Applied(format!("syn_retries = {v} (SYN and SYN-ACK)"))
        }
        // Config::congestion_control: RFC 5681/6582 NewReno or RFC 9438 CUBIC.
        ("tcp_congestion_control", _) if value.trim() == "reno" => {
            cfg.congestion_control = CongestionAlgorithm::NewReno;
            Applied("congestion_control = NewReno".into())
        }
        ("tcp_congestion_control", _) if value.trim() == "cubic" => {
            cfg.congestion_control = CongestionAlgorithm::Cubic;
            Applied("congestion_control = Cubic".into())
        }
        ("tcp_congestion_control", _) => unsupported("only reno (NewReno) and cubic are in the engine"),
        // Bit 0x1 is RACK's time-based loss detection (RFC 8985 §6, `Config::rack`). Bits
        // 0x2 (static reordering window, no D-SACK adaptation) and 0x4 (no DupThresh) are
        // variants the engine does not have.
        ("tcp_recovery", Some(v)) if v & !1 == 0 => {
            cfg.rack = v & 1 != 0;
            Applied(format!("rack = {}", cfg.rack))
        }
        // RACK.min_RTT's window (RFC 8985 §6.2 step 2, `Config::min_rtt_window`), seconds.
        ("tcp_min_rtt_wlen", Some(v)) => {
            cfg.min_rtt_window = Duration::from_secs(v);
            Applied(format!("min_rtt_window = {v} s"))
        }
        ("tcp_recovery", _) => {
            unsupported("RACK without D-SACK adaptation or without DupThresh (bits 0x2/0x4)")
        }
        // 3 and 4 turn the tail loss probe on (Linux: 3 = ER + TLP, 4 = TLP), 0 off.
        ("tcp_early_retrans", Some(0)) => {
            cfg.tail_loss_probe = false;
            Applied("tail_loss_probe = false".into())
        }
        ("tcp_early_retrans", Some(3 | 4)) => {
            cfg.tail_loss_probe = true;
            Applied("tail_loss_probe = true (RFC 8985 §7)".into())
        }
        ("tcp_early_retrans", _) => {
            unsupported("early retransmit (RFC 5827) without TLP is not in the engine")
        }
        ("tcp_frto", Some(0)) => Applied("no F-RTO (the engine has none)".into()),
        ("tcp_frto", _) => unsupported("F-RTO (RFC 5682) is not in the engine"),
        // PMTUD (issue 13; engine tcb/pmtu.rs): black-hole fallback to tcp_base_mss and the
        // RFC 4821 upward search, restarted every tcp_probe_interval; route.mtu_expires
        // ages an ICMP-learned PMTU (RFC 1191 §6.3).
        ("tcp_probe_interval", Some(v)) => {
            cfg.mtu_probe_interval = Duration::from_secs(v);
            Applied(format!("mtu_probe_interval = {v} s"))
        }
        ("route.mtu_expires", Some(v)) => {
            cfg.pmtu_expires = Duration::from_secs(v);
            Applied(format!("pmtu_expires = {v} s"))
        }
        ("tcp_mtu_probing", Some(v @ (0..=2))) => {
            cfg.mtu_probing = v as u8;
            Applied(format!("mtu_probing = {v}"))
        }
        ("tcp_mtu_probing", _) => unsupported("tcp_mtu_probing above 2"),
        ("tcp_base_mss", Some(v @ 48..=65495)) => {
            cfg.base_mss = v as u16;
            Applied(format!("base_mss = {v}"))
        }
        ("tcp_base_mss", _) => unsupported("tcp_base_mss outside 48..=65495"),
        // The engine emits MSS-sized segments only (no TSO/GSO); Linux's defaults (2 and 3)
        // only size TSO bursts, which the runner sees as MSS-sized segments anyway.
        ("tcp_min_tso_segs", Some(2)) | ("tcp_tso_win_divisor", Some(3)) => {
            Ignored(format!("{n}={value}: Linux's default TSO sizing; the engine sends MSS-sized segments"))
        }
        ("tcp_min_tso_segs" | "tcp_tso_win_divisor", _) => {
            unsupported("TSO burst sizing is not in the engine")
        }
        // tcp_syncookies 0/1/2 maps onto Config::syn_cookies in profile.rs.
        ("tcp_no_metrics_save", Some(_)) => {
            Ignored("tcp_no_metrics_save: a fresh stack has no metrics cache".into())
        }
        ("tcp_fastopen", Some(0 | 1)) => Ignored(format!(
            "tcp_fastopen={value}: only used with MSG_FASTOPEN/TCP_FASTOPEN, which are unsupported"
        )),
        ("tcp_ecn", Some(0)) => Applied("no ECN (the engine has none)".into()),
        ("tcp_ecn", _) => unsupported("ECN (RFC 3168) is not in the engine"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::profile::apply_sysctl;

    #[test]
    fn linux_profile_offers_wscale_8_and_iw10() {
        let p = Profile::by_name("linux").expect("linux profile");
        assert_eq!(p.config.offered_wscale(), 8);
        assert_eq!(p.config.initial_window_segments, Some(10));
        assert!(!p.config.slow_start_after_idle);
        assert_eq!(p.config.quickack_segments, 16);
        assert!(p.config.accept_beyond_window_if_empty);
        assert!(p.sockbuf_doubling);
    }

    #[test]
    fn rmem_and_wmem_map_onto_buffers_and_wscale() {
        let mut cfg = Config::default();
        assert!(matches!(
            apply_sysctl(&mut cfg, "net.ipv4.tcp_rmem", "4096 87380 6291456"),
            SysctlEffect::Applied(_)
        ));
        assert_eq!(cfg.recv_buffer, 87380);
        assert_eq!(cfg.offered_wscale(), 7);
        apply_sysctl(&mut cfg, "net.ipv4.tcp_wmem", "4096 16384 4194304");
        assert_eq!(cfg.send_buffer, 16384);
        assert!(matches!(apply_sysctl(&mut cfg, "net.ipv4.tcp_rmem", "1 2"), SysctlEffect::Unsupported(_)));
    }

    #[test]
    fn min_rtt_wlen_sets_racks_min_rtt_window() {
        let mut cfg = Config::default();
        assert_eq!(cfg.min_rtt_window, Duration::from_secs(300), "Linux's default");
        let e = apply_sysctl(&mut cfg, "net.ipv4.tcp_min_rtt_wlen", "10");
        assert!(matches!(e, SysctlEffect::Applied(_)));
        assert_eq!(cfg.min_rtt_window, Duration::from_secs(10));
        assert!(matches!(
            apply_sysctl(&mut cfg, "net.ipv4.tcp_probe_interval", "30"),
            SysctlEffect::Applied(_)
        ));
        assert_eq!(cfg.mtu_probe_interval, Duration::from_secs(30));
        assert!(matches!(
            apply_sysctl(&mut cfg, "net.ipv4.route.mtu_expires", "300"),
            SysctlEffect::Applied(_)
        ));
        assert_eq!(cfg.pmtu_expires, Duration::from_secs(300));
    }

    #[test]
    fn unbuilt_policies_are_unsupported_unless_default() {
        let mut cfg = Config::default();
        for (n, v, ok) in [
            ("net.ipv4.tcp_congestion_control", "reno", true),
            ("net.ipv4.tcp_congestion_control", "cubic", true),
            ("net.ipv4.tcp_congestion_control", "bbr", false),
            ("net.ipv4.tcp_recovery", "0", true),
            ("net.ipv4.tcp_recovery", "1", true),
            ("net.ipv4.tcp_recovery", "4", false),
            ("net.ipv4.tcp_early_retrans", "4", true),
            ("net.ipv4.tcp_early_retrans", "2", false),
            ("net.ipv4.tcp_mtu_probing", "0", true),
            ("net.ipv4.tcp_mtu_probing", "1", true),
            ("net.ipv4.tcp_mtu_probing", "2", true),
            ("net.ipv4.tcp_mtu_probing", "3", false),
            ("net.ipv4.tcp_base_mss", "1024", true),
            ("net.ipv4.tcp_min_tso_segs", "2", true),
            ("net.ipv4.tcp_min_tso_segs", "10", false),
            ("net.ipv4.tcp_slow_start_after_idle", "0", true),
        ] {
            let e = apply_sysctl(&mut cfg, n, v);
            assert_eq!(!matches!(e, SysctlEffect::Unsupported(_)), ok, "{n}={v}: {e:?}");
        }
        assert!(!cfg.slow_start_after_idle);
        assert_eq!(cfg.congestion_control, CongestionAlgorithm::Cubic);
        assert!(cfg.tail_loss_probe);
        assert!(cfg.rack, "tcp_recovery=1 is the last applied");
        apply_sysctl(&mut cfg, "net.ipv4.tcp_recovery", "0");
        assert!(!cfg.rack);
    }

    #[test]
    fn sockbufs_double_like_linux() {
        assert_eq!(doubled_sockbuf(10_000, true), 20_000);
        assert_eq!(doubled_sockbuf(1, true), 2304);
        assert_eq!(doubled_sockbuf(1 << 20, true), 2 * RMEM_MAX);
    }
}
