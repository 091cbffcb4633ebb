//! Property tests for sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4).

use proptest::prelude::*;
use utcp_engine::seq::SeqNum;

const HALF: u32 = 0x8000_0000;

/// Sequence numbers biased towards the interesting edges: near 0, near 2^32, near 2^31.
fn seq() -> impl Strategy<Value = SeqNum> {
    prop_oneof![any::<u32>(), 0u32..64, (u32::MAX - 63)..=u32::MAX, (HALF - 32)..(HALF + 32),]
        .prop_map(SeqNum)
}

/// A forward distance in `(0, 2^31)`, biased towards both ends.
fn fwd() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..HALF, 1u32..64, (HALF - 64)..HALF]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn antisymmetry(a in seq(), b in seq()) {
        // Never both a < b and b < a; lt is irreflexive.
        prop_assert!(!(a.lt(b) && b.lt(a)));
        prop_assert!(!a.lt(a));
        // le on both sides only when equal.
        prop_assert_eq!(a.le(b) && b.le(a), a == b);
    }

    #[test]
    fn lt_vs_gt(a in seq(), b in seq()) {
        prop_assert_eq!(a.lt(b), b.gt(a));
        prop_assert_eq!(a.le(b), b.ge(a));
        prop_assert_eq!(a.le(b), a.lt(b) || a == b);
        // Trichotomy holds except for the exactly-2^31-apart pair.
        let d = b.since(a);
        let relations = [a.lt(b), a == b, a.gt(b)].iter().filter(|&&x| x).count();
        if d == HALF {
            prop_assert_eq!(relations, 0);
        } else {
            prop_assert_eq!(relations, 1);
        }
        // lt agrees with the signed difference.
        prop_assert_eq!(a.lt(b), b.diff(a) > 0);
    }

    #[test]
    fn add_moves_forward_across_wrap(a in seq(), n in fwd()) {
        let b = a + n;
        prop_assert!(b.gt(a));
        prop_assert!(a.lt(b));
        prop_assert!(!b.le(a));
        prop_assert_eq!(b.diff(a), n as i32);
        prop_assert!((b - n) == a);
        let mut c = a;
        c += n;
        prop_assert_eq!(c, b);
        // Going backwards by the same amount is "less".
        prop_assert!((a - n).lt(a));
    }

    #[test]
    fn since_inverts_add(a in seq(), n in any::<u32>()) {
        prop_assert_eq!((a + n).since(a), n);
        prop_assert_eq!(SeqNum(n) + a.since(SeqNum(n)), a);
    }

    #[test]
    fn in_window_matches_le_lt(x in seq(), lo in seq(), len in prop_oneof![0u32..HALF, 0u32..8, (HALF - 8)..HALF]) {
        // For windows shorter than 2^31: lo <= x < lo + len.
        let hi = lo + len;
        let expect = lo.le(x) && x.lt(hi);
        prop_assert_eq!(x.in_window(lo, len), expect);
    }

    #[test]
    fn in_window_with_offsets(lo in seq(), len in 1u32..HALF, k in any::<u32>()) {
        let k = k % len;
        prop_assert!((lo + k).in_window(lo, len));
        prop_assert!(!(lo + len).in_window(lo, len));
        prop_assert!(!(lo - 1).in_window(lo, len));
        prop_assert!(!lo.in_window(lo, 0));
    }

    #[test]
    fn min_max(a in seq(), b in seq()) {
        prop_assume!(b.since(a) != HALF);
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(lo.le(hi));
        prop_assert!(lo == a || lo == b);
        prop_assert!(hi == a || hi == b);
    }

    #[test]
    fn exactly_half_apart(a in seq()) {
        let b = a + HALF;
        prop_assert!(!a.lt(b) && !a.gt(b));
        prop_assert!(!b.lt(a) && !b.gt(a));
        prop_assert!(!a.le(b) && !a.ge(b));
        prop_assert_eq!(b.diff(a), i32::MIN);
        prop_assert_eq!(b.since(a), HALF);
        prop_assert_eq!(a.since(b), HALF);
    }
}

#[test]
fn edges_near_zero_and_max() {
    let max = SeqNum(u32::MAX);
    let zero = SeqNum(0);
    assert!(max.lt(zero));
    assert!(zero.gt(max));
    assert_eq!(max + 1, zero);
    assert_eq!(zero - 1, max);
    assert_eq!(zero.since(max), 1);
    assert_eq!(max.since(zero), u32::MAX);
    assert!(zero.in_window(max, 2));
    assert!(!SeqNum(1).in_window(max, 2));
    assert!(SeqNum(HALF - 1).gt(zero));
    assert!(!SeqNum(HALF).gt(zero));
    assert!(SeqNum(HALF + 1).lt(zero));
    assert_eq!(max.max(zero), zero);
    assert_eq!(max.min(zero), max);
}
