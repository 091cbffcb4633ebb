//! IPv4 reassembly (RFC 791 §3.2, RFC 1122 §3.3.2 MUST; `crates/engine/src/wire/frag.rs`):
//! fragments of a TCP segment are reassembled in any order; overlaps drop the datagram
//! (RFC 5722 policy); duplicates, oversize, too many fragments and timeouts are dropped and
//! counted; a fragment flood never moves reassembly memory past its cap.

mod common;
use common::*;
use proptest::prelude::*;
use utcp_engine::wire::checksum;

fn established() -> H {
    let mut h = H::new(base_config());
    h.establish_passive(mss_opts(MSS));
    h
}

/// One fragment of `packet` (an unfragmented IPv4 packet with a 20-byte header): payload
/// bytes [off, off + len) of the IP payload, with MF as given and identification `id`.
fn fragment(packet: &[u8], id: u16, off: usize, len: usize, more: bool) -> Vec<u8> {
    let body = &packet[20..];
    let mut f = packet[..20].to_vec();
    f.extend_from_slice(&body[off..(off + len).min(body.len())]);
    let total = f.len() as u16;
    f[2..4].copy_from_slice(&total.to_be_bytes());
    f[4..6].copy_from_slice(&id.to_be_bytes());
    let fo = (off / 8) as u16 | if more { 0x2000 } else { 0 };
    f[6..8].copy_from_slice(&fo.to_be_bytes());
    f[10] = 0;
    f[11] = 0;
    let c = checksum::checksum(&f[..20]);
    f[10..12].copy_from_slice(&c.to_be_bytes());
    f
}

/// A 1000-byte data segment from the peer at offset 0, as a packet (1040 bytes; 1020 of
/// IP payload), cut into [0, 512) MF and [512, 1020).
fn two_fragments(h: &H, data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let p = Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(data).packet();
    (fragment(&p, 7, 0, 512, true), fragment(&p, 7, 512, 508, false))
}

fn dropped(h: &H, r: DropReason) -> u64 {
    h.stack.counters().dropped(r)
}

#[test]
fn two_fragments_are_reassembled_in_order() {
    let mut h = established();
    let data = payload(1000);
    let (a, b) = two_fragments(&h, &data);
    h.send_raw(&a);
    h.expect_nothing();
    h.send_raw(&b);
    h.expect(ACK, h.our(0), h.peer(1000));
    assert_eq!(h.read_all(), data);
    assert_eq!(h.stack.counters().reasm_oks, 1);
    assert_eq!(h.stack.reassembly_pending(), 0);
}

#[test]
fn two_fragments_are_reassembled_in_reverse_order() {
    let mut h = established();
    let data = payload(1000);
    let (a, b) = two_fragments(&h, &data);
    h.send_raw(&b);
    h.expect_nothing();
    assert!(h.stack.reassembly_memory() > 0);
    h.send_raw(&a);
    h.expect(ACK, h.our(0), h.peer(1000));
    assert_eq!(h.read_all(), data);
    assert_eq!(h.stack.reassembly_pending(), 0);
}

/// RFC 5722 policy: two overlapping fragments drop the whole datagram; the rest of it
/// then never completes anything.
#[test]
fn overlapping_fragments_drop_the_datagram() {
    let mut h = established();
    let p = Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(1000)).packet();
    h.send_raw(&fragment(&p, 9, 0, 512, true));
    h.send_raw(&fragment(&p, 9, 504, 516, false));
    assert_eq!(dropped(&h, DropReason::FragOverlap), 1);
    assert_eq!(h.stack.reassembly_pending(), 0, "the whole datagram is gone");
    h.send_raw(&fragment(&p, 9, 512, 508, false));
    h.expect_nothing();
    assert_eq!(h.stack.counters().reasm_oks, 0);
    assert_eq!(h.stack.status(h.c()).unwrap().bytes_readable, 0);
}

/// An exact duplicate is dropped on its own; the datagram still completes.
#[test]
fn duplicate_fragment_is_dropped_alone() {
    let mut h = established();
    let data = payload(1000);
    let (a, b) = two_fragments(&h, &data);
    h.send_raw(&a);
    h.send_raw(&a);
    assert_eq!(dropped(&h, DropReason::FragDuplicate), 1);
    h.send_raw(&b);
    h.expect(ACK, h.our(0), h.peer(1000));
    assert_eq!(h.read_all(), data);
}

/// RFC 791 §3.1: no datagram exceeds 65,535 bytes ("ping of death").
#[test]
fn fragment_beyond_65535_is_dropped() {
    let mut h = established();
    let p = Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(1000)).packet();
    h.send_raw(&fragment(&p, 3, 0, 512, true));
    // Offset 65,024 + 1,000 bytes of payload + 20 of header > 65,535.
    let mut big = Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(1200)).packet();
    big.truncate(1020);
    let tail = fragment(&big, 3, 0, 1000, false);
    let mut tail = tail;
    let fo = (65_024u16 / 8).to_be_bytes();
    tail[6..8].copy_from_slice(&fo);
    tail[10] = 0;
    tail[11] = 0;
    let c = checksum::checksum(&tail[..20]);
    tail[10..12].copy_from_slice(&c.to_be_bytes());
    h.send_raw(&tail);
    assert_eq!(dropped(&h, DropReason::FragTooLarge), 1);
    assert_eq!(h.stack.reassembly_pending(), 0);
    h.expect_nothing();
}

#[test]
fn too_many_fragments_drop_the_datagram() {
    let mut h = H::new(base_config().with_ipfrag_max_fragments(4));
    h.establish_passive(mss_opts(MSS));
    let p = Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(100)).packet();
    for k in 0..5 {
        h.send_raw(&fragment(&p, 4, k * 8, 8, true));
    }
    assert_eq!(dropped(&h, DropReason::FragTooMany), 1);
    assert_eq!(h.stack.reassembly_pending(), 0);
    h.expect_nothing();
}

/// RFC 1122 §3.3.2: an incomplete datagram is dropped after the reassembly timeout (30 s),
/// which `poll_timeout` reports.
#[test]
fn incomplete_datagram_times_out_after_30_s() {
    let mut h = established();
    let (a, b) = two_fragments(&h, &payload(1000));
    h.send_raw(&a);
    assert_eq!(h.next_timer(), Some(Duration::from_secs(30)));
    h.advance(Duration::from_secs(30) - Duration::from_micros(1));
    assert_eq!(dropped(&h, DropReason::FragTimeout), 0);
    h.advance(Duration::from_micros(1));
    assert_eq!(dropped(&h, DropReason::FragTimeout), 1);
    assert_eq!(h.stack.reassembly_memory(), 0);
    assert_eq!(h.next_timer(), None);
    // The second half alone is a new, incomplete datagram.
    h.send_raw(&b);
    h.expect_nothing();
    assert_eq!(h.stack.counters().reasm_fails, 1);
}

/// Fragments for an address that is not ours take no reassembly memory.
#[test]
fn fragments_for_other_addresses_are_not_held() {
    let mut h = established();
    let other = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), LOCAL_PORT);
    let p = Seg::new(ACK, h.peer(0), h.our(0)).to(other).data(&payload(1000)).packet();
    h.send_raw(&fragment(&p, 5, 0, 512, true));
    assert_eq!(h.stack.reassembly_pending(), 0);
    assert_eq!(dropped(&h, DropReason::NotOurAddress), 1);
}

/// Reassembly off (`ipfrag_high_thresh` = 0): fragments are dropped as before.
#[test]
fn reassembly_can_be_turned_off() {
    let mut h = H::new(base_config().with_ipfrag_high_thresh(0));
    h.establish_passive(mss_opts(MSS));
    let (a, b) = two_fragments(&h, &payload(1000));
    h.send_raw(&a);
    h.send_raw(&b);
    h.expect_nothing();
    assert_eq!(dropped(&h, DropReason::Fragment), 2);
}

/// A stack-wide fragment flood: random identifications, offsets, lengths and MF bits from
/// many sources. Reassembly memory never passes `ipfrag_high_thresh`, the datagram count
/// never passes `ipfrag_max_datagrams`, and the stack survives.
#[test]
fn fragment_flood_stays_under_the_memory_cap() {
    const CAP: usize = 256 * 1024;
    let cfg = base_config().with_ipfrag_high_thresh(CAP).with_ipfrag_max_datagrams(64);
    let mut h = H::new(cfg);
    h.establish_passive(mss_opts(MSS));
    let base = Seg::new(ACK, h.peer(0), h.our(0)).data(&payload(1400)).packet();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut peak = 0;
    for i in 0..50_000u32 {
        let r = next();
        let mut f =
            fragment(&base, (r & 0xffff) as u16, 0, 8 * (1 + (r >> 16) as usize % 170), (r >> 32) & 1 == 1);
        // Random source (many datagrams) and a random offset up to the 64 KiB limit.
        f[12..16].copy_from_slice(&((i % 977) | 0x0a00_0000).to_be_bytes());
        let fo = ((r >> 40) as u16 & 0x1fff) | if (r >> 32) & 1 == 1 { 0x2000 } else { 0 };
        f[6..8].copy_from_slice(&fo.to_be_bytes());
        f[10] = 0;
        f[11] = 0;
        let c = checksum::checksum(&f[..20]);
        f[10..12].copy_from_slice(&c.to_be_bytes());
        h.send_raw(&f);
        let m = h.stack.reassembly_memory();
        assert!(m <= CAP, "reassembly memory {m} > cap {CAP} after {i} fragments");
        peak = peak.max(m);
        if i % 5000 == 0 {
            h.advance(Duration::from_secs(10));
        }
    }
    assert!(peak > CAP / 2, "the flood did press on the cap (peak {peak})");
    assert_eq!(h.stack.counters().reasm_reqds, 50_000);
    assert!(h.stack.counters().dropped(DropReason::FragMemory) > 0);
    assert_eq!(h.state(), Some(State::Established));
    h.advance(Duration::from_secs(31));
    assert_eq!(h.stack.reassembly_memory(), 0, "everything times out");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any set of fragments of one segment, in any order, with any cut points: the exact
    /// segment is delivered and no datagram stays behind.
    #[test]
    fn any_cut_any_order(cuts in proptest::collection::vec(1usize..127, 0..8), seed in any::<u64>()) {
        let mut h = established();
        let data = payload(1000);
        let p = Seg::new(ACK | PSH, h.peer(0), h.our(0)).data(&data).packet();
        let mut points: Vec<usize> = cuts.iter().map(|c| c * 8).filter(|&c| c < 1020).collect();
        points.sort();
        points.dedup();
        let mut frags = Vec::new();
        let mut start = 0;
        for &c in points.iter().chain(std::iter::once(&1020)) {
            frags.push(fragment(&p, 11, start, c - start, c != 1020));
            start = c;
        }
        let mut s = seed;
        for i in (1..frags.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            frags.swap(i, (s >> 33) as usize % (i + 1));
        }
        for f in &frags {
            h.send_raw(f);
        }
        prop_assert_eq!(h.read_all(), data);
        prop_assert_eq!(h.stack.reassembly_pending(), 0);
        // Only the spare buffer (at most one datagram) stays.
        prop_assert!(h.stack.reassembly_memory() <= 65535);
    }
}
