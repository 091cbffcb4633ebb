//! Stress of `utcp::tokio::drive` (the TUN read by a tokio task, `pump.rs`) through the
//! `utcp forward` gateway: rounds of many parallel short HTTP/1.0 exchanges from kernel
//! clients in namespace A, terminated by utcp (any-IP, handshake gated), relayed to a
//! kernel server in namespace B, while CPU hog threads compete with the runtime's two
//! workers for the CPUs (to provoke scheduling races between the pump task, the driver
//! thread and the stream tasks). Every exchange must complete; a stalled one fails the
//! test with the engine's view of it and the interface's counters.
//!
//! Bounded: `UTCP_STRESS_ROUNDS` rounds (default 20: enough for the kernel clients'
//! ephemeral ports to come round while utcp holds their quads in TIME-WAIT) of `UTCP_STRESS_CONNS` connections
//! (default 200), at most `UTCP_STRESS_SECS` seconds of rounds (default 150), with
//! `UTCP_STRESS_HOGS` hog threads (default 2). All traffic stays in the two namespaces
//! the test creates. Needs root (namespaces, TUN).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use utcp_tools::forward::{self, ForwardOptions, Upstream};
use utcp_tools::netns::{NetNs, assert_root};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const PORT: u16 = 8080;
/// A stalled exchange is one that has not finished in this long (a hang guard, not a
/// timing assertion: a healthy one takes milliseconds, retransmissions included).
const STALL: Duration = Duration::from_secs(25);

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn sh(ns: &NetNs, script: &str) {
    let out = Command::new("ip").args(["netns", "exec", ns.name(), "sh", "-c", script]).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The body the server sends for request `n`: mostly a line, every 8th 96 KiB (several
/// windows' worth, so back-pressure and window updates are exercised too).
fn body(n: u32) -> Vec<u8> {
    let len = if n % 8 == 7 { 96 << 10 } else { 6 };
    (0..len).map(|i| (i as u32 ^ n).wrapping_mul(2654435761).to_le_bytes()[2]).collect()
}

/// Namespace B: SERVER on a dummy interface (or B's loopback) and a thread-per-connection
/// server answering "GET /N" with `body(N)`, until `stop`.
fn upstream(b: &NetNs, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let ok = Command::new("ip")
        .args(["netns", "exec", b.name(), "ip", "link", "add", "d0", "type", "dummy"])
        .output()
        .is_ok_and(|o| o.status.success());
    let dev = if ok { "d0" } else { "lo" };
    sh(b, &format!("ip addr add {SERVER}/24 dev {dev} && ip link set {dev} up"));
    let (tx, rx) = std::sync::mpsc::channel();
    let h = b
        .spawn(move || {
            use socket2::{Domain, Socket, Type};
            let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            l.set_reuse_address(true).unwrap();
            l.bind(&SocketAddr::from((SERVER, PORT)).into()).unwrap();
            l.listen(4096).unwrap();
            let l: std::net::TcpListener = l.into();
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        std::thread::spawn(move || serve_one(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(20)).expect("upstream server up");
    std::thread::spawn(move || h.join().unwrap().unwrap())
}

fn serve_one(mut s: TcpStream) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(STALL * 2)).unwrap();
    let mut req = Vec::new();
    let mut buf = [0u8; 512];
    while !req.ends_with(b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let n: u32 = String::from_utf8_lossy(&req)
        .strip_prefix("GET /")
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    let b = body(n);
    let _ = s.write_all(format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes());
    let _ = s.write_all(&b);
}

/// One exchange from namespace A through the gateway: Ok, or what stalled.
fn exchange(n: u32) -> Result<(), String> {
    let to = SocketAddr::from((SERVER, PORT));
    let mut s = TcpStream::connect_timeout(&to, STALL).map_err(|e| format!("#{n} connect: {e}"))?;
    let local = s.local_addr().map(|a| a.port()).unwrap_or(0);
    let at = |what: &str, got: usize| format!("#{n} from port {local}: {what} after {got} bytes");
    s.set_read_timeout(Some(STALL)).unwrap();
    s.set_write_timeout(Some(STALL)).unwrap();
    s.write_all(format!("GET /{n} HTTP/1.0\r\n\r\n").as_bytes()).map_err(|e| at(&e.to_string(), 0))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) => return Err(at(&e.to_string(), got.len())),
        }
    }
    let want = body(n);
    if !got.ends_with(&want) || !got.starts_with(b"HTTP/1.0 200") {
        return Err(at("wrong response", got.len()));
    }
    Ok(())
}

/// `conns` exchanges at once from namespace A; the failures.
fn round(a: &NetNs, first: u32, conns: u32) -> Vec<String> {
    let threads: Vec<_> = (first..first + conns).map(|n| a.spawn(move || exchange(n)).unwrap()).collect();
    threads.into_iter().filter_map(|t| t.join().unwrap().unwrap().err()).collect()
}

/// Spin on `n` threads until `stop` (bounded by the test's life).
fn hogs(n: u64, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                }
            })
        })
        .collect()
}

/// The engine's view of the connections (but those in TIME-WAIT), for a failure message.
fn engine_view(iface: &utcp::Interface) -> String {
    iface.with_stack(|st| {
        let all: Vec<_> = st.connections().collect();
        let tw = all.iter().filter(|(_, s)| *s == utcp::engine::State::TimeWait).count();
        let mut v: Vec<String> = all
            .iter()
            .filter(|(_, s)| *s != utcp::engine::State::TimeWait)
            .map(|(q, s)| format!("{} -> {}: {s:?}", q.remote, q.local))
            .collect();
        v.sort();
        format!("{tw} in TIME-WAIT; others:\n{}", v.join("\n"))
    })
}

/// The engine's nonzero drop counters.
fn drops(iface: &utcp::Interface) -> String {
    let c = iface.counters();
    let v: Vec<String> = utcp::wire::DropReason::ALL
        .iter()
        .filter(|d| c.dropped(**d) > 0)
        .map(|d| format!("{} {}", d.name(), c.dropped(*d)))
        .collect();
    v.join(", ")
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn forward_with_drive_completes_every_exchange_under_cpu_pressure() {
    assert_root("forward_with_drive_completes_every_exchange_under_cpu_pressure");
    let (rounds, conns) = (env_num("UTCP_STRESS_ROUNDS", 20), env_num("UTCP_STRESS_CONNS", 200) as u32);
    let budget = Duration::from_secs(env_num("UTCP_STRESS_SECS", 150));
    let a = NetNs::create(&NetNs::unique_name("ps-a")).expect("netns A");
    let b = NetNs::create(&NetNs::unique_name("ps-b")).expect("netns B");
    let stop = Arc::new(AtomicBool::new(false));
    let server = upstream(&b, stop.clone());
    let mut o = ForwardOptions::new(
        a.name(),
        "fw0",
        vec![(Ipv4Addr::new(10, 99, 0, 0).into(), 24)],
        Upstream::Netns(b.name().into()),
    );
    // A line per connection (how it ended) for a post-mortem: UTCP_STRESS_VERBOSE=1.
    o.verbose = env_num("UTCP_STRESS_VERBOSE", 0) == 1;
    // UTCP_STRESS_DRIVE=0: the same through the driver thread, for comparison.
    let drive = env_num("UTCP_STRESS_DRIVE", 1) == 1;
    o.drive = drive;
    let iface = forward::open_interface(&o).expect("gateway interface");
    let gw_stop = Arc::new(AtomicBool::new(false));
    let hog_threads = hogs(env_num("UTCP_STRESS_HOGS", 2), stop.clone());
    let start = Instant::now();
    let (done, failures) = std::thread::scope(|scope| {
        let gw = {
            let gw_stop = gw_stop.clone();
            let iface = &iface;
            scope.spawn(move || forward::serve(iface, o, gw_stop))
        };
        let mut done = 0;
        let mut failures = Vec::new();
        for r in 0..rounds {
            if start.elapsed() > budget {
                break;
            }
            let before = iface.link_stats();
            let failed = round(&a, r as u32 * conns, conns);
            done += 1;
            if !failed.is_empty() {
                let after = iface.link_stats();
                failures.push(format!(
                    "round {r}: {} of {conns} failed:\n{}\nengine:\n{}\ndrops: {}\nstats before {before:?}\nafter {after:?}",
                    failed.len(),
                    failed.join("\n"),
                    engine_view(&iface),
                    drops(&iface),
                ));
                break;
            }
        }
        gw_stop.store(true, Ordering::Relaxed);
        let totals = gw.join().unwrap().expect("gateway ran");
        eprintln!("{done} rounds of {conns} in {:?}: {totals:?}", start.elapsed());
        (done, failures)
    });
    stop.store(true, Ordering::Relaxed);
    for h in hog_threads {
        h.join().unwrap();
    }
    server.join().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let s = iface.link_stats();
    assert!(done > 0 && (s.async_bursts > 0) == drive, "the tokio task read the TUN iff drive: {s:?}");
}
