//! RACK time-based loss detection (RFC 8985 §6): exact segments on virtual time.
//!
//! The stack sends with SACK (no timestamps, MSS 1460); the test plays a receiver 100 ms
//! away. RACK.min_RTT is then 100 ms and the reordering window min(min_RTT / 4, SRTT)
//! = 25 ms; the PTO (2 * SRTT) is 200 ms.

mod common;
use common::*;

const SMSS: u32 = 1460;
const RTT: Duration = Duration::from_millis(100);

fn sender(rack: bool) -> H {
    let mut cfg = base_config().with_sack(true);
    cfg.rack = rack;
    cfg.tail_loss_probe = true;
    let mut h = H::new(cfg);
    // The handshake takes one RTT too, so SRTT starts at 100 ms (RFC 6298 (2.2)).
    h.open_to_syn_received(TcpOptions { sack_permitted: true, ..mss_opts(MSS) });
    h.advance(RTT);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    let (c, _) = h.stack.accept(h.listener.unwrap()).expect("accept");
    h.conn = Some(c);
    h.expect_nothing();
    h
}

#[track_caller]
fn expect_data(h: &mut H, seg: u32) -> Out {
    let o = h.expect(ACK, h.our(seg * SMSS), h.peer(0));
    assert_eq!(o.payload.len(), SMSS as usize, "{o}");
    o
}

/// An ACK of our bytes up to segment `una`, SACKing segments `[a, b)` for each block.
fn ack(h: &H, una: u32, blocks: &[(u32, u32)]) -> Seg {
    let b: Vec<(u32, u32)> = blocks.iter().map(|&(a, e)| (h.our(a * SMSS), h.our(e * SMSS))).collect();
    Seg::new(ACK, h.peer(0), h.our(una * SMSS)).sack(&b)
}

/// Four segments leave at once; one RTT later segments 0 and 1 are ACKed and segment 3
/// is SACKed: segment 2 is missing.
fn hole_at_two(h: &mut H) {
    h.write(&payload((4 * SMSS) as usize));
    for i in 0..4 {
        let o = h.recv().expect("segment");
        assert_eq!(o.seq, h.our(i * SMSS), "{o}");
    }
    h.expect_nothing();
    h.advance(RTT);
    h.send(ack(h, 2, &[]));
    h.send(ack(h, 2, &[(3, 4)]));
}

/// The reordering window for this harness: min(RACK.min_RTT / 4, SRTT).
fn reo_wnd(h: &H) -> Duration {
    let srtt = Duration::from_micros(h.stack.status(h.c()).unwrap().srtt_us);
    (RTT / 4).min(srtt)
}

/// Reordering within reo_wnd (RFC 8985 §6.2 step 5): the ACK that SACKs segment 3 leaves
/// segment 2 a reordering window; it arrives within it and nothing is retransmitted.
#[test]
fn reordering_within_reo_wnd_is_not_retransmitted() {
    let mut h = sender(true);
    hole_at_two(&mut h);
    h.expect_nothing();
    // The reordering timer is armed for reo_wnd, and it replaced the PTO (§8).
    assert_eq!(h.next_timer(), Some(reo_wnd(&h)));
    h.advance(reo_wnd(&h) / 2);
    h.send(ack(&h, 4, &[]));
    h.expect_nothing();
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!((st.retransmits, st.bytes_in_flight), (0, 0));
    assert_eq!(h.stack.counters().rack_lost_marks, 0);
    assert_eq!(h.next_timer(), None);
}

/// A tail segment lost (one SACK after it, so DupThresh and IsLost() never fire): RACK
/// marks it lost when its reordering timer fires, reo_wnd after the SACK, and loss
/// recovery retransmits it; no tail loss probe, no RTO.
#[test]
fn tail_loss_marked_after_reo_wnd_and_timer_fires() {
    let mut h = sender(true);
    hole_at_two(&mut h);
    h.expect_nothing();
    let waited = h.fire_timer();
    assert_eq!(waited, reo_wnd(&h));
    assert_eq!(h.stack.counters().rack_reo_timeouts, 1);
    assert_eq!(h.stack.counters().rack_lost_marks, 1);
    expect_data(&mut h, 2);
    h.expect_nothing();
    h.advance(RTT);
    h.send(ack(&h, 4, &[]));
    h.expect_nothing();
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!((st.retransmits, st.fast_retransmits, st.timeouts), (1, 1, 0));
    assert_eq!(h.stack.counters().tlp_probes, 0);
}

/// The same loss without RACK: RFC 6675 alone waits; the tail loss probe resends the last
/// segment, which the receiver already holds.
#[test]
fn without_rack_the_same_tail_loss_waits_for_the_probe() {
    let mut h = sender(false);
    hole_at_two(&mut h);
    h.expect_nothing();
    let waited = h.fire_timer();
    assert!(waited > reo_wnd(&h), "{waited:?}");
    let o = h.expect(ACK | PSH, h.our(3 * SMSS), h.peer(0));
    assert_eq!(o.payload.len(), SMSS as usize);
    assert_eq!(h.stack.counters().tlp_probes, 1);
    assert_eq!(h.stack.counters().rack_reo_timeouts, 0);
}

/// A lost retransmission (RFC 8985 §6.2: "RACK can detect lost retransmissions"): the fast
/// retransmission of segment 0 is lost too. One RTT later the new segment sent after it is
/// SACKed while segment 0 is not: sent more than RACK.rtt + reo_wnd (0 in recovery) before
/// a delivered segment, it is lost and goes again, before any RTO. RFC 6675's IsLost
/// rule would need more than 2 SMSS SACKed above it.
#[test]
fn lost_retransmission_recovered_without_rto() {
    let mut h = sender(true);
    h.write(&payload((30 * SMSS) as usize));
    for i in 0..10 {
        expect_data(&mut h, i);
    }
    h.advance(RTT);
    // Segment 0 lost; duplicates SACK 1, 1-2, 1-3 one millisecond apart; limited
    // transmit sends 10 and 11, the third duplicate the fast retransmit.
    h.send(ack(&h, 0, &[(1, 2)]));
    expect_data(&mut h, 10);
    h.advance(Duration::from_millis(1));
    h.send(ack(&h, 0, &[(1, 3)]));
    expect_data(&mut h, 11);
    h.advance(Duration::from_millis(1));
    h.send(ack(&h, 0, &[(1, 4)]));
    expect_data(&mut h, 0);
    h.expect_nothing();
    // The rest of the first flight is SACKed now; PRR sends new data (segments 12..).
    h.advance(Duration::from_millis(1));
    let mut sent = Vec::new();
    for top in 5..=10 {
        h.send(ack(&h, 0, &[(1, top)]));
        sent.extend(h.drain().into_iter().map(|o| o.seq.wrapping_sub(h.our(0)) / SMSS));
    }
    assert!(!sent.is_empty() && !sent.contains(&0), "new data only: {sent:?}");
    // One RTT after the retransmission, segments 10 and 11 (sent before it) arrive: that
    // proves nothing about segment 0.
    h.advance(RTT - Duration::from_millis(2));
    h.send(ack(&h, 0, &[(1, 12)]));
    let out = h.drain();
    assert!(out.iter().all(|o| o.seq != h.our(0)), "{out:?}");
    // Then the first segment sent after the retransmission is SACKed: segment 0 again.
    h.advance(Duration::from_millis(1));
    h.send(ack(&h, 0, &[(1, 13)]));
    let out = h.drain();
    assert_eq!(out.first().map(|o| o.seq), Some(h.our(0)), "{out:?}");
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!(st.timeouts, 0);
    assert_eq!(st.fast_retransmits, 1);
    assert!(h.stack.counters().rack_lost_marks >= 2);
}

/// A D-SACK (RFC 2883) for a spurious retransmission widens the reordering window
/// (RFC 8985 §6.2 step 3: reo_wnd_mult 2), so the next hole waits twice as long.
#[test]
fn dsack_widens_the_reordering_window() {
    let mut h = sender(true);
    hole_at_two(&mut h);
    assert_eq!(h.fire_timer(), RTT / 4);
    expect_data(&mut h, 2);
    h.expect_nothing();
    // Segment 2 was only late: the receiver reports the retransmission as a duplicate.
    h.advance(RTT);
    let d = (h.our(2 * SMSS), h.our(3 * SMSS));
    h.send(Seg::new(ACK, h.peer(0), h.our(4 * SMSS)).sack(&[d]));
    h.expect_nothing();
    // Next flight: segment 4 missing, 5 SACKed. The window is now 2 * min_RTT / 4.
    // (cwnd is ssthresh = 2 segments after the recovery.)
    h.write(&payload((2 * SMSS) as usize));
    assert_eq!(h.drain().len(), 2);
    h.advance(RTT);
    h.send(ack(&h, 4, &[(5, 6)]));
    h.expect_nothing();
    assert_eq!(h.next_timer(), Some(RTT / 2));
    h.fire_timer();
    expect_data(&mut h, 4);
}

/// Segments 0 and 1 leave, then (1 ms later) our FIN alone. Segment 0 and the FIN are
/// lost; one RTT later segment 1 is SACKed. Returns when segment 1's SACK was sent.
fn lost_head_and_bare_fin(h: &mut H) {
    h.write(&payload((2 * SMSS) as usize));
    expect_data(h, 0);
    let o = h.expect(ACK | PSH, h.our(SMSS), h.peer(0));
    assert_eq!(o.payload.len(), SMSS as usize, "{o}");
    h.advance(Duration::from_millis(1));
    h.stack.shutdown(h.c(), std::net::Shutdown::Write).unwrap();
    h.expect(ACK | FIN, h.our(2 * SMSS), h.peer(0));
    h.expect_nothing();
    h.advance(RTT - Duration::from_millis(1));
    h.send(ack(h, 0, &[(1, 2)]));
    h.expect_nothing();
}

/// A lost FIN-only transmission record (RFC 8985 §6.2 step 5; the FIN occupies one
/// sequence number, RFC 9293 §3.4): the retransmission of segment 0, sent after the FIN,
/// is delivered one RTT later, so the FIN, sent RACK.rtt + reo_wnd (0 in recovery) before
/// it, is lost and NextSeg rule 1 (RFC 6675 §4) resends it with that ACK: no PTO (none in
/// recovery), no RTO.
#[test]
fn a_lost_bare_fin_is_marked_and_resent_by_recovery() {
    let mut h = sender(true);
    lost_head_and_bare_fin(&mut h);
    // Segment 0 waits reo_wnd (segment 1 was sent at the same time, above it).
    assert_eq!(h.fire_timer(), reo_wnd(&h));
    expect_data(&mut h, 0);
    h.expect_nothing();
    h.advance(RTT);
    let lost_before = h.stack.counters().rack_lost_marks;
    h.send(ack(&h, 2, &[]));
    // The FIN goes again at once, on that ACK's virtual time.
    h.expect(ACK | FIN, h.our(2 * SMSS), h.peer(0)).len(0);
    h.expect_nothing();
    assert_eq!(h.stack.counters().rack_lost_marks, lost_before + 1);
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!((st.retransmits, st.fast_retransmits, st.timeouts), (2, 1, 0));
    assert_eq!(h.stack.counters().tlp_probes, 0);
    h.advance(RTT);
    h.send(Seg::new(ACK, h.peer(0), h.our(2 * SMSS + 1)));
    h.expect_nothing();
    assert_eq!(h.stack.status(h.c()).unwrap().state, State::FinWait2);
}

/// The same with the FIN on the last data segment: segments 0 and 2 (with the FIN) are
/// lost, segment 1 SACKed. When segment 0's retransmission is delivered, segment 2's
/// record is lost and goes again whole, data and FIN in one segment, as it was sent.
#[test]
fn a_lost_data_and_fin_record_is_resent_with_its_fin() {
    let mut h = sender(true);
    h.write(&payload((3 * SMSS) as usize));
    h.stack.shutdown(h.c(), std::net::Shutdown::Write).unwrap();
    expect_data(&mut h, 0);
    expect_data(&mut h, 1);
    let o = h.expect(ACK | PSH | FIN, h.our(2 * SMSS), h.peer(0));
    assert_eq!(o.payload.len(), SMSS as usize, "{o}");
    h.expect_nothing();
    h.advance(RTT);
    h.send(ack(&h, 0, &[(1, 2)]));
    h.expect_nothing();
    assert_eq!(h.fire_timer(), reo_wnd(&h));
    expect_data(&mut h, 0);
    h.expect_nothing();
    h.advance(RTT);
    h.send(ack(&h, 2, &[]));
    let o = h.expect(ACK | PSH | FIN, h.our(2 * SMSS), h.peer(0));
    assert_eq!(o.payload.len(), SMSS as usize, "{o}");
    h.expect_nothing();
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!((st.retransmits, st.timeouts), (2, 0));
    h.advance(RTT);
    h.send(Seg::new(ACK, h.peer(0), h.our(3 * SMSS + 1)));
    h.expect_nothing();
    assert_eq!(h.stack.status(h.c()).unwrap().state, State::FinWait2);
}
