//! Test harness for driving one [`Stack`] segment by segment, smoltcp style.
//!
//! The test plays the remote peer: it builds segments with [`Seg`] (emitted with
//! `utcp_engine::wire::emit_ipv4_tcp`), injects them with [`H::send`], and asserts the exact
//! segments the stack answers with ([`H::expect`], [`H::expect_nothing`]). Time is
//! virtual: [`H::advance`] moves the clock and fires due timers.
//!
//! Sequence numbers: `h.iss` is our initial send sequence number (learned from our SYN
//! or SYN-ACK), `h.irs` the peer's. [`H::our`] and [`H::peer`] give "ISS + 1 + offset",
//! i.e. the sequence number of data byte `offset` in each direction.
//!
//! Either family: a test that calls [`use_ipv6`] (or builds its harness with [`H::new6`])
//! before anything else runs over IPv6 ([`LOCAL_IP6`], [`REMOTE_IP6`]); `local_addr()`,
//! `remote_addr()`, [`Seg`] and [`H::recv`] follow the family of the calling test thread.
#![allow(dead_code, unused_imports)]

pub use std::io::ErrorKind;
pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
pub use utcp_engine::seq::SeqNum;
pub use utcp_engine::time::{Duration, Instant};
pub use utcp_engine::wire::{
    DropReason, OptionLayout, SackBlocks, TcpFlags, TcpHeaderOut, TcpOptions, emit_ip_tcp, emit_ipv4_tcp,
    parse_ip_tcp, parse_ipv4_tcp,
};
pub use utcp_engine::{CloseReason, Config, ConnId, Event, Keepalive, ListenerId, Quad, Stack, State};

/// Our address (the stack under test).
pub const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The peer's address (played by the test).
pub const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// Our IPv6 address (tests run over IPv6 after [`use_ipv6`]).
pub const LOCAL_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The peer's IPv6 address.
pub const REMOTE_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
pub const LOCAL_PORT: u16 = 80;

thread_local! {
    /// The address family of the calling test (each test runs on its own thread).
    static IPV6: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run the calling test over IPv6 from here on.
pub fn use_ipv6() {
    IPV6.with(|f| f.set(true));
}

/// True when the calling test runs over IPv6.
pub fn ipv6() -> bool {
    IPV6.with(|f| f.get())
}

/// Our address in the test's family.
pub fn local_ip() -> IpAddr {
    if ipv6() { IpAddr::V6(LOCAL_IP6) } else { IpAddr::V4(LOCAL_IP) }
}

/// The peer's address in the test's family.
pub fn remote_ip() -> IpAddr {
    if ipv6() { IpAddr::V6(REMOTE_IP6) } else { IpAddr::V4(REMOTE_IP) }
}
pub const REMOTE_PORT: u16 = 40000;
/// The peer's initial sequence number.
pub const PEER_ISS: u32 = 1_000_000;
/// The window the peer advertises unless a test says otherwise.
pub const PEER_WIN: u16 = 30000;
/// Our receive buffer in the base configuration: the window we advertise when empty.
pub const WIN: u16 = 64000;
/// MSS we advertise (MTU 1500 - 40).
pub const MSS: u16 = 1460;

pub const SYN: TcpFlags = TcpFlags::SYN;
pub const ACK: TcpFlags = TcpFlags::ACK;
pub const FIN: TcpFlags = TcpFlags::FIN;
pub const RST: TcpFlags = TcpFlags::RST;
pub const PSH: TcpFlags = TcpFlags::PSH;
pub const NONE: TcpFlags = TcpFlags::NONE;

/// The engine configuration most tests start from: no optional TCP options, every
/// segment acknowledged at once, an unscaled 64000-byte window.
pub fn base_config() -> Config {
    Config::deterministic(1)
        .with_window_scale(false)
        .with_sack(false)
        .with_dsack(false)
        .with_timestamps(false)
        .with_delayed_ack(None)
        .with_recv_buffer(WIN as usize)
        .with_send_buffer(256 * 1024)
        .with_trace_states(true)
}

pub fn local_addr() -> SocketAddr {
    SocketAddr::new(local_ip(), LOCAL_PORT)
}

pub fn remote_addr() -> SocketAddr {
    SocketAddr::new(remote_ip(), REMOTE_PORT)
}

/// A segment the peer sends.
#[derive(Clone, Debug)]
pub struct Seg {
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl Seg {
    /// A segment from the default remote to the default local address; `ack` is ignored
    /// on the wire unless `flags` has ACK (it is still written, as real stacks may).
    pub fn new(flags: TcpFlags, seq: u32, ack: u32) -> Seg {
        Seg {
            flags,
            seq,
            ack,
            window: PEER_WIN,
            urgent: 0,
            options: TcpOptions::default(),
            payload: Vec::new(),
            src: remote_addr(),
            dst: local_addr(),
        }
    }
    pub fn win(mut self, w: u16) -> Seg {
        self.window = w;
        self
    }
    pub fn data(mut self, d: &[u8]) -> Seg {
        self.payload = d.to_vec();
        self
    }
    pub fn opts(mut self, o: TcpOptions) -> Seg {
        self.options = o;
        self
    }
    pub fn mss(mut self, m: u16) -> Seg {
        self.options.mss = Some(m);
        self
    }
    pub fn wscale(mut self, s: u8) -> Seg {
        self.options.window_scale = Some(s);
        self
    }
    pub fn sack_perm(mut self) -> Seg {
        self.options.sack_permitted = true;
        self
    }
    pub fn ts(mut self, val: u32, ecr: u32) -> Seg {
        self.options.timestamps = Some((val, ecr));
        self
    }
    pub fn sack(mut self, blocks: &[(u32, u32)]) -> Seg {
        self.options.sack.clear();
        for &(s, e) in blocks {
            self.options.sack.push(SeqNum(s), SeqNum(e));
        }
        self
    }
    pub fn urg(mut self, up: u16) -> Seg {
        self.urgent = up;
        self.flags |= TcpFlags::URG;
        self
    }
    pub fn from(mut self, src: SocketAddr) -> Seg {
        self.src = src;
        self
    }
    pub fn to(mut self, dst: SocketAddr) -> Seg {
        self.dst = dst;
        self
    }
    /// The IPv4 or IPv6 packet for this segment (by its addresses).
    pub fn packet(&self) -> Vec<u8> {
        let h = TcpHeaderOut {
            tcp: utcp_engine::wire::TcpRepr {
                src_port: self.src.port(),
                dst_port: self.dst.port(),
                seq: SeqNum(self.seq),
                ack: SeqNum(self.ack),
                flags: self.flags,
                window: self.window,
                urgent: self.urgent,
                options: self.options,
            },
            src: self.src.ip(),
            dst: self.dst.ip(),
            ttl: 64,
            ip_id: 1,
            flow_label: 0,
        };
        let mut buf = vec![0u8; 65536];
        let n = emit_ip_tcp(&mut buf, &h, OptionLayout::Linux, &[&self.payload]).expect("emit");
        buf.truncate(n);
        buf
    }
}

/// A segment the stack sent, parsed and owned.
#[derive(Clone, Debug, PartialEq)]
pub struct Out {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
    /// IPv6 flow label (0 over IPv4).
    pub flow_label: u32,
}

impl Out {
    /// Assert the window field.
    #[track_caller]
    pub fn win(self, w: u16) -> Out {
        assert_eq!(self.window, w, "window of {self}");
        self
    }
    /// Assert the payload length.
    #[track_caller]
    pub fn len(self, n: usize) -> Out {
        assert_eq!(self.payload.len(), n, "payload length of {self}");
        self
    }
    /// Assert the payload bytes.
    #[track_caller]
    pub fn data(self, d: &[u8]) -> Out {
        assert_eq!(self.payload, d, "payload of {self}");
        self
    }
    /// Assert the options exactly.
    #[track_caller]
    pub fn opts(self, o: TcpOptions) -> Out {
        assert_eq!(self.options, o, "options of {self}");
        self
    }
    /// Assert there are no options.
    #[track_caller]
    pub fn no_opts(self) -> Out {
        assert_eq!(self.options, TcpOptions::default(), "options of {self}");
        self
    }
    /// SACK blocks as plain numbers.
    pub fn sack_blocks(&self) -> Vec<(u32, u32)> {
        self.options.sack.as_slice().iter().map(|&(s, e)| (s.0, e.0)).collect()
    }
    /// Sequence space the segment occupies (SEG.LEN).
    pub fn seg_len(&self) -> u32 {
        self.payload.len() as u32 + self.flags.syn() as u32 + self.flags.fin() as u32
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{} seq {} ack {} win {} len {} {:?}]",
            self.flags,
            self.seq,
            self.ack,
            self.window,
            self.payload.len(),
            self.options
        )
    }
}

/// Options of a parsed TCP header, for building expected values.
pub fn opts() -> TcpOptions {
    TcpOptions::default()
}

/// One stack under test plus the clock and what the handshake taught us.
pub struct H {
    pub stack: Stack,
    pub now: Instant,
    /// The connection under test (after a handshake helper).
    pub conn: Option<ConnId>,
    pub listener: Option<ListenerId>,
    /// Our ISS.
    pub iss: u32,
    /// The peer's ISS (IRS).
    pub irs: u32,
    buf: Vec<u8>,
}

impl H {
    /// A stack with `cfg`, owning `LOCAL_IP` (`LOCAL_IP6` over IPv6), at t = 10 s.
    pub fn new(cfg: Config) -> H {
        let mut stack = Stack::new(cfg);
        stack.add_local_addr(local_ip());
        H {
            stack,
            now: Instant::from_millis(10_000),
            conn: None,
            listener: None,
            iss: 0,
            irs: PEER_ISS,
            buf: vec![0u8; 65536],
        }
    }

    /// A stack with `cfg` and a passively opened connection in ESTABLISHED (peer SYN with
    /// MSS option only), events drained.
    #[track_caller]
    pub fn established(cfg: Config) -> H {
        let mut h = H::new(cfg);
        h.establish_passive(mss_opts(MSS));
        h
    }

    /// The connection under test.
    #[track_caller]
    pub fn c(&self) -> ConnId {
        self.conn.expect("no connection: run a handshake helper first")
    }

    /// The same over IPv6: the calling test runs over IPv6 from here on.
    pub fn new6(cfg: Config) -> H {
        use_ipv6();
        H::new(cfg)
    }

    /// Sequence number of our data byte `off` (ISS + 1 + off).
    pub fn our(&self, off: u32) -> u32 {
        self.iss.wrapping_add(1).wrapping_add(off)
    }

    /// Sequence number of the peer's data byte `off` (IRS + 1 + off).
    pub fn peer(&self, off: u32) -> u32 {
        self.irs.wrapping_add(1).wrapping_add(off)
    }

    /// Inject a segment from the peer.
    pub fn send(&mut self, seg: Seg) {
        let p = seg.packet();
        self.stack.handle_packet(self.now, &p);
    }

    /// Inject raw bytes.
    pub fn send_raw(&mut self, p: &[u8]) {
        self.stack.handle_packet(self.now, p);
    }

    /// The next segment the stack sends, if any.
    pub fn recv(&mut self) -> Option<Out> {
        let n = self.stack.poll_transmit(self.now, &mut self.buf)?;
        let p = &self.buf[..n];
        let s = parse_ip_tcp(p).expect("the stack emitted an unparsable packet");
        let flow_label = if p[0] >> 4 == 6 { u32::from_be_bytes([0, p[1] & 0x0f, p[2], p[3]]) } else { 0 };
        Some(Out {
            src: SocketAddr::new(s.src, s.src_port),
            dst: SocketAddr::new(s.dst, s.dst_port),
            flags: s.flags,
            seq: s.seq.0,
            ack: s.ack.0,
            window: s.window,
            urgent: s.urgent,
            options: s.options,
            payload: s.payload.to_vec(),
            flow_label,
        })
    }

    /// Every segment the stack has to send now.
    pub fn drain(&mut self) -> Vec<Out> {
        let mut v = Vec::new();
        while let Some(o) = self.recv() {
            v.push(o);
            assert!(v.len() < 10_000, "runaway output");
        }
        v
    }

    /// Assert the next segment has exactly these flags, SEG.SEQ and SEG.ACK (ACK compared
    /// only when the ACK flag is expected) and is addressed to the peer.
    #[track_caller]
    pub fn expect(&mut self, flags: TcpFlags, seq: u32, ack: u32) -> Out {
        let Some(o) = self.recv() else {
            panic!("expected [{flags} seq {seq} ack {ack}], the stack sent nothing");
        };
        assert_eq!((o.flags, o.seq), (flags, seq), "expected [{flags} seq {seq} ack {ack}], got {o}");
        if flags.ack() {
            assert_eq!(o.ack, ack, "expected [{flags} seq {seq} ack {ack}], got {o}");
        }
        o
    }

    /// Like [`H::expect`] for a connection to `dst`.
    #[track_caller]
    pub fn expect_to(&mut self, dst: SocketAddr, flags: TcpFlags, seq: u32, ack: u32) -> Out {
        let o = self.expect(flags, seq, ack);
        assert_eq!(o.dst, dst, "destination of {o}");
        o
    }

    /// Assert the stack has nothing to send.
    #[track_caller]
    pub fn expect_nothing(&mut self) {
        if let Some(o) = self.recv() {
            panic!("expected no segment, got {o}");
        }
    }

    /// Move the clock forward by `d` and fire due timers.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.stack.handle_timeout(self.now);
    }

    /// Move the clock to an instant (not backwards) and fire due timers.
    pub fn advance_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
        self.stack.handle_timeout(self.now);
    }

    /// Jump to the next timer deadline and fire it; returns how far the clock moved.
    #[track_caller]
    pub fn fire_timer(&mut self) -> Duration {
        let t = self.stack.poll_timeout().expect("no timer armed");
        let before = self.now;
        self.advance_to(t);
        self.now - before
    }

    /// Time until the next timer deadline, if any.
    pub fn next_timer(&mut self) -> Option<Duration> {
        self.stack.poll_timeout().map(|t| t - self.now)
    }

    /// Drain and return all pending events.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.stack.poll_event()).collect()
    }

    /// The states the connection under test went through, from `StateChange` events.
    pub fn state_changes(&mut self) -> Vec<(State, State)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::StateChange { from, to, .. } => Some((from, to)),
                _ => None,
            })
            .collect()
    }

    pub fn state(&self) -> Option<State> {
        self.stack.state(self.c())
    }

    /// Listen on the default local address.
    pub fn listen(&mut self) -> ListenerId {
        let l = self.stack.listen(local_addr(), 16).expect("listen");
        self.listener = Some(l);
        l
    }

    /// Passive OPEN up to SYN-RECEIVED: listen, peer SYN (with `syn_opts`), our SYN-ACK
    /// (checked, returned). Learns our ISS.
    #[track_caller]
    pub fn open_to_syn_received(&mut self, syn_opts: TcpOptions) -> Out {
        self.listen();
        self.send(Seg::new(SYN, PEER_ISS, 0).opts(syn_opts));
        let o = self.recv().expect("no SYN-ACK");
        assert_eq!(o.flags, SYN | ACK, "expected a SYN-ACK, got {o}");
        assert_eq!(o.ack, PEER_ISS + 1, "SYN-ACK must acknowledge the SYN: {o}");
        self.iss = o.seq;
        o
    }

    /// Passive OPEN to ESTABLISHED: SYN, SYN-ACK, ACK, accept. Returns our SYN-ACK.
    /// Pending events are discarded.
    #[track_caller]
    pub fn establish_passive(&mut self, syn_opts: TcpOptions) -> Out {
        let synack = self.establish_passive_keep_events(syn_opts);
        self.events();
        synack
    }

    /// [`H::establish_passive`] without draining the events.
    #[track_caller]
    pub fn establish_passive_keep_events(&mut self, syn_opts: TcpOptions) -> Out {
        let synack = self.open_to_syn_received(syn_opts);
        let mut ack = Seg::new(ACK, self.peer(0), self.our(0));
        if let Some((val, _)) = syn_opts.timestamps {
            ack = ack.ts(val + 1, synack.options.timestamps.map(|t| t.0).unwrap_or(0));
        }
        self.send(ack);
        let l = self.listener.expect("listener");
        let (c, peer) = self.stack.accept(l).expect("accept after the handshake");
        assert_eq!(peer, remote_addr());
        self.conn = Some(c);
        assert_eq!(self.state(), Some(State::Established));
        self.expect_nothing();
        synack
    }

    /// Active OPEN up to SYN-SENT: connect and check our SYN. Learns our ISS.
    #[track_caller]
    pub fn open_to_syn_sent(&mut self) -> Out {
        let c = self.stack.connect(self.now, local_addr(), remote_addr()).expect("connect");
        self.conn = Some(c);
        let o = self.recv().expect("no SYN");
        assert_eq!(o.flags, SYN, "expected a SYN, got {o}");
        self.iss = o.seq;
        o
    }

    /// Active OPEN to ESTABLISHED: SYN, SYN-ACK (with `synack_opts`), our ACK (checked).
    /// Returns our SYN.
    #[track_caller]
    pub fn establish_active(&mut self, synack_opts: TcpOptions) -> Out {
        let syn = self.open_to_syn_sent();
        self.send(Seg::new(SYN | ACK, PEER_ISS, self.our(0)).opts(synack_opts));
        let o = self.expect(ACK, self.our(0), self.peer(0));
        assert!(o.payload.is_empty());
        assert_eq!(self.state(), Some(State::Established));
        self.expect_nothing();
        self.events();
        syn
    }

    /// Queue `data` for sending and assert all of it was accepted.
    #[track_caller]
    pub fn write(&mut self, data: &[u8]) {
        let c = self.c();
        let n = self.stack.send(c, data).expect("send");
        assert_eq!(n, data.len(), "send accepted only part of the data");
    }

    /// Read everything readable now.
    pub fn read_all(&mut self) -> Vec<u8> {
        let c = self.c();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.stack.recv(c, &mut buf) {
                Ok(0) | Err(_) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Result of one `recv` call with a buffer of `n` bytes.
    pub fn read(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        let c = self.c();
        let mut buf = vec![0u8; n];
        let k = self.stack.recv(c, &mut buf)?;
        buf.truncate(k);
        Ok(buf)
    }
}

/// Deterministic test payload of `n` bytes.
pub fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Options of a peer SYN offering everything: MSS, window scale, SACK, timestamps.
pub fn full_syn_opts(wscale: u8, tsval: u32) -> TcpOptions {
    TcpOptions {
        mss: Some(MSS),
        window_scale: Some(wscale),
        sack_permitted: true,
        timestamps: Some((tsval, 0)),
        sack: SackBlocks::new(),
    }
}

/// Options with only an MSS.
pub fn mss_opts(m: u16) -> TcpOptions {
    TcpOptions { mss: Some(m), ..TcpOptions::default() }
}

/// Rewrite the TCP options area of an IPv4/TCP `packet` (as built by [`Seg::packet`]) with
/// `f`, then fix the TCP checksum. The area keeps its length.
pub fn rewrite_options(mut packet: Vec<u8>, f: impl FnOnce(&mut [u8])) -> Vec<u8> {
    use utcp_engine::wire::checksum::{finish, pseudo_header_ipv4, sum};
    let ihl = (packet[0] & 0x0f) as usize * 4;
    let doff = (packet[ihl + 12] >> 4) as usize * 4;
    f(&mut packet[ihl + 20..ihl + doff]);
    packet[ihl + 16] = 0;
    packet[ihl + 17] = 0;
    let src = [packet[12], packet[13], packet[14], packet[15]];
    let dst = [packet[16], packet[17], packet[18], packet[19]];
    let tcp_len = (packet.len() - ihl) as u16;
    let c = finish(sum(&packet[ihl..], pseudo_header_ipv4(src, dst, 6, tcp_len)));
    packet[ihl + 16..ihl + 18].copy_from_slice(&c.to_be_bytes());
    packet
}

/// The reason of the first `Closed` event pending on `h`, draining the events.
pub fn closed_reason(h: &mut H) -> Option<utcp_engine::CloseReason> {
    h.events().into_iter().find_map(|e| match e {
        utcp_engine::Event::Closed(_, r) => Some(r),
        _ => None,
    })
}
