//! TUN offload (issue 12) against the Linux kernel, over a TUN in a private namespace each
//! test creates (and removes): virtio-net header, checksum offload, the kernel's GRO/TSO
//! super-segments taken whole, and utcp's super-segments cut by the kernel (TSO).
//! Needs root and /dev/net/tun (`ignored` otherwise, failing without them under CI=true;
//! see `crates/tools/build.rs`); the capture test also needs tshark.
//!
//! Every transfer is checked byte-exact (SHA-256 of seeded PRNG streams), and the link
//! counters must show super-segments really crossed, so a silent fallback to a plain TUN
//! fails the test.

mod common;
use common::{Env, env_at, expected, recv_stream, send_stream};
use std::io::{self};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};
use std::sync::{Arc, mpsc};
use std::time::Duration;
use utcp::{InterfaceConfig, LinkStats, TcpListener, TcpStream};
use utcp_tools::netns::assert_root;

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 2);
const MIB: u64 = 1 << 20;
const STEP: Duration = Duration::from_secs(60);

fn env(tag: &str, f: impl FnOnce(&mut InterfaceConfig)) -> Env {
    env_at(tag, "off0", STACK, KERNEL, f)
}

/// Kernel client <-> utcp server, `len` bytes each way at once, byte-exact.
fn kernel_client_both_ways(e: &Env, len: u64) {
    let l = TcpListener::bind(&e.iface, (STACK, 5001)).unwrap();
    let client = e.kernel(move || -> io::Result<(u64, [u8; 32], [u8; 32])> {
        let s =
            std::net::TcpStream::connect_timeout(&SocketAddr::from((STACK, 5001)), Duration::from_secs(10))?;
        s.set_read_timeout(Some(STEP))?;
        s.set_write_timeout(Some(STEP))?;
        let w = s.try_clone()?;
        let writer = std::thread::spawn(move || -> io::Result<[u8; 32]> {
            let h = send_stream(&w, 11, len)?;
            w.shutdown(Shutdown::Write)?;
            Ok(h)
        });
        let (n, got) = recv_stream(&s)?;
        let sent = writer.join().map_err(|_| io::Error::other("writer panicked"))??;
        Ok((n, got, sent))
    });
    let (s, peer) = l.accept().unwrap();
    assert_eq!(peer.ip(), IpAddr::V4(KERNEL));
    s.set_read_timeout(Some(STEP)).unwrap();
    let s = Arc::new(s);
    let r = s.clone();
    let reader = std::thread::spawn(move || recv_stream(&*r));
    let sent = send_stream(&*s, 22, len).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (n, got) = reader.join().unwrap().unwrap();
    assert_eq!(n, len);
    assert_eq!(got, expected(11, len), "kernel -> utcp bytes differ");
    let (kn, kgot, _) = client.join().unwrap().unwrap();
    assert_eq!(kn, len);
    assert_eq!(kgot, sent, "utcp -> kernel bytes differ");
}

/// utcp client -> kernel listener, `len` bytes each way, byte-exact.
fn utcp_client_both_ways(e: &Env, len: u64) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = e.kernel(move || -> io::Result<(u64, [u8; 32])> {
        let l = std::net::TcpListener::bind((KERNEL, 6001))?;
        ready_tx.send(()).unwrap();
        let (s, _) = l.accept()?;
        s.set_read_timeout(Some(STEP))?;
        let w = s.try_clone()?;
        let writer = std::thread::spawn(move || -> io::Result<()> {
            send_stream(&w, 33, len)?;
            w.shutdown(Shutdown::Write)
        });
        let got = recv_stream(&s)?;
        writer.join().map_err(|_| io::Error::other("writer panicked"))??;
        Ok(got)
    });
    ready_rx.recv_timeout(STEP).unwrap();
    let s = Arc::new(TcpStream::connect(&e.iface, (KERNEL, 6001)).unwrap());
    s.set_read_timeout(Some(STEP)).unwrap();
    let r = s.clone();
    let reader = std::thread::spawn(move || recv_stream(&*r));
    let sent = send_stream(&*s, 44, len).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (n, got) = reader.join().unwrap().unwrap();
    assert_eq!(n, len);
    assert_eq!(got, expected(33, len), "kernel -> utcp bytes differ");
    let (kn, kgot) = server.join().unwrap().unwrap();
    assert_eq!(kn, len);
    assert_eq!(kgot, sent, "utcp -> kernel bytes differ");
}

/// Offload was in force and super-segments crossed both ways.
#[track_caller]
fn assert_super_segments(link: &LinkStats) {
    assert!(link.offload, "the TUN runs with offload: {link:?}");
    assert!(link.rx_super_segments > 0, "the kernel handed over GRO/TSO super-segments: {link:?}");
    assert!(link.tx_super_segments > 0, "utcp sent super-segments: {link:?}");
    assert!(
        link.tx_super_segment_segs >= 2 * link.tx_super_segments,
        "each super-segment stands for at least two segments: {link:?}"
    );
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn offload_kernel_client_32mib_each_way_byte_exact() {
    assert_root("offload_kernel_client_32mib_each_way_byte_exact");
    let e = env("offk", |_| {});
    kernel_client_both_ways(&e, 32 * MIB);
    assert!(e.iface.error().is_none());
    assert_super_segments(&e.iface.link_stats());
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn offload_utcp_client_32mib_each_way_byte_exact() {
    assert_root("offload_utcp_client_32mib_each_way_byte_exact");
    let e = env("offu", |_| {});
    utcp_client_both_ways(&e, 32 * MIB);
    assert!(e.iface.error().is_none());
    assert_super_segments(&e.iface.link_stats());
}

/// `InterfaceConfig::offload = false` (`--no-offload`): a plain TUN, one MSS per packet.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn no_offload_is_a_plain_tun() {
    assert_root("no_offload_is_a_plain_tun");
    let e = env("offn", |c| c.offload = false);
    kernel_client_both_ways(&e, 8 * MIB);
    let link = e.iface.link_stats();
    assert!(!link.offload, "{link:?}");
    assert_eq!((link.rx_super_segments, link.tx_super_segments), (0, 0), "{link:?}");
    assert!(link.rx_packets > 8 * MIB / 1500, "one packet per MSS at most: {link:?}");
}

/// The capture shows what crossed the TUN: super-segments as single records of their real
/// length (TCP payload beyond one MSS), and tshark reads the file.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
#[cfg_attr(not(utcp_tool_tests), ignore = "needs tshark: apt-get install tshark (CI installs it)")]
fn offload_pcap_opens_in_tshark_with_super_segments() {
    assert_root("offload_pcap_opens_in_tshark_with_super_segments");
    let path = std::env::temp_dir().join(format!("utcp-offload-{}.pcap", std::process::id()));
    let p = path.clone();
    let e = env("offp", move |c| c.pcap = Some(p));
    kernel_client_both_ways(&e, 4 * MIB);
    assert_super_segments(&e.iface.link_stats());
    drop(e); // flushes the capture
    let out = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .args(["-T", "fields", "-e", "ip.src", "-e", "tcp.len"])
        .output()
        .expect("tshark must be installed for this test (apt-get install tshark)");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let big = |src: &str| {
        text.lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(s, len)| *s == src && len.parse::<usize>().is_ok_and(|n| n > 1460))
            .count()
    };
    assert!(big(&KERNEL.to_string()) > 0, "kernel super-segments in the capture");
    assert!(big(&STACK.to_string()) > 0, "utcp super-segments in the capture");
}

/// RFC 5681 §4.2 (SHLD-19), as Linux applies it with GRO: a bulk upload from the kernel
/// arrives as super-segments, and utcp acknowledges at least every second one of them
/// (each carries far more than two full-sized segments). Counted in the capture.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn offload_bulk_upload_acks_at_least_every_second_super_segment() {
    assert_root("offload_bulk_upload_acks_at_least_every_second_super_segment");
    let path = std::env::temp_dir().join(format!("utcp-offload-ack-{}.pcap", std::process::id()));
    let p = path.clone();
    let e = env("offa", move |c| c.pcap = Some(p));
    let len = 16 * MIB;
    let l = TcpListener::bind(&e.iface, (STACK, 5010)).unwrap();
    let client = e.kernel(move || -> io::Result<[u8; 32]> {
        let s =
            std::net::TcpStream::connect_timeout(&SocketAddr::from((STACK, 5010)), Duration::from_secs(10))?;
        s.set_write_timeout(Some(STEP))?;
        let h = send_stream(&s, 55, len)?;
        s.shutdown(Shutdown::Write)?;
        Ok(h)
    });
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    assert_eq!(recv_stream(&s).unwrap(), (len, expected(55, len)));
    assert_eq!(client.join().unwrap().unwrap(), expected(55, len));
    let link = e.iface.link_stats();
    drop(s);
    drop(l);
    drop(e);
    let cap = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    // (from the kernel, TCP payload, flags) per record.
    let mut pkts = Vec::new();
    let mut at = 24;
    while at + 16 <= cap.len() {
        let incl = u32::from_le_bytes(cap[at + 8..at + 12].try_into().unwrap()) as usize;
        let p = &cap[at + 16..(at + 16 + incl).min(cap.len())];
        at += 16 + incl;
        if p.len() < 40 || p[0] != 0x45 || p[9] != 6 {
            continue;
        }
        let total = u16::from_be_bytes([p[2], p[3]]) as usize;
        let payload = total.saturating_sub(20 + (p[32] >> 4) as usize * 4);
        pkts.push((p[12..16] == KERNEL.octets(), payload, p[33]));
    }
    let supers = pkts.iter().filter(|p| p.0 && p.1 > 1460).count();
    let acks = pkts.iter().filter(|p| !p.0 && p.1 == 0 && p.2 & 0x17 == 0x10).count();
    eprintln!("bulk upload with offload: {supers} super-segments, {acks} pure ACKs; {link:?}");
    assert!(link.rx_super_segments > 0 && supers > 0, "super-segments in the capture");
    assert!(2 * acks >= supers, "{acks} ACKs for {supers} super-segments: fewer than one per two");
}
