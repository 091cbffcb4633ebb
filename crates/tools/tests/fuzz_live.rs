//! Hostile packets against a stack holding live connections (driver: `utcp_tools::fuzz`).
//! Sequence numbers are drawn near RCV.NXT and acknowledgments near SND.UNA, so a good
//! share lands in the window; the shielded connections must survive and still deliver
//! byte-exact. The long run is `cargo run --release -p utcp-tools --example fuzz_live`.

use utcp_tools::fuzz::{LiveFuzz, run_live, run_structured};

#[test]
fn a_million_hostile_packets_against_live_connections() {
    let cfg = LiveFuzz { packets: 1_050_000, ..LiveFuzz::default() };
    let r = run_live(&cfg).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{r:#?}");
    assert_eq!(r.packets, 1_050_000);
    // The draw reaches the window: at least a tenth of the aimed segments are in it,
    // including RSTs and SYNs that must only draw a challenge ACK (RFC 5961 §3.2, §4).
    assert!(r.aimed > cfg.packets / 2, "{r:?}");
    assert!(r.in_window * 10 > r.aimed, "too few in-window segments: {r:?}");
    assert!(r.in_window_rst > 1_000 && r.in_window_syn > 1_000, "{r:?}");
    // Every shielded connection survived and delivered both ways.
    assert_eq!(r.shielded, cfg.conns / 2);
    assert_eq!(r.shielded_ok, r.shielded);
    assert_eq!(r.exposed, cfg.conns / 2);
    // Noise and bit flips were seen and dropped by reason.
    assert!(r.bad_checksum > 10_000, "{r:?}");
    assert!(r.in_segs > cfg.packets / 2, "{r:?}");
    // No amplification: at most one answer per injected packet.
    assert!(r.answers <= r.packets, "{r:?}");
}

#[test]
fn structure_aware_segments_against_live_connections() {
    let r = run_structured(20_000, 0x5eed).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{r:#?}");
    assert_eq!(r.inputs, 20_000);
    assert!(r.segments > 2 * r.inputs, "{r:?}");
    // A good share reaches a TCB or listener; B never answers more than it was sent.
    assert!(r.in_segs * 4 > r.segments && r.drops > r.segments / 20, "{r:?}");
    assert!(r.answers <= r.segments, "amplification: {r:?}");
}
