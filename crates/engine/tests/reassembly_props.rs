//! Property tests for `RecvBuffer` out-of-order reassembly (RFC 9293 §3.10.7.4, RFC 2018).
//!
//! A random byte stream is cut into random segments (a covering partition plus random
//! overlapping extras), delivered in a random order with duplicates, trimmed the way the
//! TCB trims text that lies before RCV.NXT, and the bytes read back must equal the stream.

use proptest::prelude::*;
use utcp_engine::tcb::reassembly::RecvBuffer;

/// Small deterministic PRNG (xorshift64*) driven by a proptest seed, for delivery order
/// and reader behaviour.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Segments `[start, end)` of a stream of `total` bytes: a partition with sizes cycling
/// through `cuts` (so every byte is covered), plus `extras` (overlaps and duplicates).
fn segments(total: usize, cuts: &[usize], extras: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut segs = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < total {
        let end = (pos + cuts[k % cuts.len()]).min(total);
        segs.push((pos, end));
        pos = end;
        k += 1;
    }
    for &(s, l) in extras {
        let s = s % total;
        segs.push((s, (s + l).min(total)));
    }
    segs
}

/// Random permutation of the segments followed by random duplicates, interleaved.
fn delivery_order(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let dups = rng.below(n + 1);
    for _ in 0..dups {
        order.push(rng.below(n));
    }
    for i in (1..order.len()).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    order
}

/// Check the structural invariants after every operation.
fn check_invariants(rb: &RecvBuffer) -> Result<(), TestCaseError> {
    prop_assert_eq!(rb.window(), rb.capacity() - rb.readable());
    let ranges: Vec<(usize, usize)> = rb.ooo_ranges().collect();
    prop_assert!(ranges.len() <= rb.max_ranges());
    let mut prev_end = 0usize;
    let mut held = 0usize;
    for (i, &(s, e)) in ranges.iter().enumerate() {
        prop_assert!(s < e, "empty range {:?}", (s, e));
        // Sorted, disjoint and non-adjacent; the first one leaves a hole at RCV.NXT.
        if i == 0 {
            prop_assert!(s > 0, "held range starts at RCV.NXT: {:?}", ranges);
        } else {
            prop_assert!(s > prev_end, "ranges overlap or touch: {:?}", ranges);
        }
        prop_assert!(e <= rb.window(), "range beyond window: {:?}", ranges);
        prev_end = e;
        held += e - s;
    }
    prop_assert_eq!(rb.ooo_bytes(), held);
    Ok(())
}

/// Deliver segment `[s, e)` of `data` to `rb`, given RCV.NXT as stream position `nxt`,
/// trimming text before RCV.NXT as the TCB does (RFC 9293 §3.10.7.4). Returns the advance.
fn deliver(rb: &mut RecvBuffer, data: &[u8], nxt: usize, s: usize, e: usize) -> usize {
    if e <= nxt {
        return 0; // entirely old: a duplicate the TCB only ACKs
    }
    let s2 = s.max(nxt);
    let adv = rb.write(s2 - nxt, &data[s2..e]);
    // Only text starting at RCV.NXT can advance it.
    assert!(s2 == nxt || adv == 0, "out-of-order write advanced RCV.NXT");
    adv
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..3000)
}
fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..300, 1..40)
}
fn extras() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((any::<usize>(), 1usize..400), 0..20)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Capacity at least the stream length: everything fits; only the range bound can
    /// refuse data, and the sender's retransmission from SND.UNA repairs that.
    #[test]
    fn reassembles_with_large_capacity(
        data in stream(), cuts in cuts(), extras in extras(),
        extra_cap in 0usize..500, max_ranges in 0usize..12, seed in any::<u64>(),
    ) {
        let total = data.len();
        let mut rng = Rng::new(seed);
        let segs = segments(total, &cuts, &extras);
        let order = delivery_order(segs.len(), &mut rng);
        let mut rb = RecvBuffer::with_limits(total + extra_cap, max_ranges);
        let mut nxt = 0usize;
        for &i in &order {
            let (s, e) = segs[i];
            let adv = deliver(&mut rb, &data, nxt, s, e);
            nxt += adv;
            prop_assert_eq!(rb.readable(), nxt);
            check_invariants(&rb)?;
        }
        // Retransmission of whichever partition segment holds RCV.NXT (RFC 9293 §3.8.1).
        let mut rounds = 0;
        while nxt < total {
            rounds += 1;
            prop_assert!(rounds <= segs.len(), "no progress");
            let &(s, e) = segs.iter().find(|&&(s, e)| s <= nxt && nxt < e).unwrap();
            let adv = deliver(&mut rb, &data, nxt, s, e);
            prop_assert!(adv > 0);
            nxt += adv;
            check_invariants(&rb)?;
        }
        prop_assert_eq!(nxt, total);
        prop_assert_eq!(rb.ooo_bytes(), 0);
        prop_assert_eq!(rb.window(), extra_cap);
        // Read back in two steps through peek and read.
        let mut out = vec![0u8; total];
        let half = total / 2;
        prop_assert_eq!(rb.peek(&mut out[..half]), half);
        prop_assert_eq!(&out[..half], &data[..half]);
        prop_assert_eq!(rb.read(&mut out[..half]), half);
        prop_assert_eq!(rb.read(&mut out[half..]), total - half);
        prop_assert_eq!(&out, &data);
        prop_assert_eq!(rb.readable(), 0);
        prop_assert_eq!(rb.window(), rb.capacity());
    }

    /// Small capacity: data beyond the window is clipped, the application reads random
    /// amounts as it goes, and the sender retransmits until everything arrived.
    #[test]
    fn reassembles_with_small_capacity_and_reader(
        data in stream(), cuts in cuts(), extras in extras(),
        cap in 1usize..256, max_ranges in 0usize..12, seed in any::<u64>(),
    ) {
        let total = data.len();
        let mut rng = Rng::new(seed);
        let segs = segments(total, &cuts, &extras);
        let mut rb = RecvBuffer::with_limits(cap, max_ranges);
        let mut nxt = 0usize;
        let mut advanced = 0usize;
        let mut out: Vec<u8> = Vec::with_capacity(total);
        let mut scratch = vec![0u8; cap];
        let mut passes = 0;
        while nxt < total {
            passes += 1;
            prop_assert!(passes <= total + 1, "no progress");
            // One flight: every segment, shuffled, with duplicates.
            for &i in &delivery_order(segs.len(), &mut rng) {
                let (s, e) = segs[i];
                let before = rb.readable();
                let adv = deliver(&mut rb, &data, nxt, s, e);
                prop_assert_eq!(rb.readable(), before + adv);
                nxt += adv;
                advanced += adv;
                check_invariants(&rb)?;
                // The application reads a random amount.
                let want = rng.below(rb.readable() + 1);
                let n = rb.read(&mut scratch[..want]);
                prop_assert_eq!(n, want);
                out.extend_from_slice(&scratch[..n]);
                check_invariants(&rb)?;
            }
            // The application drains fully, then the sender retransmits from SND.UNA
            // a window's worth (the receiver now advertises the whole capacity).
            let (a, b) = rb.peek_slices();
            out.extend_from_slice(a);
            out.extend_from_slice(b);
            let n = a.len() + b.len();
            rb.consume(n);
            prop_assert_eq!(rb.window(), cap);
            if nxt < total {
                let e = (nxt + cap).min(total);
                let adv = rb.write(0, &data[nxt..e]);
                prop_assert!(adv >= e - nxt);
                nxt += adv;
                advanced += adv;
                check_invariants(&rb)?;
            }
        }
        let mut rest = vec![0u8; rb.readable()];
        let n = rb.read(&mut rest);
        out.extend_from_slice(&rest[..n]);
        prop_assert_eq!(advanced, total);
        prop_assert_eq!(out.len(), total);
        prop_assert_eq!(&out, &data);
        prop_assert_eq!(rb.ooo_bytes(), 0);
    }
}
