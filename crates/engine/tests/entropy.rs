//! RFC 6528 §3 / RFC 9293 MUST-8/9: the secret behind ISNs, cookies, ports and the table
//! hash is not a public constant.
use utcp_engine::Config;

#[test]
fn default_secret_comes_from_the_os() {
    let (a, b) = (Config::default().isn_secret, Config::default().isn_secret);
    assert_ne!(a, b, "two defaults drew the same 128-bit secret");
    assert_ne!(a, *b"utcp-isn-secret!", "the old public constant");
}

#[test]
fn deterministic_constructor_is_deterministic() {
    assert_eq!(Config::deterministic(7).isn_secret, Config::deterministic(7).isn_secret);
    assert_ne!(Config::deterministic(7).isn_secret, Config::deterministic(8).isn_secret);
    assert_eq!(Config::default().with_secret([3; 16]).isn_secret, [3; 16]);
}
