//! Value parsers for the clap flags: sizes, probabilities, counts, addresses.
//! Each returns a message clap prints as `invalid value '..' for '--flag ..': MESSAGE`.

use std::net::Ipv4Addr;
use std::time::Duration;

/// A byte size with an optional K/M/G suffix (powers of 1024): `10M`, `64K`, `1G`, `512`.
pub fn size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1u64 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1u64 << 30),
        _ => (s, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    if n.is_nan() || n < 0.0 || !n.is_finite() {
        return Err(format!("bad size {s:?}"));
    }
    Ok((n * mult as f64) as u64)
}

/// A probability given as a fraction in [0, 1].
pub fn prob(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("bad probability {s:?}"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("probability {s} is not in [0, 1]"));
    }
    Ok(p)
}

/// Milliseconds >= 0 (fractions allowed), as a duration.
pub fn millis(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|_| format!("bad milliseconds {s:?}"))?;
    if v.is_nan() || v < 0.0 || !v.is_finite() {
        return Err("must be >= 0".into());
    }
    Ok(Duration::from_micros((v * 1000.0) as u64))
}

/// Seconds in (0, `max`].
fn seconds_up_to(s: &str, max: f64) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|_| format!("bad seconds {s:?}"))?;
    if !(v > 0.0 && v <= max) {
        return Err(format!("not in 0 < s <= {max}"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// A positive number of seconds (a connect timeout; at most a day).
pub fn timeout(s: &str) -> Result<Duration, String> {
    seconds_up_to(s, 86_400.0)
}

/// The length of one bench sample: 0 < s <= 600.
pub fn sample_duration(s: &str) -> Result<Duration, String> {
    seconds_up_to(s, 600.0)
}

/// A count >= 1 (rounds).
pub fn count(s: &str) -> Result<usize, String> {
    s.parse::<usize>().ok().filter(|&n| n >= 1).ok_or(format!("bad count {s:?} (>= 1)"))
}

/// `1000`, `10k`, `100k`, `1m`: a connection count in 1..=1m.
pub fn scale_count(s: &str) -> Result<usize, String> {
    let (num, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1_000),
        Some('m' | 'M') => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    num.parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| (1..=1_000_000).contains(&n))
        .ok_or(format!("bad count {s:?} (1..=1m)"))
}

/// A comma-separated list of `item`s, deduplicated, in canonical order.
pub fn list<T: Ord>(s: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        v.push(item(part)?);
    }
    if v.is_empty() {
        return Err("empty list".into());
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// `10.77.0.1/24` (a bare address means /24).
pub fn cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, prefix) = s.split_once('/').unwrap_or((s, "24"));
    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("bad IPv4 address {ip:?}"))?;
    let prefix: u8 = prefix.parse().map_err(|_| format!("bad prefix length {prefix:?}"))?;
    if prefix > 30 {
        return Err(format!("prefix /{prefix} leaves no room for the stack's address"));
    }
    Ok((ip, prefix))
}

/// `IP6/PREFIX` (prefix /64 if omitted, at most /126).
pub fn cidr6(s: &str) -> Result<(std::net::Ipv6Addr, u8), String> {
    let (ip, prefix) = s.split_once('/').unwrap_or((s, "64"));
    let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| format!("bad IPv6 address {ip:?}"))?;
    let prefix: u8 = prefix.parse().map_err(|_| format!("bad prefix length {prefix:?}"))?;
    if prefix > 126 {
        return Err(format!("prefix /{prefix} leaves no room for the stack's address"));
    }
    Ok((ip, prefix))
}

/// IPv6 (issue 13): a `--route` prefix of either family: IPv4 as [`cidr`], IPv6 as
/// `IP6/PREFIX` (prefix /64 if omitted, at most /128: a route may name one host).
pub fn route(s: &str) -> Result<(std::net::IpAddr, u8), String> {
    let ip = s.split_once('/').map_or(s, |(ip, _)| ip);
    if ip.parse::<Ipv4Addr>().is_ok() {
        return cidr(s).map(|(ip, len)| (ip.into(), len));
    }
    let (ip, prefix) = s.split_once('/').unwrap_or((s, "64"));
    let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| format!("bad IPv4 or IPv6 address {ip:?}"))?;
    let prefix: u8 = prefix.parse().map_err(|_| format!("bad prefix length {prefix:?}"))?;
    if prefix > 128 {
        return Err(format!("prefix /{prefix} is longer than an IPv6 address"));
    }
    Ok((ip.into(), prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size("512"), Ok(512));
        assert_eq!(size("64K"), Ok(64 << 10));
        assert_eq!(size("1.5m"), Ok(3 << 19));
        assert_eq!(size("1G"), Ok(1 << 30));
        assert!(size("-1").is_err());
        assert!(size("inf").is_err());
        assert!(size("x").is_err());
    }

    #[test]
    fn probabilities_and_times() {
        assert_eq!(prob("0.25"), Ok(0.25));
        assert!(prob("1.5").is_err());
        assert!(prob("NaN").is_err());
        assert_eq!(millis("2.5"), Ok(Duration::from_micros(2500)));
        assert!(millis("-1").is_err());
        assert!(sample_duration("0").is_err());
        assert!(sample_duration("601").is_err());
        assert_eq!(sample_duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(timeout("inf").is_err());
    }

    #[test]
    fn counts_and_lists() {
        assert_eq!(scale_count("10k"), Ok(10_000));
        assert_eq!(scale_count("1m"), Ok(1_000_000));
        assert!(scale_count("2m").is_err());
        assert!(scale_count("0").is_err());
        assert!(count("0").is_err());
        assert_eq!(list("3, 1,3", |s| s.parse::<u8>().map_err(|e| e.to_string())), Ok(vec![1, 3]));
        assert!(list(",", |s| s.parse::<u8>().map_err(|e| e.to_string())).is_err());
    }

    #[test]
    fn cidr6_parsing() {
        assert_eq!(cidr6("fd00:77::1/64"), Ok(("fd00:77::1".parse().unwrap(), 64)));
        assert_eq!(cidr6("fd00:77::1"), Ok(("fd00:77::1".parse().unwrap(), 64)));
        assert!(cidr6("fd00::1/127").is_err());
        assert!(cidr6("10.0.0.1/24").is_err());
    }

    #[test]
    fn route_parsing_takes_both_families() {
        assert_eq!(route("10.99.0.0/24"), Ok(("10.99.0.0".parse().unwrap(), 24)));
        assert_eq!(route("fd00:99::/64"), Ok(("fd00:99::".parse().unwrap(), 64)));
        assert_eq!(route("fd00:99::1"), Ok(("fd00:99::1".parse().unwrap(), 64)));
        assert_eq!(route("fd00:99::1/128"), Ok(("fd00:99::1".parse().unwrap(), 128)));
        assert!(route("fd00:99::/129").is_err());
        assert!(route("10.99.0.0/31").is_err());
        assert!(route("nope/24").is_err());
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(cidr("10.1.2.3/16"), Ok((Ipv4Addr::new(10, 1, 2, 3), 16)));
        assert_eq!(cidr("10.1.2.3"), Ok((Ipv4Addr::new(10, 1, 2, 3), 24)));
        assert!(cidr("10.1.2/24").is_err());
        assert!(cidr("10.1.2.3/31").is_err());
        assert!(cidr("10.1.2.3/x").is_err());
    }
}
