//! Two engines joined back to back (no impairments): handshake, data both ways, close.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utcp_engine::time::{Duration, Instant};
use utcp_engine::{Config, Event, Stack, State};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// Move packets between the two stacks until both are quiet; returns packets moved.
fn pump(a: &mut Stack, b: &mut Stack, now: Instant) -> usize {
    let mut buf = vec![0u8; 65536];
    let mut moved = 0;
    loop {
        let mut any = false;
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            if std::env::var("TRACE").is_ok() {
                dump("A>", &buf[..n]);
            }
            b.handle_packet(now, &buf[..n]);
            moved += 1;
            any = true;
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            if std::env::var("TRACE").is_ok() {
                dump("B>", &buf[..n]);
            }
            a.handle_packet(now, &buf[..n]);
            moved += 1;
            any = true;
        }
        if !any {
            return moved;
        }
        assert!(moved < 1_000_000, "runaway packet loop");
    }
}

fn step(a: &mut Stack, b: &mut Stack, now: &mut Instant) {
    pump(a, b, *now);
    let next = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min();
    if let Some(t) = next {
        *now = (*now).max(t);
        a.handle_timeout(*now);
        b.handle_timeout(*now);
    } else {
        *now += Duration::from_millis(1);
    }
}

#[test]
fn handshake_transfer_close() {
    let mut a = Stack::new(Config::default().with_trace_states(true));
    a.add_local_addr(A);
    let mut b = Stack::new(Config::default().with_isn_secret(*b"another secret!!"));
    b.add_local_addr(B);
    let mut now = Instant::from_millis(1);
    let l = b.listen(SocketAddr::new(B, 80), 16).unwrap();
    let c = a.connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 80)).unwrap();
    pump(&mut a, &mut b, now);
    assert_eq!(a.state(c), Some(State::Established));
    let (s, peer) = b.accept(l).unwrap();
    assert_eq!(peer, a.local_addr(c).unwrap());
    assert_eq!(b.state(s), Some(State::Established));

    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    for _ in 0..100_000 {
        if sent < data.len() {
            match a.send(c, &data[sent..]) {
                Ok(n) => sent += n,
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
            }
        }
        loop {
            match b.recv(s, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        if got.len() == data.len() {
            break;
        }
        step(&mut a, &mut b, &mut now);
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data);

    a.shutdown(c, std::net::Shutdown::Write).unwrap();
    pump(&mut a, &mut b, now);
    assert_eq!(b.recv(s, &mut buf).unwrap(), 0);
    assert_eq!(b.state(s), Some(State::CloseWait));
    assert_eq!(a.state(c), Some(State::FinWait2));
    b.close(s);
    pump(&mut a, &mut b, now);
    assert_eq!(a.state(c), Some(State::TimeWait));
    // TIME-WAIT lasts 2*MSL.
    for _ in 0..10 {
        step(&mut a, &mut b, &mut now);
    }
    assert_eq!(a.state(c), Some(State::Closed));
    let mut saw_closed = false;
    while let Some(ev) = a.poll_event() {
        if let Event::Closed(id, _) = ev {
            saw_closed |= id == c;
        }
    }
    assert!(saw_closed);
    a.close(c);
    assert_eq!(a.connection_count(), 0);
    assert_eq!(b.connection_count(), 0);
}

fn dump(dir: &str, p: &[u8]) {
    let s = utcp_engine::wire::parse_ipv4_tcp(p).unwrap();
    eprintln!(
        "{dir} {} seq {} ack {} win {} len {} {}",
        s.flags,
        s.seq,
        s.ack,
        s.window,
        s.payload.len(),
        s.options
    );
}

/// Regression (found by `utcp bench --scale`): a passive side whose ISS is just under 2^31
/// (0x7FFFFBEE) once made the active side emit empty segments forever. The exchange must
/// settle, move data and close.
#[test]
fn peer_iss_just_under_2_pow_31() {
    use utcp_engine::{Quad, isn};
    let cfg_b = Config::default().with_isn_secret(*b"another secret!!");
    let a_addr = SocketAddr::new(A, 40000);
    let b_addr = SocketAddr::new(B, 80);
    // Pick the virtual time at which B's RFC 6528 ISN for this quad is 0x7FFFFBEE.
    let quad = Quad { local: b_addr, remote: a_addr };
    let f = isn::initial_sequence_number(&cfg_b.isn_secret, &quad, Instant::ZERO).0;
    let ticks = 0x7FFF_FBEEu32.wrapping_sub(f) as u64;
    let mut now = Instant::from_micros(ticks * 4);
    assert_eq!(isn::initial_sequence_number(&cfg_b.isn_secret, &quad, now).0, 0x7FFF_FBEE);

    let mut a = Stack::new(Config::default());
    a.add_local_addr(A);
    let mut b = Stack::new(cfg_b);
    b.add_local_addr(B);
    let l = b.listen(b_addr, 4).unwrap();
    let c = a.connect(now, a_addr, b_addr).unwrap();
    let moved = pump(&mut a, &mut b, now);
    assert!(moved < 10, "handshake took {moved} packets");
    let (s, _) = b.accept(l).unwrap();
    assert_eq!(b.status(s).unwrap().snd_una, 0x7FFF_FBEF);
    let data = vec![9u8; 100_000];
    let mut sent = 0;
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    for _ in 0..10_000 {
        if sent < data.len() {
            sent += b.send(s, &data[sent..]).unwrap_or(0);
        }
        while let Ok(n) = a.recv(c, &mut buf) {
            if n == 0 {
                break;
            }
            got += n;
        }
        if got == data.len() {
            break;
        }
        step(&mut a, &mut b, &mut now);
    }
    assert_eq!(got, data.len());
}

/// Both directions at once for more than 2^31 octets each (64 KiB segments, zero-copy
/// calls, a check octet per chunk): every mark kept in sequence space must stay within
/// 2^31 of the edges it is compared with (RFC 9293 §3.4). Issue 12 found three that did
/// not (SND.UP, Minshall's small-segment end, RACK.fack). Here: no urgent data is ever
/// signalled, no loss recovery starts on a lossless link, every octet arrives once and in
/// order, and both ends close cleanly afterwards.
#[test]
fn both_directions_past_two_gib() {
    const TOTAL: u64 = (1 << 31) + (8 << 20);
    let cfg = |secret: &[u8; 16]| {
        Config::default()
            .with_mtu(65_535)
            .with_isn_secret(*secret)
            .with_send_buffer(1 << 20)
            .with_recv_buffer(1 << 20)
    };
    let mut a = Stack::new(cfg(b"one secret here!"));
    a.add_local_addr(A);
    let mut b = Stack::new(cfg(b"another secret!!"));
    b.add_local_addr(B);
    let mut now = Instant::from_millis(1);
    let l = b.listen(SocketAddr::new(B, 80), 4).unwrap();
    let c = a.connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 80)).unwrap();
    pump(&mut a, &mut b, now);
    let (s, _) = b.accept(l).unwrap();
    // Octet i of the stream is (i / 4096) as u8: a lost, doubled or reordered chunk shows.
    let fill = |off: &mut u64, buf: &mut [u8]| {
        let n = buf.len().min((TOTAL - *off) as usize);
        for (i, x) in buf[..n].iter_mut().enumerate() {
            *x = ((*off + i as u64) / 4096) as u8;
        }
        *off += n as u64;
        n
    };
    let check = |off: &mut u64, data: &[u8]| {
        let bad = data.iter().enumerate().position(|(i, &x)| x != ((*off + i as u64) / 4096) as u8);
        assert!(bad.is_none(), "octet {} wrong", *off + bad.unwrap() as u64);
        *off += data.len() as u64;
        data.len()
    };
    let (mut a_sent, mut b_sent, mut a_got, mut b_got) = (0u64, 0u64, 0u64, 0u64);
    let mut rounds = 0u64;
    while a_got < TOTAL || b_got < TOTAL {
        rounds += 1;
        assert!(rounds < 10_000_000, "no progress: {a_got} / {b_got} of {TOTAL}");
        if a_sent < TOTAL {
            let _ = a.send_with(c, |buf| fill(&mut a_sent, buf));
        }
        if b_sent < TOTAL {
            let _ = b.send_with(s, |buf| fill(&mut b_sent, buf));
        }
        while let Ok(n) = b.recv_with(s, |d| check(&mut b_got, d)) {
            if n == 0 {
                break;
            }
        }
        while let Ok(n) = a.recv_with(c, |d| check(&mut a_got, d)) {
            if n == 0 {
                break;
            }
        }
        step(&mut a, &mut b, &mut now);
    }
    for (st, name) in [(&mut a, "A"), (&mut b, "B")] {
        // In lockstep virtual time the delayed ACK can lose the race with the probe
        // timeout, so a tail loss probe may resend a segment; nothing else may.
        let k = st.counters();
        assert_eq!(
            (k.fast_retransmits, k.timeouts),
            (0, 0),
            "{name} recovered from a loss on a lossless link: {k}"
        );
        assert!(k.retrans_segs <= k.tlp_probes, "{name} retransmitted other than by a probe: {k}");
        while let Some(ev) = st.poll_event() {
            assert!(!matches!(ev, Event::Urgent(_)), "{name} was told of urgent data");
        }
    }
    a.shutdown(c, std::net::Shutdown::Write).unwrap();
    b.shutdown(s, std::net::Shutdown::Write).unwrap();
    pump(&mut a, &mut b, now);
    let mut buf = [0u8; 16];
    assert_eq!(a.recv(c, &mut buf).unwrap(), 0);
    assert_eq!(b.recv(s, &mut buf).unwrap(), 0);
}
