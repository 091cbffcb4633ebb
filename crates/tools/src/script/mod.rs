//! Packetdrill-style script runner: plays the remote peer against a fresh
//! [`utcp::engine::Stack`] on a virtual clock, driving the stack's API as the local
//! application (see `docs/conformance.md`).
//!
//! - [`parse`] turns script text into an [`ast::Script`], with line-numbered errors.
//! - [`profile`] picks the engine `Config` (`utcp` = defaults, `freebsd` = the FreeBSD
//!   policy the freebsd-net/tcp-testsuite scripts expect) and maps `sysctl` lines onto it.
//! - `run` executes events on virtual time; `syscall` implements the socket calls.
//! - [`packet`] builds inbound packets byte-exact and decodes outbound ones.
//!
//! Each script ends PASS, FAIL (first mismatch: line, expected vs actual) or UNSUPPORTED
//! (naming the feature). Nothing unsupported is ever skipped silently.

pub mod ast;
pub mod icmp;
pub mod linux;
mod nstat;
pub mod packet;
pub mod parse;
pub mod profile;
mod run;
pub mod shell;
mod syscall;

pub use profile::Profile;

use ast::{Action, Script};
use run::{Runner, Stop};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The outcome of one script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The first mismatch: script line and what differed.
    Fail {
        line: usize,
        reason: String,
    },
    /// The script needs something the runner or engine does not provide.
    Unsupported {
        line: usize,
        feature: String,
    },
    /// The script could not be read or parsed (counted as failed).
    Error {
        line: usize,
        reason: String,
    },
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail { .. } => "FAIL",
            Verdict::Unsupported { .. } => "UNSUPPORTED",
            Verdict::Error { .. } => "ERROR",
        }
    }

    /// One-line reason (empty for PASS).
    pub fn reason(&self) -> String {
        match self {
            Verdict::Pass => String::new(),
            Verdict::Fail { line, reason } | Verdict::Error { line, reason } => {
                format!("line {line}: {}", reason.lines().next().unwrap_or(""))
            }
            Verdict::Unsupported { line, feature } => format!("line {line}: {feature}"),
        }
    }

    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass)
    }
}

/// One script's result.
#[derive(Clone, Debug)]
pub struct ScriptReport {
    pub path: PathBuf,
    pub verdict: Verdict,
    /// Ignored commands/flags and policy notes.
    pub notes: Vec<String>,
    /// With `verbose`: the packets and calls as they happened.
    pub trace: Vec<String>,
}

/// Run script text. `name` is used in reports only.
pub fn run_text(name: &Path, text: &str, profile: &Profile, verbose: bool) -> ScriptReport {
    let mut report = ScriptReport {
        path: name.to_path_buf(),
        verdict: Verdict::Pass,
        notes: Vec::new(),
        trace: Vec::new(),
    };
    let script = match parse::parse_script(text, &profile.defines) {
        Ok(s) => s,
        Err(e) => {
            report.verdict = Verdict::Error { line: e.line, reason: format!("parse error: {}", e.reason) };
            return report;
        }
    };
    if let Some((line, feature)) = run::prescan(&script, profile) {
        report.verdict = Verdict::Unsupported { line, feature };
        return report;
    }
    run_parsed(&script, profile, verbose, &mut report);
    report
}

fn run_parsed(script: &Script, profile: &Profile, verbose: bool, report: &mut ScriptReport) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut r = Runner::new(script, profile, verbose);
        let res = r.run();
        (res, std::mem::take(&mut r.notes), std::mem::take(&mut r.trace), r.line)
    }));
    match outcome {
        Ok((res, notes, trace, _)) => {
            report.notes = notes;
            report.trace = trace;
            report.verdict = match res {
                Ok(()) => Verdict::Pass,
                Err(Stop::Fail { line, reason }) => Verdict::Fail { line, reason },
                Err(Stop::Unsupported { line, feature }) => Verdict::Unsupported { line, feature },
            };
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            let line = script.events.first().map(|e| e.line).unwrap_or(0);
            report.verdict = Verdict::Fail { line, reason: format!("the engine panicked: {msg}") };
        }
    }
}

/// Read and run one file.
pub fn run_file(path: &Path, profile: &Profile, verbose: bool) -> ScriptReport {
    match std::fs::read_to_string(path) {
        Ok(text) => run_text(path, &text, profile, verbose),
        Err(e) => ScriptReport {
            path: path.to_path_buf(),
            verdict: Verdict::Error { line: 0, reason: format!("cannot read: {e}") },
            notes: Vec::new(),
            trace: Vec::new(),
        },
    }
}

/// Expand files and directories (recursively, `*.pkt`) into a sorted list of scripts.
pub fn collect_scripts(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir)? {
                    let path = entry?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|e| e == "pkt") {
                        out.push(path);
                    }
                }
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no such file or directory", p.display()),
            ));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `N passed, M failed, K skipped` (skipped = unsupported; errors count as failed).
pub fn summary_line(reports: &[ScriptReport]) -> String {
    let passed = reports.iter().filter(|r| r.verdict.is_pass()).count();
    let skipped = reports.iter().filter(|r| matches!(r.verdict, Verdict::Unsupported { .. })).count();
    let failed = reports.len() - passed - skipped;
    format!("{passed} passed, {failed} failed, {skipped} skipped")
}

/// The per-script table: verdict, name, reason.
pub fn table(reports: &[ScriptReport]) -> String {
    let width = reports.iter().map(|r| r.path.display().to_string().len()).max().unwrap_or(4).min(90);
    let mut s = String::new();
    let _ = writeln!(s, "{:<11} {:<width$} REASON", "VERDICT", "SCRIPT");
    for r in reports {
        let _ = writeln!(s, "{:<11} {:<width$} {}", r.verdict.label(), r.path.display(), r.verdict.reason());
    }
    s
}

/// One JSON object (one line) for a script, as `utcp script --json` prints it:
/// `{"script","verdict","line","reason","notes"}`; `line` and `reason` are null for PASS.
pub fn to_json(r: &ScriptReport) -> String {
    let (line, reason) = match &r.verdict {
        Verdict::Pass => (None, None),
        Verdict::Fail { line, reason } | Verdict::Error { line, reason } => {
            (Some(*line), Some(reason.as_str()))
        }
        Verdict::Unsupported { line, feature } => (Some(*line), Some(feature.as_str())),
    };
    let script = r.path.display().to_string();
    let json = ScriptJson { script: &script, verdict: r.verdict.label(), line, reason, notes: &r.notes };
    crate::bench::report::to_json(&json)
}

/// `to_json`'s object; fields in output order (tools/conformance_doc.py reads them).
#[derive(serde::Serialize)]
struct ScriptJson<'a> {
    script: &'a str,
    verdict: &'static str,
    line: Option<usize>,
    reason: Option<&'a str>,
    notes: &'a [String],
}

/// True if the script only uses IPv4 (the header says so, or says nothing).
pub fn is_ipv4_script(text: &str) -> bool {
    !text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("--ip_version=") && l != "--ip_version=ipv4"
    })
}

/// True if the script runs over IPv6 (`--ip_version=ipv6`).
pub fn is_ipv6_script(text: &str) -> bool {
    text.lines().any(|l| l.trim() == "--ip_version=ipv6")
}

/// How many events of each kind a script has (for `--verbose` summaries and tests).
pub fn event_counts(script: &Script) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for e in &script.events {
        match e.action {
            Action::Packet(_) => c.0 += 1,
            Action::Syscall(_) => c.1 += 1,
            _ => c.2 += 1,
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_escaped_and_complete() {
        let r = ScriptReport {
            path: PathBuf::from("a\"b.pkt"),
            verdict: Verdict::Fail { line: 3, reason: "x\ny".into() },
            notes: vec!["n\t1".into()],
            trace: vec![],
        };
        assert_eq!(
            to_json(&r),
            r#"{"script":"a\"b.pkt","verdict":"FAIL","line":3,"reason":"x\ny","notes":["n\t1"]}"#
        );
        let pass = ScriptReport { verdict: Verdict::Pass, notes: vec![], ..r };
        assert_eq!(
            to_json(&pass),
            r#"{"script":"a\"b.pkt","verdict":"PASS","line":null,"reason":null,"notes":[]}"#
        );
    }

    #[test]
    fn summary_counts_errors_as_failed() {
        let mk =
            |v: Verdict| ScriptReport { path: PathBuf::from("x"), verdict: v, notes: vec![], trace: vec![] };
        let rs = vec![
            mk(Verdict::Pass),
            mk(Verdict::Error { line: 1, reason: "r".into() }),
            mk(Verdict::Unsupported { line: 1, feature: "f".into() }),
            mk(Verdict::Fail { line: 2, reason: "r".into() }),
        ];
        assert_eq!(summary_line(&rs), "1 passed, 2 failed, 1 skipped");
        assert!(table(&rs).contains("UNSUPPORTED"));
    }

    fn verdict(profile: &Profile, text: &str) -> Verdict {
        run_text(Path::new("t.pkt"), text, profile, false).verdict
    }

    #[test]
    fn commands_the_runner_cannot_honour_are_unsupported() {
        let p = Profile::utcp();
        let v = verdict(
            &p,
            "`tc qdisc add dev tun0 root netem loss 1%`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
        );
        assert!(
            matches!(&v, Verdict::Unsupported { line: 1, feature } if feature.contains("tc qdisc")),
            "{v:?}"
        );
        // One statement of a multi-line command is enough.
        let v = verdict(
            &p,
            "`sysctl -q net.ipv4.tcp_sack=1\nsysctl -q net.ipv4.tcp_pacing_ss_ratio=200`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
        );
        assert!(
            matches!(&v, Verdict::Unsupported { feature, .. } if feature.contains("tcp_pacing_ss_ratio")),
            "{v:?}"
        );
        let v = verdict(
            &p,
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 `/tmp/set_sysctls.py /proc/sys/net/ipv4/tcp_recovery=4`\n+0 close(3) = 0\n+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
        );
        assert!(
            matches!(&v, Verdict::Unsupported { line: 2, feature } if feature.contains("tcp_recovery")),
            "{v:?}"
        );
        // After the last packet or call, a command that asserts nothing is only noted.
        assert_eq!(
            verdict(&p, "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 `tc qdisc del dev tun0 root`\n"),
            Verdict::Pass
        );
    }

    #[test]
    fn sysctls_from_set_sysctls_change_the_run() {
        // tcp_rmem's maximum sets the offered window scale: 8 for 15 MiB, as on Linux.
        let text = "`/tmp/set_sysctls.py /proc/sys/net/ipv4/tcp_rmem=\"4096 540000 15728640\"`\n\
            0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
            +0 < S 0:0(0) win 65535 <mss 1460,nop,wscale 7>\n+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>\n";
        assert_eq!(verdict(&Profile::utcp(), text), Verdict::Pass);
        let v = verdict(&Profile::utcp(), &text.replace("wscale 8", "wscale 3"));
        assert!(matches!(v, Verdict::Fail { line: 6, .. }), "{v:?}");
    }

    #[test]
    fn send_flags_other_than_oob_and_nosignal_are_unsupported() {
        let text = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
            +0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 <...>\n+0 < . 1:1(0) ack 1 win 512\n\
            +0 accept(3, ..., ...) = 4\n+0 send(4, ..., 10, MSG_MORE) = 10\n";
        let v = verdict(&Profile::utcp(), text);
        assert!(
            matches!(&v, Verdict::Unsupported { line: 8, feature } if feature.contains("MSG_MORE")),
            "{v:?}"
        );
        let v = verdict(
            &Profile::utcp(),
            &text.replace("MSG_MORE) = 10\n", "MSG_OOB) = 10\n+0 > P.U 1:11(10) ack 1 urg 10 <...>\n"),
        );
        assert_eq!(v, Verdict::Pass);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let r = run_text(
            Path::new("t.pkt"),
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bogus\n",
            &Profile::utcp(),
            false,
        );
        assert!(matches!(r.verdict, Verdict::Error { line: 2, .. }), "{:?}", r.verdict);
    }
}
