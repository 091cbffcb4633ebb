//! The `utcp` command line (clap): `--help` and `--version` on every subcommand exit 0 without
//! doing the work, usage errors exit 2 with a message on stderr, a closed stdout does not
//! panic, and the `--json` outputs parse. No root needed: nothing here opens a TUN.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SUBCOMMANDS: [&str; 8] = ["demo", "serve", "connect", "forward", "sim", "script", "bench", "plot"];
/// A guard against a hang (a help that starts the work), not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Run `utcp args` to the end (bounded by [`HANG_GUARD`]).
fn utcp(args: &[&str]) -> Output {
    wait_bounded(start(args), args)
}

/// Start `utcp args` with stdout and stderr piped.
fn start(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_utcp"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn utcp")
}

/// Wait for `child`, killing it (and failing) if it runs past [`HANG_GUARD`].
fn wait_bounded(mut child: Child, args: &[&str]) -> Output {
    let start = Instant::now();
    // Read in threads so a chatty child cannot block on a full pipe.
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("utcp {args:?} still running after {HANG_GUARD:?}: it did the work");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: out.join().expect("stdout"), stderr: err.join().expect("stderr") }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut v);
        }
        v
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The repository's own packetdrill scripts.
fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scripts")
}

#[test]
fn version_exits_0() {
    for args in [&["--version"][..], &["-V"][..]] {
        let o = utcp(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {o:?}");
        let out = text(&o.stdout);
        assert!(out.starts_with("utcp ") && out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    }
    for cmd in SUBCOMMANDS {
        let o = utcp(&[cmd, "--version"]);
        assert_eq!(o.status.code(), Some(0), "{cmd} --version: {o:?}");
        assert!(text(&o.stdout).contains(env!("CARGO_PKG_VERSION")), "{cmd}: {o:?}");
    }
}

#[test]
fn every_subcommand_has_help_that_does_no_work() {
    for cmd in SUBCOMMANDS {
        for flag in ["--help", "-h"] {
            let o = utcp(&[cmd, flag]);
            let (out, err) = (text(&o.stdout), text(&o.stderr));
            assert_eq!(o.status.code(), Some(0), "{cmd} {flag}: {out}{err}");
            assert!(out.contains(&format!("Usage: utcp {cmd}")), "{cmd} {flag}: {out}");
            assert!(err.is_empty(), "{cmd} {flag} wrote to stderr (started the work?): {err}");
            // What the work would print: sim's result, bench's progress, script's summary,
            // demo's namespace, serve's ready line.
            for work in ["result: ", "bench: ", " passed, ", ": kernel 10.77.0.1/24", "utcp serve: "] {
                assert!(!out.contains(work), "{cmd} {flag} did the work: {out}");
            }
        }
        let o = utcp(&["help", cmd]);
        assert_eq!(o.status.code(), Some(0), "help {cmd}: {o:?}");
        assert!(text(&o.stdout).contains(&format!("Usage: utcp {cmd}")), "{o:?}");
    }
    // The top-level help lists every subcommand.
    let o = utcp(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    for cmd in SUBCOMMANDS {
        assert!(text(&o.stdout).contains(cmd), "{cmd} missing from {}", text(&o.stdout));
    }
}

/// TUN offload (issue 12): every command that opens a TUN can turn it off to compare.
#[test]
fn tun_commands_take_no_offload() {
    for cmd in ["serve", "connect", "demo", "bench"] {
        let o = utcp(&[cmd, "--help"]);
        assert!(text(&o.stdout).contains("--no-offload"), "{cmd}: {}", text(&o.stdout));
    }
}

#[track_caller]
fn assert_usage_error(args: &[&str], needle: &str) {
    let o = utcp(args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: stdout {} stderr {err}", text(&o.stdout));
    assert!(err.contains("error:") && err.contains(needle), "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?} wrote to stdout: {}", text(&o.stdout));
}

#[test]
fn unknown_flags_exit_2_with_a_message() {
    for cmd in SUBCOMMANDS {
        assert_usage_error(&[cmd, "--no-such-flag"], "--no-such-flag");
    }
    assert_usage_error(&["no-such-command"], "no-such-command");
    // No command: the help, on stderr, as a usage error.
    let o = utcp(&[]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(o.stdout.is_empty() && text(&o.stderr).contains("Usage: utcp <COMMAND>"), "{o:?}");
}

#[test]
fn bad_values_and_repeated_flags_exit_2() {
    assert_usage_error(&["sim", "--seed", "1", "--seed", "2"], "cannot be used multiple times");
    assert_usage_error(&["sim", "--trace", "--trace"], "cannot be used multiple times");
    assert_usage_error(&["sim", "--loss", "1.5"], "--loss");
    assert_usage_error(&["sim", "--close", "sideways"], "--close");
    assert_usage_error(&["sim", "extra"], "extra");
    assert_usage_error(&["bench", "--only", "nope"], "unknown workload");
    assert_usage_error(&["bench", "--systems", "kernel,bsd"], "unknown system");
    assert_usage_error(&["bench", "--duration", "0"], "--duration");
    assert_usage_error(&["bench", "--scale", "2m"], "--scale");
    assert_usage_error(&["bench", "--engine", "--scale", "10"], "cannot be used with");
    assert_usage_error(&["script"], "PATH");
    assert_usage_error(&["script", "--profile", "macos", "x.pkt"], "linux");
    assert_usage_error(&["script", "/no/such/dir"], "no such file");
    assert_usage_error(&["serve"], "--echo");
    assert_usage_error(&["serve", "--echo", "--discard"], "cannot be used with");
    assert_usage_error(&["serve", "--echo", "--port", "70000"], "--port");
    // Found after parsing, before any namespace is touched: still a usage error.
    assert_usage_error(&["serve", "--echo", "--addr", "10.77.0.1"], "must differ");
    assert_usage_error(&["serve", "--http", "/no/such/dir"], "not a directory");
    assert_usage_error(&["connect"], "HOST:PORT");
    assert_usage_error(&["connect", "10.77.0.1:7", "--peer", "10.77.0.1/31"], "--peer");
    assert_usage_error(&["demo", "--bulk", "lots"], "--bulk");
    assert_usage_error(&["demo", "--http-size", "2G"], "more than 1G");
}

#[test]
fn script_json_lines_parse_and_keep_their_fields() {
    let dir = scripts_dir();
    let o = utcp(&["script", "--json", dir.to_str().expect("utf-8 path")]);
    assert!(o.status.code().is_some(), "{o:?}");
    let out = text(&o.stdout);
    let mut n = 0;
    for line in out.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for key in ["script", "verdict", "line", "reason", "notes"] {
            assert!(v.get(key).is_some(), "{key} missing: {line}");
        }
        let pass = v["verdict"] == "PASS";
        assert_eq!(v["line"].is_null(), pass, "{line}");
        assert!(v["notes"].is_array(), "{line}");
        n += 1;
    }
    assert!(n > 0, "no JSON lines: {out}");
    let last = out.lines().last().unwrap_or("");
    assert!(last.contains(" passed, ") && last.contains(" failed"), "closing line: {last}");
}

#[test]
fn bench_engine_json_parses() {
    let o = utcp(&["bench", "--engine", "--segments", "200", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).expect("one JSON object");
    assert_eq!(v["segments"], 200);
    assert!(v["packets_a_to_b"].as_u64().is_some_and(|p| p >= 200), "{v}");
}

/// `--engine --systems utcp,smoltcp`: both in-memory runs, utcp first; the kernel is refused.
#[test]
fn bench_engine_runs_smoltcp_beside_utcp() {
    let o = utcp(&["bench", "--engine", "--systems", "smoltcp,utcp", "--segments", "200", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).expect("one JSON object");
    let runs = v["runs"].as_array().expect("runs");
    let systems: Vec<_> = runs.iter().map(|r| r["system"].as_str().unwrap_or("")).collect();
    assert_eq!(systems, ["utcp", "smoltcp"], "{v}");
    for r in runs {
        assert_eq!(r["segments"], 200, "{r}");
        assert_eq!(r["payload"], 1448, "{r}");
        assert!(r["packets_a_to_b"].as_u64().is_some_and(|p| p >= 200), "{r}");
    }
    let o = utcp(&["bench", "--engine", "--systems", "kernel", "--segments", "10"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(text(&o.stderr).contains("not kernel"), "{o:?}");
}

/// `utcp script ... | head`: the reader goes away; the command exits quietly, no panic.
#[test]
fn closed_stdout_is_not_a_panic() {
    let dir = scripts_dir();
    let dir = dir.to_str().expect("utf-8 path");
    for args in [&["script", dir][..], &["script", "--json", dir][..], &["sim", "--bytes", "20K"][..]] {
        let mut child = start(args);
        drop(child.stdout.take()); // the reader is gone before the first line
        let o = wait_bounded(child, args);
        let err = text(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// `bench --only forward` is a known workload, and without root it exits 77 with the reason
/// and does no work (as root the test drops to uid/gid 65534 with `setpriv`).
#[test]
fn bench_only_forward_without_root_exits_77() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let bin = env!("CARGO_BIN_EXE_utcp");
    let args = ["bench", "--only", "forward", "--quick"];
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
        c
    } else {
        Command::new(bin)
    };
    let child = cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let out = wait_bounded(child.expect("spawn utcp (as root: needs setpriv from util-linux)"), &args);
    assert_eq!(out.status.code(), Some(77), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("needs root"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}
