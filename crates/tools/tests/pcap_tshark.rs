//! The runtime's pcap files open in tshark: two SYNs written by `PcapWriter` read back as
//! two TCP packets with the right address, port and flag. Needs tshark (`.ci/run` installs
//! it); without it the test is listed as ignored, and under `CI=true` it runs and fails.

use std::net::{IpAddr, Ipv4Addr};
use utcp::device::pcap::PcapWriter;
use utcp::seq::SeqNum;
use utcp::time::Instant;
use utcp::wire::{OptionLayout, TcpFlags, TcpHeaderOut, TcpOptions, emit_ipv4_tcp};

/// 10.0.0.1:12345 -> 10.0.0.2:80, SYN, built by the engine's own emitter (checksums filled).
fn syn_packet() -> Vec<u8> {
    let h = TcpHeaderOut {
        tcp: utcp::wire::TcpRepr {
            src_port: 12345,
            dst_port: 80,
            seq: SeqNum(1),
            ack: SeqNum(0),
            flags: TcpFlags::SYN,
            window: 65535,
            urgent: 0,
            options: TcpOptions::default(),
        },
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        ttl: 64,
        ip_id: 1,
        flow_label: 0,
    };
    let mut buf = [0u8; 64];
    let n = emit_ipv4_tcp(&mut buf, &h, OptionLayout::Linux, &[]).expect("fits");
    buf[..n].to_vec()
}

#[test]
#[cfg_attr(not(utcp_tool_tests), ignore = "needs tshark: apt-get install tshark (CI installs it)")]
fn tshark_reads_our_pcap_as_tcp() {
    let path = std::env::temp_dir().join(format!("utcp-pcap-test-{}.pcap", std::process::id()));
    {
        let f = std::fs::File::create(&path).unwrap();
        let mut w = PcapWriter::new(std::io::BufWriter::new(f)).unwrap();
        w.write_packet(Instant::from_millis(1), &syn_packet()).unwrap();
        w.write_packet(Instant::from_millis(2), &syn_packet()).unwrap();
        w.flush().unwrap();
    }
    let out = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .args(["-T", "fields", "-e", "ip.src", "-e", "tcp.dstport", "-e", "tcp.flags.syn"])
        .output()
        .expect("tshark must be installed for this test (apt-get install tshark)");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for l in lines {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f[0], "10.0.0.1");
        assert_eq!(f[1], "80");
        assert!(f[2] == "1" || f[2] == "True", "{l}");
    }
}
