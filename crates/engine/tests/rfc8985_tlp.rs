//! Tail loss probe (RFC 8985 §7) on virtual time.

mod common;
use common::*;

const SMSS: u32 = 1460;

fn sender(tlp: bool) -> H {
    let cfg = base_config().with_sack(true).with_tail_loss_probe(tlp);
    let mut h = H::new(cfg);
    h.establish_passive(TcpOptions { sack_permitted: true, ..mss_opts(MSS) });
    h
}

/// Four segments; the ACK of the first two arrives after 5 ms, the last two are lost.
/// (The handshake's RTT sample in this harness is 0, so SRTT stays tiny and the PTO is
/// its 10 ms floor.)
fn tail_loss(h: &mut H) {
    h.write(&payload(4 * SMSS as usize));
    for i in 0..4 {
        h.expect(if i == 3 { ACK | PSH } else { ACK }, h.our(i * SMSS), h.peer(0));
    }
    h.advance(Duration::from_millis(5));
    h.send(Seg::new(ACK, h.peer(0), h.our(2 * SMSS)));
    h.expect_nothing();
}

#[test]
fn probe_retransmits_the_last_segment_before_the_rto() {
    let mut h = sender(true);
    tail_loss(&mut h);
    // PTO = max(2*SRTT, 10 ms) (two segments in flight, so no delayed-ACK allowance),
    // armed by the ACK, well before the RTO.
    let waited = h.fire_timer();
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!(waited, Duration::from_micros(2 * st.srtt_us).max(Duration::from_millis(10)));
    assert!(waited < Duration::from_micros(st.rto_us));
    // §7.3: no new data to send, so the probe is the highest sent segment.
    let o = h.expect(ACK | PSH, h.our(3 * SMSS), h.peer(0));
    assert_eq!(o.payload.len(), SMSS as usize);
    h.expect_nothing();
    assert_eq!(h.stack.counters().tlp_probes, 1);
    // Its ACK SACKs the probe: one probe per tail, the rest waits for the RTO.
    h.send(Seg::new(ACK, h.peer(0), h.our(2 * SMSS)).sack(&[(h.our(3 * SMSS), h.our(4 * SMSS))]));
    h.expect_nothing();
    h.fire_timer();
    h.expect(ACK, h.our(2 * SMSS), h.peer(0));
    assert_eq!(h.stack.counters().tlp_probes, 1);
}

#[test]
fn probe_sends_new_data_beyond_cwnd_when_the_window_allows() {
    let mut h = sender(true);
    h.write(&payload(20 * SMSS as usize));
    for i in 0..10 {
        h.expect(ACK, h.our(i * SMSS), h.peer(0));
    }
    h.advance(Duration::from_millis(5));
    // Slow start: cwnd 11 segments, 8 in flight: three more leave, then cwnd is full.
    h.send(Seg::new(ACK, h.peer(0), h.our(2 * SMSS)));
    for i in 10..13 {
        h.expect(ACK, h.our(i * SMSS), h.peer(0));
    }
    h.expect_nothing();
    // §7.3: the probe is new data (the peer's window allows it), one segment.
    h.fire_timer();
    let o = h.expect(ACK, h.our(13 * SMSS), h.peer(0));
    assert_eq!(o.payload.len(), SMSS as usize);
    h.expect_nothing();
    assert_eq!(h.stack.counters().tlp_probes, 1);
}

#[test]
fn without_tlp_the_rto_retransmits_snd_una() {
    let mut h = sender(false);
    tail_loss(&mut h);
    let waited = h.fire_timer();
    let st = h.stack.status(h.c()).unwrap();
    assert!(waited >= Duration::from_micros(st.rto_us) / 2);
    h.expect(ACK, h.our(2 * SMSS), h.peer(0));
    assert_eq!(h.stack.counters().tlp_probes, 0);
}

/// §7.3 "the last segment sent" is our FIN alone (the data was acknowledged): the probe
/// resends the FIN after the PTO instead of leaving it to the RTO.
#[test]
fn a_lost_fin_alone_is_probed_before_the_rto() {
    // One byte in flight adds the delayed-ACK allowance (200 ms) to the PTO: with the
    // RFC 6298 (2.4) minimum RTO of 1 s, the probe still comes first.
    let cfg = base_config().with_sack(true).with_tail_loss_probe(true).with_min_rto(Duration::from_secs(1));
    let mut h = H::new(cfg);
    h.establish_passive(TcpOptions { sack_permitted: true, ..mss_opts(MSS) });
    let c = h.c();
    h.write(&payload(100));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(100);
    h.advance(Duration::from_millis(5));
    h.send(Seg::new(ACK, h.peer(0), h.our(100)));
    h.stack.shutdown(c, std::net::Shutdown::Write).unwrap();
    h.expect(ACK | FIN, h.our(100), h.peer(0));
    h.expect_nothing();
    let waited = h.fire_timer();
    let st = h.stack.status(c).unwrap();
    assert!(waited < Duration::from_micros(st.rto_us), "the PTO, not the RTO: {waited:?}");
    h.expect(ACK | FIN, h.our(100), h.peer(0));
    h.expect_nothing();
    assert_eq!(h.stack.counters().tlp_probes, 1);
    h.send(Seg::new(ACK, h.peer(0), h.our(101)));
    h.expect_nothing();
    assert_eq!(h.stack.status(c).unwrap().state, State::FinWait2);
}

/// The last segment sent carried data and the FIN: the probe resends both.
#[test]
fn a_probe_of_the_last_data_segment_keeps_its_fin() {
    let mut h = sender(true);
    let c = h.c();
    h.write(&payload(4 * SMSS as usize));
    h.stack.shutdown(c, std::net::Shutdown::Write).unwrap();
    for i in 0..4 {
        h.expect(if i == 3 { ACK | PSH | FIN } else { ACK }, h.our(i * SMSS), h.peer(0));
    }
    h.advance(Duration::from_millis(5));
    h.send(Seg::new(ACK, h.peer(0), h.our(2 * SMSS)));
    h.expect_nothing();
    h.fire_timer();
    let o = h.expect(ACK | PSH | FIN, h.our(3 * SMSS), h.peer(0));
    assert_eq!(o.payload.len(), SMSS as usize);
    h.expect_nothing();
}
