//! An async echo server on utcp's tokio API.
//!
//! Needs root: it creates a network namespace `utcp-tokio-echo`, a TUN in it with the
//! stack at 10.78.0.2 behind it, and serves echo on port 7 until Ctrl-C. Try it from the
//! kernel side with `ip netns exec utcp-tokio-echo nc 10.78.0.2 7`.
//!
//! `cargo run -p utcp --example tokio_echo`

use std::net::Ipv4Addr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::{Interface, InterfaceConfig};

const NS: &str = "utcp-tokio-echo";

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let created = std::process::Command::new("ip").args(["netns", "add", NS]).status()?.success();
    let mut cfg = InterfaceConfig::new("utcp0", Ipv4Addr::new(10, 78, 0, 2), Ipv4Addr::new(10, 78, 0, 1), 24);
    cfg.netns = Some(NS.into());
    let iface = Interface::new(cfg)?;
    let listener = utcp::tokio::TcpListener::bind(&iface, "0.0.0.0:7".parse().unwrap())?;
    println!("echo on {} (namespace {NS}); Ctrl-C to stop", listener.local_addr()?);
    let serve = async {
        loop {
            let (mut stream, peer) = listener.accept().await?;
            tokio::spawn(async move {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) if stream.write_all(&buf[..n]).await.is_err() => break,
                        Ok(_) => {}
                    }
                }
                println!("{peer} done");
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    tokio::select! {
        r = serve => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(iface);
    if created {
        let _ = std::process::Command::new("ip").args(["netns", "del", NS]).status();
    }
    Ok(())
}
