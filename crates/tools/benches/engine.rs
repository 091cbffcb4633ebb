//! Per-segment cost of the engines on an in-memory path: utcp's `Stack` beside smoltcp 0.14's
//! `Interface` joined to a second one by an in-memory device.
//!
//! - `data_in_ack_out`: one full-sized data segment arrives at the receiver, which emits its
//!   ACK (every second segment, both stacks' default) and the application reads the payload.
//! - `ack_in`: one pure ACK (for one full-sized segment) arrives at the sender.
//!
//! Inputs are produced outside the timed region by the peer stack (divan `with_inputs`, in
//! order), so each timed call is exactly the receiving side's work.
//! Run: `cargo bench --bench engine`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

fn main() {
    divan::main();
}

/// Inputs per sample: both senders must be allowed this many segments in flight.
const SAMPLE_SIZE: u32 = 16;
const SAMPLE_COUNT: u32 = 1000;
/// Segments exchanged before measuring.
const WARMUP_SEGMENTS: usize = 256;

mod utcp_engine {
    use super::*;
    use std::io;
    use std::net::SocketAddr;
    use std::time::Duration;
    use utcp::engine::{Config, ConnId};
    use utcp_tools::bench::engine::{B_IP, B_PORT, Pair};

    pub struct Conn {
        pub pair: Pair,
        pub ca: ConnId,
        pub cb: ConnId,
        pub payload: usize,
        pub data: Vec<u8>,
        pub sink: Vec<u8>,
        pub out: Vec<u8>,
        /// ACKs B emitted in the timed region, delivered to A by the input generator.
        pub acks: Vec<([u8; 128], usize)>,
    }

    /// An established connection; the sender may have many segments in flight.
    pub fn conn(ack_each_segment: bool) -> Conn {
        let ca_cfg =
            Config::default().with_initial_window_segments(Some(4 * SAMPLE_SIZE)).with_send_buffer(4 << 20);
        let cb_cfg = if ack_each_segment {
            Config::default().with_delayed_ack(None).with_ack_every(1)
        } else {
            Config::default()
        };
        let payload = utcp_tools::bench::engine::segment_payload(&ca_cfg);
        let mut pair = Pair::new(ca_cfg, cb_cfg);
        let l = pair.b.listen(SocketAddr::from((B_IP, B_PORT)), 4).expect("listen");
        let (ca, cb) = pair.establish(l, 40_000).expect("in-memory handshake");
        let mut c = Conn {
            pair,
            ca,
            cb,
            payload,
            data: vec![0x5a; payload],
            sink: vec![0; 64 * 1024],
            out: vec![0; 2048],
            acks: Vec::with_capacity(4 * SAMPLE_SIZE as usize),
        };
        // Warm up: the SYN-ACK's window is unscaled (RFC 7323 §2.2); later ACKs open it.
        for _ in 0..WARMUP_SEGMENTS {
            let pkt = c.next_data_segment();
            c.receive(&pkt);
        }
        c
    }

    impl Conn {
        /// A sends one full segment; returns it (the data packet) without delivering it.
        pub fn next_data_segment(&mut self) -> Vec<u8> {
            let p = &mut self.pair;
            p.now += Duration::from_micros(1);
            for (ack, n) in self.acks.drain(..) {
                p.a.handle_packet(p.now, &ack[..n]);
            }
            p.drain_events();
            match p.a.send(self.ca, &self.data) {
                Ok(n) if n == self.data.len() => {}
                r => panic!("sender refused a segment: {r:?}"),
            }
            let n = p.a.poll_transmit(p.now, &mut self.out).expect("a full segment is sendable");
            self.out[..n].to_vec()
        }

        /// Timed: B takes the segment, emits what it emits, the application reads.
        pub fn receive(&mut self, pkt: &[u8]) {
            let p = &mut self.pair;
            p.b.handle_packet(p.now, pkt);
            let mut buf = [0u8; 128];
            while let Some(n) = p.b.poll_transmit(p.now, &mut buf) {
                self.acks.push((buf, n));
            }
            loop {
                match p.b.recv(self.cb, &mut self.sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
        }

        /// A segment goes A→B, B acknowledges it at once; returns the ACK.
        pub fn next_ack(&mut self) -> Vec<u8> {
            let pkt = self.next_data_segment();
            let p = &mut self.pair;
            p.b.handle_packet(p.now, &pkt);
            let n = p.b.poll_transmit(p.now, &mut self.out).expect("an ACK");
            let ack = self.out[..n].to_vec();
            while p.b.poll_transmit(p.now, &mut self.out).is_some() {}
            while let Ok(k) = p.b.recv(self.cb, &mut self.sink) {
                if k == 0 {
                    break;
                }
            }
            p.drain_events();
            ack
        }
    }
}

mod smoltcp_engine {
    use super::*;
    use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
    use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
    use smoltcp::socket::tcp;
    use smoltcp::time::Instant;
    use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address};

    /// One direction of the in-memory link, with a pool of packet buffers.
    #[derive(Default)]
    pub struct Queue {
        pub packets: VecDeque<Vec<u8>>,
        free: Vec<Vec<u8>>,
    }

    pub struct MemDevice {
        rx: Rc<RefCell<Queue>>,
        tx: Rc<RefCell<Queue>>,
    }

    pub struct Rx {
        buf: Vec<u8>,
        pool: Rc<RefCell<Queue>>,
    }
    pub struct Tx {
        q: Rc<RefCell<Queue>>,
    }

    impl phy::RxToken for Rx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            let r = f(&self.buf);
            self.pool.borrow_mut().free.push(self.buf);
            r
        }
    }

    impl phy::TxToken for Tx {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut q = self.q.borrow_mut();
            let mut buf = q.free.pop().unwrap_or_default();
            buf.resize(len, 0);
            let r = f(&mut buf);
            q.packets.push_back(buf);
            r
        }
    }

    impl Device for MemDevice {
        type RxToken<'a> = Rx;
        type TxToken<'a> = Tx;
        fn receive(&mut self, _: Instant) -> Option<(Rx, Tx)> {
            let buf = self.rx.borrow_mut().packets.pop_front()?;
            Some((Rx { buf, pool: self.rx.clone() }, Tx { q: self.tx.clone() }))
        }
        fn transmit(&mut self, _: Instant) -> Option<Tx> {
            Some(Tx { q: self.tx.clone() })
        }
        fn capabilities(&self) -> DeviceCapabilities {
            let mut c = DeviceCapabilities::default();
            c.medium = Medium::Ip;
            c.max_transmission_unit = 1500;
            c
        }
    }

    pub struct Side {
        pub iface: Interface,
        pub dev: MemDevice,
        pub set: SocketSet<'static>,
        pub sock: SocketHandle,
    }

    pub struct Conn {
        pub a: Side,
        pub b: Side,
        pub ab: Rc<RefCell<Queue>>,
        pub ba: Rc<RefCell<Queue>>,
        pub now: u64,
        pub data: Vec<u8>,
        pub sink: Vec<u8>,
    }

    fn side(ip: Ipv4Address, rx: Rc<RefCell<Queue>>, tx: Rc<RefCell<Queue>>) -> Side {
        let mut dev = MemDevice { rx, tx };
        let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut dev, Instant::from_micros(0));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(ip), 24));
        });
        let mut set = SocketSet::new(Vec::new());
        // The send ring holds a whole number of segments: smoltcp does not gather the two
        // halves of a wrapped ring into one segment, so an unaligned ring splits one in ~180.
        let sock = set.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; 256 * 1024]),
            tcp::SocketBuffer::new(vec![0u8; 1460 * 2048]),
        ));
        Side { iface, dev, set, sock }
    }

    impl Side {
        fn poll(&mut self, now: u64) {
            self.iface.poll(Instant::from_micros(now as i64), &mut self.dev, &mut self.set);
        }
        fn socket(&mut self) -> &mut tcp::Socket<'static> {
            self.set.get_mut::<tcp::Socket>(self.sock)
        }
    }

    pub fn conn(ack_each_segment: bool) -> Conn {
        let ab = Rc::new(RefCell::new(Queue::default()));
        let ba = Rc::new(RefCell::new(Queue::default()));
        let a_ip = Ipv4Address::new(10, 77, 0, 1);
        let b_ip = Ipv4Address::new(10, 77, 0, 2);
        let mut a = side(a_ip, ba.clone(), ab.clone());
        let mut b = side(b_ip, ab.clone(), ba.clone());
        {
            let s = b.socket();
            s.set_congestion_control(tcp::CongestionControl::Reno);
            if ack_each_segment {
                s.set_ack_delay(None);
            }
            s.listen(80).expect("listen");
        }
        // The sender is not what is measured: no congestion window limits the input supply.
        a.socket().set_congestion_control(tcp::CongestionControl::None);
        let cx = a.iface.context();
        a.set
            .get_mut::<tcp::Socket>(a.sock)
            .connect(cx, (IpAddress::Ipv4(b_ip), 80), 40_000)
            .expect("connect");
        let mut now = 1_000_000u64;
        for _ in 0..16 {
            a.poll(now);
            b.poll(now);
            now += 1;
        }
        assert_eq!(a.socket().state(), tcp::State::Established);
        assert_eq!(b.socket().state(), tcp::State::Established);
        let mut c = Conn { a, b, ab, ba, now, data: vec![0x5a; 1460], sink: vec![0; 64 * 1024] };
        // Warm up: the SYN-ACK's window is unscaled (RFC 7323 §2.2); later ACKs open it.
        for _ in 0..WARMUP_SEGMENTS {
            let pkt = c.next_data_segment();
            c.receive(pkt);
        }
        c.a.poll(c.now);
        c
    }

    impl Conn {
        /// A sends one full segment; returns it without delivering it.
        pub fn next_data_segment(&mut self) -> Vec<u8> {
            self.now += 1;
            let n = self.a.socket().send_slice(&self.data).expect("send");
            assert_eq!(n, self.data.len(), "sender buffer full");
            // Ingress first (B's pending ACKs), then the new segment out.
            self.a.poll(self.now);
            let pkt = self.ab.borrow_mut().packets.pop_front();
            let pkt = pkt.expect("a full segment is sendable");
            assert!(pkt.len() >= 1500, "not a full segment: {}", pkt.len());
            pkt
        }

        /// Timed: B takes the segment, emits what it emits, the application reads.
        pub fn receive(&mut self, pkt: Vec<u8>) {
            self.ab.borrow_mut().packets.push_back(pkt);
            self.b.poll(self.now);
            let sink = &mut self.sink;
            let s = self.b.set.get_mut::<tcp::Socket>(self.b.sock);
            while s.can_recv() {
                let _ = s.recv_slice(sink);
            }
        }

        /// A segment goes A→B, B acknowledges it at once; returns the ACK.
        pub fn next_ack(&mut self) -> Vec<u8> {
            let pkt = self.next_data_segment();
            self.receive(pkt);
            let ack = self.ba.borrow_mut().packets.pop_front();
            ack.expect("an immediate ACK")
        }

        /// Timed: A takes the ACK.
        pub fn ack_in(&mut self, ack: Vec<u8>) {
            self.ba.borrow_mut().packets.push_back(ack);
            self.a.poll(self.now);
        }
    }
}

#[divan::bench(sample_size = SAMPLE_SIZE, sample_count = SAMPLE_COUNT)]
fn utcp_data_in_ack_out(bencher: divan::Bencher) {
    let c = RefCell::new(utcp_engine::conn(false));
    let payload = c.borrow().payload;
    bencher
        .counter(divan::counter::BytesCount::new(payload))
        .with_inputs(|| c.borrow_mut().next_data_segment())
        .bench_local_values(|pkt| c.borrow_mut().receive(&pkt));
}

#[divan::bench(sample_size = SAMPLE_SIZE, sample_count = SAMPLE_COUNT)]
fn utcp_ack_in(bencher: divan::Bencher) {
    let c = RefCell::new(utcp_engine::conn(true));
    bencher.with_inputs(|| c.borrow_mut().next_ack()).bench_local_values(|ack| {
        let mut c = c.borrow_mut();
        let now = c.pair.now;
        c.pair.a.handle_packet(now, &ack);
    });
}

#[divan::bench(sample_size = SAMPLE_SIZE, sample_count = SAMPLE_COUNT)]
fn smoltcp_data_in_ack_out(bencher: divan::Bencher) {
    let c = RefCell::new(smoltcp_engine::conn(false));
    bencher
        .counter(divan::counter::BytesCount::new(1460usize))
        .with_inputs(|| c.borrow_mut().next_data_segment())
        .bench_local_values(|pkt| c.borrow_mut().receive(pkt));
}

#[divan::bench(sample_size = SAMPLE_SIZE, sample_count = SAMPLE_COUNT)]
fn smoltcp_ack_in(bencher: divan::Bencher) {
    let c = RefCell::new(smoltcp_engine::conn(true));
    bencher.with_inputs(|| c.borrow_mut().next_ack()).bench_local_values(|ack| c.borrow_mut().ack_in(ack));
}
