//! The long run of the live-connection fuzzer (not part of the test command):
//!
//! ```text
//! cargo run --release -p utcp-tools --example fuzz_live -- 100000000 [seed] [structured-inputs]
//! ```
//!
//! Exits non-zero, with the reason, when a shielded connection did not survive or no
//! longer delivers byte-exact, or a packet went unaccounted; an engine panic aborts.

use utcp_tools::fuzz::{LiveFuzz, run_live, run_structured};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args().nth(i).map_or(default, |a| a.replace('_', "").parse().expect("a number"))
}

fn main() {
    let cfg = LiveFuzz { packets: arg(1, 100_000_000), seed: arg(2, 0xF022), conns: 8 };
    let t = std::time::Instant::now();
    match run_live(&cfg) {
        Ok(r) => println!("live: {r:#?}\n({:.1} s)", t.elapsed().as_secs_f64()),
        Err(e) => {
            eprintln!("fuzz_live FAILED (seed {:#x}): {e}", cfg.seed);
            std::process::exit(1);
        }
    }
    let inputs = arg(3, 1_000_000);
    let t = std::time::Instant::now();
    match run_structured(inputs, cfg.seed) {
        Ok(r) => println!("structured: {r:#?}\n({:.1} s)", t.elapsed().as_secs_f64()),
        Err(e) => {
            eprintln!("structured fuzz FAILED (seed {:#x}): {e}", cfg.seed);
            std::process::exit(1);
        }
    }
}
