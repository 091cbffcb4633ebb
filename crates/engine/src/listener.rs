//! A listener's SYN queue and SYN cookies (RFC 4987 §3.3, §3.4, §3.6; Linux's
//! `tcp_conn_request` / `cookie_v4_check` as the reference).
//!
//! - The accept queue (established, not yet accepted) is bounded by the listen backlog;
//!   when it is full, SYNs and cookie ACKs are dropped (ListenOverflows, ListenDrops).
//! - The SYN queue (SYN-RECEIVED) is bounded by min(backlog, `Config::syn_queue_len`). A
//!   SYN-RECEIVED entry is a compact record of at most 128 bytes (RFC 4987 §3.3 "SYN
//!   cache", `syncache.rs`); the TCB is built when the next segment of the handshake
//!   arrives, and its buffers on first use.
//! - When the SYN queue is full (or always, per `Config::syn_cookies`) the SYN is
//!   answered statelessly with a SYN cookie (`crate::syncookie`), and the TCB is created
//!   only by an ACK that carries a valid cookie.
//!
//! This is a child module of `stack` (it sees the Stack's private fields).

use super::Stack;
use crate::config::SynCookies;
use crate::seq::SeqNum;
use crate::syncookie;
use crate::tcb::Tcb;
use crate::time::{Duration, Instant};
use crate::wire::{DropReason, TcpFlags, TcpHeaderOut, TcpOptions, TcpSegment, emit_ip_tcp};
use crate::{Config, ListenerId, Quad};
use std::net::SocketAddr;

/// Cookie SYN-ACKs waiting for `poll_transmit`, at most. A flood that outruns the driver
/// loses the excess (counted in ListenDrops): no state grows with the attack.
pub(super) const COOKIE_QUEUE_CAP: usize = 1024;

/// A stateless SYN-ACK that carries a cookie.
pub(super) struct CookieSynAck {
    local: SocketAddr,
    remote: SocketAddr,
    iss: SeqNum,
    ack: SeqNum,
    window: u16,
    options: TcpOptions,
}

/// Where a SYN to a listener goes.
pub(super) enum Admit {
    /// A SYN-RECEIVED entry in the SYN queue.
    Queue,
    /// A stateless SYN-ACK with a cookie.
    Cookie,
    /// Nothing (counted).
    Drop,
}

impl Stack {
    /// RFC 4987 §3.3/§3.6: decide where a SYN for `lid` goes.
    pub(super) fn syn_admit(&mut self, lid: ListenerId) -> Admit {
        let Some(l) = self.listeners.get(lid.0 as usize).and_then(|l| l.as_ref()) else {
            return Admit::Drop;
        };
        if l.accept_queue.len() >= l.backlog {
            // Linux tcp_conn_request: "sk_acceptq_is_full" drops the SYN, cookies or not;
            // the peer retransmits.
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            self.counters.drop(DropReason::ListenOverflow);
            return Admit::Drop;
        }
        let syn_queue_full = l.embryonic >= l.backlog.min(self.config.syn_queue_len);
        match (self.config.syn_cookies, syn_queue_full) {
            (SynCookies::Always, _) | (SynCookies::OnOverflow, true) => Admit::Cookie,
            (SynCookies::Never, true) => {
                self.counters.listen_drops += 1;
                self.counters.drop(DropReason::ListenOverflow);
                Admit::Drop
            }
            _ => Admit::Queue,
        }
    }

    /// The configuration for a connection of listener `lid` (its SO_RCVBUF/SO_SNDBUF).
    pub(super) fn listener_config(&self, lid: ListenerId) -> Option<Config> {
        let l = self.listeners.get(lid.0 as usize)?.as_ref()?;
        if l.recv_buffer.is_none() && l.send_buffer.is_none() && l.ip_ttl_tos == (None, None) {
            return None;
        }
        let mut cfg = self.config.clone();
        cfg.ttl = l.ip_ttl_tos.0.unwrap_or(cfg.ttl);
        cfg.tos = l.ip_ttl_tos.1.unwrap_or(cfg.tos);
        cfg.recv_buffer = l.recv_buffer.unwrap_or(cfg.recv_buffer);
        cfg.send_buffer = l.send_buffer.unwrap_or(cfg.send_buffer);
        Some(cfg)
    }

    /// Answer `syn` with a cookie SYN-ACK (RFC 4987 §3.6): no state is kept.
    pub(super) fn send_syn_cookie(&mut self, now: Instant, lid: ListenerId, quad: Quad, syn: &TcpSegment) {
        if self.cookie_synacks.len() >= COOKIE_QUEUE_CAP {
            self.counters.listen_drops += 1;
            self.counters.drop(DropReason::ListenOverflow);
            return;
        }
        let cfg = &self.config;
        let l = self.listeners.get_mut(lid.0 as usize).and_then(|l| l.as_mut());
        let Some(l) = l else { return };
        let recv_cap = l.recv_buffer.unwrap_or(cfg.recv_buffer).max(1);
        let o = &syn.options;
        let idx = syncookie::mss_index(o.mss.unwrap_or(536));
        let keys = &mut self.cookie_keys;
        let iss = syncookie::encode_iss_cached(keys, &cfg.isn_secret, &quad, syn.seq, now, idx);
        let mut options = TcpOptions {
            mss: cfg.send_mss_option.then(|| cfg.mss_for(quad.local.ip())),
            ..TcpOptions::default()
        };
        // Window scale and SACK-permitted survive only inside the timestamp (RFC 7323 §3).
        if cfg.timestamps
            && let Some((tsval, _)) = o.timestamps
        {
            let wscale = o.window_scale.filter(|_| cfg.window_scale);
            let sack = cfg.sack && o.sack_permitted;
            options.window_scale = wscale.map(|_| cfg.wscale_for(recv_cap));
            options.sack_permitted = sack;
            // Our TSval clock as the TCB will run it (`Tcb::new`: offset = ISS rotated by 13).
            let ts_now = (now.millis() as u32).wrapping_add(iss.0.rotate_left(13));
            let bits = syncookie::encode_ts_options(wscale, sack);
            options.timestamps = Some((syncookie::cookie_tsval(ts_now, bits), tsval));
        }
        l.last_cookie = Some(now);
        self.counters.in_segs += 1;
        self.counters.syncookies_sent += 1;
        self.cookie_synacks.push_back(CookieSynAck {
            local: quad.local,
            remote: quad.remote,
            iss,
            ack: syn.seq + 1,
            window: recv_cap.min(65535) as u16,
            options,
        });
    }

    /// An ACK reached listener `lid` with no TCB: if it carries a valid cookie, create the
    /// connection. Returns false when the caller must answer per RFC 9293 §3.10.7.2 (RST).
    pub(super) fn syn_cookie_ack(
        &mut self,
        now: Instant,
        lid: ListenerId,
        quad: Quad,
        seg: &TcpSegment,
    ) -> bool {
        let mode = self.config.syn_cookies;
        if seg.flags.syn() || mode == SynCookies::Never {
            return false;
        }
        let Some(l) = self.listeners.get(lid.0 as usize).and_then(|l| l.as_ref()) else {
            return false;
        };
        // Linux's tcp_synq_no_recent_overflow: in OnOverflow mode, check cookies only while
        // cookies were sent in the last two periods; otherwise an ACK draws the RFC's RST.
        let window = Duration::from_secs(syncookie::PERIOD_SECS * syncookie::MAX_AGE_PERIODS);
        if mode == SynCookies::OnOverflow && l.last_cookie.is_none_or(|t| now.saturating_since(t) > window) {
            return false;
        }
        let (iss, irs) = (seg.ack - 1, seg.seq - 1);
        let secret = &self.config.isn_secret;
        let keys = &mut self.cookie_keys;
        let decoded = syncookie::decode_iss_cached(keys, secret, &quad, irs, now, iss).and_then(|idx| {
            match seg.options.timestamps.filter(|_| self.config.timestamps) {
                Some((_, ecr)) => syncookie::decode_ts_options(ecr).map(|o| (idx, o)),
                None => Some((idx, (None, false))),
            }
        });
        let Some((idx, (wscale, sack))) = decoded else {
            self.counters.syncookies_failed += 1;
            self.counters.drop(DropReason::BadCookie);
            return false;
        };
        self.counters.syncookies_recv += 1;
        if l.accept_queue.len() >= l.backlog {
            // Linux: a valid cookie that finds the accept queue full is dropped silently.
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            self.counters.drop(DropReason::ListenOverflow);
            return true;
        }
        let opts = syncookie::CookieOptions {
            mss: syncookie::MSS_TABLE[idx as usize],
            wscale,
            sack_permitted: sack,
        };
        self.open_from_cookie(now, lid, quad, seg, iss, opts);
        true
    }

    /// Rebuild the SYN-RECEIVED TCB the cookie stood for, then let it process the ACK
    /// (RFC 9293 §3.10.7.4 SYN-RECEIVED: the ACK moves it to ESTABLISHED).
    fn open_from_cookie(
        &mut self,
        now: Instant,
        lid: ListenerId,
        quad: Quad,
        seg: &TcpSegment,
        iss: SeqNum,
        o: syncookie::CookieOptions,
    ) {
        let ts = seg.options.timestamps.filter(|_| self.config.timestamps);
        let syn = TcpSegment {
            tcp: crate::wire::TcpRepr {
                flags: TcpFlags::SYN,
                seq: seg.seq - 1,
                ack: SeqNum(0),
                options: TcpOptions {
                    mss: Some(o.mss),
                    window_scale: o.wscale,
                    sack_permitted: o.sack_permitted,
                    timestamps: ts.map(|(val, _)| (val, 0)),
                    ..TcpOptions::default()
                },
                ..seg.tcp
            },
            payload: &[],
            ..*seg
        };
        self.counters.passive_opens += 1;
        let idx = self.new_syn_received(now, lid, quad, iss, &syn, |tcb| tcb.adopt_cookie_synack(iss));
        if let Some(Some(r)) = self.with_tcb(idx, |t, cx| t.on_segment(cx, now, seg)) {
            self.queue_reply(quad, r, crate::TxReason::ConnectionRst);
        }
    }

    /// Emit one queued cookie SYN-ACK.
    pub(super) fn emit_cookie_synack(&mut self, c: &CookieSynAck, buf: &mut [u8]) -> Option<usize> {
        self.reply_ip_id = self.reply_ip_id.wrapping_add(1);
        let h = TcpHeaderOut {
            tcp: crate::wire::TcpRepr {
                src_port: c.local.port(),
                dst_port: c.remote.port(),
                seq: c.iss,
                ack: c.ack,
                flags: TcpFlags::SYN | TcpFlags::ACK,
                window: c.window,
                urgent: 0,
                options: c.options,
            },
            src: c.local.ip(),
            dst: c.remote.ip(),
            ttl: self.config.ttl,
            ip_id: self.reply_ip_id,
            // RFC 6437: the label the connection will keep (crate::flow_label).
            flow_label: crate::flow_label::flow_label(
                &self.config.isn_secret,
                &Quad { local: c.local, remote: c.remote },
            ),
        };
        let n = emit_ip_tcp(buf, &h, self.config.option_layout, &[])?;
        self.stamp_stateless(&mut buf[..n]); // Config::tos, DF (icmp_demux.rs)
        self.counters.out_segs += 1;
        Some(n)
    }

    /// Cookie SYN-ACKs not yet transmitted.
    pub fn pending_cookie_synacks(&self) -> usize {
        self.cookie_synacks.len()
    }
}

impl Tcb {
    /// The state a SYN-RECEIVED TCB would have right after sending the cookie SYN-ACK.
    fn adopt_cookie_synack(&mut self, iss: SeqNum) {
        self.send_syn = false;
        self.snd.nxt = iss + 1;
        self.snd_max = iss + 1;
        self.rcv.wnd = (self.recvbuf.window() as u32).min(65535);
        self.rcv_adv = self.rcv.nxt + self.rcv.wnd;
        self.last_ack_sent = self.rcv.nxt;
    }
}
