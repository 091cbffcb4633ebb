//! `Config::congestion_control` plugs in a user's own controller
//! (`CongestionAlgorithm::Custom`): the TCB sends no more than its cwnd (RFC 5681 §3.1,
//! "the sender MUST NOT send data ... greater than the minimum of cwnd and rwnd").

mod common;
use common::*;
use utcp_engine::config::{CongestionAlgorithm, CongestionControl};

/// A controller that holds cwnd at two segments whatever happens.
#[derive(Debug)]
struct TwoSegments;

impl CongestionControl for TwoSegments {
    fn cwnd(&self) -> usize {
        2 * MSS as usize
    }
    fn ssthresh(&self) -> usize {
        usize::MAX
    }
    fn on_ack(&mut self, _acked: usize, _smss: usize) {}
    fn on_fast_retransmit(&mut self, _flight_size: usize, _smss: usize) {}
    fn on_dup_ack_in_recovery(&mut self, _smss: usize) {}
    fn on_partial_ack(&mut self, _acked: usize, _smss: usize) {}
    fn on_recovery_exit(&mut self, _flight_size: usize, _smss: usize) {}
    fn on_rto(&mut self, _flight_size: usize, _smss: usize) {}
    fn on_idle_restart(&mut self, _smss: usize) {}
    fn on_sack_recovery_start(&mut self, _flight_size: usize, _smss: usize) {}
    fn set_cwnd(&mut self, _cwnd: usize) {}
}

fn two_segments(_initial_window: usize) -> Box<dyn CongestionControl> {
    Box::new(TwoSegments)
}

fn established(algo: CongestionAlgorithm) -> H {
    H::established(base_config().with_congestion_control(algo))
}

/// The custom controller's cwnd bounds the flight: two segments, then one per ACK
/// (PSH only on the segment that empties the buffer).
#[test]
fn custom_controller_bounds_the_flight() {
    let mut h = established(CongestionAlgorithm::Custom(two_segments));
    let m = MSS as u32;
    h.write(&payload(5 * MSS as usize));
    h.expect(ACK, h.our(0), h.peer(0)).len(MSS as usize);
    h.expect(ACK, h.our(m), h.peer(0)).len(MSS as usize);
    h.expect_nothing();
    h.send(Seg::new(ACK, h.peer(0), h.our(m)));
    h.expect(ACK, h.our(2 * m), h.peer(0)).len(MSS as usize);
    h.expect_nothing();
    assert_eq!(h.stack.status(h.c()).unwrap().cwnd, 2 * MSS as u32);
}

/// The same data under the default NewReno goes out in one flight (IW = 10 segments,
/// RFC 6928), so the bound above is the plugged-in controller's.
#[test]
fn default_controller_sends_the_initial_window() {
    let mut h = established(CongestionAlgorithm::default());
    h.write(&payload(5 * MSS as usize));
    assert_eq!(h.drain().len(), 5);
}

/// `Custom` compares by factory; the built-in choices by name.
#[test]
fn algorithms_compare() {
    let custom = CongestionAlgorithm::Custom(two_segments);
    assert_eq!(custom, custom);
    assert_ne!(custom, CongestionAlgorithm::NewReno);
    assert_eq!(CongestionAlgorithm::default(), CongestionAlgorithm::NewReno);
}
