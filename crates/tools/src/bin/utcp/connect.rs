//! `utcp connect HOST:PORT`: netcat on the stack. stdin goes to the connection, the
//! connection to stdout; stdin EOF half-closes our side; exit 0 once the peer closes.

use crate::args::Args;
use crate::serve::{NET_FLAGS, NetOpts, StopSignal};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use utcp::TcpStream;

const USAGE: &str = "\
usage: utcp connect HOST:PORT [options]

Connects from the stack to HOST:PORT (normally the kernel side of the TUN) and copies
stdin to the connection and the connection to stdout.
  --timeout SECS     give up connecting after SECS seconds (default 10)
  --netns NAME       network namespace for the TUN (default utcp; created if missing,
                     removed on exit only if created)
  --tun NAME         TUN interface name (default utcp0)
  --addr IP          the stack's own address (default 10.77.0.2)
  --peer IP/PREFIX   the kernel side's address on the TUN (default 10.77.0.1/24)
  --pcap FILE        write every packet crossing the TUN to FILE (pcap, raw IP)
  --plot FILE        time-sequence graph of the connection, on close (SVG)
";

pub fn run(argv: &[String]) -> i32 {
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return 0;
    }
    match connect(argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("utcp connect: {e}");
            1
        }
    }
}

fn connect(argv: &[String]) -> Result<i32, String> {
    let mut flags = vec!["timeout"];
    flags.extend(NET_FLAGS);
    let a = Args::parse(argv, &flags)?;
    a.check_switches(&[])?;
    let [target] = &a.positional[..] else {
        return Err(format!("give exactly one HOST:PORT\n{USAGE}"));
    };
    let remote: SocketAddr = target
        .to_socket_addrs()
        .map_err(|e| format!("{target}: {e}"))?
        .find(|a| a.is_ipv4())
        .ok_or_else(|| format!("{target}: no IPv4 address"))?;
    let timeout: f64 = a.parse_or("timeout", 10.0)?;
    if !(timeout > 0.0 && timeout.is_finite()) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    let net = NetOpts::from_args(&a)?;
    let stop = StopSignal::install().map_err(|e| format!("signal handlers: {e}"))?;
    let (ns, iface) = net.open(utcp::engine::Config::default())?;
    let stream = match TcpStream::connect_timeout(&iface, &remote, Duration::from_secs_f64(timeout)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let why = match e.kind() {
                io::ErrorKind::ConnectionRefused => "connection refused (RST)",
                io::ErrorKind::TimedOut => "timed out",
                io::ErrorKind::ConnectionReset => "connection reset",
                _ => "failed",
            };
            drop(iface);
            drop(ns);
            return Err(format!("{remote}: {why}: {e}"));
        }
    };

    // stdin -> connection; EOF half-closes (FIN), the read side stays open.
    let up = stream.clone();
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if (&*up).write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = up.shutdown(Shutdown::Write);
    });
    // A signal ends the session: shut the connection so the copy below returns.
    let sig = stream.clone();
    std::thread::spawn(move || {
        stop.wait();
        let _ = sig.shutdown(Shutdown::Both);
    });

    // connection -> stdout, until the peer closes.
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let result = loop {
        match (&*stream).read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Err(e) = out.write_all(&buf[..n]).and_then(|()| out.flush()) {
                    break Err(format!("stdout: {e}"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let why = match e.kind() {
                    io::ErrorKind::ConnectionReset => "connection reset by peer",
                    io::ErrorKind::TimedOut => "connection timed out",
                    _ => "receive failed",
                };
                break Err(format!("{remote}: {why}: {e}"));
            }
        }
    };
    // Close our side too (the stdin thread may still hold a reference) and let the
    // FIN exchange finish before the TUN goes away.
    let _ = stream.shutdown(Shutdown::Write);
    drop(stream);
    iface.wait_quiet(Duration::from_millis(200), Duration::from_secs(2));
    drop(iface);
    net.finish_plot();
    drop(ns);
    match result {
        Ok(()) if crate::serve::stop_requested() => Ok(130),
        Ok(()) => Ok(0),
        Err(e) => Err(e),
    }
}
