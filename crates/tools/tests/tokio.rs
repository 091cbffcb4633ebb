//! The async API (`utcp::tokio`) against the Linux kernel over a TUN, in a private
//! namespace each test creates: echo on current-thread and multi-thread runtimes, an
//! async connect to a kernel server, half-close through `poll_shutdown`, owned halves on
//! two tasks, readiness, and HTTP/1.1 served by hyper 1.x to curl (a 100 MiB body
//! byte-exact, 200 concurrent keep-alive requests).
//!
//! Needs root (TUN, namespaces).

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::{Interface, InterfaceConfig};
use utcp_tools::netns::{NetNs, assert_root};

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 81, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 81, 0, 2);
/// Upper bound on any single step of a test (not a timing assertion: a hang guard).
const STEP: Duration = Duration::from_secs(120);

fn setup(tag: &str) -> (Interface, NetNs) {
    let ns = NetNs::create(&NetNs::unique_name(tag)).expect("create netns");
    let mut cfg = InterfaceConfig::new("ut0", STACK, KERNEL, 24);
    cfg.netns = Some(ns.name().to_string());
    (Interface::new(cfg).expect("interface"), ns)
}

/// Deterministic test data.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed).collect()
}

/// The kernel connects to the stack, sends `data`, half-closes and reads everything back.
fn kernel_echo_client(ns: &NetNs, port: u16, data: Vec<u8>) -> std::thread::JoinHandle<Vec<u8>> {
    let h = ns
        .spawn(move || {
            let mut s = std::net::TcpStream::connect_timeout(&SocketAddr::from((STACK, port)), STEP).unwrap();
            s.set_read_timeout(Some(STEP)).unwrap();
            let mut r = s.try_clone().unwrap();
            let reader = std::thread::spawn(move || {
                let mut back = Vec::new();
                r.read_to_end(&mut back).unwrap();
                back
            });
            s.write_all(&data).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            reader.join().unwrap()
        })
        .expect("spawn in netns");
    std::thread::spawn(move || h.join().expect("kernel thread").expect("setns"))
}

async fn echo_once(listener: &utcp::tokio::TcpListener) {
    let (mut s, peer) = listener.accept().await.expect("accept");
    assert_eq!(peer.ip(), KERNEL);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = s.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        s.write_all(&buf[..n]).await.expect("write");
    }
    s.shutdown().await.expect("shutdown sends FIN");
}

fn echo_on(rt: tokio::runtime::Runtime, tag: &str) {
    let (iface, ns) = setup(tag);
    let listener = utcp::tokio::TcpListener::bind(&iface, "0.0.0.0:7".parse().unwrap()).unwrap();
    assert_eq!(listener.local_addr().unwrap(), SocketAddr::from((STACK, 7)));
    let data = pattern(8 << 20, 1);
    let client = kernel_echo_client(&ns, 7, data.clone());
    rt.block_on(async { tokio::time::timeout(STEP, echo_once(&listener)).await.expect("echo in time") });
    let back = client.join().unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn echo_8mib_on_current_thread_runtime() {
    assert_root("echo_8mib_on_current_thread_runtime");
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    echo_on(rt, "tk-ct");
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn echo_8mib_on_multi_thread_runtime() {
    assert_root("echo_8mib_on_multi_thread_runtime");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
    echo_on(rt, "tk-mt");
}

/// `utcp::tokio::drive`: a task on the runtime reads the TUN (no driver-thread hop).
/// 8 MiB echo byte-exact with the engine fed by that task, and, once the runtime is
/// gone (its task dropped), a blocking echo on the same interface still works: the TUN
/// went back to the driver.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn echo_8mib_with_the_tun_read_by_a_task_then_blocking_after_the_runtime_is_gone() {
    assert_root("echo_8mib_with_the_tun_read_by_a_task_then_blocking_after_the_runtime_is_gone");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (iface, ns) = setup("tk-drive");
    let listener = utcp::tokio::TcpListener::bind(&iface, "0.0.0.0:7".parse().unwrap()).unwrap();
    let data = pattern(8 << 20, 3);
    let client = kernel_echo_client(&ns, 7, data.clone());
    rt.block_on(async {
        utcp::tokio::drive(&iface).expect("drive");
        utcp::tokio::drive(&iface).expect("drive again is a no-op");
        tokio::time::timeout(STEP, echo_once(&listener)).await.expect("echo in time")
    });
    let back = client.join().unwrap();
    assert!(back == data, "echoed bytes differ ({} of {} bytes back)", back.len(), data.len());
    let during = iface.link_stats();
    assert!(during.async_bursts > 0, "the task fed the engine: {during:?}");
    drop(listener);
    drop(rt);
    let after_rt = iface.link_stats().async_bursts;
    let blocking = utcp::TcpListener::bind(&iface, "0.0.0.0:8").unwrap();
    let small = pattern(64 << 10, 4);
    let client = kernel_echo_client(&ns, 8, small.clone());
    let (mut s, _) = blocking.accept_timeout(STEP).expect("blocking accept after the runtime is gone");
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        s.write_all(&buf[..n]).unwrap();
    }
    s.shutdown(Shutdown::Write).unwrap();
    assert!(got == small && client.join().unwrap() == small, "blocking echo after the runtime is gone");
    assert_eq!(iface.link_stats().async_bursts, after_rt, "no task reads any more");
}

/// Async connect to a kernel server; owned halves on two tasks; the kernel sees our FIN
/// after the write half is dropped, and we see its FIN as EOF.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn connect_into_split_and_half_close() {
    assert_root("connect_into_split_and_half_close");
    let (iface, ns) = setup("tk-conn");
    let (tx, rx) = std::sync::mpsc::channel();
    let server = ns
        .spawn(move || {
            let l = std::net::TcpListener::bind((KERNEL, 9000)).unwrap();
            tx.send(()).unwrap();
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(STEP)).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap(); // until our FIN
            s.write_all(&got).unwrap();
            s.write_all(b"!").unwrap();
            drop(s); // FIN
            got.len()
        })
        .unwrap();
    rx.recv_timeout(STEP).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
    let data = pattern(3 << 20, 7);
    let expect = data.clone();
    rt.block_on(async move {
        let s = tokio::time::timeout(STEP, utcp::tokio::TcpStream::connect(&iface, (KERNEL, 9000).into()))
            .await
            .expect("connect in time")
            .expect("connect");
        s.set_nodelay(true).unwrap();
        assert!(s.nodelay().unwrap());
        assert_eq!(s.peer_addr().unwrap(), SocketAddr::from((KERNEL, 9000)));
        assert_eq!(s.local_addr().unwrap().ip(), STACK);
        s.writable().await.unwrap();
        let (mut r, mut w) = s.into_split();
        let writer = tokio::spawn(async move {
            w.write_all(&data).await.unwrap();
            drop(w); // FIN
        });
        let reader = tokio::spawn(async move {
            let mut back = Vec::new();
            r.read_to_end(&mut back).await.unwrap();
            back
        });
        writer.await.unwrap();
        let back = tokio::time::timeout(STEP, reader).await.expect("read in time").unwrap();
        assert_eq!(back.len(), expect.len() + 1);
        assert!(back[..expect.len()] == expect[..] && back[expect.len()] == b'!');
    });
    assert_eq!(server.join().unwrap().unwrap(), 3 << 20);
}

/// A refused connect is `ConnectionRefused`; an aborted stream resets the kernel's side.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn refused_connect_and_abort() {
    assert_root("refused_connect_and_abort");
    let (iface, ns) = setup("tk-rst");
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = ns
        .spawn(move || {
            let l = std::net::TcpListener::bind((KERNEL, 9001)).unwrap();
            tx.send(()).unwrap();
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(STEP)).unwrap();
            let mut buf = [0u8; 16];
            let mut first = [0u8; 5];
            s.read_exact(&mut first).unwrap();
            s.read(&mut buf).map_err(|e| e.kind())
        })
        .unwrap();
    rx.recv_timeout(STEP).unwrap();
    rt.block_on(async {
        let e = utcp::tokio::TcpStream::connect(&iface, (KERNEL, 9).into()).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        let mut s = utcp::tokio::TcpStream::connect(&iface, (KERNEL, 9001).into()).await.unwrap();
        s.write_all(b"hello").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.abort();
    });
    assert_eq!(server.join().unwrap().unwrap(), Err(std::io::ErrorKind::ConnectionReset));
}

/// `readable()` waits for data without consuming it; `try_read` then gets it.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn readiness_then_try_read() {
    assert_root("readiness_then_try_read");
    let (iface, ns) = setup("tk-ready");
    let listener = utcp::tokio::TcpListener::bind(&iface, "0.0.0.0:8".parse().unwrap()).unwrap();
    let client = kernel_echo_client(&ns, 8, b"ping".to_vec());
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        while got.len() < 4 {
            tokio::time::timeout(STEP, s.readable()).await.expect("readable in time").unwrap();
            let mut buf = [0u8; 16];
            match s.try_read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("try_read: {e}"),
            }
        }
        assert_eq!(&got, b"ping");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        s.write_all(b"pong").await.unwrap();
        s.shutdown().await.unwrap();
    });
    assert_eq!(client.join().unwrap(), b"pong");
}

// ---------------------------------------------------------------- hyper

const BODY_LEN: usize = 100 << 20;

/// The body served at /big: 100 MiB of the pattern, in 1 MiB frames.
/// A streamed response body: its frames, each `Ok`.
type FrameStream =
    futures_util::stream::Iter<std::vec::IntoIter<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>>;

fn big_body() -> http_body_util::StreamBody<FrameStream> {
    let chunk = bytes::Bytes::from(pattern(1 << 20, 3));
    let frames: Vec<_> = (0..BODY_LEN >> 20).map(|_| Ok(hyper::body::Frame::data(chunk.clone()))).collect();
    http_body_util::StreamBody::new(futures_util::stream::iter(frames))
}

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<
    hyper::Response<http_body_util::Either<http_body_util::Full<bytes::Bytes>, ReturnBig>>,
    std::io::Error,
> {
    use http_body_util::Either;
    let resp = match req.uri().path() {
        "/big" => hyper::Response::builder()
            .header("content-length", BODY_LEN.to_string())
            .body(Either::Right(big_body()))
            .unwrap(),
        p => hyper::Response::new(Either::Left(http_body_util::Full::new(bytes::Bytes::from(format!(
            "hi {p}\n"
        ))))),
    };
    Ok(resp)
}

type ReturnBig = http_body_util::StreamBody<
    futures_util::stream::Iter<std::vec::IntoIter<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>>,
>;

/// hyper 1.x over utcp streams; curl in the namespace fetches 100 MiB byte-exact, then
/// 200 requests over 20 concurrent keep-alive connections, then 200 parallel curls.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn hyper_serves_curl_over_utcp() {
    assert_root("hyper_serves_curl_over_utcp");
    let (iface, ns) = setup("tk-hyper");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = utcp::tokio::TcpListener::bind(&iface, "0.0.0.0:8080".parse().unwrap()).unwrap();
    let server = rt.spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, hyper::service::service_fn(handle))
                    .await;
            });
        }
    });
    let url = format!("http://{STACK}:8080");

    // 100 MiB byte-exact: compare curl's SHA-256 with ours.
    let out =
        ns.exec("sh", &["-c", &format!("curl -sS --max-time 120 {url}/big | sha256sum")]).expect("curl /big");
    let want: String = Sha256::digest(pattern(1 << 20, 3).repeat(BODY_LEN >> 20))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(out.starts_with(&want), "body hash differs: {out}");

    // 200 keep-alive requests: 20 curls in parallel, each 10 URLs over one connection.
    let urls: String = (0..10).map(|i| format!(" {url}/k{i}")).collect();
    let script = format!(
        "for j in $(seq 1 20); do (curl -sS --max-time 60{urls} > /tmp/utcp-tk-$$-$j.out) & done; wait; \
         cat /tmp/utcp-tk-$$-*.out | grep -c '^hi /k'; rm -f /tmp/utcp-tk-$$-*.out"
    );
    let out = ns.exec("sh", &["-c", &script]).expect("keep-alive curls");
    assert_eq!(out.trim(), "200", "keep-alive responses: {out}");

    // 200 parallel connections.
    let script = format!(
        "for j in $(seq 1 200); do (curl -sS --max-time 60 {url}/p$j > /dev/null && echo ok) & done; wait"
    );
    let out = ns.exec("sh", &["-c", &script]).expect("parallel curls");
    assert_eq!(out.lines().filter(|l| *l == "ok").count(), 200, "parallel: {out}");
    server.abort();
    rt.shutdown_timeout(Duration::from_secs(5));
}

/// Bring your own device: a TUN made with tun-rs inside the namespace (as a supervisor
/// or a VPN API would), handed to `Interface::from_fd` as an `OwnedFd`.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn interface_from_an_adopted_tun_fd() {
    assert_root("interface_from_an_adopted_tun_fd");
    use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
    let ns = NetNs::create(&NetNs::unique_name("tk-byo")).expect("netns");
    let fd = ns
        .spawn(|| {
            let dev = tun_rs::DeviceBuilder::new()
                .name("byo0")
                .ipv4(Ipv4Addr::new(10, 82, 0, 1), 24, None)
                .mtu(1500)
                .enable(true)
                .build_sync()
                .expect("tun-rs device");
            // SAFETY: tun-rs gives up the descriptor here; we are its only owner.
            unsafe { OwnedFd::from_raw_fd(dev.into_raw_fd()) }
        })
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    let cfg = InterfaceConfig::new("byo0", Ipv4Addr::new(10, 82, 0, 2), Ipv4Addr::new(10, 82, 0, 1), 24);
    let iface = Interface::from_fd(fd, cfg).expect("adopt the fd");
    assert!(!iface.link_stats().steering, "an adopted descriptor is not multi-queue: no flow steering");
    let listener = utcp::TcpListener::bind(&iface, "0.0.0.0:7").unwrap();
    let client = ns
        .spawn(|| {
            let mut s =
                std::net::TcpStream::connect_timeout(&SocketAddr::from(([10, 82, 0, 2], 7)), STEP).unwrap();
            s.write_all(b"byo").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut back = Vec::new();
            s.read_to_end(&mut back).unwrap();
            back
        })
        .unwrap();
    let (mut s, _) = listener.accept().unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    s.write_all(&got).unwrap();
    drop(s);
    assert_eq!(client.join().unwrap().unwrap(), b"byo");
}
