//! RFC 9293 §3.10.7.3 SEGMENT ARRIVES in SYN-SENT (in the RFC's order), user calls in
//! SYN-SENT (§3.10.2–§3.10.5), simultaneous open (§3.5 figure 8), SYN retransmission.

mod common;
use common::*;

/// §3.10.7.3 first, ACK bit: "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless
/// the RST bit is set, if so drop the segment and return) <SEQ=SEG.ACK><CTL=RST>".
#[test]
fn ack_at_or_below_iss_draws_rst() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.iss));
    h.expect(RST, h.iss, 0).len(0);
    h.send(Seg::new(ACK, PEER_ISS, h.iss.wrapping_sub(1000)));
    h.expect(RST, h.iss.wrapping_sub(1000), 0);
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::SynSent));
}

/// §3.10.7.3 first: SEG.ACK > SND.NXT is unacceptable too.
#[test]
fn ack_beyond_snd_nxt_draws_rst() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(1)));
    h.expect(RST, h.our(1), 0);
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::SynSent));
}

/// §3.10.7.3 first: an unacceptable ACK on a RST: "drop the segment and return".
#[test]
fn unacceptable_ack_with_rst_is_dropped() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(RST | ACK, PEER_ISS, h.iss));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::SynSent));
}

/// §3.10.7.3 second, RST bit: "If the ACK was acceptable, then signal to the user 'error:
/// connection reset', drop the segment, enter CLOSED state, delete TCB".
#[test]
fn rst_with_acceptable_ack_refuses_the_connection() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(RST | ACK, 0, h.our(0)));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Closed));
    let c = h.c();
    assert!(h.events().contains(&Event::Closed(c, CloseReason::Refused)));
    assert_eq!(h.stack.take_error(c).unwrap().kind(), ErrorKind::ConnectionRefused);
    assert_eq!(h.stack.connection_count(), 0);
}

/// §3.10.7.3 second: "Otherwise (no ACK), drop the segment and return" (RFC 5961 §3 also
/// requires the RST to acknowledge our SYN in SYN-SENT).
#[test]
fn rst_without_ack_is_dropped() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(RST, 0, 0));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::SynSent));
}

/// §3.10.7.3 fourth, SYN bit: "RCV.NXT is set to SEG.SEQ+1, IRS is set to SEG.SEQ. SND.UNA
/// should be advanced to equal SEG.ACK ... If SND.UNA > ISS (our SYN has been ACKed), change
/// the connection state to ESTABLISHED, form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT>
/// <CTL=ACK> and send it." The send window comes from the SYN-ACK, unscaled.
#[test]
fn syn_ack_establishes_and_is_acknowledged() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).mss(1200).win(12345));
    h.expect(ACK, h.our(0), h.peer(0)).win(WIN).len(0).no_opts();
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
    let c = h.c();
    assert!(h.events().contains(&Event::Connected(c)));
    let st = h.stack.status(c).unwrap();
    assert_eq!(st.snd_una, h.our(0));
    assert_eq!(st.snd_nxt, h.our(0));
    assert_eq!(st.rcv_nxt, h.peer(0));
    assert_eq!(st.snd_wnd, 12345);
    assert_eq!(st.mss, 1200);
    // RFC 6298 §5.2: "When all outstanding data has been acknowledged, turn off the
    // retransmission timer." Whatever deadline remains must not retransmit anything.
    h.advance(Duration::from_secs(120));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
}

/// §3.10.7.3 fourth: "If there are other controls or text in the segment, then continue
/// processing at the sixth step ... where the URG bit is checked". Text in a SYN-ACK is
/// delivered and acknowledged.
#[test]
fn syn_ack_with_data_delivers_it() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).data(b"hello"));
    h.expect(ACK, h.our(0), h.peer(5)).win(WIN - 5).len(0);
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
    assert_eq!(h.read_all(), b"hello");
}

/// §3.10.7.3 fourth, continuing to the eighth step: a SYN-ACK carrying a FIN puts the
/// connection in CLOSE-WAIT ("ESTABLISHED ... Enter the CLOSE-WAIT state") and the ACK
/// covers the FIN.
#[test]
fn syn_ack_with_fin_enters_close_wait() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN | ACK | FIN, PEER_ISS, h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::CloseWait));
    assert_eq!(h.read(16).unwrap(), b"");
}

/// §3.10.7.3 fifth: "If neither of the SYN or RST bits is set, then drop the segment and
/// return." An acceptable ACK without SYN does not complete the handshake.
#[test]
fn segment_without_syn_or_rst_is_dropped() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(ACK, PEER_ISS + 1, h.our(0)).data(b"early"));
    h.send(Seg::new(FIN | ACK, PEER_ISS + 1, h.our(0)));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::SynSent));
}

/// §3.10.7.3 fourth, "Otherwise, enter SYN-RECEIVED, form a SYN,ACK segment
/// <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it" — simultaneous open (§3.5 figure 8).
/// Then the SYN,ACKs cross.
#[test]
fn simultaneous_open_crossing_syn_acks() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(MSS));
    h.expect(SYN | ACK, h.iss, h.peer(0)).len(0).opts(mss_opts(MSS));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::SynReceived));
    // The peer answers our SYN with its SYN,ACK (figure 8 line 6). Its SYN repeats the one
    // we have (SEG.SEQ = IRS); it is trimmed off ("including SYN and FIN", §3.10.7.4), and the
    // remaining ACK of our SYN moves us to ESTABLISHED with no further segment, as in the figure.
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).mss(MSS));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
    // The peer's own ACK of our SYN,ACK changes nothing.
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
    let c = h.c();
    assert!(h.events().contains(&Event::Connected(c)));
}

/// Simultaneous open completed by the peer's ACK of our SYN,ACK (§3.10.7.4 fifth, SYN-RECEIVED:
/// "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state").
#[test]
fn simultaneous_open_via_peer_ack() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN, PEER_ISS, 0));
    h.expect(SYN | ACK, h.iss, h.peer(0));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
    let c = h.c();
    assert!(h.events().contains(&Event::Connected(c)));
    h.write(b"x");
    h.expect(ACK | PSH, h.our(0), h.peer(0)).data(b"x");
}

/// RFC 6298 §5.5 (back off the timer: RTO doubles) for the SYN, RFC 1122 §4.2.3.5 (give up
/// after R2), RFC 9293 §3.10.8 USER/retransmission timeout: the user is told "connection
/// aborted due to user timeout" (here TimedOut).
#[test]
fn syn_retransmission_backs_off_then_gives_up() {
    let cfg = base_config().with_syn_retries(3);
    let mut h = H::new(cfg);
    h.open_to_syn_sent();
    let mut waits = Vec::new();
    for _ in 0..3 {
        waits.push(h.fire_timer());
        h.expect(SYN, h.iss, 0).opts(mss_opts(MSS));
        h.expect_nothing();
    }
    assert_eq!(waits, [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)]);
    assert_eq!(h.fire_timer(), Duration::from_secs(8));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Closed));
    let c = h.c();
    assert!(h.events().contains(&Event::Closed(c, CloseReason::TimedOut)));
    assert_eq!(h.stack.take_error(c).unwrap().kind(), ErrorKind::TimedOut);
}

/// §3.10.2 SEND in SYN-SENT: "Queue the data for transmission after entering ESTABLISHED
/// state". §3.10.7.3: "Data or controls that were queued for transmission may be included".
#[test]
fn send_in_syn_sent_is_queued_until_established() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.write(b"queued");
    h.expect_nothing();
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)));
    let segs = h.drain();
    assert!(!segs.is_empty());
    let mut stream = Vec::new();
    for s in &segs {
        assert!(s.flags.ack() && !s.flags.syn(), "{s}");
        assert_eq!(s.ack, h.peer(0));
        assert_eq!(s.seq, h.our(stream.len() as u32), "{s}");
        stream.extend_from_slice(&s.payload);
    }
    assert_eq!(stream, b"queued");
}

/// §3.10.3 RECEIVE in SYN-SENT: "Queue for processing after entering ESTABLISHED state" —
/// nothing to read yet.
#[test]
fn receive_in_syn_sent_would_block() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    assert_eq!(h.read(10).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// §3.10.4 CLOSE in SYN-SENT: "Delete the TCB and return 'error: closing' responses to any
/// queued SENDs" — nothing is sent.
#[test]
fn close_in_syn_sent_deletes_tcb_silently() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    let c = h.c();
    h.stack.close(c);
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.poll_timeout(), None);
    // A late SYN-ACK now finds no TCB: RST <SEQ=SEG.ACK> (§3.10.7.1).
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)));
    h.expect(RST, h.our(0), 0);
}

/// §3.10.5 ABORT in SYN-SENT: "All queued SENDs and RECEIVEs should be given 'reset'
/// responses, delete the TCB" — no RST is sent (nothing is synchronized).
#[test]
fn abort_in_syn_sent_deletes_tcb_silently() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.write(b"lost");
    let c = h.c();
    h.stack.abort(c);
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
}

/// RFC 9293 §3.7.1 (MUST-15): "If an MSS Option is not received at connection setup, TCP
/// implementations MUST assume a default send MSS of 536".
#[test]
fn missing_mss_option_means_536() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)));
    h.expect(ACK, h.our(0), h.peer(0));
    let c = h.c();
    h.stack.set_nodelay(c, true).unwrap();
    h.write(&payload(1000));
    h.expect(ACK, h.our(0), h.peer(0)).len(536);
    h.expect(ACK | PSH, h.our(536), h.peer(0)).len(464);
    h.expect_nothing();
}

/// RFC 9293 §3.7.1 (MUST-15): over IPv6 the default send MSS is 1220 (RFC 8200 §5).
#[test]
fn missing_mss_option_over_ipv6_means_1220() {
    let mut h = H::new6(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)));
    h.expect(ACK, h.our(0), h.peer(0));
    let c = h.c();
    h.stack.set_nodelay(c, true).unwrap();
    h.write(&payload(2000));
    h.expect(ACK, h.our(0), h.peer(0)).len(1220);
    h.expect(ACK | PSH, h.our(1220), h.peer(0)).len(780);
    h.expect_nothing();
}

/// RFC 9293 §3.7.1: segments never exceed the MSS the peer announced.
#[test]
fn peer_mss_bounds_segment_size() {
    let mut h = H::new(base_config());
    h.establish_active(mss_opts(1000));
    let c = h.c();
    h.stack.set_nodelay(c, true).unwrap();
    h.write(&payload(2500));
    h.expect(ACK, h.our(0), h.peer(0)).len(1000);
    h.expect(ACK, h.our(1000), h.peer(0)).len(1000);
    h.expect(ACK | PSH, h.our(2000), h.peer(0)).len(500);
    h.expect_nothing();
}

/// RFC 9293 §3.10.1: after a connection is reset (CLOSED, TCB deleted) the same socket pair
/// can be OPENed again at once — even before the stack was polled — and the new handshake
/// completes on the new TCB.
#[test]
fn reopen_same_socket_pair_right_after_reset() {
    let mut h = H::new(base_config());
    h.establish_active(mss_opts(MSS));
    let old = h.c();
    h.send(Seg::new(RST, h.peer(0), 0));
    assert_eq!(h.stack.state(old), Some(State::Closed));
    h.now += Duration::from_secs(1);
    let c = h.stack.connect(h.now, local_addr(), remote_addr()).expect("reopen");
    h.conn = Some(c);
    let syn = h.recv().expect("SYN");
    assert_eq!(syn.flags, SYN);
    h.iss = syn.seq;
    assert_eq!(h.stack.connection_count(), 1, "the new TCB is in the connection table");
    h.send(Seg::new(SYN | ACK, PEER_ISS + 777, h.our(0)).mss(MSS));
    let o = h.recv().expect("ACK of the new SYN-ACK");
    assert_eq!((o.flags, o.seq, o.ack), (ACK, h.our(0), PEER_ISS + 778), "{o}");
    assert_eq!(h.state(), Some(State::Established));
}

/// RFC 9293 §3.7.1 (MUST-16): "Eff.snd.MSS = min(SendMSS+20, MMS_S) - TCPhdrsize -
/// IPoptionsize": a peer MSS above what our MTU can carry is limited by MMS_S (1500 - 20), a
/// small one is honoured.
#[test]
fn effective_send_mss_is_min_of_peer_mss_and_mms_s() {
    let mut h = H::new(base_config());
    h.establish_active(mss_opts(9000));
    let c = h.c();
    h.stack.set_nodelay(c, true).unwrap();
    h.write(&payload(2000));
    h.expect(ACK, h.our(0), h.peer(0)).len(1460);
    h.expect(ACK | PSH, h.our(1460), h.peer(0)).len(540);

    let mut h = H::new(base_config());
    h.establish_active(mss_opts(100));
    let c = h.c();
    h.stack.set_nodelay(c, true).unwrap();
    h.write(&payload(250));
    h.expect(ACK, h.our(0), h.peer(0)).len(100);
    h.expect(ACK, h.our(100), h.peer(0)).len(100);
    h.expect(ACK | PSH, h.our(200), h.peer(0)).len(50);
}
