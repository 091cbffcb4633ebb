//! Any-IP termination: `Stack::listen_any` takes SYNs for any destination its filter
//! allows, each accepted connection keeps the original destination as its local
//! address, and segments for no connection still follow RFC 9293 §3.10.7.1.

mod common;
use common::*;
use utcp_engine::AnyIpFilter;

fn dst(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

fn any_ip_stack() -> H {
    let mut h = H::new(base_config());
    let f = AnyIpFilter::all().prefix("10.99.0.0".parse().unwrap(), 24).ports(1, 9000);
    h.listener = Some(h.stack.listen_any(f, 0).unwrap());
    h
}

#[test]
fn syn_to_any_address_in_the_filter_is_answered_from_that_address() {
    let mut h = any_ip_stack();
    let to = dst([10, 99, 0, 1], 8080);
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(1460).to(to));
    let synack = h.recv().expect("a SYN-ACK");
    assert_eq!((synack.flags, synack.ack, synack.dst), (SYN | ACK, PEER_ISS + 1, remote_addr()));
    assert_eq!(synack.src, to, "the SYN-ACK comes from the original destination");
    let iss = synack.seq;
    h.send(Seg::new(ACK, PEER_ISS + 1, iss.wrapping_add(1)).to(to));
    let (c, peer) = h.stack.accept(h.listener.unwrap()).expect("an established connection");
    assert_eq!(peer, remote_addr());
    assert_eq!(h.stack.local_addr(c).unwrap(), to, "local_addr is the original destination");
    // Data flows on it.
    h.send(Seg::new(ACK | PSH, PEER_ISS + 1, iss.wrapping_add(1)).data(b"hi").to(to));
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.recv(c, &mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"hi");
}

#[test]
fn destination_outside_the_prefixes_is_not_ours() {
    let mut h = any_ip_stack();
    h.send(Seg::new(SYN, PEER_ISS, 0).to(dst([10, 98, 0, 1], 80)));
    h.expect_nothing();
    assert_eq!(h.stack.counters().dropped(DropReason::NotOurAddress), 1);
}

#[test]
fn port_outside_the_filter_gets_a_rst_per_3_10_7_1() {
    let mut h = any_ip_stack();
    let to = dst([10, 99, 0, 7], 9001);
    h.send(Seg::new(SYN, PEER_ISS, 0).to(to));
    let rst = h.expect_to(remote_addr(), RST | ACK, 0, PEER_ISS + 1);
    assert_eq!(rst.src, to);
}

#[test]
fn exact_listener_wins_and_one_any_ip_listener_per_stack() {
    let mut h = any_ip_stack();
    assert_eq!(h.stack.listen_any(AnyIpFilter::all(), 0).unwrap_err().kind(), ErrorKind::AddrInUse);
    let exact = h.stack.listen(local_addr(), 0).unwrap();
    h.send(Seg::new(SYN, PEER_ISS, 0));
    let synack = h.recv().expect("a SYN-ACK");
    assert_eq!((synack.flags, synack.ack, synack.src), (SYN | ACK, PEER_ISS + 1, local_addr()));
    h.send(Seg::new(ACK, PEER_ISS + 1, synack.seq.wrapping_add(1)));
    assert!(h.stack.accept(exact).is_ok());
    assert_eq!(h.stack.accept(h.listener.unwrap()).unwrap_err().kind(), ErrorKind::WouldBlock);
    // Closing the any-IP listener stops the termination.
    h.stack.close_listener(h.listener.unwrap());
    h.send(
        Seg::new(SYN, PEER_ISS, 0).to(dst([10, 99, 0, 1], 80)).from(SocketAddr::from(([10, 0, 0, 3], 5000))),
    );
    h.expect_nothing();
}

#[test]
fn active_opens_still_find_ephemeral_ports() {
    let mut h = H::new(base_config());
    h.stack.listen_any(AnyIpFilter::all(), 0).unwrap();
    let c = h.stack.connect(h.now, SocketAddr::new(IpAddr::V4(LOCAL_IP), 0), remote_addr()).unwrap();
    assert_ne!(h.stack.local_addr(c).unwrap().port(), 0);
    h.expect(SYN, h.stack.status(c).unwrap().snd_una, 0);
}

// ---------------------------------------------------------------- handshake gate

fn gated() -> (H, SocketAddr) {
    let mut h = any_ip_stack();
    h.stack.set_handshake_gate(h.listener.unwrap(), true).unwrap();
    (h, dst([10, 99, 0, 1], 8080))
}

fn quad_to(to: SocketAddr) -> Quad {
    Quad { local: to, remote: remote_addr() }
}

#[test]
fn gated_syn_is_held_silently_until_accepted() {
    let (mut h, to) = gated();
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(1200).to(to));
    h.expect_nothing();
    assert!(h.events().contains(&Event::SynArrived(h.listener.unwrap())));
    // The peer retransmits: absorbed, no second event.
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(1200).to(to));
    h.expect_nothing();
    assert!(!h.events().contains(&Event::SynArrived(h.listener.unwrap())));
    assert_eq!(h.stack.poll_held_syn(h.listener.unwrap()), Some(quad_to(to)));
    assert_eq!(h.stack.poll_held_syn(h.listener.unwrap()), None, "handed out once");
    h.stack.accept_syn(h.now, quad_to(to)).unwrap();
    let synack = h.recv().expect("the SYN-ACK once accepted");
    assert_eq!((synack.flags, synack.ack, synack.src), (SYN | ACK, PEER_ISS + 1, to));
    h.send(Seg::new(ACK, PEER_ISS + 1, synack.seq.wrapping_add(1)).to(to));
    let (c, _) = h.stack.accept(h.listener.unwrap()).expect("established");
    assert_eq!(h.stack.local_addr(c).unwrap(), to);
    // The decision is made once.
    assert_eq!(h.stack.accept_syn(h.now, quad_to(to)).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn refused_syn_gets_rst_ack_like_a_closed_port() {
    let (mut h, to) = gated();
    h.send(Seg::new(SYN, PEER_ISS, 0).to(to));
    h.expect_nothing();
    h.stack.refuse_syn(quad_to(to)).unwrap();
    let rst = h.expect_to(remote_addr(), RST | ACK, 0, PEER_ISS + 1);
    assert_eq!(rst.src, to);
    assert_eq!(h.stack.poll_held_syn(h.listener.unwrap()), None);
}

#[test]
fn held_syns_are_bounded_by_the_backlog_and_reset_when_the_listener_closes() {
    let mut h = H::new(base_config());
    let l = h.stack.listen_any(AnyIpFilter::all(), 4).unwrap();
    h.stack.set_handshake_gate(l, true).unwrap();
    for i in 0..10u16 {
        let from = SocketAddr::from(([10, 0, 0, 2], 40000 + i));
        h.send(Seg::new(SYN, PEER_ISS, 0).from(from).to(dst([10, 99, 0, 1], 80)));
    }
    h.expect_nothing();
    assert_eq!(h.stack.counters().dropped(DropReason::ListenOverflow), 6);
    h.stack.close_listener(l);
    let rsts = h.drain();
    assert_eq!(rsts.len(), 4);
    assert!(rsts.iter().all(|o| o.flags == RST | ACK && o.ack == PEER_ISS + 1));
}

/// A SYN that reopens a quad in TIME-WAIT (RFC 6191) is gated like any other: held,
/// unanswered, until the application decides, and then answered with an ISS above the
/// old incarnation's. It used to bypass the gate: `utcp forward` (whose clients close
/// second, leaving TIME-WAIT with utcp) completed the handshake of a client whose
/// ephemeral port came round again, found no upstream for it and reset it.
#[test]
fn gated_syn_reopening_a_time_wait_quad_is_held_too() {
    let (mut h, to) = gated();
    let l = h.listener.unwrap();
    h.send(Seg::new(SYN, PEER_ISS, 0).to(to));
    h.expect_nothing();
    assert_eq!(h.stack.poll_held_syn(l), Some(quad_to(to)));
    h.stack.accept_syn(h.now, quad_to(to)).unwrap();
    let iss = h.recv().expect("the SYN-ACK once accepted").seq;
    h.send(Seg::new(ACK, PEER_ISS + 1, iss.wrapping_add(1)).to(to));
    let (c, _) = h.stack.accept(l).expect("established");
    // We close first (as the gateway does when the upstream closes): TIME-WAIT.
    h.stack.close(c);
    h.expect_to(remote_addr(), FIN | ACK, iss.wrapping_add(1), PEER_ISS + 1);
    h.send(Seg::new(FIN | ACK, PEER_ISS + 1, iss.wrapping_add(2)).to(to));
    h.expect_to(remote_addr(), ACK, iss.wrapping_add(2), PEER_ISS + 2);
    assert!(h.stack.connections().any(|(_, s)| s == State::TimeWait));
    let _ = h.events();
    // The same port again, with a SYN above RCV.NXT: held, reported, not answered.
    h.advance(Duration::from_secs(1));
    let new_iss = PEER_ISS + 500_000;
    h.send(Seg::new(SYN, new_iss, 0).to(to));
    h.expect_nothing();
    assert!(h.events().contains(&Event::SynArrived(l)));
    h.send(Seg::new(SYN, new_iss, 0).to(to));
    h.expect_nothing();
    assert_eq!(
        h.stack.accept(l).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "no handshake without a decision"
    );
    assert_eq!(h.stack.poll_held_syn(l), Some(quad_to(to)));
    h.stack.accept_syn(h.now, quad_to(to)).unwrap();
    let synack = h.recv().expect("the SYN-ACK once accepted");
    assert_eq!((synack.flags, synack.ack, synack.src), (SYN | ACK, new_iss + 1, to));
    assert!(synack.seq.wrapping_sub(iss) as i32 > (1 << 17), "ISS above the old SND.MAX: {synack}");
    h.send(Seg::new(ACK, new_iss + 1, synack.seq.wrapping_add(1)).to(to));
    assert!(h.stack.accept(l).is_ok(), "established once accepted");
}

/// A SYN retransmitted while its first copy's SYN-cookie handshake is in flight is held
/// again (a cookie leaves no state to absorb it). If the cookie handshake completes
/// first, deciding that second held SYN must not replace the established connection
/// with a new SYN-RECEIVED one (it did: the connection the application had accepted got
/// no more segments, and the peer saw a second SYN-ACK).
#[test]
fn accepting_a_stale_held_syn_keeps_the_connection_its_cookie_made() {
    let mut h = H::new(base_config().with_syn_queue_len(1));
    let f = AnyIpFilter::all().prefix("10.99.0.0".parse().unwrap(), 24);
    let l = h.stack.listen_any(f, 0).unwrap();
    h.stack.set_handshake_gate(l, true).unwrap();
    let to = dst([10, 99, 0, 1], 8080);
    let x = SocketAddr::from(([10, 0, 0, 2], 41000));
    // X fills the SYN queue (one entry).
    h.send(Seg::new(SYN, PEER_ISS, 0).from(x).to(to));
    h.stack.accept_syn(h.now, Quad { local: to, remote: x }).unwrap();
    let x_iss = h.recv().expect("X's SYN-ACK").seq;
    // Y is accepted by the application, answered with a cookie (the queue is full) ...
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(1460).to(to));
    h.stack.accept_syn(h.now, quad_to(to)).unwrap();
    let cookie = h.recv().expect("Y's SYN-ACK (a cookie)");
    assert_eq!(h.stack.counters().syncookies_sent, 1);
    // ... Y's SYN comes again before the SYN-ACK reached it: held again.
    let _ = h.events();
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(1460).to(to));
    h.expect_nothing();
    assert!(h.events().contains(&Event::SynArrived(l)));
    // X completes (the queue empties) and Y's cookie ACK makes Y's connection.
    h.send(Seg::new(ACK, PEER_ISS + 1, x_iss.wrapping_add(1)).from(x).to(to));
    h.send(Seg::new(ACK, PEER_ISS + 1, cookie.seq.wrapping_add(1)).to(to));
    let (c1, _) = h.stack.accept(l).unwrap();
    let (c2, _) = h.stack.accept(l).unwrap();
    let y = if h.stack.peer_addr(c1).unwrap() == remote_addr() { c1 } else { c2 };
    // The application decides the second held SYN: nothing goes out, Y stands.
    h.stack.accept_syn(h.now, quad_to(to)).unwrap();
    h.expect_nothing();
    h.send(Seg::new(ACK | PSH, PEER_ISS + 1, cookie.seq.wrapping_add(1)).data(b"hi").to(to));
    h.expect_to(remote_addr(), ACK, cookie.seq.wrapping_add(1), PEER_ISS + 3);
    let mut buf = [0u8; 4];
    assert_eq!(h.stack.recv(y, &mut buf).unwrap(), 2, "Y's data reaches the accepted connection");
    assert_eq!(h.stack.counters().dropped(DropReason::Ignored), 1, "the stale SYN, counted");
}

/// Accepting a held SYN while the listener's accept queue is full: admission drops the
/// SYN as for any SYN (counted `ListenOverflow`), and `accept_syn` says so with
/// `WouldBlock` instead of `Ok`, so that the caller releases what it prepared (`utcp
/// forward` closes its upstream connection at once instead of when the retransmitted
/// SYN's new task replaces the old one). Nothing is sent; the retransmitted SYN is held
/// again.
#[test]
fn accepting_a_held_syn_with_the_accept_queue_full_is_would_block() {
    let mut h = H::new(base_config());
    let l = h.stack.listen_any(AnyIpFilter::all(), 1).unwrap();
    h.listener = Some(l);
    h.stack.set_handshake_gate(l, true).unwrap();
    let to = dst([10, 99, 0, 1], 8080);
    // A first connection completes and waits in the accept queue (backlog 1).
    let first = SocketAddr::from(([10, 0, 0, 2], 40001));
    h.send(Seg::new(SYN, PEER_ISS, 0).from(first).to(to));
    h.stack.accept_syn(h.now, Quad { local: to, remote: first }).unwrap();
    let synack = h.recv().expect("SYN-ACK");
    h.send(Seg::new(ACK, PEER_ISS + 1, synack.seq.wrapping_add(1)).from(first).to(to));
    assert_eq!(h.stack.accept_queue_len(l), 1);
    // A second SYN is held; accepting it finds the accept queue full.
    let second = SocketAddr::from(([10, 0, 0, 2], 40002));
    h.send(Seg::new(SYN, PEER_ISS, 0).from(second).to(to));
    let before = h.stack.counters().dropped(DropReason::ListenOverflow);
    let e = h.stack.accept_syn(h.now, Quad { local: to, remote: second }).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert_eq!(h.stack.counters().dropped(DropReason::ListenOverflow), before + 1);
    h.expect_nothing();
    // The peer's retransmission is held again, for a later decision.
    h.send(Seg::new(SYN, PEER_ISS, 0).from(second).to(to));
    assert_eq!(h.stack.poll_held_syn(l), Some(Quad { local: to, remote: second }));
}
