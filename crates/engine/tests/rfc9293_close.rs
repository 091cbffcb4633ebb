//! RFC 9293 §3.10.4 CLOSE, §3.10.5 ABORT, §3.6 closing sequences (figures 12 and 13),
//! FIN-WAIT/CLOSING/LAST-ACK/TIME-WAIT processing of §3.10.7.4, RFC 2525 §2.17.

mod common;
use common::*;

fn established() -> H {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    h
}

/// Our FIN-WAIT-2: CLOSE, FIN out, FIN acknowledged.
fn fin_wait_2(h: &mut H) {
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    h.send(Seg::new(ACK, h.peer(0), h.our(1)));
    assert_eq!(h.state(), Some(State::FinWait2));
}

/// §3.6 figure 12 (normal close), local side first: ESTABLISHED → CLOSE → FIN-WAIT-1 →
/// (ACK of FIN) FIN-WAIT-2 → (FIN) TIME-WAIT → 2 MSL → CLOSED, TCB deleted.
#[test]
fn active_close_walks_fin_wait_to_time_wait() {
    let mut h = established();
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    // §3.10.4 ESTABLISHED: "form a FIN segment and send it, and set FIN-WAIT-1 state".
    h.expect(FIN | ACK, h.our(0), h.peer(0)).len(0).win(WIN);
    assert_eq!(h.state(), Some(State::FinWait1));
    // §3.10.7.4 fifth, FIN-WAIT-1: "if the FIN segment is now acknowledged, then enter FIN-WAIT-2".
    h.send(Seg::new(ACK, h.peer(0), h.our(1)));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::FinWait2));
    // §3.10.7.4 eighth, FIN-WAIT-2: "Enter the TIME-WAIT state. Start the time-wait timer".
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(1)).len(0);
    assert_eq!(h.state(), Some(State::TimeWait));
    assert_eq!(h.read(10).unwrap(), b"");
    // §3.10.8: "If the time-wait timeout expires on a connection, delete the TCB".
    let msl = h.stack.config().msl;
    h.advance(msl * 2);
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Closed));
    assert!(h.events().contains(&Event::Closed(c, CloseReason::Normal)));
    assert_eq!(h.stack.connection_count(), 0);
}

/// §3.10.4 CLOSE: "Queue this until all preceding SENDs have been segmentized, then form a
/// FIN segment" — the FIN rides on (or follows) the last data segment.
#[test]
fn close_sends_queued_data_then_fin() {
    let mut h = established();
    let c = h.c();
    h.write(b"last words");
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    let segs = h.drain();
    let stream: Vec<u8> = segs.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(stream, b"last words");
    let fin = segs.last().unwrap();
    assert!(fin.flags.fin(), "the FIN comes last: {fin}");
    assert_eq!(fin.seq.wrapping_add(fin.payload.len() as u32), h.our(10), "FIN seq: {fin}");
    assert_eq!(segs.iter().filter(|s| s.flags.fin()).count(), 1);
}

/// §3.6 figure 12, remote side first: ESTABLISHED → (FIN) CLOSE-WAIT → CLOSE → LAST-ACK →
/// (ACK of FIN) CLOSED: "If our FIN is now acknowledged, delete the TCB, enter the CLOSED
/// state, and return."
#[test]
fn passive_close_walks_close_wait_last_ack() {
    let mut h = established();
    let c = h.c();
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    assert_eq!(h.state(), Some(State::CloseWait));
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(1));
    assert_eq!(h.state(), Some(State::LastAck));
    h.send(Seg::new(ACK, h.peer(1), h.our(1)));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Closed));
    assert_eq!(h.stack.connection_count(), 0);
    assert!(h.events().contains(&Event::Closed(c, CloseReason::Normal)));
}

/// §3.6 figure 13 (simultaneous close): FIN-WAIT-1 receives a FIN that does not acknowledge
/// ours → CLOSING ("eighth ... FIN-WAIT-1 STATE: If our FIN has been ACKed ... enter
/// TIME-WAIT ...; otherwise, enter the CLOSING state"); then the ACK of our FIN → TIME-WAIT.
#[test]
fn simultaneous_close_via_closing() {
    let mut h = established();
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(1), h.peer(1));
    assert_eq!(h.state(), Some(State::Closing));
    h.send(Seg::new(ACK, h.peer(1), h.our(1)));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::TimeWait));
    let msl = h.stack.config().msl;
    h.advance(msl * 2);
    assert_eq!(h.stack.connection_count(), 0);
}

/// §3.10.7.4 eighth, FIN-WAIT-1: "If our FIN has been ACKed (perhaps in this segment), then
/// enter TIME-WAIT, start the time-wait timer, turn off the other timers".
#[test]
fn fin_ack_in_fin_wait_1_goes_to_time_wait() {
    let mut h = established();
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(1));
    assert_eq!(h.state(), Some(State::TimeWait));
    // "turn off the other timers": the next deadline the stack reports is the 2 MSL one.
    let msl = h.stack.config().msl;
    assert_eq!(h.next_timer(), Some(msl * 2), "only the time-wait timer runs");
}

/// §3.10.7.4 eighth, TIME-WAIT: "Remain in the TIME-WAIT state. Restart the 2 MSL time-wait
/// timeout." The retransmitted FIN is acknowledged again.
#[test]
fn retransmitted_fin_in_time_wait_is_reacked_and_restarts_timer() {
    let mut h = established();
    fin_wait_2(&mut h);
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(1));
    let msl = h.stack.config().msl;
    h.advance(msl);
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(1)).len(0);
    h.expect_nothing();
    h.advance(msl + msl / 2);
    assert_eq!(h.state(), Some(State::TimeWait), "timer restarted by the retransmitted FIN");
    h.advance(msl / 2);
    assert_eq!(h.state(), Some(State::Closed));
}

/// §3.10.8 / §3.4.2 TIME-WAIT lasts exactly 2 MSL, then the TCB leaves the table and the
/// socket pair can be reused (a new SYN from the same remote gets a SYN-ACK).
#[test]
fn time_wait_is_two_msl_then_removed() {
    let cfg = base_config().with_msl(Duration::from_secs(5));
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    fin_wait_2(&mut h);
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(1));
    h.advance(Duration::from_secs(10) - Duration::from_micros(1));
    assert_eq!(h.state(), Some(State::TimeWait));
    assert_eq!(h.stack.connection_count(), 1);
    h.advance(Duration::from_micros(1));
    assert_eq!(h.state(), Some(State::Closed));
    assert_eq!(h.stack.connection_count(), 0);
    h.send(Seg::new(SYN, PEER_ISS + 100_000, 0));
    let o = h.recv().unwrap();
    assert_eq!((o.flags, o.ack), (SYN | ACK, PEER_ISS + 100_001));
}

/// §3.10.7.4 second, TIME-WAIT: "If the RST bit is set, then enter the CLOSED state, delete
/// the TCB". (RFC 1337 allows ignoring it instead; RFC 9293 keeps the reset rule.)
#[test]
fn rst_in_time_wait_closes() {
    let mut h = established();
    fin_wait_2(&mut h);
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(1));
    h.send(Seg::new(RST, h.peer(1), 0));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Closed));
    assert_eq!(h.stack.connection_count(), 0);
}

/// §3.10.7.4 second, CLOSING/LAST-ACK: "If the RST bit is set, then enter the CLOSED state,
/// delete the TCB, and return."
#[test]
fn rst_in_last_ack_closes() {
    let mut h = established();
    let c = h.c();
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(1));
    h.send(Seg::new(RST, h.peer(1), 0));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Closed));
    assert_eq!(h.stack.connection_count(), 0);
}

/// §3.10.7.4 second, FIN-WAIT-1/FIN-WAIT-2/CLOSE-WAIT: "any outstanding RECEIVEs and SEND
/// should receive 'reset' responses ... enter the CLOSED state, delete the TCB".
#[test]
fn rst_in_fin_wait_2_resets() {
    let mut h = established();
    fin_wait_2(&mut h);
    h.send(Seg::new(RST, h.peer(0), 0));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Closed));
    let c = h.c();
    assert!(h.events().contains(&Event::Closed(c, CloseReason::Reset)));
}

/// Half-close (§3.6: "the user ... may continue to RECEIVE until told that the remote side
/// has closed"): in FIN-WAIT-2 the peer's data is delivered and acknowledged.
#[test]
fn half_close_keeps_receiving() {
    let mut h = established();
    fin_wait_2(&mut h);
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(1)).data(b"more data"));
    h.expect(ACK, h.our(1), h.peer(9)).win(WIN - 9);
    assert_eq!(h.read_all(), b"more data");
    h.send(Seg::new(FIN | ACK, h.peer(9), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(10));
    assert_eq!(h.read(10).unwrap(), b"");
    assert_eq!(h.state(), Some(State::TimeWait));
}

/// Half-close the other way: in CLOSE-WAIT we may still SEND (§3.10.2 "CLOSE-WAIT STATE:
/// Segmentize the buffer and send it").
#[test]
fn close_wait_keeps_sending() {
    let mut h = established();
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    h.write(b"reply");
    h.expect(ACK | PSH, h.our(0), h.peer(1)).data(b"reply");
    h.send(Seg::new(ACK, h.peer(1), h.our(5)));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::CloseWait));
}

/// §3.10.2 SEND in FIN-WAIT-1/2, CLOSING, LAST-ACK, TIME-WAIT: "Return 'error: connection
/// closing' and do not service request".
#[test]
fn send_after_close_fails() {
    let mut h = established();
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    let e = h.stack.send(c, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    h.expect_nothing();
}

/// §3.10.4 CLOSE in FIN-WAIT-1/2: "Strictly speaking, this is an error and should receive an
/// 'error: connection closing' response" — in any case no second FIN is sent.
#[test]
fn second_close_sends_no_second_fin() {
    let mut h = established();
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    let _ = h.stack.shutdown(c, Shutdown::Write);
    h.expect_nothing();
}

/// RFC 2525 §2.17 / RFC 9293 §3.10.4 (MAY-?, as Linux does): CLOSE with unread received data
/// sends a RST <SEQ=SND.NXT><CTL=RST> instead of a FIN, and the TCB is deleted.
#[test]
fn close_with_unread_data_sends_rst() {
    let mut h = established();
    let c = h.c();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"unread"));
    h.expect(ACK, h.our(0), h.peer(6));
    h.stack.close(c);
    let o = h.recv().expect("RST");
    assert!(o.flags.rst() && !o.flags.fin(), "expected RST, got {o}");
    assert_eq!(o.seq, h.our(0));
    assert_eq!(o.payload.len(), 0);
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
}

/// §3.10.4: CLOSE with everything read sends a FIN (not a RST), and the connection finishes
/// in the background after the handle is released.
#[test]
fn close_with_everything_read_sends_fin_and_finishes_orphaned() {
    let mut h = established();
    let c = h.c();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"read me"));
    h.expect(ACK, h.our(0), h.peer(7));
    assert_eq!(h.read_all(), b"read me");
    h.stack.close(c);
    h.expect(FIN | ACK, h.our(0), h.peer(7));
    h.send(Seg::new(FIN | ACK, h.peer(7), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(8));
    assert_eq!(h.stack.connection_count(), 1, "TIME-WAIT keeps the TCB");
    let msl = h.stack.config().msl;
    h.advance(msl * 2);
    assert_eq!(h.stack.connection_count(), 0);
}

/// §3.10.5 ABORT in ESTABLISHED: "Send a reset segment: <SEQ=SND.NXT><CTL=RST>. All queued
/// SENDs and RECEIVEs should be given 'reset' notification; all segments queued for
/// transmission (except for the RST formed above) or retransmission should be flushed.
/// Delete the TCB, enter CLOSED state".
#[test]
fn abort_sends_rst_and_flushes() {
    let mut h = established();
    let c = h.c();
    h.write(b"in flight");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    h.write(b"queued");
    h.stack.abort(c);
    let o = h.recv().expect("RST");
    assert!(o.flags.rst(), "expected RST, got {o}");
    assert_eq!(o.seq, h.our(9), "SEQ=SND.NXT");
    assert_eq!(o.payload.len(), 0);
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
    h.advance(Duration::from_secs(30));
    h.expect_nothing();
}

/// §3.10.5 ABORT in SYN-RECEIVED (here via a queued, not yet accepted connection's
/// listener): "Send a reset segment <SEQ=SND.NXT><CTL=RST>"; in CLOSING/LAST-ACK/TIME-WAIT:
/// "Respond with 'ok' and delete the TCB" without a RST.
#[test]
fn abort_in_time_wait_sends_nothing() {
    let mut h = established();
    fin_wait_2(&mut h);
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(1));
    let c = h.c();
    h.stack.abort(c);
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
}

/// §3.10.7.4 first: an old duplicate in TIME-WAIT (not a FIN) draws an ACK and changes
/// nothing; data after the peer's FIN is not delivered.
#[test]
fn time_wait_acks_stray_segment() {
    let mut h = established();
    fin_wait_2(&mut h);
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(1));
    h.send(Seg::new(ACK, h.peer(0).wrapping_sub(100), h.our(1)).data(b"old"));
    h.expect(ACK, h.our(1), h.peer(1));
    assert_eq!(h.state(), Some(State::TimeWait));
}

/// Retransmission of the FIN (§3.10.4: the FIN is subject to retransmission like data).
#[test]
fn fin_is_retransmitted_on_timeout() {
    let mut h = established();
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    let rto = Duration::from_micros(h.stack.status(c).unwrap().rto_us);
    h.advance(rto - Duration::from_micros(1));
    h.expect_nothing();
    h.advance(Duration::from_micros(1));
    h.expect(FIN | ACK, h.our(0), h.peer(0)).len(0);
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(0), h.our(1)));
    assert_eq!(h.state(), Some(State::FinWait2));
}

/// shutdown(Read) then data arriving: RFC 9293 leaves it to the implementation; our stack
/// acknowledges and discards it (reads return end of stream).
#[test]
fn shutdown_read_discards_incoming() {
    let mut h = established();
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Read).unwrap();
    assert_eq!(h.read(10).unwrap(), b"");
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"ignored"));
    let o = h.recv().expect("ACK");
    assert_eq!((o.flags, o.ack), (ACK, h.peer(7)));
    assert_eq!(h.read(10).unwrap(), b"");
}

/// RFC 2525 §2.17 ("Failure to RST on close with data pending", the receive side) and
/// RFC 9293 §3.10.4: once the user has CLOSEd (released the socket), new data from the peer
/// can never be read, so it is answered with a RST <SEQ=SND.NXT> and the TCB is deleted.
#[test]
fn data_after_close_draws_rst() {
    let mut h = established();
    let c = h.c();
    h.stack.close(c);
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    h.send(Seg::new(ACK, h.peer(0), h.our(1)));
    assert_eq!(h.stack.connection_count(), 1, "FIN-WAIT-2 orphan");
    h.send(Seg::new(ACK, h.peer(0), h.our(1)).data(b"too late"));
    let o = h.recv().expect("RST");
    assert!(o.flags.rst(), "expected RST, got {o}");
    assert_eq!(o.seq, h.our(1));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
}

/// §3.10.7.4 eighth: "CLOSE-WAIT STATE: Remain in the CLOSE-WAIT state. CLOSING STATE: Remain
/// in the CLOSING state. LAST-ACK STATE: Remain in the LAST-ACK state." A retransmitted FIN
/// is acknowledged again (first check: it is an old duplicate) and changes nothing.
#[test]
fn retransmitted_fin_is_reacked_in_close_wait_and_last_ack() {
    let mut h = established();
    let c = h.c();
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    assert_eq!(h.state(), Some(State::CloseWait));
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(1));
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(1), h.peer(1));
    assert_eq!(h.state(), Some(State::LastAck));
}

/// §3.10.7.4 eighth, CLOSING: a retransmitted FIN in CLOSING leaves it in CLOSING.
#[test]
fn retransmitted_fin_in_closing_is_reacked() {
    let mut h = established();
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(1), h.peer(1));
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(1), h.peer(1));
    assert_eq!(h.state(), Some(State::Closing));
}

/// §3.10.5 ABORT in CLOSE-WAIT: "Send a reset segment: <SEQ=SND.NXT><CTL=RST>".
#[test]
fn abort_in_close_wait_sends_rst() {
    let mut h = established();
    let c = h.c();
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    h.stack.abort(c);
    let o = h.recv().expect("RST");
    assert!(o.flags.rst(), "{o}");
    assert_eq!(o.seq, h.our(0));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
}

/// §3.10.5 ABORT in SYN-RECEIVED (simultaneous open): "Send a reset segment:
/// <SEQ=SND.NXT><CTL=RST>".
#[test]
fn abort_in_syn_received_sends_rst() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN, PEER_ISS, 0));
    h.expect(SYN | ACK, h.iss, h.peer(0));
    let c = h.c();
    h.stack.abort(c);
    let o = h.recv().expect("RST");
    assert!(o.flags.rst(), "{o}");
    assert_eq!(o.seq, h.our(0), "SND.NXT = ISS + 1");
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
}

/// §3.10.6 STATUS / §3.10.3 RECEIVE on a connection that no longer exists: "error:
/// connection does not exist" once the handle is released.
#[test]
fn calls_on_released_connection_fail() {
    let mut h = established();
    let c = h.c();
    h.stack.abort(c);
    h.drain();
    assert!(h.stack.status(c).is_err());
    assert_eq!(h.stack.state(c), None);
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.recv(c, &mut buf).unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(h.stack.send(c, b"x").unwrap_err().kind(), ErrorKind::NotConnected);
}

/// RFC 1122 §4.2.2.13 (and RFC 6191): a SYN for a connection in TIME-WAIT may reopen it if
/// its sequence number is above the old RCV.NXT; the new ISS "must be larger than the largest
/// sequence number it used on the previous connection incarnation". An old SYN (at or below
/// RCV.NXT) does not reopen it.
#[test]
fn new_syn_reopens_time_wait() {
    let mut h = established();
    fin_wait_2(&mut h);
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(1));
    assert_eq!(h.state(), Some(State::TimeWait));
    // An old SYN (below RCV.NXT): no new connection, answered with an ACK.
    h.send(Seg::new(SYN, h.peer(0).wrapping_sub(5), 0));
    let o = h.recv().expect("ACK for the old SYN");
    assert_eq!((o.flags, o.ack), (ACK, h.peer(1)), "{o}");
    assert_eq!(h.state(), Some(State::TimeWait));
    // A new SYN, above RCV.NXT.
    let new_irs = h.peer(100_000);
    h.send(Seg::new(SYN, new_irs, 0).mss(MSS));
    let o = h.recv().expect("SYN-ACK for the new incarnation");
    assert_eq!((o.flags, o.ack), (SYN | ACK, new_irs.wrapping_add(1)), "{o}");
    assert!(SeqNum(o.seq).gt(SeqNum(h.our(1))), "new ISS {} above old SND.MAX {}", o.seq, h.our(1));
    assert_eq!(h.stack.connection_count(), 1, "the new incarnation is in the table");
    h.send(Seg::new(ACK, new_irs.wrapping_add(1), o.seq.wrapping_add(1)));
    h.expect_nothing();
    let (c2, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    assert_eq!(h.stack.state(c2), Some(State::Established));
}
