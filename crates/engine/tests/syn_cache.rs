//! The SYN cache (RFC 4987 §3.3): half-open connections are compact records, their
//! SYN-ACKs and retransmissions are written from the record, and the TCB is built when
//! another segment arrives. Each scenario runs twice, with records and with the former
//! SYN-RECEIVED TCBs (`Config::trace_states` keeps TCBs), and the segments on the wire,
//! their times and the counters must be the same.
mod common;
use common::*;

/// Linux-like options on, records unless `tcbs`.
fn cfg(tcbs: bool) -> Config {
    let mut c = base_config();
    c.window_scale = true;
    c.sack = true;
    c.timestamps = true;
    c.trace_states = tcbs;
    c
}

fn syn_opts() -> TcpOptions {
    TcpOptions {
        mss: Some(1400),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((5000, 0)),
        ..TcpOptions::default()
    }
}

/// The next segment must be a SYN-ACK for `irs`.
#[track_caller]
fn synack(h: &mut H, irs: u32) -> Out {
    let o = h.recv().expect("a SYN-ACK");
    assert_eq!((o.flags, o.ack), (SYN | ACK, irs.wrapping_add(1)), "{o}");
    o
}

/// (time since start in ms, segment) for everything sent.
type Trace = Vec<(u64, Out)>;

fn collect(h: &mut H, t0: Instant, trace: &mut Trace) {
    for o in h.drain() {
        trace.push(((h.now - t0).as_millis() as u64, o));
    }
}

/// SYN, then `rexmits` SYN-ACK timeouts, then the final ACK and data both ways.
fn handshake_after_rexmits(tcbs: bool, rexmits: usize) -> (Trace, (u64, u64, u64), usize) {
    let mut h = H::new(cfg(tcbs));
    let l = h.listen();
    let t0 = h.now;
    let mut trace = Trace::new();
    h.send(Seg::new(SYN, PEER_ISS, 0).opts(syn_opts()));
    collect(&mut h, t0, &mut trace);
    let half_open = h.stack.connection_count();
    for _ in 0..rexmits {
        h.fire_timer();
        collect(&mut h, t0, &mut trace);
    }
    let synack = trace.last().expect("a SYN-ACK").1.clone();
    h.iss = synack.seq;
    let (tsval, _) = synack.options.timestamps.expect("timestamps");
    h.advance(Duration::from_millis(30));
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).ts(5001, tsval).win(1000).data(b"hi"));
    collect(&mut h, t0, &mut trace);
    let (c, _) = h.stack.accept(l).expect("established");
    h.conn = Some(c);
    assert_eq!(h.stack.state(c), Some(State::Established));
    assert_eq!(h.read_all(), b"hi");
    h.write(b"there");
    collect(&mut h, t0, &mut trace);
    // Lose our data once: the RTO after the handshake shows the RTT state carried over.
    h.fire_timer();
    collect(&mut h, t0, &mut trace);
    let k = h.stack.counters();
    (trace, (k.retrans_segs, k.timeouts, k.out_segs), half_open)
}

/// RFC 9293 §3.8.1 / RFC 6298 §5.5: the record retransmits the SYN-ACK with backoff, and
/// the connection it becomes is the one the TCB would have been (RTT state included).
#[test]
fn synack_retransmissions_from_the_record_match_the_tcb() {
    for rexmits in [0, 1, 3] {
        let (records, rc, n) = handshake_after_rexmits(false, rexmits);
        let (tcbs, tc, _) = handshake_after_rexmits(true, rexmits);
        assert_eq!(n, 1, "the record counts as a connection");
        assert_eq!(records, tcbs, "segments and times with {rexmits} SYN-ACK retransmissions");
        assert_eq!(rc, tc, "retransmissions, timeouts and segments counted alike");
        let synacks: Vec<u64> =
            records.iter().filter(|(_, o)| o.flags == SYN | ACK).map(|(t, _)| *t).collect();
        assert_eq!(synacks, [0, 1000, 3000, 7000][..=rexmits], "RTO 1 s, doubling");
    }
}

/// R2 (RFC 1122 §4.2.3.5, `Config::syn_retries`): after the last retransmission the
/// record is dropped, counted, and nothing more is sent.
#[test]
fn record_gives_up_after_syn_retries() {
    for tcbs in [false, true] {
        let mut c = cfg(tcbs);
        c.syn_retries = 2;
        let mut h = H::new(c);
        let l = h.listen();
        h.send(Seg::new(SYN, PEER_ISS, 0).opts(syn_opts()));
        let first = synack(&mut h, PEER_ISS);
        for _ in 0..2 {
            h.fire_timer();
            let again = synack(&mut h, PEER_ISS);
            assert_eq!(
                (again.seq, again.window, again.options.mss),
                (first.seq, first.window, first.options.mss)
            );
        }
        h.fire_timer();
        h.expect_nothing();
        assert_eq!(h.next_timer(), None, "tcbs={tcbs}");
        assert_eq!(h.stack.connection_count(), 0);
        assert_eq!(h.stack.counters().attempt_fails, 1);
        assert_eq!(h.stack.counters().retrans_segs, 2);
        // The SYN queue slot is free again: a new SYN gets a record/TCB, not a cookie.
        h.send(Seg::new(SYN, PEER_ISS + 9, 0).from(SocketAddr::new(IpAddr::V4(REMOTE_IP), 40001)));
        synack(&mut h, PEER_ISS + 9);
        assert_eq!(h.stack.counters().syncookies_sent, 0);
        assert_eq!(h.stack.accept_queue_len(l), 0);
    }
}

/// A RST for a half-open record removes it (RFC 9293 §3.10.7.4, SYN-RECEIVED passive:
/// return to LISTEN) and frees its SYN queue slot.
#[test]
fn rst_removes_the_record() {
    let mut h = H::new(cfg(false));
    h.listen();
    h.send(Seg::new(SYN, PEER_ISS, 0).opts(syn_opts()));
    let sa = synack(&mut h, PEER_ISS);
    assert_eq!(
        h.stack.connections().collect::<Vec<_>>(),
        [(Quad { local: local_addr(), remote: remote_addr() }, State::SynReceived)]
    );
    h.send(Seg::new(RST, PEER_ISS + 1, 0));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0, "SYN-ACK {sa}");
    assert_eq!(h.next_timer(), None);
}

/// Closing the listener resets its half-open connections, records or TCBs alike.
#[test]
fn closing_the_listener_resets_records() {
    let mut outs = Vec::new();
    for tcbs in [false, true] {
        let mut h = H::new(cfg(tcbs));
        let l = h.listen();
        h.send(Seg::new(SYN, PEER_ISS, 0).opts(syn_opts()));
        let sa = synack(&mut h, PEER_ISS);
        h.stack.close_listener(l);
        let rst = h.expect(RST | ACK, sa.seq.wrapping_add(1), PEER_ISS + 1);
        h.expect_nothing();
        assert_eq!(h.stack.connection_count(), 0);
        outs.push((sa, rst));
    }
    assert_eq!(outs[0], outs[1]);
}
