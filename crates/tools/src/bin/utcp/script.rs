//! `utcp script [--profile NAME] [--json] [--verbose] PATH...`: run packetdrill scripts
//! against the engine on virtual time (no root, no network).

use clap::Args;
use std::io::{self, Write};
use std::path::PathBuf;
use utcp_tools::script::{self, Profile, ScriptReport, Verdict};

/// Run packetdrill scripts against the engine on a virtual clock (no root)
///
/// Runs each script (a file, or every *.pkt under a directory) against a fresh utcp stack.
/// Local address 192.168.0.1, remote 192.0.2.1 (the linux profile: the settings of Linux
/// packetdrill harnesses). Exit status: 0 if no script failed, 1
/// otherwise, 2 on usage errors.
#[derive(Args, Debug)]
pub struct ScriptArgs {
    /// Engine settings: utcp (Config::default()), freebsd or linux
    #[arg(long, value_name = "NAME", default_value = "utcp",
          value_parser = clap::builder::PossibleValuesParser::new(script::profile::PROFILE_NAMES))]
    profile: String,
    /// A name defined for #ifdef in scripts, instead of the profile's own (utcp: STANDARD;
    /// freebsd: FreeBSD; linux: Linux); may be repeated
    #[arg(long, value_name = "NAME")]
    define: Vec<String>,
    /// One JSON object per line per script instead of the table (the closing summary line
    /// follows them)
    #[arg(long)]
    json: bool,
    /// Print notes and the packet trace of every script
    #[arg(long)]
    verbose: bool,
    /// With --verbose: the rule that sent each segment utcp sends
    #[arg(long)]
    explain: bool,
    /// Script files or directories
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
}

/// Entry point; returns the process exit code.
pub fn run(args: ScriptArgs) -> i32 {
    let Some(mut profile) = Profile::by_name(&args.profile) else {
        crate::usage_error("script", format!("unknown profile {:?}", args.profile));
    };
    profile.explain = args.explain;
    if !args.define.is_empty() {
        // Replace the profile's names (e.g. `--define STANDARD` runs the RFC branches of
        // FreeBSD scripts). Profiles hold &'static str; these live for the process anyway.
        profile.defines = args.define.iter().map(|d| &*Box::leak(d.clone().into_boxed_str())).collect();
    }
    let files = match script::collect_scripts(&args.paths) {
        Ok(f) => f,
        Err(e) => crate::usage_error("script", e),
    };
    crate::output_status("script", run_files(&args, &files, &profile))
}

fn run_files(args: &ScriptArgs, files: &[PathBuf], profile: &Profile) -> io::Result<i32> {
    let mut out = io::stdout().lock();
    let mut reports = Vec::with_capacity(files.len());
    for f in files {
        let r = script::run_file(f, profile, args.verbose);
        if args.json {
            writeln!(out, "{}", script::to_json(&r))?;
        } else if args.verbose {
            print_verbose(&mut out, &r)?;
        }
        reports.push(r);
    }
    if !args.json {
        write!(out, "{}", script::table(&reports))?;
    }
    // The closing line, also after JSON objects (it is not JSON: skip it when parsing).
    writeln!(out, "{}", script::summary_line(&reports))?;
    out.flush()?;
    let failed = reports.iter().any(|r| matches!(r.verdict, Verdict::Fail { .. } | Verdict::Error { .. }));
    Ok(i32::from(failed))
}

fn print_verbose(out: &mut impl Write, r: &ScriptReport) -> io::Result<()> {
    writeln!(out, "== {} {}", r.verdict.label(), r.path.display())?;
    if let Verdict::Fail { reason, .. } | Verdict::Error { reason, .. } = &r.verdict {
        writeln!(out, "   {}", r.verdict.reason())?;
        for extra in reason.lines().skip(1) {
            writeln!(out, "   {extra}")?;
        }
    }
    for n in &r.notes {
        writeln!(out, "   note: {n}")?;
    }
    for t in &r.trace {
        writeln!(out, "   {t}")?;
    }
    Ok(())
}
