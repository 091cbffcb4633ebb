//! Internet checksum (RFC 1071).
//!
//! The checksum is the 16-bit one's complement of the one's complement sum of the data
//! taken as big-endian 16-bit words (RFC 1071 §1). One's complement addition is
//! associative and commutative, and 2^16 ≡ 1 (mod 2^16 - 1), so we may add 64-bit
//! big-endian words with end-around carry and fold the result down to 16 bits at the end
//! (RFC 1071 §2(C) "parallel summation").
//!
//! API shape: [`sum`] accumulates into a `u64` partial sum (so several pieces, e.g. a
//! pseudo-header and a segment, can be combined), [`fold`] reduces it to 16 bits, and
//! [`checksum`] / [`verify`] are the common end uses.

/// Add `data` to the running one's complement accumulator `acc`.
///
/// `data` must start at an even offset of the checksummed stream (true for every use in
/// this crate: headers and segments are summed from their first byte). An odd trailing byte
/// is padded with a zero byte on the right (RFC 1071 §1).
#[inline]
pub fn sum(data: &[u8], acc: u64) -> u64 {
    add_carry(acc, to_network(sum_native(data)))
}

/// The one's complement sum of `data` as native-endian 64-bit words (RFC 1071 §2(B): the
/// sum does not depend on byte order; §2(C): 64-bit words with end-around carry). The
/// words go into a 128-bit accumulator (one add and one add-with-carry per word); its high
/// half counts the carries out of bit 63, added back at the end (the end-around carry).
///
/// Measured with callgrind (instructions for one 1472-byte segment, x86-64 baseline, no
/// target-cpu): 716 for the former 32-bit words in eight 64-bit lanes, 688 for 64-bit words
/// in four lanes with counted carries, 482 for this (-33 %). Summing while copying the
/// payload into the segment (one pass, a store per word) took 1030 against 674 for
/// `memcpy` + this sum, so the copy stays separate.
#[inline(always)]
fn sum_native(data: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if data.len() >= wide::MIN_LEN && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `sum_native_avx2` needs AVX2, which the CPU was just seen to have.
        return unsafe { wide::sum_native_avx2(data) };
    }
    sum_native_scalar(data)
}

#[inline(always)]
fn sum_native_scalar(data: &[u8]) -> u64 {
    let mut acc: u128 = 0;
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        acc += word(&b[0..8]) as u128;
        acc += word(&b[8..16]) as u128;
        acc += word(&b[16..24]) as u128;
        acc += word(&b[24..32]) as u128;
    }
    let mut words = blocks.remainder().chunks_exact(8);
    for w in &mut words {
        acc += word(w) as u128;
    }
    // 0 to 7 bytes left: zero-pad on the right (RFC 1071 §1), in stream order.
    let rest = words.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    acc += u64::from_ne_bytes(last) as u128;
    add_carry(acc as u64, (acc >> 64) as u64)
}

/// The AVX2 path of [`sum_native`] for segment-sized data (x86-64 CPUs that have it,
/// detected at run time; the build stays x86-64 baseline).
///
/// The data is taken as native-endian 32-bit words, each zero-extended into one of sixteen
/// 64-bit lanes (`vpmovzxdq` + `vpaddq`); the lanes cannot overflow for any packet (each
/// would need 2^32 words). A native 64-bit word is its low
/// plus its high 32-bit half times 2^32 ≡ 1 (mod 2^16 - 1), so the lane total is congruent
/// to the scalar path's sum (RFC 1071 §2(C)); the tail (< 64 bytes, starting on a
/// multiple of 8) goes through the scalar path.
///
/// Measured with callgrind (`utcp bench --engine`, docs/engine-cost.md): about 300
/// instructions for a 1468-byte segment (19 per 128 bytes in the loop) against 482 for the
/// scalar 64-bit loop, two such sums per data segment.
#[cfg(target_arch = "x86_64")]
mod wide {
    /// Shorter data is not worth the lane set-up and reduction.
    pub(super) const MIN_LEN: usize = 256;

    #[target_feature(enable = "avx2")]
    pub(super) fn sum_native_avx2(data: &[u8]) -> u64 {
        use std::arch::x86_64::*;
        // Four accumulators of four lanes: lane k of accumulator j takes the (4j + k)-th
        // 32-bit word of every 64-byte block.
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut blocks = data.chunks_exact(64);
        for b in &mut blocks {
            for (j, a) in acc.iter_mut().enumerate() {
                let q = &b[16 * j..16 * j + 16];
                // SAFETY: `q` is 16 readable bytes; `loadu` has no alignment requirement.
                let w = unsafe { _mm_loadu_si128(q.as_ptr().cast()) };
                *a = _mm256_add_epi64(*a, _mm256_cvtepu32_epi64(w));
            }
        }
        let s = _mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3]));
        let s = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
        let total = (_mm_cvtsi128_si64(s) as u64).wrapping_add(_mm_extract_epi64::<1>(s) as u64);
        super::add_carry(total, super::sum_native_scalar(blocks.remainder()))
    }
}

#[inline(always)]
fn word(b: &[u8]) -> u64 {
    u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// A native-endian partial sum, folded and put in network byte order (RFC 1071 §2(B)).
#[inline(always)]
fn to_network(native: u64) -> u64 {
    let folded = fold(native);
    (if cfg!(target_endian = "little") { folded.swap_bytes() } else { folded }) as u64
}

/// One's complement 64-bit addition (end-around carry).
#[inline(always)]
fn add_carry(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + carry as u64
}

/// Fold a 64-bit one's complement accumulator to 16 bits (not complemented).
#[inline]
pub fn fold(acc: u64) -> u16 {
    // Each step keeps the value congruent mod 0xffff and shrinks it; four steps always
    // reach 16 bits, the loop is only a guard.
    let mut x = (acc & 0xffff_ffff) + (acc >> 32);
    x = (x & 0xffff_ffff) + (x >> 32);
    x = (x & 0xffff) + (x >> 16);
    x = (x & 0xffff) + (x >> 16);
    while x > 0xffff {
        x = (x & 0xffff) + (x >> 16);
    }
    x as u16
}

/// The Internet checksum of `data`: the one's complement of the folded sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// Finish a checksum from an accumulator (e.g. pseudo-header + segment).
#[inline]
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// IPv4 pseudo-header partial sum (RFC 9293 §3.1, "TCP Checksum"): source address,
/// destination address, zero, protocol, and the TCP length (header + data).
#[inline]
pub fn pseudo_header_ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, length: u16) -> u64 {
    let a = u32::from_be_bytes(src) as u64;
    let b = u32::from_be_bytes(dst) as u64;
    // Summing 32-bit words into a u64 is exact (no carries lost); fold handles the rest.
    a + b + protocol as u64 + length as u64
}

/// True when `data`, with its checksum field in place, plus the partial sum `initial`
/// (0, or a pseudo-header) sums to all ones (RFC 1071 §1, receiver check).
#[inline]
pub fn verify(data: &[u8], initial: u64) -> bool {
    fold(sum(data, initial)) == 0xffff
}

/// [`verify`] for an option-less 20-byte IPv4 header (RFC 791 §3.1), the header of every
/// packet: five big-endian 32-bit words summed in a `u64` (2^16 ≡ 1 mod 2^16 - 1, so the
/// folded sum is the 16-bit one) instead of the general loop.
#[inline]
pub fn verify_ipv4_header(h: &[u8; 20]) -> bool {
    let w = |k: usize| u32::from_be_bytes([h[4 * k], h[4 * k + 1], h[4 * k + 2], h[4 * k + 3]]) as u64;
    fold(w(0) + w(1) + w(2) + w(3) + w(4)) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward 16-bit reference implementation.
    fn reference(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            s += u16::from_be_bytes([data[i], data[i + 1]]) as u32;
            s = (s & 0xffff) + (s >> 16);
            i += 2;
        }
        if i < data.len() {
            s += (data[i] as u32) << 8;
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum (folded) to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic IPv4 header example; checksum field (bytes 10..12) is 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01,
            0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert!(verify(&h, 0));
        h[3] ^= 1;
        assert!(!verify(&h, 0));
    }

    #[test]
    fn matches_reference_all_lengths_and_carries() {
        // Deterministic pseudo-random data, including runs of 0xff to force carries.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut data = vec![0u8; 300];
        for (i, b) in data.iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = if i % 5 == 0 { 0xff } else { x as u8 };
        }
        for len in 0..data.len() {
            assert_eq!(checksum(&data[..len]), reference(&data[..len]), "len {len}");
        }
        let ones = vec![0xffu8; 1000];
        for len in [0, 1, 2, 7, 8, 9, 999, 1000] {
            assert_eq!(checksum(&ones[..len]), reference(&ones[..len]));
        }
    }

    /// All alignments and lengths against the 16-bit reference: `sum` from every start
    /// offset of an aligned buffer (as an even offset of the stream), and two pieces.
    #[test]
    fn sum_copy_and_split_match_reference_all_lengths_and_alignments() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut data = vec![0u8; 200 + 8];
        for (i, b) in data.iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = if i % 7 == 0 { 0xff } else { x as u8 };
        }
        for align in 0..8 {
            for len in 0..200 {
                let src = &data[align..align + len];
                let want = reference(src);
                assert_eq!(finish(sum(src, 0)), want, "sum align {align} len {len}");
                let k = (len / 2) & !1;
                assert_eq!(finish(sum(&src[k..], sum(&src[..k], 0))), want, "split {k} of {len}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn sum_matches_reference(data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000), off in 0usize..8) {
            let d = &data[off.min(data.len())..];
            proptest::prop_assert_eq!(checksum(d), reference(d));
        }
    }

    /// The AVX2 path (where the CPU has it) folds to the scalar path's sum for every length
    /// and start alignment, including runs of 0xff that carry in every lane.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_path_matches_scalar_path() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("no AVX2 on this CPU: only the scalar path runs");
            return;
        }
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut data = vec![0u8; 2100];
        for (i, b) in data.iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = if i % 3 == 0 || i > 1500 { 0xff } else { x as u8 };
        }
        for align in 0..8 {
            for len in (0..2000).step_by(7).chain([64, 128, 255, 256, 257, 1460, 1468, 2000]) {
                let d = &data[align..align + len];
                // SAFETY: AVX2 was detected above.
                let wide = unsafe { wide::sum_native_avx2(d) };
                assert_eq!(fold(wide), fold(sum_native_scalar(d)), "align {align} len {len}");
                assert_eq!(checksum(d), reference(d), "align {align} len {len}");
            }
        }
    }

    /// The 20-byte header check agrees with the general one, valid and corrupted.
    #[test]
    fn ipv4_header_check_matches_general_verify() {
        let mut x: u64 = 0x0bad_cafe_f00d_d00d;
        for round in 0..2000 {
            let mut h = [0u8; 20];
            for b in h.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = if round % 4 == 0 { 0xff } else { x as u8 };
            }
            if round % 2 == 0 {
                h[10..12].fill(0);
                let c = checksum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            assert_eq!(verify_ipv4_header(&h), verify(&h, 0), "{h:?}");
        }
        assert!(verify_ipv4_header(&[0xff; 20]) && !verify_ipv4_header(&[0; 20]));
    }

    #[test]
    fn fold_extremes() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(u64::MAX), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(0xffff_0001), 1);
    }

    #[test]
    fn matches_etherparse_tcp_checksum() {
        let payload = b"hello, checksum world!!";
        let builder = etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1234, 80, 0x0102_0304, 4096)
            .ack(0x0a0b_0c0d)
            .psh();
        let mut pkt = Vec::new();
        builder.write(&mut pkt, payload).expect("write");
        let tcp = &pkt[20..];
        let want = u16::from_be_bytes([tcp[16], tcp[17]]);
        let mut zeroed = tcp.to_vec();
        zeroed[16] = 0;
        zeroed[17] = 0;
        let ph = pseudo_header_ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, tcp.len() as u16);
        assert_eq!(finish(sum(&zeroed, ph)), want);
        assert!(verify(tcp, ph));
        // And the IPv4 header checksum.
        assert!(verify(&pkt[..20], 0));
        let ip_want = u16::from_be_bytes([pkt[10], pkt[11]]);
        let mut ip = pkt[..20].to_vec();
        ip[10] = 0;
        ip[11] = 0;
        assert_eq!(checksum(&ip), ip_want);
    }
}
