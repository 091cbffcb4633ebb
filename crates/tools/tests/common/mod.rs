//! Helpers shared by the kernel interop test files (each file includes this with `mod
//! common;`): byte streams of a seeded PRNG with their SHA-256, so a transfer is checked
//! byte-exact without holding it in memory.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use utcp::device::rng::Rng;

/// Write `len` bytes of the PRNG stream `seed`; returns their SHA-256.
pub fn send_stream(mut w: impl Write, seed: u64, len: u64) -> io::Result<[u8; 32]> {
    let mut rng = Rng::new(seed);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        rng.fill_bytes(&mut buf[..n]);
        w.write_all(&buf[..n])?;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(h.finalize().into())
}

/// Read to EOF; returns (bytes, SHA-256).
pub fn recv_stream(mut r: impl Read) -> io::Result<(u64, [u8; 32])> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok((total, h.finalize().into())),
            Ok(n) => {
                h.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The SHA-256 of the first `len` bytes of the PRNG stream `seed`.
pub fn expected(seed: u64, len: u64) -> [u8; 32] {
    send_stream(io::sink(), seed, len).unwrap()
}
