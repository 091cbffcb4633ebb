//! Issue 12 (http): the TUN flow-steering program (`utcp::device::steer`) against the live
//! kernel, in a namespace the test creates. A kernel socket connects through a 3-queue
//! TUN; the test answers its SYN by hand and checks which queue the kernel's next
//! segments of that flow arrive on: queue 0 while the flow is not in the map, the mapped
//! queue once it is, and queue 0 again after it is removed.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::time::Duration;
use utcp::device::steer::{FlowKey, Steering};
use utcp::device::tun::{MAX_PACKET, Tun, TunConfig};
use utcp_tools::netns::{NetNs, assert_root};

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 81, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 81, 0, 2);
const PORT: u16 = 8081;

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut s: u32 = 0;
    let bytes: Vec<u8> = chunks.concat();
    for c in bytes.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPv4 TCP segment from the stack to the kernel, no options.
fn segment(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20);
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&dport.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    let pseudo = [&STACK.octets()[..], &KERNEL.octets()[..], &[0, 6, 0, 20]].concat();
    let c = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&STACK.octets());
    ip.extend_from_slice(&KERNEL.octets());
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    [ip, tcp].concat()
}

/// The next TCP segment of the kernel's that arrives on any queue: (queue, packet).
fn next_tcp(queues: &[Tun]) -> (usize, Vec<u8>) {
    let mut buf = vec![0u8; MAX_PACKET];
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        for (i, q) in queues.iter().enumerate() {
            if let Ok(n) = q.recv(&mut buf)
                && n >= 40
                && buf[0] >> 4 == 4
                && buf[9] == 6
            {
                return (i, buf[..n].to_vec());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no TCP segment from the kernel within 10 s");
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn the_kernel_sends_a_mapped_flow_to_its_queue() {
    assert_root("the_kernel_sends_a_mapped_flow_to_its_queue");
    let ns = NetNs::create(&NetNs::unique_name("utcp-steer")).expect("netns");
    let run = ns
        .spawn(|| {
            let cfg = TunConfig {
                name: "steer0".into(),
                peer: KERNEL,
                prefix: 24,
                mtu: 1500,
                peer6: None,
                multi_queue: true,
            };
            let q0 = Tun::open(&cfg).expect("multi-queue TUN");
            let queues = vec![q0.clone_queue().unwrap(), q0.clone_queue().unwrap()];
            let queues: Vec<Tun> = std::iter::once(q0).chain(queues).collect();
            let steer = Steering::load(64).expect("load the steering program");
            steer.attach(queues[0].as_fd()).expect("attach");
            // The kernel's client, from this namespace (the thread is in it).
            let client = std::thread::spawn(|| {
                let mut s = std::net::TcpStream::connect_timeout(
                    &SocketAddr::from((STACK, PORT)),
                    Duration::from_secs(10),
                )
                .expect("connect");
                std::thread::sleep(Duration::from_millis(200));
                s.write_all(b"mapped").unwrap();
                std::thread::sleep(Duration::from_millis(200));
                s.write_all(b"unmapped").unwrap();
                std::thread::sleep(Duration::from_millis(200));
            });
            let (q_syn, syn) = next_tcp(&queues);
            let sport = u16::from_be_bytes([syn[20], syn[21]]);
            let isn = u32::from_be_bytes([syn[24], syn[25], syn[26], syn[27]]);
            let key = FlowKey::inbound(
                SocketAddr::V4(SocketAddrV4::new(STACK, PORT)),
                SocketAddr::V4(SocketAddrV4::new(KERNEL, sport)),
            );
            steer.set(&key, 2).unwrap();
            // SYN-ACK, written on queue 1 (the queue written on must not matter).
            queues[1].send(&segment(PORT, sport, 1000, isn.wrapping_add(1), 0x12)).unwrap();
            let (q_ack, _) = next_tcp(&queues);
            let (q_data, data) = next_tcp(&queues);
            let payload1 = data[40..].to_vec();
            // ACK the data, then take the flow out of the map.
            queues[0].send(&segment(PORT, sport, 1001, isn.wrapping_add(1 + 6), 0x10)).unwrap();
            steer.remove(&key).unwrap();
            steer.remove(&key).expect("removing an absent key is fine");
            let (q_data2, data2) = next_tcp(&queues);
            let payload2 = data2[40..].to_vec();
            queues[0].send(&segment(PORT, sport, 1001, isn.wrapping_add(1 + 6 + 8), 0x14)).unwrap();
            client.join().unwrap();
            (q_syn, q_ack, q_data, payload1, q_data2, payload2)
        })
        .expect("spawn in netns");
    let (q_syn, q_ack, q_data, p1, q_data2, p2) = run.join().unwrap().expect("setns");
    assert_eq!(q_syn, 0, "an unmapped flow's SYN goes to queue 0");
    assert_eq!((q_ack, q_data), (2, 2), "the mapped flow's ACK and data go to queue 2");
    assert_eq!(p1, b"mapped");
    assert_eq!(q_data2, 0, "after removal the flow goes to queue 0 again");
    assert_eq!(p2, b"unmapped");
}
