//! The user calls of RFC 9293 §3.10.1-3.10.6 on a [`Stack`]: OPEN (passive: `listen`,
//! `listen_any`; active: `connect`), SEND, RECEIVE, CLOSE, ABORT and STATUS, plus the
//! socket options and the handshake gate. A child module of `stack.rs`, so it sees the
//! Stack's private state; the packet path stays in `stack.rs`.

use super::*;
use crate::error::{ConnectError, ListenError, RecvError, SendError};

impl Stack {
    /// OPEN, passive (RFC 9293 §3.10.1). Port 0 picks an ephemeral port.
    pub fn listen(&mut self, local: SocketAddr, backlog: usize) -> Result<ListenerId, ListenError> {
        if !self.is_local_ip(local.ip()) {
            return Err(ListenError::AddrNotAvailable);
        }
        let mut local = local;
        if local.port() == 0 {
            local.set_port(self.pick_port(local, None).ok_or(ListenError::NoFreePort)?);
        }
        if self.listen_map.contains_key(&ListenAddr(local)) {
            return Err(ListenError::AddrInUse);
        }
        let id = self.add_listener(local, backlog);
        self.listen_map.insert(ListenAddr(local), id);
        Ok(id)
    }

    /// OPEN, passive, for any destination address and port that `filter` takes (any-IP
    /// termination, see `anyip.rs`). Packets to those addresses are accepted even though
    /// they are not local addresses; each accepted connection's `local_addr` is the
    /// destination the peer connected to. Exact and wildcard-address listeners win over
    /// it. At most one any-IP listener per stack (`AddrInUse`).
    pub fn listen_any(&mut self, filter: AnyIpFilter, backlog: usize) -> Result<ListenerId, ListenError> {
        if self.any_ip.is_some() {
            return Err(ListenError::AddrInUse);
        }
        let unspecified = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);
        let id = self.add_listener(unspecified, backlog);
        self.any_ip = Some((id, filter));
        Ok(id)
    }

    fn add_listener(&mut self, addr: SocketAddr, backlog: usize) -> ListenerId {
        let backlog = if backlog == 0 { self.config.default_backlog } else { backlog };
        let l = Listener {
            addr,
            gated: false,
            backlog,
            embryonic: 0,
            accept_queue: VecDeque::new(),
            recv_buffer: None,
            send_buffer: None,
            last_cookie: None,
            ip_ttl_tos: (None, None),
        };
        match self.listeners.iter().position(|l| l.is_none()) {
            Some(i) => {
                self.listeners[i] = Some(l);
                ListenerId(i as u32)
            }
            None => {
                self.listeners.push(Some(l));
                ListenerId((self.listeners.len() - 1) as u32)
            }
        }
    }

    fn listener(&self, l: ListenerId) -> io::Result<&Listener> {
        self.listeners
            .get(l.0 as usize)
            .and_then(|l| l.as_ref())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such listener"))
    }

    /// The address a listener is bound to.
    pub fn listener_addr(&self, l: ListenerId) -> io::Result<SocketAddr> {
        Ok(self.listener(l)?.addr)
    }

    /// Buffer sizes for connections this listener accepts from now on (SO_RCVBUF/SO_SNDBUF).
    pub fn set_listener_buffer_sizes(
        &mut self,
        l: ListenerId,
        recv: Option<usize>,
        send: Option<usize>,
    ) -> io::Result<()> {
        self.listener(l)?;
        if let Some(Some(li)) = self.listeners.get_mut(l.0 as usize) {
            li.recv_buffer = recv.or(li.recv_buffer);
            li.send_buffer = send.or(li.send_buffer);
        }
        Ok(())
    }

    /// Take an established connection from the listener's queue (`WouldBlock` if none).
    #[must_use = "an accepted connection must be used or closed, or it leaks until the peer gives up"]
    pub fn accept(&mut self, l: ListenerId) -> io::Result<(ConnId, SocketAddr)> {
        let li = self
            .listeners
            .get_mut(l.0 as usize)
            .and_then(|l| l.as_mut())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such listener"))?;
        let c = li.accept_queue.pop_front().ok_or(io::ErrorKind::WouldBlock)?;
        let idx = self.slot_index(c)?;
        let slot = &mut self.slots[idx as usize];
        slot.stage = Stage::User;
        let remote = slot.tcb.as_ref().map(|t| t.quad.remote).ok_or(io::ErrorKind::NotConnected)?;
        Ok((c, remote))
    }

    /// Gate the handshake of `l`'s connections: a SYN is held, without an answer, and
    /// reported as `Event::SynArrived(l)` (then `Stack::poll_held_syn`) until [`Stack::accept_syn`] or
    /// [`Stack::refuse_syn`] decides (see `gate.rs`).
    pub fn set_handshake_gate(&mut self, l: ListenerId, on: bool) -> io::Result<()> {
        self.listener(l)?;
        if let Some(Some(li)) = self.listeners.get_mut(l.0 as usize) {
            li.gated = on;
        }
        Ok(())
    }

    /// The oldest SYN held for `l` that was not handed out yet, as the connection it
    /// asks for. Each held SYN is handed out once; it stays held until decided.
    #[must_use = "a held SYN must be answered with `accept_syn` or `refuse_syn`"]
    pub fn poll_held_syn(&mut self, l: ListenerId) -> Option<Quad> {
        self.gate.poll(l)
    }

    /// Answer a held SYN: the handshake goes on as for any passive open (RFC 9293
    /// §3.10.7.2) and the connection reaches `accept` once established. `NotFound` if no
    /// SYN is held for `quad`.
    ///
    /// Admission is that of any SYN: with the accept queue full the SYN is dropped (counted
    /// `ListenOverflow`) and this returns `WouldBlock`, so that the caller can release what
    /// it prepared for the connection (`utcp forward`: the upstream connection); the peer
    /// retransmits the SYN and it is held again.
    ///
    /// If the quad got a connection while this SYN was held (a retransmission of a SYN
    /// answered earlier with a SYN cookie, whose handshake then completed), that
    /// connection stands and reaches `accept`; the held SYN is dropped (counted as
    /// `Ignored`) rather than replacing it with a second SYN-RECEIVED TCB.
    pub fn accept_syn(&mut self, now: Instant, quad: Quad) -> io::Result<()> {
        let h = self.gate.take(&quad).ok_or(io::ErrorKind::NotFound)?;
        if self.conns.contains_key(&quad) || self.syn_cache.contains(&quad) {
            self.counters.drop(crate::wire::DropReason::Ignored);
            return Ok(());
        }
        let seg = h.segment(&quad);
        // The LISTEN checks passed when the SYN was held; admit it as any passive open
        // (with the ISS a TIME-WAIT reuse requires, RFC 6191).
        match self.admit_syn(now, h.listener, quad, &seg, h.iss) {
            super::listener::Admit::Drop => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "accept queue full: the SYN was dropped (the peer retransmits it)",
            )),
            _ => Ok(()),
        }
    }

    /// Refuse a held SYN with <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>, as a closed port
    /// would (RFC 9293 §3.10.7.1): the peer's connect fails with "connection refused".
    pub fn refuse_syn(&mut self, quad: Quad) -> io::Result<()> {
        let h = self.gate.take(&quad).ok_or(io::ErrorKind::NotFound)?;
        let rst = RstReply { seq: SeqNum(0), ack: Some(h.segment(&quad).seq + 1) };
        self.queue_reply(quad, rst, crate::TxReason::NoConnectionRst);
        Ok(())
    }

    /// Number of connections waiting in `accept`.
    #[must_use]
    pub fn accept_queue_len(&self, l: ListenerId) -> usize {
        self.listener(l).map(|l| l.accept_queue.len()).unwrap_or(0)
    }

    /// Stop listening; connections not yet accepted are reset.
    pub fn close_listener(&mut self, l: ListenerId) {
        self.syn_cache_revive_listener(l); // SYN cache records become TCBs, aborted below.
        let Some(li) = self.listeners.get_mut(l.0 as usize).and_then(|x| x.take()) else {
            return;
        };
        if self.any_ip.as_ref().is_some_and(|(id, _)| *id == l) {
            self.any_ip = None;
        } else {
            self.listen_map.remove(&ListenAddr(li.addr));
        }
        for (quad, seq) in self.gate.drain(l) {
            self.queue_reply(
                quad,
                RstReply { seq: SeqNum(0), ack: Some(seq + 1) },
                crate::TxReason::NoConnectionRst,
            );
        }
        let mut victims: Vec<u32> = li.accept_queue.iter().map(|c| c.index).collect();
        for (i, s) in self.slots.iter().enumerate() {
            if s.stage == Stage::Embryonic(l) && s.tcb.is_some() {
                victims.push(i as u32);
            }
        }
        for idx in victims {
            self.slots[idx as usize].stage = Stage::Orphan;
            self.with_tcb(idx, |tcb, cx| tcb.user_abort(cx));
        }
    }

    fn is_local_ip(&self, ip: IpAddr) -> bool {
        ip.is_unspecified() || self.local_addrs.is_empty() || self.local_addrs.contains(&ip)
    }

    /// A free ephemeral port for `local` (and `remote`, for a connect); `None` when every
    /// port of `Config::ephemeral_ports` is taken.
    fn pick_port(&mut self, local: SocketAddr, remote: Option<SocketAddr>) -> Option<u16> {
        let (lo, hi) = self.config.ephemeral_ports;
        let span = (hi.saturating_sub(lo) as u32 + 1).max(1);
        for _ in 0..span {
            let p = self.next_port;
            self.next_port = if p >= hi || p < lo { lo } else { p + 1 };
            let cand = SocketAddr::new(local.ip(), p);
            if self.find_bound_listener(cand).is_some() {
                continue;
            }
            if let Some(r) = remote
                && (self.conns.contains_key(&Quad { local: cand, remote: r })
                    || self.time_wait.contains(&Quad { local: cand, remote: r }))
            {
                continue;
            }
            if remote.is_none()
                && (self.conns.keys().any(|q| q.local.port() == p)
                    || self.time_wait.quads().any(|q| q.local.port() == p))
            {
                continue;
            }
            return Some(p);
        }
        None
    }

    /// OPEN, active (RFC 9293 §3.10.1): send a SYN. Port 0 picks an ephemeral port and an
    /// unspecified local address picks the first local address.
    pub fn connect(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<ConnId, ConnectError> {
        // "If the foreign socket is unspecified, then return 'error: foreign socket unspecified'"
        if remote.ip().is_unspecified() || remote.port() == 0 {
            return Err(ConnectError::InvalidAddress);
        }
        // MUST-46 (RFC 9293 §3.9.1.3 / RFC 1122 §4.2.3.10): no connection to a broadcast or
        // multicast address.
        let group = match remote.ip() {
            IpAddr::V4(a) => a.is_broadcast() || a.is_multicast(),
            IpAddr::V6(a) => a.is_multicast(),
        };
        if group {
            return Err(ConnectError::InvalidAddress);
        }
        if !self.is_local_ip(local.ip()) {
            return Err(ConnectError::AddrNotAvailable);
        }
        let mut local = local;
        if local.ip().is_unspecified() {
            let ip = self.local_addrs.iter().find(|a| a.is_ipv4() == remote.is_ipv4()).copied();
            local.set_ip(ip.ok_or(ConnectError::AddrNotAvailable)?);
        }
        if local.port() == 0 {
            local.set_port(self.pick_port(local, Some(remote)).ok_or(ConnectError::NoFreePort)?);
        }
        let quad = Quad { local, remote };
        // "error: connection already exists"
        let taken = self.time_wait.contains(&quad) || self.syn_cache.contains(&quad);
        if self.conns.contains_key(&quad) || taken {
            return Err(ConnectError::ConnectionAlreadyExists);
        }
        let iss = isn::initial_sequence_number(&self.config.isn_secret, &quad, now);
        let idx = self.alloc_slot(Stage::User);
        let id = self.conn_id(idx);
        let mut tcb = Tcb::new_active(&self.config, id, quad, iss, now);
        tcb.attach_pool(&self.mem);
        self.slots[idx as usize].tcb = Some(Box::new(tcb));
        self.conns.insert(quad, idx);
        self.counters.active_opens += 1;
        if self.config.trace_states {
            self.events.push_back(Event::StateChange {
                conn: id,
                quad,
                from: State::Closed,
                to: State::SynSent,
            });
        }
        self.settle(idx);
        self.mark_dirty(idx);
        Ok(id)
    }

    /// Run `f` on a live TCB with a context, then settle and mark it for output.
    pub(super) fn with_tcb<R>(&mut self, idx: u32, f: impl FnOnce(&mut Tcb, &mut Cx) -> R) -> Option<R> {
        let r = {
            let slot = &mut self.slots[idx as usize];
            let tcb = slot.tcb.as_mut()?;
            let mut cx = Cx {
                cfg: &self.config,
                counters: &mut self.counters,
                events: &mut self.events,
                challenge_budget: &mut self.challenge_budget,
                partial_csum: false,
                wrote_partial: false,
            };
            f(tcb, &mut cx)
        };
        self.settle(idx);
        self.mark_dirty(idx);
        Some(r)
    }

    /// SEND (RFC 9293 §3.10.2): queue bytes; `WouldBlock` when the buffer is full.
    pub fn send(&mut self, c: ConnId, data: &[u8]) -> Result<usize, SendError> {
        let idx = self.slot_index(c).map_err(|_| SendError::ConnectionDoesNotExist)?;
        self.with_tcb(idx, |t, _| t.user_send(data)).unwrap_or(Err(SendError::ConnectionDoesNotExist))
    }

    /// SEND with the URGENT flag (RFC 9293 §3.8.5, §3.10.2; MSG_OOB): queue `data` and
    /// point SND.UP after it (RFC 6093), so segments carry URG until it is acknowledged.
    pub fn send_urgent(&mut self, c: ConnId, data: &[u8]) -> Result<usize, SendError> {
        let idx = self.slot_index(c).map_err(|_| SendError::ConnectionDoesNotExist)?;
        self.with_tcb(idx, |t, _| t.user_send_urgent(data)).unwrap_or(Err(SendError::ConnectionDoesNotExist))
    }

    /// SEND without a copy (zero-copy, smoltcp's model): `f` writes straight into the send
    /// ring's free space and returns how many bytes it wrote; those are queued as by
    /// [`Stack::send`]. The space offered is contiguous, so it may be less than the free
    /// space where the ring wraps (call again). Errors as `send`; `f` is not called then.
    pub fn send_with(&mut self, c: ConnId, f: impl FnOnce(&mut [u8]) -> usize) -> Result<usize, SendError> {
        let idx = self.slot_index(c).map_err(|_| SendError::ConnectionDoesNotExist)?;
        self.with_tcb(idx, |t, _| t.user_send_with(f)).unwrap_or(Err(SendError::ConnectionDoesNotExist))
    }

    /// RECEIVE (RFC 9293 §3.10.3): `Ok(0)` is end of stream, `WouldBlock` means no data yet.
    pub fn recv(&mut self, c: ConnId, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.recv_by(c, |t| t.user_recv(buf, false))
    }

    /// RECEIVE without a copy: `f` sees the readable bytes (up to the ring's wrap point, so
    /// call again for the rest) and returns how many it consumed; the window opens as after
    /// [`Stack::recv`]. End of stream is `Ok(0)` without calling `f`; errors as `recv`.
    pub fn recv_with(&mut self, c: ConnId, f: impl FnOnce(&[u8]) -> usize) -> Result<usize, RecvError> {
        self.recv_by(c, |t| t.user_recv_with(f))
    }

    /// Run a consuming RECEIVE on `c`'s TCB, then release a closed connection's last ring
    /// and announce the opened window (RFC 9293 §3.8.6.2.2).
    fn recv_by(
        &mut self,
        c: ConnId,
        read: impl FnOnce(&mut Tcb) -> Result<usize, RecvError>,
    ) -> Result<usize, RecvError> {
        let idx = self.slot_index(c).map_err(|_| RecvError::ConnectionDoesNotExist)?;
        let slot = &mut self.slots[idx as usize];
        let tcb = slot.tcb.as_mut().ok_or(RecvError::ConnectionDoesNotExist)?;
        let r = read(tcb);
        if matches!(r, Ok(n) if n > 0) {
            if matches!(tcb.state, State::Closed | State::TimeWait) {
                // The last unread data of a closed connection: its ring goes at once.
                tcb.release_closed_buffers();
            }
            tcb.after_user_read(&self.config);
            if tcb.ack_now || tcb.window_update_deferred {
                self.mark_dirty(idx);
            }
        }
        r
    }

    /// RECEIVE without consuming (MSG_PEEK).
    pub fn peek(&mut self, c: ConnId, buf: &mut [u8]) -> Result<usize, RecvError> {
        let idx = self.slot_index(c).map_err(|_| RecvError::ConnectionDoesNotExist)?;
        let tcb = self.slots[idx as usize].tcb.as_mut().ok_or(RecvError::ConnectionDoesNotExist)?;
        tcb.user_recv(buf, true)
    }

    /// Half or full shutdown. `Write` sends a FIN after queued data; `Read` makes reads
    /// return end of stream.
    pub fn shutdown(&mut self, c: ConnId, how: Shutdown) -> io::Result<()> {
        let idx = self.slot_index(c)?;
        let state = self.tcb(c)?.state;
        if state == State::Closed {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "not connected"));
        }
        self.with_tcb(idx, |t, cx| {
            if matches!(how, Shutdown::Read | Shutdown::Both) {
                t.user_shutdown_read();
            }
            if matches!(how, Shutdown::Write | Shutdown::Both) {
                t.user_shutdown_write(cx);
            }
        });
        Ok(())
    }

    /// CLOSE (RFC 9293 §3.10.4) and release the handle. The connection finishes in the
    /// background (FIN, TIME-WAIT); unread data turns it into a RST (RFC 2525 §2.17).
    pub fn close(&mut self, c: ConnId) {
        self.release_handle(c, Tcb::user_close);
    }

    /// ABORT (RFC 9293 §3.10.5): RST and release the handle.
    pub fn abort(&mut self, c: ConnId) {
        self.release_handle(c, Tcb::user_abort);
    }

    /// Hand `c` to the engine (orphan) and run CLOSE or ABORT on it; a connection already
    /// CLOSED is freed at once.
    fn release_handle(&mut self, c: ConnId, call: impl FnOnce(&mut Tcb, &mut Cx)) {
        let Ok(idx) = self.slot_index(c) else { return };
        self.slots[idx as usize].stage = Stage::Orphan;
        if self.slots[idx as usize].tcb.as_ref().is_some_and(|t| t.state == State::Closed) {
            self.free_slot(idx);
            return;
        }
        self.with_tcb(idx, call);
    }

    /// STATUS (RFC 9293 §3.10.6).
    /// Why the segment that the last [`Stack::poll_transmit`] returned was sent
    /// (`utcp sim --explain`; see [`crate::explain`]).
    #[must_use]
    pub fn last_tx_reason(&self) -> crate::TxReason {
        self.last_tx_reason
    }

    /// STATUS (RFC 9293 §3.10.6): a snapshot of the TCB.
    ///
    /// Errors: `NotConnected` if `c` is stale or released.
    pub fn status(&self, c: ConnId) -> io::Result<Status> {
        Ok(self.tcb(c)?.status())
    }

    /// The connection's RFC 9293 §3.3.2 state; `None` if `c` is stale or released.
    #[must_use]
    pub fn state(&self, c: ConnId) -> Option<State> {
        self.tcb(c).ok().map(|t| t.state)
    }

    /// TCP_NODELAY: turn Nagle's algorithm off (true) or on.
    pub fn set_nodelay(&mut self, c: ConnId, on: bool) -> io::Result<()> {
        let idx = self.slot_index(c)?;
        if let Some(t) = self.slots[idx as usize].tcb.as_mut() {
            t.nodelay = on;
        }
        self.mark_dirty(idx);
        Ok(())
    }

    /// R2 for one connection (RFC 9293 §3.8.3, MUST-21): data retransmissions before the
    /// connection is given up with `TimedOut`.
    pub fn set_data_retries(&mut self, c: ConnId, retries: u32) -> io::Result<()> {
        let idx = self.slot_index(c)?;
        if let Some(t) = self.slots[idx as usize].tcb.as_mut() {
            t.data_retries = retries;
        }
        Ok(())
    }

    /// USER TIMEOUT (RFC 9293 §3.8.3, RFC 5482; TCP_USER_TIMEOUT): abort with `TimedOut`
    /// when data stays unacknowledged this long; `None` leaves it to R2.
    pub fn set_user_timeout(&mut self, c: ConnId, timeout: Option<Duration>) -> io::Result<()> {
        let idx = self.slot_index(c)?;
        if let Some(t) = self.slots[idx as usize].tcb.as_mut() {
            t.user_timeout.limit = timeout;
        }
        Ok(())
    }

    /// Whether Nagle's algorithm (RFC 9293 §3.7.4) is off. Errors: `NotConnected` for a stale `c`.
    pub fn nodelay(&self, c: ConnId) -> io::Result<bool> {
        Ok(self.tcb(c)?.nodelay)
    }

    /// SO_KEEPALIVE with its timing; `None` turns keepalive off.
    pub fn set_keepalive(&mut self, c: ConnId, ka: Option<Keepalive>) -> io::Result<()> {
        let idx = self.slot_index(c)?;
        let now = self.slots[idx as usize].tcb.as_ref().map(|t| t.last_rcv_time).unwrap_or_default();
        self.with_tcb(idx, |t, cx| {
            t.keepalive = ka;
            t.keepalive_sent = 0;
            t.update_keepalive(cx, now);
        });
        Ok(())
    }

    /// SO_RCVBUF / SO_SNDBUF. Before the handshake the receive size also decides the
    /// window scale we offer.
    pub fn set_buffer_sizes(
        &mut self,
        c: ConnId,
        recv: Option<usize>,
        send: Option<usize>,
    ) -> io::Result<()> {
        let idx = self.slot_index(c)?;
        if let Some(t) = self.slots[idx as usize].tcb.as_mut() {
            if let Some(r) = recv {
                t.recvbuf.set_capacity(r.max(1));
            }
            if let Some(s) = send {
                t.sendbuf.set_capacity(s.max(1));
            }
        }
        self.mark_dirty(idx);
        Ok(())
    }

    /// (receive, send) buffer capacities.
    pub fn buffer_sizes(&self, c: ConnId) -> io::Result<(usize, usize)> {
        let t = self.tcb(c)?;
        Ok((t.recvbuf.capacity(), t.sendbuf.capacity()))
    }

    /// SO_ERROR: the pending error, cleared by reading it.
    pub fn take_error(&mut self, c: ConnId) -> Option<io::Error> {
        let idx = self.slot_index(c).ok()?;
        let t = self.slots[idx as usize].tcb.as_mut()?;
        let reason = t.error.take()?;
        let kind = reason.error_kind()?;
        Some(io::Error::from(kind))
    }

    /// A read would not block: data, end of stream or an error.
    #[must_use]
    pub fn can_recv(&self, c: ConnId) -> bool {
        match self.tcb(c) {
            Ok(t) => t.recvbuf.readable() > 0 || t.fin_rcvd || t.read_shut || t.state == State::Closed,
            Err(_) => true,
        }
    }

    /// A write would not block: buffer space, or an error to report.
    #[must_use]
    pub fn can_send(&self, c: ConnId) -> bool {
        match self.tcb(c) {
            Ok(t) => match t.state {
                State::SynSent | State::SynReceived => false,
                State::Established | State::CloseWait => t.fin_queued || t.sendbuf.free() > 0,
                _ => true,
            },
            Err(_) => true,
        }
    }

    /// The connection finished its handshake (or failed): `connect` can return.
    #[must_use]
    pub fn is_connecting(&self, c: ConnId) -> bool {
        matches!(self.state(c), Some(State::SynSent | State::SynReceived))
    }

    /// The local socket address. Errors: `NotConnected` for a stale `c`.
    pub fn local_addr(&self, c: ConnId) -> io::Result<SocketAddr> {
        Ok(self.tcb(c)?.quad.local)
    }

    /// The remote socket address. Errors: `NotConnected` for a stale `c`.
    pub fn peer_addr(&self, c: ConnId) -> io::Result<SocketAddr> {
        Ok(self.tcb(c)?.quad.remote)
    }
}
