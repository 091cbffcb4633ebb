//! Executing a parsed script against a fresh [`Stack`] on a virtual clock.
//!
//! The script plays the remote peer: inbound segments are built and handed to
//! `Stack::handle_packet` at their scheduled time; the stack's output is queued with the
//! virtual time it was emitted and matched, in order, against the script's `>` lines.
//! System calls drive the stack's user API as the local application would.
//!
//! Sequence numbers are mapped the way packetdrill maps them: the remote side's numbers
//! are used as written (the script's ISN is its first SYN's sequence number), the stack's
//! are shifted so that its ISN appears as the script's (normally 0); outbound TS values are
//! shifted relative to the first one seen, and an inbound TS echo reply is replaced by the
//! stack's real TS value that the script wrote with that number.
//!
//! A segment the stack sends that no `>` line consumes fails the script once a later
//! event is due more than the tolerance after it (packetdrill only notices such a
//! segment when a later `>` line reads it); segments still coming after the last line
//! are ignored, as in packetdrill.

use super::ast::*;
use super::packet::{self, InboundSegment, Outbound};
use super::profile::{KeepaliveField, Profile, SysctlEffect, apply_sysctl};
use super::shell::{self, RouteMetrics, Stmt};
use super::syscall::{Pending, Sock};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use utcp::engine::{Config, Stack, State};
use utcp::time::Instant;

/// Why a run stopped before the end of the script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    Fail { line: usize, reason: String },
    Unsupported { line: usize, feature: String },
}

pub(super) type Res<T> = Result<T, Stop>;

/// packetdrill's default local address under `--ip_version=ipv6`.
pub(super) const IPV6_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfd3d, 0xfa7b, 0xd17d, 0, 0, 0, 0, 0);
/// packetdrill's default remote address under `--ip_version=ipv6`.
pub(super) const IPV6_REMOTE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

pub(super) fn fail<T>(line: usize, reason: impl Into<String>) -> Res<T> {
    Err(Stop::Fail { line, reason: reason.into() })
}

pub(super) fn unsupported<T>(line: usize, feature: impl Into<String>) -> Res<T> {
    Err(Stop::Unsupported { line, feature: feature.into() })
}

/// Script <-> live number mapping (packetdrill's rules).
#[derive(Default)]
pub(super) struct SeqMap {
    script_local_isn: u32,
    live_local_isn: u32,
    /// Script TS val -> the live TS val the stack sent where the script wrote it.
    ts_map: HashMap<u32, u32>,
    /// (script, live) TS val of the first outbound segment carrying timestamps.
    first_ts: Option<(u32, u32)>,
}

impl SeqMap {
    /// Add to a script-space local sequence number to get the live one.
    fn local_offset(&self) -> u32 {
        self.live_local_isn.wrapping_sub(self.script_local_isn)
    }
}

/// Keepalive timing set by sysctls, used when a socket turns SO_KEEPALIVE on.
#[derive(Clone, Copy, Debug)]
pub(super) struct KeepDefaults {
    pub idle_ms: u64,
    pub intvl_ms: u64,
    pub cnt: u64,
}

pub(super) struct Runner<'a> {
    pub(super) script: &'a Script,
    pub(super) profile: &'a Profile,
    /// Configuration for the stack; frozen into it at first use.
    pub(super) cfg: Config,
    pub(super) stack: Option<Stack>,
    pub(super) keep: KeepDefaults,
    pub(super) tolerance: i64,
    pub(super) ts_tick_us: Option<i64>,
    pub(super) non_fatal_syscall: bool,
    pub(super) local_ip: IpAddr,
    pub(super) remote_ip: IpAddr,
    pub(super) bind_port: u16,
    pub(super) connect_port: u16,
    pub(super) remote_port: u16,
    /// Virtual time, microseconds since the script start.
    pub(super) now: i64,
    /// Packets the stack emitted and no `>` line has consumed yet: (time, bytes).
    queue: VecDeque<(i64, Vec<u8>)>,
    pub(super) fds: BTreeMap<i64, Sock>,
    /// The socket `%{ }%` blocks inspect (the last one created or accepted).
    pub(super) under_test: Option<i64>,
    map: SeqMap,
    /// Live (local, remote) addresses of the connection under test.
    pub(super) tuple: Option<(SocketAddr, SocketAddr)>,
    pub(super) pending: Option<Pending>,
    pub(super) notes: Vec<String>,
    pub(super) trace: Vec<String>,
    pub(super) verbose: bool,
    pub(super) line: usize,
    /// `nstat` history: the counters at the last call that updated it.
    pub(super) nstat_hist: Option<Vec<(&'static str, u64)>>,
}

const MAX_TIMER_STEPS: usize = 1_000_000;
/// How long `*` and unbounded blocking calls may wait, in virtual time.
const MAX_WAIT_US: i64 = 3_600_000_000;

impl<'a> Runner<'a> {
    pub(super) fn new(script: &'a Script, profile: &'a Profile, verbose: bool) -> Runner<'a> {
        Runner {
            script,
            profile,
            cfg: profile.config.clone(),
            stack: None,
            keep: KeepDefaults { idle_ms: 7_200_000, intvl_ms: 75_000, cnt: 8 },
            tolerance: 4_000,
            ts_tick_us: None,
            non_fatal_syscall: false,
            local_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
            remote_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            bind_port: 8080,
            connect_port: 8080,
            remote_port: 42_000,
            now: 0,
            queue: VecDeque::new(),
            fds: BTreeMap::new(),
            under_test: None,
            map: SeqMap::default(),
            tuple: None,
            pending: None,
            notes: Vec::new(),
            trace: Vec::new(),
            verbose,
            line: 0,
            nstat_hist: None,
        }
    }

    pub(super) fn note(&mut self, s: String) {
        if !self.notes.contains(&s) {
            self.notes.push(s);
        }
    }

    fn log(&mut self, s: String) {
        if self.verbose {
            self.trace.push(format!("{:>10.6} {}", self.now as f64 / 1e6, s));
        }
    }

    pub(super) fn instant(&self) -> Instant {
        Instant::from_micros(self.now.max(0) as u64)
    }

    /// The stack, created from the configuration so far on first use.
    pub(super) fn stack(&mut self) -> &mut Stack {
        let (cfg, ip) = (&self.cfg, self.local_ip);
        self.stack.get_or_insert_with(|| {
            let mut s = Stack::new(cfg.clone());
            s.add_local_addr(ip);
            s
        })
    }

    /// Header flags: `--tolerance_usecs`, `--ip_version`, ... Others are noted and ignored.
    pub(super) fn apply_header_flags(&mut self) -> Res<()> {
        for f in &self.script.flags {
            let v = f.value.as_deref().unwrap_or("");
            let bad =
                |what: &str| Stop::Fail { line: f.line, reason: format!("--{}: bad {what} {v:?}", f.name) };
            match f.name.as_str() {
                "ip_version" => match v {
                    "ipv4" => {}
                    // packetdrill's IPv6 defaults (a ULA local and a documentation remote
                    // address); `--local_ip`/`--remote_ip` may override them.
                    "ipv6" => {
                        self.local_ip = IpAddr::V6(IPV6_LOCAL);
                        self.remote_ip = IpAddr::V6(IPV6_REMOTE);
                    }
                    other => {
                        return unsupported(f.line, format!("--ip_version={other} (IPv4 and IPv6 are run)"));
                    }
                },
                "tolerance_usecs" => self.tolerance = v.parse().map_err(|_| bad("number"))?,
                "tcp_ts_tick_usecs" => self.ts_tick_us = Some(v.parse().map_err(|_| bad("number"))?),
                "mtu" => self.cfg.mtu = v.parse().map_err(|_| bad("MTU"))?,
                "non_fatal" => {
                    for part in v.split(',') {
                        match part {
                            "syscall" => self.non_fatal_syscall = true,
                            other => return unsupported(f.line, format!("--non_fatal={other}")),
                        }
                    }
                }
                "local_ip" => self.local_ip = v.parse().map_err(|_| bad("IP address"))?,
                "remote_ip" => self.remote_ip = v.parse().map_err(|_| bad("IP address"))?,
                "bind_port" => self.bind_port = v.parse().map_err(|_| bad("port"))?,
                "connect_port" => self.connect_port = v.parse().map_err(|_| bad("port"))?,
                "tcp_md5_secret" => return unsupported(f.line, "TCP MD5 signatures (--tcp_md5_secret)"),
                "udp_encapsulation" => return unsupported(f.line, "UDP encapsulation (--udp_encapsulation)"),
                other => self.note(format!("line {}: header flag --{other} ignored", f.line)),
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ time

    /// Drain what the stack wants to send and its events; retry a blocked call.
    pub(super) fn collect(&mut self) -> Res<()> {
        if let Some(stack) = self.stack.as_mut() {
            let now = Instant::from_micros(self.now.max(0) as u64);
            let mut buf = vec![0u8; 65_600];
            let mut guard = 0;
            while let Some(n) = stack.poll_transmit(now, &mut buf) {
                let bytes = buf.get(..n).map(<[u8]>::to_vec).unwrap_or_default();
                if self.verbose && self.profile.explain {
                    let why = stack.last_tx_reason();
                    let seg = packet::parse_outbound(&bytes).map(|o| packet::outbound_to_string(&o));
                    let seg = seg.unwrap_or_else(|e| e);
                    self.trace.push(format!("{:>10.6}   utcp sends {seg} ; {why}", self.now as f64 / 1e6));
                }
                self.queue.push_back((self.now, bytes));
                guard += 1;
                if guard > 100_000 {
                    let last = match packet::parse_outbound(&buf[..n.min(buf.len())]) {
                        Ok(o) => packet::outbound_to_string(&o),
                        Err(e) => e,
                    };
                    return fail(
                        self.line,
                        format!(
                            "the stack emits packets without end (100000 in one instant, last: {last} in live space)"
                        ),
                    );
                }
            }
            while stack.poll_event().is_some() {}
        }
        self.try_pending()
    }

    /// Advance virtual time to `t`, firing timers on the way.
    pub(super) fn advance_to(&mut self, t: i64) -> Res<()> {
        self.collect()?;
        for _ in 0..MAX_TIMER_STEPS {
            let Some(stack) = self.stack.as_mut() else {
                self.now = self.now.max(t);
                return Ok(());
            };
            match stack.poll_timeout() {
                Some(d) if (d.micros() as i64) <= t => {
                    self.now = self.now.max(d.micros() as i64);
                    let now = Instant::from_micros(self.now.max(0) as u64);
                    stack.handle_timeout(now);
                    self.collect()?;
                }
                _ => {
                    self.now = self.now.max(t);
                    return self.collect();
                }
            }
        }
        fail(self.line, "the stack's timers do not settle (more than a million expiries)")
    }

    /// Outbound packets emitted before `t - tolerance` that no `>` line consumed.
    fn check_unexpected(&mut self, t: i64) -> Res<()> {
        if let Some((tp, bytes)) = self.queue.front()
            && *tp < t - self.tolerance
        {
            let tp = *tp;
            let shown = match packet::parse_outbound(bytes) {
                Ok(o) => packet::outbound_to_string(&self.to_script_space(&o, None)),
                Err(e) => format!("undecodable packet ({e})"),
            };
            return fail(self.line, format!("unexpected outbound packet at {:.6}: {shown}", tp as f64 / 1e6));
        }
        Ok(())
    }

    /// The scheduled (start, end) time of an event relative to the current time.
    fn schedule(&self, timing: Timing) -> (i64, i64) {
        match timing {
            Timing::Absolute(t) => (t, t),
            Timing::Relative(d) => (self.now + d, self.now + d),
            Timing::Any => (self.now, self.now + MAX_WAIT_US),
            Timing::AbsoluteRange(a, b) => (a, b),
            Timing::RelativeRange(a, b) => (self.now + a, self.now + b),
        }
    }

    // ------------------------------------------------------------------ events

    pub(super) fn run(&mut self) -> Res<()> {
        self.apply_header_flags()?;
        // packetdrill's init command runs before the first event, like a command at time 0.
        for (line, cmd) in &self.script.init_commands {
            self.line = *line;
            let used = !self.script.events.is_empty();
            self.command(*line, cmd, used)?;
        }
        let events = &self.script.events;
        for (i, ev) in events.iter().enumerate() {
            self.line = ev.line;
            let (start, end) = self.schedule(ev.timing);
            match &ev.action {
                Action::Unsupported(what) => return unsupported(ev.line, what.clone()),
                Action::Packet(p) if p.direction == Direction::Outbound => {
                    self.expect_outbound(p, ev.timing, start, end)?;
                }
                action => {
                    let t = start.max(self.now);
                    if !matches!(ev.timing, Timing::Any) && t > end + self.tolerance {
                        return fail(
                            ev.line,
                            format!(
                                "timing error: event scheduled at {:.6} but the script is already at {:.6}",
                                start as f64 / 1e6,
                                self.now as f64 / 1e6
                            ),
                        );
                    }
                    self.advance_to(t)?;
                    self.check_unexpected(t)?;
                    match action {
                        Action::Packet(p) => self.inject(p)?,
                        Action::Syscall(sc) => {
                            // `start...end`: the end is in the frame of the start.
                            let end_time = ev.end_time.map(|e| match ev.timing {
                                Timing::Relative(d) => start - d + e,
                                Timing::RelativeRange(a, _) => start - a + e,
                                _ => e,
                            });
                            self.syscall(ev.line, sc, end_time)?;
                        }
                        Action::Command(cmd) => {
                            self.command(ev.line, cmd, stack_used_after(events, i))?;
                        }
                        Action::Code(code) => self.code(ev.line, code)?,
                        Action::Icmp(i) => self.inject_icmp(ev.line, i)?,
                        Action::Unsupported(_) => {}
                    }
                }
            }
        }
        self.finish()
    }

    /// After the last event: a call still blocked must complete within its window.
    fn finish(&mut self) -> Res<()> {
        if let Some(p) = &self.pending {
            let (line, deadline) = (p.line, p.end.map(|e| e + self.tolerance));
            self.line = line;
            let deadline = deadline.unwrap_or(self.now + MAX_WAIT_US);
            while self.pending.is_some() && self.now < deadline {
                let next = self
                    .stack
                    .as_mut()
                    .and_then(|s| s.poll_timeout())
                    .map(|d| d.micros() as i64)
                    .filter(|&d| d <= deadline);
                match next {
                    Some(d) => self.advance_to(d.max(self.now))?,
                    None => self.advance_to(deadline)?,
                }
            }
            if let Some(p) = &self.pending {
                return fail(p.line, format!("blocking {}() never returned", p.call.name));
            }
        }
        for (line, cmd) in &self.script.cleanup_commands {
            self.note(format!("line {line}: cleanup command ignored: `{cmd}`"));
        }
        Ok(())
    }

    // ------------------------------------------------------------------ packets

    /// An inbound ICMP error (script/icmp.rs): its quoted sequence number is ours, mapped
    /// from script space like an outbound segment's.
    fn inject_icmp(&mut self, line: usize, i: &super::icmp::IcmpLine) -> Res<()> {
        let (local, remote) = self.tuple.unwrap_or((
            SocketAddr::new(self.local_ip, self.bind_port),
            SocketAddr::new(self.remote_ip, self.remote_port),
        ));
        let live = i.seq.wrapping_add(self.map.local_offset());
        let bytes = match super::icmp::build(i, local, remote, live) {
            Ok(b) => b,
            Err(why) => return unsupported(line, why),
        };
        let code = i.code_name.as_deref().unwrap_or("");
        self.log(format!("< icmp {} {code} [{}({})]", i.ty_name, i.seq, i.len));
        let now = self.instant();
        self.stack().handle_packet(now, &bytes);
        self.collect()
    }

    fn inject(&mut self, p: &Packet) -> Res<()> {
        let Some(seq) = p.seq else {
            return fail(self.line, "an inbound packet needs a sequence number, not `...`");
        };
        let (local, remote) = self.tuple.unwrap_or((
            SocketAddr::new(self.local_ip, self.bind_port),
            SocketAddr::new(self.remote_ip, self.remote_port),
        ));
        let ack_flag = p.flags & 0x10 != 0;
        let off = self.map.local_offset();
        let ack = match p.ack {
            Some(a) if ack_flag => a.wrapping_add(off),
            Some(a) => a,
            None => 0,
        };
        let mut opts = match &p.options {
            Some(o) => packet::encode_options(o),
            None => return fail(self.line, "an inbound packet cannot have `<...>` options"),
        };
        for e in packet::sack_edges(&opts) {
            let v = packet::read_u32(&opts, e).wrapping_add(off);
            packet::write_u32(&mut opts, e, v);
        }
        if ack_flag && let Some(ts) = packet::find_timestamp(&opts) {
            let script_ecr = packet::read_u32(&opts, ts + 4);
            let Some(&live) = self.map.ts_map.get(&script_ecr) else {
                return fail(
                    self.line,
                    format!("TS ecr {script_ecr}: no outbound packet had the script TS val {script_ecr}"),
                );
            };
            packet::write_u32(&mut opts, ts + 4, live);
        }
        let bytes = packet::build_ip_tcp(&InboundSegment {
            src: remote,
            dst: local,
            seq,
            ack,
            flags: p.flags,
            window: p.win.unwrap_or(65535),
            urgent: p.urg.unwrap_or(0),
            options: &opts,
            payload_len: p.len as usize,
            ttl: p.ip.ttl.unwrap_or(64),
            tos: p.ip.tos.unwrap_or(0),
        });
        self.log(format!("< {}", packet::script_packet_to_string(p)));
        let now = self.instant();
        self.stack().handle_packet(now, &bytes);
        self.collect()
    }

    /// Map a live outbound packet into script space. `script` supplies the TS val to
    /// record the mapping for (when the packet is being matched).
    fn to_script_space(&self, o: &Outbound, script_ts: Option<u32>) -> Outbound {
        let mut a = o.clone();
        a.seq = o.seq.wrapping_sub(self.map.local_offset());
        if let Some(ts) = packet::find_timestamp(&a.options)
            && let Some((first_script, first_live)) =
                self.map.first_ts.or(script_ts.map(|s| (s, packet::read_u32(&o.options, ts))))
        {
            let live = packet::read_u32(&a.options, ts);
            packet::write_u32(&mut a.options, ts, first_script.wrapping_add(live.wrapping_sub(first_live)));
        }
        a
    }

    fn expect_outbound(&mut self, p: &Packet, timing: Timing, start: i64, end: i64) -> Res<()> {
        let lo = if matches!(timing, Timing::Any) { i64::MIN } else { start - self.tolerance };
        let hi = if matches!(timing, Timing::Any) { end } else { end + self.tolerance };
        // Wait for the next packet, firing timers, up to the end of the window.
        let (tp, bytes) = loop {
            self.collect()?;
            if let Some(x) = self.queue.pop_front() {
                break x;
            }
            let next = self.stack.as_mut().and_then(|s| s.poll_timeout()).map(|d| d.micros() as i64);
            match next {
                Some(d) if d <= hi => self.advance_to(d.max(self.now))?,
                _ => {
                    self.advance_to(hi.max(self.now))?;
                    match self.queue.pop_front() {
                        Some(x) => break x,
                        None => return self.nothing_sent(p, hi),
                    }
                }
            }
        };
        let o = match packet::parse_outbound(&bytes) {
            Ok(o) => o,
            Err(e) => return fail(self.line, format!("the stack sent a malformed packet: {e}")),
        };
        // The stack's SYN or SYN-ACK fixes its ISN for the mapping.
        if p.flags & 0x02 != 0
            && o.flags & 0x02 != 0
            && let Some(s) = p.seq
        {
            self.map.script_local_isn = s;
            self.map.live_local_isn = o.seq;
        }
        let script_ts = p.options.as_ref().and_then(|opts| {
            opts.iter().find_map(|o| match o {
                TcpOpt::Timestamp { val, .. } => Some(*val),
                _ => None,
            })
        });
        let actual = self.to_script_space(&o, script_ts);
        if let (Some(sv), Some(ts)) = (script_ts, packet::find_timestamp(&o.options)) {
            let live = packet::read_u32(&o.options, ts);
            self.map.ts_map.insert(sv, live);
            if self.map.first_ts.is_none() {
                self.map.first_ts = Some((sv, live));
            }
        }
        self.log(format!("> {}", packet::outbound_to_string(&actual)));
        if let Err(why) = self.compare(p, &o, &actual) {
            return fail(
                self.line,
                format!(
                    "{why}\n    script packet: {}\n    actual packet: {} (at {:.6})",
                    packet::script_packet_to_string(p),
                    packet::outbound_to_string(&actual),
                    tp as f64 / 1e6
                ),
            );
        }
        if tp < lo || tp > hi {
            return fail(
                self.line,
                format!(
                    "timing error: expected {} at {:.6}{} (tolerance {} us) but it was sent at {:.6}",
                    packet::script_packet_to_string(p),
                    start as f64 / 1e6,
                    if end != start { format!("~{:.6}", end as f64 / 1e6) } else { String::new() },
                    self.tolerance,
                    tp as f64 / 1e6
                ),
            );
        }
        // The next relative time counts from when this packet left.
        self.now = self.now.max(tp);
        Ok(())
    }

    /// Nothing came by `hi`: say so, and for the diagnosis look ahead (up to 60 s of
    /// virtual time) for the packet the stack sends next.
    fn nothing_sent(&mut self, p: &Packet, hi: i64) -> Res<()> {
        let mut later = String::new();
        let horizon = hi + 60_000_000;
        while self.queue.is_empty() {
            let next = self.stack.as_mut().and_then(|s| s.poll_timeout()).map(|d| d.micros() as i64);
            match next {
                Some(d) if d <= horizon => self.advance_to(d.max(self.now))?,
                _ => break,
            }
        }
        if let Some((tp, bytes)) = self.queue.front()
            && let Ok(o) = packet::parse_outbound(bytes)
        {
            later = format!(
                " (timing error: its next packet, {}, left at {:.6})",
                packet::outbound_to_string(&self.to_script_space(&o, None)),
                *tp as f64 / 1e6
            );
        }
        fail(
            self.line,
            format!(
                "expected outbound packet {} by {:.6}, but the stack sent nothing{later}",
                packet::script_packet_to_string(p),
                hi as f64 / 1e6
            ),
        )
    }

    /// Field-by-field comparison in script space, as packetdrill does it.
    fn compare(&self, p: &Packet, live: &Outbound, a: &Outbound) -> Result<(), String> {
        if live.src.ip() != self.local_ip || live.dst.ip() != self.remote_ip {
            return Err(format!(
                "packet from {} to {} is not between the script's hosts",
                live.src, live.dst
            ));
        }
        if let Some((l, r)) = self.tuple
            && (live.src != l || live.dst != r)
            && live.flags & 0x02 == 0
        {
            return Err(format!(
                "packet {} -> {} is not for the connection under test {l} -> {r}",
                live.src, live.dst
            ));
        }
        if a.flags != p.flags {
            return Err(format!(
                "TCP flags: expected {} but got {}",
                packet::flags_to_string(p.flags),
                packet::flags_to_string(a.flags)
            ));
        }
        let seq = if p.absolute_seq { live.seq } else { a.seq };
        if let Some(s) = p.seq
            && seq != s
        {
            return Err(format!("sequence number: expected {s} but got {seq}"));
        }
        if a.payload.len() != p.len as usize {
            return Err(format!("payload length: expected {} but got {}", p.len, a.payload.len()));
        }
        if a.payload.iter().any(|&b| b != 0) {
            return Err("payload differs from the bytes written".into());
        }
        let want_ack = p.ack.unwrap_or(0);
        if a.ack != want_ack {
            return Err(format!("ack number: expected {want_ack} but got {}", a.ack));
        }
        if let Some(w) = p.win
            && a.window != w
        {
            return Err(format!("window: expected {w} but got {}", a.window));
        }
        let urg = p.urg.unwrap_or(0);
        if a.urgent != urg {
            return Err(format!("urgent pointer: expected {urg} but got {}", a.urgent));
        }
        if let Some(ttl) = p.ip.ttl
            && a.ttl != ttl
        {
            return Err(format!("IP TTL: expected {ttl} but got {}", a.ttl));
        }
        if let Some(tos) = p.ip.tos
            && a.tos != tos
        {
            return Err(format!("IP TOS: expected {tos:#x} but got {:#x}", a.tos));
        }
        if let Some(opts) = &p.options {
            let want = packet::encode_options(opts);
            let mut got = a.options.clone();
            if let (Some(ws), Some(gs)) = (packet::find_timestamp(&want), packet::find_timestamp(&got)) {
                let (script_val, actual_val) = (packet::read_u32(&want, ws), packet::read_u32(&got, gs));
                if let Some(tick) = self.ts_tick_us
                    && (actual_val.wrapping_sub(script_val) as i32).unsigned_abs() as i64 * tick
                        > self.tolerance
                {
                    return Err(format!("TS val: expected {script_val} but got {actual_val}"));
                }
                packet::write_u32(&mut got, gs, script_val);
            }
            if got != want {
                return Err(format!(
                    "TCP options: expected <{}> but got <{}>",
                    packet::options_to_string(&want),
                    packet::options_to_string(&a.options)
                ));
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ commands

    /// A backquoted command: every statement is honoured or the script is UNSUPPORTED
    /// (shell.rs). A statement with no effect on the stack after the last packet or call
    /// is only noted, unless it asserts something.
    fn command(&mut self, line: usize, cmd: &str, rest_needs_stack: bool) -> Res<()> {
        for stmt in shell::expand(cmd) {
            match stmt {
                Stmt::Sysctl { name, value } => self.sysctl(line, &name, &value, rest_needs_stack)?,
                Stmt::Route(m) => self.route(line, &m),
                Stmt::Sockstat(s) => self.sockstat(line, &s)?,
                Stmt::Tcpdrop(s) => self.tcpdrop(line, &s)?,
                Stmt::Nstat(n) => self.nstat(line, &n)?,
                Stmt::Unsupported(what) if rest_needs_stack || is_assertion(&what) => {
                    return unsupported(line, what);
                }
                Stmt::Unsupported(what) => {
                    self.note(format!("line {line}: ignored after the last packet or call: {what}"));
                }
            }
        }
        Ok(())
    }

    /// `tcpdrop -s TIME_WAIT`: abort the TIME-WAIT connections of open sockets.
    fn tcpdrop(&mut self, line: usize, cmd: &str) -> Res<()> {
        if cmd.split_whitespace().collect::<Vec<_>>() != ["tcpdrop", "-s", "TIME_WAIT"] {
            return unsupported(line, format!("command `{cmd}`"));
        }
        let victims: Vec<i64> = self
            .fds
            .iter()
            .filter_map(|(fd, s)| {
                let c = s.conn()?;
                (self.stack.as_ref()?.state(c) == Some(State::TimeWait)).then_some(*fd)
            })
            .collect();
        for fd in victims {
            if let Some(c) = self.fds.get(&fd).and_then(Sock::conn) {
                self.stack().abort(c);
                if let Some(s) = self.fds.get_mut(&fd) {
                    s.dropped = true;
                }
            }
        }
        self.note(format!(
            "line {line}: tcpdrop -s TIME_WAIT aborts the TIME-WAIT connections of open sockets"
        ));
        self.collect()
    }

    /// `ip route ... mtu N advmss N initcwnd N rto_min T` / `ip link set ... mtu N`: the
    /// path to the script's remote host gets these metrics (Config::mtu, mss,
    /// initial_window_segments, min_rto), for connections created afterwards.
    fn route(&mut self, line: usize, m: &RouteMetrics) {
        if !m.covers(self.remote_ip) {
            self.note(format!(
                "line {line}: route does not cover the remote host {}; ignored",
                self.remote_ip
            ));
            return;
        }
        let mut cfg = match &self.stack {
            Some(s) => s.config().clone(),
            None => self.cfg.clone(),
        };
        apply_route(&mut cfg, m);
        match self.stack.as_mut() {
            Some(s) => *s.config_mut() = cfg,
            None => self.cfg = cfg,
        }
    }

    fn sysctl(&mut self, line: usize, name: &str, value: &str, rest_needs_stack: bool) -> Res<()> {
        let mut cfg = match &self.stack {
            Some(s) => s.config().clone(),
            None => self.cfg.clone(),
        };
        let effect = apply_sysctl(&mut cfg, name, value);
        match effect {
            SysctlEffect::Applied(what) => {
                if self.verbose {
                    self.note(format!("line {line}: sysctl {name}={value} -> {what}"));
                }
            }
            SysctlEffect::Ignored(why) => self.note(format!("line {line}: {why}")),
            SysctlEffect::Unsupported(why) => {
                if !rest_needs_stack {
                    self.note(format!("line {line}: ignored after the last packet or call: {why}"));
                    return Ok(());
                }
                return unsupported(line, why);
            }
            SysctlEffect::Keepalive(field, v) => match field {
                KeepaliveField::IdleMs => self.keep.idle_ms = v,
                KeepaliveField::IntervalMs => self.keep.intvl_ms = v,
                KeepaliveField::Count => self.keep.cnt = v,
            },
        }
        match self.stack.as_mut() {
            // Config::config_mut: applies to connections created afterwards.
            Some(s) => *s.config_mut() = cfg,
            None => self.cfg = cfg,
        }
        Ok(())
    }

    /// `sockstat -4 -P tcp [-p PORT] -s [| grep packetdril] | grep -c STATE | grep N`.
    /// With `grep packetdril` the sockets this script holds open are counted (sockstat
    /// lists sockets by owning process); without it every connection of the stack
    /// (`Stack::connections`, including a listener's embryonic ones) and every open socket.
    fn sockstat(&mut self, line: usize, cmd: &str) -> Res<()> {
        let Some(q) = parse_sockstat(cmd) else {
            return unsupported(line, format!("sockstat assertion `{cmd}`"));
        };
        // (local port, remote port, state, IPv6) of everything sockstat would list.
        let mut rows: Vec<(u16, u16, &'static str, bool)> = Vec::new();
        let stack = self.stack.as_ref();
        let mut held: Vec<(u16, u16)> = Vec::new();
        let family = self.local_ip.is_ipv6();
        for s in self.fds.values().filter(|s| s.kind != super::syscall::SockKind::File) {
            let bound_v6 = s.bound.map_or(family, |b| b.is_ipv6());
            let (lport, rport, name, v6) = match (s.conn(), stack) {
                (Some(c), Some(st)) => {
                    let l = st.local_addr(c).map(|a| a.port()).unwrap_or(0);
                    let r = st.peer_addr(c).map(|a| a.port()).unwrap_or(0);
                    let v6 = st.local_addr(c).map_or(bound_v6, |a| a.is_ipv6());
                    held.push((l, r));
                    (l, r, st.state(c).map(sockstat_name).unwrap_or("CLOSED"), v6)
                }
                (None, _) if s.listener().is_some() => {
                    (s.bound.map(|b| b.port()).unwrap_or(0), 0, "LISTEN", bound_v6)
                }
                _ => (s.bound.map(|b| b.port()).unwrap_or(0), 0, "CLOSED", bound_v6),
            };
            rows.push((lport, rport, name, v6));
        }
        if !q.owned
            && let Some(st) = stack
        {
            for (quad, state) in st.connections() {
                let key = (quad.local.port(), quad.remote.port());
                if !held.contains(&key) {
                    rows.push((key.0, key.1, sockstat_name(state), quad.local.is_ipv6()));
                }
            }
        }
        let count = rows
            .iter()
            .filter(|(l, r, name, v6)| {
                q.port.is_none_or(|p| *l == p || *r == p)
                    && *name == q.state
                    && q.ipv6.is_none_or(|f| f == *v6)
            })
            .count();
        if count.to_string().contains(&q.want) {
            Ok(())
        } else {
            fail(line, format!("`{cmd}`: {count} socket(s) in {}, expected {}", q.state, q.want))
        }
    }

    // ------------------------------------------------------------------ code

    /// `%{ assert tcpi_state == TCPI_X }%` and `assert tcpi_options == ...`.
    fn code(&mut self, line: usize, code: &str) -> Res<()> {
        for stmt in code.split(['\n', ';']).map(str::trim).filter(|s| !s.is_empty()) {
            let Some((lhs, rhs)) = parse_assert(stmt) else {
                return unsupported(line, format!("Python code `{stmt}`"));
            };
            let fd = self.under_test;
            let sock = fd.and_then(|fd| self.fds.get(&fd));
            let conn = sock.filter(|s| !s.dropped).and_then(Sock::conn);
            match lhs.as_str() {
                "tcpi_state" => {
                    let actual = match (conn, sock) {
                        (Some(c), _) => self.stack.as_ref().and_then(|s| s.state(c)).unwrap_or(State::Closed),
                        (None, Some(s)) if s.listener().is_some() => State::Listen,
                        _ => State::Closed,
                    };
                    let want = rhs.trim();
                    let Some(want_state) = tcpi_state(want) else {
                        return unsupported(line, format!("Python code `{stmt}`"));
                    };
                    if actual != want_state {
                        return fail(
                            line,
                            format!("tcpi_state is {} but the script asserts {want}", actual.name()),
                        );
                    }
                }
                "tcpi_options" => {
                    let Some(want) = eval_or(&rhs, tcpi_opt) else {
                        return unsupported(line, format!("Python code `{stmt}`"));
                    };
                    let actual = match (conn, &self.stack) {
                        (Some(c), Some(s)) => s.status(c).map(|st| st.options as i64).unwrap_or(0),
                        _ => 0,
                    };
                    if actual != want {
                        return fail(
                            line,
                            format!(
                                "tcpi_options is {actual:#x} but the script asserts {want:#x} ({})",
                                rhs.trim()
                            ),
                        );
                    }
                }
                _ => return unsupported(line, format!("Python code `{stmt}`")),
            }
        }
        Ok(())
    }
}

/// `assert a == b` -> (a, b).
pub(super) fn parse_assert(stmt: &str) -> Option<(String, String)> {
    let rest = stmt.strip_prefix("assert")?.trim();
    let (l, r) = rest.split_once("==")?;
    let l = l.trim();
    if !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((l.to_string(), r.trim().to_string()))
}

/// Evaluate `A | B | 0x4` with parentheses, given a symbol table.
pub(super) fn eval_or(expr: &str, sym: impl Fn(&str) -> Option<i64>) -> Option<i64> {
    let e = expr.trim();
    let e = e.strip_prefix('(').and_then(|x| x.strip_suffix(')')).unwrap_or(e);
    let mut v = 0i64;
    for part in e.split('|').map(str::trim) {
        v |= if let Some(h) = part.strip_prefix("0x") {
            i64::from_str_radix(h, 16).ok()?
        } else if let Ok(n) = part.parse::<i64>() {
            n
        } else {
            sym(part)?
        };
    }
    Some(v)
}

fn tcpi_opt(name: &str) -> Option<i64> {
    Some(match name {
        "TCPI_OPT_TIMESTAMPS" => 1,
        "TCPI_OPT_SACK" => 2,
        "TCPI_OPT_WSCALE" => 4,
        "TCPI_OPT_ECN" => 8,
        "TCPI_OPT_ECN_SEEN" => 16,
        _ => return None,
    })
}

fn tcpi_state(name: &str) -> Option<State> {
    let n = name.strip_prefix("TCPI_").or_else(|| name.strip_prefix("TCP_"))?;
    Some(match n {
        "CLOSED" | "CLOSE" => State::Closed,
        "LISTEN" => State::Listen,
        "SYN_SENT" => State::SynSent,
        "SYN_RECEIVED" | "SYN_RECV" => State::SynReceived,
        "ESTABLISHED" => State::Established,
        "FIN_WAIT_1" | "FIN_WAIT1" => State::FinWait1,
        "FIN_WAIT_2" | "FIN_WAIT2" => State::FinWait2,
        "CLOSE_WAIT" => State::CloseWait,
        "CLOSING" => State::Closing,
        "LAST_ACK" => State::LastAck,
        "TIME_WAIT" => State::TimeWait,
        _ => return None,
    })
}

/// FreeBSD `sockstat -s` state names.
fn sockstat_name(s: State) -> &'static str {
    match s {
        State::Closed => "CLOSED",
        State::Listen => "LISTEN",
        State::SynSent => "SYN_SENT",
        State::SynReceived => "SYN_RCVD",
        State::Established => "ESTABLISHED",
        State::FinWait1 => "FIN_WAIT_1",
        State::FinWait2 => "FIN_WAIT_2",
        State::CloseWait => "CLOSE_WAIT",
        State::Closing => "CLOSING",
        State::LastAck => "LAST_ACK",
        State::TimeWait => "TIME_WAIT",
    }
}

/// Whether a packet or a system call other than `close` follows event `i`: a setting
/// without an engine knob only matters if something still uses the stack.
fn stack_used_after(events: &[Event], i: usize) -> bool {
    events.get(i + 1..).unwrap_or_default().iter().any(|e| {
        matches!(&e.action, Action::Packet(_) | Action::Icmp(_))
            || matches!(&e.action, Action::Syscall(s) if s.name != "close")
    })
}

/// Features known to be unsupported before running: the first one, with its line.
pub(super) fn prescan(script: &Script, profile: &Profile) -> Option<(usize, String)> {
    for f in &script.flags {
        match (f.name.as_str(), f.value.as_deref()) {
            ("ip_version", Some(v)) if v != "ipv4" && v != "ipv6" => {
                return Some((f.line, format!("--ip_version={v} (IPv4 and IPv6 are run)")));
            }
            ("tcp_md5_secret", _) => return Some((f.line, "TCP MD5 signatures (--tcp_md5_secret)".into())),
            ("udp_encapsulation", _) => {
                return Some((f.line, "UDP encapsulation (--udp_encapsulation)".into()));
            }
            _ => {}
        }
    }
    let mut cfg = profile.config.clone();
    for (line, cmd) in &script.init_commands {
        if let Some(why) = command_check(cmd, &mut cfg, !script.events.is_empty()) {
            return Some((*line, why));
        }
    }
    for (i, ev) in script.events.iter().enumerate() {
        let rest_needs_stack = stack_used_after(&script.events, i);
        let why = match &ev.action {
            Action::Unsupported(what) => Some(what.clone()),
            Action::Syscall(sc) => super::syscall::static_check(sc),
            Action::Code(code) => code
                .split(['\n', ';'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .find(|stmt| match parse_assert(stmt) {
                    Some((l, r)) if l == "tcpi_state" => tcpi_state(&r).is_none(),
                    Some((l, r)) if l == "tcpi_options" => eval_or(&r, tcpi_opt).is_none(),
                    _ => true,
                })
                .map(|stmt| format!("Python code `{stmt}`")),
            Action::Command(cmd) => command_check(cmd, &mut cfg, rest_needs_stack),
            Action::Packet(_) | Action::Icmp(_) => None,
        };
        if let Some(w) = why {
            return Some((ev.line, w));
        }
    }
    None
}

/// Whether an unsupported statement asserts something (and so matters even at the end).
fn is_assertion(what: &str) -> bool {
    what.starts_with("assertion") || what.starts_with("nstat") || what.contains("grep")
}

/// Route metrics onto the engine configuration.
fn apply_route(cfg: &mut Config, m: &RouteMetrics) {
    if let Some(mtu) = m.mtu {
        cfg.mtu = mtu;
    }
    if let Some(mss) = m.advmss {
        cfg.mss = Some(mss);
    }
    if let Some(iw) = m.initcwnd {
        cfg.initial_window_segments = Some(iw);
    }
    if let Some(ms) = m.rto_min_ms {
        cfg.min_rto = utcp::time::Duration::from_millis(ms);
    }
}

/// What in a backquoted command the runner cannot honour, checked before running.
fn command_check(cmd: &str, cfg: &mut Config, rest_needs_stack: bool) -> Option<String> {
    for stmt in shell::expand(cmd) {
        let why = match stmt {
            Stmt::Sysctl { name, value } => match apply_sysctl(cfg, &name, &value) {
                SysctlEffect::Unsupported(why) if rest_needs_stack => Some(why),
                _ => None,
            },
            Stmt::Route(m) => {
                apply_route(cfg, &m);
                None
            }
            Stmt::Sockstat(s) => parse_sockstat(&s).is_none().then(|| format!("sockstat assertion `{s}`")),
            Stmt::Tcpdrop(s) => (s.split_whitespace().collect::<Vec<_>>() != ["tcpdrop", "-s", "TIME_WAIT"])
                .then(|| format!("command `{s}`")),
            Stmt::Nstat(n) => {
                super::nstat::unmapped_counter(&n).map(|c| format!("nstat counter {c} (no engine counter)"))
            }
            Stmt::Unsupported(what) if rest_needs_stack || is_assertion(&what) => Some(what),
            Stmt::Unsupported(_) => None,
        };
        if why.is_some() {
            return why;
        }
    }
    None
}

/// A `sockstat` assertion the runner can evaluate.
pub(super) struct SockstatQuery {
    /// `grep packetdril`: only sockets of this process (the script's open descriptors).
    owned: bool,
    /// `-p PORT`: local or foreign port.
    port: Option<u16>,
    /// The state counted by `grep -c STATE`.
    state: String,
    /// The final `grep N` pattern.
    want: String,
    /// `-4` / `-6`: only sockets of that family (`Some(true)` for IPv6).
    ipv6: Option<bool>,
}

/// Parse `sockstat -4|-6 -P tcp [-p PORT] -s [| grep packetdril] | grep -c STATE | grep N`.
pub(super) fn parse_sockstat(cmd: &str) -> Option<SockstatQuery> {
    let stages: Vec<&str> = cmd.split('|').map(str::trim).collect();
    let (first, rest) = stages.split_first()?;
    let mut words = first.split_whitespace();
    if words.next()? != "sockstat" {
        return None;
    }
    let mut port = None;
    let mut tcp = false;
    let mut ipv6 = None;
    while let Some(w) = words.next() {
        match w {
            "-4" => ipv6 = Some(false),
            "-6" => ipv6 = Some(true),
            "-s" | "-c" | "-l" => {}
            "-P" => tcp = words.next()? == "tcp",
            "-p" => port = Some(words.next()?.parse().ok()?),
            _ => return None,
        }
    }
    let [filters @ .., count, last] = rest else {
        return None;
    };
    let mut owned = false;
    for f in filters {
        match *f {
            "grep packetdril" | "grep packetdrill" => owned = true,
            _ => return None,
        }
    }
    let state = count.strip_prefix("grep -c ")?.trim().to_string();
    let want = last.strip_prefix("grep ")?.trim().to_string();
    let valid_state = State::ALL.iter().any(|s| sockstat_name(*s) == state);
    (tcp && valid_state && !want.is_empty() && !want.starts_with('-')).then_some(SockstatQuery {
        owned,
        port,
        state,
        want,
        ipv6,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asserts_and_or_expressions() {
        assert_eq!(
            parse_assert("assert tcpi_state == TCPI_CLOSED"),
            Some(("tcpi_state".into(), "TCPI_CLOSED".into()))
        );
        assert_eq!(parse_assert("x = 1"), None);
        assert_eq!(eval_or("(TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE)", tcpi_opt), Some(7));
        assert_eq!(eval_or("0", tcpi_opt), Some(0));
        assert_eq!(eval_or("FOO", tcpi_opt), None);
        assert_eq!(tcpi_state("TCPI_SYN_RECEIVED"), Some(State::SynReceived));
    }

    #[test]
    fn sockstat_assertions_parse() {
        let q = parse_sockstat("sockstat -4 -P tcp -s | grep packetdril | grep -c TIME_WAIT | grep 1")
            .expect("ok");
        assert!(q.owned && q.port.is_none() && q.state == "TIME_WAIT" && q.want == "1");
        let q = parse_sockstat("sockstat -4 -P tcp -p 8080 -s | grep -c SYN_RCVD | grep 0").expect("ok");
        assert!(!q.owned && q.port == Some(8080) && q.state == "SYN_RCVD" && q.want == "0");
        assert!(parse_sockstat("sockstat -4 -P udp -s | grep -c LISTEN | grep 1").is_none());
        let q = parse_sockstat("sockstat -6 -P tcp -s | grep packetdril | grep -c TIME_WAIT | grep 1")
            .expect("ok");
        assert_eq!(q.ipv6, Some(true));
        assert_eq!(
            parse_sockstat("sockstat -4 -P tcp -s | grep -c LISTEN | grep 1").map(|q| q.ipv6),
            Some(Some(false))
        );
        assert!(parse_sockstat("sockstat -4 -P tcp -s | grep -c BOGUS | grep 1").is_none());
        assert!(parse_sockstat("sockstat -4 -P tcp -s | wc -l").is_none());
        assert!(parse_sockstat("sockstat -4 -P tcp -s | grep foo | grep -c LISTEN | grep 1").is_none());
    }
}
