//! Path MTU discovery against the Linux kernel (issue 13). Three namespaces this test
//! creates: the client (kernel TCP) — veth, MTU 1500 — a router (ip_forward=1) — veth,
//! MTU 1280 — the namespace holding utcp's TUN (its kernel forwards between the veth and
//! the TUN, whose MTU is 1500). Full-sized 1500-byte packets fit neither way:
//!
//! - classic PMTUD (RFC 1191): the kernel that meets the 1280 link answers a DF packet with
//!   Fragmentation Needed (next-hop MTU 1280); utcp lowers its MSS and resends, the client
//!   kernel does the same;
//! - black hole: iptables in the router and in the TUN's namespace drop every
//!   Fragmentation Needed, so only packetization-layer PMTUD saves the transfer: utcp with
//!   `Config::mtu_probing = 1`, the client kernel with net.ipv4.tcp_mtu_probing=1 (RFC 4821
//!   §7.7 black-hole detection, then `tcp_base_mss`).
//!
//! - IPv6 (RFC 8201): the same topology dual-stacked; the router meeting the 1280-byte
//!   link answers with ICMPv6 Packet Too Big (IPv6 routers never fragment).
//!
//! Each variant moves 10 MiB each way, byte-exact. All traffic stays on private addresses
//! inside the namespaces; every wait is bounded.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;
use utcp::{Interface, InterfaceConfig, TcpListener};
use utcp_tools::netns::{NetNs, assert_root};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 93, 1, 1);
const TUN_PEER: Ipv4Addr = Ipv4Addr::new(10, 93, 3, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 93, 3, 2);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x93, 1, 0, 0, 0, 0, 1);
const TUN_PEER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x93, 3, 0, 0, 0, 0, 1);
const STACK6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x93, 3, 0, 0, 0, 0, 2);
const PORT: u16 = 7100;
const BYTES: usize = 10 << 20;
const LIMIT: Duration = Duration::from_secs(60);

struct Topology {
    cl: NetNs,
    rt: NetNs,
    ut: NetNs,
}

fn veth(a: &NetNs, an: &str, aip: &str, b: &NetNs, bn: &str, bip: &str, mtu: &str) -> std::io::Result<()> {
    a.exec("ip", &["link", "add", an, "mtu", mtu, "type", "veth", "peer", "name", bn, "netns", b.name()])?;
    for (ns, n, ip) in [(a, an, aip), (b, bn, bip)] {
        ns.exec("ip", &["link", "set", n, "mtu", mtu])?;
        ns.exec("ip", &["addr", "add", ip, "dev", n])?;
        ns.exec("ip", &["link", "set", n, "up"])?;
        // Packets as sent: no segmentation offload or aggregation hides the MTU.
        ns.exec("ethtool", &["-K", n, "tso", "off", "gso", "off", "gro", "off"])?;
    }
    Ok(())
}

impl Topology {
    fn build(tag: &str) -> std::io::Result<Topology> {
        let t = Topology {
            cl: NetNs::create(&NetNs::unique_name(&format!("utcpm{tag}-cl")))?,
            rt: NetNs::create(&NetNs::unique_name(&format!("utcpm{tag}-rt")))?,
            ut: NetNs::create(&NetNs::unique_name(&format!("utcpm{tag}-ut")))?,
        };
        veth(&t.cl, "c0", "10.93.1.1/24", &t.rt, "r0", "10.93.1.254/24", "1500")?;
        veth(&t.ut, "u0", "10.93.2.1/24", &t.rt, "r1", "10.93.2.254/24", "1280")?;
        t.cl.exec("ip", &["route", "add", "default", "via", "10.93.1.254"])?;
        t.ut.exec("ip", &["route", "add", "default", "via", "10.93.2.254"])?;
        t.rt.exec("ip", &["route", "add", "10.93.3.0/24", "via", "10.93.2.1"])?;
        for ns in [&t.rt, &t.ut] {
            ns.exec("sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
        }
        Ok(t)
    }

    /// IPv6 addresses and routes on the same links (`nodad`: usable at once).
    fn add_ipv6(&self) -> std::io::Result<()> {
        let addr =
            |ns: &NetNs, dev: &str, a: &str| ns.exec("ip", &["-6", "addr", "add", a, "dev", dev, "nodad"]);
        addr(&self.cl, "c0", "fd00:93:1::1/64")?;
        addr(&self.rt, "r0", "fd00:93:1::fe/64")?;
        addr(&self.ut, "u0", "fd00:93:2::1/64")?;
        addr(&self.rt, "r1", "fd00:93:2::fe/64")?;
        self.cl.exec("ip", &["-6", "route", "add", "default", "via", "fd00:93:1::fe"])?;
        self.ut.exec("ip", &["-6", "route", "add", "default", "via", "fd00:93:2::fe"])?;
        self.rt.exec("ip", &["-6", "route", "add", "fd00:93:3::/64", "via", "fd00:93:2::1"])?;
        for ns in [&self.rt, &self.ut] {
            ns.exec("sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"])?;
        }
        Ok(())
    }

    /// Drop every ICMP Fragmentation Needed the two routing kernels send or forward.
    fn black_hole(&self) -> std::io::Result<()> {
        for ns in [&self.rt, &self.ut] {
            for chain in ["OUTPUT", "FORWARD"] {
                ns.exec(
                    "iptables",
                    &["-A", chain, "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"],
                )?;
            }
        }
        self.cl.exec("sysctl", &["-qw", "net.ipv4.tcp_mtu_probing=1"])?;
        Ok(())
    }
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

fn write_pattern(w: &mut impl Write) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0;
    while at < BYTES {
        let n = buf.len().min(BYTES - at);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(at + k);
        }
        w.write_all(&buf[..n])?;
        at += n;
    }
    Ok(())
}

/// Read to EOF; the number of bytes and whether every one matched the pattern.
fn read_pattern(r: &mut impl Read) -> std::io::Result<(usize, bool)> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut at, mut ok) = (0usize, true);
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok((at, ok));
        }
        ok &= buf[..n].iter().enumerate().all(|(k, &b)| b == pattern(at + k));
        at += n;
    }
}

/// Client → utcp 10 MiB, then utcp → client 10 MiB; returns utcp's path MSS afterwards.
fn transfer_both_ways(t: &Topology, mtu_probing: u8) -> Option<u16> {
    transfer_both_ways_at(t, mtu_probing, IpAddr::V4(STACK), IpAddr::V4(CLIENT))
}

/// As `transfer_both_ways`, to utcp's `stack` address from the client's `client` one.
fn transfer_both_ways_at(t: &Topology, mtu_probing: u8, stack: IpAddr, client: IpAddr) -> Option<u16> {
    let mut cfg = InterfaceConfig::new("pm0", STACK, TUN_PEER, 24);
    cfg.netns = Some(t.ut.name().to_string());
    cfg.engine.mtu_probing = mtu_probing;
    if stack.is_ipv6() {
        cfg.addr6 = Some(STACK6);
        cfg.peer6 = Some((TUN_PEER6, 64));
    }
    let iface = Interface::new(cfg).expect("interface");
    let l = TcpListener::bind(&iface, SocketAddr::new(stack, PORT)).expect("bind");
    let client_thread =
        t.cl.spawn(move || -> std::io::Result<(usize, bool)> {
            let mut s = TcpStream::connect_timeout(&SocketAddr::new(stack, PORT), Duration::from_secs(10))?;
            s.set_read_timeout(Some(LIMIT))?;
            s.set_write_timeout(Some(LIMIT))?;
            write_pattern(&mut s)?;
            s.shutdown(std::net::Shutdown::Write)?;
            read_pattern(&mut s)
        })
        .expect("spawn client");
    let (mut s, peer) = l.accept_timeout(LIMIT).expect("accept");
    assert_eq!(peer.ip(), client);
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.set_write_timeout(Some(LIMIT)).unwrap();
    let (got, exact) = read_pattern(&mut s).expect("utcp reads the client's 10 MiB");
    assert_eq!((got, exact), (BYTES, true), "client -> utcp");
    write_pattern(&mut s).expect("utcp writes 10 MiB");
    let mss = s.path_mss().expect("path mss");
    drop(s);
    let (got, exact) = client_thread.join().expect("client thread").expect("setns").expect("client transfer");
    assert_eq!((got, exact), (BYTES, true), "utcp -> client");
    mss
}

/// Classic PMTUD (RFC 1191) both ways through a 1280-byte link.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn ten_mib_both_ways_through_a_1280_byte_link() {
    assert_root("ten_mib_both_ways_through_a_1280_byte_link");
    let t = Topology::build("c").expect("topology");
    let mss = transfer_both_ways(&t, 0);
    // The TUN namespace's kernel sent Fragmentation Needed with MTU 1280: 1280 - 40.
    assert_eq!(mss, Some(1240), "utcp's MSS after Fragmentation Needed");
}

/// ICMP dropped: black-hole detection (tcp_mtu_probing=1 on both ends) saves the transfer.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn ten_mib_both_ways_through_an_icmp_black_hole() {
    assert_root("ten_mib_both_ways_through_an_icmp_black_hole");
    let t = Topology::build("b").expect("topology");
    t.black_hole().expect("iptables");
    let mss = transfer_both_ways(&t, 1);
    // Black-hole detection fell back to Linux's tcp_base_mss (1024), then RFC 4821 probes
    // climbed back up to at most what the 1280-byte link carries (1280 - 40); no ICMP
    // ever arrived.
    let mss = mss.expect("the path MSS changed");
    eprintln!("utcp's path MSS after the transfer: {mss}");
    assert!((1024..=1240).contains(&mss), "utcp's MSS after black-hole detection and probing: {mss}");
}

/// IPv6 (RFC 8201): Packet Too Big from the router both ways through the 1280-byte link.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn ten_mib_both_ways_over_ipv6_through_a_1280_byte_link() {
    assert_root("ten_mib_both_ways_over_ipv6_through_a_1280_byte_link");
    let t = Topology::build("6").expect("topology");
    t.add_ipv6().expect("IPv6 addresses and routes");
    let mss = transfer_both_ways_at(&t, 0, IpAddr::V6(STACK6), IpAddr::V6(CLIENT6));
    // Packet Too Big with MTU 1280: 1280 - 40 (IPv6 header) - 20 (TCP header).
    assert_eq!(mss, Some(1220), "utcp's MSS after Packet Too Big");
}
