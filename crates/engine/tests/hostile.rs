//! Hostile networks (issue 9): RFC 5961 §7 challenge-ACK limits without a side channel
//! (CVE-2016-5696), ACK frequency under batched input (RFC 5681 §4.2, RFC 9293 SHLD-19),
//! the initial window after a passive open (RFC 5681 §3.1, RFC 6928), and a
//! `poll_transmit` that never loses state on a small buffer.

mod common;
use common::*;

fn established(cfg: Config) -> H {
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    h
}

// ------------------------------------------------------------ poll_transmit

/// A buffer smaller than `Stack::min_transmit_buffer` gets `None` and changes nothing:
/// the data segment, and a stateless RST, are sent by the next call with a full buffer.
/// (It used to advance SND.NXT and drop the connection from the transmit queue: the
/// connection never sent again and `poll_timeout` stayed `None`.)
#[test]
fn poll_transmit_small_buffer_loses_nothing() {
    let mut h = established(base_config());
    assert_eq!(h.stack.min_transmit_buffer(), 1500, "MTU 1500: 40 + MSS 1460");
    h.write(&payload(1000));
    let mut small = [0u8; 1499];
    assert_eq!(h.stack.poll_transmit(h.now, &mut small), None);
    assert_eq!(h.stack.poll_transmit(h.now, &mut small[..60]), None);
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(1000);
    h.expect_nothing();
    assert!(h.next_timer().is_some(), "the retransmission timer runs");

    // A stateless RST (segment for no connection) survives a small buffer too.
    let stranger = SocketAddr::new(IpAddr::V4(REMOTE_IP), 999);
    h.send(Seg::new(ACK, 5, 77).from(stranger));
    assert_eq!(h.stack.poll_transmit(h.now, &mut small), None);
    let o = h.recv().expect("the RST is still owed");
    assert_eq!((o.flags, o.seq, o.dst), (RST, 77, stranger));
}

/// The SYN-ACK of a passive open (the largest options) waits for a big enough buffer.
#[test]
fn poll_transmit_small_buffer_keeps_syn_ack() {
    let mut h = H::new(base_config().with_timestamps(true).with_sack(true).with_window_scale(true));
    h.listen();
    h.send(Seg::new(SYN, PEER_ISS, 0).opts(full_syn_opts(7, 100)));
    let mut small = [0u8; 64];
    assert_eq!(h.stack.poll_transmit(h.now, &mut small), None);
    let o = h.recv().expect("SYN-ACK");
    assert_eq!((o.flags, o.ack), (SYN | ACK, PEER_ISS + 1));
    assert!(o.options.timestamps.is_some() && o.options.sack_permitted);
}

// ------------------------------------------------------------ initial window

/// RFC 5681 §3.1: "the SYN/ACK and the acknowledgment of the SYN/ACK MUST NOT increase the
/// size of the congestion window". After a passive open the IW is exactly 14,600 bytes
/// (RFC 6928 with MSS 1460): ten full segments, and no eleventh byte — not even after
/// the sender SWS override timeout. (The handshake ACK's SYN used to count as one acked
/// byte, making cwnd 14,601.)
#[test]
fn passive_open_initial_window_is_exactly_iw() {
    let mut h = H::new(base_config());
    h.open_to_syn_received(mss_opts(MSS));
    // RTT 100 ms: RTO = 300 ms, beyond the 200 ms SWS override checked below.
    h.advance(Duration::from_millis(100));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    let (c, _) = h.stack.accept(h.listener.unwrap()).unwrap();
    h.conn = Some(c);
    assert_eq!(h.stack.status(c).unwrap().cwnd, 14600);
    h.write(&payload(20_000));
    for k in 0..10u32 {
        h.expect(ACK, h.our(k * 1460), h.peer(0)).len(1460);
    }
    h.expect_nothing();
    h.advance(Duration::from_millis(250));
    h.expect_nothing();
    assert_eq!(h.stack.status(h.c()).unwrap().bytes_in_flight, 14600);
}

// ------------------------------------------------------------ ACK frequency

fn delack_config() -> Config {
    base_config().with_delayed_ack(Some(Duration::from_millis(40)))
}

/// RFC 5681 §4.2 / RFC 9293 SHLD-19: "an ACK SHOULD be generated for at least every second
/// full-sized segment" — also when ten segments arrive in one batch before the stack is
/// polled, and the application reads nothing. Each ACK covers exactly two more segments.
#[test]
fn ack_every_second_full_segment_in_a_batch_without_reads() {
    let mut h = established(delack_config());
    let out_before = h.stack.counters().out_segs;
    for k in 0..10u32 {
        h.send(Seg::new(ACK, h.peer(k * 1460), h.our(0)).data(&payload(1460)));
    }
    for k in 1..=5u32 {
        h.expect(ACK, h.our(0), h.peer(k * 2920)).len(0);
    }
    h.expect_nothing();
    assert_eq!(h.stack.counters().acks_queued, 4);
    // Regression: a queued ACK was counted twice in OutSegs (when queued and when sent).
    assert_eq!(h.stack.counters().out_segs - out_before, 5, "OutSegs counts each segment once");
}

/// A peer behind a smaller path MTU sends 1360-byte segments to our MSS of 1460: those
/// are its full-sized segments, and every second one is acknowledged.
#[test]
fn full_size_follows_what_the_peer_sends() {
    let mut h = established(delack_config());
    for k in 0..6u32 {
        h.send(Seg::new(ACK, h.peer(k * 1360), h.our(0)).data(&payload(1360)));
    }
    for k in 1..=3u32 {
        h.expect(ACK, h.our(0), h.peer(k * 2720));
    }
    h.expect_nothing();
}

/// An odd segment at the end of a batch waits for the delayed-ACK timer (< 0.5 s).
#[test]
fn odd_segment_after_batch_is_acked_by_delayed_ack_timer() {
    let mut h = established(delack_config());
    for k in 0..5u32 {
        h.send(Seg::new(ACK, h.peer(k * 1460), h.our(0)).data(&payload(1460)));
    }
    h.expect(ACK, h.our(0), h.peer(2920));
    h.expect(ACK, h.our(0), h.peer(5840));
    h.expect_nothing();
    h.advance(Duration::from_millis(39));
    h.expect_nothing();
    h.advance(Duration::from_millis(1));
    h.expect(ACK, h.our(0), h.peer(7300));
}

/// Small segments arriving together are still aggregated into one ACK (MUST-58): only the
/// every-second-full-segment rule forces an ACK out early.
#[test]
fn small_segments_in_a_batch_draw_one_ack() {
    let mut h = established(delack_config());
    for k in 0..5u32 {
        h.send(Seg::new(ACK, h.peer(k * 200), h.our(0)).data(&payload(200)));
    }
    // 1000 bytes < 2 * 536 (the smallest "full size", RFC 9293 §3.7.1's default MSS):
    // one delayed ACK for all.
    h.expect_nothing();
    h.fire_timer();
    h.expect(ACK, h.our(0), h.peer(1000));
    h.expect_nothing();
}

// ------------------------------------------------------------ RFC 5961 §7

/// Per-connection limit (Linux's tcp_invalid_ratelimit): one challenge ACK per 500 ms.
/// Further in-window RSTs within the interval are dropped silently and counted.
#[test]
fn challenge_acks_limited_per_connection() {
    let mut h = established(base_config());
    h.send(Seg::new(RST, h.peer(1), 0));
    h.expect(ACK, h.our(0), h.peer(0)).len(0);
    h.send(Seg::new(RST, h.peer(2), 0));
    h.send(Seg::new(SYN, h.peer(3), 0));
    h.expect_nothing();
    h.advance(Duration::from_millis(499));
    h.send(Seg::new(RST, h.peer(4), 0));
    h.expect_nothing();
    h.advance(Duration::from_millis(1));
    h.send(Seg::new(SYN, h.peer(5), 0));
    h.expect(ACK, h.our(0), h.peer(0)).len(0);
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
    let c = h.stack.counters();
    assert_eq!((c.challenge_acks, c.challenge_acks_limited), (2, 3));
}

/// ACK-loop defence (Linux's tcp_oow_rate_limited, `Config::oow_ack_interval`): an
/// unacceptable pure ACK draws a duplicate ACK at most once per 500 ms per connection;
/// unacceptable data is always answered.
#[test]
fn out_of_window_pure_acks_draw_one_dup_ack_per_interval() {
    let mut h = established(base_config());
    let beyond = h.peer(WIN as u32 + 100);
    h.send(Seg::new(ACK, beyond, h.our(0)));
    h.expect(ACK, h.our(0), h.peer(0));
    h.send(Seg::new(ACK, beyond, h.our(0)));
    h.send(Seg::new(ACK, beyond, h.our(0)));
    h.expect_nothing();
    h.send(Seg::new(ACK, beyond, h.our(0)).data(b"x"));
    h.expect(ACK, h.our(0), h.peer(0));
    h.advance(Duration::from_millis(500));
    h.send(Seg::new(ACK, beyond, h.our(0)));
    h.expect(ACK, h.our(0), h.peer(0));
    assert_eq!(h.stack.counters().oow_acks_limited, 2);
    // With the interval 0 every one is answered (RFC 9293 §3.10.7.4 as written).
    let mut h = established(base_config().with_oow_ack_interval(Duration::ZERO));
    for _ in 0..3 {
        h.send(Seg::new(ACK, h.peer(WIN as u32 + 100), h.our(0)));
        h.expect(ACK, h.our(0), h.peer(0));
    }
}

/// The limit is per connection: another connection's challenges are not held back by it.
#[test]
fn challenge_ack_limit_of_one_connection_spares_another() {
    let mut h = established(base_config());
    let other = SocketAddr::new(IpAddr::V4(REMOTE_IP), 41000);
    let other_iss = handshake_from(&mut h, other, 5_000_000);
    h.send(Seg::new(RST, h.peer(1), 0));
    h.expect(ACK, h.our(0), h.peer(0));
    h.send(Seg::new(RST, 5_000_002, 0).from(other));
    h.expect_to(other, ACK, other_iss.wrapping_add(1), 5_000_001);
    h.expect_nothing();
}

/// Complete a passive open from `from` (peer ISS `irs`) on the harness's listener and
/// accept it. Returns our ISS on it.
fn handshake_from(h: &mut H, from: SocketAddr, irs: u32) -> u32 {
    h.send(Seg::new(SYN, irs, 0).from(from).mss(MSS));
    let o = h.recv().expect("SYN-ACK");
    assert_eq!((o.flags, o.dst), (SYN | ACK, from));
    h.send(Seg::new(ACK, irs.wrapping_add(1), o.seq.wrapping_add(1)).from(from));
    h.stack.accept(h.listener.unwrap()).expect("accept");
    h.expect_nothing();
    o.seq
}

/// What the off-path attacker spoofs at the victim connection, each tick.
#[derive(Clone, Copy, Debug)]
enum Guess {
    Nothing,
    /// A wrong 4-tuple (a port the victim does not use).
    WrongTuple,
    /// The right 4-tuple, a RST outside the window.
    RightTupleOutOfWindow,
    /// The right 4-tuple, a RST inside the window (draws challenge ACKs at the victim).
    RightTupleInWindow,
    /// The right 4-tuple, a SYN (RFC 5961 §4: draws challenge ACKs at the victim).
    RightTupleSyn,
}

/// CVE-2016-5696, played on virtual time. The attacker holds its own connection and, every
/// 10 ms for 10 s, sends 5 in-window RSTs on it (counting the challenge ACKs it receives)
/// while spoofing 100 segments at a victim connection. The attacker's count must not
/// depend on its guess: a right 4-tuple and an in-window sequence number must look
/// exactly like a wrong guess or no spoofing at all.
#[test]
fn challenge_ack_budget_is_no_oracle() {
    let guesses = [
        Guess::Nothing,
        Guess::WrongTuple,
        Guess::RightTupleOutOfWindow,
        Guess::RightTupleInWindow,
        Guess::RightTupleSyn,
    ];
    let mut seen = Vec::new();
    for g in guesses {
        let (attacker_acks, victim_acks) = play_attack(g);
        seen.push((g, attacker_acks, victim_acks));
    }
    let first = seen[0].1;
    assert!(first > 0, "the attacker's own challenge ACKs are counted: {seen:?}");
    for &(g, a, _) in &seen {
        assert_eq!(a, first, "attacker count differs for {g:?}: {seen:?}");
    }
    // The spoofing did reach the victim when the guess was right (so the test can fail).
    let victim_in_window = seen[3].2;
    assert!(victim_in_window > 0, "{seen:?}");
    assert!(victim_in_window <= 21, "the victim is limited to 2/s: {seen:?}");
}

/// Returns (challenge ACKs the attacker received, ACKs sent to the victim's peer).
fn play_attack(guess: Guess) -> (usize, usize) {
    let mut h = established(base_config());
    let victim_peer = remote_addr();
    let attacker = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66)), 50_000);
    handshake_from(&mut h, attacker, 7_000_000);
    let (mut attacker_acks, mut victim_acks) = (0, 0);
    for tick in 0..1000u32 {
        for i in 0..5u32 {
            // In the attacker's window, never exactly RCV.NXT: a challenge each time.
            h.send(Seg::new(RST, 7_000_000 + 10 + tick * 5 + i, 0).from(attacker));
        }
        for i in 0..100u32 {
            let spoof = match guess {
                Guess::Nothing => continue,
                Guess::WrongTuple => {
                    Seg::new(RST, h.peer(5 + i), 0).from(SocketAddr::new(IpAddr::V4(REMOTE_IP), 40_001))
                }
                Guess::RightTupleOutOfWindow => Seg::new(RST, h.peer(WIN as u32 + 1000 + i), 0),
                Guess::RightTupleInWindow => Seg::new(RST, h.peer(5 + i), 0),
                Guess::RightTupleSyn => Seg::new(SYN, h.peer(5 + i), 0),
            };
            h.send(spoof);
        }
        for o in h.drain() {
            if o.dst == attacker {
                attacker_acks += 1;
            } else if o.dst == victim_peer && o.flags == ACK {
                victim_acks += 1;
            }
        }
        h.advance(Duration::from_millis(10));
    }
    (attacker_acks, victim_acks)
}

/// Every queue has a cap: a caller that injects segments for no connection without ever
/// draining `poll_transmit` gets at most 1024 queued RSTs; the rest are counted.
#[test]
fn stateless_rst_queue_is_bounded() {
    let mut h = H::new(base_config());
    for i in 0..5000u32 {
        let from = SocketAddr::from(([10, 0, 0, 2], 1024 + (i % 60000) as u16));
        h.send(Seg::new(ACK, PEER_ISS + i, 1).from(from));
    }
    let out = h.drain();
    assert_eq!(out.len(), 1024);
    assert!(out.iter().all(|o| o.flags == RST));
    assert_eq!(h.stack.counters().replies_dropped, 5000 - 1024);
}
