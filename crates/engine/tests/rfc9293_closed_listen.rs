//! RFC 9293 §3.10.1 (OPEN), §3.10.7.1 (SEGMENT ARRIVES, CLOSED) and §3.10.7.2 (LISTEN).

mod common;
use common::*;

/// RFC 9293 §3.10.1 OPEN, passive: a second passive OPEN on the same local socket is
/// refused ("error: connection already exists").
#[test]
fn open_passive_twice_is_addr_in_use() {
    let mut h = H::new(base_config());
    h.listen();
    let e = h.stack.listen(local_addr(), 4).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    h.expect_nothing();
}

/// RFC 9293 §3.10.1 OPEN, active: "issue a SYN segment ... <SEQ=ISS><CTL=SYN>. Set SND.UNA
/// to ISS, SND.NXT to ISS+1, enter SYN-SENT state". The SYN carries our MSS (§3.7.1) and
/// the unscaled window (RFC 7323 §2.2).
#[test]
fn open_active_sends_syn_and_enters_syn_sent() {
    let mut h = H::new(base_config());
    let syn = h.open_to_syn_sent();
    assert_eq!(syn.dst, remote_addr());
    assert_eq!(syn.src, local_addr());
    let syn = syn.win(WIN).len(0).opts(mss_opts(MSS));
    assert_eq!(syn.ack, 0);
    assert_eq!(h.state(), Some(State::SynSent));
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!(st.snd_una, syn.seq);
    assert_eq!(st.snd_nxt, syn.seq.wrapping_add(1));
    h.expect_nothing();
}

/// RFC 9293 §3.10.1 OPEN, active, with every option enabled: the SYN offers MSS, SACK
/// permitted (RFC 2018 §2), timestamps with TSecr 0 (RFC 7323 §3.2) and window scale
/// (RFC 7323 §2.2).
#[test]
fn open_active_offers_enabled_options() {
    let cfg = base_config()
        .with_window_scale(true)
        .with_window_scale_shift(Some(7))
        .with_sack(true)
        .with_timestamps(true);
    let mut h = H::new(cfg);
    let syn = h.open_to_syn_sent();
    assert_eq!(syn.options.mss, Some(MSS));
    assert_eq!(syn.options.window_scale, Some(7));
    assert!(syn.options.sack_permitted);
    let (_, ecr) = syn.options.timestamps.expect("timestamps offered");
    assert_eq!(ecr, 0);
    assert_eq!(syn.window, WIN, "the window in a SYN is never scaled");
}

/// RFC 9293 §3.10.1: OPEN to an unspecified foreign socket is an error for an active OPEN.
#[test]
fn open_active_to_unspecified_remote_is_rejected() {
    let mut h = H::new(base_config());
    let r = h.stack.connect(h.now, local_addr(), "0.0.0.0:80".parse().unwrap());
    assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidInput);
    h.expect_nothing();
}

/// RFC 9293 §3.10.7.1 CLOSED: "An incoming segment containing a RST is discarded."
#[test]
fn closed_rst_is_discarded() {
    let mut h = H::new(base_config());
    h.send(Seg::new(RST, 5000, 0));
    h.send(Seg::new(RST | ACK, 5000, 77));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
}

/// RFC 9293 §3.10.7.1 CLOSED: "If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>".
#[test]
fn closed_ack_draws_rst_with_seq_seg_ack() {
    let mut h = H::new(base_config());
    h.send(Seg::new(ACK, 5000, 123_456).data(b"hello"));
    let o = h.expect(RST, 123_456, 0).win(0).len(0).no_opts();
    assert_eq!(o.dst, remote_addr());
    assert_eq!(o.src, local_addr());
    h.expect_nothing();
}

/// RFC 9293 §3.10.7.1 CLOSED: "If the ACK bit is off, sequence number zero is used,
/// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>" — SEG.LEN counts SYN, data and FIN.
#[test]
fn closed_non_ack_draws_rst_ack_covering_seg_len() {
    let mut h = H::new(base_config());
    h.send(Seg::new(SYN, 5000, 0));
    h.expect(RST | ACK, 0, 5001).len(0);
    h.send(Seg::new(FIN, 9000, 0).data(b"abc"));
    h.expect(RST | ACK, 0, 9004);
    h.send(Seg::new(NONE, 7000, 0).data(b"xy"));
    h.expect(RST | ACK, 0, 7002);
    h.expect_nothing();
}

/// RFC 9293 §3.10.7.1: a segment to a port nobody listens on, while another port listens,
/// is still answered with a RST.
#[test]
fn closed_port_next_to_listener_draws_rst() {
    let mut h = H::new(base_config());
    h.listen();
    h.send(Seg::new(SYN, 5000, 0).to(SocketAddr::new(IpAddr::V4(LOCAL_IP), 81)));
    let o = h.expect(RST | ACK, 0, 5001);
    assert_eq!(o.src.port(), 81);
}

/// RFC 9293 §3.10.7.2 LISTEN, first: "An incoming RST should be ignored. Return."
#[test]
fn listen_rst_is_ignored() {
    let mut h = H::new(base_config());
    h.listen();
    h.send(Seg::new(RST, 5000, 0));
    h.send(Seg::new(RST | ACK, 5000, 1));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
}

/// RFC 9293 §3.10.7.2 LISTEN, second: "Any acknowledgment is bad if it arrives on a
/// connection still in the LISTEN state. An acceptable reset segment should be formed for
/// any arriving ACK-bearing segment. The RST should be formatted as <SEQ=SEG.ACK><CTL=RST>".
#[test]
fn listen_ack_draws_rst() {
    let mut h = H::new(base_config());
    h.listen();
    h.send(Seg::new(ACK, 5000, 4242));
    h.expect(RST, 4242, 0).len(0);
    // A SYN-ACK is ACK-bearing too.
    h.send(Seg::new(SYN | ACK, 5000, 999));
    h.expect(RST, 999, 0);
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
}

/// RFC 9293 §3.10.7.2 LISTEN, third: on a SYN "Set RCV.NXT to SEG.SEQ+1, IRS is set to
/// SEG.SEQ ... ISS should be selected and a SYN segment sent of the form
/// <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>. SND.NXT is set to ISS+1 and SND.UNA to ISS. The
/// connection state should be changed to SYN-RECEIVED."
#[test]
fn listen_syn_draws_syn_ack_and_enters_syn_received() {
    let mut h = H::new(base_config());
    let synack = h.open_to_syn_received(mss_opts(1400));
    synack.win(WIN).len(0).opts(mss_opts(MSS));
    assert_eq!(h.stack.connection_count(), 1);
    h.expect_nothing();
    // The TCB exists but is not yet acceptable.
    assert_eq!(h.stack.accept(h.listener.unwrap()).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// RFC 9293 §3.10.7.2 LISTEN, third: the SYN-ACK only offers the options the SYN offered
/// (RFC 7323 §1.3, §2.2; RFC 2018 §2).
#[test]
fn listen_syn_without_options_gets_syn_ack_without_options() {
    let cfg = base_config().with_window_scale(true).with_sack(true).with_timestamps(true);
    let mut h = H::new(cfg);
    let synack = h.open_to_syn_received(TcpOptions::default());
    assert_eq!(synack.options, mss_opts(MSS));
}

/// RFC 9293 §3.10.7.2 LISTEN, fourth: "Any other control or text-bearing segment (not
/// containing SYN) must have an ACK and thus would have been discarded by the ACK
/// processing ... drop the segment and return."
#[test]
fn listen_other_segments_are_dropped() {
    let mut h = H::new(base_config());
    h.listen();
    h.send(Seg::new(FIN, 5000, 0));
    h.send(Seg::new(NONE, 5000, 0).data(b"data"));
    h.send(Seg::new(PSH, 5000, 0));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
}

/// RFC 9293 §3.10.7.2 LISTEN: the listener stays in LISTEN; every SYN from a new remote
/// socket creates its own SYN-RECEIVED TCB (§2.7: several connections per local port).
#[test]
fn listen_serves_several_remotes() {
    let mut h = H::new(base_config());
    h.listen();
    for port in [40000u16, 40001, 40002] {
        let from = SocketAddr::new(IpAddr::V4(REMOTE_IP), port);
        h.send(Seg::new(SYN, 7000 + port as u32, 0).from(from));
        let o = h.recv().expect("SYN-ACK");
        assert_eq!((o.flags, o.ack, o.dst), (SYN | ACK, 7001 + port as u32, from), "{o}");
    }
    assert_eq!(h.stack.connection_count(), 3);
}

/// RFC 9293 §3.10.1: OPEN in LISTEN state turned active is not supported; the listener
/// stays independent of connect() from the same port to another remote.
#[test]
fn listen_and_connect_from_same_port_coexist() {
    let mut h = H::new(base_config());
    h.listen();
    let other = SocketAddr::new(IpAddr::V4(REMOTE_IP), 9);
    let c = h.stack.connect(h.now, local_addr(), other).unwrap();
    let o = h.recv().unwrap();
    assert_eq!((o.flags, o.dst), (SYN, other));
    assert_eq!(h.stack.state(c), Some(State::SynSent));
}

/// Listener backlog: a SYN beyond the backlog is dropped (the peer retransmits), and no TCB
/// is created. RFC 9293 §3.10.7.2 leaves resource exhaustion to the implementation. With
/// SYN cookies off (`SynCookies::Never`); with them on, see `tests/syn_cookies.rs`.
#[test]
fn listen_backlog_full_drops_syn() {
    let mut h = H::new(base_config().with_syn_cookies(utcp_engine::SynCookies::Never));
    let l = h.stack.listen(local_addr(), 1).unwrap();
    h.listener = Some(l);
    h.send(Seg::new(SYN, 5000, 0));
    assert_eq!(h.recv().unwrap().flags, SYN | ACK);
    h.send(Seg::new(SYN, 6000, 0).from(SocketAddr::new(IpAddr::V4(REMOTE_IP), 40001)));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 1);
    assert_eq!(h.stack.counters().dropped(DropReason::ListenOverflow), 1);
}

/// Closing a listener resets its pending (not yet accepted) connections: RFC 9293 §3.10.4
/// CLOSE in LISTEN "Any outstanding RECEIVEs are returned ... delete TCB", and connections
/// that are synchronized are aborted with <SEQ=SND.NXT><CTL=RST> (§3.10.5).
#[test]
fn close_listener_resets_queued_connection() {
    let mut h = H::new(base_config());
    h.open_to_syn_received(TcpOptions::default());
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    let l = h.listener.unwrap();
    assert_eq!(h.stack.accept_queue_len(l), 1);
    h.stack.close_listener(l);
    let o = h.recv().expect("RST for the queued connection");
    assert!(o.flags.rst(), "expected RST, got {o}");
    assert_eq!(o.seq, h.our(0));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
    // The port is closed now: a new SYN draws a RST.
    h.send(Seg::new(SYN, 8000, 0).from(SocketAddr::new(IpAddr::V4(REMOTE_IP), 40009)));
    h.expect(RST | ACK, 0, 8001);
}

/// Segments for an address that is not ours are dropped without a reply.
#[test]
fn segment_to_foreign_address_is_dropped_silently() {
    let mut h = H::new(base_config());
    h.send(Seg::new(SYN, 5000, 0).to(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), 80)));
    h.expect_nothing();
    assert_eq!(h.stack.counters().dropped(DropReason::NotOurAddress), 1);
}

/// RFC 9293 §3.1 (MUST-2/MUST-3 checksum): a segment with a bad checksum is discarded
/// silently — no RST, no TCB.
#[test]
fn bad_checksum_is_dropped_silently() {
    let mut h = H::new(base_config());
    h.listen();
    let mut p = Seg::new(SYN, 5000, 0).mss(MSS).packet();
    let last = p.len() - 1;
    p[last] ^= 0x55; // last option byte: only the TCP checksum catches it
    h.send_raw(&p);
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.counters().dropped(DropReason::BadTcpChecksum), 1);
}

/// RFC 1122 §4.2.3.10: "A TCP implementation MUST silently discard an incoming SYN segment
/// that is addressed to a broadcast or multicast address", and no RST may go to a broadcast
/// or multicast source (RFC 1122 §3.2.1.3: such source addresses are invalid).
#[test]
fn syn_from_or_to_multicast_is_dropped_silently() {
    let mut h = H::new(base_config());
    h.listen();
    let mcast = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 5)), 40000);
    h.send(Seg::new(SYN, 5000, 0).from(mcast));
    let bcast = SocketAddr::new(IpAddr::V4(Ipv4Addr::BROADCAST), 80);
    h.send(Seg::new(SYN, 5000, 0).to(bcast));
    h.send(Seg::new(ACK, 5000, 7).from(mcast).to(SocketAddr::new(IpAddr::V4(LOCAL_IP), 81)));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
}

/// RFC 9293 §3.7.1: the MSS option we send is the MTU less the fixed IP and TCP headers
/// ("MSS = MTU - 40" for IPv4 without options); `Config::mss` overrides it.
#[test]
fn advertised_mss_follows_mtu() {
    let mut h = H::new(base_config().with_mtu(1280));
    assert_eq!(h.open_to_syn_sent().options.mss, Some(1240));
    let mut h = H::new(base_config().with_mss(Some(900)));
    assert_eq!(h.open_to_syn_sent().options.mss, Some(900));
}

/// RFC 9293 §3.10.7.4 (RST in SYN-RECEIVED "return this connection to LISTEN") and
/// §3.10.7.2: a listener regains the capacity of a half-open connection that was reset or
/// timed out, and of a queued connection once it is accepted.
#[test]
fn listener_backlog_recovers_after_reset_timeout_and_accept() {
    let mut h = H::new(base_config().with_syn_retries(1));
    let l = h.stack.listen(local_addr(), 1).unwrap();
    h.listener = Some(l);
    let port = |p: u16| SocketAddr::new(IpAddr::V4(REMOTE_IP), p);
    // A: reset in SYN-RECEIVED.
    h.send(Seg::new(SYN, 1000, 0).from(port(41000)));
    assert_eq!(h.recv().unwrap().flags, SYN | ACK);
    h.send(Seg::new(RST, 1001, 0).from(port(41000)));
    assert_eq!(h.stack.connection_count(), 0);
    // B: SYN-ACK retransmissions exhausted.
    h.send(Seg::new(SYN, 2000, 0).from(port(41001)));
    assert_eq!(h.recv().unwrap().flags, SYN | ACK, "capacity regained after A's reset");
    h.advance(Duration::from_secs(1));
    h.drain();
    h.advance(Duration::from_secs(2));
    h.drain();
    assert_eq!(h.stack.connection_count(), 0, "B given up");
    // C: completes and waits in the accept queue; D is refused while C waits.
    h.send(Seg::new(SYN, 3000, 0).from(port(41002)));
    let c_synack = h.recv().expect("capacity regained after B's timeout");
    h.send(Seg::new(ACK, 3001, c_synack.seq.wrapping_add(1)).from(port(41002)));
    assert_eq!(h.stack.accept_queue_len(l), 1);
    h.send(Seg::new(SYN, 4000, 0).from(port(41003)));
    h.expect_nothing();
    let _ = h.stack.accept(l).unwrap();
    h.send(Seg::new(SYN, 4000, 0).from(port(41003)));
    let d = h.recv().expect("capacity regained after accept");
    assert_eq!((d.flags, d.ack), (SYN | ACK, 4001));
}

/// RFC 9293 §3.1 (MUST-6): "A TCP implementation MUST ignore without error any TCP option it
/// does not implement, assuming that the option has a length field." A SYN carrying an
/// unknown option (kind 253, length 4) is answered normally; without an MSS option the
/// default send MSS is 536 (MUST-15).
#[test]
fn unknown_option_is_ignored() {
    let mut h = H::new(base_config());
    h.listen();
    let p = rewrite_options(Seg::new(SYN, 5000, 0).mss(MSS).packet(), |o| {
        o.copy_from_slice(&[253, 4, 0xab, 0xcd]);
    });
    h.send_raw(&p);
    let o = h.recv().expect("SYN-ACK");
    assert_eq!((o.flags, o.ack), (SYN | ACK, 5001));
    h.iss = o.seq;
    h.irs = 5000;
    h.send(Seg::new(ACK, 5001, h.our(0)));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    assert_eq!(h.stack.status(c).unwrap().mss, 536);
}

/// RFC 9293 §3.1 (MUST-7): "TCP implementations MUST be prepared to handle an illegal option
/// length (e.g., zero)". A SYN whose option has length 0 must not create a connection (and
/// must not crash the stack); the listener keeps working.
#[test]
fn illegal_option_length_is_handled() {
    let mut h = H::new(base_config());
    h.listen();
    for bad in [[2u8, 0, 5, 180], [2, 40, 5, 180], [8, 2, 0, 0], [3, 1, 1, 1]] {
        let p = rewrite_options(Seg::new(SYN, 5000, 0).mss(MSS).packet(), |o| o.copy_from_slice(&bad));
        h.send_raw(&p);
        for o in h.drain() {
            assert!(!o.flags.syn(), "no handshake for options {bad:?}: {o}");
        }
    }
    assert_eq!(h.stack.connection_count(), 0);
    h.send(Seg::new(SYN, 6000, 0).mss(MSS));
    assert_eq!(h.recv().unwrap().flags, SYN | ACK);
}

/// RFC 9293 §3.10.1 passive OPEN with an unspecified local address (0.0.0.0): a SYN to any
/// of our addresses on that port is accepted and answered from the address it was sent to.
#[test]
fn listen_on_unspecified_address() {
    let mut h = H::new(base_config());
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), LOCAL_PORT);
    let l = h.stack.listen(any, 4).unwrap();
    h.listener = Some(l);
    h.send(Seg::new(SYN, 5000, 0).mss(MSS));
    let o = h.recv().expect("SYN-ACK");
    assert_eq!((o.flags, o.ack, o.src), (SYN | ACK, 5001, local_addr()));
}
