//! The README's library example, runnable: a blocking echo server with std-shaped sockets
//! on a TUN inside a network namespace (needs root and /dev/net/tun).
//!
//! ```text
//! cargo run -p utcp --example echo_server -- [NAMESPACE]     # serve until killed
//! cargo run -p utcp --example echo_server -- --self-test     # bounded check, exits
//! ```
//!
//! With a NAMESPACE (as named by `ip netns`), the TUN is made there; without one, a
//! private namespace is created with `ip netns add` and deleted on exit. `--self-test`
//! serves three connections from the kernel's own client inside the namespace (each
//! sends 256 KiB and reads it back byte-exact), then returns; `cargo test` runs it
//! through `crates/tools/tests/runtime.rs` (root-gated like the other TUN tests).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;
use utcp::{Interface, InterfaceConfig, TcpListener};

const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const PORT: u16 = 7;

/// The README example's body: echo every connection `listener` accepts, one at a time,
/// `limit` connections in all (`None`: forever).
pub fn serve(listener: &TcpListener, limit: Option<usize>) -> std::io::Result<()> {
    for stream in listener.incoming().take(limit.unwrap_or(usize::MAX)) {
        let mut s = stream?;
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n])?;
        }
    } // dropping a stream sends FIN
    Ok(())
}

/// A network namespace made with `ip netns add`, deleted on drop.
pub struct PrivateNs(pub String);

impl PrivateNs {
    pub fn create() -> std::io::Result<PrivateNs> {
        let name = format!("utcp-echo-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = PrivateNs(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for PrivateNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "delete", &self.0]);
    }
}

fn ip(args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The interface in namespace `ns`, as in the README.
pub fn interface(ns: &str) -> std::io::Result<Interface> {
    let mut cfg = InterfaceConfig::new("utcp0", STACK, KERNEL, 24);
    cfg.netns = Some(ns.into()); // the TUN is created inside this namespace
    Interface::new(cfg)
}

/// A kernel client inside `ns`: `len` patterned bytes out, the same bytes back.
fn kernel_echo(ns: &str, len: usize) -> std::io::Result<()> {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}"))?;
    let ns_fd = std::os::fd::AsFd::as_fd(&f).try_clone_to_owned()?;
    let t = std::thread::spawn(move || -> std::io::Result<()> {
        use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
        move_into_link_name_space(std::os::fd::AsFd::as_fd(&ns_fd), Some(LinkNameSpaceType::Network))?;
        let addr = SocketAddr::from((STACK, PORT));
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let msg: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let mut w = s.try_clone()?;
        let out = msg.clone();
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            w.write_all(&out)?;
            w.shutdown(std::net::Shutdown::Write)
        });
        let mut back = Vec::with_capacity(len);
        s.read_to_end(&mut back)?;
        writer.join().map_err(|_| std::io::Error::other("writer panicked"))??;
        if back != msg {
            return Err(std::io::Error::other(format!("echo differs: {} of {len} bytes back", back.len())));
        }
        Ok(())
    });
    t.join().map_err(|_| std::io::Error::other("client panicked"))?
}

/// The bounded self-test: a private namespace, the server for three connections, and the
/// kernel's client against it.
pub fn self_test() -> std::io::Result<()> {
    let ns = PrivateNs::create()?;
    let iface = interface(&ns.0)?;
    let listener = TcpListener::bind(&iface, (STACK, PORT))?;
    std::thread::scope(|s| {
        let server = s.spawn(|| serve(&listener, Some(3)));
        for _ in 0..3 {
            kernel_echo(&ns.0, 256 * 1024)?;
        }
        server.join().map_err(|_| std::io::Error::other("server panicked"))?
    })?;
    iface.wait_quiet(Duration::from_millis(50), Duration::from_secs(2));
    if let Some(e) = iface.error() {
        return Err(e);
    }
    Ok(())
}

#[allow(dead_code)] // `main` is unused when a test includes this file as a module.
fn main() -> std::io::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("--self-test") => {
            self_test()?;
            println!("echo_server self-test: 3 connections, 256 KiB each, echoed byte-exact");
            Ok(())
        }
        Some(ns) => serve(&TcpListener::bind(&interface(ns)?, (STACK, PORT))?, None),
        None => {
            let ns = PrivateNs::create()?;
            println!(
                "echo on {STACK}:{PORT} in namespace {} (try: ip netns exec {} nc {STACK} {PORT})",
                ns.0, ns.0
            );
            serve(&TcpListener::bind(&interface(&ns.0)?, (STACK, PORT))?, None)
        }
    }
}
