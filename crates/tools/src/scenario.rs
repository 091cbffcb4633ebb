//! `utcp sim --scenario NAME`: small simulator runs that each teach one thing, with a
//! note on what to look for and a plot of the interesting direction.

use crate::plot::record::Recorder;
use crate::sim::{OpenMode, SimConfig, SimReport, run_observed};
use std::io::Write;
use std::time::Duration;
use utcp::device::link::{Impairments, Side};

pub struct Scenario {
    pub name: &'static str,
    pub title: &'static str,
    /// What to look for in the plot.
    pub look_for: &'static str,
    pub side: Side,
    pub config: fn() -> SimConfig,
}

fn link(delay_ms: u64, rate_bps: Option<u64>) -> Impairments {
    Impairments { delay: Duration::from_millis(delay_ms), rate_bps, queue_limit: 1000, ..Impairments::none() }
}

/// A one-way transfer of `bytes` from A to B over a 20 Mbit/s bottleneck.
fn base(bytes: u64, delay_ms: u64) -> SimConfig {
    let l = link(delay_ms, Some(20_000_000));
    SimConfig {
        bytes,
        bytes_b: Some(0),
        a_to_b: l.clone(),
        b_to_a: l,
        time_limit: Duration::from_secs(600),
        ..SimConfig::default()
    }
}

pub const ALL: &[Scenario] = &[
    Scenario {
        name: "slow-start",
        title: "slow start (RFC 5681 §3.1)",
        look_for: "The data bars climb in bursts that double every round trip: each ACK lets \
                   cwnd grow by one segment, so cwnd doubles per RTT until the receive window \
                   (the purple edge) is what limits the sender.",
        side: Side::A,
        config: || base(400_000, 20),
    },
    Scenario {
        name: "fast-recovery",
        title: "one loss, fast retransmit and NewReno fast recovery (RFC 5681 §3.2, RFC 6582)",
        look_for: "One segment (the 40th A sends) is lost. The ACK line stops climbing while \
                   SACK blocks (cyan) grow above it; after the third duplicate ACK the red bar \
                   is the fast retransmission. cwnd halves (ssthresh drops) and the orange \
                   band is fast recovery, ending when the ACK jumps over everything sent.",
        side: Side::A,
        config: || SimConfig { drop_a_to_b: vec![40], ..base(400_000, 20) },
    },
    Scenario {
        name: "rto",
        title: "retransmission timeout with exponential backoff (RFC 6298 (5.4)-(5.6))",
        look_for: "Everything A sends between 0.3 s and 2.5 s is lost. Red bars mark the \
                   RTO retransmissions: the gaps between them double (1 s, 2 s ...) because \
                   the timer backs off. cwnd falls to one segment and slow start begins \
                   again (the red band is RTO recovery).",
        side: Side::A,
        config: || SimConfig {
            blackout_a_to_b: Some((Duration::from_millis(300), Duration::from_millis(2500))),
            ..base(400_000, 20)
        },
    },
    Scenario {
        name: "zero-window",
        title: "a zero window and the persist timer (RFC 9293 §3.8.6.1)",
        look_for: "B reads nothing for 3 s and its 16 kB buffer fills: the purple window edge \
                   meets the ACK line (a zero window). A then sends orange one-byte \
                   zero-window probes on the persist timer, further and further apart, until \
                   B reads and the window opens.",
        side: Side::A,
        config: || {
            let mut c = base(100_000, 10);
            c.engine.recv_buffer = 16 * 1024;
            c.b_reads_after = Some(Duration::from_secs(3));
            c
        },
    },
    Scenario {
        name: "simultaneous-open",
        title: "simultaneous open (RFC 9293 §3.5, figure 8)",
        look_for: "Both sides send a SYN at the same instant; each answers the other's SYN \
                   with a SYN-ACK (circles at the bottom): four segments open the \
                   connection instead of three, and data follows.",
        side: Side::A,
        config: || SimConfig { open: OpenMode::Simultaneous, ..base(20_000, 10) },
    },
    Scenario {
        name: "syn-flood",
        title: "a SYN flood answered with SYN cookies",
        look_for: "64 spoofed SYNs fill B's SYN queue (backlog 8) with half-open connections \
                   whose SYN-ACKs nobody answers. From then on B answers every SYN, A's too, \
                   with a SYN cookie (RFC 4987 §3.6): the ISS encodes the connection, B keeps \
                   no state, and A's ACK brings the cookie back, so A's handshake completes at \
                   once and the transfer goes through. With --trace --explain the SYN-ACKs \
                   read 'SYN-ACK with a SYN cookie'; the counters show SyncookiesSent/Recv.",
        side: Side::A,
        config: || {
            let mut c = base(100_000, 10);
            c.syn_flood = 64;
            let mut b = c.engine.clone();
            b.syn_retries = 2;
            c.engine_b = Some(b);
            c
        },
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    ALL.iter().find(|s| s.name == name)
}

/// Run `sc` (with `--explain` annotations in the trace if asked): the report and the recording.
pub fn run(sc: &Scenario, trace: Option<&mut dyn Write>, explain: bool) -> (SimReport, Recorder) {
    let cfg = SimConfig { explain, ..(sc.config)() };
    let mut rec = Recorder::new();
    let report = run_observed(&cfg, trace, None, Some(&mut rec));
    (report, rec)
}
