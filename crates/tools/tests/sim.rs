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
        Config { congestion_control: CongestionAlgorithm::Cubic, ..Config::default() },
        Config {
            congestion_control: CongestionAlgorithm::Cubic,
            tail_loss_probe: false,
            ..Config::default()
        },
        Config { tail_loss_probe: false, ..Config::default() },
        Config { prr: false, ..Config::default() },
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
        let cfg = Config { tail_loss_probe: false, ..Config::default() };
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
