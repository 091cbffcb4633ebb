//! Proportional Rate Reduction (RFC 6937) for the cwnd reduction during SACK-based loss
//! recovery (`Config::prr`).
//!
//! The congestion controller picks ssthresh at the start of recovery
//! ([`super::congestion::CongestionControl::on_sack_recovery_start`]); PRR then spreads
//! the reduction over the recovery round trip so that about one segment leaves for each
//! segment delivered, scaled by ssthresh / RecoverFS, and uses the slow-start reduction
//! bound (PRR-SSRB) once pipe has fallen below ssthresh. The TCB applies the result as
//! `cwnd = pipe + sndcnt` (RFC 6937 §3).

/// RFC 6937 §3 state for one recovery episode. All values are bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prr {
    /// RecoverFS: FlightSize at the start of recovery (snd.nxt - snd.una).
    pub recover_fs: usize,
    /// prr_delivered: data delivered to the receiver since recovery started.
    pub prr_delivered: usize,
    /// prr_out: data sent (new or retransmitted) since recovery started.
    pub prr_out: usize,
}

impl Prr {
    /// RFC 6937 §3 "Initialization on entering recovery".
    pub fn start(recover_fs: usize) -> Prr {
        Prr { recover_fs: recover_fs.max(1), prr_delivered: 0, prr_out: 0 }
    }

    /// "On any data transmission or retransmission: prr_out += (data sent)".
    pub fn on_sent(&mut self, bytes: usize) {
        self.prr_out = self.prr_out.saturating_add(bytes);
    }

    /// "On every ACK starting or during recovery": `delivered` is DeliveredData (the change
    /// in SND.UNA plus the change in SACKed bytes). Returns the new cwnd = pipe + sndcnt.
    pub fn on_ack(&mut self, delivered: usize, pipe: usize, ssthresh: usize, mss: usize) -> usize {
        self.prr_delivered = self.prr_delivered.saturating_add(delivered);
        let sndcnt = if pipe > ssthresh {
            // Proportional part: CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
            let prop = (self.prr_delivered as u128 * ssthresh as u128).div_ceil(self.recover_fs as u128);
            (prop.min(usize::MAX as u128) as usize).saturating_sub(self.prr_out)
        } else {
            // PRR-SSRB: limit = MAX(prr_delivered - prr_out, DeliveredData) + MSS.
            let limit = self.prr_delivered.saturating_sub(self.prr_out).max(delivered).saturating_add(mss);
            (ssthresh - pipe).min(limit)
        };
        pipe.saturating_add(sndcnt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    #[test]
    fn proportional_part_sends_half_as_much_as_delivered() {
        // RFC 6937 §5 example: 20 segments in flight, ssthresh 10: one segment out for
        // every second segment delivered.
        let mut p = Prr::start(20 * MSS);
        let mut sent = 0;
        // While pipe stays above ssthresh (8 ACKs), the proportional part applies.
        for i in 1..=8 {
            let pipe = 19 * MSS - i * MSS; // one segment lost, i delivered
            let cwnd = p.on_ack(MSS, pipe, 10 * MSS, MSS);
            let sndcnt = cwnd - pipe;
            p.on_sent(sndcnt);
            sent += sndcnt;
            assert_eq!(sent, (i * MSS * 10).div_ceil(20), "after {i} ACKs");
        }
    }

    #[test]
    fn slow_start_reduction_bound_below_ssthresh() {
        let mut p = Prr::start(10 * MSS);
        // Large loss: pipe already far below ssthresh (5 MSS). One segment delivered
        // lets at most DeliveredData + MSS out (PRR-SSRB).
        let cwnd = p.on_ack(MSS, MSS, 5 * MSS, MSS);
        assert_eq!(cwnd, MSS + 2 * MSS);
        p.on_sent(2 * MSS);
        // Never more than ssthresh - pipe.
        let cwnd = p.on_ack(10 * MSS, 4 * MSS, 5 * MSS, MSS);
        assert_eq!(cwnd, 5 * MSS);
    }

    #[test]
    fn nothing_delivered_sends_nothing_above_ssthresh() {
        let mut p = Prr::start(10 * MSS);
        assert_eq!(p.on_ack(0, 8 * MSS, 5 * MSS, MSS), 8 * MSS);
    }
}
