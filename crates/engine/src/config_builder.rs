//! Builder-style setters for [`Config`] (issue 8). `Config` is `#[non_exhaustive]`, so
//! code outside this crate cannot write a struct literal: it starts from a profile
//! ([`Config::default`], [`Config::deterministic`], ...) and chains `with_<field>(v)`, or
//! mutates a `let mut` binding. Adding a knob is then not a breaking change.
//!
//! A new public `Config` field needs one line in the list below; the
//! `every_field_has_a_setter` test fails until it has one.

use crate::Config;
use crate::config::{CongestionAlgorithm, Keepalive, SynCookies};
use crate::time::Duration;
use crate::wire::OptionLayout;

/// Generates `pub fn with_<field>(mut self, v: T) -> Self` for each
/// `with_<field> => field: T` line, documented as a link to the field.
macro_rules! config_setters {
    ($($setter:ident => $field:ident: $ty:ty,)*) => {
        impl Config {
            $(
                #[doc = concat!("Builder-style setter: returns the config with [`Config::", stringify!($field), "`] set to `v`.")]
                #[must_use = "a builder setter returns the changed config"]
                pub fn $setter(mut self, v: $ty) -> Self {
                    self.$field = v;
                    self
                }
            )*
        }

        /// The fields that have a setter, for the drift test.
        #[cfg(test)]
        const FIELDS_WITH_SETTERS: &[&str] = &[$(stringify!($field)),*];
    };
}

config_setters! {
    with_mtu => mtu: usize,
    with_mss => mss: Option<u16>,
    with_recv_buffer => recv_buffer: usize,
    with_recv_buffer_round_to_mss => recv_buffer_round_to_mss: bool,
    with_window_full_space => window_full_space: bool,
    with_resend_fin_with_ack => resend_fin_with_ack: bool,
    with_send_buffer => send_buffer: usize,
    with_send_lowat => send_lowat: Option<usize>,
    with_send_mss_option => send_mss_option: bool,
    with_window_scale => window_scale: bool,
    with_window_scale_shift => window_scale_shift: Option<u8>,
    with_sack => sack: bool,
    with_dsack => dsack: bool,
    with_timestamps => timestamps: bool,
    with_option_layout => option_layout: OptionLayout,
    with_initial_rto => initial_rto: Duration,
    with_min_rto => min_rto: Duration,
    with_max_rto => max_rto: Duration,
    with_rto_slop => rto_slop: Duration,
    with_syn_retries => syn_retries: u32,
    with_connect_timeout => connect_timeout: Option<Duration>,
    with_data_retries => data_retries: u32,
    with_msl => msl: Duration,
    with_delayed_ack => delayed_ack: Option<Duration>,
    with_defer_window_update => defer_window_update: bool,
    with_ack_every => ack_every: u32,
    with_ack_every_counts_segments => ack_every_counts_segments: bool,
    with_nagle => nagle: bool,
    with_nagle_minshall => nagle_minshall: bool,
    with_keepalive => keepalive: Option<Keepalive>,
    with_rfc5961 => rfc5961: bool,
    with_rfc5961_syn => rfc5961_syn: bool,
    with_ack_old_segments => ack_old_segments: bool,
    with_drop_synfin => drop_synfin: bool,
    with_rfc1337 => rfc1337: bool,
    with_time_wait_bsd => time_wait_bsd: bool,
    with_challenge_ack_limit => challenge_ack_limit: u32,
    with_initial_window_segments => initial_window_segments: Option<u32>,
    with_isn_secret => isn_secret: [u8; 16],
    with_ttl => ttl: u8,
    with_ephemeral_ports => ephemeral_ports: (u16, u16),
    with_trace_states => trace_states: bool,
    with_max_ooo_ranges => max_ooo_ranges: usize,
    with_default_backlog => default_backlog: usize,
    with_challenge_ack_interval => challenge_ack_interval: Duration,
    with_challenge_ack_burst => challenge_ack_burst: u32,
    with_oow_ack_interval => oow_ack_interval: Duration,
    with_ipfrag_high_thresh => ipfrag_high_thresh: usize,
    with_ipfrag_max_datagrams => ipfrag_max_datagrams: usize,
    with_ipfrag_max_fragments => ipfrag_max_fragments: usize,
    with_ipfrag_time => ipfrag_time: Duration,
    with_listen_drop_syn_ack => listen_drop_syn_ack: bool,
    with_syn_rexmit_drop_options => syn_rexmit_drop_options: Option<u32>,
    with_ts_missing_drop => ts_missing_drop: bool,
    with_slow_start_after_idle => slow_start_after_idle: bool,
    with_window_scale_space => window_scale_space: Option<usize>,
    with_quickack_segments => quickack_segments: u32,
    with_accept_beyond_window_if_empty => accept_beyond_window_if_empty: bool,
    with_syn_cookies => syn_cookies: SynCookies,
    with_syn_queue_len => syn_queue_len: usize,
    with_local_prefix_len => local_prefix_len: Option<u8>,
    with_max_time_wait => max_time_wait: usize,
    with_buffer_memory => buffer_memory: usize,
    with_congestion_control => congestion_control: CongestionAlgorithm,
    with_prr => prr: bool,
    with_tail_loss_probe => tail_loss_probe: bool,
    with_icmp_echo_per_sec => icmp_echo_per_sec: u32,
    with_v6only => v6only: bool,
    with_icmp_may_rst => icmp_may_rst: bool,
    with_icmp_time_exceeded_hard => icmp_time_exceeded_hard: bool,
    with_icmp_hard_refused => icmp_hard_refused: bool,
    with_pmtu_discovery => pmtu_discovery: bool,
    with_min_pmtu => min_pmtu: u16,
    with_mtu_probing => mtu_probing: u8,
    with_base_mss => base_mss: u16,
    with_mtu_probe_interval => mtu_probe_interval: Duration,
    with_pmtu_expires => pmtu_expires: Duration,
    with_tos => tos: u8,
    with_pmtu_syn_mss => pmtu_syn_mss: bool,
    with_rack => rack: bool,
    with_min_rtt_window => min_rtt_window: Duration,
    with_fast_path => fast_path: bool,
}

#[cfg(test)]
mod tests {
    use super::FIELDS_WITH_SETTERS;

    /// Every `pub field:` of `struct Config` in config.rs has a `with_` setter.
    #[test]
    fn every_field_has_a_setter() {
        let src = include_str!("config.rs");
        let start = src.find("pub struct Config {").expect("struct Config in config.rs");
        let body = &src[start..];
        let body = &body[..body.find("\n}\n").expect("end of struct Config")];
        let fields: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("    pub "))
            .filter_map(|l| l.split(':').next())
            .collect();
        assert!(fields.len() > 50, "parsed {} fields", fields.len());
        for f in &fields {
            assert!(
                FIELDS_WITH_SETTERS.contains(f),
                "Config::{f} has no with_{f} setter in config_builder.rs"
            );
        }
        assert_eq!(fields.len(), FIELDS_WITH_SETTERS.len(), "a setter names a field that is gone");
    }

    #[test]
    fn setters_set_their_field() {
        let c = crate::Config::deterministic(1).with_mtu(1280).with_sack(false).with_mss(Some(900));
        assert_eq!((c.mtu, c.sack, c.mss), (1280, false, Some(900)));
    }
}
