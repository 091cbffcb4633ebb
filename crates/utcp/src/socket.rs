//! Blocking sockets shaped like `std::net::{TcpListener, TcpStream}`, on an [`Interface`].
//!
//! Error kinds follow std on Linux: a SYN answered by RST is `ConnectionRefused`, a RST
//! in a synchronized state `ConnectionReset`, a retransmission give-up `TimedOut`, a write
//! after `shutdown(Write)` `BrokenPipe`, a taken port `AddrInUse`, no data on a
//! nonblocking socket or an expired read/write timeout `WouldBlock`.

use super::Interface;
use super::driver::{Interest, Key, Shared};
use crate::engine::{ConnId, Keepalive, ListenerId, Status};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A timeout stored in an atomic: 0 = none (std rejects zero timeouts anyway).
#[derive(Default)]
struct AtomicTimeout(AtomicU64);

impl AtomicTimeout {
    fn set(&self, d: Option<Duration>) -> io::Result<()> {
        let v = match d {
            None => 0,
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
            }
            Some(d) => d.as_nanos().clamp(1, u64::MAX as u128) as u64,
        };
        self.0.store(v, Ordering::Relaxed);
        Ok(())
    }
    fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }
}

fn timed_out_would_block() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, "timed out")
}

fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    // IPv6 (issue 13): both families; an IPv6 one needs the interface's `addr6`.
    let v: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if v.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no address to use"));
    }
    Ok(v)
}

/// The any-IP listener of `shared`'s stack, with its wait slot (both socket APIs).
pub(crate) fn listen_any(shared: &Shared, filter: crate::engine::AnyIpFilter) -> io::Result<ListenerId> {
    let mut g = shared.lock();
    g.check_up()?;
    let id = g.stack.listen_any(filter, 0)?;
    shared.register(&mut g, Key::Listener(id));
    Ok(id)
}

/// A listening socket on an [`Interface`].
pub struct TcpListener {
    shared: Arc<Shared>,
    id: ListenerId,
    local: SocketAddr,
    nonblocking: AtomicBool,
}

impl TcpListener {
    /// Listen on `addr`; an unspecified IPv4 address means the interface's address, the
    /// unspecified IPv6 address `[::]` every address of the interface (IPv4 too unless
    /// `Config::v6only`), port 0 picks a free ephemeral port.
    pub fn bind(iface: &Interface, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let shared = iface.shared.clone();
        let mut last = None;
        for a in resolve(addr)? {
            let ip = match a.ip() {
                IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(shared.addr),
                ip => ip,
            };
            let mut g = shared.lock();
            g.check_up()?;
            // Backlog 0: the engine's `default_backlog`; port 0: an ephemeral port.
            let result =
                g.stack.listen(SocketAddr::new(ip, a.port()), 0).map_err(io::Error::from).and_then(|l| {
                    let port = g.stack.listener_addr(l)?.port();
                    Ok((l, port))
                });
            match result {
                Ok((id, port)) => {
                    shared.register(&mut g, Key::Listener(id));
                    drop(g);
                    return Ok(TcpListener {
                        shared,
                        id,
                        local: SocketAddr::new(ip, port),
                        nonblocking: AtomicBool::new(false),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::InvalidInput)))
    }

    /// Listen for any destination address and port that `filter` takes (any-IP
    /// termination, as a tun2socks gateway needs): each accepted stream's `local_addr()`
    /// is the destination its peer connected to. The kernel side must route those
    /// destinations into the TUN. At most one per interface (`AddrInUse`).
    pub fn bind_any(iface: &Interface, filter: crate::engine::AnyIpFilter) -> io::Result<TcpListener> {
        let shared = iface.shared.clone();
        let id = listen_any(&shared, filter)?;
        let local = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);
        Ok(TcpListener { shared, id, local, nonblocking: AtomicBool::new(false) })
    }

    /// Wait for a connection that completed the handshake.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_until(None)
    }

    /// `accept` giving up with `WouldBlock` after `timeout` (a utcp extension, handy for
    /// servers that watch a stop flag).
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_until(Instant::now().checked_add(timeout))
    }

    fn accept_until(&self, deadline: Option<Instant>) -> io::Result<(TcpStream, SocketAddr)> {
        let mut g = self.shared.lock();
        loop {
            g.check_up()?;
            match g.stack.accept(self.id) {
                Ok((c, peer)) => {
                    self.shared.register(&mut g, Key::Conn(c));
                    drop(g);
                    let s = TcpStream::new(self.shared.clone(), c, peer);
                    s.span.in_scope(|| tracing::debug!("accepted"));
                    return Ok((s, peer));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.nonblocking.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(timed_out_would_block());
                    }
                    g = self.shared.wait(g, Key::Listener(self.id), Interest::Any, deadline)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// An endless iterator over accepted connections, like std's.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// In non-blocking mode `accept` fails with `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// Receive/send buffer sizes for connections accepted from now on (like setting
    /// SO_RCVBUF/SO_SNDBUF on a listening socket; a utcp extension).
    pub fn set_buffer_sizes(&self, recv: Option<usize>, send: Option<usize>) -> io::Result<()> {
        self.shared.lock().stack.set_listener_buffer_sizes(self.id, recv, send)
    }

    /// Listeners carry no asynchronous error; `Err` only if the interface is down.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.shared.lock().check_up().map(|()| None)
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        let now = self.shared.now();
        g.stack.close_listener(self.id);
        g.unregister(Key::Listener(self.id));
        g.after_op(&self.shared, now);
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener").field("local", &self.local).finish()
    }
}

/// Iterator returned by [`TcpListener::incoming`].
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A connection on an [`Interface`]. Dropping it closes gracefully (FIN; RST if unread
/// data remains, RFC 2525 §2.17).
pub struct TcpStream {
    shared: Arc<Shared>,
    id: ConnId,
    nonblocking: AtomicBool,
    read_timeout: AtomicTimeout,
    write_timeout: AtomicTimeout,
    /// Set once the engine handle was released (aborted); `Drop` then has nothing to do.
    released: AtomicBool,
    /// Logs: this connection's `tracing` span (disabled unless a subscriber is installed).
    span: tracing::Span,
}

impl TcpStream {
    fn new(shared: Arc<Shared>, id: ConnId, peer: SocketAddr) -> TcpStream {
        let span = tracing::debug_span!(parent: None, "tcp", conn = ?id, %peer);
        TcpStream {
            shared,
            id,
            nonblocking: AtomicBool::new(false),
            read_timeout: AtomicTimeout::default(),
            write_timeout: AtomicTimeout::default(),
            released: AtomicBool::new(false),
            span,
        }
    }

    /// Open a connection from the interface's address (ephemeral port) to `addr`.
    pub fn connect(iface: &Interface, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in resolve(addr)? {
            match Self::connect_until(iface, a, None) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::InvalidInput)))
    }

    /// `connect` that gives up with `TimedOut` after `timeout`.
    pub fn connect_timeout(iface: &Interface, addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        Self::connect_until(iface, *addr, Instant::now().checked_add(timeout))
    }

    fn connect_until(
        iface: &Interface,
        remote: SocketAddr,
        deadline: Option<Instant>,
    ) -> io::Result<TcpStream> {
        let shared = iface.shared.clone();
        // IPv6 (issue 13): the interface's address of the remote's family.
        let local_ip = match remote.ip() {
            IpAddr::V4(_) => IpAddr::V4(shared.addr),
            IpAddr::V6(_) => IpAddr::V6(shared.addr6.ok_or_else(|| {
                io::Error::new(io::ErrorKind::AddrNotAvailable, "the interface has no IPv6 address")
            })?),
        };
        let local = SocketAddr::new(local_ip, 0);
        let mut g = shared.lock();
        g.check_up()?;
        let now = shared.now();
        let id = g.stack.connect(now, local, remote)?;
        shared.register(&mut g, Key::Conn(id));
        let duty = g.after_op_deferred(&shared, now);
        drop(g);
        duty.write_unlocked();
        // From here on, dropping `stream` releases the connection on every error path.
        let stream = TcpStream::new(shared.clone(), id, remote);
        stream.span.in_scope(|| tracing::debug!("connecting"));
        let mut g = shared.lock();
        loop {
            g.check_up()?;
            if let Some(reason) = g.waiters.get(&Key::Conn(id)).and_then(|w| w.closed) {
                let kind = reason.error_kind().unwrap_or(io::ErrorKind::ConnectionRefused);
                return Err(g.stack.take_error(id).unwrap_or_else(|| io::Error::from(kind)));
            }
            match g.stack.state(id) {
                Some(s) if s.is_synchronized() => {
                    drop(g);
                    stream.span.in_scope(|| tracing::debug!("connected"));
                    return Ok(stream);
                }
                Some(_) => {}
                None => return Err(io::Error::from(io::ErrorKind::NotConnected)),
            }
            if let Some(e) = g.stack.take_error(id) {
                return Err(e);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // Abort rather than leave a half-open attempt retransmitting SYNs.
                drop(g);
                stream.abort();
                return Err(io::Error::new(io::ErrorKind::TimedOut, "connection timed out"));
            }
            g = shared.wait(g, Key::Conn(id), Interest::Any, deadline)?;
        }
    }

    fn key(&self) -> Key {
        Key::Conn(self.id)
    }

    /// The error a finished connection ended with, if the engine did not report one itself.
    fn closed_error(&self, g: &super::driver::Inner) -> Option<io::Error> {
        let reason = g.waiters.get(&self.key())?.closed?;
        self.span.in_scope(|| tracing::trace!(?reason, "call on a closed connection"));
        reason.error_kind().map(io::Error::from)
    }

    fn do_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Reading opens the window: a window update may be due at once.
        self.blocking(Interest::Read, self.read_timeout.get(), |st, id| Ok(st.recv(id, buf)?))
    }

    fn do_write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Transmit on this thread, now: no wait for the driver.
        self.blocking(Interest::Write, self.write_timeout.get(), |st, id| Ok(st.send(id, buf)?))
    }

    /// Run `op` until it stops answering WouldBlock, waiting (or leading the TUN) for
    /// `interest` in between, unless the socket is non-blocking or `timeout` passed.
    fn blocking(
        &self,
        interest: Interest,
        timeout: Option<Duration>,
        mut op: impl FnMut(&mut crate::engine::Stack, ConnId) -> io::Result<usize>,
    ) -> io::Result<usize> {
        // One clock read per round serves the timeout and the engine (issue 12).
        let mut t = Instant::now();
        let deadline = timeout.and_then(|d| t.checked_add(d));
        let mut g = self.shared.lock();
        let mut first = true;
        loop {
            g.check_up()?;
            if !std::mem::take(&mut first) {
                t = Instant::now();
            }
            let now;
            (g, now) = self.shared.pump_parked(g, self.shared.now_at(t));
            match op(&mut g.stack, self.id) {
                Ok(n) => {
                    // Issue 12: write to the TUN after releasing the interface lock.
                    let duty = g.after_op_deferred(&self.shared, now);
                    drop(g);
                    duty.write_unlocked();
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(e) = self.closed_error(&g) {
                        return Err(e);
                    }
                    if self.nonblocking.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                    if deadline.is_some_and(|d| t >= d) {
                        return Err(timed_out_would_block());
                    }
                    g = self.shared.wait(g, self.key(), interest, deadline)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Like std: `Read` stops returning data (EOF), `Write` sends a FIN (later writes
    /// fail with `BrokenPipe`), `Both` does both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.span.in_scope(|| tracing::debug!(?how, "shutdown"));
        let mut g = self.shared.lock();
        g.check_up()?;
        let now = self.shared.now();
        let r = g.stack.shutdown(self.id, how);
        let duty = g.after_op_deferred(&self.shared, now);
        // Blocked readers/writers of this socket must re-check.
        self.shared.notify(&mut g, self.key());
        drop(g);
        duty.write_unlocked();
        r
    }

    /// Send a RST and release the connection now (a utcp extension; like SO_LINGER 0).
    pub fn abort(self) {
        self.span.in_scope(|| tracing::debug!("abort"));
        let mut g = self.shared.lock();
        let now = self.shared.now();
        g.stack.abort(self.id);
        self.shared.notify(&mut g, self.key());
        g.unregister(self.key());
        let duty = g.after_op_deferred(&self.shared, now);
        self.released.store(true, Ordering::Relaxed);
        drop(g);
        duty.write_unlocked();
    }

    /// The remote socket address. Errors: `NotConnected` once the connection is released.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.shared.lock().stack.peer_addr(self.id)
    }

    /// The local socket address. Errors: `NotConnected` once the connection is released.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.lock().stack.local_addr(self.id)
    }

    /// Timeout for `read` (`None`: wait forever); on expiry `read` fails with `WouldBlock`.
    /// Errors: `InvalidInput` for a zero duration, as std.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(dur)
    }

    /// Timeout for `write` (`None`: wait forever); on expiry `write` fails with `WouldBlock`.
    /// Errors: `InvalidInput` for a zero duration, as std.
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(dur)
    }

    /// The read timeout (see [`set_read_timeout`](Self::set_read_timeout)).
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.read_timeout.get())
    }

    /// The write timeout (see [`set_write_timeout`](Self::set_write_timeout)).
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.write_timeout.get())
    }

    /// Disable (true) or enable Nagle's algorithm (RFC 9293 §3.7.4).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let mut g = self.shared.lock();
        let now = self.shared.now();
        g.stack.set_nodelay(self.id, nodelay)?;
        // Turning Nagle off may release a held small segment.
        g.after_op(&self.shared, now);
        Ok(())
    }

    /// Whether Nagle's algorithm (RFC 9293 §3.7.4) is off.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.shared.lock().stack.nodelay(self.id)
    }

    /// IP_TTL: the IPv4 TTL of this connection's packets from now on (std's `set_ttl`).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TTL > 255"))?;
        self.shared.lock().stack.set_ttl(self.id, ttl)
    }

    /// The connection's IPv4 TTL.
    pub fn ttl(&self) -> io::Result<u32> {
        Ok(u32::from(self.shared.lock().stack.ttl_tos(self.id)?.0))
    }

    /// IP_TOS: the TOS byte (DSCP and ECN bits) of this connection's packets from now on
    /// (RFC 9293 §3.9.1.1 MUST-48).
    pub fn set_tos(&self, tos: u32) -> io::Result<()> {
        let tos = u8::try_from(tos).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TOS > 255"))?;
        self.shared.lock().stack.set_tos(self.id, tos)
    }

    /// The connection's TOS byte.
    pub fn tos(&self) -> io::Result<u32> {
        Ok(u32::from(self.shared.lock().stack.ttl_tos(self.id)?.1))
    }

    /// The MSS path MTU discovery lowered this connection to (RFC 1191 Fragmentation
    /// Needed, or RFC 4821 black-hole detection), if it did.
    pub fn path_mss(&self) -> io::Result<Option<u16>> {
        self.shared.lock().stack.path_mss(self.id)
    }

    /// In non-blocking mode `read`/`write` fail with `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// SO_RCVBUF/SO_SNDBUF (a utcp extension). Before the handshake completes, the receive
    /// size also decides the window scale offered (RFC 7323 §2.3).
    pub fn set_buffer_sizes(&self, recv: Option<usize>, send: Option<usize>) -> io::Result<()> {
        let mut g = self.shared.lock();
        let now = self.shared.now();
        g.stack.set_buffer_sizes(self.id, recv, send)?;
        // A larger receive buffer may open the window: send the update now.
        g.after_op(&self.shared, now);
        Ok(())
    }

    /// Current (receive, send) buffer sizes.
    pub fn buffer_sizes(&self) -> io::Result<(usize, usize)> {
        self.shared.lock().stack.buffer_sizes(self.id)
    }

    /// TCP keepalive (RFC 9293 §3.8.4); `None` turns it off.
    pub fn set_keepalive(&self, keepalive: Option<Keepalive>) -> io::Result<()> {
        let mut g = self.shared.lock();
        let now = self.shared.now();
        g.stack.set_keepalive(self.id, keepalive)?;
        g.after_op(&self.shared, now);
        Ok(())
    }

    /// The pending asynchronous error (reset, timeout, refusal), clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let mut g = self.shared.lock();
        g.check_up()?;
        Ok(g.stack.take_error(self.id))
    }

    /// RFC 9293 §3.10.6 STATUS: state, windows, RTT, retransmissions (a utcp extension).
    pub fn status(&self) -> io::Result<Status> {
        self.shared.lock().stack.status(self.id)
    }

    /// Copy received data without consuming it.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.shared.lock().stack.peek(self.id, buf)?)
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        if self.released.load(Ordering::Relaxed) {
            return;
        }
        self.span.in_scope(|| tracing::debug!("close"));
        let g = self.shared.lock();
        let now = self.shared.now();
        // Input first: a FIN or RST the peer already sent decides what our close sends.
        let (mut g, now) = self.shared.pump_parked_after(g, now, std::time::Duration::ZERO);
        g.stack.close(self.id);
        g.unregister(self.key());
        let duty = g.after_op_deferred(&self.shared, now);
        drop(g);
        duty.write_unlocked();
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream").field("id", &self.id).finish()
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.do_read(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.do_read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.do_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.do_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
