//! Flow steering for a multi-queue TUN (issue 12, docs/latency.md section 8): an eBPF
//! program, attached with `TUNSETSTEERINGEBPF`, picks the queue of every packet the kernel
//! routes into the TUN from a map of flows to queues that the runtime fills in.
//!
//! Why: with one TUN queue, the thread that reads the TUN is rarely the thread that waits
//! on the connection a packet belongs to, so every request costs a second cross-CPU
//! wake-up (reader → owner). With a queue per waiting connection, the kernel's packet
//! wakes the owner directly, as a kernel socket's wake-up does. The tun driver's own
//! automatic steering does not follow local flows (`tools/tun_automq_probe.py`), hence
//! the program.
//!
//! The program (`BPF_PROG_TYPE_SOCKET_FILTER`, 41 instructions, assembled below)
//! reads the flow from the packet with `LD_ABS`/`LD_IND`: the low 32 bits of the source
//! and destination addresses (all of an IPv4 address, the last word of an IPv6 one) and
//! the two ports of a TCP segment. It looks the 12 octets up in a hash map and returns
//! the queue found there, else 0 (the kernel takes the result modulo the number of
//! queues). A collision of two flows on one key only costs a wake-up of the wrong
//! thread, never correctness: any thread may feed any packet to the engine. IPv6
//! extension headers and IPv4 fragments fall to queue 0 or to a wrong queue, likewise.
//!
//! There is no crate for this here: `aya` and `libbpf-rs` want an ELF object built by a
//! separate BPF toolchain, for a program this small. The `bpf(2)` calls are raw
//! syscalls; everything else is safe Rust.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// A flow as the steering program sees it in a packet the kernel sends us.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// The source address's low 32 bits, as a number (the kernel's `ntohl` of the word).
    src: u32,
    /// The destination address's low 32 bits.
    dst: u32,
    /// The source port.
    sport: u16,
    /// The destination port.
    dport: u16,
}

impl FlowKey {
    /// The key of packets from `remote` to `local` (what the kernel routes into the TUN
    /// for one of our connections).
    pub fn inbound(local: SocketAddr, remote: SocketAddr) -> FlowKey {
        FlowKey { src: low32(remote.ip()), dst: low32(local.ip()), sport: remote.port(), dport: local.port() }
    }

    fn as_bytes(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.src.to_ne_bytes());
        b[4..8].copy_from_slice(&self.dst.to_ne_bytes());
        b[8..10].copy_from_slice(&self.sport.to_ne_bytes());
        b[10..].copy_from_slice(&self.dport.to_ne_bytes());
        b
    }
}

fn low32(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from_be_bytes(a.octets()),
        IpAddr::V6(a) => {
            let o = a.octets();
            u32::from_be_bytes([o[12], o[13], o[14], o[15]])
        }
    }
}

/// The loaded program and its map. Dropping it closes both; the program stays attached
/// to a TUN until the TUN is gone (the kernel holds its own reference).
#[derive(Debug)]
pub struct Steering {
    map: OwnedFd,
    prog: OwnedFd,
}

// <linux/bpf.h>
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
/// `TUNSETSTEERINGEBPF = _IOR('T', 224, int)`: the argument points to a program fd.
const TUNSETSTEERINGEBPF: rustix::ioctl::Opcode = rustix::ioctl::opcode::read::<std::ffi::c_int>(b'T', 224);

/// A `union bpf_attr`, zeroed past the fields we set (the kernel requires it).
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(mut self, off: usize, v: u32) -> Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(mut self, off: usize, v: u64) -> Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

/// `bpf(cmd, attr)`; returns the syscall's non-negative result.
fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, 8-aligned, zero-padded `union bpf_attr` of the size passed;
    // every pointer stored in it (key, value, instructions, license, log) refers to memory
    // the caller keeps alive across this call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), attr.0.len()) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// A new descriptor returned by `bpf`.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: a successful BPF_MAP_CREATE or BPF_PROG_LOAD returns a new descriptor that
    // nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

impl Steering {
    /// Create the map (at most `max_entries` flows) and load the program.
    /// Fails without CAP_BPF / CAP_SYS_ADMIN (or with unprivileged BPF allowed).
    pub fn load(max_entries: u32) -> io::Result<Steering> {
        let mut attr = Attr::new().u32(0, BPF_MAP_TYPE_HASH).u32(4, 12).u32(8, 4).u32(12, max_entries.max(1));
        let map = owned(bpf(BPF_MAP_CREATE, &mut attr).map_err(|e| ctx("map create", e))?);
        let prog = load_program(&map).map_err(|e| ctx("program load", e))?;
        Ok(Steering { map, prog })
    }

    /// Attach the program to the TUN behind `queue` (any queue of a multi-queue TUN).
    pub fn attach(&self, queue: impl AsFd) -> io::Result<()> {
        let fd: std::ffi::c_int = self.prog.as_raw_fd();
        // SAFETY: TUNSETSTEERINGEBPF reads one int (a program fd) through the pointer
        // (tun.c, tun_set_ebpf); `Setter` passes a pointer to `fd`, alive for the call.
        unsafe {
            let op = rustix::ioctl::Setter::<TUNSETSTEERINGEBPF, std::ffi::c_int>::new(fd);
            rustix::ioctl::ioctl(queue, op).map_err(|e| ctx("TUNSETSTEERINGEBPF", e.into()))
        }
    }

    /// Steer `key`'s packets to queue `queue` (insert or replace). `E2BIG` when the map
    /// is full.
    pub fn set(&self, key: &FlowKey, queue: u32) -> io::Result<()> {
        let k = key.as_bytes();
        let v = queue.to_ne_bytes();
        let mut attr = Attr::new()
            .u32(0, self.map.as_raw_fd() as u32)
            .u64(8, k.as_ptr() as u64)
            .u64(16, v.as_ptr() as u64);
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }

    /// Stop steering `key` (its packets go to queue 0). A key that was not there is fine.
    pub fn remove(&self, key: &FlowKey) -> io::Result<()> {
        let k = key.as_bytes();
        let mut attr = Attr::new().u32(0, self.map.as_raw_fd() as u32).u64(8, k.as_ptr() as u64);
        match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            r => r.map(drop),
        }
    }
}

fn ctx(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("TUN steering: {what}: {e}"))
}

fn load_program(map: &OwnedFd) -> io::Result<OwnedFd> {
    let insns = program(map.as_raw_fd());
    let license = c"MIT OR Apache-2.0";
    let attr = |log: &mut [u8]| {
        Attr::new()
            .u32(0, BPF_PROG_TYPE_SOCKET_FILTER)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, !log.is_empty() as u32)
            .u32(28, log.len() as u32)
            .u64(32, if log.is_empty() { 0 } else { log.as_mut_ptr() as u64 })
    };
    match bpf(BPF_PROG_LOAD, &mut attr(&mut [])) {
        Ok(fd) => Ok(owned(fd)),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EINVAL) => {
            // Load again with the verifier's log, for the error message.
            let mut log = vec![0u8; 16 * 1024];
            if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr(&mut log)) {
                return Ok(owned(fd));
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let tail: String = text.lines().rev().take(4).collect::<Vec<_>>().join(" | ");
            Err(io::Error::new(e.kind(), format!("{e}; verifier: {tail}")))
        }
        Err(e) => Err(e),
    }
}

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcode parts, <linux/bpf_common.h> and <linux/bpf.h>.
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const STX: u8 = 0x03;
const ALU64: u8 = 0x07;
const JMP: u8 = 0x05;
const W: u8 = 0x00;
const H: u8 = 0x08;
const B: u8 = 0x10;
const DW: u8 = 0x18;
const ABS: u8 = 0x20;
const IND: u8 = 0x40;
const MEM: u8 = 0x60;
const K: u8 = 0x00;
const X: u8 = 0x08;
const ADD: u8 = 0x00;
const AND: u8 = 0x50;
const LSH: u8 = 0x60;
const RSH: u8 = 0x70;
const MOV: u8 = 0xb0;
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const JNE: u8 = 0x50;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;
const BPF_FUNC_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_PSEUDO_MAP_FD: u8 = 1;
/// The frame pointer; r6 holds the context (the skb), as LD_ABS/LD_IND require.
const FP: u8 = 10;

/// A tiny assembler with forward labels (jump offsets count instructions after the jump).
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<(&'static str, usize)>,
    fixups: Vec<(usize, &'static str)>,
}

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) -> &mut Self {
        self.insns.push(Insn { code, regs: dst | (src << 4), off, imm });
        self
    }
    fn jump(&mut self, code: u8, dst: u8, imm: i32, to: &'static str) -> &mut Self {
        self.fixups.push((self.insns.len(), to));
        self.op(JMP | code | K, dst, 0, 0, imm)
    }
    fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.push((name, self.insns.len()));
        self
    }
    /// r0 = the packet's `size` field at `off` (network order → host).
    fn ld_abs(&mut self, size: u8, off: i32) -> &mut Self {
        self.op(LD | ABS | size, 0, 0, 0, off)
    }
    /// *(size *)(fp + off) = r0
    fn push_r0(&mut self, size: u8, off: i16) -> &mut Self {
        self.op(STX | MEM | size, FP, 0, off, 0)
    }
    fn finish(mut self) -> Vec<Insn> {
        for (at, to) in std::mem::take(&mut self.fixups) {
            let target = self.labels.iter().find(|(n, _)| *n == to).expect("label defined").1;
            self.insns[at].off = (target as isize - at as isize - 1) as i16;
        }
        self.insns
    }
}

/// The steering program; `map` is the flow map's descriptor. Returns the queue mapped for
/// the packet's flow, else 0. The key is built at fp-16: src (4), dst (4), sport, dport.
fn program(map: i32) -> Vec<Insn> {
    let mut a = Asm::default();
    a.op(ALU64 | MOV | X, 6, 1, 0, 0) // r6 = skb
        .ld_abs(B, 0)
        .op(ALU64 | RSH | K, 0, 0, 0, 4) // IP version
        .jump(JEQ, 0, 4, "v4")
        .jump(JEQ, 0, 6, "v6")
        .jump(JA, 0, 0, "zero");
    a.label("v4")
        .ld_abs(B, 9)
        .jump(JNE, 0, 6, "zero") // not TCP
        .ld_abs(W, 12)
        .push_r0(W, -16)
        .ld_abs(W, 16)
        .push_r0(W, -12)
        .ld_abs(B, 0)
        .op(ALU64 | AND | K, 0, 0, 0, 0x0f)
        .op(ALU64 | LSH | K, 0, 0, 0, 2) // IHL in octets
        .op(ALU64 | MOV | X, 7, 0, 0, 0)
        .op(LD | IND | H, 0, 7, 0, 0) // source port
        .push_r0(H, -8)
        .op(LD | IND | H, 0, 7, 0, 2) // destination port
        .push_r0(H, -6)
        .jump(JA, 0, 0, "lookup");
    a.label("v6")
        .ld_abs(B, 6)
        .jump(JNE, 0, 6, "zero") // next header is not TCP
        .ld_abs(W, 20) // last word of the source address
        .push_r0(W, -16)
        .ld_abs(W, 36) // last word of the destination address
        .push_r0(W, -12)
        .ld_abs(H, 40)
        .push_r0(H, -8)
        .ld_abs(H, 42)
        .push_r0(H, -6);
    a.label("lookup")
        .op(LD | DW, 1, BPF_PSEUDO_MAP_FD, 0, map) // r1 = map (two instructions)
        .op(0, 0, 0, 0, 0)
        .op(ALU64 | MOV | X, 2, FP, 0, 0)
        .op(ALU64 | ADD | K, 2, 0, 0, -16) // r2 = &key
        .op(JMP | CALL, 0, 0, 0, BPF_FUNC_MAP_LOOKUP_ELEM)
        .jump(JEQ, 0, 0, "zero")
        .op(LDX | MEM | W, 0, 0, 0, 0) // r0 = *value
        .op(JMP | EXIT, 0, 0, 0, 0);
    a.label("zero").op(ALU64 | MOV | K, 0, 0, 0, 0).op(JMP | EXIT, 0, 0, 0, 0);
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_flow_as_the_program_reads_it() {
        let local: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let remote: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let k = FlowKey::inbound(local, remote);
        assert_eq!(k, FlowKey { src: 0x0a00_0001, dst: 0x0a00_0002, sport: 40000, dport: 80 });
        let v6 = FlowKey::inbound("[fd00::2]:80".parse().unwrap(), "[fd00::1:7]:5".parse().unwrap());
        assert_eq!((v6.src, v6.dst), (0x0001_0007, 2));
        assert_eq!(std::mem::size_of::<FlowKey>(), 12);
        assert_eq!(&k.as_bytes()[8..10], &40000u16.to_ne_bytes());
    }

    #[test]
    fn jumps_land_on_their_labels() {
        let p = program(3);
        // Every jump stays inside the program and every path ends in an exit.
        for (i, insn) in p.iter().enumerate() {
            if insn.code & 0x07 == JMP && insn.code & 0xf0 != CALL && insn.code & 0xf0 != EXIT {
                let t = i as isize + 1 + insn.off as isize;
                assert!(t > i as isize && (t as usize) < p.len(), "jump at {i} to {t}");
            }
        }
        assert_eq!(p.last().unwrap().code, JMP | EXIT);
        let lookup = p.iter().position(|i| i.code == LD | DW).unwrap();
        assert_eq!((p[lookup].imm, p[lookup].regs >> 4), (3, BPF_PSEUDO_MAP_FD));
    }
}
