//! RFC 9293 Appendix B MUSTs that no other test file shows, one small test each.
//! docs/rfc9293.md maps every MUST to its code and test; keep the two in step.
//! Tests marked `#[ignore = "MUST-n not met: ..."]` assert the RFC behaviour the engine
//! does not have yet: run them with `cargo test --test rfc9293_musts -- --ignored`.

mod common;
use common::*;
use utcp_engine::wire::checksum;

fn established() -> H {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    h
}

/// `pkt` (an IPv4 packet with a 20-byte IP header and a TCP header without options) with
/// `opts` inserted as the TCP options area; lengths and both checksums fixed up.
fn with_raw_options(pkt: &[u8], opts: &[u8]) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0, "options area must be a multiple of 4 bytes");
    let mut p = Vec::with_capacity(pkt.len() + opts.len());
    p.extend_from_slice(&pkt[..40]);
    p.extend_from_slice(opts);
    p.extend_from_slice(&pkt[40..]);
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[10..12].fill(0);
    let ip_sum = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    p[32] = (((20 + opts.len()) / 4) as u8) << 4;
    let (src, dst) = ([p[12], p[13], p[14], p[15]], [p[16], p[17], p[18], p[19]]);
    let tcp = &mut p[20..];
    tcp[16..18].fill(0);
    let pseudo = checksum::pseudo_header_ipv4(src, dst, 6, tcp.len() as u16);
    let tcp_sum = checksum::finish(checksum::sum(tcp, pseudo));
    tcp[16..18].copy_from_slice(&tcp_sum.to_be_bytes());
    p
}

/// MUST-1 (§3.1): the window is an unsigned number. A 60000-byte window (above 2^15) lets
/// 50000 bytes fly at once (at least every full segment; whether the 360-byte tail waits
/// depends on the Nagle variant).
#[test]
fn must_1_window_field_is_unsigned() {
    let mut h = H::new(base_config().with_initial_window_segments(Some(100)));
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(60000));
    h.expect_nothing();
    h.write(&payload(50000));
    let sent: usize = h.drain().iter().map(|o| o.payload.len()).sum();
    assert!(sent > 32767, "{sent}");
    assert!(sent >= 50000 / MSS as usize * MSS as usize, "{sent}");
}

/// MUST-3 (§3.1): the receiver checks the checksum. A segment with one payload bit flipped
/// is dropped without an ACK; the same segment intact is accepted.
#[test]
fn must_3_bad_checksum_segment_is_dropped() {
    let mut h = established();
    let good = Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"hello").packet();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    h.send_raw(&bad);
    h.expect_nothing();
    assert_eq!(h.read(10).unwrap_err().kind(), ErrorKind::WouldBlock);
    assert_eq!(h.stack.counters().dropped(DropReason::BadTcpChecksum), 1);
    h.send_raw(&good);
    h.expect(ACK, h.our(0), h.peer(5));
    assert_eq!(h.read_all(), b"hello");
}

/// MUST-5, MUST-6 (§3.1): options may come in any segment, and an option we do not
/// implement (kind 253, RFC 4727 experimental) is skipped by its length without error.
#[test]
fn must_6_unknown_option_in_data_segment_is_ignored() {
    let mut h = established();
    let plain = Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"hello").packet();
    h.send_raw(&with_raw_options(&plain, &[253, 4, 0xab, 0xcd]));
    h.expect(ACK, h.our(0), h.peer(5));
    assert_eq!(h.read_all(), b"hello");
}

/// MUST-7 (§3.1): an illegal option length (zero) is handled: the segment is dropped and
/// counted, the connection carries on and takes the next good segment.
#[test]
fn must_7_illegal_option_length_drops_only_that_segment() {
    let mut h = established();
    let plain = Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"hello").packet();
    h.send_raw(&with_raw_options(&plain, &[30, 0, 0, 0]));
    h.expect_nothing();
    assert_eq!(h.stack.counters().dropped(DropReason::BadOption), 1);
    assert_eq!(h.state(), Some(State::Established));
    h.send_raw(&plain);
    h.expect(ACK, h.our(0), h.peer(5));
    assert_eq!(h.read_all(), b"hello");
}

/// MUST-64 (§3.2): options need not start on a word boundary. An MSS option at offset 1
/// (after a NOP) is understood: our segments are then at most 512 bytes.
#[test]
fn must_64_unaligned_mss_option_is_understood() {
    let mut h = H::new(base_config());
    h.listen();
    let syn = Seg::new(SYN, PEER_ISS, 0).packet();
    h.send_raw(&with_raw_options(&syn, &[1, 2, 4, 0x02, 0x00, 0, 0, 0]));
    let synack = h.recv().expect("SYN-ACK");
    assert_eq!(synack.flags, SYN | ACK);
    h.iss = synack.seq;
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    let (c, _) = h.stack.accept(h.listener.unwrap()).expect("accept");
    h.conn = Some(c);
    h.write(&payload(1500));
    let segs = h.drain();
    assert!(segs.iter().all(|o| o.payload.len() <= 512), "{segs:?}");
    assert_eq!(segs[0].payload.len(), 512);
}

/// MUST-65 (§3.2): the MSS option is sent on the SYN (MUST-14) and on no other segment.
#[test]
fn must_65_mss_option_only_on_syn() {
    let mut h = H::new(base_config());
    let synack = h.establish_passive(mss_opts(MSS));
    assert_eq!(synack.options.mss, Some(MSS));
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"req"));
    h.write(&payload(4000));
    let segs = h.drain();
    assert!(!segs.is_empty());
    assert!(segs.iter().all(|o| o.options.mss.is_none()), "{segs:?}");
}

/// MUST-16 (§3.7.1): every segment fits the effective send MSS, the options it carries
/// included. Here data segments carry timestamps and a SACK block (a hole in the data we
/// receive): payload plus options must stay within the peer's MSS (packet within the MTU).
#[test]
fn must_16_options_on_data_segments_stay_within_mss() {
    let cfg = base_config().with_sack(true).with_timestamps(true);
    let mut h = H::new(cfg);
    let syn_opts = TcpOptions { mss: Some(MSS), sack_permitted: true, timestamps: Some((100, 0)), ..opts() };
    let synack = h.establish_passive(syn_opts);
    let our_ts = synack.options.timestamps.map(|t| t.0).unwrap_or(0);
    // Peer data beyond a 100-byte hole: we SACK it from now on.
    h.send(Seg::new(ACK, h.peer(100), h.our(0)).data(b"later").ts(102, our_ts));
    let dup = h.expect(ACK, h.our(0), h.peer(0));
    assert_eq!(dup.sack_blocks().len(), 1);
    h.write(&payload(5000));
    let segs = h.drain();
    assert!(!segs.is_empty());
    for o in &segs {
        let opt_len = utcp_engine::wire::options::emitted_len(&o.options, OptionLayout::Linux);
        assert!(o.payload.len() + opt_len <= MSS as usize, "{o}: {} + {opt_len} > {MSS}", o.payload.len());
    }
}

/// MUST-34 (§3.8.6): robust against a shrinking window. The peer moves its right edge left
/// while 14600 bytes are in flight (usable window negative): nothing new is sent, nothing
/// breaks, and the transfer resumes when the window reopens.
#[test]
fn must_34_shrunk_window_sends_no_new_data() {
    let mut h = established();
    h.write(&payload(20000));
    let first: usize = h.drain().iter().map(|o| o.payload.len()).sum();
    assert_eq!(first, 14600, "initial window (RFC 6928)");
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).win(1000));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
    h.send(Seg::new(ACK, h.peer(0), h.our(14600)).win(30000));
    let o = h.recv().expect("data after the window reopened");
    assert_eq!(o.seq, h.our(14600));
}

/// MUST-66 (§3.4): RST (and URG) are processed even when our receive window is zero. The
/// window is full (nothing read), and a RST at RCV.NXT still resets the connection.
#[test]
fn must_66_rst_processed_with_zero_window() {
    let mut h = H::new(base_config().with_recv_buffer(1000));
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(1000)));
    h.expect(ACK, h.our(0), h.peer(1000)).win(0);
    h.send(Seg::new(RST, h.peer(1000), 0));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Closed));
    let c = h.c();
    assert!(h.events().contains(&Event::Closed(c, CloseReason::Reset)));
}

/// MUST-41 (§3.9.1.1): a passive OPEN that fails does not affect the existing listener.
#[test]
fn must_41_failed_passive_open_leaves_listener_alone() {
    let mut h = H::new(base_config());
    h.listen();
    assert_eq!(h.stack.listen(local_addr(), 4).unwrap_err().kind(), ErrorKind::AddrInUse);
    h.send(Seg::new(SYN, PEER_ISS, 0));
    let o = h.recv().expect("the first listener still answers");
    assert_eq!((o.flags, o.ack), (SYN | ACK, PEER_ISS + 1));
}

/// MUST-42 (§3.9.1.1): LISTEN on a port while a connection from that same local port is in
/// SYN-SENT.
#[test]
fn must_42_listen_while_same_port_is_in_syn_sent() {
    let mut h = H::new(base_config());
    let other = SocketAddr::new(IpAddr::V4(REMOTE_IP), 9);
    let c = h.stack.connect(h.now, local_addr(), other).expect("connect");
    assert_eq!(h.recv().expect("SYN").flags, SYN);
    h.listen();
    h.send(Seg::new(SYN, PEER_ISS, 0));
    let o = h.recv().expect("SYN-ACK from the listener");
    assert_eq!((o.flags, o.dst), (SYN | ACK, remote_addr()));
    assert_eq!(h.stack.state(c), Some(State::SynSent));
}

/// MUST-44, MUST-45 (§3.9.1.1): an active OPEN without a local address gets one chosen
/// before the SYN, and every later segment uses that same address.
#[test]
fn must_44_45_local_address_chosen_before_syn_and_kept() {
    let mut h = H::new(base_config());
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    let c = h.stack.connect(h.now, any, remote_addr()).expect("connect");
    h.conn = Some(c);
    let syn = h.recv().expect("SYN");
    assert_eq!(syn.src.ip(), IpAddr::V4(LOCAL_IP));
    h.iss = syn.seq;
    h.send(Seg::new(SYN | ACK, PEER_ISS, h.our(0)).to(syn.src));
    h.write(b"data");
    let segs = h.drain();
    assert!(!segs.is_empty());
    assert!(segs.iter().all(|o| o.src == syn.src), "{segs:?}");
    assert_eq!(h.stack.local_addr(c).unwrap(), syn.src);
}

/// MUST-46 (§3.9.1.1): an active OPEN to a broadcast or multicast address is an error.
#[test]
fn must_46_open_to_broadcast_or_multicast_is_rejected() {
    let mut h = H::new(base_config());
    for ip in [Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 1), Ipv4Addr::new(239, 1, 2, 3)] {
        let r = h.stack.connect(h.now, local_addr(), SocketAddr::new(IpAddr::V4(ip), 80));
        assert!(r.is_err(), "connect to {ip} accepted");
    }
    h.expect_nothing();
}

/// MUST-49 (§3.9.2): the TTL of what we send is configurable (default 64).
#[test]
fn must_49_ttl_is_configurable() {
    for (ttl, want) in [(None, 64u8), (Some(7u8), 7)] {
        let cfg = match ttl {
            Some(t) => base_config().with_ttl(t),
            None => base_config(),
        };
        let mut h = H::new(cfg);
        h.stack.connect(h.now, local_addr(), remote_addr()).expect("connect");
        let mut buf = [0u8; 1600];
        let n = h.stack.poll_transmit(h.now, &mut buf).expect("SYN");
        assert!(n >= 40);
        assert_eq!(buf[8], want, "IPv4 TTL byte");
    }
}

/// MUST-57, MUST-63 (§3.9.2.3): a SYN to a broadcast or multicast address, or from a
/// broadcast, multicast or unspecified source, is silently discarded: no reply, no TCB.
#[test]
fn must_57_63_syn_with_broadcast_or_multicast_address_is_dropped() {
    let mut h = H::new(base_config());
    h.listen();
    let bcast = SocketAddr::new(IpAddr::V4(Ipv4Addr::BROADCAST), LOCAL_PORT);
    let mcast_dst = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)), LOCAL_PORT);
    h.send(Seg::new(SYN, PEER_ISS, 0).to(bcast));
    h.send(Seg::new(SYN, PEER_ISS, 0).to(mcast_dst));
    for src in [Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 9), Ipv4Addr::UNSPECIFIED] {
        h.send(Seg::new(SYN, PEER_ISS, 0).from(SocketAddr::new(IpAddr::V4(src), REMOTE_PORT)));
    }
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
    // Each martian is counted by its reason (RFC 1122 §3.2.1.3).
    let c = h.stack.counters();
    assert_eq!(c.dropped(DropReason::MartianDstBroadcast), 1);
    assert_eq!(c.dropped(DropReason::MartianDstMulticast), 1);
    assert_eq!(c.dropped(DropReason::MartianSrcBroadcast), 1);
    assert_eq!(c.dropped(DropReason::MartianSrcMulticast), 1);
    assert_eq!(c.dropped(DropReason::MartianSrcUnspecified), 1);
}

/// MUST-58, MUST-59 (§3.10.7.4): segments that arrive together are all processed before
/// an ACK is sent, and they draw one ACK (even with delayed ACKs off).
#[test]
fn must_58_59_queued_segments_draw_one_ack() {
    let mut h = established();
    for k in 0..3u32 {
        h.send(Seg::new(ACK, h.peer(100 * k), h.our(0)).data(&payload(100)));
    }
    let acks = h.drain();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!((acks[0].flags, acks[0].ack), (ACK, h.peer(300)));
}

/// MUST-25, MUST-28 (§3.8.4): keep-alives are off by default; when turned on, the default
/// idle interval is at least two hours. An idle connection sends nothing for three hours.
#[test]
fn must_25_28_keepalive_off_by_default() {
    assert!(Config::default().keepalive.is_none());
    assert!(Keepalive::default().idle >= Duration::from_secs(2 * 3600));
    let mut h = established();
    assert_eq!(h.next_timer(), None, "no timer on an idle connection");
    h.advance(Duration::from_secs(3 * 3600));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
}

/// MUST-17 (§3.7.4): the application can turn the Nagle algorithm off on one connection.
/// With Nagle on, a small write waits while data is unacknowledged; TCP_NODELAY releases it.
#[test]
fn must_17_nagle_can_be_disabled_per_connection() {
    let mut h = established();
    h.write(b"a");
    h.expect(ACK | PSH, h.our(0), h.peer(0)).data(b"a");
    h.write(b"b");
    h.expect_nothing();
    h.stack.set_nodelay(h.c(), true).expect("set_nodelay");
    h.expect(ACK | PSH, h.our(1), h.peer(0)).data(b"b");
    h.write(b"c");
    h.expect(ACK | PSH, h.our(2), h.peer(0)).data(b"c");
}

/// MUST-40 (§3.8.6.3): a delayed ACK is sent within 0.5 s (the default delay is 40 ms).
#[test]
fn must_40_delayed_ack_within_half_a_second() {
    let delay = Config::default().delayed_ack.expect("delayed ACKs are on by default");
    assert!(delay < Duration::from_millis(500));
    let mut h = H::new(base_config().with_delayed_ack(Some(delay)));
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"one small segment"));
    h.expect_nothing();
    let waited = h.fire_timer();
    assert!(waited < Duration::from_millis(500), "{waited:?}");
    h.expect(ACK, h.our(0), h.peer(17));
}

/// MUST-40 (§3.8.6.3) whatever the configuration: a 2 s `delayed_ack` is capped below 0.5 s.
#[test]
fn must_40_delayed_ack_capped_below_half_a_second() {
    let mut h = H::new(base_config().with_delayed_ack(Some(Duration::from_secs(2))));
    h.establish_passive(mss_opts(MSS));
    h.send(Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(b"one small segment"));
    h.expect_nothing();
    let waited = h.fire_timer();
    assert!(waited < Duration::from_millis(500), "{waited:?}");
    h.expect(ACK, h.our(0), h.peer(17));
}

/// MUST-24, MUST-27, MUST-29 (§3.8.4): keep-alive is turned on for one connection with its
/// own idle time; a probe (SEG.SEQ = SND.NXT - 1, no data: SHLD-12) that gets no answer does
/// not kill the connection; a later answer keeps it; turning keep-alive off stops it.
#[test]
fn must_24_27_29_keepalive_per_connection() {
    let mut h = established();
    let ka = Keepalive { idle: Duration::from_secs(60), interval: Duration::from_secs(10), probes: 3 };
    h.stack.set_keepalive(h.c(), Some(ka)).expect("set_keepalive");
    assert_eq!(h.fire_timer(), Duration::from_secs(60));
    h.expect(ACK, h.iss, h.peer(0)).len(0);
    assert_eq!(h.fire_timer(), Duration::from_secs(10));
    h.expect(ACK, h.iss, h.peer(0)).len(0);
    assert_eq!(h.state(), Some(State::Established), "one unanswered probe is no proof of death");
    h.send(Seg::new(ACK, h.peer(0), h.our(0)));
    h.expect_nothing();
    assert_eq!(h.state(), Some(State::Established));
    h.stack.set_keepalive(h.c(), None).expect("set_keepalive");
    assert_eq!(h.next_timer(), None);
}

/// MUST-26 (§3.8.4): keep-alive probes are sent only when no sent data is outstanding.
/// Here the idle time is short (1.5 s) and our data stays unacknowledged.
#[test]
fn must_26_no_keepalive_while_data_outstanding() {
    let ka = Keepalive { idle: Duration::from_millis(1500), interval: Duration::from_secs(1), probes: 9 };
    let mut h = H::new(base_config().with_keepalive(Some(ka)));
    h.establish_passive(mss_opts(MSS));
    h.write(b"unanswered");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    for _ in 0..6 {
        h.fire_timer();
        for o in h.drain() {
            // A keep-alive is SEG.SEQ = SND.NXT - 1 with no data: only retransmissions of
            // the outstanding data (from SND.UNA) may go out.
            assert_eq!(o.seq, h.our(0), "keep-alive probe while data is outstanding: {o}");
        }
    }
}

/// MUST-23 (§3.8.3): with the default configuration, a SYN is retransmitted for at least
/// three minutes before the open attempt is given up.
#[test]
fn must_23_syn_retransmitted_for_three_minutes() {
    let mut h = H::new(base_config());
    h.open_to_syn_sent();
    let start = h.now;
    for _ in 0..30 {
        if h.state() == Some(State::Closed) {
            break;
        }
        h.fire_timer();
        h.drain();
    }
    assert_eq!(h.state(), Some(State::Closed));
    let gave_up_after = h.now - start;
    assert!(gave_up_after >= Duration::from_secs(180), "gave up after {gave_up_after:?}");
}

/// docs/rfc9293.md stays true to the tree: every file, function and test its tables name
/// exists (tests as `#[test]` functions). Statuses and behaviour are checked by the tests
/// the document cites; this only catches renames and deletions.
#[test]
fn rfc9293_doc_names_only_existing_code_and_tests() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let doc = std::fs::read_to_string(format!("{root}/docs/rfc9293.md")).expect("read docs/rfc9293.md");
    let mut missing = Vec::new();
    let mut checked = 0;
    for line in doc.lines().filter(|l| l.starts_with('|')) {
        for cell in line.split('|') {
            // The file named last in this cell, for the `Type::item` spans that follow it.
            let mut file: Option<String> = None;
            for span in cell.split('`').skip(1).step_by(2) {
                if span.starts_with("crates/") && span.contains(".rs") {
                    let (path, item) = match span.find(".rs::") {
                        Some(i) => (&span[..i + 3], Some(&span[i + 5..])),
                        None => (span, None),
                    };
                    checked += 1;
                    let Ok(text) = std::fs::read_to_string(format!("{root}/{path}")) else {
                        missing.push(span.to_string());
                        file = None;
                        continue;
                    };
                    match item {
                        Some(item) => {
                            let name = item.rsplit("::").next().unwrap_or(item);
                            let is_test = item.contains("tests::") || path.contains("/tests/rfc9293");
                            if !defines(&text, name, is_test) {
                                missing.push(span.to_string());
                            }
                            file = None;
                        }
                        None => file = Some(text),
                    }
                } else if let Some(text) = &file
                    && !span.is_empty()
                    && span.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                {
                    checked += 1;
                    let name = span.rsplit("::").next().unwrap_or(span);
                    if !defines(text, name, false) {
                        missing.push(span.to_string());
                    }
                }
            }
        }
    }
    assert!(checked > 200, "only {checked} references found: has the table format changed?");
    assert!(missing.is_empty(), "docs/rfc9293.md names what does not exist: {missing:?}");
}

/// `text` defines `name`: a function (a `#[test]` one if `test`), type, constant or field.
fn defines(text: &str, name: &str, test: bool) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let followed_by_non_ident =
        |pat: &str| text.match_indices(pat).any(|(i, _)| !text[i + pat.len()..].starts_with(ident));
    if test {
        let pat = format!("fn {name}()");
        return text
            .match_indices(&pat)
            .any(|(i, _)| text[..i].rfind("#[test]").is_some_and(|j| i - j < 200));
    }
    ["fn ", "struct ", "enum ", "const ", "trait ", "type ", "mod "]
        .iter()
        .any(|kw| followed_by_non_ident(&format!("{kw}{name}")))
        || text.match_indices(&format!("{name}:")).any(|(i, _)| !text[..i].ends_with(ident))
}

/// MUST-21 (§3.8.3): the application sets R2 for one connection. The stack allows 15 data
/// retransmissions; this connection is given 2, and is closed with TimedOut after them.
#[test]
fn must_21_r2_per_connection() {
    let mut h = established();
    assert_eq!(h.stack.config().data_retries, 15);
    h.stack.set_data_retries(h.c(), 2).expect("set_data_retries");
    h.write(b"lost");
    h.expect(ACK | PSH, h.our(0), h.peer(0));
    for _ in 0..2 {
        h.fire_timer();
        h.expect(ACK | PSH, h.our(0), h.peer(0));
    }
    h.fire_timer();
    h.drain();
    assert_eq!(h.state(), Some(State::Closed));
    let c = h.c();
    assert!(h.events().contains(&Event::Closed(c, CloseReason::TimedOut)));
}
