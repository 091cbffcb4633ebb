//! ICMP echo over a real TUN (issue 13): the Linux kernel, in a namespace this test
//! creates, pings the stack's address and gets RFC 792 echo replies (RFC 1122 §3.2.2.6).

use std::net::Ipv4Addr;
use utcp::{Interface, InterfaceConfig};
use utcp_tools::netns::{NetNs, assert_root};

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 81, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 81, 0, 2);

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn kernel_ping_to_the_stack_address_is_answered() {
    assert_root("kernel_ping_to_the_stack_address_is_answered");
    let ns = NetNs::create(&NetNs::unique_name("utcp-icmp")).expect("create netns");
    let mut cfg = InterfaceConfig::new("ic0", STACK, KERNEL, 24);
    cfg.netns = Some(ns.name().to_string());
    let _iface = Interface::new(cfg).expect("interface");
    let stack = STACK.to_string();
    // `ping` exits non-zero unless every reply arrives in time (-W 2 per reply).
    let out = ns
        .exec("ping", &["-n", "-c", "3", "-i", "0.2", "-W", "2", "-s", "100", &stack])
        .expect("ping (iputils-ping; .ci/run installs it)");
    assert!(out.contains("3 packets transmitted, 3 received"), "ping output:\n{out}");
    assert!(out.contains("108 bytes from 10.81.0.2"), "ping output:\n{out}");
}
