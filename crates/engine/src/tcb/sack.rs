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
    /// RescueRxt (RFC 6675 §2): the recovery point when NextSeg rule 4 last fired.
    pub(crate) rescue_rxt: Option<SeqNum>,
    /// Lost-retransmission detection: the retransmitted segment at `.0` and SND.MAX when
    /// it left (`.1`). Data sent after it that is SACKed means it was lost again.
    pub(crate) rxt_fence: Option<(SeqNum, SeqNum)>,
    /// A retransmission found lost: send the segment at this sequence number again.
    pub(crate) rxt_again: Option<SeqNum>,
    /// RACK's per-segment transmission records and variables (RFC 8985 §6, rack.rs).
    pub(crate) rack: super::rack::Rack,
}

impl Scoreboard {
    pub(crate) fn new(iss: SeqNum) -> Scoreboard {
        Scoreboard {
            ranges: Vec::new(),
            high_rxt: iss,
            rescue_rxt: None,
            rxt_fence: None,
            rxt_again: None,
            rack: Default::default(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// RACK's state beside the SACKed ranges (rack.rs).
    pub(crate) fn rack_and_ranges(&mut self) -> (&mut super::rack::Rack, &[(SeqNum, SeqNum)]) {
        (&mut self.rack, &self.ranges)
    }

    pub(crate) fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Record the SACK blocks of one ACK. Blocks at or below SND.UNA (D-SACK, RFC 2883) or
    /// beyond what was sent are ignored (RFC 6675 §5: only valid blocks count). Returns the
    /// bytes newly SACKed: an ACK that SACKs previously unSACKed octets is a duplicate
    /// ACK in the sense of RFC 6675 §2 (DupAck), and its bytes are delivered data for
    /// PRR (RFC 6937 §3, DeliveredData).
    pub(crate) fn update(&mut self, una: SeqNum, snd_max: SeqNum, blocks: &[(SeqNum, SeqNum)]) -> u32 {
        let before = self.total_sacked();
        for &(s, e) in blocks {
            if !s.lt(e) || !una.lt(e) || e.gt(snd_max) {
                continue;
            }
            self.insert(s.max(una), e);
        }
        self.total_sacked().saturating_sub(before)
    }

    /// Bytes SACKed above SND.UNA.
    pub(crate) fn total_sacked(&self) -> u32 {
        self.ranges.iter().map(|(s, e)| e.since(*s)).sum()
    }

    /// RFC 6675 §4 IsLost(): an unSACKed octet is lost when DupThresh discontiguous SACKed
    /// ranges lie above it, or more than (DupThresh - 1) * SMSS bytes above it are SACKed.
    /// Both only grow towards lower sequence numbers, so every hole below the returned
    /// point is lost and none above it; `None` when no hole is lost.
    pub(crate) fn lost_below(&self, smss: u32) -> Option<SeqNum> {
        let dup_thresh = super::congestion::DUP_THRESH;
        let (mut bytes, mut count) = (0u32, 0u32);
        for &(s, e) in self.ranges.iter().rev() {
            bytes = bytes.saturating_add(e.since(s));
            count += 1;
            if count >= dup_thresh || bytes > (dup_thresh - 1) * smss {
                return Some(s);
            }
        }
        None
    }

    /// Bytes SACKed at or above `seq`.
    pub(crate) fn sacked_above(&self, seq: SeqNum) -> u32 {
        self.ranges.iter().map(|&(s, e)| if seq.lt(e) { e.since(s.max(seq)) } else { 0 }).sum()
    }

    /// IsLost(seq) of RFC 6675 §4 for an unSACKed `seq`.
    pub(crate) fn is_lost(&self, seq: SeqNum, smss: u32) -> bool {
        self.lost_below(smss).is_some_and(|l| seq.lt(l))
    }

    /// UnSACKed bytes in `[a, b)`.
    pub(crate) fn unsacked_in(&self, a: SeqNum, b: SeqNum) -> u32 {
        if !a.lt(b) {
            return 0;
        }
        let sacked: u32 = self
            .ranges
            .iter()
            .map(|&(s, e)| {
                let (s, e) = (s.max(a), e.min(b));
                if s.lt(e) { e.since(s) } else { 0 }
            })
            .sum();
        b.since(a) - sacked
    }

    /// RFC 6675 §4 SetPipe(): octets in flight. Every unSACKed octet between HighACK
    /// (SND.UNA) and HighData (SND.MAX) counts once if it is not lost, and once more if it
    /// was retransmitted in this recovery (at or below HighRxt).
    pub(crate) fn pipe(&self, una: SeqNum, high_data: SeqNum, smss: u32) -> u32 {
        if self.rack.active() {
            return self.pipe_rack(una, high_data, smss); // RFC 8985 marks (rack.rs)
        }
        let lost_end = self.lost_below(smss).map_or(una, |l| l.max(una));
        let rxt_end = self.high_rxt.max(una).min(high_data);
        self.unsacked_in(lost_end, high_data) + self.unsacked_in(una, rxt_end)
    }

    /// RFC 6675 §4 NextSeg() rules 1 and 3: the first unSACKed range above HighRxt (and
    /// at or above SND.UNA) and below the highest SACKed octet, at most `mss` long, with
    /// whether IsLost() holds for it (rule 1) or not (rule 3).
    pub(crate) fn next_seg_rxt(&self, una: SeqNum, mss: u32) -> Option<(SeqNum, u32, bool)> {
        let from = self.high_rxt.max(una);
        let (seq, len) = self.next_hole(from, mss)?;
        Some((seq, len, self.is_lost(seq, mss)))
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

    /// RFC 6675 §4 NextSeg rule 4: a segment of at most `mss` octets ending with the highest
    /// outstanding unSACKed octet below `data_end`, above SND.UNA and not overlapping SACKed data.
    pub(crate) fn rescue_range(&self, una: SeqNum, data_end: SeqNum, mss: u32) -> Option<(SeqNum, u32)> {
        let mut end = data_end;
        for &(s, e) in self.ranges.iter().rev() {
            if s.lt(end) && end.le(e) {
                end = s;
            }
        }
        if !una.lt(end) {
            return None;
        }
        let mut start = if end.since(una) > mss { end - mss } else { una };
        for &(_, e) in &self.ranges {
            if start.lt(e) && e.le(end) {
                start = e;
            }
        }
        Some((start, end.since(start)))
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
        self.total_sacked()
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
    fn is_lost_and_pipe_rfc6675() {
        // SND.UNA 100, sent up to 1100, SMSS 100: SACKed 200..300, 400..500, 700..800.
        let mut b = sb(&[(200, 300), (400, 500), (700, 800)]);
        // Three discontiguous ranges above 100: the hole 100..200 is lost, none above.
        assert_eq!(b.lost_below(100), Some(SeqNum(200)));
        assert!(b.is_lost(SeqNum(150), 100));
        assert!(!b.is_lost(SeqNum(350), 100));
        // Not lost: 300..400, 500..700, 800..1100 = 600; nothing retransmitted yet.
        assert_eq!(b.pipe(SeqNum(100), SeqNum(1100), 100), 600);
        // After retransmitting 100..200 (HighRxt 200) it counts once more.
        b.high_rxt = SeqNum(200);
        assert_eq!(b.pipe(SeqNum(100), SeqNum(1100), 100), 700);
        // Rule 3 candidate above HighRxt: 300..400, not lost.
        assert_eq!(b.next_seg_rxt(SeqNum(100), 100), Some((SeqNum(300), 100, false)));
        // More than 2*SMSS bytes SACKed above by one range also marks the hole lost.
        let c = sb(&[(300, 600)]);
        assert_eq!(c.lost_below(100), Some(SeqNum(300)));
        assert_eq!(c.lost_below(150), None);
        assert_eq!(c.next_seg_rxt(SeqNum(100), 150), Some((SeqNum(100), 150, false)));
    }

    #[test]
    fn update_reports_newly_sacked_bytes() {
        let mut b = Scoreboard::new(SeqNum(0));
        assert_eq!(b.update(SeqNum(0), SeqNum(1000), &[(SeqNum(100), SeqNum(200))]), 100);
        assert_eq!(b.update(SeqNum(0), SeqNum(1000), &[(SeqNum(100), SeqNum(250))]), 50);
        assert_eq!(b.update(SeqNum(0), SeqNum(1000), &[(SeqNum(100), SeqNum(250))]), 0);
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
