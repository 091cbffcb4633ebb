//! System calls of a script, executed against the stack's user API (RFC 9293 §3.10).
//!
//! The runner keeps a small socket table: a script's file descriptors map to a fresh
//! socket (before `listen`/`connect`), a listener or a connection. Calls on a blocking
//! socket that cannot complete block: the script goes on (later packets are injected at
//! their times) and the call returns when the stack lets it, which is checked against the
//! `start...end` window when the script gives one.

use super::ast::{Expr, Syscall};
use super::run::{Res, Runner, Stop, fail, unsupported};
use std::io;
use std::net::{Shutdown, SocketAddr};
use utcp::engine::{ConnId, Keepalive, ListenerId, State};
use utcp::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SockKind {
    Fresh,
    Listener(ListenerId),
    Conn(ConnId),
    /// A file from `open()`, only read by `sendfile()`.
    File,
}

/// One file descriptor of the script.
#[derive(Clone, Debug)]
pub(super) struct Sock {
    pub kind: SockKind,
    pub nonblock: bool,
    pub bound: Option<SocketAddr>,
    pub rcvbuf: Option<usize>,
    pub sndbuf: Option<usize>,
    pub nodelay: Option<bool>,
    pub keepalive: bool,
    pub keep_idle_s: Option<u64>,
    pub keep_intvl_s: Option<u64>,
    pub keep_cnt: Option<u64>,
    /// SO_LINGER with a zero timeout: close() aborts (RFC 9293 §3.10.5).
    pub linger_zero: bool,
    /// The connection was dropped by `tcpdrop`; the handle is gone.
    pub dropped: bool,
    /// TCP_USER_TIMEOUT in milliseconds.
    pub user_timeout_ms: Option<u64>,
    /// IP_TTL and IP_TOS (issue 13, RFC 9293 MUST-48).
    pub ip_ttl_tos: (Option<u8>, Option<u8>),
}

impl Sock {
    fn fresh() -> Sock {
        Sock {
            kind: SockKind::Fresh,
            nonblock: false,
            bound: None,
            rcvbuf: None,
            sndbuf: None,
            nodelay: None,
            keepalive: false,
            keep_idle_s: None,
            keep_intvl_s: None,
            keep_cnt: None,
            linger_zero: false,
            dropped: false,
            user_timeout_ms: None,
            ip_ttl_tos: (None, None),
        }
    }

    pub fn conn(&self) -> Option<ConnId> {
        match self.kind {
            SockKind::Conn(c) if !self.dropped => Some(c),
            _ => None,
        }
    }

    pub fn listener(&self) -> Option<ListenerId> {
        match self.kind {
            SockKind::Listener(l) => Some(l),
            _ => None,
        }
    }
}

/// A blocking call waiting for the stack.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub line: usize,
    pub call: Syscall,
    pub end: Option<i64>,
}

/// The result of one attempt at a call.
enum Outcome {
    Done(Result<i64, &'static str>),
    /// The call would block (blocking socket).
    Block,
}

/// errno name for an I/O error kind from the stack.
fn errno_of(kind: io::ErrorKind) -> &'static str {
    use io::ErrorKind::*;
    match kind {
        WouldBlock => "EAGAIN",
        ConnectionReset => "ECONNRESET",
        ConnectionRefused => "ECONNREFUSED",
        ConnectionAborted => "ECONNABORTED",
        NotConnected => "ENOTCONN",
        BrokenPipe => "EPIPE",
        TimedOut => "ETIMEDOUT",
        AddrInUse => "EADDRINUSE",
        AddrNotAvailable => "EADDRNOTAVAIL",
        InvalidInput => "EINVAL",
        HostUnreachable => "EHOSTUNREACH",
        NetworkUnreachable => "ENETUNREACH",
        _ => "EIO",
    }
}

/// errno numbers (Linux, FreeBSD) for SO_ERROR values written as numbers.
fn errno_number(name: &str, freebsd: bool) -> Option<i64> {
    let (linux, bsd) = match name {
        "EPIPE" => (32, 32),
        "EINVAL" => (22, 22),
        "EIO" => (5, 5),
        "EAGAIN" | "EWOULDBLOCK" => (11, 35),
        "EINPROGRESS" => (115, 36),
        "EALREADY" => (114, 37),
        "EADDRINUSE" => (98, 48),
        "EADDRNOTAVAIL" => (99, 49),
        "ECONNABORTED" => (103, 53),
        "ECONNRESET" => (104, 54),
        "EISCONN" => (106, 56),
        "ENOTCONN" => (107, 57),
        "ETIMEDOUT" => (110, 60),
        "ECONNREFUSED" => (111, 61),
        "EHOSTUNREACH" => (113, 65),
        "ENETUNREACH" => (101, 51),
        _ => return None,
    };
    Some(if freebsd { bsd } else { linux })
}

fn same_errno(a: &str, b: &str) -> bool {
    fn norm(e: &str) -> &str {
        if e == "EWOULDBLOCK" { "EAGAIN" } else { e }
    }
    norm(a) == norm(b)
}

/// Every call name and socket option the runner implements (for the static scan).
pub(super) const SYSCALLS: [&str; 17] = [
    "sendto",
    "open",
    "sendfile",
    "socket",
    "bind",
    "listen",
    "accept",
    "connect",
    "read",
    "recv",
    "write",
    "send",
    "close",
    "shutdown",
    "fcntl",
    "getsockopt",
    "setsockopt",
];
pub(super) const SOCKOPTS: [&str; 20] = [
    "IP_TTL",
    "IP_TOS",
    "IPV6_UNICAST_HOPS",
    "IPV6_TCLASS",
    "TCP_MAXSEG",
    "TCP_USER_TIMEOUT",
    "IP_MTU_DISCOVER",
    "SO_REUSEADDR",
    "SO_REUSEPORT",
    "SO_RCVBUF",
    "SO_SNDBUF",
    "SO_ERROR",
    "SO_KEEPALIVE",
    "SO_LINGER",
    "TCP_NODELAY",
    "TCP_NOOPT",
    "TCP_KEEPINIT",
    "TCP_KEEPIDLE",
    "TCP_KEEPINTVL",
    "TCP_KEEPCNT",
];

/// Why a call cannot run here, known before running the script.
pub(super) fn static_check(sc: &Syscall) -> Option<String> {
    if !SYSCALLS.contains(&sc.name.as_str()) {
        return Some(format!("system call {}()", sc.name));
    }
    if matches!(sc.name.as_str(), "getsockopt" | "setsockopt") {
        let name = match sc.args.get(2) {
            Some(Expr::Ident(n)) => n.as_str(),
            _ => return Some(format!("{}() with a non-symbolic option", sc.name)),
        };
        let get_only = matches!(name, "TCP_MAXSEG");
        let set_only = matches!(name, "SO_LINGER" | "TCP_NOOPT" | "IP_MTU_DISCOVER");
        if !SOCKOPTS.contains(&name)
            || (sc.name == "getsockopt" && set_only)
            || (sc.name == "setsockopt" && get_only)
        {
            return Some(format!("{}({name})", sc.name));
        }
    }
    if !matches!(sc.ret, Expr::Int(_)) {
        return Some(format!("{}() with a non-numeric expected result", sc.name));
    }
    None
}

fn int_arg(sc: &Syscall, i: usize) -> Option<i64> {
    match sc.args.get(i) {
        Some(Expr::Int(v)) => Some(*v),
        Some(Expr::List(l)) if l.len() == 1 => match &l[0] {
            Expr::Int(v) => Some(*v),
            _ => None,
        },
        _ => None,
    }
}

/// <netinet/ip.h> TOS constants: IPTOS_DSCP_CSn = n << 5, IPTOS_DSCP_AFxy = (8x + 2y) << 2,
/// IPTOS_DSCP_EF, and the RFC 1349 bits.
fn iptos_constant(name: &str) -> Option<i64> {
    let n = name.strip_prefix("IPTOS_")?;
    if let Some(cs) = n.strip_prefix("DSCP_CS") {
        return cs.parse::<i64>().ok().filter(|c| (0..8).contains(c)).map(|c| c << 5);
    }
    if let Some(af) = n.strip_prefix("DSCP_AF") {
        let d: Vec<i64> = af.chars().map(|c| c.to_digit(10).map(i64::from)).collect::<Option<_>>()?;
        return match d.as_slice() {
            [x @ 1..=4, y @ 1..=3] => Some((8 * x + 2 * y) << 2),
            _ => None,
        };
    }
    Some(match n {
        "DSCP_EF" => 0xb8,
        "LOWDELAY" => 0x10,
        "THROUGHPUT" => 0x08,
        "RELIABILITY" => 0x04,
        "MINCOST" => 0x02,
        _ => return None,
    })
}

fn ident_arg(sc: &Syscall, i: usize) -> Option<&str> {
    match sc.args.get(i) {
        Some(Expr::Ident(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn has_flag(e: Option<&Expr>, name: &str) -> bool {
    match e {
        Some(Expr::Ident(s)) => s == name,
        Some(Expr::Or(v)) => v.iter().any(|x| matches!(x, Expr::Ident(s) if s == name)),
        _ => false,
    }
}

impl<'a> Runner<'a> {
    fn bad_args<T>(&self, line: usize, sc: &Syscall) -> Res<T> {
        fail(line, format!("{}(): unexpected arguments {:?}", sc.name, sc.args))
    }

    fn fd_of(&self, line: usize, sc: &Syscall) -> Res<i64> {
        match int_arg(sc, 0) {
            Some(fd) => Ok(fd),
            None => self.bad_args(line, sc),
        }
    }

    /// Run a system call event; `end` is the end of its `start...end` window, if any.
    pub(super) fn syscall(&mut self, line: usize, sc: &Syscall, end: Option<i64>) -> Res<()> {
        if let Some(why) = static_check(sc) {
            return unsupported(line, why);
        }
        if let Some(p) = &self.pending {
            return fail(
                line,
                format!("{}() while {}() (line {}) is still blocked", sc.name, p.call.name, p.line),
            );
        }
        match self.exec(line, sc)? {
            Outcome::Done(r) => {
                if let Some(e) = end {
                    self.check_end_time(line, sc, e)?;
                }
                self.check_result(line, sc, r)?;
            }
            Outcome::Block => {
                self.pending = Some(Pending { line, call: sc.clone(), end });
            }
        }
        self.collect()
    }

    fn check_end_time(&self, line: usize, sc: &Syscall, end: i64) -> Res<()> {
        if (self.now - end).abs() > self.tolerance {
            return fail(
                line,
                format!(
                    "timing error: {}() returned at {:.6}, expected at {:.6} (tolerance {} us)",
                    sc.name,
                    self.now as f64 / 1e6,
                    end as f64 / 1e6,
                    self.tolerance
                ),
            );
        }
        Ok(())
    }

    /// Retry the blocked call, if any.
    pub(super) fn try_pending(&mut self) -> Res<()> {
        let Some(p) = self.pending.clone() else {
            return Ok(());
        };
        if self.stack.is_none() {
            return Ok(());
        }
        if let Outcome::Done(r) = self.exec(p.line, &p.call)? {
            self.pending = None;
            if let Some(e) = p.end {
                self.check_end_time(p.line, &p.call, e)?;
            }
            self.check_result(p.line, &p.call, r)?;
        }
        Ok(())
    }

    fn check_result(&mut self, line: usize, sc: &Syscall, got: Result<i64, &'static str>) -> Res<()> {
        if self.verbose {
            let shown = match got {
                Ok(v) => v.to_string(),
                Err(e) => format!("-1 {e}"),
            };
            self.trace.push(format!("{:>10.6} {} = {shown}", self.now as f64 / 1e6, sc.call_string()));
        }
        let Expr::Int(want) = sc.ret else {
            return unsupported(line, "non-numeric expected result");
        };
        let ok = match (&got, want < 0) {
            (Err(e), true) => sc.errno.as_deref().is_none_or(|w| same_errno(w, e)),
            (Ok(v), false) => *v == want,
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let want_s = match (&sc.errno, want < 0) {
            (Some(e), true) => format!("{want} {e}"),
            _ => want.to_string(),
        };
        let got_s = match got {
            Ok(v) => v.to_string(),
            Err(e) => format!("-1 {e}"),
        };
        let msg = format!("{}() returned {got_s}, expected {want_s}", sc.name);
        if self.non_fatal_syscall {
            self.note(format!("line {line}: {msg} (non-fatal by --non_fatal=syscall)"));
            return Ok(());
        }
        fail(line, msg)
    }

    fn sock(&self, line: usize, fd: i64) -> Res<&Sock> {
        self.fds.get(&fd).ok_or(Stop::Fail { line, reason: format!("file descriptor {fd} is not open") })
    }

    fn sock_mut(&mut self, line: usize, fd: i64) -> Res<&mut Sock> {
        self.fds.get_mut(&fd).ok_or(Stop::Fail { line, reason: format!("file descriptor {fd} is not open") })
    }

    fn would_block(&self, s: &Sock) -> Outcome {
        if s.nonblock { Outcome::Done(Err("EAGAIN")) } else { Outcome::Block }
    }

    fn exec(&mut self, line: usize, sc: &Syscall) -> Res<Outcome> {
        let name = sc.name.as_str();
        if name == "socket" {
            if !has_flag(sc.args.get(1), "SOCK_STREAM") {
                return unsupported(line, "socket() other than SOCK_STREAM");
            }
            let Expr::Int(fd) = sc.ret else {
                return self.bad_args(line, sc);
            };
            if fd < 0 {
                return fail(line, "socket() is expected to fail; the runner cannot make it fail");
            }
            if self.fds.contains_key(&fd) {
                return fail(line, format!("socket() = {fd}, but {fd} is already open"));
            }
            self.fds.insert(fd, Sock::fresh());
            self.under_test = Some(fd);
            return Ok(Outcome::Done(Ok(fd)));
        }
        if name == "open" {
            return self.open_file(line, sc);
        }
        let fd = self.fd_of(line, sc)?;
        let now = self.instant();
        let s = self.sock(line, fd)?.clone();
        let out = match name {
            "bind" => {
                if s.bound.is_some() || s.kind != SockKind::Fresh {
                    Outcome::Done(Err("EINVAL"))
                } else {
                    self.sock_mut(line, fd)?.bound = Some(SocketAddr::new(self.local_ip, self.bind_port));
                    Outcome::Done(Ok(0))
                }
            }
            "listen" => {
                let backlog = int_arg(sc, 1).unwrap_or(0).max(0) as usize;
                match s.kind {
                    SockKind::Listener(_) => Outcome::Done(Ok(0)),
                    SockKind::Conn(_) => Outcome::Done(Err("EINVAL")),
                    SockKind::File => Outcome::Done(Err("ENOTSOCK")),
                    SockKind::Fresh => {
                        let addr = s.bound.unwrap_or(SocketAddr::new(self.local_ip, self.bind_port));
                        match self.stack().listen(addr, backlog) {
                            Ok(l) => {
                                if s.rcvbuf.is_some() || s.sndbuf.is_some() {
                                    let _ = self.stack().set_listener_buffer_sizes(l, s.rcvbuf, s.sndbuf);
                                }
                                if s.ip_ttl_tos != (None, None) {
                                    let (ttl, tos) = s.ip_ttl_tos;
                                    let _ = self.stack().set_listener_ttl_tos(l, ttl, tos);
                                }
                                let sm = self.sock_mut(line, fd)?;
                                sm.kind = SockKind::Listener(l);
                                sm.bound = Some(addr);
                                self.tuple = Some((addr, SocketAddr::new(self.remote_ip, self.remote_port)));
                                Outcome::Done(Ok(0))
                            }
                            Err(e) => Outcome::Done(Err(errno_of(e.kind()))),
                        }
                    }
                }
            }
            "accept" => match s.kind {
                SockKind::Listener(l) => match self.stack().accept(l) {
                    Ok((c, _)) => {
                        let Expr::Int(newfd) = sc.ret else {
                            return self.bad_args(line, sc);
                        };
                        if newfd < 0 || self.fds.contains_key(&newfd) {
                            return fail(
                                line,
                                format!("accept() returned a connection, but the script expects {newfd}"),
                            );
                        }
                        let mut ns = Sock::fresh();
                        ns.kind = SockKind::Conn(c);
                        ns.nonblock = self.profile.accept_inherits_nonblock && s.nonblock;
                        ns.nodelay = s.nodelay;
                        ns.keepalive = s.keepalive;
                        ns.keep_idle_s = s.keep_idle_s;
                        ns.keep_intvl_s = s.keep_intvl_s;
                        ns.keep_cnt = s.keep_cnt;
                        ns.linger_zero = s.linger_zero;
                        ns.user_timeout_ms = s.user_timeout_ms;
                        ns.ip_ttl_tos = s.ip_ttl_tos;
                        self.fds.insert(newfd, ns);
                        self.apply_conn_opts(newfd)?;
                        self.under_test = Some(newfd);
                        Outcome::Done(Ok(newfd))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.would_block(&s),
                    Err(e) => Outcome::Done(Err(errno_of(e.kind()))),
                },
                _ => Outcome::Done(Err("EINVAL")),
            },
            "connect" => match s.kind {
                SockKind::Fresh => {
                    let local = s.bound.unwrap_or(SocketAddr::new(self.local_ip, 0));
                    let remote = SocketAddr::new(self.remote_ip, self.connect_port);
                    match self.stack().connect(now, local, remote) {
                        Ok(c) => {
                            self.sock_mut(line, fd)?.kind = SockKind::Conn(c);
                            self.apply_conn_opts(fd)?;
                            if let Ok(l) = self.stack().local_addr(c) {
                                self.tuple = Some((l, remote));
                            }
                            if s.nonblock { Outcome::Done(Err("EINPROGRESS")) } else { Outcome::Block }
                        }
                        Err(e) => Outcome::Done(Err(errno_of(e.kind()))),
                    }
                }
                SockKind::Conn(c) if !s.dropped => {
                    let finishing = self.pending.is_some();
                    let stack = self.stack();
                    if stack.is_connecting(c) {
                        if s.nonblock { Outcome::Done(Err("EALREADY")) } else { Outcome::Block }
                    } else if finishing {
                        // A blocking connect() finishing.
                        match stack.state(c) {
                            Some(st) if st.is_synchronized() && st != State::TimeWait => Outcome::Done(Ok(0)),
                            _ => Outcome::Done(Err(stack
                                .take_error(c)
                                .map(|e| errno_of(e.kind()))
                                .unwrap_or("ECONNREFUSED"))),
                        }
                    } else {
                        match stack.take_error(c) {
                            Some(e) => Outcome::Done(Err(errno_of(e.kind()))),
                            None => Outcome::Done(Err("EISCONN")),
                        }
                    }
                }
                _ => Outcome::Done(Err("EINVAL")),
            },
            "read" | "recv" => {
                let n = int_arg(sc, 2).unwrap_or(0).max(0) as usize;
                let peek = name == "recv" && has_flag(sc.args.get(3), "MSG_PEEK");
                match s.conn() {
                    None => Outcome::Done(Err("ENOTCONN")),
                    Some(c) => {
                        let mut buf = vec![0u8; n];
                        let r = if peek {
                            self.stack().peek(c, &mut buf)
                        } else {
                            self.stack().recv(c, &mut buf)
                        };
                        match r {
                            Ok(k) => Outcome::Done(Ok(k as i64)),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.would_block(&s),
                            Err(e) => Outcome::Done(Err(errno_of(e.kind()))),
                        }
                    }
                }
            }
            "write" | "send" | "sendto" | "sendfile" => {
                let n = if name == "sendfile" { int_arg(sc, 3) } else { int_arg(sc, 2) };
                let n = n.unwrap_or(0).max(0) as usize;
                let urgent = match name {
                    "send" | "sendto" => self.send_flags(line, sc)?,
                    "sendfile" => {
                        let file = int_arg(sc, 1).and_then(|f| self.fds.get(&f)).map(|f| f.kind);
                        if file != Some(SockKind::File) {
                            return fail(line, "sendfile(): the input is not an open file");
                        }
                        false
                    }
                    _ => false,
                };
                match s.conn() {
                    None => Outcome::Done(Err(if s.dropped { "EPIPE" } else { "ENOTCONN" })),
                    Some(c) => {
                        let data = vec![0u8; n];
                        let r = if urgent {
                            self.stack().send_urgent(c, &data)
                        } else {
                            self.stack().send(c, &data)
                        };
                        match r {
                            Ok(k) => Outcome::Done(Ok(k as i64)),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.would_block(&s),
                            Err(e) => Outcome::Done(Err(errno_of(e.kind()))),
                        }
                    }
                }
            }
            "close" => {
                match s.kind {
                    SockKind::Listener(l) => self.stack().close_listener(l),
                    SockKind::Conn(c) if !s.dropped => {
                        if s.linger_zero {
                            self.stack().abort(c);
                        } else {
                            self.stack().close(c);
                        }
                    }
                    _ => {}
                }
                self.fds.remove(&fd);
                Outcome::Done(Ok(0))
            }
            "shutdown" => {
                let how = match ident_arg(sc, 1) {
                    Some("SHUT_RD") => Shutdown::Read,
                    Some("SHUT_WR") => Shutdown::Write,
                    Some("SHUT_RDWR") => Shutdown::Both,
                    _ => return self.bad_args(line, sc),
                };
                match s.conn() {
                    None => Outcome::Done(Err("ENOTCONN")),
                    Some(c) => match self.stack().shutdown(c, how) {
                        Ok(()) => Outcome::Done(Ok(0)),
                        Err(e) => Outcome::Done(Err(errno_of(e.kind()))),
                    },
                }
            }
            "fcntl" => match ident_arg(sc, 1) {
                Some("F_GETFL") => {
                    let v = 2 | if s.nonblock { self.profile.o_nonblock } else { 0 };
                    Outcome::Done(Ok(v))
                }
                Some("F_SETFL") => {
                    let nb = has_flag(sc.args.get(2), "O_NONBLOCK")
                        || int_arg(sc, 2).is_some_and(|v| v & self.profile.o_nonblock != 0);
                    self.sock_mut(line, fd)?.nonblock = nb;
                    Outcome::Done(Ok(0))
                }
                _ => return unsupported(line, format!("fcntl({:?})", sc.args.get(1))),
            },
            "getsockopt" => self.getsockopt(line, sc, fd)?,
            "setsockopt" => self.setsockopt(line, sc, fd)?,
            other => return unsupported(line, format!("system call {other}()")),
        };
        Ok(out)
    }

    /// `open(path, flags) = fd`: a file for `sendfile()` (its bytes are zeros, as the
    /// runner's payloads are).
    fn open_file(&mut self, line: usize, sc: &Syscall) -> Res<Outcome> {
        let Expr::Int(fd) = sc.ret else {
            return self.bad_args(line, sc);
        };
        if fd < 0 || self.fds.contains_key(&fd) {
            return fail(line, format!("open() = {fd}: the runner cannot return that descriptor"));
        }
        let mut f = Sock::fresh();
        f.kind = SockKind::File;
        self.fds.insert(fd, f);
        Ok(Outcome::Done(Ok(fd)))
    }

    /// The flags of `send`/`sendto`: true for MSG_OOB (urgent data, RFC 9293 §3.8.5).
    /// MSG_NOSIGNAL changes nothing here; other flags are unsupported.
    fn send_flags(&self, line: usize, sc: &Syscall) -> Res<bool> {
        let items: Vec<&Expr> = match sc.args.get(3) {
            None | Some(Expr::Int(0)) => return Ok(false),
            Some(Expr::Or(v)) => v.iter().collect(),
            Some(e) => vec![e],
        };
        let mut urgent = false;
        for e in items {
            match e {
                Expr::Ident(f) if f == "MSG_OOB" => urgent = true,
                Expr::Ident(f) if f == "MSG_NOSIGNAL" => {}
                Expr::Int(0) => {}
                other => return unsupported(line, format!("{}() flag {other}", sc.name)),
            }
        }
        Ok(urgent)
    }

    fn keepalive_of(&self, s: &Sock) -> Keepalive {
        Keepalive {
            idle: Duration::from_secs(s.keep_idle_s.unwrap_or(self.keep.idle_ms / 1000)),
            interval: Duration::from_secs(s.keep_intvl_s.unwrap_or(self.keep.intvl_ms / 1000)),
            probes: s.keep_cnt.unwrap_or(self.keep.cnt) as u32,
        }
    }

    /// Push the socket options set before the connection existed into the stack.
    fn apply_conn_opts(&mut self, fd: i64) -> Res<()> {
        let Some(s) = self.fds.get(&fd).cloned() else {
            return Ok(());
        };
        let Some(c) = s.conn() else { return Ok(()) };
        let ka = s.keepalive.then(|| self.keepalive_of(&s));
        let stack = self.stack();
        if s.rcvbuf.is_some() || s.sndbuf.is_some() {
            let _ = stack.set_buffer_sizes(c, s.rcvbuf, s.sndbuf);
        }
        if let Some(nd) = s.nodelay {
            let _ = stack.set_nodelay(c, nd);
        }
        if ka.is_some() {
            let _ = stack.set_keepalive(c, ka);
        }
        if let Some(ms) = s.user_timeout_ms {
            let _ = stack.set_user_timeout(c, Some(Duration::from_millis(ms)));
        }
        if let Some(ttl) = s.ip_ttl_tos.0 {
            let _ = stack.set_ttl(c, ttl);
        }
        if let Some(tos) = s.ip_ttl_tos.1 {
            let _ = stack.set_tos(c, tos);
        }
        Ok(())
    }

    fn getsockopt(&mut self, line: usize, sc: &Syscall, fd: i64) -> Res<Outcome> {
        let opt = ident_arg(sc, 2).unwrap_or("");
        let s = self.sock(line, fd)?.clone();
        let actual: i64 = match opt {
            "SO_RCVBUF" | "SO_SNDBUF" if self.profile.sockbuf_doubling => {
                // Linux reports the doubled value that was set, or the tcp_rmem/tcp_wmem
                // default (socket(7)).
                let recv = opt == "SO_RCVBUF";
                let set = if recv { s.rcvbuf } else { s.sndbuf };
                match set {
                    Some(v) => super::linux::doubled_sockbuf(v, recv) as i64,
                    None => (if recv { self.cfg.recv_buffer } else { self.cfg.send_buffer }) as i64,
                }
            }
            "TCP_MAXSEG" => self.tcp_maxseg(&s),
            "TCP_USER_TIMEOUT" => s.user_timeout_ms.unwrap_or(0) as i64,
            "SO_RCVBUF" | "SO_SNDBUF" => {
                let recv = opt == "SO_RCVBUF";
                match (s.conn(), &self.stack) {
                    (Some(c), Some(st)) => match st.buffer_sizes(c) {
                        Ok((r, w)) => (if recv { r } else { w }) as i64,
                        Err(e) => return Ok(Outcome::Done(Err(errno_of(e.kind())))),
                    },
                    _ => {
                        let cfg = self.stack.as_ref().map(|st| st.config()).unwrap_or(&self.cfg);
                        let dflt = if recv { cfg.recv_buffer } else { cfg.send_buffer };
                        (if recv { s.rcvbuf } else { s.sndbuf }).unwrap_or(dflt) as i64
                    }
                }
            }
            "SO_ERROR" => {
                let err = match (s.conn(), self.stack.as_mut()) {
                    (Some(c), Some(st)) => st.take_error(c),
                    _ => None,
                };
                match err {
                    None => 0,
                    Some(e) => {
                        let name = errno_of(e.kind());
                        // Compare symbolically when the script names the errno.
                        if let Some(Expr::List(l)) = sc.args.get(3)
                            && let [Expr::Ident(want)] = l.as_slice()
                        {
                            if same_errno(want, name) {
                                return Ok(Outcome::Done(Ok(0)));
                            }
                            return fail(line, format!("getsockopt(SO_ERROR) gave {name}, expected {want}"));
                        }
                        errno_number(name, self.profile.name == "freebsd").unwrap_or(-1)
                    }
                }
            }
            "SO_KEEPALIVE" => s.keepalive as i64,
            "IP_TTL" | "IP_TOS" | "IPV6_UNICAST_HOPS" | "IPV6_TCLASS" => {
                let cfg = self.stack.as_ref().map(|st| st.config()).unwrap_or(&self.cfg);
                let dflt = (cfg.ttl, cfg.tos);
                let live = match (s.conn(), &self.stack) {
                    (Some(c), Some(st)) => st.ttl_tos(c).ok(),
                    _ => None,
                };
                let (ttl, tos) =
                    live.unwrap_or((s.ip_ttl_tos.0.unwrap_or(dflt.0), s.ip_ttl_tos.1.unwrap_or(dflt.1)));
                i64::from(if matches!(opt, "IP_TTL" | "IPV6_UNICAST_HOPS") { ttl } else { tos })
            }
            "SO_REUSEADDR" | "SO_REUSEPORT" => 0,
            "TCP_NODELAY" => match (s.conn(), &self.stack) {
                (Some(c), Some(st)) => st.nodelay(c).map(|b| b as i64).unwrap_or(0),
                _ => s.nodelay.unwrap_or(!self.cfg.nagle) as i64,
            },
            "TCP_KEEPIDLE" => s.keep_idle_s.unwrap_or(self.keep.idle_ms / 1000) as i64,
            "TCP_KEEPINTVL" => s.keep_intvl_s.unwrap_or(self.keep.intvl_ms / 1000) as i64,
            "TCP_KEEPCNT" => s.keep_cnt.unwrap_or(self.keep.cnt) as i64,
            "TCP_KEEPINIT" => self.cfg.connect_timeout.map(|d| d.as_secs() as i64).unwrap_or(0),
            other => return unsupported(line, format!("getsockopt({other})")),
        };
        match sc.args.get(3) {
            Some(Expr::List(l)) if l.len() == 1 => match &l[0] {
                Expr::Int(want) if *want == actual => {}
                Expr::Int(want) => {
                    return fail(line, format!("getsockopt({opt}) gave {actual}, expected {want}"));
                }
                // A pending error named symbolically was compared above; here none is pending.
                Expr::Ident(want) if opt == "SO_ERROR" => {
                    return fail(line, format!("getsockopt(SO_ERROR) gave {actual}, expected {want}"));
                }
                Expr::Ellipsis => {}
                other => return unsupported(line, format!("getsockopt value {other:?}")),
            },
            Some(Expr::Ellipsis) => {}
            _ => return self.bad_args(line, sc),
        }
        Ok(Outcome::Done(Ok(0)))
    }

    /// TCP_MAXSEG as Linux reports it: the MSS for sending (the peer's MSS capped by our
    /// path MTU, less 12 bytes of timestamps when in use) once synchronized, else 536
    /// (TCP_MSS_DEFAULT).
    fn tcp_maxseg(&self, s: &Sock) -> i64 {
        let (Some(c), Some(st)) = (s.conn(), &self.stack) else {
            return 536;
        };
        match st.status(c) {
            Ok(status) if status.state.is_synchronized() => {
                let mss = status.mss.min(st.config().send_mss_cap()) as i64;
                mss - if status.options & 1 != 0 { 12 } else { 0 }
            }
            _ => 536,
        }
    }

    fn setsockopt(&mut self, line: usize, sc: &Syscall, fd: i64) -> Res<Outcome> {
        let opt = ident_arg(sc, 2).unwrap_or("").to_string();
        let val = int_arg(sc, 3);
        let s = self.sock(line, fd)?.clone();
        let int = |line: usize| -> Res<i64> {
            val.ok_or(Stop::Fail { line, reason: format!("setsockopt({opt}): expected an integer value") })
        };
        match opt.as_str() {
            "SO_REUSEADDR" | "SO_REUSEPORT" => {
                self.note(format!(
                    "line {line}: {opt} has no engine counterpart (TIME-WAIT does not block bind)"
                ));
            }
            "SO_RCVBUF" | "SO_SNDBUF" => {
                let v = int(line)?.max(0) as usize;
                let (r, w) = if opt == "SO_RCVBUF" { (Some(v), None) } else { (None, Some(v)) };
                {
                    let sm = self.sock_mut(line, fd)?;
                    sm.rcvbuf = r.or(sm.rcvbuf);
                    sm.sndbuf = w.or(sm.sndbuf);
                }
                match s.kind {
                    SockKind::Conn(c) if !s.dropped => {
                        let _ = self.stack().set_buffer_sizes(c, r, w);
                    }
                    SockKind::Listener(l) => {
                        let _ = self.stack().set_listener_buffer_sizes(l, r, w);
                    }
                    _ => {}
                }
            }
            "TCP_NODELAY" => {
                let on = int(line)? != 0;
                self.sock_mut(line, fd)?.nodelay = Some(on);
                if let Some(c) = s.conn() {
                    let _ = self.stack().set_nodelay(c, on);
                }
            }
            "SO_KEEPALIVE" | "TCP_KEEPIDLE" | "TCP_KEEPINTVL" | "TCP_KEEPCNT" => {
                let v = int(line)?;
                {
                    let sm = self.sock_mut(line, fd)?;
                    match opt.as_str() {
                        "SO_KEEPALIVE" => sm.keepalive = v != 0,
                        "TCP_KEEPIDLE" => sm.keep_idle_s = Some(v.max(0) as u64),
                        "TCP_KEEPINTVL" => sm.keep_intvl_s = Some(v.max(0) as u64),
                        _ => sm.keep_cnt = Some(v.max(0) as u64),
                    }
                }
                let s2 = self.sock(line, fd)?.clone();
                if let Some(c) = s2.conn() {
                    let ka = s2.keepalive.then(|| self.keepalive_of(&s2));
                    let _ = self.stack().set_keepalive(c, ka);
                }
            }
            "SO_LINGER" => {
                let fields = match sc.args.get(3) {
                    Some(Expr::Struct(f)) => f.clone(),
                    _ => return self.bad_args(line, sc),
                };
                let get = |n: &str| {
                    fields.iter().find(|(k, _)| k == n).and_then(|(_, v)| match v {
                        Expr::Int(i) => Some(*i),
                        _ => None,
                    })
                };
                // nplab packetdrill writes `{l_onoff=1, l_linger=0}`, Google's `{onoff=1, linger=0}`.
                let (Some(on), Some(secs)) =
                    (get("l_onoff").or(get("onoff")), get("l_linger").or(get("linger")))
                else {
                    return self.bad_args(line, sc);
                };
                if on != 0 && secs != 0 {
                    return unsupported(line, "SO_LINGER with a non-zero timeout");
                }
                self.sock_mut(line, fd)?.linger_zero = on != 0;
            }
            "TCP_KEEPINIT" => {
                // Seconds to complete the handshake (FreeBSD); the script's single stack takes
                // it as Config::connect_timeout, which new connections use.
                let secs = int(line)?;
                if self.stack.is_some() {
                    return unsupported(line, "TCP_KEEPINIT after the stack started");
                }
                self.cfg.connect_timeout = (secs > 0).then(|| Duration::from_secs(secs as u64));
            }
            "TCP_NOOPT" => {
                if int(line)? != 0 {
                    if self.stack.is_some() {
                        return unsupported(
                            line,
                            "TCP_NOOPT after the stack started (no per-connection option switch)",
                        );
                    }
                    // The only stack in this run serves this script alone: turning the
                    // options off in its Config is what TCP_NOOPT does for this socket.
                    self.cfg.window_scale = false;
                    self.cfg.timestamps = false;
                    self.cfg.sack = false;
                    self.cfg.dsack = false;
                    self.cfg.send_mss_option = false;
                    self.note(format!(
                        "line {line}: TCP_NOOPT -> Config window_scale, timestamps, sack, send_mss_option off"
                    ));
                }
            }
            "TCP_USER_TIMEOUT" => {
                // Milliseconds (tcp(7)); 0 = the system default (R2 alone).
                let ms = int(line)?;
                if ms < 0 {
                    return Ok(Outcome::Done(Err("EINVAL")));
                }
                self.sock_mut(line, fd)?.user_timeout_ms = (ms > 0).then_some(ms as u64);
                if let Some(c) = s.conn() {
                    let t = (ms > 0).then(|| Duration::from_millis(ms as u64));
                    let _ = self.stack().set_user_timeout(c, t);
                }
            }
            "IP_MTU_DISCOVER" => {
                // The engine always sends with DF set and never fragments: IP_PMTUDISC_DO (2)
                // and WANT (1) ask for exactly that. DONT (0) and PROBE (3) would change it.
                match sc.args.get(3) {
                    Some(Expr::List(l)) if matches!(l.as_slice(), [Expr::Ident(v)] if v == "IP_PMTUDISC_DO" || v == "IP_PMTUDISC_WANT") =>
                        {}
                    _ if matches!(int_arg(sc, 3), Some(1 | 2)) => {}
                    _ => {
                        return unsupported(
                            line,
                            "IP_MTU_DISCOVER other than IP_PMTUDISC_DO/WANT (DF is always set)",
                        );
                    }
                }
            }
            "IP_TTL" | "IP_TOS" => return self.set_ip_ttl_tos(line, sc, fd, &opt),
            // IPv6 (RFC 8200 §3): the hop limit and the traffic class are the same knobs.
            "IPV6_UNICAST_HOPS" => return self.set_ip_ttl_tos(line, sc, fd, "IP_TTL"),
            "IPV6_TCLASS" => return self.set_ip_ttl_tos(line, sc, fd, "IP_TOS"),
            other => return unsupported(line, format!("setsockopt({other})")),
        }
        Ok(Outcome::Done(Ok(0)))
    }

    /// setsockopt(IPPROTO_IP, IP_TTL / IP_TOS) (issue 13, RFC 9293 MUST-48): per
    /// connection or listener. On a socket that is neither yet, the value waits for
    /// connect/listen; when it is the script's only socket it also becomes the stack's
    /// default (`Config::ttl` / `Config::tos`), so the RSTs the stack sends for its bound
    /// port carry it as FreeBSD's tcp_dropwithreset does with the socket's inpcb.
    fn set_ip_ttl_tos(&mut self, line: usize, sc: &Syscall, fd: i64, opt: &str) -> Res<Outcome> {
        let v = match sc.args.get(3) {
            Some(Expr::List(l)) if l.len() == 1 => match &l[0] {
                Expr::Int(v) => Some(*v),
                Expr::Ident(name) => iptos_constant(name),
                _ => None,
            },
            _ => int_arg(sc, 3),
        };
        let Some(v) = v else {
            return unsupported(line, format!("setsockopt({opt}) value {:?}", sc.args.get(3)));
        };
        let ttl = opt == "IP_TTL";
        let range = if ttl { 1..=255 } else { 0..=255 };
        if !range.contains(&v) {
            return Ok(Outcome::Done(Err("EINVAL")));
        }
        let v = v as u8;
        let s = self.sock(line, fd)?.clone();
        {
            let sm = self.sock_mut(line, fd)?;
            if ttl { sm.ip_ttl_tos.0 = Some(v) } else { sm.ip_ttl_tos.1 = Some(v) }
        }
        let (t, o) = if ttl { (Some(v), None) } else { (None, Some(v)) };
        match s.kind {
            SockKind::Conn(c) if !s.dropped => {
                let _ = if ttl { self.stack().set_ttl(c, v) } else { self.stack().set_tos(c, v) };
            }
            SockKind::Listener(l) => {
                let _ = self.stack().set_listener_ttl_tos(l, t, o);
            }
            SockKind::Fresh if self.fds.len() == 1 => {
                let mut cfg = self.stack.as_ref().map_or_else(|| self.cfg.clone(), |st| st.config().clone());
                if ttl {
                    cfg.ttl = v
                } else {
                    cfg.tos = v
                }
                match self.stack.as_mut() {
                    Some(st) => *st.config_mut() = cfg,
                    None => self.cfg = cfg,
                }
                self.note(format!(
                    "line {line}: {opt} on the only socket -> Config::{} = {v}",
                    opt[3..].to_lowercase()
                ));
            }
            _ => {}
        }
        Ok(Outcome::Done(Ok(0)))
    }
}
