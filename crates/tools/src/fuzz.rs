//! Fuzzing a [`Stack`] that holds live, established connections.
//!
//! Two drivers share one setup (two stacks, A the peer and B the target, joined by a
//! lossless in-memory exchange):
//!
//! - [`run_live`]: a seeded stream of hostile packets at B: pure noise, bit-flipped real
//!   segments, and well-formed segments to the live quads whose sequence number is drawn
//!   near B's RCV.NXT and whose acknowledgment is drawn near B's SND.UNA (a few windows
//!   either side, plus some drawn from all of 2^32), with mutated flags, options and
//!   lengths. Half the connections are *shielded*: what they get can never legitimately
//!   change them (no in-window data, FIN or timestamps, no RST at exactly RCV.NXT), so
//!   they must survive and then carry data byte-exact both ways. The others take
//!   everything and are only reported on.
//! - [`run_structured`]: structure-aware fuzzing on stable Rust. A seeded RNG fills byte
//!   strings, `arbitrary` turns each into [`SegSpec`]s (sequence and acknowledgment
//!   relative to the connection's state, flags, options, lengths, truncation, a
//!   corrupted byte), and those are built into packets for B. Afterwards B must still
//!   accept a new connection and carry data byte-exact.
//!
//! Both return `Err` with the reason when an expectation fails; a panic inside the engine
//! propagates. `tests/fuzz_live.rs` runs them bounded, and
//! `cargo run --release -p utcp-tools --example fuzz_live -- 100000000` runs the long one.

use arbitrary::{Arbitrary, Unstructured};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utcp::device::rng::Rng;
use utcp::engine::{Config, ConnId, ListenerId, Stack, State, Status};
use utcp::seq::SeqNum;
use utcp::time::{Duration, Instant};
use utcp::wire::{DropReason, OptionLayout, TcpFlags, TcpHeaderOut, TcpOptions, emit_ipv4_tcp};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const PORT: u16 = 80;

/// One live connection: A's end, B's end, A's port, and whether it is shielded.
#[derive(Clone, Copy, Debug)]
struct Conn {
    a: ConnId,
    b: ConnId,
    port: u16,
    shielded: bool,
}

/// Two stacks with `n` established connections from A to B, and the clock.
struct Pair {
    a: Stack,
    b: Stack,
    now: Instant,
    conns: Vec<Conn>,
    listener: ListenerId,
    buf: Vec<u8>,
    /// Packets B sent in answer to injected ones.
    answers: u64,
}

impl Pair {
    fn new(n: usize) -> Result<Pair, String> {
        let mut a = Stack::new(Config::default());
        a.add_local_addr(A);
        let mut b = Stack::new(Config::default().with_isn_secret(*b"fuzz-target-key!"));
        b.add_local_addr(B);
        let listener = b.listen(SocketAddr::new(B, PORT), 1024).map_err(|e| e.to_string())?;
        let mut p = Pair {
            a,
            b,
            now: Instant::from_millis(1),
            conns: Vec::new(),
            listener,
            buf: vec![0; 65536],
            answers: 0,
        };
        for i in 0..n {
            let mut c = p.open()?;
            c.shielded = i % 2 == 0;
            p.conns.push(c);
        }
        Ok(p)
    }

    /// Connect A to B's listener and accept.
    fn open(&mut self) -> Result<Conn, String> {
        let c = self
            .a
            .connect(self.now, SocketAddr::new(A, 0), SocketAddr::new(B, PORT))
            .map_err(|e| e.to_string())?;
        self.pump()?;
        let (s, _) = self.b.accept(self.listener).map_err(|e| format!("accept: {e}"))?;
        let port = self.a.local_addr(c).map_err(|e| e.to_string())?.port();
        Ok(Conn { a: c, b: s, port, shielded: false })
    }

    /// Exchange until both stacks are quiet.
    fn pump(&mut self) -> Result<(), String> {
        for _ in 0..100_000 {
            let mut any = false;
            while let Some(n) = self.a.poll_transmit(self.now, &mut self.buf) {
                self.b.handle_packet(self.now, &self.buf[..n]);
                any = true;
            }
            while let Some(n) = self.b.poll_transmit(self.now, &mut self.buf) {
                self.a.handle_packet(self.now, &self.buf[..n]);
                any = true;
            }
            if !any {
                return Ok(());
            }
        }
        Err("runaway exchange between the stacks (an ACK storm?)".into())
    }

    fn tick(&mut self, d: Duration) {
        self.now += d;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        while self.a.poll_event().is_some() {}
        while self.b.poll_event().is_some() {}
    }

    /// Feed one hostile packet to B, hand half of B's answers to A, drop A's answers.
    fn inject(&mut self, rng: &mut Rng, pkt: &[u8]) {
        self.b.handle_packet(self.now, pkt);
        while let Some(m) = self.b.poll_transmit(self.now, &mut self.buf) {
            self.answers += 1;
            if rng.chance(0.5) {
                self.a.handle_packet(self.now, &self.buf[..m]);
            }
        }
        while self.a.poll_transmit(self.now, &mut self.buf).is_some() {}
    }

    fn both_established(&self, c: &Conn) -> bool {
        self.a.state(c.a) == Some(State::Established) && self.b.state(c.b) == Some(State::Established)
    }

    /// Send `len` patterned bytes from `from` to `to`; true when all arrive byte-exact and
    /// are acknowledged.
    fn transfer(&mut self, c: &Conn, a_to_b: bool, len: usize) -> bool {
        let msg: Vec<u8> = (0..len as u32).map(|i| (i.wrapping_mul(7) % 251) as u8).collect();
        let (mut got, mut off, mut sink) = (Vec::new(), 0, vec![0u8; 65536]);
        let (s, r) = if a_to_b { (c.a, c.b) } else { (c.b, c.a) };
        for _ in 0..2_000 {
            let (tx, rx) = if a_to_b { (&mut self.a, &mut self.b) } else { (&mut self.b, &mut self.a) };
            if off < msg.len() {
                off += tx.send(s, &msg[off..]).unwrap_or(0);
            }
            let _ = rx;
            if self.pump().is_err() {
                return false;
            }
            let (tx, rx) = if a_to_b { (&mut self.a, &mut self.b) } else { (&mut self.b, &mut self.a) };
            while let Ok(n) = rx.recv(r, &mut sink) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&sink[..n]);
            }
            if got.len() >= msg.len() && tx.status(s).is_ok_and(|st| st.bytes_in_flight == 0) {
                return got == msg;
            }
            self.tick(Duration::from_millis(50));
        }
        false
    }
}

/// What [`run_live`] does.
#[derive(Clone, Copy, Debug)]
pub struct LiveFuzz {
    /// Packets to inject.
    pub packets: u64,
    /// RNG seed: the same seed replays the same run.
    pub seed: u64,
    /// Live connections (half shielded), at least 2.
    pub conns: usize,
}

impl Default for LiveFuzz {
    fn default() -> Self {
        LiveFuzz { packets: 1_000_000, seed: 0xF022, conns: 8 }
    }
}

/// What a [`run_live`] saw.
#[derive(Clone, Debug, Default)]
pub struct LiveReport {
    /// Packets injected.
    pub packets: u64,
    /// Well-formed segments aimed at a live quad.
    pub aimed: u64,
    /// Packets B sent in answer to injected ones (no amplification: at most one each).
    pub answers: u64,
    /// Of those, segments whose sequence number fell inside B's receive window.
    pub in_window: u64,
    /// In-window RSTs not at exactly RCV.NXT (RFC 5961 §3.2: challenge ACK, not reset).
    pub in_window_rst: u64,
    /// In-window SYNs (RFC 5961 §4: challenge ACK).
    pub in_window_syn: u64,
    /// Shielded connections, and how many survived and then carried data both ways.
    pub shielded: usize,
    /// Shielded connections that survived and delivered byte-exact (must equal `shielded`).
    pub shielded_ok: usize,
    /// Exposed connections, and how many were still established afterwards.
    pub exposed: usize,
    /// Exposed connections still established on both ends.
    pub exposed_established: usize,
    /// B's counters over the storm: packets handled, segments that reached a TCB or
    /// listener, and drops.
    pub in_packets: u64,
    /// Segments B processed.
    pub in_segs: u64,
    /// Packets B dropped, all reasons.
    pub drops: u64,
    /// Drops for a bad TCP checksum.
    pub bad_checksum: u64,
}

/// Run the live-connection fuzzer (see the module documentation).
pub fn run_live(cfg: &LiveFuzz) -> Result<LiveReport, String> {
    let mut p = Pair::new(cfg.conns.max(2))?;
    let samples = capture_samples(&mut p)?;
    let mut rng = Rng::new(cfg.seed);
    let mut r = LiveReport { packets: cfg.packets, ..LiveReport::default() };
    let before = p.b.counters().clone();
    let mut status: Vec<Option<Status>> = p.conns.iter().map(|c| p.b.status(c.b).ok()).collect();
    let mut pkt = vec![0u8; 2048];
    for i in 0..cfg.packets {
        let n = match i % 8 {
            0 => {
                let n = rng.gen_range(0, 120) as usize;
                rng.fill_bytes(&mut pkt[..n]);
                n
            }
            1 => mutate_sample(&mut rng, &samples, &mut pkt),
            _ => {
                let k = rng.gen_range(0, p.conns.len() as u64) as usize;
                if i % 64 == 2 {
                    status[k] = p.b.status(p.conns[k].b).ok().or(status[k]);
                }
                aimed(&mut rng, &p.conns[k], status[k].as_ref(), &mut r, &mut pkt)
            }
        };
        p.inject(&mut rng, &pkt[..n]);
        if i % 10_000 == 0 {
            p.tick(Duration::from_millis(3));
        }
    }
    let after = p.b.counters();
    r.answers = p.answers;
    r.in_packets = after.in_packets - before.in_packets;
    r.in_segs = after.in_segs - before.in_segs;
    r.drops = after.total_drops() - before.total_drops();
    r.bad_checksum = after.dropped(DropReason::BadTcpChecksum) - before.dropped(DropReason::BadTcpChecksum);
    if r.in_packets != cfg.packets {
        return Err(format!("B handled {} packets of {}", r.in_packets, cfg.packets));
    }
    if r.drops + r.in_segs < cfg.packets {
        return Err(format!(
            "unaccounted packets: drops {} + segments {} < {}",
            r.drops, r.in_segs, cfg.packets
        ));
    }
    check_survivors(&mut p, &mut r)?;
    Ok(r)
}

/// Real data segments A sent on the exposed connections (the shielded ones get none).
fn capture_samples(p: &mut Pair) -> Result<Vec<Vec<u8>>, String> {
    let mut samples = Vec::new();
    for c in p.conns.clone().iter().filter(|c| !c.shielded) {
        p.a.send(c.a, &[7u8; 3000]).map_err(|e| e.to_string())?;
    }
    while let Some(n) = p.a.poll_transmit(p.now, &mut p.buf) {
        samples.push(p.buf[..n].to_vec());
        p.b.handle_packet(p.now, &p.buf[..n]);
    }
    p.pump()?;
    let mut sink = vec![0u8; 65536];
    for c in &p.conns {
        while p.b.recv(c.b, &mut sink).is_ok_and(|n| n > 0) {}
    }
    if samples.is_empty() {
        return Err("no sample segments captured".into());
    }
    Ok(samples)
}

/// A captured segment with 1-3 bit flips, sometimes truncated or extended.
fn mutate_sample(rng: &mut Rng, samples: &[Vec<u8>], pkt: &mut [u8]) -> usize {
    let s = &samples[rng.gen_range(0, samples.len() as u64) as usize];
    let n = s.len().min(pkt.len());
    pkt[..n].copy_from_slice(&s[..n]);
    for _ in 0..rng.gen_range(1, 4) {
        let bit = rng.gen_range(0, (n * 8) as u64) as usize;
        pkt[bit / 8] ^= 1 << (bit % 8);
    }
    if rng.chance(0.3) { (rng.gen_range(0, n as u64 + 40) as usize).min(pkt.len()) } else { n }
}

/// `base` moved by a signed offset of up to `span` in either direction, or (1 in 5) any
/// 32-bit value.
fn near(rng: &mut Rng, base: u32, span: u32) -> u32 {
    if rng.chance(0.2) {
        return rng.next_u64() as u32;
    }
    let off = rng.gen_range(0, 2 * span as u64 + 1) as i64 - span as i64;
    base.wrapping_add(off as u32)
}

/// Mutated flags: mostly ACK plus a few random bits, sometimes all random.
fn flags(rng: &mut Rng) -> TcpFlags {
    if rng.chance(0.1) {
        return TcpFlags(rng.next_u64() as u8);
    }
    let mut f = if rng.chance(0.85) { TcpFlags::ACK.0 } else { 0 };
    for (bit, p) in [(TcpFlags::PSH, 0.3), (TcpFlags::FIN, 0.1), (TcpFlags::RST, 0.1), (TcpFlags::SYN, 0.08)]
    {
        if rng.chance(p) {
            f |= bit.0;
        }
    }
    for bit in [TcpFlags::URG, TcpFlags::ECE, TcpFlags::CWR] {
        if rng.chance(0.03) {
            f |= bit.0;
        }
    }
    TcpFlags(f)
}

fn random_options(rng: &mut Rng, sack_base: u32) -> TcpOptions {
    let mut o = TcpOptions::default();
    if rng.chance(0.1) {
        o.mss = Some(rng.next_u64() as u16);
    }
    if rng.chance(0.1) {
        o.window_scale = Some(rng.gen_range(0, 20) as u8);
    }
    if rng.chance(0.3) {
        o.timestamps = Some((rng.next_u64() as u32, rng.next_u64() as u32));
    }
    if rng.chance(0.05) {
        o.sack_permitted = true;
    }
    if rng.chance(0.2) {
        let s = near(rng, sack_base, 1 << 17);
        o.sack.push(SeqNum(s), SeqNum(s.wrapping_add(rng.gen_range(0, 5000) as u32)));
    }
    o
}

/// True when `[seq, seq+len]` reaches into `[rcv_nxt - 1, rcv_nxt + rcv_wnd + 1]`
/// (a deliberately generous test: RFC 9293 §3.10.7.4 acceptability, with margins).
fn touches_window(st: &Status, seq: u32, len: u32) -> bool {
    let lo = st.rcv_nxt.wrapping_sub(1);
    let span = st.rcv_wnd.saturating_add(2);
    let start = seq.wrapping_sub(lo);
    start <= span || (start > u32::MAX / 2 && (len as u64 + 1) >= (lo.wrapping_sub(seq)) as u64)
}

/// A well-formed segment (valid checksums) to one live quad, seq near RCV.NXT and ack
/// near SND.UNA. On a shielded connection, what could legitimately change it is removed.
fn aimed(rng: &mut Rng, c: &Conn, st: Option<&Status>, r: &mut LiveReport, pkt: &mut [u8]) -> usize {
    r.aimed += 1;
    let (rcv_nxt, rcv_wnd, snd_una) = st.map_or((0, 65535, 0), |s| (s.rcv_nxt, s.rcv_wnd, s.snd_una));
    let w = rcv_wnd.max(1024);
    let mut seq = near(rng, rcv_nxt, w.saturating_mul(3));
    let ack = near(rng, snd_una, w.saturating_mul(3));
    let mut f = flags(rng);
    let mut options = random_options(rng, snd_una);
    let mut len = match rng.gen_range(0, 4) {
        0 | 1 => 0,
        2 => rng.gen_range(1, 1400) as u32,
        _ => rng.gen_range(1, 4) as u32,
    };
    if let Some(st) = st {
        let inside = touches_window(st, seq, len);
        if inside {
            r.in_window += 1;
        }
        if c.shielded && inside {
            // In-window data, FIN or timestamps may rightly change the connection;
            // an RST exactly at RCV.NXT rightly resets it (RFC 5961 §3.2).
            len = 0;
            f.0 &= !TcpFlags::FIN.0;
            options.timestamps = None;
            if f.0 & TcpFlags::RST.0 != 0 && seq == st.rcv_nxt {
                seq = seq.wrapping_add(1);
            }
        }
        if inside && f.0 & TcpFlags::RST.0 != 0 && seq != st.rcv_nxt {
            r.in_window_rst += 1;
        }
        if inside && f.0 & TcpFlags::SYN.0 != 0 {
            r.in_window_syn += 1;
        }
    }
    let payload = vec![0x5a; len as usize];
    let h = TcpHeaderOut {
        tcp: utcp::wire::TcpRepr {
            src_port: c.port,
            dst_port: if rng.chance(0.02) { rng.next_u64() as u16 } else { PORT },
            seq: SeqNum(seq),
            ack: SeqNum(ack),
            flags: f,
            window: rng.next_u64() as u16,
            urgent: rng.next_u64() as u16,
            options,
        },
        src: A,
        dst: if rng.chance(0.01) { IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)) } else { B },
        ttl: 64,
        ip_id: 0,
        flow_label: 0,
    };
    emit_ipv4_tcp(pkt, &h, OptionLayout::Linux, &[&payload]).unwrap_or(0)
}

/// Shielded connections must be established on both ends and carry data byte-exact both
/// ways; exposed ones are counted.
fn check_survivors(p: &mut Pair, r: &mut LiveReport) -> Result<(), String> {
    // An exposed connection that took blind in-window data is desynchronized, and its two
    // ends may answer each other's ACKs forever (an ACK storm): count, then abort them.
    for c in p.conns.clone().iter().filter(|c| !c.shielded) {
        r.exposed += 1;
        r.exposed_established += p.both_established(c) as usize;
        p.a.abort(c.a);
    }
    for _ in 0..20 {
        p.tick(Duration::from_millis(100));
        p.pump()?;
    }
    for c in p.conns.clone().into_iter().filter(|c| c.shielded) {
        let up = p.both_established(&c);
        r.shielded += 1;
        if !up {
            let (sa, sb) = (p.a.state(c.a), p.b.state(c.b));
            return Err(format!(
                "shielded connection from port {} did not survive: A {sa:?}, B {sb:?}",
                c.port
            ));
        }
        if !p.transfer(&c, true, 20_000) || !p.transfer(&c, false, 20_000) {
            return Err(format!("shielded connection from port {} no longer delivers byte-exact", c.port));
        }
        r.shielded_ok += 1;
    }
    Ok(())
}

/// A sequence or acknowledgment number relative to the connection's state.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Rel {
    /// Exactly the reference (RCV.NXT or SND.UNA).
    Exact,
    /// Up to 64 KiB before it.
    Before(u16),
    /// Up to 64 KiB after it.
    After(u16),
    /// Around the right edge of the receive window.
    WindowEdge(i8),
    /// Any value.
    Raw(u32),
}

impl Rel {
    fn resolve(self, base: u32, wnd: u32) -> u32 {
        match self {
            Rel::Exact => base,
            Rel::Before(d) => base.wrapping_sub(d as u32),
            Rel::After(d) => base.wrapping_add(d as u32),
            Rel::WindowEdge(d) => base.wrapping_add(wnd).wrapping_add(d as i32 as u32),
            Rel::Raw(v) => v,
        }
    }
}

/// One structured segment for [`run_structured`].
#[derive(Arbitrary, Clone, Debug)]
pub struct SegSpec {
    /// Which live connection (modulo the count); `None` aims at a closed port.
    pub conn: Option<u8>,
    /// Sequence number, relative to B's RCV.NXT.
    pub seq: Rel,
    /// Acknowledgment number, relative to B's SND.UNA.
    pub ack: Rel,
    /// TCP flags, all eight bits; SYN, FIN and RST survive only when `rare < 16`
    /// (otherwise every other segment would be an RST and the connections die at once).
    pub flags: u8,
    /// See `flags` and `corrupt`.
    pub rare: u8,
    /// Window field.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// MSS option.
    pub mss: Option<u16>,
    /// Window-scale option.
    pub wscale: Option<u8>,
    /// SACK-permitted option.
    pub sack_permitted: bool,
    /// Timestamps option (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    /// Up to four SACK blocks, relative to SND.UNA, with lengths.
    pub sack: Vec<(Rel, u16)>,
    /// Payload length (modulo 1461).
    pub payload: u16,
    /// Cut the emitted packet to this many bytes (only when `rare < 40`).
    pub truncate: Option<u16>,
    /// XOR one byte (index modulo the length) after the checksums were computed (only
    /// when `rare < 40`).
    pub corrupt: Option<(u16, u8)>,
}

impl SegSpec {
    fn build(&self, p: &Pair, pkt: &mut [u8]) -> usize {
        let c = self.conn.map(|k| p.conns[k as usize % p.conns.len()]);
        let st = c.and_then(|c| p.b.status(c.b).ok());
        let (rcv_nxt, rcv_wnd, snd_una) = st.map_or((0, 0, 0), |s| (s.rcv_nxt, s.rcv_wnd, s.snd_una));
        let mut options = TcpOptions {
            mss: self.mss,
            window_scale: self.wscale,
            sack_permitted: self.sack_permitted,
            timestamps: self.timestamps,
            ..TcpOptions::default()
        };
        for (rel, len) in self.sack.iter().take(4) {
            let s = rel.resolve(snd_una, 0);
            options.sack.push(SeqNum(s), SeqNum(s.wrapping_add(*len as u32)));
        }
        let payload = vec![0xa5; self.payload as usize % 1461];
        let h = TcpHeaderOut {
            tcp: utcp::wire::TcpRepr {
                src_port: c.map_or(40_000, |c| c.port),
                dst_port: if c.is_some() { PORT } else { 81 },
                seq: SeqNum(self.seq.resolve(rcv_nxt, rcv_wnd)),
                ack: SeqNum(self.ack.resolve(snd_una, rcv_wnd)),
                flags: TcpFlags(if self.rare < 16 { self.flags } else { self.flags & !0x07 }),
                window: self.window,
                urgent: self.urgent,
                options,
            },
            src: A,
            dst: B,
            ttl: 64,
            ip_id: 0,
            flow_label: 0,
        };
        let mut n = emit_ipv4_tcp(pkt, &h, OptionLayout::Linux, &[&payload]).unwrap_or(0);
        if self.rare >= 40 {
            return n;
        }
        if let Some((at, x)) = self.corrupt
            && n > 0
        {
            pkt[at as usize % n] ^= x;
        }
        if let Some(t) = self.truncate {
            n = n.min(t as usize);
        }
        n
    }
}

/// What a [`run_structured`] saw.
#[derive(Clone, Debug, Default)]
pub struct StructuredReport {
    /// Inputs turned into segment lists.
    pub inputs: u64,
    /// Segments built and injected.
    pub segments: u64,
    /// Packets B sent in answer to injected ones (no amplification: at most one each).
    pub answers: u64,
    /// Fresh pairs of stacks made after all connections of the previous one had died.
    pub pairs: u64,
    /// Live connections still established on both ends at the end.
    pub established: usize,
    /// Segments B processed and packets it dropped (all reasons).
    pub in_segs: u64,
    /// Packets B dropped, all reasons.
    pub drops: u64,
}

impl StructuredReport {
    fn tally(&mut self, p: &Pair) {
        self.in_segs += p.b.counters().in_segs;
        self.drops += p.b.counters().total_drops();
        self.answers += p.answers;
    }
}

/// Structure-aware fuzzing: `inputs` seeded byte strings, each decoded by `arbitrary`
/// into up to 16 [`SegSpec`]s and injected into B, which holds 6 live connections (a new
/// pair once all of them have died). Afterwards a fresh connection must carry data byte-exact.
pub fn run_structured(inputs: u64, seed: u64) -> Result<StructuredReport, String> {
    let mut rng = Rng::new(seed);
    let mut r = StructuredReport::default();
    let mut p = Pair::new(6)?;
    let mut bytes = vec![0u8; 1024];
    let mut pkt = vec![0u8; 2048];
    for i in 0..inputs {
        if i % 50 == 49 && !p.conns.clone().iter().any(|c| p.both_established(c)) {
            r.tally(&p);
            r.pairs += 1;
            p = Pair::new(6)?;
        }
        let len = rng.gen_range(16, bytes.len() as u64) as usize;
        rng.fill_bytes(&mut bytes[..len]);
        let mut u = Unstructured::new(&bytes[..len]);
        r.inputs += 1;
        for _ in 0..16 {
            let Ok(spec) = SegSpec::arbitrary(&mut u) else { break };
            if u.is_empty() {
                break;
            }
            let n = spec.build(&p, &mut pkt);
            p.inject(&mut rng, &pkt[..n]);
            r.segments += 1;
        }
        if i % 100 == 0 {
            p.tick(Duration::from_millis(7));
        }
    }
    r.established = p.conns.clone().iter().filter(|c| p.both_established(c)).count();
    r.tally(&p);
    // Whatever happened to the fuzzed connections (some are desynchronized and would
    // ACK each other forever), once A aborts them B still serves a new one.
    for c in p.conns.clone() {
        p.a.abort(c.a);
    }
    p.tick(Duration::from_secs(1));
    p.pump()?;
    let c = p.open()?;
    if !p.transfer(&c, true, 50_000) || !p.transfer(&c, false, 50_000) {
        return Err("after the structured inputs, a new connection does not deliver byte-exact".into());
    }
    Ok(r)
}
