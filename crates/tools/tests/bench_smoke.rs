//! CI smoke test of `utcp bench --quick --json`: every system × workload row is present with
//! positive numbers. Needs root (namespaces, veth, TUN); no ratio is asserted.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use utcp_tools::netns::assert_root;

const SYSTEMS: [&str; 3] = ["kernel", "smoltcp", "utcp"];
const ROWS: [&str; 6] = ["bulk_to_stack", "bulk_from_stack", "rr", "rr_p50", "rr_p99", "connect"];

/// The number after `"key":` in `obj`.
fn number(obj: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let at = obj.find(&pat)? + pat.len();
    let rest = &obj[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e' || c == '+'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The string after `"key":` in `obj`.
fn string<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let at = obj.find(&pat)? + pat.len();
    let end = obj[at..].find('"')?;
    Some(&obj[at..at + end])
}

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn bench_quick_json_has_every_system_and_workload() {
    assert_root("bench_quick_json_has_every_system_and_workload");
    let mut child = Command::new(env!("CARGO_BIN_EXE_utcp"))
        .args(["bench", "--quick", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn utcp bench");
    let deadline = Instant::now() + Duration::from_secs(50);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("utcp bench --quick took more than 50 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read stdout");
    assert!(status.success(), "utcp bench failed: {status}; stdout: {out}");
    let out = out.trim();
    assert!(
        out.starts_with("{\"rounds\":1,\"results\":[") && out.ends_with('}'),
        "not one JSON object: {out}"
    );
    assert_eq!(out.lines().count(), 1, "more than one line: {out}");
    let results_end = out.find("],\"ratios\":{").expect("ratios after results");
    let results = &out[..results_end];
    let objects: Vec<&str> = results.split("{\"workload\":").skip(1).collect();
    assert_eq!(objects.len(), SYSTEMS.len() * ROWS.len(), "{out}");
    for sys in SYSTEMS {
        for row in ROWS {
            let obj = objects
                .iter()
                .map(|o| format!("{{\"workload\":{o}"))
                .find(|o| string(o, "workload") == Some(row) && string(o, "system") == Some(sys))
                .unwrap_or_else(|| panic!("no row {row} for {sys}: {out}"));
            for key in ["median", "min", "max"] {
                let v = number(&obj, key).unwrap_or_else(|| panic!("{key} missing: {obj}"));
                assert!(v > 0.0 && v.is_finite(), "{row}/{sys} {key} = {v}: {obj}");
            }
            let min = number(&obj, "min").unwrap_or(0.0);
            let max = number(&obj, "max").unwrap_or(0.0);
            let median = number(&obj, "median").unwrap_or(0.0);
            assert!(min <= median && median <= max, "{obj}");
            assert!(string(&obj, "unit").is_some_and(|u| !u.is_empty()), "{obj}");
        }
    }
}

/// `utcp bench --only forward --quick`, through the library: every system's four numbers
/// and every ratio are finite and positive. Needs root (namespaces, veth, TUN).
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn forward_quick_numbers_are_finite_and_positive() {
    assert_root("forward_quick_numbers_are_finite_and_positive");
    let r = utcp_tools::bench::forward::run(true);
    let names: Vec<&str> = r.systems.iter().map(|s| s.system.as_str()).collect();
    assert_eq!(names, ["kernel", "utcp", "ipstack", "netstack-smoltcp"], "{}", r.table());
    for s in &r.systems {
        assert!(s.error.is_none(), "{}: {:?}", s.system, s.error);
        for v in [s.bulk_gbit_s, s.connects_per_s, s.rr_p50_us, s.rr_p99_us] {
            assert!(v.is_finite() && v > 0.0, "{}: {v}\n{}", s.system, r.table());
        }
        assert!(s.rr_p50_us <= s.rr_p99_us, "{}", r.table());
    }
    assert_eq!(r.ratios.len(), 2, "{}", r.table());
    for q in &r.ratios {
        for v in [q.bulk, q.connects, q.rr_p50, q.rr_p99] {
            assert!(v.is_finite() && v > 0.0, "utcp vs {}: {v}\n{}", q.versus, r.table());
        }
    }
    let json = r.json();
    // NaN (a failed metric) would be null; `error` is null when nothing failed.
    let numbers = json.replace("\"error\":null", "");
    assert!(json.starts_with("{\"work\":") && !numbers.contains("null"), "{json}");
}
