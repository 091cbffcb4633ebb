//! Wire layer: emit→parse round trips (proptest), etherparse interop, and no-panic fuzzing
//! of `parse_ipv4_tcp` with random bytes and with mutations of valid packets.

use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};
use utcp_engine::seq::SeqNum;
use utcp_engine::wire::checksum;
use utcp_engine::wire::options::{self, emitted_len};
use utcp_engine::wire::{
    OptionLayout, SackBlocks, TcpFlags, TcpHeaderOut, TcpOptions, emit_ipv4_tcp, parse_ipv4_tcp,
};

fn arb_options() -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        proptest::option::of((any::<u32>(), any::<u32>())),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
    )
        .prop_map(|(mss, window_scale, sack_permitted, timestamps, blocks)| {
            let mut sack = SackBlocks::new();
            for (a, b) in blocks {
                sack.push(SeqNum(a), SeqNum(b));
            }
            TcpOptions { mss, window_scale, sack_permitted, timestamps, sack }
        })
}

fn arb_unicast() -> impl Strategy<Value = Ipv4Addr> {
    // 1.0.0.0 ..= 223.255.255.255 less 127/8: never unspecified, loopback, multicast,
    // broadcast or class E.
    (1u8..=222, any::<u8>(), any::<u8>(), any::<u8>())
        .prop_map(|(a, b, c, d)| Ipv4Addr::new(if a >= 127 { a + 1 } else { a }, b, c, d))
}

fn arb_header() -> impl Strategy<Value = TcpHeaderOut> {
    (
        (arb_unicast(), arb_unicast(), any::<u16>(), any::<u16>()),
        (any::<u32>(), any::<u32>(), any::<u8>(), any::<u16>(), any::<u16>()),
        (arb_options(), any::<u8>(), any::<u16>()),
    )
        .prop_map(|((src, dst, sp, dp), (seq, ack, flags, window, urgent), (options, ttl, ip_id))| {
            TcpHeaderOut {
                tcp: utcp_engine::wire::TcpRepr {
                    src_port: sp,
                    dst_port: dp,
                    seq: SeqNum(seq),
                    ack: SeqNum(ack),
                    flags: TcpFlags(flags),
                    window,
                    urgent,
                    options,
                },
                src: IpAddr::V4(src),
                dst: IpAddr::V4(dst),
                ttl,
                ip_id,
                flow_label: 0,
            }
        })
}

fn arb_layout() -> impl Strategy<Value = OptionLayout> {
    prop_oneof![Just(OptionLayout::Linux), Just(OptionLayout::FreeBsd)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn emit_parse_round_trip(
        h in arb_header(),
        layout in arb_layout(),
        payload in proptest::collection::vec(any::<u8>(), 0..1500),
        split in 0usize..1500,
    ) {
        let split = split.min(payload.len());
        let (a, b) = payload.split_at(split);
        let mut buf = vec![0u8; 1600];
        let n = emit_ipv4_tcp(&mut buf, &h, layout, &[a, b]).expect("fits");
        let opt_len = emitted_len(&h.options, layout);
        prop_assert_eq!(opt_len % 4, 0);
        prop_assert!(opt_len <= 40);
        prop_assert_eq!(n, 40 + opt_len + payload.len());
        let s = parse_ipv4_tcp(&buf[..n]).expect("emitted packet parses");
        prop_assert_eq!(s.src, h.src);
        prop_assert_eq!(s.dst, h.dst);
        prop_assert_eq!((s.src_port, s.dst_port), (h.src_port, h.dst_port));
        prop_assert_eq!((s.seq, s.ack), (h.seq, h.ack));
        prop_assert_eq!(s.flags, h.flags);
        prop_assert_eq!((s.window, s.urgent), (h.window, h.urgent));
        let (got, sent) = (s.options, h.options);
        prop_assert_eq!(got.mss, sent.mss);
        prop_assert_eq!(got.window_scale, sent.window_scale);
        prop_assert_eq!(got.sack_permitted, sent.sack_permitted);
        prop_assert_eq!(got.timestamps, sent.timestamps);
        // SACK blocks: a prefix of what was asked (RFC 2018 §3, most recent first), cut
        // only when one more 8-byte block would not fit in the 40 option bytes.
        let kept = got.sack.len();
        prop_assert_eq!(got.sack.as_slice(), &sent.sack.as_slice()[..kept]);
        if kept < sent.sack.len() {
            prop_assert!(opt_len + 8 > 40, "dropped a block that fits: {} {}", opt_len, kept);
        }
        if sent.timestamps.is_some() && sent.mss.is_none() && !sent.sack_permitted
            && sent.window_scale.is_none()
        {
            prop_assert_eq!(kept, sent.sack.len().min(3));
        }
        prop_assert_eq!(s.payload, &payload[..]);

        // Interop: etherparse accepts it and agrees on both checksums.
        let sliced = etherparse::SlicedPacket::from_ip(&buf[..n]).expect("etherparse parses");
        let Some(etherparse::NetSlice::Ipv4(ip)) = &sliced.net else {
            panic!("not ipv4");
        };
        let iph = ip.header().to_header();
        prop_assert_eq!(iph.header_checksum, iph.calc_header_checksum());
        let Some(etherparse::TransportSlice::Tcp(tcp)) = &sliced.transport else {
            panic!("not tcp");
        };
        let th = tcp.to_header();
        prop_assert_eq!(Some(th.checksum), th.calc_checksum_ipv4(&iph, tcp.payload()).ok());
        prop_assert_eq!(tcp.payload(), &payload[..]);
    }

    #[test]
    fn display_lists_every_option(o in arb_options()) {
        let s = o.to_string();
        prop_assert_eq!(s.is_empty(), o == TcpOptions::default());
        if let Some(m) = o.mss {
            let want = format!("mss {}", m);
            prop_assert!(s.contains(&want), "{}", s);
        }
        if let Some((v, e)) = o.timestamps {
            let want = format!("TS val {} ecr {}", v, e);
            prop_assert!(s.contains(&want), "{}", s);
        }
        if let Some(w) = o.window_scale {
            let want = format!("wscale {}", w);
            prop_assert!(s.contains(&want), "{}", s);
        }
        prop_assert_eq!(s.contains("sackOK"), o.sack_permitted);
        prop_assert_eq!(s.contains("sack "), !o.sack.is_empty());
    }
}

/// xorshift64*: deterministic, dependency-free randomness for the fuzz loops.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Recompute both checksums of a possibly garbled packet where the fields allow it, so
/// mutations reach the later checks (data offset, options, addresses). Never panics.
fn refresh_checksums(p: &mut [u8]) {
    if p.len() < 20 {
        return;
    }
    let ihl = ((p[0] & 0x0f) as usize) * 4;
    let total = u16::from_be_bytes([p[2], p[3]]) as usize;
    if ihl < 20 || ihl > p.len() {
        return;
    }
    p[10..12].fill(0);
    let c = checksum::checksum(&p[..ihl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    if total < ihl + 18 || total > p.len() {
        return;
    }
    let src = [p[12], p[13], p[14], p[15]];
    let dst = [p[16], p[17], p[18], p[19]];
    let ph = checksum::pseudo_header_ipv4(src, dst, p[9], (total - ihl) as u16);
    let tcp = &mut p[ihl..total];
    tcp[16..18].fill(0);
    let c = checksum::finish(checksum::sum(tcp, ph));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Parse, and check the properties every accepted packet satisfies.
fn check_accepted(input: &[u8]) -> bool {
    match parse_ipv4_tcp(input) {
        Ok(s) => {
            let start = s.payload.as_ptr() as usize - input.as_ptr() as usize;
            assert!(start + s.payload.len() <= input.len(), "payload inside the input");
            assert!(s.options.window_scale.is_none_or(|w| w <= 14), "wscale clamped");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn fuzz_random_bytes_no_panic() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut buf = [0u8; 128];
    let mut accepted = 0;
    for i in 0..200_000 {
        let len = rng.below(buf.len() + 1);
        for b in &mut buf[..len] {
            *b = rng.next() as u8;
        }
        // Half the inputs start like an IPv4 packet so they get past the first checks.
        if i % 2 == 0 && len >= 20 {
            buf[0] = 0x45;
            buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            buf[6] = 0;
            buf[7] = 0;
            buf[9] = 6;
            if i % 4 == 0 {
                refresh_checksums(&mut buf[..len]);
            }
        }
        accepted += check_accepted(&buf[..len]) as usize;
    }
    // Some checksum-fixed random packets must make it through (we fuzz deep, not only
    // the first length check).
    assert!(accepted > 0);
}

#[test]
fn fuzz_mutations_of_valid_packets_no_panic() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let syn = TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((1, 2)),
        sack: SackBlocks::new(),
    };
    let mut sack = SackBlocks::new();
    sack.push(SeqNum(10), SeqNum(20));
    sack.push(SeqNum(30), SeqNum(40));
    let data = TcpOptions { timestamps: Some((3, 4)), sack, ..TcpOptions::default() };
    let mut seeds = Vec::new();
    for (opts, layout, payload) in [
        (syn, OptionLayout::Linux, &b""[..]),
        (syn, OptionLayout::FreeBsd, &b""[..]),
        (data, OptionLayout::Linux, &b"some payload bytes"[..]),
        (TcpOptions::default(), OptionLayout::Linux, &b"x"[..]),
    ] {
        let h = TcpHeaderOut {
            tcp: utcp_engine::wire::TcpRepr {
                src_port: 1234,
                dst_port: 5678,
                seq: SeqNum(1),
                ack: SeqNum(2),
                flags: TcpFlags::SYN | TcpFlags::ACK,
                window: 1000,
                urgent: 0,
                options: opts,
            },
            src: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)),
            ttl: 64,
            ip_id: 9,
            flow_label: 0,
        };
        let mut buf = [0u8; 200];
        let n = emit_ipv4_tcp(&mut buf, &h, layout, &[payload]).expect("fits");
        seeds.push(buf[..n].to_vec());
    }
    let mut work = Vec::with_capacity(256);
    let (mut accepted, mut rejected) = (0usize, 0usize);
    for _ in 0..200_000 {
        let seed = &seeds[rng.below(seeds.len())];
        work.clear();
        work.extend_from_slice(seed);
        for _ in 0..1 + rng.below(3) {
            match rng.below(6) {
                // Bit flip anywhere.
                0 if !work.is_empty() => {
                    let i = rng.below(work.len());
                    work[i] ^= 1 << rng.below(8);
                }
                // Truncate.
                1 => {
                    let n = rng.below(work.len() + 1);
                    work.truncate(n);
                }
                // Alter a length field: IHL, total length, data offset, or an option length.
                2 if work.len() > 41 => {
                    let v = rng.next() as u8;
                    match rng.below(4) {
                        0 => work[0] = 0x40 | (v & 0x0f),
                        1 => work[2..4].copy_from_slice(&(rng.below(300) as u16).to_be_bytes()),
                        2 => work[32] = v & 0xf0,
                        _ => {
                            let i = 41 + rng.below(work.len() - 41);
                            work[i] = v % 48;
                        }
                    }
                }
                // Random byte in the options area.
                3 if work.len() > 40 => {
                    let i = 40 + rng.below(work.len() - 40);
                    work[i] = rng.next() as u8;
                }
                // Append trailing garbage.
                4 => {
                    for _ in 0..rng.below(8) {
                        work.push(rng.next() as u8);
                    }
                }
                _ => {}
            }
        }
        // Most mutations get valid checksums so the deeper checks are exercised.
        if rng.below(4) != 0 {
            refresh_checksums(&mut work);
        }
        if check_accepted(&work) {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    assert!(accepted > 1000 && rejected > 1000, "accepted {accepted} rejected {rejected}");
}

#[test]
fn fuzz_options_parser_no_panic() {
    let mut rng = Rng(42);
    let mut area = [0u8; 40];
    let mut parsed = 0;
    for _ in 0..200_000 {
        let len = rng.below(41);
        for b in &mut area[..len] {
            // Bias toward small values so known kinds and short lengths are common.
            *b = if rng.below(2) == 0 { (rng.next() % 12) as u8 } else { rng.next() as u8 };
        }
        if let Ok(o) = options::parse(&area[..len]) {
            parsed += 1;
            assert!(o.sack.len() <= 4);
            assert!(o.window_scale.is_none_or(|w| w <= 14));
            // Whatever parsed re-encodes and re-parses to the same non-SACK options.
            for layout in [OptionLayout::Linux, OptionLayout::FreeBsd] {
                let enc = options::encode(&o, layout);
                assert_eq!(enc.as_bytes().len(), emitted_len(&o, layout));
                let back = options::parse(enc.as_bytes()).expect("re-parse");
                assert_eq!(back.mss, o.mss);
                assert_eq!(back.window_scale, o.window_scale);
                assert_eq!(back.timestamps, o.timestamps);
                assert_eq!(back.sack_permitted, o.sack_permitted);
            }
        }
    }
    assert!(parsed > 1000, "parsed {parsed}");
}

/// IPv4 reassembly (`wire/frag.rs`) under garbage: random fragments (random header bytes,
/// fragment offsets, MF bits, IHL, lengths, a small id and address space so datagrams
/// collide) into a Stack never panic, and reassembly memory stays under its cap.
#[test]
fn fuzz_fragments_into_stack_no_panic() {
    use utcp_engine::time::{Duration, Instant};
    use utcp_engine::{Config, Stack};
    const CAP: usize = 128 * 1024;
    let cfg = Config::default().with_ipfrag_high_thresh(CAP).with_ipfrag_max_datagrams(32);
    let mut stack = Stack::new(cfg);
    let mut rng = Rng(0x0f0f_1234_8765_abcd);
    let mut buf = [0u8; 1500];
    let mut now = Instant::from_millis(1000);
    let mut out = vec![0u8; 1600];
    for i in 0..100_000u32 {
        let len = 20 + rng.below(buf.len() - 19);
        for b in &mut buf[..len] {
            *b = rng.next() as u8;
        }
        buf[0] = 0x45 + if i % 7 == 0 { rng.below(11) as u8 } else { 0 };
        buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        buf[4] = 0;
        buf[5] = rng.below(8) as u8; // few ids: fragments meet
        buf[6] &= 0x3f; // MF and a random offset
        buf[6] |= 0x20 * (rng.below(2) as u8);
        if rng.below(2) == 0 {
            buf[6] &= 0x20; // small offsets too
            buf[7] = rng.below(32) as u8;
        }
        buf[9] = if i % 13 == 0 { 17 } else { 6 };
        buf[12..16].copy_from_slice(&[10, 0, 0, rng.below(4) as u8]);
        refresh_checksums(&mut buf[..len]);
        stack.handle_packet(now, &buf[..len]);
        assert!(stack.reassembly_memory() <= CAP);
        while stack.poll_transmit(now, &mut out).is_some() {}
        if i % 1000 == 0 {
            now += Duration::from_secs(3);
            stack.handle_timeout(now);
        }
    }
    assert!(stack.counters().reasm_reqds > 50_000, "fragments reached reassembly");
}

// ---------------------------------------------------------------- IPv6 (issue 13)

fn arb_unicast6() -> impl Strategy<Value = std::net::Ipv6Addr> {
    // 2001:db8::/32 (documentation) with random low bits: never a martian.
    any::<[u16; 6]>()
        .prop_map(|s| std::net::Ipv6Addr::new(0x2001, 0xdb8, s[0], s[1], s[2], s[3], s[4], s[5] | 1))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// RFC 8200 §8.1: an emitted IPv6 segment parses back to the same `TcpRepr`, and
    /// etherparse agrees on the checksum and the flow label.
    #[test]
    fn emit_parse_round_trip_ipv6(
        h in arb_header(),
        (src, dst) in (arb_unicast6(), arb_unicast6()),
        label in 0u32..=0xf_ffff,
        layout in arb_layout(),
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
    ) {
        let h = TcpHeaderOut { src: IpAddr::V6(src), dst: IpAddr::V6(dst), flow_label: label, ..h };
        let mut buf = vec![0u8; 1600];
        let n = utcp_engine::wire::emit_ip_tcp(&mut buf, &h, layout, &[&payload]).expect("fits");
        prop_assert_eq!(n, 60 + emitted_len(&h.options, layout) + payload.len());
        let s = utcp_engine::wire::parse_ip_tcp(&buf[..n]).expect("emitted packet parses");
        prop_assert_eq!((s.src, s.dst), (h.src, h.dst));
        let (mut got, mut sent) = (s.tcp, h.tcp);
        // SACK blocks may be cut to fit the option space (checked by the IPv4 property).
        got.options.sack = SackBlocks::new();
        sent.options.sack = SackBlocks::new();
        prop_assert_eq!(got, sent);
        prop_assert_eq!(s.payload, &payload[..]);
        let sliced = etherparse::SlicedPacket::from_ip(&buf[..n]).expect("etherparse parses");
        let Some(etherparse::NetSlice::Ipv6(ip)) = &sliced.net else { panic!("not ipv6") };
        let iph = ip.header().to_header();
        prop_assert_eq!(iph.flow_label.value(), label);
        let Some(etherparse::TransportSlice::Tcp(tcp)) = &sliced.transport else { panic!("not tcp") };
        let th = tcp.to_header();
        prop_assert_eq!(Some(th.checksum), th.calc_checksum_ipv6(&iph, tcp.payload()).ok());
    }
}

/// A valid IPv6 TCP packet with a random chain of extension headers (types from the set
/// the parser walks, random lengths and options), then random byte mutations: parsing
/// never panics, and an accepted packet's payload lies inside the input.
#[test]
fn fuzz_ipv6_extension_headers_no_panic() {
    let mut rng = Rng(0x6666_1234_abcd_0001);
    let h = TcpHeaderOut {
        tcp: utcp_engine::wire::TcpRepr { src_port: 1, dst_port: 2, window: 9, ..Default::default() },
        src: "2001:db8::2".parse().unwrap(),
        dst: "2001:db8::1".parse().unwrap(),
        ttl: 64,
        ip_id: 0,
        flow_label: 5,
    };
    let mut base = vec![0u8; 200];
    let n = utcp_engine::wire::emit_ip_tcp(&mut base, &h, OptionLayout::Linux, &[b"data"]).unwrap();
    base.truncate(n);
    let (mut accepted, mut walked) = (0, 0);
    for i in 0..100_000 {
        let mut p = base[..40].to_vec();
        let kinds = [0u8, 43, 44, 60, 59, 6, 58];
        let count = rng.below(5);
        let mut chain: Vec<u8> = (0..count).map(|_| kinds[rng.below(kinds.len())]).collect();
        chain.push(6);
        p[6] = chain[0];
        for k in 0..count {
            let units = rng.below(3);
            let mut hdr = vec![chain[k + 1], units as u8];
            hdr.extend((0..units * 8 + 6).map(|_| if rng.below(2) == 0 { 0 } else { rng.next() as u8 }));
            p.extend_from_slice(&hdr);
        }
        p.extend_from_slice(&base[40..]);
        let len = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        for _ in 0..(i % 3) {
            let at = rng.below(p.len());
            p[at] = rng.next() as u8;
        }
        if let Ok(ip) = utcp_engine::wire::ipv6::parse(&p) {
            walked += 1;
            let start = ip.payload.as_ptr() as usize - p.as_ptr() as usize;
            assert!(start + ip.payload.len() <= p.len());
        }
        if let Ok(s) = utcp_engine::wire::parse_ip_tcp(&p) {
            accepted += 1;
            assert_eq!(s.payload, b"data");
        }
        let cut = rng.below(p.len() + 1);
        let _ = utcp_engine::wire::parse_ip_tcp(&p[..cut]);
    }
    assert!(accepted > 1000 && walked > accepted, "deep enough: {accepted} accepted, {walked} walked");
}

/// Random IPv6 fragments (few ids and sources so they meet, random offsets and M bits)
/// into a Stack: no panic, reassembly memory under its cap.
#[test]
fn fuzz_ipv6_fragments_into_stack_no_panic() {
    use utcp_engine::time::{Duration, Instant};
    use utcp_engine::{Config, Stack};
    const CAP: usize = 128 * 1024;
    let mut cfg = Config::deterministic(1);
    cfg.ipfrag_high_thresh = CAP;
    cfg.ipfrag_max_datagrams = 32;
    let mut stack = Stack::new(cfg);
    let mut rng = Rng(0x0f0f_6666_8765_abcd);
    let mut now = Instant::from_millis(1000);
    let mut out = vec![0u8; 1600];
    for i in 0..50_000u32 {
        let data = 8 * (1 + rng.below(100));
        let mut p = vec![0u8; 48 + data];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((8 + data) as u16).to_be_bytes());
        p[6] = 44;
        p[7] = 64;
        p[8..24].copy_from_slice(&"2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
        p[23] = rng.below(4) as u8;
        p[24..40].copy_from_slice(&"2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        p[40] = if i % 13 == 0 { 17 } else { 6 };
        let off = (rng.below(64) as u16) << 3 | rng.below(2) as u16;
        p[42..44].copy_from_slice(&off.to_be_bytes());
        p[44..48].copy_from_slice(&(rng.below(8) as u32).to_be_bytes());
        for b in &mut p[48..] {
            *b = rng.next() as u8;
        }
        stack.handle_packet(now, &p);
        assert!(stack.reassembly_memory() <= CAP);
        while stack.poll_transmit(now, &mut out).is_some() {}
        if i % 1000 == 0 {
            now += Duration::from_secs(3);
            stack.handle_timeout(now);
        }
    }
    assert!(stack.counters().reasm_reqds > 20_000, "fragments reached reassembly");
    assert!(stack.counters().reasm_oks > 0, "some datagrams completed");
}
