//! `TxReason` (issue 14, `--explain`): each segment carries the rule that sent it, read with
//! `Stack::last_tx_reason` right after `poll_transmit`. Exact segments on virtual time.

mod common;
use common::*;
use utcp_engine::TxReason;

fn delack() -> Config {
    base_config()
        .with_delayed_ack(Some(Duration::from_millis(200)))
        .with_ack_every(2)
        .with_min_rto(Duration::from_secs(1))
}

/// The next segment (our data offset, the peer's data offset) and why it was sent.
#[track_caller]
fn expect_why(h: &mut H, flags: TcpFlags, our: u32, peer: u32, why: TxReason) {
    let (seq, ack) = (h.our(our), h.peer(peer));
    h.expect(flags, seq, ack);
    assert_eq!(h.stack.last_tx_reason(), why, "reason of [{flags} seq {seq}]");
}

#[test]
fn handshake_data_and_acks_are_explained() {
    let mut h = H::new(delack());
    h.listen();
    h.send(Seg::new(SYN, h.peer(0).wrapping_sub(1), 0).opts(mss_opts(MSS)));
    let o = h.recv().unwrap();
    assert_eq!(h.stack.last_tx_reason(), TxReason::SynAck);
    h.iss = o.seq;
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    // Delayed ACK timer (RFC 9293 §3.8.6.3).
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"small"));
    h.expect_nothing();
    h.advance(Duration::from_millis(200));
    expect_why(&mut h, ACK, 0, 5, TxReason::DelayedAck);
    // Out of order: immediate duplicate ACK; the fill: immediate ACK (RFC 5681 §4.2).
    h.send(Seg::new(ACK, h.peer(10), h.our(0)).data(b"later"));
    expect_why(&mut h, ACK, 0, 5, TxReason::OutOfOrderAck);
    h.send(Seg::new(ACK, h.peer(5), h.our(0)).data(b"fill!"));
    expect_why(&mut h, ACK, 0, 15, TxReason::HoleFilledAck);
    // New data.
    h.write(b"resp");
    expect_why(&mut h, ACK | PSH, 0, 15, TxReason::NewData);
    // RTO retransmission of it (RFC 6298 (5.4)).
    h.fire_timer();
    expect_why(&mut h, ACK | PSH, 0, 15, TxReason::RtoRetransmit);
}

#[test]
fn fast_retransmit_is_explained() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    let m = MSS as u32;
    h.write(&payload(5 * m as usize));
    for i in 0..5u32 {
        h.expect(ACK | if i == 4 { PSH } else { NONE }, h.our(i * m), h.peer(0));
        assert_eq!(h.stack.last_tx_reason(), TxReason::NewData);
    }
    for _ in 0..3 {
        h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(PEER_WIN));
    }
    let o = h.recv().expect("fast retransmit");
    assert_eq!((o.seq, h.stack.last_tx_reason()), (h.our(0), TxReason::FastRetransmit));
}

#[test]
fn challenge_ack_and_stateless_rsts_are_explained() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    // RFC 5961 §4: a SYN in a synchronized state draws a challenge ACK.
    h.send(Seg::new(SYN, h.peer(100), 0));
    expect_why(&mut h, ACK, 0, 0, TxReason::ChallengeAck);
    // RFC 9293 §3.10.7.1: a segment to no connection draws a RST.
    let other = std::net::SocketAddr::new(REMOTE_IP.into(), 40001);
    h.send(Seg::new(ACK, 5, 77).from(other).to(std::net::SocketAddr::new(LOCAL_IP.into(), 81)));
    h.expect(RST, 77, 0);
    assert_eq!(h.stack.last_tx_reason(), TxReason::NoConnectionRst);
}
