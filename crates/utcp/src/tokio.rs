//! Async sockets for tokio: [`TcpListener`] and [`TcpStream`] with `AsyncRead` +
//! `AsyncWrite`, on the same [`Interface`] and runtime core as the blocking sockets.
//!
//! There is no polling tick. A task whose operation would block registers its waker in
//! the socket's wait slot, under the interface lock, and returns `Pending`; whoever
//! feeds the engine next (the driver thread, or a blocking socket call leading the TUN)
//! wakes it when the engine reports `Readable`, `Writable`, `Connected`, `Incoming` or
//! `Closed` for that socket. Registering under the same lock that dispatches events
//! means no wake-up is lost. While any task waits, the TUN stays with the driver, so an
//! idle interface sleeps in `epoll_wait` and costs no CPU.
//!
//! Works on current-thread and multi-thread runtimes: the engine runs on the driver
//! thread or inside the polling task, never on a tokio worker that blocks.
//!
//! ```no_run
//! # async fn demo(iface: &utcp::Interface) -> std::io::Result<()> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let listener = utcp::tokio::TcpListener::bind(iface, "0.0.0.0:7".parse().unwrap())?;
//! loop {
//!     let (mut stream, _peer) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let mut buf = [0u8; 4096];
//!         while let Ok(n) = stream.read(&mut buf).await {
//!             if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```

use crate::Interface;
use crate::driver::{Inner, Key, Shared};
use crate::engine::{ConnId, ListenerId, Quad, State};
use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll};

/// Let a task on the current tokio runtime read `iface`'s TUN (through the runtime's
/// reactor) and run the engine, instead of the interface's driver thread: a packet for
/// a stream then wakes one worker, which processes it and runs the stream's task next,
/// with no hand-off between threads (issue 11; `pump.rs`). Idempotent; the driver
/// thread keeps the timers and takes the TUN back when the task ends (stop, or the
/// runtime shuts down). Blocking sockets on the same interface keep working (they
/// follow). Call it inside a runtime with IO enabled (`enable_io`/`enable_all`; tokio
/// panics otherwise); on a current-thread runtime, never block its thread in a
/// blocking utcp call while the task owns the TUN.
pub fn drive(iface: &Interface) -> io::Result<()> {
    crate::pump::spawn(&iface.shared)
}

/// Which readiness a task waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    Read,
    Write,
}

/// A listening socket whose `accept` is a future.
pub struct TcpListener {
    shared: Arc<Shared>,
    id: ListenerId,
    local: SocketAddr,
}

impl TcpListener {
    /// Listen on `addr`: an unspecified IP means the interface's address, port 0 an
    /// ephemeral port. Binding does not wait for the network, so it is not `async`.
    pub fn bind(iface: &Interface, addr: SocketAddr) -> io::Result<TcpListener> {
        let shared = iface.shared.clone();
        let ip = if addr.ip().is_unspecified() { IpAddr::V4(shared.addr) } else { addr.ip() };
        let mut g = shared.lock();
        g.check_up()?;
        let id = g.stack.listen(SocketAddr::new(ip, addr.port()), 0)?;
        let local = g.stack.listener_addr(id)?;
        shared.register(&mut g, Key::Listener(id));
        drop(g);
        Ok(TcpListener { shared, id, local })
    }

    /// Listen for any destination address and port that `filter` takes (any-IP
    /// termination): each accepted stream's `local_addr()` is the destination its peer
    /// connected to. The kernel side must route those destinations into the TUN.
    pub fn bind_any(iface: &Interface, filter: crate::engine::AnyIpFilter) -> io::Result<TcpListener> {
        let shared = iface.shared.clone();
        let id = crate::socket::listen_any(&shared, filter)?;
        Ok(TcpListener { shared, id, local: SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0) })
    }

    /// Gate the handshake (any-IP gateways): SYNs are held unanswered and handed out by
    /// [`TcpListener::held_syn`], so the application can connect upstream first and then
    /// [`HeldSyn::accept`] or [`HeldSyn::refuse`] (the client sees "connection refused").
    pub fn set_handshake_gate(&self, on: bool) -> io::Result<()> {
        self.shared.lock().stack.set_handshake_gate(self.id, on)
    }

    /// Wait for the next held SYN of a gated listener.
    pub async fn held_syn(&self) -> io::Result<HeldSyn> {
        poll_fn(|cx| self.poll_held_syn(cx)).await
    }

    /// Poll for a held SYN. It waits on the listener's second waker slot, so one task
    /// can wait here while another waits in `accept`.
    pub fn poll_held_syn(&self, cx: &mut Context<'_>) -> Poll<io::Result<HeldSyn>> {
        let mut g = self.shared.lock();
        if let Err(e) = g.check_up() {
            return Poll::Ready(Err(e));
        }
        match g.stack.poll_held_syn(self.id) {
            Some(quad) => Poll::Ready(Ok(HeldSyn { shared: self.shared.clone(), quad, decided: false })),
            None => match g.register_waker(Key::Listener(self.id), false, cx.waker()) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    /// Wait for a connection that completed the handshake.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Poll for a completed connection; registers `cx`'s waker when there is none.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let mut g = self.shared.lock();
        if let Err(e) = g.check_up() {
            return Poll::Ready(Err(e));
        }
        match g.stack.accept(self.id) {
            Ok((c, peer)) => {
                self.shared.register(&mut g, Key::Conn(c));
                drop(g);
                Poll::Ready(Ok((TcpStream::from_parts(self.shared.clone(), c), peer)))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match g.register_waker(Key::Listener(self.id), true, cx.waker()) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                }
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener").field("id", &self.id).field("local", &self.local).finish()
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("id", &self.id).finish()
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

/// A SYN held by a gated listener: the connection a client asks for, not answered yet.
/// Dropping it undecided refuses it.
pub struct HeldSyn {
    shared: Arc<Shared>,
    quad: Quad,
    decided: bool,
}

impl HeldSyn {
    /// The destination the client asked for (its original destination).
    pub fn local_addr(&self) -> SocketAddr {
        self.quad.local
    }

    /// The client.
    pub fn peer_addr(&self) -> SocketAddr {
        self.quad.remote
    }

    /// Answer with the SYN-ACK; the stream then arrives through the listener's `accept`,
    /// with these `local_addr`/`peer_addr`. `WouldBlock` when the listener's accept queue
    /// is full: the SYN was dropped and the client will retransmit it (held again then).
    pub fn accept(mut self) -> io::Result<()> {
        self.decide(true)
    }

    /// Answer with a RST, as a closed port would: the client's connect is refused.
    pub fn refuse(mut self) -> io::Result<()> {
        self.decide(false)
    }

    fn decide(&mut self, accept: bool) -> io::Result<()> {
        self.decided = true;
        let mut g = self.shared.lock();
        g.check_up()?;
        let now = self.shared.now();
        let r = if accept { g.stack.accept_syn(now, self.quad) } else { g.stack.refuse_syn(self.quad) };
        g.after_op(&self.shared, now);
        r
    }
}

impl Drop for HeldSyn {
    fn drop(&mut self) {
        if !self.decided {
            let _ = self.decide(false);
        }
    }
}

impl std::fmt::Debug for HeldSyn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldSyn").field("quad", &self.quad).finish()
    }
}

/// What the stream and its owned halves share: dropping the last one closes the
/// connection (FIN, or RST if unread data remains, RFC 2525 §2.17).
struct Conn {
    shared: Arc<Shared>,
    id: ConnId,
}

impl Conn {
    fn key(&self) -> Key {
        Key::Conn(self.id)
    }

    /// The engine call `op`, run under the lock with the transmit/dispatch epilogue; a
    /// `WouldBlock` registers the waker for `dir` and becomes `Pending`.
    fn poll_op<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Dir,
        op: impl FnOnce(&mut Inner) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let g = self.shared.lock();
        if let Err(e) = g.check_up() {
            return Poll::Ready(Err(e));
        }
        let (mut g, now) = self.shared.pump_parked(g, self.shared.now());
        match op(&mut g) {
            Ok(r) => {
                g.after_op(&self.shared, now);
                Poll::Ready(Ok(r))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.pend(g, cx, dir, e),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Nothing to do yet: report how the connection ended, if it did, else wait.
    fn pend<R>(
        &self,
        mut g: MutexGuard<'_, Inner>,
        cx: &mut Context<'_>,
        dir: Dir,
        e: io::Error,
    ) -> Poll<io::Result<R>> {
        if let Some(reason) = g.waiters.get(&self.key()).and_then(|w| w.closed)
            && let Some(kind) = reason.error_kind()
        {
            return Poll::Ready(Err(g.stack.take_error(self.id).unwrap_or_else(|| io::Error::from(kind))));
        }
        match g.register_waker(self.key(), dir == Dir::Read, cx.waker()) {
            Ok(()) => Poll::Pending,
            Err(_) => Poll::Ready(Err(e)),
        }
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let id = self.id;
        let dst = buf.initialize_unfilled();
        match self.poll_op(cx, Dir::Read, |g| Ok(g.stack.recv(id, dst)?)) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let id = self.id;
        self.poll_op(cx, Dir::Write, |g| Ok(g.stack.send(id, data)?))
    }

    /// Readiness without an operation: ready when the engine could read (data or EOF)
    /// or write, or the connection ended.
    fn poll_ready(&self, cx: &mut Context<'_>, dir: Dir) -> Poll<io::Result<()>> {
        let id = self.id;
        self.poll_op(cx, dir, |g| {
            let st = &g.stack;
            let ready = match dir {
                Dir::Read => st.can_recv(id),
                Dir::Write => st.can_send(id),
            };
            if ready || st.state(id).is_none_or(|s| s == State::Closed) {
                Ok(())
            } else {
                Err(io::Error::from(io::ErrorKind::WouldBlock))
            }
        })
    }

    fn shutdown_write(&self) -> io::Result<()> {
        let mut g = self.shared.lock();
        g.check_up()?;
        let now = self.shared.now();
        let r = g.stack.shutdown(self.id, Shutdown::Write);
        g.after_op(&self.shared, now);
        self.shared.notify(&mut g, self.key());
        match r {
            // A second shutdown, or one after the peer reset us, has nothing left to do.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        }
    }

    fn with_stack<R>(&self, f: impl FnOnce(&mut crate::engine::Stack, ConnId) -> R) -> R {
        let mut g = self.shared.lock();
        f(&mut g.stack, self.id)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        let now = self.shared.now();
        g.stack.close(self.id);
        g.unregister(self.key());
        g.after_op(&self.shared, now);
    }
}

/// A connection implementing tokio's `AsyncRead` and `AsyncWrite`.
///
/// `poll_shutdown` sends FIN (half-close); dropping the stream closes it; [`abort`]
/// resets it (like SO_LINGER 0).
///
/// [`abort`]: TcpStream::abort
#[derive(Debug)]
pub struct TcpStream {
    conn: Arc<Conn>,
}

impl TcpStream {
    fn from_parts(shared: Arc<Shared>, id: ConnId) -> TcpStream {
        TcpStream { conn: Arc::new(Conn { shared, id }) }
    }

    /// Open a connection from the interface's address (ephemeral port) to `addr`, and
    /// wait for the handshake. Refused: `ConnectionRefused`; no answer within the SYN
    /// retries: `TimedOut` (bound it with `tokio::time::timeout` to give up sooner).
    pub async fn connect(iface: &Interface, addr: SocketAddr) -> io::Result<TcpStream> {
        let shared = iface.shared.clone();
        let local = SocketAddr::new(IpAddr::V4(shared.addr), 0);
        let id = {
            let mut g = shared.lock();
            g.check_up()?;
            let now = shared.now();
            let id = g.stack.connect(now, local, addr)?;
            shared.register(&mut g, Key::Conn(id));
            g.after_op(&shared, now);
            id
        };
        // From here on, dropping `stream` (e.g. the future being cancelled) releases it.
        let stream = TcpStream::from_parts(shared, id);
        poll_fn(|cx| {
            stream.conn.poll_op(cx, Dir::Write, |g| match g.stack.state(id) {
                Some(s) if s.is_synchronized() => Ok(()),
                Some(State::Closed) | None => Err(g
                    .stack
                    .take_error(id)
                    .unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused))),
                Some(_) => Err(io::Error::from(io::ErrorKind::WouldBlock)),
            })
        })
        .await?;
        Ok(stream)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.conn.with_stack(|st, id| st.peer_addr(id))
    }

    /// The local address: for a stream accepted by an any-IP listener, the original
    /// destination the peer connected to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.conn.with_stack(|st, id| st.local_addr(id))
    }

    /// Turn Nagle's algorithm off (`true`) or on (RFC 9293 §3.7.4).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let conn = &self.conn;
        let mut g = conn.shared.lock();
        let now = conn.shared.now();
        let r = g.stack.set_nodelay(conn.id, nodelay);
        // Turning Nagle off may release a held segment at once.
        g.after_op(&conn.shared, now);
        r
    }

    /// Whether Nagle's algorithm is off.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.conn.with_stack(|st, id| st.nodelay(id))
    }

    /// IP_TTL: the IPv4 TTL of this connection's packets from now on (tokio's `set_ttl`).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TTL > 255"))?;
        self.conn.with_stack(|st, id| st.set_ttl(id, ttl))
    }

    /// The connection's IPv4 TTL.
    pub fn ttl(&self) -> io::Result<u32> {
        self.conn.with_stack(|st, id| st.ttl_tos(id)).map(|(t, _)| u32::from(t))
    }

    /// IP_TOS: the TOS byte (DSCP and ECN bits) of this connection's packets from now on
    /// (RFC 9293 §3.9.1.1 MUST-48).
    pub fn set_tos(&self, tos: u32) -> io::Result<()> {
        let tos = u8::try_from(tos).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TOS > 255"))?;
        self.conn.with_stack(|st, id| st.set_tos(id, tos))
    }

    /// The connection's TOS byte.
    pub fn tos(&self) -> io::Result<u32> {
        self.conn.with_stack(|st, id| st.ttl_tos(id)).map(|(_, t)| u32::from(t))
    }

    /// Send a RST and release the connection now (like SO_LINGER 0 then close).
    pub fn abort(self) {
        let conn = &self.conn;
        let mut g = conn.shared.lock();
        let now = conn.shared.now();
        g.stack.abort(conn.id);
        conn.shared.notify(&mut g, conn.key());
        g.after_op(&conn.shared, now);
        // `Conn::drop` then finds the handle released: `close` on it is a no-op.
    }

    /// Wait until a read would not block (data, EOF, or an error to report).
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.conn.poll_ready(cx, Dir::Read)).await
    }

    /// Wait until a write would not block (send-buffer space, or an error to report).
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.conn.poll_ready(cx, Dir::Write)).await
    }

    /// Read what is there without waiting: `WouldBlock` when nothing is.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let conn = &self.conn;
        let mut g = conn.shared.lock();
        g.check_up()?;
        let now = conn.shared.now();
        let r = g.stack.recv(conn.id, buf);
        g.after_op(&conn.shared, now);
        Ok(r?)
    }

    /// Write what fits without waiting: `WouldBlock` when the send buffer is full.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        let conn = &self.conn;
        let mut g = conn.shared.lock();
        g.check_up()?;
        let now = conn.shared.now();
        let r = g.stack.send(conn.id, data);
        g.after_op(&conn.shared, now);
        Ok(r?)
    }

    /// Borrowed halves, for reading and writing from two places of one task.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf { conn: &self.conn }, WriteHalf { conn: &self.conn })
    }

    /// Owned halves, for two tasks. The connection closes when both are dropped;
    /// dropping the write half sends FIN, as tokio's does.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf { conn: self.conn.clone() },
            OwnedWriteHalf { conn: self.conn, shutdown_on_drop: true },
        )
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.conn.poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.conn.poll_write(cx, data)
    }
    /// Segments leave as soon as the engine allows: there is nothing to flush.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    /// Sends FIN (RFC 9293 §3.10.4 CLOSE of the sending direction).
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.conn.shutdown_write())
    }
}

/// The reading half of a [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a> {
    conn: &'a Arc<Conn>,
}

/// The writing half of a [`TcpStream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a> {
    conn: &'a Arc<Conn>,
}

/// The reading half of a [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    conn: Arc<Conn>,
}

/// The writing half of a [`TcpStream::into_split`]; dropping it sends FIN.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    conn: Arc<Conn>,
    shutdown_on_drop: bool,
}

impl OwnedWriteHalf {
    /// Drop without sending FIN.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.conn.shutdown_write();
        }
    }
}

impl OwnedReadHalf {
    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.conn.with_stack(|st, id| st.peer_addr(id))
    }
}

macro_rules! read_half {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.conn.poll_read(cx, buf)
            }
        }
    };
}

macro_rules! write_half {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.conn.poll_write(cx, data)
            }
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.conn.shutdown_write())
            }
        }
    };
}

read_half!(ReadHalf<'_>);
read_half!(OwnedReadHalf);
write_half!(WriteHalf<'_>);
write_half!(OwnedWriteHalf);
