//! The state machine as a whole (RFC 9293 §3.3.2 figure 5): every one of the 11 states is
//! reached, every observed transition is an edge of figure 5, and sequence numbers wrap
//! correctly (§3.4: arithmetic modulo 2^32) for both our ISS and the peer's.

mod common;
use common::*;
use std::collections::HashSet;
use utcp_engine::Quad;
use utcp_engine::isn::initial_sequence_number;

/// The edges of RFC 9293 figure 5 (plus the RST/timeout edges of §3.10.7 and §3.10.8 into
/// CLOSED, and SYN-RECEIVED → CLOSED for a passive open reset back to LISTEN, whose TCB is
/// deleted).
fn legal(from: State, to: State) -> bool {
    use State::*;
    matches!(
        (from, to),
        (Closed, SynSent)
            | (Listen, SynReceived)
            | (SynSent, SynReceived)
            | (SynSent, Established)
            | (SynSent, Closed)
            | (SynReceived, Established)
            | (SynReceived, FinWait1)
            | (SynReceived, CloseWait)
            | (SynReceived, Closed)
            | (Established, FinWait1)
            | (Established, CloseWait)
            | (Established, Closed)
            | (FinWait1, FinWait2)
            | (FinWait1, Closing)
            | (FinWait1, TimeWait)
            | (FinWait1, Closed)
            | (FinWait2, TimeWait)
            | (FinWait2, Closed)
            | (CloseWait, LastAck)
            | (CloseWait, Closed)
            | (Closing, TimeWait)
            | (Closing, Closed)
            | (LastAck, Closed)
            | (TimeWait, Closed)
    )
}

/// Runs three scenarios on one stack and checks the transitions of each.
#[test]
fn all_eleven_states_are_reached_through_legal_transitions() {
    let mut seen: HashSet<State> = HashSet::new();
    let mut record = |h: &mut H, expect: &[(State, State)]| {
        let got = h.state_changes();
        for &(f, t) in &got {
            assert!(legal(f, t), "illegal transition {f} -> {t}");
            seen.insert(f);
            seen.insert(t);
        }
        assert_eq!(got, expect);
    };
    use State::*;

    // 1. Passive open, remote closes first: LISTEN, SYN-RECEIVED, ESTABLISHED, CLOSE-WAIT,
    //    LAST-ACK, CLOSED.
    let mut h = H::new(base_config());
    h.establish_passive_keep_events(mss_opts(MSS));
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    let c = h.c();
    h.stack.close(c);
    h.expect(FIN | ACK, h.our(0), h.peer(1));
    h.send(Seg::new(ACK, h.peer(1), h.our(1)));
    record(
        &mut h,
        &[
            (Listen, SynReceived),
            (SynReceived, Established),
            (Established, CloseWait),
            (CloseWait, LastAck),
            (LastAck, Closed),
        ],
    );

    // 2. Active open, simultaneous close: CLOSED, SYN-SENT, ESTABLISHED, FIN-WAIT-1, CLOSING,
    //    TIME-WAIT, CLOSED.
    let mut h = H::new(base_config());
    let c = h.stack.connect(h.now, local_addr(), remote_addr()).unwrap();
    h.conn = Some(c);
    h.iss = h.recv().unwrap().seq;
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)));
    h.expect(ACK, h.our(0), h.peer(0));
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(1), h.peer(1));
    h.send(Seg::new(ACK, h.peer(1), h.our(1)));
    let msl = h.stack.config().msl;
    h.advance(msl * 2);
    record(
        &mut h,
        &[
            (Closed, SynSent),
            (SynSent, Established),
            (Established, FinWait1),
            (FinWait1, Closing),
            (Closing, TimeWait),
            (TimeWait, Closed),
        ],
    );

    // 3. Active close through FIN-WAIT-2.
    let mut h = H::new(base_config());
    h.establish_passive_keep_events(mss_opts(MSS));
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    h.send(Seg::new(ACK, h.peer(0), h.our(1)));
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(1)));
    h.expect(ACK, h.our(1), h.peer(1));
    record(
        &mut h,
        &[
            (Listen, SynReceived),
            (SynReceived, Established),
            (Established, FinWait1),
            (FinWait1, FinWait2),
            (FinWait2, TimeWait),
        ],
    );

    let all: HashSet<State> = State::ALL.into_iter().collect();
    let missing: Vec<_> = all.difference(&seen).collect();
    assert!(missing.is_empty(), "states never reached: {missing:?}");
}

/// RFC 9293 §3.10.7.3 simultaneous open: SYN-SENT → SYN-RECEIVED → ESTABLISHED is traced.
#[test]
fn simultaneous_open_transitions() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN, PEER_ISS, 0));
    h.expect(SYN | ACK, h.iss, h.peer(0));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    use State::*;
    assert_eq!(h.state_changes(), [(Closed, SynSent), (SynSent, SynReceived), (SynReceived, Established)]);
}

/// RFC 9293 §3.10.4 CLOSE in SYN-RECEIVED: "If no SENDs have been issued and there is no
/// pending data to send, then form a FIN segment and send it, and enter FIN-WAIT-1 state".
#[test]
fn close_in_syn_received_sends_fin() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    h.send(Seg::new(SYN, PEER_ISS, 0));
    h.expect(SYN | ACK, h.iss, h.peer(0));
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    assert_eq!(h.state(), Some(State::FinWait1));
    // The FIN goes out once the handshake completes (our SYN must be acknowledged first).
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    h.expect(FIN | ACK, h.our(0), h.peer(0));
}

/// The ISS for `quad` at time `now` under `cfg`'s secret.
fn iss_at(cfg: &Config, now: Instant) -> u32 {
    let quad = Quad { local: local_addr(), remote: remote_addr() };
    initial_sequence_number(&cfg.isn_secret, &quad, now).0
}

/// A virtual time at which our ISS for the default quad is `target` (RFC 6528: ISN = M + F,
/// M ticking every 4 µs, so the clock can be chosen to land the ISN anywhere).
fn time_for_iss(cfg: &Config, target: u32) -> Instant {
    let f = iss_at(cfg, Instant::ZERO);
    let ticks = target.wrapping_sub(f) as u64;
    let t = Instant::from_micros(ticks * 4);
    assert_eq!(iss_at(cfg, t), target);
    t
}

/// RFC 9293 §3.4: sequence numbers wrap modulo 2^32. Our ISS is 500 below 2^32: data sent
/// across the wrap is numbered, acknowledged, retransmitted and closed correctly.
#[test]
fn our_sequence_numbers_wrap() {
    let cfg = base_config();
    let target = u32::MAX - 499;
    let start = time_for_iss(&cfg, target);
    let mut h = H::new(cfg);
    h.now = start;
    h.establish_active(mss_opts(1000));
    assert_eq!(h.iss, target);
    h.write(&payload(3000));
    let a = h.expect(ACK, h.our(0), h.peer(0)).len(1000);
    let b = h.expect(ACK, h.our(1000), h.peer(0)).len(1000);
    let c3 = h.expect(ACK | PSH, h.our(2000), h.peer(0)).len(1000);
    assert!(a.seq > b.seq, "the second segment starts after the wrap");
    assert_eq!(b.seq, 501, "ISS + 1 + 1000 mod 2^32");
    assert_eq!([a.payload, b.payload, c3.payload].concat(), payload(3000));
    // ACK across the wrap.
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    assert_eq!(h.stack.status(h.c()).unwrap().bytes_in_flight, 2000);
    // Retransmission after the wrap.
    h.fire_timer();
    h.expect(ACK, h.our(1000), h.peer(0)).len(1000);
    h.send(Seg::new(ACK, h.peer(0), h.our(3000)));
    assert_eq!(h.stack.status(h.c()).unwrap().bytes_in_flight, 0);
    // An ACK from before the wrap is old (not "ahead"): no RST, no state change.
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    h.expect_nothing();
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(3000), h.peer(0));
    h.send(Seg::new(ACK, h.peer(0), h.our(3001)));
    assert_eq!(h.state(), Some(State::FinWait2));
}

/// RFC 9293 §3.4: the peer's sequence numbers wrap: its ISS is 300 below 2^32, and data
/// across the wrap (including out-of-order data after it) is reassembled in order.
#[test]
fn peer_sequence_numbers_wrap() {
    let mut h = H::new(base_config());
    let irs = u32::MAX - 299;
    h.irs = irs;
    h.listen();
    h.send(Seg::new(SYN, irs, 0).mss(MSS));
    let synack = h.recv().unwrap();
    assert_eq!((synack.flags, synack.ack), (SYN | ACK, irs.wrapping_add(1)));
    h.iss = synack.seq;
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    let data = payload(1000);
    // Bytes 500..1000 (after the wrap) first, then 0..500 (straddling it).
    h.send(Seg::new(ACK, h.peer(500), h.our(0)).data(&data[500..]));
    h.expect(ACK, h.our(0), h.peer(0));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(&data[..500]));
    let o = h.expect(ACK, h.our(0), h.peer(1000));
    assert_eq!(o.ack, 701);
    assert_eq!(h.read_all(), data);
    // A RST exactly at RCV.NXT after the wrap is accepted (RFC 5961 §3.2).
    h.send(Seg::new(RST, h.peer(1000), 0));
    assert_eq!(h.state(), Some(State::Closed));
}

/// RFC 9293 §3.4: an out-of-window segment just below RCV.NXT across the wrap is treated as
/// old (ACK sent), not as far in the future.
#[test]
fn old_segment_across_wrap_draws_ack() {
    let mut h = H::new(base_config());
    let irs = u32::MAX - 9;
    h.irs = irs;
    h.listen();
    h.send(Seg::new(SYN, irs, 0).mss(MSS));
    h.iss = h.recv().unwrap().seq;
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(100)));
    h.expect(ACK, h.our(0), h.peer(100));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(20)));
    h.expect(ACK, h.our(0), h.peer(100));
    assert_eq!(h.read_all(), payload(100));
}

/// RFC 9293 §3.4.1 / RFC 6528 §3: ISN = M + F(4-tuple, secret) where M "is a 4 microsecond
/// timer": for the same socket pair the ISN advances by 250000 per second, and a different
/// socket pair gets an unrelated offset.
#[test]
fn isn_clock_and_per_quad_offset() {
    let mut h = H::new(base_config());
    let iss1 = h.open_to_syn_sent().seq;
    let c = h.c();
    h.stack.abort(c);
    h.advance(Duration::from_secs(1));
    let iss2 = h.open_to_syn_sent().seq;
    assert_eq!(iss2.wrapping_sub(iss1), 250_000);
    let other = SocketAddr::new(IpAddr::V4(REMOTE_IP), REMOTE_PORT + 1);
    h.stack.connect(h.now, local_addr(), other).unwrap();
    let iss3 = h.recv().unwrap().seq;
    assert_ne!(iss3, iss2, "F depends on the socket pair");
}

/// A connection driven into `state` (passive open, base config), with the SND.NXT and
/// RCV.NXT it has there.
fn in_state(state: State) -> (H, u32, u32) {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    let c = h.c();
    let (p0, p1, o0, o1) = (h.peer(0), h.peer(1), h.our(0), h.our(1));
    let fin = |h: &mut H| {
        h.stack.shutdown(c, Shutdown::Write).unwrap();
        let o = h.recv().expect("FIN");
        assert!(o.flags.fin(), "{o}");
    };
    let (snd, rcv) = match state {
        State::Established => (o0, p0),
        State::FinWait1 => {
            fin(&mut h);
            (o1, p0)
        }
        State::FinWait2 => {
            fin(&mut h);
            h.send(Seg::new(ACK, p0, o1));
            (o1, p0)
        }
        State::CloseWait => {
            h.send(Seg::new(FIN | ACK, p0, o0));
            h.drain();
            (o0, p1)
        }
        State::Closing => {
            fin(&mut h);
            h.send(Seg::new(FIN | ACK, p0, o0));
            h.drain();
            (o1, p1)
        }
        State::LastAck => {
            h.send(Seg::new(FIN | ACK, p0, o0));
            h.drain();
            fin(&mut h);
            (o1, p1)
        }
        State::TimeWait => {
            fin(&mut h);
            h.send(Seg::new(FIN | ACK, p0, o1));
            h.drain();
            (o1, p1)
        }
        other => panic!("not a synchronized state: {other}"),
    };
    assert_eq!(h.state(), Some(state));
    h.expect_nothing();
    h.events();
    (h, snd, rcv)
}

const SYNCHRONIZED: [State; 7] = [
    State::Established,
    State::FinWait1,
    State::FinWait2,
    State::CloseWait,
    State::Closing,
    State::LastAck,
    State::TimeWait,
];

/// RFC 9293 §3.10.7.4 first check, in every synchronized state: an unacceptable segment
/// draws <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and is dropped.
#[test]
fn every_synchronized_state_acks_unacceptable_segment() {
    for st in SYNCHRONIZED {
        let (mut h, snd, rcv) = in_state(st);
        h.send(Seg::new(ACK, rcv.wrapping_add(WIN as u32 + 100), snd).data(b"far"));
        let o = h.recv().unwrap_or_else(|| panic!("{st}: no ACK"));
        assert_eq!((o.flags, o.seq, o.ack), (ACK, snd, rcv), "{st}: {o}");
        h.expect_nothing();
        assert_eq!(h.state(), Some(st));
    }
}

/// RFC 5961 §3.2 in every synchronized state: an in-window RST that is not exactly at
/// RCV.NXT draws a challenge ACK and changes nothing.
#[test]
fn every_synchronized_state_challenges_inexact_rst() {
    for st in SYNCHRONIZED {
        let (mut h, snd, rcv) = in_state(st);
        h.send(Seg::new(RST, rcv.wrapping_add(10), 0));
        let o = h.recv().unwrap_or_else(|| panic!("{st}: no challenge ACK"));
        assert_eq!((o.flags, o.seq, o.ack), (ACK, snd, rcv), "{st}: {o}");
        h.expect_nothing();
        assert_eq!(h.state(), Some(st));
    }
}

/// RFC 9293 §3.10.7.4 second check with RFC 5961 §3.2, in every synchronized state: a RST
/// exactly at RCV.NXT closes the connection and deletes the TCB, sending nothing.
#[test]
fn every_synchronized_state_closes_on_exact_rst() {
    for st in SYNCHRONIZED {
        let (mut h, _, rcv) = in_state(st);
        h.send(Seg::new(RST, rcv, 0));
        h.expect_nothing();
        assert_eq!(h.state(), Some(State::Closed), "{st}");
        assert_eq!(h.stack.connection_count(), 0, "{st}");
    }
}

/// RFC 5961 §4.2 in every synchronized state: a SYN draws a challenge ACK and changes
/// nothing.
#[test]
fn every_synchronized_state_challenges_syn() {
    for st in SYNCHRONIZED {
        let (mut h, snd, rcv) = in_state(st);
        // At RCV.NXT: a SYN above it may legitimately reopen TIME-WAIT (RFC 1122 §4.2.2.13).
        h.send(Seg::new(SYN, rcv, 0));
        let o = h.recv().unwrap_or_else(|| panic!("{st}: no challenge ACK"));
        assert_eq!((o.flags, o.seq, o.ack), (ACK, snd, rcv), "{st}: {o}");
        h.expect_nothing();
        assert_eq!(h.state(), Some(st));
    }
}

/// RFC 9293 §3.10.7.4 fifth check in every synchronized state: "If the ACK acks something not
/// yet sent (SEG.ACK > SND.NXT), then send an ACK, drop the segment, and return."
#[test]
fn every_synchronized_state_acks_ack_of_unsent_data() {
    for st in SYNCHRONIZED {
        let (mut h, snd, rcv) = in_state(st);
        h.send(Seg::new(ACK, rcv, snd.wrapping_add(100)));
        let o = h.recv().unwrap_or_else(|| panic!("{st}: no ACK"));
        assert_eq!((o.flags, o.seq, o.ack), (ACK, snd, rcv), "{st}: {o}");
        h.expect_nothing();
        assert_eq!(h.state(), Some(st));
    }
}

/// RFC 9293 §3.10.7.4 fifth check in every synchronized state: "if the ACK bit is off, drop
/// the segment and return" — and a pure duplicate ACK is not answered (no ACK for an ACK).
#[test]
fn every_synchronized_state_drops_segment_without_ack() {
    for st in SYNCHRONIZED {
        let (mut h, snd, rcv) = in_state(st);
        // SND.UNA: our FIN is still unacknowledged in FIN-WAIT-1, CLOSING and LAST-ACK.
        let fin_outstanding = matches!(st, State::FinWait1 | State::Closing | State::LastAck);
        let una = if fin_outstanding { snd.wrapping_sub(1) } else { snd };
        h.send(Seg::new(NONE, rcv, 0));
        h.send(Seg::new(ACK, rcv, una));
        h.expect_nothing();
        assert_eq!(h.state(), Some(st), "{st}");
    }
}

/// RFC 9293 §3.10.7.4 seventh check per state: ESTABLISHED, FIN-WAIT-1 and FIN-WAIT-2
/// deliver and acknowledge text; CLOSE-WAIT, CLOSING, LAST-ACK and TIME-WAIT "Ignore the
/// segment text" (the peer already sent its FIN).
#[test]
fn text_is_taken_only_before_the_peers_fin() {
    for st in SYNCHRONIZED {
        let (mut h, snd, rcv) = in_state(st);
        let fin_outstanding = matches!(st, State::FinWait1 | State::Closing | State::LastAck);
        let una = if fin_outstanding { snd.wrapping_sub(1) } else { snd };
        h.send(Seg::new(ACK | PSH, rcv, una).data(b"text"));
        let takes_text = matches!(st, State::Established | State::FinWait1 | State::FinWait2);
        if takes_text {
            h.expect(ACK, snd, rcv.wrapping_add(4));
            assert_eq!(h.read_all(), b"text", "{st}");
        } else {
            for o in h.drain() {
                assert_eq!((o.flags, o.ack), (ACK, rcv), "{st}: text must not be acknowledged: {o}");
            }
            assert_eq!(h.stack.status(h.c()).unwrap().rcv_nxt, rcv, "{st}");
        }
        assert_eq!(h.state(), Some(st), "{st}");
    }
}
