//! `utcp bench --engine --systems smoltcp`: the same in-memory workload for smoltcp 0.14.
//!
//! Two `Interface`s (medium IP, MTU 1500) over an in-memory wire, one TCP socket each, moved
//! exactly as [`super::Pair`] moves two utcp Stacks: A transmits one packet, B takes it,
//! everything B then transmits goes straight back to A, until neither side transmits. Time is
//! virtual (one microsecond per delivery round, a jump to the earliest `poll_at` when idle).
//!
//! What is kept equal to the utcp run (see docs/engine-cost.md):
//! - MTU 1500 and MSS 1460; both ends send the timestamp option (smoltcp's `tsval_generator`
//!   reads the virtual millisecond clock), so a full segment carries 1448 payload bytes in
//!   both; window scaling (from the buffer size) and SACK-permitted in the SYNs of both;
//! - 256 KiB send and receive buffers (utcp's default);
//! - checksums computed on transmit and verified on receive, IPv4 header and TCP
//!   (smoltcp's default `ChecksumCapabilities`);
//! - Reno congestion control (utcp: NewReno), delayed ACK as shipped (utcp 40 ms and every
//!   second full segment; smoltcp 10 ms and at once past one MSS unacknowledged), Nagle on;
//! - the application sends 44 segments' worth per call while the buffer takes it and reads
//!   into a 64 KiB buffer until it is empty, after every delivery round.
//!
//! The wire keeps every packet buffer (MTU bytes, allocated once) in a free list, so the
//! steady state allocates nothing and no buffer is cleared between packets.

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

/// Link MTU of both interfaces (as utcp's `Config::mtu`).
pub const MTU: usize = 1500;
/// Send and receive buffer of each socket (as utcp's default `send_buffer`/`recv_buffer`).
pub const BUFFER: usize = 256 * 1024;
/// Payload of a full segment: MSS 1460 less the 12 bytes of the timestamp option.
pub const PAYLOAD: usize = 1448;
/// Most packets one direction of [`SmolPair::step`] moves (as [`super::STEP_LIMIT`]).
const STEP_LIMIT: usize = super::STEP_LIMIT;

/// The virtual clock in milliseconds, read by the timestamp generator (a `fn` pointer).
static TSVAL_MS: AtomicU32 = AtomicU32::new(0);

fn tsval() -> u32 {
    TSVAL_MS.load(Ordering::Relaxed)
}

/// One direction of the wire: packets in flight and the free buffers.
#[derive(Default)]
pub struct Wire {
    queue: VecDeque<(Vec<u8>, usize)>,
    free: Vec<Vec<u8>>,
    /// Packets that went through this direction.
    pub packets: u64,
}

impl Wire {
    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// A's or B's view of the two directions, made for one poll.
struct Dev<'w> {
    rx: &'w mut Wire,
    tx: &'w mut Wire,
}

struct Rx<'w> {
    buf: Vec<u8>,
    len: usize,
    free: &'w mut Vec<Vec<u8>>,
}

struct Tx<'w> {
    wire: &'w mut Wire,
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.buf[..self.len]);
        self.free.push(self.buf);
        r
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = self.wire.free.pop().unwrap_or_else(|| vec![0u8; MTU]);
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let r = f(&mut buf[..len]);
        self.wire.queue.push_back((buf, len));
        self.wire.packets += 1;
        r
    }
}

impl Device for Dev<'_> {
    type RxToken<'a>
        = Rx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let (buf, len) = self.rx.queue.pop_front()?;
        Some((Rx { buf, len, free: &mut self.rx.free }, Tx { wire: self.tx }))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx { wire: self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        // Default checksum capabilities: compute on transmit, verify on receive.
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = MTU;
        c
    }
}

/// One end: an interface, its socket set and its one TCP socket.
pub struct End {
    pub iface: Interface,
    pub set: SocketSet<'static>,
    pub sock: SocketHandle,
}

impl End {
    fn new(ip: Ipv4Address, rx: &mut Wire, tx: &mut Wire) -> End {
        let mut dev = Dev { rx, tx };
        let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut dev, Instant::from_micros(0));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(ip), 24));
        });
        let mut set = SocketSet::new(Vec::new());
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; BUFFER]),
            tcp::SocketBuffer::new(vec![0u8; BUFFER]),
        );
        s.set_congestion_control(tcp::CongestionControl::Reno);
        s.set_tsval_generator(Some(tsval));
        let sock = set.add(s);
        End { iface, set, sock }
    }

    pub fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.set.get_mut::<tcp::Socket>(self.sock)
    }

    fn egress(&mut self, now: Instant, rx: &mut Wire, tx: &mut Wire) {
        let mut dev = Dev { rx, tx };
        self.iface.poll_egress(now, &mut dev, &mut self.set);
    }

    fn ingress_one(&mut self, now: Instant, rx: &mut Wire, tx: &mut Wire) {
        let mut dev = Dev { rx, tx };
        self.iface.poll_ingress_single(now, &mut dev, &mut self.set);
    }
}

/// Two smoltcp ends on an in-memory wire and the virtual time they share.
pub struct SmolPair {
    pub a: End,
    pub b: End,
    pub ab: Wire,
    pub ba: Wire,
    /// Virtual time in microseconds.
    pub now: u64,
    pub overflowed: bool,
}

impl SmolPair {
    pub fn new() -> SmolPair {
        let (mut ab, mut ba) = (Wire::default(), Wire::default());
        let a = End::new(super::A_IP, &mut ba, &mut ab);
        let b = End::new(super::B_IP, &mut ab, &mut ba);
        SmolPair { a, b, ab, ba, now: 1_000_000, overflowed: false }
    }

    fn instant(&self) -> Instant {
        TSVAL_MS.store((self.now / 1000) as u32, Ordering::Relaxed);
        Instant::from_micros(self.now as i64)
    }

    /// One delivery round, as [`super::Pair::step`]: A transmits one packet, B takes it;
    /// every packet B then transmits goes to A at once; until neither transmits.
    pub fn step(&mut self) -> usize {
        let now = self.instant();
        let mut moved = 0;
        loop {
            let mut round = 0;
            self.a.egress(now, &mut self.ba, &mut self.ab);
            while !self.ab.is_empty() {
                self.b.ingress_one(now, &mut self.ab, &mut self.ba);
                round += 1;
            }
            while moved + round < STEP_LIMIT {
                self.b.egress(now, &mut self.ab, &mut self.ba);
                if self.ba.is_empty() {
                    break;
                }
                while !self.ba.is_empty() {
                    self.a.ingress_one(now, &mut self.ba, &mut self.ab);
                    round += 1;
                }
            }
            moved += round;
            if round == 0 {
                break;
            }
            if moved >= STEP_LIMIT {
                self.overflowed = true;
                break;
            }
        }
        moved
    }

    /// One delivery round; when nothing moved, jump to the earliest `poll_at`. Returns false
    /// when neither end has anything scheduled.
    pub fn tick(&mut self) -> bool {
        let moved = self.step();
        self.now += 1;
        if moved > 0 {
            return true;
        }
        let now = self.instant();
        let next = match (self.a.iface.poll_at(now, &self.a.set), self.b.iface.poll_at(now, &self.b.set)) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        match next {
            Some(t) => {
                self.now = self.now.max(t.total_micros().max(0) as u64);
                true
            }
            None => false,
        }
    }

    /// Listen on B, connect from A (local port `a_port`) and run the handshake.
    pub fn establish(&mut self, a_port: u16) -> io::Result<()> {
        self.b.socket().listen(super::B_PORT).map_err(|e| io::Error::other(format!("listen: {e}")))?;
        let cx = self.a.iface.context();
        let remote = (IpAddress::Ipv4(super::B_IP), super::B_PORT);
        self.a
            .set
            .get_mut::<tcp::Socket>(self.a.sock)
            .connect(cx, remote, a_port)
            .map_err(|e| io::Error::other(format!("connect: {e}")))?;
        for _ in 0..64 {
            self.step();
            self.now += 1;
            if self.a.socket().state() == tcp::State::Established
                && self.b.socket().state() == tcp::State::Established
            {
                return Ok(());
            }
        }
        Err(io::Error::new(io::ErrorKind::TimedOut, "in-memory smoltcp handshake did not complete"))
    }
}

impl Default for SmolPair {
    fn default() -> Self {
        SmolPair::new()
    }
}

/// The measured loop: A's application sends `total` bytes, B's reads them all. Not inlined,
/// so `valgrind --tool=callgrind --toggle-collect='*smoltcp_transfer*'` counts exactly it.
#[inline(never)]
pub fn smoltcp_transfer(pair: &mut SmolPair, total: u64, data: &[u8], sink: &mut [u8]) -> io::Result<()> {
    let (mut sent, mut received) = (0u64, 0u64);
    let max_rounds = super::max_rounds(total);
    let mut rounds = 0u64;
    while received < total {
        rounds += 1;
        if rounds > max_rounds {
            return Err(io::Error::other(format!("smoltcp transfer stalled at {received} of {total} bytes")));
        }
        let (sent_before, received_before) = (sent, received);
        while sent < total {
            let n = ((total - sent) as usize).min(data.len());
            match pair.a.socket().send_slice(&data[..n]) {
                Ok(0) => break,
                Ok(k) => sent += k as u64,
                Err(e) => return Err(io::Error::other(format!("send: {e}"))),
            }
        }
        let progressed = pair.tick();
        if pair.overflowed {
            return Err(io::Error::other("a smoltcp end kept transmitting without input"));
        }
        let s = pair.b.socket();
        while s.can_recv() {
            match s.recv_slice(sink) {
                Ok(0) => break,
                Ok(k) => received += k as u64,
                Err(e) => return Err(io::Error::other(format!("recv: {e}"))),
            }
        }
        if !progressed && sent == sent_before && received == received_before {
            return Err(io::Error::other(format!("smoltcp transfer idle at {received} of {total} bytes")));
        }
    }
    Ok(())
}

/// Transfer `segments` full segments A→B between two smoltcp interfaces.
pub fn run(segments: u64) -> io::Result<super::EngineRun> {
    let mut pair = SmolPair::new();
    pair.establish(40_000)?;
    let total = segments * PAYLOAD as u64;
    let data = vec![0xa5u8; 44 * PAYLOAD];
    let mut sink = vec![0u8; 64 * 1024];
    let (p_ab, p_ba, t0) = (pair.ab.packets, pair.ba.packets, pair.now);
    let start = std::time::Instant::now();
    smoltcp_transfer(&mut pair, total, &data, &mut sink)?;
    let elapsed = start.elapsed();
    Ok(super::EngineRun {
        system: "smoltcp",
        segments,
        bytes: total,
        payload: PAYLOAD,
        packets_a_to_b: pair.ab.packets - p_ab,
        packets_b_to_a: pair.ba.packets - p_ba,
        virtual_time: std::time::Duration::from_micros(pair.now - t0),
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoltcp_run_delivers_every_segment_with_timestamps() {
        let r = run(500).expect("in-memory smoltcp run");
        assert_eq!((r.segments, r.bytes, r.payload), (500, 500 * 1448, 1448));
        // Full segments (plus the handshake ACK and at most a few runts where the send ring
        // wraps), about one ACK per two segments back.
        assert!((500..=520).contains(&r.packets_a_to_b), "{r:?}");
        assert!(r.packets_b_to_a >= 200 && r.packets_b_to_a <= 520, "{r:?}");
    }

    #[test]
    fn segments_carry_timestamps_and_full_payload() {
        let mut pair = SmolPair::new();
        pair.establish(40_001).expect("handshake");
        pair.a.socket().send_slice(&[7u8; 4 * PAYLOAD]).expect("send");
        let now = pair.instant();
        pair.a.egress(now, &mut pair.ba, &mut pair.ab);
        let (pkt, len) = pair.ab.queue.pop_front().expect("a data segment");
        assert_eq!(len, MTU, "a full segment fills the MTU");
        let data_off = usize::from(pkt[20 + 12] >> 4) * 4;
        assert_eq!(data_off, 32, "TCP header with the 12-byte timestamp option");
        assert_eq!(len - 20 - data_off, PAYLOAD);
    }
}
