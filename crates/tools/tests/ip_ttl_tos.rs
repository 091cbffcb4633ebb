//! Per-connection TTL and TOS (RFC 9293 §3.9.1.1 MUST-48; issue 13) from the blocking and
//! the async API, seen by the Linux kernel: iptables rules in the namespace this test
//! creates count the packets that arrive from the stack with the TTL and DSCP set.
//! Needs root (TUN, namespaces); all traffic stays inside the namespace.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use utcp::{Interface, InterfaceConfig, TcpListener};
use utcp_tools::netns::{NetNs, assert_root};

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 94, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 94, 0, 2);
const STEP: Duration = Duration::from_secs(30);

/// Packets counted by the INPUT rule matching TTL `ttl` and DSCP `dscp` from the stack.
fn counted(ns: &NetNs, ttl: u8, dscp: u8) -> u64 {
    let out = ns.exec("iptables", &["-L", "INPUT", "-v", "-x", "-n"]).expect("iptables -L");
    let want_ttl = format!("TTL match TTL == {ttl}");
    let want_dscp = format!("DSCP match 0x{dscp:02x}");
    out.lines()
        .find(|l| l.contains(&want_ttl) && l.contains(&want_dscp))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn count_rule(ns: &NetNs, ttl: u8, dscp: u8) {
    let (ttl, dscp) = (ttl.to_string(), format!("0x{dscp:02x}"));
    let src = STACK.to_string();
    ns.exec(
        "iptables",
        &[
            "-A", "INPUT", "-s", &src, "-m", "ttl", "--ttl-eq", &ttl, "-m", "dscp", "--dscp", &dscp, "-j",
            "ACCEPT",
        ],
    )
    .expect("iptables -A");
}

/// A kernel client in `ns` that sends `req` and reads until EOF.
fn client(ns: &NetNs, port: u16, req: &'static [u8]) -> std::thread::JoinHandle<std::io::Result<Vec<u8>>> {
    ns.spawn(move || {
        let mut s = std::net::TcpStream::connect_timeout(&SocketAddr::from((STACK, port)), STEP).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        s.write_all(req).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        back
    })
    .expect("spawn client")
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn set_ttl_and_tos_mark_the_packets_the_kernel_receives() {
    assert_root("set_ttl_and_tos_mark_the_packets_the_kernel_receives");
    let ns = NetNs::create(&NetNs::unique_name("utcp-tos")).expect("netns");
    let mut cfg = InterfaceConfig::new("tt0", STACK, KERNEL, 24);
    cfg.netns = Some(ns.name().to_string());
    let iface = Interface::new(cfg).expect("interface");
    // Blocking API: TTL 7, EF (TOS 0xb8, DSCP 0x2e).
    count_rule(&ns, 7, 0x2e);
    count_rule(&ns, 64, 0x00);
    let l = TcpListener::bind(&iface, (STACK, 7200)).unwrap();
    let c = client(&ns, 7200, b"ping");
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    assert_eq!((s.ttl().unwrap(), s.tos().unwrap()), (64, 0));
    let mut req = [0u8; 4];
    s.read_exact(&mut req).unwrap();
    let before = counted(&ns, 7, 0x2e);
    s.set_ttl(7).unwrap();
    s.set_tos(0xb8).unwrap();
    assert!(s.set_ttl(256).is_err() && s.set_ttl(0).is_err());
    assert_eq!((s.ttl().unwrap(), s.tos().unwrap()), (7, 0xb8));
    s.write_all(b"pong").unwrap();
    drop(s);
    assert_eq!(c.join().unwrap().unwrap(), b"pong");
    assert!(counted(&ns, 7, 0x2e) >= before + 2, "the reply and the FIN carry TTL 7 and EF");
    assert!(counted(&ns, 64, 0) >= 1, "the SYN-ACK went out with the defaults");

    // Async API: TTL 9, CS1 (TOS 0x20, DSCP 0x08).
    count_rule(&ns, 9, 0x08);
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let c = client(&ns, 7201, b"ping");
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = utcp::tokio::TcpListener::bind(&iface, SocketAddr::from((STACK, 7201))).unwrap();
        let (mut s, _) = tokio::time::timeout(STEP, l.accept()).await.unwrap().unwrap();
        let mut req = [0u8; 4];
        s.read_exact(&mut req).await.unwrap();
        s.set_ttl(9).unwrap();
        s.set_tos(0x20).unwrap();
        assert_eq!((s.ttl().unwrap(), s.tos().unwrap()), (9, 0x20));
        s.write_all(b"pong").await.unwrap();
        s.shutdown().await.unwrap();
    });
    assert_eq!(c.join().unwrap().unwrap(), b"pong");
    assert!(counted(&ns, 9, 0x08) >= 2, "the async stream's reply and FIN carry TTL 9 and CS1");
}
