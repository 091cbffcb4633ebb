//! Issue 9, bounded memory: TIME-WAIT as a compact record (crates/engine/src/timewait.rs).
//!
//! A connection whose handle was released is parked in the TIME-WAIT table once its last ACK
//! is out. Parking must not change what goes on the wire: the same probes against a parked
//! connection and against one whose handle is still held (a full TCB) draw the same segments
//! at the same virtual times (RFC 9293 §3.10.7.4 TIME-WAIT processing, RFC 7323 PAWS,
//! RFC 2883 D-SACK, RFC 5961 §4 challenge ACK, RFC 1122 §4.2.2.13 / RFC 6191 reincarnation).

mod common;
use common::*;
use utcp_engine::timewait::TIME_WAIT_RECORD_BYTES;

const TS0: u32 = 5000;

fn cfg() -> Config {
    base_config().with_timestamps(true).with_sack(true).with_dsack(true).with_window_scale(true)
}

/// Peer opens with every option, sends 10 bytes; we read them and close first; the peer
/// ACKs our FIN and sends its own: we are in TIME-WAIT, having ACKed the FIN.
/// `release` closes the handle (the connection gets parked), otherwise shutdown(Write).
fn to_time_wait(h: &mut H, release: bool) -> u32 {
    let synack = h.establish_passive(full_syn_opts(7, TS0));
    let mut ecr = synack.options.timestamps.unwrap().0;
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"0123456789").ts(TS0 + 2, ecr));
    let o = h.recv().expect("ACK of data");
    ecr = o.options.timestamps.unwrap().0;
    assert_eq!(h.read_all(), b"0123456789");
    let c = h.c();
    if release {
        h.stack.close(c);
    } else {
        h.stack.shutdown(c, Shutdown::Write).unwrap();
    }
    h.expect(FIN | ACK, h.our(0), h.peer(10));
    h.advance(Duration::from_millis(5));
    h.send(Seg::new(ACK, h.peer(10), h.our(1)).ts(TS0 + 3, ecr));
    h.send(Seg::new(FIN | ACK, h.peer(10), h.our(1)).ts(TS0 + 4, ecr));
    h.expect(ACK, h.our(1), h.peer(11));
    ecr
}

/// Probes a TIME-WAIT connection and records everything observable from outside.
fn probe(release: bool) -> (Vec<String>, H) {
    let mut h = H::new(cfg());
    let ecr = to_time_wait(&mut h, release);
    let mut log = Vec::new();
    let mut step = |h: &mut H, what: &str, seg: Option<Seg>, wait: Duration| {
        h.advance(wait);
        if let Some(s) = seg {
            h.send(s);
        }
        let outs: Vec<String> = h.drain().iter().map(|o| o.to_string()).collect();
        log.push(format!("{what}: {outs:?} timer {:?} conns {}", h.next_timer(), h.stack.connection_count()));
    };
    step(&mut h, "idle", None, Duration::from_millis(1));
    // A retransmitted FIN is acknowledged and restarts the 2 MSL timeout.
    let fin = Seg::new(FIN | ACK, h.peer(10), h.our(1)).ts(TS0 + 9, ecr);
    step(&mut h, "fin", Some(fin), Duration::from_secs(3));
    // A duplicate of old data: ACK with a D-SACK block.
    let dup = Seg::new(ACK, h.peer(0), h.our(1)).data(b"0123456789").ts(TS0 + 10, ecr);
    step(&mut h, "dup", Some(dup), Duration::from_secs(1));
    // An old timestamp: PAWS drops it and ACKs.
    let old = Seg::new(ACK, h.peer(11), h.our(1)).ts(TS0 - 100, ecr);
    step(&mut h, "paws", Some(old), Duration::from_secs(1));
    // A SYN below RCV.NXT: challenge ACK (RFC 5961 §4).
    let syn = Seg::new(SYN, h.peer(5), 0).ts(TS0 + 11, 0);
    step(&mut h, "syn", Some(syn), Duration::from_secs(1));
    // A duplicate pure ACK draws nothing.
    let ack = Seg::new(ACK, h.peer(11), h.our(1)).ts(TS0 + 12, ecr);
    step(&mut h, "ack", Some(ack), Duration::from_secs(1));
    (log, h)
}

#[test]
fn record_fits_128_bytes() {
    const { assert!(TIME_WAIT_RECORD_BYTES <= 128) };
}

#[test]
fn parked_time_wait_answers_like_a_full_tcb() {
    let (held, _) = probe(false);
    let (parked, h) = probe(true);
    assert_eq!(held, parked);
    assert_eq!(h.stack.time_wait_count(), 1, "the released connection is parked");
    assert_eq!(h.stack.counters().tw_parked, 6, "parked again after every answered probe");
    // The ACKs were really sent (the comparison is not between two empty logs).
    assert!(
        parked[1].contains("ack 1000012") && parked[2].contains("blocks: [(1000001, 1000011)"),
        "{parked:?}"
    );
}

#[test]
fn parked_time_wait_expires_after_2msl_from_the_last_fin() {
    let mut h = H::new(cfg());
    let ecr = to_time_wait(&mut h, true);
    let msl = h.stack.config().msl;
    assert_eq!(h.stack.time_wait_count(), 1);
    assert_eq!(h.stack.connections().collect::<Vec<_>>()[0].1, State::TimeWait);
    h.advance(Duration::from_secs(10));
    h.send(Seg::new(FIN | ACK, h.peer(10), h.our(1)).ts(TS0 + 9, ecr));
    h.expect(ACK, h.our(1), h.peer(11));
    assert_eq!(h.next_timer(), Some(msl * 2));
    h.advance(msl * 2 - Duration::from_millis(1));
    assert_eq!(h.stack.connection_count(), 1);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.time_wait_count(), 0);
    assert!(h.state_changes().contains(&(State::TimeWait, State::Closed)));
    assert_eq!(h.next_timer(), None);
    // The quad is free: a segment now draws a RST (RFC 9293 §3.10.7.1).
    h.send(Seg::new(ACK, h.peer(11), h.our(1)).ts(TS0 + 20, ecr));
    h.expect(RST, h.our(1), 0);
}

#[test]
fn rst_closes_a_parked_time_wait() {
    let mut h = H::new(cfg());
    to_time_wait(&mut h, true);
    // RFC 9293 §3.10.7.4 second, TIME-WAIT: an acceptable RST closes (rfc1337 off).
    h.send(Seg::new(RST, h.peer(11), 0));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.next_timer(), None);
}

#[test]
fn syn_reincarnates_a_parked_time_wait() {
    for release in [false, true] {
        let mut h = H::new(cfg());
        to_time_wait(&mut h, release);
        let old_iss = h.iss;
        h.advance(Duration::from_secs(1));
        // RFC 6191: a SYN above RCV.NXT with a newer timestamp reopens the quad.
        h.send(Seg::new(SYN, h.peer(100_000), 0).opts(full_syn_opts(7, TS0 + 1000)));
        let o = h.recv().expect("SYN-ACK");
        assert_eq!(o.flags, SYN | ACK, "{o}");
        assert_eq!(o.ack, h.peer(100_001));
        assert!(o.seq.wrapping_sub(old_iss) as i32 > (1 << 17), "ISS above the old SND.MAX: {o}");
        assert_eq!(h.stack.time_wait_count(), 0);
        assert_eq!(h.stack.connection_count(), 1);
    }
}

#[test]
fn full_table_closes_without_time_wait() {
    let mut h = H::new(cfg().with_max_time_wait(0));
    let ecr = to_time_wait(&mut h, true);
    assert_eq!(h.stack.counters().tw_overflow, 1);
    assert_eq!(h.stack.connection_count(), 0);
    assert!(h.state_changes().contains(&(State::TimeWait, State::Closed)));
    // Linux's policy: no TIME-WAIT, so a retransmitted FIN meets no TCB and draws a RST.
    h.send(Seg::new(FIN | ACK, h.peer(10), h.our(1)).ts(TS0 + 9, ecr));
    h.expect(RST, h.our(1), 0);
}

#[test]
fn connect_refuses_a_quad_in_time_wait() {
    let mut h = H::new(cfg());
    to_time_wait(&mut h, true);
    let e = h.stack.connect(h.now, local_addr(), remote_addr()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
}
