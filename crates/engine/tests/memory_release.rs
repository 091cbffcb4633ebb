//! Issue 9, bounded memory: the heap comes back down after load. 20,000 server-closed
//! connections (each with a request and a response, so both rings were allocated) leave
//! compact TIME-WAIT records only, and after 2 MSL the heap returns to its size before the
//! burst (measured by a counting allocator, on virtual time).

mod common;
mod live_heap;
use common::*;

const CONNS: u32 = 20_000;

fn addr(i: u32) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::from_bits(u32::from(REMOTE_IP) + i / 50_000)),
        10_000 + (i % 50_000) as u16,
    )
}

#[test]
fn heap_returns_to_baseline_after_time_wait() {
    let mut h = H::new(base_config().with_trace_states(false));
    let l = h.stack.listen(local_addr(), 64).unwrap();
    let mut buf = [0u8; 256];
    // Warm up the Stack's own tables with one connection, then take the baseline.
    let mut base = 0;
    for i in 0..=CONNS {
        if i == 1 {
            h.advance(h.stack.config().msl * 2 + Duration::from_secs(2));
            base = live_heap::live() as usize;
        }
        let a = addr(i);
        h.send(Seg::new(SYN, PEER_ISS, 0).mss(1460).from(a));
        let iss = h.recv().expect("SYN-ACK").seq;
        h.send(Seg::new(ACK, PEER_ISS + 1, iss + 1).from(a));
        let (c, _) = h.stack.accept(l).expect("accept");
        h.send(Seg::new(ACK | PSH, PEER_ISS + 1, iss + 1).data(b"GET / HTTP/1.0\r\n\r\n").from(a));
        h.drain();
        assert_eq!(h.stack.recv(c, &mut buf).unwrap(), 18);
        h.stack.send(c, &[b'x'; 100]).unwrap();
        h.stack.close(c);
        h.drain();
        // The peer acknowledges response and FIN, then closes: we go to TIME-WAIT.
        h.send(Seg::new(ACK, PEER_ISS + 19, iss + 102).from(a));
        h.send(Seg::new(FIN | ACK, PEER_ISS + 19, iss + 102).from(a));
        let o = h.recv().expect("ACK of the FIN");
        assert_eq!(o.ack, PEER_ISS + 20);
        h.drain();
        h.events();
    }
    let loaded = live_heap::live() as usize - base;
    assert_eq!(h.stack.time_wait_count(), CONNS as usize);
    assert_eq!(h.stack.buffer_memory(), 0, "no ring survives TIME-WAIT entry");
    println!("heap for {CONNS} connections in TIME-WAIT: {loaded} B ({} B each)", loaded / CONNS as usize);
    // The record (≤ 128 B), its share of the hash table and expiry queue, stale timer entries.
    assert!(loaded / (CONNS as usize) < 320, "{loaded} B");
    let msl = h.stack.config().msl;
    h.advance(msl * 2 + Duration::from_secs(1));
    while let Some(t) = h.stack.poll_timeout() {
        h.advance_to(t);
    }
    assert_eq!(h.stack.connection_count(), 0);
    let after = live_heap::live() as isize - base as isize;
    println!("heap after TIME-WAIT expiry: {after} B above the baseline");
    assert!(after < 64 * 1024, "{after} B retained after every connection closed");
}
