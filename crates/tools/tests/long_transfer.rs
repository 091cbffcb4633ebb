//! A transfer longer than half the sequence space, against the Linux kernel over a TUN in
//! a namespace the test creates. Regression (issue 12): SND.UP stayed at ISS, so after
//! 2^31 octets every segment carried URG; the kernel then held an urgent mark (SIGURG,
//! POLLPRI, its header prediction off) and, when the mark was reached, took an octet out
//! of the stream. Needs root and /dev/net/tun (`ignored` otherwise, run under CI=true).

mod common;
use common::env_at;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use utcp::TcpListener;
use utcp_tools::netns::assert_root;

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 2);
const STEP: Duration = Duration::from_secs(120);
/// Past 2^31 octets by 64 MiB: the kernel is asked about urgent data from here on.
const CHECK_AT: u64 = (1 << 31) + (64 << 20);
const TOTAL: u64 = CHECK_AT + (16 << 20);

/// What the kernel says about urgent data: `recv(MSG_OOB)` fails with EINVAL when the
/// connection has no urgent mark (tcp_recv_urg), EAGAIN when one is announced, and
/// succeeds (None here) when an urgent octet is waiting.
fn urgent_mark(s: &std::net::TcpStream) -> Option<rustix::io::Errno> {
    let mut b = [0u8; 1];
    rustix::net::recv(s, &mut b, rustix::net::RecvFlags::OOB).err()
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn two_gib_to_the_kernel_without_urgent_data() {
    assert_root("two_gib_to_the_kernel_without_urgent_data");
    let e = env_at("long", "long0", STACK, KERNEL, |_| {});
    let addr = SocketAddr::from((STACK, 5301));
    let l = TcpListener::bind(&e.iface, addr).unwrap();
    let client = e.kernel(move || -> io::Result<(u64, Option<Option<rustix::io::Errno>>)> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        s.set_read_timeout(Some(STEP))?;
        let mut buf = vec![0u8; 1 << 16];
        let (mut got, mut mark) = (0u64, None);
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok((got, mark));
            }
            // Every octet is its offset's low byte: a missing or extra octet shows.
            let off = got;
            if let Some(i) = buf[..n].iter().enumerate().position(|(i, &b)| b != (off + i as u64) as u8) {
                return Err(io::Error::other(format!("octet {} is wrong", off + i as u64)));
            }
            got += n as u64;
            if mark.is_none() && got >= CHECK_AT {
                mark = Some(urgent_mark(&s));
            }
        }
    });
    let (mut s, _) = l.accept().unwrap();
    // Every chunk starts at a multiple of 64 KiB, so octet i of a chunk is offset i's low byte.
    let chunk: Vec<u8> = (0..1 << 16).map(|i| i as u8).collect();
    let mut sent = 0u64;
    while sent < TOTAL {
        s.write_all(&chunk).unwrap();
        sent += chunk.len() as u64;
    }
    drop(s);
    let (got, mark) = client.join().unwrap().unwrap();
    assert_eq!(got, sent, "octets lost or added");
    // No urgent data: EINVAL. (The bug gave EAGAIN: an announced mark not yet reached.)
    assert_eq!(mark, Some(Some(rustix::io::Errno::INVAL)), "the kernel saw urgent data after 2 GiB");
}
