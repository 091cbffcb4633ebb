//! The SYN cache (RFC 4987 §3.3): a listener's half-open connections are compact records,
//! not TCBs. A record holds what the SYN negotiated and what our SYN-ACK said (at most
//! 128 bytes, `SynRecord`); the SYN-ACK and its retransmissions (RFC 9293 §3.8.1, RFC
//! 6298 backoff, `Config::syn_retries`) are written straight from it.
//!
//! Any other segment for the record's 4-tuple (the handshake's ACK, a RST, a retransmitted
//! SYN, data) first rebuilds the SYN-RECEIVED TCB exactly as it would be had it existed all
//! along (like a TIME-WAIT record, `timewait.rs`), so RFC 9293 §3.10.7.4 runs unchanged.
//! With `Config::trace_states` the SYN queue holds TCBs as before, so that every state
//! change has a connection id.
//!
//! This is a child module of `stack` (it sees the Stack's private fields).

use super::{Stack, Stage};
use crate::seq::SeqNum;
use crate::tcb::Tcb;
use crate::time::{Duration, Instant};
use crate::wire::{TcpFlags, TcpHeaderOut, TcpOptions, TcpRepr, TcpSegment, emit_ip_tcp};
use crate::{ConnId, ListenerId, Quad};
use std::collections::{HashMap, VecDeque};

const F_TS: u8 = 1; // timestamps in use (RFC 7323)
const F_SACK: u8 = 2; // SACK-permitted in use (RFC 2018)
const F_PEER_SACK: u8 = 4; // the SYN offered SACK-permitted
const F_PEER_TS: u8 = 8; // the SYN carried timestamps
const F_OWED: u8 = 16; // a SYN-ACK is due (first or retransmission), not yet written
const NONE8: u8 = 0xff;

/// One half-open connection (RFC 4987 §3.3). At most 128 bytes.
#[derive(Clone, Debug)]
pub struct SynRecord {
    quad: Quad,
    lid: ListenerId,
    iss: SeqNum,
    irs: SeqNum,
    /// The SYN's TSval (TS.Recent).
    ts_recent: u32,
    /// When the SYN arrived.
    created: Instant,
    /// When the first SYN-ACK was written (RTT sample without timestamps, RFC 6298 §3).
    first_sent: Instant,
    /// Retransmission deadline of the SYN-ACK in flight.
    deadline: Instant,
    peer_window: u16,
    /// The SYN's MSS option (0: absent).
    peer_mss: u16,
    /// Our SYN-ACK's (unscaled) window and MSS option (0: none).
    window: u16,
    mss_opt: u16,
    ip_id: u16,
    /// Window-scale shifts: the SYN's and ours (0xff: none).
    peer_wscale: u8,
    wscale: u8,
    flags: u8,
    /// SYN-ACK retransmissions so far.
    retries: u8,
}

/// The records of every listener, bounded by the listeners' SYN queues
/// (min(backlog, `Config::syn_queue_len`) each).
pub(crate) struct SynCache {
    records: HashMap<Quad, SynRecord, super::QuadHasherBuilder>,
    /// Records owing a SYN-ACK, oldest first (each at most once: `F_OWED`).
    owed: VecDeque<Quad>,
    /// The earliest deadline, if known (`None` with `stale`: recompute).
    next: Option<Instant>,
    stale: bool,
}

impl SynCache {
    pub(crate) fn new(hasher: super::QuadHasherBuilder) -> SynCache {
        SynCache { records: HashMap::with_hasher(hasher), owed: VecDeque::new(), next: None, stale: false }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Some record may owe a SYN-ACK (a cheap test before `syn_cache_emit`).
    #[inline]
    pub(crate) fn owes_synack(&self) -> bool {
        !self.owed.is_empty()
    }

    pub(crate) fn contains(&self, quad: &Quad) -> bool {
        self.records.contains_key(quad)
    }

    pub(crate) fn quads(&self) -> impl Iterator<Item = Quad> + '_ {
        self.records.keys().copied()
    }

    /// The earliest retransmission deadline.
    pub(crate) fn next_deadline(&mut self, keepinit: Option<Duration>) -> Option<Instant> {
        if self.stale {
            self.next = self.records.values().filter_map(|r| r.next_deadline(keepinit)).min();
            self.stale = false;
        }
        self.next
    }

    fn insert(&mut self, r: SynRecord) {
        if self.owed.len() > 2 * self.records.len() + 64 {
            // Entries of records taken before their SYN-ACK went out (a driver that does
            // not poll): keep the queue bounded by the records.
            let recs = &self.records;
            self.owed.retain(|q| recs.get(q).is_some_and(|r| r.flags & F_OWED != 0));
        }
        self.owed.push_back(r.quad);
        self.records.insert(r.quad, r);
    }

    fn take(&mut self, quad: &Quad) -> Option<SynRecord> {
        let r = self.records.remove(quad)?;
        self.stale = true;
        if self.records.is_empty() {
            self.owed.clear();
            if self.records.capacity() > 1024 {
                self.records.shrink_to(0);
            }
        }
        Some(r)
    }
}

impl SynRecord {
    /// The retransmission deadline (none while a SYN-ACK is owed) or the handshake's
    /// `Config::connect_timeout`, whichever is first.
    fn next_deadline(&self, keepinit: Option<Duration>) -> Option<Instant> {
        let rtx = (self.flags & F_OWED == 0).then_some(self.deadline);
        match (rtx, keepinit.map(|d| self.created + d)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The SYN the record stands for (what `Tcb::new_passive` negotiates from).
    fn syn(&self) -> TcpSegment<'static> {
        TcpSegment {
            src: self.quad.remote.ip(),
            dst: self.quad.local.ip(),
            tcp: TcpRepr {
                src_port: self.quad.remote.port(),
                dst_port: self.quad.local.port(),
                seq: self.irs,
                ack: SeqNum(0),
                flags: TcpFlags::SYN,
                window: self.peer_window,
                urgent: 0,
                options: TcpOptions {
                    mss: (self.peer_mss != 0).then_some(self.peer_mss),
                    window_scale: (self.peer_wscale != NONE8).then_some(self.peer_wscale),
                    sack_permitted: self.flags & F_PEER_SACK != 0,
                    timestamps: (self.flags & F_PEER_TS != 0).then_some((self.ts_recent, 0)),
                    ..TcpOptions::default()
                },
            },
            payload: &[],
        }
    }

    /// The SYN-ACK (RFC 9293 §3.10.7.2), as `Tcb::emit_syn` writes it.
    fn synack_header(&self, cfg: &crate::Config, now: Instant) -> TcpHeaderOut {
        let ts_now = ((now.micros() / 1000) as u32).wrapping_add(self.iss.0.rotate_left(13));
        let options = TcpOptions {
            mss: (self.mss_opt != 0).then_some(self.mss_opt),
            window_scale: (self.wscale != NONE8).then_some(self.wscale),
            sack_permitted: self.flags & F_SACK != 0,
            timestamps: (self.flags & F_TS != 0).then_some((ts_now, self.ts_recent)),
            ..TcpOptions::default()
        };
        TcpHeaderOut {
            src: self.quad.local.ip(),
            dst: self.quad.remote.ip(),
            tcp: TcpRepr {
                src_port: self.quad.local.port(),
                dst_port: self.quad.remote.port(),
                seq: self.iss,
                ack: self.irs + 1,
                flags: TcpFlags::SYN | TcpFlags::ACK,
                window: self.window,
                urgent: 0,
                options,
            },
            ttl: cfg.ttl,
            ip_id: self.ip_id,
            // RFC 6437: the label the connection will keep (crate::flow_label).
            flow_label: crate::flow_label::flow_label(&cfg.isn_secret, &self.quad),
        }
    }
}

impl Stack {
    /// Whether the SYN queue of this stack holds records (else SYN-RECEIVED TCBs).
    pub(super) fn syn_cache_enabled(&self) -> bool {
        !self.config.trace_states
    }

    /// A SYN admitted to the SYN queue (RFC 9293 §3.10.7.2): a record, its SYN-ACK owed.
    pub(super) fn syn_cache_insert(
        &mut self,
        now: Instant,
        lid: ListenerId,
        quad: Quad,
        seg: &TcpSegment,
        iss: SeqNum,
    ) {
        // What the TCB would negotiate and say: built once, on the stack, never stored.
        let tcb = self.transient_tcb(lid, quad, iss, seg, now);
        let o = &seg.options;
        // Tcb::emit_syn: offer only what the peer offered, as the stack's config allows.
        let cfg = &self.config;
        let mut flags = F_OWED;
        flags |= if cfg.timestamps && tcb.ts_ok { F_TS } else { 0 };
        flags |= if cfg.sack && tcb.sack_ok { F_SACK } else { 0 };
        flags |= if o.sack_permitted { F_PEER_SACK } else { 0 }
            | if o.timestamps.is_some() { F_PEER_TS } else { 0 };
        let rec = SynRecord {
            quad,
            lid,
            iss,
            irs: seg.seq,
            ts_recent: o.timestamps.map_or(0, |(v, _)| v),
            created: now,
            first_sent: now,
            deadline: now,
            peer_window: seg.window,
            peer_mss: o.mss.unwrap_or(0),
            window: (tcb.recvbuf.window() as u32).min(65535) as u16,
            mss_opt: if cfg.send_mss_option { tcb.rcv_mss } else { 0 },
            ip_id: tcb.ip_id,
            peer_wscale: o.window_scale.unwrap_or(NONE8),
            wscale: if cfg.window_scale && tcb.wscale_ok {
                cfg.wscale_for(tcb.recvbuf.capacity())
            } else {
                NONE8
            },
            flags,
            retries: 0,
        };
        if let Some(Some(l)) = self.listeners.get_mut(lid.0 as usize) {
            l.embryonic += 1;
        }
        self.syn_cache.insert(rec);
    }

    fn transient_tcb(&self, lid: ListenerId, quad: Quad, iss: SeqNum, syn: &TcpSegment, now: Instant) -> Tcb {
        let cfg_local = self.listener_config(lid);
        let cfg = cfg_local.as_ref().unwrap_or(&self.config);
        let id = ConnId { index: u32::MAX, generation: 0 };
        let mut tcb = Tcb::new_passive(cfg, id, quad, iss, syn, now, lid);
        tcb.attach_pool(&self.mem);
        tcb
    }

    /// Write the next owed SYN-ACK from a record, if any.
    pub(super) fn syn_cache_emit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        while let Some(quad) = self.syn_cache.owed.pop_front() {
            let Some(r) = self.syn_cache.records.get_mut(&quad) else { continue };
            if r.flags & F_OWED == 0 {
                continue;
            }
            r.ip_id = r.ip_id.wrapping_add(1);
            let mut h = r.synack_header(&self.config, now);
            // The listener's IP_TTL / IP_TOS (icmp_demux.rs), as its TCB would send them.
            let (ttl, tos) = match self.listeners.get(r.lid.0 as usize) {
                Some(Some(l)) => l.ip_ttl_tos,
                _ => (None, None),
            };
            h.ttl = ttl.unwrap_or(h.ttl);
            let tos = tos.unwrap_or(self.config.tos);
            let Some(n) = emit_ip_tcp(buf, &h, self.config.option_layout, &[]) else {
                r.ip_id = r.ip_id.wrapping_sub(1);
                self.syn_cache.owed.push_front(quad);
                return None;
            };
            if tos != 0 || !self.config.pmtu_discovery {
                crate::icmp_error::restamp_ipv4(&mut buf[..n], tos, self.config.pmtu_discovery);
            }
            r.flags &= !F_OWED;
            let rto = synack_rto(&self.config, r.retries);
            r.deadline = now + rto;
            if r.retries == 0 {
                r.first_sent = now;
                self.last_tx_reason = crate::TxReason::SynAck;
            } else {
                self.counters.retrans_segs += 1;
                self.last_tx_reason = crate::TxReason::SynRetransmit;
            }
            self.counters.out_segs += 1;
            self.syn_cache.stale = true;
            return Some(n);
        }
        None
    }

    /// Retransmission timeouts of records (RFC 9293 §3.8.1, RFC 6298 §5.5; RFC 1122
    /// §4.2.3.5 R2 = `Config::syn_retries`; `Config::connect_timeout`).
    pub(super) fn syn_cache_expire(&mut self, now: Instant) {
        let keepinit = self.config.connect_timeout;
        if self.syn_cache.next_deadline(keepinit).is_none_or(|t| t > now) {
            return;
        }
        let limit = self.config.syn_retries;
        let mut dead: Vec<(Quad, ListenerId)> = Vec::new();
        for r in self.syn_cache.records.values_mut() {
            if keepinit.is_some_and(|d| r.created + d <= now) {
                // Tcb::on_timeout: the connection did not synchronize in time.
                dead.push((r.quad, r.lid));
                continue;
            }
            if r.flags & F_OWED != 0 || r.deadline > now {
                continue;
            }
            // Tcb::on_rto in SYN-RECEIVED.
            self.counters.timeouts += 1;
            if u32::from(r.retries) >= limit {
                dead.push((r.quad, r.lid));
                continue;
            }
            r.retries += 1;
            r.flags |= F_OWED;
            self.syn_cache.owed.push_back(r.quad);
        }
        for (quad, lid) in dead {
            self.counters.attempt_fails += 1;
            self.syn_cache.take(&quad);
            if let Some(Some(l)) = self.listeners.get_mut(lid.0 as usize) {
                l.embryonic = l.embryonic.saturating_sub(1);
            }
        }
        self.syn_cache.stale = true;
    }

    /// A segment arrived for `quad`: if it has a record, rebuild its SYN-RECEIVED TCB.
    pub(super) fn syn_cache_revive(&mut self, quad: Quad) {
        let Some(r) = self.syn_cache.take(&quad) else { return };
        if self.conns.contains_key(&quad) {
            // Cannot happen (a record is made only for a quad without a TCB); keep the TCB.
            if let Some(Some(l)) = self.listeners.get_mut(r.lid.0 as usize) {
                l.embryonic = l.embryonic.saturating_sub(1);
            }
            return;
        }
        let idx = self.alloc_slot(Stage::Embryonic(r.lid));
        let id = self.conn_id(idx);
        let mut tcb = self.transient_tcb(r.lid, quad, r.iss, &r.syn(), r.created);
        tcb.id = id;
        adopt_record(&mut tcb, &r);
        self.slots[idx as usize].tcb = Some(Box::new(tcb));
        self.conns.insert(quad, idx);
        self.settle(idx);
        self.mark_dirty(idx);
    }

    /// Every record of listener `lid` becomes a TCB (closing the listener aborts them).
    pub(super) fn syn_cache_revive_listener(&mut self, lid: ListenerId) {
        let quads: Vec<Quad> =
            self.syn_cache.records.values().filter(|r| r.lid == lid).map(|r| r.quad).collect();
        for q in quads {
            self.syn_cache_revive(q);
        }
    }
}

/// The RTO of the SYN-ACK after `retries` retransmissions (`Tcb::rto_timer` with no RTT
/// sample: the initial RTO backed off, plus `Config::rto_slop` once backed off).
fn synack_rto(cfg: &crate::Config, retries: u8) -> Duration {
    let mut rtt = crate::tcb::rtt::RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto);
    for _ in 0..retries {
        rtt.backoff();
    }
    if retries > 0 { (rtt.rto() + cfg.rto_slop).min(cfg.max_rto) } else { rtt.rto() }
}

/// The TCB as it would be after the record's SYN-ACKs (`Tcb::emit_syn`, `Tcb::on_rto`).
fn adopt_record(tcb: &mut Tcb, r: &SynRecord) {
    let owed = r.flags & F_OWED != 0;
    if r.retries == 0 && owed {
        return; // Nothing sent yet: the TCB sends its SYN-ACK itself.
    }
    let wnd = r.window as u32;
    tcb.send_syn = false;
    tcb.rcv.wnd = wnd;
    tcb.rcv_adv = tcb.rcv.nxt + wnd;
    tcb.last_ack_sent = tcb.rcv.nxt;
    tcb.ack_now = false;
    tcb.snd.nxt = r.iss + 1;
    tcb.snd_max = r.iss + 1;
    tcb.ip_id = r.ip_id;
    tcb.last_snd_time = r.first_sent;
    let k = u64::from(r.retries);
    tcb.retries = r.retries as u32;
    tcb.timeouts = k;
    tcb.retransmits = k.saturating_sub(owed as u64);
    for _ in 0..r.retries {
        tcb.rtt.backoff();
    }
    if r.retries > 0 {
        tcb.rtx_reason = crate::TxReason::SynRetransmit;
    } else if !tcb.ts_ok {
        tcb.rtt_timed = Some((r.iss, r.first_sent));
    }
    if owed {
        // On the RTO: "retransmit the SYN-ACK" is pending (Tcb::on_rto).
        tcb.send_syn = true;
        tcb.snd.nxt = r.iss;
        tcb.rtx_deadline = None;
    } else {
        tcb.rtx_deadline = Some(r.deadline);
    }
}

#[cfg(test)]
mod tests {
    use crate::seq::SeqNum;
    use crate::time::Instant;
    use crate::wire::{OptionLayout, TcpFlags, TcpHeaderOut, TcpOptions, TcpRepr, emit_ipv4_tcp};
    use crate::{Config, Stack};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    #[test]
    fn record_is_at_most_128_bytes() {
        assert!(
            std::mem::size_of::<super::SynRecord>() <= 128,
            "{}",
            std::mem::size_of::<super::SynRecord>()
        );
    }

    fn packet(port: u16, flags: TcpFlags, seq: u32, buf: &mut [u8]) -> usize {
        let h = TcpHeaderOut {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            tcp: TcpRepr {
                src_port: port,
                dst_port: 80,
                seq: SeqNum(seq),
                ack: SeqNum(0),
                flags,
                window: 1000,
                urgent: 0,
                options: TcpOptions::default(),
            },
            ttl: 64,
            ip_id: 0,
            flow_label: 0,
        };
        emit_ipv4_tcp(buf, &h, OptionLayout::Linux, &[]).unwrap()
    }

    /// SYN then RST from 10k ports while the driver never polls: every record goes, and
    /// the queue of owed SYN-ACKs stays bounded by the records, not by the churn.
    #[test]
    fn owed_synacks_stay_bounded_without_polling() {
        let mut stack = Stack::new(Config::deterministic(1));
        stack.listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80), 128).unwrap();
        let mut buf = [0u8; 128];
        let now = Instant::from_millis(1000);
        for port in 1000..11_000u16 {
            let n = packet(port, TcpFlags::SYN, 7, &mut buf);
            stack.handle_packet(now, &buf[..n]);
            assert_eq!(stack.syn_cache.len(), 1, "a record, not a TCB");
            let n = packet(port, TcpFlags::RST, 8, &mut buf);
            stack.handle_packet(now, &buf[..n]);
            assert!(stack.syn_cache.owed.len() <= 2 * stack.syn_cache.len() + 65);
        }
        assert_eq!(stack.connection_count(), 0);
    }
}
