//! Issue 12 (latency): the runtime's busy polling and its transmit queue, against the
//! Linux kernel in a namespace each test creates. Correctness only (no timing asserts).

mod common;
use common::{echo_exchanges, env_at, kernel_connect_nodelay};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;
use utcp::{BusyPoll, Interface, TcpListener};
use utcp_tools::netns::{NetNs, assert_root};

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 79, 1, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 79, 1, 2);
const STEP: Duration = Duration::from_secs(20);

fn setup(tag: &str, busy_poll: BusyPoll) -> (Interface, NetNs) {
    let e = env_at(tag.trim_start_matches("utcp-"), "lat0", STACK, KERNEL, |cfg| cfg.busy_poll = busy_poll);
    (e.iface, e.ns)
}

fn kernel_connect(port: u16) -> TcpStream {
    kernel_connect_nodelay(SocketAddr::from((STACK, port)), STEP)
}

/// With `BusyPoll::Always`, a leader reads requests without sleeping: every transaction is
/// answered correctly and (with a budget far above any round trip) busy polling, not
/// the poll, delivers requests.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn busy_polling_leader_serves_request_response() {
    assert_root("busy_polling_leader_serves_request_response");
    const N: u64 = 2000;
    let (iface, ns) = setup("utcp-ltbusy", BusyPoll::Always(Duration::from_millis(20)));
    let (before, after) = echo_exchanges(&iface, &ns, STACK, 7101, N, Duration::ZERO);
    let hits = after.busy_poll_hits - before.busy_poll_hits;
    eprintln!(
        "{N} transactions: {hits} busy-poll hits, {} poll wake-ups",
        after.leader_wakeups - before.leader_wakeups
    );
    assert!(hits > 0, "busy polling never delivered a request");
}

/// Sixteen threads write to their own connections at once: the transmit queue writes
/// after the interface lock, often for another thread, and every connection still
/// delivers its bytes complete and in order.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn concurrent_writers_deliver_in_order() {
    assert_root("concurrent_writers_deliver_in_order");
    const CONNS: usize = 16;
    const BYTES: usize = 2 << 20;
    let (iface, ns) = setup("utcp-lttx", BusyPoll::default());
    let l = TcpListener::bind(&iface, (STACK, 7102)).unwrap();
    let client = ns
        .spawn(|| {
            let readers: Vec<_> = (0..CONNS)
                .map(|_| {
                    let mut s = kernel_connect(7102);
                    std::thread::spawn(move || {
                        let mut id = [0u8; 1];
                        s.read_exact(&mut id).unwrap();
                        let mut got = Vec::with_capacity(BYTES);
                        s.read_to_end(&mut got).unwrap();
                        assert_eq!(got.len(), BYTES, "connection {} length", id[0]);
                        for (i, &b) in got.iter().enumerate() {
                            assert_eq!(b, (i % 251) as u8 ^ id[0], "connection {} byte {i}", id[0]);
                        }
                    })
                })
                .collect();
            for r in readers {
                r.join().expect("reader");
            }
        })
        .unwrap();
    let mut writers = Vec::new();
    for id in 0..CONNS as u8 {
        let (mut s, _) = l.accept().unwrap();
        writers.push(std::thread::spawn(move || {
            s.write_all(&[id]).unwrap();
            let data: Vec<u8> = (0..BYTES).map(|i| (i % 251) as u8 ^ id).collect();
            for chunk in data.chunks(1000 + id as usize * 97) {
                s.write_all(chunk).unwrap();
            }
        }));
    }
    for w in writers {
        w.join().expect("writer");
    }
    client.join().expect("client panicked").expect("setns");
    let st = iface.link_stats();
    eprintln!("{st:?}");
    assert!(st.tx_unlocked > 0, "data writes go out after the interface lock");
}

/// The default `BusyPoll::Adaptive` backs off when polling does not pay: a client that
/// sends a byte every 5 ms (far beyond the 50 µs budget) gets every byte echoed, and the
/// leader polls on only a handful of its 40 waits (1, 3, 7, ... chances skipped after
/// each miss) instead of every one.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn adaptive_busy_poll_backs_off_when_idle() {
    assert_root("adaptive_busy_poll_backs_off_when_idle");
    const N: u64 = 40;
    let (iface, ns) = setup("utcp-ltadapt", BusyPoll::default());
    let (before, after) = echo_exchanges(&iface, &ns, STACK, 7103, N, Duration::from_millis(5));
    let polls =
        (after.busy_poll_hits + after.busy_poll_misses) - (before.busy_poll_hits + before.busy_poll_misses);
    eprintln!("{N} idle waits: {polls} busy polls; {after:?}");
    assert!(after.leader_wakeups - before.leader_wakeups >= N / 2, "the leader slept in ppoll");
    assert!(polls <= 12, "{polls} busy polls in {N} idle waits: the adaptive poll did not back off");
}
