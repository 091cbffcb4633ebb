//! Properties of the SYN cookie codec (`utcp_engine::syncookie`, RFC 4987 §3.6).
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utcp_engine::Quad;
use utcp_engine::seq::SeqNum;
use utcp_engine::syncookie::*;
use utcp_engine::time::Instant;

fn quad(l: u32, lp: u16, r: u32, rp: u16) -> Quad {
    Quad {
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(l)), lp),
        remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(r)), rp),
    }
}

const PERIOD_US: u64 = PERIOD_SECS * 1_000_000;

proptest! {
    /// A cookie decodes to its MSS index for as long as it is young enough, under the
    /// secret that made it, and to nothing after MAX_AGE_PERIODS periods.
    #[test]
    fn iss_round_trips_within_its_age(
        secret in any::<[u8; 16]>(), l in any::<u32>(), lp in any::<u16>(), r in any::<u32>(),
        rp in any::<u16>(), irs in any::<u32>(), t in 0u64..(1 << 40), idx in 0u8..4,
        age in 0u64..(MAX_AGE_PERIODS * PERIOD_US),
    ) {
        let q = quad(l, lp, r, rp);
        let made = Instant::from_micros(t);
        let iss = encode_iss(&secret, &q, SeqNum(irs), made, idx);
        // `age` after the start of the period it was made in.
        let period_start = t - t % PERIOD_US;
        let at = Instant::from_micros(period_start + age).max(made);
        prop_assert_eq!(decode_iss(&secret, &q, SeqNum(irs), at, iss), Some(idx));
        let late = Instant::from_micros(period_start + MAX_AGE_PERIODS * PERIOD_US + age);
        prop_assert_eq!(decode_iss(&secret, &q, SeqNum(irs), late, iss), None);
    }

    /// Any change to the cookie, the 4-tuple, the peer's ISN or the secret fails it.
    #[test]
    fn tampering_fails(
        secret in any::<[u8; 16]>(), l in any::<u32>(), r in any::<u32>(), irs in any::<u32>(),
        t in 0u64..(1 << 40), idx in 0u8..4, bit in 0u32..32, other_port in 1u16..,
    ) {
        let q = quad(l, 80, r, 40000);
        let now = Instant::from_micros(t);
        let iss = encode_iss(&secret, &q, SeqNum(irs), now, idx);
        prop_assert_eq!(decode_iss(&secret, &q, SeqNum(irs), now, SeqNum(iss.0 ^ (1 << bit))), None);
        prop_assert_eq!(decode_iss(&secret, &q, SeqNum(irs ^ 1), now, iss), None);
        let q2 = quad(l, 80, r, 40000u16.wrapping_add(other_port));
        prop_assert_eq!(decode_iss(&secret, &q2, SeqNum(irs), now, iss), None);
        let mut s2 = secret;
        s2[(bit % 16) as usize] ^= 1;
        prop_assert_eq!(decode_iss(&s2, &q, SeqNum(irs), now, iss), None);
    }

    /// Options in TSval round-trip, and the TSval is never ahead of the clock and at most
    /// 2^TS_OPT_BITS behind it (RFC 7323 §5: our later TSvals never go backwards).
    #[test]
    fn ts_options_round_trip(ts_now in any::<u32>(), ws in proptest::option::of(0u8..=14), sack in any::<bool>()) {
        let tsval = cookie_tsval(ts_now, encode_ts_options(ws, sack));
        prop_assert_eq!(decode_ts_options(tsval), Some((ws, sack)));
        let behind = ts_now.wrapping_sub(tsval);
        prop_assert!(behind < 1 << TS_OPT_BITS, "behind by {}", behind);
    }

    /// The MSS index never rounds up.
    #[test]
    fn mss_rounds_down(mss in any::<u16>()) {
        let m = MSS_TABLE[mss_index(mss) as usize];
        prop_assert!(m <= mss || m == MSS_TABLE[0]);
    }
}

#[test]
fn ecn_bit_is_rejected_and_table_lookups() {
    assert_eq!(decode_ts_options(0x20 | 0x3), None);
    assert_eq!(decode_ts_options(0xe), Some((Some(14), false)));
    assert_eq!(decode_ts_options(0xf), Some((None, false)));
    assert_eq!(mss_index(1460), 3);
    assert_eq!(mss_index(1459), 2);
    assert_eq!(mss_index(100), 0);
}
