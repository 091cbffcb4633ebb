//! `utcp script [--profile NAME] [--json] [--verbose] PATH...`: run packetdrill scripts
//! against the engine on virtual time (no root, no network).

use crate::args::Args;
use std::path::PathBuf;
use utcp_tools::script::{self, Profile};

const USAGE: &str = "\
usage: utcp script [--profile utcp|freebsd] [--define NAME]... [--json] [--verbose] PATH...

Runs each packetdrill script (a file, or every *.pkt under a directory) against a fresh
utcp stack on a virtual clock. Local address 192.168.0.1, remote 192.0.2.1.
  --profile NAME   engine settings: utcp (Config::default(), the default) or freebsd
  --define NAME    names defined for #ifdef in scripts, instead of the profile's own
                   (utcp: STANDARD; freebsd: FreeBSD); may be repeated
  --json           one JSON object per line per script instead of the table
                   (the closing summary line follows them)
  --verbose        print notes and the packet trace of every script
  --explain        with --verbose: the rule that sent each segment utcp sends
Exit status: 0 if no script failed, 1 otherwise, 2 on usage errors.
";

/// Entry point; returns the process exit code.
pub fn run(argv: &[String]) -> i32 {
    let args = match Args::parse(argv, &["profile", "define"]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("utcp script: {e}\n\n{USAGE}");
            return 2;
        }
    };
    if args.has("help") || argv.iter().any(|a| a == "-h") {
        print!("{USAGE}");
        return 0;
    }
    if let Err(e) = args.check_switches(&["json", "verbose", "explain", "help"]) {
        eprintln!("utcp script: {e}\n\n{USAGE}");
        return 2;
    }
    let name = args.get("profile").unwrap_or("utcp");
    let Some(mut profile) = Profile::by_name(name) else {
        eprintln!(
            "utcp script: unknown profile {name:?} (known: {})",
            script::profile::PROFILE_NAMES.join(", ")
        );
        return 2;
    };
    if let Some(defs) = args.flags.get("define") {
        // Replace the profile's names (e.g. `--define STANDARD` runs the RFC branches of
        // FreeBSD scripts). Profiles hold &'static str; these live for the process anyway.
        profile.defines = defs.iter().map(|d| &*Box::leak(d.clone().into_boxed_str())).collect();
    }
    if args.positional.is_empty() {
        eprintln!("utcp script: no script given\n\n{USAGE}");
        return 2;
    }
    let paths: Vec<PathBuf> = args.positional.iter().map(PathBuf::from).collect();
    let files = match script::collect_scripts(&paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("utcp script: {e}");
            return 2;
        }
    };
    let json = args.has("json");
    let verbose = args.has("verbose");
    profile.explain = args.has("explain");
    let mut reports = Vec::with_capacity(files.len());
    for f in &files {
        let r = script::run_file(f, &profile, verbose);
        if json {
            println!("{}", script::to_json(&r));
        } else if verbose {
            println!("== {} {}", r.verdict.label(), f.display());
            if let script::Verdict::Fail { reason, .. } | script::Verdict::Error { reason, .. } = &r.verdict {
                println!("   {}", r.verdict.reason());
                for extra in reason.lines().skip(1) {
                    println!("   {extra}");
                }
            }
            for n in &r.notes {
                println!("   note: {n}");
            }
            for t in &r.trace {
                println!("   {t}");
            }
        }
        reports.push(r);
    }
    if !json {
        print!("{}", script::table(&reports));
    }
    // The closing line, also after JSON objects (it is not JSON: skip it when parsing).
    println!("{}", script::summary_line(&reports));
    let failed = reports
        .iter()
        .any(|r| matches!(r.verdict, script::Verdict::Fail { .. } | script::Verdict::Error { .. }));
    i32::from(failed)
}
