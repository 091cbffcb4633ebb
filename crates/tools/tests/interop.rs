//! Interoperability with the Linux kernel's TCP, over a TUN in a private namespace each
//! test creates (and removes). Needs root and /dev/net/tun: `ignored` otherwise, run (and failing
//! without them) under CI=true; see `crates/tools/build.rs`.
//!
//! Data is generated from seeded PRNG streams in 64 KiB chunks and compared by SHA-256,
//! so transfers of tens of MiB need no big buffers.

mod common;
use common::{Env, env_at, expected, recv_stream, run_utcp_connect, send_stream, stop_child};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use utcp::{Impairment, InterfaceConfig, TcpListener, TcpStream};
use utcp_tools::netns::{NetNs, assert_root};

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const MIB: u64 = 1 << 20;
/// Upper bound on any single blocking step of a test.
const STEP: Duration = Duration::from_secs(60);

fn env(tag: &str, impairment: Option<Impairment>) -> Env {
    env_with(tag, impairment, |_| {})
}

fn env_with(tag: &str, impairment: Option<Impairment>, f: impl FnOnce(&mut InterfaceConfig)) -> Env {
    env_at(tag, "utcp0", STACK, KERNEL, |cfg| {
        cfg.impairment = impairment;
        f(cfg);
    })
}

fn stack_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(STACK), port)
}

fn kernel_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(KERNEL), port)
}

fn kernel_connect(port: u16) -> io::Result<std::net::TcpStream> {
    let s = std::net::TcpStream::connect_timeout(&stack_addr(port), Duration::from_secs(10))?;
    s.set_read_timeout(Some(STEP))?;
    s.set_write_timeout(Some(STEP))?;
    Ok(s)
}

/// Kernel client <-> utcp server, `len` bytes each way, byte-exact.
/// `client_first`: the kernel sends its FIN first; otherwise utcp does.
fn exchange_kernel_client(e: &Env, len: u64, client_first: bool) {
    let l = TcpListener::bind(&e.iface, stack_addr(5001)).unwrap();
    let (eof_tx, eof_rx) = mpsc::channel::<()>();
    let client = e.kernel(move || -> io::Result<(u64, [u8; 32], [u8; 32])> {
        let s = kernel_connect(5001)?;
        let w = s.try_clone()?;
        let writer = std::thread::spawn(move || -> io::Result<[u8; 32]> {
            let h = send_stream(&w, 11, len)?;
            if !client_first {
                // Server closes first: hold our FIN until its FIN arrived.
                let _ = eof_rx.recv_timeout(STEP);
            }
            w.shutdown(Shutdown::Write)?;
            Ok(h)
        });
        let (n, got) = recv_stream(&s)?;
        drop(eof_tx);
        let sent = writer.join().map_err(|_| io::Error::other("writer panicked"))??;
        Ok((n, got, sent))
    });
    let (s, peer) = l.accept().unwrap();
    assert_eq!(peer.ip(), IpAddr::V4(KERNEL));
    assert_eq!(s.local_addr().unwrap(), stack_addr(5001));
    assert_eq!(s.peer_addr().unwrap(), peer);
    let s = Arc::new(s);
    let r = s.clone();
    let reader = std::thread::spawn(move || recv_stream(&*r));
    let sent = send_stream(&*s, 22, len).unwrap();
    if !client_first {
        s.shutdown(Shutdown::Write).unwrap();
        // Writing after our FIN is a broken pipe, like std.
        assert_eq!((&*s).write(b"x").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
    let (n, got) = reader.join().unwrap().unwrap();
    assert_eq!(n, len);
    assert_eq!(got, expected(11, len), "kernel -> utcp bytes differ");
    assert_eq!(sent, expected(22, len));
    drop(s); // close (FIN if not sent yet)
    let (kn, kgot, ksent) = client.join().unwrap().unwrap();
    assert_eq!(kn, len);
    assert_eq!(kgot, sent, "utcp -> kernel bytes differ");
    assert_eq!(ksent, expected(11, len));
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn kernel_client_64mib_each_way_client_closes_first() {
    assert_root("kernel_client_64mib_each_way_client_closes_first");
    let e = env("cfirst", None);
    exchange_kernel_client(&e, 64 * MIB, true);
    assert!(e.iface.error().is_none());
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn kernel_client_64mib_each_way_server_closes_first() {
    assert_root("kernel_client_64mib_each_way_server_closes_first");
    let e = env("sfirst", None);
    exchange_kernel_client(&e, 64 * MIB, false);
}

/// utcp connect() -> kernel listener, `len` each way.
fn exchange_kernel_server(e: &Env, len: u64) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = e.kernel(move || -> io::Result<(u64, [u8; 32], [u8; 32])> {
        let l = std::net::TcpListener::bind(kernel_addr(6001))?;
        ready_tx.send(()).unwrap();
        let (s, _) = l.accept()?;
        s.set_read_timeout(Some(STEP))?;
        let w = s.try_clone()?;
        let writer = std::thread::spawn(move || -> io::Result<[u8; 32]> {
            let h = send_stream(&w, 33, len)?;
            w.shutdown(Shutdown::Write)?;
            Ok(h)
        });
        let (n, got) = recv_stream(&s)?;
        let sent = writer.join().map_err(|_| io::Error::other("writer panicked"))??;
        Ok((n, got, sent))
    });
    ready_rx.recv_timeout(STEP).unwrap();
    let s = Arc::new(TcpStream::connect(&e.iface, kernel_addr(6001)).unwrap());
    assert_eq!(s.peer_addr().unwrap(), kernel_addr(6001));
    assert_eq!(s.local_addr().unwrap().ip(), IpAddr::V4(STACK));
    s.set_read_timeout(Some(STEP)).unwrap();
    let r = s.clone();
    let reader = std::thread::spawn(move || recv_stream(&*r));
    let sent = send_stream(&*s, 44, len).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (n, got) = reader.join().unwrap().unwrap();
    assert_eq!(n, len);
    assert_eq!(got, expected(33, len), "kernel -> utcp bytes differ");
    let (kn, kgot, _) = server.join().unwrap().unwrap();
    assert_eq!(kn, len);
    assert_eq!(kgot, sent, "utcp -> kernel bytes differ");
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn utcp_connect_to_kernel_listener_both_directions() {
    assert_root("utcp_connect_to_kernel_listener_both_directions");
    let e = env("active", None);
    exchange_kernel_server(&e, 32 * MIB);
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn impaired_link_transfers_stay_byte_exact() {
    assert_root("impaired_link_transfers_stay_byte_exact");
    let imp = Impairment { seed: 0x5eed, drop: 0.01, duplicate: 0.01, reorder: 0.02 };
    let e = env("impair", Some(imp));
    // Smaller than the clean runs: loss recovery makes these slower, and the file's
    // total runtime must stay modest.
    exchange_kernel_client(&e, 32 * MIB, false);
    exchange_kernel_server(&e, 16 * MIB);
    let st = e.iface.link_stats();
    assert!(st.impaired_drops > 0 && st.impaired_dups > 0 && st.impaired_reorders > 0, "{st:?}");
    assert!(e.iface.counters().retrans_segs > 0, "losses must have caused retransmissions");
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn two_hundred_concurrent_echo_connections() {
    assert_root("two_hundred_concurrent_echo_connections");
    const N: u64 = 200;
    const LEN: u64 = 256 * 1024;
    let e = env_with("many", None, |c| c.engine.default_backlog = 256);
    let l = TcpListener::bind(&e.iface, stack_addr(7)).unwrap();
    let (ok, echoed) = std::thread::scope(|sc| {
        let l = &l;
        let srv = sc.spawn(move || {
            let mut handlers = Vec::new();
            for _ in 0..N {
                let (s, _) = l.accept_timeout(STEP).expect("accept");
                handlers.push(std::thread::spawn(move || utcp_tools::apps::echo(&s)));
            }
            handlers.into_iter().map(|h| h.join().unwrap().unwrap()).sum::<u64>()
        });
        let clients: Vec<_> = (0..N)
            .map(|i| {
                e.kernel(move || -> io::Result<bool> {
                    let s = kernel_connect(7)?;
                    let w = s.try_clone()?;
                    let writer = std::thread::spawn(move || -> io::Result<[u8; 32]> {
                        let h = send_stream(&w, 1000 + i, LEN)?;
                        w.shutdown(Shutdown::Write)?;
                        Ok(h)
                    });
                    let (n, got) = recv_stream(&s)?;
                    let sent = writer.join().map_err(|_| io::Error::other("writer panicked"))??;
                    Ok(n == LEN && got == sent)
                })
            })
            .collect();
        let ok = clients.into_iter().map(|c| c.join()).filter(|r| matches!(r, Ok(Ok(true)))).count() as u64;
        (ok, srv.join().unwrap())
    });
    assert_eq!(ok, N, "every connection echoed its 256 KiB byte-exact");
    assert_eq!(echoed, N * LEN);
    assert_eq!(e.iface.counters().passive_opens, N);
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn closed_ports_are_refused_both_ways() {
    assert_root("closed_ports_are_refused_both_ways");
    let e = env("refused", None);
    // utcp -> kernel port with no listener: the kernel answers RST.
    let err = TcpStream::connect_timeout(&e.iface, &kernel_addr(9), Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    // kernel -> utcp port with no listener: utcp answers RST.
    let r = e.kernel(|| kernel_connect(9).map(|_| ()).unwrap_err().kind()).join().unwrap();
    assert_eq!(r, io::ErrorKind::ConnectionRefused);
    assert!(e.iface.counters().out_rsts >= 1);
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn kernel_reset_mid_transfer_is_connection_reset() {
    assert_root("kernel_reset_mid_transfer_is_connection_reset");
    let e = env("reset", None);
    let l = TcpListener::bind(&e.iface, stack_addr(5002)).unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let client = e.kernel(move || -> io::Result<u64> {
        let mut s = kernel_connect(5002)?;
        // Keep sending until told to die.
        let chunk = vec![0x5au8; 64 * 1024];
        let mut sent = 0u64;
        while go_rx.try_recv().is_err() {
            s.write_all(&chunk)?;
            sent += chunk.len() as u64;
            if sent > 256 * MIB {
                return Err(io::Error::other("never told to reset"));
            }
        }
        // SO_LINGER with a zero timeout: close sends RST.
        rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO)).expect("SO_LINGER");
        // Closing the only descriptor with SO_LINGER 0 sends a RST.
        drop(s);
        Ok(sent)
    });
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let mut told = false;
    let t0 = Instant::now();
    let err = loop {
        assert!(t0.elapsed() < STEP, "no reset seen");
        match (&s).read(&mut buf) {
            Ok(0) => panic!("clean EOF after a RST"),
            Ok(n) => total += n as u64,
            Err(e) => break e,
        }
        if !told && total >= MIB {
            told = true;
            go_tx.send(()).unwrap();
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    assert!(e.iface.counters().estab_resets >= 1);
    client.join().unwrap().unwrap();
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn curl_downloads_20mib_from_utcp_serve_http() {
    assert_root("curl_downloads_20mib_from_utcp_serve_http");
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        panic!("curl is not installed; this test needs it");
    }
    let ns = NetNs::create(&NetNs::unique_name("utcp-curl")).unwrap();
    let dir = std::env::temp_dir().join(format!("utcp-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.bin");
    let digest = send_stream(std::fs::File::create(&file).unwrap(), 77, 20 * MIB).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_utcp"))
        .args(["serve", "--http", dir.to_str().unwrap(), "--port", "8080", "--netns", ns.name()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = io::BufReader::new(child.stdout.take().unwrap());
    io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert!(line.contains("ready"), "serve did not start: {line:?}");
    let got = dir.join("got.bin");
    let url = format!("http://{STACK}:8080/big.bin");
    let r = ns.exec("curl", &["-sS", "--max-time", "60", "-o", got.to_str().unwrap(), &url]);
    let head = ns.exec("curl", &["-sS", "--max-time", "10", "-I", &url]);
    let missing = ns.exec("curl", &["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("{url}.nope")]);
    let status = stop_child(&mut child, rustix::process::Signal::TERM);
    r.unwrap();
    let body = recv_stream(std::fs::File::open(&got).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(body, (20 * MIB, digest), "curl got different bytes");
    let head = head.unwrap();
    assert!(head.contains("Content-Length: 20971520"), "{head}");
    assert_eq!(missing.unwrap(), "404");
    let status = status.expect("serve did not exit within 20 s of SIGTERM");
    assert!(status.success(), "serve exited with {status}");
    // serve used our namespace: it must not have removed it.
    assert!(std::path::Path::new(&format!("/var/run/netns/{}", ns.name())).exists());
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn socket_api_error_kinds_and_timeouts() {
    assert_root("socket_api_error_kinds_and_timeouts");
    let e = env("api", None);
    let l = TcpListener::bind(&e.iface, stack_addr(5003)).unwrap();
    let taken = TcpListener::bind(&e.iface, stack_addr(5003)).unwrap_err();
    assert_eq!(taken.kind(), io::ErrorKind::AddrInUse);
    let any = TcpListener::bind(&e.iface, (Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    assert_eq!(any.local_addr().unwrap().ip(), IpAddr::V4(STACK));
    assert_ne!(any.local_addr().unwrap().port(), 0);
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), io::ErrorKind::WouldBlock);
    l.set_nonblocking(false).unwrap();

    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    let client = e.kernel(move || -> io::Result<Vec<u8>> {
        let mut s = kernel_connect(5003)?;
        s.write_all(b"ping")?;
        let _ = hold_rx.recv_timeout(STEP);
        let mut v = Vec::new();
        s.read_to_end(&mut v)?;
        Ok(v)
    });
    let (s, _) = l.accept().unwrap();
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < 4 {
        got += (&s).read(&mut buf[got..]).unwrap();
    }
    assert_eq!(&buf[..4], b"ping");
    // Nothing more: nonblocking read is WouldBlock, a read timeout is WouldBlock too.
    s.set_nonblocking(true).unwrap();
    assert_eq!((&s).read(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let t0 = Instant::now();
    assert_eq!((&s).read(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(s.set_read_timeout(Some(Duration::ZERO)).is_err());
    s.set_nodelay(true).unwrap();
    assert!(s.nodelay().unwrap());
    s.set_buffer_sizes(Some(512 * 1024), Some(128 * 1024)).unwrap();
    let (rb, sb) = s.buffer_sizes().unwrap();
    assert!(rb >= 512 * 1024 && sb >= 128 * 1024, "{rb} {sb}");
    s.set_keepalive(Some(utcp::engine::Keepalive::default())).unwrap();
    assert!(s.take_error().unwrap().is_none());
    (&s).write_all(b"pong").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!((&s).write(b"late").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    hold_tx.send(()).unwrap();
    assert_eq!(client.join().unwrap().unwrap(), b"pong");
}

/// Time the driver thread spent on CPU, in clock ticks (utime + stime).
fn driver_cpu_ticks() -> Option<u64> {
    for t in std::fs::read_dir("/proc/self/task").ok()? {
        let p = t.ok()?.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if comm.trim() == "utcp-idle0" {
            let stat = std::fs::read_to_string(p.join("stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            return Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?);
        }
    }
    None
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn idle_interface_uses_no_cpu_and_drop_unblocks_readers() {
    assert_root("idle_interface_uses_no_cpu_and_drop_unblocks_readers");
    let e = env_with("idle", None, |c| c.tun_name = "idle0".into());
    // An established, idle connection: timers off once everything is acknowledged.
    let l = TcpListener::bind(&e.iface, stack_addr(5004)).unwrap();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let client = e.kernel(move || {
        let s = kernel_connect(5004).unwrap();
        let _ = done_rx.recv_timeout(STEP);
        drop(s);
    });
    let (s, _) = l.accept().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before = driver_cpu_ticks().expect("driver thread utcp-idle0 not found");
    std::thread::sleep(Duration::from_millis(1500));
    let after = driver_cpu_ticks().unwrap();
    assert!(after - before <= 2, "idle driver used {} ticks in 1.5 s", after - before);
    // Dropping the interface wakes a blocked reader with an error instead of hanging.
    let s = Arc::new(s);
    let r = s.clone();
    let reader = std::thread::spawn(move || (&*r).read(&mut [0u8; 8]));
    std::thread::sleep(Duration::from_millis(100));
    let Env { iface, ns } = e;
    drop(iface);
    let res = reader.join().unwrap();
    assert_eq!(res.unwrap_err().kind(), io::ErrorKind::NotConnected);
    done_tx.send(()).unwrap();
    client.join().unwrap();
    drop(ns);
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn retransmission_give_up_is_timed_out() {
    assert_root("retransmission_give_up_is_timed_out");
    let e = env_with("giveup", None, |c| {
        c.engine.data_retries = 3;
        c.engine.min_rto = Duration::from_millis(100);
        c.engine.max_rto = Duration::from_millis(400);
    });
    let l = TcpListener::bind(&e.iface, stack_addr(5005)).unwrap();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let client = e.kernel(move || {
        let s = kernel_connect(5005).unwrap();
        let _ = done_rx.recv_timeout(STEP);
        drop(s);
    });
    let (s, _) = l.accept().unwrap();
    // The link goes dark: every packet in both directions is lost from now on.
    e.iface.set_impairment(Some(Impairment { seed: 1, drop: 1.0, duplicate: 0.0, reorder: 0.0 }));
    (&s).write_all(&[7u8; 1000]).unwrap();
    let t0 = Instant::now();
    let err = (&s).read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert!(e.iface.counters().timeouts >= 3);
    done_tx.send(()).unwrap();
    client.join().unwrap();
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn tun_error_shuts_the_interface_down_with_an_error() {
    assert_root("tun_error_shuts_the_interface_down_with_an_error");
    let e = env("tunerr", None);
    let l = TcpListener::bind(&e.iface, stack_addr(5006)).unwrap();
    let l = Arc::new(l);
    let l2 = l.clone();
    let waiter = std::thread::spawn(move || l2.accept().map(|_| ()));
    std::thread::sleep(Duration::from_millis(100));
    // Someone deletes our TUN under us.
    e.ns.exec("ip", &["link", "delete", "utcp0"]).unwrap();
    let err = waiter.join().unwrap().unwrap_err();
    let stored = e.iface.error().expect("interface reports its error");
    eprintln!("stored interface error: {stored}");
    assert!(stored.to_string().contains("TUN"), "{stored}");
    assert_eq!(err.kind(), stored.kind(), "{err} vs {stored}");
    assert!(TcpStream::connect(&e.iface, kernel_addr(1)).is_err());
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn utcp_connect_cli_half_closes_and_reports_refusal() {
    assert_root("utcp_connect_cli_half_closes_and_reports_refusal");
    let ns = NetNs::create(&NetNs::unique_name("utcp-nc")).unwrap();
    let pcap = std::env::temp_dir().join(format!("utcp-nc-{}.pcap", std::process::id()));
    // Kernel listener on the wildcard address (the TUN address appears only once
    // `utcp connect` made the TUN): read to EOF, answer with the byte count, close.
    let h = ns
        .spawn(|| -> io::Result<Vec<u8>> {
            let l = std::net::TcpListener::bind("0.0.0.0:7070")?;
            let (mut s, _) = l.accept()?;
            s.set_read_timeout(Some(STEP))?;
            let mut got = Vec::new();
            s.read_to_end(&mut got)?;
            s.write_all(format!("got {} bytes\n", got.len()).as_bytes())?;
            Ok(got)
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let out =
        run_utcp_connect(&["10.77.0.1:7070", "--netns", ns.name(), "--pcap", pcap.to_str().unwrap()], &input);
    assert!(out.status.success(), "connect failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got 300000 bytes\n");
    assert_eq!(h.join().unwrap().unwrap().unwrap(), input);
    // The pcap holds the conversation: raw-IP link type, many packets.
    let cap = std::fs::read(&pcap).unwrap();
    let _ = std::fs::remove_file(&pcap);
    assert_eq!(&cap[0..4], &0xa1b2_c3d4u32.to_le_bytes());
    assert_eq!(&cap[20..24], &101u32.to_le_bytes());
    assert!(cap.len() > 300_000, "pcap has {} bytes", cap.len());

    // Nobody listens on 7071: a clear refusal and a non-zero exit.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_utcp"))
        .args(["connect", "10.77.0.1:7071", "--netns", ns.name()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "{err}");
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn write_blocks_when_the_send_buffer_is_full() {
    assert_root("write_blocks_when_the_send_buffer_is_full");
    let e = env("sndbuf", None);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    // A kernel peer that accepts and never reads until told to.
    let server = e.kernel(move || -> io::Result<u64> {
        let l = std::net::TcpListener::bind(kernel_addr(6002))?;
        ready_tx.send(()).unwrap();
        let (s, _) = l.accept()?;
        let _ = done_rx.recv_timeout(STEP);
        s.set_read_timeout(Some(STEP))?;
        Ok(recv_stream(&s)?.0)
    });
    ready_rx.recv_timeout(STEP).unwrap();
    let s = TcpStream::connect(&e.iface, kernel_addr(6002)).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
    let chunk = vec![1u8; 64 * 1024];
    let mut total = 0u64;
    let t0 = Instant::now();
    let err = loop {
        assert!(t0.elapsed() < STEP && total < 1024 * MIB, "write never blocked");
        match (&s).write(&chunk) {
            Ok(n) => total += n as u64,
            Err(e) => break e,
        }
    };
    // The timeout is WouldBlock, like std on Linux, and only after our buffer filled.
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    assert!(total >= 256 * 1024, "only {total} bytes accepted");
    s.set_nonblocking(true).unwrap();
    assert_eq!((&s).write(&chunk).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    s.set_write_timeout(None).unwrap();
    // Once the peer reads, the blocked writer proceeds; everything arrives.
    done_tx.send(()).unwrap();
    (&s).write_all(&chunk).unwrap();
    total += chunk.len() as u64;
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.join().unwrap().unwrap(), total);
}

/// Count, in a pcap written by the runtime (LINKTYPE_RAW, little-endian), the full-sized
/// data segments `from` sent and the pure ACKs sent back to it.
/// Returns (full-sized data segments, pure ACKs, largest payload).
fn count_acks_in_pcap(cap: &[u8], from: Ipv4Addr) -> (usize, usize, usize) {
    assert!(cap.len() >= 24 && cap[..4] == 0xa1b2_c3d4u32.to_le_bytes(), "pcap header");
    // (source is `from`, TCP payload length, flags) per TCP packet.
    let mut pkts = Vec::new();
    let mut at = 24;
    while at + 16 <= cap.len() {
        let incl = u32::from_le_bytes(cap[at + 8..at + 12].try_into().unwrap()) as usize;
        let p = &cap[at + 16..(at + 16 + incl).min(cap.len())];
        at += 16 + incl;
        if p.len() < 40 || p[0] >> 4 != 4 || p[9] != 6 {
            continue;
        }
        let ihl = (p[0] & 0x0f) as usize * 4;
        let total = u16::from_be_bytes([p[2], p[3]]) as usize;
        let Some(tcp) = p.get(ihl..) else { continue };
        if tcp.len() < 14 {
            continue;
        }
        let doff = (tcp[12] >> 4) as usize * 4;
        let payload = total.saturating_sub(ihl + doff);
        pkts.push((p[12..16] == from.octets(), payload, tcp[13]));
    }
    let largest = pkts.iter().filter(|p| p.0).map(|p| p.1).max().unwrap_or(0);
    let full = pkts.iter().filter(|p| p.0 && p.1 == largest && largest > 0).count();
    // Pure ACKs back: ACK set, no SYN/FIN/RST, no payload.
    let acks = pkts.iter().filter(|p| !p.0 && p.1 == 0 && p.2 & 0x17 == 0x10).count();
    (full, acks, largest)
}

/// RFC 5681 §4.2 / RFC 9293 SHLD-19: during a bulk upload from the kernel, utcp sends at
/// least one ACK per two full-sized segments (it used to send one per ~25: the driver
/// feeds a batch of packets before it polls for output, and the ACKs folded together).
/// Counted in the pcap the runtime writes.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn kernel_bulk_upload_is_acked_every_second_segment() {
    assert_root("kernel_bulk_upload_is_acked_every_second_segment");
    let pcap = std::env::temp_dir().join(format!("utcp-ackfreq-{}.pcap", std::process::id()));
    // Per-MSS ACK frequency on a plain TUN: with offload the kernel's segments arrive as
    // GRO super-segments, each acknowledged (tests/offload.rs checks that case).
    let e = env_with("ackfreq", None, |c| {
        c.pcap = Some(pcap.clone());
        c.offload = false;
    });
    let len = 16 * MIB;
    let l = TcpListener::bind(&e.iface, stack_addr(5010)).unwrap();
    let client = e.kernel(move || -> io::Result<[u8; 32]> {
        let s = kernel_connect(5010)?;
        let h = send_stream(&s, 33, len)?;
        s.shutdown(Shutdown::Write)?;
        Ok(h)
    });
    let (s, _) = l.accept().unwrap();
    let (n, got) = recv_stream(&s).unwrap();
    assert_eq!((n, got), (len, expected(33, len)));
    assert_eq!(client.join().unwrap().unwrap(), expected(33, len));
    drop(s);
    drop(l);
    drop(e); // flushes and closes the pcap
    let cap = std::fs::read(&pcap).unwrap();
    let _ = std::fs::remove_file(&pcap);
    let (full, acks, largest) = count_acks_in_pcap(&cap, KERNEL);
    eprintln!("bulk upload: {full} full-sized segments of {largest} bytes, {acks} pure ACKs");
    assert!(largest >= 1400 && full as u64 >= len / 1500, "{full} x {largest}");
    assert!(2 * acks >= full, "{acks} ACKs for {full} full-sized segments: fewer than one per two");
}
