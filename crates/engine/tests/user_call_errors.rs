//! The typed errors of the user calls (RFC 9293 §3.10): each misuse returns the variant
//! that names the RFC's response, and the segments around it are the exact ones expected.

mod common;
use common::*;
use utcp_engine::{ConnectError, ListenError, RecvError, SendError};

/// §3.10.2 SEND in FIN-WAIT-1 (after shutdown(Write)): "Return 'error: connection
/// closing' and do not service request"; the FIN went out and nothing follows it.
#[test]
fn send_after_shutdown_write_is_closing() {
    let mut h = H::established(base_config());
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    assert_eq!(h.stack.send(c, b"late"), Err(SendError::Closing));
    assert_eq!(h.stack.send_urgent(c, b"late"), Err(SendError::Closing));
    h.expect_nothing();
}

/// §3.10.2 SEND in CLOSE-WAIT is allowed, in LAST-ACK it is "connection closing".
#[test]
fn send_in_last_ack_is_closing() {
    let mut h = H::established(base_config());
    let c = h.c();
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    assert_eq!(h.stack.send(c, b"ok"), Ok(2));
    h.expect(ACK | PSH, h.our(0), h.peer(1)).data(b"ok");
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(2), h.peer(1));
    assert_eq!(h.state(), Some(State::LastAck));
    assert_eq!(h.stack.send(c, b"no"), Err(SendError::Closing));
}

/// §3.10.2/§3.10.3 on a released handle: "error: connection does not exist".
#[test]
fn calls_on_a_released_handle_do_not_exist() {
    let mut h = H::established(base_config());
    let c = h.c();
    h.stack.abort(c);
    h.expect(RST | ACK, h.our(0), h.peer(0));
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.send(c, b"x"), Err(SendError::ConnectionDoesNotExist));
    assert_eq!(h.stack.recv(c, &mut buf), Err(RecvError::ConnectionDoesNotExist));
    assert_eq!(h.stack.peek(c, &mut buf), Err(RecvError::ConnectionDoesNotExist));
    h.expect_nothing();
}

/// §3.10.7.4: a RST in ESTABLISHED — "any outstanding RECEIVEs and SEND should receive
/// 'reset' responses". The error is reported once (SO_ERROR), then end of stream / closing.
#[test]
fn recv_and_send_after_peer_reset() {
    let mut h = H::established(base_config());
    let c = h.c();
    h.send(Seg::new(RST, h.peer(0), 0));
    assert_eq!(h.state(), Some(State::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.recv(c, &mut buf), Err(RecvError::Reset));
    assert_eq!(h.stack.recv(c, &mut buf), Ok(0));
    assert_eq!(h.stack.send(c, b"x"), Err(SendError::Closing));
    h.expect_nothing();
}

/// The reset is reported to whichever call comes first; SEND sees it as `Reset`.
#[test]
fn send_after_peer_reset_reports_reset_once() {
    let mut h = H::established(base_config());
    let c = h.c();
    h.send(Seg::new(RST, h.peer(0), 0));
    assert_eq!(h.stack.send(c, b"x"), Err(SendError::Reset));
    assert_eq!(h.stack.send(c, b"x"), Err(SendError::Closing));
    h.expect_nothing();
}

/// No data yet, and a full send buffer: `WouldBlock`, with the queued bytes on the wire.
#[test]
fn would_block_both_ways() {
    let mut h = H::established(base_config().with_send_buffer(1000));
    let c = h.c();
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.recv(c, &mut buf), Err(RecvError::WouldBlock));
    assert_eq!(h.stack.send(c, &[7u8; 1000]), Ok(1000));
    assert_eq!(h.stack.send(c, b"more"), Err(SendError::WouldBlock));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(1000);
    h.expect_nothing();
}

/// §3.8.3: R2 exhausted closes with `TimedOut`; RECEIVE then reports it.
#[test]
fn recv_after_retransmission_timeout_is_timed_out() {
    let mut h = H::established(base_config().with_data_retries(1));
    let c = h.c();
    h.write(b"lost");
    h.expect(ACK | PSH, h.our(0), h.peer(0)).data(b"lost");
    h.fire_timer();
    h.expect(ACK | PSH, h.our(0), h.peer(0)).data(b"lost");
    h.fire_timer();
    for o in h.drain() {
        assert!(o.flags.rst(), "only a RST may follow the last retransmission: {o}");
    }
    assert_eq!(h.state(), Some(State::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.recv(c, &mut buf), Err(RecvError::TimedOut));
}

/// §3.10.1 OPEN, active: an unspecified, broadcast or multicast remote is refused.
#[test]
fn connect_to_an_invalid_address() {
    let mut h = H::new(base_config());
    let local = local_addr();
    for remote in ["0.0.0.0:80", "10.0.0.2:0", "255.255.255.255:80", "224.0.0.1:80"] {
        let r = h.stack.connect(h.now, local, remote.parse().unwrap());
        assert_eq!(r, Err(ConnectError::InvalidAddress), "{remote}");
    }
    h.expect_nothing();
}

/// A local address that is not the stack's; a duplicate four-tuple ("connection already
/// exists"); no ephemeral port left.
#[test]
fn connect_address_errors() {
    let mut cfg = base_config();
    cfg.ephemeral_ports = (5000, 5000);
    let mut h = H::new(cfg);
    let foreign: SocketAddr = "10.9.9.9:1234".parse().unwrap();
    assert_eq!(h.stack.connect(h.now, foreign, remote_addr()), Err(ConnectError::AddrNotAvailable));
    h.open_to_syn_sent();
    let r = h.stack.connect(h.now, local_addr(), remote_addr());
    assert_eq!(r, Err(ConnectError::ConnectionAlreadyExists));
    let any_port = SocketAddr::new(IpAddr::V4(LOCAL_IP), 0);
    let first = h.stack.connect(h.now, any_port, remote_addr()).expect("port 5000");
    assert_eq!(h.stack.local_addr(first).unwrap().port(), 5000);
    h.expect(SYN, h.stack.status(first).unwrap().snd_una, 0);
    assert_eq!(h.stack.connect(h.now, any_port, remote_addr()), Err(ConnectError::NoFreePort));
    assert_eq!(std::io::Error::from(ConnectError::NoFreePort).kind(), ErrorKind::AddrNotAvailable);
    h.expect_nothing();
}

/// §3.10.1 OPEN, passive: a taken address, a foreign address, no ephemeral port left.
#[test]
fn listen_errors() {
    let mut cfg = base_config();
    cfg.ephemeral_ports = (5000, 5000);
    let mut h = H::new(cfg);
    h.listen();
    assert_eq!(h.stack.listen(local_addr(), 4), Err(ListenError::AddrInUse));
    let foreign: SocketAddr = "10.9.9.9:80".parse().unwrap();
    assert_eq!(h.stack.listen(foreign, 4), Err(ListenError::AddrNotAvailable));
    let any_port = SocketAddr::new(IpAddr::V4(LOCAL_IP), 0);
    let l = h.stack.listen(any_port, 4).expect("port 5000");
    assert_eq!(h.stack.listener_addr(l).unwrap().port(), 5000);
    assert_eq!(h.stack.listen(any_port, 4), Err(ListenError::NoFreePort));
    let all = utcp_engine::AnyIpFilter::all();
    h.stack.listen_any(all.clone(), 4).expect("first any-IP listener");
    assert_eq!(h.stack.listen_any(all, 4), Err(ListenError::AddrInUse));
}
