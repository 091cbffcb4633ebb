//! `utcp connect HOST:PORT`: netcat on the stack. stdin goes to the connection, the
//! connection to stdout; stdin EOF half-closes our side; exit 0 once the peer closes.

use crate::serve::NetArgs;
use crate::signals::Stop;
use clap::Args;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use utcp::TcpStream;

/// Netcat on the stack: stdin to HOST:PORT, the connection to stdout (root)
///
/// Connects from the stack to HOST:PORT (normally the kernel side of the TUN). EOF on stdin
/// half-closes our side; the command exits 0 once the peer closes, 130 after SIGINT/SIGTERM.
#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// The remote end, e.g. 10.77.0.1:7
    #[arg(value_name = "HOST:PORT")]
    target: String,
    /// Give up connecting after SECS seconds
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = crate::parsers::timeout)]
    timeout: Duration,
    #[command(flatten)]
    net: NetArgs,
}

pub fn run(args: ConnectArgs) -> i32 {
    args.net.validate("connect");
    match connect(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("utcp connect: {e}");
            1
        }
    }
}

fn connect(args: &ConnectArgs) -> Result<i32, String> {
    let target = &args.target;
    let remote: SocketAddr = target
        .to_socket_addrs()
        .map_err(|e| format!("{target}: {e}"))?
        // IPv6 (issue 13): an IPv6 target needs --addr6/--peer6.
        .find(|a| a.is_ipv4() || args.net.addr6.is_some())
        .ok_or_else(|| format!("{target}: no IPv4 address (an IPv6 one needs --addr6 and --peer6)"))?;
    // A signal ends the session: shut the connection (once there is one) so the copy returns.
    let slot: Arc<Mutex<Option<Arc<TcpStream>>>> = Arc::default();
    let on_stop = slot.clone();
    let stop = Stop::install(move || {
        if let Some(s) = on_stop.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = s.shutdown(Shutdown::Both);
        }
    })
    .map_err(|e| format!("signal handlers: {e}"))?;
    let (ns, iface) = args.net.open(utcp::engine::Config::default())?;
    let stream = match TcpStream::connect_timeout(&iface, &remote, args.timeout) {
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
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream.clone());
    if stop.requested() {
        let _ = stream.shutdown(Shutdown::Both);
    }

    spawn_stdin_copy(stream.clone());
    let result = copy_to_stdout(&stream, remote);
    // Close our side too (the stdin thread may still hold a reference) and let the
    // FIN exchange finish before the TUN goes away.
    let _ = stream.shutdown(Shutdown::Write);
    slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(stream);
    iface.wait_quiet(Duration::from_millis(200), Duration::from_secs(2));
    drop(iface);
    args.net.finish_plot();
    drop(ns);
    match result {
        Ok(()) if stop.requested() => Ok(130),
        Ok(()) => Ok(0),
        Err(e) => Err(e),
    }
}

/// stdin -> connection on a thread; EOF half-closes (FIN), the read side stays open.
fn spawn_stdin_copy(up: Arc<TcpStream>) {
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
}

/// connection -> stdout, until the peer closes.
fn copy_to_stdout(stream: &TcpStream, remote: SocketAddr) -> Result<(), String> {
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match (&*stream).read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                out.write_all(&buf[..n]).and_then(|()| out.flush()).map_err(|e| format!("stdout: {e}"))?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let why = match e.kind() {
                    io::ErrorKind::ConnectionReset => "connection reset by peer",
                    io::ErrorKind::TimedOut => "connection timed out",
                    _ => "receive failed",
                };
                return Err(format!("{remote}: {why}: {e}"));
            }
        }
    }
}
