//! Host policies where FreeBSD and Linux differ from the RFC text (issue 10): each is a
//! `Config` knob, checked here segment by segment on virtual time.

mod common;
use common::*;

fn counters_drop(h: &H, r: DropReason) -> u64 {
    h.stack.counters().dropped(r)
}

/// RFC 9293 §3.10.7.2: an ACK (here a SYN-ACK) in LISTEN draws <SEQ=SEG.ACK><CTL=RST>.
#[test]
fn listen_answers_syn_ack_with_rst_by_default() {
    let mut h = H::new(base_config());
    h.listen();
    h.send(Seg::new(SYN | ACK, PEER_ISS, 4242));
    let o = h.expect(RST, 4242, 0);
    assert!(o.payload.is_empty());
    h.expect_nothing();
}

/// `Config::listen_drop_syn_ack` (FreeBSD): the SYN-ACK is dropped and counted; the
/// listener still accepts the next SYN.
#[test]
fn listen_drops_syn_ack_silently_when_configured() {
    let mut h = H::new(base_config().with_listen_drop_syn_ack(true));
    h.listen();
    let before = counters_drop(&h, DropReason::BadAck);
    h.send(Seg::new(SYN | ACK, PEER_ISS, 4242).data(b"hi"));
    h.expect_nothing();
    assert_eq!(counters_drop(&h, DropReason::BadAck), before + 1);
    // A plain ACK still draws the RFC's RST.
    h.send(Seg::new(ACK, PEER_ISS, 4242));
    h.expect(RST, 4242, 0);
    h.send(Seg::new(SYN, PEER_ISS, 0).mss(MSS));
    let o = h.recv().expect("SYN-ACK");
    assert_eq!(o.flags, SYN | ACK);
}

/// `Config::syn_rexmit_drop_options = Some(3)` (FreeBSD's rexmit_drop_options): the first
/// two SYN retransmissions keep every option, the third and later carry the MSS only.
#[test]
fn syn_retransmissions_drop_options_from_the_third() {
    let cfg = base_config()
        .with_window_scale(true)
        .with_window_scale_shift(Some(6))
        .with_sack(true)
        .with_timestamps(true)
        .with_syn_rexmit_drop_options(Some(3));
    let mut h = H::new(cfg);
    let syn = h.open_to_syn_sent();
    assert!(syn.options.timestamps.is_some() && syn.options.sack_permitted);
    for n in 1..=4 {
        h.fire_timer();
        let o = h.expect(SYN, h.iss, 0);
        if n < 3 {
            assert_eq!(o.options.window_scale, Some(6), "retransmission {n}: {o}");
            assert!(o.options.sack_permitted && o.options.timestamps.is_some(), "retransmission {n}: {o}");
        } else {
            assert_eq!(o.opts(mss_opts(MSS)).seq, h.iss, "retransmission {n}");
        }
    }
    // A SYN-ACK offering everything now gets none of it (RFC 7323 §2.2, §3.2; RFC 2018 §2):
    // our ACK carries no timestamps and the window is not scaled.
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).opts(full_syn_opts(7, 500)));
    let o = h.expect(ACK, h.our(0), h.peer(0)).no_opts();
    assert_eq!(o.window, WIN);
    let st = h.stack.status(h.c()).unwrap();
    assert_eq!(st.options, 0, "no option is in use");
}

/// Without the knob every SYN retransmission keeps its options.
#[test]
fn syn_retransmissions_keep_options_by_default() {
    let cfg = base_config().with_timestamps(true).with_sack(true);
    let mut h = H::new(cfg);
    h.open_to_syn_sent();
    for _ in 0..4 {
        h.fire_timer();
        let o = h.expect(SYN, h.iss, 0);
        assert!(o.options.timestamps.is_some() && o.options.sack_permitted, "{o}");
    }
}

fn established_with_ts(cfg: Config) -> (H, u32) {
    let mut h = H::new(cfg.with_timestamps(true));
    let synack = h.establish_passive(TcpOptions { mss: Some(MSS), timestamps: Some((100, 0)), ..opts() });
    let our_ts = synack.options.timestamps.expect("TS in use").0;
    (h, our_ts)
}

/// `Config::ts_missing_drop` (RFC 7323 §3.2 SHOULD, FreeBSD's tolerate_missing_ts=0): once
/// timestamps are in use, data without TSopt is dropped silently and counted; a RST
/// without TSopt is still processed.
#[test]
fn segment_without_timestamp_is_dropped_when_configured() {
    let (mut h, our_ts) = established_with_ts(base_config().with_ts_missing_drop(true));
    let before = counters_drop(&h, DropReason::Paws);
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"abc"));
    h.expect_nothing();
    assert_eq!(counters_drop(&h, DropReason::Paws), before + 1);
    assert!(h.read_all().is_empty());
    // The same data with a timestamp is accepted.
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"abc").ts(102, our_ts));
    let o = h.expect(ACK, h.our(0), h.peer(3));
    assert!(o.options.timestamps.is_some());
    assert_eq!(h.read_all(), b"abc");
    h.send(Seg::new(RST, h.peer(3), 0));
    assert_eq!(h.state(), Some(State::Closed));
}

/// By default (Linux, FreeBSD's default) a segment without TSopt is accepted.
#[test]
fn segment_without_timestamp_is_accepted_by_default() {
    let (mut h, _) = established_with_ts(base_config());
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"abc"));
    h.expect(ACK, h.our(0), h.peer(3));
    assert_eq!(h.read_all(), b"abc");
}

/// `Config::window_scale_space` (Linux's tcp_select_initial_window): the shift comes from
/// ilog2(max(space, buffer)) − 15, 8 for tcp_rmem[2] = 15 MiB, where the buffer alone
/// (540000 bytes) gives 4.
#[test]
fn window_scale_derived_from_linux_buffer_space() {
    let base = base_config().with_window_scale(true).with_recv_buffer(540_000);
    let mut h = H::new(base.clone());
    assert_eq!(h.open_to_syn_sent().options.window_scale, Some(4));
    let mut h = H::new(base.with_window_scale_space(Some(15_728_640)));
    assert_eq!(h.open_to_syn_sent().options.window_scale, Some(8));
}

fn quickack_conn(quick: u32) -> H {
    let cfg = base_config().with_delayed_ack(Some(Duration::from_millis(40))).with_quickack_segments(quick);
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    h
}

/// `Config::quickack_segments` = 16 (Linux): the first 16 data segments are acknowledged at
/// once, the 17th waits for the delayed-ACK timer; after an idle period longer than the
/// RTO quick-ACK mode starts again.
#[test]
fn quickack_acknowledges_the_first_segments_at_once() {
    let mut h = quickack_conn(16);
    for i in 0..16u32 {
        h.send(Seg::new(ACK, h.peer(i * 100), h.our(0)).data(&[7u8; 100]));
        h.expect(ACK, h.our(0), h.peer((i + 1) * 100));
    }
    h.send(Seg::new(ACK, h.peer(1600), h.our(0)).data(&[7u8; 100]));
    h.expect_nothing();
    h.advance(Duration::from_millis(40));
    h.expect(ACK, h.our(0), h.peer(1700));
    h.read_all();
    h.advance(Duration::from_secs(5));
    h.drain();
    h.send(Seg::new(ACK, h.peer(1700), h.our(0)).data(&[7u8; 100]));
    h.expect(ACK, h.our(0), h.peer(1800));
}

/// Without quick-ACK the first small segment already waits for the delayed-ACK timer.
#[test]
fn without_quickack_the_first_segment_is_delayed() {
    let mut h = quickack_conn(0);
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(&[7u8; 100]));
    h.expect_nothing();
    h.advance(Duration::from_millis(40));
    h.expect(ACK, h.our(0), h.peer(100));
}

/// Sends a window of `n` full segments and acknowledges them all.
fn send_and_ack(h: &mut H, at: u32, n: u32) {
    h.write(&payload((n * MSS as u32) as usize));
    let sent = h.drain();
    assert_eq!(sent.len() as u32, n, "{sent:?}");
    h.send(Seg::new(ACK, h.peer(0), h.our(at + n * MSS as u32)).win(60000));
}

/// `Config::slow_start_after_idle` (RFC 5681 §4.1, Linux's tcp_slow_start_after_idle):
/// on, a sender idle for more than an RTO restarts from the initial window (10 segments);
/// off (the `linux` profile), it keeps the grown window.
#[test]
fn slow_start_after_idle_is_a_knob() {
    // One cumulative ACK of 10 segments grows cwnd by one SMSS (RFC 5681 §3.1): 11.
    for (ssai, want) in [(true, 10u32), (false, 11)] {
        let cfg = base_config().with_slow_start_after_idle(ssai);
        let mut h = H::new(cfg);
        h.establish_passive(mss_opts(MSS));
        h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(60000));
        send_and_ack(&mut h, 0, 10);
        h.advance(Duration::from_secs(10));
        h.drain();
        h.write(&payload(30 * MSS as usize));
        let sent = h.drain().iter().filter(|o| !o.payload.is_empty()).count() as u32;
        assert_eq!(sent, want, "slow_start_after_idle = {ssai}");
    }
}

/// USER TIMEOUT (RFC 9293 §3.8.3, RFC 5482; `Stack::set_user_timeout`): data unacknowledged
/// for 1 s aborts the connection at 1 s — the backed-off RTO (200 ms, 400 ms, then 800 ms)
/// is cut short at the deadline — although R2 would allow 15 retransmissions.
#[test]
fn user_timeout_aborts_unacknowledged_data_on_time() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    let c = h.c();
    h.stack.set_user_timeout(c, Some(Duration::from_millis(1000))).unwrap();
    let start = h.now;
    h.write(b"hello");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    assert_eq!(h.fire_timer(), Duration::from_millis(200));
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    assert_eq!(h.fire_timer(), Duration::from_millis(400));
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    // The next RTO would be 800 ms later (1.4 s); the user timeout cuts it to 1 s.
    assert_eq!(h.fire_timer(), Duration::from_millis(400));
    assert_eq!(h.now - start, Duration::from_millis(1000));
    // Like R2 (RFC 1122 §4.2.3.5), the timeout closes without a RST (Linux's tcp_write_err).
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Closed));
    assert!(h.events().iter().any(|e| matches!(e, Event::Closed(_, CloseReason::TimedOut))));
}

/// Forward progress restarts the user-timeout clock: data stays outstanding for 3.6 s in
/// all, but each partial ACK comes within the 1.5 s timeout.
#[test]
fn user_timeout_restarts_on_progress() {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    let c = h.c();
    h.stack.set_user_timeout(c, Some(Duration::from_millis(1500))).unwrap();
    h.write(b"0123456789");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    for i in 1..=4u32 {
        h.advance(Duration::from_millis(900));
        h.drain();
        h.send(Seg::new(ACK, h.peer(0), h.our(i)));
        assert_eq!(h.state(), Some(State::Established), "after {i} partial ACKs");
    }
    // No progress for 1.5 s: the connection times out.
    h.advance(Duration::from_millis(1600));
    assert_eq!(h.state(), Some(State::Closed));
}

/// MUST-16 (RFC 9293 §3.7.1): the effective send MSS is min(the peer's MSS, MTU − 40);
/// `Config::mss` (Linux's route advmss) only changes the MSS we advertise.
#[test]
fn advertised_mss_override_does_not_cap_sending() {
    let mut h = H::new(base_config().with_mss(Some(900)));
    let synack = h.establish_passive(mss_opts(MSS));
    assert_eq!(synack.options.mss, Some(900));
    h.write(&payload(2000));
    h.expect(ACK, h.our(0), h.peer(0)).len(MSS as usize);
    h.expect(ACK | PSH, h.our(MSS as u32), h.peer(0)).len(2000 - MSS as usize);
    let mut h = H::new(base_config().with_mtu(1280));
    h.establish_passive(mss_opts(MSS));
    h.write(&payload(2000));
    h.expect(ACK, h.our(0), h.peer(0)).len(1240);
}

/// Sets up a connection whose advertised window (1000) is smaller than its free buffer
/// with nothing queued: 3000 of 4000 bytes received and read, the window update not yet
/// sent. Then a 1500-byte in-sequence segment arrives.
fn beyond_window(accept: bool) -> H {
    let cfg = base_config().with_recv_buffer(4000).with_accept_beyond_window_if_empty(accept);
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(&[1u8; 3000]));
    h.expect(ACK, h.our(0), h.peer(3000)).win(1000);
    assert_eq!(h.read_all().len(), 3000);
    h.send(Seg::new(ACK, h.peer(3000), h.our(0)).data(&[2u8; 1500]));
    h
}

/// RFC 9293 §3.10.7.4 by default: the text beyond the window is trimmed.
#[test]
fn segment_beyond_window_is_trimmed_by_default() {
    let mut h = beyond_window(false);
    let acks = h.drain();
    assert_eq!(acks.last().map(|o| o.ack), Some(h.peer(4000)), "{acks:?}");
    assert_eq!(h.read_all().len(), 1000);
}

/// `Config::accept_beyond_window_if_empty` (Linux; checked on the live kernel with
/// tools/linux_probe.py's setup: window 1152, a 1400-byte segment accepted whole when the
/// queue is empty): the whole segment is kept.
#[test]
fn segment_beyond_window_is_accepted_when_the_queue_is_empty() {
    let mut h = beyond_window(true);
    let acks = h.drain();
    assert_eq!(acks.last().map(|o| o.ack), Some(h.peer(4500)), "{acks:?}");
    assert_eq!(h.read_all().len(), 1500);
}

/// With data waiting to be read, the rule does not apply: trimmed to the window.
#[test]
fn segment_beyond_window_is_trimmed_when_data_waits() {
    let cfg = base_config().with_recv_buffer(4000).with_accept_beyond_window_if_empty(true);
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(&[1u8; 3000]));
    h.expect(ACK, h.our(0), h.peer(3000)).win(1000);
    h.send(Seg::new(ACK, h.peer(3000), h.our(0)).data(&[2u8; 1500]));
    h.expect(ACK, h.our(0), h.peer(4000)).win(0);
    assert_eq!(h.read_all().len(), 4000);
}
