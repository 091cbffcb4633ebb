//! Handshake gating for any-IP termination: a gated listener does not answer a SYN at
//! once. It holds the SYN (a compact record: no TCB, no buffers), reports
//! [`Event::SynArrived`](crate::Event::SynArrived), and lets the application decide:
//! [`Stack::accept_syn`](crate::Stack::accept_syn) answers with the SYN-ACK,
//! [`Stack::refuse_syn`](crate::Stack::refuse_syn) with a RST. A tun2socks gateway
//! connects upstream first, so the client sees "connection refused" when the real
//! destination refuses, not a reset after a completed handshake.
//!
//! Bounded: at most the listener's backlog of held SYNs; a retransmitted SYN for a held
//! quad is absorbed; entries older than [`HOLD_MAX`] are dropped when room is needed.

use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::{TcpFlags, TcpOptions, TcpSegment};
use crate::{ListenerId, Quad};
use std::collections::{HashMap, VecDeque};

/// A held SYN older than this is forgotten when a new one needs its room (the peer's
/// connect has long given up: Linux gives up after about 2 minutes, 75 s is FreeBSD's).
pub const HOLD_MAX: Duration = Duration::from_secs(75);

/// What a held SYN needs to be answered later (RFC 9293 §3.10.7.2: SEG.SEQ, the window
/// and the options; SYN data is not kept, the peer retransmits it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeldSyn {
    pub(crate) listener: ListenerId,
    seq: SeqNum,
    window: u16,
    options: TcpOptions,
    since: Instant,
    /// The ISS a SYN that reopens a quad in TIME-WAIT must use (above the old
    /// incarnation's SND.MAX, RFC 6191), kept until the SYN is answered.
    pub(crate) iss: Option<SeqNum>,
}

impl HeldSyn {
    /// The SYN again, for the ordinary LISTEN processing.
    pub(crate) fn segment(&self, quad: &Quad) -> TcpSegment<'static> {
        TcpSegment {
            tcp: crate::wire::TcpRepr {
                src_port: quad.remote.port(),
                dst_port: quad.local.port(),
                seq: self.seq,
                ack: SeqNum(0),
                flags: TcpFlags::SYN,
                window: self.window,
                urgent: 0,
                options: self.options,
            },
            src: quad.remote.ip(),
            dst: quad.local.ip(),
            payload: &[],
        }
    }
}

/// Held SYNs of every gated listener.
#[derive(Default)]
pub(crate) struct Gate {
    held: HashMap<Quad, HeldSyn>,
    /// Held SYNs not yet handed to the application, in arrival order.
    fresh: HashMap<ListenerId, VecDeque<Quad>>,
    /// Held SYNs per listener (handed out or not).
    count: HashMap<ListenerId, usize>,
}

/// What became of a SYN offered to the gate.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Held {
    /// New: tell the application.
    New,
    /// A retransmission of a SYN already held.
    Again,
    /// No room (the listener's backlog of held SYNs is full).
    Full,
}

impl Gate {
    /// Hold `seg` for `listener`, with room for `cap` SYNs; `iss` overrides the ISS of
    /// the answer (TIME-WAIT reuse).
    pub(crate) fn hold(
        &mut self,
        listener: ListenerId,
        quad: Quad,
        seg: &TcpSegment,
        now: Instant,
        cap: usize,
        iss: Option<SeqNum>,
    ) -> Held {
        if self.held.contains_key(&quad) {
            return Held::Again;
        }
        if self.count.get(&listener).copied().unwrap_or(0) >= cap {
            let stale: Vec<Quad> = self
                .held
                .iter()
                .filter(|(_, h)| h.listener == listener && now.saturating_since(h.since) >= HOLD_MAX)
                .map(|(q, _)| *q)
                .collect();
            if stale.is_empty() {
                return Held::Full;
            }
            for q in stale {
                self.take(&q);
            }
        }
        self.fresh.entry(listener).or_default().push_back(quad);
        *self.count.entry(listener).or_default() += 1;
        let h = HeldSyn { listener, seq: seg.seq, window: seg.window, options: seg.options, since: now, iss };
        self.held.insert(quad, h);
        Held::New
    }

    /// Hand out the oldest held SYN of `listener` not handed out yet.
    pub(crate) fn poll(&mut self, listener: ListenerId) -> Option<Quad> {
        let q = self.fresh.get_mut(&listener)?;
        while let Some(quad) = q.pop_front() {
            if self.held.contains_key(&quad) {
                return Some(quad);
            }
        }
        None
    }

    /// Stop holding `quad`.
    pub(crate) fn take(&mut self, quad: &Quad) -> Option<HeldSyn> {
        let h = self.held.remove(quad)?;
        if let Some(n) = self.count.get_mut(&h.listener) {
            *n = n.saturating_sub(1);
        }
        if let Some(q) = self.fresh.get_mut(&h.listener) {
            q.retain(|x| x != quad);
        }
        Some(h)
    }

    /// Forget every SYN held for `listener`; returns their quads and SYN sequence numbers.
    pub(crate) fn drain(&mut self, listener: ListenerId) -> Vec<(Quad, SeqNum)> {
        self.fresh.remove(&listener);
        self.count.remove(&listener);
        let quads: Vec<Quad> =
            self.held.iter().filter(|(_, h)| h.listener == listener).map(|(q, _)| *q).collect();
        quads.into_iter().filter_map(|q| self.held.remove(&q).map(|h| (q, h.seq))).collect()
    }
}
