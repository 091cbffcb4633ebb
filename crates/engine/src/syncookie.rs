//! SYN cookie codec (RFC 4987 §3.6; Linux's `tcp_syncookies` as the reference).
//!
//! A listener whose SYN queue is full answers a SYN without keeping any state: the
//! SYN-ACK's ISS is a MAC over the 4-tuple, the peer's ISN, a time counter and an MSS
//! index, and the returning ACK (SEG.ACK = ISS + 1) proves the handshake.
//!
//! ISS layout (32 bits): `[count mod 4: 2][mss index: 2][MAC: 28]`. The MAC is SipHash-1-3
//! under a key derived from the stack secret *and the counter* (cached per period in
//! [`KeyCache`]), so the key rotates every [`PERIOD_SECS`]; a cookie is accepted for
//! [`MAX_AGE_PERIODS`] periods (0 to 128 s old).
//!
//! When timestamps are used (RFC 7323), the low [`TS_OPT_BITS`] bits of our TSval carry
//! what the SYN offered, like Linux's `cookie_init_timestamp`: bits 0-3 the peer's window
//! scale (0xf = none), bit 4 SACK-permitted, bit 5 ECN (always 0: utcp does not negotiate
//! ECN). Without timestamps a cookie connection has no window scaling and no SACK.

use crate::Quad;
use crate::seq::SeqNum;
use crate::time::Instant;
use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use std::net::IpAddr;

/// MSS values a cookie can carry (Linux's `msstab`). The SYN's MSS is rounded down.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];
/// Length of one counter period (Linux: 64 s, `tcp_cookie_time()`).
pub const PERIOD_SECS: u64 = 64;
/// A cookie is valid during the period it was made in and the next one.
pub const MAX_AGE_PERIODS: u64 = 2;
/// Low TSval bits that carry the SYN's options.
pub const TS_OPT_BITS: u32 = 6;
const TS_OPT_MASK: u32 = (1 << TS_OPT_BITS) - 1;
const WSCALE_NONE: u32 = 0xf;
const SACK_BIT: u32 = 1 << 4;
const ECN_BIT: u32 = 1 << 5;
const MAC_MASK: u32 = (1 << 28) - 1;

/// What a valid cookie tells about the SYN it answered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CookieOptions {
    /// The peer's MSS, rounded down to an entry of [`MSS_TABLE`].
    pub mss: u16,
    /// The peer's window-scale shift, if it offered one (and timestamps carried it).
    pub wscale: Option<u8>,
    /// The peer sent SACK-permitted (and timestamps carried it).
    pub sack_permitted: bool,
}

/// Index of the largest table MSS not above `mss` (0 for anything below 536).
pub fn mss_index(mss: u16) -> u8 {
    MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0) as u8
}

fn counter(now: Instant) -> u64 {
    now.micros() / 1_000_000 / PERIOD_SECS
}

/// The key of period `count`: SipHash of the counter under the stack secret.
fn period_key(secret: &[u8; 16], count: u64) -> (u64, u64) {
    let mut h = SipHasher13::new_with_key(secret);
    h.write(b"utcp-syncookie");
    h.write_u64(count);
    let k0 = h.finish();
    h.write_u8(1);
    (k0, h.finish())
}

/// The per-period MAC keys, cached for the current and the previous period (and the
/// secret they came from), so that a cookie costs one SipHash, not three.
#[derive(Clone, Debug, Default)]
pub struct KeyCache {
    entries: [Option<PeriodKey>; 2],
}

/// (counter, the secret it was derived from, the SipHash keys).
type PeriodKey = (u64, [u8; 16], (u64, u64));

impl KeyCache {
    fn key(&mut self, secret: &[u8; 16], count: u64) -> (u64, u64) {
        let e = &mut self.entries[(count & 1) as usize];
        match e {
            Some((c, s, k)) if *c == count && s == secret => *k,
            _ => {
                let k = period_key(secret, count);
                *e = Some((count, *secret, k));
                k
            }
        }
    }
}

/// The MAC input in as few SipHash writes as the addresses allow.
fn mac(keys: (u64, u64), quad: &Quad, irs: SeqNum, idx: u8) -> u32 {
    let mut h = SipHasher13::new_with_keys(keys.0, keys.1);
    match (quad.local.ip(), quad.remote.ip()) {
        (IpAddr::V4(l), IpAddr::V4(r)) => h.write_u64(((u32::from(l) as u64) << 32) | u32::from(r) as u64),
        (l, r) => {
            h.write(&ip_octets(l));
            h.write(&ip_octets(r));
        }
    }
    let ports = ((quad.local.port() as u64) << 16) | quad.remote.port() as u64;
    h.write_u64((ports << 32) | irs.0 as u64);
    h.write_u8(idx);
    (h.finish() as u32) & MAC_MASK
}

fn ip_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// The ISS of a cookie SYN-ACK answering a SYN whose sequence number is `irs`.
pub fn encode_iss(secret: &[u8; 16], quad: &Quad, irs: SeqNum, now: Instant, mss_idx: u8) -> SeqNum {
    encode_iss_cached(&mut KeyCache::default(), secret, quad, irs, now, mss_idx)
}

/// [`encode_iss`] with the period keys cached in `keys` (one SipHash per cookie).
pub fn encode_iss_cached(
    keys: &mut KeyCache,
    secret: &[u8; 16],
    quad: &Quad,
    irs: SeqNum,
    now: Instant,
    mss_idx: u8,
) -> SeqNum {
    let count = counter(now);
    let idx = mss_idx & 3;
    let m = mac(keys.key(secret, count), quad, irs, idx);
    SeqNum((((count & 3) as u32) << 30) | ((idx as u32) << 28) | m)
}

/// Check the cookie `iss` (SEG.ACK - 1 of the returning ACK, whose SEG.SEQ - 1 is `irs`).
/// Returns the MSS index it carries if it was made by this secret less than
/// [`MAX_AGE_PERIODS`] periods ago.
pub fn decode_iss(secret: &[u8; 16], quad: &Quad, irs: SeqNum, now: Instant, iss: SeqNum) -> Option<u8> {
    decode_iss_cached(&mut KeyCache::default(), secret, quad, irs, now, iss)
}

/// [`decode_iss`] with the period keys cached in `keys`.
pub fn decode_iss_cached(
    keys: &mut KeyCache,
    secret: &[u8; 16],
    quad: &Quad,
    irs: SeqNum,
    now: Instant,
    iss: SeqNum,
) -> Option<u8> {
    let now_count = counter(now);
    let c_low = (iss.0 >> 30) as u64;
    let idx = ((iss.0 >> 28) & 3) as u8;
    (0..MAX_AGE_PERIODS).find_map(|age| {
        let count = now_count.checked_sub(age)?;
        let ok = count & 3 == c_low && mac(keys.key(secret, count), quad, irs, idx) == iss.0 & MAC_MASK;
        ok.then_some(idx)
    })
}

/// The option bits for the low bits of TSval.
pub fn encode_ts_options(wscale: Option<u8>, sack_permitted: bool) -> u32 {
    let ws = wscale.map_or(WSCALE_NONE, |w| w.min(14) as u32);
    ws | if sack_permitted { SACK_BIT } else { 0 }
}

/// Decode the option bits echoed in TSecr; `None` if they cannot come from us.
pub fn decode_ts_options(tsecr: u32) -> Option<(Option<u8>, bool)> {
    let bits = tsecr & TS_OPT_MASK;
    if bits & ECN_BIT != 0 {
        return None;
    }
    let ws = bits & 0xf;
    let wscale = match ws {
        WSCALE_NONE => None,
        0..=14 => Some(ws as u8),
        _ => return None,
    };
    Some((wscale, bits & SACK_BIT != 0))
}

/// TSval carrying `bits`, never ahead of our clock `ts_now` (so later TSvals do not go
/// backwards for the peer's PAWS, RFC 7323 §5).
pub fn cookie_tsval(ts_now: u32, bits: u32) -> u32 {
    let ts = (ts_now & !TS_OPT_MASK) | (bits & TS_OPT_MASK);
    if (ts.wrapping_sub(ts_now) as i32) > 0 { ts.wrapping_sub(1 << TS_OPT_BITS) } else { ts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn quad(port: u16) -> Quad {
        Quad {
            local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80),
            remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 99, 1, 2)), port),
        }
    }

    /// The cached period keys give the same cookies as fresh ones, across period changes
    /// and a change of secret (a stale key for another secret is never used).
    #[test]
    fn key_cache_matches_uncached_keys() {
        let mut cache = KeyCache::default();
        let (a, b) = ([1u8; 16], [2u8; 16]);
        for (i, secret) in [a, a, b, a, b, b].iter().enumerate() {
            let now = Instant::from_micros(i as u64 * 40 * 1_000_000);
            let q = quad(1000 + i as u16);
            let fresh = encode_iss(secret, &q, SeqNum(7), now, 3);
            assert_eq!(encode_iss_cached(&mut cache, secret, &q, SeqNum(7), now, 3), fresh);
            assert_eq!(decode_iss_cached(&mut cache, secret, &q, SeqNum(7), now, fresh), Some(3));
            let other = if *secret == a { &b } else { &a };
            assert_eq!(decode_iss_cached(&mut cache, other, &q, SeqNum(7), now, fresh), None);
        }
    }

    /// IPv6 4-tuples take the MAC's slow path and still round-trip and bind the address.
    #[test]
    fn ipv6_quads_round_trip() {
        let l: IpAddr = "fd00::1".parse().unwrap();
        let r: IpAddr = "fd00::2".parse().unwrap();
        let q = Quad { local: SocketAddr::new(l, 80), remote: SocketAddr::new(r, 4000) };
        let now = Instant::from_micros(5_000_000);
        let iss = encode_iss(&[9; 16], &q, SeqNum(1), now, 2);
        assert_eq!(decode_iss(&[9; 16], &q, SeqNum(1), now, iss), Some(2));
        let q2 = Quad { local: SocketAddr::new(r, 80), remote: SocketAddr::new(l, 4000) };
        assert_eq!(decode_iss(&[9; 16], &q2, SeqNum(1), now, iss), None);
    }
}
