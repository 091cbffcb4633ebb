//! The sender's SACK scoreboard (RFC 2018 §5, RFC 6675 §3): which data above SND.UNA the
//! receiver holds, so that recovery retransmits the holes instead of one segment per RTT.

use crate::seq::SeqNum;

/// Most ranges remembered; older information is dropped (the receiver repeats it).
const MAX_RANGES: usize = 32;

#[derive(Debug, Default)]
pub(crate) struct Scoreboard {
    /// SACKed ranges `[start, end)`, sorted, disjoint and non-adjacent, all above SND.UNA.
    ranges: Vec<(SeqNum, SeqNum)>,
    /// HighRxt (RFC 6675 §2): the end of the highest retransmission in this recovery.
    pub(crate) high_rxt: SeqNum,
}

impl Scoreboard {
    pub(crate) fn new(iss: SeqNum) -> Scoreboard {
        Scoreboard { ranges: Vec::new(), high_rxt: iss }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Record the SACK blocks of one ACK. Blocks at or below SND.UNA (D-SACK, RFC 2883) or
    /// beyond what was sent are ignored (RFC 6675 §5: only valid blocks count).
    pub(crate) fn update(&mut self, una: SeqNum, snd_max: SeqNum, blocks: &[(SeqNum, SeqNum)]) {
        for &(s, e) in blocks {
            if !s.lt(e) || !una.lt(e) || e.gt(snd_max) {
                continue;
            }
            self.insert(s.max(una), e);
        }
    }

    fn insert(&mut self, mut s: SeqNum, mut e: SeqNum) {
        // Merge with every range it touches.
        let mut i = 0;
        while i < self.ranges.len() {
            let (rs, re) = self.ranges[i];
            if re.lt(s) {
                i += 1;
                continue;
            }
            if e.lt(rs) {
                break;
            }
            s = s.min(rs);
            e = e.max(re);
            self.ranges.remove(i);
        }
        if self.ranges.len() >= MAX_RANGES {
            // Keep the lowest ranges: they decide what is retransmitted next.
            if i >= MAX_RANGES {
                return;
            }
            self.ranges.pop();
        }
        self.ranges.insert(i, (s, e));
    }

    /// Forget everything at or below the new SND.UNA.
    pub(crate) fn prune(&mut self, una: SeqNum) {
        self.ranges.retain_mut(|(s, e)| {
            if e.le(una) {
                return false;
            }
            if s.lt(una) {
                *s = una;
            }
            true
        });
    }

    /// Bytes the receiver reported holding above SND.UNA.
    #[cfg(test)]
    pub(crate) fn sacked_bytes(&self) -> u32 {
        self.ranges.iter().map(|(s, e)| e.since(*s)).sum()
    }

    /// If `seq` lies in SACKed data, the end of that range.
    pub(crate) fn sacked_end_at(&self, seq: SeqNum) -> Option<SeqNum> {
        self.ranges.iter().find(|(s, e)| s.le(seq) && seq.lt(*e)).map(|&(_, e)| e)
    }

    /// The start of the first SACKed range above `seq`.
    pub(crate) fn next_sacked_after(&self, seq: SeqNum) -> Option<SeqNum> {
        self.ranges.iter().find(|(s, _)| seq.lt(*s)).map(|&(s, _)| s)
    }

    /// The first hole at or after `from` that lies below some SACKed data (so it is
    /// presumed lost, RFC 6675 §4 NextSeg rule 1), at most `mss` long.
    pub(crate) fn next_hole(&self, from: SeqNum, mss: u32) -> Option<(SeqNum, u32)> {
        let mut pos = from;
        for &(s, e) in &self.ranges {
            if pos.lt(s) {
                return Some((pos, s.since(pos).min(mss)));
            }
            if pos.lt(e) {
                pos = e;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(blocks: &[(u32, u32)]) -> Scoreboard {
        let mut b = Scoreboard::new(SeqNum(0));
        let v: Vec<_> = blocks.iter().map(|&(s, e)| (SeqNum(s), SeqNum(e))).collect();
        b.update(SeqNum(100), SeqNum(10_000), &v);
        b
    }

    #[test]
    fn merges_and_ignores_invalid_blocks() {
        let b = sb(&[(300, 400), (500, 600), (400, 500), (50, 90), (9000, 20_000), (700, 700)]);
        assert_eq!(b.ranges, vec![(SeqNum(300), SeqNum(600))]);
        assert_eq!(b.sacked_bytes(), 300);
    }

    #[test]
    fn holes_below_sacked_data_only() {
        let b = sb(&[(300, 400), (600, 700)]);
        assert_eq!(b.next_hole(SeqNum(100), 1000), Some((SeqNum(100), 200)));
        assert_eq!(b.next_hole(SeqNum(100), 50), Some((SeqNum(100), 50)));
        assert_eq!(b.next_hole(SeqNum(350), 1000), Some((SeqNum(400), 200)));
        assert_eq!(b.next_hole(SeqNum(650), 1000), None);
    }

    #[test]
    fn prune_and_wrap() {
        let mut b = Scoreboard::new(SeqNum(0));
        let una = SeqNum(u32::MAX - 100);
        b.update(una, una + 5000, &[(una + 200, una + 400)]);
        assert_eq!(b.next_hole(una, 1000), Some((una, 200)));
        b.prune(una + 300);
        assert_eq!(b.ranges, vec![(una + 300, una + 400)]);
        b.prune(una + 400);
        assert!(b.is_empty());
    }

    #[test]
    fn bounded() {
        let mut b = Scoreboard::new(SeqNum(0));
        for i in 0..100u32 {
            b.update(SeqNum(0), SeqNum(1_000_000), &[(SeqNum(1000 + i * 20), SeqNum(1010 + i * 20))]);
        }
        assert_eq!(b.ranges.len(), MAX_RANGES);
        assert_eq!(b.ranges[0], (SeqNum(1000), SeqNum(1010)));
    }
}
