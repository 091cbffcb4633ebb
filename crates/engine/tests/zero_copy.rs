//! Zero-copy SEND and RECEIVE (`Stack::send_with`, `Stack::recv_with`, smoltcp's closure
//! model): the bytes go straight into / out of the connection's rings, and the segments
//! on the wire are exactly those of `send` / `recv` (RFC 9293 §3.10.2, §3.10.3).

mod common;
use common::*;
use utcp_engine::{RecvError, SendError};

/// `send_with` queues what the closure wrote; the segment is the one `send` produces.
#[test]
fn send_with_sends_what_the_closure_wrote() {
    let mut h = H::established(base_config());
    let c = h.c();
    let n = h.stack.send_with(c, |free| {
        assert!(free.len() >= 5);
        free[..5].copy_from_slice(b"hello");
        5
    });
    assert_eq!(n, Ok(5));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).data(b"hello");
    h.expect_nothing();

    let mut twin = H::established(base_config());
    let tc = twin.c();
    assert_eq!(twin.stack.send(tc, b"hello"), Ok(5));
    twin.expect(ACK | PSH, twin.our(0), twin.peer(0)).data(b"hello");
    assert_eq!(h.iss, twin.iss, "same config, same ISS: the two runs are comparable");
}

/// A full send ring is `WouldBlock` without calling the closure; a closure that claims
/// more than it was offered is clipped to the space.
#[test]
fn send_with_full_buffer_would_block() {
    let mut h = H::established(base_config().with_send_buffer(1000));
    let c = h.c();
    assert_eq!(h.stack.send_with(c, |free| free.len() + 7), Ok(1000));
    let r = h.stack.send_with(c, |_| panic!("no space to offer"));
    assert_eq!(r, Err(SendError::WouldBlock));
    h.expect(ACK | PSH, h.our(0), h.peer(0)).len(1000);
    h.expect_nothing();
    // The ACK frees the ring: the closure is offered all of it again.
    h.send(Seg::new(ACK, h.peer(0), h.our(1000)));
    assert_eq!(h.stack.send_with(c, |free| free.len()), Ok(1000));
}

/// After shutdown(Write) the closure is not called: "connection closing".
#[test]
fn send_with_after_shutdown_is_closing() {
    let mut h = H::established(base_config());
    let c = h.c();
    h.stack.shutdown(c, Shutdown::Write).unwrap();
    h.expect(FIN | ACK, h.our(0), h.peer(0));
    let r = h.stack.send_with(c, |_| panic!("closing"));
    assert_eq!(r, Err(SendError::Closing));
    h.expect_nothing();
}

/// `recv_with` consumes only what the closure says; the rest stays for `recv`.
#[test]
fn recv_with_consumes_what_the_closure_took() {
    let mut h = H::established(base_config());
    let c = h.c();
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"abcdef"));
    h.expect(ACK, h.our(0), h.peer(6));
    let mut seen = Vec::new();
    let r = h.stack.recv_with(c, |data| {
        seen.extend_from_slice(data);
        4
    });
    assert_eq!((r, seen.as_slice()), (Ok(4), &b"abcdef"[..]));
    assert_eq!(h.read_all(), b"ef");
    assert_eq!(h.stack.recv_with(c, |_| panic!("nothing to see")), Err(RecvError::WouldBlock));
}

/// Fill a 4-segment receive buffer (window 0), then read it with `read`: returns the
/// segments the stack sends afterwards (the window update).
fn window_update_after(read: impl FnOnce(&mut Stack, ConnId) -> usize) -> Vec<Out> {
    let buf = 4 * MSS as usize;
    let mut h = H::established(base_config().with_recv_buffer(buf));
    let c = h.c();
    for i in 0..4u32 {
        let m = MSS as u32;
        h.send(Seg::new(ACK, h.peer(i * m), h.our(0)).data(&payload(MSS as usize)));
        let w = (buf - (i as usize + 1) * MSS as usize) as u16;
        h.expect(ACK, h.our(0), h.peer((i + 1) * m)).win(w);
    }
    assert_eq!(read(&mut h.stack, c), buf);
    h.drain()
}

/// Reading the full buffer with `recv_with` opens the window exactly as `recv` does:
/// one window update advertising the whole buffer (RFC 9293 §3.8.6.2.2).
#[test]
fn recv_with_opens_the_window_like_recv() {
    let with = window_update_after(|s, c| {
        let mut n = 0;
        while let Ok(k @ 1..) = s.recv_with(c, |d| d.len()) {
            n += k;
        }
        n
    });
    let plain = window_update_after(|s, c| {
        let mut b = vec![0u8; 65536];
        s.recv(c, &mut b).unwrap()
    });
    assert_eq!(with.len(), 1, "one window update: {with:?}");
    assert_eq!(with[0].flags, ACK);
    assert_eq!(with[0].window, 4 * MSS);
    assert_eq!(with, plain);
}

/// At end of stream the closure is not called and the result is `Ok(0)`.
#[test]
fn recv_with_at_end_of_stream() {
    let mut h = H::established(base_config());
    let c = h.c();
    h.send(Seg::new(FIN | ACK, h.peer(0), h.our(0)));
    h.expect(ACK, h.our(0), h.peer(1));
    assert_eq!(h.stack.recv_with(c, |_| panic!("end of stream")), Ok(0));
}
