//! Helpers shared by the kernel interop test files (each file includes this with `mod
//! common;`): byte streams of a seeded PRNG with their SHA-256, so a transfer is checked
//! byte-exact without holding it in memory.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use utcp::device::rng::Rng;

/// Write `len` bytes of the PRNG stream `seed`; returns their SHA-256.
pub fn send_stream(mut w: impl Write, seed: u64, len: u64) -> io::Result<[u8; 32]> {
    let mut rng = Rng::new(seed);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        rng.fill_bytes(&mut buf[..n]);
        w.write_all(&buf[..n])?;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(h.finalize().into())
}

/// Read to EOF; returns (bytes, SHA-256).
pub fn recv_stream(mut r: impl Read) -> io::Result<(u64, [u8; 32])> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok((total, h.finalize().into())),
            Ok(n) => {
                h.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The SHA-256 of the first `len` bytes of the PRNG stream `seed`.
pub fn expected(seed: u64, len: u64) -> [u8; 32] {
    send_stream(io::sink(), seed, len).unwrap()
}

/// A namespace this test created, with a TUN in it and the stack behind the TUN.
pub struct Env {
    pub iface: utcp::Interface,
    pub ns: utcp_tools::netns::NetNs,
}

/// Create a namespace named after `tag`, a TUN `tun` in it (the kernel side `kernel`/24,
/// the stack `stack`), let `f` adjust the interface, and bring it up.
pub fn env_at(
    tag: &str,
    tun: &str,
    stack: std::net::Ipv4Addr,
    kernel: std::net::Ipv4Addr,
    f: impl FnOnce(&mut utcp::InterfaceConfig),
) -> Env {
    use utcp_tools::netns::NetNs;
    let ns = NetNs::create(&NetNs::unique_name(&format!("utcp-{tag}"))).expect("create netns");
    let mut cfg = utcp::InterfaceConfig::new(tun, stack, kernel, 24);
    cfg.netns = Some(ns.name().to_string());
    f(&mut cfg);
    let iface = utcp::Interface::new(cfg).expect("interface");
    Env { iface, ns }
}

impl Env {
    /// Run `f` on a thread inside the namespace (the kernel's side).
    pub fn kernel<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let h = self.ns.spawn(f).expect("spawn in netns");
        std::thread::spawn(move || h.join().expect("kernel thread panicked").expect("setns"))
    }
}

/// Send our child `sig` and wait for it to exit, killing it after 20 s; its exit
/// status, or `None` if it had to be killed.
pub fn stop_child(
    child: &mut std::process::Child,
    sig: rustix::process::Signal,
) -> Option<std::process::ExitStatus> {
    use rustix::process::{Pid, kill_process};
    use std::time::{Duration, Instant};
    kill_process(Pid::from_child(child), sig).expect("signal to our child");
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait for our child") {
            return Some(st);
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A kernel client connected to `addr` (from inside the namespace), with `step` as its
/// connect, read and write timeouts and Nagle off (request/response tests).
pub fn kernel_connect_nodelay(addr: std::net::SocketAddr, step: std::time::Duration) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect_timeout(&addr, step).expect("connect");
    s.set_read_timeout(Some(step)).unwrap();
    s.set_write_timeout(Some(step)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// `n` one-octet request/responses from a kernel client in `ns` (pausing `pause` before
/// each request) to a utcp server listening on `stack:port`, each answered with the
/// request + 1. Returns the interface's link counters from after the accept to after the
/// last response (taken before the client closes).
pub fn echo_exchanges(
    iface: &utcp::Interface,
    ns: &utcp_tools::netns::NetNs,
    stack: std::net::Ipv4Addr,
    port: u16,
    n: u64,
    pause: std::time::Duration,
) -> (utcp::LinkStats, utcp::LinkStats) {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from((stack, port));
    let l = utcp::TcpListener::bind(iface, addr).unwrap();
    let client = ns
        .spawn(move || {
            let mut s = kernel_connect_nodelay(addr, std::time::Duration::from_secs(20));
            let mut b = [0u8; 1];
            for i in 0..n {
                std::thread::sleep(pause);
                s.write_all(&[i as u8]).unwrap();
                s.read_exact(&mut b).unwrap();
                assert_eq!(b[0], (i as u8).wrapping_add(1));
            }
        })
        .unwrap();
    let (mut s, _) = l.accept().unwrap();
    s.set_nodelay(true).unwrap();
    let before = iface.link_stats();
    let mut b = [0u8; 1];
    for _ in 0..n {
        s.read_exact(&mut b).unwrap();
        s.write_all(&[b[0].wrapping_add(1)]).unwrap();
    }
    let after = iface.link_stats();
    client.join().expect("client panicked").expect("setns");
    (before, after)
}

/// Run `utcp connect ARGS...` with `input` on its stdin (fed from another thread, so a
/// large input cannot deadlock against its stdout) and collect its exit and output.
pub fn run_utcp_connect(args: &[&str], input: &[u8]) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_utcp"))
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn utcp connect");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("wait for utcp connect");
    feeder.join().expect("feeder thread").expect("write utcp connect's stdin");
    out
}
