//! The simulator: two engines over an impaired in-memory link on virtual time.
//!
//! Side A (10.0.0.1) and side B (10.0.0.2) each send `bytes` of seeded pseudo-random data
//! to the other, then close, and the run checks that what each side received hashes to
//! what the other sent. `utcp sim` is a thin CLI over [`run`].

use crate::trace::Tracer;
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use utcp::device::link::{Impairments, Link, LinkStats, Side};
use utcp::device::pcap::PcapWriter;
use utcp::device::rng::Rng;
use utcp::engine::{CloseReason, Config, ConnId, Counters, Event, Stack, State, TxReason};
use utcp::time::{Duration, Instant};

pub const ADDR_A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
pub const ADDR_B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
/// A's address with `SimConfig::ipv6` (issue 13).
pub const ADDR_A6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
/// B's address with `SimConfig::ipv6`.
pub const ADDR_B6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));

/// Who closes first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CloseMode {
    /// A (the client) sends its FIN first.
    Active,
    /// B (the server) sends its FIN first.
    Passive,
    /// Both send FINs at the same instant, so they cross (RFC 9293 §3.6, figure 13).
    Simultaneous,
}

/// How the connection opens.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OpenMode {
    /// B listens, A connects.
    Normal,
    /// Both connect to each other at the same instant (RFC 9293 §3.5, figure 8).
    Simultaneous,
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Bytes each side sends.
    pub bytes: u64,
    pub a_to_b: Impairments,
    pub b_to_a: Impairments,
    pub seed: u64,
    pub close: CloseMode,
    pub open: OpenMode,
    pub engine: Config,
    /// Give up after this much virtual time.
    pub time_limit: Duration,
    // --- issue 14 (TCP you can see)
    /// Annotate each traced segment with the rule that sent it (`--explain`).
    pub explain: bool,
    /// Zero-window scenario: B reads nothing until this much virtual time has passed.
    pub b_reads_after: Option<Duration>,
    /// Drop these A→B packets (1-based, in send order) before the link: a chosen loss.
    pub drop_a_to_b: Vec<u64>,
    /// Drop everything A sends in this interval of virtual time: a blackout.
    pub blackout_a_to_b: Option<(Duration, Duration)>,
    /// Spoofed SYNs (from 10.0.1.0/24, which nobody answers) injected into B at time zero.
    pub syn_flood: u32,
    /// B's engine configuration, when it differs from `engine`.
    pub engine_b: Option<Config>,
    /// Bytes B sends, when it differs from `bytes` (a one-way transfer plots cleaner).
    pub bytes_b: Option<u64>,
    // --- issue 13 (IPv6)
    /// Run over IPv6 (`ADDR_A6`, `ADDR_B6`; `--ipv6`) instead of IPv4.
    pub ipv6: bool,
}

impl SimConfig {
    /// A's and B's addresses in the configured family.
    pub fn addrs(&self) -> (IpAddr, IpAddr) {
        if self.ipv6 { (ADDR_A6, ADDR_B6) } else { (ADDR_A, ADDR_B) }
    }
}

/// Watches a run (`sim --plot`, `--explain` tests): every segment with the engine's
/// reason for it, and each side's [`Status`](utcp::engine::Status) after every call that
/// may change it (handle_packet, handle_timeout, poll_transmit), so samples are exact.
pub trait Observer {
    fn segment(&mut self, now: Instant, from: Side, packet: &[u8], why: TxReason);
    fn engine(&mut self, now: Instant, side: Side, status: &utcp::engine::Status);
    /// A packet the link delivers to `to` (what a capture on that host sees arrive).
    fn delivered(&mut self, _now: Instant, _to: Side, _packet: &[u8]) {}
}

impl Default for SimConfig {
    fn default() -> Self {
        let link = Impairments { delay: Duration::from_millis(5), ..Impairments::none() };
        SimConfig {
            bytes: 1 << 20,
            a_to_b: link.clone(),
            b_to_a: link,
            seed: 1,
            close: CloseMode::Active,
            open: OpenMode::Normal,
            engine: Config::default(),
            time_limit: Duration::from_secs(3600),
            explain: false,
            b_reads_after: None,
            drop_a_to_b: Vec::new(),
            blackout_a_to_b: None,
            syn_flood: 0,
            engine_b: None,
            bytes_b: None,
            ipv6: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SideReport {
    pub sent: u64,
    pub received: u64,
    pub sha_sent: [u8; 32],
    pub sha_received: [u8; 32],
    pub final_state: State,
    pub close_reason: Option<CloseReason>,
    pub retransmits: u64,
    pub fast_retransmits: u64,
    pub timeouts: u64,
    pub counters: Counters,
    /// Every state this side's connection went through, in order.
    pub states: Vec<State>,
    /// Virtual time at which this side had received all of the peer's bytes (the
    /// transfer's completion time, before the close and TIME-WAIT).
    pub received_all_at: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct SimReport {
    pub a: SideReport,
    pub b: SideReport,
    pub duration: Duration,
    pub link: LinkStats,
    /// None on success, else what went wrong.
    pub failure: Option<String>,
}

impl SimReport {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// One side's application: a seeded byte source, a sink that hashes, and close logic.
struct App {
    stack: Stack,
    conn: Option<ConnId>,
    listener: Option<utcp::engine::ListenerId>,
    source: Rng,
    chunk: Vec<u8>,
    chunk_off: usize,
    to_send: u64,
    sent: u64,
    received: u64,
    hash_sent: Sha256,
    hash_recv: Sha256,
    eof: bool,
    shut: bool,
    states: Vec<State>,
    close_reason: Option<CloseReason>,
    last: (u64, u64, u64, u64),
    received_all_at: Option<Instant>,
    /// The application reads nothing before this instant (zero-window scenario).
    reads_after: Instant,
}

fn observe_engine(o: &mut dyn Observer, now: Instant, side: Side, app: &App) {
    if let Some(st) = app.conn.and_then(|c| app.stack.status(c).ok()) {
        o.engine(now, side, &st);
    }
}

impl App {
    fn new(engine: Config, addr: IpAddr, seed: u64, bytes: u64) -> App {
        let mut stack = Stack::new(engine);
        stack.add_local_addr(addr);
        App {
            stack,
            conn: None,
            listener: None,
            source: Rng::new(seed),
            chunk: vec![0; 16384],
            chunk_off: 16384,
            to_send: bytes,
            sent: 0,
            received: 0,
            hash_sent: Sha256::new(),
            hash_recv: Sha256::new(),
            eof: false,
            shut: false,
            states: vec![State::Closed],
            close_reason: None,
            last: (0, 0, 0, 0),
            received_all_at: None,
            reads_after: Instant::ZERO,
        }
    }

    /// Write as much as the send buffer takes; read everything available.
    fn run_app(&mut self, now: Instant) -> io::Result<()> {
        let Some(c) = self.conn else { return Ok(()) };
        while self.sent < self.to_send {
            if self.chunk_off == self.chunk.len() {
                self.source.fill_bytes(&mut self.chunk);
                self.chunk_off = 0;
            }
            let left = (self.to_send - self.sent).min((self.chunk.len() - self.chunk_off) as u64) as usize;
            let piece = &self.chunk[self.chunk_off..self.chunk_off + left];
            match self.stack.send(c, piece) {
                Ok(n) => {
                    self.hash_sent.update(&piece[..n]);
                    self.sent += n as u64;
                    self.chunk_off += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        let mut buf = [0u8; 16384];
        while !self.eof && now >= self.reads_after {
            match self.stack.recv(c, &mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.hash_recv.update(&buf[..n]);
                    self.received += n as u64;
                    if self.received >= self.to_send && self.received_all_at.is_none() {
                        self.received_all_at = Some(now);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// All our data is acknowledged by the peer.
    fn all_acked(&self) -> bool {
        let Some(c) = self.conn else { return false };
        self.sent == self.to_send
            && self.stack.state(c).is_some_and(|s| s.is_synchronized())
            && self.stack.status(c).map(|s| s.bytes_in_flight == 0 && s.bytes_unsent == 0).unwrap_or(false)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        if let (false, Some(c)) = (self.shut, self.conn) {
            self.shut = true;
            self.stack.shutdown(c, Shutdown::Write)?;
        }
        Ok(())
    }

    fn drain_events(&mut self, now: Instant, name: &str, trace: &mut Option<&mut dyn Write>) {
        while let Some(ev) = self.stack.poll_event() {
            match ev {
                Event::Incoming(l) => {
                    if let Ok((c, _)) = self.stack.accept(l) {
                        self.conn = Some(c);
                    }
                }
                Event::StateChange { from, to, .. } => {
                    self.states.push(to);
                    if let Some(t) = trace.as_deref_mut() {
                        let _ = writeln!(
                            t,
                            "{:>11} {name}  state {} -> {}",
                            crate::trace::fmt_time(now),
                            from,
                            to
                        );
                    }
                }
                Event::Closed(_, reason) => self.close_reason = Some(reason),
                _ => {}
            }
        }
    }

    fn report(&self) -> SideReport {
        let st = self.conn.and_then(|c| self.stack.status(c).ok());
        SideReport {
            sent: self.sent,
            received: self.received,
            sha_sent: self.hash_sent.clone().finalize().into(),
            sha_received: self.hash_recv.clone().finalize().into(),
            final_state: self.conn.and_then(|c| self.stack.state(c)).unwrap_or(State::Closed),
            close_reason: self.close_reason,
            retransmits: st.map(|s| s.retransmits).unwrap_or(self.last.0),
            fast_retransmits: st.map(|s| s.fast_retransmits).unwrap_or(self.last.1),
            timeouts: st.map(|s| s.timeouts).unwrap_or(self.last.2),
            counters: self.stack.counters().clone(),
            states: self.states.clone(),
            received_all_at: self.received_all_at.map(|t| t - Instant::ZERO),
        }
    }
}

/// Run one simulation. With `trace`, one line per segment and per state transition.
pub fn run(
    cfg: &SimConfig,
    trace: Option<&mut dyn Write>,
    pcap: Option<&mut PcapWriter<Box<dyn Write>>>,
) -> SimReport {
    run_observed(cfg, trace, pcap, None)
}

/// [`run`], with an [`Observer`] watching.
pub fn run_observed(
    cfg: &SimConfig,
    mut trace: Option<&mut dyn Write>,
    mut pcap: Option<&mut PcapWriter<Box<dyn Write>>>,
    mut obs: Option<&mut dyn Observer>,
) -> SimReport {
    let mut engine_a = cfg.engine.clone();
    engine_a.trace_states = true;
    let mut secret = cfg.seed.to_le_bytes().to_vec();
    secret.extend_from_slice(b"sideA-\0\0");
    engine_a.isn_secret.copy_from_slice(&secret[..16]);
    let mut engine_b = cfg
        .engine_b
        .clone()
        .map(|mut e| {
            e.trace_states = true;
            e.isn_secret = engine_a.isn_secret;
            e
        })
        .unwrap_or_else(|| engine_a.clone());
    engine_b.isn_secret[8..14].copy_from_slice(b"sideB-");
    let (addr_a, addr_b) = cfg.addrs();
    let mut a = App::new(engine_a, addr_a, cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA, cfg.bytes);
    let mut b = App::new(
        engine_b,
        addr_b,
        cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xB,
        cfg.bytes_b.unwrap_or(cfg.bytes),
    );
    b.reads_after = Instant::ZERO + cfg.b_reads_after.unwrap_or(Duration::ZERO);
    let mut link = Link::new(cfg.seed, cfg.a_to_b.clone(), cfg.b_to_a.clone());
    let mut tracer = Tracer::new();
    let mut now = Instant::ZERO;
    let mut failure = None;
    let mut buf = vec![0u8; 65536];

    let start = (|| -> io::Result<()> {
        match cfg.open {
            OpenMode::Normal => {
                b.listener = Some(b.stack.listen(SocketAddr::new(addr_b, 80), 8)?);
                a.conn =
                    Some(a.stack.connect(now, SocketAddr::new(addr_a, 0), SocketAddr::new(addr_b, 80))?);
            }
            OpenMode::Simultaneous => {
                let (pa, pb) = (SocketAddr::new(addr_a, 5000), SocketAddr::new(addr_b, 6000));
                a.conn = Some(a.stack.connect(now, pa, pb)?);
                b.conn = Some(b.stack.connect(now, pb, pa)?);
            }
        }
        Ok(())
    })();
    if let Err(e) = start {
        failure = Some(format!("setup: {e}"));
    }

    syn_flood(&mut b.stack, cfg.syn_flood, addr_b);
    let mut a_sent = 0u64;
    let deadline = Instant::ZERO + cfg.time_limit;
    let mut idle_rounds = 0u32;
    while failure.is_none() {
        // Applications.
        for (app, name) in [(&mut a, "A"), (&mut b, "B")] {
            if let Err(e) = app.run_app(now) {
                failure = Some(format!("{name}: {e}"));
            }
        }
        // Closing, per mode.
        let res = match cfg.close {
            CloseMode::Active => {
                let mut r = Ok(());
                if a.all_acked() {
                    r = a.shutdown();
                }
                if r.is_ok() && b.eof && b.all_acked() {
                    r = b.shutdown();
                }
                r
            }
            CloseMode::Passive => {
                let mut r = Ok(());
                if b.all_acked() {
                    r = b.shutdown();
                }
                if r.is_ok() && a.eof && a.all_acked() {
                    r = a.shutdown();
                }
                r
            }
            CloseMode::Simultaneous => {
                if a.all_acked()
                    && b.all_acked()
                    && a.received == cfg.bytes_b.unwrap_or(cfg.bytes)
                    && b.received == cfg.bytes
                {
                    a.shutdown().and_then(|_| b.shutdown())
                } else {
                    Ok(())
                }
            }
        };
        if let Err(e) = res {
            failure = Some(format!("shutdown: {e}"));
            break;
        }
        // Transmit.
        let mut moved = false;
        for (app, side, dir) in [(&mut a, Side::A, "A>B"), (&mut b, Side::B, "B>A")] {
            while let Some(n) = app.stack.poll_transmit(now, &mut buf) {
                let pkt = &buf[..n];
                let why = app.stack.last_tx_reason();
                if let Some(t) = trace.as_deref_mut() {
                    let line = tracer.line(now, dir, pkt);
                    let _ =
                        if cfg.explain { writeln!(t, "{line:<72} ; {why}") } else { writeln!(t, "{line}") };
                }
                if let Some(o) = obs.as_deref_mut() {
                    o.segment(now, side, pkt, why);
                    observe_engine(o, now, side, app);
                }
                if let Some(p) = pcap.as_deref_mut() {
                    let _ = p.write_packet(now, pkt);
                }
                moved = true;
                if side == Side::A && chosen_loss(cfg, &mut a_sent, now) {
                    continue;
                }
                link.send(now, side, pkt);
            }
        }
        // Deliver.
        while let Some((to, pkt)) = link.recv(now) {
            if let Some(o) = obs.as_deref_mut() {
                o.delivered(now, to, &pkt);
            }
            let (app, name) = if to == Side::A { (&mut a, "A") } else { (&mut b, "B") };
            let drops = app.stack.counters().total_drops();
            let before = (cfg.explain && trace.is_some()).then(|| app.stack.counters().clone());
            app.stack.handle_packet(now, &pkt);
            if let (Some(t), Some(before)) = (trace.as_deref_mut(), before)
                && app.stack.counters().total_drops() > drops
            {
                explain_drop(t, now, name, &before, app.stack.counters());
            }
            link.recycle(pkt);
            moved = true;
        }
        a.drain_events(now, "A", &mut trace);
        b.drain_events(now, "B", &mut trace);
        if let Some(o) = obs.as_deref_mut() {
            observe_engine(o, now, Side::A, &a);
            observe_engine(o, now, Side::B, &b);
        }
        if b.conn.is_none() && a.conn.is_some() && cfg.open == OpenMode::Normal {
            // Not accepted yet.
        }

        // Done?
        let closed = |app: &App| app.conn.and_then(|c| app.stack.state(c)) == Some(State::Closed);
        if closed(&a) && closed(&b) && link.in_flight() == 0 {
            break;
        }
        if moved {
            idle_rounds = 0;
            continue;
        }
        // Advance virtual time to the next thing that happens.
        let next = [a.stack.poll_timeout(), b.stack.poll_timeout(), link.next_delivery()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= deadline => {
                if t > now {
                    now = t;
                }
                a.stack.handle_timeout(now);
                b.stack.handle_timeout(now);
                if let Some(o) = obs.as_deref_mut() {
                    observe_engine(o, now, Side::A, &a);
                    observe_engine(o, now, Side::B, &b);
                }
                idle_rounds += 1;
                if idle_rounds > 1_000_000 {
                    failure = Some("livelock: timers fire but nothing moves".into());
                }
            }
            Some(_) => failure = Some(format!("time limit of {:?} reached", cfg.time_limit)),
            None => {
                if closed(&a) && closed(&b) {
                    break;
                }
                failure = Some(format!(
                    "deadlock: no timer and no packet in flight (A {:?}, B {:?})",
                    a.conn.and_then(|c| a.stack.state(c)),
                    b.conn.and_then(|c| b.stack.state(c))
                ));
            }
        }
    }

    let ra = a.report();
    let rb = b.report();
    if failure.is_none() {
        if ra.sha_sent != rb.sha_received || ra.sent != rb.received {
            failure = Some("data A→B differs".into());
        } else if rb.sha_sent != ra.sha_received || rb.sent != ra.received {
            failure = Some("data B→A differs".into());
        } else if ra.sent != cfg.bytes || rb.sent != cfg.bytes_b.unwrap_or(cfg.bytes) {
            failure = Some("not all data was sent".into());
        } else if ra.final_state != State::Closed || rb.final_state != State::Closed {
            failure = Some(format!("final states {} / {}", ra.final_state, rb.final_state));
        } else if ra.close_reason != Some(CloseReason::Normal) || rb.close_reason != Some(CloseReason::Normal)
        {
            failure = Some(format!("close reasons {:?} / {:?}", ra.close_reason, rb.close_reason));
        }
    }
    SimReport { a: ra, b: rb, duration: now - Instant::ZERO, link: link.stats(), failure }
}

/// `drop_a_to_b` and `blackout_a_to_b`: whether A's next packet is lost on purpose.
fn chosen_loss(cfg: &SimConfig, a_sent: &mut u64, now: Instant) -> bool {
    *a_sent += 1;
    let since = now - Instant::ZERO;
    cfg.drop_a_to_b.contains(a_sent)
        || cfg.blackout_a_to_b.is_some_and(|(from, to)| since >= from && since < to)
}

/// Inject `n` SYNs from spoofed sources 10.0.1.x (2001:db8:1::x over IPv6) into `stack`
/// (port 80, at `dst`), at time zero.
fn syn_flood(stack: &mut Stack, n: u32, dst: IpAddr) {
    use utcp::wire::{TcpFlags, TcpHeaderOut, TcpOptions, emit_ip_tcp};
    let mut buf = [0u8; 128];
    for i in 0..n {
        let h = TcpHeaderOut {
            tcp: utcp::wire::TcpRepr {
                src_port: 20000 + i as u16,
                dst_port: 80,
                seq: utcp::seq::SeqNum(i.wrapping_mul(7919)),
                ack: utcp::seq::SeqNum(0),
                flags: TcpFlags::SYN,
                window: 65535,
                urgent: 0,
                options: TcpOptions { mss: Some(1460), ..TcpOptions::default() },
            },
            src: match dst {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1 + (i % 250) as u8)),
                IpAddr::V6(_) => {
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1 + (i % 250) as u16))
                }
            },
            dst,
            ttl: 64,
            ip_id: i as u16,
            flow_label: 0,
        };
        if let Some(len) = emit_ip_tcp(&mut buf, &h, utcp::wire::OptionLayout::default(), &[]) {
            stack.handle_packet(Instant::ZERO, &buf[..len]);
        }
    }
}

/// `--explain`: a segment the stack dropped, with its counter's reason.
fn explain_drop(t: &mut dyn Write, now: Instant, name: &str, before: &Counters, after: &Counters) {
    for d in utcp::wire::DropReason::ALL.iter().copied() {
        if after.dropped(d) > before.dropped(d) {
            let _ = writeln!(
                t,
                "{:>11} {name}  drops a segment ; dropped: {}",
                crate::trace::fmt_time(now),
                d.name()
            );
        }
    }
}
