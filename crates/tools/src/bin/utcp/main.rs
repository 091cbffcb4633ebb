//! The `utcp` command line: demo, serve, connect, forward, sim, script, bench, plot (clap 4,
//! derive).
//!
//! Exit status: 0 on success, 1 when the work failed, 2 on usage errors (clap's), 77 when
//! `bench` needs root, 130 after SIGINT/SIGTERM (`connect`, `bench`, or a second signal).

mod bench;
mod connect;
mod demo;
mod forward;
mod parsers;
mod plot;
mod script;
mod serve;
mod signals;
mod sim;

use clap::{CommandFactory, Parser, Subcommand};
use std::io;

/// Counts allocations only while `utcp bench --scale` measures (one relaxed load otherwise).
#[global_allocator]
static ALLOC: utcp_tools::bench::alloc::Counting = utcp_tools::bench::alloc::Counting;

/// utcp: a user-space TCP/IP stack on a Linux TUN device.
#[derive(Parser, Debug)]
#[command(name = "utcp", version, propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Demo(demo::DemoArgs),
    Serve(serve::ServeArgs),
    Connect(connect::ConnectArgs),
    Sim(sim::SimArgs),
    Script(script::ScriptArgs),
    Bench(bench::BenchArgs),
    Plot(plot::PlotArgs),
    Forward(forward::ForwardArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Connect(a) => connect::run(a),
        Command::Sim(a) => sim::run(a),
        Command::Script(a) => script::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Plot(a) => plot::run_cli(a),
        Command::Forward(a) => forward::run_cli(a),
    };
    std::process::exit(code);
}

/// A usage error found after parsing (flags that contradict each other): clap's format on
/// stderr, exit status 2, as for the errors clap finds itself.
pub fn usage_error(subcommand: &str, msg: impl std::fmt::Display) -> ! {
    let mut cli = Cli::command();
    cli.build(); // gives the subcommand its full name, `utcp serve`
    let mut cmd = cli.find_subcommand(subcommand).cloned().unwrap_or(cli);
    cmd.error(clap::error::ErrorKind::ArgumentConflict, msg).exit()
}

/// The exit status of a command that prints its results: a closed stdout (`utcp script |
/// head`) ends it quietly with 0, any other write error is reported with status 1.
pub fn output_status(cmd: &str, r: io::Result<i32>) -> i32 {
    match r {
        Ok(code) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("utcp {cmd}: writing the output: {e}");
            1
        }
    }
}
