//! Issue 9, bounded memory: a connection closed by any path (RST, ABORT, timeout, CLOSE)
//! frees its send ring, out-of-order data and SACK scoreboard at once; unread in-order data
//! stays for a user who still holds the handle, and its ring goes once read.

mod common;
use common::*;

/// An established connection holding unsent/unacknowledged data, unread data and
/// out-of-order data.
fn loaded() -> H {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    h.write(&payload(3000));
    h.drain();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(b"unread"));
    h.send(Seg::new(ACK, h.peer(100), h.our(0)).data(b"out of order"));
    h.drain();
    assert!(h.stack.buffer_memory() > 0);
    h
}

#[test]
fn rst_frees_buffers_but_keeps_unread_data() {
    let mut h = loaded();
    // RFC 9293 §3.10.7.4 second: an exact RST closes the connection.
    h.send(Seg::new(RST, h.peer(6), 0));
    assert_eq!(h.state(), Some(State::Closed));
    // Only the receive ring, holding the 6 unread bytes, is left.
    assert_eq!(h.stack.buffer_memory(), 4096);
    assert_eq!(h.read_all(), b"unread");
    assert_eq!(h.stack.buffer_memory(), 0, "the drained ring goes at once");
}

#[test]
fn abort_frees_everything() {
    let mut h = loaded();
    let c = h.c();
    h.stack.abort(c);
    assert!(h.drain().iter().any(|o| o.flags.rst()), "ABORT sends a RST");
    assert_eq!(h.stack.buffer_memory(), 0);
    assert_eq!(h.stack.connection_count(), 0);
}

#[test]
fn retransmission_timeout_frees_the_send_ring() {
    let mut h = loaded();
    let c = h.c();
    h.stack.set_data_retries(c, 1).unwrap();
    h.read_all();
    for _ in 0..4 {
        if h.state() == Some(State::Closed) {
            break;
        }
        h.fire_timer();
        h.drain();
    }
    assert_eq!(h.state(), Some(State::Closed));
    assert_eq!(h.stack.buffer_memory(), 0);
}
