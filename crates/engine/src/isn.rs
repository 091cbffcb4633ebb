//! RFC 6528 initial sequence numbers.
//!
//! `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)` (RFC 6528 §3), where
//! M is a timer ticking every 4 microseconds (RFC 9293 §3.4.1) and F is a keyed hash, here
//! SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012) under the
//! 16-byte `Config::isn_secret`. Each connection quad gets its own sequence-number space
//! that an off-path attacker cannot predict, while successive incarnations of the same
//! quad still get increasing ISNs (which TIME-WAIT assassination protection relies on).

use crate::Quad;
use crate::seq::SeqNum;
use crate::time::Instant;
use std::net::{IpAddr, SocketAddr};

/// SipHash-2-4 of `data` under `key` (the `siphasher` crate; the tests below check it
/// against the paper's vectors).
pub fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher24::new_with_key(key);
    h.write(data);
    h.finish()
}

/// Appends family tag, address and port of `addr` to `buf` at `*len`.
fn put_addr(buf: &mut [u8; 38], len: &mut usize, addr: &SocketAddr) {
    let mut put = |bytes: &[u8]| {
        buf[*len..*len + bytes.len()].copy_from_slice(bytes);
        *len += bytes.len();
    };
    match addr.ip() {
        IpAddr::V4(ip) => {
            put(&[4]);
            put(&ip.octets());
        }
        IpAddr::V6(ip) => {
            put(&[6]);
            put(&ip.octets());
        }
    }
    put(&addr.port().to_be_bytes());
}

/// F of RFC 6528 §3: the keyed hash of the connection identifiers.
fn quad_hash(secret: &[u8; 16], quad: &Quad) -> u32 {
    // Largest input: 2 * (1 tag + 16 address + 2 port) = 38 bytes; no allocation.
    let mut buf = [0u8; 38];
    let mut len = 0;
    put_addr(&mut buf, &mut len, &quad.local);
    put_addr(&mut buf, &mut len, &quad.remote);
    siphash24(secret, &buf[..len]) as u32
}

/// The RFC 6528 ISN for a connection on `quad` opened at `now`:
/// `M + F(quad, secret)` with M = `now` in 4-microsecond ticks, modulo 2^32.
///
/// Never returns 0: if the sum is 0, 1 is returned instead. Some peers and middleboxes
/// treat a zero sequence number as "unset"; skipping one value out of 2^32 costs nothing.
pub fn initial_sequence_number(secret: &[u8; 16], quad: &Quad, now: Instant) -> SeqNum {
    // RFC 9293 §3.4.1 / RFC 6528 §3: M is a clock incremented roughly every 4 µs.
    let m = (now.micros() / 4) as u32;
    let isn = m.wrapping_add(quad_hash(secret, quad));
    SeqNum(if isn == 0 { 1 } else { isn })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn key() -> [u8; 16] {
        let mut k = [0u8; 16];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        k
    }

    #[test]
    fn siphash_paper_vector() {
        // SipHash paper, Appendix A: key 00..0f, message 00..0e (15 bytes).
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash24(&key(), &msg), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn siphash_reference_vectors_other_lengths() {
        // From the reference implementation's vectors.h (key 00..0f, message 00..len-1),
        // read as little-endian u64: lengths 0, 8 (one full word, empty tail) and 16.
        assert_eq!(siphash24(&key(), &[]), 0x726f_db47_dd0e_0e31);
        let m8: Vec<u8> = (0u8..8).collect();
        assert_eq!(siphash24(&key(), &m8), 0x93f5_f579_9a93_2462);
        let m16: Vec<u8> = (0u8..16).collect();
        assert_eq!(siphash24(&key(), &m16), 0x3f2a_cc7f_57c2_9bdb);
    }

    fn quad(local: &str, remote: &str) -> Quad {
        Quad { local: local.parse().unwrap(), remote: remote.parse().unwrap() }
    }

    #[test]
    fn different_quads_differ() {
        let s = *b"0123456789abcdef";
        let t = Instant::from_millis(5);
        let base = quad("10.0.0.1:80", "10.0.0.2:40000");
        let isn = initial_sequence_number(&s, &base, t);
        for other in [
            quad("10.0.0.1:80", "10.0.0.2:40001"),
            quad("10.0.0.1:81", "10.0.0.2:40000"),
            quad("10.0.0.3:80", "10.0.0.2:40000"),
            quad("10.0.0.1:80", "10.0.0.4:40000"),
            quad("10.0.0.2:40000", "10.0.0.1:80"), // swapped direction
            quad("[fd00::1]:80", "[fd00::2]:40000"),
        ] {
            assert_ne!(initial_sequence_number(&s, &other, t), isn, "{other:?}");
        }
    }

    #[test]
    fn v6_quads_work_and_differ() {
        let s = [7u8; 16];
        let a = quad("[fd00::1]:80", "[fd00::2]:40000");
        let b = quad("[fd00::1]:80", "[fd00::3]:40000");
        let t = Instant::ZERO;
        assert_ne!(initial_sequence_number(&s, &a, t), initial_sequence_number(&s, &b, t));
    }

    #[test]
    fn same_quad_advances_250k_per_second() {
        let s = [1u8; 16];
        let q = quad("192.0.2.1:1234", "198.51.100.7:443");
        let t0 = Instant::from_micros(123_456_789);
        let a = initial_sequence_number(&s, &q, t0);
        let b = initial_sequence_number(&s, &q, t0 + Duration::from_secs(1));
        assert_eq!(b.since(a), 250_000);
        assert!(b.gt(a));
        let c = initial_sequence_number(&s, &q, t0 + Duration::from_micros(4));
        assert_eq!(c.since(a), 1);
    }

    #[test]
    fn keyed_by_secret() {
        let q = quad("192.0.2.1:1234", "198.51.100.7:443");
        let t = Instant::from_millis(1);
        let a = initial_sequence_number(&[0u8; 16], &q, t);
        let mut other = [0u8; 16];
        other[15] = 1;
        let b = initial_sequence_number(&other, &q, t);
        assert_ne!(a, b);
        // The offset F is what differs; both advance at the same rate.
        let t2 = t + Duration::from_millis(10);
        assert_eq!(initial_sequence_number(&[0u8; 16], &q, t2).since(a), 2500);
        assert_eq!(initial_sequence_number(&other, &q, t2).since(b), 2500);
    }

    #[test]
    fn never_zero() {
        let s = [9u8; 16];
        let q = quad("192.0.2.1:1234", "198.51.100.7:443");
        let f = quad_hash(&s, &q);
        // Pick the instant at which M + F wraps to exactly 0.
        let m = 0u32.wrapping_sub(f) as u64;
        let isn = initial_sequence_number(&s, &q, Instant::from_micros(m * 4));
        assert_eq!(isn, SeqNum(1));
        let next = initial_sequence_number(&s, &q, Instant::from_micros(m * 4 + 4));
        assert_eq!(next, SeqNum(1));
    }
}
