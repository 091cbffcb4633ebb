//! Decides which privileged or corpus-dependent tests this build runs, so that a test
//! that cannot run shows as `ignored` in `cargo test` output instead of passing.
//!
//! - `cfg(utcp_root_tests)`: tests that need root and `/dev/net/tun` (network
//!   namespaces, TUN devices, veth). Set when `CI=true`, or when the build runs as
//!   root and `/dev/net/tun` exists.
//! - `cfg(utcp_corpus_tests)`: tests that need the FreeBSD tcp-testsuite corpus
//!   (`UTCP_TCP_TESTSUITE`, or `shared/tcp-testsuite` beside the repository). Set when
//!   `CI=true`, or when the corpus is found.
//!
//! - `cfg(utcp_tool_tests)`: tests that need `tshark` and `tcpdump`. Set when `CI=true`,
//!   or when both are on `PATH`.
//!
//! Under `CI=true` all are set whatever the machine has, and the tests assert their
//! preconditions, so CI fails instead of skipping. The decision is remade when `CI`,
//! `UTCP_TCP_TESTSUITE` or `USER` changes (e.g. `runuser -u nobody`), or this file does.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(utcp_root_tests)");
    println!("cargo::rustc-check-cfg=cfg(utcp_corpus_tests)");
    println!("cargo::rustc-check-cfg=cfg(utcp_tool_tests)");
    for var in ["CI", "UTCP_TCP_TESTSUITE", "USER", "PATH"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rerun-if-changed=build.rs");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if ci || (effective_uid() == Some(0) && Path::new("/dev/net/tun").exists()) {
        println!("cargo::rustc-cfg=utcp_root_tests");
    }
    let corpus = corpus_dir();
    if let Some(dir) = &corpus {
        println!("cargo::rerun-if-changed={}", dir.display());
    }
    if ci || corpus.is_some() {
        println!("cargo::rustc-cfg=utcp_corpus_tests");
    }
    // tshark and tcpdump read and write the captures some tests check (.ci/run installs both).
    if ci || (on_path("tshark") && on_path("tcpdump")) {
        println!("cargo::rustc-cfg=utcp_tool_tests");
    }
}

/// `prog` is an executable file in a directory of `PATH`.
fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

/// The effective uid of the build, from `/proc/self/status` (`Uid: real effective ...`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Where `tests/conformance.rs` looks for the corpus (keep the two in step).
fn corpus_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("UTCP_TCP_TESTSUITE") {
        return Some(PathBuf::from(d)).filter(|p| p.is_dir());
    }
    let m = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").ok()?);
    [m.join("../../../shared/tcp-testsuite"), m.join("../../../../shared/tcp-testsuite")]
        .into_iter()
        .find(|p| p.is_dir())
}
