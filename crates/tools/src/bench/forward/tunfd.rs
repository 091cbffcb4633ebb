//! A TUN file descriptor as a tokio device: one `read` is one IP packet, one `write` sends
//! one. `ipstack` takes it as `AsyncRead + AsyncWrite`; the `netstack-smoltcp` pump uses
//! [`TunFd::recv`] and [`TunFd::send`]. The TUN is made by `tun-rs` (no packet-information
//! header, no offload) on a thread inside the client namespace, so it lives there.

use crate::netns::NetNs;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Create TUN `name` in `ns`, with `addr/prefix` on the kernel side, MTU `mtu`, up.
pub fn create_in(ns: &NetNs, name: &str, addr: Ipv4Addr, prefix: u8, mtu: u16) -> io::Result<OwnedFd> {
    let name = name.to_string();
    let fd = ns.spawn(move || -> io::Result<OwnedFd> {
        let dev = tun_rs::DeviceBuilder::new().name(name).mtu(mtu).ipv4(addr, prefix, None).build_sync()?;
        dev.set_nonblocking(true)?;
        // SAFETY: `into_raw_fd` hands over sole ownership of the open descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(dev.into_raw_fd()) })
    })?;
    fd.join().map_err(|_| io::Error::other("TUN thread panicked"))??
}

/// A non-blocking TUN descriptor registered with the tokio reactor.
pub struct TunFd(AsyncFd<OwnedFd>);

impl TunFd {
    /// Must be called inside a tokio runtime.
    pub fn new(fd: OwnedFd) -> io::Result<TunFd> {
        // SAFETY: the OwnedFd moves into the AsyncFd, which deregisters it before it closes.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(TunFd(fd))
    }

    /// The next packet into `buf`; its length.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.async_io(tokio::io::Interest::READABLE, |fd| sys_read(fd, buf)).await
    }

    /// Send one packet.
    pub async fn send(&self, pkt: &[u8]) -> io::Result<usize> {
        self.0.async_io(tokio::io::Interest::WRITABLE, |fd| sys_write(fd, pkt)).await
    }
}

fn sys_read(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes of writes; `fd` is open.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

fn sys_write(fd: &OwnedFd, pkt: &[u8]) -> io::Result<usize> {
    // SAFETY: `pkt` is valid for `pkt.len()` bytes of reads; `fd` is open.
    let n = unsafe { libc::write(fd.as_raw_fd(), pkt.as_ptr().cast(), pkt.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

impl AsyncRead for TunFd {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| sys_read(fd.get_ref(), unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for TunFd {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, pkt: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| sys_write(fd.get_ref(), pkt)) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
