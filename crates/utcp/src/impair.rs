//! Link impairments injected between the TUN and the engine: loss, duplication and
//! reordering, driven by a seeded PRNG so a failing run can be replayed.

use crate::device::rng::Rng;

/// Probabilities (each in [0, 1]) applied independently to each direction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// Seed of the PRNG that draws the impairments (same seed, same run).
    pub seed: u64,
    /// Probability a packet is discarded.
    pub drop: f64,
    /// Probability a packet is delivered twice.
    pub duplicate: f64,
    /// Probability a packet is held back and delivered after the next one
    /// (or at the end of the current burst).
    pub reorder: f64,
}

impl Impairment {
    /// No impairment (all probabilities 0) with the given PRNG seed.
    pub fn new(seed: u64) -> Impairment {
        Impairment { seed, drop: 0.0, duplicate: 0.0, reorder: 0.0 }
    }
}

/// What happened to the packets of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ImpairCounts {
    pub drops: u64,
    pub dups: u64,
    pub reorders: u64,
}

/// One direction's impairment state; the held-back packet lives in a reused buffer.
pub(crate) struct Impairer {
    cfg: Impairment,
    rng: Rng,
    held: Vec<u8>,
    holding: bool,
    pub(crate) counts: ImpairCounts,
}

impl Impairer {
    pub(crate) fn new(cfg: Impairment, stream: u64) -> Impairer {
        Impairer {
            cfg,
            rng: Rng::new(cfg.seed ^ stream.wrapping_mul(0xa076_1d64_78bd_642f)),
            held: Vec::with_capacity(crate::device::tun::MAX_PACKET),
            holding: false,
            counts: ImpairCounts::default(),
        }
    }

    /// Pass `pkt` through the impairment, delivering zero, one or more packets to `out`.
    pub(crate) fn process(&mut self, pkt: &[u8], mut out: impl FnMut(&[u8])) {
        if self.rng.chance(self.cfg.drop) {
            self.counts.drops += 1;
            return;
        }
        if !self.holding && self.rng.chance(self.cfg.reorder) {
            self.counts.reorders += 1;
            self.held.clear();
            self.held.extend_from_slice(pkt);
            self.holding = true;
            return;
        }
        out(pkt);
        if self.rng.chance(self.cfg.duplicate) {
            self.counts.dups += 1;
            out(pkt);
        }
        self.release(out);
    }

    /// Deliver the held-back packet, if any (end of a burst).
    pub(crate) fn release(&mut self, mut out: impl FnMut(&[u8])) {
        if self.holding {
            self.holding = false;
            out(&self.held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: Impairment, n: u8) -> (Vec<u8>, ImpairCounts) {
        let mut imp = Impairer::new(cfg, 1);
        let mut seen = Vec::new();
        for i in 0..n {
            imp.process(&[i], |p| seen.push(p[0]));
        }
        imp.release(|p| seen.push(p[0]));
        (seen, imp.counts)
    }

    #[test]
    fn no_impairment_is_identity() {
        let (seen, c) = run(Impairment::new(7), 100);
        assert_eq!(seen, (0..100).collect::<Vec<u8>>());
        assert_eq!(c, ImpairCounts::default());
    }

    #[test]
    fn drop_dup_reorder_are_counted_and_conserve_packets() {
        let cfg = Impairment { seed: 42, drop: 0.1, duplicate: 0.1, reorder: 0.1 };
        let (seen, c) = run(cfg, 200);
        assert!(c.drops > 0 && c.dups > 0 && c.reorders > 0, "{c:?}");
        assert_eq!(seen.len() as u64, 200 - c.drops + c.dups);
        // Every packet not dropped is delivered; order differs somewhere.
        let mut uniq = seen.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len() as u64, 200 - c.drops);
        assert!(seen.windows(2).any(|w| w[0] > w[1]));
        // Same seed, same decisions.
        assert_eq!(run(cfg, 200), (seen, c));
    }
}
