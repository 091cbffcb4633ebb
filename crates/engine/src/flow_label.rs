//! IPv6 flow labels (RFC 6437, issue 13): one label per connection, constant for its
//! life, from a keyed hash of the 4-tuple.
//!
//! RFC 6437 §3: "a source node SHOULD ... set the flow label to a ... uniformly
//! distributed ... value" per flow and "MUST NOT" change it during the flow. RFC 6437 §6
//! recommends a hash of the 5-tuple with a secret, so the label reveals nothing and is
//! not predictable off-path: SipHash-2-4 of the quad under the stack secret (keyed
//! differently from the ISN by a domain tag), folded to 20 bits. A zero label means "no
//! label"; the hash never yields it.
use crate::Quad;
use std::net::IpAddr;

/// The flow label of `quad` under `secret`: 20 bits, never 0; 0 for IPv4 (no label).
#[must_use]
pub fn flow_label(secret: &[u8; 16], quad: &Quad) -> u32 {
    let (IpAddr::V6(l), IpAddr::V6(r)) = (quad.local.ip(), quad.remote.ip()) else {
        return 0;
    };
    let mut data = [0u8; 4 + 16 + 16 + 4];
    data[..4].copy_from_slice(b"flow");
    data[4..20].copy_from_slice(&l.octets());
    data[20..36].copy_from_slice(&r.octets());
    data[36..38].copy_from_slice(&quad.local.port().to_be_bytes());
    data[38..40].copy_from_slice(&quad.remote.port().to_be_bytes());
    let h = crate::isn::siphash24(secret, &data);
    let label = ((h ^ (h >> 20) ^ (h >> 40)) & 0xf_ffff) as u32;
    if label == 0 { 1 } else { label }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn quad(a: &str, b: &str) -> Quad {
        Quad { local: a.parse::<SocketAddr>().unwrap(), remote: b.parse::<SocketAddr>().unwrap() }
    }

    #[test]
    fn per_connection_constant_keyed_and_20_bits() {
        let k = [7u8; 16];
        let q = quad("[2001:db8::1]:80", "[2001:db8::2]:40000");
        let l = flow_label(&k, &q);
        assert_eq!(l, flow_label(&k, &q), "constant for the connection");
        assert!(l > 0 && l <= 0xf_ffff);
        assert_ne!(l, flow_label(&k, &quad("[2001:db8::1]:80", "[2001:db8::2]:40001")));
        assert_ne!(l, flow_label(&[8u8; 16], &q), "keyed by the secret");
        assert_eq!(flow_label(&k, &quad("10.0.0.1:80", "10.0.0.2:1")), 0);
    }
}
