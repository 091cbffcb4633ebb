//! Simulation tests: two engines over the impaired in-memory link, many seeds and mixes.
//! Each run must deliver every byte both ways (SHA-256) and end with both sides CLOSED.

use utcp::device::link::Impairments;
use utcp::engine::config::CongestionAlgorithm;
use utcp::engine::{Config, State};
use utcp::time::Duration;
use utcp_tools::sim::{CloseMode, OpenMode, SimConfig, SimReport, run};

fn harsh() -> Impairments {
    Impairments {
        loss: 0.1,
        reorder: 0.05,
        dup: 0.02,
        corrupt: 0.001,
        delay: Duration::from_millis(5),
        ..Impairments::none()
    }
}

fn sim(bytes: u64, imp: Impairments, seed: u64, close: CloseMode, open: OpenMode) -> SimReport {
    sim_with(bytes, imp, seed, close, open, Config::default())
}

fn sim_with(
    bytes: u64,
    imp: Impairments,
    seed: u64,
    close: CloseMode,
    open: OpenMode,
    engine: Config,
) -> SimReport {
    let cfg = SimConfig {
        bytes,
        a_to_b: imp.clone(),
        b_to_a: imp,
        seed,
        close,
        open,
        engine,
        ..SimConfig::default()
    };
    let r = run(&cfg, None, None);
    assert!(r.ok(), "seed {seed} {close:?} {open:?}: {:?}", r.failure);
    assert_eq!(r.a.sent, bytes);
    assert_eq!(r.b.received, bytes);
    assert_eq!(r.a.sha_sent, r.b.sha_received);
    assert_eq!(r.b.sha_sent, r.a.sha_received);
    r
}

/// The acceptance mix: 10% loss, 5% reorder, 2% duplication, 0.1% corruption,
/// seeds 1..=20, for each close mode.
#[test]
fn harsh_mix_all_close_modes_20_seeds() {
    for close in [CloseMode::Active, CloseMode::Passive, CloseMode::Simultaneous] {
        for seed in 1..=20 {
            let r = sim(2 << 20, harsh(), seed, close, OpenMode::Normal);
            assert!(r.a.retransmits + r.b.retransmits > 0, "10% loss must cause retransmissions");
        }
    }
}

/// The same mix for every loss-recovery configuration (issue 10): CUBIC, NewReno without
/// the tail loss probe, RFC 6675 without PRR, and both congestion controls with RACK
/// (RFC 8985 §6) on and off. Every run stays byte-exact.
#[test]
fn harsh_mix_every_congestion_control_20_seeds() {
    let rack = |cc: CongestionAlgorithm, on: bool| {
        let mut c = Config::deterministic(1);
        c.congestion_control = cc;
        c.rack = on;
        c
    };
    let configs = [
        rack(CongestionAlgorithm::NewReno, true),
        rack(CongestionAlgorithm::NewReno, false),
        rack(CongestionAlgorithm::Cubic, true),
        rack(CongestionAlgorithm::Cubic, false),
        Config::default().with_congestion_control(CongestionAlgorithm::Cubic),
        Config::default().with_congestion_control(CongestionAlgorithm::Cubic).with_tail_loss_probe(false),
        Config::default().with_tail_loss_probe(false),
        Config::default().with_prr(false),
    ];
    for engine in configs {
        for close in [CloseMode::Active, CloseMode::Passive, CloseMode::Simultaneous] {
            for seed in 1..=20 {
                let r = sim_with(2 << 20, harsh(), seed, close, OpenMode::Normal, engine.clone());
                assert!(r.a.retransmits + r.b.retransmits > 0, "10% loss must cause retransmissions");
                assert!(r.a.received_all_at.is_some() && r.b.received_all_at.is_some());
            }
        }
    }
}

/// The tail loss probe fires under loss (its counter moves) and stays off when disabled.
#[test]
fn tail_loss_probes_are_sent_only_when_enabled() {
    let imp = Impairments { loss: 0.05, delay: Duration::from_millis(5), ..Impairments::none() };
    let (mut on, mut off) = (0, 0);
    for seed in 1..=10 {
        let r = sim(256 << 10, imp.clone(), seed, CloseMode::Active, OpenMode::Normal);
        on += r.a.counters.tlp_probes + r.b.counters.tlp_probes;
        let cfg = Config::default().with_tail_loss_probe(false);
        let r = sim_with(256 << 10, imp.clone(), seed, CloseMode::Active, OpenMode::Normal, cfg);
        off += r.a.counters.tlp_probes + r.b.counters.tlp_probes;
    }
    assert!(on > 0);
    assert_eq!(off, 0);
}

/// RACK (RFC 8985 §6) marks losses under loss (its counter moves) and none when disabled.
#[test]
fn rack_marks_losses_only_when_enabled() {
    let imp = Impairments { loss: 0.05, delay: Duration::from_millis(5), ..Impairments::none() };
    let (mut on, mut off) = (0, 0);
    for seed in 1..=5 {
        let mut cfg = Config::deterministic(1);
        cfg.rack = true;
        let r = sim_with(256 << 10, imp.clone(), seed, CloseMode::Active, OpenMode::Normal, cfg.clone());
        on += r.a.counters.rack_lost_marks + r.b.counters.rack_lost_marks;
        cfg.rack = false;
        let r = sim_with(256 << 10, imp.clone(), seed, CloseMode::Active, OpenMode::Normal, cfg);
        off += r.a.counters.rack_lost_marks + r.b.counters.rack_lost_marks;
    }
    assert!(on > 0);
    assert_eq!(off, 0);
}

#[test]
fn ten_megabytes_each_way_under_the_harsh_mix() {
    for seed in [7, 13] {
        sim(10 << 20, harsh(), seed, CloseMode::Active, OpenMode::Normal);
    }
}

#[test]
fn close_modes_walk_the_rfc_state_sequences() {
    let clean = Impairments { delay: Duration::from_millis(5), ..Impairments::none() };
    // Active close (RFC 9293 §3.6 figure 12): the closer goes through FIN-WAIT-1/2 and
    // TIME-WAIT, the other through CLOSE-WAIT and LAST-ACK.
    let r = sim(100_000, clean.clone(), 1, CloseMode::Active, OpenMode::Normal);
    assert_eq!(
        r.a.states,
        vec![
            State::Closed,
            State::SynSent,
            State::Established,
            State::FinWait1,
            State::FinWait2,
            State::TimeWait,
            State::Closed
        ]
    );
    assert_eq!(
        r.b.states,
        vec![
            State::Closed,
            State::SynReceived,
            State::Established,
            State::CloseWait,
            State::LastAck,
            State::Closed
        ]
    );
    // Passive: mirror image.
    let r = sim(100_000, clean.clone(), 1, CloseMode::Passive, OpenMode::Normal);
    assert!(r.b.states.contains(&State::TimeWait) && r.a.states.contains(&State::LastAck));
    // Simultaneous close (figure 13): both through CLOSING and TIME-WAIT.
    let r = sim(100_000, clean.clone(), 1, CloseMode::Simultaneous, OpenMode::Normal);
    for s in [&r.a, &r.b] {
        assert_eq!(
            s.states[s.states.len() - 4..],
            [State::FinWait1, State::Closing, State::TimeWait, State::Closed]
        );
    }
    // Simultaneous open (figure 8): both SYN-SENT → SYN-RECEIVED → ESTABLISHED.
    let r = sim(100_000, clean, 1, CloseMode::Active, OpenMode::Simultaneous);
    for s in [&r.a, &r.b] {
        assert_eq!(s.states[..4], [State::Closed, State::SynSent, State::SynReceived, State::Established]);
    }
}

#[test]
fn simultaneous_open_and_close_under_impairments() {
    for seed in 1..=10 {
        sim(256 << 10, harsh(), seed, CloseMode::Simultaneous, OpenMode::Simultaneous);
    }
}

#[test]
fn many_mixes_small_transfers() {
    let mixes = [
        Impairments { loss: 0.3, delay: Duration::from_millis(2), ..Impairments::none() },
        Impairments { reorder: 0.5, delay: Duration::from_millis(2), ..Impairments::none() },
        Impairments { dup: 0.5, delay: Duration::from_millis(2), ..Impairments::none() },
        Impairments { corrupt: 0.2, delay: Duration::from_millis(2), ..Impairments::none() },
        Impairments {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(15),
            ..Impairments::none()
        },
        Impairments {
            rate_bps: Some(10_000_000),
            queue_limit: 20,
            delay: Duration::from_millis(10),
            ..Impairments::none()
        },
    ];
    for (i, imp) in mixes.iter().enumerate() {
        for seed in 1..=5 {
            sim(300_000, imp.clone(), seed * 100 + i as u64, CloseMode::Active, OpenMode::Normal);
        }
    }
}

#[test]
fn same_seed_same_run() {
    let a = sim(500_000, harsh(), 42, CloseMode::Active, OpenMode::Normal);
    let b = sim(500_000, harsh(), 42, CloseMode::Active, OpenMode::Normal);
    assert_eq!(a.duration, b.duration);
    assert_eq!(a.a.retransmits, b.a.retransmits);
    assert_eq!(a.link.a_to_b.sent, b.link.a_to_b.sent);
}

/// `utcp sim --ipv6` (issue 13): the harsh mix over IPv6 stays byte-exact in every close
/// mode and both open modes, and every packet on the link is IPv6 (full-sized segments
/// fill the MTU with the 40-byte IPv6 header, one flow label per direction).
#[test]
fn harsh_mix_over_ipv6_is_byte_exact() {
    use utcp::device::link::Side;
    use utcp::engine::TxReason;
    use utcp::time::Instant;
    use utcp_tools::sim::{Observer, run_observed};
    #[derive(Default)]
    struct Watch {
        packets: u64,
        not_v6: u64,
        max_payload: usize,
        labels: std::collections::BTreeSet<(bool, u32)>,
    }
    impl Observer for Watch {
        fn segment(&mut self, _now: Instant, from: Side, p: &[u8], _why: TxReason) {
            self.packets += 1;
            match utcp::wire::parse_ipv6_tcp(p) {
                Ok(s) => {
                    self.max_payload = self.max_payload.max(s.payload.len());
                    let label = u32::from_be_bytes([0, p[1] & 0x0f, p[2], p[3]]);
                    self.labels.insert((matches!(from, Side::A), label));
                }
                Err(_) => self.not_v6 += 1,
            }
        }
        fn engine(&mut self, _now: Instant, _side: Side, _status: &utcp::engine::Status) {}
    }
    for (close, open) in [
        (CloseMode::Active, OpenMode::Normal),
        (CloseMode::Passive, OpenMode::Normal),
        (CloseMode::Simultaneous, OpenMode::Simultaneous),
    ] {
        for seed in 1..=5 {
            let cfg = SimConfig {
                bytes: 1 << 20,
                a_to_b: harsh(),
                b_to_a: harsh(),
                seed,
                close,
                open,
                ipv6: true,
                ..SimConfig::default()
            };
            let mut w = Watch::default();
            let r = run_observed(&cfg, None, None, Some(&mut w));
            assert!(r.ok(), "seed {seed} {close:?}: {:?}", r.failure);
            assert_eq!((r.a.sent, r.b.received), (1 << 20, 1 << 20));
            assert_eq!(r.a.sha_sent, r.b.sha_received);
            assert_eq!(r.b.sha_sent, r.a.sha_received);
            assert!(w.packets > 1000);
            assert_eq!(w.not_v6, 0, "every packet the engines send is IPv6/TCP");
            // MSS over IPv6 is MTU 1500 − 60 = 1440, less the 12-byte timestamp option:
            // 40 + 20 + 12 + 1428 = 1500 bytes on the wire (IPv4 carries 1448).
            assert_eq!(w.max_payload, 1428, "full-sized IPv6 segments fill the 1500-byte MTU");
            assert_eq!(w.labels.len(), 2, "one RFC 6437 flow label per direction: {:?}", w.labels);
        }
    }
}
