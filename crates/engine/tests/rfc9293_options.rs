//! TCP options and loss recovery: RFC 7323 (window scale §2, timestamps §3–4, PAWS §5),
//! RFC 2018 (SACK), RFC 5681 §3.2 (fast retransmit) and RFC 6582 (NewReno partial ACKs).

mod common;
use common::*;

const PEER_TS: u32 = 5_000;

fn cfg_all() -> Config {
    base_config().with_window_scale(true).with_sack(true).with_timestamps(true)
}

// ------------------------------------------------------------ RFC 7323 §2 window scale

/// RFC 7323 §2.2–2.3: both sides sent the option, so windows are scaled: the SYN-ACK offers
/// our shift (and an unscaled window), later segments advertise `free >> Rcv.Wind.Shift`, and
/// the peer's window field is multiplied by its shift ("SND.WND = SEG.WND << Snd.Wind.Shift").
#[test]
fn window_scale_negotiated_both_ways() {
    let cfg =
        base_config().with_window_scale(true).with_window_scale_shift(Some(2)).with_recv_buffer(200_000);
    let mut h = H::new(cfg);
    let synack = h.open_to_syn_received(TcpOptions { window_scale: Some(3), ..mss_opts(MSS) });
    assert_eq!(synack.options.window_scale, Some(2));
    assert_eq!(synack.window, 65535, "SYN windows are never scaled (capped at 65535)");
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(1000));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    let st = h.stack.status(c).unwrap();
    assert_eq!(st.snd_wnd, 8000, "peer window 1000 << 3");
    assert_eq!((st.snd_wscale, st.rcv_wscale), (3, 2));
    assert_eq!(st.options & 4, 4);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"abcd").win(1000));
    h.expect(ACK, h.our(0), h.peer(4)).win(((200_000 - 4) >> 2) as u16);
}

/// RFC 7323 §1.3/§2.2: "if a Window Scale option is received with a SYN ... but the local
/// host did not send one, or vice versa" no scaling is done; the SYN-ACK must not carry the
/// option if the SYN did not.
#[test]
fn window_scale_off_unless_peer_offers() {
    let cfg = base_config().with_window_scale(true).with_recv_buffer(200_000);
    let mut h = H::new(cfg);
    let synack = h.open_to_syn_received(mss_opts(MSS));
    assert_eq!(synack.options.window_scale, None);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(1000));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    assert_eq!(h.stack.status(c).unwrap().snd_wnd, 1000);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"x"));
    h.expect(ACK, h.our(0), h.peer(1)).win(65535);
}

/// RFC 7323 §2.3: "If a Window Scale option is received with a shift.cnt value larger than
/// 14, the TCP SHOULD log the error but MUST use 14 instead of the specified value."
#[test]
fn window_scale_shift_capped_at_14() {
    let cfg = base_config().with_window_scale(true);
    let mut h = H::new(cfg);
    h.open_to_syn_received(TcpOptions { window_scale: Some(15), ..mss_opts(MSS) });
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(1));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    assert_eq!(h.stack.status(c).unwrap().snd_wscale, 14);
    assert_eq!(h.stack.status(c).unwrap().snd_wnd, 1 << 14);
}

/// RFC 7323 §2.2: the window field of a SYN-ACK received by an active opener is not scaled.
#[test]
fn window_in_syn_ack_is_unscaled() {
    let mut h = H::new(base_config().with_window_scale(true));
    h.open_to_syn_sent();
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).mss(MSS).wscale(4).win(5000));
    h.expect(ACK, h.our(0), h.peer(0));
    assert_eq!(h.stack.status(h.c()).unwrap().snd_wnd, 5000);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(5000));
    assert_eq!(h.stack.status(h.c()).unwrap().snd_wnd, 80_000);
}

// ------------------------------------------------------------ RFC 7323 §3-5 timestamps, PAWS

/// Passive open with timestamps (and SACK) negotiated; returns our SYN-ACK.
fn ts_established() -> (H, Out) {
    let mut h = H::new(cfg_all());
    let synack = h.establish_passive(full_syn_opts(0, PEER_TS));
    (h, synack)
}

/// RFC 7323 §3.2: the SYN-ACK carries TSopt with TSecr = the SYN's TSval; afterwards "Once
/// TSopt has been successfully negotiated ... the TSopt MUST be sent in every non-<RST>
/// segment", echoing TS.Recent. The effective MSS shrinks by the 12 option bytes.
#[test]
fn timestamps_negotiated_and_echoed() {
    let (mut h, synack) = ts_established();
    let (our_tsval, ecr) = synack.options.timestamps.expect("TSopt in SYN-ACK");
    assert_eq!(ecr, PEER_TS);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).ts(PEER_TS + 10, our_tsval).data(b"hi"));
    let o = h.expect(ACK, h.our(0), h.peer(2));
    let (_, ecr) = o.options.timestamps.expect("TSopt on every segment");
    assert_eq!(ecr, PEER_TS + 10, "TSecr echoes TS.Recent");
    let c = h.c();
    h.stack.set_nodelay(c, true).unwrap();
    h.write(&payload(MSS as usize));
    h.expect(ACK, h.our(0), h.peer(2)).len(MSS as usize - 12);
}

/// RFC 7323 §4.3: TS.Recent is updated only from segments with SEG.SEQ =< Last.ACK.sent, so
/// an out-of-order segment's TSval is not echoed.
#[test]
fn ts_recent_not_updated_by_out_of_order_segment() {
    let (mut h, _) = ts_established();
    h.send(Seg::new(ACK, h.peer(100), h.our(0)).ts(PEER_TS + 50, 0).data(b"ooo"));
    let o = h.expect(ACK, h.our(0), h.peer(0));
    assert_eq!(o.options.timestamps.unwrap().1, PEER_TS + 1, "still the handshake ACK's TSval");
}

/// RFC 7323 §5.3 (PAWS): "If SEG.TSval < TS.Recent and the RST bit is off ... the segment is
/// not acceptable: Send an acknowledgment in reply as specified in RFC 793 page 69 and drop
/// the segment."
#[test]
fn paws_drops_old_timestamp_and_acks() {
    let (mut h, _) = ts_established();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).ts(PEER_TS + 100, 0).data(b"new"));
    h.expect(ACK, h.our(0), h.peer(3));
    // A wrapped-around old duplicate: in-window sequence number, old timestamp.
    h.send(Seg::new(ACK, h.peer(3), h.our(0)).ts(PEER_TS + 99, 0).data(b"old"));
    let o = h.expect(ACK, h.our(0), h.peer(3));
    assert_eq!(o.options.timestamps.unwrap().1, PEER_TS + 100);
    assert_eq!(h.read_all(), b"new");
    assert_eq!(h.stack.counters().dropped(DropReason::Paws), 1);
}

/// RFC 7323 §5.3 R1: PAWS does not apply to RST segments (§5.3: "If ... the RST bit is off").
#[test]
fn paws_does_not_drop_rst() {
    let (mut h, _) = ts_established();
    h.send(Seg::new(RST, h.peer(0), 0).ts(1, 0));
    assert_eq!(h.state(), Some(State::Closed));
}

/// RFC 7323 §3.2: "If a non-<SYN> segment is received without a TSopt, a TCP SHOULD silently
/// drop the segment" is optional (Linux accepts); what is required is that without a TSopt on
/// the SYN, no TSopt is ever sent (§3.2 "MUST NOT be sent ... unless ... in the SYN").
#[test]
fn no_timestamps_unless_peer_offers() {
    let mut h = H::new(cfg_all());
    let synack = h.establish_passive(mss_opts(MSS));
    assert_eq!(synack.options.timestamps, None);
    assert!(!synack.options.sack_permitted);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"x"));
    h.expect(ACK, h.our(0), h.peer(1)).no_opts();
}

/// RFC 7323 §4.1 (RTTM): with timestamps, the RTT is measured from TSecr — even for a
/// retransmitted segment, since the echo identifies the transmission.
#[test]
fn timestamps_measure_rtt() {
    let (mut h, _) = ts_established();
    h.write(b"ping");
    let o = h.expect(ACK | PSH, h.our(0), h.peer(0));
    let (tsval, _) = o.options.timestamps.unwrap();
    h.now += Duration::from_millis(80);
    h.send(Seg::new(ACK, h.peer(0), h.our(4)).ts(PEER_TS + 2, tsval));
    let st = h.stack.status(h.c()).unwrap();
    assert!(st.srtt_us > 0 && st.srtt_us <= 80_000, "srtt {}", st.srtt_us);
}

// ------------------------------------------------------------ RFC 2018 SACK

fn sack_established() -> H {
    let cfg = base_config().with_sack(true);
    let mut h = H::new(cfg);
    let synack = h.establish_passive(TcpOptions { sack_permitted: true, ..mss_opts(MSS) });
    assert!(synack.options.sack_permitted, "SACK-permitted answered on the SYN-ACK");
    h
}

/// RFC 2018 §4: "If the data receiver has not received any out-of-order data, it MUST NOT
/// ... [send] a SACK option"; an out-of-order segment is reported with the first block being
/// "the block containing the most recently received segment".
#[test]
fn sack_blocks_most_recent_first() {
    let mut h = sack_established();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"0123"));
    assert!(h.expect(ACK, h.our(0), h.peer(4)).options.sack.is_empty());
    // Holes at [4,10) and [14,20); blocks arrive as [10,14) then [20,24).
    h.send(Seg::new(ACK, h.peer(10), h.our(0)).data(b"aaaa"));
    let o = h.expect(ACK, h.our(0), h.peer(4));
    assert_eq!(o.sack_blocks(), [(h.peer(10), h.peer(14))]);
    h.send(Seg::new(ACK, h.peer(20), h.our(0)).data(b"bbbb"));
    let o = h.expect(ACK, h.our(0), h.peer(4));
    assert_eq!(o.sack_blocks(), [(h.peer(20), h.peer(24)), (h.peer(10), h.peer(14))]);
    // A segment extending the older block makes that block the most recent one.
    h.send(Seg::new(ACK, h.peer(14), h.our(0)).data(b"cc"));
    let o = h.expect(ACK, h.our(0), h.peer(4));
    assert_eq!(o.sack_blocks(), [(h.peer(10), h.peer(16)), (h.peer(20), h.peer(24))]);
    // Filling the first hole: the ACK moves, the remaining block is reported.
    h.send(Seg::new(ACK, h.peer(4), h.our(0)).data(b"444444"));
    let o = h.expect(ACK, h.our(0), h.peer(16));
    assert_eq!(o.sack_blocks(), [(h.peer(20), h.peer(24))]);
    // Filling the last hole: no SACK any more.
    h.send(Seg::new(ACK, h.peer(16), h.our(0)).data(b"dddd"));
    let o = h.expect(ACK, h.our(0), h.peer(24));
    assert!(o.options.sack.is_empty(), "{o}");
}

/// RFC 2018 §3: at most 4 blocks fit (3 with timestamps); the most recent stays first.
#[test]
fn sack_block_count_limited() {
    let mut h = sack_established();
    for i in 0..5u32 {
        h.send(Seg::new(ACK, h.peer(10 + 10 * i), h.our(0)).data(b"xx"));
        h.recv().unwrap();
    }
    h.send(Seg::new(ACK, h.peer(100), h.our(0)).data(b"yy"));
    let o = h.expect(ACK, h.our(0), h.peer(0));
    let b = o.sack_blocks();
    assert_eq!(b.len(), 4);
    assert_eq!(b[0], (h.peer(100), h.peer(102)));
}

/// RFC 2018 §2: "SACK-permitted ... MUST NOT be sent on non-SYN segments" and SACK blocks are
/// only sent if the peer sent SACK-permitted.
#[test]
fn no_sack_without_permission() {
    let mut h = H::new(base_config().with_sack(true));
    let synack = h.establish_passive(mss_opts(MSS));
    assert!(!synack.options.sack_permitted);
    h.send(Seg::new(ACK, h.peer(10), h.our(0)).data(b"ooo"));
    h.expect(ACK, h.our(0), h.peer(0)).no_opts();
}

// ------------------------------------------------------------ RFC 5681 / RFC 6582

/// Established with `n` full segments in flight (MSS 1000 for round numbers).
fn in_flight(n: u32) -> H {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(1000));
    h.write(&payload(1000 * n as usize));
    let segs = h.drain();
    assert_eq!(segs.len(), n as usize);
    h
}

/// RFC 5681 §3.2: "The fast retransmit algorithm uses the arrival of 3 duplicate ACKs ... as
/// an indication that a segment has been lost", retransmitting it without waiting for the
/// timer; two duplicates are not enough.
#[test]
fn fast_retransmit_on_third_duplicate_ack() {
    let mut h = in_flight(8);
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    h.expect(ACK, h.our(1000), h.peer(0)).len(1000).data(&payload(8000)[1000..2000]);
    h.expect_nothing();
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!(st.fast_retransmits, 1);
    // RFC 5681 (4): ssthresh = max(FlightSize / 2, 2*SMSS) = 7000 / 2.
    assert_eq!(st.ssthresh, 3500);
}

/// RFC 5681 §2: an ACK carrying data, or a window change, is not a duplicate ACK.
#[test]
fn acks_with_data_or_window_change_are_not_duplicates() {
    let mut h = in_flight(8);
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)).data(b"a"));
    h.expect(ACK, h.our(8000), h.peer(1));
    h.send(Seg::new(ACK, h.peer(1), h.our(1000)).win(PEER_WIN - 1));
    h.send(Seg::new(ACK, h.peer(1), h.our(1000)).win(PEER_WIN - 2));
    h.expect_nothing();
    assert_eq!(h.stack.status(h.c()).unwrap().fast_retransmits, 0);
}

/// RFC 6582 §3.2 step 3 (partial acknowledgment): "If this ACK does not acknowledge all of
/// the data up to and including recover, then this is a partial ACK. In this case,
/// retransmit the first unacknowledged segment" — without waiting for three more duplicates.
/// A full ACK (>= recover) ends recovery.
#[test]
fn newreno_partial_ack_retransmits_next_hole() {
    let mut h = in_flight(8);
    // Segments 1 and 3 (bytes 1000.., 3000..) are lost.
    for _ in 0..4 {
        h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    }
    h.expect(ACK, h.our(1000), h.peer(0)).len(1000);
    h.expect_nothing();
    // The retransmission fills the first hole: cumulative ACK to 3000 < recover (8000).
    h.send(Seg::new(ACK, h.peer(0), h.our(3000)));
    let o = h.recv().expect("partial ACK: retransmit the first unacknowledged segment");
    assert_eq!((o.seq, o.payload.len()), (h.our(3000), 1000), "{o}");
    for o in h.drain() {
        assert!(o.seq != h.our(3000), "retransmitted once: {o}");
    }
    // Full ACK.
    h.send(Seg::new(ACK, h.peer(0), h.our(8000)));
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!(st.bytes_in_flight, 0);
    // RFC 6582 §3.2 step 3 full ACK: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
    assert_eq!(st.cwnd, st.ssthresh.min(2000));
    h.advance(Duration::from_secs(10));
    h.expect_nothing();
}

/// RFC 6928: the initial window is min(10*MSS, max(2*MSS, 14600)); RFC 5681 §3.1: a sender
/// MUST NOT send more than cwnd (and the peer's window) before ACKs arrive.
#[test]
fn initial_window_limits_first_flight() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(1000));
    h.write(&payload(20_000));
    let segs = h.drain();
    let bytes: usize = segs.iter().map(|s| s.payload.len()).sum();
    assert_eq!(bytes, 10_000, "IW = min(10*1000, max(2000, 14600))");
    // RFC 5681 §3.1 slow start: each ACK of a full segment grows cwnd by one SMSS.
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    let more: usize = h.drain().iter().map(|s| s.payload.len()).sum();
    assert_eq!(more, 2000);
}

/// RFC 2883 §4 (D-SACK): "If the duplicate segment is ... received, the first block of the
/// SACK option ... should specify the contiguous block of data in the received packet that
/// triggered the ACK" — a duplicate below RCV.NXT is reported as the first block.
#[test]
fn dsack_reports_duplicate_first() {
    let cfg = base_config().with_sack(true).with_dsack(true);
    let mut h = H::new(cfg);
    h.establish_passive(TcpOptions { sack_permitted: true, ..mss_opts(MSS) });
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"0123456789"));
    h.expect(ACK, h.our(0), h.peer(10));
    h.send(Seg::new(ACK, h.peer(2), h.our(0)).data(b"2345"));
    let o = h.expect(ACK, h.our(0), h.peer(10));
    assert_eq!(o.sack_blocks(), [(h.peer(2), h.peer(6))]);
    // Reported once only.
    h.send(Seg::new(ACK, h.peer(10), h.our(0)).data(b"x"));
    let o = h.expect(ACK, h.our(0), h.peer(11));
    assert!(o.options.sack.is_empty(), "{o}");
}

/// RFC 7323 §3.2 with RFC 2018 §3: with timestamps on, at most 3 SACK blocks fit.
#[test]
fn sack_with_timestamps_at_most_three_blocks() {
    let (mut h, _) = ts_established();
    for i in 0..4u32 {
        h.send(Seg::new(ACK, h.peer(10 + 10 * i), h.our(0)).ts(PEER_TS + 1, 0).data(b"zz"));
        h.recv().unwrap();
    }
    h.send(Seg::new(ACK, h.peer(100), h.our(0)).ts(PEER_TS + 1, 0).data(b"zz"));
    let o = h.expect(ACK, h.our(0), h.peer(0));
    assert!(o.options.timestamps.is_some());
    assert_eq!(o.sack_blocks().len(), 3);
    assert_eq!(o.sack_blocks()[0], (h.peer(100), h.peer(102)));
}

/// RFC 7323 §2.2: an active opener that offered window scaling but got a SYN-ACK without it
/// must not scale in either direction; its window field saturates at 65535.
#[test]
fn window_scale_dropped_when_syn_ack_lacks_it() {
    let cfg = base_config().with_window_scale(true).with_recv_buffer(200_000);
    let mut h = H::new(cfg);
    let syn = h.open_to_syn_sent();
    assert!(syn.options.window_scale.is_some());
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).mss(MSS).win(4000));
    h.expect(ACK, h.our(0), h.peer(0)).win(65535);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(4000));
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!((st.snd_wnd, st.snd_wscale, st.rcv_wscale, st.options & 4), (4000, 0, 0, 0));
}

/// RFC 7323 §2.2–2.3, active side: the shift we offered applies to every window we send
/// after the SYN.
#[test]
fn window_scale_active_side_scales_our_window() {
    let cfg =
        base_config().with_window_scale(true).with_window_scale_shift(Some(3)).with_recv_buffer(200_000);
    let mut h = H::new(cfg);
    let syn = h.open_to_syn_sent();
    assert_eq!(syn.options.window_scale, Some(3));
    assert_eq!(syn.window, 65535);
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).mss(MSS).wscale(1));
    h.expect(ACK, h.our(0), h.peer(0)).win((200_000 >> 3) as u16);
}

/// RFC 7323 §3.2: an active opener whose SYN offered TSopt but whose SYN-ACK had none sends
/// no TSopt afterwards (and its segments use the full MSS).
#[test]
fn timestamps_off_when_syn_ack_lacks_them() {
    let mut h = H::new(cfg_all());
    let syn = h.open_to_syn_sent();
    assert!(syn.options.timestamps.is_some());
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).mss(MSS));
    h.expect(ACK, h.our(0), h.peer(0)).no_opts();
    let c = h.c();
    h.stack.set_nodelay(c, true).unwrap();
    h.write(&payload(MSS as usize));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(MSS as usize).no_opts();
}

/// RFC 7323 §5.2/§5.3: the PAWS comparison is modulo 2^32 — a TSval that wrapped past zero
/// is newer, not older, than TS.Recent near 2^32.
#[test]
fn paws_timestamp_comparison_wraps() {
    let mut h = H::new(cfg_all());
    h.establish_passive(full_syn_opts(0, u32::MAX - 10));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).ts(5, 0).data(b"after wrap"));
    let o = h.expect(ACK, h.our(0), h.peer(10));
    assert_eq!(o.options.timestamps.unwrap().1, 5);
    assert_eq!(h.read_all(), b"after wrap");
}

/// RFC 5681 §4.1: "a TCP SHOULD set cwnd to no more than RW before beginning transmission if
/// the TCP has not sent data in an interval exceeding the retransmission timeout", RW =
/// min(IW, cwnd).
#[test]
fn idle_restart_resets_cwnd() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(1000));
    // Grow cwnd beyond IW with two ACKed flights.
    for _ in 0..2 {
        h.write(&payload(10_000));
        let segs = h.drain();
        let end = segs.last().unwrap();
        let acked = end.seq.wrapping_add(end.payload.len() as u32);
        h.send(Seg::new(ACK, h.peer(0), acked));
        h.drain();
    }
    let grown = h.stack.status(h.c()).unwrap().cwnd;
    assert!(grown > 10_000, "cwnd grew to {grown}");
    let una = h.stack.status(h.c()).unwrap().snd_nxt;
    h.send(Seg::new(ACK, h.peer(0), una));
    h.drain();
    h.advance(Duration::from_secs(30));
    h.write(&payload(30_000));
    let bytes: usize = h.drain().iter().map(|s| s.payload.len()).sum();
    assert_eq!(bytes, 10_000, "restart window = IW after idle");
}

/// RFC 5681 §3.2 step 4–5: "For each additional duplicate ACK received (after the third),
/// cwnd MUST be incremented by SMSS ... Transmit a segment, if allowed by the new value of
/// cwnd". With the whole initial window (10 × 1000) in flight and segment 0 lost: ssthresh =
/// 5000, cwnd = 8000 after the third duplicate; the sixth makes cwnd 11000 and releases
/// exactly one new segment.
#[test]
fn fast_recovery_inflation_releases_new_data() {
    let mut h = in_flight(10);
    h.write(&payload(4000));
    h.expect_nothing();
    for _ in 0..3 {
        h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    }
    h.expect(ACK, h.our(0), h.peer(0)).len(1000);
    h.expect_nothing();
    assert_eq!(h.stack.status(h.c()).unwrap().ssthresh, 5000);
    for _ in 0..2 {
        h.send(Seg::new(ACK, h.peer(0), h.our(0)));
        h.expect_nothing();
    }
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(10_000), h.peer(0)).len(1000);
    h.expect_nothing();
}

/// RFC 6582 §3.2 step 4 and §4: after a retransmission timeout, recover = highest sequence
/// sent; three duplicate ACKs that do not cover more than recover do not start a second fast
/// retransmit (they are caused by the go-back-N retransmissions themselves).
#[test]
fn no_fast_retransmit_for_duplicates_below_recover_after_rto() {
    let mut h = in_flight(8);
    h.fire_timer();
    h.expect(ACK, h.our(0), h.peer(0)).len(1000);
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    let resent = h.drain();
    assert_eq!(resent.len(), 2, "slow start after RTO: cwnd 2 segments");
    for _ in 0..3 {
        h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    }
    for o in h.drain() {
        assert_ne!(o.seq, h.our(1000), "no fast retransmit below recover: {o}");
    }
    assert_eq!(h.stack.status(h.c()).unwrap().fast_retransmits, 0);
}

/// RFC 7323 §5.4: the timestamp clock "must be at least approximately proportional to real
/// time" with a tick between 1 ms and 1 s: TSval advances by at most 100 (and at least 1)
/// over 100 ms, and never goes backwards.
#[test]
fn tsval_follows_the_clock() {
    let (mut h, synack) = ts_established();
    let (t0, _) = synack.options.timestamps.unwrap();
    h.now += Duration::from_millis(100);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).ts(PEER_TS + 1, t0).data(b"a"));
    let (t1, _) = h.expect(ACK, h.our(0), h.peer(1)).options.timestamps.unwrap();
    let d = t1.wrapping_sub(t0);
    assert!((1..=100).contains(&d), "TSval advanced by {d} in 100 ms");
}

/// RFC 9293 §3.1 (MUST-5: options may appear in any segment) and RFC 7323 §2.2: "The Window
/// Scale option ... in a segment without a SYN bit ... should be ignored"; likewise an MSS
/// option after the handshake changes nothing.
#[test]
fn syn_only_options_on_later_segments_are_ignored() {
    let mut h = H::new(base_config().with_window_scale(true));
    h.establish_passive(mss_opts(1000));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"data").wscale(5).mss(100).win(2000));
    h.expect(ACK, h.our(0), h.peer(4));
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!((st.snd_wnd, st.snd_wscale, st.mss), (2000, 0, 1000));
    assert_eq!(h.read_all(), b"data");
}

/// RFC 7323 §5.5: "If a connection remains idle for more than 24 days ... TS.Recent
/// [is] invalid" — after 25 idle days a segment with an older TSval is accepted, not
/// dropped by PAWS.
#[test]
fn paws_ts_recent_expires_after_24_days() {
    let (mut h, _) = ts_established();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).ts(PEER_TS + 1000, 0).data(b"a"));
    h.expect(ACK, h.our(0), h.peer(1));
    h.advance(Duration::from_secs(25 * 24 * 3600));
    h.send(Seg::new(ACK, h.peer(1), h.our(0)).ts(PEER_TS + 10, 0).data(b"b"));
    h.expect(ACK, h.our(0), h.peer(2));
    assert_eq!(h.read_all(), b"ab");
}

/// RFC 2883 §4.2 (example 4.2.2 style): a duplicate of out-of-order data is reported as a
/// D-SACK block first, followed by the SACK block that contains it.
#[test]
fn dsack_for_duplicate_out_of_order_data() {
    let cfg = base_config().with_sack(true).with_dsack(true);
    let mut h = H::new(cfg);
    h.establish_passive(TcpOptions { sack_permitted: true, ..mss_opts(MSS) });
    h.send(Seg::new(ACK, h.peer(10), h.our(0)).data(b"abcdefghij"));
    let o = h.expect(ACK, h.our(0), h.peer(0));
    assert_eq!(o.sack_blocks(), [(h.peer(10), h.peer(20))]);
    h.send(Seg::new(ACK, h.peer(12), h.our(0)).data(b"cdef"));
    let o = h.expect(ACK, h.our(0), h.peer(0));
    assert_eq!(o.sack_blocks(), [(h.peer(12), h.peer(16)), (h.peer(10), h.peer(20))]);
}

/// RFC 9293 §3.10.7.4 ("Segments with higher beginning sequence numbers may be held") with a
/// bounded reassembly queue (2 ranges), and RFC 2018 §4: a segment the receiver could not
/// hold is never reported in a SACK block and never acknowledged until it is resent.
#[test]
fn unheld_out_of_order_data_is_not_sacked_or_acked() {
    let cfg = base_config().with_sack(true).with_max_ooo_ranges(2);
    let mut h = H::new(cfg);
    h.establish_passive(TcpOptions { sack_permitted: true, ..mss_opts(MSS) });
    let d = payload(60);
    let seg = |h: &H, a: usize, b: usize| Seg::new(ACK, h.peer(a as u32), h.our(0)).data(&d[a..b]);
    h.send(seg(&h, 10, 20));
    h.recv().unwrap();
    h.send(seg(&h, 30, 40));
    h.recv().unwrap();
    h.send(seg(&h, 50, 60));
    let o = h.expect(ACK, h.our(0), h.peer(0));
    for (s, e) in o.sack_blocks() {
        assert!(!(s == h.peer(50) && e == h.peer(60)), "phantom SACK block {s}-{e}");
        assert!(SeqNum(e).le(SeqNum(h.peer(40))), "SACK beyond held data: {o}");
    }
    h.send(seg(&h, 0, 10));
    h.expect(ACK, h.our(0), h.peer(20));
    h.send(seg(&h, 20, 30));
    h.expect(ACK, h.our(0), h.peer(40));
    h.send(seg(&h, 40, 50));
    h.expect(ACK, h.our(0), h.peer(50));
    h.send(seg(&h, 50, 60));
    h.expect(ACK, h.our(0), h.peer(60));
    assert_eq!(h.read_all(), d);
}
