//! `utcp bench --synflood-ceiling`: how many SYNs per second can *anything* behind a TUN
//! answer on this machine? (issue 9, "SYN flood": the ceiling for utcp's device path.)
//!
//! The same namespace, TUN (offload on, as `utcp bench --synflood` opens it: every packet
//! carries a 10-byte `virtio_net_hdr`) and flooder ([`super::synflood`]'s raw-socket
//! loop) as the synflood bench, but the engine is replaced by a NULL REFLECTOR: for each
//! packet read from the TUN it writes back one fixed 40-byte IPv4+TCP SYN-ACK-sized
//! packet to the packet's (spoofed) source, which the namespace's kernel drops (it does
//! not forward). Two device paths:
//!
//! - [`Path::ReadWrite`]: `read(2)` up to [`RW_BATCH`] packets, then one `write(2)` per
//!   answer, `poll(2)` when the queue is empty: today's runtime path (`RxBuf::read_batch`
//!   and `flush_tx`) without the engine.
//! - [`Path::Uring`]: io_uring with [`UringOptions::depth`] reads in flight and the
//!   answers queued as write SQEs, one `io_uring_enter` per completion batch.
//! - [`Path::UringMultishot`]: io_uring with one multishot read into a ring of provided
//!   buffers (no read SQE per packet), the answers as write SQEs.
//! - [`Path::Sink`]: the read/write path without the writes (the receive half alone).
//! - [`Path::ReadWrite2`]: a two-queue TUN (`IFF_MULTI_QUEUE`, the kernel spreads flows
//!   over the queues by hash) with one read/write reflector thread per queue.
//!
//! Reported per path: SYNs offered by the flooder, packets read and answered, TUN drops,
//! CPU time per packet of the reflector's thread and per SYN of the flooder's thread
//! (`getrusage(RUSAGE_THREAD)`), and for io_uring the `io_uring_enter` calls and the most
//! io-wq worker threads (`iou-wrk-*`) seen at once.

use super::synflood::{self, SPOOF_NET, thread_cpu_ns};
use crate::netns::NetNs;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use utcp::device::tun::{Tun, TunConfig};

const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 4, 1);
const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 4, 2);
/// Packets read per batch on the read/write path (the runtime's `RX_BATCH`).
pub const RW_BATCH: usize = 128;
/// Read buffer per packet: a SYN is 60 bytes; anything longer is cut (a reflector only).
const BUF: usize = 2048;
/// The answer: 40 bytes of IPv4 + TCP.
const ANSWER: usize = 40;

/// Which device path the reflector uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Path {
    ReadWrite,
    Uring,
    /// Read only, no answers: the receive half of the floor.
    Sink,
    /// Read/write on a two-queue TUN (`IFF_MULTI_QUEUE`), one reflector thread per queue.
    ReadWrite2,
    /// io_uring with one multishot read (`IORING_OP_READ_MULTISHOT`, kernel 6.7) into a
    /// registered ring of provided buffers.
    UringMultishot,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::ReadWrite => "read/write",
            Path::Uring => "io_uring",
            Path::Sink => "read only",
            Path::ReadWrite2 => "rw 2 queues",
            Path::UringMultishot => "io_uring multishot",
        }
    }

    pub fn parse(s: &str) -> Option<Path> {
        Some(match s {
            "rw" => Path::ReadWrite,
            "uring" => Path::Uring,
            "sink" => Path::Sink,
            "rw2" => Path::ReadWrite2,
            "uring-ms" => Path::UringMultishot,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub struct UringOptions {
    /// Reads in flight.
    pub depth: u32,
}

#[derive(Clone, Debug)]
pub struct CeilingOptions {
    pub flood: Duration,
    pub paths: Vec<Path>,
    /// The TUN's queue (`None`: the kernel's 500).
    pub tx_queue_len: Option<u32>,
    pub uring: UringOptions,
}

impl Default for CeilingOptions {
    fn default() -> Self {
        CeilingOptions {
            flood: Duration::from_secs(10),
            paths: vec![Path::ReadWrite, Path::Uring],
            tx_queue_len: Some(synflood::UTCP_TX_QUEUE_LEN),
            uring: UringOptions { depth: 64 },
        }
    }
}

/// What the reflector thread counted.
#[derive(Clone, Debug, Default)]
pub struct ReflectorCounts {
    pub read: u64,
    pub answered: u64,
    pub write_errors: u64,
    /// `read`/`write`/`poll` (read/write path) or `io_uring_enter` calls.
    pub syscalls: u64,
    /// CPU time of the reflector thread, ns.
    pub cpu_ns: u64,
    pub busy: Duration,
}

#[derive(Clone, Debug)]
pub struct CeilingResult {
    pub path: Path,
    pub flood: Duration,
    pub syns_sent: u64,
    /// CPU time of the flooder's thread, ns.
    pub flooder_cpu_ns: u64,
    pub counts: ReflectorCounts,
    pub tun_drops: u64,
    /// Most `iou-wrk-*` threads of this process seen at once during the run.
    pub iowq_threads_max: usize,
}

/// Run the flood against the reflector once per path.
pub fn run(opts: &CeilingOptions, progress: bool) -> io::Result<Vec<CeilingResult>> {
    if !crate::netns::is_root() || !std::path::Path::new("/dev/net/tun").exists() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "utcp bench --synflood-ceiling needs root and /dev/net/tun",
        ));
    }
    let mut out = Vec::new();
    for &path in &opts.paths {
        let r = run_one(path, opts)?;
        if progress {
            eprintln!("synflood-ceiling: {}", describe(&r));
        }
        out.push(r);
    }
    Ok(out)
}

fn run_one(path: Path, opts: &CeilingOptions) -> io::Result<CeilingResult> {
    let ns = NetNs::create(&NetNs::unique_name("utcpb-ceil"))?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    let stop = Arc::new(AtomicBool::new(false));
    let uring = opts.uring;
    let txq = opts.tx_queue_len;
    let reflector = {
        let stop = stop.clone();
        ns.spawn(move || -> io::Result<ReflectorCounts> {
            let queues = match open_tun(txq, if path == Path::ReadWrite2 { 2 } else { 1 }) {
                Ok(t) => {
                    let _ = ready_tx.send(Ok(()));
                    t
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            };
            let fd = queues[0].as_raw_fd();
            let t0 = thread_cpu_ns();
            let mut c = match path {
                Path::ReadWrite => reflect_rw(fd, &stop, true)?,
                Path::Sink => reflect_rw(fd, &stop, false)?,
                Path::Uring => reflect_uring(fd, &stop, uring)?,
                Path::UringMultishot => reflect_uring_multishot(fd, &stop)?,
                Path::ReadWrite2 => {
                    let fd2 = queues[1].as_raw_fd();
                    let stop2 = stop.clone();
                    let other = std::thread::spawn(move || {
                        let t0 = thread_cpu_ns();
                        reflect_rw(fd2, &stop2, true).map(|c| (c, thread_cpu_ns().saturating_sub(t0)))
                    });
                    let mut c = reflect_rw(fd, &stop, true)?;
                    let (c2, cpu2) = other.join().map_err(|_| io::Error::other("reflector panicked"))??;
                    c.read += c2.read;
                    c.answered += c2.answered;
                    c.write_errors += c2.write_errors;
                    c.syscalls += c2.syscalls;
                    c.cpu_ns = cpu2; // plus this thread's, below
                    c
                }
            };
            c.cpu_ns += thread_cpu_ns().saturating_sub(t0);
            drop(queues);
            Ok(c)
        })?
    };
    ready_rx.recv().map_err(|_| io::Error::other("reflector thread died"))??;
    let drops0 = tun_tx_dropped(&ns);
    let sent = Arc::new(AtomicU64::new(0));
    let flood_end = Instant::now() + opts.flood;
    let flooder = {
        let (stop, sent) = (stop.clone(), sent.clone());
        ns.spawn(move || -> io::Result<u64> {
            let t0 = thread_cpu_ns();
            synflood::flood(STACK_IP, flood_end, &stop, &sent)?;
            Ok(thread_cpu_ns().saturating_sub(t0))
        })?
    };
    let mut iowq_max = 0;
    while Instant::now() < flood_end {
        std::thread::sleep(Duration::from_millis(100));
        iowq_max = iowq_max.max(iowq_threads());
    }
    let flooder_cpu_ns = flooder.join().map_err(|_| io::Error::other("flooder panicked"))???;
    // Let the reflector drain the queue, then stop it.
    std::thread::sleep(Duration::from_millis(200));
    // Before the reflector closes the TUN (which deletes the device and its counters).
    let tun_drops = match (drops0, tun_tx_dropped(&ns)) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => return Err(io::Error::other("cannot read the TUN's drop counter")),
    };
    stop.store(true, Ordering::Relaxed);
    let counts = reflector.join().map_err(|_| io::Error::other("reflector panicked"))???;
    Ok(CeilingResult {
        path,
        flood: opts.flood,
        syns_sent: sent.load(Ordering::Relaxed),
        flooder_cpu_ns,
        counts,
        tun_drops,
        iowq_threads_max: iowq_max,
    })
}

/// The TUN as the runtime opens it (offload on), or with `queues` > 1 a multi-queue TUN
/// through tun-rs (offload on, the same 10-byte header). One descriptor per queue.
fn open_tun(tx_queue_len: Option<u32>, queues: usize) -> io::Result<Vec<Box<dyn AsRawFd + Send>>> {
    if queues == 1 {
        let cfg = TunConfig {
            name: "tun-ceil".into(),
            peer: KERNEL_IP,
            prefix: 24,
            mtu: 1500,
            peer6: None,
            multi_queue: false,
        };
        let tun = Tun::open_offload(&cfg)?;
        if let Some(n) = tx_queue_len {
            tun.set_tx_queue_len(n)?;
        }
        return Ok(vec![Box::new(tun)]);
    }
    let dev = tun_rs::DeviceBuilder::new()
        .name("tun-ceil")
        .layer(tun_rs::Layer::L3)
        .packet_information(false)
        .offload(true)
        .multi_queue(true)
        .mtu(1500)
        .ipv4(KERNEL_IP, 24, None)
        .enable(true)
        .build_sync()?;
    if let Some(n) = tx_queue_len {
        dev.set_tx_queue_len(n)?;
    }
    let mut out: Vec<Box<dyn AsRawFd + Send>> = Vec::new();
    for _ in 1..queues {
        let q = dev.try_clone()?;
        q.set_nonblocking(true)?;
        out.push(Box::new(q));
    }
    dev.set_nonblocking(true)?;
    out.insert(0, Box::new(dev));
    Ok(out)
}

/// TX `dropped` of the TUN devices in `ns`: packets the kernel could not queue for us.
fn tun_tx_dropped(ns: &NetNs) -> Option<u64> {
    let out = ns.exec("ip", &["-j", "-s", "link", "show", "type", "tun"]).ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    Some(v.as_array()?.iter().filter_map(|d| d["stats64"]["tx"]["dropped"].as_u64()).sum())
}

/// Threads of this process named `iou-wrk-*` (io_uring's io-wq workers).
fn iowq_threads() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0 };
    dir.filter_map(|e| e.ok())
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.starts_with("iou-wrk")))
        .count()
}

/// Build the answer to `pkt` (an IPv4 packet) in `out` (a zeroed vnet header + 40 bytes):
/// a SYN-ACK-sized segment from us to the packet's source. `None` if it is not IPv4/TCP.
fn answer(pkt: &[u8], out: &mut [u8; VNET + ANSWER]) -> Option<()> {
    let ihl = ((*pkt.first()? & 0x0f) as usize) * 4;
    if pkt[0] >> 4 != 4 || pkt.len() < ihl + 20 || pkt[9] != 6 {
        return None;
    }
    let tcp = &pkt[ihl..];
    let o = &mut out[VNET..];
    o[..20].copy_from_slice(&[0x45, 0, 0, ANSWER as u8, 0, 0, 0x40, 0, 64, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    o[12..16].copy_from_slice(&STACK_IP.octets());
    o[16..20].copy_from_slice(&pkt[12..16]);
    let csum = ip_checksum(&o[..20]);
    o[10..12].copy_from_slice(&csum.to_be_bytes());
    o[20..22].copy_from_slice(&tcp[2..4]);
    o[22..24].copy_from_slice(&tcp[0..2]);
    o[24..28].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    let ack = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]).wrapping_add(1);
    o[28..32].copy_from_slice(&ack.to_be_bytes());
    o[32] = 5 << 4;
    o[33] = 0x12; // SYN|ACK
    o[34..36].copy_from_slice(&65535u16.to_be_bytes());
    Some(())
}

/// Size of the `virtio_net_hdr` before each packet (offload on).
const VNET: usize = utcp::device::vnet::VNET_HDR_LEN;

fn ip_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]) as u32).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn raw_read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

fn raw_write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// Today's device path without the engine: a batch of reads, then one write per answer
/// (none with `reply` false: the read-only sink).
fn reflect_rw(fd: RawFd, stop: &AtomicBool, reply: bool) -> io::Result<ReflectorCounts> {
    let mut c = ReflectorCounts::default();
    let mut bufs = vec![[0u8; BUF]; RW_BATCH];
    let mut lens = [0usize; RW_BATCH];
    let mut ans = [0u8; VNET + ANSWER];
    let t0 = Instant::now();
    let mut idle = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let mut n = 0;
        while n < RW_BATCH {
            c.syscalls += 1;
            match raw_read(fd, &mut bufs[n]) {
                Ok(len) => {
                    lens[n] = len;
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        c.read += n as u64;
        for (b, &len) in bufs.iter().zip(&lens[..n]) {
            if reply && len > VNET && answer(&b[VNET..len], &mut ans).is_some() {
                c.syscalls += 1;
                match raw_write(fd, &ans) {
                    Ok(_) => c.answered += 1,
                    Err(_) => c.write_errors += 1,
                }
            }
        }
        if n == 0 {
            let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            let w = Instant::now();
            c.syscalls += 1;
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, 100) };
            idle += w.elapsed();
        }
    }
    c.busy = t0.elapsed().saturating_sub(idle);
    Ok(c)
}

/// `user_data` of a write request (the low bits: its buffer); of the cancel request.
const WRITE: u64 = 1 << 32;
const CANCEL: u64 = u64::MAX;

/// Push one request, submitting the queue first when it is full.
///
/// # Safety
/// The memory `e` points at must stay valid and untouched until its completion is reaped
/// (or the ring is gone and [`cancel_and_reap`] said nothing is left in flight).
unsafe fn push(
    ring: &mut io_uring::IoUring,
    e: &io_uring::squeue::Entry,
    c: &mut ReflectorCounts,
) -> io::Result<()> {
    // SAFETY: the caller's promise.
    while unsafe { ring.submission().push(e) }.is_err() {
        c.syscalls += 1;
        ring.submit()?;
    }
    Ok(())
}

/// One `io_uring_enter`: submit what is queued, wait up to 100 ms for a completion.
fn enter(ring: &mut io_uring::IoUring, c: &mut ReflectorCounts) -> io::Result<()> {
    let ts = io_uring::types::Timespec::new().nsec(100_000_000);
    let args = io_uring::types::SubmitArgs::new().timespec(&ts);
    c.syscalls += 1;
    match ring.submitter().submit_with_args(1, &args) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EBUSY | libc::EINTR)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Cancel every request and reap completions until none of the `pending` ones is left
/// (`settles` says whether a completion ends one), for at most ~5 s. Returns whether all
/// settled: only then may the memory they point at be freed.
fn cancel_and_reap(
    ring: &mut io_uring::IoUring,
    mut pending: usize,
    mut settles: impl FnMut(u64, u32) -> bool,
) -> bool {
    use io_uring::{opcode, types};
    let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any()).build().user_data(CANCEL);
    let mut c = ReflectorCounts::default();
    // SAFETY: a cancel request points at no memory.
    let _ = unsafe { push(ring, &cancel, &mut c) };
    for _ in 0..50 {
        if pending == 0 {
            break;
        }
        let _ = enter(ring, &mut c);
        for q in ring.completion() {
            if q.user_data() != CANCEL && settles(q.user_data(), q.flags()) {
                pending = pending.saturating_sub(1);
            }
        }
    }
    pending == 0
}

/// The answers in flight as io_uring write requests, from a pool of buffers.
struct Writer {
    bufs: Vec<[u8; VNET + ANSWER]>,
    free: Vec<usize>,
    in_flight: usize,
}

impl Writer {
    fn new(n: usize) -> Writer {
        Writer { bufs: vec![[0u8; VNET + ANSWER]; n], free: (0..n).collect(), in_flight: 0 }
    }

    /// Queue the answer to `pkt` (an IPv4 packet); nothing if it is not TCP or every
    /// buffer is in flight. The `Writer` must outlive the ring (or be leaked).
    fn queue(
        &mut self,
        ring: &mut io_uring::IoUring,
        fd: io_uring::types::Fd,
        pkt: &[u8],
        c: &mut ReflectorCounts,
    ) -> io::Result<()> {
        let Some(w) = self.free.pop() else { return Ok(()) };
        if answer(pkt, &mut self.bufs[w]).is_none() {
            self.free.push(w);
            return Ok(());
        }
        let e = io_uring::opcode::Write::new(fd, self.bufs[w].as_ptr(), (VNET + ANSWER) as u32)
            .build()
            .user_data(WRITE | w as u64);
        // SAFETY: `bufs[w]` is off the free list until its completion (`complete`).
        unsafe { push(ring, &e, c) }.inspect_err(|_| self.free.push(w))?;
        self.in_flight += 1;
        Ok(())
    }

    /// A write request completed.
    fn complete(&mut self, ud: u64, res: i32, c: &mut ReflectorCounts) {
        self.in_flight -= 1;
        self.free.push((ud & 0xffff_ffff) as usize);
        if res > 0 {
            c.answered += 1;
        } else {
            c.write_errors += 1;
        }
    }
}

/// Queue the read of TUN packet into `rbufs[i]`.
fn read_into(
    ring: &mut io_uring::IoUring,
    fd: io_uring::types::Fd,
    rbufs: &mut [[u8; BUF]],
    i: usize,
    c: &mut ReflectorCounts,
) -> io::Result<()> {
    let e = io_uring::opcode::Read::new(fd, rbufs[i].as_mut_ptr(), BUF as u32).build().user_data(i as u64);
    // SAFETY: `rbufs[i]` is not touched again until this read completes; the caller leaks
    // `rbufs` unless `cancel_and_reap` saw every read settle.
    unsafe { push(ring, &e, c) }
}

/// io_uring: `depth` reads in flight; each completed read queues its answer as a write
/// and re-arms itself; one `io_uring_enter` submits and reaps a whole batch.
fn reflect_uring(tun_fd: RawFd, stop: &AtomicBool, o: UringOptions) -> io::Result<ReflectorCounts> {
    use io_uring::{IoUring, types};
    let depth = o.depth.clamp(1, 1024) as usize;
    let entries = (depth * 4).next_power_of_two() as u32;
    // DEFER_TASKRUN: completions (and poll-driven retries) run in our io_uring_enter, not
    // by interrupting us; fall back to a plain ring on older kernels.
    let mut ring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(entries)
        .or_else(|_| IoUring::new(entries))?;
    let fd = types::Fd(tun_fd);
    let mut rbufs = vec![[0u8; BUF]; depth];
    // At most one answer per read in flight, times two for writes reaped a batch later.
    let mut writer = Writer::new(depth * 2);
    let mut c = ReflectorCounts::default();
    let mut reads = 0usize;
    let mut err = None;
    for i in 0..depth {
        match read_into(&mut ring, fd, &mut rbufs, i, &mut c) {
            Ok(()) => reads += 1,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let t0 = Instant::now();
    let mut done = Vec::with_capacity(entries as usize * 2);
    while err.is_none() && !stop.load(Ordering::Relaxed) {
        err = enter(&mut ring, &mut c).err();
        done.clear();
        done.extend(ring.completion().map(|q| (q.user_data(), q.result())));
        for &(ud, res) in &done {
            if ud & WRITE != 0 {
                writer.complete(ud, res, &mut c);
                continue;
            }
            reads -= 1;
            let i = ud as usize;
            let mut r = Ok(());
            if res > 0 {
                c.read += 1;
                let len = (res as usize).min(BUF);
                if len > VNET {
                    r = writer.queue(&mut ring, fd, &rbufs[i][VNET..len], &mut c);
                }
            } else if res != -libc::EAGAIN && res != -libc::EINTR {
                r = Err(io::Error::from_raw_os_error(-res));
            }
            // The answer is already copied into its own buffer: re-arm the read.
            let r = r.and_then(|()| read_into(&mut ring, fd, &mut rbufs, i, &mut c).map(|()| reads += 1));
            if let Err(e) = r {
                err.get_or_insert(e);
            }
        }
    }
    c.busy = t0.elapsed();
    let settled = cancel_and_reap(&mut ring, reads + writer.in_flight, |_, _| true);
    drop(ring);
    if !settled {
        // Never free memory the kernel may still write to: leak it instead.
        std::mem::forget(rbufs);
        std::mem::forget(writer);
    }
    err.map_or(Ok(c), Err)
}

/// Buffers in the provided-buffer ring of the multishot path.
const MS_BUFS: u16 = 256;

/// A registered ring of provided buffers (`IORING_REGISTER_PBUF_RING`, group 0): the
/// kernel takes a buffer per packet; [`BufRing::give`] hands one back.
struct BufRing {
    base: *mut io_uring::types::BufRingEntry,
    layout: std::alloc::Layout,
    bufs: Vec<[u8; BUF]>,
    tail: u16,
}

impl BufRing {
    fn register(ring: &io_uring::IoUring) -> io::Result<BufRing> {
        let n = MS_BUFS as usize;
        // `n` 16-byte entries, page-aligned; the tail lives in entry 0's `resv`.
        let layout = std::alloc::Layout::from_size_align(n * 16, 4096).map_err(io::Error::other)?;
        // SAFETY: a non-zero-sized layout; freed in `free` (or leaked).
        let base = unsafe { std::alloc::alloc_zeroed(layout) } as *mut io_uring::types::BufRingEntry;
        if base.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut r = BufRing { base, layout, bufs: vec![[0u8; BUF]; n], tail: 0 };
        // SAFETY: `base` points at `n` zeroed entries that outlive the registration (the
        // ring is dropped before `free`).
        if let Err(e) = unsafe { ring.submitter().register_buf_ring_with_flags(base as u64, MS_BUFS, 0, 0) } {
            // SAFETY: allocated just above with `layout`; the kernel never saw it.
            unsafe { std::alloc::dealloc(base.cast(), layout) };
            return Err(e);
        }
        for bid in 0..MS_BUFS {
            r.give(bid);
        }
        r.publish();
        Ok(r)
    }

    /// Put buffer `bid` back at the tail (seen by the kernel after [`BufRing::publish`]).
    fn give(&mut self, bid: u16) {
        // SAFETY: the index is masked into the ring (`MS_BUFS` is a power of two); the
        // kernel only reads entries before the published tail.
        let e = unsafe { &mut *self.base.add(self.tail as usize & (MS_BUFS as usize - 1)) };
        e.set_addr(self.bufs[bid as usize].as_ptr() as u64);
        e.set_len(BUF as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: entry 0 is initialised; its `resv` field is the ring's u16 tail, which
        // the kernel reads concurrently: an atomic release store.
        let tail = unsafe { &*(io_uring::types::BufRingEntry::tail(self.base) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    /// Free the ring's memory once the io_uring is gone (`settled`), else leak it.
    fn free(self, settled: bool) {
        if settled {
            // SAFETY: allocated in `register` with this layout; the registration died
            // with the ring.
            unsafe { std::alloc::dealloc(self.base.cast(), self.layout) };
        } else {
            std::mem::forget(self.bufs);
        }
    }
}

/// io_uring with one multishot read: the kernel picks a buffer from a registered ring per
/// packet, we hand it back after answering; writes as in [`reflect_uring`].
fn reflect_uring_multishot(tun_fd: RawFd, stop: &AtomicBool) -> io::Result<ReflectorCounts> {
    use io_uring::{IoUring, cqueue, opcode, types};
    let mut ring: IoUring = IoUring::builder().setup_single_issuer().setup_defer_taskrun().build(1024)?;
    let fd = types::Fd(tun_fd);
    let mut bufs = BufRing::register(&ring)?;
    let mut writer = Writer::new(512);
    let mut c = ReflectorCounts::default();
    let read = opcode::ReadMulti::new(fd, 0, 0).build().user_data(1);
    // SAFETY: the multishot read writes only into ring buffers (see `BufRing::free`).
    let mut err = unsafe { push(&mut ring, &read, &mut c) }.err();
    let mut armed = err.is_none();
    let t0 = Instant::now();
    let mut done: Vec<(u64, i32, u32)> = Vec::with_capacity(2048);
    while err.is_none() && !stop.load(Ordering::Relaxed) {
        err = enter(&mut ring, &mut c).err();
        done.clear();
        done.extend(ring.completion().map(|q| (q.user_data(), q.result(), q.flags())));
        for &(ud, res, flags) in &done {
            if ud & WRITE != 0 {
                writer.complete(ud, res, &mut c);
                continue;
            }
            armed = cqueue::more(flags);
            let Some(bid) = cqueue::buffer_select(flags) else {
                if res < 0 && res != -libc::ENOBUFS && res != -libc::EAGAIN {
                    err.get_or_insert(io::Error::from_raw_os_error(-res));
                }
                continue;
            };
            c.read += 1;
            let len = (res.max(0) as usize).min(BUF);
            if len > VNET
                && let Err(e) = writer.queue(&mut ring, fd, &bufs.bufs[bid as usize][VNET..len], &mut c)
            {
                err.get_or_insert(e);
            }
            bufs.give(bid);
        }
        bufs.publish();
        if !armed && err.is_none() {
            // SAFETY: as above.
            err = unsafe { push(&mut ring, &read, &mut c) }.err();
            armed = err.is_none();
        }
    }
    c.busy = t0.elapsed();
    let pending = armed as usize + writer.in_flight;
    let settled = cancel_and_reap(&mut ring, pending, |ud, flags| ud & WRITE != 0 || !cqueue::more(flags));
    drop(ring);
    bufs.free(settled);
    if !settled {
        std::mem::forget(writer);
    }
    err.map_or(Ok(c), Err)
}

fn per(ns: u64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { ns as f64 / n as f64 }
}

/// What one path's result says, per second and per packet (shared by both reports).
struct Rates {
    offered: f64,
    read: f64,
    answered: f64,
    drop_pct: f64,
    reflector_ns: f64,
    flooder_ns: f64,
    syscalls: f64,
}

impl Rates {
    fn of(r: &CeilingResult) -> Rates {
        let s = r.flood.as_secs_f64();
        Rates {
            offered: r.syns_sent as f64 / s,
            read: r.counts.read as f64 / s,
            answered: r.counts.answered as f64 / s,
            drop_pct: 100.0 * r.tun_drops as f64 / r.syns_sent.max(1) as f64,
            reflector_ns: per(r.counts.cpu_ns, r.counts.read),
            flooder_ns: per(r.flooder_cpu_ns, r.syns_sent),
            syscalls: r.counts.syscalls as f64 / r.counts.read.max(1) as f64,
        }
    }
}

/// One line per path.
pub fn describe(r: &CeilingResult) -> String {
    let x = Rates::of(r);
    format!(
        "{:<10} offered {:>7.0}/s  read {:>7.0}/s  answered {:>7.0}/s  TUN drops {} ({:.1}%)  reflector {:.0} ns CPU/pkt  flooder {:.0} ns CPU/SYN  syscalls/pkt {:.3}  io-wq threads max {}",
        r.path.name(),
        x.offered,
        x.read,
        x.answered,
        r.tun_drops,
        x.drop_pct,
        x.reflector_ns,
        x.flooder_ns,
        x.syscalls,
        r.iowq_threads_max,
    )
}

/// A Markdown table (for docs/synflood.md).
pub fn table(results: &[CeilingResult], opts: &CeilingOptions) -> String {
    let mut t = format!(
        "synflood-ceiling: {} s random-source SYN flood from {SPOOF_NET}/16 into a TUN (offload on, txqueuelen {}) answered by a null reflector; io_uring depth {}\n\n",
        opts.flood.as_secs(),
        opts.tx_queue_len.map_or("500".into(), |n| n.to_string()),
        opts.uring.depth,
    );
    t.push_str("| path | SYNs offered/s | read/s | answered/s | TUN drops | reflector CPU ns/pkt | flooder CPU ns/SYN | syscalls/pkt | io-wq threads |\n");
    t.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        let x = Rates::of(r);
        t.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0} | {} ({:.1}%) | {:.0} | {:.0} | {:.3} | {} |\n",
            r.path.name(),
            x.offered,
            x.read,
            x.answered,
            r.tun_drops,
            x.drop_pct,
            x.reflector_ns,
            x.flooder_ns,
            x.syscalls,
            r.iowq_threads_max,
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_swaps_ports_and_addresses_and_acks_the_syn() {
        let mut syn = [0u8; 40];
        syn[0] = 0x45;
        syn[9] = 6;
        syn[12..16].copy_from_slice(&[10, 99, 1, 2]);
        syn[16..20].copy_from_slice(&STACK_IP.octets());
        syn[20..22].copy_from_slice(&4000u16.to_be_bytes());
        syn[22..24].copy_from_slice(&80u16.to_be_bytes());
        syn[24..28].copy_from_slice(&7u32.to_be_bytes());
        let mut out = [0u8; VNET + ANSWER];
        assert!(answer(&syn, &mut out).is_some());
        let o = &out[VNET..];
        assert_eq!(&o[16..20], &[10, 99, 1, 2]);
        assert_eq!(u16::from_be_bytes([o[20], o[21]]), 80);
        assert_eq!(u16::from_be_bytes([o[22], o[23]]), 4000);
        assert_eq!(u32::from_be_bytes([o[28], o[29], o[30], o[31]]), 8);
        assert_eq!(ip_checksum(&o[..20]), 0, "a valid IPv4 header sums to zero");
        syn[9] = 17;
        assert!(answer(&syn, &mut out).is_none());
    }
}
