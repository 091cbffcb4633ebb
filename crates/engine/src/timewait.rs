//! TIME-WAIT as a compact record (RFC 9293 §3.4.2, §3.10.7.4), kept in its own bounded
//! table like Linux's `inet_timewait_sock` and `tcp_max_tw_buckets`.
//!
//! A connection in TIME-WAIT only has to answer for its old sequence space for 2 MSL: ACK a
//! retransmitted FIN (restarting the timer), challenge or ACK other segments, close on an
//! acceptable RST (unless RFC 1337), and let a new SYN reopen the quad (RFC 1122 §4.2.2.13,
//! RFC 6191). None of that needs the send or receive buffers, the reassembly queue, the SACK
//! scoreboard or the congestion state. Once the user has released its handle and the last
//! ACK is out, the Stack turns the TCB into a `TwRecord` (at most 128 bytes with its key,
//! asserted below) and frees everything else.
//!
//! A segment for a parked quad rebuilds a TCB from the record (`TwRecord::revive`), so the
//! very same RFC 9293 §3.10.7.4 code (and `Config::time_wait_bsd`, `Config::rfc1337`) decides
//! what happens; the Stack parks it again once its reply is sent. Records expire in FIFO order
//! of their deadlines (all are 2 MSL long; a restarted timer re-queues its record).
//!
//! When the table holds `Config::max_time_wait` records, a connection that would enter it is
//! closed at once instead (no TIME-WAIT) and `Counters::tw_overflow` counts it, as Linux does
//! ("TCP: time wait bucket table overflow", TCPTimeWaitOverflow).

use crate::seq::SeqNum;
use crate::stack::QuadHasherBuilder;
use crate::tcb::reassembly::RecvBuffer;
use crate::tcb::{State, Tcb};
use crate::time::Instant;
use crate::{Config, ConnId, Quad};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// An IPv4 quad in 12 bytes (the engine's wire layer is IPv4; other quads are not parked).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct TwKey {
    local_ip: u32,
    remote_ip: u32,
    local_port: u16,
    remote_port: u16,
}

impl TwKey {
    pub(crate) fn from_quad(q: &Quad) -> Option<TwKey> {
        match (q.local.ip(), q.remote.ip()) {
            (IpAddr::V4(l), IpAddr::V4(r)) => Some(TwKey {
                local_ip: l.to_bits(),
                remote_ip: r.to_bits(),
                local_port: q.local.port(),
                remote_port: q.remote.port(),
            }),
            _ => None,
        }
    }

    pub(crate) fn quad(&self) -> Quad {
        Quad {
            local: SocketAddr::new(IpAddr::V4(Ipv4Addr::from_bits(self.local_ip)), self.local_port),
            remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::from_bits(self.remote_ip)), self.remote_port),
        }
    }
}

/// Option and mode bits of a `TwRecord`.
mod bits {
    pub const TS_OK: u8 = 1;
    pub const SACK_OK: u8 = 2;
    pub const WSCALE_OK: u8 = 4;
    pub const READ_SHUT: u8 = 8;
    pub const FULL_SPACE: u8 = 16;
}

/// What RFC 9293 §3.10.7.4 TIME-WAIT processing, RFC 7323 PAWS, RFC 6191 reincarnation and
/// the ACK we may owe need from a closed connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TwRecord {
    /// End of the 2 MSL timeout (RFC 9293 §3.4.2).
    deadline: Instant,
    /// When TS.Recent was last updated (PAWS idle rule, RFC 7323 §5.5).
    ts_recent_stamp: Instant,
    /// The connection's handle, for `Event::StateChange` traces.
    id: ConnId,
    /// SND.UNA = SND.MAX: our FIN is acknowledged.
    snd_una: SeqNum,
    snd_wnd: u32,
    snd_wl1: SeqNum,
    snd_wl2: SeqNum,
    max_snd_wnd: u32,
    /// RCV.NXT, one past the peer's FIN.
    rcv_nxt: SeqNum,
    /// Right edge of the window last advertised (RFC 9293 §3.8.6.2.2).
    rcv_adv: SeqNum,
    /// Receive-buffer capacity: the window the ACK advertises.
    rcv_space: u32,
    /// TS.Recent (RFC 7323 §4.3).
    ts_recent: u32,
    ts_offset: u32,
    last_ack_sent: SeqNum,
    rcv_mss: u16,
    snd_mss: u16,
    ip_id: u16,
    rcv_wscale: u8,
    snd_wscale: u8,
    bits: u8,
}

/// Key, record and expiry entry: the TIME-WAIT memory of one connection (the hash table's
/// control bytes and spare slots come on top).
pub const TIME_WAIT_RECORD_BYTES: usize = core::mem::size_of::<TwKey>()
    + core::mem::size_of::<TwRecord>()
    + core::mem::size_of::<(Instant, TwKey)>();
const _: () = assert!(TIME_WAIT_RECORD_BYTES <= 128);

impl TwRecord {
    /// Compact a TCB in TIME-WAIT whose FIN is acknowledged; `None` otherwise.
    pub(crate) fn from_tcb(t: &Tcb) -> Option<TwRecord> {
        if t.state != State::TimeWait || !t.fin_acked_flag {
            return None;
        }
        let flag = |b: bool, v: u8| if b { v } else { 0 };
        Some(TwRecord {
            deadline: t.timewait_deadline?,
            ts_recent_stamp: t.ts_recent_stamp,
            id: t.id,
            snd_una: t.snd.una,
            snd_wnd: t.snd.wnd,
            snd_wl1: t.snd.wl1,
            snd_wl2: t.snd.wl2,
            max_snd_wnd: t.max_snd_wnd,
            rcv_nxt: t.rcv.nxt,
            rcv_adv: t.rcv_adv,
            rcv_space: u32::try_from(t.recvbuf.capacity()).ok()?,
            ts_recent: t.ts_recent,
            ts_offset: t.ts_offset,
            last_ack_sent: t.last_ack_sent,
            rcv_mss: t.rcv_mss,
            snd_mss: t.snd_mss,
            ip_id: t.ip_id,
            rcv_wscale: t.rcv_wscale,
            snd_wscale: t.snd_wscale,
            bits: flag(t.ts_ok, bits::TS_OK)
                | flag(t.sack_ok, bits::SACK_OK)
                | flag(t.wscale_ok, bits::WSCALE_OK)
                | flag(t.read_shut, bits::READ_SHUT)
                | flag(t.full_space, bits::FULL_SPACE),
        })
    }

    pub(crate) fn id(&self) -> ConnId {
        self.id
    }

    /// Rebuild a TCB in TIME-WAIT (no buffer storage, no timers but the 2 MSL one) so that a
    /// segment gets the full RFC 9293 §3.10.7.4 treatment.
    pub(crate) fn revive(&self, cfg: &Config, id: ConnId, quad: Quad, now: Instant) -> Tcb {
        let has = |b: u8| self.bits & b != 0;
        let mut t = Tcb::new(cfg, id, quad, self.snd_una - 1, now, State::TimeWait);
        // The FIN (at SND.UNA - 1) and everything before it are acknowledged.
        t.snd.una = self.snd_una;
        t.snd.nxt = self.snd_una;
        t.snd.up = self.snd_una;
        t.snd.wnd = self.snd_wnd;
        t.snd.wl1 = self.snd_wl1;
        t.snd.wl2 = self.snd_wl2;
        t.snd_max = self.snd_una;
        t.snd_sml = self.snd_una;
        t.max_snd_wnd = self.max_snd_wnd;
        t.rcv.nxt = self.rcv_nxt;
        t.rcv.up = self.rcv_nxt;
        t.rcv.irs = self.rcv_nxt - 2;
        t.rcv_adv = self.rcv_adv;
        t.rcv_mss = self.rcv_mss;
        t.snd_mss = self.snd_mss;
        t.rcv_wscale = self.rcv_wscale;
        t.snd_wscale = self.snd_wscale;
        t.wscale_ok = has(bits::WSCALE_OK);
        t.sack_ok = has(bits::SACK_OK);
        t.ts_ok = has(bits::TS_OK);
        t.ts_recent = self.ts_recent;
        t.ts_recent_stamp = self.ts_recent_stamp;
        t.ts_offset = self.ts_offset;
        t.last_ack_sent = self.last_ack_sent;
        t.recvbuf = RecvBuffer::with_limits(self.rcv_space as usize, 0);
        t.fin_queued = true;
        t.fin_acked_flag = true;
        t.fin_rcvd = true;
        t.fin_seq_rcvd = Some(self.rcv_nxt - 1);
        t.read_shut = has(bits::READ_SHUT);
        t.full_space = has(bits::FULL_SPACE);
        t.user_closed = true;
        t.timewait_deadline = Some(self.deadline);
        t.handshake_deadline = None;
        t.keepalive = None;
        t.ip_id = self.ip_id;
        t
    }
}

/// The TIME-WAIT table: records by quad, and their deadlines in FIFO order.
pub(crate) struct TimeWaitTable {
    map: HashMap<TwKey, TwRecord, QuadHasherBuilder>,
    /// (deadline, key) in insertion order; an entry whose record is gone or carries another
    /// deadline is stale and skipped.
    expiry: VecDeque<(Instant, TwKey)>,
}

impl TimeWaitTable {
    pub(crate) fn new(hasher: QuadHasherBuilder) -> TimeWaitTable {
        TimeWaitTable { map: HashMap::with_hasher(hasher), expiry: VecDeque::new() }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn contains(&self, q: &Quad) -> bool {
        !self.map.is_empty() && TwKey::from_quad(q).is_some_and(|k| self.map.contains_key(&k))
    }

    /// Remove and return the record of `q`, if parked.
    pub(crate) fn take(&mut self, q: &Quad) -> Option<TwRecord> {
        if self.map.is_empty() {
            return None;
        }
        self.map.remove(&TwKey::from_quad(q)?)
    }

    /// Park a record. The caller has checked the bound (`Config::max_time_wait`).
    pub(crate) fn insert(&mut self, key: TwKey, rec: TwRecord) {
        self.map.insert(key, rec);
        self.expiry.push_back((rec.deadline, key));
        // Stale entries (records revived and re-parked) are collected once they outnumber
        // the live ones, so the queue stays within twice the table.
        if self.expiry.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.expiry.retain(|(d, k)| map.get(k).is_some_and(|r| r.deadline == *d));
        }
    }

    /// The earliest live deadline (stale queue entries in front are dropped).
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&(d, k)) = self.expiry.front() {
            if self.map.get(&k).is_some_and(|r| r.deadline == d) {
                return Some(d);
            }
            self.expiry.pop_front();
        }
        None
    }

    /// RFC 9293 §3.10.8: "If the time-wait timeout expires on a connection, delete the TCB."
    /// Calls `f` for every record that expired at or before `now`.
    pub(crate) fn expire(&mut self, now: Instant, mut f: impl FnMut(TwKey, TwRecord)) {
        while let Some(&(d, k)) = self.expiry.front() {
            if d > now {
                break;
            }
            self.expiry.pop_front();
            if self.map.get(&k).is_some_and(|r| r.deadline == d)
                && let Some(r) = self.map.remove(&k)
            {
                f(k, r);
            }
        }
        if self.map.is_empty() {
            // Give the memory of a burst back (RSS must come down after load).
            self.expiry = VecDeque::new();
            self.map.shrink_to_fit();
        } else if self.map.capacity() > 4 * self.map.len().max(1024) {
            self.map.shrink_to(2 * self.map.len());
            self.expiry.shrink_to(2 * self.map.len());
        }
    }

    /// Every parked connection (for `Stack::connections`).
    pub(crate) fn quads(&self) -> impl Iterator<Item = Quad> + '_ {
        self.map.keys().map(TwKey::quad)
    }
}
