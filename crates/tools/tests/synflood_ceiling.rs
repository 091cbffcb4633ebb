//! Root smoke test of `utcp bench --synflood-ceiling` (issue 9): a 1 s flood per device
//! path into a TUN answered by the null reflector, inside a namespace the bench creates.
//! Only the accounting is asserted (no rates: timing is never a test assertion).

use std::time::Duration;
use utcp_tools::bench::synflood_ceiling::{CeilingOptions, Path, UringOptions, run, table};
use utcp_tools::netns::assert_root;

#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn every_path_reads_answers_and_accounts_for_the_flood() {
    assert_root("every_path_reads_answers_and_accounts_for_the_flood");
    let opts = CeilingOptions {
        flood: Duration::from_secs(1),
        paths: vec![Path::ReadWrite, Path::Uring, Path::UringMultishot, Path::Sink, Path::ReadWrite2],
        tx_queue_len: Some(10_000),
        uring: UringOptions { depth: 16 },
    };
    let results = run(&opts, false).expect("ceiling bench runs");
    assert_eq!(results.len(), 5, "{}", table(&results, &opts));
    for r in &results {
        let c = &r.counts;
        let t = table(&results, &opts);
        assert!(r.syns_sent > 0 && c.read > 0, "{:?} read nothing: {t}", r.path);
        // Every SYN sent was either read or dropped at the TUN (a few packets of the
        // namespace's own, e.g. IPv6 router solicitations, may be read too).
        assert!(c.read + r.tun_drops <= r.syns_sent + 64, "{:?} read more than was sent: {t}", r.path);
        assert!(c.answered + c.write_errors <= c.read, "{:?}: {t}", r.path);
        if r.path == Path::Sink {
            assert_eq!(c.answered, 0, "the sink answers nothing: {t}");
        } else {
            // Spoofed SYNs are all IPv4/TCP: each one read is answered (the kernel takes
            // a well-formed 50-byte write whatever it then does with it).
            assert!(c.answered + 64 >= c.read, "{:?} left SYNs unanswered: {t}", r.path);
        }
        assert!(c.cpu_ns > 0 && c.syscalls > 0, "{:?}: {t}", r.path);
    }
}
