//! Two `utcp::engine::Stack`s joined by the in-memory link (`utcp::device::link`), no root
//! and no TUN: A connects to B, sends 1 MiB, closes; B checks every byte, sees the end of
//! stream and closes too. Virtual time, so it runs in milliseconds.
//!
//! `cargo run -p utcp --example loopback`; `cargo test` runs it through
//! `crates/utcp/tests/examples.rs`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utcp::device::link::{Impairments, Link, Side};
use utcp::engine::{Config, Event, RecvError, SendError, Stack, State};
use utcp::time::{Duration, Instant};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const LEN: usize = 1 << 20;

/// What a run moved.
#[derive(Debug)]
pub struct Summary {
    /// Bytes B received, all checked.
    pub bytes: usize,
    /// Packets the link delivered, both ways.
    pub packets: u64,
    /// Virtual time the transfer and close took.
    pub elapsed: Duration,
}

/// The byte at offset `i` of the transfer.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// Move every packet each stack wants to send onto the link, and deliver what is due.
fn exchange(a: &mut Stack, b: &mut Stack, link: &mut Link, now: Instant, buf: &mut [u8]) -> u64 {
    let mut delivered = 0;
    loop {
        let mut any = false;
        while let Some(n) = a.poll_transmit(now, buf) {
            link.send(now, Side::A, &buf[..n]);
            any = true;
        }
        while let Some(n) = b.poll_transmit(now, buf) {
            link.send(now, Side::B, &buf[..n]);
            any = true;
        }
        while let Some((to, p)) = link.recv(now) {
            match to {
                Side::A => a.handle_packet(now, &p),
                Side::B => b.handle_packet(now, &p),
            }
            link.recycle(p);
            delivered += 1;
            any = true;
        }
        if !any {
            return delivered;
        }
    }
}

/// Run the example; `Err` says what went wrong.
pub fn run() -> Result<Summary, String> {
    let mut a = Stack::new(Config::default());
    a.add_local_addr(A);
    let mut b = Stack::new(Config::default());
    b.add_local_addr(B);
    let delay = Impairments::with_delay(Duration::from_millis(5));
    let mut link = Link::new(1, delay.clone(), delay);
    let mut buf = vec![0u8; 65536];
    let start = Instant::from_millis(1);
    let mut now = start;

    let listener = b.listen(SocketAddr::new(B, 7), 8).map_err(|e| e.to_string())?;
    let client = a.connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 7)).map_err(|e| e.to_string())?;
    let (mut server, mut sent, mut got, mut eof) = (None, 0usize, 0usize, false);
    let mut closed = false;
    let mut packets = 0;
    for _ in 0..1_000_000 {
        packets += exchange(&mut a, &mut b, &mut link, now, &mut buf);
        while let Some(ev) = b.poll_event() {
            if let Event::Incoming(l) = ev {
                server = Some(b.accept(l).map_err(|e| e.to_string())?.0);
            }
        }
        while a.poll_event().is_some() {}
        // A writes the pattern as the send buffer allows, then closes (FIN after the data).
        if a.state(client) == Some(State::Established) && sent < LEN {
            let chunk: Vec<u8> = (sent..LEN.min(sent + 65536)).map(pattern).collect();
            sent += a.send(client, &chunk).or_else(would_block).map_err(|e| e.to_string())?;
        }
        if sent == LEN && !closed {
            a.close(client);
            closed = true;
        }
        // B reads and checks every byte; end of stream closes its side.
        if let Some(s) = server {
            while !eof {
                match b.recv(s, &mut buf) {
                    Ok(0) => {
                        eof = true;
                        b.close(s);
                    }
                    Ok(n) => {
                        if let Some(i) = (0..n).find(|&i| buf[i] != pattern(got + i)) {
                            return Err(format!("byte {} is {} not {}", got + i, buf[i], pattern(got + i)));
                        }
                        got += n;
                    }
                    Err(RecvError::WouldBlock) => break,
                    Err(e) => return Err(format!("recv: {e}")),
                }
            }
        }
        // Done when B's end is gone (its FIN was acknowledged: LAST-ACK → CLOSED) and A's
        // holds only TIME-WAIT (RFC 9293 §3.6).
        let a_left: Vec<State> = a.connections().map(|(_, s)| s).collect();
        if eof && b.connection_count() == 0 && a_left.iter().all(|s| *s == State::TimeWait) {
            b.close_listener(listener);
            return if got == LEN {
                Ok(Summary { bytes: got, packets, elapsed: now.saturating_since(start) })
            } else {
                Err(format!("end of stream after {got} of {LEN} bytes"))
            };
        }
        packets += exchange(&mut a, &mut b, &mut link, now, &mut buf);
        // Sleep (in virtual time) until the next packet or timer.
        let next = [link.next_delivery(), a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min();
        match next {
            Some(t) if t > now => now = t,
            Some(_) => {}
            None => now += Duration::from_millis(1),
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    Err(format!("no progress: sent {sent}, received {got}, eof {eof}"))
}

/// A full send buffer is not an error here: send the rest on a later round.
fn would_block(e: SendError) -> Result<usize, SendError> {
    if e == SendError::WouldBlock { Ok(0) } else { Err(e) }
}

#[allow(dead_code)] // `main` is unused when tests/examples.rs includes this file as a module.
fn main() {
    match run() {
        Ok(s) => println!(
            "loopback: {} bytes checked, {} packets, {:?} virtual time",
            s.bytes, s.packets, s.elapsed
        ),
        Err(e) => {
            eprintln!("loopback failed: {e}");
            std::process::exit(1);
        }
    }
}
