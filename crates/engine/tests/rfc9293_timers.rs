//! Timers: retransmission (RFC 6298, RFC 9293 §3.8.1, RFC 1122 §4.2.3.5), zero-window probes
//! (RFC 9293 §3.8.6.1), delayed ACK (§3.8.6.3, RFC 5681 §4.2), Nagle (§3.7.4), keepalive
//! (§3.8.4, RFC 1122 §4.2.3.6), SYN-ACK retransmission.

mod common;
use common::*;

const RTT: Duration = Duration::from_millis(100);

/// Passive open whose handshake ACK arrives `rtt` after our SYN-ACK, so the first RTT
/// sample is `rtt` (RFC 6298 §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4*RTTVAR = 3R).
fn established_with_rtt(cfg: Config, rtt: Duration) -> H {
    let mut h = H::new(cfg);
    h.open_to_syn_received(mss_opts(MSS));
    h.now += rtt;
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    h.expect_nothing();
    h.events();
    h
}

fn rto_of(h: &H) -> Duration {
    Duration::from_micros(h.stack.status(h.c()).unwrap().rto_us)
}

/// Advance by `d` and assert nothing was sent just before it, then the segment is due.
#[track_caller]
fn expect_after(h: &mut H, d: Duration) {
    h.advance(d - Duration::from_micros(1));
    h.expect_nothing();
    h.advance(Duration::from_micros(1));
}

/// RFC 6298 §2.2: "When the first RTT measurement R is made, the host MUST set SRTT <- R,
/// RTTVAR <- R/2, RTO <- SRTT + max (G, K*RTTVAR)" (K = 4).
#[test]
fn first_rtt_sample_sets_rto() {
    let h = established_with_rtt(base_config(), RTT);
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!(st.srtt_us, 100_000);
    assert_eq!(st.rto_us, 300_000);
}

/// RFC 6298 §2.3: a later sample R': RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|,
/// SRTT <- 7/8 SRTT + 1/8 R'.
#[test]
fn second_rtt_sample_smooths() {
    let mut h = established_with_rtt(base_config(), RTT);
    h.write(b"timed");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    h.now += Duration::from_millis(500);
    h.send(Seg::new(ACK, h.peer(0), h.our(5)));
    let st = h.stack.status(h.c()).unwrap();
    // RTTVAR = 3/4*50 + 1/4*400 = 137.5 ms; SRTT = 7/8*100 + 1/8*500 = 150 ms.
    assert_eq!(st.srtt_us, 150_000);
    assert_eq!(st.rto_us, 150_000 + 4 * 137_500);
}

/// RFC 6298 §2.4: "Whenever RTO is computed, if it is less than 1 second, then the RTO SHOULD
/// be rounded up to 1 second" — our profile's bound is `Config::min_rto` (200 ms).
#[test]
fn rto_has_lower_bound() {
    let h = established_with_rtt(base_config(), Duration::from_millis(1));
    assert_eq!(rto_of(&h), Duration::from_millis(200));
    let h = established_with_rtt(base_config().with_min_rto(Duration::from_secs(1)), RTT);
    assert_eq!(rto_of(&h), Duration::from_secs(1));
}

/// RFC 6298 §5.4–5.6: on expiry "Retransmit the earliest segment that has not been
/// acknowledged", "RTO <- RTO * 2 (back off the timer)", "Start the retransmission timer".
/// §2.5: a maximum value may be placed on RTO (here 2.4 s).
#[test]
fn rto_backs_off_exponentially_up_to_max() {
    let cfg = base_config().with_max_rto(Duration::from_millis(2400));
    let mut h = established_with_rtt(cfg, RTT);
    h.write(&payload(100));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(100);
    for ms in [300u64, 600, 1200, 2400, 2400] {
        expect_after(&mut h, Duration::from_millis(ms));
        h.expect(ACK | PSH, h.our(0), h.peer(0)).data(&payload(100));
        h.expect_nothing();
    }
    assert_eq!(h.stack.status(h.c()).unwrap().timeouts, 5);
}

/// RFC 6298 §3 (Karn's algorithm): "RTT samples MUST NOT be made using segments that were
/// retransmitted". The ACK of a retransmitted segment leaves SRTT untouched.
#[test]
fn karn_no_sample_from_retransmission() {
    let mut h = established_with_rtt(base_config(), RTT);
    h.write(b"data");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    expect_after(&mut h, Duration::from_millis(300));
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    h.now += Duration::from_millis(50);
    h.send(Seg::new(ACK, h.peer(0), h.our(4)));
    assert_eq!(h.stack.status(h.c()).unwrap().srtt_us, 100_000);
}

/// RFC 6298 §5 (note after 5.7) and Karn's algorithm: the backed-off RTO stays in force
/// until a valid RTT sample (which "can only happen when new data has been sent and
/// acknowledged") collapses it. An ACK of retransmitted data is no such sample, so the next
/// segment still uses the doubled RTO (600 ms, not 300 ms).
#[test]
fn karn_backed_off_rto_kept_until_valid_sample() {
    let mut h = established_with_rtt(base_config(), RTT);
    h.write(b"first");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    expect_after(&mut h, Duration::from_millis(300));
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    h.send(Seg::new(ACK, h.peer(0), h.our(5)));
    h.write(b"second");
    h.expect(ACK | PSH, h.our(5), h.peer(0));
    expect_after(&mut h, Duration::from_millis(600));
    h.expect(ACK | PSH, h.our(5), h.peer(0)).data(b"second");
}

/// RFC 6298 (5.7): "If the timer expires awaiting the ACK of a SYN segment and the TCP
/// implementation is using an RTO less than 3 seconds, the RTO MUST be re-initialized to 3
/// seconds when data transmission begins (i.e., after the three-way handshake completes)."
#[test]
fn syn_timeout_reinitialises_rto_to_3s() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.fire_timer();
    h.expect(SYN, h.iss, 0);
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).mss(MSS));
    h.expect(ACK, h.our(0), h.peer(0));
    h.write(b"data");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    expect_after(&mut h, Duration::from_secs(3));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).data(b"data");
}

/// RFC 1122 §4.2.3.5 (R2) / RFC 9293 §3.8.3: after too many retransmissions the connection
/// is closed and the user told ("connection aborted due to user timeout", here TimedOut).
#[test]
fn data_retransmission_gives_up() {
    let cfg = base_config().with_data_retries(3);
    let mut h = established_with_rtt(cfg, RTT);
    h.write(b"lost");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    for _ in 0..3 {
        h.fire_timer();
        h.expect(ACK | PSH, h.our(0), h.peer(0));
    }
    h.fire_timer();
    for o in h.drain() {
        assert!(o.flags.rst(), "only a RST may follow the last retransmission: {o}");
    }
    assert_eq!(h.state(), Some(State::Closed));
    let c = h.c();
    assert!(h.events().contains(&Event::Closed(c, CloseReason::TimedOut)));
    assert_eq!(h.stack.send(c, b"x").unwrap_err().kind(), ErrorKind::TimedOut);
}

/// RFC 5681 §3.1: after a retransmission timeout "cwnd MUST be set to no more than the loss
/// window, LW, which equals 1 full-sized segment"; then slow start resumes on the ACK.
#[test]
fn rto_collapses_cwnd_to_one_segment() {
    let mut h = established_with_rtt(base_config(), RTT);
    h.write(&payload(4 * MSS as usize));
    assert_eq!(h.drain().len(), 4);
    h.fire_timer();
    h.expect(ACK, h.our(0), h.peer(0)).len(MSS as usize);
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(0), h.our(MSS as u32)));
    // cwnd is now 2 segments: both remaining go-back-N segments are resent.
    h.expect(ACK, h.our(MSS as u32), h.peer(0)).len(MSS as usize);
    h.expect(ACK, h.our(2 * MSS as u32), h.peer(0)).len(MSS as usize);
    h.expect_nothing();
}

/// SYN-ACK retransmission in SYN-RECEIVED (RFC 9293 §3.8.1, RFC 6298 §5.5 backoff), and
/// after `syn_retries` the embryonic TCB is dropped while the listener keeps listening.
#[test]
fn syn_ack_retransmitted_then_dropped() {
    let cfg = base_config().with_syn_retries(2);
    let mut h = H::new(cfg);
    h.open_to_syn_received(mss_opts(MSS));
    expect_after(&mut h, Duration::from_secs(1));
    h.expect(SYN | ACK, h.iss, h.peer(0)).opts(mss_opts(MSS));
    expect_after(&mut h, Duration::from_secs(2));
    h.expect(SYN | ACK, h.iss, h.peer(0));
    h.advance(Duration::from_secs(4));
    for o in h.drain() {
        assert!(o.flags.rst(), "{o}");
    }
    assert_eq!(h.stack.connection_count(), 0);
    h.send(Seg::new(SYN, 5555, 0).from(SocketAddr::new(IpAddr::V4(REMOTE_IP), 40100)));
    assert_eq!(h.recv().unwrap().flags, SYN | ACK);
}

// ------------------------------------------------------------ zero window, persist

/// Established with a peer that offered 1000 bytes in its SYN and then closed its window.
fn zero_window_peer() -> H {
    let mut h = H::new(base_config());
    h.listen();
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(MSS).win(1000));
    h.iss = h.recv().unwrap().seq;
    h.now += RTT;
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(0));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    h
}

/// RFC 9293 §3.8.6.1: "The sending TCP must be prepared to accept from the user and send at
/// least one octet of new data even if the send window is zero ... The transmitting host
/// SHOULD send the first zero-window probe when a zero window has existed for the
/// retransmission timeout period (SHLD-29) ... SHOULD increase exponentially the interval
/// between successive probes (SHLD-30)". A window update releases the data. The answers to
/// the probes (same ACK, zero window) must not be mistaken for duplicate ACKs that trigger a
/// fast retransmission of data beyond the zero window (§3.8.6: nothing beyond the window
/// except the probe).
#[test]
fn zero_window_probes_back_off_until_window_opens() {
    let mut h = zero_window_peer();
    h.write(b"0123456789");
    h.expect_nothing();
    let rto = rto_of(&h);
    expect_after(&mut h, rto);
    h.expect(ACK, h.our(0), h.peer(0)).data(b"0");
    h.expect_nothing();
    // Each probe is answered with the window still closed (the byte is not accepted).
    let mut intervals = Vec::new();
    for _ in 0..4 {
        h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(0));
        h.expect_nothing();
        intervals.push(h.fire_timer());
        h.expect(ACK, h.our(0), h.peer(0)).data(b"0");
        h.expect_nothing();
    }
    assert!(intervals[0] >= rto, "{intervals:?}");
    assert!(intervals.windows(2).all(|w| w[1] >= w[0]), "non-decreasing: {intervals:?}");
    assert!(intervals[3] >= intervals[0] * 4, "exponential growth: {intervals:?}");
    // Now the window opens: everything goes out.
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(1000));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).data(b"0123456789");
    h.expect_nothing();
}

/// RFC 9293 §3.8.6.1 (MUST-37): "a TCP implementation MUST NOT close a connection for a
/// zero window as long as the receiver keeps responding" (here 20 probes, far more than
/// `data_retries`).
#[test]
fn zero_window_never_times_out_while_peer_answers() {
    let cfg = base_config().with_data_retries(3);
    let mut h = H::new(cfg);
    h.listen();
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(MSS).win(1000));
    h.iss = h.recv().unwrap().seq;
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(0));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    h.write(b"x");
    h.expect_nothing();
    let mut probes = 0;
    for i in 0..20 {
        assert_eq!(h.state(), Some(State::Established), "closed after {i} answered probes");
        h.fire_timer();
        for o in h.drain() {
            assert_eq!((o.seq, o.payload.len()), (h.our(0), 1), "{o}");
            probes += 1;
        }
        h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(0));
    }
    assert!(probes >= 10, "probes keep coming ({probes})");
    assert_eq!(h.state(), Some(State::Established));
}

// ------------------------------------------------------------ delayed ACK

fn delack_config() -> Config {
    // min_rto 1 s keeps retransmissions out of the 200 ms delayed-ACK window.
    base_config()
        .with_delayed_ack(Some(Duration::from_millis(200)))
        .with_ack_every(2)
        .with_min_rto(Duration::from_secs(1))
}

/// RFC 9293 §3.8.6.3: "an ACK should not be excessively delayed; in particular, the delay
/// MUST be less than 0.5 seconds (MUST-40)". A lone small segment is acknowledged when the
/// delayed-ACK timer (200 ms here) fires, not before.
#[test]
fn delayed_ack_fires_within_bound() {
    let mut h = H::new(delack_config());
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"small"));
    h.expect_nothing();
    let d = h.next_timer().expect("delayed-ACK timer");
    assert!(d < Duration::from_millis(500), "delay {d:?} must be < 0.5 s");
    expect_after(&mut h, Duration::from_millis(200));
    h.expect(ACK, h.our(0), h.peer(5)).win(WIN - 5);
    h.expect_nothing();
}

/// RFC 9293 §3.8.6.3 / RFC 5681 §4.2: "an ACK SHOULD be generated for at least every second
/// full-sized segment" (SHLD-19).
#[test]
fn delayed_ack_every_second_full_segment() {
    let mut h = H::new(delack_config());
    h.establish_passive(mss_opts(MSS));
    let m = MSS as usize;
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(m)));
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(m as u32), h.our(0)).data(&payload(m)));
    h.expect(ACK, h.our(0), h.peer(2 * m as u32));
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(2 * m as u32), h.our(0)).data(&payload(m)));
    h.expect_nothing();
}

/// RFC 5681 §4.2: "A TCP receiver SHOULD send an immediate duplicate ACK when an out-of-order
/// segment arrives" and "an immediate ACK when the incoming segment fills in all or part of a
/// gap" — delayed ACKs do not apply.
#[test]
fn out_of_order_and_gap_fill_are_acked_at_once() {
    let mut h = H::new(delack_config());
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK, h.peer(10), h.our(0)).data(b"later"));
    h.expect(ACK, h.our(0), h.peer(0));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"0123456789"));
    h.expect(ACK, h.our(0), h.peer(15));
}

/// RFC 9293 §3.8.6.3: a delayed ACK rides on outgoing data: once data carries the ACK, the
/// timer has nothing left to send.
#[test]
fn delayed_ack_piggybacks_on_data() {
    let mut h = H::new(delack_config());
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"req"));
    h.expect_nothing();
    h.write(b"resp");
    h.expect(ACK | PSH, h.our(0), h.peer(3)).data(b"resp");
    h.advance(Duration::from_millis(200));
    h.expect_nothing();
}

// ------------------------------------------------------------ Nagle

/// RFC 9293 §3.7.4 (Nagle, SHLD-7): "if there is unacknowledged data, then the sending TCP
/// buffers all user data (regardless of the PSH bit) until the outstanding data has been
/// acknowledged or until the TCP can send a full-sized segment".
#[test]
fn nagle_holds_small_segments_while_unacked() {
    let mut h = established_with_rtt(base_config(), RTT);
    h.write(b"aaaa");
    h.expect(ACK | PSH, h.our(0), h.peer(0)).data(b"aaaa");
    h.write(b"bbbb");
    h.write(b"cccc");
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(0), h.our(4)));
    h.expect(ACK | PSH, h.our(4), h.peer(0)).data(b"bbbbcccc");
    h.expect_nothing();
}

/// Nagle does not hold a full-sized segment.
#[test]
fn nagle_sends_full_segments() {
    let mut h = established_with_rtt(base_config(), RTT);
    h.write(b"x");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    h.write(&payload(MSS as usize + 10));
    h.expect(ACK, h.our(1), h.peer(0)).len(MSS as usize);
    h.expect_nothing();
}

/// RFC 9293 §3.7.4 (MUST-17): "A TCP implementation SHOULD implement the Nagle algorithm ...
/// However, there MUST be a way for an application to disable the Nagle algorithm" (TCP_NODELAY).
#[test]
fn nodelay_sends_small_segments_at_once() {
    let mut h = established_with_rtt(base_config(), RTT);
    let c = h.c();
    h.stack.set_nodelay(c, true).unwrap();
    h.write(b"aaaa");
    h.expect(ACK | PSH, h.our(0), h.peer(0)).data(b"aaaa");
    h.write(b"bbbb");
    h.expect(ACK | PSH, h.our(4), h.peer(0)).data(b"bbbb");
    h.expect_nothing();
}

// ------------------------------------------------------------ keepalive

fn keepalive_conn() -> H {
    let mut h = established_with_rtt(base_config(), RTT);
    let ka = Keepalive { idle: Duration::from_secs(10), interval: Duration::from_secs(2), probes: 3 };
    let c = h.c();
    h.stack.set_keepalive(c, Some(ka)).unwrap();
    h
}

/// RFC 9293 §3.8.4 / RFC 1122 §4.2.3.6: keep-alives are sent only after an idle interval;
/// the probe is <SEQ=SND.NXT-1> with no data, so the peer must ACK it.
#[test]
fn keepalive_probe_after_idle_and_answered() {
    let mut h = keepalive_conn();
    expect_after(&mut h, Duration::from_secs(10));
    h.expect(ACK, h.our(0).wrapping_sub(1), h.peer(0)).len(0).win(WIN);
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    // Answered: the next probe comes after a full idle period again.
    expect_after(&mut h, Duration::from_secs(10));
    h.expect(ACK, h.our(0).wrapping_sub(1), h.peer(0));
    assert_eq!(h.state(), Some(State::Established));
}

/// RFC 1122 §4.2.3.6: unanswered probes (3 here, every 2 s) end the connection.
#[test]
fn keepalive_unanswered_times_out() {
    let mut h = keepalive_conn();
    h.advance(Duration::from_secs(10));
    h.expect(ACK, h.our(0).wrapping_sub(1), h.peer(0));
    for _ in 0..2 {
        expect_after(&mut h, Duration::from_secs(2));
        h.expect(ACK, h.our(0).wrapping_sub(1), h.peer(0));
    }
    h.advance(Duration::from_secs(2));
    assert_eq!(h.state(), Some(State::Closed));
    let c = h.c();
    assert!(h.events().contains(&Event::Closed(c, CloseReason::TimedOut)));
}

/// RFC 1122 §4.2.3.6: "Keep-alive packets MUST only be sent when no data or acknowledgement
/// packets have been received for the connection within an interval."
#[test]
fn keepalive_not_sent_while_traffic_flows() {
    let mut h = keepalive_conn();
    for i in 0..5u32 {
        h.advance(Duration::from_secs(6));
        h.send(Seg::new(ACK, h.peer(i), h.our(0)).data(b"k"));
        h.expect(ACK, h.our(0), h.peer(i + 1));
    }
    h.expect_nothing();
}

/// RFC 6298 (5.1): "Every time a packet containing data is sent (including a
/// retransmission), if the timer is not running, start it" — a second segment sent while
/// the timer runs does not restart it.
#[test]
fn rto_timer_not_restarted_by_later_segments() {
    let mut h = established_with_rtt(base_config(), RTT);
    let c = h.c();
    h.stack.set_nodelay(c, true).unwrap();
    h.write(b"one");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    h.now += Duration::from_millis(100);
    h.write(b"two");
    h.expect(ACK | PSH, h.our(3), h.peer(0));
    expect_after(&mut h, Duration::from_millis(200));
    h.expect(ACK | PSH, h.our(0), h.peer(0));
}

/// RFC 6298 (5.3): "When an ACK is received that acknowledges new data, restart the
/// retransmission timer so that it will expire after RTO seconds (for the current value of
/// RTO)."
#[test]
fn rto_timer_restarted_by_new_ack() {
    let mut h = established_with_rtt(base_config(), RTT);
    let c = h.c();
    h.stack.set_nodelay(c, true).unwrap();
    h.write(b"one");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    h.write(b"two");
    h.expect(ACK | PSH, h.our(3), h.peer(0));
    h.now += Duration::from_millis(250);
    h.send(Seg::new(ACK, h.peer(0), h.our(3)));
    let rto = rto_of(&h);
    expect_after(&mut h, rto);
    h.expect(ACK | PSH, h.our(3), h.peer(0)).data(b"two");
}

/// RFC 9293 §3.10.7.4 / RFC 6298: the FIN in LAST-ACK is retransmitted until acknowledged.
#[test]
fn fin_in_last_ack_is_retransmitted() {
    let mut h = established_with_rtt(base_config(), RTT);
    let c = h.c();
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    h.stack.close(c);
    h.expect(FIN | ACK, h.our(0), h.peer(1));
    let rto = rto_of(&h);
    expect_after(&mut h, rto);
    h.expect(FIN | ACK, h.our(0), h.peer(1));
    h.send(Seg::new(ACK, h.peer(1), h.our(1)));
    assert_eq!(h.stack.connection_count(), 0);
}

/// RFC 6298 (5.4) with §3.10.4: the FIN is in the retransmission queue with the data before
/// it; a timeout resends the data and the FIN (go-back-N from SND.UNA).
#[test]
fn retransmission_includes_fin() {
    let mut h = established_with_rtt(base_config(), RTT);
    let c = h.c();
    h.write(b"abc");
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    let segs = h.drain();
    let stream: Vec<u8> = segs.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(stream, b"abc");
    assert!(segs.last().unwrap().flags.fin());
    h.fire_timer();
    let segs = h.drain();
    assert_eq!(segs[0].seq, h.our(0), "{}", segs[0]);
    let stream: Vec<u8> = segs.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(stream, b"abc");
    assert!(segs.last().unwrap().flags.fin(), "FIN resent: {:?}", segs.last());
    h.send(Seg::new(ACK, h.peer(0), h.our(4)));
    assert_eq!(h.state(), Some(State::FinWait2));
}

/// RFC 1122 §4.2.3.6: a peer's keep-alive (SEG.SEQ = RCV.NXT-1, no data or one garbage
/// byte) is outside the window, so §3.10.7.4 first check answers it with
/// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>; the connection is unaffected.
#[test]
fn peer_keepalive_is_acknowledged() {
    let mut h = established_with_rtt(base_config(), RTT);
    h.send(Seg::new(ACK, h.peer(0).wrapping_sub(1), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(0)).len(0).win(WIN);
    h.send(Seg::new(ACK, h.peer(0).wrapping_sub(1), h.our(0)).data(b"\0"));
    h.expect(ACK, h.our(0), h.peer(0)).len(0);
    h.expect_nothing();
    assert_eq!(h.read(4).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// RFC 5681 §3.1 (and RFC 3390): "if the SYN or SYN/ACK is lost, the initial window used by
/// a sender after a correctly transmitted SYN MUST be one segment"; RFC 6928 §2 recommends
/// applying this only after more than one SYN (or SYN/ACK) retransmission. After two SYN
/// retransmissions the first flight is one segment.
#[test]
fn initial_window_is_one_segment_after_repeated_syn_loss() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    for _ in 0..2 {
        h.fire_timer();
        h.expect(SYN, h.iss, 0);
    }
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).mss(1000));
    h.expect(ACK, h.our(0), h.peer(0));
    h.write(&payload(5000));
    h.expect(ACK, h.our(0), h.peer(0)).len(1000);
    h.expect_nothing();
}

/// RFC 6928 §2: after a single SYN retransmission implementations should "refrain from
/// resetting the initial window to 1 segment": the full IW (here 10 × 1000) is used.
#[test]
fn initial_window_kept_after_single_syn_loss() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.fire_timer();
    h.expect(SYN, h.iss, 0);
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).mss(1000));
    h.expect(ACK, h.our(0), h.peer(0));
    h.write(&payload(20_000));
    let bytes: usize = h.drain().iter().map(|s| s.payload.len()).sum();
    assert_eq!(bytes, 10_000);
}

/// RFC 9293 §3.8.3 (MUST-23) / RFC 1122 §4.2.3.5: "R2 for a SYN segment MUST be set large
/// enough to provide retransmission of the segment for at least 3 minutes" — with the
/// default configuration an unanswered active OPEN is still retrying after 179 s.
#[test]
fn syn_retransmitted_for_at_least_three_minutes() {
    let defaults = Config::default();
    let cfg = base_config()
        .with_syn_retries(defaults.syn_retries)
        .with_initial_rto(defaults.initial_rto)
        .with_max_rto(defaults.max_rto);
    let mut h = H::new(cfg);
    h.open_to_syn_sent();
    let start = h.now;
    let mut sent = 1;
    while h.now - start < Duration::from_secs(179) {
        let Some(next) = h.next_timer() else { break };
        if h.now + next - start >= Duration::from_secs(179) {
            break;
        }
        h.fire_timer();
        sent += h.drain().iter().filter(|o| o.flags == SYN).count();
    }
    h.advance_to(start + Duration::from_secs(179));
    assert_eq!(h.state(), Some(State::SynSent), "gave up after {sent} SYNs");
}

/// RFC 9293 §3.8.3: "The value of R2 SHOULD correspond to at least 100 seconds" for data —
/// with the default retry count and RTO bounds, unacknowledged data is still being
/// retransmitted 100 s later.
#[test]
fn data_retransmitted_for_at_least_100_seconds() {
    let d = Config::default();
    let cfg = base_config().with_data_retries(d.data_retries).with_min_rto(d.min_rto).with_max_rto(d.max_rto);
    let mut h = established_with_rtt(cfg, Duration::from_millis(1));
    h.write(b"x");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    let start = h.now;
    while let Some(next) = h.next_timer() {
        if h.now + next - start > Duration::from_secs(100) {
            break;
        }
        h.fire_timer();
        h.drain();
    }
    h.advance_to(start + Duration::from_secs(100));
    assert_eq!(h.state(), Some(State::Established));
}

/// RFC 9293 §3.8.4 / RFC 1122 §4.2.3.6: keep-alives "MUST default to off" and the idle
/// interval "MUST default to no less than two hours" — a default connection sends nothing
/// for hours of silence.
#[test]
fn keepalive_defaults_off_and_two_hours() {
    assert!(Config::default().keepalive.is_none());
    assert!(Keepalive::default().idle >= Duration::from_secs(7200));
    let mut h = established_with_rtt(base_config().with_keepalive(None), RTT);
    h.advance(Duration::from_secs(5 * 3600));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
}

/// RFC 6298 (5.4): "Retransmit the earliest segment that has not been acknowledged by the
/// TCP receiver" — after a partial ACK inside a segment, the retransmission starts at
/// SND.UNA, not at the original segment boundary.
#[test]
fn retransmission_starts_at_snd_una_after_partial_ack() {
    let mut h = established_with_rtt(base_config(), RTT);
    let data = payload(1000);
    h.write(&data);
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(1000);
    h.send(Seg::new(ACK, h.peer(0), h.our(400)));
    h.fire_timer();
    h.expect(ACK | PSH, h.our(400), h.peer(0)).data(&data[400..]);
    h.expect_nothing();
}
