//! The `utcp` command line: demo, serve, connect, sim, script, bench.

mod args;
mod bench;
mod connect;
mod demo;
mod plot;
mod script;
mod serve;
mod sim;

/// Counts allocations only while `utcp bench --scale` measures (one relaxed load otherwise).
#[global_allocator]
static ALLOC: utcp_tools::bench::alloc::Counting = utcp_tools::bench::alloc::Counting;

const USAGE: &str = "\
utcp: a user-space TCP/IP stack on a Linux TUN device

usage: utcp <command> [options]

commands:
  demo      run the stack in a private namespace against the kernel's clients (root)
  serve     serve echo/discard/http on the stack (root)
  connect   netcat-like client on the stack (root)
  sim       two engines over an impaired in-memory link (no root)
  script    run packetdrill scripts against the engine (no root)
  bench     compare utcp with the kernel and smoltcp (root)
  plot      time-sequence graph of a connection in a pcap (no root)
";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first() else {
        eprint!("{USAGE}");
        std::process::exit(2);
    };
    let rest = &argv[1..];
    let code = match cmd.as_str() {
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            0
        }
        "demo" => demo::run(rest),
        "serve" => serve::run(rest),
        "connect" => connect::run(rest),
        "script" => script::run(rest),
        "bench" => bench::run(rest),
        "sim" => sim::run_cli(rest),
        "plot" => plot::run_cli(rest),
        other => {
            eprintln!("utcp: unknown command {other:?}\n\n{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
