//! `utcp demo` end to end (it creates and removes its own namespace): exit 0, the traced
//! IPv4 connection, the bulk echo and the HTTP download, and (issue 13) the IPv6 echo
//! line. Small sizes keep it short. Needs root and /dev/net/tun: `ignored` otherwise,
//! run (and failing without them) under CI=true; see `crates/tools/build.rs`.

use std::process::Command;
use utcp_tools::netns::assert_root;

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn demo_runs_ipv4_and_ipv6_exchanges() {
    assert_root("demo_runs_ipv4_and_ipv6_exchanges");
    let out = Command::new(env!("CARGO_BIN_EXE_utcp"))
        .args(["demo", "--bulk", "1M", "--http-size", "256K"])
        .output()
        .expect("run utcp demo");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "utcp demo: {:?}\n{text}\n{err}", out.status);
    assert!(text.contains("bulk echo: 1048576 bytes each way, byte-exact"), "{text}");
    assert!(text.contains("-> 262144 bytes"), "http line: {text}");
    // IPv6 (issue 13): one connection over the TUN's ULA addresses, byte-exact.
    let v6 =
        text.lines().find(|l| l.starts_with("ipv6 echo: ")).unwrap_or_else(|| panic!("no IPv6 line: {text}"));
    assert!(v6.contains("[fd00:75:7463::2]:") && v6.contains("-> [fd00:75:7463::1]:7"), "{v6}");
    assert!(v6.contains("262144 bytes each way, byte-exact"), "{v6}");
    assert!(text.contains("connections served      4"), "{text}");
    assert!(text.contains("removed namespace"), "{text}");
}
