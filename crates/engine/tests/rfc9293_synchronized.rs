//! RFC 9293 §3.10.7.4 SEGMENT ARRIVES in SYN-RECEIVED and the synchronized states, in the
//! RFC's order (sequence number, RST, SYN, ACK, URG, text, FIN), with RFC 5961 (§3 RST,
//! §4 SYN, §5 ACK) and the user calls SEND/RECEIVE/STATUS (§3.10.2, §3.10.3, §3.10.6).

mod common;
use common::*;

fn established() -> H {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    h
}

// ------------------------------------------------------------ first: sequence number

/// §3.10.7.4 first: "If an incoming segment is not acceptable, an acknowledgment should be
/// sent in reply (unless the RST bit is set, if so drop the segment and return):
/// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>". A segment entirely beyond the window.
#[test]
fn segment_beyond_window_draws_ack_and_is_dropped() {
    let mut h = established();
    h.send(Seg::new(ACK, h.peer(WIN as u32 + 10), h.our(0)).data(b"far"));
    h.expect(ACK, h.our(0), h.peer(0)).win(WIN).len(0);
    h.expect_nothing();
    assert_eq!(h.read(10).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// §3.10.7.4 first: an old duplicate (entirely below RCV.NXT) is not acceptable: ACK it.
#[test]
fn old_duplicate_draws_ack() {
    let mut h = established();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"abc"));
    h.expect(ACK, h.our(0), h.peer(3)).win(WIN - 3);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"abc"));
    h.expect(ACK, h.our(0), h.peer(3)).win(WIN - 3);
    h.expect_nothing();
    assert_eq!(h.read_all(), b"abc");
}

/// §3.10.7.4 first: an unacceptable RST is dropped without reply.
#[test]
fn unacceptable_rst_is_dropped_silently() {
    let mut h = established();
    h.send(Seg::new(RST, h.peer(WIN as u32 + 5), 0));
    h.send(Seg::new(RST, h.peer(0).wrapping_sub(1), 0));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
}

/// §3.10.7.4 first: a segment that starts before RCV.NXT and ends inside the window is
/// acceptable; "segments with higher beginning sequence numbers ... the portion before
/// RCV.NXT" is trimmed and only new text is delivered.
#[test]
fn overlapping_segment_is_trimmed() {
    let mut h = established();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"hello"));
    h.expect(ACK, h.our(0), h.peer(5));
    h.send(Seg::new(ACK, h.peer(2), h.our(0)).data(b"llo world"));
    h.expect(ACK, h.our(0), h.peer(11)).win(WIN - 11);
    assert_eq!(h.read_all(), b"hello world");
}

/// §3.10.7.4 first, the zero-window cases: with RCV.WND = 0 a zero-length segment is
/// acceptable only if SEG.SEQ = RCV.NXT, and data is not acceptable ("If the RCV.WND is
/// zero, no segments will be acceptable, but special allowance should be made to accept
/// valid ACKs, URGs, and RSTs"). §3.8.6.1: "when the receiving TCP has a zero window and a
/// segment arrives it must still send an acknowledgment showing its next expected sequence
/// number and current window (zero)" — that is how zero-window probes are answered.
#[test]
fn zero_receive_window_accepts_only_acks() {
    let cfg = base_config().with_recv_buffer(1000);
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(1000)));
    h.expect(ACK, h.our(0), h.peer(1000)).win(0);
    // Data at RCV.NXT while the window is zero: not accepted, ACK the current state.
    h.send(Seg::new(ACK, h.peer(1000), h.our(0)).data(b"more"));
    h.expect(ACK, h.our(0), h.peer(1000)).win(0);
    // A pure ACK at RCV.NXT is processed (here: it acknowledges our data).
    h.write(b"ping");
    h.expect(ACK | PSH, h.our(0), h.peer(1000)).data(b"ping").win(0);
    h.send(Seg::new(ACK, h.peer(1000), h.our(4)));
    h.expect_nothing();
    assert_eq!(h.stack.status(h.c()).unwrap().snd_una, h.our(4));
    assert_eq!(h.read_all(), payload(1000));
}

// ------------------------------------------------------------ second: RST (RFC 5961 §3)

/// §3.10.7.4 second, ESTABLISHED, with RFC 5961 §3.2: "If the RST bit is set and the
/// sequence number exactly matches the next expected sequence number (RCV.NXT), then TCP
/// MUST reset the connection." The user sees "connection reset".
#[test]
fn rst_at_rcv_nxt_resets_connection() {
    let mut h = established();
    h.send(Seg::new(RST, h.peer(0), 0));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Closed));
    let c = h.c();
    assert!(h.events().contains(&Event::Closed(c, CloseReason::Reset)));
    assert_eq!(h.read(10).unwrap_err().kind(), ErrorKind::ConnectionReset);
    // The error is reported once, as SO_ERROR is on Linux: later writes see a broken pipe.
    assert_eq!(h.stack.send(c, b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    assert_eq!(h.stack.connection_count(), 0);
}

/// RFC 5961 §3.2: "If the RST bit is set and the sequence number does not exactly match
/// the next expected sequence value, yet is within the current receive window, TCP MUST
/// send an acknowledgment (challenge ACK): <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>".
#[test]
fn rst_in_window_draws_challenge_ack() {
    let mut h = established();
    h.send(Seg::new(RST, h.peer(1), 0));
    h.expect(ACK, h.our(0), h.peer(0)).win(WIN).len(0);
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
    assert_eq!(h.stack.counters().challenge_acks, 1);
}

/// RFC 5961 §3.2: "If the RST bit is set and the sequence number is outside the current
/// receive window, silently drop the segment."
#[test]
fn rst_outside_window_is_dropped() {
    let mut h = established();
    h.send(Seg::new(RST | ACK, h.peer(WIN as u32), h.our(0)));
    h.send(Seg::new(RST | ACK, h.peer(0).wrapping_sub(10), h.our(0)));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
}

/// RFC 5961 §7: challenge ACKs are rate limited stack-wide (here to 2 per second, drawn
/// as 2/2 + rand(2), so 1 or 2; the per-connection limit is off).
#[test]
fn challenge_acks_are_rate_limited() {
    let cfg = base_config().with_challenge_ack_limit(2).with_challenge_ack_interval(Duration::ZERO);
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    let mut acks = 0;
    for i in 1..=5 {
        h.send(Seg::new(RST, h.peer(i), 0));
        acks += h.drain().len();
    }
    assert!((1..=2).contains(&acks), "{acks} challenge ACKs");
    assert_eq!(h.stack.counters().challenge_acks_limited, 5 - acks as u64);
    h.advance(Duration::from_secs(1));
    h.send(Seg::new(RST, h.peer(7), 0));
    h.expect(ACK, h.our(0), h.peer(0));
}

/// §3.10.7.4 second, SYN-RECEIVED: "If this connection was initiated with a passive OPEN
/// (i.e., came from the LISTEN state), then return this connection to LISTEN state and
/// return." The listener keeps serving; no user is told.
#[test]
fn rst_in_syn_received_returns_to_listen() {
    let mut h = H::new(base_config());
    h.open_to_syn_received(TcpOptions::default());
    h.send(Seg::new(RST, h.peer(0), 0));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
    let l = h.listener.unwrap();
    assert_eq!(h.stack.accept(l).unwrap_err().kind(), ErrorKind::WouldBlock);
    // Still listening: a new SYN gets a SYN-ACK.
    h.send(Seg::new(SYN, 7777, 0));
    let o = h.recv().unwrap();
    assert_eq!((o.flags, o.ack), (SYN | ACK, 7778));
}

/// §3.10.7.4 second, SYN-RECEIVED from an active OPEN (simultaneous open): "then the
/// connection was refused; signal the user 'connection refused'".
#[test]
fn rst_in_syn_received_after_active_open_refuses() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN, PEER_ISS, 0));
    h.expect(SYN | ACK, h.iss, h.peer(0));
    h.send(Seg::new(RST, h.peer(0), 0));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Closed));
    let c = h.c();
    assert!(h.events().contains(&Event::Closed(c, CloseReason::Refused)));
}

// ------------------------------------------------------------ fourth: SYN (RFC 5961 §4)

/// RFC 5961 §4.2 (updating RFC 9293 §3.10.7.4 fourth): "If the SYN bit is set, irrespective
/// of the sequence number, TCP MUST send an ACK (also referred to as challenge ACK) to the
/// remote peer: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. After sending the acknowledgment, TCP
/// MUST drop the unacceptable segment and stop processing further."
#[test]
fn syn_in_window_draws_challenge_ack() {
    let mut h = established();
    h.send(Seg::new(SYN, h.peer(100), 0));
    h.expect(ACK, h.our(0), h.peer(0)).win(WIN);
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
    // The same with data and ACK on it: the text is not taken. (After the per-connection
    // challenge-ACK interval of RFC 5961 §7.)
    h.advance(Duration::from_millis(500));
    h.send(Seg::new(SYN | ACK, h.peer(0), h.our(0)).data(b"evil"));
    h.expect(ACK, h.our(0), h.peer(0)).win(WIN);
    assert_eq!(h.read(10).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// RFC 5961 §4.2: the SYN outside the window draws an ACK too (from the first check).
#[test]
fn syn_outside_window_draws_ack() {
    let mut h = established();
    h.send(Seg::new(SYN, h.peer(0).wrapping_sub(5000), 0));
    h.expect(ACK, h.our(0), h.peer(0));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
}

/// SYN-RECEIVED: a retransmitted SYN (SEG.SEQ = IRS < RCV.NXT) fails the §3.10.7.4
/// acceptability test, so the RFC text answers <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>; Linux and
/// FreeBSD resend the SYN-ACK instead. Either is accepted; the TCB must survive, and the
/// SYN-ACK retransmission timer must still run (§3.8.1).
#[test]
fn retransmitted_syn_in_syn_received_is_answered() {
    let mut h = H::new(base_config());
    h.open_to_syn_received(mss_opts(MSS));
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(MSS));
    let o = h.recv().expect("an answer to the retransmitted SYN");
    if o.flags == SYN | ACK {
        assert_eq!((o.seq, o.ack), (h.iss, h.peer(0)), "{o}");
    } else {
        assert_eq!((o.flags, o.seq, o.ack), (ACK, h.our(0), h.peer(0)), "{o}");
    }
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 1);
    h.fire_timer();
    h.expect(SYN | ACK, h.iss, h.peer(0)).win(WIN).opts(mss_opts(MSS));
}

// ------------------------------------------------------------ fifth: ACK (RFC 5961 §5)

/// §3.10.7.4 fifth: "if the ACK bit is off, drop the segment and return" — text without an
/// ACK is not delivered.
#[test]
fn segment_without_ack_is_dropped() {
    let mut h = established();
    h.send(Seg::new(NONE, h.peer(0), 0).data(b"noack"));
    h.send(Seg::new(FIN, h.peer(0), 0));
    h.expect_nothing();
    assert_eq!(h.read(10).unwrap_err().kind(), ErrorKind::WouldBlock);
    assert_eq!(h.state(), Some(State::Established));
}

/// §3.10.7.4 fifth, SYN-RECEIVED: "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED
/// state and continue processing with the variables below set to: SND.WND <- SEG.WND,
/// SND.WL1 <- SEG.SEQ, SND.WL2 <- SEG.ACK". Data on the completing ACK is delivered.
#[test]
fn ack_in_syn_received_establishes() {
    let mut h = H::new(base_config());
    h.open_to_syn_received(mss_opts(MSS));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(5000).data(b"first"));
    h.expect(ACK, h.our(0), h.peer(5)).win(WIN - 5);
    let l = h.listener.unwrap();
    assert!(h.events().contains(&Event::Incoming(l)));
    let (c, _) = h.stack.accept(l).unwrap();
    h.conn = Some(c);
    assert_eq!(h.state(), Some(State::Established));
    assert_eq!(h.stack.status(c).unwrap().snd_wnd, 5000);
    assert_eq!(h.read_all(), b"first");
}

/// §3.10.7.4 fifth, SYN-RECEIVED: "If the segment acknowledgment is not acceptable, form a
/// reset segment <SEQ=SEG.ACK><CTL=RST> and send it."
#[test]
fn bad_ack_in_syn_received_draws_rst() {
    let mut h = H::new(base_config());
    h.open_to_syn_received(mss_opts(MSS));
    h.send(Seg::new(ACK, h.peer(0), h.our(10)));
    h.expect(RST, h.our(10), 0).len(0);
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(0), h.iss));
    h.expect(RST, h.iss, 0);
    assert_eq!(h.stack.accept(h.listener.unwrap()).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// §3.10.7.4 fifth, ESTABLISHED: "If the ACK acks something not yet sent (SEG.ACK >
/// SND.NXT), then send an ACK, drop the segment, and return." The text is not taken.
#[test]
fn ack_of_unsent_data_draws_ack_and_drops_segment() {
    let mut h = established();
    h.send(Seg::new(ACK, h.peer(0), h.our(100)).data(b"text"));
    h.expect(ACK, h.our(0), h.peer(0)).win(WIN);
    h.expect_nothing();
    assert_eq!(h.read(10).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// RFC 5961 §5.2: "an ACK value in the range ((SND.UNA - MAX.SND.WND) =< SEG.ACK =<
/// SND.NXT) ... All incoming segments whose ACK value doesn't satisfy the above condition
/// MUST be discarded and an ACK sent back."
#[test]
fn ack_too_old_draws_challenge_ack_and_drops_segment() {
    let mut h = established();
    h.send(Seg::new(ACK, h.peer(0), h.our(0).wrapping_sub(PEER_WIN as u32 + 100)).data(b"blind"));
    h.expect(ACK, h.our(0), h.peer(0)).win(WIN);
    h.expect_nothing();
    assert_eq!(h.read(10).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// §3.10.7.4 fifth: "If the ACK is a duplicate (SEG.ACK < SND.UNA), it can be ignored" —
/// but an old ACK within MAX.SND.WND does not stop the text from being processed.
#[test]
fn old_ack_within_window_keeps_text() {
    let mut h = established();
    h.write(b"0123456789");
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(10);
    h.send(Seg::new(ACK, h.peer(0), h.our(10)));
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(0), h.our(4)).data(b"ok"));
    h.expect(ACK, h.our(10), h.peer(2));
    assert_eq!(h.read_all(), b"ok");
}

/// §3.10.7.4 fifth: "If SND.UNA < SEG.ACK =< SND.NXT, then set SND.UNA <- SEG.ACK. Any
/// segments on the retransmission queue that are thereby entirely acknowledged are
/// removed." RFC 6298 §5.2: with everything acknowledged the timer stops (no retransmission).
#[test]
fn ack_advances_snd_una_and_stops_retransmission() {
    let mut h = established();
    h.write(&payload(100));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(100);
    let c = h.c();
    assert_eq!(h.stack.status(c).unwrap().bytes_in_flight, 100);
    h.send(Seg::new(ACK, h.peer(0), h.our(60)));
    assert_eq!(h.stack.status(c).unwrap().snd_una, h.our(60));
    assert_eq!(h.stack.status(c).unwrap().bytes_in_flight, 40);
    h.send(Seg::new(ACK, h.peer(0), h.our(100)));
    assert_eq!(h.stack.status(c).unwrap().bytes_in_flight, 0);
    h.advance(Duration::from_secs(100));
    h.expect_nothing();
}

/// §3.10.7.4 fifth, window update: "If SND.UNA =< SEG.ACK =< SND.NXT, the send window
/// should be updated. If (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)),
/// set SND.WND <- SEG.WND". An older segment (smaller SEG.SEQ) must not update the window.
#[test]
fn window_update_obeys_wl1_wl2() {
    let mut h = established();
    let c = h.c();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"ab").win(20000));
    h.expect(ACK, h.our(0), h.peer(2));
    assert_eq!(h.stack.status(c).unwrap().snd_wnd, 20000);
    // A reordered older segment (SEG.SEQ < SND.WL1) carries a stale window.
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"a").win(100));
    h.expect(ACK, h.our(0), h.peer(2));
    assert_eq!(h.stack.status(c).unwrap().snd_wnd, 20000);
    // A newer one updates it, even to a smaller value.
    h.send(Seg::new(ACK, h.peer(2), h.our(0)).win(9000));
    assert_eq!(h.stack.status(c).unwrap().snd_wnd, 9000);
}

/// The send window limits what is in flight (§3.8.6: "the sending TCP ... must not send
/// data beyond the window"); a window update releases the rest.
#[test]
fn send_window_limits_flight() {
    let mut h = H::new(base_config());
    h.listen();
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(MSS).win(1000));
    h.iss = h.recv().unwrap().seq;
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(1000));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    h.stack.set_nodelay(c, true).unwrap();
    h.write(&payload(3000));
    h.expect(ACK, h.our(0), h.peer(0)).len(1000);
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)).win(3000));
    h.expect(ACK, h.our(1000), h.peer(0)).len(MSS as usize);
    h.expect(ACK | PSH, h.our(1000 + MSS as u32), h.peer(0)).len(2000 - MSS as usize);
    h.expect_nothing();
}

/// §3.8.6.2.1 sender SWS avoidance: with a usable window below Fs * Max(SND.WND) the sender
/// waits, but "(iv) data is PUSHed and the override timeout occurs" — the override timeout
/// "should be in the range 0.1 - 1.0 seconds". Queued data must not stall forever when the
/// peer shrinks its offer (30000 on the SYN, 1000 afterwards) and sends nothing else.
#[test]
fn sws_override_timeout_sends_small_window() {
    let mut h = H::new(base_config());
    h.open_to_syn_received(mss_opts(MSS));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(1000));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    h.write(&payload(3000));
    let mut sent = h.drain();
    if sent.is_empty() {
        h.advance(Duration::from_secs(1));
        sent = h.drain();
    }
    assert_eq!(sent.len(), 1, "one window's worth after at most the override timeout");
    assert_eq!((sent[0].seq, sent[0].payload.len()), (h.our(0), 1000), "{}", sent[0]);
}

// ------------------------------------------------------------ seventh: text

/// §3.10.7.4 seventh, ESTABLISHED: "Once in the ESTABLISHED state, it is possible to deliver
/// segment data to user RECEIVE buffers ... RCV.NXT is advanced over the data accepted, and
/// RCV.WND is adjusted ... Send an acknowledgment of the form: <SEQ=SND.NXT><ACK=RCV.NXT>
/// <CTL=ACK>".
#[test]
fn in_order_text_is_delivered_and_acknowledged() {
    let mut h = established();
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"hello"));
    h.expect(ACK, h.our(0), h.peer(5)).win(WIN - 5).len(0).no_opts();
    h.send(Seg::new(ACK | PSH, h.peer(5), h.our(0)).data(b" world"));
    h.expect(ACK, h.our(0), h.peer(11)).win(WIN - 11);
    h.expect_nothing();
    let c = h.c();
    assert!(h.events().contains(&Event::Readable(c)));
    assert_eq!(h.read(5).unwrap(), b"hello");
    assert_eq!(h.read(100).unwrap(), b" world");
    assert_eq!(h.read(100).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// §3.10.7.4 seventh: out-of-order text is held (RFC 9293 §3.10.7.4: "Segments with higher
/// beginning sequence numbers may be held for later processing") and a duplicate ACK is sent
/// at once (RFC 5681 §4.2); when the hole fills, everything is acknowledged.
#[test]
fn out_of_order_text_is_held_and_hole_fill_acks_all() {
    let mut h = established();
    h.send(Seg::new(ACK, h.peer(5), h.our(0)).data(b"world"));
    h.expect(ACK, h.our(0), h.peer(0)).win(WIN);
    assert_eq!(h.read(10).unwrap_err().kind(), ErrorKind::WouldBlock);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"hello"));
    h.expect(ACK, h.our(0), h.peer(10)).win(WIN - 10);
    assert_eq!(h.read_all(), b"helloworld");
}

/// §3.10.7.4 first/seventh: text extending beyond the right window edge is trimmed: only the
/// in-window part is accepted and acknowledged.
#[test]
fn text_beyond_window_is_trimmed() {
    let cfg = base_config().with_recv_buffer(1000);
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(1200)));
    h.expect(ACK, h.our(0), h.peer(1000)).win(0);
    assert_eq!(h.read_all(), payload(1000));
}

/// §3.10.3 RECEIVE + §3.8.6.2.2 receiver SWS avoidance: after the user drains the buffer,
/// the opened window is announced once it grows by at least min(RCV.BUFF/2, MSS).
#[test]
fn reading_reopens_window() {
    let cfg = base_config().with_recv_buffer(4000);
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(4000)));
    h.expect(ACK, h.our(0), h.peer(4000)).win(0);
    assert_eq!(h.read(100).unwrap().len(), 100);
    h.expect_nothing(); // 100 bytes is less than min(2000, MSS): no update (SWS avoidance)
    h.read_all();
    h.expect(ACK, h.our(0), h.peer(4000)).win(4000);
    h.expect_nothing();
}

// ------------------------------------------------------------ eighth: FIN

/// §3.10.7.4 eighth: "If the FIN bit is set, signal the user 'connection closing' and return
/// any pending RECEIVEs with same message, advance RCV.NXT over the FIN, and send an
/// acknowledgment for the FIN ... SYN-RECEIVED, ESTABLISHED STATE: Enter the CLOSE-WAIT state."
#[test]
fn fin_in_established_enters_close_wait() {
    let mut h = established();
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)).data(b"bye"));
    h.expect(ACK, h.our(0), h.peer(4)).len(0);
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::CloseWait));
    assert_eq!(h.read(100).unwrap(), b"bye");
    assert_eq!(h.read(100).unwrap(), b"", "end of stream");
    // CLOSE-WAIT: we can still send (§3.10.2).
    h.write(b"still here");
    h.expect(ACK | PSH, h.our(0), h.peer(4)).data(b"still here");
}

/// §3.10.7.4 eighth: a FIN ahead of a hole is not processed until the hole fills ("If the
/// FIN bit is set ... advance RCV.NXT over the FIN" only when it is the next in sequence).
#[test]
fn fin_after_hole_waits_for_hole() {
    let mut h = established();
    h.send(Seg::new(FIN | ACK, h.peer(3), h.our(0)).data(b"def"));
    h.expect(ACK, h.our(0), h.peer(0));
    assert_eq!(h.state(), Some(State::Established));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"abc"));
    h.expect(ACK, h.our(0), h.peer(7));
    assert_eq!(h.state(), Some(State::CloseWait));
    assert_eq!(h.read_all(), b"abcdef");
}

/// §3.10.7.4 eighth, SYN-RECEIVED: a FIN on the handshake-completing ACK goes to CLOSE-WAIT.
#[test]
fn fin_on_handshake_ack_enters_close_wait() {
    let mut h = H::new(base_config());
    h.open_to_syn_received(mss_opts(MSS));
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    assert_eq!(h.state(), Some(State::CloseWait));
}

/// §3.10.7.4 seventh, CLOSE-WAIT: "This should not occur since a FIN has been received from
/// the remote side. Ignore the segment text." (New data after the FIN is not delivered.)
#[test]
fn text_after_fin_is_ignored() {
    let mut h = established();
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    h.send(Seg::new(ACK, h.peer(1), h.our(0)).data(b"late"));
    for o in h.drain() {
        assert_eq!((o.flags, o.ack, o.payload.len()), (ACK, h.peer(1), 0), "{o}");
    }
    assert_eq!(h.read(10).unwrap(), b"");
    assert_eq!(h.stack.status(h.c()).unwrap().rcv_nxt, h.peer(1));
}

// ------------------------------------------------------------ sixth: URG, STATUS

/// §3.10.7.4 sixth: "If the URG bit is set, RCV.UP <- max(RCV.UP,SEG.UP)"; the data stays
/// in line (RFC 6093) and is delivered in order.
#[test]
fn urgent_data_is_delivered_inline() {
    let mut h = established();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"urgent!").urg(7));
    h.expect(ACK, h.our(0), h.peer(7));
    assert_eq!(h.read_all(), b"urgent!");
}

/// §3.10.6 STATUS: state, socket pair, windows and sequence variables.
#[test]
fn status_reports_tcb() {
    let mut h = established();
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!(st.state, State::Established);
    assert_eq!(st.quad.local, local_addr());
    assert_eq!(st.quad.remote, remote_addr());
    assert_eq!(st.snd_una, h.our(0));
    assert_eq!(st.snd_nxt, h.our(0));
    assert_eq!(st.rcv_nxt, h.peer(0));
    assert_eq!(st.snd_wnd, PEER_WIN as u32);
    assert_eq!(st.rcv_wnd, WIN as u32);
    assert_eq!(st.mss, MSS);
    assert_eq!(st.options, 0);
    h.expect_nothing();
}

/// §3.10.2 SEND: data is segmentized, PSH on the last segment of a write (§3.9.1), and the
/// stream arrives intact (sequence numbers contiguous).
#[test]
fn send_segmentizes_at_mss() {
    let mut h = established();
    let data = payload(3 * MSS as usize);
    h.write(&data);
    let a = h.expect(ACK, h.our(0), h.peer(0)).len(MSS as usize).win(WIN);
    let b = h.expect(ACK, h.our(MSS as u32), h.peer(0)).len(MSS as usize);
    let c = h.expect(ACK | PSH, h.our(2 * MSS as u32), h.peer(0)).len(MSS as usize);
    h.expect_nothing();
    assert_eq!([a.payload, b.payload, c.payload].concat(), data);
}

/// An ACK for a segment not in the table (a stray ACK for a closed quad) answered by RST,
/// while the established connection is unaffected (demultiplexing by socket pair, §3.2).
#[test]
fn demux_by_quad() {
    let mut h = established();
    let other = SocketAddr::new(IpAddr::V4(REMOTE_IP), REMOTE_PORT + 1);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).from(other));
    let o = h.expect(RST, h.our(0), 0);
    assert_eq!(o.dst, other);
    assert_eq!(h.state(), Some(State::Established));
}

/// §3.10.7.4 fourth, SYN-RECEIVED: "If the connection was initiated with a passive OPEN,
/// then return this connection to the LISTEN state and return." A new SYN (not the
/// retransmitted one) inside the window deletes the embryonic TCB; the listener remains.
#[test]
fn new_syn_in_passive_syn_received_returns_to_listen() {
    let mut h = H::new(base_config());
    h.open_to_syn_received(mss_opts(MSS));
    h.send(Seg::new(SYN, h.peer(100), 0).mss(MSS));
    for o in h.drain() {
        assert!(!o.flags.syn(), "no new handshake on this TCB: {o}");
    }
    assert_eq!(h.stack.connection_count(), 0, "the SYN-RECEIVED TCB is gone");
    // The listener still answers fresh SYNs.
    h.send(Seg::new(SYN, PEER_ISS + 5000, 0));
    let o = h.recv().unwrap();
    assert_eq!((o.flags, o.ack), (SYN | ACK, PEER_ISS + 5001));
}

/// §3.8.6.2.2 / §3.10.7.4: "the right window edge ... A TCP receiver SHOULD NOT shrink the
/// window, i.e., move the right window edge to the left (SHLD-14)". Across a series of
/// segments that fill the buffer and reads that drain part of it, RCV.NXT + RCV.WND never
/// moves left.
#[test]
fn right_window_edge_never_moves_left() {
    let cfg = base_config().with_recv_buffer(5000);
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    let mut edge = h.peer(0).wrapping_add(5000);
    let mut off = 0u32;
    for round in 0..12 {
        let n = [700u32, 1200, 300, 1460][round % 4];
        h.send(Seg::new(ACK, h.peer(off), h.our(0)).data(&payload(n as usize)));
        for o in h.drain() {
            let right = o.ack.wrapping_add(o.window as u32);
            assert!(SeqNum(right).ge(SeqNum(edge)), "edge moved left: {o} (edge {edge})");
            edge = right;
            off = o.ack.wrapping_sub(h.peer(0));
        }
        if round % 3 == 2 {
            let _ = h.read(1500);
            for o in h.drain() {
                let right = o.ack.wrapping_add(o.window as u32);
                assert!(SeqNum(right).ge(SeqNum(edge)), "edge moved left: {o}");
                edge = right;
            }
        }
    }
}

/// §3.10.2 SEND: "If there is insufficient space to remember this buffer, simply return
/// 'error: insufficient resources'" — here WouldBlock once the send buffer is full; data
/// accepted is what fits.
#[test]
fn send_buffer_full_would_block() {
    let cfg = base_config().with_send_buffer(4000);
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    let c = h.c();
    assert_eq!(h.stack.send(c, &payload(10_000)).unwrap(), 4000);
    assert_eq!(h.stack.send(c, b"x").unwrap_err().kind(), ErrorKind::WouldBlock);
    assert!(!h.stack.can_send(c));
    h.drain();
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    assert!(h.stack.can_send(c));
    assert_eq!(h.stack.send(c, &payload(2000)).unwrap(), 1000);
}

/// An established connection whose 6000-octet send buffer is full and sent, events drained.
fn full_6000_octet_send_buffer(cfg: Config) -> (H, ConnId) {
    let mut h = H::new(cfg.with_send_buffer(6000));
    h.establish_passive(mss_opts(MSS));
    let c = h.c();
    assert_eq!(h.stack.send(c, &payload(10_000)).unwrap(), 6000);
    h.drain();
    let _ = h.events();
    (h, c)
}

/// `Config::send_lowat` = None (Linux's sk_stream_write_space): a writer blocked on a full
/// buffer is told it may write once the free space is half of what is still queued (a
/// third of a full buffer), not on every ACK; the space itself is usable at once.
#[test]
fn writable_after_a_third_of_a_full_buffer_drains() {
    let (mut h, c) = full_6000_octet_send_buffer(base_config());
    // 1000 free, 5000 queued: no wake-up, but a write that comes anyway takes the space.
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    assert!(h.stack.can_send(c));
    assert!(!h.events().contains(&Event::Writable(c)), "woken with 1000 of 6000 free");
    // 2000 free, 4000 queued: free >= queued / 2.
    h.send(Seg::new(ACK, h.peer(0), h.our(2000)));
    assert!(h.events().contains(&Event::Writable(c)));
}

/// `Config::send_lowat` = Some(n) (FreeBSD's so_snd.sb_lowat): the wake-up comes once n
/// bytes are free.
#[test]
fn writable_at_the_bsd_low_water_mark() {
    let (mut h, c) = full_6000_octet_send_buffer(base_config().with_send_lowat(Some(1500)));
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    assert!(!h.events().contains(&Event::Writable(c)), "woken below the low-water mark");
    h.send(Seg::new(ACK, h.peer(0), h.our(1500)));
    assert!(h.events().contains(&Event::Writable(c)));
}

/// §3.10.7.4 seventh, FIN-WAIT-1: text is still delivered while our FIN is unacknowledged.
#[test]
fn text_in_fin_wait_1_is_delivered() {
    let mut h = established();
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"still"));
    h.expect(ACK, h.our(1), h.peer(5));
    assert_eq!(h.state(), Some(State::FinWait1));
    assert_eq!(h.read_all(), b"still");
}

/// §3.10.7.4 fifth, SYN-RECEIVED: "if the ACK bit is off, drop the segment and return" —
/// text without ACK does not complete the handshake and is not delivered.
#[test]
fn text_without_ack_in_syn_received_is_dropped() {
    let mut h = H::new(base_config());
    h.open_to_syn_received(mss_opts(MSS));
    h.send(Seg::new(PSH, h.peer(0), 0).data(b"no ack"));
    h.expect_nothing();
    let l = h.listener.unwrap();
    assert_eq!(h.stack.accept(l).unwrap_err().kind(), ErrorKind::WouldBlock);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    let (c, _) = h.stack.accept(l).unwrap();
    h.conn = Some(c);
    assert_eq!(h.read(10).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// RFC 5961 §4.2 (challenge ACK for any SYN in a synchronized state): when our ACK of the
/// SYN-ACK was lost the peer retransmits its SYN-ACK; the challenge ACK <SEQ=SND.NXT>
/// <ACK=RCV.NXT> is exactly the ACK it needs, and our connection is unaffected.
#[test]
fn retransmitted_syn_ack_in_established_is_reacknowledged() {
    let mut h = H::new(base_config());
    h.establish_active(mss_opts(MSS));
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).mss(MSS));
    h.expect(ACK, h.our(0), h.peer(0)).len(0);
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
}

/// RFC 9293 §3.10.7.2: text on a SYN "will be processed in the SYN-RECEIVED state" or may be
/// dropped (to be retransmitted by the peer) as most stacks do without TCP Fast Open. Either
/// way the SYN-ACK acknowledges only what was kept, and the data reaches the user exactly once.
#[test]
fn text_on_syn_is_delivered_once() {
    let mut h = H::new(base_config());
    h.listen();
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(MSS).data(b"early"));
    let synack = h.recv().unwrap();
    assert_eq!(synack.flags, SYN | ACK);
    h.iss = synack.seq;
    let kept = synack.ack.wrapping_sub(h.peer(0));
    assert!(kept == 0 || kept == 5, "SYN-ACK acknowledges {kept} bytes of text");
    if kept == 0 {
        // Dropped: the peer retransmits it with the handshake ACK.
        h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"early"));
        h.expect(ACK, h.our(0), h.peer(5));
    } else {
        h.send(Seg::new(ACK, h.peer(5), h.our(0)));
    }
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    assert_eq!(h.read_all(), b"early");
}
