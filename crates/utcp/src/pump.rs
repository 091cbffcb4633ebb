//! The TUN read by a tokio task (`utcp::tokio::drive`, issue 11): no thread hop.
//!
//! Without it, a packet for an async stream costs two thread wake-ups: the TUN wakes the
//! driver thread, which runs the engine and wakes the tokio task waiting on the stream.
//! With it, the TUN sits in the runtime's reactor (`AsyncFd`, edge-triggered): a packet
//! wakes one worker, which runs this task; the task drains the TUN (every ready packet,
//! batch after batch), feeds the engine, writes what it produced and wakes the stream
//! tasks, which tokio runs next on the same worker (its LIFO slot). That is the shape
//! of ipstack and netstack-smoltcp, measured in `bench::forward`.
//!
//! Ownership ([`RxOwner::Async`]): while the task owns the TUN it is disarmed in the
//! driver's epoll, and blocking calls follow (condvar) instead of leading. The driver
//! thread keeps the timers (timerfd). Whenever the TUN turns readable while someone else
//! owns it (the driver, a parked leader), the task takes it back under the lock; a
//! leader in the middle of a stint keeps it until it releases it. When the task ends
//! (interface stopped, runtime shut down and the task dropped), a guard gives the TUN
//! back to the driver, so the interface never goes deaf.
//!
//! Idle costs nothing: the task sleeps in the reactor, the driver in `epoll_wait`.

use crate::driver::{RxBuf, RxOwner, Shared};
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::task::Poll;
use tokio::io::unix::AsyncFd;

/// The TUN descriptor, as the reactor sees it.
struct TunFd(Arc<Shared>);

impl AsRawFd for TunFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.tun_dev.as_raw_fd()
    }
}

/// The task's doorbell (stop, or the TUN handed over), as the reactor sees it.
struct BellFd(Arc<Shared>);

impl AsRawFd for BellFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.pump_bell.as_fd().as_raw_fd()
    }
}

/// Gives the TUN back to the driver however the task ends (returns, or is dropped with
/// its runtime).
struct Release(Arc<Shared>);

impl Drop for Release {
    fn drop(&mut self) {
        let mut g = self.0.lock();
        g.pump_running = false;
        if g.rx == RxOwner::Async {
            g.rx = RxOwner::Driver;
            self.0.arm_tun(true);
        }
    }
}

/// Start the task on the current tokio runtime, unless one runs already. The runtime
/// must have IO enabled (`enable_io`/`enable_all`); a current-thread runtime works as
/// long as the application never blocks its only thread in a blocking utcp call.
pub(crate) fn spawn(shared: &Arc<Shared>) -> io::Result<()> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|e| io::Error::other(format!("utcp::tokio::drive outside a tokio runtime: {e}")))?;
    let mut g = shared.lock();
    g.check_up()?;
    if g.pump_running {
        return Ok(());
    }
    let _enter = handle.enter();
    let readable = tokio::io::Interest::READABLE;
    // SAFETY: both wrappers hold the `Shared` that owns the descriptor (the TUN handle
    // and the eventfd), so it stays open and the same for the `AsyncFd`'s lifetime.
    let tun = unsafe { AsyncFd::register_with_interest(TunFd(shared.clone()), readable) }?;
    let bell = unsafe { AsyncFd::register_with_interest(BellFd(shared.clone()), readable) }?;
    g.pump_running = true;
    drop(g);
    let release = Release(shared.clone());
    handle.spawn(async move {
        let _release = release;
        if let Err(e) = run(&tun, &bell).await {
            let s = &tun.get_ref().0;
            s.lock().fail(s, e);
        }
    });
    Ok(())
}

async fn run(tun: &AsyncFd<TunFd>, bell: &AsyncFd<BellFd>) -> io::Result<()> {
    let shared = &tun.get_ref().0;
    let mut rx = RxBuf::new();
    // Edge-triggered: whatever queued before registration is read once up front.
    let mut first = true;
    loop {
        // `None`: the bell rang (stop, or the TUN was handed to us).
        let guard = if std::mem::take(&mut first) {
            None
        } else {
            poll_fn(|cx| {
                if let Poll::Ready(r) = bell.poll_read_ready(cx) {
                    let mut g = r?;
                    shared.pump_bell.drain();
                    g.clear_ready();
                    return Poll::Ready(Ok(None));
                }
                tun.poll_read_ready(cx).map(|r| r.map(Some))
            })
            .await?
        };
        if !take(shared) {
            // The interface stops, or the driver or a leader is mid-read (and reads
            // this packet; it hands the TUN over when done).
            if shared.lock().stop {
                return Ok(());
            }
            if let Some(mut g) = guard {
                g.clear_ready();
            }
            continue;
        }
        if drain(shared, &mut rx).await?
            && let Some(mut g) = guard
        {
            g.clear_ready();
        }
    }
}

/// Become the TUN's reader if nobody is mid-read. Returns false if we may not read.
fn take(shared: &Shared) -> bool {
    let mut g = shared.lock();
    if g.stop || g.tun.is_none() {
        return false;
    }
    g.stats.async_wakeups += 1;
    match g.rx {
        RxOwner::Async => true,
        RxOwner::Parked { .. } => {
            g.rx = RxOwner::Async;
            true
        }
        RxOwner::Driver if g.can_lead() => {
            shared.arm_tun(false);
            g.rx = RxOwner::Async;
            true
        }
        RxOwner::Driver | RxOwner::Leader => false,
    }
}

/// Read and process batches until the TUN is empty (true) or we lost it (false). After
/// each full batch the task yields, so the stream tasks it woke run before the next.
async fn drain(shared: &Shared, rx: &mut RxBuf) -> io::Result<bool> {
    let Some(dev) = shared.lock().tun.clone() else {
        return Ok(false);
    };
    loop {
        let (more, err) = rx.read_batch(&dev);
        {
            let mut g = shared.lock();
            if g.stop {
                return Ok(false);
            }
            if !rx.is_empty() {
                let now = shared.now();
                g.stats.async_bursts += 1;
                g.receive_batch(shared, now, rx, crate::driver::Who::App);
                g.after_op(shared, now);
            }
            if let Some(e) = err {
                return Err(e);
            }
            if g.rx != RxOwner::Async {
                return Ok(false);
            }
        }
        if !more {
            return Ok(true);
        }
        tokio::task::yield_now().await;
    }
}
