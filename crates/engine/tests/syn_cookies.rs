//! SYN queue and SYN cookies (RFC 4987 §3.3, §3.6), segment by segment on virtual time.
mod common;
use common::*;
use utcp_engine::SynCookies;

/// Options on, as Linux offers them: window scale, SACK, timestamps.
fn cookie_config(mode: SynCookies, syn_queue_len: usize) -> Config {
    base_config()
        .with_window_scale(true)
        .with_sack(true)
        .with_timestamps(true)
        .with_syn_cookies(mode)
        .with_syn_queue_len(syn_queue_len)
}

fn from_port(p: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(REMOTE_IP), p)
}

/// The window-scale shift we offer with a 64000-byte buffer.
const OUR_WSCALE: u8 = 0;

/// RFC 4987 §3.6: with the SYN queue full, the SYN-ACK carries a cookie: no TCB, the
/// options the SYN offered ride in the low bits of TSval, and the ACK that returns the
/// cookie creates an ESTABLISHED connection with the MSS rounded down to the cookie
/// table (1400 → 1300), the peer's window scale and SACK.
#[test]
fn cookie_when_syn_queue_full_and_ack_establishes() {
    let mut h = H::new(cookie_config(SynCookies::OnOverflow, 1));
    let l = h.listen();
    // A fills the one-entry SYN queue with a real SYN-RECEIVED TCB.
    h.send(Seg::new(SYN, 7000, 0).from(from_port(41000)).mss(MSS));
    let a = h.recv().expect("SYN-ACK for A");
    assert_eq!((a.flags, a.ack), (SYN | ACK, 7001));
    assert_eq!(h.stack.connection_count(), 1);
    // B gets a cookie.
    let syn_opts = TcpOptions { mss: Some(1400), ..full_syn_opts(7, 5000) };
    h.send(Seg::new(SYN, PEER_ISS, 0).opts(syn_opts));
    let b = h.recv().expect("cookie SYN-ACK");
    assert_eq!((b.flags, b.ack, b.dst), (SYN | ACK, PEER_ISS + 1, remote_addr()));
    let (tsval, tsecr) = b.options.timestamps.expect("timestamps on the cookie SYN-ACK");
    assert_eq!(tsecr, 5000);
    assert_eq!(tsval & 0x3f, 7 | 0x10, "wscale 7 and SACK-permitted in TSval's low bits");
    assert_eq!(b.options.mss, Some(MSS));
    assert_eq!(b.options.window_scale, Some(OUR_WSCALE));
    assert!(b.options.sack_permitted);
    assert_eq!(b.window, WIN);
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 1, "a cookie keeps no state");
    assert_eq!(h.stack.counters().syncookies_sent, 1);
    // The ACK returns the cookie.
    h.iss = b.seq;
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).ts(5001, tsval).win(1000));
    h.expect_nothing();
    assert_eq!(h.stack.counters().syncookies_recv, 1);
    let (c, peer) = h.stack.accept(l).expect("the cookie connection is in the accept queue");
    assert_eq!(peer, remote_addr());
    h.conn = Some(c);
    let st = h.stack.status(c).unwrap();
    assert_eq!(st.state, State::Established);
    assert_eq!(st.mss, 1300, "MSS decoded from the cookie table");
    assert_eq!((st.snd_wscale, st.rcv_wscale), (7, OUR_WSCALE));
    assert_eq!(st.options, 0b111, "timestamps, SACK and window scale in use");
    assert_eq!(st.snd_wnd, 1000 << 7, "the ACK's window is scaled by the decoded shift");
    // Data flows both ways with the decoded options.
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).ts(5002, tsval).data(b"hello"));
    let o = h.expect(ACK, h.our(0), h.peer(5));
    assert_eq!(o.options.timestamps.map(|t| t.1), Some(5002));
    assert!(o.options.timestamps.unwrap().0.wrapping_sub(tsval) < 1 << 31, "TSval never goes back");
    assert_eq!(h.read_all(), b"hello");
    h.write(b"world");
    let o = h.expect(ACK | PSH, h.our(0), h.peer(5)).data(b"world");
    assert_eq!(o.options.timestamps.map(|t| t.1), Some(5002));
    // A is untouched and still completes normally.
    h.send(Seg::new(ACK, 7001, a.seq.wrapping_add(1)).from(from_port(41000)));
    assert!(h.stack.accept(l).is_ok());
}

/// Without timestamps a cookie cannot carry window scale or SACK: the SYN-ACK offers
/// only the MSS, and the connection runs without them (as Linux's cookies do).
#[test]
fn cookie_without_timestamps_offers_only_mss() {
    let mut h = H::new(cookie_config(SynCookies::Always, 1024));
    let l = h.listen();
    let syn_opts = TcpOptions { timestamps: None, ..full_syn_opts(7, 0) };
    h.send(Seg::new(SYN, PEER_ISS, 0).opts(syn_opts));
    let b = h.recv().expect("cookie SYN-ACK").opts(mss_opts(MSS)).win(WIN);
    assert_eq!(h.stack.connection_count(), 0, "Always: not even the first SYN is queued");
    h.iss = b.seq;
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    let (c, _) = h.stack.accept(l).unwrap();
    let st = h.stack.status(c).unwrap();
    assert_eq!((st.mss, st.options, st.snd_wscale), (1460, 0, 0));
}

/// A forged cookie (wrong SEG.ACK, or wrong SEG.SEQ for the SYN it answered) and a cookie
/// older than two periods create nothing: the ACK gets the RFC 9293 §3.10.7.2 LISTEN
/// answer <SEQ=SEG.ACK><CTL=RST> and counts SyncookiesFailed.
#[test]
fn forged_or_old_cookie_ack_is_refused() {
    let mut h = H::new(cookie_config(SynCookies::Always, 1024));
    let l = h.listen();
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(MSS));
    let b = h.recv().expect("cookie SYN-ACK");
    h.iss = b.seq;
    for (seq, ack) in [(h.peer(0), h.our(1)), (h.peer(0), h.our(0) ^ 0x8000_0000), (h.peer(1), h.our(0))] {
        h.send(Seg::new(ACK, seq, ack));
        h.expect(RST, ack, 0);
    }
    assert_eq!(h.stack.counters().syncookies_failed, 3);
    assert_eq!(h.stack.counters().dropped(DropReason::BadCookie), 3);
    // The right cookie, too late: 2 periods of 64 s.
    h.advance(Duration::from_secs(130));
    h.drain();
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    h.expect(RST, h.our(0), 0);
    assert_eq!(h.stack.counters().syncookies_failed, 4);
    assert_eq!(h.stack.counters().syncookies_recv, 0);
    assert_eq!(h.stack.connection_count(), 0);
    assert!(h.stack.accept(l).is_err());
}

/// The right cookie within its age completes (one period later).
#[test]
fn cookie_valid_for_one_more_period() {
    let mut h = H::new(cookie_config(SynCookies::Always, 1024));
    let l = h.listen();
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(MSS));
    h.iss = h.recv().expect("cookie SYN-ACK").seq;
    h.advance(Duration::from_secs(64));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    h.expect_nothing();
    assert!(h.stack.accept(l).is_ok());
}

/// OnOverflow: a listener that never sent a cookie does not check ACKs for cookies; a
/// stray ACK draws the plain RFC 9293 RST and counts no cookie failure.
#[test]
fn no_cookie_check_without_recent_overflow() {
    let mut h = H::new(cookie_config(SynCookies::OnOverflow, 1024));
    h.listen();
    h.send(Seg::new(ACK, 5000, 7000));
    h.expect(RST, 7000, 0);
    assert_eq!(h.stack.counters().syncookies_failed, 0);
    assert_eq!(h.stack.counters().dropped(DropReason::BadAck), 1);
}

/// A valid cookie ACK that finds the accept queue full is dropped silently and counted
/// (ListenOverflows), as Linux does; SYNs are dropped while the accept queue is full.
#[test]
fn cookie_ack_with_full_accept_queue_is_dropped() {
    let mut h = H::new(cookie_config(SynCookies::Always, 1024));
    let l = h.stack.listen(local_addr(), 1).unwrap();
    h.listener = Some(l);
    h.send(Seg::new(SYN, 1000, 0).from(from_port(41000)));
    let one = h.recv().unwrap();
    h.send(Seg::new(SYN, 2000, 0).from(from_port(41001)));
    let two = h.recv().unwrap();
    h.send(Seg::new(ACK, 1001, one.seq.wrapping_add(1)).from(from_port(41000)));
    assert_eq!(h.stack.accept_queue_len(l), 1);
    h.send(Seg::new(ACK, 2001, two.seq.wrapping_add(1)).from(from_port(41001)));
    h.expect_nothing();
    assert_eq!(h.stack.accept_queue_len(l), 1);
    assert_eq!(h.stack.counters().listen_overflows, 1);
    h.send(Seg::new(SYN, 3000, 0).from(from_port(41002)));
    h.expect_nothing();
    assert_eq!(h.stack.counters().listen_overflows, 2);
    assert_eq!(h.stack.counters().listen_drops, 2);
    assert_eq!(h.stack.connection_count(), 1);
}

/// A flood of 10k SYNs from spoofed random sources: the SYN queue stays at its bound
/// (min(backlog, syn_queue_len)), pending cookie SYN-ACKs stay under their cap even if the
/// driver never polls, and a legitimate handshake still completes during the flood.
#[test]
fn syn_flood_of_10k_is_bounded_and_legitimate_handshake_completes() {
    let mut h = H::new(cookie_config(SynCookies::OnOverflow, 1024));
    let l = h.stack.listen(local_addr(), 128).unwrap();
    h.listener = Some(l);
    let mut x: u32 = 0x1234_5678;
    let mut spoof = |h: &mut H| {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let src = Ipv4Addr::new(10, 64 + (x >> 26) as u8, (x >> 16) as u8, (x >> 8) as u8 | 1);
        let port = 1024 + (x % 60000) as u16;
        h.send(Seg::new(SYN, x, 0).mss(MSS).from(SocketAddr::new(IpAddr::V4(src), port)));
    };
    // Half of the flood with no output polled at all.
    for _ in 0..5000 {
        spoof(&mut h);
    }
    assert_eq!(h.stack.connection_count(), 128, "SYN queue at its bound");
    assert!(h.stack.pending_cookie_synacks() <= 1024);
    // The other half while the driver keeps up, with one legitimate handshake inside.
    for i in 0..5000 {
        spoof(&mut h);
        h.drain();
        if i == 2500 {
            h.send(Seg::new(SYN, PEER_ISS, 0).mss(MSS));
            let o = h.recv().expect("cookie SYN-ACK for the legitimate client");
            assert_eq!((o.flags, o.dst, o.ack), (SYN | ACK, remote_addr(), PEER_ISS + 1));
            h.iss = o.seq;
            h.send(Seg::new(ACK, h.peer(0), h.our(0)));
        }
    }
    assert_eq!(h.stack.connection_count(), 129, "128 half-open + the legitimate one");
    let c = h.stack.counters();
    assert_eq!(c.syncookies_recv, 1);
    assert_eq!(c.syncookies_sent + c.listen_drops, 10_001 - 128);
    assert!(c.syncookies_sent >= 5000);
    let (_, peer) = h.stack.accept(l).expect("the legitimate connection");
    assert_eq!(peer, remote_addr());
    // The half-open entries time out (SYN-ACK retries) and the queue drains.
    for _ in 0..30 {
        h.advance(Duration::from_secs(20));
        h.drain();
    }
    assert_eq!(h.stack.connection_count(), 1);
}

/// The SYN queue has its own bound, min(backlog, `Config::syn_queue_len`), separate from
/// the accept queue: with `Never`, SYNs beyond it are dropped and counted (ListenDrops)
/// while established connections still fill the accept queue up to the backlog.
#[test]
fn syn_queue_bound_is_separate_from_the_accept_queue() {
    let mut h = H::new(cookie_config(SynCookies::Never, 2));
    let l = h.stack.listen(local_addr(), 16).unwrap();
    h.listener = Some(l);
    let mut synacks = Vec::new();
    for p in 0..3u16 {
        h.send(Seg::new(SYN, 1000 * p as u32, 0).from(from_port(41000 + p)));
        synacks.extend(h.recv());
    }
    assert_eq!(synacks.len(), 2, "the third SYN finds the SYN queue full");
    assert_eq!(h.stack.counters().listen_drops, 1);
    assert_eq!(h.stack.counters().listen_overflows, 0, "the accept queue is not full");
    assert_eq!(h.stack.counters().dropped(DropReason::ListenOverflow), 1);
    // Both complete; the SYN queue empties into the accept queue and takes SYNs again.
    for (p, s) in synacks.iter().enumerate() {
        h.send(Seg::new(ACK, 1000 * p as u32 + 1, s.seq.wrapping_add(1)).from(from_port(41000 + p as u16)));
    }
    assert_eq!(h.stack.accept_queue_len(l), 2);
    h.send(Seg::new(SYN, 2000, 0).from(from_port(41002)));
    assert_eq!(h.recv().map(|o| (o.flags, o.ack)), Some((SYN | ACK, 2001)));
}
