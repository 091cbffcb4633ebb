//! ICMPv6 errors for TCP (RFC 4443 §3, RFC 5927, RFC 8201): the same handler as IPv4's
//! (crates/engine/src/icmp_error.rs `from_v6`, crates/engine/src/icmp6_stack.rs), exact
//! segments on virtual time.

mod common;
use common::*;
use std::net::Ipv6Addr;
use utcp_engine::CloseReason;
use utcp_engine::wire::DropReason;
use utcp_engine::wire::checksum::{fold, sum};
use utcp_engine::wire::ipv6::pseudo_header;

const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);

/// An ICMPv6 error from a router to us (RFC 4443 §2.1), quoting the IPv6 header and the
/// first 8 TCP bytes of a segment we sent (LOCAL → REMOTE) with SEG.SEQ `seq`. `param` is
/// the 32-bit field after the checksum (the MTU of a packet too big).
fn icmp6_error(ty: u8, code: u8, param: u32, seq: u32) -> Vec<u8> {
    let mut quoted = vec![0u8; 48];
    quoted[0] = 0x60;
    quoted[4..6].copy_from_slice(&1440u16.to_be_bytes());
    quoted[6] = 6;
    quoted[7] = 64;
    quoted[8..24].copy_from_slice(&LOCAL_IP6.octets());
    quoted[24..40].copy_from_slice(&REMOTE_IP6.octets());
    quoted[40..42].copy_from_slice(&LOCAL_PORT.to_be_bytes());
    quoted[42..44].copy_from_slice(&REMOTE_PORT.to_be_bytes());
    quoted[44..48].copy_from_slice(&seq.to_be_bytes());
    let mut icmp = vec![ty, code, 0, 0];
    icmp.extend_from_slice(&param.to_be_bytes());
    icmp.extend_from_slice(&quoted);
    let c = !fold(sum(&icmp, pseudo_header(&ROUTER6, &LOCAL_IP6, 58, icmp.len() as u32)));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(icmp.len() as u16).to_be_bytes());
    p[6] = 58;
    p[7] = 64;
    p[8..24].copy_from_slice(&ROUTER6.octets());
    p[24..40].copy_from_slice(&LOCAL_IP6.octets());
    p.extend_from_slice(&icmp);
    p
}

/// RFC 4443 §3.1 code 4 (port unreachable) is hard, as IPv4's: it aborts SYN-SENT.
#[test]
fn port_unreachable_aborts_syn_sent_over_ipv6() {
    let mut h = H::new6(base_config());
    h.open_to_syn_sent();
    h.events();
    h.send_raw(&icmp6_error(1, 4, 0, h.iss));
    assert_eq!(closed_reason(&mut h), Some(CloseReason::Refused));
    assert_eq!(h.stack.counters().icmp_hard_aborts, 1);
    h.expect_nothing();
}

/// RFC 5927 §4.1: a quote outside SND.UNA..SND.NXT changes nothing and is counted.
#[test]
fn out_of_window_icmp6_quote_is_counted_and_ignored() {
    let mut h = H::new6(base_config());
    h.open_to_syn_sent();
    h.events();
    h.send_raw(&icmp6_error(1, 4, 0, h.iss.wrapping_add(1000)));
    assert_eq!(h.stack.counters().dropped(DropReason::IcmpOutOfWindow), 1);
    assert_eq!(h.state(), Some(State::SynSent));
    assert!(closed_reason(&mut h).is_none());
}

/// RFC 8201 §4: a Packet Too Big lowers the path MTU (never below 1280, RFC 8200 §5) and
/// the data is resent at MTU − 60.
#[test]
fn packet_too_big_lowers_mss_and_resends_over_ipv6() {
    let mut h = H::new6(base_config());
    h.establish_passive(mss_opts(1440));
    h.write(&payload(2880));
    h.expect(ACK, h.our(0), h.peer(0)).len(1440);
    h.expect(ACK | PSH, h.our(1440), h.peer(0)).len(1440);
    h.send_raw(&icmp6_error(2, 0, 1280, h.our(0)));
    assert_eq!(h.stack.path_mss(h.c()).unwrap(), Some(1220));
    assert_eq!(h.stack.counters().pmtu_reductions, 1);
    h.expect(ACK, h.our(0), h.peer(0)).len(1220);
    h.expect(ACK, h.our(1220), h.peer(0)).len(1220);
    h.expect(ACK | PSH, h.our(2440), h.peer(0)).len(440);
    h.expect_nothing();
    // Below the IPv6 minimum link MTU: clamped to 1280, so nothing changes.
    h.send_raw(&icmp6_error(2, 0, 600, h.our(0)));
    assert_eq!(h.stack.path_mss(h.c()).unwrap(), Some(1220));
    assert_eq!(h.stack.counters().dropped(DropReason::IcmpPmtuIgnored), 1);
}

/// A quote of something other than TCP right after the IPv6 header is `IcmpNotTcp`; an
/// unknown error type is `IcmpIgnored`.
#[test]
fn unusable_icmp6_errors_are_dropped_by_reason() {
    let mut h = H::new6(base_config());
    h.establish_passive(mss_opts(1440));
    let mut p = icmp6_error(1, 4, 0, h.our(0));
    p[40 + 8 + 6] = 17; // quoted next header: UDP
    // The checksum no longer matches: recompute it.
    p[42..44].fill(0);
    let c = !fold(sum(&p[40..], pseudo_header(&ROUTER6, &LOCAL_IP6, 58, (p.len() - 40) as u32)));
    p[42..44].copy_from_slice(&c.to_be_bytes());
    h.send_raw(&p);
    assert_eq!(h.stack.counters().dropped(DropReason::IcmpNotTcp), 1);
    h.send_raw(&icmp6_error(1, 7, 0, h.our(0)));
    assert_eq!(h.stack.counters().dropped(DropReason::IcmpIgnored), 1);
    assert_eq!(h.state(), Some(State::Established));
}

/// `Config::pmtu_syn_mss` (the freebsd profile): a Packet Too Big quoting our SYN lowers the
/// MSS option of the retransmitted SYN to the path's (MTU 1300 − 60 = 1240); off (the
/// default, Linux's advmss) the offer stays 1440 and only what we send is bounded.
#[test]
fn packet_too_big_in_syn_sent_lowers_the_syn_mss_only_with_the_knob() {
    for (knob, want) in [(false, 1440), (true, 1240)] {
        let mut h = H::new6(base_config().with_pmtu_syn_mss(knob));
        let syn = h.open_to_syn_sent();
        assert_eq!(syn.options.mss, Some(1440));
        h.send_raw(&icmp6_error(2, 0, 1300, h.iss));
        assert_eq!(h.stack.path_mss(h.c()).unwrap(), Some(1240));
        h.fire_timer();
        let again = h.recv().expect("SYN retransmission");
        assert!(again.flags.syn());
        assert_eq!(again.options.mss, Some(want), "pmtu_syn_mss = {knob}");
    }
}
