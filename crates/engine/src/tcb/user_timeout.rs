//! USER TIMEOUT per connection (RFC 9293 §3.8.3 and §3.9.1 OPEN/SEND, RFC 5482; Linux's
//! TCP_USER_TIMEOUT): when data stays unacknowledged for longer than the timeout, the
//! connection is aborted with `TimedOut`, whatever R2 (`Config::data_retries`) says.
//!
//! The clock starts when data goes out with nothing outstanding and restarts whenever
//! SND.UNA advances (forward progress). The timeout is checked when the retransmission
//! timer fires, and that timer is never armed beyond the user-timeout deadline (Linux's
//! tcp_clamp_rto_to_user_timeout), so the abort happens on time.

use super::Tcb;
use crate::time::{Duration, Instant};

/// User-timeout state of one connection.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct UserTimeout {
    /// The timeout; `None` leaves giving up to R2.
    pub(crate) limit: Option<Duration>,
    /// Since when the oldest outstanding data has waited for an acknowledgment.
    since: Option<Instant>,
}

impl Tcb {
    /// A data or FIN segment was sent.
    pub(crate) fn user_timeout_on_send(&mut self, now: Instant) {
        if self.user_timeout.since.is_none() {
            self.user_timeout.since = Some(now);
        }
    }

    /// SND.UNA advanced: progress restarts the clock, or stops it when all is acknowledged.
    pub(crate) fn user_timeout_on_ack(&mut self, now: Instant) {
        self.user_timeout.since = (self.snd.una != self.snd_max).then_some(now);
    }

    /// The moment the connection times out, if a user timeout is set and data is waiting.
    fn user_timeout_deadline(&self) -> Option<Instant> {
        Some(self.user_timeout.since? + self.user_timeout.limit?)
    }

    /// True when the retransmission timer fires at or after the user-timeout deadline.
    pub(crate) fn user_timeout_expired(&self, now: Instant) -> bool {
        self.user_timeout_deadline().is_some_and(|d| now >= d)
    }

    /// A retransmission deadline, never later than the user-timeout deadline.
    pub(crate) fn clamp_to_user_timeout(&self, deadline: Instant) -> Instant {
        match self.user_timeout_deadline() {
            Some(d) if d < deadline => d,
            _ => deadline,
        }
    }
}
