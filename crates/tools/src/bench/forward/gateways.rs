//! The three user-space gateways of the `forward` bench. Each runs the SAME minimal tokio
//! forwarder on its own 2-worker runtime: accept a TCP stream from the stack, connect
//! upstream to the stream's original destination from the server namespace (the socket
//! factory of [`crate::forward`]), then `tokio::io::copy_bidirectional`.

use super::tunfd::{self, TunFd};
use super::{CLIENT_NET, TUN, TUN_PEER, TUN_STACK};
use crate::forward::{self, ForwardOptions, SocketFactory, Upstream};
use crate::netns::NetNs;
use futures_util::{SinkExt, StreamExt};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// A user-space TCP stack terminating the client namespace's TUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    Utcp,
    Ipstack,
    NetstackSmoltcp,
}

/// What every relay task shares.
struct Ctx {
    factory: SocketFactory,
    opts: ForwardOptions,
}

/// The device a gateway terminates, made before its thread starts.
enum Device {
    Utcp(utcp::Interface),
    Fd(OwnedFd),
}

/// A running gateway; dropping it stops the runtime and joins its thread.
pub struct Gateway {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Gateway {
    /// Create the TUN in `client` with a route for [`CLIENT_NET`] into it, and start the
    /// forwarder; upstream sockets are made in the namespace `server`.
    pub fn start(stack: Stack, client: &NetNs, server: &str) -> io::Result<Gateway> {
        let device = match stack {
            Stack::Utcp => {
                let mut cfg = utcp::InterfaceConfig::new(TUN, TUN_STACK, TUN_PEER, 30);
                cfg.mtu = 1500;
                cfg.netns = Some(client.name().to_string());
                Device::Utcp(utcp::Interface::new(cfg)?)
            }
            _ => Device::Fd(tunfd::create_in(client, TUN, TUN_PEER, 30, 1500)?),
        };
        client.exec("ip", &["route", "replace", &format!("{}/24", CLIENT_NET), "dev", TUN])?;
        let mut opts = ForwardOptions::new(client.name(), TUN, vec![], Upstream::Netns(server.into()));
        opts.verbose = false;
        let factory = SocketFactory::new(&opts.upstream)?;
        let ctx = Arc::new(Ctx { factory, opts });
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fwd-{stack:?}"))
            .spawn(move || serve(stack, device, ctx, st, ready_tx))?;
        let gw = Gateway { stop, thread: Some(thread) };
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| io::Error::other("gateway did not start"))??;
        Ok(gw)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The gateway thread: its runtime serves until `stop`, then is shut down.
fn serve(
    stack: Stack,
    dev: Device,
    ctx: Arc<Ctx>,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<io::Result<()>>,
) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let r = rt.block_on(async {
        let gateway = async {
            match (stack, dev) {
                (Stack::Utcp, Device::Utcp(iface)) => serve_utcp(iface, ctx, &ready).await,
                (Stack::Ipstack, Device::Fd(fd)) => serve_ipstack(fd, ctx, &ready).await,
                (Stack::NetstackSmoltcp, Device::Fd(fd)) => serve_netstack(fd, ctx, &ready).await,
                _ => Err(io::Error::other("gateway device mismatch")),
            }
        };
        tokio::select! {
            r = gateway => r,
            () = stopped(&stop) => Ok(()),
        }
    });
    if let Err(e) = &r {
        let _ = ready.send(Err(io::Error::new(e.kind(), e.to_string())));
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    r
}

async fn stopped(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The forwarder proper, the same for every stack.
async fn relay<S: AsyncRead + AsyncWrite + Unpin>(mut client: S, dst: SocketAddr, ctx: Arc<Ctx>) {
    let Ok(mut upstream) = forward::connect_upstream(&ctx.factory, &ctx.opts, dst).await else { return };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

async fn serve_utcp(
    iface: utcp::Interface,
    ctx: Arc<Ctx>,
    ready: &mpsc::Sender<io::Result<()>>,
) -> io::Result<()> {
    let filter = utcp::engine::AnyIpFilter::all().prefix(IpAddr::V4(CLIENT_NET), 24);
    let listener = utcp::tokio::TcpListener::bind_any(&iface, filter)?;
    // The TUN is read by a task on this runtime, like the other two stacks (issue 11).
    utcp::tokio::drive(&iface)?;
    let _ = ready.send(Ok(()));
    loop {
        let (s, _peer) = listener.accept().await?;
        let dst = s.local_addr()?;
        tokio::spawn(relay(s, dst, ctx.clone()));
    }
}

async fn serve_ipstack(fd: OwnedFd, ctx: Arc<Ctx>, ready: &mpsc::Sender<io::Result<()>>) -> io::Result<()> {
    let mut cfg = ipstack::IpStackConfig::default();
    cfg.mtu(1500).map_err(io::Error::other)?;
    // As the crate's examples/tun.rs: MSS 1460, 256 KiB in flight.
    let mut tcp = ipstack::TcpConfig::default();
    tcp.options = Some(vec![ipstack::TcpOptions::MaximumSegmentSize(1460)]);
    tcp.max_unacked_bytes = 256 * 1024;
    cfg.with_tcp_config(tcp);
    let mut stack = ipstack::IpStack::new(cfg, TunFd::new(fd)?);
    let _ = ready.send(Ok(()));
    loop {
        // ipstack names the original destination `peer_addr`.
        if let ipstack::IpStackStream::Tcp(t) = stack.accept().await.map_err(io::Error::other)? {
            let dst = t.peer_addr();
            tokio::spawn(relay(t, dst, ctx.clone()));
        }
    }
}

async fn serve_netstack(fd: OwnedFd, ctx: Arc<Ctx>, ready: &mpsc::Sender<io::Result<()>>) -> io::Result<()> {
    let (stack, runner, _udp, listener) =
        netstack_smoltcp::StackBuilder::default().enable_tcp(true).mtu(1500).build()?;
    let mut listener = listener.ok_or_else(|| io::Error::other("netstack-smoltcp: no TCP listener"))?;
    if let Some(runner) = runner {
        tokio::spawn(runner);
    }
    let tun = Arc::new(TunFd::new(fd)?);
    let (mut to_stack, mut from_stack) = stack.split();
    let out = tun.clone();
    tokio::spawn(async move {
        while let Some(pkt) = from_stack.next().await {
            if let Ok(pkt) = pkt {
                let _ = out.send(&pkt).await;
            }
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = tun.recv(&mut buf).await {
            if to_stack.send(buf[..n].to_vec()).await.is_err() {
                break;
            }
        }
    });
    let _ = ready.send(Ok(()));
    while let Some((s, _local, remote)) = listener.next().await {
        tokio::spawn(relay(s, remote, ctx.clone()));
    }
    Err(io::Error::other("netstack-smoltcp listener ended"))
}
