//! `utcp plot` on a capture of two kernels, made with tcpdump on a veth between two
//! namespaces this test creates (Ethernet link type, offloaded checksums, GSO-sized
//! segments). Needs root and tcpdump; skipped loudly otherwise (a failure under CI=true).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;
use utcp_tools::netns::{NetNs, assert_root};
use utcp_tools::plot::{self, PlotOptions};

const BYTES: usize = 4 << 20;

#[test]
#[cfg_attr(
    not(all(utcp_root_tests, utcp_tool_tests)),
    ignore = "needs root, /dev/net/tun and tcpdump (CI has them)"
)]
fn kernel_to_kernel_tcpdump_capture_plots() {
    assert_root("plot_kernel");
    assert!(
        Command::new("tcpdump").arg("--version").output().is_ok(),
        "plot_kernel needs tcpdump (apt-get install tcpdump)"
    );
    let a = NetNs::create(&NetNs::unique_name("utcp-plot-a")).unwrap();
    let b = NetNs::create(&NetNs::unique_name("utcp-plot-b")).unwrap();
    a.exec("ip", &["link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b.name()]).unwrap();
    a.exec("ip", &["addr", "add", "10.91.0.1/24", "dev", "va"]).unwrap();
    b.exec("ip", &["addr", "add", "10.91.0.2/24", "dev", "vb"]).unwrap();
    a.exec("ip", &["link", "set", "va", "up"]).unwrap();
    b.exec("ip", &["link", "set", "vb", "up"]).unwrap();
    // A bottleneck with some delay, if netem is available (the graph is drawn either way).
    let _ = a.exec("tc", &["qdisc", "add", "dev", "va", "root", "netem", "delay", "5ms", "rate", "100mbit"]);

    let dir = std::env::temp_dir().join(format!("utcp-plot-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("kernel.pcap");
    let mut dump = Command::new("ip")
        .args([
            "netns",
            "exec",
            a.name(),
            "tcpdump",
            "--immediate-mode",
            "-i",
            "va",
            "-U",
            "-s",
            "128",
            "-c",
            "200000",
            "-w",
        ])
        .arg(&pcap)
        .args(["tcp", "port", "5001"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    // tcpdump says "listening on va" once it captures.
    let mut err = BufReader::new(dump.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("listening on") {
        line.clear();
    }
    assert!(line.contains("listening on"), "tcpdump did not start: {line}");

    let server = b
        .spawn(|| {
            let l = TcpListener::bind("10.91.0.2:5001").unwrap();
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut n = 0;
            let mut buf = vec![0u8; 65536];
            loop {
                match s.read(&mut buf).unwrap() {
                    0 => return n,
                    k => n += k,
                }
            }
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let client = a
        .spawn(|| {
            let mut s = TcpStream::connect("10.91.0.2:5001").unwrap();
            s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
            s.write_all(&vec![0x5a; BYTES]).unwrap();
        })
        .unwrap();
    client.join().unwrap().unwrap();
    assert_eq!(server.join().unwrap().unwrap(), BYTES);
    // Let tcpdump read the last packets off its ring: wait (bounded) until the file, written
    // per packet (-U), stops growing.
    let mut last = 0;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(500));
        let len = std::fs::metadata(&pcap).map(|m| m.len()).unwrap_or(0);
        if len == last && len > 24 {
            break;
        }
        last = len;
    }
    // SIGTERM: tcpdump flushes and exits.
    unsafe { libc::kill(dump.id() as i32, libc::SIGTERM) };
    let _ = dump.wait();
    // "N packets dropped by kernel": a busy machine may lose some of the capture.
    let mut tail = String::new();
    let _ = err.read_to_string(&mut tail);
    let dropped = tail
        .lines()
        .find_map(|l| l.strip_suffix(" packets dropped by kernel"))
        .and_then(|n| n.trim().parse::<u64>().ok());

    let svg = dir.join("kernel.svg");
    let opts =
        PlotOptions { capture: pcap.clone(), conn: None, from: 0.0, to: f64::INFINITY, out: svg.clone() };
    let s = plot::run(&opts).expect("plot");
    assert_eq!(s.flow.src.ip().to_string(), "10.91.0.1");
    assert_eq!(s.flow.dst.port(), 5001);
    // Every byte, the SYN and the FIN, in relative sequence space.
    if dropped == Some(0) {
        assert_eq!(s.sent_end, BYTES as i64 + 2, "every byte, the SYN and the FIN");
    } else {
        eprintln!("tcpdump: {tail}");
        assert!(s.sent_end > BYTES as i64 / 2, "sequence range {}", s.sent_end);
    }
    assert!(s.segments > 10);
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("XML");
    assert!(doc.descendants().filter(|n| n.has_tag_name("polyline")).count() > s.segments);
    if let Ok(keep) = std::env::var("UTCP_PLOT_KEEP") {
        let _ = std::fs::copy(&svg, keep);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
