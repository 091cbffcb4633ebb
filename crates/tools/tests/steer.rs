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

// --- The runtime's steered waits (`steered.rs`), against kernel clients ---

mod common;
use common::{env_at, kernel_connect_nodelay};
use std::io::Read;

const RT_KERNEL: Ipv4Addr = Ipv4Addr::new(10, 82, 0, 1);
const RT_STACK: Ipv4Addr = Ipv4Addr::new(10, 82, 0, 2);
const STEP: Duration = Duration::from_secs(20);

/// `n` kernel clients connected to `port`, each accepted by the stack: (clients, streams).
fn pairs(
    env: &common::Env,
    port: u16,
    n: usize,
) -> (std::thread::JoinHandle<Vec<std::net::TcpStream>>, Vec<utcp::TcpStream>) {
    pairs_at(env, SocketAddr::from((RT_STACK, port)), n)
}

fn pairs_at(
    env: &common::Env,
    addr: SocketAddr,
    n: usize,
) -> (std::thread::JoinHandle<Vec<std::net::TcpStream>>, Vec<utcp::TcpStream>) {
    let l = utcp::TcpListener::bind(&env.iface, addr).unwrap();
    let clients = env.kernel(move || (0..n).map(|_| kernel_connect_nodelay(addr, STEP)).collect::<Vec<_>>());
    let streams = (0..n).map(|_| l.accept().unwrap().0).collect();
    (clients, streams)
}

/// Two rounds in which every stream's thread blocks in a one-octet read at once and each
/// client then writes its index: the first round makes the driver open queues (none are
/// open before threads crowd), the second gives every connection but the leader's one.
fn crowd(clients: &mut [std::net::TcpStream], streams: Vec<utcp::TcpStream>) -> Vec<utcp::TcpStream> {
    let n = streams.len();
    let go = std::sync::Arc::new(std::sync::Barrier::new(n + 1));
    let threads: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let go = go.clone();
            std::thread::spawn(move || {
                for _ in 0..2 {
                    go.wait();
                    let mut b = [0u8; 1];
                    s.read_exact(&mut b).unwrap();
                    assert_eq!(usize::from(b[0]), i);
                }
                s
            })
        })
        .collect();
    for _ in 0..2 {
        go.wait();
        std::thread::sleep(Duration::from_millis(100));
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(&[i as u8]).unwrap();
        }
    }
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// `n` four-octet request/responses from the kernel client `c` to a thread serving `s`;
/// returns both ends.
fn echo(
    env: &common::Env,
    mut c: std::net::TcpStream,
    mut s: utcp::TcpStream,
    n: u32,
) -> (std::net::TcpStream, utcp::TcpStream) {
    let server = std::thread::spawn(move || {
        let mut b = [0u8; 4];
        for _ in 0..n {
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        }
        s
    });
    let talk = env.kernel(move || {
        let mut b = [0u8; 4];
        for i in 0..n {
            c.write_all(&i.to_be_bytes()).unwrap();
            c.read_exact(&mut b).unwrap();
            assert_eq!(u32::from_be_bytes(b), i);
        }
        c
    });
    (talk.join().unwrap(), server.join().unwrap())
}

/// Eight threads block on their own connections at once: those that follow (another
/// thread reads the TUN) get a queue, and the kernel's packets wake them on it. Every
/// exchange is answered correctly.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn blocked_threads_are_woken_by_their_own_queues() {
    assert_root("blocked_threads_are_woken_by_their_own_queues");
    let env = env_at("steerrt", "steer1", RT_STACK, RT_KERNEL, |_| {});
    exchanges_on_eight_connections(&env, SocketAddr::from((RT_STACK, 7201)));
}

/// The same over IPv6: the program keys a flow by the last words of its addresses.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn blocked_threads_over_ipv6_are_woken_by_their_own_queues() {
    assert_root("blocked_threads_over_ipv6_are_woken_by_their_own_queues");
    let stack6: std::net::Ipv6Addr = "fd00:82::2".parse().unwrap();
    let env = env_at("steer6", "steer3", RT_STACK, RT_KERNEL, |c| {
        c.addr6 = Some(stack6);
        c.peer6 = Some(("fd00:82::1".parse().unwrap(), 64));
    });
    exchanges_on_eight_connections(&env, SocketAddr::from((stack6, 7203)));
}

/// Eight threads serve 300 request/responses each on their own connections, at once.
fn exchanges_on_eight_connections(env: &common::Env, addr: SocketAddr) {
    const CONNS: usize = 8;
    const ROUNDS: u32 = 300;
    assert!(env.iface.link_stats().steering, "steering must load as root");
    let (clients, streams) = pairs_at(env, addr, CONNS);
    let clients = clients.join().unwrap();
    let servers: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                let mut b = [0u8; 4];
                for _ in 0..ROUNDS {
                    s.read_exact(&mut b).unwrap();
                    let v = u32::from_be_bytes(b) + 1;
                    s.write_all(&v.to_be_bytes()).unwrap();
                }
            })
        })
        .collect();
    let talk = env.kernel(move || {
        let threads: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                std::thread::spawn(move || {
                    let mut b = [0u8; 4];
                    for r in 0..ROUNDS {
                        let v = (i as u32) << 16 | r;
                        c.write_all(&v.to_be_bytes()).unwrap();
                        c.read_exact(&mut b).unwrap();
                        assert_eq!(u32::from_be_bytes(b), v + 1);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    });
    talk.join().unwrap();
    servers.into_iter().for_each(|t| t.join().unwrap());
    let s = env.iface.link_stats();
    eprintln!(
        "steering: {} queues, {} assigned, {} steered waits, {} woken by their queue, {} bells",
        s.steer_queues, s.steer_assigned, s.steered_waits, s.steered_wakeups, s.steered_bells
    );
    assert!(s.steer_assigned >= 1 && s.steer_queues >= 1, "no connection got a queue: {s:?}");
    assert!(s.steered_wakeups > 0, "no thread was woken by its own queue: {s:?}");
    assert_eq!(s.steer_map_errors, 0);
}

/// Threads with queues go away (sleep) while their peers send: the driver takes their
/// parked queues over and reads the data (ACKing it) without them; it is all there when
/// they come back.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn the_driver_reads_the_queue_of_a_thread_that_stays_away() {
    assert_root("the_driver_reads_the_queue_of_a_thread_that_stays_away");
    const CONNS: usize = 4;
    const CHUNKS: usize = 10;
    let env = env_at("steerpk", "steer2", RT_STACK, RT_KERNEL, |_| {});
    let (clients, streams) = pairs(&env, 7202, CONNS);
    let mut clients = clients.join().unwrap();
    let streams = crowd(&mut clients, streams);
    let away = std::sync::Arc::new(std::sync::Barrier::new(CONNS + 1));
    let back = std::sync::Arc::new(std::sync::Barrier::new(CONNS + 1));
    let servers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let (away, back) = (away.clone(), back.clone());
            std::thread::spawn(move || {
                away.wait(); // now away from the socket until `back`
                back.wait();
                let mut rest = vec![0u8; CHUNKS * 100];
                s.set_read_timeout(Some(STEP)).unwrap();
                s.read_exact(&mut rest).unwrap();
                assert!(rest.iter().all(|&x| usize::from(x) == i));
            })
        })
        .collect();
    away.wait();
    let before = env.iface.link_stats();
    assert!(before.steer_assigned >= 1, "no connection got a queue: {before:?}");
    for _ in 0..CHUNKS {
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(&[i as u8; 100]).unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(50));
    let during = env.iface.link_stats();
    back.wait();
    servers.into_iter().for_each(|t| t.join().unwrap());
    assert!(during.steer_adoptions > before.steer_adoptions, "the driver took no queue over: {during:?}");
    assert!(
        during.rx_packets - before.rx_packets >= (CONNS * CHUNKS) as u64,
        "packets waited for their threads: {} read while all were away",
        during.rx_packets - before.rx_packets
    );
}

/// One connection thread among threads blocked in `accept` (the bench's servers, any
/// server with idle listeners) is not steered: it follows, leadership comes to it, and
/// it serves its requests as the leader (with the leader's busy poll). Steering it made
/// rr 2x slower (no busy poll on a queue).
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn a_lone_connection_among_listeners_is_not_steered() {
    assert_root("a_lone_connection_among_listeners_is_not_steered");
    const N: u32 = 400;
    let env = env_at("steerln", "steer4", RT_STACK, RT_KERNEL, |_| {});
    let (clients, mut streams) = pairs(&env, 7204, 1);
    // Three threads block in `accept` first (one of them leads), until released below.
    let idle: Vec<_> = (0..3)
        .map(|i| {
            let l = utcp::TcpListener::bind(&env.iface, (RT_STACK, 7210 + i)).unwrap();
            std::thread::spawn(move || l.accept_timeout(STEP).map(drop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let c = clients.join().unwrap().pop().unwrap();
    let s = streams.pop().unwrap();
    let before = env.iface.link_stats();
    let _pair = echo(&env, c, s, N);
    let after = env.iface.link_stats();
    let release = env.kernel(|| {
        (0..3)
            .map(|i| kernel_connect_nodelay(SocketAddr::from((RT_STACK, 7210 + i)), STEP))
            .collect::<Vec<_>>()
    });
    idle.into_iter().for_each(|t| t.join().unwrap().expect("released by a connection"));
    drop(release.join().unwrap());
    assert_eq!(after.steer_assigned, before.steer_assigned, "a lone connection got a queue: {after:?}");
    assert!(after.leads - before.leads >= u64::from(N) / 2, "{before:?} -> {after:?}");
}

/// A connection keeps its queue after the crowd is gone; waiting on it alone, its thread
/// busy polls the queue (`BusyPoll`) as a leader would poll the TUN, instead of paying a
/// wake-up per request for the rest of the connection's life.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn a_steered_connection_left_alone_busy_polls_its_queue() {
    assert_root("a_steered_connection_left_alone_busy_polls_its_queue");
    const N: u32 = 300;
    let env = env_at("steerbp", "steer5", RT_STACK, RT_KERNEL, |c| {
        c.busy_poll = utcp::BusyPoll::Always(Duration::from_millis(20));
    });
    let (clients, streams) = pairs(&env, 7205, 2);
    let mut clients = clients.join().unwrap();
    // Both threads block at once: one leads, the other's connection gets a queue.
    let streams = crowd(&mut clients, streams);
    let mid = env.iface.link_stats();
    assert!(mid.steer_assigned >= 1, "no connection got a queue: {mid:?}");
    // Each connection alone in turn: one of them has the queue, the other does not.
    for (c, s) in clients.into_iter().zip(streams) {
        drop(echo(&env, c, s, N));
    }
    let after = env.iface.link_stats();
    let (waits, hits) = (after.steered_waits - mid.steered_waits, after.busy_poll_hits - mid.busy_poll_hits);
    eprintln!("alone: {waits} steered waits, {hits} busy-poll hits, {} leads", after.leads - mid.leads);
    assert!(waits >= u64::from(N) / 2, "the connection with a queue did not use it: {mid:?} -> {after:?}");
    // Both phases were served by polling, the steered one included.
    assert!(hits >= u64::from(N) * 3 / 2, "{mid:?} -> {after:?}");
}
