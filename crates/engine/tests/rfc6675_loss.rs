//! SACK-based loss recovery (RFC 6675) with PRR (RFC 6937): exact segments on virtual time.
//!
//! The stack sends with SACK (no timestamps, MSS 1460, so SMSS = 1460 and the RFC 6928
//! initial window is 10 segments); the test plays a receiver that lost some of them.

mod common;
use common::*;

const SMSS: u32 = 1460;

fn sack_sender() -> H {
    // RFC 6675 as written: RACK (RFC 8985, tests/rfc8985_rack.rs) off, so that these
    // segments come from DupThresh and IsLost() alone.
    let cfg = base_config().with_sack(true).with_rack(false);
    let mut h = H::new(cfg);
    h.establish_passive(TcpOptions { sack_permitted: true, ..mss_opts(MSS) });
    h
}

/// Send the initial window of ten full segments out of `total` segments queued.
fn initial_window(h: &mut H, total: u32) {
    h.write(&payload((total * SMSS) as usize));
    for i in 0..10 {
        let o = h.expect(ACK, h.our(i * SMSS), h.peer(0));
        assert_eq!(o.payload.len(), SMSS as usize);
    }
    h.expect_nothing();
}

/// A duplicate ACK of SND.UNA (our byte 0) SACKing `[our(a), our(b))` for each `(a, b)` in segments.
fn dup(h: &H, blocks: &[(u32, u32)], win: u16) -> Seg {
    let b: Vec<(u32, u32)> = blocks.iter().map(|&(a, e)| (h.our(a * SMSS), h.our(e * SMSS))).collect();
    Seg::new(ACK, h.peer(0), h.our(0)).win(win).sack(&b)
}

#[track_caller]
fn expect_data(h: &mut H, seg: u32) {
    let o = h.expect(ACK, h.our(seg * SMSS), h.peer(0));
    assert_eq!(o.payload.len(), SMSS as usize, "{o}");
}

/// D1: duplicate ACKs that SACK new data count even though each changes the window
/// (RFC 6675 §2); the third triggers the fast retransmit (§5 step 1), as FreeBSD and
/// Linux do. Before the fix utcp waited for the RTO.
#[test]
fn sack_dup_acks_count_when_window_changes() {
    let mut h = sack_sender();
    initial_window(&mut h, 20);
    // First lost. Limited transmit (RFC 3042) lets one segment out per duplicate.
    h.send(dup(&h, &[(1, 2)], PEER_WIN + 3));
    expect_data(&mut h, 10);
    h.expect_nothing();
    h.send(dup(&h, &[(1, 3)], PEER_WIN + 6));
    expect_data(&mut h, 11);
    h.expect_nothing();
    h.send(dup(&h, &[(1, 4)], PEER_WIN + 9));
    // Fast retransmit of SND.UNA.
    expect_data(&mut h, 0);
    // PRR (RFC 6937): RecoverFS 12 segments, ssthresh 6, one segment delivered: sndcnt is
    // half a segment, and pipe (8 + the retransmission) leaves no room.
    h.expect_nothing();
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!(st.ssthresh, 6 * SMSS);
    assert_eq!(st.fast_retransmits, 1);
}

/// D2: two duplicate ACKs that together SACK 8 segments above the hole: IsLost(HighACK+1)
/// holds (more than (DupThresh-1)*SMSS bytes SACKed above it), so loss recovery starts
/// (RFC 6675 §5 step 2) without a third duplicate.
#[test]
fn is_lost_enters_recovery_after_two_dup_acks() {
    let mut h = sack_sender();
    initial_window(&mut h, 30);
    h.send(dup(&h, &[(1, 2)], PEER_WIN));
    expect_data(&mut h, 10); // limited transmit
    h.expect_nothing();
    h.send(dup(&h, &[(1, 9)], PEER_WIN));
    expect_data(&mut h, 0); // fast retransmit
    // FlightSize 11 segments: ssthresh 5.5 segments. pipe (segments 9 and 10, plus the
    // retransmission) is below ssthresh, so PRR's slow-start bound allows
    // ssthresh - pipe: two more new segments (NextSeg rule 2), not more.
    expect_data(&mut h, 11);
    expect_data(&mut h, 12);
    h.expect_nothing();
    assert_eq!(h.stack.status(h.c()).unwrap().ssthresh, 11 * SMSS / 2);
}

/// The partial-ACK bug: during SACK recovery a partial ACK for data that is still in flight
/// must not retransmit SND.UNA (RFC 6582's rule is for the non-SACK path); RFC 6675 §5 (C)
/// sends only while cwnd - pipe >= SMSS, and then new data (NextSeg rule 2).
#[test]
fn partial_acks_with_one_hole_send_new_data_not_retransmissions() {
    let mut h = sack_sender();
    initial_window(&mut h, 30);
    h.send(dup(&h, &[(1, 2)], PEER_WIN));
    expect_data(&mut h, 10);
    h.send(dup(&h, &[(1, 3)], PEER_WIN));
    expect_data(&mut h, 11);
    h.send(dup(&h, &[(1, 4)], PEER_WIN));
    expect_data(&mut h, 0);
    h.expect_nothing();
    // The retransmission fills the hole; segments 4.. are still in flight. Each ACK
    // delivers one segment; PRR lets out half a segment per segment delivered, so the
    // first new segment leaves once pipe fell to ssthresh (6 segments).
    for acked in [4, 5, 6] {
        h.send(Seg::new(ACK, h.peer(0), h.our(acked * SMSS)));
        h.expect_nothing();
    }
    h.send(Seg::new(ACK, h.peer(0), h.our(7 * SMSS)));
    expect_data(&mut h, 12);
    h.expect_nothing();
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!(st.retransmits, 1, "only the fast retransmit");
}

/// Several holes: after the fast retransmit of the first, a later ACK that shows more SACKed
/// data above the second hole retransmits that hole (NextSeg rule 1) once cwnd - pipe
/// allows, and a partial ACK covering the first hole does not resend anything.
#[test]
fn partial_acks_with_several_holes_retransmit_each_hole_once() {
    let mut h = sack_sender();
    initial_window(&mut h, 30);
    // Segments 0 and 4 lost.
    h.send(dup(&h, &[(1, 2)], PEER_WIN));
    expect_data(&mut h, 10);
    h.send(dup(&h, &[(1, 3)], PEER_WIN));
    expect_data(&mut h, 11);
    h.send(dup(&h, &[(1, 4)], PEER_WIN));
    expect_data(&mut h, 0);
    h.expect_nothing();
    // More SACKs above the second hole: it becomes lost (three segments SACKed above).
    h.send(dup(&h, &[(5, 6), (1, 4)], PEER_WIN));
    h.expect_nothing(); // pipe still above cwnd
    h.send(dup(&h, &[(5, 7), (1, 4)], PEER_WIN));
    h.send(dup(&h, &[(5, 8), (1, 4)], PEER_WIN));
    expect_data(&mut h, 4); // rule 1: the second hole
    h.expect_nothing();
    // Partial ACK up to the second hole: neither hole is resent.
    h.send(Seg::new(ACK, h.peer(0), h.our(4 * SMSS)).sack(&[(h.our(5 * SMSS), h.our(8 * SMSS))]));
    let out = h.drain();
    assert!(out.iter().all(|o| o.seq.wrapping_sub(h.our(0)) >= 12 * SMSS), "only new data: {out:?}");
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!(st.retransmits, 2);
}

/// Without SACK, a partial ACK still retransmits SND.UNA (RFC 6582 §3.2 step 3).
#[test]
fn newreno_partial_ack_retransmits_without_sack() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    initial_window(&mut h, 30);
    for i in 0..3 {
        h.send(Seg::new(ACK, h.peer(0), h.our(0)));
        if i < 2 {
            expect_data(&mut h, 10 + i);
        }
    }
    expect_data(&mut h, 0);
    let _ = h.drain();
    h.send(Seg::new(ACK, h.peer(0), h.our(4 * SMSS)));
    expect_data(&mut h, 4);
}

/// A lost retransmission: the fast retransmit of SND.UNA is lost too. Once more than
/// 2*SMSS of the data sent after it are SACKed while SND.UNA has not moved, it is sent
/// again during recovery instead of waiting for the RTO.
#[test]
fn lost_fast_retransmission_is_sent_again_before_the_rto() {
    let mut h = sack_sender();
    initial_window(&mut h, 40);
    h.send(dup(&h, &[(1, 2)], PEER_WIN));
    expect_data(&mut h, 10);
    h.send(dup(&h, &[(1, 3)], PEER_WIN));
    expect_data(&mut h, 11);
    h.send(dup(&h, &[(1, 4)], PEER_WIN));
    expect_data(&mut h, 0); // fast retransmit: lost as well
    // The rest of the flight arrives; PRR lets new data out (segments 12..).
    let mut sent = Vec::new();
    for top in 5..=12 {
        h.send(dup(&h, &[(1, top)], PEER_WIN));
        sent.extend(h.drain().into_iter().map(|o| o.seq.wrapping_sub(h.our(0)) / SMSS));
    }
    assert!(!sent.contains(&0), "no second retransmission yet: {sent:?}");
    assert!(sent.len() >= 3, "new data during recovery: {sent:?}");
    // Three segments sent after the retransmission are SACKed: it was lost.
    h.send(dup(&h, &[(1, 15)], PEER_WIN));
    expect_data(&mut h, 0);
    assert_eq!(h.stack.counters().lost_retransmits, 1);
    assert_eq!(h.stack.status(h.c()).unwrap().timeouts, 0);
}
