//! The examples, run by the test command so they stay true.

#[path = "../examples/loopback.rs"]
mod loopback;

#[test]
fn loopback_example_transfers_one_mib_and_closes() {
    let s = loopback::run().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.bytes, 1 << 20);
    assert!(s.packets > 100, "1 MiB in {} packets?", s.packets);
}
