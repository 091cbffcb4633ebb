//! Sending urgent data: RFC 9293 §3.8.5 (MUST-30, MUST-31, MUST-62) and §3.10.2, with the
//! urgent pointer pointing to the octet after the urgent data (RFC 6093 §4).

mod common;
use common::*;

const URG: TcpFlags = TcpFlags::URG;

fn established() -> H {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    h
}

fn write_urgent(h: &mut H, data: &[u8]) {
    let c = h.c();
    let n = h.stack.send_urgent(c, data).expect("send_urgent");
    assert_eq!(n, data.len());
}

/// MUST-62: SEG.UP = SND.UP − SEG.SEQ, the offset of the octet after the urgent data;
/// once the peer acknowledges it, urgent mode ends and new data carries no URG.
#[test]
fn urgent_pointer_points_after_the_urgent_data() {
    let mut h = established();
    write_urgent(&mut h, b"0123456789");
    let o = h.expect(ACK | PSH | URG, h.our(0), h.peer(0)).len(10);
    assert_eq!(o.urgent, 10);
    h.send(Seg::new(ACK, h.peer(0), h.our(10)));
    h.expect_nothing();
    h.write(b"plain");
    let o = h.expect(ACK | PSH, h.our(10), h.peer(0)).len(5);
    assert_eq!(o.urgent, 0);
}

/// MUST-31: urgent data of any length. Every segment below SND.UP carries URG with the
/// pointer relative to its own sequence number.
#[test]
fn urgent_data_spanning_segments_points_to_the_same_octet() {
    let mut h = established();
    let data = payload(3 * MSS as usize);
    write_urgent(&mut h, &data);
    let end = 3 * MSS;
    for i in 0..3u16 {
        let flags = if i == 2 { ACK | PSH | URG } else { ACK | URG };
        let o = h.expect(flags, h.our((i * MSS) as u32), h.peer(0)).len(MSS as usize);
        assert_eq!(o.urgent, end - i * MSS, "segment {i}");
    }
    h.expect_nothing();
}

/// Urgent data beyond 64 KiB: the 16-bit pointer is capped at 65535 (RFC 6093 §4), and
/// segments after 65535 octets point to the real end.
#[test]
fn urgent_pointer_is_capped_at_65535() {
    let mut h = established();
    write_urgent(&mut h, &payload(70_000));
    let o = h.expect(ACK | URG, h.our(0), h.peer(0)).len(MSS as usize);
    assert_eq!(o.urgent, 0xFFFF);
}

/// Nagle (RFC 9293 §3.7.4) does not hold urgent data back: a small urgent write goes out
/// while an earlier small segment is unacknowledged (Linux's tcp_nagle_test does the same).
#[test]
fn nagle_does_not_delay_urgent_data() {
    let mut h = established();
    h.write(b"a");
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(1);
    h.write(b"b");
    h.expect_nothing();
    write_urgent(&mut h, b"!");
    let o = h.expect(ACK | PSH | URG, h.our(1), h.peer(0)).len(2);
    assert_eq!(o.urgent, 2);
}

/// A retransmission of urgent data still carries URG (the pointer is recomputed from the
/// segment's sequence number).
#[test]
fn retransmitted_urgent_data_keeps_urg() {
    let mut h = established();
    write_urgent(&mut h, b"xyz");
    h.expect(ACK | PSH | URG, h.our(0), h.peer(0)).len(3);
    h.fire_timer();
    let o = h.expect(ACK | PSH | URG, h.our(0), h.peer(0)).len(3);
    assert_eq!(o.urgent, 3);
    // A partial ACK: the rest is still urgent.
    h.send(Seg::new(ACK, h.peer(0), h.our(1)));
    h.fire_timer();
    let o = h.expect(ACK | PSH | URG, h.our(1), h.peer(0)).len(2);
    assert_eq!(o.urgent, 2);
}

/// Urgent SEND fails like SEND on a connection that cannot send.
#[test]
fn urgent_send_after_shutdown_fails() {
    let mut h = established();
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(ACK | FIN, h.our(0), h.peer(0));
    let e = h.stack.send_urgent(c, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    h.expect_nothing();
}

fn urgent_events(h: &mut H) -> usize {
    h.events().iter().filter(|e| matches!(e, Event::Urgent(_))).count()
}

/// MUST-32 (§3.10.7.4 sixth step): urgent data from the peer is signalled once per
/// continuous stretch, even when later segments repeat or extend the pointer; MUST-33:
/// `Status::urgent_remaining` counts the urgent octets before the pointer not yet read.
#[test]
fn received_urgent_data_is_signalled_once_and_counted() {
    let mut h = established();
    let c = h.c();
    // 10 octets, all urgent (the pointer points after them, RFC 6093 §4).
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"0123456789").urg(10));
    assert_eq!(urgent_events(&mut h), 1);
    assert_eq!(h.stack.status(c).unwrap().urgent_remaining, 10);
    // The same stretch, extended by the next segment: no second signal.
    h.send(Seg::new(ACK | PSH, h.peer(10), h.our(0)).data(b"abcde").urg(3));
    assert_eq!(urgent_events(&mut h), 0);
    assert_eq!(h.stack.status(c).unwrap().urgent_remaining, 13);
    // Reading moves the count down; reading past the pointer ends the stretch.
    assert_eq!(h.read(4).unwrap(), b"0123");
    assert_eq!(h.stack.status(c).unwrap().urgent_remaining, 9);
    assert_eq!(h.read(11).unwrap(), b"456789abcde");
    assert_eq!(h.stack.status(c).unwrap().urgent_remaining, 0);
    // A new urgent stretch after that is signalled again.
    h.send(Seg::new(ACK | PSH, h.peer(15), h.our(0)).data(b"xy").urg(2));
    assert_eq!(urgent_events(&mut h), 1);
    assert_eq!(h.stack.status(c).unwrap().urgent_remaining, 2);
}

/// A pointer at or behind what the user has read is no news: no signal, nothing remains.
#[test]
fn a_stale_urgent_pointer_is_not_signalled() {
    let mut h = established();
    let c = h.c();
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"hello"));
    assert_eq!(h.read(5).unwrap(), b"hello");
    h.events();
    h.send(Seg::new(ACK | PSH, h.peer(5), h.our(0)).data(b"!").urg(0));
    assert_eq!(urgent_events(&mut h), 0);
    assert_eq!(h.stack.status(c).unwrap().urgent_remaining, 0);
}

/// Regression (issue 12): SND.UP started at ISS and stayed there, so once SND.UNA had
/// moved 2^31 octets past it, the wrapping comparison SND.UP > SND.UNA came out true and
/// every segment carried URG with pointer 65535 (a Linux receiver then takes one octet
/// per segment out of the stream). SND.UP now follows SND.UNA while no urgent data is
/// outstanding (BSD's tcp_output "drag it along", Linux's tcp_clean_rtx_queue), so no
/// segment after 2^31 + 2^20 octets of plain data carries URG, and urgent data sent then
/// still points after itself.
#[test]
fn no_urgent_mode_after_two_gib_of_plain_data() {
    let (mut h, sent) = two_gib_of_full_segments();
    write_urgent(&mut h, b"!");
    let o = h.expect(ACK | PSH | URG, h.our(0).wrapping_add(sent as u32), h.peer(0)).len(1);
    assert_eq!(o.urgent, 1);
}

/// The same for Minshall's Nagle (`Config::nagle_minshall`, on by default): the end of the
/// last small segment started at ISS and, after 2^31 octets in full-sized segments only,
/// looked ahead of SND.UNA, so a small write with nothing in flight was held with nothing
/// to release it. It goes out at once.
#[test]
fn a_small_write_after_two_gib_of_full_segments_is_not_held() {
    let (mut h, sent) = two_gib_of_full_segments();
    h.write(b"tail");
    let o = h.expect(ACK | PSH, h.our(0).wrapping_add(sent as u32), h.peer(0)).len(4);
    assert_eq!(o.urgent, 0);
}

/// An established connection that has sent 2^31 + 1 MiB octets in full-sized segments
/// (MSS = the harness peer's window = the chunk), all acknowledged; returns the count.
fn two_gib_of_full_segments() -> (H, u64) {
    const CHUNK: usize = 30_000; // the harness peer's window
    let cfg = base_config().with_mtu(65_535).with_send_buffer(CHUNK).with_recv_buffer(65_535);
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(CHUNK as u16));
    let c = h.c();
    let total: u64 = (1 << 31) + (1 << 20);
    let mut sent: u64 = 0;
    while sent < total {
        // Zero-copy SEND: the octets' values do not matter here.
        let n = h
            .stack
            .send_with(c, |b| b.len().min(CHUNK))
            .unwrap_or_else(|e| panic!("send after {sent}: {e:?} {:?}", h.stack.status(c)));
        let out = h.drain();
        assert_eq!(out.len(), 1, "one segment per chunk");
        let o = &out[0];
        assert!(!o.flags.urg() && o.urgent == 0, "URG after {sent} octets: {o}");
        assert_eq!(o.payload.len(), CHUNK, "a full-sized segment");
        sent += n as u64;
        h.send(Seg::new(ACK, h.peer(0), o.seq.wrapping_add(n as u32)));
    }
    (h, sent)
}
