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
