//! IPv6 interoperability with the Linux kernel (issue 13): `utcp serve --http` with an
//! IPv6 address on its TUN, in a private namespace this test creates (and removes).
//! `ping -6` and `ping` get replies (ICMPv6 / ICMP echo), curl downloads over IPv6 and
//! over IPv4 from the same `[::]` listener (IPV6_V6ONLY off), and a python client speaks
//! HTTP over AF_INET6. Needs root and /dev/net/tun: `ignored` otherwise, run (and failing
//! without them) under CI=true; see `crates/tools/build.rs`.

mod common;
use common::{run_utcp_connect, stop_child};
use std::io::{self, BufRead, Read};
use std::time::Duration;
use utcp_tools::netns::{NetNs, assert_root};

const STACK4: &str = "10.77.0.2";
const STACK6: &str = "fd00:77::2";
const KERNEL6: &str = "fd00:77::1/64";

fn file_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn ping6_curl6_and_python6_against_utcp_serve_http() {
    assert_root("ping6_curl6_and_python6_against_utcp_serve_http");
    for tool in ["curl", "ping", "python3"] {
        let ok = std::process::Command::new(tool).arg("--version").output().is_ok()
            || std::process::Command::new(tool).arg("-V").output().is_ok();
        assert!(ok, "{tool} is not installed; this test needs it");
    }
    let ns = NetNs::create(&NetNs::unique_name("utcp-v6")).unwrap();
    let dir = std::env::temp_dir().join(format!("utcp-v6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = file_bytes(3 << 20);
    std::fs::write(dir.join("f.bin"), &body).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_utcp"))
        .args(["serve", "--http", dir.to_str().unwrap(), "--port", "8080", "--netns", ns.name()])
        .args(["--addr6", STACK6, "--peer6", KERNEL6])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = io::BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    let ready = line.contains("ready");

    let ping6 = ns.exec("ping", &["-6", "-c", "3", "-i", "0.2", "-W", "2", STACK6]);
    let ping4 = ns.exec("ping", &["-c", "2", "-i", "0.2", "-W", "2", STACK4]);
    let got6 = dir.join("got6.bin");
    let url6 = format!("http://[{STACK6}]:8080/f.bin");
    let curl6 =
        ns.exec("curl", &["-g", "-6", "-sS", "--max-time", "60", "-o", got6.to_str().unwrap(), &url6]);
    let got4 = dir.join("got4.bin");
    let url4 = format!("http://{STACK4}:8080/f.bin");
    let curl4 = ns.exec("curl", &["-sS", "--max-time", "60", "-o", got4.to_str().unwrap(), &url4]);
    let py = format!(
        "import socket\n\
         s = socket.create_connection(('{STACK6}', 8080), timeout=30)\n\
         assert s.family == socket.AF_INET6\n\
         s.sendall(b'GET /f.bin HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n')\n\
         data = b''\n\
         while True:\n    c = s.recv(65536)\n    if not c: break\n    data += c\n\
         head, _, body = data.partition(b'\\r\\n\\r\\n')\n\
         print(head.split(b'\\r\\n')[0].decode(), len(body), sum(body) % 65521)\n"
    );
    let python6 = ns.exec("python3", &["-c", &py]);

    let status = stop_child(&mut child, rustix::process::Signal::TERM);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let read = |p: &std::path::Path| std::fs::read(p).unwrap_or_default();
    let (b6, b4) = (read(&got6), read(&got4));
    let _ = std::fs::remove_dir_all(&dir);

    assert!(ready, "serve did not start: {line:?} {err}");
    let ping6 = ping6.unwrap_or_else(|e| panic!("ping -6: {e}"));
    assert!(ping6.contains("3 received"), "ping -6: {ping6}");
    let ping4 = ping4.unwrap_or_else(|e| panic!("ping: {e}"));
    assert!(ping4.contains("2 received"), "ping: {ping4}");
    curl6.unwrap_or_else(|e| panic!("curl -6: {e}"));
    assert!(b6 == body, "curl over IPv6 got {} bytes, not the file", b6.len());
    curl4.unwrap_or_else(|e| panic!("curl over IPv4: {e}"));
    assert!(b4 == body, "curl over IPv4 got {} bytes, not the file", b4.len());
    let want = body.iter().map(|&b| b as u64).sum::<u64>() % 65521;
    let python6 = python6.unwrap_or_else(|e| panic!("python over IPv6: {e}"));
    assert_eq!(python6.trim(), format!("HTTP/1.1 200 OK {} {want}", body.len()), "python over IPv6");
    let status = status.expect("serve did not exit within 20 s of SIGTERM");
    assert!(status.success(), "serve exited with {status}: {err}");
}

/// `utcp connect [IPv6]:PORT` (issue 13): the stack connects over IPv6 to a kernel
/// listener in the namespace, stdin reaches it byte-exact, its answer reaches stdout;
/// a closed IPv6 port is a clear refusal and a non-zero exit.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn utcp_connect_cli_over_ipv6() {
    assert_root("utcp_connect_cli_over_ipv6");
    let ns = NetNs::create(&NetNs::unique_name("utcp-nc6")).unwrap();
    let kernel = KERNEL6.split('/').next().unwrap();
    // The kernel listens on [::] (its TUN address appears once `utcp connect` made the TUN):
    // read to EOF, answer with the byte count and the client's address, close.
    let h = ns
        .spawn(|| -> io::Result<(Vec<u8>, std::net::SocketAddr)> {
            use std::io::Write;
            let l = std::net::TcpListener::bind("[::]:7070")?;
            let (mut s, peer) = l.accept()?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            let mut got = Vec::new();
            s.read_to_end(&mut got)?;
            s.write_all(format!("got {} bytes from {}\n", got.len(), peer.ip()).as_bytes())?;
            Ok((got, peer))
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let net = ["--netns", ns.name(), "--addr6", STACK6, "--peer6", KERNEL6];
    let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let target = format!("[{kernel}]:7070");
    let out = run_utcp_connect(&[&[target.as_str()][..], &net[..]].concat(), &input);
    assert!(out.status.success(), "connect failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("got 300000 bytes from {STACK6}\n"));
    let (got, peer) = h.join().unwrap().unwrap().unwrap();
    assert!(got == input, "the kernel got {} bytes, not the input", got.len());
    assert!(peer.is_ipv6(), "{peer}");

    // Nobody listens on 7071: refused over IPv6 too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_utcp"))
        .args(["connect", &format!("[{kernel}]:7071")])
        .args(net)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "{err}");
}
