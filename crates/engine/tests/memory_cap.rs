//! Issue 9, bounded memory: 10,000 connections each holding the most out-of-order data its
//! peer can send (a whole window but its first byte) stay under the stack-wide buffer cap
//! (`Config::buffer_memory`, like Linux's tcp_mem), out-of-order data is pruned first
//! (`Counters::ofo_pruned`), the advertised right edge never moves left (RFC 9293 §3.8.6,
//! RFC 7323 §2.4), and afterwards every connection still delivers its data. The heap is
//! measured with a counting allocator as well as by the engine's own accounting.

mod common;
mod live_heap;
use common::*;
use std::collections::HashMap;

const CONNS: u16 = 10_000;
const CAP: usize = 64 << 20;
const SEG: usize = 1460;

struct Peer {
    port: u16,
    iss: u32,
    conn: ConnId,
    /// Highest right edge (ACK + window) we advertised to this peer.
    edge: u32,
    /// Latest acknowledgment number we sent this peer.
    acked: u32,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(REMOTE_IP), port)
}

/// Drain our output; check that no ACK moves a peer's right edge left.
fn drain(h: &mut H, peers: &mut [Peer], by_port: &HashMap<u16, usize>) -> usize {
    let mut n = 0;
    while let Some(o) = h.recv() {
        n += 1;
        let Some(&i) = by_port.get(&o.dst.port()) else { continue };
        if o.flags.ack() && !o.flags.syn() && !o.flags.rst() {
            let edge = o.ack.wrapping_add(o.window as u32);
            let p = &mut peers[i];
            assert!((edge.wrapping_sub(p.edge) as i32) >= 0, "right edge moved left: {o}");
            p.edge = edge;
            p.acked = o.ack;
        }
    }
    n
}

#[test]
fn ten_thousand_connections_full_of_out_of_order_data_stay_under_the_cap() {
    let base = live_heap::live() as usize;
    let cfg = base_config().with_buffer_memory(CAP).with_trace_states(false);
    let mut h = H::new(cfg);
    let l = h.stack.listen(local_addr(), CONNS as usize + 1).unwrap();
    let mut peers = Vec::new();
    let mut by_port = HashMap::new();
    for i in 0..CONNS {
        let port = 10_000 + i;
        h.send(Seg::new(SYN, PEER_ISS, 0).mss(SEG as u16).from(addr(port)));
        let synack = h.recv().expect("SYN-ACK");
        let iss = synack.seq;
        h.send(Seg::new(ACK, PEER_ISS + 1, iss + 1).from(addr(port)));
        let (conn, _) = h.stack.accept(l).expect("accept");
        by_port.insert(port, peers.len());
        peers.push(Peer { port, iss, conn, edge: PEER_ISS + 1 + WIN as u32, acked: PEER_ISS + 1 });
    }
    let per_conn_overhead = (live_heap::live() as usize - base) / CONNS as usize;

    // Phase 1: every peer sends its whole window but the first byte (all out of order).
    let window = WIN as usize;
    let data = payload(window);
    for i in 0..peers.len() {
        let (port, iss) = (peers[i].port, peers[i].iss);
        let mut off = 1;
        while off < window {
            let end = (off + SEG).min(window);
            let seq = PEER_ISS + 1 + off as u32;
            h.send(Seg::new(ACK, seq, iss + 1).data(&data[off..end]).from(addr(port)));
            off = end;
        }
        drain(&mut h, &mut peers, &by_port);
        assert!(h.stack.buffer_memory() <= CAP, "{} > cap", h.stack.buffer_memory());
    }
    let c = h.stack.counters().clone();
    let used = h.stack.buffer_memory();
    let live = live_heap::live() as usize - base;
    println!(
        "after the out-of-order flood: rings {used} B, heap {live} B, overhead/conn {per_conn_overhead} B, \
         ofo_pruned {} B, refusals {}",
        c.ofo_pruned, c.mem_pressure
    );
    // Out-of-order data may only fill the rings up to the pressure mark (3/4 of the cap).
    assert!(used <= CAP / 4 * 3, "rings {used}");
    assert!(c.ofo_pruned > 0 && c.mem_pressure > 0, "the cap was never reached: {c:?}");
    // Without the cap the rings alone would need 10,000 x 64 KiB = 625 MiB.
    assert!(live <= CAP + CONNS as usize * per_conn_overhead + (8 << 20), "heap {live} B");

    // Phase 2: the sweep under pressure prunes the out-of-order data first.
    h.advance(Duration::from_millis(1100));
    let pruned = h.stack.counters().ofo_pruned;
    assert!(pruned > c.ofo_pruned, "nothing pruned");
    assert!(h.stack.buffer_memory() < CAP / 4, "rings after pruning {}", h.stack.buffer_memory());

    // Phase 3: the connections still work: each peer sends what we have not acknowledged
    // (as it retransmits what was pruned), up to the edge we advertised, until the
    // application has read its whole window.
    let mut buf = vec![0u8; window];
    for (k, i) in (0..peers.len()).enumerate() {
        let (port, iss, conn) = (peers[i].port, peers[i].iss, peers[i].conn);
        let mut got = Vec::new();
        for _round in 0..100 {
            let from = peers[i].acked.wrapping_sub(PEER_ISS + 1) as usize;
            let to = (peers[i].edge.wrapping_sub(PEER_ISS + 1) as usize).min(window);
            let mut off = from;
            while off < to {
                let end = (off + SEG).min(to);
                let seq = PEER_ISS + 1 + off as u32;
                h.send(Seg::new(ACK, seq, iss + 1).data(&data[off..end]).from(addr(port)));
                off = end;
            }
            drain(&mut h, &mut peers, &by_port);
            while let Ok(n) = h.stack.recv(conn, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            drain(&mut h, &mut peers, &by_port);
            assert!(h.stack.buffer_memory() <= CAP);
            if got.len() == window {
                break;
            }
        }
        assert_eq!(got.len(), window, "connection {i} delivered {} bytes", got.len());
        assert!(got == data, "connection {i} delivered wrong bytes");
        if k % 200 == 199 {
            // Idle rings go back to the allocator on the sweep.
            h.advance(Duration::from_millis(1100));
        }
    }
    h.advance(Duration::from_millis(1100));
    h.advance(Duration::from_millis(1100));
    assert_eq!(h.stack.buffer_memory(), 0, "idle rings are all released");
    println!("after reading everything: heap {} B", live_heap::live() as usize - base);
}
