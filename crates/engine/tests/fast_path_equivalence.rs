//! Header prediction (tcb/fast_path.rs) is invisible: the same random scenario run through
//! two pairs of stacks, one with `Config::fast_path` off, gives byte-identical segments,
//! identical events, identical STATUS and identical counters (except `fast_path_segs`, the
//! fast path's own diagnostic). The scenarios mix in-order data both ways, pure ACKs,
//! reordering, loss, duplicates (SACK and D-SACK), a slow reader (window changes down to
//! zero), timers, and the common option sets.

use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utcp_engine::time::{Duration, Instant};
use utcp_engine::{ConnId, Counters, Stack};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

#[derive(Clone, Copy, Debug)]
enum Op {
    /// The application of side `.0` writes up to `.1` bytes.
    Send(usize, usize),
    /// The application of side `.0` reads up to `.1` bytes.
    Recv(usize, usize),
    /// Side `.0` transmits everything it has onto its wire.
    Poll(usize),
    /// The packet at index `.1` (mod length) of side `.0`'s wire is delivered.
    Deliver(usize, usize),
    /// ... is lost.
    Drop(usize, usize),
    /// ... is delivered and stays on the wire (a duplicate later).
    Dup(usize, usize),
    /// Side `.0`'s wire is delivered in order.
    Flush(usize),
    /// Time passes; both stacks run their timers.
    Tick(u64),
    /// The application of side `.0` shuts down writing (FIN) or, `.1`, reading.
    Shutdown(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let side = 0usize..2;
    prop_oneof![
        12 => (side.clone(), 1usize..20_000).prop_map(|(s, n)| Op::Send(s, n)),
        9 => (side.clone(), 0usize..40_000).prop_map(|(s, n)| Op::Recv(s, n)),
        12 => side.clone().prop_map(Op::Poll),
        12 => (side.clone(), 0usize..64).prop_map(|(s, i)| Op::Deliver(s, i)),
        3 => (side.clone(), 0usize..64).prop_map(|(s, i)| Op::Drop(s, i)),
        3 => (side.clone(), 0usize..64).prop_map(|(s, i)| Op::Dup(s, i)),
        18 => side.clone().prop_map(Op::Flush),
        6 => (0u64..400).prop_map(Op::Tick),
        1 => (side.clone(), proptest::bool::weighted(0.3)).prop_map(|(s, r)| Op::Shutdown(s, r)),
    ]
}

/// Configuration variants: defaults, no SACK, no timestamps, no delayed ACK, small
/// buffers (window changes, zero windows), no window scaling.
fn config(variant: u8, seed: u64, fast: bool) -> utcp_engine::Config {
    let mut c = utcp_engine::Config::deterministic(seed);
    match variant % 6 {
        1 => c.sack = false,
        2 => c.timestamps = false,
        3 => c.delayed_ack = None,
        4 => {
            c.send_buffer = 8 * 1024;
            c.recv_buffer = 6 * 1024;
        }
        5 => {
            c.window_scale = false;
            c.sack = false;
            c.timestamps = false;
        }
        _ => {}
    }
    c.fast_path = fast;
    c
}

/// Everything observable from outside: every packet out, every event, STATUS after every
/// step, and the final counters.
#[derive(Default, PartialEq, Debug)]
struct Trace {
    log: Vec<String>,
    counters: [String; 2],
}

struct World {
    st: [Stack; 2],
    conn: [ConnId; 2],
    wire: [Vec<Vec<u8>>; 2],
    now: Instant,
    trace: Trace,
    fast_segs: u64,
}

fn counters_but_fast_path(c: &Counters) -> (String, u64) {
    let mut c = c.clone();
    let n = std::mem::take(&mut c.fast_path_segs);
    (format!("{c:?}"), n)
}

impl World {
    fn new(variant: u8, fast: bool) -> World {
        let mut a = Stack::new(config(variant, 1, fast));
        a.add_local_addr(A);
        let mut b = Stack::new(config(variant, 2, fast));
        b.add_local_addr(B);
        let now = Instant::from_millis(1);
        let l = b.listen(SocketAddr::new(B, 80), 4).unwrap();
        let c = a.connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 80)).unwrap();
        let mut w = World {
            st: [a, b],
            conn: [c, c],
            wire: [vec![], vec![]],
            now,
            trace: Trace::default(),
            fast_segs: 0,
        };
        // Handshake without impairment.
        for _ in 0..4 {
            w.poll(0);
            w.flush(0);
            w.poll(1);
            w.flush(1);
        }
        w.conn[1] = w.st[1].accept(l).expect("handshake completes").0;
        w
    }

    fn poll(&mut self, s: usize) {
        let mut buf = vec![0u8; 65536];
        for _ in 0..10_000 {
            let Some(n) = self.st[s].poll_transmit(self.now, &mut buf) else { break };
            self.trace.log.push(format!("{s}> {:02x?}", &buf[..n]));
            self.wire[s].push(buf[..n].to_vec());
        }
    }

    fn deliver(&mut self, s: usize, p: Vec<u8>) {
        self.st[1 - s].handle_packet(self.now, &p);
    }

    fn flush(&mut self, s: usize) {
        for p in std::mem::take(&mut self.wire[s]) {
            self.deliver(s, p);
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Send(s, n) => {
                let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
                let r = self.st[s].send(self.conn[s], &data);
                self.trace.log.push(format!("send {s} {r:?}"));
            }
            Op::Recv(s, n) => {
                let mut buf = vec![0u8; n];
                let r = self.st[s].recv(self.conn[s], &mut buf);
                let got = r.as_ref().map(|&k| buf[..k].iter().map(|&b| b as u64).sum::<u64>());
                self.trace.log.push(format!("recv {s} {r:?} {got:?}"));
            }
            Op::Poll(s) => self.poll(s),
            Op::Deliver(s, i) | Op::Drop(s, i) | Op::Dup(s, i) if !self.wire[s].is_empty() => {
                let i = i % self.wire[s].len();
                let p = match op {
                    Op::Dup(..) => self.wire[s][i].clone(),
                    _ => self.wire[s].remove(i),
                };
                if !matches!(op, Op::Drop(..)) {
                    self.deliver(s, p);
                }
            }
            Op::Deliver(..) | Op::Drop(..) | Op::Dup(..) => {}
            Op::Flush(s) => self.flush(s),
            Op::Shutdown(s, read) => {
                let how = if read { std::net::Shutdown::Read } else { std::net::Shutdown::Write };
                let r = self.st[s].shutdown(self.conn[s], how).map_err(|e| e.kind());
                self.trace.log.push(format!("shutdown {s} {how:?} {r:?}"));
            }
            Op::Tick(ms) => {
                self.now += Duration::from_millis(ms);
                for st in &mut self.st {
                    st.handle_timeout(self.now);
                }
            }
        }
        self.observe();
    }

    fn observe(&mut self) {
        for s in 0..2 {
            while let Some(e) = self.st[s].poll_event() {
                self.trace.log.push(format!("event {s} {e:?}"));
            }
            let status = self.st[s].status(self.conn[s]).map(|x| format!("{x:?}")).map_err(|e| e.kind());
            self.trace.log.push(format!("status {s} {status:?} {:?}", self.st[s].poll_timeout()));
        }
    }

    fn finish(mut self) -> (Trace, u64) {
        for s in 0..2 {
            let (c, n) = counters_but_fast_path(self.st[s].counters());
            self.trace.counters[s] = c;
            self.fast_segs += n;
        }
        (self.trace, self.fast_segs)
    }
}

fn run(variant: u8, ops: &[Op], fast: bool) -> (Trace, u64) {
    let mut w = World::new(variant, fast);
    for &op in ops {
        w.apply(op);
    }
    // Let the connection settle: everything delivered, timers run.
    for _ in 0..50 {
        w.apply(Op::Poll(0));
        w.apply(Op::Flush(0));
        w.apply(Op::Poll(1));
        w.apply(Op::Flush(1));
        w.apply(Op::Recv(0, 1 << 20));
        w.apply(Op::Recv(1, 1 << 20));
        w.apply(Op::Tick(50));
    }
    w.finish()
}

fn assert_same(variant: u8, ops: &[Op]) -> u64 {
    let (slow, slow_hits) = run(variant, ops, false);
    let (fast, fast_hits) = run(variant, ops, true);
    assert_eq!(slow_hits, 0, "the fast path ran with Config::fast_path off");
    for (i, (x, y)) in slow.log.iter().zip(&fast.log).enumerate() {
        assert_eq!(x, y, "first difference at trace line {i} (variant {variant})");
    }
    assert_eq!(slow, fast);
    fast_hits
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_is_equivalent(variant in 0u8..6, ops in proptest::collection::vec(op(), 1..300)) {
        assert_same(variant, &ops);
    }
}

/// A bulk transfer each way, in order: the fast path takes most segments (so the
/// property above compares something), and still changes nothing.
#[test]
fn bulk_transfer_takes_the_fast_path() {
    for variant in 0..6 {
        let mut ops = Vec::new();
        for i in 0..200 {
            ops.extend([Op::Send(i % 2, 9000), Op::Poll(i % 2), Op::Flush(i % 2), Op::Poll(1 - i % 2)]);
            ops.extend([Op::Flush(1 - i % 2), Op::Recv(1 - i % 2, 1 << 20)]);
            if i % 7 == 0 {
                ops.push(Op::Tick(45));
            }
        }
        let hits = assert_same(variant, &ops);
        assert!(hits > 300, "variant {variant}: only {hits} segments took the fast path");
    }
}

/// Reordering and loss in the middle of a transfer (SACK recovery, RACK, TLP, D-SACK),
/// then in-order data again: identical either way.
#[test]
fn loss_and_reordering_then_in_order() {
    for variant in 0..6 {
        let mut ops = Vec::new();
        for i in 0..120 {
            ops.extend([Op::Send(0, 12_000), Op::Poll(0)]);
            match i % 10 {
                3 => ops.extend([Op::Drop(0, 1), Op::Deliver(0, 2)]),
                5 => ops.extend([Op::Dup(0, 0), Op::Deliver(0, 3), Op::Deliver(0, 1)]),
                7 => ops.push(Op::Tick(300)),
                _ => {}
            }
            ops.extend([Op::Flush(0), Op::Poll(1), Op::Flush(1), Op::Recv(1, 30_000), Op::Tick(5)]);
        }
        assert!(assert_same(variant, &ops) > 100, "variant {variant}");
    }
}

/// A FIN that arrives ahead of the data before it (held as `fin_seq_rcvd`), then that
/// data in order: the data must also take the FIN (RFC 9293 §3.10.7.4 eighth step), so it
/// is not predicted.
#[test]
fn fin_ahead_of_a_hole_then_the_data() {
    for variant in 0..6 {
        let ops = [
            Op::Send(0, 1000),
            Op::Poll(0),
            Op::Shutdown(0, false),
            Op::Poll(0),
            Op::Deliver(0, 1),
            Op::Deliver(0, 0),
            Op::Poll(1),
            Op::Flush(1),
        ];
        assert_same(variant, &ops);
    }
}
