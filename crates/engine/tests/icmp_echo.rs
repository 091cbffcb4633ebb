//! ICMP echo (issue 13): RFC 792 echo replies, RFC 1122 §3.2.2.6 ("Every host MUST
//! implement an ICMP Echo server function"; same identifier, sequence number and data;
//! the reply's source is the address the request was sent to), bounded by
//! `Config::icmp_echo_per_sec` and a reply queue cap, on virtual time.

use std::net::{IpAddr, Ipv4Addr};
use utcp_engine::icmp::ECHO_QUEUE_CAP;
use utcp_engine::time::Instant;
use utcp_engine::wire::DropReason;
use utcp_engine::wire::checksum::{checksum, verify};
use utcp_engine::{Config, Stack, TxReason};

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// An IPv4 packet carrying an ICMP message of `icmp_type` with identifier, sequence
/// number and data; both checksums valid.
fn icmp_packet(src: Ipv4Addr, dst: Ipv4Addr, icmp_type: u8, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let total = 28 + data.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[1] = 0x10;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 63;
    p[9] = 1;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = icmp_type;
    p[24..26].copy_from_slice(&id.to_be_bytes());
    p[26..28].copy_from_slice(&seq.to_be_bytes());
    p[28..].copy_from_slice(data);
    let c = checksum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

fn ping(id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    icmp_packet(PEER, US, 8, id, seq, data)
}

fn stack(cfg: Config) -> Stack {
    let mut s = Stack::new(cfg);
    s.add_local_addr(IpAddr::V4(US));
    s
}

fn drain(s: &mut Stack, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 2048];
    let mut out = Vec::new();
    while let Some(n) = s.poll_transmit(now, &mut buf) {
        out.push(buf[..n].to_vec());
        assert_eq!(s.last_tx_reason(), TxReason::EchoReply);
    }
    out
}

/// RFC 792 / RFC 1122 §3.2.2.6: type 0, same identifier, sequence number and data,
/// addresses swapped, both checksums valid; the whole reply byte for byte.
#[test]
fn echo_request_gets_byte_exact_reply() {
    let mut s = stack(Config::deterministic(1));
    let data: Vec<u8> = (0..56u8).collect();
    s.handle_packet(Instant::ZERO, &ping(0xbeef, 7, &data));
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(out.len(), 1);
    let r = &out[0];
    let mut want = icmp_packet(US, PEER, 0, 0xbeef, 7, &data);
    // Our header: identification 1, DF clear, TTL 64, TOS copied.
    want[4..6].copy_from_slice(&1u16.to_be_bytes());
    want[6] = 0;
    want[8] = 64;
    want[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&want[..20]);
    want[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(r, &want);
    assert!(verify(&r[..20], 0) && verify(&r[20..], 0));
    assert!(r.len() <= 28 + data.len(), "no amplification");
    let c = s.counters();
    assert_eq!((c.icmp_in_echos, c.icmp_out_echo_reps, c.icmp_rate_limited), (1, 1, 0));
    assert!(format!("{c}").contains("IcmpOutEchoReps"));
}

/// A bad checksum, other ICMP types, another destination and martian sources get
/// nothing and are counted by reason.
#[test]
fn non_echo_bad_and_martian_requests_get_nothing() {
    let mut s = stack(Config::deterministic(2).with_local_prefix_len(Some(24)));
    let now = Instant::ZERO;
    let mut bad = ping(1, 1, b"abcd");
    bad[30] ^= 0xff;
    s.handle_packet(now, &bad);
    for t in [0u8, 3, 4, 5, 11, 13] {
        s.handle_packet(now, &icmp_packet(PEER, US, t, 1, 1, b"x"));
    }
    s.handle_packet(now, &icmp_packet(PEER, Ipv4Addr::new(10, 0, 0, 9), 8, 1, 1, b"x"));
    let martians = [
        (Ipv4Addr::BROADCAST, DropReason::MartianSrcBroadcast),
        (Ipv4Addr::new(224, 0, 0, 1), DropReason::MartianSrcMulticast),
        (Ipv4Addr::new(127, 0, 0, 1), DropReason::MartianSrcReserved),
        (US, DropReason::Land),
        (Ipv4Addr::new(10, 0, 0, 255), DropReason::MartianSubnetBroadcast),
    ];
    for (src, _) in martians {
        s.handle_packet(now, &icmp_packet(src, US, 8, 1, 1, b"x"));
    }
    // Truncated ICMP header (4 bytes): dropped.
    let mut short = ping(1, 1, b"");
    short.truncate(24);
    short[2..4].copy_from_slice(&24u16.to_be_bytes());
    short[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&short[..20]);
    short[10..12].copy_from_slice(&c.to_be_bytes());
    s.handle_packet(now, &short);
    // UDP stays NotTcp.
    let mut udp = ping(1, 1, b"abcd");
    udp[9] = 17;
    udp[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&udp[..20]);
    udp[10..12].copy_from_slice(&c.to_be_bytes());
    s.handle_packet(now, &udp);

    assert!(drain(&mut s, now).is_empty());
    let c = s.counters();
    assert_eq!(c.dropped(DropReason::IcmpBadChecksum), 1);
    assert_eq!(c.dropped(DropReason::IcmpNotEcho), 2, "echo reply (0), timestamp (13)");
    // Error types (3, 4, 5, 11) go to crate::icmp_error; a 1-byte quote names no TCP
    // segment (source quench included, RFC 9293 MUST-55: it changes nothing).
    assert_eq!(c.dropped(DropReason::IcmpNotTcp), 4);
    assert_eq!(c.dropped(DropReason::NotOurAddress), 1);
    for (_, reason) in martians {
        assert_eq!(c.dropped(reason), 1, "{reason:?}");
    }
    assert_eq!(c.dropped(DropReason::Truncated), 1);
    assert_eq!(c.dropped(DropReason::NotTcp), 1);
    assert_eq!((c.icmp_in_echos, c.icmp_out_echo_reps), (0, 0));
}

/// With no address claimed every destination is ours (as for TCP).
#[test]
fn any_destination_when_no_address_is_claimed() {
    let mut s = Stack::new(Config::deterministic(3));
    s.handle_packet(Instant::ZERO, &icmp_packet(PEER, Ipv4Addr::new(192, 168, 7, 7), 8, 1, 2, b"hi"));
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][12..16], &[192, 168, 7, 7], "source = the address the request was sent to");
}

/// A request larger than the MTU is not answered (`IcmpTooLarge`); one of exactly the
/// MTU is.
#[test]
fn request_larger_than_mtu_is_dropped() {
    let mut s = stack(Config::deterministic(4).with_mtu(576));
    s.handle_packet(Instant::ZERO, &ping(1, 1, &[7u8; 576 - 28 + 1]));
    assert_eq!(s.counters().dropped(DropReason::IcmpTooLarge), 1);
    s.handle_packet(Instant::ZERO, &ping(1, 2, &[7u8; 576 - 28]));
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), vec![576]);
}

/// `Config::icmp_echo_per_sec`: at most that many replies in a second, the bucket
/// refills on virtual time, and 0 answers nothing.
#[test]
fn rate_limit_holds_per_second_and_refills() {
    let mut s = stack(Config::deterministic(5).with_icmp_echo_per_sec(10));
    let mut now = Instant::from_millis(1000);
    let mut replies = 0;
    for i in 0..30u16 {
        s.handle_packet(now, &ping(1, i, b"x"));
        replies += drain(&mut s, now).len();
    }
    assert_eq!(replies, 10);
    assert_eq!(s.counters().icmp_rate_limited, 20);
    assert_eq!(s.counters().dropped(DropReason::IcmpRateLimited), 20);
    // 100 ms refill one token.
    now = Instant::from_millis(1100);
    s.handle_packet(now, &ping(1, 100, b"x"));
    s.handle_packet(now, &ping(1, 101, b"x"));
    assert_eq!(drain(&mut s, now).len(), 1);
    // Ten seconds later the bucket is full again, and holds one second's worth only.
    now = Instant::from_millis(11_100);
    let mut replies = 0;
    for i in 0..30u16 {
        s.handle_packet(now, &ping(2, i, b"x"));
        replies += drain(&mut s, now).len();
    }
    assert_eq!(replies, 10);

    let mut off = stack(Config::deterministic(6).with_icmp_echo_per_sec(0));
    off.handle_packet(Instant::ZERO, &ping(1, 1, b"x"));
    assert!(drain(&mut off, Instant::ZERO).is_empty());
    assert_eq!(off.counters().icmp_rate_limited, 1);
}

/// A caller that never polls holds at most `ECHO_QUEUE_CAP` replies; the rest are
/// dropped and counted.
#[test]
fn reply_queue_is_capped() {
    let mut s = stack(Config::deterministic(7));
    for i in 0..200u16 {
        s.handle_packet(Instant::ZERO, &ping(1, i, b"x"));
    }
    assert_eq!(s.counters().dropped(DropReason::IcmpQueueFull), 200 - ECHO_QUEUE_CAP as u64);
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(out.len(), ECHO_QUEUE_CAP);
    // The first ones are kept, in order.
    assert_eq!(&out[0][26..28], &0u16.to_be_bytes());
    assert_eq!(&out[ECHO_QUEUE_CAP - 1][26..28], &(ECHO_QUEUE_CAP as u16 - 1).to_be_bytes());
}

/// Random and mutated ICMP packets never panic, and every reply is a valid echo reply
/// no larger than its request.
#[test]
fn random_icmp_never_panics() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rng = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut s = stack(Config::deterministic(8));
    let mut buf = [0u8; 2048];
    for i in 0..20_000u64 {
        let len = (rng() % 80) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng() as u8).collect();
        let mut p = ping(rng() as u16, rng() as u16, &data);
        if i % 2 == 0 {
            // Mutate a few bytes, sometimes truncate, sometimes fix the IPv4 checksum.
            for _ in 0..(rng() % 4) {
                let at = (rng() as usize) % p.len();
                p[at] = rng() as u8;
            }
            if rng() % 3 == 0 {
                p.truncate((rng() as usize) % (p.len() + 1));
            }
            if p.len() >= 20 && rng() % 2 == 0 {
                p[10..12].copy_from_slice(&[0, 0]);
                let c = checksum(&p[..20]);
                p[10..12].copy_from_slice(&c.to_be_bytes());
            }
        }
        let now = Instant::from_millis(i);
        s.handle_packet(now, &p);
        while let Some(n) = s.poll_transmit(now, &mut buf) {
            assert!(n <= p.len(), "reply larger than request");
            assert!(verify(&buf[..20], 0) && verify(&buf[20..n], 0));
            assert_eq!(buf[20], 0);
        }
    }
    assert!(s.counters().icmp_out_echo_reps > 1000);
}
